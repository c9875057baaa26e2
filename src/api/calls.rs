//! `POST /calls/events`: the generic call-event API for any PBX or CTI system.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{ApiError, AppState, Body, parse_id};
use crate::auth::Principal;
use crate::domain::*;
use crate::store::{CallEvent, StoreError};
use crate::voice::{CallEventError, CallEventOutcome, VoiceSettings, handle_call_event};

pub fn router() -> Router<AppState> {
    Router::new().route("/calls/events", post(event))
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum EventKind {
    Ringing,
    Answered,
    Hangup,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CallDirection {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Answered,
    Missed,
    Busy,
    Failed,
    Voicemail,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallEventBody {
    channel_account_id: String,
    call_id: String,
    event: EventKind,
    /// When it happened (RFC 3339); now when absent.
    #[serde(default, with = "time::serde::rfc3339::option")]
    at: Option<OffsetDateTime>,
    /// The calling number or extension.
    from: Option<String>,
    /// The called number or extension.
    to: Option<String>,
    /// The extension of the agent the call rings at, or who answered it.
    extension: Option<String>,
    direction: Option<CallDirection>,
    /// How the call ended, when the PBX knows better than "answered or not" (on `hangup`).
    disposition: Option<Outcome>,
    recording_url: Option<String>,
    notes: Option<String>,
}

const MAX_CALL_ID: usize = 200;

async fn event(
    State(state): State<AppState>,
    p: Principal,
    Body(body): Body<CallEventBody>,
) -> Result<Json<CallEventOutcome>, ApiError> {
    let account_id: ChannelAccountId = parse_id("channel_account_id", &body.channel_account_id)?;
    if !p.scope.allows(account_id) {
        return Err(ApiError::field("channel_account_id", "no such channel account"));
    }
    let account = match state.hub.store.channel_account(account_id).await {
        Err(StoreError::NotFound(_)) => return Err(ApiError::field("channel_account_id", "no such channel account")),
        other => other?,
    };
    if account.kind != ChannelKind::Voice {
        return Err(ApiError::field(
            "channel_account_id",
            format!("a {} account takes no call events", account.kind),
        ));
    }
    let call_id = body.call_id.trim().to_owned();
    if call_id.is_empty() || call_id.len() > MAX_CALL_ID {
        return Err(ApiError::field("call_id", format!("must be 1 to {MAX_CALL_ID} bytes")));
    }
    if let Some(url) = &body.recording_url {
        crate::channels::http_url(url).map_err(|reason| ApiError::field("recording_url", reason))?;
    }
    let settings = VoiceSettings::of(&account)?;
    let event = CallEvent {
        account: account.id,
        call_id,
        kind: match body.event {
            EventKind::Ringing => "ringing",
            EventKind::Answered => "answered",
            EventKind::Hangup => "hangup",
        },
        at: body.at.unwrap_or_else(now),
        from: body.from.map(|f| f.trim().to_owned()).filter(|f| !f.is_empty()),
        to: body.to.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()),
        extension: body.extension.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty()),
        direction: body.direction.map(|d| match d {
            CallDirection::Inbound => Direction::Inbound,
            CallDirection::Outbound => Direction::Outbound,
        }),
        disposition: body.disposition.map(|d| {
            match d {
                Outcome::Answered => "answered",
                Outcome::Missed => "missed",
                Outcome::Busy => "busy",
                Outcome::Failed => "failed",
                Outcome::Voicemail => "voicemail",
            }
            .to_owned()
        }),
        recording_url: body.recording_url,
        notes: body.notes,
    };
    match handle_call_event(&state.hub, &account, &settings, event).await {
        Ok(outcome) => Ok(Json(outcome)),
        Err(CallEventError::Call(switchboard_connectors::voice::CallError::Number { number })) => {
            Err(ApiError::field("from", format!("{number:?} is not a phone number")))
        }
        Err(CallEventError::Call(e)) => Err(ApiError::Invalid {
            field: None,
            message: e.to_string(),
        }),
        Err(CallEventError::Ingest(e)) => Err(e.into()),
        Err(CallEventError::Store(e)) => Err(e.into()),
    }
}

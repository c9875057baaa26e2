//! The generic API channel: any system pushes a touchpoint; and reading one interaction.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{ApiError, AppState, Body, parse_id};
use crate::auth::Principal;
use crate::bus::HubEvent;
use crate::domain::*;
use switchboard_connectors::{Content, InboundEnvelope, ThreadingHints};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/interactions", post(push))
        .route("/interactions/{id}", get(read))
        .route("/interactions/{id}/split", post(split))
}

/// The customer side of a pushed touchpoint: exactly one handle, and optionally a name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactRef {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub visitor_id: Option<String>,
    pub external_id: Option<String>,
    pub name: Option<String>,
}

impl ContactRef {
    /// The one handle given, parsed; errors name the field.
    pub fn handle(&self, region: Region, prefix: &str) -> Result<Handle, ApiError> {
        let given: Vec<(&str, HandleKind, &String)> = [
            ("email", HandleKind::Email, &self.email),
            ("phone", HandleKind::Phone, &self.phone),
            ("visitor_id", HandleKind::Visitor, &self.visitor_id),
            ("external_id", HandleKind::External, &self.external_id),
        ]
        .into_iter()
        .filter_map(|(name, kind, value)| value.as_ref().map(|v| (name, kind, v)))
        .collect();
        match given.as_slice() {
            [(name, kind, value)] => {
                Handle::parse(*kind, value, region).map_err(|e| ApiError::field(&format!("{prefix}.{name}"), e))
            }
            _ => Err(ApiError::field(
                prefix,
                "give exactly one of email, phone, visitor_id or external_id",
            )),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PushInteraction {
    channel_account_id: String,
    external_id: String,
    #[serde(default = "inbound")]
    direction: Direction,
    contact: ContactRef,
    #[serde(default, with = "time::serde::rfc3339::option")]
    occurred_at: Option<OffsetDateTime>,
    subject: Option<String>,
    text: Option<String>,
    html: Option<String>,
    #[serde(default)]
    details: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    attachments: Vec<AttachmentMeta>,
    thread_key: Option<String>,
}

fn inbound() -> Direction {
    Direction::Inbound
}

/// Longest subject accepted (RFC 5322's line limit).
const MAX_SUBJECT: usize = 998;

async fn push(
    State(state): State<AppState>,
    principal: Principal,
    Body(body): Body<PushInteraction>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let account: ChannelAccountId = parse_id("channel_account_id", &body.channel_account_id)?;
    if !principal.scope.allows(account) {
        return Err(ApiError::field("channel_account_id", "no such channel account"));
    }
    if !matches!(body.direction, Direction::Inbound | Direction::Outbound) {
        return Err(ApiError::field(
            "direction",
            "a pushed touchpoint is inbound or outbound",
        ));
    }
    let handle = body
        .contact
        .handle(state.hub.settings.contacts.default_region, "contact")?;
    if body.subject.as_ref().is_some_and(|s| s.len() > MAX_SUBJECT) {
        return Err(ApiError::field("subject", format!("longer than {MAX_SUBJECT} bytes")));
    }
    if body.text.is_none() && body.html.is_none() && body.subject.is_none() && body.details.is_empty() {
        return Err(ApiError::field(
            "text",
            "a touchpoint needs a text, html, subject or details",
        ));
    }
    let envelope = InboundEnvelope {
        channel_account_id: account.0,
        channel: ChannelKind::Api,
        external_id: body.external_id,
        direction: body.direction,
        contact: handle,
        contact_name: body.contact.name.filter(|n| !n.trim().is_empty()),
        occurred_at: body.occurred_at.unwrap_or_else(now),
        threading: ThreadingHints {
            thread_key: body.thread_key,
            ..Default::default()
        },
        content: Content {
            subject: body.subject,
            text: body.text,
            html: body.html,
        },
        attachments: body.attachments,
        details: serde_json::Value::Object(body.details),
        cursor: None,
        agent_extension: None,
        needs_reply: true,
    };
    let outcome = state.hub.ingest(&envelope).await?;
    let status = if outcome.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(serde_json::json!({"duplicate": outcome.duplicate, "interaction": outcome.interaction})),
    ))
}

async fn read(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id: InteractionId = parse_id("id", &id)?;
    let interaction = state.hub.store.interaction(id).await?;
    principal.check(interaction.channel_account_id, "interaction")?;
    let delivery = state.hub.store.delivery(id).await?;
    Ok(Json(
        serde_json::json!({"interaction": interaction, "delivery": delivery}),
    ))
}

/// Moves a customer's email that was threaded into the wrong conversation into a new one of
/// its own (an agent of its inbox may); both conversations are announced to the consoles.
async fn split(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let id: InteractionId = parse_id("id", &id)?;
    let interaction = state.hub.store.interaction(id).await?;
    principal.check(interaction.channel_account_id, "interaction")?;
    let split = state
        .hub
        .store
        .split_interaction(id, principal.agent_id, state.hub.clock.now())
        .await?;
    for conversation in [&split.from, &split.to] {
        state.hub.bus.publish(HubEvent::ConversationChanged {
            conversation: Box::new(conversation.clone()),
        });
    }
    state.hub.search.wake();
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"conversation": split.to, "from": split.from, "interaction": split.interaction})),
    ))
}

//! The shared inbox: every channel's conversations in one list with the filters agents use
//! (mine, unassigned, status, channel, inbox, label); labels; canned responses.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use serde::Deserialize;

use super::contacts::page_size;
use super::{ApiError, AppState, Body, Params, parse_id};
use crate::auth::Principal;
use crate::domain::*;
use crate::store::{CannedResponse, InboxFilter, InboxItem, Label};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inbox", get(inbox))
        .route("/labels", get(labels))
        .route("/conversations/{id}/labels", put(set_labels))
        .route("/canned-responses", get(canned).post(create_canned))
        .route("/canned-responses/{id}", delete(delete_canned))
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum View {
    Mine,
    Unassigned,
    #[default]
    All,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboxQuery {
    #[serde(default)]
    view: View,
    /// A status, or `any`; open by default.
    status: Option<String>,
    channel: Option<ChannelKind>,
    channel_account_id: Option<String>,
    label: Option<String>,
    limit: Option<i64>,
}

async fn inbox(
    State(state): State<AppState>,
    p: Principal,
    Params(q): Params<InboxQuery>,
) -> Result<Json<Vec<InboxItem>>, ApiError> {
    let status = match q.status.as_deref() {
        None => Some(ConversationStatus::Open),
        Some("any") => None,
        Some(other) => Some(other.parse().map_err(|e| ApiError::field("status", e))?),
    };
    let filter = InboxFilter {
        status,
        channel: q.channel,
        channel_account_id: q
            .channel_account_id
            .as_deref()
            .map(|a| parse_id("channel_account_id", a))
            .transpose()?,
        assignee_id: (q.view == View::Mine).then_some(p.agent_id),
        unassigned: q.view == View::Unassigned,
        label: q
            .label
            .as_deref()
            .map(|l| Label::parse(l).map_err(|e| ApiError::field("label", e)))
            .transpose()?,
        limit: page_size(q.limit, 100, 500)?,
        accounts: p.scope.accounts(),
    };
    Ok(Json(state.hub.store.inbox(&filter).await?))
}

async fn labels(State(state): State<AppState>, _p: Principal) -> Result<Json<Vec<Label>>, ApiError> {
    Ok(Json(state.hub.store.labels_in_use().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Labels {
    labels: Vec<String>,
}

async fn set_labels(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Body(body): Body<Labels>,
) -> Result<Json<Vec<Label>>, ApiError> {
    if body.labels.len() > 20 {
        return Err(ApiError::field("labels", "at most 20 labels on a conversation"));
    }
    let labels = body
        .labels
        .iter()
        .enumerate()
        .map(|(i, l)| Label::parse(l).map_err(|e| ApiError::field(&format!("labels[{i}]"), e)))
        .collect::<Result<Vec<_>, _>>()?;
    let id: ConversationId = parse_id("id", &id)?;
    super::conversations::visible(&state, &p, id).await?;
    let labels = state.hub.store.set_labels(id, &labels).await?;
    let conversation = state.hub.store.conversation(id).await?;
    state.hub.bus.publish(crate::bus::HubEvent::ConversationChanged {
        conversation: Box::new(conversation),
    });
    Ok(Json(labels))
}

async fn canned(State(state): State<AppState>, _p: Principal) -> Result<Json<Vec<CannedResponse>>, ApiError> {
    Ok(Json(state.hub.store.canned_responses().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCanned {
    shortcut: String,
    title: String,
    body: String,
}

async fn create_canned(
    State(state): State<AppState>,
    p: Principal,
    Body(body): Body<NewCanned>,
) -> Result<(StatusCode, Json<CannedResponse>), ApiError> {
    let shortcut = body.shortcut.trim().to_lowercase();
    if shortcut.is_empty()
        || shortcut.len() > 32
        || !shortcut.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::field("shortcut", "1 to 32 letters, digits, '-' or '_'"));
    }
    if body.title.trim().is_empty() || body.title.chars().count() > 120 {
        return Err(ApiError::field("title", "must be 1 to 120 characters"));
    }
    if body.body.trim().is_empty() || body.body.chars().count() > 10_000 {
        return Err(ApiError::field("body", "must be 1 to 10000 characters"));
    }
    let created = state
        .hub
        .store
        .create_canned_response(&shortcut, body.title.trim(), &body.body, p.agent_id)
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn delete_canned(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    p.require(Role::Supervisor)?;
    state.hub.store.delete_canned_response(parse_id("id", &id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

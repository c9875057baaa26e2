//! Conversations: the shared inbox list, one conversation with its messages, status,
//! assignment, replies and internal notes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::contacts::page_size;
use super::{ApiError, AppState, Body, Params, parse_id};
use crate::auth::Principal;
use crate::bus::HubEvent;
use crate::domain::*;
use crate::reply::{Draft, DraftKind};
use crate::store::ConversationFilter;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/conversations", get(list))
        .route("/conversations/{id}", get(read))
        .route("/conversations/{id}/status", post(set_status))
        .route("/conversations/{id}/assign", post(assign))
        .route("/conversations/{id}/priority", post(set_priority))
        .route("/conversations/{id}/replies", post(reply))
        .route("/conversations/{id}/notes", post(note))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<ConversationStatus>,
    channel_account_id: Option<String>,
    /// An agent id, `me` or `unassigned`.
    assignee: Option<String>,
    contact_id: Option<String>,
    limit: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    p: Principal,
    Params(q): Params<ListQuery>,
) -> Result<Json<Vec<Conversation>>, ApiError> {
    let mut filter = ConversationFilter {
        status: q.status,
        channel_account_id: q
            .channel_account_id
            .as_deref()
            .map(|a| parse_id("channel_account_id", a))
            .transpose()?,
        contact_id: q.contact_id.as_deref().map(|c| parse_id("contact_id", c)).transpose()?,
        limit: page_size(q.limit, 50, 500)?,
        accounts: p.scope.accounts(),
        ..Default::default()
    };
    match q.assignee.as_deref() {
        None => {}
        Some("me") => filter.assignee_id = Some(p.agent_id),
        Some("unassigned") => filter.unassigned = true,
        Some(other) => filter.assignee_id = Some(parse_id("assignee", other)?),
    }
    Ok(Json(state.hub.store.conversations(&filter).await?))
}

async fn read(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id: ConversationId = parse_id("id", &id)?;
    let conversation = visible(&state, &p, id).await?;
    let interactions = state.hub.store.conversation_interactions(id).await?;
    let labels = state.hub.store.labels_of(&[id]).await?.remove(&id).unwrap_or_default();
    let deliveries = state.hub.store.conversation_deliveries(id).await?;
    Ok(Json(serde_json::json!({
        "conversation": conversation, "interactions": interactions, "labels": labels, "deliveries": deliveries,
    })))
}

/// Tells every console a conversation changed, and answers with it.
fn announce(state: &AppState, conversation: Conversation) -> Json<Conversation> {
    state.hub.bus.publish(HubEvent::ConversationChanged {
        conversation: Box::new(conversation.clone()),
    });
    Json(conversation)
}

/// The conversation, unless it is in an inbox the caller may not see (then "not found").
pub(super) async fn visible(state: &AppState, p: &Principal, id: ConversationId) -> Result<Conversation, ApiError> {
    let conversation = state.hub.store.conversation(id).await?;
    p.check(conversation.channel_account_id, "conversation")?;
    Ok(conversation)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusChange {
    status: ConversationStatus,
}

async fn set_status(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Body(body): Body<StatusChange>,
) -> Result<Json<Conversation>, ApiError> {
    let id = parse_id("id", &id)?;
    visible(&state, &p, id).await?;
    let conversation = state
        .hub
        .store
        .set_conversation_status(id, body.status, Some(p.agent_id), state.hub.clock.now())
        .await?;
    Ok(announce(&state, conversation))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriorityChange {
    priority: Priority,
}

async fn set_priority(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Body(body): Body<PriorityChange>,
) -> Result<Json<Conversation>, ApiError> {
    let id = parse_id("id", &id)?;
    visible(&state, &p, id).await?;
    let agent = state.hub.store.agent(p.agent_id).await?;
    let conversation = state
        .hub
        .store
        .set_priority(
            id,
            body.priority,
            &format!("set by {}", agent.name),
            Some(p.agent_id),
            state.hub.clock.now(),
        )
        .await?;
    Ok(announce(&state, conversation))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Assignment {
    assignee_id: Option<String>,
}

async fn assign(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Body(body): Body<Assignment>,
) -> Result<Json<Conversation>, ApiError> {
    let assignee = body
        .assignee_id
        .as_deref()
        .map(|a| parse_id("assignee_id", a))
        .transpose()?;
    let id = parse_id("id", &id)?;
    let current = visible(&state, &p, id).await?;
    if let Some(assignee) = assignee {
        assignable(&state, assignee, current.channel_account_id).await?;
    }
    let conversation = match state
        .hub
        .store
        .assign_conversation(id, assignee, Some(p.agent_id), state.hub.clock.now())
        .await
    {
        Err(crate::store::StoreError::NotFound("agent")) => {
            return Err(ApiError::field("assignee_id", "no such agent"));
        }
        other => other?,
    };
    Ok(announce(&state, conversation))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DraftBody {
    text: String,
    html: Option<String>,
    subject: Option<String>,
}

async fn reply(
    state: State<AppState>,
    p: Principal,
    id: Path<String>,
    body: Body<DraftBody>,
) -> Result<(StatusCode, Json<Interaction>), ApiError> {
    write(state, p, id, body, DraftKind::Reply).await
}

async fn note(
    state: State<AppState>,
    p: Principal,
    id: Path<String>,
    body: Body<DraftBody>,
) -> Result<(StatusCode, Json<Interaction>), ApiError> {
    write(state, p, id, body, DraftKind::Note).await
}

/// An agent may be given only conversations of inboxes they belong to (supervisors and
/// admins, any).
async fn assignable(state: &AppState, agent: AgentId, account: ChannelAccountId) -> Result<(), ApiError> {
    let found = match state.hub.store.agent(agent).await {
        Err(crate::store::StoreError::NotFound(_)) => return Err(ApiError::field("assignee_id", "no such agent")),
        other => other?,
    };
    if found.role.at_least(Role::Supervisor) || state.hub.store.agent_inbox_ids(agent).await?.contains(&account) {
        Ok(())
    } else {
        Err(ApiError::field(
            "assignee_id",
            "the agent does not work in this conversation's inbox",
        ))
    }
}

async fn write(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Body(body): Body<DraftBody>,
    kind: DraftKind,
) -> Result<(StatusCode, Json<Interaction>), ApiError> {
    if body.text.trim().is_empty() {
        return Err(ApiError::field("text", "must not be empty"));
    }
    let draft = Draft {
        text: body.text,
        html: body.html,
        subject: body.subject,
    };
    let id = parse_id("id", &id)?;
    visible(&state, &p, id).await?;
    let interaction = state.hub.write(id, Some(p.agent_id), kind, draft).await?;
    Ok((StatusCode::CREATED, Json(interaction)))
}

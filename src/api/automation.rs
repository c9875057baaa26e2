//! Segments and triggers: admins define them; agents read segments (the badges they see).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState, Body, parse_id};
use crate::auth::Principal;
use crate::automation::Trigger;
use crate::automation::rules::{Rule, RuleError, RuleScope};
use crate::domain::*;
use crate::store::SegmentSummary;

/// Contacts a preview reports by id.
const PREVIEW_SAMPLE: usize = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/segments", get(segments).post(create_segment))
        .route("/segments/preview", post(preview))
        .route("/segments/{id}", delete(delete_segment))
        .route("/segments/{id}/contacts", get(members))
        .route("/triggers", get(triggers).post(create_trigger))
        .route("/triggers/{id}/enabled", put(enable_trigger))
        .route("/triggers/{id}/activity", get(trigger_activity))
        .route("/automation/sweep", post(sweep))
}

fn rule_error(e: RuleError) -> ApiError {
    ApiError::field(&e.path, e.reason)
}

async fn parse_rule(state: &AppState, rule: &Value) -> Result<Rule, ApiError> {
    let definitions = state.hub.store.attribute_definitions().await?;
    Rule::parse(rule, RuleScope::Segment, &definitions).map_err(rule_error)
}

async fn segments(State(state): State<AppState>, _p: Principal) -> Result<Json<Vec<SegmentSummary>>, ApiError> {
    Ok(Json(state.hub.store.segments().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSegment {
    name: String,
    rule: Value,
    priority: Option<Priority>,
    sla_policy_id: Option<String>,
}

/// Admin: saves a segment. Its members are filled in by the automation worker within a
/// moment (every contact is evaluated once, then kept current).
async fn create_segment(
    State(state): State<AppState>,
    p: Principal,
    Body(body): Body<NewSegment>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    p.require(Role::Admin)?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 60 {
        return Err(ApiError::field("name", "must be 1 to 60 characters"));
    }
    parse_rule(&state, &body.rule).await?;
    let id = state
        .hub
        .store
        .create_segment(name, &body.rule, body.priority, body.sla_policy_id.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"id": id, "name": name, "rule": body.rule, "priority": body.priority,
                    "sla_policy_id": body.sla_policy_id}),
        ),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Preview {
    rule: Value,
}

/// Supervisor: evaluates a rule over every contact now, without saving it: how many match,
/// and the first of them.
async fn preview(
    State(state): State<AppState>,
    p: Principal,
    Body(body): Body<Preview>,
) -> Result<Json<Value>, ApiError> {
    p.require(Role::Supervisor)?;
    let rule = parse_rule(&state, &body.rule).await?;
    let (count, sample) = state
        .hub
        .store
        .evaluate_rule(&rule, state.hub.clock.now(), PREVIEW_SAMPLE)
        .await?;
    Ok(Json(json!({"count": count, "sample": sample})))
}

async fn delete_segment(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    p.require(Role::Admin)?;
    state.hub.store.delete_segment(parse_id("id", &id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Supervisor: the segment's members, most recent first.
async fn members(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<ContactId>>, ApiError> {
    p.require(Role::Supervisor)?;
    Ok(Json(state.hub.store.segment_members(parse_id("id", &id)?, 1000).await?))
}

/// Admin: re-evaluates every contact against every segment now, rather than at the next
/// periodic sweep. Answers how many contacts entered a segment.
async fn sweep(State(state): State<AppState>, p: Principal) -> Result<Json<Value>, ApiError> {
    p.require(Role::Admin)?;
    let mut after = None;
    let (mut contacts, mut entered) = (0, 0);
    loop {
        let batch = state.hub.store.contact_ids_after(after, 500).await?;
        let Some(last) = batch.last().copied() else { break };
        entered += state.hub.store.refresh_segments(&batch, state.hub.clock.now()).await?;
        contacts += batch.len();
        after = Some(last);
    }
    Ok(Json(json!({"contacts": contacts, "entered": entered})))
}

async fn triggers(State(state): State<AppState>, p: Principal) -> Result<Json<Vec<Value>>, ApiError> {
    p.require(Role::Admin)?;
    Ok(Json(state.hub.store.triggers().await?))
}

/// Admin: saves a trigger, refusing one that does not parse or would fire itself.
async fn create_trigger(
    State(state): State<AppState>,
    p: Principal,
    Body(spec): Body<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    p.require(Role::Admin)?;
    let definitions = state.hub.store.attribute_definitions().await?;
    let trigger = Trigger::parse(&spec, &definitions).map_err(|e| ApiError::field(&e.field, e.reason))?;
    trigger
        .check_loops(&own_origins(&state))
        .map_err(|e| ApiError::field(&e.field, e.reason))?;
    if let Some(segment) = trigger.segment
        && !state.hub.store.segments().await?.iter().any(|s| s.id == segment)
    {
        return Err(ApiError::field("segment_id", "no such segment"));
    }
    for action in &trigger.actions {
        if let crate::automation::Action::Assign(agent) = action {
            state
                .hub
                .store
                .agent(*agent)
                .await
                .map_err(|_| ApiError::field("actions", format!("no agent {agent}")))?;
        }
    }
    let id = state.hub.store.create_trigger(&trigger, &spec).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "name": trigger.name}))))
}

/// Where the hub itself answers: its public URL and the address it listens on.
fn own_origins(state: &AppState) -> Vec<reqwest::Url> {
    let settings = &state.hub.settings.server;
    let listen = state.local_addr.unwrap_or(settings.listen);
    let mut own: Vec<reqwest::Url> = [settings.public_url.clone(), format!("http://{listen}/")]
        .iter()
        .filter_map(|u| reqwest::Url::parse(u).ok())
        .collect();
    if listen.ip().is_unspecified() || listen.ip().is_loopback() {
        for host in ["127.0.0.1", "localhost", "[::1]"] {
            own.extend(reqwest::Url::parse(&format!("http://{host}:{}/", listen.port())).ok());
        }
    }
    own
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Enabled {
    enabled: bool,
}

async fn enable_trigger(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Body(body): Body<Enabled>,
) -> Result<StatusCode, ApiError> {
    p.require(Role::Admin)?;
    state
        .hub
        .store
        .set_trigger_enabled(parse_id("id", &id)?, body.enabled)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Admin: what a trigger did: the events it fired on and its webhook deliveries.
async fn trigger_activity(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    p.require(Role::Admin)?;
    let id = parse_id("id", &id)?;
    let firings = state.hub.store.trigger_firings(id).await?;
    let deliveries = state.hub.store.webhook_deliveries(id).await?;
    Ok(Json(json!({
        "firings": firings.iter().map(|(key, c)| json!({"event_key": key, "conversation_id": c})).collect::<Vec<_>>(),
        "webhook_deliveries": deliveries.iter()
            .map(|(status, attempts, error)| json!({"status": status, "attempts": attempts, "last_error": error}))
            .collect::<Vec<_>>(),
    })))
}

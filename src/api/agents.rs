//! Login, logout, the current agent, agent accounts and API tokens.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, AppState, Body};
use crate::auth::{self, Principal, SESSION_COOKIE};
use crate::domain::*;
use crate::store::NewAgent;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
        .route("/auth/me/presence", axum::routing::put(set_presence))
        .route("/agents", get(list_agents).post(create_agent))
        .route("/agents/{id}/inboxes", axum::routing::put(set_inboxes))
        .route("/auth/me/password", axum::routing::put(change_password))
        .route("/agents/{id}/password", axum::routing::put(reset_password))
        .route("/api-tokens", post(create_token))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

async fn login(State(state): State<AppState>, Body(body): Body<Login>) -> Result<Response, ApiError> {
    let email = EmailAddress::parse(&body.email).map_err(|e| ApiError::field("email", e))?;
    let key = email.as_str().to_owned();
    if !state.limiter.allowed(&key).await? {
        return Err(ApiError::TooManyRequests);
    }
    let found = state.hub.store.agent_credentials(&email).await?;
    let password = body.password;
    let (agent, ok) = tokio::task::spawn_blocking(move || match found {
        Some((agent, Some(hash))) => {
            let ok = auth::verify_password(&password, &hash);
            (Some(agent), ok)
        }
        // Spend the same time as a real check, so response times do not reveal which emails exist.
        _ => {
            let _ = auth::verify_password(&password, &DUMMY_HASH);
            (None, false)
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let Some(agent) = agent.filter(|_| ok) else {
        state.limiter.failed(&key).await?;
        return Err(ApiError::Unauthorized("wrong email or password".into()));
    };
    state.limiter.succeeded(&key).await?;
    let session = auth::new_secret("sbs_");
    let csrf = auth::new_secret("");
    let ttl = Duration::from_secs(state.hub.settings.auth.session_ttl_hours * 3600);
    state
        .hub
        .store
        .create_session(agent.id, &auth::secret_digest(&session), &csrf, now() + ttl)
        .await?;
    let secure = if state.hub.settings.server.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        ttl.as_secs()
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(serde_json::json!({"agent": agent, "csrf_token": csrf})),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// An agent changes their own password from a signed-in session. The current password is
/// checked under the login limiter (so this is no way around it), and every other session of
/// the agent ends, its open sockets closing.
async fn change_password(
    State(state): State<AppState>,
    principal: Principal,
    Body(body): Body<PasswordChange>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(session) = principal.session.clone() else {
        return Err(ApiError::Forbidden(
            "a password is changed from a signed-in session".into(),
        ));
    };
    let agent = state.hub.store.agent(principal.agent_id).await?;
    let email = EmailAddress::parse(&agent.email).map_err(|e| ApiError::Internal(e.to_string()))?;
    let key = email.as_str().to_owned();
    if !state.limiter.allowed(&key).await? {
        return Err(ApiError::TooManyRequests);
    }
    let stored = state
        .hub
        .store
        .agent_credentials(&email)
        .await?
        .and_then(|(_, hash)| hash);
    let current = body.current_password;
    let ok = tokio::task::spawn_blocking(move || stored.is_some_and(|hash| auth::verify_password(&current, &hash)))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if !ok {
        state.limiter.failed(&key).await?;
        return Err(ApiError::field("current_password", "is wrong"));
    }
    state.limiter.succeeded(&key).await?;
    let ended = store_password(&state, agent.id, body.new_password, Some(&session), "new_password").await?;
    Ok(Json(serde_json::json!({"sessions_ended": ended})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordReset {
    password: String,
}

/// Admin: sets an agent's password; every session of theirs ends.
async fn reset_password(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Body(body): Body<PasswordReset>,
) -> Result<Json<serde_json::Value>, ApiError> {
    principal.require(Role::Admin)?;
    let id = super::parse_id("id", &id)?;
    let ended = store_password(&state, id, body.password, None, "password").await?;
    Ok(Json(serde_json::json!({"sessions_ended": ended})))
}

async fn store_password(
    state: &AppState,
    agent: AgentId,
    password: String,
    keep: Option<&str>,
    field: &str,
) -> Result<u64, ApiError> {
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::field(field, e))?;
    let ended = state.hub.store.set_password(agent, &hash, keep).await?;
    state
        .hub
        .bus
        .publish(crate::bus::HubEvent::SessionsEnded { agent_id: agent });
    Ok(ended)
}

/// A real argon2id hash, verified against when the email is unknown.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    auth::hash_password(&auth::new_secret("dummy_")).expect("hashing a random password works")
});

/// Ends the caller's session (API tokens have none to end).
async fn logout(
    State(state): State<AppState>,
    _principal: Principal,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(session) = auth::session_cookie(&headers) {
        state.hub.store.delete_session(&auth::secret_digest(&session)).await?;
    }
    let clear = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

async fn me(State(state): State<AppState>, principal: Principal) -> Result<Json<serde_json::Value>, ApiError> {
    let agent = state.hub.store.agent(principal.agent_id).await?;
    Ok(Json(
        serde_json::json!({"agent": agent, "role": principal.role, "csrf_token": principal.csrf_token}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceChange {
    presence: Presence,
}

async fn set_presence(
    State(state): State<AppState>,
    principal: Principal,
    Body(body): Body<PresenceChange>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(
        crate::presence::set(&state.hub, principal.agent_id, body.presence).await?,
    ))
}

/// Every agent, for assignment; any signed-in agent may see their colleagues' names.
async fn list_agents(State(state): State<AppState>, _principal: Principal) -> Result<Json<Vec<Agent>>, ApiError> {
    Ok(Json(state.hub.store.agents().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAgent {
    email: String,
    name: String,
    role: Role,
    password: String,
    /// The agent's phone extension (digits), for linking calls and screen pops.
    extension: Option<String>,
    /// The inboxes (channel account ids) an agent works in; supervisors and admins see all.
    #[serde(default)]
    inboxes: Vec<String>,
}

async fn create_agent(
    State(state): State<AppState>,
    principal: Principal,
    Body(body): Body<CreateAgent>,
) -> Result<(StatusCode, Json<Agent>), ApiError> {
    principal.require(Role::Admin)?;
    let email = EmailAddress::parse(&body.email).map_err(|e| ApiError::field("email", e))?;
    let name = body.name.trim().to_owned();
    if name.is_empty() {
        return Err(ApiError::field("name", "must not be empty"));
    }
    let extension = body.extension.map(|e| e.trim().to_owned());
    if extension
        .as_ref()
        .is_some_and(|e| !(1..=8).contains(&e.len()) || !e.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ApiError::field("extension", "an extension is 1 to 8 digits"));
    }
    let inboxes = parse_inboxes(&state, &body.inboxes, "inboxes").await?;
    let password = body.password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::field("password", e))?;
    let agent = state
        .hub
        .store
        .create_agent(NewAgent {
            email,
            name,
            role: body.role,
            password_hash: Some(hash),
            extension,
        })
        .await?;
    if !inboxes.is_empty() {
        state
            .hub
            .store
            .set_agent_inboxes(agent.id, &inboxes, &principal.actor)
            .await?;
    }
    Ok((StatusCode::CREATED, Json(agent)))
}

/// Inbox ids as given, each checked to exist; errors name the offending entry.
async fn parse_inboxes(state: &AppState, raw: &[String], field: &str) -> Result<Vec<ChannelAccountId>, ApiError> {
    let mut inboxes = Vec::with_capacity(raw.len());
    for (i, id) in raw.iter().enumerate() {
        let field = format!("{field}[{i}]");
        let id: ChannelAccountId = super::parse_id(&field, id)?;
        match state.hub.store.channel_account(id).await {
            Err(crate::store::StoreError::NotFound(_)) => {
                return Err(ApiError::field(&field, "no such channel account"));
            }
            other => other?,
        };
        inboxes.push(id);
    }
    Ok(inboxes)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Inboxes {
    channel_account_ids: Vec<String>,
}

/// Admin: the inboxes an agent works in, replaced as a whole.
async fn set_inboxes(
    State(state): State<AppState>,
    principal: Principal,
    axum::extract::Path(id): axum::extract::Path<String>,
    Body(body): Body<Inboxes>,
) -> Result<Json<serde_json::Value>, ApiError> {
    principal.require(Role::Admin)?;
    let agent: AgentId = super::parse_id("id", &id)?;
    let inboxes = parse_inboxes(&state, &body.channel_account_ids, "channel_account_ids").await?;
    state
        .hub
        .store
        .set_agent_inboxes(agent, &inboxes, &principal.actor)
        .await?;
    Ok(Json(
        serde_json::json!({"agent_id": agent, "channel_account_ids": inboxes}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: String,
    role: Role,
}

/// Creates an API token; the secret is in this response only.
async fn create_token(
    State(state): State<AppState>,
    principal: Principal,
    Body(body): Body<CreateToken>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    principal.require(Role::Admin)?;
    if body.name.trim().is_empty() {
        return Err(ApiError::field("name", "must not be empty"));
    }
    let token = auth::new_secret("sbt_");
    let id = state
        .hub
        .store
        .create_api_token(
            body.name.trim(),
            body.role,
            principal.agent_id,
            &auth::secret_digest(&token),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"id": id, "token": token, "role": body.role})),
    ))
}

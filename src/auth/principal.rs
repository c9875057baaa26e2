//! The authenticated caller of an `/api/v1` request, extracted from the request.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};

use super::Scope;
use crate::api::{ApiError, AppState};
use crate::domain::*;

pub const SESSION_COOKIE: &str = "sb_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who is calling, and with which role.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The agent acting, or who created the API token in use.
    pub agent_id: AgentId,
    pub role: Role,
    /// How the caller authenticated, for the audit log.
    pub actor: String,
    /// The session's CSRF token, for cookie-authenticated callers.
    pub csrf_token: Option<String>,
    /// The inboxes the caller may see.
    pub scope: Scope,
    /// The stored digest of the caller's session, for cookie-authenticated callers.
    pub session: Option<String>,
}

impl Principal {
    /// Refuses (as not found) an object in an inbox the caller may not see.
    pub fn check(&self, account: ChannelAccountId, what: &str) -> Result<(), ApiError> {
        if self.scope.allows(account) {
            Ok(())
        } else {
            Err(ApiError::NotFound(format!("{what} not found")))
        }
    }

    /// Refuses the request unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role.at_least(role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("this needs the {role} role")))
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let store = &state.hub.store;
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be 'Bearer <token>'".into()))?;
            let record = store
                .api_token(&crate::auth::secret_digest(token.trim()))
                .await?
                .ok_or_else(|| ApiError::Unauthorized("unknown or revoked API token".into()))?;
            return Ok(Principal {
                agent_id: record.created_by,
                role: record.role,
                actor: format!("token:{}", record.id),
                csrf_token: None,
                scope: scope_of(state, record.created_by, record.role).await?,
                session: None,
            });
        }
        let session = session_cookie(&parts.headers)
            .ok_or_else(|| ApiError::Unauthorized("log in or send an API token".into()))?;
        let digest = crate::auth::secret_digest(&session);
        let record = store
            .session(&digest)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("the session has expired; log in again".into()))?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let expected = record.csrf_token.as_bytes();
            if sent.is_empty() || !bool::from(subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), expected)) {
                return Err(ApiError::Forbidden(format!("missing or wrong {CSRF_HEADER} header")));
            }
        }
        Ok(Principal {
            agent_id: record.agent.id,
            role: record.agent.role,
            actor: format!("agent:{}", record.agent.id),
            csrf_token: Some(record.csrf_token),
            scope: scope_of(state, record.agent.id, record.agent.role).await?,
            session: Some(digest),
        })
    }
}

/// Supervisors and admins see every inbox; an agent (or an agent-role token) the agent's own.
async fn scope_of(state: &AppState, agent: AgentId, role: Role) -> Result<Scope, ApiError> {
    if role.at_least(Role::Supervisor) {
        return Ok(Scope::All);
    }
    let inboxes = state.hub.store.agent_inbox_ids(agent).await?;
    Ok(Scope::Inboxes(std::sync::Arc::new(inboxes.into_iter().collect())))
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value().to_owned())
}

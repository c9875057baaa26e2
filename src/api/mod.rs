//! The HTTP edge: routes under `/api/v1`, one error type mapped to JSON responses, and
//! extractors that turn bad input into precise 4xx errors naming the field.

mod accounts;
mod agents;
mod attachments;
mod automation;
mod calls;
mod chat;
mod cluster;
mod contacts;
mod conversations;
mod flood;
mod inbox;
mod interactions;
mod ops;
mod reports;
mod search;
mod visitors;

pub use flood::ChatLimits;
pub use visitors::VisitorRoutes;
mod web;
mod webhooks;
mod ws;

use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::LoginLimiter;
use crate::hub::Hub;
use crate::ingest::IngestError;
use crate::search::SearchError;
use crate::store::StoreError;

/// What every handler can reach: cloned for every request (and by the middleware), so one
/// pointer rather than the hub's dozen (dropping the cloned fields alone was about 1 % of the
/// HTTP workers' samples in a profile of the webhook benchmark).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    pub hub: Hub,
    pub limiter: Arc<LoginLimiter>,
    /// Web chat's flood limits on this node.
    pub chat_limits: Arc<ChatLimits>,
    /// Routes chat events to this node's visitor sockets.
    pub visitors: Arc<VisitorRoutes>,
    /// The agent consoles open on this node, for presence.
    pub desks: Arc<crate::presence::Desks>,
    /// The address this node's listener is bound to (the configured port may be 0).
    pub local_addr: Option<std::net::SocketAddr>,
    /// Turns true when the node starts shutting down: open sockets close with "going away".
    pub closing: tokio::sync::watch::Receiver<bool>,
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let max_body = state.hub.settings.server.max_body_bytes;
    let api = Router::new()
        .merge(agents::router())
        .merge(accounts::router())
        .merge(contacts::router())
        .merge(automation::router())
        .merge(cluster::router())
        .merge(conversations::router())
        .merge(inbox::router())
        .merge(reports::router())
        .merge(interactions::router())
        .merge(search::router())
        .merge(calls::router())
        .merge(attachments::router())
        .merge(ws::router())
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) });
    Router::new()
        .nest("/api/v1", api)
        .merge(ops::router())
        .merge(webhooks::router())
        .merge(chat::router())
        .merge(web::router())
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limit_headers))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::Internal("the request handler panicked".into()).into_response()
        }))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Refuses a request with more headers than `limits.request_headers` (431).
async fn limit_headers(State(state): State<AppState>, request: Request, next: axum::middleware::Next) -> Response {
    let limit = state.hub.settings.limits.request_headers;
    if request.headers().len() > limit {
        return ApiError::HeadersTooLarge(format!("a request may carry at most {limit} headers")).into_response();
    }
    next.run(request).await
}

/// Every error an API call can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Invalid { field: Option<String>, message: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    HeadersTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many attempts; try again later")]
    TooManyRequests,
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A bad value in a named field.
    pub fn field(field: &str, message: impl std::fmt::Display) -> Self {
        Self::Invalid {
            field: Some(field.to_owned()),
            message: format!("{field}: {message}"),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::HeadersTooLarge(_) => (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "too_many_headers"),
            Self::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Self::TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let field = match &self {
            Self::Invalid { field, .. } => field.as_deref(),
            _ => None,
        };
        (
            status,
            Json(ErrorBody {
                error: ErrorDetail { code, message, field },
            }),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            StoreError::Conflict(why) => Self::Conflict(why),
            StoreError::Invalid { field, reason } => Self::Invalid {
                message: format!("{field}: {reason}"),
                field: Some(field),
            },
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::UnknownAccount => Self::field("channel_account_id", "no such channel account"),
            e @ IngestError::ChannelMismatch { .. } => Self::field("channel_account_id", e),
            e @ IngestError::ExternalId => Self::field("external_id", e.to_string().trim_start_matches("external_id ")),
            e @ IngestError::Stopped => Self::Internal(e.to_string()),
            IngestError::Store(e) => e.into(),
        }
    }
}

impl From<crate::reply::WriteError> for ApiError {
    fn from(e: crate::reply::WriteError) -> Self {
        match e {
            crate::reply::WriteError::Invalid(e) => Self::field(&e.field, e.reason),
            crate::reply::WriteError::Store(e) => e.into(),
        }
    }
}

impl From<crate::channels::SettingsError> for ApiError {
    fn from(e: crate::channels::SettingsError) -> Self {
        Self::field(&e.field, e.reason)
    }
}

impl From<SearchError> for ApiError {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::Query(q) => Self::field("q", q),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// A JSON request body. Unlike `axum::Json`, every failure is an [`ApiError`] that names the
/// offending field (`contact.phone: invalid type: integer, expected a string`).
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as application/json".into(),
            ));
        }
        let bytes = bytes::Bytes::from_request(req, state).await.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(_) => {
                ApiError::TooLarge("the request body is larger than the configured limit".into())
            }
            other => ApiError::Invalid {
                field: None,
                message: other.body_text(),
            },
        })?;
        from_json(&bytes).map(Body)
    }
}

/// Decodes a JSON document; errors name the offending field.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path == "." || path.is_empty() {
            ApiError::Invalid {
                field: None,
                message: format!("invalid JSON body: {inner}"),
            }
        } else {
            ApiError::field(&path, inner)
        }
    })
}

/// Query-string parameters, with errors as [`ApiError`].
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|e: QueryRejection| ApiError::Invalid {
                field: None,
                message: e.body_text(),
            })
    }
}

/// Parses a path or query id, naming the parameter when it is not a UUID.
pub fn parse_id<T: std::str::FromStr>(name: &str, raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::field(name, "not a valid id"))
}

//! `GET /attachments/{sha256}`: an attachment's bytes, always as a download (never rendered
//! inline by the browser, so a hostile HTML or SVG attachment cannot run in the hub's origin).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{ApiError, AppState};
use crate::auth::Principal;

pub fn router() -> Router<AppState> {
    Router::new().route("/attachments/{sha256}", get(download))
}

async fn download(
    State(state): State<AppState>,
    p: Principal,
    Path(sha256): Path<String>,
) -> Result<Response, ApiError> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::field("sha256", "a hex SHA-256"));
    }
    let sha256 = sha256.to_ascii_lowercase();
    if !state
        .hub
        .store
        .blob_visible(&sha256, p.scope.accounts().as_deref())
        .await?
    {
        return Err(ApiError::NotFound("no such attachment".into()));
    }
    let blob = state
        .hub
        .store
        .blob(&sha256.to_ascii_lowercase())
        .await?
        .ok_or_else(|| ApiError::NotFound("no such attachment".into()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::HeaderName::from_static("x-original-content-type"),
                token(&blob.content_type),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", &sha256[..16]),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            // Should a browser render it anyway: no script, no fetch, a unique origin.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_owned(),
            ),
        ],
        blob.data,
    )
        .into_response())
}

/// A MIME type reduced to the characters a header token may hold.
fn token(content_type: &str) -> String {
    content_type
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-/".contains(*c))
        .collect()
}

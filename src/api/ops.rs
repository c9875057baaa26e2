//! Operations endpoints, outside `/api/v1` and without authentication: liveness, readiness
//! and Prometheus metrics.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the store answers; reports how far the search index has caught up.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store_seq = match state.hub.store.last_seq().await {
        Ok(seq) => seq,
        Err(error) => {
            tracing::warn!(%error, "readiness check: store unreachable");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"ready": false, "store": "unreachable"})),
            );
        }
    };
    let index_seq = state.hub.search.watermark();
    (
        StatusCode::OK,
        Json(serde_json::json!({
            "ready": true,
            "node": state.hub.node.to_string(),
            "store_seq": store_seq,
            "index_seq": index_seq,
        })),
    )
}

async fn metrics() -> impl IntoResponse {
    let body = crate::telemetry::prometheus().map(|h| h.render()).unwrap_or_default();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

//! `GET /api/v1/cluster` (admin): which node answered, and which node holds each lease, for
//! operators running several nodes.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::domain::Role;

pub fn router() -> Router<AppState> {
    Router::new().route("/cluster", get(cluster))
}

async fn cluster(State(state): State<AppState>, p: Principal) -> Result<Json<Value>, ApiError> {
    p.require(Role::Admin)?;
    let leases = state.hub.store.leases().await?;
    Ok(Json(json!({"node": state.hub.node.to_string(), "leases": leases})))
}

//! Channel accounts (inboxes): created by admins, listed for everyone.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, AppState, Body};
use crate::auth::Principal;
use crate::domain::*;
use crate::store::NewChannelAccount;

pub fn router() -> Router<AppState> {
    Router::new().route("/channel-accounts", get(list).post(create))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAccount {
    kind: ChannelKind,
    name: String,
    #[serde(default)]
    settings: serde_json::Map<String, serde_json::Value>,
    /// The provider's secret (Twilio's auth token); a random signing secret when absent.
    secret: Option<String>,
}

/// Creates an account; the response carries its signing secret, shown this once.
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Body(body): Body<CreateAccount>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    principal.require(Role::Admin)?;
    let name = body.name.trim().to_owned();
    if name.is_empty() {
        return Err(ApiError::field("name", "must not be empty"));
    }
    let settings = serde_json::Value::Object(body.settings);
    crate::channels::check_settings(body.kind, &settings)?;
    if body.secret.as_ref().is_some_and(|s| s.trim().len() < 8) {
        return Err(ApiError::field("secret", "must be at least 8 characters"));
    }
    let account = state
        .hub
        .store
        .create_channel_account(NewChannelAccount {
            kind: body.kind,
            name,
            settings,
            secret: body.secret,
        })
        .await?;
    let mut json = serde_json::to_value(&account).map_err(|e| ApiError::Internal(e.to_string()))?;
    json["secret"] = serde_json::Value::String(account.secret.clone());
    Ok((StatusCode::CREATED, Json(json)))
}

async fn list(State(state): State<AppState>, principal: Principal) -> Result<Json<Vec<ChannelAccount>>, ApiError> {
    let mut accounts = state.hub.store.channel_accounts().await?;
    accounts.retain(|a| principal.scope.allows(a.id));
    Ok(Json(accounts))
}

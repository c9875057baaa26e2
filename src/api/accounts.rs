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
    if let Some(url) = body.settings.get("webhook_url") {
        let ok = url
            .as_str()
            .and_then(|u| reqwest::Url::parse(u).ok())
            .is_some_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            return Err(ApiError::field(
                "settings.webhook_url",
                "must be an http or https URL",
            ));
        }
    }
    let account = state
        .hub
        .store
        .create_channel_account(NewChannelAccount {
            kind: body.kind,
            name,
            settings: serde_json::Value::Object(body.settings),
        })
        .await?;
    let mut json = serde_json::to_value(&account).map_err(|e| ApiError::Internal(e.to_string()))?;
    json["secret"] = serde_json::Value::String(account.secret.clone());
    Ok((StatusCode::CREATED, Json(json)))
}

async fn list(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<Json<Vec<ChannelAccount>>, ApiError> {
    Ok(Json(state.hub.store.channel_accounts().await?))
}

//! Provider webhooks, outside `/api/v1`: authenticated by the provider's signature rather than a
//! session, and answered in the provider's own format (TwiML for Twilio).
//!
//! A request whose signature fails is refused with 403 before anything is parsed or stored. The
//! signed URL is rebuilt from `server.public_url` and the path and query the request arrived
//! with, since the hub usually sits behind a proxy that changes scheme, host or port.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use switchboard_connectors::sms::generic::GenericSms;
use switchboard_connectors::sms::twilio::{self, SignedBody, TwilioError};
use switchboard_connectors::webhook;

use super::{ApiError, AppState, parse_id};
use crate::channels::{SmsProvider, SmsSettings};
use crate::domain::*;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/sms/{account}/twilio", post(twilio_inbound))
        .route("/webhooks/sms/{account}/twilio/status", post(twilio_status))
        .route("/webhooks/sms/{account}/generic", post(generic_inbound))
}

/// How far a generic webhook's timestamp may be from our clock.
const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(300);

/// The SMS account a webhook path names, with its settings, if it uses `provider`.
async fn sms_account(
    state: &AppState,
    raw_id: &str,
    provider: SmsProvider,
) -> Result<(ChannelAccount, SmsSettings), ApiError> {
    let id: ChannelAccountId = parse_id("account", raw_id)?;
    let not_found = || ApiError::NotFound(format!("no {provider:?} SMS account {id}").to_lowercase());
    let account = match state.hub.store.channel_account(id).await {
        Err(crate::store::StoreError::NotFound(_)) => return Err(not_found()),
        other => other?,
    };
    match SmsSettings::of(&account) {
        Ok(settings) if account.kind == ChannelKind::Sms && settings.provider == provider => Ok((account, settings)),
        _ => Err(not_found()),
    }
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Verifies a Twilio request and returns its parameters (form fields, or a flat JSON object).
fn verified_twilio_params(
    state: &AppState,
    account: &ChannelAccount,
    uri: &OriginalUri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Vec<(String, String)>, ApiError> {
    let url = format!(
        "{}{}",
        state.hub.settings.server.public_url.trim_end_matches('/'),
        uri.0.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let signature = headers.get(twilio::SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let refused = |e: TwilioError| {
        tracing::warn!(account = %account.id, error = %e, "twilio webhook refused");
        ApiError::Forbidden(e.to_string())
    };
    match content_type(headers).as_str() {
        "application/x-www-form-urlencoded" => {
            let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
            twilio::validate(&account.secret, &url, SignedBody::Form(&params), signature).map_err(refused)?;
            Ok(params)
        }
        "application/json" => {
            twilio::validate(&account.secret, &url, SignedBody::Raw(body), signature).map_err(refused)?;
            let object: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(body).map_err(|e| ApiError::Invalid {
                    field: None,
                    message: format!("invalid JSON body: {e}"),
                })?;
            Ok(object
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect())
        }
        _ => Err(ApiError::UnsupportedMediaType(
            "Twilio webhooks are application/x-www-form-urlencoded or application/json".into(),
        )),
    }
}

fn twilio_invalid(e: TwilioError) -> ApiError {
    match e {
        TwilioError::Missing(field) => ApiError::field(field, "is required"),
        TwilioError::Invalid { field, reason } => ApiError::field(field, reason),
        other => ApiError::Forbidden(other.to_string()),
    }
}

fn twiml(reply: Option<&str>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        twilio::twiml(reply),
    )
        .into_response()
}

/// An inbound SMS or MMS from Twilio: verified, stored once, answered with TwiML.
async fn twilio_inbound(
    State(state): State<AppState>,
    Path(account): Path<String>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (account, settings) = sms_account(&state, &account, SmsProvider::Twilio).await?;
    let params = verified_twilio_params(&state, &account, &uri, &headers, &body)?;
    let envelope = twilio::inbound_envelope(&params, account.id.0, state.hub.settings.contacts.default_region, now())
        .map_err(twilio_invalid)?;
    let outcome = state.hub.ingest(&envelope).await?;
    if let Some(text) = &settings.auto_reply {
        // Recorded in the conversation like any message; a retried webhook gets the same answer
        // and stores it once, keyed by the inbound message's id.
        let mut auto = envelope.clone();
        auto.external_id = format!("{}:auto-reply", envelope.external_id);
        auto.direction = Direction::System;
        auto.content = switchboard_connectors::Content {
            subject: None,
            text: Some(text.clone()),
            html: None,
        };
        auto.attachments.clear();
        auto.occurred_at = outcome.interaction.occurred_at;
        state.hub.ingest(&auto).await?;
    }
    Ok(twiml(settings.auto_reply.as_deref()))
}

/// A status callback about one of our outbound messages: applied only if it moves the message
/// forward, so repeats and late arrivals change nothing.
async fn twilio_status(
    State(state): State<AppState>,
    Path(account): Path<String>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let (account, _) = sms_account(&state, &account, SmsProvider::Twilio).await?;
    let params = verified_twilio_params(&state, &account, &uri, &headers, &body)?;
    let callback = twilio::status_callback(&params).map_err(twilio_invalid)?;
    let applied = state
        .hub
        .store
        .record_receipt(
            account.id,
            &callback.message_sid,
            callback.state.as_str(),
            callback.state.rank(),
            callback.error_code.as_deref(),
        )
        .await?;
    tracing::info!(account = %account.id, sid = %callback.message_sid, status = callback.state.as_str(), applied, "sms status callback");
    Ok(StatusCode::NO_CONTENT)
}

/// An inbound SMS in the generic signed JSON format.
async fn generic_inbound(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let (account, _) = sms_account(&state, &account, SmsProvider::Generic).await?;
    if content_type(&headers) != "application/json" {
        return Err(ApiError::UnsupportedMediaType(
            "send the body as application/json".into(),
        ));
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let timestamp: i64 = header(webhook::TIMESTAMP_HEADER)
        .parse()
        .map_err(|_| ApiError::Forbidden(format!("missing or malformed {} header", webhook::TIMESTAMP_HEADER)))?;
    webhook::verify(
        account.secret.as_bytes(),
        timestamp,
        &body,
        header(webhook::SIGNATURE_HEADER),
        now().unix_timestamp(),
        TIMESTAMP_TOLERANCE,
    )
    .map_err(|e| ApiError::Forbidden(e.to_string()))?;
    let message: GenericSms = super::from_json(&body)?;
    let envelope = message
        .into_envelope(account.id.0, state.hub.settings.contacts.default_region, now())
        .map_err(
            |switchboard_connectors::sms::generic::GenericSmsError::Invalid { field, reason }| {
                ApiError::field(field, reason)
            },
        )?;
    let outcome = state.hub.ingest(&envelope).await?;
    let status = if outcome.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(serde_json::json!({"duplicate": outcome.duplicate, "interaction_id": outcome.interaction.id})),
    ))
}

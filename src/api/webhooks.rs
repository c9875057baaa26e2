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
use crate::voice::VoiceSettings;
use switchboard_connectors::voice::twilio::CallStatus;
use switchboard_connectors::voice::{CallError, CallRecord};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/sms/{account}/twilio", post(twilio_inbound))
        .route("/webhooks/sms/{account}/twilio/status", post(twilio_status))
        .route("/webhooks/sms/{account}/generic", post(generic_inbound))
        .route("/webhooks/voice/{account}/freeswitch", post(freeswitch_cdr))
        .route("/webhooks/voice/{account}/twilio", post(twilio_call_status))
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
    let changed = state
        .hub
        .apply_receipt(
            account.id,
            &callback.message_sid,
            callback.state.as_str(),
            callback.state.rank(),
            callback.error_code.as_deref(),
        )
        .await?;
    tracing::info!(account = %account.id, sid = %callback.message_sid, status = callback.state.as_str(), applied = changed.is_some(), "sms status callback");
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

/// The voice account a webhook path names.
async fn voice_account(state: &AppState, raw_id: &str) -> Result<(ChannelAccount, VoiceSettings), ApiError> {
    let id: ChannelAccountId = parse_id("account", raw_id)?;
    let account = match state.hub.store.channel_account(id).await {
        Err(crate::store::StoreError::NotFound(_)) => return Err(ApiError::NotFound(format!("no voice account {id}"))),
        other => other?,
    };
    if account.kind != ChannelKind::Voice {
        return Err(ApiError::NotFound(format!("no voice account {id}")));
    }
    let settings = VoiceSettings::of(&account)?;
    Ok((account, settings))
}

/// Stores a finished call; a call between extensions is acknowledged and skipped.
async fn ingest_call(
    state: &AppState,
    account: &ChannelAccount,
    settings: &VoiceSettings,
    call: CallRecord,
) -> Result<Json<serde_json::Value>, ApiError> {
    match crate::voice::call_envelope(account, settings, state.hub.settings.contacts.default_region, call) {
        Ok(envelope) => {
            let outcome = state.hub.ingest(&envelope).await?;
            Ok(Json(
                serde_json::json!({"duplicate": outcome.duplicate, "interaction_id": outcome.interaction.id}),
            ))
        }
        Err(skip @ CallError::Internal { .. }) => Ok(Json(serde_json::json!({"skipped": skip.to_string()}))),
        Err(CallError::Number { number }) => {
            Err(ApiError::field("caller", format!("{number:?} is not a phone number")))
        }
        Err(CallError::Invalid(reason)) => Err(ApiError::Invalid {
            field: None,
            message: reason,
        }),
    }
}

/// A JSON CDR from FreeSWITCH's mod_json_cdr, authenticated with HTTP basic auth whose password
/// is the account's secret (the module's `cred` parameter). All three of the module's `encode`
/// settings are understood: raw JSON, `cdr=` URL-encoded, and `cdr=` base64.
async fn freeswitch_cdr(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (account, settings) = voice_account(&state, &account).await?;
    if !basic_auth_password(&headers)
        .is_some_and(|p| bool::from(subtle::ConstantTimeEq::ct_eq(p.as_bytes(), account.secret.as_bytes())))
    {
        let mut refused =
            ApiError::Unauthorized("basic auth with the account's secret as password".into()).into_response();
        refused.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Basic realm=\"switchboard\""),
        );
        return Ok(refused);
    }
    let json: Vec<u8> = match content_type(&headers).as_str() {
        "application/json" => body.to_vec(),
        "application/x-www-form-urlencoded" => form_field(&body, "cdr")?.into_bytes(),
        "application/x-www-form-base64-encoded" => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(form_field(&body, "cdr")?.trim())
                .map_err(|e| ApiError::field("cdr", format!("not base64: {e}")))?
        }
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "{other:?} is not one of mod_json_cdr's encodings"
            )));
        }
    };
    let call = switchboard_connectors::voice::freeswitch::parse(&json).map_err(|e| ApiError::Invalid {
        field: None,
        message: e.to_string(),
    })?;
    Ok(ingest_call(&state, &account, &settings, call).await?.into_response())
}

fn form_field(body: &[u8], name: &str) -> Result<String, ApiError> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| ApiError::field(name, "is required"))
}

fn basic_auth_password(headers: &HeaderMap) -> Option<String> {
    use base64::Engine as _;
    let encoded = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(_, password)| password.to_owned())
}

/// Twilio's call status callbacks, signed like its SMS webhooks with the account's secret as
/// the auth token. Progress reports are acknowledged; a finished call is stored once per CallSid.
async fn twilio_call_status(
    State(state): State<AppState>,
    Path(account): Path<String>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (account, settings) = voice_account(&state, &account).await?;
    let params = verified_twilio_params(&state, &account, &uri, &headers, &body)?;
    match switchboard_connectors::voice::twilio::status_callback(&params, now()).map_err(twilio_invalid)? {
        CallStatus::InProgress { .. } => Ok(StatusCode::NO_CONTENT.into_response()),
        CallStatus::Finished(call) => Ok(ingest_call(&state, &account, &settings, call).await?.into_response()),
    }
}

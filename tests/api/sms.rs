//! The SMS channel: Twilio webhooks verified and stored once, status callbacks, replies through
//! the provider's REST API (a local fake speaking Twilio's documented wire format).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_connectors::sms::twilio;
use switchboard_connectors::webhook;

use crate::fake_twilio::{ACCOUNT_SID, AUTH_TOKEN, FakeTwilio};
use crate::helpers::*;
use crate::on_both_stores;

on_both_stores!(
    a_signed_inbound_sms_lands_in_the_timeline_and_inbox_and_retries_are_stored_once,
    a_tampered_body_or_a_wrong_token_is_refused_and_stores_nothing,
    a_reply_reaches_the_provider_and_status_callbacks_move_it_forward_only,
    provider_errors_are_retried_or_recorded_as_the_provider_said,
    a_number_written_three_ways_is_one_contact_across_sms_and_calls,
    the_generic_json_format_is_verified_and_deduplicated,
    an_auto_reply_is_answered_in_twiml_and_recorded_once,
    bad_sms_webhooks_get_precise_errors,
);

/// The hub sits behind a proxy: providers call this public URL, not the test's socket.
pub(crate) const PUBLIC_URL: &str = "https://hub.example.com";

async fn sms_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| s.server.public_url = PUBLIC_URL.into()).await
}

pub(crate) async fn twilio_account(app: &TestApp, api_base_url: &str, extra: Value) -> String {
    let mut settings =
        json!({"provider": "twilio", "account_sid": ACCOUNT_SID, "from": "+34910000000", "api_base_url": api_base_url});
    if let (Some(s), Some(extra)) = (settings.as_object_mut(), extra.as_object()) {
        s.extend(extra.clone());
    }
    app.account(json!({"kind": "sms", "name": "sms", "settings": settings, "secret": AUTH_TOKEN}))
        .await
}

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Posts a form to the hub as Twilio would: signed over the public URL with `token`.
pub(crate) async fn twilio_post(
    app: &TestApp,
    path: &str,
    params: &[(String, String)],
    token: &str,
) -> (StatusCode, String) {
    let signature = twilio::signature(token, &format!("{PUBLIC_URL}{path}"), params);
    let response = app
        .http
        .post(format!("{}{path}", app.base))
        .header(twilio::SIGNATURE_HEADER, signature)
        .form(params)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

pub(crate) fn inbound(sid: &str, from: &str, body: &str) -> Vec<(String, String)> {
    form(&[
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", from),
        ("To", "+34910000000"),
        ("Body", body),
        ("NumMedia", "0"),
    ])
}

async fn a_signed_inbound_sms_lands_in_the_timeline_and_inbox_and_retries_are_stored_once(backend: Backend) {
    let app = sms_app(backend).await;
    let account = twilio_account(&app, "https://api.twilio.com", json!({})).await;
    let path = format!("/webhooks/sms/{account}/twilio");
    let params = inbound(
        "SM00000000000000000000000000000001",
        "+34 600 12 34 56",
        "¿Podéis llamarme?",
    );

    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(twilio_post(&app, &path, &params, AUTH_TOKEN).await);
    }

    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body, r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#);
    }
    let (status, found) = app.get("/api/v1/contacts/lookup?phone=600123456").await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let items = found["interactions"].as_array().unwrap();
    assert_eq!(items.len(), 1, "three deliveries, one message: {found}");
    assert_eq!(items[0]["channel"], "sms");
    assert_eq!(items[0]["text"], "¿Podéis llamarme?");
    assert_eq!(items[0]["external_id"], "SM00000000000000000000000000000001");
    let (_, inbox) = app
        .get(&format!(
            "/api/v1/conversations?channel_account_id={account}&status=open"
        ))
        .await;
    assert_eq!(inbox.as_array().unwrap().len(), 1, "{inbox}");
    assert_eq!(inbox[0]["channel"], "sms");
}

async fn a_tampered_body_or_a_wrong_token_is_refused_and_stores_nothing(backend: Backend) {
    let app = sms_app(backend).await;
    let account = twilio_account(&app, "https://api.twilio.com", json!({})).await;
    let path = format!("/webhooks/sms/{account}/twilio");
    let params = inbound("SM2", "+34600123456", "hola");

    let (wrong_token, _) = twilio_post(&app, &path, &params, "not-the-token").await;
    let signature = twilio::signature(AUTH_TOKEN, &format!("{PUBLIC_URL}{path}"), &params);
    let mut tampered = params.clone();
    tampered[4].1 = "hola, soy otro".into();
    let tampered_answer = app
        .http
        .post(format!("{}{path}", app.base))
        .header(twilio::SIGNATURE_HEADER, &signature)
        .form(&tampered)
        .send()
        .await
        .unwrap();
    let unsigned = app
        .http
        .post(format!("{}{path}", app.base))
        .form(&params)
        .send()
        .await
        .unwrap();

    assert_eq!(wrong_token, StatusCode::FORBIDDEN);
    assert_eq!(tampered_answer.status(), StatusCode::FORBIDDEN);
    assert_eq!(unsigned.status(), StatusCode::FORBIDDEN);
    let (status, _) = app.get("/api/v1/contacts/lookup?phone=600123456").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");
    let (_, contacts) = app.get("/api/v1/contacts").await;
    assert_eq!(contacts.as_array().unwrap().len(), 0);
}

async fn delivery_of(app: &TestApp, interaction: &str, until: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (_, body) = app.get(&format!("/api/v1/interactions/{interaction}")).await;
        if until(&body["delivery"]) || started.elapsed() > Duration::from_secs(10) {
            return body["delivery"].clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Opens an SMS conversation and returns its id.
async fn sms_conversation(app: &TestApp, account: &str) -> String {
    let (status, body) = twilio_post(
        app,
        &format!("/webhooks/sms/{account}/twilio"),
        &inbound("SM1", "600123456", "Hola"),
        AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, found) = app.get("/api/v1/contacts/lookup?phone=600123456").await;
    found["interactions"][0]["conversation_id"].as_str().unwrap().to_owned()
}

async fn a_reply_reaches_the_provider_and_status_callbacks_move_it_forward_only(backend: Backend) {
    let app = sms_app(backend).await;
    let fake = FakeTwilio::start().await;
    let account = twilio_account(&app, &fake.base_url, json!({})).await;
    let conversation = sms_conversation(&app, &account).await;

    let (status, reply) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/replies"),
            json!({"text": "Le llamamos en 5 minutos"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let id = reply["id"].as_str().unwrap().to_owned();
    let accepted = delivery_of(&app, &id, |d| d["status"] == "sent").await;

    assert_eq!(accepted["status"], "sent", "{accepted}");
    let sent = fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(accepted["peer_id"], sent[0].sid.as_str());
    assert_eq!(sent[0].field("To"), Some("+34600123456"));
    assert_eq!(sent[0].field("From"), Some("+34910000000"));
    assert_eq!(sent[0].field("Body"), Some("Le llamamos en 5 minutos"));
    let callback_path = format!("/webhooks/sms/{account}/twilio/status");
    assert_eq!(
        sent[0].field("StatusCallback"),
        Some(format!("{PUBLIC_URL}{callback_path}").as_str())
    );

    let callback = |status: &str| {
        form(&[
            ("MessageSid", &sent[0].sid),
            ("MessageStatus", status),
            ("AccountSid", ACCOUNT_SID),
        ])
    };
    for status in ["sent", "delivered"] {
        let (code, body) = twilio_post(&app, &callback_path, &callback(status), AUTH_TOKEN).await;
        assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    }
    let delivered = delivery_of(&app, &id, |d| d["provider_status"] == "delivered").await;
    assert_eq!(delivered["provider_status"], "delivered", "{delivered}");

    let (code, _) = twilio_post(&app, &callback_path, &callback("sent"), AUTH_TOKEN).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "a late callback is accepted");
    let (_, after) = app.get(&format!("/api/v1/interactions/{id}")).await;
    assert_eq!(
        after["delivery"]["provider_status"], "delivered",
        "a late 'sent' does not move it back"
    );
    let (code, _) = twilio_post(&app, &callback_path, &callback("delivered"), "wrong-token").await;
    assert_eq!(
        code,
        StatusCode::FORBIDDEN,
        "callbacks are verified like inbound webhooks"
    );

    let (status, long) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/replies"),
            json!({"text": "x".repeat(1601)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{long}");
    assert_eq!(long["error"]["field"], "text");
}

async fn provider_errors_are_retried_or_recorded_as_the_provider_said(backend: Backend) {
    let app = sms_app(backend).await;
    let fake = FakeTwilio::start().await;
    let account = twilio_account(&app, &fake.base_url, json!({})).await;
    let conversation = sms_conversation(&app, &account).await;

    fake.fail_next(429, 20429, "Too Many Requests");
    fake.fail_next(503, 20500, "Service Unavailable");
    let (_, retried) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/replies"),
            json!({"text": "Reintento"}),
        )
        .await;
    let retried = delivery_of(&app, retried["id"].as_str().unwrap(), |d| d["status"] == "sent").await;
    assert_eq!(retried["status"], "sent", "{retried}");
    assert_eq!(retried["attempts"], 3, "429 and 503 were retried");
    assert_eq!(fake.requests(), 3);

    fake.fail_next(400, 21610, "Attempt to send to unsubscribed recipient");
    let (_, refused) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/replies"),
            json!({"text": "No llegará"}),
        )
        .await;
    let refused = delivery_of(&app, refused["id"].as_str().unwrap(), |d| d["status"] == "failed").await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert_eq!(refused["attempts"], 1, "a 4xx is not retried");
    assert!(
        refused["last_error"].as_str().unwrap().contains("twilio error 21610"),
        "{refused}"
    );
}

async fn a_number_written_three_ways_is_one_contact_across_sms_and_calls(backend: Backend) {
    let app = sms_app(backend).await;
    let account = twilio_account(&app, "https://api.twilio.com", json!({})).await;
    let path = format!("/webhooks/sms/{account}/twilio");
    for (n, spelling) in ["+34 600 12 34 56", "0034600123456", "600123456"].iter().enumerate() {
        let (status, body) = twilio_post(
            &app,
            &path,
            &inbound(&format!("SM{n}"), spelling, &format!("mensaje {n}")),
            AUTH_TOKEN,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let calls = app.api_account("pbx").await;
    app.push(json!({"channel_account_id": calls, "external_id": "call-1", "contact": {"phone": "+34600123456"}, "text": "Llamada"})).await;

    let (_, contacts) = app.get("/api/v1/contacts").await;
    assert_eq!(contacts.as_array().unwrap().len(), 1, "{contacts}");
    let (_, timeline) = app
        .get(&format!(
            "/api/v1/contacts/{}/timeline",
            contacts[0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(timeline["items"].as_array().unwrap().len(), 4);
}

async fn the_generic_json_format_is_verified_and_deduplicated(backend: Backend) {
    let app = sms_app(backend).await;
    let (status, account) = app
        .post(
            "/api/v1/channel-accounts",
            json!({"kind": "sms", "name": "gateway", "settings": {"provider": "generic"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    let secret = account["secret"].as_str().unwrap().to_owned();
    let url = format!("{}/webhooks/sms/{}/generic", app.base, account["id"].as_str().unwrap());
    let send = |body: Value, key: String| {
        let http = app.http.clone();
        let url = url.clone();
        async move {
            let raw = serde_json::to_vec(&body).unwrap();
            let ts = time::OffsetDateTime::now_utc().unix_timestamp();
            let response = http
                .post(url)
                .header("content-type", "application/json")
                .header(webhook::TIMESTAMP_HEADER, ts.to_string())
                .header(webhook::SIGNATURE_HEADER, webhook::sign(key.as_bytes(), ts, &raw))
                .body(raw)
                .send()
                .await
                .unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let message = json!({"message_id": "gw-1", "from": "600 12 34 56", "to": "+34910000000", "text": "Por pasarela"});

    let first = send(message.clone(), secret.clone()).await;
    let again = send(message.clone(), secret.clone()).await;
    let forged = send(
        json!({"message_id": "gw-2", "from": "600123456", "text": "falso"}),
        "wrong-secret".into(),
    )
    .await;
    let bad_number = send(json!({"message_id": "gw-3", "from": "12", "text": "x"}), secret.clone()).await;

    assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
    assert_eq!(again.0, StatusCode::OK, "{}", again.1);
    assert_eq!(forged.0, StatusCode::FORBIDDEN);
    assert_eq!(bad_number.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_number.1.contains(r#""field":"from""#), "{}", bad_number.1);
    let (_, found) = app.get("/api/v1/contacts/lookup?phone=600123456").await;
    assert_eq!(found["interactions"].as_array().unwrap().len(), 1, "{found}");
}

async fn an_auto_reply_is_answered_in_twiml_and_recorded_once(backend: Backend) {
    let app = sms_app(backend).await;
    let account = twilio_account(
        &app,
        "https://api.twilio.com",
        json!({"auto_reply": "Gracias, le respondemos pronto & en breve"}),
    )
    .await;
    let path = format!("/webhooks/sms/{account}/twilio");
    let params = inbound("SM9", "600123456", "Hola");
    let first = twilio_post(&app, &path, &params, AUTH_TOKEN).await;
    let retry = twilio_post(&app, &path, &params, AUTH_TOKEN).await;

    assert_eq!(first, retry, "a retry gets the same answer");
    assert!(
        first
            .1
            .contains("<Message>Gracias, le respondemos pronto &amp; en breve</Message>"),
        "{}",
        first.1
    );
    let (_, found) = app.get("/api/v1/contacts/lookup?phone=600123456").await;
    let directions: Vec<&str> = found["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["direction"].as_str().unwrap())
        .collect();
    assert_eq!(directions.len(), 2, "{found}");
    assert!(directions.contains(&"system") && directions.contains(&"inbound"));
}

async fn bad_sms_webhooks_get_precise_errors(backend: Backend) {
    let app = sms_app(backend).await;
    let account = twilio_account(&app, "https://api.twilio.com", json!({})).await;
    let path = format!("/webhooks/sms/{account}/twilio");

    let (missing, body) = twilio_post(
        &app,
        &path,
        &form(&[("MessageSid", "SM5"), ("Body", "sin remitente")]),
        AUTH_TOKEN,
    )
    .await;
    assert_eq!(missing, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains(r#""field":"From""#), "{body}");
    let (impossible, body) = twilio_post(&app, &path, &inbound("SM6", "+34 12", "x"), AUTH_TOKEN).await;
    assert_eq!(impossible, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let wrong_type = app
        .http
        .post(format!("{}{path}", app.base))
        .header("content-type", "text/plain")
        .body("hola")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let unknown = app
        .http
        .post(format!("{}/webhooks/sms/{}/twilio", app.base, uuid::Uuid::now_v7()))
        .form(&inbound("SM7", "600123456", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let (status, bad_settings) = app
        .post("/api/v1/channel-accounts", json!({"kind": "sms", "name": "x", "settings": {"provider": "twilio", "account_sid": "nope", "from": "+34910000000"}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_settings["error"]["field"], "settings.account_sid");
    let (_, contacts) = app.get("/api/v1/contacts").await;
    assert_eq!(contacts.as_array().unwrap().len(), 0, "nothing was stored");
}

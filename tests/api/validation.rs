//! Bad input gets a precise 4xx naming the field, and nothing is written.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_stores;

on_both_stores!(
    bad_touchpoints_are_refused_with_the_field_named_and_nothing_written,
    an_oversized_body_is_refused
);

async fn bad_touchpoints_are_refused_with_the_field_named_and_nothing_written(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.api_account("api").await;
    let base = json!({"channel_account_id": account, "external_id": "v1", "contact": {"email": "v@example.com"}, "text": "hola"});
    let with = |path: &[&str], value: serde_json::Value| {
        let mut body = base.clone();
        let mut at = &mut body;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = value;
        body
    };
    let cases = [
        (with(&["colour"], json!("red")), "colour"),
        (with(&["contact", "phone"], json!("not a phone")), "contact"),
        (with(&["contact"], json!({"phone": "12"})), "contact.phone"),
        (with(&["contact"], json!({"email": "nope"})), "contact.email"),
        (with(&["text"], json!(5)), "text"),
        (with(&["occurred_at"], json!("yesterday")), "occurred_at"),
        (with(&["direction"], json!("sideways")), "direction"),
        (with(&["direction"], json!("note")), "direction"),
        (with(&["external_id"], json!("")), "external_id"),
        (with(&["channel_account_id"], json!("not-a-uuid")), "channel_account_id"),
    ];
    for (body, field) in cases {
        let (status, answer) = app.push(body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {answer}");
        assert_eq!(answer["error"]["field"], field, "{body} -> {answer}");
    }
    let not_json = app
        .http
        .post(format!("{}/api/v1/interactions", app.base))
        .bearer_auth(&app.token)
        .header("content-type", "text/plain")
        .body("hola")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (_, contacts) = app.get("/api/v1/contacts").await;
    assert_eq!(contacts.as_array().unwrap().len(), 0, "nothing was written");
}

async fn an_oversized_body_is_refused(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.server.max_body_bytes = 4096).await;
    let account = app.api_account("api").await;
    let (status, body) = app
        .push(json!({"channel_account_id": account, "external_id": "big", "contact": {"email": "big@example.com"}, "text": "x".repeat(10_000)}))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "too_large");
    let (_, contacts) = app.get("/api/v1/contacts").await;
    assert_eq!(contacts.as_array().unwrap().len(), 0);
}

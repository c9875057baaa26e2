//! Conversations: placement, lifecycle, assignment, replies through the outbox, notes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_connectors::webhook;

use crate::helpers::*;
use crate::on_both_stores;

on_both_stores!(
    a_reply_is_delivered_to_the_accounts_webhook_signed_and_recorded_as_sent,
    a_failing_webhook_is_retried_with_backoff_then_recorded_as_failed,
    a_note_stays_internal,
    a_resolved_conversation_reopens_on_a_new_inbound_message,
    conversations_are_assigned_and_listed_by_assignee_and_status,
);

/// Requests a receiver got: headers and raw body.
type Deliveries = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A local HTTP receiver standing in for an integration's webhook endpoint.
struct Receiver {
    url: String,
    deliveries: Deliveries,
}

async fn receiver(status: AxumStatus) -> Receiver {
    let deliveries: Deliveries = Arc::default();
    let store = deliveries.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                store.lock().unwrap().push((headers, body.to_vec()));
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, deliveries }
}

/// Opens a conversation by pushing an inbound touchpoint; returns (account secret, conversation id).
async fn conversation_on(app: &TestApp, account_body: Value) -> (String, String, String) {
    let (status, account) = app.post("/api/v1/channel-accounts", account_body).await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    let account_id = account["id"].as_str().unwrap().to_owned();
    let (_, pushed) = app
        .push(
            json!({"channel_account_id": account_id, "external_id": "in-1", "contact": {"email": "cliente@example.es"},
                     "subject": "Pedido 123", "text": "¿Dónde está mi pedido?"}),
        )
        .await;
    (
        account["secret"].as_str().unwrap().to_owned(),
        pushed["interaction"]["conversation_id"].as_str().unwrap().to_owned(),
        account_id,
    )
}

async fn wait_for_delivery_status(app: &TestApp, interaction: &str, want: &str) -> Value {
    let started = Instant::now();
    loop {
        let (_, body) = app.get(&format!("/api/v1/interactions/{interaction}")).await;
        if body["delivery"]["status"] == want || started.elapsed() > Duration::from_secs(10) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn a_reply_is_delivered_to_the_accounts_webhook_signed_and_recorded_as_sent(backend: Backend) {
    let app = spawn_app(backend).await;
    let hook = receiver(AxumStatus::OK).await;
    let (secret, conversation, _) = conversation_on(
        &app,
        json!({"kind": "api", "name": "shop", "settings": {"webhook_url": hook.url}}),
    )
    .await;

    let (status, reply) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/replies"),
            json!({"text": "Sale mañana"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let id = reply["id"].as_str().unwrap();
    let read = wait_for_delivery_status(&app, id, "sent").await;

    assert_eq!(read["delivery"]["status"], "sent", "{read}");
    let deliveries = hook.deliveries.lock().unwrap().clone();
    assert_eq!(deliveries.len(), 1);
    let (headers, body) = &deliveries[0];
    let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(
        header(webhook::DELIVERY_HEADER),
        id,
        "the delivery id is the interaction id, to dedupe on"
    );
    let timestamp: i64 = header(webhook::TIMESTAMP_HEADER).parse().unwrap();
    let verified = webhook::verify(
        secret.as_bytes(),
        timestamp,
        body,
        &header(webhook::SIGNATURE_HEADER),
        timestamp,
        Duration::from_secs(5),
    );
    assert_eq!(verified, Ok(()));
    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(payload["to"], "email:cliente@example.es");
    assert_eq!(payload["content"]["text"], "Sale mañana");
    assert_eq!(payload["content"]["subject"], "Re: Pedido 123");
    assert_eq!(reply["direction"], "outbound");
}

async fn a_failing_webhook_is_retried_with_backoff_then_recorded_as_failed(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.outbox.max_attempts = 3).await;
    let hook = receiver(AxumStatus::SERVICE_UNAVAILABLE).await;
    let (_, conversation, _) = conversation_on(
        &app,
        json!({"kind": "api", "name": "down", "settings": {"webhook_url": hook.url}}),
    )
    .await;

    let (_, reply) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/replies"),
            json!({"text": "¿Sigue ahí?"}),
        )
        .await;
    let read = wait_for_delivery_status(&app, reply["id"].as_str().unwrap(), "failed").await;

    assert_eq!(read["delivery"]["status"], "failed", "{read}");
    assert_eq!(read["delivery"]["attempts"], 3);
    assert!(
        read["delivery"]["last_error"].as_str().unwrap().contains("503"),
        "{read}"
    );
    assert_eq!(hook.deliveries.lock().unwrap().len(), 3, "one request per attempt");
}

async fn a_note_stays_internal(backend: Backend) {
    let app = spawn_app(backend).await;
    let hook = receiver(AxumStatus::OK).await;
    let (_, conversation, _) = conversation_on(
        &app,
        json!({"kind": "api", "name": "shop", "settings": {"webhook_url": hook.url}}),
    )
    .await;

    let (status, note) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/notes"),
            json!({"text": "Cliente VIP, revisar envío"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(note["direction"], "note");
    let (_, read) = app
        .get(&format!("/api/v1/interactions/{}", note["id"].as_str().unwrap()))
        .await;
    assert_eq!(read["delivery"], Value::Null, "a note is never queued");
    assert!(hook.deliveries.lock().unwrap().is_empty());
    let (_, thread) = app.get(&format!("/api/v1/conversations/{conversation}")).await;
    assert_eq!(thread["interactions"].as_array().unwrap().len(), 2);
}

async fn a_resolved_conversation_reopens_on_a_new_inbound_message(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, conversation, account) = conversation_on(&app, json!({"kind": "api", "name": "api"})).await;

    let (status, resolved) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/status"),
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resolved["status"], "resolved");
    assert!(resolved["resolved_at"].is_string());
    let (_, again) = app
        .push(json!({"channel_account_id": account, "external_id": "in-2", "contact": {"email": "cliente@example.es"}, "text": "Sigue sin llegar"}))
        .await;

    assert_eq!(
        again["interaction"]["conversation_id"],
        conversation.as_str(),
        "the same conversation continues"
    );
    let (_, read) = app.get(&format!("/api/v1/conversations/{conversation}")).await;
    assert_eq!(read["conversation"]["status"], "open");
    assert_eq!(read["conversation"]["resolved_at"], Value::Null);
    let (status, bad) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/status"),
            json!({"status": "closed"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad["error"]["field"], "status", "{bad}");
}

async fn conversations_are_assigned_and_listed_by_assignee_and_status(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, conversation, _) = conversation_on(&app, json!({"kind": "api", "name": "api"})).await;
    let (_, agent) = app
        .post(
            "/api/v1/agents",
            json!({"email": "leo@example.com", "name": "Leo", "role": "agent", "password": "leo-password-1"}),
        )
        .await;
    app.member_of_all(agent["id"].as_str().unwrap()).await;
    let listed = |q: &'static str| {
        let app = &app;
        async move {
            let (status, body) = app.get(&format!("/api/v1/conversations?{q}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body.as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed("assignee=unassigned").await, vec![conversation.clone()]);

    let (status, assigned) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/assign"),
            json!({"assignee_id": agent["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{assigned}");

    assert_eq!(assigned["assignee_id"], agent["id"]);
    assert!(listed("assignee=unassigned").await.is_empty());
    let leo = app.login("leo@example.com", "leo-password-1").await;
    let (_, mine) = leo.get("/api/v1/conversations?assignee=me").await;
    assert_eq!(mine[0]["id"], conversation.as_str());
    assert_eq!(listed("status=open").await, vec![conversation.clone()]);
    assert!(listed("status=pending").await.is_empty());
    let (status, body) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/assign"),
            json!({"assignee_id": uuid::Uuid::now_v7()}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

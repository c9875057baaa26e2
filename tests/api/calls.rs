//! The generic call-event API and the screen pop on the agent's socket.

use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_connectors::webhook;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;
use crate::on_both_stores;

on_both_stores!(
    events_in_the_order_hangup_ringing_answered_build_one_correct_call,
    a_ringing_event_pops_the_callers_whole_history_on_the_agents_socket_within_500_ms,
    an_unknown_caller_gets_a_new_caller_pop,
    bad_call_events_and_foreign_sockets_are_refused,
);

pub(crate) async fn voice_account(app: &TestApp) -> String {
    let (status, account) = app
        .post("/api/v1/channel-accounts", json!({"kind": "voice", "name": "pbx"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    account["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn agent_at(app: &TestApp, extension: &str) -> (Value, String) {
    let email = format!("ext{extension}@example.com");
    let (status, agent) = app
        .post("/api/v1/agents", json!({"email": email, "name": "Teo", "role": "agent", "password": "teo-password-1", "extension": extension}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    let cookie = app.session_cookie(&email, "teo-password-1").await;
    (agent, cookie)
}

async fn events_in_the_order_hangup_ringing_answered_build_one_correct_call(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = voice_account(&app).await;
    let (agent, _) = agent_at(&app, "1001").await;
    let event = |kind: &str, at: &str| {
        json!({"channel_account_id": account, "call_id": "pbx-77", "event": kind, "at": at,
               "from": "+34 600 12 34 56", "to": "+34910000000", "extension": "1001", "direction": "inbound"})
    };

    let mut answers = Vec::new();
    for (kind, at) in [
        ("hangup", "2026-05-04T10:01:40Z"),
        ("ringing", "2026-05-04T10:00:00Z"),
        ("answered", "2026-05-04T10:00:10Z"),
        ("answered", "2026-05-04T10:00:10Z"),
    ] {
        let (status, body) = app.post("/api/v1/calls/events", event(kind, at)).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {body}");
        answers.push(body);
    }

    assert_eq!(answers[3]["duplicate"], true, "a repeated event changes nothing");
    let ids: Vec<&Value> = answers.iter().map(|a| &a["interaction_id"]).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]) && ids[0].is_string(),
        "one call, one interaction: {answers:?}"
    );
    let (_, call) = app
        .get(&format!("/api/v1/interactions/{}", ids[0].as_str().unwrap()))
        .await;
    let call = &call["interaction"];
    assert_eq!(call["details"]["disposition"], "answered");
    assert_eq!(call["details"]["talk_s"], 90);
    assert_eq!(call["details"]["duration_s"], 100);
    assert_eq!(
        call["occurred_at"], "2026-05-04T10:00:00Z",
        "the call started when it rang"
    );
    assert_eq!(call["author_agent_id"], agent["id"]);
    let (_, found) = app.get("/api/v1/contacts/lookup?phone=600123456").await;
    assert_eq!(found["interactions"].as_array().unwrap().len(), 1);
    let (hits, _) = app
        .search_until("q=answered", Duration::from_secs(5), |b| b["total"] == 1)
        .await;
    assert_eq!(hits["total"], 1, "the index holds the revised call, once: {hits}");
}

async fn a_ringing_event_pops_the_callers_whole_history_on_the_agents_socket_within_500_ms(backend: Backend) {
    let app = spawn_app(backend).await;
    let voice = voice_account(&app).await;
    let (agent, cookie) = agent_at(&app, "1001").await;
    let (other_agent, other_cookie) = agent_at(&app, "1002").await;
    // The caller has written an email (through the API channel) and an SMS (a signed gateway webhook).
    let (_, contact) = app
        .post("/api/v1/contacts", json!({"name": "Rosa", "handles": [{"kind": "email", "value": "rosa@example.es"}, {"kind": "phone", "value": "+34600123456"}]}))
        .await;
    let crm = app.api_account("crm").await;
    app.push(json!({"channel_account_id": crm, "external_id": "mail-1", "contact": {"email": "rosa@example.es"}, "subject": "Factura", "text": "No me llega la factura"})).await;
    let (_, sms) = app
        .post(
            "/api/v1/channel-accounts",
            json!({"kind": "sms", "name": "gw", "settings": {"provider": "generic"}}),
        )
        .await;
    let body = json!({"message_id": "gw-9", "from": "600123456", "text": "¿Me llamáis?"}).to_string();
    let ts = time::OffsetDateTime::now_utc().unix_timestamp();
    let signed = app
        .http
        .post(format!(
            "{}/webhooks/sms/{}/generic",
            app.base,
            sms["id"].as_str().unwrap()
        ))
        .header("content-type", "application/json")
        .header(webhook::TIMESTAMP_HEADER, ts.to_string())
        .header(
            webhook::SIGNATURE_HEADER,
            webhook::sign(sms["secret"].as_str().unwrap().as_bytes(), ts, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::CREATED);
    let mut socket = app.agent_socket(&cookie, None).await.expect("the agent's socket opens");
    let mut other = app
        .agent_socket(&other_cookie, None)
        .await
        .expect("another agent's socket opens");
    let hello: Value = serde_json::from_str(&socket.next().await.unwrap().unwrap().into_text().unwrap()).unwrap();
    assert_eq!(hello["agent_id"], agent["id"]);

    app.member_of_all(agent["id"].as_str().unwrap()).await;
    app.member_of_all(other_agent["id"].as_str().unwrap()).await;
    let rang = Instant::now();
    let (status, _) = app
        .post("/api/v1/calls/events", json!({"channel_account_id": voice, "call_id": "c-1", "event": "ringing", "from": "0034 600 12 34 56", "to": "1001"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let pop = loop {
        let message = tokio::time::timeout(Duration::from_secs(2), socket.next())
            .await
            .expect("a pop arrives")
            .unwrap()
            .unwrap();
        let event: Value = serde_json::from_str(&message.into_text().unwrap()).unwrap();
        if event["type"] == "screen_pop" {
            break event;
        }
    };
    let latency = rang.elapsed();

    assert!(latency < Duration::from_millis(500), "screen pop took {latency:?}");
    assert_eq!(pop["pop"]["contact"]["id"], contact["id"]);
    assert_eq!(pop["pop"]["number"], "+34600123456");
    let channels: Vec<&str> = pop["pop"]["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["channel"].as_str().unwrap())
        .collect();
    assert!(channels.contains(&"sms") && channels.contains(&"api"), "{channels:?}");
    assert_eq!(pop["pop"]["open_conversations"].as_array().unwrap().len(), 2);
    let others: Vec<Value> = drain(&mut other).await;
    assert!(
        others.iter().all(|e| e["type"] != "screen_pop"),
        "the pop is only for the agent it rings at"
    );
}

/// The messages a socket has received so far.
async fn drain(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(Duration::from_millis(300), socket.next()).await
    {
        out.push(serde_json::from_str(&text).unwrap());
    }
    out
}

async fn an_unknown_caller_gets_a_new_caller_pop(backend: Backend) {
    let app = spawn_app(backend).await;
    let voice = voice_account(&app).await;
    let (_, cookie) = agent_at(&app, "2001").await;
    let mut socket = app.agent_socket(&cookie, None).await.unwrap();

    app.post("/api/v1/calls/events", json!({"channel_account_id": voice, "call_id": "c-2", "event": "ringing", "from": "+1 415 555 2671", "extension": "2001"}))
        .await;

    let pop = drain(&mut socket)
        .await
        .into_iter()
        .find(|e| e["type"] == "screen_pop")
        .expect("a pop arrives");
    assert_eq!(pop["pop"]["contact"], Value::Null);
    assert_eq!(pop["pop"]["number"], "+14155552671");
}

async fn bad_call_events_and_foreign_sockets_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let voice = voice_account(&app).await;
    let crm = app.api_account("crm").await;
    let (_, cookie) = agent_at(&app, "3001").await;
    let cases = [
        (
            json!({"channel_account_id": crm, "call_id": "x", "event": "ringing"}),
            "channel_account_id",
        ),
        (
            json!({"channel_account_id": voice, "call_id": "x", "event": "exploded"}),
            "event",
        ),
        (
            json!({"channel_account_id": voice, "call_id": "", "event": "ringing"}),
            "call_id",
        ),
        (
            json!({"channel_account_id": voice, "call_id": "x", "event": "hangup", "from": "not a number", "to": "3001"}),
            "from",
        ),
        (
            json!({"channel_account_id": voice, "call_id": "y", "event": "hangup", "at": "later"}),
            "at",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = app.post("/api/v1/calls/events", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {answer}");
        assert_eq!(answer["error"]["field"], field, "{body} -> {answer}");
    }
    let anonymous = app.agent_socket("sb_session=forged", None).await;
    assert!(anonymous.is_err(), "no session, no socket");
    let foreign = app.agent_socket(&cookie, Some("https://evil.example")).await;
    assert!(foreign.is_err(), "a cross-site page cannot open the socket");
    assert!(
        app.agent_socket(&cookie, Some(&app.base)).await.is_ok(),
        "the hub's own page can"
    );
}

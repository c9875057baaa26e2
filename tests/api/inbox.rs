//! The shared inbox API: longest-waiting customer first, what ends a wait and what does not,
//! the filters agents use, labels, canned responses; and the agent socket's live signals:
//! presence, "X is replying", and typing both ways with a chat visitor.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;
use crate::on_both_stores;

on_both_stores!(
    the_longest_waiting_customer_comes_first_and_only_an_agents_answer_ends_the_wait,
    the_inbox_filters_by_view_channel_and_label,
    canned_responses_are_validated_unique_and_deleted_by_supervisors,
    presence_follows_the_console_and_agents_see_each_other_replying,
);

fn ids_of(inbox: &Value) -> Vec<String> {
    inbox
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contact_name"].as_str().unwrap_or("").to_owned())
        .collect()
}

async fn inbound(app: &TestApp, account: &str, who: &str, n: u32, minute: u32, text: &str) -> Value {
    let (status, body) = app
        .push(
            json!({"channel_account_id": account, "external_id": format!("{who}-{n}"),
            "contact": {"email": format!("{}@example.com", who.to_lowercase()), "name": who},
            "occurred_at": format!("2026-11-02T09:{minute:02}:00Z"), "text": text}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn the_longest_waiting_customer_comes_first_and_only_an_agents_answer_ends_the_wait(backend: Backend) {
    let app = spawn_app(backend).await;
    let web = app.api_account("web").await;
    let ana = inbound(&app, &web, "Ana", 1, 0, "Primera").await;
    inbound(&app, &web, "Bruno", 1, 1, "Segunda").await;
    inbound(&app, &web, "Carmen", 1, 2, "Tercera").await;
    let (status, inbox) = app.get("/api/v1/inbox").await;
    assert_eq!(status, StatusCode::OK, "{inbox}");
    assert_eq!(ids_of(&inbox), ["Ana", "Bruno", "Carmen"]);
    assert_eq!(inbox[0]["waiting_since"], "2026-11-02T09:00:00Z");
    assert_eq!(inbox[0]["preview"], "Primera");
    assert_eq!(inbox[0]["handle"], "ana@example.com");
    assert_eq!(inbox[0]["account_name"], "web");

    // A note is internal: Ana still waits. A second message from Bruno keeps his first wait.
    let ana_conversation = ana["interaction"]["conversation_id"].as_str().unwrap();
    let (status, _) = app
        .post(
            &format!("/api/v1/conversations/{ana_conversation}/notes"),
            json!({"text": "Mirando"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    inbound(&app, &web, "Bruno", 2, 5, "¿Hola?").await;
    let (_, inbox) = app.get("/api/v1/inbox").await;
    assert_eq!(ids_of(&inbox), ["Ana", "Bruno", "Carmen"]);
    assert_eq!(inbox[0]["preview"], "Primera", "notes are not previewed");
    assert_eq!(inbox[1]["waiting_since"], "2026-11-02T09:01:00Z");
    assert_eq!(inbox[1]["preview"], "¿Hola?");

    // An agent's reply ends Ana's wait: she moves below everyone still waiting.
    let (status, _) = app
        .post(
            &format!("/api/v1/conversations/{ana_conversation}/replies"),
            json!({"text": "Ya está"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, inbox) = app.get("/api/v1/inbox").await;
    assert_eq!(ids_of(&inbox), ["Bruno", "Carmen", "Ana"]);
    assert_eq!(inbox[2]["waiting_since"], Value::Null);
    assert_eq!(inbox[2]["preview"], "Ya está");
    assert_eq!(inbox[2]["preview_direction"], "outbound");

    // Resolving ends a wait too, and takes the conversation out of the open inbox.
    let carmen = inbox[1]["id"].as_str().unwrap();
    app.post(
        &format!("/api/v1/conversations/{carmen}/status"),
        json!({"status": "resolved"}),
    )
    .await;
    let (_, inbox) = app.get("/api/v1/inbox").await;
    assert_eq!(ids_of(&inbox), ["Bruno", "Ana"]);
    let (_, all) = app.get("/api/v1/inbox?status=any").await;
    let carmen_row = all.as_array().unwrap().iter().find(|c| c["id"] == carmen).unwrap();
    assert_eq!(carmen_row["waiting_since"], Value::Null);
    // Her next message reopens the conversation and starts a new wait.
    inbound(&app, &web, "Carmen", 2, 30, "Otra cosa").await;
    let (_, inbox) = app.get("/api/v1/inbox").await;
    assert_eq!(ids_of(&inbox), ["Bruno", "Carmen", "Ana"]);
    assert_eq!(inbox[1]["waiting_since"], "2026-11-02T09:30:00Z");
}

async fn the_inbox_filters_by_view_channel_and_label(backend: Backend) {
    let app = spawn_app(backend).await;
    let web = app.api_account("web").await;
    let ana = inbound(&app, &web, "Ana", 1, 0, "Uno").await;
    inbound(&app, &web, "Bruno", 1, 1, "Dos").await;
    let ana_conversation = ana["interaction"]["conversation_id"].as_str().unwrap();
    let (_, me) = app.get("/api/v1/auth/me").await;
    app.post(
        &format!("/api/v1/conversations/{ana_conversation}/assign"),
        json!({"assignee_id": me["agent"]["id"]}),
    )
    .await;
    assert_eq!(ids_of(&app.get("/api/v1/inbox?view=mine").await.1), ["Ana"]);
    assert_eq!(ids_of(&app.get("/api/v1/inbox?view=unassigned").await.1), ["Bruno"]);
    assert_eq!(ids_of(&app.get("/api/v1/inbox?view=all").await.1), ["Ana", "Bruno"]);
    assert_eq!(ids_of(&app.get("/api/v1/inbox?channel=api").await.1), ["Ana", "Bruno"]);
    assert_eq!(
        ids_of(&app.get("/api/v1/inbox?channel=sms").await.1),
        Vec::<String>::new()
    );
    let (_, assigned) = app.get("/api/v1/inbox?view=mine").await;
    assert_eq!(assigned[0]["assignee_name"], "Administrator");

    let (status, labels) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/conversations/{ana_conversation}/labels"),
            Some(json!({"labels": [" Devolución ", "vip", "VIP"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{labels}");
    assert_eq!(labels, json!(["devolución", "vip"]), "trimmed, lower-cased, once each");
    assert_eq!(ids_of(&app.get("/api/v1/inbox?label=VIP").await.1), ["Ana"]);
    assert_eq!(app.get("/api/v1/labels").await.1, json!(["devolución", "vip"]));
    let (_, thread) = app.get(&format!("/api/v1/conversations/{ana_conversation}")).await;
    assert_eq!(thread["labels"], json!(["devolución", "vip"]));

    let (status, error) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/conversations/{ana_conversation}/labels"),
            Some(json!({"labels": ["ok", "a,b"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "labels[1]");
    assert_eq!(
        app.get("/api/v1/labels").await.1,
        json!(["devolución", "vip"]),
        "a refused change changes nothing"
    );
    let (status, error) = app.get("/api/v1/inbox?status=closed").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "status");
}

async fn canned_responses_are_validated_unique_and_deleted_by_supervisors(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, hola) = app
        .post(
            "/api/v1/canned-responses",
            json!({"shortcut": "Hola", "title": "Saludo", "body": "Hola {{contact.first_name}}, soy {{agent.name}}."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hola}");
    assert_eq!(hola["shortcut"], "hola");
    app.post(
        "/api/v1/canned-responses",
        json!({"shortcut": "adios", "title": "Despedida", "body": "Un saludo."}),
    )
    .await;
    let (status, _) = app
        .post(
            "/api/v1/canned-responses",
            json!({"shortcut": "hola", "title": "Otro", "body": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, error) = app
        .post(
            "/api/v1/canned-responses",
            json!({"shortcut": "con espacio", "title": "x", "body": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "shortcut");
    let (_, list) = app.get("/api/v1/canned-responses").await;
    let shortcuts: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["shortcut"].as_str().unwrap())
        .collect();
    assert_eq!(shortcuts, ["adios", "hola"]);

    let (status, _) = app
        .post(
            "/api/v1/agents",
            json!({"email": "eva@example.com", "name": "Eva", "role": "agent", "password": "eva-password-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let eva = app.login("eva@example.com", "eva-password-1").await;
    let id = hola["id"].as_str().unwrap();
    let response = eva
        .http
        .delete(format!("{}/api/v1/canned-responses/{id}", app.base))
        .header("x-csrf-token", &eva.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "an agent may not delete the team's answers"
    );
    let (status, _) = app
        .call(reqwest::Method::DELETE, &format!("/api/v1/canned-responses/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .call(reqwest::Method::DELETE, &format!("/api/v1/canned-responses/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next event of `kind` on an agent socket, skipping others.
async fn event_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} event arrived"))
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(text) = message {
            let event: Value = serde_json::from_str(&text).unwrap();
            if event["type"] == kind {
                return event;
            }
        }
    }
}

async fn presence_follows_the_console_and_agents_see_each_other_replying(backend: Backend) {
    let app = spawn_app(backend).await;
    let web = app.api_account("web").await;
    for (email, name) in [("lia@example.com", "Lía"), ("max@example.com", "Max")] {
        let (status, body) = app
            .post(
                "/api/v1/agents",
                json!({"email": email, "name": name, "role": "agent", "password": "agent-password-1", "inboxes": [web]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let lia_cookie = app.session_cookie("lia@example.com", "agent-password-1").await;
    let max_cookie = app.session_cookie("max@example.com", "agent-password-1").await;
    let mut max = app.agent_socket(&max_cookie, None).await.unwrap();
    event_of(&mut max, "hello").await;
    let online = event_of(&mut max, "presence_changed").await;
    assert_eq!(online["agent"]["name"], "Max");
    assert_eq!(online["agent"]["presence"], "online");

    let mut lia = app.agent_socket(&lia_cookie, None).await.unwrap();
    event_of(&mut lia, "hello").await;
    let lia_online = event_of(&mut max, "presence_changed").await;
    assert_eq!(
        (
            lia_online["agent"]["name"].as_str(),
            lia_online["agent"]["presence"].as_str()
        ),
        (Some("Lía"), Some("online"))
    );

    // Lía types in a conversation: Max sees who, where and what; Lía is not told about herself.
    let pushed = inbound(&app, &web, "Ana", 1, 0, "Hola").await;
    let conversation = pushed["interaction"]["conversation_id"].as_str().unwrap();
    let frame = json!({"type": "activity", "conversation_id": conversation, "activity": "replying"});
    lia.send(Message::Text(frame.to_string().into())).await.unwrap();
    let seen = event_of(&mut max, "agent_activity").await;
    assert_eq!(seen["agent_name"], "Lía");
    assert_eq!(seen["conversation_id"], conversation);
    assert_eq!(seen["activity"], "replying");

    // Lía closes her console: Max sees her leave the conversation and go offline.
    lia.close(None).await.unwrap();
    let left = event_of(&mut max, "agent_activity").await;
    assert_eq!(left["activity"], "left");
    let offline = event_of(&mut max, "presence_changed").await;
    assert_eq!(offline["agent"]["presence"], "offline");
    let (_, agents) = app.get("/api/v1/agents").await;
    let lia_row = agents.as_array().unwrap().iter().find(|a| a["name"] == "Lía").unwrap();
    assert_eq!(lia_row["presence"], "offline");

    // Max says he is away, and stays away while his console is open.
    let max_session = app.login("max@example.com", "agent-password-1").await;
    let (status, me) = max_session
        .http
        .put(format!("{}/api/v1/auth/me/presence", app.base))
        .header("x-csrf-token", &max_session.csrf)
        .json(&json!({"presence": "away"}))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me.json::<Value>().await.unwrap()["presence"], "away");
    assert_eq!(
        event_of(&mut max, "presence_changed").await["agent"]["presence"],
        "away"
    );
    let (status, error) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/auth/me/presence",
            Some(json!({"presence": "asleep"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
}

//! Web chat from the visitor's side: signed visitor identity, messages stored once per client
//! id, agents' replies pushed live, resume after a reconnect without loss, identification.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::*;
use crate::on_both_stores;

on_both_stores!(
    a_visitor_message_is_acknowledged_and_a_resend_is_stored_once,
    replies_reach_the_visitor_live_and_a_reconnect_resumes_without_loss,
    typing_shows_both_ways_between_visitor_and_agent,
    a_visitor_who_gives_an_email_joins_that_contacts_timeline,
    bad_frames_forged_tokens_and_foreign_pages_are_refused,
    a_flood_of_messages_or_sessions_is_held_back_and_nothing_is_lost,
    read_receipts_go_both_ways_and_never_move_back,
    replies_left_unread_go_to_the_visitors_email_once,
);

pub(crate) type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn chat_account(app: &TestApp, settings: Value) -> String {
    let (status, account) = app
        .post(
            "/api/v1/channel-accounts",
            json!({"kind": "chat", "name": "web", "settings": settings}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    account["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn session(app: &TestApp, account: &str, token: Option<&str>) -> (StatusCode, Value) {
    let response = app
        .http
        .post(format!("{}/chat/{account}/session", app.base))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn connect(
    app: &TestApp,
    account: &str,
    token: &str,
    origin: Option<&str>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let url = format!(
        "{}/chat/{account}/ws?token={token}",
        app.base.replace("http://", "ws://")
    );
    let mut request = url.into_client_request().unwrap();
    if let Some(origin) = origin {
        request.headers_mut().insert("origin", origin.parse().unwrap());
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let hello = next(&mut socket).await.expect("a hello");
    assert_eq!(hello["type"], "hello");
    Ok(socket)
}

pub(crate) async fn next(socket: &mut Socket) -> Option<Value> {
    match tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => Some(serde_json::from_str(&text).unwrap()),
        _ => None,
    }
}

/// The next frame of a given type, skipping others.
pub(crate) async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let frame = next(socket).await.unwrap_or_else(|| panic!("no {kind} frame arrived"));
        if frame["type"] == kind {
            return frame;
        }
    }
}

pub(crate) async fn send(socket: &mut Socket, frame: Value) {
    socket.send(Message::Text(frame.to_string().into())).await.unwrap();
}

async fn a_visitor_message_is_acknowledged_and_a_resend_is_stored_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = chat_account(&app, json!({})).await;
    let (status, visitor) = session(&app, &account, None).await;
    assert_eq!(status, StatusCode::OK);
    let token = visitor["token"].as_str().unwrap();
    let mut socket = connect(&app, &account, token, None).await.unwrap();

    send(
        &mut socket,
        json!({"type": "message", "client_id": "c-1", "text": "Hola, ¿hay alguien?"}),
    )
    .await;
    let ack = next_of(&mut socket, "ack").await;
    send(
        &mut socket,
        json!({"type": "message", "client_id": "c-1", "text": "Hola, ¿hay alguien?"}),
    )
    .await;
    let again = next_of(&mut socket, "ack").await;

    assert_eq!(ack["seq"], 1);
    assert_eq!(ack["duplicate"], false);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["id"], ack["id"]);
    let (_, inbox) = app
        .get(&format!("/api/v1/conversations?channel_account_id={account}"))
        .await;
    assert_eq!(inbox.as_array().unwrap().len(), 1, "{inbox}");
    let (_, thread) = app
        .get(&format!("/api/v1/conversations/{}", inbox[0]["id"].as_str().unwrap()))
        .await;
    assert_eq!(thread["interactions"].as_array().unwrap().len(), 1);
    let (status, same) = session(&app, &account, Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same["visitor_id"], visitor["visitor_id"], "a reload keeps the visitor");
}

async fn replies_reach_the_visitor_live_and_a_reconnect_resumes_without_loss(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = chat_account(&app, json!({})).await;
    let (_, visitor) = session(&app, &account, None).await;
    let token = visitor["token"].as_str().unwrap().to_owned();
    let mut socket = connect(&app, &account, &token, None).await.unwrap();
    send(
        &mut socket,
        json!({"type": "message", "client_id": "c-1", "text": "Mi pedido no llega"}),
    )
    .await;
    let ack = next_of(&mut socket, "ack").await;
    let conversation = ack["conversation_id"].as_str().unwrap().to_owned();
    let replies = format!("/api/v1/conversations/{conversation}/replies");
    let reply = |text: &str| app.post(&replies, json!({"text": text}));

    reply("Lo miro ahora mismo").await;
    let live = loop {
        let frame = next_of(&mut socket, "message").await;
        if frame["direction"] == "outbound" {
            break frame;
        }
    };
    assert_eq!(live["text"], "Lo miro ahora mismo");
    assert_eq!(live["seq"], 2);

    drop(socket);
    reply("Sale mañana").await;
    app.post(
        &format!("/api/v1/conversations/{conversation}/notes"),
        json!({"text": "cliente nervioso"}),
    )
    .await;
    reply("¿Algo más?").await;
    let mut socket = connect(&app, &account, &token, None).await.unwrap();
    send(&mut socket, json!({"type": "resume", "after_seq": 2})).await;
    let first = next_of(&mut socket, "message").await;
    let second = next_of(&mut socket, "message").await;

    assert_eq!(
        (first["text"].as_str(), first["seq"].as_i64()),
        (Some("Sale mañana"), Some(3))
    );
    assert_eq!(
        (second["text"].as_str(), second["seq"].as_i64()),
        (Some("¿Algo más?"), Some(5)),
        "the internal note (4) is never shown"
    );
    assert!(next(&mut socket).await.is_none(), "nothing else, nothing twice");
}

async fn a_visitor_who_gives_an_email_joins_that_contacts_timeline(backend: Backend) {
    let app = spawn_app(backend).await;
    let crm = app.api_account("crm").await;
    let (_, pushed) = app.push(json!({"channel_account_id": crm, "external_id": "o-1", "contact": {"email": "marta@example.es"}, "text": "Pedido 77 pagado"})).await;
    let marta = pushed["interaction"]["contact_id"].as_str().unwrap().to_owned();
    let account = chat_account(&app, json!({})).await;
    let (_, visitor) = session(&app, &account, None).await;
    let mut socket = connect(&app, &account, visitor["token"].as_str().unwrap(), None)
        .await
        .unwrap();
    send(
        &mut socket,
        json!({"type": "message", "client_id": "c-1", "text": "¿Cuándo llega el pedido 77?"}),
    )
    .await;
    next_of(&mut socket, "ack").await;

    send(
        &mut socket,
        json!({"type": "identify", "name": "Marta", "email": "MARTA@example.es"}),
    )
    .await;
    let identified = next_of(&mut socket, "identified").await;
    send(
        &mut socket,
        json!({"type": "message", "client_id": "c-2", "text": "Soy Marta"}),
    )
    .await;
    next_of(&mut socket, "ack").await;

    assert_eq!(identified["contact_id"], marta.as_str());
    let (_, timeline) = app.get(&format!("/api/v1/contacts/{marta}/timeline")).await;
    let channels: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, vec!["chat", "chat", "api"], "{timeline}");
    let (_, merges) = app.get(&format!("/api/v1/contacts/{marta}/merges")).await;
    assert_eq!(
        merges.as_array().unwrap().len(),
        1,
        "the link is a recorded merge, so it can be undone"
    );
}

async fn bad_frames_forged_tokens_and_foreign_pages_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let open = chat_account(&app, json!({})).await;
    let guarded = chat_account(&app, json!({"allowed_origins": ["https://shop.example"]})).await;
    let (_, visitor) = session(&app, &open, None).await;
    let token = visitor["token"].as_str().unwrap();
    let mut socket = connect(&app, &open, token, None).await.unwrap();

    send(&mut socket, json!({"type": "dance"})).await;
    let unknown = next_of(&mut socket, "error").await;
    socket.send(Message::Text("{not json".into())).await.unwrap();
    let garbage = next_of(&mut socket, "error").await;
    send(
        &mut socket,
        json!({"type": "message", "client_id": "c-9", "text": "x".repeat(10_001)}),
    )
    .await;
    let too_long = next_of(&mut socket, "error").await;
    send(&mut socket, json!({"type": "identify", "email": "not-an-email"})).await;
    let bad_email = next_of(&mut socket, "error").await;
    send(
        &mut socket,
        json!({"type": "message", "client_id": "c-10", "text": "sigo aquí"}),
    )
    .await;
    let still_works = next_of(&mut socket, "ack").await;

    assert_eq!(unknown["code"], "invalid_frame");
    assert_eq!(garbage["code"], "invalid_frame");
    assert_eq!(
        (too_long["code"].as_str(), too_long["client_id"].as_str()),
        (Some("invalid_text"), Some("c-9"))
    );
    assert_eq!(bad_email["code"], "invalid_email");
    assert_eq!(still_works["seq"], 1, "only the valid message was stored");
    let forged = format!("{}.{}", uuid::Uuid::now_v7(), token.split_once('.').unwrap().1);
    assert!(
        connect(&app, &open, &forged, None).await.is_err(),
        "a forged token cannot open a socket"
    );
    assert_eq!(session(&app, &open, Some(&forged)).await.0, StatusCode::UNAUTHORIZED);
    let (status, refused) = session(&app, &guarded, None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "no origin, no session on a guarded chat: {refused}"
    );
    let from_shop = app
        .http
        .post(format!("{}/chat/{guarded}/session", app.base))
        .header("origin", "https://shop.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(from_shop.status(), StatusCode::OK);
    assert_eq!(
        from_shop.headers().get("access-control-allow-origin").unwrap(),
        "https://shop.example"
    );
    let shop_token = from_shop.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        connect(&app, &guarded, &shop_token, Some("https://evil.example"))
            .await
            .is_err()
    );
    assert!(
        connect(&app, &guarded, &shop_token, Some("https://shop.example"))
            .await
            .is_ok()
    );
}

async fn typing_shows_both_ways_between_visitor_and_agent(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = chat_account(&app, json!({})).await;
    let (_, visitor) = session(&app, &account, None).await;
    let mut socket = connect(&app, &account, visitor["token"].as_str().unwrap(), None)
        .await
        .unwrap();
    send(
        &mut socket,
        json!({"type": "message", "client_id": "c-1", "text": "Hola"}),
    )
    .await;
    let conversation = next_of(&mut socket, "ack").await["conversation_id"].clone();
    let (status, _) = app
        .post(
            "/api/v1/agents",
            json!({"email": "ines@example.com", "name": "Inés", "role": "agent", "password": "ines-password-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, agents) = app.get("/api/v1/agents").await;
    let ines = agents.as_array().unwrap().iter().find(|a| a["name"] == "Inés").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.member_of_all(&ines).await;
    let cookie = app.session_cookie("ines@example.com", "ines-password-1").await;
    let mut agent = app.agent_socket(&cookie, None).await.unwrap();
    let hello = agent.next().await.unwrap().unwrap().into_text().unwrap();
    assert!(
        hello.contains("hello"),
        "the socket listens once it has said hello: {hello}"
    );

    // The visitor types: the agent's console hears it, for this conversation.
    send(&mut socket, json!({"type": "typing"})).await;
    let typing = loop {
        let Some(Ok(Message::Text(text))) = tokio::time::timeout(Duration::from_secs(5), agent.next())
            .await
            .unwrap()
        else {
            continue;
        };
        let event: Value = serde_json::from_str(&text).unwrap();
        if event["type"] == "customer_typing" {
            break event;
        }
    };
    assert_eq!(typing["conversation_id"], conversation);

    // The agent writes a reply: the visitor sees "typing", and it stops when the agent leaves.
    for activity in ["replying", "left"] {
        let frame = json!({"type": "activity", "conversation_id": conversation, "activity": activity});
        agent.send(Message::Text(frame.to_string().into())).await.unwrap();
        let shown = next_of(&mut socket, "typing").await;
        assert_eq!(shown["typing"], activity == "replying");
    }
}

async fn a_flood_of_messages_or_sessions_is_held_back_and_nothing_is_lost(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.chat.visitor_messages_per_minute = 5;
        s.chat.sessions_per_minute_per_address = 3;
    })
    .await;
    let account = chat_account(&app, json!({})).await;
    let (_, flooder) = session(&app, &account, None).await;
    let (_, neighbour) = session(&app, &account, None).await;
    let mut socket = connect(&app, &account, flooder["token"].as_str().unwrap(), None)
        .await
        .unwrap();
    for n in 0..8 {
        send(
            &mut socket,
            json!({"type": "message", "client_id": format!("f-{n}"), "text": format!("spam {n}")}),
        )
        .await;
    }
    let mut acked = Vec::new();
    let mut held = Vec::new();
    while acked.len() + held.len() < 8 {
        let frame = next(&mut socket).await.expect("every message is answered");
        match frame["type"].as_str() {
            Some("ack") => acked.push(frame["client_id"].as_str().unwrap().to_owned()),
            Some("error") => {
                assert_eq!(frame["code"], "rate_limited", "{frame}");
                assert!(frame["retry_after_ms"].as_u64().unwrap() > 0, "{frame}");
                held.push(frame["client_id"].as_str().unwrap().to_owned());
            }
            _ => {}
        }
    }
    assert_eq!(acked, ["f-0", "f-1", "f-2", "f-3", "f-4"], "the allowance, in order");
    assert_eq!(held, ["f-5", "f-6", "f-7"]);
    let conversation = {
        let (_, found) = app
            .get(&format!("/api/v1/conversations?channel_account_id={account}"))
            .await;
        found[0]["id"].as_str().unwrap().to_owned()
    };
    let (_, thread) = app.get(&format!("/api/v1/conversations/{conversation}")).await;
    assert_eq!(
        thread["interactions"].as_array().unwrap().len(),
        5,
        "held messages are not stored"
    );

    // Another visitor is not held back by the flooder.
    let mut other = connect(&app, &account, neighbour["token"].as_str().unwrap(), None)
        .await
        .unwrap();
    send(
        &mut other,
        json!({"type": "message", "client_id": "n-1", "text": "hola"}),
    )
    .await;
    assert_eq!(next_of(&mut other, "ack").await["client_id"], "n-1");

    // Two sessions were started from this address already: one more is allowed, then 429;
    // confirming a token a visitor holds is never limited.
    assert_eq!(session(&app, &account, None).await.0, StatusCode::OK);
    assert_eq!(session(&app, &account, None).await.0, StatusCode::TOO_MANY_REQUESTS);
    let (status, same) = session(&app, &account, flooder["token"].as_str()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same["visitor_id"], flooder["visitor_id"]);
}

async fn read_receipts_go_both_ways_and_never_move_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = chat_account(&app, json!({})).await;
    let (_, visitor) = session(&app, &account, None).await;
    let mut socket = connect(&app, &account, visitor["token"].as_str().unwrap(), None)
        .await
        .unwrap();
    send(
        &mut socket,
        json!({"type": "message", "client_id": "c-1", "text": "¿Hay stock?"}),
    )
    .await;
    let conversation = next_of(&mut socket, "ack").await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cookie = app.session_cookie(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let mut agent = app.agent_socket(&cookie, None).await.unwrap();
    let _hello = agent.next().await;

    // The agent opens the conversation: the visitor learns their message was seen.
    agent
        .send(Message::Text(
            json!({"type": "activity", "conversation_id": conversation, "activity": "viewing"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    next_of(&mut socket, "read").await;

    // The agent answers; the visitor reads it: the agent's console hears, and the store keeps it.
    app.post(
        &format!("/api/v1/conversations/{conversation}/replies"),
        json!({"text": "Sí, quedan tres"}),
    )
    .await;
    let reply = loop {
        let frame = next_of(&mut socket, "message").await;
        if frame["direction"] == "outbound" {
            break frame;
        }
    };
    assert_eq!(reply["seq"], 2);
    send(&mut socket, json!({"type": "read", "seq": 2})).await;
    let receipt = loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), agent.next())
            .await
            .expect("the receipt reaches the agent")
            .unwrap()
            .unwrap();
        let event: Value = serde_json::from_str(&frame.into_text().unwrap()).unwrap();
        if event["type"] == "customer_read" {
            break event;
        }
    };
    assert_eq!(receipt["conversation_id"], conversation.as_str());
    assert_eq!(receipt["seq"], 2);
    let read_seq = || async {
        app.get(&format!("/api/v1/conversations/{conversation}")).await.1["conversation"]["customer_read_seq"].clone()
    };
    assert_eq!(read_seq().await, 2);

    // A receipt for a message that does not exist, or an older one, changes nothing.
    send(&mut socket, json!({"type": "read", "seq": 99})).await;
    send(&mut socket, json!({"type": "read", "seq": 1})).await;
    send(
        &mut socket,
        json!({"type": "message", "client_id": "c-2", "text": "Gracias"}),
    )
    .await;
    next_of(&mut socket, "ack").await;
    assert_eq!(read_seq().await, 2);
}

async fn replies_left_unread_go_to_the_visitors_email_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let mail_servers = crate::email::MailServers::from_env();
    let (desk, password) = mail_servers.user("chatdesk");
    let inbox = crate::email::email_account(&app, &mail_servers, &desk, &password).await;
    let account = chat_account(
        &app,
        json!({"offline_email_account_id": inbox, "offline_after_seconds": 1}),
    )
    .await;
    let run = &uuid::Uuid::now_v7().simple().to_string()[20..];
    let reply = |conversation: String, text: String| {
        let app = &app;
        async move {
            let (status, body) = app
                .post(
                    &format!("/api/v1/conversations/{conversation}/replies"),
                    json!({"text": text}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    };
    // A visitor who says who they are, asks, and leaves.
    let marta = format!("marta-{run}@example.es");
    let (_, visitor) = session(&app, &account, None).await;
    let mut socket = connect(&app, &account, visitor["token"].as_str().unwrap(), None)
        .await
        .unwrap();
    send(&mut socket, json!({"type": "identify", "email": marta})).await;
    next_of(&mut socket, "identified").await;
    send(
        &mut socket,
        json!({"type": "message", "client_id": "m-1", "text": "¿Enviáis a Canarias?"}),
    )
    .await;
    let left = next_of(&mut socket, "ack").await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(socket);
    // One who stays and reads the answer, and one who gave no address.
    let (_, reader) = session(&app, &account, None).await;
    let mut reading = connect(&app, &account, reader["token"].as_str().unwrap(), None)
        .await
        .unwrap();
    send(
        &mut reading,
        json!({"type": "identify", "email": format!("lector-{run}@example.es")}),
    )
    .await;
    next_of(&mut reading, "identified").await;
    send(
        &mut reading,
        json!({"type": "message", "client_id": "r-1", "text": "Hola"}),
    )
    .await;
    let stayed = next_of(&mut reading, "ack").await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, anonymous) = session(&app, &account, None).await;
    let mut nameless = connect(&app, &account, anonymous["token"].as_str().unwrap(), None)
        .await
        .unwrap();
    send(
        &mut nameless,
        json!({"type": "message", "client_id": "a-1", "text": "Hola"}),
    )
    .await;
    let unnamed = next_of(&mut nameless, "ack").await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(nameless);

    reply(left.clone(), format!("Sí, enviamos a Canarias {run}")).await;
    reply(left.clone(), format!("El envío tarda 3 días {run}")).await;
    reply(stayed, format!("Le leo ahora {run}")).await;
    reply(unnamed, format!("Sin dirección {run}")).await;
    let seen = loop {
        let frame = next_of(&mut reading, "message").await;
        if frame["direction"] == "outbound" {
            break frame;
        }
    };
    send(&mut reading, json!({"type": "read", "seq": seen["seq"]})).await;

    let started = std::time::Instant::now();
    let sent = loop {
        let sent = mail_servers.relayed(&format!("Canarias {run}"));
        if !sent.is_empty() || started.elapsed() > Duration::from_secs(30) {
            break sent;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(sent.len(), 1, "one email for the two unread replies");
    let email = &sent[0];
    assert!(
        email.contains(&format!("To: {marta}")) || email.contains(&format!("<{marta}>")),
        "{email}"
    );
    assert!(
        email.contains(&format!("El env=C3=ADo tarda 3 d=C3=ADas {run}"))
            || email.contains(&format!("El envío tarda 3 días {run}")),
        "{email}"
    );
    assert!(email.contains("Subject: web: your chat"), "{email}");

    // Later: still one email; nothing for the reply that was read, nor for the visitor without
    // an address; and the email is in Marta's timeline.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(mail_servers.relayed(&format!("Canarias {run}")).len(), 1, "sent once");
    assert!(
        mail_servers.relayed(&format!("Le leo ahora {run}")).is_empty(),
        "a read reply is not emailed"
    );
    assert!(mail_servers.relayed("Sin direcci").iter().all(|m| !m.contains(run)));
    let (_, found) = app.get(&format!("/api/v1/contacts/lookup?email={marta}")).await;
    let channels: Vec<&str> = found["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["channel"].as_str().unwrap())
        .collect();
    assert!(
        channels.contains(&"email") && channels.contains(&"chat"),
        "{channels:?}"
    );
}

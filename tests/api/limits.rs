//! Limits on untrusted input, each set from the configuration and each answered precisely:
//! request headers, search queries, WebSocket frames, CSV lines and whole mails over IMAP.
//! And a graceful shutdown: sockets are told the hub is going away, requests in flight finish.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::attributes::cli_with;
use crate::chat::{chat_account, connect, session};
use crate::helpers::*;

/// The close code a socket ends with, or `None` if it just dropped.
async fn close_code<S>(socket: &mut S) -> Option<CloseCode>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| f.code),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_queries_and_frames_over_their_limits_are_refused() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.limits.request_headers = 30;
        s.limits.search_query_chars = 100;
        s.limits.websocket_frame_bytes = 4096;
    })
    .await;

    // Headers: 40 of them get 431; 10 are fine.
    let request = |n: usize| {
        let mut r = app
            .http
            .get(format!("{}/api/v1/search?q=hola", app.base))
            .bearer_auth(&app.token);
        for i in 0..n {
            r = r.header(format!("x-extra-{i}"), "1");
        }
        r
    };
    let refused = request(40).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_headers", "{body}");
    assert_eq!(request(10).send().await.unwrap().status(), StatusCode::OK);

    // Search: a 101-character query is refused with the field named; 100 are searched.
    let (status, body) = app.get(&format!("/api/v1/search?q={}", "a".repeat(101))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "q");
    assert_eq!(
        app.get(&format!("/api/v1/search?q={}", "a".repeat(100))).await.0,
        StatusCode::OK
    );

    // A chat frame over 4 KiB closes the visitor's socket with 1009 and stores nothing.
    let account = chat_account(&app, json!({})).await;
    let (_, visitor) = session(&app, &account, None).await;
    let mut socket = connect(&app, &account, visitor["token"].as_str().unwrap(), None)
        .await
        .unwrap();
    let big = json!({"type": "message", "client_id": "big-1", "text": "x".repeat(5000)}).to_string();
    socket.send(Message::Text(big.into())).await.unwrap();
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Size));
    let (_, found) = app.get("/api/v1/search?q=big-1").await;
    assert_eq!(found["total"], 0);
    let (_, inbox) = app.get("/api/v1/inbox?view=all&status=any").await;
    assert_eq!(inbox.as_array().unwrap().len(), 0, "nothing was stored: {inbox}");

    // The agent console's socket has the same limit.
    let cookie = app.session_cookie(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let mut agent = app.agent_socket(&cookie, None).await.unwrap();
    agent
        .send(Message::Text(
            format!("{{\"type\":\"activity\",\"pad\":\"{}\"}}", "y".repeat(5000)).into(),
        ))
        .await
        .unwrap();
    let mut closed = false;
    for _ in 0..20 {
        match tokio::time::timeout(Duration::from_secs(5), agent.next()).await {
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                closed = true;
                break;
            }
            Ok(Some(Ok(_))) => continue,
            Err(_) => break,
        }
    }
    assert!(closed, "an oversized frame ends the agent socket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_lines_over_the_limit_are_named_and_nothing_of_the_file_is_applied() {
    let app = spawn_app(Backend::Sqlite).await;
    let file = app.dir.path().join("contacts.csv");
    std::fs::write(
        &file,
        format!(
            "external_id,name,email\ncrm-1,Ana,ana@example.com\ncrm-2,{},bruno@example.com\n",
            "B".repeat(300)
        ),
    )
    .unwrap();
    let limit = [("SWITCHBOARD__LIMITS__CSV_LINE_BYTES", "200")];
    let (ok, out) = cli_with(&app, &["import", "contacts", file.to_str().unwrap()], &limit).await;
    assert!(!ok, "{out}");
    assert!(out.contains("line 3") && out.contains("longer than 200 bytes"), "{out}");
    let (_, none) = app.get("/api/v1/contacts/lookup?email=ana@example.com").await;
    assert!(none["contact"].is_null(), "nothing of the file was applied: {none}");

    // An Asterisk CDR line over the limit is reported by number; the others are imported.
    let (_, voice) = app
        .post("/api/v1/channel-accounts", json!({"kind": "voice", "name": "pbx"}))
        .await;
    let cdr = app.dir.path().join("Master.csv");
    let line = |name: &str, uniqueid: &str| {
        crate::voice::cdr(
            "600111222",
            "1001",
            &format!("\"{name}\" <600111222>"),
            ("2026-03-02 10:00:00", "2026-03-02 10:00:05", "2026-03-02 10:01:05"),
            (65, 60),
            "ANSWERED",
            uniqueid,
        )
    };
    std::fs::write(
        &cdr,
        [line("Ana", "1.1"), line(&"A".repeat(300), "1.2"), line("Ana", "1.3")].concat(),
    )
    .unwrap();
    let (ok, out) = cli_with(
        &app,
        &[
            "import",
            "asterisk-cdr",
            "--account",
            voice["id"].as_str().unwrap(),
            cdr.to_str().unwrap(),
        ],
        &[("SWITCHBOARD__LIMITS__CSV_LINE_BYTES", "400")],
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("line 2: longer than 400 bytes"), "{out}");
    assert!(out.contains("2 imported") && out.contains("1 errors"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_over_the_size_limit_is_stored_from_its_header_and_left_in_the_mailbox() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.limits.imap_message_bytes = 20_000).await;
    let mail = crate::email::MailServers::from_env();
    let (user, password) = mail.user("big");
    crate::email::email_account(&app, &mail, &user, &password).await;
    let address = format!("{user}@example.test");
    let big = crate::email::mail(
        "ana@cliente.test",
        &address,
        "Planos de la obra",
        &format!("<big-{user}@cliente.test>"),
        "",
        &"Línea de los planos adjuntos.\r\n".repeat(1500),
    );
    assert!(big.len() > 20_000);
    mail.send("ana@cliente.test", &address, &big).await;
    let small = crate::email::mail(
        "ana@cliente.test",
        &address,
        "Una pregunta",
        &format!("<small-{user}@cliente.test>"),
        "",
        "¿Recibisteis los planos?",
    );
    mail.send("ana@cliente.test", &address, &small).await;

    let started = std::time::Instant::now();
    let emails = loop {
        let (_, found) = app.get("/api/v1/contacts/lookup?email=ana@cliente.test").await;
        let items = found["interactions"].as_array().cloned().unwrap_or_default();
        if items.len() >= 2 || started.elapsed() > Duration::from_secs(20) {
            break items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(emails.len(), 2, "{emails:?}");
    let big = emails.iter().find(|e| e["subject"] == "Planos de la obra").unwrap();
    assert!(big["details"]["oversized"]["size"].as_u64().unwrap() > 20_000, "{big}");
    assert!(
        big["text"].as_str().unwrap().contains("left unread in the mailbox"),
        "{big}"
    );
    let small = emails.iter().find(|e| e["subject"] == "Una pregunta").unwrap();
    assert_eq!(small["text"].as_str().map(str::trim), Some("¿Recibisteis los planos?"));
    assert!(small["details"]["oversized"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_tells_sockets_it_is_going_away_and_finishes_requests_in_flight() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let account = chat_account(&app, json!({})).await;
    let (_, visitor) = session(&app, &account, None).await;
    let mut chat = connect(&app, &account, visitor["token"].as_str().unwrap(), None)
        .await
        .unwrap();
    let cookie = app.session_cookie(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let mut agent = app.agent_socket(&cookie, None).await.unwrap();
    let crm = app.api_account("crm").await;

    // A request whose body is still arriving when the stop begins.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = json!({"channel_account_id": crm, "external_id": "in-flight-1", "contact": {"email": "eva@example.es"}, "text": "Llego tarde"})
        .to_string()
        .into_bytes();
    let in_flight = tokio::spawn({
        let request = app
            .http
            .post(format!("{}/api/v1/interactions", app.base))
            .bearer_auth(&app.token)
            .header("content-type", "application/json")
            .header("content-length", body.len().to_string())
            .body(reqwest::Body::wrap_stream(tokio_stream_from(receiver)));
        async move { request.send().await.map(|r| r.status()) }
    });
    let (head, tail) = body.split_at(10);
    sender.send(Ok(head.to_vec())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let base = app.base.clone();
    let stopping = tokio::spawn(async move {
        app.stop().await;
        app
    });
    assert_eq!(
        close_code(&mut chat).await,
        Some(CloseCode::Away),
        "the visitor is told"
    );
    assert_eq!(close_code(&mut agent).await, Some(CloseCode::Away), "the agent is told");
    sender.send(Ok(tail.to_vec())).await.unwrap();
    drop(sender);
    assert_eq!(
        in_flight.await.unwrap().unwrap(),
        StatusCode::CREATED,
        "the request in flight finished"
    );
    let mut app = stopping.await.unwrap();
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "a stopped hub accepts nothing"
    );
    app.start().await;
    let (_, found) = app.get("/api/v1/contacts/lookup?email=eva@example.es").await;
    assert_eq!(found["interactions"].as_array().map(Vec::len), Some(1), "{found}");
}

/// A stream over an mpsc receiver, for a request body sent in parts.
fn tokio_stream_from<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

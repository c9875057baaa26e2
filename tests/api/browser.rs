//! The chat widget in a real headless Chromium (Debian's, driven by Playwright): a page on
//! another origin embeds the widget with one script tag, the visitor writes, the agent answers
//! through the API, and the answer appears in the page.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_chats_from_a_real_browser_and_sees_the_agents_reply() {
    let app = spawn_app(Backend::Sqlite).await;
    let shop = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shop_origin = format!("http://{}", shop.local_addr().unwrap());
    let (status, account) = app
        .post(
            "/api/v1/channel-accounts",
            json!({"kind": "chat", "name": "tienda", "settings": {"allowed_origins": [shop_origin]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    let account = account["id"].as_str().unwrap().to_owned();
    let page = format!(
        "<!doctype html><html lang=\"es\"><head><meta charset=\"utf-8\"><title>Tienda</title></head>\
         <body><h1>Tienda</h1><script src=\"{}/widget/switchboard-chat.js\" data-account=\"{account}\" async></script></body></html>",
        app.base
    );
    let site = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move { axum::response::Html(page) }),
    );
    tokio::spawn(async move { axum::serve(shop, site).await.unwrap() });

    let driver = repo_root().join("tests/browser/widget.mjs");
    assert_playwright_installed();
    let profile = app.dir.path().join("chromium-profile");
    let mut browser = tokio::process::Command::new("node")
        .arg(driver)
        .arg(format!("{shop_origin}/"))
        .arg(&profile)
        .arg("Hola, ¿tenéis la talla 42?")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let next_line = async |lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>| {
        tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the browser answers in time")
            .unwrap()
    };

    assert_eq!(next_line(&mut lines).await.as_deref(), Some("sent"));
    let (_, inbox) = app
        .get(&format!("/api/v1/conversations?channel_account_id={account}"))
        .await;
    let conversation = inbox[0]["id"]
        .as_str()
        .expect("the browser's message opened a conversation")
        .to_owned();
    let (_, thread) = app.get(&format!("/api/v1/conversations/{conversation}")).await;
    assert_eq!(thread["interactions"][0]["text"], "Hola, ¿tenéis la talla 42?");
    let reply = "Sí, nos quedan dos pares <b>42</b>";
    let (status, _) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/replies"),
            json!({"text": reply}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut stdin = browser.stdin.take().unwrap();
    stdin.write_all(format!("{reply}\n").as_bytes()).await.unwrap();

    assert_eq!(
        next_line(&mut lines).await.as_deref(),
        Some("received polite"),
        "the reply appeared, as text, in an ARIA live log"
    );
    // The widget, open and in front, sent a read receipt for the reply.
    let started = std::time::Instant::now();
    let read_seq = loop {
        let (_, thread) = app.get(&format!("/api/v1/conversations/{conversation}")).await;
        let seq = thread["conversation"]["customer_read_seq"].as_i64().unwrap();
        if seq == 2 || started.elapsed() > Duration::from_secs(10) {
            break seq;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(read_seq, 2, "the visitor's read receipt for the reply was stored");
    // An agent opens the conversation: the visitor's message shows as seen, in Spanish.
    let cookie = app.session_cookie(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let mut agent = app.agent_socket(&cookie, None).await.unwrap();
    let _hello = futures::StreamExt::next(&mut agent).await;
    let viewing = json!({"type": "activity", "conversation_id": conversation, "activity": "viewing"});
    futures::SinkExt::send(
        &mut agent,
        tokio_tungstenite::tungstenite::Message::Text(viewing.to_string().into()),
    )
    .await
    .unwrap();
    stdin.write_all(b"seen?\n").await.unwrap();
    drop(stdin);
    assert_eq!(next_line(&mut lines).await.as_deref(), Some("seen Visto"));
    let status = tokio::time::timeout(Duration::from_secs(30), browser.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

//! Three real hub nodes on one real PostgreSQL, as behind a load balancer: events, search,
//! chat, mailbox leases and the outbox work whichever node a request reaches, and a node killed
//! with SIGKILL hands its mailbox to another node.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::calls::{agent_at, voice_account};
use crate::chat::{chat_account, connect, next_of, send, session};
use crate::email::{MailServers, email_account, emails_of, mail};
use crate::fake_twilio::{AUTH_TOKEN, FakeTwilio};
use crate::helpers::*;
use crate::sms::{PUBLIC_URL, inbound, twilio_account, twilio_post};

const PASSWORD: &str = "cluster-admin-password";
const ADMIN: &str = "admin@switchboard.local";

/// The README's `node.toml`, as an operator would copy it.
fn readme_node_config(dir: &std::path::Path) -> PathBuf {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme.find("```toml\n# node.toml").expect("the README shows node.toml") + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let config = &readme[start..end];
    assert!(
        config.contains(&format!("public_url = \"{PUBLIC_URL}\"")),
        "the test signs webhooks for the README's public URL"
    );
    let path = dir.join("node.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// A node: the README's `node.toml`, with the test's database, index directory and port (and
/// test conveniences) as environment variables over it.
fn node(database: &str, dir: &std::path::Path, name: &str) -> HubProcess {
    HubProcess::new(
        PASSWORD,
        &[
            ("SWITCHBOARD__DATABASE__URL", database.to_owned()),
            (
                "SWITCHBOARD__INDEX__PATH",
                dir.join(format!("index-{name}")).display().to_string(),
            ),
            ("SWITCHBOARD__INDEX__WRITER_MEMORY_MB", "15".into()),
            ("SWITCHBOARD__CONTACTS__DEFAULT_REGION", "ES".into()),
            ("SWITCHBOARD__OUTBOX__POLL_INTERVAL_MS", "100".into()),
        ],
    )
    .without("SWITCHBOARD__SERVER__PUBLIC_URL")
    .with_config(readme_node_config(dir))
}

/// Three nodes: A, B and C, each with its own port and search index, one database; and the
/// database's URL.
async fn three_nodes(dir: &std::path::Path) -> (Vec<HubProcess>, Vec<TestApp>, String) {
    let database = fresh_database(Backend::Postgres, dir).await;
    let mut processes = Vec::new();
    for name in ["a", "b", "c"] {
        let mut process = node(&database, dir, name);
        process.start().await;
        processes.push(process);
    }
    let mut apps = Vec::new();
    for node in &processes {
        apps.push(attach(&node.base, ADMIN, PASSWORD).await);
    }
    (processes, apps, database)
}

/// The next `interaction_created` event on an agent socket whose text is `text`.
async fn interaction_event(socket: &mut crate::chat::Socket, text: &str) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .unwrap_or_else(|_| panic!("no event for {text:?} within 5 s"))
            .expect("the socket stays open")
            .unwrap();
        let Message::Text(frame) = frame else { continue };
        let event: Value = serde_json::from_str(&frame).unwrap();
        if event["type"] == "interaction_created" && event["interaction"]["text"] == text {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_postgresql_behave_as_one_hub() {
    switchboard::startup::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (mut processes, nodes, database) = three_nodes(dir.path()).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let fake = FakeTwilio::start().await;
    let sms = twilio_account(a, &fake.base_url, json!({})).await;

    // An SMS posted to node A reaches an agent socket on node C, and search on every node.
    let cookie = c.session_cookie(ADMIN, PASSWORD).await;
    let mut socket_c = c.agent_socket(&cookie, None).await.unwrap();
    let mut pushed = Vec::new();
    let mut searchable = Vec::new();
    for n in 0..5 {
        let text = format!("consulta cruzada número{n}");
        let params = inbound(&format!("SMcluster{n}"), "600111222", &text);
        let posted = Instant::now();
        let (status, body) = twilio_post(a, &format!("/webhooks/sms/{sms}/twilio"), &params, AUTH_TOKEN).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let acknowledged = posted.elapsed();
        interaction_event(&mut socket_c, &text).await;
        pushed.push(posted.elapsed() - acknowledged);
        for node in &nodes {
            let (found, _) = node
                .search_until(&format!("q=número{n}"), Duration::from_secs(5), |r| r["total"] == 1)
                .await;
            assert_eq!(found["total"], 1, "node {} finds the SMS: {found}", node.base);
            searchable.push(posted.elapsed() - acknowledged);
        }
    }
    pushed.sort();
    searchable.sort();
    println!("after the acknowledgement, A -> agent socket on C: {pushed:?}");
    println!("after the acknowledgement, searchable on A, B and C: {searchable:?}");
    assert!(
        pushed[pushed.len() / 2] <= Duration::from_millis(100),
        "the median push from node A to a socket on node C took over 100 ms: {pushed:?}"
    );
    assert!(
        *searchable.last().unwrap() <= Duration::from_secs(1),
        "every node finds every SMS within 1 s: {searchable:?}"
    );

    // A visitor on node B gets the reply an agent sends through node A.
    let chat = chat_account(a, json!({})).await;
    let (_, visitor) = session(b, &chat, None).await;
    let mut visitor_b = connect(b, &chat, visitor["token"].as_str().unwrap(), None)
        .await
        .unwrap();
    send(
        &mut visitor_b,
        json!({"type": "message", "client_id": "v-1", "text": "¿Me atiende alguien?"}),
    )
    .await;
    let conversation = next_of(&mut visitor_b, "ack").await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = a
        .post(
            &format!("/api/v1/conversations/{conversation}/replies"),
            json!({"text": "Sí, dígame"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let reply = loop {
        let frame = next_of(&mut visitor_b, "message").await;
        if frame["direction"] == "outbound" {
            break frame;
        }
    };
    assert_eq!(reply["text"], "Sí, dígame");
    // The visitor comes back through node C and misses nothing sent meanwhile through node B.
    drop(visitor_b);
    b.post(
        &format!("/api/v1/conversations/{conversation}/replies"),
        json!({"text": "¿Sigue ahí?"}),
    )
    .await;
    let mut visitor_c = connect(c, &chat, visitor["token"].as_str().unwrap(), None)
        .await
        .unwrap();
    send(&mut visitor_c, json!({"type": "resume", "after_seq": reply["seq"]})).await;
    assert_eq!(next_of(&mut visitor_c, "message").await["text"], "¿Sigue ahí?");

    // A call ringing at node C pops the caller's history on the agent's socket on node B,
    // opened with a session the agent started on node A.
    let voice = voice_account(a).await;
    let (_, agent_cookie) = agent_at(a, "1001").await;
    let mut agent_b = b.agent_socket(&agent_cookie, None).await.unwrap();
    let rang = Instant::now();
    let (status, _) = c
        .post(
            "/api/v1/calls/events",
            json!({"channel_account_id": voice, "call_id": "cl-1", "event": "ringing", "from": "600 11 12 22", "to": "1001"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let pop = loop {
        let frame = tokio::time::timeout(Duration::from_secs(2), agent_b.next())
            .await
            .expect("a pop arrives on node B")
            .unwrap()
            .unwrap();
        let event: Value = serde_json::from_str(&frame.into_text().unwrap()).unwrap();
        if event["type"] == "screen_pop" {
            break event;
        }
    };
    let popped = rang.elapsed();
    println!("ringing at C -> screen pop on B: {popped:?}");
    assert!(popped < Duration::from_millis(500), "the pop took {popped:?}");
    assert_eq!(pop["pop"]["number"], "+34600111222");
    assert!(
        pop["pop"]["contact"]["id"].is_string(),
        "the SMS sender is known: {pop}"
    );

    // Thirty replies through all three nodes, drained by all three: each sent exactly once.
    let (_, found) = a.get("/api/v1/contacts/lookup?phone=600111222").await;
    let sms_conversation = found["interactions"][0]["conversation_id"].as_str().unwrap().to_owned();
    for n in 0..30 {
        let (status, body) = nodes[n % 3]
            .post(
                &format!("/api/v1/conversations/{sms_conversation}/replies"),
                json!({"text": format!("respuesta {n}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let started = Instant::now();
    while fake.sent().len() < 30 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut sent: HashMap<String, usize> = HashMap::new();
    for message in fake.sent() {
        *sent.entry(message.field("Body").unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(sent.len(), 30, "every reply reached the provider: {sent:?}");
    assert!(sent.values().all(|&n| n == 1), "none twice: {sent:?}");

    // A fourth node started later with an empty index builds it while serving.
    let mut late = node(&database, dir.path(), "d");
    late.start().await;
    let d = attach(&late.base, ADMIN, PASSWORD).await;
    let (found, took) = d
        .search_until("q=consulta cruzada", Duration::from_secs(10), |r| r["total"] == 5)
        .await;
    assert_eq!(found["total"], 5, "the new node's index caught up: {found}");
    println!("a node started empty found the earlier SMS after {took:?}");
    drop(late);

    // A mailbox is polled by one node; killing it moves the polling to another, within 10 s,
    // with nothing missed and nothing twice.
    let mail_servers = MailServers::from_env();
    let (support, password) = mail_servers.user("cluster");
    let (customer, _) = mail_servers.user("cliente");
    let (support_address, customer_address) = (format!("{support}@example.test"), format!("{customer}@example.es"));
    let mailbox = email_account(a, &mail_servers, &support, &password).await;
    let message = |n: u32| {
        mail(
            &customer_address,
            &support_address,
            &format!("Pedido {n}"),
            &format!("<pedido{n}.{customer}@example.es>"),
            "",
            &format!("correo {n}"),
        )
    };
    mail_servers
        .send(&customer_address, &support_address, &message(1))
        .await;
    assert_eq!(emails_of(a, &customer_address, 1).await.len(), 1);
    let lease = format!("imap:{mailbox}");
    let holder = lease_holder(a, &lease).await.expect("a node holds the mailbox");
    let mut ids = Vec::new();
    for node in &nodes {
        ids.push(node.get("/readyz").await.1["node"].as_str().unwrap().to_owned());
    }
    let victim = ids
        .iter()
        .position(|id| *id == holder)
        .expect("the holder is one of ours");
    let survivor = &nodes[(victim + 1) % 3];

    processes[victim].kill().await;
    let killed = Instant::now();
    mail_servers
        .send(&customer_address, &support_address, &message(2))
        .await;
    let new_holder = loop {
        if let Some(h) = lease_holder(survivor, &lease).await
            && h != holder
        {
            break h;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "nobody took the mailbox over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let moved = killed.elapsed();
    let mails = emails_of(survivor, &customer_address, 2).await;
    let arrived = killed.elapsed();
    println!("mailbox lease moved {moved:?} after the kill; the mail sent meanwhile was stored after {arrived:?}");
    assert!(moved <= Duration::from_secs(10), "the lease moved after {moved:?}");
    assert!(ids.contains(&new_holder) && new_holder != holder);
    assert_eq!(mails.len(), 2, "the mail sent while nobody polled arrived: {mails:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails = emails_of(survivor, &customer_address, 3).await;
    let mut texts: Vec<&str> = mails.iter().map(|m| m["text"].as_str().unwrap().trim()).collect();
    texts.sort();
    assert_eq!(texts, ["correo 1", "correo 2"], "each mail once");
}

async fn lease_holder(app: &TestApp, lease: &str) -> Option<String> {
    let (status, cluster) = app.get("/api/v1/cluster").await;
    assert_eq!(status, StatusCode::OK, "{cluster}");
    cluster["leases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == lease)
        .map(|l| l["holder"].as_str().unwrap().to_owned())
}

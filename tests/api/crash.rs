//! The crash harness: the real `switchboard` binary takes a mixed stream (API touchpoints,
//! signed SMS webhooks, agent replies delivered to a webhook) from concurrent senders while it
//! is killed with SIGKILL at random moments and restarted, again and again. Afterwards every
//! acknowledged message is in the store exactly once, nothing stored is half-written, the search
//! index agrees with the store, and every acknowledged reply was delivered at least once and
//! recorded once.
//!
//! Short mode (the test suite): 20 kills. Long mode: `SWITCHBOARD_CRASH_KILLS=1000`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_connectors::webhook;

use crate::helpers::HubProcess;

const PASSWORD: &str = "crash-admin-password";

/// What the senders sent and what the hub acknowledged.
#[derive(Default)]
struct Ledger {
    sent: HashSet<String>,
    acked: HashSet<String>,
    replies_acked: HashSet<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill_exactly_once() {
    switchboard::startup::install_crypto_provider();
    let kills: usize = std::env::var("SWITCHBOARD_CRASH_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let mut hub = HubProcess::new(
        PASSWORD,
        &[
            (
                "SWITCHBOARD__DATABASE__URL",
                format!("sqlite://{}/hub.db", dir.path().display()),
            ),
            (
                "SWITCHBOARD__INDEX__PATH",
                dir.path().join("index").display().to_string(),
            ),
        ],
    );
    hub.start().await;
    let base = hub.base.clone();

    // Set-up, as an operator would: a token, an API inbox, an SMS gateway, a webhook inbox.
    let session = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let login: Value = session
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "admin@switchboard.local", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token: Value = session
        .post(format!("{base}/api/v1/api-tokens"))
        .header("x-csrf-token", login["csrf_token"].as_str().unwrap())
        .json(&json!({"name": "crash", "role": "admin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let create = async |body: Value| -> Value {
        let r = http
            .post(format!("{base}/api/v1/channel-accounts"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.unwrap()
    };
    let delivered: Arc<Mutex<Vec<String>>> = Arc::default();
    let receiver = {
        let delivered = delivered.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let delivered = delivered.clone();
                async move {
                    if let Some(id) = headers.get("x-switchboard-delivery").and_then(|v| v.to_str().ok()) {
                        delivered.lock().unwrap().push(id.to_owned());
                    }
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    };
    let api = create(json!({"kind": "api", "name": "crm"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sms = create(json!({"kind": "sms", "name": "gateway", "settings": {"provider": "generic"}})).await;
    let (sms_id, sms_secret) = (
        sms["id"].as_str().unwrap().to_owned(),
        sms["secret"].as_str().unwrap().to_owned(),
    );
    let hooked = create(json!({"kind": "api", "name": "hooked", "settings": {"webhook_url": receiver}})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first: Value = http
        .post(format!("{base}/api/v1/interactions"))
        .bearer_auth(&token)
        .json(&json!({"channel_account_id": hooked, "external_id": "start", "contact": {"email": "hook@example.com"}, "text": "start"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conversation = first["interaction"]["conversation_id"].as_str().unwrap().to_owned();

    // Senders: each message has a unique id; an answer in 2xx is an acknowledgement.
    let ledger: Arc<Mutex<Ledger>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    for _ in 0..6 {
        let (http, base, token, api, sms_id, sms_secret, conversation) = (
            http.clone(),
            base.clone(),
            token.clone(),
            api.clone(),
            sms_id.clone(),
            sms_secret.clone(),
            conversation.clone(),
        );
        let (ledger, stop, counter) = (ledger.clone(), stop.clone(), counter.clone());
        senders.push(tokio::spawn(async move {
            // Like a provider, a sender retries what was not acknowledged, with the same id.
            let mut retry: Vec<u64> = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let n = match retry.pop() {
                    Some(n) => n,
                    None => counter.fetch_add(1, Ordering::SeqCst),
                };
                let result = match n % 3 {
                    0 => {
                        let id = format!("p-{n}");
                        ledger.lock().unwrap().sent.insert(id.clone());
                        http.post(format!("{base}/api/v1/interactions"))
                            .bearer_auth(&token)
                            .json(&json!({"channel_account_id": api, "external_id": id, "contact": {"email": format!("c{}@example.com", n % 40)}, "text": format!("crashtest {id}")}))
                            .send()
                            .await
                            .map(|r| (r.status(), id))
                    }
                    1 => {
                        let id = format!("s-{n}");
                        ledger.lock().unwrap().sent.insert(id.clone());
                        let body = serde_json::to_vec(&json!({"message_id": id, "from": format!("+3460000{:04}", n % 40), "text": format!("crashtest {id}")})).unwrap();
                        let ts = time::OffsetDateTime::now_utc().unix_timestamp();
                        http.post(format!("{base}/webhooks/sms/{sms_id}/generic"))
                            .header("content-type", "application/json")
                            .header(webhook::TIMESTAMP_HEADER, ts.to_string())
                            .header(webhook::SIGNATURE_HEADER, webhook::sign(sms_secret.as_bytes(), ts, &body))
                            .body(body)
                            .send()
                            .await
                            .map(|r| (r.status(), id))
                    }
                    _ => match http
                        .post(format!("{base}/api/v1/conversations/{conversation}/replies"))
                        .bearer_auth(&token)
                        .json(&json!({"text": format!("crashtest r-{n}")}))
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == StatusCode::CREATED => {
                            let reply: Value = match r.json().await {
                                Ok(v) => v,
                                Err(_) => continue,
                            };
                            ledger.lock().unwrap().replies_acked.insert(reply["id"].as_str().unwrap().to_owned());
                            continue;
                        }
                        Ok(_) => continue,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    },
                };
                match result {
                    Ok((status, id)) if status.is_success() => {
                        ledger.lock().unwrap().acked.insert(id);
                    }
                    Ok((status, id)) => panic!("{id} was refused with {status}"),
                    // The hub is down or was killed mid-request: not acknowledged; send it again.
                    Err(_) => {
                        if retry.len() < 50 {
                            retry.push(n);
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }

    // Kill it at pseudo-random moments (a fixed seed: the same run every time).
    let mut seed: u64 = 0x5eed_cafe;
    for _ in 0..kills {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        tokio::time::sleep(Duration::from_millis(100 + (seed >> 33) % 500)).await;
        hub.kill().await;
        hub.start().await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for sender in senders {
        sender.await.unwrap();
    }
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    assert!(
        ledger.acked.len() > 100,
        "the run acknowledged only {} messages",
        ledger.acked.len()
    );

    let get = async |path: &str| -> Value {
        http.get(format!("{base}{path}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };
    // Catch-up after the last restart: the index reaches the store, and the outbox delivers every
    // acknowledged reply. A delivery cut short by a kill is retried when its lease (60 s) expires.
    let started = Instant::now();
    let mut unsent: HashSet<String> = ledger.replies_acked.clone();
    loop {
        let ready: Value = http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut still = HashSet::new();
        for id in &unsent {
            let state = get(&format!("/api/v1/interactions/{id}")).await;
            if state["delivery"]["status"] != "sent" {
                still.insert(id.clone());
            }
        }
        unsent = still;
        if ready["index_seq"] == ready["store_seq"] && unsent.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "no catch-up: {ready}, {} replies unsent",
            unsent.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let seen: HashSet<String> = delivered.lock().unwrap().iter().cloned().collect();
    let undelivered: Vec<&String> = ledger.replies_acked.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(
        undelivered.is_empty(),
        "recorded as sent but never received: {undelivered:?}"
    );
    let (search_total, replies_sent): (u64, usize) = {
        let found = get("/api/v1/search?q=crashtest&limit=1").await;
        (found["total"].as_u64().unwrap(), ledger.replies_acked.len())
    };
    hub.kill().await;

    // The store, read directly.
    let store = switchboard::store::Store::connect(&format!("sqlite://{}/hub.db", dir.path().display()), 1)
        .await
        .unwrap();
    let db = store.reader();
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT external_id FROM interactions WHERE channel_account_id IN ($1, $2)")
            .bind(&api)
            .bind(&sms_id)
            .fetch_all(db)
            .await
            .unwrap();
    let stored_set: HashSet<String> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), stored_set.len(), "a message stored twice");
    let lost: Vec<&String> = ledger.acked.iter().filter(|id| !stored_set.contains(*id)).collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    let phantoms: Vec<&String> = stored_set.iter().filter(|id| !ledger.sent.contains(*id)).collect();
    assert!(phantoms.is_empty(), "stored but never sent: {phantoms:?}");
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM interactions i
         LEFT JOIN conversations c ON c.id = i.conversation_id LEFT JOIN contacts k ON k.id = i.contact_id
         WHERE c.id IS NULL OR k.id IS NULL OR i.conversation_seq IS NULL",
    )
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(orphans, 0, "half-written interactions");
    let crashtest: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM interactions WHERE body_text LIKE 'crashtest %'")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(search_total as i64, crashtest, "the index agrees with the store");

    // Replies: each acknowledged one has one outbox row, sent, and reached the webhook.
    let outbox: Vec<(String, String)> =
        sqlx::query_as("SELECT interaction_id, status FROM outbox WHERE channel_account_id = $1")
            .bind(&hooked)
            .fetch_all(db)
            .await
            .unwrap();
    let sent: HashSet<&str> = outbox
        .iter()
        .filter(|(_, s)| s == "sent")
        .map(|(i, _)| i.as_str())
        .collect();
    for reply in &ledger.replies_acked {
        assert!(
            sent.contains(reply.as_str()),
            "reply {reply} acknowledged but not recorded as sent"
        );
    }
    assert_eq!(
        outbox.iter().map(|(i, _)| i).collect::<HashSet<_>>().len(),
        outbox.len(),
        "a reply queued twice"
    );
    println!(
        "{kills} kills: {} sent, {} acknowledged and all stored once; {replies_sent} replies delivered",
        ledger.sent.len(),
        ledger.acked.len()
    );
}

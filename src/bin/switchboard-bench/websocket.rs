//! Scenario 10: chat WebSockets. The hub runs as its own process here (the release `switchboard`
//! binary beside this one, on a fresh SQLite store), so its memory is read alone from
//! `/proc/<pid>/status`.
//!
//! 1. Idle connections: visitors open `--ws-connections` chat sockets (each with its own signed
//!    visitor token) and stay connected; the hub's resident memory before and after gives the
//!    memory per connection and the connections per GiB.
//! 2. Delivery: 100 of those visitors send chat messages at a paced `--ws-rate` per second for
//!    `--ws-seconds`, while the other connections stay open and idle; an agent's socket
//!    receives each as it is stored. Latency is from the visitor's send to the agent's
//!    receipt. Every message is a durable ingest before it is pushed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::TempDir;
use crate::stats::{Percentiles, Table, ms, rate};

const PASSWORD: &str = "bench-ws-admin-password";
const ADMIN: &str = "admin@switchboard.local";
/// Visitors that send during the delivery test.
const SENDERS: usize = 100;
/// Sockets opened at once while connecting.
const OPENING: usize = 64;
const GOAL_PER_GIB: f64 = 50_000.0;
const GOAL_P99: Duration = Duration::from_millis(10);

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The hub binary as a child process on a fresh store.
struct HubProcess {
    child: tokio::process::Child,
    base: String,
    _dir: TempDir,
}

impl HubProcess {
    async fn start(binary: &Path) -> Result<Self> {
        let dir = TempDir::new("switchboard-bench-ws")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let base = format!("http://127.0.0.1:{port}");
        let child = tokio::process::Command::new(binary)
            .arg("serve")
            .env("SWITCHBOARD__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("SWITCHBOARD__SERVER__PUBLIC_URL", &base)
            .env(
                "SWITCHBOARD__DATABASE__URL",
                format!("sqlite://{}/hub.db", dir.path().display()),
            )
            .env("SWITCHBOARD__INDEX__PATH", dir.path().join("index"))
            .env("SWITCHBOARD__AUTH__INITIAL_ADMIN_PASSWORD", PASSWORD)
            .env("SWITCHBOARD__LOG__LEVEL", "warn")
            // Every visitor here comes from 127.0.0.1 and sends ten messages a second: the
            // flood limits would (rightly) stop the benchmark.
            .env("SWITCHBOARD__CHAT__SESSIONS_PER_MINUTE_PER_ADDRESS", "100000000")
            .env("SWITCHBOARD__CHAT__VISITOR_MESSAGES_PER_MINUTE", "100000000")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the hub did not become ready");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self { child, base, _dir: dir })
    }

    /// The hub's resident memory, in KiB.
    fn rss_kib(&self) -> Result<f64> {
        let pid = self.child.id().context("the hub has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse().ok())
            .ok_or_else(|| anyhow!("no VmRSS for the hub"))
    }
}

pub async fn run(connections: usize, per_second: u32, seconds: u64) -> Result<()> {
    let Some(binary) = hub_binary()? else {
        println!(
            "\n### 10. chat WebSockets\n\nskipped: the release `switchboard` binary is not beside this one (cargo build --release --bins)"
        );
        return Ok(());
    };
    let hub = HubProcess::start(&binary).await?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build()?;
    let login = http
        .post(format!("{}/api/v1/auth/login", hub.base))
        .json(&json!({"email": ADMIN, "password": PASSWORD}))
        .send()
        .await?;
    let cookie = login
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .context("login set no cookie")?;
    let csrf = login.json::<Value>().await?["csrf_token"]
        .as_str()
        .context("no csrf token")?
        .to_owned();
    let account: Value = http
        .post(format!("{}/api/v1/channel-accounts", hub.base))
        .header(reqwest::header::COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"kind": "chat", "name": "bench web"}))
        .send()
        .await?
        .json()
        .await?;
    let account = account["id"].as_str().context("no chat account id")?.to_owned();

    // 1. Idle connections.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = hub.rss_kib()?;
    let opening = Instant::now();
    let ws_base = hub.base.replace("http://", "ws://");
    let opened: Vec<Result<Socket>> = futures::stream::iter(0..connections)
        .map(|_| visitor(&http, &hub.base, &ws_base, &account))
        .buffer_unordered(OPENING)
        .collect()
        .await;
    let open_time = opening.elapsed();
    let failed = opened.iter().filter(|s| s.is_err()).count();
    if let Some(Err(e)) = opened.iter().find(|s| s.is_err()) {
        eprintln!("warning: {failed} visitor sockets failed to open; the first: {e:#}");
    }
    let mut sockets: Vec<Socket> = opened.into_iter().flatten().collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = hub.rss_kib()?;
    let per_connection = (after - before) / sockets.len().max(1) as f64;
    let per_gib = (1024.0 * 1024.0) / per_connection.max(0.001);
    let mut idle = Table::new(
        "websocket_idle",
        format!(
            "10a. idle chat WebSockets held by the hub ({} KiB resident before)",
            before as u64
        ),
        &[
            "open",
            "failed",
            "opened in",
            "hub RSS after MiB",
            "KiB per connection",
            "connections per GiB",
            "goal ≥ 50,000 per GiB",
        ],
    );
    idle.row(vec![
        sockets.len().to_string(),
        failed.to_string(),
        format!("{:.1} s", open_time.as_secs_f64()),
        format!("{:.0}", after / 1024.0),
        format!("{per_connection:.1}"),
        format!("{per_gib:.0}"),
        if per_gib >= GOAL_PER_GIB {
            "met".into()
        } else {
            "missed".into()
        },
    ]);
    idle.note("each connection is a visitor with its own signed token, subscribed to its chat's events");
    idle.print();

    // 2. Visitor-to-agent delivery under load, the idle connections still open.
    let (mut agent, _) = {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("{ws_base}/api/v1/ws").into_client_request()?;
        request.headers_mut().insert("cookie", cookie.parse()?);
        tokio_tungstenite::connect_async(request).await?
    };
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let total = per_second as usize * seconds as usize;
    let received = {
        let sent_at = sent_at.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(total);
            let deadline = Instant::now() + Duration::from_secs(seconds + 30);
            while latencies.len() < total {
                let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout_at(deadline.into(), agent.next()).await
                else {
                    break;
                };
                let Ok(event) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if event["type"] != "interaction_created" {
                    continue;
                }
                let Some(client_id) = event["interaction"]["details"]["client_id"].as_str() else {
                    continue;
                };
                if let Some(at) = sent_at.lock().expect("sent map").remove(client_id) {
                    latencies.push(at.elapsed());
                }
            }
            latencies
        })
    };
    let senders: Vec<Socket> = sockets.drain(..SENDERS.min(sockets.len())).collect();
    let mut outboxes = Vec::new();
    for socket in senders {
        let (mut sink, mut stream) = socket.split();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                if sink.send(Message::Text(frame.into())).await.is_err() {
                    return;
                }
            }
        });
        // Acknowledgements come back to the visitor; read them so nothing backs up.
        tokio::spawn(async move { while stream.next().await.is_some() {} });
        outboxes.push(tx);
    }
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    for i in 0..total {
        ticker.tick().await;
        let client_id = format!("bench-{i}");
        let frame =
            json!({"type": "message", "client_id": client_id, "text": format!("mensaje de prueba {i}")}).to_string();
        sent_at.lock().expect("sent map").insert(client_id, Instant::now());
        let _ = outboxes[i % outboxes.len()].send(frame);
    }
    let sending = started.elapsed();
    let latencies = received.await?;
    let p = Percentiles::of(&latencies);
    let mut delivery = Table::new(
        "websocket_delivery",
        format!(
            "10b. visitor to agent over WebSockets ({} visitors sending, {} idle connections open, one agent socket)",
            outboxes.len(),
            sockets.len()
        ),
        &[
            "target/s",
            "sent/s",
            "sent",
            "delivered",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "goal p99 ≤ 10 ms",
        ],
    );
    delivery.row(vec![
        per_second.to_string(),
        rate(total, sending),
        total.to_string(),
        latencies.len().to_string(),
        ms(p.p50),
        ms(p.p95),
        ms(p.p99),
        ms(p.max),
        if p.p99 <= GOAL_P99 && latencies.len() == total {
            "met".into()
        } else {
            "missed".into()
        },
    ]);
    delivery.note(
        "from the visitor's send to the agent socket's receipt; each message is stored durably before it is pushed",
    );
    delivery.print();
    drop(sockets);
    Ok(())
}

/// The `switchboard` binary beside this one, if it was built.
fn hub_binary() -> Result<Option<PathBuf>> {
    let binary = std::env::current_exe()
        .context("the benchmark's own path")?
        .with_file_name("switchboard");
    Ok(binary.exists().then_some(binary))
}

/// A new visitor: a signed token from the session endpoint, then the socket and its hello.
async fn visitor(http: &reqwest::Client, base: &str, ws_base: &str, account: &str) -> Result<Socket> {
    let session: Value = http
        .post(format!("{base}/chat/{account}/session"))
        .json(&json!({"token": null}))
        .send()
        .await?
        .json()
        .await?;
    let token = session["token"].as_str().context("no visitor token")?;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{ws_base}/chat/{account}/ws?token={token}")).await?;
    match socket.next().await {
        Some(Ok(Message::Text(_))) => Ok(socket),
        other => Err(anyhow!("no hello from the chat socket: {other:?}")),
    }
}

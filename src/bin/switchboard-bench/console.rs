//! Scenario 8: the agent console's inbox with 10,000 open conversations waiting: the inbox API
//! under load, and the first paint of the inbox in headless Chromium (from navigation start to
//! the rows on screen, measured by the page's own clock), when Chromium and the test suite's
//! Playwright driver are installed.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use switchboard::domain::{ChannelKind, Direction, EmailAddress, Handle};
use switchboard_connectors::{Content, InboundEnvelope, ThreadingHints};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::harness::{ADMIN_EMAIL, ADMIN_PASSWORD, Bench};
use crate::seed::create_account;
use crate::stats::{Percentiles, Table, closed_loop, ms};

/// Open conversations waiting in the inbox.
pub const OPEN_CONVERSATIONS: usize = 10_000;
const API_LEVELS: [usize; 2] = [1, 8];
const API_REQUESTS: usize = 300;
const PAINTS: usize = 10;
const DEADLINE: Duration = Duration::from_secs(120);
/// The console's first paint must stay under this.
const GOAL_MS: f64 = 1_000.0;

pub async fn run(bench: &Bench) -> Result<()> {
    let account = create_account(bench, ChannelKind::Api, "bench console", json!({})).await?;
    let start = time::OffsetDateTime::now_utc() - time::Duration::hours(12);
    let envelopes: Vec<InboundEnvelope> = (0..OPEN_CONVERSATIONS)
        .map(|i| InboundEnvelope {
            channel_account_id: account.id.0,
            channel: ChannelKind::Api,
            external_id: format!("console-{i}"),
            direction: Direction::Inbound,
            contact: Handle::Email(EmailAddress::parse(&format!("waiting{i}@example.com")).expect("a valid address")),
            contact_name: Some(format!("Cliente {i}")),
            occurred_at: start + time::Duration::seconds(i as i64 * 4),
            threading: ThreadingHints::default(),
            content: Content {
                subject: Some(format!("Pedido {i}")),
                text: Some(format!(
                    "Hola, el pedido {i} no ha llegado todavía y necesito saber cuándo llega."
                )),
                html: None,
            },
            attachments: vec![],
            details: json!({}),
            cursor: None,
            agent_extension: None,
            needs_reply: true,
        })
        .collect();
    for chunk in envelopes.chunks(2_000) {
        let failed = bench
            .hub
            .ingest_many(chunk.to_vec())
            .await
            .into_iter()
            .filter(|o| o.is_err())
            .count();
        if failed > 0 {
            bail!("{failed} conversations of the console data set were not stored");
        }
    }

    let mut table = Table::new(
        "console",
        format!("8. agent console inbox ({OPEN_CONVERSATIONS} open conversations waiting)"),
        &["what", "samples", "p50 ms", "p95 ms", "p99 ms", "max ms"],
    );
    for clients in API_LEVELS {
        let http = bench.http.clone();
        let url = format!("{}/api/v1/inbox?limit=200", bench.base);
        let token = bench.token.clone();
        let run = closed_loop(clients, API_REQUESTS, DEADLINE, move |_| {
            let request = http.get(&url).bearer_auth(&token);
            async move {
                match request.send().await {
                    Ok(r) if r.status().is_success() => match r.json::<Vec<serde::de::IgnoredAny>>().await {
                        Ok(rows) => (0, rows.len() == 200, rows.len() as u64),
                        Err(_) => (0, false, 0),
                    },
                    _ => (0, false, 0),
                }
            }
        })
        .await;
        let latencies = run.latencies(None, true);
        let p = Percentiles::of(&latencies);
        table.row(vec![
            format!("GET /api/v1/inbox?limit=200, {clients} client(s)"),
            format!("{} ({} errors)", p.count, run.errors(None)),
            ms(p.p50),
            ms(p.p95),
            ms(p.p99),
            ms(p.max),
        ]);
    }
    match first_paints(bench).await {
        Ok(paints) => {
            let p = Percentiles::of(&paints);
            table.row(vec![
                "console first paint in Chromium (navigation start to 200 inbox rows on screen)".into(),
                p.count.to_string(),
                ms(p.p50),
                ms(p.p95),
                ms(p.p99),
                ms(p.max),
            ]);
            let worst = p.max.as_secs_f64() * 1_000.0;
            table.note(format!(
                "goal: first paint under {GOAL_MS:.0} ms: {} (worst of {PAINTS} loads {worst:.0} ms)",
                if worst < GOAL_MS { "met" } else { "missed" }
            ));
        }
        Err(e) => table.note(format!("console first paint not measured: {e:#}")),
    }
    table.note("the inbox API answers 200 rows, longest wait first, each with the contact, a preview and labels; the first paint includes loading the console's modules, /auth/me, the inbox and labels, and rendering");
    table.print();
    Ok(())
}

/// Loads the console `PAINTS` times in headless Chromium and returns, for each load, the page's
/// own time from navigation start until the inbox rows are in the document and painted.
async fn first_paints(bench: &Bench) -> Result<Vec<Duration>> {
    let root = env!("CARGO_MANIFEST_DIR");
    let driver = format!("{root}/tests/browser/console.mjs");
    if !std::path::Path::new(&format!("{root}/tests/browser/node_modules/playwright-core")).exists()
        || !std::path::Path::new("/usr/bin/chromium").exists()
    {
        bail!("needs /usr/bin/chromium and tests/browser/node_modules (scripts/test.sh installs both)");
    }
    let artifacts = bench.dir.path().join("browser");
    let mut node = tokio::process::Command::new("node")
        .arg(&driver)
        .arg(&artifacts)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting node")?;
    let mut stdin = node.stdin.take().context("node stdin")?;
    let mut lines = BufReader::new(node.stdout.take().context("node stdout")?).lines();
    let mut run = async |command: Value| -> Result<Value> {
        stdin.write_all(format!("{command}\n").as_bytes()).await?;
        let line = tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .context("the browser did not answer")??
            .context("the browser driver exited")?;
        let answer: Value = serde_json::from_str(&line)?;
        if answer["ok"] != true {
            bail!("browser command {command} failed: {}", answer["error"]);
        }
        Ok(answer["value"].clone())
    };
    let page = "agent";
    run(json!({"op": "open", "page": page, "url": format!("{}/console/", bench.base)})).await?;
    run(json!({"op": "fill", "page": page, "label": "Email", "value": ADMIN_EMAIL})).await?;
    run(json!({"op": "fill", "page": page, "label": "Password", "value": ADMIN_PASSWORD})).await?;
    run(json!({"op": "click", "page": page, "role": "button", "name": "Sign in"})).await?;
    run(json!({"op": "waitCount", "page": page, "selector": ".conversations li[data-channel]", "count": 200, "timeout": 60000}))
        .await?;
    let rows_painted = "while (document.querySelectorAll('.conversations li[data-channel]').length < 200) \
                        await new Promise((r) => setTimeout(r, 2)); \
                        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))); \
                        return performance.now();";
    let mut paints = Vec::with_capacity(PAINTS);
    for _ in 0..PAINTS {
        run(json!({"op": "goto", "page": page, "url": format!("{}/console/", bench.base)})).await?;
        let at = run(json!({"op": "evaluate", "page": page, "body": rows_painted})).await?;
        let millis = at.as_f64().context("the page returned no time")?;
        paints.push(Duration::from_secs_f64(millis / 1_000.0));
    }
    drop(stdin);
    let _ = node.wait().await;
    Ok(paints)
}

//! Scenario 5: signed Twilio inbound-SMS webhooks, each acknowledged only once durable, from 8,
//! 32 and 128 concurrent clients.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use switchboard::domain::ChannelAccountId;
use switchboard_connectors::sms::twilio;

use crate::data;
use crate::harness::{Bench, PUBLIC_URL, REQUEST_TIMEOUT};
use crate::seed::Dataset;
use crate::stats::{LoadRun, Percentiles, Table, closed_loop_with, cpu_per, ms, process_cpu, rate};
use crate::wire::Connection;

pub const LEVELS: [usize; 3] = [8, 32, 128];
const LEVEL_DEADLINE: Duration = Duration::from_secs(120);
const GOAL_RATE: f64 = 5_000.0;
const GOAL_P99: Duration = Duration::from_millis(50);
const TO: &str = "+34910000000";

/// An SMS account made for the benchmark, with what a client needs to sign its webhooks.
pub struct SmsAccount {
    account_id: ChannelAccountId,
    path: String,
    account_sid: String,
    auth_token: String,
    bodies: Arc<Vec<String>>,
}

/// Creates the Twilio SMS account the webhooks are sent to.
pub async fn sms_account(bench: &Bench, dataset: &Dataset) -> Result<SmsAccount> {
    let mut rng = StdRng::seed_from_u64(dataset.seed ^ 0x0073_6d73);
    let account_sid = format!("AC{:032x}", rng.random::<u128>());
    let auth_token = format!("{:032x}", rng.random::<u128>());
    let (status, account) = bench
        .post(
            "/api/v1/channel-accounts",
            json!({
                "kind": "sms",
                "name": "bench",
                "settings": {"provider": "twilio", "account_sid": account_sid, "from": TO, "api_base_url": "https://api.twilio.com"},
                "secret": auth_token,
            }),
        )
        .await?;
    if status != reqwest::StatusCode::CREATED {
        bail!("creating the sms account answered {status}: {account}");
    }
    let id = account["id"].as_str().context("no id for the sms account")?.to_owned();
    let account_id: ChannelAccountId = id.parse().context("the sms account id")?;
    let bodies = (0..256)
        .map(|i| {
            let length = rng.random_range(15..150);
            data::text(&mut rng, i % 3 != 0, length)
        })
        .collect();
    Ok(SmsAccount {
        account_id,
        path: format!("/webhooks/sms/{id}/twilio"),
        account_sid,
        auth_token,
        bodies: Arc::new(bodies),
    })
}

/// One load level: `messages` signed webhooks with MessageSids unique to `tag`, from `clients`
/// clients, spread round-robin over `bases` (the nodes' URLs); returns when every answer is in.
/// Each client keeps one connection to each node, as a provider's sender keeps its own.
/// The requests are encoded and signed before the clock starts, as a provider signs them on
/// its own machines: the clients only send them.
pub async fn send(
    dataset: &Dataset,
    sms: &SmsAccount,
    tag: usize,
    clients: usize,
    messages: usize,
    bases: &[String],
) -> LoadRun {
    let signed_url = format!("{PUBLIC_URL}{}", sms.path);
    let requests: Arc<Vec<(bytes::Bytes, String)>> = Arc::new(
        (0..messages)
            .map(|i| {
                let params = webhook_params(dataset, sms, tag, i);
                let signature = twilio::signature(&sms.auth_token, &signed_url, &params);
                let body = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&params)
                    .finish();
                (bytes::Bytes::from(body), signature)
            })
            .collect(),
    );
    let bases = bases.to_vec();
    let path: Arc<str> = sms.path.as_str().into();
    closed_loop_with(
        clients,
        messages,
        LEVEL_DEADLINE,
        move |_| {
            let connections = bases.iter().map(|base| Connection::to(base, REQUEST_TIMEOUT)).collect();
            async move { connections }
        },
        move |mut connections: Vec<Connection>, i| {
            let requests = requests.clone();
            let path = path.clone();
            async move {
                let (body, signature) = &requests[i];
                let count = connections.len();
                let connection = &mut connections[i % count];
                let request = connection.post(
                    &path,
                    &[
                        (twilio::SIGNATURE_HEADER, signature),
                        ("content-type", "application/x-www-form-urlencoded"),
                    ],
                    body.clone(),
                );
                let ok = matches!(connection.send(request).await, Some((status, _)) if status.is_success());
                (connections, (0, ok, i as u64))
            }
        },
    )
    .await
}

/// The form Twilio posts for inbound message `i` of level `tag`, in Twilio's field order.
fn webhook_params(dataset: &Dataset, sms: &SmsAccount, tag: usize, i: usize) -> Vec<(String, String)> {
    let person = &dataset.people[(i.wrapping_mul(2_654_435_761)) % dataset.people.len()];
    let message_sid = sid(dataset.seed, tag, i);
    [
        ("ToCountry", "ES"),
        ("ToState", ""),
        ("SmsMessageSid", &message_sid),
        ("NumMedia", "0"),
        ("ToCity", ""),
        ("FromZip", ""),
        ("SmsSid", &message_sid),
        ("FromState", ""),
        ("SmsStatus", "received"),
        ("FromCity", ""),
        ("Body", &sms.bodies[i % sms.bodies.len()]),
        ("FromCountry", person.country),
        ("To", TO),
        ("ToZip", ""),
        ("NumSegments", "1"),
        ("MessageSid", &message_sid),
        ("AccountSid", &sms.account_sid),
        ("From", person.phone.as_str()),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// How many of the run's acknowledged messages are in the store: all of them, or an
/// acknowledgement was not durable.
pub async fn durable(bench: &Bench, dataset: &Dataset, sms: &SmsAccount, tag: usize, run: &LoadRun) -> usize {
    let store = bench.hub.store.clone();
    let account_id = sms.account_id;
    let seed = dataset.seed;
    futures::stream::iter(run.samples.iter().filter(|s| s.ok).map(|s| s.value as usize))
        .map(|i| {
            let store = store.clone();
            async move {
                matches!(
                    store.interaction_by_external_id(account_id, &sid(seed, tag, i)).await,
                    Ok(Some(_))
                )
            }
        })
        .buffer_unordered(16)
        .filter(|found| std::future::ready(*found))
        .count()
        .await
}

pub async fn run(bench: &Bench, dataset: &Dataset, messages_per_level: usize) -> Result<()> {
    let sms = sms_account(bench, dataset).await?;
    let mut table = Table::new(
        "webhooks",
        format!("5. twilio inbound sms webhooks ({messages_per_level} signed messages per level, unique MessageSids)"),
        &[
            "clients",
            "sent",
            "acked",
            "errors",
            "acks/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "durable",
            "CPU µs/ack",
            "goal ≥ 5000/s, p99 ≤ 50 ms",
        ],
    );
    for (level, clients) in LEVELS.into_iter().enumerate() {
        let bases = [bench.base.clone()];
        let cpu_before = process_cpu();
        let run = send(dataset, &sms, level, clients, messages_per_level, &bases).await;
        // Indexing the level's messages is part of their cost; what is still behind when the
        // last answer is in is waited for before the clock stops.
        bench.wait_for_index(LEVEL_DEADLINE).await?;
        let cpu = process_cpu().zip(cpu_before).map(|(after, before)| after - before);
        let found = durable(bench, dataset, &sms, level, &run).await;
        let acked = run.samples.iter().filter(|s| s.ok).count();
        let p = Percentiles::of(&run.latencies(None, true));
        let acks_per_s = acked as f64 / run.elapsed.as_secs_f64().max(1e-9);
        let goal = match (acks_per_s >= GOAL_RATE, p.p99 <= GOAL_P99) {
            (true, true) => "met".to_owned(),
            (r, l) => format!(
                "missed ({}{}{})",
                if r { "" } else { "rate" },
                if !r && !l { ", " } else { "" },
                if l { "" } else { "p99" }
            ),
        };
        table.row(vec![
            clients.to_string(),
            run.count(None).to_string(),
            acked.to_string(),
            run.errors(None).to_string(),
            rate(acked, run.elapsed),
            ms(p.p50),
            ms(p.p95),
            ms(p.p99),
            format!("{found}/{acked}"),
            cpu_per(cpu, acked),
            goal,
        ]);
        if run.cut_short {
            table.note(format!(
                "{clients} clients: stopped at the {LEVEL_DEADLINE:?} deadline after {} messages",
                run.count(None)
            ));
        }
    }
    table.note("durable: acknowledged messages found in the store afterwards by their MessageSid");
    table.note(
        "CPU µs/ack: the process's CPU time (every thread: client, HTTP, hub, its indexing) from the level's start \
         until the search index holds its messages, over the messages acknowledged",
    );
    table.print();
    http_alone(dataset, &sms, messages_per_level).await
}

/// The same requests from the same client, answered by a route of the benchmark's own that
/// reads the form and answers TwiML, without verifying or storing anything: how many webhooks
/// per second the HTTP stack and the client take on this machine before the hub does any work.
async fn http_alone(dataset: &Dataset, sms: &SmsAccount, messages_per_level: usize) -> Result<()> {
    let app = axum::Router::new().route(
        "/webhooks/sms/{account}/twilio",
        axum::routing::post(|_: axum::Form<Vec<(String, String)>>| async {
            (
                [(axum::http::header::CONTENT_TYPE, "text/xml; charset=utf-8")],
                twilio::twiml(None),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the answer-only server")?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut table = Table::new(
        "webhooks_http",
        "5b. the same webhooks answered without verifying or storing (the HTTP stack and the client alone)",
        &[
            "clients",
            "sent",
            "answered",
            "answers/s",
            "p50 ms",
            "p99 ms",
            "CPU µs/answer",
        ],
    );
    for (level, clients) in LEVELS.into_iter().enumerate() {
        let tag = LEVELS.len() + level;
        let cpu_before = process_cpu();
        let run = send(
            dataset,
            sms,
            tag,
            clients,
            messages_per_level,
            std::slice::from_ref(&base),
        )
        .await;
        let cpu = process_cpu().zip(cpu_before).map(|(after, before)| after - before);
        let answered = run.samples.iter().filter(|s| s.ok).count();
        let p = Percentiles::of(&run.latencies(None, true));
        table.row(vec![
            clients.to_string(),
            run.count(None).to_string(),
            answered.to_string(),
            rate(answered, run.elapsed),
            ms(p.p50),
            ms(p.p99),
            cpu_per(cpu, answered),
        ]);
    }
    server.abort();
    table.note(
        "an axum route in the benchmark's process, on the same runtime the hub serves from: the ceiling for the \
         table above on this machine, with the client sharing its cores",
    );
    table.print();
    Ok(())
}

/// A unique Twilio-shaped message id: `SM` and 32 hex digits.
fn sid(seed: u64, tag: usize, i: usize) -> String {
    format!("SM{:08x}{:04x}{:020x}", seed as u32, tag, i)
}

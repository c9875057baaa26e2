//! Scenario 7: write-to-searchable. Ingests at a paced rate and measures, for a sample, how long
//! after the ingest acknowledgement a search for a word unique to the interaction finds it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard::domain::ChannelKind;
use switchboard::search::Filters;
use switchboard_connectors::{Content, Direction, Handle, InboundEnvelope, ThreadingHints};
use tokio::sync::{Mutex, Semaphore};

use crate::data;
use crate::harness::Bench;
use crate::seed::{Dataset, create_account};
use crate::stats::{Percentiles, Table, ms, rate};

pub const RATES: [u32; 3] = [10, 100, 1_000];
/// About this many interactions per rate are followed until searchable.
const SAMPLES: usize = 50;
/// How often a sampled interaction is searched for.
const POLL: Duration = Duration::from_millis(5);
/// A sample not found by then counts as not found.
const GIVE_UP: Duration = Duration::from_secs(30);
/// Ingests in flight at once, at most.
const IN_FLIGHT: usize = 4_096;

#[derive(Default)]
struct Results {
    acks: Vec<Duration>,
    searchable: Vec<Duration>,
    not_found: usize,
    errors: usize,
    last_ack: Option<Instant>,
}

pub async fn run(bench: &Bench, dataset: &Dataset, seconds: u64) -> Result<()> {
    let account = create_account(bench, ChannelKind::Chat, "bench freshness", serde_json::json!({})).await?;
    let mut table = Table::new(
        "freshness",
        format!(
            "7. write to searchable (paced ingest for {seconds} s per rate; sampled interactions searched every {} ms)",
            POLL.as_millis()
        ),
        &[
            "target/s",
            "achieved/s",
            "ingested",
            "errors",
            "ack p50 ms",
            "ack p99 ms",
            "samples",
            "searchable p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "not found",
        ],
    );
    let mut rng = StdRng::seed_from_u64(dataset.seed ^ 0x0066_7265_7368);
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64 % 1_000_000_000);
    for (level, per_second) in RATES.into_iter().enumerate() {
        let waited = bench.wait_for_index(Duration::from_secs(1_800)).await?;
        let total = (per_second as u64 * seconds) as usize;
        let every = (total / SAMPLES).max(1);
        let results = Arc::new(Mutex::new(Results::default()));
        let limit = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second as f64));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut tasks = tokio::task::JoinSet::new();
        let started = Instant::now();
        for i in 0..total {
            ticker.tick().await;
            let person = &dataset.people[dataset.zipf.sample(&mut rng)];
            let token = unique_word(run, level, i);
            let length = rng.random_range(20..200);
            let text = format!("{} {token}", data::text(&mut rng, person.spanish, length));
            let envelope = InboundEnvelope {
                channel_account_id: account.id.0,
                channel: ChannelKind::Chat,
                external_id: format!("fresh-{}-{level}-{i}", dataset.seed),
                direction: Direction::Inbound,
                contact: Handle::Visitor(person.visitor),
                contact_name: Some(person.name.clone()),
                occurred_at: time::OffsetDateTime::now_utc(),
                threading: ThreadingHints::default(),
                content: Content {
                    subject: None,
                    text: Some(text),
                    html: None,
                },
                attachments: vec![],
                details: serde_json::json!({"page": "/help"}),
                cursor: None,
                agent_extension: None,
                needs_reply: true,
            };
            let permit = limit
                .clone()
                .acquire_owned()
                .await
                .context("the in-flight limit closed")?;
            let hub = bench.hub.clone();
            let results = results.clone();
            let sampled = i % every == 0;
            tasks.spawn(async move {
                let _permit = permit;
                let sent = Instant::now();
                let outcome = hub.ingest(&envelope).await;
                let acked = Instant::now();
                {
                    let mut r = results.lock().await;
                    match outcome {
                        Ok(_) => r.acks.push(acked - sent),
                        Err(_) => {
                            r.errors += 1;
                            return;
                        }
                    }
                    r.last_ack = Some(r.last_ack.map_or(acked, |l| l.max(acked)));
                }
                if !sampled {
                    return;
                }
                drop(_permit);
                loop {
                    let found = hub
                        .search
                        .search(&token, Filters::default(), 1, 0, false)
                        .await
                        .map(|page| page.total.count > 0)
                        .unwrap_or(false);
                    let waited = acked.elapsed();
                    if found {
                        results.lock().await.searchable.push(waited);
                        return;
                    }
                    if waited > GIVE_UP {
                        results.lock().await.not_found += 1;
                        return;
                    }
                    tokio::time::sleep(POLL).await;
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let r = results.lock().await;
        let span = r.last_ack.map_or(started.elapsed(), |l| l - started);
        let acks = Percentiles::of(&r.acks);
        let visible = Percentiles::of(&r.searchable);
        table.row(vec![
            per_second.to_string(),
            rate(r.acks.len(), span),
            r.acks.len().to_string(),
            r.errors.to_string(),
            ms(acks.p50),
            ms(acks.p99),
            (visible.count + r.not_found).to_string(),
            ms(visible.p50),
            ms(visible.p95),
            ms(visible.p99),
            ms(visible.max),
            r.not_found.to_string(),
        ]);
        if waited > Duration::from_secs(1) {
            table.note(format!(
                "{per_second}/s: waited {:.1} s for the index to catch up with earlier scenarios first",
                waited.as_secs_f64()
            ));
        }
    }
    table.note(format!(
        "the index commits when woken by an ingest and at least every {} ms (index.commit_interval_ms)",
        bench.hub.settings.index.commit_interval_ms
    ));
    table.print();
    Ok(())
}

/// A word that occurs in exactly one interaction: letters only, so no analyser splits it.
/// A word no other interaction holds: letters from the run, the rate and the sample. The run
/// is the start time, since a kept `--data-dir` store holds the words of earlier runs.
fn unique_word(run: u64, level: usize, i: usize) -> String {
    let mut n = run * 10_000_000 + level as u64 * 1_000_000 + i as u64;
    let mut word = String::from("zqx");
    loop {
        word.push(char::from(b'a' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            break;
        }
    }
    word
}

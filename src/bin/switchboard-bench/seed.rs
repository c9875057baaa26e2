//! Scenario 1 (seed/ingest) and scenario 2 (reindex).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use switchboard::domain::{ChannelAccount, ChannelKind, ContactId};
use switchboard::search::indexer::Indexer;
use switchboard::search::{SearchIndex, WriterThreads};
use switchboard::store::NewChannelAccount;

use crate::data::{self, Accounts, Person, Zipf};
use crate::harness::Bench;
use crate::stats::{Percentiles, Table, dir_size_mib, ms, peak_rss_mib, rate, secs};

/// Envelopes per `ingest_many` call.
const CHUNK: usize = 2_000;
/// Tasks ingesting chunks at the same time.
const TASKS: usize = 4;
/// How skewed the history is over people (1.0: the k-th person has 1/k of the first's).
pub const ZIPF_EXPONENT: f64 = 1.0;

/// What the data set is, for the scenarios after seeding.
pub struct Dataset {
    pub seed: u64,
    /// The interactions asked for (`--size`).
    pub size: usize,
    pub people: Arc<Vec<Person>>,
    pub zipf: Arc<Zipf>,
    /// The hub contact with the most interactions, and the person behind it.
    pub heavy_contact: Option<(ContactId, usize, u32)>,
    /// People with at least one SMS or call, heaviest first: caller lookup finds them.
    pub phone_people: Vec<usize>,
    pub seeded: usize,
    pub seed_started: Option<Instant>,
    pub seed_ended: Option<Instant>,
}

impl Dataset {
    /// The people only, for scenarios that need no seeded history.
    pub fn unseeded(seed: u64, size: usize) -> Self {
        let count = people_for(size);
        Self {
            seed,
            size,
            people: Arc::new(data::people(seed, count)),
            zipf: Arc::new(Zipf::new(count, ZIPF_EXPONENT)),
            heavy_contact: None,
            phone_people: Vec::new(),
            seeded: 0,
            seed_started: None,
            seed_ended: None,
        }
    }
}

/// The file of a kept data directory that records the data set seeded into it; written once
/// seeding has finished. A directory with a store but without it holds an interrupted seed,
/// which the next run resumes: the data is generated again from the seed into the same
/// accounts, and what is already stored comes back as duplicates.
pub const SEEDED_FILE: &str = "seeded.json";

/// What a kept data directory records of its data set; the people are generated again from
/// the seed.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Seeded {
    seed: u64,
    size: usize,
    seeded: usize,
    heavy_contact: Option<(ContactId, usize, u32)>,
    phone_people: Vec<usize>,
}

/// The data set a kept data directory already holds (`None`: seed it). A directory seeded with
/// another size or seed is refused rather than measured as if it were this one.
pub fn kept(bench: &Bench, seed: u64, size: usize) -> Result<Option<Dataset>> {
    let path = bench.data.join(SEEDED_FILE);
    if !bench.kept || !path.exists() {
        return Ok(None);
    }
    let seeded: Seeded =
        serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?)
            .with_context(|| format!("{} is not a seed record", path.display()))?;
    if (seeded.seed, seeded.size) != (seed, size) {
        anyhow::bail!(
            "{} holds --size {} --seed {}, not --size {size} --seed {seed}",
            bench.data.display(),
            seeded.size,
            seeded.seed
        );
    }
    let mut dataset = Dataset::unseeded(seed, size);
    dataset.seeded = seeded.seeded;
    dataset.heavy_contact = seeded.heavy_contact;
    dataset.phone_people = seeded.phone_people;
    Ok(Some(dataset))
}

/// Records a finished seed in a kept data directory.
pub fn keep(bench: &Bench, dataset: &Dataset) -> Result<()> {
    if !bench.kept {
        return Ok(());
    }
    let seeded = Seeded {
        seed: dataset.seed,
        size: dataset.size,
        seeded: dataset.seeded,
        heavy_contact: dataset.heavy_contact,
        phone_people: dataset.phone_people.clone(),
    };
    let path = bench.data.join(SEEDED_FILE);
    std::fs::write(&path, serde_json::to_vec(&seeded)?).with_context(|| format!("writing {}", path.display()))
}

/// About one person for every twenty interactions.
fn people_for(size: usize) -> usize {
    (size / 20).max(10)
}

/// The account `name` of an interrupted seed of this store, or a new one.
async fn seed_account(bench: &Bench, kind: ChannelKind, name: &str) -> Result<uuid::Uuid> {
    let existing = bench
        .hub
        .store
        .channel_accounts()
        .await
        .context("listing the accounts")?;
    match existing.into_iter().find(|a| a.kind == kind && a.name == name) {
        Some(account) => Ok(account.id.0),
        None => Ok(create_account(bench, kind, name, serde_json::json!({})).await?.id.0),
    }
}

pub async fn create_account(
    bench: &Bench,
    kind: ChannelKind,
    name: &str,
    settings: serde_json::Value,
) -> Result<ChannelAccount> {
    bench
        .hub
        .store
        .create_channel_account(NewChannelAccount {
            kind,
            name: name.into(),
            settings,
            secret: None,
        })
        .await
        .with_context(|| format!("creating the {kind} account"))
}

#[derive(Default)]
struct TaskResult {
    chunk_latencies: Vec<Duration>,
    stored: u64,
    duplicates: u64,
    errors: u64,
    first_errors: Vec<String>,
    /// Hub contact -> (interactions, person).
    contacts: HashMap<ContactId, (u32, u32)>,
    phone_people: Vec<u32>,
    per_channel: HashMap<ChannelKind, u64>,
    bytes: u64,
}

/// Scenario 1: ingests `size` generated interactions through `Hub::ingest_many`.
/// Seeds `size` interactions; then waits up to `metrics_wait` for the response-time metrics to
/// catch up after the burst, and reports how long they took (not waited for when zero).
pub async fn seed(bench: &Bench, seed: u64, size: usize, metrics_wait: Duration) -> Result<Dataset> {
    let mut dataset = Dataset::unseeded(seed, size);
    let accounts = Accounts {
        email: seed_account(bench, ChannelKind::Email, "bench email").await?,
        chat: seed_account(bench, ChannelKind::Chat, "bench chat").await?,
        sms: seed_account(bench, ChannelKind::Sms, "bench sms").await?,
        voice: seed_account(bench, ChannelKind::Voice, "bench voice").await?,
    };
    seed_account(bench, ChannelKind::Api, "bench api").await?;

    let chunks = size.div_ceil(CHUNK) as u64;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let hub = bench.hub.clone();
        let next = next.clone();
        let people = dataset.people.clone();
        let zipf = dataset.zipf.clone();
        tasks.spawn(async move {
            let mut result = TaskResult::default();
            loop {
                let chunk = next.fetch_add(1, Ordering::Relaxed);
                if chunk >= chunks {
                    break;
                }
                let first = chunk * CHUNK as u64;
                let len = (size as u64 - first).min(CHUNK as u64) as usize;
                let generated = {
                    let people = people.clone();
                    let zipf = zipf.clone();
                    match tokio::task::spawn_blocking(move || {
                        data::chunk(seed, chunk, first, len, &people, &zipf, &accounts)
                    })
                    .await
                    {
                        Ok(generated) => generated,
                        Err(e) => {
                            result.errors += len as u64;
                            result.first_errors.push(format!("generating chunk {chunk}: {e}"));
                            continue;
                        }
                    }
                };
                let persons: Vec<u32> = generated.iter().map(|g| g.person as u32).collect();
                let mut envelopes = Vec::with_capacity(generated.len());
                for g in generated {
                    let e = g.envelope;
                    *result.per_channel.entry(e.channel).or_default() += 1;
                    result.bytes += e.content.text.as_ref().map_or(0, String::len) as u64
                        + e.content.html.as_ref().map_or(0, String::len) as u64;
                    if matches!(e.channel, ChannelKind::Sms | ChannelKind::Voice) {
                        result.phone_people.push(g.person as u32);
                    }
                    envelopes.push(e);
                }
                let sent = Instant::now();
                let outcomes = hub.ingest_many(envelopes).await;
                result.chunk_latencies.push(sent.elapsed());
                for (outcome, person) in outcomes.into_iter().zip(persons) {
                    match outcome {
                        Ok(o) => {
                            // Stored by an interrupted seed of this store, or now.
                            match o.duplicate {
                                true => result.duplicates += 1,
                                false => result.stored += 1,
                            }
                            let entry = result.contacts.entry(o.interaction.contact_id).or_insert((0, person));
                            entry.0 += 1;
                        }
                        Err(e) => {
                            result.errors += 1;
                            if result.first_errors.len() < 3 {
                                result.first_errors.push(e.to_string());
                            }
                        }
                    }
                }
            }
            result
        });
    }
    let mut total = TaskResult::default();
    while let Some(done) = tasks.join_next().await {
        let part = done.context("a seeding task failed")?;
        total.chunk_latencies.extend(part.chunk_latencies);
        total.stored += part.stored;
        total.duplicates += part.duplicates;
        total.errors += part.errors;
        total.first_errors.extend(part.first_errors);
        for (contact, (n, person)) in part.contacts {
            total.contacts.entry(contact).or_insert((0, person)).0 += n;
        }
        total.phone_people.extend(part.phone_people);
        for (k, n) in part.per_channel {
            *total.per_channel.entry(k).or_default() += n;
        }
        total.bytes += part.bytes;
    }
    let elapsed = started.elapsed();
    let seed_ended = Instant::now();

    let mut phone_people = total.phone_people;
    phone_people.sort_unstable();
    phone_people.dedup();
    dataset.phone_people = phone_people.into_iter().map(|p| p as usize).collect();
    dataset.heavy_contact = total
        .contacts
        .iter()
        .max_by_key(|(id, (n, _))| (*n, **id))
        .map(|(id, (n, person))| (*id, *person as usize, *n));
    dataset.seeded = (total.stored + total.duplicates) as usize;
    dataset.seed_started = Some(started);
    dataset.seed_ended = Some(seed_ended);

    let p = Percentiles::of(&total.chunk_latencies);
    let mut table = Table::new(
        "seed",
        "1. seed / ingest (Hub::ingest_many, 2000 envelopes per call)",
        &[
            "interactions",
            "people",
            "hub contacts",
            "tasks",
            "seconds",
            "interactions/s",
            "chunk p50 ms",
            "chunk p95 ms",
            "chunk p99 ms",
            "duplicates",
            "errors",
            "peak RSS MiB",
            "store MiB",
        ],
    );
    table.row(vec![
        total.stored.to_string(),
        dataset.people.len().to_string(),
        total.contacts.len().to_string(),
        TASKS.to_string(),
        secs(elapsed),
        rate(total.stored as usize, elapsed),
        ms(p.p50),
        ms(p.p95),
        ms(p.p99),
        total.duplicates.to_string(),
        total.errors.to_string(),
        peak_rss_mib().map_or("-".into(), |m| format!("{m:.0}")),
        if bench.store_kind == "sqlite" {
            format!("{:.0}", sqlite_size_mib(bench))
        } else {
            "-".into()
        },
    ]);
    let mix: Vec<String> = [
        ChannelKind::Email,
        ChannelKind::Chat,
        ChannelKind::Sms,
        ChannelKind::Voice,
    ]
    .iter()
    .map(|k| format!("{k} {}", total.per_channel.get(k).copied().unwrap_or(0)))
    .collect();
    table.note(format!(
        "channel mix: {}; {:.1} MiB of text and html; heaviest contact holds {} interactions",
        mix.join(", "),
        total.bytes as f64 / (1024.0 * 1024.0),
        dataset.heavy_contact.map_or(0, |h| h.2)
    ));
    if total.duplicates > 0 {
        table.note(format!(
            "an interrupted seed of this store was resumed: {} interactions were already stored (duplicates), \
             and interactions/s counts only the {} stored now",
            total.duplicates, total.stored
        ));
    }
    for e in &total.first_errors {
        table.note(format!("error: {e}"));
    }
    if metrics_wait.is_zero() {
        table.note("response-time metrics: not waited for (--metrics-wait 0)");
        table.print();
        return Ok(dataset);
    }
    // The metrics worker yields to ingest during the burst and catches up after it.
    let caught_up = std::time::Instant::now();
    let mut behind = 0;
    while caught_up.elapsed() < metrics_wait {
        behind = bench.hub.store.conversations_behind(1).await.map_or(1, |b| b.len());
        if behind == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    table.note(if behind == 0 {
        format!(
            "response-time metrics of every conversation caught up {:.1} s after the last ingest",
            caught_up.elapsed().as_secs_f64()
        )
    } else {
        format!("response-time metrics still behind after {} s", metrics_wait.as_secs())
    });
    table.print();
    Ok(dataset)
}

fn sqlite_size_mib(bench: &Bench) -> f64 {
    ["switchboard.db", "switchboard.db-wal", "switchboard.db-shm"]
        .iter()
        .map(|f| {
            std::fs::metadata(bench.data.join(f))
                .map(|m| m.len() as f64 / (1024.0 * 1024.0))
                .unwrap_or(0.0)
        })
        .sum()
}

/// Scenario 2: the live indexer catching up with the seeded store, then a full rebuild into a
/// fresh index.
pub async fn reindex(bench: &Bench, dataset: &Dataset) -> Result<()> {
    let mut table = Table::new(
        "reindex",
        "2. reindex",
        &["what", "documents", "seconds", "docs/s", "index MiB"],
    );
    let lag = bench.wait_for_index(Duration::from_secs(3_600)).await?;
    let docs = bench.hub.search.num_docs();
    if let (Some(started), Some(ended)) = (dataset.seed_started, dataset.seed_ended) {
        let total = started.elapsed();
        table.row(vec![
            "live indexer: seed start to searchable".into(),
            docs.to_string(),
            secs(total),
            rate(docs as usize, total),
            format!("{:.0}", dir_size_mib(&bench.data.join("index"))),
        ]);
        table.note(format!(
            "the live indexer was still {} s behind when seeding ended ({} s after it)",
            secs(lag),
            secs(ended.elapsed())
        ));
    }

    let dir = bench.dir.path().join("rebuild-index");
    let (index, writer) = SearchIndex::open(&dir, bench.hub.settings.index.writer_memory_mb, WriterThreads::Rebuild)
        .with_context(|| format!("opening a fresh index in {}", dir.display()))?;
    let started = Instant::now();
    let mut indexer = Indexer::new(index.clone(), writer, bench.hub.store.clone());
    let count = indexer.rebuild().await.context("rebuilding the index")?;
    let elapsed = started.elapsed();
    table.row(vec![
        "full rebuild (Indexer::rebuild, fresh index)".into(),
        count.to_string(),
        secs(elapsed),
        rate(count, elapsed),
        format!("{:.0}", dir_size_mib(&dir)),
    ]);
    // Dropping the writer joins its threads: off the runtime. Its merge threads may still be
    // finishing a segment for a moment; whatever is left goes with the temp dir at the end.
    let _ = tokio::task::spawn_blocking(move || drop((indexer, index))).await;
    for _ in 0..10 {
        if std::fs::remove_dir_all(&dir).is_ok() || !dir.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    table.print();
    Ok(())
}

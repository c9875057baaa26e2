//! `switchboard-bench`: seeds a realistic, deterministic data set into the real hub, running
//! in-process on a loopback port, and prints markdown tables of latency percentiles (p50 / p95 /
//! p99) and throughput.
//!
//! ```sh
//! cargo run --release --bin switchboard-bench -- [--size 100k|1m|10m] [--seed 42] \
//!     [--postgres postgres://user:pass@127.0.0.1:5432/postgres] [--only search,lookup]
//! ```
//!
//! The hub is built exactly as `switchboard serve` builds it (`Application::build`), with a
//! fresh SQLite database and search index in a temp dir, or with `--postgres URL` a fresh
//! database `swbench_<uuid>` created on that server (and dropped at the end). It listens on
//! 127.0.0.1 on a free port; nothing is sent anywhere else. Every load level is bounded by a
//! request count and a deadline, and every HTTP request by a timeout.
//!
//! The data: `--size` interactions over `size / 20` people. Who each interaction belongs to
//! follows a Zipf distribution (exponent 1), so a few people hold most of the history. Channels
//! are mixed as email 30% (0.3–2 KB bodies, one in five HTML only, threaded per case), chat 30%
//! (half identified by email, half anonymous visitors), SMS 25% and calls 15%; text is Spanish
//! (with accents: teléfono, facturación, dirección de envío, …) or English by the person's
//! language; numbers are valid E.164 numbers of Spain, Mexico, the US, the UK and Germany with
//! their real lengths. The same `--seed` gives the same data set.
//!
//! Scenarios (`--only` takes a comma-separated list of these names; default all):
//!
//! 1. `seed`: ingests the data set with `Hub::ingest_many` in chunks of 2000 from 4 concurrent
//!    tasks, through the hub's single group-committing ingest writer. Reports interactions/s,
//!    the latency of each chunk, the process's peak RSS (VmHWM) and the store's size.
//! 2. `reindex`: how long the live indexer takes to make the whole seeded store searchable, and
//!    a full rebuild (`Indexer::rebuild`) of a fresh index in another directory, in docs/s.
//! 3. `search`: `GET /api/v1/search` at 1, 8 and 64 concurrent clients, round-robin over a mix:
//!    a common word, a rare word, an accented word typed without its accent (`telefono`), a
//!    quoted phrase, a prefix (`fact*`), 6 digits of a phone number, and a word filtered by the
//!    heaviest contact and a date range. Per level and per query kind.
//! 4. `lookup`: `GET /api/v1/contacts/lookup?phone=` at 1 and 8 clients with seeded callers'
//!    numbers written three ways for Spanish numbers (`+34 600 12 34 56`, `0034600123456`,
//!    `600123456`) and in E.164 for others.
//! 5. `webhooks`: signed Twilio inbound-SMS webhooks with unique MessageSids from 8, 32 and
//!    128 clients on an SMS account created over the API; afterwards every acknowledged
//!    message is looked up in the store (durable when acknowledged). Goal: ≥ 5000 acks/s with
//!    p99 ≤ 50 ms.
//! 6. `cdr`: an Asterisk `Master.csv` (cdr_csv format, `min(size, 200k)` lines: customers
//!    calling extensions, agents calling customers, some internal calls) imported with
//!    `voice::import_asterisk` in 4 MiB chunks, then imported again (all duplicates). Goal:
//!    ≥ 50000 rows/s.
//! 7. `freshness`: ingests at a paced 10, 100 and 1000 interactions/s for `--freshness-seconds`
//!    each and measures, for about 50 sampled interactions per rate, the time from the ingest
//!    acknowledgement until an in-process search for a word unique to it finds it.
//!
//! 8. `console`: 10,000 more open conversations, each a different customer waiting; then
//!    `GET /api/v1/inbox?limit=200` at 1 and 8 clients, and the console's first paint in
//!    headless Chromium (navigation start to 200 inbox rows painted, by the page's clock) over
//!    10 loads, when Chromium and the browser tests' Playwright driver are installed. Goal:
//!    under 1 s.
//!
//! 9. `nodes` (with `--postgres` only): two more nodes on the same database, started empty
//!    (their indexes catch up from the store), then signed SMS webhooks at 32 clients and the
//!    search mix at 8 clients, once against one node and once spread round-robin over three.
//!    The extra nodes run in this process on the same cores, so this measures what running as
//!    several nodes costs, not what more machines would add.
//!
//! 10. `websocket`: the release `switchboard` binary as its own process on a fresh SQLite
//!     store; `--ws-connections` chat visitors connect and stay idle (the hub's resident memory
//!     per connection and connections per GiB; goal ≥ 50,000 in 1 GiB), then 100 of them send
//!     at `--ws-rate` messages/s while an agent's socket receives each (goal p99 ≤ 10 ms).
//!
//! 11. `imap`: dovecot started from `scripts/mail-start.sh`, a mailbox of `--imap-messages`
//!     mails (default: the size, at most 100k) imported with `doveadm`, then synced whole by
//!     `mbsync` and by the hub (until every mail is stored). Goal: the hub within 1.5× of
//!     mbsync. Skipped without dovecot and isync.
//!
//! 12. `compare`: the search mix of `search` asked of our search over HTTP and of two baselines
//!     built from the same seeded interactions in the same run: SQLite FTS5
//!     (`unicode61 remove_diacritics 2`) in a database file of its own and, with `--postgres`,
//!     PostgreSQL full-text search (the `simple` configuration over `unaccent`, a GIN index) in
//!     a table of the run's database. Reports each baseline's build in rows/s; per query kind, the matches
//!     each engine finds and how much of a baseline's top 20 ours also returns; and per query
//!     kind, at 1 and 8 clients, `--search-requests` requests to each engine: p50 / p95 / p99
//!     and the baseline's p50 over ours. A kind a baseline cannot express (a phone-number
//!     fragment) is `n/a`. Runs after `search`.
//!
//! Seeding runs whenever `seed`, `reindex`, `search`, `compare`, `lookup`, `freshness` or `nodes`
//! is selected (they need the data set); `webhooks` and `cdr` alone run on an empty hub.
//!
//! The benchmark client shares the machine's cores with the hub, as in any single-machine
//! test; the numbers are the hub's and the client's together. A debug build prints a warning:
//! only a release build's numbers mean anything.

mod cdr;
mod compare;
mod console;
mod data;
mod freshness;
mod harness;
mod imap;
mod lookup;
mod nodes;
mod search;
mod seed;
mod stats;
mod webhooks;
mod websocket;

use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

use crate::harness::Bench;
use crate::seed::Dataset;

#[derive(Debug, Parser)]
#[command(
    name = "switchboard-bench",
    about = "Seeds the hub with realistic data and measures it"
)]
struct Args {
    /// Interactions to seed: a number with an optional k or m suffix (100k, 1m, 10m).
    #[arg(long, default_value = "100k", value_parser = parse_size)]
    size: usize,
    /// Seed of the data generator; the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// A PostgreSQL server URL; a fresh database is created on it for the run (default: SQLite).
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Run only these scenarios (comma-separated).
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Vec<Scenario>,
    /// Search requests per concurrency level (in `compare`: per query kind, engine and level).
    #[arg(long, default_value_t = 700)]
    search_requests: usize,
    /// Caller lookups per concurrency level.
    #[arg(long, default_value_t = 1_000)]
    lookup_requests: usize,
    /// Webhook messages per concurrency level.
    #[arg(long, default_value_t = 4_000)]
    webhook_messages: usize,
    /// Seconds of paced ingest per rate in the freshness scenario.
    #[arg(long, default_value_t = 5)]
    freshness_seconds: u64,
    /// Idle chat WebSockets to hold open in the websocket scenario (each side of a connection
    /// takes a file descriptor in its process).
    #[arg(long, default_value_t = 10_000)]
    ws_connections: usize,
    /// Chat messages per second in the websocket scenario's delivery test.
    #[arg(long, default_value_t = 1_000)]
    ws_rate: u32,
    /// Seconds of the websocket scenario's delivery test.
    #[arg(long, default_value_t = 5)]
    ws_seconds: u64,
    /// Mails in the mailbox of the imap scenario (default: the size, at most 100k).
    #[arg(long)]
    imap_messages: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Seed,
    Reindex,
    Search,
    Compare,
    Lookup,
    Webhooks,
    Cdr,
    Freshness,
    Console,
    Nodes,
    Websocket,
    Imap,
}

fn parse_size(raw: &str) -> Result<usize, String> {
    let lower = raw.trim().to_ascii_lowercase();
    let (digits, factor) = match lower.strip_suffix('k') {
        Some(d) => (d, 1_000),
        None => match lower.strip_suffix('m') {
            Some(d) => (d, 1_000_000),
            None => (lower.as_str(), 1),
        },
    };
    match digits.parse::<usize>() {
        Ok(n) if n > 0 && n.checked_mul(factor).is_some() => Ok(n * factor),
        _ => Err(format!("{raw:?} is not a size like 2k, 100k, 1m or 10m")),
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let wanted = |s: Scenario| args.only.is_empty() || args.only.contains(&s);
    if args.postgres.as_deref().is_some_and(|u| !u.starts_with("postgres")) {
        bail!("--postgres must be a postgres:// or postgresql:// URL");
    }
    print_header(&args);
    let bench = Bench::start(args.postgres.as_deref()).await?;

    let mut servers = None;
    let result = scenarios(&args, &bench, &wanted, &mut servers).await;
    let stopped = bench.stop().await;
    drop(servers);
    println!(
        "\ntotal wall time: {:.1} s; peak RSS of the whole run (hub and client): {} MiB",
        started.elapsed().as_secs_f64(),
        stats::peak_rss_mib().map_or("-".into(), |m| format!("{m:.0}"))
    );
    result.and(stopped)
}

/// Runs the wanted scenarios; servers they started that must outlive the hub go to `servers`.
async fn scenarios(
    args: &Args,
    bench: &Bench,
    wanted: &dyn Fn(Scenario) -> bool,
    servers: &mut Option<imap::MailServers>,
) -> Result<()> {
    use Scenario::*;
    let needs_data = [Seed, Reindex, Search, Compare, Lookup, Freshness, Nodes]
        .into_iter()
        .any(wanted);
    let dataset = if needs_data {
        seed::seed(bench, args.seed, args.size).await?
    } else {
        Dataset::unseeded(args.seed, args.size)
    };
    if needs_data && (wanted(Reindex) || wanted(Search) || wanted(Compare) || wanted(Lookup) || wanted(Nodes)) {
        // Searches and lookups run on a caught-up index, as after a quiet moment.
        if wanted(Reindex) {
            seed::reindex(bench, &dataset).await?;
        } else {
            bench.wait_for_index(std::time::Duration::from_secs(3_600)).await?;
        }
    }
    if wanted(Search) {
        search::run(bench, &dataset, args.search_requests).await?;
    }
    if wanted(Compare) {
        compare::run(bench, &dataset, args.search_requests).await?;
    }
    if wanted(Lookup) {
        lookup::run(bench, &dataset, args.lookup_requests).await?;
    }
    if wanted(Webhooks) {
        webhooks::run(bench, &dataset, args.webhook_messages).await?;
    }
    if wanted(Cdr) {
        cdr::run(bench, &dataset, args.size).await?;
    }
    if wanted(Freshness) {
        freshness::run(bench, &dataset, args.freshness_seconds).await?;
    }
    if wanted(Console) {
        console::run(bench).await?;
    }
    if wanted(Nodes) {
        nodes::run(bench, &dataset, args.webhook_messages, args.search_requests).await?;
    }
    if wanted(Websocket) {
        websocket::run(args.ws_connections, args.ws_rate, args.ws_seconds).await?;
    }
    if wanted(Imap) {
        *servers = imap::run(bench, &dataset, args.imap_messages.unwrap_or(args.size.min(100_000))).await?;
    }
    Ok(())
}

fn print_header(args: &Args) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or("unknown".into(), |kib| format!("{:.1} GiB", kib / (1024.0 * 1024.0)));
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("# switchboard benchmark\n");
    println!("| machine | store | size | seed | build |");
    println!("|---|---|---|---|---|");
    println!(
        "| {cores} cores ({cpu}), {memory} | {} | {} interactions | {} | {} |",
        if args.postgres.is_some() { "postgres" } else { "sqlite" },
        args.size,
        args.seed,
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    if cfg!(debug_assertions) {
        println!("\n**warning: a debug build; only a release build's numbers mean anything.**");
    }
}

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
//! 6. `cdr`: an Asterisk `Master.csv` (cdr_csv format, `--cdr-lines` lines, default
//!    `min(size, 200k)`: customers
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
//!     kind, at 1 and 8 clients, `--compare-requests` (default `--search-requests`) requests to each engine: p50 / p95 / p99
//!     and the baseline's p50 over ours. A kind a baseline cannot express (a phone-number
//!     fragment) is `n/a`. Runs after `search`.
//!
//! Results: every table is printed as markdown as it is measured. With `--out DIR` the run
//! also writes `DIR/<store>-<size>.json` (the machine, commit, date, every setting and every
//! table, rows keyed by column) and `DIR/<store>-<size>.md`, and redraws
//! `DIR/latency-by-size.svg`, the p99 of search, caller lookup and write-to-searchable against
//! data size, from every report in `DIR`: run each size with the same `--out` to fill it
//! (`--chart-only --out DIR` redraws it alone). A row that counted failed requests fails the
//! run (after the files are written).
//!
//! `--quick` is the short run CI makes to keep this command working: 100k interactions; seed,
//! search, compare, lookup, webhooks, cdr (20k lines) and freshness (2 s per rate) with fewer
//! requests; the metrics catch-up is not waited for.
//!
//! Seeding runs whenever `seed`, `reindex`, `search`, `compare`, `lookup`, `freshness` or `nodes`
//! is selected (they need the data set); `webhooks` and `cdr` alone run on an empty hub.
//!
//! The benchmark client shares the machine's cores with the hub, as in any single-machine
//! test; the numbers are the hub's and the client's together. A debug build prints a warning:
//! only a release build's numbers mean anything.

mod cdr;
mod chart;
mod compare;
mod console;
mod data;
mod freshness;
mod harness;
mod imap;
mod lookup;
mod nodes;
mod report;
mod search;
mod seed;
mod stats;
mod webhooks;
mod websocket;
mod wire;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use serde::Serialize;

use crate::harness::Bench;
use crate::seed::Dataset;

/// The allocator of the `switchboard` binary, so the hub measured here allocates as it does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser, Serialize)]
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
    /// Search requests per concurrency level.
    #[arg(long, default_value_t = 700)]
    search_requests: usize,
    /// Seconds to wait after seeding for the response-time metrics to catch up, to report how
    /// long they take (0: do not wait).
    #[arg(long, default_value_t = 600)]
    metrics_wait: u64,
    /// Requests per query kind, engine and level in `compare` (default: `--search-requests`).
    #[arg(long)]
    compare_requests: Option<usize>,
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
    /// Lines of the cdr scenario's Master.csv (default: the size, at most 200k).
    #[arg(long)]
    cdr_lines: Option<usize>,
    /// The short run CI keeps working: 100k interactions, the scenarios that need no other
    /// program (seed, search, compare, lookup, webhooks, cdr, freshness) with fewer requests,
    /// without waiting for the metrics to catch up; about a minute and a half. Its size is
    /// fixed: a --size given with it is refused, not ignored.
    #[arg(long, conflicts_with = "size")]
    quick: bool,
    /// Keep the SQLite store and its index in this directory: the first run seeds it, later runs
    /// with the same --size and --seed measure it without seeding again (the scenarios that
    /// write, such as freshness and webhooks, add to it).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Write the results to this directory as `<store>-<size>.json` and `.md`, and redraw
    /// `latency-by-size.svg` from every report there.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Run nothing: only redraw `latency-by-size.svg` from the reports in `--out` (after a
    /// report was added or replaced by hand).
    #[arg(long, requires = "out")]
    chart_only: bool,
}

impl Args {
    /// The settings `--quick` stands for; scenarios named with `--only` are kept.
    fn quickened(mut self) -> Self {
        use Scenario::*;
        if self.quick {
            self.size = 100_000;
            if self.only.is_empty() {
                self.only = vec![Seed, Search, Compare, Lookup, Webhooks, Cdr, Freshness];
            }
            self.search_requests = 140;
            self.compare_requests = Some(20);
            self.lookup_requests = 300;
            self.webhook_messages = 1_000;
            self.freshness_seconds = 2;
            self.cdr_lines = Some(20_000);
            self.metrics_wait = 0;
        }
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
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
    let args = Args::parse().quickened();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    if let (true, Some(dir)) = (args.chart_only, &args.out) {
        let chart = draw_chart(dir)?;
        println!("wrote {}", chart.display());
        return Ok(());
    }
    let started = Instant::now();
    let commit = report::commit();
    let wanted = |s: Scenario| args.only.is_empty() || args.only.contains(&s);
    if args.postgres.as_deref().is_some_and(|u| !u.starts_with("postgres")) {
        bail!("--postgres must be a postgres:// or postgresql:// URL");
    }
    print_header(&args);
    let bench = Bench::start(args.postgres.as_deref(), args.data_dir.as_deref()).await?;

    let mut servers = None;
    let result = scenarios(&args, &bench, &wanted, &mut servers).await;
    let stopped = bench.stop().await;
    drop(servers);
    let wall = started.elapsed().as_secs_f64();
    println!(
        "\ntotal wall time: {wall:.1} s; peak RSS of the whole run (hub and client): {} MiB",
        stats::peak_rss_mib().map_or("-".into(), |m| format!("{m:.0}"))
    );
    let tables = report::recorded();
    if let Some(dir) = &args.out {
        write_report(&args, dir, commit, wall, &tables)?;
    }
    result.and(stopped)?;
    let failures = report::failures(&tables);
    if !failures.is_empty() {
        bail!("requests failed during the run:\n{}", failures.join("\n"));
    }
    Ok(())
}

/// The report files of the run, and the chart redrawn from every report in `dir`.
fn write_report(args: &Args, dir: &std::path::Path, commit: String, wall: f64, tables: &[stats::Table]) -> Result<()> {
    let mut settings = serde_json::to_value(args)?;
    // The server's URL stays in the report, its password does not.
    if let Some(url) = args.postgres.as_deref().and_then(|u| reqwest::Url::parse(u).ok()) {
        let mut shown = url.clone();
        if url.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        settings["postgres"] = shown.as_str().into();
    }
    let report = report::Report::new(store_name(args), args.size, commit, settings, wall, tables);
    let mut markdown = header(args, &report.machine);
    markdown.push_str(&format!("\ncommit `{}`, {}\n", report.commit, report.date));
    for table in tables {
        markdown.push_str(&table.render());
    }
    let json = report.write(dir, &markdown)?;
    match draw_chart(dir) {
        Ok(chart) => println!("\nwrote {}, its .md and {}", json.display(), chart.display()),
        Err(e) => println!("\nwrote {} and its .md; no chart: {e}", json.display()),
    }
    Ok(())
}

/// Redraws `latency-by-size.svg` in `dir` from every report there; returns its path.
fn draw_chart(dir: &std::path::Path) -> Result<PathBuf> {
    let chart = dir.join("latency-by-size.svg");
    let (reports, skipped) = report::Report::read_all(dir)?;
    for file in skipped {
        println!("not a report, left out of the chart: {file}");
    }
    chart::draw(&chart, &chart::series(&reports))?;
    Ok(chart)
}

fn store_name(args: &Args) -> &'static str {
    if args.postgres.is_some() { "postgres" } else { "sqlite" }
}

/// Runs the wanted scenarios; servers they started that must outlive the hub go to `servers`.
async fn scenarios(
    args: &Args,
    bench: &Bench,
    wanted: &dyn Fn(Scenario) -> bool,
    servers: &mut Option<imap::MailServers>,
) -> Result<()> {
    use Scenario::*;
    let mut steps = Steps::new();
    let needs_data = [Seed, Reindex, Search, Compare, Lookup, Freshness, Nodes]
        .into_iter()
        .any(wanted);
    let dataset = if needs_data {
        match seed::kept(bench, args.seed, args.size)? {
            Some(dataset) => {
                println!(
                    "\nreusing the {} interactions seeded into {} earlier",
                    dataset.seeded,
                    bench.data.display()
                );
                dataset
            }
            None => {
                let dataset = seed::seed(bench, args.seed, args.size, Duration::from_secs(args.metrics_wait)).await?;
                seed::keep(bench, &dataset)?;
                steps.done("seed");
                dataset
            }
        }
    } else {
        Dataset::unseeded(args.seed, args.size)
    };
    if needs_data && (wanted(Reindex) || wanted(Search) || wanted(Compare) || wanted(Lookup) || wanted(Nodes)) {
        // Searches and lookups run on a caught-up index, as after a quiet moment.
        if wanted(Reindex) {
            seed::reindex(bench, &dataset).await?;
            steps.done("reindex");
        } else {
            bench.wait_for_index(Duration::from_secs(3_600)).await?;
            steps.done("index catch-up");
        }
    }
    if wanted(Search) {
        search::run(bench, &dataset, args.search_requests).await?;
        steps.done("search");
    }
    if wanted(Compare) {
        compare::run(bench, &dataset, args.compare_requests.unwrap_or(args.search_requests)).await?;
        steps.done("compare");
    }
    if wanted(Lookup) {
        lookup::run(bench, &dataset, args.lookup_requests).await?;
        steps.done("lookup");
    }
    if wanted(Webhooks) {
        webhooks::run(bench, &dataset, args.webhook_messages).await?;
        steps.done("webhooks");
    }
    if wanted(Cdr) {
        cdr::run(bench, &dataset, args.cdr_lines.unwrap_or(args.size.min(cdr::MAX_LINES))).await?;
        steps.done("cdr");
    }
    if wanted(Freshness) {
        freshness::run(bench, &dataset, args.freshness_seconds).await?;
        steps.done("freshness");
    }
    if wanted(Console) {
        console::run(bench).await?;
        steps.done("console");
    }
    if wanted(Nodes) {
        nodes::run(bench, &dataset, args.webhook_messages, args.search_requests).await?;
        steps.done("nodes");
    }
    if wanted(Websocket) {
        websocket::run(args.ws_connections, args.ws_rate, args.ws_seconds).await?;
        steps.done("websocket");
    }
    if wanted(Imap) {
        *servers = imap::run(bench, &dataset, args.imap_messages.unwrap_or(args.size.min(100_000))).await?;
        steps.done("imap");
    }
    steps.print();
    Ok(())
}

/// How long each step of the run took, printed last.
struct Steps {
    since: Instant,
    table: stats::Table,
}

impl Steps {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            table: stats::Table::new("steps", "wall time per step", &["step", "seconds"]),
        }
    }

    fn done(&mut self, step: &str) {
        self.table.row(vec![step.into(), stats::secs(self.since.elapsed())]);
        self.since = Instant::now();
    }

    fn print(&self) {
        self.table.print();
    }
}

fn print_header(args: &Args) {
    print!("{}", header(args, &report::Machine::this()));
    if cfg!(debug_assertions) {
        println!("\n**warning: a debug build; only a release build's numbers mean anything.**");
    }
}

/// The run's heading and its machine-and-settings table, as markdown.
fn header(args: &Args, machine: &report::Machine) -> String {
    format!(
        "# switchboard benchmark\n\n| machine | store | size | seed | build |\n|---|---|---|---|---|\n\
         | {} cores ({}), {:.1} GiB | {} | {} interactions{} | {} | {} |\n",
        machine.cores,
        machine.cpu,
        machine.memory_gib,
        store_name(args),
        args.size,
        if args.quick { " (--quick)" } else { "" },
        args.seed,
        if cfg!(debug_assertions) { "debug" } else { "release" }
    )
}

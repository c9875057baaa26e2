//! Scenario 6: importing an Asterisk `Master.csv` file, then importing it again (all
//! duplicates).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use switchboard::domain::{ChannelAccount, ChannelKind};
use switchboard::store::Store;
use switchboard::voice::ImportReport;

use crate::data;
use crate::harness::Bench;
use crate::seed::{Dataset, create_account};
use crate::stats::{Table, rate, secs};

/// At most this many CDR lines by default, whatever the size.
pub const MAX_LINES: usize = 200_000;
/// Bytes of complete lines handed to the importer at a time, as `switchboard import` does.
const CHUNK_BYTES: usize = 4 << 20;
const GOAL_ROWS_PER_S: f64 = 50_000.0;

pub async fn run(bench: &Bench, dataset: &Dataset, lines: usize) -> Result<()> {
    let generated = Instant::now();
    let text = {
        let people = dataset.people.clone();
        let zipf = dataset.zipf.clone();
        let seed = dataset.seed;
        tokio::task::spawn_blocking(move || data::master_csv(seed, lines, &people, &zipf))
            .await
            .context("generating Master.csv")?
    };
    let file = bench.dir.path().join("Master.csv");
    tokio::fs::write(&file, &text)
        .await
        .with_context(|| format!("writing {}", file.display()))?;
    let generation = generated.elapsed();
    let megabytes = text.len() as f64 / (1024.0 * 1024.0);
    drop(text);

    let account = create_account(
        bench,
        ChannelKind::Voice,
        "bench pbx",
        serde_json::json!({"extension_max_digits": 4, "cdr_utc_offset": "+01:00"}),
    )
    .await?;
    let mut table = Table::new(
        "cdr",
        format!(
            "6. asterisk Master.csv import ({lines} lines, {megabytes:.1} MiB, {} MiB chunks)",
            CHUNK_BYTES >> 20
        ),
        &[
            "run",
            "lines",
            "imported",
            "duplicates",
            "skipped",
            "errors",
            "seconds",
            "rows/s",
            "goal ≥ 50000 rows/s",
        ],
    );
    for run in ["first import", "second import (all duplicates)"] {
        let (report, elapsed) = import_file(bench, &account, &file).await?;
        let rows_per_s = report.lines as f64 / elapsed.as_secs_f64().max(1e-9);
        table.row(vec![
            run.into(),
            report.lines.to_string(),
            report.imported.to_string(),
            report.duplicates.to_string(),
            report.skipped.len().to_string(),
            report.errors.len().to_string(),
            secs(elapsed),
            rate(report.lines, elapsed),
            if rows_per_s >= GOAL_ROWS_PER_S { "met" } else { "missed" }.into(),
        ]);
        for problem in report.errors.iter().take(3) {
            table.note(format!("{run}: line {}: {}", problem.line, problem.reason));
        }
    }
    if let Some((rows, elapsed)) = sqlite_alone(bench, &account).await? {
        table.row(vec![
            "SQLite alone: the imported rows copied".into(),
            "-".into(),
            rows.to_string(),
            "-".into(),
            "-".into(),
            "-".into(),
            secs(elapsed),
            rate(rows, elapsed),
            "-".into(),
        ]);
        table.note(
            "SQLite alone: the first import's rows copied by one INSERT … SELECT into an empty store of the same \
             schema, with the writer's settings (WAL, a sync at commit, foreign keys); no contact resolved, no \
             conversation placed, nothing indexed: roughly the most an import into this schema could reach here.",
        );
    }
    table.note(format!(
        "skipped lines are calls between extensions; the file took {} s to generate and write (not counted)",
        secs(generation)
    ));
    table.print();
    Ok(())
}

/// Reads the file and imports it in chunks of complete lines, like `switchboard import asterisk-cdr`.
async fn import_file(
    bench: &Bench,
    account: &ChannelAccount,
    file: &std::path::Path,
) -> Result<(ImportReport, Duration)> {
    let started = Instant::now();
    let bytes = tokio::fs::read(file)
        .await
        .with_context(|| format!("reading {}", file.display()))?;
    let region = bench.hub.settings.contacts.default_region;
    let mut report = ImportReport::default();
    let mut start = 0;
    let mut next_line = 1;
    while start < bytes.len() {
        let limit = (start + CHUNK_BYTES).min(bytes.len());
        let end = if limit == bytes.len() {
            limit
        } else {
            bytes[start..limit]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(limit, |i| start + i + 1)
        };
        let text = String::from_utf8_lossy(&bytes[start..end]);
        let part = switchboard::voice::import_asterisk(
            &bench.hub.ingest_queue,
            &bench.hub.store,
            account,
            region,
            &text,
            next_line,
            bench.hub.settings.limits.csv_line_bytes,
        )
        .await
        .context("importing Master.csv")?;
        next_line += text.matches('\n').count();
        report.merge(part);
        start = end;
    }
    bench.hub.search.wake();
    Ok((report, started.elapsed()))
}

/// How fast SQLite alone writes the calls just imported: their rows copied by one
/// `INSERT … SELECT` into an empty store of the same schema, with the ingest writer's settings.
/// The rows they refer to (contacts, handles, conversations) are copied first, untimed. `None`
/// on PostgreSQL.
async fn sqlite_alone(bench: &Bench, account: &ChannelAccount) -> Result<Option<(usize, Duration)>> {
    if bench.store_kind != "sqlite" {
        return Ok(None);
    }
    let hub_file = bench.data.join("switchboard.db");
    let file = bench.dir.path().join("sqlite-alone.db");
    // Connecting applies the hub's migrations: the same tables, indexes and constraints.
    Store::connect(&format!("sqlite://{}", file.display()), 1)
        .await
        .context("creating the empty store")?
        .close()
        .await;
    let account = account.id.to_string();
    tokio::task::spawn_blocking(move || -> Result<(usize, Duration)> {
        let conn = rusqlite::Connection::open(&file)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = -65536;
             PRAGMA temp_store = MEMORY; PRAGMA foreign_keys = OFF;",
        )?;
        conn.execute("ATTACH DATABASE ?1 AS hub", [hub_file.display().to_string()])?;
        conn.execute_batch("BEGIN")?;
        conn.execute("INSERT INTO channel_accounts SELECT * FROM hub.channel_accounts", [])?;
        conn.execute("INSERT INTO agents SELECT * FROM hub.agents", [])?;
        for (table, column) in [("contacts", "contact_id"), ("conversations", "conversation_id")] {
            conn.execute(
                &format!(
                    "INSERT INTO {table} SELECT * FROM hub.{table} WHERE id IN
                     (SELECT {column} FROM hub.interactions WHERE channel_account_id = ?1)"
                ),
                [&account],
            )?;
        }
        conn.execute(
            "INSERT INTO handles SELECT * FROM hub.handles WHERE contact_id IN (SELECT id FROM contacts)",
            [],
        )?;
        conn.execute_batch("COMMIT; PRAGMA foreign_keys = ON;")?;
        let started = Instant::now();
        conn.execute_batch("BEGIN")?;
        let rows = conn.execute(
            "INSERT INTO interactions SELECT * FROM hub.interactions WHERE channel_account_id = ?1 ORDER BY seq",
            [&account],
        )?;
        conn.execute_batch("COMMIT")?;
        Ok((rows, started.elapsed()))
    })
    .await
    .context("the SQLite-alone copy")?
    .map(Some)
}

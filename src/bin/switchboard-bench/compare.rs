//! Scenario 12: the search mix of scenario 3 asked of our search (tantivy, over the HTTP API)
//! and of two baselines built from the same seeded store in the same run: SQLite FTS5 in a
//! database file of its own, and, with `--postgres`, PostgreSQL full-text search in a table of
//! the run's database.
//!
//! This module owns the baselines (their build from the store, the translation of each query
//! kind into their syntax, their load runs) and the comparison's tables: how fast each baseline
//! was built; per query kind, how many matches each engine finds and how much of a baseline's
//! top 20 ours also returns; and per query kind and engine, latency percentiles at 1 and 8
//! clients with the baseline's p50 over ours.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, params_from_iter};
use serde::Deserialize;
use sqlx::postgres::{PgPool, PgPoolOptions};
use switchboard::domain::to_micros;
use switchboard::search::query::{Clause, MIN_PREFIX_CHARS, parse};
use switchboard::search::schema::MIN_PHONE_FRAGMENT;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::harness::{Bench, REQUEST_TIMEOUT, TempDir};
use crate::search;
use crate::seed::Dataset;
use crate::stats::{LoadRun, Percentiles, Table, closed_loop, dir_size_mib, ms, rate, secs};

/// Concurrent clients of the latency runs.
const LEVELS: [usize; 2] = [1, 8];
/// No engine's run of one query kind at one level lasts longer than this.
const RUN_DEADLINE: Duration = Duration::from_secs(30);
/// Ids each baseline returns: the API's default page size, which is what ours returns.
const TOP: usize = 20;
/// Interactions read from the store per batch while building FTS5, as the indexer reads them.
const READ_BATCH: i64 = 5_000;

const FTS5_SCHEMA: &str = "CREATE VIRTUAL TABLE docs USING fts5(id UNINDEXED, contact_id UNINDEXED, \
    occurred_at UNINDEXED, subject, body, tokenize = \"unicode61 remove_diacritics 2\")";
const FTS5_INSERT: &str = "INSERT INTO docs (id, contact_id, occurred_at, subject, body) VALUES (?1, ?2, ?3, ?4, ?5)";

/// The PostgreSQL baseline's table; `f_unaccent` is created before it.
const PG_CREATE_TABLE: &str = "CREATE TABLE bench_fts (
    id text NOT NULL,
    contact_id text NOT NULL,
    occurred_at bigint NOT NULL,
    subject text,
    body_text text,
    tsv tsvector GENERATED ALWAYS AS
        (to_tsvector('simple', f_unaccent(coalesce(subject, '') || ' ' || coalesce(body_text, '')))) STORED
)";
const PG_FILL: &str = "INSERT INTO bench_fts (id, contact_id, occurred_at, subject, body_text)
    SELECT id, contact_id, occurred_at, subject, body_text FROM interactions";
const PG_INDEXES: [&str; 3] = [
    "CREATE INDEX bench_fts_tsv ON bench_fts USING gin (tsv)",
    "CREATE INDEX bench_fts_contact ON bench_fts (contact_id, occurred_at)",
    "ANALYZE bench_fts",
];
const PG_CLEANUP: [&str; 2] = [
    "DROP TABLE IF EXISTS bench_fts",
    "DROP FUNCTION IF EXISTS f_unaccent(text)",
];

/// The filters of a query kind, as the baselines apply them.
#[derive(Debug, Clone, Default, PartialEq)]
struct Filters {
    contact_id: Option<String>,
    /// Microseconds since the epoch, inclusive (as the API's `from`).
    from: Option<i64>,
    /// Microseconds since the epoch, exclusive (as the API's `to`).
    to: Option<i64>,
}

/// One query kind of the search mix, as each engine is asked it.
struct Kind {
    name: String,
    /// The query string after `/api/v1/search?`, exactly as the search scenario sends it.
    http: String,
    filters: Filters,
    /// The FTS5 MATCH expression; `None` when FTS5 has no equivalent.
    fts5: Option<String>,
    /// The tsquery; `None` when PostgreSQL has no equivalent.
    pg: Option<PgQuery>,
}

impl Kind {
    /// Reads a query of `search::queries` back into its text and filters.
    fn new(name: String, http: String) -> Result<Self> {
        let mut text = None;
        let mut filters = Filters::default();
        for (key, value) in form_urlencoded::parse(http.as_bytes()) {
            match &*key {
                "q" => text = Some(value.into_owned()),
                "contact_id" => filters.contact_id = Some(value.into_owned()),
                "from" => filters.from = Some(micros(&value)?),
                "to" => filters.to = Some(micros(&value)?),
                other => bail!("{name}: the baselines do not know the search parameter {other:?}"),
            }
        }
        let text = text.with_context(|| format!("{name}: the query has no q"))?;
        Ok(Self {
            fts5: fts5_match(&text),
            pg: pg_tsquery(&text),
            name,
            http,
            filters,
        })
    }
}

fn micros(rfc3339: &str) -> Result<i64> {
    let at = OffsetDateTime::parse(rfc3339, &Rfc3339).with_context(|| format!("{rfc3339:?} is not RFC 3339"))?;
    Ok(to_micros(at))
}

/// Whether ours also reads `word` as part of a phone number (4+ digits and nothing but phone
/// punctuation), which it matches against digit n-grams of the number; the baselines cannot.
fn is_phone_fragment(word: &str) -> bool {
    let digits = word.chars().filter(char::is_ascii_digit).count();
    digits >= MIN_PHONE_FRAGMENT && word.chars().all(|c| c.is_ascii_digit() || "+-(). ".contains(c))
}

/// Whether `text*` is a prefix ours accepts: one word of at least [`MIN_PREFIX_CHARS`].
fn is_plain_prefix(text: &str) -> bool {
    text.chars().count() >= MIN_PREFIX_CHARS && text.chars().all(char::is_alphanumeric)
}

/// A string in FTS5's query syntax: its tokens as a phrase (one token is a phrase of one).
fn fts5_string(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// The FTS5 MATCH expression for what an agent typed, meaning what it means to ours: every
/// word (a phrase of its tokens, as ours reads `e-mail`), `"phrase"` and `prefix*` must match,
/// `-word` must not. `None` when FTS5 has no equivalent (a phone-number fragment) or ours refuses it.
fn fts5_match(text: &str) -> Option<String> {
    let clauses = parse(text).ok()?;
    let mut wanted = Vec::new();
    let mut unwanted = Vec::new();
    for clause in &clauses {
        let (term, negated) = match clause {
            Clause::Word { text, negated } => {
                if is_phone_fragment(text) {
                    return None;
                }
                (fts5_string(text), *negated)
            }
            Clause::Phrase { text, negated } => (fts5_string(text), *negated),
            Clause::Prefix { text, negated } => {
                if !is_plain_prefix(text) {
                    return None;
                }
                (format!("{}*", fts5_string(text)), *negated)
            }
        };
        if negated {
            unwanted.push(term);
        } else {
            wanted.push(term);
        }
    }
    let all = wanted.join(" AND ");
    Some(if unwanted.is_empty() {
        all
    } else {
        format!("({all}) NOT ({})", unwanted.join(" OR "))
    })
}

/// A tsquery expression over the parameters `$1`, `$2`, … and their values.
#[derive(Debug, Clone, PartialEq)]
struct PgQuery {
    expr: String,
    params: Vec<String>,
}

/// The tsquery for what an agent typed, meaning what it means to ours, in the `simple`
/// configuration over `f_unaccent`: a plain word with `to_tsquery`, a word of several tokens
/// and a phrase with `phraseto_tsquery`, a prefix as `word:*`, `-word` negated with `!!`, all
/// of them joined with `&&`. `None` when PostgreSQL has no equivalent (a phone-number fragment) or
/// ours refuses it.
fn pg_tsquery(text: &str) -> Option<PgQuery> {
    let clauses = parse(text).ok()?;
    let mut parts = Vec::new();
    let mut params = Vec::new();
    for clause in &clauses {
        let (function, value, negated) = match clause {
            Clause::Word { text, negated } => {
                if is_phone_fragment(text) {
                    return None;
                }
                if text.chars().all(char::is_alphanumeric) {
                    ("to_tsquery", text.clone(), *negated)
                } else {
                    ("phraseto_tsquery", text.clone(), *negated)
                }
            }
            Clause::Phrase { text, negated } => ("phraseto_tsquery", text.clone(), *negated),
            Clause::Prefix { text, negated } => {
                if !is_plain_prefix(text) {
                    return None;
                }
                ("to_tsquery", format!("{text}:*"), *negated)
            }
        };
        params.push(value);
        let call = format!("{function}('simple', f_unaccent(${}))", params.len());
        parts.push(if negated { format!("(!!{call})") } else { call });
    }
    let expr = if parts.len() == 1 {
        parts.remove(0)
    } else {
        format!("({})", parts.join(" && "))
    };
    Some(PgQuery { expr, params })
}

/// An FTS5 statement and its parameters.
#[derive(Debug, Clone, PartialEq)]
struct Fts5Sql {
    sql: String,
    params: Vec<Value>,
}

/// The FTS5 statement of a query kind: how many documents match (`count`), or the best
/// [`TOP`] ids by rank (BM25).
fn fts5_sql(expr: &str, filters: &Filters, count: bool) -> Fts5Sql {
    let mut sql = String::from(if count {
        "SELECT count(*) FROM docs WHERE docs MATCH ?1"
    } else {
        "SELECT id FROM docs WHERE docs MATCH ?1"
    });
    let mut params = vec![Value::Text(expr.to_owned())];
    if let Some(contact) = &filters.contact_id {
        params.push(Value::Text(contact.clone()));
        sql.push_str(&format!(" AND contact_id = ?{}", params.len()));
    }
    if let Some(from) = filters.from {
        params.push(Value::Integer(from));
        sql.push_str(&format!(" AND occurred_at >= ?{}", params.len()));
    }
    if let Some(to) = filters.to {
        params.push(Value::Integer(to));
        sql.push_str(&format!(" AND occurred_at < ?{}", params.len()));
    }
    if !count {
        sql.push_str(&format!(" ORDER BY rank LIMIT {TOP}"));
    }
    Fts5Sql { sql, params }
}

#[derive(Debug, Clone, PartialEq)]
enum PgParam {
    Text(String),
    Int(i64),
}

/// A PostgreSQL statement and its parameters.
#[derive(Debug, Clone, PartialEq)]
struct PgSql {
    sql: String,
    params: Vec<PgParam>,
}

/// The PostgreSQL statement of a query kind: how many rows match (`count`), or the best
/// [`TOP`] ids by `ts_rank`. The tsquery is computed once per statement (a materialized CTE),
/// not once per ranked row.
fn pg_sql(query: &PgQuery, filters: &Filters, count: bool) -> PgSql {
    let mut params: Vec<PgParam> = query.params.iter().cloned().map(PgParam::Text).collect();
    let mut conditions = String::new();
    if let Some(contact) = &filters.contact_id {
        params.push(PgParam::Text(contact.clone()));
        conditions.push_str(&format!(" AND fts.contact_id = ${}", params.len()));
    }
    if let Some(from) = filters.from {
        params.push(PgParam::Int(from));
        conditions.push_str(&format!(" AND fts.occurred_at >= ${}", params.len()));
    }
    if let Some(to) = filters.to {
        params.push(PgParam::Int(to));
        conditions.push_str(&format!(" AND fts.occurred_at < ${}", params.len()));
    }
    let with = format!("WITH tsq AS MATERIALIZED (SELECT {} AS q) ", query.expr);
    let sql = if count {
        format!("{with}SELECT count(*) FROM bench_fts fts, tsq WHERE fts.tsv @@ tsq.q{conditions}")
    } else {
        format!(
            "{with}SELECT fts.id FROM bench_fts fts, tsq WHERE fts.tsv @@ tsq.q{conditions} \
             ORDER BY ts_rank(fts.tsv, tsq.q) DESC LIMIT {TOP}"
        )
    };
    PgSql { sql, params }
}

/// The customary immutable wrapper of `unaccent`, so that a generated column may call it;
/// `schema` is where the unaccent extension lives.
fn pg_unaccent_function(schema: &str) -> String {
    let schema = format!("\"{}\"", schema.replace('"', "\"\""));
    let dictionary = format!("{schema}.unaccent").replace('\'', "''");
    format!(
        "CREATE OR REPLACE FUNCTION f_unaccent(text) RETURNS text \
         LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT \
         AS $$ SELECT {schema}.unaccent('{dictionary}'::regdictionary, $1) $$"
    )
}

/// What one engine finds for one query kind.
#[derive(Debug)]
struct Found {
    /// How many documents match in all.
    total: u64,
    /// The ids of the best [`TOP`], best first.
    top: Vec<String>,
}

/// How many of `theirs` `ours` also contains, and of how many; `None` when `theirs` is empty.
fn overlap(ours: &[String], theirs: &[String]) -> Option<(usize, usize)> {
    if theirs.is_empty() {
        return None;
    }
    let shared = theirs.iter().filter(|&id| ours.contains(id)).count();
    Some((shared, theirs.len()))
}

/// Their latency over ours: above 1, ours is faster.
fn ratio(theirs: Duration, ours: Duration) -> String {
    if ours.is_zero() {
        return "-".into();
    }
    format!("{:.1}", theirs.as_secs_f64() / ours.as_secs_f64())
}

#[derive(Deserialize)]
struct Answer {
    total: u64,
    hits: Vec<Hit>,
}

#[derive(Deserialize)]
struct Hit {
    interaction: HitInteraction,
}

#[derive(Deserialize)]
struct HitInteraction {
    id: String,
}

/// Our answer to one query of the mix, over HTTP as the search scenario asks it, with every
/// match counted.
async fn our_probe(bench: &Bench, http: &str) -> Result<Found> {
    let response = bench
        .http
        .get(format!("{}/api/v1/search?{http}&exact_total=true", bench.base))
        .bearer_auth(&bench.token)
        .send()
        .await
        .context("search request")?;
    let status = response.status();
    if !status.is_success() {
        bail!(
            "search answered {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    let answer: Answer = response.json().await.context("search answer")?;
    Ok(Found {
        total: answer.total,
        top: answer.hits.into_iter().map(|h| h.interaction.id).collect(),
    })
}

/// The FTS5 baseline's database file and its idle read-only connections: one per client that
/// has queried it at the same time.
struct Fts5 {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Fts5 {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `work` on an idle connection, or on a new one when none is idle. Blocking.
    fn with_connection<T>(&self, work: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?,
        };
        let result = work(&conn);
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
        result
    }
}

fn fts5_ids(conn: &Connection, sql: &Fts5Sql) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare_cached(&sql.sql)?;
    let ids = statement
        .query_map(params_from_iter(sql.params.iter()), |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}

fn fts5_count(conn: &Connection, sql: &Fts5Sql) -> rusqlite::Result<u64> {
    let mut statement = conn.prepare_cached(&sql.sql)?;
    let count: i64 = statement.query_row(params_from_iter(sql.params.iter()), |row| row.get(0))?;
    Ok(count as u64)
}

/// Creates the FTS5 table in a new database at `path` and fills it with every interaction of
/// the store, read in batches as `Indexer::rebuild` reads them, in one transaction; returns
/// how many rows it inserted.
async fn build_fts5(bench: &Bench, path: &Path) -> Result<usize> {
    let file = path.to_owned();
    let mut conn = tokio::task::spawn_blocking(move || -> rusqlite::Result<Connection> {
        let conn = Connection::open(&file)?;
        conn.execute_batch(FTS5_SCHEMA)?;
        conn.execute_batch("BEGIN")?;
        Ok(conn)
    })
    .await
    .context("the FTS5 build task failed")?
    .context("creating the FTS5 table")?;
    let mut after = 0;
    let mut rows = 0;
    loop {
        let batch = bench
            .hub
            .store
            .index_batch(after, READ_BATCH)
            .await
            .context("reading interactions from the store")?;
        let Some(last) = batch.last().map(|(i, _)| i.seq) else {
            break;
        };
        after = last;
        rows += batch.len();
        conn = tokio::task::spawn_blocking(move || -> rusqlite::Result<Connection> {
            {
                let mut insert = conn.prepare_cached(FTS5_INSERT)?;
                for (i, _) in &batch {
                    insert.execute((
                        i.id.to_string(),
                        i.contact_id.to_string(),
                        to_micros(i.occurred_at),
                        i.subject.as_deref(),
                        i.text.as_deref(),
                    ))?;
                }
            }
            Ok(conn)
        })
        .await
        .context("the FTS5 build task failed")?
        .context("inserting into the FTS5 table")?;
    }
    tokio::task::spawn_blocking(move || conn.execute_batch("COMMIT"))
        .await
        .context("the FTS5 build task failed")?
        .context("committing the FTS5 build")?;
    Ok(rows)
}

/// What FTS5 finds for one query kind, on a blocking thread.
async fn fts5_probe(fts5: &Arc<Fts5>, expr: &str, filters: &Filters) -> Result<Found> {
    let fts5 = fts5.clone();
    let count = fts5_sql(expr, filters, true);
    let top = fts5_sql(expr, filters, false);
    let found = tokio::task::spawn_blocking(move || {
        fts5.with_connection(|conn| {
            Ok(Found {
                total: fts5_count(conn, &count)?,
                top: fts5_ids(conn, &top)?,
            })
        })
    })
    .await
    .context("the FTS5 query task failed")??;
    Ok(found)
}

/// `requests` FTS5 queries from `clients` clients, each on a blocking thread.
async fn fts5_load(fts5: &Arc<Fts5>, sql: Fts5Sql, clients: usize, requests: usize) -> LoadRun {
    let fts5 = fts5.clone();
    let sql = Arc::new(sql);
    closed_loop(clients, requests, RUN_DEADLINE, move |_| {
        let fts5 = fts5.clone();
        let sql = sql.clone();
        async move {
            let work = tokio::task::spawn_blocking(move || fts5.with_connection(|conn| fts5_ids(conn, &sql)));
            match tokio::time::timeout(REQUEST_TIMEOUT, work).await {
                Ok(Ok(Ok(ids))) => (0, true, ids.len() as u64),
                _ => (0, false, 0),
            }
        }
    })
    .await
}

/// The PostgreSQL baseline, or why there is none.
enum PgSetup {
    Ready(PgPool),
    Unavailable(String),
}

/// Builds the PostgreSQL baseline in the run's database at `url` and adds its row to `table`.
async fn build_pg(url: &str, table: &mut Table) -> Result<PgSetup> {
    let pool = PgPoolOptions::new()
        .max_connections(LEVELS[LEVELS.len() - 1] as u32)
        .acquire_timeout(REQUEST_TIMEOUT)
        .connect(url)
        .await
        .context("connecting to the run's PostgreSQL database")?;
    if let Err(e) = sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS unaccent")
        .execute(&pool)
        .await
    {
        pool.close().await;
        return Ok(PgSetup::Unavailable(format!(
            "skipped, the unaccent extension is unavailable ({e})"
        )));
    }
    let schema: String = sqlx::query_scalar(
        "SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'unaccent'",
    )
    .fetch_one(&pool)
    .await
    .context("finding the unaccent extension's schema")?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(pg_unaccent_function(&schema)))
        .execute(&pool)
        .await
        .context("creating f_unaccent")?;

    let started = Instant::now();
    sqlx::raw_sql(PG_CREATE_TABLE)
        .execute(&pool)
        .await
        .context("creating the PostgreSQL baseline's table")?;
    let rows = sqlx::raw_sql(PG_FILL)
        .execute(&pool)
        .await
        .context("filling the PostgreSQL baseline's table")?
        .rows_affected();
    for statement in PG_INDEXES {
        sqlx::raw_sql(statement)
            .execute(&pool)
            .await
            .with_context(|| format!("PostgreSQL baseline: {statement}"))?;
    }
    let elapsed = started.elapsed();
    let bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('bench_fts')")
        .fetch_one(&pool)
        .await
        .context("the PostgreSQL baseline's size")?;
    table.row(vec![
        "PostgreSQL (simple over f_unaccent, GIN)".into(),
        rows.to_string(),
        secs(elapsed),
        rate(rows as usize, elapsed),
        format!("{:.0}", bytes as f64 / (1024.0 * 1024.0)),
    ]);
    Ok(PgSetup::Ready(pool))
}

/// Drops what `build_pg` made in the run's database and closes the pool.
async fn drop_pg(pool: PgPool) {
    for statement in PG_CLEANUP {
        if let Err(e) = sqlx::raw_sql(statement).execute(&pool).await {
            eprintln!("warning: PostgreSQL baseline: {statement}: {e}");
        }
    }
    pool.close().await;
}

async fn pg_ids(pool: &PgPool, sql: &PgSql) -> Result<Vec<String>, sqlx::Error> {
    let mut query = sqlx::query_scalar::<sqlx::Postgres, String>(sqlx::AssertSqlSafe(sql.sql.clone()));
    for param in &sql.params {
        query = match param {
            PgParam::Text(text) => query.bind(text.clone()),
            PgParam::Int(n) => query.bind(*n),
        };
    }
    query.fetch_all(pool).await
}

async fn pg_count(pool: &PgPool, sql: &PgSql) -> Result<u64, sqlx::Error> {
    let mut query = sqlx::query_scalar::<sqlx::Postgres, i64>(sqlx::AssertSqlSafe(sql.sql.clone()));
    for param in &sql.params {
        query = match param {
            PgParam::Text(text) => query.bind(text.clone()),
            PgParam::Int(n) => query.bind(*n),
        };
    }
    Ok(query.fetch_one(pool).await? as u64)
}

/// What PostgreSQL finds for one query kind.
async fn pg_probe(pool: &PgPool, query: &PgQuery, filters: &Filters) -> Result<Found> {
    let total = pg_count(pool, &pg_sql(query, filters, true)).await?;
    let top = pg_ids(pool, &pg_sql(query, filters, false)).await?;
    Ok(Found { total, top })
}

/// `requests` PostgreSQL queries from `clients` clients.
async fn pg_load(pool: &PgPool, sql: PgSql, clients: usize, requests: usize) -> LoadRun {
    let pool = pool.clone();
    let sql = Arc::new(sql);
    closed_loop(clients, requests, RUN_DEADLINE, move |_| {
        let pool = pool.clone();
        let sql = sql.clone();
        async move {
            match tokio::time::timeout(REQUEST_TIMEOUT, pg_ids(&pool, &sql)).await {
                Ok(Ok(ids)) => (0, true, ids.len() as u64),
                _ => (0, false, 0),
            }
        }
    })
    .await
}

/// One row of the latency table; `run` is `None` when the engine has no equivalent of the
/// query kind, `ours_p50` is `None` for our own row.
fn latency_row(
    table: &mut Table,
    clients: usize,
    query: &str,
    engine: &str,
    run: Option<&LoadRun>,
    ours_p50: Option<Duration>,
) {
    let Some(run) = run else {
        table.row(vec![
            clients.to_string(),
            query.to_owned(),
            engine.to_owned(),
            "n/a".into(),
        ]);
        return;
    };
    let p = Percentiles::of(&run.latencies(None, false));
    table.row(vec![
        clients.to_string(),
        query.to_owned(),
        engine.to_owned(),
        run.count(None).to_string(),
        run.errors(None).to_string(),
        ms(p.p50),
        ms(p.p95),
        ms(p.p99),
        rate(run.count(None), run.elapsed),
        ours_p50.map_or_else(|| "-".to_owned(), |ours| ratio(p.p50, ours)),
    ]);
    if run.cut_short {
        table.note(format!(
            "{clients} clients, {query}, {engine}: stopped at its deadline after {} requests",
            run.count(None)
        ));
    }
}

fn total_cell(found: Option<&Found>, missing: &str) -> String {
    found.map_or_else(|| missing.to_owned(), |f| f.total.to_string())
}

fn overlap_cell(ours: &Found, theirs: Option<&Found>, missing: &str) -> String {
    match theirs {
        None => missing.to_owned(),
        Some(theirs) => match overlap(&ours.top, &theirs.top) {
            None => "- (no hits)".into(),
            Some((shared, of)) => format!("{shared}/{of} ({:.0}%)", 100.0 * shared as f64 / of as f64),
        },
    }
}

pub async fn run(bench: &Bench, dataset: &Dataset, requests: usize) -> Result<()> {
    let kinds = search::queries(dataset)
        .into_iter()
        .map(|(name, http)| Kind::new(name, http))
        .collect::<Result<Vec<_>>>()?;

    // Declared first, so that it is removed after every connection to the file in it closed.
    let dir = TempDir::new("switchboard-bench-fts5")?;
    let mut build = Table::new(
        "compare_build",
        "12. search baselines, built from the seeded store",
        &["engine", "rows", "seconds", "rows/s", "size MiB"],
    );
    let fts5_path = dir.path().join("fts5.db");
    let started = Instant::now();
    let rows = build_fts5(bench, &fts5_path).await?;
    let elapsed = started.elapsed();
    build.row(vec![
        "SQLite FTS5 (unicode61 remove_diacritics 2)".into(),
        rows.to_string(),
        secs(elapsed),
        rate(rows, elapsed),
        format!("{:.0}", dir_size_mib(dir.path())),
    ]);
    build.note(format!(
        "FTS5: the store's interactions read {READ_BATCH} at a time, as `Indexer::rebuild` reads them \
         (our full rebuild is in table 2), and inserted in one transaction"
    ));
    let fts5 = Arc::new(Fts5::new(fts5_path));

    let pg = if bench.store_kind == "postgres" {
        build_pg(bench.hub.settings.database.url(), &mut build).await?
    } else {
        PgSetup::Unavailable("not run (it needs --postgres)".into())
    };
    let (pool, pg_note) = match pg {
        PgSetup::Ready(pool) => (
            Some(pool),
            "PostgreSQL: `INSERT … SELECT` from the hub's interactions table into a table with a stored \
             generated tsvector column, then a GIN index, a (contact_id, occurred_at) index and ANALYZE"
                .to_owned(),
        ),
        PgSetup::Unavailable(why) => (None, format!("PostgreSQL: {why}")),
    };
    build.note(pg_note.clone());
    build.print();
    // Where PostgreSQL did not run at all, its cells say so once, in the notes.
    let pg_missing = if pool.is_some() { "n/a" } else { "-" };

    let mut matches = Table::new(
        "compare_matches",
        "12. matches per query kind, and how much of each baseline's top 20 ours also returns",
        &[
            "query",
            "ours matches",
            "FTS5 matches",
            "FTS5 top 20 also in ours",
            "PostgreSQL matches",
            "PostgreSQL top 20 also in ours",
        ],
    );
    let mut fewer = Vec::new();
    for kind in &kinds {
        let ours = our_probe(bench, &kind.http)
            .await
            .with_context(|| format!("ours: {}", kind.name))?;
        let fts5_found = match &kind.fts5 {
            Some(expr) => Some(
                fts5_probe(&fts5, expr, &kind.filters)
                    .await
                    .with_context(|| format!("FTS5: {}", kind.name))?,
            ),
            None => None,
        };
        let pg_found = match (&pool, &kind.pg) {
            (Some(pool), Some(query)) => Some(
                pg_probe(pool, query, &kind.filters)
                    .await
                    .with_context(|| format!("PostgreSQL: {}", kind.name))?,
            ),
            _ => None,
        };
        for (engine, found) in [("FTS5", &fts5_found), ("PostgreSQL", &pg_found)] {
            if let Some(found) = found
                && found.total > ours.total
            {
                fewer.push(format!("{} ({engine} {}, ours {})", kind.name, found.total, ours.total));
            }
        }
        matches.row(vec![
            kind.name.clone(),
            ours.total.to_string(),
            total_cell(fts5_found.as_ref(), "n/a"),
            overlap_cell(&ours, fts5_found.as_ref(), "n/a"),
            total_cell(pg_found.as_ref(), pg_missing),
            overlap_cell(&ours, pg_found.as_ref(), pg_missing),
        ]);
    }
    matches.note(if fewer.is_empty() {
        "ours finds at least as many matches as each baseline for every query kind the baseline can express".to_owned()
    } else {
        format!("ours finds fewer matches than a baseline for: {}", fewer.join("; "))
    });
    matches.note(
        "n/a: the baseline has no equivalent. A phone fragment matches any 4+ digits of the number an \
         interaction came through, which ours indexes as digit n-grams; the baselines index subject and body only",
    );
    matches.note(
        "ours also searches the address or number an interaction came through. Tantivy and FTS5 rank by BM25, \
         PostgreSQL by ts_rank, and each breaks ties its own way: when many documents score alike (a common \
         word) the top 20s differ without either being wrong",
    );
    matches.note(pg_note.clone());
    matches.print();

    let mut latency = Table::new(
        "compare_latency",
        format!(
            "12. search latency, ours vs SQLite FTS5 vs PostgreSQL \
             ({requests} requests per query kind, engine and level)"
        ),
        &[
            "clients",
            "query",
            "engine",
            "requests",
            "errors",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "req/s",
            "p50 / ours",
        ],
    );
    for clients in LEVELS {
        for kind in &kinds {
            let mix = Arc::new(vec![(kind.name.clone(), kind.http.clone())]);
            let ours = search::load(bench, mix, clients, requests, std::slice::from_ref(&bench.base)).await;
            let ours_p50 = Percentiles::of(&ours.latencies(None, false)).p50;
            latency_row(&mut latency, clients, &kind.name, "ours", Some(&ours), None);

            let fts5_run = match &kind.fts5 {
                Some(expr) => Some(fts5_load(&fts5, fts5_sql(expr, &kind.filters, false), clients, requests).await),
                None => None,
            };
            latency_row(
                &mut latency,
                clients,
                &kind.name,
                "FTS5",
                fts5_run.as_ref(),
                Some(ours_p50),
            );

            if let Some(pool) = &pool {
                let pg_run = match &kind.pg {
                    Some(query) => Some(pg_load(pool, pg_sql(query, &kind.filters, false), clients, requests).await),
                    None => None,
                };
                latency_row(
                    &mut latency,
                    clients,
                    &kind.name,
                    "PostgreSQL",
                    pg_run.as_ref(),
                    Some(ours_p50),
                );
            }
        }
    }
    latency.note(
        "p50 / ours: the engine's p50 over ours; above 1, ours is faster. Ours is timed over HTTP \
         (`GET /api/v1/search`, each answer carrying 20 full interactions read from the store); the \
         baselines in-process, returning 20 ids: the comparison favours the baselines",
    );
    latency.note(
        "FTS5 runs on blocking threads, one read-only connection per concurrent client; PostgreSQL \
         through its own sqlx pool of 8 connections",
    );
    latency.note(pg_note);
    latency.print();

    drop(fts5);
    if let Some(pool) = pool {
        drop_pg(pool).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    /// An FTS5 table of the baseline's schema with a few documents.
    fn fts5_fixture() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(FTS5_SCHEMA).unwrap();
        type Doc<'a> = (&'a str, &'a str, i64, Option<&'a str>, Option<&'a str>);
        let rows: [Doc; 5] = [
            (
                "1",
                "ana",
                100,
                Some("Teléfono sin línea"),
                Some("El teléfono no funciona desde ayer"),
            ),
            (
                "2",
                "ana",
                200,
                Some("Envío"),
                Some("Quiero cambiar la dirección de envío del pedido"),
            ),
            ("3", "ana", 300, None, Some("El envío llegó a la dirección de mi madre")),
            (
                "4",
                "ana",
                400,
                Some("Factura de marzo"),
                Some("Adjunto la facturación"),
            ),
            ("5", "luis", 500, Some("Factura"), Some("La factura no llegó")),
        ];
        for row in rows {
            conn.execute(FTS5_INSERT, row).unwrap();
        }
        conn
    }

    #[test]
    fn fts5_translates_each_kind_of_the_mix() {
        assert_eq!(fts5_match("pedido").as_deref(), Some("\"pedido\""));
        assert_eq!(
            fts5_match("\"dirección de envío\"").as_deref(),
            Some("\"dirección de envío\"")
        );
        assert_eq!(fts5_match("fact*").as_deref(), Some("\"fact\"*"));
        assert_eq!(
            fts5_match("factura -spam").as_deref(),
            Some("(\"factura\") NOT (\"spam\")")
        );
        assert_eq!(fts5_match("a\"b").as_deref(), Some("\"a\"\"b\""));
        assert_eq!(fts5_match("612345"), None, "a phone fragment has no FTS5 equivalent");
        assert_eq!(fts5_match("600-123"), None, "nor one written with punctuation");
        assert_eq!(fts5_match("f*"), None, "ours refuses a one-letter prefix");
        assert_eq!(fts5_match("\"open"), None, "ours refuses an unclosed quote");
    }

    #[test]
    fn fts5_finds_what_ours_would() {
        let conn = fts5_fixture();
        let top = |text: &str, filters: &Filters| {
            fts5_ids(&conn, &fts5_sql(&fts5_match(text).unwrap(), filters, false)).unwrap()
        };
        let count = |text: &str, filters: &Filters| {
            fts5_count(&conn, &fts5_sql(&fts5_match(text).unwrap(), filters, true)).unwrap()
        };
        let all = Filters::default();
        assert_eq!(top("telefono", &all), ids(&["1"]), "accents fold away");
        assert_eq!(top("pedido", &all), ids(&["2"]));
        assert_eq!(
            top("\"dirección de envío\"", &all),
            ids(&["2"]),
            "the words in order only"
        );
        assert_eq!(count("fact*", &all), 2);
        let ana = |from, to| Filters {
            contact_id: Some("ana".into()),
            from: Some(from),
            to: Some(to),
        };
        assert_eq!(top("factura", &ana(300, 500)), ids(&["4"]));
        assert_eq!(count("factura", &ana(300, 400)), 0, "`to` is exclusive");
        assert_eq!(count("factura", &ana(400, 401)), 1, "`from` is inclusive");
    }

    #[test]
    fn kinds_read_the_search_scenarios_query_strings() {
        let http = form_urlencoded::Serializer::new(String::new())
            .append_pair("q", "factura")
            .append_pair("contact_id", "0190c6a1-0000-7000-8000-000000000001")
            .append_pair("from", "2026-01-01T00:00:00Z")
            .append_pair("to", "2026-01-01T00:00:01Z")
            .finish();
        let kind = Kind::new("factura filtered".into(), http).unwrap();
        assert_eq!(
            kind.filters,
            Filters {
                contact_id: Some("0190c6a1-0000-7000-8000-000000000001".into()),
                from: Some(1_767_225_600_000_000),
                to: Some(1_767_225_601_000_000),
            }
        );
        assert_eq!(kind.fts5.as_deref(), Some("\"factura\""));
        assert_eq!(kind.pg.map(|q| q.params), Some(vec!["factura".to_owned()]));
        assert!(Kind::new("paged".into(), "q=a&limit=5".into()).is_err());
        assert!(Kind::new("no text".into(), "contact_id=x".into()).is_err());
    }

    #[test]
    fn postgres_translates_each_kind_of_the_mix() {
        let word = pg_tsquery("telefono").unwrap();
        assert_eq!(word.expr, "to_tsquery('simple', f_unaccent($1))");
        assert_eq!(word.params, ["telefono"]);
        let phrase = pg_tsquery("\"dirección de envío\"").unwrap();
        assert_eq!(phrase.expr, "phraseto_tsquery('simple', f_unaccent($1))");
        assert_eq!(phrase.params, ["dirección de envío"]);
        let prefix = pg_tsquery("fact*").unwrap();
        assert_eq!(prefix.expr, "to_tsquery('simple', f_unaccent($1))");
        assert_eq!(prefix.params, ["fact:*"]);
        let mixed = pg_tsquery("factura -spam e-mail").unwrap();
        assert_eq!(
            mixed.expr,
            "(to_tsquery('simple', f_unaccent($1)) && (!!to_tsquery('simple', f_unaccent($2))) \
             && phraseto_tsquery('simple', f_unaccent($3)))"
        );
        assert_eq!(mixed.params, ["factura", "spam", "e-mail"]);
        assert_eq!(
            pg_tsquery("612345"),
            None,
            "a phone fragment has no PostgreSQL equivalent"
        );
        assert_eq!(pg_tsquery("600-123"), None, "nor one written with punctuation");
        assert_eq!(pg_tsquery("f*"), None, "ours refuses a one-letter prefix");
    }

    #[test]
    fn postgres_filters_are_numbered_after_the_query() {
        let query = pg_tsquery("factura").unwrap();
        let filters = Filters {
            contact_id: Some("c".into()),
            from: Some(10),
            to: Some(20),
        };
        let top = pg_sql(&query, &filters, false);
        assert_eq!(
            top.params,
            vec![
                PgParam::Text("factura".into()),
                PgParam::Text("c".into()),
                PgParam::Int(10),
                PgParam::Int(20),
            ]
        );
        let conditions = "fts.tsv @@ tsq.q AND fts.contact_id = $2 AND fts.occurred_at >= $3 AND fts.occurred_at < $4";
        assert!(top.sql.contains(conditions), "{}", top.sql);
        assert!(
            top.sql.ends_with("ORDER BY ts_rank(fts.tsv, tsq.q) DESC LIMIT 20"),
            "{}",
            top.sql
        );
        let count = pg_sql(&query, &Filters::default(), true);
        assert_eq!(count.params, vec![PgParam::Text("factura".into())]);
        assert!(count.sql.contains("SELECT count(*)"), "{}", count.sql);
        assert!(
            !count.sql.contains("$2") && !count.sql.contains("ORDER BY"),
            "{}",
            count.sql
        );
    }

    #[test]
    fn unaccent_wrapper_names_the_extensions_schema() {
        assert_eq!(
            pg_unaccent_function("public"),
            "CREATE OR REPLACE FUNCTION f_unaccent(text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT \
             AS $$ SELECT \"public\".unaccent('\"public\".unaccent'::regdictionary, $1) $$"
        );
        assert!(pg_unaccent_function("o'brien").contains("'\"o''brien\".unaccent'::regdictionary"));
    }

    #[test]
    fn overlap_is_the_share_of_their_top_that_ours_also_returns() {
        assert_eq!(
            overlap(&ids(&["a", "b", "c"]), &ids(&["b", "c", "d", "e"])),
            Some((2, 4))
        );
        assert_eq!(overlap(&ids(&["a"]), &ids(&["b"])), Some((0, 1)));
        assert_eq!(overlap(&ids(&["a"]), &[]), None);
        assert_eq!(ratio(Duration::from_millis(30), Duration::from_millis(10)), "3.0");
        assert_eq!(ratio(Duration::from_millis(5), Duration::ZERO), "-");
    }
}

//! Statements that run on either kind of write connection: a sqlx transaction (PostgreSQL, and
//! SQLite for every writer but ingest), or the ingest writer's own SQLite connection, which
//! it drives on its own thread with rusqlite and a cache of prepared statements.
//!
//! Why two: each statement through sqlx's SQLite driver is handed to the driver's worker thread
//! and its answer handed back, about 50 µs on this machine whatever the statement; ingest runs
//! eight statements per envelope. On the thread that owns the connection a prepared statement
//! costs a few microseconds. The SQL text is the same on both, `$N` placeholders included
//! (SQLite binds them by name), so the ingest code is one code for both backends.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::types::Value;
use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::{Any, Executor as _};

use super::StoreError;
use super::rows::RowExt;

/// A bound parameter, typed even when null: PostgreSQL wants to know a null's type.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
    NullText,
    NullInt,
}

impl Arg {
    /// Binds this as the query's next parameter.
    pub(crate) fn bind_to(
        self,
        query: sqlx::query::Query<'static, Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments> {
        match self {
            Arg::Text(v) => query.bind(v),
            Arg::Int(v) => query.bind(v),
            Arg::NullText => query.bind(None::<String>),
            Arg::NullInt => query.bind(None::<i64>),
        }
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        v.map_or(Self::NullText, Self::Text)
    }
}

impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        v.map_or(Self::NullText, Self::from)
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Self::NullInt, Self::Int)
    }
}

/// One statement and its parameters, built like a sqlx query and run on any [`Db`].
#[must_use]
pub(crate) struct Sql {
    text: Cow<'static, str>,
    args: Vec<Arg>,
}

/// Starts a statement: `sql("… WHERE id = $1").bind(id).fetch_optional(tx)`.
pub(crate) fn sql(text: impl Into<Cow<'static, str>>) -> Sql {
    Sql {
        text: text.into(),
        args: Vec::new(),
    }
}

impl Sql {
    pub fn bind(mut self, value: impl Into<Arg>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Runs the statement and returns how many rows it changed.
    pub async fn execute<D: Db>(self, db: &mut D) -> Result<u64, StoreError> {
        db.execute(self).await
    }

    pub async fn fetch_optional<D: Db>(self, db: &mut D) -> Result<Option<D::Row>, StoreError> {
        db.fetch_optional(self).await
    }

    /// The first row; a statement that returns none is a bug of the caller's, reported as such.
    pub async fn fetch_one<D: Db>(self, db: &mut D) -> Result<D::Row, StoreError> {
        let text = self.text.clone();
        db.fetch_optional(self)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("no row returned by {text}")))
    }

    pub async fn fetch_all<D: Db>(self, db: &mut D) -> Result<Vec<D::Row>, StoreError> {
        db.fetch_all(self).await
    }

    fn into_sqlx(self) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.text));
        for arg in self.args {
            query = arg.bind_to(query);
        }
        query
    }
}

/// A connection inside a write transaction.
pub(crate) trait Db: Send {
    type Row: RowExt + Send;
    fn execute(&mut self, sql: Sql) -> impl Future<Output = Result<u64, StoreError>> + Send;
    fn fetch_optional(&mut self, sql: Sql) -> impl Future<Output = Result<Option<Self::Row>, StoreError>> + Send;
    fn fetch_all(&mut self, sql: Sql) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;
}

impl Db for sqlx::Transaction<'_, Any> {
    type Row = AnyRow;

    async fn execute(&mut self, sql: Sql) -> Result<u64, StoreError> {
        Ok(self.as_mut().execute(sql.into_sqlx()).await?.rows_affected())
    }

    async fn fetch_optional(&mut self, sql: Sql) -> Result<Option<AnyRow>, StoreError> {
        Ok(self.as_mut().fetch_optional(sql.into_sqlx()).await?)
    }

    async fn fetch_all(&mut self, sql: Sql) -> Result<Vec<AnyRow>, StoreError> {
        Ok(self.as_mut().fetch_all(sql.into_sqlx()).await?)
    }
}

/// The ingest writer's SQLite connection, owned by the writer's thread.
pub(crate) struct Lite {
    conn: rusqlite::Connection,
    /// Whose turn to write it is: see [`super::Store::write_turn`].
    store: super::Store,
    /// The turn, while this connection holds it, and since when.
    turn: Option<(PoolConnection<Any>, Instant)>,
    /// [`TURN_KEPT_AT_MOST`], but for tests.
    turn_kept_at_most: Duration,
}

/// Prepared statements kept per connection: every distinct statement of the ingest path, with
/// room to spare (the `IN` lists of a batch vary in length).
const STATEMENT_CACHE: usize = 256;

impl Lite {
    /// Opens the database file with the settings of the store's own connections: WAL, a sync
    /// at every commit, foreign keys, and waiting for the other writers instead of failing.
    pub fn open(store: &super::Store) -> Result<Self, StoreError> {
        let file = store
            .sqlite_file()
            .ok_or_else(|| StoreError::Corrupt("the store is not a SQLite file".into()))?;
        let conn = rusqlite::Connection::open(file)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!("journal mode {mode} instead of wal")));
        }
        // `temp_store = MEMORY` keeps the statement journals of the batch's inserts in memory:
        // once one outgrew SQLite's 64 KiB spill size it became a file, and writing it took a
        // quarter of this thread's time (perf); a seed of 100k went from 3,400 to 4,600 /s.
        conn.execute_batch(&format!(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536;
             PRAGMA wal_autocheckpoint = {}; PRAGMA journal_size_limit = 67108864; PRAGMA temp_store = MEMORY;",
            super::WAL_AUTOCHECKPOINT_PAGES
        ))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self {
            conn,
            store: store.clone(),
            turn: None,
            turn_kept_at_most: TURN_KEPT_AT_MOST,
        })
    }
}

/// Longest the ingest writer keeps the turn to write from one batch to the next. Other
/// processes writing to the same file (an import from the command line) are not in the store's
/// count of waiting writers: they get the file's lock between two batches only when the writer
/// takes the turn again, so it does at least this often.
const TURN_KEPT_AT_MOST: Duration = Duration::from_millis(50);

/// A transaction on [`Lite`] (`BEGIN IMMEDIATE`, taking the write lock at once); rolled back if
/// dropped unfinished or if its commit fails. The turn to write is given back when it ends,
/// unless it was committed with more to write and no other writer is waiting.
pub(crate) struct LiteTx<'c> {
    conn: &'c mut rusqlite::Connection,
    turn: &'c mut Option<(PoolConnection<Any>, Instant)>,
    keep_turn: bool,
    turn_kept_at_most: Duration,
    store: &'c super::Store,
}

impl LiteTx<'_> {
    /// Commits or rolls back; if that fails, dropping the transaction rolls it back.
    fn finish(&mut self, how: &str) -> Result<(), StoreError> {
        Ok(self.conn.execute_batch(how)?)
    }

    /// Prepares (or finds in the cache) the statement and binds its `$N` parameters by name,
    /// so a parameter may appear several times and in any order, as on PostgreSQL.
    fn run<T>(
        &mut self,
        sql: &Sql,
        then: impl FnOnce(&mut rusqlite::Statement<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut statement = self.conn.prepare_cached(&sql.text)?;
        for index in 1..=statement.parameter_count() {
            let arg = statement
                .parameter_name(index)
                .and_then(|name| name.strip_prefix('$'))
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| sql.args.get(n.checked_sub(1)?))
                .ok_or_else(|| StoreError::Corrupt(format!("parameter {index} unbound in {}", sql.text)))?;
            match arg {
                Arg::Text(v) => statement.raw_bind_parameter(index, v.as_str())?,
                Arg::Int(v) => statement.raw_bind_parameter(index, v)?,
                Arg::NullText | Arg::NullInt => statement.raw_bind_parameter(index, rusqlite::types::Null)?,
            }
        }
        then(&mut statement)
    }

    fn rows(&mut self, sql: &Sql, limit: Option<usize>) -> Result<Vec<LiteRow>, StoreError> {
        self.run(sql, |statement| {
            let names: Arc<[String]> = statement.column_names().into_iter().map(str::to_owned).collect();
            let mut rows = statement.raw_query();
            let mut found = Vec::new();
            while let Some(row) = rows.next()? {
                let values = (0..names.len())
                    .map(|i| row.get::<_, Value>(i))
                    .collect::<Result<_, _>>()?;
                found.push(LiteRow {
                    names: names.clone(),
                    values,
                });
                if limit.is_some_and(|limit| found.len() >= limit) {
                    break;
                }
            }
            Ok(found)
        })
    }
}

impl Drop for LiteTx<'_> {
    fn drop(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        if !self.keep_turn {
            *self.turn = None;
        }
    }
}

impl Db for LiteTx<'_> {
    type Row = LiteRow;

    async fn execute(&mut self, sql: Sql) -> Result<u64, StoreError> {
        // Stepped to the end, so a statement with `RETURNING` runs whole too.
        self.run(&sql, |statement| {
            let mut rows = statement.raw_query();
            while rows.next()?.is_some() {}
            Ok(())
        })?;
        Ok(self.conn.changes())
    }

    async fn fetch_optional(&mut self, sql: Sql) -> Result<Option<LiteRow>, StoreError> {
        Ok(self.rows(&sql, Some(1))?.pop())
    }

    async fn fetch_all(&mut self, sql: Sql) -> Result<Vec<LiteRow>, StoreError> {
        self.rows(&sql, None)
    }
}

/// A row read on the ingest writer's connection.
pub(crate) struct LiteRow {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl LiteRow {
    fn value(&self, col: &str) -> Result<&Value, StoreError> {
        self.names
            .iter()
            .position(|name| name == col)
            .map(|i| &self.values[i])
            .ok_or_else(|| StoreError::Corrupt(format!("no column {col}")))
    }

    fn mismatch(col: &str, wanted: &str, found: &Value) -> StoreError {
        StoreError::Corrupt(format!("{col}: expected {wanted}, found {:?}", found.data_type()))
    }
}

impl RowExt for LiteRow {
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
        match self.value(col)? {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v.clone())),
            other => Err(Self::mismatch(col, "text", other)),
        }
    }

    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        match self.value(col)? {
            Value::Null => Ok(None),
            Value::Integer(v) => Ok(Some(*v)),
            other => Err(Self::mismatch(col, "integer", other)),
        }
    }
}

/// A write transaction that can be finished.
pub(crate) trait WriteTx: Db + Sized {
    fn commit(self) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn rollback(self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Commits, with another transaction to begin right after: the writer may keep its turn
    /// to write for it if no other writer is waiting.
    fn commit_with_more_to_write(self) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.commit()
    }
}

/// Something write transactions are started on: the store's writer pool, or [`Lite`].
pub(crate) trait Writes: Send {
    type Tx<'a>: WriteTx
    where
        Self: 'a;
    fn begin(&mut self) -> impl Future<Output = Result<Self::Tx<'_>, StoreError>> + Send;
}

impl WriteTx for sqlx::Transaction<'_, Any> {
    async fn commit(self) -> Result<(), StoreError> {
        Ok(sqlx::Transaction::commit(self).await?)
    }

    async fn rollback(self) -> Result<(), StoreError> {
        Ok(sqlx::Transaction::rollback(self).await?)
    }
}

impl Writes for super::Store {
    type Tx<'a> = super::Tx<'static>;

    async fn begin(&mut self) -> Result<super::Tx<'static>, StoreError> {
        super::Store::begin(self).await
    }
}

impl WriteTx for LiteTx<'_> {
    async fn commit(mut self) -> Result<(), StoreError> {
        self.finish("COMMIT")
    }

    /// Keeps the turn while no other writer waits for it, for at most [`TURN_KEPT_AT_MOST`].
    /// Giving it back goes through the pool's release, a task on the runtime: under a webhook
    /// burst, with the runtime's workers busy answering, taking the turn again took 0.75 ms at
    /// the median and 9 ms at the p99, a fifth of the writer's time between two batches.
    async fn commit_with_more_to_write(mut self) -> Result<(), StoreError> {
        self.finish("COMMIT")?;
        self.keep_turn = self.store.writers_waiting() == 0
            && self
                .turn
                .as_ref()
                .is_some_and(|(_, since)| since.elapsed() < self.turn_kept_at_most);
        Ok(())
    }

    async fn rollback(mut self) -> Result<(), StoreError> {
        self.finish("ROLLBACK")
    }
}

impl Writes for Lite {
    type Tx<'a> = LiteTx<'a>;

    async fn begin(&mut self) -> Result<LiteTx<'_>, StoreError> {
        if self.turn.is_none() {
            self.turn = Some((self.store.write_turn().await?, Instant::now()));
        }
        if let Err(error) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            self.turn = None;
            return Err(error.into());
        }
        Ok(LiteTx {
            conn: &mut self.conn,
            turn: &mut self.turn,
            keep_turn: false,
            turn_kept_at_most: self.turn_kept_at_most,
            store: &self.store,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer's own connection commits as durably as the store's, and keeps the statement
    /// journals of its batches in memory.
    #[tokio::test]
    async fn the_writers_connection_syncs_every_commit_and_journals_statements_in_memory() {
        let (_dir, store) = crate::store::temp_sqlite_store().await;
        let mut lite = Lite::open(&store).unwrap();
        let mut tx = lite.begin().await.unwrap();
        let mut setting = async |name: &'static str| {
            sql(format!("PRAGMA {name}"))
                .fetch_one(&mut tx)
                .await
                .unwrap()
                .int(name)
                .unwrap()
        };
        assert_eq!(setting("synchronous").await, 2, "FULL");
        assert_eq!(setting("foreign_keys").await, 1);
        assert_eq!(setting("temp_store").await, 2, "MEMORY");
    }

    /// Both connections read parameters by their numbers, repeated and out of order, and give
    /// back nulls, texts and integers as the same values.
    #[tokio::test]
    async fn a_statement_means_the_same_on_the_writers_connection_and_through_sqlx() {
        let (_dir, mut store) = crate::store::temp_sqlite_store().await;
        let statement = || {
            sql("SELECT $2 AS b, $1 AS a, $2 || $1 AS ba, $3 AS n, $4 AS missing, $5 AS none")
                .bind("x")
                .bind("y")
                .bind(7_i64)
                .bind(None::<String>)
                .bind(None::<i64>)
        };
        let read = |row: &dyn Fn(&str) -> Result<Option<String>, StoreError>| {
            ["b", "a", "ba", "missing", "none"].map(|col| row(col).unwrap())
        };
        let expected = [Some("y".into()), Some("x".into()), Some("yx".into()), None, None];

        let mut tx = Writes::begin(&mut store).await.unwrap();
        let row = statement().fetch_one(&mut tx).await.unwrap();
        assert_eq!(read(&|col| row.opt_text(col)), expected);
        assert_eq!(row.int("n").unwrap(), 7);
        tx.rollback().await.unwrap();

        let mut lite = Lite::open(&store).unwrap();
        let mut tx = lite.begin().await.unwrap();
        let row = statement().fetch_one(&mut tx).await.unwrap();
        assert_eq!(read(&|col| row.opt_text(col)), expected);
        assert_eq!(row.int("n").unwrap(), 7);
        assert!(
            matches!(row.text("n"), Err(StoreError::Corrupt(_))),
            "an integer is not read as text"
        );
    }

    /// The writer's transaction is the database's: rolled back, nothing of it stays; committed,
    /// the store's own readers see it; dropped unfinished, it is rolled back.
    #[tokio::test]
    async fn the_writers_transactions_commit_and_roll_back_on_the_shared_file() {
        let (_dir, store) = crate::store::temp_sqlite_store().await;
        let mut lite = Lite::open(&store).unwrap();
        let insert = |name: &str| {
            sql("INSERT INTO contacts (id, name, created_at, updated_at) VALUES ($1, $2, 0, 0)")
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(name)
        };
        let mut tx = lite.begin().await.unwrap();
        assert_eq!(insert("rolled back").execute(&mut tx).await.unwrap(), 1);
        tx.rollback().await.unwrap();
        let mut tx = lite.begin().await.unwrap();
        insert("dropped").execute(&mut tx).await.unwrap();
        drop(tx);
        let mut tx = lite.begin().await.unwrap();
        insert("kept").execute(&mut tx).await.unwrap();
        tx.commit().await.unwrap();

        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM contacts")
            .fetch_all(store.reader())
            .await
            .unwrap();
        assert_eq!(names, ["kept"]);
    }

    /// The writer takes its turn in the store's queue of writers: while another writer's
    /// transaction is open it waits, and it starts as soon as that one commits.
    #[tokio::test]
    async fn the_writer_waits_its_turn_behind_the_stores_own_writers() {
        let (_dir, store) = crate::store::temp_sqlite_store().await;
        let mut lite = Lite::open(&store).unwrap();
        let other = store.begin().await.unwrap();
        let waiting = tokio::spawn(async move {
            let tx = lite.begin().await?;
            tx.commit().await
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "began while another writer held the turn");
        other.commit().await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(2), waiting)
            .await
            .expect("the writer's turn came")
            .unwrap()
            .unwrap();
    }

    /// Committed with more to write, the writer keeps its turn for its next transaction while
    /// nobody else waits; once another writer waits, its next commit hands the turn over.
    #[tokio::test]
    async fn the_writer_keeps_its_turn_between_batches_only_while_nobody_waits() {
        let (_dir, store) = crate::store::temp_sqlite_store().await;
        let mut lite = Lite::open(&store).unwrap();
        // Its time limit is tested last; a slow machine must not reach it before.
        lite.turn_kept_at_most = std::time::Duration::from_secs(3600);
        lite.begin().await.unwrap().commit_with_more_to_write().await.unwrap();
        assert!(lite.turn.is_some(), "gave the turn back with nobody waiting");

        let other = tokio::spawn({
            let store = store.clone();
            async move { store.begin().await.map(drop) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !other.is_finished(),
            "another writer began while the writer kept its turn"
        );
        assert_eq!(store.writers_waiting(), 1);

        lite.begin().await.unwrap().commit_with_more_to_write().await.unwrap();
        assert!(lite.turn.is_none(), "kept the turn while another writer waited");
        tokio::time::timeout(std::time::Duration::from_secs(2), other)
            .await
            .expect("the other writer's turn came")
            .unwrap()
            .unwrap();
        assert_eq!(store.writers_waiting(), 0);

        // A plain commit gives the turn back, and so do a rollback and a dropped transaction
        // after a commit that kept it.
        lite.begin().await.unwrap().commit().await.unwrap();
        assert!(lite.turn.is_none());
        lite.begin().await.unwrap().commit_with_more_to_write().await.unwrap();
        lite.begin().await.unwrap().rollback().await.unwrap();
        assert!(lite.turn.is_none(), "a rollback kept the turn");
        lite.begin().await.unwrap().commit_with_more_to_write().await.unwrap();
        drop(lite.begin().await.unwrap());
        assert!(lite.turn.is_none(), "a dropped transaction kept the turn");

        // Kept from batch to batch, the turn is still given back after a while, for writers the
        // store cannot count (other processes on the same file).
        lite.begin().await.unwrap().commit_with_more_to_write().await.unwrap();
        assert!(lite.turn.is_some());
        lite.turn_kept_at_most = std::time::Duration::from_millis(10);
        tokio::time::sleep(lite.turn_kept_at_most).await;
        lite.begin().await.unwrap().commit_with_more_to_write().await.unwrap();
        assert!(lite.turn.is_none(), "kept the turn past its time limit");
    }

    #[tokio::test]
    async fn a_repeated_key_is_a_unique_violation_on_the_writers_connection() {
        let (_dir, store) = crate::store::temp_sqlite_store().await;
        let mut lite = Lite::open(&store).unwrap();
        let mut tx = lite.begin().await.unwrap();
        let insert = || sql("INSERT INTO contacts (id, created_at, updated_at) VALUES ('same', 0, 0)");
        insert().execute(&mut tx).await.unwrap();
        let error = insert().execute(&mut tx).await.unwrap_err();
        assert!(error.is_unique_violation(), "{error}");
        let other = sql("SELECT nothing FROM contacts").execute(&mut tx).await.unwrap_err();
        assert!(!other.is_unique_violation(), "{other}");
    }
}

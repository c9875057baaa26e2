//! The store: the source of truth, on SQLite (embedded default) or PostgreSQL.
//!
//! Both backends run the same SQL through sqlx's Any driver, over the portable schema in
//! `migrations/`. Writes go through [`Store::begin`]; on SQLite that is a single connection
//! taking `BEGIN IMMEDIATE`, so concurrent writers queue instead of failing with SQLITE_BUSY,
//! and `synchronous = FULL` in WAL mode makes a commit durable on disk before it returns.

mod accounts;
mod agents;
mod attributes;
mod automation;
mod blobs;
mod calls;
mod canned;
mod chat;
mod checkpoint;
mod cluster;
mod conditions;
mod contacts;
mod conversations;
mod db;
mod events;
mod inbox;
mod interactions;
mod merges;
mod metrics;
mod outbox;
mod receipts;
mod rows;
mod split;

pub use accounts::NewChannelAccount;
pub use agents::{NewAgent, SessionRecord, TokenRecord};
pub use automation::{QueuedEvent, SegmentBadge, SegmentSummary, WebhookJob};
pub use blobs::Blob;
pub use calls::{CallEvent, CallLeg};
pub use canned::CannedResponse;
pub use chat::UnreadReply;
pub(crate) use chat::{email_handle_in, record_chat_fallbacks_in};
pub use cluster::LeaseRecord;
pub use contacts::{ContactPatch, ContactQuery, ContactUpsert, RowError, UpsertReport};
pub use conversations::ConversationFilter;
pub use events::EventKind;
pub use inbox::{InboxFilter, InboxItem, Label};
pub use interactions::{NewInteraction, Revision, TimelineCursor, TimelineFilter};
pub use merges::MergeRecord;
pub use metrics::{CalendarRecord, MetricSubject, Occurrence, PolicyRecord, SampleRow};
pub use outbox::{Delivery, OutboxJob};
pub use split::Split;

pub(crate) use db::{Db, Lite, WriteTx, Writes, sql};

pub(crate) use accounts::{account_in, random_token, save_cursor};
pub(crate) use agents::agent_by_extension_in;
pub use automation::rank as priority_rank;
pub(crate) use automation::{
    automation_listening_in, contact_facts_in, dequeue_automation_in, enqueue_webhook_in, firings_since_in,
    interaction_details_in, is_missed_call, record_firing_in, refresh_segments_in, segments_in, trigger_events_in,
    triggers_in,
};
pub(crate) use blobs::reference_blob;
pub(crate) use contacts::{find_handle_of_named, insert_contact, insert_handle, name_if_unnamed};
pub(crate) use conversations::{
    Placement, PlacementRequest, Threading, assign_in, conversation_in, place, set_priority_in,
};
pub(crate) use events::record_event;
pub(crate) use inbox::add_label_in;
pub(crate) use interactions::{
    insert as insert_interaction, interaction_by_external_id_in, mail_by_message_id_in, message_ids_in, next_seq,
    queue_for_automation,
};

pub(crate) use outbox::enqueue as enqueue_outbox;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Executor};

/// A write transaction.
pub type Tx<'a> = sqlx::Transaction<'a, Any>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the ingest writer's own SQLite connection.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A value the store refused, naming the field.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("conflict: {0}")]
    Conflict(String),
    /// A stored value does not parse: the row was written by something other than the hub.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("unsupported database url: expected sqlite:// or postgres://")]
    UnsupportedUrl,
    #[error("cannot create the database directory: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// Whether the error is a unique-key violation (a concurrent writer won a race).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(e)) => e.is_unique_violation(),
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
    /// The database file, on SQLite: the ingest writer opens its own connection to it.
    sqlite_file: Option<std::path::PathBuf>,
    /// The checkpointer thread runs while any clone of the store lives.
    _alive: Arc<()>,
    /// Channel accounts read before: see [`Store::channel_account`].
    accounts: accounts::Remembered,
    /// Writers waiting for the write pool's connection: see [`Store::writers_waiting`].
    asking: Arc<AtomicUsize>,
}

/// Counts a writer among those waiting for the turn to write, until dropped.
struct Asking<'a>(&'a AtomicUsize);

impl<'a> Asking<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Connects to `url` and applies pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        install_default_drivers();
        let store = if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let file = path.split('?').next().unwrap_or(path);
            if let Some(parent) = std::path::Path::new(file)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent)?;
            }
            let url = if url.contains("mode=") {
                url.to_owned()
            } else {
                format!("sqlite://{file}?mode=rwc")
            };
            let write = sqlite_pool(&url, 1).await?;
            let read = sqlite_pool(&url, max_connections.max(1)).await?;
            let alive = Arc::new(());
            checkpoint::start(std::path::Path::new(file), &alive)?;
            Store {
                read,
                write,
                backend: Backend::Sqlite,
                sqlite_file: Some(file.into()),
                _alive: alive,
                accounts: Default::default(),
                asking: Default::default(),
            }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = AnyPoolOptions::new()
                .max_connections(max_connections.max(2))
                .acquire_timeout(Duration::from_secs(30))
                .connect(url)
                .await?;
            Store {
                read: pool.clone(),
                write: pool,
                backend: Backend::Postgres,
                sqlite_file: None,
                _alive: Arc::new(()),
                accounts: Default::default(),
                asking: Default::default(),
            }
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        MIGRATOR.run(&store.write).await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database file, on SQLite.
    pub(crate) fn sqlite_file(&self) -> Option<&std::path::Path> {
        self.sqlite_file.as_deref()
    }

    /// The turn to write, on SQLite: the write pool's one connection, held by whoever writes
    /// through another connection (the ingest writer), so writers take turns in the pool's
    /// fair queue instead of polling SQLite's file lock. Only for the ingest writer: unlike
    /// [`Store::begin`] it is not counted in [`Store::writers_waiting`], which the ingest writer
    /// reads to decide whether to keep the turn.
    pub(crate) async fn write_turn(&self) -> Result<PoolConnection<Any>, StoreError> {
        Ok(self.write.acquire().await?)
    }

    /// How many of the store's own writers are waiting for the turn to write (or beginning
    /// their transaction on it). The ingest writer on SQLite keeps the turn from one batch to
    /// the next only while this is nought.
    pub(crate) fn writers_waiting(&self) -> usize {
        self.asking.load(Ordering::Relaxed)
    }

    /// The write pool's connection, for one statement outside a transaction.
    async fn write_conn(&self) -> Result<PoolConnection<Any>, StoreError> {
        let _asking = Asking::new(&self.asking);
        Ok(self.write.acquire().await?)
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx<'static>, StoreError> {
        let _asking = Asking::new(&self.asking);
        Ok(match self.backend {
            Backend::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.write.begin().await?,
        })
    }

    /// Starts a read-only transaction on the reader pool, for reads that share helpers with
    /// write paths (never blocks the single SQLite writer).
    pub async fn begin_read(&self) -> Result<Tx<'static>, StoreError> {
        Ok(self.read.begin().await?)
    }

    /// The pool for reads outside a transaction.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// WAL pages after which a commit itself copies the WAL back into the database (SQLite's
/// default is 1,000): a backstop for when the checkpointer thread (`checkpoint.rs`) cannot
/// finish because writes keep coming. Taking checkpoints off the commit path brought the p99 of
/// an ingest acknowledgement at 10 and 100 touchpoints/s from 570 ms to 9 ms here.
pub(crate) const WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;

async fn sqlite_pool(url: &str, max: u32) -> Result<AnyPool, StoreError> {
    Ok(AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
        // A connection to a local file does not go stale: no round trip to check it.
        .test_before_acquire(false)
        .after_connect(|conn, _| {
            Box::pin(async move {
                // WAL lets readers run beside the writer; FULL syncs the WAL at every commit,
                // which is what makes an acknowledged message durable.
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute("PRAGMA busy_timeout = 30000").await?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}"
                )))
                .await?;
                // A WAL grown under a burst is cut back when it is next reset.
                conn.execute("PRAGMA journal_size_limit = 67108864").await?;
                Ok(())
            })
        })
        .connect(url)
        .await?)
}

/// ` AND {column} IN ($first, …)`: only rows of `accounts`; nothing when every inbox is allowed.
/// Bind the accounts after the query's other parameters with [`bind_accounts`].
pub(crate) fn accounts_clause(
    column: &str,
    first: usize,
    accounts: Option<&[crate::domain::ChannelAccountId]>,
) -> String {
    match accounts {
        None => String::new(),
        Some([]) => " AND 1 = 0".into(),
        Some(list) => format!(
            " AND {column} IN ({})",
            (first..first + list.len())
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub(crate) fn bind_accounts<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    accounts: Option<&[crate::domain::ChannelAccountId]>,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    for account in accounts.unwrap_or_default() {
        query = query.bind(account.to_string());
    }
    query
}

/// Parses a stored enum or id, reporting a corrupt row instead of panicking.
pub fn parse_stored<T: FromStr>(what: &str, raw: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    raw.parse()
        .map_err(|e| StoreError::Corrupt(format!("{what} {raw:?}: {e}")))
}

/// A SQLite store in a fresh temp dir, for the store's own tests; the dir lives as long as the
/// returned guard.
#[cfg(test)]
pub(crate) async fn temp_sqlite_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}/hub.db", dir.path().display()), 2)
        .await
        .unwrap();
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_commits_are_synced_to_disk_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/nested/dir/hub.db", dir.path().display()), 2)
            .await
            .unwrap();
        for pool in [&store.write, &store.read] {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(pool).await.unwrap();
            let sync: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(pool).await.unwrap();
            assert_eq!(mode, "wal");
            assert_eq!(sync, 2, "2 is FULL: the WAL is synced at every commit");
        }
        assert!(dir.path().join("nested/dir/hub.db").exists());
    }

    #[tokio::test]
    async fn other_databases_are_refused_by_name() {
        let err = Store::connect("mysql://localhost/x", 1).await.err().unwrap();
        assert!(matches!(err, StoreError::UnsupportedUrl));
    }
}

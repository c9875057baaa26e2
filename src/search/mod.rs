//! Full-text search over every interaction, in an embedded tantivy index.
//!
//! The index is derived from the store and never the only copy of anything: the [`indexer`]
//! tails the store's change sequence and records the last sequence number it committed in the
//! commit's payload, so on start it resumes from there, and `switchboard reindex` rebuilds it
//! from nothing.

pub mod collect;
pub mod indexer;
pub mod query;
pub mod schema;

use std::path::Path;
use std::sync::Arc;

use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy};
use tokio::sync::{Notify, watch};

pub use collect::Total;
pub use query::{Filters, QueryError};
use schema::Fields;

use crate::domain::InteractionId;

const VERSION_FILE: &str = "switchboard-schema-version";

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("index error: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("index directory error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the index is locked by another process (is a server running on it?)")]
    Locked,
    #[error("search task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("the index writer was lost after a failed commit; restart the hub to reopen it")]
    WriterLost,
}

/// Matches are counted one by one up to this many unless an exact total is asked for; past it
/// the total only says "at least this many" (as Elasticsearch's `track_total_hits` does).
pub const COUNT_LIMIT: usize = 10_000;

/// One page of search results, best first.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub hits: Vec<(InteractionId, f32)>,
    /// How many interactions match in all, exactly or (past [`COUNT_LIMIT`]) at least.
    pub total: Total,
}

/// How many threads the index writer indexes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterThreads {
    /// One. The live indexer commits every few hundred milliseconds under a stream of
    /// touchpoints, and a commit cuts a segment on every thread that holds documents: with one
    /// thread it builds half as many small segments, and merges half as many again: indexing
    /// SMS-sized documents committed 700 at a time took a third less CPU.
    Live,
    /// tantivy's default, one per core (at most 8): a rebuild commits rarely and is bound by
    /// indexing itself.
    Rebuild,
}

/// Handle to the index for searching and waking the indexer; cheap to clone.
#[derive(Clone)]
pub struct SearchIndex {
    inner: Arc<Inner>,
}

struct Inner {
    /// Kept open for the reader's lifetime.
    _index: Index,
    reader: IndexReader,
    fields: Fields,
    wake: Notify,
    /// The highest change sequence number that is searchable.
    watermark: watch::Sender<i64>,
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it (or rebuilding it, if it was made by another schema
    /// version) as needed, and returns it with its single writer.
    pub fn open(
        dir: &Path,
        writer_memory_mb: usize,
        threads: WriterThreads,
    ) -> Result<(Self, IndexWriter), SearchError> {
        let (schema, fields) = schema::build();
        prepare_dir(dir)?;
        let index = if dir.join("meta.json").exists() {
            Index::open_in_dir(dir)?
        } else {
            let index = Index::create_in_dir(dir, schema)?;
            std::fs::write(dir.join(VERSION_FILE), schema::SCHEMA_VERSION.to_string())?;
            index
        };
        schema::register(&index);
        let budget = writer_memory_mb.max(15) * 1024 * 1024;
        let writer = match threads {
            WriterThreads::Live => index.writer_with_num_threads(1, budget),
            WriterThreads::Rebuild => index.writer(budget),
        };
        let writer: IndexWriter = writer.map_err(|e| match e {
            tantivy::TantivyError::LockFailure(..) => SearchError::Locked,
            other => SearchError::Index(other),
        })?;
        writer.set_merge_policy(Box::new(merge_policy()));
        let watermark = index
            .load_metas()?
            .payload
            .and_then(|p| p.parse::<i64>().ok())
            .unwrap_or(0);
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let inner = Inner {
            _index: index,
            reader,
            fields,
            wake: Notify::new(),
            watermark: watch::channel(watermark).0,
        };
        Ok((Self { inner: Arc::new(inner) }, writer))
    }

    /// Tells the indexer there is something new in the store.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// The highest change sequence number that is searchable.
    pub fn watermark(&self) -> i64 {
        *self.inner.watermark.borrow()
    }

    /// Waits until everything up to `seq` is searchable.
    pub async fn wait_for(&self, seq: i64) {
        let mut rx = self.inner.watermark.subscribe();
        let _ = rx.wait_for(|w| *w >= seq).await;
    }

    /// Runs a query typed by an agent: the hits ranked `offset..offset + limit`, and the
    /// number of matches, counted to the end only if `exact_total`.
    pub async fn search(
        &self,
        text: &str,
        filters: Filters,
        limit: usize,
        offset: usize,
        exact_total: bool,
    ) -> Result<SearchPage, SearchError> {
        let clauses = query::parse(text)?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let searcher = this.inner.reader.searcher();
            let plan = query::build(&searcher, &this.inner.fields, &clauses, &filters)?;
            let hits = collect::top(&searcher, &plan, limit, offset)?
                .into_iter()
                .filter_map(|hit| Some((hit.id.parse().ok()?, hit.score)))
                .collect();
            let total = collect::count(&searcher, &plan, (!exact_total).then_some(COUNT_LIMIT))?;
            Ok(SearchPage { hits, total })
        })
        .await?
    }

    pub(crate) fn fields(&self) -> &Fields {
        &self.inner.fields
    }

    pub(crate) fn reload(&self) -> Result<(), SearchError> {
        Ok(self.inner.reader.reload()?)
    }

    pub(crate) fn set_watermark(&self, seq: i64) {
        self.inner.watermark.send_replace(seq);
    }

    pub(crate) async fn woken(&self) {
        self.inner.wake.notified().await
    }

    pub fn num_docs(&self) -> u64 {
        self.inner.reader.searcher().num_docs()
    }
}

/// tantivy's log merge policy, with levels from 1,000 documents instead of 10,000. Live
/// indexing commits a segment of a few hundred documents every 200 ms under load; with every
/// segment below 10,000 documents in one level, the segment growing towards that size was
/// merged again with each eight new ones, so a document was rewritten several times before it
/// left the first level. With levels from 1,000, segments merge with their own size: in three
/// alternating runs of 12,000 webhooks per level, 7 % less CPU and 10 % more acknowledgements
/// at 32 and 128 clients; search at 100k was no slower (p50 3.2–3.7 against 4.2–4.6 ms).
fn merge_policy() -> tantivy::indexer::LogMergePolicy {
    let mut policy = tantivy::indexer::LogMergePolicy::default();
    policy.set_min_layer_size(1_000);
    policy
}

/// Makes sure `dir` holds an index of the current schema version or nothing.
fn prepare_dir(dir: &Path) -> Result<(), SearchError> {
    std::fs::create_dir_all(dir)?;
    let version = std::fs::read_to_string(dir.join(VERSION_FILE)).ok();
    let has_index = dir.join("meta.json").exists();
    if has_index && version.as_deref().map(str::trim) != Some(&schema::SCHEMA_VERSION.to_string()) {
        tracing::warn!(dir = %dir.display(), "index schema changed, rebuilding from the store");
        wipe(dir)?;
    }
    Ok(())
}

/// Empties an index directory (for a rebuild).
fn wipe(dir: &Path) -> Result<(), SearchError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    Ok(())
}

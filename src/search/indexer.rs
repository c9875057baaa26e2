//! The indexer: the one owner of the `IndexWriter`. It tails the store's change sequence,
//! turns each changed interaction into a document (replacing any earlier version of it), and
//! commits with the new watermark in the commit payload. Writes happen on a blocking thread.

use std::time::Duration;

use tantivy::{IndexWriter, TantivyDocument, Term};
use tokio::sync::watch;
use tracing::warn;

use super::{SearchError, SearchIndex};
use crate::domain::{Interaction, to_micros};
use crate::store::{Store, StoreError};

/// Changed interactions read from the store per commit.
const BATCH: i64 = 5_000;
/// Least time between two commits while changes keep coming; the write-to-searchable delay
/// under load is at most about this plus one commit.
const COMMIT_SPACING: Duration = Duration::from_millis(200);
/// Changes waiting, [`COMMIT_SPACING`] after a commit, that make a heavy stream: 2,000 a
/// second. A heavy stream's next commit waits until [`MAX_COMMIT_SPACING`], so that it holds
/// more: a commit costs tantivy about 25 ms of CPU whatever its size (a new segment's term
/// dictionaries and files, and merging them again), a third of the indexing at 5,000 a second
/// and 200 ms apart.
const HEAVY_STREAM: i64 = 400;
/// The spacing under a heavy stream; the write-to-searchable delay then stays well within a
/// second.
const MAX_COMMIT_SPACING: Duration = Duration::from_millis(600);
/// Documents between two commits of a rebuild. A commit every [`BATCH`] documents, as live
/// indexing does, made a rebuild spend a fifth of its time building the term dictionaries of
/// small segments and two fifths merging them again; between commits the writer cuts segments
/// at its memory budget. A rebuild that is interrupted resumes from its last commit.
const REBUILD_COMMIT: usize = 500_000;

#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Search(#[from] SearchError),
}

pub struct Indexer {
    index: SearchIndex,
    store: Store,
    writer: Option<IndexWriter>,
}

impl Indexer {
    pub fn new(index: SearchIndex, writer: IndexWriter, store: Store) -> Self {
        Self {
            index,
            store,
            writer: Some(writer),
        }
    }

    /// Indexes one batch of changes after the watermark; returns how many interactions it indexed.
    pub async fn step(&mut self) -> Result<usize, IndexerError> {
        let after = self.index.watermark();
        let batch = self.store.index_batch(after, BATCH).await?;
        let Some(last) = batch.last().map(|(i, _)| i.seq) else {
            return Ok(0);
        };
        let count = batch.len();
        let fields = self.index.fields().clone();
        self.commit_with(last, move |writer| {
            for (interaction, handle) in &batch {
                writer.delete_term(Term::from_field_text(fields.id, &interaction.id.to_string()));
                writer.add_document(document(&fields, interaction, handle.as_deref()))?;
            }
            Ok(())
        })
        .await?;
        metrics::counter!("switchboard_indexed_total").increment(count as u64);
        Ok(count)
    }

    /// Indexes until the index has everything the store had when this was called.
    pub async fn catch_up(&mut self) -> Result<usize, IndexerError> {
        let mut total = 0;
        loop {
            let n = self.step().await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }

    /// Empties the index and indexes the whole store again; returns how many interactions it
    /// indexed. The store is read on this task while a blocking thread indexes the batch before.
    pub async fn rebuild(&mut self) -> Result<usize, IndexerError> {
        self.commit_with(0, |writer| writer.delete_all_documents().map(drop))
            .await?;
        // A row changed during the rebuild comes back with a later sequence number, possibly
        // after it was indexed already: only those need their earlier document deleted.
        let changed_after = self.store.last_seq().await?;
        let mut writer = self.writer.take().ok_or(SearchError::WriterLost)?;
        let fields = self.index.fields().clone();
        let (batches, mut incoming) = tokio::sync::mpsc::channel::<Vec<(Interaction, Option<String>)>>(2);
        let indexing = tokio::task::spawn_blocking(move || {
            let mut index_all = || -> tantivy::Result<Option<i64>> {
                let (mut last, mut uncommitted) = (None, 0);
                while let Some(batch) = incoming.blocking_recv() {
                    for (interaction, handle) in &batch {
                        if interaction.seq > changed_after {
                            writer.delete_term(Term::from_field_text(fields.id, &interaction.id.to_string()));
                        }
                        writer.add_document(document(&fields, interaction, handle.as_deref()))?;
                        last = Some(interaction.seq);
                    }
                    uncommitted += batch.len();
                    if uncommitted >= REBUILD_COMMIT
                        && let Some(last) = last
                    {
                        commit(&mut writer, last)?;
                        uncommitted = 0;
                    }
                }
                if uncommitted > 0
                    && let Some(last) = last
                {
                    commit(&mut writer, last)?;
                }
                Ok(last)
            };
            let result = index_all();
            (writer, result)
        });
        let (mut after, mut read) = (0, 0);
        let reading = loop {
            match self.store.index_batch(after, BATCH).await {
                Ok(batch) if batch.is_empty() => break Ok(()),
                Ok(batch) => {
                    after = batch.last().map_or(after, |(i, _)| i.seq);
                    read += batch.len();
                    // Closed only if indexing failed: its error is reported below.
                    if batches.send(batch).await.is_err() {
                        break Ok(());
                    }
                }
                Err(error) => break Err(error),
            }
        };
        drop(batches);
        let (writer, indexed) = indexing.await.map_err(SearchError::from)?;
        self.writer = Some(writer);
        reading?;
        let last = indexed.map_err(SearchError::from)?;
        self.index.reload()?;
        if let Some(last) = last {
            self.index.set_watermark(last);
        }
        metrics::counter!("switchboard_indexed_total").increment(read as u64);
        Ok(read)
    }

    /// Waits out the spacing after a commit: [`COMMIT_SPACING`], or [`MAX_COMMIT_SPACING`] if
    /// by then a heavy stream's changes are waiting.
    async fn spaced(&self) {
        tokio::time::sleep(COMMIT_SPACING).await;
        let waiting = match self.store.last_seq().await {
            Ok(last) => last - self.index.watermark(),
            Err(error) => {
                warn!(%error, "reading the store's last sequence failed; committing at the usual spacing");
                0
            }
        };
        tokio::time::sleep(stretch(waiting)).await;
    }

    /// Applies `change` to the writer on a blocking thread and commits it with `watermark` as the
    /// commit payload; then the searcher sees it.
    async fn commit_with(
        &mut self,
        watermark: i64,
        change: impl FnOnce(&mut IndexWriter) -> Result<(), tantivy::TantivyError> + Send + 'static,
    ) -> Result<(), IndexerError> {
        // Only a panic inside tantivy on the blocking thread could lose the writer; say so on
        // every later step rather than panic the indexer task.
        let mut writer = self.writer.take().ok_or(SearchError::WriterLost)?;
        let (writer, result) = tokio::task::spawn_blocking(move || {
            let result = change(&mut writer).and_then(|()| commit(&mut writer, watermark));
            (writer, result)
        })
        .await
        .map_err(SearchError::from)?;
        self.writer = Some(writer);
        result.map_err(SearchError::from)?;
        self.index.reload()?;
        self.index.set_watermark(watermark);
        Ok(())
    }

    /// Indexes whenever woken, and at least every `interval`, until `shutdown` changes.
    ///
    /// Commits are at least [`COMMIT_SPACING`] apart while changes keep coming: a touchpoint
    /// arriving alone is committed at once, and a stream of them shares a commit (and a
    /// segment) every [`COMMIT_SPACING`] instead of one per ingest batch, which kept tantivy's
    /// merge threads busy with tiny segments at the cost of the cores ingest needs. A heavy
    /// stream stretches the spacing to [`MAX_COMMIT_SPACING`] (see [`HEAVY_STREAM`]); what
    /// arrives after a burst, once the stream is light again, waits only [`COMMIT_SPACING`].
    pub async fn run(mut self, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            match self.step().await {
                // A backlog: read on at once, each commit is large already.
                Ok(n) if n == BATCH as usize => continue,
                Ok(n) if n > 0 => {
                    tokio::select! {
                        _ = self.spaced() => continue,
                        _ = shutdown.changed() => break,
                    }
                }
                Ok(_) => {}
                Err(error) => warn!(%error, "indexing failed, will retry"),
            }
            tokio::select! {
                _ = self.index.woken() => {}
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => break,
            }
        }
        if let Some(writer) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || writer.wait_merging_threads()).await;
        }
    }
}

/// How much longer than [`COMMIT_SPACING`] to wait when `waiting` changes have arrived since the
/// last commit.
fn stretch(waiting: i64) -> Duration {
    if waiting >= HEAVY_STREAM {
        MAX_COMMIT_SPACING - COMMIT_SPACING
    } else {
        Duration::ZERO
    }
}

/// Commits what the writer holds, with `watermark` as the commit's payload.
fn commit(writer: &mut IndexWriter, watermark: i64) -> tantivy::Result<()> {
    let mut commit = writer.prepare_commit()?;
    commit.set_payload(&watermark.to_string());
    commit.commit().map(drop)
}

fn document(f: &super::schema::Fields, i: &Interaction, handle: Option<&str>) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_text(f.id, i.id.to_string());
    doc.add_text(f.contact_id, i.contact_id.to_string());
    doc.add_text(f.conversation_id, i.conversation_id.to_string());
    doc.add_text(f.channel_account_id, i.channel_account_id.to_string());
    doc.add_text(f.channel, i.channel.as_str());
    doc.add_text(f.direction, i.direction.as_str());
    if let Some(agent) = i.author_agent_id {
        doc.add_text(f.agent_id, agent.to_string());
    }
    doc.add_i64(f.occurred_at, to_micros(i.occurred_at));
    if let Some(subject) = &i.subject {
        doc.add_text(f.subject, subject);
    }
    if let Some(text) = &i.text {
        doc.add_text(f.body, text);
    }
    if let Some(handle) = handle {
        doc.add_text(f.addresses, handle);
        if let Some(digits) = handle.strip_prefix('+') {
            doc.add_text(f.phone_digits, digits);
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_heavy_stream_stretches_the_commit_spacing() {
        // 1,000 a second: 200 changes waiting after 200 ms, committed then.
        assert_eq!(stretch(0), Duration::ZERO);
        assert_eq!(stretch(200), Duration::ZERO);
        assert_eq!(stretch(HEAVY_STREAM - 1), Duration::ZERO);
        // 2,000 a second and more: 600 ms between commits.
        assert_eq!(COMMIT_SPACING + stretch(HEAVY_STREAM), MAX_COMMIT_SPACING);
        assert_eq!(COMMIT_SPACING + stretch(i64::MAX), MAX_COMMIT_SPACING);
    }
}

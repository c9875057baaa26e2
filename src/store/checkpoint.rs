//! The SQLite checkpointer: a thread of its own copies the WAL back into the database file,
//! so no writer pays for it inside a commit (and no acknowledgement waits for it).
//!
//! With SQLite's automatic checkpoints, the commit that pushes the WAL past the threshold runs
//! the checkpoint before it returns: under ingest that put a whole checkpoint (tens of
//! milliseconds to half a second) in front of the acknowledgements of one batch in every few.
//! Here the store's connections checkpoint automatically only as a backstop, far later, and
//! this thread runs a `PASSIVE` checkpoint every [`EVERY`], which never waits for a reader or a
//! writer and never blocks one.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::StoreError;

/// How often the checkpointer looks at the WAL.
const EVERY: Duration = Duration::from_millis(100);

/// Runs while the store it was started for lives.
pub(super) fn start(file: &std::path::Path, alive: &Arc<()>) -> Result<(), StoreError> {
    let conn = rusqlite::Connection::open(file)?;
    let alive: Weak<()> = Arc::downgrade(alive);
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while alive.strong_count() > 0 {
                std::thread::sleep(EVERY);
                if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(%error, "WAL checkpoint failed; will retry");
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {

    /// The database file's own page count, from its header: it grows only when WAL frames are
    /// copied into the file.
    fn pages_in_file(dir: &std::path::Path) -> u32 {
        let header = std::fs::read(dir.join("hub.db")).unwrap();
        u32::from_be_bytes(header[28..32].try_into().unwrap())
    }

    /// Writes through the store leave frames in the WAL, far fewer than the commits' own
    /// checkpoint threshold; the checkpointer copies them into the database file by itself.
    #[tokio::test]
    async fn the_checkpointer_copies_the_wal_into_the_database_by_itself() {
        let (dir, store) = crate::store::temp_sqlite_store().await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let before = pages_in_file(dir.path());
        let mut tx = store.begin().await.unwrap();
        for n in 0..200 {
            sqlx::query("INSERT INTO contacts (id, name, created_at, updated_at) VALUES ($1, $2, 0, 0)")
                .bind(format!("c{n}"))
                .bind("x".repeat(500))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while pages_in_file(dir.path()) < before + 20 {
            assert!(
                std::time::Instant::now() < deadline,
                "the file still holds {} pages, {before} before 100 KB were written",
                pages_in_file(dir.path())
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

//! Following a live Asterisk `Master.csv`: new complete lines are imported as they appear, the
//! position (file inode, byte offset, line number) is saved after each batch, and a restart
//! resumes from it. When logrotate moves the file away, the rest of the old file is read first
//! (found by its inode in the same directory, even if the hub was down during the rotation),
//! then the new file from its start; a file truncated in place is read again from its start.
//! Re-reading is harmless: every line's external id derives from its content.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;
use tracing::{info, warn};

use super::import_asterisk;
use crate::domain::*;
use crate::hub::Hub;
use switchboard_connectors::Cursor;

const POLL: Duration = Duration::from_millis(250);

/// Where the follower is in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    inode: u64,
    offset: u64,
    /// Lines consumed so far, for reporting line numbers.
    line: usize,
}

impl Position {
    fn encode(&self) -> String {
        format!("{}:{}:{}", self.inode, self.offset, self.line)
    }

    fn decode(raw: &str) -> Option<Self> {
        let mut parts = raw.split(':').map(str::parse::<u64>);
        let (inode, offset, line) = (parts.next()?.ok()?, parts.next()?.ok()?, parts.next()?.ok()?);
        Some(Self {
            inode,
            offset,
            line: line as usize,
        })
    }
}

/// Follows `path` for `account` until `shutdown` changes.
pub async fn follow_asterisk_file(
    hub: Hub,
    account: ChannelAccount,
    path: PathBuf,
    mut shutdown: watch::Receiver<bool>,
) {
    let stream = format!("asterisk-cdr:{}", path.display());
    let mut position = match hub.store.cursor(account.id, &stream).await {
        Ok(saved) => saved.as_deref().and_then(Position::decode),
        Err(error) => {
            warn!(account = %account.id, %error, "cannot read the saved cdr position; starting from the file's start");
            None
        }
    };
    info!(account = %account.id, file = %path.display(), ?position, "following asterisk cdr file");
    loop {
        if let Err(error) = follow_step(&hub, &account, &path, &stream, &mut position).await {
            warn!(account = %account.id, file = %path.display(), %error, "cdr follower step failed; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Reads what is new since `position`, handling rotation and truncation.
async fn follow_step(
    hub: &Hub,
    account: &ChannelAccount,
    path: &Path,
    stream: &str,
    position: &mut Option<Position>,
) -> std::io::Result<()> {
    let current = match tokio::fs::metadata(path).await {
        Ok(meta) => meta,
        // Between a rotation's rename and the PBX creating the new file.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut at = match *position {
        Some(p) if p.inode == current.ino() && p.offset <= current.len() => p,
        Some(p) if p.inode == current.ino() => {
            warn!(account = %account.id, file = %path.display(), "cdr file was truncated; reading it again from the start");
            Position {
                inode: p.inode,
                offset: 0,
                line: 0,
            }
        }
        Some(old) => {
            // Rotated: finish the old file first, wherever it went.
            if let Some(rotated) = find_by_inode(path, old.inode).await {
                let mut finished = old;
                read_new_lines(hub, account, &rotated, &mut finished, true).await?;
                info!(account = %account.id, file = %rotated.display(), "finished rotated cdr file");
            }
            Position {
                inode: current.ino(),
                offset: 0,
                line: 0,
            }
        }
        None => Position {
            inode: current.ino(),
            offset: 0,
            line: 0,
        },
    };
    read_new_lines(hub, account, path, &mut at, false).await?;
    if *position != Some(at) {
        let cursor = Cursor {
            stream: stream.to_owned(),
            position: at.encode(),
        };
        hub.store
            .save_cursor(account.id, &cursor)
            .await
            .map_err(std::io::Error::other)?;
        *position = Some(at);
    }
    Ok(())
}

/// Imports the complete lines after `at` (all remaining bytes when `to_end`, for a file that will
/// not grow again), moving `at` past them.
async fn read_new_lines(
    hub: &Hub,
    account: &ChannelAccount,
    path: &Path,
    at: &mut Position,
    to_end: bool,
) -> std::io::Result<()> {
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(at.offset)).await?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).await?;
    let complete = if to_end {
        bytes.len()
    } else {
        bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
    };
    if complete == 0 {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&bytes[..complete]);
    let region = hub.settings.contacts.default_region;
    let max_line = hub.settings.limits.csv_line_bytes;
    match import_asterisk(
        &hub.ingest_queue,
        &hub.store,
        account,
        region,
        &text,
        at.line + 1,
        max_line,
    )
    .await
    {
        Ok(report) => {
            for problem in &report.errors {
                warn!(account = %account.id, file = %path.display(), line = problem.line, reason = %problem.reason, "cdr line not imported");
            }
            if report.imported > 0 {
                hub.search.wake();
                info!(account = %account.id, imported = report.imported, duplicates = report.duplicates, "cdr lines imported");
            }
        }
        Err(error) => return Err(std::io::Error::other(error.to_string())),
    }
    at.offset += complete as u64;
    at.line += text.matches('\n').count();
    Ok(())
}

/// A file in `path`'s directory with the given inode (where logrotate moved it).
async fn find_by_inode(path: &Path, inode: u64) -> Option<PathBuf> {
    let dir = path.parent()?;
    let mut entries = tokio::fs::read_dir(dir).await.ok()?;
    while let Ok(Some(entry)) = entries.next_entry().await {
        if entry.metadata().await.is_ok_and(|m| m.ino() == inode) {
            return Some(entry.path());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_garbage_is_ignored() {
        let p = Position {
            inode: 42,
            offset: 1000,
            line: 7,
        };
        assert_eq!(Position::decode(&p.encode()), Some(p));
        assert_eq!(Position::decode("42:x:7"), None);
        assert_eq!(Position::decode(""), None);
    }
}

//! Importing Asterisk `Master.csv` content: every line parsed on its own, so a damaged line is
//! reported with its number and the rest goes on; ingested in parts, the next parsed while the
//! writer writes the last; idempotent, since each line's external id derives from its content.

use serde::Serialize;
use switchboard_connectors::Region;
use switchboard_connectors::voice::CallError;
use switchboard_connectors::voice::asterisk;

use super::{VoiceSettings, call_envelope};
use crate::channels::SettingsError;
use crate::domain::*;
use crate::ingest::{IngestQueue, Pending};
use crate::store::Store;

/// Lines ingested per call to the ingest writer.
const CHUNK: usize = 2_000;

/// A line that was not imported, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LineProblem {
    pub line: usize,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ImportReport {
    pub lines: usize,
    pub imported: usize,
    pub duplicates: usize,
    /// Lines that are not customer touchpoints (calls between extensions).
    pub skipped: Vec<LineProblem>,
    pub errors: Vec<LineProblem>,
}

impl ImportReport {
    pub fn merge(&mut self, other: ImportReport) {
        self.lines += other.lines;
        self.imported += other.imported;
        self.duplicates += other.duplicates;
        self.skipped.extend(other.skipped);
        self.errors.extend(other.errors);
    }
}

/// Imports complete lines of `content`; `first_line` is the number of its first line in the file.
pub async fn import_asterisk(
    queue: &IngestQueue,
    store: &Store,
    account: &ChannelAccount,
    region: Region,
    content: &str,
    first_line: usize,
    max_line: usize,
) -> Result<ImportReport, SettingsError> {
    let settings = VoiceSettings::of(account)?;
    let offset = settings.offset()?;
    let mut report = ImportReport::default();
    let mut batch = Vec::with_capacity(CHUNK);
    let mut batch_lines = Vec::with_capacity(CHUNK);
    let mut in_flight = None;
    for (index, raw) in content.split('\n').enumerate() {
        let line_no = first_line + index;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        report.lines += 1;
        if line.len() > max_line {
            report.errors.push(LineProblem {
                line: line_no,
                reason: format!("longer than {max_line} bytes"),
            });
            continue;
        }
        let parsed = asterisk::parse_line(line, offset).map(|call| call_envelope(account, &settings, region, call));
        match parsed {
            Ok(Ok(envelope)) => {
                batch.push(envelope);
                batch_lines.push(line_no);
            }
            Ok(Err(internal @ CallError::Internal { .. })) => report.skipped.push(LineProblem {
                line: line_no,
                reason: internal.to_string(),
            }),
            Ok(Err(unusable)) => report.errors.push(LineProblem {
                line: line_no,
                reason: unusable.to_string(),
            }),
            Err(malformed) => report.errors.push(LineProblem {
                line: line_no,
                reason: malformed.to_string(),
            }),
        }
        if batch.len() == CHUNK {
            // This part is queued behind the one being written; the next is parsed meanwhile.
            let submitted = queue.submit(store, std::mem::take(&mut batch)).await;
            if let Some((pending, lines)) = in_flight.replace((submitted, std::mem::take(&mut batch_lines))) {
                settle(pending, lines, &mut report).await;
            }
        }
    }
    if let Some((pending, lines)) = in_flight {
        settle(pending, lines, &mut report).await;
    }
    if !batch.is_empty() {
        settle(queue.submit(store, batch).await, batch_lines, &mut report).await;
    }
    Ok(report)
}

/// Waits until a submitted part is written and counts its outcomes.
async fn settle(pending: Pending, lines: Vec<usize>, report: &mut ImportReport) {
    let outcomes = pending.outcomes().await;
    for (line, outcome) in lines.into_iter().zip(outcomes) {
        match outcome {
            Ok(o) if o.duplicate => report.duplicates += 1,
            Ok(_) => report.imported += 1,
            Err(e) => report.errors.push(LineProblem {
                line,
                reason: e.to_string(),
            }),
        }
    }
}

//! Importing Asterisk `Master.csv` content: every line parsed on its own, so a damaged line is
//! reported with its number and the rest goes on; ingested in batches; idempotent, since each
//! line's external id derives from its content.

use serde::Serialize;
use switchboard_connectors::Region;
use switchboard_connectors::voice::CallError;
use switchboard_connectors::voice::asterisk;

use super::{VoiceSettings, call_envelope};
use crate::channels::SettingsError;
use crate::domain::*;
use crate::ingest::IngestQueue;
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
            flush(queue, store, &mut batch, &mut batch_lines, &mut report).await;
        }
    }
    flush(queue, store, &mut batch, &mut batch_lines, &mut report).await;
    Ok(report)
}

async fn flush(
    queue: &IngestQueue,
    store: &Store,
    batch: &mut Vec<switchboard_connectors::InboundEnvelope>,
    lines: &mut Vec<usize>,
    report: &mut ImportReport,
) {
    if batch.is_empty() {
        return;
    }
    let outcomes = queue.ingest_many(store, std::mem::take(batch)).await;
    for (line, outcome) in lines.drain(..).zip(outcomes) {
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

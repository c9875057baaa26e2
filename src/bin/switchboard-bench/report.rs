//! The run's report files. Every table the run prints is recorded here; with `--out DIR` the
//! run writes them, with the machine, the commit, the date and the settings, as JSON
//! (`DIR/<store>-<size>.json`) and as markdown (`DIR/<store>-<size>.md`), then redraws the chart
//! of latency against data size from every JSON report in `DIR` (see `chart`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::stats::Table;

static RECORDED: Mutex<Vec<Table>> = Mutex::new(Vec::new());

/// Keeps a printed table for the report.
pub fn record(table: &Table) {
    RECORDED.lock().unwrap_or_else(|p| p.into_inner()).push(table.clone());
}

/// Every table printed so far, in order.
pub fn recorded() -> Vec<Table> {
    RECORDED.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The machine the run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory_gib: f64,
}

impl Machine {
    pub fn this() -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .unwrap_or(0.0);
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| {
                c.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        Self {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu,
            memory_gib: (memory_kib / (1024.0 * 1024.0) * 10.0).round() / 10.0,
        }
    }
}

/// One run's results, as written to `<store>-<size>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub store: String,
    pub size: usize,
    pub machine: Machine,
    /// `git rev-parse --short=12 HEAD` of the source tree the benchmark was built from, with
    /// `-dirty` when tracked files had changes; `unknown` outside a git checkout.
    pub commit: String,
    /// When the run ended, RFC 3339 in UTC.
    pub date: String,
    /// The command line's settings, as parsed (defaults included).
    pub settings: Value,
    pub wall_seconds: f64,
    pub tables: Vec<ReportTable>,
}

/// A table in a report: each row an object keyed by the column headers, numeric cells as
/// numbers, markdown emphasis removed (`**all**` is `all`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportTable {
    pub key: String,
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Map<String, Value>>,
    pub notes: Vec<String>,
}

impl From<&Table> for ReportTable {
    fn from(table: &Table) -> Self {
        let rows = table
            .rows
            .iter()
            .map(|row| {
                table
                    .headers
                    .iter()
                    .zip(row)
                    .map(|(header, cell)| (header.clone(), cell_value(cell)))
                    .collect()
            })
            .collect();
        Self {
            key: table.key.to_owned(),
            title: table.title.clone(),
            headers: table.headers.clone(),
            rows,
            notes: table.notes.clone(),
        }
    }
}

impl ReportTable {
    /// The rows whose cells equal every `(column, text)` given, compared as printed.
    pub fn rows_where<'a>(&'a self, wanted: &'a [(&str, &str)]) -> impl Iterator<Item = &'a Map<String, Value>> {
        self.rows.iter().filter(move |row| {
            wanted
                .iter()
                .all(|(column, text)| row.get(*column).is_some_and(|v| value_text(v) == *text))
        })
    }
}

impl Report {
    /// `commit` is [`commit`] as the run started: the tree may change while a long run lasts.
    pub fn new(store: &str, size: usize, commit: String, settings: Value, wall_seconds: f64, tables: &[Table]) -> Self {
        Self {
            store: store.to_owned(),
            size,
            machine: Machine::this(),
            commit,
            date: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            settings,
            wall_seconds,
            tables: tables.iter().map(ReportTable::from).collect(),
        }
    }

    pub fn table(&self, key: &str) -> Option<&ReportTable> {
        self.tables.iter().find(|t| t.key == key)
    }

    /// Writes `<store>-<size>.json` and `.md` into `dir`; returns the JSON file's path.
    pub fn write(&self, dir: &Path, markdown: &str) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let stem = dir.join(format!("{}-{}", self.store, self.size));
        let json = stem.with_extension("json");
        std::fs::write(&json, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", json.display()))?;
        let md = stem.with_extension("md");
        std::fs::write(&md, markdown).with_context(|| format!("writing {}", md.display()))?;
        Ok(json)
    }

    /// Every report in `dir`, and each other `.json` file there with why it is not one (the
    /// caller says so: a report that no longer reads would otherwise vanish from the chart).
    pub fn read_all(dir: &Path) -> Result<(Vec<Report>, Vec<String>)> {
        let mut reports = Vec::new();
        let mut skipped = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                match serde_json::from_slice::<Report>(&std::fs::read(&path)?) {
                    Ok(report) => reports.push(report),
                    Err(e) => skipped.push(format!("{}: {e}", path.display())),
                }
            }
        }
        reports.sort_by(|a, b| (&a.store, a.size).cmp(&(&b.store, b.size)));
        skipped.sort();
        Ok((reports, skipped))
    }
}

/// Rows that counted errors: a benchmark that failed requests measured something else than it
/// says, so the run fails (after printing and writing everything).
pub fn failures(tables: &[Table]) -> Vec<String> {
    let mut failures = Vec::new();
    for table in tables {
        let Some(column) = table.headers.iter().position(|h| h == "errors") else {
            continue;
        };
        for row in &table.rows {
            if let Some(n) = row.get(column).and_then(|c| c.parse::<u64>().ok()).filter(|n| *n > 0) {
                let label: Vec<&str> = row.iter().take(column.min(2)).map(String::as_str).collect();
                failures.push(format!("{}: {n} errors ({})", table.title, label.join(", ")));
            }
        }
    }
    failures
}

fn cell_value(cell: &str) -> Value {
    let text = cell.trim();
    let text = text
        .strip_prefix("**")
        .and_then(|t| t.strip_suffix("**"))
        .unwrap_or(text);
    if let Ok(n) = text.parse::<i64>() {
        return n.into();
    }
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() => x.into(),
        _ => text.into(),
    }
}

/// A cell as it was printed (numbers without a trailing `.0` when whole).
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The source tree's commit, `-dirty` when tracked files have changes.
pub fn commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(head) if !head.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{head}-dirty") } else { head }
        }
        _ => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search_table() -> Table {
        let mut table = Table::new(
            "search",
            "3. search (7 requests)",
            &["clients", "query", "errors", "p99 ms"],
        );
        table.row(vec!["1".into(), "**all**".into(), "0".into(), "23.1".into()]);
        table.row(vec!["8".into(), "**all**".into(), "2".into(), "87".into()]);
        table.row(vec!["8".into(), "fact*".into(), "0".into(), "-".into()]);
        table
    }

    #[test]
    fn a_table_becomes_rows_keyed_by_header_with_numbers_as_numbers() {
        let table = ReportTable::from(&search_table());
        assert_eq!(table.key, "search");
        assert_eq!(table.rows[0]["clients"], Value::from(1));
        assert_eq!(table.rows[0]["query"], Value::from("all"));
        assert_eq!(table.rows[0]["p99 ms"], Value::from(23.1));
        assert_eq!(table.rows[2]["query"], Value::from("fact*"));
        assert_eq!(table.rows[2]["p99 ms"], Value::from("-"));
        let found: Vec<_> = table.rows_where(&[("clients", "8"), ("query", "all")]).collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["p99 ms"], Value::from(87));
    }

    #[test]
    fn a_report_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let report = Report::new(
            "sqlite",
            100_000,
            commit(),
            serde_json::json!({"seed": 42}),
            12.5,
            &[search_table()],
        );
        let path = report.write(dir.path(), "# md\n").unwrap();
        assert_eq!(path.file_name().unwrap(), "sqlite-100000.json");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sqlite-100000.md")).unwrap(),
            "# md\n"
        );
        std::fs::write(dir.path().join("notes.json"), "{\"not\": \"a report\"}").unwrap();
        let (reports, skipped) = Report::read_all(dir.path()).unwrap();
        assert_eq!(reports, vec![report.clone()]);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(skipped[0].contains("notes.json"), "{skipped:?}");
        assert!(report.date.starts_with("20"), "{}", report.date);
        assert!(report.machine.cores > 0);
    }

    #[test]
    fn rows_that_counted_errors_fail_the_run() {
        let failures = failures(&[search_table()]);
        assert_eq!(
            failures,
            vec!["3. search (7 requests): 2 errors (8, **all**)".to_owned()]
        );
    }
}

//! Latency percentiles, markdown tables and a closed-loop load runner.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Percentiles of a set of latencies (nearest rank).
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub count: usize,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Percentiles {
    pub fn of(samples: &[Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let rank = |p: f64| {
            let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
            sorted[i.clamp(1, sorted.len()) - 1]
        };
        Self {
            count: sorted.len(),
            p50: rank(50.0),
            p95: rank(95.0),
            p99: rank(99.0),
            max: sorted[sorted.len() - 1],
        }
    }
}

/// Milliseconds with a precision that suits the size.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1_000.0;
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

pub fn rate(count: usize, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return "-".into();
    }
    let r = count as f64 / secs;
    if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

pub fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

/// A markdown table printed at once, and recorded for the run's report files.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Which measurement this is, stable across runs and sizes (`search`, `lookup`, ...): what
    /// the report and the chart look tables up by, since titles carry the run's figures.
    pub key: &'static str,
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
}

impl Table {
    pub fn new(key: &'static str, title: impl Into<String>, headers: &[&str]) -> Self {
        Self {
            key,
            title: title.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Prints the table and records it for the report.
    pub fn print(&self) {
        print!("{}", self.render());
        crate::report::record(self);
    }

    /// The table as markdown, with its title as a heading and its notes below.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = (0..columns)
                .map(|i| {
                    let cell = cells.get(i).map(String::as_str).unwrap_or("");
                    format!("{cell}{}", " ".repeat(widths[i].saturating_sub(cell.chars().count())))
                })
                .collect();
            format!("| {} |\n", padded.join(" | "))
        };
        let mut out = format!("\n### {}\n\n", self.title);
        out.push_str(&line(&self.headers));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                out.push_str(note);
                out.push('\n');
            }
        }
        out
    }
}

/// One request of a load run: which kind it was, how long it took, and whether it succeeded.
#[derive(Debug, Clone)]
pub struct Sample {
    pub kind: usize,
    pub latency: Duration,
    pub ok: bool,
    /// A number the request reported (search hits, say).
    pub value: u64,
}

/// What a load run did.
pub struct LoadRun {
    pub samples: Vec<Sample>,
    pub elapsed: Duration,
    /// The deadline stopped the run before every request was sent.
    pub cut_short: bool,
}

impl LoadRun {
    /// The rows of one load level: all requests, then each kind of request (named by `kinds`),
    /// with the mean per-request value printed with `decimals` digits; and a note when the
    /// deadline cut the level short.
    pub fn level_rows(&self, table: &mut Table, clients: usize, kinds: &[&str], decimals: usize, deadline: Duration) {
        let row = |label: &str, kind: Option<usize>| {
            let p = Percentiles::of(&self.latencies(kind, false));
            vec![
                clients.to_string(),
                label.to_owned(),
                self.count(kind).to_string(),
                self.errors(kind).to_string(),
                ms(p.p50),
                ms(p.p95),
                ms(p.p99),
                rate(self.count(kind), self.elapsed),
                format!("{:.*}", decimals, self.mean_value(kind)),
            ]
        };
        table.row(row("**all**", None));
        for (kind, name) in kinds.iter().enumerate() {
            table.row(row(name, Some(kind)));
        }
        if self.cut_short {
            table.note(format!(
                "{clients} clients: stopped at the {deadline:?} deadline after {} requests",
                self.count(None)
            ));
        }
    }

    pub fn latencies(&self, kind: Option<usize>, ok_only: bool) -> Vec<Duration> {
        self.samples
            .iter()
            .filter(|s| kind.is_none_or(|k| s.kind == k) && (!ok_only || s.ok))
            .map(|s| s.latency)
            .collect()
    }

    pub fn count(&self, kind: Option<usize>) -> usize {
        self.samples.iter().filter(|s| kind.is_none_or(|k| s.kind == k)).count()
    }

    pub fn errors(&self, kind: Option<usize>) -> usize {
        self.samples
            .iter()
            .filter(|s| kind.is_none_or(|k| s.kind == k) && !s.ok)
            .count()
    }

    pub fn mean_value(&self, kind: Option<usize>) -> f64 {
        let values: Vec<u64> = self
            .samples
            .iter()
            .filter(|s| kind.is_none_or(|k| s.kind == k) && s.ok)
            .map(|s| s.value)
            .collect();
        if values.is_empty() {
            0.0
        } else {
            values.iter().sum::<u64>() as f64 / values.len() as f64
        }
    }
}

/// Runs `total` requests from `clients` concurrent clients, each sending its next request as
/// soon as the previous one is answered; stops sending at `deadline`. `request(i)` performs
/// request number `i` and returns its kind, success and a reported value.
pub async fn closed_loop<F, Fut>(clients: usize, total: usize, deadline: Duration, request: F) -> LoadRun
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (usize, bool, u64)> + Send,
{
    closed_loop_with(
        clients,
        total,
        deadline,
        |_| async {},
        move |(), i| {
            let answer = request(i);
            async move { ((), answer.await) }
        },
    )
    .await
}

/// [`closed_loop`] for clients that keep something of their own from one request to the next
/// (their connections): `open(client)` makes it for client number `client`, and
/// `request(kept, i)` performs request `i` with it and hands it back.
pub async fn closed_loop_with<S, O, OFut, F, Fut>(
    clients: usize,
    total: usize,
    deadline: Duration,
    open: O,
    request: F,
) -> LoadRun
where
    S: Send + 'static,
    O: Fn(usize) -> OFut + Send + Sync + 'static,
    OFut: Future<Output = S> + Send,
    F: Fn(S, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (S, (usize, bool, u64))> + Send,
{
    let open = Arc::new(open);
    let request = Arc::new(request);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let open = open.clone();
        let request = request.clone();
        let next = next.clone();
        tasks.spawn(async move {
            let mut samples = Vec::new();
            let mut kept = open(client).await;
            loop {
                if started.elapsed() > deadline {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let sent = Instant::now();
                let (back, (kind, ok, value)) = request(kept, i).await;
                kept = back;
                samples.push(Sample {
                    kind,
                    latency: sent.elapsed(),
                    ok,
                    value,
                });
            }
            samples
        });
    }
    let mut samples = Vec::with_capacity(total);
    while let Some(done) = tasks.join_next().await {
        if let Ok(part) = done {
            samples.extend(part);
        }
    }
    let elapsed = started.elapsed();
    LoadRun {
        cut_short: samples.len() < total,
        samples,
        elapsed,
    }
}

/// The CPU time, user and system, every thread of this process has used so far, if the kernel
/// says (`/proc/self/stat`, in clock ticks of 1/100 s: Linux's fixed `USER_HZ`).
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name, field 2, is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}

/// CPU microseconds per unit of work, or `n/a`.
pub fn cpu_per(cpu: Option<Duration>, units: usize) -> String {
    match cpu {
        Some(cpu) if units > 0 => format!("{:.0}", cpu.as_secs_f64() * 1e6 / units as f64),
        _ => "n/a".into(),
    }
}

/// The process's peak resident set size in MiB (VmHWM), if the kernel says.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The size of everything under `path`, in MiB.
pub fn dir_size_mib(path: &std::path::Path) -> f64 {
    fn walk(path: &std::path::Path) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return 0;
        };
        if meta.is_dir() {
            std::fs::read_dir(path)
                .map(|entries| entries.flatten().map(|e| walk(&e.path())).sum())
                .unwrap_or(0)
        } else {
            meta.len()
        }
    }
    walk(path) as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(&samples);
        assert_eq!(p.p50, Duration::from_millis(50));
        assert_eq!(p.p95, Duration::from_millis(95));
        assert_eq!(p.p99, Duration::from_millis(99));
        assert_eq!(p.max, Duration::from_millis(100));
        assert_eq!(Percentiles::of(&[]).count, 0);
    }

    #[test]
    fn process_cpu_grows_with_work() {
        // Spins until the count shows 50 ms (or 10 s went by): on a loaded machine a wall-clock
        // spin may get only a sliver of a core.
        let before = process_cpu().expect("linux reports the process's cpu time");
        let started = std::time::Instant::now();
        let mut x = 0u64;
        let spent = loop {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            let spent = process_cpu().unwrap() - before;
            if spent >= Duration::from_millis(50) || started.elapsed() > Duration::from_secs(10) {
                break spent;
            }
        };
        let wall = started.elapsed();
        assert!(
            spent >= Duration::from_millis(50),
            "{wall:?} of spinning counted as {spent:?}"
        );
        // The process cannot use more CPU than every core for the wall time (plus a tick of
        // rounding); other tests may run in it beside this one.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        assert!(
            spent <= wall * cores + Duration::from_millis(20),
            "{wall:?} of spinning counted as {spent:?}"
        );
        assert_eq!(cpu_per(Some(Duration::from_millis(3)), 1_000), "3");
        assert_eq!(cpu_per(None, 1_000), "n/a");
    }
}

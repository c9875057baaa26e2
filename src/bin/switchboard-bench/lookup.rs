//! Scenario 4: caller lookup, `GET /api/v1/contacts/lookup?phone=`, with seeded callers'
//! numbers written the ways people and PBXs write them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::harness::Bench;
use crate::seed::Dataset;
use crate::stats::{Table, closed_loop};

pub const LEVELS: [usize; 2] = [1, 8];
const LEVEL_DEADLINE: Duration = Duration::from_secs(120);
/// Callers looked up: the heaviest ones and a spread of the rest.
const CALLERS: usize = 400;

#[derive(Deserialize)]
struct Answer {
    interactions: Vec<IgnoredAny>,
}

pub async fn run(bench: &Bench, dataset: &Dataset, requests_per_level: usize) -> Result<()> {
    if dataset.phone_people.is_empty() {
        bail!("no seeded caller to look up (seed first)");
    }
    // Every spelling of each chosen caller, interleaved so all spellings get the same load.
    let step = (dataset.phone_people.len() / CALLERS).max(1);
    let callers: Vec<usize> = dataset
        .phone_people
        .iter()
        .step_by(step)
        .take(CALLERS)
        .copied()
        .collect();
    let mut kinds: Vec<&'static str> = Vec::new();
    let mut targets: Vec<(usize, String)> = Vec::new();
    for person in &callers {
        for (kind, spelling) in dataset.people[*person].phone_spellings() {
            let k = kinds.iter().position(|x| *x == kind).unwrap_or_else(|| {
                kinds.push(kind);
                kinds.len() - 1
            });
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("phone", &spelling)
                .finish();
            targets.push((k, query));
        }
    }
    let targets = Arc::new(targets);
    let mut table = Table::new(
        "lookup",
        format!(
            "4. caller lookup over HTTP ({requests_per_level} requests per level over {} callers, {} spellings)",
            callers.len(),
            targets.len()
        ),
        &[
            "clients",
            "spelling",
            "requests",
            "errors",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "req/s",
            "mean interactions",
        ],
    );
    for clients in LEVELS {
        let http = bench.http.clone();
        let base = bench.base.clone();
        let token = bench.token.clone();
        let targets = targets.clone();
        let run = closed_loop(clients, requests_per_level, LEVEL_DEADLINE, move |i| {
            let (kind, query) = &targets[i % targets.len()];
            let kind = *kind;
            let request = http
                .get(format!("{base}/api/v1/contacts/lookup?{query}"))
                .bearer_auth(&token);
            async move {
                match request.send().await {
                    Ok(r) if r.status().is_success() => match r.json::<Answer>().await {
                        Ok(a) => (kind, true, a.interactions.len() as u64),
                        Err(_) => (kind, false, 0),
                    },
                    _ => (kind, false, 0),
                }
            }
        })
        .await;
        run.level_rows(&mut table, clients, &kinds, 1, LEVEL_DEADLINE);
    }
    table.note("an answer is the contact, its 50 latest interactions and its open conversations; an error is any non-2xx (a 404 means the number was not found)");
    table.print();
    Ok(())
}

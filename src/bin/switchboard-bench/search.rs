//! Scenario 3: `GET /api/v1/search` over HTTP with a mix of query kinds, at 1, 8 and 64
//! concurrent clients.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::data::{self, HISTORY_DAYS, RARE_WORD};
use crate::harness::Bench;
use crate::seed::Dataset;
use crate::stats::{LoadRun, Table, closed_loop};

pub const LEVELS: [usize; 3] = [1, 8, 64];
/// No level runs longer than this, whatever its request count.
const LEVEL_DEADLINE: Duration = Duration::from_secs(120);

#[derive(Deserialize)]
struct Answer {
    total: u64,
    #[serde(rename = "hits")]
    _hits: IgnoredAny,
}

/// The query mix: a name for the table and the query string after `/api/v1/search?`.
pub fn queries(dataset: &Dataset) -> Vec<(String, String)> {
    let encode = |pairs: &[(&str, &str)]| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        s.finish()
    };
    let mut mix = vec![
        ("common word: pedido".to_owned(), encode(&[("q", "pedido")])),
        (format!("rare word: {RARE_WORD}"), encode(&[("q", RARE_WORD)])),
        ("no accent: telefono".to_owned(), encode(&[("q", "telefono")])),
        (
            "phrase: \"dirección de envío\"".to_owned(),
            encode(&[("q", "\"dirección de envío\"")]),
        ),
        ("prefix: fact*".to_owned(), encode(&[("q", "fact*")])),
    ];
    // The heaviest caller's number, as an agent types part of it.
    if let Some(person) = dataset.phone_people.first().map(|p| &dataset.people[*p]) {
        let digits = person.phone.digits();
        let fragment = &digits[digits.len() - 6..];
        mix.push((format!("phone fragment: {fragment}"), encode(&[("q", fragment)])));
    }
    if let Some((contact, person, _)) = dataset.heavy_contact {
        let word = if dataset.people[person].spanish {
            "factura"
        } else {
            "invoice"
        };
        let to = data::history_end();
        let from = to - time::Duration::days(HISTORY_DAYS / 4);
        let rfc = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        mix.push((
            format!("{word} + heavy contact + last 6 months"),
            encode(&[
                ("q", word),
                ("contact_id", &contact.to_string()),
                ("from", &rfc(from)),
                ("to", &rfc(to)),
            ]),
        ));
    }
    mix
}

pub async fn run(bench: &Bench, dataset: &Dataset, requests_per_level: usize) -> Result<()> {
    let mix = Arc::new(queries(dataset));
    let mut table = Table::new(
        "search",
        format!("3. search over HTTP ({requests_per_level} requests per level, round-robin over the query mix)"),
        &[
            "clients",
            "query",
            "requests",
            "errors",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "req/s",
            "mean matches",
        ],
    );
    for clients in LEVELS {
        let run = load(
            bench,
            mix.clone(),
            clients,
            requests_per_level,
            std::slice::from_ref(&bench.base),
        )
        .await;
        let names: Vec<&str> = mix.iter().map(|(name, _)| name.as_str()).collect();
        run.level_rows(&mut table, clients, &names, 0, LEVEL_DEADLINE);
    }
    table.note(
        "each answer carries the first 20 hits as full interactions read from the store; mean matches is the \
         answer's `total`, which stops counting past 10,000 as the console's search does (the comparison with \
         FTS5 and PostgreSQL counts every match)",
    );
    table.print();
    Ok(())
}

/// `requests` searches from `clients` clients, round-robin over the query mix and over `bases`
/// (the nodes' URLs).
pub async fn load(
    bench: &Bench,
    queries: Arc<Vec<(String, String)>>,
    clients: usize,
    requests: usize,
    bases: &[String],
) -> LoadRun {
    let http = bench.http.clone();
    let token = bench.token.clone();
    let bases = bases.to_vec();
    closed_loop(clients, requests, LEVEL_DEADLINE, move |i| {
        let kind = i % queries.len();
        let base = &bases[i % bases.len()];
        let request = http
            .get(format!("{base}/api/v1/search?{}", queries[kind].1))
            .bearer_auth(&token);
        async move {
            match request.send().await {
                Ok(r) if r.status().is_success() => match r.json::<Answer>().await {
                    Ok(a) => (kind, true, a.total),
                    Err(_) => (kind, false, 0),
                },
                _ => (kind, false, 0),
            }
        }
    })
    .await
}

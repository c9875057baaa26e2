//! Full-text search: accents, phrases, prefixes, phone fragments, filters, and rebuilding.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_stores;

on_both_stores!(
    a_pushed_interaction_is_found_within_a_second_with_and_without_accents,
    reindex_after_deleting_the_index_directory_restores_the_same_results,
    search_understands_phrases_prefixes_phone_fragments_and_filters,
);

async fn a_pushed_interaction_is_found_within_a_second_with_and_without_accents(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.api_account("api").await;
    let (_, pushed) = app
        .push(
            json!({"channel_account_id": account, "external_id": "acc-1", "contact": {"email": "sofia@example.es"},
                     "subject": "Avería", "text": "Mi teléfono no funciona desde el martes"}),
        )
        .await;
    let id = pushed["interaction"]["id"].clone();

    for query in ["telefono", "TELÉFONO", "Teléfono", "averia"] {
        let (found, took) = app
            .search_until(&format!("q={query}"), Duration::from_secs(1), |b| {
                b["hits"].get(0).is_some_and(|h| h["interaction"]["id"] == id)
            })
            .await;
        assert_eq!(found["hits"][0]["interaction"]["id"], id, "{query}: {found}");
        assert!(took < Duration::from_secs(1), "{query} took {took:?}");
    }
    let (_, none) = app.get("/api/v1/search?q=telefonos").await;
    assert_eq!(none["total"], 0, "matching is on whole words, not substrings: {none}");
    assert_eq!(
        none["total_exact"], true,
        "fewer than the counting limit are counted exactly: {none}"
    );
}

/// The ids found for each query, in rank order.
async fn results(app: &TestApp, queries: &[&str]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for q in queries {
        let (status, body) = app.get(&format!("/api/v1/search?q={q}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        out.push(ids(&body["hits"]));
    }
    out
}

async fn reindex_after_deleting_the_index_directory_restores_the_same_results(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let account = app.api_account("api").await;
    let texts = [
        "la factura de marzo",
        "el router no conecta",
        "factura duplicada en abril",
        "cambio de dirección",
        "router nuevo",
    ];
    for (n, text) in texts.iter().enumerate() {
        app.push(json!({"channel_account_id": account, "external_id": format!("x{n}"), "contact": {"phone": format!("+3461100000{n}")}, "text": text}))
            .await;
    }
    let queries = ["factura", "router", "direccion", "611000003"];
    app.search_until("q=router", Duration::from_secs(5), |b| b["total"] == 2)
        .await;
    app.search_until("q=direccion", Duration::from_secs(5), |b| b["total"] == 1)
        .await;
    let before = results(&app, &queries).await;
    assert_eq!(before.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1, 1]);

    app.stop().await;
    std::fs::remove_dir_all(app.index_dir()).unwrap();
    let config = reindex_config(&app);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--config", config.to_str().unwrap(), "reindex"])
        .output()
        .expect("the reindex command runs");
    assert!(
        output.status.success(),
        "reindex failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("reindexed 5 interactions"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    app.start().await;

    assert_eq!(results(&app, &queries).await, before);
}

async fn search_understands_phrases_prefixes_phone_fragments_and_filters(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.api_account("api").await;
    let push = |external: &str, who: Value, at: &str, direction: &str, text: &str| json!({"channel_account_id": account, "external_id": external, "contact": who, "occurred_at": at, "direction": direction, "text": text});
    let (_, a) = app
        .push(push(
            "a",
            json!({"phone": "+34 655 44 33 22"}),
            "2026-05-01T10:00:00Z",
            "inbound",
            "The delivery never arrived",
        ))
        .await;
    let (_, b) = app
        .push(push(
            "b",
            json!({"email": "olga@example.com"}),
            "2026-05-10T10:00:00Z",
            "inbound",
            "Delivery arrived broken, never again",
        ))
        .await;
    let (_, c) = app
        .push(push(
            "c",
            json!({"email": "olga@example.com"}),
            "2026-06-01T10:00:00Z",
            "outbound",
            "We are sending a new delivery",
        ))
        .await;
    let id = |v: &Value| v["interaction"]["id"].as_str().unwrap().to_owned();
    app.search_until("q=delivery", Duration::from_secs(5), |r| r["total"] == 3)
        .await;

    let found = |q: &'static str| {
        let app = &app;
        async move {
            let (status, body) = app.get(&format!("/api/v1/search?{q}")).await;
            assert_eq!(status, StatusCode::OK, "{q}: {body}");
            let mut got = ids(&body["hits"]);
            got.sort();
            got
        }
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(found("q=%22never%20arrived%22").await, vec![id(&a)], "phrase");
    assert_eq!(found("q=deliv*").await, sorted(vec![id(&a), id(&b), id(&c)]), "prefix");
    assert_eq!(
        found("q=delivery%20-broken").await,
        sorted(vec![id(&a), id(&c)]),
        "exclusion"
    );
    assert_eq!(found("q=443322").await, vec![id(&a)], "phone fragment");
    assert_eq!(found("q=olga").await, sorted(vec![id(&b), id(&c)]), "email address");
    assert_eq!(
        found("q=delivery&direction=outbound").await,
        vec![id(&c)],
        "direction filter"
    );
    let olga = b["interaction"]["contact_id"].as_str().unwrap().to_owned();
    let (_, by_contact) = app.get(&format!("/api/v1/search?q=delivery&contact_id={olga}")).await;
    assert_eq!(by_contact["total"], 2, "{by_contact}");
    assert_eq!(
        found("q=delivery&from=2026-05-05T00:00:00Z&to=2026-05-31T00:00:00Z").await,
        vec![id(&b)],
        "date range"
    );
    let (status, short) = app.get("/api/v1/search?q=d*").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{short}");
    assert_eq!(short["error"]["field"], "q");
}

/// Imports `lines` missed calls, a second apart, from `callers` numbers in turn: caller `k` is
/// `6{10_000_000 + k}` (Spanish, national form).
async fn import_missed_calls(app: &TestApp, lines: usize, callers: usize) {
    let (account, _) = crate::voice::voice_account(app, json!({})).await;
    let start = time::macros::datetime!(2026-03-01 00:00:00);
    let mut content = String::new();
    for i in 0..lines {
        let at = start + time::Duration::seconds(i as i64);
        let times = (
            &crate::voice::cdr_time(at)[..],
            "",
            &crate::voice::cdr_time(at + time::Duration::seconds(20))[..],
        );
        let caller = format!("6{:08}", 10_000_000 + i % callers);
        content += &crate::voice::cdr(&caller, "1001", "", times, (20, 0), "NO ANSWER", &format!("r.{i}"));
    }
    let file = app.dir.path().join("Master.csv");
    std::fs::write(&file, content).unwrap();
    let (out, _) = crate::voice::import_cdr(app, &account, &file);
    assert!(out.contains(&format!("{lines} imported")), "{out}");
}

/// Rewrites `row`'s text as "revisado ronda{round}", keeping the rest of it.
async fn revise(store: &switchboard::store::Store, row: &switchboard::domain::Interaction, round: usize) {
    let revision = switchboard::store::Revision {
        occurred_at: row.occurred_at,
        text: Some(format!("revisado ronda{round}")),
        details: row.details.clone(),
        author_agent_id: row.author_agent_id,
    };
    store.revise_interaction(row.id, revision).await.unwrap();
}

/// A settings file for the command line: the app's store and index.
fn reindex_config(app: &TestApp) -> std::path::PathBuf {
    let config = app.dir.path().join("reindex.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = {:?}\n[index]\npath = {:?}\n",
            secrecy::ExposeSecret::expose_secret(&app.settings.database.url),
            app.index_dir()
        ),
    )
    .unwrap();
    config
}

/// A rebuild on one node while another keeps revising calls: a row the rebuild has read and
/// that then changes comes back with a later sequence number. The rebuilt index, caught up,
/// must hold every interaction once, in its latest version.
#[tokio::test]
async fn a_rebuild_while_rows_change_holds_each_interaction_once_in_its_latest_version() {
    // More than two of the rebuild's reads of 5,000.
    const LINES: usize = 12_000;
    let app = spawn_app(Backend::Sqlite).await;
    import_missed_calls(&app, LINES, 500).await;

    // The other node: the same store, revising the first rows the rebuild reads, round after
    // round, for as long as the rebuild runs.
    let url = secrecy::ExposeSecret::expose_secret(&app.settings.database.url).to_owned();
    let store = switchboard::store::Store::connect(&url, 4).await.unwrap();
    let first: Vec<_> = store.index_batch(0, 1_000).await.unwrap();
    let (index, writer) = switchboard::search::SearchIndex::open(
        &app.dir.path().join("rebuilt"),
        50,
        switchboard::search::WriterThreads::Rebuild,
    )
    .unwrap();
    let mut indexer = switchboard::search::indexer::Indexer::new(index.clone(), writer, store.clone());
    let rebuilding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reviser = tokio::spawn({
        let (store, rebuilding) = (store.clone(), rebuilding.clone());
        async move {
            let mut revised = std::collections::HashMap::new();
            for (round, (row, _)) in (0..).zip(first.iter().cycle()) {
                if !rebuilding.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                revise(&store, row, round).await;
                revised.insert(row.id, round);
            }
            revised
        }
    });
    let indexed = indexer.rebuild().await.unwrap();
    rebuilding.store(false, std::sync::atomic::Ordering::SeqCst);
    let revised = reviser.await.unwrap();
    // Rows revised after the rebuild read them were read again: the case this test is about.
    assert!(indexed > LINES, "{indexed} reads: no row was revised once read");
    indexer.catch_up().await.unwrap();

    assert!(!revised.is_empty());
    assert_eq!(index.num_docs(), LINES as u64, "one document per interaction");
    let found = index
        .search("revisado", switchboard::search::Filters::default(), 10, 0, true)
        .await
        .unwrap();
    assert_eq!(found.total.count, revised.len(), "every revised row, once");
    for (id, round) in revised.iter().take(50) {
        let latest = index
            .search(
                &format!("ronda{round}"),
                switchboard::search::Filters::default(),
                10,
                0,
                true,
            )
            .await
            .unwrap();
        let ids: Vec<_> = latest.hits.iter().map(|(hit, _)| *hit).collect();
        assert_eq!(ids, [*id], "the latest revision of {id} is the one indexed");
    }
}

/// Live indexing adds a new interaction once and replaces a revised one, whichever earlier
/// commit indexed it: a document the indexer failed to delete shows here as a duplicate or a
/// stale revision.
#[tokio::test]
async fn live_indexing_holds_each_interaction_once_in_its_latest_version() {
    const LINES: usize = 300;
    const CALLERS: usize = 10;
    let app = spawn_app(Backend::Sqlite).await;
    import_missed_calls(&app, LINES, CALLERS).await;
    let calls_of = |caller: usize| format!("q=6{:08}", 10_000_000 + caller);
    let per_caller = json!(LINES / CALLERS);
    let (body, _) = app
        .search_until(&calls_of(0), Duration::from_secs(30), |b| b["total"] == per_caller)
        .await;
    assert_eq!(body["total"], per_caller, "{body}");

    let url = secrecy::ExposeSecret::expose_secret(&app.settings.database.url).to_owned();
    let store = switchboard::store::Store::connect(&url, 4).await.unwrap();
    let rows: Vec<_> = store.index_batch(0, 1_000).await.unwrap();
    // Three rounds, each committed before the next: a row revised in round 2 was indexed by
    // round 1's commit, and a row revised only once by the import's.
    for round in 0..3 {
        for (row, _) in rows.iter().skip(round * 20).take(40) {
            revise(&store, row, round).await;
        }
        let (body, _) = app
            .search_until(&format!("q=ronda{round}"), Duration::from_secs(10), |b| {
                b["total"] == json!(40)
            })
            .await;
        assert_eq!(body["total"], json!(40), "round {round}: {body}");
    }

    // Rows 0-19 were last revised in round 0, 20-39 in round 1, 40-79 in round 2.
    let count = |query: String| {
        let app = &app;
        async move { app.get(&format!("/api/v1/search?{query}")).await.1["total"].clone() }
    };
    assert_eq!(count("q=ronda0".into()).await, json!(20));
    assert_eq!(count("q=ronda1".into()).await, json!(20));
    assert_eq!(count("q=ronda2".into()).await, json!(40));
    assert_eq!(count("q=revisado".into()).await, json!(80), "each revised row once");
    for caller in 0..CALLERS {
        assert_eq!(
            count(calls_of(caller)).await,
            per_caller,
            "caller {caller}'s calls, once each"
        );
    }
}

/// `switchboard reindex` killed part-way leaves an index that says how far it got, and the
/// next start indexes the rest: a rebuild first commits the emptied index with a watermark of
/// 0, and then only ever commits a watermark that its documents reach.
#[tokio::test]
async fn a_reindex_killed_part_way_is_finished_by_the_next_start() {
    const LINES: usize = 20_000;
    const CALLERS: usize = 500;
    let mut app = spawn_app(Backend::Sqlite).await;
    import_missed_calls(&app, LINES, CALLERS).await;
    let calls_of = |caller: usize| format!("q=6{:08}", 10_000_000 + caller);
    let per_caller = json!(LINES / CALLERS);
    app.search_until(&calls_of(CALLERS - 1), Duration::from_secs(30), |b| {
        b["total"] == per_caller
    })
    .await;
    app.stop().await;

    let config = reindex_config(&app);
    let meta_file = app.index_dir().join("meta.json");
    let payload = || -> Option<String> {
        let meta = std::fs::read_to_string(&meta_file).ok()?;
        let meta: Value = serde_json::from_str(&meta).ok()?;
        meta["payload"].as_str().map(str::to_owned)
    };
    let caught_up = payload().expect("the live index has a watermark");
    assert_ne!(caught_up, "0");
    let mut reindex = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--config", config.to_str().unwrap(), "reindex"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the reindex command starts");
    // Killed as soon as it has emptied the index, while it reads and indexes the store.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while payload().as_deref() != Some("0") {
        assert!(
            reindex.try_wait().unwrap().is_none(),
            "the reindex ended (watermark {:?}) and never committed the emptied index with a watermark of 0",
            payload()
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the reindex never emptied the index"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    reindex.kill().unwrap();
    let status = reindex.wait().unwrap();
    assert!(!status.success(), "killed, not finished: {status}");
    assert_eq!(
        payload().as_deref(),
        Some("0"),
        "the kill came before the rebuild's last commit"
    );

    app.start().await;
    for caller in [0, CALLERS / 2, CALLERS - 1] {
        let (found, _) = app
            .search_until(&calls_of(caller), Duration::from_secs(60), |b| b["total"] == per_caller)
            .await;
        assert_eq!(found["total"], per_caller, "caller {caller}: {found}");
    }
    assert_eq!(payload(), Some(caught_up), "the watermark is back where it was");
}

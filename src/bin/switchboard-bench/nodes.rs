//! Scenario 9: the same workloads on one node and on three nodes sharing one PostgreSQL, the
//! clients spread round-robin over the nodes as a load balancer would. The two extra nodes run
//! in this process, on the same cores: the table shows what coordination costs (relayed
//! events, shared leases, three indexes tailing one store), not how far more machines scale.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

use crate::harness::Bench;
use crate::seed::Dataset;
use crate::stats::{LoadRun, Percentiles, Table, ms, rate, secs};
use crate::{search, webhooks};

const WEBHOOK_CLIENTS: usize = 32;
const SEARCH_CLIENTS: usize = 8;

pub async fn run(bench: &Bench, dataset: &Dataset, webhook_messages: usize, searches: usize) -> Result<()> {
    if bench.store_kind != "postgres" {
        println!(
            "\n### 9. one node and three nodes\n\nskipped: several nodes share a PostgreSQL store; run with --postgres URL"
        );
        return Ok(());
    }
    let started = Instant::now();
    let peers = [bench.start_peer("b").await?, bench.start_peer("c").await?];
    let last = bench.hub.store.last_seq().await.context("the store's last sequence")?;
    for peer in &peers {
        peer.hub.search.wake();
        tokio::time::timeout(Duration::from_secs(3_600), peer.hub.search.wait_for(last))
            .await
            .map_err(|_| anyhow!("a new node's index did not catch up within an hour"))?;
    }
    let caught_up = started.elapsed();
    let one = vec![bench.base.clone()];
    let three: Vec<String> = std::iter::once(bench.base.clone())
        .chain(peers.iter().map(|p| p.base.clone()))
        .collect();

    let mut table = Table::new(
        "nodes",
        "9. one node and three nodes on one PostgreSQL (clients round-robin over the nodes)",
        &[
            "workload",
            "nodes",
            "clients",
            "requests",
            "errors",
            "per second",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "note",
        ],
    );
    let sms = webhooks::sms_account(bench, dataset).await?;
    for (tag, bases) in [(100, &one), (101, &three)] {
        let run = webhooks::send(dataset, &sms, tag, WEBHOOK_CLIENTS, webhook_messages, bases).await;
        let found = webhooks::durable(bench, dataset, &sms, tag, &run).await;
        let acked = run.samples.iter().filter(|s| s.ok).count();
        row(
            &mut table,
            "signed SMS webhooks",
            bases.len(),
            WEBHOOK_CLIENTS,
            &run,
            format!("{found}/{acked} durable"),
        );
    }
    let mix = Arc::new(search::queries(dataset));
    for bases in [&one, &three] {
        let run = search::load(bench, mix.clone(), SEARCH_CLIENTS, searches, bases).await;
        row(
            &mut table,
            "search (the query mix)",
            bases.len(),
            SEARCH_CLIENTS,
            &run,
            String::new(),
        );
    }
    table.note(format!(
        "two nodes started empty built their indexes of {last} changes in {} s while serving",
        secs(caught_up)
    ));
    table.note("all nodes share this machine's cores with each other, PostgreSQL and the client");
    table.print();
    for peer in peers {
        peer.stop().await;
    }
    Ok(())
}

fn row(table: &mut Table, workload: &str, nodes: usize, clients: usize, run: &LoadRun, note: String) {
    let ok = run.samples.iter().filter(|s| s.ok).count();
    let p = Percentiles::of(&run.latencies(None, true));
    table.row(vec![
        workload.into(),
        nodes.to_string(),
        clients.to_string(),
        run.count(None).to_string(),
        run.errors(None).to_string(),
        rate(ok, run.elapsed),
        ms(p.p50),
        ms(p.p95),
        ms(p.p99),
        note,
    ]);
}

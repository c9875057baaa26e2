//! Leases: work that must run on one node at a time runs only while this node holds its lease.
//!
//! [`keep`] tries to take or renew a named lease every third of its length and reports whether
//! this node holds it; [`while_held`] starts a piece of work when the lease is won and tells it
//! to stop when the lease is lost or the node stops. A stopping node gives its leases up, so
//! another node takes over at once; a killed one's leases expire after `cluster.lease_seconds`.
//!
//! Work under a lease must still be safe to run twice for a moment (a node that stalls past its
//! lease finishes the step it was in): every writer under a lease stores idempotently.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::hub::Hub;
use crate::store::Backend;

/// A lease this node is trying to hold.
pub struct Lease {
    /// Whether this node holds it now.
    pub held: watch::Receiver<bool>,
    keeper: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Waits until the lease has been given up (after shutdown), so the store is not closed
    /// under the release.
    pub async fn released(self) {
        let _ = self.keeper.await;
    }
}

/// Keeps trying to hold `name` until `shutdown` changes, then releases it.
pub fn keep(hub: &Hub, name: String, mut shutdown: watch::Receiver<bool>) -> Lease {
    // One node owns a SQLite store: it holds every lease, and a restart after a crash need
    // not wait for the dead process's leases to expire.
    if hub.store.backend() == Backend::Sqlite {
        let (held_tx, held) = watch::channel(true);
        let keeper = tokio::spawn(async move {
            let _ = shutdown.changed().await;
            held_tx.send_replace(false);
        });
        return Lease { held, keeper };
    }
    let (held_tx, held) = watch::channel(false);
    let hub = hub.clone();
    let ttl = Duration::from_secs(hub.settings.cluster.lease_seconds.max(1));
    let renew = ttl / 3;
    let holder = hub.node.to_string();
    let keeper = tokio::spawn(async move {
        loop {
            let held = match hub
                .store
                .acquire_lease(
                    &name,
                    &holder,
                    crate::domain::now(),
                    time::Duration::try_from(ttl).unwrap_or(time::Duration::MAX),
                )
                .await
            {
                Ok(held) => held,
                Err(error) => {
                    // Unable to renew, this node cannot know it still holds the lease.
                    warn!(lease = %name, %error, "lease not renewed");
                    false
                }
            };
            held_tx.send_if_modified(|was| {
                if *was != held {
                    info!(lease = %name, node = %holder, held, "lease changed hands");
                    *was = held;
                    true
                } else {
                    false
                }
            });
            tokio::select! {
                _ = tokio::time::sleep(renew) => {}
                _ = shutdown.changed() => break,
                _ = held_tx.closed() => break,
            }
        }
        held_tx.send_replace(false);
        if let Err(error) = hub.store.release_lease(&name, &holder).await {
            warn!(lease = %name, %error, "lease not released; it will expire");
        }
    });
    Lease { held, keeper }
}

/// Runs `work` whenever this node holds the lease `name`, until `shutdown` changes. `work` gets
/// a receiver that changes when it must stop (the lease was lost, or the node is stopping) and
/// should return soon after.
pub async fn while_held<F, Fut>(hub: &Hub, name: String, shutdown: watch::Receiver<bool>, work: F)
where
    F: FnMut(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()>,
{
    let lease = keep(hub, name, shutdown.clone());
    run_while_held(lease.held.clone(), shutdown, work).await;
    lease.released().await;
}

async fn run_while_held<F, Fut>(mut held: watch::Receiver<bool>, mut shutdown: watch::Receiver<bool>, mut work: F)
where
    F: FnMut(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        while !*held.borrow_and_update() {
            tokio::select! {
                changed = held.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let run = work(stop_rx);
        tokio::pin!(run);
        loop {
            tokio::select! {
                () = &mut run => break,
                changed = held.changed(), if !*stop_tx.borrow() => {
                    if changed.is_err() || !*held.borrow_and_update() {
                        let _ = stop_tx.send(true);
                    }
                }
                _ = shutdown.changed(), if !*stop_tx.borrow() => {
                    let _ = stop_tx.send(true);
                }
            }
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// Spawns [`while_held`] on `tasks`: `work` runs whenever this node holds `name`.
pub fn spawn_while_held<F, Fut>(
    tasks: &mut tokio::task::JoinSet<()>,
    hub: &Hub,
    name: String,
    shutdown: watch::Receiver<bool>,
    work: F,
) where
    F: FnMut(watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let hub = hub.clone();
    tasks.spawn(async move { while_held(&hub, name, shutdown, work).await });
}

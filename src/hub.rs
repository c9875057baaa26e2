//! The hub's services in one cheap-to-clone handle: the store, the search index, the event bus
//! and the wake-up signals of the background workers. HTTP handlers and connectors' I/O loops
//! act on the hub through it.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::bus::EventBus;
use crate::search::SearchIndex;
use crate::settings::Settings;
use crate::store::Store;

#[derive(Clone)]
pub struct Hub {
    pub store: Store,
    pub search: SearchIndex,
    pub bus: EventBus,
    /// The queue of the node's single ingest writer.
    pub ingest_queue: crate::ingest::IngestQueue,
    /// Wakes the outbox worker when a reply was queued.
    pub outbox_wake: Arc<Notify>,
    /// Wakes the webhook deliverer when a trigger queued a webhook.
    pub webhook_wake: Arc<Notify>,
    pub settings: Arc<Settings>,
    /// What time it is for the hub: the system clock, or a test's manual one.
    pub clock: crate::clock::Clock,
    /// This node, among the nodes sharing the store.
    pub node: crate::cluster::NodeId,
}

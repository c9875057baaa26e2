//! Several hub nodes on one PostgreSQL, with nothing that must run as a single replica.
//!
//! - Each node has a [`NodeId`], new at every start.
//! - Work that must run on one node at a time (an IMAP mailbox's poller, a CDR file follower,
//!   the metrics and automation workers) runs under a [`lease`]: a row with a holder and an
//!   expiry, renewed while the node lives and taken over by another node once it expires.
//! - The outbox is drained by every node at once (`FOR UPDATE SKIP LOCKED` on PostgreSQL).
//! - Events reach the other nodes through the [`relay`] (PostgreSQL `LISTEN/NOTIFY` carrying ids;
//!   receivers read the rows), so an agent sees what arrived on any node.
//! - Each node keeps its own search index by tailing the store's change sequence, which is
//!   taken under a row lock held to commit, so it never skips a slower writer's rows.
//!
//! On SQLite there is one node: its leases are always won and there is nothing to relay.

pub mod lease;
pub mod relay;

/// This node, for leases and for telling its own relayed events from others'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(pub uuid::Uuid);

impl NodeId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }
}

impl Default for NodeId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

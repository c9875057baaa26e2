//! Switchboard: every channel's touchpoints in one timeline per contact.
//!
//! The module map is the architecture: connectors (in the `switchboard-connectors` crate) turn
//! wire formats into envelopes; [`ingest`] stores them through one path into the [`store`];
//! [`search`] indexes what the store holds; [`api`] serves agents and integrations.

/// HTTP routes under `/api/v1`, the error type and extractors of the edge.
pub mod api;
/// Custom attributes on contacts: typed definitions and value validation.
pub mod attributes;
/// Passwords, sessions, CSRF, API tokens and the login limiter.
pub mod auth;
/// Segments, value-based priority and event-driven triggers.
pub mod automation;
/// The in-process event bus, published after each commit.
pub mod bus;
/// Per-kind channel-account settings and the senders replies go out through.
pub mod channels;
/// Web chat: settings and signed visitor identity.
pub mod chat;
/// Web chat's offline fallback: unread replies sent on by email.
pub mod chat_offline;
/// The command line: serve, migrate, reindex, agent create.
pub mod cli;
/// The hub's clock: the system's, or a manual one in tests.
pub mod clock;
/// Several nodes on one PostgreSQL: leases on single-node work, events relayed between nodes.
pub mod cluster;
/// Contacts as CSV: import (an upsert by external id, all or nothing) and export.
pub mod contacts_csv;
/// Typed ids, enums and records of the domain.
pub mod domain;
/// Outgoing HTTP to admin-configured URLs: resolved, checked against private ranges, pinned.
pub mod egress;
/// Email accounts: settings and the IMAP pollers.
pub mod email;
/// The hub's services in one handle.
pub mod hub;
/// The one ingest path: envelope to contact, conversation and interaction in one transaction.
pub mod ingest;
/// Response-time metrics, business hours, SLA deadlines and breaches, reports, dashboard.
pub mod metrics;
/// The outbox worker and the channel senders it delivers through.
pub mod outbox;
/// Agent presence, following the consoles they have open.
pub mod presence;
/// Agents' replies and notes, queued for delivery in the same transaction.
pub mod reply;
/// HTML sanitising and text extraction for untrusted bodies.
pub mod sanitize;
/// Full-text search: the tantivy index, its query language and the indexer.
pub mod search;
/// Layered typed settings.
pub mod settings;
/// Building and running the application.
pub mod startup;
/// The store: SQLite or PostgreSQL behind one interface.
pub mod store;
/// Logs and metrics.
pub mod telemetry;
/// Phone calls: voice settings, Asterisk CDR import and following.
pub mod voice;

//! Channel transport adapters for Switchboard.
//!
//! A connector turns one channel's wire format into the channel-neutral [`InboundEnvelope`] and
//! sends [`OutboundMessage`]s back out. Connectors know nothing of the hub's database or domain
//! rules: this crate never depends on the hub, which the crate boundary enforces.

/// Parsed handles that identify a person on a channel: email addresses, E.164 phone numbers,
/// chat visitor ids and external system ids.
pub mod address;
/// Web chat: the frames a visitor's widget sends over its socket.
pub mod chat;
/// Email: MIME parsing, IMAP fetching and IDLE, SMTP sending with threading headers.
pub mod email;
/// The channel-neutral envelope every connector produces, and the outbound message it consumes.
pub mod envelope;
/// Errors a connector reports, each saying whether a retry may succeed.
pub mod error;
/// The search query language's syntax (the hub builds index queries from its clauses).
pub mod query;
/// SMS: Twilio's webhooks, signatures and REST API; a generic signed JSON format.
pub mod sms;
/// Phone calls: Asterisk and FreeSWITCH CDRs, Twilio call callbacks, one call model.
pub mod voice;
/// Outgoing HTTP webhooks signed with HMAC-SHA256: the sender of API-channel accounts.
pub mod webhook;

pub use address::{EmailAddress, Handle, HandleKind, PhoneNumber, Region};
pub use envelope::{
    AttachmentMeta, ChannelKind, Content, Cursor, Direction, InboundEnvelope, OutboundMessage, ThreadingHints,
};
pub use error::ConnectorError;

/// Sends outbound messages on one channel.
///
/// Implementations must be safe to call again with the same message: the hub's outbox delivers
/// at least once, and passes the message's own id so the peer can drop a repeat.
pub trait OutboundSender: Send + Sync {
    /// Delivers `message`, returning the peer's id for it when the peer gives one.
    fn send(
        &self,
        message: &OutboundMessage,
    ) -> impl std::future::Future<Output = Result<Option<String>, ConnectorError>> + Send;
}

//! The records the hub stores and serves. They serialise as the API's JSON.

use serde::Serialize;
use time::OffsetDateTime;

use super::*;

/// A handle together with its row id.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredHandle {
    pub id: HandleId,
    pub kind: HandleKind,
    pub value: String,
}

impl StoredHandle {
    pub fn handle(&self) -> Option<Handle> {
        Handle::from_stored(self.kind, &self.value).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contact {
    pub id: ContactId,
    pub name: Option<String>,
    /// Set when this contact was merged into another; it then has no handles of its own.
    pub merged_into: Option<ContactId>,
    pub handles: Vec<StoredHandle>,
    /// Custom attribute values, by key (see `/attribute-definitions`).
    pub attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelAccount {
    pub id: ChannelAccountId,
    pub kind: ChannelKind,
    pub name: String,
    /// Connector settings (webhook URL, mailbox, number); never secrets.
    pub settings: serde_json::Value,
    #[serde(skip)]
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub contact_id: ContactId,
    pub channel_account_id: ChannelAccountId,
    pub channel: ChannelKind,
    pub handle_id: HandleId,
    pub status: ConversationStatus,
    pub priority: Priority,
    pub assignee_id: Option<AgentId>,
    pub subject: Option<String>,
    pub thread_key: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    /// The first customer message nobody has answered yet; `None` when the ball is not in our court.
    #[serde(with = "time::serde::rfc3339::option")]
    pub waiting_since: Option<OffsetDateTime>,
    /// The next SLA deadline, and what must happen by then (`first_response`, `next_response`,
    /// `resolution`).
    #[serde(with = "time::serde::rfc3339::option")]
    pub sla_due_at: Option<OffsetDateTime>,
    pub sla_target: Option<String>,
    /// Why the conversation has its priority: `segment VIP`, `trigger Third missed call`,
    /// `set by Bea`; `None` for the default.
    pub priority_reason: Option<String>,
    /// How far the customer has read (a chat visitor's read receipt): the highest message
    /// sequence number they have seen, 0 before any.
    pub customer_read_seq: i64,
}

/// One touchpoint: a message, a note or a call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interaction {
    pub id: InteractionId,
    /// The change sequence number the search index tails.
    pub seq: i64,
    pub channel_account_id: ChannelAccountId,
    pub channel: ChannelKind,
    pub external_id: String,
    pub conversation_id: ConversationId,
    pub contact_id: ContactId,
    pub handle_id: Option<HandleId>,
    pub direction: Direction,
    pub author_agent_id: Option<AgentId>,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub subject: Option<String>,
    pub text: Option<String>,
    /// Sanitised HTML, safe to show in a sandboxed frame.
    pub html: Option<String>,
    pub details: serde_json::Value,
    pub attachments: Vec<AttachmentMeta>,
    pub message_id: Option<String>,
    /// The position in its conversation, for clients resuming after a reconnect.
    pub conversation_seq: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agent {
    pub id: AgentId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub extension: Option<String>,
    pub presence: Presence,
}

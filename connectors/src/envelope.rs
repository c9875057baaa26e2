//! The channel-neutral shapes that cross the boundary between connectors and the hub.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::address::Handle;

/// The channel a touchpoint travelled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Email,
    Chat,
    Sms,
    Voice,
    /// Touchpoints pushed by other systems through the hub's API.
    Api,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 5] = [Self::Email, Self::Chat, Self::Sms, Self::Voice, Self::Api];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Chat => "chat",
            Self::Sms => "sms",
            Self::Voice => "voice",
            Self::Api => "api",
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown name for an enumerated value.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownVariant {
    pub what: &'static str,
    pub value: String,
}

impl FromStr for ChannelKind {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownVariant {
                what: "channel",
                value: s.to_owned(),
            })
    }
}

/// Who a touchpoint went from and to, seen from the business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the customer to the business.
    Inbound,
    /// From the business to the customer.
    Outbound,
    /// An internal note among agents; never sent.
    Note,
    /// Written by the hub itself (status changes, auto-replies).
    System,
}

impl Direction {
    pub const ALL: [Direction; 4] = [Self::Inbound, Self::Outbound, Self::Note, Self::System];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
            Self::Note => "note",
            Self::System => "system",
        }
    }
}

impl FromStr for Direction {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| UnknownVariant {
                what: "direction",
                value: s.to_owned(),
            })
    }
}

/// What a touchpoint says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Content {
    pub subject: Option<String>,
    /// Plain text; always present for search, derived from HTML when only HTML was sent.
    pub text: Option<String>,
    /// HTML exactly as received: untrusted. The hub sanitises it before storing.
    pub html: Option<String>,
}

/// Hints a channel gives about which conversation a touchpoint continues.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThreadingHints {
    /// The touchpoint's own id in its thread space (an email's Message-ID).
    pub message_id: Option<String>,
    /// The id of the touchpoint it answers.
    pub in_reply_to: Option<String>,
    /// Ids of earlier touchpoints of the thread, oldest first.
    pub references: Vec<String>,
    /// An explicit thread key chosen by the sending system: same key, same conversation.
    pub thread_key: Option<String>,
}

/// Metadata of one attachment; the bytes, when the connector has them, travel separately.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentMeta {
    pub name: Option<String>,
    pub content_type: String,
    pub size: Option<u64>,
    /// Where the bytes can be fetched from, for channels that send links (MMS media).
    pub url: Option<String>,
    /// Hex SHA-256 of the bytes, when the hub stores them: the key to download them by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// An email part's Content-ID (without brackets), which the HTML body's `cid:` URLs name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
}

/// A connector's resume position, saved in the same transaction as the touchpoint it follows,
/// so a restart resumes exactly after the last stored touchpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Which stream within the channel account (a mailbox name, a CDR file).
    pub stream: String,
    /// Opaque to the hub.
    pub position: String,
}

/// One touchpoint as a connector hands it to the hub.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundEnvelope {
    pub channel_account_id: Uuid,
    pub channel: ChannelKind,
    /// The touchpoint's id at its source; unique per channel account, so a repeat is stored once.
    pub external_id: String,
    pub direction: Direction,
    /// The customer's handle: the sender of an inbound touchpoint, the recipient of an outbound one.
    pub contact: Handle,
    pub contact_name: Option<String>,
    pub occurred_at: OffsetDateTime,
    pub threading: ThreadingHints,
    pub content: Content,
    pub attachments: Vec<AttachmentMeta>,
    /// Channel-specific details (call duration and disposition, SMS delivery status, ...).
    pub details: serde_json::Value,
    pub cursor: Option<Cursor>,
    /// The phone extension of the agent who handled it (a call's answering agent).
    pub agent_extension: Option<String>,
    /// Whether someone must answer it. A touchpoint that needs none (an answered call) continues
    /// an open conversation but never opens or reopens one: a new conversation for it starts resolved.
    pub needs_reply: bool,
}

/// A message the hub asks a connector to deliver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// The outbound interaction's id: stable across retries, for the peer to deduplicate on.
    pub id: Uuid,
    pub channel_account_id: Uuid,
    pub channel: ChannelKind,
    pub conversation_id: Uuid,
    /// The customer's handle (`email:…`, `phone:…`).
    pub to: String,
    pub content: Content,
    pub threading: ThreadingHints,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Written by a trigger, not a person: sent as an automatic reply (`Auto-Submitted`).
    #[serde(default)]
    pub automated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_directions_round_trip_through_their_names() {
        for k in ChannelKind::ALL {
            assert_eq!(k.as_str().parse::<ChannelKind>().unwrap(), k);
        }
        for d in Direction::ALL {
            assert_eq!(d.as_str().parse::<Direction>().unwrap(), d);
        }
        assert_eq!(
            "fax".parse::<ChannelKind>().unwrap_err().to_string(),
            "unknown channel \"fax\""
        );
    }
}

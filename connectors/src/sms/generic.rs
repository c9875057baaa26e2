//! A generic SMS webhook for gateways that are not Twilio: a JSON body signed like the hub's own
//! outgoing webhooks (`X-Switchboard-Timestamp`, and `X-Switchboard-Signature: v1=` + hex
//! HMAC-SHA256 of `"{timestamp}.{body}"` under the channel account's secret).
//!
//! ```json
//! {"message_id": "gw-123", "from": "+34600123456", "to": "+34910000000", "text": "Hola",
//!  "received_at": "2026-11-23T10:00:00Z", "media": [{"url": "https://…", "content_type": "image/jpeg"}]}
//! ```

use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::address::{Handle, PhoneNumber, Region};
use crate::envelope::{AttachmentMeta, ChannelKind, Content, Direction, InboundEnvelope, ThreadingHints};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericSms {
    pub message_id: String,
    pub from: String,
    pub to: Option<String>,
    pub text: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub received_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub media: Vec<Media>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Media {
    pub url: String,
    pub content_type: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GenericSmsError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl GenericSms {
    pub fn into_envelope(
        self,
        channel_account_id: Uuid,
        region: Region,
        now: OffsetDateTime,
    ) -> Result<InboundEnvelope, GenericSmsError> {
        if self.message_id.trim().is_empty() {
            return Err(GenericSmsError::Invalid {
                field: "message_id",
                reason: "must not be empty".into(),
            });
        }
        let from = PhoneNumber::parse(&self.from, region).map_err(|e| GenericSmsError::Invalid {
            field: "from",
            reason: e.to_string(),
        })?;
        let mut details = serde_json::Map::new();
        details.insert("provider".into(), "generic".into());
        if let Some(to) = self.to {
            details.insert("to".into(), to.into());
        }
        Ok(InboundEnvelope {
            channel_account_id,
            channel: ChannelKind::Sms,
            external_id: self.message_id,
            direction: Direction::Inbound,
            contact: Handle::Phone(from),
            contact_name: None,
            occurred_at: self.received_at.unwrap_or(now),
            threading: ThreadingHints::default(),
            content: Content {
                subject: None,
                text: self.text,
                html: None,
            },
            attachments: self
                .media
                .into_iter()
                .map(|m| AttachmentMeta {
                    name: None,
                    content_type: m.content_type.unwrap_or_else(|| "application/octet-stream".into()),
                    size: None,
                    url: Some(m.url),
                    sha256: None,
                    content_id: None,
                })
                .collect(),
            details: serde_json::Value::Object(details),
            cursor: None,
            agent_extension: None,
            needs_reply: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generic_message_becomes_an_envelope_and_bad_numbers_are_named() {
        let region = Region::parse("ES").unwrap();
        let sms: GenericSms = serde_json::from_str(
            r#"{"message_id": "gw-1", "from": "600 12 34 56", "text": "Hola", "media": [{"url": "https://x/y.jpg"}]}"#,
        )
        .unwrap();
        let env = sms
            .into_envelope(Uuid::nil(), region, OffsetDateTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(env.contact.to_string(), "phone:+34600123456");
        assert_eq!(env.attachments[0].content_type, "application/octet-stream");
        let bad: GenericSms = serde_json::from_str(r#"{"message_id": "gw-2", "from": "nope"}"#).unwrap();
        assert!(matches!(
            bad.into_envelope(Uuid::nil(), region, OffsetDateTime::UNIX_EPOCH),
            Err(GenericSmsError::Invalid { field: "from", .. })
        ));
    }
}

//! Phone calls: call detail records from Asterisk and FreeSWITCH, Twilio's call status
//! callbacks, all turned into one channel-neutral [`CallRecord`] and from there into an envelope.

pub mod asterisk;
pub mod freeswitch;
pub mod twilio;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::address::{Handle, PhoneNumber, Region};
use crate::envelope::{ChannelKind, Content, Direction, InboundEnvelope, ThreadingHints};

/// How a call ended, from the customer's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    Answered,
    /// Rang out, or the caller gave up before anyone answered.
    Missed,
    Busy,
    Failed,
    /// Answered by a voicemail box rather than a person.
    Voicemail,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Missed => "missed",
            Self::Busy => "busy",
            Self::Failed => "failed",
            Self::Voicemail => "voicemail",
        }
    }
}

/// One call as any source describes it, before we know which side is the customer.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// Unique per call leg at the source; the interaction's external id.
    pub call_id: String,
    /// The calling number or extension, as the source wrote it.
    pub from: String,
    /// The called number or extension.
    pub to: String,
    pub caller_name: Option<String>,
    pub started_at: OffsetDateTime,
    pub answered_at: Option<OffsetDateTime>,
    pub ended_at: Option<OffsetDateTime>,
    pub disposition: Disposition,
    /// Seconds from start to end.
    pub duration_s: Option<u32>,
    /// Seconds from answer to end.
    pub talk_s: Option<u32>,
    pub recording_url: Option<String>,
    pub notes: Option<String>,
    /// The source's own word on direction, when it has one (Twilio, FreeSWITCH).
    pub direction: Option<Direction>,
    /// `asterisk`, `freeswitch`, `twilio`, `api`.
    pub source: &'static str,
}

/// Tells the business's internal extensions from customers' phone numbers.
#[derive(Debug, Clone, Copy)]
pub struct Extensions {
    /// Digit strings up to this long are internal extensions (agents, queues), not customers.
    pub max_digits: usize,
}

impl Extensions {
    pub fn is_extension(&self, number: &str) -> bool {
        let n = number.trim();
        !n.is_empty() && n.len() <= self.max_digits && n.bytes().all(|b| b.is_ascii_digit())
    }
}

/// Why a call record is not a customer touchpoint.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallError {
    #[error("call between two internal extensions ({from} -> {to})")]
    Internal { from: String, to: String },
    #[error("the customer's number {number:?} is not a phone number")]
    Number { number: String },
    #[error("{0}")]
    Invalid(String),
}

impl CallRecord {
    /// The envelope for this call: the customer is whichever side is not an extension.
    pub fn into_envelope(
        self,
        channel_account_id: Uuid,
        region: Region,
        extensions: Extensions,
    ) -> Result<InboundEnvelope, CallError> {
        let (from_ext, to_ext) = (extensions.is_extension(&self.from), extensions.is_extension(&self.to));
        let direction = match (self.direction, from_ext, to_ext) {
            (_, true, true) => {
                return Err(CallError::Internal {
                    from: self.from,
                    to: self.to,
                });
            }
            (Some(d), _, _) => d,
            (None, true, false) => Direction::Outbound,
            (None, false, _) => Direction::Inbound,
        };
        let (customer, agent) = match direction {
            Direction::Outbound => (&self.to, &self.from),
            _ => (&self.from, &self.to),
        };
        let number = PhoneNumber::parse(customer, region).map_err(|_| CallError::Number {
            number: customer.clone(),
        })?;
        let agent_extension = extensions.is_extension(agent).then(|| agent.trim().to_owned());
        let needs_reply = direction == Direction::Inbound && self.disposition != Disposition::Answered;
        let text = summary(
            direction,
            self.disposition,
            &number,
            agent_extension.as_deref(),
            self.talk_s,
            self.notes.as_deref(),
        );
        let details = serde_json::json!({
            "call_id": self.call_id,
            "source": self.source,
            "from": self.from,
            "to": self.to,
            "disposition": self.disposition,
            "started_at": rfc3339(self.started_at),
            "answered_at": self.answered_at.map(rfc3339),
            "ended_at": self.ended_at.map(rfc3339),
            "duration_s": self.duration_s,
            "talk_s": self.talk_s,
            "recording_url": self.recording_url,
            "agent_extension": agent_extension,
            "notes": self.notes,
        });
        Ok(InboundEnvelope {
            channel_account_id,
            channel: ChannelKind::Voice,
            external_id: self.call_id,
            direction,
            contact: Handle::Phone(number),
            contact_name: self
                .caller_name
                .filter(|n| !n.trim().is_empty() && direction == Direction::Inbound),
            occurred_at: self.started_at,
            threading: ThreadingHints::default(),
            content: Content {
                subject: None,
                text: Some(text),
                html: None,
            },
            attachments: vec![],
            details,
            cursor: None,
            agent_extension,
            needs_reply,
        })
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A one-line, searchable description: "Inbound call from +34600123456, missed".
fn summary(
    direction: Direction,
    disposition: Disposition,
    number: &PhoneNumber,
    agent: Option<&str>,
    talk_s: Option<u32>,
    notes: Option<&str>,
) -> String {
    let mut text = match direction {
        Direction::Outbound => format!("Outbound call to {number}, {}", disposition.as_str()),
        _ => format!("Inbound call from {number}, {}", disposition.as_str()),
    };
    if let Some(agent) = agent {
        text.push_str(&format!(", extension {agent}"));
    }
    if let Some(talk) = talk_s.filter(|t| *t > 0 && disposition == Disposition::Answered) {
        text.push_str(&format!(", talk time {}:{:02}", talk / 60, talk % 60));
    }
    if let Some(notes) = notes.filter(|n| !n.trim().is_empty()) {
        text.push_str(". ");
        text.push_str(notes.trim());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(from: &str, to: &str, disposition: Disposition) -> CallRecord {
        CallRecord {
            call_id: "c1".into(),
            from: from.into(),
            to: to.into(),
            caller_name: Some("Ana".into()),
            started_at: OffsetDateTime::UNIX_EPOCH,
            answered_at: None,
            ended_at: None,
            disposition,
            duration_s: Some(70),
            talk_s: Some(65),
            recording_url: None,
            notes: None,
            direction: None,
            source: "test",
        }
    }

    const EXT: Extensions = Extensions { max_digits: 4 };

    fn es() -> Region {
        Region::parse("ES").unwrap()
    }

    #[test]
    fn a_customer_calling_an_extension_is_inbound_and_linked_to_that_agent() {
        let env = call("600123456", "1001", Disposition::Answered)
            .into_envelope(Uuid::nil(), es(), EXT)
            .unwrap();
        assert_eq!(env.direction, Direction::Inbound);
        assert_eq!(env.contact.to_string(), "phone:+34600123456");
        assert_eq!(env.agent_extension.as_deref(), Some("1001"));
        assert!(!env.needs_reply, "an answered call needs no callback");
        assert_eq!(
            env.content.text.as_deref(),
            Some("Inbound call from +34600123456, answered, extension 1001, talk time 1:05")
        );
    }

    #[test]
    fn an_extension_dialing_out_is_outbound_to_the_customer() {
        let env = call("1001", "0034600123456", Disposition::Busy)
            .into_envelope(Uuid::nil(), es(), EXT)
            .unwrap();
        assert_eq!(env.direction, Direction::Outbound);
        assert_eq!(env.contact.to_string(), "phone:+34600123456");
        assert!(!env.needs_reply);
        assert_eq!(
            env.contact_name, None,
            "the caller id name on an outbound call is the agent's"
        );
    }

    #[test]
    fn a_missed_inbound_call_needs_a_callback() {
        let env = call("+34 600 12 34 56", "900100200", Disposition::Missed)
            .into_envelope(Uuid::nil(), es(), EXT)
            .unwrap();
        assert!(env.needs_reply);
        assert_eq!(env.agent_extension, None);
    }

    #[test]
    fn internal_calls_and_unusable_numbers_are_refused_with_the_reason() {
        assert!(matches!(
            call("1001", "1002", Disposition::Answered).into_envelope(Uuid::nil(), es(), EXT),
            Err(CallError::Internal { .. })
        ));
        assert_eq!(
            call("anonymous", "1002", Disposition::Missed)
                .into_envelope(Uuid::nil(), es(), EXT)
                .unwrap_err(),
            CallError::Number {
                number: "anonymous".into()
            }
        );
    }
}

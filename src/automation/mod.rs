//! Segments, value-based priority and event-driven triggers.
//!
//! **Segments** are saved rules over a contact's attributes and recent activity
//! ([`rules`]). Memberships are stored and kept current: a contact's attribute change
//! re-evaluates it in the same transaction; its new touchpoints re-evaluate it when the
//! automation worker handles their events; a periodic sweep re-checks everyone for rules that
//! time alone can change ("last order within 30 days"). A segment may set the priority and the
//! SLA policy of its members' new conversations, with the segment named as the reason.
//!
//! **Triggers** ([`triggers`]) react to events written to `automation_queue` in the same
//! transaction as the fact itself (an inbound touchpoint, a missed call, a resolution, an SLA
//! breach, a segment entered). The [`worker`] handles each queued event in a transaction that
//! also records every trigger's firing (unique per trigger and event), applies the
//! conversation changes, queues replies in the outbox and webhooks in `webhook_deliveries`,
//! and deletes the queued row. So an event is acted on exactly once whatever crashes when;
//! webhooks are then delivered at least once with a stable delivery id ([`webhooks`]).
//!
//! Triggers cannot feed themselves: their actions raise none of the events triggers listen to,
//! except through a customer's channel, and there automatic replies carry
//! `Auto-Submitted: auto-replied`, inbound auto-submitted mail never gets an automatic reply
//! (RFC 3834), and one trigger replies at most once an hour in one conversation. A webhook
//! aimed back at the hub itself is refused when the trigger is saved.

pub mod rules;
mod template;
pub mod triggers;
mod webhooks;
mod worker;

pub use triggers::{Action, Trigger, TriggerError};
pub use worker::run;

use crate::domain::*;

crate::domain::named_enum!(
    /// What a trigger reacts to.
    TriggerEvent, "trigger event" {
        /// A message or call from a customer.
        InteractionReceived = "interaction_received",
        /// An inbound call nobody answered (after a short settling time, since a call's
        /// events may arrive out of order).
        CallMissed = "call_missed",
        ConversationResolved = "conversation_resolved",
        SlaBreached = "sla_breached",
        SegmentEntered = "segment_entered",
    }
);

/// A fact waiting for segments and triggers.
#[derive(Debug, Clone, PartialEq)]
pub struct AutomationEvent {
    pub kind: TriggerEvent,
    /// Names the fact, so it is queued and handled once.
    pub key: String,
    pub contact: Option<ContactId>,
    pub conversation: Option<ConversationId>,
    pub interaction: Option<InteractionId>,
    pub data: serde_json::Value,
}

/// A segment with its parsed rule.
#[derive(Debug, Clone)]
pub struct Segment {
    pub id: SegmentId,
    pub name: String,
    pub rule: rules::Rule,
    pub priority: Option<Priority>,
    pub sla_policy_id: Option<String>,
}

//! Conversation lifecycle events (the raw material of metrics) and the audit log.

use sqlx::Any;
use time::OffsetDateTime;

use super::{Db, Store, StoreError, Tx, sql};
use crate::domain::*;

/// What happened to a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    ConversationOpened,
    ConversationReopened,
    ConversationResolved,
    StatusChanged,
    Assigned,
    AgentReplied,
    SlaBreached,
    PriorityChanged,
    /// One of the conversation's mails was moved into a new conversation.
    MessageSplit,
}

impl EventKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::ConversationOpened => "conversation_opened",
            Self::ConversationReopened => "conversation_reopened",
            Self::ConversationResolved => "conversation_resolved",
            Self::StatusChanged => "status_changed",
            Self::Assigned => "assigned",
            Self::AgentReplied => "agent_replied",
            Self::SlaBreached => "sla_breached",
            Self::PriorityChanged => "priority_changed",
            Self::MessageSplit => "message_split",
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_event(
    tx: &mut impl Db,
    kind: EventKind,
    conversation: Option<ConversationId>,
    contact: Option<ContactId>,
    agent: Option<AgentId>,
    interaction: Option<InteractionId>,
    at: OffsetDateTime,
    data: serde_json::Value,
) -> Result<(), StoreError> {
    let id = EventId::new();
    let queued = match kind {
        EventKind::ConversationResolved => Some(crate::automation::TriggerEvent::ConversationResolved),
        EventKind::SlaBreached => Some(crate::automation::TriggerEvent::SlaBreached),
        _ => None,
    };
    if let Some(trigger_event) = queued {
        let event = crate::automation::AutomationEvent {
            kind: trigger_event,
            key: format!("{trigger_event}:{id}"),
            contact,
            conversation,
            interaction,
            data: data.clone(),
        };
        super::automation::enqueue_in(tx, &event, now()).await?;
    }
    sql(
        "INSERT INTO events (id, kind, conversation_id, contact_id, agent_id, interaction_id, occurred_at, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id.to_string())
    .bind(kind.as_str())
    .bind(conversation.map(|c| c.to_string()))
    .bind(contact.map(|c| c.to_string()))
    .bind(agent.map(|a| a.to_string()))
    .bind(interaction.map(|i| i.to_string()))
    .bind(to_micros(at))
    .bind(data.to_string())
    .execute(tx)
    .await?;
    Ok(())
}

pub(crate) async fn audit(
    tx: &mut Tx<'_>,
    actor: &str,
    action: &str,
    subject: &str,
    data: serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_log (id, actor, action, subject, data, at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(EventId::new().to_string())
        .bind(actor.to_owned())
        .bind(action.to_owned())
        .bind(subject.to_owned())
        .bind(data.to_string())
        .bind(to_micros(now()))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// The kinds of a conversation's events, oldest first.
    pub async fn conversation_event_kinds(&self, id: ConversationId) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar::<Any, String>(
            "SELECT kind FROM events WHERE conversation_id = $1 ORDER BY occurred_at, id",
        )
        .bind(id.to_string())
        .fetch_all(self.reader())
        .await?)
    }

    /// Audit entries about `subject`, oldest first, as (action, actor).
    pub async fn audit_entries(&self, subject: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT action, actor FROM audit_log WHERE subject = $1 ORDER BY at, id")
            .bind(subject.to_owned())
            .fetch_all(self.reader())
            .await?;
        use super::rows::RowExt;
        rows.iter().map(|r| Ok((r.text("action")?, r.text("actor")?))).collect()
    }
}

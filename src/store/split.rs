//! Splitting a customer's email out of the conversation it was threaded into, into a new
//! conversation of its own: the agent's fix for a mail that continued the wrong thread.

use time::OffsetDateTime;

use super::conversations::{NewConversation, conversation_in, insert_conversation};
use super::events::{EventKind, record_event};
use super::interactions::{by_id, next_seq};
use super::{Store, StoreError, Tx};
use crate::domain::*;

/// What a split did.
#[derive(Debug, Clone)]
pub struct Split {
    /// The conversation the mail was in.
    pub from: Conversation,
    /// The new conversation now holding it.
    pub to: Conversation,
    pub interaction: Interaction,
}

impl Store {
    /// Moves one inbound email into a new open conversation on the same contact and inbox,
    /// unassigned, titled with the mail's subject and timed from the mail (its first response
    /// is measured from when the customer wrote). Later replies to the mail follow it, since
    /// threading finds a conversation by the Message-IDs its mails carry. The mail's threading
    /// reason says it was split, by whom and from where; both conversations' waiting clocks and
    /// figures are recomputed; its new change sequence number makes the search index catch up.
    pub async fn split_interaction(
        &self,
        id: InteractionId,
        by: AgentId,
        at: OffsetDateTime,
    ) -> Result<Split, StoreError> {
        let mut tx = self.begin().await?;
        let interaction = by_id(&mut *tx, id).await?.ok_or(StoreError::NotFound("interaction"))?;
        if interaction.channel != ChannelKind::Email || interaction.direction != Direction::Inbound {
            return Err(StoreError::Invalid {
                field: "interaction".into(),
                reason: "only a customer's email can be split into a new conversation".into(),
            });
        }
        let from = interaction.conversation_id;
        let others: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM interactions WHERE conversation_id = $1 AND id <> $2")
                .bind(from.to_string())
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await?;
        if others == 0 {
            return Err(StoreError::Conflict(
                "the mail is its conversation's only message: there is nothing to split it from".into(),
            ));
        }
        let handle = interaction
            .handle_id
            .ok_or_else(|| StoreError::Corrupt(format!("email {id} has no handle")))?;
        let to = ConversationId::new();
        insert_conversation(
            &mut tx,
            &NewConversation {
                id: to,
                contact: interaction.contact_id,
                account: interaction.channel_account_id,
                channel: ChannelKind::Email,
                handle,
                status: "open",
                priority: Priority::Normal,
                priority_reason: None,
                sla_policy_id: None,
                subject: interaction.subject.as_deref(),
                thread_key: None,
                opened_at: interaction.occurred_at,
                resolved_at: None,
            },
        )
        .await?;
        let mut details = interaction.details.clone();
        if let Some(object) = details.as_object_mut() {
            object.insert(
                "threading".into(),
                serde_json::json!({"reason": "split", "from": from, "by": by}),
            );
        }
        let seq = next_seq(&mut tx, 1).await?;
        sqlx::query(
            "UPDATE interactions SET conversation_id = $1, conversation_seq = 1, seq = $2, details = $3 WHERE id = $4",
        )
        .bind(to.to_string())
        .bind(seq)
        .bind(details.to_string())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE conversations SET message_seq = 1 WHERE id = $1")
            .bind(to.to_string())
            .execute(&mut *tx)
            .await?;
        record_event(
            &mut tx,
            EventKind::ConversationOpened,
            Some(to),
            Some(interaction.contact_id),
            Some(by),
            Some(id),
            interaction.occurred_at,
            serde_json::json!({"split_from": from}),
        )
        .await?;
        record_event(
            &mut tx,
            EventKind::MessageSplit,
            Some(from),
            Some(interaction.contact_id),
            Some(by),
            Some(id),
            at,
            serde_json::json!({"to": to}),
        )
        .await?;
        for conversation in [from, to] {
            recompute_waiting_in(&mut tx, conversation).await?;
        }
        let split = Split {
            from: conversation_in(&mut tx, from).await?,
            to: conversation_in(&mut tx, to).await?,
            interaction: by_id(&mut *tx, id).await?.ok_or(StoreError::NotFound("interaction"))?,
        };
        tx.commit().await?;
        Ok(split)
    }
}

/// Recomputes what a conversation's messages decide after one left or arrived out of order:
/// since when the customer waits (their first message after the last agent reply; nothing once
/// resolved) and the last activity; and marks its figures for the metrics worker.
async fn recompute_waiting_in(tx: &mut Tx<'_>, id: ConversationId) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE conversations SET metrics_version = metrics_version + 1,
             last_activity_at = COALESCE((SELECT MAX(occurred_at) FROM interactions WHERE conversation_id = $1),
                                         last_activity_at),
             waiting_since = CASE WHEN status = 'resolved' THEN NULL ELSE (
                 SELECT MIN(i.occurred_at) FROM interactions i
                 WHERE i.conversation_id = $1 AND i.direction = 'inbound'
                   AND i.occurred_at > COALESCE((SELECT MAX(o.occurred_at) FROM interactions o
                                                 WHERE o.conversation_id = $1 AND o.direction = 'outbound'
                                                   AND o.author_agent_id IS NOT NULL), -1)) END
         WHERE id = $1",
    )
    .bind(id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

//! Web chat's offline fallback in the store: replies a visitor has not read, and which of them
//! went on by email.

use time::OffsetDateTime;

use super::rows::RowExt;
use super::{Store, StoreError, Tx};
use crate::domain::*;

/// An agent's chat reply the visitor has not read.
#[derive(Debug, Clone)]
pub struct UnreadReply {
    pub interaction_id: InteractionId,
    pub conversation_id: ConversationId,
    pub contact_id: ContactId,
    pub text: String,
}

/// How far back unread replies are looked for: older ones are left alone.
const HORIZON: time::Duration = time::Duration::days(7);

impl Store {
    /// Replies on chat `account` sent before `older_than` (and within a week of it) past their
    /// conversation's read receipt and not yet sent on, by conversation and in order.
    pub async fn unread_chat_replies(
        &self,
        account: ChannelAccountId,
        older_than: OffsetDateTime,
    ) -> Result<Vec<UnreadReply>, StoreError> {
        sqlx::query(
            "SELECT i.id, i.conversation_id, i.contact_id, i.body_text FROM interactions i
             JOIN conversations c ON c.id = i.conversation_id
             WHERE i.channel_account_id = $1 AND i.direction = 'outbound'
               AND i.occurred_at < $2 AND i.occurred_at >= $3
               AND i.conversation_seq > c.customer_read_seq
               AND NOT EXISTS (SELECT 1 FROM chat_fallbacks f WHERE f.interaction_id = i.id)
             ORDER BY i.conversation_id, i.conversation_seq
             LIMIT 500",
        )
        .bind(account.to_string())
        .bind(to_micros(older_than))
        .bind(to_micros(older_than - HORIZON))
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|row| {
            Ok(UnreadReply {
                interaction_id: row.parsed("id")?,
                conversation_id: row.parsed("conversation_id")?,
                contact_id: row.parsed("contact_id")?,
                text: row.opt_text("body_text")?.unwrap_or_default(),
            })
        })
        .collect()
    }
}

/// The contact's first email handle.
pub(crate) async fn email_handle_in(tx: &mut Tx<'_>, contact: ContactId) -> Result<Option<HandleId>, StoreError> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM handles WHERE contact_id = $1 AND kind = 'email' ORDER BY id LIMIT 1")
            .bind(contact.to_string())
            .fetch_optional(&mut **tx)
            .await?;
    id.map(|id| super::parse_stored("handle id", &id)).transpose()
}

/// Records that `replies` were sent on by `email` (or skipped, without one).
pub(crate) async fn record_chat_fallbacks_in(
    tx: &mut Tx<'_>,
    replies: &[InteractionId],
    email: Option<InteractionId>,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    for reply in replies {
        sqlx::query(
            "INSERT INTO chat_fallbacks (interaction_id, email_interaction_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(reply.to_string())
        .bind(email.map(|e| e.to_string()))
        .bind(to_micros(at))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

//! Interactions (touchpoints): idempotent insert, the contact timeline, and the change
//! sequence the search index tails.

use std::collections::HashMap;

use sqlx::{Any, Executor};
use time::OffsetDateTime;

use super::rows::RowExt;
use super::{Db, Store, StoreError, Tx, sql};
use crate::domain::*;

/// An interaction about to be written.
#[derive(Debug)]
pub struct NewInteraction {
    pub id: InteractionId,
    pub channel_account_id: ChannelAccountId,
    pub channel: ChannelKind,
    pub external_id: String,
    pub conversation_id: ConversationId,
    pub contact_id: ContactId,
    pub handle_id: Option<HandleId>,
    pub direction: Direction,
    pub author_agent_id: Option<AgentId>,
    pub occurred_at: OffsetDateTime,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub details: serde_json::Value,
    pub attachments: Vec<AttachmentMeta>,
    pub message_id: Option<String>,
    /// An inbound touchpoint somebody must answer: it starts the conversation's wait.
    pub awaits_reply: bool,
}

/// Which of a contact's interactions the timeline shows.
#[derive(Debug, Default)]
pub struct TimelineFilter {
    pub channel: Option<ChannelKind>,
    pub direction: Option<Direction>,
    /// Only these inboxes; `None` for all.
    pub accounts: Option<Vec<ChannelAccountId>>,
}

/// Keyset position in a timeline: the last item of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineCursor {
    pub occurred_at: i64,
    pub id: InteractionId,
}

impl TimelineCursor {
    pub fn encode(&self) -> String {
        format!("{}_{}", self.occurred_at, self.id)
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let (at, id) = raw.split_once('_')?;
        Some(Self {
            occurred_at: at.parse().ok()?,
            id: id.parse().ok()?,
        })
    }
}

/// Takes `n` consecutive values of the change sequence and returns the first.
///
/// The row lock this takes is held until commit, so callers take it as late in their
/// transaction as they can.
pub(crate) async fn next_seq(tx: &mut impl Db, n: i64) -> Result<i64, StoreError> {
    let last = sql("UPDATE sequences SET value = value + $1 WHERE name = 'interaction' RETURNING value")
        .bind(n)
        .fetch_one(tx)
        .await?
        .int("value")?;
    Ok(last - n + 1)
}

/// Inserts `new` with sequence number `seq`, giving it the next position in its conversation
/// and moving the conversation's activity clock forward (never back, for late arrivals);
/// `None` if its external id is already stored.
pub(crate) async fn insert(
    tx: &mut impl Db,
    new: &NewInteraction,
    seq: i64,
) -> Result<Option<Interaction>, StoreError> {
    // An agent's reply ends the customer's wait; an inbound message needing one starts it,
    // unless an earlier unanswered one already did.
    let answered = new.direction == Direction::Outbound && new.author_agent_id.is_some();
    let conversation_seq = sql(
        "UPDATE conversations SET message_seq = message_seq + 1, metrics_version = metrics_version + 1,
             last_activity_at = CASE WHEN last_activity_at < $2 THEN $2 ELSE last_activity_at END,
             waiting_since = CASE WHEN $3 = 1 THEN NULL
                                  WHEN $4 = 1 AND waiting_since IS NULL THEN $2
                                  ELSE waiting_since END
         WHERE id = $1 RETURNING message_seq",
    )
    .bind(new.conversation_id.to_string())
    .bind(to_micros(new.occurred_at))
    .bind(i64::from(answered))
    .bind(i64::from(new.awaits_reply && new.direction == Direction::Inbound))
    .fetch_one(tx)
    .await?
    .int("message_seq")?;
    // Without `RETURNING`: SQLite keeps returned rows in a temporary table opened per statement,
    // and everything returned is already at hand.
    let inserted = sql(
        "INSERT INTO interactions (id, seq, channel_account_id, channel, external_id, conversation_id, contact_id,
            handle_id, direction, author_agent_id, occurred_at, subject, body_text, body_html, details, attachments,
            message_id, created_at, conversation_seq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
         ON CONFLICT (channel_account_id, external_id) DO NOTHING",
    )
    .bind(new.id.to_string())
    .bind(seq)
    .bind(new.channel_account_id.to_string())
    .bind(new.channel.as_str())
    .bind(new.external_id.clone())
    .bind(new.conversation_id.to_string())
    .bind(new.contact_id.to_string())
    .bind(new.handle_id.map(|h| h.to_string()))
    .bind(new.direction.as_str())
    .bind(new.author_agent_id.map(|a| a.to_string()))
    .bind(to_micros(new.occurred_at))
    .bind(new.subject.clone())
    .bind(new.text.clone())
    .bind(new.html.clone())
    .bind(new.details.to_string())
    .bind(serde_json::to_string(&new.attachments).unwrap_or_else(|_| "[]".into()))
    .bind(new.message_id.clone())
    .bind(to_micros(now()))
    .bind(conversation_seq)
    .execute(tx)
    .await?;
    Ok((inserted > 0).then(|| Interaction {
        id: new.id,
        seq,
        channel_account_id: new.channel_account_id,
        channel: new.channel,
        external_id: new.external_id.clone(),
        conversation_id: new.conversation_id,
        contact_id: new.contact_id,
        handle_id: new.handle_id,
        direction: new.direction,
        author_agent_id: new.author_agent_id,
        // As stored: to the microsecond.
        occurred_at: from_micros(to_micros(new.occurred_at)),
        subject: new.subject.clone(),
        text: new.text.clone(),
        html: new.html.clone(),
        details: new.details.clone(),
        attachments: new.attachments.clone(),
        message_id: new.message_id.clone(),
        conversation_seq: Some(conversation_seq),
    }))
}

/// Queues what segments and triggers must see of a customer's touchpoint: that it arrived,
/// and that it is a missed call (again after a revision; the key makes it once).
pub(crate) async fn queue_for_automation(
    tx: &mut impl Db,
    interaction: &Interaction,
    revised: bool,
) -> Result<(), StoreError> {
    use crate::automation::{AutomationEvent, TriggerEvent};
    if interaction.direction != Direction::Inbound {
        return Ok(());
    }
    let event = |kind: TriggerEvent| AutomationEvent {
        kind,
        key: format!("{kind}:{}", interaction.id),
        contact: Some(interaction.contact_id),
        conversation: Some(interaction.conversation_id),
        interaction: Some(interaction.id),
        data: serde_json::json!({}),
    };
    let at = now();
    if !revised {
        super::automation::enqueue_in(tx, &event(TriggerEvent::InteractionReceived), at).await?;
    }
    if interaction.channel == ChannelKind::Voice && super::automation::is_missed_call(&interaction.details) {
        super::automation::enqueue_in(tx, &event(TriggerEvent::CallMissed), at).await?;
    }
    Ok(())
}

/// Values looked up per query: well under SQLite's and PostgreSQL's parameter limits.
const VALUES_PER_QUERY: usize = 500;

pub(crate) async fn by_external_id<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    account: ChannelAccountId,
    external_id: &str,
) -> Result<Option<Interaction>, StoreError> {
    sqlx::query("SELECT * FROM interactions WHERE channel_account_id = $1 AND external_id = $2")
        .bind(account.to_string())
        .bind(external_id.to_owned())
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(interaction_from_row)
        .transpose()
}

pub(crate) async fn by_id<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: InteractionId,
) -> Result<Option<Interaction>, StoreError> {
    sqlx::query("SELECT * FROM interactions WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(interaction_from_row)
        .transpose()
}

impl Store {
    pub async fn interaction(&self, id: InteractionId) -> Result<Interaction, StoreError> {
        by_id(self.reader(), id)
            .await?
            .ok_or(StoreError::NotFound("interaction"))
    }

    /// The interactions with any of `ids`, by id: one query for a page of search hits.
    pub async fn interactions(&self, ids: &[InteractionId]) -> Result<HashMap<InteractionId, Interaction>, StoreError> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let found = self.interactions_where(None, "id", &ids).await?;
        Ok(found.into_iter().map(|i| (i.id, i)).collect())
    }

    pub async fn interaction_by_external_id(
        &self,
        account: ChannelAccountId,
        external_id: &str,
    ) -> Result<Option<Interaction>, StoreError> {
        by_external_id(self.reader(), account, external_id).await
    }

    /// The interactions of `account` stored under any of `external_ids`, by external id: one
    /// query for a whole batch of incoming touchpoints.
    pub async fn interactions_by_external_ids(
        &self,
        account: ChannelAccountId,
        external_ids: &[&str],
    ) -> Result<HashMap<String, Interaction>, StoreError> {
        // The inbox is part of the query: (inbox, external id) is the unique index.
        let found = self
            .interactions_where(Some(account), "external_id", external_ids)
            .await?;
        Ok(found.into_iter().map(|i| (i.external_id.clone(), i)).collect())
    }

    /// The mail of inbox `account` carrying any of `message_ids`, whichever way it went (see
    /// [`mail_by_message_id_in`]), by Message-ID: one query for a batch.
    pub async fn mails_by_message_ids(
        &self,
        account: ChannelAccountId,
        message_ids: &[&str],
    ) -> Result<HashMap<String, Interaction>, StoreError> {
        // Looked up by Message-ID alone, then kept to the inbox: with the inbox in the query,
        // SQLite's planner prefers the (inbox, external id) index and scans the whole inbox.
        let found = self.interactions_where(None, "message_id", message_ids).await?;
        Ok(found
            .into_iter()
            .filter(|i| i.channel_account_id == account)
            .filter_map(|i| Some((i.message_id.clone()?, i)))
            .collect())
    }

    /// The interactions whose `column` holds any of `values`, of inbox `account` if given; the
    /// query must have an index to use.
    async fn interactions_where(
        &self,
        account: Option<ChannelAccountId>,
        column: &'static str,
        values: &[&str],
    ) -> Result<Vec<Interaction>, StoreError> {
        let mut found = Vec::new();
        let first = if account.is_some() { 2 } else { 1 };
        let scope = if account.is_some() {
            "channel_account_id = $1 AND "
        } else {
            ""
        };
        for chunk in values.chunks(VALUES_PER_QUERY) {
            let placeholders = (first..first + chunk.len())
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT * FROM interactions WHERE {scope}{column} IN ({placeholders})"
            )));
            if let Some(account) = account {
                query = query.bind(account.to_string());
            }
            for value in chunk {
                query = query.bind(value.to_string());
            }
            for row in query.fetch_all(self.reader()).await? {
                found.push(interaction_from_row(&row)?);
            }
        }
        Ok(found)
    }

    /// A contact's interactions across every channel, newest first, one keyset page.
    pub async fn timeline(
        &self,
        contact: ContactId,
        filter: &TimelineFilter,
        after: Option<TimelineCursor>,
        limit: i64,
    ) -> Result<Vec<Interaction>, StoreError> {
        let (at, id) = match after {
            Some(c) => (c.occurred_at, c.id.to_string()),
            None => (i64::MAX, String::new()),
        };
        let scope = super::accounts_clause("channel_account_id", 7, filter.accounts.as_deref());
        let query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM interactions
             WHERE contact_id = $1
               AND (occurred_at < $2 OR (occurred_at = $2 AND ($3 = '' OR id < $3)))
               AND ($4 IS NULL OR channel = $4)
               AND ($5 IS NULL OR direction = $5){scope}
             ORDER BY occurred_at DESC, id DESC LIMIT $6"
        )))
        .bind(contact.to_string())
        .bind(at)
        .bind(id)
        .bind(filter.channel.map(|c| c.as_str()))
        .bind(filter.direction.map(|d| d.as_str()))
        .bind(limit);
        super::bind_accounts(query, filter.accounts.as_deref())
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(interaction_from_row)
            .collect()
    }

    /// A conversation's interactions, oldest first.
    pub async fn conversation_interactions(&self, id: ConversationId) -> Result<Vec<Interaction>, StoreError> {
        sqlx::query("SELECT * FROM interactions WHERE conversation_id = $1 ORDER BY occurred_at, id")
            .bind(id.to_string())
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(interaction_from_row)
            .collect()
    }

    /// The highest committed change sequence number.
    pub async fn last_seq(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM sequences WHERE name = 'interaction'")
                .fetch_one(self.reader())
                .await?,
        )
    }

    pub async fn count_interactions(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM interactions")
            .fetch_one(self.reader())
            .await?)
    }
}

pub(crate) fn interaction_from_row(row: &impl RowExt) -> Result<Interaction, StoreError> {
    Ok(Interaction {
        id: row.parsed("id")?,
        seq: row.int("seq")?,
        channel_account_id: row.parsed("channel_account_id")?,
        channel: row.parsed("channel")?,
        external_id: row.text("external_id")?,
        conversation_id: row.parsed("conversation_id")?,
        contact_id: row.parsed("contact_id")?,
        handle_id: row.opt_parsed("handle_id")?,
        direction: row.parsed("direction")?,
        author_agent_id: row.opt_parsed("author_agent_id")?,
        occurred_at: row.time("occurred_at")?,
        subject: row.opt_text("subject")?,
        text: row.opt_text("body_text")?,
        html: row.opt_text("body_html")?,
        details: row.json("details")?,
        attachments: row.json("attachments")?,
        message_id: row.opt_text("message_id")?,
        conversation_seq: row.opt_int("conversation_seq")?,
    })
}

impl Store {
    /// Interactions changed after sequence number `after`, in sequence order, each with the
    /// value of the handle it came through: what the search index needs.
    pub async fn index_batch(&self, after: i64, limit: i64) -> Result<Vec<(Interaction, Option<String>)>, StoreError> {
        sqlx::query(
            "SELECT i.*, h.value AS handle_value FROM interactions i LEFT JOIN handles h ON h.id = i.handle_id
             WHERE i.seq > $1 ORDER BY i.seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|row| Ok((interaction_from_row(row)?, row.opt_text("handle_value")?)))
        .collect()
    }
}

/// The interaction stored under an external id, read inside a transaction.
pub(crate) async fn interaction_by_external_id_in(
    tx: &mut impl Db,
    account: ChannelAccountId,
    external_id: &str,
) -> Result<Option<Interaction>, StoreError> {
    sql("SELECT * FROM interactions WHERE channel_account_id = $1 AND external_id = $2")
        .bind(account.to_string())
        .bind(external_id)
        .fetch_optional(tx)
        .await?
        .map(|row| interaction_from_row(&row))
        .transpose()
}

/// The mail of this inbox that already carries `message_id`, whichever way it went: a copy of
/// our own reply coming back (a loop, a Bcc to the inbox, an mbox export) is that reply, not
/// a new message from a customer.
pub(crate) async fn mail_by_message_id_in(
    tx: &mut impl Db,
    account: ChannelAccountId,
    message_id: &str,
) -> Result<Option<Interaction>, StoreError> {
    sql("SELECT * FROM interactions WHERE message_id = $1 AND channel_account_id = $2 LIMIT 1")
        .bind(message_id.to_owned())
        .bind(account.to_string())
        .fetch_optional(tx)
        .await?
        .map(|row| interaction_from_row(&row))
        .transpose()
}

/// A new account of a touchpoint that was already stored (a call whose late events changed it).
#[derive(Debug)]
pub struct Revision {
    pub occurred_at: OffsetDateTime,
    pub text: Option<String>,
    pub details: serde_json::Value,
    pub author_agent_id: Option<AgentId>,
}

impl Store {
    /// Rewrites an interaction's content, with a new change sequence number so the search
    /// index picks the revision up.
    pub async fn revise_interaction(&self, id: InteractionId, revision: Revision) -> Result<Interaction, StoreError> {
        let mut tx = self.begin().await?;
        let seq = next_seq(&mut tx, 1).await?;
        let done = sqlx::query(
            "UPDATE interactions SET occurred_at = $1, body_text = $2, details = $3, author_agent_id = $4, seq = $5 WHERE id = $6",
        )
        .bind(to_micros(revision.occurred_at))
        .bind(revision.text)
        .bind(revision.details.to_string())
        .bind(revision.author_agent_id.map(|a| a.to_string()))
        .bind(seq)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("interaction"));
        }
        let revised = by_id(&mut *tx, id).await?.ok_or(StoreError::NotFound("interaction"))?;
        queue_for_automation(&mut tx, &revised, true).await?;
        tx.commit().await?;
        Ok(revised)
    }
}

/// The Message-IDs of a conversation's mails, oldest first, with their directions.
pub(crate) async fn message_ids_in(
    tx: &mut Tx<'_>,
    conversation: ConversationId,
) -> Result<Vec<(Direction, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT direction, message_id FROM interactions WHERE conversation_id = $1 AND message_id IS NOT NULL
         ORDER BY occurred_at, seq",
    )
    .bind(conversation.to_string())
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| Ok((r.parsed("direction")?, r.text("message_id")?)))
        .collect()
}

impl Store {
    /// What a customer may see of a conversation after position `after`: no internal notes.
    pub async fn conversation_after(
        &self,
        conversation: ConversationId,
        after: i64,
    ) -> Result<Vec<Interaction>, StoreError> {
        sqlx::query(
            "SELECT * FROM interactions WHERE conversation_id = $1 AND conversation_seq > $2 AND direction <> 'note'
             ORDER BY conversation_seq",
        )
        .bind(conversation.to_string())
        .bind(after)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(interaction_from_row)
        .collect()
    }
}

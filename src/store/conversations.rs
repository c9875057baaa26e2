//! Conversations: picking or opening the thread a touchpoint belongs to, and their lifecycle.

use sqlx::any::AnyRow;
use time::{Duration, OffsetDateTime};

use super::events::{EventKind, record_event};
use super::rows::RowExt;
use super::{Store, StoreError, Tx};
use crate::domain::*;

/// Which conversations to list.
#[derive(Debug, Default)]
pub struct ConversationFilter {
    pub status: Option<ConversationStatus>,
    pub channel_account_id: Option<ChannelAccountId>,
    pub assignee_id: Option<AgentId>,
    /// Only conversations nobody is assigned to.
    pub unassigned: bool,
    pub contact_id: Option<ContactId>,
    pub limit: i64,
}

/// Where a touchpoint was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    Existing(ConversationId),
    Opened(ConversationId),
    Reopened(ConversationId),
}

impl Placement {
    pub fn id(self) -> ConversationId {
        match self {
            Self::Existing(id) | Self::Opened(id) | Self::Reopened(id) => id,
        }
    }
}

/// What the ingest path knows when it places a touchpoint.
pub(crate) struct PlacementRequest<'a> {
    pub contact: ContactId,
    pub handle: HandleId,
    pub account: &'a ChannelAccount,
    pub thread_key: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub direction: Direction,
    pub occurred_at: OffsetDateTime,
    pub reopen_window: Duration,
    /// False for a touchpoint nobody must answer (an answered call): it never reopens a
    /// conversation, and one opened for it starts resolved.
    pub needs_reply: bool,
}

/// Picks the conversation a touchpoint continues, or opens one.
///
/// An explicit thread key wins. Otherwise the contact's latest conversation on the same account
/// continues if it is not resolved; a resolved one is reopened by an inbound touchpoint within
/// the reopen window (Zendesk's and Chatwoot's behaviour), and anything else opens a new one.
pub(crate) async fn place(tx: &mut Tx<'_>, req: PlacementRequest<'_>) -> Result<Placement, StoreError> {
    let latest = match req.thread_key {
        Some(key) => {
            sqlx::query(
                "SELECT id, status, resolved_at FROM conversations
                 WHERE channel_account_id = $1 AND thread_key = $2 AND contact_id = $3
                 ORDER BY last_activity_at DESC LIMIT 1",
            )
            .bind(req.account.id.to_string())
            .bind(key.to_owned())
            .bind(req.contact.to_string())
            .fetch_optional(&mut **tx)
            .await?
        }
        None => {
            sqlx::query(
                "SELECT id, status, resolved_at FROM conversations
                 WHERE contact_id = $1 AND channel_account_id = $2
                 ORDER BY last_activity_at DESC LIMIT 1",
            )
            .bind(req.contact.to_string())
            .bind(req.account.id.to_string())
            .fetch_optional(&mut **tx)
            .await?
        }
    };
    if let Some(row) = latest {
        let id: ConversationId = row.parsed("id")?;
        let status: ConversationStatus = row.parsed("status")?;
        let resolved_at = row.opt_time("resolved_at")?;
        if status != ConversationStatus::Resolved {
            return Ok(Placement::Existing(id));
        }
        let recent = resolved_at.is_some_and(|at| req.occurred_at - at <= req.reopen_window);
        if recent || req.thread_key.is_some() {
            if req.direction == Direction::Inbound && req.needs_reply {
                set_status_in(tx, id, ConversationStatus::Resolved, ConversationStatus::Open, None).await?;
                return Ok(Placement::Reopened(id));
            }
            return Ok(Placement::Existing(id));
        }
    }
    let id = ConversationId::new();
    let at = to_micros(req.occurred_at);
    let (status, resolved_at) = if req.needs_reply {
        ("open", None)
    } else {
        ("resolved", Some(at))
    };
    sqlx::query(
        "INSERT INTO conversations (id, contact_id, channel_account_id, channel, handle_id, status, priority,
                                    subject, thread_key, opened_at, last_activity_at, resolved_at)
         VALUES ($1, $2, $3, $4, $5, $9, 'normal', $6, $7, $8, $8, $10)",
    )
    .bind(id.to_string())
    .bind(req.contact.to_string())
    .bind(req.account.id.to_string())
    .bind(req.account.kind.as_str())
    .bind(req.handle.to_string())
    .bind(req.subject.map(str::to_owned))
    .bind(req.thread_key.map(str::to_owned))
    .bind(at)
    .bind(status)
    .bind(resolved_at)
    .execute(&mut **tx)
    .await?;
    record_event(
        tx,
        EventKind::ConversationOpened,
        Some(id),
        Some(req.contact),
        None,
        None,
        req.occurred_at,
        serde_json::json!({}),
    )
    .await?;
    if !req.needs_reply {
        let data = serde_json::json!({"reason": "needs no reply"});
        record_event(
            tx,
            EventKind::ConversationResolved,
            Some(id),
            Some(req.contact),
            None,
            None,
            req.occurred_at,
            data,
        )
        .await?;
    }
    Ok(Placement::Opened(id))
}

/// Moves the conversation's activity clock forward (never back, for late-arriving touchpoints).
pub(crate) async fn touch(tx: &mut Tx<'_>, id: ConversationId, at: OffsetDateTime) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE conversations SET last_activity_at = CASE WHEN last_activity_at < $1 THEN $1 ELSE last_activity_at END
         WHERE id = $2",
    )
    .bind(to_micros(at))
    .bind(id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn set_status_in(
    tx: &mut Tx<'_>,
    id: ConversationId,
    from: ConversationStatus,
    to: ConversationStatus,
    agent: Option<AgentId>,
) -> Result<(), StoreError> {
    let at = now();
    let resolved_at = (to == ConversationStatus::Resolved).then(|| to_micros(at));
    sqlx::query("UPDATE conversations SET status = $1, resolved_at = $2 WHERE id = $3")
        .bind(to.as_str())
        .bind(resolved_at)
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    let kind = match (from, to) {
        (ConversationStatus::Resolved, ConversationStatus::Open) => EventKind::ConversationReopened,
        (_, ConversationStatus::Resolved) => EventKind::ConversationResolved,
        _ => EventKind::StatusChanged,
    };
    record_event(
        tx,
        kind,
        Some(id),
        None,
        agent,
        None,
        at,
        serde_json::json!({"from": from, "to": to}),
    )
    .await
}

impl Store {
    pub async fn conversation(&self, id: ConversationId) -> Result<Conversation, StoreError> {
        let row = sqlx::query("SELECT * FROM conversations WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound("conversation"))?;
        conversation_from_row(&row)
    }

    pub async fn conversations(&self, f: &ConversationFilter) -> Result<Vec<Conversation>, StoreError> {
        sqlx::query(
            "SELECT * FROM conversations
             WHERE ($1 IS NULL OR status = $1)
               AND ($2 IS NULL OR channel_account_id = $2)
               AND ($3 IS NULL OR assignee_id = $3)
               AND ($4 = 0 OR assignee_id IS NULL)
               AND ($5 IS NULL OR contact_id = $5)
             ORDER BY last_activity_at DESC, id DESC LIMIT $6",
        )
        .bind(f.status.map(|s| s.as_str()))
        .bind(f.channel_account_id.map(|a| a.to_string()))
        .bind(f.assignee_id.map(|a| a.to_string()))
        .bind(i64::from(f.unassigned))
        .bind(f.contact_id.map(|c| c.to_string()))
        .bind(f.limit)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(conversation_from_row)
        .collect()
    }

    /// Changes a conversation's status, recording the change (and a reopen or resolution) as an event.
    pub async fn set_conversation_status(
        &self,
        id: ConversationId,
        to: ConversationStatus,
        agent: Option<AgentId>,
    ) -> Result<Conversation, StoreError> {
        let mut tx = self.begin().await?;
        let from: ConversationStatus = current_status(&mut tx, id).await?;
        if from != to {
            set_status_in(&mut tx, id, from, to, agent).await?;
        }
        tx.commit().await?;
        self.conversation(id).await
    }

    /// Assigns a conversation to an agent, or unassigns it with `None`.
    pub async fn assign_conversation(
        &self,
        id: ConversationId,
        assignee: Option<AgentId>,
        by: Option<AgentId>,
    ) -> Result<Conversation, StoreError> {
        let mut tx = self.begin().await?;
        current_status(&mut tx, id).await?;
        if let Some(agent) = assignee {
            super::agents::agent_in(&mut tx, agent).await?;
        }
        sqlx::query("UPDATE conversations SET assignee_id = $1 WHERE id = $2")
            .bind(assignee.map(|a| a.to_string()))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        record_event(
            &mut tx,
            EventKind::Assigned,
            Some(id),
            None,
            by,
            None,
            now(),
            serde_json::json!({"assignee": assignee}),
        )
        .await?;
        tx.commit().await?;
        self.conversation(id).await
    }
}

pub(crate) async fn conversation_in(tx: &mut Tx<'_>, id: ConversationId) -> Result<Conversation, StoreError> {
    let row = sqlx::query("SELECT * FROM conversations WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound("conversation"))?;
    conversation_from_row(&row)
}

async fn current_status(tx: &mut Tx<'_>, id: ConversationId) -> Result<ConversationStatus, StoreError> {
    let raw: String = sqlx::query_scalar("SELECT status FROM conversations WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound("conversation"))?;
    super::parse_stored("status", &raw)
}

pub(crate) fn conversation_from_row(row: &AnyRow) -> Result<Conversation, StoreError> {
    Ok(Conversation {
        id: row.parsed("id")?,
        contact_id: row.parsed("contact_id")?,
        channel_account_id: row.parsed("channel_account_id")?,
        channel: row.parsed("channel")?,
        handle_id: row.parsed("handle_id")?,
        status: row.parsed("status")?,
        priority: row.parsed("priority")?,
        assignee_id: row.opt_parsed("assignee_id")?,
        subject: row.opt_text("subject")?,
        thread_key: row.opt_text("thread_key")?,
        opened_at: row.time("opened_at")?,
        last_activity_at: row.time("last_activity_at")?,
        resolved_at: row.opt_time("resolved_at")?,
    })
}

//! Conversations: picking or opening the thread a touchpoint belongs to, and their lifecycle.

use sqlx::any::AnyRow;
use time::{Duration, OffsetDateTime};

use super::events::{EventKind, record_event};
use super::rows::RowExt;
use super::{Db, Store, StoreError, Tx, sql};
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
    /// Only these inboxes; `None` for all.
    pub accounts: Option<Vec<ChannelAccountId>>,
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
    pub threading: Threading<'a>,
    pub subject: Option<&'a str>,
    pub direction: Direction,
    pub occurred_at: OffsetDateTime,
    pub reopen_window: Duration,
    /// False for a touchpoint nobody must answer (an answered call): it never reopens a
    /// conversation, and one opened for it starts resolved.
    pub needs_reply: bool,
    /// Whether segments (or triggers) exist; without them a new conversation's priority needs
    /// no lookup.
    pub automation: bool,
}

/// How a touchpoint finds the conversation it continues.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Threading<'a> {
    /// The contact's latest conversation on the same account (chat, SMS, calls).
    Latest,
    /// An explicit key chosen by the sending system: same key, same conversation.
    Key(&'a str),
    /// Email (JWZ, scoped to the sender's contact): the conversation holding the nearest of the
    /// Message-IDs the mail answers; only a mail without any reply headers may continue the
    /// latest conversation with the same subject.
    Email {
        references: &'a [String],
        subject: Option<&'a str>,
    },
}

/// Picks the conversation a touchpoint continues, or opens one, and says why.
///
/// A conversation found by an explicit link (thread key, email reference) continues even when
/// resolved, reopening it for an inbound message that needs a reply. Otherwise an unresolved
/// conversation continues; a resolved one is reopened by an inbound message within the reopen
/// window (Zendesk's and Chatwoot's behaviour); anything else opens a new conversation.
pub(crate) async fn place(
    tx: &mut impl Db,
    req: PlacementRequest<'_>,
) -> Result<(Placement, &'static str), StoreError> {
    let columns = "c.id, c.status, c.resolved_at";
    let (latest, reason, linked) = match req.threading {
        Threading::Key(key) => {
            let row = sql(format!(
                "SELECT {columns} FROM conversations c WHERE c.channel_account_id = $1 AND c.thread_key = $2 AND c.contact_id = $3
                 ORDER BY c.last_activity_at DESC LIMIT 1"
            ))
            .bind(req.account.id.to_string())
            .bind(key.to_owned())
            .bind(req.contact.to_string())
            .fetch_optional(tx)
            .await?;
            (row, "thread key", true)
        }
        Threading::Email { references, .. } if !references.is_empty() => {
            let mut found = None;
            for reference in references.iter().rev() {
                found = sql(format!(
                    "SELECT {columns} FROM conversations c JOIN interactions i ON i.conversation_id = c.id
                     WHERE i.message_id = $1 AND i.contact_id = $2 AND i.channel_account_id = $3 LIMIT 1"
                ))
                .bind(reference.clone())
                .bind(req.contact.to_string())
                .bind(req.account.id.to_string())
                .fetch_optional(tx)
                .await?;
                if found.is_some() {
                    break;
                }
            }
            (found, "references", true)
        }
        Threading::Email { subject, .. } => {
            let wanted = subject.map(normalize_subject).unwrap_or_default();
            let mut found = None;
            if !wanted.is_empty() {
                let rows = sql(format!(
                    "SELECT {columns}, c.subject FROM conversations c WHERE c.contact_id = $1 AND c.channel_account_id = $2
                     ORDER BY c.last_activity_at DESC LIMIT 20"
                ))
                .bind(req.contact.to_string())
                .bind(req.account.id.to_string())
                .fetch_all(tx)
                .await?;
                for row in rows {
                    let subject = row.opt_text("subject")?;
                    if subject.as_deref().map(normalize_subject).as_deref() == Some(wanted.as_str()) {
                        found = Some(row);
                        break;
                    }
                }
            }
            (found, "subject", false)
        }
        Threading::Latest => {
            let row = sql(format!(
                "SELECT {columns} FROM conversations c WHERE c.contact_id = $1 AND c.channel_account_id = $2
                 ORDER BY c.last_activity_at DESC LIMIT 1"
            ))
            .bind(req.contact.to_string())
            .bind(req.account.id.to_string())
            .fetch_optional(tx)
            .await?;
            (row, "latest conversation", false)
        }
    };
    if let Some(row) = latest {
        let id: ConversationId = row.parsed("id")?;
        let status: ConversationStatus = row.parsed("status")?;
        let resolved_at = row.opt_time("resolved_at")?;
        if status != ConversationStatus::Resolved {
            return Ok((Placement::Existing(id), reason));
        }
        let recent = resolved_at.is_some_and(|at| req.occurred_at - at <= req.reopen_window);
        if recent || linked {
            if req.direction == Direction::Inbound && req.needs_reply {
                set_status_in(
                    tx,
                    id,
                    ConversationStatus::Resolved,
                    ConversationStatus::Open,
                    None,
                    req.occurred_at,
                )
                .await?;
                return Ok((Placement::Reopened(id), reason));
            }
            return Ok((Placement::Existing(id), reason));
        }
    }
    let id = ConversationId::new();
    let at = to_micros(req.occurred_at);
    let (status, resolved_at) = if req.needs_reply {
        ("open", None)
    } else {
        ("resolved", Some(at))
    };
    // A contact's segments may set the priority and SLA policy of its new conversations.
    let from_segments = match req.automation {
        true => super::automation::segment_priority_in(tx, req.contact).await?,
        false => None,
    };
    let (priority, priority_reason, sla_policy_id) = match from_segments {
        Some((priority, reason, policy)) => (priority, Some(reason), policy),
        None => (Priority::Normal, None, None),
    };
    insert_conversation(
        tx,
        &NewConversation {
            id,
            contact: req.contact,
            account: req.account.id,
            channel: req.account.kind,
            handle: req.handle,
            status,
            priority,
            priority_reason,
            sla_policy_id,
            subject: req.subject,
            thread_key: match req.threading {
                Threading::Key(key) => Some(key),
                _ => None,
            },
            opened_at: req.occurred_at,
            resolved_at,
        },
    )
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
    Ok((Placement::Opened(id), "new conversation"))
}

/// A conversation about to be stored.
pub(crate) struct NewConversation<'a> {
    pub id: ConversationId,
    pub contact: ContactId,
    pub account: ChannelAccountId,
    pub channel: ChannelKind,
    pub handle: HandleId,
    pub status: &'static str,
    pub priority: Priority,
    pub priority_reason: Option<String>,
    pub sla_policy_id: Option<String>,
    pub subject: Option<&'a str>,
    pub thread_key: Option<&'a str>,
    pub opened_at: OffsetDateTime,
    /// In microseconds, as stored.
    pub resolved_at: Option<i64>,
}

pub(crate) async fn insert_conversation(tx: &mut impl Db, new: &NewConversation<'_>) -> Result<(), StoreError> {
    let at = to_micros(new.opened_at);
    sql(
        "INSERT INTO conversations (id, contact_id, channel_account_id, channel, handle_id, status, priority,
                                    subject, thread_key, opened_at, last_activity_at, resolved_at,
                                    priority_reason, sla_policy_id)
         VALUES ($1, $2, $3, $4, $5, $9, $11, $6, $7, $8, $8, $10, $12, $13)",
    )
    .bind(new.id.to_string())
    .bind(new.contact.to_string())
    .bind(new.account.to_string())
    .bind(new.channel.as_str())
    .bind(new.handle.to_string())
    .bind(new.subject.map(str::to_owned))
    .bind(new.thread_key.map(str::to_owned))
    .bind(at)
    .bind(new.status)
    .bind(new.resolved_at)
    .bind(new.priority.as_str())
    .bind(new.priority_reason.clone())
    .bind(new.sla_policy_id.clone())
    .execute(tx)
    .await?;
    Ok(())
}

/// A subject without reply and forward prefixes (`Re:`, `RE[2]:`, `Fwd:`, `AW:`, `RV:`, …), in
/// lower case, for comparing threads.
pub(crate) fn normalize_subject(subject: &str) -> String {
    let mut rest = subject.trim();
    while let Some(tail) = strip_reply_prefix(rest) {
        rest = tail.trim_start();
    }
    rest.to_lowercase()
}

/// `rest` after one leading `Re:`-like prefix, matched on the original text so byte offsets
/// stay valid whatever case mapping would do to other characters.
fn strip_reply_prefix(rest: &str) -> Option<&str> {
    const PREFIXES: [&str; 10] = ["res", "re", "fwd", "fw", "aw", "rv", "sv", "tr", "wg", "enc"];
    PREFIXES.iter().find_map(|prefix| {
        let head = rest.get(..prefix.len())?;
        if !head.eq_ignore_ascii_case(prefix) {
            return None;
        }
        let mut after = &rest[prefix.len()..];
        if let Some(counted) = after.strip_prefix('[') {
            after = &counted[counted.find(']')? + 1..];
        }
        after.trim_start().strip_prefix(':')
    })
}

async fn set_status_in(
    tx: &mut impl Db,
    id: ConversationId,
    from: ConversationStatus,
    to: ConversationStatus,
    agent: Option<AgentId>,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let resolved_at = (to == ConversationStatus::Resolved).then(|| to_micros(at));
    // Resolving ends the wait; a later inbound message starts a new one.
    sql(
        "UPDATE conversations SET status = $1, resolved_at = $2, metrics_version = metrics_version + 1,
             waiting_since = CASE WHEN $2 IS NULL THEN waiting_since END WHERE id = $3",
    )
    .bind(to.as_str())
    .bind(resolved_at)
    .bind(id.to_string())
    .execute(tx)
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
        let (sql, c) = conversations_statement(f);
        let query = c.bind(sqlx::query(sqlx::AssertSqlSafe(sql)));
        super::bind_accounts(query, f.accounts.as_deref())
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
        at: OffsetDateTime,
    ) -> Result<Conversation, StoreError> {
        let mut tx = self.begin().await?;
        let from: ConversationStatus = current_status(&mut tx, id).await?;
        if from != to {
            set_status_in(&mut tx, id, from, to, agent, at).await?;
        }
        tx.commit().await?;
        self.conversation(id).await
    }

    /// Changes a conversation's priority (which picks its SLA policy), recording who did it
    /// and why.
    pub async fn set_priority(
        &self,
        id: ConversationId,
        priority: Priority,
        reason: &str,
        by: Option<AgentId>,
        at: OffsetDateTime,
    ) -> Result<Conversation, StoreError> {
        let mut tx = self.begin().await?;
        set_priority_in(&mut tx, id, priority, reason, by, at).await?;
        tx.commit().await?;
        self.conversation(id).await
    }

    /// Assigns a conversation to an agent, or unassigns it with `None`.
    pub async fn assign_conversation(
        &self,
        id: ConversationId,
        assignee: Option<AgentId>,
        by: Option<AgentId>,
        at: OffsetDateTime,
    ) -> Result<Conversation, StoreError> {
        let mut tx = self.begin().await?;
        assign_in(&mut tx, id, assignee, by, at, serde_json::json!({})).await?;
        tx.commit().await?;
        self.conversation(id).await
    }
}

pub(crate) async fn set_priority_in(
    tx: &mut Tx<'_>,
    id: ConversationId,
    priority: Priority,
    reason: &str,
    by: Option<AgentId>,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    current_status(tx, id).await?;
    sqlx::query(
        "UPDATE conversations SET priority = $1, priority_reason = $2, sla_policy_id = NULL,
                metrics_version = metrics_version + 1 WHERE id = $3",
    )
    .bind(priority.as_str())
    .bind(reason.to_owned())
    .bind(id.to_string())
    .execute(&mut **tx)
    .await?;
    record_event(
        tx,
        EventKind::PriorityChanged,
        Some(id),
        None,
        by,
        None,
        at,
        serde_json::json!({"priority": priority, "reason": reason}),
    )
    .await
}

pub(crate) async fn assign_in(
    tx: &mut Tx<'_>,
    id: ConversationId,
    assignee: Option<AgentId>,
    by: Option<AgentId>,
    at: OffsetDateTime,
    mut data: serde_json::Value,
) -> Result<(), StoreError> {
    current_status(tx, id).await?;
    if let Some(agent) = assignee {
        super::agents::agent_in(tx, agent).await?;
    }
    sqlx::query("UPDATE conversations SET assignee_id = $1, metrics_version = metrics_version + 1 WHERE id = $2")
        .bind(assignee.map(|a| a.to_string()))
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    data["assignee"] = serde_json::json!(assignee);
    record_event(tx, EventKind::Assigned, Some(id), None, by, None, at, data).await
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
        waiting_since: row.opt_time("waiting_since")?,
        sla_due_at: row.opt_time("sla_due_at")?,
        sla_target: row.opt_text("sla_due_kind")?,
        priority_reason: row.opt_text("priority_reason")?,
        customer_read_seq: row.int("customer_read_seq")?,
    })
}

impl Store {
    /// Records that the customer has read `conversation` up to `seq`; true when that is news (a
    /// receipt never moves back, nor past the conversation's last message).
    pub async fn customer_read(&self, conversation: ConversationId, seq: i64) -> Result<bool, StoreError> {
        let moved = sqlx::query(
            "UPDATE conversations SET customer_read_seq = $1
             WHERE id = $2 AND customer_read_seq < $1 AND message_seq >= $1",
        )
        .bind(seq)
        .bind(conversation.to_string())
        .execute(&mut *self.write_conn().await?)
        .await?
        .rows_affected();
        Ok(moved > 0)
    }

    /// The latest conversation carried on a handle in an account (a chat visitor's).
    pub async fn conversation_of_handle(
        &self,
        account: ChannelAccountId,
        handle: HandleId,
    ) -> Result<Option<Conversation>, StoreError> {
        sqlx::query("SELECT * FROM conversations WHERE channel_account_id = $1 AND handle_id = $2 ORDER BY last_activity_at DESC, id DESC LIMIT 1")
            .bind(account.to_string())
            .bind(handle.to_string())
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(conversation_from_row)
            .transpose()
    }
}

/// The listing's statement, without the inbox scope's parameters (bound after the others).
fn conversations_statement(f: &ConversationFilter) -> (String, super::conditions::Conditions) {
    let mut c = super::conditions::Conditions::default();
    c.equal("status", f.status.map(|s| s.as_str()))
        .equal("channel_account_id", f.channel_account_id.map(|a| a.to_string()))
        .equal("assignee_id", f.assignee_id.map(|a| a.to_string()))
        .when(f.unassigned, "assignee_id IS NULL")
        .equal("contact_id", f.contact_id.map(|c| c.to_string()));
    let limit = c.param(f.limit);
    let scope = super::accounts_clause("channel_account_id", c.next_param(), f.accounts.as_deref());
    let sql = format!(
        "SELECT * FROM conversations WHERE {}{scope} ORDER BY last_activity_at DESC, id DESC LIMIT {limit}",
        c.sql()
    );
    (sql, c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rows::RowExt;

    /// What SQLite's planner does with the listing for `f`, one line per step.
    async fn plan(store: &Store, f: &ConversationFilter) -> Vec<String> {
        let (sql, c) = conversations_statement(f);
        let query = c.bind(sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"))));
        super::super::bind_accounts(query, f.accounts.as_deref())
            .fetch_all(store.reader())
            .await
            .unwrap()
            .iter()
            .map(|row| row.text("detail").unwrap())
            .collect()
    }

    #[tokio::test]
    async fn one_contacts_conversations_are_found_through_the_contact_index_not_a_scan() {
        let (_dir, store) = crate::store::temp_sqlite_store().await;
        let contact = ConversationFilter {
            contact_id: Some(ContactId::new()),
            limit: 100,
            ..Default::default()
        };
        let steps = plan(&store, &contact).await;
        assert!(
            steps
                .iter()
                .any(|s| s.contains("USING INDEX conversations_contact_account")),
            "{steps:?}"
        );
        assert!(!steps.iter().any(|s| s.starts_with("SCAN")), "{steps:?}");
        let scoped = ConversationFilter {
            accounts: Some(vec![ChannelAccountId::new()]),
            ..contact
        };
        let steps = plan(&store, &scoped).await;
        assert!(!steps.iter().any(|s| s.starts_with("SCAN")), "{steps:?}");
        let open = ConversationFilter {
            status: Some(ConversationStatus::Open),
            limit: 100,
            ..Default::default()
        };
        let steps = plan(&store, &open).await;
        assert!(
            steps.iter().any(|s| s.contains("USING INDEX conversations_status")),
            "{steps:?}"
        );
    }

    #[test]
    fn reply_and_forward_prefixes_in_several_languages_are_ignored() {
        for subject in [
            "Pedido 123",
            "Re: Pedido 123",
            "RE: re: Pedido 123",
            "Fwd: RE[2]: Pedido 123",
            "AW: Pedido 123",
            "RV: Pedido 123",
            "  re :Pedido 123",
        ] {
            assert_eq!(normalize_subject(subject), "pedido 123", "{subject}");
        }
        assert_eq!(
            normalize_subject("Regalo"),
            "regalo",
            "a word starting with re is not a prefix"
        );
        assert_eq!(
            normalize_subject("Re[ẞ]: x"),
            "x",
            "a counted prefix with odd bytes is cut without panicking"
        );
        assert_eq!(normalize_subject("ẞ Re: x"), "ß re: x");
    }
}

//! The supervisors' live dashboard: the backlog per inbox and channel (open, waiting on us,
//! breached, longest wait), agents with their presence and load, and calls ringing or in
//! progress. Pushed over the agent socket to supervisors whenever something moved.

use serde::Serialize;
use sqlx::Row;
use time::OffsetDateTime;

use crate::domain::*;
use crate::hub::Hub;
use crate::store::StoreError;

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub inboxes: Vec<InboxLoad>,
    pub agents: Vec<AgentLoad>,
    pub calls_ringing: i64,
    pub calls_in_progress: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct InboxLoad {
    pub channel_account_id: ChannelAccountId,
    pub name: String,
    pub channel: ChannelKind,
    /// Conversations not resolved (open, pending, snoozed).
    pub open: i64,
    /// Of those, the ones where the customer waits on us.
    pub waiting: i64,
    /// Of those, the ones past an SLA deadline.
    pub breached: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub longest_waiting_since: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentLoad {
    pub agent_id: AgentId,
    pub name: String,
    pub presence: Presence,
    /// Unresolved conversations assigned to the agent.
    pub open_assigned: i64,
}

/// Calls that rang this long ago without an answer or a hangup are stale, not ringing.
const RINGING_FOR_AT_MOST: time::Duration = time::Duration::minutes(10);
const TALKING_FOR_AT_MOST: time::Duration = time::Duration::hours(6);

pub async fn snapshot(hub: &Hub) -> Result<Snapshot, StoreError> {
    let store = &hub.store;
    let now = hub.clock.now();
    let inboxes = sqlx::query(
        "SELECT a.id, a.name, a.kind,
                COUNT(c.id) AS open,
                COUNT(c.waiting_since) AS waiting,
                SUM(CASE WHEN c.sla_due_at IS NOT NULL AND c.sla_due_at <= $1 THEN 1 ELSE 0 END) AS breached,
                MIN(c.waiting_since) AS longest
         FROM channel_accounts a
         LEFT JOIN conversations c ON c.channel_account_id = a.id AND c.status <> 'resolved'
         GROUP BY a.id, a.name, a.kind
         ORDER BY a.name, a.id",
    )
    .bind(to_micros(now))
    .fetch_all(store.reader())
    .await?
    .iter()
    .map(|r| -> Result<InboxLoad, StoreError> {
        let id: String = r.try_get("id")?;
        let kind: String = r.try_get("kind")?;
        Ok(InboxLoad {
            channel_account_id: crate::store::parse_stored("channel account id", &id)?,
            name: r.try_get("name")?,
            channel: crate::store::parse_stored("channel", &kind)?,
            open: r.try_get("open")?,
            waiting: r.try_get("waiting")?,
            breached: r.try_get::<Option<i64>, _>("breached")?.unwrap_or(0),
            longest_waiting_since: r.try_get::<Option<i64>, _>("longest")?.map(from_micros),
        })
    })
    .collect::<Result<Vec<_>, _>>()?;
    let agents = sqlx::query(
        "SELECT g.id, g.name, g.presence,
                (SELECT COUNT(*) FROM conversations c WHERE c.assignee_id = g.id AND c.status <> 'resolved') AS open_assigned
         FROM agents g ORDER BY g.name, g.id",
    )
    .fetch_all(store.reader())
    .await?
    .iter()
    .map(|r| -> Result<AgentLoad, StoreError> {
        let id: String = r.try_get("id")?;
        let presence: String = r.try_get("presence")?;
        Ok(AgentLoad {
            agent_id: crate::store::parse_stored("agent id", &id)?,
            name: r.try_get("name")?,
            presence: crate::store::parse_stored("presence", &presence)?,
            open_assigned: r.try_get("open_assigned")?,
        })
    })
    .collect::<Result<Vec<_>, _>>()?;
    let calls = sqlx::query(
        "SELECT
            SUM(CASE WHEN answered_at IS NULL AND ringing_at >= $1 THEN 1 ELSE 0 END) AS ringing,
            SUM(CASE WHEN answered_at IS NOT NULL AND answered_at >= $2 THEN 1 ELSE 0 END) AS talking
         FROM call_legs WHERE ended_at IS NULL",
    )
    .bind(to_micros(now - RINGING_FOR_AT_MOST))
    .bind(to_micros(now - TALKING_FOR_AT_MOST))
    .fetch_one(store.reader())
    .await?;
    Ok(Snapshot {
        at: now,
        inboxes,
        agents,
        calls_ringing: calls.try_get::<Option<i64>, _>("ringing")?.unwrap_or(0),
        calls_in_progress: calls.try_get::<Option<i64>, _>("talking")?.unwrap_or(0),
    })
}

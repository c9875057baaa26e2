//! What the metrics engine reads and writes: a conversation's facts, its samples and next SLA
//! deadline, breaches, business calendars and SLA policies, and the rows reports aggregate.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::events::{EventKind, record_event};
use super::rows::RowExt;
use super::{Backend, Store, StoreError, Tx};
use crate::domain::*;
use crate::metrics::definitions::{Change, Computed, Facts, Sample, SampleKind, Targets, Touch};

/// Conversations read per statement by the metrics worker's batched reads.
const CONVERSATIONS_PER_QUERY: usize = 500;
/// Rows written per multi-row statement by `save_metrics` (at most 12 parameters a row, well
/// under SQLite's 32,766 and PostgreSQL's 65,535).
const ROWS_PER_STATEMENT: usize = 200;

/// `($1, $2), ($3, $4), …`: `rows` rows of `casts.len()` parameters each; a parameter whose
/// cast is not empty is written `CAST($n AS cast)`.
fn value_rows(rows: usize, casts: &[&str]) -> String {
    let mut n = 0;
    (0..rows)
        .map(|_| {
            let row = casts
                .iter()
                .map(|cast| {
                    n += 1;
                    if cast.is_empty() {
                        format!("${n}")
                    } else {
                        format!("CAST(${n} AS {cast})")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("({row})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A conversation as the metrics engine sees it.
#[derive(Debug, Clone)]
pub struct MetricSubject {
    pub id: ConversationId,
    pub channel: ChannelKind,
    pub channel_account_id: ChannelAccountId,
    pub priority: Priority,
    /// The SLA policy a segment chose, over the inbox-and-priority match.
    pub sla_policy_id: Option<String>,
    pub version: i64,
    pub facts: Facts,
}

#[derive(Debug, Clone, Serialize)]
pub struct CalendarRecord {
    pub id: String,
    pub name: String,
    pub spec: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyRecord {
    pub id: String,
    pub name: String,
    pub channel_account_id: Option<ChannelAccountId>,
    pub priority: Option<Priority>,
    #[serde(flatten)]
    pub targets: Targets,
}

/// A sample with what reports group it by.
#[derive(Debug, Clone)]
pub struct SampleRow {
    pub kind: SampleKind,
    pub conversation_id: ConversationId,
    pub channel: ChannelKind,
    pub channel_account_id: ChannelAccountId,
    pub agent_id: Option<AgentId>,
    pub ended_at: OffsetDateTime,
    pub seconds: i64,
    pub business_seconds: i64,
    pub due_at: Option<OffsetDateTime>,
}

/// A conversation cycle that started (opened or reopened), or a breach, or a missed call, with
/// what reports group it by.
#[derive(Debug, Clone)]
pub struct Occurrence {
    pub conversation_id: ConversationId,
    pub channel: ChannelKind,
    pub channel_account_id: ChannelAccountId,
    pub agent_id: Option<AgentId>,
    pub at: OffsetDateTime,
    /// For breaches: the target missed and its deadline.
    pub kind: Option<SampleKind>,
    pub due_at: Option<OffsetDateTime>,
}

/// Locks those of `ids` that no other transaction holds, in id order, and returns them.
///
/// On PostgreSQL, ingest transactions update conversations in arrival order; a batch of metric
/// updates taking the same rows in another order would deadlock with them (each side waiting a
/// whole `deadlock_timeout` before PostgreSQL aborts one). Taking only the free rows, sorted,
/// before writing means this transaction never waits for one. SQLite has one writer at a time:
/// every row is free.
async fn lock_free_conversations(
    tx: &mut Tx<'_>,
    backend: Backend,
    ids: impl Iterator<Item = ConversationId>,
) -> Result<HashSet<ConversationId>, StoreError> {
    let mut ids: Vec<ConversationId> = ids.collect();
    if backend == Backend::Sqlite || ids.is_empty() {
        return Ok(ids.into_iter().collect());
    }
    ids.sort_by_key(|id| id.to_string());
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id FROM conversations WHERE id IN ({}) ORDER BY id FOR UPDATE SKIP LOCKED",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in &ids {
        query = query.bind(id.to_string());
    }
    query
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| row.parsed("id"))
        .collect()
}

impl Store {
    /// Conversations whose metrics are behind their facts.
    pub async fn conversations_behind(&self, limit: i64) -> Result<Vec<ConversationId>, StoreError> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM conversations WHERE metrics_done < metrics_version LIMIT $1")
                .bind(limit)
                .fetch_all(self.reader())
                .await?;
        ids.iter()
            .map(|id| super::parse_stored("conversation id", id))
            .collect()
    }

    /// Marks every conversation (or only the unresolved ones) for recomputation.
    pub async fn mark_metrics_stale(&self, unresolved_only: bool) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE conversations SET metrics_version = metrics_version + 1 WHERE $1 = 0 OR status <> 'resolved'",
        )
        .bind(i64::from(unresolved_only))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// The facts of each of `ids` that still exists, at its current metrics version, in the
    /// order of `ids`: three statements for all of them (a statement per conversation and
    /// table, through the pool, cost more than the rows).
    pub async fn metric_subjects(&self, ids: &[ConversationId]) -> Result<Vec<MetricSubject>, StoreError> {
        let keys: Vec<String> = ids.iter().map(ToString::to_string).collect();
        // The versions first: a change that lands while the facts are read moves its
        // conversation's version past the one read here, so it is recomputed again.
        let mut subjects: HashMap<String, MetricSubject> = HashMap::new();
        for row in self
            .rows_of_conversations(
                "SELECT id, channel, channel_account_id, priority, sla_policy_id, assignee_id, metrics_version
                 FROM conversations WHERE id IN {ids}",
                &keys,
            )
            .await?
        {
            let subject = MetricSubject {
                id: row.parsed("id")?,
                channel: row.parsed("channel")?,
                channel_account_id: row.parsed("channel_account_id")?,
                priority: row.parsed("priority")?,
                sla_policy_id: row.opt_text("sla_policy_id")?,
                version: row.int("metrics_version")?,
                facts: Facts {
                    assignee: row.opt_parsed("assignee_id")?,
                    touches: Vec::new(),
                    changes: Vec::new(),
                },
            };
            subjects.insert(row.text("id")?, subject);
        }
        for row in self
            .rows_of_conversations(
                "SELECT conversation_id, occurred_at, direction, author_agent_id, channel,
                        CASE WHEN channel = 'voice' OR direction = 'outbound' THEN details ELSE '{}' END AS details
                 FROM interactions WHERE conversation_id IN {ids} ORDER BY conversation_id, occurred_at, id",
                &keys,
            )
            .await?
        {
            if let Some(subject) = subjects.get_mut(&row.text("conversation_id")?) {
                subject.facts.touches.push(touch_from_row(&row)?);
            }
        }
        for row in self
            .rows_of_conversations(
                "SELECT conversation_id, occurred_at, kind, agent_id, data FROM events
                 WHERE conversation_id IN {ids} ORDER BY conversation_id, occurred_at, id",
                &keys,
            )
            .await?
        {
            if let Some(subject) = subjects.get_mut(&row.text("conversation_id")?)
                && let Some(change) = change_from_row(&row)?
            {
                subject.facts.changes.push(change);
            }
        }
        Ok(keys.iter().filter_map(|id| subjects.remove(id)).collect())
    }

    /// The rows `query` returns for conversations `ids`, read in chunks: `{ids}` in the query
    /// stands for the chunk's parenthesised placeholders.
    async fn rows_of_conversations(&self, query: &str, ids: &[String]) -> Result<Vec<AnyRow>, StoreError> {
        let mut rows = Vec::new();
        for chunk in ids.chunks(CONVERSATIONS_PER_QUERY) {
            let placeholders = value_rows(1, &vec![""; chunk.len()]);
            let mut statement = sqlx::query(sqlx::AssertSqlSafe(query.replace("{ids}", &placeholders)));
            for id in chunk {
                statement = statement.bind(id.clone());
            }
            rows.extend(statement.fetch_all(self.reader()).await?);
        }
        Ok(rows)
    }

    /// Brings each conversation's stored samples and next deadline in line with freshly
    /// computed ones, and records the facts' version they came from, in one transaction.
    /// Only differences are written (a busy conversation's past does not change), so the
    /// worker stays light on the store's single writer. Returns the samples that are new, with
    /// their conversation's channel.
    pub async fn save_metrics(
        &self,
        batch: &[(MetricSubject, Computed)],
    ) -> Result<Vec<(ChannelKind, Sample)>, StoreError> {
        let keys: Vec<String> = batch.iter().map(|(subject, _)| subject.id.to_string()).collect();
        let mut by_conversation: HashMap<String, HashMap<(SampleKind, i64, i64), Sample>> = HashMap::new();
        for row in self
            .rows_of_conversations("SELECT * FROM metric_samples WHERE conversation_id IN {ids}", &keys)
            .await?
        {
            let sample = sample_from_row(&row)?;
            by_conversation
                .entry(row.text("conversation_id")?)
                .or_default()
                .insert((sample.kind, sample.cycle, sample.ordinal), sample);
        }
        let stored: Vec<HashMap<(SampleKind, i64, i64), Sample>> = keys
            .iter()
            .map(|id| by_conversation.remove(id).unwrap_or_default())
            .collect();
        let mut tx = self.begin().await?;
        let ours = lock_free_conversations(&mut tx, self.backend, batch.iter().map(|(s, _)| s.id)).await?;
        let mut new = Vec::new();
        let mut upserts: Vec<(&MetricSubject, &Sample)> = Vec::new();
        let mut done: Vec<(&MetricSubject, &Computed)> = Vec::new();
        for ((subject, computed), before) in batch.iter().zip(stored) {
            // A conversation an ingest transaction holds is left for the next round: its
            // version moves on with that write, so it is still behind afterwards.
            if !ours.contains(&subject.id) {
                continue;
            }
            let wanted: HashSet<(SampleKind, i64, i64)> =
                computed.samples.iter().map(|s| (s.kind, s.cycle, s.ordinal)).collect();
            for (kind, cycle, ordinal) in before.keys().filter(|k| !wanted.contains(k)) {
                sqlx::query("DELETE FROM metric_samples WHERE conversation_id = $1 AND kind = $2 AND cycle = $3 AND ordinal = $4")
                    .bind(subject.id.to_string())
                    .bind(kind.as_str())
                    .bind(*cycle)
                    .bind(*ordinal)
                    .execute(&mut *tx)
                    .await?;
            }
            for s in &computed.samples {
                let previous = before.get(&(s.kind, s.cycle, s.ordinal));
                if previous == Some(s) {
                    continue;
                }
                upserts.push((subject, s));
                if previous.is_none() {
                    new.push((subject.channel, s.clone()));
                }
            }
            done.push((subject, computed));
        }
        // Multi-row statements: one statement per row held SQLite's single write lock for
        // 10-30 ms a round (200 conversations at 50-125 µs each), which ingest waited out.
        for chunk in upserts.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO metric_samples (conversation_id, kind, cycle, ordinal, channel, channel_account_id,
                    agent_id, started_at, ended_at, seconds, business_seconds, due_at)
                 VALUES {}
                 ON CONFLICT (conversation_id, kind, cycle, ordinal) DO UPDATE SET
                    channel = excluded.channel, channel_account_id = excluded.channel_account_id,
                    agent_id = excluded.agent_id, started_at = excluded.started_at, ended_at = excluded.ended_at,
                    seconds = excluded.seconds, business_seconds = excluded.business_seconds, due_at = excluded.due_at",
                value_rows(chunk.len(), &[""; 12])
            );
            let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (subject, s) in chunk {
                statement = statement
                    .bind(subject.id.to_string())
                    .bind(s.kind.as_str())
                    .bind(s.cycle)
                    .bind(s.ordinal)
                    .bind(subject.channel.as_str())
                    .bind(subject.channel_account_id.to_string())
                    .bind(s.agent.map(|a| a.to_string()))
                    .bind(to_micros(s.started_at))
                    .bind(to_micros(s.ended_at))
                    .bind(s.seconds)
                    .bind(s.business_seconds)
                    .bind(s.due_at.map(to_micros));
            }
            statement.execute(&mut *tx).await?;
        }
        for chunk in done.chunks(ROWS_PER_STATEMENT) {
            // Typed, so that a column of NULL deadlines still has its column's type.
            let sql = format!(
                "WITH v (id, due_at, due_kind, version) AS (VALUES {})
                 UPDATE conversations SET sla_due_at = v.due_at, sla_due_kind = v.due_kind,
                     metrics_done = CASE WHEN conversations.metrics_done < v.version
                                         THEN v.version ELSE conversations.metrics_done END
                 FROM v WHERE conversations.id = v.id",
                value_rows(chunk.len(), &["TEXT", "BIGINT", "TEXT", "BIGINT"])
            );
            let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (subject, computed) in chunk {
                statement = statement
                    .bind(subject.id.to_string())
                    .bind(computed.due.map(|d| to_micros(d.at)))
                    .bind(computed.due.map(|d| d.kind.as_str()))
                    .bind(subject.version);
            }
            statement.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(new)
    }

    /// Unresolved conversations whose deadline has passed and is not yet recorded as breached.
    pub async fn due_breaches(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<(ConversationId, ChannelAccountId, SampleKind, OffsetDateTime)>, StoreError> {
        sqlx::query(
            "SELECT c.id, c.channel_account_id, c.sla_due_kind, c.sla_due_at FROM conversations c
             WHERE c.sla_due_at <= $1 AND c.status <> 'resolved' AND c.sla_due_kind IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM sla_breaches b
                               WHERE b.conversation_id = c.id AND b.kind = c.sla_due_kind AND b.due_at = c.sla_due_at)
             LIMIT 500",
        )
        .bind(to_micros(now))
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.parsed("id")?,
                r.parsed("channel_account_id")?,
                r.parsed("sla_due_kind")?,
                r.time("sla_due_at")?,
            ))
        })
        .collect()
    }

    /// Records a breach; `false` when it was already recorded (by this node or another).
    pub async fn record_breach(
        &self,
        conversation: ConversationId,
        kind: SampleKind,
        due_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO sla_breaches (conversation_id, kind, due_at, breached_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (conversation_id, kind, due_at) DO NOTHING",
        )
        .bind(conversation.to_string())
        .bind(kind.as_str())
        .bind(to_micros(due_at))
        .bind(to_micros(at))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            record_event(
                &mut tx,
                EventKind::SlaBreached,
                Some(conversation),
                None,
                None,
                None,
                at,
                serde_json::json!({"target": kind, "due_at": to_micros(due_at)}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    pub async fn create_calendar(&self, name: &str, spec: &serde_json::Value) -> Result<CalendarRecord, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO business_calendars (id, name, spec, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id.clone())
            .bind(name.to_owned())
            .bind(spec.to_string())
            .bind(to_micros(now()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(CalendarRecord {
            id,
            name: name.to_owned(),
            spec: spec.clone(),
        })
    }

    pub async fn calendars(&self) -> Result<Vec<CalendarRecord>, StoreError> {
        sqlx::query("SELECT * FROM business_calendars ORDER BY name, id")
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|r| {
                Ok(CalendarRecord {
                    id: r.text("id")?,
                    name: r.text("name")?,
                    spec: r.json("spec")?,
                })
            })
            .collect()
    }

    /// The calendar an inbox counts business hours by, if it has one.
    pub async fn inbox_calendar(&self, account: ChannelAccountId) -> Result<Option<serde_json::Value>, StoreError> {
        let spec: Option<Option<String>> = sqlx::query_scalar(
            "SELECT b.spec FROM channel_accounts a LEFT JOIN business_calendars b ON b.id = a.calendar_id WHERE a.id = $1",
        )
        .bind(account.to_string())
        .fetch_optional(self.reader())
        .await?;
        spec.flatten()
            .map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("calendar spec: {e}"))))
            .transpose()
    }

    /// Sets (or clears) an inbox's calendar; its open conversations are recomputed.
    pub async fn set_inbox_calendar(
        &self,
        account: ChannelAccountId,
        calendar: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        if let Some(calendar) = calendar {
            let found: Option<String> = sqlx::query_scalar("SELECT id FROM business_calendars WHERE id = $1")
                .bind(calendar.to_owned())
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Err(StoreError::NotFound("calendar"));
            }
        }
        let updated = sqlx::query("UPDATE channel_accounts SET calendar_id = $1 WHERE id = $2")
            .bind(calendar.map(str::to_owned))
            .bind(account.to_string())
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound("channel account"));
        }
        sqlx::query(
            "UPDATE conversations SET metrics_version = metrics_version + 1 WHERE channel_account_id = $1 AND status <> 'resolved'",
        )
        .bind(account.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Saves an SLA policy; one per inbox-and-priority scope (409 otherwise).
    pub async fn create_sla_policy(&self, policy: &PolicyRecord) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let t = &policy.targets;
        let result = sqlx::query(
            "INSERT INTO sla_policies (id, name, channel_account_id, priority, first_response_s, next_response_s,
                resolution_s, business_hours, pause_when_pending, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(policy.id.clone())
        .bind(policy.name.clone())
        .bind(policy.channel_account_id.map(|a| a.to_string()))
        .bind(policy.priority.map(|p| p.as_str()))
        .bind(t.first_response_s)
        .bind(t.next_response_s)
        .bind(t.resolution_s)
        .bind(i64::from(t.business_hours))
        .bind(i64::from(t.pause_when_pending))
        .bind(to_micros(now()))
        .execute(&mut *tx)
        .await;
        if let Err(e) = result {
            let e = StoreError::from(e);
            return Err(if e.is_unique_violation() {
                StoreError::Conflict("a policy for this inbox and priority exists already".into())
            } else {
                e
            });
        }
        sqlx::query("UPDATE conversations SET metrics_version = metrics_version + 1 WHERE status <> 'resolved'")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn sla_policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
        sqlx::query("SELECT * FROM sla_policies ORDER BY name, id")
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|r| {
                Ok(PolicyRecord {
                    id: r.text("id")?,
                    name: r.text("name")?,
                    channel_account_id: r.opt_parsed("channel_account_id")?,
                    priority: r.opt_parsed("priority")?,
                    targets: Targets {
                        first_response_s: r.opt_int("first_response_s")?,
                        next_response_s: r.opt_int("next_response_s")?,
                        resolution_s: r.opt_int("resolution_s")?,
                        business_hours: r.int("business_hours")? != 0,
                        pause_when_pending: r.int("pause_when_pending")? != 0,
                    },
                })
            })
            .collect()
    }

    /// Samples of `kind` that ended in `[from, to)`.
    pub async fn samples_between(
        &self,
        kind: SampleKind,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<SampleRow>, StoreError> {
        sqlx::query("SELECT * FROM metric_samples WHERE kind = $1 AND ended_at >= $2 AND ended_at < $3")
            .bind(kind.as_str())
            .bind(to_micros(from))
            .bind(to_micros(to))
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(sample_row)
            .collect()
    }

    /// Samples with an SLA deadline in `[from, to)`, whenever they ended.
    pub async fn samples_due_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<SampleRow>, StoreError> {
        sqlx::query("SELECT * FROM metric_samples WHERE due_at >= $1 AND due_at < $2")
            .bind(to_micros(from))
            .bind(to_micros(to))
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(sample_row)
            .collect()
    }

    /// Conversations opened or reopened in `[from, to)`: the volume.
    pub async fn cycles_started_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<Occurrence>, StoreError> {
        self.occurrences(
            "SELECT e.conversation_id, e.occurred_at AS at, c.channel, c.channel_account_id, c.assignee_id AS agent_id,
                    CAST(NULL AS TEXT) AS kind, CAST(NULL AS BIGINT) AS due_at
             FROM events e JOIN conversations c ON c.id = e.conversation_id
             WHERE e.kind IN ('conversation_opened', 'conversation_reopened') AND e.occurred_at >= $1 AND e.occurred_at < $2",
            from,
            to,
        )
        .await
    }

    /// Breaches of deadlines that fell in `[from, to)`.
    pub async fn breaches_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<Occurrence>, StoreError> {
        self.occurrences(
            "SELECT b.conversation_id, b.breached_at AS at, c.channel, c.channel_account_id, c.assignee_id AS agent_id,
                    b.kind, b.due_at
             FROM sla_breaches b JOIN conversations c ON c.id = b.conversation_id
             WHERE b.due_at >= $1 AND b.due_at < $2",
            from,
            to,
        )
        .await
    }

    /// Inbound calls in `[from, to)` nobody answered.
    pub async fn missed_calls_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<Occurrence>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.conversation_id, i.occurred_at AS at, i.channel, i.channel_account_id, c.assignee_id AS agent_id,
                    i.details, CAST(NULL AS TEXT) AS kind, CAST(NULL AS BIGINT) AS due_at
             FROM interactions i JOIN conversations c ON c.id = i.conversation_id
             WHERE i.channel = 'voice' AND i.direction = 'inbound' AND i.occurred_at >= $1 AND i.occurred_at < $2",
        )
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(self.reader())
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let details: serde_json::Value = r.json("details")?;
            if matches!(details["disposition"].as_str(), Some("missed" | "voicemail")) {
                out.push(occurrence_from_row(&r)?);
            }
        }
        Ok(out)
    }

    async fn occurrences(
        &self,
        sql: &'static str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<Occurrence>, StoreError> {
        sqlx::query(sql)
            .bind(to_micros(from))
            .bind(to_micros(to))
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(occurrence_from_row)
            .collect()
    }
}

fn occurrence_from_row(r: &AnyRow) -> Result<Occurrence, StoreError> {
    Ok(Occurrence {
        conversation_id: r.parsed("conversation_id")?,
        channel: r.parsed("channel")?,
        channel_account_id: r.parsed("channel_account_id")?,
        agent_id: r.opt_parsed("agent_id")?,
        at: r.time("at")?,
        kind: r.opt_parsed("kind")?,
        due_at: r.opt_time("due_at")?,
    })
}

fn sample_row(r: &AnyRow) -> Result<SampleRow, StoreError> {
    Ok(SampleRow {
        kind: r.parsed("kind")?,
        conversation_id: r.parsed("conversation_id")?,
        channel: r.parsed("channel")?,
        channel_account_id: r.parsed("channel_account_id")?,
        agent_id: r.opt_parsed("agent_id")?,
        ended_at: r.time("ended_at")?,
        seconds: r.int("seconds")?,
        business_seconds: r.int("business_seconds")?,
        due_at: r.opt_time("due_at")?,
    })
}

fn sample_from_row(r: &AnyRow) -> Result<Sample, StoreError> {
    Ok(Sample {
        kind: r.parsed("kind")?,
        cycle: r.int("cycle")?,
        ordinal: r.int("ordinal")?,
        agent: r.opt_parsed("agent_id")?,
        started_at: r.time("started_at")?,
        ended_at: r.time("ended_at")?,
        seconds: r.int("seconds")?,
        business_seconds: r.int("business_seconds")?,
        due_at: r.opt_time("due_at")?,
    })
}

fn touch_from_row(r: &AnyRow) -> Result<Touch, StoreError> {
    let details: serde_json::Value = r.json("details")?;
    let direction: Direction = r.parsed("direction")?;
    let channel: ChannelKind = r.parsed("channel")?;
    let handle_seconds = (channel == ChannelKind::Voice)
        .then(|| {
            details["talk_s"]
                .as_i64()
                .map(|talk| talk + details["wrap_up_s"].as_i64().unwrap_or(0))
        })
        .flatten();
    // Calls that were answered need no reply; missed calls and every message do.
    let needs_reply = match channel {
        ChannelKind::Voice => !matches!(details["disposition"].as_str(), Some("answered")),
        _ => true,
    };
    Ok(Touch {
        at: r.time("occurred_at")?,
        direction,
        agent: r.opt_parsed("author_agent_id")?,
        automated: details["automated"].as_bool().unwrap_or(false),
        needs_reply,
        handle_seconds,
    })
}

fn change_from_row(r: &AnyRow) -> Result<Option<(OffsetDateTime, Change)>, StoreError> {
    let at = r.time("occurred_at")?;
    let data: serde_json::Value = r.json("data")?;
    let change = match r.text("kind")?.as_str() {
        "conversation_opened" => Some(Change::Opened),
        "conversation_reopened" => Some(Change::Reopened),
        "conversation_resolved" => Some(Change::Resolved {
            by: r.opt_parsed("agent_id")?,
        }),
        "status_changed" => match (data["from"].as_str(), data["to"].as_str()) {
            (_, Some("pending")) => Some(Change::Pending(true)),
            (Some("pending"), _) => Some(Change::Pending(false)),
            _ => None,
        },
        _ => None,
    };
    Ok(change.map(|c| (at, c)))
}

#[cfg(test)]
mod tests {
    use super::value_rows;

    #[test]
    fn value_rows_number_parameters_across_rows_and_cast_the_typed_ones() {
        assert_eq!(value_rows(1, &[""]), "($1)");
        assert_eq!(
            value_rows(2, &["TEXT", "", "BIGINT"]),
            "(CAST($1 AS TEXT), $2, CAST($3 AS BIGINT)), (CAST($4 AS TEXT), $5, CAST($6 AS BIGINT))"
        );
    }
}

//! Segments, their members, triggers, the automation queue and outgoing webhook deliveries.

use std::collections::HashSet;

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use time::{Duration, OffsetDateTime};

use super::rows::RowExt;
use super::{Db, Store, StoreError, Tx, sql};
use crate::automation::rules::{Facts, Rule, RuleScope, Touchpoint};
use crate::automation::{AutomationEvent, Segment, Trigger, TriggerEvent};
use crate::domain::*;

/// A segment and how many contacts are in it now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SegmentSummary {
    pub id: SegmentId,
    pub name: String,
    pub rule: Value,
    pub priority: Option<Priority>,
    pub sla_policy_id: Option<String>,
    pub members: i64,
}

/// A segment as a badge: what the console shows beside a contact.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SegmentBadge {
    pub id: SegmentId,
    pub name: String,
}

/// A queued event, claimed by the automation worker.
#[derive(Debug, Clone)]
pub struct QueuedEvent {
    pub id: String,
    pub event: AutomationEvent,
    pub attempts: i64,
    pub created_at: OffsetDateTime,
}

/// A claimed webhook delivery.
#[derive(Debug, Clone)]
pub struct WebhookJob {
    pub id: String,
    pub url: String,
    pub secret: Option<String>,
    pub payload: String,
    pub attempts: i64,
}

/// Every segment, parsed against the current attribute definitions. A stored rule that no
/// longer parses (its attribute was redefined) is skipped with a warning rather than
/// stopping every contact's refresh.
pub(crate) async fn segments_in(tx: &mut Tx<'_>) -> Result<Vec<Segment>, StoreError> {
    let definitions = super::attributes::definitions_in(tx).await?;
    let rows = sqlx::query("SELECT id, name, rule, priority, sla_policy_id FROM segments ORDER BY name")
        .fetch_all(&mut **tx)
        .await?;
    let mut segments = Vec::with_capacity(rows.len());
    for row in rows {
        let json: Value = row.json("rule")?;
        match Rule::parse(&json, RuleScope::Segment, &definitions) {
            Ok(rule) => segments.push(Segment {
                id: row.parsed("id")?,
                name: row.text("name")?,
                rule,
                priority: row.opt_parsed("priority")?,
                sla_policy_id: row.opt_text("sla_policy_id")?,
            }),
            Err(e) => {
                tracing::warn!(segment = %row.text("name")?, error = %e, "segment rule no longer parses; skipped")
            }
        }
    }
    Ok(segments)
}

/// What rules are evaluated against for one contact: attributes, inbound activity as far back
/// as `days`, and current segments.
pub(crate) struct ContactFacts {
    pub attributes: Map<String, Value>,
    pub inbound: Vec<Touchpoint>,
    pub segments: HashSet<SegmentId>,
}

impl ContactFacts {
    pub fn facts<'a>(&'a self, now: OffsetDateTime, conversation: Option<&'a Conversation>) -> Facts<'a> {
        Facts {
            today: now.date(),
            now,
            attributes: &self.attributes,
            inbound: &self.inbound,
            segments: &self.segments,
            conversation,
        }
    }
}

pub(crate) async fn contact_facts_in(
    tx: &mut Tx<'_>,
    contact: ContactId,
    days: u32,
    now: OffsetDateTime,
) -> Result<ContactFacts, StoreError> {
    let attributes: Option<String> = sqlx::query_scalar("SELECT attributes FROM contacts WHERE id = $1")
        .bind(contact.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    let attributes = serde_json::from_str(&attributes.ok_or(StoreError::NotFound("contact"))?)
        .map_err(|e| StoreError::Corrupt(format!("contact attributes: {e}")))?;
    let inbound = if days == 0 {
        vec![]
    } else {
        sqlx::query(
            "SELECT channel, occurred_at, CASE WHEN channel = 'voice' THEN details ELSE '{}' END AS details
             FROM interactions WHERE contact_id = $1 AND direction = 'inbound' AND occurred_at > $2
             ORDER BY occurred_at DESC",
        )
        .bind(contact.to_string())
        .bind(to_micros(now - Duration::days(i64::from(days))))
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| {
            let details: Value = r.json("details")?;
            Ok(Touchpoint {
                channel: r.parsed("channel")?,
                at: r.time("occurred_at")?,
                missed_call: is_missed_call(&details),
            })
        })
        .collect::<Result<_, StoreError>>()?
    };
    let segments = sqlx::query_scalar::<_, String>("SELECT segment_id FROM segment_members WHERE contact_id = $1")
        .bind(contact.to_string())
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|s| super::parse_stored("segment_id", s))
        .collect::<Result<_, _>>()?;
    Ok(ContactFacts {
        attributes,
        inbound,
        segments,
    })
}

/// When a stored interaction happened, and its channel details.
pub(crate) async fn interaction_details_in(
    tx: &mut Tx<'_>,
    id: InteractionId,
) -> Result<Option<(OffsetDateTime, Value)>, StoreError> {
    sqlx::query("SELECT occurred_at, details FROM interactions WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .map(|row| Ok((row.time("occurred_at")?, row.json("details")?)))
        .transpose()
}

/// An inbound call nobody answered, as the metrics count it too.
pub(crate) fn is_missed_call(details: &Value) -> bool {
    matches!(details["disposition"].as_str(), Some("missed" | "voicemail"))
}

/// Re-evaluates `contact` against every segment and brings its memberships in line, queueing
/// a `segment_entered` event for each segment it enters. Returns the segments entered.
pub(crate) async fn refresh_segments_in(
    tx: &mut Tx<'_>,
    contact: ContactId,
    segments: &[Segment],
    now: OffsetDateTime,
) -> Result<Vec<SegmentId>, StoreError> {
    let days = segments.iter().map(|s| s.rule.days_of_activity()).max().unwrap_or(0);
    let known = contact_facts_in(tx, contact, days, now).await?;
    let facts = known.facts(now, None);
    let mut entered = Vec::new();
    for segment in segments {
        let belongs = segment.rule.holds(&facts);
        let is_member = known.segments.contains(&segment.id);
        if belongs && !is_member {
            sqlx::query("INSERT INTO segment_members (segment_id, contact_id, entered_at) VALUES ($1, $2, $3)")
                .bind(segment.id.to_string())
                .bind(contact.to_string())
                .bind(to_micros(now))
                .execute(&mut **tx)
                .await?;
            let event = AutomationEvent {
                kind: TriggerEvent::SegmentEntered,
                key: format!("segment_entered:{}:{contact}:{}", segment.id, to_micros(now)),
                contact: Some(contact),
                conversation: None,
                interaction: None,
                data: serde_json::json!({"segment_id": segment.id}),
            };
            enqueue_in(tx, &event, now).await?;
            entered.push(segment.id);
        } else if !belongs && is_member {
            sqlx::query("DELETE FROM segment_members WHERE segment_id = $1 AND contact_id = $2")
                .bind(segment.id.to_string())
                .bind(contact.to_string())
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(entered)
}

/// Refreshes a contact's segments after its attributes changed, in the same transaction.
pub(crate) async fn attributes_changed_in(tx: &mut Tx<'_>, contact: ContactId) -> Result<(), StoreError> {
    let segments = segments_in(tx).await?;
    if !segments.is_empty() {
        refresh_segments_in(tx, contact, &segments, now()).await?;
    }
    Ok(())
}

/// Whether anything would act on a customer's touchpoint: an enabled trigger or a segment.
/// The ingest writer asks once per batch and queues nothing when the answer is no, so a hub
/// without automation pays one read per batch for it.
pub(crate) async fn automation_listening_in(tx: &mut impl Db) -> Result<bool, StoreError> {
    let found = sql("SELECT 1 FROM triggers WHERE enabled = 1 UNION ALL SELECT 1 FROM segments LIMIT 1")
        .fetch_optional(tx)
        .await?;
    Ok(found.is_some())
}

/// Queues an event for segments and triggers; the same key is queued once.
pub(crate) async fn enqueue_in(
    tx: &mut impl Db,
    event: &AutomationEvent,
    not_before: OffsetDateTime,
) -> Result<(), StoreError> {
    sql(
        "INSERT INTO automation_queue (id, key, kind, contact_id, conversation_id, interaction_id, data, not_before, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (key) DO NOTHING",
    )
    .bind(EventId::new().to_string())
    .bind(event.key.clone())
    .bind(event.kind.as_str())
    .bind(event.contact.map(|c| c.to_string()))
    .bind(event.conversation.map(|c| c.to_string()))
    .bind(event.interaction.map(|i| i.to_string()))
    .bind(event.data.to_string())
    .bind(to_micros(not_before))
    .bind(to_micros(now()))
    .execute(tx)
    .await?;
    Ok(())
}

/// The priority a new conversation of `contact` gets from its segments: the highest any of
/// them sets, with the segment's name as the reason and its SLA policy, if it names one.
pub(crate) async fn segment_priority_in(
    tx: &mut impl Db,
    contact: ContactId,
) -> Result<Option<(Priority, String, Option<String>)>, StoreError> {
    let rows = sql(
        "SELECT s.name, s.priority, s.sla_policy_id FROM segment_members m JOIN segments s ON s.id = m.segment_id
         WHERE m.contact_id = $1 AND s.priority IS NOT NULL ORDER BY s.name",
    )
    .bind(contact.to_string())
    .fetch_all(tx)
    .await?;
    let mut best: Option<(Priority, String, Option<String>)> = None;
    for row in rows {
        let priority: Priority = row.parsed("priority")?;
        if best.as_ref().is_none_or(|(p, _, _)| rank(priority) > rank(*p)) {
            best = Some((
                priority,
                format!("segment {}", row.text("name")?),
                row.opt_text("sla_policy_id")?,
            ));
        }
    }
    Ok(best)
}

/// Orders priorities from low to urgent.
pub fn rank(p: Priority) -> u8 {
    match p {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

pub(crate) async fn triggers_in(tx: &mut Tx<'_>, event: TriggerEvent) -> Result<Vec<Trigger>, StoreError> {
    let definitions = super::attributes::definitions_in(tx).await?;
    let rows = sqlx::query("SELECT * FROM triggers WHERE event = $1 AND enabled = 1 ORDER BY created_at, id")
        .bind(event.as_str())
        .fetch_all(&mut **tx)
        .await?;
    let mut triggers = Vec::with_capacity(rows.len());
    for row in rows {
        match trigger_from_row(&row, &definitions) {
            Ok(trigger) => triggers.push(trigger),
            Err(e) => {
                tracing::warn!(trigger = %row.text("name")?, error = %e, "stored trigger no longer parses; skipped")
            }
        }
    }
    Ok(triggers)
}

/// The events some enabled trigger listens to.
pub(crate) async fn trigger_events_in(tx: &mut Tx<'_>) -> Result<HashSet<TriggerEvent>, StoreError> {
    sqlx::query_scalar::<_, String>("SELECT DISTINCT event FROM triggers WHERE enabled = 1")
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|e| super::parse_stored("event", e))
        .collect()
}

/// Removes handled events from the queue.
pub(crate) async fn dequeue_automation_in(tx: &mut Tx<'_>, ids: &[&str]) -> Result<(), StoreError> {
    for chunk in ids.chunks(500) {
        let list = (1..=chunk.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM automation_queue WHERE id IN ({list})"
        )));
        for id in chunk {
            query = query.bind((*id).to_owned());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

fn trigger_from_row(
    row: &AnyRow,
    definitions: &[crate::attributes::AttributeDefinition],
) -> Result<Trigger, StoreError> {
    let spec = serde_json::json!({
        "name": row.text("name")?,
        "event": row.text("event")?,
        "segment_id": row.opt_text("segment_id")?,
        "conditions": row.json::<Value>("conditions")?,
        "actions": row.json::<Value>("actions")?,
    });
    let mut trigger = Trigger::parse(&spec, definitions).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    trigger.id = row.parsed("id")?;
    trigger.enabled = row.int("enabled")? == 1;
    Ok(trigger)
}

/// Records that `trigger` fired for `event_key`; `false` when it had fired already.
pub(crate) async fn record_firing_in(
    tx: &mut Tx<'_>,
    trigger: TriggerId,
    event_key: &str,
    conversation: Option<ConversationId>,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO trigger_firings (trigger_id, event_key, conversation_id, fired_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (trigger_id, event_key) DO NOTHING",
    )
    .bind(trigger.to_string())
    .bind(event_key.to_owned())
    .bind(conversation.map(|c| c.to_string()))
    .bind(to_micros(at))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How often `trigger` fired on `conversation` since `since` (the reply cool-down reads it).
pub(crate) async fn firings_since_in(
    tx: &mut Tx<'_>,
    trigger: TriggerId,
    conversation: ConversationId,
    since: OffsetDateTime,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM trigger_firings WHERE trigger_id = $1 AND conversation_id = $2 AND fired_at > $3",
    )
    .bind(trigger.to_string())
    .bind(conversation.to_string())
    .bind(to_micros(since))
    .fetch_one(&mut **tx)
    .await?)
}

pub(crate) async fn enqueue_webhook_in(
    tx: &mut Tx<'_>,
    trigger: TriggerId,
    event_key: &str,
    url: &str,
    secret: Option<&str>,
    payload: &Value,
) -> Result<(), StoreError> {
    let at = to_micros(now());
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, trigger_id, event_key, url, secret, payload, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (trigger_id, event_key) DO NOTHING",
    )
    .bind(EventId::new().to_string())
    .bind(trigger.to_string())
    .bind(event_key.to_owned())
    .bind(url.to_owned())
    .bind(secret.map(str::to_owned))
    .bind(payload.to_string())
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn queued_from_row(row: &AnyRow) -> Result<QueuedEvent, StoreError> {
    Ok(QueuedEvent {
        id: row.text("id")?,
        attempts: row.int("attempts")?,
        created_at: row.time("created_at")?,
        event: AutomationEvent {
            kind: row.parsed("kind")?,
            key: row.text("key")?,
            contact: row.opt_parsed("contact_id")?,
            conversation: row.opt_parsed("conversation_id")?,
            interaction: row.opt_parsed("interaction_id")?,
            data: row.json("data")?,
        },
    })
}

impl Store {
    pub async fn segments(&self) -> Result<Vec<SegmentSummary>, StoreError> {
        sqlx::query(
            "SELECT s.*, (SELECT COUNT(*) FROM segment_members m WHERE m.segment_id = s.id) AS members
             FROM segments s ORDER BY s.name",
        )
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|r| {
            Ok(SegmentSummary {
                id: r.parsed("id")?,
                name: r.text("name")?,
                rule: r.json("rule")?,
                priority: r.opt_parsed("priority")?,
                sla_policy_id: r.opt_text("sla_policy_id")?,
                members: r.int("members")?,
            })
        })
        .collect()
    }

    /// Saves a segment whose rule parsed; a name in use is a conflict. Members are filled in by
    /// the automation worker's sweep.
    pub async fn create_segment(
        &self,
        name: &str,
        rule: &Value,
        priority: Option<Priority>,
        sla_policy_id: Option<&str>,
    ) -> Result<SegmentId, StoreError> {
        let id = SegmentId::new();
        let mut tx = self.begin().await?;
        if let Some(policy) = sla_policy_id {
            let known: Option<String> = sqlx::query_scalar("SELECT id FROM sla_policies WHERE id = $1")
                .bind(policy.to_owned())
                .fetch_optional(&mut *tx)
                .await?;
            if known.is_none() {
                return Err(StoreError::Invalid {
                    field: "sla_policy_id".into(),
                    reason: "no such SLA policy".into(),
                });
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO segments (id, name, rule, priority, sla_policy_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(name.to_owned())
        .bind(rule.to_string())
        .bind(priority.map(|p| p.as_str()))
        .bind(sla_policy_id.map(str::to_owned))
        .bind(to_micros(now()))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("a segment named {name:?} exists already")));
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Deletes a segment no trigger names.
    pub async fn delete_segment(&self, id: SegmentId) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM triggers WHERE segment_id = $1")
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        if used > 0 {
            return Err(StoreError::Conflict(
                "a trigger fires on this segment; delete or change it first".into(),
            ));
        }
        sqlx::query("DELETE FROM segment_members WHERE segment_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM segments WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("segment"));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The segments each of `contacts` is in, as badges.
    pub async fn segment_badges(
        &self,
        contacts: &[ContactId],
    ) -> Result<std::collections::HashMap<ContactId, Vec<SegmentBadge>>, StoreError> {
        let mut out: std::collections::HashMap<ContactId, Vec<SegmentBadge>> = Default::default();
        if contacts.is_empty() {
            return Ok(out);
        }
        let list = (1..=contacts.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT m.contact_id, s.id, s.name FROM segment_members m JOIN segments s ON s.id = m.segment_id
             WHERE m.contact_id IN ({list}) ORDER BY s.name"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for c in contacts {
            query = query.bind(c.to_string());
        }
        for row in query.fetch_all(self.reader()).await? {
            out.entry(row.parsed("contact_id")?).or_default().push(SegmentBadge {
                id: row.parsed("id")?,
                name: row.text("name")?,
            });
        }
        Ok(out)
    }

    /// Members of a segment, most recent first.
    pub async fn segment_members(&self, id: SegmentId, limit: i64) -> Result<Vec<ContactId>, StoreError> {
        sqlx::query_scalar::<_, String>(
            "SELECT contact_id FROM segment_members WHERE segment_id = $1 ORDER BY entered_at DESC, contact_id LIMIT $2",
        )
        .bind(id.to_string())
        .bind(limit)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|s| super::parse_stored("contact_id", s))
        .collect()
    }

    /// Contacts (not merged away) after `after` in id order, for the segment sweep.
    pub async fn contact_ids_after(&self, after: Option<ContactId>, limit: i64) -> Result<Vec<ContactId>, StoreError> {
        sqlx::query_scalar::<_, String>(
            "SELECT id FROM contacts WHERE merged_into IS NULL AND id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.map(|a| a.to_string()).unwrap_or_default())
        .bind(limit)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|s| super::parse_stored("contact id", s))
        .collect()
    }

    /// Re-evaluates a batch of contacts against every segment in one transaction; returns how
    /// many entered a segment. Merged-away contacts leave every segment.
    pub async fn refresh_segments(&self, contacts: &[ContactId], at: OffsetDateTime) -> Result<usize, StoreError> {
        let mut tx = self.begin().await?;
        let segments = segments_in(&mut tx).await?;
        let mut entered = 0;
        for contact in contacts {
            entered += refresh_segments_in(&mut tx, *contact, &segments, at).await?.len();
        }
        sqlx::query(
            "DELETE FROM segment_members WHERE contact_id IN (SELECT id FROM contacts WHERE merged_into IS NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(entered)
    }

    /// Evaluates `rule` over every contact now, on the read pool: how many match, and the
    /// first `sample` of them in id order.
    pub async fn evaluate_rule(
        &self,
        rule: &Rule,
        at: OffsetDateTime,
        sample: usize,
    ) -> Result<(usize, Vec<ContactId>), StoreError> {
        let days = rule.days_of_activity();
        let (mut count, mut matched, mut after) = (0, Vec::new(), None);
        loop {
            let batch = self.contact_ids_after(after, 500).await?;
            let Some(last) = batch.last().copied() else { break };
            let mut tx = self.begin_read().await?;
            for contact in &batch {
                let known = contact_facts_in(&mut tx, *contact, days, at).await?;
                if rule.holds(&known.facts(at, None)) {
                    count += 1;
                    if matched.len() < sample {
                        matched.push(*contact);
                    }
                }
            }
            tx.rollback().await?;
            after = Some(last);
        }
        Ok((count, matched))
    }

    /// Changes whenever a segment is created, changed or deleted: the sweep compares it.
    pub async fn segments_signature(&self) -> Result<String, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, rule FROM segments ORDER BY id")
            .fetch_all(self.reader())
            .await?;
        Ok(rows
            .iter()
            .map(|(id, rule)| format!("{id}={rule}"))
            .collect::<Vec<_>>()
            .join(";"))
    }

    /// Whether any segment exists, and whether any looks at time-windowed data.
    pub async fn segments_present(&self) -> Result<(bool, bool), StoreError> {
        let mut tx = self.begin_read().await?;
        let segments = segments_in(&mut tx).await?;
        tx.rollback().await?;
        Ok((!segments.is_empty(), segments.iter().any(|s| s.rule.depends_on_time())))
    }

    pub async fn create_trigger(&self, trigger: &Trigger, spec: &Value) -> Result<TriggerId, StoreError> {
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO triggers (id, name, event, segment_id, conditions, actions, enabled, created_at)
             VALUES ($1, $2, $3, $8, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
        )
        .bind(trigger.id.to_string())
        .bind(trigger.name.clone())
        .bind(trigger.event.as_str())
        .bind(spec.get("conditions").cloned().unwrap_or(Value::Null).to_string())
        .bind(spec["actions"].to_string())
        .bind(i64::from(trigger.enabled))
        .bind(to_micros(now()))
        .bind(trigger.segment.map(|s| s.to_string()))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "a trigger named {:?} exists already",
                trigger.name
            )));
        }
        tx.commit().await?;
        Ok(trigger.id)
    }

    /// Every trigger as stored, secrets masked.
    pub async fn triggers(&self) -> Result<Vec<Value>, StoreError> {
        sqlx::query("SELECT * FROM triggers ORDER BY created_at, id")
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|r| {
                let mut actions: Value = r.json("actions")?;
                for action in actions.as_array_mut().into_iter().flatten() {
                    if let Some(secret) = action.get_mut("secret").filter(|s| !s.is_null()) {
                        *secret = Value::String("********".into());
                    }
                }
                Ok(serde_json::json!({
                    "id": r.text("id")?,
                    "name": r.text("name")?,
                    "event": r.text("event")?,
                    "segment_id": r.opt_text("segment_id")?,
                    "conditions": r.json::<Value>("conditions")?,
                    "actions": actions,
                    "enabled": r.int("enabled")? == 1,
                }))
            })
            .collect()
    }

    pub async fn set_trigger_enabled(&self, id: TriggerId, enabled: bool) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE triggers SET enabled = $1 WHERE id = $2")
            .bind(i64::from(enabled))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("trigger"));
        }
        tx.commit().await?;
        Ok(())
    }

    /// How often each trigger fired, for the admin's list and for tests.
    pub async fn trigger_firings(&self, id: TriggerId) -> Result<Vec<(String, Option<ConversationId>)>, StoreError> {
        sqlx::query("SELECT event_key, conversation_id FROM trigger_firings WHERE trigger_id = $1 ORDER BY fired_at")
            .bind(id.to_string())
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|r| Ok((r.text("event_key")?, r.opt_parsed("conversation_id")?)))
            .collect()
    }

    /// The queued events due now, oldest first.
    pub async fn due_automation(&self, at: OffsetDateTime, limit: i64) -> Result<Vec<QueuedEvent>, StoreError> {
        sqlx::query("SELECT * FROM automation_queue WHERE not_before <= $1 ORDER BY not_before, id LIMIT $2")
            .bind(to_micros(at))
            .bind(limit)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(queued_from_row)
            .collect()
    }

    /// Records a failure to handle a queued event; it is retried later, up to a limit.
    pub async fn automation_failed(&self, id: &str, error: &str, retry_at: OffsetDateTime) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE automation_queue SET attempts = attempts + 1, last_error = $1, not_before = $2 WHERE id = $3",
        )
        .bind(error.to_owned())
        .bind(to_micros(retry_at))
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Claims the next due webhook delivery for `lease`.
    pub async fn claim_webhook(&self, lease: Duration) -> Result<Option<WebhookJob>, StoreError> {
        let columns = "id, url, secret, payload, attempts";
        let row = super::outbox::claim_leased(self, "webhook_deliveries", columns, lease).await?;
        row.map(|r| {
            Ok(WebhookJob {
                id: r.text("id")?,
                url: r.text("url")?,
                secret: r.opt_text("secret")?,
                payload: r.text("payload")?,
                attempts: r.int("attempts")?,
            })
        })
        .transpose()
    }

    /// Records a delivery's outcome: delivered, retried at `retry_at`, or given up on.
    pub async fn finish_webhook(
        &self,
        id: &str,
        outcome: Result<(), (String, Option<OffsetDateTime>)>,
    ) -> Result<(), StoreError> {
        let at = to_micros(now());
        let mut tx = self.begin().await?;
        let query = match &outcome {
            Ok(()) => sqlx::query(
                "UPDATE webhook_deliveries SET status = 'delivered', delivered_at = $1, attempts = attempts + 1,
                        locked_until = NULL WHERE id = $2",
            )
            .bind(at)
            .bind(id.to_owned()),
            Err((error, Some(retry_at))) => sqlx::query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2,
                        locked_until = NULL WHERE id = $3",
            )
            .bind(error.clone())
            .bind(to_micros(*retry_at))
            .bind(id.to_owned()),
            Err((error, None)) => sqlx::query(
                "UPDATE webhook_deliveries SET status = 'failed', attempts = attempts + 1, last_error = $1,
                        locked_until = NULL WHERE id = $2",
            )
            .bind(error.clone())
            .bind(id.to_owned()),
        };
        query.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every delivery of a trigger as (status, attempts, last error), for the admin and tests.
    pub async fn webhook_deliveries(
        &self,
        trigger: TriggerId,
    ) -> Result<Vec<(String, i64, Option<String>)>, StoreError> {
        sqlx::query(
            "SELECT status, attempts, last_error FROM webhook_deliveries WHERE trigger_id = $1 ORDER BY created_at",
        )
        .bind(trigger.to_string())
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|r| Ok((r.text("status")?, r.int("attempts")?, r.opt_text("last_error")?)))
        .collect()
    }
}

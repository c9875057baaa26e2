//! The automation worker: handles queued events (segments first, then triggers) in batches,
//! and sweeps segment memberships that time alone can change.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sqlx::Acquire;
use tokio::sync::watch;
use tracing::warn;

use super::template::{self, Values};
use super::{Action, AutomationEvent, Segment, Trigger, TriggerEvent};
use crate::bus::HubEvent;
use crate::domain::*;
use crate::hub::Hub;
use crate::reply::{Author, Draft, DraftKind, WriteError};
use crate::store::{self, QueuedEvent, StoreError, Tx};

/// Queued events handled in one transaction.
const BATCH: i64 = 100;
/// How often the queue is looked at when idle.
const TICK: Duration = Duration::from_millis(200);
/// Contacts re-evaluated per transaction by the sweep.
const SWEEP_BATCH: i64 = 500;
/// How often chat replies left unread are looked for (the offline fallback).
const FALLBACK_EVERY: Duration = Duration::from_secs(5);
/// One trigger sends at most one automatic reply per conversation in this time.
const REPLY_COOL_DOWN: time::Duration = time::Duration::hours(1);

/// Runs until `shutdown` changes: the queue, the sweep, and the webhook deliverer.
/// Webhooks are delivered by every node; the queue and the sweep are handled by the one node
/// holding the `automation` lease.
pub async fn run(hub: Hub, shutdown: watch::Receiver<bool>) {
    let deliverer = tokio::spawn(super::webhooks::run(hub.clone(), shutdown.clone()));
    let worker = hub.clone();
    crate::cluster::lease::while_held(&hub, "automation".into(), shutdown, move |stop| {
        handle_queue(worker.clone(), stop)
    })
    .await;
    let _ = deliverer.await;
}

/// Handles the queue and the sweep until `stop` changes.
async fn handle_queue(hub: Hub, mut stop: watch::Receiver<bool>) {
    let sweep_every = Duration::from_secs(hub.settings.automation.sweep_interval_seconds.max(1));
    let mut swept: Option<(String, Instant)> = None;
    let mut fallback_checked = Instant::now();
    loop {
        match handle_due(&hub).await {
            Ok(n) if n as i64 >= BATCH => continue,
            Ok(_) => {}
            Err(error) => warn!(%error, "automation queue"),
        }
        if let Err(error) = sweep_if_due(&hub, &mut swept, sweep_every).await {
            warn!(%error, "segment sweep");
        }
        if fallback_checked.elapsed() >= FALLBACK_EVERY {
            fallback_checked = Instant::now();
            if let Err(error) = crate::chat_offline::send_due(&hub).await {
                warn!(%error, "chat offline fallback");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => break,
        }
    }
}

/// What a committed batch must announce.
#[derive(Default)]
struct Effects {
    conversations: Vec<ConversationId>,
    written: Vec<(Interaction, bool)>,
    webhooks: bool,
}

/// Handles the due events; returns how many it looked at.
async fn handle_due(hub: &Hub) -> Result<usize, StoreError> {
    let events = hub.store.due_automation(now(), BATCH).await?;
    if events.is_empty() {
        return Ok(0);
    }
    let at = hub.clock.now();
    let settle = time::Duration::seconds(hub.settings.automation.call_settle_seconds as i64);
    let mut effects = Effects::default();
    let mut failures = Vec::new();
    let mut tx = hub.store.begin().await?;
    let segments = store::segments_in(&mut tx).await?;
    let mut triggers: HashMap<TriggerEvent, Vec<Trigger>> = HashMap::new();
    let listened = store::trigger_events_in(&mut tx).await?;
    // Events nothing listens to (no trigger for their kind, and no segment to refresh) are
    // removed in one statement: the common case of a hub without automation stays cheap.
    let idle: Vec<&str> = events
        .iter()
        .filter(|q| !listened.contains(&q.event.kind))
        .filter(|q| segments.is_empty() || !refreshes_segments(q.event.kind))
        .map(|q| q.id.as_str())
        .collect();
    store::dequeue_automation_in(&mut tx, &idle).await?;
    for queued in events.iter().filter(|q| !idle.contains(&q.id.as_str())) {
        if queued.event.kind == TriggerEvent::CallMissed && queued.created_at + settle > now() {
            defer(&mut tx, &queued.id, queued.created_at + settle).await?;
            continue;
        }
        let mut savepoint = tx.begin().await?;
        let mut mine = Effects::default();
        match handle_one(hub, &mut savepoint, queued, &segments, &mut triggers, at, &mut mine).await {
            Ok(()) => {
                savepoint.commit().await?;
                effects.conversations.extend(mine.conversations);
                effects.written.extend(mine.written);
                effects.webhooks |= mine.webhooks;
            }
            Err(error) => {
                drop(savepoint);
                failures.push((queued, error));
            }
        }
    }
    tx.commit().await?;
    for (queued, error) in failures {
        // Kept, never dropped: retried with backoff, the error on the row for an admin to read.
        warn!(event = %queued.event.key, attempt = queued.attempts + 1, %error, "automation event failed");
        let backoff = crate::outbox::backoff(hub.settings.automation.base_backoff_ms, queued.attempts as u32 + 1);
        hub.store
            .automation_failed(&queued.id, &error.to_string(), now() + backoff)
            .await?;
    }
    announce(hub, effects).await;
    Ok(events.len())
}

/// Whether an event of this kind changes the contact's activity, so its segments.
fn refreshes_segments(kind: TriggerEvent) -> bool {
    matches!(kind, TriggerEvent::InteractionReceived | TriggerEvent::CallMissed)
}

async fn defer(tx: &mut Tx<'_>, id: &str, until: time::OffsetDateTime) -> Result<(), StoreError> {
    sqlx::query("UPDATE automation_queue SET not_before = $1 WHERE id = $2")
        .bind(to_micros(until))
        .bind(id.to_owned())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn announce(hub: &Hub, effects: Effects) {
    for (interaction, queued) in &effects.written {
        hub.written(interaction, *queued);
    }
    let mut seen = std::collections::HashSet::new();
    for id in effects.conversations {
        if seen.insert(id)
            && let Ok(conversation) = hub.store.conversation(id).await
        {
            hub.bus.publish(HubEvent::ConversationChanged {
                conversation: Box::new(conversation),
            });
        }
    }
    if effects.webhooks {
        hub.webhook_wake.notify_one();
    }
}

#[derive(Debug, thiserror::Error)]
enum HandleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reply: {0}")]
    Write(#[from] WriteError),
}

impl From<sqlx::Error> for HandleError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// One event: removed from the queue, segments refreshed, triggers fired, all in the caller's
/// savepoint, so it happens entirely or not at all.
async fn handle_one(
    hub: &Hub,
    tx: &mut Tx<'_>,
    queued: &QueuedEvent,
    segments: &[Segment],
    triggers: &mut HashMap<TriggerEvent, Vec<Trigger>>,
    at: time::OffsetDateTime,
    effects: &mut Effects,
) -> Result<(), HandleError> {
    let event = &queued.event;
    let removed = sqlx::query("DELETE FROM automation_queue WHERE id = $1")
        .bind(queued.id.clone())
        .execute(&mut **tx)
        .await?;
    if removed.rows_affected() == 0 {
        return Ok(()); // another worker handled it
    }
    let interaction = match event.interaction {
        Some(id) => store::interaction_details_in(tx, id).await?,
        None => None,
    };
    if event.kind == TriggerEvent::CallMissed && !interaction.as_ref().is_some_and(|(_, d)| store::is_missed_call(d)) {
        return Ok(()); // answered after all: a late event revised it
    }
    if refreshes_segments(event.kind)
        && !segments.is_empty()
        && let Some(contact) = event.contact
    {
        store::refresh_segments_in(tx, contact, segments, at).await?;
    }
    if let std::collections::hash_map::Entry::Vacant(slot) = triggers.entry(event.kind) {
        slot.insert(store::triggers_in(tx, event.kind).await?);
    }
    let candidates = &triggers[&event.kind];
    if candidates.is_empty() {
        return Ok(());
    }
    let conversation = match event.conversation {
        Some(id) => Some(store::conversation_in(tx, id).await?),
        None => None,
    };
    let Some(contact) = event.contact.or(conversation.as_ref().map(|c| c.contact_id)) else {
        return Ok(());
    };
    // Conditions are judged as of the event: the third missed call is the third even when
    // all three are handled in one batch.
    let happened = interaction.as_ref().map_or(queued.created_at, |(at, _)| *at);
    let days = candidates.iter().map(Trigger::days_of_activity).max().unwrap_or(0);
    let known = store::contact_facts_in(tx, contact, days, happened).await?;
    let auto_submitted = interaction.as_ref().is_some_and(|(_, d)| d["auto_submitted"] == true);
    for trigger in candidates {
        if event.kind == TriggerEvent::SegmentEntered
            && trigger.segment.map(|s| s.to_string()).as_deref() != event.data["segment_id"].as_str()
        {
            continue;
        }
        if let Some(rule) = &trigger.conditions
            && !rule.holds(&known.facts(happened, conversation.as_ref()))
        {
            continue;
        }
        if !store::record_firing_in(tx, trigger.id, &event.key, event.conversation, at).await? {
            continue;
        }
        metrics::counter!("switchboard_trigger_firings_total", "event" => event.kind.as_str()).increment(1);
        let fired = Fired {
            trigger,
            event,
            conversation: conversation.as_ref(),
            contact,
            attributes: &known.attributes,
            auto_submitted,
            at,
        };
        for action in &trigger.actions {
            fired.apply(hub, tx, action, effects).await?;
        }
    }
    Ok(())
}

/// A trigger that fired on an event, applying its actions.
struct Fired<'a> {
    trigger: &'a Trigger,
    event: &'a AutomationEvent,
    conversation: Option<&'a Conversation>,
    contact: ContactId,
    attributes: &'a serde_json::Map<String, serde_json::Value>,
    auto_submitted: bool,
    at: time::OffsetDateTime,
}

impl Fired<'_> {
    async fn apply(
        &self,
        hub: &Hub,
        tx: &mut Tx<'_>,
        action: &Action,
        effects: &mut Effects,
    ) -> Result<(), HandleError> {
        let reason = format!("trigger {}", self.trigger.name);
        let because = serde_json::json!({"trigger": self.trigger.name});
        match (action, self.conversation) {
            (Action::SetPriority(priority), Some(c)) => {
                store::set_priority_in(tx, c.id, *priority, &reason, None, self.at).await?;
                effects.conversations.push(c.id);
            }
            (Action::Assign(agent), Some(c)) => {
                store::assign_in(tx, c.id, Some(*agent), None, self.at, because).await?;
                effects.conversations.push(c.id);
            }
            (Action::AddLabel(label), Some(c)) => {
                if store::add_label_in(tx, c.id, label).await? {
                    effects.conversations.push(c.id);
                }
            }
            (Action::Reply { template }, Some(c)) => {
                // RFC 3834: never answer an automatic message automatically.
                if self.auto_submitted {
                    return Ok(());
                }
                let recent = store::firings_since_in(tx, self.trigger.id, c.id, self.at - REPLY_COOL_DOWN).await?;
                if recent > 1 {
                    return Ok(()); // this firing is counted; an earlier one replied within the hour
                }
                let name: Option<String> = sqlx::query_scalar("SELECT name FROM contacts WHERE id = $1")
                    .bind(self.contact.to_string())
                    .fetch_one(&mut **tx)
                    .await?;
                let text = template::fill(
                    template,
                    &Values {
                        contact_name: name.as_deref(),
                        subject: c.subject.as_deref(),
                        attributes: self.attributes,
                    },
                );
                let draft = Draft {
                    text,
                    html: None,
                    subject: None,
                };
                let author = Some(Author::Trigger(&self.trigger.name));
                let written = hub.write_in(tx, c.id, author, DraftKind::Reply, draft).await?;
                effects.written.push(written);
            }
            (Action::Webhook { url, secret }, _) => {
                let payload = serde_json::json!({
                    "trigger": {"id": self.trigger.id, "name": self.trigger.name},
                    "event": {"type": self.event.kind, "key": self.event.key, "data": self.event.data},
                    "contact_id": self.contact,
                    "conversation": self.conversation,
                    "occurred_at": self.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                });
                store::enqueue_webhook_in(
                    tx,
                    self.trigger.id,
                    &self.event.key,
                    url.as_str(),
                    secret.as_deref(),
                    &payload,
                )
                .await?;
                effects.webhooks = true;
            }
            // A conversation action on an event without a conversation: refused when saved.
            (_, None) => {}
        }
        Ok(())
    }
}

/// Re-checks every contact when the segments changed, and every `every` when a rule depends
/// on time.
async fn sweep_if_due(hub: &Hub, swept: &mut Option<(String, Instant)>, every: Duration) -> Result<(), StoreError> {
    let signature = hub.store.segments_signature().await?;
    let due = match swept {
        None => true,
        Some((last, when)) => *last != signature || (hub.store.segments_present().await?.1 && when.elapsed() >= every),
    };
    if !due {
        return Ok(());
    }
    if !signature.is_empty() {
        let mut after = None;
        loop {
            let batch = hub.store.contact_ids_after(after, SWEEP_BATCH).await?;
            let Some(last) = batch.last().copied() else { break };
            hub.store.refresh_segments(&batch, hub.clock.now()).await?;
            after = Some(last);
        }
    }
    *swept = Some((signature, Instant::now()));
    Ok(())
}

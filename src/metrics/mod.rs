//! Response-time metrics and SLAs, computed from recorded facts.
//!
//! Every change to a conversation (a touchpoint, a status change, an assignment) bumps its
//! metrics version in the same transaction. The worker here recomputes conversations whose
//! metrics are behind, with [`definitions::compute`], stores their samples and next SLA
//! deadline, and records each deadline that passes as a breach, exactly once (a unique key),
//! which it publishes. `switchboard metrics rebuild` marks everything behind and runs the same
//! recomputation, so live figures and rebuilt ones cannot disagree.

pub mod calendar;
pub mod dashboard;
pub mod definitions;
pub mod report;

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tracing::warn;

use self::calendar::{Calendar, CalendarSpec, Hours};
use self::definitions::SampleKind;
use crate::bus::HubEvent;
use crate::domain::*;
use crate::hub::Hub;
use crate::store::{PolicyRecord, Store, StoreError};

/// Conversations recomputed per round.
const BATCH: i64 = 200;
/// While a backlog lasts, the worker rests this many times as long as its last round took,
/// so recomputing never takes more than about a quarter of a core from ingest; it catches up
/// when the burst is over.
const REST_FACTOR: u32 = 3;
/// How often deadlines are checked, and the dashboard refreshed when something changed.
const TICK: Duration = Duration::from_millis(250);

/// The policy that applies to an inbox and priority: the most specific one.
pub fn policy_for(policies: &[PolicyRecord], account: ChannelAccountId, priority: Priority) -> Option<&PolicyRecord> {
    policies
        .iter()
        .filter(|p| p.channel_account_id.is_none_or(|a| a == account) && p.priority.is_none_or(|q| q == priority))
        .max_by_key(|p| (p.channel_account_id.is_some(), p.priority.is_some()))
}

/// Recomputes up to one batch of conversations whose metrics are behind; returns how many.
pub async fn catch_up(store: &Store) -> Result<usize, StoreError> {
    let ids = store.conversations_behind(BATCH).await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let policies = store.sla_policies().await?;
    let mut calendars: HashMap<ChannelAccountId, Hours> = HashMap::new();
    let mut batch = Vec::with_capacity(ids.len());
    for subject in store.metric_subjects(&ids).await? {
        let hours = match calendars.get(&subject.channel_account_id) {
            Some(hours) => hours.clone(),
            None => {
                let hours = inbox_hours(store, subject.channel_account_id).await?;
                calendars.insert(subject.channel_account_id, hours.clone());
                hours
            }
        };
        // A policy a segment chose for the conversation wins over the inbox-and-priority match.
        let chosen = subject
            .sla_policy_id
            .as_deref()
            .and_then(|id| policies.iter().find(|p| p.id == id));
        let targets = chosen
            .or_else(|| policy_for(&policies, subject.channel_account_id, subject.priority))
            .map(|p| &p.targets);
        let computed = definitions::compute(&subject.facts, &hours, targets);
        batch.push((subject, computed));
    }
    for (channel, sample) in store.save_metrics(&batch).await? {
        if sample.kind != SampleKind::Handle {
            metrics::histogram!(
                "switchboard_response_seconds",
                "metric" => sample.kind.as_str(),
                "channel" => channel.as_str()
            )
            .record(sample.seconds as f64);
        }
    }
    Ok(ids.len())
}

/// Recomputes every conversation: `switchboard metrics rebuild`.
pub async fn rebuild(store: &Store) -> Result<u64, StoreError> {
    store.mark_metrics_stale(false).await?;
    let mut done = 0;
    loop {
        let n = catch_up(store).await?;
        if n == 0 {
            return Ok(done);
        }
        done += n as u64;
    }
}

async fn inbox_hours(store: &Store, account: ChannelAccountId) -> Result<Hours, StoreError> {
    let Some(spec) = store.inbox_calendar(account).await? else {
        return Ok(Hours::Always);
    };
    let spec: CalendarSpec = serde_json::from_value(spec).map_err(|e| StoreError::Corrupt(format!("calendar: {e}")))?;
    Calendar::parse(&spec)
        .map(Hours::Business)
        .map_err(|e| StoreError::Corrupt(format!("calendar: {e}")))
}

/// Records every deadline that has passed as a breach, once, and publishes it.
pub async fn check_breaches(hub: &Hub) -> Result<usize, StoreError> {
    let now = hub.clock.now();
    let mut fired = 0;
    for (conversation_id, channel_account_id, target, due_at) in hub.store.due_breaches(now).await? {
        if hub.store.record_breach(conversation_id, target, due_at, now).await? {
            fired += 1;
            metrics::counter!("switchboard_sla_breaches_total", "metric" => target.as_str()).increment(1);
            hub.bus.publish(HubEvent::SlaBreached {
                conversation_id,
                channel_account_id,
                target,
                due_at,
            });
        }
    }
    Ok(fired)
}

/// The metrics worker: recomputes what changed and fires breaches (on the one node holding the
/// `metrics` lease), and pushes the supervisors' dashboard when anything moved (on every node,
/// for its own consoles).
pub async fn run(hub: Hub, shutdown: watch::Receiver<bool>) {
    let lease = crate::cluster::lease::keep(&hub, "metrics".into(), shutdown.clone());
    work(&hub, lease.held.clone(), shutdown).await;
    lease.released().await;
}

async fn work(hub: &Hub, leader: watch::Receiver<bool>, mut shutdown: watch::Receiver<bool>) {
    let hub = hub.clone();
    let mut events = hub.bus.subscribe();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut changed = true;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {}
            event = events.recv() => {
                match event {
                    Ok(HubEvent::Dashboard { .. }) => continue,
                    // The leader's own news: it already knows.
                    Ok(HubEvent::MetricsRecomputed) if *leader.borrow() => continue,
                    Ok(_) | Err(RecvError::Lagged(_)) => changed = true,
                    Err(RecvError::Closed) => return,
                }
                continue;
            }
        }
        let mut recomputed = false;
        while *leader.borrow() {
            let started = std::time::Instant::now();
            match catch_up(&hub.store).await {
                Ok(n) if n > 0 => {
                    changed = true;
                    recomputed = true;
                }
                Ok(_) => break,
                Err(e) => {
                    warn!(error = %e, "metrics not recomputed; will retry");
                    break;
                }
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(started.elapsed() * REST_FACTOR) => {}
            }
            if check_breaches(&hub).await.unwrap_or(0) > 0 {
                changed = true;
            }
        }
        if *leader.borrow() {
            match check_breaches(&hub).await {
                Ok(0) => {}
                Ok(_) => changed = true,
                Err(e) => warn!(error = %e, "SLA deadlines not checked; will retry"),
            }
        }
        if recomputed {
            hub.bus.publish(HubEvent::MetricsRecomputed);
        }
        if changed {
            match dashboard::snapshot(&hub).await {
                Ok(snapshot) => {
                    hub.bus.publish(HubEvent::Dashboard {
                        snapshot: Box::new(snapshot),
                    });
                    changed = false;
                }
                Err(e) => warn!(error = %e, "dashboard not refreshed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::definitions::Targets;

    #[test]
    fn the_most_specific_policy_applies() {
        let inbox = ChannelAccountId::new();
        let other = ChannelAccountId::new();
        let policy = |name: &str, account: Option<ChannelAccountId>, priority: Option<Priority>| PolicyRecord {
            id: name.into(),
            name: name.into(),
            channel_account_id: account,
            priority,
            targets: Targets::default(),
        };
        let policies = vec![
            policy("default", None, None),
            policy("urgent anywhere", None, Some(Priority::Urgent)),
            policy("inbox", Some(inbox), None),
            policy("inbox urgent", Some(inbox), Some(Priority::Urgent)),
        ];
        let name = |a, p| policy_for(&policies, a, p).map(|p| p.name.as_str());
        assert_eq!(name(inbox, Priority::Urgent), Some("inbox urgent"));
        assert_eq!(name(inbox, Priority::Normal), Some("inbox"));
        assert_eq!(name(other, Priority::Urgent), Some("urgent anywhere"));
        assert_eq!(name(other, Priority::Low), Some("default"));
    }
}

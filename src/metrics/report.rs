//! Reports for a period, per channel, inbox or agent: volume (conversations opened or
//! reopened), first response and resolution times (p50 and p90, also in business hours), SLA
//! attainment and missed calls; as JSON or CSV.
//!
//! Percentiles are nearest-rank: the p-th percentile of n sorted values is the value at rank
//! ⌈p/100 · n⌉. A sample belongs to the period in which it ended (the reply was sent, the
//! conversation resolved); an SLA target to the period its deadline fell in, and it is met when
//! the reply or resolution came by the deadline.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::definitions::SampleKind;
use crate::domain::*;
use crate::store::{Occurrence, SampleRow, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Channel,
    Inbox,
    Agent,
}

/// Percentiles of a set of durations, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stat {
    pub count: usize,
    pub p50_s: Option<i64>,
    pub p90_s: Option<i64>,
    pub business_p50_s: Option<i64>,
    pub business_p90_s: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    /// The channel name, inbox id or agent id (`none` for unassigned work).
    pub key: String,
    pub label: String,
    pub volume: usize,
    pub first_response: Stat,
    pub resolution: Stat,
    pub sla_targets: usize,
    pub sla_met: usize,
    /// `sla_met / sla_targets`, when there were targets.
    pub sla_attainment: Option<f64>,
    pub missed_calls: usize,
}

/// The nearest-rank percentile of `values` (sorted in place).
pub fn percentile(values: &mut [i64], p: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

fn stat(samples: &[&SampleRow]) -> Stat {
    let mut wall: Vec<i64> = samples.iter().map(|s| s.seconds).collect();
    let mut business: Vec<i64> = samples.iter().map(|s| s.business_seconds).collect();
    Stat {
        count: samples.len(),
        p50_s: percentile(&mut wall, 50.0),
        p90_s: percentile(&mut wall, 90.0),
        business_p50_s: percentile(&mut business, 50.0),
        business_p90_s: percentile(&mut business, 90.0),
    }
}

fn key_of(group: GroupBy, channel: ChannelKind, account: ChannelAccountId, agent: Option<AgentId>) -> String {
    match group {
        GroupBy::Channel => channel.as_str().to_owned(),
        GroupBy::Inbox => account.to_string(),
        GroupBy::Agent => agent.map_or_else(|| "none".to_owned(), |a| a.to_string()),
    }
}

/// The report for `[from, to)`, one row per group, sorted by label.
pub async fn summary(
    store: &Store,
    from: OffsetDateTime,
    to: OffsetDateTime,
    group: GroupBy,
) -> Result<Vec<Row>, StoreError> {
    let volume = store.cycles_started_between(from, to).await?;
    let first = store.samples_between(SampleKind::FirstResponse, from, to).await?;
    let resolution = store.samples_between(SampleKind::Resolution, from, to).await?;
    let breaches = store.breaches_between(from, to).await?;
    let missed = store.missed_calls_between(from, to).await?;
    // SLA targets are counted by deadline, whenever the reply or resolution came.
    let with_deadline = store.samples_due_between(from, to).await?;

    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    fn entry(rows: &mut BTreeMap<String, Row>, key: String) -> &mut Row {
        rows.entry(key.clone()).or_insert_with(|| Row {
            key,
            ..Default::default()
        })
    }
    for o in &volume {
        entry(&mut rows, key_of(group, o.channel, o.channel_account_id, o.agent_id)).volume += 1;
    }
    for o in &missed {
        entry(&mut rows, key_of(group, o.channel, o.channel_account_id, o.agent_id)).missed_calls += 1;
    }
    let mut grouped_first: HashMap<String, Vec<&SampleRow>> = HashMap::new();
    for s in &first {
        grouped_first
            .entry(key_of(group, s.channel, s.channel_account_id, s.agent_id))
            .or_default()
            .push(s);
    }
    let mut grouped_resolution: HashMap<String, Vec<&SampleRow>> = HashMap::new();
    for s in &resolution {
        grouped_resolution
            .entry(key_of(group, s.channel, s.channel_account_id, s.agent_id))
            .or_default()
            .push(s);
    }
    for (key, samples) in &grouped_first {
        entry(&mut rows, key.clone()).first_response = stat(samples);
    }
    for (key, samples) in &grouped_resolution {
        entry(&mut rows, key.clone()).resolution = stat(samples);
    }
    let measured: HashSet<(ConversationId, SampleKind, i64)> = with_deadline
        .iter()
        .filter_map(|s| Some((s.conversation_id, s.kind, to_micros(s.due_at?))))
        .collect();
    for s in &with_deadline {
        let r = entry(&mut rows, key_of(group, s.channel, s.channel_account_id, s.agent_id));
        r.sla_targets += 1;
        if s.due_at.is_some_and(|due| s.ended_at <= due) {
            r.sla_met += 1;
        }
    }
    // Deadlines missed and still not met: breaches with no sample yet.
    for b in breaches.iter().filter(|b: &&Occurrence| {
        !b.kind
            .zip(b.due_at)
            .is_some_and(|(kind, due)| measured.contains(&(b.conversation_id, kind, to_micros(due))))
    }) {
        entry(&mut rows, key_of(group, b.channel, b.channel_account_id, b.agent_id)).sla_targets += 1;
    }
    let labels = labels(store, group).await?;
    let mut out: Vec<Row> = rows
        .into_values()
        .map(|mut r| {
            r.label = labels.get(&r.key).cloned().unwrap_or_else(|| r.key.clone());
            r.sla_attainment = (r.sla_targets > 0).then(|| r.sla_met as f64 / r.sla_targets as f64);
            r
        })
        .collect();
    out.sort_by(|a, b| a.label.cmp(&b.label).then(a.key.cmp(&b.key)));
    Ok(out)
}

async fn labels(store: &Store, group: GroupBy) -> Result<HashMap<String, String>, StoreError> {
    Ok(match group {
        GroupBy::Channel => ChannelKind::ALL
            .iter()
            .map(|c| (c.as_str().to_owned(), c.as_str().to_owned()))
            .collect(),
        GroupBy::Inbox => store
            .channel_accounts()
            .await?
            .into_iter()
            .map(|a| (a.id.to_string(), a.name))
            .collect(),
        GroupBy::Agent => {
            let mut names: HashMap<String, String> = store
                .agents()
                .await?
                .into_iter()
                .map(|a| (a.id.to_string(), a.name))
                .collect();
            names.insert("none".into(), "unassigned".into());
            names
        }
    })
}

/// The report as CSV, one line per row, durations in seconds.
pub fn to_csv(group: GroupBy, rows: &[Row]) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        match group {
            GroupBy::Channel => "channel",
            GroupBy::Inbox => "inbox",
            GroupBy::Agent => "agent",
        },
        "key",
        "volume",
        "first_response_count",
        "first_response_p50_s",
        "first_response_p90_s",
        "first_response_business_p50_s",
        "first_response_business_p90_s",
        "resolution_count",
        "resolution_p50_s",
        "resolution_p90_s",
        "resolution_business_p50_s",
        "resolution_business_p90_s",
        "sla_targets",
        "sla_met",
        "sla_attainment",
        "missed_calls",
    ])?;
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in rows {
        writer.write_record([
            r.label.clone(),
            r.key.clone(),
            r.volume.to_string(),
            r.first_response.count.to_string(),
            opt(r.first_response.p50_s),
            opt(r.first_response.p90_s),
            opt(r.first_response.business_p50_s),
            opt(r.first_response.business_p90_s),
            r.resolution.count.to_string(),
            opt(r.resolution.p50_s),
            opt(r.resolution.p90_s),
            opt(r.resolution.business_p50_s),
            opt(r.resolution.business_p90_s),
            r.sla_targets.to_string(),
            r.sla_met.to_string(),
            r.sla_attainment.map(|a| format!("{a:.4}")).unwrap_or_default(),
            r.missed_calls.to_string(),
        ])?;
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v = vec![50, 10, 40, 20, 30];
        assert_eq!(percentile(&mut v, 50.0), Some(30));
        assert_eq!(percentile(&mut v, 90.0), Some(50));
        assert_eq!(percentile(&mut v, 20.0), Some(10));
        assert_eq!(percentile(&mut [], 50.0), None);
        let mut ten: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&mut ten, 90.0), Some(9));
    }
}

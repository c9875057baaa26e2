//! What the figures mean, as one pure function from a conversation's recorded facts to its
//! samples and its next SLA deadline. Live updates and `switchboard metrics rebuild` both call
//! it, so they cannot disagree.
//!
//! - **First response time**: from the first inbound message that needs a reply in a cycle
//!   (the conversation's opening, or a reopening) to the first reply by a human agent after it.
//!   Notes, automated messages (auto-replies, system messages) and outbound messages without an
//!   agent do not count.
//! - **Next response time**: after an agent's reply, from the customer's next message to the
//!   agent reply that answers it.
//! - **Resolution time**: from the start of a cycle to its resolution; cycles that never waited
//!   on an agent (an answered call) are not measured.
//! - **Handle time** of a call: talk time plus wrap-up time, as the call source reports them.
//!
//! Every duration is also counted in business hours (the inbox's calendar). SLA deadlines add
//! the policy's target to the start, in business hours when the policy says so, and move out
//! by the time spent pending when the policy pauses then.

use serde::Serialize;
use time::OffsetDateTime;

use super::calendar::Hours;
use crate::domain::*;

named_enum!(
    /// What a sample measures.
    SampleKind, "metric" {
        FirstResponse = "first_response",
        NextResponse = "next_response",
        Resolution = "resolution",
        Handle = "handle",
    }
);

/// One touchpoint, as far as metrics care.
#[derive(Debug, Clone)]
pub struct Touch {
    pub at: OffsetDateTime,
    pub direction: Direction,
    pub agent: Option<AgentId>,
    /// Sent by the hub on its own (auto-reply, system message), not by a person.
    pub automated: bool,
    /// An inbound touchpoint somebody must answer.
    pub needs_reply: bool,
    /// For calls: talk plus wrap-up seconds.
    pub handle_seconds: Option<i64>,
}

impl Touch {
    fn is_human_reply(&self) -> bool {
        self.direction == Direction::Outbound && self.agent.is_some() && !self.automated
    }

    fn awaits_reply(&self) -> bool {
        self.direction == Direction::Inbound && self.needs_reply
    }
}

/// A change in a conversation's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Opened,
    Reopened,
    Resolved {
        by: Option<AgentId>,
    },
    /// The status moved to (`true`) or away from (`false`) pending.
    Pending(bool),
}

#[derive(Debug, Clone)]
pub struct Facts {
    pub assignee: Option<AgentId>,
    /// Touchpoints, by time.
    pub touches: Vec<Touch>,
    /// Lifecycle changes, by time.
    pub changes: Vec<(OffsetDateTime, Change)>,
}

/// An SLA policy's targets, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Targets {
    pub first_response_s: Option<i64>,
    pub next_response_s: Option<i64>,
    pub resolution_s: Option<i64>,
    pub business_hours: bool,
    pub pause_when_pending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub kind: SampleKind,
    pub cycle: i64,
    pub ordinal: i64,
    pub agent: Option<AgentId>,
    pub started_at: OffsetDateTime,
    pub ended_at: OffsetDateTime,
    pub seconds: i64,
    pub business_seconds: i64,
    pub due_at: Option<OffsetDateTime>,
}

/// The deadline the conversation must meet next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub kind: SampleKind,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Computed {
    pub samples: Vec<Sample>,
    /// `None` when nothing is due (or the clock is paused while pending).
    pub due: Option<Due>,
}

struct Cycle {
    start: OffsetDateTime,
    /// Where the next cycle starts: touches before it belong to this one.
    until: Option<OffsetDateTime>,
    resolved: Option<(OffsetDateTime, Option<AgentId>)>,
}

/// Computes a conversation's samples and next deadline.
pub fn compute(facts: &Facts, business: &Hours, targets: Option<&Targets>) -> Computed {
    let cycles = cycles(facts);
    let pauses = pending_intervals(facts);
    let sla_hours = match targets {
        Some(t) if t.business_hours => business.clone(),
        _ => Hours::Always,
    };
    let paused = targets.is_some_and(|t| t.pause_when_pending);
    let deadline = |start: OffsetDateTime, target: Option<i64>| -> Option<OffsetDateTime> {
        let target = target?;
        if paused {
            deadline_with_pauses(&sla_hours, start, target, &pauses)
        } else {
            Some(sla_hours.add(start, target))
        }
    };
    let mut out = Computed::default();
    let last = cycles.len().saturating_sub(1);
    for (n, cycle) in cycles.iter().enumerate() {
        let touches = facts
            .touches
            .iter()
            .filter(|t| t.at >= cycle.start && cycle.until.is_none_or(|u| t.at < u));
        let mut waiting: Option<OffsetDateTime> = None;
        let mut answered_once = false;
        let mut waited_at_all = false;
        let mut ordinal = 0;
        for touch in touches {
            if touch.awaits_reply() {
                waited_at_all = true;
                waiting.get_or_insert(touch.at);
            }
            if let Some(handle) = touch.handle_seconds.filter(|s| *s > 0) {
                out.samples.push(Sample {
                    kind: SampleKind::Handle,
                    cycle: n as i64,
                    ordinal: out
                        .samples
                        .iter()
                        .filter(|s| s.kind == SampleKind::Handle && s.cycle == n as i64)
                        .count() as i64,
                    agent: touch.agent,
                    started_at: touch.at,
                    ended_at: touch.at + time::Duration::seconds(handle),
                    seconds: handle,
                    business_seconds: handle,
                    due_at: None,
                });
            }
            if touch.is_human_reply()
                && let Some(since) = waiting.take()
            {
                let (kind, target) = if answered_once {
                    ordinal += 1;
                    (SampleKind::NextResponse, targets.and_then(|t| t.next_response_s))
                } else {
                    (SampleKind::FirstResponse, targets.and_then(|t| t.first_response_s))
                };
                answered_once = true;
                out.samples.push(Sample {
                    kind,
                    cycle: n as i64,
                    ordinal: if kind == SampleKind::FirstResponse { 0 } else { ordinal },
                    agent: touch.agent,
                    started_at: since,
                    ended_at: touch.at,
                    seconds: (touch.at - since).whole_seconds().max(0),
                    business_seconds: business.seconds(since, touch.at),
                    due_at: deadline(since, target),
                });
            }
        }
        let resolution_due = deadline(cycle.start, targets.and_then(|t| t.resolution_s));
        if let Some((at, by)) = cycle.resolved {
            if waited_at_all {
                out.samples.push(Sample {
                    kind: SampleKind::Resolution,
                    cycle: n as i64,
                    ordinal: 0,
                    agent: by.or(facts.assignee),
                    started_at: cycle.start,
                    ended_at: at,
                    seconds: (at - cycle.start).whole_seconds().max(0),
                    business_seconds: business.seconds(cycle.start, at),
                    due_at: resolution_due,
                });
            }
        } else if n == last && waited_at_all {
            // The conversation is live: its next deadline is the nearest unmet target.
            let response_due = waiting.and_then(|since| {
                let (kind, target) = if answered_once {
                    (SampleKind::NextResponse, targets.and_then(|t| t.next_response_s))
                } else {
                    (SampleKind::FirstResponse, targets.and_then(|t| t.first_response_s))
                };
                deadline(since, target).map(|at| Due { kind, at })
            });
            let resolution = resolution_due.map(|at| Due {
                kind: SampleKind::Resolution,
                at,
            });
            out.due = [response_due, resolution].into_iter().flatten().min_by_key(|d| d.at);
        }
    }
    out
}

fn cycles(facts: &Facts) -> Vec<Cycle> {
    let mut cycles: Vec<Cycle> = Vec::new();
    for (at, change) in &facts.changes {
        match change {
            Change::Opened | Change::Reopened => {
                if let Some(previous) = cycles.last_mut() {
                    previous.until = Some(*at);
                }
                cycles.push(Cycle {
                    start: *at,
                    until: None,
                    resolved: None,
                });
            }
            Change::Resolved { by } => {
                if let Some(current) = cycles.last_mut().filter(|c| c.resolved.is_none()) {
                    current.resolved = Some((*at, *by));
                }
            }
            Change::Pending(_) => {}
        }
    }
    if cycles.is_empty()
        && let Some(first) = facts.touches.first()
    {
        cycles.push(Cycle {
            start: first.at,
            until: None,
            resolved: None,
        });
    }
    cycles
}

/// Intervals spent pending; the last is open-ended (`None`) while still pending.
fn pending_intervals(facts: &Facts) -> Vec<(OffsetDateTime, Option<OffsetDateTime>)> {
    let mut out: Vec<(OffsetDateTime, Option<OffsetDateTime>)> = Vec::new();
    for (at, change) in &facts.changes {
        let open = out.last().is_some_and(|(_, end)| end.is_none());
        match change {
            Change::Pending(true) if !open => out.push((*at, None)),
            Change::Pending(false) | Change::Resolved { .. } | Change::Reopened if open => {
                if let Some(last) = out.last_mut() {
                    last.1 = Some(*at);
                }
            }
            _ => {}
        }
    }
    out
}

/// `start + target` of counted time, where time inside a pending interval does not count;
/// `None` while an open-ended pause would hold the deadline back.
fn deadline_with_pauses(
    hours: &Hours,
    start: OffsetDateTime,
    target: i64,
    pauses: &[(OffsetDateTime, Option<OffsetDateTime>)],
) -> Option<OffsetDateTime> {
    let mut due = hours.add(start, target);
    for _ in 0..64 {
        let mut paused = 0;
        for (from, to) in pauses {
            if *from >= due {
                continue;
            }
            let Some(to) = to else { return None };
            let (a, b) = ((*from).max(start), (*to).min(due));
            if b > a {
                paused += hours.seconds(a, b);
            }
        }
        let next = hours.add(start, target + paused);
        if next == due {
            return Some(due);
        }
        due = next;
    }
    Some(due)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::metrics::calendar::{Calendar, CalendarSpec};

    fn agent() -> AgentId {
        AgentId(uuid::Uuid::from_u128(7))
    }

    fn touch(at: OffsetDateTime, direction: Direction) -> Touch {
        Touch {
            at,
            direction,
            agent: (direction != Direction::Inbound).then(agent),
            automated: false,
            needs_reply: direction == Direction::Inbound,
            handle_seconds: None,
        }
    }

    fn facts(touches: Vec<Touch>, changes: Vec<(OffsetDateTime, Change)>) -> Facts {
        Facts {
            assignee: None,
            touches,
            changes,
        }
    }

    fn of(kind: SampleKind, computed: &Computed) -> Vec<(i64, i64)> {
        computed
            .samples
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| (s.cycle, s.seconds))
            .collect()
    }

    #[test]
    fn first_response_ignores_notes_auto_replies_and_agentless_messages() {
        let t0 = datetime!(2026-11-23 10:00 UTC);
        let mut auto = touch(t0 + time::Duration::seconds(5), Direction::Outbound);
        auto.automated = true;
        let mut agentless = touch(t0 + time::Duration::seconds(10), Direction::Outbound);
        agentless.agent = None;
        let computed = compute(
            &facts(
                vec![
                    touch(t0, Direction::Inbound),
                    auto,
                    agentless,
                    touch(t0 + time::Duration::seconds(60), Direction::Note),
                    touch(t0 + time::Duration::seconds(300), Direction::Outbound),
                ],
                vec![(t0, Change::Opened)],
            ),
            &Hours::Always,
            None,
        );
        assert_eq!(of(SampleKind::FirstResponse, &computed), [(0, 300)]);
    }

    #[test]
    fn a_reopening_starts_a_new_first_response_and_next_responses_follow_replies() {
        let t = |m: i64| datetime!(2026-11-23 10:00 UTC) + time::Duration::minutes(m);
        let computed = compute(
            &facts(
                vec![
                    touch(t(0), Direction::Inbound),
                    touch(t(10), Direction::Outbound),
                    touch(t(20), Direction::Inbound),
                    touch(t(21), Direction::Inbound),
                    touch(t(50), Direction::Outbound),
                    touch(t(200), Direction::Inbound),
                    touch(t(204), Direction::Outbound),
                ],
                vec![
                    (t(0), Change::Opened),
                    (t(60), Change::Resolved { by: Some(agent()) }),
                    (t(200), Change::Reopened),
                ],
            ),
            &Hours::Always,
            None,
        );
        assert_eq!(of(SampleKind::FirstResponse, &computed), [(0, 600), (1, 240)]);
        assert_eq!(
            of(SampleKind::NextResponse, &computed),
            [(0, 1_800)],
            "from the first unanswered message"
        );
        assert_eq!(of(SampleKind::Resolution, &computed), [(0, 3_600)]);
    }

    fn madrid() -> Hours {
        let spec: CalendarSpec = serde_json::from_value(serde_json::json!({
            "time_zone": "Europe/Madrid",
            "hours": {"mon": [["09:00", "18:00"]], "tue": [["09:00", "18:00"]], "wed": [["09:00", "18:00"]],
                      "thu": [["09:00", "18:00"]], "fri": [["09:00", "18:00"]]},
            "holidays": ["2026-12-08"],
        }))
        .unwrap();
        Hours::Business(Calendar::parse(&spec).unwrap())
    }

    #[test]
    fn business_hours_skip_the_night_the_weekend_and_a_holiday() {
        // Friday 4 Dec 17:30 Madrid; answered Wednesday 9 Dec 09:30 (Monday counts, Tuesday 8 is a holiday).
        let asked = datetime!(2026-12-04 16:30 UTC);
        let answered = datetime!(2026-12-09 08:30 UTC);
        let computed = compute(
            &facts(
                vec![touch(asked, Direction::Inbound), touch(answered, Direction::Outbound)],
                vec![(asked, Change::Opened)],
            ),
            &madrid(),
            None,
        );
        let first = &computed.samples[0];
        assert_eq!(first.seconds, (answered - asked).whole_seconds());
        assert_eq!(first.business_seconds, 30 * 60 + 9 * 3_600 + 30 * 60);
    }

    #[test]
    fn deadlines_count_business_hours_and_pause_while_pending() {
        let asked = datetime!(2026-11-27 16:30 UTC); // Friday 17:30 Madrid
        let targets = Targets {
            first_response_s: Some(3_600),
            resolution_s: Some(8 * 3_600),
            business_hours: true,
            pause_when_pending: true,
            ..Default::default()
        };
        let open = facts(vec![touch(asked, Direction::Inbound)], vec![(asked, Change::Opened)]);
        let computed = compute(&open, &madrid(), Some(&targets));
        assert_eq!(
            computed.due,
            Some(Due {
                kind: SampleKind::FirstResponse,
                at: datetime!(2026-11-30 08:30 UTC)
            }),
            "30 minutes on Friday, 30 on Monday"
        );
        // Answered at once, then pending (waiting on the customer) from Monday 10:00 to 12:00:
        // the resolution deadline moves out by those two business hours.
        let mut answered = open.clone();
        answered
            .touches
            .push(touch(asked + time::Duration::minutes(10), Direction::Outbound));
        answered
            .changes
            .push((datetime!(2026-11-30 09:00 UTC), Change::Pending(true)));
        let while_pending = compute(&answered, &madrid(), Some(&targets));
        assert_eq!(while_pending.due, None, "the clock stands still while pending");
        answered
            .changes
            .push((datetime!(2026-11-30 11:00 UTC), Change::Pending(false)));
        let after = compute(&answered, &madrid(), Some(&targets));
        assert_eq!(
            after.due,
            Some(Due {
                kind: SampleKind::Resolution,
                // 8 business hours from Friday 17:30: Friday 0.5 h, Monday 7.5 h → Monday 16:30,
                // plus the 2 paused hours → Monday 18:30 → Tuesday 09:30 Madrid.
                at: datetime!(2026-12-01 08:30 UTC)
            })
        );
        let first = &after.samples[0];
        assert_eq!(first.due_at, Some(datetime!(2026-11-30 08:30 UTC)));
    }

    #[test]
    fn answered_calls_have_handle_time_and_no_resolution_sample() {
        let at = datetime!(2026-11-23 10:00 UTC);
        let mut call = touch(at, Direction::Inbound);
        call.needs_reply = false;
        call.handle_seconds = Some(95);
        let computed = compute(
            &facts(
                vec![call],
                vec![(at, Change::Opened), (at, Change::Resolved { by: None })],
            ),
            &Hours::Always,
            None,
        );
        assert_eq!(of(SampleKind::Handle, &computed), [(0, 95)]);
        assert!(of(SampleKind::Resolution, &computed).is_empty());
    }
}

//! The rule language of segments and triggers: conditions over a contact's custom attributes
//! and recent activity (and, in a trigger, over the event's conversation), written as JSON and
//! parsed once into typed conditions. A rule that does not parse is refused with the path of
//! the offending part (`rule.all[1].op`) and what was expected there.
//!
//! ```json
//! {"all": [
//!   {"attribute": "lifetime_value", "op": "gte", "value": 5000},
//!   {"any": [{"attribute": "last_order", "op": "within_days", "value": 30},
//!            {"activity": "inbound", "days": 7, "op": "gt", "value": 3}]},
//!   {"channels_used": ["sms", "email"], "days": 90}
//! ]}
//! ```

use std::collections::HashSet;

use serde_json::{Map, Value};
use time::{Date, Duration, OffsetDateTime};

use crate::attributes::{AttributeDefinition, AttributeKind};
use crate::domain::*;

/// Longest activity window a rule may look back over.
pub const MAX_DAYS: u32 = 366;
/// Most conditions in one rule, nested ones included.
const MAX_CONDITIONS: usize = 64;

/// Where a rule does not parse, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct RuleError {
    pub path: String,
    pub reason: String,
}

fn fail<T>(path: &str, reason: impl Into<String>) -> Result<T, RuleError> {
    Err(RuleError {
        path: path.to_owned(),
        reason: reason.into(),
    })
}

/// What a rule may mention: segments rules speak of the contact only; triggers may also test
/// the event's conversation and the contact's segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleScope {
    Segment,
    Trigger,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    All(Vec<Rule>),
    Any(Vec<Rule>),
    Not(Box<Rule>),
    Is(Condition),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Attribute {
        key: String,
        test: AttributeTest,
    },
    /// How many touchpoints of a kind the contact made in the last `days` days.
    Activity {
        counted: Counted,
        days: u32,
        cmp: Cmp,
        count: u32,
    },
    /// The contact reached us on every one of these channels in the last `days` days.
    ChannelsUsed {
        channels: Vec<ChannelKind>,
        days: u32,
    },
    /// Triggers only: the contact is in this segment.
    InSegment(SegmentId),
    /// Triggers only: the event's conversation is on one of these channels.
    Channel(Vec<ChannelKind>),
    /// Triggers only: … in one of these inboxes.
    Inbox(Vec<ChannelAccountId>),
    /// Triggers only: … at one of these priorities.
    Priority(Vec<Priority>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Messages and calls from the customer, on one channel or any.
    Inbound(Option<ChannelKind>),
    /// Inbound calls nobody answered (missed, or sent to voicemail).
    MissedCalls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Cmp {
    fn parse(op: &str) -> Option<Self> {
        Some(match op {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            _ => return None,
        })
    }

    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Self::Eq => ordering == Equal,
            Self::Ne => ordering != Equal,
            Self::Gt => ordering == Greater,
            Self::Gte => ordering != Less,
            Self::Lt => ordering == Less,
            Self::Lte => ordering != Greater,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttributeTest {
    Number(Cmp, f64),
    Date(Cmp, Date),
    Text(Cmp, String),
    Boolean(bool),
    OneOf(Vec<String>),
    /// A date attribute in the last `n` days (today included).
    WithinDays(u32),
    /// A date attribute more than `n` days ago.
    OlderThanDays(u32),
    Set,
    Unset,
}

/// What a rule is evaluated against.
pub struct Facts<'a> {
    pub today: Date,
    /// The moment the rule is evaluated for: now for a segment; for a trigger, when its event
    /// happened, so "the third missed call" is the third, even if all three are handled later.
    pub now: OffsetDateTime,
    pub attributes: &'a Map<String, Value>,
    /// The contact's inbound touchpoints, newest first, as far back as the rule looks.
    pub inbound: &'a [Touchpoint],
    pub segments: &'a HashSet<SegmentId>,
    /// The event's conversation, for triggers.
    pub conversation: Option<&'a Conversation>,
}

/// One inbound touchpoint, as segments see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Touchpoint {
    pub channel: ChannelKind,
    pub at: OffsetDateTime,
    pub missed_call: bool,
}

impl Rule {
    /// Parses `value` in `scope`, checking attribute names and types against `definitions`.
    pub fn parse(value: &Value, scope: RuleScope, definitions: &[AttributeDefinition]) -> Result<Self, RuleError> {
        let mut parser = Parser {
            scope,
            definitions,
            conditions: 0,
        };
        parser.rule(value, "rule")
    }

    pub fn holds(&self, facts: &Facts<'_>) -> bool {
        match self {
            Self::All(rules) => rules.iter().all(|r| r.holds(facts)),
            Self::Any(rules) => rules.iter().any(|r| r.holds(facts)),
            Self::Not(rule) => !rule.holds(facts),
            Self::Is(condition) => condition.holds(facts),
        }
    }

    /// How many days of activity the rule looks back over (0: none).
    pub fn days_of_activity(&self) -> u32 {
        self.conditions()
            .into_iter()
            .map(|c| match c {
                Condition::Activity { days, .. } | Condition::ChannelsUsed { days, .. } => *days,
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }

    /// Whether the rule's truth can change with the passing of time alone (an activity
    /// window, a date compared with today), so members must be re-checked now and then.
    pub fn depends_on_time(&self) -> bool {
        self.conditions().into_iter().any(|c| {
            matches!(
                c,
                Condition::Activity { .. }
                    | Condition::ChannelsUsed { .. }
                    | Condition::Attribute {
                        test: AttributeTest::WithinDays(_) | AttributeTest::OlderThanDays(_),
                        ..
                    }
            )
        })
    }

    fn conditions(&self) -> Vec<&Condition> {
        match self {
            Self::All(rules) | Self::Any(rules) => rules.iter().flat_map(Rule::conditions).collect(),
            Self::Not(rule) => rule.conditions(),
            Self::Is(condition) => vec![condition],
        }
    }
}

impl Condition {
    fn holds(&self, facts: &Facts<'_>) -> bool {
        match self {
            Self::Attribute { key, test } => test.holds(facts.attributes.get(key), facts.today),
            Self::Activity {
                counted,
                days,
                cmp,
                count,
            } => {
                let since = facts.now - Duration::days(i64::from(*days));
                let n = facts
                    .inbound
                    .iter()
                    .filter(|t| t.at > since && t.at <= facts.now)
                    .filter(|t| match counted {
                        Counted::Inbound(None) => true,
                        Counted::Inbound(Some(channel)) => t.channel == *channel,
                        Counted::MissedCalls => t.missed_call,
                    })
                    .count();
                cmp.holds((n as u64).cmp(&u64::from(*count)))
            }
            Self::ChannelsUsed { channels, days } => {
                let since = facts.now - Duration::days(i64::from(*days));
                channels.iter().all(|c| {
                    facts
                        .inbound
                        .iter()
                        .any(|t| t.at > since && t.at <= facts.now && t.channel == *c)
                })
            }
            Self::InSegment(id) => facts.segments.contains(id),
            Self::Channel(channels) => facts.conversation.is_some_and(|c| channels.contains(&c.channel)),
            Self::Inbox(inboxes) => facts
                .conversation
                .is_some_and(|c| inboxes.contains(&c.channel_account_id)),
            Self::Priority(priorities) => facts.conversation.is_some_and(|c| priorities.contains(&c.priority)),
        }
    }
}

impl AttributeTest {
    fn holds(&self, value: Option<&Value>, today: Date) -> bool {
        let date = || value.and_then(Value::as_str).and_then(parse_date);
        match self {
            Self::Set => value.is_some(),
            Self::Unset => value.is_none(),
            Self::Number(cmp, expected) => value
                .and_then(Value::as_f64)
                .and_then(|v| v.partial_cmp(expected))
                .is_some_and(|o| cmp.holds(o)),
            Self::Date(cmp, expected) => date().is_some_and(|d| cmp.holds(d.cmp(expected))),
            Self::Text(cmp, expected) => value
                .and_then(Value::as_str)
                .is_some_and(|v| cmp.holds(v.cmp(expected.as_str()))),
            Self::Boolean(expected) => value.and_then(Value::as_bool) == Some(*expected),
            Self::OneOf(options) => value
                .and_then(Value::as_str)
                .is_some_and(|v| options.iter().any(|o| o == v)),
            Self::WithinDays(n) => date().is_some_and(|d| d <= today && d >= today - Duration::days(i64::from(*n))),
            Self::OlderThanDays(n) => date().is_some_and(|d| d < today - Duration::days(i64::from(*n))),
        }
    }
}

fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

struct Parser<'a> {
    scope: RuleScope,
    definitions: &'a [AttributeDefinition],
    conditions: usize,
}

impl Parser<'_> {
    fn rule(&mut self, value: &Value, path: &str) -> Result<Rule, RuleError> {
        let Some(object) = value.as_object() else {
            return fail(path, "must be an object such as {\"all\": [...]} or a condition");
        };
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return fail(path, format!("a rule has at most {MAX_CONDITIONS} parts"));
        }
        let combinator = ["all", "any", "not"].into_iter().find(|k| object.contains_key(*k));
        if let Some(key) = combinator {
            only_keys(object, &[key], path)?;
            let inner = &object[key];
            let inner_path = format!("{path}.{key}");
            if key == "not" {
                return Ok(Rule::Not(Box::new(self.rule(inner, &inner_path)?)));
            }
            let Some(items) = inner.as_array().filter(|items| !items.is_empty()) else {
                return fail(&inner_path, "must be a non-empty list of rules");
            };
            let rules = items
                .iter()
                .enumerate()
                .map(|(i, item)| self.rule(item, &format!("{inner_path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(if key == "all" {
                Rule::All(rules)
            } else {
                Rule::Any(rules)
            });
        }
        self.condition(object, path).map(Rule::Is)
    }

    fn condition(&self, object: &Map<String, Value>, path: &str) -> Result<Condition, RuleError> {
        if object.contains_key("attribute") {
            return self.attribute(object, path);
        }
        if object.contains_key("activity") {
            only_keys(object, &["activity", "channel", "days", "op", "value"], path)?;
            let counted = match (text(object, "activity", path)?, object.get("channel")) {
                ("inbound", None) => Counted::Inbound(None),
                ("inbound", Some(channel)) => Counted::Inbound(Some(channel_of(channel, &format!("{path}.channel"))?)),
                ("missed_calls", None) => Counted::MissedCalls,
                ("missed_calls", Some(_)) => return fail(&format!("{path}.channel"), "missed calls are all on voice"),
                (other, _) => {
                    return fail(
                        &format!("{path}.activity"),
                        format!("unknown activity {other:?}; expected inbound or missed_calls"),
                    );
                }
            };
            let cmp = cmp_of(object, path)?;
            let count = whole(object.get("value"), &format!("{path}.value"), u32::MAX)?;
            return Ok(Condition::Activity {
                counted,
                days: days(object, path)?,
                cmp,
                count,
            });
        }
        if let Some(channels) = object.get("channels_used") {
            only_keys(object, &["channels_used", "days"], path)?;
            let channels = list(channels, &format!("{path}.channels_used"), channel_of)?;
            return Ok(Condition::ChannelsUsed {
                channels,
                days: days(object, path)?,
            });
        }
        let trigger_only = ["segment", "channel", "inbox", "priority"]
            .into_iter()
            .find(|k| object.contains_key(*k));
        match (trigger_only, self.scope) {
            (Some(key), RuleScope::Segment) => fail(
                &format!("{path}.{key}"),
                "a segment's rule speaks of the contact only; this condition belongs in a trigger",
            ),
            (Some(key), RuleScope::Trigger) => {
                only_keys(object, &[key], path)?;
                let value = &object[key];
                let at = format!("{path}.{key}");
                Ok(match key {
                    "segment" => Condition::InSegment(id_of(value, &at, "segment id")?),
                    "channel" => Condition::Channel(list(value, &at, channel_of)?),
                    "inbox" => Condition::Inbox(list(value, &at, |v, p| id_of(v, p, "inbox id"))?),
                    _ => Condition::Priority(list(value, &at, |v, p| {
                        parsed(v, p, "a priority: low, normal, high or urgent")
                    })?),
                })
            }
            (None, _) => {
                let known = match self.scope {
                    RuleScope::Segment => "all, any, not, attribute, activity or channels_used",
                    RuleScope::Trigger => {
                        "all, any, not, attribute, activity, channels_used, segment, channel, inbox or priority"
                    }
                };
                fail(path, format!("not a condition; expected one of {known}"))
            }
        }
    }

    fn attribute(&self, object: &Map<String, Value>, path: &str) -> Result<Condition, RuleError> {
        let key = text(object, "attribute", path)?;
        let Some(definition) = self.definitions.iter().find(|d| d.key == key) else {
            return fail(&format!("{path}.attribute"), format!("no attribute {key:?} is defined"));
        };
        let op = text(object, "op", path)?;
        let op_path = format!("{path}.op");
        let value_path = format!("{path}.value");
        let value = object.get("value");
        let unary = matches!(op, "set" | "unset");
        only_keys(
            object,
            if unary {
                &["attribute", "op"]
            } else {
                &["attribute", "op", "value"]
            },
            path,
        )?;
        let test = match (definition.kind, op) {
            (_, "set") => AttributeTest::Set,
            (_, "unset") => AttributeTest::Unset,
            (AttributeKind::Number, op) => {
                let cmp = Cmp::parse(op).ok_or_else(|| bad_op(&op_path, op, "eq, ne, gt, gte, lt, lte, set, unset"))?;
                let Some(n) = value.and_then(Value::as_f64) else {
                    return fail(&value_path, "must be a number");
                };
                AttributeTest::Number(cmp, n)
            }
            (AttributeKind::Date, "within_days") => AttributeTest::WithinDays(whole(value, &value_path, MAX_DAYS)?),
            (AttributeKind::Date, "older_than_days") => {
                AttributeTest::OlderThanDays(whole(value, &value_path, 36_600)?)
            }
            (AttributeKind::Date, op) => {
                let cmp = Cmp::parse(op).ok_or_else(|| {
                    bad_op(
                        &op_path,
                        op,
                        "eq, ne, gt, gte, lt, lte, within_days, older_than_days, set, unset",
                    )
                })?;
                let Some(date) = value.and_then(Value::as_str).and_then(parse_date) else {
                    return fail(&value_path, "must be a date, YYYY-MM-DD");
                };
                AttributeTest::Date(cmp, date)
            }
            (AttributeKind::Text, op @ ("eq" | "ne")) => {
                let Some(s) = value.and_then(Value::as_str) else {
                    return fail(&value_path, "must be a string");
                };
                AttributeTest::Text(Cmp::parse(op).unwrap_or(Cmp::Eq), s.to_owned())
            }
            (AttributeKind::Text, op) => return Err(bad_op(&op_path, op, "eq, ne, set, unset")),
            (AttributeKind::Boolean, "eq") => match value.and_then(Value::as_bool) {
                Some(b) => AttributeTest::Boolean(b),
                None => return fail(&value_path, "must be true or false"),
            },
            (AttributeKind::Boolean, op) => return Err(bad_op(&op_path, op, "eq, set, unset")),
            (AttributeKind::List, op @ ("eq" | "in")) => {
                let options = match (op, value) {
                    ("eq", Some(Value::String(s))) => vec![s.clone()],
                    ("in", Some(v @ Value::Array(_))) => list(v, &value_path, |v, p| match v.as_str() {
                        Some(s) => Ok(s.to_owned()),
                        None => fail(p, "must be a string"),
                    })?,
                    _ => {
                        return fail(
                            &value_path,
                            if op == "eq" {
                                "must be a string"
                            } else {
                                "must be a list"
                            },
                        );
                    }
                };
                if let Some(unknown) = options.iter().find(|o| !definition.options.contains(o)) {
                    return fail(
                        &value_path,
                        format!("{unknown:?} is not one of {}", definition.options.join(", ")),
                    );
                }
                AttributeTest::OneOf(options)
            }
            (AttributeKind::List, op) => return Err(bad_op(&op_path, op, "eq, in, set, unset")),
        };
        Ok(Condition::Attribute {
            key: key.to_owned(),
            test,
        })
    }
}

fn bad_op(path: &str, op: &str, expected: &str) -> RuleError {
    RuleError {
        path: path.to_owned(),
        reason: format!("unknown operator {op:?} for this attribute; expected one of {expected}"),
    }
}

fn only_keys(object: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), RuleError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => fail(
            &format!("{path}.{extra}"),
            format!("unexpected here; this part takes {}", allowed.join(", ")),
        ),
        None => Ok(()),
    }
}

fn text<'v>(object: &'v Map<String, Value>, key: &str, path: &str) -> Result<&'v str, RuleError> {
    match object.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => fail(&format!("{path}.{key}"), "must be a string"),
        None => fail(&format!("{path}.{key}"), "is required"),
    }
}

fn cmp_of(object: &Map<String, Value>, path: &str) -> Result<Cmp, RuleError> {
    let op = text(object, "op", path)?;
    Cmp::parse(op).ok_or_else(|| bad_op(&format!("{path}.op"), op, "eq, ne, gt, gte, lt, lte"))
}

fn whole(value: Option<&Value>, path: &str, max: u32) -> Result<u32, RuleError> {
    match value.and_then(Value::as_u64) {
        Some(n) if n <= u64::from(max) => Ok(n as u32),
        _ => fail(path, format!("must be a whole number from 0 to {max}")),
    }
}

fn days(object: &Map<String, Value>, path: &str) -> Result<u32, RuleError> {
    match object.get("days").and_then(Value::as_u64) {
        Some(n @ 1..) if n <= u64::from(MAX_DAYS) => Ok(n as u32),
        _ => fail(
            &format!("{path}.days"),
            format!("must be a whole number of days from 1 to {MAX_DAYS}"),
        ),
    }
}

fn list<T>(
    value: &Value,
    path: &str,
    item: impl Fn(&Value, &str) -> Result<T, RuleError>,
) -> Result<Vec<T>, RuleError> {
    match value.as_array() {
        Some(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, v)| item(v, &format!("{path}[{i}]")))
            .collect(),
        _ => fail(path, "must be a non-empty list"),
    }
}

fn parsed<T: std::str::FromStr>(value: &Value, path: &str, expected: &str) -> Result<T, RuleError> {
    match value.as_str().map(str::parse) {
        Some(Ok(v)) => Ok(v),
        _ => fail(path, format!("must be {expected}")),
    }
}

fn channel_of(value: &Value, path: &str) -> Result<ChannelKind, RuleError> {
    parsed(value, path, "a channel: email, chat, sms, voice or api")
}

fn id_of<T: std::str::FromStr>(value: &Value, path: &str, what: &str) -> Result<T, RuleError> {
    parsed(value, path, &format!("a {what}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn definitions() -> Vec<AttributeDefinition> {
        serde_json::from_value(json!([
            {"key": "lifetime_value", "label": "Lifetime value", "kind": "number"},
            {"key": "plan", "label": "Plan", "kind": "list", "options": ["basic", "gold"]},
            {"key": "last_order", "label": "Last order", "kind": "date"},
            {"key": "vip", "label": "VIP", "kind": "boolean"},
        ]))
        .unwrap()
    }

    fn rule(v: Value) -> Rule {
        Rule::parse(&v, RuleScope::Segment, &definitions()).unwrap()
    }

    fn error(v: Value, scope: RuleScope) -> String {
        Rule::parse(&v, scope, &definitions()).unwrap_err().to_string()
    }

    fn at(days_ago: i64, channel: ChannelKind, missed_call: bool) -> Touchpoint {
        Touchpoint {
            channel,
            at: now() - Duration::days(days_ago) + Duration::minutes(1),
            missed_call,
        }
    }

    fn holds(rule: &Rule, attributes: Value, inbound: &[Touchpoint]) -> bool {
        let now = now();
        rule.holds(&Facts {
            today: now.date(),
            now,
            attributes: attributes.as_object().unwrap(),
            inbound,
            segments: &HashSet::new(),
            conversation: None,
        })
    }

    #[test]
    fn attributes_compare_by_their_type() {
        let vip = rule(json!({"all": [
            {"attribute": "lifetime_value", "op": "gte", "value": 5000},
            {"attribute": "plan", "op": "in", "value": ["gold"]},
        ]}));
        assert!(holds(&vip, json!({"lifetime_value": 5000, "plan": "gold"}), &[]));
        assert!(!holds(&vip, json!({"lifetime_value": 4999.5, "plan": "gold"}), &[]));
        assert!(
            !holds(&vip, json!({"lifetime_value": 9000}), &[]),
            "a missing value matches nothing"
        );

        let today = now().date();
        let recent = rule(json!({"attribute": "last_order", "op": "within_days", "value": 30}));
        let date = |d: i64| json!({"last_order": (today - Duration::days(d)).to_string()});
        assert!(holds(&recent, date(30), &[]));
        assert!(!holds(&recent, date(31), &[]));
        assert!(
            !holds(&recent, date(-1), &[]),
            "a date in the future is not within the last days"
        );
        let lapsed = rule(json!({"not": {"attribute": "last_order", "op": "within_days", "value": 30}}));
        assert!(holds(&lapsed, date(31), &[]));
    }

    #[test]
    fn activity_counts_inside_the_window() {
        let frequent = rule(json!({"activity": "inbound", "days": 7, "op": "gt", "value": 3}));
        let four = [
            ChannelKind::Email,
            ChannelKind::Sms,
            ChannelKind::Chat,
            ChannelKind::Sms,
        ]
        .map(|c| at(1, c, false));
        assert!(holds(&frequent, json!({}), &four));
        assert!(!holds(&frequent, json!({}), &four[..3]));
        let old = [at(1, ChannelKind::Sms, false), at(8, ChannelKind::Sms, false)];
        let two = rule(json!({"activity": "inbound", "channel": "sms", "days": 7, "op": "eq", "value": 2}));
        assert!(
            !holds(&two, json!({}), &old),
            "a touchpoint 8 days ago is outside a 7-day window"
        );

        let missed = rule(json!({"activity": "missed_calls", "days": 7, "op": "gte", "value": 3}));
        let calls = [true, true, false, true].map(|m| at(2, ChannelKind::Voice, m));
        assert!(holds(&missed, json!({}), &calls));
        assert!(!holds(&missed, json!({}), &calls[..3]));

        let mix = rule(json!({"channels_used": ["sms", "email"], "days": 90}));
        assert!(holds(&mix, json!({}), &four));
        assert!(!holds(&mix, json!({}), &old));
        assert!(mix.depends_on_time() && mix.days_of_activity() == 90);
        assert!(!rule(json!({"attribute": "vip", "op": "eq", "value": true})).depends_on_time());
    }

    #[test]
    fn a_rule_that_does_not_parse_names_the_place() {
        use RuleScope::*;
        assert_eq!(
            error(
                json!({"all": [{"attribute": "lifetime_value", "op": "gtee", "value": 1}]}),
                Segment
            ),
            "rule.all[0].op: unknown operator \"gtee\" for this attribute; expected one of eq, ne, gt, gte, lt, lte, set, unset"
        );
        assert_eq!(
            error(json!({"attribute": "shoe_size", "op": "eq", "value": 1}), Segment),
            "rule.attribute: no attribute \"shoe_size\" is defined"
        );
        assert_eq!(
            error(
                json!({"attribute": "lifetime_value", "op": "gte", "value": "lots"}),
                Segment
            ),
            "rule.value: must be a number"
        );
        assert_eq!(
            error(json!({"attribute": "plan", "op": "eq", "value": "platinum"}), Segment),
            "rule.value: \"platinum\" is not one of basic, gold"
        );
        assert_eq!(
            error(json!({"any": []}), Segment),
            "rule.any: must be a non-empty list of rules"
        );
        assert_eq!(
            error(
                json!({"activity": "inbound", "days": 0, "op": "gt", "value": 3}),
                Segment
            ),
            "rule.days: must be a whole number of days from 1 to 366"
        );
        assert_eq!(
            error(json!({"channel": ["sms"]}), Segment),
            "rule.channel: a segment's rule speaks of the contact only; this condition belongs in a trigger"
        );
        assert_eq!(
            error(json!({"channel": ["fax"]}), Trigger),
            "rule.channel[0]: must be a channel: email, chat, sms, voice or api"
        );
        assert_eq!(
            error(
                json!({"attribute": "vip", "op": "eq", "value": true, "extra": 1}),
                Segment
            ),
            "rule.extra: unexpected here; this part takes attribute, op, value"
        );
        assert!(error(json!({"lifetime": 1}), Segment).starts_with("rule: not a condition"));
        assert!(error(json!("vip"), Segment).starts_with("rule: must be an object"));
        let deep = (0..70).fold(
            json!({"attribute": "vip", "op": "set"}),
            |inner, _| json!({"not": inner}),
        );
        assert!(error(deep, Segment).contains("at most 64 parts"));
    }

    #[test]
    fn triggers_test_the_event_conversation() {
        let r = Rule::parse(
            &json!({"all": [{"channel": ["voice"]}, {"priority": ["high", "urgent"]}]}),
            RuleScope::Trigger,
            &definitions(),
        )
        .unwrap();
        assert_eq!(
            r,
            Rule::All(vec![
                Rule::Is(Condition::Channel(vec![ChannelKind::Voice])),
                Rule::Is(Condition::Priority(vec![Priority::High, Priority::Urgent])),
            ])
        );
    }
}

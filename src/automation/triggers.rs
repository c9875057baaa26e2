//! Triggers: when <event> and <conditions> then <actions>, parsed from the admin's JSON.
//!
//! ```json
//! {"name": "Third missed call", "event": "call_missed",
//!  "conditions": {"activity": "missed_calls", "days": 7, "op": "gte", "value": 3},
//!  "actions": [{"type": "assign", "agent_id": "…"},
//!              {"type": "webhook", "url": "https://crm.example/hooks/callback", "secret": "…"}]}
//! ```

use serde_json::Value;

use super::TriggerEvent;
use super::rules::{Rule, RuleError, RuleScope};
use super::template;
use crate::attributes::AttributeDefinition;
use crate::domain::*;

/// Most actions in one trigger.
const MAX_ACTIONS: usize = 10;

/// Why a trigger was refused, naming the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct TriggerError {
    pub field: String,
    pub reason: String,
}

impl From<RuleError> for TriggerError {
    fn from(e: RuleError) -> Self {
        Self {
            field: e.path.replacen("rule", "conditions", 1),
            reason: e.reason,
        }
    }
}

fn fail<T>(field: impl Into<String>, reason: impl Into<String>) -> Result<T, TriggerError> {
    Err(TriggerError {
        field: field.into(),
        reason: reason.into(),
    })
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    SetPriority(Priority),
    Assign(AgentId),
    AddLabel(crate::store::Label),
    /// POST the event as JSON, signed with HMAC-SHA256 when a secret is set.
    Webhook {
        url: reqwest::Url,
        secret: Option<String>,
    },
    /// A reply on the conversation's channel, from a template.
    Reply {
        template: String,
    },
}

impl Action {
    /// Whether the action needs the event's conversation.
    fn acts_on_conversation(&self) -> bool {
        !matches!(self, Self::Webhook { .. })
    }
}

#[derive(Debug, Clone)]
pub struct Trigger {
    pub id: TriggerId,
    pub name: String,
    pub event: TriggerEvent,
    /// For `segment_entered`: the segment whose entry fires it.
    pub segment: Option<SegmentId>,
    /// `None`: every event of the kind.
    pub conditions: Option<Rule>,
    pub actions: Vec<Action>,
    pub enabled: bool,
}

impl Trigger {
    /// Parses a trigger as an admin wrote it.
    pub fn parse(spec: &Value, definitions: &[AttributeDefinition]) -> Result<Self, TriggerError> {
        let Some(object) = spec.as_object() else {
            return fail("trigger", "must be an object");
        };
        if let Some(extra) = object
            .keys()
            .find(|k| !["name", "event", "segment_id", "conditions", "actions", "enabled"].contains(&k.as_str()))
        {
            return fail(extra.clone(), "unknown field");
        }
        let name = match object.get("name").and_then(Value::as_str).map(str::trim) {
            Some(n) if !n.is_empty() && n.chars().count() <= 100 => n.to_owned(),
            _ => return fail("name", "must be 1 to 100 characters"),
        };
        let event: TriggerEvent = match object.get("event").and_then(Value::as_str).map(str::parse) {
            Some(Ok(e)) => e,
            _ => {
                let known: Vec<&str> = TriggerEvent::ALL.iter().map(|e| e.as_str()).collect();
                return fail("event", format!("must be one of {}", known.join(", ")));
            }
        };
        let segment = match (event, object.get("segment_id").filter(|v| !v.is_null())) {
            (TriggerEvent::SegmentEntered, Some(v)) => match v.as_str().map(str::parse) {
                Some(Ok(id)) => Some(id),
                _ => return fail("segment_id", "must be a segment id"),
            },
            (TriggerEvent::SegmentEntered, None) => return fail("segment_id", "segment_entered needs the segment"),
            (_, Some(_)) => return fail("segment_id", "only segment_entered triggers name a segment"),
            (_, None) => None,
        };
        let conditions = match object.get("conditions").filter(|v| !v.is_null()) {
            Some(rule) => Some(Rule::parse(rule, RuleScope::Trigger, definitions)?),
            None => None,
        };
        let actions = match object.get("actions").and_then(Value::as_array) {
            Some(list) if !list.is_empty() && list.len() <= MAX_ACTIONS => list
                .iter()
                .enumerate()
                .map(|(i, a)| action(a, &format!("actions[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            _ => return fail("actions", format!("must be a list of 1 to {MAX_ACTIONS} actions")),
        };
        if event == TriggerEvent::SegmentEntered
            && let Some(i) = actions.iter().position(Action::acts_on_conversation)
        {
            return fail(
                format!("actions[{i}]"),
                "segment_entered is about a contact, not a conversation; only webhook actions apply",
            );
        }
        let enabled = match object.get("enabled") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return fail("enabled", "must be true or false"),
        };
        Ok(Self {
            id: TriggerId::new(),
            name,
            event,
            segment,
            conditions,
            actions,
            enabled,
        })
    }

    /// Refuses a webhook aimed at the hub itself: the hub's answer to it would raise the event
    /// again, and the trigger would call itself for ever. `own` are the hub's origins (its
    /// public URL and its listening address).
    pub fn check_loops(&self, own: &[reqwest::Url]) -> Result<(), TriggerError> {
        for (i, action) in self.actions.iter().enumerate() {
            if let Action::Webhook { url, .. } = action
                && own
                    .iter()
                    .any(|o| o.host_str() == url.host_str() && o.port_or_known_default() == url.port_or_known_default())
            {
                return fail(
                    format!("actions[{i}].url"),
                    "points at this hub: the trigger would fire itself in a loop",
                );
            }
        }
        Ok(())
    }

    /// The days of activity its conditions look back over.
    pub fn days_of_activity(&self) -> u32 {
        self.conditions.as_ref().map_or(0, Rule::days_of_activity)
    }
}

fn action(value: &Value, field: &str) -> Result<Action, TriggerError> {
    let kind = value.get("type").and_then(Value::as_str).unwrap_or_default();
    let allowed: &[&str] = match kind {
        "set_priority" => &["type", "priority"],
        "assign" => &["type", "agent_id"],
        "add_label" => &["type", "label"],
        "webhook" => &["type", "url", "secret"],
        "reply" => &["type", "template"],
        _ => {
            return fail(
                format!("{field}.type"),
                "must be set_priority, assign, add_label, webhook or reply",
            );
        }
    };
    if let Some(extra) = value
        .as_object()
        .and_then(|o| o.keys().find(|k| !allowed.contains(&k.as_str())))
    {
        return fail(format!("{field}.{extra}"), format!("unknown field for a {kind} action"));
    }
    let text = |key: &str| value.get(key).and_then(Value::as_str);
    Ok(match kind {
        "set_priority" => match text("priority").map(str::parse) {
            Some(Ok(p)) => Action::SetPriority(p),
            _ => return fail(format!("{field}.priority"), "must be low, normal, high or urgent"),
        },
        "assign" => match text("agent_id").map(str::parse) {
            Some(Ok(id)) => Action::Assign(id),
            _ => return fail(format!("{field}.agent_id"), "must be an agent id"),
        },
        "add_label" => match text("label").map(crate::store::Label::parse) {
            Some(Ok(label)) => Action::AddLabel(label),
            Some(Err(reason)) => return fail(format!("{field}.label"), reason),
            None => return fail(format!("{field}.label"), "must be a string"),
        },
        "webhook" => {
            let url = match text("url").map(reqwest::Url::parse) {
                Some(Ok(url)) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => url,
                _ => return fail(format!("{field}.url"), "must be an http or https URL"),
            };
            if !url.username().is_empty() || url.password().is_some() {
                return fail(format!("{field}.url"), "must not carry credentials; use the secret");
            }
            let secret = match value.get("secret") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if (16..=200).contains(&s.len()) => Some(s.clone()),
                Some(_) => return fail(format!("{field}.secret"), "must be 16 to 200 characters"),
            };
            Action::Webhook { url, secret }
        }
        _ => {
            let template = text("template").unwrap_or_default();
            template::check(template).map_err(|reason| TriggerError {
                field: format!("{field}.template"),
                reason,
            })?;
            Action::Reply {
                template: template.to_owned(),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Result<Trigger, String> {
        Trigger::parse(&v, &[]).map_err(|e| e.to_string())
    }

    #[test]
    fn a_trigger_parses_with_its_actions() {
        let agent = AgentId::new();
        let t = parse(json!({
            "name": "Third missed call", "event": "call_missed",
            "conditions": {"activity": "missed_calls", "days": 7, "op": "gte", "value": 3},
            "actions": [{"type": "assign", "agent_id": agent.to_string()},
                        {"type": "webhook", "url": "https://crm.example/hook", "secret": "0123456789abcdef"}],
        }))
        .unwrap();
        assert_eq!(t.event, TriggerEvent::CallMissed);
        assert_eq!(t.actions[0], Action::Assign(agent));
        assert_eq!(t.days_of_activity(), 7);
        assert!(t.enabled);
    }

    #[test]
    fn bad_triggers_name_the_field() {
        let base = |actions: Value| json!({"name": "t", "event": "interaction_received", "actions": actions});
        assert_eq!(
            parse(json!({"name": "t", "event": "order_placed", "actions": []})).unwrap_err(),
            "event: must be one of interaction_received, call_missed, conversation_resolved, sla_breached, segment_entered"
        );
        assert_eq!(
            parse(base(json!([{"type": "webhook", "url": "ftp://x/"}]))).unwrap_err(),
            "actions[0].url: must be an http or https URL"
        );
        assert_eq!(
            parse(base(json!([{"type": "webhook", "url": "https://u:p@x/"}]))).unwrap_err(),
            "actions[0].url: must not carry credentials; use the secret"
        );
        assert!(
            parse(base(json!([{"type": "reply", "template": "Hi {{contact.nam}}"}])))
                .unwrap_err()
                .starts_with("actions[0].template: unknown placeholder")
        );
        assert_eq!(
            parse(base(json!([{"type": "close"}]))).unwrap_err(),
            "actions[0].type: must be set_priority, assign, add_label, webhook or reply"
        );
        assert_eq!(
            parse(json!({"name": "t", "event": "interaction_received", "conditions": {"channel": "sms"}, "actions": [{"type": "add_label", "label": "x"}]})).unwrap_err(),
            "conditions.channel: must be a non-empty list"
        );
        assert_eq!(
            parse(json!({"name": "t", "event": "segment_entered", "segment_id": SegmentId::new().to_string(), "actions": [{"type": "add_label", "label": "x"}]})).unwrap_err(),
            "actions[0]: segment_entered is about a contact, not a conversation; only webhook actions apply"
        );
    }

    #[test]
    fn a_webhook_back_at_the_hub_is_refused_as_a_loop() {
        let t = parse(json!({"name": "t", "event": "interaction_received",
            "actions": [{"type": "webhook", "url": "http://127.0.0.1:8080/api/v1/webhooks/sms/abc"}]}))
        .unwrap();
        let own = [reqwest::Url::parse("http://127.0.0.1:8080/").unwrap()];
        assert_eq!(
            t.check_loops(&own).unwrap_err().to_string(),
            "actions[0].url: points at this hub: the trigger would fire itself in a loop"
        );
        let elsewhere = [reqwest::Url::parse("http://127.0.0.1:9090/").unwrap()];
        assert!(t.check_loops(&elsewhere).is_ok());
    }
}

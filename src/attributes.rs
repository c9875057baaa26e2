//! Custom attributes on contacts: typed definitions an admin manages (text, number, date,
//! boolean, list), and the validation every value passes before it is stored, whether it
//! comes from an agent, the API or a CRM's upsert.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

crate::domain::named_enum!(
    /// The type of an attribute's values.
    AttributeKind, "attribute kind" {
        Text = "text",
        Number = "number",
        /// A calendar date, `YYYY-MM-DD`.
        Date = "date",
        Boolean = "boolean",
        /// One of the definition's options.
        List = "list",
    }
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeDefinition {
    /// `lifetime_value`, `plan`: lower case letters, digits and `_`, starting with a letter.
    pub key: String,
    pub label: String,
    pub kind: AttributeKind,
    /// The allowed values of a list attribute.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// A bad definition or value, naming the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct AttributeError {
    pub field: String,
    pub reason: String,
}

fn error(field: impl Into<String>, reason: impl Into<String>) -> AttributeError {
    AttributeError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Longest text value.
pub const MAX_TEXT: usize = 1_000;

impl AttributeDefinition {
    /// Checks a definition as an admin wrote it.
    pub fn check(&self) -> Result<(), AttributeError> {
        let mut chars = self.key.chars();
        let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && self.key.len() <= 40;
        if !well_formed {
            return Err(error(
                "key",
                "1 to 40 lower-case letters, digits or '_', starting with a letter",
            ));
        }
        if self.label.trim().is_empty() || self.label.chars().count() > 100 {
            return Err(error("label", "must be 1 to 100 characters"));
        }
        match (self.kind, self.options.is_empty()) {
            (AttributeKind::List, true) => Err(error("options", "a list attribute needs its options")),
            (AttributeKind::List, false) if self.options.iter().any(|o| o.trim().is_empty()) => {
                Err(error("options", "options must not be empty"))
            }
            (kind, false) if kind != AttributeKind::List => Err(error("options", "only list attributes have options")),
            _ => Ok(()),
        }
    }

    /// The value as stored, or why it does not fit.
    fn value(&self, value: &Value, field: &str) -> Result<Value, AttributeError> {
        let wrong = |expected: &str| error(field, format!("must be {expected}"));
        match (self.kind, value) {
            (AttributeKind::Text, Value::String(s)) if s.chars().count() <= MAX_TEXT => Ok(value.clone()),
            (AttributeKind::Text, Value::String(_)) => Err(error(field, format!("at most {MAX_TEXT} characters"))),
            (AttributeKind::Text, _) => Err(wrong("a string")),
            (AttributeKind::Number, Value::Number(_)) => Ok(value.clone()),
            (AttributeKind::Number, _) => Err(wrong("a number")),
            (AttributeKind::Boolean, Value::Bool(_)) => Ok(value.clone()),
            (AttributeKind::Boolean, _) => Err(wrong("true or false")),
            (AttributeKind::Date, Value::String(s)) => {
                time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
                    .map(|_| value.clone())
                    .map_err(|_| wrong("a date, YYYY-MM-DD"))
            }
            (AttributeKind::Date, _) => Err(wrong("a date, YYYY-MM-DD")),
            (AttributeKind::List, Value::String(s)) if self.options.contains(s) => Ok(value.clone()),
            (AttributeKind::List, _) => Err(wrong(&format!("one of {}", self.options.join(", ")))),
        }
    }
}

/// Applies `changes` (a value per key, `null` to remove) to `current`, checking every value
/// against its definition; nothing is applied unless all of them pass.
pub fn apply(
    definitions: &[AttributeDefinition],
    current: &Map<String, Value>,
    changes: &Map<String, Value>,
    prefix: &str,
) -> Result<Map<String, Value>, AttributeError> {
    let mut next = current.clone();
    for (key, value) in changes {
        let field = format!("{prefix}.{key}");
        let definition = definitions
            .iter()
            .find(|d| d.key == *key)
            .ok_or_else(|| error(&field, "no such attribute; an admin defines attributes first"))?;
        if value.is_null() {
            next.remove(key);
        } else {
            next.insert(key.clone(), definition.value(value, &field)?);
        }
    }
    Ok(next)
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
            {"key": "notes", "label": "Notes", "kind": "text"},
        ]))
        .unwrap()
    }

    fn changes(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn values_are_typed_and_null_removes() {
        let current = changes(json!({"notes": "old"}));
        let next = apply(
            &definitions(),
            &current,
            &changes(json!({"lifetime_value": 5200.5, "plan": "gold", "last_order": "2026-11-02", "vip": true, "notes": null})),
            "attributes",
        )
        .unwrap();
        assert_eq!(
            Value::Object(next),
            json!({"lifetime_value": 5200.5, "plan": "gold", "last_order": "2026-11-02", "vip": true})
        );
    }

    #[test]
    fn a_wrong_type_or_an_unknown_key_names_the_field_and_changes_nothing() {
        let bad = |v: Value| {
            apply(&definitions(), &Map::new(), &changes(v), "attributes")
                .unwrap_err()
                .field
        };
        assert_eq!(bad(json!({"lifetime_value": "mucho"})), "attributes.lifetime_value");
        assert_eq!(bad(json!({"plan": "platinum"})), "attributes.plan");
        assert_eq!(bad(json!({"last_order": "02/11/2026"})), "attributes.last_order");
        assert_eq!(bad(json!({"vip": "yes"})), "attributes.vip");
        assert_eq!(bad(json!({"vip": true, "shoe_size": 42})), "attributes.shoe_size");
    }

    #[test]
    fn definitions_are_checked() {
        let def = |v: Value| {
            serde_json::from_value::<AttributeDefinition>(v)
                .unwrap()
                .check()
                .map_err(|e| e.field)
        };
        assert_eq!(
            def(json!({"key": "Plan", "label": "x", "kind": "text"})),
            Err("key".into())
        );
        assert_eq!(
            def(json!({"key": "plan", "label": "x", "kind": "list"})),
            Err("options".into())
        );
        assert_eq!(
            def(json!({"key": "plan", "label": "x", "kind": "text", "options": ["a"]})),
            Err("options".into())
        );
        assert_eq!(
            def(json!({"key": "plan", "label": " ", "kind": "text"})),
            Err("label".into())
        );
        assert_eq!(
            def(json!({"key": "plan_2", "label": "Plan", "kind": "list", "options": ["a"]})),
            Ok(())
        );
    }
}

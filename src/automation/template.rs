//! Templated replies: `{{contact.name}}`, `{{contact.first_name}}`, `{{conversation.subject}}`
//! and `{{contact.attributes.KEY}}`, checked when the trigger is saved and filled when it
//! fires. Written by hand: a dozen lines of substitution do not need a template engine, and
//! a closed set of placeholders means a typo is refused instead of sent to a customer.

use serde_json::{Map, Value};

/// Longest template, in characters.
pub const MAX_TEMPLATE: usize = 5_000;

/// The placeholders `template` uses, or the first one that is not known.
pub fn check(template: &str) -> Result<(), String> {
    if template.trim().is_empty() || template.chars().count() > MAX_TEMPLATE {
        return Err(format!("must be 1 to {MAX_TEMPLATE} characters"));
    }
    for name in placeholders(template)? {
        if !known(name) {
            return Err(format!(
                "unknown placeholder {{{{{name}}}}}; use contact.name, contact.first_name, conversation.subject or contact.attributes.KEY"
            ));
        }
    }
    Ok(())
}

fn known(name: &str) -> bool {
    matches!(name, "contact.name" | "contact.first_name" | "conversation.subject")
        || name.strip_prefix("contact.attributes.").is_some_and(|k| !k.is_empty())
}

fn placeholders(template: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or("a placeholder is not closed with }}")?;
        out.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    Ok(out)
}

/// What placeholders are filled from.
pub struct Values<'a> {
    pub contact_name: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub attributes: &'a Map<String, Value>,
}

/// The template with its placeholders filled; an empty value leaves nothing behind.
pub fn fill(template: &str, values: &Values<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        let value = match name {
            "contact.name" => values.contact_name.unwrap_or_default().to_owned(),
            "contact.first_name" => values
                .contact_name
                .and_then(|n| n.split_whitespace().next())
                .unwrap_or_default()
                .to_owned(),
            "conversation.subject" => values.subject.unwrap_or_default().to_owned(),
            other => match other
                .strip_prefix("contact.attributes.")
                .and_then(|k| values.attributes.get(k))
            {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(v) => v.to_string(),
            },
        };
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn placeholders_are_checked_and_filled() {
        assert!(check("Hola {{ contact.first_name }}, plan {{contact.attributes.plan}}").is_ok());
        assert!(check("Hola {{contact.nmae}}").unwrap_err().contains("contact.nmae"));
        assert!(check("Hola {{contact.name").unwrap_err().contains("not closed"));
        assert!(check("  ").is_err());
        let attributes = json!({"plan": "gold", "lifetime_value": 5200})
            .as_object()
            .unwrap()
            .clone();
        let values = Values {
            contact_name: Some("Lucía Pérez"),
            subject: None,
            attributes: &attributes,
        };
        assert_eq!(
            fill(
                "Hola {{ contact.first_name }} ({{contact.attributes.plan}}, {{contact.attributes.lifetime_value}}){{conversation.subject}}{{contact.attributes.none}}.",
                &values
            ),
            "Hola Lucía (gold, 5200)."
        );
    }
}

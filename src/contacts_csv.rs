//! Contacts as CSV, for moving customers in and out of a CRM: `external_id`, `name`, `email`,
//! `phone`, then one column per custom attribute (by key). Importing upserts by `external_id`,
//! so importing a file twice changes nothing; a bad row is reported with its line number and
//! nothing of the file is applied.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::attributes::{AttributeDefinition, AttributeKind};
use crate::domain::*;
use crate::store::{ContactQuery, ContactUpsert, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("line {line}: {reason}")]
    Row { line: usize, reason: String },
    #[error("the header needs an external_id column")]
    NoExternalId,
    #[error("column {0:?} is neither a contact field nor a defined attribute")]
    UnknownColumn(String),
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn row_error(line: usize, reason: impl std::fmt::Display) -> CsvError {
    CsvError::Row {
        line,
        reason: reason.to_string(),
    }
}

/// Reads a contacts file into upserts, checking every cell; the first bad one names its line.
pub fn parse(
    input: impl std::io::Read,
    definitions: &[AttributeDefinition],
    region: Region,
    max_line: usize,
) -> Result<Vec<ContactUpsert>, CsvError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(input);
    let headers: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
    if !headers.iter().any(|h| h == "external_id") {
        return Err(CsvError::NoExternalId);
    }
    for header in &headers {
        let known = ["external_id", "name", "email", "phone"].contains(&header.as_str())
            || definitions.iter().any(|d| d.key == *header);
        if !known {
            return Err(CsvError::UnknownColumn(header.clone()));
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        if record.as_slice().len() > max_line {
            return Err(row_error(line, format!("longer than {max_line} bytes")));
        }
        let mut row = ContactUpsert {
            line: Some(line),
            external_id: String::new(),
            name: None,
            handles: Vec::new(),
            attributes: Map::new(),
        };
        for (header, cell) in headers.iter().zip(record.iter()) {
            if cell.is_empty() {
                continue;
            }
            match header.as_str() {
                "external_id" => row.external_id = cell.to_owned(),
                "name" => row.name = Some(cell.to_owned()),
                "email" => row.handles.push(Handle::Email(
                    EmailAddress::parse(cell).map_err(|e| row_error(line, format!("email: {e}")))?,
                )),
                "phone" => row.handles.push(Handle::Phone(
                    PhoneNumber::parse(cell, region).map_err(|e| row_error(line, format!("phone: {e}")))?,
                )),
                key => {
                    let definition = definitions
                        .iter()
                        .find(|d| d.key == key)
                        .expect("checked with the header");
                    row.attributes
                        .insert(key.to_owned(), cell_value(definition, cell, line)?);
                }
            }
        }
        if row.external_id.is_empty() {
            return Err(row_error(line, "external_id is empty"));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// A cell as the attribute's JSON value; the attribute's own check runs when it is stored.
fn cell_value(definition: &AttributeDefinition, cell: &str, line: usize) -> Result<Value, CsvError> {
    Ok(match definition.kind {
        AttributeKind::Number => cell
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(|n| {
                // Whole numbers stay integers, as they were written.
                cell.parse::<i64>().map(Value::from).unwrap_or(Value::Number(n))
            })
            .ok_or_else(|| row_error(line, format!("{}: {cell:?} is not a number", definition.key)))?,
        AttributeKind::Boolean => match cell.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "sí" | "si" => Value::Bool(true),
            "false" | "no" | "0" => Value::Bool(false),
            _ => {
                return Err(row_error(
                    line,
                    format!("{}: {cell:?} is not true or false", definition.key),
                ));
            }
        },
        AttributeKind::Text | AttributeKind::Date | AttributeKind::List => Value::String(cell.to_owned()),
    })
}

/// Every live contact as CSV, with the columns [`parse`] reads.
pub async fn export(store: &Store, out: impl std::io::Write) -> Result<usize, CsvError> {
    let definitions = store.attribute_definitions().await?;
    let keys: BTreeSet<String> = definitions.iter().map(|d| d.key.clone()).collect();
    let mut writer = csv::Writer::from_writer(out);
    let mut header = vec!["external_id".to_owned(), "name".into(), "email".into(), "phone".into()];
    header.extend(keys.iter().cloned());
    writer.write_record(&header)?;
    let mut after = None;
    let mut count = 0;
    loop {
        let page = store
            .contacts(&ContactQuery {
                name: None,
                limit: 500,
                after,
                accounts: None,
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for contact in &page {
            let first = |kind: HandleKind| {
                contact
                    .handles
                    .iter()
                    .find(|h| h.kind == kind)
                    .map(|h| h.value.clone())
                    .unwrap_or_default()
            };
            let mut record = vec![
                first(HandleKind::External),
                contact.name.clone().unwrap_or_default(),
                first(HandleKind::Email),
                first(HandleKind::Phone),
            ];
            record.extend(keys.iter().map(|k| match contact.attributes.get(k) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            }));
            writer.write_record(&record)?;
            count += 1;
        }
    }
    writer.flush().map_err(csv::Error::from)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definitions() -> Vec<AttributeDefinition> {
        serde_json::from_value(serde_json::json!([
            {"key": "lifetime_value", "label": "LTV", "kind": "number"},
            {"key": "vip", "label": "VIP", "kind": "boolean"},
        ]))
        .unwrap()
    }

    #[test]
    fn rows_parse_with_typed_cells_and_errors_name_the_line() {
        let region = Region::parse("ES").unwrap();
        let ok = "external_id,name,email,phone,lifetime_value,vip\n42,Ana,ana@example.com,600 12 34 56,5200,sí\n43,Luis,,,,\n";
        let rows = parse(ok.as_bytes(), &definitions(), region, 64 * 1024).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].attributes["lifetime_value"], 5200);
        assert_eq!(rows[0].attributes["vip"], true);
        assert_eq!(rows[0].handles.len(), 2);
        assert!(rows[1].attributes.is_empty() && rows[1].handles.is_empty());

        let bad = "external_id,lifetime_value\n1,10\n2,diez\n";
        let error = parse(bad.as_bytes(), &definitions(), region, 64 * 1024).unwrap_err();
        assert_eq!(error.to_string(), "line 3: lifetime_value: \"diez\" is not a number");
        assert!(matches!(
            parse("external_id,shoe_size\n1,42\n".as_bytes(), &definitions(), region, 64 * 1024),
            Err(CsvError::UnknownColumn(c)) if c == "shoe_size"
        ));
        assert!(matches!(
            parse("name\nAna\n".as_bytes(), &definitions(), region, 64 * 1024),
            Err(CsvError::NoExternalId)
        ));
    }
}

//! Attribute definitions: the typed custom fields contacts may carry.

use sqlx::any::AnyRow;

use super::rows::RowExt;
use super::{Store, StoreError, Tx};
use crate::attributes::AttributeDefinition;
use crate::domain::*;

pub(crate) async fn definitions_in(tx: &mut Tx<'_>) -> Result<Vec<AttributeDefinition>, StoreError> {
    sqlx::query("SELECT * FROM attribute_definitions ORDER BY key")
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(definition_from_row)
        .collect()
}

fn definition_from_row(row: &AnyRow) -> Result<AttributeDefinition, StoreError> {
    Ok(AttributeDefinition {
        key: row.text("key")?,
        label: row.text("label")?,
        kind: row.parsed("kind")?,
        options: row.json("options")?,
    })
}

impl Store {
    pub async fn attribute_definitions(&self) -> Result<Vec<AttributeDefinition>, StoreError> {
        sqlx::query("SELECT * FROM attribute_definitions ORDER BY key")
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(definition_from_row)
            .collect()
    }

    /// Saves a definition; a key already defined is a conflict.
    pub async fn create_attribute_definition(&self, definition: &AttributeDefinition) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO attribute_definitions (key, label, kind, options, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(definition.key.clone())
        .bind(definition.label.trim().to_owned())
        .bind(definition.kind.as_str())
        .bind(serde_json::to_string(&definition.options).unwrap_or_else(|_| "[]".into()))
        .bind(to_micros(now()))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "the attribute {} is defined already",
                definition.key
            )));
        }
        tx.commit().await?;
        Ok(())
    }
}

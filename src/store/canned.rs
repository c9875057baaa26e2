//! Canned responses: saved answers an agent inserts into a reply by shortcut.

use serde::Serialize;
use sqlx::any::AnyRow;

use super::rows::RowExt;
use super::{Store, StoreError};
use crate::domain::*;

#[derive(Debug, Clone, Serialize)]
pub struct CannedResponse {
    pub id: CannedResponseId,
    /// What the agent types after `/` in the reply box, e.g. `hola`.
    pub shortcut: String,
    pub title: String,
    /// The text, with placeholders such as `{{contact.name}}`.
    pub body: String,
}

impl Store {
    pub async fn canned_responses(&self) -> Result<Vec<CannedResponse>, StoreError> {
        sqlx::query("SELECT * FROM canned_responses ORDER BY shortcut")
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(canned_from_row)
            .collect()
    }

    /// Saves a canned response; a shortcut already taken is a conflict.
    pub async fn create_canned_response(
        &self,
        shortcut: &str,
        title: &str,
        body: &str,
        by: AgentId,
    ) -> Result<CannedResponse, StoreError> {
        let id = CannedResponseId::new();
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO canned_responses (id, shortcut, title, body, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (shortcut) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(shortcut.to_owned())
        .bind(title.to_owned())
        .bind(body.to_owned())
        .bind(by.to_string())
        .bind(to_micros(now()))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("the shortcut {shortcut:?} is taken")));
        }
        tx.commit().await?;
        Ok(CannedResponse {
            id,
            shortcut: shortcut.to_owned(),
            title: title.to_owned(),
            body: body.to_owned(),
        })
    }

    pub async fn delete_canned_response(&self, id: CannedResponseId) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let deleted = sqlx::query("DELETE FROM canned_responses WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound("canned response"));
        }
        tx.commit().await?;
        Ok(())
    }
}

fn canned_from_row(row: &AnyRow) -> Result<CannedResponse, StoreError> {
    Ok(CannedResponse {
        id: row.parsed("id")?,
        shortcut: row.text("shortcut")?,
        title: row.text("title")?,
        body: row.text("body")?,
    })
}

//! Attachment bytes, addressed by their SHA-256.

use sqlx::Row;

use super::{Store, StoreError};
use crate::domain::*;

/// Stored bytes and their type.
#[derive(Debug, Clone)]
pub struct Blob {
    pub content_type: String,
    pub data: Vec<u8>,
}

impl Store {
    /// Stores bytes under their hash; storing the same content again changes nothing.
    pub async fn put_blob(&self, sha256: &str, content_type: &str, data: &[u8]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO blobs (sha256, content_type, size, data, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256.to_owned())
        .bind(content_type.to_owned())
        .bind(data.len() as i64)
        .bind(data.to_vec())
        .bind(to_micros(now()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn blob(&self, sha256: &str) -> Result<Option<Blob>, StoreError> {
        let row = sqlx::query("SELECT content_type, data FROM blobs WHERE sha256 = $1")
            .bind(sha256.to_owned())
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| {
            Ok(Blob {
                content_type: r.try_get("content_type")?,
                data: r.try_get("data")?,
            })
        })
        .transpose()
    }
}

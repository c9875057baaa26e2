//! Attachment bytes, addressed by their SHA-256.

use sqlx::Row;

use super::{Db, Store, StoreError, sql};
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

/// Records that an inbox holds an attachment, so its agents may download it.
pub(crate) async fn reference_blob(
    tx: &mut impl Db,
    sha256: &str,
    account: ChannelAccountId,
) -> Result<(), StoreError> {
    sql("INSERT INTO attachment_refs (sha256, channel_account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(sha256.to_owned())
        .bind(account.to_string())
        .execute(tx)
        .await?;
    Ok(())
}

impl Store {
    /// Whether a caller limited to `accounts` may download an attachment.
    pub async fn blob_visible(&self, sha256: &str, accounts: Option<&[ChannelAccountId]>) -> Result<bool, StoreError> {
        let Some(accounts) = accounts else { return Ok(true) };
        let scope = super::accounts_clause("channel_account_id", 2, Some(accounts));
        let query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT sha256 FROM attachment_refs WHERE sha256 = $1{scope} LIMIT 1"
        )))
        .bind(sha256.to_owned());
        Ok(super::bind_accounts(query, Some(accounts))
            .fetch_optional(self.reader())
            .await?
            .is_some())
    }
}

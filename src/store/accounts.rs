//! Channel accounts (inboxes) and the connectors' saved cursors.

use std::collections::HashMap;

use rand::Rng as _;

use super::rows::RowExt;
use super::{Db, Store, StoreError, sql};
use crate::domain::*;
use switchboard_connectors::Cursor;

#[derive(Debug)]
pub struct NewChannelAccount {
    pub kind: ChannelKind,
    pub name: String,
    pub settings: serde_json::Value,
    /// The provider's secret; a random one is made when absent.
    pub secret: Option<String>,
}

impl Store {
    /// Creates a channel account with a fresh random signing secret.
    pub async fn create_channel_account(&self, new: NewChannelAccount) -> Result<ChannelAccount, StoreError> {
        let id = ChannelAccountId::new();
        let secret = new.secret.unwrap_or_else(|| random_token(32));
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO channel_accounts (id, kind, name, settings, secret, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id.to_string())
            .bind(new.kind.as_str())
            .bind(new.name)
            .bind(new.settings.to_string())
            .bind(secret)
            .bind(to_micros(now()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.channel_account(id).await
    }

    /// A channel account, read from the store once and then remembered: every webhook asks for
    /// its account, and an account's row never changes after it is created.
    pub async fn channel_account(&self, id: ChannelAccountId) -> Result<ChannelAccount, StoreError> {
        if let Some(account) = self.accounts.get(id) {
            return Ok(account);
        }
        let row = sqlx::query("SELECT * FROM channel_accounts WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.reader())
            .await?
            .ok_or(StoreError::NotFound("channel account"))?;
        let account = account_from_row(&row)?;
        self.accounts.remember(&account);
        Ok(account)
    }

    pub async fn channel_accounts(&self) -> Result<Vec<ChannelAccount>, StoreError> {
        sqlx::query("SELECT * FROM channel_accounts ORDER BY id")
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(account_from_row)
            .collect()
    }

    /// The saved resume position of one stream of a channel account.
    pub async fn cursor(&self, account: ChannelAccountId, stream: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT position FROM connector_cursors WHERE channel_account_id = $1 AND stream = $2")
                .bind(account.to_string())
                .bind(stream.to_owned())
                .fetch_optional(self.reader())
                .await?,
        )
    }
}

pub(crate) async fn account_in(tx: &mut impl Db, id: ChannelAccountId) -> Result<ChannelAccount, StoreError> {
    let row = sql("SELECT * FROM channel_accounts WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(tx)
        .await?
        .ok_or(StoreError::NotFound("channel account"))?;
    account_from_row(&row)
}

pub(crate) async fn save_cursor(
    tx: &mut impl Db,
    account: ChannelAccountId,
    cursor: &Cursor,
) -> Result<(), StoreError> {
    sql(
        "INSERT INTO connector_cursors (channel_account_id, stream, position, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (channel_account_id, stream) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
    )
    .bind(account.to_string())
    .bind(cursor.stream.clone())
    .bind(cursor.position.clone())
    .bind(to_micros(now()))
    .execute(tx)
    .await?;
    Ok(())
}

/// Channel accounts read before, shared by the clones of a store.
///
/// Sound because nothing changes a `channel_accounts` row's id, kind, name, settings or secret
/// once it is inserted (its `calendar_id` is not part of [`ChannelAccount`]), so a remembered
/// account is the stored one, on every node. A statement that changes one of them must also
/// make every node forget it.
#[derive(Clone, Default)]
pub(crate) struct Remembered(std::sync::Arc<std::sync::RwLock<HashMap<ChannelAccountId, ChannelAccount>>>);

impl Remembered {
    fn get(&self, id: ChannelAccountId) -> Option<ChannelAccount> {
        self.0.read().ok()?.get(&id).cloned()
    }

    fn remember(&self, account: &ChannelAccount) {
        if let Ok(mut accounts) = self.0.write() {
            accounts.insert(account.id, account.clone());
        }
    }
}

fn account_from_row(row: &impl RowExt) -> Result<ChannelAccount, StoreError> {
    Ok(ChannelAccount {
        id: row.parsed("id")?,
        kind: row.parsed("kind")?,
        name: row.text("name")?,
        settings: row.json("settings")?,
        secret: row.text("secret")?,
    })
}

/// A URL-safe random token of `bytes` random bytes.
pub(crate) fn random_token(bytes: usize) -> String {
    use base64::Engine as _;
    let raw: Vec<u8> = (0..bytes).map(|_| rand::rng().random()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

impl Store {
    /// Saves a connector's position on its own, for positions that carry no touchpoint.
    pub async fn save_cursor(&self, account: ChannelAccountId, cursor: &Cursor) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        save_cursor(&mut tx, account, cursor).await?;
        tx.commit().await?;
        Ok(())
    }
}

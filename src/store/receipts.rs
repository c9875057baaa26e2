//! Provider delivery receipts: the latest state a provider reported for one of our messages.

use super::{Store, StoreError};
use crate::domain::*;

impl Store {
    /// Records a provider's report on message `peer_id`; a report ranked at or below the stored
    /// one changes nothing, so repeats and late arrivals are harmless. Returns whether it applied.
    pub async fn record_receipt(
        &self,
        account: ChannelAccountId,
        peer_id: &str,
        status: &str,
        rank: i64,
        error_code: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "INSERT INTO provider_receipts (channel_account_id, peer_id, status, rank, error_code, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (channel_account_id, peer_id) DO UPDATE
               SET status = excluded.status, rank = excluded.rank, error_code = excluded.error_code, updated_at = excluded.updated_at
               WHERE excluded.rank > provider_receipts.rank",
        )
        .bind(account.to_string())
        .bind(peer_id.to_owned())
        .bind(status.to_owned())
        .bind(rank)
        .bind(error_code.map(str::to_owned))
        .bind(to_micros(now()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}

//! State several hub nodes share through the store: leases on work that must run on one node
//! at a time, and failed-login counts.

use time::{Duration, OffsetDateTime};

use super::rows::RowExt;
use super::{Store, StoreError};
use crate::domain::*;

/// A lease as the store holds it, for operators.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LeaseRecord {
    pub name: String,
    pub holder: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl Store {
    /// Takes or renews the lease `name` for `holder` until `at + ttl`; true when `holder` has it.
    /// A lease held by another holder is taken only once it has expired.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        at: OffsetDateTime,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let won: Option<String> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at < $4
             RETURNING holder",
        )
        .bind(name.to_owned())
        .bind(holder.to_owned())
        .bind(to_micros(at + ttl))
        .bind(to_micros(at))
        .fetch_optional(&mut *self.write_conn().await?)
        .await?;
        Ok(won.as_deref() == Some(holder))
    }

    /// Gives the lease up at once (a node stopping), so another node need not wait for it to
    /// expire.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name.to_owned())
            .bind(holder.to_owned())
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }

    /// Every lease, by name.
    pub async fn leases(&self) -> Result<Vec<LeaseRecord>, StoreError> {
        sqlx::query("SELECT name, holder, expires_at FROM leases ORDER BY name")
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|row| {
                Ok(LeaseRecord {
                    name: row.text("name")?,
                    holder: row.text("holder")?,
                    expires_at: row.time("expires_at")?,
                })
            })
            .collect()
    }

    /// Failed logins of `key` counted since the window that starts at `window_start`.
    pub async fn login_failures(&self, key: &str, window_start: OffsetDateTime) -> Result<i64, StoreError> {
        let failures: Option<i64> =
            sqlx::query_scalar("SELECT CAST(failures AS BIGINT) FROM login_failures WHERE key = $1 AND since >= $2")
                .bind(key.to_owned())
                .bind(to_micros(window_start))
                .fetch_optional(self.reader())
                .await?;
        Ok(failures.unwrap_or(0))
    }

    /// Counts one failed login of `key` at `at`; a count older than `window_start` starts over.
    pub async fn record_login_failure(
        &self,
        key: &str,
        at: OffsetDateTime,
        window_start: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO login_failures (key, failures, since) VALUES ($1, 1, $2)
             ON CONFLICT (key) DO UPDATE SET
               failures = CASE WHEN login_failures.since < $3 THEN 1 ELSE login_failures.failures + 1 END,
               since = CASE WHEN login_failures.since < $3 THEN excluded.since ELSE login_failures.since END",
        )
        .bind(key.to_owned())
        .bind(to_micros(at))
        .bind(to_micros(window_start))
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(())
    }

    pub async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1")
            .bind(key.to_owned())
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }
}

//! The durable outbox: replies written with their interaction, delivered by a worker.
//!
//! A worker claims one due row at a time with a lease (`locked_until`); the claim re-checks the
//! lease in the UPDATE's own WHERE clause, so two workers (or two nodes on PostgreSQL) never
//! both win the same row, and a crashed worker's lease simply expires. On PostgreSQL the claim
//! skips rows another node is claiming at that moment (`FOR UPDATE SKIP LOCKED`), so every
//! node drains the outbox at once without queueing behind the others.

use time::{Duration, OffsetDateTime};

use super::rows::RowExt;
use super::{Backend, Store, StoreError, Tx};
use crate::domain::*;
use switchboard_connectors::OutboundMessage;

/// A claimed delivery.
#[derive(Debug, Clone)]
pub struct OutboxJob {
    pub id: OutboxId,
    pub interaction_id: InteractionId,
    pub channel_account_id: ChannelAccountId,
    pub message: OutboundMessage,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// Where an outbound message stands: our outbox's view and the provider's latest report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Delivery {
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// The provider's id for the message, once it accepted it.
    pub peer_id: Option<String>,
    /// The provider's latest delivery state (`delivered`, `undelivered`, …).
    pub provider_status: Option<String>,
    pub provider_error: Option<String>,
}

pub(crate) async fn enqueue(tx: &mut Tx<'_>, message: &OutboundMessage) -> Result<OutboxId, StoreError> {
    let id = OutboxId::new();
    let at = to_micros(now());
    sqlx::query(
        "INSERT INTO outbox (id, interaction_id, channel_account_id, payload, status, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, 'pending', $5, $5)",
    )
    .bind(id.to_string())
    .bind(message.id.to_string())
    .bind(message.channel_account_id.to_string())
    .bind(serde_json::to_string(message).expect("outbound messages serialise"))
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Claims the next due, unleased `pending` row of `table` (an outbox: `status`,
/// `next_attempt_at`, `locked_until`) for `lease`, returning `columns`. The lease is checked
/// again in the UPDATE's own WHERE clause, so two claimers never both win a row.
pub(crate) async fn claim_leased(
    store: &Store,
    table: &'static str,
    columns: &'static str,
    lease: Duration,
) -> Result<Option<sqlx::any::AnyRow>, StoreError> {
    let at = now();
    // On PostgreSQL several nodes claim at once: each skips the rows another is claiming
    // instead of waiting for it and then finding the row taken.
    let skip_locked = match store.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let mut tx = store.begin().await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET locked_until = $1
         WHERE id = (SELECT id FROM {table}
                     WHERE status = 'pending' AND next_attempt_at <= $2
                       AND (locked_until IS NULL OR locked_until < $2)
                     ORDER BY next_attempt_at LIMIT 1 {skip_locked})
           AND status = 'pending' AND (locked_until IS NULL OR locked_until < $2)
         RETURNING {columns}"
    )))
    .bind(to_micros(at + lease))
    .bind(to_micros(at))
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

impl Store {
    /// Claims the next due delivery for `lease`, if any.
    pub async fn claim_outbox(&self, lease: Duration) -> Result<Option<OutboxJob>, StoreError> {
        let row = claim_leased(
            self,
            "outbox",
            "id, interaction_id, channel_account_id, payload, attempts",
            lease,
        )
        .await?;
        row.map(|r| {
            Ok(OutboxJob {
                id: r.parsed("id")?,
                interaction_id: r.parsed("interaction_id")?,
                channel_account_id: r.parsed("channel_account_id")?,
                message: r.json("payload")?,
                attempts: u32::try_from(r.int("attempts")?).unwrap_or(u32::MAX),
            })
        })
        .transpose()
    }

    pub async fn outbox_sent(&self, id: OutboxId, peer_id: Option<String>) -> Result<(), StoreError> {
        self.finish_outbox(id, DeliveryStatus::Sent, None, peer_id).await
    }

    pub async fn outbox_failed(&self, id: OutboxId, error: &str) -> Result<(), StoreError> {
        self.finish_outbox(id, DeliveryStatus::Failed, Some(error), None).await
    }

    async fn finish_outbox(
        &self,
        id: OutboxId,
        status: DeliveryStatus,
        error: Option<&str>,
        peer_id: Option<String>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE outbox SET status = $1, attempts = attempts + 1, last_error = $2, peer_id = $3,
                               finished_at = $4, locked_until = NULL WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(error.map(str::to_owned))
        .bind(peer_id)
        .bind(to_micros(now()))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed attempt and schedules the next one.
    pub async fn outbox_retry(
        &self,
        id: OutboxId,
        error: &str,
        next_attempt_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2, locked_until = NULL WHERE id = $3",
        )
        .bind(error.to_owned())
        .bind(to_micros(next_attempt_at))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The interaction a provider's message id was sent for.
    pub async fn interaction_of_peer(
        &self,
        account: ChannelAccountId,
        peer_id: &str,
    ) -> Result<Option<InteractionId>, StoreError> {
        let id: Option<String> =
            sqlx::query_scalar("SELECT interaction_id FROM outbox WHERE channel_account_id = $1 AND peer_id = $2")
                .bind(account.to_string())
                .bind(peer_id.to_owned())
                .fetch_optional(self.reader())
                .await?;
        id.map(|id| super::parse_stored("interaction id", &id)).transpose()
    }

    /// Delivery state of each outbound interaction of a conversation that went through the outbox.
    pub async fn conversation_deliveries(
        &self,
        conversation: ConversationId,
    ) -> Result<std::collections::HashMap<InteractionId, Delivery>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{DELIVERY} JOIN interactions i ON i.id = o.interaction_id WHERE i.conversation_id = $1"
        )))
        .bind(conversation.to_string())
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.parsed("interaction_id")?, delivery_from_row(r)?)))
            .collect()
    }

    /// Delivery state of an outbound interaction, with what its provider last reported.
    pub async fn delivery(&self, interaction: InteractionId) -> Result<Option<Delivery>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{DELIVERY} WHERE o.interaction_id = $1")))
            .bind(interaction.to_string())
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }
}

const DELIVERY: &str = "SELECT o.interaction_id, o.status, o.attempts, o.last_error, o.peer_id,
        r.status AS provider_status, r.error_code AS provider_error
    FROM outbox o LEFT JOIN provider_receipts r ON r.channel_account_id = o.channel_account_id AND r.peer_id = o.peer_id";

fn delivery_from_row(r: &sqlx::any::AnyRow) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        status: r.parsed("status")?,
        attempts: r.int("attempts")?,
        last_error: r.opt_text("last_error")?,
        peer_id: r.opt_text("peer_id")?,
        provider_status: r.opt_text("provider_status")?,
        provider_error: r.opt_text("provider_error")?,
    })
}

//! The outbox worker: delivers queued replies through their channel's sender, retrying
//! retryable failures with exponential backoff and recording sent or failed; and what the
//! peer reports afterwards (a provider's status callback, a bounce).

use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::channels;
use crate::domain::*;
use crate::hub::Hub;
use switchboard_connectors::ConnectorError;

/// How long a claimed delivery stays ours before another worker may take it.
const LEASE: time::Duration = time::Duration::seconds(60);

impl Hub {
    /// Records a peer's report on our message `peer_id` (ranked: a report at or below the stored
    /// one changes nothing) and tells the consoles. Returns the interaction it changed, if any.
    pub async fn apply_receipt(
        &self,
        account: ChannelAccountId,
        peer_id: &str,
        status: &str,
        rank: i64,
        error: Option<&str>,
    ) -> Result<Option<InteractionId>, crate::store::StoreError> {
        if !self.store.record_receipt(account, peer_id, status, rank, error).await? {
            return Ok(None);
        }
        let interaction = self.store.interaction_of_peer(account, peer_id).await?;
        if let Some(interaction_id) = interaction {
            self.bus.publish(crate::bus::HubEvent::DeliveryChanged {
                interaction_id,
                channel_account_id: account,
            });
        }
        Ok(interaction)
    }
}

/// Runs until `shutdown` changes, delivering whatever is due.
pub async fn run(hub: Hub, client: reqwest::Client, mut shutdown: watch::Receiver<bool>) {
    let poll = Duration::from_millis(hub.settings.outbox.poll_interval_ms);
    loop {
        loop {
            match hub.store.claim_outbox(LEASE).await {
                Ok(Some(job)) => deliver(&hub, &client, job).await,
                Ok(None) => break,
                Err(error) => {
                    warn!(%error, "outbox claim failed");
                    break;
                }
            }
        }
        tokio::select! {
            _ = hub.outbox_wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn deliver(hub: &Hub, client: &reqwest::Client, job: crate::store::OutboxJob) {
    let outcome = match hub.store.channel_account(job.channel_account_id).await {
        Ok(account) => match egress_client(hub, &account, client).await {
            Ok(client) => match channels::sender(&account, &client, &hub.settings.server.public_url) {
                Ok(sender) => sender.send(&job.message).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
        Err(e) => Err(ConnectorError::Invalid(format!("channel account: {e}"))),
    };
    let attempt = job.attempts + 1;
    let recorded = match outcome {
        Ok(peer_id) => {
            info!(outbox = %job.id, attempt, "delivered");
            metrics::counter!("switchboard_outbox_sent_total").increment(1);
            hub.store.outbox_sent(job.id, peer_id).await
        }
        Err(error) if error.is_retryable() && attempt < hub.settings.outbox.max_attempts => {
            let backoff = backoff(hub.settings.outbox.base_backoff_ms, attempt);
            warn!(outbox = %job.id, attempt, %error, retry_in_ms = backoff.as_millis() as u64, "delivery failed, will retry");
            hub.store
                .outbox_retry(job.id, &error.to_string(), now() + backoff)
                .await
        }
        Err(error) => {
            warn!(outbox = %job.id, attempt, %error, "delivery failed for good");
            metrics::counter!("switchboard_outbox_failed_total").increment(1);
            hub.store.outbox_failed(job.id, &error.to_string()).await
        }
    };
    match recorded {
        Ok(()) => hub.bus.publish(crate::bus::HubEvent::DeliveryChanged {
            interaction_id: job.interaction_id,
            channel_account_id: job.channel_account_id,
        }),
        // The lease expires and the delivery is tried again: at least once, never lost.
        Err(error) => warn!(outbox = %job.id, %error, "could not record delivery outcome"),
    }
}

/// The client to deliver through: for an API inbox, whose webhook URL an admin typed, one
/// checked against private addresses and pinned ([`crate::egress`]); the shared one otherwise.
async fn egress_client(
    hub: &Hub,
    account: &ChannelAccount,
    client: &reqwest::Client,
) -> Result<reqwest::Client, ConnectorError> {
    let url = match account.kind {
        ChannelKind::Api => account.settings.get("webhook_url").and_then(|u| u.as_str()),
        _ => None,
    };
    let Some(url) = url else {
        return Ok(client.clone());
    };
    let url = reqwest::Url::parse(url).map_err(|e| ConnectorError::Invalid(format!("webhook url: {e}")))?;
    crate::egress::client_for(
        &url,
        hub.settings.egress.allow_private_addresses,
        Duration::from_secs(30),
    )
    .await
    .map_err(|e| match e.is_retryable() {
        true => ConnectorError::Transport(e.to_string()),
        false => ConnectorError::Invalid(e.to_string()),
    })
}

/// `base * 2^(attempt-1)`, capped at one hour.
pub(crate) fn backoff(base_ms: u64, attempt: u32) -> Duration {
    let factor = 1u64 << attempt.saturating_sub(1).min(20);
    Duration::from_millis(base_ms.saturating_mul(factor).min(3_600_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1000, 1), Duration::from_secs(1));
        assert_eq!(backoff(1000, 2), Duration::from_secs(2));
        assert_eq!(backoff(1000, 4), Duration::from_secs(8));
        assert_eq!(backoff(1000, 30), Duration::from_secs(3600));
    }
}

//! Outgoing webhooks: each delivery is sent at least once, with a stable
//! `X-Switchboard-Delivery` id the receiver deduplicates on, an HMAC-SHA256 signature of the
//! body when the trigger has a secret, and only to public addresses ([`crate::egress`]).

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::domain::now;
use crate::hub::Hub;
use crate::store::WebhookJob;

/// How long a claimed delivery stays ours before another worker may take it.
const LEASE: time::Duration = time::Duration::seconds(60);
const POLL: Duration = Duration::from_secs(1);

pub async fn run(hub: Hub, mut shutdown: watch::Receiver<bool>) {
    loop {
        loop {
            match hub.store.claim_webhook(LEASE).await {
                Ok(Some(job)) => deliver(&hub, job).await,
                Ok(None) => break,
                Err(error) => {
                    warn!(%error, "webhook claim failed");
                    break;
                }
            }
        }
        tokio::select! {
            _ = hub.webhook_wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Why a delivery failed, and whether trying again could help.
struct Failure {
    reason: String,
    retryable: bool,
}

fn permanent(reason: impl Into<String>) -> Failure {
    Failure {
        reason: reason.into(),
        retryable: false,
    }
}

async fn deliver(hub: &Hub, job: WebhookJob) {
    let settings = &hub.settings.automation;
    let attempt = job.attempts as u32 + 1;
    let outcome = match send(hub, &job).await {
        Ok(()) => {
            info!(delivery = %job.id, attempt, "webhook delivered");
            Ok(())
        }
        Err(f) if f.retryable && attempt < settings.webhook_max_attempts => {
            let backoff = crate::outbox::backoff(settings.base_backoff_ms, attempt);
            warn!(delivery = %job.id, attempt, error = %f.reason, "webhook failed, will retry");
            Err((f.reason, Some(now() + backoff)))
        }
        Err(f) => {
            warn!(delivery = %job.id, attempt, error = %f.reason, "webhook failed for good");
            Err((f.reason, None))
        }
    };
    if let Err(error) = hub.store.finish_webhook(&job.id, outcome).await {
        // The lease expires and the delivery is sent again: at least once, never lost.
        warn!(delivery = %job.id, %error, "could not record webhook outcome");
    }
}

async fn send(hub: &Hub, job: &WebhookJob) -> Result<(), Failure> {
    let settings = &hub.settings.automation;
    let url = reqwest::Url::parse(&job.url).map_err(|e| permanent(format!("bad url: {e}")))?;
    let client = crate::egress::client_for(
        &url,
        hub.settings.egress.allow_private_addresses,
        Duration::from_secs(settings.webhook_timeout_seconds),
    )
    .await
    .map_err(|e| Failure {
        retryable: e.is_retryable(),
        reason: e.to_string(),
    })?;
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .header("x-switchboard-delivery", &job.id);
    if let Some(secret) = &job.secret {
        request = request.header("x-switchboard-signature", signature(secret, job.payload.as_bytes()));
    }
    let response = request.body(job.payload.clone()).send().await.map_err(|e| Failure {
        reason: format!("request failed: {e}"),
        retryable: true,
    })?;
    let status = response.status();
    match status.as_u16() {
        200..=299 => Ok(()),
        408 | 429 | 500..=599 => Err(Failure {
            reason: format!("receiver answered {status}"),
            retryable: true,
        }),
        _ => Err(permanent(format!("receiver answered {status}"))),
    }
}

/// `sha256=<hex>` of the body, keyed with the trigger's secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

//! Outgoing webhooks: each delivery is sent at least once, with a stable
//! `X-Switchboard-Delivery` id the receiver deduplicates on, an HMAC-SHA256 signature of the
//! body when the trigger has a secret, and never to a loopback, private or link-local address
//! unless the configuration allows it (the address is checked after resolving, and the
//! connection pinned to the checked address, so DNS cannot swap it in between).

use std::net::{IpAddr, SocketAddr};
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
    let host = url.host_str().ok_or_else(|| permanent("url has no host"))?.to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((lookup.as_str(), port))
        .await
        .map_err(|e| Failure {
            reason: format!("cannot resolve {host}: {e}"),
            retryable: true,
        })?
        .collect();
    if !settings.webhook_allow_private
        && let Some(addr) = addrs.iter().find(|a| !is_public(a.ip()))
    {
        return Err(permanent(format!(
            "refused: {host} resolves to {}, a loopback, private or link-local address",
            addr.ip()
        )));
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(settings.webhook_timeout_seconds))
        .redirect(reqwest::redirect::Policy::none())
        .resolve_to_addrs(&lookup, &addrs)
        .build()
        .map_err(|e| permanent(format!("http client: {e}")))?;
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

/// Whether an address is on the public internet: not loopback, private, link-local,
/// shared (CGNAT), unspecified, multicast or broadcast; IPv4-mapped IPv6 judged as IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || (a == 100 && (64..128).contains(&b))
                || a == 0)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

//! Outgoing HTTP webhooks: how the hub hands an agent's reply to another system.
//!
//! Each delivery is a JSON `POST` of the [`OutboundMessage`] with three headers:
//! `X-Switchboard-Delivery` (the message id, stable across retries, to deduplicate on),
//! `X-Switchboard-Timestamp` (Unix seconds) and `X-Switchboard-Signature`
//! (`v1=` + hex HMAC-SHA256 of `"{timestamp}.{body}"` under the account's secret). Signing the
//! timestamp with the body lets a receiver refuse replays outside its tolerance window.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{ConnectorError, OutboundMessage, OutboundSender};

pub const DELIVERY_HEADER: &str = "x-switchboard-delivery";
pub const TIMESTAMP_HEADER: &str = "x-switchboard-timestamp";
pub const SIGNATURE_HEADER: &str = "x-switchboard-signature";

/// The signature header value for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why a signed webhook was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("signature header is missing or malformed")]
    Malformed,
    #[error("timestamp is outside the accepted window")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

/// Checks a signature made by [`sign`], in constant time, within `tolerance` of `now`.
pub fn verify(
    secret: &[u8],
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let hex_sig = header.trim().strip_prefix("v1=").ok_or(SignatureError::Malformed)?;
    let given = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
    if now.abs_diff(timestamp) > tolerance.as_secs() {
        return Err(SignatureError::Stale);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| SignatureError::Mismatch)
}

/// Delivers outbound messages of an API-channel account to its configured URL.
#[derive(Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: Vec<u8>,
}

impl WebhookSender {
    pub fn new(client: reqwest::Client, url: &str, secret: Vec<u8>) -> Result<Self, ConnectorError> {
        let url = reqwest::Url::parse(url).map_err(|e| ConnectorError::Invalid(format!("webhook url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConnectorError::Invalid("webhook url must be http or https".into()));
        }
        Ok(Self { client, url, secret })
    }
}

impl OutboundSender for WebhookSender {
    async fn send(&self, message: &OutboundMessage) -> Result<Option<String>, ConnectorError> {
        let body = serde_json::to_vec(message).map_err(|e| ConnectorError::Invalid(e.to_string()))?;
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let response = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header(DELIVERY_HEADER, message.id.to_string())
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, sign(&self.secret, timestamp, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| ConnectorError::Transport(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_success() {
            Ok(None)
        } else {
            let detail: String = response.text().await.unwrap_or_default().chars().take(200).collect();
            Err(ConnectorError::from_status(status.as_u16(), detail))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(300);

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let sig = sign(b"s3cret", 1_700_000_000, b"{\"a\":1}");
        assert_eq!(
            verify(b"s3cret", 1_700_000_000, b"{\"a\":1}", &sig, 1_700_000_010, WINDOW),
            Ok(())
        );
        assert_eq!(
            verify(b"s3cret", 1_700_000_000, b"{\"a\":2}", &sig, 1_700_000_010, WINDOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", 1_700_000_000, b"{\"a\":1}", &sig, 1_700_000_010, WINDOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"s3cret", 1_700_000_001, b"{\"a\":1}", &sig, 1_700_000_010, WINDOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn old_timestamps_and_malformed_headers_are_refused() {
        let sig = sign(b"k", 1_000, b"x");
        assert_eq!(
            verify(b"k", 1_000, b"x", &sig, 2_000, WINDOW),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(b"k", 1_000, b"x", "sha1=abc", 1_000, WINDOW),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(b"k", 1_000, b"x", "v1=zz", 1_000, WINDOW),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // printf '1700000000.hello' | openssl dgst -sha256 -hmac key
        assert_eq!(
            sign(b"key", 1_700_000_000, b"hello"),
            "v1=4d583a269f4f276a3fa80ff31b5a01879a848096983222a17893d198418939aa"
        );
    }
}

//! Outgoing HTTP to URLs an admin configured (an API inbox's webhook, a trigger's webhook).
//! The host is resolved once; if any of its addresses is loopback, private, link-local or
//! otherwise not on the public internet, the request is refused (unless
//! `egress.allow_private_addresses` is set), so the hub cannot be pointed at its own network
//! (SSRF). The client is pinned to the checked addresses, so DNS cannot swap them between the
//! check and the connection, and it never follows redirects.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("cannot resolve {host}: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error("refused: {host} resolves to {ip}, a loopback, private or link-local address")]
    Refused { host: String, ip: IpAddr },
    #[error("url: {0}")]
    Url(String),
    #[error("http client: {0}")]
    Client(String),
}

impl EgressError {
    /// Whether trying again later could help (a name that does not resolve now may later).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unresolvable { .. })
    }
}

/// A client for `url` alone, checked and pinned as the module says.
pub async fn client_for(
    url: &reqwest::Url,
    allow_private: bool,
    timeout: Duration,
) -> Result<reqwest::Client, EgressError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(EgressError::Url("must be http or https".into()));
    }
    let host = url.host_str().ok_or_else(|| EgressError::Url("has no host".into()))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare.as_str(), port))
        .await
        .map_err(|e| EgressError::Unresolvable {
            host: host.to_owned(),
            reason: e.to_string(),
        })?
        .collect();
    if !allow_private && let Some(addr) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(EgressError::Refused {
            host: host.to_owned(),
            ip: addr.ip(),
        });
    }
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .resolve_to_addrs(&bare, &addrs)
        .build()
        .map_err(|e| EgressError::Client(e.to_string()))
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

    #[tokio::test]
    async fn a_loopback_url_is_refused_unless_allowed() {
        crate::startup::install_crypto_provider();
        let url = reqwest::Url::parse("http://localhost:9/hook").unwrap();
        let refused = client_for(&url, false, Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(refused, EgressError::Refused { .. }), "{refused}");
        assert!(!refused.is_retryable());
        assert!(client_for(&url, true, Duration::from_secs(1)).await.is_ok());
    }
}

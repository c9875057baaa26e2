//! Twilio's SMS wire format: request signatures, inbound and status-callback webhooks, and the
//! Messages REST API for sending.
//!
//! Signatures follow Twilio's "Webhooks security" documentation and its official validators
//! (twilio-python `RequestValidator`): HMAC-SHA1 under the auth token of the full URL Twilio
//! called, followed for form posts by every parameter name and value sorted by name (repeated
//! names: each distinct value, sorted); base64. Because Twilio is inconsistent about explicit
//! default ports, the URL is tried both without a port and with the scheme's default port. A
//! JSON body is covered instead by the `bodySHA256` query parameter (hex SHA-256 of the body),
//! which is itself part of the signed URL.

use std::collections::BTreeMap;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

use super::DeliveryState;
use crate::address::{Handle, PhoneNumber, Region};
use crate::envelope::{AttachmentMeta, ChannelKind, Content, Direction, InboundEnvelope, ThreadingHints};
use crate::{ConnectorError, OutboundMessage, OutboundSender};

pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// Why a Twilio request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TwilioError {
    #[error("missing X-Twilio-Signature header")]
    MissingSignature,
    #[error("X-Twilio-Signature does not match the request")]
    BadSignature,
    #[error("bodySHA256 does not match the body")]
    BadBodyHash,
    #[error("missing parameter {0}")]
    Missing(&'static str),
    #[error("parameter {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// The signed part of a request: form parameters, or a raw (JSON) body covered by `bodySHA256`.
pub enum SignedBody<'a> {
    Form(&'a [(String, String)]),
    Raw(&'a [u8]),
}

/// The signature Twilio sends for a form post to `url`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut data = url.to_owned();
    let mut sorted: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, value) in params {
        sorted.entry(name).or_default().push(value);
    }
    for (name, mut values) in sorted {
        values.sort_unstable();
        values.dedup();
        for value in values {
            data.push_str(name);
            data.push_str(value);
        }
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("hmac accepts any key length");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks a request's `X-Twilio-Signature` against the URL Twilio called.
pub fn validate(auth_token: &str, url: &str, body: SignedBody<'_>, header: Option<&str>) -> Result<(), TwilioError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(TwilioError::MissingSignature)?;
    let params: &[(String, String)] = match body {
        SignedBody::Form(params) => params,
        SignedBody::Raw(bytes) => {
            let expected = query_param(url, "bodySHA256").ok_or(TwilioError::BadBodyHash)?;
            let actual = hex::encode(Sha256::digest(bytes));
            if !bool::from(actual.as_bytes().ct_eq(expected.to_ascii_lowercase().as_bytes())) {
                return Err(TwilioError::BadBodyHash);
            }
            &[]
        }
    };
    let matches = [without_port(url), with_default_port(url)].iter().any(|candidate| {
        bool::from(
            signature(auth_token, candidate, params)
                .as_bytes()
                .ct_eq(header.as_bytes()),
        )
    });
    if matches {
        Ok(())
    } else {
        Err(TwilioError::BadSignature)
    }
}

/// Splits `scheme://authority rest` into its three parts.
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, after) = url.split_once("://")?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    Some((scheme, &after[..end], &after[end..]))
}

/// The authority's host part and its explicit port, if any (IPv6 literals keep their brackets).
fn split_port(authority: &str) -> (&str, Option<&str>) {
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    match authority[host_start..].rfind(':') {
        Some(colon) if !authority[host_start + colon..].contains(']') => (
            &authority[..host_start + colon],
            Some(&authority[host_start + colon + 1..]),
        ),
        _ => (authority, None),
    }
}

fn without_port(url: &str) -> String {
    match split_url(url) {
        Some((scheme, authority, rest)) => format!("{scheme}://{}{rest}", split_port(authority).0),
        None => url.to_owned(),
    }
}

fn with_default_port(url: &str) -> String {
    match split_url(url) {
        Some((scheme, authority, rest)) if split_port(authority).1.is_none() => {
            let port = if scheme.eq_ignore_ascii_case("https") { 443 } else { 80 };
            format!("{scheme}://{authority}:{port}{rest}")
        }
        _ => url.to_owned(),
    }
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1.split('#').next()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn required<'a>(params: &'a [(String, String)], name: &'static str) -> Result<&'a str, TwilioError> {
    get(params, name)
        .filter(|v| !v.trim().is_empty())
        .ok_or(TwilioError::Missing(name))
}

/// Most media Twilio attaches to one message (its documented MMS limit).
const MAX_MEDIA: usize = 10;

/// An inbound SMS or MMS webhook as an envelope for the hub.
pub fn inbound_envelope(
    params: &[(String, String)],
    channel_account_id: Uuid,
    region: Region,
    received_at: OffsetDateTime,
) -> Result<InboundEnvelope, TwilioError> {
    let sid = required(params, "MessageSid")?;
    let from = required(params, "From")?;
    let from = PhoneNumber::parse(from, region).map_err(|e| TwilioError::Invalid {
        field: "From",
        reason: e.to_string(),
    })?;
    let num_media: usize = match get(params, "NumMedia") {
        None => 0,
        Some(n) => n
            .trim()
            .parse()
            .ok()
            .filter(|n| *n <= MAX_MEDIA)
            .ok_or_else(|| TwilioError::Invalid {
                field: "NumMedia",
                reason: format!("expected a count from 0 to {MAX_MEDIA}"),
            })?,
    };
    let attachments = (0..num_media)
        .map(|i| AttachmentMeta {
            name: None,
            content_type: get(params, &format!("MediaContentType{i}"))
                .unwrap_or("application/octet-stream")
                .to_owned(),
            size: None,
            url: get(params, &format!("MediaUrl{i}")).map(str::to_owned),
            sha256: None,
            content_id: None,
        })
        .collect();
    let mut details = serde_json::Map::new();
    for key in [
        "To",
        "AccountSid",
        "MessagingServiceSid",
        "NumSegments",
        "FromCountry",
        "FromCity",
        "FromState",
        "ToCountry",
    ] {
        if let Some(v) = get(params, key) {
            details.insert(snake(key), serde_json::Value::String(v.to_owned()));
        }
    }
    details.insert("provider".into(), "twilio".into());
    Ok(InboundEnvelope {
        channel_account_id,
        channel: ChannelKind::Sms,
        external_id: sid.to_owned(),
        direction: Direction::Inbound,
        contact: Handle::Phone(from),
        contact_name: None,
        occurred_at: received_at,
        threading: ThreadingHints::default(),
        content: Content {
            subject: None,
            text: get(params, "Body").map(str::to_owned),
            html: None,
        },
        attachments,
        details: serde_json::Value::Object(details),
        cursor: None,
        agent_extension: None,
        needs_reply: true,
    })
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A status callback about one of our outbound messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCallback {
    pub message_sid: String,
    pub state: DeliveryState,
    pub error_code: Option<String>,
}

pub fn status_callback(params: &[(String, String)]) -> Result<StatusCallback, TwilioError> {
    let sid = required(params, "MessageSid")?;
    let raw = required(params, "MessageStatus")?;
    let state = DeliveryState::parse(raw).ok_or_else(|| TwilioError::Invalid {
        field: "MessageStatus",
        reason: format!("unknown status {raw:?}"),
    })?;
    let error_code = get(params, "ErrorCode").filter(|c| !c.is_empty()).map(str::to_owned);
    Ok(StatusCallback {
        message_sid: sid.to_owned(),
        state,
        error_code,
    })
}

/// TwiML answering an inbound message: nothing, or one reply message.
pub fn twiml(reply: Option<&str>) -> String {
    match reply {
        None => r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#.to_owned(),
        Some(text) => format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>{}</Message></Response>"#,
            xml_escape(text)
        ),
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Longest body the Messages API accepts; Twilio itself splits it into concatenated segments.
pub const MAX_BODY_CHARS: usize = 1600;

/// Sends through Twilio's Messages API (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`).
pub struct TwilioSender {
    pub client: reqwest::Client,
    /// `https://api.twilio.com` in production; configurable for regions, proxies and tests.
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: String,
    /// A phone number in E.164, or a Messaging Service SID (`MG…`).
    pub from: String,
    /// Where Twilio posts this message's status callbacks.
    pub status_callback: Option<String>,
}

#[derive(serde::Deserialize)]
struct Created {
    sid: String,
}

#[derive(serde::Deserialize)]
struct ApiError {
    code: Option<i64>,
    message: Option<String>,
}

impl OutboundSender for TwilioSender {
    async fn send(&self, message: &OutboundMessage) -> Result<Option<String>, ConnectorError> {
        let to = message
            .to
            .strip_prefix("phone:")
            .ok_or_else(|| ConnectorError::Invalid(format!("an SMS goes to a phone number, not {}", message.to)))?;
        let body = message.content.text.as_deref().unwrap_or_default();
        if body.chars().count() > MAX_BODY_CHARS {
            return Err(ConnectorError::Invalid(format!(
                "the body is longer than Twilio's {MAX_BODY_CHARS} characters"
            )));
        }
        let from_key = if self.from.starts_with("MG") {
            "MessagingServiceSid"
        } else {
            "From"
        };
        let mut form: Vec<(&str, &str)> = vec![("To", to), (from_key, &self.from), ("Body", body)];
        if let Some(callback) = &self.status_callback {
            form.push(("StatusCallback", callback));
        }
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.base_url.trim_end_matches('/'),
            self.account_sid
        );
        let response = self
            .client
            .post(url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&form)
            .send()
            .await
            .map_err(|e| ConnectorError::Transport(e.without_url().to_string()))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            let created: Created = serde_json::from_str(&text)
                .map_err(|e| ConnectorError::Transport(format!("unreadable Twilio answer: {e}")))?;
            return Ok(Some(created.sid));
        }
        let detail = match serde_json::from_str::<ApiError>(&text) {
            Ok(ApiError {
                code: Some(code),
                message,
            }) => format!("twilio error {code}: {}", message.unwrap_or_default()),
            _ => text.chars().take(200).collect(),
        };
        Err(ConnectorError::from_status(status.as_u16(), detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The example of Twilio's "Webhooks security" documentation.
    fn documented() -> (&'static str, &'static str, Vec<(String, String)>, &'static str) {
        (
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            params(&[
                ("CallSid", "CA1234567890ABCDE"),
                ("Caller", "+12349013030"),
                ("Digits", "1234"),
                ("From", "+12349013030"),
                ("To", "+18005551212"),
            ]),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ=",
        )
    }

    #[test]
    fn twilios_documented_example_verifies() {
        let (token, url, params, expected) = documented();
        assert_eq!(signature(token, url, &params), expected);
        assert_eq!(validate(token, url, SignedBody::Form(&params), Some(expected)), Ok(()));
    }

    #[test]
    fn the_url_is_accepted_with_and_without_the_default_port() {
        let (token, url, params, expected) = documented();
        assert_eq!(
            validate(
                token,
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                SignedBody::Form(&params),
                Some(expected)
            ),
            Ok(())
        );
        let signed_with_port = signature(token, "https://mycompany.com:443/myapp.php?foo=1&bar=2", &params);
        assert_eq!(
            validate(token, url, SignedBody::Form(&params), Some(&signed_with_port)),
            Ok(())
        );
    }

    #[test]
    fn any_change_to_token_url_or_parameters_is_refused() {
        let (token, url, params, expected) = documented();
        let mut tampered = params.clone();
        tampered[2].1 = "1235".into();
        assert_eq!(
            validate(token, url, SignedBody::Form(&tampered), Some(expected)),
            Err(TwilioError::BadSignature)
        );
        assert_eq!(
            validate("54321", url, SignedBody::Form(&params), Some(expected)),
            Err(TwilioError::BadSignature)
        );
        assert_eq!(
            validate(
                token,
                "https://mycompany.com/myapp.php?foo=1&bar=3",
                SignedBody::Form(&params),
                Some(expected)
            ),
            Err(TwilioError::BadSignature)
        );
        assert_eq!(
            validate(token, url, SignedBody::Form(&params), None),
            Err(TwilioError::MissingSignature)
        );
    }

    /// Vectors shared by Twilio's official helper libraries' request-validator tests
    /// (twilio-python, twilio-node, twilio-java, twilio-csharp): (URL Twilio called, form
    /// parameters or raw body, signature header) triples that must validate.
    #[test]
    fn the_official_helper_libraries_vectors_validate() {
        let base = params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let form_cases = [
            (url, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            (url, "kvajT1Ptam85bY51eRf/AJRuM3w="),
            (
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            ),
            (
                "http://mycompany.com/myapp.php?foo=1&bar=2",
                "0ZXoZLH/DfblKGATFgpif+LLRf4=",
            ),
            (
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
            ),
            (
                "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
                "CYn1h0gLBdNxDGkKJg6hYohgeD8=",
            ),
            (
                "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            ),
            (
                "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
                "CukzLTc1tT5dXEDIHm/tKBanW10=",
            ),
            (
                "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
                "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=",
            ),
            (
                "https://user@mycompany.com/myapp.php?foo=1&bar=2",
                "2YRLlVAflCqxaNicjMpJcSTgzSs=",
            ),
            (
                "https://MyCompany.com/myapp.php?foo=1&bar=2",
                "g9IN/x4Cft2g517EjYvEvM/W7LU=",
            ),
        ];
        for (url, sig) in form_cases {
            assert_eq!(
                validate("12345", url, SignedBody::Form(&base), Some(sig)),
                Ok(()),
                "{url} {sig}"
            );
        }
        let repeated = params(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
        ]);
        assert_eq!(
            validate(
                "12345",
                url,
                SignedBody::Form(&repeated),
                Some("IK+Dwps556ElfBT0I3Rgjkr1wJU=")
            ),
            Ok(())
        );

        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        let raw_cases = [
            (format!("{url}&bodySHA256={hash}"), &body[..], "a9nBmqA0ju/hNViExpshrM61xv4="),
            (format!("https://mycompany.com/myapp.php?bodySHA256={hash}"), &body[..], "y77kIzt2vzLz71DgmJGsen2scGs="),
            (
                "https://mycompany.com:443/myapp.php?foo=1&bar=2&bodySHA256=44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a".to_owned(),
                &b"{}"[..],
                "Ldidvp12m26NI7eqEvxnEpkd9Hc=",
            ),
        ];
        for (url, body, sig) in raw_cases {
            assert_eq!(
                validate("12345", &url, SignedBody::Raw(body), Some(sig)),
                Ok(()),
                "{url}"
            );
        }
    }

    #[test]
    fn repeated_parameters_are_signed_sorted() {
        let a = signature(
            "t",
            "https://x.io/h",
            &params(&[("MediaUrl", "b"), ("MediaUrl", "a"), ("Body", "x")]),
        );
        let b = signature(
            "t",
            "https://x.io/h",
            &params(&[("Body", "x"), ("MediaUrl", "a"), ("MediaUrl", "b")]),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn a_json_body_is_covered_by_body_sha256() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = hex::encode(Sha256::digest(body));
        let url = format!("https://mycompany.com/myapp.php?bodySHA256={hash}");
        let sig = signature("12345", &url, &[]);
        assert_eq!(validate("12345", &url, SignedBody::Raw(body), Some(&sig)), Ok(()));
        assert_eq!(
            validate("12345", &url, SignedBody::Raw(b"{\"property\": \"other\"}"), Some(&sig)),
            Err(TwilioError::BadBodyHash)
        );
        assert_eq!(
            validate(
                "12345",
                "https://mycompany.com/myapp.php",
                SignedBody::Raw(body),
                Some(&sig)
            ),
            Err(TwilioError::BadBodyHash)
        );
    }

    #[test]
    fn ports_are_found_past_userinfo_and_ipv6_brackets() {
        assert_eq!(without_port("https://u:p@h.io:8443/x?a=1"), "https://u:p@h.io/x?a=1");
        assert_eq!(with_default_port("http://[::1]/x"), "http://[::1]:80/x");
        assert_eq!(without_port("http://[::1]:9000/x"), "http://[::1]/x");
    }

    #[test]
    fn an_inbound_mms_becomes_an_envelope_with_media_metadata() {
        let p = params(&[
            ("MessageSid", "SM1"),
            ("From", "0034 600 12 34 56"),
            ("To", "+34910000000"),
            ("Body", "Foto del daño"),
            ("NumMedia", "2"),
            ("MediaUrl0", "https://api.twilio.com/m0"),
            ("MediaContentType0", "image/jpeg"),
            ("MediaUrl1", "https://api.twilio.com/m1"),
            ("MediaContentType1", "image/png"),
            ("NumSegments", "1"),
        ]);
        let env = inbound_envelope(
            &p,
            Uuid::nil(),
            Region::parse("ES").unwrap(),
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(env.external_id, "SM1");
        assert_eq!(env.contact.to_string(), "phone:+34600123456");
        assert_eq!(env.content.text.as_deref(), Some("Foto del daño"));
        assert_eq!(env.attachments.len(), 2);
        assert_eq!(env.attachments[1].url.as_deref(), Some("https://api.twilio.com/m1"));
        assert_eq!(env.details["to"], "+34910000000");
        assert_eq!(env.details["num_segments"], "1");
    }

    #[test]
    fn bad_inbound_parameters_are_named() {
        let region = Region::parse("ES").unwrap();
        let at = OffsetDateTime::UNIX_EPOCH;
        let e = |pairs: &[(&str, &str)]| inbound_envelope(&params(pairs), Uuid::nil(), region, at).unwrap_err();
        assert_eq!(e(&[("From", "+34600123456")]), TwilioError::Missing("MessageSid"));
        assert_eq!(e(&[("MessageSid", "SM1")]), TwilioError::Missing("From"));
        assert!(matches!(
            e(&[("MessageSid", "SM1"), ("From", "abc")]),
            TwilioError::Invalid { field: "From", .. }
        ));
        assert!(matches!(
            e(&[("MessageSid", "SM1"), ("From", "+34600123456"), ("NumMedia", "x")]),
            TwilioError::Invalid { field: "NumMedia", .. }
        ));
    }

    #[test]
    fn status_callbacks_parse_and_unknown_statuses_are_refused() {
        let cb = status_callback(&params(&[
            ("MessageSid", "SM9"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30003"),
        ]))
        .unwrap();
        assert_eq!(
            cb,
            StatusCallback {
                message_sid: "SM9".into(),
                state: DeliveryState::Undelivered,
                error_code: Some("30003".into())
            }
        );
        assert!(matches!(
            status_callback(&params(&[("MessageSid", "SM9"), ("MessageStatus", "lost")])),
            Err(TwilioError::Invalid { .. })
        ));
    }

    #[test]
    fn twiml_escapes_the_reply() {
        assert_eq!(
            twiml(None),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#
        );
        assert!(twiml(Some("A & <b>")).contains("<Message>A &amp; &lt;b&gt;</Message>"));
    }
}

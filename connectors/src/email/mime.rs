//! Raw RFC 5322 messages into envelopes, with mail-parser: bodies in any charset (ISO-8859-1 and
//! Windows-1252 read correctly), RFC 2047 encoded headers, attachments and inline `cid:` parts.
//! The external id is the Message-ID, so the same mail fetched twice (after a UIDVALIDITY change,
//! or from two folders) is stored once; a message without one is keyed by the hash of its bytes.

use mail_parser::{MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use super::normalize_message_id;
use crate::address::{EmailAddress, Handle};
use crate::envelope::{AttachmentMeta, ChannelKind, Content, Direction, InboundEnvelope, ThreadingHints};

/// One attachment with its bytes (absent when over the size limit).
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    pub meta: AttachmentMeta,
    pub bytes: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct ParsedEmail {
    pub envelope: InboundEnvelope,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MimeError {
    #[error("not an email message")]
    Unparseable,
    #[error("the message has no From address")]
    NoSender,
    #[error("the From address {0:?} is not a valid email address")]
    BadSender(String),
}

/// A Date header further in the future than this is not believed.
const MAX_CLOCK_SKEW: time::Duration = time::Duration::days(1);

/// The message with a header block that is valid UTF-8. Headers must be ASCII (RFC 5322) or
/// UTF-8 (RFC 6532), but mail clients still send raw Latin-1 or Windows-1252 (`Subject: Teléfono`
/// in 8-bit); such a header block is read as Windows-1252, a superset of Latin-1's printable
/// range, instead of turning every accent into U+FFFD. Bodies keep their declared charsets.
fn with_readable_headers(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    let headers = &raw[..end];
    if std::str::from_utf8(headers).is_ok() {
        return std::borrow::Cow::Borrowed(raw);
    }
    let (decoded, _, _) = encoding_rs::WINDOWS_1252.decode(headers);
    let mut fixed = decoded.into_owned().into_bytes();
    fixed.extend_from_slice(&raw[end..]);
    std::borrow::Cow::Owned(fixed)
}

/// A message over the size limit, from its header alone: sender, date, subject and threading,
/// with a note in place of the body, so an agent sees that it arrived and where it is.
pub fn parse_oversized(
    header: &[u8],
    size: u32,
    limit: u32,
    channel_account_id: Uuid,
    received_at: OffsetDateTime,
) -> Result<ParsedEmail, MimeError> {
    let mut raw = header.to_vec();
    if !raw.ends_with(b"\r\n\r\n") && !raw.ends_with(b"\n\n") {
        raw.extend_from_slice(b"\r\n");
    }
    let mut parsed = parse(&raw, channel_account_id, received_at, 0)?;
    parsed.attachments.clear();
    let envelope = &mut parsed.envelope;
    envelope.attachments.clear();
    envelope.content.html = None;
    envelope.content.text = Some(format!(
        "This message is {size} bytes, over the hub's limit of {limit} bytes, and was left unread in the mailbox."
    ));
    envelope.details["oversized"] = serde_json::json!({"size": size, "limit": limit});
    Ok(parsed)
}

/// Whether a machine sent the message (an auto-reply, a bounce, a list): RFC 3834's
/// `Auto-Submitted` other than `no`, or the older `Precedence` and `X-Autoreply` conventions.
/// Nothing automatic may answer it, or two auto-responders would answer each other for ever.
fn is_auto_submitted(message: &mail_parser::Message<'_>) -> bool {
    let header = |name: &str| message.header_raw(name).map(|v| v.trim().to_ascii_lowercase());
    header("Auto-Submitted").is_some_and(|v| !v.is_empty() && !v.starts_with("no"))
        || header("Precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "junk" | "list" | "auto_reply"))
        || header("X-Autoreply").is_some()
        || header("X-Autorespond").is_some()
}

/// Whether the message is a delivery status notification (RFC 3464: `multipart/report;
/// report-type=delivery-status`) or comes from a mail system's own address.
fn is_bounce(message: &mail_parser::Message<'_>, sender: &EmailAddress) -> bool {
    let report = message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct
                .attribute("report-type")
                .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
    });
    let local = sender.as_str().split('@').next().unwrap_or("").to_ascii_lowercase();
    report || local == "mailer-daemon" || local == "postmaster"
}

pub fn parse(
    raw: &[u8],
    channel_account_id: Uuid,
    received_at: OffsetDateTime,
    max_attachment_bytes: usize,
) -> Result<ParsedEmail, MimeError> {
    let readable = with_readable_headers(raw);
    let message = MessageParser::default()
        .parse(readable.as_ref())
        .ok_or(MimeError::Unparseable)?;
    let from = message.from().and_then(|f| f.first()).ok_or(MimeError::NoSender)?;
    let address = from.address().ok_or(MimeError::NoSender)?;
    let sender = EmailAddress::parse(address).map_err(|_| MimeError::BadSender(address.to_owned()))?;
    let message_id = message.message_id().and_then(normalize_message_id);
    let external_id = message_id
        .clone()
        .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(raw))));
    let in_reply_to = message.in_reply_to().as_text().and_then(normalize_message_id);
    let references = match message.references().as_text_list() {
        Some(list) => list.iter().filter_map(|r| normalize_message_id(r)).collect(),
        None => message
            .references()
            .as_text()
            .and_then(normalize_message_id)
            .into_iter()
            .collect(),
    };
    let occurred_at = message
        .date()
        .and_then(|d| OffsetDateTime::from_unix_timestamp(d.to_timestamp()).ok())
        .filter(|d| *d <= received_at + MAX_CLOCK_SKEW)
        .unwrap_or(received_at);
    let html = message
        .html_part(0)
        .filter(|p| p.is_text_html())
        .and_then(|p| p.text_contents())
        .map(str::to_owned);
    let text = message
        .text_part(0)
        .filter(|p| !p.is_text_html())
        .and_then(|p| p.text_contents())
        .map(str::to_owned);
    let mut attachments = Vec::new();
    let mut omitted = Vec::new();
    for part in message.attachments() {
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_owned(),
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        let size = part.contents().len();
        let name = part.attachment_name().map(str::to_owned);
        let fits = size <= max_attachment_bytes;
        if !fits {
            omitted.push(serde_json::json!({"name": name, "size": size, "reason": "larger than the attachment limit"}));
        }
        attachments.push(Attachment {
            meta: AttachmentMeta {
                name,
                content_type,
                size: Some(size as u64),
                url: None,
                sha256: fits.then(|| hex::encode(Sha256::digest(part.contents()))),
                content_id: part.content_id().map(|c| c.trim_matches(['<', '>']).to_owned()),
            },
            bytes: fits.then(|| part.contents().to_vec()),
        });
    }
    let addresses = |list: Option<&mail_parser::Address>| -> Vec<String> {
        list.map(|a| a.iter().filter_map(|addr| addr.address().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let mut details = serde_json::json!({"to": addresses(message.to()), "cc": addresses(message.cc())});
    if !omitted.is_empty() {
        details["attachments_omitted"] = serde_json::Value::Array(omitted);
    }
    // Automatic mail is stored but asks no one for an answer: it never opens or reopens a
    // conversation, and no automatic reply goes back to it.
    let auto_submitted = is_auto_submitted(&message);
    let bounce = is_bounce(&message, &sender);
    if auto_submitted {
        details["auto_submitted"] = serde_json::Value::Bool(true);
    }
    if bounce {
        details["bounce"] = serde_json::Value::Bool(true);
        if let Some(report) = super::dsn::report(&message) {
            details["delivery_report"] = serde_json::to_value(report).unwrap_or_default();
        }
    }
    let envelope = InboundEnvelope {
        channel_account_id,
        channel: ChannelKind::Email,
        external_id,
        direction: Direction::Inbound,
        contact: Handle::Email(sender),
        contact_name: from.name().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
        occurred_at,
        threading: ThreadingHints {
            message_id,
            in_reply_to,
            references,
            thread_key: None,
        },
        content: Content {
            subject: message.subject().map(str::to_owned),
            text,
            html,
        },
        attachments: attachments.iter().map(|a| a.meta.clone()).collect(),
        details,
        cursor: None,
        agent_extension: None,
        needs_reply: !(auto_submitted || bounce),
    };
    Ok(ParsedEmail { envelope, attachments })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_fixture(raw: &[u8]) -> ParsedEmail {
        parse(raw, Uuid::nil(), OffsetDateTime::now_utc(), 1 << 20).unwrap()
    }

    #[test]
    fn a_latin1_message_with_encoded_headers_reads_correctly() {
        let raw = b"From: =?ISO-8859-1?Q?Jos=E9_Mu=F1oz?= <Jose.Munoz@Example.ES>\r\n\
To: soporte@tienda.es\r\n\
Subject: =?ISO-8859-1?Q?Factura_de_se=F1al?=\r\n\
Message-ID: <m1@example.es>\r\n\
Date: Mon, 02 Mar 2026 10:00:00 +0100\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=ISO-8859-1\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
No funciona el tel\xe9fono desde el mi\xe9rcoles. \xbfPueden ayudarme?\r\n";
        let email = parse_fixture(raw);
        let env = &email.envelope;
        assert_eq!(env.contact.to_string(), "email:jose.munoz@example.es");
        assert_eq!(env.contact_name.as_deref(), Some("José Muñoz"));
        assert_eq!(env.content.subject.as_deref(), Some("Factura de señal"));
        assert_eq!(
            env.content.text.as_deref().map(str::trim),
            Some("No funciona el teléfono desde el miércoles. ¿Pueden ayudarme?")
        );
        assert_eq!(env.external_id, "<m1@example.es>");
        assert_eq!(env.occurred_at.unix_timestamp(), 1_772_442_000);
        assert_eq!(env.content.html, None);
    }

    #[test]
    fn windows_1252_quotes_and_euro_signs_survive() {
        let raw = b"From: ana@example.es\r\nSubject: Presupuesto\r\nContent-Type: text/plain; charset=windows-1252\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\n=93Precio=94: 120 =80 =96 sin IVA\r\n";
        let email = parse_fixture(raw);
        assert_eq!(
            email.envelope.content.text.as_deref().map(str::trim),
            Some("\u{201c}Precio\u{201d}: 120 \u{20ac} \u{2013} sin IVA")
        );
        assert!(
            email.envelope.external_id.starts_with("sha256:"),
            "no Message-ID: keyed by content"
        );
    }

    #[test]
    fn a_reply_carries_its_threading_headers_and_an_html_alternative() {
        let raw = b"From: \"Ana\" <ana@example.es>\r\nTo: soporte@tienda.es\r\nSubject: Re: Pedido 123\r\n\
Message-ID: <r2@example.es>\r\nIn-Reply-To: <0190@tienda.es>\r\nReferences: <m1@example.es> <0190@tienda.es>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSigue sin llegar\r\n\
--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Sigue <b>sin</b> llegar</p><script>x()</script>\r\n--b--\r\n";
        let env = parse_fixture(raw).envelope;
        assert_eq!(env.threading.in_reply_to.as_deref(), Some("<0190@tienda.es>"));
        assert_eq!(
            env.threading.references,
            vec!["<m1@example.es>".to_owned(), "<0190@tienda.es>".to_owned()]
        );
        assert_eq!(env.content.text.as_deref().map(str::trim), Some("Sigue sin llegar"));
        assert!(
            env.content.html.as_deref().unwrap().contains("<b>sin</b>"),
            "raw HTML is kept for the hub to sanitise"
        );
    }

    #[test]
    fn an_oversized_mail_keeps_its_header_and_says_where_it_is() {
        let header = b"From: Ana <ana@example.es>\r\nSubject: Planos\r\nMessage-ID: <big-1@example.es>\r\n\
Content-Type: multipart/mixed; boundary=x\r\n\r\n";
        let email = parse_oversized(header, 80_000_000, 52_428_800, Uuid::nil(), OffsetDateTime::now_utc()).unwrap();
        let env = email.envelope;
        assert_eq!(env.external_id, "<big-1@example.es>");
        assert_eq!(env.content.subject.as_deref(), Some("Planos"));
        assert!(env.content.text.unwrap().contains("80000000 bytes"));
        assert_eq!(env.details["oversized"]["limit"], 52_428_800);
        assert!(env.attachments.is_empty());
    }

    #[test]
    fn automatic_mail_is_recognised() {
        let with = |headers: &str| {
            let raw =
                format!("From: ana@example.es\r\nSubject: Fuera de la oficina\r\n{headers}\r\nVuelvo el lunes\r\n");
            parse_fixture(raw.as_bytes()).envelope.details["auto_submitted"] == true
        };
        assert!(with("Auto-Submitted: auto-replied\r\n"));
        assert!(with("Auto-Submitted: Auto-Generated; reason=x\r\n"));
        assert!(with("Precedence: bulk\r\n"));
        assert!(with("X-Autoreply: yes\r\n"));
        assert!(
            !with("Auto-Submitted: no\r\n"),
            "RFC 3834: `no` means a person wrote it"
        );
        assert!(!with(""));
    }

    #[test]
    fn bounces_and_automatic_mail_ask_for_no_answer() {
        let dsn = b"From: Mail Delivery System <MAILER-DAEMON@mx.example.es>\r\nSubject: Undelivered Mail\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n\
--r\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n\
--r\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.1.1\r\n--r--\r\n";
        let env = parse_fixture(dsn).envelope;
        assert_eq!(env.details["bounce"], true);
        assert!(!env.needs_reply, "a bounce opens no conversation");
        let ooo = parse_fixture(
            b"From: ana@example.es\r\nAuto-Submitted: auto-replied\r\nSubject: Fuera\r\n\r\nVuelvo el lunes\r\n",
        );
        assert!(!ooo.envelope.needs_reply);
        let person = parse_fixture(b"From: ana@example.es\r\nSubject: Hola\r\n\r\nUna pregunta\r\n");
        assert!(person.envelope.needs_reply && person.envelope.details.get("bounce").is_none());
    }

    #[test]
    fn attachments_and_inline_images_are_kept_within_the_limit() {
        let raw = b"From: ana@example.es\r\nSubject: Fotos\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n\
--m\r\nContent-Type: text/plain\r\n\r\nAdjunto la foto\r\n\
--m\r\nContent-Type: image/png; name=\"da\xc3\xb1o.png\"\r\nContent-Disposition: attachment; filename=\"da\xc3\xb1o.png\"\r\nContent-ID: <img1@x>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n\
--m\r\nContent-Type: application/pdf; name=big.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IKNSAwIG9iago=\r\n--m--\r\n";
        let email = parse(raw, Uuid::nil(), OffsetDateTime::now_utc(), 10).unwrap();
        assert_eq!(email.attachments.len(), 2);
        let png = &email.attachments[0];
        assert_eq!(png.meta.name.as_deref(), Some("daño.png"));
        assert_eq!(png.meta.content_type, "image/png");
        assert_eq!(png.meta.content_id.as_deref(), Some("img1@x"));
        assert_eq!(png.bytes.as_deref(), Some(&b"\x89PNG\r\n\x1a\n"[..]));
        assert_eq!(
            png.meta.sha256.as_deref(),
            Some("4c4b6a3be1314ab86138bef4314dde022e600960d8689a2c8f8631802d20dab6")
        );
        assert_eq!(email.attachments[1].meta.sha256, None);
        assert_eq!(email.attachments[1].bytes, None, "over the limit: metadata only");
        assert_eq!(email.envelope.details["attachments_omitted"][0]["name"], "big.pdf");
    }

    #[test]
    fn messages_without_a_usable_sender_are_refused() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(
            parse(b"Subject: x\r\n\r\nbody", Uuid::nil(), now, 0).unwrap_err(),
            MimeError::NoSender
        );
        assert_eq!(
            parse(b"From: not an address\r\n\r\nbody", Uuid::nil(), now, 0).unwrap_err(),
            MimeError::NoSender
        );
        assert!(matches!(
            parse(b"From: <a@@b>\r\n\r\nbody", Uuid::nil(), now, 0),
            Err(MimeError::BadSender(_) | MimeError::NoSender)
        ));
        assert_eq!(parse(b"", Uuid::nil(), now, 0).unwrap_err(), MimeError::Unparseable);
    }

    #[test]
    fn raw_8bit_latin1_headers_are_read_not_mangled() {
        let raw = b"From: Jos\xe9 <jose@example.es>\r\nSubject: Tel\xe9fono aver\xedado\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n\r\nEl tel\xe9fono\r\n";
        let env = parse_fixture(raw).envelope;
        assert_eq!(env.content.subject.as_deref(), Some("Teléfono averíado"));
        assert_eq!(env.contact_name.as_deref(), Some("José"));
        assert_eq!(env.content.text.as_deref().map(str::trim), Some("El teléfono"));
    }

    #[test]
    fn a_date_far_in_the_future_is_not_believed() {
        let now = OffsetDateTime::from_unix_timestamp(1_772_442_000).unwrap();
        let env = parse(
            b"From: a@b.es\r\nDate: Fri, 01 Jan 2100 00:00:00 +0000\r\n\r\nx",
            Uuid::nil(),
            now,
            0,
        )
        .unwrap()
        .envelope;
        assert_eq!(env.occurred_at, now);
    }
}

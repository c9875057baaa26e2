//! Email: MIME parsing into envelopes (pure), an IMAP session for fetching and waiting for new
//! mail, an SMTP sender that threads replies with Message-ID, In-Reply-To and References, and
//! readers of exported mailboxes (mbox, Maildir), and the reports inside bounces.

pub mod dsn;
pub mod imap;
pub mod maildir;
pub mod mbox;
pub mod mime;
pub mod smtp;

/// The Message-ID the hub gives the message it sends for interaction `id` (RFC 5322 §3.6.4).
pub fn message_id_for(id: uuid::Uuid, from: &crate::EmailAddress) -> String {
    let domain = from.as_str().rsplit_once('@').map_or("switchboard.invalid", |(_, d)| d);
    format!("<{id}@{domain}>")
}

/// A Message-ID in its canonical stored form: with angle brackets, trimmed.
pub fn normalize_message_id(raw: &str) -> Option<String> {
    let id = raw.trim().trim_start_matches('<').trim_end_matches('>').trim();
    (!id.is_empty() && !id.contains(char::is_whitespace)).then(|| format!("<{id}>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_bracketed_and_live_in_the_senders_domain() {
        let from = crate::EmailAddress::parse("soporte@tienda.es").unwrap();
        assert_eq!(
            message_id_for(uuid::Uuid::nil(), &from),
            "<00000000-0000-0000-0000-000000000000@tienda.es>"
        );
        assert_eq!(normalize_message_id(" abc@x.es ").as_deref(), Some("<abc@x.es>"));
        assert_eq!(normalize_message_id("<abc@x.es>").as_deref(), Some("<abc@x.es>"));
        assert_eq!(normalize_message_id("<>"), None);
    }
}

//! Delivery status notifications (RFC 3464): what a bounce says about the message it reports
//! on. The report's `message/delivery-status` part gives the action, status code, diagnostic
//! and recipient; its `message/rfc822` or `text/rfc822-headers` part gives the reported
//! message's Message-ID, which is how the hub finds the outbound mail that bounced.

use mail_parser::{MimeHeaders, PartType};
use serde::{Deserialize, Serialize};

use super::normalize_message_id;

/// One report's findings; fields the report lacks stay empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    /// The Message-ID of the message the report is about, bracketed.
    pub original_message_id: Option<String>,
    /// `failed`, `delayed`, `delivered`, `relayed` or `expanded` (lower case).
    pub action: Option<String>,
    /// The enhanced status code (RFC 3463), such as `5.1.1`.
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    pub recipient: Option<String>,
}

impl DeliveryReport {
    /// Whether the message was given up on: the action says so, or, without an action, a
    /// permanent (5.x.x) status does. A delay (4.x.x) is not a failure: the server still tries.
    pub fn failed(&self) -> bool {
        match self.action.as_deref() {
            Some(action) => action == "failed",
            None => self.status.as_deref().is_some_and(|s| s.starts_with('5')),
        }
    }
}

/// The report inside a DSN, if the message carries one (a `delivery-status` part or the
/// reported message's headers).
pub fn report(message: &mail_parser::Message<'_>) -> Option<DeliveryReport> {
    let mut report = DeliveryReport::default();
    let mut found = false;
    for part in &message.parts {
        let Some(content_type) = part.content_type() else {
            continue;
        };
        let ctype = content_type.ctype().to_ascii_lowercase();
        let subtype = content_type.subtype().map(str::to_ascii_lowercase);
        match (ctype.as_str(), subtype.as_deref()) {
            ("message", Some("delivery-status" | "global-delivery-status")) => {
                found = true;
                read_fields(&String::from_utf8_lossy(part.contents()), &mut report);
            }
            ("message", Some("rfc822" | "global")) => {
                if let PartType::Message(original) = &part.body {
                    found = true;
                    report.original_message_id = original.message_id().and_then(normalize_message_id);
                }
            }
            ("text", Some("rfc822-headers")) => {
                found = true;
                let headers = String::from_utf8_lossy(part.contents());
                report.original_message_id = unfolded(&headers)
                    .find_map(|(name, value)| name.eq_ignore_ascii_case("message-id").then_some(value))
                    .and_then(|id| normalize_message_id(&id));
            }
            _ => {}
        }
    }
    found.then_some(report)
}

/// Reads the per-recipient fields (the first recipient's, when several are reported).
fn read_fields(text: &str, report: &mut DeliveryReport) {
    for (name, value) in unfolded(text) {
        // `rfc822; ana@example.es` and `smtp; 550 …` name their type first.
        let typed = || {
            value
                .split_once(';')
                .map_or(value.clone(), |(_, v)| v.trim().to_owned())
        };
        let (slot, value) = match name.to_ascii_lowercase().as_str() {
            "action" => (&mut report.action, value.to_ascii_lowercase()),
            "status" => (&mut report.status, value.clone()),
            "diagnostic-code" => (&mut report.diagnostic, typed()),
            "final-recipient" => (&mut report.recipient, typed()),
            _ => continue,
        };
        slot.get_or_insert(value);
    }
}

/// `Name: value` fields with folded continuation lines joined.
fn unfolded(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    fields.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bounce as Postfix writes it (RFC 3464 §6), with the returned headers only. Folded
    /// lines stay on the line they continue: a string continuation would eat their indent.
    const POSTFIX_BOUNCE: &str = "From: MAILER-DAEMON@mail.tienda.es (Mail Delivery System)\r\n\
To: soporte@tienda.es\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Auto-Submitted: auto-replied\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"\r\n\
\r\n\
--B1\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
I'm sorry to have to inform you that your message could not be delivered.\r\n\
--B1\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mail.tienda.es\r\n\
Arrival-Date: Mon,  2 Mar 2026 10:00:00 +0100 (CET)\r\n\
\r\n\
Final-Recipient: rfc822; nadie@example.es\r\n\
Original-Recipient: rfc822;nadie@example.es\r\n\
Action: Failed\r\n\
Status: 5.1.1\r\n\
Remote-MTA: dns; mx.example.es\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <nadie@example.es>: Recipient address\r\n    rejected: User unknown\r\n\
\r\n\
--B1\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: Soporte <soporte@tienda.es>\r\n\
To: nadie@example.es\r\n\
Subject: Re: Pedido 12\r\n\
Message-ID:\r\n <reply.42@tienda.es>\r\n\
\r\n\
--B1--\r\n";

    fn parsed(raw: &str) -> Option<DeliveryReport> {
        report(&mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap())
    }

    #[test]
    fn a_failed_delivery_names_the_message_the_status_and_the_reason() {
        let report = parsed(POSTFIX_BOUNCE).unwrap();
        assert_eq!(report.original_message_id.as_deref(), Some("<reply.42@tienda.es>"));
        assert_eq!(report.action.as_deref(), Some("failed"));
        assert_eq!(report.status.as_deref(), Some("5.1.1"));
        assert_eq!(report.recipient.as_deref(), Some("nadie@example.es"));
        assert_eq!(
            report.diagnostic.as_deref(),
            Some("550 5.1.1 <nadie@example.es>: Recipient address rejected: User unknown")
        );
        assert!(report.failed());
    }

    #[test]
    fn a_delay_is_not_a_failure_and_a_returned_message_is_read_whole() {
        let delayed = POSTFIX_BOUNCE
            .replace("Action: Failed", "Action: delayed")
            .replace("Status: 5.1.1", "Status: 4.4.1")
            .replace(
                "Content-Type: text/rfc822-headers\r\n\r\n",
                "Content-Type: message/rfc822\r\n\r\n",
            )
            .replace("--B1--", "\r\nbody\r\n--B1--");
        let report = parsed(&delayed).unwrap();
        assert_eq!(report.action.as_deref(), Some("delayed"));
        assert!(!report.failed(), "the server still tries");
        assert_eq!(report.original_message_id.as_deref(), Some("<reply.42@tienda.es>"));
    }

    #[test]
    fn mail_without_a_report_has_none() {
        let plain = "From: ana@example.es\r\nSubject: hola\r\nContent-Type: text/plain\r\n\r\nhola\r\n";
        assert_eq!(parsed(plain), None);
    }
}

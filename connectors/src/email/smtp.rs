//! Sending replies by SMTP with lettre. Each message carries the Message-ID the hub recorded for
//! the reply, and In-Reply-To and References from the conversation, so the customer's mail
//! client threads it (RFC 5322 §3.6.4).

use lettre::message::{Mailbox, MultiPart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::{ConnectorError, EmailAddress, OutboundMessage, OutboundSender};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// No TLS (local relays and tests).
    None,
    /// STARTTLS, required (port 587).
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The inbox's own address, replies come from it.
    pub from: EmailAddress,
    pub from_name: Option<String>,
}

pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpSender {
    pub fn new(config: &SmtpConfig) -> Result<Self, ConnectorError> {
        let invalid = |e: &dyn std::fmt::Display| ConnectorError::Invalid(format!("smtp settings: {e}"));
        let tls = || TlsParameters::new(config.host.clone()).map_err(|e| invalid(&e));
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(match config.security {
                SmtpSecurity::None => Tls::None,
                SmtpSecurity::Starttls => Tls::Required(tls()?),
                SmtpSecurity::Tls => Tls::Wrapper(tls()?),
            });
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let from = Mailbox::new(
            config.from_name.clone(),
            config.from.as_str().parse().map_err(|e| invalid(&e))?,
        );
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// The message as it goes on the wire.
    pub fn build(&self, message: &OutboundMessage) -> Result<Message, ConnectorError> {
        let to = message
            .to
            .strip_prefix("email:")
            .ok_or_else(|| ConnectorError::Invalid(format!("an email goes to an email address, not {}", message.to)))?;
        let to: Mailbox = to
            .parse()
            .map_err(|e| ConnectorError::Invalid(format!("recipient: {e}")))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.content.subject.clone().unwrap_or_default())
            .message_id(message.threading.message_id.clone());
        if let Some(parent) = &message.threading.in_reply_to {
            builder = builder.in_reply_to(parent.clone());
        }
        if !message.threading.references.is_empty() {
            builder = builder.references(message.threading.references.join(" "));
        }
        if message.automated {
            // RFC 3834: an automatic reply says so, so that other automatons leave it alone.
            builder = builder.raw_header(header::HeaderValue::new(
                header::HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-replied".into(),
            ));
        }
        let text = message.content.text.clone().unwrap_or_default();
        let built = match &message.content.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(text, html.clone())),
            None => builder.header(header::ContentType::TEXT_PLAIN).body(text),
        };
        built.map_err(|e| ConnectorError::Invalid(format!("message: {e}")))
    }
}

impl OutboundSender for SmtpSender {
    async fn send(&self, message: &OutboundMessage) -> Result<Option<String>, ConnectorError> {
        let email = self.build(message)?;
        match self.transport.send(email).await {
            Ok(_) => Ok(message.threading.message_id.clone()),
            Err(e) if e.is_permanent() => Err(ConnectorError::PeerRejected {
                status: e.status().and_then(|c| c.to_string().parse().ok()).unwrap_or(0),
                detail: e.to_string(),
            }),
            Err(e) => Err(ConnectorError::Transport(format!("smtp: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChannelKind, Content, ThreadingHints};

    #[tokio::test]
    async fn a_reply_is_threaded_and_carries_both_bodies() {
        let sender = SmtpSender::new(&SmtpConfig {
            host: "127.0.0.1".into(),
            port: 25,
            security: SmtpSecurity::None,
            username: None,
            password: None,
            from: EmailAddress::parse("soporte@tienda.es").unwrap(),
            from_name: Some("Soporte".into()),
        })
        .unwrap();
        let message = OutboundMessage {
            id: uuid::Uuid::nil(),
            channel_account_id: uuid::Uuid::nil(),
            channel: ChannelKind::Email,
            conversation_id: uuid::Uuid::nil(),
            to: "email:ana@example.es".into(),
            content: Content {
                subject: Some("Re: Pedido".into()),
                text: Some("Sale mañana".into()),
                html: Some("<p>Sale mañana</p>".into()),
            },
            threading: ThreadingHints {
                message_id: Some("<r1@tienda.es>".into()),
                in_reply_to: Some("<m2@example.es>".into()),
                references: vec!["<m1@example.es>".into(), "<m2@example.es>".into()],
                thread_key: None,
            },
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            automated: false,
        };
        let wire = String::from_utf8(sender.build(&message).unwrap().formatted()).unwrap();
        assert!(!wire.contains("Auto-Submitted"), "a person's reply is not automatic");
        let automatic = OutboundMessage {
            automated: true,
            ..message.clone()
        };
        let wire_auto = String::from_utf8(sender.build(&automatic).unwrap().formatted()).unwrap();
        assert!(wire_auto.contains("Auto-Submitted: auto-replied"), "{wire_auto}");
        for header in [
            "Message-ID: <r1@tienda.es>",
            "In-Reply-To: <m2@example.es>",
            "References: <m1@example.es> <m2@example.es>",
            "From: Soporte <soporte@tienda.es>",
            "To: ana@example.es",
        ] {
            assert!(wire.contains(header), "{header} missing in:\n{wire}");
        }
        assert!(wire.contains("multipart/alternative"));
        let bad = OutboundMessage {
            to: "phone:+34600123456".into(),
            ..message
        };
        assert!(matches!(sender.build(&bad), Err(ConnectorError::Invalid(_))));
    }
}

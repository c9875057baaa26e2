//! What each kind of channel account needs from the hub: its settings, parsed and checked when
//! the account is created, and the sender its replies go out through.

mod sms;

pub use sms::{SmsProvider, SmsSettings};

use serde::Deserialize;
use switchboard_connectors::email::smtp::SmtpSender;
use switchboard_connectors::sms::twilio::TwilioSender;
use switchboard_connectors::webhook::WebhookSender;
use switchboard_connectors::{ConnectorError, OutboundMessage, OutboundSender};

use crate::domain::*;

/// A setting that does not parse, named by its path under `settings`.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct SettingsError {
    pub field: String,
    pub reason: String,
}

/// Settings of an API-channel account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Where replies are delivered, signed; without it replies are only recorded.
    pub webhook_url: Option<String>,
}

/// Checks an account's settings for its kind before it is created.
pub fn check_settings(kind: ChannelKind, settings: &serde_json::Value) -> Result<(), SettingsError> {
    match kind {
        ChannelKind::Api => {
            let parsed: ApiSettings = parse(settings)?;
            if let Some(url) = &parsed.webhook_url {
                http_url(url).map_err(|reason| SettingsError {
                    field: "settings.webhook_url".into(),
                    reason,
                })?;
            }
            Ok(())
        }
        ChannelKind::Sms => parse::<SmsSettings>(settings)?.check(),
        ChannelKind::Voice => parse::<crate::voice::VoiceSettings>(settings)?.check(),
        ChannelKind::Email => parse::<crate::email::EmailSettings>(settings).map(drop),
        ChannelKind::Chat => parse::<crate::chat::ChatSettings>(settings).map(drop),
    }
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(settings: &serde_json::Value) -> Result<T, SettingsError> {
    serde_path_to_error::deserialize(settings).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "settings".to_owned()
        } else {
            format!("settings.{path}")
        };
        SettingsError {
            field,
            reason: e.into_inner().to_string(),
        }
    })
}

pub(crate) fn http_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| e.to_string())?;
    if matches!(url.scheme(), "http" | "https") {
        Ok(url)
    } else {
        Err("must be an http or https URL".into())
    }
}

/// The sender of one channel account.
pub enum ChannelSender {
    Webhook(WebhookSender),
    Twilio(TwilioSender),
    Smtp(SmtpSender),
}

impl ChannelSender {
    pub async fn send(&self, message: &OutboundMessage) -> Result<Option<String>, ConnectorError> {
        match self {
            Self::Webhook(sender) => sender.send(message).await,
            Self::Twilio(sender) => sender.send(message).await,
            Self::Smtp(sender) => sender.send(message).await,
        }
    }
}

/// Whether replies on this account are delivered anywhere (rather than only recorded).
pub fn delivers(account: &ChannelAccount) -> bool {
    match account.kind {
        ChannelKind::Api => account.settings.get("webhook_url").is_some_and(|u| u.is_string()),
        ChannelKind::Sms => SmsSettings::of(account).is_ok_and(|s| s.provider == SmsProvider::Twilio),
        ChannelKind::Email => crate::email::EmailSettings::of(account).is_ok_and(|s| s.smtp_host.is_some()),
        ChannelKind::Chat | ChannelKind::Voice => false,
    }
}

/// Checks a reply against what the account's channel can carry.
pub fn check_reply(account: &ChannelAccount, text: &str) -> Result<(), SettingsError> {
    if account.kind == ChannelKind::Sms {
        let max = switchboard_connectors::sms::twilio::MAX_BODY_CHARS;
        if text.chars().count() > max {
            return Err(SettingsError {
                field: "text".into(),
                reason: format!("an SMS reply is at most {max} characters"),
            });
        }
    }
    Ok(())
}

/// Builds the sender of an account whose replies are delivered.
pub fn sender(
    account: &ChannelAccount,
    client: &reqwest::Client,
    public_url: &str,
) -> Result<ChannelSender, ConnectorError> {
    match account.kind {
        ChannelKind::Api => {
            let url = account
                .settings
                .get("webhook_url")
                .and_then(|u| u.as_str())
                .ok_or_else(|| ConnectorError::Invalid("the account has no webhook_url".into()))?;
            Ok(ChannelSender::Webhook(WebhookSender::new(
                client.clone(),
                url,
                account.secret.clone().into_bytes(),
            )?))
        }
        ChannelKind::Sms => {
            let settings = SmsSettings::of(account).map_err(|e| ConnectorError::Invalid(e.to_string()))?;
            settings.twilio_sender(account, client, public_url)
        }
        ChannelKind::Email => {
            let settings =
                crate::email::EmailSettings::of(account).map_err(|e| ConnectorError::Invalid(e.to_string()))?;
            let config = settings
                .smtp(account)
                .ok_or_else(|| ConnectorError::Invalid("the email account has no smtp_host".into()))?;
            Ok(ChannelSender::Smtp(SmtpSender::new(&config)?))
        }
        other => Err(ConnectorError::Invalid(format!("{other} accounts cannot send yet"))),
    }
}

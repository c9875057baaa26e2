//! Settings of SMS accounts. The account's secret is the provider's auth token (Twilio), or the
//! shared HMAC key of the generic JSON format.

use serde::Deserialize;
use switchboard_connectors::sms::twilio::TwilioSender;
use switchboard_connectors::{ConnectorError, PhoneNumber};

use super::{ChannelSender, SettingsError, http_url};
use crate::domain::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsProvider {
    Twilio,
    /// The generic signed JSON format; inbound only.
    Generic,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    pub provider: SmsProvider,
    /// Twilio's Account SID (`AC…`).
    pub account_sid: Option<String>,
    /// The number replies are sent from (E.164), or a Messaging Service SID (`MG…`).
    pub from: Option<String>,
    /// Twilio's API base URL.
    #[serde(default = "twilio_api")]
    pub api_base_url: String,
    /// Answered to every new inbound message, in TwiML, when set.
    pub auto_reply: Option<String>,
}

fn twilio_api() -> String {
    "https://api.twilio.com".into()
}

impl SmsSettings {
    pub fn of(account: &ChannelAccount) -> Result<Self, SettingsError> {
        super::parse(&account.settings)
    }

    pub(super) fn check(&self) -> Result<(), SettingsError> {
        let invalid = |field: &str, reason: &str| SettingsError {
            field: format!("settings.{field}"),
            reason: reason.into(),
        };
        if self.provider == SmsProvider::Twilio {
            match &self.account_sid {
                Some(sid) if sid.starts_with("AC") && sid.len() == 34 => {}
                _ => {
                    return Err(invalid(
                        "account_sid",
                        "a Twilio Account SID: AC followed by 32 characters",
                    ));
                }
            }
            match &self.from {
                Some(from) if from.starts_with("MG") || PhoneNumber::from_e164(from).is_ok() => {}
                _ => {
                    return Err(invalid(
                        "from",
                        "an E.164 number (+14155550100) or a Messaging Service SID (MG…)",
                    ));
                }
            }
            http_url(&self.api_base_url).map_err(|reason| invalid("api_base_url", &reason))?;
        }
        Ok(())
    }

    pub(super) fn twilio_sender(
        &self,
        account: &ChannelAccount,
        client: &reqwest::Client,
        public_url: &str,
    ) -> Result<ChannelSender, ConnectorError> {
        let missing = |what: &str| ConnectorError::Invalid(format!("the SMS account has no {what}"));
        Ok(ChannelSender::Twilio(TwilioSender {
            client: client.clone(),
            base_url: self.api_base_url.clone(),
            account_sid: self.account_sid.clone().ok_or_else(|| missing("account_sid"))?,
            auth_token: account.secret.clone(),
            from: self.from.clone().ok_or_else(|| missing("from"))?,
            status_callback: Some(format!(
                "{}/webhooks/sms/{}/twilio/status",
                public_url.trim_end_matches('/'),
                account.id
            )),
        }))
    }
}

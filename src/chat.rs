//! Web chat: chat-account settings and visitor identity. A visitor is known by a token the hub
//! issues and signs with the account's secret, kept by the widget, so a reload or a new tab
//! continues the same conversation without the visitor ever logging in.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use uuid::Uuid;

use crate::channels::SettingsError;
use crate::domain::*;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSettings {
    /// Pages allowed to embed the widget (`https://shop.example`); any page when empty.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// The email inbox that sends a visitor the replies they did not read in time (the
    /// offline fallback); none when unset.
    #[serde(default)]
    pub offline_email_account_id: Option<ChannelAccountId>,
    /// How long a reply may stay unread before it goes by email.
    #[serde(default = "default_offline_after")]
    pub offline_after_seconds: u64,
}

fn default_offline_after() -> u64 {
    600
}

impl ChatSettings {
    pub fn of(account: &ChannelAccount) -> Result<Self, SettingsError> {
        crate::channels::parse(&account.settings)
    }

    pub fn allows(&self, origin: Option<&str>) -> bool {
        match origin {
            _ if self.allowed_origins.is_empty() => true,
            Some(origin) => self
                .allowed_origins
                .iter()
                .any(|o| o.trim_end_matches('/') == origin.trim_end_matches('/')),
            None => false,
        }
    }
}

fn mac(account: &ChannelAccount, visitor: Uuid) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(account.secret.as_bytes()).expect("hmac accepts any key length");
    mac.update(account.id.to_string().as_bytes());
    mac.update(b":");
    mac.update(visitor.as_bytes());
    mac
}

/// A token naming `visitor` on `account`: `<visitor id>.<hex HMAC-SHA256>`.
pub fn visitor_token(account: &ChannelAccount, visitor: Uuid) -> String {
    format!(
        "{visitor}.{}",
        hex::encode(mac(account, visitor).finalize().into_bytes())
    )
}

/// The visitor a token names, if the account signed it.
pub fn verify_visitor(account: &ChannelAccount, token: &str) -> Option<Uuid> {
    let (id, signature) = token.split_once('.')?;
    let visitor = Uuid::parse_str(id).ok()?;
    let signature = hex::decode(signature).ok()?;
    mac(account, visitor).verify_slice(&signature).ok().map(|_| visitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(secret: &str) -> ChannelAccount {
        ChannelAccount {
            id: ChannelAccountId::new(),
            kind: ChannelKind::Chat,
            name: "web".into(),
            settings: serde_json::json!({}),
            secret: secret.into(),
        }
    }

    #[test]
    fn a_token_names_its_visitor_only_on_its_own_account() {
        let web = account("secret-1");
        let visitor = Uuid::now_v7();
        let token = visitor_token(&web, visitor);
        assert_eq!(verify_visitor(&web, &token), Some(visitor));
        assert_eq!(verify_visitor(&account("secret-1"), &token), None, "another account");
        let forged = format!("{}.{}", Uuid::now_v7(), token.split_once('.').unwrap().1);
        assert_eq!(verify_visitor(&web, &forged), None, "another visitor");
        assert_eq!(verify_visitor(&web, "garbage"), None);
    }

    #[test]
    fn origins_are_checked_only_when_listed() {
        let open = ChatSettings::default();
        assert!(open.allows(None) && open.allows(Some("https://any.example")));
        let listed = ChatSettings {
            allowed_origins: vec!["https://shop.example/".into()],
            ..Default::default()
        };
        assert!(listed.allows(Some("https://shop.example")));
        assert!(!listed.allows(Some("https://evil.example")) && !listed.allows(None));
    }
}

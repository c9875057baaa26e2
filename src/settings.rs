//! Typed settings: `config/default.toml` (compiled in), then an optional file, then
//! `SWITCHBOARD__SECTION__KEY` environment variables. Secrets are [`SecretString`]s, so they
//! print as `[REDACTED]` in `Debug` output and logs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use switchboard_connectors::Region;

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub index: IndexSettings,
    pub contacts: ContactSettings,
    pub conversations: ConversationSettings,
    pub auth: AuthSettings,
    pub outbox: OutboxSettings,
    pub limits: LimitSettings,
    pub egress: EgressSettings,
    pub automation: AutomationSettings,
    pub cluster: ClusterSettings,
    pub chat: ChatFloodSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub public_url: String,
    pub max_body_bytes: usize,
    pub cookie_secure: bool,
    /// Behind a proxy: the client's address is the first one in `X-Forwarded-For` (only set
    /// this when the proxy overwrites that header).
    pub forwarded_for: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// May carry a password, hence secret.
    pub url: SecretString,
    pub max_connections: u32,
}

impl DatabaseSettings {
    pub fn url(&self) -> &str {
        self.url.expose_secret()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSettings {
    pub path: PathBuf,
    pub commit_interval_ms: u64,
    pub writer_memory_mb: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactSettings {
    pub default_region: Region,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationSettings {
    pub reopen_window_hours: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub session_ttl_hours: u64,
    pub initial_admin_email: String,
    pub initial_admin_password: Option<SecretString>,
    pub login_max_failures: u32,
    pub login_window_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    pub max_attempts: u32,
    pub base_backoff_ms: u64,
    pub poll_interval_ms: u64,
}

/// Outgoing HTTP to admin-configured URLs (see `egress`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressSettings {
    pub allow_private_addresses: bool,
}

/// Limits on untrusted input, each enforced where the input enters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub websocket_frame_bytes: usize,
    pub request_headers: usize,
    pub search_query_chars: usize,
    pub csv_line_bytes: usize,
    pub imap_message_bytes: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomationSettings {
    pub call_settle_seconds: u64,
    pub sweep_interval_seconds: u64,
    pub webhook_max_attempts: u32,
    pub webhook_timeout_seconds: u64,
    pub base_backoff_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatFloodSettings {
    /// Messages one chat visitor may send per minute (bursts up to this many).
    pub visitor_messages_per_minute: u32,
    /// New chat visitor sessions one client address may start per minute.
    pub sessions_per_minute_per_address: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// How long a node's lease on a piece of work (a mailbox, a CDR file, the metrics worker)
    /// lasts without renewal; a dead node's work moves to another node within about this long.
    pub lease_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Plain,
    Json,
}

impl Settings {
    /// Loads the layered settings; `file` is the optional `--config` file.
    pub fn load(file: Option<&Path>) -> Result<Self, config::ConfigError> {
        let mut builder =
            config::Config::builder().add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        builder
            .add_source(
                config::Environment::with_prefix("SWITCHBOARD")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_describe_the_embedded_hub() {
        let s = Settings::load(None).unwrap();
        assert_eq!(s.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database.url(), "sqlite://./data/switchboard.db");
        assert_eq!(s.index.path, PathBuf::from("./data/index"));
    }

    #[test]
    fn a_config_file_overrides_defaults_and_secrets_stay_out_of_debug() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hub.toml");
        std::fs::write(
            &file,
            "[database]\nurl = \"postgres://u:hunter2@db/sb\"\n[auth]\ninitial_admin_password = \"pa55word\"\n",
        )
        .unwrap();
        let s = Settings::load(Some(&file)).unwrap();
        assert_eq!(s.database.url(), "postgres://u:hunter2@db/sb");
        let printed = format!("{s:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("pa55word"),
            "{printed}"
        );
    }

    #[test]
    fn unknown_keys_and_bad_regions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hub.toml");
        std::fs::write(&file, "[server]\nlisten_typo = 1\n").unwrap();
        assert!(
            Settings::load(Some(&file))
                .unwrap_err()
                .to_string()
                .contains("listen_typo")
        );
        std::fs::write(&file, "[contacts]\ndefault_region = \"XX\"\n").unwrap();
        assert!(Settings::load(Some(&file)).unwrap_err().to_string().contains("XX"));
    }
}

//! Phone calls in the hub: voice-account settings, Asterisk `Master.csv` import and following,
//! and turning any source's call record into an envelope for the ingest path.

mod events;
mod follow;
mod import;

pub(crate) use events::pop_for;
pub use events::{CallEventError, CallEventOutcome, handle_call_event};
pub use follow::follow_asterisk_file;
pub use import::{ImportReport, LineProblem, import_asterisk};

use std::path::PathBuf;

use serde::Deserialize;
use switchboard_connectors::voice::{CallError, CallRecord, Extensions};
use switchboard_connectors::{InboundEnvelope, Region};
use time::UtcOffset;

use crate::channels::SettingsError;
use crate::domain::*;

/// Settings of a voice (PBX) account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceSettings {
    /// Digit strings up to this long are internal extensions, not customers' numbers.
    #[serde(default = "default_extension_digits")]
    pub extension_max_digits: usize,
    /// The offset of the PBX's CDR times from UTC (`+01:00`); `+00:00` with Asterisk's `usegmtime`.
    #[serde(default = "utc")]
    pub cdr_utc_offset: String,
    /// A live `Master.csv` to follow.
    pub asterisk_cdr_file: Option<PathBuf>,
}

fn default_extension_digits() -> usize {
    4
}

fn utc() -> String {
    "+00:00".into()
}

impl VoiceSettings {
    pub fn of(account: &ChannelAccount) -> Result<Self, SettingsError> {
        let settings: Self = crate::channels::parse(&account.settings)?;
        settings.check()?;
        Ok(settings)
    }

    pub fn check(&self) -> Result<(), SettingsError> {
        self.offset()?;
        if !(1..=8).contains(&self.extension_max_digits) {
            return Err(SettingsError {
                field: "settings.extension_max_digits".into(),
                reason: "must be 1 to 8".into(),
            });
        }
        Ok(())
    }

    pub fn offset(&self) -> Result<UtcOffset, SettingsError> {
        UtcOffset::parse(
            &self.cdr_utc_offset,
            time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]"),
        )
        .map_err(|_| SettingsError {
            field: "settings.cdr_utc_offset".into(),
            reason: "an offset like +01:00".into(),
        })
    }

    pub fn extensions(&self) -> Extensions {
        Extensions {
            max_digits: self.extension_max_digits,
        }
    }
}

/// The envelope of a call on `account`.
pub fn call_envelope(
    account: &ChannelAccount,
    settings: &VoiceSettings,
    region: Region,
    call: CallRecord,
) -> Result<InboundEnvelope, CallError> {
    call.into_envelope(account.id.0, region, settings.extensions())
}

/// How often new voice accounts with a CDR file are looked for.
const FOLLOWER_SCAN: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts a follower for every voice account with an `asterisk_cdr_file`, including accounts
/// created while running, and waits for them all at shutdown.
pub async fn run_followers(hub: crate::hub::Hub, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut followed = std::collections::HashSet::new();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        match hub.store.channel_accounts().await {
            Ok(accounts) => {
                for account in accounts.into_iter().filter(|a| a.kind == ChannelKind::Voice) {
                    let Ok(settings) = VoiceSettings::of(&account) else {
                        continue;
                    };
                    if let Some(path) = settings.asterisk_cdr_file
                        && followed.insert(account.id)
                    {
                        // One node at a time follows a file: whichever holds its lease.
                        let lease = format!("asterisk-cdr:{}:{}", account.id, path.display());
                        let follower = hub.clone();
                        crate::cluster::lease::spawn_while_held(
                            &mut tasks,
                            &hub,
                            lease,
                            shutdown.clone(),
                            move |stop| follow_asterisk_file(follower.clone(), account.clone(), path.clone(), stop),
                        );
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot list voice accounts"),
        }
        tokio::select! {
            _ = tokio::time::sleep(FOLLOWER_SCAN) => {}
            _ = shutdown.changed() => break,
        }
    }
    while tasks.join_next().await.is_some() {}
}

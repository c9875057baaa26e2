//! Email accounts in the hub: settings, and one IMAP poller per account that fetches everything
//! above its saved UID, ingests it with the cursor in the same transaction, then waits with IDLE
//! (or sleeps, without IDLE) and goes on; after any failure it reconnects with backoff and
//! backfills what arrived meanwhile. A changed UIDVALIDITY restarts from the first message; the
//! Message-ID keys make that a re-match, not a re-import.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;
use switchboard_connectors::email::dsn::DeliveryReport;
use switchboard_connectors::email::imap::{AfterIngest, Fetched, ImapConfig, ImapConnection};
use switchboard_connectors::email::mime;
use switchboard_connectors::email::smtp::{SmtpConfig, SmtpSecurity};
use switchboard_connectors::{ConnectorError, Cursor, EmailAddress, InboundEnvelope};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::channels::SettingsError;
use crate::cluster::lease::spawn_while_held;
use crate::domain::*;
use crate::hub::Hub;

/// Settings of an email account. Its secret is the mailbox password (IMAP and SMTP).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// The inbox's address: replies come from it.
    pub address: EmailAddress,
    pub from_name: Option<String>,
    pub imap_host: Option<String>,
    #[serde(default = "imaps")]
    pub imap_port: u16,
    #[serde(default = "yes")]
    pub imap_tls: bool,
    /// Defaults to the address.
    pub username: Option<String>,
    #[serde(default = "inbox")]
    pub mailbox: String,
    pub smtp_host: Option<String>,
    #[serde(default = "submission")]
    pub smtp_port: u16,
    #[serde(default = "starttls")]
    pub smtp_security: SmtpSecurity,
    /// How long one IDLE (or, without IDLE, one sleep) lasts before checking again.
    #[serde(default = "idle_secs")]
    pub idle_seconds: u64,
    /// Attachments larger than this keep only their metadata.
    #[serde(default = "attachment_limit")]
    pub max_attachment_bytes: usize,
    /// What happens to a mail in the mailbox once it is stored: `"keep"` (the default),
    /// `"mark_seen"` or `{"move_to": "Folder"}`. Never deleted.
    #[serde(default)]
    pub after_ingest: AfterIngest,
}

fn imaps() -> u16 {
    993
}
fn submission() -> u16 {
    587
}
fn yes() -> bool {
    true
}
fn inbox() -> String {
    "INBOX".into()
}
fn starttls() -> SmtpSecurity {
    SmtpSecurity::Starttls
}
fn idle_secs() -> u64 {
    300
}
fn attachment_limit() -> usize {
    10 << 20
}

impl EmailSettings {
    pub fn of(account: &ChannelAccount) -> Result<Self, SettingsError> {
        crate::channels::parse(&account.settings)
    }

    fn username(&self) -> String {
        self.username.clone().unwrap_or_else(|| self.address.to_string())
    }

    pub fn imap(&self, account: &ChannelAccount) -> Option<ImapConfig> {
        Some(ImapConfig {
            host: self.imap_host.clone()?,
            port: self.imap_port,
            tls: self.imap_tls,
            username: self.username(),
            password: account.secret.clone(),
            mailbox: self.mailbox.clone(),
        })
    }

    pub fn smtp(&self, account: &ChannelAccount) -> Option<SmtpConfig> {
        Some(SmtpConfig {
            host: self.smtp_host.clone()?,
            port: self.smtp_port,
            security: self.smtp_security,
            username: Some(self.username()),
            password: Some(account.secret.clone()),
            from: self.address.clone(),
            from_name: self.from_name.clone(),
        })
    }
}

/// How often new email accounts are looked for.
const SCAN: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Starts a poller for every email account with an IMAP host, including ones created while
/// running, each polling while this node holds the mailbox's lease; waits for them at shutdown.
pub async fn run_pollers(hub: Hub, mut shutdown: watch::Receiver<bool>) {
    let mut polled = HashSet::new();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        match hub.store.channel_accounts().await {
            Ok(accounts) => {
                for account in accounts.into_iter().filter(|a| a.kind == ChannelKind::Email) {
                    let Ok(settings) = EmailSettings::of(&account) else {
                        continue;
                    };
                    if settings.imap(&account).is_some() && polled.insert(account.id) {
                        // One node at a time polls a mailbox: whichever holds its lease.
                        let lease = format!("imap:{}", account.id);
                        let poller = hub.clone();
                        spawn_while_held(&mut tasks, &hub, lease, shutdown.clone(), move |stop| {
                            poll_account(poller.clone(), account.clone(), settings.clone(), stop)
                        });
                    }
                }
            }
            Err(error) => warn!(%error, "cannot list email accounts"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SCAN) => {}
            _ = shutdown.changed() => break,
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Keeps one mailbox ingested until shutdown, reconnecting with backoff after failures.
async fn poll_account(hub: Hub, account: ChannelAccount, settings: EmailSettings, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let session = tokio::select! {
            result = sync_mailbox(&hub, &account, &settings) => result,
            _ = shutdown.changed() => return,
        };
        let Err(error) = session;
        warn!(account = %account.id, %error, retry_in_s = backoff.as_secs(), "imap session ended; reconnecting");
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One IMAP session: backfill, then wait for and ingest new mail, until something fails.
async fn sync_mailbox(
    hub: &Hub,
    account: &ChannelAccount,
    settings: &EmailSettings,
) -> Result<std::convert::Infallible, ConnectorError> {
    let config = settings
        .imap(account)
        .ok_or_else(|| ConnectorError::Invalid("no imap_host".into()))?;
    let stream = format!("imap:{}", config.mailbox);
    let mut connection = ImapConnection::connect(&config).await?;
    info!(account = %account.id, mailbox = %config.mailbox, idle = connection.supports_idle, "imap connected");
    loop {
        let saved = hub
            .store
            .cursor(account.id, &stream)
            .await
            .map_err(|e| ConnectorError::Transport(e.to_string()))?;
        let validity = connection.state.uid_validity;
        let mut last_uid = match saved.as_deref().and_then(|p| p.split_once(':')) {
            Some((v, uid)) if v.parse() == Ok(validity) => uid.parse().unwrap_or(0),
            Some(_) => {
                warn!(account = %account.id, uid_validity = validity, "uidvalidity changed; re-matching the mailbox by message-id");
                0
            }
            None => 0,
        };
        // Each batch is stored while the next one is fetched.
        let limit = hub.settings.limits.imap_message_bytes;
        let mut fetched = connection.fetch_after(last_uid, limit).await?;
        while let Some(&(highest, _)) = fetched.last() {
            let parsed = parse_batch(hub, account, settings, &fetched, limit).await?;
            // Mail stored whole may be marked or moved afterwards; mail over the size limit
            // (stored from its header) and mail that could not be parsed stay as they are.
            let stored_whole: Vec<u32> = parsed
                .iter()
                .map(|(uid, _)| *uid)
                .filter(|uid| fetched.iter().any(|(u, f)| u == uid && matches!(f, Fetched::Whole(_))))
                .collect();
            let position = |uid: u32| Cursor {
                stream: stream.clone(),
                position: format!("{validity}:{uid}"),
            };
            let (stored, next) = tokio::join!(
                store_batch(hub, account.id, parsed, position(highest), position),
                connection.fetch_after(highest, limit)
            );
            stored?;
            if let Err(error) = connection.dispose(&stored_whole, &settings.after_ingest).await {
                metrics::counter!("switchboard_email_after_ingest_failed_total").increment(1);
                warn!(account = %account.id, %error, "stored mail left in the mailbox as it was");
            }
            last_uid = highest;
            fetched = next?;
        }
        connection = connection
            .wait_for_change(Duration::from_secs(settings.idle_seconds))
            .await?;
    }
}

/// Parses fetched mail into envelopes (with their UIDs), storing attachments' bytes first: a
/// crash before the mail is stored leaves only an unused blob. Mail that cannot be parsed stays
/// in the mailbox untouched, reported and counted for the operator.
async fn parse_batch(
    hub: &Hub,
    account: &ChannelAccount,
    settings: &EmailSettings,
    fetched: &[(u32, Fetched)],
    limit: u32,
) -> Result<Vec<(u32, InboundEnvelope)>, ConnectorError> {
    let mut envelopes = Vec::with_capacity(fetched.len());
    for (uid, mail) in fetched {
        let parsed = match mail {
            Fetched::Whole(raw) => mime::parse(raw, account.id.0, now(), settings.max_attachment_bytes),
            Fetched::HeaderOnly { header, size } => {
                metrics::counter!("switchboard_email_oversized_total").increment(1);
                warn!(account = %account.id, uid, size, limit, "mail over the size limit: stored from its header");
                mime::parse_oversized(header, *size, limit, account.id.0, now())
            }
        };
        match parsed {
            Ok(parsed) => {
                for attachment in &parsed.attachments {
                    if let (Some(bytes), Some(hash)) = (&attachment.bytes, &attachment.meta.sha256) {
                        hub.store
                            .put_blob(hash, &attachment.meta.content_type, bytes)
                            .await
                            .map_err(|e| ConnectorError::Transport(format!("storing an attachment: {e}")))?;
                    }
                }
                envelopes.push((*uid, parsed.envelope));
            }
            Err(error) => {
                metrics::counter!("switchboard_email_unparseable_total").increment(1);
                warn!(account = %account.id, uid, %error, "mail not ingested");
            }
        }
    }
    Ok(envelopes)
}

/// Stores one fetched batch and moves the cursor to `done`, the batch's highest UID. The last
/// mail carries that cursor into its own transaction, so a crash right after the commit does not
/// fetch the batch again; the explicit save covers a batch whose last mails were duplicates or
/// unparseable. If any mail fails, the cursor goes back to just before it (`position` makes one
/// from a UID), since a later mail of the batch may have moved it further: the next session
/// fetches it again, and what was stored meanwhile is recognised by its Message-ID.
async fn store_batch(
    hub: &Hub,
    account: ChannelAccountId,
    mut parsed: Vec<(u32, InboundEnvelope)>,
    done: Cursor,
    position: impl Fn(u32) -> Cursor,
) -> Result<(), ConnectorError> {
    if let Some((_, last)) = parsed.last_mut() {
        last.cursor = Some(done.clone());
    }
    let (uids, envelopes): (Vec<u32>, Vec<InboundEnvelope>) = parsed.into_iter().unzip();
    let outcomes = hub.ingest_many(envelopes).await;
    for stored in outcomes.iter().flatten().filter(|o| !o.duplicate) {
        record_bounce(hub, account, &stored.interaction).await;
    }
    if let Some((uid, error)) = uids
        .iter()
        .zip(&outcomes)
        .find_map(|(uid, outcome)| outcome.as_ref().err().map(|e| (*uid, e)))
    {
        if let Err(rewind) = hub.store.save_cursor(account, &position(uid - 1)).await {
            warn!(%account, uid, error = %rewind, "cannot move the cursor back before a mail that was not stored");
        }
        return Err(ConnectorError::Transport(format!("ingest failed: {error}")));
    }
    hub.store
        .save_cursor(account, &done)
        .await
        .map_err(|e| ConnectorError::Transport(e.to_string()))
}

/// A bounce reporting that one of this inbox's mails failed marks that mail's delivery failed,
/// with the report's status and diagnostic, and tells the consoles. A report about mail the
/// hub did not send, or a delay, changes nothing.
async fn record_bounce(hub: &Hub, account: ChannelAccountId, bounce: &Interaction) {
    let Ok(report) = serde_json::from_value::<DeliveryReport>(bounce.details["delivery_report"].clone()) else {
        return;
    };
    let failed = report.failed();
    let Some(original) = report.original_message_id.filter(|_| failed) else {
        return;
    };
    let reason = [report.status, report.diagnostic]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ");
    // Ranked with the final outcomes of other channels' receipts: nothing later overrides it.
    let error = Some(reason.as_str()).filter(|r| !r.is_empty());
    match hub.apply_receipt(account, &original, "failed", 5, error).await {
        Ok(Some(_)) => info!(%account, message_id = %original, %reason, "bounce: delivery failed"),
        Ok(None) => info!(%account, message_id = %original, "bounce about mail already failed or not sent by this hub"),
        Err(error) => warn!(%account, %error, "cannot record a bounce"),
    }
}

/// What an import of exported mail did.
#[derive(Debug, Default)]
pub struct MailImportReport {
    pub messages: usize,
    pub imported: usize,
    pub duplicates: usize,
    /// Messages not imported, by their position in the file (1-based), and why.
    pub errors: Vec<(usize, String)>,
}

/// Messages handed to the ingest path at a time.
const IMPORT_BATCH: usize = 200;

/// Imports exported mail (an mbox's or a Maildir's messages, in order) into an email inbox, as
/// if fetched over IMAP. The external id is the Message-ID (or the content's hash), so
/// importing the same mail again stores nothing new. Mail the inbox itself sent (From is the
/// inbox's address) is imported as an outbound message to its first recipient.
pub async fn import_mail(
    queue: &crate::ingest::IngestQueue,
    store: &crate::store::Store,
    account: &ChannelAccount,
    messages: impl Iterator<Item = std::io::Result<Vec<u8>>>,
    max_message_bytes: usize,
    mut progress: impl FnMut(usize),
) -> Result<MailImportReport, SettingsError> {
    use switchboard_connectors::{Direction, Handle};

    let settings = EmailSettings::of(account)?;
    let mut report = MailImportReport::default();
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    for (index, raw) in messages.enumerate() {
        let position = index + 1;
        report.messages += 1;
        let raw = match raw {
            Ok(raw) if raw.len() <= max_message_bytes => raw,
            Ok(raw) => {
                report.errors.push((
                    position,
                    format!("{} bytes, over the limit of {max_message_bytes}", raw.len()),
                ));
                continue;
            }
            Err(e) => {
                report.errors.push((position, format!("unreadable: {e}")));
                break;
            }
        };
        progress(raw.len());
        let mut parsed = match mime::parse(&raw, account.id.0, now(), settings.max_attachment_bytes) {
            Ok(parsed) => parsed,
            Err(e) => {
                report.errors.push((position, e.to_string()));
                continue;
            }
        };
        if parsed.envelope.contact == Handle::Email(settings.address.clone()) {
            let recipient = parsed.envelope.details["to"][0]
                .as_str()
                .and_then(|to| EmailAddress::parse(to).ok());
            match recipient {
                Some(to) => {
                    parsed.envelope.direction = Direction::Outbound;
                    parsed.envelope.contact = Handle::Email(to);
                    parsed.envelope.contact_name = None;
                    parsed.envelope.needs_reply = false;
                }
                None => {
                    report.errors.push((position, "sent by this inbox to nobody".into()));
                    continue;
                }
            }
        }
        // Bytes first, as the IMAP poller does: a failure leaves the message out, to import again.
        let mut stored = true;
        for attachment in &parsed.attachments {
            if let (Some(bytes), Some(hash)) = (&attachment.bytes, &attachment.meta.sha256)
                && let Err(e) = store.put_blob(hash, &attachment.meta.content_type, bytes).await
            {
                report.errors.push((position, format!("storing an attachment: {e}")));
                stored = false;
                break;
            }
        }
        if stored {
            batch.push((position, parsed.envelope));
        }
        if batch.len() == IMPORT_BATCH {
            ingest_batch(queue, store, &mut batch, &mut report).await;
        }
    }
    ingest_batch(queue, store, &mut batch, &mut report).await;
    Ok(report)
}

async fn ingest_batch(
    queue: &crate::ingest::IngestQueue,
    store: &crate::store::Store,
    batch: &mut Vec<(usize, switchboard_connectors::InboundEnvelope)>,
    report: &mut MailImportReport,
) {
    if batch.is_empty() {
        return;
    }
    let (positions, envelopes): (Vec<usize>, Vec<_>) = std::mem::take(batch).into_iter().unzip();
    for (position, outcome) in positions.into_iter().zip(queue.ingest_many(store, envelopes).await) {
        match outcome {
            Ok(o) if o.duplicate => report.duplicates += 1,
            Ok(_) => report.imported += 1,
            Err(e) => report.errors.push((position, e.to_string())),
        }
    }
}

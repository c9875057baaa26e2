//! An IMAP session for ingesting one mailbox (RFC 3501): log in over plain TCP or TLS, select
//! the mailbox, fetch every message above a UID without marking it seen (`BODY.PEEK[]`), and
//! wait for new mail with IDLE (RFC 2177) where the server offers it.

use std::sync::Arc;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::ConnectorError;

/// A fetched message: whole, or only its header when it is over the size limit.
#[derive(Debug, Clone)]
pub enum Fetched {
    Whole(Vec<u8>),
    HeaderOnly { header: Vec<u8>, size: u32 },
}

/// Any byte stream an IMAP session can run over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

type Session = async_imap::Session<Box<dyn Io>>;

#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub host: String,
    pub port: u16,
    /// Implicit TLS (port 993); plain otherwise.
    pub tls: bool,
    pub username: String,
    pub password: String,
    pub mailbox: String,
}

/// What the hub does with a mail in the mailbox once it is stored. Never deletes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AfterIngest {
    /// Leave it as it was, unread (the default).
    #[default]
    Keep,
    /// Set `\Seen`, as a mail client that read it would.
    MarkSeen,
    /// Move it to this folder, created if missing (RFC 6851 MOVE, or COPY and UID EXPUNGE of
    /// exactly that mail where MOVE is missing).
    MoveTo(String),
}

/// What SELECT reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxState {
    pub uid_validity: u32,
    pub uid_next: Option<u32>,
    pub exists: u32,
}

/// A logged-in session with the configured mailbox selected.
pub struct ImapConnection {
    session: Session,
    mailbox: String,
    pub state: MailboxState,
    pub supports_idle: bool,
    supports_move: bool,
    supports_uidplus: bool,
    /// Folders this session created or found, for [`AfterIngest::MoveTo`].
    folders: Vec<String>,
}

/// Fetch at most this many messages per round trip.
pub const FETCH_BATCH: u32 = 200;
const TIMEOUT: Duration = Duration::from_secs(60);

fn transport(what: &str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Transport(format!("imap {what}: {e}"))
}

/// Collects a command's untagged responses, giving up after [`TIMEOUT`].
async fn collect<T, E: std::fmt::Display>(
    what: &str,
    responses: impl futures::Stream<Item = Result<T, E>>,
) -> Result<Vec<T>, ConnectorError> {
    tokio::time::timeout(TIMEOUT, responses.try_collect())
        .await
        .map_err(|e| transport(what, e))?
        .map_err(|e| transport(what, e))
}

impl ImapConnection {
    pub async fn connect(config: &ImapConfig) -> Result<Self, ConnectorError> {
        let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect((config.host.as_str(), config.port)))
            .await
            .map_err(|e| transport("connect", e))?
            .map_err(|e| transport("connect", e))?;
        let stream: Box<dyn Io> = if config.tls {
            let mut roots = tokio_rustls::rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            let tls = tokio_rustls::rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(config.host.clone())
                .map_err(|e| transport("server name", e))?;
            Box::new(
                tokio_rustls::TlsConnector::from(Arc::new(tls))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| transport("tls", e))?,
            )
        } else {
            Box::new(tcp)
        };
        let mut client = async_imap::Client::new(stream);
        // The server speaks first (RFC 3501 §7.1.1); the session must not read it as a reply.
        client
            .read_response()
            .await
            .map_err(|e| transport("greeting", e))?
            .ok_or_else(|| transport("greeting", "connection closed"))?;
        let mut session = client
            .login(&config.username, &config.password)
            .await
            .map_err(|(e, _)| match e {
                async_imap::error::Error::No(reason) | async_imap::error::Error::Bad(reason) => {
                    ConnectorError::PeerRejected {
                        status: 0,
                        detail: format!("imap login refused: {reason}"),
                    }
                }
                other => transport("login", other),
            })?;
        // A server that will not say what it offers is used without extensions.
        let capabilities = session.capabilities().await.ok();
        let offers = |name: &str| capabilities.as_ref().is_some_and(|c| c.has_str(name));
        let (supports_idle, supports_move, supports_uidplus) = (offers("IDLE"), offers("MOVE"), offers("UIDPLUS"));
        let mailbox = session
            .select(&config.mailbox)
            .await
            .map_err(|e| transport("select", e))?;
        let state = MailboxState {
            uid_validity: mailbox
                .uid_validity
                .ok_or_else(|| transport("select", "the server reported no UIDVALIDITY"))?,
            uid_next: mailbox.uid_next,
            exists: mailbox.exists,
        };
        Ok(Self {
            session,
            mailbox: config.mailbox.clone(),
            state,
            supports_idle,
            supports_move,
            supports_uidplus,
            folders: Vec::new(),
        })
    }

    /// The messages with a UID above `after`, oldest first, at most [`FETCH_BATCH`]. Sizes are
    /// asked first: a message over `max_bytes` is fetched as its header only, never whole.
    pub async fn fetch_after(&mut self, after: u32, max_bytes: u32) -> Result<Vec<(u32, Fetched)>, ConnectorError> {
        let first = after.saturating_add(1);
        let last = first.saturating_add(FETCH_BATCH - 1);
        let sizes = self.fetch(&format!("{first}:{last}"), "(UID RFC822.SIZE)").await?;
        // `n:m` may answer with the last message even when it is below n (RFC 3501 §6.4.8).
        let sizes: Vec<(u32, u32)> = sizes
            .iter()
            .filter_map(|f| Some((f.uid.filter(|uid| *uid > after)?, f.size.unwrap_or(0))))
            .collect();
        let set = |big: bool| {
            sizes
                .iter()
                .filter(|(_, size)| (*size > max_bytes) == big)
                .map(|(uid, _)| uid.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut messages = Vec::with_capacity(sizes.len());
        let whole = set(false);
        if !whole.is_empty() {
            for f in self.fetch(&whole, "(UID BODY.PEEK[])").await? {
                if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                    messages.push((uid, Fetched::Whole(body.to_vec())));
                }
            }
        }
        let oversized = set(true);
        if !oversized.is_empty() {
            for f in self.fetch(&oversized, "(UID RFC822.SIZE BODY.PEEK[HEADER])").await? {
                if let (Some(uid), Some(header)) = (f.uid, f.header()) {
                    messages.push((
                        uid,
                        Fetched::HeaderOnly {
                            header: header.to_vec(),
                            size: f.size.unwrap_or(0),
                        },
                    ));
                }
            }
        }
        messages.sort_by_key(|(uid, _)| *uid);
        Ok(messages)
    }

    /// Does with stored mail what `after` says. A server without MOVE and UIDPLUS cannot move
    /// one mail without expunging others marked deleted: it is refused, not approximated.
    pub async fn dispose(&mut self, uids: &[u32], after: &AfterIngest) -> Result<(), ConnectorError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        match after {
            AfterIngest::Keep => Ok(()),
            AfterIngest::MarkSeen => self.store_flags(&set, "+FLAGS.SILENT (\\Seen)").await,
            AfterIngest::MoveTo(folder) => {
                if !self.supports_move && !self.supports_uidplus {
                    return Err(ConnectorError::Invalid(
                        "the server offers neither MOVE nor UIDPLUS: mail can be kept or marked seen, not moved".into(),
                    ));
                }
                if !self.folders.contains(folder) {
                    // "Already exists" is the usual answer; a real failure shows in the move.
                    let _ = self.session.create(folder).await;
                    self.folders.push(folder.clone());
                }
                if self.supports_move {
                    self.session
                        .uid_mv(&set, folder)
                        .await
                        .map_err(|e| transport("move", e))
                } else {
                    self.session
                        .uid_copy(&set, folder)
                        .await
                        .map_err(|e| transport("copy", e))?;
                    self.store_flags(&set, "+FLAGS.SILENT (\\Deleted)").await?;
                    let expunged = self
                        .session
                        .uid_expunge(&set)
                        .await
                        .map_err(|e| transport("expunge", e))?;
                    collect("expunge", expunged).await?;
                    Ok(())
                }
            }
        }
    }

    async fn store_flags(&mut self, set: &str, query: &str) -> Result<(), ConnectorError> {
        let updates = self
            .session
            .uid_store(set, query)
            .await
            .map_err(|e| transport("store", e))?;
        collect("store", updates).await?;
        Ok(())
    }

    async fn fetch(&mut self, set: &str, items: &str) -> Result<Vec<async_imap::types::Fetch>, ConnectorError> {
        let fetches = self
            .session
            .uid_fetch(set, items)
            .await
            .map_err(|e| transport("fetch", e))?;
        collect("fetch", fetches).await
    }

    /// Waits up to `wait` for the mailbox to change: with IDLE when offered, else by sleeping.
    /// Returns the connection for further use.
    pub async fn wait_for_change(self, wait: Duration) -> Result<Self, ConnectorError> {
        if !self.supports_idle {
            tokio::time::sleep(wait).await;
            return Ok(self);
        }
        let Self {
            session,
            mailbox,
            state,
            supports_idle,
            supports_move,
            supports_uidplus,
            folders,
        } = self;
        let mut idle = session.idle();
        idle.init().await.map_err(|e| transport("idle", e))?;
        let (waiting, _stop) = idle.wait_with_timeout(wait);
        let outcome = waiting.await.map_err(|e| transport("idle", e))?;
        let mut session = idle.done().await.map_err(|e| transport("idle done", e))?;
        if !matches!(outcome, IdleResponse::Timeout) {
            tracing::debug!(mailbox = %mailbox, "imap idle woke");
        }
        // Re-select to refresh EXISTS and notice a changed UIDVALIDITY.
        let selected = session.select(&mailbox).await.map_err(|e| transport("select", e))?;
        let state = MailboxState {
            uid_validity: selected.uid_validity.unwrap_or(state.uid_validity),
            uid_next: selected.uid_next,
            exists: selected.exists,
        };
        Ok(Self {
            session,
            mailbox,
            state,
            supports_idle,
            supports_move,
            supports_uidplus,
            folders,
        })
    }

    pub async fn logout(mut self) {
        let _ = self.session.logout().await;
    }
}

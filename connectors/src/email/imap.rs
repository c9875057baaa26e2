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
}

/// Fetch at most this many messages per round trip.
pub const FETCH_BATCH: u32 = 200;
const TIMEOUT: Duration = Duration::from_secs(60);

fn transport(what: &str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Transport(format!("imap {what}: {e}"))
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
        let supports_idle = session.capabilities().await.map(|c| c.has_str("IDLE")).unwrap_or(false);
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

    async fn fetch(&mut self, set: &str, items: &str) -> Result<Vec<async_imap::types::Fetch>, ConnectorError> {
        let fetches = self
            .session
            .uid_fetch(set, items)
            .await
            .map_err(|e| transport("fetch", e))?;
        tokio::time::timeout(TIMEOUT, fetches.try_collect())
            .await
            .map_err(|e| transport("fetch", e))?
            .map_err(|e| transport("fetch", e))
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
        })
    }

    pub async fn logout(mut self) {
        let _ = self.session.logout().await;
    }
}

//! Building and running the hub: store, first admin, search index and indexer, outbox worker,
//! HTTP server. Tests and the binary share this one path.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::info;

use crate::api::{AppState, app};
use crate::auth::{self, LoginLimiter};
use crate::bus::EventBus;
use crate::domain::{EmailAddress, Role};
use crate::hub::Hub;
use crate::ingest::IngestWriter;

use crate::cluster::NodeId;
use crate::search::indexer::Indexer;
use crate::search::{SearchError, SearchIndex, WriterThreads};
use crate::settings::Settings;
use crate::store::{Backend, NewAgent, Store, StoreError};

/// Events the bus holds for a slow listener before it must resync.
const BUS_CAPACITY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("search index: {0}")]
    Search(#[from] SearchError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("http server: {0}")]
    Serve(std::io::Error),
    #[error("first admin: {0}")]
    Bootstrap(String),
    #[error("http client: {0}")]
    Client(#[from] reqwest::Error),
}

/// A built hub, bound to its port, not yet serving.
pub struct Application {
    listener: TcpListener,
    hub: Hub,
    state: AppState,
    indexer: Indexer,
    /// This node's events for the other nodes, when the store is shared.
    relay: Option<tokio::sync::mpsc::Receiver<crate::bus::HubEvent>>,
    client: reqwest::Client,
    /// Tells open sockets the node is shutting down.
    closing: watch::Sender<bool>,
}

/// Installs ring as the process's TLS crypto provider (see MACHINE-NOTES: two providers
/// compiled in make rustls refuse to pick one).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, crate::clock::Clock::system()).await
    }

    /// Builds the hub on a given clock (tests pass a manual one).
    pub async fn build_with_clock(settings: Settings, clock: crate::clock::Clock) -> Result<Self, StartupError> {
        install_crypto_provider();
        crate::telemetry::prometheus();
        let settings = Arc::new(settings);
        let store = Store::connect(settings.database.url(), settings.database.max_connections).await?;
        bootstrap_admin(&store, &settings).await?;
        // The phone-number metadata loads on first use; load it now, not during the first call.
        let region = settings.contacts.default_region;
        let _ = tokio::task::spawn_blocking(move || switchboard_connectors::PhoneNumber::parse("+14155552671", region))
            .await;

        let (search, writer) = SearchIndex::open(
            &settings.index.path,
            settings.index.writer_memory_mb,
            WriterThreads::Live,
        )?;
        let indexer = Indexer::new(search.clone(), writer, store.clone());
        let (writer, ingest_queue) = IngestWriter::new(
            store.clone(),
            time::Duration::hours(settings.conversations.reopen_window_hours as i64),
        );
        tokio::spawn(writer.run());
        // On PostgreSQL other nodes may share the store: what happens here is relayed to them.
        let (bus, relay) = match store.backend() {
            Backend::Postgres => {
                let (bus, outgoing) = EventBus::relayed(BUS_CAPACITY);
                (bus, Some(outgoing))
            }
            Backend::Sqlite => (EventBus::new(BUS_CAPACITY), None),
        };
        let node = NodeId::new();
        info!(%node, "node started");
        let hub = Hub {
            store,
            search,
            ingest_queue,
            bus,
            node,
            outbox_wake: Arc::new(Notify::new()),
            webhook_wake: Arc::new(Notify::new()),
            settings: settings.clone(),
            clock,
        };
        let limiter = Arc::new(LoginLimiter::new(
            hub.store.clone(),
            hub.clock.clone(),
            settings.auth.login_max_failures,
            Duration::from_secs(settings.auth.login_window_seconds),
        ));
        let listener = TcpListener::bind(settings.server.listen)
            .await
            .map_err(|source| StartupError::Bind {
                addr: settings.server.listen,
                source,
            })?;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let local_addr = listener.local_addr().ok();
        let (closing, closing_rx) = watch::channel(false);
        Ok(Self {
            listener,
            state: AppState::new(crate::api::Shared {
                hub: hub.clone(),
                limiter,
                desks: Default::default(),
                visitors: Default::default(),
                chat_limits: Arc::new(crate::api::ChatLimits::new(&settings.chat)),
                local_addr,
                closing: closing_rx,
            }),
            hub,
            indexer,
            relay,
            client,
            closing,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then stops the workers and waits for them.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send + 'static) -> Result<(), StartupError> {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let interval = Duration::from_millis(self.hub.settings.index.commit_interval_ms);
        let mut workers: Vec<JoinHandle<()>> = vec![
            tokio::spawn(self.indexer.run(interval, shutdown_rx.clone())),
            tokio::spawn(crate::outbox::run(
                self.hub.clone(),
                self.client.clone(),
                shutdown_rx.clone(),
            )),
            tokio::spawn(crate::voice::run_followers(self.hub.clone(), shutdown_rx.clone())),
            tokio::spawn(crate::email::run_pollers(self.hub.clone(), shutdown_rx.clone())),
            tokio::spawn(crate::metrics::run(self.hub.clone(), shutdown_rx.clone())),
            tokio::spawn(crate::automation::run(self.hub.clone(), shutdown_rx.clone())),
        ];
        workers.push(tokio::spawn(
            self.state
                .visitors
                .clone()
                .run(self.hub.bus.clone(), shutdown_rx.clone()),
        ));
        if let Some(outgoing) = self.relay {
            let url = self.hub.settings.database.url().to_owned();
            workers.push(tokio::spawn(crate::cluster::relay::run(
                self.hub.clone(),
                url,
                outgoing,
                shutdown_rx.clone(),
            )));
        }
        info!(addr = %self.listener.local_addr().map_err(StartupError::Serve)?, "switchboard listening");
        // On the stop signal: sockets close with "going away" at once, new connections are
        // refused, and requests in flight finish; then the workers stop (the indexer commits).
        let closing = self.closing;
        let stop = async move {
            stop.await;
            let _ = closing.send(true);
        };
        let app = app(self.state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(self.listener, app).with_graceful_shutdown(stop).await;
        let _ = shutdown_tx.send(true);
        for worker in workers {
            let _ = worker.await;
        }
        self.hub.store.close().await;
        served.map_err(StartupError::Serve)
    }
}

/// Creates the first admin when the store has no agent, printing its credentials once.
async fn bootstrap_admin(store: &Store, settings: &Settings) -> Result<(), StartupError> {
    if store.count_agents().await? > 0 {
        return Ok(());
    }
    let email = EmailAddress::parse(&settings.auth.initial_admin_email)
        .map_err(|e| StartupError::Bootstrap(format!("initial_admin_email: {e}")))?;
    let (password, generated) = match &settings.auth.initial_admin_password {
        Some(p) => (p.expose_secret().to_owned(), false),
        None => (auth::new_secret(""), true),
    };
    let hash = {
        let password = password.clone();
        tokio::task::spawn_blocking(move || auth::hash_password(&password))
            .await
            .map_err(|e| StartupError::Bootstrap(e.to_string()))?
            .map_err(|e| StartupError::Bootstrap(e.to_string()))?
    };
    match store
        .create_agent(NewAgent {
            email: email.clone(),
            name: "Administrator".into(),
            role: Role::Admin,
            password_hash: Some(hash),
            extension: None,
        })
        .await
    {
        // Another node bootstrapped at the same moment.
        Err(StoreError::Conflict(_)) => return Ok(()),
        other => other?,
    };
    if generated {
        // Printed once, on stdout and not in the logs, so it never reaches a log pipeline.
        println!("first start: created admin {email} with password {password} (shown only now; change it)");
    } else {
        println!("first start: created admin {email} with the configured password");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    info!("shutting down");
}

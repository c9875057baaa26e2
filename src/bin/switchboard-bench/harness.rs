//! The hub under test: built in-process on a loopback port with a fresh store (SQLite in a temp
//! dir, or a new database on a given PostgreSQL server) and index, plus an admin API token. With
//! `--data-dir` the SQLite store and its index live in a directory kept after the run, so a
//! large data set is seeded once and measured again by later runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use switchboard::hub::Hub;
use switchboard::settings::Settings;
use switchboard::startup::{Application, StartupError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The URL the hub believes it is reached at; webhook signatures are computed over it.
pub const PUBLIC_URL: &str = "http://bench.local";
pub const ADMIN_EMAIL: &str = "admin@bench.local";
pub const ADMIN_PASSWORD: &str = "bench-admin-password";
/// Every HTTP request of the benchmark gives up after this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Result<Self> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("warning: cannot remove {}: {e}", self.0.display());
        }
    }
}

/// A fresh PostgreSQL database made for this run, dropped at the end.
struct PgDatabase {
    admin_url: String,
    name: String,
}

pub struct Bench {
    pub hub: Hub,
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
    pub store_kind: &'static str,
    /// Scratch files of the run (generated CDR files, baselines, a rebuilt index): removed at
    /// the end.
    pub dir: TempDir,
    /// The SQLite store and the search index: `dir` itself, or the kept `--data-dir`.
    pub data: PathBuf,
    /// `data` is kept after the run (`--data-dir`).
    pub kept: bool,
    /// The hub's settings, for starting more nodes on the same store.
    settings: Settings,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), StartupError>>>,
    postgres: Option<PgDatabase>,
}

impl Bench {
    /// Builds and starts the hub, and gets an admin API token the way an operator would.
    pub async fn start(postgres: Option<&str>, data_dir: Option<&Path>) -> Result<Self> {
        switchboard::startup::install_crypto_provider();
        let dir = TempDir::new("switchboard-bench")?;
        if postgres.is_some() && data_dir.is_some() {
            bail!("--data-dir keeps a SQLite store; it does not go with --postgres");
        }
        let data = match data_dir {
            Some(path) => {
                std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
                path.to_path_buf()
            }
            None => dir.path().to_path_buf(),
        };
        let mut settings = Settings::load(None).context("loading the default settings")?;
        settings.log.level = "warn".into();
        switchboard::telemetry::init_logs(&settings.log);
        settings.server.listen = "127.0.0.1:0".parse().context("loopback address")?;
        settings.server.public_url = PUBLIC_URL.into();
        let (url, pg, store_kind) = match postgres {
            None => (
                format!("sqlite://{}", data.join("switchboard.db").display()),
                None,
                "sqlite",
            ),
            Some(admin_url) => {
                let (url, db) = create_pg_database(admin_url).await?;
                (url, Some(db), "postgres")
            }
        };
        settings.database.url = url.into();
        settings.index.path = data.join("index");
        settings.contacts.default_region =
            switchboard_connectors::Region::parse("ES").map_err(|e| anyhow!("region ES: {e}"))?;
        settings.auth.initial_admin_email = ADMIN_EMAIL.into();
        settings.auth.initial_admin_password = Some(ADMIN_PASSWORD.to_owned().into());

        let app = Application::build(settings.clone()).await.context("building the hub")?;
        let base = format!("http://127.0.0.1:{}", app.port());
        let hub = app.hub().clone();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stop_rx.await;
        }));
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(256)
            .build()
            .context("building the http client")?;
        let mut bench = Self {
            hub,
            base,
            http,
            token: String::new(),
            store_kind,
            dir,
            data,
            kept: data_dir.is_some(),
            settings,
            stop: Some(stop_tx),
            server: Some(server),
            postgres: pg,
        };
        bench.token = bench.api_token().await.context("getting an api token")?;
        Ok(bench)
    }

    /// Logs in as the admin and creates an API token, as tests/api/helpers.rs does.
    async fn api_token(&self) -> Result<String> {
        let login = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .context("login request")?;
        if !login.status().is_success() {
            bail!("login answered {}", login.status());
        }
        let cookie = login
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_owned)
            .context("login set no session cookie")?;
        let body: Value = login.json().await.context("login body")?;
        let csrf = body["csrf_token"].as_str().context("login returned no csrf_token")?;
        let created = self
            .http
            .post(format!("{}/api/v1/api-tokens", self.base))
            .header(reqwest::header::COOKIE, cookie)
            .header("x-csrf-token", csrf)
            .json(&json!({"name": "bench", "role": "admin"}))
            .send()
            .await
            .context("api token request")?;
        let status = created.status();
        let body: Value = created.json().await.context("api token body")?;
        if status != reqwest::StatusCode::CREATED {
            bail!("creating an api token answered {status}: {body}");
        }
        Ok(body["token"].as_str().context("no token in the answer")?.to_owned())
    }

    /// `POST`s JSON to the API with the admin token.
    pub async fn post(&self, path: &str, body: Value) -> Result<(reqwest::StatusCode, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let text = response.text().await.with_context(|| format!("POST {path} body"))?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    /// Waits until the search index has everything the store has; returns how long it took.
    pub async fn wait_for_index(&self, limit: Duration) -> Result<Duration> {
        let started = std::time::Instant::now();
        let last = self
            .hub
            .store
            .last_seq()
            .await
            .context("reading the store's last sequence")?;
        self.hub.search.wake();
        tokio::time::timeout(limit, self.hub.search.wait_for(last))
            .await
            .map_err(|_| {
                anyhow!(
                    "the index did not reach sequence {last} within {limit:?} (at {})",
                    self.hub.search.watermark()
                )
            })?;
        Ok(started.elapsed())
    }

    /// Starts another node on the same PostgreSQL database, with its own search index, as a
    /// second machine behind a load balancer would run it (here in the same process, on the
    /// same cores).
    pub async fn start_peer(&self, name: &str) -> Result<Peer> {
        if self.postgres.is_none() {
            bail!("more nodes need a shared store: run with --postgres");
        }
        let mut settings = self.settings.clone();
        settings.index.path = self.dir.path().join(format!("index-{name}"));
        let app = Application::build(settings).await.context("building a peer node")?;
        let base = format!("http://127.0.0.1:{}", app.port());
        let hub = app.hub().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Ok(Peer {
            hub,
            base,
            stop,
            server,
        })
    }

    /// Stops the hub, waits for its workers and drops a PostgreSQL database made for the run.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            match tokio::time::timeout(Duration::from_secs(60), server).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => eprintln!("warning: the hub stopped with an error: {e}"),
                Ok(Err(e)) => eprintln!("warning: the hub task failed: {e}"),
                Err(_) => eprintln!("warning: the hub did not stop within 60 s"),
            }
        }
        if let Some(db) = self.postgres.take() {
            drop_pg_database(&db).await?;
        }
        Ok(())
    }
}

/// Creates `swbench_<uuid>` on the server of `admin_url`; returns its URL.
async fn create_pg_database(admin_url: &str) -> Result<(String, PgDatabase)> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let name = format!("swbench_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::AnyConnection::connect(admin_url)
        .await
        .context("connecting to the --postgres server")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .with_context(|| format!("creating database {name}"))?;
    let _ = conn.close().await;
    let (without_query, query) = match admin_url.split_once('?') {
        Some((u, q)) => (u, Some(q)),
        None => (admin_url, None),
    };
    let (server, _) = without_query
        .rsplit_once('/')
        .filter(|(s, _)| s.contains("://") && !s.ends_with('/'))
        .context("--postgres must be a URL like postgres://user:pass@host:port/dbname")?;
    let url = match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    };
    Ok((
        url,
        PgDatabase {
            admin_url: admin_url.to_owned(),
            name,
        },
    ))
}

async fn drop_pg_database(db: &PgDatabase) -> Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(&db.admin_url)
        .await
        .context("connecting to the --postgres server to drop the bench database")?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        db.name
    )))
    .execute(&mut conn)
    .await
    .with_context(|| format!("dropping database {}", db.name))?;
    let _ = conn.close().await;
    Ok(())
}

/// Another node of the hub under test, on the same database.
pub struct Peer {
    pub hub: Hub,
    pub base: String,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), StartupError>>,
}

impl Peer {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(60), self.server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => eprintln!("warning: a peer node stopped with an error: {e}"),
            Ok(Err(e)) => eprintln!("warning: a peer node's task failed: {e}"),
            Err(_) => eprintln!("warning: a peer node did not stop within 60 s"),
        }
    }
}

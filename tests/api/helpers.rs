//! Starting the real hub for a test, on either store, and talking to it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::settings::Settings;
use switchboard::startup::Application;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_EMAIL: &str = "admin@switchboard.test";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Instantiates each listed `async fn(Backend)` as one test per store.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::helpers::Backend::Sqlite).await })+
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::helpers::Backend::Postgres).await })+
        }
    };
}

/// A running hub with an admin API token.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
    pub settings: Settings,
    pub dir: tempfile::TempDir,
    /// The hub's clock: the system's, or a manual one the test moves.
    pub clock: switchboard::clock::Clock,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// Makes a fresh database for `backend`, returning its URL.
pub async fn fresh_database(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("switchboard.db").display()),
        Backend::Postgres => {
            let admin = std::env::var("SWITCHBOARD_TEST_PG_URL").expect(
                "SWITCHBOARD_TEST_PG_URL is not set: run the suite with scripts/test.sh, which starts PostgreSQL",
            );
            sqlx::any::install_default_drivers();
            let name = format!("sbtest_{}", uuid::Uuid::now_v7().simple());
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
                .await
                .expect("connect to test PostgreSQL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let (base, _) = admin.rsplit_once('/').expect("a database url ends with /dbname");
            format!("{base}/{name}")
        }
    }
}

/// Test settings: port 0, the given store, an index in the temp dir, a known admin password.
async fn test_settings(backend: Backend, dir: &std::path::Path) -> Settings {
    let mut settings = Settings::load(None).expect("default settings load");
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.database.url = fresh_database(backend, dir).await.into();
    settings.index.path = dir.join("index");
    settings.index.writer_memory_mb = 15;
    settings.contacts.default_region = switchboard_connectors::Region::parse("ES").unwrap();
    settings.auth.initial_admin_email = ADMIN_EMAIL.into();
    settings.auth.initial_admin_password = Some(ADMIN_PASSWORD.to_owned().into());
    settings.outbox.base_backoff_ms = 50;
    settings.outbox.poll_interval_ms = 100;
    settings.automation.call_settle_seconds = 1;
    settings.automation.base_backoff_ms = 50;
    settings.automation.webhook_max_attempts = 30;
    // Test receivers listen on loopback; the SSRF tests turn this off again.
    settings.egress.allow_private_addresses = true;
    settings
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// A hub whose clock stands at `at` until the test moves it (`app.clock.set`, `advance`).
pub async fn spawn_app_at(backend: Backend, at: time::OffsetDateTime) -> TestApp {
    spawn_app_on(backend, |_| {}, switchboard::clock::Clock::manual(at)).await
}

pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(backend, adjust, switchboard::clock::Clock::system()).await
}

async fn spawn_app_on(
    backend: Backend,
    adjust: impl FnOnce(&mut Settings),
    clock: switchboard::clock::Clock,
) -> TestApp {
    switchboard::startup::install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(backend, dir.path()).await;
    adjust(&mut settings);
    let mut app = TestApp {
        base: String::new(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        token: String::new(),
        settings,
        dir,
        clock,
        stop: None,
        server: None,
    };
    app.start().await;
    app.token = admin_token(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    app
}

/// Logs in as an admin and creates an admin API token for the test's requests.
async fn admin_token(app: &TestApp, email: &str, password: &str) -> String {
    let session = app.login(email, password).await;
    let created = session
        .post("/api/v1/api-tokens", json!({"name": "tests", "role": "admin"}))
        .await;
    assert_eq!(created.0, StatusCode::CREATED, "{:?}", created.1);
    created.1["token"].as_str().unwrap().to_owned()
}

impl TestApp {
    /// Builds and starts the hub on the current settings.
    pub async fn start(&mut self) {
        switchboard::startup::install_crypto_provider();
        let application = Application::build_with_clock(self.settings.clone(), self.clock.clone())
            .await
            .expect("the hub builds");
        self.base = format!("http://127.0.0.1:{}", application.port());
        let (tx, rx) = oneshot::channel::<()>();
        self.stop = Some(tx);
        self.server = Some(tokio::spawn(async move {
            application
                .run_until(async {
                    let _ = rx.await;
                })
                .await
                .expect("the hub serves");
        }));
    }

    /// Stops the hub gracefully and waits until it has released the store and the index.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("the server task ends cleanly");
        }
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        self.start().await;
    }

    pub fn index_dir(&self) -> PathBuf {
        self.settings.index.path.clone()
    }

    /// Calls the API with the admin token.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.expect("request reaches the hub")).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// Logs in through the API and returns a cookie session.
    pub async fn login(&self, email: &str, password: &str) -> Session {
        let http = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let response = http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        let (status, body) = read(response).await;
        assert_eq!(status, StatusCode::OK, "login failed: {body}");
        Session {
            base: self.base.clone(),
            http,
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Logs in and returns the raw session cookie (`sb_session=…`), for a WebSocket handshake.
    pub async fn session_cookie(&self, email: &str, password: &str) -> String {
        let response = reqwest::Client::new()
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = response.headers().get("set-cookie").unwrap().to_str().unwrap();
        cookie.split(';').next().unwrap().to_owned()
    }

    /// Opens the agent socket with a session cookie, and an Origin when given.
    pub async fn agent_socket(
        &self,
        cookie: &str,
        origin: Option<&str>,
    ) -> Result<
        tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
        tokio_tungstenite::tungstenite::Error,
    > {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("{}/api/v1/ws", self.base.replace("http://", "ws://"))
            .into_client_request()
            .unwrap();
        request.headers_mut().insert("cookie", cookie.parse().unwrap());
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
            .await
            .map(|(socket, _)| socket)
    }

    /// Creates an API-channel account and returns its id.
    pub async fn api_account(&self, name: &str) -> String {
        self.account(json!({"kind": "api", "name": name})).await
    }

    pub async fn account(&self, body: Value) -> String {
        let (status, body) = self.post("/api/v1/channel-accounts", body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Pushes a touchpoint through the generic API channel.
    pub async fn push(&self, body: Value) -> (StatusCode, Value) {
        self.post("/api/v1/interactions", body).await
    }

    /// Searches until `pred` holds for the result or `within` passes; returns the last result
    /// and how long it took.
    pub async fn search_until(
        &self,
        query: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> (Value, Duration) {
        let started = Instant::now();
        loop {
            let (status, body) = self.get(&format!("/api/v1/search?{query}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if pred(&body) || started.elapsed() > within {
                return (body, started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A logged-in browser-like client: session cookie plus CSRF header.
pub struct Session {
    pub base: String,
    pub http: reqwest::Client,
    pub csrf: String,
}

impl Session {
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        read(self.http.get(format!("{}{path}", self.base)).send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PUT, path, body).await
    }

    /// A write with the session's CSRF token.
    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        read(response).await
    }
}

async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The ids of a list of interactions (or of search hits), in order.
/// The repository's root, read when the test runs: a test binary reused from another checkout of
/// the same target directory must still find this checkout's files.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Panics with the remedy when the browser driver's dependency is not installed.
pub fn assert_playwright_installed() {
    assert!(
        repo_root().join("tests/browser/node_modules/playwright-core").exists(),
        "playwright-core is missing: run the suite with scripts/test.sh, which installs it"
    );
}

pub fn ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .expect("an array")
        .iter()
        .map(|i| i.get("interaction").unwrap_or(i)["id"].as_str().unwrap().to_owned())
        .collect()
}

impl TestApp {
    /// Makes an agent a member of every inbox that exists now.
    pub async fn member_of_all(&self, agent_id: &str) {
        let (_, accounts) = self.get("/api/v1/channel-accounts").await;
        let ids: Vec<&str> = accounts
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap())
            .collect();
        let (status, body) = self
            .call(
                Method::PUT,
                &format!("/api/v1/agents/{agent_id}/inboxes"),
                Some(json!({"channel_account_ids": ids})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// The real `switchboard` binary as a child process, for tests that must kill it (SIGKILL runs
/// no shutdown code) or run several nodes.
pub struct HubProcess {
    child: Option<tokio::process::Child>,
    pub base: String,
    env: Vec<(String, String)>,
    /// Where the hub's stdout and stderr go; the test's stderr when `None`.
    log: Option<PathBuf>,
    /// A settings file given with `--config`.
    config: Option<PathBuf>,
}

impl HubProcess {
    /// A hub on a free loopback port with the admin password `admin_password` and `env`
    /// (`SWITCHBOARD__…` settings) besides; not started yet.
    pub fn new(admin_password: &str, env: &[(&str, String)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let mut all = vec![
            ("SWITCHBOARD__SERVER__LISTEN".to_owned(), format!("127.0.0.1:{port}")),
            ("SWITCHBOARD__SERVER__PUBLIC_URL".to_owned(), base.clone()),
            (
                "SWITCHBOARD__AUTH__INITIAL_ADMIN_PASSWORD".to_owned(),
                admin_password.to_owned(),
            ),
            ("SWITCHBOARD__OUTBOX__BASE_BACKOFF_MS".to_owned(), "50".to_owned()),
            (
                "SWITCHBOARD__EGRESS__ALLOW_PRIVATE_ADDRESSES".to_owned(),
                "true".to_owned(),
            ),
            ("SWITCHBOARD__LOG__LEVEL".to_owned(), "error".to_owned()),
        ];
        for (key, value) in env {
            all.retain(|(k, _)| k != key);
            all.push((key.to_string(), value.clone()));
        }
        Self {
            child: None,
            base,
            env: all,
            log: None,
            config: None,
        }
    }

    /// Drops a default setting of [`HubProcess::new`] (so a config file's value holds).
    pub fn without(mut self, key: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// Runs the hub with `--config path` (the environment still overrides it).
    pub fn with_config(mut self, path: PathBuf) -> Self {
        self.config = Some(path);
        self
    }

    /// Sends the hub's output to `path` instead of the test's stderr.
    pub fn logging_to(mut self, path: PathBuf) -> Self {
        self.log = Some(path);
        self
    }

    /// Starts the binary and waits until it is ready.
    pub async fn start(&mut self) {
        let (stdout, stderr) = match &self.log {
            Some(path) => {
                let file = std::fs::File::create(path).expect("the log file");
                (file.try_clone().unwrap().into(), file.into())
            }
            None => (std::process::Stdio::null(), std::process::Stdio::inherit()),
        };
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("serve")
            .args(
                self.config
                    .iter()
                    .flat_map(|c| [std::ffi::OsStr::new("--config"), c.as_os_str()]),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("the switchboard binary starts");
        self.child = Some(child);
        let http = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the hub at {} did not become ready", self.base);
    }

    /// SIGTERM, as a service manager stops it; returns how the process exited.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the hub is running");
        let pid = child.id().unwrap().to_string();
        let term = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(term.success());
        tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("the hub exits after SIGTERM")
            .unwrap()
    }

    /// SIGKILL: no shutdown code runs.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
        }
    }
}

/// A [`TestApp`] view of a hub running elsewhere (a [`HubProcess`]): the same request helpers,
/// authenticated with an admin API token created through `admin_password`.
pub async fn attach(base: &str, admin_email: &str, admin_password: &str) -> TestApp {
    let mut app = TestApp {
        base: base.to_owned(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        token: String::new(),
        settings: Settings::load(None).expect("default settings load"),
        dir: tempfile::tempdir().expect("temp dir"),
        clock: switchboard::clock::Clock::system(),
        stop: None,
        server: None,
    };
    app.token = admin_token(&app, admin_email, admin_password).await;
    app
}

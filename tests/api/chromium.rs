//! A real headless Chromium under remote control, for the console's browser tests: a Node
//! process running Playwright (`tests/browser/console.mjs`) takes one JSON command per line and
//! answers each. A failing command saves a screenshot of every page first and fails the test
//! with their paths.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

pub struct Chromium {
    _process: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Chromium {
    /// Starts the browser; screenshots of failures go to a directory named after `test`.
    pub async fn start(test: &str) -> Self {
        crate::helpers::assert_playwright_installed();
        let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("browser-failures")
            .join(test);
        let _ = std::fs::remove_dir_all(&artifacts);
        let mut process = tokio::process::Command::new("node")
            .arg(crate::helpers::repo_root().join("tests/browser/console.mjs"))
            .arg(&artifacts)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        Self {
            stdin: process.stdin.take().unwrap(),
            stdout: BufReader::new(process.stdout.take().unwrap()).lines(),
            _process: process,
        }
    }

    /// Runs one command on a page and returns its value; a failure fails the test.
    pub async fn run(&mut self, page: &str, op: &str, mut args: Value) -> Value {
        args["page"] = json!(page);
        args["op"] = json!(op);
        let line = format!("{args}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(90), self.stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("the browser did not answer {args}"))
            .unwrap()
            .expect("the browser driver exited");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        if answer["ok"] != true {
            panic!(
                "browser command {args} failed: {}\nscreenshots: {}",
                answer["error"], answer["screenshots"]
            );
        }
        answer["value"].clone()
    }

    pub async fn open(&mut self, page: &str, url: &str) {
        self.run(page, "open", json!({"url": url})).await;
    }

    pub async fn wait_text(&mut self, page: &str, selector: &str, text: &str) {
        self.run(page, "waitText", json!({"selector": selector, "text": text}))
            .await;
    }

    pub async fn texts(&mut self, page: &str, selector: &str) -> Vec<String> {
        serde_json::from_value(self.run(page, "texts", json!({"selector": selector})).await).unwrap()
    }

    pub async fn click(&mut self, page: &str, selector: &str) {
        self.run(page, "click", json!({"selector": selector})).await;
    }

    pub async fn fill_label(&mut self, page: &str, label: &str, value: &str) {
        self.run(page, "fill", json!({"label": label, "value": value})).await;
    }

    /// Signs in through the console's login form.
    pub async fn log_in(&mut self, page: &str, base: &str, email: &str, password: &str) {
        self.open(page, &format!("{base}/")).await;
        self.fill_label(page, "Email", email).await;
        self.fill_label(page, "Password", password).await;
        self.run(page, "click", json!({"role": "button", "name": "Sign in"}))
            .await;
        self.run(
            page,
            "waitText",
            json!({"selector": "header.top .me", "text": email_name(email)}),
        )
        .await;
    }
}

/// The test agents are named after their address: `lucia@…` is Lucia.
fn email_name(email: &str) -> String {
    let local = email.split('@').next().unwrap_or_default();
    let mut chars = local.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

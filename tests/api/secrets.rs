//! Secrets stay out of logs and error bodies. The real binary runs at its most verbose log level
//! while every kind of secret passes through it (passwords right and wrong, API tokens real
//! and forged, inbox secrets, a mailbox password it fails to log in with, a trigger's signing
//! key), then every line it wrote and every error body it sent is searched for them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::HubProcess;

const ADMIN_PASSWORD: &str = "admin-secret-password-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs_or_error_bodies() {
    switchboard::startup::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("hub.log");
    let mut hub = HubProcess::new(
        ADMIN_PASSWORD,
        &[
            (
                "SWITCHBOARD__DATABASE__URL",
                format!("sqlite://{}/hub.db", dir.path().display()),
            ),
            (
                "SWITCHBOARD__INDEX__PATH",
                dir.path().join("index").display().to_string(),
            ),
            (
                "SWITCHBOARD__LOG__LEVEL",
                "trace,hyper=debug,h2=info,tantivy=info".into(),
            ),
        ],
    )
    .logging_to(log_path.clone());
    hub.start().await;
    let base = hub.base.clone();
    let http = reqwest::Client::builder().cookie_store(true).build().unwrap();

    let mut secrets: Vec<String> = vec![ADMIN_PASSWORD.into()];
    let mut bodies: Vec<String> = Vec::new();
    // Error bodies are kept to search; successful ones may rightly hand a secret out once.
    let mut record = async |response: reqwest::Response| -> Value {
        let failed = !response.status().is_success();
        let text = response.text().await.unwrap();
        if failed {
            bodies.push(text.clone());
        }
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    let post = |path: &str, csrf: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .header("x-csrf-token", csrf)
            .json(&body)
            .send()
    };

    // Wrong and right passwords.
    let wrong = "wrong-secret-password-9";
    secrets.push(wrong.into());
    record(
        post(
            "/api/v1/auth/login",
            "",
            json!({"email": "admin@switchboard.local", "password": wrong}),
        )
        .await
        .unwrap(),
    )
    .await;
    let login = record(
        post(
            "/api/v1/auth/login",
            "",
            json!({"email": "admin@switchboard.local", "password": ADMIN_PASSWORD}),
        )
        .await
        .unwrap(),
    )
    .await;
    let csrf = login["csrf_token"].as_str().unwrap().to_owned();
    secrets.push(csrf.clone());

    // An API token, used; a forged one, refused.
    let token = record(
        post("/api/v1/api-tokens", &csrf, json!({"name": "ci", "role": "admin"}))
            .await
            .unwrap(),
    )
    .await;
    let token = token["token"].as_str().unwrap().to_owned();
    secrets.push(token.clone());
    record(
        http.get(format!("{base}/api/v1/contacts"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let forged = "sbt_forged-token-value-31337";
    secrets.push(forged.into());
    record(
        http.get(format!("{base}/api/v1/contacts"))
            .bearer_auth(forged)
            .send()
            .await
            .unwrap(),
    )
    .await;

    // Inbox secrets: an SMS gateway's auth token, and a mailbox password the hub fails to use.
    let auth_token = "twilio-auth-token-secret-77";
    secrets.push(auth_token.into());
    let sms = record(
        post(
            "/api/v1/channel-accounts",
            &csrf,
            json!({"kind": "sms", "name": "sms", "secret": auth_token,
                   "settings": {"provider": "twilio", "account_sid": "AC0123456789abcdef0123456789abcdef", "from": "+34910000000"}}),
        )
        .await
        .unwrap(),
    )
    .await;
    let inbox_secret_path = format!("/webhooks/sms/{}/twilio", sms["id"].as_str().unwrap());
    record(
        http.post(format!("{base}{inbox_secret_path}"))
            .header("x-twilio-signature", "bm90LXRoZS1zaWduYXR1cmU=")
            .form(&[("MessageSid", "SM1"), ("From", "+34600111222"), ("Body", "hola")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mailbox_password = "imap-password-secret-42";
    secrets.push(mailbox_password.into());
    record(
        post(
            "/api/v1/channel-accounts",
            &csrf,
            json!({"kind": "email", "name": "mail", "secret": mailbox_password, "settings": {
                "address": "soporte@example.test", "imap_host": "127.0.0.1", "imap_port": closed, "imap_tls": false,
                "smtp_host": "127.0.0.1", "smtp_port": closed, "smtp_security": "none", "idle_seconds": 1}}),
        )
        .await
        .unwrap(),
    )
    .await;

    // An agent's password, a password change, and a trigger's signing key.
    let agent_password = "agent-password-secret-5";
    let new_password = "changed-password-secret-6";
    let signing_key = "trigger-signing-key-0123456789";
    secrets.extend([agent_password, new_password, signing_key].map(String::from));
    record(
        post(
            "/api/v1/agents",
            &csrf,
            json!({"email": "eva@example.com", "name": "Eva", "role": "agent", "password": agent_password}),
        )
        .await
        .unwrap(),
    )
    .await;
    record(
        http.put(format!("{base}/api/v1/auth/me/password"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"current_password": ADMIN_PASSWORD, "new_password": new_password}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    record(
        post(
            "/api/v1/triggers",
            &csrf,
            json!({"name": "hook", "event": "interaction_received",
                   "actions": [{"type": "webhook", "url": format!("http://127.0.0.1:{closed}/h"), "secret": signing_key}]}),
        )
        .await
        .unwrap(),
    )
    .await;
    // A bad body that echoes its input would leak it: a password of the wrong type.
    record(
        post(
            "/api/v1/agents",
            &csrf,
            json!({"email": "x@example.com", "name": "x", "role": "agent", "password": [agent_password]}),
        )
        .await
        .unwrap(),
    )
    .await;

    // Give the IMAP poller time to fail (and log it), then stop the hub as a service manager
    // does: SIGTERM, and it exits cleanly by itself.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let exit = hub.terminate().await;
    assert!(exit.success(), "a clean exit after SIGTERM: {exit:?}");

    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(logged.lines().count() > 50, "the hub logged verbosely:\n{logged}");
    assert!(logged.contains("imap"), "the mailbox failure was logged");
    assert!(bodies.len() >= 4, "the refusals were seen: {bodies:?}");
    for secret in &secrets {
        assert!(!logged.contains(secret.as_str()), "{secret:?} is in the log");
        for body in &bodies {
            assert!(!body.contains(secret.as_str()), "{secret:?} in an error body: {body}");
        }
    }
}

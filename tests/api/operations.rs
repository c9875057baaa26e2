//! The command line and the operations endpoints.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_stores;

on_both_stores!(
    agent_create_on_the_command_line_makes_an_agent_who_can_log_in,
    metrics_count_what_the_hub_did
);

/// A config file pointing the binary at the test app's store and index.
fn config_for(app: &TestApp) -> std::path::PathBuf {
    let path = app.dir.path().join("cli.toml");
    let url = secrecy::ExposeSecret::expose_secret(&app.settings.database.url).to_owned();
    std::fs::write(
        &path,
        format!("[database]\nurl = {url:?}\n[index]\npath = {:?}\n", app.index_dir()),
    )
    .unwrap();
    path
}

async fn agent_create_on_the_command_line_makes_an_agent_who_can_log_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let config = config_for(&app);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("SWITCHBOARD_AGENT_PASSWORD", "cli-password-1")
            .output()
            .expect("the binary runs")
    };

    let migrated = run(&["migrate"]);
    let created = run(&[
        "agent",
        "create",
        "--email",
        "Nora@Example.com",
        "--name",
        "Nora",
        "--role",
        "supervisor",
    ]);
    let refused = run(&["agent", "create", "--email", "nora@example.com", "--name", "Nora again"]);
    let bad_role = run(&[
        "agent",
        "create",
        "--email",
        "x@example.com",
        "--name",
        "X",
        "--role",
        "king",
    ]);

    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    assert_eq!(
        String::from_utf8_lossy(&created.stdout).trim(),
        "created supervisor agent nora@example.com"
    );
    assert!(
        !refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("exists"),
        "{refused:?}"
    );
    assert!(
        !bad_role.status.success() && String::from_utf8_lossy(&bad_role.stderr).contains("unknown role"),
        "{bad_role:?}"
    );
    let nora = app.login("nora@example.com", "cli-password-1").await;
    let (_, me) = nora.get("/api/v1/auth/me").await;
    assert_eq!(me["role"], "supervisor");
}

async fn metrics_count_what_the_hub_did(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.api_account("api").await;
    for n in 0..3 {
        app.push(json!({"channel_account_id": account, "external_id": format!("m{n}"), "contact": {"email": "m@example.com"}, "text": "hola"})).await;
    }
    let response = reqwest::get(format!("{}/metrics", app.base)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#"switchboard_ingested_total{channel="api"} 3"#),
        "{text}"
    );
    let (status, ready) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["ready"], true);
}

//! Custom attributes: typed definitions, values validated all-or-nothing, and a CRM's upsert by
//! its own customer id that changes nothing when repeated.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;
use crate::on_both_stores;

on_both_stores!(
    attributes_are_typed_and_a_crm_upsert_is_idempotent,
    a_csv_import_runs_dry_then_for_real_then_changes_nothing_and_a_bad_row_applies_nothing,
);

async fn attributes_are_typed_and_a_crm_upsert_is_idempotent(backend: Backend) {
    let app = spawn_app(backend).await;
    for definition in [
        json!({"key": "lifetime_value", "label": "Lifetime value", "kind": "number"}),
        json!({"key": "plan", "label": "Plan", "kind": "list", "options": ["basic", "gold"]}),
        json!({"key": "last_order", "label": "Last order", "kind": "date"}),
    ] {
        let (status, body) = app.post("/api/v1/attribute-definitions", definition).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, _) = app
        .post(
            "/api/v1/attribute-definitions",
            json!({"key": "plan", "label": "Plan", "kind": "text"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, error) = app
        .post(
            "/api/v1/attribute-definitions",
            json!({"key": "Plan B", "label": "x", "kind": "text"}),
        )
        .await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("key"))
    );
    let (status, _) = app
        .post(
            "/api/v1/agents",
            json!({"email": "eva@example.com", "name": "Eva", "role": "agent", "password": "eva-password-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let eva = app.login("eva@example.com", "eva-password-1").await;
    let (status, _) = eva
        .post(
            "/api/v1/attribute-definitions",
            json!({"key": "x", "label": "x", "kind": "text"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only admins define attributes");

    // The CRM pushes its customer 42 twice: created, then nothing changes.
    let push = json!({"name": "Ana Pérez", "handles": [{"kind": "email", "value": "ana@example.com"}],
        "attributes": {"lifetime_value": 5200, "plan": "gold", "last_order": "2026-11-02"}});
    let (status, first) = app
        .call(
            Method::PUT,
            "/api/v1/contacts/by-external-id/crm-42",
            Some(push.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(
        (first["created"].as_bool(), first["changed"].as_bool()),
        (Some(true), Some(true))
    );
    let (status, again) = app
        .call(Method::PUT, "/api/v1/contacts/by-external-id/crm-42", Some(push))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (again["created"].as_bool(), again["changed"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(again["contact"]["id"], first["contact"]["id"]);
    let (_, found) = app.get("/api/v1/contacts/lookup?email=ana@example.com").await;
    assert_eq!(
        found["contact"]["id"], first["contact"]["id"],
        "the email finds the CRM's contact"
    );
    assert_eq!(found["contact"]["attributes"]["lifetime_value"], 5200);
    let id = first["contact"]["id"].as_str().unwrap();
    let (_, moved) = app
        .call(
            Method::PUT,
            "/api/v1/contacts/by-external-id/crm-42",
            Some(json!({"attributes": {"plan": "basic"}})),
        )
        .await;
    assert_eq!(moved["changed"], true);

    // A value of the wrong type, or an unknown attribute, is refused and changes nothing.
    for (attributes, field) in [
        (json!({"lifetime_value": "mucho"}), "attributes.lifetime_value"),
        (json!({"last_order": "02/11/2026"}), "attributes.last_order"),
        (json!({"plan": "gold", "shoe_size": 42}), "attributes.shoe_size"),
    ] {
        let (status, error) = app
            .patch(&format!("/api/v1/contacts/{id}"), json!({"attributes": attributes}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        assert_eq!(error["error"]["field"], field);
    }
    let (_, contact) = app.get(&format!("/api/v1/contacts/{id}")).await;
    assert_eq!(contact["attributes"]["plan"], "basic", "nothing half-applied");
    let (status, contact) = app
        .patch(
            &format!("/api/v1/contacts/{id}"),
            json!({"attributes": {"plan": null, "lifetime_value": 7100.5}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{contact}");
    assert_eq!(
        contact["attributes"],
        json!({"lifetime_value": 7100.5, "last_order": "2026-11-02"}),
        "null removes a value"
    );
}

/// Runs the real `switchboard` binary on the app's database.
async fn cli(app: &TestApp, args: &[&str]) -> (bool, String) {
    cli_with(app, args, &[]).await
}

/// Runs the `switchboard` command on the test hub's store, with extra environment settings.
pub(crate) async fn cli_with(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .envs(env.iter().copied())
        .env("SWITCHBOARD__DATABASE__URL", app.settings.database.url())
        .env("SWITCHBOARD__INDEX__PATH", app.dir.path().join("cli-index"))
        .env("SWITCHBOARD__CONTACTS__DEFAULT_REGION", "ES")
        .env("SWITCHBOARD__LOG__LEVEL", "warn")
        .output()
        .await
        .expect("the switchboard binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

async fn a_csv_import_runs_dry_then_for_real_then_changes_nothing_and_a_bad_row_applies_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    for definition in [
        json!({"key": "lifetime_value", "label": "Lifetime value", "kind": "number"}),
        json!({"key": "plan", "label": "Plan", "kind": "list", "options": ["basic", "gold"]}),
    ] {
        assert_eq!(
            app.post("/api/v1/attribute-definitions", definition).await.0,
            StatusCode::CREATED
        );
    }
    let file = app.dir.path().join("contacts.csv");
    std::fs::write(
        &file,
        "external_id,name,email,phone,lifetime_value,plan\n\
         crm-1,Ana Pérez,ana@example.com,600 111 222,5200,gold\n\
         crm-2,Luis,luis@example.com,,120,basic\n\
         crm-3,Marta,,,,\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();

    let (ok, out) = cli(&app, &["import", "contacts", path, "--dry-run"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("3 created, 0 changed, 0 unchanged (dry run"), "{out}");
    assert_eq!(
        app.get("/api/v1/contacts/lookup?email=ana@example.com").await.0,
        StatusCode::NOT_FOUND,
        "a dry run writes nothing"
    );

    let (ok, out) = cli(&app, &["import", "contacts", path]).await;
    assert!(ok && out.contains("3 created, 0 changed, 0 unchanged"), "{out}");
    let (_, ana) = app.get("/api/v1/contacts/lookup?phone=600111222").await;
    assert_eq!(ana["contact"]["name"], "Ana Pérez");
    assert_eq!(
        ana["contact"]["attributes"],
        json!({"lifetime_value": 5200, "plan": "gold"})
    );

    let (ok, out) = cli(&app, &["import", "contacts", path]).await;
    assert!(
        ok && out.contains("0 created, 0 changed, 3 unchanged"),
        "the same file again changes nothing: {out}"
    );

    // A bad row: its line is named and nothing of the file is applied.
    std::fs::write(
        &file,
        "external_id,email,plan\ncrm-4,nuevo@example.com,basic\ncrm-5,otro@example.com,platinum\n",
    )
    .unwrap();
    let (ok, out) = cli(&app, &["import", "contacts", path]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("line 3") && out.contains("attributes.plan") && out.contains("nothing imported"),
        "{out}"
    );
    assert_eq!(
        app.get("/api/v1/contacts/lookup?email=nuevo@example.com").await.0,
        StatusCode::NOT_FOUND
    );

    let export = app.dir.path().join("export.csv");
    let (ok, out) = cli(&app, &["export", "contacts", export.to_str().unwrap()]).await;
    assert!(ok && out.contains("exported 3 contacts"), "{out}");
    let exported = std::fs::read_to_string(&export).unwrap();
    assert!(
        exported.starts_with("external_id,name,email,phone,lifetime_value,plan\n"),
        "{exported}"
    );
    assert!(
        exported.contains("crm-1,Ana Pérez,ana@example.com,+34600111222,5200,gold\n"),
        "{exported}"
    );
    // What was exported imports back as no change at all.
    let (ok, out) = cli(&app, &["import", "contacts", export.to_str().unwrap()]).await;
    assert!(ok && out.contains("0 created, 0 changed, 3 unchanged"), "{out}");
}

//! Contacts: caller lookup, merge and unmerge.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_stores;

on_both_stores!(
    lookup_finds_the_contact_from_three_spellings_of_its_number,
    merge_then_unmerge_restores_both_contacts_exactly,
    a_handle_cannot_belong_to_two_contacts,
    a_contact_is_renamed_and_gains_and_loses_handles,
);

async fn lookup_finds_the_contact_from_three_spellings_of_its_number(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.api_account("pbx").await;
    let (_, pushed) = app
        .push(json!({"channel_account_id": account, "external_id": "call-1",
                     "contact": {"phone": "+34 600 12 34 56", "name": "Marta"}, "text": "Llamada entrante"}))
        .await;
    let contact = pushed["interaction"]["contact_id"].clone();

    for spelling in ["%2B34%20600%2012%2034%2056", "0034600123456", "600123456"] {
        let (status, found) = app.get(&format!("/api/v1/contacts/lookup?phone={spelling}")).await;
        assert_eq!(status, StatusCode::OK, "{spelling}: {found}");
        assert_eq!(found["contact"]["id"], contact, "{spelling}");
        assert_eq!(found["interactions"][0]["id"], pushed["interaction"]["id"]);
        assert_eq!(found["open_conversations"].as_array().unwrap().len(), 1);
    }
    let (status, _) = app.get("/api/v1/contacts/lookup?phone=611000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app.get("/api/v1/contacts/lookup?phone=not-a-number").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "phone");
}

/// A contact's observable state: its record and its timeline.
async fn snapshot(app: &TestApp, id: &str) -> (Value, Vec<String>) {
    let (_, contact) = app.get(&format!("/api/v1/contacts/{id}")).await;
    let (_, timeline) = app.get(&format!("/api/v1/contacts/{id}/timeline")).await;
    (contact, ids(&timeline["items"]))
}

async fn merge_then_unmerge_restores_both_contacts_exactly(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.api_account("api").await;
    let (_, sms) = app
        .push(json!({"channel_account_id": account, "external_id": "s1", "contact": {"phone": "+34611222333", "name": "Pepa"}, "text": "SMS: llego tarde"}))
        .await;
    let (_, mail) = app
        .push(json!({"channel_account_id": account, "external_id": "e1", "contact": {"email": "pepa@example.es"}, "text": "Correo: llego tarde"}))
        .await;
    let source = sms["interaction"]["contact_id"].as_str().unwrap().to_owned();
    let target = mail["interaction"]["contact_id"].as_str().unwrap().to_owned();
    assert_ne!(source, target, "two handles never seen together are two contacts");
    let before_source = snapshot(&app, &source).await;
    let before_target = snapshot(&app, &target).await;

    let (status, merge) = app
        .post(
            "/api/v1/contacts/merge",
            json!({"source_id": source, "target_id": target}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{merge}");
    let (merged_target, merged_timeline) = snapshot(&app, &target).await;
    assert_eq!(merged_timeline.len(), 2, "the target shows both touchpoints");
    assert_eq!(merged_target["handles"].as_array().unwrap().len(), 2);
    let (_, merged_source) = app.get(&format!("/api/v1/contacts/{source}")).await;
    assert_eq!(merged_source["merged_into"], target.as_str());
    let (_, found) = app.get("/api/v1/contacts/lookup?phone=611222333").await;
    assert_eq!(found["contact"]["id"], target.as_str(), "lookup follows the merge");
    let (search, _) = app
        .search_until(
            &format!("q=tarde&contact_id={target}"),
            std::time::Duration::from_secs(5),
            |b| b["total"] == 2,
        )
        .await;
    assert_eq!(search["total"], 2, "search by contact follows the merge: {search}");

    let (status, undone) = app
        .post(
            &format!("/api/v1/merges/{}/unmerge", merge["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{undone}");
    let after_source = snapshot(&app, &source).await;
    let after_target = snapshot(&app, &target).await;
    assert_eq!(after_source.1, before_source.1);
    assert_eq!(after_target.1, before_target.1);
    assert_eq!(after_source.0["handles"], before_source.0["handles"]);
    assert_eq!(after_target.0["handles"], before_target.0["handles"]);
    assert_eq!(after_source.0["merged_into"], Value::Null);
    let (search, _) = app
        .search_until(
            &format!("q=tarde&contact_id={target}"),
            std::time::Duration::from_secs(5),
            |b| b["total"] == 1,
        )
        .await;
    assert_eq!(search["total"], 1, "search by contact follows the unmerge: {search}");

    let (status, again) = app
        .post(
            &format!("/api/v1/merges/{}/unmerge", merge["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    let (_, history) = app.get(&format!("/api/v1/contacts/{source}/merges")).await;
    assert!(history[0]["unmerged_at"].is_string(), "{history}");
}

async fn a_handle_cannot_belong_to_two_contacts(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, _) = app
        .post(
            "/api/v1/contacts",
            json!({"handles": [{"kind": "email", "value": "dup@example.com"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app
        .post(
            "/api/v1/contacts",
            json!({"handles": [{"kind": "email", "value": "DUP@example.com"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, list) = app.get("/api/v1/contacts").await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "the refused contact was not half-written"
    );
}

async fn a_contact_is_renamed_and_gains_and_loses_handles(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, contact) = app
        .post(
            "/api/v1/contacts",
            json!({"name": "Juan", "handles": [{"kind": "email", "value": "juan@example.com"}]}),
        )
        .await;
    let id = contact["id"].as_str().unwrap();
    let old_handle = contact["handles"][0]["id"].clone();

    let (status, updated) = app
        .patch(&format!("/api/v1/contacts/{id}"), json!({"name": "Juan Pérez", "add_handles": [{"kind": "phone", "value": "+1 415 555 2671"}], "remove_handles": [old_handle]}))
        .await;

    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["name"], "Juan Pérez");
    assert_eq!(
        updated["handles"],
        json!([{"id": updated["handles"][0]["id"], "kind": "phone", "value": "+14155552671"}])
    );
    let (status, _) = app.get("/api/v1/contacts/lookup?email=juan@example.com").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the removed handle no longer finds the contact"
    );
    let (status, cleared) = app
        .patch(&format!("/api/v1/contacts/{id}"), json!({"name": null}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cleared["name"], Value::Null);
    let (status, bad) = app
        .patch(
            &format!("/api/v1/contacts/{id}"),
            json!({"add_handles": [{"kind": "fax", "value": "1"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad["error"]["field"], "add_handles[0].kind", "{bad}");
}

//! The generic API channel and the one ingest path behind it.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_stores;

on_both_stores!(
    a_touchpoint_pushed_twice_is_stored_once,
    email_and_phone_handles_of_one_contact_share_one_timeline_in_time_order,
    everything_survives_a_restart_and_search_agrees_with_the_store,
    a_touchpoint_for_an_unknown_account_is_refused_and_nothing_is_written,
    timeline_pages_and_filters_without_gaps_or_repeats,
    concurrent_pushes_are_each_answered_rightly_and_stored_once,
);

async fn a_touchpoint_pushed_twice_is_stored_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.api_account("crm").await;
    let body = json!({
        "channel_account_id": account, "external_id": "crm-4711",
        "contact": {"email": "ana@example.es", "name": "Ana García"}, "text": "Quiero cambiar mi tarifa",
    });

    let (first, created) = app.push(body.clone()).await;
    let (second, repeated) = app.push(body).await;

    assert_eq!(first, StatusCode::CREATED, "{created}");
    assert_eq!(second, StatusCode::OK, "{repeated}");
    assert_eq!(created["duplicate"], false);
    assert_eq!(repeated["duplicate"], true);
    assert_eq!(created["interaction"]["id"], repeated["interaction"]["id"]);
    let contact = created["interaction"]["contact_id"].as_str().unwrap();
    let (_, timeline) = app.get(&format!("/api/v1/contacts/{contact}/timeline")).await;
    assert_eq!(timeline["items"].as_array().unwrap().len(), 1, "{timeline}");
    let (_, contact) = app.get(&format!("/api/v1/contacts/{contact}")).await;
    assert_eq!(contact["name"], "Ana García");
}

async fn email_and_phone_handles_of_one_contact_share_one_timeline_in_time_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.api_account("pbx and mail").await;
    let (status, contact) = app
        .post(
            "/api/v1/contacts",
            json!({"name": "Luis", "handles": [
            {"kind": "email", "value": "Luis@Example.com"}, {"kind": "phone", "value": "+34 600 12 34 56"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{contact}");
    let contact_id = contact["id"].as_str().unwrap();

    let (_, by_mail) = app
        .push(json!({"channel_account_id": account, "external_id": "m1", "occurred_at": "2026-03-01T10:00:00Z",
                     "contact": {"email": "luis@example.com"}, "subject": "Factura", "text": "¿Dónde está mi factura?"}))
        .await;
    let (_, by_phone) = app
        .push(
            json!({"channel_account_id": account, "external_id": "c1", "occurred_at": "2026-03-02T09:30:00Z",
                     "contact": {"phone": "600123456"}, "text": "Llamada sobre la factura"}),
        )
        .await;
    let (_, older) = app
        .push(
            json!({"channel_account_id": account, "external_id": "m0", "occurred_at": "2026-02-20T08:00:00Z",
                     "contact": {"email": "LUIS@example.com"}, "text": "Alta de servicio"}),
        )
        .await;

    for pushed in [&by_mail, &by_phone, &older] {
        assert_eq!(pushed["interaction"]["contact_id"], contact_id, "{pushed}");
    }
    let (_, timeline) = app.get(&format!("/api/v1/contacts/{contact_id}/timeline")).await;
    assert_eq!(
        ids(&timeline["items"]),
        vec![
            by_phone["interaction"]["id"].as_str().unwrap(),
            by_mail["interaction"]["id"].as_str().unwrap(),
            older["interaction"]["id"].as_str().unwrap()
        ],
        "newest first"
    );
}

async fn everything_survives_a_restart_and_search_agrees_with_the_store(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let account = app.api_account("web").await;
    for n in 0..5 {
        let (status, body) = app
            .push(json!({"channel_account_id": account, "external_id": format!("r{n}"),
                         "contact": {"phone": format!("+3460000000{n}")}, "text": format!("reinicio número {n} facturación")}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (before, _) = app
        .search_until("q=facturacion", std::time::Duration::from_secs(5), |b| b["total"] == 5)
        .await;

    app.restart().await;

    let (status, after) = app.get("/api/v1/search?q=facturacion").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after["total"], 5, "{after}");
    let mut ids_before = ids(&before["hits"]);
    let mut ids_after = ids(&after["hits"]);
    ids_before.sort();
    ids_after.sort();
    assert_eq!(ids_before, ids_after);
    for n in 0..5 {
        let (status, found) = app
            .get(&format!("/api/v1/contacts/lookup?phone=%2B3460000000{n}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{found}");
        assert_eq!(found["interactions"].as_array().unwrap().len(), 1);
    }
    let (_, ready) = app.get("/readyz").await;
    assert_eq!(
        ready["store_seq"], ready["index_seq"],
        "index caught up with the store: {ready}"
    );
}

async fn a_touchpoint_for_an_unknown_account_is_refused_and_nothing_is_written(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = app
        .push(json!({"channel_account_id": uuid::Uuid::now_v7(), "external_id": "x",
                     "contact": {"email": "nobody@example.org"}, "text": "hola"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "channel_account_id", "{body}");
    let (status, _) = app.get("/api/v1/contacts/lookup?email=nobody@example.org").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no contact was half-written");
}

async fn timeline_pages_and_filters_without_gaps_or_repeats(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.api_account("api").await;
    let mut pushed = Vec::new();
    for n in 0..7 {
        let (_, body) = app
            .push(json!({"channel_account_id": account, "external_id": format!("t{n}"),
                         // Two touchpoints share each instant, so the keyset must break ties by id.
                         "occurred_at": format!("2026-01-0{}T12:00:00Z", 1 + n / 2),
                         "direction": if n % 3 == 0 { "outbound" } else { "inbound" },
                         "contact": {"email": "pages@example.com"}, "text": format!("mensaje {n}")}))
            .await;
        pushed.push(body["interaction"].clone());
    }
    let contact = pushed[0]["contact_id"].as_str().unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/contacts/{contact}/timeline?limit=3&cursor={c}"),
            None => format!("/api/v1/contacts/{contact}/timeline?limit=3"),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(ids(&page["items"]));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let mut expected: Vec<(String, String)> = pushed
        .iter()
        .map(|i| {
            (
                i["occurred_at"].as_str().unwrap().to_owned(),
                i["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    expected.sort();
    expected.reverse();
    assert_eq!(seen, expected.into_iter().map(|(_, id)| id).collect::<Vec<_>>());

    let (_, outbound) = app
        .get(&format!("/api/v1/contacts/{contact}/timeline?direction=outbound"))
        .await;
    assert_eq!(outbound["items"].as_array().unwrap().len(), 3, "{outbound}");
    let (_, chat) = app
        .get(&format!("/api/v1/contacts/{contact}/timeline?channel=chat"))
        .await;
    assert_eq!(chat["items"].as_array().unwrap().len(), 0);
}

async fn concurrent_pushes_are_each_answered_rightly_and_stored_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.api_account("api").await;
    let mut requests = Vec::new();
    for n in 0..60 {
        // Every touchpoint twice, and all of one new caller's at once: duplicates and
        // contention for the same new handle land in the same commit batches.
        for _ in 0..2 {
            requests.push((json!({"channel_account_id": account, "external_id": format!("c{n}"),
                                  "contact": {"phone": format!("+3460000{:04}", n % 6)}, "text": format!("mensaje {n}")}), true));
        }
        if n % 10 == 0 {
            requests.push((
                json!({"channel_account_id": uuid::Uuid::now_v7(), "external_id": format!("bad{n}"),
                                  "contact": {"email": "x@example.com"}, "text": "x"}),
                false,
            ));
        }
    }
    let answers = futures::future::join_all(requests.iter().map(|(body, _)| app.push(body.clone()))).await;

    let mut created = 0;
    let mut ids_by_external = std::collections::HashMap::new();
    for ((body, valid), (status, answer)) in requests.iter().zip(&answers) {
        if !valid {
            assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
            continue;
        }
        assert!(
            *status == StatusCode::CREATED || *status == StatusCode::OK,
            "{status} {answer}"
        );
        created += usize::from(*status == StatusCode::CREATED);
        let previous = ids_by_external.insert(body["external_id"].clone(), answer["interaction"]["id"].clone());
        if let Some(previous) = previous {
            assert_eq!(
                previous, answer["interaction"]["id"],
                "both deliveries name the same interaction"
            );
        }
    }
    assert_eq!(created, 60, "each touchpoint was created exactly once");
    let (_, contacts) = app.get("/api/v1/contacts?limit=200").await;
    assert_eq!(contacts.as_array().unwrap().len(), 6, "one contact per caller");
    let (_, metrics) = app.get("/readyz").await;
    assert_eq!(metrics["store_seq"], 60, "nothing else was written");
}

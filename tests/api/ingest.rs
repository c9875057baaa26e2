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
    // HTML to clean and turn into text, a time finer than the store keeps, details: what the
    // first answer says was stored must be what the store gives back for the repeat.
    let body = json!({
        "channel_account_id": account, "external_id": "crm-4711",
        "contact": {"email": "ana@example.es", "name": "Ana García"},
        "html": "<p>Quiero cambiar mi <b>tarifa</b></p><script>alert(1)</script>",
        "occurred_at": "2026-11-20T10:15:30.123456789Z", "details": {"crm": {"case": 4711}},
    });

    let (first, created) = app.push(body.clone()).await;
    let (second, repeated) = app.push(body).await;

    assert_eq!(first, StatusCode::CREATED, "{created}");
    assert_eq!(second, StatusCode::OK, "{repeated}");
    assert_eq!(created["duplicate"], false);
    assert_eq!(repeated["duplicate"], true);
    assert_eq!(created["interaction"], repeated["interaction"]);
    let stored = &repeated["interaction"];
    assert_eq!(stored["occurred_at"], "2026-11-20T10:15:30.123456Z");
    assert!(
        stored["text"].as_str().unwrap().contains("Quiero cambiar mi"),
        "{stored}"
    );
    assert!(!stored["html"].as_str().unwrap().contains("script"), "{stored}");
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

/// A batch is written without a savepoint per envelope first; when one of its envelopes loses a
/// race for a new caller with another node's writer, the attempt is rolled back and the whole
/// batch written again with savepoints: every envelope is stored once, the raced one on the
/// caller the other node created. PostgreSQL only: on SQLite one writer is all there is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_loses_a_race_for_a_new_caller_is_written_again_whole() {
    use sqlx::{Connection, Executor};
    use switchboard::ingest::IngestWriter;
    use switchboard_connectors::*;

    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(Backend::Postgres, dir.path()).await;
    let store = switchboard::store::Store::connect(&url, 4).await.unwrap();
    let account = store
        .create_channel_account(switchboard::store::NewChannelAccount {
            kind: ChannelKind::Api,
            name: "crm".into(),
            settings: json!({}),
            secret: None,
        })
        .await
        .unwrap();
    let region = Region::parse("ES").unwrap();
    let envelope = |external_id: &str, phone: &str| InboundEnvelope {
        channel_account_id: account.id.0,
        channel: ChannelKind::Api,
        external_id: external_id.into(),
        direction: Direction::Inbound,
        contact: Handle::Phone(PhoneNumber::parse(phone, region).unwrap()),
        contact_name: None,
        occurred_at: time::OffsetDateTime::now_utc(),
        threading: ThreadingHints::default(),
        content: Content {
            subject: None,
            text: Some(format!("llamada de {phone}")),
            html: None,
        },
        attachments: vec![],
        details: json!({}),
        cursor: None,
        agent_extension: None,
        needs_reply: true,
    };

    // "Another node" is creating the caller +34 600 000 001 and has not committed yet.
    let mut other = sqlx::AnyConnection::connect(&url).await.unwrap();
    other.execute("BEGIN").await.unwrap();
    let caller = uuid::Uuid::now_v7().to_string();
    sqlx::query("INSERT INTO contacts (id, name, created_at, updated_at) VALUES ($1, 'Otro nodo', 0, 0)")
        .bind(caller.clone())
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO handles (id, contact_id, kind, value, created_at) VALUES ($1, $2, 'phone', '+34600000001', 0)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(caller.clone())
    .execute(&mut other)
    .await
    .unwrap();

    // The three envelopes wait in the queue before the writer starts: they form one batch.
    let (writer, queue) = IngestWriter::new(store.clone(), time::Duration::hours(72));
    let batch = vec![
        envelope("first", "+34600000002"),
        envelope("raced", "600000001"),
        envelope("last", "+34600000003"),
    ];
    let ingest = tokio::spawn({
        let (queue, store) = (queue.clone(), store.clone());
        async move { queue.ingest_many(&store, batch).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    tokio::spawn(writer.run());

    // Once the writer waits for the other node's handle, the other node commits.
    let mut waiting = false;
    for _ in 0..100 {
        let blocked: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(store.reader())
        .await
        .unwrap();
        if blocked > 0 {
            waiting = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(waiting, "the writer never waited for the other node's new handle");
    other.execute("COMMIT").await.unwrap();

    let outcomes = ingest.await.unwrap();
    let outcomes: Vec<_> = outcomes
        .into_iter()
        .map(|o| o.expect("every envelope of the batch is stored"))
        .collect();
    assert!(outcomes.iter().all(|o| !o.duplicate));
    assert_eq!(
        outcomes[1].interaction.contact_id.to_string(),
        caller,
        "the raced touchpoint is the other node's caller's"
    );
    assert_ne!(outcomes[0].interaction.contact_id, outcomes[2].interaction.contact_id);
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM interactions")
        .fetch_one(store.reader())
        .await
        .unwrap();
    let contacts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contacts")
        .fetch_one(store.reader())
        .await
        .unwrap();
    assert_eq!(
        (stored, contacts),
        (3, 3),
        "each envelope once, no contact left over from the rolled-back attempt"
    );
}

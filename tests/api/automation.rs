//! Segments, value-based priority and triggers, through the API of a running hub: a VIP's next
//! conversation is urgent with the tighter SLA and sorts first; a "third missed call" trigger
//! assigns and calls a webhook exactly once across a restart; bad rules and triggers are refused.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_stores;

on_both_stores!(
    a_contact_entering_a_vip_segment_gets_its_next_conversation_urgent_with_the_tighter_sla,
    a_third_missed_call_assigns_and_calls_the_webhook_exactly_once_across_a_restart,
);

/// Polls `get` until `pred` holds, for at most `within`; returns the last answer.
async fn until(app: &TestApp, path: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        if pred(&body) || started.elapsed() > within {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn seconds_between(from: &Value, to: &Value) -> i64 {
    let parse = |v: &Value| {
        time::OffsetDateTime::parse(v.as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap()
    };
    (parse(to) - parse(from)).whole_seconds()
}

async fn a_contact_entering_a_vip_segment_gets_its_next_conversation_urgent_with_the_tighter_sla(backend: Backend) {
    let app = spawn_app(backend).await;
    let crm = app.api_account("crm").await;
    let web = app.api_account("web").await;
    let (status, _) = app
        .post(
            "/api/v1/attribute-definitions",
            json!({"key": "lifetime_value", "label": "Lifetime value", "kind": "number"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Everyone: first response within an hour; high priority: 30 minutes; the VIP policy: 5.
    for policy in [
        json!({"name": "standard", "first_response_s": 3600}),
        json!({"name": "high", "priority": "high", "first_response_s": 1800}),
        json!({"name": "vip", "priority": "urgent", "first_response_s": 300}),
    ] {
        let (status, body) = app.post("/api/v1/sla-policies", policy).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (_, policies) = app.get("/api/v1/sla-policies").await;
    let vip_policy = policies
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "vip")
        .unwrap()["id"]
        .clone();

    // A rule that does not parse is refused, naming the place.
    let (status, refused) = app
        .post(
            "/api/v1/segments",
            json!({"name": "VIP", "rule": {"all": [{"attribute": "lifetime_value", "op": "greater", "value": 5000}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["field"], "rule.all[0].op");
    let (status, refused) = app
        .post(
            "/api/v1/segments",
            json!({"name": "VIP", "rule": {"attribute": "lifetime", "op": "gte", "value": 5000}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused["error"]["field"], "rule.attribute");

    let (status, segment) = app
        .post(
            "/api/v1/segments",
            json!({"name": "VIP", "rule": {"attribute": "lifetime_value", "op": "gte", "value": 5000},
                   "priority": "high", "sla_policy_id": vip_policy}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{segment}");

    // Lucía is not a VIP yet; her first message is normal.
    let upsert = |value: u32| {
        json!({"name": "Lucía Gómez", "handles": [{"kind": "email", "value": "lucia@example.es"}],
               "attributes": {"lifetime_value": value}})
    };
    let (status, lucia) = app
        .call(Method::PUT, "/api/v1/contacts/by-external-id/crm-7", Some(upsert(1200)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lucia}");
    let lucia_id = lucia["contact"]["id"].as_str().unwrap().to_owned();
    let (_, first) = app
        .push(json!({"channel_account_id": crm, "external_id": "l-1", "contact": {"email": "lucia@example.es"}, "text": "¿Dónde está mi pedido?"}))
        .await;
    let (_, first) = app
        .get(&format!(
            "/api/v1/conversations/{}",
            first["interaction"]["conversation_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(first["conversation"]["priority"], "normal", "{first}");
    assert_eq!(first["conversation"]["priority_reason"], Value::Null);

    // Evaluated on demand: a preview counts who a rule would hold, without saving it.
    let (status, preview) = app
        .post(
            "/api/v1/segments/preview",
            json!({"rule": {"attribute": "lifetime_value", "op": "gte", "value": 1000}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["count"], 1);
    assert_eq!(preview["sample"], json!([lucia_id]));

    // Pablo writes first, through the web form; he is no VIP.
    let (_, pablo) = app
        .push(json!({"channel_account_id": web, "external_id": "p-1", "contact": {"email": "pablo@example.es"}, "text": "Consulta"}))
        .await;
    let pablo_conversation = pablo["interaction"]["conversation_id"].as_str().unwrap().to_owned();

    // The CRM reports a big order: Lucía enters the segment at once.
    let (status, _) = app
        .call(Method::PUT, "/api/v1/contacts/by-external-id/crm-7", Some(upsert(6000)))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, contact) = app.get(&format!("/api/v1/contacts/{lucia_id}")).await;
    assert_eq!(contact["segments"][0]["name"], "VIP", "{contact}");

    // Her next conversation is high priority, says why, and runs on the VIP policy.
    let (_, pushed) = app
        .push(json!({"channel_account_id": web, "external_id": "l-2", "contact": {"email": "lucia@example.es"}, "text": "Quiero cambiar la dirección"}))
        .await;
    let vip_conversation = pushed["interaction"]["conversation_id"].as_str().unwrap().to_owned();
    let vip = until(
        &app,
        &format!("/api/v1/conversations/{vip_conversation}"),
        Duration::from_secs(10),
        |c| !c["conversation"]["sla_due_at"].is_null(),
    )
    .await;
    let vip = &vip["conversation"];
    assert_eq!(vip["priority"], "high");
    assert_eq!(vip["priority_reason"], "segment VIP");
    assert_eq!(
        seconds_between(&vip["opened_at"], &vip["sla_due_at"]),
        300,
        "the segment's policy, not the high-priority one: {vip}"
    );
    let pablo = until(
        &app,
        &format!("/api/v1/conversations/{pablo_conversation}"),
        Duration::from_secs(10),
        |c| !c["conversation"]["sla_due_at"].is_null(),
    )
    .await;
    let pablo = &pablo["conversation"];
    assert_eq!(seconds_between(&pablo["opened_at"], &pablo["sla_due_at"]), 3600);

    // The inbox puts her first, though Pablo has waited longer, with her badge.
    let (_, inbox) = app
        .get(&format!("/api/v1/inbox?view=all&channel_account_id={web}"))
        .await;
    let order: Vec<&str> = inbox
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [vip_conversation.as_str(), pablo_conversation.as_str()],
        "{inbox}"
    );
    assert_eq!(inbox[0]["segments"][0]["name"], "VIP");
    assert_eq!(inbox[1]["segments"], json!([]));

    // Kept current: when the value drops she leaves the segment.
    app.call(Method::PUT, "/api/v1/contacts/by-external-id/crm-7", Some(upsert(100)))
        .await;
    let (_, contact) = app.get(&format!("/api/v1/contacts/{lucia_id}")).await;
    assert_eq!(contact["segments"], json!([]), "{contact}");
}

/// A local HTTP receiver recording every request's delivery id, signature and body.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(String, String, Value)>>>,
}

impl Receiver {
    async fn serve(&self, listener: tokio::net::TcpListener) {
        let seen = self.seen.clone();
        let app = axum::Router::new().route(
            "/hooks/callback",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let seen = seen.clone();
                async move {
                    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    seen.lock().unwrap().push((
                        header("x-switchboard-delivery"),
                        header("x-switchboard-signature"),
                        serde_json::from_str(&body).unwrap_or(Value::Null),
                    ));
                    StatusCode::NO_CONTENT
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    }

    fn requests(&self) -> Vec<(String, String, Value)> {
        self.seen.lock().unwrap().clone()
    }
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn a_third_missed_call_assigns_and_calls_the_webhook_exactly_once_across_a_restart(backend: Backend) {
    let mut app = spawn_app_with(backend, |s| s.automation.call_settle_seconds = 3).await;
    let voice = crate::calls::voice_account(&app).await;
    let (status, agent) = app
        .post(
            "/api/v1/agents",
            json!({"email": "rocio@example.com", "name": "Rocío", "role": "agent", "password": "rocio-password-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // The receiver is down for now: its port is reserved and closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secret = "callback-secret-0123456789";
    let trigger = json!({
        "name": "Third missed call",
        "event": "call_missed",
        "conditions": {"activity": "missed_calls", "days": 7, "op": "gte", "value": 3},
        "actions": [
            {"type": "assign", "agent_id": agent["id"]},
            {"type": "set_priority", "priority": "urgent"},
            {"type": "add_label", "label": "callback"},
            {"type": "webhook", "url": format!("http://127.0.0.1:{port}/hooks/callback"), "secret": secret},
        ],
    });

    // Bad triggers are refused, naming the field; one aimed at the hub itself would loop.
    let own = format!("{}/api/v1/interactions", app.base);
    for (bad, field) in [
        (
            json!({"name": "x", "event": "call_missed", "actions": [{"type": "webhook", "url": own}]}),
            "actions[0].url",
        ),
        (
            json!({"name": "x", "event": "call_dropped", "actions": [{"type": "add_label", "label": "x"}]}),
            "event",
        ),
        (
            json!({"name": "x", "event": "call_missed", "conditions": {"activity": "missed_calls", "days": 7, "op": "gte"}, "actions": [{"type": "add_label", "label": "x"}]}),
            "conditions.value",
        ),
        (
            json!({"name": "x", "event": "call_missed", "actions": [{"type": "reply", "template": "Hola {{contacto.nombre}}"}]}),
            "actions[0].template",
        ),
    ] {
        let (status, body) = app.post("/api/v1/triggers", bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    let (status, created) = app.post("/api/v1/triggers", trigger).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let trigger_id = created["id"].as_str().unwrap().to_owned();
    let (_, listed) = app.get("/api/v1/triggers").await;
    assert_eq!(
        listed[0]["actions"][3]["secret"], "********",
        "secrets never leave the hub"
    );

    let missed_call = |n: u32| {
        let call = format!("pbx-{n}");
        [
            json!({"channel_account_id": voice, "call_id": call, "event": "ringing", "from": "+34 600 11 22 33", "to": "+34910000000", "direction": "inbound"}),
            json!({"channel_account_id": voice, "call_id": call, "event": "hangup", "from": "+34 600 11 22 33", "to": "+34910000000", "direction": "inbound"}),
        ]
    };
    for n in 1..=2 {
        for event in missed_call(n) {
            let (status, body) = app.post("/api/v1/calls/events", event).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    // The third call; the hub stops before the missed call has settled, so nothing has
    // acted on it yet: the event waits in the store.
    let mut conversation = String::new();
    for event in missed_call(3) {
        let (_, body) = app.post("/api/v1/calls/events", event).await;
        if let Some(id) = body["interaction_id"].as_str() {
            let (_, call) = app.get(&format!("/api/v1/interactions/{id}")).await;
            conversation = call["interaction"]["conversation_id"].as_str().unwrap().to_owned();
        }
    }
    let acknowledged = Instant::now();
    app.stop().await;
    assert!(
        acknowledged.elapsed() < Duration::from_secs(3),
        "stopped before the call settled"
    );
    app.start().await;

    // After the restart the trigger acts: assigned, urgent with its reason, labelled.
    let path = format!("/api/v1/conversations/{conversation}");
    let after = until(&app, &path, Duration::from_secs(15), |c| {
        !c["conversation"]["assignee_id"].is_null()
    })
    .await;
    assert_eq!(after["conversation"]["assignee_id"], agent["id"], "{after}");
    assert_eq!(after["conversation"]["priority"], "urgent");
    assert_eq!(after["conversation"]["priority_reason"], "trigger Third missed call");

    // The receiver comes up; the pending delivery arrives, once.
    let receiver = Receiver::default();
    receiver
        .serve(tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap())
        .await;
    let started = Instant::now();
    while receiver.requests().is_empty() && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Another restart and a wait: nothing is sent or done twice.
    app.restart().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (delivery, signature, payload) = &requests[0];
    assert!(!delivery.is_empty());
    assert_eq!(payload["trigger"]["name"], "Third missed call");
    assert_eq!(payload["event"]["type"], "call_missed");
    assert_eq!(payload["conversation"]["id"], conversation.as_str());
    assert_eq!(
        *signature,
        hmac_hex(secret, serde_json::to_string(payload).unwrap().as_bytes()),
        "signed with the trigger's secret"
    );
    let (_, activity) = app.get(&format!("/api/v1/triggers/{trigger_id}/activity")).await;
    assert_eq!(activity["firings"].as_array().unwrap().len(), 1, "{activity}");
    assert_eq!(activity["webhook_deliveries"][0]["status"], "delivered", "{activity}");
    let (_, events) = app.get(&format!("/api/v1/conversations/{conversation}")).await;
    assert_eq!(events["conversation"]["assignee_id"], agent["id"]);
    let (_, labels) = app.get("/api/v1/inbox?view=all&label=callback").await;
    assert_eq!(labels.as_array().unwrap().len(), 1, "{labels}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_to_a_private_address_are_refused_unless_allowed() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.egress.allow_private_addresses = false).await;
    let crm = app.api_account("crm").await;
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    receiver.serve(listener).await;
    let (status, created) = app
        .post(
            "/api/v1/triggers",
            json!({"name": "Every message", "event": "interaction_received",
                   "actions": [{"type": "webhook", "url": format!("http://127.0.0.1:{port}/hooks/callback")}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    app.push(json!({"channel_account_id": crm, "external_id": "m-1", "contact": {"email": "eva@example.es"}, "text": "Hola"}))
        .await;
    let activity = until(
        &app,
        &format!("/api/v1/triggers/{}/activity", created["id"].as_str().unwrap()),
        Duration::from_secs(10),
        |a| a["webhook_deliveries"][0]["status"] == "failed",
    )
    .await;
    let error = activity["webhook_deliveries"][0]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("loopback, private or link-local"), "{activity}");

    // An API inbox whose webhook an admin pointed at the same address: the reply fails for good.
    let (status, inbox) = app
        .post(
            "/api/v1/channel-accounts",
            json!({"kind": "api", "name": "erp", "settings": {"webhook_url": format!("http://localhost:{port}/hooks/callback")}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    let (_, pushed) = app
        .push(json!({"channel_account_id": inbox["id"], "external_id": "e-1", "contact": {"email": "eva@example.es"}, "text": "Hola"}))
        .await;
    let conversation = pushed["interaction"]["conversation_id"].as_str().unwrap();
    let (status, reply) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/replies"),
            json!({"text": "Buenos días"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let read = until(
        &app,
        &format!("/api/v1/interactions/{}", reply["id"].as_str().unwrap()),
        Duration::from_secs(10),
        |r| r["delivery"]["status"] == "failed",
    )
    .await;
    assert!(
        read["delivery"]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("loopback, private or link-local"),
        "{read}"
    );
    assert!(receiver.requests().is_empty(), "nothing reached the private address");
}

/// The classic auto-responder loops, against the real mail servers. Mail from the inbox's own
/// address gets the trigger's acknowledgement, which lands back in the same mailbox: the copy
/// is recognised as our own reply by its Message-ID and not taken for a customer's mail. And a
/// customer's out-of-office answer to the acknowledgement (`Auto-Submitted`) is stored and seen
/// by the trigger, but not answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automatic_reply_is_never_answered_automatically() {
    let app = spawn_app(Backend::Sqlite).await;
    let mail = crate::email::MailServers::from_env();
    let (user, password) = mail.user("loop");
    crate::email::email_account(&app, &mail, &user, &password).await;
    let address = format!("{user}@example.test");
    let (status, created) = app
        .post(
            "/api/v1/triggers",
            json!({"name": "Acuse de recibo", "event": "interaction_received", "conditions": {"channel": ["email"]},
                   "actions": [{"type": "reply", "template": format!("Hemos recibido tu mensaje, {{{{contact.first_name}}}}. Ref {user}.")}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let activity = format!("/api/v1/triggers/{}/activity", created["id"].as_str().unwrap());
    // The relay keeps every message of the session; the mailbox name makes ours unique.
    let acknowledgements = || mail.relayed(&format!("Ref {user}."));
    let wait_for_acks = async |n: usize| {
        let started = Instant::now();
        while acknowledgements().len() < n && started.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };

    // 1. From our own address: one acknowledgement, whose copy coming back is ours.
    let raw = crate::email::mail(
        &address,
        &address,
        "Formulario web",
        &format!("<form-{user}@example.test>"),
        "",
        "Nuevo pedido",
    );
    mail.send(&address, &address, &raw).await;
    wait_for_acks(1).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let acks = acknowledgements();
    assert_eq!(acks.len(), 1, "answered once, not in a loop");
    assert!(acks[0].contains("Auto-Submitted: auto-replied"), "{}", acks[0]);
    let (_, own) = app.get(&format!("/api/v1/contacts/lookup?email={address}")).await;
    let directions: Vec<&str> = own["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["direction"].as_str().unwrap())
        .collect();
    assert_eq!(
        directions,
        ["outbound", "inbound"],
        "the copy of our reply is not a new message: {own}"
    );
    let (_, fired) = app.get(&activity).await;
    assert_eq!(fired["firings"].as_array().unwrap().len(), 1, "{fired}");

    // 2. A customer's out-of-office answers the acknowledgement: stored, seen, not answered.
    let raw = crate::email::mail(
        "ana@cliente.test",
        &address,
        "Pedido",
        &format!("<ana-{user}@cliente.test>"),
        "",
        "¿Y mi pedido?",
    );
    mail.send("ana@cliente.test", &address, &raw).await;
    wait_for_acks(2).await;
    assert_eq!(acknowledgements().len(), 2);
    assert!(
        acknowledgements()
            .iter()
            .any(|a| a.contains("Hemos recibido tu mensaje, Ana."))
    );
    let out_of_office = crate::email::mail(
        "ana@cliente.test",
        &address,
        "Fuera de la oficina",
        &format!("<ooo-{user}@cliente.test>"),
        "Auto-Submitted: auto-replied\r\n",
        "Vuelvo el lunes.",
    );
    mail.send("ana@cliente.test", &address, &out_of_office).await;
    let seen = until(&app, &activity, Duration::from_secs(20), |a| {
        a["firings"].as_array().is_some_and(|f| f.len() >= 3)
    })
    .await;
    assert_eq!(seen["firings"].as_array().unwrap().len(), 3, "{seen}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        acknowledgements().len(),
        2,
        "an automatic answer gets no automatic answer"
    );
}

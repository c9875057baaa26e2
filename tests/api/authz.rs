//! The authorisation matrix: every object-level route, for every kind of caller. Two inboxes,
//! each with a conversation, a contact, an interaction and an attachment; an agent of inbox A,
//! an agent of inbox B, a supervisor, an admin and an anonymous caller. An agent reaches only
//! their own inbox's objects (others are "not found", so ids cannot be probed), supervisors
//! read everything and change what agents change, admins alone manage the set-up.

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::*;
use crate::on_both_stores;

on_both_stores!(every_route_answers_each_role_as_the_matrix_says);

/// One side of the matrix: an inbox and what it holds.
struct Inbox {
    account: String,
    conversation: String,
    interaction: String,
    contact: String,
    email: String,
    attachment: String,
}

async fn inbox(app: &TestApp, name: &str, word: &str) -> Inbox {
    let account = app.api_account(name).await;
    let bytes = format!("factura de {name}").into_bytes();
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let store = switchboard::store::Store::connect(app.settings.database.url(), 1)
        .await
        .unwrap();
    store.put_blob(&sha256, "application/pdf", &bytes).await.unwrap();
    store.close().await;
    let email = format!("cliente@{name}.example");
    let (status, pushed) = app
        .push(json!({"channel_account_id": account, "external_id": format!("{name}-1"), "contact": {"email": email},
            "subject": "Factura", "text": format!("Hola, {word}"),
            "attachments": [{"name": "factura.pdf", "content_type": "application/pdf", "size": bytes.len(), "sha256": sha256}]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{pushed}");
    let i = &pushed["interaction"];
    Inbox {
        account,
        conversation: i["conversation_id"].as_str().unwrap().into(),
        interaction: i["id"].as_str().unwrap().into(),
        contact: i["contact_id"].as_str().unwrap().into(),
        email,
        attachment: sha256,
    }
}

/// A caller: how it authenticates.
enum Caller {
    Anonymous,
    Session(Session),
    Token(String),
}

impl Caller {
    async fn call(&self, app: &TestApp, method: Method, path: &str, body: Option<&Value>) -> StatusCode {
        let url = format!("{}{path}", app.base);
        let mut request = match self {
            Self::Anonymous => app.http.request(method, url),
            Self::Token(token) => app.http.request(method, url).bearer_auth(token),
            Self::Session(session) => session.http.request(method, url).header("x-csrf-token", &session.csrf),
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap().status()
    }
}

async fn person(app: &TestApp, email: &str, role: &str, inboxes: &[&str]) -> Caller {
    let (status, body) = app
        .post(
            "/api/v1/agents",
            json!({"email": email, "name": email, "role": role, "password": "matrix-password-1", "inboxes": inboxes}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Caller::Session(app.login(email, "matrix-password-1").await)
}

/// What a caller gets: the route served (2xx), or refused with this status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Ok,
    No(u16),
}
use Expect::*;

fn matches(expect: Expect, got: StatusCode) -> bool {
    match expect {
        Ok => got.is_success(),
        No(code) => got.as_u16() == code,
    }
}

async fn every_route_answers_each_role_as_the_matrix_says(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = inbox(&app, "norte", "alpaca").await;
    let b = inbox(&app, "sur", "bisonte").await;
    let callers = [
        (
            "agent of A",
            person(&app, "ana@example.com", "agent", &[&a.account]).await,
        ),
        (
            "agent of B",
            person(&app, "beto@example.com", "agent", &[&b.account]).await,
        ),
        ("supervisor", person(&app, "sara@example.com", "supervisor", &[]).await),
        ("admin token", Caller::Token(app.token.clone())),
        ("anonymous", Caller::Anonymous),
    ];
    // Expectations for: agent of A, agent of B, supervisor, admin token, anonymous.
    let on_b = [No(404), Ok, Ok, Ok, No(401)];
    let supervisors = [No(403), No(403), Ok, Ok, No(401)];
    let admins = [No(403), No(403), No(403), Ok, No(401)];
    let everyone = [Ok, Ok, Ok, Ok, No(401)];
    let b_id = |what: &str| match what {
        "conversation" => b.conversation.clone(),
        "interaction" => b.interaction.clone(),
        "contact" => b.contact.clone(),
        _ => unreachable!(),
    };
    let period = "from=2026-01-01T00:00:00Z&to=2026-12-31T00:00:00Z";
    let rows: Vec<(Method, String, Option<Value>, [Expect; 5])> = vec![
        (
            Method::GET,
            format!("/api/v1/conversations/{}", b_id("conversation")),
            None,
            on_b,
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{}/notes", b.conversation),
            Some(json!({"text": "nota"})),
            on_b,
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{}/replies", b.conversation),
            Some(json!({"text": "hola"})),
            on_b,
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{}/status", b.conversation),
            Some(json!({"status": "pending"})),
            on_b,
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{}/priority", b.conversation),
            Some(json!({"priority": "high"})),
            on_b,
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{}/assign", b.conversation),
            Some(json!({"assignee_id": null})),
            on_b,
        ),
        (
            Method::PUT,
            format!("/api/v1/conversations/{}/labels", b.conversation),
            Some(json!({"labels": ["x"]})),
            on_b,
        ),
        (
            Method::GET,
            format!("/api/v1/interactions/{}", b_id("interaction")),
            None,
            on_b,
        ),
        (
            // B's interaction is not an email: whoever may see it learns only that it cannot be split.
            Method::POST,
            format!("/api/v1/interactions/{}/split", b_id("interaction")),
            Some(json!({})),
            [No(404), No(422), No(422), No(422), No(401)],
        ),
        (Method::GET, format!("/api/v1/contacts/{}", b_id("contact")), None, on_b),
        (
            Method::PATCH,
            format!("/api/v1/contacts/{}", b.contact),
            Some(json!({"name": "Cambiado"})),
            on_b,
        ),
        (
            Method::GET,
            format!("/api/v1/contacts/{}/timeline", b.contact),
            None,
            on_b,
        ),
        (
            Method::GET,
            format!("/api/v1/contacts/{}/merges", b.contact),
            None,
            on_b,
        ),
        (
            Method::GET,
            format!("/api/v1/contacts/lookup?email={}", b.email),
            None,
            on_b,
        ),
        (Method::GET, format!("/api/v1/attachments/{}", b.attachment), None, on_b),
        (
            Method::POST,
            "/api/v1/interactions".into(),
            Some(
                json!({"channel_account_id": b.account, "external_id": "pushed", "contact": {"email": "otro@sur.example"}, "text": "x"}),
            ),
            [No(422), Ok, Ok, Ok, No(401)],
        ),
        (Method::GET, "/api/v1/inbox".into(), None, everyone),
        (
            Method::GET,
            format!("/api/v1/reports/summary?{period}&group_by=inbox"),
            None,
            supervisors,
        ),
        (Method::GET, "/api/v1/dashboard".into(), None, supervisors),
        (Method::GET, "/api/v1/sla-policies".into(), None, supervisors),
        (
            Method::POST,
            "/api/v1/sla-policies".into(),
            Some(json!({"name": "p", "first_response_s": 60})),
            admins,
        ),
        (
            Method::POST,
            "/api/v1/calendars".into(),
            Some(json!({"name": "c", "time_zone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}})),
            admins,
        ),
        (
            Method::POST,
            "/api/v1/channel-accounts".into(),
            Some(json!({"kind": "api", "name": "nuevo"})),
            admins,
        ),
        (
            Method::PUT,
            format!("/api/v1/agents/{}/inboxes", "01a20768-0000-7000-8000-000000000000"),
            Some(json!({"channel_account_ids": []})),
            [No(403), No(403), No(403), No(404), No(401)],
        ),
        (
            Method::POST,
            "/api/v1/agents".into(),
            Some(json!({"email": "x@example.com", "name": "x", "role": "admin", "password": "password-123456"})),
            [No(403), No(403), No(403), Ok, No(401)],
        ),
        // Mass assignment: a field the route does not take is refused, not ignored (from the
        // body alone, before the id is looked at, so the answer tells nothing about the id).
        (
            Method::PATCH,
            format!("/api/v1/contacts/{}", b.contact),
            Some(json!({"name": "x", "merged_into": a.contact})),
            [No(422), No(422), No(422), No(422), No(401)],
        ),
        (Method::GET, "/api/v1/segments".into(), None, everyone),
        (
            Method::POST,
            "/api/v1/segments".into(),
            Some(json!({"name": "frequent", "rule": {"activity": "inbound", "days": 7, "op": "gt", "value": 3}})),
            admins,
        ),
        (
            Method::POST,
            "/api/v1/segments/preview".into(),
            Some(json!({"rule": {"activity": "inbound", "days": 7, "op": "gt", "value": 3}})),
            supervisors,
        ),
        (Method::POST, "/api/v1/automation/sweep".into(), Some(json!({})), admins),
        (Method::GET, "/api/v1/triggers".into(), None, admins),
        (Method::GET, "/api/v1/cluster".into(), None, admins),
        (
            Method::POST,
            "/api/v1/triggers".into(),
            Some(
                json!({"name": "t", "event": "conversation_resolved", "actions": [{"type": "add_label", "label": "done"}]}),
            ),
            admins,
        ),
        (
            Method::PUT,
            format!("/api/v1/agents/{}/password", "01a20768-0000-7000-8000-000000000000"),
            Some(json!({"password": "password-123456"})),
            [No(403), No(403), No(403), No(404), No(401)],
        ),
        (
            Method::PUT,
            "/api/v1/auth/me/password".into(),
            Some(json!({"current_password": "not-the-password", "new_password": "password-123456"})),
            [No(422), No(422), No(422), No(403), No(401)],
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, expected) in &rows {
        for ((who, caller), expect) in callers.iter().zip(expected) {
            let got = caller.call(&app, method.clone(), path, body.as_ref()).await;
            if !matches(*expect, got) {
                failures.push(format!("{who}: {method} {path} gave {got}, expected {expect:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "the matrix does not hold:\n{}",
        failures.join("\n")
    );

    // Lists show only what the caller may see.
    let [(_, agent_a), (_, agent_b), ..] = &callers;
    let (Caller::Session(agent_a), Caller::Session(agent_b)) = (agent_a, agent_b) else {
        unreachable!()
    };
    let ids = |v: &Value, key: &str| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x[key].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&agent_a.get("/api/v1/inbox?status=any").await.1, "id"),
        vec![a.conversation.clone()]
    );
    assert_eq!(
        ids(&agent_a.get("/api/v1/conversations").await.1, "id"),
        vec![a.conversation.clone()]
    );
    assert_eq!(
        ids(&agent_a.get("/api/v1/channel-accounts").await.1, "id"),
        vec![a.account.clone()]
    );
    assert!(!ids(&agent_a.get("/api/v1/contacts?limit=200").await.1, "id").contains(&b.contact));
    assert!(ids(&agent_b.get("/api/v1/contacts?limit=200").await.1, "id").contains(&b.contact));
    assert_eq!(
        agent_a.get("/api/v1/search?q=bisonte").await.1["total"],
        0,
        "B's words are not found from A"
    );
    let (found, _) = app
        .search_until("q=bisonte", std::time::Duration::from_secs(5), |r| r["total"] == 1)
        .await;
    assert_eq!(found["total"], 1, "the index has it: {found}");
    assert_eq!(agent_b.get("/api/v1/search?q=bisonte").await.1["total"], 1);
    assert_eq!(agent_a.get("/api/v1/search?q=alpaca").await.1["total"], 1);

    // An agent is assigned only conversations of inboxes they work in.
    let (_, agents) = app.get("/api/v1/agents").await;
    let ana = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["email"] == "ana@example.com")
        .unwrap()["id"]
        .clone();
    let (status, error) = app
        .post(
            &format!("/api/v1/conversations/{}/assign", b.conversation),
            json!({"assignee_id": ana}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["field"], "assignee_id");

    // The agent socket carries only the agent's own inboxes: B's new message never reaches A.
    let cookie = app.session_cookie("ana@example.com", "matrix-password-1").await;
    let mut socket = app.agent_socket(&cookie, None).await.unwrap();
    let hello = socket.next().await.unwrap().unwrap().into_text().unwrap();
    assert!(hello.contains("hello"));
    for (account, id) in [(&b.account, "sur-2"), (&a.account, "norte-2")] {
        let (status, _) = app
            .push(json!({"channel_account_id": account, "external_id": id, "contact": {"email": "nuevo@example.com"}, "text": id}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let first = loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(5), socket.next())
            .await
            .expect("an event arrives")
            .unwrap()
            .unwrap();
        let event: Value = serde_json::from_str(&message.into_text().unwrap()).unwrap();
        if event["type"] == "interaction_created" {
            break event;
        }
    };
    assert_eq!(
        first["interaction"]["text"], "norte-2",
        "the first new message A hears of is A's own"
    );
}

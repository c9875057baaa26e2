//! Response-time metrics, business hours, SLA breaches and reports, on a hub whose clock the
//! test moves: every figure is checked at exact instants against values worked out here.

use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;
use crate::on_both_stores;

on_both_stores!(
    first_response_ignores_notes_and_automated_messages_and_restarts_at_a_reopen,
    business_hours_skip_the_weekend_and_a_holiday_and_a_breach_fires_once_to_supervisors,
    the_report_equals_figures_computed_independently_and_only_supervisors_read_it,
    bad_policies_calendars_and_periods_are_refused,
);

fn rfc(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

async fn report(app: &TestApp, from: OffsetDateTime, to: OffsetDateTime, group_by: &str) -> Value {
    let (status, body) = app
        .get(&format!(
            "/api/v1/reports/summary?from={}&to={}&group_by={group_by}",
            rfc(from),
            rfc(to)
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The report, once the metrics worker has caught up with `ready`.
async fn report_when(
    app: &TestApp,
    from: OffsetDateTime,
    to: OffsetDateTime,
    group_by: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let body = report(app, from, to, group_by).await;
        if ready(&body) {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the report never got there: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn row<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key || r["label"] == key)
        .unwrap_or_else(|| panic!("no row {key} in {report}"))
}

/// Recomputes every figure from the facts: `switchboard metrics rebuild`, the real binary, on
/// the hub's database while the hub runs.
async fn rebuild(app: &TestApp) -> u64 {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["metrics", "rebuild"])
        .env("SWITCHBOARD__DATABASE__URL", app.settings.database.url())
        .env("SWITCHBOARD__INDEX__PATH", app.dir.path().join("cli-index"))
        .env("SWITCHBOARD__LOG__LEVEL", "warn")
        .output()
        .await
        .expect("the switchboard binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no count in {stdout:?}"))
}

async fn first_response_ignores_notes_and_automated_messages_and_restarts_at_a_reopen(backend: Backend) {
    let t0 = datetime!(2026-11-23 10:00 UTC);
    let minutes = |m: i64| t0 + time::Duration::minutes(m);
    let app = spawn_app_at(backend, t0).await;
    let web = app.api_account("web").await;
    let push = async |n: u32, at: OffsetDateTime, direction: &str| {
        let (status, body) = app
            .push(json!({"channel_account_id": web, "external_id": format!("m-{n}"), "direction": direction,
                "contact": {"email": "ana@example.com", "name": "Ana"}, "occurred_at": rfc(at), "text": format!("mensaje {n}")}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["interaction"]["conversation_id"].as_str().unwrap().to_owned()
    };
    let conversation = push(1, t0, "inbound").await;
    let at = |path: &str| format!("/api/v1/conversations/{conversation}/{path}");

    // A note, and a message a bot sent through the API: neither is a response.
    app.clock.set(minutes(1));
    assert_eq!(
        app.post(&at("notes"), json!({"text": "lo miro"})).await.0,
        StatusCode::CREATED
    );
    push(2, minutes(2), "outbound").await;
    app.clock.set(minutes(5));
    assert_eq!(
        app.post(&at("replies"), json!({"text": "hola"})).await.0,
        StatusCode::CREATED
    );
    app.clock.set(minutes(10));
    app.post(&at("status"), json!({"status": "resolved"})).await;
    // Ana writes again: the conversation reopens and its first response is measured afresh.
    assert_eq!(
        push(3, minutes(60), "inbound").await,
        conversation,
        "the same conversation, reopened"
    );
    app.clock.set(minutes(64));
    app.post(&at("replies"), json!({"text": "dime"})).await;

    let (from, to) = (t0 - time::Duration::hours(1), t0 + time::Duration::days(1));
    let live = report_when(&app, from, to, "channel", |r| {
        r["rows"][0]["first_response"]["count"] == 2 && r["rows"][0]["resolution"]["count"] == 1
    })
    .await;
    let api = row(&live, "api");
    assert_eq!(api["volume"], 2, "opened, then reopened");
    assert_eq!(
        api["first_response"]["p50_s"], 240,
        "the reopening's first response, 4 minutes"
    );
    assert_eq!(
        api["first_response"]["p90_s"], 300,
        "the first one: 5 minutes, not 1 (the note) or 2 (the bot)"
    );
    assert_eq!(api["resolution"]["p50_s"], 600);

    assert!(rebuild(&app).await >= 1);
    assert_eq!(
        report(&app, from, to, "channel").await,
        live,
        "a rebuild gives the live figures"
    );

    let prometheus = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        prometheus
            .lines()
            .any(|l| l.starts_with("switchboard_response_seconds_count")
                && l.contains("metric=\"first_response\"")
                && l.contains("channel=\"api\"")),
        "response times are exported as a histogram per channel"
    );
}

/// Frames of `kind` that arrive on a socket within `within`.
async fn frames_of(socket: &mut Socket, kind: &str, within: Duration) -> Vec<Value> {
    let mut found = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, socket.next()).await {
        if let Message::Text(text) = message {
            let event: Value = serde_json::from_str(&text).unwrap();
            if event["type"] == kind {
                found.push(event);
            }
        }
    }
    found
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn agent(app: &TestApp, email: &str, name: &str, role: &str) -> String {
    let (status, body) = app
        .post(
            "/api/v1/agents",
            json!({"email": email, "name": name, "role": role, "password": "agent-password-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    app.member_of_all(&id).await;
    id
}

async fn socket_of(app: &TestApp, email: &str) -> Socket {
    let cookie = app.session_cookie(email, "agent-password-1").await;
    let mut socket = app.agent_socket(&cookie, None).await.unwrap();
    let hello = socket.next().await.unwrap().unwrap().into_text().unwrap();
    assert!(hello.contains("hello"), "{hello}");
    socket
}

async fn business_hours_skip_the_weekend_and_a_holiday_and_a_breach_fires_once_to_supervisors(backend: Backend) {
    // Friday 27 November 2026, 17:30 in Madrid.
    let friday = datetime!(2026-11-27 16:30 UTC);
    let mut app = spawn_app_at(backend, friday).await;
    let web = app.api_account("web").await;
    let weekday = json!([["09:00", "18:00"]]);
    let (status, calendar) = app
        .post(
            "/api/v1/calendars",
            json!({"name": "Madrid", "time_zone": "Europe/Madrid",
            "hours": {"mon": weekday, "tue": weekday, "wed": weekday, "thu": weekday, "fri": weekday},
            "holidays": ["2026-11-30"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{calendar}");
    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/channel-accounts/{web}/calendar"),
            Some(json!({"calendar_id": calendar["id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, policy) = app
        .post(
            "/api/v1/sla-policies",
            json!({"name": "web 1h", "channel_account_id": web, "first_response_s": 3600, "business_hours": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{policy}");
    agent(&app, "sara@example.com", "Sara", "supervisor").await;
    agent(&app, "tomas@example.com", "Tomás", "agent").await;
    let mut supervisor = socket_of(&app, "sara@example.com").await;
    let mut plain_agent = socket_of(&app, "tomas@example.com").await;

    let (_, pushed) = app
        .push(
            json!({"channel_account_id": web, "external_id": "fri-1", "contact": {"email": "luis@example.com"},
            "occurred_at": rfc(friday), "text": "¿Me ayudáis?"}),
        )
        .await;
    let conversation = pushed["interaction"]["conversation_id"].as_str().unwrap().to_owned();
    // Half an hour on Friday; Monday 30 is a holiday; the other half hour on Tuesday from 09:00.
    let due = "2026-12-01T08:30:00Z";
    let started = Instant::now();
    loop {
        let (_, thread) = app.get(&format!("/api/v1/conversations/{conversation}")).await;
        if thread["conversation"]["sla_due_at"] == due {
            assert_eq!(thread["conversation"]["sla_target"], "first_response");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no deadline: {thread}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dashboards = frames_of(&mut supervisor, "dashboard", Duration::from_millis(800)).await;
    let last = dashboards.last().expect("supervisors get the dashboard pushed");
    let inbox = last["snapshot"]["inboxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["channel_account_id"] == web)
        .unwrap();
    assert_eq!((inbox["open"].as_i64(), inbox["waiting"].as_i64()), (Some(1), Some(1)));

    app.clock.set(datetime!(2026-12-01 08:29:59 UTC));
    assert!(
        frames_of(&mut supervisor, "sla_breached", Duration::from_millis(800))
            .await
            .is_empty(),
        "one second early is not a breach"
    );
    app.clock.set(datetime!(2026-12-01 08:30:01 UTC));
    let breaches = frames_of(&mut supervisor, "sla_breached", Duration::from_millis(1500)).await;
    assert_eq!(breaches.len(), 1, "{breaches:?}");
    assert_eq!(breaches[0]["conversation_id"], conversation.as_str());
    assert_eq!(breaches[0]["target"], "first_response");
    assert_eq!(breaches[0]["due_at"], due);
    assert!(
        frames_of(&mut plain_agent, "dashboard", Duration::from_millis(300))
            .await
            .is_empty(),
        "the dashboard goes to supervisors only"
    );
    let (_, inbox) = app.get("/api/v1/inbox").await;
    assert_eq!(inbox[0]["sla_breached"], true);

    // A restart finds the breach recorded and does not fire it again.
    app.restart().await;
    let mut supervisor = socket_of(&app, "sara@example.com").await;
    assert!(
        frames_of(&mut supervisor, "sla_breached", Duration::from_millis(1200))
            .await
            .is_empty()
    );

    // Answered on Tuesday at 09:45 Madrid: 30 + 45 business minutes, 3 days 16 h 15 min on the wall.
    app.clock.set(datetime!(2026-12-01 08:45 UTC));
    app.post(
        &format!("/api/v1/conversations/{conversation}/replies"),
        json!({"text": "Claro"}),
    )
    .await;
    let (from, to) = (friday - time::Duration::days(1), friday + time::Duration::days(10));
    let report = report_when(&app, from, to, "inbox", |r| {
        r["rows"][0]["first_response"]["count"] == 1
    })
    .await;
    let web_row = row(&report, &web);
    assert_eq!(web_row["label"], "web");
    assert_eq!(web_row["first_response"]["business_p50_s"], 75 * 60);
    assert_eq!(web_row["first_response"]["p50_s"], ((3 * 24 + 16) * 60 + 15) * 60);
    assert_eq!(
        (web_row["sla_targets"].as_i64(), web_row["sla_met"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(web_row["sla_attainment"], 0.0);
}

async fn the_report_equals_figures_computed_independently_and_only_supervisors_read_it(backend: Backend) {
    let base = datetime!(2026-11-02 08:00 UTC);
    let app = spawn_app_at(backend, base).await;
    let inboxes = [app.api_account("norte").await, app.api_account("sur").await];
    let agents = [
        (
            agent(&app, "ana@example.com", "Ana", "agent").await,
            app.login("ana@example.com", "agent-password-1").await,
        ),
        (
            agent(&app, "beto@example.com", "Beto", "agent").await,
            app.login("beto@example.com", "agent-password-1").await,
        ),
    ];
    // 24 customers, each answered by one agent after a different delay; three in four resolved.
    struct Expected {
        inbox: usize,
        agent: usize,
        first: i64,
        resolution: Option<i64>,
    }
    let mut expected = Vec::new();
    for i in 0..24usize {
        let asked = base + time::Duration::hours(i as i64);
        let first = 60 * ((i as i64 * 37) % 50 + 1);
        let resolution = (i % 4 != 0).then(|| first + 600 + 30 * i as i64);
        let (inbox, who) = (i % 2, usize::from(i % 3 == 0));
        let (status, pushed) = app
            .push(
                json!({"channel_account_id": inboxes[inbox], "external_id": format!("q-{i}"),
                "contact": {"email": format!("cliente{i}@example.com")}, "occurred_at": rfc(asked), "text": "hola"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{pushed}");
        let conversation = pushed["interaction"]["conversation_id"].as_str().unwrap().to_owned();
        let (agent_id, session) = &agents[who];
        let path = |p: &str| format!("/api/v1/conversations/{conversation}/{p}");
        assert_eq!(
            session.post(&path("assign"), json!({"assignee_id": agent_id})).await.0,
            StatusCode::OK
        );
        app.clock.set(asked + time::Duration::seconds(first));
        assert_eq!(
            session.post(&path("replies"), json!({"text": "dime"})).await.0,
            StatusCode::CREATED
        );
        if let Some(resolution) = resolution {
            app.clock.set(asked + time::Duration::seconds(resolution));
            assert_eq!(
                session.post(&path("status"), json!({"status": "resolved"})).await.0,
                StatusCode::OK
            );
        }
        expected.push(Expected {
            inbox,
            agent: who,
            first,
            resolution,
        });
    }
    let percentile = |mut v: Vec<i64>, p: f64| -> Value {
        if v.is_empty() {
            return Value::Null;
        }
        v.sort();
        json!(v[((p / 100.0 * v.len() as f64).ceil() as usize).max(1) - 1])
    };
    // A call nobody answered counts as missed, in the voice inbox.
    let pbx = crate::calls::voice_account(&app).await;
    for (event, at) in [("ringing", base), ("hangup", base + time::Duration::seconds(30))] {
        let (status, body) = app
            .post(
                "/api/v1/calls/events",
                json!({"channel_account_id": pbx, "call_id": "missed-1", "event": event,
                "at": rfc(at), "from": "+34600999888", "to": "1001"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (from, to) = (base, base + time::Duration::days(3));
    let by_inbox = report_when(&app, from, to, "inbox", |r| {
        r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["key"] == pbx.as_str() && r["missed_calls"] == 1)
    })
    .await;
    assert_eq!(
        row(&by_inbox, &pbx)["volume"],
        1,
        "the missed call waits for a call back"
    );
    assert_eq!(row(&by_inbox, &inboxes[0])["missed_calls"], 0);
    for (group_by, keys, of) in [
        (
            "inbox",
            inboxes.to_vec(),
            (|e: &Expected| e.inbox) as fn(&Expected) -> usize,
        ),
        (
            "agent",
            agents.iter().map(|(id, _)| id.clone()).collect(),
            |e: &Expected| e.agent,
        ),
    ] {
        // Every conversation's figures are in: each has its first response, 18 are resolved.
        let live = report_when(&app, from, to, group_by, |r| {
            let sum = |metric: &str| {
                r["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r[metric]["count"].as_u64().unwrap_or(0))
                    .sum::<u64>()
            };
            sum("resolution") == 18 && sum("first_response") == expected.len() as u64
        })
        .await;
        for (n, key) in keys.iter().enumerate() {
            let mine: Vec<&Expected> = expected.iter().filter(|e| of(e) == n).collect();
            let firsts: Vec<i64> = mine.iter().map(|e| e.first).collect();
            let resolutions: Vec<i64> = mine.iter().filter_map(|e| e.resolution).collect();
            let got = row(&live, key);
            assert_eq!(got["volume"], mine.len(), "{group_by} {key}");
            assert_eq!(got["first_response"]["count"], firsts.len());
            assert_eq!(
                got["first_response"]["p50_s"],
                percentile(firsts.clone(), 50.0),
                "{group_by} {key}"
            );
            assert_eq!(
                got["first_response"]["p90_s"],
                percentile(firsts.clone(), 90.0),
                "{group_by} {key}"
            );
            assert_eq!(
                got["first_response"]["business_p90_s"],
                percentile(firsts, 90.0),
                "no calendar: every hour counts"
            );
            assert_eq!(got["resolution"]["count"], resolutions.len());
            assert_eq!(
                got["resolution"]["p50_s"],
                percentile(resolutions.clone(), 50.0),
                "{group_by} {key}"
            );
            assert_eq!(
                got["resolution"]["p90_s"],
                percentile(resolutions, 90.0),
                "{group_by} {key}"
            );
        }
        assert!(rebuild(&app).await >= 24);
        assert_eq!(
            report(&app, from, to, group_by).await,
            live,
            "a rebuild gives the live figures"
        );
    }

    // The same figures as CSV.
    let csv = app
        .http
        .get(format!(
            "{}/api/v1/reports/summary?from={}&to={}&group_by=agent&format=csv",
            app.base,
            rfc(from),
            rfc(to)
        ))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("agent,key,volume,first_response_count,first_response_p50_s"),
        "{csv}"
    );
    let json = report(&app, from, to, "agent").await;
    let ana = row(&json, "Ana");
    let ana_line = lines.iter().find(|l| l.starts_with("Ana,")).expect("Ana's line");
    let cells: Vec<&str> = ana_line.split(',').collect();
    assert_eq!(cells[2], ana["volume"].to_string());
    assert_eq!(cells[4], ana["first_response"]["p50_s"].to_string());

    // Agents do not read supervisor endpoints; supervisors do.
    let (_, agent_session) = &agents[0];
    for path in [
        format!(
            "/api/v1/reports/summary?from={}&to={}&group_by=agent",
            rfc(from),
            rfc(to)
        ),
        "/api/v1/dashboard".into(),
        "/api/v1/calendars".into(),
        "/api/v1/sla-policies".into(),
    ] {
        assert_eq!(agent_session.get(&path).await.0, StatusCode::FORBIDDEN, "{path}");
    }
    let (status, _) = agent_session
        .post("/api/v1/sla-policies", json!({"name": "mine", "first_response_s": 60}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    agent(&app, "sara@example.com", "Sara", "supervisor").await;
    let supervisor = app.login("sara@example.com", "agent-password-1").await;
    assert_eq!(supervisor.get("/api/v1/dashboard").await.0, StatusCode::OK);
}

async fn bad_policies_calendars_and_periods_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let web = app.api_account("web").await;
    let refused = async |path: &str, body: Value, field: &str| {
        let (status, error) = app.post(path, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        assert_eq!(error["error"]["field"], field, "{error}");
    };
    refused(
        "/api/v1/calendars",
        json!({"name": "x", "time_zone": "Mars/Olympus", "hours": {"mon": [["09:00", "17:00"]]}}),
        "time_zone",
    )
    .await;
    refused(
        "/api/v1/calendars",
        json!({"name": "x", "time_zone": "UTC", "hours": {"mon": [["17:00", "09:00"]]}}),
        "hours.mon[0]",
    )
    .await;
    refused("/api/v1/sla-policies", json!({"name": "empty"}), "first_response_s").await;
    refused(
        "/api/v1/sla-policies",
        json!({"name": "neg", "first_response_s": -5}),
        "first_response_s",
    )
    .await;
    refused(
        "/api/v1/sla-policies",
        json!({"name": "ghost", "channel_account_id": "01a20768-0000-7000-8000-000000000000", "first_response_s": 60}),
        "channel_account_id",
    )
    .await;
    let policy = json!({"name": "web", "channel_account_id": web, "first_response_s": 60});
    assert_eq!(
        app.post("/api/v1/sla-policies", policy.clone()).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        app.post("/api/v1/sla-policies", policy).await.0,
        StatusCode::CONFLICT,
        "one policy per scope"
    );
    let (_, policies) = app.get("/api/v1/sla-policies").await;
    assert_eq!(policies.as_array().unwrap().len(), 1);
    let (status, error) = app
        .get("/api/v1/reports/summary?from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z&group_by=inbox")
        .await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("to"))
    );
    let (status, _) = app
        .get("/api/v1/reports/summary?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&group_by=planet")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// On PostgreSQL the metrics worker writes only the conversations no other transaction holds:
/// an ingest transaction holding one conversation neither blocks the rest of the batch nor
/// deadlocks with it, and the held conversation is caught up in a later round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recomputing_skips_a_conversation_another_transaction_holds_instead_of_waiting() {
    let mut app = spawn_app(Backend::Postgres).await;
    let crm = app.api_account("crm").await;
    let mut conversations = Vec::new();
    for (n, email) in ["held@example.es", "free@example.es"].iter().enumerate() {
        let (status, pushed) = app
            .push(json!({"channel_account_id": crm, "external_id": format!("m-{n}"), "contact": {"email": email}, "text": "hola"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{pushed}");
        conversations.push(pushed["interaction"]["conversation_id"].as_str().unwrap().to_owned());
    }
    app.stop().await;
    let url = app.settings.database.url().to_owned();
    let store = switchboard::store::Store::connect(&url, 4).await.unwrap();
    store.mark_metrics_stale(false).await.unwrap();

    // Another writer holds the first conversation's row, as an ingest batch does until commit.
    let mut other = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let mut holding = sqlx::Connection::begin(&mut other).await.unwrap();
    sqlx::query("SELECT id FROM conversations WHERE id = $1 FOR UPDATE")
        .bind(&conversations[0])
        .fetch_one(&mut *holding)
        .await
        .unwrap();
    let looked_at = tokio::time::timeout(Duration::from_secs(5), switchboard::metrics::catch_up(&store))
        .await
        .expect("the recomputation does not wait for the held row")
        .unwrap();
    assert_eq!(looked_at, 2);
    let behind: Vec<String> = store
        .conversations_behind(10)
        .await
        .unwrap()
        .iter()
        .map(|id| id.to_string())
        .collect();
    assert_eq!(
        behind,
        [conversations[0].clone()],
        "only the held one is left for later"
    );

    holding.rollback().await.unwrap();
    switchboard::metrics::catch_up(&store).await.unwrap();
    assert!(store.conversations_behind(10).await.unwrap().is_empty());
}

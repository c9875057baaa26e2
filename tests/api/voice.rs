//! Phone-call logs: Asterisk Master.csv import and following, FreeSWITCH JSON CDRs, Twilio call
//! status callbacks; calls land in the caller's timeline, linked to the agent who answered.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_connectors::sms::twilio;

use crate::helpers::*;
use crate::on_both_stores;

on_both_stores!(
    a_master_csv_imports_into_the_right_timelines_and_importing_it_again_adds_nothing,
    a_followed_cdr_file_ingests_only_new_lines_across_a_restart_and_a_rotation,
    freeswitch_cdrs_in_every_encoding_land_as_calls_once,
    twilio_call_callbacks_land_as_calls_once_and_progress_reports_store_nothing,
);

/// A CDR line as Asterisk's cdr_csv writes it (18 columns: with uniqueid and userfield);
/// `times` are (start, answer, end) with an empty answer for an unanswered call, `secs` are
/// (duration, billsec).
pub(crate) fn cdr(
    src: &str,
    dst: &str,
    clid: &str,
    times: (&str, &str, &str),
    secs: (u32, u32),
    disposition: &str,
    uniqueid: &str,
) -> String {
    let (start, answer, end) = times;
    let answer = if answer.is_empty() {
        String::new()
    } else {
        format!("\"{answer}\"")
    };
    format!(
        "\"\",\"{src}\",\"{dst}\",\"from-pstn\",\"{}\",\"PJSIP/trunk-0001\",\"PJSIP/{dst}-0002\",\"Dial\",\"PJSIP/{dst},30,tT\",\"{start}\",{answer},\"{end}\",{},{},\"{disposition}\",\"DOCUMENTATION\",\"{uniqueid}\",\"\"\n",
        clid.replace('"', "\"\""),
        secs.0,
        secs.1
    )
}

pub(crate) async fn voice_account(app: &TestApp, settings: Value) -> (String, String) {
    let (status, account) = app
        .post(
            "/api/v1/channel-accounts",
            json!({"kind": "voice", "name": "pbx", "settings": settings}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    (
        account["id"].as_str().unwrap().to_owned(),
        account["secret"].as_str().unwrap().to_owned(),
    )
}

fn config_for(app: &TestApp) -> std::path::PathBuf {
    let path = app.dir.path().join("cli.toml");
    let url = secrecy::ExposeSecret::expose_secret(&app.settings.database.url).to_owned();
    std::fs::write(
        &path,
        format!("[database]\nurl = {url:?}\n[contacts]\ndefault_region = \"ES\"\n"),
    )
    .unwrap();
    path
}

async fn calls_of(app: &TestApp, phone: &str) -> Vec<Value> {
    let (status, found) = app.get(&format!("/api/v1/contacts/lookup?phone={phone}")).await;
    if status == StatusCode::NOT_FOUND {
        return vec![];
    }
    assert_eq!(status, StatusCode::OK, "{found}");
    found["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["channel"] == "voice")
        .cloned()
        .collect()
}

async fn wait_for_calls(app: &TestApp, phone: &str, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let calls = calls_of(app, phone).await;
        if calls.len() >= count || started.elapsed() > Duration::from_secs(10) {
            return calls;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A time as cdr_csv writes it.
pub(crate) fn cdr_time(t: time::PrimitiveDateTime) -> String {
    t.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .unwrap()
}

/// Runs `switchboard import asterisk-cdr` on `file`, which must succeed; its stdout and stderr.
pub(crate) fn import_cdr(app: &TestApp, account: &str, file: &std::path::Path) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "--config",
            config_for(app).to_str().unwrap(),
            "import",
            "asterisk-cdr",
            "--account",
            account,
            file.to_str().unwrap(),
        ])
        .output()
        .expect("the import command runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(output.status.success(), "{stderr}");
    (stdout, stderr)
}

async fn a_master_csv_imports_into_the_right_timelines_and_importing_it_again_adds_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, agent) = app
        .post("/api/v1/agents", json!({"email": "ext1001@example.com", "name": "Lola", "role": "agent", "password": "lola-password-1", "extension": "1001"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    let (account, _) = voice_account(&app, json!({"extension_max_digits": 4, "cdr_utc_offset": "+01:00"})).await;
    let file = app.dir.path().join("Master.csv");
    let mut content = String::new();
    content += &cdr(
        "600123456",
        "1001",
        "\"García, Ana\" <600123456>",
        ("2026-03-02 10:00:00", "2026-03-02 10:00:05", "2026-03-02 10:03:05"),
        (185, 180),
        "ANSWERED",
        "1772445600.1",
    );
    content += &cdr(
        "0034600123456",
        "1001",
        "\"\" <0034600123456>",
        ("2026-03-03 18:00:00", "", "2026-03-03 18:00:30"),
        (30, 0),
        "NO ANSWER",
        "1772557200.2",
    );
    content += &cdr(
        "1001",
        "611222333",
        "\"Lola\" <1001>",
        ("2026-03-04 09:00:00", "", "2026-03-04 09:00:10"),
        (10, 0),
        "BUSY",
        "1772611200.3",
    );
    content += &cdr(
        "1001",
        "1002",
        "\"Lola\" <1001>",
        ("2026-03-04 09:05:00", "2026-03-04 09:05:01", "2026-03-04 09:06:00"),
        (60, 59),
        "ANSWERED",
        "1772611500.4",
    );
    content += "\"\",\"600123456\",\"1001\",\"from-pstn\",\"\"\"Ana\"\" <600"; // truncated by a crash mid-write
    std::fs::write(&file, &content).unwrap();

    let (stdout, stderr) = import_cdr(&app, &account, &file);
    let (second, _) = import_cdr(&app, &account, &file);

    assert!(
        stdout.contains("5 lines")
            && stdout.contains("3 imported, 0 already there, 1 skipped (internal calls), 1 errors"),
        "{stdout}"
    );
    assert!(
        stderr.contains("line 5: expected 16 to 21 columns, found 5"),
        "{stderr}"
    );
    assert!(second.contains("0 imported, 3 already there"), "{second}");

    let ana = wait_for_calls(&app, "600123456", 2).await;
    assert_eq!(ana.len(), 2, "{ana:?}");
    let (missed, answered) = (&ana[0], &ana[1]);
    assert_eq!(answered["details"]["disposition"], "answered");
    assert_eq!(
        answered["author_agent_id"], agent["id"],
        "linked to the agent at extension 1001"
    );
    assert_eq!(
        answered["occurred_at"], "2026-03-02T09:00:00Z",
        "CDR times are read at the configured offset"
    );
    assert_eq!(answered["details"]["talk_s"], 180);
    assert_eq!(missed["details"]["disposition"], "missed");
    let (_, conversation) = app
        .get(&format!(
            "/api/v1/conversations/{}",
            missed["conversation_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        conversation["conversation"]["status"], "open",
        "a missed call waits for a call back"
    );
    let (_, contact) = app
        .get(&format!(
            "/api/v1/contacts/{}",
            answered["contact_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(contact["name"], "García, Ana");
    let busy = wait_for_calls(&app, "611222333", 1).await;
    assert_eq!(busy[0]["direction"], "outbound");
    assert_eq!(busy[0]["details"]["disposition"], "busy");
}

/// An import longer than one part (2,000 lines) is written part by part while the next is
/// parsed: every line lands once, each damaged line is reported with its own number, and each
/// caller's calls keep their order.
#[tokio::test]
async fn a_long_master_csv_imports_every_line_once_and_reports_errors_by_their_line() {
    const LINES: usize = 4_700;
    const CALLERS: usize = 40;
    let app = spawn_app(Backend::Sqlite).await;
    let (account, _) = voice_account(&app, json!({"extension_max_digits": 4})).await;
    let start = time::macros::datetime!(2026-03-01 00:00:00);
    let mut content = String::new();
    for i in 0..LINES {
        let line_no = i + 1;
        let at = start + time::Duration::minutes(i as i64);
        let end = cdr_time(at + time::Duration::seconds(30));
        let line = match line_no {
            // Damaged lines in the second and third parts.
            2_345 => "\"\",\"600000001\",\"1001\",\"from-pstn\"\n".to_owned(),
            4_601 => cdr(
                "600000002",
                "1001",
                "",
                ("yesterday", "", &end),
                (30, 0),
                "NO ANSWER",
                "x.1",
            ),
            _ => {
                let caller = format!("6000000{:02}", i % CALLERS);
                let answered = i % 3 != 0;
                let (answer, secs, disposition) = match answered {
                    true => (cdr_time(at + time::Duration::seconds(2)), (30, 28), "ANSWERED"),
                    false => (String::new(), (30, 0), "NO ANSWER"),
                };
                cdr(
                    &caller,
                    "1001",
                    "",
                    (&cdr_time(at), &answer, &end),
                    secs,
                    disposition,
                    &format!("1772300000.{i}"),
                )
            }
        };
        content += &line;
    }
    let file = app.dir.path().join("Master.csv");
    std::fs::write(&file, &content).unwrap();

    let (first, errors) = import_cdr(&app, &account, &file);
    let (second, _) = import_cdr(&app, &account, &file);

    let stored = LINES - 2;
    assert!(
        first.contains(&format!("{LINES} lines")) && first.contains(&format!("{stored} imported, 0 already there")),
        "{first}"
    );
    let reported: Vec<&str> = errors.lines().filter(|l| l.contains("line ")).collect();
    assert_eq!(reported.len(), 2, "{errors}");
    assert!(
        reported[0].contains("line 2345: expected 16 to 21 columns, found 4"),
        "{errors}"
    );
    assert!(reported[1].contains("line 4601: column start"), "{errors}");
    assert!(
        second.contains(&format!("0 imported, {stored} already there")),
        "{second}"
    );
    let (_, ready) = app.get("/readyz").await;
    assert_eq!(ready["store_seq"], stored, "each line written once, none twice");

    // One caller's calls: every line of theirs, newest first, one minute apart per 40 lines.
    let (status, found) = app.get("/api/v1/contacts/lookup?phone=600000007").await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let contact = found["contact"]["id"].as_str().unwrap().to_owned();
    let (mut times, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let query = cursor.map(|c| format!("&cursor={c}")).unwrap_or_default();
        let (status, page) = app
            .get(&format!("/api/v1/contacts/{contact}/timeline?limit=50{query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().unwrap() {
            times.push(item["occurred_at"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..LINES)
        .filter(|i| i % CALLERS == 7 && ![2_344, 4_600].contains(i))
        .rev()
        .map(|i| {
            (start + time::Duration::minutes(i as i64))
                .assume_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        })
        .collect();
    assert_eq!(times, expected);
}

async fn a_followed_cdr_file_ingests_only_new_lines_across_a_restart_and_a_rotation(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let file = app.dir.path().join("Master.csv");
    let line = |n: u32| {
        cdr(
            "600123456",
            "1001",
            "\"\" <600123456>",
            (&format!("2026-03-0{n} 10:00:00"), "", &format!("2026-03-0{n} 10:00:20")),
            (20, 0),
            "NO ANSWER",
            &format!("17724456{n}0.{n}"),
        )
    };
    let append = |path: &std::path::Path, text: String| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap()
    };
    append(&file, line(1));
    voice_account(&app, json!({"asterisk_cdr_file": file})).await;
    assert_eq!(wait_for_calls(&app, "600123456", 1).await.len(), 1);

    append(&file, line(2));
    append(&file, line(3)[..40].to_owned()); // half a line: the PBX is still writing it
    assert_eq!(wait_for_calls(&app, "600123456", 2).await.len(), 2);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(calls_of(&app, "600123456").await.len(), 2, "a half-written line waits");

    app.stop().await;
    append(&file, line(3)[40..].to_owned());
    app.start().await;
    assert_eq!(
        wait_for_calls(&app, "600123456", 3).await.len(),
        3,
        "the line finished while the hub was down"
    );

    append(&file, line(4));
    std::fs::rename(&file, app.dir.path().join("Master.csv.1")).unwrap();
    append(&file, line(5));
    let calls = wait_for_calls(&app, "600123456", 5).await;
    assert_eq!(calls.len(), 5, "the rest of the rotated file and the new file");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut ids: Vec<&str> = calls.iter().map(|c| c["external_id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 5, "no line twice");
    assert_eq!(calls_of(&app, "600123456").await.len(), 5);
}

async fn freeswitch_cdrs_in_every_encoding_land_as_calls_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let (account, secret) = voice_account(&app, json!({})).await;
    let url = format!("{}/webhooks/voice/{account}/freeswitch", app.base);
    let doc = |uuid: &str| {
        json!({"core-uuid": "c", "variables": {"uuid": uuid, "start_epoch": "1772445600", "answer_epoch": "1772445605", "end_epoch": "1772445700",
               "duration": "100", "billsec": "95", "hangup_cause": "NORMAL_CLEARING"},
               "callflow": [{"profile_index": "1", "caller_profile": {"caller_id_number": "+34 600 12 34 56", "destination_number": "1001"}}]})
        .to_string()
    };
    let post = |content_type: &'static str, body: String, password: &str| {
        app.http
            .post(format!("{url}?uuid=x"))
            .basic_auth("freeswitch", Some(password))
            .header("content-type", content_type)
            .header("user-agent", "freeswitch-json/1.0")
            .body(body)
            .send()
    };
    let form = |json: String| {
        format!(
            "cdr={}",
            form_urlencoded::byte_serialize(json.as_bytes()).collect::<String>()
        )
    };
    let base64 = |json: String| format!("cdr={}", base64::engine::general_purpose::STANDARD.encode(json));

    let raw = post("application/json", doc("u-1"), &secret).await.unwrap();
    let retried = post("application/json", doc("u-1"), &secret).await.unwrap();
    let encoded = post("application/x-www-form-urlencoded", form(doc("u-2")), &secret)
        .await
        .unwrap();
    let b64 = post("application/x-www-form-base64-encoded", base64(doc("u-3")), &secret)
        .await
        .unwrap();
    let unauthorised = post("application/json", doc("u-4"), "wrong").await.unwrap();
    let broken = post("application/json", "{\"variables\": {}}".into(), &secret)
        .await
        .unwrap();

    assert_eq!(raw.status(), StatusCode::OK);
    assert_eq!(retried.json::<Value>().await.unwrap()["duplicate"], true);
    assert_eq!(encoded.status(), StatusCode::OK);
    assert_eq!(b64.status(), StatusCode::OK);
    assert_eq!(unauthorised.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(broken.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(broken.text().await.unwrap().contains("variables.uuid is missing"));
    let calls = wait_for_calls(&app, "600123456", 3).await;
    assert_eq!(calls.len(), 3, "u-1 once, u-2 and u-3; not u-4");
    assert!(
        calls
            .iter()
            .all(|c| c["details"]["disposition"] == "answered" && c["details"]["source"] == "freeswitch")
    );
}

async fn twilio_call_callbacks_land_as_calls_once_and_progress_reports_store_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.server.public_url = "https://hub.example.com".into()).await;
    let (status, account) = app
        .post(
            "/api/v1/channel-accounts",
            json!({"kind": "voice", "name": "twilio voice", "secret": "twilio-voice-token"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let path = format!("/webhooks/voice/{}/twilio", account["id"].as_str().unwrap());
    let send = |params: Vec<(String, String)>, token: &'static str| {
        let signature = twilio::signature(token, &format!("https://hub.example.com{path}"), &params);
        app.http
            .post(format!("{}{path}", app.base))
            .header(twilio::SIGNATURE_HEADER, signature)
            .form(&params)
            .send()
    };
    let params = |status: &str| -> Vec<(String, String)> {
        [
            ("CallSid", "CA42"),
            ("CallStatus", status),
            ("Direction", "inbound"),
            ("From", "+34600123456"),
            ("To", "+34910000000"),
            ("CallDuration", "61"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };

    let ringing = send(params("ringing"), "twilio-voice-token").await.unwrap();
    let completed = send(params("completed"), "twilio-voice-token").await.unwrap();
    let repeated = send(params("completed"), "twilio-voice-token").await.unwrap();
    let forged = send(params("completed"), "not-the-token").await.unwrap();

    assert_eq!(ringing.status(), StatusCode::NO_CONTENT);
    assert_eq!(completed.status(), StatusCode::OK);
    assert_eq!(repeated.json::<Value>().await.unwrap()["duplicate"], true);
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let calls = wait_for_calls(&app, "600123456", 1).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["external_id"], "twilio:CA42");
    assert_eq!(calls[0]["details"]["talk_s"], 61);
}

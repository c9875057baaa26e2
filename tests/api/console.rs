//! The agent console in a real headless Chromium, against a real hub whose channels talk to
//! real servers (dovecot and an SMTP relay for email, a Twilio-format provider for SMS, the chat
//! socket for web chat). One customer writes on three channels; agents work the conversations
//! in the browser only, and every effect is checked where it lands.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::chat::{chat_account, connect, next_of, send, session};
use crate::chromium::Chromium;
use crate::email::{MailServers, email_account};
use crate::fake_twilio::{AUTH_TOKEN, FakeTwilio};
use crate::helpers::*;
use crate::sms::{PUBLIC_URL, inbound, twilio_account, twilio_post};

const LUCIA: (&str, &str) = ("lucia@switchboard.test", "lucia-password-1");
const BEA: (&str, &str) = ("bea@switchboard.test", "bea-password-1");

/// An agent working in every inbox made so far.
/// A 1×1 PNG, base64: the inline image of Ana's mail.
const STAMP_PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

async fn agent(app: &TestApp, (email, password): (&str, &str), name: &str, extension: &str) {
    let (status, body) = app
        .post(
            "/api/v1/agents",
            json!({"email": email, "name": name, "role": "agent", "password": password, "extension": extension}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.member_of_all(body["id"].as_str().unwrap()).await;
}

/// Polls `probe` until it returns something, for effects outside the browser.
async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn conversation_of(app: &TestApp, name: &str, channel: &str) -> String {
    let (_, inbox) = app.get(&format!("/api/v1/inbox?channel={channel}&status=any")).await;
    inbox
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["contact_name"] == name)
        .and_then(|c| c["id"].as_str())
        .unwrap_or_else(|| panic!("{name} has no {channel} conversation: {inbox}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_customer_on_three_channels_is_answered_from_one_inbox_in_a_real_browser() {
    let servers = MailServers::from_env();
    let twilio = FakeTwilio::start().await;
    let app = spawn_app_with(Backend::Sqlite, |s| s.server.public_url = PUBLIC_URL.into()).await;
    let sms = twilio_account(&app, &twilio.base_url, json!({})).await;
    let (mailbox, mail_password) = servers.user("console");
    email_account(&app, &servers, &mailbox, &mail_password).await;
    let chat = chat_account(&app, json!({})).await;
    let voice = crate::calls::voice_account(&app).await;
    agent(&app, LUCIA, "Lucia", "201").await;
    agent(&app, BEA, "Bea", "202").await;
    let (status, _) = app
        .post(
            "/api/v1/contacts",
            json!({"name": "Ana Pérez", "handles": [
            {"kind": "phone", "value": "+34 600 111 222"}, {"kind": "email", "value": "ana@cliente.test"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let mut browser = Chromium::start("console").await;
    browser.log_in("lucia", &app.base, LUCIA.0, LUCIA.1).await;
    browser
        .wait_text("lucia", ".conversations", "No conversations here.")
        .await;

    // Ana writes by SMS, by email and in the chat; the inbox shows all three without a reload.
    let (status, _) = twilio_post(
        &app,
        &format!("/webhooks/sms/{sms}/twilio"),
        &inbound("SM-ana-1", "+34600111222", "Hola, ¿dónde está mi pedido?"),
        AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mailbox_address = format!("{mailbox}@example.test");
    servers
        .send(
            "ana@cliente.test",
            &mailbox_address,
            // HTML with an inline image (a `cid:` URL naming a part of the same mail).
            &format!(
                "From: Ana Pérez <ana@cliente.test>\r\nTo: {mailbox_address}\r\nSubject: Factura de marzo\r\n\
                 Message-ID: <factura-1@cliente.test>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/related; boundary=\"R\"\r\n\r\n\
                 --R\r\nContent-Type: multipart/alternative; boundary=\"A\"\r\n\r\n\
                 --A\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nNecesito la factura con el número de pedido 4471.\r\n\
                 --A\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
                 <p>Necesito la factura con el número de pedido 4471.</p><img src=\"cid:sello@cliente.test\" alt=\"sello\">\r\n\
                 --A--\r\n--R\r\nContent-Type: image/png\r\nContent-ID: <sello@cliente.test>\r\n\
                 Content-Disposition: inline; filename=sello.png\r\nContent-Transfer-Encoding: base64\r\n\r\n{STAMP_PNG}\r\n--R--\r\n"
            ),
        )
        .await;
    let (_, visitor) = session(&app, &chat, None).await;
    let mut visitor = connect(&app, &chat, visitor["token"].as_str().unwrap(), None)
        .await
        .unwrap();
    send(
        &mut visitor,
        json!({"type": "identify", "name": "Ana Pérez", "email": "ana@cliente.test"}),
    )
    .await;
    next_of(&mut visitor, "identified").await;
    send(
        &mut visitor,
        json!({"type": "message", "client_id": "c-1", "text": "¿Tenéis envío a Canarias?"}),
    )
    .await;
    next_of(&mut visitor, "ack").await;

    browser
        .run(
            "lucia",
            "waitCount",
            json!({"selector": ".conversations li[data-channel]", "count": 3, "timeout": 30000}),
        )
        .await;
    let mut channels: Vec<String> = serde_json::from_value(
        browser
            .run(
                "lucia",
                "attributes",
                json!({"selector": ".conversations li[data-channel]", "name": "data-channel"}),
            )
            .await,
    )
    .unwrap();
    channels.sort();
    assert_eq!(channels, ["chat", "email", "sms"]);
    let rows = browser.texts("lucia", ".conversations li .who").await;
    assert!(
        rows.iter().all(|r| r == "Ana Pérez"),
        "one customer on every row: {rows:?}"
    );

    // Each reply, written in the console, leaves on the channel the customer used.
    for (channel, reply) in [
        ("sms", "Tu pedido sale hoy."),
        ("email", "Adjuntamos la factura 4471."),
        ("chat", "Sí, enviamos a Canarias."),
    ] {
        browser
            .click("lucia", &format!(".conversations li[data-channel={channel}] a"))
            .await;
        // The view shows this conversation, not still the previous one (also Ana's).
        browser
            .run(
                "lucia",
                "waitCount",
                json!({"selector": format!(".messages li[data-channel={channel}][data-direction=inbound]"), "count": 1}),
            )
            .await;
        if channel == "email" {
            // The mail's inline image is shown in its sandboxed frame, as a data URL the
            // console made from the stored attachment: the frame itself cannot fetch it.
            let stamp = eventually("the inline image in the mail's frame", async || {
                let frames = browser
                    .run(
                        "lucia",
                        "attributes",
                        json!({"selector": "iframe.email-body", "name": "srcdoc"}),
                    )
                    .await;
                frames
                    .as_array()?
                    .iter()
                    .filter_map(Value::as_str)
                    .find(|html| html.contains("data:image/png;base64,"))
                    .map(str::to_owned)
            })
            .await;
            assert!(stamp.contains(&format!("data:image/png;base64,{STAMP_PNG}")), "{stamp}");
            assert!(!stamp.contains("cid:"), "{stamp}");
        }
        browser
            .run("lucia", "fill", json!({"selector": "#composer", "value": reply}))
            .await;
        browser
            .run("lucia", "click", json!({"role": "button", "name": "Send"}))
            .await;
        browser
            .wait_text("lucia", ".messages li[data-direction=outbound]", reply)
            .await;
    }
    let texted = eventually("the SMS reply reaching the provider", async || {
        twilio
            .sent()
            .into_iter()
            .find(|m| m.field("Body") == Some("Tu pedido sale hoy."))
    })
    .await;
    assert_eq!(texted.field("To"), Some("+34600111222"));
    let mailed = eventually("the email reply reaching the SMTP relay", async || {
        servers.relayed("Adjuntamos la factura 4471.").into_iter().next()
    })
    .await;
    assert!(mailed.contains("ana@cliente.test"), "{mailed}");
    assert!(
        mailed.contains("<factura-1@cliente.test>"),
        "threaded under Ana's mail: {mailed}"
    );
    loop {
        // The visitor's socket also carries their own message back; the reply follows it.
        let frame = next_of(&mut visitor, "message").await;
        if frame["direction"] == "outbound" {
            assert_eq!(frame["text"], "Sí, enviamos a Canarias.");
            break;
        }
    }

    // Beside the conversation, the contact's timeline interleaves every touchpoint, newest first.
    browser.wait_text("lucia", "#contact-title", "Ana Pérez").await;
    browser
        .run("lucia", "waitCount", json!({"selector": ".timeline li", "count": 6}))
        .await;
    let timeline: Vec<Value> = serde_json::from_value(
        browser
            .run("lucia", "evaluate", json!({"body": "return [...document.querySelectorAll('.timeline li')].map(li => [li.dataset.channel, li.dataset.direction, li.querySelector('time').getAttribute('datetime')]);"}))
            .await,
    )
    .unwrap();
    for channel in ["sms", "email", "chat"] {
        for direction in ["inbound", "outbound"] {
            assert!(
                timeline.iter().any(|t| t[0] == channel && t[1] == direction),
                "{direction} {channel} in the timeline: {timeline:?}"
            );
        }
    }
    let instants: Vec<time::OffsetDateTime> = timeline
        .iter()
        .map(|t| {
            time::OffsetDateTime::parse(t[2].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap()
        })
        .collect();
    assert!(instants.windows(2).all(|w| w[0] >= w[1]), "newest first: {timeline:?}");

    // Search for a word typed without its accent finds the message, the match highlighted.
    browser.fill_label("lucia", "Search", "numero").await;
    browser
        .run("lucia", "press", json!({"label": "Search", "key": "Enter"}))
        .await;
    browser.wait_text("lucia", ".hits mark", "número").await;

    // A ringing call at Lucia's extension pops the caller: from another customer's conversation
    // to Ana's contact and timeline, under a banner.
    let (status, _) = twilio_post(
        &app,
        &format!("/webhooks/sms/{sms}/twilio"),
        &inbound("SM-other-1", "+34611000999", "Otra consulta"),
        AUTH_TOKEN,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    browser
        .wait_text("lucia", ".conversations li .preview", "Otra consulta")
        .await;
    browser
        .click("lucia", ".conversations li:has-text('Otra consulta') a")
        .await;
    browser.wait_text("lucia", ".handles", "+34611000999").await;
    let (status, body) = app
        .post("/api/v1/calls/events", json!({"channel_account_id": voice, "call_id": "ring-1", "event": "ringing", "from": "600 111 222", "extension": "201"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    browser
        .wait_text("lucia", ".pop", "Incoming call from +34600111222")
        .await;
    browser.wait_text("lucia", "#contact-title", "Ana Pérez").await;
    browser.wait_text("lucia", ".timeline", "Factura de marzo").await;

    // An unknown caller gets a create-contact form with the number filled in.
    app.post("/api/v1/calls/events", json!({"channel_account_id": voice, "call_id": "ring-2", "event": "ringing", "from": "622 333 444", "extension": "201"}))
        .await;
    browser
        .wait_text("lucia", ".pop.unknown", "Unknown caller +34622333444")
        .await;
    let prefilled = browser.run("lucia", "value", json!({"selector": "#pop-phone"})).await;
    assert_eq!(prefilled, "+34622333444");
    browser.fill_label("lucia", "Name", "Carlos Ruiz").await;
    browser
        .run("lucia", "click", json!({"role": "button", "name": "Save contact"}))
        .await;
    browser.wait_text("lucia", "#contact-title", "Carlos Ruiz").await;
    let (status, carlos) = app.get("/api/v1/contacts/lookup?phone=622333444").await;
    assert_eq!(status, StatusCode::OK, "{carlos}");
    assert_eq!(carlos["contact"]["name"], "Carlos Ruiz");

    // Two agents on one conversation see each other replying.
    let ana_sms = conversation_of(&app, "Ana Pérez", "sms").await;
    browser.log_in("bea", &app.base, BEA.0, BEA.1).await;
    let at_ana = format!("{}/console/#/conversations/{ana_sms}", app.base);
    browser.run("bea", "goto", json!({"url": at_ana})).await;
    browser.run("lucia", "goto", json!({"url": at_ana})).await;
    for page in ["bea", "lucia"] {
        browser.wait_text(page, "#conversation-title", "Ana Pérez").await;
        browser
            .run(
                page,
                "waitText",
                json!({"selector": ".messages li[data-channel=sms]", "text": "¿dónde está mi pedido?"}),
            )
            .await;
    }
    browser
        .wait_text("lucia", ".notices", "Bea is viewing this conversation")
        .await;
    browser
        .run("bea", "type", json!({"selector": "#composer", "value": "Hola Ana"}))
        .await;
    browser.wait_text("lucia", ".notices", "Bea is replying").await;
    browser
        .run("lucia", "type", json!({"selector": "#composer", "value": "Hola"}))
        .await;
    browser.wait_text("bea", ".notices", "Lucia is replying").await;

    // The keyboard alone: `n` opens a note, Ctrl+Enter adds it, `j` goes to the next
    // conversation, `?` lists the shortcuts.
    browser
        .run("lucia", "press", json!({"selector": "#composer", "key": "Escape"}))
        .await;
    browser.run("lucia", "press", json!({"key": "n"})).await;
    browser
        .run("lucia", "waitCount", json!({"selector": ".composer.note", "count": 1}))
        .await;
    browser
        .run(
            "lucia",
            "type",
            json!({"selector": "#composer", "value": "Cliente habitual"}),
        )
        .await;
    browser
        .run(
            "lucia",
            "press",
            json!({"selector": "#composer", "key": "Control+Enter"}),
        )
        .await;
    browser
        .wait_text("lucia", ".messages li[data-direction=note]", "Cliente habitual")
        .await;
    browser
        .run("lucia", "press", json!({"selector": "#composer", "key": "Escape"}))
        .await;
    // The inbox reorders itself after the note (it moved the conversation's activity clock):
    // take the hub's order once the screen shows it.
    let (_, inbox) = app.get("/api/v1/inbox").await;
    let order: Vec<String> = inbox
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let shown = format!(
        "const want = {}; while ([...document.querySelectorAll('.conversations li[data-conversation]')].map((li) => li.dataset.conversation).join() !== want.join()) await new Promise((r) => setTimeout(r, 20)); return true;",
        json!(order)
    );
    browser.run("lucia", "evaluate", json!({"body": shown})).await;
    let at = order
        .iter()
        .position(|id| *id == ana_sms)
        .expect("Ana's SMS conversation is listed");
    let next = order.get(at + 1).unwrap_or(&order[at]).clone();
    browser.run("lucia", "press", json!({"key": "j"})).await;
    browser
        .wait_text("lucia", ".conversations a[aria-current=true]", "")
        .await;
    let current: Vec<String> = serde_json::from_value(
        browser
            .run("lucia", "evaluate", json!({"body": "while (!location.hash.endsWith(document.querySelector('.conversations a[aria-current=true]')?.closest('li')?.dataset.conversation ?? '-')) await new Promise((r) => setTimeout(r, 20)); return [location.hash];"}))
            .await,
    )
    .unwrap();
    assert_eq!(
        current,
        [format!("#/conversations/{next}")],
        "j opens the next conversation in the inbox"
    );
    browser.run("lucia", "press", json!({"key": "?"})).await;
    browser.wait_text("lucia", "dialog[open]", "Next conversation").await;
    browser.run("lucia", "press", json!({"key": "Escape"})).await;
    browser
        .run("lucia", "waitCount", json!({"selector": "dialog[open]", "count": 0}))
        .await;

    // At 200 % zoom (half the CSS width) the panes stack: nothing is cut off sideways.
    browser
        .run("lucia", "viewport", json!({"width": 640, "height": 720}))
        .await;
    let overflow = browser
        .run("lucia", "evaluate", json!({"body": "await new Promise((r) => requestAnimationFrame(r)); return document.documentElement.scrollWidth - window.innerWidth;"}))
        .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "the page scrolls sideways by {overflow} px at 640 px"
    );
    browser
        .run("lucia", "viewport", json!({"width": 1280, "height": 720}))
        .await;

    // Spanish changes every label on screen.
    browser
        .run("lucia", "select", json!({"selector": "#language", "value": "es"}))
        .await;
    browser.wait_text("lucia", "label[for=presence]", "Estado").await;
    let left = browser
        .run("lucia", "evaluate", json!({"body": ENGLISH_LEFT_ON_SCREEN}))
        .await;
    assert_eq!(left, json!([]), "English left after switching to Spanish");
    let spanish = browser.texts("lucia", "button.primary").await;
    assert_eq!(spanish, ["Enviar"]);
}

/// Every visible text and placeholder that is still an English console message (one whose
/// Spanish differs), with the messages' `{placeholders}` matching anything.
const ENGLISH_LEFT_ON_SCREEN: &str = r#"
    const { messages } = await import("/console/i18n.js");
    const escape = (s) => s.replace(/[.*+?^$()|[\]\\]/g, "\\$&");
    const english = Object.keys(messages.en)
        .filter((k) => messages.en[k] !== messages.es[k])
        .map((k) => new RegExp("^" + escape(messages.en[k]).replace(/\{\w+\}/g, ".+") + "$"));
    const shown = [...document.querySelectorAll("body *")]
        .filter((e) => e.children.length === 0 && (e.offsetParent !== null || e.tagName === "OPTION"))
        .map((e) => e.textContent.trim())
        .concat([...document.querySelectorAll("[placeholder]")].map((e) => e.placeholder))
        .concat([...document.querySelectorAll("[aria-label]")].map((e) => e.getAttribute("aria-label")))
        .filter((t) => t);
    return shown.filter((t) => english.some((re) => re.test(t)));
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_watches_the_dashboard_change_live_and_exports_a_report() {
    let app = spawn_app(Backend::Sqlite).await;
    let web = app.api_account("web").await;
    let (status, body) = app
        .post("/api/v1/agents", json!({"email": "sara@switchboard.test", "name": "Sara", "role": "supervisor", "password": "sara-password-1"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut browser = Chromium::start("dashboard").await;
    browser
        .log_in("sara", &app.base, "sara@switchboard.test", "sara-password-1")
        .await;
    browser.click("sara", "#nav-dashboard").await;
    browser.wait_text("sara", "#dashboard-title", "Live dashboard").await;
    browser.wait_text("sara", "#counter-waiting .value", "0").await;

    // A customer writes: the counters move without a reload, pushed by the hub.
    let (status, pushed) = app
        .push(json!({"channel_account_id": web, "external_id": "d-1", "contact": {"email": "eva@example.com", "name": "Eva"}, "text": "¿Hay alguien?"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{pushed}");
    browser.wait_text("sara", "#counter-waiting .value", "1").await;
    browser.wait_text("sara", "#counter-open .value", "1").await;
    browser.wait_text("sara", "tr[data-inbox] th", "web").await;

    // Answered: the report shows the first response, explains it, and exports it as CSV.
    let conversation = pushed["interaction"]["conversation_id"].as_str().unwrap();
    app.post(
        &format!("/api/v1/conversations/{conversation}/replies"),
        json!({"text": "Sí, dime"}),
    )
    .await;
    browser.wait_text("sara", "#counter-waiting .value", "0").await;
    browser.click("sara", "#nav-reports").await;
    browser.wait_text("sara", "#reports-title", "Reports").await;
    browser
        .wait_text("sara", "table.report tr[data-key=api] th", "API")
        .await;
    let tips: Vec<Option<String>> = serde_json::from_value(
        browser
            .run(
                "sara",
                "attributes",
                json!({"selector": "table.report thead th[title]", "name": "title"}),
            )
            .await,
    )
    .unwrap();
    assert!(
        tips.iter()
            .flatten()
            .any(|t| t.contains("notes, auto-replies and system messages do not count")),
        "the definitions are shown as tooltips: {tips:?}"
    );
    browser
        .run(
            "sara",
            "waitCount",
            json!({"selector": "figure.chart svg rect.p50", "count": 1}),
        )
        .await;
    let csv = browser
        .run("sara", "download", json!({"selector": "#report-csv"}))
        .await;
    let text = csv["text"].as_str().unwrap();
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("channel,key,volume,first_response_count"),
        "{text}"
    );
    let api_line = lines
        .find(|l| l.starts_with("api,api,"))
        .unwrap_or_else(|| panic!("no api line in {text}"));
    let cells: Vec<&str> = api_line.split(',').collect();
    assert_eq!(
        (cells[2], cells[3]),
        ("1", "1"),
        "one conversation, one first response: {api_line}"
    );
    assert!(csv["name"].as_str().unwrap().ends_with(".csv"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_badges_and_the_reason_for_a_priority_show_in_the_console() {
    let app = spawn_app(Backend::Sqlite).await;
    let crm = app.api_account("crm").await;
    agent(&app, LUCIA, "Lucia", "201").await;
    app.post(
        "/api/v1/attribute-definitions",
        json!({"key": "lifetime_value", "label": "Lifetime value", "kind": "number"}),
    )
    .await;
    let (status, body) = app
        .post(
            "/api/v1/segments",
            json!({"name": "VIP", "priority": "high", "rule": {"attribute": "lifetime_value", "op": "gte", "value": 5000}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (id, name, email, value) in [
        ("crm-1", "Pablo Ruiz", "pablo@cliente.test", 200),
        ("crm-2", "Marta Gil", "marta@cliente.test", 8000),
    ] {
        let (status, body) = app
            .call(
                reqwest::Method::PUT,
                &format!("/api/v1/contacts/by-external-id/{id}"),
                Some(json!({"name": name, "handles": [{"kind": "email", "value": email}],
                            "attributes": {"lifetime_value": value}})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        app.push(json!({"channel_account_id": crm, "external_id": id, "contact": {"email": email}, "text": "Hola"}))
            .await;
    }

    let mut browser = Chromium::start("segments").await;
    browser.log_in("lucia", &app.base, LUCIA.0, LUCIA.1).await;
    browser
        .run(
            "lucia",
            "waitCount",
            json!({"selector": ".conversations li[data-channel]", "count": 2, "timeout": 30000}),
        )
        .await;
    // Marta wrote second but is a VIP: first, with her badge; Pablo has none.
    assert_eq!(
        browser.texts("lucia", ".conversations li .who").await,
        ["Marta Gil", "Pablo Ruiz"]
    );
    assert_eq!(browser.texts("lucia", ".conversations li .segment").await, ["VIP"]);
    assert_eq!(browser.texts("lucia", ".conversations li .priority").await, ["High"]);

    browser.click("lucia", ".conversations li:first-child a").await;
    browser.wait_text("lucia", "#priority-reason", "Why: segment VIP").await;
    browser.wait_text("lucia", "ul.segments .segment", "VIP").await;
}

/// Markup a customer could type into every field the console shows, each with a script that
/// would open a dialog if it ran. The console shows it all as text (or sanitised, in a sandboxed
/// frame), and the browser records no dialog from the page or any frame in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_typed_by_customers_runs_no_script_in_the_console() {
    const NAME: &str = "<img src=x onerror=alert('name')>";
    const SUBJECT: &str = "<svg onload=alert('subject')>";
    const FILE: &str = "\"><img src=x onerror=alert('file')>.pdf";
    const CHAT: &str = "<img src=x onerror=alert('chat')><script>alert('chat2')</script>";
    let app = spawn_app(Backend::Sqlite).await;
    let form = app.api_account("web-form").await;
    let chat = chat_account(&app, json!({})).await;
    agent(&app, LUCIA, "Lucia", "201").await;
    let html = "<p>Hola</p><script>alert('html')</script><img src=x onerror=alert('img')>\
                <a href=\"javascript:alert('link')\">enlace</a><svg><script>alert('svg')</script></svg>\
                <iframe srcdoc=\"<script>parent.alert('srcdoc')</script>\"></iframe>\
                <form action=\"javascript:alert('form')\"><button>Enviar</button></form>";
    let (status, body) = app
        .push(json!({"channel_account_id": form, "external_id": "xss-1",
            "contact": {"email": "eve@cliente.test", "name": NAME},
            "subject": SUBJECT, "text": "<script>alert('text')</script>", "html": html,
            "attachments": [{"name": FILE, "content_type": "text/html", "size": 10}]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, visitor) = session(&app, &chat, None).await;
    let mut visitor = connect(&app, &chat, visitor["token"].as_str().unwrap(), None)
        .await
        .unwrap();
    send(
        &mut visitor,
        json!({"type": "identify", "name": "<b onmouseover=alert('visitor')>Eve</b>", "email": "eve2@cliente.test"}),
    )
    .await;
    next_of(&mut visitor, "identified").await;
    send(
        &mut visitor,
        json!({"type": "message", "client_id": "x-1", "text": CHAT}),
    )
    .await;
    next_of(&mut visitor, "ack").await;

    let mut browser = Chromium::start("xss").await;
    browser.log_in("lucia", &app.base, LUCIA.0, LUCIA.1).await;
    browser
        .run(
            "lucia",
            "waitCount",
            json!({"selector": ".conversations li[data-channel]", "count": 2, "timeout": 30000}),
        )
        .await;
    // Shown as the text it is, not dropped.
    assert!(
        browser
            .texts("lucia", ".conversations li .who")
            .await
            .contains(&NAME.to_owned())
    );
    for channel in ["api", "chat"] {
        browser
            .click("lucia", &format!(".conversations li[data-channel={channel}] a"))
            .await;
        browser
            .run(
                "lucia",
                "waitCount",
                json!({"selector": "#contact-title", "count": 1, "timeout": 30000}),
            )
            .await;
    }
    browser.click("lucia", ".conversations li[data-channel=api] a").await;
    browser.wait_text("lucia", "main", FILE).await;
    browser.wait_text("lucia", "#contact-title", NAME).await;
    browser
        .run(
            "lucia",
            "evaluate",
            json!({"body": "location.hash = '#/search/hola'; return true;"}),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let dialogs: Vec<String> = serde_json::from_value(browser.run("lucia", "dialogs", json!({})).await).unwrap();
    assert!(dialogs.is_empty(), "a script ran: {dialogs:?}");
}

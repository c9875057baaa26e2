//! The email channel against real servers: dovecot (IMAP, fed over LMTP) and an SMTP server
//! that keeps a copy of every message it relays, both started by the test command.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_stores;

on_both_stores!(
    a_mail_lands_in_the_timeline_a_reply_goes_out_threaded_and_the_answer_threads_back,
    mail_that_arrived_while_the_hub_was_down_is_backfilled_once,
    spoofed_threads_scripts_and_latin1_mail_are_handled_safely,
    a_recreated_mailbox_is_re_matched_missing_nothing_and_importing_nothing_twice,
    attachments_are_stored_and_downloaded_byte_for_byte,
    stored_mail_is_marked_seen_or_moved_as_configured_and_never_deleted,
    a_bounce_marks_the_reply_it_reports_on_as_failed_and_a_delay_does_not,
    a_sync_cut_by_the_server_and_by_a_hub_restart_stores_every_mail_once,
    a_mail_threaded_wrongly_is_split_into_its_own_conversation_and_its_replies_follow,
);

/// The test command's mail servers.
pub(crate) struct MailServers {
    imap: (String, u16),
    smtp: (String, u16),
    dir: PathBuf,
}

fn host_port(var: &str) -> (String, u16) {
    let raw = std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the suite with scripts/test.sh, which starts the mail servers")
    });
    let (host, port) = raw.rsplit_once(':').expect("host:port");
    (host.to_owned(), port.parse().expect("a port"))
}

impl MailServers {
    pub(crate) fn from_env() -> Self {
        Self {
            imap: host_port("SWITCHBOARD_TEST_IMAP"),
            smtp: host_port("SWITCHBOARD_TEST_SMTP"),
            dir: std::env::var("SWITCHBOARD_TEST_MAIL_DIR")
                .expect("SWITCHBOARD_TEST_MAIL_DIR")
                .into(),
        }
    }

    /// A new mailbox user with a name unique to this test.
    pub(crate) fn user(&self, prefix: &str) -> (String, String) {
        let name = format!("{prefix}{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
        let password = format!("pw-{name}");
        // One passwd-file per user: dovecot reads a new file at its first lookup.
        std::fs::write(
            self.dir.join("users.d").join(&name),
            format!("{name}:{{PLAIN}}{password}::::::\n"),
        )
        .unwrap();
        (name, password)
    }

    /// Delivers a raw message through the SMTP server (and from there over LMTP to dovecot).
    pub(crate) async fn send(&self, from: &str, to: &str, raw: &str) {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.smtp.0)
            .port(self.smtp.1)
            .build();
        let envelope = lettre::address::Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()]).unwrap();
        transport
            .send_raw(&envelope, raw.as_bytes())
            .await
            .expect("the smtp server accepts the message");
    }

    /// Messages the SMTP server relayed with `needle` in them.
    pub(crate) fn relayed(&self, needle: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("smtp-outbox")) else {
            return vec![];
        };
        entries
            .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .filter(|text| text.contains(needle))
            .collect()
    }
}

pub(crate) async fn email_account(app: &TestApp, mail: &MailServers, user: &str, password: &str) -> String {
    email_account_with(app, mail, user, password, json!({})).await
}

/// An email account on the test servers, with `extra` settings on top of the usual ones.
pub(crate) async fn email_account_with(
    app: &TestApp,
    mail: &MailServers,
    user: &str,
    password: &str,
    extra: Value,
) -> String {
    let mut settings = json!({
        "address": format!("{user}@example.test"), "from_name": "Soporte", "username": user,
        "imap_host": mail.imap.0, "imap_port": mail.imap.1, "imap_tls": false,
        "smtp_host": mail.smtp.0, "smtp_port": mail.smtp.1, "smtp_security": "none", "idle_seconds": 5});
    for (key, value) in extra.as_object().unwrap() {
        settings[key] = value.clone();
    }
    let (status, account) = app
        .post(
            "/api/v1/channel-accounts",
            json!({"kind": "email", "name": "support", "secret": password, "settings": settings}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    account["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn emails_of(app: &TestApp, address: &str, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let (status, found) = app.get(&format!("/api/v1/contacts/lookup?email={address}")).await;
        let items: Vec<Value> = if status == StatusCode::OK {
            found["interactions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["channel"] == "email")
                .cloned()
                .collect()
        } else {
            vec![]
        };
        if items.len() >= count || started.elapsed() > Duration::from_secs(15) {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn mail(from: &str, to: &str, subject: &str, message_id: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "From: Ana Pérez <{from}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n{extra_headers}\
         Date: Mon, 2 Mar 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

async fn a_mail_lands_in_the_timeline_a_reply_goes_out_threaded_and_the_answer_threads_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let mail_servers = MailServers::from_env();
    let (support, password) = mail_servers.user("support");
    let (customer, _) = mail_servers.user("ana");
    let (support_address, customer_address) = (format!("{support}@example.test"), format!("{customer}@example.es"));
    email_account(&app, &mail_servers, &support, &password).await;

    let first_id = format!("<m1.{customer}@example.es>");
    mail_servers
        .send(
            &customer_address,
            &support_address,
            &mail(
                &customer_address,
                &support_address,
                "Pedido 123",
                &first_id,
                "",
                "¿Dónde está mi pedido?",
            ),
        )
        .await;
    let received = emails_of(&app, &customer_address, 1).await;
    assert_eq!(received.len(), 1, "the mail reached the timeline through IMAP");
    let first = &received[0];
    assert_eq!(first["text"].as_str().unwrap().trim(), "¿Dónde está mi pedido?");
    assert_eq!(first["subject"], "Pedido 123");
    assert_eq!(first["message_id"], first_id.as_str());
    let conversation = first["conversation_id"].as_str().unwrap().to_owned();

    let (status, reply) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/replies"),
            json!({"text": "Sale mañana."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let reply_id = reply["message_id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let relayed = loop {
        let found = mail_servers.relayed(&reply_id);
        if !found.is_empty() || started.elapsed() > Duration::from_secs(10) {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(relayed.len(), 1, "the reply went out through SMTP");
    for header in [
        format!("In-Reply-To: {first_id}"),
        format!("References: {first_id}"),
        "Subject: Re: Pedido 123".to_owned(),
        format!("To: {customer_address}"),
    ] {
        assert!(relayed[0].contains(&header), "{header} missing in:\n{}", relayed[0]);
    }
    // The relay has the message a moment before the hub records the delivery as sent.
    let started = Instant::now();
    let delivered = loop {
        let (_, delivered) = app
            .get(&format!("/api/v1/interactions/{}", reply["id"].as_str().unwrap()))
            .await;
        if delivered["delivery"]["status"] != "pending" || started.elapsed() > Duration::from_secs(10) {
            break delivered;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(delivered["delivery"]["status"], "sent", "{delivered}");

    // The customer answers the reply under another subject: the headers, not the subject, thread it.
    let answer = mail(
        &customer_address,
        &support_address,
        "Otra cosa",
        &format!("<m2.{customer}@example.es>"),
        &format!("In-Reply-To: {reply_id}\r\nReferences: {first_id} {reply_id}\r\n"),
        "Gracias",
    );
    mail_servers.send(&customer_address, &support_address, &answer).await;
    // A fresh mail without reply headers and with a new subject starts a new conversation.
    let fresh = mail(
        &customer_address,
        &support_address,
        "Factura",
        &format!("<m3.{customer}@example.es>"),
        "",
        "Necesito la factura",
    );
    mail_servers.send(&customer_address, &support_address, &fresh).await;

    let all = emails_of(&app, &customer_address, 3).await;
    let by_subject = |s: &str| {
        all.iter()
            .find(|i| i["subject"] == s)
            .unwrap_or_else(|| panic!("no mail {s}: {all:?}"))
            .clone()
    };
    let threaded = by_subject("Otra cosa");
    assert_eq!(threaded["conversation_id"], conversation.as_str());
    assert_eq!(threaded["details"]["threading"]["reason"], "references");
    let separate = by_subject("Factura");
    assert_ne!(separate["conversation_id"], conversation.as_str());
    assert_eq!(separate["details"]["threading"]["reason"], "new conversation");
}

async fn mail_that_arrived_while_the_hub_was_down_is_backfilled_once(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let mail_servers = MailServers::from_env();
    let (support, password) = mail_servers.user("desk");
    let (customer, _) = mail_servers.user("luis");
    let (support_address, customer_address) = (format!("{support}@example.test"), format!("{customer}@example.es"));
    email_account(&app, &mail_servers, &support, &password).await;
    let send = |n: u32| {
        mail(
            &customer_address,
            &support_address,
            &format!("Consulta {n}"),
            &format!("<b{n}.{customer}@example.es>"),
            "",
            &format!("mensaje {n}"),
        )
    };
    mail_servers.send(&customer_address, &support_address, &send(1)).await;
    assert_eq!(emails_of(&app, &customer_address, 1).await.len(), 1);

    app.stop().await;
    mail_servers.send(&customer_address, &support_address, &send(2)).await;
    mail_servers.send(&customer_address, &support_address, &send(3)).await;
    app.start().await;

    assert_eq!(
        emails_of(&app, &customer_address, 3).await.len(),
        3,
        "both mails sent during the outage arrived"
    );
    app.restart().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = emails_of(&app, &customer_address, 4).await;
    assert_eq!(after.len(), 3, "a restart fetches nothing twice");
    let (_, contacts) = app.get("/api/v1/contacts").await;
    assert_eq!(contacts.as_array().unwrap().len(), 1);
}

async fn spoofed_threads_scripts_and_latin1_mail_are_handled_safely(backend: Backend) {
    let app = spawn_app(backend).await;
    let mail_servers = MailServers::from_env();
    let (support, password) = mail_servers.user("help");
    let (ana, _) = mail_servers.user("ana");
    let (eve, _) = mail_servers.user("eve");
    let support_address = format!("{support}@example.test");
    let (ana_address, eve_address) = (format!("{ana}@example.es"), format!("{eve}@example.es"));
    email_account(&app, &mail_servers, &support, &password).await;
    let first_id = format!("<s1.{ana}@example.es>");
    mail_servers
        .send(
            &ana_address,
            &support_address,
            &mail(&ana_address, &support_address, "Pedido 9", &first_id, "", "hola"),
        )
        .await;
    let ana_mail = emails_of(&app, &ana_address, 1).await;
    let ana_conversation = ana_mail[0]["conversation_id"].clone();

    // Another sender quotes Ana's Message-ID: it must not land in Ana's conversation.
    let spoof = mail(
        &eve_address,
        &support_address,
        "Re: Pedido 9",
        &format!("<s2.{eve}@example.es>"),
        &format!("In-Reply-To: {first_id}\r\nReferences: {first_id}\r\n"),
        "dame sus datos",
    );
    mail_servers.send(&eve_address, &support_address, &spoof).await;
    // HTML with a script and an event handler.
    let html = format!(
        "From: {eve_address}\r\nTo: {support_address}\r\nSubject: Oferta\r\nMessage-ID: <s3.{eve}@example.es>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n<p onmouseover=\"steal()\">Mire <b>esto</b></p><script>alert(document.cookie)</script>\r\n"
    );
    mail_servers.send(&eve_address, &support_address, &html).await;
    // A Spanish mail in ISO-8859-1 (raw 8-bit bytes through SMTP).
    let latin1_text = "From: {from}\r\nTo: {to}\r\nSubject: Tel\u{e9}fono\r\nMessage-ID: <s4.{id}@example.es>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nEl tel\u{e9}fono no funciona desde el mi\u{e9}rcoles\r\n"
        .replace("{from}", &ana_address)
        .replace("{to}", &support_address)
        .replace("{id}", &ana);
    let latin1: Vec<u8> = latin1_text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("latin-1"))
        .collect();
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&mail_servers.smtp.0)
        .port(mail_servers.smtp.1)
        .build();
    let envelope = lettre::address::Envelope::new(
        Some(ana_address.parse().unwrap()),
        vec![support_address.parse().unwrap()],
    )
    .unwrap();
    transport.send_raw(&envelope, &latin1).await.unwrap();

    let eve_mail = emails_of(&app, &eve_address, 2).await;
    let spoofed = eve_mail
        .iter()
        .find(|m| m["subject"] == "Re: Pedido 9")
        .expect("the spoofed mail was stored");
    assert_ne!(
        spoofed["conversation_id"], ana_conversation,
        "a reply header from another sender never joins Ana's conversation"
    );
    let offer = eve_mail
        .iter()
        .find(|m| m["subject"] == "Oferta")
        .expect("the html mail was stored");
    let stored_html = offer["html"].as_str().unwrap();
    assert!(stored_html.contains("<b>esto</b>"), "{stored_html}");
    for banned in ["<script", "onmouseover", "alert("] {
        assert!(!stored_html.contains(banned), "{banned} survived: {stored_html}");
    }
    assert_eq!(
        offer["text"].as_str().unwrap().trim(),
        "Mire esto",
        "plain text is kept for search"
    );
    let ana_all = emails_of(&app, &ana_address, 2).await;
    assert!(ana_all.iter().any(|m| m["subject"] == "Teléfono"), "{ana_all:?}");
    for query in ["telefono", "miércoles", "MIERCOLES"] {
        let (found, _) = app
            .search_until(&format!("q={query}&channel=email"), Duration::from_secs(5), |b| {
                b["total"] == 1
            })
            .await;
        assert_eq!(found["total"], 1, "{query}: {found}");
    }
}

/// Runs `doveadm` against the test dovecot as the user who owns the mail (the servers run
/// unprivileged; root-owned files would lock them out of the mailbox).
fn doveadm(mail: &MailServers, args: &[&str]) -> String {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(mail.dir.join("mail")).unwrap();
    let me = String::from_utf8(std::process::Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
    let config = mail.dir.join("dovecot.conf");
    let mut command = if me.trim() == owner.uid().to_string() {
        std::process::Command::new("doveadm")
    } else {
        let mut c = std::process::Command::new("setpriv");
        c.args([
            format!("--reuid={}", owner.uid()),
            format!("--regid={}", owner.gid()),
            "--clear-groups".into(),
            "doveadm".into(),
        ]);
        c
    };
    let output = command.arg("-c").arg(config).args(args).output().expect("doveadm runs");
    assert!(
        output.status.success(),
        "doveadm {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn a_recreated_mailbox_is_re_matched_missing_nothing_and_importing_nothing_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    let mail_servers = MailServers::from_env();
    let (support, password) = mail_servers.user("uv");
    let (customer, _) = mail_servers.user("rita");
    let (support_address, customer_address) = (format!("{support}@example.test"), format!("{customer}@example.es"));
    let id = |n: u32| format!("<u{n}.{customer}@example.es>");
    let send = |n: u32| {
        mail(
            &customer_address,
            &support_address,
            &format!("Asunto {n}"),
            &id(n),
            "",
            &format!("mensaje {n}"),
        )
    };
    mail_servers.send(&customer_address, &support_address, &send(1)).await;
    mail_servers.send(&customer_address, &support_address, &send(2)).await;
    // The hub follows a folder that the mail is copied into, so the test can rebuild it at will.
    let copy = |query: &[&str]| {
        let mut args = vec!["copy", "-u", support.as_str(), "Archive", "mailbox", "INBOX"];
        args.extend_from_slice(query);
        doveadm(&mail_servers, &args);
    };
    doveadm(&mail_servers, &["mailbox", "create", "-u", &support, "Archive"]);
    copy(&["ALL"]);
    let (status, account) = app
        .post(
            "/api/v1/channel-accounts",
            json!({"kind": "email", "name": "archive", "secret": password, "settings": {
                "address": support_address, "username": support, "mailbox": "Archive",
                "imap_host": mail_servers.imap.0, "imap_port": mail_servers.imap.1, "imap_tls": false, "idle_seconds": 2}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    assert_eq!(emails_of(&app, &customer_address, 2).await.len(), 2);

    // The folder is rebuilt: a new UIDVALIDITY, and the new mail now has UID 1, below the UID
    // the hub saved. A hub trusting its old cursor would skip it.
    let before = doveadm(
        &mail_servers,
        &["mailbox", "status", "-u", &support, "uidvalidity", "Archive"],
    );
    doveadm(&mail_servers, &["mailbox", "delete", "-u", &support, "Archive"]);
    doveadm(&mail_servers, &["mailbox", "create", "-u", &support, "Archive"]);
    mail_servers.send(&customer_address, &support_address, &send(3)).await;
    copy(&["header", "message-id", &id(3)]);
    copy(&["NOT", "header", "message-id", &id(3)]);
    let after = doveadm(
        &mail_servers,
        &["mailbox", "status", "-u", &support, "uidvalidity", "Archive"],
    );
    assert_ne!(before, after, "the folder got a new UIDVALIDITY");

    let all = emails_of(&app, &customer_address, 3).await;
    assert_eq!(all.len(), 3, "the new mail at a low UID was found: {all:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = emails_of(&app, &customer_address, 4).await;
    assert_eq!(
        all.len(),
        3,
        "the two old mails were re-matched by Message-ID, not imported again"
    );
}

async fn attachments_are_stored_and_downloaded_byte_for_byte(backend: Backend) {
    let app = spawn_app(backend).await;
    let mail_servers = MailServers::from_env();
    let (support, password) = mail_servers.user("att");
    let (customer, _) = mail_servers.user("paco");
    let (support_address, customer_address) = (format!("{support}@example.test"), format!("{customer}@example.es"));
    email_account(&app, &mail_servers, &support, &password).await;
    let pdf = b"%PDF-1.4\n%\xc7\xec\x8f\xa2\n1 0 obj\n<<>>\nendobj\n";
    use base64::Engine as _;
    let raw = format!(
        "From: {customer_address}\r\nTo: {support_address}\r\nSubject: Factura adjunta\r\nMessage-ID: <a1.{customer}@example.es>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=xx\r\n\r\n--xx\r\nContent-Type: text/plain\r\n\r\nAdjunto la factura\r\n\
         --xx\r\nContent-Type: application/pdf; name=\"factura.pdf\"\r\nContent-Disposition: attachment; filename=\"factura.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--xx--\r\n",
        base64::engine::general_purpose::STANDARD.encode(pdf)
    );
    mail_servers.send(&customer_address, &support_address, &raw).await;
    let stored = emails_of(&app, &customer_address, 1).await;
    let attachment = &stored[0]["attachments"][0];
    assert_eq!(attachment["name"], "factura.pdf");
    assert_eq!(attachment["size"], pdf.len());
    let hash = attachment["sha256"].as_str().expect("the bytes were stored");

    let download = app
        .http
        .get(format!("{}/api/v1/attachments/{hash}", app.base))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(
        download.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .split(';')
            .next(),
        Some("attachment"),
        "never rendered inline"
    );
    assert_eq!(download.headers()["x-original-content-type"], "application/pdf");
    assert_eq!(download.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        download.headers()["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    assert_eq!(
        download.headers()["content-type"],
        "application/octet-stream",
        "never a type that executes"
    );
    assert_eq!(&download.bytes().await.unwrap()[..], &pdf[..]);
    let (status, _) = app.get(&format!("/api/v1/attachments/{}", "0".repeat(64))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get("/api/v1/attachments/not-a-hash").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let anonymous = reqwest::get(format!("{}/api/v1/attachments/{hash}", app.base))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

/// An mbox export, imported twice: every message once, our own sent mail as outbound in its
/// thread, `>From ` quoting undone, Latin-1 read right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mbox_or_maildir_imported_twice_stores_each_message_once() {
    let app = spawn_app(Backend::Sqlite).await;
    let servers = MailServers::from_env();
    let (user, password) = servers.user("mbox");
    let account = email_account(&app, &servers, &user, &password).await;
    let own = format!("{user}@example.test");
    let mut mbox: Vec<u8> = Vec::new();
    let mut add = |envelope_from: &str, raw: &[u8]| {
        mbox.extend_from_slice(format!("From {envelope_from} Mon Mar  2 10:00:00 2026\n").as_bytes());
        mbox.extend_from_slice(raw);
        mbox.extend_from_slice(b"\n");
    };
    add(
        "ana@cliente.test",
        mail(
            "ana@cliente.test",
            &own,
            "Pedido 12",
            "<m1@cliente.test>",
            "",
            "Hola, el pedido 12 no llega.\n>From the warehouse it never left.",
        )
        .as_bytes(),
    );
    add(
        "ana@cliente.test",
        b"From: Ana <ana@cliente.test>\nTo: soporte\nSubject: =?ISO-8859-1?Q?Informaci=F3n?=\nMessage-ID: <m2@cliente.test>\n\
Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n\xbfCu\xe1ndo llega el env\xedo?\n",
    );
    add(
        &own,
        format!(
            "From: Soporte <{own}>\nTo: ana@cliente.test\nSubject: Re: Pedido 12\nMessage-ID: <r1@example.test>\n\
             In-Reply-To: <m1@cliente.test>\nReferences: <m1@cliente.test>\n\nSale ma\u{f1}ana.\n"
        )
        .as_bytes(),
    );
    add(
        "bea@cliente.test",
        b"From: bea@cliente.test\nTo: soporte\nSubject: Sin id\n\nUn mensaje sin Message-ID.\n",
    );
    let file = app.dir.path().join("export.mbox");
    std::fs::write(&file, &mbox).unwrap();
    let args = ["import", "mbox", "--account", account.as_str(), file.to_str().unwrap()];
    let import = || crate::attributes::cli_with(&app, &args, &[]);

    let (ok, out) = import().await;
    assert!(ok, "{out}");
    assert!(
        out.contains("4 messages") && out.contains("4 imported, 0 already there, 0 errors"),
        "{out}"
    );
    let (ok, out) = import().await;
    assert!(ok, "{out}");
    assert!(
        out.contains("0 imported, 4 already there, 0 errors"),
        "the second import adds nothing: {out}"
    );

    let ana = emails_of(&app, "ana@cliente.test", 3).await;
    assert_eq!(ana.len(), 3, "{ana:?}");
    let first = ana.iter().find(|i| i["subject"] == "Pedido 12").unwrap();
    assert!(
        first["text"].as_str().unwrap().contains("\nFrom the warehouse"),
        "{first}"
    );
    let reply = ana.iter().find(|i| i["subject"] == "Re: Pedido 12").unwrap();
    assert_eq!(reply["direction"], "outbound", "our own mail is outbound: {reply}");
    assert_eq!(
        reply["conversation_id"], first["conversation_id"],
        "and threads with what it answers"
    );
    let latin = ana.iter().find(|i| i["subject"] == "Información").unwrap();
    assert!(
        latin["text"].as_str().unwrap().contains("¿Cuándo llega el envío?"),
        "{latin}"
    );
    let (found, _) = app
        .search_until("q=envio", Duration::from_secs(5), |r| r["total"] == 1)
        .await;
    assert_eq!(found["total"], 1, "found without its accent: {found}");
    assert_eq!(emails_of(&app, "bea@cliente.test", 1).await.len(), 1);

    // The same mailbox as a Maildir: what the mbox brought is there already; the rest is new.
    let maildir = app.dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::write(
        maildir.join("cur/1.host:2,S"),
        mail("ana@cliente.test", &own, "Pedido 12", "<m1@cliente.test>", "", "Hola"),
    )
    .unwrap();
    std::fs::write(
        maildir.join("new/2.host"),
        mail(
            "carla@cliente.test",
            &own,
            "Devolución",
            "<c1@cliente.test>",
            "",
            "Quiero devolverlo",
        ),
    )
    .unwrap();
    let args = [
        "import",
        "maildir",
        "--account",
        account.as_str(),
        maildir.to_str().unwrap(),
    ];
    let (ok, out) = crate::attributes::cli_with(&app, &args, &[]).await;
    assert!(ok && out.contains("1 imported, 1 already there, 0 errors"), "{out}");
    let (ok, out) = crate::attributes::cli_with(&app, &args, &[]).await;
    assert!(ok && out.contains("0 imported, 2 already there, 0 errors"), "{out}");
}

async fn a_mail_threaded_wrongly_is_split_into_its_own_conversation_and_its_replies_follow(backend: Backend) {
    let app = spawn_app(backend).await;
    let mail_servers = MailServers::from_env();
    let (support, password) = mail_servers.user("split");
    let (customer, _) = mail_servers.user("ana");
    let (support_address, customer_address) = (format!("{support}@example.test"), format!("{customer}@example.es"));
    email_account(&app, &mail_servers, &support, &password).await;
    let (order_id, moving_id) = (
        format!("<o1.{customer}@example.es>"),
        format!("<o2.{customer}@example.es>"),
    );
    let order = mail(
        &customer_address,
        &support_address,
        "Pedido 77",
        &order_id,
        "",
        "¿Dónde está?",
    );
    mail_servers.send(&customer_address, &support_address, &order).await;
    assert_eq!(emails_of(&app, &customer_address, 1).await.len(), 1);
    // The customer answers the order's thread about something else entirely.
    let moving = mail(
        &customer_address,
        &support_address,
        "Re: Pedido 77",
        &moving_id,
        &format!("In-Reply-To: {order_id}\r\nReferences: {order_id}\r\n"),
        "Otra cosa: quiero cambiar mi dirección de envío",
    );
    mail_servers.send(&customer_address, &support_address, &moving).await;
    let both = emails_of(&app, &customer_address, 2).await;
    let by_id = |mails: &[Value], id: &str| mails.iter().find(|m| m["message_id"] == id).cloned().unwrap();
    let (first, second) = (by_id(&both, &order_id), by_id(&both, &moving_id));
    let original = first["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(
        second["conversation_id"],
        original.as_str(),
        "threaded by its references"
    );

    let (status, split) = app
        .post(
            &format!("/api/v1/interactions/{}/split", second["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{split}");
    let new = split["conversation"]["id"].as_str().unwrap().to_owned();
    assert_ne!(new, original);
    assert_eq!(split["conversation"]["status"], "open");
    assert_eq!(split["conversation"]["subject"], "Re: Pedido 77");
    assert_eq!(split["conversation"]["contact_id"], first["contact_id"]);
    assert!(
        split["conversation"]["waiting_since"].is_string(),
        "the customer waits for an answer in the new conversation: {split}"
    );
    assert_eq!(split["interaction"]["details"]["threading"]["reason"], "split");
    assert_eq!(split["interaction"]["details"]["threading"]["from"], original.as_str());
    assert!(
        split["interaction"]["seq"].as_i64() > second["seq"].as_i64(),
        "a new change number, so the search index catches up"
    );
    let (_, old) = app.get(&format!("/api/v1/conversations/{original}")).await;
    let left: Vec<&Value> = old["interactions"].as_array().unwrap().iter().collect();
    assert_eq!(left.len(), 1, "{old}");
    assert_eq!(left[0]["message_id"], order_id.as_str());

    // The customer's answer to the split mail follows it to the new conversation.
    let answer = mail(
        &customer_address,
        &support_address,
        "Re: Pedido 77",
        &format!("<o3.{customer}@example.es>"),
        &format!("In-Reply-To: {moving_id}\r\nReferences: {order_id} {moving_id}\r\n"),
        "La nueva dirección es Calle Mayor 5",
    );
    mail_servers.send(&customer_address, &support_address, &answer).await;
    let all = emails_of(&app, &customer_address, 3).await;
    let third = by_id(&all, &format!("<o3.{customer}@example.es>"));
    assert_eq!(third["conversation_id"], new.as_str());
    assert_eq!(third["details"]["threading"]["reason"], "references");

    // A conversation's only mail has nothing to be split from; only email is split.
    let (status, refused) = app
        .post(
            &format!("/api/v1/interactions/{}/split", first["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    let api = app.api_account("crm").await;
    let (_, pushed) = app
        .push(json!({"channel_account_id": api, "external_id": "crm-1", "contact": {"email": customer_address}, "text": "nota del crm"}))
        .await;
    let (status, refused) = app
        .post(
            &format!(
                "/api/v1/interactions/{}/split",
                pushed["interaction"]["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
}

async fn stored_mail_is_marked_seen_or_moved_as_configured_and_never_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let mail_servers = MailServers::from_env();
    let (seen_box, seen_password) = mail_servers.user("seen");
    let (moving_box, moving_password) = mail_servers.user("move");
    let (customer, _) = mail_servers.user("ana");
    let customer_address = format!("{customer}@example.es");
    let marking = json!({"after_ingest": "mark_seen"});
    let moving = json!({"after_ingest": {"move_to": "Procesado"}});
    email_account_with(&app, &mail_servers, &seen_box, &seen_password, marking).await;
    email_account_with(&app, &mail_servers, &moving_box, &moving_password, moving).await;
    for (user, n) in [(&seen_box, 1), (&moving_box, 2)] {
        let to = format!("{user}@example.test");
        let id = format!("<after{n}.{customer}@example.es>");
        let raw = mail(&customer_address, &to, &format!("Consulta {n}"), &id, "", "hola");
        mail_servers.send(&customer_address, &to, &raw).await;
    }
    assert_eq!(
        emails_of(&app, &customer_address, 2).await.len(),
        2,
        "both mails stored"
    );

    let flags = |user: &str, mailbox: &str| {
        doveadm(
            &mail_servers,
            &["-f", "flow", "fetch", "-u", user, "flags", "mailbox", mailbox, "all"],
        )
    };
    let count = |user: &str, mailbox: &str| {
        doveadm(
            &mail_servers,
            &["-f", "flow", "mailbox", "status", "-u", user, "messages", mailbox],
        )
    };
    let started = Instant::now();
    loop {
        let seen = flags(&seen_box, "INBOX");
        let moved = doveadm(&mail_servers, &["mailbox", "list", "-u", &moving_box]).contains("Procesado")
            && count(&moving_box, "Procesado").contains("messages=1");
        if (seen.contains("\\Seen") && moved) || started.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        flags(&seen_box, "INBOX").contains("\\Seen"),
        "marked seen, still in the inbox"
    );
    assert!(count(&seen_box, "INBOX").contains("messages=1"));
    assert!(
        count(&moving_box, "INBOX").contains("messages=0"),
        "moved out of the inbox"
    );
    assert!(
        count(&moving_box, "Procesado").contains("messages=1"),
        "into the configured folder, not deleted"
    );
    assert!(
        !flags(&moving_box, "Procesado").contains("\\Deleted"),
        "the moved mail is whole"
    );
}

/// A delivery status notification about `message_id`, as Postfix writes one (RFC 3464).
fn bounce(to: &str, n: u32, message_id: &str, action: &str, status: &str) -> String {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@example.test>\r\nTo: {to}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn{n}.{status}@example.test>\r\n\
         Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B{n}\"\r\n\r\n\
         --B{n}\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --B{n}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.test\r\n\r\n\
         Final-Recipient: rfc822; nadie@example.es\r\nAction: {action}\r\nStatus: {status}\r\n\
         Diagnostic-Code: smtp; 550 {status} user unknown\r\n\r\n\
         --B{n}\r\nContent-Type: text/rfc822-headers\r\n\r\nTo: nadie@example.es\r\nMessage-ID: {message_id}\r\n\r\n\
         --B{n}--\r\n"
    )
}

async fn a_bounce_marks_the_reply_it_reports_on_as_failed_and_a_delay_does_not(backend: Backend) {
    let app = spawn_app(backend).await;
    let mail_servers = MailServers::from_env();
    let (support, password) = mail_servers.user("bounce");
    let (customer, _) = mail_servers.user("ana");
    let (support_address, customer_address) = (format!("{support}@example.test"), format!("{customer}@example.es"));
    email_account(&app, &mail_servers, &support, &password).await;
    let first = mail(
        &customer_address,
        &support_address,
        "Pedido 5",
        &format!("<b1.{customer}@example.es>"),
        "",
        "hola",
    );
    mail_servers.send(&customer_address, &support_address, &first).await;
    let conversation = emails_of(&app, &customer_address, 1).await[0]["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, reply) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/replies"),
            json!({"text": "Enviado."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let (reply_id, reply_message_id) = (reply["id"].as_str().unwrap(), reply["message_id"].as_str().unwrap());
    let delivery = || async {
        let (_, found) = app.get(&format!("/api/v1/interactions/{reply_id}")).await;
        found["delivery"].clone()
    };
    let started = Instant::now();
    while delivery().await["status"] != "sent" && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivery().await["status"], "sent");

    let daemon = "MAILER-DAEMON@example.test";
    let delayed = bounce(&support_address, 1, reply_message_id, "delayed", "4.4.1");
    mail_servers.send(daemon, &support_address, &delayed).await;
    let reports = emails_of(&app, "mailer-daemon@example.test", 1).await;
    assert_eq!(reports.len(), 1, "the delay report is stored");
    assert_eq!(reports[0]["details"]["delivery_report"]["action"], "delayed");
    // The report is handled right after it is stored: a wrong verdict would show within a second.
    for _ in 0..10 {
        assert!(
            delivery().await["provider_status"].is_null(),
            "a delay is not a failure"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let failed = bounce(&support_address, 2, reply_message_id, "failed", "5.1.1");
    mail_servers.send(daemon, &support_address, &failed).await;
    let started = Instant::now();
    while delivery().await["provider_status"].is_null() && started.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivery = delivery().await;
    assert_eq!(delivery["provider_status"], "failed", "{delivery}");
    assert_eq!(delivery["provider_error"], "5.1.1: 550 5.1.1 user unknown");
    let reports = emails_of(&app, "mailer-daemon@example.test", 2).await;
    assert!(
        reports.iter().all(|r| r["conversation_id"] != conversation.as_str()),
        "a bounce never lands in the customer's conversation"
    );
}

async fn a_sync_cut_by_the_server_and_by_a_hub_restart_stores_every_mail_once(backend: Backend) {
    use std::os::unix::fs::PermissionsExt;
    const MAILS: i64 = 1_000;
    let mut app = spawn_app(backend).await;
    let mail_servers = MailServers::from_env();
    let (support, password) = mail_servers.user("bulk");
    // The mailbox is filled before the hub looks at it: an initial sync of 1,000 mails.
    let source = tempfile::tempdir().unwrap();
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(source.path().join(sub)).unwrap();
    }
    for n in 0..MAILS {
        let raw = mail(
            &format!("cliente{}@example.es", n % 40),
            &format!("{support}@example.test"),
            &format!("Consulta {n}"),
            &format!("<bulk{n}.{support}@example.es>"),
            "",
            &format!("mensaje número {n}"),
        );
        std::fs::write(source.path().join("cur").join(format!("{n}.test:2,")), raw).unwrap();
    }
    for dir in [
        source.path().to_owned(),
        source.path().join("cur"),
        source.path().join("new"),
        source.path().join("tmp"),
    ] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let maildir = format!("maildir:{}", source.path().display());
    doveadm(&mail_servers, &["import", "-u", &support, &maildir, "", "all"]);
    let in_mailbox = doveadm(
        &mail_servers,
        &["-f", "flow", "mailbox", "status", "-u", &support, "messages", "INBOX"],
    );
    assert_eq!(in_mailbox.trim(), format!("INBOX messages={MAILS}"));

    email_account(&app, &mail_servers, &support, &password).await;
    // The server drops the session mid-sync ...
    let cut = wait_for(&app, 1).await;
    doveadm(&mail_servers, &["kick", &support]);
    assert!(cut < MAILS, "the sync was still running when the server cut it ({cut})");
    // ... and the hub restarts mid-sync, after the poller reconnected and went on.
    let restarted = wait_for(&app, cut + 1).await;
    assert!(
        restarted < MAILS,
        "the sync was still running when the hub restarted ({restarted})"
    );
    app.restart().await;

    let done = wait_for(&app, MAILS).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(done, MAILS, "every mail of the mailbox is stored");
    assert_eq!(stored(&app).await, MAILS, "and none twice");
}

/// How many interactions the hub has written (its change sequence; a fresh database per test).
async fn stored(app: &TestApp) -> i64 {
    app.get("/readyz").await.1["store_seq"].as_i64().unwrap_or(0)
}

/// Waits up to 30 s until the hub has written `at_least` interactions; returns how many it has.
async fn wait_for(app: &TestApp, at_least: i64) -> i64 {
    let started = Instant::now();
    loop {
        let now = stored(app).await;
        if now >= at_least || started.elapsed() > Duration::from_secs(30) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

//! Scenario 11: initial sync of a large mailbox from the real IMAP server, by the hub beside
//! `mbsync` (isync), on the same mailbox of the same dovecot.
//!
//! The benchmark starts dovecot with `scripts/mail-start.sh` in a temp dir, writes
//! `--imap-messages` mails (Spanish and English, 0.3–2 KB bodies, a few hundred senders) into a
//! maildir and imports it into a mailbox with `doveadm import` (not measured). Then `mbsync`
//! pulls the whole mailbox into an empty local maildir twice (the first run, not measured, warms
//! dovecot's caches so that both measured clients read a warm server), and the hub ingests it through an email
//! account: from the account's creation until every mail is a stored interaction (parsed,
//! sender's contact resolved, threaded, committed). Goal: the hub within 1.5× of mbsync.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard::domain::ChannelKind;
use switchboard::store::NewChannelAccount;

use crate::data;
use crate::harness::{Bench, TempDir};
use crate::seed::Dataset;
use crate::stats::{Table, rate, secs};

const USER: &str = "benchbox";
const PASSWORD: &str = "benchbox-password";
const GOAL_RATIO: f64 = 1.5;

/// The benchmark's dovecot, stopped when dropped: after the hub, so its poller never sees the
/// server go away.
pub struct MailServers {
    dir: PathBuf,
    temp: TempDir,
}

impl Drop for MailServers {
    fn drop(&mut self) {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let _ = Command::new("bash")
            .arg(repo.join("scripts/mail-stop.sh"))
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Runs the scenario; the returned servers must be dropped after the hub has stopped.
pub async fn run(bench: &Bench, dataset: &Dataset, messages: usize) -> Result<Option<MailServers>> {
    let title = format!("11. IMAP initial sync of a {messages}-message mailbox (real dovecot)");
    if which("mbsync").is_none() || which("doveadm").is_none() {
        println!("\n### {title}\n\nskipped: needs dovecot and mbsync (apt-get install dovecot-imapd isync)");
        return Ok(None);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let temp = TempDir::new("switchboard-bench-imap")?;
    let mail = temp.path().join("mail-servers");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect::<Result<_>>()?;
    let started = Command::new("bash")
        .arg(repo.join("scripts/mail-start.sh"))
        .arg(&mail)
        .args(ports.iter().map(u16::to_string))
        .stdout(std::process::Stdio::null())
        .status()
        .context("running scripts/mail-start.sh")?;
    let servers = MailServers {
        dir: mail.clone(),
        temp,
    };
    if !started.success() {
        bail!("scripts/mail-start.sh failed");
    }
    let dir = servers.temp.path().to_owned();
    measure(bench, dataset, messages, &dir, &mail, ports[0], &title).await?;
    Ok(Some(servers))
}

async fn measure(
    bench: &Bench,
    dataset: &Dataset,
    messages: usize,
    dir: &Path,
    mail: &Path,
    imap_port: u16,
    title: &str,
) -> Result<()> {
    std::fs::write(
        mail.join("users.d").join(USER),
        format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n"),
    )?;
    let source = dir.join("source");
    let written = Instant::now();
    write_maildir(&source, dataset, messages)?;
    let imported = doveadm(
        mail,
        &[
            "import",
            "-u",
            USER,
            &format!("maildir:{}", source.display()),
            "",
            "all",
        ],
    )?;
    let status = doveadm(
        mail,
        &["-f", "flow", "mailbox", "status", "-u", USER, "messages", "INBOX"],
    )?;
    let in_mailbox: usize = status
        .trim()
        .trim_start_matches("INBOX messages=")
        .parse()
        .with_context(|| format!("doveadm mailbox status said {status:?} (import said {imported:?})"))?;
    if in_mailbox != messages {
        bail!("the mailbox holds {in_mailbox} messages, not {messages}");
    }
    let prepared = written.elapsed();

    // mbsync: the whole mailbox into an empty local maildir, twice: the first run (not
    // measured) builds dovecot's caches, so that both measured clients read a warm server.
    run_mbsync(dir, "warm-up", imap_port)?;
    let (mbsync, fetched) = run_mbsync(dir, "measured", imap_port)?;

    // The hub: an email account on the same mailbox, until every mail is stored.
    let hub_started = Instant::now();
    let account = bench
        .hub
        .store
        .create_channel_account(NewChannelAccount {
            kind: ChannelKind::Email,
            name: "bench imap".into(),
            settings: serde_json::json!({"address": format!("{USER}@example.test"), "username": USER,
                "imap_host": "127.0.0.1", "imap_port": imap_port, "imap_tls": false}),
            secret: Some(PASSWORD.into()),
        })
        .await
        .context("creating the email account")?;
    let deadline = Duration::from_secs(3_600);
    let stored = loop {
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM interactions WHERE channel_account_id = $1")
            .bind(account.id.to_string())
            .fetch_one(bench.hub.store.reader())
            .await?;
        if stored as usize >= messages || hub_started.elapsed() > deadline {
            break stored as usize;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let hub = hub_started.elapsed();

    let ratio = hub.as_secs_f64() / mbsync.as_secs_f64().max(1e-9);
    let mut table = Table::new(
        "imap",
        title,
        &[
            "client",
            "messages",
            "seconds",
            "messages/s",
            "ratio to mbsync",
            "goal ≤ 1.5×",
        ],
    );
    table.row(vec![
        "mbsync (isync)".into(),
        fetched.to_string(),
        secs(mbsync),
        rate(fetched, mbsync),
        "1.00".into(),
        String::new(),
    ]);
    table.row(vec![
        "switchboard".into(),
        stored.to_string(),
        secs(hub),
        rate(stored, hub),
        format!("{ratio:.2}"),
        if ratio <= GOAL_RATIO && stored == messages {
            "met".into()
        } else {
            "missed".into()
        },
    ]);
    table.note(format!(
        "mbsync writes each mail to a file; the hub parses it, resolves the sender's contact, threads it and commits it, searchable soon after; mailbox prepared in {} s",
        secs(prepared)
    ));
    table.print();
    Ok(())
}

/// Pulls the whole mailbox with mbsync into a new local maildir `dir/name`; returns how long
/// it took and how many mails arrived.
fn run_mbsync(dir: &Path, name: &str, imap_port: u16) -> Result<(Duration, usize)> {
    let local = dir.join(name);
    std::fs::create_dir_all(&local)?;
    let config = dir.join(format!("{name}.mbsyncrc"));
    std::fs::write(
        &config,
        format!(
            "IMAPAccount bench\nHost 127.0.0.1\nPort {imap_port}\nUser {USER}\nPass {PASSWORD}\nSSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore remote\nAccount bench\n\n\
             MaildirStore local\nPath {local}/\nInbox {local}/INBOX\n\n\
             Channel bench\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\nSync Pull\nSyncState *\n",
            local = local.display()
        ),
    )?;
    let started = Instant::now();
    let output = Command::new("mbsync")
        .arg("-c")
        .arg(&config)
        .arg("bench")
        .output()
        .context("running mbsync")?;
    let took = started.elapsed();
    if !output.status.success() {
        bail!("mbsync failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let fetched = ["cur", "new"]
        .iter()
        .map(|d| std::fs::read_dir(local.join("INBOX").join(d)).map_or(0, |e| e.count()))
        .sum::<usize>();
    Ok((took, fetched))
}

/// `messages` mails from a few hundred senders into a new maildir at `path`.
fn write_maildir(path: &Path, dataset: &Dataset, messages: usize) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // doveadm reads the source as the mail user and keeps its index files beside the mails.
    for sub in ["", "cur", "new", "tmp"] {
        std::fs::create_dir_all(path.join(sub))?;
        std::fs::set_permissions(path.join(sub), std::fs::Permissions::from_mode(0o777))?;
    }
    let mut rng = StdRng::seed_from_u64(dataset.seed ^ 0x0000_696d_6170);
    let senders = dataset.people.len().clamp(1, 500);
    for i in 0..messages {
        let person = &dataset.people[i % senders];
        let length = rng.random_range(300..2_000);
        let body = data::text(&mut rng, person.spanish, length);
        let subject = if person.spanish {
            "Consulta sobre mi pedido"
        } else {
            "Question about my order"
        };
        let raw = format!(
            "From: {name} <{email}>\r\nTo: {USER}@example.test\r\nSubject: {subject} {i}\r\n\
             Message-ID: <bench.{i}.{seed}@example.es>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
            name = person.name,
            email = person.email,
            seed = dataset.seed,
        );
        std::fs::write(path.join("cur").join(format!("{i}.bench:2,S")), raw)?;
    }
    Ok(())
}

fn doveadm(mail: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new("doveadm")
        .arg("-c")
        .arg(mail.join("dovecot.conf"))
        .args(args)
        .output()
        .context("running doveadm")?;
    if !output.status.success() {
        bail!("doveadm {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .chain(["/usr/sbin", "/usr/bin"].map(|d| Path::new(d).join(program)))
        .find(|p| p.exists())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

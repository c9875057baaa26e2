//! The command line: `serve` (the default), `migrate`, `reindex`, `agent create`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::auth;
use crate::domain::{EmailAddress, Role};
use crate::search::indexer::Indexer;
use crate::search::{SearchIndex, WriterThreads};
use crate::settings::Settings;
use crate::startup::{Application, install_crypto_provider};
use crate::store::{NewAgent, Store};

#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about = "Multichannel contact-center interaction hub")]
pub struct Cli {
    /// A settings file layered over config/default.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Rebuild the search index from the store (stop the server first).
    Reindex,
    /// Manage agents.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Import touchpoints from files.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Response-time metrics.
    #[command(subcommand)]
    Metrics(MetricsCommand),
    /// Export data to files.
    #[command(subcommand)]
    Export(ExportCommand),
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Every contact as CSV, with its handles and attributes (the columns `import contacts` reads).
    Contacts { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Recompute every figure (samples and SLA deadlines) from the recorded facts.
    Rebuild,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import contacts from CSV (external_id, name, email, phone, attribute columns); an upsert by
    /// external_id, all rows or none. `--dry-run` reports what would change and changes nothing.
    Contacts {
        file: PathBuf,
        #[arg(long)]
        dry_run: bool,
    },
    /// Import an mbox file into an email inbox; importing it again adds nothing. Mail the
    /// inbox itself sent is imported as outbound.
    Mbox {
        /// The email channel account the mail belongs to.
        #[arg(long)]
        account: String,
        file: PathBuf,
    },
    /// Import a Maildir folder (its `cur/` and `new/`, oldest first) into an email inbox;
    /// importing it again adds nothing.
    Maildir {
        /// The email channel account the mail belongs to.
        #[arg(long)]
        account: String,
        dir: PathBuf,
    },
    /// Import an Asterisk cdr_csv file (Master.csv); importing it again adds nothing.
    AsteriskCdr {
        /// The voice channel account the calls belong to.
        #[arg(long)]
        account: String,
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Create an agent; prints a generated password unless one is given in SWITCHBOARD_AGENT_PASSWORD.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "agent")]
        role: String,
        /// The agent's phone extension.
        #[arg(long)]
        extension: Option<String>,
        /// An inbox (channel account id) the agent works in; repeat for several. Supervisors
        /// and admins see every inbox anyway.
        #[arg(long = "inbox")]
        inboxes: Vec<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("settings: {0}")]
    Settings(#[from] config::ConfigError),
    #[error(transparent)]
    Startup(#[from] crate::startup::StartupError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("search index: {0}")]
    Search(#[from] crate::search::SearchError),
    #[error("indexing: {0}")]
    Indexer(#[from] crate::search::indexer::IndexerError),
    #[error("{0}")]
    Invalid(String),
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let settings = Settings::load(cli.config.as_deref())?;
    crate::telemetry::init_logs(&settings.log);
    install_crypto_provider();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => Application::build(settings).await?.run_until_stopped().await?,
        Command::Migrate => {
            Store::connect(settings.database.url(), 1).await?.close().await;
            println!("migrations applied");
        }
        Command::Reindex => {
            let store = Store::connect(settings.database.url(), settings.database.max_connections).await?;
            let (index, writer) = SearchIndex::open(
                &settings.index.path,
                settings.index.writer_memory_mb,
                WriterThreads::Rebuild,
            )?;
            let started = std::time::Instant::now();
            let count = Indexer::new(index, writer, store.clone()).rebuild().await?;
            store.close().await;
            println!(
                "reindexed {count} interactions in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Command::Metrics(MetricsCommand::Rebuild) => {
            let store = Store::connect(settings.database.url(), settings.database.max_connections).await?;
            let started = std::time::Instant::now();
            let count = crate::metrics::rebuild(&store).await?;
            store.close().await;
            println!(
                "recomputed the metrics of {count} conversations in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Command::Import(ImportCommand::Contacts { file, dry_run }) => {
            let store = Store::connect(settings.database.url(), settings.database.max_connections).await?;
            let definitions = store.attribute_definitions().await?;
            let input =
                std::fs::File::open(&file).map_err(|e| CliError::Invalid(format!("{}: {e}", file.display())))?;
            let rows = crate::contacts_csv::parse(
                input,
                &definitions,
                settings.contacts.default_region,
                settings.limits.csv_line_bytes,
            )
            .map_err(|e| CliError::Invalid(format!("{}: {e}; nothing imported", file.display())))?;
            let bar = indicatif::ProgressBar::new(rows.len() as u64);
            let report = store
                .upsert_contacts(&rows, dry_run, || bar.inc(1))
                .await
                .map_err(|e| {
                    CliError::Invalid(format!(
                        "{}: line {}: {}; nothing imported",
                        file.display(),
                        e.row,
                        e.error
                    ))
                })?;
            bar.finish_and_clear();
            store.close().await;
            println!(
                "{}: {} created, {} changed, {} unchanged{}",
                file.display(),
                report.created,
                report.changed,
                report.unchanged,
                if dry_run { " (dry run: nothing was written)" } else { "" }
            );
        }
        Command::Export(ExportCommand::Contacts { file }) => {
            let store = Store::connect(settings.database.url(), settings.database.max_connections).await?;
            let output =
                std::fs::File::create(&file).map_err(|e| CliError::Invalid(format!("{}: {e}", file.display())))?;
            let count = crate::contacts_csv::export(&store, output)
                .await
                .map_err(|e| CliError::Invalid(e.to_string()))?;
            store.close().await;
            println!("exported {count} contacts to {}", file.display());
        }
        Command::Import(ImportCommand::Mbox { account, file }) => {
            import_mail_file(&settings, &account, &file, MailSource::Mbox).await?
        }
        Command::Import(ImportCommand::Maildir { account, dir }) => {
            import_mail_file(&settings, &account, &dir, MailSource::Maildir).await?
        }
        Command::Import(ImportCommand::AsteriskCdr { account, file }) => {
            import_asterisk_file(&settings, &account, &file).await?
        }
        Command::Agent(AgentCommand::Create {
            email,
            name,
            role,
            extension,
            inboxes,
        }) => {
            let email = EmailAddress::parse(&email).map_err(|e| CliError::Invalid(format!("--email: {e}")))?;
            let role: Role = role.parse().map_err(|e| CliError::Invalid(format!("--role: {e}")))?;
            let (password, generated) = match std::env::var("SWITCHBOARD_AGENT_PASSWORD") {
                Ok(p) => (p, false),
                Err(_) => (auth::new_secret(""), true),
            };
            let hash = auth::hash_password(&password).map_err(|e| CliError::Invalid(e.to_string()))?;
            let inboxes = inboxes
                .iter()
                .map(|i| {
                    i.parse()
                        .map_err(|_| CliError::Invalid(format!("--inbox {i}: not an id")))
                })
                .collect::<Result<Vec<crate::domain::ChannelAccountId>, _>>()?;
            let store = Store::connect(settings.database.url(), 1).await?;
            let agent = store
                .create_agent(NewAgent {
                    email,
                    name,
                    role,
                    password_hash: Some(hash),
                    extension,
                })
                .await?;
            if !inboxes.is_empty() {
                store.set_agent_inboxes(agent.id, &inboxes, "cli").await?;
            }
            store.close().await;
            if generated {
                println!("created {} agent {} with password {password}", agent.role, agent.email);
            } else {
                println!("created {} agent {}", agent.role, agent.email);
            }
        }
    }
    Ok(())
}

/// Where exported mail comes from.
enum MailSource {
    Mbox,
    Maildir,
}

async fn import_mail_file(
    settings: &Settings,
    account: &str,
    file: &std::path::Path,
    source: MailSource,
) -> Result<(), CliError> {
    let account_id: crate::domain::ChannelAccountId = account
        .parse()
        .map_err(|_| CliError::Invalid(format!("--account: {account:?} is not an id")))?;
    let store = Store::connect(settings.database.url(), settings.database.max_connections).await?;
    let account = store.channel_account(account_id).await?;
    if account.kind != crate::domain::ChannelKind::Email {
        return Err(CliError::Invalid(format!(
            "--account: {} is a {} account, not email",
            account.id, account.kind
        )));
    }
    let unreadable = |e: std::io::Error| CliError::Invalid(format!("{}: {e}", file.display()));
    let (messages, size): (Box<dyn Iterator<Item = std::io::Result<Vec<u8>>> + Send>, u64) = match source {
        MailSource::Mbox => {
            let input = std::fs::File::open(file).map_err(unreadable)?;
            let size = input.metadata().map(|m| m.len()).unwrap_or(0);
            let reader = std::io::BufReader::new(input);
            (Box::new(switchboard_connectors::email::mbox::messages(reader)), size)
        }
        MailSource::Maildir => (
            Box::new(switchboard_connectors::email::maildir::messages(file).map_err(unreadable)?),
            0,
        ),
    };
    let (writer, queue) = crate::ingest::IngestWriter::new(
        store.clone(),
        time::Duration::hours(settings.conversations.reopen_window_hours as i64),
    );
    let writer = tokio::spawn(writer.run());
    let progress = indicatif::ProgressBar::new(size).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta}")
            .expect("a valid template"),
    );
    let started = std::time::Instant::now();
    let report = crate::email::import_mail(
        &queue,
        &store,
        &account,
        messages,
        settings.limits.imap_message_bytes as usize,
        |bytes| progress.inc(bytes as u64),
    )
    .await
    .map_err(|e| CliError::Invalid(e.to_string()))?;
    progress.finish_and_clear();
    drop(queue);
    let _ = writer.await;
    store.close().await;
    for (position, reason) in &report.errors {
        eprintln!("message {position}: {reason}");
    }
    println!(
        "{} messages in {:.1} s: {} imported, {} already there, {} errors",
        report.messages,
        started.elapsed().as_secs_f64(),
        report.imported,
        report.duplicates,
        report.errors.len()
    );
    Ok(())
}

/// Bytes of complete lines handed to the importer at a time.
const IMPORT_CHUNK_BYTES: usize = 4 << 20;

async fn import_asterisk_file(settings: &Settings, account: &str, file: &std::path::Path) -> Result<(), CliError> {
    use tokio::io::AsyncReadExt;

    let account_id: crate::domain::ChannelAccountId = account
        .parse()
        .map_err(|_| CliError::Invalid(format!("--account: {account:?} is not an id")))?;
    let store = Store::connect(settings.database.url(), settings.database.max_connections).await?;
    let account = store.channel_account(account_id).await?;
    if account.kind != crate::domain::ChannelKind::Voice {
        return Err(CliError::Invalid(format!(
            "--account: {} is a {} account, not voice",
            account.id, account.kind
        )));
    }
    let (writer, queue) = crate::ingest::IngestWriter::new(
        store.clone(),
        time::Duration::hours(settings.conversations.reopen_window_hours as i64),
    );
    let writer = tokio::spawn(writer.run());
    let mut input = tokio::fs::File::open(file)
        .await
        .map_err(|e| CliError::Invalid(format!("{}: {e}", file.display())))?;
    let size = input.metadata().await.map(|m| m.len()).unwrap_or(0);
    let progress = indicatif::ProgressBar::new(size).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta}")
            .expect("a valid template"),
    );
    let started = std::time::Instant::now();
    let mut report = crate::voice::ImportReport::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut next_line = 1;
    let mut buffer = vec![0u8; IMPORT_CHUNK_BYTES];
    loop {
        let read = input
            .read(&mut buffer)
            .await
            .map_err(|e| CliError::Invalid(format!("{}: {e}", file.display())))?;
        pending.extend_from_slice(&buffer[..read]);
        // At the end, a last line without a line break is imported too (and reported if truncated).
        let complete = if read == 0 {
            pending.len()
        } else {
            pending.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
        };
        if complete > 0 {
            let text = String::from_utf8_lossy(&pending[..complete]).into_owned();
            let part = crate::voice::import_asterisk(
                &queue,
                &store,
                &account,
                settings.contacts.default_region,
                &text,
                next_line,
                settings.limits.csv_line_bytes,
            )
            .await
            .map_err(|e| CliError::Invalid(e.to_string()))?;
            next_line += text.matches('\n').count();
            report.merge(part);
            progress.inc(complete as u64);
            pending.drain(..complete);
        }
        if read == 0 {
            break;
        }
    }
    progress.finish_and_clear();
    drop(queue);
    let _ = writer.await;
    store.close().await;
    for problem in &report.errors {
        eprintln!("line {}: {}", problem.line, problem.reason);
    }
    println!(
        "{} lines in {:.1} s: {} imported, {} already there, {} skipped (internal calls), {} errors",
        report.lines,
        started.elapsed().as_secs_f64(),
        report.imported,
        report.duplicates,
        report.skipped.len(),
        report.errors.len()
    );
    Ok(())
}

//! The command line: `serve` (the default), `migrate`, `reindex`, `agent create`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::auth;
use crate::domain::{EmailAddress, Role};
use crate::search::SearchIndex;
use crate::search::indexer::Indexer;
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
            let (index, writer) = SearchIndex::open(&settings.index.path, settings.index.writer_memory_mb)?;
            let started = std::time::Instant::now();
            let count = Indexer::new(index, writer, store.clone()).rebuild().await?;
            store.close().await;
            println!(
                "reindexed {count} interactions in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Command::Agent(AgentCommand::Create { email, name, role }) => {
            let email = EmailAddress::parse(&email).map_err(|e| CliError::Invalid(format!("--email: {e}")))?;
            let role: Role = role.parse().map_err(|e| CliError::Invalid(format!("--role: {e}")))?;
            let (password, generated) = match std::env::var("SWITCHBOARD_AGENT_PASSWORD") {
                Ok(p) => (p, false),
                Err(_) => (auth::new_secret(""), true),
            };
            let hash = auth::hash_password(&password).map_err(|e| CliError::Invalid(e.to_string()))?;
            let store = Store::connect(settings.database.url(), 1).await?;
            let agent = store
                .create_agent(NewAgent {
                    email,
                    name,
                    role,
                    password_hash: Some(hash),
                })
                .await?;
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

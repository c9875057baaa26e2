use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = switchboard::cli::Cli::parse();
    switchboard::cli::run(cli).await?;
    Ok(())
}

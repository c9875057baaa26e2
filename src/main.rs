use clap::Parser;

/// mimalloc: with glibc's allocator, malloc and free took 17% of the CPU of the webhook benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = switchboard::cli::Cli::parse();
    switchboard::cli::run(cli).await?;
    Ok(())
}

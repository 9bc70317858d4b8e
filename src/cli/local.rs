//! `recflow local`: the embedded emulator on its own, for the AWS CLI, notebooks and SDKs.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::common::ExitCode;
use crate::local::emulator::{Emulator, LocalConfig};
use crate::local::seed::{SeedOptions, write_demo_data};

pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub port: u16,
    pub time_scale: f64,
}

pub async fn serve(opts: ServeOptions) -> Result<ExitCode> {
    let mut config = LocalConfig::new(&opts.data_dir);
    config.port = opts.port;
    config.time_scale = opts.time_scale;
    // Signal handlers first: a supervisor may send SIGTERM as soon as it reads the endpoints.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let emulator = Emulator::start(&config).await.context("starting the local emulator")?;
    println!("recflow local emulator over {}", opts.data_dir.display());
    println!("  Personalize  {}", emulator.personalize.endpoint());
    println!("  S3           {}", emulator.s3.endpoint());
    println!(
        "  EventBridge  {}  (events recorded in {})",
        emulator.events.endpoint(),
        emulator.events.log_path().display()
    );
    println!("Point an AWS SDK or the AWS CLI at it:");
    for (key, value) in emulator.environment() {
        println!("export {key}={value}");
    }
    std::io::Write::flush(&mut std::io::stdout()).context("printing the endpoints")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping the local emulator");
    emulator.shutdown().await;
    Ok(ExitCode::Succeeded)
}

pub struct SeedCommand {
    pub data_dir: PathBuf,
    pub bucket: String,
    pub options: SeedOptions,
}

pub fn seed(cmd: SeedCommand) -> Result<ExitCode> {
    let root = cmd.data_dir.join("s3");
    let summary = write_demo_data(&root, &cmd.bucket, &cmd.options)
        .with_context(|| format!("writing the demo data under {}", root.display()))?;
    println!(
        "wrote {} interactions of {} users over {} items:\n  s3://{}/{}\n  s3://{}/{}",
        summary.interactions,
        summary.users,
        summary.items,
        cmd.bucket,
        summary.interactions_key,
        cmd.bucket,
        summary.users_key
    );
    Ok(ExitCode::Succeeded)
}

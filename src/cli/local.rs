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
    super::common::check_time_scale(opts.time_scale)?;
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
    println!(
        "  SQS          {}  (in memory; {} EventBridge rule(s) deliver to it)",
        emulator.sqs.endpoint(),
        emulator.events.rules().len()
    );
    println!(
        "  Personalize runtime  {}  (GetRecommendations, GetPersonalizedRanking on ACTIVE campaigns)",
        emulator.personalize_runtime.endpoint()
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
    pub bucket: crate::local::s3::BucketName,
    pub options: SeedOptions,
    /// A CSV of the team's own interactions instead of the synthetic data, with `TARGET=column`
    /// pairs for columns whose names are not recognised.
    pub from_csv: Option<(PathBuf, String)>,
}

pub fn seed(cmd: SeedCommand) -> Result<ExitCode> {
    let root = cmd.data_dir.join("s3");
    let summary = match &cmd.from_csv {
        Some((file, columns)) => {
            let columns = crate::local::from_csv::parse_columns(columns).map_err(super::common::usage)?;
            crate::local::from_csv::load(file, &root, cmd.bucket.as_str(), &columns)
                .map_err(|e| super::common::usage(e.to_string()))?
        }
        None => write_demo_data(&root, cmd.bucket.as_str(), &cmd.options)
            .with_context(|| format!("writing the demo data under {}", root.display()))?,
    };
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
    let root = cmd.data_dir.parent().unwrap_or(std::path::Path::new(".recflow"));
    let data_dir = if root == std::path::Path::new(".recflow") {
        String::new()
    } else {
        format!(" --data-dir {}", root.display())
    };
    println!(
        "Next: `recflow run workflows/nightly-refresh.asl.json --local{data_dir}` imports, trains and publishes today's picks from it."
    );
    Ok(ExitCode::Succeeded)
}

//! The recflow command line: turns arguments into options and calls the library.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use recflow::cli::{self, ExitCode, OutputFormat};

#[derive(Parser)]
#[command(
    name = "recflow",
    version,
    about = "Run Amazon Personalize batch-recommendation workflows as durable Amazon States Language state machines",
    long_about = "recflow runs Amazon States Language (ASL) workflows with an embedded engine that checkpoints \
to JSON after every transition, so an execution survives crashes and restarts and resumes exactly where it stopped.\n\n\
Exit codes: 0 the execution succeeded, 1 it failed (Error and Cause are printed), 2 bad usage, an invalid \
definition, or anything else that kept it from running.",
    after_help = "Examples:\n  recflow validate workflows/*.asl.json\n  recflow run workflows/nightly-refresh.asl.json --local\n  recflow run workflows/nightly-refresh-portable.asl.json --mock workflows/nightly-refresh-portable.mock.json --time-scale 600\n  recflow status\n  recflow history <NAME>\n  recflow resume <NAME>\n  recflow graph workflows/nightly-refresh.asl.json > nightly.mmd"
)]
struct Args {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log level (error, warn, info, debug, trace) or a tracing filter such as `recflow=debug`
    /// [default: info; warn for `run` on a terminal, which shows live progress instead].
    #[arg(long, global = true, env = "RECFLOW_LOG", value_parser = parse_log_level)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check definitions; print every problem with its state and field.
    Validate(cli::validate::ValidateArgs),
    /// Start an execution and drive it to its end, checkpointing after every transition.
    Run(Box<cli::run::RunArgs>),
    /// Continue an unfinished execution from its checkpoint, the way it was started (--mock,
    /// --local and the time scale are taken from the run unless given here).
    Resume(cli::resume::ResumeArgs),
    /// Show one execution (like DescribeExecution), or list all of them.
    Status(cli::status::StatusArgs),
    /// Show an execution's history events.
    History(cli::history::HistoryArgs),
    /// The embedded emulator: a local Personalize, S3 and EventBridge for any AWS SDK or the AWS CLI.
    #[command(subcommand)]
    Local(LocalCommand),
    /// Draw a workflow as a Mermaid stateDiagram-v2 (default) or Graphviz DOT.
    Graph(cli::graph::GraphArgs),
    /// Run the workflows of a recflow.toml as a long-lived process: their schedules, an HTTP API
    /// and a status page (http://127.0.0.1:7400/), executions left unfinished resumed at start.
    Daemon(Box<cli::daemon::DaemonArgs>),
    /// Print the next fire times of a schedule: EventBridge's cron(...) or rate(...), or classic
    /// cron, in a time zone.
    Schedule(cli::schedule::ScheduleArgs),
    /// Rewrite a workflow for AWS Step Functions (plain ASL, or a CloudFormation template).
    Export(cli::export::ExportArgs),
    /// Print the least-privilege IAM policy for the workflows' task calls.
    IamPolicy(cli::iam_policy::IamPolicyArgs),
}

#[derive(Subcommand)]
enum LocalCommand {
    /// Serve Personalize on --port, S3 on --port + 1, EventBridge on --port + 2, SQS on
    /// --port + 3 and the Personalize runtime on --port + 4 (loopback), and print the environment
    /// that points AWS SDKs and the AWS CLI at them. Ctrl-C stops.
    Serve {
        /// recflow's folder: the emulator's state, models, S3 objects and recorded events live in
        /// <DIR>/local (the same place `recflow run --local` uses) and survive restarts.
        #[arg(long, env = "RECFLOW_DATA_DIR", default_value = ".recflow", value_name = "DIR")]
        data_dir: PathBuf,
        /// Personalize's port; S3, EventBridge, SQS and the Personalize runtime take the next four.
        /// 0 picks free ports.
        #[arg(long, default_value_t = 7300)]
        port: u16,
        /// Run job lifecycles this many times faster (a job takes a few seconds at 1).
        #[arg(long, default_value_t = 1.0, value_name = "N")]
        time_scale: f64,
    },
    /// Write a synthetic data set into the local bucket: interactions CSV (power-law item
    /// popularity, users with latent tastes, 90 days) and a users JSON Lines file for batch input.
    Seed {
        /// recflow's folder: the local bucket is <DIR>/local/s3/<bucket>.
        #[arg(long, env = "RECFLOW_DATA_DIR", default_value = ".recflow", value_name = "DIR")]
        data_dir: PathBuf,
        /// The local bucket to write into; S3's bucket naming rules apply (3-63 lowercase
        /// letters, digits, '.' and '-').
        #[arg(long, default_value = "recflow-demo")]
        bucket: recflow::local::s3::BucketName,
        #[arg(long, default_value_t = 2000)]
        users: usize,
        #[arg(long, default_value_t = 500)]
        items: usize,
        #[arg(long, default_value_t = 50_000)]
        interactions: usize,
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// Taste clusters planted among users and items.
        #[arg(long, default_value_t = 8)]
        clusters: usize,
        /// The same seed and sizes give byte-identical files.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Load your own interactions CSV (with a header) instead of synthetic data: columns named
        /// like USER_ID/userId/user_id, ITEM_ID/itemId/movieId, TIMESTAMP/timestamp (epoch seconds)
        /// and optionally EVENT_TYPE are recognised, so MovieLens' ratings.csv loads as it is.
        #[arg(long, value_name = "FILE")]
        from_csv: Option<PathBuf>,
        /// With --from-csv: name the source column of each interactions column,
        /// e.g. `USER_ID=customer,ITEM_ID=sku,TIMESTAMP=ts`.
        #[arg(long, value_name = "MAP", requires = "from_csv", default_value = "")]
        columns: String,
    },
}

fn main() -> std::process::ExitCode {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`recflow history NAME | head -1`)
    // fails every write and `println!` panics. Restore the Unix default: the process ends quietly,
    // as `cat` does.
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = Args::parse();
    let progress = matches!(&args.command, Command::Run(run) if run.output == OutputFormat::Human)
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let level = args.log_level.clone().unwrap_or_else(|| if progress { "warn" } else { "info" }.to_string());
    init_logging(args.log_format, &level);
    // The emulator serves three servers and runs jobs beside them, and a daemon serves its API
    // beside many executions: give them worker threads. A workflow run is one sequential
    // execution, fastest on the current thread.
    let mut builder = match args.command {
        Command::Local(LocalCommand::Serve { .. }) | Command::Daemon(_) => {
            tokio::runtime::Builder::new_multi_thread()
        }
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("recflow: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(ExitCode::Usage as u8);
        }
    };
    let result = runtime.block_on(dispatch(args.command));
    match result {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("recflow: {}", recflow::error_chain::error_chain(e.as_ref()));
            std::process::ExitCode::from(ExitCode::Usage as u8)
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Validate(args) => cli::validate::validate(args.into_options()),
        Command::Run(args) => cli::run::run(args.into_options()?).await,
        Command::Resume(args) => cli::resume::resume(args.into_options()).await,
        Command::Status(args) => cli::status::status(args.into_options()).await,
        Command::History(args) => cli::history::history(args.into_options()).await,
        Command::Local(LocalCommand::Serve { data_dir, port, time_scale }) => {
            cli::local::serve(cli::local::ServeOptions { data_dir: data_dir.join("local"), port, time_scale })
                .await
        }
        Command::Local(LocalCommand::Seed {
            data_dir,
            bucket,
            users,
            items,
            interactions,
            days,
            clusters,
            seed,
            from_csv,
            columns,
        }) => {
            let options =
                recflow::local::seed::SeedOptions { users, items, interactions, days, clusters, seed };
            cli::local::seed(cli::local::SeedCommand {
                data_dir: data_dir.join("local"),
                bucket,
                options,
                from_csv: from_csv.map(|f| (f, columns)),
            })
        }
        Command::Graph(args) => cli::graph::graph(args.into_options()),
        Command::Schedule(args) => cli::schedule::schedule(args),
        Command::Daemon(args) => cli::daemon::daemon(*args).await,
        Command::Export(args) => cli::export::export(args),
        Command::IamPolicy(args) => cli::iam_policy::iam_policy(args),
    }
}

/// A level, or a filter of `target=level` directives; a bare word that is not a level (`debgu`)
/// is refused, where tracing would take it for a target and log nothing.
fn parse_log_level(text: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    for directive in text.split(',').map(str::trim) {
        let level = directive.rsplit_once('=').map_or(directive, |(_, level)| level);
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            let near = LEVELS
                .iter()
                .filter(|l| strsim::levenshtein(l, &level.to_ascii_lowercase()) <= 2)
                .min_by_key(|l| strsim::levenshtein(l, &level.to_ascii_lowercase()));
            return Err(format!(
                "'{level}' is not a log level (error, warn, info, debug, trace, off){}",
                near.map(|n| format!("; did you mean '{n}'?")).unwrap_or_default()
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(text).map(|_| text.to_string()).map_err(|e| e.to_string())
}

fn init_logging(format: LogFormat, level: &str) {
    // Off EC2 the SDK's region chain warns, three times and with the whole HTTP response, that
    // IMDS did not answer, before recflow's own one-line "no AWS region" says what to do.
    // A filter that names aws_config itself keeps the SDK's messages.
    let level = if level.contains("aws_config") {
        level.to_string()
    } else {
        format!("{level},aws_config::imds=error")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().with_current_span(true).init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}

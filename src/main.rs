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

#[derive(clap::Args)]
struct Store {
    /// recflow's folder: checkpoints in <DIR>/executions, the embedded emulator in <DIR>/local.
    #[arg(long, env = "RECFLOW_DATA_DIR", default_value = ".recflow", value_name = "DIR")]
    data_dir: PathBuf,
    /// Where executions are checkpointed, one folder per execution [default: <data-dir>/executions].
    /// `s3://bucket/prefix/` keeps them in S3 with conditional writes (S3 from the environment:
    /// AWS, or AWS_ENDPOINT_URL_S3 for a local S3 such as `recflow local serve`'s).
    #[arg(long, env = "RECFLOW_CHECKPOINT_DIR", value_name = "DIR")]
    checkpoint_dir: Option<PathBuf>,
}

impl Store {
    fn checkpoint_dir(&self) -> PathBuf {
        self.checkpoint_dir.clone().unwrap_or_else(|| self.data_dir.join("executions"))
    }
}

#[derive(clap::Args)]
struct Tasks {
    /// Scripted task answers per state name, in the spirit of Step Functions Local's mock files:
    /// {"State": {"Return": {...}}, "Other": [{"Throw": {"Error": "E", "Cause": "C"}}, {"Return": 1}]}.
    /// The n-th call of a state gets the n-th answer; the last one repeats.
    #[arg(long, value_name = "FILE")]
    mock: Option<PathBuf>,
    /// Append one JSON line per scripted task call (state, attempt, idempotency key) to FILE.
    #[arg(long, value_name = "FILE", requires = "mock")]
    mock_call_log: Option<PathBuf>,
    /// Run the tasks against the embedded emulator (Personalize, S3, EventBridge on free
    /// loopback ports, data in <data-dir>/local): no AWS account needed. It creates or reuses the
    /// demo dataset group, dataset and solution, seeds demo data into s3://recflow-demo/ when it
    /// is empty, and fills the execution input with their ARNs and paths (--input overrides).
    /// Without --local and --mock, tasks call AWS with the standard credential chain, region,
    /// AWS_PROFILE and AWS_ENDPOINT_URL_* variables.
    #[arg(long, conflicts_with = "mock")]
    local: bool,
    /// Run Waits, retry delays and polls this many times faster than real time (demos, trials);
    /// with --local the emulated jobs run at the same speed [default: 600 with --local, else 1].
    #[arg(long, value_name = "N")]
    time_scale: Option<f64>,
    /// Skip fsync: checkpoints survive a killed process but not a power loss.
    #[arg(long)]
    no_fsync: bool,
    /// Put an event on this EventBridge bus when an execution starts and when it ends (source
    /// `recflow`, detail-type `Recflow Execution Status Change`, Step Functions' status-change
    /// detail). With --local it is the emulator's bus; otherwise AWS's (with --mock too). A failed
    /// put is retried and never fails the workflow.
    #[arg(long, value_name = "NAME", env = "RECFLOW_EVENTS_BUS")]
    events_bus: Option<String>,
}

impl Tasks {
    fn options(&self, store: &Store) -> cli::integrations::TaskOptions {
        cli::integrations::TaskOptions {
            mock: self.mock.clone(),
            mock_call_log: self.mock_call_log.clone(),
            local: self.local,
            data_dir: store.data_dir.clone(),
            time_scale: self.time_scale,
            events_bus: self.events_bus.clone(),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Check definitions; print every problem with its state and field.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        output: OutputFormat,
    },
    /// Start an execution and drive it to its end, checkpointing after every transition.
    Run {
        /// The ASL definition (JSON), or with --config a workflow's name in that file.
        file: PathBuf,
        /// A recflow.toml naming workflows (definition, input, schedules, checkpoint location,
        /// policies): FILE is then a workflow's name. Flags and RECFLOW_* variables override it.
        #[arg(long, value_name = "TOML", env = "RECFLOW_CONFIG")]
        config: Option<PathBuf>,
        /// Execution input as JSON text (default {}); RECFLOW_INPUT is how ECS container overrides
        /// and EventBridge input transformers pass it.
        #[arg(long, value_name = "JSON", env = "RECFLOW_INPUT")]
        input: Option<String>,
        /// Read the execution input from a file (`-`: standard input).
        #[arg(long, value_name = "FILE")]
        input_file: Option<PathBuf>,
        /// Execution name (default: <workflow>-<UTC time>-<random>).
        #[arg(long)]
        name: Option<String>,
        /// For a container a scheduler starts: continue the oldest unfinished execution of this
        /// workflow in the checkpoint folder (with --name: that one) and start a new one only when
        /// there is none. A second process on the same execution is refused, naming the holder.
        #[arg(long, conflicts_with = "no_checkpoint")]
        resume_or_start: bool,
        /// Stop (exit 0, everything checkpointed) when nothing would be due before this much
        /// wall time has passed: the execution sits in a Wait, a retry delay or a job's next poll
        /// past it. Prints when to start again. Examples: 10m, 90s, 1h30m.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        max_runtime: Option<std::time::Duration>,
        #[command(flatten)]
        store: Store,
        /// Keep the execution in memory only: no checkpoint, no history, nothing to resume. The
        /// tasks still run (with --local on the emulator; without it, on AWS): pair it with
        /// --mock for a dry run.
        #[arg(long)]
        no_checkpoint: bool,
        #[command(flatten)]
        tasks: Tasks,
        /// The largest state input or output, in bytes of JSON; past it the execution fails with
        /// States.DataLimitExceeded (Step Functions' limit is 262144, 256 KiB).
        #[arg(long, value_name = "BYTES", default_value_t = 262_144)]
        max_payload_bytes: u64,
        /// The most history events an execution may write before it fails (Step Functions stops
        /// standard workflows at 25000); it bounds a runaway loop.
        #[arg(long, value_name = "N", default_value_t = 25_000)]
        max_history_events: u64,
        /// The most Map iterations that run at once, whatever a Map's MaxConcurrency says (0
        /// there means no bound of its own); Step Functions runs at most 40 per inline Map.
        #[arg(long, value_name = "N", default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..))]
        max_concurrency: u64,
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        output: OutputFormat,
    },
    /// Continue an unfinished execution from its checkpoint, the way it was started (--local and
    /// the time scale are taken from the run unless given here).
    Resume {
        name: String,
        #[command(flatten)]
        store: Store,
        #[command(flatten)]
        tasks: Tasks,
        /// Stop (exit 0, checkpointed) when nothing would be due before this much wall time, as
        /// for `run --max-runtime`.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        max_runtime: Option<std::time::Duration>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        output: OutputFormat,
    },
    /// Show one execution (like DescribeExecution), or list all of them.
    Status {
        name: Option<String>,
        #[command(flatten)]
        store: Store,
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        output: OutputFormat,
    },
    /// Show an execution's history events.
    History {
        name: String,
        #[command(flatten)]
        store: Store,
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        output: OutputFormat,
    },
    /// The embedded emulator: a local Personalize, S3 and EventBridge for any AWS SDK or the AWS CLI.
    #[command(subcommand)]
    Local(LocalCommand),
    /// Draw a workflow as a Mermaid stateDiagram-v2 (default) or Graphviz DOT.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = cli::graph::GraphFormat::Mermaid)]
        format: cli::graph::GraphFormat,
    },
}

#[derive(Subcommand)]
enum LocalCommand {
    /// Serve Personalize on --port, S3 on --port + 1 and EventBridge on --port + 2 (loopback),
    /// and print the environment that points AWS SDKs and the AWS CLI at them. Ctrl-C stops.
    Serve {
        /// recflow's folder: the emulator's state, models, S3 objects and recorded events live in
        /// <DIR>/local (the same place `recflow run --local` uses) and survive restarts.
        #[arg(long, env = "RECFLOW_DATA_DIR", default_value = ".recflow", value_name = "DIR")]
        data_dir: PathBuf,
        /// Personalize's port; S3 and EventBridge take the next two. 0 picks free ports.
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
        #[arg(long, default_value = "recflow-demo")]
        bucket: String,
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
    let progress = matches!(args.command, Command::Run { output: OutputFormat::Human, .. })
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let level = args.log_level.clone().unwrap_or_else(|| if progress { "warn" } else { "info" }.to_string());
    init_logging(args.log_format, &level);
    // The emulator serves three servers and runs jobs beside them: give it worker threads. A
    // workflow run is one sequential execution, fastest on the current thread.
    let mut builder = match args.command {
        Command::Local(LocalCommand::Serve { .. }) => tokio::runtime::Builder::new_multi_thread(),
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
        Command::Validate { files, output } => {
            cli::validate::validate(cli::validate::ValidateOptions { files, output })
        }
        Command::Run {
            file,
            config,
            input,
            input_file,
            name,
            resume_or_start,
            max_runtime,
            store,
            no_checkpoint,
            tasks,
            max_payload_bytes,
            max_history_events,
            max_concurrency,
            output,
        } => {
            let (mut file, mut input, mut input_file, mut store, mut tasks) =
                (file, input, input_file, store, tasks);
            let (mut resume_or_start, mut max_runtime) = (resume_or_start, max_runtime);
            if let Some(config) = config {
                // The file's settings fill what flags and RECFLOW_* variables left open.
                let config = cli::config::Config::load(&config)?;
                let workflow = config.workflow(&file.to_string_lossy())?.clone();
                file = workflow.definition;
                if input.is_none() && input_file.is_none() {
                    input = workflow.input.map(|v| v.to_string());
                    input_file = workflow.input_file;
                }
                store.checkpoint_dir = store.checkpoint_dir.or(workflow.checkpoint_dir);
                tasks.events_bus = tasks.events_bus.or(workflow.events_bus);
                tasks.time_scale = tasks.time_scale.or(workflow.time_scale);
                tasks.local = tasks.local || (workflow.local && tasks.mock.is_none());
                max_runtime = max_runtime.or(workflow.max_runtime);
                resume_or_start = resume_or_start || workflow.resume_or_start;
            }
            cli::run::run(cli::run::RunOptions {
                file,
                input,
                input_file,
                name,
                resume_or_start,
                max_runtime,
                checkpoint_dir: store.checkpoint_dir(),
                no_checkpoint,
                no_fsync: tasks.no_fsync,
                tasks: tasks.options(&store),
                limits: recflow::engine::execution::Limits {
                    max_payload_bytes,
                    max_history_events,
                    max_concurrency,
                },
                output,
            })
            .await
        }
        Command::Resume { name, store, tasks, max_runtime, output } => {
            cli::resume::resume(cli::resume::ResumeOptions {
                name,
                max_runtime,
                checkpoint_dir: store.checkpoint_dir(),
                no_fsync: tasks.no_fsync,
                tasks: tasks.options(&store),
                output,
            })
            .await
        }
        Command::Status { name, store, output } => {
            cli::status::status(cli::status::StatusOptions {
                name,
                checkpoint_dir: store.checkpoint_dir(),
                output,
            })
            .await
        }
        Command::History { name, store, output } => {
            cli::history::history(cli::history::HistoryOptions {
                name,
                checkpoint_dir: store.checkpoint_dir(),
                output,
            })
            .await
        }
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
        Command::Graph { file, format } => cli::graph::graph(cli::graph::GraphOptions { file, format }),
    }
}

/// A level, or a filter of `target=level` directives; a bare word that is not a level (`debgu`)
/// is refused, where tracing would take it for a target and log nothing.
fn parse_log_level(text: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    for directive in text.split(',').map(str::trim) {
        let level = directive.rsplit_once('=').map_or(directive, |(_, level)| level);
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            let near = LEVELS.iter().min_by_key(|l| strsim::levenshtein(l, &level.to_ascii_lowercase()));
            return Err(format!(
                "'{level}' is not a log level (error, warn, info, debug, trace, off){}",
                near.map(|n| format!("; did you mean '{n}'?")).unwrap_or_default()
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(text).map(|_| text.to_string()).map_err(|e| e.to_string())
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
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

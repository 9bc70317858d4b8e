//! `recflow export FILE --target stepfunctions`: the workflow in plain ASL for AWS Step
//! Functions, or wrapped in a CloudFormation template (`--format cloudformation`).

use std::path::PathBuf;

use anyhow::Result;

use super::common::{ExitCode, load_definition, usage};
use crate::export::cloudformation;
use crate::export::stepfunctions::{ExportOptions, to_step_functions};

/// Where an export goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// AWS Step Functions.
    Stepfunctions,
}

/// What an export prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// The definition (Amazon States Language, JSON).
    Json,
    /// A CloudFormation template: the state machine and the role its task calls need.
    Cloudformation,
}

/// `recflow export`'s arguments.
#[derive(clap::Args)]
#[command(
    after_help = "Each `.sync` Personalize create becomes create -> Wait (60 s) -> describe -> Choice on the status, inside a Parallel state that keeps the original Retry and Catch. Today's picks (arn:recflow:::picks:publish) needs --picks-lambda: a Lambda function that does its work."
)]
pub struct ExportArgs {
    /// The workflow (ASL JSON).
    pub file: PathBuf,
    /// The engine to export for (AWS Step Functions is the one there is)
    #[arg(long, value_enum)]
    pub target: Target,
    /// The definition alone (json), or wrapped in an AWS::StepFunctions::StateMachine with its
    /// IAM role (cloudformation)
    #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
    pub format: ExportFormat,
    /// A Lambda function ARN that publishes today's picks in Step Functions (it takes the picks
    /// task's parameters, returns its result and raises its error names).
    #[arg(long, value_name = "ARN")]
    pub picks_lambda: Option<String>,
    /// The state machine's default name in the CloudFormation template [default: the file's
    /// name without .asl.json].
    #[arg(long)]
    pub name: Option<String>,
}

pub fn export(args: ExportArgs) -> Result<ExitCode> {
    let (_, definition) = load_definition(&args.file)?;
    let Target::Stepfunctions = args.target;
    let opts = ExportOptions { picks_lambda: args.picks_lambda };
    let source = args.file.display().to_string();
    let prefixed = |e: crate::export::ExportError| {
        usage(e.0.iter().map(|l| format!("{source}: {l}")).collect::<Vec<_>>().join("\n"))
    };
    let exported = to_step_functions(&definition, &opts).map_err(prefixed)?;
    let out = match args.format {
        ExportFormat::Json => exported,
        ExportFormat::Cloudformation => {
            let file_name = args.file.file_name().and_then(|n| n.to_str()).unwrap_or("workflow");
            let default = file_name.trim_end_matches(".json").trim_end_matches(".asl");
            cloudformation::template(&exported, args.name.as_deref().unwrap_or(default)).map_err(prefixed)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::Succeeded)
}

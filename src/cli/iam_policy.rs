//! `recflow iam-policy FILE...`: the least-privilege IAM policy for the workflows' task calls.

use std::path::PathBuf;

use anyhow::Result;

use super::common::{ExitCode, load_definition, usage};
use crate::export::iam::{Caller, policy};

/// Who makes the calls the policy allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum For {
    /// recflow itself (its .sync polling and job adoption included): the ECS task or pod role.
    Recflow,
    /// AWS Step Functions running the definitions as given (export them first).
    Stepfunctions,
}

/// `recflow iam-policy`'s arguments.
#[derive(clap::Args)]
pub struct IamPolicyArgs {
    /// The workflows (ASL JSON) whose calls the policy allows, one or more
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[arg(long = "for", value_enum, default_value_t = For::Recflow)]
    pub caller: For,
}

pub fn iam_policy(args: IamPolicyArgs) -> Result<ExitCode> {
    let mut definitions = Vec::new();
    for file in &args.files {
        definitions.push(load_definition(file)?.1);
    }
    let caller = match args.caller {
        For::Recflow => Caller::Recflow,
        For::Stepfunctions => Caller::StepFunctions,
    };
    let refs: Vec<&serde_json::Value> = definitions.iter().collect();
    let document = policy(&refs, caller).map_err(|e| usage(e.to_string()))?;
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(ExitCode::Succeeded)
}

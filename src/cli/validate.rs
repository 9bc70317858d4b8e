//! `recflow validate`: check definitions without running them.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::{Value, json};

use super::common::{ExitCode, OutputFormat};
use crate::asl::definition::{StateMachine, UNSUPPORTED};

/// `recflow validate`'s arguments, as clap reads them.
#[derive(clap::Args)]
pub struct ValidateArgs {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

impl ValidateArgs {
    /// The options of a validation.
    pub fn into_options(self) -> ValidateOptions {
        ValidateOptions { files: self.files, output: self.output }
    }
}

/// A validation's options.
pub struct ValidateOptions {
    pub files: Vec<PathBuf>,
    pub output: OutputFormat,
}

pub fn validate(opts: ValidateOptions) -> Result<ExitCode> {
    let mut all_ok = true;
    let mut report = Vec::new();
    for file in &opts.files {
        let name = file.display().to_string();
        let result = std::fs::read_to_string(file).map_err(|e| vec![e.to_string()]).and_then(|text| {
            let machine = StateMachine::parse(&text)
                .map_err(|errors| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
            // The definition parsed, so it is JSON; its Tasks are checked against the integrations.
            let value: Value = serde_json::from_str(&text).map_err(|e| vec![e.to_string()])?;
            let problems = crate::tasks::check_definition(&value);
            if problems.is_empty() {
                Ok(machine)
            } else {
                Err(problems.iter().map(|e| e.to_string()).collect())
            }
        });
        match result {
            Ok(machine) => {
                if opts.output == OutputFormat::Human {
                    let n = machine.states.len();
                    println!("{name}: valid ({n} state{})", if n == 1 { "" } else { "s" });
                    // Valid ASL that recflow itself cannot run without scripted answers.
                    for (state, resource) in machine.task_resources() {
                        if !crate::tasks::serves(resource) {
                            println!(
                                "{name}: note: States.{state}.Resource: recflow has no integration for '{resource}'; `recflow run` needs --mock answers for it"
                            );
                        }
                    }
                }
                report.push(json!({"file": name, "valid": true, "errors": []}));
            }
            Err(errors) => {
                all_ok = false;
                if opts.output == OutputFormat::Human {
                    for e in &errors {
                        let kind = if e.contains(UNSUPPORTED) { "unsupported" } else { "error" };
                        println!("{name}: {kind}: {e}");
                    }
                }
                report.push(json!({"file": name, "valid": false, "errors": errors}));
            }
        }
    }
    if opts.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&Value::Array(report))?);
    }
    Ok(if all_ok { ExitCode::Succeeded } else { ExitCode::Usage })
}

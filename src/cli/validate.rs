//! `recflow validate`: check definitions without running them.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::{Value, json};

use super::common::{ExitCode, OutputFormat};
use crate::asl::definition::{StateMachine, UNSUPPORTED};

/// `recflow validate`'s arguments, as clap reads them.
#[derive(clap::Args)]
pub struct ValidateArgs {
    /// ASL definitions (JSON) to check, one or more
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
            let parsed = StateMachine::parse(&text);
            // Every problem in one pass: the Tasks are checked against the integrations even when
            // the definition has other errors (as long as it is JSON).
            let problems = serde_json::from_str::<Value>(&text)
                .map(|value| crate::tasks::check_definition(&value))
                .unwrap_or_default();
            match parsed {
                Ok(machine) if problems.is_empty() => Ok(machine),
                Ok(_) => Err(problems.iter().map(|e| e.to_string()).collect()),
                Err(errors) => Err(errors.iter().chain(&problems).map(|e| e.to_string()).collect()),
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

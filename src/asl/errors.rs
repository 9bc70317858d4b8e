//! The two error shapes of the language: a definition error found before a run (it names the
//! place in the document), and a runtime error raised during a run (an ASL error name and a
//! cause, the `{"Error", "Cause"}` pair that Catch and Fail see).

use std::fmt;

/// The error names Step Functions itself raises (developer guide, "Error handling in Step
/// Functions"), one place for the engine, the task integrations and Retry/Catch matching.
pub mod names {
    /// Matches any error name but `States.Runtime` in ErrorEquals.
    pub const ALL: &str = "States.ALL";
    /// A task failed; in ErrorEquals it matches every error but `States.Timeout`.
    pub const TASK_FAILED: &str = "States.TaskFailed";
    /// A task ran longer than TimeoutSeconds, or the execution's TimeoutSeconds ran out.
    pub const TIMEOUT: &str = "States.Timeout";
    /// The definition failed against its data; never retried or caught.
    pub const RUNTIME: &str = "States.Runtime";
    /// A Choice state matched no rule and has no Default.
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    /// ResultPath could not place the result (or a Catcher's error output) in the state's input.
    /// The error-handling page also lists `States.ResultPathMatchFailure` for this, but AWS
    /// raises `States.ReferencePathConflict` (aws/aws-cdk#29473, cdklabs/construct-hub#459,
    /// localstack/localstack#1854), so recflow does.
    pub const REFERENCE_PATH_CONFLICT: &str = "States.ReferencePathConflict";
    /// Listed on the error-handling page; matched in ErrorEquals, never raised (see
    /// [`REFERENCE_PATH_CONFLICT`]).
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    /// A state's input or output passed the payload limit; terminal like `States.Runtime`.
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    /// An intrinsic function failed on its arguments.
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    /// More Map iterations failed than ToleratedFailureCount / ToleratedFailurePercentage allow.
    pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
    /// A JSONata expression failed, or gave a value its field cannot take (developer guide,
    /// "Transforming data with JSONata").
    pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";
}

/// A problem in a state machine definition. `at` is a dotted location such as
/// `States.Train.Retry[0].BackoffRate` (empty for the document itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    pub at: String,
    pub message: String,
}

impl DefinitionError {
    pub fn new(at: impl Into<String>, message: impl Into<String>) -> Self {
        DefinitionError { at: at.into(), message: message.into() }
    }
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.at, self.message)
        }
    }
}

impl std::error::Error for DefinitionError {}

/// An error raised while running, by its ASL name (`States.Runtime`, `States.Timeout`,
/// `Personalize.ResourceInUseException`, ...) with a human cause.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatesError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause")]
    pub cause: String,
}

impl StatesError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        StatesError { error: error.into(), cause: cause.into() }
    }

    /// `States.Runtime`: a failure of the definition against its data. No Retry or Catch
    /// applies to it (Step Functions ends the execution).
    pub fn runtime(cause: impl Into<String>) -> Self {
        StatesError::new(names::RUNTIME, cause)
    }
}

impl fmt::Display for StatesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.cause)
    }
}

impl std::error::Error for StatesError {}

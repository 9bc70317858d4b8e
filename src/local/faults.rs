//! Fault injection for tests, shared by the local services: failing or dropping the next calls
//! of an operation, failing or slowing the next Personalize job of a kind. Switched over
//! `POST /__recflow/faults` on a service's port, or through its handle.

use std::collections::HashMap;
use std::sync::Mutex;

/// The longest delay `slowNextJob` may add (one year of emulated time).
pub const MAX_SLOW_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

use serde::{Deserialize, Serialize};

/// The job kinds a job fault can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobKind {
    DatasetImportJob,
    SolutionVersion,
    BatchInferenceJob,
    BatchSegmentJob,
    Campaign,
}

/// What happens to a faulted call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationFault {
    /// HTTP 429 with `ThrottlingException`.
    Throttle,
    /// HTTP 500 with `InternalFailure`.
    #[serde(rename = "http500")]
    Http500,
    /// The connection is closed without a response.
    Drop,
}

/// One fault, in the JSON form the admin endpoint takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Fault {
    /// `{"operation": "CreateSolutionVersion", "fault": "throttle", "count": 2}`
    Operation {
        operation: String,
        fault: OperationFault,
        #[serde(default = "one")]
        count: u32,
    },
    /// `{"failNextJob": "SolutionVersion", "reason": "..."}`
    FailNextJob {
        #[serde(rename = "failNextJob")]
        kind: JobKind,
        reason: String,
    },
    /// `{"slowNextJob": "BatchInferenceJob", "seconds": 30}` (emulated seconds, added to
    /// CREATE IN_PROGRESS).
    SlowNextJob {
        #[serde(rename = "slowNextJob")]
        kind: JobKind,
        seconds: f64,
    },
}

fn one() -> u32 {
    1
}

#[derive(Debug, Default)]
struct Table {
    operations: HashMap<String, (OperationFault, u32)>,
    fail_next: HashMap<JobKind, String>,
    slow_next: HashMap<JobKind, f64>,
}

/// The armed faults of one server. Not persisted: faults belong to a test, not to the state.
#[derive(Debug, Default)]
pub struct Faults {
    table: Mutex<Table>,
}

/// The faults a new job takes over.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct JobFaults {
    pub fail: Option<String>,
    pub extra_seconds: f64,
}

impl Faults {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Arms a fault. A slow-job delay is clamped to [0, one year] of emulated time.
    pub fn inject(&self, fault: Fault) {
        let mut table = self.table();
        match fault {
            Fault::Operation { operation, fault, count } => {
                if count == 0 {
                    table.operations.remove(&operation);
                } else {
                    table.operations.insert(operation, (fault, count));
                }
            }
            Fault::FailNextJob { kind, reason } => {
                table.fail_next.insert(kind, reason);
            }
            Fault::SlowNextJob { kind, seconds } => {
                let seconds = if seconds.is_finite() { seconds.clamp(0.0, MAX_SLOW_SECONDS) } else { 0.0 };
                table.slow_next.insert(kind, seconds);
            }
        }
    }

    pub fn clear(&self) {
        *self.table() = Table::default();
    }

    /// Consumes one armed fault of `operation`, if any.
    pub fn take_operation(&self, operation: &str) -> Option<OperationFault> {
        let mut table = self.table();
        let (fault, remaining) = table.operations.get_mut(operation)?;
        let fault = *fault;
        *remaining -= 1;
        if *remaining == 0 {
            table.operations.remove(operation);
        }
        Some(fault)
    }

    /// Consumes the armed faults for the next job of `kind`.
    pub(crate) fn take_job(&self, kind: JobKind) -> JobFaults {
        let mut table = self.table();
        JobFaults {
            fail: table.fail_next.remove(&kind),
            extra_seconds: table.slow_next.remove(&kind).unwrap_or(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_json_forms_parse() {
        let f: Fault = serde_json::from_str(r#"{"operation":"X","fault":"http500","count":2}"#).unwrap();
        assert_eq!(f, Fault::Operation { operation: "X".into(), fault: OperationFault::Http500, count: 2 });
        let f: Fault = serde_json::from_str(r#"{"failNextJob":"SolutionVersion","reason":"r"}"#).unwrap();
        assert_eq!(f, Fault::FailNextJob { kind: JobKind::SolutionVersion, reason: "r".into() });
        let f: Fault = serde_json::from_str(r#"{"slowNextJob":"BatchSegmentJob","seconds":3}"#).unwrap();
        assert_eq!(f, Fault::SlowNextJob { kind: JobKind::BatchSegmentJob, seconds: 3.0 });
        assert!(serde_json::from_str::<Fault>(r#"{"operation":"X","fault":"boom"}"#).is_err());
    }

    #[test]
    fn operation_faults_count_down() {
        let faults = Faults::default();
        faults.inject(Fault::Operation { operation: "A".into(), fault: OperationFault::Drop, count: 2 });
        assert_eq!(faults.take_operation("B"), None);
        assert_eq!(faults.take_operation("A"), Some(OperationFault::Drop));
        assert_eq!(faults.take_operation("A"), Some(OperationFault::Drop));
        assert_eq!(faults.take_operation("A"), None);
    }
}

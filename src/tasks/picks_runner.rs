//! The engine's side of `arn:recflow:::picks:publish`: Parameters to a [`PublishPicks`], the
//! publish itself through the run's S3 client, errors by their names.

use serde_json::Value;

use super::model::FieldProblem;
use super::picks::{PublishPicks, RESOURCE, publish};
use crate::asl::errors::StatesError;
use crate::engine::clock::Clock;
use crate::engine::task::{Answer, TaskFuture, TaskRunner};
use crate::engine::transition::TaskCall;

/// Checks a picks Task's static Parameters; each problem is split into (field, message) at the
/// first ": " of the message, which names the field.
pub fn check(resource: &str, parameters: Option<&Value>) -> Vec<FieldProblem> {
    if !resource.starts_with("arn:recflow:::picks:") {
        return Vec::new();
    }
    if resource != RESOURCE {
        return vec![("Resource".into(), format!("recflow's picks task is {RESOURCE}"))];
    }
    let empty = Value::Object(Default::default());
    PublishPicks::check_static(parameters.unwrap_or(&empty))
        .into_iter()
        .map(|m| match m.split_once(": ") {
            Some((field, message)) if !field.contains(' ') => (field.to_string(), message.to_string()),
            _ => (String::new(), m),
        })
        .collect()
}

/// Today's picks for the engine, through the run's S3 client.
pub struct PicksRunner {
    s3: aws_sdk_s3::Client,
}

impl PicksRunner {
    pub fn new(s3: aws_sdk_s3::Client) -> PicksRunner {
        PicksRunner { s3 }
    }
}

impl TaskRunner for PicksRunner {
    fn call<'a>(&'a self, call: &'a TaskCall, _clock: &'a dyn Clock) -> TaskFuture<'a> {
        Box::pin(async move {
            let request = PublishPicks::from_parameters(&call.parameters).map_err(|e| {
                StatesError::runtime(format!("The Parameters could not be used to start the Task: [{e}]"))
            })?;
            let result = publish(&self.s3, &request)
                .await
                .map_err(|e| StatesError::new(e.error_name(), e.to_string()))?;
            Ok(Answer::done(result))
        })
    }

    fn accepts(&self, _state: &str, resource: &str) -> bool {
        resource == RESOURCE
    }
}

//! Task: a call made durable before it goes out (same idempotency key after a restart), its
//! answer (done, still running, failed), Retry with checkpointed delays, and Catch.

use serde_json::Value;

use crate::asl::Env;
use crate::asl::definition::{Kind, Seconds, State, Task};
use crate::asl::errors::StatesError;
use crate::asl::retry::RUNTIME;
use crate::engine::dataflow::Ending;
use crate::engine::execution::{Entered, Phase, PollPhase, Position, TaskPhase};
use crate::engine::history::Detail;
use crate::engine::task::Answer;
use crate::engine::transition::{Tx, later, positive_integer};

impl Tx<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(in crate::engine) fn run_task(
        &mut self,
        frame: u64,
        state: &State,
        task: &Task,
        raw: Value,
        entered: &Entered,
        env: &Env,
    ) -> Result<(), StatesError> {
        let timeout_seconds = match &task.timeout {
            None => None,
            Some(Seconds::Fixed(n)) => Some(*n),
            Some(Seconds::Path(p)) => {
                let effective = self.effective_input(state, &raw, env)?;
                Some(positive_integer(
                    p.select(&effective, env).as_deref(),
                    p.as_str(),
                    "TimeoutSecondsPath",
                )?)
            }
            Some(Seconds::Expr(e)) => {
                let value = self.typed(e, env, &raw, "TimeoutSeconds", "number")?;
                Some(positive_integer(Some(&value), e.source(), "TimeoutSeconds")?)
            }
        };
        let (parameters, credentials) = self.task_request(state, &raw, env)?;
        let phase = TaskPhase {
            entered: entered.clone(),
            resource: task.resource.clone(),
            parameters,
            credentials,
            attempt: 0,
            retries: vec![0; state.retry.len()],
            not_before: None,
            timeout_seconds,
            idempotency_key: String::new(),
            poll: None,
            started: None,
        };
        self.schedule(frame, state, raw, phase);
        Ok(())
    }

    /// A task's Parameters or Arguments (or its effective input) and Credentials for one attempt.
    pub(in crate::engine) fn task_request(
        &mut self,
        state: &State,
        raw: &Value,
        env: &Env,
    ) -> Result<(Value, Option<Value>), StatesError> {
        let parameters = self.arguments(state, raw, env)?;
        let credentials = match &state.kind {
            Kind::Task(Task { credentials: Some(c), .. }) => {
                Some(self.payload(c, raw, raw, env, "Credentials")?)
            }
            _ => None,
        };
        Ok((parameters, credentials))
    }

    /// Makes a task call due: the checkpoint written after this transition is the durable
    /// "about to call" record.
    pub(in crate::engine) fn schedule(
        &mut self,
        frame: u64,
        state: &State,
        raw: Value,
        mut phase: TaskPhase,
    ) {
        phase.idempotency_key =
            format!("{}:{}:{}:{}", self.exec.name, state.name, phase.entered.event_id, phase.attempt);
        self.emit(Detail::TaskScheduled {
            state: state.name.clone(),
            resource: phase.resource.clone(),
            parameters: phase.parameters.clone(),
            attempt: phase.attempt,
            idempotency_key: phase.idempotency_key.clone(),
        });
        self.place(
            frame,
            Position { state: state.name.clone(), input: raw, phase: Phase::Task(Box::new(phase)) },
        );
    }

    pub(in crate::engine) fn task_returned(
        &mut self,
        frame: u64,
        state: &State,
        raw: Value,
        mut task: TaskPhase,
        result: Result<Answer, StatesError>,
    ) {
        let name = state.name.clone();
        let result = match result {
            Ok(Answer::Poll { token, after_seconds, status }) => {
                return self.poll_again(frame, state, raw, task, token, after_seconds, status);
            }
            Ok(Answer::Done { output: value, report }) => {
                self.emit(Detail::TaskSucceeded { state: name, output: value.clone(), report });
                let env = self.env(frame, state, &task.entered, Some(task.attempt));
                if let Err(err) = self.leave(frame, state, raw.clone(), Ending::Result(value), &env, None) {
                    self.state_error(frame, state, raw, &task.entered, err);
                }
                return;
            }
            Err(err) => err,
        };
        self.emit(Detail::TaskFailed {
            state: name.clone(),
            error: result.error.clone(),
            cause: result.cause.clone(),
        });
        if result.error == RUNTIME {
            return self.fail(frame, result);
        }
        // The first retrier whose ErrorEquals matches decides; if its attempts are spent, the
        // error goes to Catch (later retriers are not consulted, as in Step Functions).
        if let Some((i, delay)) = self.retry_delay(state, &mut task.retries, &result.error) {
            task.attempt += 1;
            let not_before = later(self.now, delay);
            task.not_before = Some(not_before);
            // A polled job is still polled after a retry (the job goes on); only the
            // attempt's TimeoutSeconds starts afresh.
            task.started = None;
            self.emit(Detail::RetryScheduled {
                state: name,
                retrier: i,
                attempt: task.attempt,
                delay_seconds: delay,
                not_before,
            });
            // Parameters are evaluated again for each attempt, as Step Functions does, so
            // `$$.State.RetryCount` (and States.UUID) differ between attempts.
            let env = self.env(frame, state, &task.entered, Some(task.attempt));
            match self.task_request(state, &raw, &env) {
                Ok((parameters, credentials)) => {
                    task.parameters = parameters;
                    task.credentials = credentials;
                }
                Err(err) => return self.state_error(frame, state, raw, &task.entered.clone(), err),
            }
            return self.schedule(frame, state, raw, task);
        }
        if !self.catch(frame, state, raw, &task.entered, &result) {
            self.fail(frame, result);
        }
    }

    /// The task runs on: keep the call due, with the runner's token, after the delay it asked
    /// for. The attempt and idempotency key stay: it is the same call, continued.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::engine) fn poll_again(
        &mut self,
        frame: u64,
        state: &State,
        raw: Value,
        mut task: TaskPhase,
        token: Value,
        after_seconds: f64,
        status: String,
    ) {
        let polls = task.poll.as_ref().map_or(0, |p| p.polls) + 1;
        let next_poll = later(self.now, if after_seconds.is_finite() { after_seconds } else { 0.0 });
        self.emit(Detail::TaskPolled { state: state.name.clone(), status, polls, next_poll });
        task.started.get_or_insert(self.now);
        task.poll = Some(PollPhase { token, polls });
        task.not_before = Some(next_poll);
        self.place(
            frame,
            Position { state: state.name.clone(), input: raw, phase: Phase::Task(Box::new(task)) },
        );
    }
}

//! Wait: Seconds, SecondsPath, Timestamp or TimestampPath (or a JSONata Seconds or Timestamp); the frame sleeps, then leaves with its
//! effective input.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::asl::Env;
use crate::asl::definition::{MAX_SECONDS, State, WaitFor, parse_timestamp};
use crate::asl::errors::StatesError;
use crate::asl::jsonata::query_error;
use crate::engine::dataflow::Ending;
use crate::engine::execution::{Entered, Phase, Position, timestamp};
use crate::engine::history::Detail;
use crate::engine::transition::{Tx, later};

impl Tx<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(in crate::engine) fn run_wait(
        &mut self,
        frame: u64,
        state: &State,
        wait: &WaitFor,
        raw: Value,
        entered: &Entered,
        env: &Env,
    ) -> Result<(), StatesError> {
        let effective = self.effective_input(state, &raw, env)?.into_owned();
        let until = self.wait_until(wait, &effective, &raw, env)?;
        if until <= self.now {
            self.leave(frame, state, raw, Ending::Own(effective), env, None)?;
        } else {
            self.emit(Detail::WaitStarted { state: state.name.clone(), until });
            let phase = Phase::Waiting { entered: entered.clone(), until };
            self.place(frame, Position { state: state.name.clone(), input: raw, phase });
        }
        Ok(())
    }

    /// When the Wait ends; `effective` is what JSONPath paths read, `raw` JSONata's
    /// `$states.input`.
    pub(in crate::engine) fn wait_until(
        &mut self,
        wait: &WaitFor,
        effective: &Value,
        raw: &Value,
        ctx: &Env,
    ) -> Result<DateTime<Utc>, StatesError> {
        let now = self.now;
        let seconds = |n: u64| later(now, n as f64);
        let until = match wait {
            WaitFor::Seconds(n) => seconds(*n),
            WaitFor::Timestamp(t) => *t,
            WaitFor::SecondsExpr(e) => {
                let value = self.typed(e, ctx, raw, "Seconds", "number")?;
                match value.as_u64() {
                    Some(n) if n <= MAX_SECONDS => seconds(n),
                    _ => {
                        return Err(query_error(format!(
                            "The JSONata expression '{}' specified for the field 'Seconds' must give a whole number of seconds from 0 to {MAX_SECONDS}, not {value}",
                            e.source()
                        )));
                    }
                }
            }
            WaitFor::TimestampExpr(e) => {
                let value = self.typed(e, ctx, raw, "Timestamp", "string")?;
                let text = value.as_str().unwrap_or_default();
                parse_timestamp(text).ok_or_else(|| {
                    query_error(format!(
                        "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {text}"
                    ))
                })?
            }
            WaitFor::SecondsPath(p) => {
                let value = p.select(effective, ctx);
                match value.as_deref().and_then(Value::as_i64) {
                    Some(n) if (0..=MAX_SECONDS as i64).contains(&n) => seconds(n as u64),
                    Some(n) if n >= 0 => {
                        return Err(StatesError::runtime(format!(
                            "The SecondsPath parameter is out of range (0 to {MAX_SECONDS}): {} == {n}",
                            p.as_str()
                        )));
                    }
                    _ => {
                        return Err(StatesError::runtime(format!(
                            "The SecondsPath parameter cannot be parsed as a long value: {} == {}",
                            p.as_str(),
                            value.as_deref().map_or("null".to_string(), Value::to_string)
                        )));
                    }
                }
            }
            WaitFor::TimestampPath(p) => {
                let value = p.select(effective, ctx);
                match value.as_deref().and_then(Value::as_str).and_then(parse_timestamp) {
                    Some(t) => t,
                    None => {
                        return Err(StatesError::runtime(format!(
                            "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {} == {}",
                            p.as_str(),
                            value.as_deref().map_or("null".to_string(), Value::to_string)
                        )));
                    }
                }
            }
        };
        // A timestamp may lie further ahead than any Wait may hold: the same bound as Seconds.
        let ahead = (until - self.now).num_seconds();
        if ahead > MAX_SECONDS as i64 {
            return Err(StatesError::runtime(format!(
                "The Wait would end at {}, {ahead} s from now, beyond the longest wait ({MAX_SECONDS} s)",
                timestamp(until)
            )));
        }
        Ok(until)
    }

    pub(in crate::engine) fn leave_wait(&mut self, frame: u64, state: &State, raw: Value, entered: &Entered) {
        let env = self.env(frame, state, entered, None);
        let left = self
            .effective_input(state, &raw, &env)
            .map(|e| e.into_owned())
            .and_then(|effective| self.leave(frame, state, raw.clone(), Ending::Own(effective), &env, None));
        if let Err(err) = left {
            self.state_error(frame, state, raw, entered, err);
        }
    }
}

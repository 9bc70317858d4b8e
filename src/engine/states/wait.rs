//! Wait: Seconds, SecondsPath, Timestamp or TimestampPath; the frame sleeps, then leaves with its
//! effective input.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::asl::definition::{MAX_SECONDS, State, WaitFor, parse_timestamp};
use crate::asl::errors::StatesError;
use crate::engine::execution::{Entered, Phase, Position, timestamp};
use crate::engine::history::Detail;
use crate::engine::transition::{Tx, apply_input_path, apply_output_path, later};

impl Tx<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(in crate::engine) fn run_wait(
        &mut self,
        frame: u64,
        state: &State,
        wait: &WaitFor,
        raw: Value,
        entered: &Entered,
        ctx: &Value,
    ) -> Result<(), StatesError> {
        let effective = apply_input_path(&state.input_path, &raw, ctx)?;
        let until = self.wait_until(wait, &effective, ctx)?;
        if until <= self.now {
            let output = apply_output_path(&state.output_path, effective.into_owned(), ctx)?;
            self.exit(frame, state, output, None);
        } else {
            self.emit(Detail::WaitStarted { state: state.name.clone(), until });
            let phase = Phase::Waiting { entered: entered.clone(), until };
            self.place(frame, Position { state: state.name.clone(), input: raw, phase });
        }
        Ok(())
    }

    pub(in crate::engine) fn wait_until(
        &self,
        wait: &WaitFor,
        effective: &Value,
        ctx: &Value,
    ) -> Result<DateTime<Utc>, StatesError> {
        let seconds = |n: u64| later(self.now, n as f64);
        let until = match wait {
            WaitFor::Seconds(n) => seconds(*n),
            WaitFor::Timestamp(t) => *t,
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
        let ctx = self.context(state, entered, None);
        let output = apply_input_path(&state.input_path, &raw, &ctx)
            .and_then(|eff| apply_output_path(&state.output_path, eff.into_owned(), &ctx));
        match output {
            Ok(output) => self.exit(frame, state, output, None),
            Err(err) => self.state_error(frame, state, raw, entered, err),
        }
    }
}

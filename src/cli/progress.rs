//! Live progress of a run on a terminal: one line per state, rewritten in place while a job is
//! polled (`[  6m 12s] TrainSolutionVersion  CREATE IN_PROGRESS, 4 Describe calls`). Times are
//! the execution's clock. Off with `--output json` or when stderr is not a terminal.

use std::io::Write;

use chrono::{DateTime, Utc};

use crate::engine::Observer;
use crate::engine::execution::Execution;
use crate::engine::history::{Detail, HistoryEvent};

/// An observer that draws progress on stderr.
pub fn observer(start: DateTime<Utc>) -> Observer<'static> {
    let mut current: Option<String> = None;
    Box::new(move |exec: &Execution, events: &[HistoryEvent]| {
        let mut err = std::io::stderr().lock();
        for event in events {
            let elapsed = (event.timestamp - start).num_milliseconds() as f64 / 1000.0;
            let line = match &event.detail {
                Detail::StateEntered { state, .. } => {
                    if current.is_some() {
                        let _ = writeln!(err);
                    }
                    current = Some(state.clone());
                    state.clone()
                }
                Detail::TaskPolled { state, status, polls, .. } => {
                    format!("{state}  {status}, {polls} Describe call{}", if *polls == 1 { "" } else { "s" })
                }
                Detail::RetryScheduled { state, delay_seconds, attempt, .. } => {
                    format!("{state}  retry {attempt} in {}", clock(*delay_seconds))
                }
                Detail::TaskFailed { state, error, .. } => format!("{state}  {error}"),
                Detail::WaitStarted { state, until } => {
                    format!(
                        "{state}  waiting {}",
                        clock((*until - event.timestamp).num_milliseconds() as f64 / 1000.0)
                    )
                }
                _ => continue,
            };
            let _ = write!(err, "\r\x1b[2K[{:>8}] {line}", clock(elapsed));
        }
        if exec.at.is_none() && current.take().is_some() {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    })
}

fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    if s < 60 {
        format!("{seconds:.1}s")
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

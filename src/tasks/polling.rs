//! When to call Describe again on an Amazon Personalize job that is still running, and the store
//! of how long earlier jobs took.
//!
//! Personalize sends no job events, so a job's end is found by polling its Describe call. Every
//! call costs API quota (Describe* calls are throttled per account), and every second between the
//! job turning ACTIVE and the next Describe is wasted pipeline time. [`next_poll_delay`] trades the
//! two off as a pure function of the job's elapsed time (engine clock, seconds since the Create
//! call returned) and the durations of the same state's job in earlier executions, which
//! [`JobDurations`] keeps in one small JSON file.
//!
//! # Terms
//!
//! `T` is the job's duration (Create returned → ACTIVE, seconds). Polls happen at elapsed times
//! `t₁ < t₂ < …`; the job is *detected* by the first poll at or after `T`, and the *lag* is that
//! poll's time minus `T`. The schedule depends on the elapsed time only, not on how many polls came
//! before, so polling may start at any elapsed time (a resumed execution, a slow first call): the
//! bounds below hold for every `T` after the first poll, whatever the start.
//!
//! # Without earlier runs
//!
//! The gap after a poll at `t` is `max(5 % of t, 60 s)`. Guarantee: **lag ≤ max(5 % of T, 60 s)**
//! for every `T`.
//!
//! This is the cheapest schedule with that guarantee, for every `T` at once. A job ending just
//! after a poll at `t` waits the whole gap, and its bound is about `max(5 % of t, 60 s)`, so no
//! admissible schedule may leave a longer gap after `t`; the first poll must come by 60 s. Taking
//! every gap as long as allowed puts the k-th poll at least as late as the k-th poll of any
//! admissible schedule (the next-poll time `t + max(0.05 t, 60)` grows with `t`), so it reaches
//! any `T` with the fewest polls.
//!
//! It follows that the target "fewer Describe calls than waiting 60 s × 1.02ⁿ before poll n" (the
//! schedule of AWS's maintaining-personalized-experiences solution) cannot be met for every `T`:
//! that schedule's gap after `t` is `60 s + 2 % of t`, longer than the bound allows below 2000 s
//! (a job of 316 s is detected 62.5 s late, one of 1828 s 93.8 s late), and it saves polls by
//! that. Counting from elapsed 0, both need 5 calls at `T` = 5 min (no admissible schedule can do
//! with fewer: 300 s in gaps of at most 60 s); the admissible minimum needs more calls at some
//! durations from 121 s and at every duration from 661 s to 4459 s (43 against 40 at `T` = 1 h),
//! and fewer at every duration from 5237 s (1 h 27 min) on (80 against 107 at `T` = 6 h).
//!
//! # With earlier runs
//!
//! Only the newest [`RECENT`] earlier durations count (durations drift as datasets grow). With
//! `min` and `max` their extremes, the *expected window* is
//! `[lo, hi] = [min(min, max / 1.1), max(max, min / 0.9)]`: it holds every earlier duration and
//! every `T` that all of them lie within ±10 % of. The schedule has three parts:
//!
//! - before `lo`, gaps double from 60 s (`max(60 s, 5 % of t, min(t, lo / 6))`), capped at a sixth
//!   of `lo`, and the last one shortened to land exactly on `lo + max(2 % of lo, 15 s)`;
//! - in the window, the gap after `t` is `max(2 % of t, 15 s)`;
//! - after `hi`, the no-history schedule (never slower than it, once the window has passed).
//!
//! Guarantees (lag, seconds):
//!
//! - `T` in `[lo, hi]`: **lag ≤ max(2 % of T, 15 s)**;
//! - `T` > `hi` (a job longer than its earlier runs): **lag ≤ max(5 % of T, 60 s)**, the
//!   no-history bound;
//! - `T` < `lo` (a job, or a failure, earlier than expected): **lag ≤ max(60 s, min(T, lo / 6))**:
//!   it is seen by twice its duration, and never more than `lo / 6` late.
//! - Describe calls, polling from elapsed 0: **at most 25** for `T` in the window when the earlier
//!   durations lie within ±10 % of one value (`max ≤ min × 11 / 9`, so `hi ≤ lo × 11 / 9`) and
//!   `hi` ≤ 24 h (tested; the first excess comes at `lo` ≈ 45 h, as the polls before the window
//!   grow with log `lo`). E.g. a 6 h job with earlier runs of 0.92, 1.05, 0.97, 1.1 and 0.95 × 6 h:
//!   12 calls up to the window's first poll, 16 to detect it, 21 had it taken 1.1 × 6 h. Starting
//!   later never needs more calls, because the time of the next poll, `t + next_poll_delay(t)`,
//!   never decreases as `t` grows.
//!
//! Why early finishes get a weaker bound than the no-history one: meeting `max(5 % of T, 60 s)`
//! for every `T` below `lo` takes the no-history number of polls just to reach `lo` (the argument
//! above): 41 polls to reach `lo` = 0.92 h, 78 to reach 0.92 × 6 h; with the window's own polls
//! (a window as wide as ±10 % allows) the 25-call budget is broken from `lo` ≈ 883 s on. The budget
//! leaves about a dozen polls before the window; doubling gaps capped at `lo / 6` spend them so
//! that the likeliest early finishes (a little before `lo`) are missed by at most a sixth of the
//! expected time, and very early ones (a job failing on bad input after a few minutes) by at most
//! their own duration.
//!
//! Every delay is at least 15 s and finite; the schedule uses no clock and no randomness.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Without earlier runs, and after the expected window: a poll at least every 60 s ...
const NO_HISTORY_FLOOR: f64 = 60.0;
/// ... and a gap of at most 5 % of the elapsed time.
const NO_HISTORY_FRACTION: f64 = 0.05;
/// In the expected window: a gap of at most 15 s ...
const WINDOW_FLOOR: f64 = 15.0;
/// ... or 2 % of the elapsed time, whichever is longer.
const WINDOW_FRACTION: f64 = 0.02;
/// Earlier durations count as "near" a duration within these factors of it (±10 %).
const NEAR_BELOW: f64 = 0.9;
const NEAR_ABOVE: f64 = 1.1;
/// Before the window, gaps are at most the window's lower edge divided by this.
const EARLY_CAP_DIVISOR: f64 = 6.0;

/// How many of the newest earlier durations [`next_poll_delay`] looks at.
pub const RECENT: usize = 5;
/// How many durations [`JobDurations`] keeps per (state machine, state), newest last.
pub const KEPT: usize = 20;

/// The no-history gap after a poll at `t`: `max(5 % of t, 60 s)`.
fn no_history_gap(t: f64) -> f64 {
    (NO_HISTORY_FRACTION * t).max(NO_HISTORY_FLOOR)
}

/// The gap inside the expected window after a poll at `t`: `max(2 % of t, 15 s)`.
fn window_gap(t: f64) -> f64 {
    (WINDOW_FRACTION * t).max(WINDOW_FLOOR)
}

/// The expected window `[lo, hi]` (seconds) from the newest [`RECENT`] usable earlier durations
/// (finite, not negative), or None without any.
fn expected_window(earlier: &[f64]) -> Option<(f64, f64)> {
    let usable: Vec<f64> = earlier.iter().copied().filter(|d| d.is_finite() && *d >= 0.0).collect();
    let recent = &usable[usable.len().saturating_sub(RECENT)..];
    let min = recent.iter().copied().reduce(f64::min)?;
    let max = recent.iter().copied().reduce(f64::max)?;
    Some(((max / NEAR_ABOVE).min(min), (min / NEAR_BELOW).max(max)))
}

/// Seconds to wait before the next Describe call of a job that has run `elapsed` seconds (engine clock,
/// since the Create call returned) and is still not finished, given the durations in seconds of the
/// same state's job in earlier executions (newest last, may be empty).
///
/// Without earlier runs the wait is `max(5 % of elapsed, 60 s)`: a job is detected at most
/// `max(5 % of T, 60 s)` after it finished (T its duration), with the fewest Describe calls any
/// schedule with that guarantee can make. With earlier runs (the newest [`RECENT`] count) polls
/// are sparse before the expected window, every `max(2 % of elapsed, 15 s)` inside it (detection
/// within `max(2 % of T, 15 s)`, at most 25 calls for runs within ±10 % of each other) and back
/// to the no-history schedule after it. The module documentation states and argues every bound.
///
/// Pure: the result depends on the arguments only. A non-finite or negative `elapsed` counts as
/// 0; non-finite or negative durations in `earlier` are ignored. The result is finite and at
/// least 15 s.
pub fn next_poll_delay(elapsed: f64, earlier: &[f64]) -> f64 {
    let t = if elapsed.is_finite() { elapsed.max(0.0) } else { 0.0 };
    let Some((lo, hi)) = expected_window(earlier) else {
        return no_history_gap(t);
    };
    if t >= hi {
        return no_history_gap(t);
    }
    if t >= lo {
        return window_gap(t);
    }
    // Before the window: doubling gaps (never shorter than the no-history ones), capped at a
    // sixth of `lo`, and landing on the first in-window poll `lo + window_gap(lo)` rather than
    // stepping over it. When the landing point is more than one but less than two gaps away,
    // split the distance evenly instead of leaving a short last hop.
    let gap = no_history_gap(t).max(t.min(lo / EARLY_CAP_DIVISOR));
    let to_landing = lo + window_gap(lo) - t;
    if to_landing <= gap {
        to_landing
    } else if to_landing < 2.0 * gap {
        to_landing / 2.0
    } else {
        gap
    }
}

/// The file's contents: `{"version": 1, "durations": {state machine: {state: [seconds, ...]}}}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DurationsFile {
    version: u32,
    durations: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
}

const FILE_VERSION: u32 = 1;

/// Durations of earlier jobs per (state machine, state), persisted as one small JSON file
/// (e.g. `<checkpoint dir>/job-durations.json`), newest last, at most 20 kept per key.
///
/// Durations are seconds from the Create call returning to the job's end, as the engine's clock
/// measured them; they feed [`next_poll_delay`]. The file is
/// `{"version": 1, "durations": {"<state machine>": {"<state>": [seconds, ...]}}}`. Every
/// [`JobDurations::record`] rewrites it whole by atomic replace, so a crash leaves the old or the
/// new file, never a torn one. Two processes recording into the same file at once: the last
/// writer wins and the other's newest entry is lost, which only costs a less informed schedule.
///
/// Holds plain data (Send + Sync); share it behind a `std::sync::Mutex`.
#[derive(Debug, Clone)]
pub struct JobDurations {
    path: PathBuf,
    durations: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
}

impl JobDurations {
    /// Loads the store at `path`. A missing file is an empty store (created by the first
    /// `record`); an unreadable or corrupt file is an error naming the path, not silently
    /// replaced. Entries that are not finite and non-negative are dropped, and only the newest 20
    /// per key are kept.
    pub fn open(path: &Path) -> std::io::Result<JobDurations> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Ok(JobDurations { path: path.to_path_buf(), durations: BTreeMap::new() });
            }
            Err(err) => return Err(io::Error::new(err.kind(), format!("{}: {err}", path.display()))),
        };
        let corrupt = |why: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a recflow job-durations file: {why}", path.display()),
            )
        };
        let file: DurationsFile = serde_json::from_str(&text).map_err(|err| corrupt(err.to_string()))?;
        if file.version != FILE_VERSION {
            return Err(corrupt(format!("version {} (expected {FILE_VERSION})", file.version)));
        }
        let mut durations = file.durations;
        for states in durations.values_mut() {
            for seconds in states.values_mut() {
                seconds.retain(|d| usable(*d));
                let excess = seconds.len().saturating_sub(KEPT);
                seconds.drain(..excess);
            }
        }
        Ok(JobDurations { path: path.to_path_buf(), durations })
    }

    /// Durations in seconds of the state's earlier jobs, newest last; empty if none.
    pub fn earlier(&self, state_machine: &str, state: &str) -> Vec<f64> {
        self.durations.get(state_machine).and_then(|states| states.get(state)).cloned().unwrap_or_default()
    }

    /// Adds a job's duration in seconds (newest), drops the oldest beyond 20, and rewrites the
    /// file by atomic replace: a temporary file with a per-process name in the same directory,
    /// written and fsynced, then renamed over the old one (and the directory fsynced on Unix).
    /// A non-finite or negative duration is ignored (Ok, nothing written). If writing fails the
    /// error names the path, and the duration stays in this in-memory copy.
    pub fn record(&mut self, state_machine: &str, state: &str, seconds: f64) -> std::io::Result<()> {
        if !usable(seconds) {
            return Ok(());
        }
        let list = self
            .durations
            .entry(state_machine.to_string())
            .or_default()
            .entry(state.to_string())
            .or_default();
        list.push(seconds);
        let excess = list.len().saturating_sub(KEPT);
        list.drain(..excess);
        self.save().map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", self.path.display())))
    }

    fn save(&self) -> io::Result<()> {
        let file = DurationsFile { version: FILE_VERSION, durations: self.durations.clone() };
        let mut json = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
        json.push(b'\n');
        crate::atomic_file::write_atomic(&self.path, &json, crate::atomic_file::Durability::Fsync)
    }
}

fn usable(seconds: f64) -> bool {
    seconds.is_finite() && seconds >= 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls from `start` (the first poll comes `next_poll_delay(start)` later) until the first
    /// at or after `t`: (Describe calls, lag in seconds).
    fn detect(t: f64, earlier: &[f64], start: f64) -> (u32, f64) {
        let mut now = start;
        let mut calls = 0;
        loop {
            now += next_poll_delay(now, earlier);
            calls += 1;
            if now >= t {
                return (calls, now - t);
            }
            assert!(calls < 10_000, "no detection of {t} s");
        }
    }

    /// "Wait 60 s × 1.02ⁿ before poll n" from elapsed 0: (calls, lag).
    fn baseline(t: f64) -> (u32, f64) {
        let (mut now, mut calls) = (0.0, 0);
        while now < t {
            now += 60.0 * 1.02f64.powi(calls);
            calls += 1;
        }
        (calls as u32, now - t)
    }

    /// Durations from 1 s to 48 h, 0.3 % apart, plus round values.
    fn durations() -> Vec<f64> {
        let mut all = vec![30.0, 60.0, 300.0, 1200.0, 3600.0, 21600.0, 43200.0];
        let mut t = 1.0;
        while t <= 48.0 * 3600.0 {
            all.push(t);
            t *= 1.003;
        }
        all
    }

    const EPS: f64 = 1e-6;

    #[test]
    fn without_history_lag_is_within_five_percent_or_a_minute_from_any_start() {
        for t in durations() {
            for start in [0.0, 0.4, 17.3, 59.9, 600.0, 0.3 * t, 0.97 * t] {
                if start >= t {
                    continue;
                }
                let (_, lag) = detect(t, &[], start);
                assert!(lag <= (0.05 * t).max(60.0) + EPS, "T {t} start {start}: lag {lag}");
            }
        }
    }

    #[test]
    fn without_history_calls_against_the_1_02_schedule() {
        // The conflict the module doc states, as numbers.
        assert_eq!(detect(300.0, &[], 0.0).0, 5);
        assert_eq!(baseline(300.0).0, 5);
        assert_eq!(detect(3600.0, &[], 0.0).0, 43);
        assert_eq!(baseline(3600.0).0, 40);
        assert_eq!(detect(21600.0, &[], 0.0).0, 80);
        assert_eq!(baseline(21600.0).0, 107);
        // The 1.02ⁿ schedule is not admissible under the no-history bound ...
        let (_, lag) = baseline(316.0);
        assert!(lag > 62.0, "{lag}");
        // ... and from 1 h 27 min on it always needs more calls.
        for t in durations().into_iter().filter(|t| *t >= 5240.0) {
            assert!(detect(t, &[], 0.0).0 < baseline(t).0, "T {t}");
        }
    }

    /// Histories around `e`: a tight one, the bench's, one-sided ones, a single run, a maximal
    /// ±10 % spread, and a wide one (bounds hold; the call budget is not promised).
    fn histories(e: f64) -> Vec<Vec<f64>> {
        [
            vec![1.0],
            vec![1.0, 1.0, 1.0],
            vec![0.92, 1.05, 0.97, 1.1, 0.95],
            vec![0.9, 1.1],
            vec![1.1, 1.1, 1.1, 0.9],
            vec![0.95, 0.96, 0.97, 0.98, 0.99, 1.0],
            vec![0.6, 1.0, 1.4],
            // Older entries beyond the newest five do not count.
            vec![5.0, 0.01, 1.0, 1.02, 0.98, 1.0, 1.01],
        ]
        .into_iter()
        .map(|f| f.into_iter().map(|x| x * e).collect())
        .collect()
    }

    fn window_of(earlier: &[f64]) -> (f64, f64) {
        let recent = &earlier[earlier.len().saturating_sub(RECENT)..];
        let min = recent.iter().copied().fold(f64::INFINITY, f64::min);
        let max = recent.iter().copied().fold(0.0, f64::max);
        ((max / 1.1).min(min), (min / 0.9).max(max))
    }

    #[test]
    fn with_history_lag_bounds_in_before_and_after_the_window() {
        let mut e = 20.0;
        while e <= 24.0 * 3600.0 {
            for earlier in histories(e) {
                let (lo, hi) = window_of(&earlier);
                assert_eq!(expected_window(&earlier), Some((lo, hi)));
                let mut x = 0.005;
                while x < 4.0 {
                    let t = x * e;
                    for start in [0.0, 0.5 * t, 0.99 * t] {
                        let (_, lag) = detect(t, &earlier, start);
                        let bound = if t < lo {
                            t.min(lo / 6.0).max(60.0)
                        } else if t <= hi {
                            (0.02 * t).max(15.0)
                        } else {
                            (0.05 * t).max(60.0)
                        };
                        assert!(lag <= bound + EPS, "{earlier:?} T {t} start {start}: lag {lag} > {bound}");
                    }
                    x *= 1.01;
                }
            }
            e *= 1.07;
        }
    }

    #[test]
    fn with_history_within_ten_percent_at_most_25_calls() {
        // The calls grow with T, so checking T = hi covers the window; spreads up to 11/9.
        let mut min = 20.0;
        loop {
            for spread in [1.0, 1.05, 1.1, 1.105, 1.111, 1.15, 1.2, 11.0 / 9.0] {
                let earlier = [min, min * spread, min * (1.0 + spread) / 2.0];
                let (lo, hi) = window_of(&earlier);
                assert!(hi <= lo * 11.0 / 9.0 + EPS);
                if hi > 24.0 * 3600.0 {
                    return;
                }
                for t in [lo, (lo + hi) / 2.0, hi] {
                    let (calls, _) = detect(t, &earlier, 0.0);
                    assert!(calls <= 25, "{earlier:?} T {t}: {calls} calls");
                }
            }
            min *= 1.002;
        }
    }

    #[test]
    fn next_poll_time_never_decreases_so_a_later_start_never_costs_calls() {
        for e in [30.0, 300.0, 1000.0, 3600.0, 21600.0, 43200.0] {
            let mut all = histories(e);
            all.push(Vec::new());
            for earlier in all {
                let mut previous = 0.0;
                let mut t = 0.0;
                while t < 3.0 * e + 2000.0 {
                    let next = t + next_poll_delay(t, &earlier);
                    assert!(next >= previous - EPS, "{earlier:?} at {t}: {next} < {previous}");
                    previous = next;
                    t += e / 5000.0;
                }
            }
        }
    }

    #[test]
    fn bench_targets_hold() {
        for t in [300.0, 3600.0, 21600.0] {
            let (calls, lag) = detect(t, &[], 0.0);
            assert!(lag <= (0.05 * t).max(60.0), "T {t}: {calls} calls, lag {lag}");
            let earlier: Vec<f64> = [0.92, 1.05, 0.97, 1.1, 0.95].iter().map(|f| f * t).collect();
            let (calls, lag) = detect(t, &earlier, 0.0);
            assert!(lag <= (0.02 * t).max(15.0) && calls <= 25, "T {t}: {calls} calls, lag {lag}");
        }
    }

    #[test]
    fn junk_inputs_give_a_finite_delay_of_at_least_15_s() {
        let junk = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -5.0, 0.0, 1e-9, 1e300];
        for elapsed in junk {
            for earlier in [vec![], junk.to_vec(), vec![f64::NAN, 100.0], vec![0.0], vec![0.0, 0.0]] {
                let d = next_poll_delay(elapsed, &earlier);
                assert!(d.is_finite() && d >= 15.0, "{elapsed} {earlier:?}: {d}");
            }
        }
        assert_eq!(next_poll_delay(f64::NAN, &[]), 60.0);
        assert_eq!(next_poll_delay(-3.0, &[f64::NAN, -1.0]), 60.0);
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("recflow-polling-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn durations_missing_file_is_empty_and_round_trips() {
        let dir = TempDir::new("round-trip");
        let path = dir.0.join("job-durations.json");
        let mut store = JobDurations::open(&path).unwrap();
        assert!(store.earlier("sm", "Train").is_empty());
        assert!(!path.exists());
        store.record("sm", "Train", 3600.5).unwrap();
        store.record("sm", "Train", 3700.0).unwrap();
        store.record("sm", "Import", 300.0).unwrap();
        store.record("other", "Train", 10.0).unwrap();
        store.record("sm", "Train", f64::NAN).unwrap();
        store.record("sm", "Train", -1.0).unwrap();
        store.record("sm", "Train", f64::INFINITY).unwrap();
        assert_eq!(store.earlier("sm", "Train"), vec![3600.5, 3700.0]);

        let again = JobDurations::open(&path).unwrap();
        assert_eq!(again.earlier("sm", "Train"), vec![3600.5, 3700.0]);
        assert_eq!(again.earlier("sm", "Import"), vec![300.0]);
        assert_eq!(again.earlier("other", "Train"), vec![10.0]);
        assert!(again.earlier("sm", "Missing").is_empty());
        // Only the file itself is left: no temporary files.
        let names: Vec<_> = fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("job-durations.json")]);
    }

    #[test]
    fn durations_keep_the_newest_20() {
        let dir = TempDir::new("cap");
        let path = dir.0.join("job-durations.json");
        let mut store = JobDurations::open(&path).unwrap();
        for i in 0..25 {
            store.record("sm", "Train", i as f64).unwrap();
        }
        let expected: Vec<f64> = (5..25).map(|i| i as f64).collect();
        assert_eq!(store.earlier("sm", "Train"), expected);
        assert_eq!(JobDurations::open(&path).unwrap().earlier("sm", "Train"), expected);

        // A file written by hand with more entries, and unusable ones, is trimmed on open.
        let long: Vec<String> = (0..30).map(|i| i.to_string()).collect();
        let text = format!(r#"{{"version": 1, "durations": {{"sm": {{"S": [-4, {}]}}}}}}"#, long.join(","));
        fs::write(&path, text).unwrap();
        let expected: Vec<f64> = (10..30).map(|i| i as f64).collect();
        assert_eq!(JobDurations::open(&path).unwrap().earlier("sm", "S"), expected);
    }

    #[test]
    fn durations_corrupt_file_is_refused_naming_the_path() {
        let dir = TempDir::new("corrupt");
        let path = dir.0.join("job-durations.json");
        for text in [
            "{not json",
            "",
            r#"{"version": 1, "durations": {"sm": {"S": ["x"]}}}"#,
            r#"{"version": 2, "durations": {}}"#,
            r#"[1, 2]"#,
        ] {
            fs::write(&path, text).unwrap();
            let err = JobDurations::open(&path).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{text}");
            assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        }
        // Refused, not replaced.
        assert_eq!(fs::read_to_string(&path).unwrap(), "[1, 2]");
    }

    #[test]
    fn durations_write_error_names_the_path() {
        let dir = TempDir::new("write-error");
        let path = dir.0.join("missing-dir").join("job-durations.json");
        let mut store = JobDurations::open(&path).unwrap();
        let err = store.record("sm", "S", 1.0).unwrap_err();
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        assert_eq!(store.earlier("sm", "S"), vec![1.0]);
    }

    #[test]
    fn durations_are_shareable_behind_a_mutex() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<JobDurations>();
        assert_send_sync::<std::sync::Mutex<JobDurations>>();
    }
}

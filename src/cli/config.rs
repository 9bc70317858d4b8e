//! `recflow.toml`: the workflows a team runs, each with its definition, input, schedules,
//! checkpoint location and policies, so a container or a daemon starts them by name:
//! `recflow run nightly --config recflow.toml`. Flags and `RECFLOW_*` variables override what the
//! file says. Every mistake is refused at start, naming the file, the line and the key
//! (`recflow.toml:7: workflows.nightly.max_runtime: '10 minutes' is not a duration: ...`).
//!
//! ```toml
//! [defaults]                       # for every workflow, unless it says otherwise
//! checkpoint_dir = "s3://my-bucket/recflow/"
//! events_bus = "default"
//!
//! [workflows.nightly]
//! definition = "workflows/nightly-refresh.asl.json"   # relative to this file
//! input_file = "nightly.json"                        # or: input = { datasetArn = "..." }
//! schedules = ["cron(0 2 * * ? *)"]                  # EventBridge's cron(...) / rate(...), or 5-field cron
//! tz = "Europe/Berlin"                               # the schedules' time zone (UTC if absent)
//! overlap = "forbid"                                 # recflow daemon: forbid (default), queue, allow
//! catch_up = "once"                                  # recflow daemon: skip (default) or once
//! jitter = "30s"                                     # recflow daemon: random delay before a start
//! events_queue = "recflow-events"                    # recflow daemon: start on events from this SQS queue
//! max_runtime = "10m"
//! resume_or_start = true
//! ```

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use super::common::usage;
pub use crate::daemon::{CatchUp, Overlap};

/// Settings a workflow may give, and `[defaults]` for all of them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    checkpoint_dir: Option<Spanned<String>>,
    events_bus: Option<Spanned<String>>,
    max_runtime: Option<Spanned<String>>,
    time_scale: Option<Spanned<f64>>,
    local: Option<bool>,
    resume_or_start: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    definition: Spanned<String>,
    input: Option<Spanned<toml::Table>>,
    input_file: Option<Spanned<String>>,
    #[serde(default)]
    schedules: Vec<Spanned<String>>,
    tz: Option<Spanned<String>>,
    overlap: Option<Spanned<String>>,
    catch_up: Option<Spanned<String>>,
    jitter: Option<Spanned<String>>,
    events_queue: Option<Spanned<String>>,
    checkpoint_dir: Option<Spanned<String>>,
    events_bus: Option<Spanned<String>>,
    max_runtime: Option<Spanned<String>>,
    time_scale: Option<Spanned<f64>>,
    local: Option<bool>,
    resume_or_start: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    defaults: Settings,
    #[serde(default)]
    workflows: BTreeMap<String, Entry>,
}

/// One workflow of the file, checked: paths resolved against the file's folder.
#[derive(Debug, Clone)]
pub struct Workflow {
    pub name: String,
    pub definition: PathBuf,
    /// Inline input (`input = {...}`), as JSON.
    pub input: Option<Value>,
    pub input_file: Option<PathBuf>,
    /// When to start it: EventBridge's `cron(...)` and `rate(...)`, or classic 5-field cron
    /// ([`crate::schedule::Schedule`]), read in `tz`.
    pub schedules: Vec<crate::schedule::Schedule>,
    /// The IANA time zone of the schedules (UTC when the file names none).
    pub tz: chrono_tz::Tz,
    /// What the daemon does with a firing while an execution of the workflow runs.
    pub overlap: Overlap,
    /// What the daemon does at start with firings missed while it was down.
    pub catch_up: CatchUp,
    /// A random delay of up to this much before each scheduled start (zero when absent).
    pub jitter: Duration,
    /// An SQS queue (URL, or name) whose EventBridge events the daemon starts this workflow with.
    pub events_queue: Option<String>,
    pub checkpoint_dir: Option<PathBuf>,
    pub events_bus: Option<String>,
    pub max_runtime: Option<Duration>,
    pub time_scale: Option<f64>,
    pub local: bool,
    pub resume_or_start: bool,
}

/// The workflows of a config file, by name.
#[derive(Debug)]
pub struct Config {
    pub path: PathBuf,
    pub workflows: BTreeMap<String, Workflow>,
}

impl Config {
    /// Reads and checks `path`; every problem is reported as `<file>:<line>: <key>: <problem>`.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
        Config::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<Config> {
        let at = |span: Option<Range<usize>>| match span {
            Some(span) => format!("{}:{}", path.display(), line_of(text, span.start)),
            None => path.display().to_string(),
        };
        let file: File = toml::from_str(text).map_err(|e| {
            let key = e.span().map(|s| key_at(text, s.start)).filter(|k| !k.is_empty());
            let key = key.map(|k| format!("{k}: ")).unwrap_or_default();
            usage(format!("{}: {key}{}", at(e.span()), e.message()))
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut problems = Vec::new();
        let mut workflows = BTreeMap::new();
        if file.workflows.is_empty() {
            problems
                .push(format!("{}: workflows: the file names no workflow ([workflows.<name>])", at(None)));
        }
        for (name, entry) in file.workflows {
            let key = |field: &str| format!("workflows.{name}.{field}");
            let mut problem = |span: Range<usize>, field: &str, message: String| {
                problems.push(format!("{}: {}: {message}", at(Some(span)), key(field)));
            };
            let definition = base.join(entry.definition.get_ref());
            if !definition.is_file() {
                problem(
                    entry.definition.span(),
                    "definition",
                    format!("{} is not a file", definition.display()),
                );
            }
            if let (Some(_), Some(file)) = (&entry.input, &entry.input_file) {
                problem(file.span(), "input_file", "give input or input_file, not both".into());
            }
            let input_file = entry.input_file.as_ref().map(|f| base.join(f.get_ref()));
            if let (Some(path), Some(spanned)) = (&input_file, &entry.input_file)
                && !path.is_file()
            {
                problem(spanned.span(), "input_file", format!("{} is not a file", path.display()));
            }
            let input = entry
                .input
                .as_ref()
                .map(|t| serde_json::to_value(t.get_ref()).expect("a TOML table is JSON"));
            let mut schedules = Vec::new();
            for (i, s) in entry.schedules.iter().enumerate() {
                match crate::schedule::Schedule::from_str(s.get_ref()) {
                    Ok(schedule) => schedules.push(schedule),
                    Err(e) => problem(s.span(), &format!("schedules[{i}]"), e.to_string()),
                }
            }
            let tz = match &entry.tz {
                None => chrono_tz::Tz::UTC,
                Some(t) => t.get_ref().parse().unwrap_or_else(|_| {
                    problem(
                        t.span(),
                        "tz",
                        format!("'{}' is not an IANA time zone such as Europe/Berlin", t.get_ref()),
                    );
                    chrono_tz::Tz::UTC
                }),
            };
            let overlap = match entry.overlap.as_ref().map(|o| (o.get_ref().as_str(), o.span())) {
                None | Some(("forbid", _)) => Overlap::Forbid,
                Some(("queue", _)) => Overlap::Queue,
                Some(("allow", _)) => Overlap::Allow,
                Some((other, span)) => {
                    problem(
                        span,
                        "overlap",
                        format!("'{other}' is not one of forbid (the default), queue, allow"),
                    );
                    Overlap::Forbid
                }
            };
            let catch_up = match entry.catch_up.as_ref().map(|o| (o.get_ref().as_str(), o.span())) {
                None | Some(("skip", _)) => CatchUp::Skip,
                Some(("once", _)) => CatchUp::Once,
                Some((other, span)) => {
                    problem(span, "catch_up", format!("'{other}' is not one of skip (the default), once"));
                    CatchUp::Skip
                }
            };
            let jitter = match &entry.jitter {
                None => Duration::ZERO,
                Some(j) => humantime::parse_duration(j.get_ref()).unwrap_or_else(|e| {
                    problem(
                        j.span(),
                        "jitter",
                        format!("'{}' is not a duration such as 30s or 5m: {e}", j.get_ref()),
                    );
                    Duration::ZERO
                }),
            };
            let max_runtime = entry.max_runtime.as_ref().or(file.defaults.max_runtime.as_ref());
            let max_runtime = match max_runtime.map(|m| (humantime::parse_duration(m.get_ref()), m)) {
                None => None,
                Some((Ok(d), _)) => Some(d),
                Some((Err(e), m)) => {
                    problem(
                        m.span(),
                        "max_runtime",
                        format!("'{}' is not a duration such as 10m or 1h30m: {e}", m.get_ref()),
                    );
                    None
                }
            };
            let time_scale = entry.time_scale.as_ref().or(file.defaults.time_scale.as_ref());
            if let Some(t) = time_scale
                && !super::common::TIME_SCALE_RANGE.contains(t.get_ref())
            {
                let range = &super::common::TIME_SCALE_RANGE;
                problem(
                    t.span(),
                    "time_scale",
                    format!("must be between {} and {}", range.start(), range.end()),
                );
            }
            let string = |own: &Option<Spanned<String>>, default: &Option<Spanned<String>>| {
                own.as_ref().or(default.as_ref()).map(|s| s.get_ref().clone())
            };
            let checkpoint_dir = string(&entry.checkpoint_dir, &file.defaults.checkpoint_dir)
                .map(|d| if d.starts_with("s3://") { PathBuf::from(d) } else { base.join(d) });
            workflows.insert(
                name.clone(),
                Workflow {
                    name,
                    definition,
                    input,
                    input_file,
                    schedules,
                    tz,
                    overlap,
                    catch_up,
                    jitter,
                    events_queue: entry.events_queue.as_ref().map(|q| q.get_ref().clone()),
                    checkpoint_dir,
                    events_bus: string(&entry.events_bus, &file.defaults.events_bus),
                    max_runtime,
                    time_scale: time_scale.map(|t| *t.get_ref()),
                    local: entry.local.or(file.defaults.local).unwrap_or(false),
                    resume_or_start: entry.resume_or_start.or(file.defaults.resume_or_start).unwrap_or(false),
                },
            );
        }
        if problems.is_empty() {
            Ok(Config { path: path.to_path_buf(), workflows })
        } else {
            Err(usage(problems.join("\n")))
        }
    }

    /// The workflow `name`, or a usage error listing the names the file has.
    pub fn workflow(&self, name: &str) -> Result<&Workflow> {
        self.workflows.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.workflows.keys().map(String::as_str).collect();
            usage(format!(
                "{}: no workflow named '{name}' (it has: {})",
                self.path.display(),
                names.join(", ")
            ))
        })
    }
}

/// The key (or `[table]`) written on the line of a byte offset, for messages serde gives without
/// one (a wrong type, a missing field).
fn key_at(text: &str, offset: usize) -> String {
    let start = text[..offset.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("").trim();
    match line.split_once('=') {
        Some((key, _)) => key.trim().to_string(),
        None => line.trim_start_matches('[').trim_end_matches(']').to_string(),
    }
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("wf.asl.json"), "{}").unwrap();
        let path = dir.path().join("recflow.toml");
        let err = Config::parse(&path, text).expect_err("refused");
        err.to_string().replace(&path.display().to_string(), "recflow.toml")
    }

    fn accepted(text: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("wf.asl.json"), "{}").unwrap();
        std::fs::write(dir.path().join("in.json"), "{}").unwrap();
        Config::parse(&dir.path().join("recflow.toml"), text).unwrap()
    }

    #[test]
    fn a_whole_workflow_reads() {
        let config = accepted(
            "[defaults]\ncheckpoint_dir = \"s3://b/p/\"\nevents_bus = \"ops\"\n\n[workflows.nightly]\ndefinition = \"wf.asl.json\"\ninput = { datasetArn = \"arn:x\", topN = 5 }\nschedules = [\"cron(0 2 * * ? *)\"]\ntz = \"Europe/Berlin\"\noverlap = \"queue\"\ncatch_up = \"once\"\njitter = \"30s\"\nmax_runtime = \"10m\"\nresume_or_start = true\n",
        );
        let w = config.workflow("nightly").unwrap();
        assert_eq!(w.input, Some(serde_json::json!({"datasetArn": "arn:x", "topN": 5})));
        assert_eq!(w.checkpoint_dir, Some(PathBuf::from("s3://b/p/")));
        assert_eq!(w.events_bus.as_deref(), Some("ops"));
        assert_eq!(w.max_runtime, Some(Duration::from_secs(600)));
        assert_eq!(w.schedules.len(), 1);
        assert_eq!(w.tz, chrono_tz::Europe::Berlin);
        assert_eq!(
            (w.overlap, w.catch_up, w.jitter),
            (Overlap::Queue, CatchUp::Once, Duration::from_secs(30))
        );
        assert!(w.resume_or_start && !w.local);
        assert!(config.workflow("weekly").unwrap_err().to_string().contains("it has: nightly"));
    }

    #[test]
    fn each_kind_of_mistake_names_file_line_and_key() {
        let cases = [
            // A typo in a key.
            (
                "[workflows.nightly]\ndefinition = \"wf.asl.json\"\nmax_runtim = \"10m\"\n",
                "recflow.toml:3",
                "max_runtim",
            ),
            // A value of the wrong type.
            (
                "[workflows.nightly]\ndefinition = \"wf.asl.json\"\nlocal = \"yes\"\n",
                "recflow.toml:3: local:",
                "bool",
            ),
            // A definition that is not there.
            (
                "[workflows.nightly]\ndefinition = \"missing.asl.json\"\n",
                "recflow.toml:2",
                "workflows.nightly.definition",
            ),
            // A bad cron expression.
            (
                "[workflows.nightly]\ndefinition = \"wf.asl.json\"\nschedules = [\"every night\"]\n",
                "recflow.toml:3",
                "workflows.nightly.schedules[0]",
            ),
            // A bad duration.
            (
                "[workflows.nightly]\ndefinition = \"wf.asl.json\"\nmax_runtime = \"10 minutes please\"\n",
                "recflow.toml:3",
                "workflows.nightly.max_runtime",
            ),
            // Both kinds of input.
            (
                "[workflows.nightly]\ndefinition = \"wf.asl.json\"\ninput = {}\ninput_file = \"in.json\"\n",
                "recflow.toml:4",
                "workflows.nightly.input_file",
            ),
            // An overlap policy that does not exist.
            (
                "[workflows.nightly]\ndefinition = \"wf.asl.json\"\noverlap = \"skip\"\n",
                "recflow.toml:3",
                "workflows.nightly.overlap: 'skip' is not one of forbid",
            ),
            (
                "[workflows.nightly]\ndefinition = \"wf.asl.json\"\ncatch_up = \"all\"\n",
                "recflow.toml:3",
                "workflows.nightly.catch_up",
            ),
            (
                "[workflows.nightly]\ndefinition = \"wf.asl.json\"\njitter = \"a bit\"\n",
                "recflow.toml:3",
                "workflows.nightly.jitter",
            ),
            // A time scale out of range.
            (
                "[workflows.nightly]\ndefinition = \"wf.asl.json\"\ntime_scale = 0.0\n",
                "recflow.toml:3",
                "workflows.nightly.time_scale",
            ),
            // Not TOML at all.
            ("[workflows.nightly\ndefinition = 1\n", "recflow.toml:1", ""),
            // A required key missing.
            ("[workflows.nightly]\ninput = {}\n", "recflow.toml:1: workflows.nightly:", "definition"),
            // No workflow.
            ("[defaults]\nlocal = true\n", "recflow.toml", "workflows"),
        ];
        for (text, place, key) in cases {
            let message = refused(text);
            assert!(message.starts_with(place), "{text:?}: {message}");
            assert!(message.contains(key), "{text:?}: {message}");
        }
    }
}

//! The status page: server-rendered HTML with no script and no build step, refreshing itself
//! every 5 seconds. `GET /` lists each workflow with its schedules and next run, and the recent
//! executions; `GET /ui/executions/{name}` draws one execution's state machine as an SVG graph
//! (states in rows by their distance from StartAt, the current states highlighted, the visited
//! ones marked), with its Task states' jobs and its history.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Daemon;
use crate::engine::execution::timestamp;
use crate::engine::{Detail, HistoryEvent, Status, Stored};

/// The most executions the front page lists.
const RECENT: usize = 50;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page; `live` ones (anything that can still change) refresh themselves every 5 seconds.
fn shell(title: &str, body: &str, live: bool) -> String {
    let refresh = if live { r#"<meta http-equiv="refresh" content="5">"# } else { "" };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">{refresh}
<title>{title} · recflow</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em 2em; color: #1d2329; }}
h1 {{ font-size: 1.4em; }} h2 {{ font-size: 1.1em; margin-top: 1.6em; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 3px 10px; border-bottom: 1px solid #e3e6ea; text-align: left; vertical-align: top; }}
th {{ background: #f4f6f8; }} code {{ font-size: 0.95em; }} a {{ color: #0b62c4; }}
.RUNNING {{ color: #0b62c4; font-weight: 600; }} .SUCCEEDED {{ color: #16803c; }} .FAILED, .TIMED_OUT, .ABORTED {{ color: #b42318; font-weight: 600; }}
.muted {{ color: #69737d; }}
</style></head><body>
<h1><a href="/">recflow</a> · {title}</h1>
{body}
</body></html>
"#
    )
}

fn duration(start: DateTime<Utc>, stop: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let secs = (stop.unwrap_or(now) - start).num_seconds().max(0);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// The front page: workflows and recent executions.
pub(super) async fn index(daemon: &Daemon) -> String {
    let now = daemon.clock().now();
    let mut body = String::from(
        "<h2>Workflows</h2><table><tr><th>workflow</th><th>schedules</th><th>next run</th><th>overlap</th><th>running</th></tr>",
    );
    let executions = daemon.executions().await;
    for (name, wf) in daemon.workflows() {
        let schedules: Vec<String> = wf.schedules.iter().map(|s| escape(s.as_str())).collect();
        let schedules = if schedules.is_empty() {
            "<span class=muted>none</span>".into()
        } else {
            schedules.join("<br>")
        };
        let next = daemon.next_run(name).map_or("<span class=muted>-</span>".to_string(), |t| {
            format!(
                "{} <span class=muted>({})</span>",
                timestamp(t),
                t.with_timezone(&wf.tz).format("%a %H:%M %Z")
            )
        });
        let running =
            executions.iter().filter(|e| e.state_machine == *name && e.status == Status::Running).count();
        let _ = write!(
            body,
            "<tr><td><b>{}</b></td><td><code>{schedules}</code> <span class=muted>{}</span></td><td>{next}</td><td>{:?}</td><td>{running}</td></tr>",
            escape(name),
            wf.tz,
            wf.overlap
        );
    }
    body.push_str("</table><h2>Recent executions</h2>");
    if executions.is_empty() {
        body.push_str("<p class=muted>none yet</p>");
    } else {
        body.push_str("<table><tr><th>execution</th><th>workflow</th><th>status</th><th>at</th><th>started</th><th>duration</th></tr>");
        for e in executions.iter().take(RECENT) {
            let at: Vec<&str> = e.cursors().map(|(_, p)| p.state.as_str()).collect();
            let _ = write!(
                body,
                "<tr><td><a href=\"/ui/executions/{0}\">{0}</a></td><td>{1}</td><td class={2}>{2}</td><td>{3}</td><td>{4}</td><td>{5}</td></tr>",
                escape(&e.name),
                escape(&e.state_machine),
                e.status.as_str(),
                escape(&at.join(", ")),
                timestamp(e.start_time),
                duration(e.start_time, e.stop_time, now)
            );
        }
        body.push_str("</table>");
    }
    shell("status", &body, true)
}

/// The page of one execution: its graph, jobs and history.
pub(super) fn execution(daemon: &Daemon, stored: &Stored, history: &[HistoryEvent]) -> String {
    let e = &stored.execution;
    let now = daemon.clock().now();
    let current: HashSet<&str> = e.cursors().map(|(_, p)| p.state.as_str()).collect();
    let visited: HashSet<&str> = history
        .iter()
        .filter_map(|h| match &h.detail {
            Detail::StateEntered { state, .. } => Some(state.as_str()),
            _ => None,
        })
        .collect();
    let mut body = format!(
        "<p><b class={0}>{0}</b> · workflow <b>{1}</b> · started {2} · {3}{4}</p>",
        e.status.as_str(),
        escape(&e.state_machine),
        timestamp(e.start_time),
        duration(e.start_time, e.stop_time, now),
        if current.is_empty() {
            String::new()
        } else {
            format!(" · at <b>{}</b>", escape(&current.iter().copied().collect::<Vec<_>>().join(", ")))
        }
    );
    if let (Some(error), Some(cause)) = (&e.error, &e.cause) {
        let _ =
            write!(body, "<p class=FAILED>{}: <span class=muted>{}</span></p>", escape(error), escape(cause));
    }
    body.push_str(&graph(&stored.definition, &current, &visited));
    body.push_str(&jobs(history));
    body.push_str("<h2>History</h2><table><tr><th>id</th><th>time</th><th>event</th><th>state</th></tr>");
    for h in history.iter().rev().take(200) {
        let state = match &h.detail {
            Detail::StateEntered { state, .. }
            | Detail::StateExited { state, .. }
            | Detail::TaskScheduled { state, .. }
            | Detail::TaskSucceeded { state, .. }
            | Detail::TaskPolled { state, .. }
            | Detail::TaskFailed { state, .. }
            | Detail::RetryScheduled { state, .. }
            | Detail::WaitStarted { state, .. } => state.as_str(),
            _ => "",
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            h.id,
            timestamp(h.timestamp),
            h.detail.type_name(),
            escape(state)
        );
    }
    body.push_str("</table>");
    body.push_str(&payloads(e));
    shell(&escape(&e.name), &body, e.status == Status::Running)
}

/// The execution's input and, once it has one, its output, pretty-printed (cut at 20,000
/// characters each).
fn payloads(e: &crate::engine::Execution) -> String {
    let block = |title: &str, value: &Value| {
        let text = crate::text::clipped(&serde_json::to_string_pretty(value).unwrap_or_default(), 20_000);
        format!("<h2>{title}</h2><pre>{}</pre>", escape(&text))
    };
    let mut out = block("Input", &e.input);
    if let Some(output) = &e.output {
        out.push_str(&block("Output", output));
    }
    out
}

/// Each Task state's resource and where its job stands: the last polled status, or how its
/// last call ended.
fn jobs(history: &[HistoryEvent]) -> String {
    let mut rows: BTreeMap<u64, (String, String, String)> = BTreeMap::new();
    let mut row_of: HashMap<&str, u64> = HashMap::new();
    for h in history {
        match &h.detail {
            Detail::TaskScheduled { state, resource, .. } => {
                let id = *row_of.entry(state.as_str()).or_insert(h.id);
                rows.insert(id, (state.clone(), resource.clone(), "called".into()));
            }
            Detail::TaskPolled { state, status, polls, .. } => {
                if let Some(row) = row_of.get(state.as_str()).and_then(|id| rows.get_mut(id)) {
                    row.2 = format!("{status} (poll {polls})");
                }
            }
            Detail::TaskSucceeded { state, .. } => {
                if let Some(row) = row_of.get(state.as_str()).and_then(|id| rows.get_mut(id)) {
                    row.2 = "SUCCEEDED".into();
                }
            }
            Detail::TaskFailed { state, error, .. } => {
                if let Some(row) = row_of.get(state.as_str()).and_then(|id| rows.get_mut(id)) {
                    row.2 = format!("FAILED {error}");
                }
            }
            _ => {}
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from("<h2>Jobs</h2><table><tr><th>state</th><th>resource</th><th>status</th></tr>");
    for (state, resource, status) in rows.values() {
        let class = status.split(' ').next().unwrap_or("");
        let _ = write!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td class={}>{}</td></tr>",
            escape(state),
            escape(resource),
            escape(class),
            escape(status)
        );
    }
    out.push_str("</table>");
    out
}

/// The state names a state goes to in the normal flow (Next, Default, each Choice's Next), and
/// on errors (each Catch's Next).
fn targets(state: &Value) -> (Vec<&str>, Vec<&str>) {
    let list =
        |key: &str| state.get(key).and_then(Value::as_array).into_iter().flatten().map(|c| c.get("Next"));
    let flow = [state.get("Next"), state.get("Default")].into_iter().chain(list("Choices")).collect();
    (distinct_names(flow), distinct_names(list("Catch").collect()))
}

/// The strings among `values`, each once, in order.
fn distinct_names(values: Vec<Option<&Value>>) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for name in values.into_iter().flatten().filter_map(Value::as_str) {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The top-level states as an SVG: one row per distance from StartAt, arrows for every
/// transition.
fn graph(definition: &Value, current: &HashSet<&str>, visited: &HashSet<&str>) -> String {
    let Some(states) = definition.get("States").and_then(Value::as_object) else { return String::new() };
    let start = definition.get("StartAt").and_then(Value::as_str).unwrap_or("");
    // Rows by distance from StartAt along the normal flow; states only errors lead to (the
    // failure path) go below it, in the order errors reach them.
    let mut depth: HashMap<&str, usize> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([(start, 0)]);
    let mut caught = Vec::new();
    while let Some((name, d)) = queue.pop_front() {
        if depth.contains_key(name) || !states.contains_key(name) {
            continue;
        }
        depth.insert(name, d);
        let (flow, errors) = targets(&states[name]);
        queue.extend(flow.into_iter().map(|next| (next, d + 1)));
        caught.extend(errors);
    }
    let mut below = depth.values().max().map_or(0, |d| d + 1);
    while !caught.is_empty() {
        let mut next_round = Vec::new();
        let mut placed = false;
        for name in std::mem::take(&mut caught) {
            if depth.contains_key(name) || !states.contains_key(name) {
                continue;
            }
            depth.insert(name, below);
            placed = true;
            let (flow, errors) = targets(&states[name]);
            next_round.extend(flow.into_iter().chain(errors));
        }
        below += usize::from(placed);
        caught = next_round;
    }
    let mut rows: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for name in states.keys() {
        // States nothing reaches go last.
        let d = depth.get(name.as_str()).copied().unwrap_or(usize::MAX);
        rows.entry(d).or_default().push(name);
    }
    let (w, h, gap_x, gap_y) = (190.0, 44.0, 30.0, 40.0);
    let widest = rows.values().map(Vec::len).max().unwrap_or(1) as f64;
    let width = widest * (w + gap_x) + gap_x;
    let mut at: HashMap<&str, (f64, f64)> = HashMap::new();
    for (row, (_, names)) in rows.iter().enumerate() {
        let offset = (width - names.len() as f64 * (w + gap_x) + gap_x) / 2.0;
        for (i, name) in names.iter().enumerate() {
            at.insert(name, (offset + i as f64 * (w + gap_x), gap_y / 2.0 + row as f64 * (h + gap_y)));
        }
    }
    let height = rows.len() as f64 * (h + gap_y);
    let mut svg = format!(
        r##"<h2>Graph</h2><svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="system-ui, sans-serif" font-size="13">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8a949e"/></marker></defs>
"##
    );
    for (name, state) in states {
        let Some(&(x, y)) = at.get(name.as_str()) else { continue };
        let (flow, errors) = targets(state);
        let edges = flow
            .into_iter()
            .map(|n| (n, ""))
            .chain(errors.into_iter().map(|n| (n, " stroke-dasharray=\"5 4\"")));
        for (next, dash) in edges {
            let Some(&(nx, ny)) = at.get(next) else { continue };
            let (x1, y1, x2, y2) = if ny > y {
                (x + w / 2.0, y + h, nx + w / 2.0, ny)
            } else {
                // A loop back up: from the side.
                (x + w, y + h / 2.0, nx + w, ny + h / 2.0)
            };
            let bend = if ny > y {
                format!("C{x1},{} {x2},{} {x2},{y2}", y1 + 20.0, y2 - 20.0)
            } else {
                format!("C{},{y1} {},{y2} {x2},{y2}", x1 + 40.0, x2 + 40.0)
            };
            let _ = writeln!(
                svg,
                r##"<path d="M{x1},{y1} {bend}" fill="none" stroke="#8a949e" stroke-width="1.4"{dash} marker-end="url(#arrow)"/>"##
            );
        }
    }
    for (name, state) in states {
        let Some(&(x, y)) = at.get(name.as_str()) else { continue };
        let kind = state.get("Type").and_then(Value::as_str).unwrap_or("?");
        let (fill, stroke, width) = if current.contains(name.as_str()) {
            ("#dbeafe", "#0b62c4", 3.0)
        } else if visited.contains(name.as_str()) {
            ("#e7f6ec", "#16803c", 1.4)
        } else {
            ("#ffffff", "#b8c0c8", 1.2)
        };
        let label: String = name.chars().take(26).collect();
        let _ = writeln!(
            svg,
            r##"<g><rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" fill="{fill}" stroke="{stroke}" stroke-width="{width}"/><text x="{}" y="{}" text-anchor="middle" font-weight="600">{}</text><text x="{}" y="{}" text-anchor="middle" fill="#69737d" font-size="11">{}</text></g>"##,
            x + w / 2.0,
            y + 19.0,
            escape(&label),
            x + w / 2.0,
            y + 35.0,
            escape(kind)
        );
    }
    svg.push_str("</svg><p class=muted>blue: current state · green: visited · dashed: Catch</p>");
    svg
}

/// The page for a name no store holds.
pub(super) fn not_found(name: &str) -> String {
    shell("not found", &format!("<p>No execution named <b>{}</b>.</p>", escape(name)), false)
}

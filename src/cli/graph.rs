//! `recflow graph`: a workflow as a Mermaid state diagram or a Graphviz digraph.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::PathBuf;

use anyhow::Result;

use super::common::{ExitCode, load_definition};
use crate::asl::definition::{Kind, State, StateMachine};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Mermaid `stateDiagram-v2` (renders on GitHub and in most Markdown viewers).
    Mermaid,
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
}

/// `recflow graph`'s arguments, as clap reads them.
#[derive(clap::Args)]
pub struct GraphArgs {
    /// The ASL definition (JSON) to draw
    pub file: PathBuf,
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
}

impl GraphArgs {
    /// The options of a drawing.
    pub fn into_options(self) -> GraphOptions {
        GraphOptions { file: self.file, format: self.format }
    }
}

/// A drawing's options.
pub struct GraphOptions {
    pub file: PathBuf,
    pub format: GraphFormat,
}

/// An edge: from, to (None = the end of the scope), label.
type Edge<'m> = (&'m str, Option<&'m str>, String);

pub fn graph(opts: GraphOptions) -> Result<ExitCode> {
    let (machine, _) = load_definition(&opts.file)?;
    let text = match opts.format {
        GraphFormat::Mermaid => mermaid(&machine),
        GraphFormat::Dot => dot(&machine),
    };
    print!("{text}");
    Ok(ExitCode::Succeeded)
}

/// The transitions of a scope's states, and each Retry as a loop on its state.
fn edges(machine: &StateMachine) -> Vec<Edge<'_>> {
    let mut out = Vec::new();
    for s in &machine.states {
        for (label, to) in s.transitions() {
            out.push((s.name.as_str(), to, if label == "Next" { String::new() } else { label }));
        }
        // A retrier with MaxAttempts 0 only stops the errors it names from reaching later
        // retriers: it never loops back.
        for (i, r) in s.retry.iter().enumerate().filter(|(_, r)| r.max_attempts > 0) {
            out.push((
                s.name.as_str(),
                Some(s.name.as_str()),
                format!("Retry[{i}] {}", r.error_equals.join(" | ")),
            ));
        }
    }
    out
}

/// The scopes nested in a state: a Parallel's branches, a Map's ItemProcessor.
fn scopes(state: &State) -> Vec<&StateMachine> {
    match &state.kind {
        Kind::Parallel { branches } => branches.iter().collect(),
        Kind::Map(map) => vec![&map.processor],
        _ => Vec::new(),
    }
}

/// A number for every state, top-level states first in document order, then nested ones scope
/// by scope (state names are unique across the whole machine).
fn numbering(machine: &StateMachine) -> HashMap<&str, usize> {
    let mut ids = HashMap::new();
    let mut queue = std::collections::VecDeque::from([machine]);
    while let Some(m) = queue.pop_front() {
        for s in &m.states {
            let next = ids.len();
            ids.insert(s.name.as_str(), next);
            queue.extend(scopes(s));
        }
    }
    ids
}

fn mermaid(machine: &StateMachine) -> String {
    // Mermaid ids cannot hold spaces or punctuation: number the states and label them.
    let ids = numbering(machine);
    let mut out = String::from("stateDiagram-v2\n");
    mermaid_scope(machine, &ids, 1, &mut out);
    out
}

fn mermaid_scope(machine: &StateMachine, ids: &HashMap<&str, usize>, depth: usize, out: &mut String) {
    let id = |name: &str| format!("s{}", ids.get(name).copied().unwrap_or(0));
    let pad = "    ".repeat(depth);
    for s in &machine.states {
        let _ = writeln!(
            out,
            "{pad}state \"{} ({})\" as {}",
            s.name.replace('"', "'"),
            s.kind.type_name(),
            id(&s.name)
        );
        let nested = scopes(s);
        if nested.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{pad}state {} {{", id(&s.name));
        for (i, scope) in nested.iter().enumerate() {
            if i > 0 {
                // Mermaid's separator of concurrent regions: one per Parallel branch.
                let _ = writeln!(out, "{pad}    --");
            }
            mermaid_scope(scope, ids, depth + 1, out);
        }
        let _ = writeln!(out, "{pad}}}");
    }
    let _ = writeln!(out, "{pad}[*] --> {}", id(&machine.start_at));
    for (from, to, label) in edges(machine) {
        let to = to.map_or("[*]".to_string(), id);
        let label = if label.is_empty() { String::new() } else { format!(" : {}", label.replace(':', " ")) };
        let _ = writeln!(out, "{pad}{} --> {to}{label}", id(from));
    }
}

fn dot(machine: &StateMachine) -> String {
    let mut out = String::from("digraph workflow {\n    rankdir=TB;\n    node [shape=box, style=rounded];\n");
    let mut clusters = 0;
    dot_scope(machine, "", 1, &mut clusters, &mut out);
    out.push_str("}\n");
    out
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One scope: its states, its start and end markers (suffixed for nested scopes), its edges;
/// a Parallel's branches and a Map's ItemProcessor as clusters inside.
fn dot_scope(machine: &StateMachine, suffix: &str, depth: usize, clusters: &mut usize, out: &mut String) {
    let pad = "    ".repeat(depth);
    let (start, end) = (format!("__start{suffix}"), format!("__end{suffix}"));
    let _ =
        writeln!(out, "{pad}{start} [shape=circle, label=\"\", width=0.2, style=filled, fillcolor=black];");
    let _ = writeln!(
        out,
        "{pad}{end} [shape=doublecircle, label=\"\", width=0.2, style=filled, fillcolor=black];"
    );
    for s in &machine.states {
        let shape = match s.kind {
            Kind::Choice { .. } => "diamond",
            Kind::Wait(_) => "ellipse",
            _ => "box",
        };
        let _ = writeln!(
            out,
            "{pad}{} [shape={shape}, label={}];",
            quote(&s.name),
            quote(&format!("{}\n{}", s.name, s.kind.type_name()))
        );
        for (i, scope) in scopes(s).into_iter().enumerate() {
            *clusters += 1;
            let n = *clusters;
            let label = match s.kind {
                Kind::Parallel { .. } => format!("{} branch {}", s.name, i + 1),
                _ => format!("{} ItemProcessor", s.name),
            };
            let _ = writeln!(
                out,
                "{pad}subgraph cluster_{n} {{\n{pad}    label={};\n{pad}    style=dashed;",
                quote(&label)
            );
            dot_scope(scope, &format!("_{n}"), depth + 1, clusters, out);
            let _ = writeln!(out, "{pad}}}");
            let _ = writeln!(out, "{pad}{} -> __start_{n} [style=dotted, arrowhead=none];", quote(&s.name));
        }
    }
    let _ = writeln!(out, "{pad}{start} -> {};", quote(&machine.start_at));
    for (from, to, label) in edges(machine) {
        let to = to.map_or(end.clone(), quote);
        let style =
            if label.starts_with("Catch") || label.starts_with("Retry") { ", style=dashed" } else { "" };
        let _ = writeln!(out, "{pad}{} -> {to} [label={}{style}];", quote(from), quote(&label));
    }
}

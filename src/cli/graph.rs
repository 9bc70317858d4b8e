//! `recflow graph`: a workflow as a Mermaid state diagram or a Graphviz digraph.

use std::fmt::Write;
use std::path::PathBuf;

use anyhow::Result;

use super::common::{ExitCode, load_definition};
use crate::asl::definition::{Kind, StateMachine};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Mermaid `stateDiagram-v2` (renders on GitHub and in most Markdown viewers).
    Mermaid,
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
}

pub struct GraphOptions {
    pub file: PathBuf,
    pub format: GraphFormat,
}

/// An edge: from, to (None = the end), label.
type Edge = (String, Option<String>, String);

pub fn graph(opts: GraphOptions) -> Result<ExitCode> {
    let (machine, _) = load_definition(&opts.file)?;
    let text = match opts.format {
        GraphFormat::Mermaid => mermaid(&machine),
        GraphFormat::Dot => dot(&machine),
    };
    print!("{text}");
    Ok(ExitCode::Succeeded)
}

fn edges(machine: &StateMachine) -> Vec<Edge> {
    let mut out = Vec::new();
    for s in &machine.states {
        match &s.kind {
            Kind::Choice { choices, default } => {
                for (i, c) in choices.iter().enumerate() {
                    out.push((s.name.clone(), Some(c.next.clone()), format!("Choices[{i}]")));
                }
                if let Some(d) = default {
                    out.push((s.name.clone(), Some(d.clone()), "Default".into()));
                }
            }
            Kind::Succeed | Kind::Fail { .. } => out.push((s.name.clone(), None, String::new())),
            _ => out.push((s.name.clone(), s.next.clone(), String::new())),
        }
        for (i, r) in s.retry.iter().enumerate() {
            out.push((
                s.name.clone(),
                Some(s.name.clone()),
                format!("Retry[{i}] {}", r.error_equals.join(" | ")),
            ));
        }
        for c in &s.catch {
            out.push((s.name.clone(), Some(c.next.clone()), format!("Catch {}", c.error_equals.join(" | "))));
        }
    }
    out
}

fn mermaid(machine: &StateMachine) -> String {
    // Mermaid ids cannot hold spaces or punctuation: number the states and label them.
    let id = |name: &str| format!("s{}", machine.states.iter().position(|s| s.name == name).unwrap_or(0));
    let mut out = String::from("stateDiagram-v2\n");
    for s in &machine.states {
        let _ = writeln!(
            out,
            "    state \"{} ({})\" as {}",
            s.name.replace('"', "'"),
            s.kind.type_name(),
            id(&s.name)
        );
    }
    let _ = writeln!(out, "    [*] --> {}", id(&machine.start_at));
    for (from, to, label) in edges(machine) {
        let to = to.map_or("[*]".to_string(), |t| id(&t));
        let label = if label.is_empty() { String::new() } else { format!(" : {}", label.replace(':', " ")) };
        let _ = writeln!(out, "    {} --> {to}{label}", id(&from));
    }
    out
}

fn dot(machine: &StateMachine) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::from("digraph workflow {\n    rankdir=TB;\n    node [shape=box, style=rounded];\n");
    let _ =
        writeln!(out, "    __start [shape=circle, label=\"\", width=0.2, style=filled, fillcolor=black];");
    let _ = writeln!(
        out,
        "    __end [shape=doublecircle, label=\"\", width=0.2, style=filled, fillcolor=black];"
    );
    for s in &machine.states {
        let shape = match s.kind {
            Kind::Choice { .. } => "diamond",
            Kind::Wait(_) => "ellipse",
            _ => "box",
        };
        let _ = writeln!(
            out,
            "    {} [shape={shape}, label={}];",
            quote(&s.name),
            quote(&format!("{}\n{}", s.name, s.kind.type_name()))
        );
    }
    let _ = writeln!(out, "    __start -> {};", quote(&machine.start_at));
    for (from, to, label) in edges(machine) {
        let to = to.map_or("__end".to_string(), |t| quote(&t));
        let style =
            if label.starts_with("Catch") || label.starts_with("Retry") { ", style=dashed" } else { "" };
        let _ = writeln!(out, "    {} -> {to} [label={}{style}];", quote(&from), quote(&label));
    }
    out.push_str("}\n");
    out
}

//! STAND-IN: replaced at merge by the real recommender.
//!
//! Same signatures as the real module; trivial bodies (popularity "model", metrics all 0.5) so the
//! Personalize control plane can be built and tested on its own branch.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    pub user_id: String,
    pub item_id: String,
    pub timestamp: i64,
    pub event_type: Option<String>,
    pub event_value: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("line {line}: {message}")]
    BadRow { line: u64, message: String },
    #[error("missing required column {0}")]
    MissingColumn(String),
    #[error("the file has no data rows")]
    Empty,
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
}

pub fn read_interactions(reader: impl BufRead) -> Result<Vec<Interaction>, ImportError> {
    let mut lines = reader.lines();
    let header = match lines.next() {
        Some(line) => line?,
        None => return Err(ImportError::Empty),
    };
    let columns: Vec<String> = header.split(',').map(|c| c.trim().to_ascii_uppercase()).collect();
    let find = |name: &str| {
        columns.iter().position(|c| c == name).ok_or_else(|| ImportError::MissingColumn(name.to_string()))
    };
    let (user, item, ts) = (find("USER_ID")?, find("ITEM_ID")?, find("TIMESTAMP")?);
    let mut out = Vec::new();
    for (index, line) in lines.enumerate() {
        let line = line?;
        let line_no = index as u64 + 2;
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').collect();
        let cell = |i: usize| {
            cells.get(i).map(|c| c.trim().to_string()).ok_or_else(|| ImportError::BadRow {
                line: line_no,
                message: format!("expected {} columns, found {}", columns.len(), cells.len()),
            })
        };
        let timestamp = cell(ts)?.parse::<i64>().map_err(|e| ImportError::BadRow {
            line: line_no,
            message: format!("TIMESTAMP is not an integer: {e}"),
        })?;
        out.push(Interaction {
            user_id: cell(user)?,
            item_id: cell(item)?,
            timestamp,
            event_type: None,
            event_value: None,
        });
    }
    if out.is_empty() {
        return Err(ImportError::Empty);
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Recipe {
    UserPersonalization,
    Sims,
    PopularityCount,
    PersonalizedRanking,
}

impl Recipe {
    pub fn from_arn(arn: &str) -> Option<Recipe> {
        match arn.rsplit('/').next()? {
            "aws-user-personalization" | "aws-user-personalization-v2" => Some(Recipe::UserPersonalization),
            "aws-sims" => Some(Recipe::Sims),
            "aws-popularity-count" => Some(Recipe::PopularityCount),
            "aws-personalized-ranking" | "aws-personalized-ranking-v2" => Some(Recipe::PersonalizedRanking),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TrainError(pub String);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    recipe: Recipe,
    popular: Vec<String>,
    metrics: BTreeMap<String, f64>,
}

pub fn train(recipe: Recipe, interactions: &[Interaction]) -> Result<Model, TrainError> {
    let mut per_user: HashMap<&str, usize> = HashMap::new();
    for i in interactions {
        *per_user.entry(&i.user_id).or_default() += 1;
    }
    if interactions.len() < 1000 {
        return Err(TrainError("Dataset has fewer than 1000 interactions.".into()));
    }
    if per_user.values().filter(|n| **n >= 2).count() < 25 {
        return Err(TrainError("Dataset has fewer than 25 users with at least 2 interactions each.".into()));
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for i in interactions {
        *counts.entry(&i.item_id).or_default() += 1;
    }
    let mut popular: Vec<(&str, usize)> = counts.into_iter().collect();
    popular.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let metrics = ["coverage", "mean_reciprocal_rank_at_25", "precision_at_5"]
        .into_iter()
        .map(|k| (k.to_string(), 0.5))
        .collect();
    Ok(Model { recipe, popular: popular.into_iter().map(|(i, _)| i.to_string()).collect(), metrics })
}

impl Model {
    pub fn recipe(&self) -> Recipe {
        self.recipe
    }
    pub fn metrics(&self) -> &BTreeMap<String, f64> {
        &self.metrics
    }
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, serde_json::to_vec(self)?)
    }
    pub fn load(path: &Path) -> std::io::Result<Model> {
        Ok(serde_json::from_slice(&std::fs::read(path)?)?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchStats {
    pub lines: u64,
    pub errors: u64,
}

pub fn run_batch(
    model: &Model,
    input: impl BufRead,
    mut output: impl Write,
    num_results: usize,
) -> std::io::Result<BatchStats> {
    let mut stats = BatchStats { lines: 0, errors: 0 };
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        stats.lines += 1;
        let record = match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(input) => {
                let items: Vec<&String> = model.popular.iter().take(num_results).collect();
                serde_json::json!({"input": input, "output": {"recommendedItems": items}, "error": null})
            }
            Err(e) => {
                stats.errors += 1;
                serde_json::json!({"input": line, "output": {"recommendedItems": []}, "error": e.to_string()})
            }
        };
        writeln!(output, "{record}")?;
    }
    Ok(stats)
}

pub fn run_batch_segment(
    model: &Model,
    input: impl BufRead,
    output: impl Write,
    num_results: usize,
) -> std::io::Result<BatchStats> {
    run_batch(model, input, output, num_results)
}

//! Filters applied to recommendations: a parsed [`FilterExpression`] over the dataset group's
//! data (the user's own interactions, item metadata, user metadata) and a request's
//! `filterValues`, as the developer guide's "Filtering recommendations and user segments"
//! describes it.
//!
//! - `Interactions.EVENT_TYPE IN (...)` matches the items the requesting user interacted with by
//!   one of those event types (matched without regard to case; `"*"` matches every type), among
//!   the user's 100 most recent interactions per event type (filter-expressions page).
//! - `Items.FIELD` conditions read the Items dataset; a categorical value holding several values
//!   separated by `|` matches when one of them does. Items without the field match no
//!   condition on it, `NOT IN` included (the guide does not say; SQL's NULL behaves alike).
//! - A placeholder without a value: an EXCLUDE expression is then not applied, while an INCLUDE
//!   expression is an error (GetRecommendations API reference, `filterValues`).
//! - `IF CurrentUser.FIELD ...` applies its expression only to users whose Users row satisfies it.
//! - `CurrentItem.FIELD` is the field of the item a related-items request names; elsewhere it is
//!   an error.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;

use super::Interaction;
use super::filter_expression::{Condition, FilterExpression, Literal, Op, Operand, Source, Value};
use super::model::Model;

/// Most recent interactions per user and event type that a filter considers (adjustable quota
/// on AWS; fixed here).
pub const RECENT_PER_EVENT_TYPE: usize = 100;

/// The dataset group's data a filter reads.
#[derive(Debug, Default)]
pub struct FilterData {
    /// Per user: (event type in lower case, item id), at most [`RECENT_PER_EVENT_TYPE`] per type.
    interactions: HashMap<String, Vec<(String, String)>>,
    items: Metadata,
    users: Metadata,
}

/// Rows of an Items or Users dataset: id -> upper-case column -> raw value.
#[derive(Debug, Default)]
struct Metadata(HashMap<String, HashMap<String, String>>);

impl Metadata {
    fn read(&mut self, reader: impl BufRead, id_column: &str) -> Result<(), String> {
        let mut csv = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(reader);
        let headers: Vec<String> =
            csv.headers().map_err(|e| e.to_string())?.iter().map(|h| h.trim().to_ascii_uppercase()).collect();
        let id =
            headers.iter().position(|h| h == id_column).ok_or_else(|| format!("no {id_column} column"))?;
        for record in csv.records() {
            let record = record.map_err(|e| e.to_string())?;
            let Some(key) = record.get(id) else { continue };
            let row = headers.iter().zip(record.iter()).map(|(h, v)| (h.clone(), v.to_string())).collect();
            self.0.insert(key.to_string(), row);
        }
        Ok(())
    }

    fn field(&self, id: &str, field: &str) -> Option<&str> {
        self.0.get(id).and_then(|row| row.get(field)).map(String::as_str).filter(|v| !v.is_empty())
    }
}

impl FilterData {
    pub fn new() -> FilterData {
        FilterData::default()
    }

    /// Adds interactions (in any order); keeps each user's most recent per event type.
    pub fn add_interactions(&mut self, mut interactions: Vec<Interaction>) {
        interactions.sort_by_key(|i| std::cmp::Reverse(i.timestamp));
        let mut counts: HashMap<(String, String), usize> = HashMap::new();
        for i in interactions {
            let event = i.event_type.unwrap_or_default().to_lowercase();
            let n = counts.entry((i.user_id.clone(), event.clone())).or_default();
            if *n < RECENT_PER_EVENT_TYPE {
                *n += 1;
                self.interactions.entry(i.user_id).or_default().push((event, i.item_id));
            }
        }
    }

    /// Adds an Items dataset CSV (header with ITEM_ID).
    pub fn add_items_csv(&mut self, reader: impl BufRead) -> Result<(), String> {
        self.items.read(reader, "ITEM_ID").map_err(|e| format!("items data: {e}"))
    }

    /// Adds a Users dataset CSV (header with USER_ID).
    pub fn add_users_csv(&mut self, reader: impl BufRead) -> Result<(), String> {
        self.users.read(reader, "USER_ID").map_err(|e| format!("users data: {e}"))
    }
}

/// A filter ready to apply: its expression and the data it reads.
#[derive(Debug)]
pub struct ItemFilter {
    expression: FilterExpression,
    data: FilterData,
}

/// What one request names besides its filter values.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    pub user_id: Option<&'a str>,
    /// The item of a related-items request.
    pub item_id: Option<&'a str>,
}

impl ItemFilter {
    pub fn new(expression: FilterExpression, data: FilterData) -> ItemFilter {
        ItemFilter { expression, data }
    }

    /// The filter for one request with its `filterValues`; an error (the request's
    /// InvalidInputException, or a batch line's error) when an INCLUDE expression lacks a
    /// value, a value does not parse, or `CurrentItem` is used without an item.
    pub fn request<'f>(
        &'f self,
        model: &'f Model,
        subject: Subject<'_>,
        values: &HashMap<String, String>,
    ) -> Result<RequestFilter<'f>, String> {
        let mut parts = Vec::new();
        'parts: for part in &self.expression.parts {
            let missing: Vec<&str> = part
                .conditions()
                .flat_map(Condition::placeholders)
                .filter(|p| !values.contains_key(*p))
                .collect();
            if let Some(first) = missing.first() {
                if part.include {
                    return Err(format!(
                        "The filter's INCLUDE expression needs a value for ${first}: give it in filterValues."
                    ));
                }
                continue;
            }
            for condition in &part.only_if {
                let holds = subject.user_id.is_some_and(|user| {
                    let value = self.data.users.field(user, &condition.field);
                    resolve(condition, values, None)
                        .is_ok_and(|literals| matches(value, condition.op, &literals))
                });
                if !holds {
                    continue 'parts;
                }
            }
            let mut any_of = Vec::new();
            for all in &part.any_of {
                let mut resolved = Vec::new();
                for condition in all {
                    resolved.push(self.resolve_condition(model, condition, subject, values)?);
                }
                any_of.push(resolved);
            }
            parts.push((part.include, any_of));
        }
        Ok(RequestFilter { filter: self, model, parts })
    }

    fn resolve_condition<'f>(
        &'f self,
        model: &Model,
        condition: &'f Condition,
        subject: Subject<'_>,
        values: &HashMap<String, String>,
    ) -> Result<Resolved<'f>, String> {
        let current = match &condition.operand {
            Operand::CurrentItem(field) => {
                let item = subject.item_id.ok_or_else(|| {
                    "CurrentItem applies only to related-items recommendations, whose request names an item."
                        .to_string()
                })?;
                Some(self.data.items.field(item, field).unwrap_or_default())
            }
            Operand::Values(_) => None,
        };
        let literals = resolve(condition, values, current)?;
        match condition.source {
            Source::Interactions => {
                let events = subject.user_id.and_then(|u| self.data.interactions.get(u));
                let wanted = |event: &str| {
                    literals.iter().any(|l| match l {
                        Literal::Str(s) => s == "*" || s.eq_ignore_ascii_case(event),
                        Literal::Num(n) => event.parse::<f64>() == Ok(*n),
                    })
                };
                let keep_in = condition.op == Op::In;
                let items = events
                    .into_iter()
                    .flatten()
                    .filter(|(event, _)| wanted(event.as_str()) == keep_in)
                    .filter_map(|(_, item)| model.item(item))
                    .collect();
                Ok(Resolved::Items(items))
            }
            _ => Ok(Resolved::Field { field: &condition.field, op: condition.op, literals }),
        }
    }
}

/// A condition with its values known.
#[derive(Debug)]
enum Resolved<'f> {
    /// Items of the user's matching interactions (model ids).
    Items(HashSet<u32>),
    Field {
        field: &'f str,
        op: Op,
        literals: Vec<Literal>,
    },
}

/// A filter bound to one request: which items it keeps.
#[derive(Debug)]
pub struct RequestFilter<'f> {
    filter: &'f ItemFilter,
    model: &'f Model,
    /// (include, OR of ANDs) for each expression that applies.
    parts: Vec<(bool, Vec<Vec<Resolved<'f>>>)>,
}

impl RequestFilter<'_> {
    /// Whether the item (a model id) passes every expression that applies.
    pub fn keep(&self, item: u32) -> bool {
        self.parts.iter().all(|(include, any_of)| {
            let matched = any_of.iter().any(|all| all.iter().all(|c| self.matches(c, item)));
            matched == *include
        })
    }

    /// Whether an item id outside the model's catalogue passes (personalized ranking's input may
    /// name one): it has no interactions, so only its metadata can match.
    pub fn keep_id(&self, item_id: &str) -> bool {
        match self.model.item(item_id) {
            Some(j) => self.keep(j),
            None => self.parts.iter().all(|(include, any_of)| {
                let matched = any_of.iter().any(|all| {
                    all.iter().all(|c| match c {
                        Resolved::Items(_) => false,
                        Resolved::Field { field, op, literals } => {
                            matches(self.filter.data.items.field(item_id, field), *op, literals)
                        }
                    })
                });
                matched == *include
            }),
        }
    }

    fn matches(&self, condition: &Resolved<'_>, item: u32) -> bool {
        match condition {
            Resolved::Items(items) => items.contains(&item),
            Resolved::Field { field, op, literals } => {
                let id = &self.model.item_ids()[item as usize];
                matches(self.filter.data.items.field(id, field), *op, literals)
            }
        }
    }
}

/// The condition's values: its literals, its placeholders' values, or the current item's field.
fn resolve(
    condition: &Condition,
    values: &HashMap<String, String>,
    current: Option<&str>,
) -> Result<Vec<Literal>, String> {
    let mut out = Vec::new();
    match &condition.operand {
        Operand::CurrentItem(_) => {
            out.extend(
                current
                    .unwrap_or_default()
                    .split('|')
                    .filter(|v| !v.is_empty())
                    .map(|v| Literal::Str(v.to_string())),
            );
        }
        Operand::Values(list) => {
            for value in list {
                match value {
                    Value::Literal(l) => out.push(l.clone()),
                    Value::Placeholder(name) => {
                        let text = values.get(name).map(String::as_str).unwrap_or_default();
                        out.extend(parse_values(text).map_err(|e| format!("filterValues {name}: {e}"))?);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// A `filterValues` entry: `"\"Comedy\",\"Drama\""` (quoted strings, comma-separated) or a
/// number such as `"100"` (developer guide: "Filtering recommendations", values with
/// placeholders).
pub fn parse_values(text: &str) -> Result<Vec<Literal>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').ok_or_else(|| format!("the string in {text:?} is not closed"))?;
            out.push(Literal::Str(quoted[..end].to_string()));
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let raw = rest[..end].trim();
            out.push(match raw.parse::<f64>() {
                Ok(n) if n.is_finite() => Literal::Num(n),
                _ => Literal::Str(raw.to_string()),
            });
            rest = &rest[end..];
        }
        match rest.strip_prefix(',') {
            Some(after) => rest = after.trim_start(),
            None if rest.is_empty() => {}
            None => return Err(format!("expected ',' between values in {text:?}")),
        }
    }
    if out.is_empty() {
        return Err("no value given".into());
    }
    Ok(out)
}

/// Whether a metadata value (absent: None) satisfies `op` against the literals.
fn matches(value: Option<&str>, op: Op, literals: &[Literal]) -> bool {
    let Some(value) = value else { return false };
    let equal = |v: &str, l: &Literal| match l {
        Literal::Str(s) => v == s || matches!((v.parse::<f64>(), s.parse::<f64>()), (Ok(a), Ok(b)) if a == b),
        Literal::Num(n) => v.trim().parse::<f64>() == Ok(*n),
    };
    let any_equal = || value.split('|').any(|v| literals.iter().any(|l| equal(v, l)));
    match op {
        Op::In | Op::Eq => any_equal(),
        Op::NotIn => !any_equal(),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let Ok(v) = value.trim().parse::<f64>() else { return false };
            literals.iter().any(|l| {
                let bound = match l {
                    Literal::Num(n) => *n,
                    Literal::Str(s) => match s.trim().parse::<f64>() {
                        Ok(n) => n,
                        Err(_) => return false,
                    },
                };
                match op {
                    Op::Lt => v < bound,
                    Op::Le => v <= bound,
                    Op::Gt => v > bound,
                    _ => v >= bound,
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_parse_as_the_guide_writes_them() {
        assert_eq!(
            parse_values("\"Comedy\",\"Drama\"").unwrap(),
            vec![Literal::Str("Comedy".into()), Literal::Str("Drama".into())]
        );
        assert_eq!(parse_values(" 100 ").unwrap(), vec![Literal::Num(100.0)]);
        assert_eq!(parse_values("\"a,b\"").unwrap(), vec![Literal::Str("a,b".into())]);
        assert!(parse_values("\"open").is_err());
        assert!(parse_values("").is_err());
        assert!(parse_values("\"a\" \"b\"").is_err());
    }

    #[test]
    fn metadata_comparisons() {
        let genres = [Literal::Str("Comedy".into())];
        assert!(matches(Some("Drama|Comedy"), Op::In, &genres));
        assert!(!matches(Some("Drama"), Op::In, &genres));
        assert!(matches(Some("Drama"), Op::NotIn, &genres));
        assert!(!matches(None, Op::NotIn, &genres));
        assert!(!matches(Some("comedy"), Op::In, &genres), "metadata is matched with case");
        assert!(matches(Some("150"), Op::Gt, &[Literal::Num(100.0)]));
        assert!(!matches(Some("100"), Op::Gt, &[Literal::Num(100.0)]));
        assert!(matches(Some("100"), Op::Ge, &[Literal::Str("100".into())]));
        assert!(!matches(Some("cheap"), Op::Lt, &[Literal::Num(100.0)]));
        assert!(matches(Some("3.0"), Op::Eq, &[Literal::Num(3.0)]));
    }
}

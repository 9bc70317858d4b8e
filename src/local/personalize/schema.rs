//! Dataset schemas: the Avro record CreateSchema takes, the fields each dataset type requires,
//! and the check of an import's CSV against the dataset's schema.
//!
//! Rules (Personalize developer guide, "Creating schema JSON files for Amazon Personalize schemas"
//! and the per-type schema pages; CreateDataset and CreateDatasetImportJob API references):
//! - A schema is an Avro `record` with a `fields` array; each field has a `name` and a `type`
//!   that is a primitive (`string`, `long`, `int`, `float`, `double`, `boolean`) or a union of
//!   one primitive with `null` (`["null", "string"]`), which makes the field nullable.
//! - Required fields by dataset type: Interactions USER_ID (string), ITEM_ID (string),
//!   TIMESTAMP (long); Items ITEM_ID (string); Users USER_ID (string); Actions ACTION_ID
//!   (string); Action interactions USER_ID, ACTION_ID, TIMESTAMP and EVENT_TYPE. A Domain
//!   dataset group's Interactions also need EVENT_TYPE (string), and its schema must be of the
//!   same domain (a domain schema cannot go into a Custom group, nor the reverse).
//! - An import fails when its CSV lacks a column for a field that is not nullable, or when a
//!   value does not parse as its field's type (an empty value is a null, allowed only in a
//!   nullable field). Column names match field names without regard to case; columns the
//!   schema does not declare are ignored. Personalize's failureReason texts are not all
//!   published; the missing-columns wording follows the one users report ("Input CSV is missing
//!   the following columns: [EVENT_TYPE]"), the others are the emulator's own.

use std::io::Read;

use serde_json::Value;

use super::protocol::ApiError;
use crate::local::s3::objects::StoredObject;

/// One schema field: its name, its primitive type, and whether `null` is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub kind: Primitive,
    pub nullable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Primitive {
    String,
    Long,
    Int,
    Float,
    Double,
    Boolean,
}

impl Primitive {
    fn parse(name: &str) -> Option<Primitive> {
        Some(match name {
            "string" => Primitive::String,
            "long" => Primitive::Long,
            "int" => Primitive::Int,
            "float" => Primitive::Float,
            "double" => Primitive::Double,
            "boolean" => Primitive::Boolean,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Primitive::String => "string",
            Primitive::Long => "long",
            Primitive::Int => "int",
            Primitive::Float => "float",
            Primitive::Double => "double",
            Primitive::Boolean => "boolean",
        }
    }

    fn accepts(self, value: &str) -> bool {
        match self {
            Primitive::String => true,
            Primitive::Long => value.parse::<i64>().is_ok(),
            Primitive::Int => value.parse::<i32>().is_ok(),
            Primitive::Float | Primitive::Double => value.parse::<f64>().is_ok_and(f64::is_finite),
            Primitive::Boolean => value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false"),
        }
    }
}

/// Parses CreateSchema's `schema` member; an InvalidInputException names what is wrong.
pub fn parse(text: &str) -> Result<Vec<Field>, ApiError> {
    let bad = |why: String| ApiError::invalid_input(format!("The schema is not a valid Avro record: {why}"));
    let doc: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    if doc.get("type").and_then(Value::as_str) != Some("record") {
        return Err(bad("its type must be \"record\"".into()));
    }
    let fields = doc.get("fields").and_then(Value::as_array).ok_or_else(|| bad("no fields array".into()))?;
    let mut out: Vec<Field> = Vec::new();
    for field in fields {
        let name =
            field.get("name").and_then(Value::as_str).ok_or_else(|| bad("a field has no name".into()))?;
        if out.iter().any(|f| f.name.eq_ignore_ascii_case(name)) {
            return Err(bad(format!("the field {name} is declared twice")));
        }
        let unsupported = || bad(format!("the field {name} has an unsupported type"));
        let (kind, nullable) = match field.get("type") {
            Some(Value::String(t)) => (Primitive::parse(t).ok_or_else(unsupported)?, false),
            Some(Value::Array(union)) => {
                let names: Vec<&str> = union.iter().filter_map(Value::as_str).collect();
                let others: Vec<&str> = names.iter().copied().filter(|t| *t != "null").collect();
                if names.len() != union.len() || others.len() != 1 || names.len() > 2 {
                    return Err(unsupported());
                }
                (Primitive::parse(others[0]).ok_or_else(unsupported)?, names.len() == 2)
            }
            _ => return Err(unsupported()),
        };
        out.push(Field { name: name.to_string(), kind, nullable });
    }
    Ok(out)
}

/// The fields a dataset of `dataset_type` (upper case) requires, with their types.
fn required(dataset_type: &str, domain: bool) -> Vec<(&'static str, Primitive)> {
    use Primitive::{Long, String};
    match dataset_type {
        "INTERACTIONS" if domain => {
            vec![("USER_ID", String), ("ITEM_ID", String), ("TIMESTAMP", Long), ("EVENT_TYPE", String)]
        }
        "INTERACTIONS" => vec![("USER_ID", String), ("ITEM_ID", String), ("TIMESTAMP", Long)],
        "ITEMS" => vec![("ITEM_ID", String)],
        "USERS" => vec![("USER_ID", String)],
        "ACTIONS" => vec![("ACTION_ID", String)],
        "ACTION_INTERACTIONS" => {
            vec![("USER_ID", String), ("ACTION_ID", String), ("TIMESTAMP", Long), ("EVENT_TYPE", String)]
        }
        _ => Vec::new(),
    }
}

/// CreateDataset's check of a schema against the dataset type and the groups' domains.
pub fn check_dataset(
    fields: &[Field],
    dataset_type: &str,
    schema_domain: Option<&str>,
    group_domain: Option<&str>,
) -> Result<(), ApiError> {
    if schema_domain != group_domain {
        return Err(ApiError::invalid_input(format!(
            "The schema's domain ({}) does not match the dataset group's domain ({}).",
            schema_domain.unwrap_or("none"),
            group_domain.unwrap_or("none")
        )));
    }
    let mut problems = Vec::new();
    for (name, kind) in required(dataset_type, group_domain.is_some()) {
        match fields.iter().find(|f| f.name == name) {
            None => problems.push(format!("{name} is missing")),
            Some(f) if f.kind != kind || f.nullable => {
                problems.push(format!("{name} must be of type \"{}\" and not nullable", kind.name()))
            }
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_input(format!(
            "The schema does not fit a dataset of type {dataset_type}: {}.",
            problems.join("; ")
        )))
    }
}

/// Checks every file of an import against the schema; the failure reason on the first problem.
pub fn check_csv(fields: &[Field], files: &[StoredObject]) -> Result<(), String> {
    for file in files {
        let name = file.file_name();
        let reader = std::fs::File::open(&file.path).map_err(|e| format!("Cannot read {name}: {e}"))?;
        check_reader(fields, reader).map_err(|why| format!("{name}: {why}"))?;
    }
    Ok(())
}

fn check_reader(fields: &[Field], reader: impl Read) -> Result<(), String> {
    let mut csv = csv::ReaderBuilder::new().has_headers(true).from_reader(reader);
    let header = csv.headers().map_err(|e| e.to_string())?.clone();
    let column = |field: &Field| header.iter().position(|h| h.trim().eq_ignore_ascii_case(&field.name));
    let missing: Vec<&str> =
        fields.iter().filter(|f| !f.nullable && column(f).is_none()).map(|f| f.name.as_str()).collect();
    if !missing.is_empty() {
        return Err(format!("Input CSV is missing the following columns: [{}]", missing.join(", ")));
    }
    let checked: Vec<(usize, &Field)> = fields.iter().filter_map(|f| column(f).map(|c| (c, f))).collect();
    for record in csv.records() {
        let record = record.map_err(|e| e.to_string())?;
        let line = record.position().map_or(0, |p| p.line());
        for (index, field) in &checked {
            let value = record.get(*index).unwrap_or("");
            if value.is_empty() {
                if !field.nullable {
                    return Err(format!(
                        "line {line}: the column {} has no value, and it is not nullable",
                        field.name
                    ));
                }
            } else if !field.kind.accepts(value) {
                return Err(format!(
                    "line {line}: the value '{value}' in column {} is not of type {}",
                    field.name,
                    field.kind.name()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERACTIONS: &str = r#"{"type":"record","name":"Interactions","fields":[
        {"name":"USER_ID","type":"string"},{"name":"ITEM_ID","type":"string"},
        {"name":"TIMESTAMP","type":"long"},{"name":"EVENT_TYPE","type":"string"},
        {"name":"EVENT_VALUE","type":["null","float"]}],"version":"1.0"}"#;

    #[test]
    fn unions_with_null_are_nullable_and_other_types_are_refused() {
        let fields = parse(INTERACTIONS).unwrap();
        assert_eq!(fields[3], Field { name: "EVENT_TYPE".into(), kind: Primitive::String, nullable: false });
        assert!(fields[4].nullable);
        for bad in [
            r#"{"type":"enum","fields":[]}"#,
            r#"{"type":"record","fields":[{"name":"A","type":"bytes"}]}"#,
            r#"{"type":"record","fields":[{"name":"A","type":["string","long"]}]}"#,
            r#"{"type":"record","fields":[{"name":"A","type":"string"},{"name":"a","type":"string"}]}"#,
        ] {
            assert_eq!(parse(bad).unwrap_err().kind, "InvalidInputException", "{bad}");
        }
    }

    #[test]
    fn dataset_types_need_their_fields() {
        let fields = parse(INTERACTIONS).unwrap();
        assert!(check_dataset(&fields, "INTERACTIONS", None, None).is_ok());
        assert!(check_dataset(&fields, "INTERACTIONS", Some("ECOMMERCE"), Some("ECOMMERCE")).is_ok());
        assert!(check_dataset(&fields, "INTERACTIONS", None, Some("ECOMMERCE")).is_err());
        assert!(check_dataset(&fields, "ITEMS", None, None).is_ok());
        let err = check_dataset(&fields, "ACTIONS", None, None).unwrap_err();
        assert!(err.message.contains("ACTION_ID is missing"), "{}", err.message);
        let nullable_ts = parse(
            r#"{"type":"record","fields":[{"name":"USER_ID","type":"string"},
            {"name":"ITEM_ID","type":"string"},{"name":"TIMESTAMP","type":["null","long"]}]}"#,
        )
        .unwrap();
        let err = check_dataset(&nullable_ts, "INTERACTIONS", None, None).unwrap_err();
        assert!(err.message.contains("TIMESTAMP must be of type \"long\""), "{}", err.message);
    }

    #[test]
    fn csv_columns_and_values_follow_the_schema() {
        let fields = parse(INTERACTIONS).unwrap();
        let check = |csv: &str| check_reader(&fields, csv.as_bytes());
        assert_eq!(check("user_id,ITEM_ID,TIMESTAMP,EVENT_TYPE\nu,i,1,click\n"), Ok(()));
        assert_eq!(
            check("USER_ID,ITEM_ID,TIMESTAMP\nu,i,1\n").unwrap_err(),
            "Input CSV is missing the following columns: [EVENT_TYPE]"
        );
        assert_eq!(
            check("USER_ID,TIMESTAMP\nu,1\n").unwrap_err(),
            "Input CSV is missing the following columns: [ITEM_ID, EVENT_TYPE]"
        );
        let err =
            check("USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\nu,i,1,c,\nu,i,1,c,abc\n").unwrap_err();
        assert_eq!(err, "line 3: the value 'abc' in column EVENT_VALUE is not of type float");
        let err = check("USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\nu,i,1,\n").unwrap_err();
        assert!(err.contains("EVENT_TYPE has no value"), "{err}");
        assert!(check("USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\nu,i,1.5,c\n").is_err());
    }
}

//! The two query languages of ASL: JSONPath (paths, payload templates, intrinsic functions) and
//! JSONata (`{% ... %}` expressions). A machine picks one with `QueryLanguage` (JSONPath if
//! absent) and a state may pick its own; fields that exist in both, such as `Assign`, are read in
//! the state's language.

use serde_json::Value;

use super::errors::DefinitionError;
use super::fields::kind;
use super::jsonata;
use super::payload::Template;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryLanguage {
    #[default]
    JsonPath,
    Jsonata,
}

impl QueryLanguage {
    /// The name as ASL writes it: `JSONPath`, `JSONata`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryLanguage::JsonPath => "JSONPath",
            QueryLanguage::Jsonata => "JSONata",
        }
    }
}

/// A field's value in the state's language: a payload template (keys ending in `.$` take paths
/// or intrinsic calls) in JSONPath, a template of `{% ... %}` expressions in JSONata.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Paths(Template),
    Jsonata(jsonata::Template),
}

impl Payload {
    /// Reads a field in `language`; problems are pushed with their place (`at`).
    pub fn parse(
        value: &Value,
        at: &str,
        language: QueryLanguage,
        errors: &mut Vec<DefinitionError>,
    ) -> Payload {
        match language {
            QueryLanguage::JsonPath => Payload::Paths(Template::parse(value, at, errors)),
            QueryLanguage::Jsonata => Payload::Jsonata(jsonata::Template::parse(value, at, errors)),
        }
    }

    /// An `Assign` field: an object whose keys name the variables it sets (a JSONPath key
    /// ending in `.$` takes its value from a path). `states` is reserved (it is `$states` in
    /// JSONata), and a name needs at least one character.
    pub fn parse_assign(
        value: &Value,
        at: &str,
        language: QueryLanguage,
        errors: &mut Vec<DefinitionError>,
    ) -> Option<Payload> {
        let Value::Object(map) = value else {
            errors.push(DefinitionError::new(
                at,
                format!("must be an object of variable names and values, not {}", kind(value)),
            ));
            return None;
        };
        for key in map.keys() {
            let name = match language {
                QueryLanguage::JsonPath => key.strip_suffix(".$").unwrap_or(key),
                QueryLanguage::Jsonata => key,
            };
            if name.is_empty() {
                errors.push(DefinitionError::new(format!("{at}.{key}"), "a variable needs a name"));
            } else if name == "states" {
                errors.push(DefinitionError::new(
                    format!("{at}.{key}"),
                    "'states' is reserved: $states holds the state's input, result and context",
                ));
            }
        }
        Some(Payload::parse(value, at, language, errors))
    }
}

//! Duplicate keys in a definition's JSON. A JSON parser keeps one of two members with the same
//! name (serde_json the last), so a second state named like the first, or a field given twice,
//! would silently vanish; recflow refuses the document instead, naming where the key repeats.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The first key that appears twice in one object of `text`, as a dotted location and the key
/// (`("States", "A")`); None when every object's keys are distinct or `text` is not JSON (the
/// JSON parser reports that). Nesting is bounded by serde_json's recursion limit (128).
pub fn first_duplicate(text: &str) -> Option<(String, String)> {
    let mut de = serde_json::Deserializer::from_str(text);
    (Checker { at: String::new() }).deserialize(&mut de).unwrap_or_default()
}

/// Walks one value at `at`; gives the first duplicate below it.
struct Checker {
    at: String,
}

impl Checker {
    fn below(&self, key: &str) -> Checker {
        Checker { at: if self.at.is_empty() { key.to_string() } else { format!("{}.{key}", self.at) } }
    }
}

type Found = Option<(String, String)>;

impl<'de> DeserializeSeed<'de> for Checker {
    type Value = Found;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Found, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checker {
    type Value = Found;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let mut keys = HashSet::new();
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            let below = map.next_value_seed(self.below(&key))?;
            if found.is_none() {
                found = if keys.insert(key.clone()) { below } else { Some((self.at.clone(), key)) };
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Found, A::Error> {
        let mut found = None;
        let mut i = 0;
        while let Some(below) = seq.next_element_seed(Checker { at: format!("{}[{i}]", self.at) })? {
            found = found.or(below);
            i += 1;
        }
        Ok(found)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Found, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Found, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Found, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Found, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Found, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Found, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_repeated_key_with_its_place() {
        let twice = r#"{"StartAt":"A","States":{"A":{"Type":"Pass","End":true},"A":{"Type":"Succeed"}}}"#;
        assert_eq!(first_duplicate(twice), Some(("States".into(), "A".into())));
        let nested = r#"{"States":{"A":{"Parameters":{"x":[{"k":1,"k":2}]}}}}"#;
        assert_eq!(first_duplicate(nested), Some(("States.A.Parameters.x[0]".into(), "k".into())));
        assert_eq!(first_duplicate(r#"{"a":{"b":1},"c":{"b":2}}"#), None);
        assert_eq!(first_duplicate("not json"), None);
    }
}

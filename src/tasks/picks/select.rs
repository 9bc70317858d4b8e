//! One line of batch inference output in, one line of picks out.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// The parts of a batch inference output line that picks need, borrowed from the line: the user
/// id, item ids and scores stay raw JSON text and are copied to the picks as they are (no
/// unescaping, no float round trip). The lists go into caller-owned vectors, reused line after
/// line.
struct LineSeed<'v, 'a> {
    items: &'v mut Vec<&'a RawValue>,
    scores: &'v mut Vec<&'a RawValue>,
}

#[derive(Default)]
struct LineFields<'a> {
    input: Option<&'a RawValue>,
    error: Option<&'a RawValue>,
    has_scores: bool,
}

enum Key {
    Input,
    Output,
    Error,
    RecommendedItems,
    Scores,
    UserId,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "input" => Key::Input,
                    "output" => Key::Output,
                    "error" => Key::Error,
                    "recommendedItems" => Key::RecommendedItems,
                    "scores" => Key::Scores,
                    "userId" => Key::UserId,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> DeserializeSeed<'de> for LineSeed<'_, 'de> {
    type Value = LineFields<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LineSeed<'_, 'de> {
    type Value = LineFields<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a batch inference output object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = LineFields::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Input => fields.input = Some(map.next_value()?),
                Key::Error => fields.error = map.next_value()?,
                Key::Output => {
                    fields.has_scores = map
                        .next_value_seed(OutputSeed { items: &mut *self.items, scores: &mut *self.scores })?
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(fields)
    }
}

/// `"output"`: fills the lists; says whether it had scores. `null` counts as no items.
struct OutputSeed<'v, 'a> {
    items: &'v mut Vec<&'a RawValue>,
    scores: &'v mut Vec<&'a RawValue>,
}

impl<'de> DeserializeSeed<'de> for OutputSeed<'_, 'de> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OutputSeed<'_, 'de> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with recommendedItems")
    }
    fn visit_none<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_map(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut has_scores = false;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::RecommendedItems => map.next_value_seed(ListSeed(&mut *self.items))?,
                Key::Scores => {
                    map.next_value_seed(ListSeed(&mut *self.scores))?;
                    has_scores = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(has_scores)
    }
}

/// A JSON array (or null) of raw values, appended to a reused vector.
struct ListSeed<'v, 'a>(&'v mut Vec<&'a RawValue>);

impl<'de> DeserializeSeed<'de> for ListSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.clear();
        while let Some(value) = seq.next_element::<&'de RawValue>()? {
            self.0.push(value);
        }
        Ok(())
    }
}

/// `"input"`: only its userId matters.
struct UserIdVisitor;

impl<'de> Visitor<'de> for UserIdVisitor {
    type Value = Option<&'de RawValue>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut user_id = None;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::UserId => user_id = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(user_id)
    }
}

/// Moves a vector's allocation to a new lifetime of its (cleared) borrowed elements: the
/// in-place collect reuses the buffer, so lines are parsed without allocating.
fn recycle<'b>(mut list: Vec<&RawValue>) -> Vec<&'b RawValue> {
    list.clear();
    list.into_iter().map(|_| unreachable!("the list is empty")).collect()
}

/// What to keep of each user's ranked items.
pub struct Selection {
    top_n: usize,
    exclude: HashSet<String>,
    min_score: Option<f64>,
    kept: Vec<usize>,
    items: Vec<&'static RawValue>,
    scores: Vec<&'static RawValue>,
}

/// What became of a line.
pub enum Outcome {
    /// Picks written: this many items.
    Picks(usize),
    /// An error line: the user (if the input named one) and the error text.
    Error { user_id: Option<String>, error: String },
    /// A blank line: nothing.
    Blank,
}

impl Selection {
    pub fn new(top_n: usize, exclude: HashSet<String>, min_score: Option<f64>) -> Selection {
        Selection { top_n, exclude, min_score, kept: Vec::new(), items: Vec::new(), scores: Vec::new() }
    }

    /// Parses `line` and appends its picks line (with `\n`) to `out`; on an error line or a
    /// malformed one, `out` is left as it was.
    pub fn pick(&mut self, line: &[u8], out: &mut Vec<u8>) -> Result<Outcome, String> {
        let mut items = recycle(std::mem::take(&mut self.items));
        let mut scores = recycle(std::mem::take(&mut self.scores));
        let result = self.pick_with(line, out, &mut items, &mut scores);
        self.items = recycle(items);
        self.scores = recycle(scores);
        result
    }

    fn pick_with<'a>(
        &mut self,
        line: &'a [u8],
        out: &mut Vec<u8>,
        items: &mut Vec<&'a RawValue>,
        scores: &mut Vec<&'a RawValue>,
    ) -> Result<Outcome, String> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(Outcome::Blank);
        }
        // One UTF-8 check for the whole line; raw values borrowed from a str are not checked again.
        let line = std::str::from_utf8(line).map_err(|e| format!("the line is not UTF-8 ({e})"))?;
        let mut de = serde_json::Deserializer::from_str(line);
        let fields = LineSeed { items, scores }.deserialize(&mut de).map_err(json_error)?;
        de.end().map_err(json_error)?;
        let user_id = match fields.input {
            Some(input) if input.get().starts_with('{') => serde_json::Deserializer::from_str(input.get())
                .deserialize_map(UserIdVisitor)
                .map_err(|e| format!("input: {e}"))?,
            _ => None,
        };
        if let Some(error) = fields.error {
            return Ok(Outcome::Error {
                user_id: user_id.and_then(|u| serde_json::from_str(u.get()).ok()),
                error: serde_json::from_str::<String>(error.get()).unwrap_or_else(|_| error.get().to_owned()),
            });
        }
        let user_id = user_id.ok_or("the input has no userId")?;
        if !user_id.get().starts_with('"') {
            return Err("input.userId is not a string".into());
        }
        if fields.has_scores && scores.len() != items.len() {
            return Err(format!("{} scores for {} recommendedItems", scores.len(), items.len()));
        }
        let scores = if fields.has_scores { Some(&*scores) } else { None };
        self.kept.clear();
        for (i, item) in items.iter().enumerate() {
            if self.kept.len() == self.top_n {
                break;
            }
            let text = item.get();
            if !text.starts_with('"') {
                return Err(format!("recommendedItems[{i}] is not a string"));
            }
            if !self.exclude.is_empty() && self.exclude.contains(unquote(text).as_ref()) {
                continue;
            }
            if let (Some(min), Some(scores)) = (self.min_score, scores) {
                let score: f64 =
                    scores[i].get().parse().map_err(|_| format!("scores[{i}] is not a number"))?;
                if score < min {
                    continue;
                }
            }
            self.kept.push(i);
        }
        out.extend_from_slice(b"{\"userId\":");
        out.extend_from_slice(user_id.get().as_bytes());
        out.extend_from_slice(b",\"items\":");
        write_list(out, self.kept.iter().map(|&i| items[i]));
        if let Some(scores) = scores {
            out.extend_from_slice(b",\"scores\":");
            write_list(out, self.kept.iter().map(|&i| scores[i]));
        }
        out.extend_from_slice(b"}\n");
        Ok(Outcome::Picks(self.kept.len()))
    }
}

/// serde_json's message, placed by column only: the line is the file's, not serde_json's 1.
fn json_error(err: serde_json::Error) -> String {
    let text = err.to_string();
    let message = text.rsplit_once(" at line ").map_or(text.as_str(), |(message, _)| message);
    format!("{message} at column {}", err.column())
}

/// The value of a raw JSON string.
fn unquote(raw: &str) -> std::borrow::Cow<'_, str> {
    let inner = &raw[1..raw.len() - 1];
    if inner.contains('\\') {
        serde_json::from_str::<String>(raw).map(Into::into).unwrap_or(inner.into())
    } else {
        inner.into()
    }
}

fn write_list<'a>(out: &mut Vec<u8>, values: impl Iterator<Item = &'a RawValue>) {
    out.push(b'[');
    for (n, value) in values.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(value.get().as_bytes());
    }
    out.push(b']');
}

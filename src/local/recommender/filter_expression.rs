//! Amazon Personalize's filter expression language, parsed (developer guide: "Filter expressions",
//! "Filter expression elements", "Guidelines and requirements", "Combining multiple expressions").
//!
//! ```text
//! expression := part ( "|" part )*
//! part       := ( INCLUDE | EXCLUDE ) ItemID WHERE condition ( ( AND | OR ) condition )*
//!               [ IF CurrentUser.FIELD op operand ( AND CurrentUser.FIELD op operand )* ]
//! condition  := ( Interactions | Items ) "." FIELD op operand
//! op         := IN | NOT IN | "=" | "<" | "<=" | ">" | ">="
//! operand    := "(" value ( "," value )* ")" | $PLACEHOLDER | CurrentItem.FIELD | value
//! value      := "string" | number | $PLACEHOLDER
//! ```
//!
//! Rules taken from the guide: item interactions may be filtered on `EVENT_TYPE` only, and
//! Interactions and Items conditions cannot share one expression (chain them with `|`); a filter
//! uses at most 10 distinct dataset fields; `NOT IN` takes no placeholder; `CurrentItem` values
//! apply to related-items recipes only (checked where the filter is applied). The service model
//! bounds an expression to 2,500 characters.
//!
//! Calls the guide does not make, made here: keywords and dataset names are matched without
//! regard to case; AND binds tighter than OR, as in SQL (the guide shows no mixed example);
//! grouping parentheses are refused; only `ItemID` filters are accepted (user-segment `UserID`
//! and action `ActionID` filters are refused by name). The parser is a loop over tokens, with no
//! recursion, so no input can exhaust the stack.

use std::fmt;

/// The service model's bound on `filterExpression` (FilterExpression shape: 1-2500).
pub const MAX_EXPRESSION_CHARS: usize = 2_500;
/// At most this many distinct dataset fields per filter ("Guidelines and requirements").
pub const MAX_DISTINCT_FIELDS: usize = 10;

/// A parsed filter: every part applies in turn (an item must pass all of them).
#[derive(Debug, Clone, PartialEq)]
pub struct FilterExpression {
    pub parts: Vec<Part>,
}

/// One `INCLUDE|EXCLUDE ItemID WHERE ...` expression of a `|` chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub include: bool,
    /// OR of ANDs of conditions.
    pub any_of: Vec<Vec<Condition>>,
    /// `IF CurrentUser...` conditions, all of which must hold for the part to apply.
    pub only_if: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Interactions,
    Items,
    CurrentUser,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    In,
    NotIn,
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// Fixed values and placeholders, in the order written.
    Values(Vec<Value>),
    /// `CurrentItem.FIELD`: the field of the item a related-items request names.
    CurrentItem(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Literal(Literal),
    /// `$NAME`: filled from the request's `filterValues`.
    Placeholder(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub source: Source,
    /// The field name in upper case, as the schema's columns are matched.
    pub field: String,
    pub op: Op,
    pub operand: Operand,
}

impl Condition {
    /// The placeholders this condition reads.
    pub fn placeholders(&self) -> impl Iterator<Item = &str> {
        let values: &[Value] = match &self.operand {
            Operand::Values(values) => values,
            Operand::CurrentItem(_) => &[],
        };
        values.iter().filter_map(|v| match v {
            Value::Placeholder(name) => Some(name.as_str()),
            Value::Literal(_) => None,
        })
    }
}

impl Part {
    pub fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.any_of.iter().flatten().chain(&self.only_if)
    }
}

/// Why an expression was refused; the message is the InvalidInputException's.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterSyntaxError(pub String);

impl fmt::Display for FilterSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Invalid filter expression: {}", self.0)
    }
}

impl std::error::Error for FilterSyntaxError {}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Num(f64),
    Placeholder(String),
    Symbol(&'static str),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Word(w) => write!(f, "'{w}'"),
            Token::Str(s) => write!(f, "\"{s}\""),
            Token::Num(n) => write!(f, "{n}"),
            Token::Placeholder(p) => write!(f, "'${p}'"),
            Token::Symbol(s) => write!(f, "'{s}'"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, FilterSyntaxError> {
    let err = |m: String| Err(FilterSyntaxError(m));
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' {
            let start = i + 1;
            let mut end = start;
            while end < chars.len() && chars[end] != '"' {
                end += 1;
            }
            if end == chars.len() {
                return err(format!("the string starting at character {i} is not closed"));
            }
            tokens.push(Token::Str(chars[start..end].iter().collect()));
            i = end + 1;
        } else if c == '$' {
            let start = i + 1;
            let mut end = start;
            while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_') {
                end += 1;
            }
            if end == start {
                return err(format!("'$' at character {i} names no placeholder"));
            }
            tokens.push(Token::Placeholder(chars[start..end].iter().collect()));
            i = end;
        } else if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            match text.parse::<f64>() {
                Ok(n) if n.is_finite() => tokens.push(Token::Num(n)),
                _ => return err(format!("'{text}' is not a number")),
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let symbol = match (two.as_str(), c) {
                ("<=", _) => "<=",
                (">=", _) => ">=",
                (_, '<') => "<",
                (_, '>') => ">",
                (_, '=') => "=",
                (_, '(') => "(",
                (_, ')') => ")",
                (_, ',') => ",",
                (_, '.') => ".",
                (_, '|') => "|",
                _ => return err(format!("unexpected character '{c}' at character {i}")),
            };
            i += symbol.len();
            tokens.push(Token::Symbol(symbol));
        }
    }
    Ok(tokens)
}

/// A cursor over the tokens.
struct Tokens {
    tokens: Vec<Token>,
    at: usize,
}

impl Tokens {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn is_symbol(&self, symbol: &str) -> bool {
        matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol)
    }

    fn found(&self) -> String {
        self.peek().map_or_else(|| "the end of the expression".to_string(), |t| format!("{t}"))
    }

    fn expect_word(&mut self, word: &str) -> Result<(), FilterSyntaxError> {
        if self.is_word(word) {
            self.at += 1;
            Ok(())
        } else {
            Err(FilterSyntaxError(format!("expected {word}, found {}", self.found())))
        }
    }

    fn expect_symbol(&mut self, symbol: &str) -> Result<(), FilterSyntaxError> {
        if self.is_symbol(symbol) {
            self.at += 1;
            Ok(())
        } else {
            Err(FilterSyntaxError(format!("expected '{symbol}', found {}", self.found())))
        }
    }

    /// `NAME . FIELD`, giving both.
    fn dotted(&mut self) -> Result<(String, String), FilterSyntaxError> {
        let Some(Token::Word(dataset)) = self.next() else {
            self.at -= 1;
            return Err(FilterSyntaxError(format!(
                "expected a dataset field such as Items.GENRE, found {}",
                self.found()
            )));
        };
        self.expect_symbol(".")?;
        match self.next() {
            Some(Token::Word(field)) => Ok((dataset, field)),
            _ => {
                self.at -= 1;
                Err(FilterSyntaxError(format!(
                    "expected a field name after '{dataset}.', found {}",
                    self.found()
                )))
            }
        }
    }
}

/// Parses and checks an expression; the error says what is wrong and where.
pub fn parse(text: &str) -> Result<FilterExpression, FilterSyntaxError> {
    if text.trim().is_empty() {
        return Err(FilterSyntaxError("the expression is empty".into()));
    }
    let length = text.chars().count();
    if length > MAX_EXPRESSION_CHARS {
        return Err(FilterSyntaxError(format!(
            "the expression has {length} characters; at most {MAX_EXPRESSION_CHARS} are allowed"
        )));
    }
    let mut tokens = Tokens { tokens: tokenize(text)?, at: 0 };
    let mut parts = Vec::new();
    loop {
        parts.push(parse_part(&mut tokens)?);
        if tokens.peek().is_none() {
            break;
        }
        tokens.expect_symbol("|")?;
    }
    let expression = FilterExpression { parts };
    check(&expression)?;
    Ok(expression)
}

fn parse_part(tokens: &mut Tokens) -> Result<Part, FilterSyntaxError> {
    let include = if tokens.is_word("INCLUDE") {
        true
    } else if tokens.is_word("EXCLUDE") {
        false
    } else {
        return Err(FilterSyntaxError(format!("expected INCLUDE or EXCLUDE, found {}", tokens.found())));
    };
    tokens.at += 1;
    match tokens.peek() {
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("ItemID") => tokens.at += 1,
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("UserID") || w.eq_ignore_ascii_case("ActionID") => {
            return Err(FilterSyntaxError(format!(
                "{w} filters (user segments, actions) are not supported by the local emulator; use ItemID"
            )));
        }
        _ => return Err(FilterSyntaxError(format!("expected ItemID, found {}", tokens.found()))),
    }
    tokens.expect_word("WHERE")?;
    let mut any_of = vec![vec![parse_condition(tokens, false)?]];
    let mut only_if = Vec::new();
    loop {
        if tokens.is_word("AND") {
            tokens.at += 1;
            let condition = parse_condition(tokens, false)?;
            if let Some(all) = any_of.last_mut() {
                all.push(condition);
            }
        } else if tokens.is_word("OR") {
            tokens.at += 1;
            any_of.push(vec![parse_condition(tokens, false)?]);
        } else if tokens.is_word("IF") {
            tokens.at += 1;
            only_if.push(parse_condition(tokens, true)?);
            while tokens.is_word("AND") {
                tokens.at += 1;
                only_if.push(parse_condition(tokens, true)?);
            }
            break;
        } else {
            break;
        }
    }
    match tokens.peek() {
        None | Some(Token::Symbol("|")) => Ok(Part { include, any_of, only_if }),
        Some(Token::Symbol("(")) => Err(FilterSyntaxError(
            "parentheses group only the values of IN and NOT IN, not conditions".into(),
        )),
        _ => Err(FilterSyntaxError(format!("expected AND, OR, IF or '|', found {}", tokens.found()))),
    }
}

fn parse_condition(tokens: &mut Tokens, user: bool) -> Result<Condition, FilterSyntaxError> {
    if tokens.is_symbol("(") {
        return Err(FilterSyntaxError(
            "parentheses group only the values of IN and NOT IN, not conditions".into(),
        ));
    }
    let (dataset, field) = tokens.dotted()?;
    let source = match dataset.to_ascii_lowercase().as_str() {
        "interactions" if !user => Source::Interactions,
        "items" if !user => Source::Items,
        "currentuser" if user => Source::CurrentUser,
        "currentuser" => {
            return Err(FilterSyntaxError("CurrentUser conditions belong after IF".into()));
        }
        "users" => {
            return Err(FilterSyntaxError(
                "Users fields filter user segments (UserID filters); for items, use IF CurrentUser.<FIELD>"
                    .into(),
            ));
        }
        _ if user => {
            return Err(FilterSyntaxError(format!(
                "an IF condition reads CurrentUser fields, not {dataset}"
            )));
        }
        _ => {
            return Err(FilterSyntaxError(format!(
                "unknown dataset '{dataset}'; ItemID filters read Interactions or Items"
            )));
        }
    };
    let field = field.to_ascii_uppercase();
    let op = if tokens.is_word("IN") {
        tokens.at += 1;
        Op::In
    } else if tokens.is_word("NOT") {
        tokens.at += 1;
        tokens.expect_word("IN")?;
        Op::NotIn
    } else {
        let op = match tokens.peek() {
            Some(Token::Symbol("=")) => Op::Eq,
            Some(Token::Symbol("<")) => Op::Lt,
            Some(Token::Symbol("<=")) => Op::Le,
            Some(Token::Symbol(">")) => Op::Gt,
            Some(Token::Symbol(">=")) => Op::Ge,
            _ => {
                return Err(FilterSyntaxError(format!(
                    "expected IN, NOT IN, =, <, <=, > or >= after {dataset}.{field}, found {}",
                    tokens.found()
                )));
            }
        };
        tokens.at += 1;
        op
    };
    let operand = parse_operand(tokens, op)?;
    Ok(Condition { source, field, op, operand })
}

fn parse_operand(tokens: &mut Tokens, op: Op) -> Result<Operand, FilterSyntaxError> {
    if tokens.is_word("CurrentItem") {
        let (_, field) = tokens.dotted()?;
        return Ok(Operand::CurrentItem(field.to_ascii_uppercase()));
    }
    let list = matches!(op, Op::In | Op::NotIn);
    if !list {
        return Ok(Operand::Values(vec![parse_value(tokens)?]));
    }
    tokens.expect_symbol("(")?;
    let mut values = vec![parse_value(tokens)?];
    while tokens.is_symbol(",") {
        tokens.at += 1;
        values.push(parse_value(tokens)?);
    }
    tokens.expect_symbol(")")?;
    Ok(Operand::Values(values))
}

fn parse_value(tokens: &mut Tokens) -> Result<Value, FilterSyntaxError> {
    match tokens.next() {
        Some(Token::Str(s)) => Ok(Value::Literal(Literal::Str(s))),
        Some(Token::Num(n)) => Ok(Value::Literal(Literal::Num(n))),
        Some(Token::Placeholder(p)) => Ok(Value::Placeholder(p)),
        _ => {
            tokens.at -= 1;
            Err(FilterSyntaxError(format!(
                "expected a value (a \"quoted string\", a number or a $PLACEHOLDER), found {}",
                tokens.found()
            )))
        }
    }
}

/// The guide's rules on a parsed expression.
fn check(expression: &FilterExpression) -> Result<(), FilterSyntaxError> {
    let mut fields: Vec<(Source, &str)> = Vec::new();
    for part in &expression.parts {
        let sources: Vec<Source> = part.any_of.iter().flatten().map(|c| c.source).collect();
        if sources.contains(&Source::Interactions) && sources.contains(&Source::Items) {
            return Err(FilterSyntaxError(
                "one expression cannot use both the Interactions and the Items dataset; chain two expressions with '|'"
                    .into(),
            ));
        }
        for c in part.conditions() {
            if c.source == Source::Interactions && c.field != "EVENT_TYPE" {
                return Err(FilterSyntaxError(format!(
                    "Interactions can be filtered on EVENT_TYPE only, not {}",
                    c.field
                )));
            }
            if c.source == Source::Interactions && !matches!(c.op, Op::In | Op::NotIn) {
                return Err(FilterSyntaxError("Interactions.EVENT_TYPE takes IN or NOT IN".into()));
            }
            if c.op == Op::NotIn && c.placeholders().next().is_some() {
                return Err(FilterSyntaxError(
                    "NOT IN takes no placeholder; use IN with the opposite action (INCLUDE for EXCLUDE)"
                        .into(),
                ));
            }
            if let Operand::Values(values) = &c.operand {
                let placeholders = values.iter().filter(|v| matches!(v, Value::Placeholder(_))).count();
                if placeholders > 0 && values.len() > 1 {
                    return Err(FilterSyntaxError(format!(
                        "{}: a placeholder stands for the whole list of values, alone in its parentheses",
                        c.field
                    )));
                }
            }
            if !fields.contains(&(c.source, c.field.as_str())) {
                fields.push((c.source, c.field.as_str()));
            }
        }
    }
    if fields.len() > MAX_DISTINCT_FIELDS {
        return Err(FilterSyntaxError(format!(
            "the filter uses {} distinct dataset fields; at most {MAX_DISTINCT_FIELDS} are allowed",
            fields.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> FilterExpression {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn refused(text: &str) -> String {
        parse(text).err().unwrap_or_else(|| panic!("{text} was accepted")).to_string()
    }

    #[test]
    fn the_guides_examples_parse() {
        for text in [
            r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click", "stream")"#,
            r#"INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")"#,
            "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ($EVENT_TYPE)",
            "EXCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)",
            "INCLUDE ItemID WHERE Items.PRICE < CurrentItem.PRICE AND Items.GENRE IN CurrentItem.GENRE",
            r#"EXCLUDE ItemID WHERE Items.CATEGORY_L1 IN ("shoe") AND Items.CATEGORY_L2 NOT IN ("boot")"#,
            "INCLUDE ItemID WHERE Items.PRICE <= $PRICE",
            "INCLUDE ItemID WHERE Items.CREATION_TIMESTAMP < $DATE",
            "EXCLUDE ItemID WHERE Items.GENRE IN ($GENRE) IF CurrentUser.AGE = $AGE",
            r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase") | INCLUDE ItemID WHERE Items.GENRE IN ($GENRES)"#,
            "EXCLUDE ItemID WHERE Items.PRICE > 100 OR Items.PRICE < 1",
        ] {
            ok(text);
        }
    }

    #[test]
    fn structure_of_a_chain() {
        let e = ok(
            r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase") | include itemid where Items.GENRE IN ("a", "b") AND Items.PRICE >= 10 OR Items.PRICE < 2"#,
        );
        assert_eq!(e.parts.len(), 2);
        assert!(!e.parts[0].include && e.parts[1].include);
        assert_eq!(e.parts[1].any_of.len(), 2, "AND binds tighter than OR");
        assert_eq!(e.parts[1].any_of[0].len(), 2);
        assert_eq!(e.parts[1].any_of[0][1].op, Op::Ge);
        assert_eq!(
            e.parts[1].any_of[0][0].operand,
            Operand::Values(vec![
                Value::Literal(Literal::Str("a".into())),
                Value::Literal(Literal::Str("b".into()))
            ])
        );
    }

    #[test]
    fn malformed_expressions_are_refused_with_the_reason() {
        assert!(refused("").contains("empty"));
        assert!(refused("EXCLUDE ItemID").contains("expected WHERE"));
        assert!(
            refused(r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase""#)
                .contains("expected ')'")
        );
        assert!(
            refused(r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase)"#).contains("not closed")
        );
        assert!(refused(r#"DROP ItemID WHERE Items.X IN ("a")"#).contains("INCLUDE or EXCLUDE"));
        assert!(refused(r#"EXCLUDE ItemID WHERE Items.X LIKE ("a")"#).contains("expected IN, NOT IN"));
        assert!(
            refused(r#"EXCLUDE ItemID WHERE Interactions.EVENT_VALUE IN ("a")"#).contains("EVENT_TYPE only")
        );
        assert!(
            refused(r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("a") AND Items.X IN ("b")"#)
                .contains("chain two expressions")
        );
        assert!(
            refused("EXCLUDE ItemID WHERE Items.GENRE NOT IN ($G)").contains("NOT IN takes no placeholder")
        );
        assert!(refused(r#"INCLUDE ItemID WHERE Items.GENRE IN ("a", $G)"#).contains("alone"));
        assert!(refused(r#"EXCLUDE UserID WHERE Users.X IN ("a")"#).contains("not supported"));
        assert!(refused(r#"EXCLUDE ItemID WHERE Items.X IN ("a") |"#).contains("INCLUDE or EXCLUDE"));
        assert!(
            refused(r#"EXCLUDE ItemID WHERE Items.X IN ("a") Items.Y IN ("b")"#).contains("expected AND, OR")
        );
    }

    #[test]
    fn limits_are_enforced() {
        let fields: Vec<String> = (0..11).map(|n| format!("Items.F{n} IN (\"x\")")).collect();
        assert!(refused(&format!("EXCLUDE ItemID WHERE {}", fields.join(" AND "))).contains("at most 10"));
        ok(&format!("EXCLUDE ItemID WHERE {}", fields[..10].join(" AND ")));
        let long = format!("EXCLUDE ItemID WHERE Items.X IN (\"{}\")", "a".repeat(2_500));
        assert!(refused(&long).contains("at most 2500"));
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        for depth in [50, 2_400] {
            let text =
                format!("EXCLUDE ItemID WHERE {}Items.X IN (\"a\"){}", "(".repeat(depth), ")".repeat(depth));
            let text: String = text.chars().take(MAX_EXPRESSION_CHARS).collect();
            assert!(refused(&text).contains("parentheses"), "depth {depth}");
        }
        let many = format!("EXCLUDE ItemID WHERE Items.X IN ({})", vec!["\"v\""; 600].join(","));
        assert_eq!(ok(&many).parts[0].any_of[0][0].placeholders().count(), 0);
    }
}

//! Names recflow derives for Personalize creates that give none, so that a create repeated
//! after a crash finds its own job instead of starting a second one.

use sha2::{Digest, Sha256};

/// The longest name Personalize accepts (`Name` shape: 1 to 63 characters of
/// `^[a-zA-Z0-9][a-zA-Z0-9\-_]*`, service model).
pub const MAX_NAME: usize = 63;

/// `<execution>-<state>-<visit>`, and `-r<attempt>` for a retry that makes a job of its own,
/// made valid for Personalize: characters outside `[a-zA-Z0-9-_]` become `-`, a leading `-` or `_`
/// becomes `x`, and a name over 63 characters keeps its first 54 and ends with `-` and 8 hex
/// digits of the SHA-256 of the whole, so two long names stay distinct. The visit is the id of
/// the state's StateEntered event: every visit names its own jobs, and the same execution
/// resumed anywhere derives the same names. Which attempt gets its own name is the caller's rule
/// (a retry adopts an earlier attempt's job unless that job failed).
pub fn derived_name(execution: &str, state: &str, visit: u64, attempt: u32) -> String {
    let full = if attempt == 0 {
        format!("{execution}-{state}-{visit}")
    } else {
        format!("{execution}-{state}-{visit}-r{attempt}")
    };
    let mut name: String = full
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        name.replace_range(..1, "x");
    }
    if name.len() > MAX_NAME {
        let digest = Sha256::digest(full.as_bytes());
        name.truncate(MAX_NAME - 9);
        name.push('-');
        name.push_str(&hex::encode(&digest[..4]));
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        (1..=MAX_NAME).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    }

    #[test]
    fn names_are_valid_stable_and_distinct() {
        assert_eq!(derived_name("nightly-1", "Train", 12, 0), "nightly-1-Train-12");
        assert_eq!(derived_name("_x", "Import data?", 3, 0), "xx-Import-data--3");
        assert_eq!(derived_name("n", "Train", 12, 2), "n-Train-12-r2");
        let long = "n".repeat(80);
        let a = derived_name(&long, "TrainSolutionVersion", 12, 0);
        let b = derived_name(&long, "TrainSolutionVersion", 13, 0);
        assert!(valid(&a) && valid(&b), "{a} {b}");
        assert_eq!(a.len(), MAX_NAME);
        assert_ne!(a, b);
        assert_eq!(a, derived_name(&long, "TrainSolutionVersion", 12, 0));
        for (e, s) in [("é", "ü"), ("-", "-"), ("a", "")] {
            assert!(valid(&derived_name(e, s, 1, 0)), "{e} {s}");
            assert!(valid(&derived_name(&long, s, 1, 7)), "{e} {s}");
        }
    }
}

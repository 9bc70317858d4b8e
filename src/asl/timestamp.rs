//! The one timestamp parser of the language. The Amazon States Language spec: "Timestamps must
//! conform to RFC3339 profile of ISO 8601, with the further restrictions that an uppercase T must
//! separate the date and time portions, and an uppercase Z must denote that a numeric time zone
//! offset is not present" (states-language.net, Timestamps). So `2026-11-29T02:00:00Z` and
//! `2026-11-29T03:00:00.5+01:00` are timestamps, and `2026-11-29t02:00:00Z`,
//! `2026-11-29T02:00:00z` and `2026-11-29 02:00:00Z` are not, in a Wait and in a Choice alike.

use chrono::{DateTime, FixedOffset, Utc};

/// Parses an ASL timestamp, keeping its offset.
pub fn parse(text: &str) -> Option<DateTime<FixedOffset>> {
    // RFC 3339 allows a lowercase t and z; the spec does not.
    if text.as_bytes().get(10) != Some(&b'T') || text.contains(['t', 'z']) {
        return None;
    }
    DateTime::parse_from_rfc3339(text).ok()
}

/// Parses an ASL timestamp as an instant.
pub fn parse_utc(text: &str) -> Option<DateTime<Utc>> {
    parse(text).map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uppercase_t_and_z_only() {
        for ok in ["2026-11-29T02:00:00Z", "2026-11-29T03:00:00.5+01:00", "1970-01-01T00:00:00-00:00"] {
            assert!(parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "2026-11-29t02:00:00Z",
            "1970-01-01T00:00:00z",
            "2026-11-29 02:00:00Z",
            "2026-11-29",
            "",
            "2026-11-29T02:00:00",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}

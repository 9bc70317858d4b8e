//! The file name an object key is stored under: one flat name per key in its bucket's folder,
//! so that every key S3 allows has a place (`a` beside `a/b`, `a//b`, `./x`, `../x`, `dir/`
//! with a body, 1,024-byte keys) and none can reach outside its bucket.
//!
//! - `/` becomes `%2F`, `%` becomes `%25`, NUL becomes `%00`, and a leading `.` becomes `%2E`;
//!   every other character stays as it is. `interactions/interactions.csv` is stored as
//!   `interactions%2Finteractions.csv`. The mapping is one-to-one (`%` only ever starts an
//!   escape), and no name is `.`, `..`, contains `/`, or starts with `.`: names starting with `.`
//!   are the store's own (records, temporary files).
//! - A name longer than [`MAX_PLAIN_NAME_BYTES`] (the file system allows 255 bytes, and a
//!   temporary sibling adds about 30) is replaced by `%~` and the SHA-256 of the key in hex; the
//!   key itself is then read from the object's record. `%~` is not an escape, so no plain name
//!   looks like a hashed one.

use sha2::{Digest as _, Sha256};

/// Longest name stored as the escaped key itself.
pub const MAX_PLAIN_NAME_BYTES: usize = 200;

const HASHED_PREFIX: &str = "%~";

/// The file name of `key` in its bucket's folder.
pub fn file_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len() + 8);
    for (i, c) in key.char_indices() {
        match c {
            '/' => name.push_str("%2F"),
            '%' => name.push_str("%25"),
            '\0' => name.push_str("%00"),
            '.' if i == 0 => name.push_str("%2E"),
            _ => name.push(c),
        }
    }
    if name.len() > MAX_PLAIN_NAME_BYTES {
        format!("{HASHED_PREFIX}{}", hex::encode(Sha256::digest(key.as_bytes())))
    } else {
        name
    }
}

/// What a file name in a bucket's folder says about its key.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The key, read from the name.
    Key(String),
    /// A hashed name: the key is in the object's record.
    Hashed,
    /// Not an object's name: the store's own files (starting with `.`) or a name this mapping
    /// never produces.
    NotAnObject,
}

/// Reads a file name back into its key; the inverse of [`file_name`] for plain names.
pub fn decode(name: &str) -> Decoded {
    if name.starts_with('.') || name.is_empty() {
        return Decoded::NotAnObject;
    }
    if let Some(hash) = name.strip_prefix(HASHED_PREFIX) {
        let is_hash = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        return if is_hash { Decoded::Hashed } else { Decoded::NotAnObject };
    }
    let mut key = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('%') {
        key.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3);
        let c = match escape {
            Some("%2F") => '/',
            Some("%25") => '%',
            Some("%00") => '\0',
            Some("%2E") if key.is_empty() && at == 0 => '.',
            _ => return Decoded::NotAnObject,
        };
        key.push(c);
        rest = &rest[at + 3..];
    }
    key.push_str(rest);
    // A name this mapping would not produce (say `%2E` not at the start) is not an object's.
    if file_name(&key) == name { Decoded::Key(key) } else { Decoded::NotAnObject }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_s3_allows_get_distinct_flat_names_and_read_back() {
        let keys = [
            "a",
            "a/b",
            "a//b",
            "./x",
            "../x",
            "..",
            ".",
            "dir/",
            "/abs",
            "x/../../other/k",
            "100%/done",
            "%2F",
            "nul\0byte",
            "plus+sign .csv",
            "é/ü",
            ".hidden",
        ];
        let names: std::collections::BTreeSet<String> = keys.iter().map(|k| file_name(k)).collect();
        assert_eq!(names.len(), keys.len(), "{names:?}");
        for key in keys {
            let name = file_name(key);
            assert!(!name.contains('/') && !name.starts_with('.') && !name.contains('\0'), "{name}");
            assert_eq!(decode(&name), Decoded::Key(key.to_owned()), "{key:?}");
        }
        assert_eq!(file_name("interactions/interactions.csv"), "interactions%2Finteractions.csv");
    }

    #[test]
    fn long_keys_are_hashed_and_say_so() {
        let key = "k/".repeat(512);
        let name = file_name(&key);
        assert_eq!(name.len(), 66);
        assert_eq!(decode(&name), Decoded::Hashed);
        assert_ne!(file_name(&"k/".repeat(511)), name);
        let longest_plain = "x".repeat(MAX_PLAIN_NAME_BYTES);
        assert_eq!(file_name(&longest_plain), longest_plain);
    }

    #[test]
    fn foreign_names_are_not_objects() {
        for name in [".records", ".x.123.0.tmp", "", "a%2", "a%41", "a%2Eb", "%~short", "%~zz"] {
            assert_eq!(decode(name), Decoded::NotAnObject, "{name:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_key_gets_a_safe_name_that_reads_back(key in "(?s).{1,300}", other in "(?s).{1,300}") {
            let name = file_name(&key);
            proptest::prop_assert!(name.len() <= 255 && !name.is_empty());
            proptest::prop_assert!(!name.contains('/') && !name.contains('\0') && !name.starts_with('.'));
            match decode(&name) {
                Decoded::Key(back) => proptest::prop_assert_eq!(back, key.clone()),
                Decoded::Hashed => proptest::prop_assert!(name.len() == 66),
                Decoded::NotAnObject => proptest::prop_assert!(false, "{name:?} does not decode"),
            }
            if key != other {
                proptest::prop_assert_ne!(name, file_name(&other));
            }
        }
    }
}

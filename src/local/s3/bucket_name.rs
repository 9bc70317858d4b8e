//! Bucket names as S3 accepts them, checked once wherever a name enters (the S3 API, `local
//! seed`, the demo setup, Personalize's `s3://` locations), so that no folder under the local S3
//! root is ever named by unchecked input.
//!
//! The rules are the S3 user guide's "General purpose bucket naming rules"
//! (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html>): 3 to 63
//! characters; only lowercase letters, digits, `.` and `-`; a letter or digit first and last; no
//! two adjacent periods; not an IPv4 address; none of the reserved prefixes (`xn--`, `sthree-`,
//! `amzn-s3-demo-`) and suffixes (`-s3alias`, `--ol-s3`, `.mrap`, `--x-s3`, `--table-s3`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

const RESERVED_PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
const RESERVED_SUFFIXES: [&str; 5] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];

/// A bucket name that follows S3's naming rules; the only way to name a bucket's folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BucketName(String);

/// Why a bucket name is refused; its text names the name and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid bucket name {name:?}: {rule} (S3's bucket naming rules)")]
pub struct InvalidBucketName {
    pub name: String,
    pub rule: String,
}

impl BucketName {
    /// Checks `name` against S3's rules.
    ///
    /// # Errors
    /// [`InvalidBucketName`] naming the first rule it breaks.
    pub fn parse(name: &str) -> Result<BucketName, InvalidBucketName> {
        match broken_rule(name) {
            None => Ok(BucketName(name.to_owned())),
            Some(rule) => Err(InvalidBucketName { name: name.to_owned(), rule }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The bucket's folder under the local S3 root (`<data_dir>/s3`): one plain path segment,
    /// which the rules guarantee (no `/`, never `.` or `..`).
    pub fn dir(&self, s3_root: &Path) -> PathBuf {
        s3_root.join(&self.0)
    }
}

fn broken_rule(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    if !(3..=63).contains(&bytes.len()) {
        return Some(format!("it must be 3 to 63 characters long, not {}", bytes.len()));
    }
    if let Some(c) =
        name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return Some(format!("{c:?} is not a lowercase letter, digit, '.' or '-'"));
    }
    let alphanumeric = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().is_some_and(alphanumeric) || !bytes.last().is_some_and(alphanumeric) {
        return Some("it must begin and end with a letter or digit".into());
    }
    if name.contains("..") {
        return Some("it must not contain two adjacent periods".into());
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some("it must not be formatted as an IP address".into());
    }
    if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| name.starts_with(*p)) {
        return Some(format!("the prefix {prefix:?} is reserved"));
    }
    if let Some(suffix) = RESERVED_SUFFIXES.iter().find(|s| name.ends_with(*s)) {
        return Some(format!("the suffix {suffix:?} is reserved"));
    }
    None
}

impl FromStr for BucketName {
    type Err = InvalidBucketName;

    fn from_str(name: &str) -> Result<BucketName, InvalidBucketName> {
        BucketName::parse(name)
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for BucketName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_user_guide_accepts() {
        for name in ["abc", "recflow-demo", "my.bucket.name", "1-2-3", "docexamplebucket1", &"a".repeat(63)] {
            assert!(BucketName::parse(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn names_the_user_guide_refuses() {
        let refused = [
            "ab",
            &"a".repeat(64),
            "../../escaped",
            "..",
            "a/b",
            "My-Bucket",
            "under_score",
            "-start",
            "end-",
            ".start",
            "end.",
            "two..dots",
            "192.168.5.4",
            "xn--bucket",
            "sthree-bucket",
            "amzn-s3-demo-bucket",
            "bucket-s3alias",
            "bucket--ol-s3",
            "bucket.mrap",
            "bucket--x-s3",
            "bucket--table-s3",
            "bücket",
            "",
        ];
        for name in refused {
            let err = BucketName::parse(name).expect_err(name);
            assert!(err.to_string().contains("bucket naming rules"), "{err}");
        }
    }

    #[test]
    fn a_valid_name_is_one_folder_below_the_root() {
        let name = BucketName::parse("recflow-demo").unwrap();
        assert_eq!(name.dir(Path::new("/d/s3")), Path::new("/d/s3/recflow-demo"));
    }
}

//! ARNs in the service's format, name validation, and `s3://` paths mapped onto the local store.

use std::path::{Path, PathBuf};

use super::protocol::ApiError;
use super::store::Kind;
use crate::local::s3::BucketName;

pub fn resource_arn(region: &str, account: &str, kind: Kind, resource: &str) -> String {
    format!("arn:aws:personalize:{region}:{account}:{}/{resource}", kind.arn_type())
}

pub fn recipe_arn(name: &str) -> String {
    format!("arn:aws:personalize:::recipe/{name}")
}

/// 1-63 characters, `^[a-zA-Z0-9][a-zA-Z0-9\-_]*$`, as the model's Name shape.
pub fn validate_name(member: &str, name: &str) -> Result<(), ApiError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if first_ok && rest_ok && name.len() <= 63 {
        Ok(())
    } else {
        Err(ApiError::invalid_input(format!(
            "1 validation error detected: Value '{name}' at '{member}' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: ^[a-zA-Z0-9][a-zA-Z0-9\\-_]* and length 1-63"
        )))
    }
}

/// `s3://bucket/key`; a key that is empty or ends in `/` is a prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Path {
    pub bucket: String,
    pub key: String,
}

#[derive(Debug, thiserror::Error)]
#[error("Invalid S3 path '{0}': expected s3://bucket/key")]
pub struct BadS3Path(String);

impl S3Path {
    pub fn parse(location: &str) -> Result<S3Path, BadS3Path> {
        let bad = || BadS3Path(location.to_string());
        let rest = location.strip_prefix("s3://").ok_or_else(bad)?;
        let (bucket, key) = rest.split_once('/').ok_or_else(bad)?;
        let bucket_ok = BucketName::parse(bucket).is_ok();
        // Keys map onto files, so no component may climb out of the bucket.
        let key_ok = key.split('/').all(|part| part != ".." && part != ".");
        if !bucket_ok || !key_ok {
            return Err(bad());
        }
        Ok(S3Path { bucket: bucket.to_string(), key: key.to_string() })
    }

    pub fn is_prefix(&self) -> bool {
        self.key.is_empty() || self.key.ends_with('/')
    }

    /// The object's file (or the prefix's directory) under the S3 root `<data_dir>/s3`; the
    /// bucket was checked by [`S3Path::parse`] and is checked again here, as the fields are public.
    pub fn local_path(&self, s3_root: &Path) -> Result<PathBuf, BadS3Path> {
        let bucket = BucketName::parse(&self.bucket).map_err(|e| BadS3Path(e.to_string()))?;
        let mut path = bucket.dir(s3_root);
        for part in self.key.split('/').filter(|p| !p.is_empty()) {
            if part == "." || part == ".." {
                return Err(BadS3Path(format!("s3://{}/{}", self.bucket, self.key)));
            }
            path.push(part);
        }
        Ok(path)
    }
}

pub fn validate_s3(member: &str, location: &str) -> Result<S3Path, ApiError> {
    S3Path::parse(location).map_err(|e| ApiError::invalid_input(format!("{member}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_model_pattern() {
        assert!(validate_name("name", "a").is_ok());
        assert!(validate_name("name", "nightly-2024_01").is_ok());
        assert!(validate_name("name", &"a".repeat(63)).is_ok());
        assert!(validate_name("name", &"a".repeat(64)).is_err());
        assert!(validate_name("name", "").is_err());
        assert!(validate_name("name", "-x").is_err());
        assert!(validate_name("name", "a b").is_err());
    }

    #[test]
    fn s3_paths_are_bucket_and_key() {
        let p = S3Path::parse("s3://bucket/in/data.csv").unwrap();
        assert_eq!((p.bucket.as_str(), p.key.as_str(), p.is_prefix()), ("bucket", "in/data.csv", false));
        assert!(S3Path::parse("s3://bucket/in/").unwrap().is_prefix());
        assert!(S3Path::parse("https://bucket/x").is_err());
        assert!(S3Path::parse("s3://bucket").is_err());
        assert!(S3Path::parse("s3:///key").is_err());
        assert!(S3Path::parse("s3://bucket/../x").is_err());
        assert!(S3Path::parse("s3://../x").is_err());
        assert!(S3Path::parse("s3://xn--bucket/x").is_err());
        let local = S3Path::parse("s3://bkt/k/x.csv").unwrap().local_path(Path::new("/d/s3")).unwrap();
        assert_eq!(local, Path::new("/d/s3/bkt/k/x.csv"));
        let forged = S3Path { bucket: "..".into(), key: "x".into() };
        assert!(forged.local_path(Path::new("/d/s3")).is_err());
    }
}

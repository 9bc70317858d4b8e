//! ARNs in the service's format, name validation, and `s3://` paths mapped onto the local store.

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

/// The model's `Arn` shape: at most 256 characters matching `arn:([a-z\d-]+):personalize:.*:.*:.+`
/// (a whole-value match, as the service's validation applies it). A value that fails is an
/// InvalidInputException in the service's "1 validation error detected" wording; a well-formed
/// ARN that names nothing is the caller's ResourceNotFoundException.
pub fn validate_arn(member: &str, value: &str) -> Result<(), ApiError> {
    let well_formed = value.len() <= 256
        && !value.contains(['\n', '\r'])
        && value.strip_prefix("arn:").and_then(|rest| rest.split_once(":personalize:")).is_some_and(
            |(partition, tail)| {
                let partition_ok = !partition.is_empty()
                    && partition.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                // `.*:.*:.+`: two colons, something after the second.
                let second_colon = tail.match_indices(':').nth(1).map(|(i, _)| i);
                partition_ok && second_colon.is_some_and(|i| i + 1 < tail.len())
            },
        );
    if well_formed {
        Ok(())
    } else {
        Err(pattern_error(member, value, r"arn:([a-z\d-]+):personalize:.*:.*:.+", 256))
    }
}

/// The model's `RoleArn` shape: at most 256 characters matching
/// `arn:([a-z\d-]+):iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`.
pub fn validate_role_arn(member: &str, value: &str) -> Result<(), ApiError> {
    let well_formed = value.len() <= 256
        && value.strip_prefix("arn:").and_then(|rest| rest.split_once(":iam::")).is_some_and(
            |(partition, tail)| {
                let partition_ok = !partition.is_empty()
                    && partition.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                let (account, role) = tail.split_at_checked(12).unwrap_or(("", ""));
                // `role/?` then a class that itself holds `/`: anything after `:role` from the class.
                let name = role.strip_prefix(":role");
                partition_ok
                    && account.chars().all(|c| c.is_ascii_digit())
                    && account.len() == 12
                    && name.is_some_and(|n| {
                        !n.is_empty()
                            && n.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@-_/".contains(c))
                    })
            },
        );
    if well_formed {
        Ok(())
    } else {
        Err(pattern_error(member, value, r"arn:([a-z\d-]+):iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+", 256))
    }
}

/// The model's `KmsKeyArn` shape: at most 2048 characters matching `arn:aws.*:kms:.*:[0-9]{12}:key/.*`.
pub fn validate_kms_key_arn(member: &str, value: &str) -> Result<(), ApiError> {
    let well_formed = value.len() <= 2048
        && value.strip_prefix("arn:aws").and_then(|rest| rest.split_once(":kms:")).is_some_and(
            |(_, tail)| {
                // `.*:[0-9]{12}:key/.*`: some `:<12 digits>:key/` in the tail.
                tail.match_indices(':').any(|(i, _)| {
                    let after = &tail[i + 1..];
                    after.len() >= 17
                        && after[..12].chars().all(|c| c.is_ascii_digit())
                        && after[12..].starts_with(":key/")
                })
            },
        );
    if well_formed {
        Ok(())
    } else {
        Err(pattern_error(member, value, r"arn:aws.*:kms:.*:[0-9]{12}:key/.*", 2048))
    }
}

fn pattern_error(member: &str, value: &str, pattern: &str, max: usize) -> ApiError {
    ApiError::invalid_input(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: {pattern} and length at most {max}"
    ))
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
        // Any key is fine: the local S3 gives every key a flat name inside its bucket.
        if BucketName::parse(bucket).is_err() || key.len() > crate::local::s3::objects::MAX_KEY_BYTES {
            return Err(bad());
        }
        Ok(S3Path { bucket: bucket.to_string(), key: key.to_string() })
    }

    pub fn is_prefix(&self) -> bool {
        self.key.is_empty() || self.key.ends_with('/')
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
    fn arns_follow_the_model_patterns() {
        let ok = "arn:aws:personalize:us-east-1:000000000000:dataset-group/g";
        assert!(validate_arn("datasetGroupArn", ok).is_ok());
        assert!(validate_arn("recipeArn", "arn:aws:personalize:::recipe/aws-sims").is_ok());
        for bad in [
            "g",
            "arn:aws:s3:::bucket",
            "arn::personalize:r:a:x",
            "arn:aws:personalize:r:a",
            "arn:aws:personalize:r:a:",
        ] {
            let err = validate_arn("datasetGroupArn", bad).unwrap_err();
            assert_eq!(err.kind, "InvalidInputException", "{bad}");
            assert!(err.message.contains("at 'datasetGroupArn'"), "{}", err.message);
        }
        assert!(validate_arn("x", &format!("{ok}{}", "a".repeat(256))).is_err());
        assert!(validate_role_arn("roleArn", "arn:aws:iam::000000000000:role/recflow-personalize").is_ok());
        assert!(validate_role_arn("roleArn", "arn:aws:iam::000000000000:rolex").is_ok());
        for bad in ["arn:aws:iam::0000:role/x", "arn:aws:iam::000000000000:user/x", "role"] {
            assert!(validate_role_arn("roleArn", bad).is_err(), "{bad}");
        }
        assert!(validate_kms_key_arn("kmsKeyArn", "arn:aws:kms:us-east-1:000000000000:key/abc").is_ok());
        assert!(validate_kms_key_arn("kmsKeyArn", "arn:aws:kms:us-east-1:000:key/abc").is_err());
    }

    #[test]
    fn s3_paths_are_bucket_and_key() {
        let p = S3Path::parse("s3://bucket/in/data.csv").unwrap();
        assert_eq!((p.bucket.as_str(), p.key.as_str(), p.is_prefix()), ("bucket", "in/data.csv", false));
        assert!(S3Path::parse("s3://bucket/in/").unwrap().is_prefix());
        assert!(S3Path::parse("https://bucket/x").is_err());
        assert!(S3Path::parse("s3://bucket").is_err());
        assert!(S3Path::parse("s3:///key").is_err());
        assert_eq!(S3Path::parse("s3://bucket/../x").unwrap().key, "../x");
        assert!(S3Path::parse("s3://../x").is_err());
        assert!(S3Path::parse("s3://xn--bucket/x").is_err());
    }
}

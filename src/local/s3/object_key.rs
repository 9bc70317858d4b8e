//! Which object keys the local store can hold without leaving their bucket.
//!
//! s3s-fs maps a key to `<root>/<bucket>/<key>` and normalises the path, so `a/../../other/k`
//! would land in (and create) bucket `other`, and `a/../.upload-<id>.json` would reach the
//! store's own bookkeeping files. Real S3 stores such keys literally; a directory tree cannot,
//! so the local store refuses them instead of silently aliasing them.

use s3s::{S3Error, S3ErrorCode};

/// Longest path segment the filesystem under the store accepts (Linux `NAME_MAX`).
const MAX_SEGMENT_BYTES: usize = 255;

/// Checks that `key` names a path strictly inside its bucket directory, with one file-system
/// entry per `/`-separated segment. A single trailing `/` is allowed: s3s-fs stores such keys
/// as directory objects.
pub(super) fn check_object_key(key: &str) -> Result<(), S3Error> {
    if key.is_empty() {
        return Err(refuse(key, "it is empty"));
    }
    let body = key.strip_suffix('/').unwrap_or(key);
    for segment in body.split('/') {
        match segment {
            "" => return Err(refuse(key, "it has an empty path segment (a leading '/' or '//')")),
            "." | ".." => return Err(refuse(key, "it has a '.' or '..' path segment")),
            _ if segment.contains('\0') => return Err(refuse(key, "it contains a NUL character")),
            _ if segment.len() > MAX_SEGMENT_BYTES => {
                return Err(S3Error::with_message(
                    S3ErrorCode::KeyTooLongError,
                    format!(
                        "local S3 refuses key {key:?}: a path segment is longer than {MAX_SEGMENT_BYTES} bytes"
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn refuse(key: &str, why: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InvalidArgument,
        format!("local S3 refuses key {key:?}: {why}, which would not stay a plain path inside the bucket"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_keys_are_accepted() {
        for key in ["k", "a/b/c.json", "dir/", "a.b/..c/...", "x/.hidden", "weird ..name"] {
            assert!(check_object_key(key).is_ok(), "{key}");
        }
    }

    #[test]
    fn keys_that_normalise_are_refused() {
        for key in ["", ".", "..", "/abs", "a//b", "a/./b", "x/../../other/k", "../k", "a/..", "a/../", "//"]
        {
            let err = check_object_key(key).expect_err(key);
            assert_eq!(*err.code(), S3ErrorCode::InvalidArgument, "{key}");
        }
    }

    #[test]
    fn overlong_segments_are_refused() {
        let key = format!("p/{}", "x".repeat(256));
        let err = check_object_key(&key).expect_err("256-byte segment");
        assert_eq!(*err.code(), S3ErrorCode::KeyTooLongError);
        assert!(check_object_key(&format!("p/{}", "x".repeat(255))).is_ok());
    }
}

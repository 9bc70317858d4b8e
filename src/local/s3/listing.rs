//! ListObjects and ListObjectsV2 over the keys of [`objects::list`]: keys in UTF-8 binary
//! order, a prefix, a delimiter rolling keys up into common prefixes, and pages of at most
//! `max-keys` entries (keys and common prefixes both count), each page resuming after the last
//! name of the one before (ListObjectsV2 API reference).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use s3s::dto::{CommonPrefix, ETag, Object, ObjectStorageClass, Timestamp};
use s3s::{S3Error, S3ErrorCode, S3Result};

use super::bucket_name::BucketName;
use super::objects::{self, StoredObject};

/// S3 returns at most 1,000 keys a page, also when asked for more.
const MAX_KEYS: i32 = 1000;

/// What a listing asks for.
pub(super) struct Listing {
    pub prefix: String,
    /// None or a non-empty delimiter.
    pub delimiter: Option<String>,
    /// Only names after this one: a marker, StartAfter or continuation token.
    pub after: Option<String>,
    pub max_keys: Option<i32>,
}

/// One page of a listing.
pub(super) struct Page {
    pub contents: Option<Vec<Object>>,
    pub common_prefixes: Option<Vec<CommonPrefix>>,
    pub truncated: bool,
    /// The last name on this page, when more follow: the next page's marker or token.
    pub next: Option<String>,
    pub max_keys: i32,
    pub key_count: i32,
}

/// A ListObjectsV2 continuation token for a page that ends at `name`.
pub(super) fn encode_token(name: &str) -> String {
    URL_SAFE_NO_PAD.encode(name)
}

/// The name a continuation token resumes after; S3's InvalidArgument for a token it never gave.
pub(super) fn decode_token(token: &str) -> S3Result<String> {
    URL_SAFE_NO_PAD.decode(token).ok().and_then(|bytes| String::from_utf8(bytes).ok()).ok_or_else(|| {
        S3Error::with_message(S3ErrorCode::InvalidArgument, "The continuation token provided is incorrect")
    })
}

/// An entry of a page: an object, or a common prefix standing for every key under it.
enum Entry {
    Object(StoredObject),
    Prefix(String),
}

/// Lists `bucket` (which exists) as `request` asks.
pub(super) async fn list(root: &Path, bucket: BucketName, request: Listing) -> S3Result<Page> {
    let root = root.to_owned();
    tokio::task::spawn_blocking(move || page(&root, &bucket, &request))
        .await
        .map_err(S3Error::internal_error)?
        .map_err(S3Error::internal_error)
}

fn page(root: &Path, bucket: &BucketName, request: &Listing) -> std::io::Result<Page> {
    let max_keys = request.max_keys.unwrap_or(MAX_KEYS).clamp(0, MAX_KEYS);
    let limit = usize::try_from(max_keys).unwrap_or(0);
    let mut entries: Vec<Entry> = Vec::new();
    let mut truncated = false;
    for object in objects::list(root, bucket, &request.prefix)? {
        if request.after.as_ref().is_some_and(|after| object.key <= *after) {
            continue;
        }
        let entry = match rolled_up(&object.key, &request.prefix, request.delimiter.as_deref()) {
            None => Entry::Object(object),
            Some(prefix) => {
                let seen = matches!(entries.last(), Some(Entry::Prefix(last)) if *last == prefix);
                // A marker naming a common prefix resumes after every key under it.
                if seen || request.after.as_ref().is_some_and(|after| prefix <= *after) {
                    continue;
                }
                Entry::Prefix(prefix)
            }
        };
        if entries.len() == limit {
            truncated = limit > 0;
            break;
        }
        entries.push(entry);
    }
    let next = if truncated {
        entries.last().map(|entry| match entry {
            Entry::Object(object) => object.key.clone(),
            Entry::Prefix(prefix) => prefix.clone(),
        })
    } else {
        None
    };
    let key_count = i32::try_from(entries.len()).unwrap_or(MAX_KEYS);
    let mut contents = Vec::new();
    let mut common_prefixes = Vec::new();
    for entry in entries {
        match entry {
            Entry::Object(object) => contents.push(listed(object)?),
            Entry::Prefix(prefix) => common_prefixes.push(CommonPrefix { prefix: Some(prefix) }),
        }
    }
    Ok(Page {
        contents: (!contents.is_empty()).then_some(contents),
        common_prefixes: (!common_prefixes.is_empty()).then_some(common_prefixes),
        truncated,
        next,
        max_keys,
        key_count,
    })
}

/// The common prefix `key` rolls up into: the prefix, then what follows up to and including
/// the first delimiter after it.
pub(super) fn rolled_up(key: &str, prefix: &str, delimiter: Option<&str>) -> Option<String> {
    let rest = &key[prefix.len()..];
    let at = rest.find(delimiter?)?;
    Some(key[..prefix.len() + at + delimiter?.len()].to_owned())
}

fn listed(object: StoredObject) -> std::io::Result<Object> {
    let record = match objects::find(&object.path, &object.key) {
        Ok(found) => found.map(|found| found.record),
        // Deleted while the listing was made: S3 may list it or not; it keeps its place.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(err),
    };
    let (e_tag, class) = record.map_or((None, None), |r| (r.e_tag, r.attributes.storage_class));
    Ok(Object {
        key: Some(object.key),
        size: i64::try_from(object.size).ok(),
        last_modified: Some(Timestamp::from(object.last_modified)),
        e_tag: e_tag.map(ETag::Strong),
        storage_class: Some(class.map_or_else(
            || ObjectStorageClass::from_static(ObjectStorageClass::STANDARD),
            ObjectStorageClass::from,
        )),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_opaque_and_read_back() {
        for name in ["a/b", "x\u{1}y", "é", ""] {
            let token = encode_token(name);
            assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
            assert_eq!(decode_token(&token).unwrap(), name);
        }
        assert_eq!(*decode_token("not base64!").unwrap_err().code(), S3ErrorCode::InvalidArgument);
    }

    #[test]
    fn keys_roll_up_at_the_first_delimiter_after_the_prefix() {
        assert_eq!(rolled_up("a/b/c", "", Some("/")).as_deref(), Some("a/"));
        assert_eq!(rolled_up("a/b/c", "a/", Some("/")).as_deref(), Some("a/b/"));
        assert_eq!(rolled_up("a//b", "a/", Some("/")).as_deref(), Some("a//"));
        assert_eq!(rolled_up("a/b", "a/", Some("/")), None);
        assert_eq!(rolled_up("a--b--c", "", Some("--")).as_deref(), Some("a--"));
        assert_eq!(rolled_up("a/b", "", None), None);
    }

    #[test]
    fn pages_count_prefixes_and_resume_after_the_last_name() {
        let root = tempfile::tempdir().unwrap();
        let bucket = BucketName::parse("bkt").unwrap();
        for key in ["a", "a/1", "a/2", "b", "c/1", "d"] {
            objects::write_object_with(root.path(), &bucket, key, |w| w.write_all(b"x")).unwrap();
        }
        let mut after = None;
        let mut seen = Vec::new();
        loop {
            let request = Listing {
                prefix: String::new(),
                delimiter: Some("/".into()),
                after: after.clone(),
                max_keys: Some(2),
            };
            let page = page(root.path(), &bucket, &request).unwrap();
            for o in page.contents.iter().flatten() {
                seen.push(o.key.clone().unwrap());
            }
            for p in page.common_prefixes.iter().flatten() {
                seen.push(p.prefix.clone().unwrap());
            }
            if !page.truncated {
                break;
            }
            after = page.next;
        }
        seen.sort();
        assert_eq!(seen, ["a", "a/", "b", "c/", "d"]);
    }
}

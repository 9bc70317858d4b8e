//! The S3 calls of the task, each failure turned into a `PicksError` naming the call, the
//! object and S3's error code and message.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::ranged::Object;
use super::{PicksError, S3Location};

/// DeleteObjects takes at most this many keys a call.
const DELETE_BATCH: usize = 1000;

/// One object of a listing.
pub(super) struct Listed {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
}

fn s3_error<E>(operation: &'static str, target: String, err: SdkError<E>) -> PicksError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (code, message) = match (err.code(), err.message()) {
        (Some(code), message) => (code.to_owned(), message.unwrap_or("no message").to_owned()),
        // Not an answer of S3: the request never got one (connection, timeout, ...).
        (None, _) => {
            let kind = match &err {
                SdkError::ConstructionFailure(_) => "ConstructionFailure",
                SdkError::TimeoutError(_) => "TimeoutError",
                SdkError::DispatchFailure(_) => "DispatchFailure",
                SdkError::ResponseError(_) => "ResponseError",
                _ => "ServiceError",
            };
            (kind.to_owned(), DisplayErrorContext(&err).to_string())
        }
    };
    PicksError::S3 { operation, target, code, message }
}

/// Every object under `location`, in key order. `Ok(None)` when the bucket does not exist.
pub(super) async fn list(s3: &Client, location: &S3Location) -> Result<Option<Vec<Listed>>, PicksError> {
    let mut objects = Vec::new();
    let mut pages =
        s3.list_objects_v2().bucket(&location.bucket).prefix(&location.prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(err) if err.code() == Some("NoSuchBucket") => return Ok(None),
            Err(err) => return Err(s3_error("ListObjectsV2", location.to_string(), err)),
        };
        for object in page.contents.unwrap_or_default() {
            if let Some(key) = object.key {
                let size = object.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
                objects.push(Listed { key, size, etag: object.e_tag });
            }
        }
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Some(objects))
}

/// The body of `object`, or of `range` of it (`bytes=first-last`), from the listed version.
pub(super) async fn get_range(object: &Object, range: Option<String>) -> Result<ByteStream, PicksError> {
    let answer = object
        .s3
        .get_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_range(range)
        .set_if_match(object.etag.clone())
        .send()
        .await
        .map_err(|err| s3_error("GetObject", uri(&object.bucket, &object.key), err))?;
    Ok(answer.body)
}

/// Stores `body` with its SHA-256, which S3 checks on arrival; the payload itself is then not
/// signed (the checksum already covers it), which spares hashing every byte twice.
pub(super) async fn put(
    s3: &Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    sha256: &[u8; 32],
    content_type: &str,
) -> Result<(), PicksError> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .checksum_sha256(BASE64.encode(sha256))
        .body(ByteStream::from(body))
        .customize()
        .disable_payload_signing()
        .send()
        .await
        .map_err(|err| s3_error("PutObject", uri(bucket, key), err))?;
    Ok(())
}

/// Deletes `keys` of `bucket`; any key S3 could not delete fails the call.
pub(super) async fn delete(s3: &Client, bucket: &str, keys: &[String]) -> Result<(), PicksError> {
    for batch in keys.chunks(DELETE_BATCH) {
        let objects = batch
            .iter()
            .map(|key| ObjectIdentifier::builder().key(key).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| PicksError::S3 {
                operation: "DeleteObjects",
                target: format!("s3://{bucket}/"),
                code: "ConstructionFailure".into(),
                message: err.to_string(),
            })?;
        let delete = Delete::builder().set_objects(Some(objects)).quiet(true).build().map_err(|err| {
            PicksError::S3 {
                operation: "DeleteObjects",
                target: format!("s3://{bucket}/"),
                code: "ConstructionFailure".into(),
                message: err.to_string(),
            }
        })?;
        let out = s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|err| s3_error("DeleteObjects", format!("s3://{bucket}/"), err))?;
        if let Some(failed) = out.errors.unwrap_or_default().into_iter().next() {
            return Err(PicksError::S3 {
                operation: "DeleteObjects",
                target: uri(bucket, failed.key.as_deref().unwrap_or("?")),
                code: failed.code.unwrap_or_else(|| "Unknown".into()),
                message: failed.message.unwrap_or_else(|| "no message".into()),
            });
        }
    }
    Ok(())
}

pub(super) fn uri(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

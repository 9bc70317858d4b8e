//! The S3 operations the local store serves, over the files of [`objects`]: buckets, objects
//! (with ranged reads, conditional writes and copies), listings (v1 and v2, with prefix,
//! delimiter, pagination and `EncodingType=url`) and multipart uploads. Other operations answer
//! NotImplemented.
//!
//! An upload is received into a temporary file while its digests are computed, then checked
//! ([`digests`]); only a body whose Content-MD5 and checksums match replaces the object, by a rename taken
//! under the key's lock together with the `If-None-Match`/`If-Match` check, so of racing
//! conditional writers exactly one wins.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;
use md5::{Digest as _, Md5};
use s3s::dto::*;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

use super::bucket_name::BucketName;
use super::digests::{self, DeclaredDigests};
use super::key_locks::{Locks, Resource};
use super::list_encoding;
use super::listing::{self, Listing};
use super::messages;
use super::multipart::{self, Part as StoredPart, Upload, Uploads, no_such_upload};
use super::objects::{self, Attributes, Checksums, Found, Record};

/// Smallest part but the last that CompleteMultipartUpload accepts (S3 user guide, "Amazon S3
/// multipart upload limits": 5 MiB).
const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;

pub(super) struct LocalStore {
    /// The S3 root: `<root>/<bucket>` is that bucket's folder.
    root: PathBuf,
    /// The region the endpoint stands for: us-east-1 answers a repeated CreateBucket as S3 does
    /// there.
    region: String,
    locks: Arc<Locks>,
    uploads: Uploads,
}

impl LocalStore {
    pub(super) fn new(root: PathBuf, region: &str) -> Self {
        let uploads = Uploads::new(&root);
        Self { root, region: region.to_owned(), locks: Arc::default(), uploads }
    }

    /// The bucket's folder, which must exist.
    async fn bucket_dir(&self, bucket: &str) -> S3Result<(BucketName, PathBuf)> {
        let name = checked_bucket(bucket)?;
        let dir = name.dir(&self.root);
        match tokio::fs::metadata(&dir).await {
            Ok(meta) if meta.is_dir() => Ok((name, dir)),
            Ok(_) => Err(no_such_bucket()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Err(no_such_bucket()),
            Err(err) => Err(S3Error::internal_error(err)),
        }
    }

    /// The object `bucket`/`key` (both checked); NoSuchBucket or NoSuchKey when absent.
    async fn existing(&self, bucket: &str, key: &str) -> S3Result<Found> {
        self.find(bucket, key).await?.ok_or_else(no_such_key)
    }

    /// The object `bucket`/`key` if there is one; NoSuchBucket when the bucket is missing. A
    /// record rebuilt from the bytes is stored for next time (under the object's lock).
    async fn find(&self, bucket: &str, key: &str) -> S3Result<Option<Found>> {
        checked_key(key)?;
        let (name, _) = self.bucket_dir(bucket).await?;
        let path = objects::object_path(&self.root, &name, key);
        let owned = key.to_owned();
        let looked_up = path.clone();
        let found = blocking(move || objects::find(&looked_up, &owned)).await?;
        match found {
            Some(found) if !found.recorded => {
                let held = self.locks.exclusive(Resource::object(bucket, key)).await;
                blocking(move || {
                    let _held = held;
                    // Only a saving for next time: a read-only or full disk still serves the object.
                    if let Err(err) = objects::repair(&path, &found) {
                        tracing::warn!(error = %err, path = %path.display(), "cannot store an object's rebuilt record");
                    }
                    Ok(Some(found))
                })
                .await
            }
            found => Ok(found),
        }
    }

    /// Replaces `bucket`/`key` by the bytes at `tmp` (in the bucket's folder), after checking
    /// the write's conditions against the object it replaces: the record first, then the bytes
    /// (see [`objects`]). NoSuchBucket when the bucket was deleted meanwhile.
    ///
    /// The check, the record and the rename run in one blocking task that owns the bucket's and
    /// the object's locks: a request dropped half-way (a client gone) cannot let another writer
    /// in between, nor leave the rename without its record.
    async fn commit(
        &self,
        target: Target<'_>,
        tmp: TempFile,
        record: impl FnOnce(&std::fs::Metadata) -> Record + Send + 'static,
    ) -> S3Result<Record> {
        let name = checked_bucket(target.bucket)?;
        let held = (
            self.locks.shared(Resource::Bucket(target.bucket.to_owned())).await,
            self.locks.exclusive(Resource::object(target.bucket, target.key)).await,
        );
        let path = objects::object_path(&self.root, &name, target.key);
        let (key, conditions) = (target.key.to_owned(), target.conditions);
        let done = tokio::task::spawn_blocking(move || {
            let _held = held;
            if conditions.given() {
                let current = objects::find(&path, &key).map_err(S3Error::internal_error)?;
                conditions.check(current.as_ref())?;
            }
            let meta = std::fs::metadata(tmp.path()).map_err(bucket_gone)?;
            let record = record(&meta);
            objects::write_record(&path, &record).map_err(bucket_gone)?;
            // Should the rename fail, the record names the temporary's inode and matches no
            // object: the old object is read as unrecorded, never with the new ETag.
            tmp.rename_to(&path).map_err(bucket_gone)?;
            Ok(record)
        });
        done.await.map_err(S3Error::internal_error)?
    }
}

/// A bucket's LocationConstraint, when CreateBucket named one (`<bucket>/.location`).
const LOCATION_FILE: &str = ".location";

const MALFORMED_XML: &str =
    "The XML you provided was not well-formed or did not validate against our published schema";

/// Object tags are not kept: a write that sets them is refused rather than stored without them
/// (the tagging operations answer NotImplemented too).
fn refuse_tagging(tagging: Option<&str>) -> S3Result<()> {
    match tagging {
        Some(tags) if !tags.is_empty() => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "A header you provided implies functionality that is not implemented: the local S3 does not keep object tags (x-amz-tagging)",
        )),
        _ => Ok(()),
    }
}

impl LocalStore {
    /// CreateBucket's LocationConstraint against the region this endpoint stands for. us-east-1
    /// takes none or another region's (the bucket is made there: [`LOCATION_FILE`]), and naming
    /// us-east-1 itself is InvalidLocationConstraint; any other region takes only its own, else
    /// IllegalLocationConstraintException (CreateBucket API reference; S3 error codes).
    fn check_location(&self, constraint: Option<&str>) -> S3Result<()> {
        let region = self.region.as_str();
        match constraint {
            None if region == "us-east-1" => Ok(()),
            Some("us-east-1") if region == "us-east-1" => Err(S3Error::with_message(
                S3ErrorCode::InvalidLocationConstraint,
                "The specified location-constraint is not valid",
            )),
            Some(_) if region == "us-east-1" => Ok(()),
            Some(given) if given == region => Ok(()),
            given => Err(S3Error::with_message(
                S3ErrorCode::IllegalLocationConstraintException,
                format!(
                    "The {} location constraint is incompatible for the region specific endpoint this request was sent to.",
                    given.unwrap_or("unspecified")
                ),
            )),
        }
    }
}

/// A write's file error: NotFound means the bucket's folder went away under it (DeleteBucket
/// while the body was received).
fn bucket_gone(err: io::Error) -> S3Error {
    if err.kind() == io::ErrorKind::NotFound { no_such_bucket() } else { S3Error::internal_error(err) }
}

/// The object a write replaces, and the conditions it was given.
struct Target<'a> {
    bucket: &'a str,
    key: &'a str,
    conditions: WriteConditions,
}

/// `If-None-Match` and `If-Match` on a write (PutObject, CompleteMultipartUpload).
#[derive(Default)]
struct WriteConditions {
    if_none_match: Option<ETagCondition>,
    if_match: Option<ETagCondition>,
}

impl WriteConditions {
    fn given(&self) -> bool {
        self.if_none_match.is_some() || self.if_match.is_some()
    }

    /// PreconditionFailed when `current` (the object the write would replace) fails them
    /// (PutObject API reference: `If-None-Match: *` writes only a new key, `If-Match` only over
    /// the given ETag).
    fn check(&self, current: Option<&Found>) -> S3Result<()> {
        if self.if_none_match.as_ref().is_some_and(|c| !c.is_any()) {
            return Err(S3Error::with_message(
                S3ErrorCode::NotImplemented,
                "A header you provided implies functionality that is not implemented: If-None-Match on a write takes only '*'",
            ));
        }
        let failed = || {
            S3Error::with_message(
                S3ErrorCode::PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold",
            )
        };
        if let Some(condition) = &self.if_none_match
            && let Some(found) = current
            && (condition.is_any() || condition.as_etag().is_some_and(|e| etag_matches(found, e)))
        {
            return Err(failed());
        }
        if let Some(condition) = &self.if_match {
            let Some(found) = current else {
                return Err(S3Error::with_message(S3ErrorCode::NoSuchKey, messages::NO_SUCH_KEY));
            };
            if condition.as_etag().is_some_and(|e| !etag_matches(found, e)) {
                return Err(failed());
            }
        }
        Ok(())
    }
}

fn etag_matches(found: &Found, given: &ETag) -> bool {
    found.record.e_tag.as_deref() == Some(given.value())
}

/// S3 answers InvalidBucketName ("The specified bucket is not valid.") for a name that breaks
/// its naming rules; the local store also says which rule.
fn checked_bucket(bucket: &str) -> S3Result<BucketName> {
    BucketName::parse(bucket).map_err(|err| {
        S3Error::with_message(
            S3ErrorCode::InvalidBucketName,
            format!("The specified bucket is not valid. {err}"),
        )
    })
}

/// S3's own key limits (1 to 1,024 bytes), nothing stricter: every such key has a file.
fn checked_key(key: &str) -> S3Result<()> {
    objects::check_key(key).map_err(|err| match err {
        objects::InvalidKey::TooLong(_) => {
            S3Error::with_message(S3ErrorCode::KeyTooLongError, format!("Your key is too long: {err}"))
        }
        objects::InvalidKey::Empty => S3Error::with_message(S3ErrorCode::InvalidArgument, err.to_string()),
    })
}

fn no_such_bucket() -> S3Error {
    S3Error::with_message(S3ErrorCode::NoSuchBucket, messages::NO_SUCH_BUCKET)
}

fn no_such_key() -> S3Error {
    S3Error::with_message(S3ErrorCode::NoSuchKey, messages::NO_SUCH_KEY)
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> io::Result<T> + Send + 'static) -> S3Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(S3Error::internal_error)?.map_err(S3Error::internal_error)
}

/// The attributes a write (PutObject, CopyObject with REPLACE, CreateMultipartUpload) gives
/// its object, taken from `$input`; an error for a storage class the store cannot keep.
macro_rules! attributes_of {
    ($input:expr) => {
        Attributes {
            content_type: $input.content_type.take(),
            content_encoding: $input.content_encoding.take(),
            content_disposition: $input.content_disposition.take(),
            content_language: $input.content_language.take(),
            cache_control: $input.cache_control.take(),
            expires: format_expires($input.expires.take()),
            website_redirect_location: $input.website_redirect_location.take(),
            user_metadata: $input.metadata.take(),
            storage_class: stored_class($input.storage_class.take())?,
            server_side_encryption: $input.server_side_encryption.take().map(|e| e.as_str().to_owned()),
        }
    };
}

/// The storage class to keep: None for STANDARD. Objects of every class the store keeps stay
/// readable, as S3's are; the archive classes (GLACIER, DEEP_ARCHIVE), whose objects S3 refuses
/// to read until restored, are not emulated and are refused rather than ignored.
fn stored_class(class: Option<StorageClass>) -> S3Result<Option<String>> {
    const READABLE: [&str; 5] =
        ["REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR"];
    match class.as_ref().map(StorageClass::as_str) {
        None | Some(StorageClass::STANDARD) => Ok(None),
        Some(name) if READABLE.contains(&name) => Ok(Some(name.to_owned())),
        Some(name @ (StorageClass::GLACIER | StorageClass::DEEP_ARCHIVE)) => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            format!(
                "local S3 does not emulate the archive storage class {name}: its objects cannot be read until restored"
            ),
        )),
        Some(_) => Err(S3Error::with_message(
            S3ErrorCode::InvalidStorageClass,
            "The storage class you specified is not valid",
        )),
    }
}

/// A GetObject or HeadObject answer (`$output`, a struct with the fields `$field`s given and
/// the object headers both operations share) for the object whose record is `$record` and
/// whose file's metadata is `$meta`; `$sums` are the checksums to return.
macro_rules! object_output {
    ($output:ident { $($field:ident: $value:expr),* $(,)? }, $meta:expr, $record:expr, $sums:expr) => {{
        let record: Record = $record;
        let sums: Checksums = $sums;
        let attrs = record.attributes;
        $output {
            $($field: $value,)*
            accept_ranges: Some("bytes".to_owned()),
            last_modified: Some(timestamp($meta)),
            e_tag: record.e_tag.map(ETag::Strong),
            metadata: attrs.user_metadata,
            content_type: Some(attrs.content_type.unwrap_or_else(|| "binary/octet-stream".to_owned())),
            content_encoding: attrs.content_encoding,
            content_disposition: attrs.content_disposition,
            content_language: attrs.content_language,
            cache_control: attrs.cache_control,
            expires: parse_expires(attrs.expires.as_ref()),
            website_redirect_location: attrs.website_redirect_location,
            storage_class: attrs.storage_class.map(StorageClass::from),
            server_side_encryption: Some(encryption(attrs.server_side_encryption)),
            checksum_crc32: sums.crc32,
            checksum_crc32c: sums.crc32c,
            checksum_sha1: sums.sha1,
            checksum_sha256: sums.sha256,
            checksum_crc64nvme: sums.crc64nvme,
            ..Default::default()
        }
    }};
}

/// What a read with `partNumber` returns of an object of `len` bytes: the part's start, length
/// and Content-Range; None without a part number. A part the object does not have is 416
/// InvalidPartNumber (GetObject API reference).
/// The bytes a GetObject or HeadObject answers for, as (start, count, Content-Range): part
/// `part_number`, else `range`, else the whole object (no Content-Range). Both at once is
/// InvalidRequest; a range the object's `len` bytes cannot satisfy is 416 InvalidRange (and,
/// for HeadObject, "If the Range is satisfiable, only the ContentLength is affected": HeadObject
/// API reference).
fn span(
    record: &Record,
    part_number: Option<i32>,
    range: Option<s3s::dto::Range>,
    len: u64,
) -> S3Result<(u64, u64, Option<String>)> {
    if part_number.is_some() && range.is_some() {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Cannot specify both Range header and partNumber query parameter",
        ));
    }
    if let Some(part) = part_of(record, part_number, len)? {
        return Ok(part);
    }
    let Some(range) = range else { return Ok((0, len, None)) };
    let unsatisfiable =
        || S3Error::with_message(S3ErrorCode::InvalidRange, "The requested range is not satisfiable");
    let span = range.check(len).map_err(|_| unsatisfiable())?;
    if span.is_empty() {
        return Err(unsatisfiable());
    }
    Ok((span.start, span.end - span.start, Some(format!("bytes {}-{}/{len}", span.start, span.end - 1))))
}

fn part_of(record: &Record, number: Option<i32>, len: u64) -> S3Result<Option<(u64, u64, Option<String>)>> {
    let Some(number) = number else { return Ok(None) };
    if number < 1 {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        ));
    }
    let (start, count) = record.part_range(number).ok_or_else(|| {
        let mut err = S3Error::with_message(
            S3ErrorCode::Custom("InvalidPartNumber".into()),
            "The requested partnumber is not satisfiable",
        );
        err.set_status_code(hyper::StatusCode::RANGE_NOT_SATISFIABLE);
        err
    })?;
    let range = (count > 0).then(|| format!("bytes {start}-{}/{len}", start + count - 1));
    Ok(Some((start, count, range)))
}

/// The server-side encryption an answer names: the one asked for, else S3's default, AES256.
fn encryption(asked: Option<String>) -> ServerSideEncryption {
    asked.map_or_else(
        || ServerSideEncryption::from_static(ServerSideEncryption::AES256),
        ServerSideEncryption::from,
    )
}

/// The checksums a read returns: the stored ones, when the client sent `x-amz-checksum-mode:
/// ENABLED` and reads the whole object (GetObject API reference, "ChecksumMode").
fn checksums_asked(record: &Record, mode: Option<&ChecksumMode>, whole: bool) -> Checksums {
    let enabled = mode.is_some_and(|m| m.as_str() == ChecksumMode::ENABLED);
    if enabled && whole { record.checksums.clone() } else { Checksums::default() }
}

fn timestamp(meta: &std::fs::Metadata) -> Timestamp {
    Timestamp::from(meta.modified().unwrap_or(UNIX_EPOCH))
}

fn content_length(len: u64) -> S3Result<i64> {
    i64::try_from(len).map_err(S3Error::internal_error)
}

fn format_expires(expires: Option<Timestamp>) -> Option<String> {
    let mut text = Vec::new();
    expires?.format(TimestampFormat::DateTime, &mut text).ok()?;
    String::from_utf8(text).ok()
}

fn parse_expires(text: Option<&String>) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::DateTime, text?).ok()
}

fn declared_checksums(
    crc32: &Option<String>,
    crc32c: &Option<String>,
    sha1: &Option<String>,
    sha256: &Option<String>,
    crc64nvme: &Option<String>,
) -> Checksum {
    Checksum {
        checksum_crc32: crc32.clone(),
        checksum_crc32c: crc32c.clone(),
        checksum_sha1: sha1.clone(),
        checksum_sha256: sha256.clone(),
        checksum_crc64nvme: crc64nvme.clone(),
        ..Default::default()
    }
}

fn stored_checksums(sums: Checksum) -> Checksums {
    Checksums {
        crc32: sums.checksum_crc32,
        crc32c: sums.checksum_crc32c,
        sha1: sums.checksum_sha1,
        sha256: sums.checksum_sha256,
        crc64nvme: sums.checksum_crc64nvme,
    }
}

/// A body received into a file.
struct Received {
    size: u64,
    md5: [u8; 16],
    checksums: Checksum,
}

/// A temporary file, removed when dropped unless it was moved into place: also when the
/// request that made it is dropped half-way (a client gone, a server stopping).
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn new(path: PathBuf) -> Self {
        TempFile(Some(path))
    }

    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// Moves the file to `target`.
    fn rename_to(mut self, target: &Path) -> io::Result<()> {
        let path = self.0.take().unwrap_or_default();
        let renamed = std::fs::rename(&path, target);
        if renamed.is_err() {
            self.0 = Some(path);
        }
        renamed
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Streams `body` into a new file at `tmp`, hashing it once for its MD5 and the checksums
/// `declared` names, then checks them against what `declared` says (BadDigest).
async fn receive(
    body: Option<StreamingBlob>,
    tmp: &TempFile,
    declared: DeclaredDigests,
) -> S3Result<Received> {
    // A malformed Content-MD5 is refused before anything is read.
    let expected_md5 = declared.content_md5()?;
    let mut hasher = digests::hasher_for(&declared);
    let outcome = async {
        let file = tokio::fs::File::create(tmp.path()).await?;
        let mut writer = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut md5 = Md5::new();
        let mut size = 0u64;
        if let Some(mut body) = body {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(io::Error::other)?;
                md5.update(&chunk);
                hasher.update(&chunk);
                writer.write_all(&chunk).await?;
                size += chunk.len() as u64;
            }
        }
        writer.flush().await?;
        Ok::<_, io::Error>(Received { size, md5: md5.finalize().into(), checksums: hasher.finalize() })
    }
    .await;
    let received = outcome.map_err(S3Error::internal_error)?;
    declared.check(expected_md5, received.md5, &received.checksums)?;
    Ok(received)
}

/// Copies `len` bytes from `source` at `start` into a new file at `tmp`; returns their MD5.
fn copy_range(mut source: std::fs::File, start: u64, len: u64, tmp: &Path) -> io::Result<[u8; 16]> {
    use std::io::{Read as _, Seek as _, Write as _};
    let result = (|| {
        source.seek(io::SeekFrom::Start(start))?;
        let mut input = source.take(len);
        let mut output = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(tmp)?);
        let mut md5 = Md5::new();
        let mut buf = vec![0; 1 << 16];
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            md5.update(&buf[..n]);
            output.write_all(&buf[..n])?;
        }
        output.flush()?;
        Ok(md5.finalize().into())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

/// The source of a copy: its bucket and key, checked.
fn copy_source(source: &CopySource) -> S3Result<(&str, &str)> {
    match source {
        CopySource::Bucket { bucket, key, .. } => Ok((bucket, key)),
        CopySource::AccessPoint { .. } | CopySource::Outpost { .. } => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "local S3 copies only from bucket/key sources",
        )),
    }
}

/// `x-amz-copy-source-range: bytes=first-last` against a source of `len` bytes.
fn copy_source_range(range: Option<&str>, len: u64) -> S3Result<(u64, u64)> {
    let Some(range) = range else { return Ok((0, len)) };
    let invalid = || {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!(
                "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy, not {range:?}"
            ),
        )
    };
    let (first, last) = range.strip_prefix("bytes=").and_then(|r| r.split_once('-')).ok_or_else(invalid)?;
    let first: u64 = first.parse().map_err(|_| invalid())?;
    let last: u64 = last.parse().map_err(|_| invalid())?;
    if first > last || last >= len {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRange,
            "The requested range is not satisfiable",
        ));
    }
    Ok((first, last - first + 1))
}

/// What the client declared about an upload's body (`$input`, a PutObject or UploadPart
/// input, of the request `$req`).
macro_rules! declared_digests {
    ($input:expr, $req:expr) => {
        DeclaredDigests {
            content_md5: $input.content_md5.clone(),
            algorithm: $input.checksum_algorithm.clone(),
            checksums: declared_checksums(
                &$input.checksum_crc32,
                &$input.checksum_crc32c,
                &$input.checksum_sha1,
                &$input.checksum_sha256,
                &$input.checksum_crc64nvme,
            ),
            trailers: $req.trailing_headers.clone(),
        }
    };
}

/// The [`ReadConditions`] of `$input`, from its fields for If-Match, If-None-Match,
/// If-Modified-Since and If-Unmodified-Since, in that order.
macro_rules! conditions {
    ($input:expr, $if_match:ident, $if_none_match:ident, $modified:ident, $unmodified:ident) => {
        ReadConditions {
            if_match: $input.$if_match.as_ref(),
            if_none_match: $input.$if_none_match.as_ref(),
            if_modified_since: $input.$modified.as_ref(),
            if_unmodified_since: $input.$unmodified.as_ref(),
        }
    };
}

/// The `If-*` preconditions of a read (RFC 7232 as S3 applies them, GetObject API reference).
struct ReadConditions<'a> {
    if_match: Option<&'a ETagCondition>,
    if_none_match: Option<&'a ETagCondition>,
    if_modified_since: Option<&'a Timestamp>,
    if_unmodified_since: Option<&'a Timestamp>,
}

/// GetObject's and HeadObject's conditions: a failed If-Match or If-Unmodified-Since is 412
/// PreconditionFailed, a matching If-None-Match or a failed If-Modified-Since is 304 Not
/// Modified.
fn check_read_conditions(found: &Found, conditions: ReadConditions<'_>) -> S3Result<()> {
    let not_modified = || S3Error::with_message(S3ErrorCode::NotModified, "Not Modified");
    check_conditions(found, conditions, not_modified).map_err(|mut err| {
        // A 304 names what the client has (RFC 9110 15.4.5: the ETag and Last-Modified a 200
        // would carry), as S3's does.
        if *err.code() == S3ErrorCode::NotModified {
            err.set_headers(validators(found));
        }
        err
    })
}

/// The ETag and Last-Modified headers of `found`.
fn validators(found: &Found) -> hyper::HeaderMap {
    let mut headers = hyper::HeaderMap::new();
    if let Some(e_tag) = &found.record.e_tag
        && let Ok(value) = hyper::header::HeaderValue::from_str(&format!("\"{e_tag}\""))
    {
        headers.insert(hyper::header::ETAG, value);
    }
    let mut date = Vec::new();
    let modified = Timestamp::from(found.meta.modified().unwrap_or(UNIX_EPOCH));
    if modified.format(TimestampFormat::HttpDate, &mut date).is_ok()
        && let Ok(value) = hyper::header::HeaderValue::from_bytes(&date)
    {
        headers.insert(hyper::header::LAST_MODIFIED, value);
    }
    headers
}

/// CopyObject's and UploadPartCopy's `x-amz-copy-source-if-*` against the source: every
/// failure is 412 PreconditionFailed (CopyObject API reference).
fn check_copy_conditions(source: &Found, conditions: ReadConditions<'_>) -> S3Result<()> {
    check_conditions(source, conditions, precondition_failed)
}

fn precondition_failed() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold",
    )
}

/// Applies `conditions` to `source`; `unchanged` is the error when the object is unchanged
/// where the request wanted a change (If-None-Match, If-Modified-Since).
fn check_conditions(
    source: &Found,
    conditions: ReadConditions<'_>,
    unchanged: fn() -> S3Error,
) -> S3Result<()> {
    let ReadConditions { if_match, if_none_match, if_modified_since, if_unmodified_since } = conditions;
    // HTTP dates carry whole seconds: an object's own Last-Modified must compare equal.
    let secs = source
        .meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let modified = Timestamp::from(UNIX_EPOCH + std::time::Duration::from_secs(secs));
    let failed = precondition_failed;
    // S3: If-Match overrides If-Unmodified-Since, If-None-Match overrides If-Modified-Since.
    match if_match {
        Some(condition)
            if !condition.is_any() && !condition.as_etag().is_some_and(|e| etag_matches(source, e)) =>
        {
            return Err(failed());
        }
        Some(_) => {}
        None if if_unmodified_since.is_some_and(|since| modified > *since) => return Err(failed()),
        None => {}
    }
    match if_none_match {
        Some(condition)
            if condition.is_any() || condition.as_etag().is_some_and(|e| etag_matches(source, e)) =>
        {
            Err(unchanged())
        }
        Some(_) => Ok(()),
        None if if_modified_since.is_some_and(|since| modified <= *since) => Err(unchanged()),
        None => Ok(()),
    }
}

#[async_trait::async_trait]
impl S3 for LocalStore {
    /// A second CreateBucket of one's own bucket is 409 BucketAlreadyOwnedByYou in every region
    /// but us-east-1, which answers 200 "for legacy compatibility" (CreateBucket API reference,
    /// BucketAlreadyOwnedByYou).
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let name = checked_bucket(&req.input.bucket)?;
        let constraint =
            req.input.create_bucket_configuration.as_ref().and_then(|c| c.location_constraint.as_ref());
        self.check_location(constraint.map(BucketLocationConstraint::as_str))?;
        match tokio::fs::create_dir(name.dir(&self.root)).await {
            Ok(()) => {
                if let Some(constraint) = constraint {
                    let path = name.dir(&self.root).join(LOCATION_FILE);
                    tokio::fs::write(path, constraint.as_str()).await.map_err(S3Error::internal_error)?;
                }
                Ok(S3Response::new(CreateBucketOutput::default()))
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && self.region == "us-east-1" => {
                Ok(S3Response::new(CreateBucketOutput::default()))
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Err(S3Error::with_message(
                S3ErrorCode::BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it.",
            )),
            Err(err) => Err(S3Error::internal_error(err)),
        }
    }

    /// S3 deletes only empty buckets (DeleteBucket API reference: "All objects ... must be
    /// deleted before the bucket itself can be deleted"), answering 409 BucketNotEmpty.
    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let bucket = &req.input.bucket;
        let (_, dir) = self.bucket_dir(bucket).await?;
        // Held across the check and the removal: no write lands in between (see key_locks).
        let held = self.locks.exclusive(Resource::Bucket(bucket.clone())).await;
        let check = dir.clone();
        if blocking(move || objects::holds_objects(&check)).await? {
            return Err(S3Error::with_message(S3ErrorCode::BucketNotEmpty, messages::BUCKET_NOT_EMPTY));
        }
        // Its uploads in progress go with it, so a bucket made again later does not inherit them.
        // Without their locks (taken before a bucket's, see key_locks): a part moved in meanwhile
        // finds its upload gone.
        for (id, _) in self.uploads.in_progress(bucket, "").await? {
            self.uploads.discard(&id).await;
        }
        match tokio::fs::remove_dir_all(&dir).await {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(S3Error::internal_error(err)),
            _ => {}
        }
        drop(held);
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        self.bucket_dir(&req.input.bucket).await?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let (_, dir) = self.bucket_dir(&req.input.bucket).await?;
        // The constraint it was made with, else this endpoint's region; us-east-1 is named by
        // none at all (GetBucketLocation API reference).
        let named = tokio::fs::read_to_string(dir.join(LOCATION_FILE)).await.ok();
        let location_constraint = named
            .or_else(|| (self.region != "us-east-1").then(|| self.region.clone()))
            .map(BucketLocationConstraint::from);
        Ok(S3Response::new(GetBucketLocationOutput { location_constraint }))
    }

    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let root = self.root.clone();
        let buckets = blocking(move || {
            let mut buckets = Vec::new();
            for entry in std::fs::read_dir(&root)? {
                let entry = entry?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
                if !entry.file_type()?.is_dir() || BucketName::parse(&name).is_err() {
                    continue;
                }
                let meta = entry.metadata()?;
                let created = meta.created().or_else(|_| meta.modified()).unwrap_or(UNIX_EPOCH);
                buckets.push(Bucket {
                    creation_date: Some(Timestamp::from(created)),
                    name: Some(name),
                    bucket_region: None,
                });
            }
            buckets.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(buckets)
        })
        .await?;
        Ok(S3Response::new(ListBucketsOutput { buckets: Some(buckets), ..Default::default() }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let (name, _) = self.bucket_dir(&input.bucket).await?;
        let request = Listing {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
            after: input.marker.clone().filter(|m| !m.is_empty()),
            max_keys: input.max_keys,
        };
        let delimited = request.delimiter.is_some();
        let page = listing::list(&self.root, name, request).await?;
        let mut output = ListObjectsOutput {
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            marker: input.marker,
            max_keys: Some(page.max_keys),
            is_truncated: Some(page.truncated),
            // S3 gives NextMarker only with a delimiter; without one, clients resume after the
            // last key listed (ListObjects API reference, "NextMarker").
            next_marker: page.next.filter(|_| delimited),
            contents: page.contents,
            common_prefixes: page.common_prefixes,
            ..Default::default()
        };
        if list_encoding::wants_url(input.encoding_type.as_ref()) {
            list_encoding::encode_v1(&mut output);
        }
        Ok(S3Response::new(output))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let (name, _) = self.bucket_dir(&input.bucket).await?;
        // The continuation token is the last name of the previous page, base64url-encoded so
        // that it is opaque and safe in XML whatever the key holds; it takes over from
        // StartAfter, which S3 applies to the first page only.
        let token = input.continuation_token.as_deref().map(listing::decode_token).transpose()?;
        let after = token.or_else(|| input.start_after.clone()).filter(|a| !a.is_empty());
        let request = Listing {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
            after,
            max_keys: input.max_keys,
        };
        let page = listing::list(&self.root, name, request).await?;
        let mut output = ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            start_after: input.start_after,
            continuation_token: input.continuation_token,
            max_keys: Some(page.max_keys),
            key_count: Some(page.key_count),
            is_truncated: Some(page.truncated),
            next_continuation_token: page.next.as_deref().map(listing::encode_token),
            contents: page.contents,
            common_prefixes: page.common_prefixes,
            ..Default::default()
        };
        if list_encoding::wants_url(input.encoding_type.as_ref()) {
            list_encoding::encode_v2(&mut output);
        }
        Ok(S3Response::new(output))
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let found = self.existing(&input.bucket, &input.key).await?;
        check_read_conditions(
            &found,
            conditions!(input, if_match, if_none_match, if_modified_since, if_unmodified_since),
        )?;
        let len = found.meta.len();
        let (start, count, content_range) = span(&found.record, input.part_number, input.range, len)?;
        // The file `find` opened: its bytes are the ones the record describes.
        let mut file = tokio::fs::File::from_std(found.file);
        file.seek(io::SeekFrom::Start(start)).await.map_err(S3Error::internal_error)?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(count), 1 << 16);
        // S3 returns an object's checksums only for the whole object, and when asked.
        let sums = checksums_asked(&found.record, input.checksum_mode.as_ref(), count == len);
        let parts_count = input.part_number.and(found.record.parts_count());
        let output = object_output!(
            GetObjectOutput {
                body: Some(StreamingBlob::wrap(stream)),
                content_length: Some(content_length(count)?),
                content_range: content_range,
                parts_count: parts_count,
            },
            &found.meta,
            found.record,
            sums
        );
        Ok(S3Response::new(output))
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let found = self.existing(&input.bucket, &input.key).await?;
        check_read_conditions(
            &found,
            conditions!(input, if_match, if_none_match, if_modified_since, if_unmodified_since),
        )?;
        let len = found.meta.len();
        let (_, count, content_range) = span(&found.record, input.part_number, input.range, len)?;
        let partial = content_range.is_some();
        let parts_count = input.part_number.and(found.record.parts_count());
        let sums = checksums_asked(&found.record, input.checksum_mode.as_ref(), count == len);
        let output = object_output!(
            HeadObjectOutput {
                content_length: Some(content_length(count)?),
                content_range: content_range,
                parts_count: parts_count,
            },
            &found.meta,
            found.record,
            sums
        );
        let mut response = S3Response::new(output);
        if partial {
            // A part or a range is partial content, for HEAD as for GET (RFC 9110: a HEAD answer
            // carries the headers a GET would).
            response.status = Some(hyper::StatusCode::PARTIAL_CONTENT);
        }
        Ok(response)
    }

    async fn put_object(&self, mut req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let input = &mut req.input;
        checked_key(&input.key)?;
        let (name, _) = self.bucket_dir(&input.bucket).await?;
        refuse_tagging(input.tagging.as_deref())?;
        let declared = declared_digests!(input, req);
        let tmp = TempFile::new(crate::atomic_file::temp_sibling(&objects::object_path(
            &self.root, &name, &input.key,
        )));
        let received = receive(input.body.take(), &tmp, declared).await?;
        let attributes = attributes_of!(input);
        let target = Target {
            bucket: &input.bucket,
            key: &input.key,
            conditions: WriteConditions {
                if_none_match: input.if_none_match.take(),
                if_match: input.if_match.take(),
            },
        };
        let e_tag = hex::encode(received.md5);
        let checksums = stored_checksums(received.checksums);
        let key = input.key.clone();
        let record = self
            .commit(target, tmp, move |meta| Record {
                e_tag: Some(e_tag),
                checksums,
                attributes,
                ..Record::bare(key, meta)
            })
            .await?;
        let sums = record.checksums;
        let output = PutObjectOutput {
            e_tag: record.e_tag.map(ETag::Strong),
            server_side_encryption: Some(encryption(record.attributes.server_side_encryption)),
            checksum_crc32: sums.crc32,
            checksum_crc32c: sums.crc32c,
            checksum_sha1: sums.sha1,
            checksum_sha256: sums.sha256,
            checksum_crc64nvme: sums.crc64nvme,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    /// MetadataDirective COPY (the default) keeps the source's attributes; REPLACE takes the
    /// request's (CopyObject API reference).
    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let mut input = req.input;
        checked_key(&input.key)?;
        refuse_tagging(input.tagging.as_deref())?;
        let (src_bucket, src_key) = copy_source(&input.copy_source)?;
        let replace =
            input.metadata_directive.as_ref().is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        // A copy onto itself must change something S3 keeps apart from the bytes.
        let changes = replace
            || input.storage_class.is_some()
            || input.server_side_encryption.is_some()
            || input.website_redirect_location.is_some();
        if (src_bucket, src_key) == (input.bucket.as_str(), input.key.as_str()) && !changes {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without \
                 changing the object's metadata, storage class, website redirect location or encryption attributes.",
            ));
        }
        let source = self.existing(src_bucket, src_key).await?;
        let (name, _) = self.bucket_dir(&input.bucket).await?;
        check_copy_conditions(
            &source,
            conditions!(
                input,
                copy_source_if_match,
                copy_source_if_none_match,
                copy_source_if_modified_since,
                copy_source_if_unmodified_since
            ),
        )?;
        let tmp = TempFile::new(crate::atomic_file::temp_sibling(&objects::object_path(
            &self.root, &name, &input.key,
        )));
        let (from, to, len) = (source.file, tmp.path().to_owned(), source.meta.len());
        let md5 = blocking(move || copy_range(from, 0, len, &to)).await?;
        // The storage class and encryption come from the request whatever the directive (STANDARD
        // and S3's default when it names none), as S3 copies them (CopyObject API reference).
        let attributes = if replace {
            attributes_of!(input)
        } else {
            Attributes {
                storage_class: stored_class(input.storage_class.take())?,
                server_side_encryption: input.server_side_encryption.take().map(|e| e.as_str().to_owned()),
                website_redirect_location: input
                    .website_redirect_location
                    .take()
                    .or_else(|| source.record.attributes.website_redirect_location.clone()),
                ..source.record.attributes.clone()
            }
        };
        let target =
            Target { bucket: &input.bucket, key: &input.key, conditions: WriteConditions::default() };
        let checksums = source.record.checksums;
        let key = input.key.clone();
        // A copy's ETag is the MD5 of its bytes, also when the source was a multipart upload.
        let record = self
            .commit(target, tmp, move |meta| Record {
                e_tag: Some(hex::encode(md5)),
                checksums,
                attributes,
                ..Record::bare(key, meta)
            })
            .await?;
        let modified = Timestamp::from(
            UNIX_EPOCH
                + std::time::Duration::from_nanos(u64::try_from(record.modified_ns).unwrap_or(u64::MAX)),
        );
        let sums = record.checksums;
        let result = CopyObjectResult {
            e_tag: record.e_tag.map(ETag::Strong),
            last_modified: Some(modified),
            checksum_crc32: sums.crc32,
            checksum_crc32c: sums.crc32c,
            checksum_sha1: sums.sha1,
            checksum_sha256: sums.sha256,
            checksum_crc64nvme: sums.crc64nvme,
            ..Default::default()
        };
        Ok(S3Response::new(CopyObjectOutput { copy_object_result: Some(result), ..Default::default() }))
    }

    /// S3 answers 204 whether or not the key existed.
    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = &req.input;
        checked_key(&input.key)?;
        let (name, _) = self.bucket_dir(&input.bucket).await?;
        let held = (
            self.locks.shared(Resource::Bucket(input.bucket.clone())).await,
            self.locks.exclusive(Resource::object(&input.bucket, &input.key)).await,
        );
        let path = objects::object_path(&self.root, &name, &input.key);
        blocking(move || {
            let _held = held;
            objects::remove_object(&path)
        })
        .await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        let (name, _) = self.bucket_dir(&input.bucket).await?;
        // "The request can contain a list of up to 1,000 keys" (DeleteObjects API reference).
        if input.delete.objects.len() > 1000 {
            return Err(S3Error::with_message(S3ErrorCode::MalformedXML, MALFORMED_XML));
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        // One key at a time, each under its own lock: no two locks are ever held together.
        for object in input.delete.objects {
            let outcome = match checked_key(&object.key) {
                Err(err) => Err(err),
                Ok(()) => {
                    let held = (
                        self.locks.shared(Resource::Bucket(input.bucket.clone())).await,
                        self.locks.exclusive(Resource::object(&input.bucket, &object.key)).await,
                    );
                    let path = objects::object_path(&self.root, &name, &object.key);
                    blocking(move || {
                        let _held = held;
                        objects::remove_object(&path)
                    })
                    .await
                }
            };
            match outcome {
                Ok(()) if quiet => {}
                Ok(()) => deleted.push(DeletedObject {
                    key: Some(object.key),
                    version_id: object.version_id,
                    ..Default::default()
                }),
                Err(err) => errors.push(Error {
                    code: Some(err.code().as_str().to_owned()),
                    message: err.message().map(str::to_owned),
                    key: Some(object.key),
                    version_id: object.version_id,
                }),
            }
        }
        let output = DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let mut input = req.input;
        checked_key(&input.key)?;
        // Shared with writes, so that a DeleteBucket never runs between the check and the
        // creation (it discards the bucket's uploads).
        let _bucket = self.locks.shared(Resource::Bucket(input.bucket.clone())).await;
        self.bucket_dir(&input.bucket).await?;
        refuse_tagging(input.tagging.as_deref())?;
        let upload = Upload {
            bucket: input.bucket.clone(),
            key: input.key.clone(),
            attributes: attributes_of!(input),
            initiated: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        };
        let upload_id = self.uploads.create(&upload).await?;
        let output = CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload_id),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn upload_part(
        &self,
        mut req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let input = &mut req.input;
        checked_key(&input.key)?;
        self.bucket_dir(&input.bucket).await?;
        let number = checked_part_number(input.part_number)?;
        let (_, folder) = self.uploads.open(&input.upload_id, &input.bucket, &input.key).await?;
        let declared = declared_digests!(input, req);
        let tmp = TempFile::new(self.uploads.part_temp(&folder, number));
        let received = receive(input.body.take(), &tmp, declared).await?;
        let e_tag = hex::encode(received.md5);
        self.store_part(&input.upload_id, folder, number, tmp, e_tag.clone(), received.size).await?;
        let sums = received.checksums;
        let output = UploadPartOutput {
            e_tag: Some(ETag::Strong(e_tag)),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let input = req.input;
        checked_key(&input.key)?;
        let number = checked_part_number(input.part_number)?;
        let (src_bucket, src_key) = copy_source(&input.copy_source)?;
        let source = self.existing(src_bucket, src_key).await?;
        self.bucket_dir(&input.bucket).await?;
        let (_, folder) = self.uploads.open(&input.upload_id, &input.bucket, &input.key).await?;
        check_copy_conditions(
            &source,
            conditions!(
                input,
                copy_source_if_match,
                copy_source_if_none_match,
                copy_source_if_modified_since,
                copy_source_if_unmodified_since
            ),
        )?;
        let (start, len) = copy_source_range(input.copy_source_range.as_deref(), source.meta.len())?;
        let tmp = TempFile::new(self.uploads.part_temp(&folder, number));
        let (from, to) = (source.file, tmp.path().to_owned());
        let md5 = blocking(move || copy_range(from, start, len, &to)).await?;
        let e_tag = hex::encode(md5);
        self.store_part(&input.upload_id, folder, number, tmp, e_tag.clone(), len).await?;
        let result = CopyPartResult {
            e_tag: Some(ETag::Strong(e_tag)),
            last_modified: Some(Timestamp::from(SystemTime::now())),
            ..Default::default()
        };
        Ok(S3Response::new(UploadPartCopyOutput { copy_part_result: Some(result), ..Default::default() }))
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        checked_key(&input.key)?;
        let (_, folder) = self.uploads.open(&input.upload_id, &input.bucket, &input.key).await?;
        let max_parts = input.max_parts.unwrap_or(1000).clamp(0, 1000);
        let marker = input.part_number_marker.unwrap_or(0);
        let after: Vec<StoredPart> =
            self.uploads.parts(&folder).await?.into_iter().filter(|p| p.number > marker).collect();
        let shown = usize::try_from(max_parts).unwrap_or(0).min(after.len());
        let truncated = shown < after.len();
        let parts: Vec<Part> = after[..shown]
            .iter()
            .map(|p| Part {
                part_number: Some(p.number),
                e_tag: Some(ETag::Strong(p.e_tag.clone())),
                size: i64::try_from(p.size).ok(),
                last_modified: Some(Timestamp::from(
                    UNIX_EPOCH + std::time::Duration::from_nanos(u64::try_from(p.modified_ns).unwrap_or(0)),
                )),
                ..Default::default()
            })
            .collect();
        let output = ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            max_parts: Some(max_parts),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: parts.last().and_then(|p| p.part_number).filter(|_| truncated),
            is_truncated: Some(truncated),
            parts: Some(parts),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    /// The parts named must have been uploaded with the ETags given, in ascending order, each
    /// but the last at least 5 MiB (CompleteMultipartUpload API reference: InvalidPart,
    /// InvalidPartOrder, EntityTooSmall). The ETag is the MD5 of the parts' MD5s, a dash and
    /// the number of parts.
    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        checked_key(&input.key)?;
        let (name, _) = self.bucket_dir(&input.bucket).await?;
        // Alone with the upload from here: no part changes, no abort, no second completion.
        let _upload = self.locks.exclusive(Resource::Upload(input.upload_id.clone())).await;
        let (upload, folder) = self.uploads.open(&input.upload_id, &input.bucket, &input.key).await?;
        let uploaded = self.uploads.parts(&folder).await?;
        let named = input.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
        let chosen = chosen_parts(&named, &uploaded)?;
        let mut md5s = Md5::new();
        for part in &chosen {
            md5s.update(hex::decode(&part.e_tag).map_err(S3Error::internal_error)?);
        }
        let e_tag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
        let tmp = TempFile::new(crate::atomic_file::temp_sibling(&objects::object_path(
            &self.root, &name, &input.key,
        )));
        let sources: Vec<(PathBuf, StoredPart)> =
            chosen.iter().map(|p| (Uploads::part_path(&folder, p.number), p.clone())).collect();
        let to = tmp.path().to_owned();
        let joined = tokio::task::spawn_blocking(move || concatenate(&sources, &to));
        joined.await.map_err(S3Error::internal_error)?.map_err(|err| match err.kind() {
            io::ErrorKind::InvalidData => invalid_part(),
            _ => bucket_gone(err),
        })?;
        let target = Target {
            bucket: &input.bucket,
            key: &input.key,
            conditions: WriteConditions { if_none_match: input.if_none_match, if_match: input.if_match },
        };
        let attributes = upload.attributes;
        let tag = e_tag.clone();
        let sizes: Vec<u64> = chosen.iter().map(|p| p.size).collect();
        let key = input.key.clone();
        self.commit(target, tmp, move |meta| Record {
            e_tag: Some(tag),
            attributes,
            parts: sizes,
            ..Record::bare(key, meta)
        })
        .await?;
        Uploads::remove(&folder).await;
        let output = CompleteMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            e_tag: Some(ETag::Strong(e_tag)),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    /// Uploads in progress, by key and initiation, with S3's key and upload-id markers and
    /// delimiter (ListMultipartUploads API reference).
    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        self.bucket_dir(&input.bucket).await?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = input.delimiter.clone().filter(|d| !d.is_empty());
        let max = usize::try_from(input.max_uploads.unwrap_or(1000).clamp(0, 1000)).unwrap_or(0);
        let key_marker = input.key_marker.clone().filter(|m| !m.is_empty());
        let mut uploads = Vec::new();
        let mut prefixes: Vec<String> = Vec::new();
        let mut truncated = false;
        let mut next = None;
        let id_marker = input.upload_id_marker.as_deref().filter(|m| !m.is_empty());
        for (id, upload) in self.uploads.in_progress(&input.bucket, &prefix).await? {
            if let Some(marker) = &key_marker {
                // After the key marker; for the marker's own key, only uploads after the
                // upload-id marker (none without one). Ids are time-ordered, so the place holds
                // even if the marker's upload is gone.
                let behind = upload.key < *marker
                    || (upload.key == *marker && id_marker.is_none_or(|m| id.as_str() <= m));
                if behind {
                    continue;
                }
            }
            let rolled = listing::rolled_up(&upload.key, &prefix, delimiter.as_deref());
            if let Some(common) = &rolled
                && (prefixes.last() == Some(common) || key_marker.as_ref().is_some_and(|m| common <= m))
            {
                // A common prefix is listed once, and not again on the page after it.
                continue;
            }
            if uploads.len() + prefixes.len() == max {
                truncated = max > 0;
                break;
            }
            match rolled {
                Some(common) => {
                    next = Some((common.clone(), None));
                    prefixes.push(common);
                }
                None => {
                    next = Some((upload.key.clone(), Some(id.clone())));
                    uploads.push(MultipartUpload {
                        key: Some(upload.key),
                        upload_id: Some(id),
                        initiated: Some(Timestamp::from(
                            UNIX_EPOCH + std::time::Duration::from_secs(upload.initiated),
                        )),
                        storage_class: Some(upload.attributes.storage_class.map_or_else(
                            || StorageClass::from_static(StorageClass::STANDARD),
                            StorageClass::from,
                        )),
                        ..Default::default()
                    });
                }
            }
        }
        let (next_key, next_id) = next.filter(|_| truncated).unzip();
        let next_id = next_id.flatten();
        let mut output = ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            max_uploads: i32::try_from(max).ok(),
            is_truncated: Some(truncated),
            next_key_marker: next_key,
            next_upload_id_marker: next_id,
            uploads: Some(uploads),
            common_prefixes: (!prefixes.is_empty())
                .then(|| prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(p) }).collect()),
            ..Default::default()
        };
        if list_encoding::wants_url(input.encoding_type.as_ref()) {
            list_encoding::encode_uploads(&mut output);
        }
        Ok(S3Response::new(output))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        checked_key(&input.key)?;
        let _upload = self.locks.exclusive(Resource::Upload(input.upload_id.clone())).await;
        let (_, folder) = self.uploads.open(&input.upload_id, &input.bucket, &input.key).await?;
        Uploads::remove(&folder).await;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }
}

impl LocalStore {
    /// Records a received part and moves it into the folder of upload `upload_id`, holding the
    /// upload's lock shared (in one blocking task, as [`LocalStore::commit`]). The record comes
    /// first, with the part's size and time, so CompleteMultipartUpload can tell a record from
    /// bytes that did not follow it (a crash in between). NoSuchUpload when the upload was
    /// completed or aborted meanwhile.
    async fn store_part(
        &self,
        upload_id: &str,
        folder: PathBuf,
        number: i32,
        tmp: TempFile,
        e_tag: String,
        size: u64,
    ) -> S3Result<()> {
        let held = (
            self.locks.shared(Resource::Upload(upload_id.to_owned())).await,
            // Two uploads of one part number: one record and rename, then the other.
            self.locks.exclusive(Resource::Part(upload_id.to_owned(), number)).await,
        );
        let done = tokio::task::spawn_blocking(move || {
            let _held = held;
            let gone = |err: io::Error| {
                if err.kind() == io::ErrorKind::NotFound {
                    no_such_upload()
                } else {
                    S3Error::internal_error(err)
                }
            };
            std::fs::metadata(folder.join(multipart::UPLOAD_FILE)).map_err(gone)?;
            let meta = std::fs::metadata(tmp.path()).map_err(S3Error::internal_error)?;
            use std::os::unix::fs::MetadataExt as _;
            let modified_ns = objects::modified_ns(&meta);
            let part = StoredPart { number, e_tag, size, modified_ns, inode: meta.ino() };
            Uploads::record_part(&folder, &part).map_err(gone)?;
            tmp.rename_to(&Uploads::part_path(&folder, number)).map_err(gone)
        });
        done.await.map_err(S3Error::internal_error)?
    }
}

fn invalid_part() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InvalidPart,
        "One or more of the specified parts could not be found. The part may not have been uploaded, \
         or the specified entity tag may not have matched the part's entity tag.",
    )
}

/// Part numbers run from 1 to 10,000 (UploadPart API reference).
fn checked_part_number(number: i32) -> S3Result<i32> {
    if (1..=10_000).contains(&number) {
        Ok(number)
    } else {
        Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        ))
    }
}

/// The uploaded parts that CompleteMultipartUpload names, checked against S3's rules.
fn chosen_parts(named: &[CompletedPart], uploaded: &[StoredPart]) -> S3Result<Vec<StoredPart>> {
    if named.is_empty() {
        return Err(S3Error::with_message(S3ErrorCode::MalformedXML, MALFORMED_XML));
    }
    let mut chosen: Vec<StoredPart> = Vec::with_capacity(named.len());
    for given in named {
        let number = given.part_number.ok_or_else(invalid_part)?;
        if chosen.last().is_some_and(|last| last.number >= number) {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidPartOrder,
                "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
            ));
        }
        let part = uploaded.iter().find(|p| p.number == number).ok_or_else(invalid_part)?;
        if given.e_tag.as_ref().is_some_and(|e| e.value() != part.e_tag) {
            return Err(invalid_part());
        }
        chosen.push(part.clone());
    }
    if chosen[..chosen.len() - 1].iter().any(|p| p.size < MIN_PART_BYTES) {
        return Err(S3Error::with_message(
            S3ErrorCode::EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed object size.",
        ));
    }
    Ok(chosen)
}

/// Writes the part files `sources`, one after the other, into a new file at `tmp`.
/// `InvalidData` when a part file is missing or not the one its record describes: its inode,
/// size and time, or failing those (a copied data directory) its MD5.
fn concatenate(sources: &[(PathBuf, StoredPart)], tmp: &Path) -> io::Result<()> {
    use std::io::Seek as _;
    use std::os::unix::fs::MetadataExt as _;
    let not_its_record = || io::Error::new(io::ErrorKind::InvalidData, "a part's bytes are not its record's");
    let result = (|| {
        let mut output = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(tmp)?);
        for (path, part) in sources {
            let mut file = std::fs::File::open(path).map_err(|err| match err.kind() {
                io::ErrorKind::NotFound => not_its_record(),
                _ => err,
            })?;
            let meta = file.metadata()?;
            let same_file = meta.ino() == part.inode && objects::modified_ns(&meta) == part.modified_ns;
            if meta.len() != part.size || (!same_file && objects::md5_of(&mut file)? != part.e_tag) {
                return Err(not_its_record());
            }
            file.rewind()?;
            io::copy(&mut file, &mut output)?;
        }
        io::Write::flush(&mut output)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

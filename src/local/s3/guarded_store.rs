//! The S3 operations the local store serves: s3s-fs, with the checks it lacks put in front.
//!
//! s3s-fs 0.14.1 (read for this) is a good enough S3 for the AWS clients, but (1) resolves
//! keys with `..` out of their bucket, (2) creates a missing bucket on a write, (3) checks
//! `If-None-Match`/`If-Match` without excluding concurrent writers, and (4) stores a body whose
//! Content-MD5 does not match before answering BadDigest. Each operation here validates,
//! serialises or wraps, then delegates; operations not listed answer NotImplemented.

use std::path::PathBuf;

use s3s::dto::*;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use s3s_fs::FileSystem;

use super::bucket_name::BucketName;
use super::key_locks::KeyLocks;
use super::list_encoding;
use super::messages::{self, with_standard_message};
use super::object_key::check_object_key;
use super::uploads::UploadBindings;
use super::verified_body::{self, DeclaredDigests, Verdict};

pub(super) struct GuardedStore {
    fs: FileSystem,
    /// The directory s3s-fs serves, canonical, so `root/<bucket>` is that bucket's folder.
    root: PathBuf,
    writes: KeyLocks,
    uploads: UploadBindings,
}

impl GuardedStore {
    pub(super) fn new(fs: FileSystem, root: PathBuf) -> Self {
        let uploads = UploadBindings::new(root.clone());
        Self { fs, root, writes: KeyLocks::default(), uploads }
    }

    async fn bucket_exists(&self, bucket: &str) -> S3Result<bool> {
        match tokio::fs::metadata(checked_bucket(bucket)?.dir(&self.root)).await {
            Ok(meta) => Ok(meta.is_dir()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(S3Error::internal_error(err)),
        }
    }

    /// Writes must find their bucket: s3s-fs would create the folder, and with it the bucket.
    async fn require_bucket(&self, bucket: &str) -> S3Result<()> {
        if self.bucket_exists(bucket).await? { Ok(()) } else { Err(no_such_bucket(bucket)) }
    }

    /// s3s-fs answers NoSuchKey for reads in a missing bucket; S3 names the bucket.
    async fn name_missing_bucket(&self, bucket: &str, err: S3Error) -> S3Error {
        if *err.code() == S3ErrorCode::NoSuchKey && matches!(self.bucket_exists(bucket).await, Ok(false)) {
            no_such_bucket(bucket)
        } else {
            err
        }
    }

    /// Validates an `x-amz-copy-source` and requires its bucket.
    async fn require_copy_source(&self, source: &CopySource) -> S3Result<()> {
        match source {
            CopySource::Bucket { bucket, key, .. } => {
                check_object_key(key)?;
                self.require_bucket(bucket).await
            }
            CopySource::AccessPoint { .. } | CopySource::Outpost { .. } => Err(S3Error::with_message(
                S3ErrorCode::NotImplemented,
                "local S3 copies only from bucket/key sources",
            )),
        }
    }
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

fn no_such_bucket(_bucket: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::NoSuchBucket, messages::NO_SUCH_BUCKET)
}

fn checksums(
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

/// Puts the digest check around a request body; `None` when there is no body to check.
fn verify_body(body: &mut Option<StreamingBlob>, declared: DeclaredDigests) -> S3Result<Option<Verdict>> {
    let Some(blob) = body.take() else { return Ok(None) };
    let (checked, verdict) = verified_body::verify(blob, declared)?;
    *body = Some(checked);
    Ok(Some(verdict))
}

fn explain(verdict: Option<&Verdict>, err: S3Error) -> S3Error {
    match verdict {
        Some(verdict) => verdict.explain(err),
        None => err,
    }
}

#[async_trait::async_trait]
impl S3 for GuardedStore {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        checked_bucket(&req.input.bucket)?;
        self.fs.create_bucket(req).await
    }

    /// S3 deletes only empty buckets (DeleteBucket API reference: "All objects ... must be
    /// deleted before the bucket itself can be deleted"), answering 409 BucketNotEmpty.
    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let bucket = checked_bucket(&req.input.bucket)?;
        self.require_bucket(bucket.as_str()).await?;
        let dir = bucket.dir(&self.root);
        let holds_objects = tokio::task::spawn_blocking(move || holds_a_file(&dir))
            .await
            .map_err(S3Error::internal_error)?
            .map_err(S3Error::internal_error)?;
        if holds_objects {
            return Err(S3Error::with_message(S3ErrorCode::BucketNotEmpty, messages::BUCKET_NOT_EMPTY));
        }
        self.fs.delete_bucket(req).await.map_err(with_standard_message)
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        checked_bucket(&req.input.bucket)?;
        self.fs.head_bucket(req).await.map_err(with_standard_message)
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        checked_bucket(&req.input.bucket)?;
        self.fs.get_bucket_location(req).await.map_err(with_standard_message)
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        checked_bucket(&req.input.bucket)?;
        let url = list_encoding::wants_url(req.input.encoding_type.as_ref());
        let mut resp = self.fs.list_objects(req).await.map_err(with_standard_message)?;
        if url {
            list_encoding::encode_v1(&mut resp.output);
        }
        Ok(resp)
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        checked_bucket(&req.input.bucket)?;
        let url = list_encoding::wants_url(req.input.encoding_type.as_ref());
        let mut resp = self.fs.list_objects_v2(req).await.map_err(with_standard_message)?;
        if url {
            list_encoding::encode_v2(&mut resp.output);
        }
        Ok(resp)
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        check_object_key(&req.input.key)?;
        let bucket = req.input.bucket.clone();
        match self.fs.get_object(req).await {
            Ok(resp) => Ok(resp),
            Err(err) => Err(with_standard_message(self.name_missing_bucket(&bucket, err).await)),
        }
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        check_object_key(&req.input.key)?;
        self.fs.head_object(req).await.map_err(with_standard_message)
    }

    async fn put_object(&self, mut req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let input = &mut req.input;
        check_object_key(&input.key)?;
        self.require_bucket(&input.bucket).await?;
        let declared = DeclaredDigests {
            content_md5: input.content_md5.clone(),
            algorithm: input.checksum_algorithm.clone(),
            checksums: checksums(
                &input.checksum_crc32,
                &input.checksum_crc32c,
                &input.checksum_sha1,
                &input.checksum_sha256,
                &input.checksum_crc64nvme,
            ),
            trailers: req.trailing_headers.clone(),
        };
        let verdict = verify_body(&mut input.body, declared)?;
        // s3s-fs evaluates If-None-Match / If-Match and writes; under the key's lock no other
        // writer of this object can come between the two.
        let _write = self.writes.lock(&input.bucket, &input.key).await;
        self.fs.put_object(req).await.map_err(|err| explain(verdict.as_ref(), err))
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = &req.input;
        check_object_key(&input.key)?;
        self.require_copy_source(&input.copy_source).await?;
        self.require_bucket(&input.bucket).await?;
        let _write = self.writes.lock(&input.bucket, &input.key).await;
        self.fs.copy_object(req).await.map_err(with_standard_message)
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = &req.input;
        check_object_key(&input.key)?;
        let _write = self.writes.lock(&input.bucket, &input.key).await;
        self.fs.delete_object(req).await.map_err(with_standard_message)
    }

    async fn delete_objects(
        &self,
        mut req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let bucket = req.input.bucket.clone();
        self.require_bucket(&bucket).await?;
        // Refused keys are reported per key, as S3 reports per-key failures; the rest proceed.
        let mut valid = Vec::new();
        let mut errors = Vec::new();
        for object in std::mem::take(&mut req.input.delete.objects) {
            match check_object_key(&object.key) {
                Ok(()) => valid.push(object),
                Err(err) => errors.push(Error {
                    code: Some(err.code().as_str().to_owned()),
                    message: err.message().map(str::to_owned),
                    key: Some(object.key),
                    version_id: object.version_id,
                }),
            }
        }
        // Locks are taken in key order, the only multi-key locking, so it cannot deadlock.
        let mut keys: Vec<String> = valid.iter().map(|o| o.key.clone()).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut held = Vec::with_capacity(keys.len());
        for key in &keys {
            held.push(self.writes.lock(&bucket, key).await);
        }
        req.input.delete.objects = valid;
        let mut resp = if req.input.delete.objects.is_empty() {
            S3Response::new(DeleteObjectsOutput { deleted: Some(Vec::new()), ..Default::default() })
        } else {
            self.fs.delete_objects(req).await?
        };
        drop(held);
        if !errors.is_empty() {
            resp.output.errors.get_or_insert_with(Vec::new).extend(errors);
        }
        Ok(resp)
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        check_object_key(&req.input.key)?;
        self.require_bucket(&req.input.bucket).await?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let resp = self.fs.create_multipart_upload(req).await?;
        let id = resp.output.upload_id.as_deref().ok_or_else(|| S3Error::internal_error(NoUploadId))?;
        self.uploads.bind(id, &bucket, &key).await?;
        Ok(resp)
    }

    async fn upload_part(
        &self,
        mut req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let input = &mut req.input;
        check_object_key(&input.key)?;
        self.require_bucket(&input.bucket).await?;
        self.uploads.check(&input.upload_id, &input.bucket, &input.key).await?;
        // s3s-fs does not check a part's digests at all; a corrupt part would be stored.
        let declared = DeclaredDigests {
            content_md5: input.content_md5.clone(),
            algorithm: input.checksum_algorithm.clone(),
            checksums: checksums(
                &input.checksum_crc32,
                &input.checksum_crc32c,
                &input.checksum_sha1,
                &input.checksum_sha256,
                &input.checksum_crc64nvme,
            ),
            trailers: req.trailing_headers.clone(),
        };
        let verdict = verify_body(&mut input.body, declared)?;
        self.fs.upload_part(req).await.map_err(|err| explain(verdict.as_ref(), err))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        check_object_key(&req.input.key)?;
        self.require_copy_source(&req.input.copy_source).await?;
        self.require_bucket(&req.input.bucket).await?;
        self.uploads.check(&req.input.upload_id, &req.input.bucket, &req.input.key).await?;
        self.fs.upload_part_copy(req).await.map_err(with_standard_message)
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        check_object_key(&req.input.key)?;
        self.uploads.check(&req.input.upload_id, &req.input.bucket, &req.input.key).await?;
        self.fs.list_parts(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = &req.input;
        check_object_key(&input.key)?;
        self.require_bucket(&input.bucket).await?;
        self.uploads.check(&input.upload_id, &input.bucket, &input.key).await?;
        let _write = self.writes.lock(&input.bucket, &input.key).await;
        let upload_id = input.upload_id.clone();
        let resp = self.fs.complete_multipart_upload(req).await?;
        self.uploads.unbind(&upload_id).await;
        Ok(resp)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        check_object_key(&req.input.key)?;
        self.uploads.check(&req.input.upload_id, &req.input.bucket, &req.input.key).await?;
        let upload_id = req.input.upload_id.clone();
        let resp = self.fs.abort_multipart_upload(req).await?;
        self.uploads.unbind(&upload_id).await;
        Ok(resp)
    }
}

/// Whether any file lies under `dir`: objects are files (s3s-fs keeps its own bookkeeping in the
/// store's root, never inside a bucket), while folders alone are what deleted keys leave behind.
fn holds_a_file(dir: &std::path::Path) -> std::io::Result<bool> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if !kind.is_dir() || holds_a_file(&entry.path())? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// s3s-fs answered CreateMultipartUpload without an upload id.
#[derive(Debug)]
struct NoUploadId;

impl std::fmt::Display for NoUploadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the store created a multipart upload without an id")
    }
}

impl std::error::Error for NoUploadId {}

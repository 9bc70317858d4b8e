//! Which bucket and key each multipart upload belongs to. s3s-fs keeps one global table of
//! upload ids, so an UploadPart or CompleteMultipartUpload naming another object's upload id
//! would write into (or complete) that other upload. S3 binds an upload id to its bucket and
//! key and answers NoSuchUpload for any other pair (UploadPart API reference: "NoSuchUpload: The
//! specified multipart upload does not exist").
//!
//! A binding is a small JSON file `<root>/.recflow-upload-<id>.json`, beside s3s-fs's own
//! `.upload-<id>.json`, so it lasts as long as the upload does, across restarts.

use std::path::PathBuf;

use s3s::{S3Error, S3ErrorCode, S3Result};
use serde::{Deserialize, Serialize};

use super::messages::NO_SUCH_UPLOAD;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Binding {
    bucket: String,
    key: String,
}

#[derive(Debug)]
pub(super) struct UploadBindings {
    root: PathBuf,
}

impl UploadBindings {
    /// Bindings kept under `root`, the store's canonical root.
    pub(super) fn new(root: PathBuf) -> Self {
        UploadBindings { root }
    }

    /// The binding's file; None for an id that is not a UUID (s3s-fs makes only UUIDs), so no
    /// other text ever becomes part of a path.
    fn path(&self, upload_id: &str) -> Option<PathBuf> {
        let id = uuid::Uuid::parse_str(upload_id).ok()?;
        Some(self.root.join(format!(".recflow-upload-{}.json", id.hyphenated())))
    }

    /// Records that `upload_id` uploads `bucket`/`key`.
    pub(super) async fn bind(&self, upload_id: &str, bucket: &str, key: &str) -> S3Result<()> {
        let path = self.path(upload_id).ok_or_else(no_such_upload)?;
        let binding = Binding { bucket: bucket.to_owned(), key: key.to_owned() };
        let text = serde_json::to_vec(&binding).map_err(S3Error::internal_error)?;
        tokio::fs::write(&path, text).await.map_err(S3Error::internal_error)
    }

    /// Ok when `upload_id` exists and uploads `bucket`/`key`; NoSuchUpload otherwise.
    pub(super) async fn check(&self, upload_id: &str, bucket: &str, key: &str) -> S3Result<()> {
        let path = self.path(upload_id).ok_or_else(no_such_upload)?;
        let text = match tokio::fs::read(&path).await {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(no_such_upload()),
            Err(err) => return Err(S3Error::internal_error(err)),
        };
        let binding: Binding = serde_json::from_slice(&text).map_err(S3Error::internal_error)?;
        if binding == (Binding { bucket: bucket.to_owned(), key: key.to_owned() }) {
            Ok(())
        } else {
            Err(no_such_upload())
        }
    }

    /// Forgets a completed or aborted upload.
    pub(super) async fn unbind(&self, upload_id: &str) {
        if let Some(path) = self.path(upload_id)
            && let Err(err) = tokio::fs::remove_file(&path).await
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %err, path = %path.display(), "cannot remove an upload's binding");
        }
    }
}

fn no_such_upload() -> S3Error {
    S3Error::with_message(S3ErrorCode::NoSuchUpload, NO_SUCH_UPLOAD)
}

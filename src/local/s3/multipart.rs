//! Multipart uploads in progress, each a folder `<root>/.uploads/<upload id>/` holding
//! `upload.json` (the bucket, key and attributes given to CreateMultipartUpload) and its parts
//! (`<n>.part` with `<n>.json` holding the part's ETag and size), so an upload survives a
//! restart. A part is received into a temporary file beside the folders, not in its upload's,
//! so that removing an upload never races with a part still arriving.
//!
//! An upload id belongs to one bucket and key: any other pair is answered NoSuchUpload, as S3
//! does (UploadPart API reference: "NoSuchUpload: The specified multipart upload does not
//! exist").

use std::path::{Path, PathBuf};

use s3s::{S3Error, S3ErrorCode, S3Result};
use serde::{Deserialize, Serialize};

use super::messages::NO_SUCH_UPLOAD;
use super::objects::Attributes;

/// What CreateMultipartUpload was given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Upload {
    pub bucket: String,
    pub key: String,
    #[serde(default)]
    pub attributes: Attributes,
    /// Seconds since the Unix epoch.
    pub initiated: u64,
}

/// One uploaded part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Part {
    pub number: i32,
    /// MD5 in hex.
    pub e_tag: String,
    pub size: u64,
    /// Nanoseconds since the Unix epoch.
    pub modified_ns: u128,
    /// The inode of its file: with size and time, what tells the bytes this record was written
    /// for (0 in records of earlier versions).
    #[serde(default)]
    pub inode: u64,
}

#[derive(Debug)]
pub(super) struct Uploads {
    dir: PathBuf,
}

impl Uploads {
    /// Uploads kept under `<s3_root>/.uploads`.
    pub(super) fn new(s3_root: &Path) -> Self {
        Uploads { dir: s3_root.join(".uploads") }
    }

    /// The upload's folder; None for an id other than a UUID written as the store writes them
    /// (hyphenated, lower case), so no other text ever becomes part of a path, and one upload has
    /// one id (its lock is taken by id).
    fn folder(&self, upload_id: &str) -> Option<PathBuf> {
        let id = uuid::Uuid::parse_str(upload_id).ok()?.hyphenated().to_string();
        (id == upload_id).then(|| self.dir.join(id))
    }

    /// Starts an upload; returns its id.
    pub(super) async fn create(&self, upload: &Upload) -> S3Result<String> {
        // Time-ordered ids (UUIDv7): listing uploads by key then id lists them by initiation,
        // and an upload-id marker keeps its place even when that upload is gone.
        let id = uuid::Uuid::now_v7().hyphenated().to_string();
        let folder = self.dir.join(&id);
        tokio::fs::create_dir_all(&folder).await.map_err(S3Error::internal_error)?;
        let text = serde_json::to_vec(upload).map_err(S3Error::internal_error)?;
        let path = folder.join(UPLOAD_FILE);
        // Atomic: an upload.json cut short by a crash would leave an upload nobody can open.
        let write = tokio::task::spawn_blocking(move || {
            crate::atomic_file::write_atomic(&path, &text, crate::atomic_file::Durability::NoFsync)
        });
        write.await.map_err(S3Error::internal_error)?.map_err(S3Error::internal_error)?;
        Ok(id)
    }

    /// The upload `upload_id` of `bucket`/`key`, with its folder; NoSuchUpload otherwise.
    pub(super) async fn open(&self, upload_id: &str, bucket: &str, key: &str) -> S3Result<(Upload, PathBuf)> {
        let folder = self.folder(upload_id).ok_or_else(no_such_upload)?;
        let text = match tokio::fs::read(folder.join(UPLOAD_FILE)).await {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(no_such_upload()),
            Err(err) => return Err(S3Error::internal_error(err)),
        };
        let upload: Upload = serde_json::from_slice(&text).map_err(S3Error::internal_error)?;
        if upload.bucket == bucket && upload.key == key {
            Ok((upload, folder))
        } else {
            Err(no_such_upload())
        }
    }

    /// The uploads in progress in `bucket` whose key starts with `prefix`, as (upload id,
    /// upload), ordered by key, then by id (time-ordered).
    pub(super) async fn in_progress(&self, bucket: &str, prefix: &str) -> S3Result<Vec<(String, Upload)>> {
        let mut found = Vec::new();
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(err) => return Err(S3Error::internal_error(err)),
        };
        while let Some(entry) = entries.next_entry().await.map_err(S3Error::internal_error)? {
            let id = entry.file_name().to_string_lossy().into_owned();
            // An upload being created or removed meanwhile has no readable upload.json.
            let Ok(text) = tokio::fs::read(entry.path().join(UPLOAD_FILE)).await else { continue };
            let Ok(upload) = serde_json::from_slice::<Upload>(&text) else { continue };
            if upload.bucket == bucket && upload.key.starts_with(prefix) {
                found.push((id, upload));
            }
        }
        found.sort_by(|(a_id, a), (b_id, b)| (&a.key, a_id).cmp(&(&b.key, b_id)));
        Ok(found)
    }

    /// The parts uploaded so far, by part number.
    pub(super) async fn parts(&self, folder: &Path) -> S3Result<Vec<Part>> {
        let mut parts = Vec::new();
        let mut entries = tokio::fs::read_dir(folder).await.map_err(S3Error::internal_error)?;
        while let Some(entry) = entries.next_entry().await.map_err(S3Error::internal_error)? {
            let name = entry.file_name();
            let Some(number) = name.to_str().and_then(|n| n.strip_suffix(".json")) else { continue };
            if number.parse::<i32>().is_err() {
                continue;
            }
            let text = tokio::fs::read(entry.path()).await.map_err(S3Error::internal_error)?;
            parts.push(serde_json::from_slice::<Part>(&text).map_err(S3Error::internal_error)?);
        }
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }

    /// Where part `number`'s bytes go.
    pub(super) fn part_path(folder: &Path, number: i32) -> PathBuf {
        folder.join(format!("{number}.part"))
    }

    /// A new temporary file for part `number` of the upload in `folder`, outside that folder.
    pub(super) fn part_temp(&self, folder: &Path, number: i32) -> PathBuf {
        let id = folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        crate::atomic_file::temp_sibling(&self.dir.join(format!("{id}.{number}.part")))
    }

    /// Records part `part` of the upload in `folder`, before its bytes move to
    /// [`Uploads::part_path`]. `NotFound` when the folder is gone.
    pub(super) fn record_part(folder: &Path, part: &Part) -> std::io::Result<()> {
        let text = serde_json::to_vec(part).map_err(std::io::Error::other)?;
        let path = folder.join(format!("{}.json", part.number));
        crate::atomic_file::write_atomic(&path, &text, crate::atomic_file::Durability::NoFsync)
    }

    /// Forgets a completed or aborted upload and its parts: its upload.json first, so that it
    /// cannot be opened any more even if removing the rest fails (the start sweeps such folders).
    pub(super) async fn remove(folder: &Path) {
        let removed = match tokio::fs::remove_file(folder.join(UPLOAD_FILE)).await {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => tokio::fs::remove_dir_all(folder).await,
        };
        if let Err(err) = removed
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %err, path = %folder.display(), "cannot remove a finished upload");
        }
    }

    /// [`Uploads::remove`] by id, whatever its bucket and key.
    pub(super) async fn discard(&self, upload_id: &str) {
        if let Some(folder) = self.folder(upload_id) {
            Uploads::remove(&folder).await;
        }
    }
}

/// The file of an upload's folder that makes it an upload.
pub(super) const UPLOAD_FILE: &str = "upload.json";

pub(super) fn no_such_upload() -> S3Error {
    S3Error::with_message(S3ErrorCode::NoSuchUpload, NO_SUCH_UPLOAD)
}

//! The local S3's files: where each object's bytes and record live, and the calls that the
//! S3 server and the emulator's own readers and writers (Personalize imports and batch jobs,
//! `local seed`, the demo) share, so they all see one store.
//!
//! Layout under the S3 root (`<data_dir>/s3`):
//! - `<bucket>/` — a bucket is a folder named by a checked [`BucketName`];
//! - `<bucket>/<name>` — an object's bytes, `<name>` from [`object_names::file_name`];
//! - `<bucket>/.records/<name>.json` — its [`Record`]: the key, the ETag and checksums, and the
//!   attributes given when it was written (Content-Type, user metadata, ...);
//! - `.uploads/<upload id>/` — multipart uploads in progress (see `multipart`).
//!
//! A record describes the bytes it was written with: it holds their size, modification time
//! and inode. Writers write the record first, from the complete temporary file (a rename keeps
//! all three), then rename the bytes into place, so a crash between the two leaves a record
//! that matches no object, never an object whose record describes other bytes. A record that
//! does not match its object is trusted only when the bytes give its ETag again (a data
//! directory copied or restored: new inodes, same bytes); otherwise it keeps only its key and
//! the ETag is computed from the bytes rather than served stale. An object without a record (a
//! file copied into the bucket's folder) is an object all the same, with its ETag computed on
//! first use.
//!
//! Data directories written by recflow before this layout held objects as nested folders
//! (`<bucket>/a/b.csv`); `migration` moves them into place before the store is first used
//! (the server's start, or [`super::write_object_with`] for the emulator's own writers).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize};

use super::bucket_name::BucketName;
use super::object_names::{self, Decoded};
use crate::atomic_file::{self, Durability};

/// The longest key S3 accepts, in UTF-8 bytes (S3 user guide, "Naming Amazon S3 objects").
pub const MAX_KEY_BYTES: usize = 1024;

const RECORDS_DIR: &str = ".records";

/// Attributes given when an object is written and returned when it is read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// The `Expires` header as S3 returns it (RFC 7231 date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website_redirect_location: Option<String>,
    /// `x-amz-meta-*` values, by name without the prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_metadata: Option<HashMap<String, String>>,
    /// The storage class given, None for STANDARD (which S3 does not name in its headers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// The server-side encryption asked for (`AES256`, `aws:kms`, ...); None for S3's default,
    /// SSE-S3 (`AES256`), which S3 applies to every object since January 2023.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_encryption: Option<String>,
}

/// The checksums stored with an object, base64 as S3 sends them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checksums {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc64nvme: Option<String>,
}

/// What the store knows of an object beyond its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    /// Size of the bytes this record describes.
    pub size: u64,
    /// Their modification time, nanoseconds since the Unix epoch.
    pub modified_ns: u128,
    /// The inode of their file: every write renames a new file into place, so a record written
    /// for other bytes of the same size and time still does not match.
    #[serde(default)]
    pub inode: u64,
    /// The ETag without quotes: the MD5 in hex, or `<md5 of part md5s>-<parts>` for a
    /// multipart upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
    #[serde(default)]
    pub checksums: Checksums,
    #[serde(default)]
    pub attributes: Attributes,
    /// The sizes of the parts of a multipart upload, in order; empty for a single upload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<u64>,
}

/// One object as a listing sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    pub key: String,
    /// The file holding its bytes.
    pub path: PathBuf,
    pub size: u64,
    pub last_modified: SystemTime,
}

impl StoredObject {
    /// The key's last `/`-separated segment, as Personalize names a file of a prefix.
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
}

/// Why a key cannot be stored: S3's own limits, nothing stricter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKey {
    #[error("the key is empty")]
    Empty,
    #[error("the key is {0} bytes long; S3 keys are at most {MAX_KEY_BYTES} bytes")]
    TooLong(usize),
}

/// Checks `key` against S3's limits: 1 to 1,024 bytes of UTF-8.
pub fn check_key(key: &str) -> Result<(), InvalidKey> {
    match key.len() {
        0 => Err(InvalidKey::Empty),
        n if n > MAX_KEY_BYTES => Err(InvalidKey::TooLong(n)),
        _ => Ok(()),
    }
}

/// The file holding the bytes of `bucket`/`key`.
pub fn object_path(s3_root: &Path, bucket: &BucketName, key: &str) -> PathBuf {
    bucket.dir(s3_root).join(object_names::file_name(key))
}

/// The record of the object stored at `path`.
pub(super) fn record_path(object_path: &Path) -> PathBuf {
    let name = object_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let bucket_dir = object_path.parent().unwrap_or(Path::new("."));
    bucket_dir.join(RECORDS_DIR).join(format!("{name}.json"))
}

/// Whether `record` describes the bytes whose metadata is `meta`.
fn describes(record: &Record, meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    record.size == meta.len() && record.modified_ns == modified_ns(meta) && record.inode == meta.ino()
}

/// Nanoseconds since the epoch of `meta`'s modification time (0 when the platform has none).
pub(super) fn modified_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos())
}

/// The record of the object at `path`, when there is one that describes its current bytes
/// (`meta`); a record that no longer does keeps only its key.
pub(super) fn read_record(path: &Path, meta: &std::fs::Metadata) -> io::Result<Option<Record>> {
    Ok(match stored_record(path)? {
        Some(record) if describes(&record, meta) => Some(record),
        Some(record) => Some(Record::bare(record.key, meta)),
        None => None,
    })
}

/// The record stored for the object at `path`, whatever bytes it describes; None when there is
/// none or it cannot be read as one.
fn stored_record(path: &Path) -> io::Result<Option<Record>> {
    let text = match std::fs::read(record_path(path)) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    Ok(serde_json::from_slice::<Record>(&text).ok())
}

impl Record {
    /// A record of `key` for the bytes `meta` describes, with nothing known of them yet.
    pub(super) fn bare(key: String, meta: &std::fs::Metadata) -> Record {
        use std::os::unix::fs::MetadataExt as _;
        Record {
            key,
            size: meta.len(),
            modified_ns: modified_ns(meta),
            inode: meta.ino(),
            e_tag: None,
            checksums: Checksums::default(),
            attributes: Attributes::default(),
            parts: Vec::new(),
        }
    }

    /// The byte range (start, length) of part `number` (1-based), as GetObject's `partNumber`
    /// reads it: an object stored in one piece has one part, itself.
    pub(super) fn part_range(&self, number: i32) -> Option<(u64, u64)> {
        let index = usize::try_from(number).ok()?.checked_sub(1)?;
        if self.parts.is_empty() {
            return (index == 0).then_some((0, self.size));
        }
        let len = *self.parts.get(index)?;
        Some((self.parts[..index].iter().sum(), len))
    }

    /// How many parts a multipart upload made the object of; None for a single upload (S3 sends
    /// `x-amz-mp-parts-count` only for multipart objects).
    pub(super) fn parts_count(&self) -> Option<i32> {
        (!self.parts.is_empty()).then(|| i32::try_from(self.parts.len()).unwrap_or(i32::MAX))
    }
}

/// An object found in the store, its record complete with an ETag, and its file open: the
/// bytes read through `file` are the ones `meta` and `record` describe, even if the object is
/// replaced meanwhile.
#[derive(Debug)]
pub(super) struct Found {
    pub file: File,
    pub meta: std::fs::Metadata,
    pub record: Record,
    /// Whether the stored record already describes these bytes; when not, `record` was
    /// rebuilt from them and [`repair`] can store it, so the bytes are not hashed again.
    pub recorded: bool,
}

/// The object `key` stored at `path` (from [`object_path`]), if there is one.
///
/// A record that does not describe the bytes is kept when the bytes give its ETag again (see
/// the module doc); otherwise the ETag is computed from the bytes. Where no record exists yet,
/// the computed one is added; a stale one is left for [`repair`], which the caller runs under
/// the object's lock, so that it never replaces a record a writer has just put in place.
pub(super) fn find(path: &Path, key: &str) -> io::Result<Option<Found>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    let stored = stored_record(path)?;
    let unrecorded = stored.is_none();
    let (mut record, recorded) = match stored {
        // Only a hashed name can hold another key: two keys with one SHA-256.
        Some(record) if record.key != key => return Ok(None),
        Some(record) if describes(&record, &meta) => (record, true),
        Some(record) if record.size == meta.len() && record.e_tag.is_some() => {
            let again = e_tag_of(&file, &record.parts, meta.len())?;
            let bare = Record::bare(record.key.clone(), &meta);
            if again.is_some() && again == record.e_tag {
                (Record { modified_ns: bare.modified_ns, inode: bare.inode, ..record }, false)
            } else if record.parts.is_empty() {
                // `again` is the bytes' MD5: their ETag as a single upload.
                (Record { e_tag: again, ..bare }, false)
            } else {
                (bare, false)
            }
        }
        Some(record) => (Record::bare(record.key, &meta), false),
        None => (Record::bare(key.to_owned(), &meta), false),
    };
    if record.e_tag.is_none() {
        record.e_tag = Some(md5_of(&mut &file)?);
    }
    if unrecorded {
        add_record(path, &record)?;
    }
    Ok(Some(Found { file, meta, record, recorded: recorded || unrecorded }))
}

/// Stores `found`'s record when it was rebuilt and the object at `path` is still the one found.
/// Call it holding the object's lock: writers write their record before their rename, under
/// that lock, so no record of a write in progress is replaced.
pub(super) fn repair(path: &Path, found: &Found) -> io::Result<()> {
    if found.recorded {
        return Ok(());
    }
    // The rebuilt record names the inode found, so it describes only that very file.
    match std::fs::metadata(path) {
        Ok(now) if describes(&found.record, &now) => write_record(path, &found.record),
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

/// Writes `record` for the object at `path` unless one exists (a hard link of a complete
/// temporary file, which fails rather than replaces).
fn add_record(path: &Path, record: &Record) -> io::Result<()> {
    let target = record_path(path);
    records_dir(&target)?;
    let tmp = atomic_file::temp_sibling(&target);
    let written = serde_json::to_vec(record)
        .map_err(io::Error::other)
        .and_then(|bytes| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::hard_link(&tmp, &target));
    let _ = std::fs::remove_file(&tmp);
    match written {
        Err(err) if err.kind() != io::ErrorKind::AlreadyExists => Err(err),
        _ => Ok(()),
    }
}

/// Creates the `.records` folder of `record`'s bucket if missing, but never the bucket's
/// folder: a bucket deleted meanwhile stays deleted (`NotFound`).
fn records_dir(record: &Path) -> io::Result<()> {
    let Some(dir) = record.parent() else { return Ok(()) };
    match std::fs::create_dir(dir) {
        Err(err) if err.kind() != io::ErrorKind::AlreadyExists => Err(err),
        _ => Ok(()),
    }
}

/// Writes `record` for the object at `path`. `NotFound` when its bucket's folder is gone.
pub(super) fn write_record(path: &Path, record: &Record) -> io::Result<()> {
    let target = record_path(path);
    records_dir(&target)?;
    let bytes = serde_json::to_vec(record).map_err(io::Error::other)?;
    atomic_file::write_atomic(&target, &bytes, Durability::NoFsync)
}

/// Removes the object at `path` and its record; absent ones are not an error.
pub(super) fn remove_object(path: &Path) -> io::Result<()> {
    for file in [path.to_owned(), record_path(path)] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// The MD5 of the file at `path`, in hex.
#[cfg(test)]
fn md5_of_file(path: &Path) -> io::Result<String> {
    md5_of(&mut File::open(path)?)
}

/// The MD5 of what `file` holds from its start, in hex.
pub(super) fn md5_of(mut file: impl Read + std::io::Seek) -> io::Result<String> {
    file.seek(io::SeekFrom::Start(0))?;
    let mut md5 = Md5::new();
    io::copy(&mut file, &mut md5)?;
    Ok(hex::encode(md5.finalize()))
}

/// The ETag S3 gives `file`'s bytes (`size` of them) stored as `parts` (sizes in order; empty
/// for a single upload): their MD5, or the MD5 of the parts' MD5s, a dash and their count. None
/// when the parts do not add up to the size.
fn e_tag_of(mut file: &File, parts: &[u64], size: u64) -> io::Result<Option<String>> {
    use std::io::Seek as _;
    if parts.is_empty() {
        return md5_of(file).map(Some);
    }
    if parts.iter().try_fold(0u64, |sum, &len| sum.checked_add(len)) != Some(size) {
        return Ok(None);
    }
    file.seek(io::SeekFrom::Start(0))?;
    let mut of_parts = Md5::new();
    for &len in parts {
        let mut md5 = Md5::new();
        if io::copy(&mut file.take(len), &mut md5)? != len {
            return Ok(None);
        }
        of_parts.update(md5.finalize());
    }
    Ok(Some(format!("{}-{}", hex::encode(of_parts.finalize()), parts.len())))
}

/// The key of the file named `name` in `bucket_dir`; None for the store's own files and for a
/// hashed name whose record is lost.
fn key_of(bucket_dir: &Path, name: &str, meta: &std::fs::Metadata) -> io::Result<Option<String>> {
    match object_names::decode(name) {
        Decoded::Key(key) => Ok(Some(key)),
        Decoded::NotAnObject => Ok(None),
        Decoded::Hashed => Ok(read_record(&bucket_dir.join(name), meta)?.map(|r| r.key)),
    }
}

/// Every object of `bucket` whose key starts with `prefix`, in S3's listing order (the keys'
/// UTF-8 bytes, ascending).
///
/// # Errors
/// The file system's; a missing bucket folder is `NotFound`.
pub fn list(s3_root: &Path, bucket: &BucketName, prefix: &str) -> io::Result<Vec<StoredObject>> {
    let dir = bucket.dir(s3_root);
    let mut objects = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            // Deleted between the listing and now.
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        if !meta.is_file() {
            continue;
        }
        let Some(key) = key_of(&dir, name, &meta)? else { continue };
        if key.starts_with(prefix) {
            objects.push(StoredObject {
                key,
                path: entry.path(),
                size: meta.len(),
                last_modified: meta.modified().unwrap_or(UNIX_EPOCH),
            });
        }
    }
    objects.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    Ok(objects)
}

/// Whether the bucket's folder holds anything but the store's own files: an object, or a file
/// or folder put there by hand, which deleting the bucket would destroy.
pub(super) fn holds_objects(bucket_dir: &Path) -> io::Result<bool> {
    for entry in std::fs::read_dir(bucket_dir)? {
        let name = entry?.file_name();
        if !name.to_string_lossy().starts_with('.') {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A writer that hashes what passes through it.
struct Md5Writer<'a, W: Write> {
    inner: &'a mut W,
    md5: Md5,
}

impl<W: Write> Write for Md5Writer<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.md5.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Stores what `body` writes as `bucket`/`key`, replacing any object of that key at once
/// (readers see the old bytes or the new), with a record holding its ETag; the bucket's
/// folder is created if missing. The root must have this layout: writers outside the server
/// call [`super::write_object_with`], which sees to that first.
///
/// # Errors
/// [`InvalidKey`] (as `InvalidInput`) or the file system's.
pub(super) fn write_object_with(
    s3_root: &Path,
    bucket: &BucketName,
    key: &str,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    check_key(key).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let path = object_path(s3_root, bucket, key);
    std::fs::create_dir_all(bucket.dir(s3_root))?;
    let md5 = std::cell::Cell::new(None::<[u8; 16]>);
    atomic_file::write_atomic_with_before_rename(
        &path,
        Durability::Fsync,
        |w: &mut BufWriter<File>| {
            let mut hashing = Md5Writer { inner: w, md5: Md5::new() };
            body(&mut hashing)?;
            md5.set(Some(hashing.md5.finalize().into()));
            Ok(())
        },
        // The record first (see the module doc).
        |written| {
            let bare = Record::bare(key.to_owned(), &written.metadata()?);
            write_record(&path, &Record { e_tag: md5.get().map(hex::encode), ..bare })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket() -> BucketName {
        BucketName::parse("bkt").unwrap()
    }

    #[test]
    fn written_objects_list_in_key_order_with_their_etag() {
        let root = tempfile::tempdir().unwrap();
        let long = "k".repeat(1024);
        for key in ["b", "a/b", "a", "a//b", "./x", "dir/", &long] {
            write_object_with(root.path(), &bucket(), key, |w| w.write_all(key.as_bytes())).unwrap();
        }
        let listed: Vec<String> =
            list(root.path(), &bucket(), "").unwrap().into_iter().map(|o| o.key).collect();
        let mut expected = vec!["./x", "a", "a//b", "a/b", "b", "dir/"];
        expected.push(&long);
        assert_eq!(listed, expected.iter().map(|k| k.to_string()).collect::<Vec<_>>());
        let path = object_path(root.path(), &bucket(), "a/b");
        assert_eq!(std::fs::read(&path).unwrap(), b"a/b");
        let record = read_record(&path, &std::fs::metadata(&path).unwrap()).unwrap().unwrap();
        assert_eq!(record.e_tag.as_deref(), Some(md5_of_file(&path).unwrap().as_str()));
        let under_a: Vec<String> =
            list(root.path(), &bucket(), "a/").unwrap().into_iter().map(|o| o.key).collect();
        assert_eq!(under_a, ["a//b", "a/b"]);
    }

    #[test]
    fn a_record_that_no_longer_describes_the_bytes_keeps_only_its_key() {
        let root = tempfile::tempdir().unwrap();
        write_object_with(root.path(), &bucket(), "k", |w| w.write_all(b"old")).unwrap();
        let path = object_path(root.path(), &bucket(), "k");
        std::fs::write(&path, b"replaced by hand").unwrap();
        let record = read_record(&path, &std::fs::metadata(&path).unwrap()).unwrap().unwrap();
        assert_eq!((record.key.as_str(), record.e_tag), ("k", None));
    }

    #[test]
    fn a_record_whose_bytes_never_arrived_leaves_the_object_as_it_was() {
        let root = tempfile::tempdir().unwrap();
        write_object_with(root.path(), &bucket(), "k", |w| w.write_all(b"old")).unwrap();
        let path = object_path(root.path(), &bucket(), "k");
        // A writer that wrote its record, then died before its rename.
        let tmp = path.with_file_name(".k.1.0.tmp");
        std::fs::write(&tmp, b"new").unwrap();
        let mut record = Record::bare("k".into(), &std::fs::metadata(&tmp).unwrap());
        record.e_tag = Some("0".repeat(32));
        record.attributes.content_type = Some("text/new".into());
        write_record(&path, &record).unwrap();
        let found = find(&path, "k").unwrap().unwrap();
        assert_eq!(found.record.e_tag, Some(md5_of_file(&path).unwrap()));
        assert_eq!(found.record.attributes, Attributes::default());
        assert!(!found.recorded, "the rebuilt record is left for repair");
    }

    #[test]
    fn a_multipart_record_over_other_bytes_of_its_size_gives_way_to_their_md5() {
        let root = tempfile::tempdir().unwrap();
        write_object_with(root.path(), &bucket(), "k", |w| w.write_all(b"abcd")).unwrap();
        let path = object_path(root.path(), &bucket(), "k");
        // A completion that wrote its record, then died before its rename.
        let mut record = Record::bare("k".into(), &std::fs::metadata(&path).unwrap());
        record.inode += 1;
        record.e_tag = Some(format!("{}-2", "0".repeat(32)));
        record.parts = vec![2, 2];
        write_record(&path, &record).unwrap();
        let found = find(&path, "k").unwrap().unwrap();
        assert_eq!(found.record.e_tag, Some(md5_of_file(&path).unwrap()));
        assert!(found.record.parts.is_empty(), "a single object has no parts");
    }

    #[test]
    fn keys_are_checked_against_s3s_limits_only() {
        assert_eq!(check_key(""), Err(InvalidKey::Empty));
        assert!(check_key(&"x".repeat(1024)).is_ok());
        assert_eq!(check_key(&"x".repeat(1025)), Err(InvalidKey::TooLong(1025)));
    }
}

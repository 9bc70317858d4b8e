//! Moving a data directory written by recflow's earlier S3 store (s3s-fs) to this layout, once.
//!
//! The earlier store kept an object `a/b.csv` as the file `<bucket>/a/b.csv`, its headers in
//! `<root>/.bucket-<b64 bucket>.object-<b64 key>.metadata.json` and its ETag and checksums in
//! `<root>/.bucket-<b64 bucket>.object-<b64 key>.internal.json` (base64url without padding).
//! A root without the mark `<root>/.layout` is from before this layout (or new): every file
//! of every bucket folder is then an object whose key is its path, and is moved to its name
//! with a record made from those files. The earlier store's own files are removed, including
//! multipart uploads it had in progress (they cannot be resumed). Then the mark is written.
//!
//! Temporary files of writers that died (`.<name>.<pid>.<n>.tmp`, from a process killed
//! mid-write, untouched for 15 minutes) are removed at every start.

use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::bucket_name::BucketName;
use super::object_names;
use super::objects::{self, Attributes, Checksums, Record};
use crate::atomic_file::{self, Durability};

const LAYOUT_MARK: &str = ".layout";
const LAYOUT: &str = "flat-1\n";

/// Brings the S3 root at `s3_root` (created if missing) to this layout; returns how many
/// objects were moved.
///
/// # Errors
/// The file system's; the mark is written only when every object was moved, and a move cut
/// short (a crash, a full disk) is finished by the next call from its journal.
pub(super) fn ensure_layout(s3_root: &Path) -> io::Result<usize> {
    let mark = s3_root.join(LAYOUT_MARK);
    if mark.exists() {
        return Ok(0);
    }
    std::fs::create_dir_all(s3_root)?;
    let mut buckets = Vec::new();
    for entry in std::fs::read_dir(s3_root)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if let Ok(bucket) = BucketName::parse(&name)
            && entry.file_type()?.is_dir()
        {
            buckets.push(bucket);
        }
    }
    // Folders this layout keeps (records, uploads) say the root already has it: written by a
    // recflow of this layout before the mark existed; only the mark is missing then. Unless a
    // move is under way (its own mark), which made those records.
    let under_way = s3_root.join(STAGING_DIR);
    let flat = !under_way.exists()
        && (s3_root.join(".uploads").exists()
            || buckets.iter().any(|b| b.dir(s3_root).join(RECORDS_DIR).exists()));
    let mut moved = 0;
    if !flat {
        atomic_file::write_atomic(&under_way, b"", Durability::Fsync)?;
        for bucket in &buckets {
            moved += migrate_bucket(s3_root, bucket)?;
        }
        remove_earlier_store_files(s3_root)?;
    }
    atomic_file::write_atomic(&mark, LAYOUT.as_bytes(), Durability::Fsync)?;
    match std::fs::remove_file(&under_way) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(moved),
    }
}

const RECORDS_DIR: &str = ".records";
const STAGING_DIR: &str = ".recflow-migrating";

/// One file to move: its key, where it was, and its staging name.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Move {
    key: String,
    from: PathBuf,
    staged: String,
}

fn journal_path(s3_root: &Path, bucket: &BucketName) -> PathBuf {
    bucket.dir(s3_root).join(STAGING_DIR).join("journal.json")
}

/// Moves every file of one bucket folder to the name of its key (its path). The plan is
/// written to a journal first; every file then goes to a staging folder, then to its name, so
/// no object is overwritten by another on its way, and a move cut short is finished from the
/// journal by the next start.
fn migrate_bucket(s3_root: &Path, bucket: &BucketName) -> io::Result<usize> {
    let dir = bucket.dir(s3_root);
    let staging = dir.join(STAGING_DIR);
    let journal = journal_path(s3_root, bucket);
    let moves: Vec<Move> = match std::fs::read(&journal) {
        // Moved already by a start that then stopped before the other buckets: every name is
        // its key's by now.
        Err(err) if err.kind() == io::ErrorKind::NotFound && dir.join(RECORDS_DIR).exists() => {
            return Ok(0);
        }
        Ok(text) => serde_json::from_slice(&text).map_err(io::Error::other)?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let mut files = Vec::new();
            collect(&dir, "", &mut files)?;
            let moves: Vec<Move> = files
                .into_iter()
                .filter(|(key, path)| {
                    let ok = objects::check_key(key).is_ok();
                    if !ok {
                        tracing::warn!(path = %path.display(), "left in place: its path is no S3 key");
                    }
                    ok
                })
                .enumerate()
                .map(|(n, (key, from))| Move { key, from, staged: n.to_string() })
                .collect();
            std::fs::create_dir_all(&staging)?;
            let plan = serde_json::to_vec(&moves).map_err(io::Error::other)?;
            atomic_file::write_atomic(&journal, &plan, Durability::Fsync)?;
            moves
        }
        Err(err) => return Err(err),
    };
    // Each step looks at what is already done, so running it again after a crash is safe. Once
    // every file is staged, a file at an old path can be another's new name: the mark
    // `staged` keeps the first step from running again then.
    let all_staged = staging.join("staged");
    if !all_staged.exists() {
        for step in &moves {
            let staged = staging.join(&step.staged);
            if !staged.exists() && step.from.exists() {
                std::fs::rename(&step.from, &staged)?;
            }
        }
        atomic_file::write_atomic(&all_staged, b"", Durability::Fsync)?;
    }
    for step in &moves {
        let staged = staging.join(&step.staged);
        let target = dir.join(object_names::file_name(&step.key));
        if staged.exists() {
            std::fs::rename(&staged, &target)?;
        }
        if target.exists() && !objects::record_path(&target).exists() {
            let meta = std::fs::metadata(&target)?;
            let record = earlier_record(s3_root, bucket, &step.key, Record::bare(step.key.clone(), &meta));
            objects::write_record(&target, &record)?;
        }
    }
    std::fs::remove_dir_all(&staging)?;
    remove_empty_dirs(&dir)?;
    Ok(moves.len())
}

/// The files under `dir`, each with its path below the bucket folder as a key.
fn collect(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            tracing::warn!(path = %entry.path().display(), "left in place: its name is not UTF-8");
            continue;
        };
        if prefix.is_empty() && name == STAGING_DIR {
            continue;
        }
        let key = format!("{prefix}{name}");
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(&entry.path(), &format!("{key}/"), out)?;
        } else if kind.is_file() {
            out.push((key, entry.path()));
        }
    }
    Ok(())
}

/// `record` completed with what the earlier store kept of `bucket`/`key`: its ETag, checksums
/// and headers (s3s-fs kept no size to check them against).
fn earlier_record(s3_root: &Path, bucket: &BucketName, key: &str, mut record: Record) -> Record {
    let stem =
        format!(".bucket-{}.object-{}", URL_SAFE_NO_PAD.encode(bucket.as_str()), URL_SAFE_NO_PAD.encode(key));
    let read = |suffix: &str| -> Option<serde_json::Value> {
        let text = std::fs::read(s3_root.join(format!("{stem}{suffix}"))).ok()?;
        serde_json::from_slice(&text).ok()
    };
    if let Some(headers) = read(".metadata.json") {
        // The earliest format held the user metadata alone.
        let attributes = serde_json::from_value::<Attributes>(headers.clone()).unwrap_or_default();
        record.attributes = if attributes == Attributes::default() {
            Attributes { user_metadata: serde_json::from_value(headers).ok(), ..Attributes::default() }
        } else {
            attributes
        };
    }
    if let Some(info) = read(".internal.json") {
        let text = |name: &str| info.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        record.e_tag = text("e_tag");
        record.checksums = Checksums {
            crc32: text("checksum_crc32"),
            crc32c: text("checksum_crc32c"),
            sha1: text("checksum_sha1"),
            sha256: text("checksum_sha256"),
            crc64nvme: text("checksum_crc64nvme"),
        };
    }
    record
}

/// Removes the earlier store's files from the root: object metadata, upload ids and parts,
/// upload bindings and temporaries (all dot-files named by that store).
fn remove_earlier_store_files(s3_root: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(s3_root)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        let earlier = [".bucket-", ".upload-", ".upload_id-", ".recflow-upload-", ".tmp."]
            .iter()
            .any(|prefix| name.starts_with(prefix));
        if earlier && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn remove_empty_dirs(bucket_dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(bucket_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if entry.file_type()?.is_dir() && !name.to_string_lossy().starts_with('.') {
            remove_tree_if_empty(&entry.path())?;
        }
    }
    Ok(())
}

fn remove_tree_if_empty(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_tree_if_empty(&entry.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Err(err) if err.kind() != io::ErrorKind::DirectoryNotEmpty => Err(err),
        _ => Ok(()),
    }
}

/// Removes temporary files (`.<name>.<pid>.<n>.tmp`) left in bucket folders, their record
/// folders and the uploads' folders by processes that are gone, and upload folders that lost
/// their `upload.json` (a removal cut short); returns how many files and folders.
pub(super) fn sweep_temporaries(s3_root: &Path) -> io::Result<usize> {
    let mut removed = 0;
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(s3_root)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let path = entry.path();
        if entry.file_name() == ".uploads" {
            for upload in std::fs::read_dir(&path)? {
                let upload = upload?;
                if !upload.file_type()?.is_dir() {
                    continue;
                }
                if upload.path().join(super::multipart::UPLOAD_FILE).exists() {
                    folders.push(upload.path());
                } else if untouched(&upload).unwrap_or(false) {
                    // Tidying only: a folder that cannot go now is tried again at the next start.
                    match std::fs::remove_dir_all(upload.path()) {
                        Ok(()) => removed += 1,
                        Err(err) => {
                            tracing::warn!(error = %err, path = %upload.path().display(), "cannot remove an upload cut short");
                        }
                    }
                }
            }
            folders.push(path);
        } else {
            folders.push(path.join(".records"));
            folders.push(path);
        }
    }
    for folder in folders {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if writer_is_gone(&name.to_string_lossy()) && entry.file_type()?.is_file() && untouched(&entry)? {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// A temporary file is left alone while it was written in the last quarter of an hour: its pid
/// may belong to a writer in another pid namespace (a second container on the same volume).
const QUIET_BEFORE_SWEEP: std::time::Duration = std::time::Duration::from_secs(15 * 60);

fn untouched(entry: &std::fs::DirEntry) -> io::Result<bool> {
    let modified = entry.metadata()?.modified()?;
    Ok(modified.elapsed().is_ok_and(|quiet| quiet >= QUIET_BEFORE_SWEEP))
}

/// Whether `name` is a temporary file of `atomic_file::temp_sibling` whose process has ended.
fn writer_is_gone(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else { return false };
    let mut parts = rest.rsplitn(3, '.');
    let (Some(counter), Some(pid), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(_), Ok(pid)) = (counter.parse::<u64>(), pid.parse::<i32>()) else { return false };
    if pid == std::process::id() as i32 || pid <= 0 {
        return false;
    }
    // Signal 0 checks that the process exists; ESRCH means it does not.
    // SAFETY: kill with signal 0 sends nothing; it only checks the pid.
    let alive =
        unsafe { libc::kill(pid, 0) } == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
    !alive
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(root: &Path) -> Vec<String> {
        let bucket = BucketName::parse("bkt").unwrap();
        objects::list(root, &bucket, "").unwrap().into_iter().map(|o| o.key).collect()
    }

    #[test]
    fn an_earlier_data_directory_keeps_every_object_and_its_headers() {
        let root = tempfile::tempdir().unwrap();
        let bucket = root.path().join("bkt");
        std::fs::create_dir_all(bucket.join("interactions/daily")).unwrap();
        std::fs::write(bucket.join("interactions/daily/x.csv"), b"1").unwrap();
        std::fs::write(bucket.join("100%.csv"), b"2").unwrap();
        std::fs::write(bucket.join(".hidden"), b"3").unwrap();
        // `a%2Fb` was the key `a%2Fb`, not `a/b`; `a/b` is a key of its own.
        std::fs::write(bucket.join("a%2Fb"), b"4").unwrap();
        std::fs::create_dir_all(bucket.join("a")).unwrap();
        std::fs::write(bucket.join("a/b"), b"5").unwrap();
        let stem =
            format!(".bucket-{}.object-{}", URL_SAFE_NO_PAD.encode("bkt"), URL_SAFE_NO_PAD.encode("a/b"));
        std::fs::write(root.path().join(format!("{stem}.metadata.json")), br#"{"content_type":"text/csv"}"#)
            .unwrap();
        std::fs::write(root.path().join(format!("{stem}.internal.json")), br#"{"e_tag":"abc-2"}"#).unwrap();

        assert_eq!(ensure_layout(root.path()).unwrap(), 5);
        assert_eq!(keys(root.path()), [".hidden", "100%.csv", "a%2Fb", "a/b", "interactions/daily/x.csv"]);
        let path = objects::object_path(root.path(), &BucketName::parse("bkt").unwrap(), "a/b");
        let record = objects::find(&path, "a/b").unwrap().unwrap().record;
        assert_eq!(record.e_tag.as_deref(), Some("abc-2"));
        assert_eq!(record.attributes.content_type.as_deref(), Some("text/csv"));
        assert_eq!(std::fs::read(&path).unwrap(), b"5");
        assert!(!root.path().join(format!("{stem}.metadata.json")).exists());
        assert!(!bucket.join("interactions").exists() && !bucket.join("a").exists());

        // Once marked, names are taken as they are.
        assert_eq!(ensure_layout(root.path()).unwrap(), 0);
        assert_eq!(keys(root.path()).len(), 5);
    }

    #[test]
    fn a_move_cut_short_is_finished_by_the_next_start() {
        let root = tempfile::tempdir().unwrap();
        let bucket = root.path().join("bkt");
        std::fs::create_dir_all(bucket.join("a")).unwrap();
        std::fs::write(bucket.join("a/b"), b"nested").unwrap();
        std::fs::write(bucket.join("a%2Fb"), b"literal").unwrap();
        // The first start planned and staged everything, moved one file, then died.
        let name = BucketName::parse("bkt").unwrap();
        let staging = bucket.join(STAGING_DIR);
        std::fs::create_dir_all(&staging).unwrap();
        let moves = vec![
            Move { key: "a%2Fb".into(), from: bucket.join("a%2Fb"), staged: "0".into() },
            Move { key: "a/b".into(), from: bucket.join("a/b"), staged: "1".into() },
        ];
        std::fs::write(journal_path(root.path(), &name), serde_json::to_vec(&moves).unwrap()).unwrap();
        std::fs::rename(bucket.join("a%2Fb"), staging.join("0")).unwrap();
        std::fs::rename(bucket.join("a/b"), staging.join("1")).unwrap();
        std::fs::write(staging.join("staged"), b"").unwrap();
        std::fs::rename(staging.join("1"), bucket.join("a%2Fb")).unwrap();

        assert_eq!(ensure_layout(root.path()).unwrap(), 2);
        assert_eq!(keys(root.path()), ["a%2Fb", "a/b"]);
        let read = |key: &str| std::fs::read(objects::object_path(root.path(), &name, key)).unwrap();
        assert_eq!((read("a%2Fb"), read("a/b")), (b"literal".to_vec(), b"nested".to_vec()));
        assert!(!staging.exists());
    }

    #[test]
    fn a_root_of_this_layout_without_the_mark_is_only_marked() {
        let root = tempfile::tempdir().unwrap();
        let bucket = BucketName::parse("bkt").unwrap();
        crate::local::s3::write_object_with(root.path(), &bucket, "in/x.csv", |w| w.write_all(b"x")).unwrap();
        std::fs::remove_file(root.path().join(LAYOUT_MARK)).unwrap();
        assert_eq!(ensure_layout(root.path()).unwrap(), 0);
        assert_eq!(keys(root.path()), ["in/x.csv"]);
    }

    #[test]
    fn objects_written_before_the_first_start_are_kept_as_written() {
        let root = tempfile::tempdir().unwrap();
        let bucket = BucketName::parse("bkt").unwrap();
        crate::local::s3::write_object_with(root.path(), &bucket, "in/x.csv", |w| w.write_all(b"x")).unwrap();
        assert_eq!(ensure_layout(root.path()).unwrap(), 0);
        assert_eq!(keys(root.path()), ["in/x.csv"]);
    }

    /// The pid of a process that has ended.
    fn ended_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn temporaries_of_ended_processes_are_swept_and_others_kept() {
        let root = tempfile::tempdir().unwrap();
        let bucket = root.path().join("bkt");
        std::fs::create_dir_all(&bucket).unwrap();
        let gone = ended_pid();
        let dead = bucket.join(format!(".k.{gone}.0.tmp"));
        let live = bucket.join(format!(".k.{}.0.tmp", std::process::id()));
        let object = bucket.join("k");
        let fresh = bucket.join(format!(".f.{gone}.1.tmp"));
        for file in [&dead, &live, &object, &fresh] {
            std::fs::write(file, b"x").unwrap();
        }
        let old = std::time::SystemTime::now() - QUIET_BEFORE_SWEEP * 2;
        for file in [&dead, &live, &object] {
            std::fs::File::options().write(true).open(file).unwrap().set_modified(old).unwrap();
        }
        assert_eq!(sweep_temporaries(root.path()).unwrap(), 1);
        assert!(!dead.exists() && live.exists() && object.exists() && fresh.exists());
    }

    #[test]
    fn upload_folders_without_their_upload_file_and_part_temporaries_are_swept() {
        let root = tempfile::tempdir().unwrap();
        let uploads = root.path().join(".uploads");
        let (open, cut_short) = (uploads.join("open"), uploads.join("cut-short"));
        for folder in [&open, &cut_short] {
            std::fs::create_dir_all(folder).unwrap();
            std::fs::write(folder.join("1.part"), b"x").unwrap();
        }
        std::fs::write(open.join(crate::local::s3::multipart::UPLOAD_FILE), b"{}").unwrap();
        let gone = ended_pid();
        let part_temp = uploads.join(format!(".open.1.part.{gone}.0.tmp"));
        std::fs::write(&part_temp, b"x").unwrap();
        let old = std::time::SystemTime::now() - QUIET_BEFORE_SWEEP * 2;
        for path in [&open, &cut_short, &part_temp] {
            std::fs::File::open(path).unwrap().set_modified(old).unwrap();
        }
        assert_eq!(sweep_temporaries(root.path()).unwrap(), 2);
        assert!(open.join("1.part").exists() && !cut_short.exists() && !part_temp.exists());
    }
}

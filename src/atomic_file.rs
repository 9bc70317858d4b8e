//! Replacing a file atomically: write a temporary sibling, then rename it over the target, so a
//! reader (or a process started after a crash) sees the old contents or the new, never a mix.
//! One implementation for the checkpoints, the job durations, the emulator's state, models and
//! batch outputs.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How durable a replacement must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file before the rename and its folder after: survives power loss.
    Fsync,
    /// Leave flushing to the OS: survives a killed process, not a lost machine.
    NoFsync,
}

/// Replaces `path` with `bytes`. Errors are the file system's; the temporary file is removed
/// when anything fails.
pub fn write_atomic(path: &Path, bytes: &[u8], durability: Durability) -> io::Result<()> {
    write_atomic_with(path, durability, |w| w.write_all(bytes))
}

/// Replaces `path` with what `body` writes (through a 1 MiB buffer), for contents streamed
/// rather than held in memory.
pub fn write_atomic_with(
    path: &Path,
    durability: Durability,
    body: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    write_atomic_with_before_rename(path, durability, body, |_| Ok(()))
}

/// [`write_atomic_with`], calling `before_rename` with the complete temporary file before it
/// replaces `path`: its metadata is the replacement's (a rename keeps inode, size and times),
/// so what describes the new contents can be written first. An error there leaves `path` as
/// it was.
pub fn write_atomic_with_before_rename(
    path: &Path,
    durability: Durability,
    body: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
    before_rename: impl FnOnce(&File) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        body(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        if durability == Durability::Fsync {
            file.sync_data()?;
        }
        before_rename(&file)?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        if durability == Durability::Fsync {
            // The rename is durable once the folder's entry is.
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A hidden temporary name beside `path`, unique to this process and call: two processes (or
/// threads) replacing the same file never write into one temporary.
pub fn temp_sibling(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one", Durability::Fsync).unwrap();
        write_atomic(&path, b"two", Durability::NoFsync).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["state.json"]);
    }

    #[test]
    fn a_failed_body_leaves_the_old_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"old", Durability::NoFsync).unwrap();
        let err = write_atomic_with(&path, Durability::NoFsync, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temporaries_differ_per_call() {
        let p = Path::new("/x/checkpoint.json");
        assert_ne!(temp_sibling(p), temp_sibling(p));
    }
}

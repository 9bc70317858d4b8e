//! The file store: one folder per execution under the checkpoint directory.
//!
//! - `checkpoint.json`: the execution as it stands, replaced atomically after every transition
//!   (write a temporary file, fsync it, rename it over, fsync the folder). Its size follows the
//!   current state, not the length of the run.
//! - `history.jsonl`: the history, appended. It is fsynced every 64 events, not per transition:
//!   until then the checkpoint also carries the events not yet synced, and opening an execution
//!   cuts the history back to the checkpoint and re-appends what a crash or power loss cut off.
//! - `definition.json`: the state machine as it was when the execution started.
//! - `lock`: held with flock while a process advances the execution; holds that process's pid.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{CheckpointError, CheckpointStore, FORMAT};
use crate::engine::execution::{Execution, Status};
use crate::engine::history::HistoryEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the checkpoint and its folder on every transition: survives power loss.
    Fsync,
    /// Leave flushing to the OS: survives a killed process, not a lost machine.
    NoFsync,
}

pub struct Loaded {
    pub definition: Value,
    pub execution: Execution,
}

#[derive(Serialize)]
struct DocumentRef<'a> {
    format: u32,
    execution: &'a Execution,
    last_events: &'a [HistoryEvent],
}

#[derive(Deserialize)]
struct Document {
    execution: Execution,
    #[serde(default)]
    last_events: Vec<HistoryEvent>,
}

pub struct FileStore {
    dir: PathBuf,
    durability: Durability,
    _lock: File,
    folder: File,
    history: File,
    /// Events written to the history but not yet fsynced; the checkpoint carries them.
    unsynced: Vec<HistoryEvent>,
    buffer: Vec<u8>,
}

/// The history is fsynced once this many events wait in the checkpoint, which keeps the
/// checkpoint small while costing one extra fsync per dozens of transitions.
const HISTORY_SYNC_EVERY: usize = 64;

const CHECKPOINT: &str = "checkpoint.json";
const CHECKPOINT_TMP: &str = "checkpoint.json.tmp";
const HISTORY: &str = "history.jsonl";
const DEFINITION: &str = "definition.json";
const LOCK: &str = "lock";

impl FileStore {
    /// A store for a new execution `name` under `root`; refuses a name already used.
    pub fn create(root: &Path, name: &str, durability: Durability) -> Result<FileStore, CheckpointError> {
        let dir = root.join(name);
        fs::create_dir_all(&dir).map_err(CheckpointError::io(&dir))?;
        let lock = lock(&dir, name)?;
        if dir.join(CHECKPOINT).exists() {
            return Err(CheckpointError::Exists { name: name.to_string(), dir: root.to_path_buf() });
        }
        let history = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(dir.join(HISTORY))
            .map_err(CheckpointError::io(dir.join(HISTORY)))?;
        if durability == Durability::Fsync {
            // The new execution folder itself must survive a power loss.
            File::open(root).and_then(|f| f.sync_all()).map_err(CheckpointError::io(root))?;
        }
        Self::assemble(dir, durability, lock, history)
    }

    /// Opens an existing execution to advance it: takes the lock, reads and checks the
    /// checkpoint, and brings the history in line with it.
    pub fn open(
        root: &Path,
        name: &str,
        durability: Durability,
    ) -> Result<(FileStore, Loaded), CheckpointError> {
        let dir = root.join(name);
        if !dir.join(CHECKPOINT).exists() {
            return Err(CheckpointError::NotFound { name: name.to_string(), dir: root.to_path_buf() });
        }
        let lock = lock(&dir, name)?;
        let (doc, definition) = read_document(&dir)?;
        let events = repair_history(&dir, &doc)?;
        let mut execution = doc.execution;
        execution.rehydrate(&events);
        let history = OpenOptions::new()
            .append(true)
            .open(dir.join(HISTORY))
            .map_err(CheckpointError::io(dir.join(HISTORY)))?;
        if durability == Durability::Fsync {
            // What the previous process appended but never synced becomes durable now, so this
            // store's checkpoints need only carry their own unsynced events.
            history.sync_data().map_err(CheckpointError::io(dir.join(HISTORY)))?;
        }
        let store = Self::assemble(dir, durability, lock, history)?;
        Ok((store, Loaded { definition, execution }))
    }

    fn assemble(
        dir: PathBuf,
        durability: Durability,
        lock: File,
        history: File,
    ) -> Result<FileStore, CheckpointError> {
        let folder = File::open(&dir).map_err(CheckpointError::io(&dir))?;
        Ok(FileStore {
            dir,
            durability,
            _lock: lock,
            folder,
            history,
            unsynced: Vec::new(),
            buffer: Vec::with_capacity(4096),
        })
    }

    /// Reads an execution without locking it (for `status`), its input and Map states
    /// rehydrated from the history.
    pub fn read(root: &Path, name: &str) -> Result<Loaded, CheckpointError> {
        let dir = root.join(name);
        if !dir.join(CHECKPOINT).exists() {
            return Err(CheckpointError::NotFound { name: name.to_string(), dir: root.to_path_buf() });
        }
        let (doc, definition) = read_document(&dir)?;
        let (events, _) = reconcile(&dir, &doc)?;
        let mut execution = doc.execution;
        execution.rehydrate(&events);
        Ok(Loaded { definition, execution })
    }

    /// Whether a live process holds the execution: `Some(pid)` (pid unknown: `Some(None)`) while
    /// one does, `None` when nobody does. Probes the lock without changing any file.
    pub fn holder(root: &Path, name: &str) -> Result<Option<Option<u32>>, CheckpointError> {
        let path = root.join(name).join(LOCK);
        let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CheckpointError::Io { path, source: e }),
        };
        match file.try_lock() {
            // Free: the probe's lock goes with the file handle.
            Ok(()) => Ok(None),
            Err(std::fs::TryLockError::WouldBlock) => Ok(Some(holder_pid(&mut file))),
            Err(std::fs::TryLockError::Error(e)) => Err(CheckpointError::Io { path, source: e }),
        }
    }

    /// The history as the checkpoint vouches for it, without changing any file.
    pub fn read_history(root: &Path, name: &str) -> Result<Vec<HistoryEvent>, CheckpointError> {
        let dir = root.join(name);
        if !dir.join(CHECKPOINT).exists() {
            return Err(CheckpointError::NotFound { name: name.to_string(), dir: root.to_path_buf() });
        }
        let (doc, _) = read_document(&dir)?;
        let (events, _) = reconcile(&dir, &doc)?;
        Ok(events)
    }

    /// Every execution under `root`, oldest first, each rehydrated from its history. Unreadable
    /// ones are reported, not skipped.
    pub fn list(root: &Path) -> Result<Vec<Result<Execution, CheckpointError>>, CheckpointError> {
        let entries = match fs::read_dir(root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(CheckpointError::Io { path: root.to_path_buf(), source: e }),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(CheckpointError::io(root))?;
            if entry.path().join(CHECKPOINT).exists() {
                let dir = entry.path();
                out.push(read_document(&dir).and_then(|(doc, _)| {
                    let (events, _) = reconcile(&dir, &doc)?;
                    let mut execution = doc.execution;
                    execution.rehydrate(&events);
                    Ok(execution)
                }));
            }
        }
        out.sort_by_key(|r| r.as_ref().map(|e| e.start_time).ok());
        Ok(out)
    }

    fn write_checkpoint(&mut self, exec: &Execution, events: &[HistoryEvent]) -> Result<(), CheckpointError> {
        self.buffer.clear();
        serde_json::to_writer(
            &mut self.buffer,
            &DocumentRef { format: FORMAT, execution: exec, last_events: events },
        )
        .map_err(|e| CheckpointError::Corrupt { path: self.dir.join(CHECKPOINT), reason: e.to_string() })?;
        self.buffer.push(b'\n');
        let tmp = self.dir.join(CHECKPOINT_TMP);
        let mut file = File::create(&tmp).map_err(CheckpointError::io(&tmp))?;
        file.write_all(&self.buffer).map_err(CheckpointError::io(&tmp))?;
        if self.durability == Durability::Fsync {
            file.sync_data().map_err(CheckpointError::io(&tmp))?;
        }
        drop(file);
        let path = self.dir.join(CHECKPOINT);
        fs::rename(&tmp, &path).map_err(CheckpointError::io(&path))?;
        if self.durability == Durability::Fsync {
            self.folder.sync_all().map_err(CheckpointError::io(&self.dir))?;
        }
        Ok(())
    }

    /// Appends the events; in Fsync mode syncs the history when enough events wait (or the
    /// execution ended) and gives the events the checkpoint must still carry.
    fn append_history(&mut self, events: &[HistoryEvent], finished: bool) -> Result<(), CheckpointError> {
        let path = || self.dir.join(HISTORY);
        self.buffer.clear();
        for event in events {
            serde_json::to_writer(&mut self.buffer, event)
                .map_err(|e| CheckpointError::Corrupt { path: path(), reason: e.to_string() })?;
            self.buffer.push(b'\n');
        }
        self.history.write_all(&self.buffer).map_err(CheckpointError::io(path()))?;
        match self.durability {
            Durability::NoFsync => {
                self.unsynced.clear();
                self.unsynced.extend_from_slice(events);
            }
            Durability::Fsync => {
                self.unsynced.extend_from_slice(events);
                if finished || self.unsynced.len() >= HISTORY_SYNC_EVERY {
                    self.history.sync_data().map_err(CheckpointError::io(path()))?;
                    self.unsynced.clear();
                }
            }
        }
        Ok(())
    }
}

impl CheckpointStore for FileStore {
    fn create(
        &mut self,
        definition: &Value,
        exec: &Execution,
        events: &[HistoryEvent],
    ) -> Result<(), CheckpointError> {
        let path = self.dir.join(DEFINITION);
        let text = serde_json::to_vec_pretty(definition).expect("a JSON value serializes");
        let mut file = File::create(&path).map_err(CheckpointError::io(&path))?;
        file.write_all(&text).map_err(CheckpointError::io(&path))?;
        if self.durability == Durability::Fsync {
            file.sync_data().map_err(CheckpointError::io(&path))?;
        }
        self.commit(exec, events)
    }

    fn commit(&mut self, exec: &Execution, events: &[HistoryEvent]) -> Result<(), CheckpointError> {
        // History first: if the process dies between the two writes, opening the execution
        // cuts the history back to the checkpoint.
        self.append_history(events, exec.status != Status::Running)?;
        let unsynced = std::mem::take(&mut self.unsynced);
        let written = self.write_checkpoint(exec, &unsynced);
        self.unsynced = unsynced;
        written
    }
}

fn lock(dir: &Path, name: &str) -> Result<File, CheckpointError> {
    let path = dir.join(LOCK);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(CheckpointError::io(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(CheckpointError::Locked { name: name.to_string(), pid: holder_pid(&mut file) });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(CheckpointError::Io { path, source: e }),
    }
    file.set_len(0).map_err(CheckpointError::io(&path))?;
    write!(file, "{}", std::process::id()).map_err(CheckpointError::io(&path))?;
    Ok(file)
}

/// The pid in a lock file another process holds. The holder writes it just after taking the
/// lock, so a reader may find the file empty or still naming the previous holder: it reads again
/// (for up to half a second) until the pid names a live process.
fn holder_pid(file: &mut File) -> Option<u32> {
    let read = || -> Result<u32, ()> {
        let mut text = String::new();
        let mut handle = &*file;
        std::io::Seek::rewind(&mut handle).map_err(|_| ())?;
        handle.read_to_string(&mut text).map_err(|_| ())?;
        let pid: u32 = text.trim().parse().map_err(|_| ())?;
        // SAFETY: kill with signal 0 only checks that the process exists; it sends nothing.
        let alive = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if alive { Ok(pid) } else { Err(()) }
    };
    let policy = backon::ConstantBuilder::default()
        .with_delay(std::time::Duration::from_millis(10))
        .with_max_times(50);
    backon::BlockingRetryable::retry(read, policy).sleep(std::thread::sleep).call().ok()
}

fn read_document(dir: &Path) -> Result<(Document, Value), CheckpointError> {
    let path = dir.join(CHECKPOINT);
    let text = fs::read(&path).map_err(CheckpointError::io(&path))?;
    let raw: Value = serde_json::from_slice(&text)
        .map_err(|e| CheckpointError::Corrupt { path: path.clone(), reason: format!("not JSON: {e}") })?;
    match raw.get("format") {
        Some(Value::Number(n)) if n.as_u64().is_some_and(|f| super::READS.contains(&f)) => {}
        Some(other) => return Err(CheckpointError::UnknownFormat { path, found: other.to_string() }),
        None => return Err(CheckpointError::Corrupt { path, reason: "no \"format\" field".into() }),
    }
    let doc: Document = serde_json::from_value(raw)
        .map_err(|e| CheckpointError::Corrupt { path: path.clone(), reason: e.to_string() })?;
    let def_path = dir.join(DEFINITION);
    let def_text = fs::read(&def_path).map_err(CheckpointError::io(&def_path))?;
    let definition = serde_json::from_slice(&def_text)
        .map_err(|e| CheckpointError::Corrupt { path: def_path, reason: format!("not JSON: {e}") })?;
    Ok((doc, definition))
}

/// The history the checkpoint vouches for: events up to its last id, with the events it carries
/// restored if the history file lost them. A torn last line and events past the checkpoint are
/// what a crash leaves and are cut; anything else unreadable is corruption, refused untouched.
/// The flag tells whether the file differs from the result.
fn reconcile(dir: &Path, doc: &Document) -> Result<(Vec<HistoryEvent>, bool), CheckpointError> {
    let path = dir.join(HISTORY);
    let last = doc.execution.last_event_id;
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(CheckpointError::Io { path, source: e }),
    };
    let lines: Vec<&str> = text.lines().collect();
    let torn_tail = !text.is_empty() && !text.ends_with('\n');
    let mut events: Vec<HistoryEvent> = Vec::new();
    let mut changed = torn_tail;
    for (n, line) in lines.iter().enumerate() {
        let is_last = n + 1 == lines.len();
        match serde_json::from_str::<HistoryEvent>(line) {
            Ok(e) if e.id > last => {
                changed = true;
                break;
            }
            Ok(e) if events.last().is_some_and(|p| e.id <= p.id) => {
                return Err(CheckpointError::Corrupt {
                    path,
                    reason: format!(
                        "line {}: event {} comes after event {}",
                        n + 1,
                        e.id,
                        events[events.len() - 1].id
                    ),
                });
            }
            Ok(e) => events.push(e),
            Err(_) if is_last && torn_tail => break,
            Err(e) => return Err(CheckpointError::Corrupt { path, reason: format!("line {}: {e}", n + 1) }),
        }
    }
    for event in &doc.last_events {
        if event.id > events.last().map_or(0, |e| e.id) {
            events.push(event.clone());
            changed = true;
        }
    }
    let contiguous = events.iter().enumerate().all(|(i, e)| e.id == i as u64 + 1);
    if !contiguous {
        tracing::warn!(path = %path.display(), "history has gaps (events lost to a power loss without fsync)");
    }
    Ok((events, changed))
}

/// Brings the history file in line with the checkpoint and gives its events.
fn repair_history(dir: &Path, doc: &Document) -> Result<Vec<HistoryEvent>, CheckpointError> {
    let (events, changed) = reconcile(dir, doc)?;
    if changed {
        let path = dir.join(HISTORY);
        let tmp = dir.join("history.jsonl.tmp");
        let mut buf = Vec::new();
        for e in &events {
            serde_json::to_writer(&mut buf, e).expect("events serialize");
            buf.push(b'\n');
        }
        let mut file = File::create(&tmp).map_err(CheckpointError::io(&tmp))?;
        file.write_all(&buf).map_err(CheckpointError::io(&tmp))?;
        file.sync_data().map_err(CheckpointError::io(&tmp))?;
        fs::rename(&tmp, &path).map_err(CheckpointError::io(&path))?;
        File::open(dir).and_then(|f| f.sync_all()).map_err(CheckpointError::io(dir))?;
    }
    Ok(events)
}

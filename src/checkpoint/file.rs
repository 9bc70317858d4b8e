//! The file store: one folder per execution under the checkpoint directory.
//!
//! - `checkpoint.json`: `{"format": 3, "version": N, "execution": {...}, "last_events": [...],
//!   "synced": true, "definition_sha256": "..."}`,
//!   the execution as it stands, replaced atomically after every transition (`write_atomic`:
//!   a temporary file, fsync, rename, fsync of the folder). Its size follows the running frames,
//!   not the length of the run; `version` counts commits and is what a commit's precondition is
//!   checked against.
//! - `history.jsonl`: the history, appended. It is fsynced every 64 events, not per transition:
//!   until then the checkpoint also carries the events not yet synced, and opening an execution
//!   cuts the history back to the checkpoint and re-appends what a crash or power loss cut off.
//!   `synced` says the history was fsynced up to the carried events, so a gap in it is damage,
//!   not a power loss; `definition_sha256` pins `definition.json`. Both are checked when an
//!   execution is opened to advance it, and a mismatch is refused with every file untouched.
//! - `definition.json`: the state machine as it was when the execution started.
//! - `lock`: the pid of the process that advances the execution. The lock itself is a flock on
//!   the execution's folder, which cannot be swapped under its holder the way a file can
//!   (deleting `lock` while a process runs must not let a second one in).
//!
//! With group commit ([`FileStore::with_group_commit`], as `recflow daemon` uses it) a commit
//! goes to the folder's shared log instead ([`super::commit_log`]), which one flush makes
//! durable for many executions at once, and the files above are brought up to date from it.
//!
//! File work runs on tokio's blocking pool, never on a runtime thread.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::Value;

use super::commit_log::{self, CommitLog};
use super::{CheckpointError, FORMAT};
use crate::atomic_file::{Durability, write_atomic};
use crate::engine::execution::{Execution, Status};
use crate::engine::history::HistoryEvent;
use crate::engine::store::{ExecutionStore, Precondition, Stored, Version};

#[derive(Deserialize)]
struct Document {
    execution: Execution,
    #[serde(default)]
    last_events: Vec<HistoryEvent>,
    /// Commits so far (absent in format 1: 0).
    #[serde(default)]
    version: u64,
    /// Whether the history was fsynced up to `last_events` (absent before: not known).
    #[serde(default)]
    synced: bool,
    /// SHA-256 of `definition.json` as hex (absent before: not checked).
    #[serde(default)]
    definition_sha256: Option<String>,
}

/// Executions in folders under one checkpoint directory. An execution this store has created or
/// loaded is held (flock) until the store is dropped.
pub struct FileStore {
    root: PathBuf,
    durability: Durability,
    /// With group commit, the log that makes every commit durable ([`CommitLog`]). Declared
    /// before `held`: dropped first, its last write-back happens while the locks are held.
    log: Option<Arc<CommitLog>>,
    held: Mutex<HashMap<String, Arc<Mutex<Held>>>>,
}

/// A commit left to the log (group commit): the execution, its new version, its checkpoint
/// document and its new history lines.
struct Deferred {
    name: String,
    version: u64,
    document: Vec<u8>,
    events: Vec<u8>,
    /// A new execution's definition, written without fsync.
    definition: Option<Vec<u8>>,
}

/// An execution this process advances: its lock, its history file, and what the checkpoint must
/// carry until the history is synced.
struct Held {
    dir: PathBuf,
    durability: Durability,
    /// Group commit: the commit goes to the log, which writes the files back later.
    deferred: bool,
    _lock: File,
    /// Events written to the history but not yet fsynced; the checkpoint carries them.
    unsynced: Vec<HistoryEvent>,
    version: u64,
    definition_sha256: String,
}

/// The history is fsynced once this many events wait in the checkpoint, which keeps the
/// checkpoint small while costing one extra fsync per dozens of transitions.
const HISTORY_SYNC_EVERY: usize = 64;

const CHECKPOINT: &str = "checkpoint.json";
const HISTORY: &str = "history.jsonl";
const DEFINITION: &str = "definition.json";
const LOCK: &str = "lock";

impl FileStore {
    /// A store over `root` (created on the first commit).
    pub fn new(root: impl Into<PathBuf>, durability: Durability) -> FileStore {
        FileStore { root: root.into(), durability, log: None, held: Mutex::new(HashMap::new()) }
    }

    /// Makes this store's commits durable together through a shared log ([`CommitLog`]): with
    /// many executions committing at once, one flush serves them all. Recovers the log an
    /// unclean stop left first (each execution's files brought up to date from it), so call it
    /// before reading anything. Only with [`Durability::Fsync`] (without it there is nothing to
    /// share). Errors: the folder, the log or an execution's files cannot be read or written.
    ///
    /// Another process holding the folder's log (a running daemon) is an error; a plain store
    /// over the folder ([`FileStore::opened`]) reads the files instead.
    pub fn with_group_commit(mut self) -> Result<FileStore, CheckpointError> {
        if self.durability == Durability::Fsync {
            let (log, recovered) =
                CommitLog::open(&self.root).map_err(CheckpointError::io(self.root.join(commit_log::LOG)))?;
            if !recovered.is_empty() {
                tracing::warn!(executions = ?recovered, "brought up to date from the commit log after an unclean stop");
            }
            self.log = Some(Arc::new(log));
        }
        Ok(self)
    }

    /// A store over `root` as a command other than the daemon opens it: when an unclean stop
    /// left the folder's commit log with records and no process holds it, the executions'
    /// files are first brought up to date from it (and this store then commits through it).
    pub fn opened(root: impl Into<PathBuf>, durability: Durability) -> Result<FileStore, CheckpointError> {
        let store = FileStore::new(root, durability);
        if !commit_log::pending(&store.root) {
            return Ok(store);
        }
        let (root, durability) = (store.root.clone(), store.durability);
        match FileStore::new(&root, Durability::Fsync).with_group_commit() {
            Ok(grouped) if durability == Durability::Fsync => Ok(grouped),
            // Brought up to date; this command's own commits need no log.
            Ok(_) => Ok(FileStore::new(root, durability)),
            // A running daemon holds the log: its files are at most a second behind.
            Err(CheckpointError::Io { source, .. }) if source.kind() == std::io::ErrorKind::WouldBlock => {
                Ok(FileStore::new(root, durability))
            }
            Err(e) => Err(e),
        }
    }

    /// Makes a deferred commit durable through the log.
    async fn settle(&self, deferred: Option<Deferred>) -> Result<(), CheckpointError> {
        let (Some(log), Some(d)) = (&self.log, deferred) else { return Ok(()) };
        let path = self.root.join(commit_log::LOG);
        let definition = d.definition.as_deref();
        log.append(&d.name, d.version, &d.document, &d.events, definition)
            .await
            .map_err(CheckpointError::io(path))
    }

    /// With group commit, brings the executions' files up to date before they are read.
    async fn written_back(&self) -> Result<(), CheckpointError> {
        let Some(log) = self.log.clone() else { return Ok(()) };
        let path = self.root.join(commit_log::LOG);
        blocking(move || log.write_back().map_err(CheckpointError::io(path))).await
    }

    /// The checkpoint directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether a live process holds the execution: `Some(pid)` (pid unknown: `Some(None)`) while
    /// one does, `None` when nobody does. Probes the lock without changing any file.
    pub fn holder(root: &Path, name: &str) -> Result<Option<Option<u32>>, CheckpointError> {
        let dir = root.join(name);
        let folder = match File::open(&dir) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CheckpointError::Io { path: dir, source: e }),
        };
        match folder.try_lock() {
            // Free: the probe's lock goes with the handle.
            Ok(()) => Ok(None),
            Err(std::fs::TryLockError::WouldBlock) => Ok(Some(holder_pid(&dir.join(LOCK)))),
            Err(std::fs::TryLockError::Error(e)) => Err(CheckpointError::Io { path: dir, source: e }),
        }
    }

    /// The history events that execution `name` under `root` lacks although its checkpoint
    /// counts them (`"3"` or `"3..=9"`), and whether its history had been synced up to them (a
    /// gap there is damage, which `resume` refuses; otherwise a power loss without fsync). None
    /// when the history is whole. Reads without locking or changing any file.
    pub fn history_gap(root: &Path, name: &str) -> Result<Option<(String, bool)>, CheckpointError> {
        let dir = existing(root, name)?;
        let (doc, _, _) = read_document(&dir)?;
        let (events, _) = reconcile(&dir, &doc, Check::Quiet)?;
        Ok(missing_events(&events, doc.execution.last_event_id).map(|missing| (missing, doc.synced)))
    }

    fn held(&self, name: &str) -> Option<Arc<Mutex<Held>>> {
        self.held.lock().expect("held lock").get(name).cloned()
    }

    fn hold(&self, name: &str, held: Held) {
        self.held.lock().expect("held lock").insert(name.to_string(), Arc::new(Mutex::new(held)));
    }
}

/// Runs blocking file work on tokio's blocking pool; a panic there is a panic here.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CheckpointError> + Send + 'static,
) -> Result<T, CheckpointError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[async_trait::async_trait]
impl ExecutionStore for FileStore {
    async fn commit(
        &self,
        execution: &Execution,
        events: &[HistoryEvent],
        definition: Option<&Value>,
        precondition: Precondition,
    ) -> Result<Version, CheckpointError> {
        let name = execution.name.clone();
        let state = serde_json::to_vec(execution).map_err(|e| CheckpointError::Corrupt {
            path: self.root.join(&name).join(CHECKPOINT),
            reason: e.to_string(),
        })?;
        let events = events.to_vec();
        let finished = execution.status != Status::Running;
        match precondition {
            Precondition::DoesNotExist => {
                if self.held(&name).is_some() {
                    return Err(CheckpointError::Exists { name, dir: self.root.clone() });
                }
                let value = definition.unwrap_or(&Value::Null);
                let definition = serde_json::to_vec_pretty(value).expect("a JSON value serializes");
                let (root, durability, n) = (self.root.clone(), self.durability, name.clone());
                let deferred = self.log.is_some();
                // One line of the log: compact.
                let compact = deferred.then(|| serde_json::to_vec(value).expect("a JSON value serializes"));
                let (held, later) = blocking(move || {
                    let mut held = create(&root, &n, durability, deferred, &definition)?;
                    let mut later = held.commit(&state, events, finished)?;
                    if let Some(later) = &mut later {
                        later.definition = compact;
                    }
                    Ok((held, later))
                })
                .await?;
                self.settle(later).await?;
                let version = held.version;
                self.hold(&name, held);
                Ok(Version(version.to_string()))
            }
            Precondition::Matches(Version(expected)) => {
                let Some(held) = self.held(&name) else {
                    return Err(CheckpointError::Conflict {
                        name,
                        expected,
                        found: "an execution this process has not loaded".into(),
                    });
                };
                let (version, later) = blocking(move || {
                    let mut held = held.lock().expect("held execution lock");
                    if held.version.to_string() != expected {
                        return Err(CheckpointError::Conflict {
                            name,
                            expected,
                            found: held.version.to_string(),
                        });
                    }
                    let later = held.commit(&state, events, finished)?;
                    Ok((Version(held.version.to_string()), later))
                })
                .await?;
                self.settle(later).await?;
                Ok(version)
            }
        }
    }

    /// Closes the execution's lock and forgets it: the next process (or a later load here) may
    /// take it at once, and a long-lived daemon keeps nothing of executions it no longer drives.
    async fn release(&self, name: &str) -> Result<(), CheckpointError> {
        // The next holder reads the files: bring them up to date before the lock goes. If that
        // fails the lock goes anyway: the log holds the commits, and the next open recovers them.
        let written = self.written_back().await;
        self.held.lock().expect("held lock").remove(name);
        written
    }

    async fn load(&self, name: &str) -> Result<Stored, CheckpointError> {
        self.written_back().await?;
        let (root, durability, n) = (self.root.clone(), self.durability, name.to_string());
        let deferred = self.log.is_some();
        let (held, stored) = blocking(move || open(&root, &n, durability, deferred)).await?;
        self.hold(name, held);
        Ok(stored)
    }

    async fn read(&self, name: &str) -> Result<Stored, CheckpointError> {
        self.written_back().await?;
        let (root, n) = (self.root.clone(), name.to_string());
        blocking(move || read(&root, &n)).await
    }

    async fn list(&self) -> Result<Vec<Result<Execution, CheckpointError>>, CheckpointError> {
        self.written_back().await?;
        let root = self.root.clone();
        blocking(move || list(&root)).await
    }

    async fn history(&self, name: &str) -> Result<Vec<HistoryEvent>, CheckpointError> {
        self.written_back().await?;
        let (root, n) = (self.root.clone(), name.to_string());
        blocking(move || {
            let dir = existing(&root, &n)?;
            let (doc, _, _) = read_document(&dir)?;
            Ok(reconcile(&dir, &doc, Check::Warn)?.0)
        })
        .await
    }
}

/// The folder of an existing execution, or NotFound.
fn existing(root: &Path, name: &str) -> Result<PathBuf, CheckpointError> {
    let dir = root.join(name);
    if dir.join(CHECKPOINT).exists() {
        Ok(dir)
    } else {
        Err(CheckpointError::NotFound { name: name.to_string(), dir: root.to_path_buf() })
    }
}

/// A new execution's folder, locked, with its definition; refuses a name already used.
fn create(
    root: &Path,
    name: &str,
    durability: Durability,
    deferred: bool,
    definition: &[u8],
) -> Result<Held, CheckpointError> {
    let dir = root.join(name);
    fs::create_dir_all(&dir).map_err(CheckpointError::io(&dir))?;
    let lock = lock(&dir, name)?;
    if dir.join(CHECKPOINT).exists() {
        return Err(CheckpointError::Exists { name: name.to_string(), dir: root.to_path_buf() });
    }
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(dir.join(HISTORY))
        .map_err(CheckpointError::io(dir.join(HISTORY)))?;
    let path = dir.join(DEFINITION);
    // Under group commit the first commit's log record carries the definition.
    let durability = if deferred { Durability::NoFsync } else { durability };
    write_atomic(&path, definition, durability).map_err(CheckpointError::io(&path))?;
    if durability == Durability::Fsync {
        // The new execution folder itself must survive a power loss.
        File::open(root).and_then(|f| f.sync_all()).map_err(CheckpointError::io(root))?;
    }
    let definition_sha256 = sha256_hex(definition);
    Ok(Held { dir, durability, deferred, _lock: lock, unsynced: Vec::new(), version: 0, definition_sha256 })
}

/// Opens an existing execution to advance it: takes the lock, reads and checks the checkpoint,
/// brings the history in line with it, and rehydrates the execution from the history.
fn open(
    root: &Path,
    name: &str,
    durability: Durability,
    deferred: bool,
) -> Result<(Held, Stored), CheckpointError> {
    let dir = existing(root, name)?;
    let lock = lock(&dir, name)?;
    let (doc, definition, definition_sha256) = read_document(&dir)?;
    if doc.execution.name != name {
        // A folder copied under another name would advance (and call services as) the original.
        return Err(CheckpointError::Corrupt {
            path: dir.join(CHECKPOINT),
            reason: format!(
                "it holds the execution '{}', but its folder is named '{name}': an execution lives in the folder \
                 of its own name (start a new execution instead of copying one)",
                doc.execution.name
            ),
        });
    }
    if let Some(pinned) = doc.definition_sha256.as_deref().filter(|p| *p != definition_sha256) {
        let path = dir.join(DEFINITION);
        return Err(CheckpointError::Corrupt {
            path,
            reason: format!(
                "its SHA-256 is {definition_sha256}, but the execution started with {pinned}: an execution \
                 runs the definition it started with (start a new execution for the edited one)"
            ),
        });
    }
    let events = repair_history(&dir, &doc)?;
    let history = OpenOptions::new()
        .append(true)
        .open(dir.join(HISTORY))
        .map_err(CheckpointError::io(dir.join(HISTORY)))?;
    if durability == Durability::Fsync {
        // What the previous process appended but never synced becomes durable now, so this
        // store's checkpoints need only carry their own unsynced events.
        history.sync_data().map_err(CheckpointError::io(dir.join(HISTORY)))?;
    }
    let mut execution = doc.execution;
    execution.rehydrate(&events);
    let version = doc.version;
    let held =
        Held { dir, durability, deferred, _lock: lock, unsynced: Vec::new(), version, definition_sha256 };
    Ok((held, Stored { definition, execution, version: Version(version.to_string()) }))
}

/// Reads an execution without locking it, rehydrated from its history.
fn read(root: &Path, name: &str) -> Result<Stored, CheckpointError> {
    let dir = existing(root, name)?;
    let (doc, definition, _) = read_document(&dir)?;
    let (events, _) = reconcile(&dir, &doc, Check::Warn)?;
    let version = Version(doc.version.to_string());
    let mut execution = doc.execution;
    execution.rehydrate(&events);
    Ok(Stored { definition, execution, version })
}

/// Every execution under `root`, oldest first. Unreadable ones are reported, not skipped.
fn list(root: &Path) -> Result<Vec<Result<Execution, CheckpointError>>, CheckpointError> {
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CheckpointError::Io { path: root.to_path_buf(), source: e }),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(CheckpointError::io(root))?;
        if entry.path().join(CHECKPOINT).exists() {
            let name = entry.file_name().to_string_lossy().into_owned();
            out.push(read(root, &name).map(|s| s.execution));
        }
    }
    out.sort_by_key(|r| r.as_ref().map(|e| e.start_time).ok());
    Ok(out)
}

impl Held {
    /// Records one transition: the events appended to the history (history first: if the
    /// process dies between the two writes, opening the execution cuts the history back to the
    /// checkpoint), then the checkpoint with `state` (the execution as JSON). Deferred (group
    /// commit), nothing is written: the commit is returned for the log.
    fn commit(
        &mut self,
        state: &[u8],
        events: Vec<HistoryEvent>,
        finished: bool,
    ) -> Result<Option<Deferred>, CheckpointError> {
        let path = self.dir.join(CHECKPOINT);
        let corrupt =
            |e: serde_json::Error| CheckpointError::Corrupt { path: path.clone(), reason: e.to_string() };
        if self.deferred {
            let mut lines = Vec::with_capacity(256 * events.len());
            for event in &events {
                serde_json::to_writer(&mut lines, event).map_err(corrupt)?;
                lines.push(b'\n');
            }
            let document = self.document(state, &[]).map_err(corrupt)?;
            self.version += 1;
            let name = self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            return Ok(Some(Deferred {
                name,
                version: self.version,
                document,
                events: lines,
                definition: None,
            }));
        }
        self.append_history(events, finished)?;
        let doc = self.document(state, &self.unsynced).map_err(corrupt)?;
        write_atomic(&path, &doc, self.durability).map_err(CheckpointError::io(&path))?;
        self.version += 1;
        Ok(None)
    }

    /// The checkpoint document of the next version: `state` and the events it must carry.
    fn document(&self, state: &[u8], last_events: &[HistoryEvent]) -> Result<Vec<u8>, serde_json::Error> {
        let mut doc = Vec::with_capacity(state.len() + 256);
        write!(doc, "{{\"format\":{FORMAT},\"version\":{},\"execution\":", self.version + 1)
            .expect("writing to memory");
        doc.extend_from_slice(state);
        doc.extend_from_slice(b",\"last_events\":");
        serde_json::to_writer(&mut doc, last_events)?;
        let synced = self.durability == Durability::Fsync;
        writeln!(doc, ",\"synced\":{synced},\"definition_sha256\":\"{}\"}}", self.definition_sha256)
            .expect("writing to memory");
        Ok(doc)
    }

    /// Appends the events; in Fsync mode syncs the history when enough events wait (or the
    /// execution ended). `unsynced` is left holding the events the checkpoint must still carry.
    fn append_history(&mut self, events: Vec<HistoryEvent>, finished: bool) -> Result<(), CheckpointError> {
        let path = self.dir.join(HISTORY);
        let mut buffer = Vec::with_capacity(256 * events.len());
        for event in &events {
            serde_json::to_writer(&mut buffer, event)
                .map_err(|e| CheckpointError::Corrupt { path: path.clone(), reason: e.to_string() })?;
            buffer.push(b'\n');
        }
        // Opened for each append rather than kept: a daemon holding ten thousand executions
        // keeps one descriptor each (the lock), not two.
        let mut history = OpenOptions::new().append(true).open(&path).map_err(CheckpointError::io(&path))?;
        history.write_all(&buffer).map_err(CheckpointError::io(&path))?;
        match self.durability {
            Durability::NoFsync => self.unsynced = events,
            Durability::Fsync => {
                self.unsynced.extend(events);
                if finished || self.unsynced.len() >= HISTORY_SYNC_EVERY {
                    history.sync_data().map_err(CheckpointError::io(&path))?;
                    self.unsynced.clear();
                }
            }
        }
        Ok(())
    }
}

fn lock(dir: &Path, name: &str) -> Result<File, CheckpointError> {
    let folder = File::open(dir).map_err(CheckpointError::io(dir))?;
    match folder.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(CheckpointError::Locked { name: name.to_string(), pid: holder_pid(&dir.join(LOCK)) });
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(CheckpointError::Io { path: dir.into(), source: e });
        }
    }
    // A per-process name, so two processes racing here never share one temporary file.
    let path = dir.join(LOCK);
    write_atomic(&path, std::process::id().to_string().as_bytes(), Durability::NoFsync)
        .map_err(CheckpointError::io(&path))?;
    Ok(folder)
}

/// The pid in the `lock` file of a folder another process holds. The holder writes it just
/// after taking the lock, so a reader may find it missing or still naming the previous holder:
/// it reads again (for up to half a second) until the pid names a live process.
fn holder_pid(path: &Path) -> Option<u32> {
    let read = || -> Result<u32, ()> {
        let text = fs::read_to_string(path).map_err(|_| ())?;
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

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The checkpoint, the definition and the definition's SHA-256 (hex).
fn read_document(dir: &Path) -> Result<(Document, Value, String), CheckpointError> {
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
    Ok((doc, definition, sha256_hex(&def_text)))
}

/// How [`reconcile`] treats a history the checkpoint says was synced but that has gaps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Opening to advance: refuse it, every file untouched.
    Refuse,
    /// Reading (status, history): show what there is, with a warning.
    Warn,
    /// Asking what is missing ([`FileStore::history_gap`]): the caller reports it.
    Quiet,
}

/// The history the checkpoint vouches for: events up to its last id, with the events it carries
/// restored if the history file lost them. A torn last line and events past the checkpoint are
/// what a crash leaves and are cut; anything else unreadable is corruption, refused untouched.
/// Missing events are what a power loss leaves only when the history was not synced; in a
/// history the checkpoint says was synced they are damage (a truncated or edited file).
/// The flag tells whether the file differs from the result.
fn reconcile(dir: &Path, doc: &Document, check: Check) -> Result<(Vec<HistoryEvent>, bool), CheckpointError> {
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
    if let Some(missing) = missing_events(&events, last) {
        if doc.synced && check == Check::Refuse {
            return Err(CheckpointError::Corrupt {
                path,
                reason: format!(
                    "events {missing} are missing, though the history was synced up to them: the file \
                     was truncated or edited (restore it, or start a new execution)"
                ),
            });
        }
        if check == Check::Warn {
            let why =
                if doc.synced { "the file was truncated or edited" } else { "a power loss without fsync" };
            tracing::warn!(path = %path.display(), "history lacks events {missing} ({why})");
        }
    }
    Ok((events, changed))
}

/// The first run of event ids missing from `1..=last` in `events` (ascending ids), as `"3"` or
/// `"3..=9"`; None when none is. `last` is the checkpoint's `last_event_id`.
fn missing_events(events: &[HistoryEvent], last: u64) -> Option<String> {
    let mut expected = 1;
    for id in events.iter().map(|e| e.id).chain([last + 1]) {
        if id > expected {
            let to = id - 1;
            return Some(if to == expected { expected.to_string() } else { format!("{expected}..={to}") });
        }
        expected = id + 1;
    }
    None
}

/// Brings the history file in line with the checkpoint and gives its events.
fn repair_history(dir: &Path, doc: &Document) -> Result<Vec<HistoryEvent>, CheckpointError> {
    let (events, changed) = reconcile(dir, doc, Check::Refuse)?;
    if changed {
        let path = dir.join(HISTORY);
        let mut buf = Vec::new();
        for e in &events {
            serde_json::to_writer(&mut buf, e).expect("events serialize");
            buf.push(b'\n');
        }
        write_atomic(&path, &buf, Durability::Fsync).map_err(CheckpointError::io(&path))?;
    }
    Ok(events)
}

//! The file store: one folder per execution under the checkpoint directory.
//!
//! - `checkpoint.json`: the execution as it stands, replaced atomically after every transition
//!   (write a temporary file, fsync it, rename it over, fsync the folder). Its size follows the
//!   current state, not the length of the run.
//! - `history.jsonl`: the history, appended. It is not fsynced per transition: the checkpoint
//!   also carries the newest transition's events, and opening an execution truncates the history
//!   to the checkpoint and re-appends what a crash cut off.
//! - `definition.json`: the state machine as it was when the execution started.
//! - `lock`: held with flock while a process advances the execution; holds that process's pid.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
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
    buffer: Vec<u8>,
}

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
        repair_history(&dir, &doc)?;
        let history = OpenOptions::new()
            .append(true)
            .open(dir.join(HISTORY))
            .map_err(CheckpointError::io(dir.join(HISTORY)))?;
        let store = Self::assemble(dir, durability, lock, history)?;
        Ok((store, Loaded { definition, execution: doc.execution }))
    }

    fn assemble(
        dir: PathBuf,
        durability: Durability,
        lock: File,
        history: File,
    ) -> Result<FileStore, CheckpointError> {
        let folder = File::open(&dir).map_err(CheckpointError::io(&dir))?;
        Ok(FileStore { dir, durability, _lock: lock, folder, history, buffer: Vec::with_capacity(4096) })
    }

    /// Reads an execution without locking it (for `status`).
    pub fn read(root: &Path, name: &str) -> Result<Loaded, CheckpointError> {
        let dir = root.join(name);
        if !dir.join(CHECKPOINT).exists() {
            return Err(CheckpointError::NotFound { name: name.to_string(), dir: root.to_path_buf() });
        }
        let (doc, definition) = read_document(&dir)?;
        Ok(Loaded { definition, execution: doc.execution })
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

    /// Every execution under `root`, oldest first. Unreadable ones are reported, not skipped.
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
                out.push(read_document(&entry.path()).map(|(doc, _)| doc.execution));
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

    fn append_history(&mut self, events: &[HistoryEvent], finished: bool) -> Result<(), CheckpointError> {
        let path = || self.dir.join(HISTORY);
        self.buffer.clear();
        for event in events {
            serde_json::to_writer(&mut self.buffer, event)
                .map_err(|e| CheckpointError::Corrupt { path: path(), reason: e.to_string() })?;
            self.buffer.push(b'\n');
        }
        self.history.write_all(&self.buffer).map_err(CheckpointError::io(path()))?;
        if finished && self.durability == Durability::Fsync {
            self.history.sync_data().map_err(CheckpointError::io(path()))?;
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
        self.write_checkpoint(exec, events)
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
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(CheckpointError::Locked { name: name.to_string(), pid: text.trim().parse().ok() });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(CheckpointError::Io { path, source: e }),
    }
    file.set_len(0).map_err(CheckpointError::io(&path))?;
    write!(file, "{}", std::process::id()).map_err(CheckpointError::io(&path))?;
    Ok(file)
}

fn read_document(dir: &Path) -> Result<(Document, Value), CheckpointError> {
    let path = dir.join(CHECKPOINT);
    let text = fs::read(&path).map_err(CheckpointError::io(&path))?;
    let raw: Value = serde_json::from_slice(&text)
        .map_err(|e| CheckpointError::Corrupt { path: path.clone(), reason: format!("not JSON: {e}") })?;
    match raw.get("format") {
        Some(Value::Number(n)) if n.as_u64() == Some(u64::from(FORMAT)) => {}
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

/// The history the checkpoint vouches for: events up to its last id, with the newest
/// transition's events restored from the checkpoint if the history file lost them. The flag
/// tells whether the file differs from that.
fn reconcile(dir: &Path, doc: &Document) -> Result<(Vec<HistoryEvent>, bool), CheckpointError> {
    let path = dir.join(HISTORY);
    let last = doc.execution.last_event_id;
    let mut events: Vec<HistoryEvent> = Vec::new();
    let mut changed = false;
    match File::open(&path) {
        Ok(file) => {
            for line in BufReader::new(file).lines() {
                let line = line.map_err(CheckpointError::io(&path))?;
                // A torn last line or events of a transition whose checkpoint never landed.
                match serde_json::from_str::<HistoryEvent>(&line) {
                    Ok(e) if e.id <= last && e.id == events.last().map_or(1, |p| p.id + 1) => events.push(e),
                    _ => {
                        changed = true;
                        break;
                    }
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => changed = true,
        Err(e) => return Err(CheckpointError::Io { path, source: e }),
    }
    for event in &doc.last_events {
        if event.id == events.last().map_or(1, |e| e.id + 1) {
            events.push(event.clone());
            changed = true;
        }
    }
    Ok((events, changed))
}

fn repair_history(dir: &Path, doc: &Document) -> Result<(), CheckpointError> {
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
    Ok(())
}

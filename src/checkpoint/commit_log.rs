//! Group commit for the file store: one shared log makes many executions' commits durable with
//! one flush, so a busy daemon is not capped at one disk flush per transition.
//!
//! A commit appends one record, `{"name", "version", "checkpoint": <document>, "events": [...]}`,
//! to the committer thread and waits; the committer writes every record that has arrived with
//! one write and one `fdatasync`, and answers them all (while it flushes, the next batch
//! gathers). The executions' own files (`checkpoint.json`, `history.jsonl`) are brought up to
//! date from the records later, without fsync, at most every [`WRITE_BACK`], and at once
//! before this process reads them or gives an execution up ([`CommitLog::write_back`]); another
//! process reading the folder meanwhile sees them up to [`WRITE_BACK`] behind.
//!
//! Writing every execution's files on each commit would cost as much as fsyncing them: with
//! ext4's ordered data mode a journal commit waits for every newly written block, so each
//! flush of the log would wait for a thousand checkpoints and history tails.
//!
//! After a crash or a power loss the log holds every acknowledged commit: opening the store
//! ([`CommitLog::open`]) appends each execution's missing history events and puts back its
//! newest checkpoint, durably, before anything reads them. When the log passes
//! [`TRUNCATE_AT`] the committer writes the files back, fsyncs them, and empties it.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::atomic_file::{Durability, write_atomic};

/// Whether `root` holds a log with records: an unclean stop of a group-commit store, whose
/// executions' files may lag it until a store opens it with [`CommitLog::open`].
pub fn pending(root: &Path) -> bool {
    std::fs::metadata(root.join(LOG)).is_ok_and(|m| m.len() > 0)
}

/// The log's name in the checkpoint folder (a file: listing executions skips it).
pub const LOG: &str = ".commit-log.jsonl";

/// The log is emptied once it holds this many bytes.
pub const TRUNCATE_AT: u64 = 64 << 20;

/// How often the executions' files are brought up to date from the log's records.
pub const WRITE_BACK: Duration = Duration::from_secs(1);

// The file store's names for an execution's files (kept here too, so the log depends on no
// more of the store than the layout of a folder).
const CHECKPOINT: &str = "checkpoint.json";
const HISTORY: &str = "history.jsonl";
const DEFINITION: &str = "definition.json";

/// What an execution's files still lack: history lines to append, the newest checkpoint.
#[derive(Default)]
struct Behind {
    history: Vec<u8>,
    checkpoint: Vec<u8>,
}

struct Request {
    record: Vec<u8>,
    answer: tokio::sync::oneshot::Sender<io::Result<()>>,
}

/// The committer of one checkpoint folder. Dropping it waits for its thread to flush the
/// records already sent and write every execution's files back.
pub struct CommitLog {
    requests: Option<mpsc::Sender<Request>>,
    files: Arc<Files>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for CommitLog {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The executions' files and what they lack, written back by one writer at a time, so a write
/// back that returns has written everything committed before it began.
struct Files {
    root: PathBuf,
    behind: Mutex<HashMap<String, Behind>>,
    writer: Mutex<()>,
}

impl CommitLog {
    /// Recovers `root`'s log (see the module) and starts the committer. Gives the names of the
    /// executions whose files were brought up to date from it. Errors: the folder, the log or an
    /// execution's files cannot be read or written.
    ///
    /// The log is held with flock for the committer's life: a second process opening it gets
    /// [`io::ErrorKind::WouldBlock`] and must neither recover nor append (the first one may
    /// still be committing).
    pub fn open(root: &Path) -> io::Result<(CommitLog, Vec<String>)> {
        std::fs::create_dir_all(root)?;
        let path = root.join(LOG);
        let mut log = OpenOptions::new().create(true).append(true).open(&path)?;
        match log.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "another recflow process (a daemon) commits through this log: one daemon per checkpoint folder",
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let recovered = recover(root, &path)?;
        // Everything the log covers must be durable before it goes: files written back without
        // fsync by the process before, new folders, definitions. One flush of the file system
        // (rare: at open, and each TRUNCATE_AT bytes) makes them so.
        let root_handle = File::open(root)?;
        syncfs(&root_handle)?;
        log.set_len(0)?;
        log.sync_all()?;
        let files = Arc::new(Files {
            root: root.to_path_buf(),
            behind: Mutex::new(HashMap::new()),
            writer: Mutex::new(()),
        });
        let (requests, incoming) = mpsc::channel::<Request>();
        let shared = Arc::clone(&files);
        let thread = std::thread::Builder::new().name("recflow-commit-log".into()).spawn(move || {
            let (mut size, mut written_back) = (0u64, Instant::now());
            // Set when a failed write could not be cut back: nothing more is acknowledged.
            let mut broken: Option<String> = None;
            loop {
                let first = match incoming.recv_timeout(WRITE_BACK) {
                    Ok(first) => first,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        shared.write_back_logged();
                        written_back = Instant::now();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                };
                let mut batch = vec![first];
                batch.extend(incoming.try_iter());
                let bytes: Vec<u8> = batch.iter().flat_map(|r| r.record.iter().copied()).collect();
                let flushed = match &broken {
                    Some(why) => Err(io::Error::other(why.clone())),
                    None => log.write_all(&bytes).and_then(|()| log.sync_data()),
                };
                match &flushed {
                    Ok(()) => size += bytes.len() as u64,
                    // A partial record would hide every later one from recovery: cut it off.
                    Err(e) if broken.is_none() => {
                        if let Err(cut) = log.set_len(size).and_then(|()| log.sync_all()) {
                            broken = Some(format!("the commit log could not be written ({e}) nor cut back ({cut})"));
                        }
                    }
                    Err(_) => {}
                }
                for request in batch {
                    let answer = match &flushed {
                        Ok(()) => Ok(()),
                        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
                    };
                    let _ = request.answer.send(answer);
                }
                if flushed.is_ok() && size >= TRUNCATE_AT {
                    match shared.write_back(Durability::NoFsync).and_then(|()| {
                        syncfs(&root_handle)?;
                        log.set_len(0)?;
                        log.sync_all()
                    }) {
                        Ok(()) => size = 0,
                        Err(e) => tracing::warn!(path = %path.display(), error = %e, "could not empty the commit log; it keeps growing"),
                    }
                } else if written_back.elapsed() >= WRITE_BACK {
                    shared.write_back_logged();
                    written_back = Instant::now();
                }
            }
            shared.write_back_logged();
        })?;
        Ok((CommitLog { requests: Some(requests), files, thread: Some(thread) }, recovered))
    }

    /// Makes one commit durable: `document` is the execution's checkpoint (at `version`) and
    /// `events` its new history lines (JSON Lines). Returns once a flush of the log holds them.
    /// Errors: the log's write or flush.
    /// A new execution's first commit also carries its `definition` (compact JSON: one line),
    /// which its folder holds without fsync until then.
    pub async fn append(
        &self,
        name: &str,
        version: u64,
        document: &[u8],
        events: &[u8],
        definition: Option<&[u8]>,
    ) -> io::Result<()> {
        let record = record(name, version, document, events, definition);
        {
            let mut behind = self.files.behind.lock().expect("commit log lock");
            let entry = behind.entry(name.to_string()).or_default();
            entry.history.extend_from_slice(events);
            entry.checkpoint = document.to_vec();
        }
        let (answer, answered) = tokio::sync::oneshot::channel();
        let stopped = || io::Error::other("the commit log has stopped");
        let requests = self.requests.as_ref().ok_or_else(stopped)?;
        requests.send(Request { record, answer }).map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }

    /// Brings every execution's files up to date now (without fsync: the log keeps them
    /// durable), so that this process reads its own commits and the next holder of an execution
    /// finds them.
    pub fn write_back(&self) -> io::Result<()> {
        self.files.write_back(Durability::NoFsync)
    }
}

impl Files {
    fn write_back_logged(&self) {
        if let Err(e) = self.write_back(Durability::NoFsync) {
            tracing::warn!(error = %e, "could not bring the executions' files up to date; the commit log still holds them");
        }
    }

    /// Writes what each execution's files lack: history lines, then the checkpoint. With
    /// [`Durability::Fsync`] also every file written since the last such call.
    fn write_back(&self, durability: Durability) -> io::Result<()> {
        let _writer = self.writer.lock().expect("commit log writer lock");
        let behind: Vec<(String, Behind)> =
            std::mem::take(&mut *self.behind.lock().expect("commit log lock")).into_iter().collect();
        let mut failed = None;
        for (name, mut files) in behind {
            if failed.is_none() {
                match self.write_one(&name, &mut files, durability) {
                    Ok(()) => continue,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        // Its folder is gone (removed by hand): nothing to bring up to date.
                        tracing::warn!(execution = %name, "the execution's folder is gone; its last commits stay in the commit log only");
                        continue;
                    }
                    Err(e) => failed = Some(e),
                }
            }
            self.put_back(name, files);
        }
        failed.map_or(Ok(()), Err)
    }

    /// Returns what could not be written, before anything committed since.
    fn put_back(&self, name: String, files: Behind) {
        let mut map = self.behind.lock().expect("commit log lock");
        let entry = map.entry(name).or_default();
        let mut history = files.history;
        history.extend_from_slice(&entry.history);
        entry.history = history;
        if entry.checkpoint.is_empty() {
            entry.checkpoint = files.checkpoint;
        }
    }

    /// Writes what one execution's files lack; what was written is cleared from `files`, so a
    /// failure part way puts back only the rest (a history line is never appended twice).
    fn write_one(&self, name: &str, files: &mut Behind, durability: Durability) -> io::Result<()> {
        let dir = self.root.join(name);
        if !files.history.is_empty() {
            let path = dir.join(HISTORY);
            let mut history = OpenOptions::new().append(true).open(&path)?;
            let before = history.metadata()?.len();
            let appended = history.write_all(&files.history).and_then(|()| match durability {
                Durability::Fsync => history.sync_data(),
                Durability::NoFsync => Ok(()),
            });
            if let Err(e) = appended {
                // Cut a partial append back, so the retry appends whole lines once.
                let _ = history.set_len(before);
                return Err(e);
            }
            files.history.clear();
        }
        if !files.checkpoint.is_empty() {
            write_atomic(&dir.join(CHECKPOINT), &files.checkpoint, durability)?;
            files.checkpoint.clear();
        }
        Ok(())
    }
}

/// Flushes the whole file system holding `handle` (syncfs(2)).
fn syncfs(handle: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs(2) on a descriptor that stays open for the call.
    if unsafe { libc::syncfs(handle.as_raw_fd()) } == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// A log record for `name` at `version`: `document` is the checkpoint, `events` its new history
/// lines (JSON Lines).
fn record(name: &str, version: u64, document: &[u8], events: &[u8], definition: Option<&[u8]>) -> Vec<u8> {
    let document = document.strip_suffix(b"\n").unwrap_or(document);
    let mut out = Vec::with_capacity(document.len() + events.len() + name.len() + 64);
    out.extend_from_slice(b"{\"name\":");
    serde_json::to_writer(&mut out, name).expect("a string serializes");
    if let Some(definition) = definition {
        out.extend_from_slice(b",\"definition\":");
        out.extend_from_slice(definition.trim_ascii_end());
    }
    write!(out, ",\"version\":{version},\"checkpoint\":").expect("writing to memory");
    out.extend_from_slice(document);
    out.extend_from_slice(b",\"events\":[");
    for (i, line) in events.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b"]}\n");
    out
}

/// Brings every execution the log names up to date, durably: the history events its file lacks
/// (by id) appended, the newest checkpoint put back when the file's is older. A torn last line
/// (cut by the power loss) is ignored: its commit was never acknowledged.
fn recover(root: &Path, path: &Path) -> io::Result<Vec<String>> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    // Per execution: its events in order, its newest checkpoint, and its definition when the log
    // saw it created.
    let mut found: BTreeMap<String, (Vec<Value>, u64, Value)> = BTreeMap::new();
    let mut definitions: BTreeMap<String, Value> = BTreeMap::new();
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(mut record) = serde_json::from_slice::<Value>(line) else { break };
        let (Some(name), Some(version)) =
            (record["name"].as_str().map(String::from), record["version"].as_u64())
        else {
            break;
        };
        if let Some(definition) = record.get_mut("definition") {
            definitions.insert(name.clone(), definition.take());
        }
        let entry = found.entry(name).or_insert_with(|| (Vec::new(), 0, Value::Null));
        if let Value::Array(events) = record["events"].take() {
            entry.0.extend(events);
        }
        if version >= entry.1 {
            entry.1 = version;
            entry.2 = record["checkpoint"].take();
        }
    }
    let mut recovered = Vec::new();
    for (name, (events, version, checkpoint)) in found {
        let dir = root.join(&name);
        let mut changed = false;
        if let Some(definition) = definitions.get(&name) {
            // Created under group commit: the folder and definition may not have survived.
            std::fs::create_dir_all(&dir)?;
            let file = dir.join(DEFINITION);
            if std::fs::read(&file).ok().and_then(|t| serde_json::from_slice::<Value>(&t).ok()).is_none() {
                let bytes = serde_json::to_vec_pretty(definition).map_err(io::Error::other)?;
                write_atomic(&file, &bytes, Durability::Fsync)?;
                changed = true;
            }
        }
        if !dir.is_dir() {
            tracing::warn!(execution = %name, "the commit log names an execution whose folder is gone; skipped");
            continue;
        }
        let history = dir.join(HISTORY);
        let text = match std::fs::read(&history) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", history.display()))),
        };
        // A torn last line (bytes, perhaps cut inside a character) is cut; the log has the event.
        let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let last_id = text[..complete]
            .split(|b| *b == b'\n')
            .rfind(|l| !l.is_empty())
            .and_then(|l| serde_json::from_slice::<Value>(l).ok())
            .and_then(|e| e["id"].as_u64())
            .unwrap_or(0);
        let missing: Vec<&Value> =
            events.iter().filter(|e| e["id"].as_u64().is_some_and(|id| id > last_id)).collect();
        if !missing.is_empty() || complete != text.len() {
            let mut bytes = text[..complete].to_vec();
            for event in missing {
                serde_json::to_writer(&mut bytes, event).map_err(io::Error::other)?;
                bytes.push(b'\n');
            }
            write_atomic(&history, &bytes, Durability::Fsync)?;
            changed = true;
        }
        let file = dir.join(CHECKPOINT);
        let stored = std::fs::read(&file)
            .ok()
            .and_then(|t| serde_json::from_slice::<Value>(&t).ok())
            .and_then(|d| d["version"].as_u64());
        if stored.is_none_or(|v| v < version) {
            let mut bytes = serde_json::to_vec(&checkpoint).map_err(io::Error::other)?;
            bytes.push(b'\n');
            write_atomic(&file, &bytes, Durability::Fsync)?;
            changed = true;
        }
        if changed {
            tracing::info!(execution = %name, version, "brought up to date from the commit log");
            recovered.push(name);
        }
    }
    if !recovered.is_empty() {
        // Folders made again are durable once the checkpoint folder's entries are.
        File::open(root)?.sync_all()?;
    }
    Ok(recovered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(version: u64, last_event_id: u64) -> Vec<u8> {
        format!(
            "{{\"format\":3,\"version\":{version},\"execution\":{{\"last_event_id\":{last_event_id}}},\"last_events\":[]}}\n"
        )
        .into_bytes()
    }

    fn event(id: u64) -> String {
        format!("{{\"id\":{id},\"type\":\"StateEntered\"}}\n")
    }

    #[test]
    fn recovery_appends_missing_events_and_puts_back_the_newest_checkpoint() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("e");
        std::fs::create_dir_all(&dir).unwrap();
        // On disk: version 1 with events 1-2, and a torn third line.
        std::fs::write(dir.join(CHECKPOINT), doc(1, 2)).unwrap();
        std::fs::write(dir.join(HISTORY), format!("{}{}{{\"id\":3,\"ty", event(1), event(2))).unwrap();
        // The log: versions 2 and 3, with events 3 and 4-5, then a torn record.
        let mut log = record("e", 2, &doc(2, 3), event(3).as_bytes(), None);
        log.extend(record("e", 3, &doc(3, 5), format!("{}{}", event(4), event(5)).as_bytes(), None));
        log.extend_from_slice(b"{\"name\":\"e\",\"version\":4,\"checkp");
        std::fs::write(root.path().join(LOG), &log).unwrap();
        let (_log, recovered) = CommitLog::open(root.path()).unwrap();
        assert_eq!(recovered, ["e"]);
        let ids: Vec<u64> = std::fs::read_to_string(dir.join(HISTORY))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        let checkpoint: Value =
            serde_json::from_slice(&std::fs::read(dir.join(CHECKPOINT)).unwrap()).unwrap();
        assert_eq!(checkpoint["version"], 3);
        assert_eq!(std::fs::metadata(root.path().join(LOG)).unwrap().len(), 0, "emptied");
    }

    #[test]
    fn recovery_makes_again_an_execution_whose_creation_was_lost() {
        let root = tempfile::tempdir().unwrap();
        let definition = br#"{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}"#;
        let log = record("new", 1, &doc(1, 1), event(1).as_bytes(), Some(definition));
        std::fs::write(root.path().join(LOG), &log).unwrap();
        let (_log, recovered) = CommitLog::open(root.path()).unwrap();
        assert_eq!(recovered, ["new"]);
        let dir = root.path().join("new");
        let written: Value =
            serde_json::from_slice(&std::fs::read(dir.join("definition.json")).unwrap()).unwrap();
        assert_eq!(written["StartAt"], "A");
        assert_eq!(std::fs::read_to_string(dir.join(HISTORY)).unwrap(), event(1));
        let checkpoint: Value =
            serde_json::from_slice(&std::fs::read(dir.join(CHECKPOINT)).unwrap()).unwrap();
        assert_eq!(checkpoint["version"], 1);
    }
}

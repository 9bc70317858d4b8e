//! The S3 store (`--checkpoint-dir s3://bucket/prefix/`), for containers that keep nothing on
//! local disk between starts. Under `<prefix><name>/`:
//!
//! - `checkpoint.json`: the document the file store writes (`format`, `version`, `execution`,
//!   `last_events`) plus the holder's `lease`. Created with `If-None-Match: *` and replaced with
//!   `If-Match: <ETag>` (S3 conditional writes, S3 user guide "Conditional requests"), so of two
//!   writers racing from the same version exactly one wins; the other gets 412
//!   PreconditionFailed, which is [`CheckpointError::Conflict`]. The ETag is the version.
//! - `definition.json`: the state machine as it was at the start.
//! - `history/<first event id>.jsonl`: one object per transition, written after the checkpoint
//!   that carries the same events (`last_events`); opening an execution writes back one a crash
//!   left out, so the history is whole up to the checkpoint.
//!
//! Loading an execution to advance it claims it: a conditional write of a lease (holder and
//! expiry, renewed by every commit). A second process finds the lease live and is refused
//! (`Locked`), or loses the race for the claim (`Conflict`): either way it stops before it
//! calls any task. A holder that sleeps in one Wait longer than the lease can be taken over; its
//! next commit then fails with `Conflict` and it stops.

use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{CheckpointError, FORMAT, READS};
use crate::engine::execution::Execution;
use crate::engine::history::HistoryEvent;
use crate::engine::store::{ExecutionStore, Precondition, Stored, Version};

/// How long a claim holds without a commit.
const LEASE_SECONDS: i64 = 300;

/// Executions under one `s3://bucket/prefix/`.
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    /// Who this process is, in leases: `<host>:<pid>`.
    holder: String,
}

#[derive(Serialize, Deserialize, Clone)]
struct Lease {
    holder: String,
    until: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Document {
    execution: Execution,
    #[serde(default)]
    last_events: Vec<HistoryEvent>,
    #[serde(default)]
    lease: Option<Lease>,
}

#[derive(Serialize)]
struct DocumentRef<'a> {
    format: u32,
    execution: &'a Execution,
    last_events: &'a [HistoryEvent],
    lease: Lease,
}

impl S3Store {
    /// A store under `s3://bucket/prefix` (the prefix ends with `/` unless empty).
    pub fn new(client: aws_sdk_s3::Client, bucket: &str, prefix: &str) -> S3Store {
        let mut prefix = prefix.trim_start_matches('/').to_string();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        S3Store {
            client,
            bucket: bucket.to_string(),
            prefix,
            holder: format!("{}:{}", host.trim(), std::process::id()),
        }
    }

    /// Names this store's holder in leases (default `<host>:<pid>`): two stores with different
    /// holders behave as two processes.
    pub fn with_holder(mut self, holder: impl Into<String>) -> S3Store {
        self.holder = holder.into();
        self
    }

    /// Reads `s3://bucket/prefix` into (bucket, prefix); None for anything else.
    pub fn parse_url(url: &str) -> Option<(String, String)> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.to_string()))
    }

    fn key(&self, name: &str, file: &str) -> String {
        format!("{}{name}/{file}", self.prefix)
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn remote(&self, key: &str, e: impl std::fmt::Display) -> CheckpointError {
        CheckpointError::Remote { place: self.url(key), message: e.to_string() }
    }

    /// An object's bytes and ETag; None when it does not exist.
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, CheckpointError> {
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => {
                let etag = out.e_tag().unwrap_or_default().to_string();
                let bytes = out.body.collect().await.map_err(|e| self.remote(key, e))?.into_bytes().to_vec();
                Ok(Some((bytes, etag)))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(self.remote(key, crate::error_chain::error_chain(&e))),
        }
    }

    /// A conditional PUT: `If-None-Match: *` without `if_match`, else `If-Match`. Gives the new
    /// ETag; a failed condition (412, 409, or 404 for an `If-Match` on a missing key) is a
    /// Conflict.
    async fn put(
        &self,
        name: &str,
        key: &str,
        bytes: Vec<u8>,
        if_match: Option<&str>,
    ) -> Result<String, CheckpointError> {
        let mut put = self.client.put_object().bucket(&self.bucket).key(key).body(ByteStream::from(bytes));
        put = match if_match {
            Some(etag) => put.if_match(etag),
            None => put.if_none_match("*"),
        };
        match put.send().await {
            Ok(out) => Ok(out.e_tag().unwrap_or_default().to_string()),
            Err(e) => {
                let code = e.as_service_error().and_then(|s| s.meta().code()).unwrap_or_default().to_string();
                let status = e.raw_response().map(|r| r.status().as_u16());
                // An `If-Match` on a key that is gone is answered 404 NoSuchKey (S3 user guide,
                // "How to prevent object overwrites with conditional writes"): another writer
                // deleted what this one expected, a conflict like any other.
                let gone = if_match.is_some() && code == "NoSuchKey";
                if code == "PreconditionFailed"
                    || code == "ConditionalRequestConflict"
                    || status == Some(412)
                    || gone
                {
                    let found =
                        self.get(key).await.ok().flatten().map(|(_, etag)| etag).unwrap_or("none".into());
                    Err(CheckpointError::Conflict {
                        name: name.to_string(),
                        expected: if_match.unwrap_or("no execution").to_string(),
                        found,
                    })
                } else {
                    Err(self.remote(key, crate::error_chain::error_chain(&e)))
                }
            }
        }
    }

    async fn put_plain(&self, key: &str, bytes: Vec<u8>) -> Result<(), CheckpointError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map(drop)
            .map_err(|e| self.remote(key, crate::error_chain::error_chain(&e)))
    }

    fn document(&self, execution: &Execution, events: &[HistoryEvent], until: DateTime<Utc>) -> Vec<u8> {
        let lease = Lease { holder: self.holder.clone(), until };
        let doc = DocumentRef { format: FORMAT, execution, last_events: events, lease };
        let mut bytes = serde_json::to_vec(&doc).expect("a checkpoint serializes");
        bytes.push(b'\n');
        bytes
    }

    async fn history_object(&self, name: &str, events: &[HistoryEvent]) -> Result<(), CheckpointError> {
        let Some(first) = events.first() else { return Ok(()) };
        let mut bytes = Vec::new();
        for event in events {
            serde_json::to_writer(&mut bytes, event).expect("events serialize");
            bytes.push(b'\n');
        }
        self.put_plain(&self.key(name, &format!("history/{:012}.jsonl", first.id)), bytes).await
    }

    /// The checkpoint document, its ETag, and the definition.
    async fn document_of(&self, name: &str) -> Result<(Document, String, Value), CheckpointError> {
        let key = self.key(name, "checkpoint.json");
        let Some((bytes, etag)) = self.get(&key).await? else {
            return Err(CheckpointError::NotFound {
                name: name.to_string(),
                dir: self.url(&self.prefix).into(),
            });
        };
        let raw: Value = serde_json::from_slice(&bytes).map_err(|e| CheckpointError::Corrupt {
            path: self.url(&key).into(),
            reason: format!("not JSON: {e}"),
        })?;
        match raw.get("format").and_then(Value::as_u64) {
            Some(f) if READS.contains(&f) => {}
            other => {
                return Err(CheckpointError::UnknownFormat {
                    path: self.url(&key).into(),
                    found: other.map_or("none".into(), |f| f.to_string()),
                });
            }
        }
        let doc: Document = serde_json::from_value(raw)
            .map_err(|e| CheckpointError::Corrupt { path: self.url(&key).into(), reason: e.to_string() })?;
        let def_key = self.key(name, "definition.json");
        let definition = match self.get(&def_key).await? {
            Some((bytes, _)) => serde_json::from_slice(&bytes).map_err(|e| CheckpointError::Corrupt {
                path: self.url(&def_key).into(),
                reason: format!("not JSON: {e}"),
            })?,
            None => {
                return Err(CheckpointError::Corrupt {
                    path: self.url(&def_key).into(),
                    reason: "missing".into(),
                });
            }
        };
        Ok((doc, etag, definition))
    }

    /// Every history event up to the checkpoint, the checkpoint's own last events included.
    async fn events(&self, name: &str, doc: &Document) -> Result<Vec<HistoryEvent>, CheckpointError> {
        let prefix = self.key(name, "history/");
        let mut keys = Vec::new();
        let mut pages =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(&prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.remote(&prefix, crate::error_chain::error_chain(&e)))?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        }
        keys.sort();
        let last = doc.execution.last_event_id;
        let mut events: Vec<HistoryEvent> = Vec::new();
        for key in keys {
            let Some((bytes, _)) = self.get(&key).await? else { continue };
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let event: HistoryEvent = serde_json::from_slice(line).map_err(|e| {
                    CheckpointError::Corrupt { path: self.url(&key).into(), reason: e.to_string() }
                })?;
                if event.id <= last && events.last().is_none_or(|p| event.id > p.id) {
                    events.push(event);
                }
            }
        }
        for event in &doc.last_events {
            if events.last().is_none_or(|p| event.id > p.id) {
                events.push(event.clone());
            }
        }
        Ok(events)
    }

    async fn stored(&self, name: &str) -> Result<(Stored, Document), CheckpointError> {
        let (doc, etag, definition) = self.document_of(name).await?;
        let events = self.events(name, &doc).await?;
        let mut execution = doc.execution.clone();
        execution.rehydrate(&events);
        Ok((Stored { definition, execution, version: Version(etag) }, doc))
    }
}

#[async_trait::async_trait]
impl ExecutionStore for S3Store {
    async fn commit(
        &self,
        execution: &Execution,
        events: &[HistoryEvent],
        definition: Option<&Value>,
        precondition: Precondition,
    ) -> Result<Version, CheckpointError> {
        let name = &execution.name;
        let key = self.key(name, "checkpoint.json");
        let doc = self.document(execution, events, lease_end());
        let etag = match &precondition {
            Precondition::DoesNotExist => {
                if self.get(&key).await?.is_some() {
                    return Err(CheckpointError::Exists {
                        name: name.clone(),
                        dir: self.url(&self.prefix).into(),
                    });
                }
                let def =
                    serde_json::to_vec_pretty(definition.unwrap_or(&Value::Null)).expect("JSON serializes");
                self.put_plain(&self.key(name, "definition.json"), def).await?;
                self.put(name, &key, doc, None).await?
            }
            Precondition::Matches(Version(etag)) => self.put(name, &key, doc, Some(etag)).await?,
        };
        // After the checkpoint: only the writer that won may extend the history.
        self.history_object(name, events).await?;
        Ok(Version(etag))
    }

    async fn load(&self, name: &str) -> Result<Stored, CheckpointError> {
        let (mut stored, doc) = self.stored(name).await?;
        if let Some(lease) = doc.lease.filter(|l| l.holder != self.holder && l.until > Utc::now()) {
            let pid = lease.holder.rsplit(':').next().and_then(|p| p.parse().ok());
            return Err(CheckpointError::Locked {
                name: format!("{name} (held by {} until {})", lease.holder, lease.until),
                pid,
            });
        }
        // The claim: the same state with this process's lease, written only if nobody moved
        // the execution since it was read.
        let key = self.key(name, "checkpoint.json");
        let bytes = self.document(&doc.execution, &doc.last_events, lease_end());
        let etag = self.put(name, &key, bytes, Some(&stored.version.0)).await?;
        // The history object a crash may have left unwritten.
        self.history_object(name, &doc.last_events).await?;
        stored.version = Version(etag);
        Ok(stored)
    }

    async fn read(&self, name: &str) -> Result<Stored, CheckpointError> {
        Ok(self.stored(name).await?.0)
    }

    async fn list(&self) -> Result<Vec<Result<Execution, CheckpointError>>, CheckpointError> {
        let mut names = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.remote(&self.prefix, crate::error_chain::error_chain(&e)))?;
            for p in page.common_prefixes() {
                if let Some(name) = p.prefix().and_then(|p| p.strip_prefix(&self.prefix)) {
                    names.push(name.trim_end_matches('/').to_string());
                }
            }
        }
        let mut out = Vec::new();
        for name in names {
            match self.stored(&name).await {
                Err(CheckpointError::NotFound { .. }) => {}
                other => out.push(other.map(|(s, _)| s.execution)),
            }
        }
        out.sort_by_key(|r| r.as_ref().map(|e| e.start_time).ok());
        Ok(out)
    }

    async fn history(&self, name: &str) -> Result<Vec<HistoryEvent>, CheckpointError> {
        let (doc, _, _) = self.document_of(name).await?;
        self.events(name, &doc).await
    }

    async fn release(&self, name: &str) -> Result<(), CheckpointError> {
        let (doc, etag, _) = self.document_of(name).await?;
        if doc.lease.as_ref().is_none_or(|l| l.holder != self.holder) {
            return Ok(());
        }
        let key = self.key(name, "checkpoint.json");
        let bytes = self.document(&doc.execution, &doc.last_events, Utc::now());
        self.put(name, &key, bytes, Some(&etag)).await.map(drop)
    }
}

/// When a lease taken or renewed now runs out.
fn lease_end() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::seconds(LEASE_SECONDS)
}

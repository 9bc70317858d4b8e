//! The publish itself: read every `.out` file line by line, write the parts as they fill, then
//! the manifest, the clean-up of stale parts, and last `latest.json`.

use std::collections::HashSet;

use aws_sdk_s3::Client;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::BufReader;

use super::lines::{LineError, LineReader, MAX_LINE_BYTES};
use super::ranged::{self, Object, RangedBody};
use super::select::{Outcome, Selection};
use super::store::{self, Listed};
use super::{PicksError, PublishOptions, PublishPicks, S3Location};

/// Room for the line that overflows a part, before it moves on to the next one.
const LINE_SLACK: usize = 256 << 10;
/// The read buffer of each `.out` body.
const READ_BUFFER: usize = 256 << 10;
/// Error lines quoted in the manifest.
const ERROR_SAMPLES: usize = 10;
/// Longest error message quoted in the manifest, in bytes.
const ERROR_SAMPLE_BYTES: usize = 1024;
const MANIFEST: &str = "manifest.json";
const LATEST: &str = "latest.json";
const MANIFEST_FORMAT: u32 = 1;

pub(super) async fn publish(
    s3: &Client,
    request: &PublishPicks,
    options: &PublishOptions,
) -> Result<Value, PicksError> {
    request.check().map_err(PicksError::InvalidParameters)?;
    let inputs = inputs(s3, &request.batch_output).await?;
    let day = S3Location {
        bucket: request.destination.bucket.clone(),
        prefix: request.destination.key(&format!("{}/", request.date)),
    };

    let mut selection =
        Selection::new(request.top_n, request.exclude_items.iter().cloned().collect(), request.min_score);
    let mut parts = Parts::new(s3, &day, options.part_bytes.max(1));
    let mut errors = ErrorLines::default();
    let mut files = Vec::with_capacity(inputs.len());
    for input in &inputs {
        let object = Object {
            s3: s3.clone(),
            bucket: request.batch_output.bucket.clone(),
            key: input.key.clone(),
            size: input.size,
            etag: input.etag.clone(),
        };
        let body = RangedBody::new(object, options.range_bytes, options.ranges_ahead);
        let file = store::uri(&request.batch_output.bucket, &input.key);
        let lines = read(body, &file, &mut selection, &mut parts, &mut errors).await?;
        files.push(json!({"key": input.key, "bytes": input.size, "etag": input.etag, "lines": lines}));
    }
    parts.finish().await?;
    let checksum = format!("sha256:{}", hex::encode(parts.overall.clone().finalize()));

    let manifest = json!({
        "format": MANIFEST_FORMAT,
        "date": request.date,
        "location": day.to_string(),
        "users": parts.total_users,
        "usersWithErrors": errors.count,
        "items": parts.total_items,
        "topN": request.top_n,
        "excludeItems": request.exclude_items,
        "minScore": request.min_score,
        "source": {
            "batchOutput": request.batch_output.to_string(),
            "batchInferenceJobArn": request.source_job_arn,
            "solutionVersionArn": request.solution_version_arn,
            "files": files,
        },
        "errorSamples": errors.samples,
        "parts": parts.written.iter().map(|p| json!({
            "key": p.key, "bytes": p.bytes, "users": p.users, "items": p.items, "sha256": p.sha256,
        })).collect::<Vec<_>>(),
        "checksum": checksum,
    });
    put_json(s3, &day.bucket, &day.key(MANIFEST), &manifest).await?;

    let written: HashSet<&str> = parts.written.iter().map(|p| p.key.as_str()).collect();
    delete_stale_parts(s3, &day, &written).await?;

    let latest = json!({"date": request.date, "manifest": day.uri(MANIFEST), "location": day.to_string()});
    put_json(s3, &request.destination.bucket, &request.destination.key(LATEST), &latest).await?;

    tracing::info!(
        location = %day,
        users = parts.total_users,
        users_with_errors = errors.count,
        parts = parts.written.len(),
        items = parts.total_items,
        "published the day's picks"
    );
    Ok(json!({
        "PicksLocation": day.to_string(),
        "Manifest": day.uri(MANIFEST),
        "Latest": request.destination.uri(LATEST),
        "Users": parts.total_users,
        "UsersWithErrors": errors.count,
        "Parts": parts.written.len(),
        "Items": parts.total_items,
        "Checksum": checksum,
    }))
}

/// The `.out` objects under the batch output prefix, in key order.
async fn inputs(s3: &Client, location: &S3Location) -> Result<Vec<Listed>, PicksError> {
    let no_input = |reason: String| PicksError::NoInput { location: location.to_string(), reason };
    let Some(objects) = store::list(s3, location).await? else {
        return Err(no_input(format!("the bucket {} does not exist", location.bucket)));
    };
    let total = objects.len();
    let outs: Vec<Listed> = objects.into_iter().filter(|o| o.key.ends_with(".out")).collect();
    match (total, outs.len()) {
        (0, _) => Err(no_input("there is no object under the prefix".into())),
        (n, 0) => Err(no_input(format!("none of the {n} objects under the prefix ends in .out"))),
        _ => Ok(outs),
    }
}

/// Reads one `.out` file into the parts; returns its number of lines.
async fn read(
    body: RangedBody,
    file: &str,
    selection: &mut Selection,
    parts: &mut Parts<'_>,
    errors: &mut ErrorLines,
) -> Result<u64, PicksError> {
    let file = || file.to_owned();
    let mut lines = LineReader::new(BufReader::with_capacity(READ_BUFFER, body));
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(lines.line),
            Err(LineError::Io(err)) => {
                return Err(ranged::picks_error(err).unwrap_or_else(|source| PicksError::Read {
                    file: file(),
                    line: lines.line + 1,
                    source,
                }));
            }
            Err(LineError::TooLong) => {
                let reason = format!("the line is longer than {} MiB", MAX_LINE_BYTES >> 20);
                return Err(PicksError::MalformedOutput { file: file(), line: lines.line + 1, reason });
            }
        };
        let before = parts.buffer.len();
        match selection.pick(line, &mut parts.buffer) {
            Ok(Outcome::Picks(items)) => parts.added(before, items).await?,
            Ok(Outcome::Error { user_id, error }) => errors.record(user_id, error),
            Ok(Outcome::Blank) => {}
            Err(reason) => {
                parts.buffer.truncate(before);
                return Err(PicksError::MalformedOutput { file: file(), line: lines.line, reason });
            }
        }
    }
}

#[derive(Default)]
struct ErrorLines {
    count: u64,
    samples: Vec<Value>,
}

impl ErrorLines {
    fn record(&mut self, user_id: Option<String>, mut error: String) {
        self.count += 1;
        if self.samples.len() < ERROR_SAMPLES {
            if error.len() > ERROR_SAMPLE_BYTES {
                let mut end = ERROR_SAMPLE_BYTES;
                while !error.is_char_boundary(end) {
                    end -= 1;
                }
                error.truncate(end);
                error.push('…');
            }
            self.samples.push(json!({"userId": user_id, "error": error}));
        }
    }
}

struct Part {
    key: String,
    bytes: usize,
    users: u64,
    items: u64,
    sha256: String,
}

/// The part being filled, uploaded when full: the only buffer that grows with the output.
struct Parts<'a> {
    s3: &'a Client,
    day: &'a S3Location,
    limit: usize,
    buffer: Vec<u8>,
    /// Users and items in `buffer`.
    users: u64,
    items: u64,
    written: Vec<Part>,
    total_users: u64,
    total_items: u64,
    /// Over every part's bytes, in order.
    overall: Sha256,
}

impl<'a> Parts<'a> {
    fn new(s3: &'a Client, day: &'a S3Location, limit: usize) -> Self {
        Parts {
            s3,
            day,
            limit,
            buffer: Vec::new(),
            users: 0,
            items: 0,
            written: Vec::new(),
            total_users: 0,
            total_items: 0,
            overall: Sha256::new(),
        }
    }

    fn fresh_buffer(&self) -> Vec<u8> {
        Vec::with_capacity(self.limit.saturating_add(LINE_SLACK))
    }

    /// One user's line of `items` was appended to the buffer, which held `before` bytes.
    async fn added(&mut self, before: usize, items: usize) -> Result<(), PicksError> {
        let items = items as u64;
        self.users += 1;
        self.items += items;
        self.total_users += 1;
        self.total_items += items;
        if self.buffer.len() <= self.limit {
            return Ok(());
        }
        if before > 0 {
            // The new line overflows the part: it starts the next one.
            let mut next = self.fresh_buffer();
            next.extend_from_slice(&self.buffer[before..]);
            self.buffer.truncate(before);
            let full = std::mem::replace(&mut self.buffer, next);
            self.upload(full, self.users - 1, self.items - items).await?;
            self.users = 1;
            self.items = items;
        }
        if self.buffer.len() > self.limit {
            // A line longer than a part is a part of its own.
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), PicksError> {
        let next = self.fresh_buffer();
        let full = std::mem::replace(&mut self.buffer, next);
        self.upload(full, self.users, self.items).await?;
        self.users = 0;
        self.items = 0;
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), PicksError> {
        if !self.buffer.is_empty() {
            self.flush().await?;
        }
        self.buffer = Vec::new();
        Ok(())
    }

    async fn upload(&mut self, part: Vec<u8>, users: u64, items: u64) -> Result<(), PicksError> {
        let sha256: [u8; 32] = Sha256::digest(&part).into();
        self.overall.update(&part);
        let key = self.day.key(&part_name(self.written.len()));
        let bytes = part.len();
        store::put(self.s3, &self.day.bucket, &key, part, &sha256, "application/x-ndjson").await?;
        self.written.push(Part { key, bytes, users, items, sha256: hex::encode(sha256) });
        Ok(())
    }
}

fn part_name(index: usize) -> String {
    format!("part-{index:05}.jsonl")
}

/// Whether `name` (a key relative to the day prefix) is a part: `part-<digits>.jsonl`.
fn is_part_name(name: &str) -> bool {
    name.strip_prefix("part-")
        .and_then(|rest| rest.strip_suffix(".jsonl"))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Deletes the parts under the day prefix that this run did not write: those of an earlier run
/// of the same date that had more parts. Other objects there are left alone.
async fn delete_stale_parts(
    s3: &Client,
    day: &S3Location,
    written: &HashSet<&str>,
) -> Result<(), PicksError> {
    let existing = store::list(s3, day).await?.unwrap_or_default();
    let stale: Vec<String> = existing
        .into_iter()
        .map(|o| o.key)
        .filter(|key| {
            key.strip_prefix(day.prefix.as_str()).is_some_and(is_part_name) && !written.contains(key.as_str())
        })
        .collect();
    if !stale.is_empty() {
        tracing::info!(location = %day, stale = stale.len(), "deleting parts of an earlier run");
        store::delete(s3, &day.bucket, &stale).await?;
    }
    Ok(())
}

async fn put_json(s3: &Client, bucket: &str, key: &str, value: &Value) -> Result<(), PicksError> {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    let sha256: [u8; 32] = Sha256::digest(&body).into();
    store::put(s3, bucket, key, body, &sha256, "application/json").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names() {
        assert_eq!(part_name(0), "part-00000.jsonl");
        assert_eq!(part_name(123_456), "part-123456.jsonl");
        assert!(is_part_name("part-00012.jsonl"));
        assert!(!is_part_name("part-.jsonl"));
        assert!(!is_part_name("part-0001.json"));
        assert!(!is_part_name("manifest.json"));
        assert!(!is_part_name("x/part-00001.jsonl"));
    }
}

//! "Today's picks": the recflow task `arn:recflow:::picks:publish`, which turns the output of an
//! Amazon Personalize batch inference job into the day's published picks.
//!
//! **Input.** Every object under `BatchOutputPath` whose key ends in `.out`, in key order (other
//! objects, such as `_SUCCESS` or manifests, are ignored). Each is JSON Lines, one line per
//! user, as Personalize writes them:
//! `{"input": {"userId": "u1"}, "output": {"recommendedItems": ["i12", "i7"], "scores": [0.31, 0.2]}, "error": null}`.
//! Items are ranked best first; recipes without scores (popularity, related items) leave out
//! `scores`; a failed line has a non-null `"error"` and is not published: it is counted in
//! `UsersWithErrors`, and the first 10 are quoted in the manifest. Every other line must name
//! its user in `input.userId` (output keyed by `itemId` is not per-user picks): a line that
//! does not, or is not JSON, fails the task with `Recflow.PicksMalformedOutput`, naming the
//! file and the line.
//!
//! **Output**, under `PicksPath` (say `s3://b/picks/`) for `Date` 2026-11-29:
//! - `2026-11-29/part-00000.jsonl`, `part-00001.jsonl`, ...: one line per user,
//!   `{"userId":"u1","items":["i12","i7"],"scores":[0.31,0.2]}`, in input order; the first
//!   `TopN` items that are not in `ExcludeItems` and score at least `MinScore`. `scores` only
//!   when the input had them; a user with no items left gets `"items":[]`. Item ids, user ids
//!   and scores are copied as the input wrote them. Each part holds at most [`PART_BYTES`]
//!   (unless one line alone is longer), and is stored with its SHA-256 as its S3 checksum, which
//!   S3 verifies on arrival.
//! - `2026-11-29/manifest.json`: format 1, the counts, every part's key, size and SHA-256, the
//!   source files, job and solution version, the options, up to 10 sample error lines and the
//!   overall checksum (SHA-256 over the parts' contents in order). No wall-clock time is
//!   recorded: the same input gives byte-identical objects.
//! - `latest.json`: `{"date", "manifest", "location"}`, replaced only once every part and the
//!   manifest are stored, so a reader that follows it never sees half a day. A failed run
//!   leaves the previous `latest.json` as it was.
//!
//! A re-run for the same date overwrites the same keys and deletes the parts that an earlier
//! run with more parts left behind (before `latest.json` is replaced). While a re-run is under
//! way, a reader of that same day's old manifest may find parts already replaced: the
//! manifest's per-part SHA-256 tells.
//!
//! Memory is flat in the size of the input and output: one part buffer, one read buffer, and a
//! line. Lines are parsed borrowed from the read buffer, with no allocation per line. Each
//! `.out` object is read as consecutive byte ranges (one GetObject body each, read through
//! `into_async_read` and a `BufReader`), the next two already requested while the current one
//! is read: one GetObject stream is slower than the parsing. What those deliver early waits in
//! their connections' (bounded) buffers.

mod lines;
mod params;
mod ranged;
mod run;
mod select;
mod store;

use std::fmt;

/// A part is uploaded once it would grow past this many bytes.
pub const PART_BYTES: usize = 8 << 20;
/// Each `.out` object is read in ranges of this many bytes.
pub const RANGE_BYTES: u64 = 8 << 20;
/// Ranges requested ahead of the one being read.
pub const RANGES_AHEAD: usize = 2;

/// The Resource of the task in a state machine.
pub const RESOURCE: &str = "arn:recflow:::picks:publish";

/// A bucket and a key prefix: `s3://bucket/prefix/`. The prefix is empty or ends in `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub prefix: String,
}

impl S3Location {
    /// Reads `s3://bucket/prefix/`; a prefix without its trailing `/` gets one, so that
    /// `s3://b/out` never matches `s3://b/output/`.
    pub fn parse(uri: &str) -> Result<S3Location, String> {
        let bad = |why: &str| format!("must be an s3:// path, s3://bucket/prefix/, not {uri:?} ({why})");
        let rest = uri.strip_prefix("s3://").ok_or_else(|| bad("no s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket"));
        }
        if !bucket.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
            return Err(bad("the bucket name has characters S3 does not allow"));
        }
        if prefix.split('/').any(|segment| segment == "." || segment == "..") {
            return Err(bad("the prefix has a . or .. segment"));
        }
        let mut prefix = prefix.to_owned();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(S3Location { bucket: bucket.to_owned(), prefix })
    }

    /// The key of `name` under this prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// `s3://bucket/<key of name>`.
    pub fn uri(&self, name: &str) -> String {
        format!("s3://{}/{}{name}", self.bucket, self.prefix)
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Parameters of arn:recflow:::picks:publish (PascalCase like Step Functions' AWS SDK integrations).
#[derive(Debug, Clone, PartialEq)]
pub struct PublishPicks {
    /// "BatchOutputPath": "s3://bucket/prefix/" (the batch job's JobOutput path).
    pub batch_output: S3Location,
    /// "PicksPath": "s3://bucket/picks/".
    pub destination: S3Location,
    /// "Date": "2026-11-29" (YYYY-MM-DD, checked).
    pub date: String,
    /// "TopN", default 10, 1..=500.
    pub top_n: usize,
    /// "ExcludeItems", optional: item ids never picked.
    pub exclude_items: Vec<String>,
    /// "MinScore", optional: items scoring below it are not picked. Lines without scores
    /// (popularity and related-items recipes) are then kept whole, up to TopN: there is nothing
    /// to compare.
    pub min_score: Option<f64>,
    /// "BatchInferenceJobArn", for the manifest.
    pub source_job_arn: Option<String>,
    /// "SolutionVersionArn", for the manifest.
    pub solution_version_arn: Option<String>,
}

impl PublishPicks {
    /// Reads and checks the Parameters; errors name the field ("TopN: must be 1 to 500, not 0"),
    /// several joined by "; ".
    pub fn from_parameters(params: &serde_json::Value) -> Result<PublishPicks, String> {
        params::from_parameters(params)
    }

    /// The static check at validate time: unknown parameter names (with a did-you-mean), missing
    /// required ones, and wrong types of literal values; keys ending in ".$" are dynamic: check
    /// only the name without ".$". Each message names the field.
    pub fn check_static(params: &serde_json::Value) -> Vec<String> {
        params::check_static(params)
    }

    /// What `from_parameters` would have refused, for a request built in code.
    fn check(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !(1..=params::MAX_TOP_N).contains(&self.top_n) {
            problems.push(format!("TopN: must be 1 to {}, not {}", params::MAX_TOP_N, self.top_n));
        }
        if let Err(message) = params::date(&serde_json::Value::from(self.date.as_str())) {
            problems.push(format!("Date: {message}"));
        }
        if self.min_score.is_some_and(|s| !s.is_finite()) {
            problems.push("MinScore: must be a finite number".into());
        }
        for (name, location) in [("BatchOutputPath", &self.batch_output), ("PicksPath", &self.destination)] {
            if let Err(message) = S3Location::parse(&location.to_string()) {
                problems.push(format!("{name}: {message}"));
            } else if !location.prefix.is_empty() && !location.prefix.ends_with('/') {
                problems.push(format!("{name}: the prefix must end in /"));
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }
}

/// Why a publish failed. `Display` is the cause; [`PicksError::error_name`] the Step Functions
/// error name for Retry and Catch.
#[derive(Debug, thiserror::Error)]
pub enum PicksError {
    /// A request built in code that `from_parameters` would have refused.
    #[error("invalid parameters: {0}")]
    InvalidParameters(String),
    /// Nothing to publish: no bucket, nothing under the prefix, or no `.out` object there.
    #[error("no batch inference output at {location}: {reason}")]
    NoInput { location: String, reason: String },
    /// A line of a `.out` file that is not batch inference output.
    #[error("{file} line {line}: {reason}")]
    MalformedOutput { file: String, line: u64, reason: String },
    /// An S3 call failed: S3's error code and message, or why no answer came.
    #[error("S3 {operation} {target} failed: {code}: {message}")]
    S3 { operation: &'static str, target: String, code: String, message: String },
    /// The body of a `.out` file broke off while it was read.
    #[error("reading {file} failed at line {line}: {source}")]
    Read {
        file: String,
        line: u64,
        #[source]
        source: std::io::Error,
    },
}

impl PicksError {
    pub fn error_name(&self) -> &'static str {
        match self {
            PicksError::InvalidParameters(_) => "Recflow.PicksInvalidParameters",
            PicksError::NoInput { .. } => "Recflow.PicksNoInput",
            PicksError::MalformedOutput { .. } => "Recflow.PicksMalformedOutput",
            PicksError::S3 { .. } | PicksError::Read { .. } => "States.TaskFailed",
        }
    }
}

/// Streams the batch output and publishes the day's picks; returns the task result (PascalCase):
/// {"PicksLocation": "s3://b/picks/2026-11-29/", "Manifest": "s3://b/picks/2026-11-29/manifest.json",
///  "Latest": "s3://b/picks/latest.json", "Users": n, "UsersWithErrors": k, "Parts": p, "Items": total picks,
///  "Checksum": "sha256:<hex>"}
///
/// `Users` counts the users published (lines written), `UsersWithErrors` the error lines (not
/// published), `Items` the items of all picks.
pub async fn publish(
    s3: &aws_sdk_s3::Client,
    request: &PublishPicks,
) -> Result<serde_json::Value, PicksError> {
    run::publish(s3, request, &PublishOptions::default()).await
}

/// How a publish moves its bytes; the defaults suit S3 and the local emulator alike. Tests use
/// small sizes to get many parts and ranges out of little data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOptions {
    /// A part is uploaded once it would grow past this many bytes ([`PART_BYTES`]); only a
    /// single line longer than that makes a larger part.
    pub part_bytes: usize,
    /// Each `.out` object is read in byte ranges of this size ([`RANGE_BYTES`]), ...
    pub range_bytes: u64,
    /// ... with this many ranges requested ahead of the one being read ([`RANGES_AHEAD`]; 0
    /// reads one range at a time).
    pub ranges_ahead: usize,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions { part_bytes: PART_BYTES, range_bytes: RANGE_BYTES, ranges_ahead: RANGES_AHEAD }
    }
}

/// [`publish`] with other [`PublishOptions`].
pub async fn publish_with(
    s3: &aws_sdk_s3::Client,
    request: &PublishPicks,
    options: &PublishOptions,
) -> Result<serde_json::Value, PicksError> {
    run::publish(s3, request, options).await
}

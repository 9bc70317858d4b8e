//! A team's own interactions instead of the synthetic ones: `recflow local seed --from-csv FILE`
//! reads any CSV with a header (a Personalize export, MovieLens' `ratings.csv`
//! `userId,movieId,rating,timestamp`, ...), maps its columns onto Personalize's interactions
//! schema, and writes the same two objects the synthetic seed writes: the interactions CSV
//! (`USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE`) and the batch input (one `{"userId"}` line per
//! distinct user, in first-seen order). Streams rows; holds only the set of user ids.
//!
//! The demo dataset's schema declares EVENT_TYPE a plain (non-null) string, and Personalize fails
//! an import whose CSV lacks a non-null column or leaves it empty; so a source without event
//! types (or a row with an empty one) gets [`DEFAULT_EVENT_TYPE`].

use std::collections::HashSet;
use std::path::Path;

use super::s3::BucketName;
use super::s3::objects::object_path;
use super::s3::write_object_with;
use super::seed::{INTERACTIONS_KEY, SeedSummary, USERS_KEY};

/// The event type of rows whose source has none.
pub const DEFAULT_EVENT_TYPE: &str = "interaction";

/// Personalize's interactions columns and the header names recognised for each, case-insensitive.
const COLUMNS: &[(&str, &[&str])] = &[
    ("USER_ID", &["user_id", "userid", "user", "customer_id", "visitorid"]),
    ("ITEM_ID", &["item_id", "itemid", "item", "movieid", "movie_id", "product_id", "productid"]),
    ("TIMESTAMP", &["timestamp", "ts", "time", "event_time"]),
    ("EVENT_TYPE", &["event_type", "eventtype", "event"]),
];

/// Which source column feeds each interactions column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnMap {
    pub user: usize,
    pub item: usize,
    pub timestamp: usize,
    pub event_type: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum FromCsvError {
    #[error("{path}: {source}")]
    Csv { path: String, source: csv::Error },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Columns { path: String, message: String },
    #[error("{path}, line {line}: {message}")]
    Row { path: String, line: u64, message: String },
    /// The target bucket breaks S3's naming rules; nothing was written.
    #[error("--bucket: {0}")]
    Bucket(#[from] crate::local::s3::InvalidBucketName),
}

impl ColumnMap {
    /// Maps a header. `explicit` holds `TARGET=source` pairs (`USER_ID=userId`) that win over the
    /// recognised names; USER_ID, ITEM_ID and TIMESTAMP must end up mapped.
    pub fn from_header(
        header: &csv::StringRecord,
        explicit: &[(String, String)],
    ) -> Result<ColumnMap, String> {
        let find = |target: &str| -> Result<Option<usize>, String> {
            if let Some((_, source)) = explicit.iter().find(|(t, _)| t.eq_ignore_ascii_case(target)) {
                return header.iter().position(|h| h == source).map(Some).ok_or_else(|| {
                    format!("--columns {target}={source}: no column '{source}' in the header")
                });
            }
            let names = COLUMNS.iter().find(|(t, _)| *t == target).map(|(_, n)| *n).unwrap_or_default();
            Ok(header.iter().position(|h| {
                let h = h.trim().to_ascii_lowercase();
                h == target.to_ascii_lowercase() || names.contains(&h.as_str())
            }))
        };
        for (target, _) in explicit {
            if !COLUMNS.iter().any(|(t, _)| t.eq_ignore_ascii_case(target)) {
                return Err(format!(
                    "--columns: '{target}' is not one of USER_ID, ITEM_ID, TIMESTAMP, EVENT_TYPE"
                ));
            }
        }
        let required = |target: &str| {
            find(target)?.ok_or_else(|| {
                format!(
                    "no column for {target} in the header ({}); name it with --columns {target}=<column>",
                    header.iter().collect::<Vec<_>>().join(",")
                )
            })
        };
        Ok(ColumnMap {
            user: required("USER_ID")?,
            item: required("ITEM_ID")?,
            timestamp: required("TIMESTAMP")?,
            event_type: find("EVENT_TYPE")?,
        })
    }
}

/// Parses `USER_ID=userId,ITEM_ID=movieId` into pairs.
pub fn parse_columns(spec: &str) -> Result<Vec<(String, String)>, String> {
    spec.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(t, s)| (t.trim().to_string(), s.trim().to_string()))
                .ok_or_else(|| format!("--columns: '{pair}' is not TARGET=column"))
        })
        .collect()
}

/// Converts `source` into the bucket's interactions CSV and batch input. A row with a missing
/// column or a timestamp that is not whole epoch seconds fails the whole load, naming the line;
/// nothing is replaced then (both objects are written to temporary files and renamed).
pub fn load(
    source: &Path,
    s3_root: &Path,
    bucket: &str,
    explicit: &[(String, String)],
) -> Result<SeedSummary, FromCsvError> {
    let bucket = BucketName::parse(bucket)?;
    let path = source.display().to_string();
    let csv_err = |e: csv::Error| FromCsvError::Csv { path: path.clone(), source: e };
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_path(source).map_err(csv_err)?;
    let header = reader.headers().map_err(csv_err)?.clone();
    let map = ColumnMap::from_header(&header, explicit)
        .map_err(|message| FromCsvError::Columns { path: path.clone(), message })?;
    let mut users: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut items: HashSet<String> = HashSet::new();
    let mut rows = 0usize;
    let mut failure: Option<FromCsvError> = None;
    let io_err = |e: std::io::Error| FromCsvError::Io {
        path: object_path(s3_root, &bucket, INTERACTIONS_KEY).display().to_string(),
        source: e,
    };
    write_object_with(s3_root, &bucket, INTERACTIONS_KEY, |w| {
        let mut out = csv::Writer::from_writer(w);
        out.write_record(["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE"])?;
        let mut record = csv::StringRecord::new();
        loop {
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    failure = Some(FromCsvError::Csv { path: path.clone(), source: e });
                    return Err(std::io::Error::other("bad row"));
                }
            }
            let line = record.position().map_or(0, |p| p.line());
            let field = |i: usize| record.get(i).map(str::trim).filter(|v| !v.is_empty());
            let (Some(user), Some(item), Some(ts)) = (field(map.user), field(map.item), field(map.timestamp))
            else {
                failure = Some(FromCsvError::Row {
                    path: path.clone(),
                    line,
                    message: "an empty user, item or timestamp".into(),
                });
                return Err(std::io::Error::other("bad row"));
            };
            // Epoch seconds, as Personalize requires; past the year 5000 they are milliseconds.
            let seconds = ts.parse::<i64>().ok().filter(|s| (0..100_000_000_000).contains(s));
            if seconds.is_none() {
                let why = if ts.parse::<i64>().is_ok() { " (milliseconds?)" } else { "" };
                failure = Some(FromCsvError::Row {
                    path: path.clone(),
                    line,
                    message: format!(
                        "timestamp '{ts}' is not whole epoch seconds{why}, as Personalize requires"
                    ),
                });
                return Err(std::io::Error::other("bad row"));
            }
            let event = map.event_type.and_then(field).unwrap_or(DEFAULT_EVENT_TYPE);
            out.write_record([user, item, ts, event])?;
            if !seen.contains(user) {
                seen.insert(user.to_string());
                users.push(user.to_string());
            }
            if !items.contains(item) {
                items.insert(item.to_string());
            }
            rows += 1;
        }
        if rows == 0 {
            // Nothing to import: keep whatever the bucket held.
            failure = Some(FromCsvError::Columns {
                path: path.clone(),
                message: "no interactions below the header".into(),
            });
            return Err(std::io::Error::other("no rows"));
        }
        out.flush()?;
        Ok(())
    })
    .map_err(|e| failure.take().unwrap_or_else(|| io_err(e)))?;
    write_object_with(s3_root, &bucket, USERS_KEY, |w| {
        for user in &users {
            writeln!(w, "{}", serde_json::json!({ "userId": user }))?;
        }
        Ok(())
    })
    .map_err(|e| FromCsvError::Io {
        path: object_path(s3_root, &bucket, USERS_KEY).display().to_string(),
        source: e,
    })?;
    Ok(SeedSummary {
        interactions_key: INTERACTIONS_KEY.to_owned(),
        users_key: USERS_KEY.to_owned(),
        users: users.len(),
        items: items.len(),
        interactions: rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file of `key` in the test's bucket `bkt`.
    fn stored(dir: &Path, key: &str) -> std::path::PathBuf {
        object_path(&dir.join("s3"), &BucketName::parse("bkt").unwrap(), key)
    }

    #[test]
    fn movielens_ratings_load_with_recognised_columns() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("ratings.csv");
        std::fs::write(&src, "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n7,31,4.0,1260759185\n").unwrap();
        let summary = load(&src, &dir.path().join("s3"), "bkt", &[]).unwrap();
        assert_eq!((summary.users, summary.items, summary.interactions), (2, 2, 3));
        let csv = std::fs::read_to_string(stored(dir.path(), INTERACTIONS_KEY)).unwrap();
        assert_eq!(
            csv,
            "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\n1,31,1260759144,interaction\n1,1029,1260759179,interaction\n\
             7,31,1260759185,interaction\n"
        );
        let users = std::fs::read_to_string(stored(dir.path(), USERS_KEY)).unwrap();
        assert_eq!(users, "{\"userId\":\"1\"}\n{\"userId\":\"7\"}\n");
    }

    #[test]
    fn explicit_columns_win_and_bad_rows_name_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("export.csv");
        std::fs::write(&src, "who,what,when,kind\na,x,10,click\nb,y,soon,buy\n").unwrap();
        let cols = parse_columns("USER_ID=who,ITEM_ID=what,TIMESTAMP=when,EVENT_TYPE=kind").unwrap();
        let err = load(&src, &dir.path().join("s3"), "bkt", &cols).unwrap_err().to_string();
        assert!(
            err.ends_with("line 3: timestamp 'soon' is not whole epoch seconds, as Personalize requires"),
            "{err}"
        );
        assert!(!stored(dir.path(), INTERACTIONS_KEY).exists(), "nothing written");
        let err = load(&src, &dir.path().join("s3"), "bkt", &[]).unwrap_err().to_string();
        assert!(err.contains("no column for USER_ID"), "{err}");
        assert!(parse_columns("USER_ID").is_err());
        std::fs::write(&src, "who,what,when,kind\na,x,10,click\nb,y,11,\n").unwrap();
        load(&src, &dir.path().join("s3"), "bkt", &cols).unwrap();
        let csv = std::fs::read_to_string(stored(dir.path(), INTERACTIONS_KEY)).unwrap();
        assert_eq!(csv, "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\na,x,10,click\nb,y,11,interaction\n");
        std::fs::write(&src, "user_id,item_id,timestamp\na,x,1764000000000\n").unwrap();
        let err = load(&src, &dir.path().join("s3"), "bkt", &[]).unwrap_err().to_string();
        assert!(err.contains("(milliseconds?)"), "{err}");
        std::fs::write(&src, "user_id,item_id,timestamp\n").unwrap();
        let err = load(&src, &dir.path().join("s3"), "bkt", &[]).unwrap_err().to_string();
        assert!(err.ends_with("no interactions below the header"), "{err}");
    }
}

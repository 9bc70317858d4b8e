//! Streaming reader for Personalize interactions CSVs (RFC 4180 quoting, header required), on the
//! `csv` crate.

use std::collections::HashMap;
use std::io::BufRead;

use csv::{ByteRecord, StringRecord};

use super::{ImportError, Interaction};

/// Interactions with user and item ids interned to u32: what training needs, at 16 bytes a row
/// instead of two heap strings per row.
#[derive(Debug, Default, Clone)]
pub struct Dataset {
    pub(crate) user_ids: Vec<String>,
    pub(crate) item_ids: Vec<String>,
    pub(crate) rows: Vec<Row>,
    user_index: HashMap<String, u32>,
    item_index: HashMap<String, u32>,
    /// Per row, its interned EVENT_TYPE ([`NO_EVENT`] for none): kept so that the stored
    /// dataset still holds what filters on `Interactions.EVENT_TYPE` read.
    row_events: Vec<u32>,
    event_types: Vec<String>,
    event_index: HashMap<String, u32>,
}

/// A row without an EVENT_TYPE.
const NO_EVENT: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Row {
    pub user: u32,
    pub item: u32,
    pub timestamp: i64,
}

impl Dataset {
    pub fn new() -> Dataset {
        Dataset::default()
    }

    pub fn from_interactions(interactions: &[Interaction]) -> Dataset {
        let mut d = Dataset::new();
        for i in interactions {
            d.push_event(&i.user_id, &i.item_id, i.timestamp, i.event_type.as_deref());
        }
        d
    }

    pub fn push(&mut self, user_id: &str, item_id: &str, timestamp: i64) {
        self.push_event(user_id, item_id, timestamp, None);
    }

    /// [`Dataset::push`] with the row's EVENT_TYPE.
    pub fn push_event(&mut self, user_id: &str, item_id: &str, timestamp: i64, event_type: Option<&str>) {
        let user = intern(&mut self.user_index, &mut self.user_ids, user_id);
        let item = intern(&mut self.item_index, &mut self.item_ids, item_id);
        self.rows.push(Row { user, item, timestamp });
        let event = event_type.map_or(NO_EVENT, |e| intern(&mut self.event_index, &mut self.event_types, e));
        self.row_events.push(event);
    }

    /// Writes the rows back as an interactions CSV (USER_ID,ITEM_ID,TIMESTAMP, and EVENT_TYPE
    /// when any row has one) that `append_csv` reads: how the emulator stores a dataset between
    /// import and training.
    pub fn write_csv(&self, mut out: impl std::io::Write) -> std::io::Result<()> {
        let events = !self.event_types.is_empty();
        out.write_all(b"USER_ID,ITEM_ID,TIMESTAMP")?;
        out.write_all(if events { &b",EVENT_TYPE\n"[..] } else { &b"\n"[..] })?;
        for (row, &event) in self.rows.iter().zip(&self.row_events) {
            write_field(&mut out, &self.user_ids[row.user as usize])?;
            out.write_all(b",")?;
            write_field(&mut out, &self.item_ids[row.item as usize])?;
            write!(out, ",{}", row.timestamp)?;
            if events {
                out.write_all(b",")?;
                if event != NO_EVENT {
                    write_field(&mut out, &self.event_types[event as usize])?;
                }
            }
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Number of interactions.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn users(&self) -> usize {
        self.user_ids.len()
    }

    pub fn items(&self) -> usize {
        self.item_ids.len()
    }

    /// Appends the rows of an interactions CSV (same rules as [`read_interactions`]); gives the
    /// number added. All or nothing: on an error the dataset is left as it was, as a failed
    /// Personalize import leaves the dataset group's data unchanged.
    pub fn append_csv(&mut self, reader: impl BufRead) -> Result<usize, ImportError> {
        let (rows, users, items) = (self.rows.len(), self.user_ids.len(), self.item_ids.len());
        let events = self.event_types.len();
        match for_each_row(reader, |r| self.push_event(r.user_id, r.item_id, r.timestamp, r.event_type)) {
            Ok(()) => Ok(self.rows.len() - rows),
            Err(e) => {
                self.rows.truncate(rows);
                self.row_events.truncate(rows);
                for id in self.event_types.drain(events..) {
                    self.event_index.remove(&id);
                }
                for id in self.user_ids.drain(users..) {
                    self.user_index.remove(&id);
                }
                for id in self.item_ids.drain(items..) {
                    self.item_index.remove(&id);
                }
                Err(e)
            }
        }
    }
}

fn intern(index: &mut HashMap<String, u32>, ids: &mut Vec<String>, id: &str) -> u32 {
    if let Some(&n) = index.get(id) {
        return n;
    }
    let n = ids.len() as u32;
    ids.push(id.to_owned());
    index.insert(id.to_owned(), n);
    n
}

/// Streams an interactions CSV: header row required (names case-insensitive), USER_ID, ITEM_ID,
/// TIMESTAMP (epoch seconds, integer) required, EVENT_TYPE and EVENT_VALUE optional, other columns
/// ignored; quoted fields allowed. A bad row fails the whole import with the 1-based line number.
pub fn read_interactions(reader: impl BufRead) -> Result<Vec<Interaction>, ImportError> {
    let mut out = Vec::new();
    for_each_row(reader, |r| {
        out.push(Interaction {
            user_id: r.user_id.to_owned(),
            item_id: r.item_id.to_owned(),
            timestamp: r.timestamp,
            event_type: r.event_type.map(str::to_owned),
            event_value: r.event_value,
        })
    })?;
    Ok(out)
}

/// A CSV field, quoted only when it must be.
fn write_field(out: &mut impl std::io::Write, field: &str) -> std::io::Result<()> {
    if field.contains([',', '"', '\n', '\r']) {
        write!(out, "\"{}\"", field.replace('"', "\"\""))
    } else {
        out.write_all(field.as_bytes())
    }
}

/// Same parsing and errors as [`read_interactions`], interning ids as it goes: for large imports.
pub fn read_dataset(reader: impl BufRead) -> Result<Dataset, ImportError> {
    let mut d = Dataset::new();
    d.append_csv(reader)?;
    Ok(d)
}

struct RowRef<'a> {
    user_id: &'a str,
    item_id: &'a str,
    timestamp: i64,
    event_type: Option<&'a str>,
    event_value: Option<f64>,
}

struct Columns {
    user: usize,
    item: usize,
    timestamp: usize,
    event_type: Option<usize>,
    event_value: Option<usize>,
    /// Fields a row needs to reach every column used.
    needed: usize,
}

fn for_each_row(reader: impl BufRead, mut on_row: impl FnMut(RowRef<'_>)) -> Result<(), ImportError> {
    let mut records = Records::new(reader);
    if records.next_record()?.is_none() {
        return Err(ImportError::Empty);
    }
    let columns = header_columns(&records)?;
    while let Some(line) = records.next_record()? {
        let bad = |message: String| ImportError::BadRow { line, message };
        if records.len() < columns.needed {
            return Err(bad(format!("expected at least {} fields, found {}", columns.needed, records.len())));
        }
        let user_id = records.field(columns.user);
        if user_id.is_empty() {
            return Err(bad("USER_ID is empty".into()));
        }
        let item_id = records.field(columns.item);
        if item_id.is_empty() {
            return Err(bad("ITEM_ID is empty".into()));
        }
        let raw_ts = records.field(columns.timestamp);
        let timestamp: i64 = raw_ts.trim().parse().map_err(|_| {
            bad(format!("TIMESTAMP {raw_ts:?} is not an integer (seconds since the Unix epoch)"))
        })?;
        let event_type = columns.event_type.map(|c| records.field(c)).filter(|s| !s.is_empty());
        let event_value = match columns.event_value.map(|c| records.field(c).trim()) {
            None | Some("") => None,
            Some(v) => Some(
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| bad(format!("EVENT_VALUE {v:?} is not a number")))?,
            ),
        };
        on_row(RowRef { user_id, item_id, timestamp, event_type, event_value });
    }
    Ok(())
}

fn header_columns<R: BufRead>(header: &Records<R>) -> Result<Columns, ImportError> {
    let find = |name: &str| {
        (0..header.len()).find(|&i| {
            let h = header.field(i).trim();
            let h = h.strip_prefix('\u{feff}').unwrap_or(h);
            h.eq_ignore_ascii_case(name)
        })
    };
    let required = |name: &str| find(name).ok_or_else(|| ImportError::MissingColumn(name.to_owned()));
    let user = required("USER_ID")?;
    let item = required("ITEM_ID")?;
    let timestamp = required("TIMESTAMP")?;
    let event_type = find("EVENT_TYPE");
    let event_value = find("EVENT_VALUE");
    let needed = [Some(user), Some(item), Some(timestamp), event_type, event_value]
        .into_iter()
        .flatten()
        .max()
        .map_or(0, |m| m + 1);
    Ok(Columns { user, item, timestamp, event_type, event_value, needed })
}

/// Appended to the input. Its newline ends the input's last line; its quote then opens a field
/// that the end of the input leaves open, so the last record read is exactly [`END_RECORD`] --
/// unless the input itself left a quoted field open, which the quote here closes instead (that
/// record then runs to the end, and no [`END_RECORD`] follows it).
const END: &[u8] = b"\n\"x\n";
const END_RECORD: &str = "x\n";

/// CSV records one at a time, through the `csv` crate, into reused buffers. Records end at `\n`
/// (a quoted field may span lines); a `\r` before it is dropped; lines holding nothing but `\r`
/// are blank, and blank lines are skipped. Every field is checked to be UTF-8.
struct Records<R> {
    csv: csv::Reader<std::io::Chain<R, &'static [u8]>>,
    /// The record last handed out by [`Records::next_record`], its buffers reused for the next.
    record: Option<StringRecord>,
    /// The record after it, and the line it starts on: read one ahead so that the last record is
    /// known to be the last.
    ahead: Option<(ByteRecord, u64)>,
}

impl<R: BufRead> Records<R> {
    fn new(reader: R) -> Self {
        let csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(reader.chain(END));
        Records { csv, record: None, ahead: None }
    }

    fn len(&self) -> usize {
        self.record.as_ref().map_or(0, StringRecord::len)
    }

    /// Field i of the current record (i < len); the last field without the line's trailing `\r`.
    fn field(&self, i: usize) -> &str {
        let record = self.record.as_ref().expect("a current record");
        let field = &record[i];
        if i + 1 == record.len() { field.trim_end_matches('\r') } else { field }
    }

    /// Reads the next non-blank record; gives the line it starts on, None at the end.
    fn next_record(&mut self) -> Result<Option<u64>, ImportError> {
        loop {
            let spare = self.record.take().map_or_else(ByteRecord::new, StringRecord::into_byte_record);
            let (bytes, line) = match self.ahead.take() {
                Some(ahead) => ahead,
                None => match self.read(ByteRecord::new())? {
                    Some(first) => first,
                    None => return Ok(None),
                },
            };
            self.ahead = self.read(spare)?;
            let record = StringRecord::from_byte_record(bytes).map_err(|e| {
                let (field, valid_up_to) = (e.utf8_error().field(), e.utf8_error().valid_up_to());
                let bytes = e.into_byte_record();
                let end = bytes.range(field).map_or(0, |r| r.start + valid_up_to);
                let line = line + newlines(&bytes.as_slice()[..end]);
                ImportError::BadRow { line, message: "the line is not valid UTF-8".into() }
            })?;
            if self.ahead.is_none() {
                if record.len() == 1 && &record[0] == END_RECORD {
                    return Ok(None);
                }
                return Err(ImportError::BadRow { line, message: "a quoted field is not closed".into() });
            }
            let blank = record.len() == 1 && !record[0].is_empty() && record[0].bytes().all(|b| b == b'\r');
            self.record = Some(record);
            if !blank {
                return Ok(Some(line));
            }
        }
    }

    /// Reads a record into `buffer`, with the line it starts on; None at the end.
    fn read(&mut self, mut buffer: ByteRecord) -> Result<Option<(ByteRecord, u64)>, ImportError> {
        let more = self.csv.read_byte_record(&mut buffer).map_err(|e| match e.into_kind() {
            csv::ErrorKind::Io(e) => ImportError::Io(e),
            // Not raised by a flexible reader of byte records.
            kind => ImportError::Io(std::io::Error::other(format!("{kind:?}"))),
        })?;
        if !more {
            return Ok(None);
        }
        // Every record ends with a newline (END supplies the last), counted in the reader's line
        // (1-based) once read; blank lines skipped before the record are counted too, so the
        // record's first line is found by counting back.
        let line = self.csv.position().line() - 1 - newlines(buffer.as_slice());
        Ok(Some((buffer, line)))
    }
}

fn newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &str) -> Result<Vec<Interaction>, ImportError> {
        read_interactions(s.as_bytes())
    }

    fn row(u: &str, i: &str, t: i64) -> Interaction {
        Interaction {
            user_id: u.into(),
            item_id: i.into(),
            timestamp: t,
            event_type: None,
            event_value: None,
        }
    }

    #[test]
    fn header_names_are_case_insensitive_and_extra_columns_ignored() {
        let got = read("timestamp,Item_Id,SHOE_SIZE,user_id\r\n100,i1,42,u1\r\n200,i2,,u2\r\n").unwrap();
        assert_eq!(got, vec![row("u1", "i1", 100), row("u2", "i2", 200)]);
    }

    #[test]
    fn quoted_fields_with_commas_quotes_and_newlines() {
        let got = read("USER_ID,ITEM_ID,TIMESTAMP\n\"u,1\",\"say \"\"hi\"\"\",\"5\"\n\"multi\nline\",i,6\n")
            .unwrap();
        assert_eq!(got, vec![row("u,1", "say \"hi\"", 5), row("multi\nline", "i", 6)]);
    }

    #[test]
    fn optional_event_columns() {
        let got =
            read("USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\nu,i,1,click,0.5\nu,j,2,,\n").unwrap();
        assert_eq!(got[0].event_type.as_deref(), Some("click"));
        assert_eq!(got[0].event_value, Some(0.5));
        assert_eq!(got[1].event_type, None);
        assert_eq!(got[1].event_value, None);
    }

    #[test]
    fn missing_required_column() {
        let err = read("USER_ID,TIMESTAMP\nu,1\n").unwrap_err();
        assert!(matches!(&err, ImportError::MissingColumn(c) if c == "ITEM_ID"), "{err}");
        assert_eq!(
            err.to_string(),
            "the header has no ITEM_ID column (USER_ID, ITEM_ID and TIMESTAMP are required)"
        );
    }

    #[test]
    fn bad_timestamp_reports_its_line() {
        let err = read("USER_ID,ITEM_ID,TIMESTAMP\nu,i,1\n\"a\nb\",i,2\nu,i,yesterday\n").unwrap_err();
        assert!(matches!(err, ImportError::BadRow { line: 5, .. }), "{err}");
        assert!(err.to_string().starts_with("line 5: TIMESTAMP \"yesterday\""), "{err}");
        let err = read("USER_ID,ITEM_ID,TIMESTAMP\nu,i,1.5\n").unwrap_err();
        assert!(matches!(err, ImportError::BadRow { line: 2, .. }), "{err}");
    }

    #[test]
    fn short_rows_bad_values_and_unclosed_quotes_fail() {
        let err = read("USER_ID,ITEM_ID,TIMESTAMP\nu,i\n").unwrap_err();
        assert!(matches!(err, ImportError::BadRow { line: 2, .. }), "{err}");
        let err = read("USER_ID,ITEM_ID,TIMESTAMP,EVENT_VALUE\nu,i,1,lots\n").unwrap_err();
        assert!(matches!(err, ImportError::BadRow { line: 2, .. }), "{err}");
        let err = read("USER_ID,ITEM_ID,TIMESTAMP\nu,i,1\n\"u,i,1\n").unwrap_err();
        assert!(matches!(err, ImportError::BadRow { line: 3, .. }), "{err}");
        let err = read("USER_ID,ITEM_ID,TIMESTAMP\n,i,1\n").unwrap_err();
        assert!(matches!(err, ImportError::BadRow { line: 2, .. }), "{err}");
    }

    #[test]
    fn line_numbers_count_blank_lines_crlf_and_quoted_newlines() {
        let csv = "USER_ID,ITEM_ID,TIMESTAMP\r\n\r\n\nu,i,1\r\n\"a\r\nb\",i,2\r\n\r\nu,i,x\r\n";
        let err = read(csv).unwrap_err();
        assert!(matches!(err, ImportError::BadRow { line: 8, .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "line 8: TIMESTAMP \"x\" is not an integer (seconds since the Unix epoch)"
        );
    }

    #[test]
    fn line_ends_are_dropped_and_lone_carriage_returns_kept() {
        let got = read("USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\r\nu\rv,\"i\r\",1,click\r\r\n").unwrap();
        assert_eq!((got[0].user_id.as_str(), got[0].item_id.as_str()), ("u\rv", "i\r"));
        assert_eq!(got[0].event_type.as_deref(), Some("click"));
    }

    #[test]
    fn invalid_utf8_and_unclosed_quotes_name_their_line() {
        let bytes = |b: &[u8]| read_interactions(b).unwrap_err().to_string();
        assert_eq!(
            bytes(b"USER_ID,ITEM_ID,TIMESTAMP\nu,i,1\n\"a\nb\xff\",i,2\n"),
            "line 4: the line is not valid UTF-8"
        );
        assert_eq!(
            bytes(b"USER_ID,ITEM_ID,TIMESTAMP,X\nu,i,1,\xc3\n"),
            "line 2: the line is not valid UTF-8"
        );
        assert_eq!(bytes(b"USER\xff_ID,ITEM_ID,TIMESTAMP\n"), "line 1: the line is not valid UTF-8");
        let err = read("USER_ID,ITEM_ID,TIMESTAMP\nu,i,1\nu,i,\"2\nv,j,3\n").unwrap_err();
        assert_eq!(err.to_string(), "line 3: a quoted field is not closed");
        let err = read("\"USER_ID,ITEM_ID,TIMESTAMP\n").unwrap_err();
        assert_eq!(err.to_string(), "line 1: a quoted field is not closed");
        // A field holding what the reader appends to its input is just a field.
        let got = read("USER_ID,ITEM_ID,TIMESTAMP\nu,\"x\n\",1\n\"x\n\"").unwrap_err();
        assert_eq!(got.to_string(), "line 4: expected at least 3 fields, found 1");
    }

    #[test]
    fn empty_file_and_header_only() {
        assert!(matches!(read(""), Err(ImportError::Empty)));
        assert!(matches!(read("\n\n"), Err(ImportError::Empty)));
        assert_eq!(read("USER_ID,ITEM_ID,TIMESTAMP\n").unwrap(), vec![]);
    }

    #[test]
    fn bom_blank_lines_and_no_trailing_newline() {
        let got = read("\u{feff}USER_ID,ITEM_ID,TIMESTAMP\n\nu,i,7").unwrap();
        assert_eq!(got, vec![row("u", "i", 7)]);
    }

    #[test]
    fn dataset_interns_ids() {
        let d = read_dataset("USER_ID,ITEM_ID,TIMESTAMP\na,x,1\nb,x,2\na,y,3\n".as_bytes()).unwrap();
        assert_eq!((d.len(), d.users(), d.items()), (3, 2, 2));
        assert_eq!(d.rows[2], Row { user: 0, item: 1, timestamp: 3 });
    }

    #[test]
    fn a_failed_append_leaves_the_dataset_unchanged() {
        let mut d = read_dataset("USER_ID,ITEM_ID,TIMESTAMP\na,x,1\n".as_bytes()).unwrap();
        let err = d.append_csv("USER_ID,ITEM_ID,TIMESTAMP\nb,y,2\nc,z,oops\n".as_bytes()).unwrap_err();
        assert!(matches!(err, ImportError::BadRow { line: 3, .. }), "{err}");
        assert_eq!((d.len(), d.users(), d.items()), (1, 1, 1));
        assert_eq!(d.append_csv("item_id,user_id,timestamp\ny,b,2\nx,a,3\n".as_bytes()).unwrap(), 2);
        assert_eq!((d.len(), d.users(), d.items()), (3, 2, 2));
        assert_eq!(d.rows[2], Row { user: 0, item: 0, timestamp: 3 });
    }
}

//! Streamed batch inference and batch segments over JSON Lines.
//!
//! The input is read in rounds of a bounded number of lines; each round is split between the
//! workers (one per core, each with its own reusable scoring buffers and output buffer) and their
//! outputs are written in input order. Memory is therefore flat in the size of the input.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, BufRead, BufWriter, Write};

use serde::Deserialize;

use super::Recipe;
use super::filter::{ItemFilter, Subject};
use super::model::{Model, Scorer, SegmentScorer, worker_count};

/// Lines each worker handles per round.
const LINES_PER_WORKER: usize = 2_048;
/// Rounds smaller than this are not worth spawning threads for.
const PARALLEL_MIN_LINES: usize = 256;

/// Counts of a batch run: input lines answered (blank lines are skipped) and how many of them
/// were errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    pub lines: u64,
    pub errors: u64,
}

/// Batch inference: JSON Lines in, one JSON line out per input line, streamed.
/// Input lines: `{"userId": "..."}` (user-personalization, popularity), `{"itemId": "..."}` (sims),
/// `{"userId": "...", "itemList": [...]}` (personalized-ranking: the whole list re-ranked).
/// Output: `{"input": <the input line as given>, "output": {"recommendedItems": [...], "scores": [...]}, "error": null}`;
/// popularity and related-items outputs carry only "recommendedItems". A malformed line gets
/// `{"input": <raw text or value>, "output": {"recommendedItems": []}, "error": "<why>"}` and the
/// job goes on. Items the user already interacted with stay in (a filter removes them); unknown
/// users get popular items. `numResults` items come back whenever the catalogue holds that many.
pub fn run_batch(
    model: &Model,
    input: impl BufRead,
    output: impl Write,
    num_results: usize,
) -> io::Result<BatchStats> {
    run(model, input, output, num_results, Mode::Items, None)
}

/// [`run_batch`] with a filter (the job's `filterArn`): each line's `filterValues`
/// (`{"userId": "u1", "filterValues": {"GENRES": "\"Comedy\",\"Drama\""}}`, as the developer
/// guide's "Filtering batch recommendations" writes them) fill its placeholders; a line whose
/// values the filter cannot use gets an `"error"` and the job goes on.
pub fn run_batch_filtered(
    model: &Model,
    input: impl BufRead,
    output: impl Write,
    num_results: usize,
    filter: &ItemFilter,
) -> io::Result<BatchStats> {
    run(model, input, output, num_results, Mode::Items, Some(filter))
}

/// Batch segment (users for items): `{"itemId": "..."}` ->
/// `{"input": ..., "output": {"usersList": [...]}, "error": null}`. Users who already interacted
/// with the item are left out; the list is topped up with the most active users.
pub fn run_batch_segment(
    model: &Model,
    input: impl BufRead,
    output: impl Write,
    num_results: usize,
) -> io::Result<BatchStats> {
    run(model, input, output, num_results, Mode::Segment, None)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Items,
    Segment,
}

fn run(
    model: &Model,
    mut input: impl BufRead,
    output: impl Write,
    num_results: usize,
    mode: Mode,
    filter: Option<&ItemFilter>,
) -> io::Result<BatchStats> {
    let threads = worker_count();
    let mut workers: Vec<Worker<'_>> =
        (0..threads).map(|_| Worker::new(model, mode, num_results, filter)).collect();
    let mut out = BufWriter::with_capacity(1 << 20, output);
    let mut lines: Vec<Vec<u8>> = vec![Vec::new(); LINES_PER_WORKER * threads];
    let mut stats = BatchStats::default();
    let mut eof = false;
    while !eof {
        let mut n = 0;
        while n < lines.len() {
            let buf = &mut lines[n];
            buf.clear();
            if input.read_until(b'\n', buf)? == 0 {
                eof = true;
                break;
            }
            if !buf.trim_ascii().is_empty() {
                n += 1;
            }
        }
        let round = &lines[..n];
        if threads == 1 || n < PARALLEL_MIN_LINES {
            workers[0].process(round);
        } else {
            let per = n.div_ceil(threads);
            std::thread::scope(|s| {
                for (w, chunk) in workers.iter_mut().zip(round.chunks(per)) {
                    s.spawn(move || w.process(chunk));
                }
            });
        }
        for w in &mut workers {
            out.write_all(&w.out)?;
            w.out.clear();
            stats.lines += std::mem::take(&mut w.lines);
            stats.errors += std::mem::take(&mut w.errors);
        }
    }
    out.flush()?;
    Ok(stats)
}

/// One input line's fields (others, such as "context", are ignored).
#[derive(Deserialize)]
struct Input<'a> {
    #[serde(rename = "userId", borrow, default)]
    user_id: Option<Cow<'a, str>>,
    #[serde(rename = "itemId", borrow, default)]
    item_id: Option<Cow<'a, str>>,
    #[serde(rename = "itemList", borrow, default)]
    item_list: Option<Vec<Cow<'a, str>>>,
    #[serde(rename = "filterValues", default)]
    filter_values: Option<HashMap<String, String>>,
}

enum Scoring {
    Items(Scorer),
    Segment(SegmentScorer),
}

struct Worker<'m> {
    model: &'m Model,
    filter: Option<&'m ItemFilter>,
    num_results: usize,
    scoring: Scoring,
    recs: Vec<(u32, f32)>,
    ranked: Vec<(usize, f32)>,
    list: Vec<Option<u32>>,
    out: Vec<u8>,
    lines: u64,
    errors: u64,
}

/// Why a line could not be answered, and how to echo it.
struct LineError {
    /// The line is valid JSON (echoed as is) rather than text (echoed as a JSON string).
    echo_json: bool,
    message: String,
}

impl<'m> Worker<'m> {
    fn new(model: &'m Model, mode: Mode, num_results: usize, filter: Option<&'m ItemFilter>) -> Worker<'m> {
        let scoring = match mode {
            Mode::Items => Scoring::Items(Scorer::new(&model.core)),
            Mode::Segment => Scoring::Segment(SegmentScorer::new(&model.core)),
        };
        Worker {
            model,
            filter,
            num_results,
            scoring,
            recs: Vec::new(),
            ranked: Vec::new(),
            list: Vec::new(),
            out: Vec::with_capacity(LINES_PER_WORKER * 256),
            lines: 0,
            errors: 0,
        }
    }

    fn process(&mut self, lines: &[Vec<u8>]) {
        for line in lines {
            let text = line.trim_ascii();
            self.lines += 1;
            if let Err(e) = self.answer(text) {
                self.errors += 1;
                self.out.extend_from_slice(b"{\"input\": ");
                if e.echo_json {
                    self.out.extend_from_slice(text);
                } else {
                    write_str(&mut self.out, &String::from_utf8_lossy(text));
                }
                let empty: &[u8] = match self.scoring {
                    Scoring::Items(_) => b", \"output\": {\"recommendedItems\": []}, \"error\": ",
                    Scoring::Segment(_) => b", \"output\": {\"usersList\": []}, \"error\": ",
                };
                self.out.extend_from_slice(empty);
                write_str(&mut self.out, &e.message);
                self.out.extend_from_slice(b"}\n");
            }
        }
    }

    /// Writes the answer line for `text`, or says why there is none (writing nothing).
    fn answer(&mut self, text: &[u8]) -> Result<(), LineError> {
        let s = std::str::from_utf8(text)
            .map_err(|_| LineError { echo_json: false, message: "the line is not valid UTF-8".into() })?;
        if !s.starts_with('{') {
            let echo_json = serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok();
            let message =
                if echo_json { "the line is not a JSON object" } else { "the line is not valid JSON" };
            return Err(LineError { echo_json, message: message.into() });
        }
        let input: Input<'_> = serde_json::from_str(s).map_err(|e| {
            let echo_json = matches!(e.classify(), serde_json::error::Category::Data);
            LineError { echo_json, message: format!("the line is not a valid input: {e}") }
        })?;
        let missing =
            |field: &str| LineError { echo_json: true, message: format!("the line has no \"{field}\"") };
        let model = self.model;
        let core = &model.core;
        let k = self.num_results;
        let mut with_scores = false;
        let subject = Subject { user_id: input.user_id.as_deref(), item_id: input.item_id.as_deref() };
        let request = match self.filter {
            Some(filter) => Some(
                filter
                    .request(model, subject, &input.filter_values.clone().unwrap_or_default())
                    .map_err(|message| LineError { echo_json: true, message })?,
            ),
            None => None,
        };
        let keep = |j: u32| request.as_ref().is_none_or(|r| r.keep(j));
        match &mut self.scoring {
            Scoring::Segment(scorer) => {
                let item = input.item_id.ok_or_else(|| missing("itemId"))?;
                scorer.users_for_item(core, model.item(&item), k, &mut self.recs);
                begin(&mut self.out, text, b"usersList");
                write_ids(&mut self.out, self.recs.iter().map(|&(u, _)| model.user_ids[u as usize].as_str()));
            }
            Scoring::Items(scorer) => match core.recipe {
                Recipe::UserPersonalization | Recipe::PopularityCount => {
                    let user = input.user_id.ok_or_else(|| missing("userId"))?;
                    scorer.recommend_user(core, model.user(&user), k, &keep, &mut self.recs);
                    with_scores = core.recipe == Recipe::UserPersonalization;
                    begin(&mut self.out, text, b"recommendedItems");
                    write_ids(
                        &mut self.out,
                        self.recs.iter().map(|&(i, _)| model.item_ids[i as usize].as_str()),
                    );
                }
                Recipe::Sims => {
                    let item = input.item_id.ok_or_else(|| missing("itemId"))?;
                    scorer.similar_items(core, model.item(&item), k, &keep, &mut self.recs);
                    begin(&mut self.out, text, b"recommendedItems");
                    write_ids(
                        &mut self.out,
                        self.recs.iter().map(|&(i, _)| model.item_ids[i as usize].as_str()),
                    );
                }
                Recipe::PersonalizedRanking => {
                    let user = input.user_id.ok_or_else(|| missing("userId"))?;
                    let mut list = input.item_list.ok_or_else(|| missing("itemList"))?;
                    if let Some(request) = &request {
                        list.retain(|i| request.keep_id(i));
                    }
                    self.list.clear();
                    self.list.extend(list.iter().map(|i| model.item(i)));
                    scorer.rank(core, model.user(&user), &self.list, &mut self.ranked);
                    begin(&mut self.out, text, b"recommendedItems");
                    write_ids(&mut self.out, self.ranked.iter().map(|&(pos, _)| list[pos].as_ref()));
                    self.out.extend_from_slice(b", \"scores\": ");
                    write_scores(&mut self.out, self.ranked.iter().map(|x| x.1));
                    self.out.extend_from_slice(b"}, \"error\": null}\n");
                    return Ok(());
                }
            },
        }
        if with_scores {
            self.out.extend_from_slice(b", \"scores\": ");
            write_scores(&mut self.out, self.recs.iter().map(|x| x.1));
        }
        self.out.extend_from_slice(b"}, \"error\": null}\n");
        Ok(())
    }
}

/// `{"input": <text>, "output": {"<list>": ` — the input is valid JSON, echoed as given.
fn begin(out: &mut Vec<u8>, text: &[u8], list: &[u8]) {
    out.extend_from_slice(b"{\"input\": ");
    out.extend_from_slice(text);
    out.extend_from_slice(b", \"output\": {\"");
    out.extend_from_slice(list);
    out.extend_from_slice(b"\": ");
}

fn write_ids<'a>(out: &mut Vec<u8>, ids: impl Iterator<Item = &'a str>) {
    out.push(b'[');
    for (n, id) in ids.enumerate() {
        if n > 0 {
            out.extend_from_slice(b", ");
        }
        write_str(out, id);
    }
    out.push(b']');
}

fn write_scores(out: &mut Vec<u8>, scores: impl Iterator<Item = f32>) {
    out.push(b'[');
    for (n, s) in scores.enumerate() {
        if n > 0 {
            out.extend_from_slice(b", ");
        }
        // Six decimals, like Personalize's scores; Display gives the shortest form.
        let rounded = (s as f64 * 1e6).round() / 1e6;
        let _ = write!(out, "{rounded}");
    }
    out.push(b']');
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // serde_json escapes exactly as JSON requires; writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

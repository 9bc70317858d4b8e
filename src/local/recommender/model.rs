//! Recency-weighted item-to-item co-occurrence models and the scoring behind every recipe.
//!
//! Training interns everything to u32, keeps per item only its top [`NEIGHBOURS`] similar items
//! (never a full item x item matrix), and scores with dense per-worker buffers that are reset
//! through epoch stamps instead of being cleared.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::csv::{Dataset, Row};
use super::{Interaction, Recipe, metrics};

/// Similar items kept per item.
pub(crate) const NEIGHBOURS: usize = 100;
/// Most recent distinct items of a user that count for co-occurrence: bounds the quadratic cost of
/// very active users.
const PAIR_HISTORY: usize = 200;
/// Most recent history items that vote for a user's recommendations.
const SCORE_HISTORY: usize = 100;
/// Most recent users of an item that vote in a segment query.
const SEGMENT_USERS_PER_ITEM: usize = 2_000;
/// The half-life of an interaction's weight, as a fraction of the data's time span.
const HALF_LIFE_OF_SPAN: f64 = 0.25;
/// Cosine shrinkage: damps similarities resting on a handful of shared users.
const SHRINK: f32 = 2.0;

pub(crate) const MIN_INTERACTIONS: usize = 1_000;
pub(crate) const MIN_ACTIVE_USERS: usize = 25;

/// Why a solution version failed; becomes its failureReason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TrainError(pub String);

/// Compressed sparse rows: row r is `ids[offsets[r]..offsets[r + 1]]` with matching `weights`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Csr {
    pub offsets: Vec<u32>,
    pub ids: Vec<u32>,
    pub weights: Vec<f32>,
}

impl Csr {
    pub fn row(&self, r: u32) -> (&[u32], &[f32]) {
        let r = r as usize;
        if r + 1 >= self.offsets.len() {
            return (&[], &[]);
        }
        let (a, b) = (self.offsets[r] as usize, self.offsets[r + 1] as usize);
        (&self.ids[a..b], &self.weights[a..b])
    }

    fn from_rows(rows: impl IntoIterator<Item = Vec<(u32, f32)>>) -> Csr {
        let mut csr = Csr { offsets: vec![0], ..Csr::default() };
        for row in rows {
            for (id, w) in row {
                csr.ids.push(id);
                csr.weights.push(w);
            }
            csr.offsets.push(csr.ids.len() as u32);
        }
        csr
    }
}

/// The trained state over interned ids: shared by the served model and the metrics holdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Core {
    pub recipe: Recipe,
    /// Per user: distinct items, most recent first, weighted by recency.
    pub history: Csr,
    /// Per item: its users, most recent first, weighted by recency.
    pub item_users: Csr,
    /// Per item: the most similar items, most similar first (empty for popularity-count).
    pub neighbours: Csr,
    /// Per item: recency-weighted interaction count.
    pub popularity: Vec<f32>,
    /// Items, most popular first.
    pub popular: Vec<u32>,
    /// Users, most active (recency-weighted) first.
    pub active: Vec<u32>,
}

/// A trained solution version.
#[derive(Serialize, Deserialize)]
pub struct Model {
    pub(crate) core: Core,
    pub(crate) user_ids: Vec<String>,
    pub(crate) item_ids: Vec<String>,
    pub(crate) metrics: BTreeMap<String, f64>,
    #[serde(skip)]
    index: OnceLock<Index>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("recipe", &self.core.recipe)
            .field("users", &self.user_ids.len())
            .field("items", &self.item_ids.len())
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

struct Index {
    users: HashMap<String, u32>,
    items: HashMap<String, u32>,
}

impl Model {
    pub(crate) fn from_parts(
        core: Core,
        user_ids: Vec<String>,
        item_ids: Vec<String>,
        metrics: BTreeMap<String, f64>,
    ) -> Model {
        Model { core, user_ids, item_ids, metrics, index: OnceLock::new() }
    }

    pub fn recipe(&self) -> Recipe {
        self.core.recipe
    }

    /// GetSolutionMetrics' keys: coverage, mean_reciprocal_rank_at_25,
    /// normalized_discounted_cumulative_gain_at_5|10|25, precision_at_5|10|25 (all in [0,1]).
    pub fn metrics(&self) -> &BTreeMap<String, f64> {
        &self.metrics
    }

    /// Number of users and items the model knows.
    pub fn users(&self) -> usize {
        self.user_ids.len()
    }

    pub fn items(&self) -> usize {
        self.item_ids.len()
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| Index {
            users: self.user_ids.iter().enumerate().map(|(i, s)| (s.clone(), i as u32)).collect(),
            items: self.item_ids.iter().enumerate().map(|(i, s)| (s.clone(), i as u32)).collect(),
        })
    }

    pub(crate) fn user(&self, id: &str) -> Option<u32> {
        self.index().users.get(id).copied()
    }

    pub(crate) fn item(&self, id: &str) -> Option<u32> {
        self.index().items.get(id).copied()
    }

    /// Recommendations for a user id (popular items for an unknown one), as (item id, score):
    /// at most `num_results`, history included, scores shares of the whole catalogue.
    pub fn recommend(&self, user_id: &str, num_results: usize) -> Vec<(String, f32)> {
        self.recommend_where(user_id, num_results, &|_| true)
    }

    /// [`Model::recommend`] among the items (interned ids) `keep` accepts, such as a
    /// [`super::filter::RequestFilter`]'s.
    pub fn recommend_where(
        &self,
        user_id: &str,
        num_results: usize,
        keep: &dyn Fn(u32) -> bool,
    ) -> Vec<(String, f32)> {
        let mut scorer = Scorer::new(&self.core);
        let mut out = Vec::new();
        scorer.recommend_user(&self.core, self.user(user_id), num_results, keep, &mut out);
        out.into_iter().map(|(i, s)| (self.item_ids[i as usize].clone(), s)).collect()
    }

    /// Items similar to an item (popular items for an unknown one).
    pub fn similar_items(&self, item_id: &str, num_results: usize) -> Vec<String> {
        self.similar_items_where(item_id, num_results, &|_| true)
    }

    /// [`Model::similar_items`] among the items `keep` accepts.
    pub fn similar_items_where(
        &self,
        item_id: &str,
        num_results: usize,
        keep: &dyn Fn(u32) -> bool,
    ) -> Vec<String> {
        let mut scorer = Scorer::new(&self.core);
        let mut out = Vec::new();
        scorer.similar_items(&self.core, self.item(item_id), num_results, keep, &mut out);
        out.into_iter().map(|(i, _)| self.item_ids[i as usize].clone()).collect()
    }

    /// `items` re-ranked for the user, with scores summing to 1 over them; items outside the
    /// catalogue score 0 and come last (developer guide: "How personalized ranking scoring works").
    pub fn rank(&self, user_id: &str, items: &[String]) -> Vec<(String, f32)> {
        let mut scorer = Scorer::new(&self.core);
        let ids: Vec<Option<u32>> = items.iter().map(|i| self.item(i)).collect();
        let mut out = Vec::new();
        scorer.rank(&self.core, self.user(user_id), &ids, &mut out);
        out.into_iter().map(|(pos, s)| (items[pos].clone(), s)).collect()
    }

    /// The catalogue's item ids, by interned id.
    pub(crate) fn item_ids(&self) -> &[String] {
        &self.item_ids
    }
}

/// Trains on all interactions of the dataset group. Personalize's minimums are enforced with its
/// wording: at least 1,000 interactions, and at least 25 users with 2 or more interactions each.
pub fn train(recipe: Recipe, interactions: &[Interaction]) -> Result<Model, TrainError> {
    train_dataset(recipe, &Dataset::from_interactions(interactions))
}

/// [`train`] over interned interactions (see [`super::read_dataset`]): for large data sets.
pub fn train_dataset(recipe: Recipe, data: &Dataset) -> Result<Model, TrainError> {
    check_minimums(data)?;
    let metrics = metrics::evaluate(recipe, data);
    let core = fit(recipe, data.users(), data.items(), &data.rows);
    tracing::debug!(?recipe, users = data.users(), items = data.items(), rows = data.len(), "model trained");
    Ok(Model::from_parts(core, data.user_ids.clone(), data.item_ids.clone(), metrics))
}

fn check_minimums(data: &Dataset) -> Result<(), TrainError> {
    if data.len() < MIN_INTERACTIONS {
        // Personalize's wording, as seen in aws-samples/retail-demo-store PR #562 ("Dataset has
        // fewer than 1000 interactions after filtering by event type: ..." when a type is set).
        return Err(TrainError(format!("Dataset has fewer than {MIN_INTERACTIONS} interactions.")));
    }
    let mut per_user = vec![0u32; data.users()];
    for r in &data.rows {
        per_user[r.user as usize] += 1;
    }
    if per_user.iter().filter(|&&n| n >= 2).count() < MIN_ACTIVE_USERS {
        return Err(TrainError(format!(
            "Dataset has fewer than {MIN_ACTIVE_USERS} users with at least 2 interactions each."
        )));
    }
    Ok(())
}

/// Exponential decay: the newest interaction weighs 1, one half-life older weighs 1/2.
fn recency_weights(rows: &[Row]) -> impl Fn(i64) -> f32 {
    let newest = rows.iter().map(|r| r.timestamp).max().unwrap_or(0);
    let oldest = rows.iter().map(|r| r.timestamp).min().unwrap_or(0);
    let half_life = ((newest as i128 - oldest as i128) as f64 * HALF_LIFE_OF_SPAN).max(1.0);
    move |t| (-((newest as i128 - t as i128) as f64) / half_life).exp2() as f32
}

pub(crate) fn fit(recipe: Recipe, users: usize, items: usize, rows: &[Row]) -> Core {
    let weight = recency_weights(rows);
    let mut popularity = vec![0f32; items];
    let mut activity = vec![0f32; users];

    // Group rows by user (counting sort), then keep each item once at its newest weight.
    let mut offsets = vec![0u32; users + 1];
    for r in rows {
        offsets[r.user as usize + 1] += 1;
    }
    for u in 0..users {
        offsets[u + 1] += offsets[u];
    }
    let mut grouped = vec![(0u32, 0f32); rows.len()];
    let mut next: Vec<u32> = offsets[..users].to_vec();
    for r in rows {
        let w = weight(r.timestamp);
        popularity[r.item as usize] += w;
        activity[r.user as usize] += w;
        let slot = &mut next[r.user as usize];
        grouped[*slot as usize] = (r.item, w);
        *slot += 1;
    }
    drop(next);
    let mut history = Csr { offsets: Vec::with_capacity(users + 1), ..Csr::default() };
    history.offsets.push(0);
    for u in 0..users {
        let entries = &mut grouped[offsets[u] as usize..offsets[u + 1] as usize];
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut kept: Vec<(u32, f32)> = Vec::with_capacity(entries.len());
        for &(item, w) in entries.iter() {
            if kept.last().is_none_or(|l| l.0 != item) {
                kept.push((item, w));
            }
        }
        kept.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for (item, w) in kept {
            history.ids.push(item);
            history.weights.push(w);
        }
        history.offsets.push(history.ids.len() as u32);
    }
    drop(grouped);
    drop(offsets);

    let item_users = invert(&history, items);
    let neighbours = match recipe {
        Recipe::PopularityCount => Csr { offsets: vec![0; items + 1], ..Csr::default() },
        _ => neighbours(&history, &item_users, items),
    };

    let mut popular: Vec<u32> = (0..items as u32).collect();
    popular.sort_by(|&a, &b| popularity[b as usize].total_cmp(&popularity[a as usize]).then(a.cmp(&b)));
    let mut active: Vec<u32> = (0..users as u32).collect();
    active.sort_by(|&a, &b| activity[b as usize].total_cmp(&activity[a as usize]).then(a.cmp(&b)));
    Core { recipe, history, item_users, neighbours, popularity, popular, active }
}

/// Per item: its users, most recent first.
fn invert(history: &Csr, items: usize) -> Csr {
    let mut offsets = vec![0u32; items + 1];
    for &i in &history.ids {
        offsets[i as usize + 1] += 1;
    }
    for i in 0..items {
        offsets[i + 1] += offsets[i];
    }
    let mut ids = vec![0u32; history.ids.len()];
    let mut weights = vec![0f32; history.ids.len()];
    let mut next: Vec<u32> = offsets[..items].to_vec();
    for u in 0..history.offsets.len().saturating_sub(1) {
        let (its, ws) = history.row(u as u32);
        for (&i, &w) in its.iter().zip(ws) {
            let slot = &mut next[i as usize];
            ids[*slot as usize] = u as u32;
            weights[*slot as usize] = w;
            *slot += 1;
        }
    }
    let mut csr = Csr { offsets, ids, weights };
    for i in 0..items {
        let (a, b) = (csr.offsets[i] as usize, csr.offsets[i + 1] as usize);
        let mut row: Vec<(u32, f32)> =
            csr.ids[a..b].iter().copied().zip(csr.weights[a..b].iter().copied()).collect();
        row.sort_unstable_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        for (k, (u, w)) in row.into_iter().enumerate() {
            csr.ids[a + k] = u;
            csr.weights[a + k] = w;
        }
    }
    csr
}

/// An item and its top neighbours.
type NeighbourRow = (u32, Vec<(u32, f32)>);

/// Top-N neighbours per item by shrunk cosine similarity of recency-weighted user vectors:
/// sim(i, j) = sum_u w_ui w_uj / (|i| |j| + SHRINK). Items are spread over all cores.
fn neighbours(history: &Csr, item_users: &Csr, items: usize) -> Csr {
    let norms: Vec<f32> =
        (0..items as u32).map(|i| item_users.row(i).1.iter().map(|w| w * w).sum::<f32>().sqrt()).collect();
    let threads = worker_count().min(items.max(1));
    let mut rows: Vec<Vec<(u32, f32)>> = vec![Vec::new(); items];
    let results: Vec<Vec<NeighbourRow>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let norms = &norms;
                s.spawn(move || {
                    let mut acc = vec![0f32; items];
                    let mut touched: Vec<u32> = Vec::new();
                    let mut out = Vec::new();
                    for i in (t..items).step_by(threads) {
                        let (users, wus) = item_users.row(i as u32);
                        for (&u, &wu) in users.iter().zip(wus) {
                            let (its, ws) = history.row(u);
                            let n = its.len().min(PAIR_HISTORY);
                            for (&j, &wj) in its[..n].iter().zip(&ws[..n]) {
                                let a = &mut acc[j as usize];
                                if *a == 0.0 {
                                    touched.push(j);
                                }
                                *a += wu * wj;
                            }
                        }
                        let mut cand: Vec<(u32, f32)> = Vec::with_capacity(touched.len());
                        for &j in &touched {
                            // Weights are at least 1/16, so a zero means "already taken".
                            let c = std::mem::take(&mut acc[j as usize]);
                            if j as usize != i && c > 0.0 {
                                cand.push((j, c / (norms[i] * norms[j as usize] + SHRINK)));
                            }
                        }
                        touched.clear();
                        top_k(&mut cand, NEIGHBOURS);
                        out.push((i as u32, cand));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    for part in results {
        for (i, row) in part {
            rows[i as usize] = row;
        }
    }
    Csr::from_rows(rows)
}

pub(crate) fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(8)
}

/// Keeps the k best (score descending, id ascending on ties), sorted.
pub(crate) fn top_k(cand: &mut Vec<(u32, f32)>, k: usize) {
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if k == 0 {
        cand.clear();
        return;
    }
    if cand.len() > k {
        cand.select_nth_unstable_by(k - 1, order);
        cand.truncate(k);
    }
    cand.sort_unstable_by(order);
}

/// Sparse scores over ids `0..n`, reusable across queries: a stamp equal to the current epoch
/// marks an id as touched or blocked in this query, so nothing is cleared between queries.
struct Sparse {
    acc: Vec<f32>,
    touched_at: Vec<u32>,
    blocked_at: Vec<u32>,
    epoch: u32,
    touched: Vec<u32>,
}

impl Sparse {
    fn new(n: usize) -> Sparse {
        Sparse {
            acc: vec![0.0; n],
            touched_at: vec![0; n],
            blocked_at: vec![0; n],
            epoch: 0,
            touched: Vec::new(),
        }
    }

    fn next_epoch(&mut self) {
        self.touched.clear();
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.touched_at.fill(0);
            self.blocked_at.fill(0);
            self.epoch = 1;
        }
    }

    fn block(&mut self, id: u32) {
        self.blocked_at[id as usize] = self.epoch;
    }

    fn blocked(&self, id: u32) -> bool {
        self.blocked_at[id as usize] == self.epoch
    }

    fn add(&mut self, id: u32, weight: f32) {
        let i = id as usize;
        if self.touched_at[i] != self.epoch {
            self.touched_at[i] = self.epoch;
            self.acc[i] = 0.0;
            self.touched.push(id);
        }
        self.acc[i] += weight;
    }

    /// The score of `id` in this query (0 when untouched).
    fn get(&self, id: u32) -> f32 {
        if self.touched_at[id as usize] == self.epoch { self.acc[id as usize] } else { 0.0 }
    }

    /// Every touched id that is not blocked, with its score.
    fn candidates(&self, out: &mut Vec<(u32, f32)>) {
        out.extend(
            self.touched.iter().filter(|&&id| !self.blocked(id)).map(|&id| (id, self.acc[id as usize])),
        );
    }
}

/// Reusable scoring buffers for items (one per worker thread).
pub(crate) struct Scorer {
    items: Sparse,
    /// The catalogue's summed popularity: the denominator of the unvoted items' scores.
    total_popularity: f64,
}

impl Scorer {
    pub fn new(core: &Core) -> Scorer {
        let total_popularity = core.popularity.iter().map(|&p| p as f64).sum();
        Scorer { items: Sparse::new(core.popularity.len()), total_popularity }
    }

    /// Sums the neighbour similarities of the user's recent history, newer history weighing more.
    fn accumulate_user(&mut self, core: &Core, user: u32) {
        let (its, ws) = core.history.row(user);
        let n = its.len().min(SCORE_HISTORY);
        for (&h, &wh) in its[..n].iter().zip(&ws[..n]) {
            let (js, ss) = core.neighbours.row(h);
            for (&j, &s) in js.iter().zip(ss) {
                self.items.add(j, wh * s);
            }
        }
    }

    /// The user's top `k` items among those `keep` accepts, topped up with the most popular kept
    /// items so that `k` come back whenever the catalogue holds that many. Items the user already
    /// interacted with stay in: Personalize leaves them in unless a filter removes them ("Filtering
    /// recommendations" in the developer guide).
    ///
    /// Scores are shares of a catalogue-wide total, as Personalize documents for
    /// User-Personalization ("How recommendation scoring works": every item of the catalogue is
    /// scored and the scores of all items sum to 1), so an item's score depends on neither `k`
    /// nor the filter. Items the user's history votes for score their co-occurrence sum; every
    /// other item scores a share of half the least of those sums by its popularity, so it ranks
    /// below them. Popularity-count and unknown users are scored by popularity alone.
    pub fn recommend_user(
        &mut self,
        core: &Core,
        user: Option<u32>,
        k: usize,
        keep: &dyn Fn(u32) -> bool,
        out: &mut Vec<(u32, f32)>,
    ) {
        self.items.next_epoch();
        out.clear();
        let (mut voted_sum, mut voted_popularity, mut least) = (0f64, 0f64, f32::INFINITY);
        if let Some(u) = user
            && core.recipe != Recipe::PopularityCount
        {
            self.accumulate_user(core, u);
            for &j in &self.items.touched {
                let score = self.items.acc[j as usize];
                voted_sum += score as f64;
                voted_popularity += core.popularity[j as usize] as f64;
                least = least.min(score);
            }
            out.extend(
                self.items.touched.iter().filter(|&&j| keep(j)).map(|&j| (j, self.items.acc[j as usize])),
            );
            top_k(out, k);
        }
        let top = core.popular.first().map_or(0.0, |&p| core.popularity[p as usize]);
        let floor = if least.is_finite() { least * 0.5 } else { 1.0 };
        let unvoted = |j: u32| if top > 0.0 { floor * core.popularity[j as usize] / top } else { 0.0 };
        if out.len() < k {
            for &j in &core.popular {
                if out.len() >= k {
                    break;
                }
                if self.items.touched_at[j as usize] != self.items.epoch && keep(j) {
                    out.push((j, unvoted(j)));
                }
            }
        }
        let unvoted_sum = if top > 0.0 {
            floor as f64 * (self.total_popularity - voted_popularity) / top as f64
        } else {
            0.0
        };
        let total = voted_sum + unvoted_sum;
        if total > 0.0 {
            for x in out.iter_mut() {
                x.1 = (x.1 as f64 / total) as f32;
            }
        }
    }

    /// The item's neighbours that `keep` accepts, topped up with popular items (the item itself
    /// excluded). Personalize shows no scores for SIMS; these are shares of the returned list.
    pub fn similar_items(
        &mut self,
        core: &Core,
        item: Option<u32>,
        k: usize,
        keep: &dyn Fn(u32) -> bool,
        out: &mut Vec<(u32, f32)>,
    ) {
        self.items.next_epoch();
        out.clear();
        if let Some(i) = item {
            self.items.block(i);
            let (js, ss) = core.neighbours.row(i);
            out.extend(js.iter().copied().zip(ss.iter().copied()).filter(|&(j, _)| keep(j)).take(k));
        }
        self.fill_popular(core, k, keep, out);
        normalise(out);
    }

    /// Re-ranks `items` (None: not in the catalogue) for the user: by the user's co-occurrence
    /// score, popularity breaking ties; unknown items last. Gives (position in `items`, score).
    pub fn rank(
        &mut self,
        core: &Core,
        user: Option<u32>,
        items: &[Option<u32>],
        out: &mut Vec<(usize, f32)>,
    ) {
        self.items.next_epoch();
        out.clear();
        if let Some(u) = user {
            self.accumulate_user(core, u);
        }
        let top = core.popular.first().map_or(0.0, |&p| core.popularity[p as usize]);
        for (pos, item) in items.iter().enumerate() {
            let score = match *item {
                Some(j) => {
                    // Popularity only orders items the user's history says nothing about.
                    let pop = if top > 0.0 { core.popularity[j as usize] / top } else { 0.0 };
                    self.items.get(j) + 1e-4 * pop
                }
                None => 0.0,
            };
            out.push((pos, score));
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        let sum: f32 = out.iter().map(|x| x.1).sum();
        if sum > 0.0 {
            for x in out.iter_mut() {
                x.1 /= sum;
            }
        }
    }

    /// Tops `out` up to k with the most popular items `keep` accepts, not blocked nor already in
    /// it, scored below everything already there so the list stays in descending order.
    fn fill_popular(&mut self, core: &Core, k: usize, keep: &dyn Fn(u32) -> bool, out: &mut Vec<(u32, f32)>) {
        if out.len() >= k {
            return;
        }
        for &(j, _) in out.iter() {
            self.items.block(j);
        }
        let floor = out.last().map_or(1.0, |x| x.1 * 0.5);
        let top = core.popular.first().map_or(0.0, |&p| core.popularity[p as usize]);
        for &j in &core.popular {
            if out.len() >= k {
                break;
            }
            if self.items.blocked(j) || !keep(j) {
                continue;
            }
            let pop = if top > 0.0 { core.popularity[j as usize] / top } else { 0.0 };
            out.push((j, floor * pop));
        }
    }
}

/// Divides by the sum over the returned items: for lists whose scores are not shown.
fn normalise(out: &mut [(u32, f32)]) {
    let sum: f32 = out.iter().map(|x| x.1).sum();
    if sum > 0.0 {
        for x in out.iter_mut() {
            x.1 /= sum;
        }
    }
}

/// Reusable buffers for batch segments: users scored for an item.
pub(crate) struct SegmentScorer {
    users: Sparse,
}

impl SegmentScorer {
    pub fn new(core: &Core) -> SegmentScorer {
        SegmentScorer { users: Sparse::new(core.active.len()) }
    }

    /// Users most likely to interact with the item: those whose recent items are its neighbours,
    /// excluding users who already did; topped up with the most active users.
    pub fn users_for_item(&mut self, core: &Core, item: Option<u32>, k: usize, out: &mut Vec<(u32, f32)>) {
        self.users.next_epoch();
        out.clear();
        if let Some(i) = item {
            for &u in core.item_users.row(i).0 {
                self.users.block(u);
            }
            let (js, ss) = core.neighbours.row(i);
            for (&j, &s) in js.iter().zip(ss) {
                let (us, ws) = core.item_users.row(j);
                let n = us.len().min(SEGMENT_USERS_PER_ITEM);
                for (&u, &w) in us[..n].iter().zip(&ws[..n]) {
                    self.users.add(u, s * w);
                }
            }
            self.users.candidates(out);
            top_k(out, k);
        }
        for &(u, _) in out.iter() {
            self.users.block(u);
        }
        for &u in &core.active {
            if out.len() >= k {
                break;
            }
            if !self.users.blocked(u) {
                out.push((u, 0.0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 30 users: users 0-14 like items a0..a9, users 15-29 like b0..b9; 40 interactions each.
    fn two_tastes() -> Dataset {
        let mut d = Dataset::new();
        for u in 0..30 {
            let side = if u < 15 { "a" } else { "b" };
            for k in 0..40 {
                let item = format!("{side}{}", (u + k * 3) % 10);
                d.push(&format!("user{u}"), &item, 1_000 + (u * 40 + k) as i64);
            }
        }
        d
    }

    #[test]
    fn minimum_interactions_enforced() {
        let mut d = Dataset::new();
        for k in 0..999 {
            d.push(&format!("u{}", k % 100), "i", k);
        }
        let err = train_dataset(Recipe::UserPersonalization, &d).err().unwrap();
        assert_eq!(err.to_string(), "Dataset has fewer than 1000 interactions.");
    }

    #[test]
    fn minimum_active_users_enforced_with_personalize_wording() {
        let mut d = Dataset::new();
        // 24 users with many interactions, 500 users with one each.
        for k in 0..1_000 {
            d.push(&format!("heavy{}", k % 24), &format!("i{}", k % 50), k);
        }
        for k in 0..500 {
            d.push(&format!("light{k}"), "i0", k);
        }
        let err = train_dataset(Recipe::Sims, &d).err().unwrap();
        assert_eq!(err.to_string(), "Dataset has fewer than 25 users with at least 2 interactions each.");
        d.push("light0", "i1", 5);
        assert!(train_dataset(Recipe::Sims, &d).is_ok());
    }

    #[test]
    fn history_kept_unless_filtered_and_scores_independent_of_k() {
        let d = two_tastes();
        let core = fit(Recipe::UserPersonalization, d.users(), d.items(), &d.rows);
        let mut scorer = Scorer::new(&core);
        let (mut five, mut fifteen) = (Vec::new(), Vec::new());
        // user0 has seen a0..a9, all of its side: with nothing filtered, its own items come first.
        let history: Vec<u32> = core.history.row(0).0.to_vec();
        assert_eq!(history.len(), 10);
        scorer.recommend_user(&core, Some(0), 5, &|_| true, &mut five);
        assert_eq!(five.len(), 5);
        assert!(five.iter().all(|(i, _)| history.contains(i)), "{five:?}");
        scorer.recommend_user(&core, Some(0), 15, &|_| true, &mut fifteen);
        assert_eq!(fifteen.len(), 15);
        assert_eq!(&fifteen[..5], &five[..], "the same items, with the same scores, whatever k");
        assert!(fifteen.windows(2).all(|w| w[0].1 >= w[1].1));
        let all = d.items();
        let mut everything = Vec::new();
        scorer.recommend_user(&core, Some(0), all, &|_| true, &mut everything);
        let sum: f32 = everything.iter().map(|x| x.1).sum();
        assert!((sum - 1.0).abs() < 1e-4, "the whole catalogue sums to 1, not {sum}");
        // An exclusion of the history leaves only the other side, scored as before.
        let mut filtered = Vec::new();
        scorer.recommend_user(&core, Some(0), 5, &|i| !history.contains(&i), &mut filtered);
        assert_eq!(filtered.len(), 5);
        assert!(filtered.iter().all(|(i, _)| !history.contains(i)));
        for (i, s) in &filtered {
            let unfiltered = everything.iter().find(|(j, _)| j == i).unwrap().1;
            assert_eq!(*s, unfiltered, "item {i}");
        }
    }

    #[test]
    fn neighbours_stay_within_taste() {
        let d = two_tastes();
        let core = fit(Recipe::Sims, d.users(), d.items(), &d.rows);
        for i in 0..d.items() as u32 {
            let side = &d.item_ids[i as usize][..1];
            let (js, ss) = core.neighbours.row(i);
            assert_eq!(js.len(), 9, "item {i}");
            assert!(js.iter().all(|&j| &d.item_ids[j as usize][..1] == side));
            assert!(ss.windows(2).all(|w| w[0] >= w[1]));
            assert!(!js.contains(&i));
        }
    }

    #[test]
    fn top_k_orders_and_truncates() {
        let mut v = vec![(3, 0.5), (1, 0.9), (2, 0.5), (4, 0.1)];
        top_k(&mut v, 3);
        assert_eq!(v, vec![(1, 0.9), (2, 0.5), (3, 0.5)]);
    }
}

//! Offline metrics as Personalize documents them: hold out 10% of users; for each, the oldest 90%
//! of their interactions are the input and the newest 10% (at least one) the truth; train on
//! everything else; recommend 25 items per held-out user and score them against the truth.
//!
//! The 25 items are asked of the recipe the way it is used, so each recipe is measured on its
//! own answers: user-personalization and popularity-count recommend for the user; SIMS answers
//! for one item, the user's most recent input item; personalized-ranking re-ranks a candidate
//! list for the user, here the 100 most popular items the user did not have (the developer
//! guide does not say which list Personalize ranks; this is the emulator's choice).

use std::collections::BTreeMap;

use super::Recipe;
use super::csv::{Dataset, Row};
use super::model::{Scorer, fit};

const CUTOFF: usize = 25;
/// How many popular items personalized-ranking re-ranks per held-out user.
const RANKING_CANDIDATES: usize = 100;
const KS: [usize; 3] = [5, 10, 25];

/// Metric name -> value, GetSolutionMetrics' keys, all in [0, 1].
pub(crate) fn evaluate(recipe: Recipe, data: &Dataset) -> BTreeMap<String, f64> {
    let users = data.users();
    let mut per_user: Vec<Vec<(i64, u32)>> = vec![Vec::new(); users];
    let held_out = held_out_users(data);
    let mut is_held = vec![false; users];
    for &u in &held_out {
        is_held[u as usize] = true;
    }
    for r in &data.rows {
        if is_held[r.user as usize] {
            per_user[r.user as usize].push((r.timestamp, r.item));
        }
    }
    // Split each held-out user's interactions by time; the truth rows leave the training set.
    // (user, truth items, most recent input item)
    let mut truth: Vec<(u32, Vec<u32>, Option<u32>)> = Vec::with_capacity(held_out.len());
    let mut truth_rows: Vec<Row> = Vec::new();
    for &u in &held_out {
        let events = &mut per_user[u as usize];
        events.sort_unstable();
        let n_truth = (events.len() / 10).max(1);
        let (input, newest) = events.split_at(events.len() - n_truth);
        let mut items: Vec<u32> = newest.iter().map(|&(_, i)| i).collect();
        items.sort_unstable();
        items.dedup();
        // Recommendations are scored with the input items filtered out, so truth that repeats them
        // cannot be hit.
        items.retain(|i| !input.iter().any(|&(_, j)| j == *i));
        truth_rows.extend(newest.iter().map(|&(timestamp, item)| Row { user: u, item, timestamp }));
        if !items.is_empty() {
            truth.push((u, items, input.last().map(|&(_, i)| i)));
        }
    }
    truth_rows.sort_unstable_by_key(|r| (r.user, r.timestamp, r.item));
    drop(per_user);
    let training: Vec<Row> = data
        .rows
        .iter()
        .copied()
        .filter(|r| {
            !is_held[r.user as usize]
                || truth_rows
                    .binary_search_by_key(&(r.user, r.timestamp, r.item), |t| (t.user, t.timestamp, t.item))
                    .is_err()
        })
        .collect();
    let core = fit(recipe, users, data.items(), &training);
    drop(training);

    let mut scorer = Scorer::new(&core);
    let mut recs = Vec::with_capacity(CUTOFF);
    let mut recommended = vec![false; data.items()];
    let mut sums = Sums::default();
    let mut ranked = Vec::new();
    for (u, items, last) in &truth {
        // The holdout measures the discovery of new items: what the user already had (the input)
        // is filtered out, as a pipeline's exclusion filter would, and the truth leaves it out.
        let mut input = core.history.row(*u).0.to_vec();
        input.sort_unstable();
        let keep = |i: u32| input.binary_search(&i).is_err();
        match recipe {
            Recipe::Sims => scorer.similar_items(&core, *last, CUTOFF, &keep, &mut recs),
            Recipe::PersonalizedRanking => {
                let candidates: Vec<Option<u32>> = core
                    .popular
                    .iter()
                    .copied()
                    .filter(|&i| keep(i))
                    .take(RANKING_CANDIDATES)
                    .map(Some)
                    .collect();
                scorer.rank(&core, Some(*u), &candidates, &mut ranked);
                recs.clear();
                recs.extend(
                    ranked.iter().take(CUTOFF).filter_map(|&(pos, score)| Some((candidates[pos]?, score))),
                );
            }
            Recipe::UserPersonalization | Recipe::PopularityCount => {
                scorer.recommend_user(&core, Some(*u), CUTOFF, &keep, &mut recs);
            }
        }
        let hits: Vec<bool> = recs.iter().map(|(i, _)| items.binary_search(i).is_ok()).collect();
        for (i, _) in &recs {
            recommended[*i as usize] = true;
        }
        sums.add(&hits, items.len());
    }
    let n = truth.len().max(1) as f64;
    let mut m = BTreeMap::new();
    let covered = recommended.iter().filter(|&&r| r).count();
    m.insert("coverage".to_owned(), covered as f64 / data.items().max(1) as f64);
    m.insert("mean_reciprocal_rank_at_25".to_owned(), sums.mrr / n);
    for (k, (ndcg, precision)) in KS.iter().zip(sums.ndcg.iter().zip(&sums.precision)) {
        m.insert(format!("normalized_discounted_cumulative_gain_at_{k}"), ndcg / n);
        m.insert(format!("precision_at_{k}"), precision / n);
    }
    for v in m.values_mut() {
        *v = v.clamp(0.0, 1.0);
    }
    m
}

/// 10% of the users with at least two interactions (at least one user), chosen by a hash of the
/// user id so the choice is the same on every run.
fn held_out_users(data: &Dataset) -> Vec<u32> {
    let mut count = vec![0u32; data.users()];
    for r in &data.rows {
        count[r.user as usize] += 1;
    }
    let mut eligible: Vec<(u64, u32)> = (0..data.users() as u32)
        .filter(|&u| count[u as usize] >= 2)
        .map(|u| (fnv1a(data.user_ids[u as usize].as_bytes()), u))
        .collect();
    eligible.sort_unstable();
    let take = eligible.len().div_ceil(10);
    let mut chosen: Vec<u32> = eligible[..take].iter().map(|&(_, u)| u).collect();
    chosen.sort_unstable();
    chosen
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[derive(Default)]
struct Sums {
    mrr: f64,
    ndcg: [f64; 3],
    precision: [f64; 3],
}

impl Sums {
    /// `hits[r]`: whether the item at rank r + 1 is in the truth; `relevant`: truth size.
    fn add(&mut self, hits: &[bool], relevant: usize) {
        if let Some(first) = hits.iter().take(CUTOFF).position(|&h| h) {
            self.mrr += 1.0 / (first + 1) as f64;
        }
        for (slot, &k) in KS.iter().enumerate() {
            let top = &hits[..hits.len().min(k)];
            let found = top.iter().filter(|&&h| h).count();
            self.precision[slot] += found as f64 / k as f64;
            let dcg: f64 = top.iter().enumerate().filter(|(_, h)| **h).map(|(r, _)| discount(r)).sum();
            let ideal: f64 = (0..relevant.min(k)).map(discount).sum();
            if ideal > 0.0 {
                self.ndcg[slot] += dcg / ideal;
            }
        }
    }
}

/// The DCG discount of 0-based rank r.
fn discount(r: usize) -> f64 {
    1.0 / ((r + 2) as f64).log2()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_arithmetic() {
        let mut s = Sums::default();
        // Hits at ranks 2 and 5 out of 3 relevant items.
        let hits: Vec<bool> = (0..25).map(|r| r == 1 || r == 4).collect();
        s.add(&hits, 3);
        assert!((s.mrr - 0.5).abs() < 1e-12);
        assert!((s.precision[0] - 2.0 / 5.0).abs() < 1e-12);
        assert!((s.precision[2] - 2.0 / 25.0).abs() < 1e-12);
        let dcg = 1.0 / 3f64.log2() + 1.0 / 6f64.log2();
        let ideal = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!((s.ndcg[0] - dcg / ideal).abs() < 1e-12);
    }

    #[test]
    fn holdout_is_a_deterministic_tenth() {
        let mut d = Dataset::new();
        for u in 0..200 {
            for k in 0..3 {
                d.push(&format!("user{u}"), &format!("i{k}"), k);
            }
        }
        d.push("loner", "i0", 0);
        let a = held_out_users(&d);
        assert_eq!(a.len(), 20);
        assert_eq!(a, held_out_users(&d));
        let loner = d.users() as u32 - 1;
        assert!(!a.contains(&loner));
    }
}

//! The demo data set local mode seeds into an empty bucket: synthetic interactions with planted
//! structure (users with latent tastes, power-law item popularity), repeatable byte for byte.

use std::io;
use std::path::Path;

use super::s3::BucketName;
use super::s3::write_object_with;

/// The end of the generated time range (2026-01-01T00:00:00Z): fixed so output is repeatable.
const END_TIMESTAMP: i64 = 1_767_225_600;
/// Share of a user's interactions drawn from their own cluster's items.
const IN_CLUSTER: f64 = 0.8;
/// Zipf exponent of item popularity.
const ITEM_ZIPF: f64 = 0.9;
/// Share of interactions that are purchases rather than clicks.
const PURCHASES: f64 = 0.1;

pub const INTERACTIONS_KEY: &str = "interactions/interactions.csv";
pub const USERS_KEY: &str = "batch/users.jsonl";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedOptions {
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    pub days: u32,
    pub clusters: usize,
    pub seed: u64,
}

impl Default for SeedOptions {
    fn default() -> Self {
        SeedOptions { users: 2_000, items: 500, interactions: 50_000, days: 90, clusters: 8, seed: 42 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSummary {
    pub interactions_key: String,
    pub users_key: String,
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
}

/// User id of 0-based user n: "u" and n + 1 zero-padded to the width of the user count.
pub fn user_id(n: usize, users: usize) -> String {
    format!("u{:0w$}", n + 1, w = digits(users))
}

/// Item id of 0-based item n, like [`user_id`] with "i".
pub fn item_id(n: usize, items: usize) -> String {
    format!("i{:0w$}", n + 1, w = digits(items))
}

fn digits(n: usize) -> usize {
    n.max(1).to_string().len()
}

/// The cluster of each user and item the generator plants (for tests).
pub fn planted_clusters(opts: &SeedOptions) -> (Vec<usize>, Vec<usize>) {
    let clusters = opts.clusters.max(1);
    let mut rng = fastrand::Rng::with_seed(opts.seed);
    let users = (0..opts.users).map(|_| rng.usize(..clusters)).collect();
    let items = (0..opts.items).map(|_| rng.usize(..clusters)).collect();
    (users, items)
}

/// Writes a realistic synthetic data set into the local bucket:
/// `s3://<bucket>/interactions/interactions.csv` (USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE) and
/// `s3://<bucket>/batch/users.jsonl` (`{"userId": ...}` per user) in the local S3 at `s3_root`; a `bucket` that breaks
/// S3's naming rules is refused with `InvalidInput` before anything is written. Every user has at least two
/// interactions when there are enough; a user's rows are written together, oldest first. Same
/// options give byte-identical files. Streams: holds per-user and per-item tables, never the rows.
pub fn write_demo_data(s3_root: &Path, bucket: &str, opts: &SeedOptions) -> io::Result<SeedSummary> {
    if opts.users == 0 || opts.items == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "the demo data needs users and items"));
    }
    let (user_cluster, item_cluster) = planted_clusters(opts);
    let clusters = opts.clusters.max(1);
    let mut rng = fastrand::Rng::with_seed(opts.seed ^ 0x5eed_da7a);

    // Popularity: item n has Zipf weight 1/(n+1)^s; cluster membership is random, so every
    // cluster has head and tail items.
    let item_weight: Vec<f64> = (0..opts.items).map(|n| 1.0 / ((n + 1) as f64).powf(ITEM_ZIPF)).collect();
    let global = Cumulative::new((0..opts.items).map(|n| (n, item_weight[n])));
    let per_cluster: Vec<Cumulative> = (0..clusters)
        .map(|c| {
            Cumulative::new((0..opts.items).filter(|&n| item_cluster[n] == c).map(|n| (n, item_weight[n])))
        })
        .collect();

    // Activity: two interactions per user, the rest spread by a heavy-tailed activity weight.
    let base = (opts.interactions / opts.users).min(2);
    let mut counts = vec![base as u32; opts.users];
    let activity = Cumulative::new((0..opts.users).map(|u| (u, (rng.f64() * 3.0).exp())));
    for _ in 0..opts.interactions - base * opts.users {
        counts[activity.sample(&mut rng)] += 1;
    }

    let bucket = BucketName::parse(bucket).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let span = i64::from(opts.days.max(1)) * 86_400;
    let start = END_TIMESTAMP - span;
    let item_ids: Vec<String> = (0..opts.items).map(|n| item_id(n, opts.items)).collect();
    let mut times: Vec<i64> = Vec::new();
    write_object_with(s3_root, &bucket, INTERACTIONS_KEY, |w| {
        w.write_all(b"USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\n")?;
        for (u, &count) in counts.iter().enumerate() {
            let uid = user_id(u, opts.users);
            let own = &per_cluster[user_cluster[u]];
            times.clear();
            times.extend((0..count).map(|_| start + rng.i64(0..span)));
            times.sort_unstable();
            for &t in &times {
                let pool = if own.is_empty() || rng.f64() >= IN_CLUSTER { &global } else { own };
                let item = &item_ids[pool.sample(&mut rng)];
                let event = if rng.f64() < PURCHASES { "purchase" } else { "click" };
                writeln!(w, "{uid},{item},{t},{event}")?;
            }
        }
        Ok(())
    })?;
    write_object_with(s3_root, &bucket, USERS_KEY, |w| {
        for u in 0..opts.users {
            writeln!(w, "{{\"userId\": \"{}\"}}", user_id(u, opts.users))?;
        }
        Ok(())
    })?;
    Ok(SeedSummary {
        interactions_key: INTERACTIONS_KEY.to_owned(),
        users_key: USERS_KEY.to_owned(),
        users: opts.users,
        items: opts.items,
        interactions: opts.interactions.max(base * opts.users),
    })
}

/// Sampling by weight: cumulative sums and a binary search.
struct Cumulative {
    ids: Vec<usize>,
    sums: Vec<f64>,
}

impl Cumulative {
    fn new(weighted: impl Iterator<Item = (usize, f64)>) -> Cumulative {
        let mut total = 0.0;
        let (mut ids, mut sums) = (Vec::new(), Vec::new());
        for (id, w) in weighted {
            total += w;
            ids.push(id);
            sums.push(total);
        }
        Cumulative { ids, sums }
    }

    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn sample(&self, rng: &mut fastrand::Rng) -> usize {
        let total = self.sums.last().copied().unwrap_or(0.0);
        let x = rng.f64() * total;
        let at = self.sums.partition_point(|&s| s <= x).min(self.ids.len().saturating_sub(1));
        self.ids[at]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_padded_to_the_count_width() {
        assert_eq!(user_id(0, 99_999), "u00001");
        assert_eq!(user_id(1_999, 2_000), "u2000");
        assert_eq!(item_id(0, 500), "i001");
        assert_eq!(item_id(9, 10), "i10");
    }

    #[test]
    fn sampling_follows_weights() {
        let c = Cumulative::new([(7, 1.0), (9, 3.0)].into_iter());
        let mut rng = fastrand::Rng::with_seed(1);
        let nines = (0..4_000).filter(|_| c.sample(&mut rng) == 9).count();
        assert!((2_800..3_200).contains(&nines), "{nines}");
    }
}

//! The local Personalize emulator's recommender: trained on the demo data generator's output,
//! whose planted clusters say what good recommendations look like.

use std::collections::{HashMap, HashSet};
use std::io::BufReader;
use std::sync::OnceLock;

use recflow::local::recommender::{
    BatchStats, Interaction, Model, Recipe, read_dataset, read_interactions, run_batch, run_batch_segment,
    train, train_dataset,
};
use recflow::local::seed::{SeedOptions, item_id, planted_clusters, user_id, write_demo_data};
use serde_json::{Value, json};

struct Fixture {
    opts: SeedOptions,
    interactions: Vec<Interaction>,
    personalization: Model,
    popularity: Model,
    user_cluster: HashMap<String, usize>,
    item_cluster: HashMap<String, usize>,
}

/// The default demo data set (2,000 users, 500 items, 50,000 interactions, 8 clusters), trained once.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let opts = SeedOptions::default();
        let dir = tempfile::tempdir().unwrap();
        let summary = write_demo_data(dir.path(), "demo", &opts).unwrap();
        let csv = recflow::local::s3::objects::object_path(
            dir.path(),
            &recflow::local::s3::BucketName::parse("demo").unwrap(),
            &summary.interactions_key,
        );
        let interactions = read_interactions(BufReader::new(std::fs::File::open(csv).unwrap())).unwrap();
        assert_eq!(interactions.len(), opts.interactions);
        let personalization = train(Recipe::UserPersonalization, &interactions).unwrap();
        let popularity = train(Recipe::PopularityCount, &interactions).unwrap();
        let (users, items) = planted_clusters(&opts);
        let user_cluster = users.iter().enumerate().map(|(n, &c)| (user_id(n, opts.users), c)).collect();
        let item_cluster = items.iter().enumerate().map(|(n, &c)| (item_id(n, opts.items), c)).collect();
        Fixture { opts, interactions, personalization, popularity, user_cluster, item_cluster }
    })
}

fn batch(model: &Model, input: &str, k: usize) -> (Vec<Value>, BatchStats) {
    let mut out = Vec::new();
    let stats = run_batch(model, input.as_bytes(), &mut out, k).unwrap();
    let text = String::from_utf8(out).unwrap();
    (text.lines().map(|l| serde_json::from_str(l).unwrap()).collect(), stats)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

fn all_users_input(f: &Fixture) -> String {
    (0..f.opts.users).map(|n| format!("{{\"userId\": \"{}\"}}\n", user_id(n, f.opts.users))).collect()
}

fn histories(f: &Fixture) -> HashMap<&str, HashSet<&str>> {
    let mut h: HashMap<&str, HashSet<&str>> = HashMap::new();
    for i in &f.interactions {
        h.entry(&i.user_id).or_default().insert(&i.item_id);
    }
    h
}

#[test]
fn recommendations_follow_planted_clusters_far_above_chance() {
    let f = fixture();
    let (lines, stats) = batch(&f.personalization, &all_users_input(f), 25);
    assert_eq!(stats, BatchStats { lines: f.opts.users as u64, errors: 0 });
    let clusters = f.opts.clusters;
    let mut cluster_size = vec![0usize; clusters];
    for c in f.item_cluster.values() {
        cluster_size[*c] += 1;
    }
    let (mut in_cluster, mut total, mut chance) = (0usize, 0usize, 0f64);
    for line in &lines {
        let user = line["input"]["userId"].as_str().unwrap();
        let c = f.user_cluster[user];
        let items = strings(&line["output"]["recommendedItems"]);
        assert_eq!(items.len(), 25);
        in_cluster += items.iter().filter(|i| f.item_cluster[i.as_str()] == c).count();
        total += items.len();
        chance += cluster_size[c] as f64 / f.opts.items as f64 * items.len() as f64;
    }
    let rate = in_cluster as f64 / total as f64;
    let chance_rate = chance / total as f64;
    eprintln!("in-cluster share of recommendations: {rate:.3}, chance {chance_rate:.3}");
    assert!(rate > 3.0 * chance_rate, "in-cluster {rate:.3} vs chance {chance_rate:.3}");
}

#[test]
fn metrics_are_in_range_and_beat_popularity() {
    let f = fixture();
    let keys = [
        "coverage",
        "mean_reciprocal_rank_at_25",
        "normalized_discounted_cumulative_gain_at_10",
        "normalized_discounted_cumulative_gain_at_25",
        "normalized_discounted_cumulative_gain_at_5",
        "precision_at_10",
        "precision_at_25",
        "precision_at_5",
    ];
    for model in [&f.personalization, &f.popularity] {
        let m = model.metrics();
        assert_eq!(m.keys().map(String::as_str).collect::<Vec<_>>(), keys);
        assert!(m.values().all(|v| (0.0..=1.0).contains(v)), "{m:?}");
    }
    let (p, q) = (f.personalization.metrics(), f.popularity.metrics());
    eprintln!("user-personalization: {p:?}\npopularity-count: {q:?}");
    assert!(p["precision_at_10"] > q["precision_at_10"]);
    assert!(
        p["normalized_discounted_cumulative_gain_at_10"] > q["normalized_discounted_cumulative_gain_at_10"]
    );
    assert!(p["coverage"] > q["coverage"]);
    assert!(p["precision_at_25"] > 0.0 && p["mean_reciprocal_rank_at_25"] > 0.0);
}

/// Each recipe is measured on its own answers (SIMS for the user's last item, ranking over a
/// candidate list), so a comparison of solutions shows different figures, each in range.
#[test]
fn each_recipe_is_measured_on_its_own_answers() {
    let f = fixture();
    let sims = train(Recipe::Sims, &f.interactions).unwrap();
    let ranking = train(Recipe::PersonalizedRanking, &f.interactions).unwrap();
    let (p, s, r) = (f.personalization.metrics(), sims.metrics(), ranking.metrics());
    eprintln!("user-personalization: {p:?}\nsims: {s:?}\npersonalized-ranking: {r:?}");
    for m in [s, r] {
        assert_eq!(m.keys().collect::<Vec<_>>(), p.keys().collect::<Vec<_>>());
        assert!(m.values().all(|v| (0.0..=1.0).contains(v)), "{m:?}");
        assert!(m["precision_at_25"] > 0.0, "{m:?}");
    }
    assert_ne!(p, s);
    assert_ne!(p, r);
    assert_ne!(s, r);
    // Ranking chooses among each user's 100 most popular new items: it covers far less of the
    // catalogue than recommendations over all of it.
    assert!(r["coverage"] < p["coverage"] / 2.0, "{r:?}");
}

#[test]
fn history_is_kept_and_every_list_is_full() {
    // Personalize leaves items a user interacted with in its recommendations unless a filter
    // removes them, and returns numResults items whenever the catalogue holds that many.
    let f = fixture();
    let history = histories(f);
    for model in [&f.personalization, &f.popularity] {
        let (lines, _) = batch(model, &all_users_input(f), 25);
        let mut from_history = 0;
        for line in &lines {
            let user = line["input"]["userId"].as_str().unwrap();
            let items = strings(&line["output"]["recommendedItems"]);
            assert_eq!(items.len(), 25);
            assert_eq!(items.iter().collect::<HashSet<_>>().len(), 25, "duplicates for {user}");
            from_history += items.iter().filter(|i| history[user].contains(i.as_str())).count();
        }
        assert!(from_history > 0, "{:?}: no user was recommended an item it had", model.recipe());
    }
}

#[test]
fn scores_are_shares_of_the_whole_catalogue_whatever_num_results() {
    let f = fixture();
    let input = "{\"userId\": \"u0001\"}\n{\"userId\": \"nobody\"}\n";
    let scored = |k: usize| -> Vec<Vec<(String, f64)>> {
        let (lines, _) = batch(&f.personalization, input, k);
        lines
            .iter()
            .map(|l| {
                let items = strings(&l["output"]["recommendedItems"]);
                let scores = l["output"]["scores"].as_array().unwrap().iter().map(|s| s.as_f64().unwrap());
                items.into_iter().zip(scores).collect()
            })
            .collect()
    };
    let catalogue = f.personalization.items();
    let (ten, twenty_five, all) = (scored(10), scored(25), scored(catalogue));
    for user in 0..2 {
        assert_eq!(
            ten[user][..],
            twenty_five[user][..10],
            "the same items and scores with numResults 10 and 25"
        );
        assert_eq!(all[user].len(), catalogue);
        let total: f64 = all[user].iter().map(|x| x.1).sum();
        assert!((total - 1.0).abs() < 1e-3, "the catalogue's scores sum to 1, not {total}");
        let top: f64 = ten[user].iter().map(|x| x.1).sum();
        assert!(top < 1.0, "ten of {catalogue} items hold less than the whole: {top}");
    }
}

#[test]
fn unknown_users_get_popular_items_and_scores_are_in_range() {
    let f = fixture();
    let (lines, _) = batch(&f.personalization, "{\"userId\": \"nobody\"}\n{\"userId\": \"u0001\"}\n", 10);
    let unknown = strings(&lines[0]["output"]["recommendedItems"]);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for i in &f.interactions {
        *counts.entry(&i.item_id).or_default() += 1;
    }
    let mut by_count: Vec<(&str, usize)> = counts.into_iter().collect();
    by_count.sort_by_key(|x| std::cmp::Reverse(x.1));
    let top_quarter: HashSet<&str> = by_count[..by_count.len() / 4].iter().map(|x| x.0).collect();
    assert_eq!(unknown.len(), 10);
    assert!(unknown.iter().all(|i| top_quarter.contains(i.as_str())), "{unknown:?}");
    let (pop_lines, _) = batch(&f.popularity, "{\"userId\": \"nobody\"}\n", 10);
    assert_eq!(unknown, strings(&pop_lines[0]["output"]["recommendedItems"]));
    assert!(pop_lines[0]["output"].get("scores").is_none(), "popularity outputs carry no scores");
    for line in &lines {
        let scores: Vec<f64> =
            line["output"]["scores"].as_array().unwrap().iter().map(|s| s.as_f64().unwrap()).collect();
        assert_eq!(scores.len(), 10);
        assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        assert!(scores.iter().sum::<f64>() <= 1.0 + 1e-6);
        assert_eq!(line["error"], Value::Null);
    }
}

#[test]
fn malformed_lines_get_error_lines_and_the_run_goes_on() {
    let f = fixture();
    let input = "{\"userId\": \"u0001\"}\n{not json\n\n{\"itemId\": \"i001\"}\n[1, 2]\n{\"userId\": 7}\n{\"userId\": \"u0002\", \"context\": {\"device\": \"phone\"}}";
    let (lines, stats) = batch(&f.personalization, input, 5);
    assert_eq!(stats, BatchStats { lines: 6, errors: 4 });
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0]["input"], json!({"userId": "u0001"}));
    assert_eq!(lines[1]["input"], json!("{not json"));
    assert_eq!(lines[2]["input"], json!({"itemId": "i001"}));
    assert_eq!(lines[2]["error"], json!("the line has no \"userId\""));
    assert_eq!(lines[3]["input"], json!([1, 2]));
    assert_eq!(lines[4]["input"], json!({"userId": 7}));
    for bad in &lines[1..5] {
        assert_eq!(bad["output"], json!({"recommendedItems": []}));
        assert!(bad["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    assert_eq!(lines[5]["input"], json!({"userId": "u0002", "context": {"device": "phone"}}));
    assert_eq!(strings(&lines[5]["output"]["recommendedItems"]).len(), 5);
    assert_eq!(lines[5]["error"], Value::Null);
}

#[test]
fn output_order_matches_input_across_workers() {
    let f = fixture();
    // Enough lines for several rounds split between threads, with errors sprinkled in.
    let input: String = (0..10_000)
        .map(|n| {
            if n % 97 == 0 {
                "oops\n".to_owned()
            } else {
                format!("{{\"userId\": \"{}\"}}\n", user_id(n % 2_000, 2_000))
            }
        })
        .collect();
    let (lines, stats) = batch(&f.personalization, &input, 3);
    assert_eq!(stats.lines, 10_000);
    assert_eq!(stats.errors, (0..10_000).filter(|n| n % 97 == 0).count() as u64);
    for (n, line) in lines.iter().enumerate() {
        if n % 97 == 0 {
            assert_eq!(line["input"], json!("oops"));
        } else {
            assert_eq!(line["input"]["userId"], json!(user_id(n % 2_000, 2_000)));
        }
    }
}

#[test]
fn sims_gives_related_items_without_scores() {
    let f = fixture();
    let sims = train(Recipe::Sims, &f.interactions).unwrap();
    let input: String =
        (0..f.opts.items).map(|n| format!("{{\"itemId\": \"{}\"}}\n", item_id(n, f.opts.items))).collect();
    let (lines, stats) = batch(&sims, &input, 10);
    assert_eq!(stats.errors, 0);
    let (mut same, mut total) = (0, 0);
    for line in &lines {
        let item = line["input"]["itemId"].as_str().unwrap();
        assert_eq!(line["output"].as_object().unwrap().keys().collect::<Vec<_>>(), ["recommendedItems"]);
        let related = strings(&line["output"]["recommendedItems"]);
        assert_eq!(related.len(), 10);
        assert!(!related.iter().any(|r| r == item));
        same += related.iter().filter(|r| f.item_cluster[r.as_str()] == f.item_cluster[item]).count();
        total += related.len();
    }
    let share = same as f64 / total as f64;
    eprintln!("sims: same-cluster share {share:.3}");
    assert!(share > 3.0 / f.opts.clusters as f64);
    let (lines, _) = batch(&sims, "{\"userId\": \"u0001\"}\n{\"itemId\": \"no-such-item\"}\n", 4);
    assert_eq!(lines[0]["error"], json!("the line has no \"itemId\""));
    assert_eq!(strings(&lines[1]["output"]["recommendedItems"]).len(), 4);
}

#[test]
fn personalized_ranking_reranks_the_whole_list() {
    let f = fixture();
    let ranking = train(Recipe::PersonalizedRanking, &f.interactions).unwrap();
    let user = user_id(0, f.opts.users);
    let c = f.user_cluster[&user];
    let history = histories(f);
    let fresh = |same: bool| {
        (0..f.opts.items)
            .map(|n| item_id(n, f.opts.items))
            .filter(|i| (f.item_cluster[i] == c) == same && !history[user.as_str()].contains(i.as_str()))
            .take(5)
            .collect::<Vec<_>>()
    };
    let (ours, theirs) = (fresh(true), fresh(false));
    let mut list: Vec<String> = theirs.iter().chain(&ours).cloned().collect();
    list.insert(3, "not-in-catalogue".into());
    let input = json!({"userId": user, "itemList": list}).to_string() + "\n";
    let (lines, stats) = batch(&ranking, &input, 25);
    assert_eq!(stats.errors, 0);
    let ranked = strings(&lines[0]["output"]["recommendedItems"]);
    let scores = lines[0]["output"]["scores"].as_array().unwrap();
    assert_eq!(ranked.len(), list.len());
    assert_eq!(scores.len(), list.len());
    assert_eq!(ranked.iter().collect::<HashSet<_>>(), list.iter().collect::<HashSet<_>>());
    assert_eq!(ranked.last().unwrap(), "not-in-catalogue");
    let s: Vec<f64> = scores.iter().map(|x| x.as_f64().unwrap()).collect();
    assert!(s.windows(2).all(|w| w[0] >= w[1]));
    let top5: HashSet<&String> = ranked[..5].iter().collect();
    let in_cluster_on_top = ours.iter().filter(|i| top5.contains(i)).count();
    assert!(in_cluster_on_top >= 4, "{ranked:?}");
    let (lines, _) = batch(&ranking, "{\"userId\": \"u0001\"}\n", 25);
    assert_eq!(lines[0]["error"], json!("the line has no \"itemList\""));
}

#[test]
fn batch_segments_list_users_for_items() {
    let f = fixture();
    // Mid-popularity items: nearly every user of the head item's own cluster already has it.
    let mut input: String =
        (20..120).map(|n| format!("{{\"itemId\": \"{}\"}}\n", item_id(n, f.opts.items))).collect();
    input.push_str("{\"userId\": \"u0001\"}\n");
    let mut out = Vec::new();
    let stats = run_batch_segment(&f.personalization, input.as_bytes(), &mut out, 50).unwrap();
    assert_eq!(stats, BatchStats { lines: 101, errors: 1 });
    let lines: Vec<Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let had: HashMap<&str, HashSet<&str>> = f.interactions.iter().fold(HashMap::new(), |mut m, i| {
        m.entry(i.item_id.as_str()).or_default().insert(i.user_id.as_str());
        m
    });
    let (mut same, mut total) = (0, 0);
    for line in &lines[..100] {
        let item = line["input"]["itemId"].as_str().unwrap();
        let users = strings(&line["output"]["usersList"]);
        assert_eq!(users.len(), 50);
        assert!(users.iter().all(|u| !had[item].contains(u.as_str())));
        same += users.iter().filter(|u| f.user_cluster[u.as_str()] == f.item_cluster[item]).count();
        total += users.len();
    }
    let share = same as f64 / total as f64;
    eprintln!("segments: same-cluster share of users {share:.3}");
    assert!(share > 3.0 / f.opts.clusters as f64);
    assert_eq!(lines[100]["output"], json!({"usersList": []}));
}

#[test]
fn save_and_load_round_trip() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bin");
    f.personalization.save(&path).unwrap();
    let loaded = Model::load(&path).unwrap();
    assert_eq!(loaded.recipe(), Recipe::UserPersonalization);
    assert_eq!(loaded.metrics(), f.personalization.metrics());
    let input = all_users_input(f) + "{\"userId\": \"nobody\"}\n";
    let (mut a, mut b) = (Vec::new(), Vec::new());
    run_batch(&f.personalization, input.as_bytes(), &mut a, 25).unwrap();
    run_batch(&loaded, input.as_bytes(), &mut b, 25).unwrap();
    assert!(a == b, "a loaded model answers differently");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left behind");
    // A damaged file is an error, not a panic.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert!(Model::load(&path).is_err());
    std::fs::write(&path, b"garbage").unwrap();
    assert!(Model::load(&path).is_err());
}

#[test]
fn too_little_data_fails_with_personalize_wording() {
    let row = |u: usize, i: usize, t: i64| Interaction {
        user_id: format!("u{u}"),
        item_id: format!("i{i}"),
        timestamp: t,
        event_type: None,
        event_value: None,
    };
    let few: Vec<Interaction> = (0..999).map(|n| row(n % 50, n % 7, n as i64)).collect();
    let err = train(Recipe::UserPersonalization, &few).err().unwrap();
    assert_eq!(err.to_string(), "Dataset has fewer than 1000 interactions.");
    // 1,200 interactions, but only 24 users have two or more.
    let mut lopsided: Vec<Interaction> = (0..1_000).map(|n| row(n % 24, n % 30, n as i64)).collect();
    lopsided.extend((0..200).map(|n| row(100 + n, 1, n as i64)));
    let err = train(Recipe::PersonalizedRanking, &lopsided).err().unwrap();
    assert_eq!(err.to_string(), "Dataset has fewer than 25 users with at least 2 interactions each.");
}

#[test]
fn demo_data_is_repeatable_and_well_formed() {
    let opts = SeedOptions { users: 300, items: 120, interactions: 5_000, days: 30, clusters: 4, seed: 7 };
    let (a, b, c) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let summary = write_demo_data(a.path(), "bkt", &opts).unwrap();
    write_demo_data(b.path(), "bkt", &opts).unwrap();
    write_demo_data(c.path(), "bkt", &SeedOptions { seed: 8, ..opts.clone() }).unwrap();
    assert_eq!(summary.interactions_key, "interactions/interactions.csv");
    assert_eq!(summary.users_key, "batch/users.jsonl");
    assert_eq!((summary.users, summary.items, summary.interactions), (300, 120, 5_000));
    let bucket = recflow::local::s3::BucketName::parse("bkt").unwrap();
    let read = |d: &tempfile::TempDir, key: &str| {
        std::fs::read(recflow::local::s3::objects::object_path(d.path(), &bucket, key)).unwrap()
    };
    for key in [&summary.interactions_key, &summary.users_key] {
        assert!(read(&a, key) == read(&b, key), "{key} differs between runs");
    }
    assert!(read(&a, &summary.interactions_key) != read(&c, &summary.interactions_key));
    let csv = read(&a, &summary.interactions_key);
    assert!(csv.starts_with(b"USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\n"));
    let rows = read_interactions(&csv[..]).unwrap();
    assert_eq!(rows.len(), 5_000);
    let mut per_user: HashMap<&str, usize> = HashMap::new();
    for r in &rows {
        *per_user.entry(&r.user_id).or_default() += 1;
        assert!((1_767_225_600 - 30 * 86_400..1_767_225_600).contains(&r.timestamp), "{r:?}");
        assert!(matches!(r.event_type.as_deref(), Some("click" | "purchase")));
    }
    assert_eq!(per_user.len(), 300);
    assert!(per_user.values().all(|&n| n >= 2));
    let users = String::from_utf8(read(&a, &summary.users_key)).unwrap();
    assert_eq!(users.lines().count(), 300);
    assert_eq!(users.lines().next(), Some("{\"userId\": \"u001\"}"));
    let d = read_dataset(&csv[..]).unwrap();
    assert_eq!((d.len(), d.users(), d.items()), (5_000, 300, d.items()));
    assert!(train_dataset(Recipe::UserPersonalization, &d).is_ok());
    assert_eq!(planted_clusters(&opts), planted_clusters(&opts));
}

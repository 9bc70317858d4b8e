//! Filters in the local Personalize emulator through the real aws-sdk-personalize: the
//! CreateFilter/DescribeFilter/ListFilters/DeleteFilter lifecycle and checks, and filters applied
//! by batch inference jobs (`filterArn`, per-line `filterValues`).

use std::collections::HashMap;

use recflow::local::demo::{BUCKET, FILTER_EXPRESSION};
use recflow::local::seed::USERS_KEY;
use serde_json::{Value, json};

#[path = "support/clients.rs"]
mod clients;
#[path = "support/trained.rs"]
mod trained;

fn items(line: &Value) -> Vec<String> {
    line["output"]["recommendedItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_are_created_checked_listed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let t = trained::demo_imported(dir.path()).await;
    let group = &t.demo.dataset_group_arn;
    let described =
        t.pz.describe_filter().filter_arn(&t.demo.filter_arn).send().await.unwrap().filter.unwrap();
    assert_eq!(described.status(), Some("ACTIVE"));
    assert_eq!(described.filter_expression(), Some(FILTER_EXPRESSION));
    assert_eq!(described.dataset_group_arn(), Some(group.as_str()));

    let create = |name: &str, expression: &str| {
        t.pz.create_filter().name(name).dataset_group_arn(group).filter_expression(expression).send()
    };
    let malformed =
        create("broken", r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase""#).await.unwrap_err();
    let malformed = malformed.into_service_error();
    assert!(malformed.is_invalid_input_exception(), "{malformed:?}");
    let message = malformed.meta().message().unwrap();
    assert!(message.starts_with("Invalid filter expression: expected ')'"), "{message}");
    // The demo group has no Items dataset, and its interactions schema no EVENT_VALUE.
    for expression in [
        r#"EXCLUDE ItemID WHERE Items.GENRE IN ("Comedy")"#,
        r#"EXCLUDE ItemID WHERE Interactions.EVENT_VALUE IN ("1")"#,
    ] {
        let e = create("unknown-field", expression).await.unwrap_err().into_service_error();
        assert!(e.is_invalid_input_exception(), "{expression}: {e:?}");
    }
    let deep = format!("EXCLUDE ItemID WHERE {}", "(".repeat(2_400));
    assert!(create("deep", &deep).await.unwrap_err().into_service_error().is_invalid_input_exception());

    // Ten filters per dataset group: the demo's and nine more.
    let mut arns = Vec::new();
    for n in 0..9 {
        let arn = create(&format!("f{n}"), r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")"#)
            .await
            .unwrap()
            .filter_arn
            .unwrap();
        arns.push(arn);
    }
    let over =
        create("f9", r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")"#).await.unwrap_err();
    assert!(over.into_service_error().is_limit_exceeded_exception());
    let again =
        create("f0", r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")"#).await.unwrap_err();
    assert!(again.into_service_error().is_resource_already_exists_exception());

    let listed = t.pz.list_filters().dataset_group_arn(group).send().await.unwrap();
    assert_eq!(listed.filters().len(), 10);
    let page = t.pz.list_filters().dataset_group_arn(group).max_results(4).send().await.unwrap();
    assert_eq!(page.filters().len(), 4);
    assert!(page.next_token().is_some());

    t.pz.delete_filter().filter_arn(&arns[0]).send().await.unwrap();
    let gone = t.pz.describe_filter().filter_arn(&arns[0]).send().await.unwrap_err().into_service_error();
    assert!(gone.is_resource_not_found_exception(), "{gone:?}");
    let twice = t.pz.delete_filter().filter_arn(&arns[0]).send().await.unwrap_err().into_service_error();
    assert!(twice.is_resource_not_found_exception(), "{twice:?}");
    assert_eq!(t.pz.list_filters().dataset_group_arn(group).send().await.unwrap().filters().len(), 9);
    t.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_kept_unless_the_purchase_filter_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let t = trained::demo_imported(dir.path()).await;
    let version = t.train(&t.demo.solution_arn).await;
    let purchased = t.items_with_event("purchase");

    let plain = t.batch("plain", &version, USERS_KEY, None).await.unwrap();
    let filtered = t.batch("filtered", &version, USERS_KEY, Some(&t.demo.filter_arn)).await.unwrap();
    assert_eq!(plain.len(), filtered.len());
    let mut kept_purchases = 0;
    for (a, b) in plain.iter().zip(&filtered) {
        let user = a["input"]["userId"].as_str().unwrap();
        let bought = purchased.get(user).cloned().unwrap_or_default();
        let (a, b) = (items(a), items(b));
        assert_eq!((a.len(), b.len()), (25, 25), "{user}: numResults items whenever the catalogue has them");
        kept_purchases += a.iter().filter(|i| bought.contains(*i)).count();
        assert!(b.iter().all(|i| !bought.contains(i)), "{user} was recommended an item it bought");
    }
    assert!(kept_purchases > 0, "without a filter, items the users bought stay in");

    // A filter that does not exist, or belongs to no such ARN, is refused at create.
    let missing = format!("{}-nope", t.demo.filter_arn);
    let e = t.batch("missing", &version, USERS_KEY, Some(&missing)).await.unwrap_err();
    assert!(e.contains("ResourceNotFoundException"), "{e}");
    t.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_metadata_filters_with_placeholders_apply_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let t = trained::demo_imported(dir.path()).await;
    let group = t.demo.dataset_group_arn.clone();
    // An Items dataset: GENRE by item number modulo 3, PRICE = 10 x the number modulo 20.
    let plain = t.batch_free_version().await;
    let catalogue: Vec<String> = plain.1;
    let genre = |n: usize| ["Comedy", "Drama", "Horror"][n % 3];
    let mut csv = String::from("ITEM_ID,GENRE,PRICE\n");
    let mut genres = HashMap::new();
    let mut prices = HashMap::new();
    for (n, item) in catalogue.iter().enumerate() {
        let g = if n % 7 == 0 { format!("{}|Family", genre(n)) } else { genre(n).to_string() };
        let price = 10 * (n % 20);
        csv.push_str(&format!("{item},{g},{price}\n"));
        genres.insert(item.clone(), g);
        prices.insert(item.clone(), price);
    }
    let bucket = recflow::local::s3::BucketName::parse(BUCKET).unwrap();
    recflow::local::s3::write_object_with(&t.emulator.s3_root(), &bucket, "items/items.csv", |w| {
        w.write_all(csv.as_bytes())
    })
    .unwrap();
    let schema = t
        .pz
        .create_schema()
        .name("demo-items")
        .schema(r#"{"type":"record","name":"Items","namespace":"com.amazonaws.personalize.schema","fields":[{"name":"ITEM_ID","type":"string"},{"name":"GENRE","type":"string","categorical":true},{"name":"PRICE","type":"float"}],"version":"1.0"}"#)
        .send()
        .await
        .unwrap()
        .schema_arn
        .unwrap();
    let dataset =
        t.pz.create_dataset()
            .name("demo-items")
            .dataset_group_arn(&group)
            .dataset_type("Items")
            .schema_arn(schema)
            .send()
            .await
            .unwrap()
            .dataset_arn
            .unwrap();
    clients::wait_for("items dataset", 10, 3000, || async {
        t.pz.describe_dataset().dataset_arn(&dataset).send().await.unwrap().dataset.unwrap().status.unwrap()
    })
    .await;
    clients::import_and_wait(
        &t.pz,
        "items-import",
        &dataset,
        &format!("s3://{BUCKET}/items/items.csv"),
        10,
        3000,
    )
    .await;
    let version = plain.0;
    let filter = |name: &'static str, expression: &'static str| {
        let pz = t.pz.clone();
        let group = group.clone();
        async move {
            let arn = pz
                .create_filter()
                .name(name)
                .dataset_group_arn(group)
                .filter_expression(expression)
                .send()
                .await
                .unwrap()
                .filter_arn
                .unwrap();
            clients::wait_for(name, 10, 3000, || async {
                pz.describe_filter().filter_arn(&arn).send().await.unwrap().filter.unwrap().status.unwrap()
            })
            .await;
            arn
        }
    };
    let genre_filter = filter("genres", "INCLUDE ItemID WHERE Items.GENRE IN ($GENRES)").await;
    let cheap = filter(
        "cheap",
        "EXCLUDE ItemID WHERE Items.PRICE > 100 | EXCLUDE ItemID WHERE Items.GENRE IN ($NOT)",
    )
    .await;
    t.put_lines(
        "in/genres.jsonl",
        &[
            json!({"userId": "u0001", "filterValues": {"GENRES": "\"Comedy\",\"Family\""}}),
            json!({"userId": "u0002", "filterValues": {"GENRES": "\"Horror\""}}),
            json!({"userId": "u0003"}),
        ],
    );
    let lines = t.batch("genres", &version, "in/genres.jsonl", Some(&genre_filter)).await.unwrap();
    let first = items(&lines[0]);
    assert_eq!(first.len(), 25);
    assert!(first.iter().all(|i| genres[i].split('|').any(|g| g == "Comedy" || g == "Family")), "{first:?}");
    assert!(first.iter().any(|i| genres[i].contains("Family") && !genres[i].starts_with("Comedy")));
    assert!(items(&lines[1]).iter().all(|i| genres[i].starts_with("Horror")));
    assert!(lines[2]["error"].as_str().unwrap().contains("$GENRES"), "{}", lines[2]);
    assert_eq!(lines[2]["output"], json!({"recommendedItems": []}));

    t.put_lines(
        "in/cheap.jsonl",
        &[json!({"userId": "u0001"}), json!({"userId": "u0001", "filterValues": {"NOT": "\"Drama\""}})],
    );
    let lines = t.batch("cheap", &version, "in/cheap.jsonl", Some(&cheap)).await.unwrap();
    let (all, no_drama) = (items(&lines[0]), items(&lines[1]));
    assert_eq!((all.len(), no_drama.len()), (25, 25));
    assert!(all.iter().all(|i| prices[i] <= 100), "EXCLUDE Items.PRICE > 100");
    assert!(
        all.iter().any(|i| genres[i].starts_with("Drama")),
        "an EXCLUDE without its value is not applied"
    );
    assert!(no_drama.iter().all(|i| prices[i] <= 100 && !genres[i].starts_with("Drama")));
    t.emulator.shutdown().await;
}

impl trained::Trained {
    /// A trained version and the catalogue it knows (every item any user was recommended or had).
    async fn batch_free_version(&self) -> (String, Vec<String>) {
        let version = self.train(&self.demo.solution_arn).await;
        let bucket = recflow::local::s3::BucketName::parse(BUCKET).unwrap();
        let path = recflow::local::s3::objects::object_path(
            &self.emulator.s3_root(),
            &bucket,
            recflow::local::seed::INTERACTIONS_KEY,
        );
        let mut reader = csv::Reader::from_path(path).unwrap();
        let mut catalogue: Vec<String> = reader.records().map(|r| r.unwrap()[1].to_string()).collect();
        catalogue.sort();
        catalogue.dedup();
        (version, catalogue)
    }
}

//! The local Personalize runtime through the real aws-sdk-personalizeruntime client:
//! GetRecommendations and GetPersonalizedRanking on ACTIVE campaigns, answered from the model
//! batch inference uses, with numResults, filters and filter values.

use aws_sdk_personalizeruntime::Client as Runtime;
use recflow::local::seed::USERS_KEY;

#[path = "support/clients.rs"]
mod clients;
#[path = "support/trained.rs"]
mod trained;

fn runtime(t: &trained::Trained) -> Runtime {
    let endpoint = t
        .emulator
        .environment()
        .into_iter()
        .find(|(k, _)| *k == "AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME")
        .map(|(_, v)| v)
        .expect("the emulator exports AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME");
    assert_eq!(endpoint, t.emulator.personalize_runtime.endpoint());
    Runtime::from_conf(
        aws_sdk_personalizeruntime::Config::builder()
            .behavior_version(aws_sdk_personalizeruntime::config::BehaviorVersion::latest())
            .region(aws_sdk_personalizeruntime::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_personalizeruntime::config::Credentials::new(
                "recflow",
                "recflow-local-secret",
                None,
                None,
                "test",
            ))
            .endpoint_url(endpoint)
            .build(),
    )
}

async fn campaign(t: &trained::Trained, name: &str, version: &str) -> String {
    let arn =
        t.pz.create_campaign()
            .name(name)
            .solution_version_arn(version)
            .send()
            .await
            .unwrap()
            .campaign_arn
            .unwrap();
    let status = clients::wait_for("campaign", 10, 3000, || async {
        t.pz.describe_campaign().campaign_arn(&arn).send().await.unwrap().campaign.unwrap().status.unwrap()
    })
    .await;
    assert_eq!(status, "ACTIVE");
    arn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommendations_come_from_the_batch_model_with_scores_independent_of_num_results() {
    let dir = tempfile::tempdir().unwrap();
    let t = trained::demo_imported(dir.path()).await;
    let version = t.train(&t.demo.solution_arn).await;
    let rt = runtime(&t);

    // Not a campaign yet: the runtime does not know it.
    let missing = format!("{}-campaign", t.demo.solution_arn.replace(":solution/", ":campaign/"));
    let e = rt.get_recommendations().campaign_arn(&missing).user_id("u0001").send().await.unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());
    let arn = campaign(&t, "demo-campaign", &version).await;

    // A user whose batch recommendations hold an item it bought: the model keeps history in.
    let purchased = t.items_with_event("purchase");
    let batch = t.batch("same-model", &version, USERS_KEY, None).await.unwrap();
    let items_of = |line: &serde_json::Value| -> Vec<String> {
        line["output"]["recommendedItems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let line = batch
        .iter()
        .find(|l| {
            let bought = purchased.get(l["input"]["userId"].as_str().unwrap());
            items_of(l).iter().any(|i| bought.is_some_and(|b| b.contains(i)))
        })
        .expect("some user's recommendations hold an item it bought");
    let user = line["input"]["userId"].as_str().unwrap();
    let bought = &purchased[user];

    let ask = |n: i32| rt.get_recommendations().campaign_arn(&arn).user_id(user).num_results(n).send();
    let ten = ask(10).await.unwrap();
    let twenty_five = ask(25).await.unwrap();
    assert_eq!(ten.item_list().len(), 10);
    assert_eq!(twenty_five.item_list().len(), 25);
    assert!(ten.recommendation_id().is_some());
    for (a, b) in ten.item_list().iter().zip(twenty_five.item_list()) {
        assert_eq!(a.item_id(), b.item_id());
        assert_eq!(a.score(), b.score(), "an item's score does not depend on numResults");
    }
    let sum: f64 = twenty_five.item_list().iter().map(|i| i.score().unwrap()).sum();
    assert!(sum < 1.0, "scores are shares of the whole catalogue: {sum}");

    // The same answer as batch inference gives for the user.
    let runtime_items: Vec<String> =
        twenty_five.item_list().iter().map(|i| i.item_id().unwrap().to_string()).collect();
    assert_eq!(items_of(line), runtime_items);

    // The purchase filter removes what the user bought and still returns numResults items.
    let filtered = rt
        .get_recommendations()
        .campaign_arn(&arn)
        .user_id(user)
        .filter_arn(&t.demo.filter_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(filtered.item_list().len(), 25);
    assert!(filtered.item_list().iter().all(|i| !bought.contains(i.item_id().unwrap())));

    // Out of range, wrong recipe's operation, unsupported members: InvalidInputException.
    let e = ask(0).await.unwrap_err().into_service_error();
    assert!(e.is_invalid_input_exception(), "{e:?}");
    let e = ask(501).await.unwrap_err().into_service_error();
    assert!(e.is_invalid_input_exception(), "{e:?}");
    let e = rt.get_personalized_ranking().campaign_arn(&arn).user_id(user).input_list("i001").send().await;
    assert!(e.unwrap_err().into_service_error().is_invalid_input_exception());
    let e = rt.get_recommendations().campaign_arn(&arn).send().await.unwrap_err().into_service_error();
    assert!(e.is_invalid_input_exception(), "a user-personalization campaign needs a userId: {e:?}");
    // Context is accepted (and has nothing to act on in the emulator's model).
    let with_context = rt
        .get_recommendations()
        .campaign_arn(&arn)
        .user_id(user)
        .num_results(10)
        .context("DEVICE", "phone")
        .send();
    let with_context = with_context.await.unwrap();
    let ids = |l: &[aws_sdk_personalizeruntime::types::PredictedItem]| {
        l.iter().map(|i| i.item_id().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(ids(with_context.item_list()), ids(ten.item_list()));
    t.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personalized_ranking_reranks_the_input_with_scores_summing_to_one() {
    let dir = tempfile::tempdir().unwrap();
    let t = trained::demo_imported(dir.path()).await;
    let version = t.train(&t.demo.ranking_solution_arn).await;
    let rt = runtime(&t);
    let arn = campaign(&t, "ranking-campaign", &version).await;
    let purchased = t.items_with_event("purchase");
    let (user, bought) =
        purchased.iter().find(|(_, items)| items.len() >= 3).expect("a user with 3 purchases");
    let bought: Vec<String> = bought.iter().cloned().collect();
    let mut input: Vec<String> = bought.iter().take(3).cloned().collect();
    let bought_in_input = input.len();
    let others = (0..500).map(|n| recflow::local::seed::item_id(n, 500)).filter(|i| !bought.contains(i));
    input.extend(others.take(3));
    input.push("not-in-catalogue".into());
    let ranked = rt
        .get_personalized_ranking()
        .campaign_arn(&arn)
        .user_id(user)
        .set_input_list(Some(input.clone()))
        .send()
        .await
        .unwrap();
    let list = ranked.personalized_ranking();
    assert_eq!(list.len(), input.len());
    assert_eq!(list.last().unwrap().item_id(), Some("not-in-catalogue"));
    assert_eq!(list.last().unwrap().score(), Some(0.0));
    let sum: f64 = list.iter().map(|i| i.score().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-3, "{sum}");
    assert!(list.windows(2).all(|w| w[0].score() >= w[1].score()));

    let filtered = rt
        .get_personalized_ranking()
        .campaign_arn(&arn)
        .user_id(user)
        .set_input_list(Some(input.clone()))
        .filter_arn(&t.demo.filter_arn)
        .send()
        .await
        .unwrap();
    let kept: Vec<&str> = filtered.personalized_ranking().iter().map(|i| i.item_id().unwrap()).collect();
    assert_eq!(kept.len(), input.len() - bought_in_input, "{kept:?}");
    assert!(kept.iter().all(|i| !bought.iter().any(|b| b == i)));

    let e = rt.get_recommendations().campaign_arn(&arn).user_id(user).send().await.unwrap_err();
    assert!(
        e.into_service_error().is_invalid_input_exception(),
        "ranking campaigns answer GetPersonalizedRanking"
    );
    t.emulator.shutdown().await;
}

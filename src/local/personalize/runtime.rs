//! The Personalize runtime (service `Personalize Runtime`, restJson1): `POST /recommendations`
//! (GetRecommendations) and `POST /personalize-ranking` (GetPersonalizedRanking), answered from the
//! same trained model files batch inference reads, on a port of its own
//! (`AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME`). Shapes from the aws-sdk-personalizeruntime crate's
//! model: `{"itemList": [{"itemId", "score"}], "recommendationId"}` and
//! `{"personalizedRanking": [...], "recommendationId"}`; errors InvalidInputException (400) and
//! ResourceNotFoundException (404) with `x-amzn-errortype`.
//!
//! Rules: the campaign must be ACTIVE (a campaign still being created, or failed, is refused with
//! InvalidInputException: Personalize does not document this case); the campaign's solution
//! version is the one its latest finished update deployed; `numResults` is 1-500 (default 25);
//! scores come back for User-Personalization and Personalized-Ranking only (developer guide: none
//! for SIMS and Popularity-Count). `context` is accepted and ignored: the emulator trains on no
//! contextual metadata, which is when Personalize has nothing to use it for. `promotions`,
//! `metadataColumns` and `recommenderArn` (domain recommenders) are refused by name.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use super::filters::{self, FilterSource};
use super::lifecycle;
use super::protocol::{ApiError, DropConnection, Input};
use super::resources::{status, view};
use super::store::Kind;
use super::work::model_file;
use super::{PersonalizeHandle, Shared};
use crate::local::recommender::filter::{ItemFilter, Subject};
use crate::local::recommender::{Model, Recipe};

const MAX_BODY: usize = 1024 * 1024;
const DEFAULT_NUM_RESULTS: i64 = 25;
/// GetRecommendations' `numResults` bound and GetPersonalizedRanking's `inputList` bound (API
/// reference).
const MAX_RESULTS: i64 = 500;

/// A running runtime endpoint; it stops with the control plane's shutdown.
pub struct RuntimeHandle {
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl RuntimeHandle {
    /// The endpoint URL for an SDK client, e.g. `http://127.0.0.1:40124`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits for the server to stop (after [`PersonalizeHandle::shutdown`] began).
    pub async fn stopped(self) {
        if let Err(e) = self.server.await {
            tracing::warn!(error = %e, "personalize runtime task failed");
        }
    }
}

/// Trained models by model file (one per solution version and data directory): a version's model
/// never changes once ACTIVE.
type Models = Mutex<HashMap<std::path::PathBuf, Arc<Model>>>;

fn models() -> &'static Models {
    static MODELS: std::sync::OnceLock<Models> = std::sync::OnceLock::new();
    MODELS.get_or_init(Models::default)
}

impl PersonalizeHandle {
    /// Serves the runtime on `listener` from this emulator's campaigns, filters and models.
    pub fn serve_runtime(&self, listener: tokio::net::TcpListener) -> std::io::Result<RuntimeHandle> {
        let addr = listener.local_addr()?;
        let server = tokio::spawn(super::protocol::serve(Arc::clone(&self.shared), listener, handle));
        tracing::info!(%addr, "personalize runtime emulator listening");
        Ok(RuntimeHandle { addr, server })
    }
}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Response<Body>, DropConnection> {
    let (parts, body) = request.into_parts();
    let operation: fn(&Shared, &Input) -> Result<Value, ApiError> = match (&parts.method, parts.uri.path()) {
        (&Method::POST, "/recommendations") => get_recommendations,
        (&Method::POST, "/personalize-ranking") => get_personalized_ranking,
        (method, path) => {
            return Ok(error(&ApiError::unknown_operation(format!(
                "No operation at {method} {path}; the runtime takes POST /recommendations and POST /personalize-ranking"
            ))));
        }
    };
    let body = match axum::body::to_bytes(Body::new(body), MAX_BODY).await {
        Ok(body) => body,
        Err(e) => return Ok(error(&ApiError::serialization(format!("cannot read the body: {e}")))),
    };
    // Like every port of the emulator, the runtime answers only requests signed with the static
    // credentials (restJson1 clients read the error's name from x-amzn-errortype).
    if let Some(refusal) =
        crate::local::aws_json::signature_refusal(crate::local::aws_json::JsonVersion::V1_1, &parts, &body)
    {
        return Ok(refusal);
    }
    let input = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => map,
        _ => return Ok(error(&ApiError::serialization("The request body must be a JSON object"))),
    };
    // Loading a model and a filter's data reads files: off the async workers.
    let answer = tokio::task::spawn_blocking(move || operation(&shared, &Input(&input)))
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("the request failed: {e}"))));
    Ok(match answer {
        Ok(value) => crate::local::aws_json::response_for(
            crate::local::aws_json::JsonVersion::V1_1,
            StatusCode::OK,
            &value,
        ),
        Err(e) => error(&e),
    })
}

fn error(e: &ApiError) -> Response<Body> {
    let status = match e.kind {
        "ResourceNotFoundException" => StatusCode::NOT_FOUND,
        _ => StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
    };
    crate::local::aws_json::error(status, e.kind, &e.message)
}

/// What a request runs on: its campaign's model and, when it names one, its filter.
struct Served {
    model: Arc<Model>,
    filter: Option<ItemFilter>,
}

fn refuse_unsupported(input: &Input) -> Result<(), ApiError> {
    for member in ["recommenderArn", "promotions", "metadataColumns"] {
        if input.0.get(member).is_some_and(|v| !v.is_null()) {
            return Err(ApiError::invalid_input(format!("{member} is not supported by the local emulator.")));
        }
    }
    if let Some(context) = input.0.get("context")
        && !(context.is_null() || context.as_object().is_some_and(|c| c.values().all(Value::is_string)))
    {
        return Err(ApiError::serialization("'context' must be a map of strings"));
    }
    Ok(())
}

fn serve_campaign(shared: &Shared, input: &Input) -> Result<Served, ApiError> {
    refuse_unsupported(input)?;
    let campaign_arn = input.req_str("campaignArn")?;
    let (version_arn, filter) = {
        let state = shared.store.lock();
        let now = lifecycle::now();
        let campaign = state
            .get(campaign_arn)
            .filter(|r| r.kind == Kind::Campaign)
            .ok_or_else(|| ApiError::not_found(campaign_arn))?;
        let current = status(campaign, now).map_or("unknown", |s| s.name);
        if current != lifecycle::ACTIVE {
            return Err(ApiError::invalid_input(format!(
                "The campaign {campaign_arn} is {current}; recommendations come from ACTIVE campaigns only."
            )));
        }
        let applied = view(&state, campaign, now);
        let version_arn = applied
            .get("solutionVersionArn")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::internal("the campaign names no solution version"))?
            .to_string();
        let group = state.get(&version_arn).and_then(|v| v.field_str("datasetGroupArn"));
        let filter = match input.opt_str("filterArn")? {
            Some(arn) => {
                let record = filters::require_usable(&state, arn, group, now)?;
                Some(FilterSource::of(shared, record).ok_or_else(|| ApiError::not_found(arn))?)
            }
            None => None,
        };
        (version_arn, filter)
    };
    let model = load_model(shared, &version_arn)?;
    let filter = filter.map(|f| f.load()).transpose().map_err(ApiError::internal)?;
    Ok(Served { model, filter })
}

fn load_model(shared: &Shared, version_arn: &str) -> Result<Arc<Model>, ApiError> {
    let path = model_file(shared, version_arn);
    if let Some(model) = models().lock().unwrap_or_else(|p| p.into_inner()).get(&path) {
        return Ok(Arc::clone(model));
    }
    let model = Model::load(&path)
        .map(Arc::new)
        .map_err(|e| ApiError::internal(format!("cannot load the model of {version_arn}: {e}")))?;
    models().lock().unwrap_or_else(|p| p.into_inner()).insert(path, Arc::clone(&model));
    Ok(model)
}

fn filter_values(input: &Input) -> Result<HashMap<String, String>, ApiError> {
    match input.0.get("filterValues") {
        None | Some(Value::Null) => Ok(HashMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(ApiError::serialization("'filterValues' must be a map of strings")),
            })
            .collect(),
        Some(_) => Err(ApiError::serialization("'filterValues' must be a map of strings")),
    }
}

fn recommendation_id() -> Value {
    json!(format!("RID-{}", uuid::Uuid::new_v4()))
}

pub fn get_recommendations(shared: &Shared, input: &Input) -> Result<Value, ApiError> {
    let num_results = input.opt_i64("numResults")?.unwrap_or(DEFAULT_NUM_RESULTS);
    if !(1..=MAX_RESULTS).contains(&num_results) {
        return Err(ApiError::invalid_input(format!(
            "1 validation error detected: Value '{num_results}' at 'numResults' failed to satisfy constraint: \
             Member must have value between 1 and {MAX_RESULTS}"
        )));
    }
    let served = serve_campaign(shared, input)?;
    let model = &served.model;
    let (user_id, item_id) = (input.opt_str("userId")?, input.opt_str("itemId")?);
    let values = filter_values(input)?;
    let request = match &served.filter {
        Some(filter) => Some(
            filter.request(model, Subject { user_id, item_id }, &values).map_err(ApiError::invalid_input)?,
        ),
        None => None,
    };
    let keep = |j: u32| request.as_ref().is_none_or(|r| r.keep(j));
    let k = num_results as usize;
    let items: Vec<Value> = match model.recipe() {
        Recipe::UserPersonalization | Recipe::PopularityCount => {
            let user =
                user_id.ok_or_else(|| ApiError::invalid_input("This campaign's recipe needs a userId."))?;
            let scored = model.recipe() == Recipe::UserPersonalization;
            model
                .recommend_where(user, k, &keep)
                .into_iter()
                .map(|(item, score)| {
                    if scored {
                        json!({"itemId": item, "score": rounded(score)})
                    } else {
                        json!({"itemId": item})
                    }
                })
                .collect()
        }
        Recipe::Sims => {
            let item = item_id
                .ok_or_else(|| ApiError::invalid_input("This campaign's recipe (SIMS) needs an itemId."))?;
            model
                .similar_items_where(item, k, &keep)
                .into_iter()
                .map(|item| json!({"itemId": item}))
                .collect()
        }
        Recipe::PersonalizedRanking => {
            return Err(ApiError::invalid_input(
                "This campaign's recipe is a personalized-ranking recipe: call GetPersonalizedRanking.",
            ));
        }
    };
    Ok(json!({"itemList": items, "recommendationId": recommendation_id()}))
}

pub fn get_personalized_ranking(shared: &Shared, input: &Input) -> Result<Value, ApiError> {
    let user_id = input.req_str("userId")?;
    let list: Vec<String> = match input.0.get("inputList") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::serialization("'inputList' must be strings"))
            })
            .collect::<Result<_, _>>()?,
        None | Some(Value::Null) => {
            return Err(ApiError::invalid_input(
                "1 validation error detected: Value null at 'inputList' must not be null",
            ));
        }
        Some(_) => return Err(ApiError::serialization("'inputList' must be a list of strings")),
    };
    if list.is_empty() || list.len() > MAX_RESULTS as usize {
        return Err(ApiError::invalid_input(format!(
            "inputList has {} items; it takes 1 to {MAX_RESULTS}.",
            list.len()
        )));
    }
    let served = serve_campaign(shared, input)?;
    let model = &served.model;
    if model.recipe() != Recipe::PersonalizedRanking {
        return Err(ApiError::invalid_input(
            "GetPersonalizedRanking needs a campaign of a personalized-ranking recipe; call GetRecommendations.",
        ));
    }
    let values = filter_values(input)?;
    let list: Vec<String> = match &served.filter {
        Some(filter) => {
            let request = filter
                .request(model, Subject { user_id: Some(user_id), item_id: None }, &values)
                .map_err(ApiError::invalid_input)?;
            list.into_iter().filter(|i| request.keep_id(i)).collect()
        }
        None => list,
    };
    let ranked: Vec<Value> = model
        .rank(user_id, &list)
        .into_iter()
        .map(|(item, score)| json!({"itemId": item, "score": rounded(score)}))
        .collect();
    let mut out = Map::new();
    out.insert("personalizedRanking".into(), Value::Array(ranked));
    out.insert("recommendationId".into(), recommendation_id());
    Ok(Value::Object(out))
}

/// Six decimals, as batch output writes them.
fn rounded(score: f32) -> f64 {
    (score as f64 * 1e6).round() / 1e6
}

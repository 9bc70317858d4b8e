//! The service's predefined recipes, for ListRecipes and recipe ARN checks.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::Shared;
use super::arn::recipe_arn;
use super::protocol::{ApiError, Input};
use super::resources::{decode_token, encode_token, timestamp};

/// (name, domain) of every recipe the service lists; domain recipes belong to domain dataset groups.
const RECIPES: &[(&str, Option<&str>)] = &[
    ("aws-item-affinity", None),
    ("aws-item-attribute-affinity", None),
    ("aws-next-best-action", None),
    ("aws-personalized-ranking", None),
    ("aws-personalized-ranking-v2", None),
    ("aws-popularity-count", None),
    ("aws-semantic-similarity", None),
    ("aws-similar-items", None),
    ("aws-sims", None),
    ("aws-trending-now", None),
    ("aws-user-personalization", None),
    ("aws-user-personalization-v2", None),
    ("aws-ecomm-customers-who-viewed-x-also-viewed", Some("ECOMMERCE")),
    ("aws-ecomm-frequently-bought-together", Some("ECOMMERCE")),
    ("aws-ecomm-popular-items-by-purchases", Some("ECOMMERCE")),
    ("aws-ecomm-popular-items-by-views", Some("ECOMMERCE")),
    ("aws-ecomm-recommended-for-you", Some("ECOMMERCE")),
    ("aws-vod-because-you-watched-x", Some("VIDEO_ON_DEMAND")),
    ("aws-vod-more-like-x", Some("VIDEO_ON_DEMAND")),
    ("aws-vod-most-popular", Some("VIDEO_ON_DEMAND")),
    ("aws-vod-top-picks", Some("VIDEO_ON_DEMAND")),
    ("aws-vod-trending-now", Some("VIDEO_ON_DEMAND")),
];

/// A fixed creation time for the built-in recipes (2019-06-10, the service's GA).
const RECIPES_CREATED: f64 = 1_560_124_800.0;

pub fn exists(arn: &str) -> bool {
    RECIPES.iter().any(|(name, _)| recipe_arn(name) == arn)
}

pub fn list_recipes(_shared: &Arc<Shared>, input: &Input) -> Result<Value, ApiError> {
    if let Some(provider) = input.opt_str("recipeProvider")?
        && provider != "SERVICE"
    {
        return Err(ApiError::invalid_input(format!("recipeProvider '{provider}' is not SERVICE.")));
    }
    let domain = input.opt_str("domain")?;
    let max = input.opt_i64("maxResults")?.unwrap_or(100);
    if !(1..=100).contains(&max) {
        return Err(ApiError::invalid_input(format!("maxResults {max} is not between 1 and 100.")));
    }
    let start = match input.opt_str("nextToken")? {
        Some(token) => decode_token(token)?,
        None => 0,
    };
    let matching: Vec<&(&str, Option<&str>)> =
        RECIPES.iter().filter(|(_, d)| domain.is_none() || *d == domain).collect();
    if start > matching.len() {
        return Err(ApiError::invalid_next_token());
    }
    let end = (start + max as usize).min(matching.len());
    let recipes: Vec<Value> = matching[start..end]
        .iter()
        .map(|(name, domain)| {
            let mut summary = Map::new();
            summary.insert("name".into(), json!(name));
            summary.insert("recipeArn".into(), json!(recipe_arn(name)));
            summary.insert("status".into(), json!("ACTIVE"));
            summary.insert("creationDateTime".into(), timestamp(RECIPES_CREATED));
            summary.insert("lastUpdatedDateTime".into(), timestamp(RECIPES_CREATED));
            if let Some(domain) = domain {
                summary.insert("domain".into(), json!(domain));
            }
            Value::Object(summary)
        })
        .collect();
    let mut out = Map::new();
    out.insert("recipes".into(), Value::Array(recipes));
    if end < matching.len() {
        out.insert("nextToken".into(), json!(encode_token(end)));
    }
    Ok(Value::Object(out))
}

//! The work behind the local Personalize emulator, without any HTTP: reading interactions CSVs,
//! training recency-weighted item-to-item models, the offline metrics Personalize reports,
//! streamed batch inference, and filters in Personalize's filter expression language.

mod batch;
mod csv;
pub mod filter;
pub mod filter_expression;
mod metrics;
mod model;
mod persist;

pub use batch::{BatchStats, run_batch, run_batch_filtered, run_batch_segment};
pub use csv::{Dataset, read_dataset, read_interactions};
pub use model::{Model, TrainError, train, train_dataset};

/// One row of an interactions dataset.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interaction {
    pub user_id: String,
    pub item_id: String,
    pub timestamp: i64,
    pub event_type: Option<String>,
    pub event_value: Option<f64>,
}

/// Why an interactions import failed; the message becomes the import job's failureReason.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("line {line}: {message}")]
    BadRow { line: u64, message: String },
    #[error("the header has no {0} column (USER_ID, ITEM_ID and TIMESTAMP are required)")]
    MissingColumn(String),
    #[error("the file is empty: a header row is required")]
    Empty,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The Personalize recipes the emulator can train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Recipe {
    UserPersonalization,
    Sims,
    PopularityCount,
    PersonalizedRanking,
}

impl Recipe {
    /// Maps a recipe ARN (`arn:aws:personalize:::recipe/aws-sims`, ...) to a recipe; None for the
    /// recipes the emulator does not implement.
    pub fn from_arn(arn: &str) -> Option<Recipe> {
        let name = arn.strip_prefix("arn:aws:personalize:::recipe/")?;
        match name {
            "aws-user-personalization" | "aws-user-personalization-v2" => Some(Recipe::UserPersonalization),
            "aws-sims" => Some(Recipe::Sims),
            "aws-popularity-count" => Some(Recipe::PopularityCount),
            "aws-personalized-ranking" | "aws-personalized-ranking-v2" => Some(Recipe::PersonalizedRanking),
            _ => None,
        }
    }

    /// The recipe's ARN (the v1 name where there are two).
    pub fn arn(self) -> &'static str {
        match self {
            Recipe::UserPersonalization => "arn:aws:personalize:::recipe/aws-user-personalization",
            Recipe::Sims => "arn:aws:personalize:::recipe/aws-sims",
            Recipe::PopularityCount => "arn:aws:personalize:::recipe/aws-popularity-count",
            Recipe::PersonalizedRanking => "arn:aws:personalize:::recipe/aws-personalized-ranking",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_arns() {
        for r in
            [Recipe::UserPersonalization, Recipe::Sims, Recipe::PopularityCount, Recipe::PersonalizedRanking]
        {
            assert_eq!(Recipe::from_arn(r.arn()), Some(r));
        }
        assert_eq!(
            Recipe::from_arn("arn:aws:personalize:::recipe/aws-user-personalization-v2"),
            Some(Recipe::UserPersonalization)
        );
        assert_eq!(
            Recipe::from_arn("arn:aws:personalize:::recipe/aws-personalized-ranking-v2"),
            Some(Recipe::PersonalizedRanking)
        );
        assert_eq!(Recipe::from_arn("arn:aws:personalize:::recipe/aws-trending-now"), None);
        assert_eq!(Recipe::from_arn("aws-sims"), None);
    }
}

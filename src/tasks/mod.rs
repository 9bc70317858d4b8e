//! Task integrations keyed by Resource ARN: the scripted runner of `--mock`, the AWS SDK
//! integrations (Personalize, S3, EventBridge) and recflow's own tasks. The engine sees only the
//! [`crate::engine::TaskRunner`] trait.

pub mod scripted;

pub use scripted::{Scripted, ScriptedRunner};

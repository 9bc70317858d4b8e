//! The Amazon States Language: definitions, paths, intrinsic functions, Choice rules, Retry and
//! Catch, and payload templates.

pub mod choice;
pub mod definition;
pub mod duplicate_keys;
pub mod env;
pub mod errors;
pub(crate) mod fields;
pub mod intrinsics;
pub mod jsonata;
pub mod path;
pub mod payload;
pub mod query;
pub mod retry;
pub mod timestamp;

pub use definition::StateMachine;
pub use env::Env;
pub use errors::{DefinitionError, StatesError};

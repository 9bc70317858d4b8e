//! recflow: Amazon Personalize batch-recommendation pipelines as durable Amazon States
//! Language state machines.

pub mod asl;
pub mod atomic_file;
pub mod checkpoint;
pub mod cli;
pub mod daemon;
pub mod engine;
pub mod error_chain;
pub mod export;
pub mod local;
pub mod open_files;
pub mod schedule;
pub mod tasks;
pub mod text;

//! The embedded emulator (local mode): what stands in for AWS when recflow runs without an account.

pub mod recommender;
pub mod seed;

//! The embedded emulator: local stand-ins for the AWS services recflow drives.

pub mod personalize;
pub mod recommender;

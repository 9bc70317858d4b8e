//! The embedded default: a local Personalize, S3 and EventBridge that the real AWS SDK talks to
//! over loopback HTTP.

mod aws_json;
pub mod demo;
pub mod emulator;
pub mod events;
pub mod faults;
pub mod from_csv;
pub mod personalize;
pub mod recommender;
pub mod s3;
pub mod seed;

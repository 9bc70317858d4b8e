//! The embedded default: a local Personalize, S3, EventBridge and SQS that the real AWS SDK talks
//! to over loopback HTTP.

mod aws_json;
pub mod demo;
pub mod emulator;
pub mod event_pattern;
pub mod events;
pub mod faults;
pub mod from_csv;
pub mod http_server;
pub mod personalize;
pub mod recommender;
pub mod s3;
pub mod seed;
pub mod sigv4;
pub mod sqs;

//! The one place that loads the AWS configuration, and the one place that turns an SDK error
//! into the `{Error, Cause}` Step Functions would report.

use aws_config::BehaviorVersion;
use aws_sdk_personalize::config::ProvideCredentials;
use aws_sdk_personalize::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::asl::errors::{StatesError, names};
use crate::error_chain::error_chain;

/// Endpoints of a local emulator (`recflow run --local`, `recflow local serve`), with its static
/// test credentials.
#[derive(Debug, Clone)]
pub struct LocalEndpoints {
    pub personalize: String,
    pub s3: String,
    pub events: String,
    /// The local SQS's endpoint URL.
    pub sqs: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

/// The clients the task integrations use.
#[derive(Clone, Debug)]
pub struct Clients {
    pub personalize: aws_sdk_personalize::Client,
    pub s3: aws_sdk_s3::Client,
    pub events: aws_sdk_eventbridge::Client,
    /// Amazon SQS (awsJson1_0), honouring `AWS_ENDPOINT_URL_SQS`.
    pub sqs: aws_sdk_sqs::Client,
}

impl Clients {
    /// Clients for AWS itself: the standard chain (environment, `AWS_PROFILE` and the shared
    /// config and credentials files, SSO, container and instance roles), region, and
    /// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` overrides, as every AWS SDK reads them.
    /// When an S3 endpoint is overridden, S3 is addressed path-style (local S3 servers need it).
    /// A missing region or credentials is an error at once (naming what to set), not a task
    /// failure minutes into a run.
    pub async fn from_environment() -> Result<Clients, String> {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        if config.region().is_none() {
            return Err("no AWS region: set AWS_REGION (or a region in your AWS profile), or run on the embedded emulator with --local".into());
        }
        let Some(provider) = config.credentials_provider() else {
            return Err(
                "no AWS credentials provider could be set up; or run on the embedded emulator with --local"
                    .into(),
            );
        };
        let check = tokio::time::timeout(std::time::Duration::from_secs(15), provider.provide_credentials());
        match check.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(format!(
                    "no AWS credentials ({}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or run on the embedded emulator with --local",
                    error_chain(&e)
                ));
            }
            Err(_) => return Err("looking for AWS credentials took more than 15 s; or run on the embedded emulator with --local".into()),
        }
        let custom_s3 =
            ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"].iter().any(|v| std::env::var_os(v).is_some());
        let s3 = aws_sdk_s3::config::Builder::from(&config).force_path_style(custom_s3).build();
        Ok(Clients {
            personalize: aws_sdk_personalize::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3),
            events: aws_sdk_eventbridge::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
        })
    }

    /// Clients pointed at a local emulator; nothing from the environment is read, so a user's
    /// AWS profile can never send a local run to AWS.
    pub fn local(endpoints: &LocalEndpoints) -> Clients {
        let credentials = aws_sdk_personalize::config::Credentials::new(
            endpoints.access_key.clone(),
            endpoints.secret_key.clone(),
            None,
            None,
            "recflow-local",
        );
        let region = aws_sdk_personalize::config::Region::new(endpoints.region.clone());
        let personalize = aws_sdk_personalize::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region.clone())
            .credentials_provider(credentials.clone())
            .endpoint_url(&endpoints.personalize)
            .build();
        let s3 = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region.clone())
            .credentials_provider(credentials.clone())
            .endpoint_url(&endpoints.s3)
            .force_path_style(true)
            .build();
        let events = aws_sdk_eventbridge::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region.clone())
            .credentials_provider(credentials.clone())
            .endpoint_url(&endpoints.events)
            .build();
        let sqs = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region)
            .credentials_provider(credentials)
            .endpoint_url(&endpoints.sqs)
            .build();
        Clients {
            personalize: aws_sdk_personalize::Client::from_conf(personalize),
            s3: aws_sdk_s3::Client::from_conf(s3),
            events: aws_sdk_eventbridge::Client::from_conf(events),
            sqs: aws_sdk_sqs::Client::from_conf(sqs),
        }
    }
}

/// Step Functions' name for a service error: `<Service>.<Code>`, with `Exception` appended when
/// the code lacks it (`S3.NoSuchKeyException`; Personalize's codes already end in it). Source:
/// Step Functions developer guide, "Handling errors in AWS SDK integrations".
pub fn service_error_name(service: &str, code: &str) -> String {
    if code.ends_with("Exception") {
        format!("{service}.{code}")
    } else {
        format!("{service}.{code}Exception")
    }
}

/// An SDK error as Step Functions reports it: a service's 4xx answer by its code (`Personalize.
/// ResourceInUseException`, the service's message as Cause); a 5xx, a timeout or a connection
/// failure, after the SDK's own retries, as `States.TaskFailed` with the cause.
pub fn sdk_error<E>(service: &str, err: SdkError<E, HttpResponse>) -> StatesError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let SdkError::ServiceError(ctx) = &err {
        let status = ctx.raw().status().as_u16();
        let meta = ctx.err();
        if let (Some(code), true) = (meta.code(), status < 500) {
            return StatesError::new(service_error_name(service, code), meta.message().unwrap_or(code));
        }
        return StatesError::new(
            names::TASK_FAILED,
            format!(
                "{service} answered HTTP {status} {}: {}",
                meta.code().unwrap_or("(no code)"),
                meta.message().unwrap_or("(no message)")
            ),
        );
    }
    StatesError::new(names::TASK_FAILED, format!("{service}: {}", error_chain(&err)))
}

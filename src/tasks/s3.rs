//! `arn:aws:states:::aws-sdk:s3:<action>` for headObject, getObject, putObject, listObjectsV2
//! and copyObject, with Step Functions' PascalCase parameters and results. GetObject returns the
//! body as a string, as Step Functions does, so it is for small JSON or text objects (at most
//! 256 KiB, Step Functions' payload limit). S3's model is too large to ship, so the parameters
//! each action takes are listed here: the common ones, not every member S3 has.

use aws_sdk_s3::primitives::{ByteStream, DateTime as S3Time};
use serde_json::{Map, Value, json};

use super::aws::sdk_error;
use super::model::FieldProblem;
use crate::asl::errors::StatesError;
use crate::engine::clock::Clock;
use crate::engine::execution::timestamp;
use crate::engine::task::{Answer, TaskFuture, TaskRunner};
use crate::engine::transition::TaskCall;

/// The Resource prefix this runner serves; the action follows it.
pub const PREFIX: &str = "arn:aws:states:::aws-sdk:s3:";

/// Step Functions' limit on a task result (256 KiB); a larger GetObject body fails the task.
pub const MAX_BODY: usize = 256 * 1024;

/// (action, required parameters, optional parameters).
const ACTIONS: &[(&str, &[&str], &[&str])] = &[
    ("headObject", &["Bucket", "Key"], &["VersionId", "IfMatch", "IfNoneMatch"]),
    ("getObject", &["Bucket", "Key"], &["VersionId", "Range", "IfMatch", "IfNoneMatch"]),
    (
        "putObject",
        &["Bucket", "Key"],
        &["Body", "ContentType", "Metadata", "IfMatch", "IfNoneMatch", "CacheControl"],
    ),
    ("listObjectsV2", &["Bucket"], &["Prefix", "Delimiter", "MaxKeys", "ContinuationToken", "StartAfter"]),
    ("copyObject", &["Bucket", "Key", "CopySource"], &["ContentType", "Metadata", "MetadataDirective"]),
];

/// Checks an S3 Task's action and static parameter names (with a did-you-mean) and that the
/// required ones are given.
pub fn check(resource: &str, parameters: Option<&Value>) -> Vec<FieldProblem> {
    let Some(action) = resource.strip_prefix(PREFIX) else { return Vec::new() };
    let Some((_, required, optional)) = ACTIONS.iter().find(|(a, _, _)| *a == action) else {
        let known: Vec<&str> = ACTIONS.iter().map(|(a, _, _)| *a).collect();
        return vec![(
            "Resource".into(),
            format!("recflow calls S3 {} only, not '{action}'", known.join(", ")),
        )];
    };
    let empty = Map::new();
    let Some(params) = parameters.map_or(Some(&empty), Value::as_object) else {
        return vec![(String::new(), "Parameters must be an object".into())];
    };
    let mut problems = Vec::new();
    for key in params.keys() {
        let name = key.trim_end_matches(".$");
        if !required.contains(&name) && !optional.contains(&name) {
            let nearest = required.iter().chain(optional.iter()).min_by_key(|k| strsim::levenshtein(k, name));
            let hint = nearest.map(|n| format!("; did you mean '{n}'?")).unwrap_or_default();
            problems.push((name.to_string(), format!("unknown parameter '{name}'{hint}")));
        }
    }
    for name in *required {
        if !params.contains_key(*name) && !params.contains_key(&format!("{name}.$")) {
            problems.push((name.to_string(), "required by the service and missing".into()));
        }
    }
    problems
}

/// Whether recflow calls this S3 resource.
pub fn serves(resource: &str) -> bool {
    resource.strip_prefix(PREFIX).is_some_and(|a| ACTIONS.iter().any(|(known, _, _)| *known == a))
}

/// Amazon S3 for the engine.
pub struct S3Runner {
    client: aws_sdk_s3::Client,
}

impl S3Runner {
    pub fn new(client: aws_sdk_s3::Client) -> S3Runner {
        S3Runner { client }
    }

    /// Calls `action` with PascalCase parameters and gives Step Functions' result shape.
    pub async fn call_action(&self, action: &str, p: &Value) -> Result<Value, StatesError> {
        let problems = check(&format!("{PREFIX}{action}"), Some(p));
        if let Some((field, message)) = problems.first() {
            return Err(StatesError::runtime(format!(
                "The Parameters {p} could not be used to start the Task: [{field}: {message}]"
            )));
        }
        let c = &self.client;
        Ok(match action {
            "headObject" => {
                let o = c
                    .head_object()
                    .bucket(text(p, "Bucket")?)
                    .key(text(p, "Key")?)
                    .set_version_id(opt(p, "VersionId")?)
                    .set_if_match(opt(p, "IfMatch")?)
                    .set_if_none_match(opt(p, "IfNoneMatch")?)
                    .send()
                    .await
                    .map_err(|e| sdk_error("S3", e))?;
                object_fields(
                    o.content_length,
                    o.content_type(),
                    o.e_tag(),
                    o.last_modified(),
                    o.metadata(),
                    o.version_id(),
                )
            }
            "getObject" => {
                let o = c
                    .get_object()
                    .bucket(text(p, "Bucket")?)
                    .key(text(p, "Key")?)
                    .set_version_id(opt(p, "VersionId")?)
                    .set_range(opt(p, "Range")?)
                    .set_if_match(opt(p, "IfMatch")?)
                    .set_if_none_match(opt(p, "IfNoneMatch")?)
                    .send()
                    .await
                    .map_err(|e| sdk_error("S3", e))?;
                let mut out = object_fields(
                    o.content_length,
                    o.content_type(),
                    o.e_tag(),
                    o.last_modified(),
                    o.metadata(),
                    o.version_id(),
                );
                if o.content_length.unwrap_or(0) as usize > MAX_BODY {
                    return Err(too_large());
                }
                let bytes = o
                    .body
                    .collect()
                    .await
                    .map_err(|e| {
                        StatesError::new(crate::asl::errors::names::TASK_FAILED, format!("S3: {e}"))
                    })?
                    .into_bytes();
                if bytes.len() > MAX_BODY {
                    return Err(too_large());
                }
                let body = String::from_utf8(bytes.to_vec()).map_err(|_| {
                    StatesError::runtime("S3 getObject: the object is not UTF-8 text; Step Functions returns bodies as strings")
                })?;
                out["Body"] = body.into();
                out
            }
            "putObject" => {
                let body = match p.get("Body") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::String(s)) => s.clone().into_bytes(),
                    // Step Functions serialises a JSON body as its text.
                    Some(other) => other.to_string().into_bytes(),
                };
                let o = c
                    .put_object()
                    .bucket(text(p, "Bucket")?)
                    .key(text(p, "Key")?)
                    .body(ByteStream::from(body))
                    .set_content_type(opt(p, "ContentType")?)
                    .set_cache_control(opt(p, "CacheControl")?)
                    .set_if_match(opt(p, "IfMatch")?)
                    .set_if_none_match(opt(p, "IfNoneMatch")?)
                    .set_metadata(metadata(p)?)
                    .send()
                    .await
                    .map_err(|e| sdk_error("S3", e))?;
                strip_nulls(json!({"ETag": o.e_tag(), "VersionId": o.version_id()}))
            }
            "listObjectsV2" => {
                let max_keys = match p.get("MaxKeys") {
                    None => None,
                    Some(v) => Some(v.as_i64().and_then(|n| i32::try_from(n).ok()).ok_or_else(|| {
                        StatesError::runtime("S3 listObjectsV2: MaxKeys must be an integer")
                    })?),
                };
                let o = c
                    .list_objects_v2()
                    .bucket(text(p, "Bucket")?)
                    .set_prefix(opt(p, "Prefix")?)
                    .set_delimiter(opt(p, "Delimiter")?)
                    .set_continuation_token(opt(p, "ContinuationToken")?)
                    .set_start_after(opt(p, "StartAfter")?)
                    .set_max_keys(max_keys)
                    .send()
                    .await
                    .map_err(|e| sdk_error("S3", e))?;
                let contents: Vec<Value> = o
                    .contents()
                    .iter()
                    .map(|obj| {
                        strip_nulls(json!({
                            "Key": obj.key(),
                            "Size": obj.size(),
                            "ETag": obj.e_tag(),
                            "LastModified": obj.last_modified().map(time),
                            "StorageClass": obj.storage_class().map(|s| s.as_str()),
                        }))
                    })
                    .collect();
                let prefixes: Vec<Value> = o
                    .common_prefixes()
                    .iter()
                    .map(|cp| strip_nulls(json!({"Prefix": cp.prefix()})))
                    .collect();
                strip_nulls(json!({
                    "Contents": contents,
                    "CommonPrefixes": if prefixes.is_empty() { Value::Null } else { prefixes.into() },
                    "IsTruncated": o.is_truncated(),
                    "KeyCount": o.key_count(),
                    "MaxKeys": o.max_keys(),
                    "Name": o.name(),
                    "Prefix": o.prefix(),
                    "Delimiter": o.delimiter(),
                    "ContinuationToken": o.continuation_token(),
                    "NextContinuationToken": o.next_continuation_token(),
                    "StartAfter": o.start_after(),
                }))
            }
            "copyObject" => {
                let directive = opt(p, "MetadataDirective")?
                    .map(|d| aws_sdk_s3::types::MetadataDirective::from(d.as_str()));
                let o = c
                    .copy_object()
                    .bucket(text(p, "Bucket")?)
                    .key(text(p, "Key")?)
                    .copy_source(text(p, "CopySource")?)
                    .set_content_type(opt(p, "ContentType")?)
                    .set_metadata(metadata(p)?)
                    .set_metadata_directive(directive)
                    .send()
                    .await
                    .map_err(|e| sdk_error("S3", e))?;
                let result = o.copy_object_result().map(|r| {
                    strip_nulls(json!({"ETag": r.e_tag(), "LastModified": r.last_modified().map(time)}))
                });
                strip_nulls(json!({"CopyObjectResult": result, "VersionId": o.version_id()}))
            }
            other => return Err(StatesError::runtime(format!("recflow does not call S3 '{other}'"))),
        })
    }
}

impl TaskRunner for S3Runner {
    fn call<'a>(&'a self, call: &'a TaskCall, _clock: &'a dyn Clock) -> TaskFuture<'a> {
        Box::pin(async move {
            let action = call.resource.strip_prefix(PREFIX).unwrap_or_default();
            Ok(Answer::done(self.call_action(action, &call.parameters).await?))
        })
    }

    fn accepts(&self, _state: &str, resource: &str) -> bool {
        serves(resource)
    }
}

fn too_large() -> StatesError {
    StatesError::new(
        "States.DataLimitExceeded",
        format!("S3 getObject: the body is larger than the {MAX_BODY} bytes a task result may hold"),
    )
}

fn text(p: &Value, key: &str) -> Result<String, StatesError> {
    opt(p, key)?.ok_or_else(|| StatesError::runtime(format!("S3: {key} is required")))
}

fn opt(p: &Value, key: &str) -> Result<Option<String>, StatesError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(StatesError::runtime(format!("S3: {key} must be a string, not {other}"))),
    }
}

fn metadata(p: &Value) -> Result<Option<std::collections::HashMap<String, String>>, StatesError> {
    match p.get("Metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(StatesError::runtime(format!("S3: Metadata.{k} must be a string, not {other}"))),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(other) => Err(StatesError::runtime(format!("S3: Metadata must be an object, not {other}"))),
    }
}

fn time(t: &S3Time) -> String {
    chrono::DateTime::from_timestamp_millis(t.to_millis().unwrap_or(0)).map(timestamp).unwrap_or_default()
}

fn object_fields(
    length: Option<i64>,
    content_type: Option<&str>,
    etag: Option<&str>,
    modified: Option<&S3Time>,
    metadata: Option<&std::collections::HashMap<String, String>>,
    version: Option<&str>,
) -> Value {
    strip_nulls(json!({
        "ContentLength": length,
        "ContentType": content_type,
        "ETag": etag,
        "LastModified": modified.map(time),
        "Metadata": metadata.cloned().unwrap_or_default(),
        "VersionId": version,
    }))
}

/// Step Functions leaves members the service did not send out of the result.
fn strip_nulls(mut v: Value) -> Value {
    if let Value::Object(map) = &mut v {
        map.retain(|_, v| !v.is_null());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked() {
        let ok = json!({"Bucket": "b", "Key.$": "$.k"});
        assert_eq!(check("arn:aws:states:::aws-sdk:s3:getObject", Some(&ok)), vec![]);
        let bad = json!({"Bucket": "b", "Kye": "k"});
        let problems = check("arn:aws:states:::aws-sdk:s3:getObject", Some(&bad));
        assert!(
            problems.contains(&("Kye".into(), "unknown parameter 'Kye'; did you mean 'Key'?".into())),
            "{problems:?}"
        );
        assert!(
            problems.contains(&("Key".into(), "required by the service and missing".into())),
            "{problems:?}"
        );
        assert_eq!(check("arn:aws:states:::aws-sdk:s3:deleteBucket", None)[0].0, "Resource");
    }
}

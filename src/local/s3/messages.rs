//! The messages S3 puts beside its error codes: S3 always says what went wrong, and clients
//! print it ("An error occurred (NoSuchKey) when calling the GetObject operation: The
//! specified key does not exist.").
//!
//! Texts from the S3 API reference's error code list
//! (<https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList>).

pub(super) const NO_SUCH_KEY: &str = "The specified key does not exist.";
pub(super) const NO_SUCH_BUCKET: &str = "The specified bucket does not exist";
pub(super) const NO_SUCH_UPLOAD: &str = "The specified upload does not exist. The upload ID may be invalid, \
                                         or the upload may have been aborted or completed.";
pub(super) const BUCKET_NOT_EMPTY: &str = "The bucket you tried to delete is not empty";

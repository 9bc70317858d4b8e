//! The messages S3 puts beside its error codes. s3s-fs answers most errors with a bare code;
//! S3 always says what went wrong, and clients print it ("An error occurred (NoSuchKey) when
//! calling the GetObject operation: The specified key does not exist.").
//!
//! Texts from the S3 API reference's error code list
//! (<https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList>).

use s3s::{S3Error, S3ErrorCode};

pub(super) const NO_SUCH_KEY: &str = "The specified key does not exist.";
pub(super) const NO_SUCH_BUCKET: &str = "The specified bucket does not exist";
pub(super) const NO_SUCH_UPLOAD: &str = "The specified upload does not exist. The upload ID may be invalid, \
                                         or the upload may have been aborted or completed.";
pub(super) const BUCKET_NOT_EMPTY: &str = "The bucket you tried to delete is not empty";

/// `err` with S3's message when it carries none (codes without a known text pass unchanged).
pub(super) fn with_standard_message(err: S3Error) -> S3Error {
    if err.message().is_some() {
        return err;
    }
    let message = match err.code() {
        S3ErrorCode::NoSuchKey => NO_SUCH_KEY,
        S3ErrorCode::NoSuchBucket => NO_SUCH_BUCKET,
        S3ErrorCode::NoSuchUpload => NO_SUCH_UPLOAD,
        S3ErrorCode::BucketNotEmpty => BUCKET_NOT_EMPTY,
        _ => return err,
    };
    S3Error::with_message(err.code().clone(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_codes_get_s3s_text_and_given_texts_stay() {
        let bare = with_standard_message(S3Error::new(S3ErrorCode::NoSuchKey));
        assert_eq!(bare.message(), Some(NO_SUCH_KEY));
        let given = with_standard_message(S3Error::with_message(S3ErrorCode::NoSuchKey, "own"));
        assert_eq!(given.message(), Some("own"));
        assert_eq!(with_standard_message(S3Error::new(S3ErrorCode::AccessDenied)).message(), None);
    }
}

//! Checks an upload's Content-MD5 and `x-amz-checksum-*` values while the body streams, and
//! fails the stream's last read when they do not match.
//!
//! The store receives a body into a temporary file and renames it over the object only when
//! the stream ends cleanly, so a failed stream leaves the stored object as it was.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};
use md5::{Digest as _, Md5};
use s3s::checksum::ChecksumHasher;
use s3s::dto::{Checksum, ChecksumAlgorithm, StreamingBlob};
use s3s::{S3Error, S3ErrorCode, StdError, TrailingHeaders};

/// What a client declared about an upload's body.
#[derive(Debug, Default)]
pub(super) struct DeclaredDigests {
    pub content_md5: Option<String>,
    pub algorithm: Option<ChecksumAlgorithm>,
    /// Checksums sent as headers; trailers, when present, take precedence.
    pub checksums: Checksum,
    pub trailers: Option<TrailingHeaders>,
}

/// Shared between the body (which detects a mismatch) and the handler (which reports it).
#[derive(Debug, Clone, Default)]
pub(super) struct Verdict(Arc<Mutex<Option<String>>>);

impl Verdict {
    fn record(&self, message: String) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(message);
    }

    /// Replaces the error the store made of the failed stream (an InternalError) by BadDigest.
    pub(super) fn explain(&self, err: S3Error) -> S3Error {
        match self.0.lock().unwrap_or_else(PoisonError::into_inner).take() {
            Some(message) => S3Error::with_message(S3ErrorCode::BadDigest, message),
            None => err,
        }
    }
}

/// Wraps `body` so that it fails instead of ending when the declared digests do not match.
/// A malformed Content-MD5 is refused at once, before anything is read.
pub(super) fn verify(
    body: StreamingBlob,
    declared: DeclaredDigests,
) -> Result<(StreamingBlob, Verdict), S3Error> {
    let expected_md5 = match declared.content_md5.as_deref() {
        None => None,
        Some(text) => Some(decode_content_md5(text)?),
    };
    let mut hasher = ChecksumHasher::default();
    enable_hashers(&mut hasher, &declared);
    let verdict = Verdict::default();
    let checked = VerifiedBody {
        inner: s3s::Body::from(body),
        md5: expected_md5.map(|expected| (Md5::new(), expected)),
        hasher: Some(hasher),
        header_checksums: declared.checksums,
        trailers: declared.trailers,
        verdict: verdict.clone(),
        finished: false,
    };
    Ok((StreamingBlob::from(s3s::Body::http_body(checked)), verdict))
}

fn decode_content_md5(text: &str) -> Result<[u8; 16], S3Error> {
    BASE64.decode(text.trim()).ok().and_then(|bytes| <[u8; 16]>::try_from(bytes).ok()).ok_or_else(|| {
        S3Error::with_message(
            S3ErrorCode::InvalidDigest,
            "The Content-MD5 you specified is not a base64-encoded 128-bit digest.",
        )
    })
}

/// A hasher for the checksums `declared` names (by value or by algorithm): the ones the store
/// keeps with the object and returns on reads.
pub(super) fn hasher_for(declared: &DeclaredDigests) -> ChecksumHasher {
    let mut hasher = ChecksumHasher::default();
    enable_hashers(&mut hasher, declared);
    hasher
}

fn enable_hashers(hasher: &mut ChecksumHasher, declared: &DeclaredDigests) {
    let sums = &declared.checksums;
    let algorithm = declared.algorithm.as_ref().map(ChecksumAlgorithm::as_str);
    if sums.checksum_crc32.is_some() || algorithm == Some(ChecksumAlgorithm::CRC32) {
        hasher.crc32 = Some(Default::default());
    }
    if sums.checksum_crc32c.is_some() || algorithm == Some(ChecksumAlgorithm::CRC32C) {
        hasher.crc32c = Some(Default::default());
    }
    if sums.checksum_sha1.is_some() || algorithm == Some(ChecksumAlgorithm::SHA1) {
        hasher.sha1 = Some(Default::default());
    }
    if sums.checksum_sha256.is_some() || algorithm == Some(ChecksumAlgorithm::SHA256) {
        hasher.sha256 = Some(Default::default());
    }
    if sums.checksum_crc64nvme.is_some() || algorithm == Some(ChecksumAlgorithm::CRC64NVME) {
        hasher.crc64nvme = Some(Default::default());
    }
}

struct VerifiedBody {
    inner: s3s::Body,
    md5: Option<(Md5, [u8; 16])>,
    hasher: Option<ChecksumHasher>,
    header_checksums: Checksum,
    trailers: Option<TrailingHeaders>,
    verdict: Verdict,
    finished: bool,
}

impl VerifiedBody {
    fn update(&mut self, data: &[u8]) {
        if let Some((md5, _)) = &mut self.md5 {
            md5.update(data);
        }
        if let Some(hasher) = &mut self.hasher {
            hasher.update(data);
        }
    }

    /// Compares what was received with what was declared; `Some(message)` on a mismatch.
    fn mismatch(&mut self) -> Option<String> {
        if let Some((md5, expected)) = self.md5.take() {
            let received: [u8; 16] = md5.finalize().into();
            if received != expected {
                return Some(format!(
                    "The Content-MD5 you specified did not match what we received (expected {}, received {}).",
                    BASE64.encode(expected),
                    BASE64.encode(received)
                ));
            }
        }
        let received = self.hasher.take()?.finalize();
        let expected = self.expected_checksums();
        let pairs = [
            ("CRC32", &expected.checksum_crc32, &received.checksum_crc32),
            ("CRC32C", &expected.checksum_crc32c, &received.checksum_crc32c),
            ("SHA1", &expected.checksum_sha1, &received.checksum_sha1),
            ("SHA256", &expected.checksum_sha256, &received.checksum_sha256),
            ("CRC64NVME", &expected.checksum_crc64nvme, &received.checksum_crc64nvme),
        ];
        // Only declared values are compared: an algorithm named without a value is computed
        // and stored, with nothing to compare it to.
        pairs.into_iter().find_map(|(name, expected, received)| match (expected, received) {
            (Some(expected), Some(received)) if expected != received => Some(format!(
                "The {name} checksum you specified did not match what we received \
                 (expected {expected}, received {received})."
            )),
            _ => None,
        })
    }

    fn expected_checksums(&self) -> Checksum {
        let mut expected = self.header_checksums.clone();
        let Some(trailers) = &self.trailers else { return expected };
        // `read`, not `take`: the trailers stay readable for anyone after the stream ends.
        trailers.read(|headers| {
            let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let slots = [
                ("x-amz-checksum-crc32", &mut expected.checksum_crc32),
                ("x-amz-checksum-crc32c", &mut expected.checksum_crc32c),
                ("x-amz-checksum-sha1", &mut expected.checksum_sha1),
                ("x-amz-checksum-sha256", &mut expected.checksum_sha256),
                ("x-amz-checksum-crc64nvme", &mut expected.checksum_crc64nvme),
            ];
            for (name, slot) in slots {
                if let Some(v) = value(name) {
                    *slot = Some(v);
                }
            }
        });
        expected
    }
}

#[derive(Debug)]
struct DigestMismatch(String);

impl fmt::Display for DigestMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DigestMismatch {}

impl HttpBody for VerifiedBody {
    type Data = Bytes;
    type Error = StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StdError>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.update(data);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => {
                self.finished = true;
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                self.finished = true;
                match self.mismatch() {
                    None => Poll::Ready(None),
                    Some(message) => {
                        self.verdict.record(message.clone());
                        Poll::Ready(Some(Err(Box::new(DigestMismatch(message)))))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // The end is only known once the digests were compared.
        self.finished
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

//! The digests a client declares for an upload (Content-MD5, `x-amz-checksum-*` in headers or
//! in the body's trailers), and their check against what was received.
//!
//! The store receives a body into a temporary file while hashing it once, for the checksums it
//! keeps and for this check together; only a body that passes replaces the object, so a
//! mismatch leaves the stored object as it was.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use s3s::checksum::ChecksumHasher;
use s3s::dto::{Checksum, ChecksumAlgorithm};
use s3s::{S3Error, S3ErrorCode, TrailingHeaders};

/// What a client declared about an upload's body.
#[derive(Debug, Default)]
pub(super) struct DeclaredDigests {
    pub content_md5: Option<String>,
    pub algorithm: Option<ChecksumAlgorithm>,
    /// Checksums sent as headers; trailers, when present, take precedence.
    pub checksums: Checksum,
    pub trailers: Option<TrailingHeaders>,
}

impl DeclaredDigests {
    /// The Content-MD5 declared, decoded; a malformed one is InvalidDigest, refused before the
    /// body is read.
    pub(super) fn content_md5(&self) -> Result<Option<[u8; 16]>, S3Error> {
        self.content_md5.as_deref().map(decode_content_md5).transpose()
    }

    /// BadDigest when what was received (`md5` of the body, `received` checksums from
    /// [`hasher_for`]) differs from what was declared: the Content-MD5 (`expected_md5`, from
    /// [`DeclaredDigests::content_md5`]) and the checksums, from headers or, once the body has
    /// been read, its trailers.
    pub(super) fn check(
        &self,
        expected_md5: Option<[u8; 16]>,
        md5: [u8; 16],
        received: &Checksum,
    ) -> Result<(), S3Error> {
        let bad = |message: String| Err(S3Error::with_message(S3ErrorCode::BadDigest, message));
        if let Some(expected) = expected_md5
            && expected != md5
        {
            return bad(format!(
                "The Content-MD5 you specified did not match what we received (expected {}, received {}).",
                BASE64.encode(expected),
                BASE64.encode(md5)
            ));
        }
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
        for (name, expected, received) in pairs {
            if let (Some(expected), Some(received)) = (expected, received)
                && expected != received
            {
                return bad(format!(
                    "The {name} checksum you specified did not match what we received \
                     (expected {expected}, received {received})."
                ));
            }
        }
        Ok(())
    }

    /// The checksums declared in headers, overridden by those in the body's trailers.
    fn expected_checksums(&self) -> Checksum {
        let mut expected = self.checksums.clone();
        let Some(trailers) = &self.trailers else { return expected };
        // `read`, not `take`: the trailers stay readable for anyone after.
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

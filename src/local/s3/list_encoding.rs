//! `EncodingType=url` on ListObjects and ListObjectsV2: S3 then URL-encodes the key names it
//! returns, so that keys holding characters XML 1.0 cannot carry (or `+` and space, which a
//! form decoder confuses) survive the trip. The AWS CLI always asks for it and decodes; the Rust
//! SDK passes the encoded text through.
//!
//! Encoded elements (ListObjectsV2 API reference, "EncodingType"): `Delimiter`, `Prefix`, `Key`,
//! `StartAfter`, and `CommonPrefixes/Prefix`; ListObjects also `Marker` and `NextMarker`. The
//! encoding is UTF-8 percent-encoding of every byte but RFC 3986's unreserved characters and
//! `/`, as S3 answers ceph's s3-tests (`test_bucket_list_encoding_basic`: `quux ab/` comes back
//! `quux%20ab/`, `foo+1/` as `foo%2B1/`). The API reference does not define the exact character
//! set; this is the local store's reading of it.

use s3s::dto::{EncodingType, ListMultipartUploadsOutput, ListObjectsOutput, ListObjectsV2Output};

/// Whether the request asked for `EncodingType=url` (the only value S3 defines).
pub(super) fn wants_url(encoding: Option<&EncodingType>) -> bool {
    encoding.is_some_and(|e| e.as_str() == EncodingType::URL)
}

/// Percent-encodes `text` as S3's `EncodingType=url` does.
pub(super) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn encode_in_place(field: &mut Option<String>) {
    if let Some(value) = field {
        *value = encode(value);
    }
}

/// Encodes a ListObjectsV2 answer's names and says so in its `EncodingType`.
pub(super) fn encode_v2(output: &mut ListObjectsV2Output) {
    let keys = output.contents.iter_mut().flatten().map(|o| &mut o.key);
    let prefixes = output.common_prefixes.iter_mut().flatten().map(|p| &mut p.prefix);
    let own = [&mut output.prefix, &mut output.delimiter, &mut output.start_after];
    keys.chain(prefixes).chain(own).for_each(encode_in_place);
    output.encoding_type = Some(EncodingType::from_static(EncodingType::URL));
}

/// Encodes a ListObjects (v1) answer's names and says so in its `EncodingType`.
pub(super) fn encode_v1(output: &mut ListObjectsOutput) {
    let keys = output.contents.iter_mut().flatten().map(|o| &mut o.key);
    let prefixes = output.common_prefixes.iter_mut().flatten().map(|p| &mut p.prefix);
    let own = [&mut output.prefix, &mut output.delimiter, &mut output.marker, &mut output.next_marker];
    keys.chain(prefixes).chain(own).for_each(encode_in_place);
    output.encoding_type = Some(EncodingType::from_static(EncodingType::URL));
}

/// Encodes a ListMultipartUploads answer's names (keys, prefixes, key markers) and says so.
pub(super) fn encode_uploads(output: &mut ListMultipartUploadsOutput) {
    let keys = output.uploads.iter_mut().flatten().map(|u| &mut u.key);
    let prefixes = output.common_prefixes.iter_mut().flatten().map(|p| &mut p.prefix);
    let own =
        [&mut output.prefix, &mut output.delimiter, &mut output.key_marker, &mut output.next_key_marker];
    keys.chain(prefixes).chain(own).for_each(encode_in_place);
    output.encoding_type = Some(EncodingType::from_static(EncodingType::URL));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_all_but_unreserved_and_slash() {
        assert_eq!(encode("plus+sign%20.csv"), "plus%2Bsign%2520.csv");
        assert_eq!(encode("quux ab/"), "quux%20ab/");
        assert_eq!(encode("a/b-c_d.e~f"), "a/b-c_d.e~f");
        assert_eq!(encode("é"), "%C3%A9");
        assert_eq!(encode("\u{1}"), "%01");
    }
}

//! Standard Webhooks signatures (spec v1.0.0, symmetric `v1` scheme).
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{raw body}`; the signature is `v1,`
//! followed by the base64 of HMAC-SHA256 of that content under the secret's bytes. The
//! `webhook-signature` header is a space-separated list, so a receiver accepts the message when
//! any `v1` signature in it verifies (this is how secrets are rotated without downtime).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header carrying the message id (the outbox id, stable across retries).
pub const HEADER_ID: &str = "webhook-id";
/// The header carrying the Unix time, in seconds, of this attempt.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The header carrying the space-separated signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The tolerance the reference libraries use between the timestamp and the receiver's clock.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
/// The prefix of a serialized secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing secret's bytes. Its `Debug` output is redacted.
pub struct WebhookSecret(SecretSlice<u8>);

/// A serialized secret could not be parsed. Never carries the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretFormatError {
    /// The part after `whsec_` is not base64.
    #[error("the webhook secret is not base64 (after the optional whsec_ prefix)")]
    NotBase64,
    /// The secret decodes to fewer than 24 or more than 64 bytes.
    #[error("the webhook secret must decode to between 24 and 64 bytes")]
    BadLength,
}

impl WebhookSecret {
    /// Parses `whsec_` + base64 (the prefix is optional, as in the reference libraries).
    pub fn parse(serialized: &str) -> Result<WebhookSecret, SecretFormatError> {
        let encoded = serialized.trim();
        let encoded = encoded.strip_prefix(SECRET_PREFIX).unwrap_or(encoded);
        let bytes = BASE64
            .decode(encoded)
            .map_err(|_| SecretFormatError::NotBase64)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(SecretFormatError::BadLength);
        }
        Ok(WebhookSecret(SecretSlice::from(bytes)))
    }

    /// Parses a secret held as a [`SecretString`], as the store returns it.
    pub fn from_secret_string(secret: &SecretString) -> Result<WebhookSecret, SecretFormatError> {
        WebhookSecret::parse(secret.expose_secret())
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(self.0.expose_secret())
            .expect("HMAC accepts keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// The `webhook-signature` value (`v1,` + base64 HMAC) for message `id` sent at `timestamp`
/// (Unix seconds) with exactly these body bytes. `id` must not contain `.` (our ids are uuids).
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = secret.mac(id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", BASE64.encode(tag))
}

/// The `webhook-signature` value for a message signed with each of `secrets`: their `v1,`
/// entries separated by spaces, in order (during a secret rotation's overlap, the new secret's and
/// the old one's, so a receiver holding either accepts the message).
pub fn sign_all(secrets: &[WebhookSecret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| sign(secret, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a message was not accepted. A receiver answers 400 for the header and timestamp errors
/// and 401 for [`VerifyError::NoValidSignature`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is absent, empty or not text.
    #[error("missing or empty {0} header")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not an integer.
    #[error("webhook-timestamp is not an integer")]
    InvalidTimestamp,
    /// The timestamp is older than the tolerance allows.
    #[error("webhook-timestamp is too old")]
    TooOld,
    /// The timestamp is further in the future than the tolerance allows.
    #[error("webhook-timestamp is too far in the future")]
    TooNew,
    /// No `v1` signature in the header matches.
    #[error("no valid webhook signature")]
    NoValidSignature,
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, VerifyError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(VerifyError::MissingHeader(name))
}

/// Verifies a received message: the three headers, the raw `body` bytes as received, the
/// endpoint's `secret`, the receiver's clock `now` and the accepted clock difference `tolerance`
/// (in both directions; [`DEFAULT_TOLERANCE`] is ±5 minutes).
///
/// Signatures are compared in constant time. Entries that are not `v1,` followed by valid base64
/// of a full 32-byte tag (empty, truncated, other schemes) never match.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secret: &WebhookSecret,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let id = header(headers, HEADER_ID)?;
    let timestamp = header(headers, HEADER_TIMESTAMP)?;
    let signatures = header(headers, HEADER_SIGNATURE)?;
    verify_parts(id, timestamp, signatures, body, secret, now, tolerance)
}

/// [`verify`] on the header values themselves.
pub fn verify_parts(
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    secret: &WebhookSecret,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let sent: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp)?;
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    let now = now.timestamp();
    if sent < now.saturating_sub(tolerance) {
        return Err(VerifyError::TooOld);
    }
    if sent > now.saturating_add(tolerance) {
        return Err(VerifyError::TooNew);
    }
    let expected = secret.mac(id, sent, body);
    for entry in signatures.split_ascii_whitespace() {
        let Some(encoded) = entry.strip_prefix("v1,") else {
            continue;
        };
        let Ok(tag) = BASE64.decode(encoded) else {
            continue;
        };
        // `verify_slice` compares in constant time and refuses a tag of any other length, so
        // an empty or truncated signature cannot match a prefix of the real one.
        if !tag.is_empty() && expected.clone().verify_slice(&tag).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::NoValidSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TIMESTAMP: i64 = 1_614_265_330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).expect("valid time")
    }

    fn headers(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(HEADER_ID, HeaderValue::from_str(id).expect("id"));
        map.insert(
            HEADER_TIMESTAMP,
            HeaderValue::from_str(timestamp).expect("ts"),
        );
        map.insert(
            HEADER_SIGNATURE,
            HeaderValue::from_str(signature).expect("sig"),
        );
        map
    }

    fn secret() -> WebhookSecret {
        WebhookSecret::parse(VECTOR_SECRET).expect("vector secret")
    }

    #[test]
    fn signing_reproduces_the_published_standard_webhooks_test_vector() {
        // The vector of the Standard Webhooks / Svix reference libraries' test suites.
        assert_eq!(
            sign(&secret(), VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY),
            VECTOR_SIGNATURE
        );
    }

    #[test]
    fn the_published_vector_verifies_within_tolerance_and_with_other_signatures_around_it() {
        let ts = VECTOR_TIMESTAMP.to_string();
        let now = at(VECTOR_TIMESTAMP + 299);
        let h = headers(VECTOR_ID, &ts, VECTOR_SIGNATURE);
        assert_eq!(
            verify(&h, VECTOR_BODY, &secret(), now, DEFAULT_TOLERANCE),
            Ok(())
        );
        let several = format!("v1,bm9wZQ== v1a,abc {VECTOR_SIGNATURE}");
        let h = headers(VECTOR_ID, &ts, &several);
        assert_eq!(
            verify(&h, VECTOR_BODY, &secret(), now, DEFAULT_TOLERANCE),
            Ok(())
        );
        // Without the prefix the same secret works, as in the reference libraries.
        let bare = WebhookSecret::parse(VECTOR_SECRET.trim_start_matches("whsec_")).expect("bare");
        assert_eq!(
            sign(&bare, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY),
            VECTOR_SIGNATURE
        );
    }

    #[test]
    fn a_changed_body_id_or_timestamp_does_not_verify() {
        let ts = VECTOR_TIMESTAMP.to_string();
        let now = at(VECTOR_TIMESTAMP);
        let h = headers(VECTOR_ID, &ts, VECTOR_SIGNATURE);
        let err = verify(
            &h,
            br#"{"test": 2432232315}"#,
            &secret(),
            now,
            DEFAULT_TOLERANCE,
        );
        assert_eq!(err, Err(VerifyError::NoValidSignature));
        let h = headers("msg_other", &ts, VECTOR_SIGNATURE);
        assert_eq!(
            verify(&h, VECTOR_BODY, &secret(), now, DEFAULT_TOLERANCE),
            Err(VerifyError::NoValidSignature)
        );
        let shifted = (VECTOR_TIMESTAMP + 1).to_string();
        let h = headers(VECTOR_ID, &shifted, VECTOR_SIGNATURE);
        assert_eq!(
            verify(&h, VECTOR_BODY, &secret(), now, DEFAULT_TOLERANCE),
            Err(VerifyError::NoValidSignature)
        );
        let other = WebhookSecret::parse(&format!("whsec_{}", BASE64.encode([9u8; 32])))
            .expect("other secret");
        let h = headers(VECTOR_ID, &ts, VECTOR_SIGNATURE);
        assert_eq!(
            verify(&h, VECTOR_BODY, &other, now, DEFAULT_TOLERANCE),
            Err(VerifyError::NoValidSignature)
        );
    }

    #[test]
    fn empty_truncated_and_foreign_signatures_are_rejected() {
        let ts = VECTOR_TIMESTAMP.to_string();
        let now = at(VECTOR_TIMESTAMP);
        let tag = VECTOR_SIGNATURE.trim_start_matches("v1,");
        let full = BASE64.decode(tag).expect("tag");
        let truncated = format!("v1,{}", BASE64.encode(&full[..16]));
        let longer = format!("v1,{}", BASE64.encode([full.as_slice(), &[0]].concat()));
        for bad in [
            "v1,",
            "v1",
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1,not-base64!",
            truncated.as_str(),
            longer.as_str(),
        ] {
            let h = headers(VECTOR_ID, &ts, bad);
            assert_eq!(
                verify(&h, VECTOR_BODY, &secret(), now, DEFAULT_TOLERANCE),
                Err(VerifyError::NoValidSignature),
                "{bad}"
            );
        }
        let mut h = headers(VECTOR_ID, &ts, VECTOR_SIGNATURE);
        h.insert(HEADER_SIGNATURE, HeaderValue::from_static(" "));
        assert_eq!(
            verify(&h, VECTOR_BODY, &secret(), now, DEFAULT_TOLERANCE),
            Err(VerifyError::MissingHeader(HEADER_SIGNATURE))
        );
        h.remove(HEADER_ID);
        assert_eq!(
            verify(&h, VECTOR_BODY, &secret(), now, DEFAULT_TOLERANCE),
            Err(VerifyError::MissingHeader(HEADER_ID))
        );
    }

    #[test]
    fn timestamps_outside_five_minutes_either_way_are_rejected() {
        let ts = VECTOR_TIMESTAMP.to_string();
        let h = headers(VECTOR_ID, &ts, VECTOR_SIGNATURE);
        let s = secret();
        assert_eq!(
            verify(
                &h,
                VECTOR_BODY,
                &s,
                at(VECTOR_TIMESTAMP + 301),
                DEFAULT_TOLERANCE
            ),
            Err(VerifyError::TooOld)
        );
        assert_eq!(
            verify(
                &h,
                VECTOR_BODY,
                &s,
                at(VECTOR_TIMESTAMP - 301),
                DEFAULT_TOLERANCE
            ),
            Err(VerifyError::TooNew)
        );
        assert_eq!(
            verify(
                &h,
                VECTOR_BODY,
                &s,
                at(VECTOR_TIMESTAMP - 300),
                DEFAULT_TOLERANCE
            ),
            Ok(())
        );
        let h = headers(VECTOR_ID, "16142653x0", VECTOR_SIGNATURE);
        assert_eq!(
            verify(&h, VECTOR_BODY, &s, at(VECTOR_TIMESTAMP), DEFAULT_TOLERANCE),
            Err(VerifyError::InvalidTimestamp)
        );
    }

    #[test]
    fn secrets_must_be_base64_of_24_to_64_bytes_and_never_print() {
        assert_eq!(
            WebhookSecret::parse("whsec_!!!").err(),
            Some(SecretFormatError::NotBase64)
        );
        let short = format!("whsec_{}", BASE64.encode([1u8; 23]));
        assert_eq!(
            WebhookSecret::parse(&short).err(),
            Some(SecretFormatError::BadLength)
        );
        let long = format!("whsec_{}", BASE64.encode([1u8; 65]));
        assert_eq!(
            WebhookSecret::parse(&long).err(),
            Some(SecretFormatError::BadLength)
        );
        assert_eq!(format!("{:?}", secret()), "WebhookSecret([REDACTED])");
    }

    #[test]
    fn the_hmac_is_computed_over_id_dot_timestamp_dot_body() {
        // Computed by hand with the hmac crate directly, independently of `sign`.
        let key = [42u8; 32];
        let secret = WebhookSecret::parse(&format!("whsec_{}", BASE64.encode(key))).expect("s");
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&key).expect("key");
        mac.update(b"0190f2a4-7c1e-7000-8000-000000000001.1700000000.{\"a\":1}");
        let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
        assert_eq!(
            sign(
                &secret,
                "0190f2a4-7c1e-7000-8000-000000000001",
                1_700_000_000,
                b"{\"a\":1}"
            ),
            expected
        );
    }

    proptest! {
        #[test]
        fn whatever_is_signed_verifies_and_any_flipped_body_bit_does_not(
            key in proptest::collection::vec(any::<u8>(), 24..=64),
            body in proptest::collection::vec(any::<u8>(), 0..256),
            flip in any::<proptest::sample::Index>(),
            ts in 1_000_000_000i64..4_000_000_000i64,
        ) {
            let secret = WebhookSecret::parse(&BASE64.encode(&key)).expect("secret");
            let signature = sign(&secret, "evt_1", ts, &body);
            let ts_text = ts.to_string();
            prop_assert_eq!(
                verify_parts("evt_1", &ts_text, &signature, &body, &secret, at(ts), DEFAULT_TOLERANCE),
                Ok(())
            );
            if !body.is_empty() {
                let mut changed = body.clone();
                let i = flip.index(changed.len());
                changed[i] ^= 1;
                prop_assert_eq!(
                    verify_parts("evt_1", &ts_text, &signature, &changed, &secret, at(ts), DEFAULT_TOLERANCE),
                    Err(VerifyError::NoValidSignature)
                );
            }
        }
    }
}

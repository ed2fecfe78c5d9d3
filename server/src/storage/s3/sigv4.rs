//! AWS Signature Version 4 for S3: signed headers for the server's own
//! requests, signed query strings for presigned URLs.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::util::hex;

/// SHA-256 of the empty payload.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Who signs, and where.
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
    pub region: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret or the session token.
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("region", &self.region)
            .finish()
    }
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// `(YYYYMMDD'T'HHMMSS'Z', YYYYMMDD)` in UTC.
fn stamp(t: SystemTime) -> (String, String) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let date = format!("{y:04}{m:02}{d:02}");
    let time = format!(
        "{date}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    (time, date)
}

/// URI-encodes `s` as SigV4 wants: everything but unreserved characters,
/// and `/` too unless `keep_slash`.
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A path as it goes on the wire and into the signature.
pub fn uri_path(path: &str) -> String {
    encode(path, true)
}

fn signature(c: &Credentials, amz_date: &str, date: &str, canonical: &str) -> String {
    let scope = format!("{date}/{}/s3/aws4_request", c.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{}", c.secret_key).as_bytes(), date);
    let k = hmac(&k, &c.region);
    let k = hmac(&k, "s3");
    let k = hmac(&k, "aws4_request");
    hex(&hmac(&k, &to_sign))
}

/// Headers that sign a request: `host`, `x-amz-content-sha256`,
/// `x-amz-date`, `x-amz-security-token` (with a session token), the
/// `extra` ones and `authorization`, for `(method, path, query)`: `path`
/// is encoded ([`uri_path`]), `query` is the canonical query string (empty
/// for none).
pub fn sign_headers(
    c: &Credentials,
    (method, path, query): (&str, &str, &str),
    host: &str,
    payload_hash: &str,
    extra: &[(&'static str, String)],
    now: SystemTime,
) -> Vec<(&'static str, String)> {
    let (amz_date, date) = stamp(now);
    let mut headers: Vec<(&'static str, String)> = vec![
        ("host", host.to_owned()),
        ("x-amz-content-sha256", payload_hash.to_owned()),
        ("x-amz-date", amz_date.clone()),
    ];
    if let Some(t) = &c.session_token {
        headers.push(("x-amz-security-token", t.clone()));
    }
    // Extra headers (lowercase `x-amz-*`), signed too, in canonical order.
    headers.extend(extra.iter().cloned());
    headers.sort_by(|a, b| a.0.cmp(b.0));
    let signed: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
    let signed = signed.join(";");
    let canonical_headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let canonical =
        format!("{method}\n{path}\n{query}\n{canonical_headers}\n{signed}\n{payload_hash}");
    let sig = signature(c, &amz_date, &date, &canonical);
    headers.push((
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{date}/{}/s3/aws4_request, SignedHeaders={signed}, Signature={sig}",
            c.access_key, c.region
        ),
    ));
    // reqwest sets Host itself, from the URL.
    headers.retain(|(k, _)| *k != "host");
    headers
}

/// The query string of a presigned URL for `method` on `path` (encoded),
/// valid `expires` seconds from `now`, with the `extra` parameters (such as
/// `response-content-disposition`) signed too.
pub fn presign_query(
    c: &Credentials,
    method: &str,
    host: &str,
    path: &str,
    expires: u32,
    extra: &[(&str, &str)],
    now: SystemTime,
) -> String {
    let (amz_date, date) = stamp(now);
    let mut params: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    params.extend([
        ("X-Amz-Algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
        (
            "X-Amz-Credential".to_owned(),
            format!("{}/{date}/{}/s3/aws4_request", c.access_key, c.region),
        ),
        ("X-Amz-Date".to_owned(), amz_date.clone()),
        ("X-Amz-Expires".to_owned(), expires.to_string()),
        ("X-Amz-SignedHeaders".to_owned(), "host".to_owned()),
    ]);
    if let Some(t) = &c.session_token {
        params.push(("X-Amz-Security-Token".to_owned(), t.clone()));
    }
    // Sorted by encoded name, as the canonical query string wants.
    let mut params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (encode(k, false), encode(v, false)))
        .collect();
    params.sort();
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let query = query.join("&");
    let canonical = format!("{method}\n{path}\n{query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD");
    let sig = signature(c, &amz_date, &date, &canonical);
    format!("{query}&X-Amz-Signature={sig}")
}

/// The form fields of a browser-style `POST` upload (S3 "POST Object"
/// with a SigV4-signed policy) that lets its holder store exactly one
/// object: key `key` in `bucket`, exactly `size` bytes whose SHA-256 is
/// `sha256_b64` (base64, which the store checks), for `expires` seconds
/// from `now`. Every field the form carries is named in the policy, so
/// none can be changed without breaking the signature.
pub fn post_fields(
    c: &Credentials,
    bucket: &str,
    key: &str,
    size: u64,
    sha256_b64: &str,
    expires: u32,
    now: SystemTime,
) -> Vec<(String, String)> {
    use base64::Engine;
    let (amz_date, date) = stamp(now);
    let credential = format!("{}/{date}/{}/s3/aws4_request", c.access_key, c.region);
    let until = stamp(now + std::time::Duration::from_secs(u64::from(expires))).0;
    // 20130524T000000Z -> 2013-05-24T00:00:00Z
    let expiration = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &until[0..4],
        &until[4..6],
        &until[6..8],
        &until[9..11],
        &until[11..13],
        &until[13..15]
    );
    let mut fields = vec![
        ("key".to_owned(), key.to_owned()),
        ("x-amz-algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
        ("x-amz-credential".to_owned(), credential),
        ("x-amz-date".to_owned(), amz_date.clone()),
        ("x-amz-checksum-sha256".to_owned(), sha256_b64.to_owned()),
    ];
    if let Some(t) = &c.session_token {
        fields.push(("x-amz-security-token".to_owned(), t.clone()));
    }
    let mut conditions = vec![
        serde_json::json!({ "bucket": bucket }),
        serde_json::json!(["content-length-range", size, size]),
    ];
    for (k, v) in &fields {
        conditions.push(serde_json::json!(["eq", format!("${k}"), v]));
    }
    let policy = serde_json::json!({ "expiration": expiration, "conditions": conditions });
    let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let k = hmac(format!("AWS4{}", c.secret_key).as_bytes(), &date);
    let k = hmac(&k, &c.region);
    let k = hmac(&k, "s3");
    let k = hmac(&k, "aws4_request");
    let sig = hex(&hmac(&k, &policy));
    fields.push(("policy".to_owned(), policy));
    fields.push(("x-amz-signature".to_owned(), sig));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn example() -> Credentials {
        Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn stamps_are_utc_calendar_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_369_353_600); // 2013-05-24
        assert_eq!(stamp(t), ("20130524T000000Z".into(), "20130524".into()));
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3723); // 2000-02-29 01:02:03
        assert_eq!(stamp(t).0, "20000229T010203Z");
    }

    #[test]
    fn presigned_get_matches_the_published_example() {
        // The presigned GET example of the S3 SigV4 documentation.
        let t = UNIX_EPOCH + Duration::from_secs(1_369_353_600);
        let q = presign_query(
            &example(),
            "GET",
            "examplebucket.s3.amazonaws.com",
            "/test.txt",
            86_400,
            &[],
            t,
        );
        assert!(
            q.ends_with(
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{q}"
        );
    }

    #[test]
    fn post_policy_pins_key_size_checksum_and_expiry() {
        use base64::Engine;
        let t = UNIX_EPOCH + Duration::from_secs(1_369_353_600); // 2013-05-24
        let fields = post_fields(&example(), "bkt", "p/uploads/x1", 42, "c2hh", 90, t);
        let get = |k: &str| {
            fields
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no field {k}"))
        };
        assert_eq!(get("key"), "p/uploads/x1");
        assert_eq!(get("x-amz-checksum-sha256"), "c2hh");
        assert_eq!(get("x-amz-date"), "20130524T000000Z");
        let policy = base64::engine::general_purpose::STANDARD
            .decode(get("policy"))
            .expect("base64");
        let policy: serde_json::Value = serde_json::from_slice(&policy).expect("json");
        assert_eq!(policy["expiration"], "2013-05-24T00:01:30Z");
        let conditions = policy["conditions"].as_array().expect("conditions");
        assert!(conditions.contains(&serde_json::json!(["content-length-range", 42, 42])));
        assert!(conditions.contains(&serde_json::json!(["eq", "$key", "p/uploads/x1"])));
        assert!(conditions.contains(&serde_json::json!({"bucket": "bkt"})));
        // Every field but the signature and the policy itself is pinned.
        for (k, _) in &fields {
            if k != "policy" && k != "x-amz-signature" {
                let pinned = conditions
                    .iter()
                    .any(|c| c[0] == "eq" && c[1] == format!("${k}"));
                assert!(pinned, "{k} is not in the policy");
            }
        }
        assert_eq!(get("x-amz-signature").len(), 64);
    }
}

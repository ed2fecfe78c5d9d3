//! Small shared helpers: identifiers, the Simvue timestamp format (defined
//! once, in [`simtrack::model`]), and a JSON parser that tolerates the
//! `NaN`/`Infinity` tokens Python's `json` emits.

use serde_json::Value;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A new 22-character alphanumeric identifier (the shape the Simvue client's
/// models expect; never starts with `offline_`).
pub fn new_id() -> String {
    let mut raw = [0u8; 22];
    fill_random(&mut raw);
    raw.iter()
        .map(|b| ALNUM[(*b as usize) % ALNUM.len()] as char)
        .collect()
}

/// Fills `buf` from the operating system's random source.
pub fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system random source failed");
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `s` is a lowercase-hex SHA-256 (the only thing that may name a
/// blob).
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

pub use simtrack::model::{TsParser, now_us};

/// Formats microseconds since the epoch as `%Y-%m-%dT%H:%M:%S.%f` (UTC, no
/// zone suffix), the only form the Simvue client parses.
pub fn fmt_ts(us: i64) -> String {
    simtrack::model::format_timestamp_us(us)
}

/// Parses `YYYY-MM-DD[T ]HH:MM:SS[.f{1,9}][Z|+00:00]` (UTC) into microseconds
/// since the epoch. Returns `None` for anything else.
pub fn parse_ts(s: &str) -> Option<i64> {
    simtrack::model::parse_timestamp_us(s.as_bytes())
}

/// Parses a JSON body, first turning the bare `NaN`, `Infinity` and
/// `-Infinity` tokens (outside strings) into `null`: Python's `json.dumps`
/// emits them, serde_json rejects them.
pub fn lenient_json(bytes: &[u8]) -> serde_json::Result<Value> {
    if !needs_token_fix(bytes) {
        return serde_json::from_slice(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut in_str = false;
    while i < bytes.len() {
        let c = bytes[i];
        if in_str {
            out.push(c);
            if c == b'\\' && i + 1 < bytes.len() {
                out.push(bytes[i + 1]);
                i += 2;
                continue;
            }
            if c == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_str = true;
            out.push(c);
            i += 1;
            continue;
        }
        let rest = &bytes[i..];
        let token = [&b"-Infinity"[..], b"Infinity", b"NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t));
        if let Some(t) = token {
            out.extend_from_slice(b"null");
            i += t.len();
        } else {
            out.push(c);
            i += 1;
        }
    }
    serde_json::from_slice(&out)
}

fn needs_token_fix(bytes: &[u8]) -> bool {
    bytes.windows(3).any(|w| w == b"NaN" || w == b"Inf")
}

/// Writes an `f64` as a JSON number token, using the `NaN`/`Infinity`
/// extension for non-finite values (Python's `json` reads them).
pub fn push_f64(out: &mut String, v: f64) {
    use std::fmt::Write;
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "Infinity" } else { "-Infinity" });
    } else if v == v.trunc() && v.abs() < 1e15 {
        let _ = write!(out, "{v:.1}");
    } else {
        let _ = write!(out, "{v:?}");
    }
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_json_accepts_python_non_finite_tokens() {
        let v = lenient_json(br#"{"a": NaN, "b": -Infinity, "s": "NaN Infinity"}"#).unwrap();
        assert!(v["a"].is_null() && v["b"].is_null());
        assert_eq!(v["s"], "NaN Infinity");
    }

    #[test]
    fn ids_are_22_alphanumerics() {
        let id = new_id();
        assert_eq!(id.len(), 22);
        assert!(id.bytes().all(|c| c.is_ascii_alphanumeric()));
    }
}

//! Small shared helpers: identifiers, the Simvue timestamp format, and a JSON
//! parser that tolerates the `NaN`/`Infinity` tokens Python's `json` emits.

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

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_micros() as i64
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats microseconds since the epoch as `%Y-%m-%dT%H:%M:%S.%f` (UTC, no
/// zone suffix), the only form the Simvue client parses.
pub fn fmt_ts(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Parses `YYYY-MM-DD[T ]HH:MM:SS[.f{1,9}][Z|+00:00]` (UTC) into microseconds
/// since the epoch. Returns `None` for anything else.
pub fn parse_ts(s: &str) -> Option<i64> {
    parse_ts_bytes(s.as_bytes())
}

/// [`parse_ts`] on raw bytes (straight from a msgpack body).
pub fn parse_ts_bytes(b: &[u8]) -> Option<i64> {
    if b.len() < 19 {
        return None;
    }
    Some(minute_us(&b[..17])? + within_minute_us(&b[17..])?)
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |v, &c| {
        c.is_ascii_digit().then(|| v * 10 + i64::from(c - b'0'))
    })
}

/// `YYYY-MM-DD[T ]HH:MM:` → microseconds since the epoch at that minute.
fn minute_us(b: &[u8]) -> Option<i64> {
    if b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi) = (digits(&b[11..13])?, digits(&b[14..16])?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 {
        return None;
    }
    Some((days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60) * 1_000_000)
}

/// `SS[.f{1,9}][Z|+00:00]` → microseconds.
fn within_minute_us(b: &[u8]) -> Option<i64> {
    if b.len() < 2 {
        return None;
    }
    let se = digits(&b[0..2])?;
    if se > 60 {
        return None;
    }
    let mut i = 2;
    let mut micros = 0i64;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start).min(6)..6 {
            micros *= 10;
        }
    }
    let rest = &b[i..];
    if !(rest.is_empty() || rest == b"Z" || rest == b"+00:00") {
        return None;
    }
    Some(se * 1_000_000 + micros)
}

/// [`parse_ts_bytes`] for a stream of timestamps that mostly share their
/// minute: the date and hour:minute are parsed once per minute.
#[derive(Debug, Default)]
pub struct TsParser {
    minute: Option<([u8; 17], i64)>,
}

impl TsParser {
    /// Parses one timestamp.
    pub fn parse(&mut self, b: &[u8]) -> Option<i64> {
        if b.len() < 19 {
            return None;
        }
        let base = match &self.minute {
            Some((prefix, base)) if prefix[..] == b[..17] => *base,
            _ => {
                let base = minute_us(&b[..17])?;
                let mut prefix = [0u8; 17];
                prefix.copy_from_slice(&b[..17]);
                self.minute = Some((prefix, base));
                base
            }
        };
        Some(base + within_minute_us(&b[17..])?)
    }
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
    fn timestamps_round_trip_in_simvue_format() {
        let us = parse_ts("2024-01-02T03:04:05.000007").unwrap();
        assert_eq!(fmt_ts(us), "2024-01-02T03:04:05.000007");
        assert_eq!(parse_ts("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(
            parse_ts("2024-01-02 03:04:05.5"),
            Some(parse_ts("2024-01-02T03:04:05.500000").unwrap())
        );
        assert_eq!(parse_ts("garbage"), None);
        let mut p = TsParser::default();
        for t in [
            "2024-01-02T03:04:05.000007",
            "2024-01-02T03:04:59.9",
            "2024-01-02T03:05:00Z",
            "2024-01-02T03:04:05",
        ] {
            assert_eq!(p.parse(t.as_bytes()), parse_ts(t), "{t}");
        }
        assert_eq!(p.parse(b"2024-01-02T03:04:xx"), None);
        assert_eq!(parse_ts("2024-13-02T03:04:05"), None);
    }

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

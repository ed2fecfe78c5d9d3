//! A hand-rolled decoder for the metrics msgpack batch, the one hot request
//! of the API: it walks the bytes once, borrows strings from the body,
//! parses timestamps straight from bytes, and never builds an intermediate
//! document (serde's generic path spent most of its time allocating).

use super::ApiError;

/// One decoded batch item (its `values` are passed beside it).
#[derive(Debug)]
pub struct Item<'a> {
    /// `time`, if present.
    pub time: Option<f64>,
    /// `timestamp` bytes, if present.
    pub timestamp: Option<&'a [u8]>,
    /// `step`, if present, exactly as sent.
    pub step: Option<Exact>,
}

/// A number exactly as sent: integers stay integers (a step of 2^53 + 1
/// must not pass through `f64` and come back as 2^53), floats stay floats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Exact {
    Int(i128),
    Float(f64),
}

impl Exact {
    /// As a step: a non-negative integer that fits `i64` (an integral float,
    /// as a client may send `3.0`, is accepted when it is one exactly).
    pub fn step(self) -> Option<i64> {
        match self {
            Exact::Int(i) => i64::try_from(i).ok().filter(|v| *v >= 0),
            Exact::Float(f) => {
                (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 9_223_372_036_854_775_808.0)
                    .then_some(f as i64)
            }
        }
    }
}

/// A cursor over a msgpack buffer.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn malformed(what: &str) -> ApiError {
    ApiError::bad_request(format!("malformed msgpack body: {what}"))
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn byte(&mut self) -> Result<u8, ApiError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| malformed("unexpected end of data"))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ApiError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| malformed("unexpected end of data"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, ApiError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// Whether every byte was consumed.
    pub fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// A map header: its number of entries.
    pub fn map_len(&mut self) -> Result<usize, ApiError> {
        match self.byte()? {
            b @ 0x80..=0x8f => Ok(usize::from(b & 0x0f)),
            0xde => Ok(self.be(2)? as usize),
            0xdf => Ok(self.be(4)? as usize),
            _ => Err(malformed("expected a map")),
        }
    }

    /// An array header: its number of elements.
    pub fn array_len(&mut self) -> Result<usize, ApiError> {
        match self.byte()? {
            b @ 0x90..=0x9f => Ok(usize::from(b & 0x0f)),
            0xdc => Ok(self.be(2)? as usize),
            0xdd => Ok(self.be(4)? as usize),
            _ => Err(malformed("expected an array")),
        }
    }

    /// A string (or binary) as raw bytes.
    pub fn str_bytes(&mut self) -> Result<&'a [u8], ApiError> {
        let n = match self.byte()? {
            b @ 0xa0..=0xbf => usize::from(b & 0x1f),
            0xd9 | 0xc4 => self.be(1)? as usize,
            0xda | 0xc5 => self.be(2)? as usize,
            0xdb | 0xc6 => self.be(4)? as usize,
            _ => return Err(malformed("expected a string")),
        };
        self.take(n)
    }

    /// A UTF-8 string.
    pub fn str(&mut self) -> Result<&'a str, ApiError> {
        std::str::from_utf8(self.str_bytes()?).map_err(|_| malformed("string is not UTF-8"))
    }

    /// Whether the next value is nil (consumed if so).
    pub fn nil(&mut self) -> bool {
        if self.buf.get(self.pos) == Some(&0xc0) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// A number: any msgpack int, float32/64, or bool, as f64.
    pub fn num(&mut self) -> Result<f64, ApiError> {
        let b = self.byte()?;
        Ok(match b {
            0x00..=0x7f => f64::from(b),
            0xe0..=0xff => f64::from(b as i8),
            0xc2 => 0.0,
            0xc3 => 1.0,
            0xca => f64::from(f32::from_bits(self.be(4)? as u32)),
            0xcb => f64::from_bits(self.be(8)?),
            0xcc => self.be(1)? as f64,
            0xcd => self.be(2)? as f64,
            0xce => self.be(4)? as f64,
            0xcf => self.be(8)? as f64,
            0xd0 => f64::from(self.be(1)? as u8 as i8),
            0xd1 => f64::from(self.be(2)? as u16 as i16),
            0xd2 => f64::from(self.be(4)? as u32 as i32),
            0xd3 => self.be(8)? as i64 as f64,
            _ => {
                return Err(ApiError::bad_request(
                    "malformed msgpack body: expected a number",
                ));
            }
        })
    }

    /// A number kept exact: any msgpack int (or bool) as an integer,
    /// float32/64 as a float.
    pub fn exact(&mut self) -> Result<Exact, ApiError> {
        let b = self.byte()?;
        Ok(match b {
            0x00..=0x7f => Exact::Int(i128::from(b)),
            0xe0..=0xff => Exact::Int(i128::from(b as i8)),
            0xc2 => Exact::Int(0),
            0xc3 => Exact::Int(1),
            0xca => Exact::Float(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => Exact::Float(f64::from_bits(self.be(8)?)),
            0xcc => Exact::Int(i128::from(self.be(1)?)),
            0xcd => Exact::Int(i128::from(self.be(2)?)),
            0xce => Exact::Int(i128::from(self.be(4)?)),
            0xcf => Exact::Int(i128::from(self.be(8)?)),
            0xd0 => Exact::Int(i128::from(self.be(1)? as u8 as i8)),
            0xd1 => Exact::Int(i128::from(self.be(2)? as u16 as i16)),
            0xd2 => Exact::Int(i128::from(self.be(4)? as u32 as i32)),
            0xd3 => Exact::Int(i128::from(self.be(8)? as i64)),
            _ => return Err(malformed("expected a number")),
        })
    }

    /// Skips one value of any type (nesting bounded by `depth`).
    pub fn skip(&mut self, depth: u32) -> Result<(), ApiError> {
        if depth > 64 {
            return Err(malformed("nested too deeply"));
        }
        let b = self.byte()?;
        let (fixed, items) = match b {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * usize::from(b & 0x0f)),
            0x90..=0x9f => (0, usize::from(b & 0x0f)),
            0xa0..=0xbf => (usize::from(b & 0x1f), 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xc4 | 0xd9 => (self.be(1)? as usize, 0),
            0xc5 | 0xda => (self.be(2)? as usize, 0),
            0xc6 | 0xdb => (self.be(4)? as usize, 0),
            0xc7 => (self.be(1)? as usize + 1, 0),
            0xc8 => (self.be(2)? as usize + 1, 0),
            0xc9 => (self.be(4)? as usize + 1, 0),
            0xdc => (0, self.be(2)? as usize),
            0xdd => (0, self.be(4)? as usize),
            0xde => (0, 2 * self.be(2)? as usize),
            0xdf => (0, 2 * self.be(4)? as usize),
            _ => return Err(malformed("reserved byte")),
        };
        self.take(fixed)?;
        for _ in 0..items {
            self.skip(depth + 1)?;
        }
        Ok(())
    }
}

/// Decodes `{"run": str, "metrics": [{time, timestamp, step, values: {name: num}}]}`,
/// calling `item` with each element's index, fields and `values` pairs;
/// returns the run id.
pub fn metrics_batch<'a>(
    body: &'a [u8],
    mut item: impl FnMut(usize, &Item<'a>, &[(&'a [u8], f64)]) -> Result<(), ApiError>,
) -> Result<String, ApiError> {
    let mut r = Reader::new(body);
    let mut run = None;
    let mut seen_metrics = false;
    let mut values: Vec<(&'a [u8], f64)> = Vec::new();
    for _ in 0..r.map_len()? {
        match r.str_bytes()? {
            b"run" => run = Some(r.str()?.to_owned()),
            b"metrics" => {
                seen_metrics = true;
                let n = r.array_len()?;
                for i in 0..n {
                    let mut it = Item {
                        time: None,
                        timestamp: None,
                        step: None,
                    };
                    values.clear();
                    for _ in 0..r.map_len()? {
                        match r.str_bytes()? {
                            b"time" => it.time = if r.nil() { None } else { Some(r.num()?) },
                            b"step" => it.step = if r.nil() { None } else { Some(r.exact()?) },
                            b"timestamp" => {
                                it.timestamp = if r.nil() { None } else { Some(r.str_bytes()?) }
                            }
                            b"values" => {
                                for _ in 0..r.map_len()? {
                                    let k = r.str_bytes()?;
                                    values.push((k, r.num()?));
                                }
                            }
                            _ => r.skip(0)?,
                        }
                    }
                    item(i, &it, &values)?;
                }
            }
            _ => r.skip(0)?,
        }
    }
    if !r.at_end() {
        return Err(malformed("trailing bytes after the batch"));
    }
    if !seen_metrics {
        return Err(ApiError::unprocessable("the batch has no 'metrics' list"));
    }
    run.ok_or_else(|| ApiError::unprocessable("the batch has no 'run'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_rmp_serde_encodes_including_non_finite_values() {
        let body = rmp_serde::to_vec_named(&serde_json::json!({
            "run": "r1", "extra": [1, {"a": null}],
            "metrics": [{"time": 1.5, "timestamp": "2024-01-02T03:04:05.000000", "step": 3, "values": {"a": 1, "b": -2.5, "c": true}},
                        {"time": 2, "step": 4, "values": {"a": 300000}}]
        }))
        .unwrap();
        let mut got = Vec::new();
        let run = metrics_batch(&body, |i, it, v| {
            got.push((
                i,
                it.time,
                it.step,
                it.timestamp.map(<[u8]>::to_vec),
                v.iter().map(|(k, x)| (k.to_vec(), *x)).collect::<Vec<_>>(),
            ));
            Ok(())
        })
        .unwrap();
        assert_eq!(run, "r1");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, Some(1.5));
        assert_eq!(
            got[0].4,
            vec![
                (b"a".to_vec(), 1.0),
                (b"b".to_vec(), -2.5),
                (b"c".to_vec(), 1.0)
            ]
        );
        assert_eq!(got[1].3, None);
        assert_eq!(got[1].4, vec![(b"a".to_vec(), 300000.0)]);
        let mut nan = vec![0xcb];
        nan.extend_from_slice(&f64::NAN.to_bits().to_be_bytes());
        assert!(Reader::new(&nan).num().unwrap().is_nan());
    }

    #[test]
    fn every_truncation_and_byte_flip_is_an_error_or_a_clean_decode() {
        let body = rmp_serde::to_vec_named(&serde_json::json!({
            "run": "r", "metrics": [{"time": 0.5, "timestamp": "2024-01-02T03:04:05.000000", "step": 1,
                                      "values": {"a": 1.5, "long name": -7, "c": 300000000000i64}}]
        }))
        .unwrap();
        for cut in 0..body.len() {
            assert!(
                metrics_batch(&body[..cut], |_, _, _| Ok(())).is_err(),
                "truncated at {cut}"
            );
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut b = body.clone();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed % b.len() as u64) as usize;
                b[i] = (seed >> 32) as u8;
            }
            let _ = metrics_batch(&b, |_, _, _| Ok(()));
        }
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [
            &b""[..],
            b"\x81",
            b"\x81\xa3run",
            b"\x82\xa3run\xa1r\xa7metrics\x91\x81\xa6values\x81\xa1a\xa1x",
            b"\xc1",
            b"\xdf\xff\xff\xff\xff",
        ] {
            assert!(metrics_batch(bad, |_, _, _| Ok(())).is_err());
        }
    }
}

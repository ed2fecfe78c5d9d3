//! A bounded, seeded fuzz of the server's request parsers, black-box over
//! HTTP: JSON and msgpack bodies, list filters and sorting, query strings and
//! path ids, each derived from a valid request by structure-aware mutation.
//! Every answer must be a 2xx/4xx (never a 5xx, never a dropped connection),
//! and the server must still serve a normal client afterwards.
//!
//! Budget: `SIMTRACK_FUZZ_CASES` requests (default 6,000); seed:
//! `SIMTRACK_FUZZ_SEED` (default: from the clock, printed so a failure can
//! be replayed). Inputs that once broke the server are kept in
//! [`REGRESSIONS`] and run first, every time.

mod common;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use common::{Api, Server, token, urlencode};
use serde_json::{Map, Value, json};

/// Filter and sorting inputs that once answered 500: replayed on every run.
const REGRESSIONS: &[(&str, &str)] = &[
    // A metadata key ending in a backslash became a bad SQLite JSON path.
    ("filters", r#"["metadata.a\\ == 1"]"#),
    ("sorting", r#"[{"id": "metadata.a\\", "desc": true}]"#),
    ("filters", r#"["metadata.\" == 1"]"#),
    ("sorting", r#"[{"id": "metadata.\"", "desc": false}]"#),
];

/// xorshift64*: small, fast, reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Strings that have broken parsers before, somewhere.
const NASTY: &[&str] = &[
    "",
    " ",
    "\\",
    "a\\",
    "\"",
    "'",
    "''",
    "$",
    "$.a",
    "..",
    "/",
    "//",
    "/a/../b",
    "%",
    "%00",
    "\u{0}",
    "\u{7f}",
    "\n",
    "\r\n",
    "é",
    "🚀",
    "\u{202e}",
    "NaN",
    "Infinity",
    "-Infinity",
    "null",
    "true",
    "[",
    "{",
    "]]",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "9007199254740993",
    "-9223372036854775809",
    "1e309",
    "0x10",
    "metadata.",
    "tag.",
    "==",
];

fn nasty_string(r: &mut Rng) -> String {
    match r.below(5) {
        0 => (*r.pick(NASTY)).to_owned(),
        1 => format!("{}{}", r.pick(NASTY), r.pick(NASTY)),
        2 => "x".repeat(*r.pick(&[1usize, 255, 256, 4096, 70_000])),
        3 => {
            let n = r.below(40);
            (0..n)
                .map(|_| char::from_u32(r.below(0x3000) as u32).unwrap_or('?'))
                .collect()
        }
        _ => format!("k{}", r.below(1000)),
    }
}

/// A nasty string that still fits in a URL (clients refuse URLs over 64 KiB).
fn url_string(r: &mut Rng) -> String {
    loop {
        let s = nasty_string(r);
        if s.len() <= 8192 {
            return s;
        }
    }
}

/// A random JSON text that fits in a URL.
fn url_value(r: &mut Rng, depth: u32) -> String {
    loop {
        let s = random_value(r, depth).to_string();
        if s.len() <= 8192 {
            return s;
        }
    }
}

fn nasty_number(r: &mut Rng) -> Value {
    match r.below(8) {
        0 => json!(0),
        1 => json!(-1),
        2 => json!(i64::MAX),
        3 => json!(i64::MIN),
        4 => json!(u64::MAX),
        5 => json!(9_007_199_254_740_993i64),
        6 => json!(1e300),
        _ => json!(r.next() as f64 / 7.0 - 1e9),
    }
}

fn random_value(r: &mut Rng, depth: u32) -> Value {
    let top = if depth == 0 { 4 } else { 7 };
    match r.below(top) {
        0 => Value::Null,
        1 => Value::Bool(r.chance(50)),
        2 => nasty_number(r),
        3 => Value::String(nasty_string(r)),
        4 => Value::Array(
            (0..r.below(5))
                .map(|_| random_value(r, depth - 1))
                .collect(),
        ),
        5 => {
            let mut m = Map::new();
            for _ in 0..r.below(5) {
                m.insert(nasty_string(r), random_value(r, depth - 1));
            }
            Value::Object(m)
        }
        _ => {
            // Deep nesting.
            let mut v = json!(1);
            for _ in 0..r.below(200) {
                v = json!([v]);
            }
            v
        }
    }
}

/// Mutates a valid document: replace, delete or add a field, recursively.
fn mutate(r: &mut Rng, v: &mut Value, depth: u32) {
    match v {
        Value::Object(m) if !m.is_empty() && depth > 0 => {
            let keys: Vec<String> = m.keys().cloned().collect();
            let k = r.pick(&keys).clone();
            match r.below(4) {
                0 => {
                    m.insert(k, random_value(r, 3));
                }
                1 => {
                    m.remove(&k);
                }
                2 => {
                    m.insert(nasty_string(r), random_value(r, 2));
                }
                _ => mutate(r, m.get_mut(&k).expect("key"), depth - 1),
            }
        }
        Value::Array(a) if !a.is_empty() && depth > 0 => {
            let i = r.below(a.len());
            if r.chance(30) {
                a[i] = random_value(r, 3);
            } else {
                mutate(r, &mut a[i], depth - 1);
            }
        }
        _ => *v = random_value(r, 3),
    }
}

fn ts(r: &mut Rng) -> Value {
    match r.below(4) {
        0 => json!("2026-11-30 10:00:00.123456"),
        1 => json!("2026-11-30T10:00:00Z"),
        2 => Value::String(nasty_string(r)),
        _ => nasty_number(r),
    }
}

/// Valid bodies of the mutating endpoints (the fuzz starts from these).
fn templates(r: &mut Rng, run: &str) -> Vec<(&'static str, String, Value)> {
    vec![
        (
            "POST",
            "/api/runs".into(),
            json!({"name": "fz", "folder": "/fuzz", "status": "running", "tags": ["a"],
                   "metadata": {"a": 1, "b": "x"}, "system": {}, "description": "d",
                   "heartbeat_timeout": 60, "visibility": {"tenant": false, "public": false, "users": []}}),
        ),
        (
            "PUT",
            format!("/api/runs/{run}"),
            json!({"metadata": {"c": 2.5}, "tags": ["b"], "description": "e", "status": "running"}),
        ),
        (
            "POST",
            "/api/folders".into(),
            json!({"path": "/fuzz/sub", "description": "f", "tags": [], "metadata": {}}),
        ),
        (
            "POST",
            "/api/metrics".into(),
            json!({"run": run, "metrics": [{"time": 0.5, "timestamp": ts(r), "step": 3,
                   "values": {"res": 0.25, "mass": 1}}]}),
        ),
        (
            "POST",
            "/api/events".into(),
            json!({"run": run, "events": [{"timestamp": ts(r), "message": "hello"}]}),
        ),
        (
            "POST",
            "/api/alerts".into(),
            json!({"name": "al", "source": "metrics", "notification": "none",
                   "alert": {"rule": "is above", "metric": "res", "threshold": 1.0,
                             "frequency": 1, "window": 2, "aggregation": "average"}}),
        ),
        (
            "POST",
            "/api/artifacts".into(),
            json!({"name": "f.txt", "checksum": "00".repeat(32), "size": 4,
                   "mime_type": "text/plain", "run": run, "category": "input",
                   "storage": null, "type": null, "originalPath": "f.txt"}),
        ),
        ("PUT", format!("/api/runs/{run}/heartbeat"), json!({})),
        (
            "PUT",
            format!("/api/runs/{run}/abort"),
            json!({"reason": "r"}),
        ),
    ]
}

/// One filter expression: mostly well-formed, with hostile parts.
fn filter(r: &mut Rng) -> String {
    let lhs = match r.below(6) {
        0 => format!("metadata.{}", url_string(r)),
        1 => "status".to_owned(),
        2 => "name".to_owned(),
        3 => "folder.path".to_owned(),
        4 => format!("metrics.{}.last", url_string(r)),
        _ => url_string(r),
    };
    let op = *r.pick(&[
        "==",
        "!=",
        ">",
        "<",
        ">=",
        "<=",
        "contains",
        "not contains",
        "exists",
        "",
        "===",
    ]);
    match r.below(5) {
        0 => format!("has tag.{}", url_string(r)),
        1 => format!("{lhs} {op}"),
        _ => format!("{lhs} {op} {}", url_string(r)),
    }
}

fn list_query(r: &mut Rng) -> String {
    let mut parts = Vec::new();
    if r.chance(70) {
        let fs: Vec<String> = (0..r.below(4)).map(|_| filter(r)).collect();
        let raw = if r.chance(90) {
            json!(fs).to_string()
        } else {
            url_string(r)
        };
        parts.push(format!("filters={}", urlencode(&raw)));
    }
    if r.chance(50) {
        let id = match r.below(3) {
            0 => format!("metadata.{}", url_string(r)),
            1 => (*r.pick(&["name", "created", "status", "endtime"])).to_owned(),
            _ => url_string(r),
        };
        let raw = if r.chance(85) {
            json!([{"id": id, "desc": r.chance(50)}]).to_string()
        } else {
            url_value(r, 2)
        };
        parts.push(format!("sorting={}", urlencode(&raw)));
    }
    for key in [
        "start",
        "count",
        "max_points",
        "xaxis",
        "run",
        "runs",
        "metrics",
    ] {
        if r.chance(20) {
            let v = match r.below(3) {
                0 => nasty_number(r).to_string(),
                1 => url_string(r),
                _ => url_value(r, 1),
            };
            parts.push(format!("{key}={}", urlencode(&v)));
        }
    }
    parts.join("&")
}

fn msgpack_of(v: &Value) -> Vec<u8> {
    rmp_serde::to_vec_named(v).expect("msgpack")
}

struct Outcome {
    method: &'static str,
    path: String,
    body: String,
    status: u16,
}

fn send(
    api: &Api,
    method: &'static str,
    path: &str,
    body: Option<(Vec<u8>, &str)>,
) -> Result<Outcome, String> {
    let shown = body
        .as_ref()
        .map(|(b, _)| String::from_utf8_lossy(&b[..b.len().min(400)]).into_owned())
        .unwrap_or_default();
    let url = format!("{}{}", api.base, path);
    let mut req = api
        .http
        .request(method.parse().expect("method"), url)
        .bearer_auth(&api.token);
    if let Some((b, ct)) = body {
        req = req.header("content-type", ct).body(b);
    }
    let resp = req.send().map_err(|e| {
        format!(
            "{method} {} {shown}: no answer: {e:?}",
            &path[..path.len().min(300)]
        )
    })?;
    let status = resp.status().as_u16();
    let _ = resp.bytes();
    Ok(Outcome {
        method,
        path: path.chars().take(300).collect(),
        body: shown,
        status,
    })
}

/// Keeps a failure: a 5xx or no answer at all.
fn record(failures: &mut Vec<String>, o: Result<Outcome, String>) {
    match o {
        Ok(o) if o.status >= 500 => failures.push(format!(
            "{} {} {} -> {}",
            o.method, o.path, o.body, o.status
        )),
        Ok(_) => {}
        Err(e) => failures.push(e),
    }
}

#[test]
fn malformed_and_hostile_requests_never_get_a_5xx() {
    let seed = std::env::var("SIMTRACK_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    let cases: usize = std::env::var("SIMTRACK_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6_000);
    eprintln!("fuzz_requests: seed {seed} (SIMTRACK_FUZZ_SEED={seed} replays), {cases} cases");

    let dir = tempfile::tempdir().expect("tempdir");
    let tok = token(dir.path());
    let mut server = Server::start(dir.path(), &[]);
    let api = Api::new(&server, &tok);
    let run = api.create_run(
        json!({"name": "base", "folder": "/fuzz", "status": "running",
                                    "metadata": {"a": 1, "b": "x", "a\\": 2}}),
    );

    let mut failures: Vec<String> = Vec::new();

    for (key, raw) in REGRESSIONS {
        for list in ["/api/runs", "/api/ui/runs", "/api/folders"] {
            let path = format!("{list}?{key}={}", urlencode(raw));
            record(&mut failures, send(&api, "GET", &path, None));
        }
    }

    let mut r = Rng(seed);
    let t0 = Instant::now();
    let lists = [
        "/api/runs",
        "/api/ui/runs",
        "/api/folders",
        "/api/alerts",
        "/api/artifacts",
        "/api/events",
        "/api/metrics",
        "/api/metrics/names",
    ];
    for _ in 0..cases {
        match r.below(10) {
            // A read with hostile filters, sorting and paging.
            0..=3 => {
                let path = format!("{}?{}", r.pick(&lists), list_query(&mut r));
                record(&mut failures, send(&api, "GET", &path, None));
            }
            // A mutated JSON body on a mutating endpoint.
            4..=6 => {
                let mut ts = templates(&mut r, &run);
                let i = r.below(ts.len());
                let (method, path, mut body) = ts.swap_remove(i);
                for _ in 0..=r.below(3) {
                    mutate(&mut r, &mut body, 4);
                }
                let bytes = if r.chance(10) {
                    // Truncated or garbage JSON.
                    let s = body.to_string().into_bytes();
                    s[..r.below(s.len() + 1)].to_vec()
                } else {
                    body.to_string().into_bytes()
                };
                record(
                    &mut failures,
                    send(&api, method, &path, Some((bytes, "application/json"))),
                );
            }
            // msgpack batches: mutated, truncated or random bytes.
            7 | 8 => {
                let mut ts = templates(&mut r, &run);
                let (_, path, mut body) = ts.swap_remove(3 + r.below(2));
                mutate(&mut r, &mut body, 4);
                let mut bytes = msgpack_of(&body);
                match r.below(3) {
                    0 => bytes.truncate(r.below(bytes.len() + 1)),
                    1 => {
                        for _ in 0..=r.below(4) {
                            let i = r.below(bytes.len());
                            bytes[i] = r.next() as u8;
                        }
                    }
                    _ => {}
                }
                record(
                    &mut failures,
                    send(&api, "POST", &path, Some((bytes, "application/msgpack"))),
                );
            }
            // Hostile ids in paths.
            _ => {
                let id = urlencode(&url_string(&mut r));
                let path = r
                    .pick(&[
                        "/api/runs/{}",
                        "/api/folders/{}",
                        "/api/alerts/{}",
                        "/api/artifacts/{}",
                        "/api/artifacts/{}/download",
                        "/api/runs/{}/artifacts",
                    ])
                    .replace("{}", &id);
                let method = *r.pick(&["GET", "DELETE", "PUT"]);
                let body = (method == "PUT").then(|| {
                    (
                        random_value(&mut r, 3).to_string().into_bytes(),
                        "application/json",
                    )
                });
                record(&mut failures, send(&api, method, &path, body));
            }
        }
        if failures.len() >= 20 {
            break;
        }
    }
    let elapsed = t0.elapsed();
    eprintln!("fuzz_requests: {cases} cases in {elapsed:.1?}");

    assert!(server.alive(), "the server died during the fuzz");
    // A normal client is still served.
    let again = api.create_run(json!({"name": "after", "folder": "/fuzz"}));
    assert!(!again.is_empty());
    assert_eq!(api.get("/api/version").status, 200);
    assert!(
        failures.is_empty(),
        "seed {seed}: {} requests broke the server:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

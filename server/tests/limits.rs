//! Limits and exactness over HTTP (issue 14, items 5 and 8): any stored
//! metadata key can be filtered and sorted on, whole-series reads are
//! bounded, metric names per run are capped, run lists do not grow with
//! metric names, alerts cost O(new points), updates are validated as creates
//! are, steps are exact integers, tokens cannot mint tokens at will and a
//! deleted token stops working at once.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Api, Server, bin, storage_args, token, token_with, urlencode, wait_for};
use serde_json::{Value, json};

fn setup(extra: &[&str]) -> (tempfile::TempDir, Server, Api) {
    let dir = tempfile::tempdir().expect("tempdir");
    let tok = token(dir.path());
    let server = Server::start(dir.path(), extra);
    let api = Api::new(&server, &tok);
    (dir, server, api)
}

fn names_of(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| d["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Keys with a trailing backslash, quotes, control characters and other
/// path syntax are addressed exactly by filters and sort keys.
#[test]
fn any_stored_metadata_key_can_be_filtered_and_sorted_on() {
    let (_d, _server, api) = setup(&[]);
    let keys = [
        "a\\", "\"", "q\"x", "b\\\"", "$", "[0]", "x\u{1}y", "*", "é",
    ];
    for (i, k) in keys.iter().enumerate() {
        for j in 0..2 {
            api.create_run(json!({
                "name": format!("r{i}-{j}"),
                "metadata": {*k: {"n": j}, "plain": j},
                "system": {*k: j},
            }));
        }
    }
    for (i, k) in keys.iter().enumerate() {
        for (top, path) in [("metadata", format!("{k}.n")), ("system", k.to_string())] {
            let f = json!([format!("{top}.{path} == 1")]).to_string();
            let s = json!([{"id": format!("{top}.{path}"), "desc": true}]).to_string();
            for list in ["/api/runs", "/api/ui/runs"] {
                let r = api.get(&format!(
                    "{list}?filters={}&sorting={}",
                    urlencode(&f),
                    urlencode(&s)
                ));
                assert_eq!(r.status, 200, "{list} key {k:?}: {}", r.text);
                assert_eq!(names_of(&r.json()), vec![format!("r{i}-1")], "key {k:?}");
            }
        }
    }
}

/// `PUT /api/runs/{id}` refuses what `POST /api/runs` refuses, field by
/// field, and stores nothing of a refused update.
#[test]
fn updates_are_validated_exactly_as_creates() {
    let (_d, _server, api) = setup(&[]);
    let id = api.create_run(json!({"name": "u", "description": "kept"}));
    let big = "d".repeat((1 << 20) + 1);
    let bad = [
        json!({"description": big}),
        json!({"description": 5}),
        json!({"name": "n".repeat(256)}),
        json!({"name": "a\u{7}b"}),
        json!({"tags": ["t".repeat(256)]}),
        json!({"metadata": {"m": "x".repeat(1 << 20)}}),
        json!({"system": {"s": "x".repeat(1 << 20)}}),
        json!({"ttl": "soon"}),
        json!({"heartbeat_timeout": -1}),
        json!({"status": "exploded"}),
        json!({"folder": 3}),
    ];
    for body in &bad {
        let created = api.json("POST", "/api/runs", body);
        assert_eq!(
            created.status,
            422,
            "create {}",
            &body.to_string()[..60.min(body.to_string().len())]
        );
        let put = api.json("PUT", &format!("/api/runs/{id}"), body);
        assert_eq!(
            put.status,
            created.status,
            "PUT answers as create does for {}: {}",
            &body.to_string()[..60.min(body.to_string().len())],
            put.text
        );
    }
    let run = api.ok(&format!("/api/runs/{id}"));
    assert_eq!(run["description"], "kept");
    assert_eq!(run["name"], "u");
    // At the limit both accept.
    let fits = "d".repeat(1 << 20);
    let r = api.json(
        "PUT",
        &format!("/api/runs/{id}"),
        &json!({"description": fits}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Steps are integers end to end: 2^53 + 1 and i64::MAX come back exactly,
/// over JSON and msgpack; out-of-range steps are a 422.
#[test]
fn steps_are_stored_and_returned_exactly() {
    let (_d, _server, api) = setup(&[]);
    let run = api.create_run(json!({"name": "steps"}));
    let big: [u64; 3] = [(1 << 53) + 1, (1 << 62) + 3, i64::MAX as u64];
    let items: Vec<Value> = big
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"time": i as f64, "step": s, "values": {"j": i}}))
        .collect();
    let r = api.json(
        "POST",
        "/api/metrics",
        &json!({"run": run, "metrics": items}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    #[derive(serde::Serialize)]
    struct It {
        time: f64,
        step: u64,
        values: std::collections::HashMap<String, f64>,
    }
    #[derive(serde::Serialize)]
    struct B {
        run: String,
        metrics: Vec<It>,
    }
    let b = B {
        run: run.clone(),
        metrics: big
            .iter()
            .enumerate()
            .map(|(i, s)| It {
                time: i as f64,
                step: *s,
                values: [("m".to_owned(), i as f64)].into(),
            })
            .collect(),
    };
    let r = api.msgpack("/api/metrics", None, &b);
    assert_eq!(r.status, 200, "{}", r.text);
    for metric in ["j", "m"] {
        let q = format!(
            "/api/metrics?runs={}&metrics={}&xaxis=step&aggregate=False",
            urlencode(&json!([run]).to_string()),
            urlencode(&json!([metric]).to_string())
        );
        let text = api.get(&q).text;
        for s in big {
            assert!(
                text.contains(&format!("\"step\":{s}")) || text.contains(&format!("\"step\": {s}")),
                "{metric}: step {s} not returned exactly: {text}"
            );
        }
    }
    for s in [json!(9_223_372_036_854_775_808u64), json!(-1), json!(1.5)] {
        let r = api.json(
            "POST",
            "/api/metrics",
            &json!({"run": run, "metrics": [{"time": 0, "step": s, "values": {"j": 1}}]}),
        );
        assert_eq!(r.status, 422, "step {s}: {}", r.text);
    }
}

/// `POST /api/ui/tokens` mints only for the caller's own name, for at most
/// 90 days (never past the caller's own expiry), and at most 100 live
/// tokens per name.
#[test]
fn a_token_mints_only_bounded_tokens_for_itself() {
    let (_d, server, api) = setup(&[]);
    let r = api.json(
        "POST",
        "/api/ui/tokens",
        &json!({"name": "root", "days": 3650}),
    );
    assert_eq!(r.status, 403, "another name: {}", r.text);
    let r = api.json("POST", "/api/ui/tokens", &json!({"days": 3650}));
    assert_eq!(r.status, 422, "ten years: {}", r.text);
    let r = api.json("POST", "/api/ui/tokens", &json!({"days": 91}));
    assert_eq!(r.status, 422, "91 days: {}", r.text);
    let r = api.json(
        "POST",
        "/api/ui/tokens",
        &json!({"name": "tester", "days": 90}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let made = r.json();
    assert_eq!(made["name"], "tester");
    // A minted token cannot mint for another name either.
    let child = Api::new(&server, made["token"].as_str().expect("token"));
    let r = child.json("POST", "/api/ui/tokens", &json!({"name": "admin"}));
    assert_eq!(r.status, 403, "{}", r.text);
    // The setup token plus the one above: 2 live; 98 more are allowed.
    let mut minted = 0;
    let status = loop {
        let r = api.json("POST", "/api/ui/tokens", &json!({"days": 1}));
        if r.status != 200 {
            break r.status;
        }
        minted += 1;
        assert!(minted <= 200, "minting never stopped");
    };
    assert_eq!(status, 429);
    assert_eq!(minted, 98);
    let mine = api.ok("/api/ui/tokens");
    assert_eq!(mine["data"].as_array().map(Vec::len), Some(100));
}

/// A token revoked through the API stops working at once; one revoked with
/// the CLI (another process, as another replica would) within the token
/// cache lifetime, without a restart.
#[test]
fn a_revoked_token_stops_working_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tok = token(dir.path());
    let other = token_with(dir.path(), &["--name", "ci"]);
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server, &tok);
    let ci = Api::new(&server, &other);
    // Warm every cache.
    for _ in 0..3 {
        api.ok("/api/runs?count=1");
        ci.ok("/api/runs?count=1");
    }
    // Through the API: the caller's own token, gone on the next request.
    let r = api.json("POST", "/api/ui/tokens", &json!({"days": 1}));
    let made = r.json();
    let minted = Api::new(&server, made["token"].as_str().expect("token"));
    minted.ok("/api/runs?count=1");
    let id = made["id"].as_str().expect("id");
    let r = ci.send("DELETE", &format!("/api/ui/tokens/{id}"), &[], None);
    assert_eq!(r.status, 404, "someone else's token: {}", r.text);
    let r = api.send("DELETE", &format!("/api/ui/tokens/{id}"), &[], None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(minted.get("/api/runs?count=1").status, 401);
    // With the CLI, while the server runs.
    let out = Command::new(bin())
        .args(["token", "revoke", "--name", "ci"])
        .args(storage_args(dir.path()))
        .output()
        .expect("run token revoke");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t0 = Instant::now();
    let gone = wait_for(Duration::from_secs(10), || {
        (ci.get("/api/runs?count=1").status == 401).then_some(())
    });
    assert!(gone.is_some(), "a CLI-revoked token still works after 10 s");
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    eprintln!("CLI-revoked token refused after {took:?}");
    api.ok("/api/runs?count=1");
    let list = Command::new(bin())
        .args(["token", "list"])
        .args(storage_args(dir.path()))
        .output()
        .expect("run token list");
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("\ttester\t") && !text.contains("\tci\t"),
        "{text}"
    );
}

/// `VmHWM` and `VmRSS` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[derive(serde::Serialize)]
struct MpItem {
    time: f64,
    step: i64,
    values: std::collections::HashMap<String, f64>,
}

#[derive(serde::Serialize)]
struct MpBatch {
    run: String,
    metrics: Vec<MpItem>,
}

fn log_points(api: &Api, run: &str, name: &str, from: i64, n: i64) {
    let b = MpBatch {
        run: run.to_owned(),
        metrics: (from..from + n)
            .map(|i| MpItem {
                time: i as f64 * 0.001,
                step: i,
                values: [(name.to_owned(), (i as f64 * 0.01).sin())].into(),
            })
            .collect(),
    };
    let r = api.msgpack("/api/metrics", None, &b);
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Four concurrent whole-series reads of a 2M-point series: every point
/// arrives, and the server's peak memory stays bounded (the answers are
/// streamed, not built in memory). Downsampled reads are capped at the
/// server's maximum, and say so.
#[test]
fn whole_series_reads_are_streamed_and_downsampled_reads_capped() {
    const N: i64 = 2_000_000;
    let (_d, server, api) = setup(&["--max-read-points", "5000"]);
    let run = api.create_run(json!({"name": "long"}));
    let t0 = Instant::now();
    for from in (0..N).step_by(200_000) {
        log_points(&api, &run, "m", from, 200_000);
    }
    eprintln!("ingested {N} points in {:?}", t0.elapsed());
    let pid = server.child.id();
    // Forget the ingest's peak: from here VmHWM is the reads' peak.
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    let (base_hwm, base_rss) = memory_kib(pid);
    let url = format!(
        "{}/api/metrics?runs={}&metrics={}&xaxis=step&aggregate=False",
        api.base,
        urlencode(&json!([run]).to_string()),
        urlencode(&json!(["m"]).to_string())
    );
    let t0 = Instant::now();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (url, tok) = (url.clone(), api.token.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(300))
                    .build()
                    .expect("client");
                let mut r = client.get(&url).bearer_auth(tok).send().expect("read");
                assert_eq!(r.status(), 200);
                // Count points and check order while reading, keep nothing.
                struct Counter {
                    points: u64,
                    bytes: u64,
                }
                impl std::io::Write for Counter {
                    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                        self.points += b.iter().filter(|c| **c == b'}').count() as u64;
                        self.bytes += b.len() as u64;
                        Ok(b.len())
                    }
                    fn flush(&mut self) -> std::io::Result<()> {
                        Ok(())
                    }
                }
                let mut c = Counter {
                    points: 0,
                    bytes: 0,
                };
                r.copy_to(&mut c).expect("body");
                (c.points, c.bytes)
            })
        })
        .collect();
    let mut peak_rss = base_rss;
    while readers.iter().any(|h| !h.is_finished()) {
        peak_rss = peak_rss.max(memory_kib(pid).1);
        std::thread::sleep(Duration::from_millis(20));
    }
    for h in readers {
        let (points, bytes) = h.join().expect("reader");
        // Every point is one object; plus the run's and the document's braces.
        assert_eq!(points, N as u64 + 2, "{bytes} bytes");
    }
    let took = t0.elapsed();
    let (hwm, _) = memory_kib(pid);
    let grew = hwm
        .saturating_sub(base_hwm)
        .max(peak_rss.saturating_sub(base_rss));
    eprintln!(
        "4 concurrent whole reads of {N} points: {took:?}; server RSS before {base_rss} KiB, \
         VmHWM {base_hwm} -> {hwm} KiB, peak sampled RSS {peak_rss} KiB (grew {grew} KiB)"
    );
    assert!(
        grew < 96 * 1024,
        "the server's memory grew by {grew} KiB for 4 streamed reads"
    );
    // A downsampled read asking for more than the server's maximum gets
    // the maximum, and is told.
    let r = api
        .http
        .get(format!("{url}&max_points=1000000"))
        .bearer_auth(&api.token)
        .send()
        .expect("read");
    assert_eq!(
        r.headers()
            .get("x-simtrack-max-points")
            .and_then(|v| v.to_str().ok()),
        Some("5000")
    );
    let v: Value = r.json().expect("json");
    let n = v[&run]["m"].as_array().map_or(0, Vec::len);
    assert!((100..=5000).contains(&n), "{n} points");
    let n = api.series(&run, "m", "step", Some(800)).len();
    assert!(n <= 800 && n > 100, "{n}");
}

/// Metric names per run are capped (422 with a clear detail, the batch
/// stored not at all), and run lists carry at most 100 metric summaries per
/// run whatever the run holds; the single-run document carries them all.
#[test]
fn metric_names_per_run_are_capped_and_lists_do_not_grow_with_them() {
    let (_d, _server, api) = setup(&[]);
    let run = api.create_run(json!({"name": "wide"}));
    let post = |names: std::ops::Range<usize>, step: i64| {
        let values: serde_json::Map<String, Value> =
            names.map(|i| (format!("m{i:05}"), json!(i))).collect();
        api.json(
            "POST",
            "/api/metrics",
            &json!({"run": run, "metrics": [{"time": 0, "step": step, "values": values}]}),
        )
    };
    let t0 = Instant::now();
    for from in (0..10_000).step_by(2_500) {
        let r = post(from..from + 2_500, 0);
        assert_eq!(r.status, 200, "{}", r.text);
    }
    eprintln!("10,000 metric names logged in {:?}", t0.elapsed());
    // One more name: refused, with a clear detail; nothing of it stored.
    let r = post(9_999..10_001, 1);
    assert_eq!(r.status, 422, "{}", r.text);
    let detail = r.json()["detail"].as_str().unwrap_or("").to_owned();
    assert!(
        detail.contains("at most 10000 metric names per run"),
        "{detail}"
    );
    assert!(api.series(&run, "m09999", "step", None).len() == 1);
    // Names it has: fine.
    assert_eq!(post(0..50, 2).status, 200);
    // A list page: small, however many names the run has.
    let list = api.get("/api/runs?count=10");
    assert_eq!(list.status, 200);
    let v = list.json();
    assert!(
        list.text.len() < 32 * 1024,
        "a runs list of one run is {} bytes",
        list.text.len()
    );
    let doc = &v["data"][0];
    assert_eq!(doc["metrics"].as_object().map(|m| m.len()), Some(100));
    assert_eq!(doc["metrics_omitted"], 9_900);
    let ui = api.get("/api/ui/runs?count=10");
    assert!(ui.text.len() < 32 * 1024, "{}", ui.text.len());
    // Named summaries, as the UI's metric columns ask.
    let named = api.ok(&format!(
        "/api/ui/runs?metrics={}",
        urlencode(&json!(["m07777", "nope"]).to_string())
    ));
    let m = &named["data"][0]["metrics"];
    assert_eq!(m.as_object().map(|m| m.len()), Some(1), "{m}");
    assert_eq!(m["m07777"]["last"], 7777.0);
    // Names, paged.
    let page = api.ok(&format!(
        "/api/metrics/names?runs={}&start=100&count=50",
        urlencode(&json!([run]).to_string())
    ));
    let page: Vec<&str> = page
        .as_array()
        .expect("names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(page.len(), 50);
    assert_eq!(page[0], "m00100");
    // The run's own document has every name.
    let one = api.ok(&format!("/api/runs/{run}"));
    assert_eq!(one["metrics"].as_object().map(|m| m.len()), Some(10_000));
}

/// Ten alerts with windows longer than the run on one run: each small batch
/// of that run costs about what a batch without alerts costs (evaluation is
/// O(new points), not a re-scan of the window), so another run's ingest and
/// finish are not held up behind it.
#[test]
fn alerts_with_huge_windows_cost_o_new_points_per_batch() {
    const PRELOAD: i64 = 1_000_000;
    let (_d, _server, api) = setup(&[]);
    let a = api.create_run(json!({"name": "alerted"}));
    let defs = [
        json!({"rule": "is above", "aggregation": "average", "threshold": 5.0}),
        json!({"rule": "is above", "aggregation": "sum", "threshold": 1e12}),
        json!({"rule": "is below", "aggregation": "all", "threshold": 2.0}),
        json!({"rule": "is above", "aggregation": "at least one", "threshold": 0.5}),
        json!({"rule": "is inside range", "aggregation": "at least one", "range_low": 4.0, "range_high": 6.0}),
        json!({"rule": "is outside range", "aggregation": "all", "range_low": -0.5, "range_high": 0.5}),
        json!({"rule": "is inside range", "aggregation": "average", "range_low": -1.0, "range_high": 1.0}),
        json!({"rule": "is outside range", "aggregation": "at least one", "range_low": -2.0, "range_high": 2.0}),
        json!({"rule": "is inside range", "aggregation": "all", "range_low": -2.0, "range_high": 2.0}),
        json!({"rule": "is below", "aggregation": "average", "threshold": -5.0}),
    ];
    let mut ids = Vec::new();
    for (i, d) in defs.iter().enumerate() {
        let mut def = json!({"metric": "m", "window": 1_000_000, "frequency": 1});
        def.as_object_mut()
            .expect("obj")
            .extend(d.as_object().expect("obj").clone());
        let r = api.json(
            "POST",
            "/api/alerts",
            &json!({"name": format!("huge-{i}"), "source": "metrics", "alert": def}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        ids.push(r.json()["id"].clone());
    }
    let r = api.json("PUT", &format!("/api/runs/{a}"), &json!({"alerts": ids}));
    assert_eq!(r.status, 200, "{}", r.text);
    for from in (0..PRELOAD).step_by(250_000) {
        log_points(&api, &a, "m", from, 250_000);
    }
    let status = |i: usize| {
        api.ok(&format!(
            "/api/alerts/{}/status/{a}",
            ids[i].as_str().expect("id")
        ))["status"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    // sin() over the series: |v| <= 1, average near 0.
    let want = [
        "ok", "ok", "critical", "critical", "ok", "ok", "critical", "ok", "critical", "ok",
    ];
    for (i, w) in want.iter().enumerate() {
        assert_eq!(status(i), *w, "alert {i}: {}", defs[i]);
    }
    // Small batches on the alerted run.
    let small = |run: &str, from: i64| {
        let t = Instant::now();
        log_points(&api, run, "m", from, 10);
        t.elapsed()
    };
    let mut on_a = Vec::new();
    for k in 0..30 {
        on_a.push(small(&a, PRELOAD + k * 10));
    }
    let b = api.create_run(json!({"name": "bystander"}));
    let mut on_b = Vec::new();
    for k in 0..30 {
        on_b.push(small(&b, k * 10));
    }
    let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len() as u32;
    let (ma, mb) = (mean(&on_a), mean(&on_b));
    // The other run's finish while the alerted run keeps logging.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let (stop, base, tok, a) = (stop.clone(), api.base.clone(), api.token.clone(), a.clone());
        std::thread::spawn(move || {
            let api = Api {
                base,
                token: tok,
                http: reqwest::blocking::Client::new(),
            };
            let mut k = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                log_points(&api, &a, "m", 2 * PRELOAD + k * 10, 10);
                k += 1;
            }
            k
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    for k in 0..10 {
        log_points(&api, &b, "m", 1000 + k * 10, 10);
    }
    let r = api.json(
        "PUT",
        &format!("/api/runs/{b}"),
        &json!({"status": "completed"}),
    );
    assert_eq!(r.status, 200);
    let finish = t.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let hammered = hammer.join().expect("hammer");
    eprintln!(
        "10-point batch: {ma:?} on the run with 10 huge-window alerts over {PRELOAD} points, \
         {mb:?} on a run without; another run's 10 batches + finish while the alerted run \
         logs ({hammered} batches meanwhile): {finish:?}"
    );
    for (i, w) in want.iter().enumerate() {
        assert_eq!(status(i), *w, "alert {i} after the small batches");
    }
    // Bounds relative to the same server's batch without alerts (so a
    // loaded machine slows both), and generous: before, a batch on the
    // alerted run took ~160x one without, and the other run's 10 batches
    // and finish ~1,300x.
    assert!(
        ma < mb * 25 + Duration::from_millis(50),
        "a 10-point batch on the alerted run takes {ma:?} ({mb:?} without alerts)"
    );
    assert!(
        finish < mb * 11 * 20 + Duration::from_millis(300),
        "another run's batches and finish took {finish:?} ({mb:?} per batch alone)"
    );
}

//! The server over HTTP: auth, idempotency, bad input, lifecycle, alerts,
//! shutdown and crash safety. Every test talks to the real binary.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Api, Server, token, token_with, urlencode, wait_for};
use serde_json::{Value, json};

fn ts(offset_s: f64) -> String {
    simtrack_server::util::fmt_ts(1_800_000_000_000_000 + (offset_s * 1e6) as i64)
}

fn points(run: &str, metric: &str, from: i64, n: i64, value: impl Fn(i64) -> f64) -> Value {
    let items: Vec<Value> = (from..from + n)
        .map(|i| json!({"time": i as f64 * 0.1, "timestamp": ts(i as f64 * 0.1), "step": i, "values": {metric: value(i)}}))
        .collect();
    json!({"run": run, "metrics": items})
}

fn setup(extra: &[&str]) -> (tempfile::TempDir, Server, Api) {
    let dir = tempfile::tempdir().expect("tempdir");
    let tok = token(dir.path());
    let server = Server::start(dir.path(), extra);
    let api = Api::new(&server, &tok);
    (dir, server, api)
}

#[test]
fn starts_fast_and_serves_the_plain_page_and_openapi() {
    let (_d, server, api) = setup(&[]);
    assert!(
        server.startup < Duration::from_secs(1),
        "startup took {:?}",
        server.startup
    );
    let page = api.send("GET", "/", &[("Authorization", "")], None);
    assert_eq!(page.status, 200);
    assert!(page.text.contains("simtrack server is up"));
    let doc = api
        .send("GET", "/api/openapi.json", &[("Authorization", "")], None)
        .json();
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path, ..) in simtrack_server::http::openapi::OPERATIONS {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    assert!(doc["components"]["parameters"]["IdempotencyKey"].is_object());
    assert_eq!(api.ok("/api/version")["version"], "1.3.0");
    let nosim = api.get("/api/nosim/version");
    assert_eq!(nosim.status, 404);
    assert!(nosim.json()["detail"].is_string());
}

#[test]
fn every_api_call_needs_a_valid_unexpired_token() {
    let (dir, _server, api) = setup(&[]);
    let run = api.create_run(json!({"name": "secret", "metadata": {"k": 1}}));
    let expired = common::token_with(dir.path(), &["--days", "0"]);
    let paths = [
        ("GET", "/api/version".to_owned()),
        ("GET", "/api/runs".to_owned()),
        ("GET", format!("/api/runs/{run}")),
        ("PUT", format!("/api/runs/{run}")),
        ("POST", "/api/runs".to_owned()),
        ("GET", "/api/folders".to_owned()),
        (
            "GET",
            format!("/api/metrics?runs=[\"{run}\"]&metrics=[\"x\"]&xaxis=step"),
        ),
        ("POST", "/api/metrics".to_owned()),
        ("GET", format!("/api/events?run={run}")),
        ("GET", "/api/artifacts".to_owned()),
        ("GET", "/api/alerts".to_owned()),
        ("PUT", format!("/api/runs/{run}/heartbeat")),
        ("GET", format!("/api/runs/{run}/abort")),
    ];
    let bad = format!("Bearer {}", "x".repeat(40));
    let expired_h = format!("Bearer {expired}");
    for (m, p) in &paths {
        for auth in ["", "Basic abc", bad.as_str(), expired_h.as_str()] {
            let r = api.send(
                m,
                p,
                &[("Authorization", auth)],
                Some((b"{}".to_vec(), "application/json")),
            );
            assert_eq!(r.status, 401, "{m} {p} with {auth:?}: {}", r.text);
            assert!(r.json()["detail"].is_string());
            assert!(!r.text.contains("secret"));
        }
    }
    let r = api.send("GET", "/api/runs", &[("Authorization", &expired_h)], None);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or("")
            .contains("expired")
    );
    // The token is JWT-shaped and carries exp, as the Simvue client requires.
    let payload = api.token.split('.').nth(1).expect("three parts");
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64"),
    )
    .expect("json claims");
    assert!(claims["exp"].as_i64().expect("exp") > 1_700_000_000);
    // The database holds only token hashes (the embedded one is a file
    // this test can read).
    if common::embedded_backend() {
        let db = std::fs::read(dir.path().join("simtrack.db")).expect("db");
        let needle = api.token.as_bytes();
        assert!(
            !db.windows(needle.len()).any(|w| w == needle),
            "a token is stored in clear"
        );
    }
}

#[test]
fn idempotency_keys_apply_each_request_once() {
    let (dir, server, api) = setup(&[]);
    let body = json!({"name": "idem", "folder": "/idem"});
    let a = api.json_keyed("POST", "/api/runs", "run-1", &body);
    let b = api.json_keyed("POST", "/api/runs", "run-1", &body);
    assert_eq!(a.status, 200);
    assert_eq!(a.text, b.text, "a repeated key answers the stored response");
    let run = a.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(
        api.ok("/api/runs?filters=%5B%22name%20%3D%3D%20idem%22%5D")["count"],
        1
    );
    let batch = points(&run, "x", 0, 100, |i| i as f64);
    for _ in 0..3 {
        assert_eq!(api.msgpack("/api/metrics", Some("m-1"), &batch).status, 200);
    }
    assert_eq!(api.series(&run, "x", "step", None).len(), 100);
    assert_eq!(
        api.msgpack(
            "/api/metrics",
            Some("m-2"),
            &points(&run, "x", 100, 10, |i| i as f64)
        )
        .status,
        200
    );
    assert_eq!(api.series(&run, "x", "step", None).len(), 110);
    let ev = json!({"run": run, "events": [{"message": "once", "log_level": "info", "timestamp": ts(0.0)}]});
    api.msgpack("/api/events", Some("e-1"), &ev);
    api.msgpack("/api/events", Some("e-1"), &ev);
    assert_eq!(api.events(&run).iter().filter(|m| *m == "once").count(), 1);
    // A big batch (stored in multi-row groups and a remainder) keeps every
    // event once, in the order sent, also when resent with its key.
    let many: Vec<String> = (0..200).map(|i| format!("batch line {i}")).collect();
    let levels = ["info", "error", "warning"];
    let big = json!({"run": run, "events": many.iter().enumerate().map(|(i, m)| {
        json!({"message": m, "log_level": levels[i % 3], "timestamp": ts(1.0)})
    }).collect::<Vec<_>>()});
    for _ in 0..2 {
        assert_eq!(api.msgpack("/api/events", Some("e-2"), &big).status, 200);
    }
    let stored: Vec<String> = api
        .events(&run)
        .into_iter()
        .filter(|m| m.starts_with("batch line"))
        .collect();
    assert_eq!(stored, many);
    let rows = api.ok(&format!("/api/events?run={run}&count=0"));
    let errors = rows["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["log_level"] == "error")
        .count();
    assert_eq!(errors, 67);
    // Keys are scoped per token: another token's identical key is its own request.
    let other = Api::new(&server, &token(dir.path()));
    let c = other.json_keyed("POST", "/api/runs", "run-1", &body);
    assert_ne!(c.json()["id"], a.json()["id"]);
    // Without a key, requests behave normally (the official client).
    api.msgpack(
        "/api/metrics",
        None,
        &points(&run, "x", 0, 10, |i| i as f64),
    );
    assert_eq!(api.series(&run, "x", "step", None).len(), 120);
    let long_key = "k".repeat(300);
    assert_eq!(
        api.json_keyed("POST", "/api/runs", &long_key, &body).status,
        400
    );
}

#[test]
fn bad_input_gets_a_clear_4xx_and_damages_nothing() {
    let (_d, mut server, api) = setup(&["--max-body", "16777216"]);
    let run = api.create_run(json!({"name": "victim", "metadata": {"a": 1}}));
    api.msgpack(
        "/api/metrics",
        None,
        &points(&run, "x", 0, 50, |i| i as f64),
    );
    let expect = |r: common::Resp, status: u16, what: &str| {
        assert_eq!(r.status, status, "{what}: {}", r.text);
        let detail = r.json()["detail"].as_str().unwrap_or_default().to_owned();
        assert!(!detail.is_empty(), "{what}: no detail");
        detail
    };
    let raw = |m: &str, p: &str, b: &[u8], ct: &str| api.send(m, p, &[], Some((b.to_vec(), ct)));
    expect(
        raw("POST", "/api/runs", b"{\"name\": ", "application/json"),
        400,
        "truncated JSON",
    );
    expect(
        raw("POST", "/api/runs", b"[1,2]", "application/json"),
        422,
        "JSON array",
    );
    expect(
        raw(
            "POST",
            "/api/metrics",
            b"\x93\xff\x00garbage",
            "application/msgpack",
        ),
        400,
        "garbage msgpack",
    );
    expect(
        raw("POST", "/api/events", b"", "application/msgpack"),
        400,
        "empty msgpack",
    );
    expect(
        api.json("POST", "/api/runs", &json!({"name": 5})),
        422,
        "numeric name",
    );
    expect(
        api.json("POST", "/api/runs", &json!({"tags": "a,b"})),
        422,
        "tags as string",
    );
    expect(
        api.json("POST", "/api/runs", &json!({"metadata": [1]})),
        422,
        "metadata as list",
    );
    expect(
        api.json("POST", "/api/runs", &json!({"status": "exploded"})),
        422,
        "unknown status",
    );
    expect(
        api.json("POST", "/api/runs", &json!({"folder": "/a/../../etc"})),
        422,
        "folder traversal",
    );
    expect(
        api.json("POST", "/api/runs", &json!({"name": "n".repeat(10_000)})),
        422,
        "huge run name",
    );
    expect(
        api.json(
            "PUT",
            &format!("/api/runs/{run}"),
            &json!({"heartbeat_timeout": "soon"}),
        ),
        422,
        "wrong type update",
    );
    let huge_metric = points(&run, &"m".repeat(1000), 0, 1, |_| 1.0);
    expect(
        api.msgpack("/api/metrics", None, &huge_metric),
        422,
        "huge metric name",
    );
    let bad_step = json!({"run": run, "metrics": [{"time": 0, "timestamp": ts(0.0), "step": -1, "values": {"x": 1}}]});
    expect(
        api.msgpack("/api/metrics", None, &bad_step),
        422,
        "negative step",
    );
    let bad_value = json!({"run": run, "metrics": [{"time": 0, "timestamp": ts(0.0), "step": 1, "values": {"x": "one"}}]});
    expect(
        api.msgpack("/api/metrics", None, &bad_value),
        400,
        "string value",
    );
    let bad_ts = json!({"run": run, "metrics": [{"time": 0, "timestamp": "yesterday", "step": 1, "values": {"x": 1}}]});
    expect(
        api.msgpack("/api/metrics", None, &bad_ts),
        422,
        "bad timestamp",
    );
    // A batch naming no existing run is invalid input, as Simvue answers.
    expect(
        api.msgpack("/api/metrics", None, &points("nope", "x", 0, 1, |_| 1.0)),
        422,
        "unknown run",
    );
    expect(
        api.msgpack(
            "/api/events",
            None,
            &json!({"run": "nope", "events": [{"message": "m", "timestamp": ts(0.0)}]}),
        ),
        422,
        "unknown run",
    );
    let bad_level = json!({"run": run, "events": [{"message": "m", "log_level": "loud", "timestamp": ts(0.0)}]});
    expect(
        api.msgpack("/api/events", None, &bad_level),
        422,
        "bad log level",
    );
    for name in ["../../etc/passwd", "a/b", "..", "c:\\x", "", "bad\u{0}name"] {
        let body = json!({"name": name, "size": 1, "checksum": "a".repeat(64), "mime_type": "text/plain", "original_path": "/x"});
        expect(
            api.json("POST", "/api/artifacts", &body),
            422,
            &format!("artifact name {name:?}"),
        );
    }
    let body = json!({"name": "f.txt", "size": 3, "checksum": "zz", "original_path": ""});
    expect(
        api.json("POST", "/api/artifacts", &body),
        422,
        "bad checksum",
    );
    // A filter or sort key that reads nothing the list holds is refused,
    // not answered with no runs (or, with `!=`, with every run).
    let q = |list: &str, param: &str, v: Value| {
        let sep = if list.contains('?') { '&' } else { '?' };
        api.get(&format!(
            "/api/{list}{sep}{param}={}",
            urlencode(&v.to_string())
        ))
    };
    for (list, filter) in [
        (format!("events?run={run}"), "level == error"),
        ("runs".into(), "nme == victim"),
        ("runs".into(), "runtime != 5"),
        ("runs".into(), "metrics.x.last < 1"),
        ("folders".into(), "nme == x"),
    ] {
        let detail = expect(q(&list, "filters", json!([filter])), 422, filter);
        let field = filter.split(' ').next().unwrap_or_default();
        let what = list.split('?').next().unwrap_or_default();
        assert!(
            detail.starts_with(&format!("{what} have no field '{field}' to filter on;")),
            "{filter}: {detail}"
        );
    }
    // The runs table's search box: a field inside an expression too.
    let detail = expect(
        api.get(&format!(
            "/api/ui/runs?where={}",
            urlencode("name == victim OR (NOT colour == red)")
        )),
        422,
        "expression",
    );
    assert!(
        detail.starts_with("runs have no field 'colour'"),
        "{detail}"
    );
    for (list, key) in [("runs", "runtime"), ("folders", "name"), ("tags", "colour")] {
        let detail = expect(
            q(list, "sorting", json!([{"id": key, "desc": true}])),
            422,
            key,
        );
        assert!(
            detail.starts_with(&format!("cannot sort {list} by '{key}';")),
            "{key}: {detail}"
        );
    }
    expect(
        q("alerts", "sorting", json!([{"id": "name", "desc": 1}])),
        400,
        "numeric desc",
    );
    expect(
        q("artifacts", "sorting", json!(["name"])),
        400,
        "bare sort key",
    );
    assert_eq!(
        q(
            "runs",
            "filters",
            json!(["name == victim", "metadata.a == 1", "system.cwd not exists"])
        )
        .json()["count"],
        1
    );

    // A body over the limit: 413 whether or not a length is announced.
    let big = vec![b' '; 100 << 20];
    let r = api.send("POST", "/api/runs", &[], Some((big, "application/json")));
    assert_eq!(r.status, 413, "100 MB body: {}", r.text);
    let stream = reqwest::blocking::Body::new(std::io::Cursor::new(vec![b' '; 20 << 20]));
    let r = api
        .http
        .post(format!("{}/api/runs", api.base))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body(stream)
        .send();
    assert_eq!(
        r.expect("the server reads (and drops) the rest, then answers")
            .status()
            .as_u16(),
        413
    );
    // Upload with the wrong bytes is refused and cannot be confirmed.
    let reg = api.json(
        "POST",
        "/api/artifacts",
        &json!({"name": "f.txt", "size": 3, "checksum": "b".repeat(64), "original_path": "/f.txt"}),
    );
    assert_eq!(reg.status, 200);
    let reg = reg.json();
    let up = api.send(
        "PUT",
        reg["url"].as_str().expect("url"),
        &[("Authorization", "")],
        Some((b"abc".to_vec(), "application/octet-stream")),
    );
    assert_eq!(up.status, 400, "{}", up.text);
    let id = reg["id"].as_str().expect("id");
    expect(
        api.json(
            "PUT",
            &format!("/api/artifacts/{id}"),
            &json!({"uploaded": true}),
        ),
        400,
        "confirm without bytes",
    );
    let tampered = reg["url"].as_str().expect("url").replace("sig=", "sig=A");
    assert_eq!(
        api.send(
            "PUT",
            &tampered,
            &[("Authorization", "")],
            Some((b"abc".to_vec(), "application/octet-stream"))
        )
        .status,
        401
    );
    assert_eq!(
        api.send(
            "GET",
            &format!("/api/artifacts/{id}/download"),
            &[("Authorization", "")],
            None
        )
        .status,
        401
    );
    // Nothing stored before was damaged, and the server is still up.
    assert!(server.alive());
    let doc = api.ok(&format!("/api/runs/{run}"));
    assert_eq!(doc["name"], "victim");
    assert_eq!(doc["metadata"], json!({"a": 1}));
    let xs = api.series(&run, "x", "step", None);
    assert_eq!(xs.len(), 50);
    assert!(
        xs.iter()
            .enumerate()
            .all(|(i, (s, v))| s == &json!(i) && *v == Some(i as f64))
    );
}

#[test]
fn files_are_stored_by_content_and_streamed_back_identical() {
    let (dir, _server, api) = setup(&[]);
    let run = api.create_run(json!({"name": "files"}));
    let bytes: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    use sha2::Digest;
    let sum = simtrack_server::util::hex(&sha2::Sha256::digest(&bytes));
    let mut ids = Vec::new();
    for (name, cat) in [("big.bin", "output"), ("copy.bin", "input")] {
        let reg = api.json("POST", "/api/artifacts", &json!({"name": name, "size": bytes.len(), "checksum": sum, "original_path": format!("/w/{name}"), "mime_type": "application/octet-stream", "metadata": null})).json();
        let id = reg["id"].as_str().expect("id").to_owned();
        if let Some(url) = reg["url"].as_str() {
            let up = api.send(
                "PUT",
                url,
                &[("Authorization", "")],
                Some((bytes.clone(), "application/octet-stream")),
            );
            assert_eq!(up.status, 200, "{}", up.text);
            assert_eq!(
                api.json(
                    "PUT",
                    &format!("/api/artifacts/{id}"),
                    &json!({"uploaded": true})
                )
                .status,
                200
            );
        } else {
            assert_eq!(name, "copy.bin", "only identical bytes are deduplicated");
        }
        assert_eq!(
            api.json(
                "PUT",
                &format!("/api/runs/{run}/artifacts/{id}"),
                &json!({"category": cat})
            )
            .status,
            200
        );
        ids.push(id);
    }
    let listed = api.ok(&format!("/api/runs/{run}/artifacts?name=big.bin"));
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["category"], "output");
    let url = listed[0]["url"].as_str().expect("download url");
    let r = api.http.get(url).send().expect("download");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().expect("bytes").as_ref(), bytes.as_slice());
    if common::embedded_backend() {
        let blob = dir
            .path()
            .join("blobs")
            .join(&sum[0..2])
            .join(&sum[2..4])
            .join(&sum);
        assert_eq!(
            std::fs::read(blob).expect("blob"),
            bytes,
            "content-addressed by SHA-256"
        );
    }
    let by_run = api.ok(&format!(
        "/api/artifacts?runs={}",
        urlencode(&json!([run]).to_string())
    ));
    assert_eq!(by_run["count"], 2);
}

#[test]
fn silent_runs_become_lost_and_a_heartbeat_revives_them() {
    let (_d, _server, api) = setup(&["--lost-check-secs", "0.1"]);
    let quick = api.create_run(json!({"name": "quick", "heartbeat_timeout": 1}));
    let patient = api.create_run(json!({"name": "patient"}));
    let never = api.create_run(json!({"name": "never", "heartbeat_timeout": null}));
    assert_eq!(
        api.ok(&format!("/api/runs/{patient}"))["heartbeat_timeout"],
        180
    );
    let hb = api.send("PUT", &format!("/api/runs/{quick}/heartbeat"), &[], None);
    assert_eq!(hb.status, 200);
    assert_eq!(hb.json()["abort"], false);
    let t0 = Instant::now();
    let lost = wait_for(Duration::from_secs(10), || {
        (api.ok(&format!("/api/runs/{quick}"))["status"] == "lost").then_some(())
    });
    assert!(lost.is_some(), "not marked lost");
    assert!(
        t0.elapsed() >= Duration::from_millis(800),
        "marked lost too early: {:?}",
        t0.elapsed()
    );
    assert_eq!(api.ok(&format!("/api/runs/{patient}"))["status"], "running");
    assert_eq!(api.ok(&format!("/api/runs/{never}"))["status"], "running");
    assert!(api.events(&quick).iter().any(|m| m.contains("marked lost")));
    api.send("PUT", &format!("/api/runs/{quick}/heartbeat"), &[], None);
    assert_eq!(api.ok(&format!("/api/runs/{quick}"))["status"], "running");
    let filt = urlencode(&json!(["status == running"]).to_string());
    assert_eq!(api.ok(&format!("/api/runs?filters={filt}"))["count"], 3);
}

#[test]
fn abort_requests_reach_the_poll_and_aborting_alerts_trigger_them() {
    let (_d, _server, api) = setup(&[]);
    let run = api.create_run(json!({"name": "to-abort"}));
    assert_eq!(api.ok(&format!("/api/runs/{run}/abort"))["status"], false);
    assert_eq!(
        api.json(
            "PUT",
            &format!("/api/runs/{run}/abort"),
            &json!({"reason": "stop"})
        )
        .json()["status"],
        true
    );
    assert_eq!(api.ok(&format!("/api/runs/{run}/abort"))["status"], true);
    assert_eq!(
        api.send("PUT", &format!("/api/runs/{run}/heartbeat"), &[], None)
            .json()["abort"],
        true
    );

    let run = api.create_run(json!({"name": "alerting"}));
    let alert = json!({"name": "too-hot", "source": "metrics", "abort": true, "enabled": true, "notification": "none",
                       "alert": {"rule": "is above", "metric": "temp", "threshold": 10.0, "window": 1, "frequency": 1, "aggregation": "average"}});
    let id = api
        .json("POST", "/api/alerts?deduplicate=True", &alert)
        .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let again = api.json("POST", "/api/alerts?deduplicate=True", &alert);
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["id"], id.as_str());
    // The same name with another threshold is another alert: a second run
    // asking for `temp above 100` is not judged by this run's 10.
    let mut other = alert.clone();
    other["alert"]["threshold"] = json!(100.0);
    let hot = api.json("POST", "/api/alerts?deduplicate=True", &other);
    assert_eq!(hot.status, 200, "{}", hot.text);
    let other_id = hot.json()["id"].as_str().expect("id").to_owned();
    assert_ne!(other_id, id);
    let again = api.json("POST", "/api/alerts?deduplicate=True", &other);
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["id"], other_id.as_str());
    let run100 = api.create_run(json!({"name": "alerting-100"}));
    api.json(
        "PUT",
        &format!("/api/runs/{run100}"),
        &json!({"alerts": [other_id.clone()]}),
    );
    api.msgpack(
        "/api/metrics",
        None,
        &points(&run100, "temp", 0, 600, |_| 50.0),
    );
    assert_eq!(
        api.ok(&format!("/api/alerts/{other_id}/status/{run100}"))["status"],
        "ok",
        "50 is not above this run's threshold of 100"
    );
    api.json("PUT", &format!("/api/runs/{run}"), &json!({"alerts": [id]}));
    let status = || {
        api.ok(&format!("/api/alerts/{id}/status/{run}"))["status"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(status(), "ok");
    api.msgpack("/api/metrics", None, &points(&run, "temp", 0, 10, |_| 5.0));
    assert_eq!(status(), "ok");
    assert_eq!(api.ok(&format!("/api/runs/{run}/abort"))["status"], false);
    api.msgpack(
        "/api/metrics",
        None,
        &points(&run, "temp", 10, 600, |_| 50.0),
    );
    assert_eq!(status(), "critical");
    assert_eq!(
        api.ok(&format!("/api/runs/{run}/abort"))["status"],
        true,
        "an aborting alert requests the abort"
    );
    assert_eq!(
        api.ok(&format!("/api/runs/{run}"))["alerts"][0]["status"],
        "critical"
    );
    api.msgpack(
        "/api/metrics",
        None,
        &points(&run, "temp", 700, 600, |_| 1.0),
    );
    assert_eq!(status(), "ok", "the window moved past the hot values");
    let ev = api.events(&run);
    assert!(
        ev.iter()
            .any(|m| m.contains("'too-hot' changed from ok to critical")),
        "{ev:?}"
    );
    assert!(
        ev.iter()
            .any(|m| m.contains("'too-hot' changed from critical to ok")),
        "{ev:?}"
    );
}

#[test]
fn metric_alert_aggregations_and_event_patterns() {
    let (_d, _server, api) = setup(&[]);
    // window 1 minute = 600 points at 0.1 s; each case logs 600 points.
    let cases: [(&str, &str, Value, Vec<f64>, &str); 8] = [
        (
            "is above",
            "average",
            json!({"threshold": 5.0}),
            vec![0.0, 20.0],
            "critical",
        ),
        (
            "is above",
            "average",
            json!({"threshold": 15.0}),
            vec![0.0, 20.0],
            "ok",
        ),
        (
            "is above",
            "sum",
            json!({"threshold": 5000.0}),
            vec![10.0],
            "critical",
        ),
        (
            "is above",
            "at least one",
            json!({"threshold": 15.0}),
            vec![0.0, 0.0, 20.0],
            "critical",
        ),
        (
            "is above",
            "all",
            json!({"threshold": 15.0}),
            vec![0.0, 20.0],
            "ok",
        ),
        (
            "is below",
            "all",
            json!({"threshold": 15.0}),
            vec![0.0, 10.0],
            "critical",
        ),
        (
            "is inside range",
            "at least one",
            json!({"range_low": 4.0, "range_high": 6.0}),
            vec![0.0, 5.0, 9.0],
            "critical",
        ),
        (
            "is outside range",
            "all",
            json!({"range_low": 4.0, "range_high": 6.0}),
            vec![0.0, 5.0, 9.0],
            "ok",
        ),
    ];
    for (i, (rule, agg, extra, pattern, want)) in cases.iter().enumerate() {
        let run = api.create_run(json!({"name": format!("agg-{i}")}));
        let mut def =
            json!({"rule": rule, "metric": "m", "aggregation": agg, "window": 1, "frequency": 1});
        def.as_object_mut()
            .expect("obj")
            .extend(extra.as_object().expect("obj").clone());
        let id = api
            .json(
                "POST",
                "/api/alerts",
                &json!({"name": format!("a{i}"), "source": "metrics", "alert": def}),
            )
            .json()["id"]
            .clone();
        api.json("PUT", &format!("/api/runs/{run}"), &json!({"alerts": [id]}));
        api.msgpack(
            "/api/metrics",
            None,
            &points(&run, "m", 0, 600, |s| pattern[s as usize % pattern.len()]),
        );
        let got = api.ok(&format!(
            "/api/alerts/{}/status/{run}",
            id.as_str().expect("id")
        ));
        assert_eq!(got["status"], *want, "{rule} / {agg} over {pattern:?}");
    }
    let run = api.create_run(json!({"name": "events"}));
    let id = api.json("POST", "/api/alerts", &json!({"name": "diverged", "source": "events", "alert": {"pattern": "DIVERGED", "frequency": 1}})).json()["id"].clone();
    api.json("PUT", &format!("/api/runs/{run}"), &json!({"alerts": [id]}));
    let status = || {
        api.ok(&format!(
            "/api/alerts/{}/status/{run}",
            id.as_str().expect("id")
        ))["status"]
            .clone()
    };
    let ev = |m: &str, t: f64| json!({"run": run, "events": [{"message": m, "log_level": "info", "timestamp": ts(t)}]});
    api.msgpack("/api/events", None, &ev("all fine", 0.0));
    assert_eq!(status(), "ok");
    api.msgpack("/api/events", None, &ev("solver DIVERGED", 1.0));
    assert_eq!(status(), "critical");
    api.msgpack("/api/events", None, &ev("recovered", 200.0));
    assert_eq!(status(), "ok");
    let bad = api.json("POST", "/api/alerts", &json!({"name": "r", "source": "metrics", "alert": {"rule": "is inside range", "metric": "m", "range_low": 5, "range_high": 1}}));
    assert_eq!(bad.status, 422);
}

#[test]
fn acknowledged_data_survives_sigterm_and_sigkill_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tok = token(dir.path());
    let mut server = Server::start(dir.path(), &[]);
    let addr = server.addr();
    let api = Api::new(&server, &tok);
    let run = api.create_run(json!({"name": "durable"}));
    api.msgpack(
        "/api/metrics",
        Some("b-0"),
        &points(&run, "x", 0, 1000, |i| i as f64),
    );
    assert!(server.terminate(), "graceful shutdown exits 0");
    let mut server = Server::start_on(dir.path(), &addr, &[]);
    assert_eq!(api.series(&run, "x", "step", None).len(), 1000);

    // A client that resends every batch it has no answer for, with its key.
    let batches: Vec<Value> = (1..200)
        .map(|b| points(&run, "x", b * 1000, 1000, |i| i as f64))
        .collect();
    let sender = {
        let batches = batches.clone();
        let (base, tok) = (api.base.clone(), tok.clone());
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("client");
            for (i, b) in batches.iter().enumerate() {
                let body = rmp_serde::to_vec_named(b).expect("msgpack");
                loop {
                    let r = http
                        .post(format!("{base}/api/metrics"))
                        .bearer_auth(&tok)
                        .header("Idempotency-Key", format!("b-{}", i + 1))
                        .header("content-type", "application/msgpack")
                        .body(body.clone())
                        .send();
                    if r.is_ok_and(|r| r.status().is_success()) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    server.kill9();
    std::thread::sleep(Duration::from_millis(300));
    let _server = Server::start_on(dir.path(), &addr, &[]);
    sender.join().expect("sender");
    let xs = api.series(&run, "x", "step", None);
    assert_eq!(xs.len(), 200_000, "every point exactly once");
    for (i, (s, v)) in xs.iter().enumerate() {
        assert_eq!((s.as_i64(), *v), (Some(i as i64), Some(i as f64)));
    }
}

#[test]
fn long_series_read_back_downsampled_with_spikes() {
    let (_d, _server, api) = setup(&[]);
    let run = api.create_run(json!({"name": "long"}));
    let n = 400_000i64;
    for b in 0..(n / 50_000) {
        let batch = points(&run, "y", b * 50_000, 50_000, |i| {
            if i == 123_457 {
                1e6
            } else {
                (i as f64 * 0.001).sin()
            }
        });
        assert_eq!(api.msgpack("/api/metrics", None, &batch).status, 200);
    }
    for axis in ["step", "time", "timestamp"] {
        let pts = api.series(&run, "y", axis, Some(2000));
        assert!(
            pts.len() <= 2000 && pts.len() >= 1000,
            "{axis}: {} points",
            pts.len()
        );
        assert!(pts.iter().any(|p| p.1 == Some(1e6)), "{axis}: spike lost");
    }
    let doc = api.ok(&format!("/api/runs/{run}"));
    assert_eq!(doc["metrics"]["y"]["count"], n);
    assert_eq!(doc["metrics"]["y"]["max"], 1e6);
}

#[test]
fn run_lists_filter_sort_and_page() {
    let (_d, _server, api) = setup(&[]);
    for i in 0..12 {
        api.create_run(json!({
            "name": format!("run-{i:02}"), "folder": if i % 2 == 0 { "/even" } else { "/odd" },
            "tags": if i % 3 == 0 { vec!["three"] } else { vec!["other"] },
            "metadata": {"nested": {"n": i}, "kind": if i < 6 { "low" } else { "high" }, "flag": i == 7, "big": {"env": {"k": "v"}}},
            "system": {"hostname": format!("h{}", i % 2)}, "status": if i == 5 { "created" } else { "running" }
        }));
    }
    let names = |filters: Value,
                 sorting: Option<Value>,
                 start: usize,
                 count: usize|
     -> (Vec<String>, i64) {
        let mut q = format!(
            "/api/runs?filters={}&start={start}&count={count}",
            urlencode(&filters.to_string())
        );
        if let Some(s) = sorting {
            q.push_str(&format!("&sorting={}", urlencode(&s.to_string())));
        }
        let v = api.ok(&q);
        let data = v["data"].as_array().expect("data");
        assert!(
            data.iter().all(|d| d["metadata"]["big"]["env"]["k"] == "v"),
            "page entries are whole documents"
        );
        (
            data.iter()
                .map(|d| d["name"].as_str().unwrap_or("").to_owned())
                .collect(),
            v["count"].as_i64().unwrap_or(-1),
        )
    };
    let (n, total) = names(
        json!(["metadata.nested.n > 8"]),
        Some(json!([{"id": "metadata.nested.n", "desc": true}])),
        0,
        100,
    );
    assert_eq!(
        (n, total),
        (
            vec!["run-11".to_owned(), "run-10".into(), "run-09".into()],
            3
        )
    );
    assert_eq!(
        names(json!(["metadata.flag == True"]), None, 0, 100).0,
        ["run-07"]
    );
    assert_eq!(
        names(
            json!(["system.hostname == h1", "has tag.three"]),
            None,
            0,
            100
        )
        .0,
        ["run-03", "run-09"]
    );
    assert_eq!(
        names(
            json!(["folder.path == /even", "metadata.kind == high"]),
            None,
            0,
            100
        )
        .0,
        ["run-06", "run-08", "run-10"]
    );
    assert_eq!(
        names(json!(["status == created"]), None, 0, 100).0,
        ["run-05"]
    );
    assert_eq!(names(json!(["metadata.missing exists"]), None, 0, 100).1, 0);
    assert_eq!(
        names(
            json!(["metadata.kind exists", "name contains run-1"]),
            None,
            0,
            100
        )
        .1,
        2
    );
    let (page, total) = names(json!([]), Some(json!([{"id": "name", "desc": true}])), 2, 3);
    assert_eq!(
        (page, total),
        (
            vec!["run-09".to_owned(), "run-08".into(), "run-07".into()],
            12
        )
    );
    let bad = api.get(&format!(
        "/api/runs?filters={}",
        urlencode("[\"gibberish\"]")
    ));
    assert_eq!(bad.status, 422, "{}", bad.text);
}

#[test]
fn a_second_server_on_the_same_data_directory_is_refused() {
    if !common::embedded_backend() {
        return; // a data directory is the embedded backend's
    }
    let (dir, _server, api) = setup(&[]);
    let out = std::process::Command::new(common::bin())
        .args(["server", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .output()
        .expect("second server");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another simtrack server"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        api.get("/api/version").status,
        200,
        "the first one is unaffected"
    );
}

#[test]
fn run_lists_sort_on_the_server_by_a_metric_summary() {
    let (_dir, _server, api) = setup(&[]);
    // A metric name with dots and a slash, as resource and probe metrics have.
    let metric = "probe/u.max";
    let mut ids = Vec::new();
    for (name, values) in [
        ("sm-a", vec![5.0, 1.0, 3.0]),
        ("sm-b", vec![0.5, 9.0, 2.0]),
        ("sm-c", vec![7.0, 7.5, -1.0]),
    ] {
        let run = api.create_run(json!({"name": name, "folder": "/sortm"}));
        api.msgpack(
            "/api/metrics",
            None,
            &points(&run, metric, 0, values.len() as i64, |i| values[i as usize]),
        );
        ids.push(run);
    }
    api.create_run(json!({"name": "sm-none", "folder": "/sortm"}));
    let order = |stat: &str, desc: bool| -> Vec<String> {
        let sorting = format!(r#"[{{"id": "metrics.{metric}.{stat}", "desc": {desc}}}]"#);
        let filters = r#"["folder.path == /sortm"]"#;
        let v = api.ok(&format!(
            "/api/runs?filters={}&sorting={}&count=10",
            urlencode(filters),
            urlencode(&sorting)
        ));
        v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|d| d["name"].as_str().expect("name").to_owned())
            .collect()
    };
    // last: a 3, b 2, c -1; min: a 1, b 0.5, c -1; max: a 5, b 9, c 7.5.
    assert_eq!(order("last", false), ["sm-c", "sm-b", "sm-a", "sm-none"]);
    assert_eq!(
        order("last", true),
        ["sm-a", "sm-b", "sm-c", "sm-none"],
        "a run without the metric comes last either way"
    );
    assert_eq!(order("min", false), ["sm-c", "sm-b", "sm-a", "sm-none"]);
    assert_eq!(order("max", true), ["sm-b", "sm-c", "sm-a", "sm-none"]);
    assert_eq!(order("count", true)[3], "sm-none");
}

/// What the simvue client's own test suite (scripts/test.d/25-simvue-suite.sh)
/// showed differing, asserted value by value: tags as objects, artifact
/// registration as the client does it, folder fields and stars, the
/// server's own events kept out of a run's event list, stats and whoami,
/// deletes answering `{}`, null fields meaning unchanged.
#[test]
fn simvue_client_suite_differences() {
    let (_d, _server, api) = setup(&[]);

    // Tags: a run's tag names are tags with ids; renaming renames them on
    // runs, deleting takes them off.
    let run = api.create_run(json!({"name": "tagged", "tags": ["alpha", "beta"]}));
    let listed = api
        .ok("/api/tags?sorting=%5B%7B%22column%22%3A%22name%22%2C%22descending%22%3Afalse%7D%5D");
    assert_eq!(listed["count"], 2);
    assert_eq!(listed["data"][0]["name"], "alpha");
    assert!(
        listed["data"][0]["colour"]
            .as_str()
            .is_some_and(|c| c.starts_with('#'))
    );
    let alpha = listed["data"][0]["id"].as_str().expect("id").to_owned();
    let made = api.json(
        "POST",
        "/api/tags",
        &json!({"name": "gamma", "colour": "#fa0000", "description": "third"}),
    );
    assert_eq!(made.status, 200, "{}", made.text);
    let gamma = made.json()["id"].as_str().expect("id").to_owned();
    let again = api.json("POST", "/api/tags", &json!({"name": "gamma"}));
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["id"], gamma.as_str());
    let g = api.ok(&format!("/api/tags/{gamma}"));
    assert_eq!(
        (g["colour"].as_str(), g["description"].as_str()),
        (Some("#fa0000"), Some("third"))
    );
    let renamed = api.json(
        "PUT",
        &format!("/api/tags/{alpha}"),
        &json!({"name": "alpha2", "description": "renamed"}),
    );
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(
        api.ok(&format!("/api/runs/{run}"))["tags"],
        json!(["alpha2", "beta"])
    );
    assert_eq!(
        api.ok(&format!("/api/tags/{alpha}"))["description"],
        "renamed"
    );
    let gone = api.send("DELETE", &format!("/api/tags/{alpha}"), &[], None);
    assert_eq!((gone.status, gone.json()), (200, json!({})));
    assert_eq!(api.ok(&format!("/api/runs/{run}"))["tags"], json!(["beta"]));
    assert_eq!(api.get(&format!("/api/tags/{alpha}")).status, 404);
    assert_eq!(api.ok("/api/tags")["count"], 2);

    // Artifacts: the client registers sys.getsizeof(bytes), 33 more than
    // the length; the checksum decides and the real size is kept.
    let bytes = b"pickled object bytes".to_vec();
    use sha2::Digest;
    let sum = simtrack_server::util::hex(&sha2::Sha256::digest(&bytes));
    let reg = api
        .json(
            "POST",
            "/api/artifacts",
            &json!({"name": "obj.pkl", "size": bytes.len() + 33, "checksum": sum}),
        )
        .json();
    let id = reg["id"].as_str().expect("id").to_owned();
    let url = reg["url"].as_str().expect("upload url");
    let bad = api.send(
        "PUT",
        url,
        &[("Authorization", "")],
        Some((b"other bytes".to_vec(), "application/octet-stream")),
    );
    assert_eq!(bad.status, 400);
    assert!(
        bad.text
            .contains("The SHA256 you specified did not match the calculated checksum."),
        "{}",
        bad.text
    );
    let up = api.send(
        "PUT",
        url,
        &[("Authorization", "")],
        Some((bytes.clone(), "application/octet-stream")),
    );
    assert_eq!(up.status, 200, "{}", up.text);
    let a = api.ok(&format!("/api/artifacts/{id}"));
    assert_eq!(a["size"], bytes.len());
    assert_eq!(a["storage_id"], "default");

    // Folders: create keeps its fields; starring has its own endpoint;
    // the newest folder lists first.
    let f = api
        .json(
            "POST",
            "/api/folders",
            &json!({"path": "/suite/a", "tags": ["x"], "description": "d", "metadata": {"k": 1}}),
        )
        .json();
    let fid = f["id"].as_str().expect("id").to_owned();
    let doc = api.ok(&format!("/api/folders/{fid}"));
    assert_eq!(
        (
            doc["tags"].clone(),
            doc["description"].clone(),
            doc["metadata"].clone()
        ),
        (json!(["x"]), json!("d"), json!({"k": 1}))
    );
    let star = api.json(
        "PUT",
        &format!("/api/folders/{fid}/starred"),
        &json!({"starred": true}),
    );
    assert_eq!(star.status, 200, "{}", star.text);
    assert_eq!(api.ok(&format!("/api/folders/{fid}"))["starred"], true);
    api.json("POST", "/api/folders", &json!({"path": "/suite/b"}));
    assert_eq!(
        api.ok("/api/folders?count=1")["data"][0]["path"],
        "/suite/b"
    );

    // The server's own events stay out of the list unless asked for.
    api.json(
        "PUT",
        &format!("/api/runs/{run}"),
        &json!({"status": "completed", "system": null}),
    );
    let evs = api.ok(&format!("/api/events?run={run}"));
    assert_eq!(evs["count"], 0, "{evs}");
    let all = api.ok(&format!("/api/events?run={run}&system=true"));
    assert!(
        all["data"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("[simtrack] run status changed"))
    );
    // `"system": null` left the document alone.
    assert_eq!(api.ok(&format!("/api/runs/{run}"))["system"], json!({}));

    // Stats and whoami.
    let me = api.ok("/api/whoami")["username"]
        .as_str()
        .expect("username")
        .to_owned();
    let s = api.ok("/api/stats");
    assert_eq!(
        s["runs"],
        json!({"created": 0, "running": 0, "completed": 1, "data": 1})
    );
    let per = api.ok("/api/stats?single=false");
    assert_eq!(per[&me]["runs"], 1);
    assert_eq!(per[&me]["files"], 1);
    assert_eq!(per[&me]["volume"], bytes.len());
    assert_eq!(per[&me]["tags"], 2);

    // Alerts read back Simvue's auto-assignment fields.
    let al = api
        .json(
            "POST",
            "/api/alerts",
            &json!({"name": "u", "source": "user"}),
        )
        .json();
    let al = api.ok(&format!(
        "/api/alerts/{}",
        al["id"].as_str().expect("alert id")
    ));
    assert_eq!(
        (
            al["auto"].clone(),
            al["delay"].clone(),
            al["run_tags"].clone()
        ),
        (json!(false), json!(0), json!([]))
    );

    // A JSON array creates runs in a batch, answered in order.
    let made = api.json("POST", "/api/runs", &json!([{"name": "b0", "folder": "/batch", "metadata": {"batch_id": 0}}, {"name": "b1", "folder": "/batch"}]));
    assert_eq!(made.status, 200, "{}", made.text);
    let made = made.json();
    assert_eq!(made.as_array().map(Vec::len), Some(2));
    let b0 = api.ok(&format!(
        "/api/runs/{}",
        made[0]["id"].as_str().expect("id")
    ));
    assert_eq!(
        (
            b0["name"].clone(),
            b0["folder"].clone(),
            b0["metadata"]["batch_id"].clone()
        ),
        (json!("b0"), json!("/batch"), json!(0))
    );
    assert_eq!(made[1]["name"], "b1");

    // Deleting a run answers {}.
    let del = api.send("DELETE", &format!("/api/runs/{run}"), &[], None);
    assert_eq!((del.status, del.json()), (200, json!({})));
}

/// Simvue's alert options: `delay` holds a threshold alert back until its
/// condition has lasted that many seconds (in the run's data time, the
/// count restarting when it stops holding); `auto` with `run_tags`
/// attaches an alert to its creator's runs carrying one of those tags.
#[test]
fn alert_delay_and_run_tag_auto_assignment() {
    let (dir, server, api) = setup(&[]);
    let rule = json!({"rule": "is above", "metric": "m", "threshold": 5.0,
                      "aggregation": "average", "window": 0.01, "frequency": 1});
    let alert = |name: &str, extra: Value| {
        let mut body = json!({"name": name, "source": "metrics", "alert": rule});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let r = api.json("POST", "/api/alerts", &body);
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["id"].as_str().unwrap().to_owned()
    };
    let delayed = alert("delayed", json!({"delay": 10}));
    let at_once = alert("at once", json!({}));
    assert_eq!(api.ok(&format!("/api/alerts/{delayed}"))["delay"], 10);
    // Refused: a negative delay, a delay on an event alert, run_tags that
    // are not names.
    for body in [
        json!({"name": "x", "source": "metrics", "alert": rule, "delay": -1}),
        json!({"name": "x", "source": "events", "delay": 5,
               "alert": {"pattern": "p", "frequency": 1}}),
        json!({"name": "x", "source": "user", "run_tags": "hot"}),
        json!({"name": "x", "source": "user", "auto": "yes"}),
    ] {
        let r = api.json("POST", "/api/alerts", &body);
        assert_eq!(r.status, 422, "{body}: {}", r.text);
    }
    let status = |alert: &str, run: &str| {
        api.ok(&format!("/api/alerts/{alert}/status/{run}"))["status"].clone()
    };
    let log = |run: &str, from: i64, n: i64, v: f64| {
        let r = api.msgpack("/api/metrics", None, &points(run, "m", from, n, |_| v));
        assert_eq!(r.status, 200, "{}", r.text);
    };

    // Points every 0.1 s, all above the threshold.
    let r1 = api.create_run(json!({"name": "r1", "alerts": [delayed, at_once]}));
    log(&r1, 0, 10, 20.0); // held since 0.9 s
    assert_eq!(status(&at_once, &r1), "critical");
    assert_ne!(status(&delayed, &r1), "critical");
    log(&r1, 10, 90, 20.0); // 9.9 s: held 9 s
    assert_ne!(status(&delayed, &r1), "critical");
    log(&r1, 100, 20, 20.0); // 11.9 s: held 11 s
    assert_eq!(status(&delayed, &r1), "critical");

    // A break restarts the count.
    let r2 = api.create_run(json!({"name": "r2", "alerts": [delayed]}));
    log(&r2, 0, 50, 20.0); // held since 4.9 s
    log(&r2, 50, 10, 0.0); // 5.9 s: the window is below: ok
    assert_eq!(status(&delayed, &r2), "ok");
    log(&r2, 60, 110, 20.0); // held again since 16.9 s
    assert_eq!(status(&delayed, &r2), "ok");
    log(&r2, 170, 110, 20.0); // 27.9 s: held 11 s
    assert_eq!(status(&delayed, &r2), "critical");

    // auto + run_tags.
    let user_alert = |name: &str, extra: Value| {
        let mut body = json!({"name": name, "source": "user"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let r = api.json("POST", "/api/alerts", &body);
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["id"].as_str().unwrap().to_owned()
    };
    let names = |run: &str| -> BTreeSet<String> {
        api.ok(&format!("/api/runs/{run}"))["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["alert"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let set = |v: &[&str]| -> BTreeSet<String> { v.iter().map(|s| s.to_string()).collect() };
    // A running and a finished run carrying "warm", made before the alert.
    let warm = api.create_run(json!({"name": "warm", "tags": ["warm"], "status": "running"}));
    let done = api.create_run(json!({"name": "done", "tags": ["warm"], "status": "running"}));
    let r = api.json(
        "PUT",
        &format!("/api/runs/{done}"),
        &json!({"status": "completed"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let hot = user_alert("hot", json!({"auto": true, "run_tags": ["hot", "warm"]}));
    let manual = user_alert("manual", json!({"auto": false, "run_tags": ["hot"]}));
    let a = api.ok(&format!("/api/alerts/{hot}"));
    assert_eq!(
        (a["auto"].clone(), a["run_tags"].clone()),
        (json!(true), json!(["hot", "warm"]))
    );
    assert_eq!(api.ok(&format!("/api/alerts/{manual}"))["auto"], false);
    assert_eq!(names(&warm), set(&["hot"]), "an unfinished run gets it");
    assert_eq!(names(&done), set(&[]), "a finished run does not");
    // New runs carrying a tag get it; others do not, until tagged.
    let r3 = api.create_run(json!({"name": "r3", "tags": ["x", "hot"]}));
    assert_eq!(names(&r3), set(&["hot"]));
    let r4 = api.create_run(json!({"name": "r4", "tags": ["cold"]}));
    assert_eq!(names(&r4), set(&[]));
    let r = api.json(
        "PUT",
        &format!("/api/runs/{r4}"),
        &json!({"tags": ["cold", "hot"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(names(&r4), set(&["hot"]));
    // Replacing the run's alert list keeps what its tags ask for.
    let r = api.json(
        "PUT",
        &format!("/api/runs/{r4}"),
        &json!({"alerts": [manual]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(names(&r4), set(&["hot", "manual"]));
    // Turning auto on for an existing alert attaches it.
    let r = api.json(
        "PUT",
        &format!("/api/alerts/{manual}"),
        &json!({"auto": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(names(&r3), set(&["hot", "manual"]));
    // Another user's run with the tag does not get this user's alert.
    let other = Api::new(&server, &token_with(dir.path(), &["--name", "other"]));
    let theirs = other.create_run(json!({"name": "theirs", "tags": ["hot"]}));
    assert_eq!(
        other.ok(&format!("/api/runs/{theirs}"))["alerts"],
        json!([])
    );
}

#[test]
fn metadata_under_simvue_merges_key_by_key_and_other_keys_are_replaced() {
    let (_d, _server, api) = setup(&[]);
    let run = api.create_run(json!({
        "name": "units",
        "metadata": {"solver": {"nx": 64, "scheme": "upwind"}, "simvue": {"metrics": {"u": {"units": "m/s"}}}}
    }));
    // Units sent a metric at a time (as the simvue client's set_metric_units
    // and simtrack_metric_unit do) add up; a key outside `simvue` is
    // replaced whole, as the Simvue API has it.
    for body in [
        json!({"metadata": {"simvue": {"metrics": {"p": {"units": "Pa"}}}}}),
        json!({"metadata": {"simvue": {"metrics": {"u": {"label": "velocity"}}}}}),
        json!({"metadata": {"solver": {"nx": 128}}}),
    ] {
        let r = api.json("PUT", &format!("/api/runs/{run}"), &body);
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let md = api.ok(&format!("/api/runs/{run}"))["metadata"].clone();
    assert_eq!(
        md,
        json!({
            "solver": {"nx": 128},
            "simvue": {"metrics": {"u": {"units": "m/s", "label": "velocity"}, "p": {"units": "Pa"}}}
        })
    );
    // A unit sent again replaces the old one and leaves the others.
    let r = api.json(
        "PUT",
        &format!("/api/runs/{run}"),
        &json!({"metadata": {"simvue": {"metrics": {"u": {"units": "km/h"}}}}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let md = api.ok(&format!("/api/runs/{run}"))["metadata"].clone();
    assert_eq!(md["simvue"]["metrics"]["u"]["units"], "km/h");
    assert_eq!(md["simvue"]["metrics"]["p"]["units"], "Pa");
    // Metadata that is not an object is a clear 4xx and changes nothing.
    let r = api.json(
        "PUT",
        &format!("/api/runs/{run}"),
        &json!({"metadata": [1, 2]}),
    );
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.text);
    assert_eq!(api.ok(&format!("/api/runs/{run}"))["metadata"], md);
}

/// `GET /api/events` pages come from the store in order (time, then
/// arrival) across the store's own page size, with and without the server's
/// own events, with and without filters.
#[test]
fn events_are_listed_in_pages_in_order_with_or_without_the_servers_own() {
    let (_dir, _server, api) = setup(&[]);
    let run = api.create_run(json!({"name": "paged", "status": "running"}));
    let msg = |i: usize| format!("e {i}");
    let post = |from: usize, to: usize, at: f64| {
        let items: Vec<Value> = (from..to)
            .map(|i| {
                let level = if i % 7 == 0 { "error" } else { "info" };
                // Equal times within a post: arrival decides.
                json!({"message": msg(i), "log_level": level, "timestamp": ts(at)})
            })
            .collect();
        let r = api.msgpack("/api/events", None, &json!({"run": run, "events": items}));
        assert_eq!(r.status, 200, "{}", r.text);
    };
    // Before the server's own event (a status change, stamped now), then after.
    for (from, to) in [(0, 4000), (4000, 6000)] {
        post(from, to, -100_000_000.0);
    }
    let r = api.json(
        "PUT",
        &format!("/api/runs/{run}"),
        &json!({"status": "completed"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    for (from, to) in [(6000, 9000), (9000, 12000)] {
        post(from, to, 0.0);
    }
    let page = |q: &str| {
        let v = api.ok(&format!("/api/events?run={run}&{q}"));
        let msgs: Vec<String> = v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|e| e["message"].as_str().unwrap_or("").to_owned())
            .collect();
        (v["count"].as_u64().expect("count"), msgs)
    };
    let (n, all) = page("count=0");
    assert_eq!(n, 12_000);
    assert_eq!(all, (0..12_000).map(msg).collect::<Vec<_>>());
    let (_, p) = page("start=5998&count=4");
    assert_eq!(p, ["e 5998", "e 5999", "e 6000", "e 6001"]);
    let (_, p) = page("start=4999&count=2");
    assert_eq!(p, ["e 4999", "e 5000"]);
    let (n, p) = page("start=11998&count=10");
    assert_eq!((n, p.len()), (12_000, 2));
    let (n, p) = page("start=12000&count=10");
    assert_eq!((n, p.len()), (12_000, 0));

    let (n, p) = page("system=true&start=5999&count=3");
    assert_eq!(n, 12_001);
    assert_eq!(p[0], "e 5999");
    assert!(p[1].starts_with("[simtrack] run status changed"), "{p:?}");
    assert_eq!(p[2], "e 6000");
    let (_, p) = page("system=true&start=10000&count=1");
    assert_eq!(p, ["e 9999"]);

    // With a filter: matches are counted and paged the same way.
    let q = urlencode(&json!(["log_level == error"]).to_string());
    let (n, p) = page(&format!("filters={q}&start=857&count=5"));
    assert_eq!(n, (0..12_000).filter(|i| i % 7 == 0).count() as u64);
    let want: Vec<String> = (0..12_000)
        .filter(|i| i % 7 == 0)
        .skip(857)
        .take(5)
        .map(msg)
        .collect();
    assert_eq!(p, want);
}

/// Filtered event pages — filters the database answers (levels, message
/// equality, substrings, case-insensitive substrings beyond ASCII, SQL
/// wildcard characters as text), several together, and filters it does not
/// answer — hold exactly what the unfiltered list filtered by hand holds,
/// in the same order, page by page, with the same count.
#[test]
fn filtered_event_pages_equal_the_whole_list_filtered_by_hand() {
    let (_dir, _server, api) = setup(&[]);
    let run = api.create_run(json!({"name": "search", "status": "running"}));
    let texts = [
        "alpha 100%",
        "100%",
        "beta_1 done",
        "betaX1 done",
        "a\\b path",
        "100",
        "1e2",
        "ERROR: diverged",
        "Error in step 3",
        "straße",
        "STRASSE",
        "Ünïcödé error",
        "ünïcödé",
        "\u{212A}elvin",
        "İstanbul",
        "istanbul",
        "plain",
        "%",
        "_",
        "50% of_all",
    ];
    let levels = ["info", "error", "warning", "debug", "critical"];
    let items: Vec<Value> = (0..3 * texts.len())
        .map(|i| {
            let (t, round) = (texts[i % texts.len()], i / texts.len());
            let message = if round == 0 {
                t.to_owned()
            } else {
                format!("{t} {round}")
            };
            // Times out of arrival order, with ties.
            json!({"message": message, "log_level": levels[i % levels.len()], "timestamp": ts(((i * 7) % 10) as f64)})
        })
        .collect();
    for half in items.chunks(items.len() / 2 + 1) {
        let r = api.msgpack("/api/events", None, &json!({"run": run, "events": half}));
        assert_eq!(r.status, 200, "{}", r.text);
    }
    // The server's own event (the status change).
    let r = api.json(
        "PUT",
        &format!("/api/runs/{run}"),
        &json!({"status": "completed"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);

    let get = |q: &str| {
        let v = api.ok(&format!("/api/events?run={run}&{q}"));
        let rows: Vec<(String, String, String)> = v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|e| {
                let s = |k: &str| e[k].as_str().expect(k).to_owned();
                (s("log_level"), s("message"), s("timestamp"))
            })
            .collect();
        (v["count"].as_u64().expect("count") as usize, rows)
    };
    let (n, all) = get("count=0&system=true");
    assert_eq!(n, 3 * texts.len() + 1);
    assert!(all.iter().any(|(_, m, _)| m.starts_with("[simtrack]")));
    let number = |m: &str| m.parse::<f64>().ok();
    type Hand = Box<dyn Fn(&str, &str) -> bool>;
    let cases: Vec<(Vec<&str>, Hand)> = vec![
        (vec!["log_level == error"], Box::new(|l, _| l == "error")),
        (vec!["log_level != info"], Box::new(|l, _| l != "info")),
        (vec!["log_level == info"], Box::new(|l, _| l == "info")),
        (
            vec!["log_level != critical"],
            Box::new(|l, _| l != "critical"),
        ),
        (vec!["message == 100%"], Box::new(|_, m| m == "100%")),
        (
            vec!["message != beta_1 done"],
            Box::new(|_, m| m != "beta_1 done"),
        ),
        (vec!["message contains %"], Box::new(|_, m| m.contains('%'))),
        (vec!["message contains _"], Box::new(|_, m| m.contains('_'))),
        (
            vec!["message contains 0% of_"],
            Box::new(|_, m| m.contains("0% of_")),
        ),
        (
            vec!["message contains a\\b"],
            Box::new(|_, m| m.contains("a\\b")),
        ),
        (
            vec!["message not contains _"],
            Box::new(|_, m| !m.contains('_')),
        ),
        (
            vec!["event.message contains 100"],
            Box::new(|_, m| m.contains("100")),
        ),
        (
            vec!["message contains Ünï"],
            Box::new(|_, m| m.contains("Ünï")),
        ),
        (
            vec!["message icontains ERROR"],
            Box::new(|_, m| m.to_lowercase().contains("error")),
        ),
        (
            vec!["message icontains STRASSE"],
            Box::new(|_, m| m.to_lowercase().contains("strasse")),
        ),
        (
            vec!["message icontains straße"],
            Box::new(|_, m| m.to_lowercase().contains("straße")),
        ),
        // The Kelvin sign lowers to an ASCII k; İ to i and a combining dot.
        (
            vec!["message icontains K"],
            Box::new(|_, m| m.to_lowercase().contains('k')),
        ),
        (
            vec!["message icontains İst"],
            Box::new(|_, m| m.to_lowercase().contains("i\u{307}st")),
        ),
        (
            vec!["message icontains ÜNÏ"],
            Box::new(|_, m| m.to_lowercase().contains("ünï")),
        ),
        (
            vec!["message icontains 0% OF_"],
            Box::new(|_, m| m.to_lowercase().contains("0% of_")),
        ),
        (
            vec!["message icontains _"],
            Box::new(|_, m| m.contains('_')),
        ),
        (
            vec!["message contains [simtrack]"],
            Box::new(|_, m| m.contains("[simtrack]")),
        ),
        (
            vec!["log_level == error", "message icontains error"],
            Box::new(|l, m| l == "error" && m.to_lowercase().contains("error")),
        ),
        (
            vec![
                "message contains _",
                "log_level != debug",
                "message icontains B",
            ],
            Box::new(|l, m| m.contains('_') && l != "debug" && m.to_lowercase().contains('b')),
        ),
        // Not answered by the database: numbers compare as numbers,
        // levels in text order.
        (
            vec!["message == 100"],
            Box::new(move |_, m| number(m) == Some(100.0)),
        ),
        (vec!["log_level > error"], Box::new(|l, _| l > "error")),
        (
            vec![
                "message icontains E",
                "log_level >= error",
                "message != 1e2",
            ],
            Box::new(|l, m| m.to_lowercase().contains('e') && l >= "error" && m != "1e2"),
        ),
        (vec!["message == 1e2 1"], Box::new(|_, m| m == "1e2 1")),
    ];
    for (fs, hand) in &cases {
        let q = urlencode(&json!(fs).to_string());
        for system in [false, true] {
            let want: Vec<_> = all
                .iter()
                .filter(|(l, m, _)| (system || !m.starts_with("[simtrack]")) && hand(l, m))
                .cloned()
                .collect();
            let (n, whole) = get(&format!("filters={q}&system={system}&count=0"));
            assert_eq!((n, &whole), (want.len(), &want), "{fs:?} system={system}");
            for start in (0..=want.len() + 1).step_by(4) {
                let (n, page) = get(&format!(
                    "filters={q}&system={system}&start={start}&count=4"
                ));
                let expect: Vec<_> = want.iter().skip(start).take(4).cloned().collect();
                assert_eq!(
                    (n, page),
                    (want.len(), expect),
                    "{fs:?} system={system} start={start}"
                );
            }
        }
    }
}

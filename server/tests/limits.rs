//! Limits and exactness over HTTP (issue 14, items 5 and 8): any stored
//! metadata key can be filtered and sorted on, whole-series reads are
//! bounded, metric names per run are capped, run lists do not grow with
//! metric names, alerts cost O(new points), updates are validated as creates
//! are, steps are exact integers, tokens cannot mint tokens at will and a
//! deleted token stops working at once.

mod common;

use common::{Api, Server, token, urlencode};
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

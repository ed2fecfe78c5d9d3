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

//! Grids and array metrics over HTTP: validation answers 4xx (never 5xx),
//! a refused batch stores nothing, an idempotency key applies a batch once,
//! one row per step (a step sent again replaces it), deleting a grid or a
//! run takes its values along. Runs on either backend
//! (SIMTRACK_TEST_BACKEND, see scripts/test.d/40-postgres.sh).

mod common;

use common::{Api, Server, token};
use serde_json::{Value, json};

fn setup() -> (tempfile::TempDir, Server, Api) {
    let dir = tempfile::tempdir().expect("tempdir");
    let tok = token(dir.path());
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server, &tok);
    (dir, server, api)
}

fn item(grid: &str, step: i64, array: Value) -> Value {
    json!({"metric": "T", "grid": grid, "step": step, "time": step as f64,
           "timestamp": "2026-01-01T00:00:00.000000", "array": array})
}

#[test]
fn grids_validate_store_once_and_read_back() {
    let (_d, _s, api) = setup();
    let run = api.create_run(json!({"name": "g", "folder": "/", "status": "running"}));

    // Bad grid definitions: 422, not 5xx.
    for bad in [
        json!({"name": "g", "grid": [[0, 2, 1]], "labels": ["x"]}),
        json!({"name": "g", "grid": [[0, 1]], "labels": ["x", "y"]}),
        json!({"name": "g", "grid": [], "labels": []}),
        json!({"name": "g", "grid": [[0], [1], [2], [3]], "labels": ["a", "b", "c", "d"]}),
        json!({"grid": [[0, 1]], "labels": ["x"]}),
    ] {
        let r = api.json("POST", "/api/grids", &bad);
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
    }
    let grid = api
        .json(
            "POST",
            "/api/grids",
            &json!({"name": "plate", "grid": [[0.0, 0.5, 1.0], [10, 20]], "labels": ["x", "y"],
                    "units": ["m", "s"]}),
        )
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let g = api.ok(&format!("/api/grids/{grid}"));
    assert_eq!(g["grid"], json!([[0.0, 0.5, 1.0], [10.0, 20.0]]));
    assert_eq!(g["units"], json!(["m", "s"]));
    assert_eq!(g["shape"], json!([2, 3]));
    assert_eq!(api.get("/api/grids/nope").status, 404);

    // Attach: unknown run or grid is a 404.
    let attach = |r: &str, g: &str| {
        api.json(
            "PUT",
            &format!("/api/runs/{r}/grids/{g}"),
            &json!({"metric": "T"}),
        )
        .status
    };
    assert_eq!(attach("nope", &grid), 404);
    assert_eq!(attach(&run, "nope"), 404);
    assert_eq!(attach(&run, &grid), 200);

    let post = |key: Option<&str>, body: Value| -> u16 {
        let path = format!("/api/runs/{run}/metrics/");
        match key {
            Some(k) => api.json_keyed("POST", &path, k, &body).status,
            None => api.json("POST", &path, &body).status,
        }
    };
    let a0 = json!([[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]]);
    // Wrong shape, ragged, unknown grid: refused, and the good item beside
    // them is not stored either.
    assert_eq!(
        post(
            None,
            json!([
                item(&grid, 0, a0.clone()),
                item(&grid, 1, json!([[1, 2], [3, 4]]))
            ])
        ),
        422
    );
    assert_eq!(
        post(None, json!([item(&grid, 0, json!([[1, 2, 3], [4, 5]]))])),
        400
    );
    assert_eq!(post(None, json!([item("nope", 0, a0.clone())])), 404);
    assert_eq!(post(None, json!({"not": "a list"})), 400);
    assert_eq!(
        api.get(&format!("/api/runs/{run}/metrics/T/values?step=0"))
            .status,
        404
    );

    // An idempotency key applies its batch once: the resend with other
    // values (as a broken client might) does not replace the first.
    assert_eq!(post(Some("k1"), json!([item(&grid, 0, a0.clone())])), 200);
    assert_eq!(
        post(
            Some("k1"),
            json!([item(&grid, 0, json!([[9, 9, 9], [9, 9, 9]]))])
        ),
        200
    );
    let v = api.ok(&format!("/api/runs/{run}/metrics/T/values?step=0"));
    assert_eq!(v["array"], a0);
    assert_eq!(v["shape"], json!([2, 3]));
    assert_eq!(v["timestamp"], "2026-01-01T00:00:00.000000");
    // Without a key, a step sent again replaces the earlier (one row per step).
    let a0b = json!([[-1.0, 0.0, 1e-300], [1e300, 5.0, 6.0]]);
    assert_eq!(
        post(
            None,
            json!([item(&grid, 0, a0b.clone()), item(&grid, 3, a0.clone())])
        ),
        200
    );
    assert_eq!(
        api.ok(&format!("/api/runs/{run}/metrics/T/values?step=0"))["array"],
        a0b
    );
    // The client's own spelling, with an empty segment.
    assert_eq!(
        api.ok(&format!("/api/runs/{run}/metrics//T/values?step=3"))["array"],
        a0
    );
    assert_eq!(
        api.get(&format!("/api/runs/{run}/metrics/T/values")).status,
        422
    );
    assert_eq!(
        api.get(&format!("/api/runs/{run}/metrics/T/values?step=x"))
            .status,
        422
    );

    let steps = api.ok(&format!("/api/runs/{run}/metrics/T/steps"));
    let s: Vec<i64> = steps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_i64().unwrap())
        .collect();
    assert_eq!(s, vec![0, 3]);
    let span = api.ok(&format!("/api/runs/{run}/metrics/T/span"));
    assert_eq!(span[0]["min_step"], 0);
    assert_eq!(span[0]["max_step"], 3);
    assert_eq!(span[0]["min_value"], -1.0);
    assert_eq!(span[0]["max_value"], 1e300);
    let list = api.ok(&format!("/api/runs/{run}/metrics/"));
    assert_eq!(list["count"], 1);
    assert_eq!(list["data"][0]["grid"], grid.as_str());
    assert_eq!(list["data"][0]["count"], 2);

    // Deleting the grid removes its attachments and their values.
    assert_eq!(
        api.json("DELETE", &format!("/api/grids/{grid}"), &json!({}))
            .status,
        200
    );
    assert_eq!(api.ok(&format!("/api/runs/{run}/metrics/"))["count"], 0);
    assert_eq!(
        api.json("DELETE", &format!("/api/grids/{grid}"), &json!({}))
            .status,
        404
    );

    // Deleting a run removes its arrays.
    let g2 = api
        .json(
            "POST",
            "/api/grids",
            &json!({"name": "rod", "grid": [[1, 2]], "labels": ["x"]}),
        )
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(post(None, json!([item(&g2, 0, json!([1, 2]))])), 200);
    assert_eq!(
        api.json("DELETE", &format!("/api/runs/{run}"), &json!({}))
            .status,
        200
    );
    assert_eq!(
        api.get(&format!("/api/runs/{run}/metrics/T/values?step=0"))
            .status,
        404
    );
    assert_eq!(api.get(&format!("/api/runs/{run}/metrics/")).status, 404);
}

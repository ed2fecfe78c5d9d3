//! Users, groups, run visibility, the token lifecycle, sign-in sessions and
//! the audit trail, against a real server (either backend:
//! `SIMTRACK_TEST_BACKEND`, see tests/common).
//!
//! Two users in one group (alice, carol), one in another (bob) and an
//! administrator (boss) each have tokens; alice's runs are private,
//! shared with her group, public, and shared with bob by name. Every GET
//! route of the router (read from the source, so a new route fails this
//! test until it is covered here) is asked by each of them and must show
//! exactly what the rules say.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Api, Server, bin, storage_args, token_with, urlencode};
use serde_json::{Value, json};

fn simtrack(data: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut c = Command::new(bin())
        .args(args)
        .args(storage_args(data))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run simtrack");
    if let Some(s) = stdin {
        c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(c.stdin.take());
    let out = c.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A data directory private to us (the server warns otherwise).
fn private_dir(p: &Path) {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .unwrap();
}

/// Every `GET` route of the router, read from the source: `(path,
/// handler text)`. The API router's routes are under `/api`.
fn get_routes() -> BTreeSet<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeSet::new();
    for (file, prefix) in [
        ("http/mod.rs", "/api"),
        ("http/ui/mod.rs", ""),
        ("replica.rs", ""),
    ] {
        let text = std::fs::read_to_string(src.join(file)).unwrap();
        // Only the router functions (not tests or doc comments).
        for chunk in text.split(".route(").skip(1) {
            let Some(start) = chunk.find('"') else {
                continue;
            };
            let rest = &chunk[start + 1..];
            let path = &rest[..rest.find('"').unwrap()];
            let call = chunk.split(".route(").next().unwrap_or(chunk);
            let call = call.split("\n        .").next().unwrap_or(call);
            if call.contains("get(") {
                out.insert(format!("{prefix}{path}"));
            }
        }
    }
    out
}

struct World {
    server: Server,
    apis: BTreeMap<&'static str, Api>,
    /// run name → id
    runs: BTreeMap<&'static str, String>,
    /// run name → artifact id
    artifacts: BTreeMap<&'static str, String>,
    /// run name → alert id
    alerts: BTreeMap<&'static str, String>,
    /// run name → folder id
    folders: BTreeMap<&'static str, String>,
    /// run name → id of the grid its array metric is on
    grids: BTreeMap<&'static str, String>,
}

/// Who sees which run.
fn expected(who: &str) -> BTreeSet<&'static str> {
    let all = ["a_priv", "a_team", "a_pub", "a_bob", "b_priv"];
    let v: &[&str] = match who {
        "alice" => &["a_priv", "a_team", "a_pub", "a_bob"],
        "bob" => &["a_pub", "a_bob", "b_priv"],
        "carol" => &["a_team", "a_pub"],
        "boss" => &all,
        _ => unreachable!(),
    };
    v.iter().copied().collect()
}

fn setup(tmp: &Path) -> World {
    let data = tmp.join("data");
    private_dir(&data);
    for (name, args) in [
        (
            "alice",
            vec!["--group", "A", "--email", "alice@example.org"],
        ),
        ("carol", vec!["--group", "A"]),
        ("bob", vec!["--group", "B"]),
        ("boss", vec!["--admin"]),
    ] {
        let mut a = vec!["user", "add", name];
        a.extend(args);
        let (ok, _, err) = simtrack(&data, &a, None);
        assert!(ok, "user add {name}: {err}");
    }
    let server = Server::start(&data, &[]);
    let mut apis = BTreeMap::new();
    for name in ["alice", "bob", "carol", "boss"] {
        let t = token_with(&data, &["--user", name, "--label", "test", "--days", "2"]);
        apis.insert(name, Api::new(&server, &t));
    }
    let mut w = World {
        server,
        apis,
        runs: BTreeMap::new(),
        artifacts: BTreeMap::new(),
        alerts: BTreeMap::new(),
        folders: BTreeMap::new(),
        grids: BTreeMap::new(),
    };
    for (name, owner, vis) in [
        (
            "a_priv",
            "alice",
            json!({"public": false, "tenant": false, "users": []}),
        ),
        (
            "a_team",
            "alice",
            json!({"public": false, "tenant": true, "users": []}),
        ),
        (
            "a_pub",
            "alice",
            json!({"public": true, "tenant": false, "users": []}),
        ),
        (
            "a_bob",
            "alice",
            json!({"public": false, "tenant": false, "users": ["bob"]}),
        ),
        ("b_priv", "bob", Value::Null),
    ] {
        let api = &w.apis[owner];
        let folder = format!("/{name}");
        let f = api.json("POST", "/api/folders", &json!({"path": folder}));
        assert_eq!(f.status, 200, "{}", f.text);
        w.folders
            .insert(name, f.json()["id"].as_str().unwrap().to_owned());
        let alert = api.json(
            "POST",
            "/api/alerts",
            &json!({"name": format!("al_{name}"), "source": "events",
                    "alert": {"pattern": "boom", "frequency": 1}}),
        );
        assert_eq!(alert.status, 200, "{}", alert.text);
        let alert = alert.json()["id"].as_str().unwrap().to_owned();
        let mut body = json!({"name": name, "folder": folder, "alerts": [alert],
                              "tags": [format!("tag_{name}")]});
        if !vis.is_null() {
            body["visibility"] = vis;
        }
        let id = api.create_run(body);
        let m = api.json(
            "POST",
            "/api/metrics",
            &json!({"run": id, "metrics": [{"values": {format!("m_{name}"): 1.0}, "step": 0,
                     "time": 0.0, "timestamp": "2024-01-01T00:00:00.000000"}]}),
        );
        assert_eq!(m.status, 200, "{}", m.text);
        let e = api.json(
            "POST",
            "/api/events",
            &json!({"run": id, "events": [{"message": format!("ev_{name}"),
                     "timestamp": "2024-01-01T00:00:00.000000"}]}),
        );
        assert_eq!(e.status, 200, "{}", e.text);
        // A grid of the run's owner, with one step of an array metric on it.
        let g = api.json(
            "POST",
            "/api/grids",
            &json!({"name": format!("grid_{name}"), "grid": [[0.0, 1.0]], "labels": ["x"]}),
        );
        assert_eq!(g.status, 200, "{}", g.text);
        let grid = g.json()["id"].as_str().unwrap().to_owned();
        let arr = api.json(
            "POST",
            &format!("/api/runs/{id}/metrics/"),
            &json!([{"metric": format!("field_{name}"), "grid": grid, "step": 0, "time": 0.0,
                     "timestamp": "2024-01-01T00:00:00.000000", "array": [1.0, 2.0]}]),
        );
        assert_eq!(arr.status, 200, "{}", arr.text);
        w.grids.insert(name, grid);
        let content = format!("bytes of {name}");
        let sha = {
            use sha2::Digest;
            simtrack_server::util::hex(&sha2::Sha256::digest(content.as_bytes()))
        };
        let a = api.json(
            "POST",
            "/api/artifacts",
            &json!({"name": format!("art_{name}"), "checksum": sha, "size": content.len(),
                    "mime_type": "text/plain", "original_path": "x", "storage": null,
                    "metadata": null}),
        );
        assert_eq!(a.status, 200, "{}", a.text);
        let aid = a.json()["id"].as_str().unwrap().to_owned();
        if let Some(url) = a.json()["url"].as_str() {
            let up = api.send("PUT", url, &[], Some((content.into_bytes(), "text/plain")));
            assert_eq!(up.status, 200, "{}", up.text);
        }
        let put = api.json(
            "PUT",
            &format!("/api/runs/{id}/artifacts/{aid}"),
            &json!({"category": "output"}),
        );
        assert_eq!(put.status, 200, "{}", put.text);
        w.runs.insert(name, id);
        w.artifacts.insert(name, aid);
        w.alerts.insert(name, alert);
    }
    w
}

fn ids(v: &Value) -> BTreeSet<String> {
    v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data in {v}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

impl World {
    fn names_of(&self, ids: &BTreeSet<String>) -> BTreeSet<&'static str> {
        self.runs
            .iter()
            .filter(|(_, id)| ids.contains(*id))
            .map(|(n, _)| *n)
            .collect()
    }
    fn all_runs(&self) -> impl Iterator<Item = (&'static str, &String)> {
        self.runs.iter().map(|(n, id)| (*n, id))
    }
}

/// Checks one GET route for one user; returns the route's pattern so the
/// caller can see every route was covered.
fn check_route(w: &World, who: &'static str, route: &str) {
    let api = &w.apis[who];
    let see = expected(who);
    let per_run = |path: &dyn Fn(&'static str, &str) -> String,
                   visible_check: &dyn Fn(&'static str, &common::Resp)| {
        for (name, id) in w.all_runs() {
            let r = api.get(&path(name, id));
            if see.contains(name) {
                assert_eq!(r.status, 200, "{who} {route} {name}: {}", r.text);
                visible_check(name, &r);
            } else {
                assert_eq!(
                    r.status, 404,
                    "{who} {route} {name} must be 404: {}",
                    r.text
                );
            }
        }
    };
    match route {
        "/api/version" | "/api/openapi.json" | "/api/health" | "/api/ready" | "/" => {
            assert_eq!(api.get(route).status, 200, "{route}");
        }
        "/ui/{*path}" => assert_eq!(api.get("/ui/app.js").status, 200),
        "/dashboard/runs/run/{id}" => {
            // A redirect to the page; the page then asks the API.
            let r = api.get(&format!("/dashboard/runs/run/{}", w.runs["a_priv"]));
            assert!(r.status == 200 || r.status == 302, "{}", r.status);
        }
        "/api/runs" | "/api/ui/runs" => {
            let v = api.get(&format!("{route}?count=1000")).json();
            assert_eq!(w.names_of(&ids(&v)), see, "{who} {route}");
            assert_eq!(v["count"].as_u64(), Some(see.len() as u64), "{who} count");
            // A filter cannot reach past the rule.
            let v = api
                .get(&format!(
                    "{route}?filters={}",
                    urlencode(r#"["user == alice"]"#)
                ))
                .json();
            let mine: BTreeSet<_> = see
                .iter()
                .filter(|n| n.starts_with("a_"))
                .copied()
                .collect();
            assert_eq!(w.names_of(&ids(&v)), mine, "{who} {route} filtered");
        }
        "/api/runs/{id}" => per_run(&|_, id| format!("/api/runs/{id}"), &|name, r| {
            assert_eq!(r.json()["name"], name);
        }),
        "/api/runs/{id}/abort" => per_run(&|_, id| format!("/api/runs/{id}/abort"), &|_, _| {}),
        "/api/runs/{id}/artifacts" => {
            per_run(&|_, id| format!("/api/runs/{id}/artifacts"), &|name, r| {
                assert!(r.text.contains(&format!("art_{name}")), "{}", r.text);
            })
        }
        "/api/runs/{id}/artifacts/{aid}" => per_run(
            &|name, id| format!("/api/runs/{id}/artifacts/{}", w.artifacts[name]),
            &|_, _| {},
        ),
        "/api/events" => {
            per_run(&|_, id| format!("/api/events?run={id}"), &|name, r| {
                assert!(r.text.contains(&format!("ev_{name}")), "{}", r.text)
            });
            // Filtered, the events are read in SQL: the same rule holds.
            let fs = urlencode(r#"["message contains ev_", "log_level != debug"]"#);
            per_run(
                &|_, id| format!("/api/events?run={id}&filters={fs}"),
                &|name, r| {
                    assert!(r.text.contains(&format!("ev_{name}")), "{}", r.text);
                    assert_eq!(r.json()["count"], 1, "{}", r.text);
                },
            );
        }
        "/api/ui/metrics/range" => per_run(
            &|name, id| format!("/api/ui/metrics/range?run={id}&metric=m_{name}"),
            &|_, r| assert_eq!(r.json()["x"], json!([0.0])),
        ),
        "/api/metrics" => {
            for (name, id) in w.all_runs() {
                let r = api.get(&format!(
                    "/api/metrics?runs={}&metrics={}&xaxis=step",
                    urlencode(&json!([id]).to_string()),
                    urlencode(&json!([format!("m_{name}")]).to_string())
                ));
                let has = r.status == 200 && r.text.contains(id.as_str());
                assert_eq!(
                    has,
                    see.contains(name),
                    "{who} metrics {name}: {} {}",
                    r.status,
                    r.text
                );
                assert!(r.status == 200 || r.status == 404, "{}", r.status);
            }
        }
        "/api/ui/metrics/series" => {
            // One request naming every run: each visible run's series is
            // there, no other run's id appears.
            let all: Vec<&String> = w.runs.values().collect();
            let names: Vec<String> = w.runs.keys().map(|n| format!("m_{n}")).collect();
            let r = api.get(&format!(
                "/api/ui/metrics/series?runs={}&metrics={}&xaxis=step",
                urlencode(&json!(all).to_string()),
                urlencode(&json!(names).to_string())
            ));
            assert_eq!(r.status, 200, "{who}: {}", r.text);
            let v = r.json();
            for (name, id) in w.all_runs() {
                let has = v[format!("m_{name}")].get(id.as_str()).is_some();
                assert_eq!(has, see.contains(name), "{who} series {name}: {}", r.text);
                assert_eq!(
                    r.text.contains(id.as_str()),
                    see.contains(name),
                    "{who} series {name}: {}",
                    r.text
                );
            }
        }
        "/api/metrics/names" => {
            let all: Vec<&String> = w.runs.values().collect();
            let r = api.get(&format!(
                "/api/metrics/names?runs={}",
                urlencode(&json!(all).to_string())
            ));
            let got: BTreeSet<String> = serde_json::from_str(&r.text).unwrap();
            let want: BTreeSet<String> = see.iter().map(|n| format!("m_{n}")).collect();
            assert_eq!(got, want, "{who} metric names");
        }
        "/api/artifacts" => {
            let r = api.get("/api/artifacts?count=1000").json();
            let got: BTreeSet<String> = r
                .as_array()
                .or_else(|| r["data"].as_array())
                .unwrap()
                .iter()
                .map(|a| a["name"].as_str().unwrap().to_owned())
                .collect();
            // Artifacts are also seen by whoever registered them: here the
            // runs' owners, so the same set.
            let want: BTreeSet<String> = see.iter().map(|n| format!("art_{n}")).collect();
            assert_eq!(got, want, "{who} artifacts");
        }
        "/api/artifacts/{id}" | "/api/artifacts/{id}/download" => {
            for (name, _) in w.all_runs() {
                let aid = &w.artifacts[name];
                let r = api.get(&format!("/api/artifacts/{aid}"));
                if !see.contains(name) {
                    assert_eq!(r.status, 404, "{who} artifact {name}: {}", r.text);
                    continue;
                }
                assert_eq!(r.status, 200, "{who} artifact {name}: {}", r.text);
                if route.ends_with("download") {
                    let url = r.json()["url"].as_str().unwrap().to_owned();
                    let d = api.send("GET", &url, &[("authorization", "")], None);
                    assert_eq!(d.status, 200);
                    assert_eq!(d.text, format!("bytes of {name}"));
                    // A link is its own authority, and nothing else is: a
                    // forged one is refused.
                    let forged = url.replace("sig=", "sig=A");
                    let d = api.send("GET", &forged, &[("authorization", "")], None);
                    assert_eq!(d.status, 401);
                }
            }
        }
        "/api/folders" => {
            let v = api.get("/api/folders?count=1000").json();
            let got: BTreeSet<String> = v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["path"].as_str().unwrap().to_owned())
                .collect();
            let want: BTreeSet<String> = see.iter().map(|n| format!("/{n}")).collect();
            // "/" holds nothing of its own; everything else is exact.
            let got: BTreeSet<String> = got.into_iter().filter(|p| p != "/").collect();
            assert_eq!(got, want, "{who} folders");
        }
        "/api/folders/{id}" => per_run(
            &|name, _| format!("/api/folders/{}", w.folders[name]),
            &|name, r| assert_eq!(r.json()["path"], format!("/{name}")),
        ),
        "/api/alerts" => {
            let v = api.get("/api/alerts").json();
            let got: BTreeSet<String> = v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["name"].as_str().unwrap().to_owned())
                .collect();
            let want: BTreeSet<String> = see.iter().map(|n| format!("al_{n}")).collect();
            assert_eq!(got, want, "{who} alerts");
        }
        "/api/alerts/{id}" => per_run(
            &|name, _| format!("/api/alerts/{}", w.alerts[name]),
            &|_, _| {},
        ),
        "/api/alerts/{id}/status/{run}" => per_run(
            &|name, id| format!("/api/alerts/{}/status/{id}", w.alerts[name]),
            &|_, _| {},
        ),
        "/api/ui/whoami" => {
            let v = api.get(route).json();
            assert_eq!(v["user"], who);
            assert_eq!(v["admin"], who == "boss");
        }
        "/api/ui/tokens" => {
            let v = api.get(route).json();
            let users: BTreeSet<&str> = v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["user"].as_str().unwrap())
                .collect();
            assert_eq!(users, BTreeSet::from([who]), "{who} sees only its tokens");
            assert!(!v.to_string().contains("hash"), "{v}");
            let all = api.get("/api/ui/tokens?all=true");
            if who == "boss" {
                assert_eq!(all.status, 200);
                assert!(all.json()["data"].as_array().unwrap().len() >= 4);
            } else {
                assert_eq!(all.status, 403, "{who}: {}", all.text);
            }
        }
        "/api/ui/users" => {
            let v = api.get(route).json();
            let n = v["data"].as_array().unwrap().len();
            if who == "boss" {
                assert_eq!(n, 4);
            } else {
                assert_eq!(n, 1);
                assert_eq!(v["data"][0]["name"], who);
            }
        }
        "/api/whoami" => {
            assert_eq!(api.get(route).json()["username"], who);
        }
        // Simvue's user and tenant API: a user sees itself and its group's
        // members, and its group; an administrator sees everyone.
        "/api/users" | "/api/users/{id}" => {
            let want: BTreeSet<&str> = match who {
                "alice" | "carol" => BTreeSet::from(["alice", "carol"]),
                "bob" => BTreeSet::from(["bob"]),
                _ => BTreeSet::from(["alice", "bob", "boss", "carol"]),
            };
            if route == "/api/users" {
                let v = api.get(route).json();
                let got: BTreeSet<String> = ids(&v);
                let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
                assert_eq!(got, want, "{who}: {v}");
            } else {
                for u in ["alice", "bob", "boss", "carol"] {
                    let r = api.get(&format!("/api/users/{u}"));
                    if want.contains(u) {
                        assert_eq!(r.status, 200, "{who} user {u}: {}", r.text);
                        assert_eq!(r.json()["username"], u);
                        assert_eq!(r.json()["is_admin"], u == "boss");
                    } else {
                        assert_eq!(r.status, 404, "{who} user {u}: {}", r.text);
                    }
                }
            }
        }
        "/api/tenants" | "/api/tenants/{id}" => {
            let want: BTreeSet<&str> = match who {
                "alice" | "carol" => BTreeSet::from(["A"]),
                "bob" => BTreeSet::from(["B"]),
                _ => BTreeSet::from(["A", "B"]),
            };
            if route == "/api/tenants" {
                let v = api.get(route).json();
                let got: BTreeSet<String> = ids(&v);
                let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
                assert_eq!(got, want, "{who}: {v}");
            } else {
                for t in ["A", "B"] {
                    let r = api.get(&format!("/api/tenants/{t}"));
                    let status = if want.contains(t) { 200 } else { 404 };
                    assert_eq!(r.status, status, "{who} tenant {t}: {}", r.text);
                }
            }
        }
        "/api/stats" => {
            let v = api.get(route).json();
            assert_eq!(v["runs"]["data"], see.len(), "{who}: {v}");
            // Per user: only what the caller sees is counted.
            let v = api.get("/api/stats?single=false").json();
            let total: u64 = v
                .as_object()
                .unwrap()
                .values()
                .map(|t| t["runs"].as_u64().unwrap_or(0))
                .sum();
            assert_eq!(total, see.len() as u64, "{who}: {v}");
        }
        // A tag is seen by whoever sees a run carrying it (and its creator).
        "/api/tags" => {
            let v = api.get("/api/tags?count=1000").json();
            let got: BTreeSet<String> = v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect();
            let want: BTreeSet<String> = see.iter().map(|n| format!("tag_{n}")).collect();
            assert_eq!(got, want, "{who}");
        }
        "/api/tags/{id}" => {
            let all = w.apis["boss"].get("/api/tags?count=1000").json();
            for t in all["data"].as_array().unwrap() {
                let name = t["name"].as_str().unwrap();
                let run = name.trim_start_matches("tag_");
                let r = api.get(&format!("/api/tags/{}", t["id"].as_str().unwrap()));
                let want = if see.contains(run) { 200 } else { 404 };
                assert_eq!(r.status, want, "{who} tag {name}: {}", r.text);
            }
        }
        // Grids are shared definitions (axes, no measured data): everyone
        // reads every grid. The arrays on them follow their run.
        "/api/grids" => {
            let v = api.get("/api/grids?count=1000").json();
            let got: BTreeSet<String> = ids(&v);
            let all: BTreeSet<String> = w.grids.values().cloned().collect();
            assert_eq!(got, all, "{who}");
        }
        "/api/grids/{id}" => {
            for g in w.grids.values() {
                assert_eq!(api.get(&format!("/api/grids/{g}")).status, 200, "{who}");
            }
        }
        "/api/runs/{id}/grids" => per_run(&|_, id| format!("/api/runs/{id}/grids"), &|name, r| {
            let v = r.json();
            assert_eq!(v[0]["id"], w.grids[name].as_str(), "{}", r.text);
            assert_eq!(
                v[0]["metrics"],
                json!([format!("field_{name}")]),
                "{}",
                r.text
            );
        }),
        "/api/runs/{id}/metrics" | "/api/runs/{id}/metrics/" => {
            per_run(&|_, id| route.replace("{id}", id), &|name, r| {
                assert_eq!(
                    r.json()["data"][0]["name"],
                    format!("field_{name}"),
                    "{}",
                    r.text
                );
            })
        }
        "/api/runs/{id}/metrics/{*rest}" | "/api/runs/{id}/metrics//{*rest}" => per_run(
            &|name, id| {
                let sep = if route.contains("//") { "//" } else { "/" };
                format!("/api/runs/{id}/metrics{sep}field_{name}/values?step=0")
            },
            &|_, r| assert_eq!(r.json()["array"], json!([1.0, 2.0]), "{}", r.text),
        ),
        // Notification channels are their user's own; alice's address from
        // `user add --email` is her channel.
        "/api/ui/notifications" => {
            let v = api.get(route).json();
            let targets: Vec<&str> = v["channels"]["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["target"].as_str().unwrap())
                .collect();
            if who == "alice" {
                assert_eq!(targets, ["alice@example.org"]);
            } else {
                assert!(targets.is_empty(), "{who}: {targets:?}");
            }
        }
        "/api/ui/runs/{id}/notifications" => per_run(
            &|_, id| format!("/api/ui/runs/{id}/notifications"),
            &|_, r| {
                assert!(r.json()["data"].is_array(), "{}", r.text);
            },
        ),
        "/api/audit" => {
            let r = api.get(route);
            if who == "boss" {
                assert_eq!(r.status, 200, "{}", r.text);
            } else {
                assert_eq!(r.status, 403, "{who}: {}", r.text);
            }
        }
        other => panic!(
            "GET {other} is not covered by tests/users.rs: say what each user may see through it"
        ),
    }
}

#[test]
fn every_read_endpoint_shows_exactly_what_the_rules_allow() {
    let tmp = tempfile::tempdir().unwrap();
    let w = setup(tmp.path());
    let routes = get_routes();
    assert!(routes.contains("/api/runs/{id}"), "{routes:?}");
    assert!(routes.contains("/api/ui/runs"), "{routes:?}");
    // The source reading found the whole router (a parse that finds too
    // little would make this test pass vacuously).
    assert!(
        routes.len() >= 28,
        "{} GET routes: {routes:?}",
        routes.len()
    );
    eprintln!("{} GET routes checked: {routes:?}", routes.len());
    for who in ["alice", "bob", "carol", "boss"] {
        for route in &routes {
            check_route(&w, who, route);
        }
    }
}

#[test]
fn writes_need_ownership_and_tokens_have_a_lifecycle() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let w = setup(tmp.path());
    let (alice, bob, carol, boss) = (
        &w.apis["alice"],
        &w.apis["bob"],
        &w.apis["carol"],
        &w.apis["boss"],
    );
    let a_bob = &w.runs["a_bob"];
    let a_priv = &w.runs["a_priv"];
    // Bob sees a_bob but may not change it: 403. a_priv he cannot see: 404.
    for (run, status) in [(a_bob, 403), (a_priv, 404)] {
        for (method, path, body) in [
            (
                "PUT",
                format!("/api/runs/{run}"),
                json!({"description": "x"}),
            ),
            (
                "PUT",
                format!("/api/runs/{run}/abort"),
                json!({"reason": "x"}),
            ),
            ("PUT", format!("/api/runs/{run}/heartbeat"), json!({})),
            ("DELETE", format!("/api/runs/{run}"), json!({})),
            (
                "POST",
                "/api/events".into(),
                json!({"run": run, "events": [{"message": "hi"}]}),
            ),
            (
                "POST",
                "/api/metrics".into(),
                json!({"run": run, "metrics": [{"values": {"x": 1.0}, "step": 1, "time": 0.0,
                        "timestamp": "2024-01-01T00:00:00.000000"}]}),
            ),
            (
                "PUT",
                format!("/api/runs/{run}/artifacts/{}", w.artifacts["b_priv"]),
                json!({"category": "input"}),
            ),
        ] {
            let r = bob.json(method, &path, &body);
            // A batch naming a run the caller cannot see answers as for a
            // run that does not exist: 422, the simvue client's expectation.
            let status = if status == 404 && path.starts_with("/api/") && method == "POST" {
                422
            } else {
                status
            };
            assert_eq!(r.status, status, "bob {method} {path}: {}", r.text);
        }
    }
    // Nothing changed.
    let run = alice.ok(&format!("/api/runs/{a_bob}"));
    assert_eq!(run["abort_requested"], false);
    assert_eq!(alice.events(a_bob).len(), 1);
    // A download link is made for one user and checked again when used:
    // changing its user is refused, and once the run is no longer visible
    // to that user, the link answers 404.
    let url = bob.ok(&format!("/api/artifacts/{}", w.artifacts["a_bob"]))["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.contains("u=bob"), "{url}");
    let fetch = |u: &str| bob.send("GET", u, &[("authorization", "")], None).status;
    assert_eq!(fetch(&url), 200);
    assert_eq!(fetch(&url.replace("u=bob", "u=alice")), 401);
    let r = alice.json(
        "PUT",
        &format!("/api/runs/{a_bob}"),
        &json!({"visibility": {"tenant": false, "public": false, "users": []}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(fetch(&url), 404);
    assert_eq!(bob.get(&format!("/api/runs/{a_bob}")).status, 404);
    let r = alice.json(
        "PUT",
        &format!("/api/runs/{a_bob}"),
        &json!({"visibility": {"tenant": false, "public": false, "users": ["bob"]}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(fetch(&url), 200);
    // The owner changes visibility; carol (same group) then sees a_priv.
    assert_eq!(carol.get(&format!("/api/runs/{a_priv}")).status, 404);
    let r = alice.json(
        "PUT",
        &format!("/api/runs/{a_priv}"),
        &json!({"visibility": {"tenant": true, "public": false, "users": []}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(carol.get(&format!("/api/runs/{a_priv}")).status, 200);
    // ... and carol still cannot change it.
    let r = carol.json(
        "PUT",
        &format!("/api/runs/{a_priv}"),
        &json!({"visibility": {"public": true}}),
    );
    assert_eq!(r.status, 403);
    // Administrators change anything.
    let r = boss.json(
        "PUT",
        &format!("/api/runs/{a_bob}/abort"),
        &json!({"reason": "admin"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // Others' alerts and folders: 403 when seen, 404 when not.
    let r = bob.json(
        "PUT",
        &format!("/api/alerts/{}", w.alerts["a_bob"]),
        &json!({"description": "x"}),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    let r = bob.json(
        "DELETE",
        &format!("/api/alerts/{}", w.alerts["a_priv"]),
        &json!({}),
    );
    assert_eq!(r.status, 404, "{}", r.text);
    let r = bob.send(
        "DELETE",
        &format!(
            "/api/folders/{}?recursive=True&runs=True",
            w.folders["a_bob"]
        ),
        &[],
        None,
    );
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(alice.get(&format!("/api/runs/{a_bob}")).status, 200);

    // A read-only token reads and cannot write.
    let ro = token_with(&data, &["--user", "alice", "--read-only", "--label", "ro"]);
    let ro = Api::new(&w.server, &ro);
    assert_eq!(ro.get(&format!("/api/runs/{a_priv}")).status, 200);
    for (method, path, body) in [
        ("POST", "/api/runs".to_string(), json!({"name": "nope"})),
        (
            "PUT",
            format!("/api/runs/{a_priv}"),
            json!({"description": "x"}),
        ),
        ("DELETE", format!("/api/runs/{a_priv}"), json!({})),
        ("POST", "/api/folders".into(), json!({"path": "/ro"})),
        ("POST", "/api/ui/tokens".into(), json!({"days": 1})),
    ] {
        let r = ro.json(method, &path, &body);
        assert_eq!(r.status, 403, "read-only {method} {path}: {}", r.text);
    }

    // Token list (CLI): label, owner, scope; never the secret.
    let (ok, out, err) = simtrack(&data, &["token", "list", "--user", "alice"], None);
    assert!(ok, "{err}");
    assert!(out.contains("\tro\t") && out.contains("read-only"), "{out}");
    assert!(!out.contains(&ro.token), "{out}");
    // Revoked through the API: 401 at once.
    let mint = alice.json(
        "POST",
        "/api/ui/tokens",
        &json!({"label": "short", "days": 1}),
    );
    assert_eq!(mint.status, 200, "{}", mint.text);
    let (tid, tok) = (
        mint.json()["id"].as_str().unwrap().to_owned(),
        mint.json()["token"].as_str().unwrap().to_owned(),
    );
    let minted = Api::new(&w.server, &tok);
    assert_eq!(minted.get("/api/ui/whoami").status, 200);
    assert_eq!(
        bob.send("DELETE", &format!("/api/ui/tokens/{tid}"), &[], None)
            .status,
        404
    );
    assert_eq!(
        alice
            .send("DELETE", &format!("/api/ui/tokens/{tid}"), &[], None)
            .status,
        200
    );
    assert_eq!(minted.get("/api/ui/whoami").status, 401);
    // Revoked by the CLI (another process): 401 at once (the next request
    // asks the store whether anything was revoked).
    assert_eq!(ro.get("/api/ui/whoami").status, 200);
    let id = out
        .lines()
        .find(|l| l.contains("\tro\t"))
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    let (ok, _, err) = simtrack(&data, &["token", "revoke", &id], None);
    assert!(ok, "{err}");
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(ro.get("/api/ui/whoami").status, 401);
    // A disabled user's tokens: 401 at once.
    assert_eq!(carol.get("/api/ui/whoami").status, 200);
    let (ok, _, err) = simtrack(&data, &["user", "disable", "carol"], None);
    assert!(ok, "{err}");
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(carol.get("/api/ui/whoami").status, 401);
    assert_eq!(carol.get("/api/runs").status, 401);

    // The audit trail has all of it, for admins.
    let audit = boss.ok("/api/audit?count=1000");
    let actions: Vec<String> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}:{}",
                a["actor"].as_str().unwrap(),
                a["action"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "cli:user_add",
        "cli:token_create",
        "alice:token_create",
        "alice:token_revoke",
        "cli:token_revoke",
        "cli:user_disable",
        "alice:run_visibility",
        "boss:run_abort",
    ] {
        assert!(
            actions.iter().any(|a| a == want),
            "{want} not in {actions:?}"
        );
    }
    let ip = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "run_abort")
        .unwrap()["ip"]
        .clone();
    assert_eq!(ip, "127.0.0.1");
}

#[test]
fn people_sign_in_with_a_password() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    private_dir(&data);
    let (ok, _, err) = simtrack(&data, &["user", "add", "dora", "--group", "G"], None);
    assert!(ok, "{err}");
    let (ok, _, err) = simtrack(&data, &["user", "passwd", "dora"], Some("correct horse\n"));
    assert!(ok, "{err}");
    let (ok, _, _) = simtrack(&data, &["user", "passwd", "dora"], Some("short\n"));
    assert!(!ok, "a short password is refused");
    let server = Server::start(&data, &[]);
    let http = reqwest::blocking::Client::new();
    let signin = |user: &str, pw: &str| {
        http.post(format!("{}/api/ui/signin", server.url))
            .json(&json!({"user": user, "password": pw}))
            .send()
            .unwrap()
    };
    // Wrong password: 401; the unknown user gets the same answer.
    assert_eq!(signin("dora", "wrong password").status(), 401);
    assert_eq!(signin("nobody", "wrong password").status(), 401);
    // Right password: a session cookie with the right flags, and a CSRF token.
    let r = signin("dora", "correct horse");
    assert_eq!(r.status(), 200);
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let body: Value = r.json().unwrap();
    let csrf = body["csrf"].as_str().unwrap().to_owned();
    let session = cookie.split(';').next().unwrap().to_owned();
    let with_cookie = |m: reqwest::Method, path: &str, csrf: Option<&str>| {
        let mut q = http
            .request(m, format!("{}{path}", server.url))
            .header("cookie", &session)
            .json(&json!({"name": "from-ui"}));
        if let Some(c) = csrf {
            q = q.header("x-csrf-token", c);
        }
        q.send().unwrap()
    };
    let who: Value = with_cookie(reqwest::Method::GET, "/api/ui/whoami", None)
        .json()
        .unwrap();
    assert_eq!(who["user"], "dora");
    assert_eq!(who["csrf"], csrf.as_str());
    // A write with the cookie and no (or a wrong) CSRF token: refused.
    assert_eq!(
        with_cookie(reqwest::Method::POST, "/api/runs", None).status(),
        403
    );
    assert_eq!(
        with_cookie(reqwest::Method::POST, "/api/runs", Some("bad")).status(),
        403
    );
    assert_eq!(
        with_cookie(reqwest::Method::POST, "/api/runs", Some(&csrf)).status(),
        200
    );
    // The UI's "Create new run" mints a labelled token through the lifecycle.
    let r = http
        .post(format!("{}/api/ui/tokens", server.url))
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .json(&json!({"label": "new run", "days": 7}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().unwrap();
    assert_eq!(v["label"], "new run");
    assert_eq!(v["scope"], "full");
    // Sign-out ends the session at once.
    assert_eq!(
        with_cookie(reqwest::Method::POST, "/api/ui/signout", Some(&csrf)).status(),
        200
    );
    assert_eq!(
        with_cookie(reqwest::Method::GET, "/api/ui/whoami", None).status(),
        401
    );
    // Failed sign-ins are limited: after 5 for a name (a success starts
    // the count again), even the right password is refused (429) for a
    // while.
    for _ in 0..5 {
        assert_eq!(signin("dora", "wrong password").status(), 401);
    }
    assert_eq!(signin("dora", "correct horse").status(), 429);
    // Behind a trusted proxy that says https, the cookie is Secure.
    drop(server);
    let server = Server::start(&data, &["--trusted-proxy", "127.0.0.1"]);
    let (ok, _, err) = simtrack(&data, &["user", "add", "eve"], None);
    assert!(ok, "{err}");
    let (ok, _, err) = simtrack(
        &data,
        &["user", "passwd", "eve"],
        Some("another password\n"),
    );
    assert!(ok, "{err}");
    let r = http
        .post(format!("{}/api/ui/signin", server.url))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({"user": "eve", "password": "another password"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // The audit trail names where it came from.
    let boss_token = {
        let (ok, _, err) = simtrack(&data, &["user", "add", "root", "--admin"], None);
        assert!(ok, "{err}");
        token_with(&data, &["--user", "root"])
    };
    let audit = Api::new(&server, &boss_token).ok("/api/audit");
    let signins: Vec<&Value> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "signin" || a["action"] == "signin_failed")
        .collect();
    assert!(
        signins.iter().any(|a| a["ip"] == "203.0.113.9"),
        "{signins:?}"
    );
    assert!(
        signins
            .iter()
            .any(|a| a["action"] == "signin_failed" && a["actor"] == "nobody")
    );
}

#[test]
fn upgrading_keeps_everyone_in_and_token_name_makes_a_user() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    private_dir(&data);
    // `token create --name` makes (or reuses) the user.
    let t1 = token_with(&data, &["--name", "frank"]);
    let t2 = token_with(&data, &["--name", "frank"]);
    let (ok, out, err) = simtrack(&data, &["user", "list"], None);
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("frank\t")).count(),
        1,
        "{out}"
    );
    let server = Server::start(&data, &[]);
    let (a, b) = (Api::new(&server, &t1), Api::new(&server, &t2));
    let id = a.create_run(json!({"name": "mine"}));
    assert_eq!(b.get(&format!("/api/runs/{id}")).status, 200, "same user");
}

/// A mistyped `--data` is not a new, empty deployment: the commands that
/// read or change what exists refuse it and create nothing; only the two
/// that set a deployment up before its first start (`token create`,
/// `user add`) start a data directory, say so, and the server started on
/// it takes their token. Always the embedded store: the check is its own.
#[test]
fn admin_commands_refuse_a_directory_that_is_no_data_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = |dir: &Path, args: &[&str]| {
        let out = Command::new(bin())
            .args(args)
            .arg("--data")
            .arg(dir)
            .env_remove("SIMTRACK_DATABASE_URL")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run simtrack");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let typo = tmp.path().join("dtaa");
    let empty = tmp.path().join("empty");
    private_dir(&empty);
    for dir in [&typo, &empty] {
        for args in [
            &["token", "list"][..],
            &["token", "revoke", "--name", "ann"],
            &["user", "list"],
            &["user", "disable", "ann"],
            &["user", "enable", "ann"],
            &["user", "passwd", "ann"],
            &["notify", "list"],
            &[
                "notify",
                "add",
                "--user",
                "ann",
                "--email",
                "ann@example.org",
            ],
            &["notify", "remove", "x"],
        ] {
            let (ok, out, err) = cli(dir, args);
            assert!(!ok, "{args:?} on {dir:?} succeeded: {out}");
            assert!(
                err.contains("is not a simtrack data directory (no simtrack.db)")
                    && err.contains("simtrack server --data"),
                "{args:?}: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    assert!(!typo.exists(), "a command that refused created {typo:?}");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "{empty:?}");

    // Setting a deployment up: user add, then token create, on a new one.
    let data = tmp.path().join("new");
    let (ok, _, err) = cli(&data, &["user", "add", "ann", "--group", "g"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("started a new data directory") && err.contains(&*data.to_string_lossy()),
        "{err}"
    );
    let (ok, token, err) = cli(&data, &["token", "create", "--user", "ann"]);
    assert!(ok, "{err}");
    assert!(!err.contains("new data directory"), "said twice: {err}");
    let (ok, out, err) = cli(&data, &["token", "list"]);
    assert!(ok && out.contains("\tann\t"), "{out}{err}");
    let server = Server::start_raw(
        &data,
        "127.0.0.1:0",
        &["--data", &*data.to_string_lossy()],
        &[],
    );
    let api = Api::new(&server, token.trim());
    let id = api.create_run(json!({"name": "set up before the first start"}));
    assert_eq!(api.get(&format!("/api/runs/{id}")).status, 200);
}

/// Names are chosen by people who do not know each other: a second user
/// starting runs with the tags, alert names and grid names another user's
/// private runs already use gets them too (once a 503: the tag name was
/// looked up through the caller's view, missed, and inserted twice). A tag
/// name taken by a tag the caller cannot see is refused without its id.
#[test]
fn two_users_may_choose_the_same_names() {
    let tmp = tempfile::tempdir().unwrap();
    let w = setup(tmp.path());
    let (alice, bob) = (&w.apis["alice"], &w.apis["bob"]);

    // Bob cannot see a_priv, nor its tag, alert or grid.
    assert!(!bob.get("/api/tags?count=1000").text.contains("tag_a_priv"));
    let mine = bob.create_run(json!({"name": "a_priv", "folder": "/bob_own",
        "tags": ["tag_a_priv", "Linux"]}));
    let other = alice.create_run(json!({"name": "a_priv", "folder": "/a_priv",
        "tags": ["Linux"]}));
    let r = bob.get(&format!("/api/runs/{mine}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["tags"], json!(["tag_a_priv", "Linux"]));
    assert_eq!(bob.get(&format!("/api/runs/{other}")).status, 404);
    // The tag now rides on one of his runs: he sees it, with its one id.
    let tags = bob.get("/api/tags?count=1000").json();
    let names: BTreeSet<&str> = tags["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains("tag_a_priv") && names.contains("Linux"),
        "{tags}"
    );

    for (path, body) in [
        (
            "/api/alerts",
            json!({"name": "al_a_priv", "source": "events",
                   "alert": {"pattern": "boom", "frequency": 1}}),
        ),
        (
            "/api/grids",
            json!({"name": "grid_a_priv", "grid": [[0.0, 1.0]], "labels": ["x"]}),
        ),
    ] {
        let r = bob.json("POST", path, &body);
        assert_eq!(r.status, 200, "POST {path}: {}", r.text);
    }

    // A tag made through the tags API, on no run: only Alice sees it.
    let secret = alice.json("POST", "/api/tags", &json!({"name": "secret_tag"}));
    assert_eq!(secret.status, 200, "{}", secret.text);
    let taken = bob.json("POST", "/api/tags", &json!({"name": "secret_tag"}));
    assert_eq!(taken.status, 409, "{}", taken.text);
    assert!(
        !taken.text.contains(secret.json()["id"].as_str().unwrap()),
        "{}",
        taken.text
    );
    let own = bob.json("POST", "/api/tags", &json!({"name": "bob_tag"}));
    assert_eq!(own.status, 200, "{}", own.text);
    let own = own.json()["id"].as_str().unwrap().to_owned();
    let rename = bob.json(
        "PUT",
        &format!("/api/tags/{own}"),
        &json!({"name": "secret_tag"}),
    );
    assert_eq!(rename.status, 409, "{}", rename.text);
    assert!(
        !rename.text.contains(secret.json()["id"].as_str().unwrap()),
        "{}",
        rename.text
    );
    // Alice's own duplicate names her tag.
    let again = alice.json("POST", "/api/tags", &json!({"name": "secret_tag"}));
    assert_eq!(again.status, 409, "{}", again.text);
    assert!(
        again.text.contains(secret.json()["id"].as_str().unwrap()),
        "{}",
        again.text
    );
    // A rename that is allowed carries the runs along.
    let linux = bob.get("/api/tags?count=1000").json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "tag_a_priv")
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .unwrap();
    assert_eq!(
        bob.json("PUT", &format!("/api/tags/{linux}"), &json!({"name": "x"}))
            .status,
        403,
        "the tag is Alice's: Bob may see it, not rename it"
    );
}

#[test]
fn failed_sign_ins_are_counted_in_the_store_and_audited_without_the_password() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    private_dir(&data);
    for (name, pw) in [("dora", "correct horse"), ("dis", "disabled password")] {
        let (ok, _, err) = simtrack(&data, &["user", "add", name], None);
        assert!(ok, "{err}");
        let (ok, _, err) = simtrack(&data, &["user", "passwd", name], Some(&format!("{pw}\n")));
        assert!(ok, "{err}");
    }
    let (ok, _, err) = simtrack(&data, &["user", "disable", "dis"], None);
    assert!(ok, "{err}");
    let (ok, _, err) = simtrack(&data, &["user", "add", "root", "--admin"], None);
    assert!(ok, "{err}");
    let root = token_with(&data, &["--user", "root"]);
    let http = reqwest::blocking::Client::new();
    let signin = |server: &Server, user: &str, pw: &str| {
        http.post(format!("{}/api/ui/signin", server.url))
            .json(&json!({"user": user, "password": pw}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    // Three failures, a restart (or another replica: the count is in the
    // store), two more: the limit of five is reached.
    let mut server = Server::start(&data, &[]);
    for i in 0..3 {
        assert_eq!(signin(&server, "dora", &format!("wrong pw {i}")), 401);
    }
    assert!(server.terminate());
    let server = Server::start(&data, &[]);
    for i in 3..5 {
        assert_eq!(signin(&server, "dora", &format!("wrong pw {i}")), 401);
    }
    assert_eq!(signin(&server, "dora", "correct horse"), 429);
    // An unknown user and a disabled one (with its right password) fail
    // alike, and are recorded with why.
    assert_eq!(signin(&server, "ghost", "ghost pw"), 401);
    assert_eq!(signin(&server, "dis", "disabled password"), 401);
    // Hammering a blocked name adds nothing more to the trail than the
    // first refusal.
    for i in 0..40 {
        assert_eq!(signin(&server, "dora", &format!("flood pw {i}")), 429);
    }
    let audit = Api::new(&server, &root).ok("/api/audit?count=1000");
    let rows = audit["data"].as_array().unwrap();
    let of = |action: &str, actor: &str| -> Vec<String> {
        rows.iter()
            .filter(|a| a["action"] == action && a["actor"] == actor)
            .map(|a| a["detail"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(of("signin_failed", "dora"), vec!["wrong password"; 5]);
    assert_eq!(of("signin_refused", "dora").len(), 1, "{rows:?}");
    assert_eq!(of("signin_failed", "ghost"), ["no such user"]);
    assert_eq!(of("signin_failed", "dis"), ["the user is disabled"]);
    let text = audit.to_string();
    for secret in [
        "wrong pw",
        "flood pw",
        "correct horse",
        "disabled password",
        "ghost pw",
    ] {
        assert!(
            !text.contains(secret),
            "the audit trail holds a password: {text}"
        );
    }
}

#[test]
fn upload_links_serve_only_their_user_and_artifact() {
    use sha2::Digest;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    private_dir(&data);
    let alice = token_with(&data, &["--name", "alice"]);
    let bob = token_with(&data, &["--name", "bob"]);
    let carol = token_with(&data, &["--name", "carol"]);
    let server = Server::start(&data, &[]);
    let register = |api: &Api, bytes: &[u8]| -> (String, String) {
        let sum = simtrack_server::util::hex(&sha2::Sha256::digest(bytes));
        let r = api.json(
            "POST",
            "/api/artifacts",
            &json!({"name": "f.bin", "size": bytes.len(), "checksum": sum}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["url"].as_str().expect("an upload link").to_owned(),
        )
    };
    let (a_api, b_api, c_api) = (
        Api::new(&server, &alice),
        Api::new(&server, &bob),
        Api::new(&server, &carol),
    );
    let (a_bytes, b_bytes) = (b"alice's bytes".to_vec(), b"bob's bytes".to_vec());
    let (a_id, a_url) = register(&a_api, &a_bytes);
    let (b_id, b_url) = register(&b_api, &b_bytes);
    let put = |url: &str, bytes: &[u8]| {
        reqwest::blocking::Client::new()
            .put(url)
            .body(bytes.to_vec())
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert!(a_url.contains("u=alice&"), "{a_url}");
    // Alice's link names her: it does not pass as bob's, without its
    // user, or for bob's artifact (with his bytes or hers).
    assert_eq!(put(&a_url.replace("u=alice&", "u=bob&"), &b_bytes), 401);
    assert_eq!(put(&a_url.replace("u=alice&", ""), &a_bytes), 401);
    let swapped = a_url.replace(&a_id, &b_id);
    assert_eq!(put(&swapped, &b_bytes), 401);
    assert_eq!(put(&swapped, &a_bytes), 401);
    let art = |api: &Api, id: &str| api.ok(&format!("/api/artifacts/{id}"));
    assert_eq!(art(&b_api, &b_id)["uploaded"], false);
    // Used as issued, it works.
    assert_eq!(put(&a_url, &a_bytes), 200);
    assert_eq!(art(&a_api, &a_id)["uploaded"], true);
    assert_eq!(put(&b_url, &b_bytes), 200);
    // A replayed link changes nothing: an upload its owner withdrew stays
    // withdrawn.
    let r = b_api.json(
        "PUT",
        &format!("/api/artifacts/{b_id}"),
        &json!({"uploaded": false}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(put(&b_url, &b_bytes), 200);
    assert_eq!(art(&b_api, &b_id)["uploaded"], false);
    // A disabled user's links stop working at once.
    let (_, c_url) = register(&c_api, b"carol's bytes");
    let (ok, _, err) = simtrack(&data, &["user", "disable", "carol"], None);
    assert!(ok, "{err}");
    assert_eq!(put(&c_url, b"carol's bytes"), 401);
}

#[test]
fn a_folder_one_cannot_see_answers_like_one_that_does_not_exist() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    private_dir(&data);
    let alice = token_with(&data, &["--name", "alice"]);
    let bob = token_with(&data, &["--name", "bob"]);
    let server = Server::start(&data, &[]);
    let (a, b) = (Api::new(&server, &alice), Api::new(&server, &bob));
    // Alice's folder with a private run in it, and her empty folder.
    let r = a.json(
        "POST",
        "/api/folders",
        &json!({"path": "/secret/empty", "description": "hers"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let empty = r.json()["id"].as_str().unwrap().to_owned();
    a.create_run(json!({"name": "private", "folder": "/secret/full"}));
    let full = a.ok("/api/folders?count=100")["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/secret/full")
        .expect("alice sees her folder")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let missing = "NoSuchFolder0000000000";
    // Each way of asking answers the same for her folders as for one that
    // does not exist (the message names the id asked for).
    let same = |method: &str, path: &dyn Fn(&str) -> String, body: Option<Value>| {
        let ask = |id: &str| {
            let r = match &body {
                Some(v) => b.json(method, &path(id), v),
                None => b.send(method, &path(id), &[], None),
            };
            (r.status, r.text.replace(id, "ID"))
        };
        let want = ask(missing);
        for id in [&empty, &full] {
            assert_eq!(ask(id), want, "{method} {}", path(id));
        }
    };
    same("GET", &|id| format!("/api/folders/{id}"), None);
    same(
        "PUT",
        &|id| format!("/api/folders/{id}"),
        Some(json!({"description": "mine"})),
    );
    same(
        "PUT",
        &|id| format!("/api/folders/{id}/starred"),
        Some(json!({"starred": true})),
    );
    same(
        "DELETE",
        &|id| format!("/api/folders/{id}?recursive=True&runs=True"),
        None,
    );
    let listed = |filter: &str| {
        let v = b.ok(&format!(
            "/api/folders?count=100&filters={}",
            urlencode(&json!([filter]).to_string())
        ));
        (v["count"].clone(), v["data"].clone())
    };
    for path in ["/secret", "/secret/empty", "/secret/full"] {
        assert_eq!(
            listed(&format!("path == {path}")),
            listed("path == /nothing/here"),
            "{path}"
        );
    }
    let all = b.ok("/api/folders?count=100").to_string();
    assert!(!all.contains("secret"), "{all}");
    // Asking for her folder's path (to make it) answers as for a new one,
    // and what bob then sees and changes is his own view of it.
    let make = |path: &str| {
        let r = b.json(
            "POST",
            "/api/folders",
            &json!({"path": path, "description": "his", "tags": ["b"]}),
        );
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        let id = r.json()["id"].as_str().unwrap().to_owned();
        let mut doc = b.ok(&format!("/api/folders/{id}"));
        for k in ["id", "path", "name", "created", "modified"] {
            doc.as_object_mut().unwrap().remove(k);
        }
        (id, doc)
    };
    let (his_empty, seen) = make("/secret/empty");
    assert_eq!(his_empty, empty, "one path, one folder");
    assert_eq!(seen, make("/fresh/empty").1);
    let r = b.json(
        "PUT",
        &format!("/api/folders/{empty}/starred"),
        &json!({"starred": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let listed = b.ok("/api/folders?count=100");
    let mine = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == empty.as_str())
        .expect("bob lists the folder he asked for")
        .clone();
    assert_eq!(mine["description"], "his");
    assert_eq!(mine["starred"], true);
    // A run of his in her other folder: he sees his view of it, not hers.
    let r = a.json(
        "PUT",
        &format!("/api/folders/{full}"),
        &json!({"description": "hers too", "metadata": {"budget": 7}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    b.create_run(json!({"name": "his", "folder": "/secret/full"}));
    let v = b.ok(&format!("/api/folders/{full}"));
    assert_eq!(v["description"], Value::Null, "{v}");
    assert_eq!(v["metadata"], json!({}), "{v}");
    // Deleting his view leaves hers.
    let r = b.send("DELETE", &format!("/api/folders/{empty}"), &[], None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(b.get(&format!("/api/folders/{empty}")).status, 404);
    // Nothing of hers changed.
    let v = a.ok(&format!("/api/folders/{empty}"));
    assert_eq!(v["description"], "hers");
    assert_eq!(v["starred"], false);
    assert_eq!(
        a.ok(&format!("/api/folders/{full}"))["description"],
        "hers too"
    );
}

/// Waits out the server's token cache ([`GENERATION_CHECK`]: a change to
/// a user is noticed by every token within it).
///
/// [`GENERATION_CHECK`]: simtrack_server::domain::auth::GENERATION_CHECK
fn settle() {
    std::thread::sleep(simtrack_server::domain::auth::GENERATION_CHECK * 3);
}

/// Simvue's `/api/users` and `/api/tenants` (what the simvue client's
/// `User` and `Tenant` send): administrators create, change and delete;
/// the fields that mean something here change what a token may do.
#[test]
fn simvue_users_and_tenants_are_our_users_and_groups() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let w = setup(tmp.path());
    let (alice, boss) = (&w.apis["alice"], &w.apis["boss"]);

    // Non-administrators change nothing (the client looks for this wording).
    for (path, body) in [
        ("/api/tenants", json!({"name": "T"})),
        ("/api/users", json!({"username": "dan", "tenant": "A"})),
    ] {
        let r = alice.json("POST", path, &body);
        assert_eq!(r.status, 403, "{path}: {}", r.text);
        assert!(r.text.contains("You do not have permission"), "{}", r.text);
    }
    assert_eq!(
        alice
            .json("PUT", "/api/tenants/A", &json!({"is_enabled": false}))
            .status,
        403
    );
    assert_eq!(
        alice.json("DELETE", "/api/users/carol", &json!({})).status,
        403
    );
    // bob is not in alice's group: not even there for her.
    assert_eq!(
        alice.json("DELETE", "/api/users/bob", &json!({})).status,
        404
    );

    // A tenant, as the client creates it; quotas we would not enforce are refused.
    let t = boss.json(
        "POST",
        "/api/tenants",
        &json!({"name": "T", "is_enabled": true, "max_request_rate": 0, "max_runs": 0,
                "max_data_volume": 0}),
    );
    assert_eq!(t.status, 200, "{}", t.text);
    assert_eq!(t.json()["id"], "T");
    let again = boss.json("POST", "/api/tenants", &json!({"name": "T"}));
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.json()["id"], "T");
    let quota = boss.json("POST", "/api/tenants", &json!({"name": "Q", "max_runs": 5}));
    assert_eq!(quota.status, 422, "{}", quota.text);
    let tv = boss.get("/api/tenants/T").json();
    assert_eq!(tv["name"], "T");
    assert_eq!(tv["is_enabled"], true);
    assert!(tv["created"].is_string(), "{tv}");
    assert_eq!(alice.get("/api/tenants/T").status, 404);

    // A user in it, as the client sends it (flat and nested under `user`).
    let info = json!({"username": "dan", "fullname": "Dan Brown", "email": "dan@example.org",
                      "is_manager": false, "is_readonly": true, "welcome": false,
                      "is_admin": false, "is_enabled": true});
    let mut body = info.clone();
    body["user"] = info.clone();
    body["tenant"] = json!("T");
    let u = boss.json("POST", "/api/users", &body);
    assert_eq!(u.status, 200, "{}", u.text);
    assert_eq!(u.json()["id"], "dan");
    let dup = boss.json("POST", "/api/users", &body);
    assert_eq!(dup.status, 409, "{}", dup.text);
    let mut nowhere = body.clone();
    nowhere["username"] = json!("eve");
    nowhere["tenant"] = json!("no-such-tenant");
    assert_eq!(boss.json("POST", "/api/users", &nowhere).status, 422);
    let dv = boss.get("/api/users/dan").json();
    for (k, v) in [
        ("username", json!("dan")),
        ("fullname", json!("Dan Brown")),
        ("email", json!("dan@example.org")),
        ("tenant", json!("T")),
        ("is_readonly", json!(true)),
        ("is_enabled", json!(true)),
        ("is_deleted", json!(false)),
        ("is_admin", json!(false)),
        ("is_manager", json!(false)),
    ] {
        assert_eq!(dv[k], v, "{k}: {dv}");
    }
    // The same user as `simtrack user list` knows it: group T.
    let (ok, out, err) = simtrack(&data, &["user", "list"], None);
    assert!(ok, "{err}");
    assert!(out.lines().any(|l| l.starts_with("dan\tT\t")), "{out}");

    // is_readonly: dan's tokens read but do not write.
    let dan = Api::new(&w.server, &token_with(&data, &["--user", "dan"]));
    assert_eq!(dan.get("/api/runs").status, 200);
    let r = dan.json("POST", "/api/folders", &json!({"path": "/dan"}));
    assert_eq!(r.status, 403, "{}", r.text);
    let r = boss.json("PUT", "/api/users/dan", &json!({"is_readonly": false}));
    assert_eq!(r.status, 200, "{}", r.text);
    settle();
    let r = dan.json("POST", "/api/folders", &json!({"path": "/dan"}));
    assert_eq!(r.status, 200, "{}", r.text);
    // The name is the id.
    let r = boss.json("PUT", "/api/users/dan", &json!({"username": "daniel"}));
    assert_eq!(r.status, 422, "{}", r.text);

    // A disabled tenant's members are refused; enabled again, let in.
    let r = boss.json("PUT", "/api/tenants/T", &json!({"is_enabled": false}));
    assert_eq!(r.status, 200, "{}", r.text);
    settle();
    assert_eq!(dan.get("/api/runs").status, 401);
    assert_eq!(alice.get("/api/runs").status, 200);
    let r = boss.json("PUT", "/api/tenants/T", &json!({"is_enabled": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    settle();
    assert_eq!(dan.get("/api/runs").status, 200);

    // A tenant with a member cannot go; a deleted user is disabled (its
    // runs stay) and no longer holds the tenant; creating it again restores it.
    let r = boss.json("DELETE", "/api/tenants/T", &json!({}));
    assert_eq!(r.status, 409, "{}", r.text);
    let r = boss.json("DELETE", "/api/users/dan", &json!({}));
    assert_eq!((r.status, r.text.as_str()), (200, "{}"));
    settle();
    assert_eq!(dan.get("/api/runs").status, 401);
    assert_eq!(boss.get("/api/users/dan").json()["is_deleted"], true);
    let r = boss.json("DELETE", "/api/tenants/T", &json!({}));
    assert_eq!((r.status, r.text.as_str()), (200, "{}"));
    assert_eq!(boss.get("/api/tenants/T").status, 404);
    assert_eq!(boss.get("/api/users/dan").json()["tenant"], Value::Null);
    let mut back = body.clone();
    back["tenant"] = json!("A");
    let r = boss.json("POST", "/api/users", &back);
    assert_eq!(r.status, 200, "{}", r.text);
    let dv = boss.get("/api/users/dan").json();
    assert_eq!(
        (dv["is_deleted"].clone(), dv["is_enabled"].clone()),
        (json!(false), json!(true))
    );
    settle();
    // Now in alice's group, she sees dan.
    assert_eq!(alice.get("/api/users/dan").status, 200);
    assert_eq!(dan.get("/api/runs").status, 200);

    // Implicit groups (from `user add --group`) are tenants too.
    let r = boss.json("PUT", "/api/tenants/B", &json!({"is_enabled": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    // Every change is in the audit trail.
    let audit = boss.get("/api/audit?limit=200").json().to_string();
    for action in [
        "tenant_add",
        "tenant_change",
        "tenant_delete",
        "user_delete",
    ] {
        assert!(audit.contains(action), "{action} missing: {audit}");
    }
}

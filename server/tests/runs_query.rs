//! The run list query answered by the database (filters, sorting, counting
//! and paging in SQL) against the same query answered in memory
//! (`runs::list_scan` over every run, the engine the database path must
//! agree with): ~250 runs of four users with mixed visibility, tags,
//! folders, names beyond ASCII, metadata of every JSON type and metrics
//! with NaN, queried by several callers with a spread of filters, sort
//! keys and pages. Both answers must be identical, and no caller may see
//! (or count) a run it must not. Runs on SQLite always, and on PostgreSQL
//! when `SIMTRACK_TEST_PG_URL` is set (scripts/test.d/40-postgres.sh).

mod common;

use std::sync::Arc;

use serde_json::{Map, Value, json};
use simtrack_server::domain::access::Scoped;
use simtrack_server::domain::auth::{Auth, Identity};
use simtrack_server::domain::metrics::{self, Point};
use simtrack_server::domain::runs::{self, Query};
use simtrack_server::domain::{filters, read, write};
use simtrack_server::storage::{StateStore, UserRow};

const USERS: [(&str, Option<&str>, bool); 4] = [
    ("alice", Some("g1"), false),
    ("bob", Some("g1"), false),
    ("carol", Some("g2"), false),
    ("root", None, true),
];

fn populate(store: &dyn StateStore) {
    write(store, |tx| {
        for (name, group, admin) in USERS {
            tx.user_put(&UserRow {
                name: name.into(),
                email: None,
                group: group.map(str::to_owned),
                admin,
                disabled: false,
                password: None,
                created: 1,
            })?;
        }
        Ok(())
    })
    .expect("users");
    let statuses = [
        "completed",
        "failed",
        "running",
        "terminated",
        "lost",
        "created",
    ];
    let folders = ["/a", "/a/b", "/a/bc", "/ab", "/", "/x/y", "/A"];
    let names = ["Run-ÉTÉ", "run", "RUN", "sweep", "123", "1e3", "ıi", "b\"q"];
    let visibility = [
        json!({"tenant": false, "public": false, "users": []}),
        json!({"tenant": true, "public": false, "users": []}),
        json!({"tenant": false, "public": true, "users": []}),
        json!({"tenant": false, "public": false, "users": ["alice", 3]}),
        json!({"public": 1, "users": "alice"}),
    ];
    for i in 0..250usize {
        let owner = USERS[i % 3].0;
        let re: Value = match i % 11 {
            0 => json!(i as f64 / 7.0),
            1 => json!("abc"),
            2 => json!("10"),
            3 => json!(i % 2 == 0),
            4 => Value::Null,
            5 => json!(-(i as i64)),
            6 => json!(1e20),
            7 => json!(1000 + (i % 13) * 10),
            8 => json!("Zeta"),
            _ => json!(1000 + (i % 13) * 10),
        };
        let solver = ["jacobi", "gmres"][i % 2];
        let mut metadata = json!({"i": i, "nested": {"b": i % 3}, "solver": solver});
        if i % 17 != 4 {
            metadata["re"] = re;
        }
        if i % 3 == 0 {
            // A key with a quote and a backslash in it.
            metadata["q\"k\\"] = json!({"x": {"y": i % 4}});
        }
        if i == 30 {
            metadata["one"] = json!([1, 2]);
        }
        if i == 40 || i == 41 {
            metadata["two"] = json!({"k": i});
        }
        let mut tags = vec![
            format!("g{}", i % 5),
            if i % 2 == 0 { "even" } else { "odd" }.to_owned(),
        ];
        if i % 9 == 0 {
            tags.push("archived".into());
        }
        if i % 23 == 0 {
            tags.push("q\"t".into());
        }
        if i % 29 == 0 {
            tags.push("ü".into());
        }
        let body = json!({
            "name": format!("{}-{i}", names[i % names.len()]),
            "folder": folders[i % folders.len()],
            "status": statuses[i % statuses.len()],
            "description": if i % 4 == 0 { Value::Null } else { json!(format!("case {}", i % 6)) },
            "tags": tags,
            "metadata": metadata,
            "visibility": visibility[i % visibility.len()],
            // Ties on `created` are broken by insertion order.
            "created": format!("2026-01-0{}T00:00:00.000000", 1 + i % 5),
        });
        let Value::Object(body) = body else {
            unreachable!()
        };
        let run = runs::new_run(&body, owner).expect("valid run");
        write(store, |tx| {
            let made = runs::create(tx, &run)?;
            let id = made["id"].as_str().unwrap_or_default().to_owned();
            if i % 7 == 0 {
                runs::update(tx, &id, &Map::from_iter([("starred".into(), json!(true))]))?;
            }
            if i % 3 != 1 {
                let v = match i % 10 {
                    0 => f64::NAN,
                    1 => f64::INFINITY,
                    k => (k as f64 - 4.5) * (i as f64),
                };
                let points: Vec<Point> = (0..=(i % 4) as i64)
                    .map(|s| Point {
                        step: s,
                        time: s as f64,
                        ts: 1_700_000_000_000_000 + s,
                        value: if s == (i % 4) as i64 { v } else { s as f64 },
                    })
                    .collect();
                metrics::append(tx, &id, "loss", &points)?;
            }
            Ok(())
        })
        .expect("create run");
    }
}

fn identity(store: &dyn StateStore, auth: &Auth, user: &str) -> Identity {
    let token = simtrack_server::domain::auth::create_token(store, user, 1).expect("token");
    auth.verify(store, Some(&format!("Bearer {token}")))
        .expect("verify")
}

fn ids(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect()
}

fn compare(store: &dyn StateStore) {
    populate(store);
    let auth = Auth::new(store).expect("auth");
    let who: Vec<Identity> = ["alice", "bob", "carol", "root"]
        .iter()
        .map(|u| identity(store, &auth, u))
        .collect();
    let filter_sets: Vec<Vec<&str>> = vec![
        vec![],
        vec!["has not tag.archived"],
        vec!["status == failed", "has not tag.archived"],
        vec!["has tag.g3"],
        vec!["has tag.q\"t"],
        vec!["has tag.ü", "has not tag.odd"],
        vec!["folder.path under /a"],
        vec!["folder.path under /a/"],
        vec!["folder.path under /"],
        vec!["folder == /a/b"],
        vec!["name icontains run"],
        vec!["name icontains ÉTÉ"],
        vec!["name icontains é"],
        vec!["name contains RUN", "status != completed"],
        vec!["name not contains run"],
        vec!["name == 123-4"],
        vec!["name == 123"],
        vec!["name > sweep"],
        vec!["name <= RUN-2"],
        vec!["description exists"],
        vec!["description not exists"],
        vec!["description != case 1"],
        vec!["description contains 3"],
        vec!["user == self"],
        vec!["user != self"],
        vec!["user == bob"],
        vec!["starred"],
        vec!["metadata.re > 500"],
        vec!["metadata.solver == gmres", "has not tag.archived"],
        vec!["created < 1d"],
        vec!["alert.status == critical"],
    ];
    let exprs = [
        "status == running OR (folder.path under /a AND NOT has tag.even)",
        "NOT (name icontains run) AND starred",
        "has tag.g1 OR metadata.i > 100",
        "NOT metadata.i > 100",
        "(status == lost OR status == created) NOT has tag.archived",
    ];
    let sorts = [
        r#"[{"id": "created", "desc": true}]"#,
        r#"[{"id": "created", "desc": false}]"#,
        r#"[{"id": "metadata.re", "desc": false}]"#,
        r#"[{"id": "metadata.re", "desc": true}]"#,
        r#"[{"id": "metadata.nested.b", "desc": true}, {"id": "name", "desc": false}]"#,
        r#"[{"id": "metadata.one", "desc": false}]"#,
        r#"[{"id": "metadata.two", "desc": false}]"#,
        r#"[{"id": "metadata.missing", "desc": true}]"#,
        r#"[{"id": "name", "desc": false}]"#,
        r#"[{"id": "status", "desc": true}, {"id": "folder.path", "desc": false}]"#,
        r#"[{"id": "description", "desc": false}]"#,
        r#"[{"id": "description", "desc": true}]"#,
        r#"[{"id": "starred", "desc": true}]"#,
        r#"[{"id": "endtime", "desc": false}]"#,
        r#"[{"id": "started", "desc": true}]"#,
        r#"[{"id": "user", "desc": false}]"#,
        r#"[{"id": "metrics.loss.last", "desc": false}]"#,
        r#"[{"id": "metrics.loss.max", "desc": true}]"#,
        r#"[{"id": "metrics.loss.count", "desc": true}]"#,
        r#"[{"id": "tags", "desc": false}]"#,
    ];
    // Keys are split at dots, and otherwise taken as they are.
    let odd_key = json!([{"id": "metadata.q\"k\\.x.y", "desc": true}]).to_string();
    let sorts: Vec<&str> = sorts.iter().copied().chain([odd_key.as_str()]).collect();
    let pages = [(0, 25), (20, 7), (0, 1000), (240, 50)];
    let mut queries: Vec<(Vec<filters::Filter>, &str)> = Vec::new();
    for fs in &filter_sets {
        let parsed = filters::parse_all(&fs.iter().map(|f| f.to_string()).collect::<Vec<_>>())
            .expect("filters");
        queries.push((parsed, sorts[queries.len() % sorts.len()]));
    }
    for e in exprs {
        queries.push((
            vec![filters::parse_expr(e).expect("expression")],
            sorts[queries.len() % sorts.len()],
        ));
    }
    for s in &sorts {
        queries.push((
            filters::parse_all(&["has not tag.archived".to_owned()]).expect("filter"),
            s,
        ));
    }
    // Each caller's queries on a thread of their own: the store serves
    // concurrent readers, and the test's time is mostly round trips.
    let compared: usize = std::thread::scope(|s| {
        let threads: Vec<_> = who
            .iter()
            .map(|w| s.spawn(|| compare_for(store, w, &queries, &pages)))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a caller's comparisons"))
            .sum()
    });
    assert!(compared > 500);
}

/// Compares every query and page as `w` asks them; the number compared.
fn compare_for(
    store: &dyn StateStore,
    w: &Identity,
    queries: &[(Vec<filters::Filter>, &str)],
    pages: &[(usize, usize)],
) -> usize {
    let mut compared = 0;
    let mut seen_total = 0;
    for (fs, sort) in queries {
        for &(start, count) in pages {
            let q = Query {
                filters: fs.clone(),
                sorting: runs::parse_sorting(Some(sort)).expect("sorting"),
                start,
                count,
                metrics: None,
            };
            let (fast, slow) = read(store, |tx| {
                let scoped = Scoped::new(tx, w);
                Ok((
                    runs::list(&scoped, &q, &w.user)?,
                    runs::list_scan(&scoped, &q, &w.user, None)?,
                ))
            })
            .expect("list");
            assert_eq!(
                (ids(&fast), &fast["count"]),
                (ids(&slow), &slow["count"]),
                "{} with {:?} sorted {sort}, page {start}+{count}",
                w.user,
                fs
            );
            compared += 1;
            if fs.is_empty() && count == 1000 {
                seen_total = fast["count"].as_u64().expect("count");
            }
        }
    }
    // What each caller may see, counted independently of both engines.
    let expected = read(store, |tx| {
        let all = tx.run_scan(&Default::default())?;
        Ok(all
            .iter()
            .filter(|r| {
                let vis: Value = serde_json::from_str(&r.visibility).unwrap_or(Value::Null);
                let group_of = |u: &str| USERS.iter().find(|x| x.0 == u).and_then(|x| x.1);
                w.admin
                    || r.user == w.user
                    || vis["public"] == json!(true)
                    || vis["users"]
                        .as_array()
                        .is_some_and(|a| a.contains(&json!(w.user)))
                    || (vis["tenant"] == json!(true)
                        && group_of(&r.user).is_some()
                        && group_of(&r.user) == w.group.as_deref())
            })
            .count() as u64)
    })
    .expect("scan");
    assert_eq!(seen_total, expected, "runs {} sees", w.user);
    if !w.admin {
        assert!(expected < 250, "{} sees every run", w.user);
    }
    compared
}

#[test]
fn sql_run_queries_answer_as_the_scan_does_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend =
        simtrack_server::storage::open_embedded(&dir.path().join("store")).expect("store");
    compare(&*backend.state);
}

#[test]
fn sql_run_queries_answer_as_the_scan_does_on_postgres() {
    let Some(_) = common::shared_pg() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let database = common::fresh_database(dir.path());
    let (_rt, store) = common::open_pg(&database);
    let store: Arc<dyn StateStore> = Arc::new(store);
    compare(&*store);
}

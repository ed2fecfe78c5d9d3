//! UI-only endpoints, beside the Simvue API: who am I (sign-in check),
//! minting a token for "Create new run", the runs table's query, and the
//! detail of a zoomed chart.

use axum::extract::State;
use serde_json::{Value, json};

use crate::domain::filters;
use crate::http::{
    ApiError, ApiResult, AppState, Caller, JsonObject, Params, blocking, check_name,
};
use crate::storage::sqlite::Reply;
use crate::storage::sqlite::metrics::{self as mstore, Axis, Point};

/// Longest lifetime a UI-minted token may ask for.
pub const MAX_TOKEN_DAYS: u32 = 3650;

/// `GET /api/ui/whoami` → `{"user", "version"}` (401 without a valid token).
pub async fn whoami(caller: Caller) -> ApiResult {
    Ok(Reply::ok(json!({
        "user": caller.0.user,
        "version": env!("CARGO_PKG_VERSION"),
    })))
}

/// `POST /api/ui/tokens` `{"name"?, "days"?}` → `{"token", "name", "days"}`.
/// Only a signed-in caller may mint; the new token is named after the
/// caller unless a name is given (runs show it as their user).
pub async fn create_token(
    State(st): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let name = match body.get("name") {
        None | Some(Value::Null) => caller.0.user.clone(),
        Some(Value::String(s)) if s.trim().is_empty() => caller.0.user.clone(),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(_) => return Err(ApiError::unprocessable("'name' must be a string")),
    };
    check_name("token name", &name, crate::http::runs::MAX_NAME)?;
    let days = match body.get("days") {
        None | Some(Value::Null) => 365,
        Some(v) => v
            .as_u64()
            .filter(|d| (1..=u64::from(MAX_TOKEN_DAYS)).contains(d))
            .ok_or_else(|| {
                ApiError::unprocessable(format!(
                    "'days' must be an integer from 1 to {MAX_TOKEN_DAYS}"
                ))
            })? as u32,
    };
    blocking(move || {
        let token = crate::domain::auth::create_token(&st.store, &name, days)?;
        Ok(Reply::ok(
            json!({ "token": token, "name": name, "days": days }),
        ))
    })
    .await
}

/// Filter prefixes the light scan of [`runs`] can answer; anything else
/// goes to the general `GET /api/runs`.
const LIGHT_FILTERS: [&str; 10] = [
    "status ",
    "name ",
    "folder.path ",
    "folder ",
    "has tag.",
    "has not tag.",
    "metadata.",
    "user ",
    "description ",
    "starred",
];

/// Sort keys the light scan can order by, with their column.
fn sort_column(key: &str) -> Option<&'static str> {
    Some(match key {
        "created" => "created",
        "name" => "name",
        "status" => "status",
        "folder" | "folder.path" => "folder",
        _ => return None,
    })
}

/// `GET /api/ui/runs?filters&start&count&sorting` → `{data, count}`: the
/// runs table's query. Same filters, sorting and answer as `GET /api/runs`,
/// but the scan reads only the columns a run's name, folder, status, tags,
/// metadata and user need (no system information, alerts, metrics or
/// timestamps to format), and full documents are built only for the rows
/// of the page. A query it cannot answer this way goes to `GET /api/runs`.
pub async fn runs(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let raw = q.list("filters")?;
    let fs = filters::parse_all(&raw)?;
    let start = q.usize("start")?.unwrap_or(0);
    let count = q.usize("count")?.unwrap_or(100);
    let sorting: Vec<(String, bool)> = match q.get("sorting") {
        None | Some("") => vec![("created".into(), false)],
        Some(s) => serde_json::from_str::<Vec<Value>>(s)
            .map_err(|_| {
                ApiError::bad_request("'sorting' must be a JSON list of {\"id\", \"desc\"}")
            })?
            .iter()
            .filter_map(|v| {
                Some((
                    v.get("id")?.as_str()?.to_owned(),
                    v.get("desc").and_then(Value::as_bool).unwrap_or(false),
                ))
            })
            .collect(),
    };
    let light = raw
        .iter()
        .all(|f| LIGHT_FILTERS.iter().any(|p| f.trim_start().starts_with(p)));
    let order = match sorting.as_slice() {
        [] => Some(("created", false)),
        [(key, desc)] => sort_column(key).map(|c| (c, *desc)),
        _ => None,
    };
    let (Some((column, desc)), true) = (order, light) else {
        return crate::http::runs::list(State(st), caller, Params(q.0)).await;
    };
    let dir = if desc { "DESC" } else { "ASC" };
    // Parsing JSON columns is most of a scan's cost: only when read.
    let reads = |prefix: &str| raw.iter().any(|f| f.trim_start().starts_with(prefix));
    let (need_tags, need_metadata) = (reads("has "), reads("metadata."));
    blocking(move || {
        st.store.read(|c| {
            let (total, ids): (usize, Vec<String>) = if fs.is_empty() {
                let total: i64 = c
                    .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
                    .map_err(ApiError::db)?;
                let mut s = c
                    .prepare_cached(&format!(
                        "SELECT id FROM runs ORDER BY {column} {dir}, rowid LIMIT ?1 OFFSET ?2"
                    ))
                    .map_err(ApiError::db)?;
                let ids = s
                    .query_map(
                        rusqlite::params![
                            i64::try_from(count).unwrap_or(i64::MAX),
                            i64::try_from(start).unwrap_or(i64::MAX)
                        ],
                        |r| r.get(0),
                    )
                    .and_then(|r| r.collect())
                    .map_err(ApiError::db)?;
                (total as usize, ids)
            } else {
                let mut s = c
                    .prepare_cached(&format!(
                        "SELECT id, name, folder, status, description, tags, metadata, user, starred
                         FROM runs ORDER BY {column} {dir}, rowid"
                    ))
                    .map_err(ApiError::db)?;
                let mut rows = s.query([]).map_err(ApiError::db)?;
                let mut matched = Vec::new();
                while let Some(r) = rows.next().map_err(ApiError::db)? {
                    let text = |i: usize| -> Result<String, ApiError> {
                        r.get::<_, Option<String>>(i)
                            .map(Option::unwrap_or_default)
                            .map_err(ApiError::db)
                    };
                    let doc = json!({
                        "name": text(1)?,
                        "folder": text(2)?,
                        "status": text(3)?,
                        "description": r.get::<_, Option<String>>(4).map_err(ApiError::db)?,
                        "tags": if need_tags { serde_json::from_str::<Value>(&text(5)?).unwrap_or(json!([])) } else { json!([]) },
                        "metadata": if need_metadata { serde_json::from_str::<Value>(&text(6)?).unwrap_or(json!({})) } else { json!({}) },
                        "user": text(7)?,
                        "starred": r.get::<_, i64>(8).map_err(ApiError::db)? != 0,
                    });
                    if filters::all(&fs, &doc, &caller.0.user) {
                        matched.push(text(0)?);
                    }
                }
                let total = matched.len();
                (total, matched.into_iter().skip(start).take(count).collect())
            };
            let data = ids
                .iter()
                .map(|id| crate::http::runs::load(c, id))
                .collect::<Result<Vec<Value>, ApiError>>()?;
            Ok(Reply::ok(json!({ "data": data, "count": total })))
        })
    })
    .await
}

/// Most points [`metric_range`] answers with.
pub const MAX_RANGE_POINTS: usize = 20_000;

/// `GET /api/ui/metrics/range?run&metric&xaxis&min&max&max_points` →
/// `{"x": [...], "y": [...]}`: one series between `min` and `max` on the
/// x axis (steps, seconds, or microseconds since the epoch), with one point
/// either side so lines reach the edges, downsampled to at most
/// `max_points` keeping each bucket's minimum and maximum. This is what a
/// zoomed chart shows: detail the whole-series read had averaged away.
/// Non-finite values are `null`.
pub async fn metric_range(State(st): State<AppState>, _: Caller, q: Params) -> ApiResult {
    let need = |k: &str| {
        q.get(k)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ApiError::unprocessable(format!("query parameter '{k}' is required")))
    };
    let (run, metric) = (need("run")?, need("metric")?);
    let axis = Axis::parse(q.get("xaxis").unwrap_or("step"))
        .ok_or_else(|| ApiError::unprocessable("'xaxis' must be step, time or timestamp"))?;
    let bound = |k: &str, d: f64| -> Result<f64, ApiError> {
        match q.get(k) {
            None | Some("") => Ok(d),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| !x.is_nan())
                .ok_or_else(|| ApiError::bad_request(format!("'{k}' must be a number"))),
        }
    };
    let (min, max) = (
        bound("min", f64::NEG_INFINITY)?,
        bound("max", f64::INFINITY)?,
    );
    let max_points = q
        .usize("max_points")?
        .unwrap_or(1000)
        .clamp(2, MAX_RANGE_POINTS);
    blocking(move || {
        st.store.read(|c| {
            crate::http::runs::status_of(c, &run)?;
            let pts = match mstore::series_id(c, &run, &metric)? {
                Some(series) => mstore::read_range(c, series, axis, min, max)?,
                None => Vec::new(),
            };
            let lo = pts.partition_point(|p| axis.x(p) < min).saturating_sub(1);
            let hi = (pts.partition_point(|p| axis.x(p) <= max) + 1).min(pts.len());
            let slice = if lo < hi { &pts[lo..hi] } else { &[][..] };
            let shown = if slice.len() <= max_points {
                slice.to_vec()
            } else {
                min_max_buckets(slice, axis, max_points / 2)
            };
            let x: Vec<f64> = shown.iter().map(|p| axis.x(p)).collect();
            let y: Vec<Option<f64>> = shown
                .iter()
                .map(|p| p.value.is_finite().then_some(p.value))
                .collect();
            Ok(Reply::ok(json!({ "x": x, "y": y })))
        })
    })
    .await
}

/// Keeps the lowest and highest value of each of `buckets` equal x ranges
/// of `pts` (ordered by `axis`), in x order.
fn min_max_buckets(pts: &[Point], axis: Axis, buckets: usize) -> Vec<Point> {
    let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
        return Vec::new();
    };
    let (x0, span) = (axis.x(first), axis.x(last) - axis.x(first));
    let mut out = Vec::with_capacity(buckets * 2);
    let mut i = 0;
    for b in 0..buckets {
        let end = if b + 1 == buckets || span <= 0.0 {
            pts.len()
        } else {
            let edge = x0 + span * (b + 1) as f64 / buckets as f64;
            i + pts[i..].partition_point(|p| axis.x(p) < edge)
        };
        let bucket = &pts[i..end];
        i = end;
        let finite = || bucket.iter().filter(|p| !p.value.is_nan());
        let (Some(lo), Some(hi)) = (
            finite().min_by(|a, b| a.value.total_cmp(&b.value)),
            finite().max_by(|a, b| a.value.total_cmp(&b.value)),
        ) else {
            continue;
        };
        match axis.x(lo).total_cmp(&axis.x(hi)) {
            std::cmp::Ordering::Equal => out.push(*lo),
            std::cmp::Ordering::Less => out.extend([*lo, *hi]),
            std::cmp::Ordering::Greater => out.extend([*hi, *lo]),
        }
        if i >= pts.len() {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use axum::http::HeaderMap;

    use super::*;
    use crate::config::ServerConfig;
    use crate::domain::auth::Auth;
    use crate::storage::sqlite::Store;

    fn setup() -> (tempfile::TempDir, AppState, Caller, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let token = crate::domain::auth::create_token(&store, "tester", 1).unwrap();
        let auth = Auth::new(&store).unwrap();
        let me = auth
            .verify(&store, Some(&format!("Bearer {token}")))
            .unwrap();
        let st = AppState {
            store: Arc::new(store),
            auth: Arc::new(auth),
            cfg: Arc::new(ServerConfig::new(dir.path().to_path_buf())),
        };
        (dir, st, Caller(me), token)
    }

    fn params(kv: &[(&str, &str)]) -> Params {
        Params(
            kv.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>(),
        )
    }

    fn body(r: ApiResult) -> Value {
        serde_json::from_str(&r.unwrap().body).unwrap()
    }

    #[tokio::test]
    async fn ui_runs_answers_exactly_what_api_runs_answers() {
        let (_d, st, me, _) = setup();
        const STATUSES: [&str; 4] = ["completed", "failed", "terminated", "lost"];
        for i in 0..40 {
            let run = json!({
                "name": format!("run-{:02}", (i * 7) % 40),
                "folder": format!("/f{}", i % 3),
                "status": STATUSES[i % 4],
                "tags": [format!("t{}", i % 5), "all"],
                "metadata": {"nx": 32 << (i % 3), "solver": if i % 2 == 0 { "a" } else { "b" }},
            });
            let Value::Object(m) = run else {
                unreachable!()
            };
            crate::http::runs::create(
                State(st.clone()),
                me.clone(),
                HeaderMap::new(),
                JsonObject(m),
            )
            .await
            .unwrap();
        }
        let cases: &[&[(&str, &str)]] = &[
            &[],
            &[("count", "7"), ("start", "5")],
            &[("filters", r#"["status == failed"]"#)],
            &[
                ("filters", r#"["has tag.t3", "metadata.nx > 40"]"#),
                ("count", "3"),
            ],
            &[(
                "filters",
                r#"["metadata.solver == a", "folder.path == /f1"]"#,
            )],
            &[
                ("filters", r#"["name contains 1"]"#),
                ("sorting", r#"[{"id": "name", "desc": true}]"#),
            ],
            &[
                ("sorting", r#"[{"id": "status", "desc": false}]"#),
                ("start", "10"),
                ("count", "10"),
            ],
            &[("sorting", r#"[{"id": "folder.path", "desc": true}]"#)],
            // not answerable by the light scan: handed to /api/runs
            &[("filters", r#"["system.hostname exists"]"#)],
        ];
        for case in cases {
            let ui = body(runs(State(st.clone()), me.clone(), params(case)).await);
            let api =
                body(crate::http::runs::list(State(st.clone()), me.clone(), params(case)).await);
            assert_eq!(ui, api, "{case:?}");
            assert!(ui["count"].as_u64().unwrap() > 0 || case.iter().any(|(k, _)| *k == "filters"));
        }
        let bad = runs(
            State(st.clone()),
            me,
            params(&[("filters", r#"["nonsense"]"#)]),
        )
        .await;
        assert!(bad.is_err());
    }

    #[tokio::test]
    async fn minted_tokens_authenticate_and_carry_their_name() {
        let (_d, st, me, _) = setup();
        assert_eq!(body(whoami(me.clone()).await)["user"], "tester");
        let mut m = serde_json::Map::new();
        m.insert("name".into(), json!("ci-job"));
        m.insert("days".into(), json!(7));
        let made = body(create_token(State(st.clone()), me.clone(), JsonObject(m)).await);
        assert_eq!(made["name"], "ci-job");
        let tok = made["token"].as_str().unwrap();
        let who = st
            .auth
            .verify(&st.store, Some(&format!("Bearer {tok}")))
            .unwrap();
        assert_eq!(who.user, "ci-job");
        // Unnamed tokens are named after the caller.
        let made = body(
            create_token(
                State(st.clone()),
                me.clone(),
                JsonObject(Default::default()),
            )
            .await,
        );
        assert_eq!(made["name"], "tester");
        for bad in [json!(0), json!(4000), json!("7"), json!(-1)] {
            let mut m = serde_json::Map::new();
            m.insert("days".into(), bad.clone());
            let err = create_token(State(st.clone()), me.clone(), JsonObject(m))
                .await
                .unwrap_err();
            assert_eq!(
                err.status,
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "{bad}"
            );
        }
        let mut m = serde_json::Map::new();
        m.insert("name".into(), json!("x\ny"));
        assert!(
            create_token(State(st.clone()), me, JsonObject(m))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_zoomed_range_keeps_its_detail_and_extremes() {
        let (_d, st, me, _) = setup();
        let mut m = serde_json::Map::new();
        m.insert("name".into(), json!("zoom"));
        let id = body(
            crate::http::runs::create(
                State(st.clone()),
                me.clone(),
                HeaderMap::new(),
                JsonObject(m),
            )
            .await,
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let pts: Vec<Point> = (0..100_000)
            .map(|i| Point {
                step: i,
                time: i as f64 * 0.01,
                ts: 1_700_000_000_000_000 + i * 10_000,
                value: if i == 50_123 {
                    1e9
                } else if i == 50_321 {
                    f64::NAN
                } else {
                    (i % 100) as f64
                },
            })
            .collect();
        st.store
            .write_plain(|tx| mstore::append(tx, &id, "m", &pts))
            .unwrap();
        let q = |kv: &[(&str, &str)]| {
            let mut all = vec![("run", id.as_str()), ("metric", "m")];
            all.extend_from_slice(kv);
            params(&all)
        };
        // Within a range with room for every point: exactly those points,
        // plus one either side.
        let r = body(
            metric_range(
                State(st.clone()),
                me.clone(),
                q(&[("min", "50100"), ("max", "50400"), ("max_points", "1000")]),
            )
            .await,
        );
        let x: Vec<f64> = serde_json::from_value(r["x"].clone()).unwrap();
        assert_eq!(x.first(), Some(&50_099.0));
        assert_eq!(x.last(), Some(&50_401.0));
        assert_eq!(x.len(), 303);
        assert_eq!(r["y"][(50_123 - 50_099) as usize], 1e9);
        assert!(r["y"][(50_321 - 50_099) as usize].is_null());
        // Downsampled: at most max_points, ordered, extremes kept.
        let r = body(
            metric_range(
                State(st.clone()),
                me.clone(),
                q(&[("min", "40000"), ("max", "60000"), ("max_points", "200")]),
            )
            .await,
        );
        let x: Vec<f64> = serde_json::from_value(r["x"].clone()).unwrap();
        let y: Vec<Option<f64>> = serde_json::from_value(r["y"].clone()).unwrap();
        assert!(x.len() <= 200 && x.len() > 100, "{}", x.len());
        assert!(x.windows(2).all(|w| w[0] <= w[1]));
        assert!(y.contains(&Some(1e9)) && y.contains(&Some(0.0)) && y.contains(&Some(99.0)));
        // Other axes use their own units.
        let r = body(
            metric_range(
                State(st.clone()),
                me.clone(),
                q(&[("xaxis", "time"), ("min", "1.0"), ("max", "2.0")]),
            )
            .await,
        );
        assert_eq!(r["x"].as_array().unwrap().len(), 103);
        let r = body(
            metric_range(
                State(st.clone()),
                me.clone(),
                q(&[
                    ("xaxis", "timestamp"),
                    ("min", "1700000000000000"),
                    ("max", "1700000000100000"),
                ]),
            )
            .await,
        );
        assert_eq!(r["x"].as_array().unwrap().len(), 12);
        // Unknown metric: empty; unknown run: 404.
        let r = body(
            metric_range(
                State(st.clone()),
                me.clone(),
                params(&[("run", id.as_str()), ("metric", "nope")]),
            )
            .await,
        );
        assert_eq!(r["x"], json!([]));
        let err = metric_range(
            State(st.clone()),
            me,
            params(&[("run", "nope"), ("metric", "m")]),
        )
        .await
        .unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::NOT_FOUND);
    }
}

//! `/api/runs`: create, read, update (partial), delete, heartbeat, abort.

use crate::domain::filters;
use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Map, Value, json};

use super::{
    ApiError, ApiResult, AppState, Caller, JsonObject, Params, blocking, check_name, idem,
};
use crate::storage::sqlite::Reply;
use crate::util::{fmt_ts, new_id, now_us, parse_ts};

pub use simtrack::model::MAX_NAME_BYTES as MAX_NAME;
use simtrack::model::{
    DEFAULT_HEARTBEAT_TIMEOUT_SECS as DEFAULT_HEARTBEAT_TIMEOUT,
    MAX_METADATA_BYTES as MAX_METADATA, RunStatus,
};

fn is_terminal(s: &str) -> bool {
    RunStatus::from_name(s).is_some_and(RunStatus::is_terminal)
}

fn opt_ts(v: Option<i64>) -> Value {
    v.map_or(Value::Null, |t| Value::String(fmt_ts(t)))
}

fn parse_json(s: &str, default: Value) -> Value {
    serde_json::from_str(s).unwrap_or(default)
}

/// The run document without `alerts` and `metrics`.
fn base_doc(r: &Row) -> rusqlite::Result<Value> {
    let created: i64 = r.get("created")?;
    let started: Option<i64> = r.get("started")?;
    let endtime: Option<i64> = r.get("endtime")?;
    let runtime = started.map(|s| {
        let d = (endtime.unwrap_or_else(now_us) - s).max(0);
        format!(
            "{:02}:{:02}:{:02}.{:06}",
            d / 3_600_000_000,
            (d / 60_000_000) % 60,
            (d / 1_000_000) % 60,
            d % 1_000_000
        )
    });
    Ok(json!({
        "id": r.get::<_, String>("id")?,
        "name": r.get::<_, String>("name")?,
        "folder": r.get::<_, String>("folder")?,
        "status": r.get::<_, String>("status")?,
        "description": r.get::<_, Option<String>>("description")?,
        "tags": parse_json(&r.get::<_, String>("tags")?, json!([])),
        "metadata": parse_json(&r.get::<_, String>("metadata")?, json!({})),
        "system": parse_json(&r.get::<_, String>("system")?, json!({})),
        "created": fmt_ts(created),
        "started": opt_ts(started),
        "endtime": opt_ts(endtime),
        "modified": fmt_ts(r.get("modified")?),
        "runtime": runtime,
        "ttl": r.get::<_, Option<i64>>("ttl")?,
        "heartbeat_timeout": r.get::<_, Option<f64>>("heartbeat_timeout")?.map(|t| if t.fract() == 0.0 { json!(t as i64) } else { json!(t) }),
        "notifications": parse_json(&r.get::<_, String>("notifications")?, json!({"state": "none"})),
        "visibility": parse_json(&r.get::<_, String>("visibility")?, json!({"tenant": false, "public": false, "users": []})),
        "user": r.get::<_, String>("user")?,
        "last_heartbeat": fmt_ts(r.get("last_seen")?),
        "abort_requested": r.get::<_, i64>("abort_requested")? != 0,
        "starred": r.get::<_, i64>("starred")? != 0,
    }))
}

/// Alert attachments of `run_id` as the run document lists them.
pub fn run_alerts(c: &Connection, run_id: &str) -> Result<Vec<Value>, ApiError> {
    let mut s = c
        .prepare_cached(
            "SELECT ra.status, a.* FROM run_alerts ra JOIN alerts a ON a.id = ra.alert_id
             WHERE ra.run_id = ?1 ORDER BY a.created",
        )
        .map_err(ApiError::db)?;
    s.query_map(params![run_id], |r| {
        Ok(json!({ "alert": super::alerts::doc(r)?, "status": r.get::<_, String>(0)? }))
    })
    .and_then(|r| r.collect())
    .map_err(ApiError::db)
}

fn run_metrics(c: &Connection, run_id: &str) -> Result<Value, ApiError> {
    let mut s = c
        .prepare_cached("SELECT name, count, vmin, vmax, last, last_step FROM metric_series WHERE run_id = ?1 ORDER BY name")
        .map_err(ApiError::db)?;
    let rows: Vec<(String, Value)> = s
        .query_map(params![run_id], |r| {
            Ok((
                r.get(0)?,
                json!({"count": r.get::<_, i64>(1)?, "min": r.get::<_, Option<f64>>(2)?,
                       "max": r.get::<_, Option<f64>>(3)?, "last": r.get::<_, Option<f64>>(4)?,
                       "step": r.get::<_, Option<i64>>(5)?}),
            ))
        })
        .and_then(|r| r.collect())
        .map_err(ApiError::db)?;
    Ok(Value::Object(rows.into_iter().collect()))
}

/// The full run document, or 404.
pub fn load(c: &Connection, id: &str) -> Result<Value, ApiError> {
    let mut d = c
        .query_row("SELECT * FROM runs WHERE id = ?1", params![id], base_doc)
        .optional()
        .map_err(ApiError::db)?
        .ok_or_else(|| ApiError::not_found(format!("run {id} not found")))?;
    d["alerts"] = Value::Array(run_alerts(c, id)?);
    d["metrics"] = run_metrics(c, id)?;
    Ok(d)
}

/// 404 unless run `id` exists; its status otherwise.
pub fn status_of(c: &Connection, id: &str) -> Result<String, ApiError> {
    c.prepare_cached("SELECT status FROM runs WHERE id = ?1")
        .and_then(|mut s| s.query_row(params![id], |r| r.get(0)).optional())
        .map_err(ApiError::db)?
        .ok_or_else(|| ApiError::not_found(format!("run {id} not found")))
}

fn string_list(v: &Value, what: &str) -> Result<Vec<String>, ApiError> {
    let a = v
        .as_array()
        .ok_or_else(|| ApiError::unprocessable(format!("'{what}' must be a list of strings")))?;
    a.iter()
        .map(|t| {
            let s = t.as_str().ok_or_else(|| {
                ApiError::unprocessable(format!("'{what}' must be a list of strings"))
            })?;
            check_name(what, s, MAX_NAME)?;
            Ok(s.to_owned())
        })
        .collect()
}

fn object_text(v: &Value, what: &str) -> Result<String, ApiError> {
    if !v.is_object() {
        return Err(ApiError::unprocessable(format!(
            "'{what}' must be an object"
        )));
    }
    let s = v.to_string();
    if s.len() > MAX_METADATA {
        return Err(ApiError::unprocessable(format!(
            "'{what}' is larger than {MAX_METADATA} bytes"
        )));
    }
    Ok(s)
}

fn timestamp_field(body: &Map<String, Value>, key: &str) -> Result<Option<i64>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_ts(s).map(Some).ok_or_else(|| {
            ApiError::unprocessable(format!(
                "'{key}' must be a timestamp like 2024-01-02T03:04:05.000000"
            ))
        }),
        Some(_) => Err(ApiError::unprocessable(format!(
            "'{key}' must be a timestamp string"
        ))),
    }
}

fn check_status(s: &Value) -> Result<String, ApiError> {
    match s.as_str() {
        Some(s) if RunStatus::from_name(s).is_some() => Ok(s.to_owned()),
        _ => Err(ApiError::unprocessable(format!(
            "'status' must be one of {}",
            simtrack::model::RUN_STATUSES
                .map(RunStatus::as_str)
                .join(", ")
        ))),
    }
}

/// `POST /api/runs` → `{"id"}`.
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let id = new_id();
    let name = match body.get("name") {
        None | Some(Value::Null) => format!("run-{}", id[..8].to_ascii_lowercase()),
        Some(Value::String(n)) => {
            check_name("run name", n, MAX_NAME)?;
            n.clone()
        }
        Some(_) => return Err(ApiError::unprocessable("'name' must be a string")),
    };
    let folder = match body.get("folder") {
        None | Some(Value::Null) => "/".to_owned(),
        Some(Value::String(f)) => super::folders::normalise(f)?,
        Some(_) => return Err(ApiError::unprocessable("'folder' must be a string")),
    };
    let status = match body.get("status") {
        None | Some(Value::Null) => "running".to_owned(),
        Some(s) => check_status(s)?,
    };
    let description = match body.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) if d.len() <= MAX_METADATA => Some(d.clone()),
        Some(_) => return Err(ApiError::unprocessable("'description' must be a string")),
    };
    let tags = match body.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(t) => string_list(t, "tags")?,
    };
    let obj = |k: &str, d: Value| -> Result<String, ApiError> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(d.to_string()),
            Some(v) => object_text(v, k),
        }
    };
    let metadata = obj("metadata", json!({}))?;
    let system = obj("system", json!({}))?;
    let notifications = obj("notifications", json!({"state": "none"}))?;
    let visibility = obj(
        "visibility",
        json!({"tenant": false, "public": false, "users": []}),
    )?;
    let ttl = match body.get("ttl") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| ApiError::unprocessable("'ttl' must be an integer"))?,
        ),
    };
    let heartbeat_timeout = match body.get("heartbeat_timeout") {
        None => Some(DEFAULT_HEARTBEAT_TIMEOUT),
        Some(Value::Null) => None,
        Some(v) => Some(v.as_f64().filter(|t| *t > 0.0).ok_or_else(|| {
            ApiError::unprocessable("'heartbeat_timeout' must be a positive number")
        })?),
    };
    let now = now_us();
    let created = timestamp_field(&body, "created")?.unwrap_or(now);
    let started = timestamp_field(&body, "started")?.or((status == "running").then_some(now));
    let endtime = timestamp_field(&body, "endtime")?.or(is_terminal(&status).then_some(now));
    let alerts = match body.get("alerts") {
        None | Some(Value::Null) => Vec::new(),
        Some(a) => string_list(a, "alerts")?,
    };
    blocking(move || {
        st.store.write(&idem, |tx| {
            super::folders::ensure(tx, &folder)?;
            tx.execute(
                "INSERT INTO runs (id, name, folder, status, description, tags, metadata, system, created,
                 started, endtime, modified, ttl, heartbeat_timeout, notifications, visibility, user, last_seen)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)",
                params![
                    id, name, folder, status, description, Value::from(tags).to_string(), metadata, system,
                    created, started, endtime, now, ttl, heartbeat_timeout, notifications, visibility,
                    caller.0.user, now
                ],
            )
            .map_err(ApiError::db)?;
            set_alerts(tx, &id, &alerts)?;
            Ok(Reply::ok(json!({ "id": id, "name": name })))
        })
    })
    .await
}

/// Replaces the set of alerts attached to a run, keeping the state of
/// those that stay.
fn set_alerts(tx: &Connection, run: &str, ids: &[String]) -> Result<(), ApiError> {
    for a in ids {
        let exists: bool = tx
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM alerts WHERE id = ?1)",
                params![a],
                |r| r.get(0),
            )
            .map_err(ApiError::db)?;
        if !exists {
            return Err(ApiError::unprocessable(format!("alert {a} does not exist")));
        }
        tx.execute(
            "INSERT OR IGNORE INTO run_alerts (run_id, alert_id) VALUES (?1, ?2)",
            params![run, a],
        )
        .map_err(ApiError::db)?;
    }
    let keep = Value::from(ids.to_vec()).to_string();
    tx.execute(
        "DELETE FROM run_alerts WHERE run_id = ?1 AND alert_id NOT IN (SELECT value FROM json_each(?2))",
        params![run, keep],
    )
    .map_err(ApiError::db)?;
    Ok(())
}

/// `GET /api/runs/{id}`.
pub async fn get_one(State(st): State<AppState>, _: Caller, Path(id): Path<String>) -> ApiResult {
    blocking(move || st.store.read(|c| load(c, &id).map(Reply::ok))).await
}

/// `GET /api/runs?filters=[...]&start&count&sorting` → `{data, count}`.
pub async fn list(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let fs = filters::parse_all(&q.list("filters")?)?;
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
    // Only the fields a filter or sort key reads are built for every run;
    // the page's runs are then loaded whole.
    let reads = |prefix: &str| {
        fs.iter().any(|f| f.field().starts_with(prefix))
            || sorting.iter().any(|(k, _)| k.starts_with(prefix))
    };
    let (need_tags, need_alerts) = (reads("tags"), reads("alert"));
    // metadata.* and system.* values are extracted by SQLite (`->`), so a
    // large metadata document is never parsed whole for a list.
    let mut json_paths: Vec<String> = fs
        .iter()
        .map(|f| f.field().to_owned())
        .chain(sorting.iter().map(|(k, _)| k.clone()))
        .filter(|f| f.starts_with("metadata.") || f.starts_with("system."))
        .collect();
    json_paths.sort();
    json_paths.dedup();
    blocking(move || {
        st.store.read(|c| {
            let mut attached: HashMap<String, Vec<Value>> = HashMap::new();
            if need_alerts {
                let mut s = c
                    .prepare("SELECT ra.run_id, ra.status, a.* FROM run_alerts ra JOIN alerts a ON a.id = ra.alert_id")
                    .map_err(ApiError::db)?;
                let rows = s
                    .query_map([], |r| {
                        Ok((r.get::<_, String>(0)?, json!({"alert": super::alerts::doc(r)?, "status": r.get::<_, String>(1)?})))
                    })
                    .map_err(ApiError::db)?;
                for row in rows {
                    let (run, a) = row.map_err(ApiError::db)?;
                    attached.entry(run).or_default().push(a);
                }
            }
            let mut sql = String::from(
                "SELECT id, name, folder, status, description, created, started, endtime, modified, user,
                 starred, CASE WHEN ?1 THEN tags END",
            );
            let mut args: Vec<String> = Vec::new();
            for p in &json_paths {
                let (column, rest) = p.split_once('.').unwrap_or((p.as_str(), ""));
                let path: String = rest
                    .split('.')
                    .map(|seg| format!(".\"{}\"", seg.replace('"', "\\\"")))
                    .collect();
                args.push(format!("${path}"));
                sql.push_str(&format!(", {column} -> ?{}", args.len() + 1));
            }
            sql.push_str(" FROM runs");
            let mut s = c.prepare(&sql).map_err(ApiError::db)?;
            let mut bind: Vec<&dyn rusqlite::ToSql> = vec![&need_tags];
            bind.extend(args.iter().map(|a| a as &dyn rusqlite::ToSql));
            let mut docs: Vec<Value> = s
                .query_map(bind.as_slice(), |r| {
                    let mut d = json!({
                        "id": r.get::<_, String>(0)?,
                        "name": r.get::<_, String>(1)?,
                        "folder": r.get::<_, String>(2)?,
                        "status": r.get::<_, String>(3)?,
                        "description": r.get::<_, Option<String>>(4)?,
                        "created": fmt_ts(r.get(5)?),
                        "started": opt_ts(r.get(6)?),
                        "endtime": opt_ts(r.get(7)?),
                        "modified": fmt_ts(r.get(8)?),
                        "user": r.get::<_, String>(9)?,
                        "starred": r.get::<_, i64>(10)? != 0,
                    });
                    if let Some(text) = r.get::<_, Option<String>>(11)? {
                        d["tags"] = parse_json(&text, json!([]));
                    }
                    for (i, p) in json_paths.iter().enumerate() {
                        let Some(text) = r.get::<_, Option<String>>(12 + i)? else {
                            continue;
                        };
                        let mut slot = &mut d;
                        for seg in p.split('.') {
                            if !slot.is_object() {
                                *slot = json!({});
                            }
                            slot = &mut slot[seg];
                        }
                        *slot = parse_json(&text, Value::Null);
                    }
                    Ok(d)
                })
                .and_then(|r| r.collect())
                .map_err(ApiError::db)?;
            if need_alerts {
                for d in &mut docs {
                    let id = d["id"].as_str().unwrap_or_default().to_owned();
                    d["alerts"] = Value::Array(attached.remove(&id).unwrap_or_default());
                }
            }
            docs.retain(|d| filters::all(&fs, d, &caller.0.user));
            let key_of = |d: &Value| -> Vec<Value> {
                sorting
                    .iter()
                    .map(|(key, _)| {
                        let path = if key == "folder.path" { "folder" } else { key.as_str() };
                        path.split('.').try_fold(d, |v, k| v.get(k)).cloned().unwrap_or(Value::Null)
                    })
                    .collect()
            };
            let mut keyed: Vec<(Vec<Value>, String)> = docs
                .iter()
                .map(|d| (key_of(d), d["id"].as_str().unwrap_or_default().to_owned()))
                .collect();
            drop(docs);
            keyed.sort_by(|(a, _), (b, _)| {
                for ((va, vb), (_, desc)) in a.iter().zip(b).zip(&sorting) {
                    let ord = match (va, vb) {
                        (Value::Number(x), Value::Number(y)) => {
                            x.as_f64().unwrap_or(0.0).total_cmp(&y.as_f64().unwrap_or(0.0))
                        }
                        (Value::String(x), Value::String(y)) => x.cmp(y),
                        _ => va.to_string().cmp(&vb.to_string()),
                    };
                    let ord = if *desc { ord.reverse() } else { ord };
                    if ord.is_ne() {
                        return ord;
                    }
                }
                std::cmp::Ordering::Equal
            });
            let total = keyed.len();
            let data = keyed
                .iter()
                .skip(start)
                .take(count)
                .map(|(_, id)| load(c, id))
                .collect::<Result<Vec<Value>, ApiError>>()?;
            Ok(Reply::ok(json!({ "data": data, "count": total })))
        })
    })
    .await
}

/// Applies a partial update to a run (shared with offline sync paths).
fn apply_update(tx: &Connection, id: &str, body: &Map<String, Value>) -> Result<(), ApiError> {
    let current = status_of(tx, id)?;
    let now = now_us();
    for (k, v) in body {
        match k.as_str() {
            "status" => {
                let s = check_status(v)?;
                tx.execute("UPDATE runs SET status = ?2 WHERE id = ?1", params![id, s])
                    .map_err(ApiError::db)?;
                if is_terminal(&s) {
                    let end = timestamp_field(body, "endtime")?.unwrap_or(now);
                    tx.execute(
                        "UPDATE runs SET endtime = ?2 WHERE id = ?1",
                        params![id, end],
                    )
                    .map_err(ApiError::db)?;
                } else if s == "running" {
                    tx.execute(
                        "UPDATE runs SET started = coalesce(started, ?2), endtime = NULL, last_seen = ?2 WHERE id = ?1",
                        params![id, now],
                    )
                    .map_err(ApiError::db)?;
                }
                if s != current {
                    super::events::record(
                        tx,
                        id,
                        now,
                        "info",
                        &format!("[simtrack] run status changed from {current} to {s}"),
                    )?;
                }
            }
            "endtime" | "started" | "created" => {
                if let Some(t) = timestamp_field(body, k)? {
                    tx.execute(
                        &format!("UPDATE runs SET {k} = ?2 WHERE id = ?1"),
                        params![id, t],
                    )
                    .map_err(ApiError::db)?;
                }
            }
            "name" => {
                let n = v
                    .as_str()
                    .ok_or_else(|| ApiError::unprocessable("'name' must be a string"))?;
                check_name("run name", n, MAX_NAME)?;
                tx.execute("UPDATE runs SET name = ?2 WHERE id = ?1", params![id, n])
                    .map_err(ApiError::db)?;
            }
            "description" => {
                let d = match v {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    _ => return Err(ApiError::unprocessable("'description' must be a string")),
                };
                tx.execute(
                    "UPDATE runs SET description = ?2 WHERE id = ?1",
                    params![id, d],
                )
                .map_err(ApiError::db)?;
            }
            "folder" => {
                let f = super::folders::normalise(
                    v.as_str()
                        .ok_or_else(|| ApiError::unprocessable("'folder' must be a string"))?,
                )?;
                super::folders::ensure(tx, &f)?;
                tx.execute("UPDATE runs SET folder = ?2 WHERE id = ?1", params![id, f])
                    .map_err(ApiError::db)?;
            }
            "tags" => {
                let t = string_list(v, "tags")?;
                tx.execute(
                    "UPDATE runs SET tags = ?2 WHERE id = ?1",
                    params![id, Value::from(t).to_string()],
                )
                .map_err(ApiError::db)?;
            }
            "metadata" => {
                let Value::Object(new) = v else {
                    return Err(ApiError::unprocessable("'metadata' must be an object"));
                };
                let old: String = tx
                    .query_row(
                        "SELECT metadata FROM runs WHERE id = ?1",
                        params![id],
                        |r| r.get(0),
                    )
                    .map_err(ApiError::db)?;
                let mut merged = parse_json(&old, json!({}))
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                merged.extend(new.clone());
                let text = object_text(&Value::Object(merged), "metadata")?;
                tx.execute(
                    "UPDATE runs SET metadata = ?2 WHERE id = ?1",
                    params![id, text],
                )
                .map_err(ApiError::db)?;
            }
            "system" | "notifications" | "visibility" => {
                let text = object_text(v, k)?;
                tx.execute(
                    &format!("UPDATE runs SET {k} = ?2 WHERE id = ?1"),
                    params![id, text],
                )
                .map_err(ApiError::db)?;
            }
            "ttl" => {
                let t = if v.is_null() {
                    None
                } else {
                    Some(
                        v.as_i64()
                            .ok_or_else(|| ApiError::unprocessable("'ttl' must be an integer"))?,
                    )
                };
                tx.execute("UPDATE runs SET ttl = ?2 WHERE id = ?1", params![id, t])
                    .map_err(ApiError::db)?;
            }
            "heartbeat_timeout" => {
                let t = if v.is_null() {
                    None
                } else {
                    Some(v.as_f64().filter(|t| *t > 0.0).ok_or_else(|| {
                        ApiError::unprocessable("'heartbeat_timeout' must be a positive number")
                    })?)
                };
                tx.execute(
                    "UPDATE runs SET heartbeat_timeout = ?2 WHERE id = ?1",
                    params![id, t],
                )
                .map_err(ApiError::db)?;
            }
            "alerts" => set_alerts(tx, id, &string_list(v, "alerts")?)?,
            "starred" => {
                let s = v
                    .as_bool()
                    .ok_or_else(|| ApiError::unprocessable("'starred' must be a boolean"))?;
                tx.execute("UPDATE runs SET starred = ?2 WHERE id = ?1", params![id, s])
                    .map_err(ApiError::db)?;
            }
            _ => {}
        }
    }
    tx.execute(
        "UPDATE runs SET modified = ?2 WHERE id = ?1",
        params![id, now],
    )
    .map_err(ApiError::db)?;
    Ok(())
}

/// `PUT /api/runs/{id}` with only the changed keys (`metadata` merges,
/// `tags` and `alerts` replace, a terminal `status` sets `endtime`).
pub async fn update(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    blocking(move || {
        st.store.write(&idem, |tx| {
            apply_update(tx, &id, &body)?;
            Ok(Reply::ok(json!({ "id": id })))
        })
    })
    .await
}

/// Removes a run and everything recorded for it.
pub fn delete_run(tx: &Connection, id: &str) -> Result<(), ApiError> {
    for sql in [
        "DELETE FROM metric_points WHERE chunk_id IN (SELECT c.id FROM metric_chunks c JOIN metric_series s ON s.id = c.series_id WHERE s.run_id = ?1)",
        "DELETE FROM metric_chunks WHERE series_id IN (SELECT id FROM metric_series WHERE run_id = ?1)",
        "DELETE FROM metric_series WHERE run_id = ?1",
        "DELETE FROM events WHERE run_id = ?1",
        "DELETE FROM run_alerts WHERE run_id = ?1",
        "DELETE FROM run_artifacts WHERE run_id = ?1",
        "DELETE FROM runs WHERE id = ?1",
    ] {
        tx.execute(sql, params![id]).map_err(ApiError::db)?;
    }
    Ok(())
}

/// `DELETE /api/runs/{id}`.
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    blocking(move || {
        st.store.write(&idem, |tx| {
            status_of(tx, &id)?;
            delete_run(tx, &id)?;
            Ok(Reply::ok(json!({ "id": id })))
        })
    })
    .await
}

/// Marks the run alive now (a `lost` run that reports again is running).
pub fn touch(tx: &Connection, id: &str, now: i64) -> Result<(), ApiError> {
    tx.prepare_cached("UPDATE runs SET last_seen = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![id, now]))
        .map_err(ApiError::db)?;
    if status_of(tx, id)? == "lost" {
        tx.execute(
            "UPDATE runs SET status = 'running', endtime = NULL WHERE id = ?1",
            params![id],
        )
        .map_err(ApiError::db)?;
        super::events::record(
            tx,
            id,
            now,
            "info",
            "[simtrack] run reported again after being marked lost",
        )?;
    }
    Ok(())
}

fn abort_flag(c: &Connection, id: &str) -> Result<(bool, Option<String>), ApiError> {
    c.query_row(
        "SELECT abort_requested, abort_reason FROM runs WHERE id = ?1",
        params![id],
        |r| Ok((r.get::<_, i64>(0)? != 0, r.get(1)?)),
    )
    .optional()
    .map_err(ApiError::db)?
    .ok_or_else(|| ApiError::not_found(format!("run {id} not found")))
}

/// `PUT /api/runs/{id}/heartbeat` → `{"last_heartbeat", "abort"}`: the
/// abort flag rides along so a client can poll both with one request.
pub async fn heartbeat(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    let idem = crate::storage::sqlite::Idem {
        scope: caller.0.token_id.clone(),
        key: None,
    };
    blocking(move || {
        st.store.write(&idem, |tx| {
            let now = now_us();
            touch(tx, &id, now)?;
            let (abort, _) = abort_flag(tx, &id)?;
            Ok(Reply::ok(
                json!({ "last_heartbeat": fmt_ts(now), "abort": abort }),
            ))
        })
    })
    .await
}

/// `GET /api/runs/{id}/abort` → `{"status": bool}`.
pub async fn abort_status(
    State(st): State<AppState>,
    _: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    blocking(move || {
        st.store.read(|c| {
            let (abort, reason) = abort_flag(c, &id)?;
            Ok(Reply::ok(json!({ "status": abort, "reason": reason })))
        })
    })
    .await
}

/// Sets a run's abort flag (user request or an alert with `abort`).
pub fn request_abort(tx: &Connection, id: &str, reason: &str) -> Result<(), ApiError> {
    let (already, _) = abort_flag(tx, id)?;
    tx.execute(
        "UPDATE runs SET abort_requested = 1, abort_reason = ?2 WHERE id = ?1",
        params![id, reason],
    )
    .map_err(ApiError::db)?;
    if !already {
        super::events::record(
            tx,
            id,
            now_us(),
            "warning",
            &format!("[simtrack] abort requested: {reason}"),
        )?;
    }
    Ok(())
}

/// `PUT /api/runs/{id}/abort` `{"reason"}` → `{"status": true}`.
pub async fn abort(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let reason = body
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("requested by user")
        .chars()
        .take(1000)
        .collect::<String>();
    blocking(move || {
        st.store.write(&idem, |tx| {
            request_abort(tx, &id, &reason)?;
            Ok(Reply::ok(json!({ "status": true })))
        })
    })
    .await
}

/// `PUT /api/runs/{id}/starred` `{"starred": bool}`.
pub async fn starred(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let mut m = Map::new();
    m.insert(
        "starred".into(),
        body.get("starred").cloned().unwrap_or(Value::Bool(true)),
    );
    blocking(move || {
        st.store.write(&idem, |tx| {
            apply_update(tx, &id, &m)?;
            Ok(Reply::ok(json!({})))
        })
    })
    .await
}

//! `/api/alerts`: alert definitions (metric threshold/range, event pattern,
//! user) and their per-run state. Evaluation lives in [`crate::domain::alerts`].

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Map, Value, json};

use super::{
    ApiError, ApiResult, AppState, Caller, JsonObject, Params, blocking, check_name, idem,
};
use crate::storage::sqlite::Reply;
use crate::util::{fmt_ts, new_id, now_us};

/// Metric alert rules.
pub const RULES: [&str; 4] = [
    "is above",
    "is below",
    "is inside range",
    "is outside range",
];
/// Metric alert aggregations over the window.
pub const AGGREGATIONS: [&str; 4] = ["average", "sum", "at least one", "all"];

/// The alert document from a row holding the `alerts` columns.
pub fn doc(r: &Row) -> rusqlite::Result<Value> {
    let mut d = json!({
        "id": r.get::<_, String>("id")?,
        "name": r.get::<_, String>("name")?,
        "source": r.get::<_, String>("source")?,
        "description": r.get::<_, Option<String>>("description")?,
        "notification": r.get::<_, String>("notification")?,
        "enabled": r.get::<_, i64>("enabled")? != 0,
        "abort": r.get::<_, i64>("abort")? != 0,
        "created": fmt_ts(r.get("created")?),
    });
    if let Some(a) = r.get::<_, Option<String>>("alert")? {
        d["alert"] = serde_json::from_str(&a).unwrap_or(Value::Null);
    }
    Ok(d)
}

fn load(c: &Connection, id: &str) -> Result<Value, ApiError> {
    c.query_row("SELECT * FROM alerts WHERE id = ?1", params![id], doc)
        .optional()
        .map_err(ApiError::db)?
        .ok_or_else(|| ApiError::not_found(format!("alert {id} not found")))
}

fn positive(a: &Map<String, Value>, k: &str) -> Result<Option<f64>, ApiError> {
    match a.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|x| *x > 0.0 && x.is_finite())
            .map(Some)
            .ok_or_else(|| {
                ApiError::unprocessable(format!("'alert.{k}' must be a positive number"))
            }),
    }
}

fn number(a: &Map<String, Value>, k: &str) -> Result<f64, ApiError> {
    a.get(k)
        .and_then(Value::as_f64)
        .ok_or_else(|| ApiError::unprocessable(format!("'alert.{k}' must be a number")))
}

/// Validates the `alert` definition of a metrics or events alert.
fn check_definition(source: &str, def: Option<&Value>) -> Result<Option<String>, ApiError> {
    if source == "user" {
        return Ok(None);
    }
    let Some(Value::Object(a)) = def else {
        return Err(ApiError::unprocessable(format!(
            "'alert' (object) is required for {source} alerts"
        )));
    };
    positive(a, "frequency")?;
    positive(a, "window")?;
    if source == "events" {
        let p = a
            .get("pattern")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::unprocessable("'alert.pattern' must be a string"))?;
        check_name("alert pattern", p, 1024)?;
    } else {
        let rule = a.get("rule").and_then(Value::as_str).unwrap_or_default();
        if !RULES.contains(&rule) {
            return Err(ApiError::unprocessable(format!(
                "'alert.rule' must be one of: {}",
                RULES.join(", ")
            )));
        }
        let m = a
            .get("metric")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::unprocessable("'alert.metric' must be a string"))?;
        check_name("alert metric", m, super::runs::MAX_NAME)?;
        let agg = a
            .get("aggregation")
            .and_then(Value::as_str)
            .unwrap_or("average");
        if !AGGREGATIONS.contains(&agg) {
            return Err(ApiError::unprocessable(format!(
                "'alert.aggregation' must be one of: {}",
                AGGREGATIONS.join(", ")
            )));
        }
        if rule.ends_with("range") {
            let (lo, hi) = (number(a, "range_low")?, number(a, "range_high")?);
            if lo >= hi {
                return Err(ApiError::unprocessable(
                    "'alert.range_low' must be below 'alert.range_high'",
                ));
            }
        } else {
            number(a, "threshold")?;
        }
    }
    Ok(Some(Value::Object(a.clone()).to_string()))
}

/// `POST /api/alerts[?deduplicate=True]` → `{"id"}`, or `409 {"id", "detail"}`
/// when deduplicating and an alert of that name exists.
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    q: Params,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::unprocessable("'name' (string) is required"))?
        .to_owned();
    check_name("alert name", &name, super::runs::MAX_NAME)?;
    let source = body
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !["metrics", "events", "user"].contains(&source.as_str()) {
        return Err(ApiError::unprocessable(
            "'source' must be metrics, events or user",
        ));
    }
    let definition = check_definition(&source, body.get("alert"))?;
    let description = body
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let notification = body
        .get("notification")
        .and_then(Value::as_str)
        .unwrap_or("none")
        .to_owned();
    let enabled = body.get("enabled").and_then(Value::as_bool).unwrap_or(true);
    let abort = body.get("abort").and_then(Value::as_bool).unwrap_or(false);
    let dedupe = q.bool("deduplicate");
    blocking(move || {
        st.store.write(&idem, |tx| {
            if dedupe {
                let existing: Option<String> = tx
                    .query_row("SELECT id FROM alerts WHERE name = ?1 ORDER BY created LIMIT 1", params![name], |r| r.get(0))
                    .optional()
                    .map_err(ApiError::db)?;
                if let Some(id) = existing {
                    return Ok(Reply { status: 409, body: json!({"id": id, "detail": "Alert already exists"}).to_string() });
                }
            }
            let id = new_id();
            tx.execute(
                "INSERT INTO alerts (id, name, source, description, notification, enabled, abort, alert, created, user)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                params![id, name, source, description, notification, enabled, abort, definition, now_us(), caller.0.user],
            )
            .map_err(ApiError::db)?;
            Ok(Reply::ok(json!({ "id": id })))
        })
    })
    .await
}

/// `GET /api/alerts?start&count` → `{data, count}`.
pub async fn list(State(st): State<AppState>, _: Caller, q: Params) -> ApiResult {
    let start = q.usize("start")?.unwrap_or(0);
    let count = q.usize("count")?.unwrap_or(usize::MAX);
    blocking(move || {
        st.store.read(|c| {
            let mut s = c
                .prepare("SELECT * FROM alerts ORDER BY created")
                .map_err(ApiError::db)?;
            let all: Vec<Value> = s
                .query_map([], doc)
                .and_then(|r| r.collect())
                .map_err(ApiError::db)?;
            Ok(Reply::page(all, start, count))
        })
    })
    .await
}

/// `GET /api/alerts/{id}`.
pub async fn get_one(State(st): State<AppState>, _: Caller, Path(id): Path<String>) -> ApiResult {
    blocking(move || st.store.read(|c| load(c, &id).map(Reply::ok))).await
}

/// `PUT /api/alerts/{id}`: `name`, `description`, `notification`,
/// `enabled`, `abort`, `alert`.
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
            let current = load(tx, &id)?;
            for (k, v) in &body {
                match (k.as_str(), v) {
                    ("name", Value::String(n)) => {
                        check_name("alert name", n, super::runs::MAX_NAME)?;
                        tx.execute("UPDATE alerts SET name = ?2 WHERE id = ?1", params![id, n])
                            .map_err(ApiError::db)?;
                    }
                    ("description" | "notification", Value::String(s)) => {
                        tx.execute(
                            &format!("UPDATE alerts SET {k} = ?2 WHERE id = ?1"),
                            params![id, s],
                        )
                        .map_err(ApiError::db)?;
                    }
                    ("enabled" | "abort", Value::Bool(b)) => {
                        tx.execute(
                            &format!("UPDATE alerts SET {k} = ?2 WHERE id = ?1"),
                            params![id, b],
                        )
                        .map_err(ApiError::db)?;
                    }
                    ("alert", def) => {
                        let d = check_definition(
                            current["source"].as_str().unwrap_or_default(),
                            Some(def),
                        )?;
                        tx.execute("UPDATE alerts SET alert = ?2 WHERE id = ?1", params![id, d])
                            .map_err(ApiError::db)?;
                    }
                    _ => {}
                }
            }
            Ok(Reply::ok(json!({ "id": id })))
        })
    })
    .await
}

/// `DELETE /api/alerts/{id}`.
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    blocking(move || {
        st.store.write(&idem, |tx| {
            load(tx, &id)?;
            tx.execute("DELETE FROM run_alerts WHERE alert_id = ?1", params![id])
                .map_err(ApiError::db)?;
            tx.execute("DELETE FROM alerts WHERE id = ?1", params![id])
                .map_err(ApiError::db)?;
            Ok(Reply::ok(json!({})))
        })
    })
    .await
}

/// `GET /api/alerts/{id}/status/{run}` → `{"status": "ok"|"critical"}`.
pub async fn get_status(
    State(st): State<AppState>,
    _: Caller,
    Path((id, run)): Path<(String, String)>,
) -> ApiResult {
    blocking(move || {
        st.store.read(|c| {
            load(c, &id)?;
            let s: Option<String> = c
                .query_row(
                    "SELECT status FROM run_alerts WHERE run_id = ?1 AND alert_id = ?2",
                    params![run, id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(ApiError::db)?;
            s.map(|s| Reply::ok(json!({ "status": s }))).ok_or_else(|| {
                ApiError::not_found(format!("alert {id} is not attached to run {run}"))
            })
        })
    })
    .await
}

/// `PUT /api/alerts/{id}/status/{run}` `{"status": "ok"|"critical"}` (user
/// alerts; attaches the alert if needed).
pub async fn set_status(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, run)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if status != "ok" && status != "critical" {
        return Err(ApiError::unprocessable("'status' must be ok or critical"));
    }
    blocking(move || {
        st.store.write(&idem, |tx| {
            let alert = load(tx, &id)?;
            super::runs::status_of(tx, &run)?;
            if !alert["enabled"].as_bool().unwrap_or(true) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("alert {id} is disabled"),
                ));
            }
            tx.execute(
                "INSERT OR IGNORE INTO run_alerts (run_id, alert_id) VALUES (?1, ?2)",
                params![run, id],
            )
            .map_err(ApiError::db)?;
            crate::domain::alerts::set_state(tx, &run, &alert, &status)?;
            Ok(Reply::ok(json!({})))
        })
    })
    .await
}

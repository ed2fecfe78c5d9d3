//! `/api/alerts`: alert definitions (metric threshold/range, event pattern,
//! user) and their per-run state. Rules and evaluation live in
//! [`crate::domain::alerts`].

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::Value;

use super::{ApiResult, AppState, Caller, JsonObject, Params, Reply, idem, read, write_once};
use crate::domain::alerts;

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
    let alert = alerts::new_alert(&body, &caller.0.user, q.bool("deduplicate"))?;
    write_once(&st, &caller, idem, move |tx| alerts::create(tx, &alert)).await
}

/// `GET /api/alerts?start&count` → `{data, count}`.
pub async fn list(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let start = q.usize("start")?.unwrap_or(0);
    let count = q.usize("count")?.unwrap_or(usize::MAX);
    let sort = alerts::parse_sorting(q.get("sorting"))?;
    read(&st, &caller, move |tx| {
        alerts::list(tx, sort.as_deref(), start, count)
    })
    .await
    .map(Reply::ok)
}

/// `GET /api/alerts/{id}`.
pub async fn get_one(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    read(&st, &caller, move |tx| alerts::load(tx, &id))
        .await
        .map(Reply::ok)
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
    write_once(&st, &caller, idem, move |tx| alerts::update(tx, &id, &body)).await
}

/// `DELETE /api/alerts/{id}`.
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let who = caller.0.clone();
    write_once(&st, &caller, idem, move |tx| {
        let r = alerts::delete(tx, &id)?;
        crate::domain::audit::record(tx, &who, "alert_delete", &id, "")?;
        Ok(r)
    })
    .await
}

/// `GET /api/alerts/{id}/status/{run}` → `{"status": "ok"|"critical"}`.
pub async fn get_status(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, run)): Path<(String, String)>,
) -> ApiResult {
    read(&st, &caller, move |tx| alerts::status(tx, &id, &run))
        .await
        .map(Reply::ok)
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
    write_once(&st, &caller, idem, move |tx| {
        alerts::set_status(tx, &id, &run, &status)
    })
    .await
}

/// `POST /api/alerts/{id}/acknowledge/{run}` → `{}`: the run's owner or an
/// administrator acknowledges the alert being critical on the run (409
/// when it is not critical there).
pub async fn acknowledge(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, run)): Path<(String, String)>,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let who = caller.0.user.clone();
    write_once(&st, &caller, idem, move |tx| {
        alerts::acknowledge(tx, &id, &run, &who)
    })
    .await
}

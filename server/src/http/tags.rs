//! `/api/tags`: tags as objects (create, list, get, update, delete).

use axum::extract::{Path, State};
use axum::http::HeaderMap;

use super::{ApiResult, AppState, Caller, JsonObject, Params, Reply, idem, read, write_once};
use crate::domain::tags;

/// `POST /api/tags` `{"name", "colour", "description"}` → `{"id"}`.
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let me = caller.0.user.clone();
    write_once(&st, &caller, idem, move |tx| tags::create(tx, &body, &me)).await
}

/// `GET /api/tags?start&count&sorting=[{"id", "desc"}]` → `{data, count}`.
pub async fn list(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let start = q.usize("start")?.unwrap_or(0);
    let count = q.usize("count")?.unwrap_or(100);
    let sort = tags::parse_sorting(q.get("sorting"))?;
    read(&st, &caller, move |tx| {
        tags::list(tx, sort.as_deref(), (start, count))
    })
    .await
    .map(Reply::ok)
}

/// `GET /api/tags/{id}`.
pub async fn get_one(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    read(&st, &caller, move |tx| tags::get(tx, &id))
        .await
        .map(Reply::ok)
}

/// `PUT /api/tags/{id}` with any of `name`, `colour`, `description`.
pub async fn update(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    write_once(&st, &caller, idem, move |tx| tags::update(tx, &id, &body)).await
}

/// `DELETE /api/tags/{id}` → `{}`.
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    write_once(&st, &caller, idem, move |tx| tags::delete(tx, &id)).await
}

//! `/api/folders`: folders are paths (`/a/b`); creating one creates its
//! ancestors; creating an existing one answers its id.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::{
    ApiError, ApiResult, AppState, Caller, JsonObject, Params, Reply, idem, read, write_once,
};
use crate::domain::{filters, folders};

/// `POST /api/folders` `{"path": "/a/b", "tags", "description",
/// "metadata", "starred"}` → `{"id"}`; the other fields are kept as an
/// update of the folder would keep them.
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let path = match body.get("path") {
        Some(Value::String(p)) => p.clone(),
        None => "/".into(),
        _ => return Err(ApiError::unprocessable("'path' must be a string")),
    };
    folders::normalise(&path)?;
    let mut fields = body;
    fields.remove("path");
    write_once(&st, &caller, idem, move |tx| {
        let id = folders::ensure(tx, &path)?;
        if !fields.is_empty() {
            folders::update(tx, &id, &fields)?;
        }
        Ok(json!({ "id": id }))
    })
    .await
}

/// `PUT /api/folders/{id}/starred` `{"starred": bool}` → `{"id", "starred"}`.
pub async fn starred(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let starred = match body.get("starred") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::unprocessable("'starred' must be a boolean")),
    };
    write_once(&st, &caller, idem, move |tx| {
        folders::update(
            tx,
            &id,
            &serde_json::Map::from_iter([("starred".to_owned(), Value::Bool(starred))]),
        )?;
        Ok(json!({ "id": id, "starred": starred }))
    })
    .await
}

/// `GET /api/folders?filters=[...]&start&count&sorting` → `{data, count}`.
pub async fn list(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let fs = filters::parse_all(&q.list("filters")?)?;
    let start = q.usize("start")?.unwrap_or(0);
    let count = q.usize("count")?.unwrap_or(100);
    let sort = folders::parse_sorting(q.get("sorting"))?;
    let me = caller.0.user.clone();
    read(&st, &caller, move |tx| {
        folders::list(tx, &fs, sort.as_deref(), (start, count), &me)
    })
    .await
    .map(Reply::ok)
}

/// `GET /api/folders/{id}`.
pub async fn get_one(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    read(&st, &caller, move |tx| folders::load(tx, &id))
        .await
        .map(Reply::ok)
}

/// `PUT /api/folders/{id}` with any of `description`, `tags`, `metadata`
/// (merged), `starred`.
pub async fn update(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    write_once(&st, &caller, idem, move |tx| {
        folders::update(tx, &id, &body)
    })
    .await
}

/// `DELETE /api/folders/{id}?recursive&runs&runs_only` → `{folders, runs}`.
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let scope = folders::DeleteScope {
        recursive: q.bool("recursive"),
        runs: q.bool("runs"),
        runs_only: q.bool("runs_only"),
    };
    let who = caller.0.clone();
    write_once(&st, &caller, idem, move |tx| {
        let r = folders::delete(tx, &id, scope)?;
        crate::domain::audit::record(tx, &who, "folder_delete", &id, &format!("{scope:?}"))?;
        Ok(r)
    })
    .await
}

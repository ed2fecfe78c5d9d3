//! `/api/folders`: folders are paths (`/a/b`); creating one creates its
//! ancestors; creating an existing one answers its id.

use crate::domain::filters;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Value, json};

use super::{ApiError, ApiResult, AppState, Caller, JsonObject, Params, blocking, idem};
use crate::storage::sqlite::Reply;
use crate::util::{fmt_ts, new_id, now_us};

/// Validates and normalises a folder path (`/` or `/a/b`, no `.`/`..`
/// segments, no control characters): [`simtrack::model::normalize_folder`].
pub fn normalise(path: &str) -> Result<String, ApiError> {
    use simtrack::model::{FolderError, MAX_FOLDER_PATH_BYTES};
    simtrack::model::normalize_folder(path).map_err(|e| {
        ApiError::unprocessable(match e {
            FolderError::TooLong => {
                format!("folder path is longer than {MAX_FOLDER_PATH_BYTES} bytes")
            }
            FolderError::NotAbsolute => "folder path must start with '/'".to_owned(),
            FolderError::ControlCharacter => {
                "folder path must not contain control characters".to_owned()
            }
            FolderError::DotSegment => {
                "folder path must not contain '.' or '..' segments".to_owned()
            }
        })
    })
}

/// The id of folder `path`, creating it and its ancestors as needed.
pub fn ensure(tx: &Connection, path: &str) -> Result<String, ApiError> {
    let path = normalise(path)?;
    let mut id = String::new();
    let mut prefix = String::new();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut paths = vec!["/".to_owned()];
    for s in segments {
        prefix.push('/');
        prefix.push_str(s);
        paths.push(prefix.clone());
    }
    for p in paths {
        let existing: Option<String> = tx
            .prepare_cached("SELECT id FROM folders WHERE path = ?1")
            .and_then(|mut s| s.query_row(params![p], |r| r.get(0)).optional())
            .map_err(ApiError::db)?;
        id = match existing {
            Some(i) => i,
            None => {
                let i = new_id();
                let now = now_us();
                tx.execute(
                    "INSERT INTO folders (id, path, created, modified) VALUES (?1, ?2, ?3, ?3)",
                    params![i, p, now],
                )
                .map_err(ApiError::db)?;
                i
            }
        };
    }
    Ok(id)
}

fn doc(r: &Row) -> rusqlite::Result<Value> {
    let path: String = r.get("path")?;
    let name = path.rsplit('/').next().unwrap_or("").to_owned();
    Ok(json!({
        "id": r.get::<_, String>("id")?,
        "path": path,
        "name": if name.is_empty() { "/".to_owned() } else { name },
        "description": r.get::<_, Option<String>>("description")?,
        "tags": serde_json::from_str::<Value>(&r.get::<_, String>("tags")?).unwrap_or(json!([])),
        "metadata": serde_json::from_str::<Value>(&r.get::<_, String>("metadata")?).unwrap_or(json!({})),
        "created": fmt_ts(r.get("created")?),
        "modified": fmt_ts(r.get("modified")?),
        "starred": r.get::<_, i64>("starred")? != 0,
        "ttl": Value::Null,
    }))
}

fn load(c: &Connection, id: &str) -> Result<Value, ApiError> {
    c.query_row("SELECT * FROM folders WHERE id = ?1", params![id], doc)
        .optional()
        .map_err(ApiError::db)?
        .ok_or_else(|| ApiError::not_found(format!("folder {id} not found")))
}

/// `POST /api/folders` `{"path": "/a/b"}` → `{"id"}`.
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
    normalise(&path)?;
    blocking(move || {
        st.store.write(&idem, |tx| {
            Ok(Reply::ok(json!({ "id": ensure(tx, &path)? })))
        })
    })
    .await
}

/// `GET /api/folders?filters=[...]&start&count&sorting` → `{data, count}`.
pub async fn list(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let fs = filters::parse_all(&q.list("filters")?)?;
    let start = q.usize("start")?.unwrap_or(0);
    let count = q.usize("count")?.unwrap_or(100);
    let desc = q.get("sorting").is_some_and(|s| s.contains("true"));
    blocking(move || {
        st.store.read(|c| {
            let mut stmt = c
                .prepare("SELECT * FROM folders ORDER BY created, path")
                .map_err(ApiError::db)?;
            let mut all: Vec<Value> = stmt
                .query_map([], doc)
                .and_then(|r| r.collect())
                .map_err(ApiError::db)?;
            all.retain(|d| filters::all(&fs, d, &caller.0.user));
            if desc {
                all.reverse();
            }
            Ok(Reply::page(all, start, count))
        })
    })
    .await
}

/// `GET /api/folders/{id}`.
pub async fn get_one(State(st): State<AppState>, _: Caller, Path(id): Path<String>) -> ApiResult {
    blocking(move || st.store.read(|c| load(c, &id).map(Reply::ok))).await
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
    blocking(move || {
        st.store.write(&idem, |tx| {
            let current = load(tx, &id)?;
            let now = now_us();
            if let Some(d) = body.get("description") {
                let d = d.as_str().map(str::to_owned);
                tx.execute(
                    "UPDATE folders SET description = ?2 WHERE id = ?1",
                    params![id, d],
                )
                .map_err(ApiError::db)?;
            }
            if let Some(t) = body.get("tags") {
                if !t.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                    return Err(ApiError::unprocessable("'tags' must be a list of strings"));
                }
                tx.execute(
                    "UPDATE folders SET tags = ?2 WHERE id = ?1",
                    params![id, t.to_string()],
                )
                .map_err(ApiError::db)?;
            }
            if let Some(m) = body.get("metadata") {
                let Value::Object(new) = m else {
                    return Err(ApiError::unprocessable("'metadata' must be an object"));
                };
                let mut merged = current["metadata"].as_object().cloned().unwrap_or_default();
                merged.extend(new.clone());
                tx.execute(
                    "UPDATE folders SET metadata = ?2 WHERE id = ?1",
                    params![id, Value::Object(merged).to_string()],
                )
                .map_err(ApiError::db)?;
            }
            if let Some(s) = body.get("starred").and_then(Value::as_bool) {
                tx.execute(
                    "UPDATE folders SET starred = ?2 WHERE id = ?1",
                    params![id, s],
                )
                .map_err(ApiError::db)?;
            }
            tx.execute(
                "UPDATE folders SET modified = ?2 WHERE id = ?1",
                params![id, now],
            )
            .map_err(ApiError::db)?;
            Ok(Reply::ok(json!({ "id": id })))
        })
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
    let (recursive, with_runs, runs_only) =
        (q.bool("recursive"), q.bool("runs"), q.bool("runs_only"));
    blocking(move || {
        st.store.write(&idem, |tx| {
            let folder = load(tx, &id)?;
            let path = folder["path"].as_str().unwrap_or("/").to_owned();
            let prefix = if path == "/" { "/".to_owned() } else { format!("{path}/") };
            let sub: Vec<(String, String)> = {
                let mut s = tx.prepare("SELECT id, path FROM folders WHERE path = ?1 OR substr(path, 1, length(?2)) = ?2")
                    .map_err(ApiError::db)?;
                s.query_map(params![path, prefix], |r| Ok((r.get(0)?, r.get(1)?)))
                    .and_then(|r| r.collect())
                    .map_err(ApiError::db)?
            };
            let folders_in: Vec<String> = if recursive { sub.iter().map(|s| s.1.clone()).collect() } else { vec![path.clone()] };
            if !recursive && !runs_only && sub.len() > 1 {
                return Err(ApiError::new(axum::http::StatusCode::CONFLICT, "folder has subfolders; pass recursive=True"));
            }
            let mut runs = Vec::new();
            for p in &folders_in {
                let mut s = tx.prepare("SELECT id FROM runs WHERE folder = ?1").map_err(ApiError::db)?;
                let ids: Vec<String> = s.query_map(params![p], |r| r.get(0)).and_then(|r| r.collect()).map_err(ApiError::db)?;
                runs.extend(ids);
            }
            if !(with_runs || runs_only || runs.is_empty()) {
                return Err(ApiError::new(axum::http::StatusCode::CONFLICT, "folder contains runs; pass runs=True"));
            }
            for r in &runs {
                super::runs::delete_run(tx, r)?;
            }
            let mut deleted = Vec::new();
            if !runs_only {
                for (fid, p) in &sub {
                    if (recursive || *p == path) && p != "/" {
                        tx.execute("DELETE FROM folders WHERE id = ?1", params![fid]).map_err(ApiError::db)?;
                        deleted.push(fid.clone());
                    }
                }
            }
            Ok(Reply::ok(json!({ "folders": deleted, "runs": runs })))
        })
    })
    .await
}

//! `/api/artifacts`: register (metadata + checksum), upload to a signed URL
//! (streamed into the content-addressed store), confirm, attach to a run
//! with a category, list, download from a signed URL.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Value, json};

use super::{
    ApiError, ApiResult, AppState, Caller, JsonObject, Params, blocking, check_name, idem,
};
use crate::storage::files::is_sha256;
use crate::storage::sqlite::Reply;
use crate::util::{fmt_ts, new_id, now_us};

const DOWNLOAD_URL_SECS: i64 = 3600;
const UPLOAD_URL_SECS: i64 = 86_400;

/// The externally visible base URL (`http://host:port`) of this request.
pub fn base_url(st: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &st.cfg.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-:[]".contains(&c))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| st.cfg.listen.to_string());
    format!("http://{host}")
}

/// Checks an artifact name: a plain file name, never a path.
pub fn check_artifact_name(name: &str) -> Result<(), ApiError> {
    check_name("artifact name", name, super::runs::MAX_NAME)?;
    if name.contains('/') || name.contains('\\') || name == "." || name == ".." {
        return Err(ApiError::unprocessable(format!(
            "artifact name '{name}' must be a plain file name (no '/', '\\', '.' or '..')"
        )));
    }
    Ok(())
}

fn doc(r: &Row, base: &str, st: &AppState) -> rusqlite::Result<Value> {
    let id: String = r.get("id")?;
    let uploaded = r.get::<_, i64>("uploaded")? != 0;
    let url = uploaded.then(|| {
        format!(
            "{base}/api/artifacts/{id}/download?{}",
            st.auth.url_signature("download", &id, DOWNLOAD_URL_SECS)
        )
    });
    Ok(json!({
        "id": id,
        "name": r.get::<_, String>("name")?,
        "original_path": r.get::<_, String>("original_path")?,
        "size": r.get::<_, i64>("size")?,
        "mime_type": r.get::<_, String>("mime_type")?,
        "checksum": r.get::<_, String>("checksum")?,
        "metadata": r.get::<_, Option<String>>("metadata")?.and_then(|m| serde_json::from_str::<Value>(&m).ok()),
        "created": fmt_ts(r.get("created")?),
        "uploaded": uploaded,
        "url": url,
        "storage": Value::Null,
    }))
}

struct ArtifactRow {
    size: u64,
    checksum: String,
    uploaded: bool,
    mime: String,
}

fn row(c: &Connection, id: &str) -> Result<ArtifactRow, ApiError> {
    c.query_row(
        "SELECT size, checksum, uploaded, mime_type FROM artifacts WHERE id = ?1",
        params![id],
        |r| {
            Ok(ArtifactRow {
                size: r.get::<_, i64>(0)? as u64,
                checksum: r.get(1)?,
                uploaded: r.get::<_, i64>(2)? != 0,
                mime: r.get(3)?,
            })
        },
    )
    .optional()
    .map_err(ApiError::db)?
    .ok_or_else(|| ApiError::not_found(format!("artifact {id} not found")))
}

/// `POST /api/artifacts` `{name, original_path, size, mime_type, checksum,
/// metadata}` → `{"id", "url"}`; `url` is null when the bytes are already
/// stored (the client then skips upload and confirm).
pub async fn register(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::unprocessable("'name' (string) is required"))?
        .to_owned();
    check_artifact_name(&name)?;
    let checksum = body
        .get("checksum")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .filter(|c| is_sha256(c))
        .ok_or_else(|| ApiError::unprocessable("'checksum' must be the hex SHA-256 of the file"))?;
    let size = body
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| ApiError::unprocessable("'size' must be a non-negative integer"))?;
    if size > st.cfg.max_upload {
        return Err(ApiError::too_large(format!(
            "artifact of {size} bytes exceeds the upload limit of {} bytes",
            st.cfg.max_upload
        )));
    }
    let original_path = match body.get("original_path") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(p)) if p.len() <= 4096 => p.clone(),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "'original_path' must be a string of at most 4096 bytes",
            ));
        }
    };
    let mime = match body.get("mime_type") {
        None | Some(Value::Null) => "application/octet-stream".to_owned(),
        Some(Value::String(m)) if m.len() <= 255 => m.clone(),
        Some(_) => return Err(ApiError::unprocessable("'mime_type' must be a string")),
    };
    let metadata = match body.get("metadata") {
        None | Some(Value::Null) => None,
        Some(m @ Value::Object(_)) => Some(m.to_string()),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "'metadata' must be an object or null",
            ));
        }
    };
    let base = base_url(&st, &headers);
    blocking(move || {
        let have = st.store.blobs.has(&checksum);
        let id = new_id();
        st.store.write(&idem, |tx| {
            tx.execute(
                "INSERT INTO artifacts (id, name, original_path, size, mime_type, checksum, metadata, created, uploaded, user)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                params![id, name, original_path, size as i64, mime, checksum, metadata, now_us(), have, caller.0.user],
            )
            .map_err(ApiError::db)?;
            let url = (!have).then(|| {
                format!("{base}/api/artifacts/{id}/upload?{}", st.auth.url_signature("upload", &id, UPLOAD_URL_SECS))
            });
            Ok(Reply::ok(json!({ "id": id, "url": url })))
        })
    })
    .await
}

/// `PUT <upload url>`: the raw bytes, authorised by the URL signature.
pub async fn upload(
    State(st): State<AppState>,
    Path(id): Path<String>,
    q: Params,
    body: Body,
) -> ApiResult {
    st.auth
        .check_url("upload", &id, q.get("exp"), q.get("sig"))?;
    let (st2, id2) = (st.clone(), id.clone());
    let art = blocking(move || st2.store.read(|c| row(c, &id2))).await?;
    if !st.store.blobs.has(&art.checksum) {
        st.store
            .blobs
            .put(
                body.into_data_stream(),
                &art.checksum,
                art.size,
                st.cfg.max_upload,
            )
            .await?;
    }
    let idem = crate::storage::sqlite::Idem {
        scope: String::new(),
        key: None,
    };
    blocking(move || {
        st.store.write(&idem, |tx| {
            tx.execute(
                "UPDATE artifacts SET uploaded = 1 WHERE id = ?1",
                params![id],
            )
            .map_err(ApiError::db)?;
            Ok(Reply::ok(json!({})))
        })
    })
    .await
}

/// `PUT /api/artifacts/{id}` `{"uploaded": true}`: confirms the upload
/// (400 if the bytes are not there).
pub async fn confirm(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let want = body
        .get("uploaded")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    blocking(move || {
        st.store.write(&idem, |tx| {
            let art = row(tx, &id)?;
            if want && !st.store.blobs.has(&art.checksum) {
                return Err(ApiError::bad_request(format!(
                    "artifact {id} has no uploaded bytes yet"
                )));
            }
            tx.execute(
                "UPDATE artifacts SET uploaded = ?2 WHERE id = ?1",
                params![id, want],
            )
            .map_err(ApiError::db)?;
            Ok(Reply::ok(json!({})))
        })
    })
    .await
}

/// `PUT /api/runs/{run}/artifacts/{aid}` `{"category": "code"|"input"|"output"}`.
pub async fn attach(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((run, aid)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let category = body
        .get("category")
        .and_then(Value::as_str)
        .unwrap_or("output")
        .to_owned();
    if simtrack::model::Category::from_name(&category).is_none() {
        return Err(ApiError::unprocessable(
            "'category' must be code, input or output",
        ));
    }
    blocking(move || {
        st.store.write(&idem, |tx| {
            super::runs::status_of(tx, &run)?;
            row(tx, &aid)?;
            tx.execute(
                "INSERT INTO run_artifacts (run_id, artifact_id, category) VALUES (?1, ?2, ?3)
                 ON CONFLICT (run_id, artifact_id) DO UPDATE SET category = excluded.category",
                params![run, aid, category],
            )
            .map_err(ApiError::db)?;
            Ok(Reply::ok(json!({})))
        })
    })
    .await
}

/// `GET /api/artifacts/{id}` (with a signed download `url`).
pub async fn get_one(
    State(st): State<AppState>,
    _: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let base = base_url(&st, &headers);
    blocking(move || {
        st.store.read(|c| {
            c.query_row("SELECT * FROM artifacts WHERE id = ?1", params![id], |r| {
                doc(r, &base, &st)
            })
            .optional()
            .map_err(ApiError::db)?
            .map(Reply::ok)
            .ok_or_else(|| ApiError::not_found(format!("artifact {id} not found")))
        })
    })
    .await
}

/// `GET /api/artifacts?runs=["<id>"]` → `{data, count}`.
pub async fn list(
    State(st): State<AppState>,
    _: Caller,
    headers: HeaderMap,
    q: Params,
) -> ApiResult {
    let runs = q.list("runs")?;
    let start = q.usize("start")?.unwrap_or(0);
    let count = q.usize("count")?.unwrap_or(usize::MAX);
    let base = base_url(&st, &headers);
    blocking(move || {
        st.store.read(|c| {
            let mut data = Vec::new();
            if runs.is_empty() {
                let mut s = c.prepare("SELECT * FROM artifacts ORDER BY created").map_err(ApiError::db)?;
                data = s.query_map([], |r| doc(r, &base, &st)).and_then(|r| r.collect()).map_err(ApiError::db)?;
            } else {
                let mut s = c
                    .prepare(
                        "SELECT a.*, ra.category FROM artifacts a JOIN run_artifacts ra ON ra.artifact_id = a.id
                         WHERE ra.run_id = ?1 ORDER BY a.created",
                    )
                    .map_err(ApiError::db)?;
                for run in &runs {
                    let docs: Vec<Value> = s
                        .query_map([run], |r| {
                            let mut d = doc(r, &base, &st)?;
                            d["category"] = Value::String(r.get("category")?);
                            Ok(d)
                        })
                        .and_then(|r| r.collect())
                        .map_err(ApiError::db)?;
                    data.extend(docs);
                }
            }
            Ok(Reply::page(data, start, count))
        })
    })
    .await
}

/// `GET /api/runs/{id}/artifacts?name=&category=` → a JSON array.
pub async fn of_run(
    State(st): State<AppState>,
    _: Caller,
    headers: HeaderMap,
    Path(run): Path<String>,
    q: Params,
) -> ApiResult {
    let name = q.get("name").map(str::to_owned);
    let category = q.get("category").map(str::to_owned);
    let base = base_url(&st, &headers);
    blocking(move || {
        st.store.read(|c| {
            super::runs::status_of(c, &run)?;
            let mut s = c
                .prepare(
                    "SELECT a.*, ra.category FROM artifacts a JOIN run_artifacts ra ON ra.artifact_id = a.id
                     WHERE ra.run_id = ?1 AND (?2 IS NULL OR a.name = ?2) AND (?3 IS NULL OR ra.category = ?3)
                     ORDER BY a.created",
                )
                .map_err(ApiError::db)?;
            let docs: Vec<Value> = s
                .query_map(params![run, name, category], |r| {
                    let mut d = doc(r, &base, &st)?;
                    d["category"] = Value::String(r.get("category")?);
                    Ok(d)
                })
                .and_then(|r| r.collect())
                .map_err(ApiError::db)?;
            Ok(Reply::ok(Value::Array(docs)))
        })
    })
    .await
}

/// `GET /api/runs/{run}/artifacts/{aid}` → `{"category"}`.
pub async fn category(
    State(st): State<AppState>,
    _: Caller,
    Path((run, aid)): Path<(String, String)>,
) -> ApiResult {
    blocking(move || {
        st.store.read(|c| {
            let cat: Option<String> = c
                .query_row(
                    "SELECT category FROM run_artifacts WHERE run_id = ?1 AND artifact_id = ?2",
                    params![run, aid],
                    |r| r.get(0),
                )
                .optional()
                .map_err(ApiError::db)?;
            cat.map(|c| Reply::ok(json!({ "category": c })))
                .ok_or_else(|| {
                    ApiError::not_found(format!("artifact {aid} is not attached to run {run}"))
                })
        })
    })
    .await
}

/// `GET <download url>`: the bytes, streamed, authorised by the signature.
pub async fn download(
    State(st): State<AppState>,
    Path(id): Path<String>,
    q: Params,
) -> Result<Response, ApiError> {
    st.auth
        .check_url("download", &id, q.get("exp"), q.get("sig"))?;
    let st2 = st.clone();
    let id2 = id.clone();
    let art = blocking(move || st2.store.read(|c| row(c, &id2))).await?;
    if !art.uploaded || !st.store.blobs.has(&art.checksum) {
        return Err(ApiError::not_found(format!(
            "artifact {id} has no uploaded bytes"
        )));
    }
    let file = tokio::fs::File::open(st.store.blobs.path(&art.checksum))
        .await
        .map_err(ApiError::io)?;
    let len = file.metadata().await.map_err(ApiError::io)?.len();
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, art.mime),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `DELETE /api/artifacts/{id}` (the bytes stay while other artifacts share them).
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    blocking(move || {
        st.store.write(&idem, |tx| {
            row(tx, &id)?;
            tx.execute(
                "DELETE FROM run_artifacts WHERE artifact_id = ?1",
                params![id],
            )
            .map_err(ApiError::db)?;
            tx.execute("DELETE FROM artifacts WHERE id = ?1", params![id])
                .map_err(ApiError::db)?;
            Ok(Reply::ok(json!({})))
        })
    })
    .await
}

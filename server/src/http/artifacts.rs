//! `/api/artifacts`: register (metadata + checksum), upload to a signed URL
//! (streamed into the blob store), confirm, attach to a run with a
//! category, list, download from a signed URL.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::Value;

use super::secure_headers;
use super::{
    ApiError, ApiResult, AppState, Caller, JsonObject, Params, Reply, body_stream, idem, read,
    write_once,
};
use crate::domain::artifacts::{self, LinkFn};

const DOWNLOAD_URL_SECS: i64 = 3600;
const UPLOAD_URL_SECS: i64 = 86_400;

/// Artifact bytes this process received (uploads through it) and sent
/// (downloads through it), shown by `GET /api/health`: with presigned
/// object-store URLs both stay at zero.
pub static BYTES_RECEIVED: AtomicU64 = AtomicU64::new(0);
/// See [`BYTES_RECEIVED`].
pub static BYTES_SENT: AtomicU64 = AtomicU64::new(0);

/// The presigned-URL lifetime when clients transfer bytes with the object
/// store directly, `None` when bytes go through this server.
fn direct(st: &AppState) -> Option<u32> {
    (!st.cfg.blobs_stream_through).then_some(st.cfg.blobs_url_secs)
}

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

/// Percent-encodes a query value.
fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Signed links of one purpose (`upload`, `download`) under `base`. A
/// link names the artifact and the user it was made for (`u`, both
/// covered by the signature), so it serves no other artifact, and its use
/// checks again that this user may see (download) or owns (upload) the
/// artifact: a run made private, or a user disabled, closes its links at
/// once.
fn links(st: &AppState, headers: &HeaderMap, purpose: &'static str, caller: &Caller) -> LinkFn {
    let (base, auth) = (base_url(st, headers), st.auth.clone());
    let secs = if purpose == "upload" {
        UPLOAD_URL_SECS
    } else {
        DOWNLOAD_URL_SECS
    };
    let user = caller.0.user.clone();
    Arc::new(move |id: &str| {
        format!(
            "{base}/api/artifacts/{id}/{purpose}?u={}&{}",
            query_value(&user),
            auth.url_signature(purpose, &format!("{id}@{user}"), secs)
        )
    })
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
    let artifact = artifacts::new_artifact(&body, st.cfg.max_upload, &caller.0.user)?;
    let upload = links(&st, &headers, "upload", &caller);
    Ok(artifacts::register(
        &st.backend,
        caller.0.clone(),
        idem,
        artifact,
        upload,
        direct(&st),
    )
    .await?
    .into())
}

/// `PUT <upload url>`: the raw bytes, authorised by the URL signature.
pub async fn upload(
    State(st): State<AppState>,
    Path(id): Path<String>,
    q: Params,
    body: Body,
) -> ApiResult {
    let user = q.get("u").unwrap_or_default().to_owned();
    st.auth.check_url(
        "upload",
        &format!("{id}@{user}"),
        q.get("exp"),
        q.get("sig"),
    )?;
    let counted = body_stream(body).inspect(|c| {
        if let Ok(c) = c {
            BYTES_RECEIVED.fetch_add(c.len() as u64, Ordering::Relaxed);
        }
    });
    artifacts::upload(&st.backend, &user, id, Box::pin(counted), st.cfg.max_upload)
        .await
        .map(Reply::ok)
        .map_err(ApiError::from)
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
    Ok(
        artifacts::confirm(&st.backend, caller.0.clone(), idem, id, want)
            .await?
            .into(),
    )
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
    write_once(&st, &caller, idem, move |tx| {
        artifacts::attach(tx, &run, &aid, &category)
    })
    .await
}

/// `GET /api/artifacts/{id}` (with a signed download `url`).
pub async fn get_one(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let download = links(&st, &headers, "download", &caller);
    read(&st, &caller, move |tx| artifacts::get(tx, &id, &download))
        .await
        .map(Reply::ok)
}

/// `GET /api/artifacts?runs=["<id>"]` → `{data, count}`.
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    q: Params,
) -> ApiResult {
    let runs = q.list("runs")?;
    let start = q.usize("start")?.unwrap_or(0);
    let count = q.usize("count")?.unwrap_or(usize::MAX);
    let sort = artifacts::parse_sorting(q.get("sorting"))?;
    let download = links(&st, &headers, "download", &caller);
    read(&st, &caller, move |tx| {
        artifacts::list(tx, &runs, sort.as_deref(), (start, count), &download)
    })
    .await
    .map(Reply::ok)
}

/// `GET /api/runs/{id}/artifacts?name=&category=` → a JSON array.
pub async fn of_run(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(run): Path<String>,
    q: Params,
) -> ApiResult {
    let name = q.get("name").map(str::to_owned);
    let category = q.get("category").map(str::to_owned);
    let download = links(&st, &headers, "download", &caller);
    read(&st, &caller, move |tx| {
        artifacts::of_run(tx, &run, name.as_deref(), category.as_deref(), &download)
    })
    .await
    .map(Reply::ok)
}

/// `GET /api/runs/{run}/artifacts/{aid}` → `{"category"}`.
pub async fn category(
    State(st): State<AppState>,
    caller: Caller,
    Path((run, aid)): Path<(String, String)>,
) -> ApiResult {
    read(&st, &caller, move |tx| artifacts::category(tx, &run, &aid))
        .await
        .map(Reply::ok)
}

/// `GET <download url>`: authorised by the signature, a `307` redirect to
/// a presigned URL at the object store (which then sends the bytes) or,
/// with a blob directory or `--blobs-stream-through`, the bytes streamed.
pub async fn download(
    State(st): State<AppState>,
    Path(id): Path<String>,
    q: Params,
) -> Result<Response, ApiError> {
    let user = q.get("u").unwrap_or_default().to_owned();
    st.auth.check_url(
        "download",
        &format!("{id}@{user}"),
        q.get("exp"),
        q.get("sig"),
    )?;
    if let Some(ttl) = direct(&st)
        && let Some(url) = artifacts::direct_download(&st.backend, &user, id.clone(), ttl).await?
    {
        let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
        if let Ok(v) = header::HeaderValue::from_str(&url) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        return Ok(r);
    }
    let file = artifacts::open(&st.backend, &user, id).await?;
    // Never the declared type as is: the first chunk is looked at (see
    // super::secure_headers), then sent on with the rest.
    let mut bytes = file.bytes;
    let first = match bytes.next().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(e)) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("storage error: {e}"),
            ));
        }
        None => bytes::Bytes::new(),
    };
    let mut headers = secure_headers::file_headers(&file.mime_type, &first, &file.name);
    headers.push((header::CONTENT_LENGTH, file.len.to_string()));
    let stream = futures_util::stream::once(async move { Ok::<_, String>(first) })
        .chain(bytes)
        .inspect(|c| {
            if let Ok(c) = c {
                BYTES_SENT.fetch_add(c.len() as u64, Ordering::Relaxed);
            }
        });
    let mut r = (StatusCode::OK, Body::from_stream(stream)).into_response();
    for (k, v) in headers {
        if let Ok(v) = header::HeaderValue::from_str(&v) {
            r.headers_mut().insert(k, v);
        }
    }
    Ok(r)
}

/// `DELETE /api/artifacts/{id}` (the bytes stay while other artifacts share them).
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let who = caller.0.clone();
    write_once(&st, &caller, idem, move |tx| {
        let r = artifacts::delete(tx, &id)?;
        crate::domain::audit::record(tx, &who, "artifact_delete", &id, "")?;
        Ok(r)
    })
    .await
}

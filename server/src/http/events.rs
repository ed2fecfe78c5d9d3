//! `/api/events`: msgpack batches of log lines in, `{data, count}` out.

use crate::domain::filters;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use rusqlite::{Connection, params};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, AppState, Bytes, Caller, Params, blocking, idem};
use crate::storage::sqlite::Reply;
use crate::util::{fmt_ts, now_us, parse_ts};

/// Accepted `log_level` values.
pub const LEVELS: [&str; 5] = ["debug", "info", "warning", "error", "critical"];
/// Longest accepted event message.
pub use simtrack::model::MAX_EVENT_BYTES as MAX_MESSAGE;

#[derive(Deserialize)]
struct Batch {
    run: String,
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    message: String,
    #[serde(default)]
    log_level: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
}

/// Decodes a msgpack (or, with a JSON content type, JSON) request body.
pub fn decode_body<'a, T: Deserialize<'a>>(
    headers: &HeaderMap,
    body: &'a [u8],
) -> Result<T, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if json {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
    } else {
        rmp_serde::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("malformed msgpack body: {e}")))
    }
}

/// Stores one event.
pub fn record(
    tx: &Connection,
    run: &str,
    ts: i64,
    level: &str,
    message: &str,
) -> Result<(), ApiError> {
    tx.prepare_cached(
        "INSERT INTO events (run_id, ts, log_level, message) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| s.execute(params![run, ts, level, message]))
    .map_err(ApiError::db)?;
    Ok(())
}

/// `POST /api/events` msgpack `{"run", "events": [{message, log_level, timestamp}]}`.
pub async fn ingest(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Bytes(body): Bytes,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let batch: Batch = decode_body(&headers, &body)?;
    let now = now_us();
    let mut rows = Vec::with_capacity(batch.events.len());
    for (i, e) in batch.events.into_iter().enumerate() {
        if e.message.len() > MAX_MESSAGE {
            return Err(ApiError::unprocessable(format!(
                "events[{i}].message is longer than {MAX_MESSAGE} bytes"
            )));
        }
        let level = e.log_level.unwrap_or_else(|| "info".into());
        if !LEVELS.contains(&level.as_str()) {
            return Err(ApiError::unprocessable(format!(
                "events[{i}].log_level must be one of {}",
                LEVELS.join(", ")
            )));
        }
        let ts = match e.timestamp {
            None => now,
            Some(t) => parse_ts(&t).ok_or_else(|| {
                ApiError::unprocessable(format!(
                    "events[{i}].timestamp must look like 2024-01-02T03:04:05.000000"
                ))
            })?,
        };
        rows.push((ts, level, e.message));
    }
    let run = batch.run;
    blocking(move || {
        st.store.write(&idem, |tx| {
            super::runs::status_of(tx, &run)?;
            for (ts, level, message) in &rows {
                record(tx, &run, *ts, level, message)?;
            }
            super::runs::touch(tx, &run, now)?;
            crate::domain::alerts::on_events(tx, &run)?;
            Ok(Reply::ok(json!({})))
        })
    })
    .await
}

/// `GET /api/events?run&filters&start&count` (`count=0`: no limit).
pub async fn list(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let run = q
        .get("run")
        .ok_or_else(|| ApiError::unprocessable("query parameter 'run' is required"))?
        .to_owned();
    let fs = filters::parse_all(&q.list("filters")?)?;
    let start = q.usize("start")?.unwrap_or(0);
    let count = q.usize("count")?.filter(|c| *c > 0).unwrap_or(usize::MAX);
    blocking(move || {
        st.store.read(|c| {
            super::runs::status_of(c, &run)?;
            let mut s = c
                .prepare_cached("SELECT ts, log_level, message FROM events WHERE run_id = ?1 ORDER BY ts, seq")
                .map_err(ApiError::db)?;
            let mut total = 0usize;
            let mut data = Vec::new();
            let rows = s
                .query_map(params![run], |r| {
                    Ok(json!({"message": r.get::<_, String>(2)?, "log_level": r.get::<_, String>(1)?,
                              "timestamp": fmt_ts(r.get(0)?)}))
                })
                .map_err(ApiError::db)?;
            for row in rows {
                let d: Value = row.map_err(ApiError::db)?;
                if !filters::all(&fs, &d, &caller.0.user) {
                    continue;
                }
                if total >= start && data.len() < count {
                    data.push(d);
                }
                total += 1;
            }
            Ok(Reply::ok(json!({ "data": data, "count": total })))
        })
    })
    .await
}

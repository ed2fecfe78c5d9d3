//! `/api/events`: msgpack batches of log lines in, `{data, count}` out.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use serde::Deserialize;

use super::{
    ApiError, ApiResult, AppState, Bytes, Caller, Params, Reply, idem, read, write_once_run,
};
use crate::domain::events::{self, NewEvent};
use crate::domain::filters;
use crate::util::now_us;

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
    let rows = events::validate(
        batch
            .events
            .into_iter()
            .map(|e| NewEvent {
                message: e.message,
                log_level: e.log_level,
                timestamp: e.timestamp,
            })
            .collect(),
        now,
    )?;
    let run = batch.run;
    write_once_run(&st, &caller, run.clone(), idem, move |tx| {
        events::ingest(tx, &run, &rows, now)
    })
    .await
}

/// `GET /api/events?run&filters&start&count&system` (`count=0`: no
/// limit; `system=true` includes the server's own `[simtrack]` events).
pub async fn list(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let run = q
        .get("run")
        .ok_or_else(|| ApiError::unprocessable("query parameter 'run' is required"))?
        .to_owned();
    let fs = filters::parse_all(&q.list("filters")?)?;
    let start = q.usize("start")?.unwrap_or(0);
    let count = q.usize("count")?.filter(|c| *c > 0).unwrap_or(usize::MAX);
    let system = q.bool("system");
    let me = caller.0.user.clone();
    read(&st, &caller, move |tx| {
        events::list(tx, &run, &fs, (start, count), &me, system)
    })
    .await
    .map(Reply::ok)
}

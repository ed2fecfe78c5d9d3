//! `/api/runs`: create, read, update (partial), delete, heartbeat, abort.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

use super::{
    ApiResult, AppState, Caller, JsonObject, JsonObjects, Params, Reply, idem, read, write_once,
    write_once_run,
};
use crate::domain::access::DefaultVisibility;
use crate::domain::{Idem, audit, filters, runs};

/// Most runs one `POST /api/runs` may create.
pub const MAX_BATCH_RUNS: usize = 1000;

/// `POST /api/runs` → `{"id", "name"}`; a JSON array of run bodies creates
/// them all in one transaction → `[{"id", "name"}, ...]` in order.
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonObjects(bodies, batch): JsonObjects,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    if bodies.len() > MAX_BATCH_RUNS {
        return Err(super::ApiError::unprocessable(format!(
            "a batch creates at most {MAX_BATCH_RUNS} runs"
        )));
    }
    // The Simvue client always sends `visibility`; a client that sends
    // none gets the server's default.
    let default_vis = if st.cfg.default_visibility_group {
        DefaultVisibility::Group
    } else {
        DefaultVisibility::Private
    };
    let new = bodies
        .into_iter()
        .map(|mut b| {
            if b.get("visibility").is_none_or(Value::is_null) {
                b.insert("visibility".into(), default_vis.visibility().doc());
            }
            runs::new_run(&b, &caller.0.user)
        })
        .collect::<Result<Vec<_>, _>>()?;
    write_once(&st, &caller, idem, move |tx| {
        let mut made = new
            .iter()
            .map(|run| runs::create(tx, run))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(if batch {
            Value::Array(made)
        } else {
            made.pop().unwrap_or(Value::Null)
        })
    })
    .await
}

/// `GET /api/runs/{id}`.
pub async fn get_one(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    read(&st, &caller, move |tx| runs::load(tx, &id))
        .await
        .map(Reply::ok)
}

/// The run list query of a request: `filters`, `sorting`, `start`, `count`.
pub fn query(q: &Params) -> Result<runs::Query, super::ApiError> {
    Ok(runs::Query {
        filters: filters::parse_all(&q.list("filters")?)?,
        sorting: runs::parse_sorting(q.get("sorting"))?,
        start: q.usize("start")?.unwrap_or(0),
        count: q.usize("count")?.unwrap_or(100),
        metrics: match q.get("metrics") {
            None | Some("") => None,
            Some(_) => {
                let names = q.list("metrics")?;
                if names.len() > runs::LIST_METRICS {
                    return Err(super::ApiError::unprocessable(format!(
                        "'metrics' names at most {} metrics",
                        runs::LIST_METRICS
                    )));
                }
                Some(names)
            }
        },
    })
}

/// `GET /api/runs?filters=[...]&start&count&sorting` → `{data, count}`.
pub async fn list(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let query = query(&q)?;
    let me = caller.0.user.clone();
    read(&st, &caller, move |tx| runs::list(tx, &query, &me))
        .await
        .map(Reply::ok)
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
    let who = caller.0.clone();
    write_once(&st, &caller, idem, move |tx| {
        runs::update(tx, &id, &body)?;
        if let Some(v) = body.get("visibility") {
            audit::record(tx, &who, "run_visibility", &id, &v.to_string())?;
        }
        Ok(json!({ "id": id }))
    })
    .await
}

/// `DELETE /api/runs/{id}` → `{}`.
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let who = caller.0.clone();
    write_once(&st, &caller, idem, move |tx| {
        runs::delete(tx, &id)?;
        audit::record(tx, &who, "run_delete", &id, "")?;
        Ok(json!({}))
    })
    .await
}

/// `PUT /api/runs/{id}/heartbeat` → `{"last_heartbeat", "abort"}`: the
/// abort flag rides along so a client can poll both with one request.
pub async fn heartbeat(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    let idem = Idem {
        scope: caller.0.token_id.clone(),
        key: None,
    };
    write_once_run(&st, &caller, id.clone(), idem, move |tx| {
        runs::heartbeat(tx, &id)
    })
    .await
}

/// `GET /api/runs/{id}/abort` → `{"status": bool, "reason"}`.
pub async fn abort_status(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    read(&st, &caller, move |tx| {
        let (abort, reason) = runs::abort_flag(tx, &id)?;
        Ok(Reply::ok(json!({ "status": abort, "reason": reason })))
    })
    .await
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
    let who = caller.0.clone();
    write_once(&st, &caller, idem, move |tx| {
        runs::request_abort(tx, &id, &reason)?;
        audit::record(tx, &who, "run_abort", &id, &reason)?;
        Ok(json!({ "status": true }))
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
    write_once(&st, &caller, idem, move |tx| {
        runs::update(tx, &id, &m)?;
        Ok(json!({}))
    })
    .await
}

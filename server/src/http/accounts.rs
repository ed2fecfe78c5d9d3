//! `/api/users` and `/api/tenants`: Simvue's user and tenant
//! administration on our users and groups ([`crate::domain::accounts`]);
//! `/api/whoami` and `/api/stats`: the caller's name and what they have.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::json;

use super::{ApiResult, AppState, Caller, JsonObject, Params, Reply, idem, read, write_once};
use crate::domain::{accounts, stats};

fn page(q: &Params) -> Result<(usize, usize), super::ApiError> {
    Ok((
        q.usize("start")?.or(q.usize("offset")?).unwrap_or(0),
        q.usize("count")?.unwrap_or(100),
    ))
}

/// `GET /api/users?start&count` → `{data, count}`.
pub async fn user_list(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let p = page(&q)?;
    read(&st, &caller, move |tx| accounts::user_list(tx, p))
        .await
        .map(Reply::ok)
}

/// `GET /api/users/{id}`.
pub async fn user_get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    read(&st, &caller, move |tx| accounts::user_get(tx, &id))
        .await
        .map(Reply::ok)
}

/// `POST /api/users` → `{"id"}`.
pub async fn user_create(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let by = caller.0.clone();
    write_once(&st, &caller, idem, move |tx| {
        accounts::user_create(tx, &by, &body)
    })
    .await
}

/// `PUT /api/users/{id}`.
pub async fn user_update(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let by = caller.0.clone();
    write_once(&st, &caller, idem, move |tx| {
        accounts::user_update(tx, &by, &id, &body)
    })
    .await
}

/// `DELETE /api/users/{id}` → `{}`.
pub async fn user_delete(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let by = caller.0.clone();
    write_once(&st, &caller, idem, move |tx| {
        accounts::user_delete(tx, &by, &id)
    })
    .await
}

/// `GET /api/tenants?start&count` → `{data, count}`.
pub async fn tenant_list(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let p = page(&q)?;
    read(&st, &caller, move |tx| accounts::tenant_list(tx, p))
        .await
        .map(Reply::ok)
}

/// `GET /api/tenants/{id}`.
pub async fn tenant_get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    read(&st, &caller, move |tx| accounts::tenant_get(tx, &id))
        .await
        .map(Reply::ok)
}

/// `POST /api/tenants` → `{"id"}`.
pub async fn tenant_create(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let by = caller.0.clone();
    write_once(&st, &caller, idem, move |tx| {
        accounts::tenant_create(tx, &by, &body)
    })
    .await
}

/// `PUT /api/tenants/{id}`.
pub async fn tenant_update(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let by = caller.0.clone();
    write_once(&st, &caller, idem, move |tx| {
        accounts::tenant_update(tx, &by, &id, &body)
    })
    .await
}

/// `DELETE /api/tenants/{id}` → `{}`.
pub async fn tenant_delete(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let by = caller.0.clone();
    write_once(&st, &caller, idem, move |tx| {
        accounts::tenant_delete(tx, &by, &id)
    })
    .await
}

/// `GET /api/stats` → `{"runs": {created, running, completed, data}}`;
/// `?single=false` → per-user totals.
pub async fn stats(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let per_user = q
        .get("single")
        .is_some_and(|s| s.eq_ignore_ascii_case("false"));
    let me = caller.0.user.clone();
    read(&st, &caller, move |tx| {
        if per_user {
            stats::per_user(tx, &me)
        } else {
            stats::runs(tx)
        }
    })
    .await
    .map(Reply::ok)
}

/// `GET /api/whoami` → `{"username"}`: the name of the caller's token.
pub async fn whoami(caller: Caller) -> ApiResult {
    Ok(Reply::ok(json!({ "username": caller.0.user })))
}

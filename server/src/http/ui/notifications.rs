//! The caller's notification channels and deliveries (`/api/ui/notifications`)
//! and a run's deliveries (`/api/ui/runs/{id}/notifications`). The caller
//! is the token's user; a user sees and changes only their own channels.

use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::domain::notify::{self, NewChannel};
use crate::http::{ApiError, ApiResult, AppState, Caller, JsonObject, Reply, blocking, read};

/// Most deliveries a list shows.
const RECENT: usize = 50;

/// `GET /api/ui/notifications` → `{"channels": {data, count}, "deliveries":
/// {data, count}, "events", "formats"}`: the caller's channels (each with
/// its last delivery) and newest deliveries.
pub async fn list(State(st): State<AppState>, caller: Caller) -> ApiResult {
    let user = caller.0.user.clone();
    read(&st, &caller, move |tx| {
        let user = user.as_str();
        Ok(Reply::ok(json!({
            "user": user,
            "channels": notify::list_channels(tx, Some(user))?,
            "deliveries": notify::deliveries(tx, Some(user), None, RECENT)?,
            "events": notify::EVENTS,
            "default_events": notify::DEFAULT_EVENTS,
            "formats": notify::FORMATS,
        })))
    })
    .await
}

fn text(body: &serde_json::Map<String, Value>, k: &str) -> Result<Option<String>, ApiError> {
    match body.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(_) => Err(ApiError::unprocessable(format!("'{k}' must be a string"))),
    }
}

/// `POST /api/ui/notifications` `{"kind": "email"|"webhook", "target",
/// "format"?: "json"|"slack", "events"?: [...]}` → the new channel.
pub async fn add(
    State(st): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let events = match body.get("events") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|e| e.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ApiError::unprocessable("'events' must be a list of strings"))?,
        ),
        Some(_) => return Err(ApiError::unprocessable("'events' must be a list")),
    };
    let c = NewChannel {
        kind: text(&body, "kind")?.unwrap_or_default(),
        target: text(&body, "target")?.unwrap_or_default(),
        format: text(&body, "format")?,
        events,
    };
    let store = st.backend.state.clone();
    let policy = st.cfg.notify.allow_hosts.clone();
    blocking(move || {
        if c.kind == "webhook" {
            caller.0.may_write()?;
            notify::check_webhook(&policy, &c.target)?;
        }
        crate::domain::write_as(&*store, &caller.0, |tx| {
            notify::add_channel(tx, &caller.0.user, &c).map(Reply::ok)
        })
    })
    .await
}

/// `DELETE /api/ui/notifications/{id}`: removes one of the caller's
/// channels (404 for anyone else's) and its undelivered deliveries.
pub async fn remove(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    let store = st.backend.state.clone();
    blocking(move || {
        crate::domain::write_as(&*store, &caller.0, |tx| {
            notify::remove_channel(tx, &id, Some(&caller.0.user)).map(Reply::ok)
        })
    })
    .await
}

/// `GET /api/ui/runs/{id}/notifications` → `{data, count}`: the caller's
/// deliveries about run `id`, newest first (404 if there is no such run).
pub async fn of_run(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    let user = caller.0.user.clone();
    read(&st, &caller, move |tx| {
        crate::domain::runs::status_of(tx, &id)?;
        notify::deliveries(tx, Some(&user), Some(&id), RECENT).map(Reply::ok)
    })
    .await
}

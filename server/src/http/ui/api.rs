//! UI-only endpoints, beside the Simvue API: who am I (sign-in check),
//! minting a token for "Create new run", the runs table's query, and the
//! detail of a zoomed chart.

use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::domain::auth;
use crate::domain::metrics::{self, Axis};
use crate::http::{
    ApiError, ApiResult, AppState, Caller, JsonObject, Params, Reply, blocking, read,
};

/// `GET /api/ui/whoami` → `{"user", "admin", "group", "read_only",
/// "session", "csrf", "version"}` (401 without valid credentials). `csrf`
/// is the token a signed-in page's writes carry in `X-CSRF-Token`.
pub async fn whoami(State(st): State<AppState>, caller: Caller) -> ApiResult {
    let who = &caller.0;
    Ok(Reply::ok(json!({
        "user": who.user,
        "admin": who.admin,
        "group": who.group,
        "read_only": who.read_only,
        "session": who.is_session(),
        "csrf": who.is_session().then(|| st.auth.csrf_for(&who.token_id)),
        "version": env!("CARGO_PKG_VERSION"),
    })))
}

/// `POST /api/ui/tokens` `{"days"?, "name"?, "label"?, "read_only"?}` →
/// `{"token", "id", "name", "label", "scope", "days", "exp"}`. A caller
/// mints only for itself: `name`, if given, must be the caller's own;
/// `days` is 1 to [`auth::MAX_MINTED_DAYS`] (default
/// [`auth::DEFAULT_MINTED_DAYS`]) and the token never outlives the
/// caller's (an API token's; a sign-in session mints for the full
/// `days`); at most [`auth::MAX_LIVE_TOKENS_PER_NAME`] unexpired tokens
/// per name (429 beyond); a read-only token mints nothing (403).
pub async fn create_token(
    State(st): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult {
    match body.get("name") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.trim().is_empty() || s.trim() == caller.0.user => {}
        Some(Value::String(_)) => {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                format!(
                    "a token can only mint tokens for its own identity ('{}')",
                    caller.0.user
                ),
            ));
        }
        Some(_) => return Err(ApiError::unprocessable("'name' must be a string")),
    }
    let days = match body.get("days") {
        None | Some(Value::Null) => auth::DEFAULT_MINTED_DAYS,
        Some(v) => v
            .as_u64()
            .filter(|d| (1..=u64::from(auth::MAX_MINTED_DAYS)).contains(d))
            .ok_or_else(|| {
                ApiError::unprocessable(format!(
                    "'days' must be an integer from 1 to {}",
                    auth::MAX_MINTED_DAYS
                ))
            })? as u32,
    };
    let label = match body.get("label") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(_) => return Err(ApiError::unprocessable("'label' must be a string")),
    };
    let read_only = match body.get("read_only") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::unprocessable("'read_only' must be a boolean")),
    };
    let spec = auth::TokenSpec {
        label,
        days,
        read_only,
    };
    blocking(move || {
        let (token, row) = auth::mint(&*st.backend.state, &caller.0, &spec)?;
        Ok(Reply::ok(json!({
            "token": token, "id": row.id, "name": row.name, "label": row.label,
            "scope": auth::scope(&row), "days": days,
            "exp": crate::util::fmt_ts(row.exp * 1_000_000),
        })))
    })
    .await
}

/// `GET /api/ui/tokens[?all=true]` → `{"data": [{"id", "user", "label",
/// "created", "last_used", "exp", "scope", "expired", "current"}]}`: the
/// caller's own tokens and sessions, or with `all` (administrators only)
/// everyone's. Never the tokens themselves.
pub async fn list_tokens(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let all = q.bool("all");
    if all {
        caller.0.must_be_admin()?;
    }
    blocking(move || {
        let who = &caller.0;
        let rows = auth::list_tokens(&*st.backend.state, (!all).then_some(who.user.as_str()))?;
        let data: Vec<Value> = rows
            .iter()
            .map(|t| auth::token_doc(t, Some(&who.token_id)))
            .collect();
        Ok(Reply::ok(json!({ "data": data })))
    })
    .await
}

/// `DELETE /api/ui/tokens/{id}`: revokes one of the caller's own tokens
/// (an administrator: anyone's); it stops working at once on every server
/// sharing the database. 404 for anyone else's token. A read-only token
/// revokes nothing (403).
pub async fn revoke_token(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    caller.0.may_write()?;
    blocking(move || {
        if !auth::revoke_token(&*st.backend.state, &id, &caller.0)? {
            return Err(crate::domain::Error::not_found(format!(
                "no token {id} of yours"
            )));
        }
        st.auth.forget(&id);
        Ok(Reply::ok(json!({ "id": id })))
    })
    .await
}

/// `GET /api/ui/users` → `{"data": [{"name", "email", "group", "admin",
/// "disabled", "password", "created"}]}`: administrators see every user,
/// others themselves.
pub async fn users(State(st): State<AppState>, caller: Caller) -> ApiResult {
    blocking(move || {
        let who = &caller.0;
        let data: Vec<Value> = crate::domain::users::list(&*st.backend.state)?
            .iter()
            .filter(|u| who.admin || u.name == who.user)
            .map(crate::domain::users::doc)
            .collect();
        Ok(Reply::ok(json!({ "data": data })))
    })
    .await
}

/// `GET /api/audit?before&count` → `{"data": [{"seq", "ts", "actor",
/// "action", "target", "detail", "ip"}], "count"}`, newest first:
/// administrators only (403 otherwise).
pub async fn audit(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    caller.0.must_be_admin()?;
    let before = match q.get("before").filter(|s| !s.is_empty()) {
        None => None,
        Some(b) => Some(
            b.parse::<i64>()
                .map_err(|_| ApiError::bad_request("'before' must be an integer"))?,
        ),
    };
    let count = q.usize("count")?.unwrap_or(200);
    blocking(move || {
        crate::domain::audit::list(&*st.backend.state, &caller.0, before, count).map(Reply::ok)
    })
    .await
}

/// `GET /api/ui/runs?filters&start&count&sorting` → `{data, count}`: the
/// runs table's query, answered by the same engine as `GET /api/runs`.
/// `where` adds one expression of the search box (`AND`, `OR`, `NOT`,
/// parentheses over Simvue filters); a malformed one is a 422 saying why.
pub async fn runs(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let mut query = crate::http::runs::query(&q)?;
    if let Some(w) = q.get("where").filter(|w| !w.trim().is_empty()) {
        query.filters.push(crate::domain::filters::parse_expr(w)?);
    }
    let me = caller.0.user.clone();
    crate::http::read(&st, &caller, move |tx| {
        crate::domain::runs::list(tx, &query, &me)
    })
    .await
    .map(Reply::ok)
}

/// Most points [`metric_range`] answers with.
pub const MAX_RANGE_POINTS: usize = 20_000;

/// `GET /api/ui/metrics/range?run&metric&xaxis&min&max&max_points` →
/// `{"x": [...], "y": [...]}`: one series between `min` and `max` on the
/// x axis (steps, seconds, or microseconds since the epoch), with one point
/// either side so lines reach the edges, downsampled to at most
/// `max_points` keeping each bucket's minimum and maximum. This is what a
/// zoomed chart shows: detail the whole-series read had averaged away.
/// Non-finite values are `null`.
pub async fn metric_range(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let need = |k: &str| {
        q.get(k)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ApiError::unprocessable(format!("query parameter '{k}' is required")))
    };
    let (run, metric) = (need("run")?, need("metric")?);
    let axis = Axis::parse(q.get("xaxis").unwrap_or("step"))
        .ok_or_else(|| ApiError::unprocessable("'xaxis' must be step, time or timestamp"))?;
    let bound = |k: &str, d: f64| -> Result<f64, ApiError> {
        match q.get(k) {
            None | Some("") => Ok(d),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| !x.is_nan())
                .ok_or_else(|| ApiError::bad_request(format!("'{k}' must be a number"))),
        }
    };
    let (min, max) = (
        bound("min", f64::NEG_INFINITY)?,
        bound("max", f64::INFINITY)?,
    );
    let max_points = q
        .usize("max_points")?
        .unwrap_or(1000)
        .clamp(2, MAX_RANGE_POINTS);
    read(&st, &caller, move |tx| {
        let shown = metrics::range(tx, &run, &metric, axis, (min, max), max_points)?;
        let x: Vec<f64> = shown.iter().map(|p| axis.x(p)).collect();
        let y: Vec<Option<f64>> = shown
            .iter()
            .map(|p| p.value.is_finite().then_some(p.value))
            .collect();
        Ok(Reply::ok(json!({ "x": x, "y": y })))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metrics::Point;
    use crate::http::ui::test_support::{body, create_run, params, setup};

    #[tokio::test]
    async fn minted_tokens_are_the_callers_own_and_bounded() {
        let (_d, st, me) = setup();
        assert_eq!(
            body(whoami(State(st.clone()), me.clone()).await)["user"],
            "tester"
        );
        let mut m = serde_json::Map::new();
        m.insert("days".into(), json!(7));
        let made = body(create_token(State(st.clone()), me.clone(), JsonObject(m)).await);
        assert_eq!(made["name"], "tester");
        let tok = made["token"].as_str().unwrap();
        let who = st
            .auth
            .verify(&*st.backend.state, Some(&format!("Bearer {tok}")))
            .unwrap();
        assert_eq!(who.user, "tester");
        // Never for another name.
        let mut m = serde_json::Map::new();
        m.insert("name".into(), json!("ci-job"));
        let err = create_token(State(st.clone()), me.clone(), JsonObject(m))
            .await
            .unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::FORBIDDEN);
        for bad in [json!(0), json!(91), json!(3650), json!("7"), json!(-1)] {
            let mut m = serde_json::Map::new();
            m.insert("days".into(), bad.clone());
            let err = create_token(State(st.clone()), me.clone(), JsonObject(m))
                .await
                .unwrap_err();
            assert_eq!(
                err.status,
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "{bad}"
            );
        }
        // The caller's token lives 1 day: a minted one does not outlive it.
        let mut m = serde_json::Map::new();
        m.insert("days".into(), json!(90));
        let made = body(create_token(State(st.clone()), me.clone(), JsonObject(m)).await);
        let exp = crate::util::parse_ts(made["exp"].as_str().unwrap()).unwrap() / 1_000_000;
        assert!(exp <= me.0.exp(), "{exp} > {}", me.0.exp());
    }

    #[tokio::test]
    async fn a_zoomed_range_keeps_its_detail_and_extremes() {
        let (_d, st, me) = setup();
        let id = create_run(&st, &me, "zoom").await;
        let pts: Vec<Point> = (0..100_000)
            .map(|i| Point {
                step: i,
                time: i as f64 * 0.01,
                ts: 1_700_000_000_000_000 + i * 10_000,
                value: if i == 50_123 {
                    1e9
                } else if i == 50_321 {
                    f64::NAN
                } else {
                    (i % 100) as f64
                },
            })
            .collect();
        crate::domain::write(&*st.backend.state, |tx| {
            crate::domain::metrics::append(tx, &id, "m", &pts)
        })
        .unwrap();
        let q = |kv: &[(&str, &str)]| {
            let mut all = vec![("run", id.as_str()), ("metric", "m")];
            all.extend_from_slice(kv);
            params(&all)
        };
        // Within a range with room for every point: exactly those points,
        // plus one either side.
        let r = body(
            metric_range(
                State(st.clone()),
                me.clone(),
                q(&[("min", "50100"), ("max", "50400"), ("max_points", "1000")]),
            )
            .await,
        );
        let x: Vec<f64> = serde_json::from_value(r["x"].clone()).unwrap();
        assert_eq!(x.first(), Some(&50_099.0));
        assert_eq!(x.last(), Some(&50_401.0));
        assert_eq!(x.len(), 303);
        assert_eq!(r["y"][(50_123 - 50_099) as usize], 1e9);
        assert!(r["y"][(50_321 - 50_099) as usize].is_null());
        // Downsampled: at most max_points, ordered, extremes kept.
        let r = body(
            metric_range(
                State(st.clone()),
                me.clone(),
                q(&[("min", "40000"), ("max", "60000"), ("max_points", "200")]),
            )
            .await,
        );
        let x: Vec<f64> = serde_json::from_value(r["x"].clone()).unwrap();
        let y: Vec<Option<f64>> = serde_json::from_value(r["y"].clone()).unwrap();
        assert!(x.len() <= 200 && x.len() > 100, "{}", x.len());
        assert!(x.windows(2).all(|w| w[0] <= w[1]));
        assert!(y.contains(&Some(1e9)) && y.contains(&Some(0.0)) && y.contains(&Some(99.0)));
        // Other axes use their own units.
        let r = body(
            metric_range(
                State(st.clone()),
                me.clone(),
                q(&[("xaxis", "time"), ("min", "1.0"), ("max", "2.0")]),
            )
            .await,
        );
        assert_eq!(r["x"].as_array().unwrap().len(), 103);
        let r = body(
            metric_range(
                State(st.clone()),
                me.clone(),
                q(&[
                    ("xaxis", "timestamp"),
                    ("min", "1700000000000000"),
                    ("max", "1700000000100000"),
                ]),
            )
            .await,
        );
        assert_eq!(r["x"].as_array().unwrap().len(), 12);
        // Unknown metric: empty; unknown run: 404.
        let r = body(
            metric_range(
                State(st.clone()),
                me.clone(),
                params(&[("run", id.as_str()), ("metric", "nope")]),
            )
            .await,
        );
        assert_eq!(r["x"], json!([]));
        let err = metric_range(
            State(st.clone()),
            me,
            params(&[("run", "nope"), ("metric", "m")]),
        )
        .await
        .unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::NOT_FOUND);
    }
}

//! People signing in to the UI: `POST /api/ui/signin` with a user name and
//! password gives a session cookie (`simtrack_session`: HttpOnly,
//! SameSite=Strict, Path=/, and Secure when the request came over https,
//! which the server knows from `X-Forwarded-Proto: https` sent by a trusted
//! proxy or from an `https://` `--public-url`), and a CSRF token that every
//! write made with the cookie must carry in `X-CSRF-Token` (the page reads
//! it again from `GET /api/ui/whoami`; other sites cannot read our
//! responses). Failed sign-ins are limited per user and per address, counted
//! in the store so the limit holds across replicas ([`crate::domain::signin`]).
//! `POST /api/ui/signout` ends the session.

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::domain::auth::{self, Identity};
use crate::domain::{self, signin, users};
use crate::http::{ApiError, AppState, Caller, JsonObject, blocking, client_ip};

/// The session cookie's name.
pub const COOKIE: &str = "simtrack_session";
/// The session secret in a request's cookies.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Whether the request reached us over https (so the cookie is `Secure`).
fn over_https(parts: &Parts, st: &AppState) -> bool {
    let peer_trusted = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|c| st.cfg.trusted_proxies.contains(&c.0.ip()));
    let forwarded_https = peer_trusted
        && parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    forwarded_https
        || st
            .cfg
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
}

fn set_cookie(r: &mut Response, value: &str, max_age: i64, secure: bool) {
    let v = format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// `POST /api/ui/signin` `{"user", "password"}` → `{"user", "admin",
/// "group", "csrf", "exp"}` and the session cookie; 401 for a wrong name
/// or password (the same answer for both), 429 after too many failures.
pub async fn signin(State(st): State<AppState>, parts: Parts, body: axum::body::Body) -> Response {
    match signin_inner(st, parts, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn signin_inner(
    st: AppState,
    parts: Parts,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    use axum::extract::FromRequest;
    let secure = over_https(&parts, &st);
    let ip = client_ip(&parts, &st.cfg);
    let req = axum::http::Request::from_parts(parts, body);
    let JsonObject(body) = JsonObject::from_request(req, &st).await?;
    let field = |k: &str| -> Result<String, ApiError> {
        match body.get(k) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(ApiError::unprocessable(format!("'{k}' is required"))),
        }
    };
    let (user, password) = (field("user")?, field("password")?);
    let store = st.backend.state.clone();
    let auth = st.auth.clone();
    let (u, a) = (user.clone(), ip.clone());
    let made = blocking(move || {
        // Counted before the password is checked (uncounted on success), so
        // parallel attempts and other replicas see it at once.
        let allowed = domain::write(&*store, |tx| {
            signin::begin(tx, &u, &a, crate::util::now_us())
        })?;
        if !allowed {
            return Ok(Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed sign-ins: try again later",
            )));
        }
        let found = users::check_password(&*store, &u, &password)?;
        drop(password);
        domain::write(&*store, |tx| {
            let now = crate::util::now_us();
            let Some(found) = &found else {
                let reason = match tx.user_get(&u)? {
                    None => "no such user",
                    Some(x) if x.disabled => "the user is disabled",
                    Some(x) if x.password.is_none() => "the user has no password",
                    Some(_) => "wrong password",
                };
                signin::failed(tx, &u, &a, reason, now)?;
                return Ok(Err(ApiError::unauthorized("wrong user name or password")));
            };
            signin::succeeded(tx, &u, &a, now)?;
            let mut by = Identity::console();
            by.user = found.name.clone();
            by.ip = a.clone();
            let (secret, row) = auth::new_session(tx, &auth, &found.name, &by)?;
            Ok(Ok((secret, auth.csrf_for(&row.id), row, found.clone())))
        })
    })
    .await?;
    let (secret, csrf, row, u) = made?;
    let mut r = axum::Json(json!({
        "user": u.name, "admin": u.admin, "group": u.group, "csrf": csrf,
        "exp": crate::util::fmt_ts(row.exp * 1_000_000),
    }))
    .into_response();
    set_cookie(&mut r, &secret, auth::SESSION_SECS, secure);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `POST /api/ui/signout`: ends the caller's session (and clears the
/// cookie). With an API token: nothing to end (the token stays valid).
pub async fn signout(State(st): State<AppState>, caller: Caller) -> Response {
    let who = caller.0.clone();
    let store = st.backend.state.clone();
    let session = who.is_session();
    let r = blocking(move || {
        if session {
            auth::revoke_token(&*store, &who.token_id, &who)?;
        }
        Ok(())
    })
    .await;
    if let Err(e) = r {
        return e.into_response();
    }
    st.auth.forget(&caller.0.token_id);
    let mut r = axum::Json(json!({"signed_out": session})).into_response();
    set_cookie(&mut r, "", 0, false);
    r
}

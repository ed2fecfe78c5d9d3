//! UI-only endpoints, beside the Simvue API: who am I (sign-in check) and
//! minting a token for "Create new run".

use axum::extract::State;
use serde_json::{Value, json};

use crate::api::{ApiError, ApiResult, AppState, Caller, JsonObject, blocking, check_name};
use crate::store::Reply;

/// Longest lifetime a UI-minted token may ask for.
pub const MAX_TOKEN_DAYS: u32 = 3650;

/// `GET /api/ui/whoami` → `{"user", "version"}` (401 without a valid token).
pub async fn whoami(caller: Caller) -> ApiResult {
    Ok(Reply::ok(json!({
        "user": caller.0.user,
        "version": env!("CARGO_PKG_VERSION"),
    })))
}

/// `POST /api/ui/tokens` `{"name"?, "days"?}` → `{"token", "name", "days"}`.
/// Only a signed-in caller may mint; the new token is named after the
/// caller unless a name is given (runs show it as their user).
pub async fn create_token(
    State(st): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let name = match body.get("name") {
        None | Some(Value::Null) => caller.0.user.clone(),
        Some(Value::String(s)) if s.trim().is_empty() => caller.0.user.clone(),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(_) => return Err(ApiError::unprocessable("'name' must be a string")),
    };
    check_name("token name", &name, crate::api::runs::MAX_NAME)?;
    let days = match body.get("days") {
        None | Some(Value::Null) => 365,
        Some(v) => v
            .as_u64()
            .filter(|d| (1..=u64::from(MAX_TOKEN_DAYS)).contains(d))
            .ok_or_else(|| {
                ApiError::unprocessable(format!(
                    "'days' must be an integer from 1 to {MAX_TOKEN_DAYS}"
                ))
            })? as u32,
    };
    blocking(move || {
        let token = crate::auth::create_token(&st.store, &name, days)?;
        Ok(Reply::ok(
            json!({ "token": token, "name": name, "days": days }),
        ))
    })
    .await
}

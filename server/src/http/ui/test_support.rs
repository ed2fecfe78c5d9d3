//! What the unit tests of the UI endpoints share: a state on an embedded
//! store in a temporary directory with one signed-in caller, query
//! parameters, reply bodies, and runs made through the API's own handler.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::config::ServerConfig;
use crate::domain::auth::Auth;
use crate::http::{ApiResult, AppState, Caller, JsonObjects, Params};

/// An embedded store in a fresh temporary directory (keep it alive as long
/// as the state), and a caller `tester` holding a one-day API token.
pub(crate) fn setup() -> (tempfile::TempDir, AppState, Caller) {
    let dir = tempfile::tempdir().unwrap();
    let backend = crate::storage::open_embedded(&dir.path().join("store")).unwrap();
    let store = backend.state.clone();
    let token = crate::domain::auth::create_token(&*store, "tester", 1).unwrap();
    let auth = Auth::new(&*store).unwrap();
    let me = auth
        .verify(&*store, Some(&format!("Bearer {token}")))
        .unwrap();
    let st = AppState {
        backend,
        auth: Arc::new(auth),
        cfg: Arc::new(ServerConfig::new(dir.path().to_path_buf())),
    };
    (dir, st, Caller(me))
}

/// Query parameters from key-value pairs.
pub(crate) fn params(kv: &[(&str, &str)]) -> Params {
    Params(
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<HashMap<_, _>>(),
    )
}

/// The JSON body of a reply that must have succeeded.
pub(crate) fn body(r: ApiResult) -> Value {
    serde_json::from_str(&r.unwrap().body).unwrap()
}

/// Creates a run called `name` through `POST /api/runs`'s handler; its id.
pub(crate) async fn create_run(st: &AppState, me: &Caller, name: &str) -> String {
    let mut m = serde_json::Map::new();
    m.insert("name".into(), json!(name));
    body(
        crate::http::runs::create(
            State(st.clone()),
            me.clone(),
            HeaderMap::new(),
            JsonObjects(vec![m], false),
        )
        .await,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

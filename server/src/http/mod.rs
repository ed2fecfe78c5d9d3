//! The HTTP layer: routing, token extraction, bounded bodies, wire formats
//! (JSON, msgpack), idempotency-key plumbing and status codes. One module
//! per resource of the Simvue REST surface under `/api`, plus the web UI
//! ([`ui`]) and the OpenAPI document ([`openapi`]). Handlers parse the
//! request, call the domain ([`crate::domain`]) and turn its answer, or its
//! [`crate::domain::Error`], into a response: the one place where domain
//! errors become status codes is `From<domain::Error> for ApiError`.

pub mod accounts;
pub mod alerts;
pub mod artifacts;
pub mod events;

pub mod folders;
pub mod grids;
pub mod metrics;
pub mod openapi;
pub mod runs;
pub mod secure_headers;
pub mod serve;
pub mod tags;
pub mod ui;
pub mod wire;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use crate::config::ServerConfig;
use crate::domain::auth::{Auth, Identity};
use crate::domain::{self, ErrorKind, Idem};
use crate::storage::{Backend, Recorded};

/// Everything a handler needs.
#[derive(Debug, Clone)]
pub struct AppState {
    /// State and blob stores, chosen at start.
    pub backend: Backend,
    /// Token verification and URL signing.
    pub auth: Arc<Auth>,
    /// Limits and addresses.
    pub cfg: Arc<ServerConfig>,
}

/// An error answered as `{"detail": "..."}` with a 4xx/5xx status.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable reason.
    pub detail: String,
    /// For a conflict with an existing object, its id (sent beside `detail`).
    pub id: Option<String>,
}

impl ApiError {
    /// Any status.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
            id: None,
        }
    }
    /// 400
    pub fn bad_request(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, d)
    }
    /// 401
    pub fn unauthorized(d: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, d)
    }
    /// 404
    pub fn not_found(d: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, d)
    }
    /// 413
    pub fn too_large(d: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, d)
    }
    /// 422
    pub fn unprocessable(d: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, d)
    }
}

impl From<domain::Error> for ApiError {
    fn from(e: domain::Error) -> Self {
        let status = match e.kind {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::TooMany => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            // The storage backend failed (a lost database, a full disk):
            // the request may succeed when it is resent, so 503, which
            // every client and balancer treats as "retry".
            ErrorKind::Internal => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError {
            status,
            detail: e.detail,
            id: e.id,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            eprintln!("simtrack server: {} {}", self.status, self.detail);
        }
        let body = match self.id {
            Some(id) => json!({ "id": id, "detail": self.detail }),
            None => json!({ "detail": self.detail }),
        };
        let mut r = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// A JSON response: a status and its body text.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// JSON body.
    pub body: String,
}

impl Reply {
    /// `200` with a JSON body.
    pub fn ok(v: Value) -> Self {
        Reply {
            status: 200,
            body: v.to_string(),
        }
    }
}

impl From<Recorded> for Reply {
    fn from(r: Recorded) -> Self {
        Reply {
            status: r.status,
            body: r.body,
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            self.body,
        )
            .into_response()
    }
}

/// Handler result: a JSON reply or an error.
pub type ApiResult = Result<Reply, ApiError>;

/// The authenticated caller (extracting it answers 401 when the request
/// carries no valid API token (`Authorization: Bearer`) or sign-in session
/// (the `simtrack_session` cookie), and 403 when a session's write lacks
/// its CSRF token).
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

/// The client's address: the peer, or, behind a trusted proxy, the
/// nearest address in `X-Forwarded-For` that is not a trusted proxy.
pub fn client_ip(parts: &Parts, cfg: &ServerConfig) -> String {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let Some(peer) = peer else {
        return String::new();
    };
    if !cfg.trusted_proxies.contains(&peer) {
        return peer.to_string();
    }
    let forwarded: Vec<std::net::IpAddr> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|a| !cfg.trusted_proxies.contains(a))
        .map_or(peer, |a| *a)
        .to_string()
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // An API token wins; a browser's session cookie otherwise.
        let (token, cookie) = match &header {
            Some(h) => (domain::auth::bearer(Some(h))?.to_owned(), false),
            None => match ui::session::cookie(&parts.headers) {
                Some(c) => (c, true),
                None => {
                    return Err(ApiError::unauthorized(
                        "missing Authorization header (or sign-in session)",
                    ));
                }
            },
        };
        let mut who = match st.auth.verify_token_cached(&token) {
            Some(r) => r?,
            None => {
                let (store, auth) = (st.backend.state.clone(), st.auth.clone());
                blocking(move || auth.verify_token(&*store, &token)).await?
            }
        };
        // A cookie is sent by the browser whoever made the page: a write
        // with one must prove it comes from our own page.
        if cookie
            && !matches!(
                parts.method,
                axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
            )
        {
            who.check_csrf(
                parts
                    .headers
                    .get("x-csrf-token")
                    .and_then(|v| v.to_str().ok()),
            )?;
        }
        if cookie && !who.is_session() {
            return Err(ApiError::unauthorized("invalid session"));
        }
        if !cookie && who.is_session() {
            // A session secret is only ever a cookie.
            return Err(ApiError::unauthorized("invalid token"));
        }
        who.ip = client_ip(parts, &st.cfg);
        Ok(Caller(who))
    }
}

/// Maximum accepted length of an `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The `Idempotency-Key` of a mutating request, scoped to its caller.
pub fn idem(caller: &Caller, headers: &HeaderMap) -> Result<Idem, ApiError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v
                .to_str()
                .map_err(|_| ApiError::bad_request("Idempotency-Key must be ASCII"))?;
            if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY {
                return Err(ApiError::bad_request(format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
                )));
            }
            Some(k.to_owned())
        }
    };
    Ok(Idem {
        scope: caller.0.token_id.clone(),
        key,
    })
}

/// A request body read whole, at most `cfg.max_body` bytes (413 beyond).
#[derive(Debug)]
pub struct Bytes(pub bytes::Bytes);

/// Most bytes read and discarded from an oversized body before answering
/// 413, so that a client that sends its whole body before reading the
/// response (most do) sees the 413 instead of a reset connection.
const DRAIN_CAP: u64 = 256 << 20;

async fn drain(mut stream: axum::body::BodyDataStream, mut seen: u64) {
    use futures_util::StreamExt;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len() as u64;
            if seen > DRAIN_CAP {
                break;
            }
        }
    })
    .await;
}

impl FromRequest<AppState> for Bytes {
    type Rejection = ApiError;
    async fn from_request(req: Request, st: &AppState) -> Result<Self, ApiError> {
        use futures_util::StreamExt;
        let limit = st.cfg.max_body;
        let too_large =
            || ApiError::too_large(format!("request body exceeds the limit of {limit} bytes"));
        let announced = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let mut stream = req.into_body().into_data_stream();
        if announced.is_some_and(|len| len > limit as u64) {
            drain(stream, 0).await;
            return Err(too_large());
        }
        let mut buf = bytes::BytesMut::with_capacity(announced.unwrap_or(0) as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request(format!("could not read the request body: {e}"))
            })?;
            if buf.len() + chunk.len() > limit {
                drain(stream, (buf.len() + chunk.len()) as u64).await;
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Bytes(buf.freeze()))
    }
}

/// A JSON object body (Python's `NaN`/`Infinity` tokens read as `null`).
#[derive(Debug)]
pub struct JsonObject(pub serde_json::Map<String, Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;
    async fn from_request(req: Request, st: &AppState) -> Result<Self, ApiError> {
        let Bytes(b) = Bytes::from_request(req, st).await?;
        if b.is_empty() {
            return Ok(JsonObject(serde_json::Map::new()));
        }
        match crate::util::lenient_json(&b) {
            Ok(Value::Object(m)) => Ok(JsonObject(m)),
            Ok(_) => Err(ApiError::unprocessable(
                "the request body must be a JSON object",
            )),
            Err(e) => Err(ApiError::bad_request(format!("malformed JSON body: {e}"))),
        }
    }
}

/// A JSON object body, or a JSON array of objects (a batch): the objects
/// and whether they came as an array.
#[derive(Debug)]
pub struct JsonObjects(pub Vec<serde_json::Map<String, Value>>, pub bool);

impl FromRequest<AppState> for JsonObjects {
    type Rejection = ApiError;
    async fn from_request(req: Request, st: &AppState) -> Result<Self, ApiError> {
        let Bytes(b) = Bytes::from_request(req, st).await?;
        if b.is_empty() {
            return Ok(JsonObjects(vec![serde_json::Map::new()], false));
        }
        let not_objects = || {
            ApiError::unprocessable("the request body must be a JSON object or a list of objects")
        };
        match crate::util::lenient_json(&b) {
            Ok(Value::Object(m)) => Ok(JsonObjects(vec![m], false)),
            Ok(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::Object(m) => Ok(m),
                    _ => Err(not_objects()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| JsonObjects(v, true)),
            Ok(_) => Err(not_objects()),
            Err(e) => Err(ApiError::bad_request(format!("malformed JSON body: {e}"))),
        }
    }
}

/// The query string as a map (a malformed query is a 400).
#[derive(Debug)]
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|q| Params(q.0))
            .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))
    }
}

impl Params {
    /// A parameter.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    /// An unsigned integer parameter (400 when not one).
    pub fn usize(&self, k: &str) -> Result<Option<usize>, ApiError> {
        self.get(k)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "query parameter '{k}' must be a non-negative integer"
                    ))
                })
            })
            .transpose()
    }
    /// A Python-style boolean (`True`/`False`, also `true`/`1`).
    pub fn bool(&self, k: &str) -> bool {
        matches!(self.get(k), Some("True" | "true" | "1"))
    }
    /// A JSON-encoded list of strings (how the Simvue client sends lists).
    pub fn list(&self, k: &str) -> Result<Vec<String>, ApiError> {
        match self.get(k) {
            None | Some("") => Ok(Vec::new()),
            Some(s) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Array(a)) => a
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s),
                        _ => Err(ApiError::bad_request(format!(
                            "query parameter '{k}' must be a JSON list of strings"
                        ))),
                    })
                    .collect(),
                Ok(Value::String(s)) => Ok(vec![s]),
                _ if !s.starts_with('[') => Ok(vec![s.to_owned()]),
                _ => Err(ApiError::bad_request(format!(
                    "query parameter '{k}' must be a JSON list of strings"
                ))),
            },
        }
    }
}

/// Runs blocking work (a domain operation on the state store, CPU-heavy
/// decoding) off the async executor.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> domain::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    domain::blocking(f).await.map_err(ApiError::from)
}

/// Applies `f` to a read transaction of the state store as `caller` sees
/// it ([`domain::read_as`]: what the caller may not see does not exist),
/// off the executor.
pub async fn read<T: Send + 'static>(
    st: &AppState,
    caller: &Caller,
    f: impl FnOnce(&dyn crate::storage::ReadTx) -> domain::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let store = st.backend.state.clone();
    let who = caller.0.clone();
    blocking(move || domain::read_as(&*store, &who, f)).await
}

/// Where a streamed JSON response is written ([`stream_read`]): a buffer
/// sent to the client each time it fills.
#[derive(Debug)]
pub struct Sink {
    buf: String,
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, domain::Error>>,
}

/// Bytes a [`Sink`] gathers before sending them.
const SINK_BUFFER: usize = 64 << 10;
/// Buffers in flight per streamed response (its memory is bounded by
/// about `SINK_BUFFER * (SINK_QUEUE + 1)`).
const SINK_QUEUE: usize = 4;

impl Sink {
    /// The buffer to append to.
    pub fn buf(&mut self) -> &mut String {
        &mut self.buf
    }

    /// Sends the buffer once it is full (waiting while the client is slow);
    /// an error once the client has gone away, so the producer stops.
    pub fn flush_if_full(&mut self) -> domain::Result<()> {
        if self.buf.len() >= SINK_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> domain::Result<()> {
        let b = bytes::Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(b))
            .map_err(|_| domain::Error::internal("the client went away"))
    }
}

/// A `200` JSON response written by `produce` inside one read transaction
/// on a blocking thread and streamed as it is written, so its size never
/// sits in server memory. An error before the first bytes becomes the
/// usual error response; one after them cuts the response short.
pub async fn stream_read(
    st: &AppState,
    caller: &Caller,
    extra: Option<(&'static str, String)>,
    produce: impl FnOnce(&dyn crate::storage::ReadTx, &mut Sink) -> domain::Result<()> + Send + 'static,
) -> Result<Response, ApiError> {
    use futures_util::StreamExt;
    let store = st.backend.state.clone();
    let who = caller.0.clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel(SINK_QUEUE);
    tokio::task::spawn_blocking(move || {
        let mut sink = Sink {
            buf: String::with_capacity(SINK_BUFFER + 1024),
            tx: tx.clone(),
        };
        let r =
            domain::read_as(&*store, &who, |c| produce(c, &mut sink)).and_then(|()| sink.flush());
        if let Err(e) = r {
            let _ = tx.blocking_send(Err(e));
        }
    });
    let first = match rx.recv().await {
        Some(Ok(b)) => b,
        Some(Err(e)) => return Err(e.into()),
        None => return Err(ApiError::from(domain::Error::internal("the read stopped"))),
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|r| (r.map_err(|e| e.detail), rx))
    });
    let body = futures_util::stream::once(async move { Ok::<_, String>(first) }).chain(rest);
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response();
    if let Some((k, v)) = extra
        && let Ok(v) = axum::http::HeaderValue::from_str(&v)
    {
        r.headers_mut().insert(k, v);
    }
    Ok(r)
}

/// Applies a mutation by `caller` at most once per idempotency key
/// ([`domain::write_once_as`]: only to what the caller may change), off
/// the executor.
pub async fn write_once(
    st: &AppState,
    caller: &Caller,
    idem: Idem,
    f: impl FnOnce(&dyn crate::storage::WriteTx) -> domain::Result<Value> + Send + 'static,
) -> ApiResult {
    let store = st.backend.state.clone();
    let who = caller.0.clone();
    blocking(move || domain::write_once_as(&*store, &who, &idem, f))
        .await
        .map(Reply::from)
}

/// [`write_once`] for a mutation of run `run` alone
/// ([`domain::write_once_run_as`]): batches of different runs are
/// written at the same time where the store allows it.
pub async fn write_once_run(
    st: &AppState,
    caller: &Caller,
    run: String,
    idem: Idem,
    f: impl FnOnce(&dyn crate::storage::WriteTx) -> domain::Result<Value> + Send + 'static,
) -> ApiResult {
    let store = st.backend.state.clone();
    let who = caller.0.clone();
    blocking(move || domain::write_once_run_as(&*store, &who, &run, &idem, f))
        .await
        .map(Reply::from)
}

async fn version(_: Caller) -> ApiResult {
    Ok(Reply::ok(
        json!({ "version": crate::SIMVUE_API_VERSION, "server": "simtrack", "simtrack": env!("CARGO_PKG_VERSION") }),
    ))
}

async fn not_found() -> ApiError {
    ApiError::not_found("Not Found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::http::openapi::document(),
    )
        .into_response()
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/version", get(version))
        .route("/openapi.json", get(openapi))
        .route("/folders", get(folders::list).post(folders::create))
        .route(
            "/folders/{id}",
            get(folders::get_one)
                .put(folders::update)
                .delete(folders::delete),
        )
        .route("/folders/{id}/starred", put(folders::starred))
        .route("/tags", get(tags::list).post(tags::create))
        .route(
            "/tags/{id}",
            get(tags::get_one).put(tags::update).delete(tags::delete),
        )
        .route("/stats", get(accounts::stats))
        .route("/whoami", get(accounts::whoami))
        .route(
            "/users",
            get(accounts::user_list).post(accounts::user_create),
        )
        .route(
            "/users/{id}",
            get(accounts::user_get)
                .put(accounts::user_update)
                .delete(accounts::user_delete),
        )
        .route(
            "/tenants",
            get(accounts::tenant_list).post(accounts::tenant_create),
        )
        .route(
            "/tenants/{id}",
            get(accounts::tenant_get)
                .put(accounts::tenant_update)
                .delete(accounts::tenant_delete),
        )
        .route("/runs", get(runs::list).post(runs::create))
        .route(
            "/runs/{id}",
            get(runs::get_one).put(runs::update).delete(runs::delete),
        )
        .route("/runs/{id}/heartbeat", put(runs::heartbeat))
        .route("/runs/{id}/abort", get(runs::abort_status).put(runs::abort))
        .route("/runs/{id}/starred", put(runs::starred))
        .route("/runs/{id}/artifacts", get(artifacts::of_run))
        .route(
            "/runs/{id}/artifacts/{aid}",
            get(artifacts::category).put(artifacts::attach),
        )
        .route("/metrics", get(metrics::query).post(metrics::ingest))
        .route("/metrics/names", get(metrics::names))
        .route("/events", get(events::list).post(events::ingest))
        .route("/artifacts", get(artifacts::list).post(artifacts::register))
        .route(
            "/artifacts/{id}",
            get(artifacts::get_one)
                .put(artifacts::confirm)
                .delete(artifacts::delete),
        )
        .route(
            "/artifacts/{id}/upload",
            put(artifacts::upload).post(artifacts::upload),
        )
        .route("/artifacts/{id}/download", get(artifacts::download))
        .route("/alerts", get(alerts::list).post(alerts::create))
        .route(
            "/alerts/{id}",
            get(alerts::get_one)
                .put(alerts::update)
                .delete(alerts::delete),
        )
        .route(
            "/alerts/{id}/status/{run}",
            get(alerts::get_status).put(alerts::set_status),
        )
        .route("/alerts/{id}/acknowledge/{run}", post(alerts::acknowledge))
        .merge(grid_routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .merge(crate::http::ui::router())
        .nest("/api", api)
        .fallback(crate::http::ui::not_found_page)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// Grids and array metrics ([`grids`]).
fn grid_routes() -> Router<AppState> {
    Router::new()
        .route("/grids", get(grids::list).post(grids::create))
        .route(
            "/grids/{id}",
            get(grids::get_one).put(grids::update).delete(grids::delete),
        )
        .route("/runs/{id}/grids", get(grids::of_run_grids))
        .route("/runs/{id}/grids/{grid}", put(grids::attach))
        .route("/runs/{id}/metrics", get(grids::of_run).post(grids::ingest))
        .route(
            "/runs/{id}/metrics/",
            get(grids::of_run).post(grids::ingest),
        )
        .route("/runs/{id}/metrics/{*rest}", get(grids::metric_read))
        .route("/runs/{id}/metrics//{*rest}", get(grids::metric_read))
}

/// A request body as the storage layer's byte stream.
pub fn body_stream(body: Body) -> crate::storage::ByteStream {
    use futures_util::StreamExt;
    Box::pin(
        body.into_data_stream()
            .map(|r| r.map_err(|e| e.to_string())),
    )
}

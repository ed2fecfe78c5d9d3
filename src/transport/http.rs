//! The Simvue REST transport (see `docs/protocol.md`): JSON for runs,
//! folders, artifacts and alerts, msgpack batches for metrics and events,
//! `Authorization: Bearer <token>` on every API call.
//!
//! Every mutating request carries `Idempotency-Key: <run id>-<seq>[-<part>]`.
//! A server that honours it (simtrack's does) applies a record once however
//! often a lost response makes us resend it.

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde::Serialize;
use serde_json::{Value, json};

use super::{RefusalNote, RunContext, SendError, Transport};
use crate::config::Config;
use crate::error::{Error, Status};
use crate::record::{
    AlertDef, FileRecord, FolderSpec, MetricBatch, Point, Record, RunSpec, format_timestamp,
    timestamp_bytes,
};

/// The header that makes resends idempotent.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// Most items per metrics or events request, as the reference client sends.
const MAX_ITEMS: usize = 16_000;

/// Speaks the Simvue REST API over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: Client,
    /// `Bearer <token>`, added to API requests only: storage URLs carry
    /// their own credentials and must not see the token.
    auth: HeaderValue,
    timeout: Duration,
    /// `<server>/api`.
    api: String,
    /// `<scheme>://<host>[:port]`, for storage URLs given as paths.
    origin: String,
    /// Largest metrics or events request body to send.
    max_body: usize,
    /// The parts of the record being delivered that the server has
    /// acknowledged.
    parts: Parts,
}

/// A record too large for one request goes as several (metrics and events
/// batches, 413 re-splits, grids). When one of them fails, the caller sends
/// the record again later: the parts the server already acknowledged are
/// not sent again, and the progress restarts the caller's retry schedule.
/// Without that, a proxy failing one request in four made a ten-part record
/// start over from its first part on every retry, with the wait between
/// tries growing to 30 s.
#[derive(Debug, Default)]
struct Parts(Mutex<PartsOf>);

#[derive(Debug, Default)]
struct PartsOf {
    /// The key of the record the parts belong to.
    record: String,
    /// Keys of its parts the server acknowledged.
    acked: HashSet<String>,
    /// A part was acknowledged since [`Transport::partly_delivered`] last asked.
    progressed: bool,
}

impl Clone for Parts {
    /// A clone delivers records of its own: it starts with none.
    fn clone(&self) -> Self {
        Parts::default()
    }
}

impl Parts {
    fn lock(&self) -> std::sync::MutexGuard<'_, PartsOf> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Called as record `key` is (re)sent: parts of another record are forgotten.
    fn start(&self, key: &str) {
        let mut p = self.lock();
        if p.record != key {
            p.record = key.to_owned();
            p.acked.clear();
        }
        p.progressed = false;
    }

    fn acked(&self, part: &str) -> bool {
        self.lock().acked.contains(part)
    }

    fn ack(&self, part: &str) {
        let mut p = self.lock();
        p.acked.insert(part.to_owned());
        p.progressed = true;
    }
}

/// A request body and the items of its batch it holds.
type Encoded = (Range<usize>, Vec<u8>);

/// Why a batch request failed: too large for something on the way (413:
/// split it and try again) or anything else.
enum PostError {
    TooLarge(String),
    Other(SendError),
}

impl From<SendError> for PostError {
    fn from(e: SendError) -> Self {
        PostError::Other(e)
    }
}

impl HttpTransport {
    /// Builds a transport for the server in `config`.
    pub fn new(config: &Config) -> Result<Self, Error> {
        let url = config
            .url
            .as_deref()
            .ok_or_else(|| Error::new(Status::Config, "no server URL configured"))?;
        let token = config.token.as_deref().unwrap_or_default();
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            Error::new(
                Status::Config,
                "the token contains characters not allowed in an HTTP header",
            )
        })?;
        auth.set_sensitive(true);
        let client = Self::builder(config)?.build().map_err(|e| {
            Error::new(
                Status::Config,
                format!("cannot set up the HTTP client: {e}"),
            )
        })?;
        let api = if url.ends_with("/api") {
            url.to_owned()
        } else {
            format!("{url}/api")
        };
        let origin = match url.find("://") {
            Some(i) => match url[i + 3..].find('/') {
                Some(j) => url[..i + 3 + j].to_owned(),
                None => url.to_owned(),
            },
            None => url.to_owned(),
        };
        Ok(HttpTransport {
            client,
            auth,
            timeout: config.request_timeout,
            api,
            origin,
            max_body: config.max_request_bytes.max(1024),
            parts: Parts::default(),
        })
    }

    fn builder(config: &Config) -> Result<reqwest::blocking::ClientBuilder, Error> {
        let mut b = Client::builder()
            .user_agent(concat!("libsimtrack/", env!("CARGO_PKG_VERSION")))
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(30));
        let https = config
            .url
            .as_deref()
            .is_some_and(|u| u.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("https:")));
        // Plain HTTP needs no root certificates; for HTTPS they are read
        // once per process (see `system_roots`), not once per client.
        if !https {
            b = b.tls_built_in_root_certs(false);
        } else if !system_roots().is_empty() {
            b = b.tls_built_in_root_certs(false);
            for cert in system_roots() {
                b = b.add_root_certificate(cert.clone());
            }
        }
        if let Some(bundle) = &config.ca_bundle {
            let pem = std::fs::read(bundle).map_err(|e| {
                Error::new(
                    Status::Config,
                    format!(
                        "cannot read CA bundle {} (SIMTRACK_CA_BUNDLE): {e}",
                        bundle.display()
                    ),
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    Error::new(
                        Status::Config,
                        format!("CA bundle {} holds no PEM certificates", bundle.display()),
                    )
                })?;
            for cert in certs {
                b = b.add_root_certificate(cert);
            }
        }
        Ok(b)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.api, path)
    }

    fn send(&self, req: RequestBuilder, key: Option<&str>) -> Result<Response, SendError> {
        let req = req.header(AUTHORIZATION, self.auth.clone());
        let req = match key {
            Some(k) => req.header(IDEMPOTENCY_HEADER, k),
            None => req,
        };
        let resp = req.send().map_err(|e| SendError::Retry {
            after: None,
            message: format!("server unreachable: {}", error_chain(&e)),
        })?;
        classify(resp)
    }

    pub(crate) fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: &Value,
    ) -> Result<Value, SendError> {
        let req = self.client.request(method, self.url(path)).json(body);
        let resp = self.send(req, key)?;
        read_json(resp)
    }

    /// Posts a msgpack body (one array of `crate::grid`) with its key.
    pub(crate) fn post_msgpack(
        &self,
        path: &str,
        key: &str,
        body: Vec<u8>,
    ) -> Result<(), SendError> {
        if self.parts.acked(key) {
            return Ok(());
        }
        let req = self
            .client
            .post(self.url(path))
            .header(CONTENT_TYPE, "application/msgpack")
            .body(body);
        self.send(req, Some(key))?;
        self.parts.ack(key);
        Ok(())
    }

    /// Posts one msgpack batch body; a 413 comes back as `TooLarge`.
    fn post_batch(&self, path: &str, key: &str, body: Vec<u8>) -> Result<(), PostError> {
        if self.parts.acked(key) {
            return Ok(());
        }
        let req = self
            .client
            .post(self.url(path))
            .header(CONTENT_TYPE, "application/msgpack")
            .header(AUTHORIZATION, self.auth.clone())
            .header(IDEMPOTENCY_HEADER, key)
            .body(body);
        let resp = req.send().map_err(|e| SendError::Retry {
            after: None,
            message: format!("server unreachable: {}", error_chain(&e)),
        })?;
        if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
            let url = resp.url().path().to_owned();
            return Err(PostError::TooLarge(format!(
                "413 Payload Too Large from {url}: {}",
                error_detail(resp)
            )));
        }
        classify(resp).map_err(PostError::Other)?;
        self.parts.ack(key);
        Ok(())
    }

    /// Posts items `range` of a batch, already encoded as `body`. If the
    /// request is too large for the server or a proxy (413), the range is
    /// halved and each half encoded and posted again (with keys of its
    /// own: the refused request was not applied), down to single items; a
    /// single item that is still too large is refused for good.
    fn post_split(
        &self,
        path: &str,
        key: &str,
        range: Range<usize>,
        body: Vec<u8>,
        encode: &dyn Fn(Range<usize>) -> Vec<Encoded>,
    ) -> Result<(), SendError> {
        match self.post_batch(path, key, body) {
            Ok(()) => Ok(()),
            Err(PostError::Other(e)) => Err(e),
            Err(PostError::TooLarge(message)) if range.len() <= 1 => {
                Err(SendError::Rejected { message })
            }
            Err(PostError::TooLarge(_)) => {
                let mid = range.start + range.len() / 2;
                for (h, half) in [range.start..mid, mid..range.end].into_iter().enumerate() {
                    for (k, (r, b)) in encode(half).into_iter().enumerate() {
                        self.post_split(path, &format!("{key}-s{h}.{k}"), r, b, encode)?;
                    }
                }
                Ok(())
            }
        }
    }

    pub(crate) fn server_id<'a>(run: &'a RunContext<'_>) -> Result<&'a str, SendError> {
        run.state
            .server_run_id
            .as_deref()
            .ok_or_else(|| SendError::Rejected {
                message: "run was not created on the server".to_owned(),
            })
    }

    fn create_folder(&self, path: &str, key: &str) -> Result<String, SendError> {
        let v = self.json(
            reqwest::Method::POST,
            "folders",
            Some(key),
            &json!({ "path": path }),
        )?;
        id_of(&v, "folder")
    }

    fn create(&self, run: &mut RunContext<'_>, key: &str, spec: &RunSpec) -> Result<(), SendError> {
        self.create_folder(&spec.folder, &format!("{key}-folder"))?;
        let created = format_timestamp(spec.created);
        let mut body = json!({
            "name": spec.name,
            "folder": spec.folder,
            "tags": spec.tags,
            "metadata": spec.metadata,
            "system": spec.system,
            "status": "running",
            "heartbeat_timeout": spec.heartbeat_timeout,
            "ttl": null,
            "alerts": [],
            "notifications": { "state": "none" },
            "visibility": { "tenant": false, "public": false, "users": [] },
            "created": created,
            "started": created,
        });
        if let Some(d) = &spec.description {
            body["description"] = Value::String(d.clone());
        }
        let v = self.json(reqwest::Method::POST, "runs", Some(key), &body)?;
        run.state.server_run_id = Some(id_of(&v, "run")?);
        Ok(())
    }

    fn metrics(
        &self,
        run: &RunContext<'_>,
        key: &str,
        batch: &MetricBatch,
    ) -> Result<(), SendError> {
        let id = Self::server_id(run)?;
        let created = run.spec.created;
        let encode = |r: Range<usize>| encode_metrics(id, created, batch, r, self.max_body);
        for (i, (range, body)) in encode(0..batch.points.len()).into_iter().enumerate() {
            self.post_split("metrics", &part_key(key, i), range, body, &encode)?;
        }
        Ok(())
    }

    fn events(
        &self,
        run: &RunContext<'_>,
        key: &str,
        events: &[crate::record::Event],
    ) -> Result<(), SendError> {
        let id = Self::server_id(run)?;
        let encode = |r: Range<usize>| encode_events(id, events, r, "info", self.max_body);
        for (i, (range, body)) in encode(0..events.len()).into_iter().enumerate() {
            self.post_split("events", &part_key(key, i), range, body, &encode)?;
        }
        Ok(())
    }

    fn lines(
        &self,
        run: &RunContext<'_>,
        key: &str,
        batch: &crate::record::LineBatch,
    ) -> Result<(), SendError> {
        let id = Self::server_id(run)?;
        let lines = batch
            .events()
            .map_err(|message| SendError::Rejected { message })?;
        let timestamp = format_timestamp(batch.timestamp);
        let encode = |r: Range<usize>| encode_lines(id, &lines, &timestamp, r, self.max_body);
        for (i, (range, body)) in encode(0..lines.len()).into_iter().enumerate() {
            self.post_split("events", &part_key(key, i), range, body, &encode)?;
        }
        Ok(())
    }

    fn update_run(&self, run: &RunContext<'_>, key: &str, body: Value) -> Result<(), SendError> {
        let id = Self::server_id(run)?;
        self.json(
            reqwest::Method::PUT,
            &format!("runs/{id}"),
            Some(key),
            &body,
        )
        .map(drop)
    }

    fn folder(&self, key: &str, spec: &FolderSpec) -> Result<(), SendError> {
        let id = self.create_folder(&spec.path, &format!("{key}-folder"))?;
        let mut body = serde_json::Map::new();
        if let Some(m) = &spec.metadata {
            body.insert("metadata".into(), json!(m));
        }
        if let Some(t) = &spec.tags {
            body.insert("tags".into(), json!(t));
        }
        if let Some(d) = &spec.description {
            body.insert("description".into(), json!(d));
        }
        self.json(
            reqwest::Method::PUT,
            &format!("folders/{id}"),
            Some(key),
            &Value::Object(body),
        )
        .map(drop)
    }

    fn file(&self, run: &RunContext<'_>, key: &str, file: &FileRecord) -> Result<(), SendError> {
        let run_id = Self::server_id(run)?.to_owned();
        let reg = self.json(
            reqwest::Method::POST,
            "artifacts",
            Some(&format!("{key}-register")),
            &json!({
                "name": file.name,
                "original_path": file.original_path,
                "size": file.size,
                "mime_type": file.mime_type,
                "checksum": file.sha256,
                "metadata": null,
            }),
        )?;
        let artifact = id_of(&reg, "artifact")?;
        if let Some(url) = reg
            .get("url")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
        {
            let url = if url.starts_with('/') {
                format!("{}{url}", self.origin)
            } else {
                url.to_owned()
            };
            let path = run
                .files_dir
                .join(Path::new(&file.stored).file_name().unwrap_or_default());
            let body = std::fs::File::open(&path).map_err(|e| SendError::Rejected {
                message: format!(
                    "captured copy of {} is missing from the spool: {e}",
                    file.name
                ),
            })?;
            // As the reference client: the request timeout plus a second per MB.
            let timeout = self.timeout + Duration::from_secs(file.size / 1_000_000);
            let request = match reg.get("fields").and_then(Value::as_object) {
                // A presigned form at the object store (S3 "POST Object"):
                // the bytes go there, not through the server.
                Some(fields) if !fields.is_empty() => {
                    let (content_type, body) = multipart_form(fields, &file.name, file.size, body);
                    self.client
                        .post(&url)
                        .header(CONTENT_TYPE, content_type)
                        .body(body)
                }
                _ => self.client.put(&url).body(body),
            };
            let resp = request
                .timeout(timeout)
                .send()
                .map_err(|e| SendError::Retry {
                    after: None,
                    message: format!("upload of {} failed: {}", file.name, error_chain(&e)),
                })?;
            classify(resp).map_err(|e| match e {
                // An upload link refused as expired (or not yet valid):
                // registering again, as the retry does, gives a fresh one.
                SendError::Unauthorized { message } => SendError::Retry {
                    after: None,
                    message,
                },
                other => other,
            })?;
            self.json(
                reqwest::Method::PUT,
                &format!("artifacts/{artifact}"),
                Some(&format!("{key}-confirm")),
                &json!({ "uploaded": true }),
            )?;
        }
        self.json(
            reqwest::Method::PUT,
            &format!("runs/{run_id}/artifacts/{artifact}"),
            Some(&format!("{key}-attach")),
            &json!({ "category": file.category.as_str() }),
        )
        .map(drop)
    }

    fn alert(
        &self,
        run: &mut RunContext<'_>,
        key: &str,
        alert: &AlertDef,
    ) -> Result<(), SendError> {
        let mut def = json!({
            "rule": alert.rule.as_str(),
            "frequency": alert.frequency,
            "window": alert.window,
            "metric": alert.metric,
            "aggregation": "average",
        });
        if alert.rule.is_threshold() {
            def["threshold"] = json!(alert.low);
        } else {
            def["range_low"] = json!(alert.low);
            def["range_high"] = json!(alert.high);
        }
        let v = self.json(
            reqwest::Method::POST,
            "alerts?deduplicate=True",
            Some(&format!("{key}-create")),
            &json!({
                "name": alert.name,
                "description": null,
                "notification": "none",
                "source": "metrics",
                "alert": def,
                "enabled": true,
                "abort": false,
            }),
        )?;
        let id = id_of(&v, "alert")?;
        if !run.state.alert_ids.contains(&id) {
            run.state.alert_ids.push(id);
        }
        let ids = run.state.alert_ids.clone();
        self.update_run(run, &format!("{key}-attach"), json!({ "alerts": ids }))
    }
}

impl Transport for HttpTransport {
    fn deliver(
        &mut self,
        run: &mut RunContext<'_>,
        _seq: u64,
        key: &str,
        record: &Record,
    ) -> Result<(), SendError> {
        self.parts.start(key);
        match record {
            Record::Create(spec) => self.create(run, key, spec),
            Record::Metrics(batch) => self.metrics(run, key, batch),
            Record::Events(events) => self.events(run, key, events),
            Record::Lines(batch) => self.lines(run, key, batch),
            Record::Metadata(m) => self.update_run(run, key, json!({ "metadata": m })),
            Record::Folder(f) => self.folder(key, f),
            Record::File(f) => self.file(run, key, f),
            Record::Alert(a) => self.alert(run, key, a),
            Record::Grid(g) => crate::grid::deliver_grid(self, run, key, g),
            Record::Array(a) => crate::grid::deliver_array(self, run, key, a),
            Record::Finish(f) => self.update_run(
                run,
                key,
                json!({ "status": f.status.as_str(), "endtime": format_timestamp(f.endtime) }),
            ),
        }
    }

    fn partly_delivered(&mut self) -> bool {
        std::mem::take(&mut self.parts.lock().progressed)
    }

    fn mark_refused(
        &mut self,
        run: &mut RunContext<'_>,
        key: &str,
        note: &RefusalNote<'_>,
    ) -> Result<(), SendError> {
        let id = Self::server_id(run)?.to_owned();
        // The metadata first: it marks the run even where events are what
        // the server refuses.
        self.update_run(
            run,
            &format!("{key}-meta"),
            json!({ "metadata": {
                "simtrack.refused_records": note.refused_records,
                "simtrack.refused_reason": note.reason,
            }}),
        )?;
        let event = [crate::record::Event {
            message: format!(
                "simtrack: the server refused record {} ({}) of this run: {}. It is kept in the client's spool; `simtrack sync` retries it.",
                note.seq, note.what, note.reason
            ),
            timestamp: crate::record::now_unix(),
            level: None,
        }];
        for (_, body) in encode_events(&id, &event, 0..1, "error", usize::MAX) {
            match self.post_batch("events", &format!("{key}-event"), body) {
                Ok(()) | Err(PostError::TooLarge(_)) => {}
                Err(PostError::Other(SendError::Rejected { .. })) => {}
                Err(PostError::Other(e)) => return Err(e),
            }
        }
        Ok(())
    }

    fn heartbeat(&mut self, server_run_id: &str) -> Result<(), SendError> {
        let req = self
            .client
            .put(self.url(&format!("runs/{server_run_id}/heartbeat")));
        self.send(req, None).map(drop)
    }

    fn abort_requested(&mut self, server_run_id: &str) -> Result<bool, SendError> {
        let resp = self.send(
            self.client
                .get(self.url(&format!("runs/{server_run_id}/abort"))),
            None,
        )?;
        Ok(read_json(resp)?
            .get("status")
            .and_then(Value::as_bool)
            .unwrap_or(false))
    }
}

#[derive(Serialize)]
struct EventItem<'a> {
    message: &'a str,
    log_level: &'a str,
    timestamp: String,
}

/// Encodes points `range` of a metrics batch as the msgpack bodies of
/// `POST /api/metrics` (`{"run", "metrics": [{time, timestamp, step,
/// values}]}`), each with at most [`MAX_ITEMS`] items and, unless a single
/// item is larger, at most `max_body` bytes; returned with the points each
/// body holds. Writes msgpack directly: a batch holds up to 16,000 points
/// and this runs for every one of them. Points logged together (same step
/// and time, distinct names: one `log_many` call) share one item, as the
/// reference client groups them.
fn encode_metrics(
    run_id: &str,
    created: f64,
    batch: &MetricBatch,
    range: Range<usize>,
    max_body: usize,
) -> Vec<Encoded> {
    use rmp::encode::{write_f64, write_map_len, write_sint, write_str};
    let points = &batch.points[..range.end];
    let name = |p: &Point| batch.names.get(p.name as usize).map_or("", String::as_str);
    let header = body_header_len(run_id, "metrics");
    let mut bodies = Vec::new();
    let mut items: Vec<u8> = Vec::with_capacity(range.len().min(MAX_ITEMS) * 72 + 64);
    let mut count = 0;
    let mut body_start = range.start;
    let mut i = range.start;
    while i < points.len() {
        let first = points[i];
        let mut j = i + 1;
        while j < points.len()
            && points[j].step == first.step
            && points[j].time.to_bits() == first.time.to_bits()
            && points[i..j].iter().all(|p| p.name != points[j].name)
        {
            j += 1;
        }
        let before = items.len();
        // Writes into a Vec cannot fail.
        let _ = write_map_len(&mut items, 4);
        let _ = write_str(&mut items, "time");
        let _ = write_f64(&mut items, first.time);
        let _ = write_str(&mut items, "timestamp");
        let ts = timestamp_bytes(created + first.time);
        let _ = write_str(&mut items, std::str::from_utf8(&ts).unwrap_or_default());
        let _ = write_str(&mut items, "step");
        let _ = write_sint(&mut items, first.step);
        let _ = write_str(&mut items, "values");
        let _ = write_map_len(&mut items, (j - i) as u32);
        for p in &points[i..j] {
            let _ = write_str(&mut items, name(p));
            let _ = write_f64(&mut items, p.value);
        }
        if count > 0 && (count == MAX_ITEMS || header + items.len() > max_body) {
            let rest = items.split_off(before);
            bodies.push((body_start..i, finish_body(run_id, "metrics", count, &items)));
            items = rest;
            count = 0;
            body_start = i;
        }
        count += 1;
        i = j;
    }
    if count > 0 {
        bodies.push((body_start..i, finish_body(run_id, "metrics", count, &items)));
    }
    bodies
}

/// Encodes events `range` as `POST /api/events` bodies (`{"run", "events":
/// [{message, log_level, timestamp}]}`), split as [`encode_metrics`] does.
fn encode_events(
    run_id: &str,
    events: &[crate::record::Event],
    range: Range<usize>,
    log_level: &str,
    max_body: usize,
) -> Vec<Encoded> {
    encode_items(run_id, "events", range, max_body, |i, items| {
        let e = &events[i];
        let item = EventItem {
            message: &e.message,
            log_level: match e.level {
                Some(l) => l.as_str(),
                None => log_level,
            },
            timestamp: format_timestamp(e.timestamp),
        };
        // Writes into a Vec cannot fail.
        let _ = rmp_serde::encode::write_named(items, &item);
    })
}

/// Encodes lines `range` of a batch of lines (`lines`: its events, all at
/// `timestamp`) as [`encode_events`] encodes events: the same bodies, the
/// time formatted once and each item written directly.
fn encode_lines(
    run_id: &str,
    lines: &[(&str, Option<crate::record::EventLevel>)],
    timestamp: &str,
    range: Range<usize>,
    max_body: usize,
) -> Vec<Encoded> {
    use rmp::encode::write_str;
    encode_items(run_id, "events", range, max_body, |i, items| {
        let (message, level) = lines[i];
        // As rmp_serde writes an `EventItem` (a test checks). Writes into a
        // Vec cannot fail.
        items.push(0x83);
        let _ = write_str(items, "message");
        let _ = write_str(items, message);
        let _ = write_str(items, "log_level");
        let _ = write_str(items, level.map_or("info", |l| l.as_str()));
        let _ = write_str(items, "timestamp");
        let _ = write_str(items, timestamp);
    })
}

/// Bodies of `{"run": run_id, list: [items]}` holding items `range` (each
/// written by `item`), split as [`encode_metrics`] does.
fn encode_items(
    run_id: &str,
    list: &str,
    range: Range<usize>,
    max_body: usize,
    item: impl Fn(usize, &mut Vec<u8>),
) -> Vec<Encoded> {
    let header = body_header_len(run_id, list);
    let mut bodies = Vec::new();
    let mut items = Vec::new();
    let mut count = 0;
    let mut body_start = range.start;
    for i in range.clone() {
        let before = items.len();
        item(i, &mut items);
        if count > 0 && (count == MAX_ITEMS || header + items.len() > max_body) {
            let rest = items.split_off(before);
            bodies.push((body_start..i, finish_body(run_id, list, count, &items)));
            items = rest;
            count = 0;
            body_start = i;
        }
        count += 1;
    }
    if count > 0 {
        bodies.push((
            body_start..range.end,
            finish_body(run_id, list, count, &items),
        ));
    }
    bodies
}

/// Bytes of a batch body before its items (the array header at its largest).
fn body_header_len(run_id: &str, list: &str) -> usize {
    1 + 4 + 5 + run_id.len() + 1 + list.len() + 5
}

/// `{"run": run_id, list: [items]}` in msgpack, `items` already encoded.
fn finish_body(run_id: &str, list: &str, count: usize, items: &[u8]) -> Vec<u8> {
    use rmp::encode::{write_array_len, write_map_len, write_str};
    let mut buf = Vec::with_capacity(body_header_len(run_id, list) + items.len());
    let _ = write_map_len(&mut buf, 2);
    let _ = write_str(&mut buf, "run");
    let _ = write_str(&mut buf, run_id);
    let _ = write_str(&mut buf, list);
    let _ = write_array_len(&mut buf, count as u32);
    buf.extend_from_slice(items);
    buf
}

fn part_key(key: &str, part: usize) -> String {
    if part == 0 {
        key.to_owned()
    } else {
        format!("{key}-{part}")
    }
}

/// Maps a response to success or a [`SendError`] by its status.
fn classify(resp: Response) -> Result<Response, SendError> {
    let status = resp.status();
    // 409 on a create means "exists already, here is its id": success.
    if status.is_success() || status == StatusCode::CONFLICT {
        return Ok(resp);
    }
    let after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)));
    let url = resp.url().path().to_owned();
    let detail = error_detail(resp);
    let message = format!("{status} from {url}: {detail}");
    Err(match status.as_u16() {
        401 | 403 => SendError::Unauthorized { message },
        // 408: the server cut a slow upload; 507: its disk is full for now.
        408 | 429 | 500 | 502 | 503 | 504 | 507 => SendError::Retry { after, message },
        _ => SendError::Rejected { message },
    })
}

fn error_detail(resp: Response) -> String {
    let text = resp.text().unwrap_or_default();
    let detail = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("detail").cloned());
    match detail {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => text.chars().take(200).collect(),
    }
}

/// A `multipart/form-data` body: `fields` in order, then the file's
/// `size` bytes read from `file` in part `file` (last, as S3 wants), streamed.
fn multipart_form(
    fields: &serde_json::Map<String, Value>,
    name: &str,
    size: u64,
    file: std::fs::File,
) -> (String, reqwest::blocking::Body) {
    use std::io::Read;
    let boundary = format!("simtrack-{}", uuid::Uuid::new_v4().simple());
    let mut head = String::new();
    for (k, v) in fields {
        let v = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        head.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    let name: String = name
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect();
    head.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    ));
    let tail = format!("\r\n--{boundary}--\r\n");
    let len = head.len() as u64 + size + tail.len() as u64;
    let reader = std::io::Cursor::new(head.into_bytes())
        .chain(file.take(size))
        .chain(std::io::Cursor::new(tail.into_bytes()));
    (
        format!("multipart/form-data; boundary={boundary}"),
        reqwest::blocking::Body::sized(reader, len),
    )
}

fn read_json(resp: Response) -> Result<Value, SendError> {
    resp.json::<Value>().map_err(|e| SendError::Retry {
        after: None,
        message: format!("unreadable response: {}", error_chain(&e)),
    })
}

fn id_of(v: &Value, what: &str) -> Result<String, SendError> {
    v.get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| SendError::Rejected {
            message: format!("server did not return an id for the new {what}"),
        })
}

/// The system's root certificates (as `SSL_CERT_FILE` / `SSL_CERT_DIR`
/// or the platform's store name them), read once per process. Reading them
/// means opening every file in `/etc/ssl/certs`: about 10 ms, which a
/// client built per run, per `simtrack run` hand-over and per recovery
/// thread paid each time. Empty if none could be read (the HTTP client then
/// looks for itself and reports what it finds wrong).
fn system_roots() -> &'static [reqwest::Certificate] {
    static ROOTS: std::sync::OnceLock<Vec<reqwest::Certificate>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        rustls_native_certs::load_native_certs()
            .certs
            .iter()
            .filter_map(|c| reqwest::Certificate::from_der(c).ok())
            .collect()
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_lines_is_sent_as_the_same_bodies_as_its_events() {
        use crate::record::{Event, EventLevel, LineBlock, Record};
        let mut block = LineBlock::new(1_704_164_645.25, None, 0);
        let mut events = Vec::new();
        for i in 0..2500 {
            let level = (i % 7 == 3).then_some(EventLevel::Error);
            let message = format!("line {i} é");
            block.push(&message, level).unwrap();
            events.push(Event {
                message,
                timestamp: 1_704_164_645.25,
                level,
            });
        }
        let mut buf = Vec::new();
        block.encode(&mut buf);
        let Record::Lines(batch) = rmp_serde::from_slice(&buf).unwrap() else {
            panic!("not lines")
        };
        let lines = batch.events().unwrap();
        let ts = format_timestamp(batch.timestamp);
        for max_body in [usize::MAX, 4000] {
            let want = encode_events("r1", &events, 0..events.len(), "info", max_body);
            let got = encode_lines("r1", &lines, &ts, 0..lines.len(), max_body);
            assert_eq!(want.len() > 1, max_body == 4000, "split by size only");
            assert_eq!(got, want);
        }
        assert_eq!(
            encode_lines("r1", &lines, &ts, 10..20, usize::MAX),
            encode_events("r1", &events, 10..20, "info", usize::MAX)
        );
    }
    use std::collections::BTreeMap;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Item {
        time: f64,
        timestamp: String,
        step: i64,
        values: BTreeMap<String, f64>,
    }

    #[derive(serde::Deserialize)]
    struct Body {
        run: String,
        metrics: Vec<Item>,
    }

    #[test]
    fn metrics_bodies_have_the_simvue_shape_and_group_log_many() {
        let p = |name, value, step, time| Point {
            name,
            value,
            step,
            time,
        };
        let batch = MetricBatch {
            names: vec!["a".into(), "b".into()],
            points: vec![
                p(0, 1.0, 0, 0.5),
                p(1, 2.0, 0, 0.5), // logged together with the first
                p(0, f64::NAN, 1, 0.75),
                p(0, 3.0, 1, 0.75), // same metric again: a new item
            ],
        };
        let bodies = encode_metrics("run1", 1_704_164_645.0, &batch, 0..4, usize::MAX);
        assert_eq!(bodies.len(), 1);
        let body: Body = rmp_serde::from_slice(&bodies[0].1).unwrap();
        assert_eq!(body.run, "run1");
        assert_eq!(body.metrics.len(), 3);
        assert_eq!(
            body.metrics[0].values,
            BTreeMap::from([("a".into(), 1.0), ("b".into(), 2.0)])
        );
        assert_eq!(body.metrics[0].timestamp, "2024-01-02T03:04:05.500000");
        assert_eq!(body.metrics[0].time, 0.5);
        assert!(body.metrics[1].values["a"].is_nan());
        assert_eq!(
            (body.metrics[2].step, body.metrics[2].values["a"]),
            (1, 3.0)
        );
    }

    #[test]
    fn large_batches_split_into_bodies_of_at_most_max_items() {
        let points = (0..MAX_ITEMS as i64 * 2 + 5)
            .map(|i| Point {
                name: 0,
                value: i as f64,
                step: i,
                time: i as f64,
            })
            .collect();
        let batch = MetricBatch {
            names: vec!["x".into()],
            points,
        };
        let bodies = encode_metrics("r", 0.0, &batch, 0..batch.points.len(), usize::MAX);
        let counts: Vec<usize> = bodies
            .iter()
            .map(|b| rmp_serde::from_slice::<Body>(&b.1).unwrap().metrics.len())
            .collect();
        assert_eq!(counts, [MAX_ITEMS, MAX_ITEMS, 5]);
    }

    #[test]
    fn bodies_stay_below_the_byte_bound_and_cover_every_point_once() {
        let long = "m".repeat(200);
        let points: Vec<Point> = (0..5000)
            .map(|i| Point {
                name: (i % 3) as u32,
                value: i as f64,
                step: i / 3,
                time: (i / 3) as f64,
            })
            .collect();
        let batch = MetricBatch {
            names: vec![format!("{long}a"), format!("{long}b"), format!("{long}c")],
            points,
        };
        let max = 64 * 1024;
        let bodies = encode_metrics("r", 0.0, &batch, 0..batch.points.len(), max);
        assert!(bodies.len() > 10);
        let mut next = 0;
        let mut values = 0;
        for (range, body) in &bodies {
            assert!(body.len() <= max, "{} bytes", body.len());
            assert_eq!(range.start, next);
            next = range.end;
            let b: Body = rmp_serde::from_slice(body).unwrap();
            values += b.metrics.iter().map(|m| m.values.len()).sum::<usize>();
        }
        assert_eq!(next, batch.points.len());
        assert_eq!(values, batch.points.len());
        // A sub-range (what a 413 re-split sends) holds exactly its points.
        let half = encode_metrics("r", 0.0, &batch, 100..101, max);
        assert_eq!(half.len(), 1);
        let b: Body = rmp_serde::from_slice(&half[0].1).unwrap();
        assert_eq!(
            b.metrics[0].values.values().copied().collect::<Vec<_>>(),
            [100.0]
        );
    }
}

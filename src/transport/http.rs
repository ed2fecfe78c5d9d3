//! The Simvue REST transport (see `docs/protocol.md`): JSON for runs,
//! folders, artifacts and alerts, msgpack batches for metrics and events,
//! `Authorization: Bearer <token>` on every API call.
//!
//! Every mutating request carries `Idempotency-Key: <run id>-<seq>[-<part>]`.
//! A server that honours it (simtrack's does) applies a record once however
//! often a lost response makes us resend it.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Value, json};

use super::{RunContext, SendError, Transport};
use crate::config::Config;
use crate::error::{Error, Status};
use crate::record::{
    AlertDef, FileRecord, FolderSpec, MetricBatch, Record, RunSpec, format_timestamp,
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
        })
    }

    fn builder(config: &Config) -> Result<reqwest::blocking::ClientBuilder, Error> {
        let mut b = Client::builder()
            .user_agent(concat!("libsimtrack/", env!("CARGO_PKG_VERSION")))
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(30));
        if let Some(bundle) = &config.ca_bundle {
            let pem = std::fs::read(bundle)
                .map_err(|e| Error::io(format!("cannot read CA bundle {}", bundle.display()), e))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::new(
                    Status::Config,
                    format!("CA bundle {} is not PEM: {e}", bundle.display()),
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

    fn json(
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

    fn msgpack(&self, path: &str, key: &str, body: &impl Serialize) -> Result<(), SendError> {
        let bytes = rmp_serde::to_vec_named(body).map_err(|e| SendError::Rejected {
            message: format!("cannot encode batch: {e}"),
        })?;
        let req = self
            .client
            .post(self.url(path))
            .header(CONTENT_TYPE, "application/msgpack")
            .body(bytes);
        self.send(req, Some(key)).map(drop)
    }

    fn server_id<'a>(run: &'a RunContext<'_>) -> Result<&'a str, SendError> {
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
        // Points logged together (same step and time, from log_many) share
        // one item, as the reference client groups them.
        let mut items: Vec<MetricItem<'_>> = Vec::new();
        for p in &batch.points {
            let name = batch.names.get(p.name as usize).map_or("", String::as_str);
            match items.last_mut() {
                Some(last)
                    if last.step == p.step
                        && last.time.to_bits() == p.time.to_bits()
                        && !last.has(name) =>
                {
                    last.values.push((name, p.value));
                }
                _ => items.push(MetricItem {
                    time: p.time,
                    timestamp: format_timestamp(created + p.time),
                    step: p.step,
                    values: vec![(name, p.value)],
                }),
            }
        }
        for (i, chunk) in items.chunks(MAX_ITEMS).enumerate() {
            let body = MetricsBody {
                run: id,
                metrics: chunk,
            };
            self.msgpack("metrics", &part_key(key, i), &body)?;
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
        for (i, chunk) in events.chunks(MAX_ITEMS).enumerate() {
            let items: Vec<EventItem<'_>> = chunk
                .iter()
                .map(|e| EventItem {
                    message: &e.message,
                    log_level: "info",
                    timestamp: format_timestamp(e.timestamp),
                })
                .collect();
            self.msgpack(
                "events",
                &part_key(key, i),
                &EventsBody {
                    run: id,
                    events: &items,
                },
            )?;
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
            let resp = self
                .client
                .put(&url)
                .timeout(timeout)
                .body(body)
                .send()
                .map_err(|e| SendError::Retry {
                    after: None,
                    message: format!("upload of {} failed: {}", file.name, error_chain(&e)),
                })?;
            classify(resp)?;
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
        match record {
            Record::Create(spec) => self.create(run, key, spec),
            Record::Metrics(batch) => self.metrics(run, key, batch),
            Record::Events(events) => self.events(run, key, events),
            Record::Metadata(m) => self.update_run(run, key, json!({ "metadata": m })),
            Record::Folder(f) => self.folder(key, f),
            Record::File(f) => self.file(run, key, f),
            Record::Alert(a) => self.alert(run, key, a),
            Record::Finish(f) => self.update_run(
                run,
                key,
                json!({ "status": f.status.as_str(), "endtime": format_timestamp(f.endtime) }),
            ),
        }
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

struct MetricItem<'a> {
    time: f64,
    timestamp: String,
    step: i64,
    values: Vec<(&'a str, f64)>,
}

impl MetricItem<'_> {
    fn has(&self, name: &str) -> bool {
        self.values.iter().any(|(n, _)| *n == name)
    }
}

impl Serialize for MetricItem<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Values<'a, 'b>(&'a [(&'b str, f64)]);
        impl Serialize for Values<'_, '_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("time", &self.time)?;
        m.serialize_entry("timestamp", &self.timestamp)?;
        m.serialize_entry("step", &self.step)?;
        m.serialize_entry("values", &Values(&self.values))?;
        m.end()
    }
}

#[derive(Serialize)]
struct MetricsBody<'a> {
    run: &'a str,
    metrics: &'a [MetricItem<'a>],
}

#[derive(Serialize)]
struct EventItem<'a> {
    message: &'a str,
    log_level: &'a str,
    timestamp: String,
}

#[derive(Serialize)]
struct EventsBody<'a> {
    run: &'a str,
    events: &'a [EventItem<'a>],
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
        429 | 500 | 502 | 503 | 504 => SendError::Retry { after, message },
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

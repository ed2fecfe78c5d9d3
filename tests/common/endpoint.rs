//! A small HTTP endpoint that answers like a Simvue server, records what it
//! receives, and fails on demand: refuse (503), hang, or apply a request and
//! then drop the connection without answering (a lost response).
//!
//! Like simtrack's server, it applies a request carrying an already-seen
//! `Idempotency-Key` only once, so tests can count what was really applied.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// What to do with the next matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer 503 with `Retry-After: 0`.
    Unavailable,
    /// Answer this status (with `Retry-After: 0`) and a JSON detail.
    Status(u16),
    /// Read the request and never answer.
    Hang,
    /// Apply the request, then close the connection without answering.
    DropResponse,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub key: Option<String>,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct State {
    /// Every request received, applied or not.
    pub received: Vec<Request>,
    /// Metric points applied: (name, step, value).
    pub points: Vec<(String, i64, f64)>,
    pub events: Vec<String>,
    pub uploads: Vec<Vec<u8>>,
    pub run_updates: Vec<serde_json::Value>,
    keys: HashSet<String>,
    /// Faults for requests whose path starts with the given prefix.
    pub faults: VecDeque<(String, Fault)>,
    /// Fault every request while set.
    pub always: Option<Fault>,
    pub abort: bool,
}

pub struct Endpoint {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Endpoint {
    pub fn start() -> Endpoint {
        Self::start_on("127.0.0.1:0")
    }

    pub fn start_on(addr: &str) -> Endpoint {
        let listener = TcpListener::bind(addr).expect("bind test endpoint");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp, base) = (state.clone(), stop.clone(), url.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::Acquire) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, sp, base) = (st.clone(), sp.clone(), base.clone());
                std::thread::spawn(move || serve(conn, &st, &sp, &base));
            }
        });
        Endpoint { url, state, stop }
    }

    /// Stops accepting; connections already open end with their requests.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>, stop: &AtomicBool, base: &str) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || stop.load(Ordering::Acquire) {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut len = 0usize;
        let mut key = None;
        let mut authorization = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').unwrap_or((h, ""));
            match name.to_ascii_lowercase().as_str() {
                "content-length" => len = value.trim().parse().unwrap_or(0),
                "idempotency-key" => key = Some(value.trim().to_owned()),
                "authorization" => authorization = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let req = Request {
            method,
            path,
            key,
            authorization,
            body,
        };
        let fault = {
            let mut s = state.lock();
            s.received.push(req.clone());
            let queued = s
                .faults
                .iter()
                .position(|(prefix, _)| req.path.starts_with(prefix.as_str()));
            match queued {
                Some(i) => s.faults.remove(i).map(|(_, f)| f),
                None => s.always,
            }
        };
        match fault {
            Some(Fault::Hang) => {
                std::thread::sleep(Duration::from_secs(3600));
                return;
            }
            Some(f @ (Fault::Unavailable | Fault::Status(_))) => {
                let code = match f {
                    Fault::Status(c) => c,
                    _ => 503,
                };
                let body = br#"{"detail":"try later"}"#;
                let _ = write!(
                    conn,
                    "HTTP/1.1 {code} Try Later\r\nRetry-After: 0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(body);
                continue;
            }
            _ => {}
        }
        let answer = apply(&req, state, base);
        if fault == Some(Fault::DropResponse) {
            let _ = conn.shutdown(std::net::Shutdown::Both);
            return;
        }
        let _ = write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        );
        let _ = conn.write_all(answer.as_bytes());
    }
}

fn apply(req: &Request, state: &Mutex<State>, base: &str) -> String {
    let mut s = state.lock();
    if let Some(k) = &req.key
        && !s.keys.insert(k.clone())
    {
        return format!(r#"{{"id":"{}"}}"#, id_for(&req.path));
    }
    let path = req.path.as_str();
    match (req.method.as_str(), path) {
        ("POST", "/api/metrics") => {
            let body: MetricsBody =
                rmp_serde::from_slice(&req.body).expect("metrics body is msgpack");
            for item in body.metrics {
                for (name, value) in item.values {
                    s.points.push((name, item.step, value));
                }
            }
            "{}".into()
        }
        ("POST", "/api/events") => {
            let v: serde_json::Value =
                rmp_serde::from_slice(&req.body).expect("events body is msgpack");
            for e in v["events"].as_array().unwrap() {
                s.events.push(e["message"].as_str().unwrap().to_owned());
            }
            "{}".into()
        }
        ("POST", "/api/artifacts") => format!(r#"{{"id":"art1","url":"{base}/upload/art1"}}"#),
        ("PUT", p) if p.starts_with("/upload/") => {
            s.uploads.push(req.body.clone());
            "{}".into()
        }
        ("GET", p) if p.ends_with("/abort") => format!(r#"{{"status":{}}}"#, s.abort),
        ("PUT", p) if p.starts_with("/api/runs/") && p.matches('/').count() == 3 => {
            s.run_updates
                .push(serde_json::from_slice(&req.body).unwrap_or_default());
            r#"{"id":"run1"}"#.into()
        }
        _ => format!(r#"{{"id":"{}"}}"#, id_for(path)),
    }
}

#[derive(serde::Deserialize)]
struct MetricsBody {
    metrics: Vec<MetricItem>,
}

#[derive(serde::Deserialize)]
struct MetricItem {
    step: i64,
    values: std::collections::BTreeMap<String, f64>,
}

fn id_for(path: &str) -> &'static str {
    match path {
        "/api/folders" => "folder1",
        "/api/runs" => "run1",
        p if p.starts_with("/api/alerts") => "alert1",
        p if p.starts_with("/api/artifacts") => "art1",
        _ => "x",
    }
}

//! Test harness: the real `simtrack` binary as a child process on a free
//! loopback port with a temporary data directory, and small HTTP helpers.
//!
//! The storage backend is a parameter, so every storage backend runs these
//! very tests: with `SIMTRACK_TEST_BACKEND` unset (or `embedded`), the
//! server and `token create` get `--data DIR`; otherwise its value is a
//! shell command, run as `sh -c "$SIMTRACK_TEST_BACKEND" backend DIR`,
//! that prints the storage arguments to use instead (for example
//! `--database postgres://... --blobs s3://...`), the same ones every time
//! it is given the same DIR. See docs/storage-backends.md.
//!
//! The PostgreSQL-only tests (`shared_pg` and below) take a fresh database
//! on the server `SIMTRACK_TEST_PG_URL` names from scripts/pg-backend.sh.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `simtrack` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_simtrack"))
}

/// Whether the tests run against the embedded backend (SQLite and files
/// in the data directory), so that they may also look inside it.
pub fn embedded_backend() -> bool {
    std::env::var("SIMTRACK_TEST_BACKEND").map_or(true, |b| b.is_empty() || b == "embedded")
}

/// The storage arguments of `simtrack server` and `simtrack token create`
/// for the test whose scratch directory is `dir`.
pub fn storage_args(dir: &Path) -> Vec<OsString> {
    if embedded_backend() {
        return vec!["--data".into(), dir.into()];
    }
    let command = std::env::var("SIMTRACK_TEST_BACKEND").unwrap_or_default();
    stdout_of(
        Command::new("sh")
            .args(["-c", &command, "backend"])
            .arg(dir),
        "$SIMTRACK_TEST_BACKEND",
    )
    .split_whitespace()
    .map(OsString::from)
    .collect()
}

/// The stdout of `cmd` (`what` in messages), which must succeed: if it
/// does not start or fails, the test fails with its stderr.
pub fn stdout_of(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap_or_else(|_| panic!("{what} printed non-UTF-8"))
}

/// Creates a token for `data`'s backend with the CLI.
pub fn token(data: &Path) -> String {
    token_with(data, &["--name", "tester"])
}

/// `simtrack token create ARGS` for `data`'s backend; the token.
pub fn token_with(data: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(["token", "create"])
        .args(args)
        .args(storage_args(data))
        .output()
        .expect("run simtrack token create");
    assert!(
        out.status.success(),
        "token create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = String::from_utf8(out.stdout).expect("utf-8 token");
    assert_eq!(t.lines().count(), 1, "token create prints only the token");
    t.trim().to_owned()
}

/// A running server.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub data: PathBuf,
    pub startup: Duration,
}

impl Server {
    /// Starts `simtrack server` on `listen` (e.g. `127.0.0.1:0`).
    pub fn start_on(data: &Path, listen: &str, extra: &[&str]) -> Server {
        Server::spawn(data, listen, storage_args(data), extra)
    }

    /// Starts on a free port with these storage arguments instead of the
    /// backend's for `data` (a backend's own tests, e.g. tests/postgres.rs).
    pub fn start_raw(data: &Path, listen: &str, storage: &[&str], extra: &[&str]) -> Server {
        let storage = storage.iter().map(OsString::from).collect();
        Server::spawn(data, listen, storage, extra)
    }

    fn spawn(data: &Path, listen: &str, storage: Vec<OsString>, extra: &[&str]) -> Server {
        let t0 = Instant::now();
        let mut child = Command::new(bin())
            .args(["server", "--listen", listen])
            .args(storage)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start simtrack server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the announcement");
        let startup = t0.elapsed();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        Server {
            child,
            url,
            data: data.to_path_buf(),
            startup,
        }
    }

    /// Starts on a free port.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Self::start_on(data, "127.0.0.1:0", extra)
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.success();
            }
            if Instant::now() > deadline {
                self.kill9();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// An authenticated HTTP client for one server.
pub struct Api {
    pub base: String,
    pub token: String,
    pub http: reqwest::blocking::Client,
}

/// A response: status and body text.
pub struct Resp {
    pub status: u16,
    pub text: String,
}

impl Resp {
    /// The body as JSON (Python-style NaN/Infinity tokens read as null).
    pub fn json(&self) -> Value {
        simtrack_server::util::lenient_json(self.text.as_bytes())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

impl Api {
    pub fn new(server: &Server, token: &str) -> Api {
        Api {
            base: server.url.clone(),
            token: token.to_owned(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
        }
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(Vec<u8>, &str)>,
    ) -> Resp {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{}", self.base, path)
        };
        let mut req = self.http.request(method.parse().expect("method"), url);
        let mut auth = true;
        for (k, v) in headers {
            if k.eq_ignore_ascii_case("authorization") {
                auth = false;
                if v.is_empty() {
                    continue;
                }
            }
            req = req.header(*k, *v);
        }
        if auth {
            req = req.bearer_auth(&self.token);
        }
        if let Some((b, ct)) = body {
            req = req.header("content-type", ct).body(b);
        }
        let r = req.send().expect("request");
        Resp {
            status: r.status().as_u16(),
            text: r.text().unwrap_or_default(),
        }
    }

    pub fn get(&self, path: &str) -> Resp {
        self.send("GET", path, &[], None)
    }

    pub fn json(&self, method: &str, path: &str, body: &Value) -> Resp {
        self.send(
            method,
            path,
            &[],
            Some((body.to_string().into_bytes(), "application/json")),
        )
    }

    pub fn json_keyed(&self, method: &str, path: &str, key: &str, body: &Value) -> Resp {
        self.send(
            method,
            path,
            &[("Idempotency-Key", key)],
            Some((body.to_string().into_bytes(), "application/json")),
        )
    }

    pub fn msgpack(&self, path: &str, key: Option<&str>, body: &impl serde::Serialize) -> Resp {
        let bytes = rmp_serde::to_vec_named(body).expect("msgpack");
        let headers: Vec<(&str, &str)> = key
            .map(|k| vec![("Idempotency-Key", k)])
            .unwrap_or_default();
        self.send("POST", path, &headers, Some((bytes, "application/msgpack")))
    }

    /// `GET` that must answer 200; its JSON.
    pub fn ok(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        r.json()
    }

    /// Creates a run and returns its id.
    pub fn create_run(&self, body: Value) -> String {
        let r = self.json("POST", "/api/runs", &body);
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["id"].as_str().expect("id").to_owned()
    }

    /// The run whose name is `name` (exactly one).
    pub fn run_by_name(&self, name: &str) -> Value {
        let q = urlencode(&serde_json::json!([format!("name == {name}")]).to_string());
        let v = self.ok(&format!("/api/runs?filters={q}"));
        assert_eq!(v["count"], 1, "runs named {name}: {v}");
        v["data"][0].clone()
    }

    /// `GET /api/metrics` for one run and metric: (x, value) pairs.
    pub fn series(
        &self,
        run: &str,
        metric: &str,
        axis: &str,
        max_points: Option<usize>,
    ) -> Vec<(Value, Option<f64>)> {
        let runs = urlencode(&serde_json::json!([run]).to_string());
        let metrics = urlencode(&serde_json::json!([metric]).to_string());
        let mp = max_points
            .map(|m| format!("&max_points={m}"))
            .unwrap_or_default();
        let v = self.ok(&format!(
            "/api/metrics?runs={runs}&metrics={metrics}&xaxis={axis}&aggregate=False{mp}"
        ));
        v[run][metric]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| (p[axis].clone(), p["value"].as_f64()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Event messages of a run, the server's own `[simtrack]` events included.
    pub fn events(&self, run: &str) -> Vec<String> {
        let v = self.ok(&format!(
            "/api/events?run={run}&filters=&start=0&count=0&system=true"
        ));
        v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|e| e["message"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `SIMTRACK_TEST_PG_URL`: the shared PostgreSQL server (a URL without a
/// database name) that the PostgreSQL-only tests need; `None`, saying the
/// test is skipped, when it is not set.
pub fn shared_pg() -> Option<String> {
    let url = std::env::var("SIMTRACK_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!(
            "SKIPPED: SIMTRACK_TEST_PG_URL is not set (scripts/test.d/40-postgres.sh sets it)"
        );
    }
    url
}

/// The repository's `scripts/` directory.
pub fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts")
}

/// The storage arguments scripts/pg-backend.sh prints for scratch dir
/// `dir` (`--database URL --blobs WHERE`), whatever
/// `SIMTRACK_TEST_BACKEND` says; the database is created, empty, on first
/// use.
pub fn pg_backend_args(dir: &Path) -> Vec<String> {
    stdout_of(
        Command::new("sh")
            .arg(scripts().join("pg-backend.sh"))
            .arg(dir),
        "pg-backend.sh",
    )
    .split_whitespace()
    .map(str::to_owned)
    .collect()
}

/// A fresh, empty database on the shared server for scratch dir `dir`.
pub fn fresh_database(dir: &Path) -> String {
    pg_backend_args(dir)
        .into_iter()
        .skip_while(|a| a != "--database")
        .nth(1)
        .expect("--database URL")
}

/// The PostgreSQL state store on `database`, opened on a runtime of its
/// own that must outlive it: bind both, runtime first (`let (_rt, store)`),
/// so the store is dropped before its runtime.
pub fn open_pg(
    database: &str,
) -> (
    tokio::runtime::Runtime,
    simtrack_server::storage::postgres::PgStore,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store = rt
        .block_on(simtrack_server::storage::postgres::PgStore::open(database))
        .expect("open");
    (rt, store)
}

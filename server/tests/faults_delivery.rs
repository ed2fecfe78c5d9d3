//! The library's data path under hostile surroundings, end to end: the real
//! library (in this process), the real `simtrack server`, and the real thing
//! in between — a tmpfs that fills up under the spool, nginx with a 1 MiB
//! body limit, haproxy answering 4xx and 5xx at random. Each case checks
//! that every point the library accepted arrives exactly once and that
//! every call that could not do its job said so.
//!
//! Needs `nginx` and `haproxy` on the PATH (Debian packages `nginx-light`
//! and `haproxy`, installed by `.ci/run`) and, for the tmpfs case, root.

mod common;

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Api, Server, token, urlencode, wait_for};
use serde_json::json;
use simtrack::Status;
use simtrack::config::Config;
use simtrack::run::{InitOptions, Run};

fn config(url: Option<&str>, token: &str, offline: &Path, extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = HashMap::from([
        ("SIMTRACK_OFFLINE_DIR".into(), offline.display().to_string()),
        ("SIMTRACK_RESOURCES_INTERVAL".into(), "0".into()),
        ("SIMTRACK_REQUEST_TIMEOUT".into(), "10".into()),
        ("SIMTRACK_FINISH_TIMEOUT".into(), "120".into()),
        ("HOME".into(), offline.display().to_string()),
    ]);
    if let Some(u) = url {
        env.insert("SIMTRACK_URL".into(), u.to_owned());
        env.insert("SIMTRACK_TOKEN".into(), token.to_owned());
    }
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Config::load_with(move |k| env.get(k).cloned()).expect("config")
}

fn start(cfg: &Config, name: &str) -> Result<Run, simtrack::Error> {
    Run::init_with(
        InitOptions {
            name: Some(name.into()),
            folder: Some("/faults".into()),
            ..Default::default()
        },
        cfg,
    )
}

/// `simtrack sync` of `spool` to `url`: exit success and stdout.
fn sync(url: &str, tok: &str, spool: &Path) -> (bool, String) {
    sync_with(url, tok, spool, &[])
}

/// As [`sync`], with `env` added.
fn sync_with(url: &str, tok: &str, spool: &Path, env: &[(&str, &Path)]) -> (bool, String) {
    let mut cmd = Command::new(common::bin());
    cmd.args(["sync", "--cache"])
        .arg(spool)
        .env("HOME", spool)
        .env("SIMTRACK_URL", url)
        .env("SIMTRACK_TOKEN", tok)
        .env("SIMTRACK_REQUEST_TIMEOUT", "10")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("simtrack sync");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The steps of `metric` stored for the run named `name`, sorted.
fn stored_steps(api: &Api, name: &str, metric: &str) -> Vec<i64> {
    let run = api.run_by_name(name);
    let id = run["id"].as_str().expect("id").to_owned();
    let mut steps: Vec<i64> = api
        .series(&id, metric, "step", None)
        .into_iter()
        .map(|(s, _)| s.as_i64().expect("integer step"))
        .collect();
    steps.sort_unstable();
    steps
}

fn assert_exactly(steps: &[i64], expected: &[i64], what: &str) {
    assert_eq!(steps.len(), expected.len(), "{what}: points stored");
    assert!(steps == expected, "{what}: each accepted step exactly once");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A proxy process (nginx or haproxy) in the foreground, stopped by pid.
struct Proxy {
    child: Child,
    url: String,
}

impl Proxy {
    fn start(mut cmd: Command, port: u16) -> Proxy {
        // Not this test's stdout/stderr: a proxy process must not keep the
        // test harness's pipes open.
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let up = wait_for(Duration::from_secs(10), || {
            if let Ok(Some(s)) = child.try_wait() {
                panic!("{cmd:?} exited at start: {s}");
            }
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        assert!(up.is_some(), "{cmd:?} did not listen on {port}");
        Proxy {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Proxy {
    /// SIGTERM, so nginx's master takes its workers down with it (SIGKILL
    /// would leave them running, holding the port); SIGKILL after 10 s.
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// nginx in front of `upstream` with `client_max_body_size 1m` (its default).
fn nginx(dir: &Path, upstream: &str) -> Proxy {
    let port = free_port();
    let prefix = dir.join("nginx");
    std::fs::create_dir_all(prefix.join("logs")).expect("nginx dir");
    let user = if is_root() { "user root;" } else { "" };
    let conf = format!(
        "{user}
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_max_body_size 1m;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
    }}
}}
",
        prefix = prefix.display()
    );
    let path = prefix.join("nginx.conf");
    std::fs::write(&path, conf).expect("nginx.conf");
    let mut cmd = Command::new("nginx");
    cmd.arg("-p").arg(&prefix).arg("-c").arg(&path);
    Proxy::start(cmd, port)
}

/// haproxy in front of `upstream` with `rules` (`http-request ...` lines);
/// with `tls`, a PEM file holding a certificate and its key, it speaks HTTPS.
fn haproxy(dir: &Path, upstream: &str, port: u16, rules: &str, tls: Option<&Path>) -> Proxy {
    let addr = upstream.trim_start_matches("http://");
    let ssl = tls.map_or(String::new(), |pem| format!(" ssl crt {}", pem.display()));
    let conf = format!(
        "global
    maxconn 256
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:{port}{ssl}
{rules}
    default_backend be
backend be
    server s1 {addr}
"
    );
    let path = dir.join(format!("haproxy-{port}.cfg"));
    std::fs::write(&path, conf).expect("haproxy.cfg");
    let mut cmd = Command::new("haproxy");
    cmd.arg("-db").arg("-f").arg(&path);
    let mut proxy = Proxy::start(cmd, port);
    if tls.is_some() {
        proxy.url = format!("https://127.0.0.1:{port}");
    }
    proxy
}

/// A tmpfs mounted for the length of a test.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).expect("mount point");
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount");
        assert!(st.success(), "mount -t tmpfs failed (needs root)");
        Tmpfs {
            path: path.to_path_buf(),
        }
    }

    /// Writes a file until the file system is full; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let p = self.path.join("filler");
        let mut f = std::fs::File::create(&p).expect("filler");
        let block = vec![0xA5u8; 64 * 1024];
        loop {
            if f.write_all(&block).is_err() {
                break;
            }
        }
        // Down to the last byte: small writes too.
        while f.write_all(&[0u8; 512]).is_ok() {}
        while f.write_all(&[0u8]).is_ok() {}
        p
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a writer thread of this process may still hold a file there.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[test]
fn a_full_spool_disk_is_reported_and_loses_nothing_it_accepted() {
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let tok = token(&data);
    let server = Server::start(&data, &[]);
    let api = Api::new(&server, &tok);
    let fs = Tmpfs::mount(&dir.path().join("spool"), "16m");
    let cfg = config(
        Some(&server.url),
        &tok,
        &fs.path,
        &[
            // A generous wait: a loaded machine's slow writer is not a full disk.
            ("SIMTRACK_MEMORY_CAP_MB", "4"),
            ("SIMTRACK_LOG_WAIT", "5"),
        ],
    );

    // An init on a full disk fails, says why, and leaves nothing behind.
    let filler = fs.fill();
    let err = start(&cfg, "never").expect_err("init on a full disk");
    assert_eq!(err.status, Status::Io, "{err}");
    let runs = fs.path.join("runs");
    let left: Vec<_> = std::fs::read_dir(&runs)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "a failed init left {left:?}");
    std::fs::remove_file(&filler).expect("free");

    let run = start(&cfg, "full-disk").expect("init");
    let mut accepted = Vec::new();
    let mut step = 0i64;
    let mut log = |run: &Run, n: i64, accepted: &mut Vec<i64>| -> Vec<simtrack::Error> {
        let mut errors = Vec::new();
        for _ in 0..n {
            match run.log("x", step as f64, step) {
                Ok(()) => accepted.push(step),
                Err(e) => errors.push(e),
            }
            step += 1;
        }
        errors
    };
    assert!(log(&run, 50_000, &mut accepted).is_empty());
    run.flush(Duration::from_secs(30))
        .expect("flush before the disk fills");

    // The disk fills mid-run.
    let filler = fs.fill();
    let t0 = Instant::now();
    let before = accepted.len();
    let errors = log(&run, 200_000, &mut accepted);
    let full_for = t0.elapsed();
    let while_full = accepted.len() - before;
    // Memory stays bounded: a 4 MiB cap holds 32,768 points.
    assert!(
        while_full <= 32_768,
        "{while_full} points accepted onto a full disk"
    );
    assert!(
        !errors.is_empty(),
        "200,000 points logged onto a full disk with a 4 MiB cap and not one call said so"
    );
    assert!(
        errors.iter().all(|e| e.status == Status::Io),
        "{:?}",
        errors[0]
    );
    assert!(
        errors[0].message.contains("not recorded") && errors[0].message.contains("spool"),
        "{}",
        errors[0]
    );
    // Logging onto a full disk fails fast once it has failed once.
    assert!(
        full_for < Duration::from_secs(30),
        "logging while full took {full_for:?}"
    );
    let flushed = run.flush(Duration::from_secs(2));
    let flush_err = flushed.expect_err("flush while the disk is full");
    assert_eq!(flush_err.status, Status::Io, "{flush_err}");

    // Space comes back: what was accepted is written and delivered.
    std::fs::remove_file(&filler).expect("free");
    let back = wait_for(Duration::from_secs(20), || {
        run.flush(Duration::from_secs(2)).ok()
    });
    assert!(
        back.is_some(),
        "flush never succeeded after space came back"
    );
    assert!(log(&run, 50_000, &mut accepted).is_empty());
    run.finish().expect("finish after space came back");

    let (ok, report) = sync(&server.url, &tok, &fs.path);
    assert!(ok, "sync after the run: {report}");
    let steps = stored_steps(&api, "full-disk", "x");
    assert_exactly(&steps, &accepted, "full disk");
    assert!(
        accepted.len() >= 100_000 + 16_000,
        "only {} points accepted",
        accepted.len()
    );
    eprintln!(
        "full disk: {} of {step} points accepted ({while_full} while full) and delivered exactly once, {} calls refused with SIMTRACK_STATUS_IO in {full_for:?}",
        accepted.len(),
        errors.len()
    );

    // A run that finishes while the disk is full says so, in time; what it
    // accepted is written once space returns and `sync` delivers it.
    let cfg = config(
        Some(&server.url),
        &tok,
        &fs.path,
        &[("SIMTRACK_FINISH_TIMEOUT", "3")],
    );
    let run = start(&cfg, "full-at-finish").expect("init");
    for s in 0..1000 {
        run.log("y", s as f64, s).expect("log");
    }
    let filler = fs.fill();
    let t0 = Instant::now();
    let err = run.finish().expect_err("finish on a full disk");
    assert_eq!(err.status, Status::Io, "{err}");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    std::fs::remove_file(&filler).expect("free");
    let expected: Vec<i64> = (0..1000).collect();
    let delivered = wait_for(Duration::from_secs(60), || {
        let (ok, _) = sync(&server.url, &tok, &fs.path);
        let q = urlencode(&json!(["name == full-at-finish"]).to_string());
        let found = api.ok(&format!("/api/runs?filters={q}"))["count"] == 1;
        (ok && found && stored_steps(&api, "full-at-finish", "y") == expected).then_some(())
    });
    assert!(
        delivered.is_some(),
        "the points of a run finished on a full disk never arrived"
    );
}

#[test]
fn an_empty_run_directory_left_by_a_failed_init_does_not_fail_every_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let tok = token(&data);
    let server = Server::start(&data, &[]);
    let spool = dir.path().join("spool");
    // What an init that failed on a full disk used to leave behind.
    let stale = spool.join("runs/0123456789abcdef0123456789abcdef");
    std::fs::create_dir_all(stale.join("files")).expect("dir");
    let log = std::fs::File::create(stale.join("records.log")).expect("log");
    log.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .expect("age it");
    drop(log);
    let (ok, report) = sync(&server.url, &tok, &spool);
    assert!(
        ok,
        "sync exits non-zero on an empty run directory: {report}"
    );
    assert!(report.contains("removed"), "{report}");
    assert!(!stale.exists());
    let (ok, report) = sync(&server.url, &tok, &spool);
    assert!(ok, "{report}");
}

/// Metric names of 240 bytes: a 16,000-point batch of them is ~4 MB.
fn long_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{}/m{i:02}", "long-metric-name-".repeat(14)))
        .collect()
}

#[test]
fn nginx_with_a_one_megabyte_body_limit_gets_everything_split() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let tok = token(&data);
    let server = Server::start(&data, &[]);
    let api = Api::new(&server, &tok);
    let proxy = nginx(dir.path(), &server.url);
    let names = long_names(10);
    assert!(names.iter().all(|n| n.len() > 200 && n.len() <= 255));
    let steps = 10_000i64;
    // Default bound (512 KiB): split at the source. A bound above the
    // proxy's limit: split again on its 413 answers.
    for (run_name, bound) in [("nginx-default", None), ("nginx-413", Some("4096"))] {
        let spool = dir.path().join(run_name);
        let mut extra = vec![];
        if let Some(b) = bound {
            extra.push(("SIMTRACK_MAX_REQUEST_KB", b));
        }
        let cfg = config(Some(&proxy.url), &tok, &spool, &extra);
        let run = start(&cfg, run_name).expect("init");
        for s in 0..steps {
            let batch: Vec<(&str, f64)> = names.iter().map(|n| (n.as_str(), s as f64)).collect();
            run.log_many(&batch, s).expect("log_many");
        }
        run.finish()
            .unwrap_or_else(|e| panic!("{run_name}: finish: {e}"));
        let expected: Vec<i64> = (0..steps).collect();
        for n in [&names[0], &names[9]] {
            assert_exactly(&stored_steps(&api, run_name, n), &expected, run_name);
        }
        let (ok, report) = sync(&proxy.url, &tok, &spool);
        assert!(ok && report.contains("up to date"), "{report}");
    }
    // A name too long for the API never reaches the wire.
    let cfg = config(Some(&proxy.url), &tok, &dir.path().join("long"), &[]);
    let run = start(&cfg, "nginx-long-name").expect("init");
    let err = run
        .log(&"n".repeat(300), 1.0, 0)
        .expect_err("300-byte name");
    assert_eq!(err.status, Status::InvalidArgument);
    run.finish().expect("finish");
}

#[test]
fn haproxy_answering_4xx_and_5xx_at_random_loses_nothing_and_finish_tells_the_truth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let tok = token(&data);
    let server = Server::start(&data, &[]);
    let api = Api::new(&server, &tok);
    let port = free_port();
    let flaky = "    http-request return status 503 if { rand(100) lt 20 }
    http-request return status 502 if { rand(100) lt 5 }
    http-request return status 429 if { rand(100) lt 5 }";
    let proxy = haproxy(
        dir.path(),
        &server.url,
        port,
        &format!(
            "{flaky}\n    http-request return status 400 content-type text/plain string \"events are not allowed here\" if {{ path_beg /api/events }}"
        ),
        None,
    );
    let spool = dir.path().join("spool");
    let cfg = config(Some(&proxy.url), &tok, &spool, &[]);
    let run = start(&cfg, "haproxy").expect("init");
    let n = 60_000i64;
    for s in 0..n {
        run.log("x", s as f64, s).expect("log");
        if s % 10_000 == 0 {
            run.event(&format!("step {s}")).expect("event");
        }
    }
    let err = run.finish().expect_err("finish with refused events");
    assert_eq!(err.status, Status::Refused, "{err}");
    assert!(
        err.message.contains("400") && err.message.contains("events"),
        "{err}"
    );

    // Every point arrived once; the refused events did not, and the run
    // says so on the server.
    let expected: Vec<i64> = (0..n).collect();
    assert_exactly(&stored_steps(&api, "haproxy", "x"), &expected, "haproxy");
    let doc = api.run_by_name("haproxy");
    let id = doc["id"].as_str().expect("id").to_owned();
    let full = api.ok(&format!("/api/runs/{id}"));
    assert!(
        full["metadata"]["simtrack.refused_records"].as_u64() >= Some(1),
        "run not marked: {}",
        full["metadata"]
    );
    assert!(api.events(&id).iter().all(|m| !m.starts_with("step ")));

    // Sync through the same proxy: shows the refused records, exits 1.
    let (ok, report) = sync(&proxy.url, &tok, &spool);
    assert!(!ok, "sync exits 0 with refused records: {report}");
    assert!(report.contains("refused by the server"), "{report}");
    assert!(report.contains("events are not allowed here"), "{report}");

    // The proxy stops refusing events (still flaky): the next sync delivers
    // them, once, and exits 0.
    drop(proxy);
    let proxy = haproxy(dir.path(), &server.url, port, flaky, None);
    let (ok, report) = wait_for(Duration::from_secs(120), || {
        let (ok, report) = sync(&proxy.url, &tok, &spool);
        ok.then_some((ok, report))
    })
    .expect("a sync through the fixed proxy succeeds");
    assert!(ok, "{report}");
    let events = api.events(&id);
    assert_eq!(
        events.iter().filter(|m| m.starts_with("step ")).count(),
        6,
        "{events:?}"
    );
    assert_exactly(&stored_steps(&api, "haproxy", "x"), &expected, "after sync");
    let q = urlencode(&json!(["name == haproxy"]).to_string());
    assert_eq!(api.ok(&format!("/api/runs?filters={q}"))["count"], 1);
}

/// Each metrics request fails the first time it reaches the proxy; one seen
/// a third time is refused for good. A metrics record sent as many requests
/// (a small request bound) must then go through with each part sent twice,
/// not start over from its first part on every retry, and without waiting
/// longer and longer between tries.
#[test]
fn a_record_in_many_requests_through_a_proxy_failing_each_once_resends_no_acknowledged_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let tok = token(&data);
    let server = Server::start(&data, &[]);
    let api = Api::new(&server, &tok);
    let rules = "    stick-table type string len 200 size 100k store http_req_cnt
    http-request track-sc0 req.hdr(Idempotency-Key) if { path_beg /api/metrics }
    http-request return status 503 if { sc_http_req_cnt(0) eq 1 }
    http-request return status 400 content-type text/plain string \"sent again after it was acknowledged\" if { sc_http_req_cnt(0) gt 2 }";
    let proxy = haproxy(dir.path(), &server.url, free_port(), rules, None);
    let spool = dir.path().join("spool");
    let cfg = config(
        Some(&proxy.url),
        &tok,
        &spool,
        &[
            ("SIMTRACK_MAX_REQUEST_KB", "64"),
            ("SIMTRACK_FINISH_TIMEOUT", "60"),
        ],
    );
    let run = start(&cfg, "parts").expect("init");
    let n = 10_000i64;
    for s in 0..n {
        run.log("x", s as f64, s).expect("log");
    }
    // Retries 0.5 s apart get through in seconds; from the first part each
    // time, with the wait doubling, they would not within the minute, and
    // the third copy of a part would be refused.
    run.finish().expect("finish");
    let expected: Vec<i64> = (0..n).collect();
    assert_exactly(&stored_steps(&api, "parts", "x"), &expected, "parts");
    let (ok, report) = sync(&proxy.url, &tok, &spool);
    assert!(ok && report.contains("up to date"), "{report}");
}

/// A site's own certificate authority and a server certificate for
/// 127.0.0.1 it signed (made by `openssl`): the authority's PEM file, and
/// the PEM file haproxy serves (server certificate and key).
fn site_certificates(dir: &Path) -> (PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let st = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(st.success(), "openssl {args:?} failed");
    };
    let days = ["-days", "2"];
    openssl(
        &[
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes"],
            &days[..],
            &[
                "-subj",
                "/CN=site CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
    );
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("server.ext");
    openssl(
        &[
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
            ],
            &days[..],
            &[
                "-CAcreateserial",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        ]
        .concat(),
    );
    let pem = dir.join("haproxy.pem");
    let mut both = std::fs::read(dir.join("server.pem")).expect("server.pem");
    both.extend(std::fs::read(dir.join("server.key")).expect("server.key"));
    std::fs::write(&pem, both).expect("haproxy.pem");
    (dir.join("ca.pem"), pem)
}

/// `simtrack run --name NAME -- echo hello` against `url`, spooling in
/// `spool`, with `env` added (and no other certificate settings).
fn wrapped_echo(
    url: &str,
    tok: &str,
    spool: &Path,
    name: &str,
    env: &[(&str, &Path)],
) -> (bool, String) {
    let mut cmd = Command::new(common::bin());
    cmd.args(["run", "--name", name, "--", "echo", "hello"])
        .env("HOME", spool)
        .env("SIMTRACK_OFFLINE_DIR", spool)
        .env("SIMTRACK_URL", url)
        .env("SIMTRACK_TOKEN", tok)
        .env("SIMTRACK_REQUEST_TIMEOUT", "5")
        .env("SIMTRACK_FINISH_TIMEOUT", "5")
        .env("SIMTRACK_RESOURCES_INTERVAL", "0")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env_remove("SIMTRACK_CA_BUNDLE")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("simtrack run");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// HTTPS to a site whose certificate authority is its own: trusted through
/// `SIMTRACK_CA_BUNDLE`, or through the system's store (here named by
/// `SSL_CERT_FILE`, as a site's own store would hold it); without either the
/// run stays in the spool, says why, and `simtrack sync` delivers it once
/// the authority is known.
#[test]
fn https_to_a_site_with_its_own_authority_works_with_its_certificate_and_says_why_without() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let tok = token(&data);
    let server = Server::start(&data, &[]);
    let api = Api::new(&server, &tok);
    let (cert, pem) = site_certificates(dir.path());
    let port = free_port();
    let proxy = haproxy(dir.path(), &server.url, port, "", Some(&pem));
    let url = proxy.url.clone();
    assert!(url.starts_with("https://"), "{url}");

    // The library, with the site's authority in SIMTRACK_CA_BUNDLE.
    let bundle = cert.display().to_string();
    let cfg = config(
        Some(&url),
        &tok,
        &dir.path().join("lib"),
        &[
            ("SIMTRACK_CA_BUNDLE", &bundle),
            ("SIMTRACK_FINISH_TIMEOUT", "20"),
        ],
    );
    let run = start(&cfg, "tls-bundle").expect("init");
    for s in 0..1000 {
        run.log("x", s as f64, s).expect("log");
    }
    run.finish().expect("finish over https");
    let expected: Vec<i64> = (0..1000).collect();
    assert_exactly(&stored_steps(&api, "tls-bundle", "x"), &expected, "bundle");

    // `simtrack run`, trusting what the system's store holds.
    let spool = dir.path().join("system");
    let (ok, err) = wrapped_echo(
        &url,
        &tok,
        &spool,
        "tls-system",
        &[("SSL_CERT_FILE", &cert)],
    );
    assert!(ok, "{err}");
    let doc = api.run_by_name("tls-system");
    assert_eq!(doc["status"], "completed", "{err}");

    // Neither: the program still runs and exits 0; the wrapper says the
    // certificate is not trusted; nothing reaches the server.
    let spool = dir.path().join("none");
    let (ok, err) = wrapped_echo(&url, &tok, &spool, "tls-none", &[]);
    assert!(ok, "the program's exit code, whatever the delivery: {err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let q = urlencode(&json!(["name == tls-none"]).to_string());
    let found = api.ok(&format!("/api/runs?filters={q}"));
    assert_eq!(found["count"], 0, "{found}");

    // Once the authority is known, `simtrack sync` delivers the run.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, said) = sync_with(&url, &tok, &spool, &[("SIMTRACK_CA_BUNDLE", &cert)]);
        if ok && !said.contains("in use") {
            break;
        }
        assert!(Instant::now() < deadline, "{said}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(api.run_by_name("tls-none")["status"], "completed");
}

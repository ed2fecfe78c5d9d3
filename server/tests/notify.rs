//! Notifications end to end, with real components: our server, a real
//! SMTP server process (`aiosmtpd` from PyPI, in a private venv made once
//! under the cargo target directory), and a webhook receiver (a plain
//! HTTP listener in this test).
//!
//! - An alert with `notification: "email"` turning critical sends one
//!   email to the run owner's address, naming the run and the alert and
//!   linking to the run page. While the SMTP port refuses connections, and
//!   while it accepts them and never answers, ingest requests all complete
//!   and the delivery shows `retrying` with the error; when the SMTP server
//!   comes up the email arrives exactly once (with PostgreSQL, with two
//!   replicas both delivering). Ingest speed with a dead mail server is
//!   measured in bench/, not here.
//! - A run that fails and a run marked lost each notify the owner's
//!   webhooks once (JSON and Slack-style bodies), as does an alert turning
//!   critical and back to ok for a channel that asks for both, and a run
//!   completing whose Simvue `notifications` state is `all` (every
//!   channel); a run completing without it, and another user's run,
//!   notify nobody here.
//!
//! - STARTTLS required, the SMTP server's certificate from a site CA
//!   (`--smtp-ca-file`), and SMTP AUTH with the password from a file.
//!
//! All run against either backend (`SIMTRACK_TEST_BACKEND`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Api, Server, bin, embedded_backend, storage_args, token_with, urlencode, wait_for};
use serde_json::{Value, json};

/// The SMTP server, and a test CA for its certificate (STARTTLS test).
const PACKAGES: [&str; 2] = ["aiosmtpd==1.4.6", "trustme==1.2.1"];

/// The venv's python with aiosmtpd, made once (a lock keeps parallel test
/// binaries from making it twice).
fn smtpd_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("aiosmtpd-1.4.6-trustme-1.2.1-venv");
    let python = venv.join("bin/python");
    let lock = std::fs::File::create(venv.with_extension("lock")).expect("venv lock");
    lock.lock().expect("lock the venv");
    let ready = Command::new(&python)
        .args(["-c", "import aiosmtpd, trustme"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let _ = std::fs::remove_dir_all(&venv);
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 -m venv")
            .success();
        assert!(
            ok,
            "python3 -m venv failed (Debian: apt-get install python3-venv)"
        );
        let ok = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(PACKAGES)
            .status()
            .expect("pip")
            .success();
        assert!(ok, "pip install {PACKAGES:?} failed");
    }
    python
}

const SINK: &str = r#"
import os, ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

out, port = sys.argv[1], int(sys.argv[2])
# With a third argument: STARTTLS required (a certificate for 127.0.0.1
# from a test CA, written there as ca.pem) and AUTH as simtrack/s3cret.
tls = {}
if len(sys.argv) > 3:
    import trustme
    ca = trustme.CA()
    ca.cert_pem.write_to_path(os.path.join(sys.argv[3], "ca.pem"))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    def check(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"simtrack" and auth_data.password == b"s3cret"
        return AuthResult(success=ok, handled=False)
    tls = dict(tls_context=ctx, require_starttls=True, authenticator=check,
               auth_required=True, auth_require_tls=True)

class Sink:
    async def handle_DATA(self, server, session, envelope):
        path = os.path.join(out, "%d.eml" % time.time_ns())
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".tmp", path)
        return "250 OK"

c = Controller(Sink(), hostname="127.0.0.1", port=port, **tls)
c.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

/// A running aiosmtpd writing each message it receives to `out`.
struct Smtpd(Child);

impl Smtpd {
    fn start(python: &Path, script: &Path, out: &Path, port: u16) -> Smtpd {
        Self::start_with(python, script, out, port, None)
    }

    /// With `tls_dir`: STARTTLS and AUTH required; the CA goes there.
    fn start_with(
        python: &Path,
        script: &Path,
        out: &Path,
        port: u16,
        tls_dir: Option<&Path>,
    ) -> Smtpd {
        let mut child = Command::new(python)
            .arg(script)
            .arg(out)
            .arg(port.to_string())
            .args(tls_dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start aiosmtpd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("aiosmtpd announces itself");
        assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
        Smtpd(child)
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Loopback, which test servers must allow explicitly for their webhook
/// receivers (`--notify-allow-hosts`).
const LOOPBACK: &str = "127.0.0.1,::1";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `simtrack notify ARGS`, allowing webhooks to this machine's receivers.
fn notify_cli(data: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("notify")
        .args(args)
        .args(storage_args(data))
        .env("SIMTRACK_NOTIFY_ALLOW_HOSTS", LOOPBACK)
        .output()
        .expect("simtrack notify");
    assert!(
        out.status.success(),
        "simtrack notify {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn messages(dir: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("sink dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("message"))
        .collect()
}

/// The email body with quoted-printable soft line breaks undone.
fn unfold(m: &str) -> String {
    m.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

fn deliveries(api: &Api) -> Vec<Value> {
    let r = api.get("/api/ui/notifications");
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["deliveries"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn points(run: &str, from: i64, n: i64, value: f64) -> Value {
    let now = simtrack_server::util::now_us();
    let items: Vec<Value> = (from..from + n)
        .map(|i| {
            json!({"time": i as f64, "step": i, "values": {"loss": value},
                   "timestamp": simtrack_server::util::fmt_ts(now + i)})
        })
        .collect();
    json!({"run": run, "metrics": items})
}

#[test]
fn alert_email_arrives_once_after_the_mail_server_comes_back() {
    let python = smtpd_python();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("store");
    let sink = dir.path().join("mail");
    std::fs::create_dir_all(&sink).expect("mail dir");
    let script = dir.path().join("sink.py");
    std::fs::write(&script, SINK).expect("sink script");
    let token = token_with(&data, &["--name", "ann"]);
    let channel = notify_cli(
        &data,
        &["add", "--user", "ann", "--email", "ann@example.org"],
    );
    assert!(!channel.trim().is_empty());
    let listed = notify_cli(&data, &["list", "--user", "ann"]);
    assert!(listed.contains("ann@example.org"), "{listed}");

    // Nothing listens on the SMTP port yet: connections are refused.
    let port = free_port();
    let port_s = port.to_string();
    let flags = [
        "--smtp-host",
        "127.0.0.1",
        "--smtp-port",
        &port_s,
        "--smtp-starttls",
        "never",
        "--smtp-from",
        "simtrack@example.org",
        "--public-url",
        "http://simtrack.example.test:8800",
        "--notify-retry-secs",
        "0.2",
        "--notify-retry-max-secs",
        "0.5",
    ];
    let server = Server::start(&data, &flags);
    // With PostgreSQL, a second replica on the same database delivers too.
    let replica = (!embedded_backend()).then(|| Server::start(&data, &flags));
    let api = Api::new(&server, &token);

    let alert = api.json(
        "POST",
        "/api/alerts",
        &json!({"name": "loss-high", "source": "metrics", "notification": "email",
                "alert": {"metric": "loss", "rule": "is above", "threshold": 5,
                          "aggregation": "average", "window": 1}}),
    );
    assert_eq!(alert.status, 200, "{}", alert.text);
    let alert_id = alert.json()["id"].as_str().expect("id").to_owned();
    let quiet = api.json(
        "POST",
        "/api/alerts",
        &json!({"name": "quiet", "source": "metrics", "notification": "none",
                "alert": {"metric": "loss", "rule": "is above", "threshold": 1, "window": 1}}),
    );
    let quiet_id = quiet.json()["id"].as_str().expect("id").to_owned();
    let run = api.json(
        "POST",
        "/api/runs",
        &json!({"name": "heat-3d", "alerts": [alert_id, quiet_id]}),
    );
    assert_eq!(run.status, 200, "{}", run.text);
    let run_id = run.json()["id"].as_str().expect("id").to_owned();

    // Ingest while the mail server is down: every request is answered.
    for b in 0..40 {
        let r = api.json("POST", "/api/metrics", &points(&run_id, b * 50, 50, 10.0));
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let doc = api.get(&format!("/api/runs/{run_id}")).json();
    assert!(
        doc["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .all(|a| a["status"] == "critical"),
        "{doc}"
    );
    let retrying = wait_for(Duration::from_secs(20), || {
        let d = deliveries(&api);
        (d.len() == 1 && d[0]["status"] == "retrying" && d[0]["attempts"].as_i64() >= Some(2))
            .then(|| d[0].clone())
    })
    .unwrap_or_else(|| panic!("no retrying delivery: {:?}", deliveries(&api)));
    assert!(
        retrying["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{retrying}"
    );
    assert_eq!(retrying["event"], "critical");
    assert_eq!(retrying["via"]["target"], "ann@example.org");
    // The run page's section shows it too.
    let of_run = api
        .get(&format!("/api/ui/runs/{run_id}/notifications"))
        .json();
    assert_eq!(of_run["data"][0]["status"], "retrying", "{of_run}");
    assert!(messages(&sink).is_empty());

    // A mail server that accepts connections and never answers holds the
    // worker in an attempt; ingest goes on regardless.
    let blackhole = TcpListener::bind(("127.0.0.1", port)).expect("bind the SMTP port");
    std::thread::sleep(Duration::from_secs(1));
    for b in 40..80 {
        let r = api.json("POST", "/api/metrics", &points(&run_id, b * 50, 50, 10.0));
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(deliveries(&api).len(), 1, "one event is one delivery");
    drop(blackhole);

    // The mail server comes up: the email arrives, once.
    let _smtpd = Smtpd::start(&python, &script, &sink, port);
    wait_for(Duration::from_secs(30), || {
        (deliveries(&api)[0]["status"] == "sent").then_some(())
    })
    .unwrap_or_else(|| panic!("not sent: {:?}", deliveries(&api)));
    let mail = messages(&sink);
    assert_eq!(mail.len(), 1, "{mail:?}");
    let m = unfold(&mail[0]);
    for want in [
        "To: ann@example.org",
        "From: simtrack@example.org",
        "heat-3d",
        "loss-high",
        "critical",
        "average of loss over 1 min is above 5",
        "Value: 10",
        &format!("http://simtrack.example.test:8800/#/run/{run_id}"),
    ] {
        assert!(m.contains(want), "the email lacks {want:?}:\n{m}");
    }
    assert!(
        !m.contains("quiet"),
        "an alert with notification none notified"
    );

    // Back to ok: this channel did not ask for "ok", so nothing is queued.
    let r = api.json("POST", "/api/metrics", &points(&run_id, 5000, 10000, 0.0));
    assert_eq!(r.status, 200);
    let doc = api.get(&format!("/api/runs/{run_id}")).json();
    assert_eq!(doc["alerts"][0]["status"], "ok", "{doc}");
    // Critical again within ten minutes: a flapping alert does not repeat.
    let r = api.json("POST", "/api/metrics", &points(&run_id, 20000, 20000, 50.0));
    assert_eq!(r.status, 200);
    let doc = api.get(&format!("/api/runs/{run_id}")).json();
    assert_eq!(doc["alerts"][0]["status"], "critical", "{doc}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(deliveries(&api).len(), 1);
    assert_eq!(messages(&sink).len(), 1, "the email arrived more than once");
    drop(replica);
}

/// What a webhook receiver got: `(path, body)` of each request.
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A webhook receiver: records each request's path and body, answers 200.
fn webhook_receiver() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let path = request.split_whitespace().nth(1).unwrap_or("").to_owned();
            let mut len = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_ok() {
                seen.lock()
                    .expect("lock")
                    .push((path, String::from_utf8_lossy(&body).into_owned()));
            }
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, got)
}

#[test]
fn failed_and_lost_runs_notify_their_owner_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("store");
    let bob = token_with(&data, &["--name", "bob"]);
    let carl = token_with(&data, &["--name", "carl"]);
    let (hook, got) = webhook_receiver();
    notify_cli(
        &data,
        &[
            "add",
            "--user",
            "bob",
            "--webhook",
            &format!("{hook}/json"),
            "--events",
            "critical,ok,failed,lost",
        ],
    );
    notify_cli(
        &data,
        &[
            "add",
            "--user",
            "bob",
            "--webhook",
            &format!("{hook}/slack"),
            "--format",
            "slack",
            "--events",
            "failed",
        ],
    );
    let server = Server::start(
        &data,
        &[
            "--lost-check-secs",
            "0.2",
            "--public-url",
            "http://st.example.test",
            "--notify-allow-hosts",
            LOOPBACK,
        ],
    );
    let api = Api::new(&server, &bob);
    let other = Api::new(&server, &carl);

    let create = |api: &Api, body: Value| {
        let r = api.json("POST", "/api/runs", &body);
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["id"].as_str().expect("id").to_owned()
    };
    let failing = create(&api, json!({"name": "will-fail"}));
    for _ in 0..2 {
        let r = api.json(
            "PUT",
            &format!("/api/runs/{failing}"),
            &json!({"status": "failed"}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let silent = create(&api, json!({"name": "goes-silent", "heartbeat_timeout": 1}));
    let foreign = create(&other, json!({"name": "carls-run"}));
    other.json(
        "PUT",
        &format!("/api/runs/{foreign}"),
        &json!({"status": "failed"}),
    );
    // A user alert set critical, then ok: this channel asked for both.
    let alert = api.json(
        "POST",
        "/api/alerts",
        &json!({"name": "operator-says", "source": "user", "notification": "email"}),
    );
    let alert = alert.json()["id"].as_str().expect("id").to_owned();
    let watched = create(&api, json!({"name": "watched", "alerts": [alert]}));
    for status in ["critical", "ok"] {
        let r = api.json(
            "PUT",
            &format!("/api/alerts/{alert}/status/{watched}"),
            &json!({"status": status}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }

    // Completion notifies only a run that asked for "all" (Simvue's run
    // `notifications`), and then through every channel.
    let all = create(
        &api,
        json!({"name": "tell-me-all", "notifications": {"state": "all"}}),
    );
    let quiet = create(&api, json!({"name": "just-done"}));
    for run in [&all, &quiet] {
        let r = api.json(
            "PUT",
            &format!("/api/runs/{run}"),
            &json!({"status": "completed"}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }

    wait_for(Duration::from_secs(20), || {
        (got.lock().expect("lock").len() >= 7).then_some(())
    })
    .unwrap_or_else(|| panic!("webhooks got {:?}", got.lock().expect("lock")));
    std::thread::sleep(Duration::from_secs(2));
    let got = got.lock().expect("lock").clone();
    assert_eq!(got.len(), 7, "{got:?}");
    let json_bodies: Vec<Value> = got
        .iter()
        .filter(|(p, _)| p == "/json")
        .map(|(_, b)| serde_json::from_str(b).expect("JSON body"))
        .collect();
    let by_event = |e: &str| {
        json_bodies
            .iter()
            .find(|b| b["event"] == e)
            .unwrap_or_else(|| panic!("no {e} event in {json_bodies:?}"))
            .clone()
    };
    let failed = by_event("failed");
    assert_eq!(failed["run"]["id"], failing.as_str());
    assert_eq!(failed["run"]["name"], "will-fail");
    assert_eq!(failed["run"]["user"], "bob");
    assert_eq!(
        failed["run"]["url"],
        format!("http://st.example.test/#/run/{failing}")
    );
    let lost = by_event("lost");
    assert_eq!(lost["run"]["id"], silent.as_str());
    assert_eq!(lost["run"]["status"], "lost");
    assert_eq!(by_event("completed")["run"]["name"], "tell-me-all");
    // The user alert had no status before it was first set.
    for (event, previous) in [("critical", Value::Null), ("ok", json!("critical"))] {
        let e = by_event(event);
        assert_eq!(e["run"]["name"], "watched");
        assert_eq!(e["alert"]["name"], "operator-says");
        assert_eq!(e["alert"]["previous"], previous);
        assert_eq!(e["alert"]["rule"], "set by a user");
    }
    let slack: Vec<&(String, String)> = got.iter().filter(|(p, _)| p == "/slack").collect();
    assert_eq!(
        slack.len(),
        2,
        "the slack channel asked for failures only (and a run for its completion)"
    );
    let texts: Vec<String> = slack
        .iter()
        .map(|(_, b)| {
            let v: Value = serde_json::from_str(b).expect("slack JSON");
            v["text"].as_str().expect("text").to_owned()
        })
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("will-fail") && t.contains(&format!("/#/run/{failing}"))),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t.contains("tell-me-all")), "{texts:?}");
    // The deliveries are visible as sent, and carl sees none of bob's.
    let d = deliveries(&api);
    assert_eq!(d.len(), 7);
    assert!(d.iter().all(|x| x["status"] == "sent"), "{d:?}");
    assert!(deliveries(&other).is_empty());
    // Channels through the API: add, list, remove, only one's own.
    let added = api.json(
        "POST",
        "/api/ui/notifications",
        &json!({"kind": "email", "target": "bob@example.org", "events": ["critical", "ok"]}),
    );
    assert_eq!(added.status, 200, "{}", added.text);
    let id = added.json()["id"].as_str().expect("id").to_owned();
    let bad = api.json(
        "POST",
        "/api/ui/notifications",
        &json!({"kind": "email", "target": "not an address"}),
    );
    assert_eq!(bad.status, 422, "{}", bad.text);
    let listed = api.get("/api/ui/notifications").json();
    assert_eq!(listed["channels"]["count"], 3);
    assert_eq!(
        other
            .send("DELETE", &format!("/api/ui/notifications/{id}"), &[], None)
            .status,
        404
    );
    assert_eq!(
        api.send("DELETE", &format!("/api/ui/notifications/{id}"), &[], None)
            .status,
        200
    );
    assert_eq!(
        api.get("/api/ui/notifications").json()["channels"]["count"],
        2
    );
}

/// STARTTLS required, a certificate from the site's own CA, and SMTP AUTH
/// with the password from a file: the email arrives; with a wrong password
/// the delivery retries with the server's refusal as its error.
#[test]
fn email_goes_through_starttls_with_credentials() {
    let python = smtpd_python();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("store");
    let sink = dir.path().join("mail");
    std::fs::create_dir_all(&sink).expect("mail dir");
    let script = dir.path().join("sink.py");
    std::fs::write(&script, SINK).expect("sink script");
    let port = free_port();
    let _smtpd = Smtpd::start_with(&python, &script, &sink, port, Some(dir.path()));
    let token = token_with(&data, &["--name", "dee"]);
    notify_cli(
        &data,
        &["add", "--user", "dee", "--email", "dee@example.org"],
    );
    let (good, bad) = (dir.path().join("good"), dir.path().join("bad"));
    std::fs::write(&good, "s3cret\n").expect("password file");
    std::fs::write(&bad, "guess\n").expect("password file");
    let ca = dir.path().join("ca.pem");
    let port_s = port.to_string();
    let start = |password: &Path| {
        let password = password.to_str().expect("utf-8 path");
        Server::start(
            &data,
            &[
                "--smtp-host",
                "127.0.0.1",
                "--smtp-port",
                &port_s,
                "--smtp-starttls",
                "required",
                "--smtp-ca-file",
                ca.to_str().expect("utf-8 path"),
                "--smtp-user",
                "simtrack",
                "--smtp-password-file",
                password,
                "--notify-retry-secs",
                "0.2",
                "--notify-retry-max-secs",
                "0.5",
            ],
        )
    };
    let fail = |api: &Api, name: &str| {
        let r = api.json("POST", "/api/runs", &json!({ "name": name }));
        let id = r.json()["id"].as_str().expect("id").to_owned();
        let r = api.json(
            "PUT",
            &format!("/api/runs/{id}"),
            &json!({"status": "failed"}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    };

    let mut server = start(&bad);
    let api = Api::new(&server, &token);
    fail(&api, "wrong-password");
    let d = wait_for(Duration::from_secs(20), || {
        let d = deliveries(&api);
        (d.first()?["status"] == "retrying").then(|| d[0].clone())
    })
    .unwrap_or_else(|| panic!("{:?}", deliveries(&api)));
    assert!(
        d["error"]
            .as_str()
            .is_some_and(|e| e.contains("535") || e.contains("uthentication")),
        "{d}"
    );
    assert!(messages(&sink).is_empty());
    assert!(server.terminate());

    let server = start(&good);
    let api = Api::new(&server, &token);
    fail(&api, "right-password");
    wait_for(Duration::from_secs(20), || {
        (messages(&sink).len() >= 2).then_some(())
    })
    .unwrap_or_else(|| panic!("{:?} {:?}", deliveries(&api), messages(&sink)));
    let mail = messages(&sink).join("\n");
    assert!(mail.contains("right-password") && mail.contains("wrong-password"));
    assert_eq!(messages(&sink).len(), 2);
}

#[test]
fn webhooks_to_the_servers_own_network_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("store");
    let bob = token_with(&data, &["--name", "bob"]);
    let (hook, got) = webhook_receiver();
    let port = hook.rsplit(':').next().expect("port").to_owned();
    let add = |api: &Api, target: &str| {
        api.json(
            "POST",
            "/api/ui/notifications",
            &json!({"kind": "webhook", "target": target, "events": ["failed"]}),
        )
    };
    let fail_run = |api: &Api, name: &str| {
        let r = api.json("POST", "/api/runs", &json!({"name": name}));
        assert_eq!(r.status, 200, "{}", r.text);
        let id = r.json()["id"].as_str().expect("id").to_owned();
        let r = api.json(
            "PUT",
            &format!("/api/runs/{id}"),
            &json!({"status": "failed"}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        id
    };

    // By default: loopback, link-local (the cloud metadata address),
    // private and shared ranges are refused when the channel is made,
    // however the address is written, and a name resolving to loopback too.
    let mut server = Server::start(&data, &["--notify-retry-secs", "0.2"]);
    let api = Api::new(&server, &bob);
    for target in [
        format!("{hook}/json"),
        format!("http://localhost:{port}/json"),
        format!("http://[::1]:{port}/json"),
        format!("http://[::ffff:127.0.0.1]:{port}/json"),
        format!("http://2130706433:{port}/json"),
        format!("http://0x7f.1:{port}/json"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fe80::1]/".to_owned(),
        "http://10.0.0.8/hook".to_owned(),
        "http://172.16.3.4/hook".to_owned(),
        "https://192.168.1.1/hook".to_owned(),
        "http://100.64.0.1/hook".to_owned(),
        "http://[fd12::1]/hook".to_owned(),
        "http://0.0.0.0/hook".to_owned(),
    ] {
        let r = add(&api, &target);
        assert_eq!(r.status, 422, "{target}: {}", r.text);
        assert!(
            r.text.contains("--notify-allow-hosts") || r.text.contains("cannot resolve"),
            "{target}: {}",
            r.text
        );
    }
    let r = add(&api, "http://localhost:1/x");
    assert!(r.text.contains("loopback"), "{}", r.text);
    let r = add(&api, "http://169.254.169.254/x");
    assert!(r.text.contains("link-local"), "{}", r.text);
    // A public address is accepted (nothing is sent to it here).
    let r = add(&api, "http://93.184.215.14/hook");
    assert_eq!(r.status, 200, "{}", r.text);
    let public = r.json()["id"].as_str().expect("id").to_owned();
    let r = api.send(
        "DELETE",
        &format!("/api/ui/notifications/{public}"),
        &[],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // The console checks the same (its environment, or its flag).
    let out = Command::new(bin())
        .args(["notify", "add", "--user", "bob", "--webhook", &hook])
        .args(storage_args(&data))
        .env_remove("SIMTRACK_NOTIFY_ALLOW_HOSTS")
        .output()
        .expect("simtrack notify add");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("loopback"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server.terminate());

    // Allowed explicitly: a name resolving to an allowed address is
    // accepted, and the real receiver gets the event.
    let mut server = Server::start(
        &data,
        &[
            "--notify-retry-secs",
            "0.2",
            "--notify-allow-hosts",
            LOOPBACK,
        ],
    );
    let api = Api::new(&server, &bob);
    let r = add(&api, &format!("http://localhost:{port}/json"));
    assert_eq!(r.status, 200, "{}", r.text);
    let first = fail_run(&api, "allowed");
    wait_for(Duration::from_secs(20), || {
        got.lock()
            .expect("lock")
            .iter()
            .any(|(_, b)| b.contains(&first))
            .then_some(())
    })
    .expect("the allowed webhook is delivered");
    assert!(server.terminate());

    // The same channel with loopback no longer allowed: delivery checks
    // the address the name resolves to then, and refuses it.
    let server = Server::start(&data, &["--notify-retry-secs", "0.2"]);
    let api = Api::new(&server, &bob);
    let second = fail_run(&api, "refused");
    let d = wait_for(Duration::from_secs(20), || {
        deliveries(&api).into_iter().find(|d| {
            d["run"] == second.as_str()
                && d["error"].as_str().is_some_and(|e| e.contains("loopback"))
        })
    })
    .expect("the delivery is refused with the reason");
    assert_ne!(d["status"], "sent", "{d}");
    std::thread::sleep(Duration::from_millis(600));
    let bodies = got.lock().expect("lock").clone();
    assert_eq!(
        bodies.len(),
        1,
        "only the allowed delivery arrived: {bodies:?}"
    );
    assert!(!bodies.iter().any(|(_, b)| b.contains(&second)));
}

/// `simtrack user add ARGS` for `data`'s backend.
fn user_add(data: &Path, args: &[&str]) {
    let out = Command::new(bin())
        .args(["user", "add"])
        .args(args)
        .args(storage_args(data))
        .output()
        .expect("simtrack user add");
    assert!(
        out.status.success(),
        "simtrack user add {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_acknowledged_alert_stays_critical_and_notifies_nothing_until_it_fires_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("store");
    user_add(&data, &["ann"]);
    user_add(&data, &["bob"]);
    user_add(&data, &["carl"]);
    user_add(&data, &["boss", "--admin"]);
    let token = |u: &str| token_with(&data, &["--user", u, "--label", "t", "--days", "2"]);
    let (ann_t, bob_t, carl_t, boss_t) = (token("ann"), token("bob"), token("carl"), token("boss"));
    let (hook, got) = webhook_receiver();
    notify_cli(
        &data,
        &[
            "add",
            "--user",
            "ann",
            "--webhook",
            &format!("{hook}/json"),
            "--events",
            "critical,ok",
        ],
    );
    let server = Server::start(&data, &["--notify-allow-hosts", LOOPBACK]);
    let (ann, bob, carl, boss) = (
        Api::new(&server, &ann_t),
        Api::new(&server, &bob_t),
        Api::new(&server, &carl_t),
        Api::new(&server, &boss_t),
    );
    let alert = ann.json(
        "POST",
        "/api/alerts",
        &json!({"name": "operator-says", "source": "user", "notification": "email"}),
    );
    let alert = alert.json()["id"].as_str().expect("id").to_owned();
    // Bob sees the run (but does not own it).
    let run = ann.json(
        "POST",
        "/api/runs",
        &json!({"name": "watched", "alerts": [alert], "visibility": {"users": ["bob"]}}),
    );
    assert_eq!(run.status, 200, "{}", run.text);
    let run = run.json()["id"].as_str().expect("id").to_owned();
    let set = |status: &str| {
        let r = ann.json(
            "PUT",
            &format!("/api/alerts/{alert}/status/{run}"),
            &json!({"status": status}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    };
    let ack = |api: &Api| {
        api.send(
            "POST",
            &format!("/api/alerts/{alert}/acknowledge/{run}"),
            &[],
            None,
        )
    };
    let state = || {
        let doc = ann.get(&format!("/api/runs/{run}")).json();
        doc["alerts"][0].clone()
    };
    let critical_now = |filter: &str| {
        let q = format!(
            "/api/runs?filters={}",
            urlencode(&json!([filter, "status == running"]).to_string())
        );
        ann.get(&q).json()["count"].as_u64().expect("count")
    };
    let notified = || {
        let d = deliveries(&ann);
        d.iter()
            .map(|x| x["event"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };

    // Nothing to acknowledge while the alert is not critical.
    set("ok");
    assert_eq!(ack(&ann).status, 409);
    set("critical");
    assert_eq!(notified(), ["critical"]);
    assert_eq!(critical_now("alert.acknowledged == false"), 1);
    // Only the owner or an administrator acknowledges; a stranger does not
    // even see the run.
    assert_eq!(ack(&bob).status, 403);
    assert_eq!(ack(&carl).status, 404);
    assert!(state()["acknowledged"].is_null(), "{}", state());
    let r = ack(&ann);
    assert_eq!(r.status, 200, "{}", r.text);
    let s = state();
    assert_eq!(s["status"], "critical", "stays critical: {s}");
    assert_eq!(s["acknowledged"]["by"], "ann", "{s}");
    assert!(s["acknowledged"]["at"].is_string(), "{s}");
    assert_eq!(critical_now("alert.acknowledged == false"), 0);
    assert_eq!(critical_now("alert.acknowledged == true"), 1);
    assert_eq!(critical_now("alert.status == critical"), 1);
    assert!(
        ann.events(&run)
            .iter()
            .any(|e| e.contains("'operator-says' acknowledged by ann")),
        "{:?}",
        ann.events(&run)
    );
    // An administrator may acknowledge too (it is already: no change).
    assert_eq!(ack(&boss).status, 200);
    // Clearing notifies nobody (it was acknowledged) and withdraws the
    // acknowledgement; firing again needs a new one (whether it notifies
    // again is up to the quiet period of repeated alerts).
    set("ok");
    assert!(state()["acknowledged"].is_null(), "{}", state());
    assert_eq!(notified(), ["critical"]);
    set("critical");
    assert!(state()["acknowledged"].is_null(), "{}", state());
    assert_eq!(critical_now("alert.acknowledged == false"), 1);
    // The same channel hears an alert nobody acknowledged clear.
    let other = ann.json(
        "POST",
        "/api/alerts",
        &json!({"name": "second-opinion", "source": "user", "notification": "email"}),
    );
    let other = other.json()["id"].as_str().expect("id").to_owned();
    for status in ["critical", "ok"] {
        let r = ann.json(
            "PUT",
            &format!("/api/alerts/{other}/status/{run}"),
            &json!({"status": status}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let mut n = notified();
    n.sort();
    assert_eq!(n, ["critical", "critical", "ok"]);
    // The webhook really got them.
    wait_for(Duration::from_secs(20), || {
        (got.lock().expect("lock").len() >= 3).then_some(())
    })
    .unwrap_or_else(|| panic!("webhooks got {:?}", got.lock().expect("lock")));
    // Unknown alert or run: 404.
    assert_eq!(
        ann.send(
            "POST",
            &format!("/api/alerts/nope/acknowledge/{run}"),
            &[],
            None
        )
        .status,
        404
    );
    assert_eq!(
        ann.send(
            "POST",
            &format!("/api/alerts/{alert}/acknowledge/nope"),
            &[],
            None
        )
        .status,
        404
    );
}

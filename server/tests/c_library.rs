//! The real C library against the real server: C programs built here with
//! `cc` against `libsimtrack.so` report to a `simtrack server` started by the
//! test; everything is read back through the API. Covers online runs, an
//! offline run uploaded by `simtrack sync` (twice: nothing is sent twice), a
//! server killed with SIGKILL mid-run (every point arrives exactly once),
//! lost-run detection, the abort round trip and alerts firing and clearing,
//! and solvers killed (SIGKILL) or segfaulting while they log: every point
//! whose `simtrack_log` returned reaches the server after `simtrack sync`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Api, Server, token, urlencode, wait_for};
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// The directory holding the `libsimtrack.so` built with this test binary.
fn lib_dir() -> PathBuf {
    let debug = common::bin().parent().expect("target/debug").to_path_buf();
    for d in [debug.join("deps"), debug.clone()] {
        if d.join("libsimtrack.so").is_file() {
            return d;
        }
    }
    panic!("libsimtrack.so not found next to {}", debug.display());
}

fn compile(src: &Path, out: &Path) {
    let lib = lib_dir();
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args([
            "-std=c11",
            "-D_POSIX_C_SOURCE=200809L",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
        ])
        .arg(repo().join("include"))
        .arg(src)
        .arg("-L")
        .arg(&lib)
        .arg("-lsimtrack")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lm", "-o"])
        .arg(out)
        .status()
        .expect("run cc");
    assert!(status.success(), "compiling {} failed", src.display());
}

/// A server, a token, a working directory and the compiled programs.
struct Rig {
    dir: tempfile::TempDir,
    server: Server,
    api: Api,
    token: String,
}

impl Rig {
    fn new(extra: &[&str]) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let tok = token(&data);
        let server = Server::start(&data, extra);
        let api = Api::new(&server, &tok);
        for (src, exe) in [
            (repo().join("examples/c/heat.c"), "heat"),
            (repo().join("server/tests/c/probe.c"), "probe"),
        ] {
            compile(&src, &dir.path().join(exe));
        }
        std::fs::create_dir_all(dir.path().join("work")).expect("workdir");
        Rig {
            dir,
            server,
            api,
            token: tok,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A command for one of the compiled programs, configured for this
    /// server (or offline with `online = false`) and isolated from any
    /// user configuration.
    fn program(&self, exe: &str, online: bool) -> Command {
        let mut c = Command::new(self.path(exe));
        c.current_dir(self.path("work"))
            .env_clear()
            .env("HOME", self.path("work"))
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SIMTRACK_OFFLINE_DIR", self.path("spool"))
            .env("SIMTRACK_FINISH_TIMEOUT", "60")
            .env("SIMTRACK_ABORT_POLL", "0.2");
        if online {
            c.env("SIMTRACK_URL", &self.server.url)
                .env("SIMTRACK_TOKEN", &self.token);
        }
        c
    }

    fn run(&self, exe: &str, online: bool, args: &[&str]) -> Output {
        let out = self
            .program(exe, online)
            .args(args)
            .output()
            .expect("run program");
        assert!(
            out.status.success(),
            "{exe} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

fn steps_of(api: &Api, run: &str, metric: &str) -> Vec<(i64, f64)> {
    api.series(run, metric, "step", None)
        .into_iter()
        .map(|(s, v)| (s.as_i64().expect("integer step"), v.expect("finite value")))
        .collect()
}

/// Everything heat.c reported, read back through the API.
fn check_heat_run(rig: &Rig, steps: i64) {
    let api = &rig.api;
    let run = api.run_by_name("heat-c");
    let id = run["id"].as_str().expect("id").to_owned();
    let doc = api.ok(&format!("/api/runs/{id}"));
    assert_eq!(doc["status"], "completed", "{doc}");
    assert_eq!(doc["folder"], "/examples/c");
    assert_eq!(doc["description"], "1-D explicit heat equation");
    let mut tags: Vec<String> = doc["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t.as_str().unwrap_or("").to_owned())
        .collect();
    tags.sort();
    assert_eq!(tags, ["c", "example", "heat"]);
    let md = &doc["metadata"];
    assert_eq!(md["nx"], 64, "{md}");
    assert_eq!(md["alpha"], 0.25);
    assert_eq!(md["steps"], steps);
    assert_eq!(md["scheme"], "FTCS");
    assert_eq!(md["steps_done"], steps);
    assert!(doc["endtime"].is_string() && doc["started"].is_string());
    // The library's own run id (what the solver can print) is kept with the run.
    let local = doc["system"]["simtrack"]["run_id"]
        .as_str()
        .unwrap_or_default();
    assert!(
        local.len() == 32 && local.bytes().all(|b| b.is_ascii_hexdigit()),
        "{}",
        doc["system"]
    );
    for metric in ["residual", "energy", "u_mid"] {
        let pts = steps_of(api, &id, metric);
        let got: Vec<i64> = pts.iter().map(|p| p.0).collect();
        assert_eq!(
            got,
            (0..steps).collect::<Vec<_>>(),
            "{metric}: every step exactly once"
        );
    }
    // u_mid starts at 1 (inside the hot spot) and decays; energy never grows.
    let energy = steps_of(api, &id, "energy");
    assert!(
        energy.windows(2).all(|w| w[1].1 <= w[0].1 + 1e-12),
        "energy must not grow"
    );
    let events = api.events(&id);
    assert!(
        events
            .iter()
            .any(|m| m == "initialised a hot spot in the middle of the rod"),
        "{events:?}"
    );
    for s in (0..steps).step_by(100) {
        assert!(
            events
                .iter()
                .any(|m| m.starts_with(&format!("step {s} residual"))),
            "step {s} event missing: {events:?}"
        );
    }
    // Files: byte-identical, in their categories.
    let arts = api.ok(&format!("/api/runs/{id}/artifacts"));
    let arts = arts.as_array().expect("array");
    let expect = [
        ("heat_input.nml", "input", rig.path("work/heat_input.nml")),
        (
            "heat_output.dat",
            "output",
            rig.path("work/heat_output.dat"),
        ),
        ("heat.c", "code", repo().join("examples/c/heat.c")),
    ];
    for (name, category, local) in expect {
        let a = arts
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {arts:?}"));
        assert_eq!(a["category"], category);
        let bytes = api
            .http
            .get(a["url"].as_str().expect("url"))
            .send()
            .expect("download")
            .bytes()
            .expect("bytes");
        assert_eq!(
            bytes.as_ref(),
            std::fs::read(&local).expect("local file").as_slice(),
            "{name} differs"
        );
    }
    // With presigned object-store URLs (scripts/test.d/40-postgres.sh sets
    // SIMTRACK_TEST_S3_DIRECT), the library's uploads and these downloads
    // went straight to the store: no artifact byte passed the server.
    if std::env::var("SIMTRACK_TEST_S3_DIRECT").as_deref() == Ok("1") {
        let through = api.ok("/api/health")["artifact_bytes"].clone();
        assert_eq!(
            through,
            json!({"received": 0, "sent": 0}),
            "artifact bytes passed through the server"
        );
    }
    // Alerts attached, evaluated (the heat run stays within both).
    let alerts: Vec<(String, String)> = doc["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| {
            (
                a["alert"]["name"].as_str().unwrap_or("").to_owned(),
                a["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(
        alerts.contains(&("residual-high".into(), "ok".into())),
        "{alerts:?}"
    );
    assert!(
        alerts.contains(&("energy-range".into(), "ok".into())),
        "{alerts:?}"
    );
    // Folder details.
    let q = urlencode(&json!(["path == /examples/c"]).to_string());
    let folders = api.ok(&format!("/api/folders?filters={q}"));
    assert_eq!(
        folders["data"][0]["metadata"]["owner"], "examples",
        "{folders}"
    );
    assert_eq!(
        folders["data"][0]["description"],
        "Runs of the C heat example"
    );
}

#[test]
fn heat_example_online_reads_back_everything() {
    let rig = Rig::new(&[]);
    rig.run("heat", true, &["500", "."]);
    check_heat_run(&rig, 500);
}

#[test]
fn offline_run_is_uploaded_by_sync_exactly_once() {
    let rig = Rig::new(&[]);
    rig.run("heat", false, &["300", "."]);
    let q = urlencode(&json!(["name == heat-c"]).to_string());
    assert_eq!(
        rig.api.ok(&format!("/api/runs?filters={q}"))["count"],
        0,
        "offline: nothing sent yet"
    );
    let sync = || {
        Command::new(common::bin())
            .args(["sync", "--cache"])
            .arg(rig.path("spool"))
            .current_dir(rig.path("work"))
            .env("HOME", rig.path("work"))
            .env("SIMTRACK_URL", &rig.server.url)
            .env("SIMTRACK_TOKEN", &rig.token)
            .stdin(Stdio::null())
            .output()
            .expect("simtrack sync")
    };
    let first = sync();
    let report = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(
        first.status.success(),
        "sync failed: {report}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(report.contains("uploaded"), "{report}");
    check_heat_run(&rig, 300);
    let second = sync();
    assert!(
        second.status.success(),
        "second sync failed: {}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&second.stdout).contains("uploaded ("),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
    assert_eq!(rig.api.ok(&format!("/api/runs?filters={q}"))["count"], 1);
    check_heat_run(&rig, 300);
}

#[test]
fn server_killed_mid_run_receives_every_point_exactly_once() {
    let mut rig = Rig::new(&[]);
    let addr = rig.server.addr();
    let n: i64 = 1_500_000;
    let mut child = rig
        .program("probe", true)
        .args(["points", "killed", &n.to_string(), "1500"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("probe");
    let api = Api::new(&rig.server, &rig.token);
    // Kill the server once some points have arrived, while the solver runs.
    let started = wait_for(Duration::from_secs(20), || {
        let q = urlencode(&json!(["name == killed"]).to_string());
        let v = api.ok(&format!("/api/runs?filters={q}"));
        let count = v["data"][0]["metrics"]["x"]["count"].as_i64().unwrap_or(0);
        (count > 0).then_some(count)
    });
    assert!(started.is_some(), "no points arrived");
    rig.server.kill9();
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the solver finished before the kill; make it longer"
    );
    std::thread::sleep(Duration::from_millis(700));
    rig.server = Server::start_on(&rig.path("data"), &addr, &[]);
    let out = child.wait_with_output().expect("probe output");
    assert!(
        out.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = rig.api.run_by_name("killed");
    let id = run["id"].as_str().expect("id");
    assert_eq!(run["status"], "completed");
    let pts = steps_of(&rig.api, id, "x");
    assert_eq!(pts.len() as i64, n, "every point exactly once");
    for (i, (s, v)) in pts.iter().enumerate() {
        assert_eq!((*s, *v), (i as i64, 0.5 * i as f64), "point {i}");
    }
    let events = rig.api.events(id);
    for k in (0..n).step_by(100_000) {
        assert_eq!(
            events
                .iter()
                .filter(|m| **m == format!("point {k}"))
                .count(),
            1,
            "event point {k}"
        );
    }
}

/// Runs `simtrack sync` on the rig's spool; returns its report.
fn sync_spool(rig: &Rig) -> String {
    let out = Command::new(common::bin())
        .args(["sync", "--cache"])
        .arg(rig.path("spool"))
        .current_dir(rig.path("work"))
        .env("HOME", rig.path("work"))
        .env("SIMTRACK_URL", &rig.server.url)
        .env("SIMTRACK_TOKEN", &rig.token)
        .stdin(Stdio::null())
        .output()
        .expect("simtrack sync");
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "sync failed: {report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

/// The last step per thread that `server/tests/c/dying.c` was told was logged.
fn proof_of(path: &Path) -> Vec<i64> {
    let b = std::fs::read(path).expect("proof file");
    (0..3)
        .map(|k| i64::from_le_bytes(b[k * 8..k * 8 + 8].try_into().expect("8 bytes")))
        .collect()
}

#[test]
fn solvers_killed_or_segfaulting_while_they_log_lose_no_returned_point() {
    let rig = Rig::new(&[]);
    let exe = rig.path("dying");
    compile(&repo().join("server/tests/c/dying.c"), &exe);
    // Kill moments spread over the first half second of logging, different
    // on every run of the test (printed, to repeat a failure by hand).
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    let mut cases: Vec<(String, Vec<i64>)> = Vec::new();
    for i in 0..5u64 {
        let delay = 20 + (seed.rotate_left(13 * i as u32) ^ (i * 0x9E37_79B9)) % 480;
        eprintln!("iteration {i}: SIGKILL after {delay} ms of logging");
        let name = format!("killed-{i}");
        let proof = rig.path(&format!("proof-{i}"));
        let mut child = rig
            .program("dying", false)
            .arg(&name)
            .arg(&proof)
            .arg("kill")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("dying");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("run id");
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{name} died of something else: {status:?}"
        );
        cases.push((name, proof_of(&proof)));
    }
    let proof = rig.path("proof-segv");
    let status = rig
        .program("dying", false)
        .arg("segv")
        .arg(&proof)
        .args(["segv", "4000"])
        .stdout(Stdio::null())
        .status()
        .expect("dying segv");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(11),
        "{status:?}"
    );
    let segv_proof = proof_of(&proof);
    assert_eq!(segv_proof, [3999, 3999, 3999]);
    cases.push(("segv".to_owned(), segv_proof));

    let report = sync_spool(&rig);
    assert!(report.contains("recovered"), "{report}");
    for (name, proof) in &cases {
        let id = rig.api.run_by_name(name)["id"]
            .as_str()
            .expect("id")
            .to_owned();
        for (k, last) in proof.iter().enumerate() {
            let pts = steps_of(&rig.api, &id, &format!("t{k}"));
            // Every point whose call returned, once, in order, and nothing
            // else: at most the one call that returned just before the
            // process died and could not record that it had.
            let n = pts.len() as i64;
            assert!(
                n == last + 1 || n == last + 2,
                "{name} t{k}: {n} points on the server, the solver saw {} calls return",
                last + 1
            );
            for (i, (s, v)) in pts.iter().enumerate() {
                assert_eq!(
                    (*s, *v),
                    (i as i64, 0.5 * i as f64),
                    "{name} t{k} point {i}"
                );
            }
        }
    }
    // A second sync sends nothing again.
    let again = sync_spool(&rig);
    assert!(!again.contains("uploaded ("), "{again}");
}

/// Starts `dying NAME PROOF kill` (online or not) and returns it with the
/// run id it printed.
fn start_dying(rig: &Rig, name: &str, proof: &Path, online: bool) -> (std::process::Child, String) {
    let mut child = rig
        .program("dying", online)
        .arg(name)
        .arg(proof)
        .arg("kill")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dying");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("run id");
    (child, line.trim().to_owned())
}

/// SIGKILL, and the child's stderr.
fn kill_dying(mut child: std::process::Child) -> String {
    child.kill().expect("SIGKILL");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9),
        "died of something else: {:?}",
        out.status
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_online_solver_killed_while_it_logs_is_delivered_by_the_next_run_on_its_spool() {
    let rig = Rig::new(&[]);
    compile(&repo().join("server/tests/c/dying.c"), &rig.path("dying"));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos() as u64;
    let delay = 50 + seed % 400;
    eprintln!("SIGKILL after {delay} ms of logging");
    let proof_path = rig.path("proof-killed");
    let (child, id) = start_dying(&rig, "killed-online", &proof_path, true);
    // Killed once the server knows the run, while it logs.
    let q = urlencode(&json!(["name == killed-online"]).to_string());
    let known = wait_for(Duration::from_secs(30), || {
        (rig.api.ok(&format!("/api/runs?filters={q}"))["count"] == 1).then_some(())
    });
    std::thread::sleep(Duration::from_millis(delay));
    let stderr = kill_dying(child);
    assert!(
        known.is_some(),
        "the run never reached the server: {stderr}"
    );
    let proof = proof_of(&proof_path);
    let lanes = rig.path("spool").join("runs").join(&id).join("lanes");
    assert!(lanes.is_dir(), "the killed run left no lanes");
    // The killed process did not deliver everything it was told was logged
    // (otherwise this test would show nothing).
    std::thread::sleep(Duration::from_millis(300));
    let server_id = rig.api.run_by_name("killed-online")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let on_server: usize = (0..3)
        .map(|k| steps_of(&rig.api, &server_id, &format!("t{k}")).len())
        .sum();
    let returned: i64 = proof.iter().map(|l| l + 1).sum();
    assert!(
        (on_server as i64) < returned,
        "all {returned} points already on the server before the next run"
    );

    // The next online run of a program using the library on that spool
    // delivers the rest in the background: no `simtrack sync`.
    let (next, _) = start_dying(&rig, "next-online", &rig.path("proof-next"), true);
    let complete = wait_for(Duration::from_secs(60), || {
        proof
            .iter()
            .enumerate()
            .all(|(k, last)| steps_of(&rig.api, &server_id, &format!("t{k}")).len() as i64 > *last)
            .then_some(())
    });
    let stderr = kill_dying(next);
    assert!(
        complete.is_some(),
        "points still missing; next run said: {stderr}"
    );
    assert!(
        stderr.contains(&format!("a run left by a process that died: {id}")),
        "{stderr}"
    );
    assert!(!lanes.exists(), "lanes left after the recovery");
    for (k, last) in proof.iter().enumerate() {
        let pts = steps_of(&rig.api, &server_id, &format!("t{k}"));
        let n = pts.len() as i64;
        assert!(
            n == last + 1 || n == last + 2,
            "t{k}: {n} points on the server, the solver saw {} calls return",
            last + 1
        );
        for (i, (s, v)) in pts.iter().enumerate() {
            assert_eq!((*s, *v), (i as i64, 0.5 * i as f64), "t{k} point {i}");
        }
    }
    // `simtrack sync` finds the first run delivered (and recovers the
    // second, killed too).
    let report = sync_spool(&rig);
    let line = report
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(line.contains("up to date"), "{report}");
}

#[test]
fn crashed_solver_is_marked_lost() {
    let rig = Rig::new(&["--lost-check-secs", "0.2"]);
    let out = rig
        .program("probe", true)
        .env("SIMTRACK_HEARTBEAT_TIMEOUT", "1")
        .args(["crash", "crashed"])
        .output()
        .expect("probe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = rig.api.run_by_name("crashed")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let lost = wait_for(Duration::from_secs(15), || {
        (rig.api.ok(&format!("/api/runs/{id}"))["status"] == "lost").then_some(())
    });
    assert!(
        lost.is_some(),
        "status: {}",
        rig.api.ok(&format!("/api/runs/{id}"))["status"]
    );
    assert_eq!(steps_of(&rig.api, &id, "x").len(), 10);
}

#[test]
fn abort_from_the_api_reaches_the_solver_within_seconds() {
    let rig = Rig::new(&[]);
    let child = rig
        .program("probe", true)
        .args(["abort", "abortme"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("probe");
    let id = wait_for(Duration::from_secs(20), || {
        let q = urlencode(&json!(["name == abortme"]).to_string());
        let v = rig.api.ok(&format!("/api/runs?filters={q}"));
        v["data"][0]["id"].as_str().map(str::to_owned)
    })
    .expect("run created");
    let t0 = Instant::now();
    let r = rig.api.json(
        "PUT",
        &format!("/api/runs/{id}/abort"),
        &json!({"reason": "test"}),
    );
    assert_eq!(r.status, 200);
    let out = child.wait_with_output().expect("probe output");
    let latency = t0.elapsed();
    assert!(
        out.status.success(),
        "probe: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(latency < Duration::from_secs(10), "abort took {latency:?}");
    let doc = rig.api.ok(&format!("/api/runs/{id}"));
    assert_eq!(doc["status"], "terminated");
    assert!(
        rig.api
            .events(&id)
            .iter()
            .any(|m| m == "abort seen by the solver")
    );
}

#[test]
fn alert_fires_and_clears_on_a_metric_from_the_c_library() {
    let rig = Rig::new(&[]);
    rig.run("probe", true, &["alert", "alerting", "2000"]);
    let run = rig.api.run_by_name("alerting");
    let id = run["id"].as_str().expect("id");
    let alert = run["alerts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["alert"]["name"] == "temp-high"))
        .cloned();
    let alert: Value = alert.unwrap_or_else(|| panic!("temp-high not attached: {run}"));
    assert_eq!(alert["status"], "ok", "cleared at the end");
    let events = rig.api.events(id);
    assert!(
        events
            .iter()
            .any(|m| m.contains("'temp-high' changed from ok to critical")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|m| m.contains("'temp-high' changed from critical to ok")),
        "{events:?}"
    );
}

#[test]
fn events_from_c_carry_the_level_they_were_given() {
    let rig = Rig::new(&[]);
    rig.run("probe", true, &["levels", "levels"]);
    let id = rig.api.run_by_name("levels")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let events = rig.api.ok(&format!("/api/events?run={id}&count=100"));
    let got: Vec<(String, String)> = events["data"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["message"].as_str().unwrap_or_default().to_owned(),
                e["log_level"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .filter(|(m, _)| !m.starts_with("[simtrack]"))
        .collect();
    let want = [
        ("cfl near 1", "warning"),
        ("solver diverged", "error"),
        ("plain line", "info"),
    ];
    assert_eq!(
        got,
        want.map(|(m, l)| (m.to_owned(), l.to_owned())).to_vec(),
        "the refused event must not be recorded"
    );
}

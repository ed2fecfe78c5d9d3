//! The library's opt-in scheduler signals (`SIMTRACK_SIGNALS`,
//! `simtrack_handle_signals`): a real C solver (`tests/c/scheduler.c`) built
//! against `libsimtrack.so` reports to a real `simtrack server`; the test
//! sends it SIGTERM as a scheduler would. The run must end `terminated` with
//! its data delivered, and the solver must then behave as without simtrack:
//! die by the signal, or run its own handler.

mod common;

use std::io::BufRead;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Api, Server, token, urlencode, wait_for};
use serde_json::json;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

fn lib_dir() -> PathBuf {
    let debug = common::bin().parent().expect("target/debug").to_path_buf();
    for d in [debug.join("deps"), debug.clone()] {
        if d.join("libsimtrack.so").is_file() {
            return d;
        }
    }
    panic!("libsimtrack.so not found next to {}", debug.display());
}

struct Rig {
    dir: tempfile::TempDir,
    _server: Server,
    url: String,
    api: Api,
    token: String,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let tok = token(&data);
    let server = Server::start(&data, &[]);
    let api = Api::new(&server, &tok);
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
        .arg(repo().join("server/tests/c/scheduler.c"))
        .arg("-L")
        .arg(&lib)
        .arg("-lsimtrack")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(dir.path().join("scheduler"))
        .status()
        .expect("cc");
    assert!(status.success());
    Rig {
        url: server.url.clone(),
        dir,
        _server: server,
        api,
        token: tok,
    }
}

/// Starts the solver, waits for "ready", sends SIGTERM; its exit status,
/// its output after "ready", and the seconds the signal took.
fn terminate(
    rig: &Rig,
    name: &str,
    how: &str,
    env: &[(&str, &str)],
) -> (std::process::ExitStatus, String, f64) {
    let mut c = Command::new(rig.dir.path().join("scheduler"));
    c.args([name, how])
        .env_clear()
        .env("HOME", rig.dir.path())
        .env("SIMTRACK_URL", &rig.url)
        .env("SIMTRACK_TOKEN", &rig.token)
        .env("SIMTRACK_OFFLINE_DIR", rig.dir.path().join("spool"))
        .stdout(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("solver");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert_eq!(line, "ready\n");
    let t0 = Instant::now();
    // SAFETY: our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    let took = t0.elapsed().as_secs_f64();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    (status, rest, took)
}

fn check_run(rig: &Rig, name: &str) {
    // Delivered before the process went: no waiting for a later sync.
    let q = urlencode(&json!([format!("name == {name}")]).to_string());
    let v = rig.api.ok(&format!("/api/runs?filters={q}"));
    assert_eq!(v["count"], 1, "{v}");
    let id = v["data"][0]["id"].as_str().expect("id").to_owned();
    assert_eq!(v["data"][0]["status"], "terminated", "{v}");
    let pts = wait_for(Duration::from_secs(1), || {
        let s = rig.api.series(&id, "x", "step", None);
        (s.len() == 1000).then_some(s)
    });
    assert!(pts.is_some(), "all 1000 points delivered");
    assert!(
        rig.api
            .events(&id)
            .iter()
            .any(|e| e.starts_with("received SIGTERM (scheduler signal)")),
        "the signal is an event"
    );
}

#[test]
fn sigterm_with_simtrack_signals_ends_the_run_terminated_then_kills_as_before() {
    let rig = rig();
    let (status, _, took) = terminate(&rig, "env-term", "env", &[("SIMTRACK_SIGNALS", "TERM,INT")]);
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(took < 10.0, "{took}");
    check_run(&rig, "env-term");
}

#[test]
fn the_c_call_opts_in_and_the_solvers_own_handler_still_runs() {
    let rig = rig();
    let (status, rest, _) = terminate(&rig, "own-term", "own", &[]);
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(rest, "solver handler ran\n");
    check_run(&rig, "own-term");
    let (status, _, _) = terminate(&rig, "call-term", "call", &[]);
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    check_run(&rig, "call-term");
}

#[test]
fn without_opting_in_the_library_leaves_sigterm_alone() {
    let rig = rig();
    let (status, _, _) = terminate(&rig, "plain", "env", &[]);
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    let q = urlencode(&json!(["name == plain"]).to_string());
    let v = rig.api.ok(&format!("/api/runs?filters={q}"));
    // Not delivered yet, or still `running` (the server marks it `lost` later).
    assert_ne!(v["data"][0]["status"], "terminated", "{v}");
}

#[test]
fn a_bad_signal_list_fails_init_with_a_config_error() {
    let rig = rig();
    let out = Command::new(rig.dir.path().join("scheduler"))
        .args(["bad", "env"])
        .env_clear()
        .env("SIMTRACK_MODE", "offline")
        .env("SIMTRACK_OFFLINE_DIR", rig.dir.path().join("spool"))
        .env("SIMTRACK_SIGNALS", "TERM,KILL")
        .output()
        .expect("solver");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "init failed\n");
}

//! `simtrack run -- CMD` as a user runs it: the real `simtrack` binary wraps
//! real programs written for these tests (`tests/wrap/residuals.c`, built
//! here with `cc`, and `tests/wrap/residuals.sh`) and reports to a real
//! `simtrack server` started by the test (or offline, then `simtrack sync`);
//! everything is read back through the API.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Api, Server, token, urlencode, wait_for};
use serde_json::{Value, json};

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wrap")
}

struct Rig {
    dir: tempfile::TempDir,
    server: Server,
    api: Api,
    token: String,
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let tok = token(&data);
        let server = Server::start(&data, &[]);
        let api = Api::new(&server, &tok);
        let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args([
                "-std=c11",
                "-D_POSIX_C_SOURCE=200809L",
                "-Wall",
                "-Wextra",
                "-Werror",
            ])
            .arg(here().join("residuals.c"))
            .arg("-o")
            .arg(dir.path().join("residuals"))
            .status()
            .expect("run cc");
        assert!(status.success(), "compiling residuals.c failed");
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

    /// `simtrack run ARGS` in the work directory, configured for this
    /// server (or offline), isolated from any user configuration.
    fn wrapper(&self, online: bool, args: &[&str]) -> Command {
        let mut c = Command::new(common::bin());
        c.arg("run")
            .args(args)
            .current_dir(self.path("work"))
            .env_clear()
            .env("HOME", self.path("work"))
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SIMTRACK_OFFLINE_DIR", self.path("spool"))
            .env("SIMTRACK_FINISH_TIMEOUT", "120")
            .env("SIMTRACK_ABORT_POLL", "0.2")
            .env("SIMTRACK_RESOURCES_INTERVAL", "0.2")
            .stdin(Stdio::null());
        if online {
            c.env("SIMTRACK_URL", &self.server.url)
                .env("SIMTRACK_TOKEN", &self.token);
        } else {
            c.env("SIMTRACK_MODE", "offline");
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.wrapper(true, args).output().expect("simtrack run")
    }

    fn exe(&self) -> String {
        self.path("residuals").display().to_string()
    }

    fn run_named(&self, name: &str) -> Value {
        wait_for(Duration::from_secs(20), || {
            let q = urlencode(&json!([format!("name == {name}")]).to_string());
            let v = self.api.ok(&format!("/api/runs?filters={q}"));
            (v["count"] == 1).then(|| v["data"][0].clone())
        })
        .unwrap_or_else(|| panic!("no run named {name}"))
    }

    fn id_of(&self, name: &str) -> String {
        self.run_named(name)["id"].as_str().expect("id").to_owned()
    }

    fn values(&self, id: &str, metric: &str) -> Vec<(i64, f64)> {
        self.api
            .series(id, metric, "step", None)
            .into_iter()
            .map(|(s, v)| (s.as_i64().expect("step"), v.expect("value")))
            .collect()
    }

    fn event_count(&self, id: &str) -> u64 {
        self.api
            .ok(&format!("/api/events?run={id}&system=true&start=0&count=1"))["count"]
            .as_u64()
            .expect("count")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The C program's table through the TOML rules: exact metric values and
/// steps, every line once as an event and unchanged on the terminal,
/// files by category, child-tree resources, status and exit code.
fn c_program_ends(mode: &str, code: i32, status: &str) -> (Rig, String, Output) {
    let rig = Rig::new();
    let name = format!("c-{mode}");
    let exe = rig.exe();
    let rules = here().join("table.toml");
    let out = rig.run(&[
        "--name",
        &name,
        "--folder",
        "/wrap",
        "--tag",
        "wrapped",
        "--tag",
        "c",
        "--metadata",
        "nx=128",
        "--metadata",
        "dt=0.5",
        "--metadata",
        "scheme=upwind",
        "--rules",
        rules.to_str().expect("utf-8"),
        "--input",
        rules.to_str().expect("utf-8"),
        "--code",
        &format!("{}/residuals.c", here().display()),
        "--output",
        "*.dat",
        "--",
        &exe,
        mode,
    ]);
    assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
    // The same program, unwrapped: the terminal sees exactly its output.
    let direct = Command::new(&exe)
        .arg(mode)
        .current_dir(rig.path("work"))
        .output()
        .expect("run directly");
    assert_eq!(text(&out.stdout), text(&direct.stdout));
    assert!(text(&out.stderr).contains(&text(&direct.stderr)));

    let run = rig.run_named(&name);
    let id = run["id"].as_str().expect("id").to_owned();
    assert_eq!(run["status"], status, "{run}");
    assert_eq!(run["folder"], "/wrap");
    assert_eq!(run["metadata"]["nx"], 128);
    assert_eq!(run["metadata"]["dt"], 0.5);
    assert_eq!(run["metadata"]["scheme"], "upwind");
    let tags: Vec<&str> = run["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tags.contains(&"wrapped") && tags.contains(&"c"), "{tags:?}");

    let residual = rig.values(&id, "residual");
    let energy = rig.values(&id, "energy");
    let expect_r: Vec<(i64, f64)> = (1..=20).map(|k| (k, 1.0 / ((k * k) as f64))).collect();
    let expect_e: Vec<(i64, f64)> = (1..=20).map(|k| (k, 100.0 - 0.25 * k as f64)).collect();
    assert_eq!(residual, expect_r);
    assert_eq!(energy, expect_e);

    // Every output line once, unchanged; stderr lines at level error (or
    // the level they name: "warning: ...").
    let events = rig.api.events(&id);
    for line in text(&direct.stdout).lines() {
        assert_eq!(
            events.iter().filter(|e| *e == line).count(),
            1,
            "{line:?} in {events:?}"
        );
    }
    let leveled = rig
        .api
        .ok(&format!("/api/events?run={id}&filters=&start=0&count=0"));
    let leveled = leveled["data"].as_array().expect("data");
    let stderr = text(&direct.stderr);
    assert!(!stderr.is_empty());
    for line in stderr.lines() {
        let found: Vec<&Value> = leveled.iter().filter(|e| e["message"] == line).collect();
        assert_eq!(found.len(), 1, "{line:?} in {events:?}");
        let level = if line.starts_with("warning:") {
            "warning"
        } else {
            "error"
        };
        assert_eq!(found[0]["log_level"], level, "{line:?}");
    }

    let arts = rig.api.ok(&format!("/api/runs/{id}/artifacts"));
    let arts = arts.as_array().expect("artifacts");
    for (file, category) in [
        ("result.dat", "output"),
        ("table.toml", "input"),
        ("residuals.c", "code"),
    ] {
        let a = arts
            .iter()
            .find(|a| a["name"] == file)
            .unwrap_or_else(|| panic!("{file} missing: {arts:?}"));
        assert_eq!(a["category"], category, "{a}");
    }
    (rig, id, out)
}

#[test]
fn a_program_exiting_0_is_completed_with_its_table_as_metrics() {
    let (rig, id, _) = c_program_ends("ok", 0, "completed");
    let events = rig.api.events(&id);
    assert!(events.iter().any(|e| e.contains("exited with code 0")));
}

#[test]
fn a_program_exiting_3_is_failed_and_the_wrapper_exits_3() {
    let (rig, id, _) = c_program_ends("fail", 3, "failed");
    let run = rig.api.ok(&format!("/api/runs/{id}"));
    assert_eq!(run["metadata"]["exit_code"], 3, "{run}");
}

#[test]
fn a_segfault_is_failed_with_the_signal_and_exit_139() {
    let (rig, id, _) = c_program_ends("segv", 139, "failed");
    let run = rig.api.ok(&format!("/api/runs/{id}"));
    assert_eq!(run["metadata"]["exit_signal"], "SIGSEGV", "{run}");
    assert_eq!(run["metadata"]["exit_code"], 139);
}

#[test]
fn a_script_with_fortran_numbers_logs_metrics_and_reports_garbage_once() {
    let rig = Rig::new();
    let script = here().join("residuals.sh");
    let out = rig.run(&[
        "--name",
        "script",
        "--metric",
        r"residual=residual\s*=\s*(\S+)",
        "--step-regex",
        r"^step (\d+):",
        "--output",
        "*.out",
        "--",
        script.to_str().expect("utf-8"),
        "3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("done"), "{stderr}");
    assert_eq!(stderr.matches("did not parse").count(), 1, "{stderr}");
    let id = rig.id_of("script");
    let expect: Vec<(i64, f64)> = (1..=10)
        .map(|k| (k, format!("{}.5e-03", 1000 / k).parse().unwrap()))
        .collect();
    assert_eq!(rig.values(&id, "residual"), expect);
    let events = rig.api.events(&id);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.contains("did not parse") && e.contains("********"))
            .count(),
        1,
        "{events:?}"
    );
    let run = rig.api.ok(&format!("/api/runs/{id}"));
    assert_eq!(run["status"], "failed");
    let arts = rig.api.ok(&format!("/api/runs/{id}/artifacts"));
    assert!(
        arts.as_array()
            .expect("artifacts")
            .iter()
            .any(|a| a["name"] == "mesh.out" && a["category"] == "output"),
        "{arts}"
    );
}

#[test]
fn resources_are_those_of_the_child_tree() {
    let rig = Rig::new();
    let out = rig.run(&[
        "--name",
        "busy",
        "--",
        "sh",
        "-c",
        "(while :; do :; done) & p=$!; sleep 1.5; kill $p",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = rig.id_of("busy");
    let cpu = rig
        .api
        .series(&id, "resources/cpu.usage.percentage", "step", None);
    // Only the grandchild works: `sh` sleeps and the wrapper itself (not
    // part of the tree) waits. An idle tree reads 0% (checked by making the
    // grandchild sleep instead); the busy loop gets a whole core on a quiet
    // machine but only its share on a loaded one (6-34% at load 11 on 2
    // cores), so "clearly busy" is several samples over 5%.
    let busy = cpu
        .iter()
        .filter(|(_, v)| v.is_some_and(|v| v > 5.0))
        .count();
    assert!(busy >= 2, "the busy grandchild's CPU is counted: {cpu:?}");
    let procs = rig.api.series(&id, "resources/processes", "step", None);
    assert!(
        procs.iter().any(|(_, v)| v.is_some_and(|v| v >= 2.0)),
        "{procs:?}"
    );
    assert!(
        !rig.api
            .series(&id, "resources/cpu.usage.memory", "step", None)
            .is_empty()
    );
    assert!(
        !rig.api
            .series(&id, "resources/threads", "step", None)
            .is_empty()
    );
}

/// Waits until the wrapped program printed `ready` on the wrapper's stdout.
fn spawn_ready(rig: &Rig, args: &[&str]) -> (std::process::Child, std::process::ChildStdout) {
    use std::io::BufRead;
    let mut child = rig
        .wrapper(true, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("simtrack run");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = std::io::BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).expect("read");
    assert_eq!(line, "ready\n");
    (child, reader.into_inner())
}

fn wait_exit(child: &mut std::process::Child, within: Duration) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        if t0.elapsed() > within {
            let _ = child.kill();
            panic!("the wrapper did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn abort(rig: &Rig, name: &str) -> Instant {
    let id = rig.id_of(name);
    let r = rig.api.json(
        "PUT",
        &format!("/api/runs/{id}/abort"),
        &json!({"reason": "test"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    Instant::now()
}

#[test]
fn an_abort_from_the_api_stops_the_child_within_seconds() {
    let rig = Rig::new();
    let exe = rig.exe();
    let (mut child, _out) = spawn_ready(&rig, &["--name", "aborted", "--", &exe, "sleep"]);
    let t0 = abort(&rig, "aborted");
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(status.code(), Some(128 + 15));
    let run = rig.api.ok(&format!("/api/runs/{}", rig.id_of("aborted")));
    assert_eq!(run["status"], "terminated");
    assert_eq!(run["metadata"]["exit_signal"], "SIGTERM");
}

#[test]
fn a_child_ignoring_sigterm_is_killed_after_kill_after() {
    let rig = Rig::new();
    let exe = rig.exe();
    let (mut child, _out) = spawn_ready(
        &rig,
        &[
            "--name",
            "stubborn",
            "--kill-after",
            "1",
            "--",
            &exe,
            "stubborn",
        ],
    );
    let t0 = abort(&rig, "stubborn");
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let took = t0.elapsed();
    assert!(took >= Duration::from_secs(1), "killed too early: {took:?}");
    assert!(took < Duration::from_secs(12), "{took:?}");
    assert_eq!(status.code(), Some(128 + 9));
    let id = rig.id_of("stubborn");
    let run = rig.api.ok(&format!("/api/runs/{id}"));
    assert_eq!(run["status"], "terminated");
    assert_eq!(run["metadata"]["exit_signal"], "SIGKILL");
    assert!(
        rig.api
            .events(&id)
            .iter()
            .any(|e| e.contains("sending SIGKILL"))
    );
}

#[test]
fn signals_to_the_wrapper_reach_the_child() {
    let rig = Rig::new();
    let exe = rig.exe();
    let (mut child, _out) = spawn_ready(&rig, &["--name", "forwarded", "--", &exe, "sleep"]);
    let _ = rig.id_of("forwarded");
    // SAFETY: the pid is our own child's.
    unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) };
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(128 + libc::SIGUSR1));
    let id = rig.id_of("forwarded");
    let run = rig.api.ok(&format!("/api/runs/{id}"));
    assert_eq!(run["status"], "terminated");
    assert_eq!(run["metadata"]["exit_signal"], "SIGUSR1");
    assert!(
        rig.api
            .events(&id)
            .iter()
            .any(|e| e.contains("received SIGUSR1"))
    );
}

#[test]
fn a_million_lines_in_a_burst_are_all_recorded() {
    let rig = Rig::new();
    let exe = rig.exe();
    let out = rig
        .wrapper(true, &["--name", "burst", "--", &exe, "burst", "1000000"])
        .stdout(Stdio::piped())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        out.stdout.iter().filter(|b| **b == b'\n').count(),
        1_000_000
    );
    let id = rig.id_of("burst");
    // The wrapper does not wait for the server to take 1M events (unless it
    // kept pace): its final status is there already, the rest comes from a
    // background sync.
    if text(&out.stderr).contains("continuing in the background") {
        assert_eq!(rig.run_named("burst")["status"], "completed");
    }
    // The program's lines, plus "started" and "exited" from the wrapper and
    // the server's "status changed" event.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut n = rig.event_count(&id);
    while n < 1_000_003 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
        n = rig.event_count(&id);
    }
    if n != 1_000_003 {
        let v = rig
            .api
            .ok(&format!("/api/events?run={id}&system=true&start=0&count=3"));
        let w = rig.api.ok(&format!(
            "/api/events?run={id}&system=true&start=999998&count=10"
        ));
        panic!("{n} events: {v} ... {w}");
    }
    let last = rig.api.ok(&format!(
        "/api/events?run={id}&system=true&start=1000000&count=3"
    ));
    let msgs: Vec<&str> = last["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(msgs.contains(&"line 1000000"), "{msgs:?}");
    // In order, each once: after the wrapper's "started", event k is line k.
    for k in [1usize, 16_000, 16_001, 500_000, 999_999] {
        let w = rig.api.ok(&format!(
            "/api/events?run={id}&system=true&start={k}&count=1"
        ));
        assert_eq!(w["data"][0]["message"], format!("line {k}"), "event {k}");
    }
}

#[test]
fn a_line_longer_than_the_event_limit_is_split_not_dropped() {
    let rig = Rig::new();
    let out = rig.run(&[
        "--name",
        "long",
        "--",
        "sh",
        "-c",
        "head -c 150000 /dev/zero | tr '\\0' x; echo",
    ]);
    assert!(out.status.success());
    let id = rig.id_of("long");
    let events = rig.api.events(&id);
    let xs: Vec<&String> = events.iter().filter(|e| e.starts_with('x')).collect();
    assert_eq!(xs.len(), 3, "64 KiB + 64 KiB + the rest");
    assert_eq!(xs.iter().map(|e| e.len()).sum::<usize>(), 150_000);
}

#[test]
fn offline_runs_are_uploaded_by_sync() {
    let rig = Rig::new();
    let exe = rig.exe();
    let rules = here().join("table.toml");
    let out = rig
        .wrapper(
            false,
            &[
                "--name",
                "offline",
                "--rules",
                rules.to_str().expect("utf-8"),
                "--",
                &exe,
                "fail",
            ],
        )
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let sync = Command::new(common::bin())
        .args(["sync", "--cache"])
        .arg(rig.path("spool"))
        .env("SIMTRACK_URL", &rig.server.url)
        .env("SIMTRACK_TOKEN", &rig.token)
        .output()
        .expect("sync");
    assert!(sync.status.success(), "{}", text(&sync.stderr));
    let id = rig.id_of("offline");
    assert_eq!(rig.api.ok(&format!("/api/runs/{id}"))["status"], "failed");
    assert_eq!(rig.values(&id, "residual").len(), 20);
}

#[test]
fn bad_input_is_refused_with_a_clear_message() {
    let rig = Rig::new();
    for (args, code, says) in [
        (
            &["--bogus", "--", "true"][..],
            2,
            "unexpected argument '--bogus'",
        ),
        (&["--metric", "x=(", "--", "true"][..], 2, "invalid regex"),
        (&["--metric", "x=abc", "--", "true"][..], 2, "capture group"),
        (
            &["--metadata", "=3", "--", "true"][..],
            2,
            "--metadata \"=3\": expected KEY=VALUE",
        ),
        (
            &["--metadata", "nx", "--", "true"][..],
            2,
            "expected KEY=VALUE",
        ),
        (
            &["--folder", "runs/a", "--", "true"][..],
            2,
            "--folder: folder must start with '/'",
        ),
        (
            &["--folder", "/a/../b", "--", "true"][..],
            2,
            "must not contain '.' or '..'",
        ),
        (&["--tag", "ok,bad\tone", "--", "true"][..], 2, "--tag"),
        (&["--name", "a\u{1}b", "--", "true"][..], 2, "--name"),
        (
            &["--name", "x"][..],
            2,
            "required arguments were not provided",
        ),
    ] {
        let out = rig.run(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Nothing was recorded for those.
    assert_eq!(rig.api.ok("/api/runs")["count"], 0);

    let out = rig.run(&["--name", "missing", "--", "no-such-program-anywhere"]);
    assert_eq!(out.status.code(), Some(127));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no-such-program-anywhere: command not found"),
        "{stderr}"
    );
    let id = rig.id_of("missing");
    let run = rig.api.ok(&format!("/api/runs/{id}"));
    assert_eq!(run["status"], "failed");
    assert_eq!(run["metadata"]["exit_code"], 127);
    assert!(
        run["metadata"]["failure"]
            .as_str()
            .is_some_and(|f| f.contains("command not found")),
        "{run}"
    );
}

/// `simtrack sync` of the spool in `rig` to its server.
fn sync(rig: &Rig) {
    let sync = Command::new(common::bin())
        .args(["sync", "--cache"])
        .arg(rig.path("spool"))
        .env("SIMTRACK_URL", &rig.server.url)
        .env("SIMTRACK_TOKEN", &rig.token)
        .output()
        .expect("sync");
    assert!(sync.status.success(), "{}", text(&sync.stderr));
}

/// Every event of run `id`: message and level, in order.
fn leveled_events(rig: &Rig, id: &str) -> Vec<(String, String)> {
    let v = rig
        .api
        .ok(&format!("/api/events?run={id}&filters=&start=0&count=0"));
    v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| {
            (
                e["message"].as_str().unwrap_or("").to_owned(),
                e["log_level"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn offline_lines_keep_their_stream_level_and_order_through_sync() {
    let rig = Rig::new();
    let script = "printf 'out 1\\n'; printf 'err 1\\n' >&2; printf 'WARNING: err 2\\n' >&2; \
                  printf 'out 2\\r\\n'; printf 'bad \\377 byte\\n'; \
                  head -c 70000 /dev/zero | tr '\\0' y; echo; printf 'no newline'";
    let out = rig
        .wrapper(false, &["--name", "streams", "--", "sh", "-c", script])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Passed through unchanged.
    assert!(out.stdout.starts_with(b"out 1\nout 2\r\nbad \xff byte\n"));
    assert_eq!(text(&out.stderr), "err 1\nWARNING: err 2\n");
    sync(&rig);
    let id = rig.id_of("streams");
    let events = leveled_events(&rig, &id);
    let of = |level: &str| -> Vec<String> {
        events
            .iter()
            .filter(|(_, l)| l == level)
            .map(|(m, _)| m.clone())
            .filter(|m| !m.starts_with("simtrack run:"))
            .collect()
    };
    let ys = "y".repeat(70_000);
    assert_eq!(
        of("info"),
        vec![
            "out 1".to_owned(),
            "out 2".to_owned(),
            "bad \u{fffd} byte".to_owned(),
            ys[..65_536].to_owned(),
            ys[65_536..].to_owned(),
            "no newline".to_owned(),
        ],
        "stdout in order, the long line split"
    );
    assert_eq!(of("error"), vec!["err 1"]);
    assert_eq!(of("warning"), vec!["WARNING: err 2"]);
}

#[test]
fn a_wrapper_killed_mid_burst_loses_no_recorded_line_and_sync_delivers_each_once_in_order() {
    let rig = Rig::new();
    let exe = rig.exe();
    let mut child = rig
        .wrapper(
            false,
            &["--name", "killed", "--", &exe, "burst", "20000000"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    // Killed once some of the output is in the spool, well before the end.
    let spool = rig.path("spool");
    let recorded = || {
        walk(&spool)
            .iter()
            .filter(|p| p.ends_with("records.log"))
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum::<u64>()
    };
    let grown = wait_for(Duration::from_secs(30), || {
        (recorded() > 1 << 20).then_some(())
    });
    assert!(grown.is_some(), "the spool did not grow");
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    sync(&rig);
    let id = rig.id_of("killed");
    let events = rig.api.events(&id);
    let lines: Vec<&String> = events.iter().filter(|e| e.starts_with("line ")).collect();
    assert!(lines.len() > 10_000, "{} lines", lines.len());
    assert!(lines.len() < 20_000_000, "killed before the end");
    for (k, line) in lines.iter().enumerate() {
        assert_eq!(
            **line,
            format!("line {}", k + 1),
            "line {} of {}",
            k + 1,
            lines.len()
        );
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A terminal (here a pipe) that stops taking the output does not hold the
/// program up: the wrapper keeps reading the program's pipes and keeps what
/// it has not passed on yet, so the program finishes while nothing of its
/// output has been read; then every line reaches the terminal, in order,
/// and the spool.
#[test]
fn a_terminal_that_stops_reading_does_not_hold_the_program_up() {
    use std::io::Read;
    let rig = Rig::new();
    let exe = rig.exe();
    // 200,000 lines (2.3 MB): far more than the wrapper's stdout pipe
    // (64 KiB) and the program's own pipe (1 MiB) hold together.
    let script = format!("'{exe}' burst 200000 && touch done");
    let mut child = rig
        .wrapper(false, &["--name", "stalled", "--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("simtrack run");
    let done = rig.path("work/done");
    let finished = wait_for(Duration::from_secs(60), || done.exists().then_some(()));
    // Read now in any case, so a failure does not leave the wrapper stuck.
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut out)
        .expect("read");
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert!(
        finished.is_some(),
        "the program was held up while the wrapper's stdout was not read"
    );
    assert!(status.success(), "{status:?}");
    let lines: Vec<&[u8]> = out.split(|b| *b == b'\n').collect();
    assert_eq!(lines.len(), 200_001, "200,000 lines and nothing after");
    for k in [1usize, 5_000, 100_000, 200_000] {
        assert_eq!(lines[k - 1], format!("line {k}").as_bytes(), "line {k}");
    }
    sync(&rig);
    let id = rig.id_of("stalled");
    // The lines, "started" and "exited" from the wrapper, "status changed".
    assert_eq!(rig.event_count(&id), 200_003);
}

/// A new pseudo-terminal (the test's own, standing for the user's).
fn open_terminal() -> (std::fs::File, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let (mut m, mut s) = (-1, -1);
    // SAFETY: openpty fills two descriptors, owned at once below.
    let r = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: fresh descriptors nobody else owns.
    unsafe {
        (
            std::fs::File::from_raw_fd(m),
            std::os::fd::OwnedFd::from_raw_fd(s),
        )
    }
}

/// Run from a terminal, the program gets a terminal as stdout, so it prints
/// line by line as it would without the wrapper: its lines reach the user
/// (and the run) while it runs, not in 4 KiB blocks or at its exit. Behind
/// a plain pipe, "waiting" would stay in the program's buffer until it ends.
#[test]
fn from_a_terminal_the_program_prints_line_by_line_as_it_would_alone() {
    use std::io::Read;
    let rig = Rig::new();
    let exe = rig.exe();
    let go = rig.path("work/go");
    let (mut terminal, user_end) = open_terminal();
    let mut cmd = rig.wrapper(
        false,
        &[
            "--name",
            "tty",
            "--",
            &exe,
            "tty",
            go.to_str().expect("utf-8"),
        ],
    );
    cmd.stdout(Stdio::from(user_end)).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("simtrack run");
    drop(cmd);
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Ends with EIO once the wrapper has closed the terminal.
        while let Ok(n) = terminal.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !text(&seen).contains("waiting") && Instant::now() < deadline {
        if let Ok(b) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.extend(b);
        }
    }
    let waiting_while_running = text(&seen).contains("waiting");
    std::fs::write(&go, "").expect("go");
    let status = wait_exit(&mut child, Duration::from_secs(60));
    reader.join().expect("reader");
    seen.extend(rx.try_iter().flatten());
    assert!(
        waiting_while_running,
        "\"waiting\" did not reach the terminal while the program ran: {:?}",
        text(&seen)
    );
    assert!(status.success(), "{status:?}");
    // The user's terminal turns each \n into \r\n, as it does for any program.
    assert_eq!(text(&seen).replace('\r', ""), "isatty=1\nwaiting\ndone\n");
    sync(&rig);
    let id = rig.id_of("tty");
    let lines: Vec<String> = leveled_events(&rig, &id)
        .into_iter()
        .map(|(m, _)| m)
        .filter(|m| !m.starts_with("simtrack run:"))
        .collect();
    assert_eq!(lines, ["isatty=1", "waiting", "done"]);
}

/// `--pty always` gives the program a terminal in a batch job too; the
/// bytes pass through unchanged (no \r added) and a burst loses nothing.
/// `--pty never` keeps a pipe even on a terminal.
#[test]
fn pty_always_and_never_are_obeyed_and_a_burst_through_a_terminal_is_whole() {
    let rig = Rig::new();
    let exe = rig.exe();
    let go = rig.path("work/go");
    std::fs::write(&go, "").expect("go");
    let go = go.to_str().expect("utf-8");
    let out = rig
        .wrapper(false, &["--pty", "always", "--", &exe, "tty", go])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "isatty=1\nwaiting\ndone\n");

    let (_terminal, user_end) = open_terminal();
    let out = rig
        .wrapper(false, &["--pty", "never", "--", &exe, "tty", go])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(user_end))
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "isatty=0\nwaiting\ndone\n");

    let out = rig
        .wrapper(
            false,
            &[
                "--name",
                "pty-burst",
                "--pty",
                "always",
                "--",
                &exe,
                "burst",
                "100000",
            ],
        )
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<&[u8]> = out.stdout.split(|b| *b == b'\n').collect();
    assert_eq!(lines.len(), 100_001, "100,000 lines and nothing after");
    assert_eq!(lines[99_999], b"line 100000");
    sync(&rig);
    let id = rig.id_of("pty-burst");
    assert_eq!(rig.event_count(&id), 100_003);
}

/// The program's terminal has the size of the user's, and follows it when
/// the window is resized (SIGWINCH, which the terminal sends to the
/// wrapper and the program alike).
#[test]
fn the_programs_terminal_follows_the_size_of_the_users() {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let rig = Rig::new();
    let (mut terminal, user_end) = open_terminal();
    let fd = terminal.as_raw_fd();
    let set_size = |rows: u16, cols: u16| {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize, on our open terminal.
        let r = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
        assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    };
    set_size(30, 100);
    // Prints its terminal's size, then waits (at most 60 s) for it to change.
    // (fd 3: stdout inside the command substitution is a pipe.)
    let script = "exec 3>&1; stty -F /dev/fd/3 size; i=0; \
                  while [ \"$(stty -F /dev/fd/3 size)\" = '30 100' ] && [ $i -lt 600 ]; \
                  do sleep 0.1; i=$((i+1)); done; stty -F /dev/fd/3 size";
    let mut cmd = rig.wrapper(false, &["--", "sh", "-c", script]);
    cmd.stdout(Stdio::from(user_end)).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("simtrack run");
    drop(cmd);
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !text(&seen).contains('\n') {
        match terminal.read(&mut buf) {
            Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    assert_eq!(text(&seen).replace('\r', ""), "30 100\n");
    set_size(40, 120);
    // SAFETY: a signal to our own child, the wrapper.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGWINCH) };
    while let Ok(n) = terminal.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    let status = wait_exit(&mut child, Duration::from_secs(90));
    assert!(status.success(), "{status:?}");
    assert_eq!(text(&seen).replace('\r', ""), "30 100\n40 120\n");
}

/// The program's lines of a run, by level, without the wrapper's own.
fn program_lines(rig: &Rig, id: &str) -> (Vec<String>, Vec<String>) {
    let events = leveled_events(rig, id);
    let of = |level: &str| -> Vec<String> {
        events
            .iter()
            .filter(|(m, l)| l == level && !m.starts_with("simtrack run:"))
            .map(|(m, _)| m.clone())
            .collect()
    };
    (of("info"), of("error"))
}

/// A batch job's stdout, a file: the program writes it itself (its fd 1 is
/// the file, not a pipe), text already in the file is not recorded, and
/// every line the program wrote is recorded once, stdout and stderr apart
/// (stderr, a file of its own, is written by the program too).
/// Opened to append (`>>`) and truncated (`>`), and into the middle of a
/// file (`1<>`), where the wrapper falls back to a pipe.
#[test]
fn a_batch_jobs_output_file_is_written_by_the_program_and_read_back() {
    let rig = Rig::new();
    let script = "echo \"fd1 $(readlink /proc/$$/fd/1)\"; echo 'out 1'; echo 'err 1' >&2; \
                  echo \"fd2 $(readlink /proc/$$/fd/2)\" >&2; \
                  sleep 0.3; echo 'out 2'; printf 'no newline'";
    for (name, open) in [
        ("append", "append"),
        ("truncate", "truncate"),
        ("middle", "middle"),
    ] {
        let out_path = rig.path(&format!("{name}.out"));
        let err_path = rig.path(&format!("{name}.err"));
        std::fs::write(&out_path, "already there\nand this\n").expect("write");
        let mut o = std::fs::OpenOptions::new();
        match open {
            "append" => o.append(true),
            "truncate" => o.write(true).truncate(true),
            _ => o.write(true),
        };
        let out_file = o.open(&out_path).expect("open");
        let status = rig
            .wrapper(
                false,
                &["--direct", "--name", name, "--", "sh", "-c", script],
            )
            .stdout(out_file)
            .stderr(std::fs::File::create(&err_path).expect("create"))
            .status()
            .expect("run");
        assert!(status.success(), "{name}");
        let written = std::fs::read_to_string(&out_path).expect("read");
        let mine = "out 1\nout 2\nno newline";
        let fd1 = written
            .lines()
            .find(|l| l.starts_with("fd1 "))
            .expect("fd1");
        match open {
            "append" => {
                assert!(
                    written.starts_with("already there\nand this\nfd1 "),
                    "{written}"
                );
                assert!(written.ends_with(mine), "{written}");
            }
            "truncate" => assert!(written.starts_with("fd1 ") && written.ends_with(mine)),
            // Overwritten from the start, as the program alone would.
            _ => assert!(written.starts_with("fd1 pipe:"), "{written}"),
        }
        if open != "middle" {
            assert_eq!(
                fd1,
                format!("fd1 {}", out_path.display()),
                "the program writes the file"
            );
        }
        // stderr, a file of its own, is written by the program too.
        let fd2 = format!("fd2 {}", err_path.display());
        assert_eq!(
            std::fs::read_to_string(&err_path).expect("read"),
            format!("err 1\n{fd2}\n")
        );
        sync(&rig);
        let (info, error) = program_lines(&rig, &rig.id_of(name));
        assert_eq!(
            info,
            vec![
                fd1.to_owned(),
                "out 1".into(),
                "out 2".into(),
                "no newline".into()
            ],
            "{name}"
        );
        assert_eq!(error, vec!["err 1".to_owned(), fd2], "{name}");
    }
}

/// stdout and stderr into one file (`2>&1`, SLURM's default): the
/// program's stderr passes through the wrapper into the file; read back,
/// those bytes are skipped, so each line is recorded once, at its level.
/// A burst of 200,000 lines is recorded whole and in order.
#[test]
fn one_file_for_stdout_and_stderr_records_each_line_once_at_its_level() {
    let rig = Rig::new();
    let exe = rig.exe();
    let script = format!(
        "for i in 1 2 3 4 5 6 7 8 9 10; do echo \"out $i\"; echo \"err $i\" >&2; done; \
         {exe} burst 200000; echo 'WARNING: last' >&2; echo end"
    );
    let path = rig.path("job.log");
    let file = std::fs::File::create(&path).expect("create");
    let status = rig
        .wrapper(
            false,
            &["--direct", "--name", "joined", "--", "sh", "-c", &script],
        )
        .stdout(file.try_clone().expect("dup"))
        .stderr(file)
        .status()
        .expect("run");
    assert!(status.success());
    // The file interleaves the two streams as they were written: stderr
    // text (which reaches the file through the wrapper) may fall between
    // two blocks of the program's buffered stdout, even within a line, as
    // it may without the wrapper. Taken out, stdout is left whole.
    let mut written = std::fs::read_to_string(&path).expect("read");
    let stderr_text: Vec<String> = (1..=10)
        .map(|i| format!("err {i}\n"))
        .chain(["WARNING: last\n".to_owned()])
        .collect();
    let mut from = 0;
    for e in &stderr_text {
        let at = from
            + written[from..]
                .find(e.as_str())
                .unwrap_or_else(|| panic!("{e:?} in the file"));
        written.replace_range(at..at + e.len(), "");
        from = at;
    }
    let stdout_text: String = (1..=10)
        .map(|i| format!("out {i}\n"))
        .chain((1..=200_000).map(|i| format!("line {i}\n")))
        .chain(["end\n".to_owned()])
        .collect();
    assert!(
        written == stdout_text,
        "the file holds stdout whole and stderr in order"
    );
    sync(&rig);
    let id = rig.id_of("joined");
    let (info, error) = program_lines(&rig, &id);
    let want_info: Vec<String> = (1..=10)
        .map(|i| format!("out {i}"))
        .chain((1..=200_000).map(|i| format!("line {i}")))
        .chain(["end".to_owned()])
        .collect();
    assert_eq!(info.len(), want_info.len());
    assert!(info == want_info, "stdout lines once each, in order");
    let want_error: Vec<String> = (1..=10).map(|i| format!("err {i}")).collect();
    assert_eq!(error, want_error, "stderr lines once each, as errors");
    let warnings: Vec<String> = leveled_events(&rig, &id)
        .into_iter()
        .filter(|(_, l)| l == "warning")
        .map(|(m, _)| m)
        .collect();
    assert_eq!(warnings, vec!["WARNING: last".to_owned()]);
}

/// A program writing its own output file does not depend on the wrapper:
/// killed (SIGKILL), the wrapper takes no pipe with it, and the program
/// writes on to its end.
#[test]
fn a_program_writing_its_file_outlives_a_killed_wrapper() {
    let rig = Rig::new();
    let path = rig.path("outlive.log");
    let script = "echo first; sleep 1; for i in 1 2 3; do echo \"more $i\"; done; echo done";
    let mut wrapper = rig
        .wrapper(
            false,
            &["--direct", "--name", "outlive", "--", "sh", "-c", script],
        )
        .stdout(std::fs::File::create(&path).expect("create"))
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    let first = wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(&path)
            .ok()
            .filter(|t| t.contains("first"))
    });
    assert!(first.is_some(), "the program did not start");
    wrapper.kill().expect("SIGKILL");
    let _ = wrapper.wait();
    let done = wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(&path)
            .ok()
            .filter(|t| t.ends_with("done\n"))
    });
    assert_eq!(
        done.as_deref(),
        Some("first\nmore 1\nmore 2\nmore 3\ndone\n"),
        "the program wrote on after the wrapper died"
    );
}

/// The library's own warnings during the run (here: the server refuses the
/// token) go to the job's file like the wrapper's messages, and like them
/// are not recorded as the program's output.
#[test]
fn warnings_written_into_the_jobs_file_are_not_recorded_as_output() {
    let rig = Rig::new();
    let path = rig.path("refused.log");
    let file = std::fs::File::create(&path).expect("create");
    let status = rig
        .wrapper(
            true,
            &[
                "--direct",
                "--name",
                "refused",
                "--",
                "sh",
                "-c",
                "echo a; sleep 1.5; echo b",
            ],
        )
        .env("SIMTRACK_TOKEN", "not-a-token")
        .env("SIMTRACK_FINISH_TIMEOUT", "1")
        .stdout(file.try_clone().expect("dup"))
        .stderr(file)
        .status()
        .expect("run");
    assert!(status.success());
    let written = std::fs::read_to_string(&path).expect("read");
    assert!(written.contains("refused this run's data"), "{written}");
    // The wrapper left the backlog to a background sync with the same bad
    // token; while that one holds the run, ours finds it in use: again
    // until the run is there.
    let q = urlencode(&json!(["name == refused"]).to_string());
    let delivered = wait_for(Duration::from_secs(60), || {
        sync(&rig);
        (rig.api.ok(&format!("/api/runs?filters={q}"))["count"] == 1).then_some(())
    });
    assert!(delivered.is_some(), "the run was never synced");
    let events = rig.api.events(&rig.id_of("refused"));
    let program: Vec<&String> = events
        .iter()
        .filter(|e| !e.starts_with("simtrack run:"))
        .filter(|e| !e.contains("status"))
        .collect();
    assert_eq!(program, ["a", "b"], "{events:?}");
}

/// A run that cannot be tracked (here its spool cannot be created) does not
/// cost the job its program: the program runs, untracked, with its own
/// output and exit code, and the wrapper says why.
#[test]
fn a_program_whose_run_cannot_be_tracked_still_runs() {
    let rig = Rig::new();
    std::fs::write(rig.path("a-file"), "").expect("write");
    let out = rig
        .wrapper(
            false,
            &["--name", "untracked", "--", "sh", "-c", "echo ran; exit 3"],
        )
        .env("SIMTRACK_OFFLINE_DIR", rig.path("a-file/spool"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stdout), "ran\n");
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot start the run") && err.contains("untracked"),
        "{err}"
    );
    // The program started before the spool failed: the wrapper stays its
    // parent, and a signal sent to the wrapper (a scheduler's) still
    // reaches it.
    let mut child = rig
        .wrapper(
            false,
            &[
                "--",
                "sh",
                "-c",
                "trap 'echo stopped; exit 5' TERM; echo ready; while :; do sleep 0.05; done",
            ],
        )
        .env("SIMTRACK_OFFLINE_DIR", rig.path("a-file/spool"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).expect("read");
    assert_eq!(line, "ready\n");
    // SAFETY: a signal to the wrapper we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(5));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read");
    assert_eq!(rest, "stopped\n");
    // A missing program, with no run to record it in: 127 all the same.
    let out = rig
        .wrapper(false, &["--", "no-such-program-here"])
        .env("SIMTRACK_OFFLINE_DIR", rig.path("a-file/spool"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(127));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot start the run") && err.contains("command not found"),
        "{err}"
    );
    // A broken configuration, the same; a missing program is still 127.
    let out = rig
        .wrapper(true, &["--", "no-such-program-here"])
        .env("SIMTRACK_URL", "not a url")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(127));
    let err = text(&out.stderr);
    assert!(
        err.contains("SIMTRACK_URL") && err.contains("command not found"),
        "{err}"
    );
}

/// The program starts before the run is set up: a scheduler slow to say
/// the job's time limit (here a `squeue` that takes 2 s, as a busy
/// controller does) does not hold the job up, and the limit still reaches
/// the run's metadata.
#[test]
fn a_slow_scheduler_does_not_hold_the_program_up() {
    let rig = Rig::new();
    let bin = rig.path("slow-bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let squeue = bin.join("squeue");
    std::fs::write(&squeue, "#!/bin/sh\nsleep 2\necho '10:00 9:30'\n").expect("write");
    std::fs::set_permissions(&squeue, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let started = rig.path("work/started");
    let t0 = Instant::now();
    let mut child = rig
        .wrapper(
            true,
            &[
                "--name",
                "slow-scheduler",
                "--",
                "sh",
                "-c",
                "touch started; sleep 0.5",
            ],
        )
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("SLURM_JOB_ID", "4242")
        .spawn()
        .expect("run");
    let seen = wait_for(Duration::from_secs(10), || {
        started.exists().then(Instant::now)
    })
    .expect("the program never started");
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    let waited = seen.duration_since(t0);
    assert!(
        waited < Duration::from_millis(1500),
        "the program started {waited:?} after the wrapper: it waited for squeue"
    );
    let run = rig.run_named("slow-scheduler");
    assert_eq!(run["metadata"]["slurm_time_limit_secs"], 600, "{run}");
    assert_eq!(run["metadata"]["slurm_job_id"], 4242, "{run}");
    assert_eq!(run["status"], "completed", "{run}");
}

//! Faults of the server itself, with real solvers (the C library through
//! `server/tests/c/probe.c`) reporting to it:
//!
//! - SIGKILL loop: the server is killed with SIGKILL five times and
//!   restarted on the same port and data while four solvers log; every
//!   point and event arrives exactly once.
//! - Disk full: the data directory is on a small tmpfs that fills up while
//!   two solvers log; the server answers 5xx (it does not crash or hang),
//!   and once space is freed the library's retries deliver everything,
//!   exactly once. Needs root for `mount`; skipped (with a message) without.

#[path = "common/clib.rs"]
mod clib;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Api, Server, token, urlencode, wait_for};
use serde_json::json;

fn steps(api: &Api, run: &str, metric: &str) -> Vec<(i64, f64)> {
    api.series(run, metric, "step", None)
        .into_iter()
        .map(|(s, v)| (s.as_i64().expect("step"), v.expect("value")))
        .collect()
}

/// Every point `x = 0.5 i` at step `i < n` exactly once, every
/// `point k` event (k a multiple of 100 000) exactly once, and completed.
fn check_exactly_once(api: &Api, name: &str, n: i64) {
    let run = api.run_by_name(name);
    let id = run["id"].as_str().expect("id");
    assert_eq!(run["status"], "completed", "{name}: {run}");
    let pts = steps(api, id, "x");
    assert_eq!(pts.len() as i64, n, "{name}: every point exactly once");
    for (i, (s, v)) in pts.iter().enumerate() {
        assert_eq!((*s, *v), (i as i64, 0.5 * i as f64), "{name}: point {i}");
    }
    let events = api.events(id);
    for k in (0..n).step_by(100_000) {
        let want = format!("point {k}");
        assert_eq!(
            events.iter().filter(|m| **m == want).count(),
            1,
            "{name}: event {want}"
        );
    }
}

fn wait_all(children: Vec<(String, Child)>) {
    for (name, child) in children {
        let out = child.wait_with_output().expect("probe");
        assert!(
            out.status.success(),
            "{name} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn server_sigkill_loop_under_four_solvers_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("probe");
    clib::compile_probe(&exe);
    let data = dir.path().join("data");
    let tok = token(&data);
    let mut server = Server::start(&data, &[]);
    let addr = server.addr();
    let url = server.url.clone();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).expect("spool");
    // 300k points each, 20 ms pause per 1000: about 6 s of logging per
    // solver, longer than the kill loop.
    let n: i64 = 300_000;
    let names: Vec<String> = (0..4).map(|i| format!("kill-loop-{i}")).collect();
    let children: Vec<(String, Child)> = names
        .iter()
        .map(|name| {
            let c = clib::probe(
                &exe,
                &spool,
                Some((&url, &tok)),
                &["points", name, &n.to_string(), "20000"],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("probe");
            (name.clone(), c)
        })
        .collect();
    let api = Api::new(&server, &tok);
    let q = urlencode(&json!(["name == kill-loop-0"]).to_string());
    assert!(
        wait_for(Duration::from_secs(20), || {
            let v = api.ok(&format!("/api/runs?filters={q}"));
            (v["data"][0]["metrics"]["x"]["count"].as_i64().unwrap_or(0) > 0).then_some(())
        })
        .is_some(),
        "no points arrived"
    );
    let t0 = Instant::now();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(700));
        server.kill9();
        std::thread::sleep(Duration::from_millis(200));
        server = Server::start_on(&data, &addr, &[]);
    }
    let mut children = children;
    let mut running = 0;
    for (_, c) in &mut children {
        if matches!(c.try_wait(), Ok(None)) {
            running += 1;
        }
    }
    eprintln!(
        "5 SIGKILLs in {:?}; {running} of 4 solvers still logging after the last",
        t0.elapsed()
    );
    assert!(
        running > 0,
        "the solvers finished before the kills ended: make them longer"
    );
    wait_all(children);
    let api = Api::new(&server, &tok);
    for name in &names {
        check_exactly_once(&api, name, n);
    }
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).expect("mount point");
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `path` up to the last `leave` bytes.
fn fill(path: &Path, leave: u64) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("filler");
    let chunk = vec![0x5Au8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.flush();
    let len = f.metadata().expect("filler").len();
    f.set_len(len.saturating_sub(leave)).expect("truncate");
    f.sync_all().expect("sync");
}

#[test]
fn server_disk_full_answers_5xx_stays_up_and_loses_nothing_after_space_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("mnt");
    let Some(fs) = Tmpfs::mount(&mnt, "24m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs (needs root)");
        return;
    };
    let exe = dir.path().join("probe");
    clib::compile_probe(&exe);
    let data = mnt.join("data");
    let tok = token(&data);
    let mut server = Server::start(&data, &[]);
    let url = server.url.clone();
    let api = Api::new(&server, &tok);
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).expect("spool");
    // Leave 256 KiB: the runs are created, then their points no longer fit.
    let filler = mnt.join("filler");
    fill(&filler, 256 * 1024);
    let n: i64 = 250_000;
    let names = ["full-0", "full-1"];
    let children: Vec<(String, Child)> = names
        .iter()
        .map(|name| {
            let c = clib::probe(
                &exe,
                &spool,
                Some((&url, &tok)),
                &["points", name, &n.to_string(), "0"],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("probe");
            (name.to_string(), c)
        })
        .collect();
    // While full: writes fail with 5xx, reads work, the server stays up.
    std::thread::sleep(Duration::from_secs(3));
    let big = vec![7u8; 1 << 20];
    let sum = {
        use sha2::Digest;
        simtrack_server::util::hex(&sha2::Sha256::digest(&big))
    };
    let reg = api.json(
        "POST",
        "/api/artifacts",
        &json!({"name": "big.bin", "size": big.len(), "checksum": sum}),
    );
    let upload_status = if reg.status == 200 {
        let up = reg.json()["url"].as_str().expect("url").to_owned();
        api.send(
            "PUT",
            &up,
            &[],
            Some((big.clone(), "application/octet-stream")),
        )
        .status
    } else {
        reg.status
    };
    assert!(
        (500..600).contains(&upload_status),
        "a 1 MiB upload on a full disk answered {upload_status}"
    );
    assert_eq!(api.get("/api/version").status, 200, "reads still work");
    assert!(server.alive(), "the server died on a full disk");
    let delivered_while_full: i64 = names
        .iter()
        .map(|name| {
            let q = urlencode(&json!([format!("name == {name}")]).to_string());
            let v = api.ok(&format!("/api/runs?filters={q}"));
            v["data"][0]["metrics"]["x"]["count"].as_i64().unwrap_or(0)
        })
        .sum();
    eprintln!(
        "disk full: upload answered {upload_status}; {delivered_while_full} of {} points stored while full",
        2 * n
    );
    assert!(
        delivered_while_full < 2 * n,
        "everything fit: the disk never filled up"
    );
    // Space returns: everything arrives, exactly once.
    std::fs::remove_file(&filler).expect("free space");
    wait_all(children);
    assert!(server.alive(), "the server died");
    for name in names {
        check_exactly_once(&api, name, n);
    }
    server.kill9();
    drop(fs);
}

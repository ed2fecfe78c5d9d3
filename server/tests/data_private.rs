//! The data directory is private to the server (issue 14, item 7), and
//! `simtrack doctor` finds what is wrong with a data directory or a library
//! spool. Black-box: the real `simtrack` binary and the real C library.

#[path = "common/clib.rs"]
mod clib;
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{Api, Server, token};
use sha2::Digest;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
}

/// Uploads `bytes` as an artifact and returns its id.
fn upload(api: &Api, name: &str, bytes: &[u8]) -> String {
    let sum = simtrack_server::util::hex(&sha2::Sha256::digest(bytes));
    let reg = api.json(
        "POST",
        "/api/artifacts",
        &serde_json::json!({"name": name, "size": bytes.len(), "checksum": sum}),
    );
    assert_eq!(reg.status, 200, "{}", reg.text);
    let v = reg.json();
    let url = v["url"].as_str().expect("url");
    let up = api.send(
        "PUT",
        url,
        &[],
        Some((bytes.to_vec(), "application/octet-stream")),
    );
    assert_eq!(up.status, 200, "{}", up.text);
    v["id"].as_str().expect("id").to_owned()
}

fn doctor(args: &[&str]) -> (bool, String) {
    let out = Command::new(common::bin())
        .arg("doctor")
        .args(args)
        .output()
        .expect("run simtrack doctor");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("$ simtrack doctor {}\n{text}", args.join(" "));
    (out.status.success(), text)
}

#[test]
fn a_new_data_directory_and_everything_in_it_is_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // The test runs with the usual umask (022); the server must not rely on it.
    let tok = token(&data);
    let server = Server::start(&data, &[]);
    let api = Api::new(&server, &tok);
    api.create_run(serde_json::json!({"name": "private", "folder": "/"}));
    upload(&api, "deck.nml", b"&params nx = 64 /\n");
    let mut files = vec![
        data.clone(),
        data.join("simtrack.db"),
        data.join("simtrack.db-wal"),
        data.join("simtrack.db-shm"),
        data.join("server.lock"),
        data.join("blobs"),
        data.join("blobs/tmp"),
    ];
    let blob_dirs: Vec<PathBuf> = std::fs::read_dir(data.join("blobs"))
        .expect("blobs")
        .flatten()
        .map(|e| e.path())
        .collect();
    for d in blob_dirs {
        for e in walk(&d) {
            files.push(e);
        }
    }
    assert!(files.len() > 9, "a blob was stored: {files:?}");
    for f in &files {
        let m = mode(f);
        let want = if f.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(m, want, "{} has mode {m:04o}", f.display());
    }
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if p.is_dir() {
        for e in std::fs::read_dir(p).expect("read_dir").flatten() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

#[test]
fn a_loose_data_directory_is_warned_about_at_start_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    token(&data);
    chmod(&data, 0o755);
    chmod(&data.join("simtrack.db"), 0o644);
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(common::bin())
        .args(["server", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("announcement");
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("listening"), "{line}");
    let err = std::fs::read_to_string(&log).expect("stderr");
    assert!(
        err.contains(&format!(
            "{} is accessible to other users (mode 0755)",
            data.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("simtrack.db is accessible to other users (mode 0644)"),
        "{err}"
    );
    assert!(
        err.contains(&format!("chmod -R go-rwx {}", data.display())),
        "{err}"
    );
}

#[test]
fn doctor_passes_a_healthy_data_directory_and_names_each_kind_of_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let tok = token(&data);
    let mut server = Server::start(&data, &[]);
    let api = Api::new(&server, &tok);
    let run = api.create_run(
        serde_json::json!({"name": "stuck", "folder": "/", "status": "running", "heartbeat_timeout": 60}),
    );
    let art = upload(&api, "input.nml", b"&params nx = 64 /\n");
    let d = data.to_str().expect("utf-8 path");

    let (ok, out) = doctor(&["--data", d]);
    assert!(ok, "healthy directory, server running:\n{out}");
    assert!(out.contains("a server is running"), "{out}");
    assert!(out.contains("integrity check passed"), "{out}");
    assert!(server.terminate(), "clean stop");
    let (ok, out) = doctor(&["--data", d]);
    assert!(ok, "healthy directory, server stopped:\n{out}");
    assert!(out.contains("no server is running"), "{out}");

    // A run silent for an hour, with no server to mark it lost: reported.
    {
        let c = rusqlite::Connection::open(data.join("simtrack.db")).expect("db");
        let hour_ago = simtrack_server::util::now_us() - 3_600_000_000;
        c.execute(
            "UPDATE runs SET last_seen = ?1 WHERE id = ?2",
            rusqlite::params![hour_ago, run],
        )
        .expect("update");
    }
    let (_, out) = doctor(&["--data", d]);
    assert!(out.contains("1 run(s) still 'running'"), "{out}");

    // Loose permissions: exit 1 and the chmod to run.
    chmod(&data.join("simtrack.db"), 0o644);
    let (ok, out) = doctor(&["--data", d]);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("fix: chmod -R go-rwx {d}")), "{out}");
    chmod(&data.join("simtrack.db"), 0o600);

    // A missing blob.
    let sum = simtrack_server::util::hex(&sha2::Sha256::digest(b"&params nx = 64 /\n"));
    std::fs::remove_file(
        data.join("blobs")
            .join(&sum[0..2])
            .join(&sum[2..4])
            .join(&sum),
    )
    .expect("remove blob");
    let (ok, out) = doctor(&["--data", d]);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("input.nml ({art})")), "{out}");

    // A damaged database file.
    let db = data.join("simtrack.db");
    let mut bytes = std::fs::read(&db).expect("db");
    assert!(bytes.len() > 8192, "database has several pages");
    for b in &mut bytes[4096..8192] {
        *b = 0xA5;
    }
    std::fs::write(&db, &bytes).expect("damage");
    let (ok, out) = doctor(&["--data", d]);
    assert!(!ok, "{out}");
    assert!(out.contains("PROBLEM  database"), "{out}");

    // Not a data directory at all.
    let (ok, out) = doctor(&["--data", dir.path().join("nope").to_str().expect("utf-8")]);
    assert!(!ok, "{out}");
}

// ---- the library spool -------------------------------------------------

/// Runs the probe (see `clib::probe`) and checks it succeeded.
fn probe(exe: &Path, spool: &Path, server: Option<(&str, &str)>, args: &[&str]) -> Output {
    let out = clib::probe(exe, spool, server, args)
        .output()
        .expect("run probe");
    assert!(
        out.status.success(),
        "probe {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn doctor_checks_a_library_spool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("probe");
    clib::compile_probe(&exe);
    let data = dir.path().join("data");
    let tok = token(&data);
    let server = Server::start(&data, &[]);
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).expect("spool");
    chmod(&spool, 0o700);
    let s = spool.to_str().expect("utf-8");

    // Delivered runs: healthy.
    probe(
        &exe,
        &spool,
        Some((&server.url, &tok)),
        &["points", "good-1", "5000", "0"],
    );
    probe(
        &exe,
        &spool,
        Some((&server.url, &tok)),
        &["points", "good-2", "5000", "0"],
    );
    let (ok, out) = doctor(&["--spool", s]);
    assert!(ok, "healthy spool:\n{out}");
    assert!(out.contains("2 delivered, 0 waiting"), "{out}");

    // An offline run: recorded, not delivered.
    probe(&exe, &spool, None, &["points", "offline", "3000", "0"]);
    let (ok, out) = doctor(&["--spool", s]);
    assert!(!ok, "{out}");
    assert!(out.contains("not delivered yet"), "{out}");
    assert!(out.contains("simtrack sync"), "{out}");

    // A corrupt frame in the middle of a delivered run's log.
    let runs: Vec<PathBuf> = std::fs::read_dir(spool.join("runs"))
        .expect("runs")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(runs.len(), 3, "{runs:?}");
    let victim = runs
        .iter()
        .find(|r| {
            let st: serde_json::Value =
                serde_json::from_slice(&std::fs::read(r.join("state.json")).unwrap_or_default())
                    .unwrap_or_default();
            st["acked"].as_u64().unwrap_or(0) > 0
        })
        .expect("a delivered run");
    let log = victim.join("records.log");
    let mut bytes = std::fs::read(&log).expect("log");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0xFF;
    }
    std::fs::write(&log, &bytes).expect("damage");
    // An empty run directory (an init that failed half-way).
    std::fs::create_dir(spool.join("runs/0123456789abcdef0123456789abcdef")).expect("mkdir");
    // And a spool other users can read.
    chmod(&spool, 0o755);

    let (ok, out) = doctor(&["--spool", s]);
    assert!(!ok, "{out}");
    assert!(out.contains("torn or corrupt frame at byte"), "{out}");
    assert!(out.contains("empty run directory"), "{out}");
    assert!(out.contains("rm -r"), "{out}");
    assert!(out.contains(&format!("fix: chmod -R go-rwx {s}")), "{out}");
    assert!(out.contains("problem(s) found"), "{out}");
    drop(server);
}

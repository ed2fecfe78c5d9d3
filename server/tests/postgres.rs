//! The PostgreSQL backend's own checks, beside the shared black-box
//! suites (which run against it through `SIMTRACK_TEST_BACKEND`):
//!
//! - a database that is down at start: a clear error naming the URL,
//!   never its password (runs everywhere: it needs no database);
//! - replicas starting together on an empty database apply each schema
//!   migration exactly once;
//! - tokens are stored only as hashes (the embedded suite's look into the
//!   database file, done here with `psql`);
//! - the database lost while a C solver reports: the server answers 5xx
//!   and stays up, and when the database returns every point the library
//!   was acknowledged or retried arrives exactly once.
//!
//! All but the first need `SIMTRACK_TEST_PG_URL` (a server URL without a
//! database name, as scripts/test.d/40-postgres.sh sets) and are skipped
//! with a message without it. The last starts a PostgreSQL cluster of its
//! own (scripts/lib/postgres.sh), so it can stop and restart it.

#[path = "common/clib.rs"]
mod clib;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Api, Server, bin, wait_for};

fn shared_pg() -> Option<String> {
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

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts")
}

/// A fresh, empty database on the shared server for scratch dir `dir`.
fn fresh_database(dir: &Path) -> String {
    let out = Command::new("sh")
        .arg(scripts().join("pg-backend.sh"))
        .arg(dir)
        .output()
        .expect("pg-backend.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args = String::from_utf8(out.stdout).expect("utf-8");
    args.split_whitespace()
        .skip_while(|a| *a != "--database")
        .nth(1)
        .expect("--database URL")
        .to_owned()
}

/// One value from `psql`.
fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-q", "-t", "-A", url, "-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

fn token_for(database: &str) -> String {
    let out = Command::new(bin())
        .args(["token", "create", "--name", "pg", "--database", database])
        .output()
        .expect("token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[test]
fn database_down_at_start_names_the_url_without_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Nothing listens on port 1.
    let url = "postgres://simtrack:hunter2-secret@127.0.0.1:1/simtrack";
    let t0 = Instant::now();
    let out = Command::new(bin())
        .args(["server", "--listen", "127.0.0.1:0", "--database", url])
        .arg("--blobs")
        .arg(dir.path().join("blobs"))
        .stdin(Stdio::null())
        .output()
        .expect("simtrack server");
    assert!(!out.status.success(), "started without its database");
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "took {:?}",
        t0.elapsed()
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("postgres://simtrack:***@127.0.0.1:1/simtrack"),
        "the error names the database: {all}"
    );
    assert!(!all.contains("hunter2"), "the password was printed: {all}");
    let out = Command::new(bin())
        .args(["token", "create", "--database", url])
        .output()
        .expect("token create");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("127.0.0.1:1") && !err.contains("hunter2"),
        "{err}"
    );
}

#[test]
fn replicas_starting_together_apply_each_migration_once() {
    let Some(_) = shared_pg() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let database = fresh_database(dir.path());
    let blobs = dir.path().join("blobs");
    let blobs = blobs.to_str().expect("utf-8 path");
    let args = ["--database", database.as_str(), "--blobs", blobs];
    // Four at once: each either applies the migrations or waits on the
    // lock and finds them applied; all must come up.
    let starters: Vec<_> = (0..4)
        .map(|_| {
            let data = dir.path().to_path_buf();
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            std::thread::spawn(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                Server::start_raw(&data, &args)
            })
        })
        .collect();
    let servers: Vec<Server> = starters
        .into_iter()
        .map(|t| t.join().expect("server start"))
        .collect();
    assert_eq!(
        psql(&database, "SELECT count(*) FROM schema_migrations"),
        psql(&database, "SELECT max(version) FROM schema_migrations"),
        "each migration recorded once"
    );
    let tok = token_for(&database);
    for s in &servers {
        assert_eq!(Api::new(s, &tok).get("/api/runs").status, 200);
    }
}

#[test]
fn tokens_are_stored_only_as_hashes() {
    let Some(_) = shared_pg() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let database = fresh_database(dir.path());
    let tok = token_for(&database);
    let hash = {
        use sha2::Digest;
        simtrack_server::util::hex(&sha2::Sha256::digest(tok.as_bytes()))
    };
    assert_eq!(psql(&database, "SELECT count(*) FROM tokens"), "1");
    let dump = psql(&database, "SELECT t::text FROM tokens t");
    assert!(!dump.contains(&tok), "the token itself is stored: {dump}");
    assert!(dump.contains(&hash), "its SHA-256 is not: {dump}");
}

/// A PostgreSQL cluster of the test's own (scripts/lib/postgres.sh).
struct OwnPg {
    dir: PathBuf,
    pid: Option<u32>,
    url: String,
}

impl OwnPg {
    /// Creates the cluster in `dir` (or restarts it there, same port).
    fn start(dir: &Path) -> OwnPg {
        std::fs::create_dir_all(dir).expect("cluster dir");
        // Files, not pipes: the postmaster outlives the shell.
        let out_path = dir.join("start.out");
        let err_path = dir.join("start.err");
        let status = Command::new("bash")
            .arg("-c")
            .arg(r#"source "$0/lib/postgres.sh" && start_postgres "$1" && echo "$pg_pid $pg_url""#)
            .arg(scripts())
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).expect("start.out"))
            .stderr(std::fs::File::create(&err_path).expect("start.err"))
            .status()
            .expect("start postgres");
        assert!(
            status.success(),
            "start_postgres: {}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        );
        let line = std::fs::read_to_string(&out_path).expect("start.out");
        let (pid, url) = line.trim().split_once(' ').expect("pid url");
        OwnPg {
            dir: dir.to_path_buf(),
            pid: Some(pid.parse().expect("pid")),
            url: url.to_owned(),
        }
    }

    /// Fast shutdown (SIGINT to the postmaster), waiting until it is gone.
    fn stop(&mut self) {
        let Some(pid) = self.pid.take() else { return };
        // SAFETY: kill(2) on the pid of the postmaster this test started.
        unsafe { libc::kill(pid as i32, libc::SIGINT) };
        let gone = wait_for(Duration::from_secs(30), || {
            // SAFETY: as above; signal 0 only checks that the pid exists.
            (unsafe { libc::kill(pid as i32, 0) } != 0).then_some(())
        });
        assert!(gone.is_some(), "PostgreSQL did not stop");
    }

    /// Starts the stopped cluster again, on the same port.
    fn restart(&mut self) {
        let again = OwnPg::start(&self.dir);
        self.pid = again.pid;
        self.url.clone_from(&again.url);
        std::mem::forget(again);
    }
}

impl Drop for OwnPg {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn database_lost_while_a_solver_reports_answers_5xx_then_delivers_everything_once() {
    let Some(_) = shared_pg() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pg = OwnPg::start(&dir.path().join("cluster"));
    let database = format!("{}/postgres", pg.url);
    let tok = token_for(&database);
    let blobs = dir.path().join("blobs");
    let mut server = Server::start_raw(
        dir.path(),
        &[
            "--database",
            &database,
            "--blobs",
            blobs.to_str().expect("utf-8"),
        ],
    );
    let api = Api::new(&server, &tok);
    let exe = dir.path().join("probe");
    clib::compile_probe(&exe);
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).expect("spool");
    let n: i64 = 300_000;
    let child = clib::probe(
        &exe,
        &spool,
        Some((&server.url, &tok)),
        // 10 ms every 1000 points: about 3 s of reporting.
        &["points", "db-lost", &n.to_string(), "10000"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("probe");
    std::thread::sleep(Duration::from_millis(800));
    pg.stop();
    // While it is gone: 5xx, and the server stays up.
    let password = pg
        .url
        .rsplit_once('@')
        .and_then(|(u, _)| u.rsplit_once(':'))
        .expect("password")
        .1
        .to_owned();
    let r = api.get("/api/runs");
    assert!(
        (500..600).contains(&r.status),
        "runs without a database: {}",
        r.status
    );
    assert!(
        !r.text.contains(&password),
        "the password was sent: {}",
        r.text
    );
    std::thread::sleep(Duration::from_secs(2));
    let r = api.get("/api/runs");
    assert!((500..600).contains(&r.status), "{}", r.status);
    assert!(server.alive(), "the server died without its database");
    // It returns, on the same port.
    pg.restart();
    let out = child.wait_with_output().expect("probe");
    assert!(
        out.status.success(),
        "the solver failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = api.run_by_name("db-lost");
    let id = run["id"].as_str().expect("id");
    assert_eq!(run["status"], "completed", "{run}");
    let pts = api.series(id, "x", "step", None);
    assert_eq!(pts.len() as i64, n, "every point exactly once");
    for (i, (s, v)) in pts.iter().enumerate() {
        assert_eq!(
            (s.as_i64(), *v),
            (Some(i as i64), Some(0.5 * i as f64)),
            "point {i}"
        );
    }
    drop(server);
    drop(pg);
}

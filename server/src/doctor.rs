//! `simtrack doctor`: checks a server data directory (`--data`) or a library
//! spool (`--spool`) and prints what it found and what to do. Exit code 0
//! when nothing needs doing, 1 otherwise. It only reads: nothing is changed.
//!
//! Data directory: permissions (nothing group/world-accessible), whether a
//! server holds `server.lock`, SQLite `integrity_check`, artifacts whose
//! bytes are missing or of the wrong size, runs still `running` long after
//! their last contact.
//!
//! Spool: permissions, and for every run directory under `runs/`: an empty
//! or unreadable directory, `records.log` read with the library's own
//! [`simtrack::spool::SpoolReader`] (torn or corrupt frames), `state.json`,
//! batches the server refused, and records not yet delivered.

use std::fs::File;
use std::path::Path;
use std::process::ExitCode;

use crate::private::{loose_permissions, shell_quote};
use crate::storage::files::stored_len;
use crate::storage::sqlite::inspect::Inspector;

/// What the checks found.
#[derive(Debug, Default)]
struct Report {
    problems: usize,
}

impl Report {
    fn ok(&mut self, msg: impl AsRef<str>) {
        println!("ok       {}", msg.as_ref());
    }
    fn note(&mut self, msg: impl AsRef<str>) {
        println!("note     {}", msg.as_ref());
    }
    fn problem(&mut self, msg: impl AsRef<str>, fix: impl AsRef<str>) {
        self.problems += 1;
        println!("PROBLEM  {}", msg.as_ref());
        println!("         fix: {}", fix.as_ref());
    }
    fn finish(self, what: &str) -> ExitCode {
        if self.problems == 0 {
            println!("{what}: healthy");
            ExitCode::SUCCESS
        } else {
            println!("{what}: {} problem(s) found", self.problems);
            ExitCode::FAILURE
        }
    }
}

fn check_permissions(r: &mut Report, dir: &Path, what: &str) {
    let (found, count) = loose_permissions(dir, 5, usize::MAX);
    if count == 0 {
        r.ok(format!("permissions: {what} is private to its owner"));
        return;
    }
    let list: Vec<String> = found
        .iter()
        .map(|(p, m)| format!("{} ({m:04o})", p.display()))
        .collect();
    r.problem(
        format!(
            "permissions: {count} file(s) or directories other users can access: {}{}",
            list.join(", "),
            if count > found.len() { ", ..." } else { "" }
        ),
        format!("chmod -R go-rwx {}", shell_quote(dir)),
    );
}

/// Whether another process holds an `flock` on `path` (`None`: no file).
fn lock_held(path: &Path) -> Option<bool> {
    let f = File::open(path).ok()?;
    match f.try_lock_shared() {
        Ok(()) => {
            let _ = f.unlock();
            Some(false)
        }
        Err(std::fs::TryLockError::WouldBlock) => Some(true),
        Err(std::fs::TryLockError::Error(_)) => Some(false),
    }
}

/// `simtrack doctor --data DIR`.
pub fn data(dir: &Path) -> ExitCode {
    // Opening a WAL database may create its -wal/-shm: keep them private.
    crate::private::restrict_umask();
    let mut r = Report::default();
    println!("checking server data directory {}", dir.display());
    let db_path = dir.join("simtrack.db");
    if !dir.is_dir() || !db_path.is_file() {
        r.problem(
            format!(
                "{} is not a simtrack data directory (no simtrack.db)",
                dir.display()
            ),
            "pass the directory given to `simtrack server --data`",
        );
        return r.finish("data directory");
    }
    check_permissions(&mut r, dir, "the data directory");
    let running = lock_held(&dir.join("server.lock")) == Some(true);
    if running {
        r.note("a server is running on this directory (server.lock is held)");
    } else {
        r.note("no server is running on this directory");
    }
    let db = match Inspector::open(&db_path) {
        Ok(c) => c,
        Err(e) => {
            r.problem(
                format!("database: cannot open {}: {e}", db_path.display()),
                "check the file's owner and mode; restore it from a backup if it is damaged",
            );
            return r.finish("data directory");
        }
    };
    match db.integrity() {
        Ok(lines) if lines == ["ok"] => r.ok("database: SQLite integrity check passed"),
        Ok(lines) => {
            r.problem(
                format!("database: SQLite integrity check failed: {}", lines.join("; ")),
                format!(
                    "stop the server, keep a copy, then rebuild: sqlite3 {db} \".recover\" | sqlite3 recovered.db (or restore a backup)",
                    db = shell_quote(&db_path)
                ),
            );
            return r.finish("data directory");
        }
        Err(e) => {
            r.problem(
                format!("database: {} cannot be read: {e}", db_path.display()),
                "stop the server and restore simtrack.db from a backup",
            );
            return r.finish("data directory");
        }
    }
    // The server counts silence from its start at the earliest; it creates
    // server.lock when it starts.
    let started_us = std::fs::metadata(dir.join("server.lock"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_micros() as i64)
        .filter(|_| running)
        .unwrap_or(0);
    check_runs(&mut r, &db, running, started_us);
    check_artifacts(&mut r, &db, dir);
    r.finish("data directory")
}

fn check_runs(r: &mut Report, db: &Inspector, running: bool, started_us: i64) {
    let now = crate::util::now_us();
    let stuck: Result<Vec<(String, String, f64)>, String> = db.running_runs().map(|runs| {
        runs.into_iter()
            .filter_map(|run| {
                let silent = (now - run.last_seen_us.max(started_us)) as f64 / 1e6;
                // "Long past": twice the timeout, and at least 5 minutes.
                (silent > (2.0 * run.heartbeat_timeout).max(300.0))
                    .then_some((run.id, run.name, silent))
            })
            .collect()
    });
    match stuck {
        Ok(v) if v.is_empty() => r.ok("runs: none stuck in 'running' past its heartbeat timeout"),
        Ok(v) => {
            let list: Vec<String> = v
                .iter()
                .take(5)
                .map(|(id, name, s)| format!("{name} ({id}, silent {:.0} min)", s / 60.0))
                .collect();
            let msg = format!(
                "runs: {} run(s) still 'running' long after their last heartbeat: {}{}",
                v.len(),
                list.join(", "),
                if v.len() > 5 { ", ..." } else { "" }
            );
            if running {
                r.problem(
                    msg,
                    "the running server should have marked them lost: check its log for errors and restart it",
                );
            } else {
                r.note(format!(
                    "{msg}; the server marks them lost one heartbeat timeout after it starts"
                ));
            }
        }
        Err(e) => r.problem(
            format!("runs: cannot be read: {e}"),
            "the database schema is damaged: restore simtrack.db from a backup",
        ),
    }
}

fn check_artifacts(r: &mut Report, db: &Inspector, dir: &Path) {
    let rows = match db.uploaded_artifacts() {
        Ok(v) => v,
        Err(e) => {
            r.problem(
                format!("artifacts: cannot be read: {e}"),
                "the database schema is damaged: restore simtrack.db from a backup",
            );
            return;
        }
    };
    let blobs = dir.join("blobs");
    let bad: Vec<String> = rows
        .iter()
        .filter(|a| stored_len(&blobs, &a.checksum) != Some(a.size))
        .map(|a| format!("{} ({})", a.name, a.id))
        .collect();
    if bad.is_empty() {
        r.ok(format!(
            "artifacts: the bytes of all {} uploaded artifact(s) are present",
            rows.len()
        ));
    } else {
        r.problem(
            format!(
                "artifacts: {} artifact(s) have missing or truncated bytes: {}",
                bad.len(),
                bad.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            ),
            "restore blobs/ from a backup, or upload those files again",
        );
    }
}

/// `simtrack doctor --database URL [--blobs s3://BUCKET[/PREFIX] | DIR]`:
/// the scale-out backend, read only (one plain connection, no migrations).
pub fn scale_out(database: &str, blobs: Option<&str>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("simtrack doctor: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(scale_out_checks(database, blobs))
}

async fn scale_out_checks(database: &str, blobs: Option<&str>) -> ExitCode {
    use crate::storage::postgres::inspect::Inspector;
    let mut r = Report::default();
    let shown = crate::storage::postgres::redact(database);
    println!("checking scale-out database {shown}");
    let db = match Inspector::open(database).await {
        Ok(db) => db,
        Err(e) => {
            r.problem(
                format!("database: {e}"),
                "check that PostgreSQL is running and reachable from here, and the URL's user, password and database name",
            );
            return r.finish("scale-out backend");
        }
    };
    r.ok("database: connected");
    match db.schema().await {
        Ok((None, _)) => {
            r.problem(
                "database: no simtrack schema (schema_migrations is missing)",
                "check the URL names the simtrack database; a first `simtrack server --database URL` creates the schema",
            );
            return r.finish("scale-out backend");
        }
        Ok((Some(v), known)) if v == known => r.ok(format!(
            "schema: at migration {v}, as this simtrack expects"
        )),
        Ok((Some(v), known)) if v < known => r.note(format!(
            "schema: at migration {v} of {known}; the next server start applies the rest"
        )),
        Ok((Some(v), known)) => r.problem(
            format!("schema: at migration {v}, newer than this simtrack ({known})"),
            "run the simtrack version the replicas run (or upgrade this one)",
        ),
        Err(e) => {
            r.problem(
                format!("schema: cannot be read: {e}"),
                "check that the URL's user may read the simtrack tables",
            );
            return r.finish("scale-out backend");
        }
    }
    let leader = db.leader().await.ok().flatten();
    let connections = db.server_connections().await.unwrap_or(0);
    match &leader {
        Some(l) => r.note(format!(
            "replicas: {connections} server connection(s); the leader (lost-run sweeper) is backend pid {} from {}",
            l.pid, l.client
        )),
        None => r.note(format!(
            "replicas: {connections} server connection(s), none holds the leader lock (no server running?)"
        )),
    }
    match db.running_runs().await {
        Ok(runs) => {
            let now = crate::util::now_us();
            let stuck: Vec<String> = runs
                .iter()
                .filter(|run| {
                    let silent = (now - run.last_seen_us) as f64 / 1e6;
                    silent > (2.0 * run.heartbeat_timeout).max(300.0)
                })
                .map(|run| format!("{} ({})", run.name, run.id))
                .collect();
            if stuck.is_empty() {
                r.ok("runs: none stuck in 'running' past its heartbeat timeout");
            } else {
                let msg = format!(
                    "runs: {} run(s) still 'running' long after their last heartbeat: {}{}",
                    stuck.len(),
                    stuck.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                    if stuck.len() > 5 { ", ..." } else { "" }
                );
                if leader.is_some() {
                    r.problem(
                        msg,
                        "the leader replica should have marked them lost: check the replicas' logs",
                    );
                } else {
                    r.note(format!(
                        "{msg}; a replica marks them lost one heartbeat timeout after it starts"
                    ));
                }
            }
        }
        Err(e) => r.problem(
            format!("runs: cannot be read: {e}"),
            "check the database (restore from a backup if tables are damaged)",
        ),
    }
    let artifacts = match db.uploaded_artifacts().await {
        Ok(a) => a,
        Err(e) => {
            r.problem(
                format!("artifacts: cannot be read: {e}"),
                "check the database (restore from a backup if tables are damaged)",
            );
            return r.finish("scale-out backend");
        }
    };
    match blobs {
        None => r.note(format!(
            "artifacts: {} uploaded; their bytes are not checked without --blobs",
            artifacts.len()
        )),
        Some(url) if url.starts_with("s3://") => {
            use crate::storage::BlobStore;
            match crate::storage::s3::S3Blobs::open(url).await {
                Err(e) => r.problem(
                    format!("object store: {e}"),
                    "check AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and that the bucket exists",
                ),
                Ok(store) => {
                    r.ok(format!("object store: {url} answers"));
                    let mut missing = Vec::new();
                    for a in &artifacts {
                        match store.has(&a.checksum).await {
                            Ok(true) => {}
                            Ok(false) => missing.push(format!("{} ({})", a.name, a.id)),
                            Err(e) => {
                                r.problem(
                                    format!("object store: {e}"),
                                    "check the store's health and the key's permissions",
                                );
                                return r.finish("scale-out backend");
                            }
                        }
                    }
                    artifact_verdict(&mut r, artifacts.len(), &missing, url);
                }
            }
        }
        Some(dir) => {
            let missing: Vec<String> = artifacts
                .iter()
                .filter(|a| stored_len(Path::new(dir), &a.checksum) != Some(a.size))
                .map(|a| format!("{} ({})", a.name, a.id))
                .collect();
            artifact_verdict(&mut r, artifacts.len(), &missing, dir);
        }
    }
    r.finish("scale-out backend")
}

fn artifact_verdict(r: &mut Report, total: usize, missing: &[String], store: &str) {
    if missing.is_empty() {
        r.ok(format!(
            "artifacts: the bytes of all {total} uploaded artifact(s) are in {store}"
        ));
    } else {
        r.problem(
            format!(
                "artifacts: {} artifact(s) have missing or truncated bytes in {store}: {}{}",
                missing.len(),
                missing.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                if missing.len() > 5 { ", ..." } else { "" }
            ),
            "restore the objects from a backup or replica of the store, or upload those files again",
        );
    }
}

/// `simtrack doctor --spool DIR`.
pub fn spool(dir: &Path) -> ExitCode {
    use simtrack::spool::{RunDir, SpoolReader, runs_dir};
    let mut r = Report::default();
    println!("checking library spool {}", dir.display());
    if !dir.is_dir() {
        r.problem(
            format!("{} does not exist or is not a directory", dir.display()),
            "pass the library's offline directory (SIMTRACK_OFFLINE_DIR)",
        );
        return r.finish("spool");
    }
    check_permissions(&mut r, dir, "the spool");
    let runs = runs_dir(dir);
    let entries = match std::fs::read_dir(&runs) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            r.ok("no runs spooled");
            return r.finish("spool");
        }
        Err(e) => {
            r.problem(
                format!("cannot list {}: {e}", runs.display()),
                format!("check the owner and mode of {}", shell_quote(&runs)),
            );
            return r.finish("spool");
        }
    };
    let mut dirs: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    let (mut delivered, mut pending) = (0usize, 0usize);
    for path in dirs {
        if !path.is_dir() {
            continue;
        }
        let id = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let run = RunDir::new(&path);
        let in_use = lock_held(&run.lock_path()) == Some(true);
        let log_len = std::fs::metadata(run.log()).map(|m| m.len());
        match log_len {
            Err(_) | Ok(0) if in_use => {
                r.note(format!("run {id}: being created by a running process"));
                continue;
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                r.problem(
                    format!("run {id}: records.log cannot be read: {e}"),
                    format!("check the owner and mode of {}", shell_quote(&run.log())),
                );
                continue;
            }
            Err(_) | Ok(0) => {
                r.problem(
                    format!("run {id}: empty run directory (no records: its init failed or was interrupted)"),
                    format!("nothing in it can be delivered; remove it: rm -r {}", shell_quote(&path)),
                );
                continue;
            }
            Ok(_) => {}
        }
        let mut reader = match SpoolReader::open(&run, 0, 0) {
            Ok(rd) => rd,
            Err(e) => {
                r.problem(
                    format!("run {id}: records.log cannot be opened: {e}"),
                    format!("check the owner and mode of {}", shell_quote(&run.log())),
                );
                continue;
            }
        };
        let mut records = 0u64;
        let mut finished = false;
        loop {
            match reader.next_entry() {
                Ok(Some(e)) => {
                    records += 1;
                    finished |= matches!(e.record, simtrack::record::Record::Finish(_));
                }
                Ok(None) => break,
                Err(e) => {
                    r.problem(
                        format!(
                            "run {id}: reading records.log failed after {records} record(s): {e}"
                        ),
                        format!("check the disk and the mode of {}", shell_quote(&run.log())),
                    );
                    break;
                }
            }
        }
        for t in reader.skipped() {
            r.problem(
                format!(
                    "run {id}: torn or corrupt frame at byte {} ({}; {} byte(s) skipped); the {records} intact record(s) around it were read",
                    t.offset, t.reason, t.bytes
                ),
                format!(
                    "`simtrack sync` delivers the intact records; keep a copy of {} if the skipped bytes matter",
                    shell_quote(&run.log())
                ),
            );
        }
        if let Some(t) = reader.torn_tail() {
            if in_use {
                r.note(format!(
                    "run {id}: a frame at byte {} is incomplete, probably being written (the run is in use)",
                    t.offset
                ));
            } else {
                r.problem(
                    format!(
                        "run {id}: torn or corrupt frame at byte {} ({}; {} byte(s) from there unreadable); the {records} record(s) before it are intact",
                        t.offset, t.reason, t.bytes
                    ),
                    format!(
                        "`simtrack sync` delivers the intact records; keep a copy of {} if the rest matters",
                        shell_quote(&run.log())
                    ),
                );
            }
        }
        let state_ok = match std::fs::read(run.state()) {
            Ok(b) => serde_json::from_slice::<simtrack::spool::DeliveryState>(&b).is_ok(),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        if !state_ok {
            r.problem(
                format!("run {id}: state.json is unreadable"),
                "`simtrack sync` starts this run's delivery over (the server discards what it already has)",
            );
            continue;
        }
        let state = run.read_state();
        if !state.rejected.is_empty() {
            r.problem(
                format!(
                    "run {id}: the server refused {} batch(es): {}",
                    state.rejected.len(),
                    state
                        .rejected
                        .iter()
                        .take(3)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                "fix the cause the server gave; the refused records stay in the spool",
            );
        }
        if state.acked >= records && records > 0 {
            delivered += 1;
        } else if in_use {
            r.note(format!(
                "run {id}: {} of {records} record(s) delivered, run in progress",
                state.acked.min(records)
            ));
        } else {
            pending += 1;
            r.problem(
                format!(
                    "run {id}: {} of {records} record(s) not delivered yet{}",
                    records - state.acked.min(records),
                    if finished {
                        ""
                    } else {
                        " (no finish record: the solver died or is offline)"
                    }
                ),
                "run `simtrack sync` (with SIMTRACK_URL and SIMTRACK_TOKEN set)",
            );
        }
    }
    r.ok(format!(
        "runs: {delivered} delivered, {pending} waiting for sync"
    ));
    r.finish("spool")
}

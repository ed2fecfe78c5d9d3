//! Uploading spooled runs later: the library side of `simtrack sync`.
//!
//! [`sync`] walks the offline directory and delivers each run's records from
//! its acknowledged position with the same [`Courier`] a live run uses, so it
//! is resumable (progress is saved as it goes) and idempotent (a run already
//! delivered sends nothing; a resent record carries the same idempotency
//! key). It is safe under cron: a lock file makes a second concurrent sync
//! stop at once, and the kernel drops the lock of a sync that died, so a
//! stale lock cannot block the next one. Runs still being written by a live
//! process are skipped; their own sender delivers them.

use std::fmt;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::delivery::{Courier, Pumped};
use crate::error::{Error, Status};
use crate::spool::{TornTail, list_runs};
use crate::transport::Transport;
use crate::transport::http::HttpTransport;

/// What happened to one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything is on the server now.
    Uploaded,
    /// Nothing to do: delivered by an earlier sync or by the run itself.
    UpToDate,
    /// A live process holds the run; it delivers its own data.
    InUse,
    /// Part was sent; the rest is retried on the next sync.
    Incomplete(String),
    /// The directory held no run (an init that failed on a full disk left
    /// it empty) and was removed.
    Discarded(String),
}

/// The report for one run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub id: String,
    pub name: String,
    pub outcome: Outcome,
    /// Records delivered by this sync.
    pub sent: u64,
    /// Records the server refuses for good: tried again by this sync and
    /// still refused. They stay in the spool; the next sync tries again.
    pub rejected: Vec<String>,
    /// A damaged end of the spool that was skipped.
    pub torn_tail: Option<TornTail>,
    /// Damaged stretches inside the spool that were skipped (the records
    /// after each were recovered).
    pub skipped: Vec<TornTail>,
    /// Points a process that died left in its logging buffers, moved into
    /// the spool by this sync (see `lanes`).
    pub recovered: u64,
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.outcome {
            Outcome::Uploaded => format!("uploaded ({} records)", self.sent),
            Outcome::UpToDate => "up to date".to_owned(),
            Outcome::InUse => "in use by a running process, skipped".to_owned(),
            Outcome::Incomplete(why) => {
                format!("incomplete after {} records, will retry: {why}", self.sent)
            }
            Outcome::Discarded(why) => format!("removed: {why}"),
        };
        write!(f, "{} {:<32} {what}", self.id, self.name)?;
        if self.recovered > 0 {
            write!(
                f,
                "; {} point(s) recovered from the buffers of its dead process",
                self.recovered
            )?;
        }
        if !self.rejected.is_empty() {
            write!(
                f,
                "; {} record(s) refused by the server, kept in the spool and retried by the next sync",
                self.rejected.len()
            )?;
        }
        for r in &self.rejected {
            write!(f, "\n    refused by the server: {r}")?;
        }
        for t in &self.skipped {
            write!(
                f,
                "\n    damaged spool stretch skipped: {} bytes at offset {} ({}); the records after it were recovered",
                t.bytes, t.offset, t.reason
            )?;
        }
        if let Some(t) = &self.torn_tail {
            write!(
                f,
                "\n    damaged spool tail skipped: {} bytes at offset {} ({})",
                t.bytes, t.offset, t.reason
            )?;
        }
        Ok(())
    }
}

/// How a sync behaves.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// How long one run may keep failing transiently before it, and every
    /// run after it, is left for the next sync.
    pub run_patience: Duration,
    /// Only this run (its id), waiting for a process that still holds it
    /// to let go, without the lock that keeps two full syncs apart: what
    /// `simtrack run` starts in the background to finish its delivery.
    pub only: Option<String>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            run_patience: Duration::from_secs(30),
            only: None,
        }
    }
}

/// Uploads every spooled run under `config.offline_dir` to `config`'s server.
///
/// Returns an error (and uploads nothing) if no server is configured or
/// another sync holds the lock. Per-run failures are in the report, not an
/// error: the caller decides the exit status ([`all_delivered`]).
pub fn sync(config: &Config, options: &SyncOptions) -> Result<Vec<RunReport>, Error> {
    let url = config.url.clone().ok_or_else(|| {
        Error::new(Status::Config, "no server configured: set SIMTRACK_URL and SIMTRACK_TOKEN, or [server] url and token in simtrack.ini")
    })?;
    if config.token.is_none() {
        return Err(Error::new(
            Status::Config,
            "no token configured: set SIMTRACK_TOKEN or [server] token",
        ));
    }
    let transport = HttpTransport::new(config)?;
    sync_with(config, &url, transport, options)
}

/// [`sync`] through a given transport (tests use the in-memory one).
pub fn sync_with<T: Transport + Clone>(
    config: &Config,
    url: &str,
    transport: T,
    options: &SyncOptions,
) -> Result<Vec<RunReport>, Error> {
    let dir = &config.offline_dir;
    match std::fs::metadata(dir) {
        // Nothing was ever spooled there (a mistyped directory, a machine
        // that never ran offline): nothing to send, and nothing is created.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && options.only.is_none() => {
            return Ok(Vec::new());
        }
        Ok(m) if !m.is_dir() => {
            return Err(Error::new(
                Status::InvalidArgument,
                format!(
                    "{} is not a directory: the offline directory is the one holding runs/",
                    dir.display()
                ),
            ));
        }
        _ => {}
    }
    if let Some(id) = &options.only {
        return sync_one(config, url, transport, options, id);
    }
    let Some(_lock) = lock_spool(&config.offline_dir)? else {
        return Err(Error::new(
            Status::Io,
            format!(
                "another simtrack sync is running (lock {})",
                config.offline_dir.join("sync.lock").display()
            ),
        ));
    };
    sync_runs(list_runs(&config.offline_dir)?, url, transport, options)
}

/// Takes the spool's `sync.lock` (None: another sync holds it).
fn lock_spool(offline_dir: &std::path::Path) -> Result<Option<std::fs::File>, Error> {
    let lock_path = offline_dir.join("sync.lock");
    let lock = crate::spool::private_file()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io(format!("cannot open {}", lock_path.display()), e))?;
    match lock.try_lock() {
        Ok(()) => Ok(Some(lock)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Error::io(format!("cannot lock {}", lock_path.display()), e))
        }
    }
}

/// Delivers the runs of `offline_dir` that were being sent to the server at
/// `url` and whose process is gone with something undelivered: points left
/// in its `lanes/` by a process that died, or records not acknowledged yet.
/// What an online run of the library started on the same spool does in the
/// background, so the last points of a solver killed by SIGKILL, the OOM
/// killer or a segfault reach the server without a `simtrack sync`.
/// `except` is the caller's own run; runs a live process holds are skipped.
/// Does nothing while a `simtrack sync` holds the spool (it delivers them
/// itself); runs of offline mode or for another server are left to
/// `simtrack sync`.
pub fn deliver_dead_runs<T: Transport + Clone>(
    offline_dir: &std::path::Path,
    url: &str,
    transport: T,
    except: &str,
) -> Result<Vec<RunReport>, Error> {
    let dead: Vec<_> = list_runs(offline_dir)?
        .into_iter()
        .filter(|r| {
            if r.id == except {
                return false;
            }
            let state = r.dir.read_state();
            let log_len = std::fs::metadata(r.dir.log()).map_or(0, |m| m.len());
            state.server_url.as_deref() == Some(url)
                && !state.finished
                && (r.dir.root.join("lanes").is_dir() || state.acked_offset < log_len)
        })
        .collect();
    if dead.is_empty() {
        return Ok(Vec::new());
    }
    let Some(_lock) = lock_spool(offline_dir)? else {
        return Ok(Vec::new());
    };
    sync_runs(dead, url, transport, &SyncOptions::default())
}

/// [`sync_with`] for the one run `id`: waits up to 10 s for a process
/// still holding it (the `simtrack run` that started this) to let go.
fn sync_one<T: Transport + Clone>(
    config: &Config,
    url: &str,
    transport: T,
    options: &SyncOptions,
    id: &str,
) -> Result<Vec<RunReport>, Error> {
    let runs: Vec<_> = list_runs(&config.offline_dir)?
        .into_iter()
        .filter(|r| r.id == id)
        .collect();
    let Some(run) = runs.first() else {
        return Err(Error::new(
            Status::FileNotFound,
            format!("no run {id} in {}", config.offline_dir.display()),
        ));
    };
    let give_up = Instant::now() + Duration::from_secs(10);
    while run.dir.try_lock()?.is_none() && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(50));
    }
    sync_runs(runs, url, transport, options)
}

fn sync_runs<T: Transport + Clone>(
    runs: Vec<crate::spool::SpooledRun>,
    url: &str,
    transport: T,
    options: &SyncOptions,
) -> Result<Vec<RunReport>, Error> {
    let mut reports = Vec::new();
    // Why the server cannot take anything more in this sync, once known.
    let mut refused: Option<String> = None;
    for run in runs {
        let mut report = RunReport {
            id: run.id.clone(),
            name: String::new(),
            outcome: Outcome::UpToDate,
            sent: 0,
            rejected: Vec::new(),
            torn_tail: None,
            skipped: Vec::new(),
            recovered: 0,
        };
        let Some(_run_lock) = run.dir.try_lock()? else {
            report.outcome = Outcome::InUse;
            reports.push(report);
            continue;
        };
        if let Some(why) = &refused {
            report.outcome = Outcome::Incomplete(why.clone());
            reports.push(report);
            continue;
        }
        if let Some(why) = abandoned_init(&run.dir) {
            report.outcome = match std::fs::remove_dir_all(&run.dir.root) {
                Ok(()) => Outcome::Discarded(why),
                Err(e) => Outcome::Incomplete(format!("{why}, and it cannot be removed: {e}")),
            };
            reports.push(report);
            continue;
        }
        // A process that died left points in its buffers: into the spool
        // with them first (exactly once; nothing half written).
        match crate::lanes::recover(&run.dir) {
            Ok(r) => report.recovered = r.points,
            Err(e) => {
                report.outcome = Outcome::Incomplete(format!(
                    "cannot recover the points its process left in {}: {}",
                    run.dir.root.join("lanes").display(),
                    e.message
                ));
                reports.push(report);
                continue;
            }
        }
        // And arrays whose files were written but whose records were not.
        if let Err(e) = crate::grid::recover(&run.dir) {
            report.outcome = Outcome::Incomplete(format!(
                "cannot recover the arrays its process left in {}: {}",
                run.dir.files().display(),
                e.message
            ));
            reports.push(report);
            continue;
        }
        let mut courier = match Courier::open(run.dir.clone(), transport.clone(), url) {
            Ok(c) => c,
            Err(e) => {
                report.outcome = Outcome::Incomplete(e.message);
                reports.push(report);
                continue;
            }
        };
        report.name = courier.spec().name.clone();
        let before = courier.state().acked;
        if !courier.state().refused.is_empty() {
            courier.retry_refused()?;
        }
        let give_up = Instant::now() + options.run_patience;
        report.outcome = loop {
            match courier.pump(None, &|| false)? {
                Pumped::CaughtUp => {
                    break if courier.state().acked > before {
                        Outcome::Uploaded
                    } else {
                        Outcome::UpToDate
                    };
                }
                Pumped::Backoff { retry_in, message } => {
                    if Instant::now() + retry_in > give_up {
                        // The server stayed away for a whole run's patience:
                        // the other runs are left for the next sync too.
                        refused = Some(message.clone());
                        break Outcome::Incomplete(message);
                    }
                    std::thread::sleep(retry_in);
                }
                Pumped::Unauthorized { message } => {
                    refused = Some(message.clone());
                    break Outcome::Incomplete(message);
                }
                Pumped::Interrupted => break Outcome::Incomplete("interrupted".to_owned()),
            }
        };
        report.sent = courier.state().acked - before;
        report.rejected = courier
            .state()
            .refused
            .iter()
            .map(|r| format!("record {} ({}): {}", r.seq, r.what, r.reason))
            .collect();
        report.torn_tail = courier.torn_tail().cloned();
        report.skipped = courier.skipped().to_vec();
        reports.push(report);
    }
    Ok(reports)
}

/// True when no run was left incomplete and the server refused nothing.
pub fn all_delivered(reports: &[RunReport]) -> bool {
    reports
        .iter()
        .all(|r| !matches!(r.outcome, Outcome::Incomplete(_)) && r.rejected.is_empty())
}

/// A run directory whose log holds no record and has not been touched for a
/// minute: what an `init` that failed on a full disk left before it could
/// clean up (it removes the directory itself now). Unlocked (checked by the
/// caller) and old, so no live process is still creating it.
fn abandoned_init(dir: &crate::spool::RunDir) -> Option<String> {
    let meta = std::fs::metadata(dir.log()).ok()?;
    let age = meta.modified().ok()?.elapsed().unwrap_or_default();
    (meta.len() == 0 && age >= Duration::from_secs(60))
        .then(|| "empty run directory (its init failed, e.g. on a full disk)".to_owned())
}

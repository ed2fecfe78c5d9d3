//! Read-only inspection of an embedded data directory, for `simtrack
//! doctor`: opens `simtrack.db` without writing to it (no schema, no
//! migration), so it is safe while a server runs.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// A run the database still calls `running`, with its heartbeat facts.
#[derive(Debug, Clone)]
pub struct RunningRun {
    pub id: String,
    pub name: String,
    /// Seconds of silence after which the server marks it lost.
    pub heartbeat_timeout: f64,
    /// When the server last heard from it (µs since the epoch).
    pub last_seen_us: i64,
}

/// An artifact whose bytes the database says were uploaded.
#[derive(Debug, Clone)]
pub struct UploadedArtifact {
    pub id: String,
    pub name: String,
    pub size: u64,
    pub checksum: String,
}

/// A read-only view of `simtrack.db`.
#[derive(Debug)]
pub struct Inspector {
    conn: Connection,
}

fn text(e: rusqlite::Error) -> String {
    e.to_string()
}

impl Inspector {
    /// Opens `db_path` read-only.
    pub fn open(db_path: &Path) -> Result<Inspector, String> {
        let conn = Connection::open_with_flags(
            db_path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(text)?;
        let _ = conn.busy_timeout(Duration::from_secs(10));
        Ok(Inspector { conn })
    }

    /// SQLite's own integrity check: `["ok"]` when healthy, else at most 20
    /// lines saying what is damaged.
    pub fn integrity(&self) -> Result<Vec<String>, String> {
        let mut s = self
            .conn
            .prepare("PRAGMA integrity_check(20)")
            .map_err(text)?;
        s.query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(text)
    }

    /// Runs in `running` that have a heartbeat timeout.
    pub fn running_runs(&self) -> Result<Vec<RunningRun>, String> {
        let mut s = self
            .conn
            .prepare(
                "SELECT id, name, heartbeat_timeout, last_seen FROM runs
                 WHERE status = 'running' AND heartbeat_timeout IS NOT NULL",
            )
            .map_err(text)?;
        s.query_map([], |row| {
            Ok(RunningRun {
                id: row.get(0)?,
                name: row.get(1)?,
                heartbeat_timeout: row.get(2)?,
                last_seen_us: row.get(3)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(text)
    }

    /// Artifacts marked uploaded.
    pub fn uploaded_artifacts(&self) -> Result<Vec<UploadedArtifact>, String> {
        let mut s = self
            .conn
            .prepare("SELECT id, name, size, checksum FROM artifacts WHERE uploaded = 1")
            .map_err(text)?;
        s.query_map([], |row| {
            Ok(UploadedArtifact {
                id: row.get(0)?,
                name: row.get(1)?,
                size: row.get::<_, i64>(2)?.max(0) as u64,
                checksum: row.get(3)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(text)
    }
}

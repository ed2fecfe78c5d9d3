//! Durable state: one SQLite database in WAL mode (runs, folders, alerts,
//! events, metric chunks, tokens, idempotency keys) and a content-addressed
//! blob directory for artifact bytes.
//!
//! One writer connection behind a mutex serialises every mutation, so a
//! mutation, its side effects (alert evaluation, events) and its idempotency
//! record commit in one transaction: a request acknowledged once is applied
//! exactly once, even across `kill -9`. Readers use their own connections
//! and never wait for the writer.

pub mod metrics;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::http::ApiError;

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
    exp INTEGER NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS folders (
    id TEXT PRIMARY KEY, path TEXT NOT NULL UNIQUE, description TEXT,
    tags TEXT NOT NULL DEFAULT '[]', metadata TEXT NOT NULL DEFAULT '{}',
    created INTEGER NOT NULL, modified INTEGER NOT NULL, starred INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, folder TEXT NOT NULL, status TEXT NOT NULL,
    description TEXT, tags TEXT NOT NULL DEFAULT '[]', metadata TEXT NOT NULL DEFAULT '{}',
    system TEXT NOT NULL DEFAULT '{}', created INTEGER NOT NULL, started INTEGER,
    endtime INTEGER, modified INTEGER NOT NULL, ttl INTEGER, heartbeat_timeout REAL,
    notifications TEXT NOT NULL DEFAULT '{"state":"none"}',
    visibility TEXT NOT NULL DEFAULT '{"tenant":false,"public":false,"users":[]}',
    user TEXT NOT NULL DEFAULT '', last_seen INTEGER NOT NULL,
    abort_requested INTEGER NOT NULL DEFAULT 0, abort_reason TEXT,
    starred INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
CREATE INDEX IF NOT EXISTS runs_folder ON runs(folder);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, source TEXT NOT NULL, description TEXT,
    notification TEXT NOT NULL DEFAULT 'none', enabled INTEGER NOT NULL DEFAULT 1,
    abort INTEGER NOT NULL DEFAULT 0, alert TEXT, created INTEGER NOT NULL, user TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS alerts_name ON alerts(name);
CREATE TABLE IF NOT EXISTS run_alerts (
    run_id TEXT NOT NULL, alert_id TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'ok',
    changed INTEGER, PRIMARY KEY (run_id, alert_id));
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, ts INTEGER NOT NULL,
    log_level TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_run ON events(run_id, ts);
CREATE TABLE IF NOT EXISTS metric_series (
    id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, name TEXT NOT NULL,
    count INTEGER NOT NULL DEFAULT 0, vmin REAL, vmax REAL, last REAL, last_step INTEGER,
    UNIQUE (run_id, name));
CREATE TABLE IF NOT EXISTS metric_chunks (
    id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL, count INTEGER NOT NULL,
    step_min INTEGER NOT NULL, step_max INTEGER NOT NULL, time_min REAL NOT NULL,
    time_max REAL NOT NULL, ts_min INTEGER NOT NULL, ts_max INTEGER NOT NULL,
    vmin REAL, vmax REAL, vsum REAL, blocks BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS metric_chunks_series ON metric_chunks(series_id, ts_max);
CREATE TABLE IF NOT EXISTS metric_points (chunk_id INTEGER PRIMARY KEY, points BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, original_path TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL, mime_type TEXT NOT NULL, checksum TEXT NOT NULL,
    metadata TEXT, created INTEGER NOT NULL, uploaded INTEGER NOT NULL DEFAULT 0,
    user TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS run_artifacts (
    run_id TEXT NOT NULL, artifact_id TEXT NOT NULL, category TEXT NOT NULL,
    PRIMARY KEY (run_id, artifact_id));
CREATE INDEX IF NOT EXISTS run_artifacts_artifact ON run_artifacts(artifact_id);
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL, key TEXT NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL,
    created INTEGER NOT NULL, PRIMARY KEY (scope, key));
CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency(created);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value BLOB NOT NULL);
"#;

/// A stored response: what a mutation answered, replayed for a repeated
/// `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// JSON body.
    pub body: String,
}

impl Reply {
    /// `200` with a JSON body.
    pub fn ok(v: serde_json::Value) -> Self {
        Reply {
            status: 200,
            body: v.to_string(),
        }
    }

    /// `200` with one page of a list: `{"data": all[start..start+count],
    /// "count": all.len()}`, the shape every list endpoint answers with.
    pub fn page(all: Vec<serde_json::Value>, start: usize, count: usize) -> Self {
        let total = all.len();
        let data: Vec<serde_json::Value> = all.into_iter().skip(start).take(count).collect();
        Reply::ok(serde_json::json!({ "data": data, "count": total }))
    }
}

/// The idempotency scope and key of one mutating request, if it carried one.
#[derive(Debug, Clone)]
pub struct Idem {
    /// Who sent it (the token id): keys are scoped per token.
    pub scope: String,
    /// The `Idempotency-Key` header, if any.
    pub key: Option<String>,
}

/// The database and blob store of one data directory.
#[derive(Debug)]
pub struct Store {
    db_path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Artifact bytes by SHA-256.
    pub blobs: crate::storage::files::BlobStore,
}

fn open_conn(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open(path)?;
    c.busy_timeout(std::time::Duration::from_secs(30))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.pragma_update(None, "foreign_keys", "OFF")?;
    c.pragma_update(None, "cache_size", -65_536)?;
    Ok(c)
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let db_path = dir.join("simtrack.db");
        let writer =
            open_conn(&db_path).map_err(|e| format!("cannot open {}: {e}", db_path.display()))?;
        writer
            .execute_batch(SCHEMA)
            .map_err(|e| format!("cannot initialise {}: {e}", db_path.display()))?;
        let blobs = crate::storage::files::BlobStore::open(&dir.join("blobs"))?;
        Ok(Store {
            db_path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            blobs,
        })
    }

    /// Runs `f` in a write transaction. With an idempotency key, a key seen
    /// before returns its stored reply without running `f`; otherwise the
    /// reply of a successful `f` is stored in the same transaction.
    pub fn write(
        &self,
        idem: &Idem,
        f: impl FnOnce(&Transaction) -> Result<Reply, ApiError>,
    ) -> Result<Reply, ApiError> {
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction().map_err(ApiError::db)?;
        if let Some(key) = &idem.key {
            let hit = tx
                .query_row(
                    "SELECT status, body FROM idempotency WHERE scope = ?1 AND key = ?2",
                    params![idem.scope, key],
                    |r| {
                        Ok(Reply {
                            status: r.get::<_, i64>(0)? as u16,
                            body: r.get(1)?,
                        })
                    },
                )
                .optional()
                .map_err(ApiError::db)?;
            if let Some(reply) = hit {
                return Ok(reply);
            }
        }
        let reply = f(&tx)?;
        if let Some(key) = &idem.key
            && (200..300).contains(&reply.status)
        {
            tx.execute(
                "INSERT INTO idempotency (scope, key, status, body, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![idem.scope, key, reply.status, reply.body, crate::util::now_us()],
            )
            .map_err(ApiError::db)?;
        }
        tx.commit().map_err(ApiError::db)?;
        Ok(reply)
    }

    /// Runs `f` in a write transaction without idempotency bookkeeping
    /// (background tasks).
    pub fn write_plain<T>(
        &self,
        f: impl FnOnce(&Transaction) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction().map_err(ApiError::db)?;
        let out = f(&tx)?;
        tx.commit().map_err(ApiError::db)?;
        Ok(out)
    }

    /// Runs `f` on a read connection (a consistent snapshot).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => open_conn(&self.db_path).map_err(ApiError::db)?,
        };
        let out = {
            let tx = conn.transaction().map_err(ApiError::db)?;
            let out = f(&tx);
            drop(tx);
            out
        };
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 8 {
            pool.push(conn);
        }
        out
    }

    /// Checkpoints the WAL into the main database file (clean shutdown).
    pub fn checkpoint(&self) {
        let conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }

    /// A persistent server secret (signing key), created on first use.
    pub fn secret(&self) -> Result<Vec<u8>, ApiError> {
        self.write_plain(|tx| {
            let existing: Option<Vec<u8>> = tx
                .query_row("SELECT value FROM settings WHERE key = 'secret'", [], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(ApiError::db)?;
            if let Some(s) = existing {
                return Ok(s);
            }
            let mut s = vec![0u8; 32];
            crate::util::fill_random(&mut s);
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('secret', ?1)",
                params![s],
            )
            .map_err(ApiError::db)?;
            Ok(s)
        })
    }
}

//! The embedded state store: one SQLite database in WAL mode.
//!
//! One writer connection behind a mutex serialises every write
//! transaction, so a mutation, its side effects (alert evaluation, events)
//! and its idempotency record commit together: a request acknowledged once
//! is applied exactly once, even across `kill -9`. Readers use their own
//! pooled connections and never wait for the writer.

pub mod export;
mod grids;
pub mod inspect;
mod tx;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;

use super::{Outcome, ReadTx, Result, StateStore, StorageError, WriteTx};

const SCHEMA: &str = r#"
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
CREATE TABLE IF NOT EXISTS alert_windows (
    run_id TEXT NOT NULL, alert_id TEXT NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (run_id, alert_id));
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, ts INTEGER NOT NULL,
    log_level TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_run ON events(run_id, ts);
CREATE INDEX IF NOT EXISTS events_run_seq ON events(run_id, seq);
CREATE TABLE IF NOT EXISTS metric_series (
    id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, name TEXT NOT NULL,
    count INTEGER NOT NULL DEFAULT 0, vmin REAL, vmax REAL, last REAL, last_step INTEGER,
    UNIQUE (run_id, name));
CREATE INDEX IF NOT EXISTS metric_series_name ON metric_series(name);
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
CREATE TABLE IF NOT EXISTS notify_channels (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}', created INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS notify_channels_owner ON notify_channels(owner);
CREATE TABLE IF NOT EXISTS notify_outbox (
    id TEXT PRIMARY KEY, channel_id TEXT NOT NULL, owner TEXT NOT NULL, run_id TEXT NOT NULL,
    event TEXT NOT NULL, payload TEXT NOT NULL, created INTEGER NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL,
    claimed_until INTEGER NOT NULL DEFAULT 0, last_error TEXT, sent_at INTEGER);
CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox(status, next_at);
CREATE INDEX IF NOT EXISTS notify_outbox_run ON notify_outbox(run_id, created);
CREATE INDEX IF NOT EXISTS notify_outbox_owner ON notify_outbox(owner, created);
CREATE TABLE IF NOT EXISTS grids (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, doc TEXT NOT NULL, created INTEGER NOT NULL,
    user TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS run_grids (
    run_id TEXT NOT NULL, metric TEXT NOT NULL, grid_id TEXT NOT NULL,
    PRIMARY KEY (run_id, metric));
CREATE INDEX IF NOT EXISTS run_grids_grid ON run_grids(grid_id);
CREATE TABLE IF NOT EXISTS grid_values (
    run_id TEXT NOT NULL, metric TEXT NOT NULL, step INTEGER NOT NULL, time REAL NOT NULL,
    ts INTEGER NOT NULL, count INTEGER NOT NULL, vmin REAL, vmax REAL, data BLOB NOT NULL,
    PRIMARY KEY (run_id, metric, step));
CREATE TABLE IF NOT EXISTS tags (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, colour TEXT NOT NULL,
    description TEXT, created INTEGER NOT NULL, user TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS folder_views (
    folder_id TEXT NOT NULL, user TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (folder_id, user));
CREATE INDEX IF NOT EXISTS folder_views_user ON folder_views(user);
CREATE TABLE IF NOT EXISTS signin_failures (
    key TEXT PRIMARY KEY, count INTEGER NOT NULL, since INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS signin_failures_since ON signin_failures(since);
CREATE TABLE IF NOT EXISTS alert_acks (
    run_id TEXT NOT NULL, alert_id TEXT NOT NULL, by_user TEXT NOT NULL, at INTEGER NOT NULL,
    PRIMARY KEY (run_id, alert_id));
CREATE TABLE IF NOT EXISTS tenants (
    name TEXT PRIMARY KEY, doc TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS user_profiles (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created);
-- Event pages of one level other than info (`log_level == error`), in order
-- (the rowid, seq, follows ts): they read the matching events, not the run's.
-- Info events, most of them, are left out: ingest stays as fast.
CREATE INDEX IF NOT EXISTS events_run_level ON events(run_id, log_level, ts)
    WHERE log_level <> 'info';
"#;

/// Changes to a schema that `SCHEMA` cannot express (`ALTER TABLE`, data
/// moved at an upgrade), applied once each, in order, after `SCHEMA`; the
/// number of those applied is the database's `PRAGMA user_version`.
/// Append-only: never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: users, groups and the token lifecycle. Every name that held a
    // token or owns a run becomes a user; they become administrators, so
    // an upgrade locks nobody out of runs they could see before (demote
    // with `simtrack user add NAME --no-admin`).
    r#"
ALTER TABLE tokens ADD COLUMN label TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN read_only INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN last_used INTEGER;
ALTER TABLE tokens ADD COLUMN csrf TEXT;
ALTER TABLE folders ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS tokens_name ON tokens(name);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, email TEXT, grp TEXT, admin INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0, password TEXT, created INTEGER NOT NULL);
INSERT OR IGNORE INTO users (name, admin, created)
    SELECT name, 1, CAST(strftime('%s', 'now') AS INTEGER) FROM tokens
    UNION SELECT user, 1, CAST(strftime('%s', 'now') AS INTEGER) FROM runs WHERE user <> '';
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL, ip TEXT NOT NULL);
"#,
    // 2: alert options besides the rule (auto, run_tags, delay).
    "ALTER TABLE alerts ADD COLUMN options TEXT NOT NULL DEFAULT '{}';",
    // 3: each run's events counted as they are stored, the server's own
    // (`[simtrack] ...`, `storage::SYSTEM_EVENT_PREFIX`) apart: a page of a
    // run's events reads the count instead of counting the run's rows.
    // `event_counts_seq` holds the last event counted; the counts are made
    // at open when it is not the last event stored ([`count_events`]).
    r#"
CREATE TABLE IF NOT EXISTS event_counts (
    run_id TEXT PRIMARY KEY, total INTEGER NOT NULL, system INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS event_counts_seq (
    one INTEGER PRIMARY KEY CHECK (one = 1), seq INTEGER NOT NULL);
"#,
];

/// Applies the [`MIGRATIONS`] the database at `c` lacks, each in its own
/// transaction with its version bump. The version is read inside a
/// write-locked transaction, so two processes opening the same directory at
/// once (a server and a `simtrack token` command) never apply one twice.
fn migrate(c: &mut Connection) -> rusqlite::Result<()> {
    loop {
        let t = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let done: i64 = t.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let Some(sql) = MIGRATIONS.get(done.max(0) as usize) else {
            return Ok(());
        };
        t.execute_batch(sql)?;
        t.pragma_update(None, "user_version", done + 1)?;
        t.commit()?;
    }
}

/// Counts every run's events again when the last event counted is not the
/// last stored: at the upgrade that brought the counts (migration 3), and
/// after a build from before it stored events without counting them. The
/// check is two lookups; counting reads every event once.
fn count_events(c: &mut Connection) -> rusqlite::Result<()> {
    let t = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (stored, counted): (Option<i64>, Option<i64>) = t.query_row(
        "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'events'),
                (SELECT seq FROM event_counts_seq)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if stored == counted {
        return Ok(());
    }
    t.execute_batch(
        "DELETE FROM event_counts;
         INSERT INTO event_counts (run_id, total, system)
             SELECT run_id, COUNT(*), SUM(substr(message, 1, 10) = '[simtrack]')
             FROM events GROUP BY run_id;",
    )?;
    t.execute(
        "INSERT INTO event_counts_seq (one, seq) VALUES (1, ?1)
         ON CONFLICT (one) DO UPDATE SET seq = excluded.seq",
        [stored.unwrap_or(0)],
    )?;
    t.commit()
}

/// The database of one data directory (`DIR/simtrack.db`).
#[derive(Debug)]
pub struct SqliteStore {
    db_path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
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

pub(crate) fn db(e: rusqlite::Error) -> StorageError {
    StorageError(format!("database error: {e}"))
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/simtrack.db`.
    pub fn open(dir: &Path) -> std::result::Result<SqliteStore, String> {
        // Private to the server: directory 0700, database 0600.
        crate::private::prepare_dir(dir)?;
        let db_path = dir.join("simtrack.db");
        let mut writer =
            open_conn(&db_path).map_err(|e| format!("cannot open {}: {e}", db_path.display()))?;
        writer
            .execute_batch(SCHEMA)
            .map_err(|e| format!("cannot initialise {}: {e}", db_path.display()))?;
        migrate(&mut writer).map_err(|e| format!("cannot upgrade {}: {e}", db_path.display()))?;
        count_events(&mut writer)
            .map_err(|e| format!("cannot count the events of {}: {e}", db_path.display()))?;
        Ok(SqliteStore {
            db_path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }
}

impl StateStore for SqliteStore {
    fn read(&self, f: &mut dyn FnMut(&dyn ReadTx) -> Result<()>) -> Result<()> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => open_conn(&self.db_path).map_err(db)?,
        };
        let out = {
            let t = conn.transaction().map_err(db)?;
            let out = f(&tx::Tx(&t));
            drop(t);
            out
        };
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 8 {
            pool.push(conn);
        }
        out
    }

    fn write(&self, f: &mut dyn FnMut(&dyn WriteTx) -> Result<Outcome>) -> Result<()> {
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let t = conn.transaction().map_err(db)?;
        match f(&tx::Tx(&t))? {
            Outcome::Commit => t.commit().map_err(db),
            Outcome::Rollback => Ok(()),
        }
    }

    fn close(&self) {
        let conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::EventPred;

    /// A data directory from before users existed opens, is upgraded once,
    /// and everyone who held a token or owns a run keeps full access.
    #[test]
    fn an_old_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let c = Connection::open(dir.path().join("simtrack.db")).expect("open");
            c.execute_batch(SCHEMA).expect("old schema");
            c.execute_batch(
                "INSERT INTO tokens (id, name, hash, exp, created) VALUES ('t1', 'alice', 'h1', 9999999999, 1);
                 INSERT INTO runs (id, name, folder, status, created, modified, user, last_seen)
                     VALUES ('r1', 'old', '/', 'completed', 1, 1, 'bob', 1);
                 INSERT INTO folders (id, path, created, modified) VALUES ('f1', '/', 1, 1);
                 INSERT INTO events (run_id, ts, log_level, message) VALUES
                     ('r1', 1, 'info', 'step 1'), ('r1', 2, 'error', 'step 2 diverged'),
                     ('r1', 3, 'info', '[simtrack] run status changed to completed');",
            )
            .expect("old rows");
        }
        for _ in 0..2 {
            let store = SqliteStore::open(dir.path()).expect("upgrade");
            store
                .read(&mut |tx| {
                    let users = tx.users()?;
                    let names: Vec<(&str, bool)> =
                        users.iter().map(|u| (u.name.as_str(), u.admin)).collect();
                    assert_eq!(names, [("alice", true), ("bob", true)]);
                    let t = tx.token_by_hash("h1")?.expect("token kept");
                    assert_eq!(
                        (t.name.as_str(), t.read_only, t.label.as_str()),
                        ("alice", false, "")
                    );
                    assert_eq!(tx.folder_get("f1")?.expect("folder").owner, "");
                    assert!(tx.audit(None, 10)?.is_empty());
                    // The events stored before counts existed are counted.
                    assert_eq!(tx.events_count_where("r1", None, &EventPred::True)?, 3);
                    let own = tx.events_count_where(
                        "r1",
                        Some(crate::storage::SYSTEM_EVENT_PREFIX),
                        &EventPred::True,
                    )?;
                    assert_eq!(own, 2);
                    Ok(())
                })
                .expect("read");
            let v: i64 = store
                .writer
                .lock()
                .unwrap()
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .expect("version");
            assert_eq!(v, MIGRATIONS.len() as i64);
        }
    }

    /// `events_count_where` in a read of its own.
    fn count(store: &SqliteStore, run: &str, exclude: Option<&str>, filter: &EventPred) -> u64 {
        let mut n = 0;
        store
            .read(&mut |tx| {
                n = tx.events_count_where(run, exclude, filter)?;
                Ok(())
            })
            .expect("count");
        n
    }

    /// A run's event count, kept as events are stored, equals the count of
    /// its rows after single and batched inserts, a rollback and a delete;
    /// a prefix or filter other than the server's own is counted from the
    /// rows.
    #[test]
    fn a_runs_event_counts_follow_every_insert_and_delete() {
        use crate::storage::{EventField, SYSTEM_EVENT_PREFIX};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("open");
        store
            .write(&mut |tx| {
                tx.event_insert("a", 1, "info", "first")?;
                tx.event_insert("a", 2, "info", "[simtrack] run status changed")?;
                // 1200 rows: full multi-row groups and a remainder.
                let batch: Vec<(i64, String, String)> = (0..1200)
                    .map(|i| {
                        let message = if i % 100 == 0 {
                            format!("[simtrack] line {i}")
                        } else {
                            format!("line {i}")
                        };
                        (10 + i, "error".to_owned(), message)
                    })
                    .collect();
                tx.events_insert("a", &batch)?;
                tx.events_insert("a", &[])?;
                tx.event_insert("b", 1, "info", "another run")?;
                Ok(Outcome::Commit)
            })
            .expect("events stored");
        store
            .write(&mut |tx| {
                tx.event_insert("a", 5000, "info", "rolled back")?;
                Ok(Outcome::Rollback)
            })
            .expect("rolled back");
        let rows = |sql: &str| -> u64 {
            let c = Connection::open(dir.path().join("simtrack.db")).expect("open");
            c.query_row(sql, [], |r| r.get(0)).expect("a number")
        };
        let all = rows("SELECT count(*) FROM events WHERE run_id = 'a'");
        let own = rows(
            "SELECT count(*) FROM events WHERE run_id = 'a' AND message NOT LIKE '[simtrack]%'",
        );
        assert_eq!((all, own), (1202, 1202 - 13));
        assert_eq!(count(&store, "a", None, &EventPred::True), all);
        assert_eq!(
            count(&store, "a", Some(SYSTEM_EVENT_PREFIX), &EventPred::True),
            own
        );
        assert_eq!(
            count(&store, "a", Some("line 1"), &EventPred::True),
            all - 308
        );
        let errors = EventPred::Eq(EventField::Level, "error".into());
        assert_eq!(count(&store, "a", None, &errors), 1200);
        assert_eq!(count(&store, "a", Some(SYSTEM_EVENT_PREFIX), &errors), 1188);
        assert_eq!(count(&store, "b", None, &EventPred::True), 1);
        assert_eq!(count(&store, "never", None, &EventPred::True), 0);
        // Events stored by a build from before the counts are counted at
        // the next open.
        Connection::open(dir.path().join("simtrack.db"))
            .and_then(|c| {
                c.execute_batch(
                    "INSERT INTO events (run_id, ts, log_level, message) VALUES
                         ('b', 2, 'info', 'two'), ('b', 3, 'info', '[simtrack] three');",
                )
            })
            .expect("events of an older build");
        assert_eq!(count(&store, "b", None, &EventPred::True), 1);
        let store = SqliteStore::open(dir.path()).expect("open again");
        assert_eq!(count(&store, "b", None, &EventPred::True), 3);
        assert_eq!(
            count(&store, "b", Some(SYSTEM_EVENT_PREFIX), &EventPred::True),
            2
        );
        assert_eq!(count(&store, "a", None, &EventPred::True), all);
        store
            .write(&mut |tx| {
                tx.run_delete("a")?;
                Ok(Outcome::Commit)
            })
            .expect("run deleted");
        assert_eq!(count(&store, "a", None, &EventPred::True), 0);
        assert_eq!(
            rows("SELECT count(*) FROM event_counts WHERE run_id = 'a'"),
            0
        );
        assert_eq!(count(&store, "b", None, &EventPred::True), 3);
    }
}

//! The scale-out state store: PostgreSQL through `tokio-postgres`, with a
//! `deadpool-postgres` connection pool.
//!
//! The trait is synchronous and always called from a blocking thread, so
//! every statement's future is driven with [`Handle::block_on`] on that
//! thread (inside `block_in_place`, which is a no-op there and keeps the
//! one call made from the runtime's own `block_on`, at start, legal).
//! One transaction holds one pooled connection.
//!
//! Write transactions take transaction-scoped advisory locks first, so
//! two that may touch the same records never overlap, on any replica. A
//! write not scoped to a run (creating a run, folders, alerts, the lost-run
//! sweeper, ...) holds [`WRITE_LOCK`] exclusively and is serialised with
//! every other write, exactly as SQLite's single writer serialises them in
//! one process. A write scoped to one run ([`StateStore::write_run`]: a
//! metrics, events or array batch, a heartbeat) holds [`WRITE_LOCK`]
//! shared, then its run's lock ([`RUN_LOCKS`]) and its idempotency key's
//! ([`IDEM_LOCKS`]): batches of different runs commit in parallel, while
//! batches of one run, and any two requests with one key, are still
//! serialised. A mutation, its side effects and its idempotency record
//! commit together, so two replicas can never both apply one key or both
//! mark one run lost. Reads run in `REPEATABLE READ READ ONLY` snapshots
//! and never wait for a lock.
//!
//! Schema migrations ([`schema::MIGRATIONS`]) run at open under a session
//! advisory lock, so replicas starting together apply each one once.

mod grids;
pub mod inspect;
mod schema;
mod tx;

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::runtime::Handle;
use tokio_postgres::{IsolationLevel, NoTls};

use super::{Outcome, ReadTx, Result, RunScope, StateStore, StorageError, WriteTx};

/// Advisory-lock key held (transaction-scoped) by every write transaction:
/// exclusively by one not scoped to a run, shared by one that is.
pub const WRITE_LOCK: i64 = 0x5349_4d54_0001;
/// First half of the two-part advisory-lock key of a run (the second is
/// [`lock_key`] of its id), held by write transactions scoped to that run.
/// Two-part keys never collide with the one-part keys above.
pub const RUN_LOCKS: i32 = 0x5349_4d52;
/// First half of the two-part advisory-lock key of an idempotency key
/// (the second is [`lock_key`] of its scope and key).
pub const IDEM_LOCKS: i32 = 0x5349_4d49;
/// Advisory-lock key held (session-scoped) while migrations run.
pub const MIGRATE_LOCK: i64 = 0x5349_4d54_0002;
/// Advisory-lock key of the replica that runs background duties.
pub const LEADER_LOCK: i64 = 0x5349_4d54_0003;

/// The second half of a two-part advisory-lock key for `parts`: the first
/// four bytes of the SHA-256 of the parts joined by newlines, a hash every
/// replica of every version computes alike (a rolling upgrade must not
/// let two replicas lock one run under different keys). Two runs sharing
/// a key only wait for each other.
fn lock_key(parts: &[&str]) -> i32 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(parts.join("\n").as_bytes());
    i32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A PostgreSQL database holding runs, metrics and everything else but
/// artifact bytes.
pub struct PgStore {
    pool: Pool,
    rt: Handle,
    /// The URL with its password replaced, for messages.
    url: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("url", &self.url).finish()
    }
}

/// `url` with the password (if any) replaced by `***`, safe to print.
pub fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some((scheme, rest)) = url.split_once("://") {
        // userinfo ends at the last '@' before the path.
        let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..host_end].rfind('@') {
            let userinfo = &rest[..at];
            let masked = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => userinfo.to_owned(),
            };
            out = format!("{scheme}://{masked}{}", &rest[at..]);
        }
    }
    // A password may also come as a parameter (`?password=` or the
    // `key=value` form).
    let mut from = 0;
    while let Some(i) = out[from..].find("password=") {
        let start = from + i + "password=".len();
        let end = out[start..]
            .find(['&', ' '])
            .map_or(out.len(), |e| start + e);
        out.replace_range(start..end, "***");
        from = start + 3;
    }
    out
}

pub(crate) fn db(e: tokio_postgres::Error) -> StorageError {
    // Lost connections and server shutdowns say so, so an operator sees
    // the database is the problem rather than a bug.
    StorageError(format!("database error: {e}"))
}

fn pool_err(e: deadpool_postgres::PoolError) -> StorageError {
    StorageError(format!("database unavailable: {e}"))
}

impl PgStore {
    /// Connects to `url` (`postgres://USER:PASS@HOST:PORT/DB`), checks
    /// the connection and applies any missing migrations. Must be called
    /// within a Tokio runtime, whose handle the store keeps.
    pub async fn open(url: &str) -> std::result::Result<PgStore, String> {
        let shown = redact(url);
        let mut cfg = tokio_postgres::Config::from_str(url)
            .map_err(|e| format!("invalid database URL {shown}: {e}"))?;
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(Duration::from_secs(5));
        }
        cfg.keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .application_name("simtrack");
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(32)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| format!("cannot set up the pool for {shown}: {e}"))?;
        let mut client = pool
            .get()
            .await
            .map_err(|e| format!("cannot connect to the database at {shown}: {e}"))?;
        schema::migrate(&mut client)
            .await
            .map_err(|e| format!("cannot migrate the database at {shown}: {e}"))?;
        drop(client);
        Ok(PgStore {
            pool,
            rt: Handle::current(),
            url: shown,
        })
    }

    /// The database URL without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drives `fut` to completion from the calling (blocking) thread.
    fn block<F: std::future::Future>(&self, fut: F) -> F::Output {
        tokio::task::block_in_place(|| self.rt.block_on(fut))
    }

    /// A write transaction: with `scope`, under the shared [`WRITE_LOCK`],
    /// the run's lock and the idempotency key's lock, refusing changes
    /// outside the scope; without, under the exclusive [`WRITE_LOCK`].
    /// The locks are taken before the first read, always in that order
    /// (so no two writers wait for each other in a cycle), and each
    /// statement then reads what committed before (READ COMMITTED).
    fn write_locked(
        &self,
        scope: Option<&RunScope<'_>>,
        f: &mut dyn FnMut(&dyn WriteTx) -> Result<Outcome>,
    ) -> Result<()> {
        let mut client = self.block(self.pool.get()).map_err(pool_err)?;
        let t = self
            .block(
                client
                    .build_transaction()
                    .isolation_level(IsolationLevel::ReadCommitted)
                    .start(),
            )
            .map_err(db)?;
        // One round trip for every lock: the keys are numbers, so the
        // statements are plain text run in order by the simple protocol.
        let locks = match scope {
            None => format!("SELECT pg_advisory_xact_lock({WRITE_LOCK})"),
            Some(s) => {
                let mut q = format!(
                    "SELECT pg_advisory_xact_lock_shared({WRITE_LOCK}); \
                     SELECT pg_advisory_xact_lock({RUN_LOCKS}, {})",
                    lock_key(&[s.run])
                );
                if let Some((scope, key)) = s.idem {
                    q.push_str(&format!(
                        "; SELECT pg_advisory_xact_lock({IDEM_LOCKS}, {})",
                        lock_key(&[scope, key])
                    ));
                }
                q
            }
        };
        self.block(t.simple_query(&locks)).map_err(db)?;
        let tx = tx::Tx {
            t: &t,
            store: self,
            scope: scope.copied(),
        };
        match f(&tx) {
            Ok(Outcome::Commit) => self.block(t.commit()).map_err(db),
            Ok(Outcome::Rollback) => {
                let _ = self.block(t.rollback());
                Ok(())
            }
            Err(e) => {
                let _ = self.block(t.rollback());
                Err(e)
            }
        }
    }

    /// Whether the database answers a trivial query (readiness).
    pub async fn ping(&self) -> Result<()> {
        let c = self.pool.get().await.map_err(pool_err)?;
        c.simple_query("SELECT 1").await.map_err(db)?;
        Ok(())
    }

    /// A dedicated connection that holds the leader lock while it lives:
    /// `Ok(Some(client))` when this replica became leader, `Ok(None)`
    /// when another holds it. PostgreSQL releases the lock when the
    /// connection (or the replica) dies.
    pub async fn try_lead(&self) -> Result<Option<deadpool_postgres::Object>> {
        let c = self.pool.get().await.map_err(pool_err)?;
        let row = c
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])
            .await
            .map_err(db)?;
        Ok(if row.get::<_, bool>(0) { Some(c) } else { None })
    }
}

impl StateStore for PgStore {
    fn read(&self, f: &mut dyn FnMut(&dyn ReadTx) -> Result<()>) -> Result<()> {
        let mut client = self.block(self.pool.get()).map_err(pool_err)?;
        let t = self
            .block(
                client
                    .build_transaction()
                    .isolation_level(IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start(),
            )
            .map_err(db)?;
        let out = f(&tx::Tx {
            t: &t,
            store: self,
            scope: None,
        });
        let _ = self.block(t.rollback());
        out
    }

    fn write(&self, f: &mut dyn FnMut(&dyn WriteTx) -> Result<Outcome>) -> Result<()> {
        self.write_locked(None, f)
    }

    fn write_run(
        &self,
        scope: &RunScope<'_>,
        f: &mut dyn FnMut(&dyn WriteTx) -> Result<Outcome>,
    ) -> Result<()> {
        self.write_locked(Some(scope), f)
    }

    fn close(&self) {
        self.pool.close();
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_the_password_and_keeps_the_rest() {
        assert_eq!(
            redact("postgres://simtrack:s3cr%40t@db.example:5432/st"),
            "postgres://simtrack:***@db.example:5432/st"
        );
        assert_eq!(
            redact("postgres://simtrack@127.0.0.1:5433/t"),
            "postgres://simtrack@127.0.0.1:5433/t"
        );
        assert_eq!(
            redact("postgresql://u:p@h/db?password=x&sslmode=disable"),
            "postgresql://u:***@h/db?password=***&sslmode=disable"
        );
        assert_eq!(
            redact("host=/tmp password=x dbname=y"),
            "host=/tmp password=*** dbname=y"
        );
    }
}

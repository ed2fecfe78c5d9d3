//! Read-only looks into a scale-out database for `simtrack doctor
//! --database`: one plain connection (no pool, no migrations), so the
//! doctor never changes what it inspects.

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use super::{LEADER_LOCK, redact};

/// A running run: id, name, last contact (µs), heartbeat timeout (s).
#[derive(Debug, Clone)]
pub struct RunningRun {
    pub id: String,
    pub name: String,
    pub last_seen_us: i64,
    pub heartbeat_timeout: f64,
}

/// An artifact whose bytes are said to be uploaded.
#[derive(Debug, Clone)]
pub struct UploadedArtifact {
    pub id: String,
    pub name: String,
    pub size: u64,
    pub checksum: String,
}

/// Who holds the leader lock (the replica running background duties).
#[derive(Debug, Clone)]
pub struct Leader {
    pub pid: i32,
    pub client: String,
}

/// One connection to the database, for reading.
pub struct Inspector {
    client: Client,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Inspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspector").finish_non_exhaustive()
    }
}

fn text(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => d.message().to_owned(),
        None => {
            // The driver's own text is terse ("error connecting to
            // server"): add its cause.
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(c) = src {
                s.push_str(&format!(": {c}"));
                src = c.source();
            }
            s
        }
    }
}

impl Inspector {
    /// Connects to `url`; the error names the URL without its password.
    pub async fn open(url: &str) -> Result<Inspector, String> {
        let shown = redact(url);
        let mut cfg = tokio_postgres::Config::from_str(url)
            .map_err(|e| format!("invalid database URL {shown}: {e}"))?;
        cfg.connect_timeout(Duration::from_secs(5))
            .application_name("simtrack doctor");
        let (client, conn) = cfg
            .connect(NoTls)
            .await
            .map_err(|e| format!("cannot connect to the database at {shown}: {}", text(e)))?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        // Nothing this connection does may write.
        client
            .batch_execute("SET default_transaction_read_only = on")
            .await
            .map_err(text)?;
        Ok(Inspector { client, task })
    }

    /// The highest schema migration applied (`None`: not a simtrack
    /// database yet), and the highest this build knows.
    pub async fn schema(&self) -> Result<(Option<i32>, i32), String> {
        let known = super::schema::MIGRATIONS
            .iter()
            .map(|(v, _)| *v)
            .max()
            .unwrap_or(0);
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
            .await
            .map_err(text)?
            .get(0);
        if !exists {
            return Ok((None, known));
        }
        let v: Option<i32> = self
            .client
            .query_one("SELECT max(version) FROM schema_migrations", &[])
            .await
            .map_err(text)?
            .get(0);
        Ok((v, known))
    }

    /// The session holding the leader lock, if any.
    pub async fn leader(&self) -> Result<Option<Leader>, String> {
        let (hi, lo) = (LEADER_LOCK >> 32, LEADER_LOCK & 0xffff_ffff);
        let row = self
            .client
            .query_opt(
                "SELECT l.pid, COALESCE(host(a.client_addr), 'local') \
                 FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'advisory' AND l.granted \
                 AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 1",
                &[&hi, &lo],
            )
            .await
            .map_err(text)?;
        Ok(row.map(|r| Leader {
            pid: r.get(0),
            client: r.get(1),
        }))
    }

    /// Connections opened by simtrack servers.
    pub async fn server_connections(&self) -> Result<i64, String> {
        Ok(self
            .client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'simtrack'",
                &[],
            )
            .await
            .map_err(text)?
            .get(0))
    }

    /// Runs still `running` that have a heartbeat timeout.
    pub async fn running_runs(&self) -> Result<Vec<RunningRun>, String> {
        let rows = self
            .client
            .query(
                "SELECT id, name, last_seen, heartbeat_timeout FROM runs \
                 WHERE status = 'running' AND heartbeat_timeout IS NOT NULL ORDER BY seq",
                &[],
            )
            .await
            .map_err(text)?;
        Ok(rows
            .iter()
            .map(|r| RunningRun {
                id: r.get(0),
                name: r.get(1),
                last_seen_us: r.get(2),
                heartbeat_timeout: r.get(3),
            })
            .collect())
    }

    /// Artifacts marked uploaded.
    pub async fn uploaded_artifacts(&self) -> Result<Vec<UploadedArtifact>, String> {
        let rows = self
            .client
            .query(
                "SELECT id, name, size, checksum FROM artifacts WHERE uploaded ORDER BY created",
                &[],
            )
            .await
            .map_err(text)?;
        Ok(rows
            .iter()
            .map(|r| UploadedArtifact {
                id: r.get(0),
                name: r.get(1),
                size: r.get::<_, i64>(2).max(0) as u64,
                checksum: r.get(3),
            })
            .collect())
    }
}

impl Drop for Inspector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

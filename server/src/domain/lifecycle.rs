//! Background upkeep: a running run whose heartbeats (or any data) stop for
//! longer than its `heartbeat_timeout` is marked `lost`; idempotency keys
//! older than a week are forgotten.
//!
//! Silence is measured from the later of the run's last contact and this
//! server's start, so a server restart never makes healthy runs look lost.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::params;

use crate::http::ApiError;
use crate::storage::sqlite::Store;
use crate::util::now_us;

/// Marks silent runs lost; returns their ids.
pub fn mark_lost(store: &Store, server_start_us: i64) -> Result<Vec<String>, ApiError> {
    store.write_plain(|tx| {
        let now = now_us();
        let ids: Vec<String> = {
            let mut s = tx
                .prepare_cached(
                    "SELECT id FROM runs WHERE status = 'running' AND heartbeat_timeout IS NOT NULL
                     AND max(last_seen, ?1) + CAST(heartbeat_timeout * 1000000 AS INTEGER) < ?2",
                )
                .map_err(ApiError::db)?;
            s.query_map(params![server_start_us, now], |r| r.get(0))
                .and_then(|r| r.collect())
                .map_err(ApiError::db)?
        };
        for id in &ids {
            tx.execute(
                "UPDATE runs SET status = 'lost', modified = ?2 WHERE id = ?1",
                params![id, now],
            )
            .map_err(ApiError::db)?;
            crate::http::events::record(
                tx,
                id,
                now,
                "warning",
                "[simtrack] run marked lost: no heartbeat within its heartbeat timeout",
            )?;
        }
        Ok(ids)
    })
}

/// How long an `Idempotency-Key` is remembered. Resends come within
/// minutes (or at the next `simtrack sync`); a week covers a long outage.
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(7 * 86_400);
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Forgets idempotency keys older than [`IDEMPOTENCY_RETENTION`].
pub fn purge_idempotency_keys(store: &Store) -> Result<usize, ApiError> {
    let cutoff = now_us() - IDEMPOTENCY_RETENTION.as_micros() as i64;
    store.write_plain(|tx| {
        tx.execute(
            "DELETE FROM idempotency WHERE created < ?1",
            params![cutoff],
        )
        .map_err(ApiError::db)
    })
}

/// Checks for lost runs every `every` (and purges old idempotency keys
/// every ten minutes) until the process ends.
pub fn spawn_lost_detector(store: Arc<Store>, every: Duration) {
    let start = now_us();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_purge = std::time::Instant::now();
        loop {
            tick.tick().await;
            let s = store.clone();
            let purge = last_purge.elapsed() >= PURGE_EVERY;
            if purge {
                last_purge = std::time::Instant::now();
            }
            let work = move || {
                if purge {
                    purge_idempotency_keys(&s)?;
                }
                mark_lost(&s, start)
            };
            match tokio::task::spawn_blocking(work).await {
                Ok(Err(e)) => eprintln!("simtrack server: lost-run check failed: {}", e.detail),
                Err(e) => eprintln!("simtrack server: lost-run check failed: {e}"),
                Ok(Ok(_)) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_idempotency_keys_are_forgotten_and_recent_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let old = now_us() - IDEMPOTENCY_RETENTION.as_micros() as i64 - 1;
        store
            .write_plain(|tx| {
                for (key, created) in [("old", old), ("new", now_us())] {
                    tx.execute(
                        "INSERT INTO idempotency (scope, key, status, body, created) VALUES ('s', ?1, 200, '{}', ?2)",
                        params![key, created],
                    )
                    .map_err(ApiError::db)?;
                }
                Ok(())
            })
            .expect("insert");
        assert_eq!(purge_idempotency_keys(&store).expect("purge"), 1);
        let left: Vec<String> = store
            .read(|c| {
                let mut s = c
                    .prepare("SELECT key FROM idempotency")
                    .map_err(ApiError::db)?;
                s.query_map([], |r| r.get(0))
                    .and_then(|r| r.collect())
                    .map_err(ApiError::db)
            })
            .expect("read");
        assert_eq!(left, ["new"]);
    }
}

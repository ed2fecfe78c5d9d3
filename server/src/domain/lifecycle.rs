//! Background upkeep: a running run whose heartbeats (or any data) stop for
//! longer than its `heartbeat_timeout` is marked `lost`; idempotency keys
//! older than a week are forgotten.
//!
//! Silence is measured from the later of the run's last contact and this
//! server's start, so a server restart never makes healthy runs look lost.

use std::sync::Arc;
use std::time::Duration;

use simtrack::model::RunStatus;

use super::{Result, events, write};
use crate::storage::{RunPatch, StateStore};
use crate::util::now_us;

/// Marks silent runs lost; returns their ids.
pub fn mark_lost(store: &dyn StateStore, server_start_us: i64) -> Result<Vec<String>> {
    write(store, |tx| {
        let now = now_us();
        let ids = tx.runs_silent(server_start_us, now)?;
        for id in &ids {
            tx.run_update(
                id,
                &RunPatch {
                    status: Some(RunStatus::Lost.as_str().to_owned()),
                    modified: Some(now),
                    ..RunPatch::default()
                },
            )?;
            events::record(
                tx,
                id,
                now,
                "warning",
                "[simtrack] run marked lost: no heartbeat within its heartbeat timeout",
            )?;
            super::notify::on_run_status(tx, id, RunStatus::Lost.as_str())?;
        }
        Ok(ids)
    })
}

/// How long an `Idempotency-Key` is remembered. Resends come within
/// minutes (or at the next `simtrack sync`); a week covers a long outage.
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(7 * 86_400);
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Forgets idempotency keys older than [`IDEMPOTENCY_RETENTION`].
pub fn purge_idempotency_keys(store: &dyn StateStore) -> Result<usize> {
    let cutoff = now_us() - IDEMPOTENCY_RETENTION.as_micros() as i64;
    write(store, |tx| Ok(tx.idempotency_purge(cutoff)?))
}

/// Checks for lost runs every `every` (and purges old idempotency keys
/// every ten minutes) until the process ends.
pub fn spawn_lost_detector(store: Arc<dyn StateStore>, every: Duration) {
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
                    purge_idempotency_keys(&*s)?;
                }
                mark_lost(&*s, start)
            };
            if let Err(e) = super::blocking(work).await {
                eprintln!("simtrack server: lost-run check failed: {}", e.detail);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Idem, read, write_once};
    use crate::storage::sqlite::SqliteStore;

    #[test]
    fn old_idempotency_keys_are_forgotten_and_recent_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("store");
        let old = now_us() - IDEMPOTENCY_RETENTION.as_micros() as i64 - 1;
        write(&store, |tx| {
            let r = crate::storage::Recorded {
                status: 200,
                body: "{}".into(),
            };
            tx.idempotency_put("s", "old", &r, old)?;
            tx.idempotency_put("s", "new", &r, now_us())?;
            Ok(())
        })
        .expect("insert");
        assert_eq!(purge_idempotency_keys(&store).expect("purge"), 1);
        let seen = |key: &str| {
            read(&store, |tx| Ok(tx.idempotency_get("s", key)?.is_some())).expect("read")
        };
        assert!(!seen("old") && seen("new"));
        // A remembered key answers its recorded response without applying.
        let idem = Idem {
            scope: "s".into(),
            key: Some("new".into()),
        };
        let r = write_once(&store, &idem, |_| panic!("applied twice")).expect("replay");
        assert_eq!(r.body, "{}");
    }
}

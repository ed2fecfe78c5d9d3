//! Run lifecycle in the background: a running run whose heartbeats (or any
//! data) stop for longer than its `heartbeat_timeout` is marked `lost`.
//!
//! Silence is measured from the later of the run's last contact and this
//! server's start, so a server restart never makes healthy runs look lost.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::params;

use crate::api::ApiError;
use crate::store::Store;
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
            crate::api::events::record(
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

/// Checks for lost runs every `every` until the process ends.
pub fn spawn_lost_detector(store: Arc<Store>, every: Duration) {
    let start = now_us();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let s = store.clone();
            match tokio::task::spawn_blocking(move || mark_lost(&s, start)).await {
                Ok(Err(e)) => eprintln!("simtrack server: lost-run check failed: {}", e.detail),
                Err(e) => eprintln!("simtrack server: lost-run check failed: {e}"),
                Ok(Ok(_)) => {}
            }
        }
    });
}

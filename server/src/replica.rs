//! What a server needs to run as one of several replicas: health and
//! readiness endpoints for the load balancer, and a leader that runs the
//! background duties (the lost-run sweeper, the idempotency-key purge) on
//! exactly one replica at a time.
//!
//! Leadership is a PostgreSQL session advisory lock held on a dedicated
//! connection ([`crate::storage::postgres::PgStore::try_lead`]): the
//! database releases it when that connection or its replica dies, and
//! another replica takes it at its next check. The sweeper stays correct
//! even if two replicas ever swept at once (each sweep is one serialised
//! write transaction that re-reads which runs are silent), so the lock is
//! about not doing the work twice, not about correctness.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::domain::lifecycle::{mark_lost, purge_idempotency_keys};
use crate::storage::postgres::PgStore;
use crate::storage::{Backend, StateStore};
use crate::util::now_us;

const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Checks for leadership every `every`; while leader, sweeps lost runs at
/// that period and purges old idempotency keys every ten minutes.
pub fn spawn_leader_duties(pg: Arc<PgStore>, store: Arc<dyn StateStore>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut lease: Option<deadpool_postgres::Object> = None;
        let mut since = now_us();
        let mut last_purge = Instant::now();
        loop {
            tick.tick().await;
            let alive = match &lease {
                Some(c) => !c.is_closed() && c.simple_query("SELECT 1").await.is_ok(),
                None => true,
            };
            if !alive {
                // Never back into the pool: the lock may still be on it.
                if let Some(c) = lease.take() {
                    drop(deadpool_postgres::Object::take(c));
                }
                eprintln!("simtrack server: lost the leader lock; background duties paused");
            }
            if lease.is_none() {
                match pg.try_lead().await {
                    Ok(Some(c)) => {
                        lease = Some(c);
                        // Runs get a full heartbeat timeout from the
                        // takeover before they can be marked lost.
                        since = now_us();
                        eprintln!("simtrack server: leader: running the lost-run sweeper");
                    }
                    Ok(None) => continue,
                    Err(e) => {
                        eprintln!("simtrack server: leader check failed: {e}");
                        continue;
                    }
                }
            }
            let s = store.clone();
            let purge = last_purge.elapsed() >= PURGE_EVERY;
            if purge {
                last_purge = Instant::now();
            }
            let work = move || {
                if purge {
                    purge_idempotency_keys(&*s)?;
                }
                mark_lost(&*s, since)
            };
            if let Err(e) = crate::domain::blocking(work).await {
                eprintln!("simtrack server: lost-run check failed: {}", e.detail);
            }
        }
    });
}

/// `GET /api/health` (liveness: the process answers; no dependency is
/// checked) and `GET /api/ready` (readiness: the state store answers a
/// read and the blob store a lookup; 503 naming what failed otherwise).
/// Neither needs a token, so a load balancer can probe them.
pub fn routes(backend: Backend) -> Router {
    Router::new()
        .route(
            "/api/health",
            get(|| async {
                use crate::http::artifacts::{BYTES_RECEIVED, BYTES_SENT};
                use std::sync::atomic::Ordering::Relaxed;
                // Artifact bytes that passed through this process.
                let body = serde_json::json!({
                    "status": "ok",
                    "artifact_bytes": {
                        "received": BYTES_RECEIVED.load(Relaxed),
                        "sent": BYTES_SENT.load(Relaxed),
                    },
                });
                json(StatusCode::OK, &body.to_string())
            }),
        )
        .route("/api/ready", get(move || ready(backend.clone())))
}

fn json(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_owned(),
    )
        .into_response()
}

async fn ready(backend: Backend) -> Response {
    let state = backend.state.clone();
    let db = tokio::task::spawn_blocking(move || {
        state.read(&mut |tx| tx.setting("simtrack.ready-probe").map(|_| ()))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r.map_err(|e| e.0));
    let blobs = backend
        .blobs
        .has(&"0".repeat(64))
        .await
        .map(|_| ())
        .map_err(|e| e.0);
    let field = |r: &Result<(), String>| match r {
        Ok(()) => serde_json::Value::from("ok"),
        Err(e) => serde_json::Value::from(e.as_str()),
    };
    let body = serde_json::json!({
        "status": if db.is_ok() && blobs.is_ok() { "ready" } else { "unavailable" },
        "state": field(&db),
        "blobs": field(&blobs),
    });
    let status = if db.is_ok() && blobs.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, &body.to_string())
}

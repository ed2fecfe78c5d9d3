//! Server-side alert evaluation.
//!
//! Alerts are evaluated when data arrives (each metrics or events batch of a
//! run re-evaluates that run's attached, enabled alerts on those metrics),
//! inside the ingest transaction, so a state change is committed together
//! with the data that caused it. `window` and `frequency` are in minutes
//! (Simvue's user documentation); the window is measured back from the
//! newest point's timestamp. Because evaluation follows every batch, it is
//! at least as frequent as any `frequency` asks for.
//!
//! A state change is recorded as an event of the run; a change to
//! `critical` on an alert with `abort` requests the run's abort.

use rusqlite::{Connection, params};
use serde_json::Value;

use crate::http::ApiError;
use crate::http::runs::request_abort;
use crate::storage::sqlite::metrics;
use crate::util::now_us;

const MINUTE_US: f64 = 60e6;

/// Moves `run`'s state of `alert` (its document) to `status`, recording the
/// change and requesting an abort when an aborting alert goes critical.
pub fn set_state(tx: &Connection, run: &str, alert: &Value, status: &str) -> Result<(), ApiError> {
    let id = alert["id"].as_str().unwrap_or_default();
    let old: String = tx
        .query_row(
            "SELECT status FROM run_alerts WHERE run_id = ?1 AND alert_id = ?2",
            params![run, id],
            |r| r.get(0),
        )
        .map_err(ApiError::db)?;
    if old == status {
        return Ok(());
    }
    let now = now_us();
    tx.execute(
        "UPDATE run_alerts SET status = ?3, changed = ?4 WHERE run_id = ?1 AND alert_id = ?2",
        params![run, id, status, now],
    )
    .map_err(ApiError::db)?;
    let name = alert["name"].as_str().unwrap_or(id);
    let level = if status == "critical" {
        "warning"
    } else {
        "info"
    };
    crate::http::events::record(
        tx,
        run,
        now,
        level,
        &format!("[simtrack] alert '{name}' changed from {old} to {status}"),
    )?;
    if status == "critical" && alert["abort"].as_bool().unwrap_or(false) {
        request_abort(tx, run, &format!("alert '{name}' is critical"))?;
    }
    Ok(())
}

fn attached(tx: &Connection, run: &str, source: &str) -> Result<Vec<Value>, ApiError> {
    let mut s = tx
        .prepare_cached(
            "SELECT a.* FROM run_alerts ra JOIN alerts a ON a.id = ra.alert_id
             WHERE ra.run_id = ?1 AND a.source = ?2 AND a.enabled = 1",
        )
        .map_err(ApiError::db)?;
    s.query_map(params![run, source], crate::http::alerts::doc)
        .and_then(|r| r.collect())
        .map_err(ApiError::db)
}

fn window_us(def: &Value) -> i64 {
    let minutes = def["window"]
        .as_f64()
        .or_else(|| def["frequency"].as_f64())
        .unwrap_or(1.0);
    (minutes * MINUTE_US) as i64
}

/// Whether the metric window makes the alert critical, or `None` when the
/// window has no data.
pub fn metric_condition(
    tx: &Connection,
    series: i64,
    def: &Value,
) -> Result<Option<bool>, ApiError> {
    let rule = def["rule"].as_str().unwrap_or_default();
    let agg = def["aggregation"].as_str().unwrap_or("average");
    let t = def["threshold"].as_f64().unwrap_or(0.0);
    let (lo, hi) = (
        def["range_low"].as_f64().unwrap_or(0.0),
        def["range_high"].as_f64().unwrap_or(0.0),
    );
    let test = |v: f64| match rule {
        "is above" => v > t,
        "is below" => v < t,
        "is inside range" => v > lo && v < hi,
        _ => v < lo || v > hi,
    };
    let need_values = matches!(
        (agg, rule),
        ("at least one", "is inside range") | ("all", "is outside range")
    );
    let w = metrics::window(tx, series, window_us(def), need_values)?;
    if w.count == 0 {
        return Ok(None);
    }
    Ok(Some(match agg {
        "sum" => test(w.sum),
        "at least one" => match rule {
            "is above" => w.max > t,
            "is below" => w.min < t,
            "is outside range" => w.min < lo || w.max > hi,
            _ => w.values.iter().any(|v| test(*v)),
        },
        "all" => match rule {
            "is above" => w.min > t,
            "is below" => w.max < t,
            "is inside range" => w.min > lo && w.max < hi,
            _ => w.values.iter().all(|v| test(*v)),
        },
        _ => test(w.sum / w.count as f64),
    }))
}

/// Re-evaluates `run`'s metric alerts on any of `names`.
pub fn on_metrics(tx: &Connection, run: &str, names: &[&str]) -> Result<(), ApiError> {
    for alert in attached(tx, run, "metrics")? {
        let def = &alert["alert"];
        let metric = def["metric"].as_str().unwrap_or_default();
        if !names.contains(&metric) {
            continue;
        }
        let Some(series) = metrics::series_id(tx, run, metric)? else {
            continue;
        };
        if let Some(critical) = metric_condition(tx, series, def)? {
            set_state(tx, run, &alert, if critical { "critical" } else { "ok" })?;
        }
    }
    Ok(())
}

/// Re-evaluates `run`'s event-pattern alerts: critical while an event whose
/// message contains the pattern lies within the window of the newest event.
pub fn on_events(tx: &Connection, run: &str) -> Result<(), ApiError> {
    let alerts = attached(tx, run, "events")?;
    if alerts.is_empty() {
        return Ok(());
    }
    let newest: Option<i64> = tx
        .query_row(
            "SELECT max(ts) FROM events WHERE run_id = ?1 AND message NOT LIKE '[simtrack]%'",
            params![run],
            |r| r.get(0),
        )
        .map_err(ApiError::db)?;
    let Some(newest) = newest else { return Ok(()) };
    for alert in alerts {
        let def = &alert["alert"];
        let pattern = def["pattern"].as_str().unwrap_or_default();
        let cutoff = newest - window_us(def);
        let hit: bool = tx
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM events WHERE run_id = ?1 AND ts >= ?2
                 AND message NOT LIKE '[simtrack]%' AND instr(message, ?3) > 0)",
                params![run, cutoff, pattern],
                |r| r.get(0),
            )
            .map_err(ApiError::db)?;
        set_state(tx, run, &alert, if hit { "critical" } else { "ok" })?;
    }
    Ok(())
}

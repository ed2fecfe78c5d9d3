//! Alerts: definitions (metric threshold/range, event pattern, user), the
//! per-run state of each attached alert, and their evaluation.
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

use serde_json::{Map, Value, json};
use simtrack::model::MAX_NAME_BYTES;

use super::{Error, Result, check_name, events, metrics, runs};
use crate::storage::{AlertPatch, AlertRow, ReadTx, WriteTx};
use crate::util::{fmt_ts, new_id, now_us};

/// Metric alert rules.
pub const RULES: [&str; 4] = [
    "is above",
    "is below",
    "is inside range",
    "is outside range",
];
/// Metric alert aggregations over the window.
pub const AGGREGATIONS: [&str; 4] = ["average", "sum", "at least one", "all"];

const MINUTE_US: f64 = 60e6;

/// The alert document.
pub fn doc(r: &AlertRow) -> Value {
    let mut d = json!({
        "id": r.id,
        "name": r.name,
        "source": r.source,
        "description": r.description,
        "notification": r.notification,
        "enabled": r.enabled,
        "abort": r.abort,
        "created": fmt_ts(r.created),
    });
    if let Some(a) = &r.alert {
        d["alert"] = serde_json::from_str(a).unwrap_or(Value::Null);
    }
    d
}

fn row(tx: &dyn ReadTx, id: &str) -> Result<AlertRow> {
    tx.alert_get(id)?
        .ok_or_else(|| Error::not_found(format!("alert {id} not found")))
}

/// The alert document, or not found.
pub fn load(tx: &dyn ReadTx, id: &str) -> Result<Value> {
    row(tx, id).map(|r| doc(&r))
}

fn positive(a: &Map<String, Value>, k: &str) -> Result<Option<f64>> {
    match a.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|x| *x > 0.0 && x.is_finite())
            .map(Some)
            .ok_or_else(|| Error::invalid(format!("'alert.{k}' must be a positive number"))),
    }
}

fn number(a: &Map<String, Value>, k: &str) -> Result<f64> {
    a.get(k)
        .and_then(Value::as_f64)
        .ok_or_else(|| Error::invalid(format!("'alert.{k}' must be a number")))
}

/// Validates the `alert` definition of a metrics or events alert.
fn check_definition(source: &str, def: Option<&Value>) -> Result<Option<String>> {
    if source == "user" {
        return Ok(None);
    }
    let Some(Value::Object(a)) = def else {
        return Err(Error::invalid(format!(
            "'alert' (object) is required for {source} alerts"
        )));
    };
    positive(a, "frequency")?;
    positive(a, "window")?;
    if source == "events" {
        let p = a
            .get("pattern")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid("'alert.pattern' must be a string"))?;
        check_name("alert pattern", p, 1024)?;
    } else {
        let rule = a.get("rule").and_then(Value::as_str).unwrap_or_default();
        if !RULES.contains(&rule) {
            return Err(Error::invalid(format!(
                "'alert.rule' must be one of: {}",
                RULES.join(", ")
            )));
        }
        let m = a
            .get("metric")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid("'alert.metric' must be a string"))?;
        check_name("alert metric", m, MAX_NAME_BYTES)?;
        let agg = a
            .get("aggregation")
            .and_then(Value::as_str)
            .unwrap_or("average");
        if !AGGREGATIONS.contains(&agg) {
            return Err(Error::invalid(format!(
                "'alert.aggregation' must be one of: {}",
                AGGREGATIONS.join(", ")
            )));
        }
        if rule.ends_with("range") {
            let (lo, hi) = (number(a, "range_low")?, number(a, "range_high")?);
            if lo >= hi {
                return Err(Error::invalid(
                    "'alert.range_low' must be below 'alert.range_high'",
                ));
            }
        } else {
            number(a, "threshold")?;
        }
    }
    Ok(Some(Value::Object(a.clone()).to_string()))
}

/// A validated new alert ([`create`]).
#[derive(Debug)]
pub struct NewAlert {
    row: AlertRow,
    deduplicate: bool,
}

/// Validates a `POST /api/alerts` body for `user`.
pub fn new_alert(body: &Map<String, Value>, user: &str, deduplicate: bool) -> Result<NewAlert> {
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("'name' (string) is required"))?
        .to_owned();
    check_name("alert name", &name, MAX_NAME_BYTES)?;
    let source = body
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !["metrics", "events", "user"].contains(&source.as_str()) {
        return Err(Error::invalid("'source' must be metrics, events or user"));
    }
    let alert = check_definition(&source, body.get("alert"))?;
    Ok(NewAlert {
        row: AlertRow {
            id: new_id(),
            name,
            source,
            description: body
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            notification: body
                .get("notification")
                .and_then(Value::as_str)
                .unwrap_or("none")
                .to_owned(),
            enabled: body.get("enabled").and_then(Value::as_bool).unwrap_or(true),
            abort: body.get("abort").and_then(Value::as_bool).unwrap_or(false),
            alert,
            created: 0,
            user: user.to_owned(),
        },
        deduplicate,
    })
}

/// Stores a new alert → `{"id"}`; when deduplicating and an alert of that
/// name exists, a conflict carrying the existing alert's id.
pub fn create(tx: &dyn WriteTx, a: &NewAlert) -> Result<Value> {
    if a.deduplicate
        && let Some(id) = tx.alert_by_name(&a.row.name)?
    {
        let mut e = Error::conflict("Alert already exists");
        e.id = Some(id);
        return Err(e);
    }
    let mut row = a.row.clone();
    row.created = now_us();
    tx.alert_insert(&row)?;
    Ok(json!({ "id": row.id }))
}

/// Every alert → `{data, count}`.
pub fn list(tx: &dyn ReadTx, start: usize, count: usize) -> Result<Value> {
    let all = tx.alert_list()?.iter().map(doc).collect();
    Ok(super::page(all, start, count))
}

/// Changes `name`, `description`, `notification`, `enabled`, `abort`,
/// `alert`.
pub fn update(tx: &dyn WriteTx, id: &str, body: &Map<String, Value>) -> Result<Value> {
    let current = row(tx, id)?;
    let mut p = AlertPatch::default();
    for (k, v) in body {
        match (k.as_str(), v) {
            ("name", Value::String(n)) => {
                check_name("alert name", n, MAX_NAME_BYTES)?;
                p.name = Some(n.clone());
            }
            ("description", Value::String(s)) => p.description = Some(s.clone()),
            ("notification", Value::String(s)) => p.notification = Some(s.clone()),
            ("enabled", Value::Bool(b)) => p.enabled = Some(*b),
            ("abort", Value::Bool(b)) => p.abort = Some(*b),
            ("alert", def) => p.alert = Some(check_definition(&current.source, Some(def))?),
            _ => {}
        }
    }
    tx.alert_update(id, &p)?;
    Ok(json!({ "id": id }))
}

/// Deletes an alert and its attachments.
pub fn delete(tx: &dyn WriteTx, id: &str) -> Result<Value> {
    row(tx, id)?;
    tx.alert_delete(id)?;
    Ok(json!({}))
}

/// `{"status": "ok"|"critical"}` of an alert on a run.
pub fn status(tx: &dyn ReadTx, id: &str, run: &str) -> Result<Value> {
    row(tx, id)?;
    tx.run_alert_status(run, id)?
        .map(|s| json!({ "status": s }))
        .ok_or_else(|| Error::not_found(format!("alert {id} is not attached to run {run}")))
}

/// A user sets an alert's state on a run (attaching it if needed).
pub fn set_status(tx: &dyn WriteTx, id: &str, run: &str, status: &str) -> Result<Value> {
    if status != "ok" && status != "critical" {
        return Err(Error::invalid("'status' must be ok or critical"));
    }
    let alert = row(tx, id)?;
    runs::status_of(tx, run)?;
    if !alert.enabled {
        return Err(Error::conflict(format!("alert {id} is disabled")));
    }
    tx.attach_alert(run, id)?;
    set_state(tx, run, &alert, status)?;
    Ok(json!({}))
}

/// Moves `run`'s state of `alert` to `status`, recording the change and
/// requesting an abort when an aborting alert goes critical.
pub fn set_state(tx: &dyn WriteTx, run: &str, alert: &AlertRow, status: &str) -> Result<()> {
    let old = tx.run_alert_status(run, &alert.id)?.unwrap_or_default();
    if old == status {
        return Ok(());
    }
    let now = now_us();
    tx.set_alert_state(run, &alert.id, status, now)?;
    let level = if status == "critical" {
        "warning"
    } else {
        "info"
    };
    events::record(
        tx,
        run,
        now,
        level,
        &format!(
            "[simtrack] alert '{}' changed from {old} to {status}",
            alert.name
        ),
    )?;
    if status == "critical" && alert.abort {
        runs::request_abort(tx, run, &format!("alert '{}' is critical", alert.name))?;
    }
    Ok(())
}

fn definition(a: &AlertRow) -> Value {
    a.alert
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
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
pub fn metric_condition(tx: &dyn ReadTx, series: i64, def: &Value) -> Result<Option<bool>> {
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
pub fn on_metrics(tx: &dyn WriteTx, run: &str, names: &[&str]) -> Result<()> {
    for alert in tx.attached_enabled(run, "metrics")? {
        let def = definition(&alert);
        let metric = def["metric"].as_str().unwrap_or_default();
        if !names.contains(&metric) {
            continue;
        }
        let Some(series) = tx.series_id(run, metric)? else {
            continue;
        };
        if let Some(critical) = metric_condition(tx, series, &def)? {
            set_state(tx, run, &alert, if critical { "critical" } else { "ok" })?;
        }
    }
    Ok(())
}

/// Re-evaluates `run`'s event-pattern alerts: critical while an event whose
/// message contains the pattern lies within the window of the newest event.
pub fn on_events(tx: &dyn WriteTx, run: &str) -> Result<()> {
    let alerts = tx.attached_enabled(run, "events")?;
    if alerts.is_empty() {
        return Ok(());
    }
    let Some(newest) = tx.newest_event(run, events::SYSTEM_PREFIX)? else {
        return Ok(());
    };
    for alert in alerts {
        let def = definition(&alert);
        let pattern = def["pattern"].as_str().unwrap_or_default();
        let hit = tx.event_contains(
            run,
            newest - window_us(&def),
            events::SYSTEM_PREFIX,
            pattern,
        )?;
        set_state(tx, run, &alert, if hit { "critical" } else { "ok" })?;
    }
    Ok(())
}

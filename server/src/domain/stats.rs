//! Server statistics (`/api/stats`): run counts by state for the caller's
//! dashboard, and per-user totals (runs, alerts, tags, files, their volume,
//! events, metric points) for the administrator's view.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Result;
use crate::storage::{ReadTx, RunProjection};

/// `{"runs": {"created", "running", "completed", "data"}}`: runs by state
/// (`data`: every run, whatever its state).
pub fn runs(tx: &dyn ReadTx) -> Result<Value> {
    let rows = tx.run_scan(&RunProjection::default())?;
    let count = |s: &str| rows.iter().filter(|r| r.status == s).count();
    Ok(json!({
        "runs": {
            "created": count("created"),
            "running": count("running"),
            "completed": count("completed"),
            "data": rows.len(),
        }
    }))
}

#[derive(Default)]
struct Totals {
    runs: u64,
    alerts: u64,
    tags: u64,
    files: u64,
    volume: u64,
    events: u64,
    metrics: u64,
}

/// `{USER: {runs, alerts, tags, files, volume, events, metrics}}` for every
/// user who owns something, and always for `me`.
pub fn per_user(tx: &dyn ReadTx, me: &str) -> Result<Value> {
    let mut by: BTreeMap<String, Totals> = BTreeMap::new();
    by.entry(me.to_owned()).or_default();
    for r in tx.run_scan(&RunProjection::default())? {
        let events = tx.events_count(&r.id, None)?;
        let points: i64 = tx.series_of(&r.id)?.iter().map(|s| s.count).sum();
        let t = by.entry(r.user).or_default();
        t.runs += 1;
        t.events += events;
        t.metrics += points.max(0) as u64;
    }
    for a in tx.alert_list()? {
        by.entry(a.user).or_default().alerts += 1;
    }
    for t in tx.tag_list()? {
        by.entry(t.user).or_default().tags += 1;
    }
    for a in tx.artifact_list()? {
        let t = by.entry(a.user).or_default();
        t.files += 1;
        t.volume += a.size;
    }
    Ok(Value::Object(
        by.into_iter()
            .map(|(user, t)| {
                (
                    user,
                    json!({
                        "runs": t.runs, "alerts": t.alerts, "tags": t.tags, "files": t.files,
                        "volume": t.volume, "events": t.events, "metrics": t.metrics,
                    }),
                )
            })
            .collect(),
    ))
}

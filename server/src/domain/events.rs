//! Events: a run's log lines, and the `[simtrack] ...` lines the server
//! itself records (status changes, alerts, aborts, lost runs).

use serde_json::{Value, json};
use simtrack::model::MAX_EVENT_BYTES;

use super::{Error, Result, filters, runs};
use crate::storage::{EventRow, ReadTx, WriteTx};
use crate::util::{fmt_ts, parse_ts};

/// Accepted `log_level` values.
pub const LEVELS: [&str; 5] = ["debug", "info", "warning", "error", "critical"];
/// Prefix of the events the server records itself.
pub use crate::storage::SYSTEM_EVENT_PREFIX as SYSTEM_PREFIX;

/// One event as a client sends it.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The text.
    pub message: String,
    /// One of [`LEVELS`] (default `info`).
    pub log_level: Option<String>,
    /// When (default: now).
    pub timestamp: Option<String>,
}

/// A validated event: `(time µs, level, message)`.
pub type EventRecord = (i64, String, String);

/// The level a plain `info` line announces itself with, as C and Fortran
/// solvers print them: `ERROR: ...`, `[warning] ...`, `FATAL ...`.
pub fn level_of(message: &str) -> Option<&'static str> {
    let head = message.trim_start();
    let head = head.strip_prefix('[').unwrap_or(head);
    let word: String = head
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .take(9)
        .collect::<String>()
        .to_ascii_lowercase();
    let rest = &head[word.len()..];
    if !(rest.is_empty() || rest.starts_with([':', ']', ' ', '!'])) {
        return None;
    }
    Some(match word.as_str() {
        "debug" => "debug",
        "warning" | "warn" => "warning",
        "error" => "error",
        "critical" | "fatal" => "critical",
        _ => return None,
    })
}

/// Validates a batch of events received at `now`.
pub fn validate(events: Vec<NewEvent>, now: i64) -> Result<Vec<EventRecord>> {
    let mut rows = Vec::with_capacity(events.len());
    for (i, e) in events.into_iter().enumerate() {
        if e.message.len() > MAX_EVENT_BYTES {
            return Err(Error::invalid(format!(
                "events[{i}].message is longer than {MAX_EVENT_BYTES} bytes"
            )));
        }
        let level = match e.log_level {
            None => level_of(&e.message).unwrap_or("info").to_owned(),
            Some(l) if l == "info" => level_of(&e.message).unwrap_or("info").to_owned(),
            Some(l) => l,
        };
        if !LEVELS.contains(&level.as_str()) {
            return Err(Error::invalid(format!(
                "events[{i}].log_level must be one of {}",
                LEVELS.join(", ")
            )));
        }
        let ts = match e.timestamp {
            None => now,
            Some(t) => parse_ts(&t).ok_or_else(|| {
                Error::invalid(format!(
                    "events[{i}].timestamp must look like 2024-01-02T03:04:05.000000"
                ))
            })?,
        };
        rows.push((ts, level, e.message));
    }
    Ok(rows)
}

/// Stores one event.
pub fn record(tx: &dyn WriteTx, run: &str, ts: i64, level: &str, message: &str) -> Result<()> {
    tx.event_insert(run, ts, level, message)?;
    Ok(())
}

/// Stores a batch of a run's events received at `now`: the run is alive,
/// and its event alerts are re-evaluated in the same transaction.
pub fn ingest(tx: &dyn WriteTx, run: &str, rows: &[EventRecord], now: i64) -> Result<Value> {
    runs::batch_run_status(tx, run)?;
    tx.events_insert(run, rows)?;
    runs::touch(tx, run, now)?;
    super::alerts::on_events(tx, run)?;
    Ok(json!({}))
}

/// Whether the server recorded this event itself (status changes, alerts,
/// aborts, lost runs) rather than the run logging it.
pub fn is_system(message: &str) -> bool {
    message.starts_with(SYSTEM_PREFIX)
}

/// A run's events matching `fs` → `{data, count}` (`count` counts every
/// match; `data` holds `limit` of them from `start`). The server's own
/// events are left out unless `system`: a client reading back what it
/// logged must find exactly that.
pub fn list(
    tx: &dyn ReadTx,
    run: &str,
    fs: &[filters::Filter],
    (start, limit): (usize, usize),
    me: &str,
    system: bool,
) -> Result<Value> {
    filters::check_fields(
        fs,
        "events",
        |k| matches!(k, "message" | "event.message" | "log_level" | "timestamp"),
        "message, log_level and timestamp",
    )?;
    runs::status_of(tx, run)?;
    let exclude = (!system).then_some(SYSTEM_PREFIX);
    let doc = |e: EventRow| json!({"message": e.message, "log_level": e.log_level, "timestamp": fmt_ts(e.ts)});
    let mut data = Vec::new();
    let (pred, exact) = filters::event_pred_all(fs);
    if exact {
        // The database answers: a run of millions of events costs a count
        // and a walk to `start` over the matching events (an index walk
        // without filters), and memory for the page alone.
        let total = tx.events_count_where(run, exclude, &pred)?;
        if limit > 0 && (start as u64) < total {
            tx.events_visit_where(run, exclude, &pred, start as u64, &mut |e| {
                data.push(doc(e));
                data.len() < limit
            })?;
        }
        return Ok(json!({ "data": data, "count": total }));
    }
    // The rest of the filters are read here: every event the database
    // selected (all of them when it could select none) is visited, one at
    // a time.
    let mut total = 0usize;
    tx.events_visit_where(run, exclude, &pred, 0, &mut |e| {
        let d = doc(e);
        if filters::all(fs, &d, me) {
            if total >= start && data.len() < limit {
                data.push(d);
            }
            total += 1;
        }
        true
    })?;
    Ok(json!({ "data": data, "count": total }))
}

#[cfg(test)]
mod level_tests {
    use super::level_of;

    #[test]
    fn solver_prefixes_give_levels() {
        assert_eq!(level_of("ERROR: diverged"), Some("error"));
        assert_eq!(level_of("  [warning] cfl > 1"), Some("warning"));
        assert_eq!(level_of("Fatal error in MPI"), Some("critical"));
        assert_eq!(level_of("WARN: x"), Some("warning"));
        assert_eq!(level_of("errors are fine"), None);
        assert_eq!(level_of("step 10 residual 1e-3"), None);
    }
}

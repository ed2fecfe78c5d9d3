//! Runs: creation, partial updates, deletion, heartbeats, abort requests,
//! and the one run query engine (filters, sorting, paging) that the Simvue
//! API and the UI both use.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};
use simtrack::model::{
    DEFAULT_HEARTBEAT_TIMEOUT_SECS, MAX_METADATA_BYTES, MAX_NAME_BYTES, RUN_STATUSES, RunStatus,
};

use super::{Error, Result, check_name, events, filters, folders, parse_json, sorting};
use crate::storage::{
    JsonColumn, JsonPath, MetricStat, ReadTx, RunField, RunKey, RunPage, RunPageAnswer, RunPatch,
    RunPred, RunProjection, RunRow, RunScanRow, RunsVisibleTo, WriteTx,
};
use crate::util::{fmt_ts, new_id, now_us, parse_ts};

pub(crate) fn is_terminal(s: &str) -> bool {
    RunStatus::from_name(s).is_some_and(RunStatus::is_terminal)
}

fn opt_ts(v: Option<i64>) -> Value {
    v.map_or(Value::Null, |t| Value::String(fmt_ts(t)))
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("run {id} not found"))
}

/// The run document without `alerts` and `metrics`.
fn base_doc(r: &RunRow) -> Value {
    let runtime = r.started.map(|s| {
        // A lost run stopped at its last contact: its clock does not run on.
        let end = r.endtime.unwrap_or_else(|| {
            if r.status == RunStatus::Lost.as_str() {
                r.last_seen
            } else {
                now_us()
            }
        });
        let d = (end - s).max(0);
        format!(
            "{:02}:{:02}:{:02}.{:06}",
            d / 3_600_000_000,
            (d / 60_000_000) % 60,
            (d / 1_000_000) % 60,
            d % 1_000_000
        )
    });
    json!({
        "id": r.id,
        "name": r.name,
        "folder": r.folder,
        "status": r.status,
        "description": r.description,
        "tags": parse_json(&r.tags, json!([])),
        "metadata": parse_json(&r.metadata, json!({})),
        "system": parse_json(&r.system, json!({})),
        "created": fmt_ts(r.created),
        "started": opt_ts(r.started),
        "endtime": opt_ts(r.endtime),
        "modified": fmt_ts(r.modified),
        "runtime": runtime,
        "ttl": r.ttl,
        "heartbeat_timeout": r.heartbeat_timeout.map(|t| if t.fract() == 0.0 { json!(t as i64) } else { json!(t) }),
        "notifications": parse_json(&r.notifications, json!({"state": "none"})),
        "visibility": parse_json(&r.visibility, json!({"tenant": false, "public": false, "users": []})),
        "user": r.user,
        "last_heartbeat": fmt_ts(r.last_seen),
        "abort_requested": r.abort_requested,
        "starred": r.starred,
    })
}

/// Most metric summaries a run carries in a list (`GET /api/runs`): a run
/// with 100k metric names must not make every list page megabytes. The
/// single-run document carries them all (bounded by the per-run cap on
/// names); `metrics=[...]` on a list picks which summaries to carry.
pub const LIST_METRICS: usize = 100;

fn nonfinite(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

fn summaries(rows: Vec<crate::storage::SeriesRow>) -> Value {
    Value::Object(
        rows.into_iter()
            .map(|s| {
                let mut doc = json!({"count": s.count, "min": s.min, "max": s.max, "last": s.last, "step": s.last_step});
                // JSON has no NaN/±Inf: such a value reads `null` as before,
                // and `nonfinite` spells it ("NaN", "Infinity", "-Infinity").
                let spelled: Map<String, Value> = [("min", s.min), ("max", s.max), ("last", s.last)]
                    .into_iter()
                    // SQLite keeps NaN as NULL: a value missing from a
                    // series that has points was a NaN.
                    .filter_map(|(k, v)| match v {
                        None if s.count > 0 => Some((k, f64::NAN)),
                        Some(v) if !v.is_finite() => Some((k, v)),
                        _ => None,
                    })
                    .map(|(k, v)| (k.to_owned(), Value::String(nonfinite(v).to_owned())))
                    .collect();
                if !spelled.is_empty() {
                    doc["nonfinite"] = Value::Object(spelled);
                }
                (s.name, doc)
            })
            .collect(),
    )
}

/// The full run document, or not found.
pub fn load(tx: &dyn ReadTx, id: &str) -> Result<Value> {
    let mut d = load_without_metrics(tx, id)?;
    d["metrics"] = summaries(tx.series_of(id)?);
    Ok(d)
}

/// A run as a list shows it: the whole document, but at most
/// [`LIST_METRICS`] metric summaries (the first by name, or those named),
/// with `metrics_omitted` saying how many were left out.
fn load_listed(tx: &dyn ReadTx, id: &str, names: Option<&[String]>) -> Result<Value> {
    let mut d = load_without_metrics(tx, id)?;
    let rows = tx.series_some(id, names, LIST_METRICS)?;
    if names.is_none() && rows.len() >= LIST_METRICS {
        let total = tx.series_count(id)?;
        if total > rows.len() as u64 {
            d["metrics_omitted"] = json!(total - rows.len() as u64);
        }
    }
    d["metrics"] = summaries(rows);
    Ok(d)
}

fn load_without_metrics(tx: &dyn ReadTx, id: &str) -> Result<Value> {
    let row = tx.run_get(id)?.ok_or_else(|| not_found(id))?;
    let mut d = base_doc(&row);
    d["alerts"] = Value::Array(
        tx.attached(Some(id))?
            .iter()
            .map(super::alerts::attached_doc)
            .collect(),
    );
    Ok(d)
}

/// Merges `new` into `old`: objects key by key (recursively), anything
/// else replaced.
fn merge_deep(old: &mut Value, new: &Value) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for (k, v) in n {
                match o.get_mut(k) {
                    Some(slot) => merge_deep(slot, v),
                    None => {
                        o.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (o, n) => *o = n.clone(),
    }
}

/// The status of the run a batch of metrics or events names: a batch
/// naming no run that exists is invalid input (422), as Simvue answers,
/// not a missing resource.
pub fn batch_run_status(tx: &dyn ReadTx, id: &str) -> Result<String> {
    tx.run_status(id)?
        .ok_or_else(|| Error::invalid(format!("the batch names run {id}, which does not exist")))
}

/// Not found unless run `id` exists; its status otherwise.
pub fn status_of(tx: &dyn ReadTx, id: &str) -> Result<String> {
    tx.run_status(id)?.ok_or_else(|| not_found(id))
}

fn string_list(v: &Value, what: &str) -> Result<Vec<String>> {
    let a = v
        .as_array()
        .ok_or_else(|| Error::invalid(format!("'{what}' must be a list of strings")))?;
    a.iter()
        .map(|t| {
            let s = t
                .as_str()
                .ok_or_else(|| Error::invalid(format!("'{what}' must be a list of strings")))?;
            check_name(what, s, MAX_NAME_BYTES)?;
            Ok(s.to_owned())
        })
        .collect()
}

fn object_text(v: &Value, what: &str) -> Result<String> {
    if !v.is_object() {
        return Err(Error::invalid(format!("'{what}' must be an object")));
    }
    let s = v.to_string();
    if s.len() > MAX_METADATA_BYTES {
        return Err(Error::invalid(format!(
            "'{what}' is larger than {MAX_METADATA_BYTES} bytes"
        )));
    }
    Ok(s)
}

fn timestamp_field(body: &Map<String, Value>, key: &str) -> Result<Option<i64>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_ts(s).map(Some).ok_or_else(|| {
            Error::invalid(format!(
                "'{key}' must be a timestamp like 2024-01-02T03:04:05.000000"
            ))
        }),
        Some(_) => Err(Error::invalid(format!(
            "'{key}' must be a timestamp string"
        ))),
    }
}

// One validator per field, shared by create and update, so a field is
// accepted or refused the same way whichever request carries it.

fn name_field(v: &Value) -> Result<String> {
    let n = v
        .as_str()
        .ok_or_else(|| Error::invalid("'name' must be a string"))?;
    check_name("run name", n, MAX_NAME_BYTES)?;
    Ok(n.to_owned())
}

fn folder_field(v: &Value) -> Result<String> {
    folders::normalise(
        v.as_str()
            .ok_or_else(|| Error::invalid("'folder' must be a string"))?,
    )
}

fn description_field(v: &Value) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(d) if d.len() <= MAX_METADATA_BYTES => Ok(Some(d.clone())),
        Value::String(_) => Err(Error::invalid(format!(
            "'description' is longer than {MAX_METADATA_BYTES} bytes"
        ))),
        _ => Err(Error::invalid("'description' must be a string")),
    }
}

fn ttl_field(v: &Value) -> Result<Option<i64>> {
    match v {
        Value::Null => Ok(None),
        v => {
            Ok(Some(v.as_i64().ok_or_else(|| {
                Error::invalid("'ttl' must be an integer")
            })?))
        }
    }
}

fn heartbeat_timeout_field(v: &Value) -> Result<Option<f64>> {
    match v {
        Value::Null => Ok(None),
        v => Ok(Some(v.as_f64().filter(|t| *t > 0.0).ok_or_else(|| {
            Error::invalid("'heartbeat_timeout' must be a positive number")
        })?)),
    }
}

fn check_status(s: &Value) -> Result<String> {
    match s.as_str() {
        Some(s) if RunStatus::from_name(s).is_some() => Ok(s.to_owned()),
        _ => Err(Error::invalid(format!(
            "'status' must be one of {}",
            RUN_STATUSES.map(RunStatus::as_str).join(", ")
        ))),
    }
}

/// A validated new run, ready to store ([`create`]).
#[derive(Debug)]
pub struct NewRun {
    row: RunRow,
    alerts: Vec<String>,
}

/// Validates a `POST /api/runs` body for `user`.
pub fn new_run(body: &Map<String, Value>, user: &str) -> Result<NewRun> {
    let id = new_id();
    let name = match body.get("name") {
        None | Some(Value::Null) => format!("run-{}", id[..8].to_ascii_lowercase()),
        Some(n) => name_field(n)?,
    };
    let folder = match body.get("folder") {
        None | Some(Value::Null) => "/".to_owned(),
        Some(f) => folder_field(f)?,
    };
    let status = match body.get("status") {
        None | Some(Value::Null) => "running".to_owned(),
        Some(s) => check_status(s)?,
    };
    let description = match body.get("description") {
        None => None,
        Some(d) => description_field(d)?,
    };
    let tags = match body.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(t) => string_list(t, "tags")?,
    };
    let obj = |k: &str, d: Value| -> Result<String> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(d.to_string()),
            Some(v) => object_text(v, k),
        }
    };
    let metadata = obj("metadata", json!({}))?;
    let system = obj("system", json!({}))?;
    let notifications = obj("notifications", json!({"state": "none"}))?;
    let visibility = obj(
        "visibility",
        json!({"tenant": false, "public": false, "users": []}),
    )?;
    let ttl = match body.get("ttl") {
        None => None,
        Some(v) => ttl_field(v)?,
    };
    let heartbeat_timeout = match body.get("heartbeat_timeout") {
        None => Some(DEFAULT_HEARTBEAT_TIMEOUT_SECS),
        Some(v) => heartbeat_timeout_field(v)?,
    };
    let now = now_us();
    let created = timestamp_field(body, "created")?.unwrap_or(now);
    let started = timestamp_field(body, "started")?.or((status == "running").then_some(now));
    let endtime = timestamp_field(body, "endtime")?.or(is_terminal(&status).then_some(now));
    let alerts = match body.get("alerts") {
        None | Some(Value::Null) => Vec::new(),
        Some(a) => string_list(a, "alerts")?,
    };
    Ok(NewRun {
        row: RunRow {
            id,
            name,
            folder,
            status,
            description,
            tags: Value::from(tags).to_string(),
            metadata,
            system,
            created,
            started,
            endtime,
            modified: now,
            ttl,
            heartbeat_timeout,
            notifications,
            visibility,
            user: user.to_owned(),
            last_seen: now,
            abort_requested: false,
            abort_reason: None,
            starred: false,
        },
        alerts,
    })
}

/// Stores a new run (creating its folder) → `{"id", "name"}`.
pub fn create(tx: &dyn WriteTx, run: &NewRun) -> Result<Value> {
    folders::ensure(tx, &run.row.folder)?;
    let tags: Vec<String> = serde_json::from_str(&run.row.tags).unwrap_or_default();
    super::tags::register(tx, &tags, &run.row.user)?;
    tx.run_insert(&run.row)?;
    set_alerts(tx, &run.row.id, &run.alerts)?;
    super::alerts::attach_by_tags(tx, &run.row.id, &run.row.user, &tags)?;
    Ok(json!({ "id": run.row.id, "name": run.row.name }))
}

/// Replaces the set of alerts attached to a run, keeping the state of
/// those that stay.
fn set_alerts(tx: &dyn WriteTx, run: &str, ids: &[String]) -> Result<()> {
    for a in ids {
        let Some(alert) = tx.alert_get(a)? else {
            return Err(Error::invalid(format!("alert {a} does not exist")));
        };
        super::alerts::attach(tx, run, &alert)?;
    }
    tx.detach_alerts_except(run, ids)?;
    Ok(())
}

/// Applies a partial update: `metadata` merges, `tags` and `alerts`
/// replace, a terminal `status` sets `endtime`, a change of status is
/// recorded as an event.
pub fn update(tx: &dyn WriteTx, id: &str, body: &Map<String, Value>) -> Result<()> {
    let current = status_of(tx, id)?;
    let now = now_us();
    let mut p = RunPatch {
        modified: Some(now),
        ..RunPatch::default()
    };
    let mut status_event = None;
    for (k, v) in body {
        // A null document field means "unchanged" (the simvue client sends
        // `"system": null` when it has nothing new to say).
        if v.is_null()
            && matches!(
                k.as_str(),
                "system" | "metadata" | "notifications" | "visibility" | "tags" | "alerts"
            )
        {
            continue;
        }
        match k.as_str() {
            "status" => {
                let s = check_status(v)?;
                if is_terminal(&s) {
                    p.endtime = Some(Some(timestamp_field(body, "endtime")?.unwrap_or(now)));
                } else if s == "running" {
                    if p.started.is_none() {
                        let row = tx.run_get(id)?.ok_or_else(|| not_found(id))?;
                        p.started = Some(Some(row.started.unwrap_or(now)));
                    }
                    p.endtime = Some(None);
                    p.last_seen = Some(now);
                }
                if s != current {
                    status_event = Some(format!(
                        "[simtrack] run status changed from {current} to {s}"
                    ));
                }
                p.status = Some(s);
            }
            "endtime" | "started" | "created" => {
                if let Some(t) = timestamp_field(body, k)? {
                    match k.as_str() {
                        "endtime" if p.status.as_deref().is_none_or(|s| !is_terminal(s)) => {
                            p.endtime = Some(Some(t));
                        }
                        "started" => p.started = Some(Some(t)),
                        "created" => p.created = Some(t),
                        _ => {}
                    }
                }
            }
            "name" => p.name = Some(name_field(v)?),
            "description" => p.description = Some(description_field(v)?),
            "folder" => {
                let f = folder_field(v)?;
                folders::ensure(tx, &f)?;
                p.folder = Some(f);
            }
            "tags" => {
                let names = string_list(v, "tags")?;
                let owner = tx.run_get(id)?.ok_or_else(|| not_found(id))?.user;
                super::tags::register(tx, &names, &owner)?;
                p.tags = Some(Value::from(names).to_string());
            }
            "metadata" => {
                let Value::Object(new) = v else {
                    return Err(Error::invalid("'metadata' must be an object"));
                };
                let old = tx.run_get(id)?.ok_or_else(|| not_found(id))?.metadata;
                let mut merged = parse_json(&old, json!({}))
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                for (k, v) in new {
                    // `simvue` holds what clients record about the run's
                    // data (the simvue client's and the library's metric
                    // units, `simvue.metrics.NAME.units`), sent a piece at
                    // a time: merged, not replaced.
                    match (k.as_str(), merged.get_mut(k)) {
                        ("simvue", Some(old)) => merge_deep(old, v),
                        _ => {
                            merged.insert(k.clone(), v.clone());
                        }
                    }
                }
                p.metadata = Some(object_text(&Value::Object(merged), "metadata")?);
            }
            "system" => p.system = Some(object_text(v, k)?),
            "notifications" => p.notifications = Some(object_text(v, k)?),
            "visibility" => p.visibility = Some(object_text(v, k)?),
            "ttl" => p.ttl = Some(ttl_field(v)?),
            "heartbeat_timeout" => p.heartbeat_timeout = Some(heartbeat_timeout_field(v)?),
            "alerts" => set_alerts(tx, id, &string_list(v, "alerts")?)?,
            "starred" => {
                p.starred = Some(
                    v.as_bool()
                        .ok_or_else(|| Error::invalid("'starred' must be a boolean"))?,
                );
            }
            _ => {}
        }
    }
    tx.run_update(id, &p)?;
    if body.get("tags").is_some_and(|t| !t.is_null())
        || body.get("alerts").is_some_and(|a| !a.is_null())
    {
        // Alerts with `auto` follow the run's tags (also when the client
        // replaces the run's alert list without them).
        let r = tx.run_get(id)?.ok_or_else(|| not_found(id))?;
        let tags: Vec<String> = serde_json::from_str(&r.tags).unwrap_or_default();
        super::alerts::attach_by_tags(tx, id, &r.user, &tags)?;
    }
    if let Some(message) = status_event {
        events::record(tx, id, now, "info", &message)?;
        if let Some(s) = &p.status {
            super::notify::on_run_status(tx, id, s)?;
        }
    }
    Ok(())
}

/// Removes a run and everything recorded for it.
pub fn delete(tx: &dyn WriteTx, id: &str) -> Result<()> {
    status_of(tx, id)?;
    tx.run_delete(id)?;
    Ok(())
}

/// Marks the run alive now (a `lost` run that reports again is running).
pub fn touch(tx: &dyn WriteTx, id: &str, now: i64) -> Result<()> {
    let lost = status_of(tx, id)? == RunStatus::Lost.as_str();
    let mut p = RunPatch {
        last_seen: Some(now),
        ..RunPatch::default()
    };
    if lost {
        p.status = Some(RunStatus::Running.as_str().to_owned());
        p.endtime = Some(None);
    }
    tx.run_update(id, &p)?;
    if lost {
        events::record(
            tx,
            id,
            now,
            "info",
            "[simtrack] run reported again after being marked lost",
        )?;
    }
    Ok(())
}

/// Whether an abort was requested, and why.
pub fn abort_flag(tx: &dyn ReadTx, id: &str) -> Result<(bool, Option<String>)> {
    let r = tx.run_get(id)?.ok_or_else(|| not_found(id))?;
    Ok((r.abort_requested, r.abort_reason))
}

/// A heartbeat: the run is alive now → `{"last_heartbeat", "abort"}`.
pub fn heartbeat(tx: &dyn WriteTx, id: &str) -> Result<Value> {
    let now = now_us();
    touch(tx, id, now)?;
    let (abort, _) = abort_flag(tx, id)?;
    Ok(json!({ "last_heartbeat": fmt_ts(now), "abort": abort }))
}

/// Sets a run's abort flag (a user's request or an aborting alert) and
/// records the first request as an event.
pub fn request_abort(tx: &dyn WriteTx, id: &str, reason: &str) -> Result<()> {
    let (already, _) = abort_flag(tx, id)?;
    tx.run_update(
        id,
        &RunPatch {
            abort: Some((true, Some(reason.to_owned()))),
            ..RunPatch::default()
        },
    )?;
    if !already {
        events::record(
            tx,
            id,
            now_us(),
            "warning",
            &format!("[simtrack] abort requested: {reason}"),
        )?;
    }
    Ok(())
}

/// A run list query: Simvue filters, sort keys (`(key, descending)`), and
/// a page.
#[derive(Debug, Clone)]
pub struct Query {
    /// ANDed filters.
    pub filters: Vec<filters::Filter>,
    /// Sort keys, most significant first.
    pub sorting: Vec<(String, bool)>,
    /// First row of the page.
    pub start: usize,
    /// Rows in the page.
    pub count: usize,
    /// The metric summaries each listed run carries (at most
    /// [`LIST_METRICS`]); `None`: the first [`LIST_METRICS`] by name.
    pub metrics: Option<Vec<String>>,
}

/// Parses `sorting=[{"id": key, "desc": bool}, ...]` (default: by
/// creation); a key runs cannot be sorted by is refused.
pub fn parse_sorting(s: Option<&str>) -> Result<Vec<(String, bool)>> {
    Ok(sorting::parse(s, "runs", run_sortable, RUN_SORT_KEYS)?
        .unwrap_or_else(|| vec![("created".into(), false)]))
}

/// The columns of a run that lists filter and sort on, besides
/// `metadata.KEY`, `system.KEY` and the ones only filters or only sorting read.
const RUN_FIELDS: [&str; 13] = [
    "id",
    "name",
    "folder",
    "folder.path",
    "status",
    "description",
    "user",
    "created",
    "started",
    "endtime",
    "modified",
    "starred",
    "tags",
];

/// What runs filter on, for the message refusing anything else.
const RUN_FILTER_FIELDS: &str = "id, name, folder.path, status, description, user, created, \
    started, endtime, modified, starred, tags, metadata.KEY, system.KEY and alert.name, \
    alert.status, alert.id or alert.acknowledged";

/// Whether a filter may read `field` of runs: what
/// [`filters::Filter::matches`] finds in the run documents the list builds.
fn run_filterable(field: &str) -> bool {
    RUN_FIELDS.contains(&field)
        || matches!(
            field,
            "alert.name" | "alert.status" | "alert.id" | "alert.acknowledged"
        )
        || is_json_field(field)
}

/// What runs sort by, for the message refusing anything else.
const RUN_SORT_KEYS: &str = "id, name, folder, status, description, user, created, started, \
    endtime, modified, starred, tags, metadata.KEY, system.KEY or metrics.NAME.STAT \
    (STAT one of last, min, max, count)";

/// Whether runs can be sorted by `key`.
fn run_sortable(key: &str) -> bool {
    RUN_FIELDS.contains(&key) || metric_sort_key(key).is_some() || is_json_field(key)
}

/// `metadata.KEY` or `system.KEY`, KEY not empty.
fn is_json_field(field: &str) -> bool {
    json_path(field).is_some_and(|p| p.keys.iter().any(|k| !k.is_empty()))
}

/// `metrics.NAME.STAT` (STAT one of last, min, max, count) → `(NAME, STAT)`.
fn metric_sort_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("metrics.")?;
    let (name, stat) = rest.rsplit_once('.')?;
    (!name.is_empty() && matches!(stat, "last" | "min" | "max" | "count")).then_some((name, stat))
}

/// The top-level document key a filter field or sort key reads.
fn top_key(field: &str) -> &str {
    match field {
        "" => "starred",
        "folder.path" => "folder",
        f if f.starts_with("alert.") => "alerts",
        f => f.split('.').next().unwrap_or(f),
    }
}

/// The part of a run's document that a query reads: its id and the
/// top-level fields in `want` (building the rest for every run would be
/// most of a list's cost).
fn scan_doc(r: RunScanRow, paths: &[JsonPath], want: &HashSet<&str>) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(r.id));
    let mut put = |k: &str, v: &dyn Fn() -> Value| {
        if want.contains(k) {
            m.insert(k.to_owned(), v());
        }
    };
    put("name", &|| Value::String(r.name.clone()));
    put("folder", &|| Value::String(r.folder.clone()));
    put("status", &|| Value::String(r.status.clone()));
    put("description", &|| json!(r.description));
    put("created", &|| Value::String(fmt_ts(r.created)));
    put("started", &|| opt_ts(r.started));
    put("endtime", &|| opt_ts(r.endtime));
    put("modified", &|| Value::String(fmt_ts(r.modified)));
    put("user", &|| Value::String(r.user.clone()));
    put("starred", &|| Value::Bool(r.starred));
    let mut d = Value::Object(m);
    if let Some(text) = r.tags {
        d["tags"] = parse_json(&text, json!([]));
    }
    for (p, text) in paths.iter().zip(r.values) {
        let Some(text) = text else { continue };
        let top = match p.column {
            JsonColumn::Metadata => "metadata",
            JsonColumn::System => "system",
        };
        let mut slot = &mut d;
        for seg in std::iter::once(top).chain(p.keys.iter().map(String::as_str)) {
            if !slot.is_object() {
                *slot = json!({});
            }
            slot = &mut slot[seg];
        }
        *slot = parse_json(&text, Value::Null);
    }
    d
}

/// The JSON path a dotted field such as `metadata.solver.nx` reads, if it
/// reads into `metadata` or `system` (keys are split at `.` and otherwise
/// taken as they are: the storage addresses any key exactly).
fn json_path(field: &str) -> Option<JsonPath> {
    let (top, rest) = field.split_once('.')?;
    let column = match top {
        "metadata" => JsonColumn::Metadata,
        "system" => JsonColumn::System,
        _ => return None,
    };
    Some(JsonPath {
        column,
        keys: rest.split('.').map(str::to_owned).collect(),
    })
}

/// The sort keys as the database orders runs, when it can order them as
/// [`list_scan`] does: `None` for keys on tags or alerts. Keys that read
/// nothing a run document holds leave the order alone, and are left out.
fn run_keys(sorting: &[(String, bool)]) -> Option<Vec<(RunKey, bool)>> {
    let mut out = Vec::new();
    for (key, desc) in sorting {
        let k = match key.as_str() {
            "id" => RunKey::Field(RunField::Id),
            "name" => RunKey::Field(RunField::Name),
            "folder" | "folder.path" => RunKey::Field(RunField::Folder),
            "status" => RunKey::Field(RunField::Status),
            "description" => RunKey::Field(RunField::Description),
            "user" => RunKey::Field(RunField::User),
            "created" => RunKey::Field(RunField::Created),
            "started" => RunKey::Field(RunField::Started),
            "endtime" => RunKey::Field(RunField::Endtime),
            "modified" => RunKey::Field(RunField::Modified),
            "starred" => RunKey::Field(RunField::Starred),
            k if k.starts_with("tags") || k.starts_with("alert") => return None,
            k => match (metric_sort_key(k), json_path(k)) {
                (Some((name, stat)), _) => RunKey::Metric(
                    name.to_owned(),
                    match stat {
                        "min" => MetricStat::Min,
                        "max" => MetricStat::Max,
                        "count" => MetricStat::Count,
                        _ => MetricStat::Last,
                    },
                ),
                (None, Some(p)) => RunKey::Json(p),
                (None, None) => continue,
            },
        };
        out.push((k, *desc));
    }
    Some(out)
}

/// Runs matching `q` for caller `me` → `{data, count}`. The database
/// filters, sorts, counts and pages when it can express every filter and
/// sort key exactly; otherwise it narrows the runs to what the filters it
/// can express select, and [`list_scan`] does the rest.
pub fn list(tx: &dyn ReadTx, q: &Query, me: &str) -> Result<Value> {
    filters::check_fields(&q.filters, "runs", run_filterable, RUN_FILTER_FIELDS)?;
    let pred = filters::run_pred_all(&q.filters, me);
    if let Some((filter, true)) = &pred
        && let Some(order) = run_keys(&q.sorting)
    {
        let page = RunPage {
            // What the transaction shows, as `run_scan` does: the access
            // layer's view sets the caller's.
            visible_to: RunsVisibleTo::All,
            filter: filter.clone(),
            order,
            offset: q.start as u64,
            limit: q.count as u64,
        };
        if let RunPageAnswer::Page { ids, total } = tx.run_page(&page)? {
            let data = ids
                .iter()
                .map(|id| load_listed(tx, id, q.metrics.as_deref()))
                .collect::<Result<Vec<Value>>>()?;
            return Ok(json!({ "data": data, "count": total }));
        }
    }
    list_scan(tx, q, me, pred.map(|(p, _)| p))
}

/// [`list`] in memory: every run (of those `narrow` selects, a superset of
/// the matches) as a document of the fields the query reads, filtered,
/// sorted and paged here; the page's runs are then loaded whole.
pub fn list_scan(tx: &dyn ReadTx, q: &Query, me: &str, narrow: Option<RunPred>) -> Result<Value> {
    let reads = |prefix: &str| {
        q.filters
            .iter()
            .any(|f| f.fields().iter().any(|x| x.starts_with(prefix)))
            || q.sorting.iter().any(|(k, _)| k.starts_with(prefix))
    };
    let (need_tags, need_alerts) = (reads("tags"), reads("alert"));
    let want: HashSet<&str> = q
        .filters
        .iter()
        .flat_map(|f| f.fields())
        .map(top_key)
        .chain(q.sorting.iter().map(|(k, _)| top_key(k)))
        .collect();
    let mut json_paths: Vec<JsonPath> = q
        .filters
        .iter()
        .flat_map(|f| f.fields())
        .chain(q.sorting.iter().map(|(k, _)| k.as_str()))
        .filter_map(json_path)
        .collect();
    json_paths.sort();
    json_paths.dedup();
    let mut attached: HashMap<String, Vec<Value>> = HashMap::new();
    if need_alerts {
        for a in tx.attached(None)? {
            let d = super::alerts::attached_doc(&a);
            attached.entry(a.run_id).or_default().push(d);
        }
    }
    let projection = RunProjection {
        tags: need_tags,
        json_paths: json_paths.clone(),
        filter: narrow.filter(|p| *p != RunPred::True),
    };
    let mut docs: Vec<Value> = tx
        .run_scan(&projection)?
        .into_iter()
        .map(|r| scan_doc(r, &json_paths, &want))
        .collect();
    if need_alerts {
        for d in &mut docs {
            let id = d["id"].as_str().unwrap_or_default().to_owned();
            d["alerts"] = Value::Array(attached.remove(&id).unwrap_or_default());
        }
    }
    // Sorting by a metric (`metrics.NAME.STAT`, NAME may hold dots) reads
    // that metric's summary of every run in one query.
    let mut metric_keys: HashMap<&str, HashMap<String, Value>> = HashMap::new();
    for (key, _) in &q.sorting {
        if let Some((name, stat)) = metric_sort_key(key) {
            let by_run = tx
                .series_named(name)?
                .into_iter()
                .map(|(run, s)| {
                    let v = match stat {
                        "min" => s.min.map(Value::from),
                        "max" => s.max.map(Value::from),
                        "count" => Some(Value::from(s.count)),
                        _ => s.last.map(Value::from),
                    };
                    (run, v.unwrap_or(Value::Null))
                })
                .collect();
            metric_keys.insert(key.as_str(), by_run);
        }
    }
    docs.retain(|d| filters::all(&q.filters, d, me));
    let key_of = |d: &Value| -> Vec<Value> {
        q.sorting
            .iter()
            .map(|(key, _)| {
                if let Some(by_run) = metric_keys.get(key.as_str()) {
                    let id = d["id"].as_str().unwrap_or_default();
                    return by_run.get(id).cloned().unwrap_or(Value::Null);
                }
                let path = if key == "folder.path" {
                    "folder"
                } else {
                    key.as_str()
                };
                path.split('.')
                    .try_fold(d, |v, k| v.get(k))
                    .cloned()
                    .unwrap_or(Value::Null)
            })
            .collect()
    };
    // The scan order (creation) breaks ties, so the order is total and
    // only the runs up to the page's end need sorting: they are selected
    // first (linear), then sorted, instead of sorting every run.
    let mut keyed: Vec<(Vec<Value>, usize, String)> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let id = d["id"].as_str().unwrap_or_default().to_owned();
            (key_of(d), i, id)
        })
        .collect();
    drop(docs);
    let cmp = |(a, ia, _): &(Vec<Value>, usize, String),
               (b, ib, _): &(Vec<Value>, usize, String)| {
        for ((va, vb), (_, desc)) in a.iter().zip(b).zip(&q.sorting) {
            // Runs without the key come last in either direction.
            match (va.is_null(), vb.is_null()) {
                (true, true) => continue,
                (true, false) => return std::cmp::Ordering::Greater,
                (false, true) => return std::cmp::Ordering::Less,
                _ => {}
            }
            let ord = sorting::compare(va, vb);
            let ord = if *desc { ord.reverse() } else { ord };
            if ord.is_ne() {
                return ord;
            }
        }
        ia.cmp(ib)
    };
    let total = keyed.len();
    let end = q.start.saturating_add(q.count).min(total);
    if end == 0 {
        keyed.clear();
    } else if end < total {
        keyed.select_nth_unstable_by(end - 1, cmp);
        keyed.truncate(end);
    }
    keyed.sort_unstable_by(cmp);
    let data = keyed
        .iter()
        .skip(q.start)
        .take(q.count)
        .map(|(_, _, id)| load_listed(tx, id, q.metrics.as_deref()))
        .collect::<Result<Vec<Value>>>()?;
    Ok(json!({ "data": data, "count": total }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{read, write};
    use crate::storage::sqlite::SqliteStore;

    #[test]
    fn list_filters_read_every_field_they_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("store");
        for (i, user) in ["me", "you", "me"].iter().enumerate() {
            let status = ["completed", "failed", "running"][i];
            let body = json!({
                "name": format!("r{i}"), "folder": format!("/f{i}"),
                "status": status,
                "description": if i == 1 { "the one" } else { "other" },
                "tags": [format!("t{i}")], "metadata": {"i": i},
            });
            let Value::Object(body) = body else {
                unreachable!()
            };
            let run = new_run(&body, user).expect("valid run");
            write(&store, |tx| create(tx, &run)).expect("create");
        }
        write(&store, |tx| {
            let id = tx.run_scan(&RunProjection::default())?[2].id.clone();
            update(tx, &id, &Map::from_iter([("starred".into(), json!(true))]))
        })
        .expect("star");
        let names = |fs: &[&str], sort: &str| -> Vec<String> {
            let q = Query {
                filters: filters::parse_all(&fs.iter().map(|f| f.to_string()).collect::<Vec<_>>())
                    .expect("filters"),
                sorting: parse_sorting(Some(sort)).expect("sorting"),
                start: 0,
                count: 10,
                metrics: None,
            };
            let v = read(&store, |tx| list(tx, &q, "me")).expect("list");
            v["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|d| d["name"].as_str().expect("name").to_owned())
                .collect()
        };
        let by_name = r#"[{"id": "name", "desc": false}]"#;
        assert_eq!(names(&["status == failed"], by_name), ["r1"]);
        assert_eq!(names(&["user == self"], by_name), ["r0", "r2"]);
        assert_eq!(names(&["folder.path == /f2"], by_name), ["r2"]);
        assert_eq!(names(&["description contains one"], by_name), ["r1"]);
        assert_eq!(names(&["has tag.t0"], by_name), ["r0"]);
        assert_eq!(names(&["starred"], by_name), ["r2"]);
        assert_eq!(names(&["metadata.i >= 1"], by_name), ["r1", "r2"]);
        assert_eq!(
            names(&["created < 1d", "endtime exists"], by_name),
            ["r0", "r1"]
        );
        assert_eq!(
            names(&[], r#"[{"id": "status", "desc": true}]"#),
            ["r2", "r1", "r0"]
        );
        assert_eq!(
            names(&[], r#"[{"id": "folder.path", "desc": true}]"#),
            ["r2", "r1", "r0"]
        );
    }
}

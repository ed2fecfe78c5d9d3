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
//!
//! Options besides the rule (Simvue's): `delay` (seconds, metric alerts)
//! holds a threshold or range alert back until its condition has held
//! that long, measured in the run's data time (point timestamps) from the
//! newest point of the first batch after which it held; the state does
//! not change meanwhile, and the count restarts when the condition stops
//! holding. `run_tags` with `auto` (the client's "run tag auto-assign")
//! attaches the alert to its creator's runs carrying any of those tags:
//! runs created or tagged later, and those not finished when the alert is
//! created or changed. Without `auto`, `run_tags` is kept and does nothing.

use serde_json::{Map, Value, json};
use simtrack::model::MAX_NAME_BYTES;

use super::{Error, Result, check_name, events, metrics, runs, sorting};
use crate::storage::{AlertPatch, AlertRow, Attached, ReadTx, WriteTx};
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
    let o = Options::parse(&r.options);
    d["auto"] = Value::Bool(o.auto);
    d["delay"] = Value::from(o.delay);
    d["run_tags"] = Value::from(o.run_tags);
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

/// Longest `delay`: 30 days, in seconds.
const MAX_DELAY_S: i64 = 30 * 86_400;

/// An alert's options besides its rule, stored as JSON text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// Attach to the creator's runs carrying one of `run_tags`.
    pub auto: bool,
    pub run_tags: Vec<String>,
    /// Seconds the condition must hold before the alert goes critical.
    pub delay: i64,
}

impl Options {
    /// Reads stored options (anything missing or unreadable: the default).
    pub fn parse(text: &str) -> Options {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        Options {
            auto: v["auto"].as_bool().unwrap_or(false),
            run_tags: v["run_tags"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            delay: v["delay"].as_i64().unwrap_or(0).max(0),
        }
    }

    fn text(&self) -> String {
        json!({"auto": self.auto, "run_tags": self.run_tags, "delay": self.delay}).to_string()
    }

    /// Whether this alert is attached automatically to a run with `tags`.
    fn matches(&self, tags: &[String]) -> bool {
        self.auto && self.run_tags.iter().any(|t| tags.contains(t))
    }

    /// `o` with the `auto`, `run_tags` and `delay` of `body` applied, for
    /// an alert of `source`.
    fn apply(mut self, body: &Map<String, Value>, source: &str) -> Result<Options> {
        match body.get("auto") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => self.auto = *b,
            Some(_) => return Err(Error::invalid("'auto' must be true or false")),
        }
        match body.get("run_tags") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                let mut tags = Vec::with_capacity(a.len());
                for t in a {
                    let t = t
                        .as_str()
                        .ok_or_else(|| Error::invalid("'run_tags' must be a list of tag names"))?;
                    check_name("tag name", t, MAX_NAME_BYTES)?;
                    tags.push(t.to_owned());
                }
                self.run_tags = tags;
            }
            Some(_) => return Err(Error::invalid("'run_tags' must be a list of tag names")),
        }
        match body.get("delay") {
            None | Some(Value::Null) => {}
            Some(v) => {
                let d = v
                    .as_i64()
                    .filter(|d| (0..=MAX_DELAY_S).contains(d))
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "'delay' must be a whole number of seconds from 0 to {MAX_DELAY_S}"
                        ))
                    })?;
                if d > 0 && source != "metrics" {
                    return Err(Error::invalid(
                        "'delay' applies to metric (threshold and range) alerts only",
                    ));
                }
                self.delay = d;
            }
        }
        Ok(self)
    }
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
    let options = Options::default().apply(body, &source)?;
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
            options: options.text(),
        },
        deduplicate,
    })
}

/// Whether two alerts judge runs the same way: same source, rule and
/// thresholds (compared as JSON values, not text) and the same abort.
fn same_definition(x: &AlertRow, y: &AlertRow) -> bool {
    let parsed = |a: &Option<String>| {
        a.as_deref()
            .map(|t| serde_json::from_str::<Value>(t).unwrap_or(Value::Null))
    };
    x.source == y.source
        && x.abort == y.abort
        && parsed(&x.alert) == parsed(&y.alert)
        && Options::parse(&x.options).delay == Options::parse(&y.options).delay
}

/// Stores a new alert → `{"id"}`. When deduplicating and an alert of that
/// name with the same definition exists, a conflict carrying its id (the
/// client then attaches that one). An alert of the same name with other
/// thresholds is a new alert: each run is judged by the thresholds it
/// asked for, not by those of the first run that used the name.
pub fn create(tx: &dyn WriteTx, a: &NewAlert) -> Result<Value> {
    if a.deduplicate
        && let Some(existing) = tx
            .alert_list()?
            .into_iter()
            .filter(|r| r.name == a.row.name)
            .find(|r| same_definition(r, &a.row))
    {
        let mut e = Error::conflict("Alert already exists");
        e.id = Some(existing.id);
        return Err(e);
    }
    let mut row = a.row.clone();
    row.created = now_us();
    tx.alert_insert(&row)?;
    attach_to_tagged_runs(tx, &row)?;
    Ok(json!({ "id": row.id }))
}

/// Every alert → `{data, count}`.
pub fn list(
    tx: &dyn ReadTx,
    sort: Option<&[(String, bool)]>,
    start: usize,
    count: usize,
) -> Result<Value> {
    let mut all: Vec<Value> = tx.alert_list()?.iter().map(doc).collect();
    if let Some(keys) = sort {
        sorting::sort_docs(&mut all, keys);
    }
    Ok(super::page(all, start, count))
}

/// The `sorting` of an alert list (the keys Simvue's client allows).
pub fn parse_sorting(raw: Option<&str>) -> Result<Option<sorting::SortKeys>> {
    sorting::parse(
        raw,
        "alerts",
        |k| matches!(k, "created" | "name"),
        "created or name",
    )
}

/// Changes `name`, `description`, `notification`, `enabled`, `abort`,
/// `alert`.
pub fn update(tx: &dyn WriteTx, id: &str, body: &Map<String, Value>) -> Result<Value> {
    let current = row(tx, id)?;
    let mut p = AlertPatch::default();
    if ["auto", "run_tags", "delay"]
        .iter()
        .any(|k| body.contains_key(*k))
    {
        let o = Options::parse(&current.options).apply(body, &current.source)?;
        p.options = Some(o.text());
    }
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
    if p.options.is_some() || p.enabled == Some(true) {
        attach_to_tagged_runs(tx, &row(tx, id)?)?;
    }
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
        .map(|s| json!({ "status": state_value(&s) }))
        .ok_or_else(|| Error::not_found(format!("alert {id} is not attached to run {run}")))
}

/// The state of a user alert attached to a run that nobody set yet: it
/// reads back as no status (`null`), as Simvue shows it, until the user
/// sets one. Metric and event alerts start `ok`.
pub const UNSET: &str = "";

/// A run's state of an alert as a document shows it (`null` when unset).
pub fn state_value(s: &str) -> Value {
    if s == UNSET {
        Value::Null
    } else {
        Value::String(s.to_owned())
    }
}

/// An attached alert as a run's document lists it: the definition, the
/// run's state of it and, while it is critical and someone acknowledged
/// it, `acknowledged: {by, at}` (else `null`).
pub fn attached_doc(a: &Attached) -> Value {
    json!({
        "alert": doc(&a.alert),
        "status": state_value(&a.status),
        "acknowledged": a.acknowledged.as_ref().map(|k| json!({"by": k.by, "at": fmt_ts(k.at)})),
    })
}

/// `who` acknowledges that alert `id` is critical on `run`: the alert
/// stays critical (and listed) but no longer asks for attention, and
/// notifies nothing more until it clears and fires again. Only the run's
/// owner or an administrator may (the storage view refuses others).
/// Acknowledging an alert that is not critical there is a conflict.
pub fn acknowledge(tx: &dyn WriteTx, id: &str, run: &str, who: &str) -> Result<Value> {
    let alert = row(tx, id)?;
    runs::status_of(tx, run)?;
    match tx.run_alert_status(run, id)?.as_deref() {
        None => {
            return Err(Error::not_found(format!(
                "alert {id} is not attached to run {run}"
            )));
        }
        Some("critical") => {}
        Some(_) => {
            return Err(Error::conflict(format!(
                "alert '{}' is not critical on run {run}",
                alert.name
            )));
        }
    }
    let already = tx
        .attached(Some(run))?
        .into_iter()
        .any(|a| a.alert.id == id && a.acknowledged.is_some());
    let now = now_us();
    tx.acknowledge_alert(run, id, who, now)?;
    if !already {
        events::record(
            tx,
            run,
            now,
            "info",
            &format!("[simtrack] alert '{}' acknowledged by {who}", alert.name),
        )?;
    }
    Ok(json!({}))
}

/// Attaches an alert to a run; a user alert not attached before starts
/// [`UNSET`].
pub fn attach(tx: &dyn WriteTx, run: &str, alert: &AlertRow) -> Result<()> {
    let was = tx.run_alert_status(run, &alert.id)?;
    tx.attach_alert(run, &alert.id)?;
    if was.is_none() && alert.source == "user" {
        tx.set_alert_state(run, &alert.id, UNSET, now_us())?;
    }
    Ok(())
}

/// Attaches `alert` (when `auto`) to its creator's unfinished runs that
/// carry one of its `run_tags`.
fn attach_to_tagged_runs(tx: &dyn WriteTx, alert: &AlertRow) -> Result<()> {
    let o = Options::parse(&alert.options);
    if !o.auto || o.run_tags.is_empty() {
        return Ok(());
    }
    let p = crate::storage::RunProjection {
        tags: true,
        ..Default::default()
    };
    for r in tx.run_scan(&p)? {
        if r.user != alert.user || runs::is_terminal(&r.status) {
            continue;
        }
        let tags: Vec<String> = r
            .tags
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        if o.matches(&tags) && tx.run_alert_status(&r.id, &alert.id)?.is_none() {
            attach(tx, &r.id, alert)?;
        }
    }
    Ok(())
}

/// Attaches to run `run` (of `owner`, carrying `tags`) every alert of
/// `owner` with `auto` and one of those tags among its `run_tags`.
pub fn attach_by_tags(tx: &dyn WriteTx, run: &str, owner: &str, tags: &[String]) -> Result<()> {
    if tags.is_empty() {
        return Ok(());
    }
    for a in tx.alert_list()? {
        if a.user == owner
            && Options::parse(&a.options).matches(tags)
            && tx.run_alert_status(run, &a.id)?.is_none()
        {
            attach(tx, run, &a)?;
        }
    }
    Ok(())
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
    set_state_valued(tx, run, alert, status, None)
}

/// [`set_state`], with the window's aggregate that decided (metric
/// alerts), which a notification shows.
fn set_state_valued(
    tx: &dyn WriteTx,
    run: &str,
    alert: &AlertRow,
    status: &str,
    value: Option<f64>,
) -> Result<()> {
    let old = tx.run_alert_status(run, &alert.id)?.unwrap_or_default();
    if old == status {
        return Ok(());
    }
    // An acknowledged alert notifies nothing more, not even its clearing;
    // the change withdraws the acknowledgement, so its next firing does.
    let acknowledged = old == "critical"
        && tx
            .attached(Some(run))?
            .iter()
            .any(|a| a.alert.id == alert.id && a.acknowledged.is_some());
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
            "[simtrack] alert '{}' changed from {} to {status}",
            alert.name,
            if old == UNSET { "unset" } else { &old }
        ),
    )?;
    if status == "critical" && alert.abort {
        runs::request_abort(tx, run, &format!("alert '{}' is critical", alert.name))?;
    }
    if !acknowledged {
        super::notify::on_alert(tx, run, alert, &old, status, value)?;
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

/// A metric alert's rule: which values pass its test.
struct Rule {
    rule: String,
    agg: String,
    t: f64,
    lo: f64,
    hi: f64,
}

impl Rule {
    fn of(def: &Value) -> Rule {
        Rule {
            rule: def["rule"].as_str().unwrap_or_default().to_owned(),
            agg: def["aggregation"].as_str().unwrap_or("average").to_owned(),
            t: def["threshold"].as_f64().unwrap_or(0.0),
            lo: def["range_low"].as_f64().unwrap_or(0.0),
            hi: def["range_high"].as_f64().unwrap_or(0.0),
        }
    }

    fn test(&self, v: f64) -> bool {
        match self.rule.as_str() {
            "is above" => v > self.t,
            "is below" => v < self.t,
            "is inside range" => v > self.lo && v < self.hi,
            _ => v < self.lo || v > self.hi,
        }
    }
}

/// The running aggregates of one alert's window on one run, kept between
/// batches (saved with the storage's `alert_window_put`) so that a batch
/// costs O(its points + the points leaving the window), never a re-scan
/// of the window. Every aggregate is a count or a sum, so a point leaving
/// the window is subtracted exactly as it was added: `at least one` and
/// `all` count the points passing the rule's test instead of keeping a
/// minimum or maximum.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct WindowState {
    /// Hash of the definition the state was built for.
    def: u64,
    /// Points of the series taken into account (in the window or not): the
    /// state is only used while this matches the series.
    points: i64,
    /// Newest timestamp seen (µs); the window is `[newest - window, ...]`.
    newest: i64,
    /// Widest timestamp span of any chunk of the series.
    max_span: i64,
    /// Points in the window, NaN included.
    count: i64,
    /// Non-NaN points in the window.
    valued: i64,
    /// Points in the window passing the rule's test.
    pass: i64,
    /// +Inf and -Inf values in the window (kept out of the sum).
    pinf: i64,
    ninf: i64,
    /// Neumaier-compensated sum of the finite values in the window.
    sum: f64,
    comp: f64,
    /// Data time (µs) since which the window has made the alert critical
    /// without a break (for `delay`).
    #[serde(default)]
    critical_since: Option<i64>,
}

impl WindowState {
    fn add(&mut self, rule: &Rule, v: f64, sign: i64) {
        self.count += sign;
        if rule.test(v) {
            self.pass += sign;
        }
        if v.is_nan() {
            return;
        }
        self.valued += sign;
        if v == f64::INFINITY {
            self.pinf += sign;
        } else if v == f64::NEG_INFINITY {
            self.ninf += sign;
        } else {
            let x = if sign > 0 { v } else { -v };
            let t = self.sum + x;
            self.comp += if self.sum.abs() >= x.abs() {
                (self.sum - t) + x
            } else {
                (x - t) + self.sum
            };
            self.sum = t;
        }
        if self.count == 0 {
            (self.sum, self.comp) = (0.0, 0.0);
        }
    }

    fn total(&self) -> f64 {
        match (self.pinf > 0, self.ninf > 0) {
            (true, true) => f64::NAN,
            (true, false) => f64::INFINITY,
            (false, true) => f64::NEG_INFINITY,
            _ => self.sum + self.comp,
        }
    }

    /// The aggregate the rule tests (for `at least one` and `all`, the
    /// share of valued points passing it).
    fn value(&self, rule: &Rule) -> f64 {
        match rule.agg.as_str() {
            "sum" => self.total(),
            "at least one" | "all" => self.pass as f64 / self.valued.max(1) as f64,
            _ => self.total() / self.count.max(1) as f64,
        }
    }

    /// Whether the window makes the alert critical; `None` when empty.
    fn critical(&self, rule: &Rule) -> Option<bool> {
        if self.count == 0 {
            return None;
        }
        Some(match rule.agg.as_str() {
            "sum" => rule.test(self.total()),
            "at least one" => self.pass > 0,
            "all" => self.valued > 0 && self.pass == self.valued,
            _ => rule.test(self.total() / self.count as f64),
        })
    }
}

fn def_hash(def: &Value) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    def.to_string().hash(&mut h);
    h.finish()
}

/// Builds the window state of a series from what is stored (once per
/// alert, run and definition, or after the state fell behind: O(window)).
fn build_window(tx: &dyn ReadTx, series: i64, def: &Value, rule: &Rule) -> Result<WindowState> {
    let mut w = WindowState {
        def: def_hash(def),
        points: tx.series_points(series)?,
        max_span: tx.series_max_span(series)?,
        newest: i64::MIN,
        ..WindowState::default()
    };
    let Some(newest) = tx.series_newest_ts(series)? else {
        return Ok(w);
    };
    w.newest = newest;
    let cutoff = newest.saturating_sub(window_us(def).max(0));
    let mut pts = Vec::new();
    for id in tx.chunks_ts_between(series, cutoff, i64::MAX, 0)? {
        pts.clear();
        metrics::chunk_points(tx, id, &mut pts)?;
        for p in pts.iter().filter(|p| p.ts >= cutoff) {
            w.add(rule, p.value, 1);
        }
    }
    Ok(w)
}

/// Advances a window state over `batch` (already stored in `series`):
/// adds its points inside the window, then subtracts every point the
/// window's start moved past, reading only the chunks holding those.
/// Returns how many stored points it had to read.
fn advance(
    tx: &dyn ReadTx,
    series: i64,
    def: &Value,
    rule: &Rule,
    w: &mut WindowState,
    batch: &[metrics::Point],
) -> Result<usize> {
    let window = window_us(def).max(0);
    let cutoff = |newest: i64| {
        if newest == i64::MIN {
            i64::MIN
        } else {
            newest.saturating_sub(window)
        }
    };
    let old = cutoff(w.newest);
    let (mut lo_ts, mut hi_ts) = (i64::MAX, i64::MIN);
    for p in batch {
        (lo_ts, hi_ts) = (lo_ts.min(p.ts), hi_ts.max(p.ts));
        if p.ts >= old {
            w.add(rule, p.value, 1);
        }
    }
    if !batch.is_empty() {
        w.max_span = w.max_span.max(hi_ts.saturating_sub(lo_ts));
        w.newest = w.newest.max(hi_ts);
    }
    w.points += batch.len() as i64;
    let new = cutoff(w.newest);
    let mut read = 0;
    if new > old {
        let mut pts = Vec::new();
        for id in tx.chunks_ts_between(series, old, new, w.max_span)? {
            pts.clear();
            metrics::chunk_points(tx, id, &mut pts)?;
            read += pts.len();
            for p in pts.iter().filter(|p| p.ts >= old && p.ts < new) {
                w.add(rule, p.value, -1);
            }
        }
    }
    Ok(read)
}

/// Whether the metric window makes the alert critical, or `None` when the
/// window has no data: computed from the stored series (the slow path,
/// O(window); ingest keeps a [`WindowState`] instead).
pub fn metric_condition(tx: &dyn ReadTx, series: i64, def: &Value) -> Result<Option<bool>> {
    let rule = Rule::of(def);
    Ok(build_window(tx, series, def, &rule)?.critical(&rule))
}

/// Re-evaluates `run`'s metric alerts on the metrics of `batch` (just
/// stored): each alert's window state is advanced by the batch's points
/// (built once from the store when missing or out of step), so the cost
/// follows the batch, not the window.
pub fn on_metrics(
    tx: &dyn WriteTx,
    run: &str,
    batch: &[(String, Vec<metrics::Point>)],
) -> Result<()> {
    for alert in tx.attached_enabled(run, "metrics")? {
        let def = definition(&alert);
        let metric = def["metric"].as_str().unwrap_or_default();
        let Some((_, points)) = batch.iter().find(|(n, _)| n == metric) else {
            continue;
        };
        let Some(series) = tx.series_id(run, metric)? else {
            continue;
        };
        let rule = Rule::of(&def);
        let saved: Option<WindowState> = tx
            .alert_window(run, &alert.id)?
            .and_then(|t| serde_json::from_str(&t).ok());
        let since = saved
            .as_ref()
            .filter(|w| w.def == def_hash(&def))
            .and_then(|w| w.critical_since);
        let mut w = match saved {
            Some(mut w)
                if w.def == def_hash(&def)
                    && w.points + points.len() as i64 == tx.series_points(series)? =>
            {
                advance(tx, series, &def, &rule, &mut w, points)?;
                w
            }
            _ => build_window(tx, series, &def, &rule)?,
        };
        w.critical_since = since;
        let delay_us = Options::parse(&alert.options)
            .delay
            .saturating_mul(1_000_000);
        let status = match w.critical(&rule) {
            Some(true) => {
                let since = *w.critical_since.get_or_insert(w.newest);
                // Held back until the condition has lasted `delay`.
                (w.newest.saturating_sub(since) >= delay_us).then_some("critical")
            }
            Some(false) => {
                w.critical_since = None;
                Some("ok")
            }
            None => None,
        };
        tx.alert_window_put(
            run,
            &alert.id,
            &serde_json::to_string(&w).unwrap_or_default(),
        )?;
        if let Some(status) = status {
            set_state_valued(tx, run, &alert, status, Some(w.value(&rule)))?;
        }
    }
    Ok(())
}

/// What an event-pattern alert has read of a run's events, kept between
/// batches so that each batch reads only the events stored since (the
/// storage's `events_after`), never the whole window again.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct EventWindow {
    /// Hash of the definition the state was built for.
    def: u64,
    /// Sequence number of the last event read.
    seq: i64,
    /// Newest timestamp of a (non-system) event (µs).
    newest: Option<i64>,
    /// Newest timestamp of an event containing the pattern (µs).
    matched: Option<i64>,
}

impl EventWindow {
    /// Reads the events stored since the last call.
    fn advance(&mut self, tx: &dyn ReadTx, run: &str, pattern: &str) -> Result<()> {
        let mut seq = self.seq;
        let (mut newest, mut matched) = (self.newest, self.matched);
        tx.events_after(run, self.seq, &mut |s, ts, message| {
            seq = seq.max(s);
            if message.starts_with(events::SYSTEM_PREFIX) {
                return;
            }
            newest = newest.max(Some(ts));
            if message.contains(pattern) {
                matched = matched.max(Some(ts));
            }
        })?;
        (self.seq, self.newest, self.matched) = (seq, newest, matched);
        Ok(())
    }

    /// Critical while a matching event lies within `window` µs of the
    /// newest event; `None` before any event.
    fn critical(&self, window: i64) -> Option<bool> {
        let newest = self.newest?;
        Some(
            self.matched
                .is_some_and(|m| m >= newest.saturating_sub(window)),
        )
    }
}

/// Re-evaluates `run`'s event-pattern alerts: critical while an event whose
/// message contains the pattern lies within the window of the newest event.
/// Each alert reads only the events stored since it last looked (all of
/// them the first time, or after its definition changed).
pub fn on_events(tx: &dyn WriteTx, run: &str) -> Result<()> {
    for alert in tx.attached_enabled(run, "events")? {
        let def = definition(&alert);
        let pattern = def["pattern"].as_str().unwrap_or_default();
        let mut w: EventWindow = tx
            .alert_window(run, &alert.id)?
            .and_then(|t| serde_json::from_str(&t).ok())
            .filter(|w: &EventWindow| w.def == def_hash(&def))
            .unwrap_or(EventWindow {
                def: def_hash(&def),
                ..EventWindow::default()
            });
        w.advance(tx, run, pattern)?;
        tx.alert_window_put(
            run,
            &alert.id,
            &serde_json::to_string(&w).unwrap_or_default(),
        )?;
        if let Some(critical) = w.critical(window_us(&def)) {
            set_state(tx, run, &alert, if critical { "critical" } else { "ok" })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metrics::Point;
    use crate::storage::sqlite::SqliteStore;

    /// A window advanced batch by batch equals the window built from the
    /// store after every batch: sliding, out-of-order timestamps, NaN and
    /// infinities, batches larger than a chunk.
    #[test]
    fn advanced_windows_equal_rebuilt_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let defs = [
            json!({"rule": "is above", "aggregation": "average", "threshold": 0.1, "window": 0.5}),
            json!({"rule": "is inside range", "aggregation": "at least one", "range_low": 0.2, "range_high": 0.3, "window": 0.2}),
            json!({"rule": "is outside range", "aggregation": "all", "range_low": -0.9, "range_high": 0.9, "window": 0.05}),
            json!({"rule": "is below", "aggregation": "sum", "threshold": 3.0, "window": 1.0}),
        ];
        let mut state: Vec<Option<WindowState>> = vec![None; defs.len()];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut ts = 1_700_000_000_000_000_i64;
        for batch in 0..60 {
            let n = if batch == 30 {
                70_000
            } else {
                1 + (rnd() % 400) as usize
            };
            let pts: Vec<Point> = (0..n)
                .map(|i| {
                    ts += (rnd() % 3_000) as i64;
                    let jitter = if rnd() % 10 == 0 {
                        -((rnd() % 5_000_000) as i64)
                    } else {
                        0
                    };
                    let value = match rnd() % 50 {
                        0 => f64::NAN,
                        1 => f64::INFINITY,
                        2 => f64::NEG_INFINITY,
                        _ => ((rnd() % 2000) as f64 / 1000.0) - 1.0,
                    };
                    Point {
                        step: i as i64,
                        time: 0.0,
                        ts: ts + jitter,
                        value,
                    }
                })
                .collect();
            crate::domain::write(&store, |tx| {
                let series = metrics::append(tx, "r", "m", &pts)?;
                for (k, def) in defs.iter().enumerate() {
                    let rule = Rule::of(def);
                    let next = match state[k].take() {
                        Some(mut w) => {
                            advance(tx, series, def, &rule, &mut w, &pts)?;
                            w
                        }
                        None => build_window(tx, series, def, &rule)?,
                    };
                    let fresh = build_window(tx, series, def, &rule)?;
                    assert_eq!(
                        (
                            next.count,
                            next.valued,
                            next.pass,
                            next.pinf,
                            next.ninf,
                            next.newest,
                            next.points
                        ),
                        (
                            fresh.count,
                            fresh.valued,
                            fresh.pass,
                            fresh.pinf,
                            fresh.ninf,
                            fresh.newest,
                            fresh.points
                        ),
                        "batch {batch}, alert {k}"
                    );
                    assert!(
                        (next.total() - fresh.total()).abs() <= 1e-9 * (1.0 + fresh.count as f64)
                            || next.total().is_nan() && fresh.total().is_nan()
                            || next.total() == fresh.total(),
                        "batch {batch}, alert {k}: {} vs {}",
                        next.total(),
                        fresh.total()
                    );
                    assert_eq!(next.critical(&rule), fresh.critical(&rule));
                    state[k] = Some(next);
                }
                Ok(())
            })
            .unwrap();
        }
    }

    /// An event window read batch by batch judges exactly as a scan of all
    /// the run's events does: out-of-order timestamps, system events,
    /// matches leaving the window.
    #[test]
    fn event_windows_read_incrementally_equal_a_full_scan() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let window = 50_000;
        let mut all: Vec<(i64, String)> = Vec::new();
        let mut w = EventWindow::default();
        let mut read = 0usize;
        for batch in 0..80 {
            let n = (rnd() % 20) as usize;
            let base = batch as i64 * 10_000;
            let events: Vec<(i64, String)> = (0..n)
                .map(|_| {
                    let ts = base + (rnd() % 40_000) as i64 - 20_000;
                    let message = match rnd() % 10 {
                        0 => "ERROR: diverged".to_owned(),
                        1 => format!("{} alert changed (ERROR)", events::SYSTEM_PREFIX),
                        _ => format!("step {}", rnd() % 1000),
                    };
                    (ts, message)
                })
                .collect();
            crate::domain::write(&store, |tx| {
                for (ts, m) in &events {
                    tx.event_insert("r", *ts, "info", m)?;
                }
                let before = w.seq;
                w.advance(tx, "r", "ERROR")?;
                read += events.len();
                assert!(w.seq >= before);
                Ok(())
            })
            .unwrap();
            all.extend(events);
            let user: Vec<&(i64, String)> = all
                .iter()
                .filter(|(_, m)| !m.starts_with(events::SYSTEM_PREFIX))
                .collect();
            let expected = user.iter().map(|(t, _)| *t).max().map(|newest| {
                user.iter()
                    .any(|(t, m)| *t >= newest - window && m.contains("ERROR"))
            });
            assert_eq!(w.critical(window), expected, "batch {batch}");
        }
        assert_eq!(read, all.len());
    }
}

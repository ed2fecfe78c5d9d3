//! Notifications: users' channels (email addresses and webhooks), the
//! events that notify (an alert turning critical, or back to ok when a
//! channel asks; a run failing; a run marked lost), and the outbox of
//! deliveries.
//!
//! An event is queued in the outbox inside the write transaction of the
//! state change that causes it, one row per channel of the run's owner,
//! so it is recorded exactly when the change commits and never twice for
//! one change. Nothing is sent on the request's path: a background worker
//! ([`crate::notify`]) claims due rows with a lease ([`claim`]), delivers
//! them, and records the outcome ([`finish`]), retrying with exponential
//! backoff. The claim is a write transaction, serialised across replicas,
//! so one delivery is attempted by one worker at a time.
//!
//! The Simvue alert field `notification` decides whether an alert
//! notifies at all: `"email"` sends through every channel of the run's
//! owner (email and webhooks), `"none"` (the default) sends nothing.

use serde_json::{Value, json};

use super::{Error, Result, parse_json, read, write};
use crate::config::HostPolicy;
use crate::storage::{AlertRow, ChannelRow, OutboxRow, ReadTx, StateStore, WriteTx};
use crate::util::{fmt_ts, new_id, now_us};

/// Events a channel can ask for.
pub const EVENTS: [&str; 5] = ["critical", "ok", "failed", "lost", "completed"];
/// Events a channel gets when it does not say.
pub const DEFAULT_EVENTS: [&str; 3] = ["critical", "failed", "lost"];
/// Webhook body formats: the event as JSON, or `{"text": ...}` for Slack
/// and Mattermost incoming webhooks.
pub const FORMATS: [&str; 2] = ["json", "slack"];
/// Most channels one user may have.
pub const MAX_CHANNELS_PER_USER: usize = 20;
/// How long a worker's claim on a delivery lasts: longer than any one
/// attempt may take (the transports time out well before).
pub const LEASE_US: i64 = 120_000_000;
/// An alert that flaps notifies once per run, alert and event within
/// this long (µs): a metric hovering at a threshold sends one email, not
/// one per batch.
pub const ALERT_QUIET_US: i64 = 600_000_000;
/// Finished deliveries are forgotten after this long.
pub const RETENTION_US: i64 = 30 * 86_400_000_000;

/// When to try again after a failed attempt, and when to give up.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Delay after the first failure (µs); doubled after each further one.
    pub base_us: i64,
    /// Longest delay (µs).
    pub max_us: i64,
    /// Attempts before a delivery is marked failed.
    pub attempts: i64,
}

impl Default for Retry {
    /// 10 s, doubling up to an hour, 12 attempts: about four hours of a
    /// mail server being down before a delivery is given up.
    fn default() -> Self {
        Retry {
            base_us: 10_000_000,
            max_us: 3_600_000_000,
            attempts: 12,
        }
    }
}

impl Retry {
    /// The delay after `failures` failed attempts (1, 2, ...).
    pub fn delay_us(&self, failures: i64) -> i64 {
        let shift = (failures - 1).clamp(0, 40) as u32;
        self.base_us
            .max(1)
            .saturating_mul(1_i64 << shift)
            .min(self.max_us.max(self.base_us))
    }
}

fn check_email(a: &str) -> Result<()> {
    let ok = a.len() <= 254
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
        && a.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!("'{a}' is not an email address")))
    }
}

fn check_url(u: &str) -> Result<()> {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    let ok = u.len() <= 2048
        && rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && !u.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "'{u}' is not an http:// or https:// URL"
        )))
    }
}

/// The host of webhook URL `u`, as an HTTP client parses it.
pub fn webhook_host(u: &str) -> std::result::Result<url::Host<String>, String> {
    let parsed = url::Url::parse(u).map_err(|e| format!("'{u}' is not a URL: {e}"))?;
    parsed
        .host()
        .map(|h| h.to_owned())
        .ok_or_else(|| format!("'{u}' names no host"))
}

/// Checks, before it is stored, that webhook `u` may be contacted under
/// `policy`: its address, or every address its name resolves to now (a
/// blocking DNS lookup: call off the async executor). Delivery checks
/// again after its own lookup ([`crate::notify`]), so a name that later
/// resolves elsewhere is refused then.
pub fn check_webhook(policy: &HostPolicy, u: &str) -> Result<()> {
    check_url(u)?;
    let host = webhook_host(u).map_err(Error::invalid)?;
    let r = match host {
        url::Host::Ipv4(ip) => policy.check_ip(ip.into()),
        url::Host::Ipv6(ip) => policy.check_ip(ip.into()),
        url::Host::Domain(name) => {
            if policy.allows_name(&name) {
                Ok(())
            } else {
                use std::net::ToSocketAddrs;
                match (name.as_str(), 80).to_socket_addrs() {
                    Ok(a) => {
                        let addrs: Vec<std::net::IpAddr> = a.map(|s| s.ip()).collect();
                        policy.check_resolved(&name, &addrs)
                    }
                    Err(e) => Err(format!("cannot resolve {name}: {e}")),
                }
            }
        }
    };
    r.map_err(|e| Error::invalid(format!("webhook {u}: {e}")))
}

/// A validated new channel ([`add_channel`]).
#[derive(Debug, Clone)]
pub struct NewChannel {
    /// `email` or `webhook`.
    pub kind: String,
    /// The address or URL.
    pub target: String,
    /// Webhook body format (`json` or `slack`).
    pub format: Option<String>,
    /// Events; `None`: [`DEFAULT_EVENTS`].
    pub events: Option<Vec<String>>,
}

/// Validates and stores a channel of `owner` → its document. A webhook's
/// address is checked by the caller first, outside the transaction
/// ([`check_webhook`]: it resolves names).
pub fn add_channel(tx: &dyn WriteTx, owner: &str, c: &NewChannel) -> Result<Value> {
    super::check_name("user", owner, simtrack::model::MAX_NAME_BYTES)?;
    match c.kind.as_str() {
        "email" => {
            check_email(&c.target)?;
            if c.format.is_some() {
                return Err(Error::invalid("'format' is for webhooks only"));
            }
        }
        "webhook" => check_url(&c.target)?,
        _ => return Err(Error::invalid("'kind' must be email or webhook")),
    }
    let format = c.format.clone().unwrap_or_else(|| "json".to_owned());
    if !FORMATS.contains(&format.as_str()) {
        return Err(Error::invalid("'format' must be json or slack"));
    }
    let events = match &c.events {
        None => DEFAULT_EVENTS.map(str::to_owned).to_vec(),
        Some(e) => {
            if e.is_empty() || e.iter().any(|x| !EVENTS.contains(&x.as_str())) {
                return Err(Error::invalid(format!(
                    "'events' must be a non-empty list of: {}",
                    EVENTS.join(", ")
                )));
            }
            e.clone()
        }
    };
    if tx.notify_channels(Some(owner))?.len() >= MAX_CHANNELS_PER_USER {
        return Err(Error::too_many(format!(
            "a user has at most {MAX_CHANNELS_PER_USER} notification channels"
        )));
    }
    let mut options = json!({ "events": events });
    if c.kind == "webhook" {
        options["format"] = json!(format);
    }
    let row = ChannelRow {
        id: new_id(),
        owner: owner.to_owned(),
        kind: c.kind.clone(),
        target: c.target.clone(),
        options: options.to_string(),
        created: now_us(),
    };
    tx.notify_channel_insert(&row)?;
    Ok(channel_doc(&row, None))
}

fn channel_doc(c: &ChannelRow, last: Option<&OutboxRow>) -> Value {
    let options = parse_json(&c.options, json!({}));
    json!({
        "id": c.id,
        "user": c.owner,
        "kind": c.kind,
        "target": c.target,
        "format": options.get("format").cloned().unwrap_or(Value::Null),
        "events": options.get("events").cloned().unwrap_or_else(|| json!(DEFAULT_EVENTS)),
        "created": fmt_ts(c.created),
        "last_delivery": last.map(delivery_doc),
    })
}

/// A delivery as the API shows it (never the payload's secrets: there
/// are none, but the target is the channel's, shown with the channel).
pub fn delivery_doc(o: &OutboxRow) -> Value {
    let payload = parse_json(&o.payload, json!({}));
    json!({
        "id": o.id,
        "channel": o.channel_id,
        "user": o.owner,
        "run": o.run_id,
        "event": o.event,
        "title": payload.get("title").cloned().unwrap_or(Value::Null),
        "created": fmt_ts(o.created),
        "status": o.status,
        "attempts": o.attempts,
        "next_attempt": (o.status == "pending" || o.status == "retrying").then(|| fmt_ts(o.next_at)),
        "error": o.last_error,
        "sent": o.sent_at.map(fmt_ts),
    })
}

/// `owner`'s channels (every user's when `None`), each with its last
/// delivery → `{"data": [...], "count"}`.
pub fn list_channels(tx: &dyn ReadTx, owner: Option<&str>) -> Result<Value> {
    let recent = tx.outbox_list(owner, None, 500)?;
    let data: Vec<Value> = tx
        .notify_channels(owner)?
        .iter()
        .map(|c| channel_doc(c, recent.iter().find(|o| o.channel_id == c.id)))
        .collect();
    let n = data.len();
    Ok(json!({ "data": data, "count": n }))
}

/// Removes channel `id`, only if it is `owner`'s when given (another
/// user's channel is not found).
pub fn remove_channel(tx: &dyn WriteTx, id: &str, owner: Option<&str>) -> Result<Value> {
    let found = tx.notify_channels(owner)?.into_iter().any(|c| c.id == id);
    if !found || !tx.notify_channel_delete(id)? {
        return Err(Error::not_found(format!(
            "notification channel {id} not found"
        )));
    }
    Ok(json!({}))
}

/// The newest deliveries of `owner` and/or about `run` → `{"data"}`,
/// each with the channel it goes through (`via`) while that exists.
pub fn deliveries(
    tx: &dyn ReadTx,
    owner: Option<&str>,
    run: Option<&str>,
    limit: usize,
) -> Result<Value> {
    let channels = tx.notify_channels(owner)?;
    let data: Vec<Value> = tx
        .outbox_list(owner, run, limit)?
        .iter()
        .map(|o| {
            let mut d = delivery_doc(o);
            if let Some(c) = channels.iter().find(|c| c.id == o.channel_id) {
                d["via"] = json!({ "kind": c.kind, "target": c.target });
            }
            d
        })
        .collect();
    let n = data.len();
    Ok(json!({ "data": data, "count": n }))
}

/// Queues `event` about `run` for every channel of the run's owner that
/// asks for it, in the caller's transaction.
fn enqueue(tx: &dyn WriteTx, run: &str, event: &str, payload: Value) -> Result<()> {
    enqueue_to(tx, run, event, payload, false)
}

/// [`enqueue`]; with `every_channel`, to every channel of the owner
/// whatever events it asks for (the run itself asked to be told).
fn enqueue_to(
    tx: &dyn WriteTx,
    run: &str,
    event: &str,
    mut payload: Value,
    every_channel: bool,
) -> Result<()> {
    let Some(r) = tx.run_get(run)? else {
        return Ok(());
    };
    let channels = tx.notify_channels(Some(&r.user))?;
    if channels.is_empty() {
        return Ok(());
    }
    let now = now_us();
    payload["event"] = json!(event);
    payload["time"] = json!(fmt_ts(now));
    payload["run"] = json!({
        "id": r.id, "name": r.name, "folder": r.folder, "status": r.status, "user": r.user,
    });
    let text = payload.to_string();
    for c in channels {
        let options = parse_json(&c.options, json!({}));
        let wanted = every_channel
            || match options.get("events").and_then(Value::as_array) {
                Some(list) => list.iter().any(|e| e.as_str() == Some(event)),
                None => DEFAULT_EVENTS.contains(&event),
            };
        if !wanted {
            continue;
        }
        tx.outbox_insert(&OutboxRow {
            id: new_id(),
            channel_id: c.id,
            owner: r.user.clone(),
            run_id: r.id.clone(),
            event: event.to_owned(),
            payload: text.clone(),
            created: now,
            status: "pending".to_owned(),
            attempts: 0,
            next_at: now,
            claimed_until: 0,
            last_error: None,
            sent_at: None,
        })?;
    }
    Ok(())
}

fn num(v: &Value) -> String {
    v.as_f64().map_or_else(|| v.to_string(), |x| format!("{x}"))
}

/// An alert's rule in words, e.g. `average of loss over 1 min is above 5`.
pub fn rule_text(a: &AlertRow) -> String {
    let def = a
        .alert
        .as_deref()
        .map_or(Value::Null, |t| parse_json(t, Value::Null));
    let window = def["window"]
        .as_f64()
        .or_else(|| def["frequency"].as_f64())
        .unwrap_or(1.0);
    match a.source.as_str() {
        "metrics" => {
            let rule = def["rule"].as_str().unwrap_or_default();
            let bound = if rule.ends_with("range") {
                format!("[{}, {}]", num(&def["range_low"]), num(&def["range_high"]))
            } else {
                num(&def["threshold"])
            };
            format!(
                "{} of {} over {window} min {rule} {bound}",
                def["aggregation"].as_str().unwrap_or("average"),
                def["metric"].as_str().unwrap_or_default(),
            )
        }
        "events" => format!(
            "an event within {window} min contains '{}'",
            def["pattern"].as_str().unwrap_or_default()
        ),
        _ => "set by a user".to_owned(),
    }
}

/// An alert of `run` moved from `old` to `status`: queues `critical`, or
/// `ok` after `critical`, when the alert's `notification` asks for it and
/// the same event of this alert on this run was not queued within
/// [`ALERT_QUIET_US`].
/// `value` is the window's aggregate that decided, for metric alerts.
pub fn on_alert(
    tx: &dyn WriteTx,
    run: &str,
    alert: &AlertRow,
    old: &str,
    status: &str,
    value: Option<f64>,
) -> Result<()> {
    if alert.notification != "email" {
        return Ok(());
    }
    let event = match status {
        "critical" => "critical",
        "ok" if old == "critical" => "ok",
        _ => return Ok(()),
    };
    let since = now_us() - ALERT_QUIET_US;
    let repeated = tx.outbox_list(None, Some(run), 200)?.iter().any(|o| {
        o.created >= since
            && o.event == event
            && parse_json(&o.payload, Value::Null)["alert"]["id"] == alert.id.as_str()
    });
    if repeated {
        return Ok(());
    }
    let name = tx.run_get(run)?.map(|r| r.name).unwrap_or_default();
    let title = if event == "critical" {
        format!("Alert '{}' is critical on run '{name}'", alert.name)
    } else {
        format!("Alert '{}' is ok again on run '{name}'", alert.name)
    };
    let payload = json!({
        "title": title,
        "alert": {
            "id": alert.id, "name": alert.name, "source": alert.source,
            // null: a user alert that was never set before.
            "status": status, "previous": Some(old).filter(|o| !o.is_empty()), "rule": rule_text(alert),
            "value": value.filter(|v| v.is_finite()),
        },
    });
    enqueue(tx, run, event, payload)
}

/// A run's status changed to `status`: queues `failed`, `lost` or
/// `completed` for the channels asking for it. A run whose Simvue
/// `notifications` state is `all` is also told of its completion through
/// every channel (`error` and `lost` ask for what channels get by default;
/// `none`, which every client sends unless told otherwise, changes nothing).
pub fn on_run_status(tx: &dyn WriteTx, run: &str, status: &str) -> Result<()> {
    let event = match status {
        "failed" => "failed",
        "lost" => "lost",
        "completed" => "completed",
        _ => return Ok(()),
    };
    let Some(r) = tx.run_get(run)? else {
        return Ok(());
    };
    let name = r.name;
    let title = match event {
        "failed" => format!("Run '{name}' failed"),
        "lost" => format!("Run '{name}' was marked lost: no heartbeat within its timeout"),
        _ => format!("Run '{name}' completed"),
    };
    let asked = event == "completed"
        && parse_json(&r.notifications, Value::Null)["state"].as_str() == Some("all");
    enqueue_to(tx, run, event, json!({ "title": title }), asked)
}

/// The subject and plain-text body of the email for a delivery's payload;
/// `run_url` links to the run page.
pub fn email_text(payload: &Value, run_url: &str) -> (String, String) {
    let subject = format!(
        "[simtrack] {}",
        payload["title"].as_str().unwrap_or("notification")
    );
    let run = &payload["run"];
    let mut body = format!(
        "{}\n\nRun: {} ({})\nFolder: {}\nStatus: {}\nOwner: {}\nTime: {} UTC\n",
        payload["title"].as_str().unwrap_or_default(),
        run["name"].as_str().unwrap_or_default(),
        run["id"].as_str().unwrap_or_default(),
        run["folder"].as_str().unwrap_or_default(),
        run["status"].as_str().unwrap_or_default(),
        run["user"].as_str().unwrap_or_default(),
        payload["time"].as_str().unwrap_or_default(),
    );
    let alert = &payload["alert"];
    if alert.is_object() {
        body.push_str(&format!(
            "\nAlert: {}\nState: {} (was {})\nRule: {}\n",
            alert["name"].as_str().unwrap_or_default(),
            alert["status"].as_str().unwrap_or_default(),
            alert["previous"].as_str().unwrap_or_default(),
            alert["rule"].as_str().unwrap_or_default(),
        ));
        if let Some(v) = alert["value"].as_f64() {
            body.push_str(&format!("Value: {v}\n"));
        }
    }
    body.push_str(&format!(
        "\nOpen the run: {run_url}\n\n-- \nsimtrack: sent because your notification settings ask for it.\n"
    ));
    (subject, body)
}

/// The webhook body: the event (with `run.url`) as JSON, or for `slack`
/// a `{"text"}` message.
pub fn webhook_body(payload: &Value, run_url: &str, format: &str) -> String {
    let mut p = payload.clone();
    p["run"]["url"] = json!(run_url);
    if format == "slack" {
        let mut text = format!(
            "{} <{run_url}|open the run>",
            p["title"].as_str().unwrap_or("")
        );
        if let Some(rule) = p["alert"]["rule"].as_str() {
            text.push_str(&format!(" ({rule})"));
        }
        return json!({ "text": text }).to_string();
    }
    p.to_string()
}

/// Whether any delivery is due and unclaimed (a cheap read: the worker
/// takes the write lock only when there is work).
pub fn any_due(store: &dyn StateStore) -> Result<bool> {
    read(store, |tx| Ok(tx.outbox_due(now_us())? > 0))
}

/// Claims up to `limit` due deliveries with their channels. A delivery
/// whose channel is gone is marked failed here.
pub fn claim(store: &dyn StateStore, limit: usize) -> Result<Vec<(OutboxRow, ChannelRow)>> {
    write(store, |tx| {
        let now = now_us();
        let rows = tx.outbox_claim(now, now + LEASE_US, limit)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let channels = tx.notify_channels(None)?;
        let mut out = Vec::new();
        for o in rows {
            match channels.iter().find(|c| c.id == o.channel_id) {
                Some(c) => out.push((o, c.clone())),
                None => tx.outbox_finish(
                    &o.id,
                    "failed",
                    o.attempts,
                    o.next_at,
                    Some("the channel was removed"),
                    None,
                )?,
            }
        }
        Ok(out)
    })
}

/// Records an attempt's outcome: sent, or retrying after the backoff, or
/// failed once `retry.attempts` attempts failed.
pub fn finish(
    store: &dyn StateStore,
    o: &OutboxRow,
    outcome: std::result::Result<(), String>,
    retry: &Retry,
) -> Result<()> {
    write(store, |tx| {
        let now = now_us();
        let attempts = o.attempts + 1;
        match &outcome {
            Ok(()) => tx.outbox_finish(&o.id, "sent", attempts, now, None, Some(now))?,
            Err(e) => {
                let status = if attempts >= retry.attempts {
                    "failed"
                } else {
                    "retrying"
                };
                let next = now + retry.delay_us(attempts);
                tx.outbox_finish(&o.id, status, attempts, next, Some(e), None)?;
            }
        }
        Ok(())
    })
}

/// Forgets finished deliveries older than [`RETENTION_US`].
pub fn purge(store: &dyn StateStore) -> Result<usize> {
    write(store, |tx| Ok(tx.outbox_purge(now_us() - RETENTION_US)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sqlite::SqliteStore;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let r = Retry {
            base_us: 10,
            max_us: 70,
            attempts: 5,
        };
        let d: Vec<i64> = (1..=6).map(|n| r.delay_us(n)).collect();
        assert_eq!(d, [10, 20, 40, 70, 70, 70]);
        assert_eq!(Retry::default().delay_us(1000), 3_600_000_000);
    }

    #[test]
    fn channels_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let add = |kind: &str, target: &str, format: Option<&str>, events: Option<Vec<&str>>| {
            write(&store, |tx| {
                add_channel(
                    tx,
                    "ann",
                    &NewChannel {
                        kind: kind.into(),
                        target: target.into(),
                        format: format.map(str::to_owned),
                        events: events.map(|e| e.into_iter().map(str::to_owned).collect()),
                    },
                )
            })
        };
        assert!(add("email", "ann@example.org", None, None).is_ok());
        assert!(
            add(
                "webhook",
                "https://hooks.example.org/x",
                Some("slack"),
                None
            )
            .is_ok()
        );
        for bad in [
            add("email", "not an address", None, None),
            add("email", "a@b", Some("json"), None),
            add("webhook", "ftp://x", None, None),
            add("webhook", "http://x", Some("xml"), None),
            add("webhook", "http://x", None, Some(vec!["exploded"])),
            add("sms", "123", None, None),
        ] {
            assert_eq!(bad.unwrap_err().kind, super::super::ErrorKind::Invalid);
        }
    }

    /// Claims are leases: a claimed delivery is not handed out again until
    /// it is finished or its lease runs out; a failure is retried after
    /// the backoff and given up after the last attempt.
    #[test]
    fn claims_are_exclusive_and_failures_back_off() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let id = write(&store, |tx| {
            let c = add_channel(
                tx,
                "ann",
                &NewChannel {
                    kind: "email".into(),
                    target: "ann@example.org".into(),
                    format: None,
                    events: None,
                },
            )?;
            tx.run_insert(&crate::storage::RunRow {
                id: "r1".into(),
                name: "heat".into(),
                user: "ann".into(),
                ..Default::default()
            })?;
            on_run_status(tx, "r1", "failed")?;
            on_run_status(tx, "r1", "completed")?;
            Ok(c["id"].as_str().unwrap().to_owned())
        })
        .unwrap();
        let first = claim(&store, 10).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].1.id, id);
        assert!(claim(&store, 10).unwrap().is_empty(), "claimed twice");
        let retry = Retry {
            base_us: 1,
            max_us: 1,
            attempts: 2,
        };
        finish(&store, &first[0].0, Err("refused".into()), &retry).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let again = claim(&store, 10).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].0.attempts, 1);
        finish(&store, &again[0].0, Err("refused".into()), &retry).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(
            claim(&store, 10).unwrap().is_empty(),
            "retried past the last attempt"
        );
        let d = read(&store, |tx| deliveries(tx, Some("ann"), None, 10)).unwrap();
        assert_eq!(d["data"][0]["status"], "failed");
        assert_eq!(d["data"][0]["error"], "refused");
    }
}

//! The audit trail: security-relevant actions (sign-ins, token creation
//! and revocation, user changes, deletes, aborts, visibility changes) with
//! who, what, when and from where. Written in the same transaction as the
//! action, so an action is never without its entry; read by administrators.

use serde_json::{Value, json};

use super::auth::Identity;
use super::{Error, read};
use crate::storage::{AuditRow, StateStore, WriteTx};
use crate::util::{fmt_ts, now_us};

/// Most entries one read answers.
pub const MAX_PAGE: usize = 1000;

/// Records that `who` did `action` to `target`.
pub fn record(
    tx: &dyn WriteTx,
    who: &Identity,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), Error> {
    record_as(tx, &who.user, &who.ip, action, target, detail)
}

/// Records an action by `actor` (possibly unknown: an empty string) from
/// `ip`.
pub fn record_as(
    tx: &dyn WriteTx,
    actor: &str,
    ip: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), Error> {
    tx.audit_insert(&AuditRow {
        seq: 0,
        ts: now_us(),
        actor: actor.chars().take(200).collect(),
        action: action.to_owned(),
        target: target.chars().take(200).collect(),
        detail: detail.chars().take(2000).collect(),
        ip: ip.chars().take(100).collect(),
    })?;
    Ok(())
}

/// The newest entries (before sequence number `before`, when given),
/// newest first → `{"data": [...], "count"}`: administrators only.
pub fn list(
    store: &dyn StateStore,
    who: &Identity,
    before: Option<i64>,
    limit: usize,
) -> Result<Value, Error> {
    who.must_be_admin()?;
    let rows = read(store, |tx| Ok(tx.audit(before, limit.clamp(1, MAX_PAGE))?))?;
    let data: Vec<Value> = rows
        .iter()
        .map(|a| {
            json!({
                "seq": a.seq, "ts": fmt_ts(a.ts), "actor": a.actor, "action": a.action,
                "target": a.target, "detail": a.detail, "ip": a.ip,
            })
        })
        .collect();
    Ok(json!({ "count": data.len(), "data": data }))
}

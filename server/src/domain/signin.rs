//! Failed sign-ins, counted in the store per user name and per address,
//! so every replica sharing it enforces one limit (and a restart forgets
//! nothing), and recorded in the audit trail without the password and
//! without letting a flood of attempts flood the trail.
//!
//! An attempt is counted as failed when it begins ([`begin`]), before the
//! password is checked, and uncounted when it succeeds ([`succeeded`]):
//! attempts made in parallel cannot slip past the limit while their
//! passwords are being checked.

use super::{Error, audit};
use crate::storage::WriteTx;

/// Failed sign-ins one user name may have within [`WINDOW_US`] before
/// further attempts are refused until the window ends.
pub const MAX_FAILS_PER_USER: i64 = 5;
/// Failed sign-ins one address may have within [`WINDOW_US`].
pub const MAX_FAILS_PER_IP: i64 = 20;
/// The window failed sign-ins are counted in (µs): 15 minutes from the
/// first failure.
pub const WINDOW_US: i64 = 15 * 60 * 1_000_000;
/// Failed and refused sign-ins recorded one by one in the audit trail per
/// window, all names and addresses together; past it one entry says
/// that further ones are not recorded until the window ends. Each name and
/// address adds at most its limit of failures and one refusal.
pub const MAX_AUDITED_PER_WINDOW: i64 = 1000;

/// The key counting audit entries of the window.
const AUDITED: &str = "audited";

fn user_key(user: &str) -> String {
    format!("u:{}", user.chars().take(200).collect::<String>())
}

fn ip_key(ip: &str) -> String {
    format!("a:{}", ip.chars().take(100).collect::<String>())
}

/// The count under `key` and when its window began (a new window when
/// the last one is over).
fn current(tx: &dyn WriteTx, key: &str, now: i64) -> Result<(i64, i64), Error> {
    Ok(match tx.signin_failures(key)? {
        Some((n, since)) if since > now - WINDOW_US => (n, since),
        _ => (0, now),
    })
}

/// Records a failed or refused sign-in in the audit trail, within
/// [`MAX_AUDITED_PER_WINDOW`].
fn record(
    tx: &dyn WriteTx,
    user: &str,
    ip: &str,
    action: &str,
    detail: &str,
    now: i64,
) -> Result<(), Error> {
    let (n, since) = current(tx, AUDITED, now)?;
    tx.signin_failures_put(AUDITED, n + 1, since)?;
    if n < MAX_AUDITED_PER_WINDOW {
        audit::record_as(tx, user, ip, action, user, detail)
    } else if n == MAX_AUDITED_PER_WINDOW {
        audit::record_as(
            tx,
            "",
            ip,
            "signin_audit_paused",
            "",
            &format!(
                "more than {MAX_AUDITED_PER_WINDOW} failed sign-ins within 15 minutes: \
                 further ones are not recorded one by one until the window ends"
            ),
        )
    } else {
        Ok(())
    }
}

/// Begins a sign-in attempt for `user` from `ip` at `now` (µs): false
/// (refused) when the name or the address has reached its limit; the
/// first refusal of each in a window is recorded in the audit trail.
/// Otherwise the attempt is counted as a failure until [`succeeded`].
pub fn begin(tx: &dyn WriteTx, user: &str, ip: &str, now: i64) -> Result<bool, Error> {
    tx.signin_failures_purge(now - WINDOW_US)?;
    let keys = [
        (user_key(user), MAX_FAILS_PER_USER),
        (ip_key(ip), MAX_FAILS_PER_IP),
    ];
    let counts = [current(tx, &keys[0].0, now)?, current(tx, &keys[1].0, now)?];
    let over: Vec<bool> = keys
        .iter()
        .zip(&counts)
        .map(|((_, max), (n, _))| n >= max)
        .collect();
    if over.iter().any(|o| *o) {
        let mut first = false;
        for (((key, max), (n, since)), o) in keys.iter().zip(&counts).zip(&over) {
            if *o {
                // Refusals are counted on past the limit: only the first
                // is recorded.
                first |= n == max;
                tx.signin_failures_put(key, n + 1, *since)?;
            }
        }
        if first {
            record(
                tx,
                user,
                ip,
                "signin_refused",
                "too many failed sign-ins",
                now,
            )?;
        }
        return Ok(false);
    }
    for ((key, _), (n, since)) in keys.iter().zip(&counts) {
        tx.signin_failures_put(key, n + 1, *since)?;
    }
    Ok(true)
}

/// A begun attempt succeeded: the name's failures are forgotten and the
/// attempt no longer counts against the address.
pub fn succeeded(tx: &dyn WriteTx, user: &str, ip: &str, now: i64) -> Result<(), Error> {
    tx.signin_failures_delete(&user_key(user))?;
    let key = ip_key(ip);
    let (n, since) = current(tx, &key, now)?;
    if n > 0 {
        tx.signin_failures_put(&key, n - 1, since)?;
    }
    Ok(())
}

/// A begun attempt failed (it stays counted): recorded in the audit trail
/// with why (`reason`), never the password.
pub fn failed(tx: &dyn WriteTx, user: &str, ip: &str, reason: &str, now: i64) -> Result<(), Error> {
    record(tx, user, ip, "signin_failed", reason, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::write;
    use crate::storage::sqlite::SqliteStore;

    #[test]
    fn the_audit_trail_takes_a_bounded_number_of_failures_per_window() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("store");
        let now = crate::util::now_us();
        // Many names from many addresses, each failing as often as it may
        // and then retrying: far more attempts than the trail takes.
        let mut refused = 0;
        for i in 0..400 {
            let (user, ip) = (format!("user{i}"), format!("10.0.{}.{}", i / 250, i % 250));
            for _ in 0..8 {
                let allowed = write(&store, |tx| {
                    let ok = begin(tx, &user, &ip, now)?;
                    if ok {
                        failed(tx, &user, &ip, "no such user", now)?;
                    }
                    Ok(ok)
                })
                .expect("attempt");
                refused += usize::from(!allowed);
            }
        }
        assert_eq!(refused, 400 * 3);
        let rows = crate::domain::read(&store, |tx| Ok(tx.audit(None, 5000)?)).expect("audit");
        assert_eq!(rows.len() as i64, MAX_AUDITED_PER_WINDOW + 1);
        assert_eq!(rows[0].action, "signin_audit_paused");
        // The next window records again.
        let later = now + WINDOW_US + 1;
        write(&store, |tx| {
            assert!(begin(tx, "user1", "10.0.0.1", later)?);
            failed(tx, "user1", "10.0.0.1", "no such user", later)
        })
        .expect("later");
        let rows = crate::domain::read(&store, |tx| Ok(tx.audit(None, 5000)?)).expect("audit");
        assert_eq!(rows.len() as i64, MAX_AUDITED_PER_WINDOW + 2);
        assert_eq!(rows[0].action, "signin_failed");
    }
}

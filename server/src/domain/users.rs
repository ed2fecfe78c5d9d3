//! Users and groups: who owns runs and tokens, who is an administrator,
//! and the passwords people sign in with (argon2id).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde_json::{Value, json};

use super::auth::{Identity, bump_generation};
use super::{Error, audit, check_name, read, write};
use crate::storage::{StateStore, UserRow, WriteTx};
use crate::util::now_us;

/// Longest user or group name, in bytes.
pub const MAX_NAME: usize = 100;
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 8;
/// Longest password accepted (argon2 takes any, but a megabyte of
/// "password" is an attack on the server's memory, not a password).
pub const MAX_PASSWORD: usize = 1024;

pub(crate) fn check_user_name(name: &str) -> Result<(), Error> {
    check_name("user name", name, MAX_NAME)?;
    if name.trim() != name || name.contains('/') {
        return Err(Error::invalid(
            "a user name must not start or end with spaces or contain '/'",
        ));
    }
    Ok(())
}

/// What `simtrack user add` sets (`None`: leave as is, or the default for
/// a new user).
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub email: Option<String>,
    pub group: Option<String>,
    pub admin: Option<bool>,
    pub disabled: Option<bool>,
}

/// Creates the user `name` (no group, not an administrator) unless it
/// exists.
pub fn ensure(store: &dyn StateStore, name: &str) -> Result<(), Error> {
    check_user_name(name)?;
    write(store, |tx| {
        if tx.user_get(name)?.is_none() {
            tx.user_put(&UserRow {
                name: name.to_owned(),
                created: now_us() / 1_000_000,
                ..UserRow::default()
            })?;
            audit::record(tx, &Identity::console(), "user_add", name, "{}")?;
        }
        Ok(())
    })
}

/// Adds user `name`, or changes the given fields of an existing one;
/// whether it was new. Administrators only.
pub fn put(
    store: &dyn StateStore,
    by: &Identity,
    name: &str,
    c: &UserChange,
) -> Result<bool, Error> {
    by.must_be_admin()?;
    check_change(name, c)?;
    write(store, |tx| apply(tx, by, name, c))
}

/// Refuses a bad user name, group name or email address in `c`.
pub(crate) fn check_change(name: &str, c: &UserChange) -> Result<(), Error> {
    check_user_name(name)?;
    if let Some(g) = c.group.as_deref().filter(|g| !g.is_empty()) {
        check_name("group name", g, MAX_NAME)?;
    }
    if let Some(e) = c.email.as_deref().filter(|e| !e.is_empty())
        && (e.len() > 320 || !e.contains('@') || e.chars().any(|c| c.is_whitespace()))
    {
        return Err(Error::invalid(format!("'{e}' is not an email address")));
    }
    Ok(())
}

/// [`put`] inside the caller's transaction (checked by [`check_change`]
/// and the caller's rights already); whether the user is new.
pub(crate) fn apply(
    tx: &dyn WriteTx,
    by: &Identity,
    name: &str,
    c: &UserChange,
) -> Result<bool, Error> {
    let old = tx.user_get(name)?;
    let new = old.is_none();
    let mut u = old.unwrap_or_else(|| UserRow {
        name: name.to_owned(),
        created: now_us() / 1_000_000,
        ..UserRow::default()
    });
    if let Some(e) = &c.email {
        u.email = Some(e.clone()).filter(|e| !e.is_empty());
        // A user's email address is where their notifications go, unless
        // they already have that address as a channel.
        if let Some(addr) = &u.email
            && !tx
                .notify_channels(Some(name))?
                .iter()
                .any(|ch| ch.kind == "email" && ch.target == *addr)
        {
            super::notify::add_channel(
                tx,
                name,
                &super::notify::NewChannel {
                    kind: "email".to_owned(),
                    target: addr.clone(),
                    format: None,
                    events: None,
                },
            )?;
        }
    }
    if let Some(g) = &c.group {
        u.group = Some(g.clone()).filter(|g| !g.is_empty());
    }
    if let Some(a) = c.admin {
        u.admin = a;
    }
    if let Some(d) = c.disabled {
        u.disabled = d;
    }
    tx.user_put(&u)?;
    bump_generation(tx)?;
    let action = match (new, c.disabled) {
        (true, _) => "user_add",
        (false, Some(true)) => "user_disable",
        (false, Some(false)) => "user_enable",
        (false, None) => "user_change",
    };
    audit::record(tx, by, action, name, &doc(&u).to_string())?;
    Ok(new)
}

/// Every user → documents (never password hashes).
pub fn list(store: &dyn StateStore) -> Result<Vec<UserRow>, Error> {
    read(store, |tx| Ok(tx.users()?))
}

/// A user as lists show it.
pub fn doc(u: &UserRow) -> Value {
    json!({
        "name": u.name, "email": u.email, "group": u.group, "admin": u.admin,
        "disabled": u.disabled, "password": u.password.is_some(),
        "created": crate::util::fmt_ts(u.created.saturating_mul(1_000_000)),
    })
}

/// Sets user `name`'s password (hashed with argon2id). Administrators
/// only, or the user itself.
pub fn set_password(
    store: &dyn StateStore,
    by: &Identity,
    name: &str,
    password: &str,
) -> Result<(), Error> {
    if !by.admin && by.user != name {
        return Err(Error::forbidden(
            "only administrators may set others' passwords",
        ));
    }
    if password.chars().count() < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(Error::invalid(format!(
            "a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )));
    }
    let hash = hash_password(password)?;
    write(store, |tx| {
        let mut u = tx
            .user_get(name)?
            .ok_or_else(|| Error::not_found(format!("no user '{name}'")))?;
        u.password = Some(hash.clone());
        tx.user_put(&u)?;
        audit::record(tx, by, "user_password", name, "")?;
        Ok(())
    })
}

fn hash_password(password: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    crate::util::fill_random(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::internal(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("cannot hash the password: {e}")))
}

/// A hash to check against when the user does not exist, so a sign-in
/// for an unknown name takes as long as one with a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password").unwrap_or_default())
}

/// The user `name` if `password` is theirs and they are not disabled.
pub fn check_password(
    store: &dyn StateStore,
    name: &str,
    password: &str,
) -> Result<Option<UserRow>, Error> {
    if password.len() > MAX_PASSWORD {
        return Ok(None);
    }
    let u = read(store, |tx| Ok(tx.user_get(name)?))?;
    let stored = u
        .as_ref()
        .and_then(|u| u.password.clone())
        .unwrap_or_else(|| decoy_hash().to_owned());
    let ok = PasswordHash::new(&stored).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    });
    Ok(u.filter(|u| ok && u.password.is_some() && !u.disabled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sqlite::SqliteStore;

    #[test]
    fn a_users_email_becomes_their_notification_channel_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("store");
        let change = |email: &str| UserChange {
            email: Some(email.to_owned()),
            ..UserChange::default()
        };
        put(
            &store,
            &Identity::console(),
            "ada",
            &change("ada@example.org"),
        )
        .expect("add");
        // Setting the same address again adds nothing; a new one adds it.
        put(
            &store,
            &Identity::console(),
            "ada",
            &change("ada@example.org"),
        )
        .expect("again");
        put(
            &store,
            &Identity::console(),
            "ada",
            &change("ada@lab.example"),
        )
        .expect("change");
        let channels = read(&store, |tx| Ok(tx.notify_channels(Some("ada"))?)).expect("read");
        let mut emails: Vec<&str> = channels
            .iter()
            .filter(|c| c.kind == "email")
            .map(|c| c.target.as_str())
            .collect();
        emails.sort_unstable();
        assert_eq!(emails, ["ada@example.org", "ada@lab.example"]);
    }
}

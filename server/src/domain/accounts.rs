//! Simvue's user and tenant administration (`/api/users`,
//! `/api/tenants`) on our users and groups: a Simvue user is one of our
//! users (its id is its name), a tenant is a group (its id is its name).
//! A group exists when a record was made for it (`POST /api/tenants`) or
//! when a user is in it (`simtrack user add --group`).
//!
//! Changes are for administrators; others see what [`super::access`]
//! lets them (themselves, their group and its members). What the fields
//! mean here: `is_enabled` on a user is the opposite of `disabled`; on a
//! tenant, `false` refuses every token of its members (as a disabled
//! user's). `is_readonly` makes every token of the user read-only.
//! `is_admin` is our administrator. Simvue's manager role and per-tenant
//! quotas (`max_runs`, `max_request_rate`, `max_data_volume`) have no
//! counterpart: only `false` and `0` (no limit) are accepted, so nothing
//! is stored that would not be enforced. Deleting a user who may own runs
//! disables it and marks it deleted (its runs stay); creating it again
//! restores it.

use serde_json::{Map, Value, json};

use super::auth::{Identity, bump_generation};
use super::users::{self, UserChange};
use super::{Error, Result, audit, parse_json};
use crate::storage::{ReadTx, TenantRow, UserRow, WriteTx};
use crate::util::{fmt_ts, now_us};

/// Longest full name, in bytes.
const MAX_FULLNAME: usize = 200;

/// What we keep of a Simvue user besides [`UserRow`].
#[derive(Debug, Clone, Default, PartialEq)]
struct Profile {
    fullname: Option<String>,
    readonly: bool,
    welcome: bool,
    deleted: bool,
}

impl Profile {
    fn read(tx: &dyn ReadTx, name: &str) -> Result<Profile> {
        let v = tx
            .user_profile(name)?
            .map(|d| parse_json(&d, Value::Null))
            .unwrap_or(Value::Null);
        Ok(Profile {
            fullname: v["fullname"].as_str().map(str::to_owned),
            readonly: v["is_readonly"].as_bool().unwrap_or(false),
            welcome: v["welcome"].as_bool().unwrap_or(false),
            deleted: v["is_deleted"].as_bool().unwrap_or(false),
        })
    }

    fn doc(&self) -> String {
        json!({
            "fullname": self.fullname, "is_readonly": self.readonly,
            "welcome": self.welcome, "is_deleted": self.deleted,
        })
        .to_string()
    }
}

/// Whether every token of user `name` is read-only (`is_readonly`).
pub fn read_only(tx: &dyn ReadTx, name: &str) -> Result<bool> {
    Ok(Profile::read(tx, name)?.readonly)
}

/// Whether group `group` was disabled (`is_enabled: false`).
pub fn group_disabled(tx: &dyn ReadTx, group: &str) -> Result<bool> {
    Ok(tx
        .tenant_get(group)?
        .is_some_and(|t| !TenantDoc::parse(&t.doc).enabled))
}

fn user_doc(u: &UserRow, p: &Profile) -> Value {
    json!({
        "id": u.name,
        "username": u.name,
        "fullname": p.fullname.clone().unwrap_or_else(|| u.name.clone()),
        "email": u.email,
        "tenant": u.group,
        "is_admin": u.admin,
        "is_manager": false,
        "is_readonly": p.readonly,
        "is_enabled": !u.disabled,
        "is_deleted": p.deleted,
        "welcome": p.welcome,
        "created": fmt_ts(u.created.saturating_mul(1_000_000)),
    })
}

fn user_not_found(id: &str) -> Error {
    Error::not_found(format!("user {id} not found"))
}

/// The user `id` as the caller sees it.
fn visible_user(tx: &dyn ReadTx, id: &str) -> Result<UserRow> {
    tx.users()?
        .into_iter()
        .find(|u| u.name == id)
        .ok_or_else(|| user_not_found(id))
}

/// `GET /api/users` → `{data, count}`: the users the caller sees.
pub fn user_list(tx: &dyn ReadTx, (start, count): (usize, usize)) -> Result<Value> {
    let mut all = Vec::new();
    for u in tx.users()? {
        let p = Profile::read(tx, &u.name)?;
        all.push(user_doc(&u, &p));
    }
    Ok(super::page(all, start, count))
}

/// `GET /api/users/{id}`.
pub fn user_get(tx: &dyn ReadTx, id: &str) -> Result<Value> {
    let u = visible_user(tx, id)?;
    let p = Profile::read(tx, &u.name)?;
    Ok(user_doc(&u, &p))
}

/// A field of a user document: the top level, or the nested `user`
/// object the client also sends at creation.
fn field<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    body.get(key)
        .or_else(|| body.get("user").and_then(|u| u.get(key)))
        .filter(|v| !v.is_null())
}

fn bool_field(body: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match field(body, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Error::invalid(format!("'{key}' must be true or false"))),
    }
}

fn str_field<'a>(body: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>> {
    match field(body, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::invalid(format!("'{key}' must be a string"))),
    }
}

/// Whether group `name` exists: a record, or a user in it.
fn group_exists(tx: &dyn ReadTx, name: &str) -> Result<bool> {
    Ok(tx.tenant_get(name)?.is_some()
        || tx.users()?.iter().any(|u| u.group.as_deref() == Some(name)))
}

/// Applies the user fields of `body` to user `name` (new when `new`).
fn apply_user(
    tx: &dyn WriteTx,
    by: &Identity,
    name: &str,
    body: &Map<String, Value>,
    revive: bool,
) -> Result<()> {
    if bool_field(body, "is_manager")? == Some(true) {
        return Err(Error::invalid(
            "simtrack has no manager role: 'is_manager' must be false",
        ));
    }
    let group = match field(body, "tenant") {
        None => None,
        Some(Value::String(t)) if t.is_empty() => Some(String::new()),
        Some(Value::String(t)) => {
            if !group_exists(tx, t)? {
                return Err(Error::invalid(format!("no tenant '{t}'")));
            }
            Some(t.clone())
        }
        Some(_) => return Err(Error::invalid("'tenant' must be a tenant id")),
    };
    let enabled = bool_field(body, "is_enabled")?;
    let change = UserChange {
        email: str_field(body, "email")?.map(str::to_owned),
        group,
        admin: bool_field(body, "is_admin")?,
        disabled: match (enabled, revive) {
            (Some(e), _) => Some(!e),
            (None, true) => Some(false),
            (None, false) => None,
        },
    };
    users::check_change(name, &change)?;
    let mut p = Profile::read(tx, name)?;
    if let Some(f) = str_field(body, "fullname")? {
        if f.len() > MAX_FULLNAME {
            return Err(Error::invalid(format!(
                "'fullname' is longer than {MAX_FULLNAME} bytes"
            )));
        }
        p.fullname = Some(f.to_owned());
    }
    if let Some(r) = bool_field(body, "is_readonly")? {
        p.readonly = r;
    }
    if let Some(w) = bool_field(body, "welcome")? {
        p.welcome = w;
    }
    if revive {
        p.deleted = false;
    }
    // Profile first: Scoped refuses it to non-administrators before any
    // user row is written.
    tx.user_profile_put(name, &p.doc())?;
    users::apply(tx, by, name, &change)?;
    Ok(())
}

/// `POST /api/users` `{"username", "fullname", "email", "tenant",
/// "is_admin", "is_readonly", "is_enabled", ...}` (also nested under
/// `user`) → `{"id"}`. An existing user is a conflict naming its id; a
/// deleted one is restored.
pub fn user_create(tx: &dyn WriteTx, by: &Identity, body: &Map<String, Value>) -> Result<Value> {
    by.must_be_admin().map_err(|_| permission("users"))?;
    let name = str_field(body, "username")?
        .ok_or_else(|| Error::invalid("'username' is required"))?
        .to_owned();
    users::check_user_name(&name)?;
    let revive = match tx.user_get(&name)? {
        None => false,
        Some(_) if Profile::read(tx, &name)?.deleted => true,
        Some(_) => {
            let mut e = Error::conflict(format!("user '{name}' exists"));
            e.id = Some(name);
            return Err(e);
        }
    };
    apply_user(tx, by, &name, body, revive)?;
    Ok(json!({ "id": name }))
}

/// `PUT /api/users/{id}` with any of the creation fields (`username`
/// cannot change: it is the id).
pub fn user_update(
    tx: &dyn WriteTx,
    by: &Identity,
    id: &str,
    body: &Map<String, Value>,
) -> Result<Value> {
    visible_user(tx, id)?;
    by.must_be_admin().map_err(|_| permission("users"))?;
    if let Some(n) = str_field(body, "username")?
        && n != id
    {
        return Err(Error::invalid("a user's name is its id and cannot change"));
    }
    apply_user(tx, by, id, body, false)?;
    Ok(json!({ "id": id }))
}

/// `DELETE /api/users/{id}` → `{}`: the user is disabled and marked
/// deleted (its runs, tokens and audit entries keep their name).
pub fn user_delete(tx: &dyn WriteTx, by: &Identity, id: &str) -> Result<Value> {
    visible_user(tx, id)?;
    by.must_be_admin().map_err(|_| permission("users"))?;
    if id == by.user {
        return Err(Error::invalid("you cannot delete yourself"));
    }
    let mut p = Profile::read(tx, id)?;
    p.deleted = true;
    tx.user_profile_put(id, &p.doc())?;
    users::apply(
        tx,
        by,
        id,
        &UserChange {
            disabled: Some(true),
            ..UserChange::default()
        },
    )?;
    audit::record(tx, by, "user_delete", id, "{}")?;
    Ok(json!({}))
}

/// The answer to a non-administrator's change (the client recognises
/// its wording).
fn permission(what: &str) -> Error {
    Error::forbidden(format!(
        "You do not have permission to change {what}: administrators only"
    ))
}

/// A tenant's settings as stored.
#[derive(Debug, Clone, PartialEq)]
struct TenantDoc {
    enabled: bool,
}

impl TenantDoc {
    fn parse(doc: &str) -> TenantDoc {
        let v = parse_json(doc, Value::Null);
        TenantDoc {
            enabled: v["is_enabled"].as_bool().unwrap_or(true),
        }
    }
}

/// Every tenant the caller sees: records, and groups that only exist as
/// their members' group.
fn visible_tenants(tx: &dyn ReadTx) -> Result<Vec<TenantRow>> {
    let mut all = tx.tenants()?;
    let users = tx.users()?;
    for g in users.iter().filter_map(|u| u.group.as_deref()) {
        if !all.iter().any(|t| t.name == g) {
            // Seen when its member is seen (the caller's own group).
            all.push(TenantRow {
                name: g.to_owned(),
                doc: String::new(),
                created: users
                    .iter()
                    .filter(|u| u.group.as_deref() == Some(g))
                    .map(|u| u.created)
                    .min()
                    .unwrap_or(0)
                    .saturating_mul(1_000_000),
            });
        }
    }
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(all)
}

fn tenant_doc(t: &TenantRow) -> Value {
    json!({
        "id": t.name,
        "name": t.name,
        "is_enabled": TenantDoc::parse(&t.doc).enabled,
        "max_request_rate": 0,
        "max_runs": 0,
        "max_data_volume": 0,
        "created": fmt_ts(t.created),
    })
}

fn tenant_not_found(id: &str) -> Error {
    Error::not_found(format!("tenant {id} not found"))
}

fn visible_tenant(tx: &dyn ReadTx, id: &str) -> Result<TenantRow> {
    visible_tenants(tx)?
        .into_iter()
        .find(|t| t.name == id)
        .ok_or_else(|| tenant_not_found(id))
}

/// `GET /api/tenants` → `{data, count}`.
pub fn tenant_list(tx: &dyn ReadTx, (start, count): (usize, usize)) -> Result<Value> {
    let all = visible_tenants(tx)?.iter().map(tenant_doc).collect();
    Ok(super::page(all, start, count))
}

/// `GET /api/tenants/{id}`.
pub fn tenant_get(tx: &dyn ReadTx, id: &str) -> Result<Value> {
    Ok(tenant_doc(&visible_tenant(tx, id)?))
}

/// Reads the tenant fields of `body` onto `d`, refusing quotas.
fn apply_tenant(d: &mut TenantDoc, body: &Map<String, Value>) -> Result<()> {
    for k in ["max_request_rate", "max_runs", "max_data_volume"] {
        match body.get(k) {
            None | Some(Value::Null) => {}
            Some(v) if v.as_i64() == Some(0) => {}
            Some(_) => {
                return Err(Error::invalid(format!(
                    "simtrack enforces no per-tenant quota: '{k}' must be 0 (no limit)"
                )));
            }
        }
    }
    if let Some(e) = bool_field(body, "is_enabled")? {
        d.enabled = e;
    }
    Ok(())
}

fn put_tenant(tx: &dyn WriteTx, by: &Identity, t: &TenantRow, action: &str) -> Result<()> {
    tx.tenant_put(t)?;
    // A tenant's `is_enabled` decides whether its members' tokens work.
    bump_generation(tx)?;
    audit::record(tx, by, action, &t.name, &t.doc)?;
    Ok(())
}

/// `POST /api/tenants` `{"name", "is_enabled", quotas of 0}` → `{"id"}`;
/// an existing group is a conflict naming its id.
pub fn tenant_create(tx: &dyn WriteTx, by: &Identity, body: &Map<String, Value>) -> Result<Value> {
    by.must_be_admin().map_err(|_| permission("tenants"))?;
    let name = str_field(body, "name")?
        .ok_or_else(|| Error::invalid("'name' is required"))?
        .to_owned();
    super::check_name("tenant name", &name, users::MAX_NAME)?;
    if name.trim() != name || name.contains('/') {
        return Err(Error::invalid(
            "a tenant name must not start or end with spaces or contain '/'",
        ));
    }
    if group_exists(tx, &name)? {
        let mut e = Error::conflict(format!("tenant '{name}' exists"));
        e.id = Some(name);
        return Err(e);
    }
    let mut d = TenantDoc { enabled: true };
    apply_tenant(&mut d, body)?;
    let t = TenantRow {
        name: name.clone(),
        doc: json!({ "is_enabled": d.enabled }).to_string(),
        created: now_us(),
    };
    put_tenant(tx, by, &t, "tenant_add")?;
    Ok(json!({ "id": name }))
}

/// `PUT /api/tenants/{id}` with `is_enabled` (the name is the id).
pub fn tenant_update(
    tx: &dyn WriteTx,
    by: &Identity,
    id: &str,
    body: &Map<String, Value>,
) -> Result<Value> {
    let mut t = visible_tenant(tx, id)?;
    by.must_be_admin().map_err(|_| permission("tenants"))?;
    if let Some(n) = str_field(body, "name")?
        && n != id
    {
        return Err(Error::invalid(
            "a tenant's name is its id and cannot change",
        ));
    }
    if t.doc.is_empty() {
        t.created = now_us();
    }
    let mut d = TenantDoc::parse(&t.doc);
    apply_tenant(&mut d, body)?;
    t.doc = json!({ "is_enabled": d.enabled }).to_string();
    put_tenant(tx, by, &t, "tenant_change")?;
    Ok(json!({ "id": id }))
}

/// `DELETE /api/tenants/{id}` → `{}`: refused while it has members that
/// are not deleted; deleted members leave it.
pub fn tenant_delete(tx: &dyn WriteTx, by: &Identity, id: &str) -> Result<Value> {
    visible_tenant(tx, id)?;
    by.must_be_admin().map_err(|_| permission("tenants"))?;
    let members: Vec<UserRow> = tx
        .users()?
        .into_iter()
        .filter(|u| u.group.as_deref() == Some(id))
        .collect();
    let mut live = Vec::new();
    for u in &members {
        if !Profile::read(tx, &u.name)?.deleted {
            live.push(u.name.as_str());
        }
    }
    if !live.is_empty() {
        return Err(Error::conflict(format!(
            "tenant '{id}' has members ({}): move or delete them first",
            live.join(", ")
        )));
    }
    for u in &members {
        users::apply(
            tx,
            by,
            &u.name,
            &UserChange {
                group: Some(String::new()),
                ..UserChange::default()
            },
        )?;
    }
    tx.tenant_delete(id)?;
    bump_generation(tx)?;
    audit::record(tx, by, "tenant_delete", id, "{}")?;
    Ok(json!({}))
}

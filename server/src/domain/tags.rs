//! Tags as objects: a run carries tag names; each name is also a tag with
//! an id, a colour and a description, made when a run first uses it or
//! when a client creates it. Renaming a tag renames it on every run;
//! deleting it takes it off every run.

use serde_json::{Map, Value, json};
use simtrack::model::MAX_NAME_BYTES;

use super::{Error, Result, check_name, parse_json};
use crate::storage::{ReadTx, RunPatch, RunProjection, TagRow, WriteTx};
use crate::util::{fmt_ts, new_id, now_us};

/// The colour a tag gets when nobody chose one: fixed per name, so the
/// same tag looks the same on every server.
pub fn default_colour(name: &str) -> String {
    // FNV-1a, then the low 24 bits as RGB, lifted so text stays readable.
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    let [_, r, g, b] = h.to_be_bytes();
    let lift = |c: u8| 64 + c / 2;
    format!("#{:02x}{:02x}{:02x}", lift(r), lift(g), lift(b))
}

fn doc(t: &TagRow) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "colour": t.colour,
        "description": t.description,
        "created": fmt_ts(t.created),
        "user": t.user,
    })
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("tag {id} not found"))
}

fn colour_field(v: &Value) -> Result<String> {
    match v {
        Value::String(c) if !c.is_empty() && c.len() <= 64 => Ok(c.clone()),
        _ => Err(Error::invalid(
            "'colour' must be a colour string such as #ff8000",
        )),
    }
}

fn description_field(v: &Value) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(d) if d.len() <= 4096 => Ok(Some(d.clone())),
        _ => Err(Error::invalid(
            "'description' must be a string of at most 4096 bytes",
        )),
    }
}

/// Makes a tag for every name in `names` that is not one yet (a run
/// started using it), including names whose tag the caller cannot see.
pub fn register(tx: &dyn WriteTx, names: &[String], user: &str) -> Result<()> {
    for name in names {
        if tx.tag_by_name(name)?.is_none() {
            tx.tag_ensure(&TagRow {
                id: new_id(),
                name: name.clone(),
                colour: default_colour(name),
                description: None,
                created: now_us(),
                user: user.to_owned(),
            })?;
        }
    }
    Ok(())
}

/// `POST /api/tags` `{"name", "colour", "description"}` → `{"id"}`; an
/// existing name is a conflict naming its id.
pub fn create(tx: &dyn WriteTx, body: &Map<String, Value>, user: &str) -> Result<Value> {
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("'name' (string) is required"))?
        .to_owned();
    check_name("tag name", &name, MAX_NAME_BYTES)?;
    if let Some(id) = tx.tag_by_name(&name)? {
        let mut e = Error::conflict(format!("tag '{name}' already exists"));
        e.id = Some(id);
        return Err(e);
    }
    let colour = match body.get("colour") {
        None | Some(Value::Null) => default_colour(&name),
        Some(c) => colour_field(c)?,
    };
    let description = body
        .get("description")
        .map(description_field)
        .transpose()?
        .flatten();
    let t = TagRow {
        id: new_id(),
        name,
        colour,
        description,
        created: now_us(),
        user: user.to_owned(),
    };
    tx.tag_insert(&t)?;
    Ok(json!({ "id": t.id }))
}

/// The tag document, or not found.
pub fn get(tx: &dyn ReadTx, id: &str) -> Result<Value> {
    tx.tag_get(id)?
        .map(|t| doc(&t))
        .ok_or_else(|| not_found(id))
}

/// Every tag → `{data, count}`, oldest first, or sorted by `name` or
/// `created` (descending when asked).
pub fn list(
    tx: &dyn ReadTx,
    sort: Option<(&str, bool)>,
    (start, count): (usize, usize),
) -> Result<Value> {
    let mut rows = tx.tag_list()?;
    if let Some((column, desc)) = sort {
        if column == "name" {
            rows.sort_by(|a, b| a.name.cmp(&b.name));
        }
        if desc {
            rows.reverse();
        }
    }
    Ok(super::page(rows.iter().map(doc).collect(), start, count))
}

/// Replaces `from` by `to` (or removes it when `to` is `None`) in the tags
/// of every run carrying it.
fn retag_runs(tx: &dyn WriteTx, from: &str, to: Option<&str>) -> Result<()> {
    let scan = tx.run_scan(&RunProjection {
        tags: true,
        ..RunProjection::default()
    })?;
    for r in scan {
        let tags = parse_json(r.tags.as_deref().unwrap_or("[]"), json!([]));
        let names: Vec<String> = tags
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if !names.iter().any(|n| n == from) {
            continue;
        }
        let mut new: Vec<String> = Vec::with_capacity(names.len());
        for n in names {
            let n = if n == from {
                to.map(str::to_owned)
            } else {
                Some(n)
            };
            if let Some(n) = n.filter(|n| !new.contains(n)) {
                new.push(n);
            }
        }
        tx.run_update(
            &r.id,
            &RunPatch {
                tags: Some(Value::from(new).to_string()),
                ..RunPatch::default()
            },
        )?;
    }
    Ok(())
}

/// Changes `name` (on every run too), `colour`, `description` → `{"id"}`.
pub fn update(tx: &dyn WriteTx, id: &str, body: &Map<String, Value>) -> Result<Value> {
    let mut t = tx.tag_get(id)?.ok_or_else(|| not_found(id))?;
    if let Some(n) = body.get("name") {
        let name = n
            .as_str()
            .ok_or_else(|| Error::invalid("'name' must be a string"))?
            .to_owned();
        check_name("tag name", &name, MAX_NAME_BYTES)?;
        if name != t.name {
            if let Some(other) = tx.tag_by_name(&name)? {
                let mut e = Error::conflict(format!("tag '{name}' already exists"));
                e.id = Some(other);
                return Err(e);
            }
            retag_runs(tx, &t.name, Some(&name))?;
            t.name = name;
        }
    }
    if let Some(c) = body.get("colour") {
        t.colour = colour_field(c)?;
    }
    if let Some(d) = body.get("description") {
        t.description = description_field(d)?;
    }
    tx.tag_update(&t)?;
    Ok(json!({ "id": id }))
}

/// Deletes a tag and takes it off every run → `{}`.
pub fn delete(tx: &dyn WriteTx, id: &str) -> Result<Value> {
    let t = tx.tag_get(id)?.ok_or_else(|| not_found(id))?;
    retag_runs(tx, &t.name, None)?;
    tx.tag_delete(id)?;
    Ok(json!({}))
}

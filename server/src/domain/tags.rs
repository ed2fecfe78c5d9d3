//! Tags as objects: a run carries tag names; each name is also a tag with
//! an id, a colour and a description, made when a run first uses it or
//! when a client creates it. Renaming a tag renames it on every run;
//! deleting it takes it off every run.

use serde_json::{Map, Value, json};
use simtrack::model::MAX_NAME_BYTES;

use super::{Error, Result, check_name, parse_json, sorting};
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
/// started using it). A name is one yet when any user's tag has it, seen by
/// this caller or not.
pub fn register(tx: &dyn WriteTx, names: &[String], user: &str) -> Result<()> {
    for name in names {
        tx.tag_insert(&TagRow {
            id: new_id(),
            name: name.clone(),
            colour: default_colour(name),
            description: None,
            created: now_us(),
            user: user.to_owned(),
        })?;
    }
    Ok(())
}

/// The answer to a tag name already taken: the tag's id when the caller
/// sees it, the bare conflict when it belongs to someone else's runs.
fn name_taken(tx: &dyn ReadTx, name: &str) -> Result<Error> {
    let mut e = Error::conflict(format!("tag '{name}' already exists"));
    e.id = tx.tag_by_name(name)?;
    Ok(e)
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
    if !tx.tag_insert(&t)? {
        return Err(name_taken(tx, &t.name)?);
    }
    Ok(json!({ "id": t.id }))
}

/// The tag document, or not found.
pub fn get(tx: &dyn ReadTx, id: &str) -> Result<Value> {
    tx.tag_get(id)?
        .map(|t| doc(&t))
        .ok_or_else(|| not_found(id))
}

/// Every tag → `{data, count}`, oldest first unless `sort` says otherwise.
pub fn list(
    tx: &dyn ReadTx,
    sort: Option<&[(String, bool)]>,
    (start, count): (usize, usize),
) -> Result<Value> {
    let mut all: Vec<Value> = tx.tag_list()?.iter().map(doc).collect();
    if let Some(keys) = sort {
        sorting::sort_docs(&mut all, keys);
    }
    Ok(super::page(all, start, count))
}

/// The `sorting` of a tag list (the keys Simvue's client allows).
pub fn parse_sorting(raw: Option<&str>) -> Result<Option<sorting::SortKeys>> {
    sorting::parse(
        raw,
        "tags",
        |k| matches!(k, "created" | "name"),
        "created or name",
    )
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
    let mut renamed_from = None;
    if let Some(n) = body.get("name") {
        let name = n
            .as_str()
            .ok_or_else(|| Error::invalid("'name' must be a string"))?
            .to_owned();
        check_name("tag name", &name, MAX_NAME_BYTES)?;
        if name != t.name {
            renamed_from = Some(std::mem::replace(&mut t.name, name));
        }
    }
    if let Some(c) = body.get("colour") {
        t.colour = colour_field(c)?;
    }
    if let Some(d) = body.get("description") {
        t.description = description_field(d)?;
    }
    if !tx.tag_update(&t)? {
        return Err(name_taken(tx, &t.name)?);
    }
    if let Some(old) = renamed_from {
        retag_runs(tx, &old, Some(&t.name))?;
    }
    Ok(json!({ "id": id }))
}

/// Deletes a tag and takes it off every run → `{}`.
pub fn delete(tx: &dyn WriteTx, id: &str) -> Result<Value> {
    let t = tx.tag_get(id)?.ok_or_else(|| not_found(id))?;
    retag_runs(tx, &t.name, None)?;
    tx.tag_delete(id)?;
    Ok(json!({}))
}

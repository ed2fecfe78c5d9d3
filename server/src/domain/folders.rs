//! Folders are paths (`/a/b`); creating one creates its ancestors;
//! creating an existing one answers its id.

use serde_json::{Map, Value, json};

use super::{Error, Result, filters, parse_json, sorting};
use crate::storage::{FolderPatch, FolderRow, ReadTx, WriteTx};
use crate::util::{fmt_ts, new_id, now_us};

/// Validates and normalises a folder path (`/` or `/a/b`, no `.`/`..`
/// segments, no control characters): [`simtrack::model::normalize_folder`].
pub fn normalise(path: &str) -> Result<String> {
    use simtrack::model::{FolderError, MAX_FOLDER_PATH_BYTES};
    simtrack::model::normalize_folder(path).map_err(|e| {
        Error::invalid(match e {
            FolderError::TooLong => {
                format!("folder path is longer than {MAX_FOLDER_PATH_BYTES} bytes")
            }
            FolderError::NotAbsolute => "folder path must start with '/'".to_owned(),
            FolderError::ControlCharacter => {
                "folder path must not contain control characters".to_owned()
            }
            FolderError::DotSegment => {
                "folder path must not contain '.' or '..' segments".to_owned()
            }
        })
    })
}

/// The id of folder `path`, creating it and its ancestors as needed.
pub fn ensure(tx: &dyn WriteTx, path: &str) -> Result<String> {
    let path = normalise(path)?;
    let mut id = String::new();
    let mut prefix = String::new();
    let mut paths = vec!["/".to_owned()];
    for s in path.split('/').filter(|s| !s.is_empty()) {
        prefix.push('/');
        prefix.push_str(s);
        paths.push(prefix.clone());
    }
    for p in paths {
        id = match tx.folder_by_path(&p)? {
            // One the caller may not see: answered as if it were made now
            // (a missing one is), with the caller's own view of it, so
            // asking for a path tells nothing of a folder one cannot see.
            Some(i) if tx.folder_get(&i)?.is_none() => {
                let now = now_us();
                let fresh = FolderRow {
                    id: i.clone(),
                    path: p.clone(),
                    description: None,
                    tags: "[]".into(),
                    metadata: "{}".into(),
                    created: now,
                    modified: now,
                    starred: false,
                    owner: String::new(),
                };
                tx.folder_view_put(&i, "", &view_doc(&fresh))?;
                i
            }
            Some(i) => i,
            None => {
                let i = new_id();
                tx.folder_insert(&i, &p, now_us())?;
                i
            }
        };
    }
    Ok(id)
}

/// A user's own view of a folder as stored ([`view_row`] reads it back).
pub fn view_doc(r: &FolderRow) -> String {
    json!({
        "description": r.description, "tags": r.tags, "metadata": r.metadata,
        "created": r.created, "modified": r.modified, "starred": r.starred,
    })
    .to_string()
}

/// `r` with patch `p` applied.
pub fn patched(mut r: FolderRow, p: &FolderPatch) -> FolderRow {
    if let Some(d) = &p.description {
        r.description = d.clone();
    }
    if let Some(t) = &p.tags {
        r.tags = t.clone();
    }
    if let Some(m) = &p.metadata {
        r.metadata = m.clone();
    }
    if let Some(s) = p.starred {
        r.starred = s;
    }
    if let Some(m) = p.modified {
        r.modified = m;
    }
    r
}

/// Folder `f` as `user` sees it through its own view `doc`.
pub fn view_row(f: &FolderRow, doc: &str, user: &str) -> FolderRow {
    let v = parse_json(doc, json!({}));
    FolderRow {
        id: f.id.clone(),
        path: f.path.clone(),
        description: v["description"].as_str().map(str::to_owned),
        tags: v["tags"].as_str().unwrap_or("[]").to_owned(),
        metadata: v["metadata"].as_str().unwrap_or("{}").to_owned(),
        created: v["created"].as_i64().unwrap_or(f.created),
        modified: v["modified"].as_i64().unwrap_or(f.modified),
        starred: v["starred"].as_bool().unwrap_or(false),
        owner: user.to_owned(),
    }
}

fn doc(r: &FolderRow) -> Value {
    let name = r.path.rsplit('/').next().unwrap_or("").to_owned();
    json!({
        "id": r.id,
        "path": r.path,
        "name": if name.is_empty() { "/".to_owned() } else { name },
        "description": r.description,
        "tags": parse_json(&r.tags, json!([])),
        "metadata": parse_json(&r.metadata, json!({})),
        "created": fmt_ts(r.created),
        "modified": fmt_ts(r.modified),
        "starred": r.starred,
        "ttl": Value::Null,
    })
}

/// The folder document, or not found.
pub fn load(tx: &dyn ReadTx, id: &str) -> Result<Value> {
    tx.folder_get(id)?
        .map(|r| doc(&r))
        .ok_or_else(|| Error::not_found(format!("folder {id} not found")))
}

/// Folders matching `fs` → `{data, count}`, oldest first (or newest first
/// when `desc`).
pub fn list(
    tx: &dyn ReadTx,
    fs: &[filters::Filter],
    sort: Option<&[(String, bool)]>,
    (start, count): (usize, usize),
    me: &str,
) -> Result<Value> {
    filters::check_fields(
        fs,
        "folders",
        |k| {
            matches!(
                k,
                "id" | "path"
                    | "folder"
                    | "folder.path"
                    | "name"
                    | "description"
                    | "created"
                    | "modified"
                    | "starred"
                    | "tags"
                    | "ttl"
            ) || sorting::is_metadata_key(k)
        },
        "id, path, name, description, created, modified, starred, tags, ttl and metadata.KEY",
    )?;
    let mut all: Vec<Value> = tx.folder_list()?.iter().map(doc).collect();
    all.retain(|d| filters::all(fs, d, me));
    match sort {
        Some(keys) => sorting::sort_docs(&mut all, keys),
        // Newest first: the simvue client expects a new folder among the
        // first page of `Folder.get`.
        None => all.reverse(),
    }
    Ok(super::page(all, start, count))
}

/// The `sorting` of a folder list (the keys Simvue's client allows).
pub fn parse_sorting(raw: Option<&str>) -> Result<Option<sorting::SortKeys>> {
    sorting::parse(
        raw,
        "folders",
        |k| matches!(k, "created" | "modified" | "path") || sorting::is_metadata_key(k),
        "created, modified, path or metadata.KEY",
    )
}

/// Changes `description`, `tags`, `metadata` (merged) and `starred`.
pub fn update(tx: &dyn WriteTx, id: &str, body: &Map<String, Value>) -> Result<Value> {
    let current = load(tx, id)?;
    let mut p = FolderPatch {
        modified: Some(now_us()),
        ..FolderPatch::default()
    };
    if let Some(d) = body.get("description") {
        p.description = Some(d.as_str().map(str::to_owned));
    }
    if let Some(t) = body.get("tags") {
        if !t.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
            return Err(Error::invalid("'tags' must be a list of strings"));
        }
        p.tags = Some(t.to_string());
    }
    if let Some(m) = body.get("metadata") {
        let Value::Object(new) = m else {
            return Err(Error::invalid("'metadata' must be an object"));
        };
        let mut merged = current["metadata"].as_object().cloned().unwrap_or_default();
        merged.extend(new.clone());
        p.metadata = Some(Value::Object(merged).to_string());
    }
    p.starred = body.get("starred").and_then(Value::as_bool);
    tx.folder_update(id, &p)?;
    Ok(json!({ "id": id }))
}

/// What a folder deletion also removes.
#[derive(Debug, Clone, Copy)]
pub struct DeleteScope {
    /// Subfolders too.
    pub recursive: bool,
    /// The runs in the deleted folders too.
    pub runs: bool,
    /// Only the runs, not the folders.
    pub runs_only: bool,
}

/// Deletes a folder → `{folders, runs}` (the ids removed).
pub fn delete(tx: &dyn WriteTx, id: &str, scope: DeleteScope) -> Result<Value> {
    let folder = load(tx, id)?;
    let path = folder["path"].as_str().unwrap_or("/").to_owned();
    let sub = tx.folders_under(&path)?;
    let folders_in: Vec<String> = if scope.recursive {
        sub.iter().map(|s| s.1.clone()).collect()
    } else {
        vec![path.clone()]
    };
    if !scope.recursive && !scope.runs_only && sub.len() > 1 {
        return Err(Error::conflict(
            "folder has subfolders; pass recursive=True",
        ));
    }
    let mut runs = Vec::new();
    for p in &folders_in {
        runs.extend(tx.runs_in_folder(p)?);
    }
    if !(scope.runs || scope.runs_only || runs.is_empty()) {
        return Err(Error::conflict("folder contains runs; pass runs=True"));
    }
    for r in &runs {
        tx.run_delete(r)?;
    }
    let mut deleted = Vec::new();
    if !scope.runs_only {
        for (fid, p) in &sub {
            if (scope.recursive || *p == path) && p != "/" {
                tx.folder_delete(fid)?;
                deleted.push(fid.clone());
            }
        }
    }
    Ok(json!({ "folders": deleted, "runs": runs }))
}

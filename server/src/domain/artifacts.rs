//! Artifacts: a record (name, size, checksum, metadata) registered first,
//! bytes uploaded to the blob store by content, confirmed, attached to runs
//! with a category, and read back.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use simtrack::model::{Category, MAX_NAME_BYTES};

use super::{Error, Idem, Result, blocking, check_name, runs, sorting};
use crate::storage::{ArtifactRow, Backend, ByteStream, ReadTx, Recorded, WriteTx};
use crate::util::is_sha256;
use crate::util::{new_id, now_us};

/// Makes the signed link of one purpose (upload, download) for an
/// artifact id.
pub type LinkFn = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// The `storage_id` every artifact reads back with: the server's own blob
/// store (Simvue servers can hold several; ours has one).
pub const STORAGE_ID: &str = "default";

/// Checks an artifact name: a plain file name, never a path.
pub fn check_artifact_name(name: &str) -> Result<()> {
    check_name("artifact name", name, MAX_NAME_BYTES)?;
    if name.contains('/') || name.contains('\\') || name == "." || name == ".." {
        return Err(Error::invalid(format!(
            "artifact name '{name}' must be a plain file name (no '/', '\\', '.' or '..')"
        )));
    }
    Ok(())
}

/// The artifact document, with a download link once its bytes are there.
pub fn doc(r: &ArtifactRow, download: &LinkFn) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "original_path": r.original_path,
        "size": r.size,
        "mime_type": r.mime_type,
        "checksum": r.checksum,
        "metadata": r.metadata.as_deref().and_then(|m| serde_json::from_str::<Value>(m).ok()),
        "created": crate::util::fmt_ts(r.created),
        "uploaded": r.uploaded,
        "url": r.uploaded.then(|| download(&r.id)),
        "storage": Value::Null,
        // Simvue names the storage that holds the bytes; ours is the one
        // blob store the server was started with.
        "storage_id": STORAGE_ID,
    })
}

fn row(tx: &dyn ReadTx, id: &str) -> Result<ArtifactRow> {
    tx.artifact_get(id)?
        .ok_or_else(|| Error::not_found(format!("artifact {id} not found")))
}

/// Validates a `POST /api/artifacts` body for `user`.
pub fn new_artifact(body: &Map<String, Value>, max_upload: u64, user: &str) -> Result<ArtifactRow> {
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("'name' (string) is required"))?
        .to_owned();
    check_artifact_name(&name)?;
    let checksum = body
        .get("checksum")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .filter(|c| is_sha256(c))
        .ok_or_else(|| Error::invalid("'checksum' must be the hex SHA-256 of the file"))?;
    let size = body
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::invalid("'size' must be a non-negative integer"))?;
    if size > max_upload {
        return Err(Error::too_large(format!(
            "artifact of {size} bytes exceeds the upload limit of {max_upload} bytes"
        )));
    }
    let original_path = match body.get("original_path") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(p)) if p.len() <= 4096 => p.clone(),
        Some(_) => {
            return Err(Error::invalid(
                "'original_path' must be a string of at most 4096 bytes",
            ));
        }
    };
    let mime_type = match body.get("mime_type") {
        None | Some(Value::Null) => "application/octet-stream".to_owned(),
        Some(Value::String(m)) if m.len() <= 255 => m.clone(),
        Some(_) => return Err(Error::invalid("'mime_type' must be a string")),
    };
    let metadata = match body.get("metadata") {
        None | Some(Value::Null) => None,
        Some(m @ Value::Object(_)) => Some(m.to_string()),
        Some(_) => return Err(Error::invalid("'metadata' must be an object or null")),
    };
    Ok(ArtifactRow {
        id: new_id(),
        name,
        original_path,
        size,
        mime_type,
        checksum,
        metadata,
        created: 0,
        uploaded: false,
        user: user.to_owned(),
    })
}

/// Registers an artifact → `{"id", "url"}`; `url` (where to upload) is
/// null when the bytes are already stored. With `direct` (a lifetime in
/// seconds) and a blob store that takes uploads itself, `url` and `fields`
/// are a presigned form at the store (S3 "POST Object", the Simvue
/// client's presigned-POST upload) for exactly this blob; otherwise `url`
/// is `upload`'s link to this server. Either is made afresh on every call,
/// a replayed one included, so a client that retries after its link
/// expired gets a live one.
pub async fn register(
    b: &Backend,
    who: super::auth::Identity,
    idem: Idem,
    mut a: ArtifactRow,
    upload: LinkFn,
    direct: Option<u32>,
) -> Result<Recorded> {
    let have = b.blobs.has(&a.checksum).await?;
    let state = b.state.clone();
    let (sha, size) = (a.checksum.clone(), a.size);
    let mut rec = blocking(move || {
        super::write_once_as(&*state, &who, &idem, |tx| {
            a.uploaded = have;
            a.created = now_us();
            tx.artifact_insert(&a)?;
            let url = (!have).then(|| upload(&a.id));
            Ok(json!({ "id": a.id, "url": url }))
        })
    })
    .await?;
    let Some(ttl) = direct else {
        return Ok(rec);
    };
    if let Ok(mut v) = serde_json::from_str::<Value>(&rec.body)
        && v.get("url").is_some_and(|u| !u.is_null())
        && let Some(id) = v.get("id").and_then(Value::as_str)
        && let Some(form) = b.blobs.direct_upload(id, &sha, size, ttl)
    {
        let fields: Map<String, Value> = form
            .fields
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        v["url"] = Value::String(form.url);
        v["fields"] = Value::Object(fields);
        rec.body = v.to_string();
    }
    Ok(rec)
}

/// A presigned URL reading artifact `id`'s bytes straight from the blob
/// store for `ttl` seconds, or `None` when the store serves no such URLs.
/// Like [`open`], the link's user must (still) see the artifact.
pub async fn direct_download(
    b: &Backend,
    user: &str,
    id: String,
    ttl: u32,
) -> Result<Option<String>> {
    let state = b.state.clone();
    let id2 = id.clone();
    let user = user.to_owned();
    let a = blocking(move || {
        let who = super::auth::Identity::of_user(&*state, &user)?;
        super::read_as(&*state, &who, |tx| row(tx, &id2))
    })
    .await?;
    if !a.uploaded {
        return Err(Error::not_found(format!(
            "artifact {id} has no uploaded bytes"
        )));
    }
    Ok(b.blobs.direct_download(&a.checksum, &a.name, ttl))
}

/// Stores an artifact's bytes (checked against its size and checksum)
/// through an upload link issued to `user`, and marks it uploaded. The
/// link's user must still exist, be enabled and own the artifact. When
/// the bytes are already stored (the link replayed, or the same file
/// uploaded for another artifact) nothing changes: only the owner's
/// confirmation ([`confirm`]) marks such an artifact uploaded.
pub async fn upload(
    b: &Backend,
    user: &str,
    id: String,
    body: ByteStream,
    limit: u64,
) -> Result<Value> {
    let state = b.state.clone();
    let id2 = id.clone();
    let user = user.to_owned();
    let (who, a) = blocking(move || {
        // The link was issued to a caller who could write (registering is
        // a write).
        let mut who = super::auth::Identity::of_user(&*state, &user)?;
        who.read_only = false;
        let a = super::read_as(&*state, &who, |tx| row(tx, &id2))?;
        if !super::access::can_change(&who, &a.user) {
            return Err(Error::unauthorized(
                "this upload link was not issued for this artifact",
            ));
        }
        Ok((who, a))
    })
    .await?;
    // The checksum is the artifact's identity; the registered size is the
    // client's estimate (the simvue client announces `sys.getsizeof`, 33
    // bytes more than the length), so the stored length replaces it.
    if b.blobs.has(&a.checksum).await? {
        return Ok(json!({}));
    }
    let len = b.blobs.put(body, &a.checksum, a.size, limit).await?;
    let state = b.state.clone();
    blocking(move || {
        super::write_as(&*state, &who, |tx| {
            tx.artifact_set_uploaded(&id, true)?;
            if len != a.size {
                tx.artifact_set_size(&id, len)?;
            }
            Ok(json!({}))
        })
    })
    .await
}

/// Confirms (or withdraws) an upload; confirming needs the bytes.
pub async fn confirm(
    b: &Backend,
    who: super::auth::Identity,
    idem: Idem,
    id: String,
    want: bool,
) -> Result<Recorded> {
    let state = b.state.clone();
    let id2 = id.clone();
    let who2 = who.clone();
    let a = blocking(move || super::read_as(&*state, &who2, |tx| row(tx, &id2))).await?;
    // After a direct upload the bytes went only to the store, into a
    // staging object: they become the content-addressed blob only if the
    // store says they are the announced size and SHA-256.
    let have = if want {
        b.blobs.adopt(&a.id, &a.checksum, a.size).await?
    } else {
        false
    };
    let state = b.state.clone();
    blocking(move || {
        super::write_once_as(&*state, &who, &idem, |tx| {
            row(tx, &id)?;
            if want && !have {
                return Err(Error::bad_request(format!(
                    "artifact {id} has no uploaded bytes yet"
                )));
            }
            tx.artifact_set_uploaded(&id, want)?;
            Ok(json!({}))
        })
    })
    .await
}

/// Attaches an artifact to a run with a category (`code`, `input`,
/// `output`).
pub fn attach(tx: &dyn WriteTx, run: &str, artifact: &str, category: &str) -> Result<Value> {
    let category = Category::from_name(category)
        .ok_or_else(|| Error::invalid("'category' must be code, input or output"))?;
    runs::status_of(tx, run)?;
    row(tx, artifact)?;
    tx.artifact_attach(run, artifact, category.as_str())?;
    Ok(json!({}))
}

/// The artifact document, or not found.
pub fn get(tx: &dyn ReadTx, id: &str, download: &LinkFn) -> Result<Value> {
    row(tx, id).map(|r| doc(&r, download))
}

/// Artifacts of `runs` (every artifact when empty) → `{data, count}`.
pub fn list(
    tx: &dyn ReadTx,
    runs: &[String],
    sort: Option<&[(String, bool)]>,
    (start, count): (usize, usize),
    download: &LinkFn,
) -> Result<Value> {
    let mut data = Vec::new();
    if runs.is_empty() {
        data = tx
            .artifact_list()?
            .iter()
            .map(|r| doc(r, download))
            .collect();
    } else {
        for run in runs {
            for (r, category) in tx.artifacts_of(run, None, None)? {
                let mut d = doc(&r, download);
                d["category"] = Value::String(category);
                data.push(d);
            }
        }
    }
    if let Some(keys) = sort {
        sorting::sort_docs(&mut data, keys);
    }
    Ok(super::page(data, start, count))
}

/// The `sorting` of an artifact list (the keys Simvue's client allows).
pub fn parse_sorting(raw: Option<&str>) -> Result<Option<sorting::SortKeys>> {
    sorting::parse(
        raw,
        "artifacts",
        |k| matches!(k, "created" | "name") || sorting::is_metadata_key(k),
        "created, name or metadata.KEY",
    )
}

/// The artifacts of one run, optionally only those with this name or
/// category → a JSON array.
pub fn of_run(
    tx: &dyn ReadTx,
    run: &str,
    name: Option<&str>,
    category: Option<&str>,
    download: &LinkFn,
) -> Result<Value> {
    runs::status_of(tx, run)?;
    Ok(Value::Array(
        tx.artifacts_of(run, name, category)?
            .into_iter()
            .map(|(r, category)| {
                let mut d = doc(&r, download);
                d["category"] = Value::String(category);
                d
            })
            .collect(),
    ))
}

/// `{"category"}` of an artifact on a run.
pub fn category(tx: &dyn ReadTx, run: &str, artifact: &str) -> Result<Value> {
    tx.artifact_category(run, artifact)?
        .map(|c| json!({ "category": c }))
        .ok_or_else(|| {
            Error::not_found(format!("artifact {artifact} is not attached to run {run}"))
        })
}

/// An artifact's bytes, with what a download needs to label them.
pub struct Download {
    /// The artifact's name.
    pub name: String,
    /// The MIME type its client declared (not to be trusted).
    pub mime_type: String,
    /// Length in bytes.
    pub len: u64,
    /// The bytes.
    pub bytes: ByteStream,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("name", &self.name)
            .field("mime_type", &self.mime_type)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// An artifact's bytes and labels, for a signed link made for `user`: not
/// found unless that user (still) may see the artifact.
pub async fn open(b: &Backend, user: &str, id: String) -> Result<Download> {
    let state = b.state.clone();
    let id2 = id.clone();
    let user = user.to_owned();
    let a = blocking(move || {
        let who = super::auth::Identity::of_user(&*state, &user)?;
        super::read_as(&*state, &who, |tx| row(tx, &id2))
    })
    .await?;
    let missing = || Error::not_found(format!("artifact {id} has no uploaded bytes"));
    if !a.uploaded {
        return Err(missing());
    }
    let (len, bytes) = b.blobs.get(&a.checksum).await?.ok_or_else(missing)?;
    Ok(Download {
        name: a.name,
        mime_type: a.mime_type,
        len,
        bytes,
    })
}

/// Deletes an artifact record and its attachments (the bytes stay: other
/// artifacts may share them).
pub fn delete(tx: &dyn WriteTx, id: &str) -> Result<Value> {
    row(tx, id)?;
    tx.artifact_delete(id)?;
    Ok(json!({}))
}

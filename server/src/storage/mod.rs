//! The storage interfaces: [`StateStore`] (runs, folders, alerts, events,
//! metric chunks, artifact records, tokens, idempotency records) and
//! [`BlobStore`] (artifact bytes by SHA-256), with plain record types and
//! no rules. [`sqlite`] and [`files`] implement them today; a backend is
//! chosen once, at start ([`open_embedded`]).
//!
//! Shape, and why (see docs/storage-backends.md):
//! * State methods are synchronous and are only ever called from a
//!   blocking thread (`tokio::task::spawn_blocking`). A transaction is a
//!   closure over a transaction object with typed operations ([`ReadTx`],
//!   [`WriteTx`]); the closure decides commit or rollback. The SQLite
//!   implementation runs with no executor hop per statement; an async
//!   driver (sqlx, tokio-postgres) implements the same trait by driving
//!   its futures with `Handle::block_on` on that blocking thread, one
//!   pooled connection per transaction.
//! * Blob methods are async (streams of bytes), so an object store can
//!   serve them without tying up a thread per transfer.
//! * Idempotency is part of the transaction: [`ReadTx::idempotency_get`]
//!   and [`WriteTx::idempotency_put`] run inside the same write
//!   transaction as the change they record.
//!
//! Nothing here knows HTTP or the domain's rules; errors are
//! [`StorageError`], which the domain maps.

pub mod event_query;
pub mod files;
pub mod postgres;
pub mod run_query;
pub mod s3;
pub mod sqlite;

use std::fmt::Debug;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

pub use event_query::{EventField, EventPred};
pub use run_query::{
    MetricStat, RunField, RunKey, RunPage, RunPageAnswer, RunPred, RunsVisibleTo, TextCmp,
};

/// Prefix of the events the server records itself (status changes,
/// alerts, aborts, lost runs). Stores may count them apart from a run's own
/// events, so this never changes: stored data depends on it.
pub const SYSTEM_EVENT_PREFIX: &str = "[simtrack]";

/// Which of a run's kept event counts answers a count of its events: `Some`
/// when nothing is filtered and nothing or only the server's own events are
/// left out (`true`: the server's own left out); `None` when the events must
/// be counted. Both backends keep, per run, all events and the server's own.
pub(crate) fn kept_count_answers(exclude_prefix: Option<&str>, filter: &EventPred) -> Option<bool> {
    if *filter != EventPred::True {
        return None;
    }
    match exclude_prefix {
        None => Some(false),
        Some(SYSTEM_EVENT_PREFIX) => Some(true),
        Some(_) => None,
    }
}

/// The count asked for from a run's kept counts (`total`, `system`; `None`:
/// the run has no events), as [`kept_count_answers`] chose.
pub(crate) fn kept_count(counts: Option<(i64, i64)>, exclude_system: bool) -> u64 {
    let (total, system) = counts.unwrap_or((0, 0));
    let n = if exclude_system {
        total - system
    } else {
        total
    };
    n.max(0) as u64
}

/// A failure of the storage backend itself (I/O, driver, corruption).
#[derive(Debug, Clone)]
pub struct StorageError(pub String);

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Result of a storage operation.
pub type Result<T> = std::result::Result<T, StorageError>;

/// What a [`StateStore::write_run`] transaction may change: one run, and
/// the idempotency record of one `(scope, key)`.
#[derive(Debug, Clone, Copy)]
pub struct RunScope<'a> {
    /// The run.
    pub run: &'a str,
    /// The idempotency scope and key the transaction records, if any.
    pub idem: Option<(&'a str, &'a str)>,
}

/// What a transaction's closure asks for when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Keep every change.
    Commit,
    /// Drop every change.
    Rollback,
}

/// Runs, folders, alerts, events, metric chunks, artifact records, tokens,
/// settings and idempotency records.
pub trait StateStore: Send + Sync + Debug {
    /// Runs `f` on a consistent snapshot.
    fn read(&self, f: &mut dyn FnMut(&dyn ReadTx) -> Result<()>) -> Result<()>;
    /// Runs `f` once in a write transaction, committed when `f` returns
    /// `Ok(Outcome::Commit)` and rolled back otherwise. Write transactions
    /// are serialisable with respect to each other. A transaction that
    /// cannot commit is an error, not a retry: `f` is never called twice.
    fn write(&self, f: &mut dyn FnMut(&dyn WriteTx) -> Result<Outcome>) -> Result<()>;
    /// [`StateStore::write`] for a transaction that changes run `scope.run`
    /// alone: that run's row, metrics, events, alert states and windows,
    /// array metrics and queued notifications, plus the idempotency record
    /// `scope.idem` (it may read anything). It is serialisable with
    /// respect to every write transaction on the same run, on the same
    /// idempotency key, or not scoped to a run; a store may run it at the
    /// same time as scoped writes on other runs, and then refuses (an
    /// error, rolling back) a change outside the scope. The default is
    /// [`StateStore::write`].
    fn write_run(
        &self,
        scope: &RunScope<'_>,
        f: &mut dyn FnMut(&dyn WriteTx) -> Result<Outcome>,
    ) -> Result<()> {
        let _ = scope;
        self.write(f)
    }
    /// Makes everything durable and compact before a clean exit.
    fn close(&self);
}

/// Artifact bytes, content-addressed by lowercase-hex SHA-256.
pub trait BlobStore: Send + Sync + Debug {
    /// Whether the blob `sha` is stored.
    fn has<'a>(&'a self, sha: &'a str) -> BoxFuture<'a, Result<bool>>;
    /// Stores `body`, which must hash to `sha` and be at most `size` bytes
    /// (never more than `limit`); nothing is stored otherwise. Answers the
    /// stored length: a client may announce more than it sends (the simvue
    /// client registers Python's `sys.getsizeof`), the checksum decides.
    fn put<'a>(
        &'a self,
        body: ByteStream,
        sha: &'a str,
        size: u64,
        limit: u64,
    ) -> BoxFuture<'a, std::result::Result<u64, BlobError>>;
    /// The blob's length and bytes, or `None` when it is not stored.
    fn get<'a>(&'a self, sha: &'a str) -> BoxFuture<'a, Result<Option<(u64, ByteStream)>>>;
    /// Where a client uploads the bytes of blob `sha` (`size` bytes) for
    /// upload `id` itself, without them passing through the server, for
    /// `ttl` seconds; `None` when this store takes bytes only through
    /// [`BlobStore::put`] (the default). The bytes land in a staging place
    /// of their own until [`BlobStore::adopt`] checks them.
    fn direct_upload(&self, _id: &str, _sha: &str, _size: u64, _ttl: u32) -> Option<DirectUpload> {
        None
    }
    /// A URL a client reads blob `sha` from directly for `ttl` seconds,
    /// offered as a download named `name`; `None` by default.
    fn direct_download(&self, _sha: &str, _name: &str, _ttl: u32) -> Option<String> {
        None
    }
    /// Whether blob `sha` is stored, after taking in the direct upload `id`
    /// when it is exactly `size` bytes hashing to `sha` (a direct upload
    /// that does not check out is dropped). For a store that takes bytes
    /// only through [`BlobStore::put`], which checked them already, this is
    /// [`BlobStore::has`] (the default).
    fn adopt<'a>(&'a self, _id: &'a str, sha: &'a str, _size: u64) -> BoxFuture<'a, Result<bool>> {
        self.has(sha)
    }
}

/// A direct upload: a `multipart/form-data` `POST` to `url` with `fields`
/// first and the bytes last in part `file` (S3's "POST Object").
#[derive(Debug, Clone)]
pub struct DirectUpload {
    pub url: String,
    pub fields: Vec<(String, String)>,
}

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A stream of byte chunks (an upload or a download).
pub type ByteStream =
    Pin<Box<dyn futures_util::Stream<Item = std::result::Result<bytes::Bytes, String>> + Send>>;

/// Why [`BlobStore::put`] stored nothing.
#[derive(Debug)]
pub enum BlobError {
    /// More than `limit` bytes arrived.
    TooLarge(String),
    /// The bytes do not match the announced size or checksum, or the
    /// upload was interrupted.
    Mismatch(String),
    /// The backend failed.
    Storage(StorageError),
}

/// Streams an upload into `file`, checking it as it comes: never more than
/// `limit` bytes, at most the announced `size` bytes, hashing to the SHA-256
/// `sha`; answers the length received. Every blob store receives uploads
/// through this one check; what it does with the checked file (rename it
/// into place, send it on) is its own.
pub(crate) async fn receive_checked(
    body: &mut ByteStream,
    file: &mut tokio::fs::File,
    sha: &str,
    size: u64,
    limit: u64,
    io: impl Fn(std::io::Error) -> BlobError,
) -> std::result::Result<u64, BlobError> {
    use futures_util::StreamExt;
    use sha2::{Digest, Sha256};
    use tokio::io::AsyncWriteExt;
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| BlobError::Mismatch(format!("upload interrupted: {e}")))?;
        written += chunk.len() as u64;
        if written > limit {
            return Err(BlobError::TooLarge(format!(
                "upload exceeds the limit of {limit} bytes"
            )));
        }
        if written > size {
            return Err(BlobError::Mismatch(format!(
                "upload is larger than the registered size of {size} bytes"
            )));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(&io)?;
    }
    // A shorter upload is fine when its checksum matches: the announced
    // size is the client's estimate, the SHA-256 is the identity.
    let got = crate::util::hex(&hasher.finalize());
    if got != sha {
        // S3's wording, which the simvue client's callers match on.
        return Err(BlobError::Mismatch(format!(
            "The SHA256 you specified did not match the calculated checksum. \
             The upload has SHA-256 {got} and {written} bytes; the artifact was \
             registered with {sha} and {size} bytes."
        )));
    }
    Ok(written)
}

/// The embedded backend in `dir`: SQLite (`simtrack.db`) and a blob
/// directory (`blobs/`).
pub fn open_embedded(dir: &Path) -> std::result::Result<Backend, String> {
    let state = sqlite::SqliteStore::open(dir)?;
    let blobs = files::FileBlobs::open(&dir.join("blobs"))?;
    Ok(Backend {
        state: Arc::new(state),
        blobs: Arc::new(blobs),
    })
}

/// The embedded state store alone (`dir/simtrack.db`), for commands that
/// touch no artifact bytes (`simtrack token create`).
pub fn open_embedded_state(dir: &Path) -> std::result::Result<Arc<dyn StateStore>, String> {
    Ok(Arc::new(sqlite::SqliteStore::open(dir)?))
}

// --- scale-out backend selection (PostgreSQL state; blobs by URL) ---

/// The scale-out backend: state in the PostgreSQL database at `database`
/// (`postgres://USER:PASS@HOST:PORT/DB`), artifact bytes at `blobs`:
/// `s3://BUCKET[/PREFIX]` (endpoint and credentials from `AWS_*`) or a
/// directory (a shared filesystem for several replicas). Must be called
/// within a Tokio runtime. Errors name the URL without its password.
/// Also returns the PostgreSQL store itself, for leader election.
pub async fn open_scale_out(
    database: &str,
    blobs: &str,
) -> std::result::Result<(Backend, Arc<postgres::PgStore>), String> {
    let state = Arc::new(postgres::PgStore::open(database).await?);
    let blobs: Arc<dyn BlobStore> = if blobs.starts_with("s3://") {
        Arc::new(s3::S3Blobs::open(blobs).await?)
    } else {
        Arc::new(files::FileBlobs::open(Path::new(blobs))?)
    };
    let backend = Backend {
        state: state.clone(),
        blobs,
    };
    Ok((backend, state))
}

// --- end scale-out backend selection ---

/// The two stores a server runs on.
#[derive(Debug, Clone)]
pub struct Backend {
    /// State and metrics.
    pub state: Arc<dyn StateStore>,
    /// Artifact bytes.
    pub blobs: Arc<dyn BlobStore>,
}

/// Which x axis a metrics read orders and selects by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// `step`
    Step,
    /// `time`
    Time,
    /// `timestamp`
    Timestamp,
}

/// A stored response, replayed for a repeated idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Status code.
    pub status: u16,
    /// Body (JSON text).
    pub body: String,
}

/// A run as stored. Timestamps are microseconds since the epoch; `tags`,
/// `metadata`, `system`, `notifications` and `visibility` are JSON text.
#[derive(Debug, Clone, Default)]
pub struct RunRow {
    pub id: String,
    pub name: String,
    pub folder: String,
    pub status: String,
    pub description: Option<String>,
    pub tags: String,
    pub metadata: String,
    pub system: String,
    pub created: i64,
    pub started: Option<i64>,
    pub endtime: Option<i64>,
    pub modified: i64,
    pub ttl: Option<i64>,
    pub heartbeat_timeout: Option<f64>,
    pub notifications: String,
    pub visibility: String,
    pub user: String,
    /// Last heartbeat, metric or event.
    pub last_seen: i64,
    pub abort_requested: bool,
    pub abort_reason: Option<String>,
    pub starred: bool,
}

/// Changes to a run: `None` leaves a field alone; for nullable fields
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct RunPatch {
    pub name: Option<String>,
    pub folder: Option<String>,
    pub status: Option<String>,
    pub description: Option<Option<String>>,
    pub tags: Option<String>,
    pub metadata: Option<String>,
    pub system: Option<String>,
    pub notifications: Option<String>,
    pub visibility: Option<String>,
    pub created: Option<i64>,
    pub started: Option<Option<i64>>,
    pub endtime: Option<Option<i64>>,
    pub modified: Option<i64>,
    pub ttl: Option<Option<i64>>,
    pub heartbeat_timeout: Option<Option<f64>>,
    pub last_seen: Option<i64>,
    pub abort: Option<(bool, Option<String>)>,
    pub starred: Option<bool>,
}

/// One column's new value in a partial update, independent of the SQL
/// driver: each backend turns it into its own parameter type.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
    Real(Option<f64>),
    Bool(bool),
}

impl RunPatch {
    /// The columns this patch sets, with their values (one list for every
    /// backend).
    pub fn columns(&self) -> Vec<(&'static str, Cell)> {
        let mut c = Vec::new();
        for (col, v) in [
            ("name", &self.name),
            ("folder", &self.folder),
            ("status", &self.status),
            ("tags", &self.tags),
            ("metadata", &self.metadata),
            ("system", &self.system),
            ("notifications", &self.notifications),
            ("visibility", &self.visibility),
        ] {
            if let Some(v) = v {
                c.push((col, Cell::Text(Some(v.clone()))));
            }
        }
        if let Some(d) = &self.description {
            c.push(("description", Cell::Text(d.clone())));
        }
        for (col, v) in [
            ("created", self.created),
            ("modified", self.modified),
            ("last_seen", self.last_seen),
        ] {
            if let Some(v) = v {
                c.push((col, Cell::Int(Some(v))));
            }
        }
        for (col, v) in [
            ("started", self.started),
            ("endtime", self.endtime),
            ("ttl", self.ttl),
        ] {
            if let Some(v) = v {
                c.push((col, Cell::Int(v)));
            }
        }
        if let Some(t) = self.heartbeat_timeout {
            c.push(("heartbeat_timeout", Cell::Real(t)));
        }
        if let Some((flag, reason)) = &self.abort {
            c.push(("abort_requested", Cell::Bool(*flag)));
            c.push(("abort_reason", Cell::Text(reason.clone())));
        }
        if let Some(s) = self.starred {
            c.push(("starred", Cell::Bool(s)));
        }
        c
    }
}

/// What a scan of every run reads: the light columns always, `tags` and
/// values at JSON paths into `metadata`/`system` only when asked.
#[derive(Debug, Clone, Default)]
pub struct RunProjection {
    /// Read `tags`.
    pub tags: bool,
    /// Paths into `metadata`/`system`, such as `metadata.solver.nx`.
    pub json_paths: Vec<JsonPath>,
    /// Only the runs satisfying this (all when `None`).
    pub filter: Option<RunPred>,
}

/// Which JSON document column of a run a [`JsonPath`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum JsonColumn {
    Metadata,
    System,
}

/// A path into a run's JSON column as a list of object keys. A key is any
/// string a client can store (quotes, backslashes, control characters,
/// anything): a backend must address it exactly, never by pasting it into
/// its own path syntax unescaped.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct JsonPath {
    pub column: JsonColumn,
    pub keys: Vec<String>,
}

/// One run of a scan.
#[derive(Debug, Clone)]
pub struct RunScanRow {
    pub id: String,
    pub name: String,
    pub folder: String,
    pub status: String,
    pub description: Option<String>,
    pub created: i64,
    pub started: Option<i64>,
    pub endtime: Option<i64>,
    pub modified: i64,
    pub user: String,
    pub starred: bool,
    /// JSON text of the run's visibility (who besides its owner sees it).
    pub visibility: String,
    /// JSON text, when the projection asked for tags.
    pub tags: Option<String>,
    /// JSON text of each projected path's value (`None`: absent), in the
    /// projection's order.
    pub values: Vec<Option<String>>,
}

/// A folder as stored (`tags`, `metadata` JSON text).
#[derive(Debug, Clone)]
pub struct FolderRow {
    pub id: String,
    pub path: String,
    pub description: Option<String>,
    pub tags: String,
    pub metadata: String,
    pub created: i64,
    pub modified: i64,
    pub starred: bool,
    /// Who created it (empty for folders made before users existed).
    pub owner: String,
}

/// Changes to a folder (`None` leaves a field alone).
#[derive(Debug, Clone, Default)]
pub struct FolderPatch {
    pub description: Option<Option<String>>,
    pub tags: Option<String>,
    pub metadata: Option<String>,
    pub starred: Option<bool>,
    pub modified: Option<i64>,
}

impl FolderPatch {
    /// The columns this patch sets, with their values.
    pub fn columns(&self) -> Vec<(&'static str, Cell)> {
        let mut c = Vec::new();
        if let Some(d) = &self.description {
            c.push(("description", Cell::Text(d.clone())));
        }
        for (col, v) in [("tags", &self.tags), ("metadata", &self.metadata)] {
            if let Some(v) = v {
                c.push((col, Cell::Text(Some(v.clone()))));
            }
        }
        if let Some(s) = self.starred {
            c.push(("starred", Cell::Bool(s)));
        }
        if let Some(m) = self.modified {
            c.push(("modified", Cell::Int(Some(m))));
        }
        c
    }
}

/// An alert definition as stored (`alert` is the JSON text of the rule).
#[derive(Debug, Clone)]
pub struct AlertRow {
    pub id: String,
    pub name: String,
    pub source: String,
    pub description: Option<String>,
    pub notification: String,
    pub enabled: bool,
    pub abort: bool,
    pub alert: Option<String>,
    pub created: i64,
    pub user: String,
    /// JSON text of its options besides the rule (`auto`, `run_tags`,
    /// `delay`; opaque here, the domain owns it); `{}` when none.
    pub options: String,
}

/// Changes to an alert (`None` leaves a field alone).
#[derive(Debug, Clone, Default)]
pub struct AlertPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub notification: Option<String>,
    pub enabled: Option<bool>,
    pub abort: Option<bool>,
    pub alert: Option<Option<String>>,
    pub options: Option<String>,
}

impl AlertPatch {
    /// The columns this patch sets, with their values.
    pub fn columns(&self) -> Vec<(&'static str, Cell)> {
        let mut c = Vec::new();
        for (col, v) in [
            ("name", &self.name),
            ("description", &self.description),
            ("notification", &self.notification),
            ("options", &self.options),
        ] {
            if let Some(v) = v {
                c.push((col, Cell::Text(Some(v.clone()))));
            }
        }
        for (col, v) in [("enabled", self.enabled), ("abort", self.abort)] {
            if let Some(v) = v {
                c.push((col, Cell::Bool(v)));
            }
        }
        if let Some(a) = &self.alert {
            c.push(("alert", Cell::Text(a.clone())));
        }
        c
    }
}

/// An alert attached to a run, with the run's state of it.
#[derive(Debug, Clone)]
pub struct Attached {
    /// The run.
    pub run_id: String,
    /// The definition.
    pub alert: AlertRow,
    /// `ok` or `critical`.
    pub status: String,
    /// Who acknowledged the alert being critical on this run, and when
    /// (cleared whenever the state changes).
    pub acknowledged: Option<Acknowledgement>,
}

/// An acknowledgement of an alert that is critical on a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    /// The user who acknowledged it.
    pub by: String,
    /// When (microseconds since the epoch).
    pub at: i64,
}

/// One event of a run.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub ts: i64,
    pub log_level: String,
    pub message: String,
}

/// An artifact record (`metadata` JSON text).
#[derive(Debug, Clone)]
pub struct ArtifactRow {
    pub id: String,
    pub name: String,
    pub original_path: String,
    pub size: u64,
    pub mime_type: String,
    pub checksum: String,
    pub metadata: Option<String>,
    pub created: i64,
    pub uploaded: bool,
    pub user: String,
}

/// A tag as stored: runs carry tag names; this is the tag itself, with
/// its colour and description.
#[derive(Debug, Clone)]
pub struct TagRow {
    pub id: String,
    pub name: String,
    pub colour: String,
    pub description: Option<String>,
    pub created: i64,
    pub user: String,
}

/// An API token or sign-in session as stored (never the token itself).
#[derive(Debug, Clone, Default)]
pub struct TokenRow {
    /// Its id.
    pub id: String,
    /// The user it belongs to (the runs' `user`).
    pub name: String,
    /// SHA-256 of the token.
    pub hash: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Creation, seconds since the epoch.
    pub created: i64,
    /// What its owner calls it.
    pub label: String,
    /// Reads only.
    pub read_only: bool,
    /// Last accepted, seconds since the epoch (updated at most once a minute).
    pub last_used: Option<i64>,
    /// For a sign-in session (a cookie): SHA-256 of its CSRF token.
    pub csrf: Option<String>,
}

/// A user as stored.
#[derive(Debug, Clone, Default)]
pub struct UserRow {
    pub name: String,
    pub email: Option<String>,
    /// Its group (Simvue's tenant); `None`: in no group.
    pub group: Option<String>,
    pub admin: bool,
    pub disabled: bool,
    /// PHC string of its password hash (argon2id); `None`: no password.
    pub password: Option<String>,
    /// Seconds since the epoch.
    pub created: i64,
}

/// A group as a record of its own (Simvue's tenant): groups also exist
/// implicitly, as the `group` of their users; a record gives one a
/// creation time and settings before it has members.
#[derive(Debug, Clone, Default)]
pub struct TenantRow {
    /// The group's name (its id).
    pub name: String,
    /// Its settings, a JSON document (opaque here; the domain owns it).
    pub doc: String,
    /// Microseconds since the epoch.
    pub created: i64,
}

/// One entry of the audit trail.
#[derive(Debug, Clone, Default)]
pub struct AuditRow {
    /// Its sequence number (assigned by the store).
    pub seq: i64,
    /// Microseconds since the epoch.
    pub ts: i64,
    /// Who did it (a user name; empty when unknown, such as a failed
    /// sign-in for a name that does not exist, or `cli` from the console).
    pub actor: String,
    /// What: `signin`, `signin_failed`, `token_create`, ...
    pub action: String,
    /// What it was done to (a run, token or user id).
    pub target: String,
    /// Further detail (JSON text or words).
    pub detail: String,
    /// From where (the peer address, or `cli`).
    pub ip: String,
}

/// The per-series summary kept beside the chunks.
#[derive(Debug, Clone)]
pub struct SeriesRow {
    pub name: String,
    pub count: i64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub last: Option<f64>,
    pub last_step: Option<i64>,
}

/// A metric chunk's summary as written: ranges on every axis, value
/// statistics (`None` when every value is NaN), and the opaque block
/// summary and packed points (their format is the domain's).
#[derive(Debug, Clone)]
pub struct NewChunk<'a> {
    pub count: i64,
    pub step: (i64, i64),
    pub time: (f64, f64),
    pub ts: (i64, i64),
    pub vmin: Option<f64>,
    pub vmax: Option<f64>,
    pub vsum: Option<f64>,
    pub blocks: &'a [u8],
    pub points: &'a [u8],
}

/// A chunk as a read sees it: its id, size and range on the read's axis,
/// and its block summary when asked for.
#[derive(Debug, Clone)]
pub struct ChunkInfo {
    pub id: i64,
    pub count: i64,
    pub xmin: f64,
    pub xmax: f64,
    pub blocks: Vec<u8>,
}

/// A chunk's statistics for window aggregates.
#[derive(Debug, Clone)]
pub struct ChunkStats {
    pub id: i64,
    pub count: i64,
    pub ts_min: i64,
    pub vmin: Option<f64>,
    pub vmax: Option<f64>,
    pub vsum: Option<f64>,
}

/// A user's notification channel (`kind` `email` or `webhook`; `options`
/// JSON text: format, which events).
#[derive(Debug, Clone)]
pub struct ChannelRow {
    pub id: String,
    /// The user it belongs to (a runs' `user`).
    pub owner: String,
    pub kind: String,
    /// The address or URL.
    pub target: String,
    pub options: String,
    pub created: i64,
}

/// One queued delivery of one event to one channel (the outbox).
/// `status`: `pending`, `retrying`, `sent` or `failed`.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: String,
    pub channel_id: String,
    pub owner: String,
    pub run_id: String,
    /// `critical`, `ok`, `failed`, `lost`.
    pub event: String,
    /// JSON text of the event (the domain's format).
    pub payload: String,
    pub created: i64,
    pub status: String,
    pub attempts: i64,
    /// When it is due (µs).
    pub next_at: i64,
    /// A worker's claim on it runs until then (µs); 0: unclaimed.
    pub claimed_until: i64,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
}

/// A grid: named axes with their coordinates (the Simvue `grid` object).
/// `doc` is the JSON document the domain owns (`grid`, `labels`, `units`).
#[derive(Debug, Clone)]
pub struct GridRow {
    pub id: String,
    pub name: String,
    pub doc: String,
    pub created: i64,
    pub user: String,
}

/// One step of an array metric: its x coordinates, value range and the
/// encoded array (opaque here; the format is the domain's). `data` is
/// empty when a listing did not ask for it.
#[derive(Debug, Clone, Default)]
pub struct GridValueRow {
    pub step: i64,
    pub time: f64,
    pub ts: i64,
    pub count: i64,
    pub vmin: Option<f64>,
    pub vmax: Option<f64>,
    pub data: Vec<u8>,
}

/// An array metric of a run: the grid it is on and the span of its steps.
#[derive(Debug, Clone)]
pub struct GridMetricRow {
    pub metric: String,
    pub grid: String,
    pub steps: i64,
    pub step_min: Option<i64>,
    pub step_max: Option<i64>,
    pub time_min: Option<f64>,
    pub time_max: Option<f64>,
    pub ts_min: Option<i64>,
    pub ts_max: Option<i64>,
    pub vmin: Option<f64>,
    pub vmax: Option<f64>,
}

/// Queries, available in read and write transactions.
pub trait ReadTx {
    /// The run's status, or `None` when there is no such run.
    fn run_status(&self, id: &str) -> Result<Option<String>>;
    /// The whole run.
    fn run_get(&self, id: &str) -> Result<Option<RunRow>>;
    /// The run's owner and visibility (JSON text), or `None` when there is
    /// no such run: what deciding who may see it reads.
    fn run_access(&self, id: &str) -> Result<Option<(String, String)>>;
    /// Every run, reading only what `p` asks for, in insertion order.
    fn run_scan(&self, p: &RunProjection) -> Result<Vec<RunScanRow>>;
    /// A page of the runs `q.visible_to` sees that satisfy `q.filter`, in
    /// `q.order` (ties in insertion order), and how many there are in all.
    fn run_page(&self, q: &RunPage) -> Result<RunPageAnswer>;
    /// Ids of the runs in folder `path` (exactly).
    fn runs_in_folder(&self, path: &str) -> Result<Vec<String>>;
    /// Ids of `running` runs with a heartbeat timeout whose silence, counted
    /// from the later of their last contact and `since`, passed it by `now`.
    fn runs_silent(&self, since: i64, now: i64) -> Result<Vec<String>>;

    /// The folder with this id.
    fn folder_get(&self, id: &str) -> Result<Option<FolderRow>>;
    /// The id of the folder at `path`.
    fn folder_by_path(&self, path: &str) -> Result<Option<String>>;
    /// Every folder, by creation time then path.
    fn folder_list(&self) -> Result<Vec<FolderRow>>;
    /// `(id, path)` of the folder at `path` and every folder below it.
    fn folders_under(&self, path: &str) -> Result<Vec<(String, String)>>;
    /// User `user`'s own views of folders it asked for by path but could
    /// not see: `(folder id, document)`; the document (JSON text) is the
    /// domain's.
    fn folder_views(&self, user: &str) -> Result<Vec<(String, String)>>;

    /// The alert with this id.
    fn alert_get(&self, id: &str) -> Result<Option<AlertRow>>;
    /// Every alert, by creation time.
    fn alert_list(&self) -> Result<Vec<AlertRow>>;
    /// The oldest alert named `name`.
    fn alert_by_name(&self, name: &str) -> Result<Option<String>>;
    /// The run's state of an attached alert (`None`: not attached).
    fn run_alert_status(&self, run: &str, alert: &str) -> Result<Option<String>>;
    /// Alerts attached to `run` (every run when `None`), by the alert's
    /// creation time.
    fn attached(&self, run: Option<&str>) -> Result<Vec<Attached>>;
    /// Enabled alerts of `source` attached to `run`.
    fn attached_enabled(&self, run: &str, source: &str) -> Result<Vec<AlertRow>>;

    /// Visits the run's events by time, then arrival, from the `skip`-th on,
    /// while `visit` returns true; events whose message starts with
    /// `exclude_prefix` are left out (and not counted by `skip`). Rows are
    /// read as they are visited: memory stays bounded whatever the run holds.
    fn events_visit(
        &self,
        run: &str,
        exclude_prefix: Option<&str>,
        skip: u64,
        visit: &mut dyn FnMut(EventRow) -> bool,
    ) -> Result<()> {
        self.events_visit_where(run, exclude_prefix, &EventPred::True, skip, visit)
    }
    /// How many events the run has (without those whose message starts
    /// with `exclude_prefix`).
    fn events_count(&self, run: &str, exclude_prefix: Option<&str>) -> Result<u64> {
        self.events_count_where(run, exclude_prefix, &EventPred::True)
    }
    /// [`ReadTx::events_visit`] of the events satisfying `filter` alone
    /// (`skip` counts those).
    fn events_visit_where(
        &self,
        run: &str,
        exclude_prefix: Option<&str>,
        filter: &EventPred,
        skip: u64,
        visit: &mut dyn FnMut(EventRow) -> bool,
    ) -> Result<()>;
    /// [`ReadTx::events_count`] of the events satisfying `filter`.
    fn events_count_where(
        &self,
        run: &str,
        exclude_prefix: Option<&str>,
        filter: &EventPred,
    ) -> Result<u64>;
    /// Visits `run`'s events stored after sequence number `after_seq`, in
    /// the order they were stored, as `(seq, ts, message)`: what a reader
    /// that remembers where it stopped has not seen yet (event alerts).
    fn events_after(
        &self,
        run: &str,
        after_seq: i64,
        visit: &mut dyn FnMut(i64, i64, &str),
    ) -> Result<()>;

    /// The series id of metric `name` of `run`.
    fn series_id(&self, run: &str, name: &str) -> Result<Option<i64>>;
    /// Summaries of every series of `run`, by name.
    fn series_of(&self, run: &str) -> Result<Vec<SeriesRow>>;
    /// Some series of a run, by name: those named in `names` when given,
    /// else the first `limit` names.
    fn series_some(
        &self,
        run: &str,
        names: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<SeriesRow>>;
    /// How many series (metric names) a run has.
    fn series_count(&self, run: &str) -> Result<u64>;
    /// Every run's series called `name`, as `(run id, summary)`.
    fn series_named(&self, name: &str) -> Result<Vec<(String, SeriesRow)>>;
    /// How many points a series holds.
    fn series_points(&self, series: i64) -> Result<i64>;
    /// The widest timestamp span of any chunk of a series (µs).
    fn series_max_span(&self, series: i64) -> Result<i64>;
    /// Ids of the chunks of a series that may hold points with timestamps
    /// in `[lo, hi)`, given that no chunk spans more than `max_span` µs:
    /// found through an index on the chunks' newest timestamps, so the
    /// cost follows the chunks in that range, not the series' length.
    fn chunks_ts_between(&self, series: i64, lo: i64, hi: i64, max_span: i64) -> Result<Vec<i64>>;
    /// The saved window state of an alert on a run (opaque to storage).
    fn alert_window(&self, run: &str, alert: &str) -> Result<Option<String>>;
    /// The chunks of a series in insertion order, with block summaries
    /// when `blocks`.
    fn chunks(&self, series: i64, axis: Axis, blocks: bool) -> Result<Vec<ChunkInfo>>;
    /// Ids of the chunks whose `axis` range overlaps `[min, max]`.
    fn chunks_overlapping(&self, series: i64, axis: Axis, min: f64, max: f64) -> Result<Vec<i64>>;
    /// The packed points of a chunk.
    fn chunk_points(&self, chunk: i64) -> Result<Vec<u8>>;
    /// The newest timestamp of a series.
    fn series_newest_ts(&self, series: i64) -> Result<Option<i64>>;
    /// Statistics of the chunks whose newest timestamp is at or after `ts`.
    fn chunks_since(&self, series: i64, ts: i64) -> Result<Vec<ChunkStats>>;

    /// The artifact record.
    fn artifact_get(&self, id: &str) -> Result<Option<ArtifactRow>>;
    /// Every artifact record, by creation time.
    fn artifact_list(&self) -> Result<Vec<ArtifactRow>>;
    /// Artifacts attached to `run` with their category, optionally only
    /// those with this name and/or category, by creation time.
    fn artifacts_of(
        &self,
        run: &str,
        name: Option<&str>,
        category: Option<&str>,
    ) -> Result<Vec<(ArtifactRow, String)>>;
    /// The runs an artifact is attached to.
    fn artifact_runs(&self, artifact: &str) -> Result<Vec<String>>;
    /// The category an artifact is attached to a run with.
    fn artifact_category(&self, run: &str, artifact: &str) -> Result<Option<String>>;

    /// Every tag, by creation time.
    fn tag_list(&self) -> Result<Vec<TagRow>>;
    /// The tag with this id.
    fn tag_get(&self, id: &str) -> Result<Option<TagRow>>;
    /// The id of the tag named `name`.
    fn tag_by_name(&self, name: &str) -> Result<Option<String>>;

    /// The token with this hash.
    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>>;
    /// Every token (hashes included), oldest first; only those named
    /// `name` when given.
    fn tokens(&self, name: Option<&str>) -> Result<Vec<TokenRow>>;
    /// How many tokens named `name` expire after `now` (seconds).
    fn tokens_live(&self, name: &str, now: i64) -> Result<u64>;
    /// The user called `name`.
    fn user_get(&self, name: &str) -> Result<Option<UserRow>>;
    /// Every user, by name.
    fn users(&self) -> Result<Vec<UserRow>>;
    /// A user's profile as the Simvue user API sends it (full name, roles;
    /// a JSON document opaque here), if one was set.
    fn user_profile(&self, name: &str) -> Result<Option<String>>;
    /// The group record `name`.
    fn tenant_get(&self, name: &str) -> Result<Option<TenantRow>>;
    /// Every group record, by name.
    fn tenants(&self) -> Result<Vec<TenantRow>>;
    /// The newest `limit` audit entries with a sequence number below
    /// `before` (all when `None`), newest first.
    fn audit(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditRow>>;
    /// A server setting.
    fn setting(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Failed sign-ins counted under `key` (a user name or an address):
    /// how many, and when their window began (µs).
    fn signin_failures(&self, key: &str) -> Result<Option<(i64, i64)>>;
    /// The response recorded for an idempotency key.
    fn idempotency_get(&self, scope: &str, key: &str) -> Result<Option<Recorded>>;

    /// Notification channels, oldest first; only `owner`'s when given.
    fn notify_channels(&self, owner: Option<&str>) -> Result<Vec<ChannelRow>>;
    /// Queued and finished deliveries, newest first, at most `limit`;
    /// only `owner`'s and/or `run`'s when given.
    fn outbox_list(
        &self,
        owner: Option<&str>,
        run: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>>;
    /// How many deliveries are due at `now` and unclaimed.
    fn outbox_due(&self, now: i64) -> Result<u64>;
    /// A grid by id.
    fn grid_get(&self, id: &str) -> Result<Option<GridRow>>;
    /// Every grid, oldest first.
    fn grid_list(&self) -> Result<Vec<GridRow>>;
    /// The array metrics of a run (attached or logged), by name.
    fn grid_metrics(&self, run: &str) -> Result<Vec<GridMetricRow>>;
    /// One step of an array metric, with its data.
    fn grid_value(&self, run: &str, metric: &str, step: i64) -> Result<Option<GridValueRow>>;
    /// Every step of an array metric, by step, without data.
    fn grid_steps(&self, run: &str, metric: &str) -> Result<Vec<GridValueRow>>;
}

/// Changes, available in write transactions only.
pub trait WriteTx: ReadTx {
    /// Adds a run.
    fn run_insert(&self, r: &RunRow) -> Result<()>;
    /// Changes a run.
    fn run_update(&self, id: &str, p: &RunPatch) -> Result<()>;
    /// Removes a run and everything recorded for it (metrics, events,
    /// alert states, artifact attachments).
    fn run_delete(&self, id: &str) -> Result<()>;

    /// Adds a folder.
    fn folder_insert(&self, id: &str, path: &str, now: i64) -> Result<()>;
    /// Changes a folder.
    fn folder_update(&self, id: &str, p: &FolderPatch) -> Result<()>;
    /// Removes a folder record.
    fn folder_delete(&self, id: &str) -> Result<()>;
    /// Records who created a folder.
    fn folder_set_owner(&self, id: &str, owner: &str) -> Result<()>;
    /// Stores `user`'s own view of folder `folder`.
    fn folder_view_put(&self, folder: &str, user: &str, doc: &str) -> Result<()>;
    /// Deletes `user`'s view of folder `folder` (everyone's when `None`).
    fn folder_view_delete(&self, folder: &str, user: Option<&str>) -> Result<()>;

    /// Adds an alert.
    fn alert_insert(&self, a: &AlertRow) -> Result<()>;
    /// Changes an alert.
    fn alert_update(&self, id: &str, p: &AlertPatch) -> Result<()>;
    /// Removes an alert and its attachments.
    fn alert_delete(&self, id: &str) -> Result<()>;
    /// Attaches an alert to a run (state `ok`); no change if attached.
    fn attach_alert(&self, run: &str, alert: &str) -> Result<()>;
    /// Detaches every alert of `run` not in `keep`.
    fn detach_alerts_except(&self, run: &str, keep: &[String]) -> Result<()>;
    /// Sets the run's state of an attached alert, withdrawing any
    /// acknowledgement of it.
    fn set_alert_state(&self, run: &str, alert: &str, status: &str, at: i64) -> Result<()>;
    /// Records that `by` acknowledged the run's state of an attached alert
    /// (replacing an earlier acknowledgement).
    fn acknowledge_alert(&self, run: &str, alert: &str, by: &str, at: i64) -> Result<()>;

    /// Adds an event.
    fn event_insert(&self, run: &str, ts: i64, level: &str, message: &str) -> Result<()>;
    /// Adds a batch of `run`'s events `(ts, level, message)`, in order
    /// (their sequence numbers follow the slice order), with few statements.
    fn events_insert(&self, run: &str, rows: &[(i64, String, String)]) -> Result<()>;

    /// The series id of metric `name` of `run`, creating the series.
    fn series_ensure(&self, run: &str, name: &str) -> Result<i64>;
    /// Adds a chunk to a series.
    fn chunk_insert(&self, series: i64, c: &NewChunk<'_>) -> Result<()>;
    /// Folds a batch into the series summary: `count` more points, value
    /// range, and the last point.
    fn series_extend(
        &self,
        series: i64,
        count: i64,
        min: Option<f64>,
        max: Option<f64>,
        last: Option<(Option<f64>, i64)>,
    ) -> Result<()>;

    /// Adds an artifact record.
    fn artifact_insert(&self, a: &ArtifactRow) -> Result<()>;
    /// Marks whether its bytes are uploaded.
    fn artifact_set_uploaded(&self, id: &str, uploaded: bool) -> Result<()>;
    /// Records its real size (known once the bytes are stored).
    fn artifact_set_size(&self, id: &str, size: u64) -> Result<()>;
    /// Attaches an artifact to a run, or changes its category.
    fn artifact_attach(&self, run: &str, artifact: &str, category: &str) -> Result<()>;
    /// Removes an artifact record and its attachments (not the bytes).
    fn artifact_delete(&self, id: &str) -> Result<()>;

    /// Adds a tag, unless one of that name exists (whoever made it, seen by
    /// the caller or not): false then, and nothing changes.
    fn tag_insert(&self, t: &TagRow) -> Result<bool>;
    /// Sets a tag's name, colour and description, unless another tag has
    /// that name: false then, and nothing changes.
    fn tag_update(&self, t: &TagRow) -> Result<bool>;
    /// Removes a tag record.
    fn tag_delete(&self, id: &str) -> Result<()>;

    /// Adds a token.
    fn token_insert(&self, t: &TokenRow) -> Result<()>;
    /// Removes a token; whether it existed.
    fn token_delete(&self, id: &str) -> Result<bool>;
    /// Records that a token was accepted at `at` (seconds).
    fn token_touch(&self, id: &str, at: i64) -> Result<()>;
    /// Adds a user, or replaces the one of the same name.
    fn user_put(&self, u: &UserRow) -> Result<()>;
    /// Sets a user's profile document.
    fn user_profile_put(&self, name: &str, doc: &str) -> Result<()>;
    /// Adds a group record, or replaces the one of the same name.
    fn tenant_put(&self, t: &TenantRow) -> Result<()>;
    /// Removes a group record; whether it existed.
    fn tenant_delete(&self, name: &str) -> Result<bool>;
    /// Appends to the audit trail.
    fn audit_insert(&self, a: &AuditRow) -> Result<()>;
    /// Saves the window state of an alert on a run.
    fn alert_window_put(&self, run: &str, alert: &str, state: &str) -> Result<()>;
    /// Sets a server setting.
    fn setting_put(&self, key: &str, value: &[u8]) -> Result<()>;
    /// Sets the failed sign-ins counted under `key`.
    fn signin_failures_put(&self, key: &str, count: i64, since: i64) -> Result<()>;
    /// Forgets the failed sign-ins counted under `key`.
    fn signin_failures_delete(&self, key: &str) -> Result<()>;
    /// Forgets the counts whose window began before `before` (µs).
    fn signin_failures_purge(&self, before: i64) -> Result<usize>;
    /// Records the response to an idempotency key, created at `at`.
    fn idempotency_put(&self, scope: &str, key: &str, r: &Recorded, at: i64) -> Result<()>;
    /// Forgets idempotency keys created before `before`; how many.
    fn idempotency_purge(&self, before: i64) -> Result<usize>;

    /// Adds a notification channel.
    fn notify_channel_insert(&self, c: &ChannelRow) -> Result<()>;
    /// Removes a channel (and its undelivered deliveries); whether it
    /// existed.
    fn notify_channel_delete(&self, id: &str) -> Result<bool>;
    /// Queues a delivery.
    fn outbox_insert(&self, o: &OutboxRow) -> Result<()>;
    /// Claims up to `limit` deliveries that are due at `now`, unfinished
    /// and unclaimed (or whose claim ran out) until `until`, and returns
    /// them: two workers (replicas) never hold one delivery at once.
    fn outbox_claim(&self, now: i64, until: i64, limit: usize) -> Result<Vec<OutboxRow>>;
    /// Records the outcome of an attempt and releases the claim.
    fn outbox_finish(
        &self,
        id: &str,
        status: &str,
        attempts: i64,
        next_at: i64,
        error: Option<&str>,
        sent_at: Option<i64>,
    ) -> Result<()>;
    /// Forgets finished (sent or failed) deliveries created before
    /// `before`; how many.
    fn outbox_purge(&self, before: i64) -> Result<usize>;
    /// Stores a new grid.
    fn grid_insert(&self, g: &GridRow) -> Result<()>;
    /// Deletes a grid, its attachments and their values.
    fn grid_delete(&self, id: &str) -> Result<()>;
    /// Puts metric `metric` of `run` on grid `grid` (replacing any earlier grid).
    fn grid_attach(&self, run: &str, metric: &str, grid: &str) -> Result<()>;
    /// Stores one step of an array metric (replacing the same step).
    fn grid_value_put(&self, run: &str, metric: &str, v: &GridValueRow) -> Result<()>;
}

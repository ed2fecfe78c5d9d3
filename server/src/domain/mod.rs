//! The rules of the server, independent of HTTP and of any database: run
//! lifecycle ([`runs`], [`lifecycle`]), metrics ingest and reads
//! ([`metrics`]), [`events`], [`artifacts`], [`folders`], [`alerts`]
//! (definitions, evaluation, state changes), tokens and signed links
//! ([`auth`]), notification channels and the delivery outbox ([`notify`]),
//! and the Simvue filter language ([`filters`]).
//!
//! Every operation works on the storage traits ([`crate::storage`]) and
//! answers with the documents the API shows (JSON values) or an [`Error`],
//! which the HTTP layer maps to a status code. Operations on state are
//! synchronous: callers run them on a blocking thread.

pub mod access;
pub mod accounts;
pub mod alerts;
pub mod artifacts;
pub mod audit;
pub mod auth;
pub mod events;
pub mod filters;
pub mod folders;
pub mod grids;
pub mod lifecycle;
pub mod metrics;
pub mod notify;
pub mod runs;
pub mod signin;
pub mod sorting;
pub mod stats;
pub mod tags;
pub mod users;

use serde_json::Value;

use crate::storage::{
    BlobError, Outcome, ReadTx, Recorded, RunScope, StateStore, StorageError, WriteTx,
};
use crate::util::now_us;

/// What went wrong, in the domain's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request cannot be read (malformed, or bytes that do not match
    /// what was announced).
    BadRequest,
    /// No valid credentials.
    Unauthorized,
    /// Valid credentials that may not do this (someone else's run, a
    /// read-only token writing, a non-administrator's admin request).
    Forbidden,
    /// No such run, folder, alert, artifact.
    NotFound,
    /// Conflicts with what is stored.
    Conflict,
    /// Over a size limit.
    TooLarge,
    /// Over a count limit (too many of something the caller may make).
    TooMany,
    /// Well-formed input with wrong types or values.
    Invalid,
    /// The storage backend failed.
    Internal,
}

/// A domain error: its kind, a message for the caller, and for a conflict
/// with an existing object, that object's id.
#[derive(Debug, Clone)]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Human-readable reason.
    pub detail: String,
    /// The existing object a conflict is about.
    pub id: Option<String>,
}

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Error {
            kind,
            detail: detail.into(),
            id: None,
        }
    }
    /// [`ErrorKind::BadRequest`]
    pub fn bad_request(d: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, d)
    }
    /// [`ErrorKind::Unauthorized`]
    pub fn unauthorized(d: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, d)
    }
    /// [`ErrorKind::Forbidden`]
    pub fn forbidden(d: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, d)
    }
    /// [`ErrorKind::NotFound`]
    pub fn not_found(d: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, d)
    }
    /// [`ErrorKind::Conflict`]
    pub fn conflict(d: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, d)
    }
    /// [`ErrorKind::TooLarge`]
    pub fn too_large(d: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLarge, d)
    }
    /// [`ErrorKind::TooMany`]
    pub fn too_many(d: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooMany, d)
    }
    /// [`ErrorKind::Invalid`]
    pub fn invalid(d: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, d)
    }
    /// [`ErrorKind::Internal`]
    pub fn internal(d: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, d)
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        Error::internal(e.0)
    }
}

impl From<BlobError> for Error {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::TooLarge(d) => Error::too_large(d),
            BlobError::Mismatch(d) => Error::bad_request(d),
            BlobError::Storage(e) => e.into(),
        }
    }
}

/// Result of a domain operation.
pub type Result<T> = std::result::Result<T, Error>;

/// Runs `f` on a consistent snapshot of `store`.
pub fn read<T>(store: &dyn StateStore, f: impl FnOnce(&dyn ReadTx) -> Result<T>) -> Result<T> {
    let mut f = Some(f);
    let mut out = None;
    store.read(&mut |tx| {
        if let Some(f) = f.take() {
            out = Some(f(tx));
        }
        Ok(())
    })?;
    out.unwrap_or_else(|| Err(Error::internal("the read transaction did not run")))
}

/// Runs `f` in a write transaction of `store`: committed when `f` succeeds,
/// rolled back when it fails.
pub fn write<T>(store: &dyn StateStore, f: impl FnOnce(&dyn WriteTx) -> Result<T>) -> Result<T> {
    write_in(store, None, f)
}

/// [`write`] in a transaction that changes run `scope.run` alone
/// ([`StateStore::write_run`]), which a store may run beside writes on
/// other runs.
pub fn write_run<T>(
    store: &dyn StateStore,
    scope: &RunScope<'_>,
    f: impl FnOnce(&dyn WriteTx) -> Result<T>,
) -> Result<T> {
    write_in(store, Some(scope), f)
}

fn write_in<T>(
    store: &dyn StateStore,
    scope: Option<&RunScope<'_>>,
    f: impl FnOnce(&dyn WriteTx) -> Result<T>,
) -> Result<T> {
    let mut f = Some(f);
    let mut out = None;
    let mut body = |tx: &dyn WriteTx| {
        let Some(f) = f.take() else {
            return Err(StorageError(
                "a write transaction's closure runs once; the store retried it".into(),
            ));
        };
        let r = f(tx);
        let outcome = if r.is_ok() {
            Outcome::Commit
        } else {
            Outcome::Rollback
        };
        out = Some(r);
        Ok(outcome)
    };
    match scope {
        None => store.write(&mut body)?,
        Some(s) => store.write_run(s, &mut body)?,
    }
    out.unwrap_or_else(|| Err(Error::internal("the write transaction did not run")))
}

/// Runs `f` on a consistent snapshot of `store` as `who` sees it
/// ([`access::Scoped`]): what `who` may not see does not exist.
pub fn read_as<T>(
    store: &dyn StateStore,
    who: &auth::Identity,
    f: impl FnOnce(&dyn ReadTx) -> Result<T>,
) -> Result<T> {
    read(store, |tx| {
        let s = access::Scoped::new(tx, who);
        let r = f(&s);
        s.finish(r)
    })
}

/// Runs `f` in a write transaction as `who` ([`access::Scoped`]): reads
/// see what `who` may see, and a change to something `who` may not change
/// fails the whole transaction (404 or 403). A read-only token writes
/// nothing (403).
pub fn write_as<T>(
    store: &dyn StateStore,
    who: &auth::Identity,
    f: impl FnOnce(&dyn WriteTx) -> Result<T>,
) -> Result<T> {
    who.may_write()?;
    write(store, |tx| {
        let s = access::Scoped::new(tx, who);
        let r = f(&s);
        s.finish(r)
    })
}

/// [`write_once`] as `who` ([`write_as`]).
pub fn write_once_as(
    store: &dyn StateStore,
    who: &auth::Identity,
    idem: &Idem,
    f: impl FnOnce(&dyn WriteTx) -> Result<Value>,
) -> Result<Recorded> {
    who.may_write()?;
    write_once(store, idem, |tx| {
        let s = access::Scoped::new(tx, who);
        let r = f(&s);
        s.finish(r)
    })
}

/// The idempotency scope and key of one mutating request, if it carried one.
#[derive(Debug, Clone, Default)]
pub struct Idem {
    /// Who sent it (the token id): keys are scoped per token.
    pub scope: String,
    /// The key, if any.
    pub key: Option<String>,
}

/// Applies a mutation at most once per idempotency key: a key seen before
/// answers its recorded response without running `f`; otherwise `f`'s
/// document is recorded under the key in the same transaction as the
/// change itself, so a crash cannot separate "applied" from "recorded".
pub fn write_once(
    store: &dyn StateStore,
    idem: &Idem,
    f: impl FnOnce(&dyn WriteTx) -> Result<Value>,
) -> Result<Recorded> {
    write(store, |tx| once(tx, idem, f))
}

/// [`write_once`] for a mutation of run `run` alone ([`write_run`]): a
/// metrics, events or array batch or a heartbeat.
pub fn write_once_run(
    store: &dyn StateStore,
    run: &str,
    idem: &Idem,
    f: impl FnOnce(&dyn WriteTx) -> Result<Value>,
) -> Result<Recorded> {
    let scope = RunScope {
        run,
        idem: idem.key.as_deref().map(|k| (idem.scope.as_str(), k)),
    };
    write_run(store, &scope, |tx| once(tx, idem, f))
}

/// [`write_once_run`] as `who` ([`write_as`]).
pub fn write_once_run_as(
    store: &dyn StateStore,
    who: &auth::Identity,
    run: &str,
    idem: &Idem,
    f: impl FnOnce(&dyn WriteTx) -> Result<Value>,
) -> Result<Recorded> {
    who.may_write()?;
    write_once_run(store, run, idem, |tx| {
        let s = access::Scoped::new(tx, who);
        let r = f(&s);
        s.finish(r)
    })
}

fn once(
    tx: &dyn WriteTx,
    idem: &Idem,
    f: impl FnOnce(&dyn WriteTx) -> Result<Value>,
) -> Result<Recorded> {
    if let Some(key) = &idem.key
        && let Some(r) = tx.idempotency_get(&idem.scope, key)?
    {
        return Ok(r);
    }
    let r = Recorded {
        status: 200,
        body: f(tx)?.to_string(),
    };
    if let Some(key) = &idem.key {
        tx.idempotency_put(&idem.scope, key, &r, now_us())?;
    }
    Ok(r)
}

/// Parses stored JSON text, or `default` when it does not parse.
pub(crate) fn parse_json(s: &str, default: Value) -> Value {
    serde_json::from_str(s).unwrap_or(default)
}

/// Checks a user-supplied name against [`simtrack::model::check_name`].
pub fn check_name(what: &str, s: &str, max: usize) -> Result<()> {
    use simtrack::model::NameError;
    simtrack::model::check_name(s, max).map_err(|e| {
        Error::invalid(match e {
            NameError::Empty => format!("{what} must not be empty"),
            NameError::TooLong => format!("{what} is longer than {max} bytes"),
            NameError::ControlCharacter | NameError::BadCharacter => {
                format!("{what} must not contain control characters")
            }
        })
    })
}

/// A page of a list: `{"data": all[start..start+count], "count": all.len()}`,
/// the shape every list endpoint answers with.
pub fn page(all: Vec<Value>, start: usize, count: usize) -> Value {
    let total = all.len();
    let data: Vec<Value> = all.into_iter().skip(start).take(count).collect();
    serde_json::json!({ "data": data, "count": total })
}

/// Runs blocking work (state transactions, CPU-heavy decoding) off the
/// async executor.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(Error::internal(format!("request handler failed: {e}"))))
}

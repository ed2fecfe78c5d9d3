//! The `simtrack` command: a self-hostable tracking server that speaks the
//! Simvue REST API (so the official `simvue` Python client and the simtrack
//! C library both report to it), plus `token create` and `sync`.
//!
//! Three layers, each importing only the one below it (checked by
//! `tests/layers.rs`):
//!
//! * [`http`]: routing, token extraction, bounded bodies, JSON/msgpack wire
//!   formats, idempotency-key plumbing, status codes, the web UI. Handlers
//!   parse a request, call the domain and answer; domain errors become
//!   status codes in one place (`From<domain::Error> for http::ApiError`).
//! * [`domain`]: the rules (run lifecycle and the run query engine, metrics
//!   ingest, reads and downsampling, events, folders, artifacts, alert
//!   evaluation and state changes, lost-run detection, abort requests,
//!   tokens). No HTTP types, no SQL; its own [`domain::Error`].
//! * [`storage`]: the interfaces. [`storage::StateStore`] runs read and write
//!   transactions over typed operations (idempotency records included, so a
//!   change and its key commit together); [`storage::BlobStore`] keeps
//!   artifact bytes by SHA-256. [`storage::sqlite`] and [`storage::files`]
//!   implement them; a backend is chosen once, at start.
//!
//! [`server`] wires them together; [`config`] and [`util`] are shared.
//!
//! Beside them: [`http::serve`] (the connection loop: header, body and
//! idle timeouts, the connection cap, the shutdown deadline), [`private`] (the
//! data directory stays private to the server), [`doctor`] (checks a data
//! directory or a library spool), [`notify`] (delivers notifications:
//! email and webhooks).

pub mod config;
pub mod doctor;
pub mod domain;
pub mod http;
pub mod migrate;
pub mod notify;
pub mod private;
pub mod replica;
pub mod server;
pub mod storage;
pub mod util;

/// The Simvue server API version we answer at `/api/version` (the 2.6
/// client accepts `>= 1.1.0, < 2.0.0`; explicit event log levels need
/// `>= 1.2.16`).
pub const SIMVUE_API_VERSION: &str = "1.3.0";

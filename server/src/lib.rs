//! The `simtrack` command: a self-hostable tracking server that speaks the
//! Simvue REST API (so the official `simvue` Python client and the simtrack
//! C library both report to it), plus `token create` and `sync`.
//!
//! Request flow: [`api`] (routing, auth, bounded bodies, idempotency keys,
//! one module per resource) → [`store`] (SQLite in WAL mode for state and
//! metric chunks; content-addressed blobs for files). [`alerts`] evaluates
//! alert rules as data arrives; [`lifecycle`] marks silent runs lost;
//! [`openapi`] describes the API; [`ui`] serves the web UI; [`server`] runs
//! it all.

pub mod config;
pub mod domain;
pub mod http;
pub mod server;
pub mod storage;
pub mod util;

/// The Simvue server API version we answer at `/api/version` (the 2.6
/// client accepts `>= 1.1.0, < 2.0.0`; explicit event log levels need
/// `>= 1.2.16`).
pub const SIMVUE_API_VERSION: &str = "1.3.0";

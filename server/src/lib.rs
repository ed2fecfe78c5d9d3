//! The `simtrack` command: a self-hostable tracking server that speaks the
//! Simvue REST API (so the official `simvue` Python client and the simtrack
//! C library both report to it), plus `token create` and `sync`.
//!
//! Request flow: [`api`] (routing, auth, bounded bodies, idempotency keys,
//! one module per resource) → [`store`] (SQLite in WAL mode for state and
//! metric chunks; content-addressed blobs for files). [`alerts`] evaluates
//! alert rules as data arrives; [`lifecycle`] marks silent runs lost;
//! [`openapi`] describes the API; [`ui`] serves the web UI; [`server`] runs
//! it all, through [`serve`] (the connection loop: timeouts, connection cap,
//! shutdown deadline) and [`secure_headers`] (headers on every response, how
//! files are served). [`private`] keeps the data directory private;
//! [`doctor`] checks a data directory or a library spool.

pub mod alerts;
pub mod api;
pub mod auth;
pub mod config;
pub mod doctor;
pub mod lifecycle;
pub mod openapi;
pub mod private;
pub mod secure_headers;
pub mod serve;
pub mod server;
pub mod store;
pub mod ui;
pub mod util;

/// The Simvue server API version we answer at `/api/version` (the 2.6
/// client accepts `>= 1.1.0, < 2.0.0`; explicit event log levels need
/// `>= 1.2.16`).
pub const SIMVUE_API_VERSION: &str = "1.3.0";

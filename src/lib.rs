//! simtrack: simulation tracking for Fortran, C and C++ solvers.
//!
//! A solver holds a [`Run`] (in C, an opaque `simtrack_run *` from
//! [`ffi`]). Logging appends to the calling thread's buffer, a memory-mapped
//! file that outlives a crash (`lanes`), and returns; a named
//! background thread (`worker`) drains it in batches into an append-only,
//! checksummed log on disk (`spool`), and — when a server is configured —
//! ships what the spool holds over the Simvue REST protocol (`transport`),
//! advancing an acknowledged offset. Offline runs stop at the spool;
//! `simtrack sync` later replays it with the same code. `config` resolves the
//! environment and `simtrack.ini`; `record` defines what a run produces;
//! `model` holds the run model's facts (statuses, limits, name and folder
//! rules, categories, timestamps) that the server shares.
//!
//! Dependency direction: `ffi → run → worker → spool / transport`, with
//! `config`, `model`, `record` and `error` shared.

mod clock;
pub mod config;
pub mod context;
pub mod delivery;
pub mod error;
mod exit;
pub mod ffi;
mod fork;
pub mod grid;
pub mod lanes;
pub mod model;
pub mod record;
pub mod run;
pub mod signals;
pub mod spool;
pub mod sync;
pub mod transport;
pub mod warn;
mod worker;

pub use error::{Error, Status};
pub use run::{InitOptions, Run};

/// The library version as a C string (static storage).
pub(crate) const VERSION_C: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
) {
    Ok(v) => v,
    Err(_) => panic!("version contains a NUL byte"),
};

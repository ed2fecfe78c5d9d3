//! The C ABI: the only code in the crate that touches raw pointers.
//!
//! `api` holds the exported functions, one thin wrapper each over [`crate::Run`].
//! The other modules are the infrastructure every wrapper shares: the panic
//! boundary and thread-local last error (`boundary`), borrowed C strings
//! (`strings`), the opaque handle (`handle`) and how calls hold it while
//! `simtrack_finish` may run (`lease`).

pub mod api;
mod boundary;
pub mod grid;
mod handle;
mod lease;
mod signals;
mod strings;

pub use handle::Handle;

//! The rules of the server, independent of HTTP and of any database.

pub mod alerts;
pub mod auth;
pub mod filters;
pub mod lifecycle;

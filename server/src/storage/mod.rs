//! Durable state: `sqlite` for runs, metrics and the rest of the state,
//! `files` for artifact bytes.

pub mod files;
pub mod sqlite;

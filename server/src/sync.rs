//! `simtrack sync`: argument handling only. Finding, locking and uploading
//! spooled runs is the library's job (`simtrack::sync`).

use std::path::PathBuf;
use std::process::ExitCode;

/// Uploads the offline runs under `cache` (or the configured offline dir).
pub fn run(cache: Option<PathBuf>) -> ExitCode {
    let _ = cache;
    eprintln!("simtrack sync: not available yet (waiting for the library's sync entry point)");
    ExitCode::FAILURE
}

//! `simtrack sync`: argument handling and the report only. Finding, locking
//! and uploading spooled runs is the library's job ([`simtrack::sync`]), so
//! the CLI and a solver share one spool reader and one transport.

use std::path::PathBuf;
use std::process::ExitCode;

use simtrack::config::Config;
use simtrack::sync::{SyncOptions, all_delivered, sync};

/// Uploads the offline runs under `cache` (default: the configured offline
/// directory) to the configured server; non-zero exit if any run is left
/// incomplete or the sync could not start.
pub fn run(cache: Option<PathBuf>, only: Option<String>) -> ExitCode {
    let mut config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("simtrack sync: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(dir) = cache {
        config.offline_dir = dir;
    }
    let options = SyncOptions {
        only,
        ..SyncOptions::default()
    };
    match sync(&config, &options) {
        Ok(reports) => {
            if reports.is_empty() {
                let missing = if config.offline_dir.exists() {
                    ""
                } else {
                    " (no such directory)"
                };
                println!(
                    "no offline runs in {}{missing}",
                    config.offline_dir.display()
                );
            }
            for r in &reports {
                println!("{r}");
            }
            if all_delivered(&reports) {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "simtrack sync: some runs are incomplete or hold records the server refused; they stay in the spool and the next sync retries them"
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("simtrack sync: {e}");
            ExitCode::FAILURE
        }
    }
}

//! Server configuration: command-line flags over environment over defaults.
//!
//! | setting | flag | environment | default |
//! |---|---|---|---|
//! | data directory | `--data` | `SIMTRACK_DATA` | `$XDG_DATA_HOME/simtrack`, else `~/.local/share/simtrack`, else `./simtrack-data` |
//! | listen address | `--listen` | `SIMTRACK_LISTEN` | `127.0.0.1:8800` |
//! | public base URL | `--public-url` | `SIMTRACK_PUBLIC_URL` | from the request's `Host` |
//! | request body limit | `--max-body` | | 64 MiB |
//! | upload limit | `--max-upload` | | 8 GiB |
//! | lost-run check period | `--lost-check-secs` | | 5 s |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8800";

/// Everything `simtrack server` needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Holds `simtrack.db` and `blobs/`.
    pub data_dir: PathBuf,
    /// Where to listen (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Base URL put in artifact upload/download links, when the `Host`
    /// header is not what clients should use (e.g. behind a proxy).
    pub public_url: Option<String>,
    /// Largest accepted API request body (JSON, msgpack), in bytes.
    pub max_body: usize,
    /// Largest accepted artifact, in bytes.
    pub max_upload: u64,
    /// How often running runs are checked for silence.
    pub lost_check: Duration,
}

/// The data directory when none is given.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SIMTRACK_DATA").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("simtrack");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(h).join(".local/share/simtrack");
    }
    PathBuf::from("simtrack-data")
}

impl ServerConfig {
    /// Defaults for everything but the data directory.
    pub fn new(data_dir: PathBuf) -> ServerConfig {
        let listen = std::env::var("SIMTRACK_LISTEN")
            .ok()
            .and_then(|l| l.parse().ok());
        ServerConfig {
            data_dir,
            listen: listen
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default address")),
            public_url: std::env::var("SIMTRACK_PUBLIC_URL")
                .ok()
                .filter(|u| !u.is_empty()),
            max_body: 64 << 20,
            max_upload: 8 << 30,
            lost_check: Duration::from_secs(5),
        }
    }
}

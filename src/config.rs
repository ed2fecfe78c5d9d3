//! Configuration: where runs go and how the library behaves.
//!
//! Every key can come from the environment or from an ini file; the
//! environment wins over the file, the file over the defaults. The file is
//! the first of `$SIMTRACK_CONFIG`, `./simtrack.ini`, `~/.simtrack.ini` that
//! exists.
//!
//! | environment                   | simtrack.ini                 | default                          |
//! |-------------------------------|------------------------------|----------------------------------|
//! | `SIMTRACK_URL`                | `[server] url`               | none: runs are recorded offline  |
//! | `SIMTRACK_TOKEN`              | `[server] token`             | none (required with a URL)       |
//! | `SIMTRACK_CA_BUNDLE`          | `[server] ca_bundle`         | the system's CA store            |
//! | `SIMTRACK_MODE`               | `[run] mode`                 | `online` with a URL, else `offline`; `disabled` records nothing |
//! | `SIMTRACK_OFFLINE_DIR`        | `[offline] cache`            | `$XDG_CACHE_HOME/simtrack`, else `~/.cache/simtrack` |
//! | `SIMTRACK_RANKS`              | `[run] ranks`                | `0`: only MPI rank 0 reports; `all`: every rank, each its own run |
//! | `SIMTRACK_HEARTBEAT_INTERVAL` | `[run] heartbeat_interval`   | 60 (seconds)                     |
//! | `SIMTRACK_HEARTBEAT_TIMEOUT`  | `[run] heartbeat_timeout`    | 180 (seconds of silence before the server marks the run lost) |
//! | `SIMTRACK_ABORT_POLL`         | `[run] abort_poll`           | 2 (seconds between abort checks) |
//! | `SIMTRACK_RESOURCES_INTERVAL` | `[run] resources_interval`   | 30 (seconds; 0 disables the `resources/` metrics) |
//! | `SIMTRACK_FINISH_TIMEOUT`     | `[run] finish_timeout`       | 30 (seconds `finish` may wait for the server) |
//! | `SIMTRACK_REQUEST_TIMEOUT`    | `[server] request_timeout`   | 10 (seconds per HTTP request)    |
//! | `SIMTRACK_MEMORY_CAP_MB`      | `[run] memory_cap_mb`        | 64 (MiB; each logging thread's buffer holds an eighth of it before logging waits for the disk) |
//! | `SIMTRACK_LOG_WAIT`           | `[run] log_wait`             | 1 (seconds `log` may wait for the disk at the memory cap before it fails with `SIMTRACK_STATUS_IO`; 0: never wait) |
//! | `SIMTRACK_MAX_REQUEST_KB`     | `[server] max_request_kb`    | 512 (KiB: metric and event batches are split so one request body stays below this; a 413 answer splits further) |

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Status};

/// Where a run's data goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Spool to disk and ship to the server.
    Online,
    /// Spool to disk only; `simtrack sync` uploads later.
    Offline,
    /// Record nothing: every handle is a no-op handle.
    Disabled,
}

/// Which MPI ranks report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranks {
    /// Only rank 0; the others get no-op handles.
    Zero,
    /// Every rank, each as its own run.
    All,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    /// Server base URL without a trailing slash.
    pub url: Option<String>,
    pub token: Option<String>,
    pub ca_bundle: Option<PathBuf>,
    pub offline_dir: PathBuf,
    pub ranks: Ranks,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    pub abort_poll: Duration,
    /// `None`: resource sampling disabled.
    pub resources_interval: Option<Duration>,
    pub finish_timeout: Duration,
    pub request_timeout: Duration,
    pub memory_cap_bytes: usize,
    /// How long `log` may wait for room at the memory cap.
    pub log_wait: Duration,
    /// Largest request body the transport sends (batches are split below it).
    pub max_request_bytes: usize,
    /// Which file the settings came from, if any (for messages).
    pub source_file: Option<PathBuf>,
}

/// Looks up an environment variable.
type EnvFn = dyn Fn(&str) -> Option<String>;

/// A source of keys: the environment, then the ini file.
struct Sources {
    ini: Option<ini::Ini>,
    file: Option<PathBuf>,
    env: Box<EnvFn>,
}

impl Sources {
    fn get(&self, env_key: &str, section: &str, key: &str) -> Option<(String, String)> {
        if let Some(v) = (self.env)(env_key).filter(|v| !v.trim().is_empty()) {
            return Some((v.trim().to_owned(), env_key.to_owned()));
        }
        let ini = self.ini.as_ref()?;
        // Key names in any case, as Python's configparser reads them.
        let v = ini
            .section(Some(section))?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))?
            .1
            .trim();
        if v.is_empty() {
            return None;
        }
        let file = self
            .file
            .as_deref()
            .map_or_else(String::new, |f| f.display().to_string());
        Some((v.to_owned(), format!("[{section}] {key} in {file}")))
    }

    fn seconds(
        &self,
        env_key: &str,
        section: &str,
        key: &str,
        default: f64,
        allow_zero: bool,
    ) -> Result<Duration, Error> {
        match self.get(env_key, section, key) {
            None => Ok(Duration::from_secs_f64(default)),
            Some((v, origin)) => match v.parse::<f64>() {
                Ok(s) if s.is_finite() && (s > 0.0 || (allow_zero && s == 0.0)) && s < 1e9 => {
                    Ok(Duration::from_secs_f64(s))
                }
                _ => Err(Error::new(
                    Status::Config,
                    format!("{origin} must be a positive number of seconds, got {v:?}"),
                )),
            },
        }
    }
}

/// What the ini parser lets through but is a mistake: a line that is
/// neither `[section]` nor `key = value` (the parser reads on to the next
/// `=`, swallowing the lines between, `[server]` included), and a key
/// outside any section (no section reads it).
fn check_lines(ini: &ini::Ini) -> Result<(), String> {
    for (section, props) in ini.iter() {
        for (key, _) in props.iter() {
            if let Some(line) = key.lines().next().filter(|_| key.contains(['\n', '\r'])) {
                return Err(format!(
                    "{:?} is neither a [section] nor a key = value line",
                    line.trim()
                ));
            }
            if section.is_none() {
                return Err(format!(
                    "{key:?} is outside any section (keys belong under [server], [run] or [offline])"
                ));
            }
        }
    }
    Ok(())
}

impl Config {
    /// Loads the configuration from the process environment and ini file.
    pub fn load() -> Result<Config, Error> {
        Self::load_with(|k| std::env::var(k).ok())
    }

    /// Loads the configuration with `env` standing in for the environment.
    pub fn load_with(env: impl Fn(&str) -> Option<String> + 'static) -> Result<Config, Error> {
        let file = env("SIMTRACK_CONFIG")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("simtrack.ini")).filter(|p| p.is_file()))
            .or_else(|| {
                env("HOME")
                    .map(|h| Path::new(&h).join(".simtrack.ini"))
                    .filter(|p| p.is_file())
            });
        let ini = match &file {
            Some(path) => Some(
                ini::Ini::load_from_file(path)
                    .map_err(|e| e.to_string())
                    .and_then(|ini| check_lines(&ini).map(|()| ini))
                    .map_err(|e| {
                        Error::new(
                            Status::Config,
                            format!("cannot read configuration file {}: {e}", path.display()),
                        )
                    })?,
            ),
            None => None,
        };
        let src = Sources {
            ini,
            file: file.clone(),
            env: Box::new(env),
        };

        let url = match src.get("SIMTRACK_URL", "server", "url") {
            None => None,
            Some((u, origin)) => Some(check_url(&u, &origin)?),
        };
        let token = src.get("SIMTRACK_TOKEN", "server", "token").map(|(t, _)| t);
        let mode = match src.get("SIMTRACK_MODE", "run", "mode") {
            None if url.is_some() => Mode::Online,
            None => Mode::Offline,
            Some((m, origin)) => match m.to_ascii_lowercase().as_str() {
                "online" => Mode::Online,
                "offline" => Mode::Offline,
                "disabled" => Mode::Disabled,
                _ => {
                    return Err(Error::new(
                        Status::Config,
                        format!("{origin} must be online, offline or disabled, got {m:?}"),
                    ));
                }
            },
        };
        if mode == Mode::Online {
            if url.is_none() {
                return Err(Error::new(
                    Status::Config,
                    "online mode needs a server: set SIMTRACK_URL or [server] url in simtrack.ini",
                ));
            }
            if token.is_none() {
                return Err(Error::new(
                    Status::Config,
                    "a server URL is configured but no token: set SIMTRACK_TOKEN or [server] token in simtrack.ini",
                ));
            }
        }
        let offline_dir = match src.get("SIMTRACK_OFFLINE_DIR", "offline", "cache") {
            Some((d, _)) => PathBuf::from(d),
            None => default_cache_dir(&*src.env),
        };
        let ranks = match src.get("SIMTRACK_RANKS", "run", "ranks") {
            None => Ranks::Zero,
            Some((r, origin)) => match r.to_ascii_lowercase().as_str() {
                "0" | "zero" | "root" => Ranks::Zero,
                "all" => Ranks::All,
                _ => {
                    return Err(Error::new(
                        Status::Config,
                        format!("{origin} must be 0 or all, got {r:?}"),
                    ));
                }
            },
        };
        let resources = src.seconds(
            "SIMTRACK_RESOURCES_INTERVAL",
            "run",
            "resources_interval",
            30.0,
            true,
        )?;
        let cap_mb = src.seconds(
            "SIMTRACK_MEMORY_CAP_MB",
            "run",
            "memory_cap_mb",
            64.0,
            false,
        )?;
        Ok(Config {
            mode,
            url,
            token,
            ca_bundle: src
                .get("SIMTRACK_CA_BUNDLE", "server", "ca_bundle")
                .map(|(p, _)| PathBuf::from(p)),
            offline_dir,
            ranks,
            heartbeat_interval: src.seconds(
                "SIMTRACK_HEARTBEAT_INTERVAL",
                "run",
                "heartbeat_interval",
                60.0,
                false,
            )?,
            heartbeat_timeout: src.seconds(
                "SIMTRACK_HEARTBEAT_TIMEOUT",
                "run",
                "heartbeat_timeout",
                180.0,
                false,
            )?,
            abort_poll: src.seconds("SIMTRACK_ABORT_POLL", "run", "abort_poll", 2.0, false)?,
            resources_interval: Some(resources).filter(|d| !d.is_zero()),
            finish_timeout: src.seconds(
                "SIMTRACK_FINISH_TIMEOUT",
                "run",
                "finish_timeout",
                30.0,
                true,
            )?,
            request_timeout: src.seconds(
                "SIMTRACK_REQUEST_TIMEOUT",
                "server",
                "request_timeout",
                10.0,
                false,
            )?,
            memory_cap_bytes: (cap_mb.as_secs_f64() * 1024.0 * 1024.0) as usize,
            log_wait: src.seconds("SIMTRACK_LOG_WAIT", "run", "log_wait", 1.0, true)?,
            max_request_bytes: (src
                .seconds(
                    "SIMTRACK_MAX_REQUEST_KB",
                    "server",
                    "max_request_kb",
                    512.0,
                    false,
                )?
                .as_secs_f64()
                * 1024.0) as usize,
            source_file: file,
        })
    }
}

fn check_url(url: &str, origin: &str) -> Result<String, Error> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
        .ok_or_else(|| {
            Error::new(
                Status::Config,
                format!("{origin} must start with http:// or https://, got {url:?}"),
            )
        })?;
    if rest.trim_matches('/').is_empty() || rest.contains(char::is_whitespace) {
        return Err(Error::new(
            Status::Config,
            format!("{origin} has no valid host: {url:?}"),
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn default_cache_dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(x) = env("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return Path::new(&x).join("simtrack");
    }
    match env("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Path::new(&h).join(".cache").join("simtrack"),
        None => std::env::temp_dir().join("simtrack"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, Error> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load_with(move |k| map.get(k).cloned())
    }

    #[test]
    fn no_server_means_offline_into_the_cache_dir() {
        let c = load(&[("HOME", "/home/u")]).unwrap();
        assert_eq!(c.mode, Mode::Offline);
        assert_eq!(c.offline_dir, PathBuf::from("/home/u/.cache/simtrack"));
        assert_eq!(c.heartbeat_interval, Duration::from_secs(60));
        assert_eq!(c.finish_timeout, Duration::from_secs(30));
    }

    #[test]
    fn url_and_token_from_environment_mean_online() {
        let c = load(&[
            ("SIMTRACK_URL", "http://localhost:8800/"),
            ("SIMTRACK_TOKEN", "t"),
        ])
        .unwrap();
        assert_eq!(c.mode, Mode::Online);
        assert_eq!(c.url.as_deref(), Some("http://localhost:8800"));
        assert_eq!(c.token.as_deref(), Some("t"));
    }

    #[test]
    fn url_without_scheme_is_a_config_error_naming_the_variable() {
        let e = load(&[("SIMTRACK_URL", "localhost:8800"), ("SIMTRACK_TOKEN", "t")]).unwrap_err();
        assert_eq!(e.status, Status::Config);
        assert!(e.message.contains("SIMTRACK_URL"), "{}", e.message);
    }

    #[test]
    fn url_without_token_is_a_config_error() {
        let e = load(&[("SIMTRACK_URL", "https://x.example")]).unwrap_err();
        assert_eq!(e.status, Status::Config);
        assert!(e.message.contains("SIMTRACK_TOKEN"));
    }

    #[test]
    fn environment_wins_over_ini_file_and_ini_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let ini = dir.path().join("simtrack.ini");
        std::fs::write(&ini, "[server]\nurl = https://from-file.example\ntoken = file-token\n[run]\nfinish_timeout = 5\n").unwrap();
        let ini_s = ini.display().to_string();
        let c = load(&[("SIMTRACK_CONFIG", &ini_s), ("SIMTRACK_TOKEN", "env-token")]).unwrap();
        assert_eq!(c.url.as_deref(), Some("https://from-file.example"));
        assert_eq!(c.token.as_deref(), Some("env-token"));
        assert_eq!(c.finish_timeout, Duration::from_secs(5));
    }

    #[test]
    fn malformed_ini_is_a_config_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ini = dir.path().join("simtrack.ini");
        std::fs::write(&ini, "[server\nurl = x\n").unwrap();
        let ini_s = ini.display().to_string();
        let e = load(&[("SIMTRACK_CONFIG", &ini_s)]).unwrap_err();
        assert_eq!(e.status, Status::Config);
        assert!(e.message.contains("simtrack.ini"), "{}", e.message);
    }

    #[test]
    fn stray_lines_and_keys_outside_a_section_are_config_errors_and_keys_take_any_case() {
        let dir = tempfile::tempdir().unwrap();
        let ini = dir.path().join("simtrack.ini");
        let ini_s = ini.display().to_string();
        for (text, says) in [
            (
                "token abc\n[server]\nurl = https://x.example\ntoken = t\n",
                "\"token abc\" is neither a [section] nor a key = value line",
            ),
            (
                "url = https://x.example\n[server]\ntoken = t\n",
                "\"url\" is outside any section",
            ),
            (
                "[server]\nurl = https://x.example\ntoken = t\nfinish_timeout 5\n[run]\nfinish_timeout = 5\n",
                "\"finish_timeout 5\" is neither",
            ),
        ] {
            std::fs::write(&ini, text).unwrap();
            let e = load(&[("SIMTRACK_CONFIG", &ini_s)]).unwrap_err();
            assert_eq!(e.status, Status::Config, "{text}");
            assert!(e.message.contains(says), "{text}: {}", e.message);
            assert!(e.message.contains("simtrack.ini"), "{}", e.message);
        }
        std::fs::write(
            &ini,
            "; a comment\n\n[server]\nURL = https://x.example\nToken = t\n[run]\nFinish_Timeout = 5\n",
        )
        .unwrap();
        let c = load(&[("SIMTRACK_CONFIG", &ini_s)]).unwrap();
        assert_eq!(c.url.as_deref(), Some("https://x.example"));
        assert_eq!(c.token.as_deref(), Some("t"));
        assert_eq!(c.finish_timeout, Duration::from_secs(5));
    }

    #[test]
    fn bad_mode_and_bad_numbers_are_config_errors() {
        assert_eq!(
            load(&[("SIMTRACK_MODE", "sometimes")]).unwrap_err().status,
            Status::Config
        );
        assert_eq!(
            load(&[("SIMTRACK_FINISH_TIMEOUT", "soon")])
                .unwrap_err()
                .status,
            Status::Config
        );
        let c = load(&[
            ("SIMTRACK_MODE", "disabled"),
            ("SIMTRACK_RESOURCES_INTERVAL", "0"),
        ])
        .unwrap();
        assert_eq!(c.mode, Mode::Disabled);
        assert!(c.resources_interval.is_none());
    }
}

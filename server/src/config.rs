//! Server configuration: command-line flags over environment over defaults.
//!
//! | setting | flag | environment | default |
//! |---|---|---|---|
//! | data directory | `--data` | `SIMTRACK_DATA` | `$XDG_DATA_HOME/simtrack`, else `~/.local/share/simtrack`, else `./simtrack-data` |
//! | PostgreSQL database (scale-out) | `--database` | `SIMTRACK_DATABASE_URL` | none: SQLite in the data directory |
//! | artifact store (scale-out) | `--blobs` | `SIMTRACK_BLOBS` | `blobs/` in the data directory |
//! | listen address | `--listen` | `SIMTRACK_LISTEN` | `127.0.0.1:8800` |
//! | public base URL | `--public-url` | `SIMTRACK_PUBLIC_URL` | from the request's `Host` |
//! | request body limit | `--max-body` | | 64 MiB |
//! | upload limit | `--max-upload` | | 8 GiB |
//! | lost-run check period | `--lost-check-secs` | | 5 s |
//! | request header read timeout | `--header-timeout-secs` | `SIMTRACK_HEADER_TIMEOUT_SECS` | 10 s |
//! | request body stall timeout | `--body-timeout-secs` | `SIMTRACK_BODY_TIMEOUT_SECS` | 30 s |
//! | idle keep-alive timeout | `--idle-timeout-secs` | `SIMTRACK_IDLE_TIMEOUT_SECS` | 60 s |
//! | shutdown deadline | `--shutdown-timeout-secs` | `SIMTRACK_SHUTDOWN_TIMEOUT_SECS` | 10 s |
//! | connection cap | `--max-connections` | `SIMTRACK_MAX_CONNECTIONS` | from the open-file limit |
//! | most points of a downsampled read | `--max-read-points` | `SIMTRACK_MAX_READ_POINTS` | 100,000 |
//! | metric names per run | `--max-metric-names` | `SIMTRACK_MAX_METRIC_NAMES` | 10,000 |
//! | token cache lifetime | `--token-cache-secs` | `SIMTRACK_TOKEN_CACHE_SECS` | 2 s |
//! | visibility of new runs | `--default-visibility private\|group` | `SIMTRACK_DEFAULT_VISIBILITY` | private |
//! | trusted reverse proxies | `--trusted-proxy IP` (repeatable) | `SIMTRACK_TRUSTED_PROXIES` (comma-separated) | none |
//! | SMTP server for notification emails | `--smtp-host`, `--smtp-port` | `SIMTRACK_SMTP_HOST`, `SIMTRACK_SMTP_PORT` | none (no email); port 587, 465 with implicit TLS, 25 without TLS |
//! | SMTP transport security | `--smtp-starttls` (`required`, `opportunistic`, `never`), `--smtp-implicit-tls` | `SIMTRACK_SMTP_STARTTLS`, `SIMTRACK_SMTP_IMPLICIT_TLS=1` | `required` |
//! | SMTP credentials | `--smtp-user`, `--smtp-password-file` | `SIMTRACK_SMTP_USER`, `SIMTRACK_SMTP_PASSWORD`, `SIMTRACK_SMTP_PASSWORD_FILE` | none (never on the command line) |
//! | sender address | `--smtp-from` | `SIMTRACK_SMTP_FROM` | `simtrack@HOST` |
//! | extra CA for the SMTP server's certificate | `--smtp-ca-file` | `SIMTRACK_SMTP_CA_FILE` | the system's roots only |
//! | notification retries | | `SIMTRACK_NOTIFY_RETRY_SECS`, `SIMTRACK_NOTIFY_RETRY_MAX_SECS`, `SIMTRACK_NOTIFY_ATTEMPTS` | 10 s doubling to 1 h, 12 attempts |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How long a verified token is trusted by default before it is looked up
/// again.
pub const DEFAULT_TOKEN_CACHE: Duration = Duration::from_secs(2);

/// Default of [`ServerConfig::max_read_points`].
pub const DEFAULT_MAX_READ_POINTS: usize = 100_000;
/// Default of [`ServerConfig::blobs_url_secs`]: long enough for a large
/// upload to start on a slow link, short enough that a leaked URL is soon
/// useless.
pub const DEFAULT_BLOBS_URL_SECS: u32 = 900;
/// Default of [`ServerConfig::max_metric_names`].
pub const DEFAULT_MAX_METRIC_NAMES: u64 = 10_000;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8800";

/// Everything `simtrack server` needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Holds `simtrack.db` and `blobs/`.
    pub data_dir: PathBuf,
    /// `postgres://...`: state in that database instead of SQLite in
    /// `data_dir` (several replicas may share it).
    pub database: Option<String>,
    /// Artifact store with a database: a directory (shared by replicas);
    /// `None` is `data_dir/blobs`.
    pub blobs: Option<String>,
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
    /// Connection timeouts, cap and shutdown deadline.
    pub net: NetLimits,
    /// How long a verified token is trusted before it is looked up again
    /// (so a token revoked by the CLI or another replica stops working
    /// within this time). Zero: every request looks it up.
    pub token_cache: Duration,
    /// Most points a read with `max_points` (or an aggregated read) answers
    /// per series; a larger `max_points` is lowered to it.
    pub max_read_points: usize,
    /// Most metric names one run may have; ingest of a new name beyond it
    /// is refused (422).
    pub max_metric_names: u64,
    /// With an object store: artifact bytes go through this server
    /// instead of straight between the clients and the store (for compute
    /// nodes that cannot reach the store). Ignored for a blob directory,
    /// whose bytes always go through the server.
    pub blobs_stream_through: bool,
    /// Lifetime in seconds of the presigned object-store URLs handed to
    /// clients (upload forms and download redirects).
    pub blobs_url_secs: u32,
    /// Whether runs created without a `visibility` are visible to their
    /// owner's group (`--default-visibility group`) rather than only to
    /// their owner (`private`, the default).
    pub default_visibility_group: bool,
    /// Proxies whose `X-Forwarded-For` (client address) and
    /// `X-Forwarded-Proto` (https: the session cookie is `Secure`) are
    /// believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Where notification emails go, and how deliveries are retried.
    pub notify: NotifySettings,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS, refusing a server that does not offer it.
    Required,
    /// STARTTLS when the server offers it, plain otherwise.
    Opportunistic,
    /// No TLS (a relay on loopback or a trusted network).
    Never,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
}

impl SmtpTls {
    /// Parses a `--smtp-starttls` value.
    pub fn parse(s: &str) -> Option<SmtpTls> {
        match s {
            "required" | "yes" | "true" => Some(SmtpTls::Required),
            "opportunistic" => Some(SmtpTls::Opportunistic),
            "never" | "no" | "false" => Some(SmtpTls::Never),
            _ => None,
        }
    }
}

/// The SMTP server notification emails are sent through.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    /// `None`: 587, 465 with implicit TLS, 25 without TLS.
    pub port: Option<u16>,
    pub tls: SmtpTls,
    pub user: Option<String>,
    /// From the environment or a file, never the command line.
    pub password: Option<String>,
    /// The sender (`From:`).
    pub from: String,
    /// Extra trusted root certificates (PEM), for a site's own CA.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .finish()
    }
}

/// Which webhook hosts the server may contact. Without an entry allowing
/// them, addresses that reach the server's own network are refused:
/// loopback, link-local (cloud metadata services such as 169.254.169.254),
/// private (RFC 1918, IPv6 unique local), shared (100.64/10), unspecified,
/// broadcast and multicast. Entries (`--notify-allow-hosts`,
/// `SIMTRACK_NOTIFY_ALLOW_HOSTS`, comma-separated): an address
/// (`127.0.0.1`), a network (`10.1.0.0/16`, `fd00::/8`) or a host name
/// (`hooks.internal`, allowed whatever it resolves to).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPolicy {
    nets: Vec<(std::net::IpAddr, u8)>,
    names: Vec<String>,
}

fn ip_in(ip: std::net::IpAddr, (net, len): (std::net::IpAddr, u8)) -> bool {
    use std::net::IpAddr;
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Why `ip` reaches the server's own network (`None`: a public address).
fn internal_kind(ip: std::net::IpAddr) -> Option<&'static str> {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            if a.is_loopback() {
                Some("loopback")
            } else if a.is_link_local() {
                Some("link-local")
            } else if a.is_private() {
                Some("private")
            } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
                Some("shared (carrier-grade NAT)")
            } else if a.is_unspecified() || o[0] == 0 {
                Some("unspecified")
            } else if a.is_broadcast() || a.is_multicast() {
                Some("broadcast or multicast")
            } else {
                None
            }
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return internal_kind(IpAddr::V4(v4));
            }
            let first = a.segments()[0];
            if a.is_loopback() {
                Some("loopback")
            } else if a.is_unspecified() {
                Some("unspecified")
            } else if (first & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if (first & 0xfe00) == 0xfc00 {
                Some("private")
            } else if a.is_multicast() {
                Some("broadcast or multicast")
            } else {
                None
            }
        }
    }
}

impl HostPolicy {
    /// Parses a comma-separated list of addresses, networks and names.
    pub fn parse(list: &str) -> std::result::Result<HostPolicy, String> {
        let mut p = HostPolicy::default();
        for e in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (addr, len) = match e.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (e, None),
            };
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = addr.parse::<std::net::IpAddr>() {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let len =
                    match len {
                        None => max,
                        Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(|| {
                            format!("'{e}': the prefix length must be 0 to {max}")
                        })?,
                    };
                p.nets.push((ip, len));
            } else if len.is_none()
                && !e.is_empty()
                && e.len() <= 253
                && e.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
            {
                p.names.push(e.trim_end_matches('.').to_ascii_lowercase());
            } else {
                return Err(format!(
                    "'{e}' is not an address, a network (ADDR/LEN) or a host name"
                ));
            }
        }
        Ok(p)
    }

    /// Whether host name `name` is allowed by name.
    pub fn allows_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.names.contains(&name)
    }

    fn refused(&self, ip: std::net::IpAddr) -> Option<&'static str> {
        internal_kind(ip).filter(|_| !self.nets.iter().any(|n| ip_in(ip, *n)))
    }

    /// Refuses an address of the server's own network not allowed here,
    /// saying why.
    pub fn check_ip(&self, ip: std::net::IpAddr) -> std::result::Result<(), String> {
        match self.refused(ip) {
            None => Ok(()),
            Some(kind) => Err(format!("{ip} is a {kind} address{REFUSED}")),
        }
    }

    /// Refuses host `name` when it is not allowed by name and any of the
    /// addresses it resolved to is refused.
    pub fn check_resolved(
        &self,
        name: &str,
        addrs: &[std::net::IpAddr],
    ) -> std::result::Result<(), String> {
        if self.allows_name(name) {
            return Ok(());
        }
        for ip in addrs {
            if let Some(kind) = self.refused(*ip) {
                return Err(format!(
                    "{name} resolves to {ip}, a {kind} address{REFUSED}"
                ));
            }
        }
        Ok(())
    }
}

const REFUSED: &str = ": webhooks may not reach the server's own network unless the server \
                       allows it (--notify-allow-hosts)";

/// Notification delivery settings.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// `None`: email channels fail with a clear error (webhooks still work).
    pub smtp: Option<SmtpSettings>,
    /// Delay after the first failed attempt; doubled after each further one.
    pub retry_base: Duration,
    /// Longest delay between attempts.
    pub retry_max: Duration,
    /// Attempts before a delivery is marked failed.
    pub attempts: u32,
    /// Webhook hosts allowed on the server's own network.
    pub allow_hosts: HostPolicy,
}

impl NotifySettings {
    /// From the `SIMTRACK_SMTP_*` and `SIMTRACK_NOTIFY_*` environment.
    pub fn from_env() -> NotifySettings {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let smtp = env("SIMTRACK_SMTP_HOST").map(|host| SmtpSettings {
            from: env("SIMTRACK_SMTP_FROM").unwrap_or_else(|| format!("simtrack@{host}")),
            host,
            port: env_num("SIMTRACK_SMTP_PORT"),
            tls: if env("SIMTRACK_SMTP_IMPLICIT_TLS").is_some_and(|v| v != "0") {
                SmtpTls::Implicit
            } else {
                env("SIMTRACK_SMTP_STARTTLS")
                    .and_then(|v| SmtpTls::parse(v.trim()))
                    .unwrap_or(SmtpTls::Required)
            },
            user: env("SIMTRACK_SMTP_USER"),
            password: env("SIMTRACK_SMTP_PASSWORD").or_else(|| {
                env("SIMTRACK_SMTP_PASSWORD_FILE")
                    .and_then(|f| std::fs::read_to_string(f).ok())
                    .map(|p| p.trim_end_matches(['\r', '\n']).to_owned())
            }),
            ca_pem: env("SIMTRACK_SMTP_CA_FILE").and_then(|f| std::fs::read(f).ok()),
        });
        NotifySettings {
            smtp,
            retry_base: env_secs("SIMTRACK_NOTIFY_RETRY_SECS", 10.0),
            retry_max: env_secs("SIMTRACK_NOTIFY_RETRY_MAX_SECS", 3600.0),
            attempts: env_num("SIMTRACK_NOTIFY_ATTEMPTS")
                .filter(|n| *n >= 1)
                .unwrap_or(12),
            allow_hosts: env("SIMTRACK_NOTIFY_ALLOW_HOSTS")
                .and_then(|v| match HostPolicy::parse(&v) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        eprintln!("simtrack: SIMTRACK_NOTIFY_ALLOW_HOSTS ignored: {e}");
                        None
                    }
                })
                .unwrap_or_default(),
        }
    }
}

fn env_num<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Timeouts and caps of the connection loop ([`crate::http::serve`]).
#[derive(Debug, Clone)]
pub struct NetLimits {
    /// A request's header must arrive whole within this time of its first
    /// byte (or of the previous response, on a kept-alive connection).
    pub header_timeout: Duration,
    /// A request body (or a response the client does not read) that makes
    /// no progress for this long is cut: 408 for a body.
    pub body_timeout: Duration,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// After SIGTERM/SIGINT, requests in flight get this long; then every
    /// remaining connection is dropped and the server exits.
    pub shutdown_timeout: Duration,
    /// Most open client connections; `0` derives it from the open-file
    /// limit. At the cap, the connection idle longest (or stalled in its
    /// header or body) is dropped for the new one.
    pub max_connections: usize,
}

fn env_secs(name: &str, default: f64) -> Duration {
    let v = std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(default);
    Duration::from_secs_f64(v)
}

impl NetLimits {
    /// The defaults, overridden by the `SIMTRACK_*` environment variables.
    pub fn from_env() -> NetLimits {
        NetLimits {
            header_timeout: env_secs("SIMTRACK_HEADER_TIMEOUT_SECS", 10.0),
            body_timeout: env_secs("SIMTRACK_BODY_TIMEOUT_SECS", 30.0),
            idle_timeout: env_secs("SIMTRACK_IDLE_TIMEOUT_SECS", 60.0),
            shutdown_timeout: env_secs("SIMTRACK_SHUTDOWN_TIMEOUT_SECS", 10.0),
            max_connections: std::env::var("SIMTRACK_MAX_CONNECTIONS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
        }
    }
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
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        ServerConfig {
            data_dir,
            database: env("SIMTRACK_DATABASE_URL"),
            blobs: env("SIMTRACK_BLOBS"),
            listen: listen
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default address")),
            public_url: std::env::var("SIMTRACK_PUBLIC_URL")
                .ok()
                .filter(|u| !u.is_empty()),
            max_body: 64 << 20,
            max_upload: 8 << 30,
            lost_check: Duration::from_secs(5),
            net: NetLimits::from_env(),
            token_cache: std::env::var("SIMTRACK_TOKEN_CACHE_SECS")
                .ok()
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map_or(DEFAULT_TOKEN_CACHE, |v| {
                    Duration::from_secs_f64(v.min(3600.0))
                }),
            max_read_points: env_num("SIMTRACK_MAX_READ_POINTS")
                .filter(|n| *n >= 2)
                .unwrap_or(DEFAULT_MAX_READ_POINTS),
            max_metric_names: env_num("SIMTRACK_MAX_METRIC_NAMES")
                .filter(|n| *n >= 1)
                .unwrap_or(DEFAULT_MAX_METRIC_NAMES),
            default_visibility_group: env("SIMTRACK_DEFAULT_VISIBILITY")
                .is_some_and(|v| v == "group"),
            trusted_proxies: env("SIMTRACK_TRUSTED_PROXIES")
                .map(|v| v.split(',').filter_map(|p| p.trim().parse().ok()).collect())
                .unwrap_or_default(),
            notify: NotifySettings::from_env(),
            blobs_stream_through: std::env::var("SIMTRACK_BLOBS_STREAM_THROUGH")
                .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes")),
            blobs_url_secs: env_num("SIMTRACK_BLOBS_URL_SECS")
                .filter(|n| *n >= 1)
                .unwrap_or(DEFAULT_BLOBS_URL_SECS),
        }
    }
}

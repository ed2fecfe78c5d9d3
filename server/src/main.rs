//! `simtrack`: the tracking server, API tokens, and offline-run upload.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use simtrack_server::config::{ServerConfig, default_data_dir};

mod sync;
mod wrap;

#[derive(Parser, Debug)]
#[command(
    name = "simtrack",
    version,
    about = "Simulation tracking: server, tokens, offline sync, wrapping programs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the tracking server (Simvue-compatible REST API).
    Server {
        /// Data directory [default: $SIMTRACK_DATA, $XDG_DATA_HOME/simtrack, ~/.local/share/simtrack]
        #[arg(long)]
        data: Option<PathBuf>,
        /// PostgreSQL database for state and metrics, postgres://USER:PASS@HOST:PORT/DB
        /// [default: $SIMTRACK_DATABASE_URL; none: SQLite in the data directory].
        #[arg(long)]
        database: Option<String>,
        /// Artifact store with --database: a directory shared by the replicas
        /// [default: $SIMTRACK_BLOBS, else blobs/ in the data directory].
        #[arg(long)]
        blobs: Option<String>,
        /// Address to listen on [default: $SIMTRACK_LISTEN or 127.0.0.1:8800]; port 0 picks a free port.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Base URL for artifact links when clients reach the server under another name.
        #[arg(long)]
        public_url: Option<String>,
        /// Largest API request body in bytes.
        #[arg(long, default_value_t = 64 << 20)]
        max_body: usize,
        /// Largest artifact in bytes.
        #[arg(long, default_value_t = 8 << 30)]
        max_upload: u64,
        /// Seconds between checks for runs whose heartbeats stopped.
        #[arg(long, default_value_t = 5.0)]
        lost_check_secs: f64,
        /// Seconds a verified token is trusted before it is looked up again, so a revoked
        /// token stops working within this time [env SIMTRACK_TOKEN_CACHE_SECS, default 2].
        #[arg(long)]
        token_cache_secs: Option<f64>,
        /// Most points per series of a downsampled (max_points) or aggregated metrics read; a
        /// larger max_points is lowered to it [env SIMTRACK_MAX_READ_POINTS, default 100000].
        #[arg(long)]
        max_read_points: Option<usize>,
        /// Most metric names per run; a batch adding a name beyond it is refused with 422
        /// [env SIMTRACK_MAX_METRIC_NAMES, default 10000].
        #[arg(long)]
        max_metric_names: Option<u64>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Check a server data directory or a library spool and say what to do.
    Doctor {
        /// A server data directory [default: as `server`].
        #[arg(long, conflicts_with = "spool")]
        data: Option<PathBuf>,
        /// A library offline/spool directory (the one holding `runs/`).
        #[arg(long)]
        spool: Option<PathBuf>,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Copy an embedded deployment (data directory) into PostgreSQL (and S3);
    /// resumable, idempotent, verified by counts.
    Migrate {
        /// The embedded data directory to copy from (stop its server first).
        #[arg(long)]
        data: Option<PathBuf>,
        /// The PostgreSQL database to copy into, postgres://USER:PASS@HOST:PORT/DB.
        #[arg(long)]
        to_database: String,
        /// Where artifact bytes go: s3://BUCKET[/PREFIX] or a directory
        /// [default: blobs/ in the data directory, left where they are].
        #[arg(long)]
        to_blobs: Option<String>,
    },
    /// Run a program as a tracked run: its output as events and metrics, its exit as the status.
    Run(wrap::RunArgs),
    /// Upload offline (spooled) runs to the configured server.
    Sync {
        /// Offline cache directory [default: the library's configuration].
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Only this run (its id); waits briefly for a process still holding it.
        #[arg(long, value_name = "ID")]
        run: Option<String>,
    },
}

/// Connection limits of `simtrack server` (flags over `SIMTRACK_*` environment).
#[derive(clap::Args, Debug)]
struct NetArgs {
    /// Seconds a request header may take to arrive [env SIMTRACK_HEADER_TIMEOUT_SECS, default 10].
    #[arg(long)]
    header_timeout_secs: Option<f64>,
    /// Seconds a request body (or an unread response) may stall before it is cut (408)
    /// [env SIMTRACK_BODY_TIMEOUT_SECS, default 30].
    #[arg(long)]
    body_timeout_secs: Option<f64>,
    /// Seconds an idle kept-alive connection stays open [env SIMTRACK_IDLE_TIMEOUT_SECS, default 60].
    #[arg(long)]
    idle_timeout_secs: Option<f64>,
    /// Seconds requests in flight get after SIGTERM/SIGINT before the server drops them and exits
    /// [env SIMTRACK_SHUTDOWN_TIMEOUT_SECS, default 10].
    #[arg(long)]
    shutdown_timeout_secs: Option<f64>,
    /// Most open connections; 0 derives it from the open-file limit [env SIMTRACK_MAX_CONNECTIONS].
    #[arg(long)]
    max_connections: Option<usize>,
}

impl NetArgs {
    fn apply(&self, net: &mut simtrack_server::config::NetLimits) {
        let secs = |v: Option<f64>, d: &mut std::time::Duration| {
            if let Some(v) = v.filter(|v| v.is_finite() && *v > 0.0) {
                *d = std::time::Duration::from_secs_f64(v);
            }
        };
        secs(self.header_timeout_secs, &mut net.header_timeout);
        secs(self.body_timeout_secs, &mut net.body_timeout);
        secs(self.idle_timeout_secs, &mut net.idle_timeout);
        secs(self.shutdown_timeout_secs, &mut net.shutdown_timeout);
        if let Some(n) = self.max_connections {
            net.max_connections = n;
        }
    }
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create a token and print it (only the token, on stdout).
    Create {
        /// Data directory of the server.
        #[arg(long)]
        data: Option<PathBuf>,
        /// The server's PostgreSQL database instead [default: $SIMTRACK_DATABASE_URL].
        #[arg(long, conflicts_with = "data")]
        database: Option<String>,
        /// Accepted so `token create` takes the server's storage arguments
        /// as they are; tokens never touch the artifact store.
        #[arg(long, hide = true)]
        blobs: Option<String>,
        /// A name for the token (shown as the runs' user).
        #[arg(long, default_value = "default")]
        name: String,
        /// Days until the token expires.
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// List tokens: id, name, created, expires (never the tokens themselves).
    List {
        /// Data directory of the server.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Only tokens with this name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Delete tokens. Running servers stop accepting them within their token cache
    /// lifetime (--token-cache-secs, 2 s by default).
    Revoke {
        /// Data directory of the server.
        #[arg(long)]
        data: Option<PathBuf>,
        /// The token's id (see `token list`).
        #[arg(long, required_unless_present = "name", conflicts_with = "name")]
        id: Option<String>,
        /// Every token with this name.
        #[arg(long)]
        name: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Server {
            data,
            database,
            blobs,
            listen,
            public_url,
            max_body,
            max_upload,
            lost_check_secs,
            token_cache_secs,
            max_read_points,
            max_metric_names,
            net,
        } => {
            let mut cfg = ServerConfig::new(data.unwrap_or_else(default_data_dir));
            if database.is_some() {
                cfg.database = database;
            }
            if blobs.is_some() {
                cfg.blobs = blobs;
            }
            if let Some(l) = listen {
                cfg.listen = l;
            }
            if public_url.is_some() {
                cfg.public_url = public_url;
            }
            cfg.max_body = max_body;
            cfg.max_upload = max_upload;
            cfg.lost_check = std::time::Duration::from_secs_f64(lost_check_secs.max(0.05));
            if let Some(n) = max_read_points.filter(|n| *n >= 2) {
                cfg.max_read_points = n;
            }
            if let Some(n) = max_metric_names.filter(|n| *n >= 1) {
                cfg.max_metric_names = n;
            }
            if let Some(s) = token_cache_secs.filter(|s| s.is_finite() && *s >= 0.0) {
                cfg.token_cache = std::time::Duration::from_secs_f64(s.min(3600.0));
            }
            net.apply(&mut cfg.net);
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("simtrack server: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = rt.block_on(simtrack_server::server::run(cfg));
            // Handlers still running on blocking threads after the shutdown
            // deadline must not keep the process alive.
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("simtrack server: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    data,
                    database,
                    blobs: _,
                    name,
                    days,
                },
        } => {
            simtrack_server::private::restrict_umask();
            let database = database.or_else(|| {
                std::env::var("SIMTRACK_DATABASE_URL")
                    .ok()
                    .filter(|u| !u.is_empty() && data.is_none())
            });
            let result = match database {
                Some(url) => token_in_database(&url, &name, days),
                None => {
                    let dir = data.unwrap_or_else(default_data_dir);
                    simtrack_server::storage::open_embedded_state(&dir).and_then(|s| {
                        simtrack_server::domain::auth::create_token(&*s, &name, days)
                            .map_err(|e| e.detail)
                    })
                }
            };
            match result {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("simtrack token create: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Token {
            command: TokenCommand::List { data, name },
        } => {
            let dir = data.unwrap_or_else(default_data_dir);
            simtrack_server::private::restrict_umask();
            let result = simtrack_server::storage::open_embedded_state(&dir).and_then(|s| {
                simtrack_server::domain::auth::list_tokens(&*s, name.as_deref())
                    .map_err(|e| e.detail)
            });
            match result {
                Ok(rows) => {
                    println!("id\tname\tcreated\texpires");
                    for t in rows {
                        println!(
                            "{}\t{}\t{}\t{}",
                            t.id,
                            t.name,
                            simtrack_server::util::fmt_ts(t.created * 1_000_000),
                            simtrack_server::util::fmt_ts(t.exp * 1_000_000)
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("simtrack token list: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Token {
            command: TokenCommand::Revoke { data, id, name },
        } => {
            let dir = data.unwrap_or_else(default_data_dir);
            simtrack_server::private::restrict_umask();
            let result = simtrack_server::storage::open_embedded_state(&dir).and_then(|s| {
                use simtrack_server::domain::auth;
                let ids: Vec<String> = match (&id, &name) {
                    (Some(id), _) => vec![id.clone()],
                    (None, Some(n)) => auth::list_tokens(&*s, Some(n))
                        .map_err(|e| e.detail)?
                        .into_iter()
                        .map(|t| t.id)
                        .collect(),
                    (None, None) => Vec::new(),
                };
                let mut n = 0;
                for i in &ids {
                    n += usize::from(auth::revoke_token(&*s, i, None).map_err(|e| e.detail)?);
                }
                Ok(n)
            });
            match result {
                Ok(0) => {
                    eprintln!("simtrack token revoke: no such token");
                    ExitCode::FAILURE
                }
                Ok(n) => {
                    eprintln!("simtrack token revoke: {n} token(s) deleted");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("simtrack token revoke: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Sync { cache, run } => sync::run(cache, run),
        Command::Migrate {
            data,
            to_database,
            to_blobs,
        } => {
            let dir = data.unwrap_or_else(default_data_dir);
            match migrate(&dir, &to_database, to_blobs) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("simtrack migrate: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run(args) => wrap::main(args),
        Command::Doctor { data, spool } => match spool {
            Some(dir) => simtrack_server::doctor::spool(&dir),
            None => simtrack_server::doctor::data(&data.unwrap_or_else(default_data_dir)),
        },
    }
}

/// `simtrack token create --database URL`: the store needs a runtime for
/// its driver; the token is made on this (non-runtime) thread.
fn token_in_database(url: &str, name: &str, days: u32) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let store = rt.block_on(simtrack_server::storage::postgres::PgStore::open(url))?;
    let token =
        simtrack_server::domain::auth::create_token(&store, name, days).map_err(|e| e.detail);
    simtrack_server::storage::StateStore::close(&store);
    token
}

/// `simtrack migrate`: opens both sides and copies.
fn migrate(dir: &std::path::Path, database: &str, blobs: Option<String>) -> Result<(), String> {
    use simtrack_server::storage;
    let (tokens, settings) = storage::sqlite::export::tokens_and_settings(dir)?;
    let from = simtrack_server::migrate::open_source(dir)?;
    let blobs = blobs.unwrap_or_else(|| dir.join("blobs").to_string_lossy().into_owned());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async {
        let (to, _) = storage::open_scale_out(database, &blobs).await?;
        simtrack_server::migrate::run(&from, tokens, settings, &to).await
    })
}

//! `simtrack`: the tracking server, API tokens, and offline-run upload.

use std::path::PathBuf;
use std::process::ExitCode;

use admin_store::{Open, StoreArgs, with_store};
use clap::{Parser, Subcommand};
use simtrack_server::config::{ServerConfig, default_data_dir};

mod admin_store;
mod notify_cli;
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

// Parsed once at start and matched at once: the size of the `Server`
// variant (its many flags) costs nothing worth an indirection.
#[allow(clippy::large_enum_variant)]
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
        /// Base URL for artifact links and the run links in notifications, when clients reach the
        /// server under another name [env SIMTRACK_PUBLIC_URL].
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
        /// Seconds a verified token is trusted before it is looked up again (revocations and
        /// disabled users are noticed at once regardless) [env SIMTRACK_TOKEN_CACHE_SECS, default 2].
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
        /// Who sees a run created without a `visibility`: its owner only, or its owner's
        /// group too [env SIMTRACK_DEFAULT_VISIBILITY, default private].
        #[arg(long, value_parser = ["private", "group"])]
        default_visibility: Option<String>,
        /// A reverse proxy whose X-Forwarded-For / X-Forwarded-Proto are believed (repeatable)
        /// [env SIMTRACK_TRUSTED_PROXIES, comma-separated].
        #[arg(long)]
        trusted_proxy: Vec<std::net::IpAddr>,
        /// With --blobs s3://...: artifact bytes pass through the server instead of going
        /// straight between clients and the object store through presigned URLs (for
        /// compute nodes that cannot reach the store) [env SIMTRACK_BLOBS_STREAM_THROUGH=1].
        #[arg(long)]
        blobs_stream_through: bool,
        /// Seconds a presigned object-store URL (upload form, download redirect) stays
        /// valid [env SIMTRACK_BLOBS_URL_SECS, default 900].
        #[arg(long)]
        blobs_url_secs: Option<u32>,
        #[command(flatten)]
        net: NetArgs,
        #[command(flatten)]
        smtp: notify_cli::SmtpArgs,
    },
    /// Check a server data directory or a library spool and say what to do.
    Doctor {
        /// A server data directory [default: as `server`].
        #[arg(long, conflicts_with = "spool")]
        data: Option<PathBuf>,
        /// A library offline/spool directory (the one holding `runs/`).
        #[arg(long, conflicts_with = "database")]
        spool: Option<PathBuf>,
        /// The scale-out database instead, postgres://USER:PASS@HOST:PORT/DB
        /// [default: $SIMTRACK_DATABASE_URL when neither --data nor --spool is given].
        #[arg(long, conflicts_with = "data")]
        database: Option<String>,
        /// With --database: the artifact store to check, s3://BUCKET[/PREFIX] or a
        /// directory [default: $SIMTRACK_BLOBS].
        #[arg(long, conflicts_with_all = ["data", "spool"])]
        blobs: Option<String>,
    },
    /// Notification channels of users: email addresses and webhooks.
    Notify {
        #[command(subcommand)]
        command: notify_cli::NotifyCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage users and groups.
    User {
        #[command(subcommand)]
        command: UserCommand,
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
        #[command(flatten)]
        store: StoreArgs,
        /// The user the token belongs to (created if it does not exist; shown as the runs' user).
        #[arg(long, conflicts_with = "user")]
        name: Option<String>,
        /// The (existing) user the token belongs to.
        #[arg(long)]
        user: Option<String>,
        /// What the token is for (shown in token lists).
        #[arg(long, default_value = "")]
        label: String,
        /// Days until the token expires.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// The token reads only: every write answers 403.
        #[arg(long)]
        read_only: bool,
    },
    /// List tokens: id, user, label, created, last used, expires, scope (never the tokens themselves).
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Only the tokens of this user.
        #[arg(long, alias = "name")]
        user: Option<String>,
    },
    /// Delete tokens; every server sharing the store stops accepting them at once.
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        /// The token's id (see `token list`).
        #[arg(conflicts_with_all = ["id", "name"])]
        token: Option<String>,
        /// The token's id.
        #[arg(long, conflicts_with = "name")]
        id: Option<String>,
        /// Every token of this user.
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Add a user, or change the given fields of an existing one.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// The user's name (shown as the runs' user).
        name: String,
        /// Where notifications go.
        #[arg(long)]
        email: Option<String>,
        /// The user's group (Simvue's tenant): runs shared with the group are visible to it.
        #[arg(long)]
        group: Option<String>,
        /// Make the user an administrator (sees and changes everything).
        #[arg(long, conflicts_with = "no_admin")]
        admin: bool,
        /// Make the user an ordinary user.
        #[arg(long)]
        no_admin: bool,
    },
    /// List users.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable a user: its tokens and sessions stop working at once.
    Disable {
        #[command(flatten)]
        store: StoreArgs,
        name: String,
    },
    /// Enable a disabled user again.
    Enable {
        #[command(flatten)]
        store: StoreArgs,
        name: String,
    },
    /// Set a user's sign-in password, read from the terminal (or one line of stdin).
    Passwd {
        #[command(flatten)]
        store: StoreArgs,
        name: String,
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
            default_visibility,
            trusted_proxy,
            blobs_stream_through,
            blobs_url_secs,
            net,
            smtp,
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
            if let Some(v) = default_visibility {
                cfg.default_visibility_group = v == "group";
            }
            if !trusted_proxy.is_empty() {
                cfg.trusted_proxies = trusted_proxy;
            }
            if blobs_stream_through {
                cfg.blobs_stream_through = true;
            }
            if let Some(s) = blobs_url_secs.filter(|s| *s >= 1) {
                cfg.blobs_url_secs = s;
            }
            net.apply(&mut cfg.net);
            if let Err(e) = smtp.apply(&mut cfg.notify) {
                eprintln!("simtrack server: {e}");
                return ExitCode::FAILURE;
            }
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
        Command::Token { command } => token_command(command),
        Command::User { command } => user_command(command),
        Command::Notify { command } => notify_cli::main(command),
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
        Command::Doctor {
            data,
            spool,
            database,
            blobs,
        } => {
            let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            let database = database.or_else(|| {
                (data.is_none() && spool.is_none())
                    .then(|| env("SIMTRACK_DATABASE_URL"))
                    .flatten()
            });
            match (spool, database) {
                (Some(dir), _) => simtrack_server::doctor::spool(&dir),
                (None, Some(url)) => simtrack_server::doctor::scale_out(
                    &url,
                    blobs.or_else(|| env("SIMTRACK_BLOBS")).as_deref(),
                ),
                (None, None) => {
                    simtrack_server::doctor::data(&data.unwrap_or_else(default_data_dir))
                }
            }
        }
    }
}

fn finish(what: &str, r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("simtrack {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn token_command(c: TokenCommand) -> ExitCode {
    use simtrack_server::domain::auth::{self, Identity, TokenSpec};
    let fmt = |s: i64| simtrack_server::util::fmt_ts(s.saturating_mul(1_000_000));
    match c {
        TokenCommand::Create {
            store,
            name,
            user,
            label,
            days,
            read_only,
        } => finish(
            "token create",
            with_store(&store, Open::MayCreate, "token create", |s| {
                let user = match (user, name) {
                    (Some(u), _) => u,
                    (None, n) => {
                        let n = n.unwrap_or_else(|| "default".into());
                        simtrack_server::domain::users::ensure(s, &n).map_err(|e| e.detail)?;
                        n
                    }
                };
                let spec = TokenSpec {
                    label,
                    days,
                    read_only,
                };
                let (token, _) = auth::create_token_for(s, &user, &spec).map_err(|e| e.detail)?;
                println!("{token}");
                Ok(())
            }),
        ),
        TokenCommand::List { store, user } => finish(
            "token list",
            with_store(&store, Open::Existing, "token list", |s| {
                let rows = auth::list_tokens(s, user.as_deref()).map_err(|e| e.detail)?;
                println!("id\tuser\tlabel\tcreated\tlast_used\texpires\tscope");
                for t in rows {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        t.id,
                        t.name,
                        t.label,
                        fmt(t.created),
                        t.last_used.map_or_else(|| "-".into(), fmt),
                        fmt(t.exp),
                        auth::scope(&t)
                    );
                }
                Ok(())
            }),
        ),
        TokenCommand::Revoke {
            store,
            token,
            id,
            name,
        } => finish(
            "token revoke",
            with_store(&store, Open::Existing, "token revoke", |s| {
                let ids: Vec<String> = match (token.or(id), &name) {
                    (Some(id), _) => vec![id],
                    (None, Some(n)) => auth::list_tokens(s, Some(n))
                        .map_err(|e| e.detail)?
                        .into_iter()
                        .map(|t| t.id)
                        .collect(),
                    (None, None) => return Err("give a token id (see `token list`)".into()),
                };
                let mut n = 0;
                for i in &ids {
                    n += usize::from(
                        auth::revoke_token(s, i, &Identity::console()).map_err(|e| e.detail)?,
                    );
                }
                if n == 0 {
                    return Err("no such token".into());
                }
                eprintln!("simtrack token revoke: {n} token(s) revoked");
                Ok(())
            }),
        ),
    }
}

/// A password from the terminal (echo off) or one line of stdin.
fn read_password() -> Result<String, String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let mut saved: Option<libc::termios> = None;
    if tty {
        eprint!("password: ");
        let _ = std::io::stderr().flush();
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a zeroed termios that
        // tcgetattr fills; the old settings are restored below.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) == 0 {
                saved = Some(t);
                t.c_lflag &= !libc::ECHO;
                libc::tcsetattr(0, libc::TCSANOW, &t);
            }
        }
    }
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    if let Some(t) = saved {
        // SAFETY: restores the settings read above.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &t);
        }
        eprintln!();
    }
    r.map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

fn exists(s: &dyn simtrack_server::storage::StateStore, name: &str) -> Result<(), String> {
    let found = simtrack_server::domain::users::list(s)
        .map_err(|e| e.detail)?
        .iter()
        .any(|u| u.name == name);
    if found {
        Ok(())
    } else {
        Err(format!("no user '{name}'"))
    }
}

fn user_command(c: UserCommand) -> ExitCode {
    use simtrack_server::domain::auth::Identity;
    use simtrack_server::domain::users::{self, UserChange};
    let change = |s: &dyn simtrack_server::storage::StateStore, name: &str, c: UserChange| {
        users::put(s, &Identity::console(), name, &c)
            .map(|_| ())
            .map_err(|e| e.detail)
    };
    match c {
        UserCommand::Add {
            store,
            name,
            email,
            group,
            admin,
            no_admin,
        } => finish(
            "user add",
            with_store(&store, Open::MayCreate, "user add", |s| {
                let c = UserChange {
                    email,
                    group,
                    admin: if admin {
                        Some(true)
                    } else if no_admin {
                        Some(false)
                    } else {
                        None
                    },
                    disabled: None,
                };
                change(s, &name, c)
            }),
        ),
        UserCommand::List { store } => finish(
            "user list",
            with_store(&store, Open::Existing, "user list", |s| {
                println!("name\tgroup\temail\tadmin\tdisabled\tpassword");
                for u in users::list(s).map_err(|e| e.detail)? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        u.name,
                        u.group.as_deref().unwrap_or("-"),
                        u.email.as_deref().unwrap_or("-"),
                        if u.admin { "admin" } else { "-" },
                        if u.disabled { "disabled" } else { "-" },
                        if u.password.is_some() { "set" } else { "-" },
                    );
                }
                Ok(())
            }),
        ),
        UserCommand::Disable { store, name } => finish(
            "user disable",
            with_store(&store, Open::Existing, "user disable", |s| {
                exists(s, &name)?;
                change(
                    s,
                    &name,
                    UserChange {
                        disabled: Some(true),
                        ..UserChange::default()
                    },
                )
            }),
        ),
        UserCommand::Enable { store, name } => finish(
            "user enable",
            with_store(&store, Open::Existing, "user enable", |s| {
                exists(s, &name)?;
                change(
                    s,
                    &name,
                    UserChange {
                        disabled: Some(false),
                        ..UserChange::default()
                    },
                )
            }),
        ),
        UserCommand::Passwd { store, name } => finish(
            "user passwd",
            with_store(&store, Open::Existing, "user passwd", |s| {
                let p = read_password()?;
                users::set_password(s, &Identity::console(), &name, &p).map_err(|e| e.detail)
            }),
        ),
    }
}

/// `simtrack migrate`: opens both sides and copies.
fn migrate(dir: &std::path::Path, database: &str, blobs: Option<String>) -> Result<(), String> {
    use simtrack_server::storage;
    // Opening the source first upgrades its schema, so the export below
    // reads every column of the tokens.
    let from = simtrack_server::migrate::open_source(dir)?;
    let (tokens, settings) = storage::sqlite::export::tokens_and_settings(dir)?;
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

//! Where the administration commands (`simtrack token`, `user`, `notify`)
//! find the server's state: a data directory, or the server's PostgreSQL
//! database.
//!
//! A data directory that holds no `simtrack.db` is not opened as an empty
//! one: a mistyped `--data` would list no tokens and no users, and a change
//! made there would never reach the server. Only the commands that set a
//! deployment up before its first start (`token create`, `user add`) create
//! one, and they say so.

use std::path::{Path, PathBuf};

use simtrack_server::config::default_data_dir;
use simtrack_server::storage::StateStore;

/// The storage arguments of the administration commands.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Data directory of the server.
    #[arg(long)]
    data: Option<PathBuf>,
    /// The server's PostgreSQL database instead [default: $SIMTRACK_DATABASE_URL].
    #[arg(long, conflicts_with = "data")]
    database: Option<String>,
    /// Accepted so these commands take the server's storage arguments as
    /// they are; users, tokens and channels never touch the artifact store.
    #[arg(long, hide = true)]
    blobs: Option<String>,
}

/// Whether a command may start a new data directory.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Open {
    /// Only one that exists (holds `simtrack.db`).
    Existing,
    /// A new one if there is none, with a note on stderr naming it.
    MayCreate,
}

/// The file that makes a directory a data directory.
fn database_file(dir: &Path) -> PathBuf {
    dir.join("simtrack.db")
}

/// Runs `f` on the state store of `args` (a data directory, or a
/// PostgreSQL database with a runtime for its driver; `f` runs on this
/// non-runtime thread). `what` names the command in the note a new data
/// directory gets.
pub fn with_store<T>(
    args: &StoreArgs,
    open: Open,
    what: &str,
    f: impl FnOnce(&dyn StateStore) -> Result<T, String>,
) -> Result<T, String> {
    simtrack_server::private::restrict_umask();
    let database = args.database.clone().or_else(|| {
        std::env::var("SIMTRACK_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty() && args.data.is_none())
    });
    if let Some(url) = database {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
        let store = rt.block_on(simtrack_server::storage::postgres::PgStore::open(&url))?;
        let r = f(&store);
        StateStore::close(&store);
        return r;
    }
    let dir = args.data.clone().unwrap_or_else(default_data_dir);
    let new = !database_file(&dir).exists();
    if new && open == Open::Existing {
        return Err(format!(
            "{} is not a simtrack data directory (no simtrack.db): pass the directory \
             given to `simtrack server --data`, or --database for a PostgreSQL deployment",
            dir.display()
        ));
    }
    let store = simtrack_server::storage::open_embedded_state(&dir)?;
    if new {
        eprintln!(
            "simtrack {what}: started a new data directory {}; the server must be given the same \
             (`simtrack server --data {}`)",
            dir.display(),
            dir.display()
        );
    }
    f(&*store)
}

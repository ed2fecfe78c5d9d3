//! `simtrack server`: open the store, bind, announce the URL, serve until
//! SIGINT/SIGTERM, then finish in-flight requests (within the shutdown
//! deadline, see [`crate::http::serve`]), checkpoint and release the lock.
//!
//! Every mutation is committed before it is answered, so a graceful stop
//! (or a crash) never loses anything a client saw acknowledged.

use std::sync::Arc;

use crate::config::ServerConfig;
use crate::domain::auth::Auth;
use crate::http::{AppState, router};

/// Runs the server; returns when it has shut down.
pub async fn run(cfg: ServerConfig) -> Result<(), String> {
    crate::private::restrict_umask();
    if cfg.data_dir.exists() {
        crate::private::warn_if_loose(&cfg.data_dir);
    }
    let (backend, lock, leader) = match &cfg.database {
        // Scale-out: any number of replicas share the database, so there
        // is no directory lock; writes are serialised in the database.
        Some(url) => {
            let blobs = cfg
                .blobs
                .clone()
                .unwrap_or_else(|| cfg.data_dir.join("blobs").to_string_lossy().into_owned());
            let (backend, pg) = crate::storage::open_scale_out(url, &blobs).await?;
            (backend, None, Some(pg))
        }
        None => {
            let backend = crate::storage::open_embedded(&cfg.data_dir)?;
            // One server per data directory: a second one would race the
            // first on lost-run detection. The kernel drops the lock if we die.
            let lock_path = cfg.data_dir.join("server.lock");
            let lock = std::fs::File::create(&lock_path)
                .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
            lock.try_lock().map_err(|_| {
                format!(
                    "another simtrack server is using {}",
                    cfg.data_dir.display()
                )
            })?;
            (backend, Some(lock), None)
        }
    };
    let store = backend.state.clone();
    let auth = Arc::new(Auth::with_cache_ttl(&*store, cfg.token_cache).map_err(|e| e.detail)?);
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut cfg = cfg;
    cfg.listen = addr;
    let cfg = Arc::new(cfg);
    match leader {
        // Several replicas: background duties on the leader only.
        Some(pg) => crate::replica::spawn_leader_duties(pg, store.clone(), cfg.lost_check),
        None => crate::domain::lifecycle::spawn_lost_detector(store.clone(), cfg.lost_check),
    }
    // Every replica delivers notifications; claims keep them from sending
    // one delivery twice.
    crate::notify::Worker {
        settings: cfg.notify.clone(),
        public_url: cfg
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}")),
    }
    .spawn(store.clone());
    let app = router(AppState {
        backend: backend.clone(),
        auth,
        cfg: cfg.clone(),
    })
    .merge(crate::replica::routes(backend));
    let storage = match &cfg.database {
        Some(url) => format!("database: {}", crate::storage::postgres::redact(url)),
        None => format!("data: {}", cfg.data_dir.display()),
    };
    println!("simtrack server listening on http://{addr} ({storage})");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let app = app.layer(axum::middleware::from_fn(
        crate::http::secure_headers::layer,
    ));
    crate::http::serve::run(listener, app, cfg.net.clone(), shutdown_signal()).await;
    store.close();
    drop(lock);
    eprintln!("simtrack server: stopped cleanly");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    eprintln!("simtrack server: shutting down");
}

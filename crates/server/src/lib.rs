//! The `tessera` server as a library: configuration layering, store selection, and the serve
//! loop with its background jobs. The binary (`main.rs`) adds the CLI; tests use this crate to
//! run the real server in-process.
//!
//! Start at [`build_app`] and [`serve`].

pub mod config;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tessera_core::{Clock, KEY_RELOAD_INTERVAL, Store, Tessera};
use tessera_http::{AppState, HttpConfig};
use tokio::net::TcpListener;

pub use config::{Config, SettingsArgs};

/// How often the cleanup job deletes long-ended sessions.
const CLEANUP_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Opens (and migrates) the store the URL names: `sqlite:` or `postgres://`.
pub async fn open_store(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        let store = tessera_store_sqlite::SqliteStore::connect(url)
            .await
            .with_context(|| format!("cannot open the SQLite database {url}"))?;
        Ok(Arc::new(store))
    } else {
        // The URL may carry a password: it is not repeated in the error.
        let store = tessera_store_postgres::PostgresStore::connect(url)
            .await
            .context("cannot open the PostgreSQL database")?;
        Ok(Arc::new(store))
    }
}

/// A ready-to-serve application.
pub struct App {
    /// The whole HTTP API.
    pub router: Router,
    /// The session service behind it.
    pub tessera: Arc<Tessera>,
    /// The issuer it signs as.
    pub issuer: String,
}

/// Opens the store and the service and builds the router for a server bound to `bound`.
pub async fn build_app(
    config: &Config,
    bound: SocketAddr,
    metrics: Option<PrometheusHandle>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<App> {
    let store = open_store(&config.database_url).await?;
    let issuer = config.issuer_for(bound);
    let settings = config.settings_for(&issuer);
    let tessera = Arc::new(
        Tessera::open(store, settings, config.kek.clone(), clock)
            .await
            .context("cannot start the session service")?,
    );
    let http = HttpConfig {
        allowed_origins: config.origins_for(&issuer),
        cookie_secure: config.cookie_secure,
        cookie_path: "/auth".into(),
        trusted_proxies: config.trusted_proxies.clone(),
        metrics,
        revocations_token: config.revocations_token.clone(),
        admin_token: config.admin_token.clone(),
        hsts_max_age: config.hsts_for(&issuer),
    };
    // Request spans (method, path, status, latency) at debug level; headers, which carry
    // tokens, are not recorded.
    let router = tessera_http::router(AppState::new(tessera.clone(), http))
        .layer(tower_http::trace::TraceLayer::new_for_http());
    Ok(App {
        router,
        tessera,
        issuer,
    })
}

/// Starts the background jobs: key reload (so rotations by other instances or the CLI are
/// picked up) and the cleanup of ended sessions. They stop when the returned handle is
/// aborted or the runtime ends.
pub fn spawn_background_jobs(
    tessera: Arc<Tessera>,
    retention: Duration,
) -> tokio::task::JoinHandle<()> {
    // Two independent loops, so a long cleanup (a big table, a slow database: the store allows
    // it minutes) never delays a key reload, which must come every few seconds.
    let reload = {
        let tessera = tessera.clone();
        async move {
            let mut tick = tokio::time::interval(KEY_RELOAD_INTERVAL);
            loop {
                tick.tick().await;
                if let Err(e) = tessera.reload_keys().await {
                    tracing::warn!(error = %e, "reloading keys failed; keeping the current ones");
                }
            }
        }
    };
    let cleanup = async move {
        let mut tick = tokio::time::interval(CLEANUP_INTERVAL);
        loop {
            tick.tick().await;
            match tessera.purge_ended_sessions(retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "deleted ended sessions"),
                Err(e) => tracing::warn!(error = %e, "session cleanup failed; will retry"),
            }
        }
    };
    tokio::spawn(async move {
        tokio::join!(reload, cleanup);
    })
}

/// Serves `router` on `listener` until `shutdown` resolves, passing peer addresses to handlers.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("the HTTP server failed")
}

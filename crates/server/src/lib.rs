//! The `tessera` server as a library: configuration layering, store selection, and the serve
//! loop with its background jobs. The binary (`main.rs`) adds the CLI; tests use this crate to
//! run the real server in-process.
//!
//! Start at [`build_app`] and [`serve`].

pub mod config;
pub mod telemetry;
pub mod webhooks;

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
    /// The whole HTTP API (with `/metrics`, unless `TESSERA_METRICS_BIND` is set).
    pub router: Router,
    /// `/metrics` alone, to serve on `TESSERA_METRICS_BIND` when it is set.
    pub metrics_router: Option<Router>,
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
        // `/metrics` is the server's own (below): it adds the gauges read at scrape time.
        metrics: None,
        revocations_token: config.revocations_token.clone(),
        admin_token: config.admin_token.clone(),
        hsts_max_age: config.hsts_for(&issuer),
    };
    // Request spans (method, path, status, latency) at debug level; headers, which carry
    // tokens, are not recorded.
    let mut router = tessera_http::router(AppState::new(tessera.clone(), http));
    let mut metrics_router = None;
    if let Some(handle) = metrics {
        match config.metrics_bind {
            None => router = router.merge(telemetry::metrics_router(handle, tessera.clone())),
            Some(_) => metrics_router = Some(telemetry::private_router(handle, tessera.clone())),
        }
    }
    let router = with_timeouts(router.layer(axum::middleware::from_fn(telemetry::track_requests)))
        .layer(tower_http::trace::TraceLayer::new_for_http());
    Ok(App {
        router,
        metrics_router,
        tessera,
        issuer,
    })
}

/// Starts the background jobs: key reload (so rotations by other instances or the CLI are
/// picked up) and the cleanup of ended sessions and of delivered events (both kept for
/// `retention`). They stop when the returned handle is aborted or the runtime ends. The webhook
/// sender is started apart ([`webhooks::spawn_sender`]), when a receiver is configured.
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
            match tessera.purge_events(retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "deleted delivered events"),
                Err(e) => tracing::warn!(error = %e, "event cleanup failed; will retry"),
            }
        }
    };
    tokio::spawn(async move {
        tokio::join!(reload, cleanup);
    })
}

/// How long a client may take to send a request's headers (hyper closes the connection).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's whole body (then `400`: the body could not
/// be read). Bodies are at most a few kilobytes.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request may take, body and handler together (then `503`): a backstop above the
/// stores' own timeouts.
pub const HANDLER_TIMEOUT: Duration = Duration::from_secs(30);

/// The request timeouts every served router gets: the body read and the whole request.
pub fn with_timeouts(router: Router) -> Router {
    router
        .layer(tower_http::timeout::RequestBodyDeadlineLayer::new(
            BODY_TIMEOUT,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            HANDLER_TIMEOUT,
        ))
}

/// Serves `router` on `listener` until `shutdown` resolves, passing peer addresses to handlers,
/// then drains for at most 10 s (see [`serve_draining`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_draining(listener, router, shutdown, Duration::from_secs(10)).await
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and lets the
/// open requests finish for at most `grace`; connections still open then are dropped. Clients
/// get [`HEADER_READ_TIMEOUT`] to send their headers.
///
/// This is axum's `serve` loop with hyper's header-read timeout (which needs a timer axum does
/// not set) and a bound on the drain (axum's graceful shutdown waits for every connection, so
/// one stalled client kept the process alive).
pub async fn serve_draining(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::Layer;

    // HTTP/1.1 only, as axum's `serve` without its `http2` feature.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = axum::Extension(axum::extract::ConnectInfo(peer)).layer(router.clone());
        let service = hyper_util::service::TowerToHyperService::new(service);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let open = graceful.count();
    tracing::info!(
        connections = open,
        grace = %tessera_core::format_duration(grace),
        "shutting down: draining open connections"
    );
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!("drained; shut down"),
        Err(_) => tracing::warn!(
            grace = %tessera_core::format_duration(grace),
            "drain bound reached; dropping the connections still open and shutting down"
        ),
    }
    Ok(())
}

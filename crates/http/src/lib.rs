//! Tessera's HTTP API as an axum [`Router`] that any axum app can mount, and extractors that
//! protect the host app's own routes with Tessera's access tokens.
//!
//! It is not a server: it binds no socket and reads no settings (the `tessera` binary does).
//! Start with [`router`] (the whole API as the spec lays it out) or [`auth_router`] (only the
//! `/auth` routes, to `.nest("/auth", …)` into an existing app), and [`Authenticated`] /
//! [`LiveSession`] for your own handlers.
//!
//! ```no_run
//! # async fn demo(tessera: std::sync::Arc<tessera_core::Tessera>) {
//! use axum::{Router, routing::get};
//! use tessera_http::{AppState, Authenticated, HttpConfig};
//!
//! let state = AppState::new(tessera, HttpConfig::new("https://app.example"));
//! let app: Router = Router::new()
//!     .route("/api/hello", get(|Authenticated(claims): Authenticated| async move {
//!         format!("hello, {}", claims.username)
//!     }))
//!     .nest("/auth", tessera_http::auth_router(state.clone()))
//!     .with_state(state);
//! # }
//! ```

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tessera_core::Tessera;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

mod assets;
mod error;
mod extract;
mod handlers;
mod wire;

pub use error::ApiError;
pub use extract::{Authenticated, Client, LiveSession, bearer};

/// Largest request body accepted; larger ones get `413` before anything is parsed or hashed.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// How the HTTP layer speaks to browsers. Defaults follow the spec.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Origins allowed to make cookie-authenticated and CORS requests (exact match).
    pub allowed_origins: Vec<String>,
    /// Whether the refresh cookie is `Secure` (and named with the `__Secure-` prefix).
    pub cookie_secure: bool,
    /// The path the `/auth` routes are mounted at; the refresh cookie travels only there.
    pub cookie_path: String,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where `GET /metrics` renders from; `None` disables the route.
    pub metrics: Option<PrometheusHandle>,
}

impl HttpConfig {
    /// Defaults for an app served at `origin`: only it is allowed, cookies are `Secure`, the
    /// auth routes live at `/auth`, no proxies are trusted, no metrics route.
    pub fn new(origin: impl Into<String>) -> Self {
        Self {
            allowed_origins: vec![origin.into()],
            cookie_secure: true,
            cookie_path: "/auth".to_owned(),
            trusted_proxies: Vec::new(),
            metrics: None,
        }
    }

    /// `__Secure-tessera_refresh`, or `tessera_refresh` when cookies are not `Secure` (the
    /// prefix demands the attribute).
    pub fn cookie_name(&self) -> String {
        if self.cookie_secure {
            "__Secure-tessera_refresh".into()
        } else {
            "tessera_refresh".into()
        }
    }
}

/// What handlers share: the session service and the HTTP settings. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The session service.
    pub tessera: Arc<Tessera>,
    /// HTTP settings.
    pub config: Arc<HttpConfig>,
}

impl AppState {
    /// Bundles a service and its HTTP settings.
    pub fn new(tessera: Arc<Tessera>, config: HttpConfig) -> Self {
        Self {
            tessera,
            config: Arc::new(config),
        }
    }
}

/// The `/auth` routes alone (register, login, refresh, logout, logout-all, me, sessions), for
/// `.nest("/auth", auth_router(state))`. Includes the body limit and JSON 404/405 answers;
/// CORS and security headers are added by [`router`] (or by the host app).
pub fn auth_router<S: Clone + Send + Sync + 'static>(state: AppState) -> Router<S> {
    Router::new()
        .route("/register", post(handlers::register))
        .route("/login", post(handlers::login))
        .route("/refresh", post(handlers::refresh))
        .route("/logout", post(handlers::logout))
        .route("/logout-all", post(handlers::logout_all))
        .route("/me", get(handlers::me))
        .route("/sessions", get(handlers::sessions))
        .route("/sessions/{id}", delete(handlers::revoke_session))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The whole API at the spec's paths: `/auth/*`, the JWKS, health, metrics, the OpenAPI
/// description and the demo page, with CORS for the allowed origins and security headers.
pub fn router<S: Clone + Send + Sync + 'static>(state: AppState) -> Router<S> {
    let cors = cors(&state.config);
    let auth_path = state.config.cookie_path.clone();
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(assets::routes())
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state.clone())
        .nest(&auth_path, auth_router(state))
        .layer(cors)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
}

fn cors(config: &HttpConfig) -> CorsLayer {
    let origins: Vec<HeaderValue> = config
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .expose_headers([header::RETRY_AFTER, header::WWW_AUTHENTICATE])
        .max_age(std::time::Duration::from_secs(600))
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn jwks(State(app): State<AppState>) -> Response {
    let mut response = axum::Json(app.tessera.jwks()).into_response();
    // Short, so resource servers see a rotated-in key well before it starts signing.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=5"),
    );
    response
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn readyz(State(app): State<AppState>) -> Result<Response, ApiError> {
    app.tessera.ready().await?;
    Ok(axum::Json(serde_json::json!({"status": "ready"})).into_response())
}

async fn metrics(State(app): State<AppState>) -> Result<Response, ApiError> {
    let handle = app.config.metrics.as_ref().ok_or(ApiError::NotFound)?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response())
}

/// `Content-Security-Policy` of the demo page: scripts and styles from this origin only.
pub(crate) const DEMO_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub(crate) fn csp_header() -> (HeaderName, HeaderValue) {
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DEMO_CSP),
    )
}

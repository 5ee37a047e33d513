//! Tessera's HTTP API as an axum [`Router`] that any axum app can mount, and extractors that
//! protect the host app's own routes with Tessera's access tokens.
//!
//! It is not a server: it binds no socket and reads no settings (the `tessera` binary does),
//! and it does not verify tokens for *other* services (that is `tessera-verifier`, which needs
//! no database). Start with [`router`] (the whole API as `docs/protocol.md` lays it out) or
//! [`auth_router`] + [`jwks_router`] (the `/auth` routes and the JWKS, to mount into an
//! existing app), and [`Authenticated`] / [`LiveSession`] for your own handlers.
//!
//! # Quick start: sessions in your own axum app
//!
//! Open a [`Tessera`](tessera_core::Tessera) on a store, wrap it in an [`AppState`], mount the routes, and protect your
//! handlers with an extractor:
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use tessera_core::{Settings, SystemClock, Tessera};
//! use tessera_http::{AppState, Authenticated, HttpConfig};
//! use tessera_store_sqlite::SqliteStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("tessera-doc-{}", uuid::Uuid::new_v4()));
//! # std::fs::create_dir_all(&dir)?;
//! # let database_url = format!("sqlite://{}", dir.join("app.db").display());
//! let store = Arc::new(SqliteStore::connect(&database_url).await?);
//! let settings = Settings::new("https://app.example"); // the issuer: `iss` (and `aud`) of tokens
//! let tessera = Arc::new(Tessera::open(store, settings, None, Arc::new(SystemClock)).await?);
//! let state = AppState::new(tessera, HttpConfig::new("https://app.example"));
//!
//! let app: Router = Router::new()
//!     .route("/api/hello", get(|Authenticated(claims): Authenticated| async move {
//!         format!("hello, {}", claims.username)
//!     }))
//!     .nest("/auth", tessera_http::auth_router(state.clone()))
//!     .merge(tessera_http::jwks_router(state.clone()))
//!     .with_state(state);
//!
//! // Register, log in, call the protected route (here without a socket; in a real app,
//! // `axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())`).
//! use axum::body::{Body, to_bytes};
//! use axum::http::{Request, StatusCode};
//! use tower::ServiceExt;
//! let post = |path: &str, json: &str| {
//!     Request::post(path).header("content-type", "application/json").body(Body::from(json.to_owned()))
//! };
//! let credentials = r#"{"username": "alice", "password": "correct horse battery"}"#;
//! let created = app.clone().oneshot(post("/auth/register", credentials)?).await?;
//! assert_eq!(created.status(), StatusCode::CREATED);
//! let login = app.clone().oneshot(post("/auth/login", credentials)?).await?;
//! let body: serde_json::Value = serde_json::from_slice(&to_bytes(login.into_body(), 16_384).await?)?;
//! let access_token = body["access_token"].as_str().unwrap_or_default();
//!
//! let hello = Request::get("/api/hello")
//!     .header("authorization", format!("Bearer {access_token}"))
//!     .body(Body::empty())?;
//! let hello = app.oneshot(hello).await?;
//! assert_eq!(hello.status(), StatusCode::OK);
//! assert_eq!(&to_bytes(hello.into_body(), 1024).await?[..], b"hello, alice");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```
//!
//! The browser client (`tessera-client.js`, served by [`router`] or by your app) then keeps the
//! access token in memory and refreshes it through `/auth/refresh` with the `HttpOnly` cookie.
//!
//! # Which extractor?
//!
//! - [`Authenticated`]: the token's signature and claims, no database. A token stays valid until
//!   it expires (15 minutes by default), even after its session is logged out.
//! - [`LiveSession`]: the same, plus one store read: refused as soon as the session ends.
//!   Tessera's own `/auth/me`, `/auth/sessions*` and `/auth/logout-all` use it.
//!
//! Other services verify the same tokens with `tessera-verifier` (JWKS from [`jwks_router`],
//! revocations from `GET /auth/revocations`: see [`HttpConfig::revocations_token`]).

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{delete, get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

mod admin;
mod assets;
mod error;
mod extract;
mod handlers;
mod oauth;
mod secret;
mod state;
mod wire;

pub use error::{ApiError, OAuthError};
pub use extract::{Authenticated, Client, LiveSession, bearer, origin_of};
pub use secret::{AdminToken, RevocationsToken};
pub use state::{AppState, HttpConfig};

/// Largest request body accepted; larger ones get `413` before anything is parsed or hashed.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The `/auth` routes alone (register, login, refresh, logout, logout-all, me, sessions,
/// password change and reset, and revocations), for `.nest("/auth", auth_router(state))`. Includes the body limit and JSON
/// 404/405 answers; CORS and security headers are added by [`router`] (or by the host app).
///
/// Mount it where [`HttpConfig::cookie_path`] says (`/auth` by default): the refresh cookie is
/// scoped to that path. Host apps usually mount [`jwks_router`] beside it, so other services can
/// verify the tokens.
///
/// ```
/// use axum::Router;
/// use axum::body::Body;
/// use axum::http::{Request, StatusCode};
/// use tower::ServiceExt;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("tessera-doc-{}", uuid::Uuid::new_v4()));
/// # std::fs::create_dir_all(&dir)?;
/// # let url = format!("sqlite://{}", dir.join("app.db").display());
/// # let store = std::sync::Arc::new(tessera_store_sqlite::SqliteStore::connect(&url).await?);
/// # let tessera = std::sync::Arc::new(tessera_core::Tessera::open(store,
/// #     tessera_core::Settings::new("https://app.example"), None,
/// #     std::sync::Arc::new(tessera_core::SystemClock)).await?);
/// # let state = tessera_http::AppState::new(tessera, tessera_http::HttpConfig::new("https://app.example"));
/// let app: Router = Router::new().nest("/auth", tessera_http::auth_router(state));
///
/// let register = Request::post("/auth/register")
///     .header("content-type", "application/json")
///     .body(Body::from(r#"{"username": "bob", "password": "correct horse battery"}"#))?;
/// assert_eq!(app.oneshot(register).await?.status(), StatusCode::CREATED);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
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
        .route("/revocations", get(handlers::revocations))
        .route("/password", post(handlers::change_password))
        .route(
            "/password-reset/request",
            post(handlers::request_password_reset),
        )
        .route("/password-reset", post(handlers::reset_password))
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// `GET /.well-known/jwks.json` alone: the public keys that may have signed a live access token
/// (with HS256, `{"keys": []}`: a secret is never published), for `.merge(jwks_router(state))`
/// into a host app. Resource services (`tessera-verifier`, or any JOSE library) fetch it from
/// the issuer's origin, so mount it at the root, not under `/auth`.
///
/// ```
/// use axum::Router;
/// use axum::body::{Body, to_bytes};
/// use axum::http::{Request, StatusCode};
/// use tower::ServiceExt;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("tessera-doc-{}", uuid::Uuid::new_v4()));
/// # std::fs::create_dir_all(&dir)?;
/// # let url = format!("sqlite://{}", dir.join("app.db").display());
/// # let store = std::sync::Arc::new(tessera_store_sqlite::SqliteStore::connect(&url).await?);
/// # let tessera = std::sync::Arc::new(tessera_core::Tessera::open(store,
/// #     tessera_core::Settings::new("https://app.example"), None,
/// #     std::sync::Arc::new(tessera_core::SystemClock)).await?);
/// # let state = tessera_http::AppState::new(tessera, tessera_http::HttpConfig::new("https://app.example"));
/// let app: Router = Router::new().merge(tessera_http::jwks_router(state));
///
/// let response = app.oneshot(Request::get("/.well-known/jwks.json").body(Body::empty())?).await?;
/// assert_eq!(response.status(), StatusCode::OK);
/// let jwks: serde_json::Value = serde_json::from_slice(&to_bytes(response.into_body(), 65_536).await?)?;
/// assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
pub fn jwks_router<S: Clone + Send + Sync + 'static>(state: AppState) -> Router<S> {
    Router::new()
        .route("/.well-known/jwks.json", get(handlers::jwks))
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(state)
}

/// The OAuth 2.0 routes alone, for `.merge(oauth_router(state))` at the root of the issuer:
/// `POST /oauth/token` (the refresh-token grant), `POST /oauth/revoke` (RFC 7009),
/// `POST /oauth/introspect` (RFC 7662), and `GET /.well-known/oauth-authorization-server`
/// (RFC 8414; for an issuer with a path, also at that path appended to it, RFC 8414 §3.1).
/// Bodies are form-encoded and at most 16 KiB.
pub fn oauth_router<S: Clone + Send + Sync + 'static>(state: AppState) -> Router<S> {
    let mut router = Router::new()
        .route("/oauth/token", post(oauth::token))
        .route("/oauth/revoke", post(oauth::revoke))
        .route("/oauth/introspect", post(oauth::introspect))
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata),
        );
    if let Some(path) = oauth::issuer_path(&state.tessera.settings().issuer) {
        router = router.route(
            &format!("/.well-known/oauth-authorization-server{path}"),
            get(oauth::metadata),
        );
    }
    router
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The whole API at its documented paths: `/auth/*`, `/oauth/*` and the OAuth metadata, the
/// admin API (`/admin/*`, `404` unless [`HttpConfig::admin_token`] is set), the JWKS, health,
/// metrics, the OpenAPI description and the demo page, with CORS for the allowed origins and
/// security headers.
/// This is what the `tessera` binary serves; an app that is *only* Tessera can serve it as is.
///
/// ```
/// use axum::body::Body;
/// use axum::http::{Request, StatusCode};
/// use tower::ServiceExt;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("tessera-doc-{}", uuid::Uuid::new_v4()));
/// # std::fs::create_dir_all(&dir)?;
/// # let url = format!("sqlite://{}", dir.join("app.db").display());
/// # let store = std::sync::Arc::new(tessera_store_sqlite::SqliteStore::connect(&url).await?);
/// # let tessera = std::sync::Arc::new(tessera_core::Tessera::open(store,
/// #     tessera_core::Settings::new("https://auth.example"), None,
/// #     std::sync::Arc::new(tessera_core::SystemClock)).await?);
/// use tessera_http::{AppState, HttpConfig};
///
/// let app: axum::Router = tessera_http::router(AppState::new(tessera, HttpConfig::new("https://auth.example")));
///
/// for path in ["/healthz", "/readyz", "/.well-known/jwks.json", "/openapi.json", "/tessera-client.js"] {
///     let response = app.clone().oneshot(Request::get(path).body(Body::empty())?).await?;
///     assert_eq!(response.status(), StatusCode::OK, "{path}");
/// }
/// // Serve it: axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
pub fn router<S: Clone + Send + Sync + 'static>(state: AppState) -> Router<S> {
    let cors = cors(&state.config);
    let auth_path = state.config.cookie_path.clone();
    let hsts = state.config.hsts_max_age.and_then(|age| {
        HeaderValue::from_str(&format!("max-age={}; includeSubDomains", age.as_secs())).ok()
    });
    let mut routes = Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz));
    // Without a handle there is no route (a 404 like any unknown path), so the host can serve
    // `/metrics` itself.
    if state.config.metrics.is_some() {
        routes = routes.route("/metrics", get(handlers::metrics));
    }
    routes
        .merge(assets::routes())
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .fallback(handlers::not_found)
        .with_state(state.clone())
        .merge(jwks_router(state.clone()))
        .nest("/admin", admin::router(state.clone()))
        .merge(oauth_router(state.clone()))
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
        .layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            move |_: &axum::http::Response<axum::body::Body>| hsts.clone(),
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
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::HeaderName::from_static("dpop"),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
            header::HeaderName::from_static("dpop-nonce"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}

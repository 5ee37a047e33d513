//! What handlers share: the HTTP settings ([`HttpConfig`]) and the state ([`AppState`]).

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tessera_core::Tessera;

use crate::{AdminToken, RevocationsToken};

/// How the HTTP layer speaks to browsers (and to resource services). Defaults are the documented ones (`docs/protocol.md`).
///
/// ```
/// use tessera_http::{HttpConfig, RevocationsToken};
///
/// // The app is served at this origin; the browser client runs on its pages.
/// let mut config = HttpConfig::new("https://app.example");
/// assert_eq!(config.cookie_name(), "__Secure-tessera_refresh");
/// // A second origin (say, an admin UI) may use the refresh cookie too.
/// config.allowed_origins.push("https://admin.example".into());
/// // Plain-HTTP development on localhost: no `Secure` cookie, so no `__Secure-` prefix.
/// config.cookie_secure = false;
/// assert_eq!(config.cookie_name(), "tessera_refresh");
/// // Let resource services poll `GET /auth/revocations` with this shared secret.
/// config.revocations_token = Some(RevocationsToken::parse(&"s3cret-".repeat(6))?);
/// # Ok::<(), String>(())
/// ```
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
    /// Where `GET /metrics` renders from; `None`: no such route.
    pub metrics: Option<PrometheusHandle>,
    /// The shared secret resource services send as `Authorization: Bearer …` to
    /// `GET /auth/revocations`. `None` (the default): the route answers `404`, as if it did not
    /// exist.
    pub revocations_token: Option<RevocationsToken>,
    /// The operator's secret for the admin API (`Authorization: Bearer …` on `/admin/*`).
    /// `None` (the default): every `/admin` route answers `404`.
    pub admin_token: Option<AdminToken>,
    /// `Strict-Transport-Security` max-age for every response, for deployments served over
    /// HTTPS (behind a TLS-terminating proxy). `None`: no header (plain-HTTP development).
    pub hsts_max_age: Option<std::time::Duration>,
}

impl HttpConfig {
    /// Defaults for an app served at `origin`: only it is allowed, cookies are `Secure`, the
    /// auth routes live at `/auth`, no proxies are trusted, no metrics route, no revocations
    /// route, no admin API.
    pub fn new(origin: impl Into<String>) -> Self {
        Self {
            allowed_origins: vec![origin.into()],
            cookie_secure: true,
            cookie_path: "/auth".to_owned(),
            trusted_proxies: Vec::new(),
            metrics: None,
            revocations_token: None,
            admin_token: None,
            hsts_max_age: None,
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

    /// `__Secure-tessera_device`, or `tessera_device` when cookies are not `Secure`: the
    /// device token's cookie, with the refresh cookie's attributes (HttpOnly, SameSite=Strict,
    /// the `/auth` path) and a year's `Max-Age`.
    pub fn device_cookie_name(&self) -> String {
        if self.cookie_secure {
            "__Secure-tessera_device".into()
        } else {
            "tessera_device".into()
        }
    }
}

/// What handlers share: the session service and the HTTP settings. Cheap to clone.
///
/// The routers carry it themselves; the extractors find it in the host app's state through
/// [`FromRef`](axum::extract::FromRef), so an app with state of its own adds one `impl`:
///
/// ```
/// use axum::extract::{FromRef, State};
/// use axum::{Router, routing::get};
/// use tessera_http::{AppState, Authenticated};
///
/// #[derive(Clone)]
/// struct Host {
///     tessera: AppState,
///     greeting: &'static str,
/// }
///
/// impl FromRef<Host> for AppState {
///     fn from_ref(host: &Host) -> AppState {
///         host.tessera.clone()
///     }
/// }
///
/// async fn hello(State(host): State<Host>, Authenticated(claims): Authenticated) -> String {
///     format!("{}, {}", host.greeting, claims.username)
/// }
///
/// fn app(tessera: AppState) -> Router {
///     Router::new()
///         .route("/api/hello", get(hello))
///         .nest("/auth", tessera_http::auth_router(tessera.clone()))
///         .with_state(Host { tessera, greeting: "hello" })
/// }
/// ```
#[derive(Clone)]
pub struct AppState {
    /// The session service.
    pub tessera: Arc<Tessera>,
    /// HTTP settings.
    pub config: Arc<HttpConfig>,
}

impl AppState {
    /// Bundles a service and its HTTP settings.
    ///
    /// ```
    /// # async fn demo(tessera: std::sync::Arc<tessera_core::Tessera>) {
    /// use tessera_http::{AppState, HttpConfig};
    /// let state = AppState::new(tessera, HttpConfig::new("https://app.example"));
    /// # }
    /// ```
    pub fn new(tessera: Arc<Tessera>, config: HttpConfig) -> Self {
        Self {
            tessera,
            config: Arc::new(config),
        }
    }
}

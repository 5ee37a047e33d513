//! `spawn_app()`: the real server, in-process, on a random port, with a database of its own
//! and a clock the test moves by hand.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tessera::{Config, SettingsArgs};
use tessera_core::{Clock, ManualClock, SystemClock, Tessera};
use tessera_store_postgres::testing::{ThrowawayDb, throwaway_database};
use tokio::net::TcpListener;

pub const PASSWORD: &str = "correct horse battery";
pub const COOKIE: &str = "__Secure-tessera_refresh";
/// The admin token of servers started by [`spawn_admin_app`].
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdefghij";
/// The revocations secret of servers started by [`spawn_admin_app`].
pub const REVOCATIONS_TOKEN: &str = "test-revocations-token-0123456789abcdef";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each listed `async fn name(backend: Backend)` once per backend, as `sqlite::name` and
/// `postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { super::$name($crate::helpers::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::$name($crate::helpers::Backend::Postgres).await } )*
        }
    };
}
pub(crate) use on_both_backends;

/// One Prometheus recorder for the whole test process (the `metrics` facade is global).
fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| tessera::telemetry::install_recorder().expect("install recorder"))
        .clone()
}

fn init_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        if std::env::var("TEST_LOG").is_ok() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("debug")
                .with_test_writer()
                .try_init();
        }
    });
}

/// Where a test's data lives; dropped (with the data) by [`TestApp::cleanup`].
pub enum Db {
    Sqlite(PathBuf),
    Postgres(ThrowawayDb),
}

impl Db {
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir =
                    std::env::temp_dir().join(format!("tessera-api-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&dir).expect("temp dir");
                Some(Self::Sqlite(dir))
            }
            Backend::Postgres => throwaway_database().await.map(Self::Postgres),
        }
    }

    pub fn url(&self) -> String {
        match self {
            Self::Sqlite(dir) => format!("sqlite://{}", dir.join("tessera.db").display()),
            Self::Postgres(db) => db.url().to_owned(),
        }
    }

    pub async fn remove(self) {
        match self {
            Self::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Self::Postgres(db) => db.drop_db().await,
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub tessera: Arc<Tessera>,
    pub clock: ManualClock,
    pub db: Option<Db>,
    server: tokio::task::JoinHandle<()>,
}

/// A signed-in client: what a login handed back.
#[derive(Clone, Debug)]
pub struct Session {
    pub access: String,
    pub refresh: String,
    pub sid: String,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts a server with the documented defaults on a fresh database (`None`: no PostgreSQL here,
/// test skipped with a notice).
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// Starts a server with the admin API and the revocation feed turned on.
pub async fn spawn_admin_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |args| {
        args.admin_token = Some(ADMIN_TOKEN.into());
        args.revocations_token = Some(REVOCATIONS_TOKEN.into());
    })
    .await
}

/// Asserts that every one of `sessions` has ended (its refresh token refused, with `reason` when
/// given; its access token refused at `/auth/me`) and that the revocation feed of an app from
/// [`spawn_admin_app`] lists exactly these sessions.
pub async fn assert_ended_and_in_feed(app: &TestApp, sessions: &[&Session], reason: Option<&str>) {
    for s in sessions {
        let (status, body) = error_of(app.refresh_with_cookie(&s.refresh).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "refresh of {}", s.sid);
        if let Some(reason) = reason {
            assert_eq!(
                body["reason"].as_str(),
                Some(reason),
                "refresh of {}",
                s.sid
            );
        }
        assert_eq!(
            app.get_with("/auth/me", &s.access).await.status(),
            StatusCode::UNAUTHORIZED,
            "access token of {}",
            s.sid
        );
    }
    let mut listed = feed(app).await;
    listed.sort();
    let mut expected: Vec<String> = sessions.iter().map(|s| s.sid.clone()).collect();
    expected.sort();
    assert_eq!(
        listed, expected,
        "the revocation feed lists exactly the ended sessions"
    );
}

/// The session ids the revocation feed of an app from [`spawn_admin_app`] lists.
pub async fn feed(app: &TestApp) -> Vec<String> {
    let r = app
        .http
        .get(app.url("/auth/revocations"))
        .bearer_auth(REVOCATIONS_TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    body["revocations"]
        .as_array()
        .expect("revocations")
        .iter()
        .map(|e| e["session_id"].as_str().expect("id").to_owned())
        .collect()
}

/// Starts a server on a fresh database with settings changed by `tweak`.
pub async fn spawn_app_with(
    backend: Backend,
    tweak: impl FnOnce(&mut SettingsArgs),
) -> Option<TestApp> {
    let db = Db::new(backend).await?;
    let mut args = SettingsArgs::default();
    tweak(&mut args);
    let clock = ManualClock::new(SystemClock.now());
    Some(start_on(db, args, clock).await)
}

/// Starts a server on an existing database (a restart), keeping the clock.
pub async fn start_on(db: Db, args: SettingsArgs, clock: ManualClock) -> TestApp {
    let mut app = start_on_url(&db.url(), args, clock).await;
    app.db = Some(db);
    app
}

/// Starts a server on the database at `url` without owning it: another instance sharing a
/// database some other `TestApp` (or the test itself) owns. Its `cleanup` deletes nothing.
pub async fn start_on_url(url: &str, mut args: SettingsArgs, clock: ManualClock) -> TestApp {
    init_logs();
    args.database = Some(url.to_owned());
    args.bind = Some("127.0.0.1:0".into());
    let config = Config::resolve(args).expect("test settings are valid");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = tessera::build_app(&config, addr, Some(metrics()), Arc::new(clock.clone()))
        .await
        .expect("build app");
    let server = tokio::spawn(async move {
        tessera::serve(listener, app.router, std::future::pending())
            .await
            .expect("serve");
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    TestApp {
        base: format!("http://{addr}"),
        http,
        tessera: app.tessera,
        clock,
        db: None,
        server,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server and deletes its database.
    pub async fn cleanup(mut self) {
        self.server.abort();
        if let Some(db) = self.db.take() {
            db.remove().await;
        }
    }

    /// Stops the server but keeps the database, for a restart.
    pub fn stop(mut self) -> (Db, ManualClock) {
        self.server.abort();
        (self.db.take().expect("db"), self.clock.clone())
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn register(&self, username: &str, password: &str) -> Response {
        self.post_json(
            "/auth/register",
            &json!({"username": username, "password": password}),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post_json(
            "/auth/login",
            &json!({"username": username, "password": password}),
        )
        .await
    }

    /// Registers `username` and logs in (cookie delivery).
    pub async fn signed_in(&self, username: &str) -> Session {
        let r = self.register(username, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::CREATED, "register {username}");
        let r = self.login(username, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK, "login {username}");
        session_of(r).await
    }

    /// Logs an existing user in again (a second device).
    pub async fn another_device(&self, username: &str) -> Session {
        let r = self.login(username, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK);
        session_of(r).await
    }

    /// Logs `username` in, registering it first if needed.
    pub async fn another_device_or_sign_in(&self, username: &str) -> Session {
        self.register(username, PASSWORD).await;
        self.another_device(username).await
    }

    /// A `POST` to `path` carrying the refresh cookie `token`, to add to before sending.
    pub fn post_with_cookie(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .header("cookie", format!("{COOKIE}={token}"))
    }

    pub async fn refresh_with_cookie(&self, token: &str) -> Response {
        self.post_with_cookie("/auth/refresh", token)
            .send()
            .await
            .expect("request")
    }

    pub async fn logout_with_cookie(&self, token: &str) -> Response {
        self.post_with_cookie("/auth/logout", token)
            .send()
            .await
            .expect("request")
    }

    /// `DELETE /auth/sessions/{id}` as the holder of `access`.
    pub async fn revoke_session(&self, id: &str, access: &str) -> Response {
        self.http
            .delete(self.url(&format!("/auth/sessions/{id}")))
            .bearer_auth(access)
            .send()
            .await
            .expect("request")
    }

    /// A login that arrives through a proxy which says the client is `forwarded_for`.
    pub async fn login_via(&self, forwarded_for: &str, username: &str, password: &str) -> Response {
        self.post_json_via(
            forwarded_for,
            "/auth/login",
            &json!({"username": username, "password": password}),
        )
        .await
    }

    /// A JSON `POST` that arrives through a proxy which says the client is `forwarded_for`.
    pub async fn post_json_via(&self, forwarded_for: &str, path: &str, body: &Value) -> Response {
        self.http
            .post(self.url(path))
            .header("x-forwarded-for", forwarded_for)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn refresh_with_body(&self, token: &str) -> Response {
        self.post_json("/auth/refresh", &json!({"refresh_token": token}))
            .await
    }

    pub async fn get_with(&self, path: &str, access: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(access)
            .send()
            .await
            .expect("request")
    }

    /// The JSON body of a plain `GET` of `path`.
    pub async fn get_json(&self, path: &str) -> Value {
        json_from(self.http.get(self.url(path))).await
    }

    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        metric_value(&text, name)
    }

    /// `POST /auth/password` as the holder of `access`.
    pub async fn change_password(&self, access: &str, current: &str, new: &str) -> Response {
        self.http
            .post(self.url("/auth/password"))
            .bearer_auth(access)
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
            .await
            .expect("request")
    }

    /// `POST /auth/password-reset` with `token`.
    pub async fn reset_password(&self, token: &str, new: &str) -> Response {
        self.post_json(
            "/auth/password-reset",
            &json!({"token": token, "new_password": new}),
        )
        .await
    }

    /// An admin API request (`method` on `/admin{path}`) with the test's admin token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(&format!("/admin{path}")))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// The id of the user named `username`, through the admin API.
    pub async fn user_id(&self, username: &str) -> String {
        let mut after = String::new();
        loop {
            let r = self
                .admin(
                    reqwest::Method::GET,
                    &format!("/users?limit=1000&after={after}"),
                )
                .send()
                .await
                .expect("request");
            assert_eq!(r.status(), StatusCode::OK);
            let body: Value = r.json().await.expect("json");
            if let Some(u) = body["users"]
                .as_array()
                .expect("users")
                .iter()
                .find(|u| u["username"] == username)
            {
                return u["id"].as_str().expect("id").to_owned();
            }
            match body["next"].as_str() {
                Some(next) => after = next.to_owned(),
                None => panic!("no user {username}"),
            }
        }
    }

    /// A fresh password-reset token for `username`, through the admin API.
    pub async fn reset_token(&self, username: &str) -> String {
        let id = self.user_id(username).await;
        let r = self
            .admin(
                reqwest::Method::POST,
                &format!("/users/{id}/password-reset"),
            )
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.expect("json");
        body["token"].as_str().expect("token").to_owned()
    }

    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }
}

/// Sums the samples of `name` (an exact series name, labels included) in Prometheus text.
pub fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| *series == name)
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

/// The refresh cookie a response sets: (value, attributes as written).
pub fn set_cookie(r: &Response) -> Option<(String, String)> {
    cookie_set(r, &[COOKIE, "tessera_refresh"])
}

/// The first cookie a response sets under one of `names`: (value, attributes as written).
pub fn cookie_set(r: &Response, names: &[&str]) -> Option<(String, String)> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=')?;
            names
                .contains(&name.trim())
                .then(|| (value.to_owned(), attrs.trim().to_owned()))
        })
}

/// The session a successful cookie-delivery login or refresh hands back.
pub async fn session_of(r: Response) -> Session {
    assert_eq!(r.status(), StatusCode::OK);
    let (refresh, _) = set_cookie(&r).expect("refresh cookie");
    let body: Value = r.json().await.expect("json");
    Session {
        access: body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
        refresh,
        sid: body["session_id"].as_str().expect("session_id").to_owned(),
    }
}

/// Status and JSON body of an error response, checking the documented error shape (docs/protocol.md).
pub async fn error_of(r: Response) -> (StatusCode, Value) {
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        ct.starts_with("application/json"),
        "error bodies are JSON, got {ct}"
    );
    let body: Value = r.json().await.expect("json error body");
    assert!(body["error"].is_string(), "error code in {body}");
    assert!(
        body["error_description"].is_string(),
        "error_description in {body}"
    );
    (status, body)
}

/// Decodes a JWT segment (no verification) for assertions.
pub fn jwt_part(token: &str, index: usize) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(index).expect("segment");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

/// Which of `tokens` (the refresh tokens one client received for session `sid`, in order) the
/// store holds as the session's current token, by index; an empty list if the session is gone
/// or ended. White-box: it recomputes the stored keyed hash with the deployment's secret, which
/// tests keep unsealed (no key-encryption key), under the name `tessera-core` gives it.
pub async fn current_tokens(
    store: &dyn tessera_core::Store,
    sid: &str,
    tokens: &[String],
) -> Vec<usize> {
    use tessera_core::refresh_token::RefreshKey;
    const SECRET: &str = "refresh-token";
    let secret = store
        .secret(SECRET)
        .await
        .expect("read the secret")
        .expect("the refresh-token secret exists")
        .open(None, SECRET)
        .expect("unsealed secret");
    let key = RefreshKey::new(&secret);
    let Some(record) = store
        .session(sid.parse().expect("session id"))
        .await
        .expect("read the session")
    else {
        return Vec::new();
    };
    if record.revoked_at.is_some() {
        return Vec::new();
    }
    tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            key.parse(t)
                .is_some_and(|t| key.matches(&t, &record.token_hash))
        })
        .map(|(i, _)| i)
        .collect()
}

/// The JSON body `request` is answered with.
pub async fn json_from(request: reqwest::RequestBuilder) -> Value {
    request
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

/// The JWK Set an instance publishes.
pub async fn jwks(app: &TestApp) -> Value {
    let r = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks");
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("json")
}

/// The key ids of a JWK Set, in order.
pub fn kids(set: &Value) -> Vec<String> {
    set["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

/// Sends `n` refreshes of `token` at once, spread over `apps` in turn; asserts every one got
/// `200` and the same successor, and returns it.
pub async fn race_refreshes(apps: &[&TestApp], token: &str, n: usize) -> String {
    let racers: Vec<_> = (0..n)
        .map(|i| {
            let app = apps[i % apps.len()];
            let request = app
                .http
                .post(app.url("/auth/refresh"))
                .json(&json!({"refresh_token": token}));
            tokio::spawn(async move { request.send().await.expect("request") })
        })
        .collect();
    let mut successors = std::collections::HashSet::new();
    for r in racers {
        let r = r.await.expect("join");
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.expect("json");
        successors.insert(
            body["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
        );
    }
    assert_eq!(successors.len(), 1, "every racer got the same successor");
    successors.into_iter().next().expect("one successor")
}

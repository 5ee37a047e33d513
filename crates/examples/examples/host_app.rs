//! `host_app`: an axum app with sessions of its own, by embedding Tessera.
//!
//! ```sh
//! cargo run --example host_app          # http://127.0.0.1:3000, SQLite file host_app.db
//! B=http://127.0.0.1:3000
//! curl -s $B/auth/register -H 'content-type: application/json' -d '{"username":"alice","password":"correct horse"}'
//! A=$(curl -s $B/auth/login -H 'content-type: application/json' \
//!       -d '{"username":"alice","password":"correct horse","delivery":"body"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
//! curl -s $B/api/notes -H "authorization: Bearer $A" -H 'content-type: application/json' -d '{"text":"hello"}'
//! curl -s $B/api/notes -H "authorization: Bearer $A"
//! ```
//!
//! What it shows: the `/auth` routes nested into the app (`tessera_http::auth_router`), the
//! JWKS at the root (`tessera_http::jwks_router`) so other services can verify the tokens, the
//! app's own state giving Tessera's `AppState` through `FromRef`, and the two extractors:
//! reading notes takes any valid token (`Authenticated`, no database read), writing one needs a
//! live session (`LiveSession`, refused at once after a logout). Settings: `HOST_APP_BIND`
//! (default `127.0.0.1:3000`), `HOST_APP_DATABASE` (default `sqlite://host_app.db`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_core::{KEY_RELOAD_INTERVAL, Settings, SystemClock, Tessera};
use tessera_http::{AppState, Authenticated, HttpConfig, LiveSession};
use tessera_store_sqlite::SqliteStore;
use uuid::Uuid;

/// A note, as stored and as sent.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Note {
    text: String,
}

/// The host app's state: its own data, plus Tessera's.
#[derive(Clone)]
struct Host {
    tessera: AppState,
    /// Notes per user id (in memory: this is an example).
    notes: Arc<Mutex<HashMap<Uuid, Vec<Note>>>>,
}

/// How the extractors find Tessera in the host's state.
impl FromRef<Host> for AppState {
    fn from_ref(host: &Host) -> AppState {
        host.tessera.clone()
    }
}

impl Host {
    fn notes(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Vec<Note>>> {
        // Plain data: usable even if another request panicked while holding the lock.
        self.notes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `GET /api/notes`: any valid access token (stateless check).
async fn list_notes(
    State(host): State<Host>,
    Authenticated(claims): Authenticated,
) -> Json<Vec<Note>> {
    Json(host.notes().get(&claims.sub).cloned().unwrap_or_default())
}

/// `POST /api/notes`: only while the session is live.
async fn add_note(
    State(host): State<Host>,
    LiveSession(claims): LiveSession,
    Json(note): Json<Note>,
) -> (StatusCode, Json<Note>) {
    host.notes()
        .entry(claims.sub)
        .or_default()
        .push(note.clone());
    (StatusCode::CREATED, Json(note))
}

/// The whole app for an origin (`http://127.0.0.1:3000`) and a SQLite URL, and the session
/// service behind it (for background jobs and tests).
async fn app(
    origin: &str,
    database_url: &str,
) -> Result<(Router, Arc<Tessera>), Box<dyn std::error::Error>> {
    let store = Arc::new(SqliteStore::connect(database_url).await?);
    // The issuer (`iss` and `aud` of the tokens) is the app's own origin.
    let settings = Settings::new(origin);
    let tessera = Arc::new(Tessera::open(store, settings, None, Arc::new(SystemClock)).await?);
    let mut http = HttpConfig::new(origin);
    // Browsers only keep `Secure` cookies over HTTPS (or on localhost).
    http.cookie_secure = origin.starts_with("https://");
    let state = AppState::new(tessera.clone(), http);
    let router = Router::new()
        .route("/api/notes", get(list_notes).post(add_note))
        .nest("/auth", tessera_http::auth_router(state.clone()))
        .merge(tessera_http::jwks_router(state.clone()))
        .with_state(Host {
            tessera: state,
            notes: Arc::default(),
        });
    Ok((router, tessera))
}

/// Picks up keys rotated by `tessera keys rotate` (same database) and deletes long-ended
/// sessions, as the `tessera` server does.
fn spawn_maintenance(tessera: Arc<Tessera>) {
    tokio::spawn(async move {
        let mut reload = tokio::time::interval(KEY_RELOAD_INTERVAL);
        let mut cleanup = tokio::time::interval(Duration::from_secs(600));
        loop {
            tokio::select! {
                _ = reload.tick() => {
                    if let Err(e) = tessera.reload_keys().await {
                        eprintln!("reloading keys failed: {e}");
                    }
                }
                _ = cleanup.tick() => {
                    if let Err(e) = tessera.purge_ended_sessions(Duration::from_secs(7 * 86_400)).await {
                        eprintln!("session cleanup failed: {e}");
                    }
                }
            }
        }
    });
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let bind = std::env::var("HOST_APP_BIND").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let database =
        std::env::var("HOST_APP_DATABASE").unwrap_or_else(|_| "sqlite://host_app.db".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    let origin = format!("http://{}", listener.local_addr()?);
    let (router, tessera) = app(&origin, &database).await?;
    spawn_maintenance(tessera);
    println!("host_app on {origin} (sessions in {database})");
    // Connect info gives login throttling and the session list the client's IP.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use serde_json::{Value, json};

    struct Running {
        base: String,
        http: reqwest::Client,
        dir: std::path::PathBuf,
        server: tokio::task::JoinHandle<()>,
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.server.abort();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    async fn start() -> Running {
        let dir = std::env::temp_dir().join(format!("tessera-host-app-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let database = format!("sqlite://{}", dir.join("host.db").display());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (router, _) = app(&base, &database).await.unwrap();
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Running {
            base,
            http: reqwest::Client::new(),
            dir,
            server,
        }
    }

    impl Running {
        fn url(&self, path: &str) -> String {
            format!("{}{path}", self.base)
        }

        /// Registers and logs in through the embedded routes: (access, refresh) tokens.
        async fn sign_in(&self, username: &str) -> (String, String) {
            let credentials = json!({"username": username, "password": "correct horse battery"});
            let r = self
                .http
                .post(self.url("/auth/register"))
                .json(&credentials)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            let mut login = credentials.clone();
            login["delivery"] = "body".into();
            let r = self
                .http
                .post(self.url("/auth/login"))
                .json(&login)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let body: Value = r.json().await.unwrap();
            (
                body["access_token"].as_str().unwrap().to_owned(),
                body["refresh_token"].as_str().unwrap().to_owned(),
            )
        }

        async fn notes(&self, access: &str) -> reqwest::Response {
            self.http
                .get(self.url("/api/notes"))
                .bearer_auth(access)
                .send()
                .await
                .unwrap()
        }

        async fn add(&self, access: &str, text: &str) -> reqwest::Response {
            self.http
                .post(self.url("/api/notes"))
                .bearer_auth(access)
                .json(&json!({ "text": text }))
                .send()
                .await
                .unwrap()
        }
    }

    #[tokio::test]
    async fn a_user_signed_in_through_the_embedded_routes_reaches_the_protected_route() {
        let app = start().await;
        let anonymous = app.http.get(app.url("/api/notes")).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");

        let (access, _) = app.sign_in("alice").await;
        assert_eq!(
            app.add(&access, "buy milk").await.status(),
            StatusCode::CREATED
        );
        let r = app.notes(&access).await;
        assert_eq!(r.status(), StatusCode::OK);
        let notes: Vec<Note> = r.json().await.unwrap();
        assert_eq!(
            notes,
            vec![Note {
                text: "buy milk".into()
            }]
        );

        // Another user sees their own notes only.
        let (bob, _) = app.sign_in("bob").await;
        let notes: Vec<Note> = app.notes(&bob).await.json().await.unwrap();
        assert!(notes.is_empty());

        // The embedded /auth routes work as in the server: /auth/me, and the JWKS at the root.
        let me: Value = app
            .http
            .get(app.url("/auth/me"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["username"], "alice");
        let jwks: Value = app
            .http
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn after_logout_writing_stops_at_once_and_reading_when_the_token_expires() {
        let app = start().await;
        let (access, refresh) = app.sign_in("carol").await;
        assert_eq!(
            app.add(&access, "first").await.status(),
            StatusCode::CREATED
        );
        let r = app
            .http
            .post(app.url("/auth/logout"))
            .json(&json!({ "refresh_token": refresh }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        // `LiveSession` checks the session: refused at once.
        assert_eq!(
            app.add(&access, "second").await.status(),
            StatusCode::UNAUTHORIZED
        );
        // `Authenticated` is stateless: the token works until it expires.
        assert_eq!(app.notes(&access).await.status(), StatusCode::OK);
    }
}

//! `notes_api`: a separate service that trusts access tokens issued by a Tessera server, through
//! `tessera-verifier`. It has no database of sessions, no secret key and no copy of Tessera:
//! only the issuer's URL (and, for revocation in seconds, the shared revocations secret).
//!
//! ```sh
//! # An issuer that lets resource services read its revocations:
//! TESSERA_REVOCATIONS_TOKEN=$(openssl rand -base64 32) && export TESSERA_REVOCATIONS_TOKEN
//! cargo run -- serve &                                   # http://127.0.0.1:8080
//! # This service (the issuer URL from the first argument or TESSERA_ISSUER):
//! cargo run --example notes_api -- http://127.0.0.1:8080  # http://127.0.0.1:3001
//! ```
//!
//! Log in at the issuer, then call `GET`/`POST http://127.0.0.1:3001/api/notes` with
//! `Authorization: Bearer <access token>`, or, for a session bound to a DPoP key (the browser
//! client binds them by default), `Authorization: DPoP <access token>` and a `DPoP` proof whose
//! `htu` is this service's URL (`NOTES_ORIGIN` plus the path). After a logout the token is refused here within the
//! poll interval (5 s; `NOTES_REVOCATIONS_POLL`, e.g. `500ms`), and after `tessera keys rotate`
//! tokens signed with the new key are accepted without a restart. `GET /healthz` reports the
//! revocation list's freshness (`503` while stale: no poll has succeeded for 60 s, and tokens
//! are refused).
//!
//! Settings (environment): `TESSERA_ISSUER` (or the first argument), `TESSERA_AUDIENCE`
//! (default: the issuer), `TESSERA_ACCESS_TTL` (default `15m`, must match the issuer's),
//! `TESSERA_REVOCATIONS_TOKEN` (unset: no revocation polling), `NOTES_REVOCATIONS_POLL`,
//! `NOTES_BIND` (default `127.0.0.1:3001`), `NOTES_ORIGIN` (the URL clients reach this service
//! at, for DPoP proofs; default `http://` and the bound address).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_verifier::dpop::{self, Presented};
use tessera_verifier::{AccessClaims, RevocationsConfig, Verifier, VerifierConfig};
use uuid::Uuid;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Note {
    text: String,
}

#[derive(Clone)]
struct Notes {
    verifier: Verifier,
    origin: PublicOrigin,
    notes: Arc<Mutex<HashMap<Uuid, Vec<Note>>>>,
}

impl FromRef<Notes> for Verifier {
    fn from_ref(state: &Notes) -> Verifier {
        state.verifier.clone()
    }
}

/// Where clients reach this service (`http://127.0.0.1:3001`): a DPoP proof's `htu` must be it
/// plus the path, so a proof made for another service is refused here.
#[derive(Clone)]
struct PublicOrigin(String);

impl FromRef<Notes> for PublicOrigin {
    fn from_ref(state: &Notes) -> PublicOrigin {
        state.origin.clone()
    }
}

/// The caller, proven by an access token that the verifier accepted (`Bearer`, or `DPoP` with
/// its proof): the whole integration with axum is this extractor.
struct Caller(AccessClaims);

impl<S: Send + Sync> FromRequestParts<S> for Caller
where
    Verifier: FromRef<S>,
    PublicOrigin: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let (token, presented) = match authorization.and_then(|v| v.split_once(' ')) {
            Some(("Bearer", token)) => (token, Presented::Bearer),
            Some(("DPoP", token)) => (
                token,
                Presented::Dpop {
                    proof: dpop::single(parts.headers.get_all("dpop").iter().map(|v| v.as_bytes())),
                    method: parts.method.as_str(),
                    url: format!("{}{}", PublicOrigin::from_ref(state).0, parts.uri.path()),
                },
            ),
            _ => {
                return Err(unauthorized(
                    "Bearer".into(),
                    "invalid_token",
                    "a Bearer token is required",
                ));
            }
        };
        let dpop_scheme = matches!(presented, Presented::Dpop { .. });
        match Verifier::from_ref(state)
            .verify_presented(token, &presented)
            .await
        {
            Ok(claims) => Ok(Self(claims)),
            Err(
                e
                @ tessera_verifier::Error::InvalidToken(tessera_verifier::InvalidToken::DpopBound),
            ) => Err(unauthorized(
                dpop::challenge("invalid_token", &e.to_string()),
                "invalid_token",
                &e.to_string(),
            )),
            Err(e) if e.is_invalid_dpop_proof() || (dpop_scheme && e.is_invalid_token()) => {
                let code = if e.is_invalid_token() {
                    "invalid_token"
                } else {
                    "invalid_dpop_proof"
                };
                Err(unauthorized(
                    dpop::challenge(code, &e.to_string()),
                    code,
                    &e.to_string(),
                ))
            }
            Err(e) if e.is_invalid_token() => Err(unauthorized(
                format!("Bearer error=\"invalid_token\", error_description=\"{e}\""),
                "invalid_token",
                &e.to_string(),
            )),
            Err(e) => Err((
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    serde_json::json!({"error": "unavailable", "error_description": e.to_string()}),
                ),
            )
                .into_response()),
        }
    }
}

fn unauthorized(challenge: String, code: &str, description: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
        Json(serde_json::json!({"error": code, "error_description": description})),
    )
        .into_response()
}

impl Notes {
    fn notes(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Vec<Note>>> {
        // Plain data: usable even if another request panicked while holding the lock.
        self.notes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn list_notes(State(state): State<Notes>, Caller(claims): Caller) -> Json<Vec<Note>> {
    Json(state.notes().get(&claims.sub).cloned().unwrap_or_default())
}

async fn add_note(
    State(state): State<Notes>,
    Caller(claims): Caller,
    Json(note): Json<Note>,
) -> (StatusCode, Json<Note>) {
    state
        .notes()
        .entry(claims.sub)
        .or_default()
        .push(note.clone());
    (StatusCode::CREATED, Json(note))
}

/// `GET /healthz`: the verifier's view of the revocation feed, `503` while it is stale (a
/// load balancer then stops sending requests that would be refused anyway). The counters are
/// what a service would export as metrics.
async fn healthz(State(state): State<Notes>) -> Response {
    let health = state.verifier.health();
    let status = if health.stale {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = serde_json::json!({
        "status": if health.stale { "stale" } else { "ok" },
        "revocations": health.revocations,
        "last_sync": health.last_sync.map(|t| t.to_rfc3339()),
        "revoked_sessions": health.revoked_sessions,
        "failed_syncs": health.failed_syncs,
        "accepted_while_stale": health.accepted_while_stale,
        "refused_while_stale": health.refused_while_stale,
    });
    (status, Json(body)).into_response()
}

fn app(verifier: Verifier, origin: String) -> Router {
    Router::new()
        .route("/api/notes", get(list_notes).post(add_note))
        .route("/healthz", get(healthz))
        .with_state(Notes {
            verifier,
            origin: PublicOrigin(origin),
            notes: Arc::default(),
        })
}

/// The verifier's settings from the environment (and the issuer from the first argument).
fn config_from_env() -> Result<VerifierConfig, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let issuer = std::env::args()
        .nth(1)
        .or_else(|| env("TESSERA_ISSUER"))
        .ok_or("give the issuer URL as the first argument or in TESSERA_ISSUER")?;
    let mut config = VerifierConfig::new(issuer);
    if let Some(audience) = env("TESSERA_AUDIENCE") {
        config.audience = audience;
    }
    if let Some(ttl) = env("TESSERA_ACCESS_TTL") {
        config.access_ttl =
            tessera_core::parse_duration(&ttl).map_err(|e| format!("TESSERA_ACCESS_TTL: {e}"))?;
    }
    if let Some(token) = env("TESSERA_REVOCATIONS_TOKEN") {
        let mut revocations = RevocationsConfig::new(&config.issuer, token);
        if let Some(poll) = env("NOTES_REVOCATIONS_POLL") {
            revocations.poll_interval = match poll.strip_suffix("ms") {
                Some(ms) => Duration::from_millis(
                    ms.parse()
                        .map_err(|_| format!("NOTES_REVOCATIONS_POLL: `{poll}`"))?,
                ),
                None => tessera_core::parse_duration(&poll)
                    .map_err(|e| format!("NOTES_REVOCATIONS_POLL: {e}"))?,
            };
        }
        config.revocations = Some(revocations);
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let config = config_from_env()?;
    let polling = config
        .revocations
        .as_ref()
        .map_or("off".to_owned(), |r| format!("every {:?}", r.poll_interval));
    let issuer = config.issuer.clone();
    let verifier = Verifier::connect(config).await?;
    let bind = std::env::var("NOTES_BIND").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    let addr = listener.local_addr()?;
    let origin = std::env::var("NOTES_ORIGIN").unwrap_or_else(|_| format!("http://{addr}"));
    println!("notes_api on {origin} trusting {issuer} (revocation polling {polling})");
    axum::serve(listener, app(verifier, origin)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The notes API against the real `tessera` server, in-process on a random port, with a
    //! counter of the JWKS requests it serves.

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use reqwest::StatusCode;
    use serde_json::{Value, json};
    use tessera::{Config, SettingsArgs};
    use tessera_core::{Clock, ManualClock, SystemClock, Tessera};

    use super::*;

    const SECRET: &str = "notes-api-test-revocations-secret-0123456789";

    struct Issuer {
        base: String,
        tessera: Arc<Tessera>,
        clock: ManualClock,
        jwks_fetches: Arc<AtomicUsize>,
        dir: std::path::PathBuf,
        server: tokio::task::JoinHandle<()>,
        http: reqwest::Client,
    }

    impl Drop for Issuer {
        fn drop(&mut self) {
            self.server.abort();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    impl Issuer {
        /// The `tessera` server on a fresh SQLite file, its clock at `clock`.
        async fn start(clock: ManualClock) -> Self {
            let dir = std::env::temp_dir().join(format!("tessera-notes-{}", Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            let config = Config::resolve(SettingsArgs {
                database: Some(format!("sqlite://{}", dir.join("issuer.db").display())),
                revocations_token: Some(SECRET.into()),
                ..Default::default()
            })
            .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let built = tessera::build_app(&config, addr, None, Arc::new(clock.clone()))
                .await
                .unwrap();
            // Count the JWKS requests the issuer answers.
            let jwks_fetches = Arc::new(AtomicUsize::new(0));
            let counter = jwks_fetches.clone();
            let router = built.router.layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    if request.uri().path() == "/.well-known/jwks.json" {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    next.run(request)
                },
            ));
            let server = tokio::spawn(async move {
                tessera::serve(listener, router, std::future::pending())
                    .await
                    .unwrap();
            });
            Self {
                base: built.issuer,
                tessera: built.tessera,
                clock,
                jwks_fetches,
                dir,
                server,
                http: reqwest::Client::new(),
            }
        }

        /// Registers (once) and logs in: (access token, refresh token).
        async fn login(&self, username: &str) -> (String, String) {
            let credentials = json!({"username": username, "password": "correct horse battery"});
            self.http
                .post(format!("{}/auth/register", self.base))
                .json(&credentials)
                .send()
                .await
                .unwrap();
            let mut login = credentials;
            login["delivery"] = "body".into();
            let body: Value = self
                .http
                .post(format!("{}/auth/login", self.base))
                .json(&login)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (
                body["access_token"].as_str().unwrap().to_owned(),
                body["refresh_token"].as_str().unwrap().to_owned(),
            )
        }

        async fn logout(&self, refresh: &str) {
            let r = self
                .http
                .post(format!("{}/auth/logout", self.base))
                .json(&json!({ "refresh_token": refresh }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
        }

        fn jwks_fetches(&self) -> usize {
            self.jwks_fetches.load(Ordering::SeqCst)
        }

        fn verifier_config(&self, poll: Duration) -> VerifierConfig {
            let mut config = VerifierConfig::new(&self.base);
            let mut revocations = RevocationsConfig::new(&self.base, SECRET);
            revocations.poll_interval = poll;
            config.revocations = Some(revocations);
            config
        }
    }

    struct NotesApi {
        base: String,
        http: reqwest::Client,
        server: tokio::task::JoinHandle<()>,
    }

    impl Drop for NotesApi {
        fn drop(&mut self) {
            self.server.abort();
        }
    }

    impl NotesApi {
        async fn start(config: VerifierConfig) -> Self {
            let verifier = Verifier::connect(config).await.unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let origin = base.clone();
            let server = tokio::spawn(async move {
                axum::serve(listener, app(verifier, origin)).await.unwrap();
            });
            Self {
                base,
                http: reqwest::Client::new(),
                server,
            }
        }

        async fn notes(&self, access: &str) -> StatusCode {
            self.http
                .get(format!("{}/api/notes", self.base))
                .bearer_auth(access)
                .send()
                .await
                .unwrap()
                .status()
        }
    }

    fn kid(token: &str) -> String {
        let header = URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap();
        serde_json::from_slice::<Value>(&header).unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[tokio::test]
    async fn a_dpop_bound_token_is_accepted_only_with_a_proof_for_this_service() {
        use tessera_token::dpop_testing::ProofKey;
        let issuer = Issuer::start(now_clock()).await;
        let api = NotesApi::start(issuer.verifier_config(Duration::from_secs(5))).await;
        let key = ProofKey::es256();
        let now = || SystemClock.now().as_secs();
        let credentials = json!({"username": "dora", "password": "correct horse battery"});
        issuer
            .http
            .post(format!("{}/auth/register", issuer.base))
            .json(&credentials)
            .send()
            .await
            .unwrap();
        let login_url = format!("{}/auth/login", issuer.base);
        let body: Value = issuer
            .http
            .post(&login_url)
            .header("dpop", key.proof("POST", &login_url, now(), None))
            .json(&credentials)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["token_type"], "DPoP", "{body}");
        let access = body["access_token"].as_str().unwrap();
        let notes_url = format!("{}/api/notes", api.base);
        let call = |scheme: &str, proof: Option<String>| {
            let mut r = api
                .http
                .get(&notes_url)
                .header("authorization", format!("{scheme} {access}"));
            if let Some(p) = proof {
                r = r.header("dpop", p);
            }
            r.send()
        };
        let proof = key.proof("GET", &notes_url, now(), Some(access));
        assert_eq!(
            call("DPoP", Some(proof.clone())).await.unwrap().status(),
            StatusCode::OK
        );
        let elsewhere = format!("{}/api/notes", issuer.base);
        for (why, scheme, proof) in [
            ("replayed", "DPoP", Some(proof)),
            ("no proof", "DPoP", None),
            (
                "made for another service",
                "DPoP",
                Some(key.proof("GET", &elsewhere, now(), Some(access))),
            ),
            ("as Bearer", "Bearer", None),
        ] {
            let r = call(scheme, proof).await.unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{why}");
            let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
            assert!(challenge.starts_with("DPoP error="), "{why}: {challenge}");
        }
    }

    fn now_clock() -> ManualClock {
        ManualClock::new(SystemClock.now())
    }

    #[tokio::test]
    async fn a_valid_token_is_accepted_and_no_token_is_refused() {
        let issuer = Issuer::start(now_clock()).await;
        let api = NotesApi::start(issuer.verifier_config(Duration::from_secs(5))).await;
        let (access, _) = issuer.login("alice").await;

        let r = api
            .http
            .post(format!("{}/api/notes", api.base))
            .bearer_auth(&access)
            .json(&json!({"text": "from another service"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let notes: Vec<Note> = api
            .http
            .get(format!("{}/api/notes", api.base))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            notes,
            vec![Note {
                text: "from another service".into()
            }]
        );
        let health = api
            .http
            .get(format!("{}/healthz", api.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let health: Value = health.json().await.unwrap();
        assert_eq!(
            (health["status"].as_str(), health["failed_syncs"].as_u64()),
            (Some("ok"), Some(0))
        );

        let anonymous = api
            .http
            .get(format!("{}/api/notes", api.base))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
        assert_eq!(api.notes("not-a-token").await, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn after_logout_the_token_is_refused_within_the_poll_interval() {
        let issuer = Issuer::start(now_clock()).await;
        let poll = Duration::from_millis(200);
        let api = NotesApi::start(issuer.verifier_config(poll)).await;
        let (access, refresh) = issuer.login("bob").await;
        let (other, _) = issuer.login("bob").await;
        assert_eq!(api.notes(&access).await, StatusCode::OK);

        issuer.logout(&refresh).await;
        let logged_out = Instant::now();
        while api.notes(&access).await == StatusCode::OK {
            assert!(logged_out.elapsed() < poll * 10, "never refused");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let took = logged_out.elapsed();
        // The bound: one poll interval, plus one poll request (and this loop's own step).
        assert!(
            took <= poll + Duration::from_millis(300),
            "refused only {took:?} after the logout"
        );
        assert_eq!(
            api.notes(&other).await,
            StatusCode::OK,
            "the user's other session is untouched"
        );
    }

    #[tokio::test]
    async fn after_keys_rotate_tokens_with_the_new_kid_are_accepted_without_a_restart() {
        // The issuer's clock starts 25 s back, so the rotated-in key (signing 20 s after the
        // rotation) is active once the clock is moved to the present.
        let clock = ManualClock::new(SystemClock.now());
        clock.set(tessera_core::Timestamp::from_millis(
            SystemClock.now().as_millis() - 25_000,
        ));
        let issuer = Issuer::start(clock).await;
        let api = NotesApi::start(issuer.verifier_config(Duration::from_secs(5))).await;
        let (old_token, _) = issuer.login("carol").await;
        assert_eq!(api.notes(&old_token).await, StatusCode::OK);

        let rotated = issuer.tessera.rotate_keys().await.unwrap();
        issuer.clock.advance(Duration::from_secs(25));
        let (new_token, _) = issuer.login("carol").await;
        assert_eq!(kid(&new_token), rotated.kid, "the new key signs");
        assert_ne!(kid(&old_token), rotated.kid);

        assert_eq!(api.notes(&new_token).await, StatusCode::OK);
        assert_eq!(
            api.notes(&old_token).await,
            StatusCode::OK,
            "the old key stays"
        );
        assert_eq!(issuer.jwks_fetches(), 2, "connect, then the new kid");
    }

    #[tokio::test]
    async fn a_flood_of_unknown_kids_causes_at_most_one_jwks_fetch_per_interval() {
        let issuer = Issuer::start(now_clock()).await;
        let config = issuer.verifier_config(Duration::from_secs(5));
        let interval = config.jwks_refetch_interval;
        let api = NotesApi::start(config).await;
        assert_eq!(issuer.jwks_fetches(), 1);
        let (genuine, _) = issuer.login("dave").await;

        let started = Instant::now();
        let flood: Vec<_> = (0..200)
            .map(|i| {
                let header =
                    json!({"alg": "EdDSA", "kid": format!("made-up-{i}"), "typ": "at+jwt"});
                let token = format!(
                    "{}.{}.{}",
                    URL_SAFE_NO_PAD.encode(header.to_string()),
                    URL_SAFE_NO_PAD.encode(b"{}"),
                    URL_SAFE_NO_PAD.encode([0u8; 64])
                );
                let (http, url) = (api.http.clone(), format!("{}/api/notes", api.base));
                tokio::spawn(async move {
                    http.get(url)
                        .bearer_auth(token)
                        .send()
                        .await
                        .unwrap()
                        .status()
                })
            })
            .collect();
        for request in flood {
            assert_eq!(request.await.unwrap(), StatusCode::UNAUTHORIZED);
        }
        let took = started.elapsed();
        // At most one refetch per interval (10 s by default), counted at the issuer.
        let allowed = 1 + 1 + (took.as_millis() / interval.as_millis()) as usize;
        assert!(
            issuer.jwks_fetches() <= allowed,
            "{} JWKS fetches for a {took:?} flood",
            issuer.jwks_fetches()
        );
        assert_eq!(api.notes(&genuine).await, StatusCode::OK);
    }
}

//! The verifier against a stand-in issuer on a random port: it serves a JWK Set made from real
//! Tessera keys and a revocation list, signs tokens with `tessera-core`, and counts every
//! request. (The `tessera-examples` tests run the verifier against the real server.)

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tessera_core::ManualClock;
use tessera_core::access_token::{self, AccessClaims};
use tessera_core::keys::{KeySet, SigningAlg, StoredKey};
use tessera_core::{Clock, SystemClock, Timestamp};
use tessera_verifier::{
    Error, InvalidToken, RevocationsConfig, StalePolicy, Verifier, VerifierConfig,
};
use uuid::Uuid;

const SECRET: &str = "stand-in-revocations-secret-0123456789";
const TTL: Duration = Duration::from_secs(900);

#[derive(Default)]
struct IssuerState {
    keys: Mutex<Vec<StoredKey>>,
    revoked: Mutex<Vec<(Uuid, Timestamp)>>,
    jwks_fetches: AtomicUsize,
    revocation_polls: AtomicUsize,
    offers_revocations: bool,
    /// While set, the feed answers `503` (the issuer is down).
    feed_down: std::sync::atomic::AtomicBool,
    /// While set, every page names itself as the next (a broken issuer).
    stuck_cursor: std::sync::atomic::AtomicBool,
}

struct Issuer {
    base: String,
    state: Arc<IssuerState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn jwks(State(state): State<Arc<IssuerState>>) -> Response {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let keys = KeySet::load(&state.keys.lock().unwrap(), None).unwrap();
    Json(keys.jwks(SystemClock.now(), TTL)).into_response()
}

#[derive(serde::Deserialize)]
struct Since {
    since: Option<i64>,
    limit: Option<usize>,
    /// How many entries earlier pages listed (the stand-in's own opaque cursor).
    cursor: Option<usize>,
}

async fn revocations(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    Query(q): Query<Since>,
) -> Response {
    if !state.offers_revocations {
        return StatusCode::NOT_FOUND.into_response();
    }
    state.revocation_polls.fetch_add(1, Ordering::SeqCst);
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {SECRET}"))
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if state.feed_down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let now = SystemClock.now();
    let since = q.since.unwrap_or(0);
    let (skip, limit) = (q.cursor.unwrap_or(0), q.limit.unwrap_or(1000));
    let matching: Vec<_> = state
        .revoked
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| at.as_millis() >= since)
        .map(|(sid, at)| serde_json::json!({"session_id": sid, "revoked_at": at.to_rfc3339()}))
        .collect();
    let page: Vec<_> = matching.iter().skip(skip).take(limit).cloned().collect();
    let next = if state.stuck_cursor.load(Ordering::SeqCst) {
        Some(skip.to_string())
    } else {
        (skip + page.len() < matching.len()).then(|| (skip + page.len()).to_string())
    };
    Json(serde_json::json!({
        "since": Timestamp::from_millis(since).to_rfc3339(),
        "until": now.to_rfc3339(),
        "revocations": page,
        "next": next,
    }))
    .into_response()
}

impl Issuer {
    async fn start(alg: SigningAlg, offers_revocations: bool) -> Self {
        let now = SystemClock.now();
        let state = Arc::new(IssuerState {
            keys: Mutex::new(vec![StoredKey::generate(alg, None, now, now).unwrap()]),
            offers_revocations,
            ..Default::default()
        });
        let app = axum::Router::new()
            .route("/.well-known/jwks.json", get(jwks))
            .route("/auth/revocations", get(revocations))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base,
            state,
            server,
        }
    }

    fn claims(&self, sid: Uuid) -> AccessClaims {
        let now = SystemClock.now().as_secs();
        AccessClaims {
            iss: self.base.clone(),
            sub: Uuid::new_v4(),
            aud: self.base.clone(),
            exp: now + 900,
            iat: now,
            nbf: now,
            jti: Uuid::new_v4(),
            sid,
            username: "alice".into(),
            client_id: "tessera".into(),
            cnf: None,
        }
    }

    /// A token signed with the newest key.
    fn sign(&self, claims: &AccessClaims) -> String {
        let keys = KeySet::load(&self.state.keys.lock().unwrap(), None).unwrap();
        access_token::issue(claims, &keys.signing_key(SystemClock.now()).unwrap().key).unwrap()
    }

    fn token(&self, sid: Uuid) -> String {
        self.sign(&self.claims(sid))
    }

    fn rotate(&self) -> String {
        let now = SystemClock.now();
        let key = StoredKey::generate(SigningAlg::EdDSA, None, now, now).unwrap();
        let kid = key.kid.clone();
        self.state.keys.lock().unwrap().push(key);
        kid
    }

    fn revoke(&self, sid: Uuid, at: Timestamp) {
        self.state.revoked.lock().unwrap().push((sid, at));
    }

    fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    fn config(&self) -> VerifierConfig {
        VerifierConfig::new(&self.base)
    }

    fn with_revocations(&self, poll: Duration) -> VerifierConfig {
        let mut config = self.config();
        let mut revocations = RevocationsConfig::new(&self.base, SECRET);
        revocations.poll_interval = poll;
        // Stale only well after a missed poll (the tests that want staleness set it).
        revocations.max_staleness = poll.saturating_mul(2).max(Duration::from_secs(60));
        config.revocations = Some(revocations);
        config
    }
}

/// A well-formed token whose `kid` no issuer has: passes every check before the key lookup.
fn made_up_kid_token() -> String {
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    format!(
        "{}.{}.{}",
        b64(
            serde_json::json!({"alg": "EdDSA", "kid": Uuid::new_v4().to_string(), "typ": "at+jwt"})
        ),
        b64(serde_json::json!({"sub": "x"})),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 64]),
    )
}

#[tokio::test]
async fn a_genuine_token_is_accepted_with_its_claims() {
    for alg in [SigningAlg::EdDSA, SigningAlg::ES256, SigningAlg::RS256] {
        let issuer = Issuer::start(alg, false).await;
        let verifier = Verifier::connect(issuer.config()).await.unwrap();
        let claims = issuer.claims(Uuid::new_v4());
        assert_eq!(
            verifier.verify(&issuer.sign(&claims)).await.unwrap(),
            claims,
            "{alg}"
        );
        assert_eq!(issuer.jwks_fetches(), 1, "the keys are cached");
    }
}

#[tokio::test]
async fn tokens_for_another_issuer_or_audience_or_expired_or_forged_are_refused() {
    let issuer = Issuer::start(SigningAlg::EdDSA, false).await;
    let other = Issuer::start(SigningAlg::EdDSA, false).await;
    let verifier = Verifier::connect(issuer.config()).await.unwrap();
    let good = issuer.claims(Uuid::new_v4());
    let now = good.iat;
    for (why, token) in [
        (
            "iss",
            issuer.sign(&AccessClaims {
                iss: "http://evil.example".into(),
                ..good.clone()
            }),
        ),
        (
            "aud",
            issuer.sign(&AccessClaims {
                aud: "http://other.example".into(),
                ..good.clone()
            }),
        ),
        (
            "exp",
            issuer.sign(&AccessClaims {
                exp: now - 10,
                iat: now - 910,
                nbf: now - 910,
                ..good.clone()
            }),
        ),
        (
            "lifetime",
            issuer.sign(&AccessClaims {
                exp: now + 3600,
                ..good.clone()
            }),
        ),
        ("foreign key", other.sign(&good)),
        ("garbage", "not.a.token".into()),
    ] {
        let e = verifier.verify(&token).await.unwrap_err();
        assert!(e.is_invalid_token(), "{why}: {e}");
    }
    // A `lifetime` other than the default is a setting.
    let mut config = issuer.config();
    config.access_ttl = Duration::from_secs(3600);
    let long = Verifier::connect(config).await.unwrap();
    let hour = issuer.sign(&AccessClaims {
        exp: now + 3600,
        ..good
    });
    assert!(long.verify(&hour).await.is_ok());
}

#[tokio::test]
async fn a_rotated_in_key_is_fetched_on_its_first_token() {
    let issuer = Issuer::start(SigningAlg::EdDSA, false).await;
    let verifier = Verifier::connect(issuer.config()).await.unwrap();
    let before = issuer.token(Uuid::new_v4());
    let kid = issuer.rotate();
    let after = issuer.token(Uuid::new_v4());
    assert_eq!(access_token::unverified_kid(&after).unwrap(), kid);
    assert!(verifier.verify(&after).await.is_ok());
    assert!(verifier.verify(&before).await.is_ok(), "the old key stays");
    assert_eq!(issuer.jwks_fetches(), 2);
    assert!(verifier.key_ids().contains(&kid));
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_the_keys_once_per_interval() {
    let issuer = Issuer::start(SigningAlg::EdDSA, false).await;
    // The default interval (10 s) is far longer than the flood takes.
    let verifier = Verifier::connect(issuer.config()).await.unwrap();
    assert_eq!(issuer.jwks_fetches(), 1);

    let flood: Vec<_> = (0..300)
        .map(|_| {
            let verifier = verifier.clone();
            tokio::spawn(async move { verifier.verify(&made_up_kid_token()).await })
        })
        .collect();
    for attempt in flood {
        assert!(attempt.await.unwrap().unwrap_err().is_invalid_token());
    }
    assert_eq!(issuer.jwks_fetches(), 2, "one refetch for the whole flood");
    // A genuine token still verifies meanwhile, without a fetch.
    assert!(verifier.verify(&issuer.token(Uuid::new_v4())).await.is_ok());
    assert_eq!(issuer.jwks_fetches(), 2);
}

#[tokio::test]
async fn after_the_refetch_interval_an_unknown_kid_is_fetched_again() {
    let issuer = Issuer::start(SigningAlg::EdDSA, false).await;
    let mut config = issuer.config();
    config.jwks_refetch_interval = Duration::from_millis(300);
    let verifier = Verifier::connect(config).await.unwrap();
    assert!(verifier.verify(&made_up_kid_token()).await.is_err());
    assert!(verifier.verify(&made_up_kid_token()).await.is_err());
    assert_eq!(
        issuer.jwks_fetches(),
        2,
        "connect, then the first unknown kid"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    let kid = issuer.rotate();
    let token = issuer.token(Uuid::new_v4());
    assert!(verifier.verify(&token).await.is_ok(), "{kid} fetched");
    assert_eq!(issuer.jwks_fetches(), 3);
}

#[tokio::test]
async fn a_revoked_session_is_refused_after_the_next_poll() {
    let issuer = Issuer::start(SigningAlg::EdDSA, true).await;
    let (ended, live) = (Uuid::new_v4(), Uuid::new_v4());
    let verifier = Verifier::connect(issuer.with_revocations(Duration::from_secs(3600)))
        .await
        .unwrap();
    let (ended_token, live_token) = (issuer.token(ended), issuer.token(live));
    assert!(verifier.verify(&ended_token).await.is_ok());

    issuer.revoke(ended, SystemClock.now());
    assert_eq!(verifier.sync_revocations().await.unwrap(), 1);
    let e = verifier.verify(&ended_token).await.unwrap_err();
    assert_eq!(e.to_string(), "the token's session has ended");
    assert!(verifier.verify(&live_token).await.is_ok());
}

#[tokio::test]
async fn the_background_poll_ends_a_session_within_the_poll_interval() {
    let issuer = Issuer::start(SigningAlg::EdDSA, true).await;
    let poll = Duration::from_millis(200);
    let verifier = Verifier::connect(issuer.with_revocations(poll))
        .await
        .unwrap();
    let sid = Uuid::new_v4();
    let token = issuer.token(sid);
    assert!(verifier.verify(&token).await.is_ok());

    issuer.revoke(sid, SystemClock.now());
    let revoked = Instant::now();
    while verifier.verify(&token).await.is_ok() {
        assert!(
            revoked.elapsed() < poll * 5,
            "still accepted {:?} after the revocation",
            revoked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = revoked.elapsed();
    assert!(
        took <= poll + Duration::from_millis(150),
        "refused only after {took:?}"
    );
}

#[tokio::test]
async fn revocations_are_forgotten_once_every_token_of_the_session_has_expired() {
    let issuer = Issuer::start(SigningAlg::EdDSA, true).await;
    let (old, recent) = (Uuid::new_v4(), Uuid::new_v4());
    let now = SystemClock.now().as_millis();
    // 15 minutes + 5 s (+ 1 s) ago: every token of it has expired; 800 s ago: not yet.
    issuer.revoke(old, Timestamp::from_millis(now - 906_000));
    issuer.revoke(recent, Timestamp::from_millis(now - 800_000));
    let verifier = Verifier::connect(issuer.with_revocations(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert!(!verifier.is_revoked(old));
    assert!(verifier.is_revoked(recent));
}

#[tokio::test]
async fn polls_ask_only_for_what_is_new() {
    let issuer = Issuer::start(SigningAlg::EdDSA, true).await;
    let verifier = Verifier::connect(issuer.with_revocations(Duration::from_secs(3600)))
        .await
        .unwrap();
    let sid = Uuid::new_v4();
    issuer.revoke(sid, SystemClock.now());
    verifier.sync_revocations().await.unwrap();
    // The issuer forgets it (as Tessera does after the window); the verifier still knows.
    issuer.state.revoked.lock().unwrap().clear();
    verifier.sync_revocations().await.unwrap();
    assert!(verifier.is_revoked(sid));
}

#[tokio::test]
async fn connecting_needs_a_reachable_issuer_the_right_secret_and_a_public_key() {
    let unreachable = Verifier::connect(VerifierConfig::new("http://127.0.0.1:1")).await;
    assert!(matches!(unreachable, Err(Error::Issuer(_))));

    let issuer = Issuer::start(SigningAlg::EdDSA, true).await;
    let mut config = issuer.with_revocations(Duration::from_secs(5));
    if let Some(r) = config.revocations.as_mut() {
        r.token = "wrong".into();
    }
    let e = Verifier::connect(config).await.unwrap_err();
    assert!(e.to_string().contains("401"), "{e}");
    assert!(!format!("{:?}", issuer.with_revocations(Duration::from_secs(5))).contains(SECRET));

    let no_revocations = Issuer::start(SigningAlg::EdDSA, false).await;
    let e = Verifier::connect(no_revocations.with_revocations(Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("TESSERA_REVOCATIONS_TOKEN"), "{e}");

    let hs256 = Issuer::start(SigningAlg::HS256, false).await;
    let e = Verifier::connect(hs256.config()).await.unwrap_err();
    assert!(e.to_string().contains("no usable key"), "{e}");

    let mut zero = issuer.with_revocations(Duration::ZERO);
    zero.jwks_url = issuer.config().jwks_url;
    assert!(matches!(
        Verifier::connect(zero).await,
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn an_https_issuer_without_tls_in_reqwest_says_what_is_missing() {
    let e = Verifier::connect(VerifierConfig::new("https://127.0.0.1:1"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Issuer(_)));
    assert!(e.to_string().contains("TLS feature"), "{e}");
    let e = Verifier::connect(VerifierConfig::new("ftp://auth.example"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
}

#[tokio::test]
async fn dropping_the_last_clone_stops_the_polling() {
    let issuer = Issuer::start(SigningAlg::EdDSA, true).await;
    let verifier = Verifier::connect(issuer.with_revocations(Duration::from_millis(20)))
        .await
        .unwrap();
    let clone = verifier.clone();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(verifier);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let polls = issuer.state.revocation_polls.load(Ordering::SeqCst);
    assert!(polls >= 2, "polls every 20 ms while in use ({polls})");
    drop(clone);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let stopped = issuer.state.revocation_polls.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        issuer.state.revocation_polls.load(Ordering::SeqCst),
        stopped
    );
}

/// Before: the verifier forgot a revocation by the issuer's clock (`until`) but checked `exp`
/// by its own, so with a clock two minutes behind it accepted a revoked session's last token
/// for those two minutes.
#[tokio::test]
async fn a_lagging_verifier_remembers_a_revocation_while_it_still_accepts_the_token() {
    let issuer = Issuer::start(SigningAlg::EdDSA, true).await;
    let now = SystemClock.now();
    let sid = Uuid::new_v4();
    // Revoked 910 s ago by the issuer's clock, right after its last token was issued: past the
    // issuer's window (900 s + 5 s), but that token's `exp` is 10 s ago.
    let revoked_at = now.minus(Duration::from_secs(910));
    let issued = revoked_at.as_secs();
    let token = issuer.sign(&AccessClaims {
        iat: issued,
        nbf: issued,
        exp: issued + 900,
        ..issuer.claims(sid)
    });
    issuer.revoke(sid, revoked_at);
    // The verifier's clock is two minutes behind: for it, the token has 110 s left.
    let lagging = tessera_core::ManualClock::new(now.minus(Duration::from_secs(120)));
    let verifier = Verifier::connect_with_clock(
        issuer.with_revocations(Duration::from_secs(3600)),
        Arc::new(lagging.clone()),
    )
    .await
    .unwrap();
    assert!(verifier.is_revoked(sid));
    let refused = verifier.verify(&token).await.unwrap_err();
    assert!(refused.is_invalid_token(), "{refused:?}");
    // Once its own clock says the token has expired (plus the leeway), it may forget.
    lagging.advance(Duration::from_secs(120 + 6));
    verifier.sync_revocations().await.unwrap();
    assert!(!verifier.is_revoked(sid));
    assert!(verifier.verify(&token).await.is_err(), "expired by now");
}

#[tokio::test]
async fn every_page_of_the_feed_is_read_at_each_poll() {
    let issuer = Issuer::start(SigningAlg::EdDSA, true).await;
    let sids: Vec<_> = (0..23).map(|_| Uuid::new_v4()).collect();
    let now = SystemClock.now();
    for sid in &sids {
        issuer.revoke(*sid, now);
    }
    let mut config = issuer.with_revocations(Duration::from_secs(3600));
    if let Some(r) = config.revocations.as_mut() {
        r.page_size = 5;
    }
    let verifier = Verifier::connect(config).await.unwrap();
    assert_eq!(issuer.state.revocation_polls.load(Ordering::SeqCst), 5);
    assert!(sids.iter().all(|sid| verifier.is_revoked(*sid)));
    let late = Uuid::new_v4();
    issuer.revoke(late, SystemClock.now());
    assert_eq!(verifier.sync_revocations().await.unwrap(), 24);
    assert!(verifier.is_revoked(late));
}

#[tokio::test]
async fn a_feed_whose_cursor_does_not_advance_fails_the_poll_instead_of_looping() {
    let issuer = Issuer::start(SigningAlg::EdDSA, true).await;
    let verifier = Verifier::connect(issuer.with_revocations(Duration::from_secs(3600)))
        .await
        .unwrap();
    issuer.state.stuck_cursor.store(true, Ordering::SeqCst);
    let e = verifier.sync_revocations().await.unwrap_err();
    assert!(e.to_string().contains("same `next`"), "{e}");
    let health = verifier.health();
    assert_eq!((health.failed_syncs, health.consecutive_failures), (1, 1));
    assert!(health.last_error.unwrap().contains("same `next`"));
}

/// A verifier on a manual clock whose issuer's feed is down from the start of the test on.
async fn stale_verifier(issuer: &Issuer, policy: StalePolicy) -> (Verifier, ManualClock) {
    let clock = ManualClock::new(SystemClock.now());
    // No background poll within the test (it polls by real time); stale after 60 s by `clock`.
    let mut config = issuer.with_revocations(Duration::from_secs(30));
    if let Some(r) = config.revocations.as_mut() {
        r.max_staleness = Duration::from_secs(60);
        r.when_stale = policy;
    }
    let verifier = Verifier::connect_with_clock(config, Arc::new(clock.clone()))
        .await
        .unwrap();
    issuer.state.feed_down.store(true, Ordering::SeqCst);
    (verifier, clock)
}

#[tokio::test]
async fn a_stale_list_refuses_tokens_by_default_and_health_says_so() {
    let issuer = Issuer::start(SigningAlg::EdDSA, true).await;
    let (verifier, clock) = stale_verifier(&issuer, StalePolicy::default()).await;
    let connected = verifier.health();
    assert!(connected.revocations && !connected.stale);
    let token = issuer.token(Uuid::new_v4());

    // Failed polls within the bound: still fresh enough, tokens accepted.
    assert!(verifier.sync_revocations().await.is_err());
    clock.advance(Duration::from_secs(60));
    assert!(verifier.sync_revocations().await.is_err());
    assert!(verifier.verify(&token).await.is_ok());
    let health = verifier.health();
    assert!(!health.stale);
    assert_eq!(health.consecutive_failures, 2);
    assert!(health.last_error.unwrap().contains("503"));

    // One millisecond past it: refused, and not as an invalid token (a 503, not a 401).
    clock.advance(Duration::from_millis(1));
    let e = verifier.verify(&token).await.unwrap_err();
    assert!(matches!(e, Error::RevocationsStale { .. }), "{e}");
    assert!(!e.is_invalid_token());
    let health = verifier.health();
    assert!(health.stale);
    assert_eq!(health.last_sync, connected.last_sync);
    assert_eq!(
        (health.refused_while_stale, health.accepted_while_stale),
        (1, 0)
    );
    // A forged token is still an invalid token.
    assert!(
        verifier
            .verify(&made_up_kid_token())
            .await
            .unwrap_err()
            .is_invalid_token()
    );

    // The feed answers again: fresh, accepted.
    issuer.state.feed_down.store(false, Ordering::SeqCst);
    verifier.sync_revocations().await.unwrap();
    assert!(verifier.verify(&token).await.is_ok());
    let health = verifier.health();
    assert!(!health.stale);
    assert_eq!(health.last_sync, Some(clock.now()));
    assert_eq!((health.consecutive_failures, health.failed_syncs), (0, 2));
    assert_eq!(health.last_error, None);
}

#[tokio::test]
async fn with_the_accept_policy_a_stale_list_accepts_and_counts_it() {
    let issuer = Issuer::start(SigningAlg::EdDSA, true).await;
    let (verifier, clock) = stale_verifier(&issuer, StalePolicy::Accept).await;
    let token = issuer.token(Uuid::new_v4());
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(verifier.health().accepted_while_stale, 0, "fresh yet");
    clock.advance(Duration::from_secs(61));
    assert!(verifier.sync_revocations().await.is_err());
    assert!(verifier.verify(&token).await.is_ok());
    assert!(verifier.verify(&token).await.is_ok());
    let health = verifier.health();
    assert!(health.stale);
    assert_eq!(health.when_stale, StalePolicy::Accept);
    assert_eq!(
        (health.accepted_while_stale, health.refused_while_stale),
        (2, 0)
    );
}

#[tokio::test]
async fn without_revocations_the_verifier_is_never_stale() {
    let issuer = Issuer::start(SigningAlg::EdDSA, false).await;
    let verifier = Verifier::connect(issuer.config()).await.unwrap();
    let health = verifier.health();
    assert!(!health.revocations && !health.stale);
}

#[tokio::test]
async fn a_page_size_or_staleness_bound_that_cannot_work_is_refused() {
    let issuer = Issuer::start(SigningAlg::EdDSA, true).await;
    let with = |change: &dyn Fn(&mut RevocationsConfig)| {
        let mut config = issuer.with_revocations(Duration::from_secs(5));
        change(config.revocations.as_mut().unwrap());
        config
    };
    for config in [
        with(&|r| r.page_size = 0),
        with(&|r| r.page_size = 10_001),
        with(&|r| r.max_staleness = Duration::from_secs(5)),
    ] {
        assert!(matches!(
            Verifier::connect(config).await,
            Err(Error::Config(_))
        ));
    }
    for config in [
        with(&|r| r.page_size = 10_000),
        with(&|r| r.max_staleness = Duration::from_secs(6)),
    ] {
        assert!(Verifier::connect(config).await.is_ok());
    }
}

/// A client's Ed25519 key and the proofs it signs.
struct DpopKey(aws_lc_rs::signature::Ed25519KeyPair);

impl DpopKey {
    fn new() -> Self {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8v1(&rng).unwrap();
        Self(aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
    }

    fn x(&self) -> String {
        use aws_lc_rs::signature::KeyPair;
        b64(self.0.public_key().as_ref())
    }

    fn jkt(&self) -> String {
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, self.x());
        b64(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ))
    }

    fn proof(&self, url: &str, token: &str) -> String {
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA",
            "jwk": {"kty": "OKP", "crv": "Ed25519", "x": self.x()}});
        let ath = b64(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            token.as_bytes(),
        ));
        let claims = serde_json::json!({"jti": Uuid::new_v4().to_string(), "htm": "GET",
            "htu": url, "iat": SystemClock.now().as_secs(), "ath": ath});
        let signed = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        format!("{signed}.{}", b64(self.0.sign(signed.as_bytes())))
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_dpop_bound_token_needs_a_proof_by_its_key_and_never_the_same_one_twice() {
    use tessera_verifier::dpop::{InvalidProof, Presented};
    let issuer = Issuer::start(SigningAlg::EdDSA, false).await;
    let verifier = Verifier::connect(issuer.config()).await.unwrap();
    let key = DpopKey::new();
    let claims = AccessClaims {
        cnf: Some(access_token::Confirmation { jkt: key.jkt() }),
        ..issuer.claims(Uuid::new_v4())
    };
    let token = issuer.sign(&claims);
    const URL: &str = "https://api.example/notes";
    fn dpop<'a>(proof: Option<&'a str>, url: &str) -> Presented<'a> {
        Presented::Dpop {
            proof: proof.map(Ok),
            method: "GET",
            url: url.to_owned(),
        }
    }
    let proof = key.proof(URL, &token);
    assert_eq!(
        verifier
            .verify_presented(&token, &dpop(Some(&proof), URL))
            .await
            .unwrap(),
        claims
    );
    let refused = |e: Error| match e {
        Error::InvalidDpopProof(why) => Some(why),
        _ => None,
    };
    for (why, presented, want) in [
        ("replayed", dpop(Some(&proof), URL), InvalidProof::Replayed),
        ("no proof", dpop(None, URL), InvalidProof::Missing),
        (
            "another URL",
            dpop(Some(&key.proof(URL, &token)), "https://api.example/admin"),
            InvalidProof::WrongUrl,
        ),
        (
            "another key",
            dpop(Some(&DpopKey::new().proof(URL, &token)), URL),
            InvalidProof::WrongKey,
        ),
        (
            "the hash of another token",
            dpop(Some(&key.proof(URL, "another.token")), URL),
            InvalidProof::WrongAccessTokenHash,
        ),
    ] {
        let e = verifier
            .verify_presented(&token, &presented)
            .await
            .unwrap_err();
        assert_eq!(refused(e), Some(want), "{why}");
    }
    // As Bearer, the bound token is refused; an unbound one is refused as DPoP.
    let e = verifier.verify(&token).await.unwrap_err();
    assert!(
        matches!(e, Error::InvalidToken(InvalidToken::DpopBound)),
        "{e}"
    );
    let plain = issuer.sign(&issuer.claims(Uuid::new_v4()));
    assert!(verifier.verify(&plain).await.is_ok());
    let e = verifier
        .verify_presented(&plain, &dpop(Some(&key.proof(URL, &plain)), URL))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidToken(InvalidToken::NotDpopBound)),
        "{e}"
    );
}

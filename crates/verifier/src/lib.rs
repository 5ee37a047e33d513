//! Verify Tessera access tokens in a service that is not Tessera: a resource server, an API
//! gateway, a worker. It needs no database and no secret, only the issuer's URL.
//!
//! A [`Verifier`] fetches the issuer's JWK Set (`/.well-known/jwks.json`) once, caches it, and
//! checks tokens with **the issuer's own rules** (`tessera-token`'s
//! [`verify`](tessera_token::access_token::verify): algorithm pinned per key, `typ`
//! `at+jwt`, any `crit` refused, `iss`, `aud`, `exp`, `nbf`, claim types, canonical base64url).
//! A token signed by a key it has not seen yet (the issuer rotated its keys) makes it fetch the
//! JWKS again, at most once per [`VerifierConfig::jwks_refetch_interval`], so a flood of
//! tokens with made-up `kid`s cannot turn into a flood of requests to the issuer.
//!
//! It is not an HTTP framework integration (a ten-line extractor does that, see the `notes_api`
//! example) and not a client: it never obtains or refreshes tokens.
//!
//! ```no_run
//! use tessera_verifier::{Verifier, VerifierConfig};
//!
//! # async fn demo(authorization_header: &str) -> Result<(), tessera_verifier::Error> {
//! let verifier = Verifier::connect(VerifierConfig::new("https://auth.example")).await?;
//!
//! let token = authorization_header.strip_prefix("Bearer ").unwrap_or_default();
//! match verifier.verify(token).await {
//!     // `client_id` (RFC 9068 §2.2): the OAuth client the session belongs to.
//!     Ok(claims) => println!("user {} ({}), session {}, client {}",
//!         claims.username, claims.sub, claims.sid, claims.client_id),
//!     Err(e) if e.is_invalid_token() => println!("401: {e}"),
//!     Err(e) => println!("503: {e}"),
//! }
//! # Ok(()) }
//! ```
//!
//! # Revocation in seconds
//!
//! An access token is valid until it expires (15 minutes by default), even after a logout. A
//! service that must honour logouts sooner gives the verifier the issuer's shared secret
//! `TESSERA_REVOCATIONS_TOKEN`; the verifier then polls `GET /auth/revocations` every
//! [`RevocationsConfig::poll_interval`] (5 s by default) and refuses the tokens of every
//! session ended since.
//!
//! ```no_run
//! use std::time::Duration;
//! use tessera_verifier::{RevocationsConfig, Verifier, VerifierConfig};
//!
//! # async fn demo() -> Result<(), tessera_verifier::Error> {
//! let mut config = VerifierConfig::new("https://auth.example");
//! let secret = std::env::var("TESSERA_REVOCATIONS_TOKEN").unwrap_or_default();
//! config.revocations = Some(RevocationsConfig::new(&config.issuer, secret));
//! let verifier = Verifier::connect(config).await?;
//! # Ok(()) }
//! ```
//!
//! **The bound**: a logout (or a revocation, or a detected refresh-token reuse) takes effect in
//! every verifying service within one poll interval plus the duration of one poll request.
//!
//! The feed is paged ([`RevocationsConfig::page_size`] entries a request): the verifier follows
//! the pages to the end at every poll, so no number of ended sessions makes a poll fail or
//! [`Verifier::connect`] refuse to start.
//!
//! # When the feed cannot be read
//!
//! A failed poll keeps what is known and logs a warning; the next poll tries again. Once the
//! last successful poll is older than [`RevocationsConfig::max_staleness`] (60 s by default,
//! by the verifier's clock) the list is **stale**: a session ended since then would not be
//! refused. What happens then is [`RevocationsConfig::when_stale`]:
//!
//! - [`StalePolicy::Refuse`] (the default): [`Verifier::verify`] fails with
//!   [`Error::RevocationsStale`] (not an invalid token: answer `503`) until a poll succeeds.
//! - [`StalePolicy::Accept`]: tokens are accepted as before, each such acceptance counted in
//!   [`Health::accepted_while_stale`], and every failed poll logged as an error.
//!
//! Either way [`Verifier::health`] says so: the last successful sync, whether the list is stale,
//! and counters of failed polls and of tokens accepted or refused while stale. The verifier has
//! no metrics dependency of its own; export these from the host (a `/healthz` that fails while
//! `stale`, a gauge of `last_sync`, counters of the rest).
//!
//! # Transport
//!
//! The verifier uses `reqwest` without default features, so on its own it speaks plain HTTP
//! (an issuer on a private network, or a local TLS-terminating sidecar). For an `https://`
//! issuer, give `reqwest` a TLS backend in your application; Cargo unifies features, so the
//! verifier's client gets it too:
//!
//! ```toml
//! [dependencies]
//! tessera-verifier = "0.1"
//! reqwest = { version = "0.13", default-features = false, features = ["rustls"] }
//! ```
//!
//! Redirects are not followed: the keys come from exactly the configured URL.
//!
//! # DPoP-bound tokens
//!
//! A token of a session bound to a client's key (RFC 9449: it carries `cnf.jkt`) is accepted
//! only as `Authorization: DPoP <token>` with a `DPoP` proof by that key, made for this very
//! request. [`Verifier::verify`] is the `Bearer` case and refuses such a token
//! ([`InvalidToken::DpopBound`]); [`Verifier::verify_presented`] takes the scheme, the request's
//! `DPoP` header, its method and its URL as the client sent it (your service's external
//! origin plus the path, without the query). Each accepted proof's `jti` is remembered in
//! memory (bounded) so a captured proof cannot be replayed against this process. A DPoP
//! verification costs one signature verification more than a `Bearer` one.
//!
//! ```no_run
//! use tessera_verifier::dpop::{self, Presented};
//! use tessera_verifier::Verifier;
//!
//! # async fn demo(verifier: &Verifier, headers: &axum::http::HeaderMap) -> Result<(), tessera_verifier::Error> {
//! let authorization = headers["authorization"].to_str().unwrap_or_default();
//! let (token, presented) = match authorization.split_once(' ') {
//!     Some((scheme, token)) if scheme.eq_ignore_ascii_case("dpop") => (token, Presented::Dpop {
//!         proof: dpop::single(headers.get_all("dpop").iter().map(|v| v.as_bytes())),
//!         method: "GET",
//!         url: "https://api.example/notes".to_owned(),
//!     }),
//!     Some((_, token)) => (token, Presented::Bearer),
//!     None => ("", Presented::Bearer),
//! };
//! let claims = verifier.verify_presented(token, &presented).await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use tessera_token::access_token::{self, Expectations};
use tessera_token::revocations::{MAX_LIMIT, RevocationList};
use tessera_token::{Clock, PublicKeySet, SystemClock, Timestamp};
use tokio::task::AbortHandle;
use uuid::Uuid;

pub use tessera_token::dpop;
pub use tessera_token::{AccessClaims, InvalidToken};

/// The largest JWK Set read from the issuer; a larger answer is an error.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// The largest page of the revocation feed read: [`MAX_LIMIT`] entries take about 1 MB of
/// JSON, so this leaves room and still bounds what a broken issuer can make the verifier hold.
const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Pages followed in one poll before it gives up: [`MAX_LIMIT`] times this is far more
/// sessions than any window holds, and an issuer that keeps answering `next` forever cannot
/// keep a poll running forever.
const MAX_PAGES: usize = 10_000;

/// How far before the previous answer's `until` each revocation poll starts: revocations are
/// time-stamped by the issuer instance that made them a moment before they commit, and several
/// instances' clocks differ slightly. Re-reading a few seconds costs nothing.
const POLL_OVERLAP: Duration = Duration::from_secs(30);

/// Settings of a [`Verifier`]. [`VerifierConfig::new`] gives the defaults for an issuer running
/// with Tessera's defaults; change the fields that differ.
#[derive(Clone, Debug)]
pub struct VerifierConfig {
    /// The issuer: the `iss` tokens must carry, and the base of the default URLs
    /// (`TESSERA_ISSUER` of the server, e.g. `https://auth.example`).
    pub issuer: String,
    /// The `aud` tokens must carry. Defaults to the issuer (Tessera's default audience).
    pub audience: String,
    /// Where the JWK Set is. Defaults to `{issuer}/.well-known/jwks.json`.
    pub jwks_url: String,
    /// Forgiven clock skew for `exp` and `nbf`. Defaults to 5 s (`TESSERA_CLOCK_LEEWAY`).
    pub leeway: Duration,
    /// The issuer's access-token lifetime (`TESSERA_ACCESS_TTL`): a token claiming to live
    /// longer is refused, and revocations are remembered this long (plus the leeway). Defaults
    /// to 15 minutes.
    pub access_ttl: Duration,
    /// The least time between two JWKS fetches caused by tokens with an unknown `kid`.
    /// Defaults to 10 s. The first unknown `kid` after a quiet period is fetched at once, so a
    /// key rotation is picked up on its first token.
    pub jwks_refetch_interval: Duration,
    /// How often the JWK Set is fetched again anyway, so retired keys leave the cache. Defaults
    /// to 5 minutes.
    pub jwks_max_age: Duration,
    /// Timeout of each request to the issuer. Defaults to 5 s.
    pub request_timeout: Duration,
    /// Polling of `GET /auth/revocations`; `None` (the default) relies on token expiry alone.
    pub revocations: Option<RevocationsConfig>,
}

impl VerifierConfig {
    /// The defaults for `issuer` (its URL, without a trailing slash).
    pub fn new(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        Self {
            audience: issuer.clone(),
            jwks_url: format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')),
            issuer,
            leeway: access_token::DEFAULT_LEEWAY,
            access_ttl: access_token::DEFAULT_LIFETIME,
            jwks_refetch_interval: Duration::from_secs(10),
            jwks_max_age: Duration::from_secs(5 * 60),
            request_timeout: Duration::from_secs(5),
            revocations: None,
        }
    }
}

/// How to poll the issuer's revocations.
#[derive(Clone)]
pub struct RevocationsConfig {
    /// Where the list is. [`RevocationsConfig::new`] makes it `{issuer}/auth/revocations`.
    pub url: String,
    /// The shared secret, the issuer's `TESSERA_REVOCATIONS_TOKEN`. Never printed by `Debug`.
    pub token: String,
    /// How often to poll: the bound on how long a logout takes to reach this service. Defaults
    /// to 5 s.
    pub poll_interval: Duration,
    /// Entries asked for per page (`limit`), 1 to 10 000. Defaults to 5000.
    pub page_size: u32,
    /// How old the last successful poll may be (by the verifier's clock) before the list counts
    /// as stale and [`RevocationsConfig::when_stale`] applies. Must be longer than the poll
    /// interval. Defaults to 60 s.
    pub max_staleness: Duration,
    /// What [`Verifier::verify`] does while the list is stale. Defaults to
    /// [`StalePolicy::Refuse`].
    pub when_stale: StalePolicy,
}

impl RevocationsConfig {
    /// Polls `{issuer}/auth/revocations` every 5 s with `token`, 5000 entries a page, and
    /// refuses tokens once no poll has succeeded for 60 s.
    pub fn new(issuer: &str, token: impl Into<String>) -> Self {
        Self {
            url: format!("{}/auth/revocations", issuer.trim_end_matches('/')),
            token: token.into(),
            poll_interval: Duration::from_secs(5),
            page_size: 5000,
            max_staleness: Duration::from_secs(60),
            when_stale: StalePolicy::Refuse,
        }
    }
}

/// What [`Verifier::verify`] does once the revocation list is stale (no successful poll within
/// [`RevocationsConfig::max_staleness`]): the issuer or its feed has been unreachable, or
/// answering errors, for that long, so a session ended since would go unnoticed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StalePolicy {
    /// Fail every verification with [`Error::RevocationsStale`] until a poll succeeds: no
    /// revoked session is ever accepted, at the price of availability while the issuer is down.
    #[default]
    Refuse,
    /// Accept tokens on their signature and expiry alone, as if revocations were off, counting
    /// each in [`Health::accepted_while_stale`] and logging every failed poll as an error.
    /// Sessions ended while stale are accepted until a poll succeeds or their tokens expire.
    Accept,
}

impl fmt::Debug for RevocationsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationsConfig")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .field("poll_interval", &self.poll_interval)
            .field("page_size", &self.page_size)
            .field("max_staleness", &self.max_staleness)
            .field("when_stale", &self.when_stale)
            .finish()
    }
}

/// Why a token was not accepted, or the verifier could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token is refused: malformed, forged, expired, not for this audience, signed by an
    /// unknown key, or of a session that has ended. Answer `401 invalid_token`.
    #[error(transparent)]
    InvalidToken(#[from] InvalidToken),
    /// The token is bound to a DPoP key and its proof is missing, invalid, replayed or by
    /// another key. Answer `401 invalid_dpop_proof` with the challenge of
    /// [`dpop::challenge`].
    #[error(transparent)]
    InvalidDpopProof(dpop::InvalidProof),
    /// The issuer could not be reached or answered nonsense (at [`Verifier::connect`], or in an
    /// explicit [`Verifier::refresh_keys`] / [`Verifier::sync_revocations`]).
    #[error("{0}")]
    Issuer(String),
    /// The settings cannot work (a URL that is not http(s), a zero interval).
    #[error("invalid verifier settings: {0}")]
    Config(String),
    /// The token may be fine, but the revocation list is stale and the policy is
    /// [`StalePolicy::Refuse`]: whether its session has ended is unknown. Answer `503`.
    #[error("the revocation list is stale (last successful poll: {}): refusing tokens until the issuer's feed answers again", last_sync.map_or_else(|| "never".to_owned(), Timestamp::to_rfc3339))]
    RevocationsStale {
        /// When the last successful poll started (the verifier's clock), if any did.
        last_sync: Option<Timestamp>,
    },
}

impl Error {
    /// Whether the token itself was refused (rather than the issuer being unreachable).
    pub fn is_invalid_token(&self) -> bool {
        matches!(self, Self::InvalidToken(_))
    }

    /// Whether the token's DPoP proof was refused.
    pub fn is_invalid_dpop_proof(&self) -> bool {
        matches!(self, Self::InvalidDpopProof(_))
    }
}

/// Verifies access tokens of one issuer. Cheap to clone (clones share the cache and the
/// background task); the task stops when the last clone is dropped.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.inner.config)
            .field("keys", &self.inner.keys().len())
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: VerifierConfig,
    expect: Expectations,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    keys: RwLock<Arc<PublicKeySet>>,
    /// Held while fetching the JWKS, so concurrent requests with an unknown `kid` wait for one
    /// fetch instead of starting their own.
    fetching: tokio::sync::Mutex<FetchState>,
    /// Ended sessions and when they ended (the issuer's clock).
    revoked: RwLock<HashMap<Uuid, Timestamp>>,
    /// The `until` of the last revocation poll (the issuer's clock).
    revocations_until: Mutex<Option<Timestamp>>,
    /// Held for a whole poll (all its pages), so an explicit sync and the background one do not
    /// interleave.
    syncing: tokio::sync::Mutex<()>,
    /// How the polls went.
    sync: Mutex<SyncState>,
    accepted_while_stale: AtomicU64,
    refused_while_stale: AtomicU64,
    background: OnceLock<AbortHandle>,
    /// The `jti`s of the DPoP proofs accepted.
    dpop_jtis: dpop::JtiCache,
}

#[derive(Default)]
struct SyncState {
    /// When the last successful poll started (the verifier's clock).
    last_sync: Option<Timestamp>,
    failed_syncs: u64,
    consecutive_failures: u64,
    last_error: Option<String>,
}

/// What [`Verifier::health`] reports: how fresh the revocation list is, and counters a host can
/// export as metrics (they only grow).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// Whether revocations are polled at all ([`VerifierConfig::revocations`]).
    pub revocations: bool,
    /// When the last successful poll started, by the verifier's clock.
    pub last_sync: Option<Timestamp>,
    /// Whether the list is older than [`RevocationsConfig::max_staleness`] (always `false`
    /// without revocations).
    pub stale: bool,
    /// The policy applied while stale.
    pub when_stale: StalePolicy,
    /// Ended sessions known.
    pub revoked_sessions: usize,
    /// Polls that failed, in all.
    pub failed_syncs: u64,
    /// Polls that failed since the last successful one.
    pub consecutive_failures: u64,
    /// Why the last failed poll failed, until one succeeds.
    pub last_error: Option<String>,
    /// Tokens accepted while stale ([`StalePolicy::Accept`]).
    pub accepted_while_stale: u64,
    /// Tokens refused for staleness ([`StalePolicy::Refuse`]).
    pub refused_while_stale: u64,
}

struct FetchState {
    /// When a token with an unknown `kid` last caused a fetch.
    last_unknown_kid_fetch: Option<Instant>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.background.get() {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded values are plain data, intact even if a holder panicked.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn check_url(what: &str, url: &str) -> Result<(), Error> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{what} `{url}` is not an http(s) URL"
        )))
    }
}

impl Verifier {
    /// Checks the settings, fetches the issuer's JWK Set (and, with revocations on, the current
    /// revocation list, every page of it), and starts the background task that keeps both
    /// fresh. Fails when the issuer cannot be reached or refuses the revocations secret: a
    /// service should not start verifying with nothing to verify against. (The size of the
    /// feed never makes it fail: it is read a page at a time.) Must run inside a Tokio runtime.
    pub async fn connect(config: VerifierConfig) -> Result<Self, Error> {
        Self::connect_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Verifier::connect`] with the clock that judges `exp`, `nbf` and how long a revocation
    /// is remembered (tests, or a service that keeps time its own way). Both use this one
    /// clock, so a clock that lags the issuer's keeps revocations exactly as long as it keeps
    /// accepting the tokens they end.
    pub async fn connect_with_clock(
        config: VerifierConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        check_url("jwks_url", &config.jwks_url)?;
        if let Some(r) = &config.revocations {
            check_url("revocations url", &r.url)?;
            if r.poll_interval.is_zero() {
                return Err(Error::Config(
                    "the revocations poll interval must be longer than 0".into(),
                ));
            }
            if !(1..=MAX_LIMIT).contains(&r.page_size) {
                return Err(Error::Config(format!(
                    "the revocations page size must be from 1 to {MAX_LIMIT}"
                )));
            }
            if r.max_staleness <= r.poll_interval {
                return Err(Error::Config(
                    "the revocations max_staleness must be longer than the poll interval".into(),
                ));
            }
        }
        if config.jwks_max_age.is_zero() {
            return Err(Error::Config("jwks_max_age must be longer than 0".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tessera-verifier/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        let expect = Expectations {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: config.leeway,
            lifetime: config.access_ttl,
        };
        let inner = Arc::new(Inner {
            config,
            expect,
            http,
            clock,
            keys: RwLock::new(Arc::new(PublicKeySet::default())),
            fetching: tokio::sync::Mutex::new(FetchState {
                last_unknown_kid_fetch: None,
            }),
            revoked: RwLock::new(HashMap::new()),
            revocations_until: Mutex::new(None),
            syncing: tokio::sync::Mutex::new(()),
            sync: Mutex::new(SyncState::default()),
            accepted_while_stale: AtomicU64::new(0),
            refused_while_stale: AtomicU64::new(0),
            background: OnceLock::new(),
            dpop_jtis: dpop::JtiCache::default(),
        });
        inner.refresh_keys().await?;
        inner.sync_revocations().await?;
        let task = tokio::spawn(background(Arc::downgrade(&inner)));
        // Just created: nobody else can have set it.
        let _ = inner.background.set(task.abort_handle());
        Ok(Self { inner })
    }

    /// Verifies `token` (the Bearer token, without `Bearer `): the issuer's strict rules, then
    /// the revocation list. Fetches the JWKS again first when the token names a key not seen
    /// yet, unless a fetch for that reason happened within the refetch interval.
    ///
    /// A token bound to a DPoP key is refused here ([`InvalidToken::DpopBound`]): see
    /// [`Verifier::verify_presented`].
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, Error> {
        self.verify_presented(token, &dpop::Presented::Bearer).await
    }

    /// Verifies `token` as it was presented: [`Verifier::verify`]'s checks, then the binding
    /// (RFC 9449 §7): a bound token only as `DPoP` with a valid proof by its key, carrying its
    /// hash, whose `jti` this verifier has not accepted before; an unbound one only as `Bearer`.
    pub async fn verify_presented(
        &self,
        token: &str,
        presented: &dpop::Presented<'_>,
    ) -> Result<AccessClaims, Error> {
        let kid = access_token::unverified_kid(token)?;
        let mut keys = self.inner.keys();
        if keys.find(&kid).is_none() {
            keys = self.inner.keys_for_unknown_kid(&kid).await;
        }
        let now = self.now();
        let claims = access_token::verify(token, &*keys, &self.inner.expect, now)?;
        dpop::check_presented(
            &claims,
            token,
            presented,
            self.inner.config.leeway,
            now,
            &self.inner.dpop_jtis,
        )
        .map_err(|refusal| match refusal {
            dpop::BindingRefusal::Token(why) => Error::InvalidToken(why),
            dpop::BindingRefusal::Proof(why) => Error::InvalidDpopProof(why),
        })?;
        if self.is_revoked(claims.sid) {
            return Err(InvalidToken::SessionEnded.into());
        }
        if let Some(config) = &self.inner.config.revocations {
            let last_sync = lock(&self.inner.sync).last_sync;
            if self.inner.is_stale(config, last_sync) {
                match config.when_stale {
                    StalePolicy::Refuse => {
                        self.inner
                            .refused_while_stale
                            .fetch_add(1, Ordering::Relaxed);
                        return Err(Error::RevocationsStale { last_sync });
                    }
                    StalePolicy::Accept => {
                        self.inner
                            .accepted_while_stale
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        Ok(claims)
    }

    /// How fresh the revocation list is, and counters to export: see [`Health`]. A host's
    /// health check fails (or warns) while [`Health::stale`].
    pub fn health(&self) -> Health {
        let inner = &self.inner;
        let sync = lock(&inner.sync);
        let config = inner.config.revocations.as_ref();
        Health {
            revocations: config.is_some(),
            last_sync: sync.last_sync,
            stale: config.is_some_and(|c| inner.is_stale(c, sync.last_sync)),
            when_stale: config.map_or(StalePolicy::default(), |c| c.when_stale),
            revoked_sessions: read(&inner.revoked).len(),
            failed_syncs: sync.failed_syncs,
            consecutive_failures: sync.consecutive_failures,
            last_error: sync.last_error.clone(),
            accepted_while_stale: inner.accepted_while_stale.load(Ordering::Relaxed),
            refused_while_stale: inner.refused_while_stale.load(Ordering::Relaxed),
        }
    }

    /// Whether the session `sid` is known to have ended (from the revocation polls).
    pub fn is_revoked(&self, sid: Uuid) -> bool {
        read(&self.inner.revoked).contains_key(&sid)
    }

    /// The `kid`s of the cached keys.
    pub fn key_ids(&self) -> Vec<String> {
        self.inner
            .keys()
            .keys()
            .iter()
            .map(|k| k.kid.clone())
            .collect()
    }

    /// Fetches the JWK Set now (the background task does this every
    /// [`VerifierConfig::jwks_max_age`]).
    pub async fn refresh_keys(&self) -> Result<(), Error> {
        self.inner.refresh_keys().await
    }

    /// Polls the revocation list now, following its pages to the end (the background task does
    /// this every poll interval). Returns how many ended sessions are known. Does nothing
    /// without revocations configured. A failure is also recorded in [`Verifier::health`].
    pub async fn sync_revocations(&self) -> Result<usize, Error> {
        self.inner.sync_revocations().await
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn keys(&self) -> Arc<PublicKeySet> {
        read(&self.keys).clone()
    }

    /// The key set to verify a token whose `kid` is not cached: fetched again unless a token
    /// with an unknown `kid` caused a fetch within the refetch interval.
    async fn keys_for_unknown_kid(&self, kid: &str) -> Arc<PublicKeySet> {
        let mut state = self.fetching.lock().await;
        // Another request may have fetched while this one waited for the lock.
        let keys = self.keys();
        if keys.find(kid).is_some() {
            return keys;
        }
        let now = Instant::now();
        if state
            .last_unknown_kid_fetch
            .is_some_and(|at| now.duration_since(at) < self.config.jwks_refetch_interval)
        {
            return keys;
        }
        state.last_unknown_kid_fetch = Some(now);
        match self.fetch_keys().await {
            Ok(fresh) => self.store_keys(fresh),
            Err(e) => {
                tracing::warn!(error = %e, "fetching the issuer's keys for an unknown kid failed");
                keys
            }
        }
    }

    async fn refresh_keys(&self) -> Result<(), Error> {
        let _fetching = self.fetching.lock().await;
        let fresh = self.fetch_keys().await?;
        self.store_keys(fresh);
        Ok(())
    }

    fn store_keys(&self, fresh: PublicKeySet) -> Arc<PublicKeySet> {
        let fresh = Arc::new(fresh);
        *write(&self.keys) = fresh.clone();
        fresh
    }

    async fn fetch_keys(&self) -> Result<PublicKeySet, Error> {
        let url = &self.config.jwks_url;
        let body = self.get(url, None, MAX_JWKS_BYTES).await?;
        let keys = PublicKeySet::from_json(&body)
            .map_err(|e| Error::Issuer(format!("the JWK Set at {url} is unusable: {e}")))?;
        if keys.is_empty() {
            // An HS256 issuer publishes no key: nothing could ever verify.
            return Err(Error::Issuer(format!(
                "the JWK Set at {url} has no usable key (is the issuer signing with HS256?)"
            )));
        }
        tracing::debug!(keys = keys.len(), "fetched the issuer's keys");
        Ok(keys)
    }

    /// Whether a list last synced at `last_sync` is stale now.
    fn is_stale(&self, config: &RevocationsConfig, last_sync: Option<Timestamp>) -> bool {
        last_sync.is_none_or(|at| self.clock.now().since(at) > config.max_staleness)
    }

    async fn sync_revocations(&self) -> Result<usize, Error> {
        let Some(config) = &self.config.revocations else {
            return Ok(0);
        };
        let _syncing = self.syncing.lock().await;
        let started = self.clock.now();
        let result = self.read_feed(config).await;
        let mut sync = lock(&self.sync);
        match &result {
            Ok(_) => {
                sync.last_sync = Some(started);
                sync.consecutive_failures = 0;
                sync.last_error = None;
            }
            Err(e) => {
                sync.failed_syncs += 1;
                sync.consecutive_failures += 1;
                sync.last_error = Some(e.to_string());
            }
        }
        result
    }

    /// Reads the feed from a little before the last poll's `until`, page after page, adding
    /// what it lists. Entries of the pages read before a failure are kept (they are true), but
    /// the poll counts as failed and the next one starts from the same point.
    async fn read_feed(&self, config: &RevocationsConfig) -> Result<usize, Error> {
        let since = lock(&self.revocations_until).map(|until| until.minus(POLL_OVERLAP));
        let bad =
            |what: &str| Error::Issuer(format!("the revocation list at {} {what}", config.url));
        let mut cursor: Option<String> = None;
        // The first page's `until`: every revocation committed before it is on some page, so
        // the next poll starts a little before it.
        let mut first_until = None;
        for _ in 0..MAX_PAGES {
            let url = page_url(config, since, cursor.as_deref());
            let body = self.get(&url, Some(&config.token), MAX_PAGE_BYTES).await?;
            let list: RevocationList =
                serde_json::from_slice(&body).map_err(|e| bad(&format!("is malformed: {e}")))?;
            let until =
                Timestamp::parse_rfc3339(&list.until).ok_or_else(|| bad("has a bad `until`"))?;
            first_until.get_or_insert(until);
            {
                let mut revoked = write(&self.revoked);
                for entry in list.revocations {
                    let at = Timestamp::parse_rfc3339(&entry.revoked_at).unwrap_or(until);
                    revoked.insert(entry.session_id, at);
                }
            }
            match list.next {
                None => return Ok(self.finish_sync(first_until.unwrap_or(until))),
                Some(next) if cursor.as_ref() == Some(&next) => {
                    return Err(bad("answered the same `next` twice"));
                }
                Some(next) => cursor = Some(next),
            }
        }
        Err(bad(&format!("had more than {MAX_PAGES} pages")))
    }

    /// After the last page: forgets what can no longer matter and remembers where to poll from.
    fn finish_sync(&self, until: Timestamp) -> usize {
        // Tokens of sessions ended longer ago than this have all expired, by this verifier's
        // own clock, the one `exp` is checked with: the issuer's `until` would forget a
        // revocation early on a verifier whose clock lags, while it still accepts the tokens.
        let forget_before = self
            .clock
            .now()
            .minus(self.config.access_ttl.saturating_add(self.config.leeway));
        let known = {
            let mut revoked = write(&self.revoked);
            revoked.retain(|_, at| *at >= forget_before);
            revoked.len()
        };
        *lock(&self.revocations_until) = Some(until);
        known
    }

    /// A GET to the issuer: `200` with a body of at most `max_bytes`, or an error.
    async fn get(
        &self,
        url: &str,
        bearer: Option<&str>,
        max_bytes: usize,
    ) -> Result<Vec<u8>, Error> {
        let mut request = self.http.get(url);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let unreachable = |e: reqwest::Error| {
            let hint = if url.starts_with("https://") && (e.is_builder() || e.is_connect()) {
                " (for https, reqwest needs a TLS feature: see the tessera-verifier docs)"
            } else {
                ""
            };
            Error::Issuer(format!("GET {url} failed: {e}{hint}"))
        };
        let mut response = request.send().await.map_err(unreachable)?;
        match response.status().as_u16() {
            200 => {}
            401 if bearer.is_some() => {
                return Err(Error::Issuer(format!(
                    "GET {url}: the issuer refused the revocations token (401)"
                )));
            }
            404 if bearer.is_some() => {
                return Err(Error::Issuer(format!(
                    "GET {url}: 404, the issuer offers no revocations (is TESSERA_REVOCATIONS_TOKEN set on it?)"
                )));
            }
            status => return Err(Error::Issuer(format!("GET {url} answered {status}"))),
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > max_bytes {
                return Err(Error::Issuer(format!(
                    "GET {url}: the answer is over {max_bytes} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Keeps the keys and the revocations fresh until the verifier is dropped.
async fn background(inner: Weak<Inner>) {
    let Some(first) = inner.upgrade() else { return };
    let start = tokio::time::Instant::now();
    let mut keys = interval(start, first.config.jwks_max_age);
    let mut revocations = first
        .config
        .revocations
        .as_ref()
        .map(|r| interval(start, r.poll_interval));
    drop(first);
    loop {
        tokio::select! {
            _ = keys.tick() => {
                let Some(inner) = inner.upgrade() else { return };
                if let Err(e) = inner.refresh_keys().await {
                    tracing::warn!(error = %e, "refreshing the issuer's keys failed; keeping the cached ones");
                }
            }
            _ = async {
                match revocations.as_mut() {
                    Some(r) => r.tick().await,
                    None => std::future::pending().await,
                }
            } => {
                let Some(inner) = inner.upgrade() else { return };
                if let Err(e) = inner.sync_revocations().await {
                    inner.report_failed_poll(&e);
                }
            }
        }
    }
}

impl Inner {
    fn report_failed_poll(&self, e: &Error) {
        let Some(config) = &self.config.revocations else {
            return;
        };
        let last_sync = lock(&self.sync).last_sync;
        if !self.is_stale(config, last_sync) {
            tracing::warn!(error = %e, "polling revocations failed; keeping the known ones");
            return;
        }
        let last_sync = last_sync.map(Timestamp::to_rfc3339);
        match config.when_stale {
            StalePolicy::Refuse => tracing::error!(
                error = %e, ?last_sync,
                "polling revocations failed and the list is stale: refusing every token"
            ),
            StalePolicy::Accept => tracing::error!(
                error = %e, ?last_sync,
                "polling revocations failed and the list is stale: accepting tokens without \
                 knowing whether their sessions have ended"
            ),
        }
    }
}

/// The URL of one page: the configured one with `since` (after the first poll), `limit`, and
/// the previous page's `next`.
fn page_url(config: &RevocationsConfig, since: Option<Timestamp>, cursor: Option<&str>) -> String {
    let mut url = config.url.clone();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    let mut add = |name: &str, value: &str| {
        url.push(sep);
        url.push_str(name);
        url.push('=');
        url.push_str(&query_escape(value));
        sep = '&';
    };
    if let Some(since) = since {
        add("since", &since.as_millis().to_string());
    }
    add("limit", &config.page_size.to_string());
    if let Some(cursor) = cursor {
        add("cursor", cursor);
    }
    url
}

/// Percent-encodes everything but RFC 3986's unreserved characters (the cursor is opaque: an
/// issuer may put anything in it).
fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn interval(start: tokio::time::Instant, period: Duration) -> tokio::time::Interval {
    let mut i = tokio::time::interval_at(start + period, period);
    // After a slow poll, wait a full period again rather than catching up in a burst.
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}

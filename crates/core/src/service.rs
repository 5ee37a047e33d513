//! [`Tessera`]: the session service. It applies the rules, signs tokens and talks to a
//! [`Store`]; it knows nothing of HTTP.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::access_token::{self, AccessClaims, Expectations};
use crate::domain::{Password, Username};
use crate::error::{Error, RefreshRejection, StoreError};
use crate::keys::{ACTIVATION_DELAY, Kek, KeySet, SealedBlob, SigningAlg, StoredKey, random_bytes};
use crate::password::{Memory, hash_password_with, verify_password_with};
use crate::refresh_token::RefreshKey;
use crate::rules::{Decision, Lifetimes, decide};
use crate::store::{CurrentRotation, SessionRecord, Store, User};
use crate::throttle::{LoginThrottle, ThrottlePolicy};
use crate::time::{Clock, Timestamp};

const REFRESH_SECRET: &str = "refresh-token";
/// Longer user agents are cut: the field is for recognising a device, not for storage abuse.
const MAX_USER_AGENT: usize = 256;

/// Everything that shapes tokens and sessions. Defaults are the spec's.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `iss` of access tokens.
    pub issuer: String,
    /// `aud` of access tokens.
    pub audience: String,
    /// Access-token lifetime (default 15 minutes).
    pub access_ttl: Duration,
    /// Idle timeout, absolute lifetime and reuse grace of sessions (7 days, 30 days, 10 s).
    pub lifetimes: Lifetimes,
    /// Clock-skew leeway for `exp`/`nbf` (5 s).
    pub clock_leeway: Duration,
    /// Algorithm for new signing keys (EdDSA).
    pub signing_alg: SigningAlg,
    /// Whether anyone may register (`true`), or only the CLI adds users.
    pub registration_open: bool,
    /// Login throttling limits.
    pub throttle: ThrottlePolicy,
}

impl Settings {
    /// The spec's defaults for an issuer (the audience defaults to the issuer).
    pub fn new(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        Self {
            audience: issuer.clone(),
            issuer,
            access_ttl: Duration::from_secs(15 * 60),
            lifetimes: Lifetimes {
                idle: Duration::from_secs(7 * 86_400),
                absolute: Duration::from_secs(30 * 86_400),
                reuse_grace: Duration::from_secs(10),
            },
            clock_leeway: Duration::from_secs(5),
            signing_alg: SigningAlg::EdDSA,
            registration_open: true,
            throttle: ThrottlePolicy::default(),
        }
    }
}

/// Where a request came from, recorded on the session it creates.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// Client IP (after trusted-proxy resolution).
    pub ip: Option<IpAddr>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
}

/// What a login or refresh hands back.
#[derive(Clone)]
pub struct Issued {
    /// The signed access token.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: u64,
    /// The session it belongs to.
    pub session_id: Uuid,
    /// The session's current refresh token (wire form).
    pub refresh_token: String,
    /// How long the refresh token can still be used: the idle timeout or what is left of the
    /// absolute lifetime, whichever is shorter.
    pub refresh_ttl: Duration,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("session_id", &self.session_id)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// A live session, as listed to its owner or an operator.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// The stored record.
    pub record: SessionRecord,
    /// When it ends unless refreshed (idle or absolute, whichever is first).
    pub expires_at: Timestamp,
}

/// The session service. Cheap to share behind an `Arc`; holds no global state, so one process
/// can run several.
pub struct Tessera {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    kek: Option<Kek>,
    keys: RwLock<Arc<KeySet>>,
    refresh_key: RefreshKey,
    throttle: Mutex<LoginThrottle>,
    /// Verified against when the user does not exist, so both cases cost one argon2 run.
    dummy_hash: String,
    /// Bounds concurrent argon2 runs (19 MiB each) to the CPU count.
    hashing: Arc<Semaphore>,
    /// Their working memory, reused: at most one per permit of `hashing` (see `Memory`).
    hashing_memory: Arc<Mutex<Vec<Memory>>>,
}

impl std::fmt::Debug for Tessera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tessera")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Tessera {
    /// Opens the service on `store`: loads (or, on first start, creates) the refresh-token
    /// secret and a signing key for `settings.signing_alg`.
    pub async fn open(
        store: Arc<dyn Store>,
        settings: Settings,
        kek: Option<Kek>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let refresh_key = RefreshKey::new(&load_or_create_secret(&*store, kek.as_ref()).await?);
        let now = clock.now();
        let stored = store.keys().await?;
        if !stored.iter().any(|k| k.alg == settings.signing_alg) {
            // The very first key signs at once; a later one (an algorithm change) waits until
            // every instance can have published it.
            let activate_at = if stored.is_empty() {
                now
            } else {
                now.plus(ACTIVATION_DELAY)
            };
            let key = StoredKey::generate(settings.signing_alg, kek.as_ref(), now, activate_at)?;
            store.insert_key(&key).await?;
            tracing::info!(kid = %key.kid, alg = %key.alg, "created a signing key");
        }
        let keys = KeySet::load(&store.keys().await?, kek.as_ref())?;
        let mut memory = Memory::default();
        let (dummy_hash, memory) = blocking(move || {
            let phc = hash_password_with(b"tessera dummy password", &mut memory);
            (phc, memory)
        })
        .await?;
        let dummy_hash = dummy_hash?;
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            store,
            clock,
            throttle: Mutex::new(LoginThrottle::new(settings.throttle)),
            settings,
            kek,
            keys: RwLock::new(Arc::new(keys)),
            refresh_key,
            dummy_hash,
            hashing: Arc::new(Semaphore::new(cpus)),
            hashing_memory: Arc::new(Mutex::new(vec![memory])),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The current time, from the service's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The store behind the service.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn key_set(&self) -> Arc<KeySet> {
        // A poisoned lock only means a panic elsewhere mid-swap of an `Arc`: the value is intact.
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads the keys from the store (run every [`crate::KEY_RELOAD_INTERVAL`], so keys
    /// rotated by another instance or the CLI are picked up).
    pub async fn reload_keys(&self) -> Result<(), Error> {
        let stored = self.store.keys().await?;
        let current = self.key_set();
        let same = stored.len() == current.keys().len()
            && stored
                .iter()
                .all(|s| current.keys().iter().any(|k| k.kid == s.kid));
        if !same {
            let fresh = Arc::new(KeySet::load(&stored, self.kek.as_ref())?);
            *self.keys.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        }
        Ok(())
    }

    /// Adds a new signing key of the configured algorithm. It is published at once and signs
    /// from [`ACTIVATION_DELAY`] later.
    pub async fn rotate_keys(&self) -> Result<StoredKey, Error> {
        let now = self.now();
        let key = StoredKey::generate(
            self.settings.signing_alg,
            self.kek.as_ref(),
            now,
            now.plus(ACTIVATION_DELAY),
        )?;
        self.store.insert_key(&key).await?;
        self.reload_keys().await?;
        Ok(key)
    }

    /// Every key with its state at this moment, oldest first: (kid, alg, created, activates,
    /// signing now, published now).
    pub fn key_report(&self) -> Vec<KeyReport> {
        let keys = self.key_set();
        let now = self.now();
        let signing = keys.signing_key(now).map(|k| k.kid.clone());
        let published: Vec<String> = keys
            .published(now, self.token_lifetime())
            .map(|k| k.kid.clone())
            .collect();
        keys.keys()
            .iter()
            .map(|k| KeyReport {
                kid: k.kid.clone(),
                alg: k.alg,
                created_at: k.created_at,
                activate_at: k.activate_at,
                signing: signing.as_deref() == Some(k.kid.as_str()),
                published: published.contains(&k.kid),
            })
            .collect()
    }

    /// How long a signed token can be accepted: its lifetime plus the leeway.
    fn token_lifetime(&self) -> Duration {
        self.settings.access_ttl + self.settings.clock_leeway
    }

    /// The JWK Set to publish.
    pub fn jwks(&self) -> JwkSet {
        self.key_set().jwks(self.now(), self.token_lifetime())
    }

    /// Self-registration: refused when registration is closed.
    pub async fn register(&self, username: &str, password: String) -> Result<User, Error> {
        if !self.settings.registration_open {
            return Err(Error::RegistrationClosed);
        }
        self.create_user(username, password).await
    }

    /// Adds a user whatever the registration setting (the CLI's `user add`).
    pub async fn create_user(&self, username: &str, password: String) -> Result<User, Error> {
        let username = Username::parse(username)?;
        let password = Password::parse(password)?;
        let password_hash = self.hash(password).await?;
        let user = User {
            id: Uuid::new_v4(),
            username: username.as_str().to_owned(),
            password_hash,
            created_at: self.now(),
        };
        match self.store.insert_user(&user).await {
            Ok(()) => Ok(user),
            Err(StoreError::Conflict) => Err(Error::UsernameTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>, Error> {
        Ok(self.store.users().await?)
    }

    async fn hash(&self, password: Password) -> Result<String, Error> {
        self.with_argon2(move |memory| hash_password_with(password.expose(), memory))
            .await?
    }

    async fn verify_hash(&self, password: Vec<u8>, phc: String) -> Result<bool, Error> {
        self.with_argon2(move |memory| verify_password_with(&password, &phc, memory))
            .await
    }

    /// Runs one argon2 computation off the executor, at most one per CPU at a time, in reused
    /// working memory. The permit and the memory are given back when the computation ends, even
    /// if the request that asked for it is gone by then (a client that hung up mid-login), so
    /// the pool never holds more buffers than there are permits.
    async fn with_argon2<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let permit = self
            .hashing
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("hashing closed".into()))?;
        let pool = self.hashing_memory.clone();
        blocking(move || {
            let mut memory = lock_pool(&pool).pop().unwrap_or_default();
            let out = f(&mut memory);
            lock_pool(&pool).push(memory);
            drop(permit);
            out
        })
        .await
    }

    /// Checks a username and password and opens a new session. A refresh token the client may
    /// already hold is never adopted: every login starts a new token family.
    pub async fn login(
        &self,
        username: &str,
        password: String,
        client: &ClientInfo,
    ) -> Result<Issued, Error> {
        let username = Username::parse(username)?;
        if password.len() > 1024 {
            return Err(Error::InvalidRequest(
                "password must be 8 to 1024 bytes long".into(),
            ));
        }
        let key = username.key();
        let now = self.now();
        if let Err(retry_after) = self.lock_throttle().check(&key, client.ip, now) {
            metrics::counter!("tessera_logins_total", "outcome" => "throttled").increment(1);
            return Err(Error::RateLimited { retry_after });
        }
        let user = self.store.user_by_name(&key).await?;
        let phc = user
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |u| u.password_hash.clone());
        let matches = self.verify_hash(password.into_bytes(), phc).await?;
        let now = self.now();
        let user = match user {
            Some(user) if matches => user,
            _ => {
                self.lock_throttle().record_failure(&key, client.ip, now);
                metrics::counter!("tessera_logins_total", "outcome" => "failed").increment(1);
                return Err(Error::InvalidCredentials);
            }
        };
        self.lock_throttle().record_success(&key);

        let session_id = Uuid::new_v4();
        let token = self.refresh_key.first(session_id, random_bytes::<32>()?);
        let record = SessionRecord {
            id: session_id,
            user_id: user.id,
            username: user.username.clone(),
            generation: 0,
            token_hash: self.refresh_key.hash(&token).to_vec(),
            created_at: now,
            rotated_at: now,
            last_used_at: now,
            revoked_at: None,
            revoked_reason: None,
            user_agent: client
                .user_agent
                .as_deref()
                .map(|ua| truncate(ua, MAX_USER_AGENT)),
            ip: client.ip,
        };
        self.store.insert_session(&record).await?;
        metrics::counter!("tessera_logins_total", "outcome" => "ok").increment(1);
        tracing::info!(user_id = %user.id, session_id = %session_id, "login");
        self.issue(&record, token.encode(), now)
    }

    fn lock_throttle(&self) -> std::sync::MutexGuard<'_, LoginThrottle> {
        // The throttle holds counters only; after a panic elsewhere they are still usable.
        self.throttle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies the refresh rules to a presented token (`None` or empty: none was sent).
    pub async fn refresh(
        &self,
        presented: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Issued, Error> {
        let result = self.try_refresh(presented, client).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(Error::InvalidRefreshToken(r)) => r.as_str(),
            Err(_) => "error",
        };
        metrics::counter!("tessera_refreshes_total", "outcome" => outcome).increment(1);
        result
    }

    async fn try_refresh(
        &self,
        presented: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Issued, Error> {
        let reject = |r| Err(Error::InvalidRefreshToken(r));
        let Some(text) = presented.filter(|t| !t.is_empty()) else {
            return reject(RefreshRejection::Missing);
        };
        let Some(token) = self.refresh_key.parse(text) else {
            return reject(RefreshRejection::Unknown);
        };
        // The common case, the session's current token, live: one conditional UPDATE that
        // checks what `decide` would and rotates. Anything else (a replay, reuse, a revoked or
        // expired session, a lost race) changes nothing and goes through the rules below.
        let now = self.now();
        let successor = self.refresh_key.successor(&token);
        let lifetimes = &self.settings.lifetimes;
        let rotation = CurrentRotation {
            id: token.session_id(),
            generation: token.generation(),
            current_hash: &self.refresh_key.hash(&token),
            new_hash: &self.refresh_key.hash(&successor),
            now,
            used_after: now.minus(lifetimes.idle),
            created_after: now.minus(lifetimes.absolute),
        };
        if let Some(record) = self.store.rotate_current(&rotation).await? {
            return self.issue(&record, successor.encode(), now);
        }
        // A lost compare-and-swap means another request rotated this token a moment ago; the
        // reload then sees it as the predecessor. Three rounds cover rotation then revocation.
        for _ in 0..3 {
            let Some(record) = self.store.session(token.session_id()).await? else {
                return reject(RefreshRejection::Unknown);
            };
            let now = self.now();
            match decide(
                &record.state(),
                &token,
                &self.refresh_key,
                now,
                &self.settings.lifetimes,
            ) {
                Decision::Rotate { successor } => {
                    let hash = self.refresh_key.hash(&successor);
                    if self
                        .store
                        .rotate_session(record.id, record.generation, &hash, now)
                        .await?
                    {
                        let record = SessionRecord {
                            last_used_at: now,
                            ..record
                        };
                        return self.issue(&record, successor.encode(), now);
                    }
                }
                Decision::Replay { successor } => {
                    // Counted apart: a steady rate means clients retry or tabs race.
                    metrics::counter!("tessera_refresh_grace_replays_total").increment(1);
                    return self.issue(&record, successor.encode(), now);
                }
                Decision::Reused => {
                    self.store.revoke_session(record.id, now, "reused").await?;
                    metrics::counter!("tessera_refresh_reuse_detected_total").increment(1);
                    tracing::warn!(
                        target: "tessera::security",
                        event = "refresh_token_reused",
                        user_id = %record.user_id,
                        session_id = %record.id,
                        ip = ?client.ip,
                        presented_generation = token.generation(),
                        current_generation = record.generation,
                        "refresh token reuse detected: session revoked"
                    );
                    return reject(RefreshRejection::Reused);
                }
                Decision::Reject(r) => return reject(r),
            }
        }
        Err(Error::Internal(
            "refresh kept losing its compare-and-swap".into(),
        ))
    }

    fn issue(
        &self,
        record: &SessionRecord,
        refresh_token: String,
        now: Timestamp,
    ) -> Result<Issued, Error> {
        let keys = self.key_set();
        let key = keys
            .signing_key(now)
            .ok_or_else(|| Error::Internal("no signing key is active".into()))?;
        let iat = now.as_secs();
        let ttl = self.settings.access_ttl.as_secs();
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            sub: record.user_id,
            aud: self.settings.audience.clone(),
            exp: iat.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
            iat,
            nbf: iat,
            jti: Uuid::new_v4(),
            sid: record.id,
            username: record.username.clone(),
        };
        let lifetimes = &self.settings.lifetimes;
        Ok(Issued {
            access_token: access_token::issue(&claims, key)?,
            expires_in: ttl,
            session_id: record.id,
            refresh_token,
            refresh_ttl: record.state().expires_at(lifetimes).since(now),
        })
    }

    /// Ends the session of a presented refresh token. Idempotent: no token, an unknown one, or
    /// an already-ended session is not an error.
    pub async fn logout(&self, presented: Option<&str>) -> Result<(), Error> {
        let Some(token) = presented.and_then(|t| self.refresh_key.parse(t)) else {
            return Ok(());
        };
        let Some(record) = self.store.session(token.session_id()).await? else {
            return Ok(());
        };
        // Any token of the family (current or older: the tag proves we issued it) may end it.
        if token.generation() <= record.generation
            && self
                .store
                .revoke_session(record.id, self.now(), "logout")
                .await?
        {
            tracing::info!(user_id = %record.user_id, session_id = %record.id, "logout");
        }
        Ok(())
    }

    /// Verifies an access token without touching the store: signature, header, claims.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, Error> {
        let expect = Expectations {
            issuer: self.settings.issuer.clone(),
            audience: self.settings.audience.clone(),
            leeway: self.settings.clock_leeway,
            lifetime: self.settings.access_ttl,
        };
        access_token::verify(token, &self.key_set(), &expect, self.now())
    }

    /// Verifies an access token and checks that its session is still live.
    pub async fn verify_live(&self, token: &str) -> Result<AccessClaims, Error> {
        let claims = self.verify(token)?;
        match self.store.session(claims.sid).await? {
            Some(s)
                if s.user_id == claims.sub
                    && s.state().is_live(self.now(), &self.settings.lifetimes) =>
            {
                Ok(claims)
            }
            _ => Err(Error::InvalidToken("the token's session has ended")),
        }
    }

    /// How far back [`Tessera::revocations`] reaches: the access-token lifetime plus the clock
    /// leeway. A session revoked earlier has no access token left that anyone would accept.
    pub fn revocation_window(&self) -> Duration {
        self.token_lifetime()
    }

    /// Sessions revoked at or after `since` (by logout, logout everywhere, revocation or reuse
    /// detection), for resource services that verify access tokens on their own and must
    /// refuse those of ended sessions. `since` is clamped to the [revocation
    /// window](Tessera::revocation_window); `None` asks for the whole window.
    pub async fn revocations(&self, since: Option<Timestamp>) -> Result<Revocations, Error> {
        let until = self.now();
        let window_start = Timestamp::from_millis(until.as_millis().saturating_sub(
            i64::try_from(self.revocation_window().as_millis()).unwrap_or(i64::MAX),
        ));
        let since = since.map_or(window_start, |s| s.max(window_start));
        let sessions = self.store.sessions_revoked_since(since).await?;
        Ok(Revocations {
            since,
            until,
            sessions,
        })
    }

    /// Ends every session of a user. Returns how many were live.
    pub async fn logout_all(&self, user_id: Uuid) -> Result<u64, Error> {
        let n = self
            .store
            .revoke_user_sessions(user_id, self.now(), "logout_all")
            .await?;
        tracing::info!(%user_id, sessions = n, "logout everywhere");
        Ok(n)
    }

    /// Live sessions, of one user or of everybody, most recently used first.
    pub async fn sessions(&self, user_id: Option<Uuid>) -> Result<Vec<SessionInfo>, Error> {
        let now = self.now();
        let lifetimes = &self.settings.lifetimes;
        Ok(self
            .store
            .unrevoked_sessions(user_id)
            .await?
            .into_iter()
            .filter(|r| r.state().is_live(now, lifetimes))
            .map(|record| SessionInfo {
                expires_at: record.state().expires_at(lifetimes),
                record,
            })
            .collect())
    }

    /// Revokes one live session. With `owner`, only that user's; otherwise [`Error::NotFound`].
    pub async fn revoke_session(
        &self,
        id: Uuid,
        owner: Option<Uuid>,
        reason: &str,
    ) -> Result<(), Error> {
        let now = self.now();
        match self.store.session(id).await? {
            Some(s)
                if owner.is_none_or(|o| o == s.user_id)
                    && s.state().is_live(now, &self.settings.lifetimes) =>
            {
                self.store.revoke_session(id, now, reason).await?;
                tracing::info!(user_id = %s.user_id, session_id = %id, reason, "session revoked");
                Ok(())
            }
            _ => Err(Error::NotFound),
        }
    }

    /// Revokes every session of the named user (the CLI's `sessions revoke --user`).
    pub async fn revoke_user(&self, username: &str) -> Result<u64, Error> {
        let key = Username::parse(username)?.key();
        let user = self
            .store
            .user_by_name(&key)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(self
            .store
            .revoke_user_sessions(user.id, self.now(), "admin")
            .await?)
    }

    /// The user with this name.
    pub async fn user(&self, username: &str) -> Result<User, Error> {
        let key = Username::parse(username)?.key();
        self.store.user_by_name(&key).await?.ok_or(Error::NotFound)
    }

    /// Deletes sessions that ended more than `retention` ago. Returns how many.
    pub async fn purge_ended_sessions(&self, retention: Duration) -> Result<u64, Error> {
        let cutoff = Timestamp::from_millis(
            self.now().as_millis() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX),
        );
        let l = &self.settings.lifetimes;
        let back = |d: Duration| {
            Timestamp::from_millis(
                cutoff
                    .as_millis()
                    .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            )
        };
        Ok(self
            .store
            .delete_sessions(cutoff, back(l.idle), back(l.absolute))
            .await?)
    }

    /// Succeeds when the store answers.
    pub async fn ready(&self) -> Result<(), Error> {
        Ok(self.store.ping().await?)
    }
}

/// What [`Tessera::revocations`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocations {
    /// The start of the period covered (the requested `since`, clamped to the window).
    pub since: Timestamp,
    /// The issuer's clock when the list was read. Poll again with a `since` a little before it
    /// (revocations are time-stamped by the instance that made them, a moment before they
    /// commit, and instances' clocks differ slightly).
    pub until: Timestamp,
    /// `(session id, revoked at)`, oldest revocation first.
    pub sessions: Vec<(Uuid, Timestamp)>,
}

/// A key and its state, for `tessera keys list`.
#[derive(Clone, Debug)]
pub struct KeyReport {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlg,
    /// Created.
    pub created_at: Timestamp,
    /// Signs from.
    pub activate_at: Timestamp,
    /// Whether it signs new tokens now.
    pub signing: bool,
    /// Whether it is in the JWKS now.
    pub published: bool,
}

async fn load_or_create_secret(store: &dyn Store, kek: Option<&Kek>) -> Result<Vec<u8>, Error> {
    if store.secret(REFRESH_SECRET).await?.is_none() {
        let fresh = SealedBlob::seal(
            kek,
            REFRESH_SECRET,
            &random_bytes::<{ RefreshKey::SECRET_LEN }>()?,
        )?;
        store
            .insert_secret_if_absent(REFRESH_SECRET, &fresh)
            .await?;
    }
    // Read back: when instances start together, the first writer's secret is everyone's.
    let blob = store
        .secret(REFRESH_SECRET)
        .await?
        .ok_or_else(|| Error::Internal("the refresh-token secret vanished".into()))?;
    blob.open(kek, REFRESH_SECRET)
}

fn lock_pool(pool: &Mutex<Vec<Memory>>) -> std::sync::MutexGuard<'_, Vec<Memory>> {
    // A list of buffers: after a panic elsewhere it is still a list of buffers.
    pool.lock().unwrap_or_else(|e| e.into_inner())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("blocking task failed: {e}")))
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

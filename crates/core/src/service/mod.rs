//! [`Tessera`]: the session service. It applies the rules, signs tokens and talks to a
//! [`Store`]; it knows nothing of HTTP.
//!
//! One capability per file, each adding an `impl Tessera` block: `users.rs` (registration and
//! look-ups), `clients.rs` (OAuth clients, their authentication, introspection and
//! revocation), `login.rs`, `refresh.rs` (the refresh rules and logout), `sessions.rs` (listing,
//! revoking, purging), `accounts.rs` (password change and reset, disable, enable, delete),
//! `verify.rs` (access tokens and the revocation feed), `keys.rs` (the key ring's operations),
//! `events.rs` (the outbox: recording the events no other change carries, and delivery's side).
//! `throttle.rs` applies the login throttle's rules to counters kept in the store. The parts with
//! state of their own live beside the service: the argon2 scheduler ([`Hasher`]) and the key
//! ring ([`KeyRing`]).

mod accounts;
mod clients;
mod dpop;
mod events;
mod keys;
mod login;
mod refresh;
mod sessions;
mod telemetry;
mod throttle;
mod users;
mod verify;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use uuid::Uuid;

pub use accounts::PasswordReset;
pub use clients::{ClientCredentials, ClientSecret, Introspection};
pub use verify::Revocations;

use crate::access_token::{self, AccessClaims, Confirmation};
use crate::device_token::{DeviceKey, DeviceToken};
use crate::error::Error;
use crate::events::EventSealer;
use crate::hasher::Hasher;
use crate::keys::{Kek, KeyRing, SealedBlob, random_bytes};
use crate::refresh_token::RefreshKey;
use crate::reset_token::ResetKey;
use crate::settings::Settings;
use crate::store::{SessionRecord, Store};
use crate::time::{Clock, Timestamp};
use tessera_token::dpop::{InvalidProof, JtiCache};

const REFRESH_SECRET: &str = "refresh-token";

/// Where a request came from, recorded on the session it creates. `Debug` hides the device
/// tokens.
#[derive(Clone, Default)]
pub struct ClientInfo {
    /// Client IP (after trusted-proxy resolution).
    pub ip: Option<IpAddr>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// The device tokens the client presented at login (the `tessera_device` cookies and the
    /// body's `device_token`); any valid one for the account exempts it from the username's
    /// hold.
    pub device_tokens: Vec<String>,
    /// The request's DPoP proof (`None`: no `DPoP` header), with what it must match.
    pub dpop: Option<DpopRequest>,
}

impl std::fmt::Debug for ClientInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientInfo")
            .field("ip", &self.ip)
            .field("user_agent", &self.user_agent)
            .field("device_tokens", &self.device_tokens.len())
            .field("dpop", &self.dpop.is_some())
            .finish()
    }
}

/// A request's `DPoP` header and what a proof in it must match.
#[derive(Clone, Debug)]
pub struct DpopRequest {
    /// The one proof ([`InvalidProof::Several`] for more than one header).
    pub proof: Result<String, InvalidProof>,
    /// The request method.
    pub method: String,
    /// The request's URL as the client sees it (the external origin plus the path).
    pub url: String,
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
    /// `DPoP` when the session is bound to a DPoP key (the access token then carries `cnf`),
    /// else `Bearer`.
    pub token_type: &'static str,
    /// A login's new device token, for the client to present at its next login (`None` for a
    /// refresh).
    pub device_token: Option<DeviceToken>,
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
    keys: KeyRing,
    refresh_key: RefreshKey,
    reset_key: ResetKey,
    device_key: DeviceKey,
    event_sealer: EventSealer,
    /// Usernames and client addresses whose throttle hold this instance has reported
    /// (`login.throttled`), until the hold ends: one event per hold, however many attempts it
    /// refuses.
    throttle_reported: Mutex<std::collections::HashMap<String, Timestamp>>,
    hasher: Hasher,
    /// The key server nonces are MACs under (`None`: nonces are off).
    dpop_nonce_key: Option<aws_lc_rs::hmac::Key>,
    /// The `jti`s of DPoP proofs accepted on resource requests, per instance.
    resource_jtis: JtiCache,
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
        let secret = load_or_create_secret(&*store, kek.as_ref()).await?;
        let dpop_nonce_key = settings.dpop_nonce.then(|| dpop::nonce_key(&secret));
        let (refresh_key, reset_key, device_key) = (
            RefreshKey::new(&secret),
            ResetKey::new(&secret),
            DeviceKey::new(&secret),
        );
        let event_sealer = EventSealer::new(&secret)?;
        let keys = KeyRing::open(&*store, settings.signing_alg, kek, clock.now()).await?;
        Ok(Self {
            store,
            clock,
            settings,
            keys,
            refresh_key,
            reset_key,
            device_key,
            event_sealer,
            throttle_reported: Mutex::default(),
            hasher: Hasher::new().await?,
            dpop_nonce_key,
            resource_jtis: JtiCache::default(),
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

    /// Succeeds when the store answers.
    pub async fn ready(&self) -> Result<(), Error> {
        Ok(self.store.ping().await?)
    }

    /// How long a signed token can be accepted: its lifetime plus the leeway.
    fn token_lifetime(&self) -> Duration {
        self.settings
            .access_ttl
            .saturating_add(self.settings.clock_leeway)
    }

    /// Signs a fresh access token for `record` and bundles it with `refresh_token`.
    fn issue(
        &self,
        record: &SessionRecord,
        refresh_token: String,
        now: Timestamp,
    ) -> Result<Issued, Error> {
        let keys = self.keys.current();
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
            client_id: record.client_id.clone(),
            cnf: record.dpop_jkt.clone().map(|jkt| Confirmation { jkt }),
        };
        Ok(Issued {
            access_token: access_token::issue(&claims, &key.key)?,
            expires_in: ttl,
            session_id: record.id,
            refresh_token,
            refresh_ttl: record
                .state()
                .expires_at(&self.settings.lifetimes)
                .since(now),
            token_type: if record.dpop_jkt.is_some() {
                "DPoP"
            } else {
                "Bearer"
            },
            device_token: None,
        })
    }
}

/// The named secret of `len` random bytes, created on first start.
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

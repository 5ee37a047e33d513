//! The storage contract. Each backend crate implements [`Store`]; the core calls nothing else.

use std::net::IpAddr;

use async_trait::async_trait;
use uuid::Uuid;

use crate::domain::{RevokeReason, username_key};
use crate::error::StoreError;
use crate::events::{Delivery, EventState, NewEvent, StoredEvent};
use crate::keys::{SealedBlob, StoredKey};
use crate::rules::{CurrentRotation, LiveBounds, SessionState};
use crate::throttle::{CountFailure, Counted, Counter};
use crate::time::Timestamp;

/// A registered user.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Stable id (the `sub` of access tokens).
    pub id: Uuid,
    /// The name as registered; unique without regard to case.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// When the user was created.
    pub created_at: Timestamp,
    /// When an operator disabled the user (`None`: enabled). A disabled user cannot log in.
    pub disabled_at: Option<Timestamp>,
}

impl User {
    /// The form of the name that uniqueness and look-ups use (see
    /// [`Username::key`](crate::Username::key)): what stores index and compare.
    pub fn username_key(&self) -> String {
        username_key(&self.username)
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("created_at", &self.created_at)
            .field("disabled_at", &self.disabled_at)
            .finish_non_exhaustive()
    }
}

/// A user as an operator's listing shows it: the user and how many live sessions it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSummary {
    /// The user.
    pub user: User,
    /// Unrevoked sessions within the [`LiveBounds`] the listing was asked with.
    pub live_sessions: u64,
}

/// A session (refresh-token family) as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// Session id (`sid`).
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Owner's name (joined from the users table on reads; ignored on insert).
    pub username: String,
    /// Rotations so far.
    pub generation: u64,
    /// Keyed hash of the current refresh token.
    pub token_hash: Vec<u8>,
    /// Login time.
    pub created_at: Timestamp,
    /// Last rotation.
    pub rotated_at: Timestamp,
    /// Last refresh (idle expiry counts from here).
    pub last_used_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// Why it was revoked.
    pub revoked_reason: Option<RevokeReason>,
    /// `User-Agent` at login.
    pub user_agent: Option<String>,
    /// Client IP at login.
    pub ip: Option<IpAddr>,
    /// The OAuth client the session belongs to ([`BUILTIN_CLIENT_ID`] unless the login named
    /// another).
    pub client_id: String,
    /// The RFC 7638 thumbprint of the DPoP key the session is bound to, if it is.
    pub dpop_jkt: Option<String>,
}

impl SessionRecord {
    /// The part of the record the refresh rules look at.
    pub fn state(&self) -> SessionState {
        SessionState {
            generation: self.generation,
            token_hash: self.token_hash.clone(),
            created_at: self.created_at,
            rotated_at: self.rotated_at,
            last_used_at: self.last_used_at,
            revoked: self.revoked_at.is_some(),
        }
    }
}

/// A store's database connections at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections open now.
    pub open: u32,
    /// Of those, idle.
    pub idle: u32,
    /// The most the store opens.
    pub max: u32,
}

/// Where [`Store::revoked_sessions_page`] starts reading: the position just before the first
/// entry it may list, as `(revoked_at, id)`. Entries at or after `since` are those after
/// `(since - 1 ms, the greatest id)` (times are whole milliseconds); with `after` as well, the
/// later of the two. A store then reads one range, `(revoked_at, id) > start`, in index order.
pub fn revocation_page_start(
    since: Timestamp,
    after: Option<(Timestamp, Uuid)>,
) -> (Timestamp, Uuid) {
    let before_since = (
        Timestamp::from_millis(since.as_millis().saturating_sub(1)),
        Uuid::max(),
    );
    after.map_or(before_since, |after| after.max(before_since))
}

/// The id (and name) of the built-in public client that owns the sessions of logins that name
/// no client. Every database has it; it cannot be removed.
pub const BUILTIN_CLIENT_ID: &str = "tessera";

/// Whether an OAuth client can keep a secret (RFC 6749 §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientKind {
    /// Native or browser apps: identified by `client_id` alone.
    Public,
    /// Servers: authenticate with a `client_secret`.
    Confidential,
}

impl ClientKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Confidential => "confidential",
        }
    }

    /// The kind with this stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Public, Self::Confidential]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// A registered OAuth client.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The `client_id` (a UUID's text, or [`BUILTIN_CLIENT_ID`]).
    pub id: String,
    /// A name for people; unique among clients that are not removed.
    pub name: String,
    /// Public or confidential.
    pub kind: ClientKind,
    /// SHA-256 of a confidential client's secret (`None` for public clients).
    pub secret_hash: Option<Vec<u8>>,
    /// When it was registered.
    pub created_at: Timestamp,
    /// When it was removed, if it was (a removed client authenticates no more).
    pub removed_at: Option<Timestamp>,
}

impl std::fmt::Debug for ClientRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("created_at", &self.created_at)
            .field("removed_at", &self.removed_at)
            .finish_non_exhaustive()
    }
}

/// The outbox at one moment, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventBacklog {
    /// Events not delivered yet (and not given up on).
    pub pending: u64,
    /// When the oldest of them happened.
    pub oldest_pending: Option<Timestamp>,
    /// Events given up on.
    pub failed: u64,
}

/// Persistence for users, sessions, keys and secrets.
///
/// Implementations must make [`Store::rotate_session`] an atomic compare-and-swap: of many
/// concurrent calls with the same `from_generation`, exactly one returns `true`.
///
/// **Events.** The methods that change what an event reports write that event into the
/// outbox in the same transaction ([`NewEvent`], built by core): [`Store::open_session`]
/// (`session.created`); [`Store::revoke_session`], [`Store::revoke_user_sessions`],
/// [`Store::remove_client`], [`Store::set_disabled`], [`Store::change_password`],
/// [`Store::use_reset_token`] and [`Store::delete_user`] (a `session.revoked` per session they
/// end, with `session.reuse_detected` for the reason `reused`); [`Store::set_disabled`]
/// (`user.disabled`), [`Store::delete_user`] (`user.deleted`), [`Store::change_password`] and
/// [`Store::use_reset_token`] (`user.password_changed`); [`Store::replace_reset_token`] the
/// event it is given. A change that fails or changes nothing writes no event.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Succeeds when the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// The store's connections now, for the metrics; `None` (the default) when it cannot tell.
    fn pool_status(&self) -> Option<PoolStatus> {
        None
    }

    /// Adds a user; [`StoreError::Conflict`] when the name is taken (compared without case).
    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;
    /// The user whose lower-cased name is `username_key`.
    async fn user_by_name(&self, username_key: &str) -> Result<Option<User>, StoreError>;
    /// Every user, by name.
    async fn users(&self) -> Result<Vec<User>, StoreError>;
    /// The user with this id.
    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError>;
    /// Up to `limit` users in id order, those after `after` (a cursor: the last id of the
    /// previous page), each with its count of unrevoked sessions live by `live`.
    async fn users_page(
        &self,
        after: Option<Uuid>,
        limit: u32,
        live: LiveBounds,
    ) -> Result<Vec<UserSummary>, StoreError>;
    /// Disables (`Some(at)`) or enables (`None`) a user. Disabling revokes every unrevoked
    /// session of the user (reason `admin`, at `now`) in the same transaction, after the user's
    /// row is written: a login or refresh racing it either committed before (and its session is
    /// revoked) or sees the user disabled. Returns the sessions revoked, `None` for no such user.
    async fn set_disabled(
        &self,
        user_id: Uuid,
        disabled_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Option<u64>, StoreError>;
    /// Deletes a user, their sessions and their reset token in one transaction. The ids of their
    /// sessions, with when each was revoked (`now` for those still live), stay behind without
    /// the user id, so that [`Store::revoked_sessions_page`] keeps listing them until
    /// [`Store::delete_sessions`] purges them with the other ended sessions. Returns whether the
    /// user existed.
    async fn delete_user(&self, user_id: Uuid, now: Timestamp) -> Result<bool, StoreError>;
    /// A password change: when `keep` is an unrevoked session of `user_id`, in one transaction,
    /// sets the password hash and revokes every other unrevoked session of the user with
    /// `reason`, returning how many. `None` (and nothing changed) when `keep` has been revoked:
    /// of two concurrent changes by two sessions of one user, the one that commits second finds
    /// its session revoked by the first (stores serialise changes per user).
    async fn change_password(
        &self,
        user_id: Uuid,
        keep: Uuid,
        password_hash: &str,
        now: Timestamp,
        reason: RevokeReason,
    ) -> Result<Option<u64>, StoreError>;
    /// Stores `token_hash` as the user's one password-reset token, valid until `expires_at`,
    /// replacing (so voiding) any earlier one. Returns whether the user exists; for an unknown
    /// id it does the same statement and writes nothing.
    /// With `event` (a self-service request's `user.password_reset_requested`), writes it in
    /// the same transaction when the user exists.
    async fn replace_reset_token(
        &self,
        user_id: Uuid,
        token_hash: &[u8],
        expires_at: Timestamp,
        event: Option<&NewEvent>,
    ) -> Result<bool, StoreError>;
    /// Uses a password-reset token: when `token_hash` is a user's token and unexpired at `now`,
    /// in one transaction: deletes it (single use), sets `password_hash`, and revokes every
    /// unrevoked session of the user (reason `password_changed`). Returns the user id and the
    /// sessions revoked.
    async fn use_reset_token(
        &self,
        token_hash: &[u8],
        now: Timestamp,
        password_hash: &str,
    ) -> Result<Option<(Uuid, u64)>, StoreError>;

    /// Adds a new session.
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// A login's session: adds `session` only if its user exists, is not disabled and still has
    /// `password_hash` (the hash the login's password was checked against), in one statement
    /// that waits for a concurrent disable, delete, password change or reset of the user to
    /// commit. Returns whether it did: a login racing any of those never leaves a live session
    /// the other meant to end.
    async fn open_session(
        &self,
        session: &SessionRecord,
        password_hash: &str,
    ) -> Result<bool, StoreError>;
    /// A session by id, with its owner's name.
    async fn session(&self, id: Uuid) -> Result<Option<SessionRecord>, StoreError>;
    /// If the session is unrevoked and at `from_generation`: advance it to the next generation
    /// with `new_hash`, and mark it rotated and used at `now`. Returns whether it did.
    async fn rotate_session(
        &self,
        id: Uuid,
        from_generation: u64,
        new_hash: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// A refresh's fast path, in one statement: [`Store::rotate_session`] on condition that the
    /// session also still holds `current_hash` and has expired neither way (last used after
    /// `used_after`, created after `created_after`) — exactly the sessions for which
    /// [`crate::rules::decide`] answers `Rotate`. Returns the session as rotated (with its owner's
    /// name), or `None` when any condition fails and nothing changed; the caller then reads the
    /// session and applies the rules. [`CurrentRotation`] sits beside `decide` and says how its
    /// conditions read as SQL.
    ///
    /// The default never takes the fast path. Implementations make it one atomic statement
    /// (`UPDATE … RETURNING`): a refresh then costs one round trip instead of two.
    async fn rotate_current(
        &self,
        rotation: &CurrentRotation<'_>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let _ = rotation;
        Ok(None)
    }
    /// Revokes one session unless already revoked. Returns whether it did.
    async fn revoke_session(
        &self,
        id: Uuid,
        now: Timestamp,
        reason: RevokeReason,
    ) -> Result<bool, StoreError>;
    /// Revokes every unrevoked session of a user. Returns how many.
    async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        now: Timestamp,
        reason: RevokeReason,
    ) -> Result<u64, StoreError>;
    /// Unrevoked sessions (of one user, or of everybody), most recently used first. Expired
    /// ones are included: the caller judges expiry with its current settings.
    async fn unrevoked_sessions(
        &self,
        user_id: Option<Uuid>,
    ) -> Result<Vec<SessionRecord>, StoreError>;
    /// One page of the sessions revoked at or after `since`, as `(id, revoked_at)`, in
    /// `(revoked_at, id)` order (ids compared as their 16 bytes): at most `limit` of them,
    /// starting just after the position `after` when given. Resource services poll this
    /// (through `GET /auth/revocations`) to refuse the access tokens of ended sessions before
    /// those expire, so it must stay cheap when called every few seconds however many sessions
    /// ended: backends index `(revoked_at, id)` and read only the page. The sessions of deleted
    /// users are listed too (see [`Store::delete_user`]). The id in the position
    /// keeps paging exact when many sessions share one `revoked_at` (a logout everywhere).
    async fn revoked_sessions_page(
        &self,
        since: Timestamp,
        after: Option<(Timestamp, Uuid)>,
        limit: u32,
    ) -> Result<Vec<(Uuid, Timestamp)>, StoreError>;
    /// Deletes sessions revoked before `revoked_before`, last used before `used_before`, or
    /// created before `created_before`, and what deleted users left behind revoked before
    /// `revoked_before`. Returns how many.
    async fn delete_sessions(
        &self,
        revoked_before: Timestamp,
        used_before: Timestamp,
        created_before: Timestamp,
    ) -> Result<u64, StoreError>;

    /// Adds an OAuth client; [`StoreError::Conflict`] when a client that is not removed has
    /// the same name (or the id is taken).
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError>;
    /// A client by id, removed or not.
    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError>;
    /// Every client that is not removed (the built-in one included), oldest first.
    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError>;
    /// Marks a client removed and revokes its unrevoked sessions (reason `client_removed`), in
    /// one transaction. Returns how many sessions it revoked, or `None` when there is no such
    /// client or it was already removed (then nothing changed).
    async fn remove_client(&self, id: &str, now: Timestamp) -> Result<Option<u64>, StoreError>;

    /// Records the id of an accepted DPoP proof (see [`tessera_token::dpop::jti_id`]) until
    /// `expires_at`. Returns `false`, and changes nothing, when the id is recorded and unexpired
    /// at `now`: the proof is a replay. Atomic across instances sharing the database.
    async fn insert_dpop_jti(
        &self,
        id: u128,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Forgets the proof ids that expired before `now`. Returns how many.
    async fn delete_expired_dpop_jtis(&self, now: Timestamp) -> Result<u64, StoreError>;
    /// Counts a login attempt against a throttle counter unless it is held: [`CountFailure`]'s
    /// statement, atomic by itself, so attempts racing on one instance or several are counted
    /// as if they came one at a time. When it is held nothing changes, and the counter's state
    /// is read for the answer.
    async fn count_failure(&self, count: &CountFailure<'_>) -> Result<Counted, StoreError>;
    /// A right password (or a deleted user): deletes the counters in `forget`, and takes one
    /// failure back from `take_back` if its window opened at or before `counted_at`
    /// ([`crate::throttle::Limit::take_back`]).
    async fn clear_failures(
        &self,
        forget: &[Counter],
        take_back: Option<&Counter>,
        counted_at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Deletes the throttle counters whose last failure was before `quiet_before` (they hold
    /// nothing back any more). Returns how many.
    async fn delete_quiet_failures(&self, quiet_before: Timestamp) -> Result<u64, StoreError>;
    /// How many username and address counters are stored, for the metrics.
    async fn failure_counters(&self) -> Result<(u64, u64), StoreError>;

    /// Every signing key.
    async fn keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Adds a signing key.
    async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError>;
    /// A named secret.
    async fn secret(&self, name: &str) -> Result<Option<SealedBlob>, StoreError>;
    /// Stores a named secret unless one by that name exists (the first writer wins).
    async fn insert_secret_if_absent(
        &self,
        name: &str,
        secret: &SealedBlob,
    ) -> Result<(), StoreError>;

    /// Writes an event that no other change carries (`login.throttled`,
    /// `session.dpop_mismatch`).
    async fn record_event(&self, event: &NewEvent) -> Result<(), StoreError>;
    /// Claims up to `limit` pending events due at `now` whose lease (if any) has lapsed, oldest
    /// due first: each gets `lease_until` and one more attempt. Among instances sharing the
    /// database, an event is claimed by one at a time (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
    async fn claim_events(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// Records how the attempt on a claimed event ended, if the claim (`lease_until`, as
    /// claimed) is still the event's: a lapsed claim taken over by another instance changes
    /// nothing. Returns whether it recorded.
    async fn finish_event(
        &self,
        id: Uuid,
        lease_until: Timestamp,
        now: Timestamp,
        outcome: &Delivery,
    ) -> Result<bool, StoreError>;
    /// Up to `limit` events (of one state, or all), newest first.
    async fn events(
        &self,
        state: Option<EventState>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// Makes an undelivered event (pending or failed) pending and due at `now`, with a fresh
    /// day of retries (`retry_since = now`). Returns whether there was such an event.
    async fn retry_event(&self, id: Uuid, now: Timestamp) -> Result<bool, StoreError>;
    /// The outbox's pending and failed counts and its oldest pending event.
    async fn event_backlog(&self) -> Result<EventBacklog, StoreError>;
    /// Deletes events delivered before `delivered_before`, and pending events not attempted
    /// since they were recorded (or retried) before `unsent_before`: recorded while no sender
    /// ran. Failed events stay.
    async fn delete_events(
        &self,
        delivered_before: Timestamp,
        unsent_before: Timestamp,
    ) -> Result<u64, StoreError>;
}

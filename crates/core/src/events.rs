//! Events: what happened to users and sessions, for the application's webhook receiver.
//!
//! Every event is built here, as data: its type (the closed set [`EventType`]), its id (the
//! `webhook-id`, stable across retries), when it happened and its `data` object. Stores write
//! [`NewEvent`]s into their outbox in the same transaction as the change that caused them, so
//! a committed change always has its event and a rolled-back one has none; the server's sender
//! delivers them in the Standard Webhooks format ([`WebhookSecret::sign`]) on the schedule
//! [`after_failure`] sets. Nothing here does I/O or reads a clock.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, RandomizedNonceKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::domain::RevokeReason;
use crate::error::Error;
use crate::keys::derived_bytes;
use crate::store::SessionRecord;
use crate::time::Timestamp;

/// The kinds of events, as the body's `type` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A login opened a session.
    SessionCreated,
    /// A session was revoked (the `reason` says why).
    SessionRevoked,
    /// An already-used refresh token was presented: likely theft; the session is revoked.
    SessionReuseDetected,
    /// A refresh of a DPoP-bound session came with a proof by another key.
    SessionDpopMismatch,
    /// A user's password was changed or reset.
    UserPasswordChanged,
    /// Somebody asked for a password reset: the application delivers the token.
    UserPasswordResetRequested,
    /// An operator disabled a user.
    UserDisabled,
    /// An operator deleted a user.
    UserDeleted,
    /// Logins for a username were held back by the throttle.
    LoginThrottled,
}

impl EventType {
    /// Every type, for parsing and the docs' catalogue.
    pub const ALL: [Self; 9] = [
        Self::SessionCreated,
        Self::SessionRevoked,
        Self::SessionReuseDetected,
        Self::SessionDpopMismatch,
        Self::UserPasswordChanged,
        Self::UserPasswordResetRequested,
        Self::UserDisabled,
        Self::UserDeleted,
        Self::LoginThrottled,
    ];

    /// The wire (and stored) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionCreated => "session.created",
            Self::SessionRevoked => "session.revoked",
            Self::SessionReuseDetected => "session.reuse_detected",
            Self::SessionDpopMismatch => "session.dpop_mismatch",
            Self::UserPasswordChanged => "user.password_changed",
            Self::UserPasswordResetRequested => "user.password_reset_requested",
            Self::UserDisabled => "user.disabled",
            Self::UserDeleted => "user.deleted",
            Self::LoginThrottled => "login.throttled",
        }
    }

    /// The type with this name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an event is in its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventState {
    /// Not delivered yet: due now or at its next attempt.
    Pending,
    /// A receiver acknowledged it (any 2xx).
    Delivered,
    /// Every attempt for [`GIVE_UP_AFTER`] failed; kept until an operator retries it.
    Failed,
}

impl EventState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// The state with this stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// The `webhook-id` of an event id: `msg_` and the id's 32 hex digits.
pub fn webhook_id(id: Uuid) -> String {
    format!("msg_{}", id.simple())
}

/// The event id in a `webhook-id` (or in a bare UUID), as operators type it.
pub fn parse_webhook_id(text: &str) -> Option<Uuid> {
    Uuid::parse_str(text.strip_prefix("msg_").unwrap_or(text)).ok()
}

/// The member of a stored `user.password_reset_requested` that holds the sealed token: the
/// token itself never reaches the database ([`EventSealer`]).
const SEALED_TOKEN: &str = "sealed_token";

/// An event to write, built in full before the transaction that writes it.
#[derive(Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Its id: a UUID v7 of its time, so ids sort roughly by time.
    pub id: Uuid,
    /// Its type.
    pub kind: EventType,
    /// When it happened.
    pub created_at: Timestamp,
    /// The `data` object, as JSON text.
    pub data: String,
}

impl fmt::Debug for NewEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewEvent")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl NewEvent {
    fn new(kind: EventType, at: Timestamp, data: Value) -> Self {
        let millis = u64::try_from(at.as_millis()).unwrap_or(0);
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            millis / 1000,
            u32::try_from(millis % 1000).unwrap_or(0) * 1_000_000,
        );
        Self {
            id: Uuid::new_v7(ts),
            kind,
            created_at: at,
            data: data.to_string(),
        }
    }

    /// `session.created`: a login's new session, with where it came from.
    pub fn session_created(s: &SessionRecord) -> Self {
        Self::new(
            EventType::SessionCreated,
            s.created_at,
            json!({
                "session_id": s.id,
                "user_id": s.user_id,
                "username": s.username,
                "client_id": s.client_id,
                "user_agent": s.user_agent,
                "ip": s.ip.map(|ip| ip.to_string()),
            }),
        )
    }

    /// The events of sessions just revoked, given as `(session id, user id)`: a
    /// `session.revoked` each, preceded by a `session.reuse_detected` when a reused token was
    /// the reason.
    pub fn sessions_revoked(
        revoked: &[(Uuid, Uuid)],
        reason: RevokeReason,
        at: Timestamp,
    ) -> Vec<Self> {
        let mut events = Vec::with_capacity(revoked.len());
        for &(session_id, user_id) in revoked {
            if reason == RevokeReason::Reused {
                events.push(Self::new(
                    EventType::SessionReuseDetected,
                    at,
                    json!({ "session_id": session_id, "user_id": user_id }),
                ));
            }
            events.push(Self::new(
                EventType::SessionRevoked,
                at,
                json!({ "session_id": session_id, "user_id": user_id, "reason": reason.as_str() }),
            ));
        }
        events
    }

    /// `session.dpop_mismatch`: a refresh of a session bound to the key `expected_jkt` came
    /// with a valid proof by `presented_jkt` (RFC 7638 thumbprints); nothing was consumed.
    pub fn session_dpop_mismatch(
        session_id: Uuid,
        user_id: Uuid,
        expected_jkt: &str,
        presented_jkt: &str,
        ip: Option<IpAddr>,
        at: Timestamp,
    ) -> Self {
        Self::new(
            EventType::SessionDpopMismatch,
            at,
            json!({
                "session_id": session_id, "user_id": user_id, "jkt": expected_jkt,
                "presented_jkt": presented_jkt, "ip": ip.map(|ip| ip.to_string()),
            }),
        )
    }

    /// `user.password_changed`, by the user (`"change"`) or with a reset token (`"reset"`).
    pub fn password_changed(user_id: Uuid, via: &str, at: Timestamp) -> Self {
        Self::new(
            EventType::UserPasswordChanged,
            at,
            json!({ "user_id": user_id, "via": via }),
        )
    }

    /// `user.password_reset_requested`, with the token sealed by `sealer` (unsealed only when
    /// the body is sent, [`StoredEvent::body`]).
    pub fn password_reset_requested(
        user_id: Uuid,
        username: &str,
        token: &str,
        expires_at: Timestamp,
        sealer: &EventSealer,
        at: Timestamp,
    ) -> Result<Self, Error> {
        Ok(Self::new(
            EventType::UserPasswordResetRequested,
            at,
            json!({
                "user_id": user_id, "username": username,
                SEALED_TOKEN: sealer.seal(token)?,
                "expires_at": expires_at.to_rfc3339(),
            }),
        ))
    }

    /// `user.disabled`.
    pub fn user_disabled(user_id: Uuid, at: Timestamp) -> Self {
        Self::new(EventType::UserDisabled, at, json!({ "user_id": user_id }))
    }

    /// `user.deleted`.
    pub fn user_deleted(user_id: Uuid, at: Timestamp) -> Self {
        Self::new(EventType::UserDeleted, at, json!({ "user_id": user_id }))
    }

    /// `login.throttled`: logins for `username` (as typed, lower-cased) are held back for
    /// `retry_after`; recorded once per hold, not per refused attempt.
    pub fn login_throttled(
        username: &str,
        ip: Option<IpAddr>,
        retry_after: Duration,
        at: Timestamp,
    ) -> Self {
        Self::new(
            EventType::LoginThrottled,
            at,
            json!({
                "username": username, "ip": ip.map(|ip| ip.to_string()),
                "retry_after": retry_after.as_secs(),
            }),
        )
    }
}

/// An event as the outbox holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The event.
    pub event: NewEvent,
    /// Where its delivery is.
    pub state: EventState,
    /// Delivery attempts so far (a claim counts as one).
    pub attempts: u32,
    /// When it is next due (pending events).
    pub next_attempt_at: Timestamp,
    /// Until when an instance holds it (while sending); another instance claims it after.
    pub lease_until: Option<Timestamp>,
    /// Since when it has been retried: its creation, or an operator's `events retry`. Delivery
    /// gives up [`GIVE_UP_AFTER`] later.
    pub retry_since: Timestamp,
    /// When it was delivered or given up on.
    pub finished_at: Option<Timestamp>,
    /// What the last failed attempt met (`HTTP 500`, `timeout` …).
    pub last_error: Option<String>,
}

impl fmt::Debug for StoredEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredEvent")
            .field("event", &self.event)
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl StoredEvent {
    /// The webhook body, `{"type", "timestamp", "data"}`, with a reset token unsealed.
    pub fn body(&self, sealer: &EventSealer) -> Result<String, Error> {
        let mut data = self.data_object()?;
        if let Some(sealed) = data.remove(SEALED_TOKEN) {
            let sealed = sealed.as_str().unwrap_or_default();
            data.insert("token".into(), Value::String(sealer.open(sealed)?));
        }
        Ok(json!({
            "type": self.event.kind.as_str(),
            "timestamp": self.event.created_at.to_rfc3339(),
            "data": data,
        })
        .to_string())
    }

    /// The `data` object as an operator's listing shows it: without the reset token.
    pub fn listed_data(&self) -> Result<Value, Error> {
        let mut data = self.data_object()?;
        if data.remove(SEALED_TOKEN).is_some() {
            data.insert("token".into(), Value::String("<redacted>".into()));
        }
        Ok(Value::Object(data))
    }

    fn data_object(&self) -> Result<Map<String, Value>, Error> {
        match serde_json::from_str(&self.event.data) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(Error::Internal(
                format!("event {} has no data object", self.event.id).into(),
            )),
        }
    }
}

/// An outbox row as a store reads it (the columns in this order), before its names and
/// numbers are checked: both stores read into this and convert with [`EventRow::into_event`].
#[derive(Clone, Debug)]
pub struct EventRow {
    /// `id`.
    pub id: Uuid,
    /// `type`.
    pub kind: String,
    /// `created_at`, in milliseconds.
    pub created_at: i64,
    /// `data`.
    pub data: String,
    /// `state`.
    pub state: String,
    /// `attempts`.
    pub attempts: i64,
    /// `next_attempt_at`.
    pub next_attempt_at: i64,
    /// `lease_until`.
    pub lease_until: Option<i64>,
    /// `retry_since`.
    pub retry_since: i64,
    /// `finished_at`.
    pub finished_at: Option<i64>,
    /// `last_error`.
    pub last_error: Option<String>,
}

impl EventRow {
    /// The stored event; `None` when a name or a number is not one this version writes.
    pub fn into_event(self) -> Option<StoredEvent> {
        Some(StoredEvent {
            event: NewEvent {
                id: self.id,
                kind: EventType::parse(&self.kind)?,
                created_at: Timestamp::from_millis(self.created_at),
                data: self.data,
            },
            state: EventState::parse(&self.state)?,
            attempts: u32::try_from(self.attempts).ok()?,
            next_attempt_at: Timestamp::from_millis(self.next_attempt_at),
            lease_until: self.lease_until.map(Timestamp::from_millis),
            retry_since: Timestamp::from_millis(self.retry_since),
            finished_at: self.finished_at.map(Timestamp::from_millis),
            last_error: self.last_error,
        })
    }
}

/// How a delivery attempt ended, for the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Acknowledged: the event is done.
    Delivered,
    /// Failed; try again at this time.
    Retry {
        /// When it is due again.
        at: Timestamp,
        /// What went wrong.
        error: String,
    },
    /// Failed, and retries are over: kept as failed.
    Failed {
        /// What went wrong last.
        error: String,
    },
}

/// What [`Store::finish_event`](crate::Store::finish_event) writes for an outcome at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryColumns<'a> {
    /// The new `state`.
    pub state: EventState,
    /// The new `next_attempt_at` (`None`: unchanged).
    pub next_attempt_at: Option<Timestamp>,
    /// The new `finished_at`.
    pub finished_at: Option<Timestamp>,
    /// The new `last_error` (`None`: unchanged).
    pub last_error: Option<&'a str>,
}

impl Delivery {
    /// The row's new columns.
    pub fn columns(&self, now: Timestamp) -> DeliveryColumns<'_> {
        match self {
            Self::Delivered => DeliveryColumns {
                state: EventState::Delivered,
                next_attempt_at: None,
                finished_at: Some(now),
                last_error: None,
            },
            Self::Retry { at, error } => DeliveryColumns {
                state: EventState::Pending,
                next_attempt_at: Some(*at),
                finished_at: None,
                last_error: Some(error),
            },
            Self::Failed { error } => DeliveryColumns {
                state: EventState::Failed,
                next_attempt_at: None,
                finished_at: Some(now),
                last_error: Some(error),
            },
        }
    }

    /// The outcome's name, for metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry { .. } => "retry",
            Self::Failed { .. } => "failed",
        }
    }
}

/// How long a claimed event is an instance's alone: longer than one attempt (10 s) takes, and
/// short enough that a crashed instance's events are picked up within a minute.
pub const LEASE: Duration = Duration::from_secs(60);
/// Retries stop this long after an event was created (or retried by an operator).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// The delay before the first retry, doubled after each failure up to [`MAX_RETRY_DELAY`].
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(8);
/// The longest wait between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(10 * 60);

/// What follows a failed attempt (the `attempts`-th) of an event retried since `retry_since`:
/// another attempt after a delay that doubles from [`FIRST_RETRY_DELAY`] to at most
/// [`MAX_RETRY_DELAY`], shortened by up to half at random (`jitter` in `0.0..1.0`), so that
/// many events failed together do not come back together; or, once [`GIVE_UP_AFTER`] has
/// passed, the end.
pub fn after_failure(
    attempts: u32,
    retry_since: Timestamp,
    now: Timestamp,
    jitter: f64,
    error: String,
) -> Delivery {
    if now.since(retry_since) >= GIVE_UP_AFTER {
        return Delivery::Failed { error };
    }
    let doublings = attempts.saturating_sub(1).min(16);
    let full = FIRST_RETRY_DELAY
        .saturating_mul(1 << doublings)
        .min(MAX_RETRY_DELAY);
    let delay = full.mul_f64(1.0 - jitter.clamp(0.0, 1.0) / 2.0);
    Delivery::Retry {
        at: now.plus(delay),
        error,
    }
}

/// The webhook signing secret: `whsec_` and the base64 of at least 24 bytes. `Debug` hides it.
#[derive(Clone)]
pub struct WebhookSecret(hmac::Key);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl WebhookSecret {
    /// Reads `whsec_<base64>` (standard alphabet, as the Standard Webhooks libraries write it).
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text
            .trim()
            .strip_prefix("whsec_")
            .ok_or("must start with whsec_ (whsec_ and the base64 of at least 24 random bytes)")?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| "the part after whsec_ is not base64".to_owned())?;
        if bytes.len() < 24 {
            return Err(format!(
                "must hold at least 24 bytes after whsec_, not {}",
                bytes.len()
            ));
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// The `webhook-signature` header: `v1,` and the base64 HMAC-SHA256 of
    /// `"{id}.{timestamp}.{body}"`.
    pub fn sign(&self, webhook_id: &str, timestamp_secs: i64, body: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(format!("{webhook_id}.{timestamp_secs}.").as_bytes());
        ctx.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
    }
}

/// Seals the one secret an event carries (a reset token) while it waits in the outbox, under
/// a key derived from the deployment's secret (itself sealed by the KEK when one is set): a
/// dump of the database alone yields no usable reset token.
pub struct EventSealer(RandomizedNonceKey);

impl fmt::Debug for EventSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventSealer(<redacted>)")
    }
}

const SEAL_AAD: &[u8] = b"tessera event secret v1";

impl EventSealer {
    /// Derives the key from the deployment's 32-byte secret.
    pub fn new(secret: &[u8]) -> Result<Self, Error> {
        let derived = derived_bytes(secret, b"tessera event sealing key v1");
        RandomizedNonceKey::new(&AES_256_GCM, derived.as_ref())
            .map(Self)
            .map_err(|_| Error::Internal("unusable event sealing key".into()))
    }

    fn seal(&self, secret: &str) -> Result<String, Error> {
        let mut buf = secret.as_bytes().to_vec();
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(SEAL_AAD), &mut buf)
            .map_err(|_| Error::Internal("sealing an event secret failed".into()))?;
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&buf);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    fn open(&self, sealed: &str) -> Result<String, Error> {
        let bad = || Error::Internal("cannot unseal an event's secret".into());
        let bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| bad())?;
        if bytes.len() < 12 {
            return Err(bad());
        }
        let (nonce, ct) = bytes.split_at(12);
        let nonce = aws_lc_rs::aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let mut buf = ct.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(SEAL_AAD), &mut buf)
            .map_err(|_| bad())?;
        String::from_utf8(plain.to_vec()).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    #[test]
    fn every_type_has_one_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("session.nope"), None);
    }

    #[test]
    fn the_first_retry_comes_within_ten_seconds_and_none_waits_over_ten_minutes() {
        let start = at(1_000);
        for jitter in [0.0, 0.5, 0.999] {
            let Delivery::Retry { at: next, .. } =
                after_failure(1, start, start, jitter, "x".into())
            else {
                panic!("retried")
            };
            assert!(next.since(start) <= Duration::from_secs(10));
            assert!(next.since(start) >= Duration::from_secs(4));
        }
        let mut now = start;
        let mut previous = Duration::ZERO;
        for attempt in 1..200 {
            match after_failure(attempt, start, now, 0.0, "x".into()) {
                Delivery::Retry { at: next, .. } => {
                    let delay = next.since(now);
                    assert!(delay <= MAX_RETRY_DELAY && delay >= previous);
                    previous = delay;
                    now = next;
                }
                Delivery::Failed { .. } => {
                    assert!(now.since(start) >= GIVE_UP_AFTER, "gave up too early");
                    return;
                }
                Delivery::Delivered => unreachable!(),
            }
        }
        panic!("never gave up");
    }

    #[test]
    fn a_retried_event_gets_another_day() {
        let created = at(0);
        let later = created.plus(GIVE_UP_AFTER);
        assert!(matches!(
            after_failure(300, created, later, 0.0, "x".into()),
            Delivery::Failed { .. }
        ));
        assert!(matches!(
            after_failure(1, later, later, 0.0, "x".into()),
            Delivery::Retry { .. }
        ));
    }

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The Standard Webhooks specification's example.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn bad_secrets_are_refused() {
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(WebhookSecret::parse("whsec_not base64!").is_err());
        assert!(WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([7u8; 23]))).is_err());
        let ok = WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([7u8; 24]))).unwrap();
        assert!(!format!("{ok:?}").contains("Bwc"));
    }

    #[test]
    fn a_reset_token_is_stored_sealed_and_sent_open() {
        let sealer = EventSealer::new(&[9u8; 32]).unwrap();
        let user = Uuid::new_v4();
        let event =
            NewEvent::password_reset_requested(user, "alice", "the-token", at(99), &sealer, at(1))
                .unwrap();
        assert!(!event.data.contains("the-token"));
        let stored = StoredEvent {
            event,
            state: EventState::Pending,
            attempts: 0,
            next_attempt_at: at(1),
            lease_until: None,
            retry_since: at(1),
            finished_at: None,
            last_error: None,
        };
        let body: Value = serde_json::from_str(&stored.body(&sealer).unwrap()).unwrap();
        assert_eq!(body["type"], "user.password_reset_requested");
        assert_eq!(body["data"]["token"], "the-token");
        assert_eq!(body["data"]["user_id"], user.to_string());
        assert!(body["data"].get(SEALED_TOKEN).is_none());
        assert_eq!(stored.listed_data().unwrap()["token"], "<redacted>");
        let other = EventSealer::new(&[8u8; 32]).unwrap();
        assert!(stored.body(&other).is_err());
    }

    #[test]
    fn ids_read_back_from_webhook_ids() {
        let id = NewEvent::user_disabled(Uuid::new_v4(), at(5)).id;
        assert_eq!(parse_webhook_id(&webhook_id(id)), Some(id));
        assert_eq!(parse_webhook_id(&id.to_string()), Some(id));
        assert_eq!(parse_webhook_id("msg_nope"), None);
    }

    #[test]
    fn a_reuse_is_two_events_per_session() {
        let rows = [(Uuid::new_v4(), Uuid::new_v4())];
        let kinds = |r| {
            NewEvent::sessions_revoked(&rows, r, at(1))
                .iter()
                .map(|e| e.kind)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(RevokeReason::Reused),
            [EventType::SessionReuseDetected, EventType::SessionRevoked]
        );
        assert_eq!(kinds(RevokeReason::Logout), [EventType::SessionRevoked]);
    }
}

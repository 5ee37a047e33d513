//! The refresh rules (`docs/protocol.md`), as one pure function of (session state, token, now).
//!
//! Nothing here reads a clock or a database: [`decide`] is what the service calls after loading
//! the session, and what the unit and property tests drive directly. [`LiveBounds`] is the one
//! statement of "not expired" (used by [`SessionState::is_live`], the refresh fast path and the
//! purge of ended sessions), and [`CurrentRotation`] is `decide`'s `Rotate` case in the form a
//! store checks in one statement.

use std::time::Duration;

use crate::error::RefreshRejection;
use uuid::Uuid;

use crate::refresh_token::{RefreshKey, RefreshToken};
use crate::time::Timestamp;

/// The lifetimes that bound a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    /// No refresh for this long ends the session.
    pub idle: Duration,
    /// The session ends this long after login, however active.
    pub absolute: Duration,
    /// How long after a rotation its predecessor still yields the same successor.
    pub reuse_grace: Duration,
}

/// What [`decide`] needs to know of a stored session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionState {
    /// Rotations so far: the generation of the current token.
    pub generation: u64,
    /// Keyed hash of the current token.
    pub token_hash: Vec<u8>,
    /// When the session was created (login).
    pub created_at: Timestamp,
    /// When its token was last rotated (or created).
    pub rotated_at: Timestamp,
    /// When it was last used to refresh (idle expiry counts from here).
    pub last_used_at: Timestamp,
    /// Whether it was revoked (logout, revocation, reuse).
    pub revoked: bool,
}

impl SessionState {
    /// When the session expires if it is not used before then: the idle deadline or the
    /// absolute one, whichever comes first.
    pub fn expires_at(&self, lifetimes: &Lifetimes) -> Timestamp {
        self.last_used_at
            .plus(lifetimes.idle)
            .min(self.created_at.plus(lifetimes.absolute))
    }

    /// Whether the session can still be refreshed at `now`.
    pub fn is_live(&self, now: Timestamp, lifetimes: &Lifetimes) -> bool {
        !self.revoked && LiveBounds::at(now, lifetimes).holds(self)
    }
}

/// What "expired neither way at `now`" means for the stored times: used after `used_after`
/// (the idle timeout has not passed) and created after `created_after` (nor the absolute
/// lifetime). `now < expires_at` is the same condition, moved to the other side, so that a
/// store can compare its columns with two constants:
/// `last_used_at > used_after AND created_at > created_after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveBounds {
    /// A live session was last used after this.
    pub used_after: Timestamp,
    /// A live session was created after this.
    pub created_after: Timestamp,
}

impl LiveBounds {
    /// The bounds at `now`.
    pub fn at(now: Timestamp, lifetimes: &Lifetimes) -> Self {
        Self {
            used_after: now.minus(lifetimes.idle),
            created_after: now.minus(lifetimes.absolute),
        }
    }

    /// Whether `session`'s times are within the bounds (revocation aside).
    pub fn holds(&self, session: &SessionState) -> bool {
        session.last_used_at > self.used_after && session.created_at > self.created_after
    }
}

/// [`decide`]'s `Rotate` case as one conditional write, for the refresh fast path
/// ([`crate::Store::rotate_current`]). A store applies it as
///
/// ```sql
/// UPDATE sessions SET generation = generation + 1, token_hash = :new_hash,
///                     rotated_at = :now, last_used_at = :now
///  WHERE id = :id AND generation = :generation AND token_hash = :current_hash
///    AND revoked_at IS NULL
///    AND last_used_at > :live.used_after AND created_at > :live.created_after
///    AND (:client_id IS NULL OR client_id = :client_id)
///    AND (dpop_jkt IS NULL OR dpop_jkt = :dpop_jkt)
/// ```
///
/// which matches exactly the sessions for which `decide` answers `Rotate` (not revoked, not
/// expired, the presented token is the current one); the contract suite checks that the two
/// agree. When it matches nothing, nothing changed and the service runs `decide`. `client_id`
/// is the OAuth token endpoint's extra condition ([`CurrentRotation::for_client`]): a session of
/// another client is never rotated there, and the slow path refuses it before `decide`.
/// `dpop_jkt` keeps a session bound to a DPoP key off the fast path unless the request's proof
/// is by that key: the slow path then judges the proof before rules 3–5.
#[derive(Clone, Copy, Debug)]
pub struct CurrentRotation<'a> {
    /// The session.
    pub id: Uuid,
    /// Its generation as the presented token says.
    pub generation: u64,
    /// Keyed hash of the presented token: the row must hold exactly this.
    pub current_hash: &'a [u8],
    /// Keyed hash of its successor, stored in its place.
    pub new_hash: &'a [u8],
    /// The time of the rotation (`rotated_at`, `last_used_at`).
    pub now: Timestamp,
    /// The session must be live at `now`.
    pub live: LiveBounds,
    /// When set, the session must belong to this OAuth client.
    pub client_id: Option<&'a str>,
    /// The session must be bound to no DPoP key, or to this one (the key of the request's
    /// valid proof).
    pub dpop_jkt: Option<&'a str>,
}

impl<'a> CurrentRotation<'a> {
    /// The rotation of `token` (whose keyed hash is `current_hash`) to the successor whose
    /// keyed hash is `new_hash`, at `now`.
    pub fn new(
        token: &RefreshToken,
        current_hash: &'a [u8],
        new_hash: &'a [u8],
        now: Timestamp,
        lifetimes: &Lifetimes,
    ) -> Self {
        Self {
            id: token.session_id(),
            generation: token.generation(),
            current_hash,
            new_hash,
            now,
            live: LiveBounds::at(now, lifetimes),
            client_id: None,
            dpop_jkt: None,
        }
    }

    /// The same rotation, only if the session belongs to the OAuth client `client_id`.
    pub fn for_client(self, client_id: Option<&'a str>) -> Self {
        Self { client_id, ..self }
    }

    /// The same rotation, only if the session is unbound or bound to the key `dpop_jkt`.
    pub fn for_dpop_key(self, dpop_jkt: Option<&'a str>) -> Self {
        Self { dpop_jkt, ..self }
    }
}

/// What to do with a presented refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// It is the current token: replace it with `successor` (a compare-and-swap on the
    /// generation, so only one of several racing requests wins).
    Rotate {
        /// The token that becomes current.
        successor: RefreshToken,
    },
    /// It is the predecessor, presented within the grace window: answer with the successor
    /// already issued. Nothing changes in storage.
    Replay {
        /// The current token, re-derived from its predecessor.
        successor: RefreshToken,
    },
    /// It was used before, outside the rules: revoke the session and refuse.
    Reused,
    /// Refuse, leaving the session as it is.
    Reject(RefreshRejection),
}

/// Applies the refresh rules 2–5 of `docs/protocol.md` (rule 1, "missing or not ours", is settled by parsing
/// and by the session look-up before this is called).
pub fn decide(
    session: &SessionState,
    token: &RefreshToken,
    key: &RefreshKey,
    now: Timestamp,
    lifetimes: &Lifetimes,
) -> Decision {
    if session.revoked {
        return Decision::Reject(RefreshRejection::Revoked);
    }
    if !LiveBounds::at(now, lifetimes).holds(session) {
        return Decision::Reject(RefreshRejection::Expired);
    }
    let presented = token.generation();
    if presented == session.generation {
        return if key.matches(token, &session.token_hash) {
            Decision::Rotate {
                successor: key.successor(token),
            }
        } else {
            // A good tag but not the stored token: only a holder of our secret could make it.
            Decision::Reject(RefreshRejection::Unknown)
        };
    }
    if presented.checked_add(1) == Some(session.generation) {
        let successor = key.successor(token);
        if !key.matches(&successor, &session.token_hash) {
            return Decision::Reject(RefreshRejection::Unknown);
        }
        return if now.since(session.rotated_at) <= lifetimes.reuse_grace {
            Decision::Replay { successor }
        } else {
            Decision::Reused
        };
    }
    if presented < session.generation {
        // The tag proves this deployment issued it, for this session: an old token, used again.
        Decision::Reused
    } else {
        Decision::Reject(RefreshRejection::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const SEC: Duration = Duration::from_secs(1);

    fn lifetimes() -> Lifetimes {
        Lifetimes {
            idle: 7 * 86_400 * SEC,
            absolute: 30 * 86_400 * SEC,
            reuse_grace: 10 * SEC,
        }
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    /// A session created at t=0 whose current token is `rotations` successors of its first.
    fn session(
        key: &RefreshKey,
        rotations: u64,
        rotated_at: Timestamp,
    ) -> (SessionState, Vec<RefreshToken>) {
        let mut tokens = vec![key.first(Uuid::new_v4(), [1; 32])];
        for _ in 0..rotations {
            let next = key.successor(tokens.last().unwrap());
            tokens.push(next);
        }
        let state = SessionState {
            generation: rotations,
            token_hash: key.hash(tokens.last().unwrap()).to_vec(),
            created_at: t(0),
            rotated_at,
            last_used_at: rotated_at,
            revoked: false,
        };
        (state, tokens)
    }

    #[test]
    fn the_current_token_rotates_to_its_successor() {
        let k = RefreshKey::new(&[1; 32]);
        let (s, tokens) = session(&k, 0, t(0));
        assert_eq!(
            decide(&s, &tokens[0], &k, t(60), &lifetimes()),
            Decision::Rotate {
                successor: k.successor(&tokens[0])
            }
        );
    }

    #[test]
    fn the_predecessor_within_grace_replays_the_same_successor() {
        let k = RefreshKey::new(&[1; 32]);
        let (s, tokens) = session(&k, 1, t(100));
        for at in [t(100), t(105), t(110)] {
            assert_eq!(
                decide(&s, &tokens[0], &k, at, &lifetimes()),
                Decision::Replay {
                    successor: tokens[1].clone()
                }
            );
        }
    }

    #[test]
    fn the_predecessor_after_grace_is_reuse() {
        let k = RefreshKey::new(&[1; 32]);
        let (s, tokens) = session(&k, 1, t(100));
        let just_after = Timestamp::from_millis(t(110).as_millis() + 1);
        assert_eq!(
            decide(&s, &tokens[0], &k, just_after, &lifetimes()),
            Decision::Reused
        );
    }

    #[test]
    fn an_older_token_is_reuse_even_within_grace() {
        let k = RefreshKey::new(&[1; 32]);
        let (s, tokens) = session(&k, 3, t(100));
        assert_eq!(
            decide(&s, &tokens[1], &k, t(100), &lifetimes()),
            Decision::Reused
        );
        assert_eq!(
            decide(&s, &tokens[0], &k, t(100), &lifetimes()),
            Decision::Reused
        );
    }

    #[test]
    fn a_revoked_session_says_revoked_before_anything_else() {
        let k = RefreshKey::new(&[1; 32]);
        let (mut s, tokens) = session(&k, 2, t(100));
        s.revoked = true;
        for tok in &tokens {
            assert_eq!(
                decide(&s, tok, &k, t(100), &lifetimes()),
                Decision::Reject(RefreshRejection::Revoked)
            );
        }
    }

    #[test]
    fn idle_and_absolute_lifetimes_end_the_session() {
        let k = RefreshKey::new(&[1; 32]);
        let l = lifetimes();
        let (s, tokens) = session(&k, 0, t(0));
        let idle_end = t(0).plus(l.idle);
        assert!(matches!(
            decide(
                &s,
                &tokens[0],
                &k,
                Timestamp::from_millis(idle_end.as_millis() - 1),
                &l
            ),
            Decision::Rotate { .. }
        ));
        assert_eq!(
            decide(&s, &tokens[0], &k, idle_end, &l),
            Decision::Reject(RefreshRejection::Expired)
        );

        // Used a day before the absolute end: the idle deadline is later, the absolute one wins.
        let (mut s, tokens) = session(&k, 0, t(0));
        let abs_end = t(0).plus(l.absolute);
        s.last_used_at = Timestamp::from_millis(abs_end.as_millis() - 86_400_000);
        assert_eq!(s.expires_at(&l), abs_end);
        assert_eq!(
            decide(&s, &tokens[0], &k, abs_end, &l),
            Decision::Reject(RefreshRejection::Expired)
        );
    }

    #[test]
    fn a_forged_token_of_the_current_generation_is_unknown() {
        let k = RefreshKey::new(&[1; 32]);
        let (s, tokens) = session(&k, 0, t(0));
        let forged = k.first(tokens[0].session_id(), [2; 32]);
        assert_eq!(
            decide(&s, &forged, &k, t(1), &lifetimes()),
            Decision::Reject(RefreshRejection::Unknown)
        );
    }

    #[test]
    fn a_token_from_the_future_is_unknown() {
        let k = RefreshKey::new(&[1; 32]);
        let (s, tokens) = session(&k, 0, t(0));
        let ahead = k.successor(&k.successor(&tokens[0]));
        assert_eq!(
            decide(&s, &ahead, &k, t(1), &lifetimes()),
            Decision::Reject(RefreshRejection::Unknown)
        );
    }
}

//! Refresh tokens: opaque to clients, self-authenticating to the server.
//!
//! A token is 72 bytes, written as 96 base64url characters:
//!
//! ```text
//! session id (16) | generation (8, big-endian) | nonce (32) | tag (16)
//! ```
//!
//! * The first token of a session gets a nonce of 256 bits from the OS CSPRNG.
//! * The successor's nonce is `HMAC(secret, predecessor)`, so a retry within the grace window
//!   re-derives the *same* successor: nothing but a hash of the current token is ever stored.
//! * The tag is `HMAC(secret, id | generation | nonce)`. A token with a good tag was issued by
//!   this deployment, so a bad one is "unknown" without a database look-up, and an old token
//!   with a good tag is proof of reuse — a guessed session id cannot revoke anybody's session.
//! * The database keeps `HMAC(secret, token)`: a dump of it yields no usable token.

use std::fmt;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::keys::derived_hmac_key;

const ID_LEN: usize = 16;
const GEN_LEN: usize = 8;
const NONCE_LEN: usize = 32;
const TAG_LEN: usize = 16;
const BODY_LEN: usize = ID_LEN + GEN_LEN + NONCE_LEN;
const TOKEN_LEN: usize = BODY_LEN + TAG_LEN;
/// Length of a refresh token in base64url characters.
pub const ENCODED_LEN: usize = TOKEN_LEN * 4 / 3;

/// The stored form of a refresh token: a keyed hash, 32 bytes.
pub type TokenHash = [u8; 32];

/// A refresh token this deployment issued (its tag has been checked). `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    bytes: [u8; TOKEN_LEN],
}

impl RefreshToken {
    /// The session (token family) this token belongs to.
    pub fn session_id(&self) -> Uuid {
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&self.bytes[..ID_LEN]);
        Uuid::from_bytes(id)
    }

    /// How many rotations preceded this token in its session (0 for the login token).
    pub fn generation(&self) -> u64 {
        let mut g = [0u8; GEN_LEN];
        g.copy_from_slice(&self.bytes[ID_LEN..ID_LEN + GEN_LEN]);
        u64::from_be_bytes(g)
    }

    /// The wire form: 96 base64url characters, no padding.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.bytes)
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RefreshToken {{ session: {}, generation: {}, .. }}",
            self.session_id(),
            self.generation()
        )
    }
}

/// The deployment's refresh-token secret, with its three derived HMAC keys.
pub struct RefreshKey {
    tag: hmac::Key,
    next: hmac::Key,
    hash: hmac::Key,
}

impl fmt::Debug for RefreshKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshKey(<redacted>)")
    }
}

impl RefreshKey {
    /// Length of the secret [`RefreshKey::new`] expects.
    pub const SECRET_LEN: usize = 32;

    /// Derives the keys from a 32-byte secret (see [`crate::keys::random_bytes`]).
    pub fn new(secret: &[u8]) -> Self {
        let derive = |label: &[u8]| derived_hmac_key(secret, label);
        Self {
            tag: derive(b"tessera refresh-token tag v1"),
            next: derive(b"tessera refresh-token successor v1"),
            hash: derive(b"tessera refresh-token storage hash v1"),
        }
    }

    fn seal(&self, body: &[u8; BODY_LEN]) -> RefreshToken {
        let mut bytes = [0u8; TOKEN_LEN];
        bytes[..BODY_LEN].copy_from_slice(body);
        bytes[BODY_LEN..].copy_from_slice(&hmac::sign(&self.tag, body).as_ref()[..TAG_LEN]);
        RefreshToken { bytes }
    }

    /// The first token of a new session, from `nonce` (256 bits of the OS CSPRNG).
    pub fn first(&self, session_id: Uuid, nonce: [u8; NONCE_LEN]) -> RefreshToken {
        let mut body = [0u8; BODY_LEN];
        body[..ID_LEN].copy_from_slice(session_id.as_bytes());
        body[ID_LEN + GEN_LEN..].copy_from_slice(&nonce);
        self.seal(&body)
    }

    /// The token that replaces `token` when it is rotated. Deterministic: the same predecessor
    /// always yields the same successor, which is what makes the grace window idempotent.
    pub fn successor(&self, token: &RefreshToken) -> RefreshToken {
        let mut body = [0u8; BODY_LEN];
        body[..ID_LEN].copy_from_slice(&token.bytes[..ID_LEN]);
        body[ID_LEN..ID_LEN + GEN_LEN].copy_from_slice(&(token.generation() + 1).to_be_bytes());
        body[ID_LEN + GEN_LEN..]
            .copy_from_slice(&hmac::sign(&self.next, &token.bytes).as_ref()[..NONCE_LEN]);
        self.seal(&body)
    }

    /// What the database stores for `token`.
    pub fn hash(&self, token: &RefreshToken) -> TokenHash {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.hash, &token.bytes).as_ref());
        out
    }

    /// True when `token` hashes to `stored` (compared in constant time).
    pub fn matches(&self, token: &RefreshToken, stored: &[u8]) -> bool {
        self.hash(token).ct_eq(stored).into()
    }

    /// Reads a presented token. `None` for anything this deployment did not issue: wrong length,
    /// non-canonical base64url, or a bad tag (another deployment's secret, a forgery).
    pub fn parse(&self, text: &str) -> Option<RefreshToken> {
        if text.len() != ENCODED_LEN {
            return None;
        }
        let mut bytes = [0u8; TOKEN_LEN];
        // The engine rejects padding and non-zero trailing bits, so each token has one spelling.
        let n = URL_SAFE_NO_PAD.decode_slice(text, &mut bytes).ok()?;
        if n != TOKEN_LEN {
            return None;
        }
        // The tag is truncated, so compare it ourselves (in constant time) rather than with
        // `hmac::verify`, which wants the whole MAC.
        let expected = hmac::sign(&self.tag, &bytes[..BODY_LEN]);
        bool::from(expected.as_ref()[..TAG_LEN].ct_eq(&bytes[BODY_LEN..]))
            .then_some(RefreshToken { bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> RefreshKey {
        RefreshKey::new(&[b; 32])
    }

    #[test]
    fn a_token_round_trips_through_its_wire_form() {
        let k = key(1);
        let sid = Uuid::new_v4();
        let t = k.first(sid, [7; 32]);
        let wire = t.encode();
        assert_eq!(wire.len(), ENCODED_LEN);
        let back = k.parse(&wire).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.session_id(), sid);
        assert_eq!(back.generation(), 0);
    }

    #[test]
    fn successors_are_deterministic_and_count_generations() {
        let k = key(1);
        let t0 = k.first(Uuid::new_v4(), [9; 32]);
        let t1 = k.successor(&t0);
        assert_eq!(t1, k.successor(&t0));
        assert_ne!(t1, t0);
        assert_eq!(t1.generation(), 1);
        assert_eq!(t1.session_id(), t0.session_id());
        assert_eq!(k.successor(&t1).generation(), 2);
        assert!(k.parse(&t1.encode()).is_some());
    }

    #[test]
    fn another_deployments_token_is_not_ours() {
        let t = key(1).first(Uuid::new_v4(), [3; 32]);
        assert!(key(2).parse(&t.encode()).is_none());
    }

    #[test]
    fn altered_or_misshapen_tokens_are_not_ours() {
        let k = key(1);
        let wire = k.first(Uuid::new_v4(), [5; 32]).encode();
        let mut flipped = wire.clone().into_bytes();
        flipped[40] = if flipped[40] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for bad in [
            String::new(),
            " ".repeat(ENCODED_LEN),
            wire[..ENCODED_LEN - 1].to_string(),
            format!("{wire}A"),
            format!("{wire}=="),
            wire.replace('-', "+").replace('_', "/"),
            flipped,
        ] {
            if bad != wire {
                assert!(k.parse(&bad).is_none(), "{bad:?} should be refused");
            }
        }
    }

    #[test]
    fn the_stored_hash_matches_only_its_token() {
        let k = key(1);
        let t0 = k.first(Uuid::new_v4(), [5; 32]);
        let t1 = k.successor(&t0);
        assert!(k.matches(&t0, &k.hash(&t0)));
        assert!(!k.matches(&t1, &k.hash(&t0)));
        assert!(!format!("{t0:?}").contains(&t0.encode()));
    }
}

//! Device tokens (OWASP's "device cookies"): a successful login hands the client one, and a
//! later login presenting it (the `tessera_device` cookie, or `device_token` in the body) is
//! counted against that device rather than against the username, so an attacker who keeps the
//! username held with wrong guesses never holds out the account's own devices.
//!
//! A token is 72 bytes, written as 96 base64url characters:
//!
//! ```text
//! user id (16) | issued at (8, big-endian milliseconds) | device id (16) | tag (32)
//! ```
//!
//! * The device id is 128 bits from the OS CSPRNG: the key of the device's own failure counter.
//! * The tag is `HMAC(key, user id | issued at | device id)`, under a key derived from the
//!   deployment's refresh-token secret with a label of its own. Nothing is stored: a token is
//!   valid for the user it names, until [`ThrottlePolicy::device_token_ttl`] after its issue
//!   (a year by default). Another user's token, a tampered or an expired one exempts nothing.
//!
//! [`ThrottlePolicy::device_token_ttl`]: crate::throttle::ThrottlePolicy::device_token_ttl

use std::fmt;
use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::Error;
use crate::keys::{derived_hmac_key, random_bytes};
use crate::time::Timestamp;

const USER_LEN: usize = 16;
const TIME_LEN: usize = 8;
const DEVICE_LEN: usize = 16;
const BODY_LEN: usize = USER_LEN + TIME_LEN + DEVICE_LEN;
const TOKEN_LEN: usize = BODY_LEN + 32;
/// Length of a device token in base64url characters.
pub const ENCODED_LEN: usize = TOKEN_LEN * 4 / 3;

/// A device token in its wire form. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceToken(String);

impl DeviceToken {
    /// The token as the client receives it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceToken(<redacted>)")
    }
}

/// The key device tokens are signed with.
pub struct DeviceKey(hmac::Key);

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKey(<redacted>)")
    }
}

impl DeviceKey {
    /// Derives the key from the deployment's 32-byte refresh-token secret.
    pub fn new(secret: &[u8]) -> Self {
        Self(derived_hmac_key(secret, b"tessera device token v1"))
    }

    /// A new device's token for `user_id`, issued at `now`.
    pub fn issue(&self, user_id: Uuid, now: Timestamp) -> Result<DeviceToken, Error> {
        let mut bytes = [0u8; TOKEN_LEN];
        bytes[..USER_LEN].copy_from_slice(user_id.as_bytes());
        bytes[USER_LEN..USER_LEN + TIME_LEN].copy_from_slice(&now.as_millis().to_be_bytes());
        bytes[USER_LEN + TIME_LEN..BODY_LEN].copy_from_slice(&random_bytes::<DEVICE_LEN>()?);
        let tag = hmac::sign(&self.0, &bytes[..BODY_LEN]);
        bytes[BODY_LEN..].copy_from_slice(tag.as_ref());
        Ok(DeviceToken(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The device id of `presented` when it is a token this deployment issued to `user_id`
    /// less than `ttl` before `now`; `None` for anything else.
    pub fn verify(
        &self,
        presented: &str,
        user_id: Uuid,
        now: Timestamp,
        ttl: Duration,
    ) -> Option<String> {
        if presented.len() != ENCODED_LEN {
            return None;
        }
        let mut bytes = [0u8; TOKEN_LEN];
        // The engine refuses padding and non-zero trailing bits: one spelling per token.
        if URL_SAFE_NO_PAD.decode_slice(presented, &mut bytes).ok()? != TOKEN_LEN {
            return None;
        }
        hmac::verify(&self.0, &bytes[..BODY_LEN], &bytes[BODY_LEN..]).ok()?;
        if bytes[..USER_LEN] != *user_id.as_bytes() {
            return None;
        }
        let mut issued = [0u8; TIME_LEN];
        issued.copy_from_slice(&bytes[USER_LEN..USER_LEN + TIME_LEN]);
        let issued = Timestamp::from_millis(i64::from_be_bytes(issued));
        (now < issued.plus(ttl))
            .then(|| URL_SAFE_NO_PAD.encode(&bytes[USER_LEN + TIME_LEN..BODY_LEN]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YEAR: Duration = Duration::from_secs(365 * 86_400);

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    #[test]
    fn a_token_is_valid_for_its_user_until_it_expires_and_nothing_else_is() {
        let key = DeviceKey::new(&[1; 32]);
        let alice = Uuid::new_v4();
        let token = key.issue(alice, at(100)).unwrap();
        assert_eq!(token.expose().len(), ENCODED_LEN);
        let device = key.verify(token.expose(), alice, at(100), YEAR);
        assert!(device.is_some());
        assert_eq!(
            key.verify(
                token.expose(),
                alice,
                at(100).plus(YEAR).minus(Duration::from_millis(1)),
                YEAR
            ),
            device
        );
        assert_eq!(
            key.verify(token.expose(), alice, at(100).plus(YEAR), YEAR),
            None,
            "expired"
        );
        assert_eq!(
            key.verify(token.expose(), Uuid::new_v4(), at(100), YEAR),
            None,
            "another user"
        );
        assert_eq!(
            DeviceKey::new(&[2; 32]).verify(token.expose(), alice, at(100), YEAR),
            None,
            "another deployment"
        );
        let mut tampered = token.expose().to_owned();
        tampered.replace_range(30..31, if &tampered[30..31] == "A" { "B" } else { "A" });
        for bad in [
            String::new(),
            tampered,
            format!("{}A", token.expose()),
            token.expose()[..ENCODED_LEN - 1].to_owned(),
            "x".repeat(10 * 1024),
        ] {
            assert_eq!(key.verify(&bad, alice, at(100), YEAR), None, "{bad:?}");
        }
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn each_token_names_a_device_of_its_own() {
        let key = DeviceKey::new(&[1; 32]);
        let alice = Uuid::new_v4();
        let one = key.issue(alice, at(0)).unwrap();
        let two = key.issue(alice, at(0)).unwrap();
        assert_ne!(
            key.verify(one.expose(), alice, at(0), YEAR),
            key.verify(two.expose(), alice, at(0), YEAR)
        );
    }
}

//! Password-reset tokens: 256 bits from the OS CSPRNG, written as 43 base64url characters.
//!
//! The database keeps only `HMAC(key, token)`, under a key derived from the deployment's
//! refresh-token secret (with a label of its own, so the two uses never share a key): a dump of
//! the database yields no usable reset token. A presented token that is not 43 canonical
//! base64url characters is hashed all the same (as a fixed dummy), so a malformed token costs
//! the same work as a well-formed one.

use std::fmt;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::Error;
use crate::keys::{derived_hmac_key, random_bytes};

const TOKEN_LEN: usize = 32;
/// Length of a reset token in base64url characters.
pub const ENCODED_LEN: usize = 43;

/// A fresh reset token (wire form). `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct ResetToken(String);

impl ResetToken {
    /// The token as the user receives it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ResetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResetToken(<redacted>)")
    }
}

/// The keyed hash reset tokens are stored as.
pub struct ResetKey(hmac::Key);

impl fmt::Debug for ResetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResetKey(<redacted>)")
    }
}

impl ResetKey {
    /// Derives the key from the deployment's 32-byte refresh-token secret.
    pub fn new(secret: &[u8]) -> Self {
        Self(derived_hmac_key(
            secret,
            b"tessera password-reset token storage hash v1",
        ))
    }

    /// A new token and its stored hash.
    pub fn generate(&self) -> Result<(ResetToken, [u8; 32]), Error> {
        let bytes = random_bytes::<TOKEN_LEN>()?;
        Ok((
            ResetToken(URL_SAFE_NO_PAD.encode(bytes)),
            self.hash_bytes(&bytes),
        ))
    }

    /// The stored hash of a presented token. A malformed one (wrong length, not canonical
    /// base64url) hashes a fixed dummy instead, which no stored token has (a stored hash is of
    /// 32 random bytes): the same work, and a look-up that finds nothing.
    pub fn hash(&self, presented: &str) -> [u8; 32] {
        let mut bytes = [0u8; TOKEN_LEN];
        let ok = presented.len() == ENCODED_LEN
            && URL_SAFE_NO_PAD.decode_slice(presented, &mut bytes).ok() == Some(TOKEN_LEN);
        if ok {
            self.hash_bytes(&bytes)
        } else {
            let mut out = self.hash_bytes(b"tessera: not a reset token");
            // Never equal to a real token's hash: flip a bit of a hash no token can have.
            out[0] ^= 0xff;
            out
        }
    }

    fn hash_bytes(&self, bytes: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.0, bytes).as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_hashes_to_what_was_stored_and_nothing_else_does() {
        let key = ResetKey::new(&[1; 32]);
        let (token, stored) = key.generate().unwrap();
        assert_eq!(token.expose().len(), ENCODED_LEN);
        assert_eq!(key.hash(token.expose()), stored);
        assert_ne!(ResetKey::new(&[2; 32]).hash(token.expose()), stored);
        let mut altered = token.expose().to_owned();
        altered.replace_range(0..1, if altered.starts_with('A') { "B" } else { "A" });
        for bad in [
            String::new(),
            altered,
            format!("{}A", token.expose()),
            "x".repeat(10 * 1024),
            token.expose()[..ENCODED_LEN - 1].to_owned(),
        ] {
            assert_ne!(key.hash(&bad), stored, "{bad:?}");
        }
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn tokens_are_fresh_each_time() {
        let key = ResetKey::new(&[1; 32]);
        assert_ne!(key.generate().unwrap().0, key.generate().unwrap().0);
    }
}

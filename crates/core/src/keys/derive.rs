//! Sub-keys of the deployment's 32-byte secret: `HMAC-SHA256(secret, label)`, one label per
//! use, so no two uses (refresh-token tags, reset-token hashes, device tokens, event sealing,
//! DPoP nonces) ever share a key.

use aws_lc_rs::hmac;

/// The 32 bytes of the sub-key of `secret` for the use `label` names.
pub(crate) fn derived_bytes(secret: &[u8], label: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), label)
}

/// The HMAC-SHA256 key derived from `secret` for the use `label` names.
pub(crate) fn derived_hmac_key(secret: &[u8], label: &[u8]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, derived_bytes(secret, label).as_ref())
}

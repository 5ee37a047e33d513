//! The key ring's operations, as the service offers them (the CLI's `keys`, the JWKS route and
//! the periodic reload).

use jsonwebtoken::jwk::JwkSet;

use super::Tessera;
use crate::error::Error;
use crate::keys::{KeyReport, StoredKey};

impl Tessera {
    /// Re-reads the keys from the store (run every [`crate::KEY_RELOAD_INTERVAL`], so keys
    /// rotated by another instance or the CLI are picked up).
    pub async fn reload_keys(&self) -> Result<(), Error> {
        self.keys.reload(&*self.store).await
    }

    /// Adds a new signing key of the configured algorithm. It is published at once and signs
    /// from [`crate::keys::ACTIVATION_DELAY`] later.
    pub async fn rotate_keys(&self) -> Result<StoredKey, Error> {
        self.keys.rotate(&*self.store, self.now()).await
    }

    /// Every key with its state at this moment, oldest first.
    pub fn key_report(&self) -> Vec<KeyReport> {
        self.keys.report(self.now(), self.token_lifetime())
    }

    /// The JWK Set to publish.
    pub fn jwks(&self) -> JwkSet {
        self.keys.jwks(self.now(), self.token_lifetime())
    }
}

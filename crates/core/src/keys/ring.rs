//! [`KeyRing`]: the keys a running service signs and verifies with, reloaded from the store so
//! keys rotated by another instance or the CLI are picked up.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use tessera_token::SigningAlg;

use super::ACTIVATION_DELAY;
use super::seal::Kek;
use super::set::KeySet;
use super::stored::StoredKey;
use crate::error::Error;
use crate::store::Store;
use crate::time::Timestamp;

/// The live [`KeySet`] of a service, swapped whole on reload so readers never wait on a writer
/// for longer than an `Arc` clone.
pub struct KeyRing {
    keys: RwLock<Arc<KeySet>>,
    kek: Option<Kek>,
    alg: SigningAlg,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("alg", &self.alg)
            .field("keys", &self.current().keys().len())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Loads the stored keys, first adding one for `alg` unless the newest key is already of
    /// that algorithm: the configured algorithm is the one that signs (once the new key's
    /// activation comes), also after a switch to another algorithm and back.
    pub async fn open(
        store: &dyn Store,
        alg: SigningAlg,
        kek: Option<Kek>,
        now: Timestamp,
    ) -> Result<Self, Error> {
        let stored = store.keys().await?;
        let newest = stored
            .iter()
            .max_by_key(|k| (k.activate_at, k.created_at, k.kid.as_str()));
        if newest.is_none_or(|k| k.alg != alg) {
            // The very first key signs at once; a later one (an algorithm change) waits until
            // every instance can have published it.
            let activate_at = if stored.is_empty() {
                now
            } else {
                now.plus(ACTIVATION_DELAY)
            };
            let key = StoredKey::generate(alg, kek.as_ref(), now, activate_at)?;
            store.insert_key(&key).await?;
            tracing::info!(kid = %key.kid, alg = %key.alg, "created a signing key");
        }
        let keys = KeySet::load(&store.keys().await?, kek.as_ref())?;
        Ok(Self {
            keys: RwLock::new(Arc::new(keys)),
            kek,
            alg,
        })
    }

    /// The key-encryption key, if one is set.
    pub fn kek(&self) -> Option<&Kek> {
        self.kek.as_ref()
    }

    /// The keys as of the last reload.
    pub fn current(&self) -> Arc<KeySet> {
        // A poisoned lock only means a panic elsewhere mid-swap of an `Arc`: the value is intact.
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads the keys from the store; re-parses only when the set of kids changed.
    pub async fn reload(&self, store: &dyn Store) -> Result<(), Error> {
        let stored = store.keys().await?;
        let current = self.current();
        let same = stored.len() == current.keys().len()
            && stored
                .iter()
                .all(|s| current.keys().iter().any(|k| k.key.kid() == s.kid));
        if !same {
            let fresh = Arc::new(KeySet::load(&stored, self.kek.as_ref())?);
            *self.keys.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        }
        Ok(())
    }

    /// Adds a new key of the ring's algorithm: published at once, signing from
    /// [`ACTIVATION_DELAY`] after `now`.
    pub async fn rotate(&self, store: &dyn Store, now: Timestamp) -> Result<StoredKey, Error> {
        let key =
            StoredKey::generate(self.alg, self.kek.as_ref(), now, now.plus(ACTIVATION_DELAY))?;
        store.insert_key(&key).await?;
        self.reload(store).await?;
        Ok(key)
    }

    /// Every key with its state at `now`, oldest first.
    pub fn report(&self, now: Timestamp, token_lifetime: Duration) -> Vec<KeyReport> {
        let keys = self.current();
        let signing = keys.signing_key(now).map(|k| k.key.kid().to_owned());
        let published: Vec<&str> = keys
            .published(now, token_lifetime)
            .map(|k| k.key.kid())
            .collect();
        keys.keys()
            .iter()
            .map(|k| KeyReport {
                kid: k.key.kid().to_owned(),
                alg: k.key.alg(),
                created_at: k.created_at,
                activate_at: k.activate_at,
                signing: signing.as_deref() == Some(k.key.kid()),
                published: published.contains(&k.key.kid()),
            })
            .collect()
    }

    /// The JWK Set to publish at `now`.
    pub fn jwks(&self, now: Timestamp, token_lifetime: Duration) -> JwkSet {
        self.current().jwks(now, token_lifetime)
    }
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

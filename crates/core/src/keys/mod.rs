//! Signing keys on the issuer's side: generation, sealing at rest, the rotation policy and the
//! key ring a running service signs with.
//!
//! Keys live in the [`crate::Store`] so every instance sharing a database signs and publishes
//! the same ones. A rotated-in key is *published* as soon as instances reload (every few
//! seconds) but *signs* only from its `activate_at`, [`ACTIVATION_DELAY`] later, so no instance
//! signs with a key another has not yet published. A key leaves the JWKS once every token it
//! can have signed has expired.
//!
//! One file per job: [`random`] (the OS CSPRNG), `derive` (sub-keys of the deployment's
//! secret, one label per use), [`seal`] (the KEK and sealed blobs),
//! [`stored`] (a key as kept in the store, and its generation), [`set`] (which key signs and
//! which are published), [`ring`] (the live set of a running service, reloaded and rotated).
//! The public half — algorithms, JWKs, verification — is `tessera-token`'s.

use std::time::Duration;

mod derive;
pub mod random;
pub mod ring;
pub mod seal;
pub mod set;
pub mod stored;

pub(crate) use derive::{derived_bytes, derived_hmac_key};
pub use random::random_bytes;
pub use ring::{KeyReport, KeyRing};
pub use seal::{Kek, SealedBlob};
pub use set::{KeySet, LoadedKey};
pub use stored::StoredKey;
pub use tessera_token::{PublicKey, PublicKeySet, SigningAlg};

/// How long after `keys rotate` a new key starts signing. Instances reload keys every
/// [`KEY_RELOAD_INTERVAL`], so by then every instance publishes it.
pub const ACTIVATION_DELAY: Duration = Duration::from_secs(20);

/// How often a running server re-reads the keys from the store.
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

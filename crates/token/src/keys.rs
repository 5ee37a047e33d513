//! Keys ready to use: an issuer's [`SigningKey`] (private, parsed once) and a resource
//! service's [`PublicKeySet`] (the issuer's published JWK Set, each key pinned to its `alg`).

use std::fmt;

use jsonwebtoken::jwk::{Jwk, JwkSet};

use crate::algorithm::SigningAlg;
use crate::crypto::{Signer, Verifier};
use crate::error::Error;
use crate::jwk;

/// A private key ready to sign and verify, pinned to one algorithm: parsed once, not per token.
pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    pub(crate) signer: Signer,
    pub(crate) verifier: Verifier,
    /// `None` for HS256, whose secret is never published.
    jwk: Option<Jwk>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Parses a PKCS#8 DER private key (for HS256, the secret itself) for `alg`.
    pub fn from_private(
        kid: impl Into<String>,
        alg: SigningAlg,
        private: &[u8],
    ) -> Result<Self, Error> {
        let kid = kid.into();
        let signer = Signer::from_private(alg, private)?;
        let verifier = signer.verifier()?;
        let jwk = signer.public_parts().map(|parts| jwk::write(&kid, &parts));
        Ok(Self {
            kid,
            alg,
            signer,
            verifier,
            jwk,
        })
    }

    /// Key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The pinned algorithm: a token naming another `alg` is refused.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The public JWK (`None` for HS256, whose secret is never published).
    pub fn jwk(&self) -> Option<&Jwk> {
        self.jwk.as_ref()
    }
}

/// A public key of a remote issuer, pinned to one algorithm: what a resource service verifies
/// access tokens with. It holds no private material and cannot sign.
pub struct PublicKey {
    /// Key id.
    pub kid: String,
    /// Pinned algorithm: a token naming another `alg` is refused.
    pub alg: SigningAlg,
    pub(crate) verifier: Verifier,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    fn from_jwk(jwk: &Jwk) -> Option<Self> {
        let (kid, alg, parts) = jwk::read(jwk)?;
        let verifier = Verifier::from_public(alg, &parts)?;
        Some(Self { kid, alg, verifier })
    }
}

/// The verification keys of an issuer, read from the JWK Set it publishes
/// (`GET /.well-known/jwks.json`): for services that verify tokens but hold no private key and
/// no database.
///
/// Every key in the set is trusted (the issuer publishes exactly the keys that may have signed
/// a live token), each pinned to the `alg` its JWK names. Keys that cannot be used safely are
/// left out rather than guessed at: a key without `kid` or `alg`, an `alg` other than `EdDSA`,
/// `ES256` or `RS256` (a symmetric `HS256` secret is never taken from a published set), a key
/// type or curve that does not fit its `alg`, or a `use` other than `sig`.
///
/// ```
/// use tessera_token::{PublicKeySet, SigningAlg, SigningKey};
/// use jsonwebtoken::jwk::JwkSet;
///
/// // An Ed25519 key as an issuer holds it (PKCS#8), and the JWK Set it publishes:
/// let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8v1(
///     &aws_lc_rs::rand::SystemRandom::new(),
/// ).unwrap();
/// let issuer = SigningKey::from_private("k1", SigningAlg::EdDSA, pkcs8.as_ref())?;
/// let published = serde_json::to_vec(&JwkSet { keys: issuer.jwk().into_iter().cloned().collect() }).unwrap();
/// // As a resource service receives it:
/// let keys = PublicKeySet::from_json(&published)?;
/// assert_eq!(keys.len(), 1);
/// assert_eq!(keys.find("k1").map(|k| k.alg), Some(SigningAlg::EdDSA));
/// # Ok::<(), tessera_token::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct PublicKeySet {
    keys: Vec<PublicKey>,
}

impl PublicKeySet {
    /// The usable keys of a JWK Set. Two keys with one `kid` make the set ambiguous: an error.
    pub fn from_jwks(set: &JwkSet) -> Result<Self, Error> {
        let mut keys: Vec<PublicKey> = Vec::with_capacity(set.keys.len());
        for jwk in &set.keys {
            let Some(key) = PublicKey::from_jwk(jwk) else {
                tracing::debug!(kid = ?jwk.common.key_id, "skipping an unusable key of the JWK Set");
                continue;
            };
            if keys.iter().any(|k| k.kid == key.kid) {
                return Err(Error::JwkSet(format!(
                    "the JWK Set has two keys with kid `{}`",
                    key.kid
                )));
            }
            keys.push(key);
        }
        Ok(Self { keys })
    }

    /// Reads a JWK Set document (`{"keys": [...]}`). A member that is not a JWK this library
    /// understands is skipped like any other unusable key, so one exotic key does not hide the
    /// others.
    pub fn from_json(json: &[u8]) -> Result<Self, Error> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let doc: Document = serde_json::from_slice(json)
            .map_err(|e| Error::JwkSet(format!("the JWK Set is not valid JSON: {e}")))?;
        let keys = doc
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
            .collect();
        Self::from_jwks(&JwkSet { keys })
    }

    /// The key with this `kid`.
    pub fn find(&self, kid: &str) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// Every key, in the order the set listed them.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// How many usable keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

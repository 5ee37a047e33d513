//! The rotation policy: of every key of the deployment, which one signs now and which are
//! published.

use std::fmt;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use tessera_token::{KeyLookup, SigningKey, VerifyingKey};

use super::seal::Kek;
use super::stored::{StoredKey, key_label};
use crate::error::Error;
use crate::time::Timestamp;

/// A stored key unsealed and parsed once, with the times that place it in the rotation.
pub struct LoadedKey {
    /// The key itself (kid, pinned alg, signer, public JWK).
    pub key: SigningKey,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it starts signing.
    pub activate_at: Timestamp,
}

impl fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedKey")
            .field("key", &self.key)
            .field("activate_at", &self.activate_at)
            .finish_non_exhaustive()
    }
}

impl LoadedKey {
    /// Unseals and parses a stored key.
    pub fn load(stored: &StoredKey, kek: Option<&Kek>) -> Result<Self, Error> {
        let private = stored.private.open(kek, &key_label(&stored.kid))?;
        let key = SigningKey::from_private(stored.kid.clone(), stored.alg, &private)
            .map_err(|e| Error::Internal(format!("key {} is unusable: {e}", stored.kid).into()))?;
        Ok(Self {
            key,
            created_at: stored.created_at,
            activate_at: stored.activate_at,
        })
    }
}

/// Every key of the deployment, oldest first, with the rules for which one signs and which are
/// published.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<LoadedKey>,
}

impl KeySet {
    /// Loads (unseals, parses) every stored key.
    pub fn load(stored: &[StoredKey], kek: Option<&Kek>) -> Result<Self, Error> {
        let mut keys = stored
            .iter()
            .map(|k| LoadedKey::load(k, kek))
            .collect::<Result<Vec<_>, _>>()?;
        keys.sort_by(|a, b| {
            (a.activate_at, a.created_at, a.key.kid()).cmp(&(
                b.activate_at,
                b.created_at,
                b.key.kid(),
            ))
        });
        Ok(Self { keys })
    }

    /// All keys, oldest first.
    pub fn keys(&self) -> &[LoadedKey] {
        &self.keys
    }

    /// The key that signs at `now`: the newest whose activation time has come.
    pub fn signing_key(&self, now: Timestamp) -> Option<&LoadedKey> {
        self.keys.iter().rev().find(|k| k.activate_at <= now)
    }

    /// Keys that may have signed a live token, or soon will: every key except those replaced
    /// by a newer active key more than `token_lifetime` ago.
    pub fn published(
        &self,
        now: Timestamp,
        token_lifetime: Duration,
    ) -> impl Iterator<Item = &LoadedKey> {
        self.keys
            .iter()
            .enumerate()
            .filter(move |(i, _)| match self.keys.get(i + 1) {
                Some(next) if next.activate_at <= now => {
                    now < next.activate_at.plus(token_lifetime)
                }
                _ => true,
            })
            .map(|(_, k)| k)
    }

    /// A published key by `kid`.
    pub fn find(&self, kid: &str, now: Timestamp, token_lifetime: Duration) -> Option<&LoadedKey> {
        self.published(now, token_lifetime)
            .find(|k| k.key.kid() == kid)
    }

    /// The published keys at `now`, as the key lookup of access-token verification.
    pub fn at(&self, now: Timestamp, token_lifetime: Duration) -> PublishedAt<'_> {
        PublishedAt {
            set: self,
            now,
            token_lifetime,
        }
    }

    /// The JWK Set of published public keys (HS256 secrets are never included).
    pub fn jwks(&self, now: Timestamp, token_lifetime: Duration) -> JwkSet {
        JwkSet {
            keys: self
                .published(now, token_lifetime)
                .filter_map(|k| k.key.jwk().cloned())
                .collect(),
        }
    }
}

/// [`KeySet::at`]: the keys that verify tokens at one moment.
#[derive(Clone, Copy, Debug)]
pub struct PublishedAt<'a> {
    set: &'a KeySet,
    now: Timestamp,
    token_lifetime: Duration,
}

impl KeyLookup for PublishedAt<'_> {
    fn verifying_key(&self, kid: &str) -> Option<VerifyingKey<'_>> {
        self.set
            .find(kid, self.now, self.token_lifetime)
            .map(|k| VerifyingKey::from(&k.key))
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, OctetKeyParameters, OctetKeyType};
    use tessera_token::{PublicKeySet, SigningAlg};

    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    #[test]
    fn every_algorithm_generates_a_loadable_key() {
        for alg in [
            SigningAlg::EdDSA,
            SigningAlg::ES256,
            SigningAlg::RS256,
            SigningAlg::HS256,
        ] {
            let stored = StoredKey::generate(alg, None, at(0), at(0)).unwrap();
            let loaded = LoadedKey::load(&stored, None).unwrap();
            assert_eq!(loaded.key.alg(), alg);
            assert_eq!(loaded.key.jwk().is_some(), alg != SigningAlg::HS256);
        }
    }

    #[test]
    fn sealed_keys_need_the_right_kek() {
        let kek = Kek::parse(&URL_SAFE_NO_PAD.encode([7u8; 32])).unwrap();
        let other = Kek::parse(&URL_SAFE_NO_PAD.encode([8u8; 32])).unwrap();
        let stored = StoredKey::generate(SigningAlg::EdDSA, Some(&kek), at(0), at(0)).unwrap();
        assert!(stored.private.sealed);
        assert!(LoadedKey::load(&stored, Some(&kek)).is_ok());
        assert!(LoadedKey::load(&stored, Some(&other)).is_err());
        assert!(LoadedKey::load(&stored, None).is_err());
    }

    #[test]
    fn a_published_set_yields_every_public_key_pinned_to_its_alg_and_never_a_secret() {
        let life = Duration::from_secs(900);
        let stored: Vec<StoredKey> = [
            SigningAlg::EdDSA,
            SigningAlg::ES256,
            SigningAlg::RS256,
            SigningAlg::HS256,
        ]
        .into_iter()
        .map(|alg| StoredKey::generate(alg, None, at(0), at(0)).unwrap())
        .collect();
        let set = KeySet::load(&stored, None).unwrap();
        let json = serde_json::to_vec(&set.jwks(at(0), life)).unwrap();
        let public = PublicKeySet::from_json(&json).unwrap();
        assert_eq!(public.len(), 3);
        for key in &stored {
            let found = public.find(&key.kid).map(|k| k.alg);
            let expected = (key.alg != SigningAlg::HS256).then_some(key.alg);
            assert_eq!(found, expected, "{}", key.alg);
        }
        // A secret published by mistake is not taken as a verification key either.
        let mut oct = Jwk {
            common: Default::default(),
            algorithm: AlgorithmParameters::OctetKey(OctetKeyParameters {
                key_type: OctetKeyType::Octet,
                value: URL_SAFE_NO_PAD.encode(&stored[3].private.material),
            }),
        };
        oct.common.key_id = Some("oct".into());
        oct.common.key_algorithm = Some(jsonwebtoken::jwk::KeyAlgorithm::HS256);
        assert!(
            PublicKeySet::from_jwks(&JwkSet { keys: vec![oct] })
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn keys_that_do_not_fit_their_alg_are_skipped_and_a_repeated_kid_is_refused() {
        let ed = StoredKey::generate(SigningAlg::EdDSA, None, at(0), at(0)).unwrap();
        let jwk = LoadedKey::load(&ed, None)
            .unwrap()
            .key
            .jwk()
            .cloned()
            .unwrap();
        let mut value = serde_json::to_value(&jwk).unwrap();
        let variant = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = value.clone();
            f(&mut v);
            serde_json::json!({ "keys": [v] }).to_string()
        };
        for bad in [
            variant(&|v| v["alg"] = "ES256".into()),
            variant(&|v| v["alg"] = "none".into()),
            variant(&|v| v["use"] = "enc".into()),
            variant(&|v| {
                v.as_object_mut().unwrap().remove("alg");
            }),
            variant(&|v| {
                v.as_object_mut().unwrap().remove("kid");
            }),
            variant(&|v| v["kty"] = "XYZ".into()),
        ] {
            assert!(
                PublicKeySet::from_json(bad.as_bytes()).unwrap().is_empty(),
                "{bad}"
            );
        }
        let good_and_exotic = serde_json::json!({"keys": [value, {"kty": "ML-DSA", "kid": "pq"}]});
        assert_eq!(
            PublicKeySet::from_json(good_and_exotic.to_string().as_bytes())
                .unwrap()
                .len(),
            1
        );
        value["x"] = serde_json::to_value(URL_SAFE_NO_PAD.encode([1u8; 32])).unwrap();
        let twice = serde_json::json!({"keys": [jwk, value]});
        assert!(PublicKeySet::from_json(twice.to_string().as_bytes()).is_err());
        assert!(PublicKeySet::from_json(b"<html>").is_err());
    }

    #[test]
    fn a_rotated_key_is_published_at_once_signs_later_and_retires_after_token_lifetime() {
        let old = StoredKey::generate(SigningAlg::EdDSA, None, at(0), at(0)).unwrap();
        let new = StoredKey::generate(SigningAlg::EdDSA, None, at(100), at(120)).unwrap();
        let set = KeySet::load(&[new.clone(), old.clone()], None).unwrap();
        let life = Duration::from_secs(900);
        let kids = |now| {
            set.published(at(now), life)
                .map(|k| k.key.kid().to_owned())
                .collect::<Vec<_>>()
        };
        let signer = |now| set.signing_key(at(now)).unwrap().key.kid().to_owned();

        assert_eq!(signer(110), old.kid);
        assert_eq!(kids(110), vec![old.kid.clone(), new.kid.clone()]);
        assert_eq!(signer(120), new.kid);
        assert_eq!(kids(1019), vec![old.kid.clone(), new.kid.clone()]);
        assert_eq!(kids(1020), vec![new.kid.clone()]);
        assert!(set.find(&old.kid, at(1020), life).is_none());
        assert_eq!(set.jwks(at(0), life).keys.len(), 2);
    }
}

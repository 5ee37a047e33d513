//! Signing keys: generation, sealing at rest, the key ring, and the JWKS.
//!
//! Keys live in the [`crate::Store`] so every instance sharing a database signs and publishes
//! the same ones. A rotated-in key is *published* as soon as instances reload (every few
//! seconds) but *signs* only from its `activate_at`, [`ACTIVATION_DELAY`] later, so no instance
//! signs with a key another has not yet published. A key leaves the JWKS once every token it
//! can have signed has expired.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, RandomizedNonceKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
    RsaKeyPair, VerificationAlgorithm,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey};

use crate::error::Error;
use crate::time::Timestamp;

/// How long after `keys rotate` a new key starts signing. Instances reload keys every
/// [`KEY_RELOAD_INTERVAL`], so by then every instance publishes it.
pub const ACTIVATION_DELAY: Duration = Duration::from_secs(20);

/// How often a running server re-reads the keys from the store.
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The JWS algorithms Tessera signs access tokens with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    /// Ed25519 (the default).
    EdDSA,
    /// ECDSA with P-256 and SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    RS256,
    /// HMAC-SHA-256 with a shared secret: only for deployments where one party verifies.
    HS256,
}

impl SigningAlg {
    /// The JOSE name (`alg` header value).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
            Self::HS256 => "HS256",
        }
    }

    fn jwt(self) -> Algorithm {
        match self {
            Self::EdDSA => Algorithm::EdDSA,
            Self::ES256 => Algorithm::ES256,
            Self::RS256 => Algorithm::RS256,
            Self::HS256 => Algorithm::HS256,
        }
    }
}

impl FromStr for SigningAlg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "EdDSA" => Ok(Self::EdDSA),
            "ES256" => Ok(Self::ES256),
            "RS256" => Ok(Self::RS256),
            "HS256" => Ok(Self::HS256),
            other => Err(format!(
                "`{other}` is not one of EdDSA, ES256, RS256, HS256"
            )),
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `n` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out)
        .map_err(|_| Error::Internal("the OS random generator failed".into()))?;
    Ok(out)
}

/// The key-encryption key (`TESSERA_KEY_ENCRYPTION_KEY`): seals private keys and secrets at
/// rest with AES-256-GCM, so a database dump alone yields no usable key.
#[derive(Clone)]
pub struct Kek([u8; 32]);

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    /// Reads a KEK written as 32 bytes in base64 (standard or URL-safe alphabet).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| {
                "must be 32 bytes written in base64 (e.g. `openssl rand -base64 32`)".to_string()
            })?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("must be 32 bytes, not {}", b.len()))?;
        Ok(Self(bytes))
    }

    fn aead(&self) -> Result<RandomizedNonceKey, Error> {
        RandomizedNonceKey::new(&AES_256_GCM, &self.0)
            .map_err(|_| Error::Internal("unusable AES-256 key".into()))
    }

    fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let mut buf = plaintext.to_vec();
        let nonce = self
            .aead()?
            .seal_in_place_append_tag(Aad::from(aad.as_bytes()), &mut buf)
            .map_err(|_| Error::Internal("sealing a key failed".into()))?;
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    fn open(&self, aad: &str, sealed: &[u8]) -> Result<Vec<u8>, Error> {
        let bad = || {
            Error::Internal(format!(
                "cannot unseal {aad}: wrong TESSERA_KEY_ENCRYPTION_KEY or damaged data"
            ))
        };
        if sealed.len() < 12 {
            return Err(bad());
        }
        let (nonce, ct) = sealed.split_at(12);
        let nonce = aws_lc_rs::aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let mut buf = ct.to_vec();
        let plain = self
            .aead()?
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
            .map_err(|_| bad())?;
        Ok(plain.to_vec())
    }
}

/// A secret as kept in the store: sealed with the KEK when one is configured.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedBlob {
    /// The bytes (the secret itself, or nonce | ciphertext | tag when sealed).
    pub material: Vec<u8>,
    /// Whether `material` is sealed with the KEK.
    pub sealed: bool,
}

impl fmt::Debug for SealedBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedBlob {{ sealed: {}, .. }}", self.sealed)
    }
}

impl SealedBlob {
    /// Seals `plaintext` with `kek` if there is one. `label` binds the ciphertext to its use.
    pub fn seal(kek: Option<&Kek>, label: &str, plaintext: &[u8]) -> Result<Self, Error> {
        Ok(match kek {
            Some(k) => Self {
                material: k.seal(label, plaintext)?,
                sealed: true,
            },
            None => Self {
                material: plaintext.to_vec(),
                sealed: false,
            },
        })
    }

    /// The plaintext. A sealed blob needs the KEK it was sealed with.
    pub fn open(&self, kek: Option<&Kek>, label: &str) -> Result<Vec<u8>, Error> {
        match (self.sealed, kek) {
            (false, _) => Ok(self.material.clone()),
            (true, Some(k)) => k.open(label, &self.material),
            (true, None) => Err(Error::Internal(format!(
                "{label} is sealed: set TESSERA_KEY_ENCRYPTION_KEY to the key it was sealed with"
            ))),
        }
    }
}

/// A signing key as kept in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    /// Key id (`kid`), random.
    pub kid: String,
    /// The algorithm this key is pinned to.
    pub alg: SigningAlg,
    /// PKCS#8 DER private key (or the HMAC secret), sealed when a KEK is set.
    pub private: SealedBlob,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it starts signing.
    pub activate_at: Timestamp,
}

fn key_label(kid: &str) -> String {
    format!("signing key {kid}")
}

impl StoredKey {
    /// Makes a new key pair (or HMAC secret) for `alg`, sealed with `kek` if given.
    pub fn generate(
        alg: SigningAlg,
        kek: Option<&Kek>,
        created_at: Timestamp,
        activate_at: Timestamp,
    ) -> Result<Self, Error> {
        let failed = |_| Error::Internal(format!("generating a {alg} key failed"));
        let private: Vec<u8> = match alg {
            SigningAlg::EdDSA => {
                Ed25519KeyPair::generate_pkcs8v1(&aws_lc_rs::rand::SystemRandom::new())
                    .map_err(failed)?
                    .as_ref()
                    .to_vec()
            }
            SigningAlg::ES256 => EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &aws_lc_rs::rand::SystemRandom::new(),
            )
            .map_err(failed)?
            .as_ref()
            .to_vec(),
            SigningAlg::RS256 => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(failed)?;
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = pair.as_der().map_err(failed)?;
                der.as_ref().to_vec()
            }
            SigningAlg::HS256 => random_bytes::<32>()?.to_vec(),
        };
        let kid = URL_SAFE_NO_PAD.encode(random_bytes::<12>()?);
        let private = SealedBlob::seal(kek, &key_label(&kid), &private)?;
        Ok(Self {
            kid,
            alg,
            private,
            created_at,
            activate_at,
        })
    }
}

/// A private key parsed once into aws-lc-rs's form, so signing a token does no key parsing.
///
/// jsonwebtoken's `crypto::sign` re-reads the PKCS#8 key (and, for Ed25519, re-derives and checks
/// the public key) on every call, which doubled the cost of an Ed25519 signature.
pub(crate) enum Signer {
    Ed25519(Ed25519KeyPair),
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    /// Boxed: an HMAC key holds its precomputed contexts (~1.2 KiB).
    Hs256(Box<hmac::Key>),
}

impl Signer {
    fn from_private(alg: SigningAlg, private: &[u8]) -> Result<Self, String> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| e.to_string();
        Ok(match alg {
            SigningAlg::EdDSA => {
                Self::Ed25519(Ed25519KeyPair::from_pkcs8(private).map_err(rejected)?)
            }
            SigningAlg::ES256 => Self::Es256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, private)
                    .map_err(rejected)?,
            ),
            SigningAlg::RS256 => Self::Rs256(RsaKeyPair::from_pkcs8(private).map_err(rejected)?),
            SigningAlg::HS256 => Self::Hs256(Box::new(hmac::Key::new(hmac::HMAC_SHA256, private))),
        })
    }

    /// The raw signature of `message` (for ES256, `r | s` as produced, not yet low-S).
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let failed = || Error::Internal("signing failed".into());
        Ok(match self {
            Self::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            Self::Es256(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map_err(|_| failed())?
                .as_ref()
                .to_vec(),
            Self::Rs256(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .map_err(|_| failed())?;
                signature
            }
            Self::Hs256(key) => hmac::sign(key, message).as_ref().to_vec(),
        })
    }

    /// The verifier of this key's signatures.
    fn verifier(&self) -> Result<Verifier, String> {
        let parsed = |alg: &'static dyn VerificationAlgorithm, public: &[u8]| {
            ParsedPublicKey::new(alg, public)
                .map(Verifier::Public)
                .map_err(|e| e.to_string())
        };
        match self {
            Self::Ed25519(pair) => parsed(&ED25519, pair.public_key().as_ref()),
            Self::Es256(pair) => parsed(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref()),
            Self::Rs256(pair) => parsed(&RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref()),
            Self::Hs256(key) => Ok(Verifier::Hs256(key.clone())),
        }
    }
}

/// A verification key parsed once (aws-lc-rs), pinned to one algorithm: checking a token's
/// signature does no key parsing. The algorithms are the ones jsonwebtoken verifies with
/// (`ED25519`, `ECDSA_P256_SHA256_FIXED`, `RSA_PKCS1_2048_8192_SHA256`, HMAC-SHA-256).
pub(crate) enum Verifier {
    Public(ParsedPublicKey),
    /// Boxed: an HMAC key holds its precomputed contexts (~1.2 KiB).
    Hs256(Box<hmac::Key>),
}

impl Verifier {
    /// Whether `signature` is a valid signature of `message` (HMAC tags compared in constant
    /// time).
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Public(key) => key.verify_sig(message, signature).is_ok(),
            Self::Hs256(key) => hmac::verify(key, message, signature).is_ok(),
        }
    }

    /// A public key from its JWK members, for `alg` (already matched to the key type).
    fn from_jwk(alg: SigningAlg, params: &jsonwebtoken::jwk::AlgorithmParameters) -> Option<Self> {
        use jsonwebtoken::jwk::AlgorithmParameters as P;
        let b64 = |s: &str| URL_SAFE_NO_PAD.decode(s).ok();
        let key = match (alg, params) {
            (SigningAlg::EdDSA, P::OctetKeyPair(p)) => ParsedPublicKey::new(&ED25519, b64(&p.x)?),
            (SigningAlg::ES256, P::EllipticCurve(p)) => {
                let (x, y) = (b64(&p.x)?, b64(&p.y)?);
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let point = [&[4u8][..], &x, &y].concat();
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            }
            (SigningAlg::RS256, P::RSA(p)) => ParsedPublicKey::new(
                &RSA_PKCS1_2048_8192_SHA256,
                rsa_public_key_der(&b64(&p.n)?, &b64(&p.e)?),
            ),
            _ => return None,
        };
        key.ok().map(Self::Public)
    }
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017, DER).
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn length(out: &mut Vec<u8>, len: usize) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }
    fn integer(out: &mut Vec<u8>, magnitude: &[u8]) {
        let skip = magnitude.iter().take_while(|b| **b == 0).count();
        let magnitude = &magnitude[skip..];
        let pad = magnitude.first().is_none_or(|b| b & 0x80 != 0);
        out.push(0x02);
        length(out, magnitude.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(magnitude);
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    integer(&mut body, n);
    integer(&mut body, e);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    length(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// A key ready to sign and verify: parsed once, not per token.
pub struct LoadedKey {
    /// Key id.
    pub kid: String,
    /// Pinned algorithm: a token naming another `alg` is refused.
    pub alg: SigningAlg,
    pub(crate) signer: Signer,
    pub(crate) verifier: Verifier,
    /// Public JWK (`None` for HS256, whose secret is never published).
    pub(crate) jwk: Option<Jwk>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it starts signing.
    pub activate_at: Timestamp,
}

impl fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("activate_at", &self.activate_at)
            .finish_non_exhaustive()
    }
}

fn pem(der: &[u8]) -> String {
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(der)
    )
}

impl LoadedKey {
    /// Unseals and parses a stored key.
    pub fn load(stored: &StoredKey, kek: Option<&Kek>) -> Result<Self, Error> {
        let private = stored.private.open(kek, &key_label(&stored.kid))?;
        let unusable = |e: String| Error::Internal(format!("key {} is unusable: {e}", stored.kid));
        let bad = |e: jsonwebtoken::errors::Error| unusable(e.to_string());
        // jsonwebtoken reads the key once more, only to write its public JWK.
        let encoding = match stored.alg {
            SigningAlg::EdDSA => EncodingKey::from_ed_der(&private),
            SigningAlg::ES256 => EncodingKey::from_ec_der(&private),
            // jsonwebtoken signs RSA from PKCS#1; its PEM reader unwraps our PKCS#8 into that.
            SigningAlg::RS256 => {
                EncodingKey::from_rsa_pem(pem(&private).as_bytes()).map_err(bad)?
            }
            SigningAlg::HS256 => EncodingKey::from_secret(&private).map_err(bad)?,
        };
        let signer = Signer::from_private(stored.alg, &private).map_err(unusable)?;
        let verifier = signer.verifier().map_err(unusable)?;
        let jwk = if stored.alg == SigningAlg::HS256 {
            None
        } else {
            let mut jwk = Jwk::from_encoding_key(&encoding, stored.alg.jwt()).map_err(bad)?;
            jwk.common.key_id = Some(stored.kid.clone());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            jwk.common.key_algorithm = Some(match stored.alg {
                SigningAlg::EdDSA => KeyAlgorithm::EdDSA,
                SigningAlg::ES256 => KeyAlgorithm::ES256,
                _ => KeyAlgorithm::RS256,
            });
            Some(jwk)
        };
        Ok(Self {
            kid: stored.kid.clone(),
            alg: stored.alg,
            signer,
            verifier,
            jwk,
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
            (a.activate_at, a.created_at, &a.kid).cmp(&(b.activate_at, b.created_at, &b.kid))
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
        self.published(now, token_lifetime).find(|k| k.kid == kid)
    }

    /// The JWK Set of published public keys (HS256 secrets are never included).
    pub fn jwks(&self, now: Timestamp, token_lifetime: Duration) -> JwkSet {
        JwkSet {
            keys: self
                .published(now, token_lifetime)
                .filter_map(|k| k.jwk.clone())
                .collect(),
        }
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

/// The verification keys of an issuer, read from the JWK Set it publishes
/// (`GET /.well-known/jwks.json`): [`KeySet`]'s counterpart for services that verify tokens but
/// hold no private key and no database.
///
/// Every key in the set is trusted (the issuer publishes exactly the keys that may have signed
/// a live token), each pinned to the `alg` its JWK names. Keys that cannot be used safely are
/// left out rather than guessed at: a key without `kid` or `alg`, an `alg` other than `EdDSA`,
/// `ES256` or `RS256` (a symmetric `HS256` secret is never taken from a published set), a key
/// type or curve that does not fit its `alg`, or a `use` other than `sig`.
///
/// ```
/// use tessera_core::Timestamp;
/// use tessera_core::keys::{KeySet, PublicKeySet, SigningAlg, StoredKey};
///
/// let now = Timestamp::from_millis(0);
/// let issuer = KeySet::load(&[StoredKey::generate(SigningAlg::EdDSA, None, now, now)?], None)?;
/// // What the issuer serves at /.well-known/jwks.json, as a resource service receives it:
/// let published = serde_json::to_vec(&issuer.jwks(now, std::time::Duration::from_secs(900))).unwrap();
/// let keys = PublicKeySet::from_json(&published)?;
/// assert_eq!(keys.len(), 1);
/// assert_eq!(keys.find(&issuer.keys()[0].kid).map(|k| k.alg), Some(SigningAlg::EdDSA));
/// # Ok::<(), tessera_core::Error>(())
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
                return Err(Error::Internal(format!(
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
            .map_err(|e| Error::Internal(format!("the JWK Set is not valid JSON: {e}")))?;
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

impl PublicKey {
    fn from_jwk(jwk: &Jwk) -> Option<Self> {
        use jsonwebtoken::jwk::{AlgorithmParameters as P, EllipticCurve};
        let kid = jwk.common.key_id.clone()?;
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != PublicKeyUse::Signature)
        {
            return None;
        }
        let alg = match (jwk.common.key_algorithm?, &jwk.algorithm) {
            (KeyAlgorithm::EdDSA, P::OctetKeyPair(p)) if p.curve == EllipticCurve::Ed25519 => {
                SigningAlg::EdDSA
            }
            (KeyAlgorithm::ES256, P::EllipticCurve(p)) if p.curve == EllipticCurve::P256 => {
                SigningAlg::ES256
            }
            (KeyAlgorithm::RS256, P::RSA(_)) => SigningAlg::RS256,
            _ => return None,
        };
        let verifier = Verifier::from_jwk(alg, &jwk.algorithm)?;
        Some(Self { kid, alg, verifier })
    }
}

#[cfg(test)]
mod tests {
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
            assert_eq!(loaded.alg, alg);
            assert_eq!(loaded.jwk.is_some(), alg != SigningAlg::HS256);
        }
    }

    #[test]
    fn sealed_keys_need_the_right_kek() {
        let kek = Kek::parse(&STANDARD.encode([7u8; 32])).unwrap();
        let other = Kek::parse(&URL_SAFE_NO_PAD.encode([8u8; 32])).unwrap();
        let stored = StoredKey::generate(SigningAlg::EdDSA, Some(&kek), at(0), at(0)).unwrap();
        assert!(stored.private.sealed);
        assert!(LoadedKey::load(&stored, Some(&kek)).is_ok());
        assert!(LoadedKey::load(&stored, Some(&other)).is_err());
        assert!(LoadedKey::load(&stored, None).is_err());
        assert!(Kek::parse("too short").is_err());
        assert!(Kek::parse(&STANDARD.encode([1u8; 16])).is_err());
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
        let secret = EncodingKey::from_secret(&stored[3].private.material).unwrap();
        let mut oct = Jwk::from_encoding_key(&secret, Algorithm::HS256).unwrap();
        oct.common.key_id = Some("oct".into());
        assert!(
            PublicKeySet::from_jwks(&JwkSet { keys: vec![oct] })
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn keys_that_do_not_fit_their_alg_are_skipped_and_a_repeated_kid_is_refused() {
        let ed = StoredKey::generate(SigningAlg::EdDSA, None, at(0), at(0)).unwrap();
        let jwk = LoadedKey::load(&ed, None).unwrap().jwk.unwrap();
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
                .map(|k| k.kid.clone())
                .collect::<Vec<_>>()
        };

        assert_eq!(set.signing_key(at(110)).unwrap().kid, old.kid);
        assert_eq!(kids(110), vec![old.kid.clone(), new.kid.clone()]);
        assert_eq!(set.signing_key(at(120)).unwrap().kid, new.kid);
        assert_eq!(kids(1019), vec![old.kid.clone(), new.kid.clone()]);
        assert_eq!(kids(1020), vec![new.kid.clone()]);
        assert!(set.find(&old.kid, at(1020), life).is_none());
        assert_eq!(set.jwks(at(0), life).keys.len(), 2);
    }
}

//! Signatures with keys parsed once (aws-lc-rs), not once per token.
//!
//! jsonwebtoken's `crypto::sign` re-reads the PKCS#8 key (and, for Ed25519, re-derives and checks
//! the public key) on every call, which doubled the cost of an Ed25519 signature; here a key is
//! parsed when it is loaded and each token costs one signature operation.

pub(crate) mod low_s;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
    RsaKeyPair, RsaPublicKeyComponents, VerificationAlgorithm,
};

use crate::algorithm::SigningAlg;
use crate::error::Error;

/// A private key (or HMAC secret) ready to sign.
pub(crate) enum Signer {
    Ed25519(Ed25519KeyPair),
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    /// Boxed: an HMAC key holds its precomputed contexts (~1.2 KiB).
    Hs256(Box<hmac::Key>),
}

/// The public half of a key as raw JWK members, for [`crate::jwk`] to write.
pub(crate) enum PublicParts {
    Ed25519 { x: Vec<u8> },
    P256 { x: Vec<u8>, y: Vec<u8> },
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

impl Signer {
    /// Parses a PKCS#8 DER private key (for HS256: the secret itself) for `alg`.
    pub(crate) fn from_private(alg: SigningAlg, private: &[u8]) -> Result<Self, Error> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| Error::Key(e.to_string());
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
        Ok(match self {
            Self::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            Self::Es256(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map_err(|_| Error::Signing)?
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
                .map_err(|_| Error::Signing)?;
                signature
            }
            Self::Hs256(key) => hmac::sign(key, message).as_ref().to_vec(),
        })
    }

    /// The public key's members, or `None` for an HMAC secret (never published).
    pub(crate) fn public_parts(&self) -> Option<PublicParts> {
        Some(match self {
            Self::Ed25519(pair) => PublicParts::Ed25519 {
                x: pair.public_key().as_ref().to_vec(),
            },
            Self::Es256(pair) => {
                // An uncompressed SEC1 point: 0x04 | x | y.
                let point = pair.public_key().as_ref();
                PublicParts::P256 {
                    x: point.get(1..33)?.to_vec(),
                    y: point.get(33..65)?.to_vec(),
                }
            }
            Self::Rs256(pair) => {
                let parts = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                PublicParts::Rsa {
                    n: parts.n,
                    e: parts.e,
                }
            }
            Self::Hs256(_) => return None,
        })
    }

    /// The verifier of this key's signatures.
    pub(crate) fn verifier(&self) -> Result<Verifier, Error> {
        let parsed = |alg: &'static dyn VerificationAlgorithm, public: &[u8]| {
            ParsedPublicKey::new(alg, public)
                .map(Verifier::Public)
                .map_err(|e| Error::Key(e.to_string()))
        };
        match self {
            Self::Ed25519(pair) => parsed(&ED25519, pair.public_key().as_ref()),
            Self::Es256(pair) => parsed(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref()),
            Self::Rs256(pair) => parsed(&RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref()),
            Self::Hs256(key) => Ok(Verifier::Hs256(key.clone())),
        }
    }
}

/// A verification key parsed once (aws-lc-rs): checking a token's signature does no key
/// parsing. The algorithms are the ones jsonwebtoken verifies with (`ED25519`,
/// `ECDSA_P256_SHA256_FIXED`, `RSA_PKCS1_2048_8192_SHA256`, HMAC-SHA-256).
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

    /// A public key from its raw members, for `alg`; `None` when they do not form one.
    pub(crate) fn from_public(alg: SigningAlg, parts: &PublicParts) -> Option<Self> {
        let key = match (alg, parts) {
            (SigningAlg::EdDSA, PublicParts::Ed25519 { x }) => ParsedPublicKey::new(&ED25519, x),
            (SigningAlg::ES256, PublicParts::P256 { x, y }) => {
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let point = [&[4u8][..], x, y].concat();
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            }
            (SigningAlg::RS256, PublicParts::Rsa { n, e }) => {
                // aws-lc-rs wants the integers without leading zero octets, which a JWK may carry.
                let strip = |b: &[u8]| b[b.iter().take_while(|x| **x == 0).count()..].to_vec();
                RsaPublicKeyComponents {
                    n: strip(n),
                    e: strip(e),
                }
                .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
            }
            _ => return None,
        };
        key.ok().map(Self::Public)
    }
}

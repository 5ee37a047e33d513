//! A signing key as kept in the store, and the making of new ones.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_token::SigningAlg;

use super::random::random_bytes;
use super::seal::{Kek, SealedBlob};
use crate::error::Error;
use crate::time::Timestamp;

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

/// What a key's sealed private part is bound to, so a blob cannot be swapped between keys.
pub(super) fn key_label(kid: &str) -> String {
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
        let failed = |_| Error::Internal(format!("generating a {alg} key failed").into());
        let private: Vec<u8> = match alg {
            SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new())
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            SigningAlg::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                    .map_err(failed)?
                    .as_ref()
                    .to_vec()
            }
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

//! Secrets at rest: the key-encryption key and the blobs it seals, so a database dump alone
//! yields no usable key.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::error::Error;

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
    /// A fresh random key, written as [`Kek::parse`] reads it (standard base64 of 32 bytes):
    /// what `tessera keys new-kek` prints.
    pub fn generate_text() -> Result<String, Error> {
        Ok(STANDARD.encode(super::random_bytes::<32>()?))
    }

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
            Error::Internal(
                format!("cannot unseal {aad}: wrong TESSERA_KEY_ENCRYPTION_KEY or damaged data")
                    .into(),
            )
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
            )
            .into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_blob_opens_only_with_its_kek_and_label() {
        let kek = Kek::parse(&STANDARD.encode([7u8; 32])).unwrap();
        let other = Kek::parse(&URL_SAFE_NO_PAD.encode([8u8; 32])).unwrap();
        let blob = SealedBlob::seal(Some(&kek), "label", b"secret").unwrap();
        assert!(blob.sealed);
        assert_ne!(blob.material, b"secret");
        assert_eq!(blob.open(Some(&kek), "label").unwrap(), b"secret");
        assert!(blob.open(Some(&kek), "other label").is_err());
        assert!(blob.open(Some(&other), "label").is_err());
        assert!(blob.open(None, "label").is_err());
        assert!(Kek::parse("too short").is_err());
        assert!(Kek::parse(&STANDARD.encode([1u8; 16])).is_err());
    }
}

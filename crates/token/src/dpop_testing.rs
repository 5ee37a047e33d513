//! A DPoP client for tests and benchmarks (feature `test-support`): a key pair that signs
//! proofs the way a browser or a stock client does, and hands out its public JWK and RFC 7638
//! thumbprint computed from their definitions, apart from the code under test.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// A client's key: P-256 (what browsers' WebCrypto makes) or Ed25519.
pub enum ProofKey {
    /// ES256.
    Es256(EcdsaKeyPair),
    /// EdDSA.
    Ed25519(Ed25519KeyPair),
}

/// Base64url without padding.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl ProofKey {
    /// A fresh P-256 key.
    ///
    /// # Panics
    /// When the OS random generator fails.
    pub fn es256() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("a P-256 key");
        Self::Es256(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .expect("a P-256 key"),
        )
    }

    /// A fresh Ed25519 key.
    ///
    /// # Panics
    /// When the OS random generator fails.
    pub fn ed25519() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).expect("an Ed25519 key");
        Self::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("an Ed25519 key"))
    }

    /// The proof's `alg`.
    pub fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::Ed25519(_) => "EdDSA",
        }
    }

    /// The public JWK.
    pub fn jwk(&self) -> Value {
        match self {
            Self::Es256(k) => {
                let p = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])})
            }
            Self::Ed25519(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
        }
    }

    /// The RFC 7638 SHA-256 thumbprint: the required members in order, no whitespace.
    pub fn thumbprint(&self) -> String {
        let j = self.jwk();
        let canonical = match self {
            Self::Es256(_) => format!(
                r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
                j["x"], j["y"]
            ),
            Self::Ed25519(_) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":{}}}"#, j["x"]),
        };
        b64(digest::digest(&digest::SHA256, canonical.as_bytes()))
    }

    /// An honest header: `typ`, `alg`, `jwk`.
    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()})
    }

    /// Signs raw header and claims texts.
    ///
    /// # Panics
    /// When the OS random generator fails (ECDSA).
    pub fn sign_raw(&self, header: &str, claims: &str) -> String {
        let signed = format!("{}.{}", b64(header), b64(claims));
        let signature = match self {
            Self::Es256(k) => k
                .sign(&SystemRandom::new(), signed.as_bytes())
                .expect("signing")
                .as_ref()
                .to_vec(),
            Self::Ed25519(k) => k.sign(signed.as_bytes()).as_ref().to_vec(),
        };
        format!("{signed}.{}", b64(signature))
    }

    /// Signs `header` and `claims`.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    /// An honest proof for `method` on `url` at `iat` (seconds), with `ath` when an access token
    /// is given, and a random `jti`.
    pub fn proof(&self, method: &str, url: &str, iat: i64, access_token: Option<&str>) -> String {
        self.sign(&self.header(), &claims(method, url, iat, access_token))
    }
}

/// Honest claims with a random `jti`.
pub fn claims(method: &str, url: &str, iat: i64, access_token: Option<&str>) -> Value {
    let mut c =
        json!({"jti": uuid::Uuid::new_v4().to_string(), "htm": method, "htu": url, "iat": iat});
    if let Some(token) = access_token {
        c["ath"] = json!(crate::dpop::access_token_hash(token));
    }
    c
}

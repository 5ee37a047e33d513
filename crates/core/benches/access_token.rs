//! Access tokens: `issue` and `verify` for each algorithm, beside the raw aws-lc-rs primitive on
//! the same signing input, so the library's overhead reads as a ratio. The `jsonwebtoken_*` rows
//! are what `issue`/`verify` called before keys were parsed once per key (BENCHMARKS.md).
//!
//! `cargo bench -p tessera-core --bench access_token`

use std::hint::black_box;
use std::time::Duration;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use tessera_core::access_token::{self, AccessClaims, Expectations};
use tessera_core::keys::{KeySet, PublicKeySet};
use tessera_core::{SigningAlg, StoredKey, Timestamp};
use uuid::Uuid;

const NOW_SECS: i64 = 1_800_000_000;

/// The raw primitive on a key parsed once: the floor any JWT library can reach.
enum Raw {
    Ed(Ed25519KeyPair, ParsedPublicKey),
    Es(EcdsaKeyPair, ParsedPublicKey),
    Rs(RsaKeyPair, ParsedPublicKey),
    Hs(Box<hmac::Key>),
}

impl Raw {
    fn new(alg: SigningAlg, der: &[u8]) -> Self {
        let parsed = |alg, public: &[u8]| ParsedPublicKey::new(alg, public).expect("own key");
        match alg {
            SigningAlg::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(der).expect("generated key");
                let public = parsed(&ED25519, pair.public_key().as_ref());
                Self::Ed(pair, public)
            }
            SigningAlg::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .expect("generated key");
                let public = parsed(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref());
                Self::Es(pair, public)
            }
            SigningAlg::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(der).expect("generated key");
                let public = parsed(&RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref());
                Self::Rs(pair, public)
            }
            SigningAlg::HS256 => Self::Hs(Box::new(hmac::Key::new(hmac::HMAC_SHA256, der))),
        }
    }

    fn sign(&self, rng: &SystemRandom, msg: &[u8]) -> Vec<u8> {
        match self {
            Self::Ed(pair, _) => pair.sign(msg).as_ref().to_vec(),
            Self::Es(pair, _) => pair.sign(rng, msg).expect("sign").as_ref().to_vec(),
            Self::Rs(pair, _) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, rng, msg, &mut sig)
                    .expect("sign");
                sig
            }
            Self::Hs(key) => hmac::sign(key, msg).as_ref().to_vec(),
        }
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            Self::Ed(_, public) | Self::Es(_, public) | Self::Rs(_, public) => {
                public.verify_sig(msg, sig).is_ok()
            }
            Self::Hs(key) => hmac::verify(key, msg, sig).is_ok(),
        }
    }
}

/// What jsonwebtoken needs to sign and verify the same input (the pre-change path).
fn jsonwebtoken_keys(alg: SigningAlg, der: &[u8]) -> (EncodingKey, DecodingKey, Algorithm) {
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(der)
    );
    let (encoding, jwt_alg) = match alg {
        SigningAlg::EdDSA => (EncodingKey::from_ed_der(der), Algorithm::EdDSA),
        SigningAlg::ES256 => (EncodingKey::from_ec_der(der), Algorithm::ES256),
        SigningAlg::RS256 => (
            EncodingKey::from_rsa_pem(pem.as_bytes()).expect("generated key"),
            Algorithm::RS256,
        ),
        SigningAlg::HS256 => (
            EncodingKey::from_secret(der).expect("32-byte secret"),
            Algorithm::HS256,
        ),
    };
    let decoding = if alg == SigningAlg::HS256 {
        DecodingKey::from_secret(der).expect("32-byte secret")
    } else {
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, jwt_alg).expect("jwk");
        DecodingKey::from_jwk(&jwk).expect("jwk")
    };
    (encoding, decoding, jwt_alg)
}

fn access_tokens(c: &mut Criterion) {
    let now = Timestamp::from_millis(NOW_SECS * 1000);
    let expect = Expectations {
        issuer: "http://127.0.0.1:8080".into(),
        audience: "http://127.0.0.1:8080".into(),
        leeway: Duration::from_secs(5),
        lifetime: Duration::from_secs(900),
    };
    let claims = AccessClaims {
        iss: expect.issuer.clone(),
        sub: Uuid::new_v4(),
        aud: expect.audience.clone(),
        exp: NOW_SECS + 900,
        iat: NOW_SECS,
        nbf: NOW_SECS,
        jti: Uuid::new_v4(),
        sid: Uuid::new_v4(),
        username: "bench-user-0".into(),
        client_id: "tessera".into(),
        cnf: None,
    };
    let rng = SystemRandom::new();
    for alg in [
        SigningAlg::EdDSA,
        SigningAlg::ES256,
        SigningAlg::RS256,
        SigningAlg::HS256,
    ] {
        let stored = StoredKey::generate(alg, None, now, now).expect("key generation");
        let der = stored.private.material.clone();
        let keys = KeySet::load(&[stored], None).expect("own key");
        let key = keys.signing_key(now).expect("active key");
        let token = access_token::issue(&claims, &key.key).expect("issue");
        let (signed, sig_b64) = token.rsplit_once('.').expect("three segments");
        let signature = URL_SAFE_NO_PAD.decode(sig_b64).expect("base64url");
        let raw = Raw::new(alg, &der);
        assert!(raw.verify(signed.as_bytes(), &signature));
        let (encoding, decoding, jwt_alg) = jsonwebtoken_keys(alg, &der);

        let mut g = c.benchmark_group(format!("access_token/{alg}"));
        g.bench_function("issue", |b| {
            b.iter(|| access_token::issue(black_box(&claims), &key.key).expect("issue"))
        });
        g.bench_function("raw_sign", |b| {
            b.iter(|| raw.sign(&rng, black_box(signed.as_bytes())))
        });
        g.bench_function("jsonwebtoken_sign", |b| {
            b.iter(|| {
                jsonwebtoken::crypto::sign(black_box(signed.as_bytes()), &encoding, jwt_alg)
                    .expect("sign")
            })
        });
        g.bench_function("verify", |b| {
            b.iter(|| {
                let published = keys.at(now, expect.lifetime + expect.leeway);
                access_token::verify(black_box(&token), &published, &expect, now).expect("valid")
            })
        });
        if alg != SigningAlg::HS256 {
            let public = PublicKeySet::from_jwks(&keys.jwks(now, expect.lifetime)).expect("jwks");
            g.bench_function("verify_public", |b| {
                b.iter(|| {
                    access_token::verify(black_box(&token), &public, &expect, now).expect("valid")
                })
            });
        }
        g.bench_function("raw_verify", |b| {
            b.iter(|| assert!(raw.verify(black_box(signed.as_bytes()), black_box(&signature))))
        });
        g.bench_function("jsonwebtoken_verify", |b| {
            b.iter(|| {
                assert!(
                    jsonwebtoken::crypto::verify(
                        black_box(sig_b64),
                        black_box(signed.as_bytes()),
                        &decoding,
                        jwt_alg
                    )
                    .expect("verify")
                )
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = access_tokens
}
criterion_main!(benches);

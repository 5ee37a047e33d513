//! JWKs (RFC 7517) for Tessera's public keys: written from a key's public members, and read back
//! into them, pinned to the `alg` the JWK names.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters as P, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, KeyAlgorithm, OctetKeyPairParameters, OctetKeyPairType,
    PublicKeyUse, RSAKeyParameters, RSAKeyType,
};

use crate::algorithm::SigningAlg;
use crate::crypto::PublicParts;

/// The public JWK of a signing key: `kid`, `use: sig`, `alg` and the key's members.
pub(crate) fn write(kid: &str, parts: &PublicParts) -> Jwk {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let (key_algorithm, algorithm) = match parts {
        PublicParts::Ed25519 { x } => (
            KeyAlgorithm::EdDSA,
            P::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: b64(x),
            }),
        ),
        PublicParts::P256 { x, y } => (
            KeyAlgorithm::ES256,
            P::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x: b64(x),
                y: b64(y),
            }),
        ),
        PublicParts::Rsa { n, e } => (
            KeyAlgorithm::RS256,
            P::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n: b64(n),
                e: b64(e),
            }),
        ),
    };
    Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(key_algorithm),
            key_id: Some(kid.to_owned()),
            ..CommonParameters::default()
        },
        algorithm,
    }
}

/// A JWK's `kid`, pinned `alg` and public members, or `None` when it cannot be used safely: no
/// `kid` or `alg`, an `alg` other than `EdDSA`, `ES256` or `RS256` (a symmetric secret is never
/// taken from a published set), a key type or curve that does not fit its `alg`, a `use` other
/// than `sig`, or members that are not base64url.
pub(crate) fn read(jwk: &Jwk) -> Option<(String, SigningAlg, PublicParts)> {
    let kid = jwk.common.key_id.clone()?;
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    let b64 = |s: &str| URL_SAFE_NO_PAD.decode(s).ok();
    let (alg, parts) = match (jwk.common.key_algorithm?, &jwk.algorithm) {
        (KeyAlgorithm::EdDSA, P::OctetKeyPair(p)) if p.curve == EllipticCurve::Ed25519 => {
            (SigningAlg::EdDSA, PublicParts::Ed25519 { x: b64(&p.x)? })
        }
        (KeyAlgorithm::ES256, P::EllipticCurve(p)) if p.curve == EllipticCurve::P256 => (
            SigningAlg::ES256,
            PublicParts::P256 {
                x: b64(&p.x)?,
                y: b64(&p.y)?,
            },
        ),
        (KeyAlgorithm::RS256, P::RSA(p)) => (
            SigningAlg::RS256,
            PublicParts::Rsa {
                n: b64(&p.n)?,
                e: b64(&p.e)?,
            },
        ),
        _ => return None,
    };
    Some((kid, alg, parts))
}

//! Access tokens: JWS-signed JWTs in the RFC 9068 profile, issued and strictly verified.
//!
//! Verification parses the token itself before any signature check, and is strict where
//! general-purpose JWT libraries are lenient: exactly three canonical base64url segments, a
//! header with `typ: at+jwt`, a `kid` looked up only in our own key set and its pinned `alg`,
//! any `crit` refused (`jku`, `jwk`, `x5u`, `x5c` are never read), claims of the right JSON
//! types. Signatures are made and checked by aws-lc-rs with keys parsed once per key
//! ([`LoadedKey`], [`crate::keys::PublicKey`]), not once per token.
//!
//! The issuer verifies with its [`KeySet`] ([`verify`]); a resource service that has only the
//! published JWK Set verifies with a [`PublicKeySet`] ([`verify_public`]). Both run the same
//! checks, in the same order, through one implementation.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::error::Error;
use crate::keys::{KeySet, LoadedKey, PublicKeySet, SigningAlg, Verifier};
use crate::time::Timestamp;

/// The `typ` header of every Tessera access token (RFC 9068 §2.1).
pub const TOKEN_TYPE: &str = "at+jwt";

/// Longer than any token Tessera issues by far; anything longer is refused unread.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The claims of a Tessera access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user id.
    pub sub: Uuid,
    /// Audience.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Unique token id.
    pub jti: Uuid,
    /// Session id.
    pub sid: Uuid,
    /// The user's name, for display.
    pub username: String,
}

/// What a valid token must say, and how much clock skew to forgive.
#[derive(Clone, Debug)]
pub struct Expectations {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// Forgiven clock skew for `exp` and `nbf`.
    pub leeway: Duration,
    /// The lifetime tokens are issued with; a token claiming to live longer is refused.
    pub lifetime: Duration,
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    kid: &'a str,
    typ: &'a str,
}

/// A header member whose mere presence matters: deserializes from any value, `null` included.
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| Present(true))
    }
}

/// The header fields we read. Derived `Deserialize` refuses a repeated field, so a header
/// cannot say one `alg` to us and another to a lenient parser.
#[derive(Deserialize)]
struct ReceivedHeader {
    alg: String,
    kid: String,
    typ: String,
    #[serde(default)]
    crit: Present,
}

/// Signs `claims` with `key`.
pub fn issue(claims: &AccessClaims, key: &LoadedKey) -> Result<String, Error> {
    let header = Header {
        alg: key.alg.as_str(),
        kid: &key.kid,
        typ: TOKEN_TYPE,
    };
    let mut token = String::with_capacity(512);
    URL_SAFE_NO_PAD.encode_string(json(&header)?, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(json(claims)?, &mut token);
    let mut signature = key.signer.sign(token.as_bytes())?;
    if key.alg == SigningAlg::ES256 {
        low_s::normalize(&mut signature)?;
    }
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}

/// ECDSA signatures are malleable: `(r, s)` and `(r, n − s)` both verify. Tessera issues only the
/// low-S form and accepts only it, so every ES256 token has exactly one valid signature.
mod low_s {
    use super::*;

    /// The order of P-256, big-endian.
    const N: [u8; 32] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63,
        0x25, 0x51,
    ];
    /// ⌊n / 2⌋.
    const HALF_N: [u8; 32] = [
        0x7F, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0x00, 0x00, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xDE, 0x73, 0x7D, 0x56, 0xD3, 0x8B, 0xCF, 0x42, 0x79, 0xDC, 0xE5, 0x61, 0x7E, 0x31,
        0x92, 0xA8,
    ];

    /// Whether a raw `r | s` P-256 signature has `s ≤ n/2` (byte order compares as numbers).
    pub(super) fn is_low(signature: &[u8]) -> bool {
        signature.len() == 64 && signature[32..] <= HALF_N[..]
    }

    /// Rewrites a raw `r | s` signature into its low-S twin, in place.
    pub(super) fn normalize(sig: &mut [u8]) -> Result<(), Error> {
        if sig.len() != 64 {
            return Err(Error::Internal("an ES256 signature is not 64 bytes".into()));
        }
        if !is_low(sig) {
            flip(sig);
        }
        Ok(())
    }

    /// Replaces `s` by `n − s` in a 64-byte `r | s` signature (big-endian subtraction).
    pub(super) fn flip(sig: &mut [u8]) {
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = i16::from(N[i]) - i16::from(sig[32 + i]) - borrow;
            borrow = i16::from(d < 0);
            // `d + 256·borrow` is in 0..=255 by construction.
            sig[32 + i] = u8::try_from(d + 256 * borrow).unwrap_or_default();
        }
    }
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::Internal(format!("encoding a token failed: {e}")))
}

fn invalid(why: &'static str) -> Error {
    Error::InvalidToken(why)
}

/// Strict base64url: no padding, no `+`/`/`, no whitespace, zero trailing bits.
fn b64(part: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| invalid("token is not canonical base64url"))
}

/// A token cut into its parts, with its header read and checked: everything that can be judged
/// before knowing the key.
struct Parsed<'a> {
    header: ReceivedHeader,
    /// `header.claims`, the bytes the signature covers.
    signed: &'a str,
    claims_b64: &'a str,
    signature_b64: &'a str,
}

fn parse(token: &str) -> Result<Parsed<'_>, Error> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(invalid("token is too long"));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(
            "token is not a JWS in compact form (three segments)",
        ));
    };
    let header: ReceivedHeader = serde_json::from_slice(&b64(header_b64)?)
        .map_err(|_| invalid("token header is malformed"))?;
    if header.crit.0 {
        return Err(invalid("token header has a `crit` member"));
    }
    if header.typ != TOKEN_TYPE {
        return Err(invalid("token `typ` is not at+jwt"));
    }
    Ok(Parsed {
        header,
        signed: &token[..header_b64.len() + 1 + claims_b64.len()],
        claims_b64,
        signature_b64,
    })
}

/// The rest of the checks once the key is known: its pinned `alg`, the signature, the claims.
fn verify_parsed(
    parsed: &Parsed<'_>,
    key: Option<(SigningAlg, &Verifier)>,
    expect: &Expectations,
    now: Timestamp,
) -> Result<AccessClaims, Error> {
    let (alg, verifier) = key.ok_or(invalid("token `kid` is not one of ours"))?;
    if parsed.header.alg != alg.as_str() {
        return Err(invalid("token `alg` does not match its key"));
    }
    let signature = b64(parsed.signature_b64)?;
    if alg == SigningAlg::ES256 && !low_s::is_low(&signature) {
        return Err(invalid("token signature is not in low-S form"));
    }
    if !verifier.verify(parsed.signed.as_bytes(), &signature) {
        return Err(invalid("token signature is invalid"));
    }
    let claims: AccessClaims = serde_json::from_slice(&b64(parsed.claims_b64)?)
        .map_err(|_| invalid("token claims are missing or of the wrong type"))?;
    check_claims(&claims, expect, now)?;
    Ok(claims)
}

/// Verifies `token` against `keys` at `now`: signature, header, and every claim.
pub fn verify(
    token: &str,
    keys: &KeySet,
    expect: &Expectations,
    now: Timestamp,
) -> Result<AccessClaims, Error> {
    let parsed = parse(token)?;
    let key = keys
        .find(&parsed.header.kid, now, expect.lifetime + expect.leeway)
        .map(|k| (k.alg, &k.verifier));
    verify_parsed(&parsed, key, expect, now)
}

/// Verifies `token` against an issuer's published keys at `now`, with exactly the rules of
/// [`verify`]: what a resource service that holds only the JWKS calls.
///
/// ```
/// # use std::time::Duration;
/// # use tessera_core::{Timestamp, keys::{KeySet, PublicKeySet, SigningAlg, StoredKey}};
/// use tessera_core::access_token::{self, AccessClaims, Expectations};
/// # let now = Timestamp::from_millis(1_800_000_000_000);
/// # let issuer = KeySet::load(&[StoredKey::generate(SigningAlg::EdDSA, None, now, now)?], None)?;
/// # let keys = PublicKeySet::from_jwks(&issuer.jwks(now, Duration::from_secs(900)))?;
/// # let claims = AccessClaims { iss: "https://auth.example".into(), aud: "https://auth.example".into(),
/// #     sub: uuid::Uuid::nil(), sid: uuid::Uuid::nil(), jti: uuid::Uuid::nil(), username: "alice".into(),
/// #     iat: now.as_secs(), nbf: now.as_secs(), exp: now.as_secs() + 900 };
/// # let token = access_token::issue(&claims, issuer.signing_key(now).unwrap())?;
/// let expect = Expectations {
///     issuer: "https://auth.example".into(),
///     audience: "https://auth.example".into(),
///     leeway: Duration::from_secs(5),
///     lifetime: Duration::from_secs(900),
/// };
/// let claims = access_token::verify_public(&token, &keys, &expect, now)?;
/// assert_eq!(claims.username, "alice");
/// # Ok::<(), tessera_core::Error>(())
/// ```
pub fn verify_public(
    token: &str,
    keys: &PublicKeySet,
    expect: &Expectations,
    now: Timestamp,
) -> Result<AccessClaims, Error> {
    let parsed = parse(token)?;
    let key = keys.find(&parsed.header.kid).map(|k| (k.alg, &k.verifier));
    verify_parsed(&parsed, key, expect, now)
}

/// The `kid` of a token whose shape and header pass the strict checks (length, segments,
/// canonical base64url, `typ`, no `crit`), **before** any signature check.
///
/// Only for deciding whether to fetch the issuer's keys again when the `kid` is unknown; it
/// says nothing about whether the token is genuine.
pub fn unverified_kid(token: &str) -> Result<String, Error> {
    parse(token).map(|p| p.header.kid)
}

fn check_claims(c: &AccessClaims, expect: &Expectations, now: Timestamp) -> Result<(), Error> {
    let leeway = i64::try_from(expect.leeway.as_secs()).unwrap_or(i64::MAX);
    let lifetime = i64::try_from(expect.lifetime.as_secs()).unwrap_or(i64::MAX);
    let now = now.as_secs();
    if c.iss != expect.issuer {
        return Err(invalid("token `iss` is not this issuer"));
    }
    if c.aud != expect.audience {
        return Err(invalid("token `aud` is not this audience"));
    }
    if now.saturating_sub(leeway) >= c.exp {
        return Err(invalid("token has expired"));
    }
    if now.saturating_add(leeway) < c.nbf {
        return Err(invalid("token is not valid yet"));
    }
    if c.exp > now.saturating_add(lifetime).saturating_add(leeway) {
        return Err(invalid(
            "token claims a longer life than this issuer grants",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{SigningAlg, StoredKey};

    const NOW: i64 = 1_800_000_000;

    fn setup(alg: SigningAlg) -> (KeySet, Expectations, AccessClaims) {
        let t0 = Timestamp::from_millis(0);
        let keys = KeySet::load(&[StoredKey::generate(alg, None, t0, t0).unwrap()], None).unwrap();
        let expect = Expectations {
            issuer: "https://auth.example".into(),
            audience: "https://api.example".into(),
            leeway: Duration::from_secs(5),
            lifetime: Duration::from_secs(900),
        };
        let claims = AccessClaims {
            iss: expect.issuer.clone(),
            sub: Uuid::new_v4(),
            aud: expect.audience.clone(),
            exp: NOW + 900,
            iat: NOW,
            nbf: NOW,
            jti: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            username: "alice".into(),
        };
        (keys, expect, claims)
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    #[test]
    fn a_token_verifies_with_every_algorithm() {
        for alg in [
            SigningAlg::EdDSA,
            SigningAlg::ES256,
            SigningAlg::RS256,
            SigningAlg::HS256,
        ] {
            let (keys, expect, claims) = setup(alg);
            let token = issue(&claims, keys.signing_key(at(NOW)).unwrap()).unwrap();
            assert_eq!(
                verify(&token, &keys, &expect, at(NOW)).unwrap(),
                claims,
                "{alg}"
            );
        }
    }

    #[test]
    fn es256_tokens_are_issued_low_s_and_the_high_s_twin_is_refused() {
        let (keys, expect, claims) = setup(SigningAlg::ES256);
        for _ in 0..16 {
            let token = issue(&claims, keys.signing_key(at(NOW)).unwrap()).unwrap();
            let (message, sig) = token.rsplit_once('.').unwrap();
            assert!(low_s::is_low(&b64(sig).unwrap()));
            assert!(verify(&token, &keys, &expect, at(NOW)).is_ok());
            // n − s: mathematically valid, and refused.
            let mut raw = b64(sig).unwrap();
            low_s::flip(&mut raw);
            let twin = format!("{message}.{}", URL_SAFE_NO_PAD.encode(raw));
            assert!(verify(&twin, &keys, &expect, at(NOW)).is_err());
        }
    }

    #[test]
    fn published_keys_verify_exactly_like_the_issuers_own() {
        for alg in [SigningAlg::EdDSA, SigningAlg::ES256, SigningAlg::RS256] {
            let (keys, expect, claims) = setup(alg);
            let public =
                PublicKeySet::from_jwks(&keys.jwks(at(NOW), Duration::from_secs(900))).unwrap();
            let key = keys.signing_key(at(NOW)).unwrap();
            let token = issue(&claims, key).unwrap();
            assert_eq!(unverified_kid(&token).unwrap(), key.kid);
            assert_eq!(
                verify_public(&token, &public, &expect, at(NOW)).unwrap(),
                claims,
                "{alg}"
            );
            assert!(verify_public(&token, &public, &expect, at(NOW + 905)).is_err());
            let (other, _, _) = setup(alg);
            let forged = issue(&claims, other.signing_key(at(NOW)).unwrap()).unwrap();
            assert!(verify_public(&forged, &public, &expect, at(NOW)).is_err());
        }
    }

    #[test]
    fn a_header_naming_another_alg_or_type_is_refused_before_any_key_is_fetched() {
        let (keys, expect, claims) = setup(SigningAlg::EdDSA);
        let public =
            PublicKeySet::from_jwks(&keys.jwks(at(NOW), Duration::from_secs(900))).unwrap();
        let key = keys.signing_key(at(NOW)).unwrap();
        let token = issue(&claims, key).unwrap();
        let rest = token.split_once('.').unwrap().1;
        let header = |json: serde_json::Value| {
            format!("{}.{rest}", URL_SAFE_NO_PAD.encode(json.to_string()))
        };
        let kid = key.kid.as_str();
        let wrong_alg = header(serde_json::json!({"alg": "HS256", "kid": kid, "typ": "at+jwt"}));
        assert!(
            unverified_kid(&wrong_alg).is_ok(),
            "alg is judged with the key"
        );
        assert!(verify_public(&wrong_alg, &public, &expect, at(NOW)).is_err());
        for bad in [
            header(serde_json::json!({"alg": "EdDSA", "kid": kid, "typ": "JWT"})),
            header(
                serde_json::json!({"alg": "EdDSA", "kid": kid, "typ": "at+jwt", "crit": ["exp"]}),
            ),
            header(serde_json::json!({"alg": "EdDSA", "typ": "at+jwt"})),
        ] {
            assert!(unverified_kid(&bad).is_err(), "{bad}");
            assert!(verify_public(&bad, &public, &expect, at(NOW)).is_err());
        }
    }

    #[test]
    fn expiry_and_not_before_allow_the_leeway_and_no_more() {
        let (keys, expect, claims) = setup(SigningAlg::EdDSA);
        let token = issue(&claims, keys.signing_key(at(NOW)).unwrap()).unwrap();
        assert!(verify(&token, &keys, &expect, at(NOW + 904)).is_ok());
        assert!(verify(&token, &keys, &expect, at(NOW + 905)).is_err());
        assert!(verify(&token, &keys, &expect, at(NOW - 5)).is_ok());
        assert!(verify(&token, &keys, &expect, at(NOW - 6)).is_err());
    }

    #[test]
    fn wrong_issuer_or_audience_is_refused() {
        let (keys, expect, claims) = setup(SigningAlg::EdDSA);
        let key = keys.signing_key(at(NOW)).unwrap();
        for c in [
            AccessClaims {
                iss: "https://evil.example".into(),
                ..claims.clone()
            },
            AccessClaims {
                aud: "https://other.example".into(),
                ..claims.clone()
            },
            AccessClaims {
                exp: NOW + 10_000,
                ..claims.clone()
            },
        ] {
            assert!(verify(&issue(&c, key).unwrap(), &keys, &expect, at(NOW)).is_err());
        }
    }

    #[test]
    fn a_token_of_another_key_set_is_refused() {
        let (keys, expect, claims) = setup(SigningAlg::EdDSA);
        let (other, _, _) = setup(SigningAlg::EdDSA);
        let token = issue(&claims, other.signing_key(at(NOW)).unwrap()).unwrap();
        assert!(verify(&token, &keys, &expect, at(NOW)).is_err());
    }

    #[test]
    fn tampered_or_misshapen_tokens_are_refused() {
        let (keys, expect, claims) = setup(SigningAlg::EdDSA);
        let token = issue(&claims, keys.signing_key(at(NOW)).unwrap()).unwrap();
        let (head, rest) = token.split_once('.').unwrap();
        let (body, sig) = rest.split_once('.').unwrap();
        let evil_claims = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&AccessClaims {
                username: "root".into(),
                ..claims.clone()
            })
            .unwrap(),
        );
        for bad in [
            format!("{head}.{evil_claims}.{sig}"),
            format!("{head}.{body}"),
            format!("{head}.{body}.{sig}.{sig}"),
            format!("{head}=.{body}.{sig}"),
            format!("{token} "),
            "x".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(verify(&bad, &keys, &expect, at(NOW)).is_err(), "{bad}");
        }
    }
}

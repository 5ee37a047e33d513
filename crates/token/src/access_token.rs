//! Access tokens: JWS-signed JWTs in the RFC 9068 profile, issued and strictly verified.
//!
//! Verification parses the token itself before any signature check, and is strict where
//! general-purpose JWT libraries are lenient: exactly three canonical base64url segments, a
//! header with `typ: at+jwt`, a `kid` looked up only in our own key set and its pinned `alg`,
//! any `crit` refused (`jku`, `jwk`, `x5u`, `x5c` are never read), claims of the right JSON
//! types. Signatures are made and checked by aws-lc-rs with keys parsed once per key
//! ([`SigningKey`], [`PublicKey`]), not once per token.
//!
//! The issuer verifies with its own key ring and a resource service with the published
//! [`PublicKeySet`]: both call [`verify`] with their [`KeyLookup`], so both run the same checks,
//! in the same order, through one implementation.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::algorithm::SigningAlg;
use crate::crypto::{Verifier, low_s};
use crate::error::{Error, InvalidToken};
use crate::keys::{PublicKey, PublicKeySet, SigningKey};
use crate::time::Timestamp;

/// The `typ` header of every Tessera access token (RFC 9068 §2.1).
pub const TOKEN_TYPE: &str = "at+jwt";

/// The access-token lifetime an issuer uses unless configured otherwise: 15 minutes.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The clock-skew leeway for `exp` and `nbf` unless configured otherwise: 5 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);

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
    /// The OAuth client the session belongs to (RFC 9068 §2.2): `tessera` for sessions made by
    /// a login that named no client.
    pub client_id: String,
    /// The key the session is bound to (RFC 9449 §6.1), for tokens of DPoP-bound sessions:
    /// such a token is accepted only with a proof by that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The `cnf` claim of a DPoP-bound access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The RFC 7638 SHA-256 thumbprint of the key, base64url.
    pub jkt: String,
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
pub(crate) struct Present(pub(crate) bool);

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
pub fn issue(claims: &AccessClaims, key: &SigningKey) -> Result<String, Error> {
    let header = Header {
        alg: key.alg().as_str(),
        kid: key.kid(),
        typ: TOKEN_TYPE,
    };
    let mut token = String::with_capacity(512);
    URL_SAFE_NO_PAD.encode_string(json(&header)?, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(json(claims)?, &mut token);
    let mut signature = key.signer.sign(token.as_bytes())?;
    if key.alg() == SigningAlg::ES256 {
        low_s::normalize(&mut signature)?;
    }
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(Error::Encoding)
}

/// Strict base64url: no padding, no `+`/`/`, no whitespace, zero trailing bits.
fn b64(part: &str) -> Result<Vec<u8>, InvalidToken> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| InvalidToken::NotBase64url)
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

fn parse(token: &str) -> Result<Parsed<'_>, InvalidToken> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(InvalidToken::TooLong);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(InvalidToken::NotCompact);
    };
    let header: ReceivedHeader =
        serde_json::from_slice(&b64(header_b64)?).map_err(|_| InvalidToken::MalformedHeader)?;
    if header.crit.0 {
        return Err(InvalidToken::CriticalHeader);
    }
    if header.typ != TOKEN_TYPE {
        return Err(InvalidToken::WrongType);
    }
    Ok(Parsed {
        header,
        signed: &token[..header_b64.len() + 1 + claims_b64.len()],
        claims_b64,
        signature_b64,
    })
}

/// A verification key as [`verify`] needs it: the key and the `alg` it is pinned to.
#[derive(Clone, Copy)]
pub struct VerifyingKey<'a> {
    alg: SigningAlg,
    verifier: &'a Verifier,
}

impl<'a> From<&'a SigningKey> for VerifyingKey<'a> {
    fn from(key: &'a SigningKey) -> Self {
        Self {
            alg: key.alg(),
            verifier: &key.verifier,
        }
    }
}

impl<'a> From<&'a PublicKey> for VerifyingKey<'a> {
    fn from(key: &'a PublicKey) -> Self {
        Self {
            alg: key.alg,
            verifier: &key.verifier,
        }
    }
}

/// Where [`verify`] looks up a token's `kid`: the only thing that differs between the issuer
/// (its own key ring) and a resource service (the published [`PublicKeySet`]).
pub trait KeyLookup {
    /// The key with this `kid` that may verify tokens now, if any.
    fn verifying_key(&self, kid: &str) -> Option<VerifyingKey<'_>>;
}

impl KeyLookup for PublicKeySet {
    fn verifying_key(&self, kid: &str) -> Option<VerifyingKey<'_>> {
        self.find(kid).map(VerifyingKey::from)
    }
}

/// A single key finds only itself: an issuer with one key, a test.
impl KeyLookup for SigningKey {
    fn verifying_key(&self, kid: &str) -> Option<VerifyingKey<'_>> {
        (self.kid() == kid).then(|| self.into())
    }
}

/// Verifies `token` at `now`: the strict header checks, the key looked up by `kid` in `keys`
/// and its pinned `alg`, the signature, then every claim.
///
/// ```
/// # use std::time::Duration;
/// use tessera_token::access_token::{self, AccessClaims, Expectations};
/// use tessera_token::{PublicKeySet, SigningAlg, SigningKey, Timestamp};
/// # let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8v1(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
/// # let issuer = SigningKey::from_private("k1", SigningAlg::EdDSA, pkcs8.as_ref())?;
/// # let jwks = jsonwebtoken::jwk::JwkSet { keys: issuer.jwk().into_iter().cloned().collect() };
/// # let keys = PublicKeySet::from_jwks(&jwks)?;
/// # let now = Timestamp::from_millis(1_800_000_000_000);
/// # let claims = AccessClaims { iss: "https://auth.example".into(), aud: "https://auth.example".into(),
/// #     sub: uuid::Uuid::nil(), sid: uuid::Uuid::nil(), jti: uuid::Uuid::nil(), username: "alice".into(), client_id: "tessera".into(), cnf: None,
/// #     iat: now.as_secs(), nbf: now.as_secs(), exp: now.as_secs() + 900 };
/// # let token = access_token::issue(&claims, &issuer)?;
/// let expect = Expectations {
///     issuer: "https://auth.example".into(),
///     audience: "https://auth.example".into(),
///     leeway: Duration::from_secs(5),
///     lifetime: Duration::from_secs(900),
/// };
/// let claims = access_token::verify(&token, &keys, &expect, now)?;
/// assert_eq!(claims.username, "alice");
/// # Ok::<(), tessera_token::Error>(())
/// ```
pub fn verify(
    token: &str,
    keys: &impl KeyLookup,
    expect: &Expectations,
    now: Timestamp,
) -> Result<AccessClaims, InvalidToken> {
    let parsed = parse(token)?;
    let key = keys
        .verifying_key(&parsed.header.kid)
        .ok_or(InvalidToken::UnknownKey)?;
    if parsed.header.alg != key.alg.as_str() {
        return Err(InvalidToken::AlgorithmMismatch);
    }
    let signature = b64(parsed.signature_b64)?;
    if key.alg == SigningAlg::ES256 && !low_s::is_low(&signature) {
        return Err(InvalidToken::HighS);
    }
    if !key.verifier.verify(parsed.signed.as_bytes(), &signature) {
        return Err(InvalidToken::BadSignature);
    }
    let claims: AccessClaims = serde_json::from_slice(&b64(parsed.claims_b64)?)
        .map_err(|_| InvalidToken::MalformedClaims)?;
    check_claims(&claims, expect, now)?;
    Ok(claims)
}

/// The `kid` of a token whose shape and header pass the strict checks (length, segments,
/// canonical base64url, `typ`, no `crit`), **before** any signature check.
///
/// Only for deciding whether to fetch the issuer's keys again when the `kid` is unknown; it
/// says nothing about whether the token is genuine.
pub fn unverified_kid(token: &str) -> Result<String, InvalidToken> {
    parse(token).map(|p| p.header.kid)
}

fn check_claims(
    c: &AccessClaims,
    expect: &Expectations,
    now: Timestamp,
) -> Result<(), InvalidToken> {
    let leeway = i64::try_from(expect.leeway.as_secs()).unwrap_or(i64::MAX);
    let lifetime = i64::try_from(expect.lifetime.as_secs()).unwrap_or(i64::MAX);
    let now = now.as_secs();
    if c.iss != expect.issuer {
        return Err(InvalidToken::WrongIssuer);
    }
    if c.aud != expect.audience {
        return Err(InvalidToken::WrongAudience);
    }
    if now.saturating_sub(leeway) >= c.exp {
        return Err(InvalidToken::Expired);
    }
    if now.saturating_add(leeway) < c.nbf {
        return Err(InvalidToken::NotYetValid);
    }
    if c.exp > now.saturating_add(lifetime).saturating_add(leeway) {
        return Err(InvalidToken::TooLongLived);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
    use jsonwebtoken::jwk::JwkSet;

    const NOW: i64 = 1_800_000_000;

    /// A fresh key as an issuer would hold it (PKCS#8, or the HMAC secret).
    pub(crate) fn test_key(alg: SigningAlg) -> SigningKey {
        let rng = SystemRandom::new();
        let private: Vec<u8> = match alg {
            SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8v1(&rng)
                .unwrap()
                .as_ref()
                .to_vec(),
            SigningAlg::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .unwrap()
                    .as_ref()
                    .to_vec()
            }
            SigningAlg::RS256 => {
                let pair =
                    aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = pair.as_der().unwrap();
                der.as_ref().to_vec()
            }
            SigningAlg::HS256 => vec![7; 32],
        };
        let kid = format!("{alg}-{}", Uuid::new_v4());
        SigningKey::from_private(kid, alg, &private).unwrap()
    }

    fn published(key: &SigningKey) -> JwkSet {
        JwkSet {
            keys: key.jwk().into_iter().cloned().collect(),
        }
    }

    fn setup(alg: SigningAlg) -> (SigningKey, Expectations, AccessClaims) {
        let keys = test_key(alg);
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
            client_id: "tessera".into(),
            cnf: None,
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
            let token = issue(&claims, &keys).unwrap();
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
            let token = issue(&claims, &keys).unwrap();
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
            let public = PublicKeySet::from_jwks(&published(&keys)).unwrap();
            let key = &keys;
            let token = issue(&claims, key).unwrap();
            assert_eq!(unverified_kid(&token).unwrap(), key.kid());
            assert_eq!(
                verify(&token, &public, &expect, at(NOW)).unwrap(),
                claims,
                "{alg}"
            );
            assert!(verify(&token, &public, &expect, at(NOW + 905)).is_err());
            let (other, _, _) = setup(alg);
            let forged = issue(&claims, &other).unwrap();
            assert!(verify(&forged, &public, &expect, at(NOW)).is_err());
        }
    }

    #[test]
    fn a_header_naming_another_alg_or_type_is_refused_before_any_key_is_fetched() {
        let (keys, expect, claims) = setup(SigningAlg::EdDSA);
        let public = PublicKeySet::from_jwks(&published(&keys)).unwrap();
        let key = &keys;
        let token = issue(&claims, key).unwrap();
        let rest = token.split_once('.').unwrap().1;
        let header = |json: serde_json::Value| {
            format!("{}.{rest}", URL_SAFE_NO_PAD.encode(json.to_string()))
        };
        let kid = key.kid();
        let wrong_alg = header(serde_json::json!({"alg": "HS256", "kid": kid, "typ": "at+jwt"}));
        assert!(
            unverified_kid(&wrong_alg).is_ok(),
            "alg is judged with the key"
        );
        assert!(verify(&wrong_alg, &public, &expect, at(NOW)).is_err());
        for bad in [
            header(serde_json::json!({"alg": "EdDSA", "kid": kid, "typ": "JWT"})),
            header(
                serde_json::json!({"alg": "EdDSA", "kid": kid, "typ": "at+jwt", "crit": ["exp"]}),
            ),
            header(serde_json::json!({"alg": "EdDSA", "typ": "at+jwt"})),
        ] {
            assert!(unverified_kid(&bad).is_err(), "{bad}");
            assert!(verify(&bad, &public, &expect, at(NOW)).is_err());
        }
    }

    #[test]
    fn expiry_and_not_before_allow_the_leeway_and_no_more() {
        let (keys, expect, claims) = setup(SigningAlg::EdDSA);
        let token = issue(&claims, &keys).unwrap();
        assert!(verify(&token, &keys, &expect, at(NOW + 904)).is_ok());
        assert!(verify(&token, &keys, &expect, at(NOW + 905)).is_err());
        assert!(verify(&token, &keys, &expect, at(NOW - 5)).is_ok());
        assert!(verify(&token, &keys, &expect, at(NOW - 6)).is_err());
    }

    #[test]
    fn wrong_issuer_or_audience_is_refused() {
        let (keys, expect, claims) = setup(SigningAlg::EdDSA);
        let key = &keys;
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
        let token = issue(&claims, &other).unwrap();
        assert!(verify(&token, &keys, &expect, at(NOW)).is_err());
    }

    #[test]
    fn tampered_or_misshapen_tokens_are_refused() {
        let (keys, expect, claims) = setup(SigningAlg::EdDSA);
        let token = issue(&claims, &keys).unwrap();
        let (head, rest) = token.split_once('.').unwrap();
        let (body, sig) = rest.split_once('.').unwrap();
        let evil_claims = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&AccessClaims {
                username: "root".into(),
                client_id: "tessera".into(),
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

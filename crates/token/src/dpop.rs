//! DPoP proofs (RFC 9449): a JWS the client signs with a key it holds, sent in the `DPoP` header,
//! which binds a session and its tokens to that key.
//!
//! [`check`] parses a proof with the same strictness as an access token (canonical base64url,
//! a size limit, each JSON member once, no `crit`), then checks what RFC 9449 §4.3 lists:
//! `typ: dpop+jwt`; `alg` `ES256` or `EdDSA` only; `jwk` a public key (no private members) that
//! verifies the signature; `htm` and `htu` those of the request; `iat` recent; `ath` the hash of
//! the access token presented with it. What needs state is the caller's: whether the `jti` was
//! seen before (the returned [`Proof`] carries it) and whether a server nonce is current (a
//! predicate in [`Expected`]).

use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::access_token::{AccessClaims, Present};
use crate::algorithm::SigningAlg;
use crate::crypto::{PublicParts, Verifier};
use crate::time::Timestamp;

/// The `typ` header of a DPoP proof (RFC 9449 §4.2).
pub const PROOF_TYPE: &str = "dpop+jwt";

/// How far in the past a proof's `iat` may be, on top of the clock leeway.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// The algorithms a proof may use, as the `algs` of a `WWW-Authenticate: DPoP` challenge and the
/// metadata's `dpop_signing_alg_values_supported`.
pub const ALGORITHMS: [SigningAlg; 2] = [SigningAlg::ES256, SigningAlg::EdDSA];

/// Longer than any honest proof (a P-256 proof is about 600 bytes with a nonce); anything longer
/// is refused unread.
const MAX_PROOF_LEN: usize = 4 * 1024;

/// Longest `jti` kept in a replay store.
const MAX_JTI_LEN: usize = 256;

/// Why a proof was refused: one variant per check, `Display` for the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidProof {
    /// No `DPoP` header where one is needed.
    #[error("a DPoP proof is required")]
    Missing,
    /// More than one `DPoP` header.
    #[error("more than one DPoP header")]
    Several,
    /// Longer than any honest proof.
    #[error("DPoP proof is too long")]
    TooLong,
    /// Not three canonical base64url segments of JSON objects.
    #[error("DPoP proof is not a compact JWS")]
    Malformed,
    /// A header member is missing, repeated or of the wrong type, or `crit` is present.
    #[error("DPoP proof header is malformed")]
    MalformedHeader,
    /// `typ` is not `dpop+jwt`.
    #[error("DPoP proof `typ` is not dpop+jwt")]
    WrongType,
    /// `alg` is not `ES256` or `EdDSA` (so never `none` or a MAC).
    #[error("DPoP proof `alg` is not ES256 or EdDSA")]
    UnsupportedAlgorithm,
    /// `jwk` is not a public key of the `alg`'s type, or it carries private members.
    #[error("DPoP proof `jwk` is not a public key for its alg")]
    BadKey,
    /// The signature does not verify with `jwk`.
    #[error("DPoP proof signature is invalid")]
    BadSignature,
    /// A claim is missing, repeated or of the wrong type.
    #[error("DPoP proof claims are malformed")]
    MalformedClaims,
    /// `htm` is not the request's method.
    #[error("DPoP proof `htm` does not match the request method")]
    WrongMethod,
    /// `htu` is not the request's URL (or carries a query or fragment).
    #[error("DPoP proof `htu` does not match the request URL")]
    WrongUrl,
    /// `iat` is too old or in the future.
    #[error("DPoP proof `iat` is outside the accepted window")]
    Stale,
    /// The `jti` was seen before.
    #[error("DPoP proof was already used")]
    Replayed,
    /// `ath` is missing or is not the hash of the access token sent with it.
    #[error("DPoP proof `ath` does not match the access token")]
    WrongAccessTokenHash,
    /// The proof is valid but by another key than the one the access token is bound to.
    #[error("DPoP proof key is not the one the access token is bound to")]
    WrongKey,
    /// A nonce was required and the proof has none, or not a current one.
    #[error("a current DPoP nonce is required")]
    NonceRequired,
}

impl InvalidProof {
    /// The OAuth error code this refusal is answered with: `use_dpop_nonce` for a missing or
    /// stale nonce (RFC 9449 §8), `invalid_dpop_proof` otherwise.
    pub fn error_code(self) -> &'static str {
        match self {
            Self::NonceRequired => "use_dpop_nonce",
            _ => "invalid_dpop_proof",
        }
    }
}

/// What the request says a proof must match.
pub struct Expected<'a> {
    /// The request method, e.g. `POST`.
    pub method: &'a str,
    /// The request's URL as the client sees it: the external origin plus the path.
    pub url: &'a str,
    /// The access token sent with the proof (resource requests), whose hash `ath` must be.
    pub access_token: Option<&'a str>,
    /// Forgiven clock skew, added to [`MAX_AGE`] in the past and allowed in the future.
    pub leeway: Duration,
    /// When nonces are on: whether a nonce is current. `None`: nonces are off (a `nonce` the
    /// proof carries is then ignored).
    pub nonce_is_current: Option<&'a dyn Fn(&str) -> bool>,
}

/// A proof that passed every stateless check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key, base64url: what a session is bound to
    /// and what `cnf.jkt` carries.
    pub jkt: String,
    /// The proof's unique id, for the caller's replay store.
    pub jti: String,
    /// When the proof says it was made; a replay store may forget the `jti` once this is older
    /// than [`MAX_AGE`] plus the leeway.
    pub iat: Timestamp,
}

/// The members of a proof's `jwk` that are read, and the private ones that must be absent (EC and
/// OKP `d`; RSA's and symmetric keys' for good measure). Other public members change nothing.
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    crv: String,
    x: String,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    d: Option<IgnoredAny>,
    #[serde(default)]
    p: Option<IgnoredAny>,
    #[serde(default)]
    q: Option<IgnoredAny>,
    #[serde(default)]
    dp: Option<IgnoredAny>,
    #[serde(default)]
    dq: Option<IgnoredAny>,
    #[serde(default)]
    qi: Option<IgnoredAny>,
    #[serde(default)]
    k: Option<IgnoredAny>,
}

impl Jwk {
    fn has_private_members(&self) -> bool {
        [
            &self.d, &self.p, &self.q, &self.dp, &self.dq, &self.qi, &self.k,
        ]
        .iter()
        .any(|m| m.is_some())
    }
}

/// Derived `Deserialize` refuses a repeated member, in the header and in its `jwk` alike.
#[derive(Deserialize)]
struct Header {
    typ: String,
    alg: String,
    jwk: Jwk,
    #[serde(default)]
    crit: Present,
}

#[derive(Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

/// Checks one proof against the request it came with, at `now`.
pub fn check(proof: &str, expected: &Expected<'_>, now: Timestamp) -> Result<Proof, InvalidProof> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(InvalidProof::TooLong);
    }
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(InvalidProof::Malformed);
    };
    let header: Header =
        serde_json::from_slice(&b64(header_b64)?).map_err(|_| InvalidProof::MalformedHeader)?;
    if header.crit.0 {
        return Err(InvalidProof::MalformedHeader);
    }
    if header.typ != PROOF_TYPE {
        return Err(InvalidProof::WrongType);
    }
    let alg = match header.alg.as_str() {
        "ES256" => SigningAlg::ES256,
        "EdDSA" => SigningAlg::EdDSA,
        _ => return Err(InvalidProof::UnsupportedAlgorithm),
    };
    let (parts, jkt) = public_key(alg, header.jwk)?;
    let verifier = Verifier::from_public(alg, &parts).ok_or(InvalidProof::BadKey)?;
    let signed = &proof[..header_b64.len() + 1 + claims_b64.len()];
    if !verifier.verify(signed.as_bytes(), &b64(signature_b64)?) {
        return Err(InvalidProof::BadSignature);
    }
    let claims: Claims =
        serde_json::from_slice(&b64(claims_b64)?).map_err(|_| InvalidProof::MalformedClaims)?;
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
        return Err(InvalidProof::MalformedClaims);
    }
    if claims.htm != expected.method {
        return Err(InvalidProof::WrongMethod);
    }
    if !same_url(&claims.htu, expected.url) {
        return Err(InvalidProof::WrongUrl);
    }
    let iat = check_iat(claims.iat, expected.leeway, now)?;
    if let Some(token) = expected.access_token
        && claims.ath.as_deref() != Some(access_token_hash(token).as_str())
    {
        return Err(InvalidProof::WrongAccessTokenHash);
    }
    if let Some(is_current) = expected.nonce_is_current
        && !claims.nonce.as_deref().is_some_and(is_current)
    {
        return Err(InvalidProof::NonceRequired);
    }
    Ok(Proof {
        jkt,
        jti: claims.jti,
        iat,
    })
}

/// `ath`: the base64url SHA-256 of an access token (RFC 9449 §4.2).
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()))
}

/// The `WWW-Authenticate` challenge for a refused DPoP request (RFC 9449 §7.1).
pub fn challenge(error: &str, description: &str) -> String {
    let algs: Vec<&str> = ALGORITHMS.iter().map(|a| a.as_str()).collect();
    format!(
        "DPoP error=\"{error}\", error_description=\"{description}\", algs=\"{}\"",
        algs.join(" ")
    )
}

/// The one proof of a request, from its `DPoP` header values: `None` when there is none,
/// [`InvalidProof::Several`] for more than one, [`InvalidProof::Malformed`] for one that is not
/// text.
pub fn single<'a>(
    mut values: impl Iterator<Item = &'a [u8]>,
) -> Option<Result<&'a str, InvalidProof>> {
    let first = values.next()?;
    if values.next().is_some() {
        return Some(Err(InvalidProof::Several));
    }
    Some(std::str::from_utf8(first).map_err(|_| InvalidProof::Malformed))
}

/// How an access token came: as `Bearer`, or as `DPoP` with the request's proof.
pub enum Presented<'a> {
    /// `Authorization: Bearer`.
    Bearer,
    /// `Authorization: DPoP`, with the request's `DPoP` header ([`single`]; `None`: absent) and
    /// what a proof must match.
    Dpop {
        /// The proof, as [`single`] read it.
        proof: Option<Result<&'a str, InvalidProof>>,
        /// The request method.
        method: &'a str,
        /// The request's URL as the client sees it.
        url: String,
    },
}

/// Why a presented access token was refused although its signature and claims are right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingRefusal {
    /// The scheme does not fit the token: a bound token as `Bearer`, an unbound one as `DPoP`.
    Token(crate::InvalidToken),
    /// The proof is missing, invalid, replayed or by another key.
    Proof(InvalidProof),
}

/// Checks that a verified token was presented as its binding requires (RFC 9449 §7): an unbound
/// token as `Bearer`; a bound one as `DPoP` with a proof by its key, carrying its `ath`, whose
/// `jti` `seen` has not met. One signature verification (the proof's) on top of the token's.
pub fn check_presented(
    claims: &AccessClaims,
    token: &str,
    presented: &Presented<'_>,
    leeway: Duration,
    now: Timestamp,
    seen: &JtiCache,
) -> Result<(), BindingRefusal> {
    use crate::InvalidToken;
    let (proof, method, url) = match (presented, &claims.cnf) {
        (Presented::Bearer, None) => return Ok(()),
        (Presented::Bearer, Some(_)) => return Err(BindingRefusal::Token(InvalidToken::DpopBound)),
        (Presented::Dpop { .. }, None) => {
            return Err(BindingRefusal::Token(InvalidToken::NotDpopBound));
        }
        (Presented::Dpop { proof, method, url }, Some(_)) => (proof, method, url),
    };
    let proof = proof
        .unwrap_or(Err(InvalidProof::Missing))
        .map_err(BindingRefusal::Proof)?;
    let expected = Expected {
        method,
        url: url.as_str(),
        access_token: Some(token),
        leeway,
        nonce_is_current: None,
    };
    let proof = check(proof, &expected, now).map_err(BindingRefusal::Proof)?;
    if claims.cnf.as_ref().is_none_or(|c| c.jkt != proof.jkt) {
        return Err(BindingRefusal::Proof(InvalidProof::WrongKey));
    }
    if !seen.insert(&proof, leeway, now) {
        return Err(BindingRefusal::Proof(InvalidProof::Replayed));
    }
    Ok(())
}

/// A bounded, in-memory record of the `jti`s of accepted proofs, for replay detection where one
/// instance's memory is enough (resource requests). Two generations of one window each (the
/// longest a proof stays acceptable): a `jti` is remembered for at least that window after it
/// was seen, and at most [`JtiCache::CAPACITY`] per generation are held. When a generation is
/// full, further proofs are refused until it turns over: memory stays bounded and a flood cannot
/// push out an entry to replay it.
#[derive(Default)]
pub struct JtiCache {
    inner: std::sync::Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    epoch: i64,
    current: std::collections::HashSet<u128>,
    previous: std::collections::HashSet<u128>,
}

impl JtiCache {
    /// The most `jti`s one generation holds (about 3 MB with the hash set's overhead).
    pub const CAPACITY: usize = 100_000;

    /// Records the proof's `jti` (per key); `false` when it was seen before or the cache is
    /// full.
    pub fn insert(&self, proof: &Proof, leeway: Duration, now: Timestamp) -> bool {
        let window = MAX_AGE
            .saturating_add(leeway.saturating_mul(2))
            .as_secs()
            .max(1);
        let epoch = now.as_secs() / i64::try_from(window).unwrap_or(i64::MAX);
        let id = jti_id(proof);
        // The set holds fingerprints only; after a panic elsewhere it is still usable.
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if epoch != g.epoch {
            g.previous = if epoch == g.epoch + 1 {
                std::mem::take(&mut g.current)
            } else {
                g.current.clear();
                Default::default()
            };
            g.epoch = epoch;
        }
        if g.previous.contains(&id) || g.current.len() >= Self::CAPACITY {
            return false;
        }
        g.current.insert(id)
    }
}

/// 128 bits of SHA-256 over the key's thumbprint and the `jti`: what replay stores keep, the
/// same size however long the `jti`.
pub fn jti_id(proof: &Proof) -> u128 {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(proof.jkt.as_bytes());
    ctx.update(b".");
    ctx.update(proof.jti.as_bytes());
    let d = ctx.finish();
    let mut first = [0u8; 16];
    first.copy_from_slice(&d.as_ref()[..16]);
    u128::from_be_bytes(first)
}

fn b64(part: &str) -> Result<Vec<u8>, InvalidProof> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| InvalidProof::Malformed)
}

/// The key's public members and its RFC 7638 thumbprint, for a `jwk` of `alg`'s key type with no
/// private member.
fn public_key(alg: SigningAlg, jwk: Jwk) -> Result<(PublicParts, String), InvalidProof> {
    if jwk.has_private_members() {
        return Err(InvalidProof::BadKey);
    }
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| InvalidProof::BadKey);
    // The thumbprint's JSON: the required members only, in lexicographic order, no whitespace.
    let (parts, canonical) = match (alg, jwk.kty.as_str(), jwk.crv.as_str(), &jwk.y) {
        (SigningAlg::ES256, "EC", "P-256", Some(y)) => (
            PublicParts::P256 {
                x: decode(&jwk.x)?,
                y: decode(y)?,
            },
            format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{y}"}}"#, jwk.x),
        ),
        (SigningAlg::EdDSA, "OKP", "Ed25519", None) => (
            PublicParts::Ed25519 { x: decode(&jwk.x)? },
            format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, jwk.x),
        ),
        _ => return Err(InvalidProof::BadKey),
    };
    let jkt = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()));
    Ok((parts, jkt))
}

fn check_iat(iat: i64, leeway: Duration, now: Timestamp) -> Result<Timestamp, InvalidProof> {
    let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let now = now.as_secs();
    let oldest = now.saturating_sub(secs(MAX_AGE).saturating_add(secs(leeway)));
    let newest = now.saturating_add(secs(leeway));
    if iat < oldest || iat > newest {
        return Err(InvalidProof::Stale);
    }
    Ok(Timestamp::from_millis(iat.saturating_mul(1000)))
}

/// Whether a proof's `htu` names the request's URL (RFC 9449 §4.3): compared after RFC 3986
/// normalisation (scheme and host case, default port, empty path); an `htu` with a query or a
/// fragment never matches.
fn same_url(htu: &str, request: &str) -> bool {
    let (Ok(htu), Ok(request)) = (url::Url::parse(htu), url::Url::parse(request)) else {
        return false;
    };
    htu.query().is_none()
        && htu.fragment().is_none()
        && htu.scheme() == request.scheme()
        && htu.host() == request.host()
        && htu.port_or_known_default() == request.port_or_known_default()
        && htu.path() == request.path()
        && htu.username().is_empty()
        && htu.password().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
    };
    use serde_json::{Value, json};

    const NOW: i64 = 1_800_000_000;
    const URL: &str = "https://auth.example/auth/refresh";

    enum Key {
        Es(EcdsaKeyPair),
        Ed(Ed25519KeyPair),
    }

    impl Key {
        fn es256() -> Self {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            Self::Es(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap(),
            )
        }

        fn ed25519() -> Self {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).unwrap();
            Self::Ed(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
        }

        fn alg(&self) -> &'static str {
            match self {
                Self::Es(_) => "ES256",
                Self::Ed(_) => "EdDSA",
            }
        }

        fn jwk(&self) -> Value {
            let e = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
            match self {
                Self::Es(k) => {
                    let p = k.public_key().as_ref();
                    json!({"kty": "EC", "crv": "P-256", "x": e(&p[1..33]), "y": e(&p[33..65])})
                }
                Self::Ed(k) => {
                    json!({"kty": "OKP", "crv": "Ed25519", "x": e(k.public_key().as_ref())})
                }
            }
        }

        fn sign(&self, message: &[u8]) -> Vec<u8> {
            match self {
                Self::Es(k) => k
                    .sign(&SystemRandom::new(), message)
                    .unwrap()
                    .as_ref()
                    .to_vec(),
                Self::Ed(k) => k.sign(message).as_ref().to_vec(),
            }
        }
    }

    fn claims() -> Value {
        json!({"jti": "j-1", "htm": "POST", "htu": URL, "iat": NOW})
    }

    fn header(key: &Key) -> Value {
        json!({"typ": "dpop+jwt", "alg": key.alg(), "jwk": key.jwk()})
    }

    fn signed_raw(key: &Key, header: &str, claims: &str) -> String {
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let signature = key.sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn signed(key: &Key, header: &Value, claims: &Value) -> String {
        signed_raw(key, &header.to_string(), &claims.to_string())
    }

    fn expected() -> Expected<'static> {
        Expected {
            method: "POST",
            url: URL,
            access_token: None,
            leeway: Duration::from_secs(5),
            nonce_is_current: None,
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    fn refused(proof: &str, expected: &Expected<'_>) -> InvalidProof {
        check(proof, expected, at(NOW)).unwrap_err()
    }

    #[test]
    fn a_proof_by_either_algorithm_passes_and_names_its_key() {
        for key in [Key::es256(), Key::ed25519()] {
            let proof = check(
                &signed(&key, &header(&key), &claims()),
                &expected(),
                at(NOW),
            )
            .unwrap();
            assert_eq!(proof.jti, "j-1");
            assert_eq!(proof.iat, at(NOW));
            assert_eq!(proof.jkt.len(), 43, "base64url of a SHA-256");
        }
    }

    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        // The EC key of RFC 7517 appendix A.1; the expected value is the SHA-256 of RFC 7638's
        // canonical JSON of that key, computed apart with Python's hashlib.
        let jwk = json!({"kty": "EC", "crv": "P-256",
            "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
            "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"});
        let (_, jkt) = public_key(SigningAlg::ES256, serde_json::from_value(jwk).unwrap()).unwrap();
        assert_eq!(jkt, "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s");
    }

    #[test]
    fn each_key_has_its_own_thumbprint_and_keeps_it() {
        let (a, b) = (Key::es256(), Key::es256());
        let jkt = |k: &Key| {
            check(&signed(k, &header(k), &claims()), &expected(), at(NOW))
                .unwrap()
                .jkt
        };
        assert_eq!(jkt(&a), jkt(&a));
        assert_ne!(jkt(&a), jkt(&b));
    }

    #[test]
    fn header_attacks_are_refused() {
        let key = Key::es256();
        let with = |f: &dyn Fn(&mut Value)| {
            let mut h = header(&key);
            f(&mut h);
            signed(&key, &h, &claims())
        };
        let cases: Vec<(&str, String, InvalidProof)> = vec![
            (
                "typ JWT",
                with(&|h| h["typ"] = json!("JWT")),
                InvalidProof::WrongType,
            ),
            (
                "typ at+jwt",
                with(&|h| h["typ"] = json!("at+jwt")),
                InvalidProof::WrongType,
            ),
            (
                "alg none",
                with(&|h| h["alg"] = json!("none")),
                InvalidProof::UnsupportedAlgorithm,
            ),
            (
                "alg RS256",
                with(&|h| h["alg"] = json!("RS256")),
                InvalidProof::UnsupportedAlgorithm,
            ),
            (
                "alg EdDSA with an EC key",
                with(&|h| h["alg"] = json!("EdDSA")),
                InvalidProof::BadKey,
            ),
            (
                "private member d",
                with(&|h| h["jwk"]["d"] = json!("AAAA")),
                InvalidProof::BadKey,
            ),
            (
                "no jwk",
                with(&|h| {
                    h.as_object_mut().unwrap().remove("jwk");
                }),
                InvalidProof::MalformedHeader,
            ),
            (
                "jwk not an object",
                with(&|h| h["jwk"] = json!("k")),
                InvalidProof::MalformedHeader,
            ),
            (
                "crit",
                with(&|h| h["crit"] = json!(["x"])),
                InvalidProof::MalformedHeader,
            ),
            (
                "x not base64url",
                with(&|h| h["jwk"]["x"] = json!("a+b/")),
                InvalidProof::BadKey,
            ),
            (
                "x of the wrong length",
                with(&|h| h["jwk"]["x"] = json!("AAAA")),
                InvalidProof::BadKey,
            ),
        ];
        for (name, proof, want) in cases {
            assert_eq!(refused(&proof, &expected()), want, "{name}");
        }
    }

    #[test]
    fn a_mac_keyed_with_the_jwk_is_refused() {
        let key = Key::es256();
        let mut h = header(&key);
        h["alg"] = json!("HS256");
        let signed_part = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(h.to_string()),
            URL_SAFE_NO_PAD.encode(claims().to_string())
        );
        let mac = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                h["jwk"].to_string().as_bytes(),
            ),
            signed_part.as_bytes(),
        );
        let proof = format!("{signed_part}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
        assert_eq!(
            refused(&proof, &expected()),
            InvalidProof::UnsupportedAlgorithm
        );
    }

    #[test]
    fn a_signature_by_another_key_is_refused() {
        let (key, other) = (Key::es256(), Key::es256());
        let good = signed(&key, &header(&key), &claims());
        let forged = signed(&other, &header(&key), &claims());
        assert!(check(&good, &expected(), at(NOW)).is_ok());
        assert_eq!(refused(&forged, &expected()), InvalidProof::BadSignature);
    }

    #[test]
    fn repeated_members_are_refused() {
        let key = Key::ed25519();
        let h = header(&key).to_string();
        let c = claims().to_string();
        let twice_alg = h.replacen('{', r#"{"alg":"ES256","#, 1);
        let twice_htm = c.replacen('{', r#"{"htm":"GET","#, 1);
        assert_eq!(
            refused(&signed_raw(&key, &twice_alg, &c), &expected()),
            InvalidProof::MalformedHeader
        );
        assert_eq!(
            refused(&signed_raw(&key, &h, &twice_htm), &expected()),
            InvalidProof::MalformedClaims
        );
    }

    #[test]
    fn malformed_and_oversized_proofs_are_refused_unread() {
        let key = Key::ed25519();
        let good = signed(&key, &header(&key), &claims());
        assert_eq!(refused("", &expected()), InvalidProof::Malformed);
        assert_eq!(refused("a.b", &expected()), InvalidProof::Malformed);
        assert_eq!(
            refused(&format!("{good}.x"), &expected()),
            InvalidProof::Malformed
        );
        assert_eq!(
            refused(&format!("{good}="), &expected()),
            InvalidProof::Malformed
        );
        assert_eq!(
            refused(&"a".repeat(100 * 1024), &expected()),
            InvalidProof::TooLong
        );
    }

    #[test]
    fn claims_must_match_the_request() {
        let key = Key::es256();
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = claims();
            f(&mut c);
            signed(&key, &header(&key), &c)
        };
        let cases: Vec<(&str, String, InvalidProof)> = vec![
            (
                "htm GET",
                with(&|c| c["htm"] = json!("GET")),
                InvalidProof::WrongMethod,
            ),
            (
                "htm lower case",
                with(&|c| c["htm"] = json!("post")),
                InvalidProof::WrongMethod,
            ),
            (
                "another host",
                with(&|c| c["htu"] = json!("https://evil.example/auth/refresh")),
                InvalidProof::WrongUrl,
            ),
            (
                "another scheme",
                with(&|c| c["htu"] = json!("http://auth.example/auth/refresh")),
                InvalidProof::WrongUrl,
            ),
            (
                "another port",
                with(&|c| c["htu"] = json!("https://auth.example:8443/auth/refresh")),
                InvalidProof::WrongUrl,
            ),
            (
                "another path",
                with(&|c| c["htu"] = json!("https://auth.example/auth/login")),
                InvalidProof::WrongUrl,
            ),
            (
                "a query",
                with(&|c| c["htu"] = json!("https://auth.example/auth/refresh?x=1")),
                InvalidProof::WrongUrl,
            ),
            (
                "a fragment",
                with(&|c| c["htu"] = json!("https://auth.example/auth/refresh#f")),
                InvalidProof::WrongUrl,
            ),
            (
                "not a URL",
                with(&|c| c["htu"] = json!("/auth/refresh")),
                InvalidProof::WrongUrl,
            ),
            (
                "too old",
                with(&|c| c["iat"] = json!(NOW - 66)),
                InvalidProof::Stale,
            ),
            (
                "from the future",
                with(&|c| c["iat"] = json!(NOW + 6)),
                InvalidProof::Stale,
            ),
            (
                "iat a string",
                with(&|c| c["iat"] = json!(NOW.to_string())),
                InvalidProof::MalformedClaims,
            ),
            (
                "no jti",
                with(&|c| {
                    c.as_object_mut().unwrap().remove("jti");
                }),
                InvalidProof::MalformedClaims,
            ),
            (
                "empty jti",
                with(&|c| c["jti"] = json!("")),
                InvalidProof::MalformedClaims,
            ),
            (
                "huge jti",
                with(&|c| c["jti"] = json!("j".repeat(300))),
                InvalidProof::MalformedClaims,
            ),
        ];
        for (name, proof, want) in cases {
            assert_eq!(refused(&proof, &expected()), want, "{name}");
        }
    }

    #[test]
    fn urls_compare_after_normalisation_and_iat_within_the_window() {
        let key = Key::ed25519();
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = claims();
            f(&mut c);
            signed(&key, &header(&key), &c)
        };
        for ok in [
            with(&|c| c["htu"] = json!("HTTPS://Auth.Example/auth/refresh")),
            with(&|c| c["htu"] = json!("https://auth.example:443/auth/refresh")),
            with(&|c| c["iat"] = json!(NOW - 65)),
            with(&|c| c["iat"] = json!(NOW + 5)),
        ] {
            assert!(check(&ok, &expected(), at(NOW)).is_ok());
        }
    }

    #[test]
    fn ath_must_hash_the_access_token_sent_with_the_proof() {
        let key = Key::es256();
        let with_ath = |ath: Option<String>| {
            let mut c = claims();
            if let Some(a) = ath {
                c["ath"] = json!(a);
            }
            signed(&key, &header(&key), &c)
        };
        let expect = Expected {
            access_token: Some("the.access.token"),
            ..expected()
        };
        let good = with_ath(Some(access_token_hash("the.access.token")));
        assert!(check(&good, &expect, at(NOW)).is_ok());
        assert_eq!(
            refused(&with_ath(None), &expect),
            InvalidProof::WrongAccessTokenHash
        );
        assert_eq!(
            refused(
                &with_ath(Some(access_token_hash("another.access.token"))),
                &expect
            ),
            InvalidProof::WrongAccessTokenHash
        );
    }

    #[test]
    fn a_nonce_is_needed_only_when_nonces_are_on() {
        let key = Key::ed25519();
        let with_nonce = |n: Option<&str>| {
            let mut c = claims();
            if let Some(n) = n {
                c["nonce"] = json!(n);
            }
            signed(&key, &header(&key), &c)
        };
        let current = |n: &str| n == "fresh";
        let on = Expected {
            nonce_is_current: Some(&current),
            ..expected()
        };
        assert!(check(&with_nonce(Some("fresh")), &on, at(NOW)).is_ok());
        assert_eq!(refused(&with_nonce(None), &on), InvalidProof::NonceRequired);
        assert_eq!(
            refused(&with_nonce(Some("stale")), &on),
            InvalidProof::NonceRequired
        );
        assert_eq!(InvalidProof::NonceRequired.error_code(), "use_dpop_nonce");
        assert!(check(&with_nonce(None), &expected(), at(NOW)).is_ok());
    }

    #[test]
    fn the_jti_cache_refuses_a_repeat_for_a_whole_window_then_forgets() {
        let cache = JtiCache::default();
        let leeway = Duration::from_secs(5);
        let proof = |jti: &str| Proof {
            jkt: "k".into(),
            jti: jti.into(),
            iat: at(NOW),
        };
        assert!(cache.insert(&proof("a"), leeway, at(NOW)));
        assert!(!cache.insert(&proof("a"), leeway, at(NOW)));
        let other_key = Proof {
            jkt: "other".into(),
            ..proof("a")
        };
        assert!(cache.insert(&other_key, leeway, at(NOW)), "per key");
        // A window is 70 s: whatever the phase, a jti is still known one window later …
        assert!(!cache.insert(&proof("a"), leeway, at(NOW + 70)));
        // … and forgotten two windows later, when its proof is stale anyway.
        assert!(cache.insert(&proof("a"), leeway, at(NOW + 141)));
    }

    #[test]
    fn a_full_jti_cache_refuses_rather_than_forgets() {
        let cache = JtiCache::default();
        let leeway = Duration::from_secs(5);
        for i in 0..JtiCache::CAPACITY {
            let p = Proof {
                jkt: "k".into(),
                jti: i.to_string(),
                iat: at(NOW),
            };
            assert!(cache.insert(&p, leeway, at(NOW)));
        }
        let one_more = Proof {
            jkt: "k".into(),
            jti: "one more".into(),
            iat: at(NOW),
        };
        assert!(!cache.insert(&one_more, leeway, at(NOW)));
    }
}

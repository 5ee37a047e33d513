//! Fixtures shared by Tessera's fuzz targets: a fixed key set (one checked-in *test* key per
//! algorithm, see `keys/`), a fixed clock, fixed expectations and claims, and the tokens issued
//! with them. Everything is deterministic, so the seed corpus (written by
//! `cargo run --example seeds`) holds tokens these targets accept.
//!
//! The keys are throw-away keys generated for fuzzing only; they protect nothing.

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use tessera_core::access_token::{self, AccessClaims, Expectations};
use tessera_core::keys::{KeySet, LoadedKey, SealedBlob, SigningAlg, StoredKey};
use tessera_core::refresh_token::RefreshKey;
use tessera_core::{InvalidToken, Timestamp};
use uuid::Uuid;

/// The fuzzing clock: 2027-01-15, seconds since the epoch.
pub const NOW_SECS: i64 = 1_800_000_000;
/// Access-token lifetime of the fixtures.
pub const LIFETIME_SECS: u64 = 900;
/// Clock-skew leeway of the fixtures.
pub const LEEWAY_SECS: u64 = 5;
/// Every algorithm Tessera signs with, in the order the fixtures use.
pub const ALGS: [SigningAlg; 4] = [
    SigningAlg::EdDSA,
    SigningAlg::ES256,
    SigningAlg::RS256,
    SigningAlg::HS256,
];

/// PKCS#8 DER private keys (the HMAC secret for HS256), standard base64, one per algorithm.
/// Regenerate with `cargo run --example seeds -- keys` (then rewrite the corpus).
const KEY_MATERIAL: [(SigningAlg, &str); 4] = [
    (SigningAlg::EdDSA, include_str!("../keys/eddsa.b64")),
    (SigningAlg::ES256, include_str!("../keys/es256.b64")),
    (SigningAlg::RS256, include_str!("../keys/rs256.b64")),
    (SigningAlg::HS256, include_str!("../keys/hs256.b64")),
];

/// The fixed time, as a [`Timestamp`].
pub fn now() -> Timestamp {
    at(NOW_SECS)
}

/// A [`Timestamp`] at whole seconds.
pub fn at(secs: i64) -> Timestamp {
    Timestamp::from_millis(secs.saturating_mul(1000))
}

/// The `kid` of the fixture key for `alg`.
pub fn kid(alg: SigningAlg) -> String {
    format!("fuzz-{}", alg.as_str().to_ascii_lowercase())
}

/// Index of `alg` in [`ALGS`].
pub fn alg_index(alg: SigningAlg) -> usize {
    ALGS.iter().position(|a| *a == alg).unwrap_or(0)
}

/// The stored form of the fixture keys. Each activates in the future, one second apart, so every
/// one of them is published (and so verifies) at any instant of the fuzzing window: a key only
/// leaves the JWKS once a newer key has been *active* for a token lifetime.
pub fn stored_keys() -> Vec<StoredKey> {
    KEY_MATERIAL
        .iter()
        .enumerate()
        .map(|(i, (alg, b64))| {
            let material = STANDARD
                .decode(b64.trim())
                .expect("fuzz/keys/*.b64 holds base64");
            let t = at(NOW_SECS + 100_000 + i64::try_from(i).unwrap_or(0));
            StoredKey {
                kid: kid(*alg),
                alg: *alg,
                private: SealedBlob {
                    material,
                    sealed: false,
                },
                created_at: t,
                activate_at: t,
            }
        })
        .collect()
}

/// The fixture key set (every algorithm).
pub static KEYS: LazyLock<KeySet> =
    LazyLock::new(|| KeySet::load(&stored_keys(), None).expect("the fixture keys load"));

/// What a fixture token must say.
pub static EXPECT: LazyLock<Expectations> = LazyLock::new(|| Expectations {
    issuer: "https://tessera.fuzz".into(),
    audience: "https://api.fuzz".into(),
    leeway: Duration::from_secs(LEEWAY_SECS),
    lifetime: Duration::from_secs(LIFETIME_SECS),
});

/// The claims of every fixture token.
pub fn claims() -> AccessClaims {
    AccessClaims {
        iss: EXPECT.issuer.clone(),
        sub: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
        aud: EXPECT.audience.clone(),
        exp: NOW_SECS + i64::try_from(LIFETIME_SECS).unwrap_or(0),
        iat: NOW_SECS,
        nbf: NOW_SECS,
        jti: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002),
        sid: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0003),
        username: "alice".into(),
        client_id: "tessera".into(),
        cnf: None,
    }
}

/// The fixture key for `alg`.
pub fn key(alg: SigningAlg) -> &'static LoadedKey {
    KEYS.keys()
        .iter()
        .find(|k| k.key.alg() == alg)
        .expect("a fixture key per algorithm")
}

/// Issues the fixture claims with the key of `alg`.
pub fn issue(alg: SigningAlg) -> String {
    access_token::issue(&claims(), &key(alg).key).expect("the fixture keys sign")
}

/// Verifies `token` at `now` against the fixture keys, exactly as the issuer does: the keys
/// published at `now` (a token lifetime plus the leeway) are the lookup.
pub fn verify(token: &str, now: Timestamp) -> Result<AccessClaims, InvalidToken> {
    let window = Duration::from_secs(LIFETIME_SECS + LEEWAY_SECS);
    access_token::verify(token, &KEYS.at(now, window), &EXPECT, now)
}

/// One genuine token per algorithm (index as in [`ALGS`]), issued once per process. EdDSA,
/// RS256 and HS256 signatures are deterministic; ES256 ones are not, but every issued ES256
/// token has the same header and claims segments.
pub static TOKENS: LazyLock<Vec<String>> =
    LazyLock::new(|| ALGS.iter().map(|a| issue(*a)).collect());

/// The `header.claims` part of every genuine token of `alg`.
pub fn signed_part(alg: SigningAlg) -> &'static str {
    let token = &TOKENS[alg_index(alg)];
    token.rsplit_once('.').map_or("", |(m, _)| m)
}

/// Public key material of each asymmetric fixture key, as found in the JWKS: the whole JWK as
/// JSON and its raw members (`x`, `y`, `n` decoded). Used as HMAC secrets for key-confusion
/// attempts (RS256/EdDSA/ES256 public key passed off as an HS256 secret).
pub static PUBLIC_MATERIAL: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let jwks = KEYS.jwks(now(), Duration::from_secs(LIFETIME_SECS + LEEWAY_SECS));
    let jwks = serde_json::to_value(&jwks).expect("a JWKS serializes");
    let mut out = Vec::new();
    for jwk in jwks["keys"].as_array().into_iter().flatten() {
        out.push(serde_json::to_vec(jwk).unwrap_or_default());
        for member in ["x", "y", "n"] {
            if let Some(v) = jwk[member].as_str() {
                out.push(v.as_bytes().to_vec());
                out.push(URL_SAFE_NO_PAD.decode(v).unwrap_or_default());
            }
        }
    }
    out
});

/// The refresh-token key of the fixtures (a fixed, meaningless secret).
pub static REFRESH_KEY: LazyLock<RefreshKey> = LazyLock::new(|| RefreshKey::new(&[0x42; 32]));

/// ECDSA P-256 signature malleability: `(r, s)` and `(r, n − s)` both verify; Tessera issues
/// and accepts only the low-S form.
pub mod low_s {
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

    /// Whether a raw `r | s` signature has `s ≤ n/2`.
    pub fn is_low(sig: &[u8]) -> bool {
        sig.len() == 64 && sig[32..] <= HALF_N[..]
    }

    /// `s → n − s` in a raw 64-byte `r | s` signature (other lengths are left alone).
    pub fn flip(sig: &mut [u8]) {
        if sig.len() != 64 {
            return;
        }
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = i16::from(N[i]) - i16::from(sig[32 + i]) - borrow;
            borrow = i16::from(d < 0);
            sig[32 + i] = u8::try_from(d + 256 * borrow).unwrap_or_default();
        }
    }
}

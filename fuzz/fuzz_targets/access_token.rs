//! `access_token::verify` on arbitrary strings.
//!
//! Never panics, and accepts nothing but a genuine token: one whose header and claims segments
//! are exactly those the fixture keys issued, with the very signature they made (EdDSA, RS256
//! and HS256 sign deterministically; an ES256 signature must verify and be low-S, its only
//! accepted form).
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use tessera_core::keys::SigningAlg;
use tessera_fuzz::{ALGS, TOKENS, claims, low_s, now, signed_part};

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(got) = tessera_fuzz::verify(token, now()) else {
        return;
    };
    assert_eq!(got, claims(), "accepted claims that were never issued");
    let genuine = ALGS
        .iter()
        .zip(TOKENS.iter())
        .any(|(alg, issued)| match alg {
            SigningAlg::ES256 => token.rsplit_once('.').is_some_and(|(signed, sig)| {
                signed == signed_part(*alg)
                    && URL_SAFE_NO_PAD
                        .decode(sig)
                        .is_ok_and(|raw| low_s::is_low(&raw))
            }),
            _ => token == issued,
        });
    assert!(
        genuine,
        "accepted a token that is not byte-identical to an issued one: {token:?}"
    );
});

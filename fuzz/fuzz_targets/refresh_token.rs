//! `RefreshKey::parse` on arbitrary strings.
//!
//! Never panics; a token it accepts has exactly one spelling (`encode()` gives back the input),
//! and its successor parses too, one generation later, in the same session.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::refresh_token::{ENCODED_LEN, RefreshKey};
use tessera_fuzz::REFRESH_KEY;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(token) = REFRESH_KEY.parse(text) else {
        return;
    };
    assert_eq!(text.len(), ENCODED_LEN);
    assert_eq!(
        token.encode(),
        text,
        "a parsed refresh token must round-trip"
    );
    let next = REFRESH_KEY.successor(&token);
    let reparsed = REFRESH_KEY
        .parse(&next.encode())
        .expect("a successor is a token of ours");
    assert_eq!(reparsed.session_id(), token.session_id());
    assert_eq!(reparsed.generation(), token.generation().wrapping_add(1));
    // Another deployment's key never accepts it.
    assert!(RefreshKey::new(&[0x43; 32]).parse(text).is_none());
});

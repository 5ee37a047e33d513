//! ECDSA signatures are malleable: `(r, s)` and `(r, n − s)` both verify. Tessera issues only the
//! low-S form and accepts only it, so every ES256 token has exactly one valid signature.

use crate::error::Error;

/// The order of P-256, big-endian.
const N: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
];
/// ⌊n / 2⌋.
const HALF_N: [u8; 32] = [
    0x7F, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0x00, 0x00, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xDE, 0x73, 0x7D, 0x56, 0xD3, 0x8B, 0xCF, 0x42, 0x79, 0xDC, 0xE5, 0x61, 0x7E, 0x31, 0x92, 0xA8,
];

/// Whether a raw `r | s` P-256 signature has `s ≤ n/2` (byte order compares as numbers).
pub(crate) fn is_low(signature: &[u8]) -> bool {
    signature.len() == 64 && signature[32..] <= HALF_N[..]
}

/// Rewrites a raw `r | s` signature into its low-S twin, in place.
pub(crate) fn normalize(sig: &mut [u8]) -> Result<(), Error> {
    if sig.len() != 64 {
        return Err(Error::Signing);
    }
    if !is_low(sig) {
        flip(sig);
    }
    Ok(())
}

/// Replaces `s` by `n − s` in a 64-byte `r | s` signature (big-endian subtraction).
pub(crate) fn flip(sig: &mut [u8]) {
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(N[i]) - i16::from(sig[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        // `d + 256·borrow` is in 0..=255 by construction.
        sig[32 + i] = u8::try_from(d + 256 * borrow).unwrap_or_default();
    }
}

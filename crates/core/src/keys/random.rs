//! Random bytes for keys, secrets and tokens, from the operating system's CSPRNG.

use crate::error::Error;

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out)
        .map_err(|_| Error::Internal("the OS random generator failed".into()))?;
    Ok(out)
}

//! Password hashing with argon2id (OWASP's m = 19 MiB, t = 2, p = 1).
//!
//! Hashing takes ~12 ms of CPU, so callers run these functions off the async executor.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::Error;

/// Argon2id with OWASP's recommended minimum (m = 19456 KiB, t = 2, p = 1).
fn argon2() -> Argon2<'static> {
    // These constants are within argon2's documented bounds, so `new` cannot fail.
    let params = Params::new(19_456, 2, 1, None).expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` with a fresh random salt into a PHC string (`$argon2id$v=19$…`).
pub fn hash_password(password: &[u8]) -> Result<String, Error> {
    argon2()
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("argon2 hash failed: {e}")))
}

/// True when `password` matches the PHC string `phc`. A malformed `phc` never matches.
pub fn verify_password(password: &[u8], phc: &str) -> bool {
    // The parameters and salt come from `phc` itself, so hashes made with other settings still verify.
    argon2().verify_password(password, phc).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_own_password_only() {
        let phc = hash_password(b"correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password(b"correct horse battery", &phc));
        assert!(!verify_password(b"correct horse batterY", &phc));
        assert!(!verify_password(b"correct horse battery", "not a hash"));
    }

    #[test]
    fn the_same_password_gets_a_different_salt_each_time() {
        assert_ne!(
            hash_password(b"password1").unwrap(),
            hash_password(b"password1").unwrap()
        );
    }
}

//! Password hashing with argon2id (OWASP's m = 19 MiB, t = 2, p = 1).
//!
//! Hashing takes ~12 ms of CPU, so callers run these functions off the async executor.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::error::Error;

/// Argon2id with OWASP's recommended minimum (m = 19456 KiB, t = 2, p = 1).
fn argon2() -> Argon2<'static> {
    // These constants are within argon2's documented bounds, so `new` cannot fail.
    let params = Params::new(19_456, 2, 1, None).expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Working memory for one argon2 run (19 MiB with the parameters above), kept and reused.
///
/// argon2 allocates and frees its 19 MiB on every run. glibc then raises its mmap threshold
/// above that size, so the next runs take the memory from per-thread arenas and it is never
/// given back: a server whose hashing ran on a dozen blocking threads kept ~370 MiB resident
/// after 64 logins (BENCHMARKS.md). The service keeps one `Memory` per concurrent hash instead.
#[derive(Default)]
pub struct Memory(Vec<Block>);

impl Memory {
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        self.0.resize(params.block_count(), Block::new());
        &mut self.0
    }
}

/// Hashes `password` with a fresh random salt into a PHC string (`$argon2id$v=19$…`).
#[cfg(test)]
pub fn hash_password(password: &[u8]) -> Result<String, Error> {
    hash_password_with(password, &mut Memory::default())
}

/// [`hash_password`] in `memory`.
pub fn hash_password_with(password: &[u8], memory: &mut Memory) -> Result<String, Error> {
    let failed =
        |e: &dyn std::fmt::Display| Error::Internal(format!("argon2 hash failed: {e}").into());
    let argon = argon2();
    let params = argon.params().clone();
    let salt = crate::keys::random_bytes::<16>()?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(password, &salt, &mut out, memory.blocks(&params))
        .map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// True when `password` matches the PHC string `phc`. A malformed `phc` never matches.
#[cfg(test)]
pub fn verify_password(password: &[u8], phc: &str) -> bool {
    verify_password_with(password, phc, &mut Memory::default())
}

/// [`verify_password`] in `memory`. The algorithm, version, parameters and salt come from `phc`
/// itself, so hashes made with other settings still verify (in memory of their own size).
pub fn verify_password_with(password: &[u8], phc: &str, memory: &mut Memory) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    argon
        .hash_password_into_with_memory(password, salt.as_ref(), &mut out, memory.blocks(&params))
        .is_ok()
        // `Output`'s equality is constant-time.
        && Output::new(&out).is_ok_and(|computed| computed == *expected)
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
    fn reused_memory_gives_the_same_answers_as_argon2s_own_functions() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let mut memory = Memory::default();
        let ours = hash_password_with(b"correct horse battery", &mut memory).unwrap();
        assert!(
            argon2()
                .verify_password(b"correct horse battery", ours.as_str())
                .is_ok()
        );
        let theirs = argon2()
            .hash_password(b"correct horse battery")
            .unwrap()
            .to_string();
        assert!(verify_password_with(
            b"correct horse battery",
            &theirs,
            &mut memory
        ));
        assert!(!verify_password_with(
            b"correct horse batteRy",
            &theirs,
            &mut memory
        ));
        // A hash made with other (cheaper) parameters verifies in memory of its own size.
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw12345678")
        .unwrap()
        .to_string();
        assert!(verify_password_with(b"pw12345678", &small, &mut memory));
        assert!(verify_password_with(
            b"correct horse battery",
            &ours,
            &mut memory
        ));
    }

    #[test]
    fn the_same_password_gets_a_different_salt_each_time() {
        assert_ne!(
            hash_password(b"password1").unwrap(),
            hash_password(b"password1").unwrap()
        );
    }
}

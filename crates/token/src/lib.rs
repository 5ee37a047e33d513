//! What a Tessera issuer and the services that trust its tokens share: access tokens (issued and
//! strictly verified), keys and JWK Sets, time, and the revocation feed's wire types.
//!
//! It holds no private-key storage, no password hashing, no database and no HTTP: a resource
//! service links this crate (usually through `tessera-verifier`) and nothing of the server.
//! The issuer side (`tessera-core`) adds key generation, sealing and rotation on top.
//!
//! Start reading at [`access_token::verify`] (the strict checks, one implementation for the
//! issuer and every verifier) and [`PublicKeySet`] (an issuer's published keys).
//!
//! Layout: [`algorithm`] (the JWS algorithms), `crypto` (signing and verification with keys
//! parsed once), `jwk` (JWKs written and read), [`keys`] (signing and public keys),
//! [`access_token`], [`dpop`] (proofs of possession), [`revocations`], [`time`], [`error`].

pub mod access_token;
pub mod algorithm;
mod crypto;
pub mod dpop;
#[cfg(any(test, feature = "test-support"))]
pub mod dpop_testing;
pub mod error;
mod jwk;
pub mod keys;
pub mod revocations;
pub mod time;

pub use access_token::{AccessClaims, Expectations, KeyLookup, VerifyingKey};
pub use algorithm::SigningAlg;
pub use error::{Error, InvalidToken};
pub use keys::{PublicKey, PublicKeySet, SigningKey};
pub use time::{Clock, ManualClock, SystemClock, Timestamp, format_duration, parse_duration};

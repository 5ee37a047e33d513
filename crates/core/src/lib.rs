//! Tessera's core: the session rules, refresh and access tokens, signing keys, password hashing,
//! login throttling, and the [`Store`] trait that storage backends implement.
//!
//! It is not an HTTP server and holds no SQL: `tessera-http` puts [`Tessera`] behind axum
//! routes and `tessera-store-*` implement [`Store`]. Time always comes from a [`Clock`] handed
//! in, so every rule can be tested without sleeping.
//!
//! Start reading at [`rules::decide`] (the refresh rules) and [`Tessera`] (the service that
//! applies them). A service that only verifies access tokens needs just
//! [`access_token::verify_public`] and a [`keys::PublicKeySet`] read from the issuer's JWKS
//! (the `tessera-verifier` crate does the fetching and caching).
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn tessera_core::Store>) -> Result<(), tessera_core::Error> {
//! use std::sync::Arc;
//! use tessera_core::{ClientInfo, Settings, SystemClock, Tessera};
//!
//! let tessera = Tessera::open(store, Settings::new("https://auth.example"), None, Arc::new(SystemClock)).await?;
//! tessera.register("alice", "correct horse battery".into()).await?;
//! let issued = tessera.login("alice", "correct horse battery".into(), &ClientInfo::default()).await?;
//! let renewed = tessera.refresh(Some(&issued.refresh_token), &ClientInfo::default()).await?;
//! assert_eq!(renewed.session_id, issued.session_id);
//! # Ok(()) }
//! ```

pub mod access_token;
#[cfg(feature = "store-contract")]
pub mod contract;
mod domain;
mod error;
pub mod keys;
mod password;
pub mod refresh_token;
pub mod rules;
mod service;
mod store;
pub mod throttle;
mod time;

pub use access_token::AccessClaims;
pub use domain::{Password, Username};
pub use error::{Error, RefreshRejection, StoreError};
pub use keys::{KEY_RELOAD_INTERVAL, Kek, SealedBlob, SigningAlg, StoredKey};
pub use rules::Lifetimes;
pub use service::{ClientInfo, Issued, KeyReport, Revocations, SessionInfo, Settings, Tessera};
pub use store::{CurrentRotation, SessionRecord, Store, User};
pub use time::{Clock, ManualClock, SystemClock, Timestamp, format_duration, parse_duration};

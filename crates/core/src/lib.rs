//! Tessera's core: the session rules, refresh and access tokens, signing keys, password hashing,
//! login throttling, and the [`Store`] trait that storage backends implement.
//!
//! It is not an HTTP server and holds no SQL: `tessera-http` puts [`Tessera`] behind axum
//! routes and `tessera-store-*` implement [`Store`]. Time always comes from a [`Clock`] handed
//! in, so every rule can be tested without sleeping.
//!
//! Start reading at [`rules::decide`] (the refresh rules) and [`Tessera`] (the service that
//! applies them; one file per capability under `service/`). A service that only verifies access
//! tokens needs none of this crate: `tessera-token` has the verification and the public keys,
//! and `tessera-verifier` does the fetching and caching.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn tessera_core::Store>) -> Result<(), tessera_core::Error> {
//! use std::sync::Arc;
//! use tessera_core::{ClientInfo, Settings, SystemClock, Tessera};
//!
//! let tessera = Tessera::open(store, Settings::new("https://auth.example"), None, Arc::new(SystemClock)).await?;
//! tessera.register("alice", "correct horse battery".into(), &ClientInfo::default()).await?;
//! let issued = tessera.login("alice", "correct horse battery".into(), &ClientInfo::default()).await?;
//! let renewed = tessera.refresh(Some(&issued.refresh_token), &ClientInfo::default()).await?;
//! assert_eq!(renewed.session_id, issued.session_id);
//! # Ok(()) }
//! ```

/// Access tokens: issued here, verified here and by every service (`tessera-token`).
pub use tessera_token::access_token;
#[cfg(feature = "store-contract")]
pub mod contract;
pub mod device_token;
mod domain;
mod error;
pub mod events;
mod hasher;
pub mod keys;
mod password;
pub mod refresh_token;
pub mod reset_token;
pub mod rules;
mod service;
mod settings;
mod store;
pub mod throttle;
/// Time as the core sees it (`tessera-token`'s): a millisecond [`Timestamp`] from a [`Clock`].
pub use tessera_token::time;

pub use access_token::AccessClaims;
pub use domain::{Password, RevokeReason, Username, username_key};
pub use error::{Error, ErrorChain, RefreshRejection, StoreError};
pub use hasher::Hasher;
pub use keys::{KEY_RELOAD_INTERVAL, Kek, KeyReport, KeyRing, SealedBlob, SigningAlg, StoredKey};
pub use rules::{CurrentRotation, Lifetimes, LiveBounds};
pub use service::{
    ClientCredentials, ClientInfo, ClientSecret, DpopRequest, Introspection, Issued, PasswordReset,
    Revocations, SessionInfo, Tessera,
};
pub use settings::{DpopPolicy, Settings};
pub use store::{
    BUILTIN_CLIENT_ID, ClientKind, ClientRecord, EventBacklog, PoolStatus, SessionRecord, Store,
    User, UserSummary, revocation_page_start,
};
pub use tessera_token::dpop;
pub use tessera_token::{
    Clock, InvalidToken, ManualClock, SystemClock, Timestamp, format_duration, parse_duration,
};
pub use throttle::{CountFailure, Counted, Counter, FailureState, Scope};

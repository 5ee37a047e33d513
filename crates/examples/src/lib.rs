//! Runnable examples of Tessera as a library; the crate itself is empty.
//!
//! - `examples/host_app.rs`: an axum app that embeds Tessera (SQLite) under `/auth`, publishes
//!   the JWKS, and protects its own `/api/notes` with the `Authenticated` and `LiveSession`
//!   extractors. `cargo run --example host_app`
//! - `examples/notes_api.rs`: a separate service that trusts Tessera-issued tokens through
//!   `tessera-verifier` (JWKS, strict checks, revocations polled). Start an issuer first, then
//!   `TESSERA_ISSUER=http://127.0.0.1:8080 cargo run --example notes_api`
//!
//! Each file holds its tests (`cargo test -p tessera-examples`).

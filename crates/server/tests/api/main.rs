//! Black-box tests of the whole HTTP API: a real server on a random port, a fresh database per
//! test (SQLite, and PostgreSQL where it is reachable), a clock the tests move by hand.
//! One binary with modules, since every integration-test file links on its own.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

mod helpers;

mod accounts;
mod admin;
mod attacks;
mod cli;
mod dpop;
mod events;
mod faults;
mod hardening;
mod instances;
mod keys;
mod misc;
mod oauth;
mod passwords;
mod refresh;
mod revocations;
mod sessions;
mod throttle;

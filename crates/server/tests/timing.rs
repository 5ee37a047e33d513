//! Login timing: whether a username exists must not show in how long a failed login takes.
//!
//! A binary of its own (unlike the rest, which share `tests/api`), because cargo runs test
//! binaries one after another: nothing else of this crate competes for the two cores while it
//! measures, so the comparison is of the code, not of the neighbours' load.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use helpers::*;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Whether a username exists must not show in how long a failed login takes. Each sample is a
/// distinct user and address, so throttling never interferes; the two kinds alternate, so load
/// on the machine hits both alike.
async fn unknown_users_and_wrong_passwords_take_the_same_time(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |a| a.trusted_proxies = Some("127.0.0.1".into())).await
    else {
        return;
    };
    const SAMPLES: usize = 100;
    // Registrations spend their address's budget too: each from an address of its own.
    for i in 0..SAMPLES {
        let registered = app
            .post_json_via(
                &format!("10.250.{i}.1"),
                "/auth/register",
                &serde_json::json!({"username": format!("known{i}"), "password": PASSWORD}),
            )
            .await;
        assert_eq!(registered.status(), StatusCode::CREATED);
    }
    let server = &app;
    let attempt = move |user: String, i: usize| async move {
        let forwarded_for = format!("10.{}.{}.1", i / 200, i % 200);
        let start = Instant::now();
        let status = server
            .login_via(&forwarded_for, &user, "wrong password")
            .await
            .status();
        let elapsed = start.elapsed();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        elapsed
    };
    // The two kinds alternate, and so does which goes first, so load elsewhere on the machine
    // and any order effect fall on both alike.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..SAMPLES {
        if i % 2 == 0 {
            known.push(attempt(format!("known{i}"), 2 * i).await);
            unknown.push(attempt(format!("ghost{i}"), 2 * i + 1).await);
        } else {
            unknown.push(attempt(format!("ghost{i}"), 2 * i + 1).await);
            known.push(attempt(format!("known{i}"), 2 * i).await);
        }
    }
    let (k, u) = (
        median(known).as_secs_f64() * 1e3,
        median(unknown).as_secs_f64() * 1e3,
    );
    assert!(
        k.max(u) / k.min(u) <= 1.10,
        "median wrong-password {k:.2} ms vs unknown-user {u:.2} ms"
    );
    app.cleanup().await;
}

on_both_backends!(unknown_users_and_wrong_passwords_take_the_same_time);

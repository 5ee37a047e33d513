//! Password change (`POST /auth/password`) and password reset (`POST /auth/password-reset`,
//! `POST /auth/password-reset/request`).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn changing_the_password_ends_every_other_session_and_keeps_this_one(backend: Backend) {
    let Some(app) = spawn_admin_app(backend).await else {
        return;
    };
    let here = app.signed_in("alice").await;
    let (laptop, phone) = (
        app.another_device("alice").await,
        app.another_device("alice").await,
    );
    let bob = app.signed_in("bob").await;
    let r = app
        .change_password(&here.access, PASSWORD, NEW_PASSWORD)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"revoked_sessions": 2})
    );
    assert_ended_and_in_feed(&app, &[&laptop, &phone], Some("revoked")).await;
    // This session and other users' go on.
    assert_eq!(
        app.get_with("/auth/me", &here.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.refresh_with_cookie(&here.refresh).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.refresh_with_cookie(&bob.refresh).await.status(),
        StatusCode::OK
    );
    let record = app
        .tessera
        .store()
        .session(laptop.sid.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.revoked_reason,
        Some(tessera_core::RevokeReason::PasswordChanged)
    );
    // The new password logs in; the old one no longer does.
    assert_eq!(
        app.login("alice", NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
    let (status, body) = error_of(app.login("alice", PASSWORD).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
    );
    app.cleanup().await;
}

async fn a_wrong_current_password_is_refused_and_counts_as_a_failed_login(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    // Five failures are free; the sixth starts a hold, for logins as for changes.
    for i in 0..6 {
        let (status, body) = error_of(
            app.change_password(&s.access, "not the password", NEW_PASSWORD)
                .await,
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_credentials")),
            "attempt {i}"
        );
    }
    let (status, _) = error_of(app.login("alice", PASSWORD).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = error_of(app.change_password(&s.access, PASSWORD, NEW_PASSWORD).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // The session survived and the password is unchanged; after the hold, a change works.
    assert_eq!(
        app.get_with("/auth/me", &s.access).await.status(),
        StatusCode::OK
    );
    app.advance(Duration::from_secs(2));
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
    let r = app.change_password(&s.access, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    app.cleanup().await;
}

async fn a_password_change_refuses_bad_input_and_ended_sessions(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let send = |body: String, access: Option<String>| {
        let mut request = app
            .http
            .post(app.url("/auth/password"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(access) = access {
            request = request.bearer_auth(access);
        }
        request.send()
    };
    let bad_bodies = [
        "{not json".to_owned(),
        "[]".to_owned(),
        json!({"current_password": PASSWORD}).to_string(),
        json!({"new_password": NEW_PASSWORD}).to_string(),
        json!({"current_password": PASSWORD, "new_password": "short"}).to_string(),
        json!({"current_password": PASSWORD, "new_password": "x".repeat(1025)}).to_string(),
        json!({"current_password": "x".repeat(1025), "new_password": NEW_PASSWORD}).to_string(),
        json!({"current_password": PASSWORD, "new_password": 12345678}).to_string(),
    ];
    for body in bad_bodies {
        let (status, err) =
            error_of(send(body.clone(), Some(s.access.clone())).await.unwrap()).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{body}"
        );
    }
    let good = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}).to_string();
    for access in [None, Some("not-a-jwt".to_owned())] {
        let (status, err) = error_of(send(good.clone(), access).await.unwrap()).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_token"))
        );
    }
    // Nothing above changed the password.
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
    // A session that has ended cannot change the password.
    let ended = app.another_device("alice").await;
    assert_eq!(
        app.logout_with_cookie(&ended.refresh).await.status(),
        StatusCode::NO_CONTENT
    );
    let (status, err) = error_of(
        app.change_password(&ended.access, PASSWORD, NEW_PASSWORD)
            .await,
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
    // The control: the live session can.
    assert_eq!(
        app.change_password(&s.access, PASSWORD, NEW_PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    app.cleanup().await;
}

/// Two sessions of one user change the password at once. The changes are serialised per user:
/// the first to commit revokes the other's session, so the other is answered `401
/// invalid_token` and its password is not set.
async fn of_two_concurrent_password_changes_one_wins_and_the_other_session_ends(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for round in 0..3 {
        let name = format!("alice{round}");
        let a = app.signed_in(&name).await;
        let b = app.another_device(&name).await;
        let (ra, rb) = tokio::join!(
            app.change_password(&a.access, PASSWORD, "password of device a"),
            app.change_password(&b.access, PASSWORD, "password of device b"),
        );
        let statuses = [ra.status(), rb.status()];
        let winner = match statuses {
            [StatusCode::OK, StatusCode::UNAUTHORIZED] => ("a", &a, &b, rb),
            [StatusCode::UNAUTHORIZED, StatusCode::OK] => ("b", &b, &a, ra),
            other => panic!("one change wins, the other is refused: {other:?}"),
        };
        let (which, won, lost, refusal) = winner;
        let (_, err) = error_of(refusal).await;
        assert_eq!(err["error"], "invalid_token");
        assert_eq!(
            app.get_with("/auth/me", &won.access).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            app.get_with("/auth/me", &lost.access).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let other = if which == "a" { "b" } else { "a" };
        assert_eq!(
            app.login(&name, &format!("password of device {which}"))
                .await
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            app.login(&name, &format!("password of device {other}"))
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    app.cleanup().await;
}

async fn a_reset_token_sets_the_password_once_and_ends_every_session(backend: Backend) {
    let Some(app) = spawn_admin_app(backend).await else {
        return;
    };
    let (a, b) = (
        app.signed_in("alice").await,
        app.another_device("alice").await,
    );
    let bob = app.signed_in("bob").await;
    let token = app.reset_token("alice").await;
    let r = app.reset_password(&token, NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_ended_and_in_feed(&app, &[&a, &b], Some("revoked")).await;
    assert_eq!(
        app.refresh_with_cookie(&bob.refresh).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login("alice", NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login("alice", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Single use.
    let (status, body) = error_of(app.reset_password(&token, "yet another password").await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_reset_token"))
    );
    assert_eq!(
        app.login("alice", NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
    app.cleanup().await;
}

async fn used_expired_voided_unknown_and_malformed_reset_tokens_are_refused(backend: Backend) {
    let Some(app) = spawn_admin_app(backend).await else {
        return;
    };
    app.signed_in("alice").await;
    let voided = app.reset_token("alice").await;
    let current = app.reset_token("alice").await;
    let unknown = "A".repeat(43);
    let mut refused = vec![
        ("voided by a newer one", voided),
        ("unknown", unknown),
        ("empty", String::new()),
        ("too short", current[..42].to_owned()),
        ("too long", format!("{current}A")),
        ("not base64url", format!("{}+", &current[..42])),
        ("10 KB", "x".repeat(10 * 1024)),
    ];
    for (why, token) in refused.drain(..) {
        let (status, body) = error_of(app.reset_password(&token, NEW_PASSWORD).await).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_reset_token")),
            "{why}"
        );
    }
    // Bad input is `invalid_request`, and leaves the token usable.
    for body in [
        json!({"token": current}),
        json!({"new_password": NEW_PASSWORD}),
        json!({"token": current, "new_password": "short"}),
        json!({"token": current, "new_password": "x".repeat(1025)}),
        json!({"token": 42, "new_password": NEW_PASSWORD}),
    ] {
        let (status, err) = error_of(app.post_json("/auth/password-reset", &body).await).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{body}"
        );
    }
    let malformed = app
        .http
        .post(app.url("/auth/password-reset"))
        .header("content-type", "application/json")
        .body("{\"token\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(malformed).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
    // Expired: one hour by default.
    app.advance(Duration::from_secs(3600));
    let (status, body) = error_of(app.reset_password(&current, NEW_PASSWORD).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_reset_token"))
    );
    // The control: a fresh token works.
    let fresh = app.reset_token("alice").await;
    assert_eq!(
        app.reset_password(&fresh, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    app.cleanup().await;
}

async fn a_reset_request_answers_202_whoever_is_named_and_voids_older_tokens(backend: Backend) {
    let Some(app) = spawn_admin_app(backend).await else {
        return;
    };
    app.signed_in("alice").await;
    let older = app.reset_token("alice").await;
    for name in ["alice", "ALICE", "nobody-by-this-name"] {
        let r = app
            .post_json("/auth/password-reset/request", &json!({"username": name}))
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{name}");
        assert_eq!(r.text().await.unwrap(), "");
    }
    // The request made a new token for alice (to be delivered by the application), which voids
    // the one made before it.
    let (status, body) = error_of(app.reset_password(&older, NEW_PASSWORD).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_reset_token"))
    );
    for body in [
        json!({}),
        json!({"username": "x".repeat(65)}),
        json!({"username": "a b"}),
        json!({"username": 7}),
    ] {
        let (status, err) =
            error_of(app.post_json("/auth/password-reset/request", &body).await).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{body}"
        );
    }
    app.cleanup().await;
}

/// A reset while the user is logging in with the old password: the login either finished
/// before (and its session is revoked by the reset) or finds the password changed (`401`). No
/// session opened with the old password outlives the reset.
async fn a_reset_racing_logins_leaves_no_session_of_the_old_password(backend: Backend) {
    let Some(app) = spawn_admin_app(backend).await else {
        return;
    };
    app.signed_in("alice").await;
    let token = app.reset_token("alice").await;
    let logins: Vec<_> = (0..6)
        .map(|_| {
            let request = app
                .http
                .post(app.url("/auth/login"))
                .json(&json!({"username": "alice", "password": PASSWORD}));
            tokio::spawn(async move { request.send().await.unwrap() })
        })
        .collect();
    let reset = app.reset_password(&token, NEW_PASSWORD).await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    for login in logins {
        let r = login.await.unwrap();
        assert!(
            [StatusCode::OK, StatusCode::UNAUTHORIZED].contains(&r.status()),
            "{}",
            r.status()
        );
    }
    let id = app.user_id("alice").await;
    let r = app
        .admin(reqwest::Method::GET, &format!("/users/{id}/sessions"))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["sessions"],
        json!([]),
        "every session of the old password ended"
    );
    assert_eq!(
        app.login("alice", NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
    app.cleanup().await;
}

on_both_backends!(
    changing_the_password_ends_every_other_session_and_keeps_this_one,
    a_wrong_current_password_is_refused_and_counts_as_a_failed_login,
    a_password_change_refuses_bad_input_and_ended_sessions,
    of_two_concurrent_password_changes_one_wins_and_the_other_session_ends,
    a_reset_token_sets_the_password_once_and_ends_every_session,
    used_expired_voided_unknown_and_malformed_reset_tokens_are_refused,
    a_reset_request_answers_202_whoever_is_named_and_voids_older_tokens,
    a_reset_racing_logins_leaves_no_session_of_the_old_password,
);

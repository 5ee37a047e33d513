//! Bearer endpoints: me, sessions, revocation, logout and logout everywhere.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn me_describes_the_caller(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let r = app.get_with("/auth/me", &s.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["username"], "alice");
    assert_eq!(me["session_id"], s.sid.as_str());
    assert_eq!(me["user_id"], jwt_part(&s.access, 1)["sub"]);
    app.cleanup().await;
}

async fn bearer_errors_follow_rfc_6750(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let none = app.http.get(app.url("/auth/me")).send().await.unwrap();
    assert_eq!(
        none.headers()["www-authenticate"],
        "Bearer",
        "a bare challenge when no token was sent"
    );
    let (status, body) = error_of(none).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );

    let mut tampered = s.access.clone();
    tampered.pop();
    tampered.push(if s.access.ends_with('A') { 'B' } else { 'A' });
    for bad in ["garbage", "a.b.c", tampered.as_str()] {
        let r = app.get_with("/auth/me", bad).await;
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{challenge}"
        );
        let (status, body) = error_of(r).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_token"))
        );
    }
    // Expired: 15 minutes plus the 5 s leeway.
    app.advance(Duration::from_secs(906));
    let r = app.get_with("/auth/me", &s.access).await;
    assert_eq!(error_of(r).await.1["error"], "invalid_token");
    app.cleanup().await;
}

async fn the_session_list_marks_this_device(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let laptop = app.signed_in("alice").await;
    let phone = app.another_device("alice").await;
    app.signed_in("bob").await;
    let r = app.get_with("/auth/sessions", &phone.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let list = body["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 2, "only alice's sessions: {body}");
    let current: Vec<&Value> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], phone.sid.as_str());
    assert!(list.iter().any(|s| s["id"] == laptop.sid.as_str()));
    for s in list {
        for field in ["created_at", "last_used_at", "expires_at"] {
            assert!(
                s[field]
                    .as_str()
                    .is_some_and(|t| t.ends_with('Z') && t.contains('T')),
                "{field}: {s}"
            );
        }
        assert_eq!(s["ip"], "127.0.0.1");
        assert!(s["user_agent"].is_string() || s["user_agent"].is_null());
    }
    app.cleanup().await;
}

async fn revoking_a_session_ends_it_and_only_it(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let laptop = app.signed_in("alice").await;
    let phone = app.another_device("alice").await;
    let r = app.revoke_session(&laptop.sid, &phone.access).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, body) = error_of(app.refresh_with_cookie(&laptop.refresh).await).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("revoked"))
    );
    assert_eq!(
        app.get_with("/auth/me", &laptop.access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get_with("/auth/me", &phone.access).await.status(),
        StatusCode::OK
    );
    let again = app.revoke_session(&laptop.sid, &phone.access).await;
    assert_eq!(error_of(again).await.0, StatusCode::NOT_FOUND);
    app.cleanup().await;
}

async fn another_users_or_an_unknown_session_is_not_found(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let alice = app.signed_in("alice").await;
    let bob = app.signed_in("bob").await;
    for id in [
        alice.sid.clone(),
        uuid::Uuid::new_v4().to_string(),
        "not-a-uuid".into(),
        // Not UTF-8 once decoded: axum's own answer was a plain-text 400.
        "%FF".into(),
    ] {
        let r = app.revoke_session(&id, &bob.access).await;
        let (status, body) = error_of(r).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{id}"
        );
    }
    assert_eq!(
        app.refresh_with_cookie(&alice.refresh).await.status(),
        StatusCode::OK,
        "alice's session survived"
    );
    app.cleanup().await;
}

async fn logout_ends_the_session_and_clears_the_cookie(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let r = app.logout_with_cookie(&s.refresh).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (value, attrs) = set_cookie(&r).expect("cleared cookie");
    assert!(
        value.is_empty() && attrs.contains("Max-Age=0") && attrs.contains("Path=/auth"),
        "{attrs}"
    );
    assert_eq!(
        app.get_with("/auth/me", &s.access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.cleanup().await;
}

async fn logout_is_idempotent(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let none = app.http.post(app.url("/auth/logout")).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::NO_CONTENT);
    let unknown = app
        .post_json("/auth/logout", &json!({"refresh_token": "nonsense"}))
        .await;
    assert_eq!(unknown.status(), StatusCode::NO_CONTENT);
    for _ in 0..2 {
        let r = app
            .post_json("/auth/logout", &json!({"refresh_token": s.refresh}))
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(
        error_of(app.refresh_with_cookie(&s.refresh).await).await.1["reason"],
        "revoked"
    );
    app.cleanup().await;
}

async fn logout_everywhere_ends_every_session_of_the_user(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = app.signed_in("alice").await;
    let b = app.another_device("alice").await;
    let bob = app.signed_in("bob").await;
    let r = app
        .http
        .post(app.url("/auth/logout-all"))
        .bearer_auth(&a.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for s in [&a, &b] {
        assert_eq!(
            error_of(app.refresh_with_cookie(&s.refresh).await).await.1["reason"],
            "revoked"
        );
        assert_eq!(
            app.get_with("/auth/me", &s.access).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.get_with("/auth/me", &bob.access).await.status(),
        StatusCode::OK
    );
    let no_bearer = app
        .http
        .post(app.url("/auth/logout-all"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(no_bearer).await.0, StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

on_both_backends!(
    me_describes_the_caller,
    bearer_errors_follow_rfc_6750,
    the_session_list_marks_this_device,
    revoking_a_session_ends_it_and_only_it,
    another_users_or_an_unknown_session_is_not_found,
    logout_ends_the_session_and_clears_the_cookie,
    logout_is_idempotent,
    logout_everywhere_ends_every_session_of_the_user,
);

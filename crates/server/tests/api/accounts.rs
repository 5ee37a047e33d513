//! Registration and login.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn registering_returns_the_new_user(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let r = app.register("Alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["username"], "Alice");
    assert!(uuid::Uuid::parse_str(body["user_id"].as_str().unwrap()).is_ok());
    app.cleanup().await;
}

async fn usernames_are_unique_regardless_of_case(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    assert_eq!(
        app.register("alice", PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let (status, body) = error_of(app.register("ALICE", PASSWORD).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("username_taken"))
    );
    app.cleanup().await;
}

async fn registration_input_rules_are_enforced(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let long_password = "p".repeat(1025);
    for (body, why) in [
        (
            json!({"username": "ab", "password": PASSWORD}),
            "username too short",
        ),
        (
            json!({"username": "x".repeat(65), "password": PASSWORD}),
            "username too long",
        ),
        (
            json!({"username": "alice ", "password": PASSWORD}),
            "trailing space",
        ),
        (
            json!({"username": "al\u{0}ice", "password": PASSWORD}),
            "NUL byte",
        ),
        (
            json!({"username": "аlice", "password": PASSWORD}),
            "Cyrillic look-alike",
        ),
        (
            json!({"username": "alice", "password": "short"}),
            "password too short",
        ),
        (
            json!({"username": "alice", "password": long_password}),
            "password too long",
        ),
        (json!({"username": "alice"}), "missing password"),
        (
            json!({"username": 42, "password": PASSWORD}),
            "username not a string",
        ),
    ] {
        let (status, body) = error_of(app.post_json("/auth/register", &body).await).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{why}"
        );
    }
    let r = app
        .http
        .post(app.url("/auth/register"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::BAD_REQUEST);
    let r = app
        .http
        .post(app.url("/auth/register"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=alice&password=correct+horse")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::BAD_REQUEST);
    // Nothing was created by any of these.
    assert_eq!(
        app.register("alice", PASSWORD).await.status(),
        StatusCode::CREATED
    );
    app.cleanup().await;
}

async fn bodies_over_16_kib_are_refused_with_413(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let huge = json!({"username": "alice", "password": "x".repeat(10 * 1024 * 1024)});
    let (status, body) = error_of(app.post_json("/auth/login", &huge).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("invalid_request"))
    );
    let just_over = json!({"username": "alice", "password": "x".repeat(16 * 1024)});
    assert_eq!(
        app.post_json("/auth/register", &just_over).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    app.cleanup().await;
}

async fn closed_registration_refuses_sign_ups(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |a| a.registration = Some("closed".into())).await
    else {
        return;
    };
    let (status, body) = error_of(app.register("alice", PASSWORD).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("registration_closed"))
    );
    app.tessera
        .create_user("alice", PASSWORD.into())
        .await
        .unwrap();
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
    app.cleanup().await;
}

async fn login_sets_the_refresh_cookie_and_returns_an_access_token(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.register("alice", PASSWORD).await;
    let r = app.login("alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let (value, attrs) = set_cookie(&r).expect("cookie");
    assert_eq!(value.len(), 96, "256+ bits of token, base64url");
    let attrs: Vec<&str> = attrs.split(';').map(str::trim).collect();
    for want in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/auth",
        "Max-Age=604800",
    ] {
        assert!(attrs.contains(&want), "{want} in {attrs:?}");
    }
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(
        body.get("refresh_token").is_none(),
        "cookie delivery never puts the token in the body"
    );
    let header = jwt_part(body["access_token"].as_str().unwrap(), 0);
    assert_eq!(
        (header["typ"].as_str(), header["alg"].as_str()),
        (Some("at+jwt"), Some("EdDSA"))
    );
    let claims = jwt_part(body["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["iss"].as_str(), Some(app.base.as_str()));
    assert_eq!(claims["aud"].as_str(), Some(app.base.as_str()));
    assert_eq!(claims["username"], "alice");
    assert_eq!(claims["sid"], body["session_id"]);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    for claim in ["sub", "nbf", "jti"] {
        assert!(!claims[claim].is_null(), "{claim}");
    }
    app.cleanup().await;
}

async fn login_can_deliver_the_refresh_token_in_the_body(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.register("alice", PASSWORD).await;
    let r = app
        .post_json(
            "/auth/login",
            &json!({"username": "alice", "password": PASSWORD, "delivery": "body"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(set_cookie(&r).is_none(), "no cookie with body delivery");
    let body: Value = r.json().await.unwrap();
    let token = body["refresh_token"]
        .as_str()
        .expect("refresh_token in the body");
    let renewed = app.refresh_with_body(token).await;
    assert_eq!(renewed.status(), StatusCode::OK);
    let renewed: Value = renewed.json().await.unwrap();
    assert!(
        renewed["refresh_token"]
            .as_str()
            .is_some_and(|t| t != token),
        "a body refresh answers with the successor"
    );
    let bad = app
        .post_json(
            "/auth/login",
            &json!({"username": "alice", "password": PASSWORD, "delivery": "pigeon"}),
        )
        .await;
    assert_eq!(error_of(bad).await.0, StatusCode::BAD_REQUEST);
    app.cleanup().await;
}

async fn insecure_cookie_setting_drops_the_prefix_and_the_secure_flag(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |a| a.cookie_secure = Some("false".into())).await
    else {
        return;
    };
    app.register("alice", PASSWORD).await;
    let r = app.login("alice", PASSWORD).await;
    let raw = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(raw.starts_with("tessera_refresh="), "{raw}");
    assert!(!raw.contains("Secure"), "{raw}");
    assert!(
        raw.contains("HttpOnly") && raw.contains("SameSite=Strict") && raw.contains("Path=/auth")
    );
    app.cleanup().await;
}

async fn wrong_password_and_unknown_user_get_the_same_answer(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.register("alice", PASSWORD).await;
    let (s1, b1) = error_of(app.login("alice", "wrong password").await).await;
    let (s2, b2) = error_of(app.login("mallory", "wrong password").await).await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(b1, b2);
    assert_eq!(b1["error"], "invalid_credentials");
    app.cleanup().await;
}

async fn repeated_failures_are_throttled_and_success_resets_the_count(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.register("alice", PASSWORD).await;
    for _ in 0..5 {
        assert_eq!(
            app.login("alice", "wrong password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.login("alice", "wrong password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = app.login("alice", PASSWORD).await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    assert!((1..=900).contains(&retry));
    // Held even for the right password until the delay passes, then let in.
    app.advance(std::time::Duration::from_secs(retry));
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
    // The count starts again from zero.
    for _ in 0..5 {
        assert_eq!(
            app.login("alice", "wrong password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
    app.cleanup().await;
}

async fn a_login_never_adopts_a_refresh_token_the_client_holds(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let first = app.signed_in("alice").await;
    let r = app
        .post_with_cookie("/auth/login", &first.refresh)
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let second = session_of(r).await;
    assert_ne!(second.sid, first.sid);
    assert_ne!(second.refresh, first.refresh);
    // Both sessions live on independently.
    assert_eq!(
        app.refresh_with_cookie(&first.refresh).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.refresh_with_cookie(&second.refresh).await.status(),
        StatusCode::OK
    );
    app.cleanup().await;
}

on_both_backends!(
    registering_returns_the_new_user,
    usernames_are_unique_regardless_of_case,
    registration_input_rules_are_enforced,
    bodies_over_16_kib_are_refused_with_413,
    closed_registration_refuses_sign_ups,
    login_sets_the_refresh_cookie_and_returns_an_access_token,
    login_can_deliver_the_refresh_token_in_the_body,
    insecure_cookie_setting_drops_the_prefix_and_the_secure_flag,
    wrong_password_and_unknown_user_get_the_same_answer,
    repeated_failures_are_throttled_and_success_resets_the_count,
    a_login_never_adopts_a_refresh_token_the_client_holds,
);

//! The admin API (`/admin/*`, `TESSERA_ADMIN_TOKEN`) and what it does to accounts: disable,
//! enable, delete, sessions, reset tokens.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// Every route of the admin API, with a user id or session id in place.
fn routes(user: &str, session: &str) -> Vec<(Method, String)> {
    vec![
        (Method::GET, "/users".into()),
        (Method::POST, "/users".into()),
        (Method::GET, format!("/users/{user}")),
        (Method::DELETE, format!("/users/{user}")),
        (Method::POST, format!("/users/{user}/disable")),
        (Method::POST, format!("/users/{user}/enable")),
        (Method::GET, format!("/users/{user}/sessions")),
        (Method::POST, format!("/users/{user}/password-reset")),
        (Method::DELETE, format!("/sessions/{session}")),
    ]
}

async fn without_the_setting_every_admin_route_is_404(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let id = app.tessera.user("alice").await.unwrap().id.to_string();
    let mut all = routes(&id, &s.sid);
    all.push((Method::PUT, "/users".into()));
    all.push((Method::GET, "/nothing-here".into()));
    for (method, path) in all {
        for token in [None, Some(ADMIN_TOKEN)] {
            let mut request = app
                .http
                .request(method.clone(), app.url(&format!("/admin{path}")))
                .json(&json!({"username": "bob", "password": PASSWORD}));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let (status, body) = error_of(request.send().await.unwrap()).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::NOT_FOUND, Some("not_found")),
                "{method} {path}"
            );
        }
    }
    // Nothing happened.
    assert_eq!(
        app.get_with("/auth/me", &s.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login("bob", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.cleanup().await;
}

async fn the_admin_token_is_needed_and_only_in_the_authorization_header(backend: Backend) {
    let Some(app) = spawn_admin_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let id = app.user_id("alice").await;
    for (method, path) in routes(&id, &s.sid) {
        let url = app.url(&format!("/admin{path}"));
        let attempts = [
            app.http.request(method.clone(), &url),
            app.http
                .request(method.clone(), &url)
                .bearer_auth(format!("{ADMIN_TOKEN}x")),
            app.http
                .request(method.clone(), &url)
                .bearer_auth(&s.access),
            app.http
                .request(method.clone(), &url)
                .bearer_auth(REVOCATIONS_TOKEN),
            app.http
                .request(method.clone(), format!("{url}?access_token={ADMIN_TOKEN}")),
            app.http
                .request(method.clone(), format!("{url}?access_token={ADMIN_TOKEN}"))
                .bearer_auth(ADMIN_TOKEN),
            app.http
                .request(method.clone(), &url)
                .header("cookie", format!("admin={ADMIN_TOKEN}")),
            app.http
                .request(method.clone(), &url)
                .header("cookie", format!("admin={ADMIN_TOKEN}"))
                .bearer_auth(ADMIN_TOKEN),
        ];
        for (i, request) in attempts.into_iter().enumerate() {
            let (status, body) = error_of(request.send().await.unwrap()).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("invalid_token")),
                "{method} {path}, attempt {i}"
            );
        }
    }
    // Nothing happened; the control: the header alone works.
    assert_eq!(
        app.get_with("/auth/me", &s.access).await.status(),
        StatusCode::OK
    );
    let r = app
        .admin(Method::GET, &format!("/users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.cleanup().await;
}

async fn users_are_listed_a_page_at_a_time(backend: Backend) {
    let Some(app) = spawn_admin_app(backend).await else {
        return;
    };
    for name in ["user1", "user2", "user3", "user4", "user5"] {
        app.register(name, PASSWORD).await;
    }
    let s = app.another_device("user3").await;
    app.another_device("user3").await;
    let mut seen = Vec::new();
    let mut after = String::new();
    let mut pages = 0;
    loop {
        let r = app
            .admin(Method::GET, &format!("/users?limit=2&after={after}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body: Value = r.json().await.unwrap();
        let users = body["users"].as_array().unwrap();
        assert!(users.len() <= 2);
        seen.extend(users.iter().cloned());
        pages += 1;
        match body["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut names: Vec<&str> = seen
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["user1", "user2", "user3", "user4", "user5"]);
    let u3 = seen.iter().find(|u| u["username"] == "user3").unwrap();
    assert_eq!(u3["sessions"], 2);
    assert_eq!(u3["disabled"], false);
    assert!(u3["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(u3.as_object().unwrap().len(), 5, "{u3}");
    // One user by id: the same object.
    let one: Value = json_from(app.admin(
        Method::GET,
        &format!("/users/{}", u3["id"].as_str().unwrap()),
    ))
    .await;
    assert_eq!(&one, u3);
    // Its sessions, as `/auth/sessions` shows them but without `current`.
    let sessions: Value = json_from(app.admin(
        Method::GET,
        &format!("/users/{}/sessions", u3["id"].as_str().unwrap()),
    ))
    .await;
    let sessions = sessions["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(sessions.iter().any(|x| x["id"] == s.sid.as_str()));
    assert!(
        sessions
            .iter()
            .all(|x| x.get("current").is_none() && x["expires_at"].is_string())
    );
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "limit=-1",
        "after=not-a-uuid",
    ] {
        let r = app
            .admin(Method::GET, &format!("/users?{bad}"))
            .send()
            .await
            .unwrap();
        let (status, body) = error_of(r).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{bad}"
        );
    }
    app.cleanup().await;
}

async fn an_operator_adds_users_under_the_input_rules(backend: Backend) {
    let Some(app) = spawn_admin_app(backend).await else {
        return;
    };
    let r = app
        .admin(Method::POST, "/users")
        .json(&json!({"username": "Carol", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["username"], "Carol");
    assert_eq!(body["id"].as_str().unwrap(), app.user_id("Carol").await);
    assert_eq!(app.login("carol", PASSWORD).await.status(), StatusCode::OK);
    let r = app
        .admin(Method::POST, "/users")
        .json(&json!({"username": "CAROL", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("username_taken"))
    );
    for body in [
        json!({"username": "ab", "password": PASSWORD}),
        json!({"username": "x".repeat(65), "password": PASSWORD}),
        json!({"username": "dave", "password": "short"}),
        json!({"username": "dave", "password": "x".repeat(1025)}),
        json!({"username": "dave"}),
    ] {
        let r = app
            .admin(Method::POST, "/users")
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, err) = error_of(r).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{body}"
        );
    }
    let r = app
        .admin(Method::POST, "/users")
        .header("content-type", "application/json")
        .body("{\"username\": \"dave\",")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::BAD_REQUEST);
    let r = app
        .admin(Method::POST, "/users")
        .header("content-type", "application/json")
        .body(format!(
            "{{\"username\": \"dave\", \"password\": \"{}\"}}",
            "x".repeat(20_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        app.login("dave", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.cleanup().await;
}

async fn unknown_and_malformed_ids_are_404_on_every_route(backend: Backend) {
    let Some(app) = spawn_admin_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let unknown = uuid::Uuid::new_v4().to_string();
    for id in [unknown.as_str(), "not-a-uuid", "%FF", "1"] {
        for (method, path) in routes(id, id).into_iter().skip(2) {
            let r = app.admin(method.clone(), &path).send().await.unwrap();
            let (status, body) = error_of(r).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::NOT_FOUND, Some("not_found")),
                "{method} {path}"
            );
        }
    }
    assert_eq!(
        app.get_with("/auth/me", &s.access).await.status(),
        StatusCode::OK
    );
    app.cleanup().await;
}

async fn an_operator_ends_one_session(backend: Backend) {
    let Some(app) = spawn_admin_app(backend).await else {
        return;
    };
    let (a, b) = (
        app.signed_in("alice").await,
        app.another_device("alice").await,
    );
    let r = app
        .admin(Method::DELETE, &format!("/sessions/{}", a.sid))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, body) = error_of(app.refresh_with_cookie(&a.refresh).await).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("revoked"))
    );
    assert_eq!(
        app.refresh_with_cookie(&b.refresh).await.status(),
        StatusCode::OK
    );
    assert_eq!(feed(&app).await, vec![a.sid.clone()]);
    // Already ended: nothing to end.
    let r = app
        .admin(Method::DELETE, &format!("/sessions/{}", a.sid))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::NOT_FOUND);
    app.cleanup().await;
}

async fn a_disabled_user_loses_every_session_and_is_told_only_after_a_right_password(
    backend: Backend,
) {
    let Some(app) = spawn_admin_app(backend).await else {
        return;
    };
    let (a, b) = (
        app.signed_in("alice").await,
        app.another_device("alice").await,
    );
    let bob = app.signed_in("bob").await;
    let id = app.user_id("alice").await;
    let r = app
        .admin(Method::POST, &format!("/users/{id}/disable"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // At once: the feed lists them.
    assert_ended_and_in_feed(&app, &[&a, &b], Some("revoked")).await;
    let (status, body) = error_of(app.login("alice", PASSWORD).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("account_disabled"))
    );
    let (status, body) = error_of(app.login("alice", "not the password").await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
    );
    let user: Value = json_from(app.admin(Method::GET, &format!("/users/{id}"))).await;
    assert_eq!(
        (user["disabled"].as_bool(), user["sessions"].as_u64()),
        (Some(true), Some(0))
    );
    assert_eq!(
        app.refresh_with_cookie(&bob.refresh).await.status(),
        StatusCode::OK
    );
    // Enabled again: logins work; the ended sessions stay ended.
    let r = app
        .admin(Method::POST, &format!("/users/{id}/enable"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(
        app.refresh_with_cookie(&a.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.cleanup().await;
}

/// Refreshes and logins racing a disable: once the disable has answered, no session of the
/// user is live, and no token handed out during the race still works.
async fn a_disable_racing_refreshes_and_logins_leaves_nothing_live(backend: Backend) {
    let Some(app) = spawn_admin_app(backend).await else {
        return;
    };
    app.register("alice", PASSWORD).await;
    let r = app
        .post_json(
            "/auth/login",
            &json!({"username": "alice", "password": PASSWORD, "delivery": "body"}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    let mut token = body["refresh_token"].as_str().unwrap().to_owned();
    // A few rotations first, so the race has predecessors in the grace window too.
    for _ in 0..3 {
        let r = app.refresh_with_body(&token).await;
        token = r.json::<Value>().await.unwrap()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    let id = app.user_id("alice").await;
    let refreshes: Vec<_> = (0..12)
        .map(|_| {
            let request = app
                .http
                .post(app.url("/auth/refresh"))
                .json(&json!({"refresh_token": token}));
            tokio::spawn(async move { request.send().await.unwrap() })
        })
        .collect();
    let logins: Vec<_> = (0..4)
        .map(|_| {
            let request = app
                .http
                .post(app.url("/auth/login"))
                .json(&json!({"username": "alice", "password": PASSWORD, "delivery": "body"}));
            tokio::spawn(async move { request.send().await.unwrap() })
        })
        .collect();
    let r = app
        .admin(Method::POST, &format!("/users/{id}/disable"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let mut handed_out = Vec::new();
    for task in refreshes.into_iter().chain(logins) {
        let r = task.await.unwrap();
        match r.status() {
            StatusCode::OK => {
                let body: Value = r.json().await.unwrap();
                handed_out.push((
                    body["access_token"].as_str().unwrap().to_owned(),
                    body["refresh_token"].as_str().unwrap().to_owned(),
                ));
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {}
            other => panic!("unexpected {other}"),
        }
    }
    let sessions: Value = json_from(app.admin(Method::GET, &format!("/users/{id}/sessions"))).await;
    assert_eq!(
        sessions["sessions"],
        json!([]),
        "no session of a disabled user is live"
    );
    for (access, refresh) in handed_out {
        assert_eq!(
            app.get_with("/auth/me", &access).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let (status, body) = error_of(app.refresh_with_body(&refresh).await).await;
        assert_eq!(
            (status, body["reason"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("revoked"))
        );
    }
    let (status, _) = error_of(app.refresh_with_body(&token).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

async fn deleting_a_user_frees_the_name_and_keeps_only_session_ids_in_the_feed(backend: Backend) {
    let Some(app) = spawn_admin_app(backend).await else {
        return;
    };
    let (a, b) = (
        app.signed_in("alice").await,
        app.another_device("alice").await,
    );
    let bob = app.signed_in("bob").await;
    let id = app.user_id("alice").await;
    let token = app.reset_token("alice").await;
    // Six failures: alice's name is held by the throttle.
    for _ in 0..6 {
        app.login("alice", "not the password").await;
    }
    assert_eq!(
        app.login("alice", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let r = app
        .admin(Method::DELETE, &format!("/users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // The deleted user's sessions stay in the feed (their rows are gone: any refusal will do).
    assert_ended_and_in_feed(&app, &[&a, &b], None).await;
    let r = app
        .admin(Method::GET, &format!("/users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::NOT_FOUND);
    let r = app
        .admin(Method::DELETE, &format!("/users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::NOT_FOUND);
    let (status, body) = error_of(app.reset_password(&token, "a brand new passphrase").await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_reset_token"))
    );
    // The name is free, and its throttle state went with the user.
    assert_eq!(
        app.register("ALICE", PASSWORD).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
    assert_ne!(app.user_id("ALICE").await, id);
    assert_eq!(
        app.refresh_with_cookie(&bob.refresh).await.status(),
        StatusCode::OK
    );
    app.cleanup().await;
}

async fn an_operator_makes_a_reset_token_that_expires(backend: Backend) {
    let Some(app) = spawn_admin_app(backend).await else {
        return;
    };
    app.signed_in("alice").await;
    let id = app.user_id("alice").await;
    let r = app
        .admin(Method::POST, &format!("/users/{id}/password-reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.len(), 43, "256 bits in base64url");
    let expires = body["expires_at"].as_str().unwrap();
    let expected = app
        .tessera
        .now()
        .plus(std::time::Duration::from_secs(3600))
        .to_rfc3339();
    assert_eq!(&expires[..16], &expected[..16], "an hour from now");
    app.cleanup().await;
}

on_both_backends!(
    without_the_setting_every_admin_route_is_404,
    the_admin_token_is_needed_and_only_in_the_authorization_header,
    users_are_listed_a_page_at_a_time,
    an_operator_adds_users_under_the_input_rules,
    unknown_and_malformed_ids_are_404_on_every_route,
    an_operator_ends_one_session,
    a_disabled_user_loses_every_session_and_is_told_only_after_a_right_password,
    a_disable_racing_refreshes_and_logins_leaves_nothing_live,
    deleting_a_user_frees_the_name_and_keeps_only_session_ids_in_the_feed,
    an_operator_makes_a_reset_token_that_expires,
);

//! The refresh rules, through `POST /auth/refresh`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

async fn reason_of(r: reqwest::Response) -> (StatusCode, String) {
    let (status, body) = error_of(r).await;
    assert_eq!(body["error"], "invalid_refresh_token", "{body}");
    (status, body["reason"].as_str().expect("reason").to_owned())
}

async fn refreshing_rotates_the_token_and_keeps_the_session(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let r = app.refresh_with_cookie(&s.refresh).await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    let renewed = session_of(r).await;
    assert_eq!(renewed.sid, s.sid);
    assert_ne!(renewed.refresh, s.refresh);
    assert_ne!(renewed.access, s.access);
    assert_eq!(
        app.get_with("/auth/me", &renewed.access).await.status(),
        StatusCode::OK
    );
    app.cleanup().await;
}

async fn no_token_is_reason_missing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let bare = app
        .http
        .post(app.url("/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        reason_of(bare).await,
        (StatusCode::UNAUTHORIZED, "missing".into())
    );
    let empty_object = app.post_json("/auth/refresh", &json!({})).await;
    assert_eq!(
        reason_of(empty_object).await,
        (StatusCode::UNAUTHORIZED, "missing".into())
    );
    app.cleanup().await;
}

async fn tokens_that_are_not_ours_are_reason_unknown(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let Some(other) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let foreign = other.signed_in("alice").await;
    let mut flipped = s.refresh.clone().into_bytes();
    flipped[50] = if flipped[50] == b'A' { b'B' } else { b'A' };
    for token in [
        "x".to_string(),
        " ".repeat(96),
        "A".repeat(96),
        s.refresh[..95].to_string(),
        format!("{}A", s.refresh),
        format!("{}==", s.refresh),
        s.refresh.replace('-', "%2D"),
        String::from_utf8(flipped).unwrap(),
        foreign.refresh.clone(),
        "y".repeat(10_000),
        "\u{0}".repeat(96),
    ] {
        if token == s.refresh {
            continue;
        }
        assert_eq!(
            reason_of(app.refresh_with_body(&token).await).await,
            (StatusCode::UNAUTHORIZED, "unknown".into()),
            "{token:.40}"
        );
    }
    // None of that hurt the real session.
    assert_eq!(
        app.refresh_with_cookie(&s.refresh).await.status(),
        StatusCode::OK
    );
    other.cleanup().await;
    app.cleanup().await;
}

async fn the_predecessor_within_grace_gets_the_same_successor(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let first = session_of(app.refresh_with_cookie(&s.refresh).await).await;
    app.advance(Duration::from_secs(9));
    let replays = app.metric("tessera_refresh_grace_replays_total").await;
    let retry = session_of(app.refresh_with_cookie(&s.refresh).await).await;
    assert!(app.metric("tessera_refresh_grace_replays_total").await >= replays + 1.0);
    assert_eq!(retry.refresh, first.refresh, "same successor, no fork");
    assert_ne!(retry.access, first.access, "a fresh access token");
    // The successor is still the one live token.
    assert_eq!(
        app.refresh_with_cookie(&first.refresh).await.status(),
        StatusCode::OK
    );
    app.cleanup().await;
}

async fn reuse_after_grace_revokes_the_whole_session(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let next = session_of(app.refresh_with_cookie(&s.refresh).await).await;
    let before = app.metric("tessera_refresh_reuse_detected_total").await;
    app.advance(Duration::from_secs(11));
    let r = app.refresh_with_cookie(&s.refresh).await;
    let (_, attrs) = set_cookie(&r).expect("the dead cookie is cleared");
    assert!(attrs.contains("Max-Age=0"), "{attrs}");
    assert_eq!(
        reason_of(r).await,
        (StatusCode::UNAUTHORIZED, "reused".into())
    );
    assert!(app.metric("tessera_refresh_reuse_detected_total").await >= before + 1.0);
    // The current token died with the session, and so did its access token.
    assert_eq!(
        reason_of(app.refresh_with_cookie(&next.refresh).await)
            .await
            .1,
        "revoked"
    );
    assert_eq!(
        app.get_with("/auth/me", &next.access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.cleanup().await;
}

async fn an_older_token_is_reuse_even_within_grace(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s0 = app.signed_in("alice").await;
    let s1 = session_of(app.refresh_with_cookie(&s0.refresh).await).await;
    let s2 = session_of(app.refresh_with_cookie(&s1.refresh).await).await;
    assert_eq!(
        reason_of(app.refresh_with_cookie(&s0.refresh).await)
            .await
            .1,
        "reused"
    );
    assert_eq!(
        reason_of(app.refresh_with_cookie(&s2.refresh).await)
            .await
            .1,
        "revoked"
    );
    app.cleanup().await;
}

async fn idle_sessions_expire(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    app.advance(Duration::from_secs(6 * 86_400));
    let s = session_of(app.refresh_with_cookie(&s.refresh).await).await;
    app.advance(Duration::from_secs(7 * 86_400));
    assert_eq!(
        reason_of(app.refresh_with_cookie(&s.refresh).await).await,
        (StatusCode::UNAUTHORIZED, "expired".into())
    );
    app.cleanup().await;
}

async fn sessions_end_at_their_absolute_lifetime_however_active(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut s = app.signed_in("alice").await;
    for _ in 0..4 {
        app.advance(Duration::from_secs(6 * 86_400));
        let r = app.refresh_with_cookie(&s.refresh).await;
        let (_, attrs) = set_cookie(&r).unwrap();
        let max_age: u64 = attrs
            .split(';')
            .find_map(|a| a.trim().strip_prefix("Max-Age="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            max_age <= 7 * 86_400,
            "Max-Age never outlives the session: {max_age}"
        );
        s = session_of(r).await;
    }
    // Day 30: the idle deadline is a day away, but the absolute one has come.
    app.advance(Duration::from_secs(6 * 86_400));
    assert_eq!(
        reason_of(app.refresh_with_cookie(&s.refresh).await).await.1,
        "expired"
    );
    app.cleanup().await;
}

async fn the_cookie_max_age_is_what_is_left_of_the_session(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut s = app.signed_in("alice").await;
    for _ in 0..4 {
        app.advance(Duration::from_secs(6 * 86_400));
        s = session_of(app.refresh_with_cookie(&s.refresh).await).await;
    }
    // Day 24 + a day: 5 days are left of the absolute lifetime, less than the 7-day idle timeout.
    app.advance(Duration::from_secs(86_400));
    let r = app.refresh_with_cookie(&s.refresh).await;
    let (_, attrs) = set_cookie(&r).unwrap();
    assert!(
        attrs.contains(&format!("Max-Age={}", 5 * 86_400)),
        "{attrs}"
    );
    app.cleanup().await;
}

async fn fifty_racing_refreshes_yield_exactly_one_successor(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let successor = race_refreshes(&[&app], &s.refresh, 50).await;
    let stored = app
        .tessera
        .store()
        .session(s.sid.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.generation, 1, "exactly one rotation happened");
    assert_eq!(
        app.refresh_with_body(&successor).await.status(),
        StatusCode::OK
    );
    app.cleanup().await;
}

async fn a_revoked_session_says_revoked(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let r = app.logout_with_cookie(&s.refresh).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        reason_of(app.refresh_with_cookie(&s.refresh).await).await,
        (StatusCode::UNAUTHORIZED, "revoked".into())
    );
    app.cleanup().await;
}

async fn cookie_and_body_together_or_two_cookies_are_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let both = app
        .post_with_cookie("/auth/refresh", &s.refresh)
        .json(&json!({"refresh_token": s.refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(both).await.0, StatusCode::BAD_REQUEST);
    let two = app
        .http
        .post(app.url("/auth/refresh"))
        .header("cookie", format!("{COOKIE}={}; {COOKIE}=other", s.refresh))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(two).await.0, StatusCode::BAD_REQUEST);
    // Neither consumed the token.
    let after = session_of(app.refresh_with_cookie(&s.refresh).await).await;
    assert_eq!(
        app.tessera
            .store()
            .session(after.sid.parse().unwrap())
            .await
            .unwrap()
            .unwrap()
            .generation,
        1
    );
    app.cleanup().await;
}

async fn cross_site_cookie_requests_are_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let cookie = format!("{COOKIE}={}", s.refresh);
    for path in ["/auth/refresh", "/auth/logout"] {
        for (name, value) in [
            ("origin", "null"),
            ("origin", "https://evil.example"),
            ("origin", "http://127.0.0.1:1"),
            ("sec-fetch-site", "cross-site"),
            ("content-type", "application/x-www-form-urlencoded"),
            ("content-type", "text/plain"),
        ] {
            let r = app
                .post_with_cookie(path, &s.refresh)
                .header(name, value)
                .send()
                .await
                .unwrap();
            let (status, body) = error_of(r).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::FORBIDDEN, Some("csrf_rejected")),
                "{path} {name}: {value}"
            );
        }
    }
    // The allowed origin, same-origin fetch metadata: accepted, and the session was untouched.
    let ok = app
        .http
        .post(app.url("/auth/refresh"))
        .header("cookie", &cookie)
        .header("origin", app.base.as_str())
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    // A body token is not ambient authority: no CSRF check applies.
    let body = app
        .http
        .post(app.url("/auth/refresh"))
        .header("origin", "https://native.example")
        .json(&json!({"refresh_token": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reason_of(body).await.1, "unknown");
    app.cleanup().await;
}

async fn only_post_is_allowed_and_preflights_answer_only_allowed_origins(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for path in ["/auth/login", "/auth/refresh", "/auth/logout"] {
        for method in [
            reqwest::Method::GET,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ] {
            let r = app
                .http
                .request(method.clone(), app.url(path))
                .send()
                .await
                .unwrap();
            let (status, body) = error_of(r).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")),
                "{method} {path}"
            );
        }
        let preflight = |origin: &str| {
            app.http
                .request(reqwest::Method::OPTIONS, app.url(path))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type")
                .send()
        };
        let good = preflight(&app.base).await.unwrap();
        assert!(good.status().is_success());
        assert_eq!(
            good.headers()["access-control-allow-origin"],
            app.base.as_str()
        );
        assert_eq!(good.headers()["access-control-allow-credentials"], "true");
        let evil = preflight("https://evil.example").await.unwrap();
        assert!(
            evil.headers().get("access-control-allow-origin").is_none(),
            "no ACAO for {path}"
        );
    }
    let r = app
        .http
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers().get("access-control-allow-origin").is_none(),
        "never reflected, never *"
    );
    app.cleanup().await;
}

on_both_backends!(
    refreshing_rotates_the_token_and_keeps_the_session,
    no_token_is_reason_missing,
    tokens_that_are_not_ours_are_reason_unknown,
    the_predecessor_within_grace_gets_the_same_successor,
    reuse_after_grace_revokes_the_whole_session,
    an_older_token_is_reuse_even_within_grace,
    idle_sessions_expire,
    sessions_end_at_their_absolute_lifetime_however_active,
    the_cookie_max_age_is_what_is_left_of_the_session,
    fifty_racing_refreshes_yield_exactly_one_successor,
    a_revoked_session_says_revoked,
    cookie_and_body_together_or_two_cookies_are_refused,
    cross_site_cookie_requests_are_refused,
    only_post_is_allowed_and_preflights_answer_only_allowed_origins,
);

//! `GET /auth/revocations`: sessions ended lately, for resource services holding the shared
//! secret (`TESSERA_REVOCATIONS_TOKEN`).

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::helpers::*;

const SECRET: &str = "test-revocations-secret-0123456789abcdef";

async fn with_secret(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |args| {
        args.revocations_token = Some(SECRET.into());
    })
    .await
}

async fn revocations(app: &TestApp, query: &str, secret: Option<&str>) -> Response {
    let mut request = app.http.get(app.url(&format!("/auth/revocations{query}")));
    if let Some(secret) = secret {
        request = request.bearer_auth(secret);
    }
    request.send().await.unwrap()
}

/// The listed session ids, and the whole body.
async fn listed(app: &TestApp, query: &str) -> (Vec<String>, Value) {
    let r = revocations(app, query, Some(SECRET)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    let ids = body["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["session_id"].as_str().unwrap().to_owned())
        .collect();
    (ids, body)
}

async fn logout(app: &TestApp, s: &Session) {
    let r = app
        .http
        .post(app.url("/auth/logout"))
        .header("cookie", format!("{COOKIE}={}", s.refresh))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

async fn without_a_secret_the_route_does_not_exist(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for secret in [None, Some(SECRET)] {
        let (status, body) = error_of(revocations(&app, "", secret).await).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );
    }
    app.cleanup().await;
}

async fn only_the_shared_secret_reads_revocations(backend: Backend) {
    let Some(app) = with_secret(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let none = revocations(&app, "", None).await;
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let near_miss = format!("{}X", &SECRET[..SECRET.len() - 1]);
    for wrong in [near_miss.as_str(), &s.access, "x"] {
        let r = revocations(&app, "", Some(wrong)).await;
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer error=\"invalid_token\"")
        );
        let (status, body) = error_of(r).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_token"))
        );
    }
    app.cleanup().await;
}

async fn a_logout_is_listed_until_the_sessions_tokens_have_expired(backend: Backend) {
    let Some(app) = with_secret(backend).await else {
        return;
    };
    let (gone, stays) = (app.signed_in("alice").await, app.signed_in("bob").await);
    let (ids, _) = listed(&app, "").await;
    assert!(ids.is_empty(), "nothing ended yet: {ids:?}");

    logout(&app, &gone).await;
    let (ids, body) = listed(&app, "").await;
    assert_eq!(ids, vec![gone.sid.clone()]);
    assert!(!ids.contains(&stays.sid));
    let revoked_at = body["revocations"][0]["revoked_at"].as_str().unwrap();
    assert!(revoked_at.ends_with('Z'), "RFC 3339 UTC: {revoked_at}");
    // The window is the access-token lifetime plus leeway (15m + 5s) back from `until`.
    let millis = |field: &str| {
        let text = body[field].as_str().unwrap();
        let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .unwrap();
        (t.unix_timestamp_nanos() / 1_000_000) as i64
    };
    assert_eq!(millis("until") - millis("since"), 905_000);

    // Polling on from just after `until` finds only what happened since. (The test clock
    // stands still, so the logout happened at `until` exactly.)
    let next = millis("until") + 1;
    let (ids, _) = listed(&app, &format!("?since={next}")).await;
    assert!(ids.is_empty(), "{ids:?}");
    app.advance(Duration::from_secs(60));
    let late = app.another_device("bob").await;
    logout(&app, &late).await;
    let (ids, _) = listed(&app, &format!("?since={next}")).await;
    assert_eq!(ids, vec![late.sid.clone()]);

    // Once every token of the first session has expired, it is no longer worth listing, even
    // for a `since` far in the past.
    app.advance(Duration::from_secs(15 * 60 + 5 - 60 + 1));
    let (ids, body) = listed(&app, "?since=0").await;
    assert_eq!(ids, vec![late.sid.clone()]);
    assert_ne!(body["since"], "1970-01-01T00:00:00Z", "`since` is clamped");
    app.cleanup().await;
}

async fn every_way_a_session_ends_is_listed(backend: Backend) {
    let Some(app) = with_secret(backend).await else {
        return;
    };
    let a = app.signed_in("alice").await;
    let b = app.another_device("alice").await;
    let c = app.signed_in("carol").await;
    let d = app.another_device("carol").await;
    // Logout everywhere ends a and b; carol revokes d from c; tessera itself catches reuse.
    let r = app
        .http
        .post(app.url("/auth/logout-all"))
        .bearer_auth(&a.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .http
        .delete(app.url(&format!("/auth/sessions/{}", d.sid)))
        .bearer_auth(&c.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.refresh_with_cookie(&c.refresh).await.status(),
        StatusCode::OK
    );
    app.advance(Duration::from_secs(11));
    let r = app.refresh_with_cookie(&c.refresh).await;
    let (_, body) = error_of(r).await;
    assert_eq!(body["reason"], "reused");

    let (mut ids, _) = listed(&app, "").await;
    ids.sort();
    let mut expected = vec![a.sid, b.sid, c.sid, d.sid];
    expected.sort();
    assert_eq!(ids, expected);
    app.cleanup().await;
}

async fn since_is_milliseconds_or_rfc_3339_and_nothing_else(backend: Backend) {
    let Some(app) = with_secret(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    logout(&app, &s).await;
    let (_, body) = listed(&app, "").await;
    let until = body["until"].as_str().unwrap().to_owned();
    let revoked_at = body["revocations"][0]["revoked_at"]
        .as_str()
        .unwrap()
        .to_owned();
    // `+` must be percent-encoded in a query (a bare `+` reads as a space).
    for since in [revoked_at.clone(), revoked_at.replace('Z', "%2B00:00")] {
        let (ids, _) = listed(&app, &format!("?since={since}")).await;
        assert_eq!(ids, vec![s.sid.clone()], "{since}");
    }
    let (ids, _) = listed(&app, &format!("?since={}", until.replace(':', "%3A"))).await;
    assert_eq!(
        ids,
        vec![s.sid.clone()],
        "the clock stood still: revoked at `until`"
    );
    for bad in ["?since=yesterday", "?since=", "?since=2026-12-01"] {
        let (status, body) = error_of(revocations(&app, bad, Some(SECRET)).await).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{bad}"
        );
    }
    app.cleanup().await;
}

/// Before: `since=9223372036854775807` answered `"since": ""`, and a `since` in the future one
/// later than `until`.
async fn a_since_in_the_future_or_out_of_range_is_refused(backend: Backend) {
    let Some(app) = with_secret(backend).await else {
        return;
    };
    let (_, body) = listed(&app, "").await;
    let until = tessera_core::Timestamp::parse_rfc3339(body["until"].as_str().unwrap()).unwrap();
    let future = until.plus(Duration::from_secs(3600));
    for fine in [until, until.plus(Duration::from_secs(5))] {
        let (ids, _) = listed(&app, &format!("?since={}", fine.as_millis())).await;
        assert!(ids.is_empty(), "up to the clock leeway ahead is fine");
    }
    for bad in [
        format!("?since={}", future.as_millis()),
        format!("?since={}", future.to_rfc3339().replace(':', "%3A")),
        "?since=9223372036854775807".to_owned(),
        "?since=-9223372036854775808".to_owned(),
    ] {
        let (status, body) = error_of(revocations(&app, &bad, Some(SECRET)).await).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{bad}"
        );
    }
    app.cleanup().await;
}

on_both_backends!(
    a_since_in_the_future_or_out_of_range_is_refused,
    without_a_secret_the_route_does_not_exist,
    only_the_shared_secret_reads_revocations,
    a_logout_is_listed_until_the_sessions_tokens_have_expired,
    every_way_a_session_ends_is_listed,
    since_is_milliseconds_or_rfc_3339_and_nothing_else,
);

//! `GET /auth/revocations`: sessions ended lately, for resource services holding the shared
//! secret (`TESSERA_REVOCATIONS_TOKEN`).

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::Value;
use tessera_core::Clock;

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

/// `count` more sessions for `username`, created straight in the database at the test clock's
/// now, live or (`revoked`) ended then by a logout everywhere. SQL generates the rows: 100 000
/// logins over HTTP would take minutes.
async fn seed_sessions(app: &TestApp, username: &str, count: i64, revoked: bool) {
    let now = app.clock.now().as_millis();
    let revoked_at = revoked.then_some(now);
    let reason = revoked.then_some("logout_all");
    let url = app.db.as_ref().unwrap().url();
    if let Some(path) = url.strip_prefix("sqlite://") {
        let db = rusqlite::Connection::open(path).unwrap();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        db.execute(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1) \
             INSERT INTO sessions (id, user_id, generation, token_hash, created_at, rotated_at, \
                                   last_used_at, revoked_at, revoked_reason) \
             SELECT randomblob(16), (SELECT id FROM users WHERE username_key = ?2), 0, \
                    randomblob(32), ?3, ?3, ?3, ?4, ?5 FROM c",
            rusqlite::params![count, username, now, revoked_at, reason],
        )
        .unwrap();
    } else {
        use sqlx::Connection;
        let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO sessions (id, user_id, generation, token_hash, created_at, rotated_at, \
                                   last_used_at, revoked_at, revoked_reason) \
             SELECT gen_random_uuid(), (SELECT id FROM users WHERE username_key = $2), 0, \
                    uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), $3, $3, $3, \
                    $4, $5 \
             FROM generate_series(1, $1)",
        )
        .bind(count)
        .bind(username)
        .bind(now)
        .bind(revoked_at)
        .bind(reason)
        .execute(&mut db)
        .await
        .unwrap();
        db.close().await.unwrap();
    }
}

async fn logout_all(app: &TestApp, s: &Session) {
    let r = app
        .http
        .post(app.url("/auth/logout-all"))
        .bearer_auth(&s.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

/// Every page of `query`'s feed (each at most `limit` long), following `next`.
async fn pages(app: &TestApp, query: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let (ids, body) = listed(app, &format!("{query}{cursor}")).await;
        pages.push(ids);
        match body["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => {
                assert!(body["next"].is_null(), "`next` is null on the last page");
                return pages;
            }
        }
    }
}

/// Before: `limit` was ignored and the whole window came in one answer.
async fn the_feed_pages_with_limit_and_cursor_through_one_millisecond(backend: Backend) {
    let Some(app) = with_secret(backend).await else {
        return;
    };
    let early = app.signed_in("early").await;
    logout(&app, &early).await;
    app.advance(Duration::from_millis(1));
    // Seven sessions ended in one millisecond (the test clock stands still).
    let s = app.signed_in("alice").await;
    seed_sessions(&app, "alice", 6, false).await;
    logout_all(&app, &s).await;

    let (all, body) = listed(&app, "").await;
    assert_eq!(all.len(), 8, "the default limit (1000) holds them all");
    assert!(body["next"].is_null());
    let paged = pages(&app, "?limit=3").await;
    assert_eq!(
        paged.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 2]
    );
    assert_eq!(paged.concat(), all, "each once, in the same order");
    assert_eq!(all[0], early.sid, "oldest first");
    let mut tied = all[1..].to_vec();
    tied.sort();
    assert_eq!(tied, all[1..], "ties in session-id order");
    // `since` still applies to later pages: the one before it stays out.
    let late = pages(
        &app,
        &format!("?limit=2&since={}", app.clock.now().as_millis()),
    )
    .await;
    assert_eq!(late.concat(), all[1..]);
    assert_eq!(pages(&app, "?limit=10000").await, vec![all.clone()]);

    for bad in [
        "?limit=0",
        "?limit=10001",
        "?limit=-1",
        "?limit=",
        "?limit=ten",
        "?cursor=",
        "?cursor=not-a-cursor",
        "?cursor=AAAA",
        "?since=0&limit=2.5",
    ] {
        let (status, body) = error_of(revocations(&app, bad, Some(SECRET)).await).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{bad}"
        );
    }
    app.cleanup().await;
}

/// Before: the feed came in one answer however long, and the verifier refused any answer over
/// 1 MiB, so 12 000 sessions ended by one logout everywhere stopped every verifier's polls
/// (still accepting sessions ended after) and kept new verifiers from starting.
async fn a_verifier_sees_a_revocation_after_a_hundred_thousand_others(backend: Backend) {
    use tessera_verifier::{RevocationsConfig, Verifier, VerifierConfig};
    let Some(app) = with_secret(backend).await else {
        return;
    };
    // 100 000 sessions ended by one logout everywhere, in one millisecond (seeded ended: the
    // `UPDATE` of 100 000 rows is not what this test is about), then one more.
    let alice = app.signed_in("alice").await;
    seed_sessions(&app, "alice", 100_000, true).await;
    logout(&app, &alice).await;
    let (first, body) = listed(&app, "").await;
    assert_eq!(first.len(), 1000, "one page of the default size");
    assert!(body["next"].is_string());

    let mut config = VerifierConfig::new(&app.base);
    config.revocations = Some(RevocationsConfig::new(&app.base, SECRET));
    let verifier = Verifier::connect(config)
        .await
        .expect("starts on a large feed");
    assert_eq!(verifier.health().revoked_sessions, 100_001);
    assert!(verifier.is_revoked(alice.sid.parse().unwrap()));

    // A session ended after them, in the same millisecond (the test clock stands still):
    // somewhere among the 100 001 in the feed's order.
    let bob = app.signed_in("bob").await;
    assert!(verifier.verify(&bob.access).await.is_ok());
    logout(&app, &bob).await;
    assert_eq!(verifier.sync_revocations().await.unwrap(), 100_002);
    let refused = verifier.verify(&bob.access).await.unwrap_err();
    assert!(refused.is_invalid_token(), "{refused}");
    let health = verifier.health();
    assert!(!health.stale);
    assert_eq!(health.failed_syncs, 0);
    app.cleanup().await;
}

on_both_backends!(
    the_feed_pages_with_limit_and_cursor_through_one_millisecond,
    a_verifier_sees_a_revocation_after_a_hundred_thousand_others,
    a_since_in_the_future_or_out_of_range_is_refused,
    without_a_secret_the_route_does_not_exist,
    only_the_shared_secret_reads_revocations,
    a_logout_is_listed_until_the_sessions_tokens_have_expired,
    every_way_a_session_ends_is_listed,
    since_is_milliseconds_or_rfc_3339_and_nothing_else,
);

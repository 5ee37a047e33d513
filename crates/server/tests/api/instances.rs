//! Two instances on one database: what one does, the other sees. Both run in this process on
//! their own ports, with their own pools (two processes on one SQLite file are legitimate too),
//! the same issuer, and one shared `ManualClock`, so moving it moves both.
//!
//! Also the cleanup job (`Tessera::purge_ended_sessions`), alone and racing on two instances.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::SettingsArgs;
use tessera_core::{Clock, KEY_RELOAD_INTERVAL, ManualClock, SystemClock};

use crate::helpers::*;

/// Both instances sign as this issuer (the default would be each one's own address).
const ISSUER: &str = "http://tessera.test";
/// The default retention of ended sessions (`TESSERA_SESSION_RETENTION`).
const RETENTION: Duration = Duration::from_secs(7 * 86_400);
const DAY: Duration = Duration::from_secs(86_400);

fn settings() -> SettingsArgs {
    SettingsArgs {
        issuer: Some(ISSUER.into()),
        ..SettingsArgs::default()
    }
}

/// Instances A and B on one fresh database, sharing one clock. A owns the database; clean up
/// with [`cleanup`].
async fn two_instances(backend: Backend) -> Option<(TestApp, TestApp)> {
    let db = Db::new(backend).await?;
    let url = db.url();
    let clock = ManualClock::new(SystemClock.now());
    let a = start_on(db, settings(), clock.clone()).await;
    let b = start_on_url(&url, settings(), clock).await;
    Some((a, b))
}

async fn cleanup(a: TestApp, b: TestApp) {
    b.cleanup().await;
    a.cleanup().await;
}

/// Logs in with body delivery: (session id, refresh token).
async fn body_login(app: &TestApp, username: &str) -> (String, String) {
    let r = app
        .post_json(
            "/auth/login",
            &json!({"username": username, "password": PASSWORD, "delivery": "body"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "login {username}");
    let body: Value = r.json().await.unwrap();
    (
        body["session_id"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// Refreshes with a body token and returns the successor.
async fn refreshed(app: &TestApp, token: &str) -> String {
    let r = app.refresh_with_body(token).await;
    assert_eq!(r.status(), StatusCode::OK, "refresh on {}", app.base);
    let body: Value = r.json().await.unwrap();
    body["refresh_token"].as_str().unwrap().to_owned()
}

async fn reason(r: reqwest::Response) -> String {
    let (status, body) = error_of(r).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    body["reason"].as_str().unwrap().to_owned()
}

async fn a_session_started_on_one_instance_refreshes_on_the_other(backend: Backend) {
    let Some((a, b)) = two_instances(backend).await else {
        return;
    };
    let s = a.signed_in("alice").await;

    let on_b = session_of(b.refresh_with_cookie(&s.refresh).await).await;
    assert_eq!(on_b.sid, s.sid, "the same session");
    let on_a = session_of(a.refresh_with_cookie(&on_b.refresh).await).await;
    assert_eq!(on_a.sid, s.sid);
    assert_ne!(on_a.refresh, on_b.refresh);

    // Access tokens from either instance are good on both; both list the one session.
    for (app, access) in [(&a, &on_b.access), (&b, &on_a.access), (&b, &s.access)] {
        let r = app.get_with("/auth/me", access).await;
        assert_eq!(r.status(), StatusCode::OK);
        let me: Value = r.json().await.unwrap();
        assert_eq!(me["session_id"], s.sid.as_str());
    }
    let r = b.get_with("/auth/sessions", &on_a.access).await;
    let listed: Value = r.json().await.unwrap();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1, "{listed}");
    cleanup(a, b).await;
}

async fn fifty_refreshes_racing_across_two_instances_yield_exactly_one_successor(backend: Backend) {
    let Some((a, b)) = two_instances(backend).await else {
        return;
    };
    let s = a.signed_in("alice").await;
    let successor = race_refreshes(&[&a, &b], &s.refresh, 50).await;
    let stored = a
        .tessera
        .store()
        .session(s.sid.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.generation, 1, "exactly one rotation happened");
    let tokens = [s.refresh.clone(), successor.clone()];
    assert_eq!(
        current_tokens(&**b.tessera.store(), &s.sid, &tokens).await,
        [1],
        "the successor, and only it, is current"
    );
    refreshed(&b, &successor).await;
    cleanup(a, b).await;
}

async fn a_token_rotated_on_one_instance_is_reuse_on_the_other_after_grace(backend: Backend) {
    let Some((a, b)) = two_instances(backend).await else {
        return;
    };
    a.register("alice", PASSWORD).await;
    let (_, t0) = body_login(&a, "alice").await;
    let t1 = refreshed(&a, &t0).await;

    // Within the grace window B hands back the successor A issued (a retry, a second tab)...
    assert_eq!(refreshed(&b, &t0).await, t1, "no fork across instances");

    // ...after it, B treats the old token as stolen and ends the session A rotated.
    a.advance(Duration::from_secs(11));
    assert_eq!(reason(b.refresh_with_body(&t0).await).await, "reused");
    assert_eq!(reason(a.refresh_with_body(&t1).await).await, "revoked");
    assert!(b.metric("tessera_refresh_reuse_detected_total").await >= 1.0);
    cleanup(a, b).await;
}

async fn both_instances_publish_the_same_jwks(backend: Backend) {
    let Some((a, b)) = two_instances(backend).await else {
        return;
    };
    let set = jwks(&a).await;
    assert_eq!(kids(&set).len(), 1, "{set}");
    assert_eq!(jwks(&b).await, set, "B loaded the key A created");

    // A token either signs verifies on the other.
    let s = b.signed_in("alice").await;
    assert_eq!(jwt_part(&s.access, 0)["kid"], set["keys"][0]["kid"]);
    assert_eq!(
        a.get_with("/auth/me", &s.access).await.status(),
        StatusCode::OK
    );
    cleanup(a, b).await;
}

async fn a_key_rotated_on_one_instance_is_published_by_the_other_after_its_reload(
    backend: Backend,
) {
    let Some((a, b)) = two_instances(backend).await else {
        return;
    };
    let old = kids(&jwks(&a).await);
    let new = a.tessera.rotate_keys().await.unwrap().kid;
    assert_eq!(kids(&jwks(&a).await).len(), 2, "published at once by A");
    assert_eq!(kids(&jwks(&b).await), old, "B has not reloaded yet");

    b.tessera.reload_keys().await.unwrap();
    let on_b = kids(&jwks(&b).await);
    assert!(on_b.contains(&new), "{on_b:?}");
    assert_eq!(jwks(&b).await, jwks(&a).await);

    // Neither signs with it before its activation; both do after it.
    let s = b.signed_in("alice").await;
    assert_eq!(jwt_part(&s.access, 0)["kid"], old[0].as_str());
    a.advance(tessera_core::keys::ACTIVATION_DELAY + Duration::from_secs(1));
    for (app, other) in [(&a, &b), (&b, &a)] {
        let again = app.another_device("alice").await;
        assert_eq!(jwt_part(&again.access, 0)["kid"], new.as_str());
        assert_eq!(
            other.get_with("/auth/me", &again.access).await.status(),
            StatusCode::OK
        );
    }
    cleanup(a, b).await;
}

/// The real background job, in real time: B publishes A's new key within one reload interval.
async fn the_background_reload_publishes_a_key_rotated_elsewhere_within_its_interval(
    backend: Backend,
) {
    let Some((a, b)) = two_instances(backend).await else {
        return;
    };
    let jobs = tessera::spawn_background_jobs(b.tessera.clone(), RETENTION);
    // The job's first reload runs at once; let it pass, so the next is a full interval away.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let new = a.tessera.rotate_keys().await.unwrap().kid;
    let rotated = Instant::now();
    let deadline = KEY_RELOAD_INTERVAL + Duration::from_secs(2);
    loop {
        if kids(&jwks(&b).await).contains(&new) {
            break;
        }
        assert!(
            rotated.elapsed() < deadline,
            "B did not publish the new key within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("B published the rotated key after {:?}", rotated.elapsed());
    jobs.abort();
    cleanup(a, b).await;
}

async fn the_cleanup_job_deletes_sessions_ended_longer_ago_than_the_retention(backend: Backend) {
    let Some((a, b)) = two_instances(backend).await else {
        return;
    };
    let store = a.tessera.store().clone();
    let exists = |sid: String| {
        let store = store.clone();
        async move { store.session(sid.parse().unwrap()).await.unwrap().is_some() }
    };
    a.register("alice", PASSWORD).await;
    // Day 0: one session logged out, one left idle, one in daily use.
    let (gone, t) = body_login(&a, "alice").await;
    assert_eq!(
        a.post_json("/auth/logout", &json!({"refresh_token": t}))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let (idle, _) = body_login(&a, "alice").await;
    let (live, mut token) = body_login(&a, "alice").await;

    // Day 6: nothing has been over for a whole retention period.
    a.advance(6 * DAY);
    token = refreshed(&b, &token).await;
    assert_eq!(a.tessera.purge_ended_sessions(RETENTION).await.unwrap(), 0);

    // Day 8: the logout is 8 days old and goes; the idle session ended only yesterday (its
    // 7-day idle timeout) and stays, listed nowhere but kept for the record.
    a.advance(2 * DAY);
    token = refreshed(&a, &token).await;
    assert_eq!(b.tessera.purge_ended_sessions(RETENTION).await.unwrap(), 1);
    assert!(!exists(gone.clone()).await, "logged out 8 days ago");
    assert!(exists(idle.clone()).await, "ended 1 day ago");
    assert!(exists(live.clone()).await);

    // Day 14 and an hour: the idle session has been over for more than 7 days.
    a.advance(6 * DAY + Duration::from_secs(3600));
    token = refreshed(&b, &token).await;
    assert_eq!(a.tessera.purge_ended_sessions(RETENTION).await.unwrap(), 1);
    assert!(!exists(idle).await, "idle since day 0, ended on day 7");
    assert!(exists(live.clone()).await, "in daily use");
    refreshed(&a, &token).await;
    cleanup(a, b).await;
}

async fn two_instances_purging_at_once_delete_each_ended_session_once(backend: Backend) {
    let Some((a, b)) = two_instances(backend).await else {
        return;
    };
    a.register("alice", PASSWORD).await;
    let mut live = Vec::new();
    for _ in 0..3 {
        live.push(body_login(&b, "alice").await);
    }
    let mut ended = 0;
    for round in 0..3 {
        for _ in 0..8 {
            let (_, t) = body_login(&a, "alice").await;
            a.post_json("/auth/logout", &json!({"refresh_token": t}))
                .await;
            ended += 1;
        }
        // A retention period and a second later, in two steps so the live sessions (refreshed
        // at each) never reach their 7-day idle timeout.
        for step in [4 * DAY, RETENTION - 4 * DAY + Duration::from_secs(1)] {
            a.advance(step);
            for (_, token) in &mut live {
                *token = refreshed(&a, token).await;
            }
        }
        let (on_a, on_b) = tokio::join!(
            a.tessera.purge_ended_sessions(RETENTION),
            b.tessera.purge_ended_sessions(RETENTION),
        );
        let (on_a, on_b) = (on_a.unwrap(), on_b.unwrap());
        assert_eq!(
            on_a + on_b,
            8,
            "round {round}: each ended session deleted once"
        );
    }
    assert_eq!(ended, 24);
    let left = a.tessera.store().unrevoked_sessions(None).await.unwrap();
    assert_eq!(left.len(), live.len(), "only the live sessions remain");
    for (sid, token) in &live {
        assert!(left.iter().any(|s| s.id.to_string() == *sid));
        refreshed(&b, token).await;
    }
    cleanup(a, b).await;
}

/// `docs/sqlite-to-postgres.sh`, as `docs/deploy.md` tells an operator to run it: after it an
/// instance on PostgreSQL serves every session the SQLite one issued, with the same keys, and
/// nobody has to log in again.
#[tokio::test]
async fn a_sqlite_deployment_moves_to_postgres_without_logging_anybody_out() {
    let missing: Vec<_> = ["sqlite3", "psql"]
        .into_iter()
        .filter(|tool| {
            !std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .any(|dir| dir.join(tool).is_file())
        })
        .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var("CI").is_err(),
            "{missing:?} not installed and CI is set"
        );
        eprintln!("note: SQLite-to-PostgreSQL test skipped: {missing:?} not installed");
        return;
    }
    let Some(pg) = tessera_store_postgres::testing::throwaway_database().await else {
        return;
    };
    let db = Db::new(Backend::Sqlite).await.unwrap();
    let Db::Sqlite(dir) = &db else { unreachable!() };
    let sqlite_file = dir.join("tessera.db");
    let old = start_on(db, settings(), ManualClock::new(SystemClock.now())).await;

    // A cookie session, a body session rotated once (its predecessor still within grace), a
    // logged-out one, a second signing key, and a sealed secret (sealed = true must survive).
    let alice = old.signed_in("alice").await;
    old.register("bob", PASSWORD).await;
    let (_, bob_t0) = body_login(&old, "bob").await;
    let bob_t1 = refreshed(&old, &bob_t0).await;
    let (_, carol) = body_login(&old, "bob").await;
    old.post_json("/auth/logout", &json!({"refresh_token": carol}))
        .await;
    old.tessera.rotate_keys().await.unwrap();
    let sealed = tessera_core::SealedBlob {
        material: vec![0, 1, 2, 255],
        sealed: true,
    };
    old.tessera
        .store()
        .insert_secret_if_absent("migration-check", &sealed)
        .await
        .unwrap();
    let keys_before = jwks(&old).await;
    let sessions_before: Value = old
        .get_with("/auth/sessions", &alice.access)
        .await
        .json()
        .await
        .unwrap();
    let (db, clock) = old.stop();

    // The procedure: schema first, then the copy.
    let migrate = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["migrate", "--database", pg.url()])
        .env_remove("TESSERA_DATABASE_URL")
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{migrate:?}");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/sqlite-to-postgres.sh"
    );
    let copy = |what: &str| {
        let out = std::process::Command::new("sh")
            .arg(script)
            .arg(&sqlite_file)
            .arg(pg.url())
            .output()
            .unwrap();
        eprintln!(
            "{what}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let out = copy("copy");
    assert!(out.status.success(), "the script failed");
    assert!(String::from_utf8_lossy(&out.stdout).contains("sessions: 3 rows copied"));

    let new = start_on_url(pg.url(), settings(), clock).await;
    assert_eq!(jwks(&new).await, keys_before, "the same keys");
    assert_eq!(
        new.tessera.store().secret("migration-check").await.unwrap(),
        Some(sealed)
    );
    // Alice's access token still verifies, her session is listed as before, her cookie
    // refreshes; her password still logs her in, and her name is still taken in any case.
    let r = new.get_with("/auth/sessions", &alice.access).await;
    assert_eq!(r.json::<Value>().await.unwrap(), sessions_before);
    session_of(new.refresh_with_cookie(&alice.refresh).await).await;
    new.another_device("alice").await;
    assert_eq!(
        new.register("ALICE", PASSWORD).await.status(),
        StatusCode::CONFLICT
    );
    // Bob's rotation came across whole: the predecessor within grace gets the same successor,
    // which is current. The logged-out session stays ended.
    assert_eq!(refreshed(&new, &bob_t0).await, bob_t1);
    refreshed(&new, &bob_t1).await;
    assert_eq!(reason(new.refresh_with_body(&carol).await).await, "revoked");

    // A second run refuses to merge into a database that holds data.
    assert!(!copy("second copy").status.success());

    new.cleanup().await;
    db.remove().await;
    pg.drop_db().await;
}

on_both_backends!(
    a_session_started_on_one_instance_refreshes_on_the_other,
    fifty_refreshes_racing_across_two_instances_yield_exactly_one_successor,
    a_token_rotated_on_one_instance_is_reuse_on_the_other_after_grace,
    both_instances_publish_the_same_jwks,
    a_key_rotated_on_one_instance_is_published_by_the_other_after_its_reload,
    the_background_reload_publishes_a_key_rotated_elsewhere_within_its_interval,
    the_cleanup_job_deletes_sessions_ended_longer_ago_than_the_retention,
    two_instances_purging_at_once_delete_each_ended_session_once,
);

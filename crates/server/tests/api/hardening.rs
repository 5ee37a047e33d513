//! Hardening: refresh-token abuse, races, trusted proxies and throttling, login timing, and
//! what a database dump or the logs would give away.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn reason(app: &TestApp, token: &str) -> String {
    let (status, body) = error_of(app.refresh_with_body(token).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    body["reason"].as_str().unwrap().to_owned()
}

async fn odd_refresh_tokens_are_unknown_and_harmless(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let percent: String = s.refresh.bytes().map(|b| format!("%{b:02X}")).collect();
    for token in [
        format!(" {}", s.refresh),
        format!("{}\t", s.refresh),
        percent,
        format!("{}\u{0}", s.refresh),
        s.refresh.to_uppercase(),
    ] {
        if token != s.refresh {
            assert_eq!(reason(&app, &token).await, "unknown", "{token:.30}");
        }
    }
    // Percent-encoded in the cookie too.
    let encoded: String = s.refresh.bytes().map(|b| format!("%{b:02X}")).collect();
    let (_, body) = error_of(app.refresh_with_cookie(&encoded).await).await;
    assert_eq!(body["reason"], "unknown");
    assert_eq!(
        app.refresh_with_cookie(&s.refresh).await.status(),
        StatusCode::OK,
        "the session survived"
    );
    app.cleanup().await;
}

async fn another_users_token_renews_only_that_users_session(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let alice = app.signed_in("alice").await;
    let bob = app.signed_in("bob").await;
    // A refresh carries no other identity: presenting bob's token yields bob's session, never
    // a mix of the two.
    let r = app
        .http
        .post(app.url("/auth/refresh"))
        .bearer_auth(&alice.access)
        .header("cookie", format!("{COOKIE}={}", bob.refresh))
        .send()
        .await
        .unwrap();
    let renewed = session_of(r).await;
    assert_eq!(renewed.sid, bob.sid);
    assert_eq!(jwt_part(&renewed.access, 1)["username"], "bob");
    app.cleanup().await;
}

async fn logout_racing_refreshes_leaves_no_live_token(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for _ in 0..3 {
        let s = app.another_device_or_sign_in("alice").await;
        let mut tasks = Vec::new();
        for i in 0..25 {
            let (http, base, token) = (app.http.clone(), app.base.clone(), s.refresh.clone());
            tasks.push(tokio::spawn(async move {
                let path = if i == 12 {
                    "/auth/logout"
                } else {
                    "/auth/refresh"
                };
                let r = http
                    .post(format!("{base}{path}"))
                    .json(&json!({"refresh_token": token}))
                    .send()
                    .await
                    .unwrap();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                body["refresh_token"].as_str().map(str::to_owned)
            }));
        }
        let mut seen: HashSet<String> = HashSet::from([s.refresh.clone()]);
        for t in tasks {
            if let Some(token) = t.await.unwrap() {
                seen.insert(token);
            }
        }
        assert!(
            seen.len() <= 2,
            "at most the original and one successor: {}",
            seen.len()
        );
        for token in &seen {
            assert_eq!(
                reason(&app, token).await,
                "revoked",
                "logout won: no token lives on"
            );
        }
    }
    app.cleanup().await;
}

async fn revocation_racing_rotations_leaves_no_live_token(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let phone = app.signed_in("alice").await;
    let laptop = app.another_device("alice").await;
    // The laptop rotates in a chain while the phone revokes it.
    let (http, base, first) = (app.http.clone(), app.base.clone(), laptop.refresh.clone());
    let chain = tokio::spawn(async move {
        let mut token = first;
        let mut issued = vec![token.clone()];
        for _ in 0..20 {
            let r = http
                .post(format!("{base}/auth/refresh"))
                .json(&json!({"refresh_token": token}))
                .send()
                .await
                .unwrap();
            if r.status() != StatusCode::OK {
                break;
            }
            let body: Value = r.json().await.unwrap();
            token = body["refresh_token"].as_str().unwrap().to_owned();
            issued.push(token.clone());
        }
        issued
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = app.revoke_session(&laptop.sid, &phone.access).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let issued = chain.await.unwrap();
    for token in issued.iter().rev().take(2) {
        assert_eq!(reason(&app, token).await, "revoked");
    }
    app.cleanup().await;
}

async fn forwarded_for_is_believed_only_from_trusted_proxies(backend: Backend) {
    // Untrusted: the header is ignored, the peer address is recorded.
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.register("alice", PASSWORD).await;
    let s = session_of(app.login_via("203.0.113.9", "alice", PASSWORD).await).await;
    let list: Value = app
        .get_with("/auth/sessions", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["sessions"][0]["ip"], "127.0.0.1");
    app.cleanup().await;

    let Some(app) =
        spawn_app_with(backend, |a| a.trusted_proxies = Some("127.0.0.1/32".into())).await
    else {
        return;
    };
    app.register("alice", PASSWORD).await;
    let s = session_of(
        app.login_via("198.51.100.1, 203.0.113.9", "alice", PASSWORD)
            .await,
    )
    .await;
    let list: Value = app
        .get_with("/auth/sessions", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["sessions"][0]["ip"], "203.0.113.9",
        "the nearest untrusted hop"
    );
    app.cleanup().await;
}

async fn guesses_from_many_addresses_still_hold_the_account(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |a| a.trusted_proxies = Some("127.0.0.1".into())).await
    else {
        return;
    };
    app.register("alice", PASSWORD).await;
    let server = &app;
    let login_from = move |ip: String, password: &'static str| async move {
        server.login_via(&ip, "alice", password).await
    };
    for i in 0..6 {
        assert_eq!(
            login_from(format!("198.51.100.{i}"), "wrong password")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let held = login_from("198.51.100.77".into(), PASSWORD).await;
    assert_eq!(
        held.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a fresh address does not reset the account's count"
    );
    // …but never for longer than 15 minutes, however many guesses came before.
    for i in 0..40 {
        app.advance(Duration::from_secs(900));
        login_from(format!("198.51.101.{i}"), "wrong password").await;
    }
    let r = login_from("198.51.100.78".into(), PASSWORD).await;
    let wait: u64 = match r.status() {
        StatusCode::TOO_MANY_REQUESTS => r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap(),
        _ => 0,
    };
    assert!(wait <= 900, "held for {wait} s");
    app.advance(Duration::from_secs(wait));
    assert_eq!(
        login_from("198.51.100.78".into(), PASSWORD).await.status(),
        StatusCode::OK
    );
    app.cleanup().await;
}

async fn one_address_over_its_failure_budget_is_held(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |a| a.trusted_proxies = Some("127.0.0.1".into())).await
    else {
        return;
    };
    let server = &app;
    let from = move |ip: &'static str, user: String| async move {
        server.login_via(ip, &user, "wrong password").await
    };
    for i in 0..30 {
        assert_eq!(
            from("192.0.2.50", format!("user{i}")).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = from("192.0.2.50", "someone".into()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        from("192.0.2.51", "someone".into()).await.status(),
        StatusCode::UNAUTHORIZED,
        "other addresses are not held"
    );
    app.advance(Duration::from_secs(60));
    assert_eq!(
        from("192.0.2.50", "someone".into()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.cleanup().await;
}

/// Before attempts counted when they started, all forty simultaneous guesses were answered
/// `401` (none was counted until its password check ended), and the right password among
/// them got in.
async fn simultaneous_guesses_are_held_like_sequential_ones(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |a| a.trusted_proxies = Some("127.0.0.1".into())).await
    else {
        return;
    };
    let app = std::sync::Arc::new(app);
    assert_eq!(
        app.register("alice", PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let guesses: Vec<_> = (0..40u8)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                // A different address each, so only the per-username count can hold them.
                let ip = format!("198.51.100.{i}");
                app.login_via(&ip, "alice", "wrong password").await.status()
            })
        })
        .collect();
    let mut answers = Vec::new();
    for guess in guesses {
        answers.push(guess.await.unwrap());
    }
    let refused = answers
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let held = answers
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        (refused, held),
        (6, 34),
        "five free failures, the sixth starts the hold"
    );
    let app = std::sync::Arc::into_inner(app).expect("every guess is done");
    app.cleanup().await;
}

/// Plays a whole session lifecycle and returns every secret the clients saw: passwords,
/// refresh tokens, access tokens.
async fn lifecycle(app: &TestApp) -> Vec<String> {
    let mut secrets = vec![PASSWORD.to_owned()];
    let s = app.signed_in("alice").await;
    secrets.extend([s.refresh.clone(), s.access.clone()]);
    let renewed = session_of(app.refresh_with_cookie(&s.refresh).await).await;
    secrets.extend([renewed.refresh.clone(), renewed.access.clone()]);
    let r = app
        .post_json(
            "/auth/login",
            &json!({"username": "alice", "password": PASSWORD, "delivery": "body"}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    let native = body["refresh_token"].as_str().unwrap().to_owned();
    secrets.extend([
        native.clone(),
        body["access_token"].as_str().unwrap().to_owned(),
    ]);
    let r = app.refresh_with_body(&native).await;
    let body: Value = r.json().await.unwrap();
    secrets.push(body["refresh_token"].as_str().unwrap().to_owned());
    app.get_with("/auth/me", &renewed.access).await;
    app.post_json("/auth/logout", &json!({"refresh_token": native}))
        .await;
    secrets
}

/// The bytes a database dump would give an attacker: the SQLite files (WAL included), or
/// `pg_dump`'s output.
async fn dump(db: &Db) -> Vec<u8> {
    match db {
        Db::Sqlite(dir) => std::fs::read_dir(dir)
            .unwrap()
            .flat_map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect(),
        Db::Postgres(db) => {
            let out = std::process::Command::new("pg_dump")
                .arg("--no-owner")
                .arg(db.url())
                .output()
                .expect("pg_dump runs");
            assert!(
                out.status.success(),
                "pg_dump: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The 16 bytes every plaintext Ed25519 PKCS#8 v1 private key starts with.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn appears_in_dump(dump: &[u8], raw: &[u8]) -> bool {
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    contains(dump, raw) || contains(dump, hex.as_bytes())
}

async fn a_database_dump_holds_no_token_or_password(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let secrets = lifecycle(&app).await;
    let bytes = dump(app.db.as_ref().unwrap()).await;
    assert!(bytes.len() > 1000, "the dump has content");
    assert!(
        contains(&bytes, b"alice"),
        "the dump is readable: usernames are there"
    );
    for secret in &secrets {
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "{secret:.24}… found in the dump"
        );
        // Refresh tokens also as raw bytes (and hex, as pg_dump writes bytea).
        let raw = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, secret);
        if let Some(raw) = raw.ok().filter(|raw| raw.len() == 72) {
            assert!(
                !appears_in_dump(&bytes, &raw),
                "raw refresh token in the dump"
            );
        }
    }
    // Without a key-encryption key the private key is stored as is (and the server warns):
    // this is the positive control for the sealed case below.
    assert!(
        appears_in_dump(&bytes, &ED25519_PKCS8_PREFIX),
        "unsealed keys are visible"
    );
    app.cleanup().await;
}

async fn with_a_kek_a_dump_holds_no_usable_private_key(backend: Backend) {
    let Some(db) = Db::new(backend).await else {
        return;
    };
    let kek = tessera_core::Kek::parse("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
    let store = tessera::open_store(&db.url()).await.unwrap();
    let clock = std::sync::Arc::new(tessera_core::ManualClock::new(tessera_core::Clock::now(
        &tessera_core::SystemClock,
    )));
    for alg in [
        tessera_core::SigningAlg::EdDSA,
        tessera_core::SigningAlg::ES256,
    ] {
        let mut settings = tessera_core::Settings::new("http://t.example");
        settings.signing_alg = alg;
        tessera_core::Tessera::open(store.clone(), settings, Some(kek.clone()), clock.clone())
            .await
            .unwrap();
    }
    let bytes = dump(&db).await;
    assert!(
        !appears_in_dump(&bytes, &ED25519_PKCS8_PREFIX),
        "no plaintext Ed25519 key"
    );
    for key in store.keys().await.unwrap() {
        assert!(key.private.sealed);
        assert!(aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(&key.private.material).is_err());
        assert!(
            aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &key.private.material
            )
            .is_err()
        );
    }
    db.remove().await;
}

/// Issue 12, item 10: registration was not throttled at all (each request an argon2 run), so
/// one address could register without limit; now it spends the address's failure budget, as
/// password-reset requests do. Failed before the fix: the 31st registration got `201`.
async fn registrations_and_reset_requests_spend_the_address_budget(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |a| a.trusted_proxies = Some("127.0.0.1".into())).await
    else {
        return;
    };
    let register = |ip: &'static str, name: String| {
        let app = &app;
        async move {
            app.post_json_via(
                ip,
                "/auth/register",
                &json!({"username": name, "password": PASSWORD}),
            )
            .await
        }
    };
    for i in 0..30 {
        assert_eq!(
            register("192.0.2.60", format!("user{i}")).await.status(),
            StatusCode::CREATED
        );
    }
    let r = register("192.0.2.60", "one-more".into()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let (_, body) = error_of(r).await;
    assert_eq!(body["error"], "rate_limited");
    let reset = |ip: &'static str| {
        let app = &app;
        async move {
            app.post_json_via(
                ip,
                "/auth/password-reset/request",
                &json!({"username": "user1"}),
            )
            .await
            .status()
        }
    };
    assert_eq!(reset("192.0.2.60").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        register("192.0.2.61", "elsewhere".into()).await.status(),
        StatusCode::CREATED,
        "another address has its own budget"
    );
    for _ in 0..30 {
        assert_eq!(reset("192.0.2.62").await, StatusCode::ACCEPTED);
    }
    assert_eq!(reset("192.0.2.62").await, StatusCode::TOO_MANY_REQUESTS);
    app.advance(Duration::from_secs(60));
    assert_eq!(
        register("192.0.2.60", "one-more".into()).await.status(),
        StatusCode::CREATED,
        "the budget comes back after a minute"
    );
    app.cleanup().await;
}

on_both_backends!(
    odd_refresh_tokens_are_unknown_and_harmless,
    another_users_token_renews_only_that_users_session,
    logout_racing_refreshes_leaves_no_live_token,
    revocation_racing_rotations_leaves_no_live_token,
    forwarded_for_is_believed_only_from_trusted_proxies,
    guesses_from_many_addresses_still_hold_the_account,
    one_address_over_its_failure_budget_is_held,
    registrations_and_reset_requests_spend_the_address_budget,
    simultaneous_guesses_are_held_like_sequential_ones,
    a_database_dump_holds_no_token_or_password,
    with_a_kek_a_dump_holds_no_usable_private_key,
);

/// The server's own logs, at debug level, across a full lifecycle: no token, no password.
#[tokio::test]
async fn the_logs_never_contain_a_token_or_a_password() {
    let dir = std::env::temp_dir().join(format!("tessera-logs-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = dir.join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "debug")
        .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
        .env(
            "TESSERA_DATABASE_URL",
            format!("sqlite://{}", dir.join("t.db").display()),
        )
        .env("TESSERA_REUSE_GRACE", "0s")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut secrets = vec![PASSWORD.to_owned(), "wrong password".to_owned()];
    http.post(format!("{base}/auth/register"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/auth/login"))
        .json(&json!({"username": "alice", "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    let body: Value = json_from(
        http.post(format!("{base}/auth/login"))
            .json(&json!({"username": "alice", "password": PASSWORD, "delivery": "body"})),
    )
    .await;
    let (first, access) = (
        body["refresh_token"].as_str().unwrap().to_owned(),
        body["access_token"].as_str().unwrap().to_owned(),
    );
    secrets.extend([first.clone(), access.clone()]);
    let body: Value = json_from(
        http.post(format!("{base}/auth/refresh"))
            .json(&json!({"refresh_token": first})),
    )
    .await;
    secrets.push(body["refresh_token"].as_str().unwrap().to_owned());
    http.get(format!("{base}/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    // Reuse (grace 0 s): a security event is logged — without the token.
    let r = http
        .post(format!("{base}/auth/refresh"))
        .json(&json!({"refresh_token": first}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    http.post(format!("{base}/auth/logout"))
        .json(&json!({"refresh_token": first}))
        .send()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.contains("refresh token reuse detected"),
        "the security event is logged:\n{logs}"
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "{secret:.24}… appears in the logs"
        );
        // Nor a recognisable part of a token.
        assert!(
            !logs.contains(&secret[..secret.len().min(40)]) || secret.len() < 40,
            "part of {secret:.24}… in the logs"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

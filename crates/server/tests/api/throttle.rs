//! Login throttling under attack (issue 12, item 4): an attacker could keep a user locked out
//! forever with one wrong guess per hold, and got a budget per instance. Failures now decay
//! after 15 minutes, a device that signed in before (the `tessera_device` cookie, or
//! `device_token` with body delivery) is not held by the username's count, and the counters
//! live in the database, so instances share them.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tessera::SettingsArgs;
use tessera_core::{Clock, ManualClock, SystemClock};

use crate::helpers::*;

const DEVICE_COOKIE: &str = "__Secure-tessera_device";
const WRONG: &str = "wrong password";
const QUARTER: Duration = Duration::from_secs(15 * 60);

/// What a login presents of an earlier one.
#[derive(Clone, Copy)]
enum Device<'a> {
    None,
    Cookie(&'a str),
    Body(&'a str),
}

fn behind_proxy() -> SettingsArgs {
    SettingsArgs {
        trusted_proxies: Some("127.0.0.1".into()),
        ..SettingsArgs::default()
    }
}

async fn app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |a| *a = behind_proxy()).await
}

/// A login from client address `ip` (through the trusted proxy), presenting `device`.
async fn login(
    app: &TestApp,
    ip: &str,
    user: &str,
    password: &str,
    device: Device<'_>,
) -> Response {
    let mut body = json!({"username": user, "password": password});
    let mut request = app
        .http
        .post(app.url("/auth/login"))
        .header("x-forwarded-for", ip);
    match device {
        Device::None => {}
        Device::Cookie(token) => {
            request = request.header("cookie", format!("{DEVICE_COOKIE}={token}"));
        }
        Device::Body(token) => {
            body["delivery"] = json!("body");
            body["device_token"] = json!(token);
        }
    }
    request.json(&body).send().await.expect("request")
}

/// The device cookie a response sets: (value, attributes as written).
fn device_cookie(r: &Response) -> Option<(String, String)> {
    cookie_set(r, &[DEVICE_COOKIE])
}

/// Alice's login with her own password from client address `ip`, presenting `device`.
async fn alice_logs_in(app: &TestApp, ip: &str, device: Device<'_>) -> Response {
    login(app, ip, "alice", PASSWORD, device).await
}

/// Alice's device token from a cookie-delivery login.
async fn device_of(app: &TestApp, user: &str) -> String {
    let r = login(app, "192.0.2.200", user, PASSWORD, Device::None).await;
    assert_eq!(r.status(), StatusCode::OK);
    device_cookie(&r).expect("a device cookie").0
}

/// `n` wrong guesses presenting `device`, taking turns on `apps`, each refused with `401`;
/// `from(i)` is guess i's (client address, username).
async fn wrong_guesses(
    apps: &[&TestApp],
    n: usize,
    device: Device<'_>,
    from: impl Fn(usize) -> (String, String),
) {
    for i in 0..n {
        let (ip, user) = from(i);
        let r = login(apps[i % apps.len()], &ip, &user, WRONG, device).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
}

/// Wrong guesses at `user` from fresh addresses until the name is held.
async fn hold(app: &TestApp, user: &str) {
    wrong_guesses(&[app], 6, Device::None, |i| {
        (format!("198.51.100.{i}"), user.to_owned())
    })
    .await;
    let r = login(app, "198.51.100.99", user, PASSWORD, Device::None).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the name is held"
    );
}

/// Thirty wrong guesses from 192.0.2.50 at thirty names, taking turns on `apps`: the address's
/// budget is spent.
async fn spend_the_address(apps: &[&TestApp]) {
    wrong_guesses(apps, 30, Device::None, |i| {
        ("192.0.2.50".to_owned(), format!("user{i}"))
    })
    .await;
}

fn retry_after(r: &Response) -> Duration {
    Duration::from_secs(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap(),
    )
}

/// The finding: after the hold, one wrong guess held the account for another 900 s, so one
/// request per 15 minutes kept the rightful user out. Before the fix the right password at the
/// end was `429`: the count never decayed.
async fn a_single_guess_after_the_hold_does_not_lock_the_account_again(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    app.register("alice", PASSWORD).await;
    // Guesses from many addresses, each as soon as the last hold ends, until a long hold.
    let mut i = 0;
    loop {
        i += 1;
        let r = login(
            &app,
            &format!("198.51.100.{i}"),
            "alice",
            WRONG,
            Device::None,
        )
        .await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            let wait = retry_after(&r);
            assert!(wait <= QUARTER);
            if wait >= Duration::from_secs(256) {
                break;
            }
            app.advance(wait);
        } else {
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
    }
    // The hold ends, and the failures behind it are 15 minutes old: one more guess…
    app.advance(QUARTER);
    let r = login(&app, "198.51.100.250", "alice", WRONG, Device::None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // …does not hold the account again.
    let r = alice_logs_in(&app, "192.0.2.1", Device::None).await;
    assert_eq!(r.status(), StatusCode::OK, "the rightful user gets in");
    app.cleanup().await;
}

/// A device that signed in before logs in while an attacker holds the username; so does a body
/// client presenting its `device_token`. Before the fix there was no device token at all.
async fn a_device_that_signed_in_before_logs_in_while_the_name_is_held(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    app.register("alice", PASSWORD).await;
    let r = alice_logs_in(&app, "192.0.2.1", Device::None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (cookie, attrs) = device_cookie(&r).expect("a device cookie");
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Path=/auth",
        "Max-Age=31536000",
    ] {
        assert!(attrs.contains(attr), "{attr}: {attrs}");
    }
    let body: Value = r.json().await.unwrap();
    assert!(
        body.get("device_token").is_none(),
        "cookie delivery: not in the body"
    );
    let r = alice_logs_in(&app, "192.0.2.1", Device::Body("")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(device_cookie(&r).is_none(), "body delivery: no cookie");
    let body: Value = r.json().await.unwrap();
    let body_token = body["device_token"]
        .as_str()
        .expect("device_token")
        .to_owned();

    // The last: a second device cookie (tossed in by a sibling subdomain) neither refuses the
    // login nor hides the genuine one.
    let tossed = format!("tossed; {DEVICE_COOKIE}={cookie}");
    for (device, what) in [
        (Device::Cookie(&cookie), "the device cookie is not held"),
        (Device::Body(&body_token), "nor the body's device_token"),
        (Device::Cookie(&tossed), "each device cookie is tried"),
    ] {
        hold(&app, "alice").await;
        let r = alice_logs_in(&app, "192.0.2.1", device).await;
        assert_eq!(r.status(), StatusCode::OK, "{what}");
    }
    app.cleanup().await;
}

/// Only alice's own, untampered, unexpired device token exempts her device.
async fn another_users_a_tampered_or_an_expired_device_token_is_held(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    app.register("alice", PASSWORD).await;
    app.register("bob", PASSWORD).await;
    let alice = device_of(&app, "alice").await;
    let bob = device_of(&app, "bob").await;
    let mut tampered = alice.clone().into_bytes();
    tampered[40] = if tampered[40] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    hold(&app, "alice").await;
    for (what, token) in [("bob's", &bob), ("a tampered", &tampered)] {
        for device in [Device::Cookie(token), Device::Body(token)] {
            let r = alice_logs_in(&app, "192.0.2.1", device).await;
            assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{what} token");
        }
    }
    let r = alice_logs_in(&app, "192.0.2.1", Device::Cookie(&alice)).await;
    assert_eq!(r.status(), StatusCode::OK, "positive control: alice's own");

    // A year later her old token has expired.
    app.advance(Duration::from_secs(365 * 86_400));
    hold(&app, "alice").await;
    let r = alice_logs_in(&app, "192.0.2.1", Device::Cookie(&alice)).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "expired");
    app.cleanup().await;
}

/// The device is spared the username's count, not the address's budget; and a device token that
/// keeps failing is held itself (without touching the username's count).
async fn a_device_is_still_held_by_its_address_and_by_its_own_failures(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    app.register("alice", PASSWORD).await;
    let device = device_of(&app, "alice").await;
    spend_the_address(&[&app]).await;
    let r = alice_logs_in(&app, "192.0.2.50", Device::Cookie(&device)).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the address is spent"
    );
    let r = alice_logs_in(&app, "192.0.2.51", Device::Cookie(&device)).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "positive control: another address"
    );

    let device = device_cookie(&r).expect("a fresh device cookie").0;
    wrong_guesses(&[&app], 6, Device::Cookie(&device), |i| {
        (format!("192.0.2.{}", 60 + i), "alice".to_owned())
    })
    .await;
    let r = alice_logs_in(&app, "192.0.2.70", Device::Cookie(&device)).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the failing device is held"
    );
    let r = alice_logs_in(&app, "192.0.2.71", Device::None).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "its failures were not the name's"
    );
    app.cleanup().await;
}

/// With `TESSERA_COOKIE_SECURE=false` the device cookie follows the refresh cookie's rule: no
/// `__Secure-` prefix, no `Secure`; that name is the one read back.
async fn with_insecure_cookies_the_device_cookie_has_no_prefix_and_still_works(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |a| {
        *a = behind_proxy();
        a.cookie_secure = Some("false".into());
    })
    .await
    else {
        return;
    };
    app.register("alice", PASSWORD).await;
    let r = alice_logs_in(&app, "192.0.2.1", Device::None).await;
    let raw = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.contains("tessera_device"))
        .expect("a device cookie");
    assert!(raw.starts_with("tessera_device="), "{raw}");
    assert!(!raw.contains("Secure"), "{raw}");
    assert!(
        raw.contains("HttpOnly") && raw.contains("SameSite=Strict"),
        "{raw}"
    );
    let token = raw["tessera_device=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    hold(&app, "alice").await;
    let with = |name: &str| {
        app.http
            .post(app.url("/auth/login"))
            .header("x-forwarded-for", "192.0.2.1")
            .header("cookie", format!("{name}={token}"))
            .json(&json!({"username": "alice", "password": PASSWORD}))
            .send()
    };
    let r = with(DEVICE_COOKIE).await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "not the Secure name here"
    );
    let r = with("tessera_device").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.cleanup().await;
}

/// Instances A and B on one fresh database, sharing one clock; A owns the database.
async fn two_instances(backend: Backend) -> Option<(TestApp, TestApp)> {
    let db = Db::new(backend).await?;
    let url = db.url();
    let clock = ManualClock::new(SystemClock.now());
    let a = start_on(db, behind_proxy(), clock.clone()).await;
    let b = start_on_url(&url, behind_proxy(), clock).await;
    Some((a, b))
}

/// Before the fix each instance counted on its own: three guesses on each of two instances held
/// nothing, and an address got 30 failures a minute on each.
async fn two_instances_share_the_budgets(backend: Backend) {
    let Some((a, b)) = two_instances(backend).await else {
        return;
    };
    a.register("alice", PASSWORD).await;
    wrong_guesses(&[&a, &b], 6, Device::None, |i| {
        (format!("198.51.100.{i}"), "alice".to_owned())
    })
    .await;
    for app in [&a, &b] {
        let r = alice_logs_in(app, "198.51.100.99", Device::None).await;
        assert_eq!(
            r.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "held on {}",
            app.base
        );
    }
    spend_the_address(&[&a, &b]).await;
    for app in [&a, &b] {
        let r = login(app, "192.0.2.50", "someone", WRONG, Device::None).await;
        assert_eq!(
            r.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "spent on {}",
            app.base
        );
    }
    b.cleanup().await;
    a.cleanup().await;
}

/// Forty simultaneous guesses, half on each instance, each from an address of its own: counted
/// one after the other in the database, so exactly six get a password check. Before the fix
/// each instance let six through.
async fn simultaneous_guesses_on_two_instances_are_held_like_sequential_ones(backend: Backend) {
    let Some((a, b)) = two_instances(backend).await else {
        return;
    };
    a.register("alice", PASSWORD).await;
    let (a, b) = (Arc::new(a), Arc::new(b));
    let guesses: Vec<_> = (0..40u8)
        .map(|i| {
            let app = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                login(
                    &app,
                    &format!("198.51.100.{i}"),
                    "alice",
                    WRONG,
                    Device::None,
                )
                .await
                .status()
            })
        })
        .collect();
    let mut answers = Vec::new();
    for guess in guesses {
        answers.push(guess.await.unwrap());
    }
    let count = |s: StatusCode| answers.iter().filter(|a| **a == s).count();
    assert_eq!(
        (
            count(StatusCode::UNAUTHORIZED),
            count(StatusCode::TOO_MANY_REQUESTS)
        ),
        (6, 34),
        "five free failures, the sixth starts the hold"
    );
    let (a, b) = (Arc::into_inner(a).unwrap(), Arc::into_inner(b).unwrap());
    b.cleanup().await;
    a.cleanup().await;
}

/// Counters that hold nothing back any more are deleted by the cleanup job, and the gauge
/// follows the database.
async fn the_cleanup_job_forgets_quiet_counters(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    login(&app, "192.0.2.9", "nobody", WRONG, Device::None).await;
    assert_eq!(app.tessera.throttle_tracked().await.unwrap(), (1, 1));
    app.advance(QUARTER);
    app.tessera
        .purge_ended_sessions(Duration::from_secs(86_400))
        .await
        .unwrap();
    assert_eq!(
        app.tessera.throttle_tracked().await.unwrap(),
        (1, 1),
        "not yet quiet"
    );
    app.advance(Duration::from_millis(1));
    app.tessera
        .purge_ended_sessions(Duration::from_secs(86_400))
        .await
        .unwrap();
    assert_eq!(app.tessera.throttle_tracked().await.unwrap(), (0, 0));
    app.cleanup().await;
}

on_both_backends!(
    a_single_guess_after_the_hold_does_not_lock_the_account_again,
    a_device_that_signed_in_before_logs_in_while_the_name_is_held,
    another_users_a_tampered_or_an_expired_device_token_is_held,
    a_device_is_still_held_by_its_address_and_by_its_own_failures,
    with_insecure_cookies_the_device_cookie_has_no_prefix_and_still_works,
    two_instances_share_the_budgets,
    simultaneous_guesses_on_two_instances_are_held_like_sequential_ones,
    the_cleanup_job_forgets_quiet_counters,
);

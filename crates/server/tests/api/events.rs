//! Events (webhooks): what each action writes to the outbox, and how the sender delivers it to a
//! receiver running in the test (an axum server that records every request and answers as the
//! test says). Signatures are checked here with an HMAC computed independently of the server;
//! `interop/webhooks/run.sh` checks them with the official `standardwebhooks` library.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::webhooks::{Webhook, spawn_sender};
use tessera_core::events::{EventState, GIVE_UP_AFTER, WebhookSecret};
use tessera_token::dpop_testing::ProofKey;

use crate::helpers::*;

/// 24 bytes, as `whsec_…`.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    id: String,
    timestamp: String,
    signature: String,
    raw: String,
    body: Value,
}

/// A webhook receiver: `POST /hook` records and answers the next queued status (204 when none
/// is queued); `POST /elsewhere` records too, so a followed redirect would show.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start() -> Self {
        let got = Arc::new(Mutex::new(Vec::<Received>::new()));
        let answers = Arc::new(Mutex::new(VecDeque::<u16>::new()));
        let record = {
            let (got, answers) = (got.clone(), answers.clone());
            move |uri: axum::http::Uri, headers: HeaderMap, raw: String| {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                got.lock().unwrap().push(Received {
                    path: uri.path().to_owned(),
                    id: header("webhook-id"),
                    timestamp: header("webhook-timestamp"),
                    signature: header("webhook-signature"),
                    body: serde_json::from_str(&raw).unwrap_or(Value::Null),
                    raw,
                });
                let status = answers.lock().unwrap().pop_front().unwrap_or(204);
                let mut response = axum::response::Response::new(axum::body::Body::empty());
                *response.status_mut() = AxumStatus::from_u16(status).unwrap();
                if (300..400).contains(&status) {
                    response
                        .headers_mut()
                        .insert("location", "/elsewhere".parse().unwrap());
                }
                async move { response }
            }
        };
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(record.clone()))
            .route("/elsewhere", axum::routing::post(record));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            url,
            got,
            answers,
            task,
        }
    }

    fn answer(&self, statuses: &[u16]) {
        self.answers.lock().unwrap().extend(statuses);
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (polling; generous for slow builds) until `done` holds for what arrived.
    async fn wait_until(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.got();
            if done(&got) {
                return got;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "waited in vain for {what}; got {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until an event of `kind` whose data has `key` = `value` has arrived; returns it.
    async fn event(&self, kind: &str, key: &str, value: &str) -> Received {
        let matches = |r: &Received| r.body["type"] == kind && r.body["data"][key] == value;
        let got = self
            .wait_until(&format!("{kind} with {key}={value}"), |got| {
                got.iter().any(matches)
            })
            .await;
        got.into_iter().find(matches).unwrap()
    }
}

/// Starts the app's sender towards `receiver`, looking for due events every 20 ms.
fn send_to(app: &TestApp, receiver: &Receiver) -> tokio::task::JoinHandle<()> {
    spawn_sender(
        app.tessera.clone(),
        Webhook {
            url: receiver.url.parse().unwrap(),
            secret: WebhookSecret::parse(SECRET).unwrap(),
            poll: Duration::from_millis(20),
        },
    )
    .unwrap()
}

/// The signature the Standard Webhooks format asks for, computed here from the secret's bytes.
fn expected_signature(r: &Received) -> String {
    let key = STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap();
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let signed = format!("{}.{}.{}", r.id, r.timestamp, r.raw);
    format!(
        "v1,{}",
        STANDARD.encode(hmac::sign(&key, signed.as_bytes()).as_ref())
    )
}

/// Waits until the app's outbox satisfies `done`; returns it (newest first).
async fn outbox_until(
    app: &TestApp,
    what: &str,
    done: impl Fn(&[tessera_core::events::StoredEvent]) -> bool,
) -> Vec<tessera_core::events::StoredEvent> {
    let started = Instant::now();
    loop {
        let events = app.tessera.events(None, 1000).await.unwrap();
        if done(&events) {
            return events;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "waited in vain for {what}; the outbox holds {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ids_of(got: &[Received], kind: &str) -> Vec<String> {
    got.iter()
        .filter(|r| r.body["type"] == kind)
        .map(|r| r.id.clone())
        .collect()
}

async fn every_action_reaches_the_receiver_signed_with_its_data(backend: Backend) {
    let Some(app) = spawn_admin_app(backend).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let sender = send_to(&app, &receiver);

    // session.created: who, from where, with which client.
    app.register("alice", PASSWORD).await;
    let r = app
        .http
        .post(app.url("/auth/login"))
        .header("user-agent", "EventsTest/1.0")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let first = session_of(r).await;
    let user_id = app.user_id("alice").await;
    let created = receiver
        .event("session.created", "session_id", &first.sid)
        .await;
    assert_eq!(created.path, "/hook");
    assert!(created.id.starts_with("msg_"), "{created:?}");
    assert_eq!(created.signature, expected_signature(&created));
    let sent_at: i64 = created.timestamp.parse().unwrap();
    assert!((sent_at - app.tessera.now().as_secs()).abs() <= 5);
    assert_eq!(created.body["data"]["user_id"], user_id);
    assert_eq!(created.body["data"]["username"], "alice");
    assert_eq!(created.body["data"]["user_agent"], "EventsTest/1.0");
    assert_eq!(created.body["data"]["ip"], "127.0.0.1");
    assert_eq!(created.body["data"]["client_id"], "tessera");
    assert!(
        time::OffsetDateTime::parse(
            created.body["timestamp"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );

    // A reused refresh token: session.reuse_detected, then session.revoked (reused).
    let r = app.refresh_with_cookie(&first.refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    app.advance(Duration::from_secs(60));
    let r = app.refresh_with_cookie(&first.refresh).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    receiver
        .event("session.reuse_detected", "session_id", &first.sid)
        .await;
    let revoked = receiver
        .event("session.revoked", "session_id", &first.sid)
        .await;
    assert_eq!(revoked.body["data"]["reason"], "reused");
    assert_eq!(revoked.body["data"]["user_id"], user_id);

    // Logout, and a password change ending the other sessions.
    let a = app.another_device("alice").await;
    let r = app.logout_with_cookie(&a.refresh).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let logout = receiver
        .event("session.revoked", "session_id", &a.sid)
        .await;
    assert_eq!(logout.body["data"]["reason"], "logout");
    let (b, c) = (
        app.another_device("alice").await,
        app.another_device("alice").await,
    );
    let r = app.change_password(&b.access, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let changed = receiver
        .event("user.password_changed", "user_id", &user_id)
        .await;
    assert_eq!(changed.body["data"]["via"], "change");
    let ended = receiver
        .event("session.revoked", "session_id", &c.sid)
        .await;
    assert_eq!(ended.body["data"]["reason"], "password_changed");

    // A reset request hands over a token that works; only this event carries a secret.
    let r = app
        .post_json(
            "/auth/password-reset/request",
            &json!({"username": "ALICE"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let requested = receiver
        .event("user.password_reset_requested", "user_id", &user_id)
        .await;
    let token = requested.body["data"]["token"].as_str().unwrap().to_owned();
    assert_eq!(requested.body["data"]["username"], "alice");
    assert!(requested.body["data"]["expires_at"].is_string());
    let r = app
        .post_json(
            "/auth/password-reset/request",
            &json!({"username": "nobody-here"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        app.reset_password(&token, PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    let reset = receiver
        .wait_until("the reset's user.password_changed", |got| {
            got.iter().any(|r| {
                r.body["type"] == "user.password_changed" && r.body["data"]["via"] == "reset"
            })
        })
        .await;
    let ended = receiver
        .event("session.revoked", "session_id", &b.sid)
        .await;
    assert_eq!(ended.body["data"]["reason"], "password_changed");
    for r in reset
        .iter()
        .filter(|r| r.body["type"] != "user.password_reset_requested")
    {
        assert!(
            !r.raw.contains(&token) && r.body["data"].get("token").is_none(),
            "{r:?}"
        );
    }
    assert_eq!(
        ids_of(&reset, "user.password_reset_requested").len(),
        1,
        "an unknown username makes no event"
    );

    let d = app.another_device("alice").await;
    // An operator disables, then deletes: user.disabled with a session.revoked (admin) per
    // session, then user.deleted.
    let r = app
        .admin(reqwest::Method::POST, &format!("/users/{user_id}/disable"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    receiver.event("user.disabled", "user_id", &user_id).await;
    let ended = receiver
        .event("session.revoked", "session_id", &d.sid)
        .await;
    assert_eq!(ended.body["data"]["reason"], "admin");
    let r = app
        .admin(reqwest::Method::DELETE, &format!("/users/{user_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    receiver.event("user.deleted", "user_id", &user_id).await;

    // Every event arrived once (the receiver said 204 to each), each id its own, each signed.
    let got = receiver.got();
    let mut ids: Vec<_> = got.iter().map(|r| r.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "no event sent twice: {got:#?}");
    for r in &got {
        assert_eq!(r.signature, expected_signature(r), "{r:?}");
    }
    sender.abort();
    app.cleanup().await;
}

async fn a_throttled_login_is_one_event_per_hold(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.register("bob", PASSWORD).await;
    let mut refused = 0;
    for _ in 0..30 {
        let r = app.login("bob", "wrong password!").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
            if refused == 5 {
                break;
            }
        }
    }
    assert_eq!(refused, 5, "the throttle held the name");
    // Names sprayed from the same address until its budget holds it too: still that one event.
    let mut sprayed_refusals = 0;
    for i in 0..40 {
        let r = app.login(&format!("guess{i}"), "wrong password!").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            sprayed_refusals += 1;
        }
    }
    assert!(sprayed_refusals > 0, "the address's budget held it");
    let throttled: Vec<_> = app
        .tessera
        .events(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.kind.as_str() == "login.throttled")
        .collect();
    assert_eq!(
        throttled.len(),
        1,
        "refusals of one hold, by name or by address: one event"
    );
    let data: Value = serde_json::from_str(&throttled[0].event.data).unwrap();
    assert_eq!(data["username"], "bob");
    assert!(data["retry_after"].as_u64().unwrap() > 0);
    app.cleanup().await;
}

async fn a_failing_receiver_gets_retries_with_one_webhook_id_until_it_accepts(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.answer(&[500, 503]);
    let retries_before = app
        .metric("tessera_webhook_deliveries_total{outcome=\"retry\"}")
        .await;
    let sender = send_to(&app, &receiver);
    app.signed_in("carol").await;
    receiver
        .wait_until("a first attempt", |g| g.len() == 1)
        .await;
    // The next attempt is due within 10 s on the service's clock: nothing comes before.
    let pending = outbox_until(&app, "the first failure recorded", |e| {
        e.len() == 1 && e[0].last_error.is_some()
    })
    .await;
    assert_eq!(pending[0].state, EventState::Pending);
    let due = pending[0].next_attempt_at;
    assert!(due.since(app.tessera.now()) <= Duration::from_secs(10));
    assert_eq!(pending[0].last_error.as_deref(), Some("HTTP 500"));
    app.advance(Duration::from_secs(10));
    receiver
        .wait_until("a second attempt", |g| g.len() == 2)
        .await;
    app.advance(Duration::from_secs(20));
    let got = receiver
        .wait_until("the third attempt", |g| g.len() == 3)
        .await;
    assert!(
        got.iter().all(|r| r.id == got[0].id),
        "one webhook-id: {got:#?}"
    );
    assert!(got.iter().all(|r| r.raw == got[0].raw), "one body");
    let delivered = outbox_until(&app, "the delivery recorded", |e| {
        e[0].state == EventState::Delivered
    })
    .await;
    assert_eq!(delivered[0].attempts, 3);
    assert!(
        app.metric("tessera_webhook_deliveries_total{outcome=\"retry\"}")
            .await
            >= retries_before + 2.0
    );
    assert_eq!(app.tessera.event_backlog().await.unwrap().pending, 0);
    sender.abort();
    app.cleanup().await;
}

async fn a_redirect_is_not_followed_and_a_day_of_failures_marks_the_event_failed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.answer(&[307, 308]);
    let sender = send_to(&app, &receiver);
    app.signed_in("dave").await;
    receiver
        .wait_until("a first attempt", |g| !g.is_empty())
        .await;
    app.advance(Duration::from_secs(10));
    let got = receiver
        .wait_until("a second attempt", |g| g.len() >= 2)
        .await;
    assert!(
        got.iter().all(|r| r.path == "/hook"),
        "the redirect was not followed: {got:#?}"
    );
    let event = outbox_until(&app, "the second failure recorded", |e| {
        e[0].last_error.as_deref() == Some("HTTP 308")
    })
    .await
    .remove(0);
    assert_eq!(event.state, EventState::Pending);
    assert_eq!(app.tessera.event_backlog().await.unwrap().pending, 1);
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    for gauge in [
        "tessera_events_pending",
        "tessera_events_oldest_pending_age_seconds",
        "tessera_events_failed",
    ] {
        assert!(text.contains(&format!("\n{gauge} ")), "{gauge} in /metrics");
    }

    // A day later the receiver still fails: the next attempt is the last, and the event stays,
    // failed, until an operator retries it.
    receiver.answer(&[500]);
    app.advance(GIVE_UP_AFTER);
    let attempts = got.len();
    receiver
        .wait_until("the last attempt", |g| g.len() == attempts + 1)
        .await;
    let failed = outbox_until(&app, "the event given up on", |e| {
        e[0].state == EventState::Failed
    })
    .await;
    assert_eq!(failed[0].event.id, event.event.id);
    assert_eq!(app.tessera.event_backlog().await.unwrap().failed, 1);
    app.advance(Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        receiver.got().len(),
        attempts + 1,
        "a failed event is not sent"
    );

    app.tessera.retry_event(event.event.id).await.unwrap();
    let got = receiver
        .wait_until("the retried event", |g| g.len() == attempts + 2)
        .await;
    assert_eq!(got.last().unwrap().id, got[0].id);
    outbox_until(&app, "the retried event delivered", |e| {
        e[0].state == EventState::Delivered
    })
    .await;
    // Delivered events go with the cleanup after the retention; failed ones would stay.
    assert_eq!(
        app.tessera
            .purge_events(Duration::from_secs(60))
            .await
            .unwrap(),
        0
    );
    app.advance(Duration::from_secs(120));
    assert_eq!(
        app.tessera
            .purge_events(Duration::from_secs(60))
            .await
            .unwrap(),
        1
    );
    sender.abort();
    app.cleanup().await;
}

async fn two_instances_deliver_each_event_once(backend: Backend) {
    let Some(first) = spawn_app(backend).await else {
        return;
    };
    let second = start_on_url(
        &first.db.as_ref().unwrap().url(),
        Default::default(),
        first.clock.clone(),
    )
    .await;
    let receiver = Receiver::start().await;
    let senders = [send_to(&first, &receiver), send_to(&second, &receiver)];
    for i in 0..20 {
        let app = if i % 2 == 0 { &first } else { &second };
        app.signed_in(&format!("user{i}")).await;
    }
    let got = receiver
        .wait_until("twenty logins' events", |g| g.len() >= 20)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut ids: Vec<_> = receiver.got().into_iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 20, "{got:#?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "each event sent once");
    for s in senders {
        s.abort();
    }
    second.cleanup().await;
    first.cleanup().await;
}

/// A refresh token used with another key's proof: `session.dpop_mismatch`, naming both keys,
/// and the session goes on.
async fn a_dpop_mismatch_reaches_the_receiver(backend: Backend) {
    let Some(app) = spawn_admin_app(backend).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let sender = send_to(&app, &receiver);
    app.register("dora", PASSWORD).await;
    let issuer = app.tessera.settings().issuer.clone();
    let now = || app.tessera.now().as_secs();
    let (key, thief) = (ProofKey::es256(), ProofKey::es256());
    let r = app
        .http
        .post(app.url("/auth/login"))
        .header(
            "dpop",
            key.proof("POST", &format!("{issuer}/auth/login"), now(), None),
        )
        .json(&json!({"username": "dora", "password": PASSWORD, "delivery": "body"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let refresh = |proof: String| {
        app.http
            .post(app.url("/auth/refresh"))
            .header("dpop", proof)
            .json(&json!({"refresh_token": body["refresh_token"]}))
            .send()
    };
    let url = format!("{issuer}/auth/refresh");
    let r = refresh(thief.proof("POST", &url, now(), None))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let sid = body["session_id"].as_str().unwrap();
    let mismatch = receiver
        .event("session.dpop_mismatch", "session_id", sid)
        .await;
    assert_eq!(mismatch.body["data"]["jkt"], key.thumbprint());
    assert_eq!(mismatch.body["data"]["presented_jkt"], thief.thumbprint());
    assert_eq!(mismatch.body["data"]["user_id"], app.user_id("dora").await);
    let r = refresh(key.proof("POST", &url, now(), None)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the rightful holder goes on");
    sender.abort();
    app.cleanup().await;
}

on_both_backends!(
    every_action_reaches_the_receiver_signed_with_its_data,
    a_throttled_login_is_one_event_per_hold,
    a_failing_receiver_gets_retries_with_one_webhook_id_until_it_accepts,
    a_redirect_is_not_followed_and_a_day_of_failures_marks_the_event_failed,
    two_instances_deliver_each_event_once,
    a_dpop_mismatch_reaches_the_receiver,
);

//! DPoP (RFC 9449): sessions bound to a key the client holds. Every refused proof sits beside a
//! positive control: the same request with an honest proof passes.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tessera::SettingsArgs;
use tessera_core::{ClientKind, Clock, ManualClock, SystemClock};
use tessera_token::dpop_testing::{self, ProofKey, b64};

use crate::helpers::*;

/// The URL of `path` as a proof names it: the issuer's origin plus the path.
fn url(app: &TestApp, path: &str) -> String {
    format!("{}{path}", app.tessera.settings().issuer)
}

/// Honest claims: fresh `jti`, `iat` now by the server's clock.
fn claims(app: &TestApp, method: &str, path: &str) -> Value {
    dpop_testing::claims(method, &url(app, path), app.clock.now().as_secs(), None)
}

/// An honest proof for `method` on the issuer's `path`.
fn proof(key: &ProofKey, app: &TestApp, method: &str, path: &str) -> String {
    key.sign(&key.header(), &claims(app, method, path))
}

/// An honest proof for a resource request carrying `access`.
fn proof_for(key: &ProofKey, app: &TestApp, method: &str, path: &str, access: &str) -> String {
    let now = app.clock.now().as_secs();
    key.proof(method, &url(app, path), now, Some(access))
}

async fn login_with(app: &TestApp, username: &str, proofs: &[&str]) -> Response {
    login_body(
        app,
        &json!({"username": username, "password": PASSWORD, "delivery": "body"}),
        proofs,
    )
    .await
}

async fn login_body(app: &TestApp, body: &Value, proofs: &[&str]) -> Response {
    let mut r = app.http.post(app.url("/auth/login")).json(body);
    for p in proofs {
        r = r.header("dpop", *p);
    }
    r.send().await.unwrap()
}

/// A refresh of `token` with an honest proof by `key`.
async fn refresh_proved(app: &TestApp, key: &ProofKey, token: &str) -> Response {
    refresh_with(app, token, Some(&proof(key, app, "POST", "/auth/refresh"))).await
}

async fn refresh_with(app: &TestApp, token: &str, proof: Option<&str>) -> Response {
    let mut r = app
        .http
        .post(app.url("/auth/refresh"))
        .json(&json!({"refresh_token": token}));
    if let Some(p) = proof {
        r = r.header("dpop", p);
    }
    r.send().await.unwrap()
}

async fn me(app: &TestApp, authorization: &str, proof: Option<&str>) -> Response {
    let mut r = app
        .http
        .get(app.url("/auth/me"))
        .header("authorization", authorization);
    if let Some(p) = proof {
        r = r.header("dpop", p);
    }
    r.send().await.unwrap()
}

/// Access token, refresh token and token type of a `200` token answer.
async fn tokens(r: Response) -> (String, String, String) {
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let s = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
    (s("access_token"), s("refresh_token"), s("token_type"))
}

async fn refused(r: Response, status: StatusCode, code: &str) -> Value {
    let (got, body) = error_of(r).await;
    assert_eq!(
        (got, body["error"].as_str().unwrap()),
        (status, code),
        "{body}"
    );
    body
}

async fn bound_login(app: &TestApp, key: &ProofKey, username: &str) -> (String, String) {
    app.register(username, PASSWORD).await;
    let (access, refresh, kind) =
        tokens(login_with(app, username, &[&proof(key, app, "POST", "/auth/login")]).await).await;
    assert_eq!(kind, "DPoP");
    (access, refresh)
}

async fn a_bound_session_refreshes_and_calls_only_with_its_key(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let key = ProofKey::es256();
    let (access, refresh) = bound_login(&app, &key, "alice").await;
    assert_eq!(
        jwt_part(&access, 1)["cnf"],
        json!({"jkt": key.thumbprint()})
    );

    // The access token: only as DPoP, with a proof by the key carrying its hash.
    let good = proof_for(&key, &app, "GET", "/auth/me", &access);
    assert_eq!(
        me(&app, &format!("DPoP {access}"), Some(&good))
            .await
            .status(),
        StatusCode::OK
    );
    let r = me(&app, &format!("Bearer {access}"), None).await;
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.starts_with("DPoP error=\"invalid_token\""),
        "{challenge}"
    );
    assert!(challenge.contains("algs=\"ES256 EdDSA\""), "{challenge}");
    refused(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let without_ath = proof(&key, &app, "GET", "/auth/me");
    let other_ath = proof_for(&key, &app, "GET", "/auth/me", "another.access.token");
    let other_key = proof_for(&ProofKey::es256(), &app, "GET", "/auth/me", &access);
    for (why, proof) in [
        ("no proof", None),
        ("no ath", Some(without_ath.as_str())),
        ("ath of another token", Some(other_ath.as_str())),
        ("another key", Some(other_key.as_str())),
        ("replayed", Some(good.as_str())),
    ] {
        let r = me(&app, &format!("DPoP {access}"), proof).await;
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(
            challenge.starts_with("DPoP error=\"invalid_dpop_proof\""),
            "{why}: {challenge}"
        );
        refused(r, StatusCode::UNAUTHORIZED, "invalid_dpop_proof").await;
    }

    // The refresh token: a missing proof or one by another key changes nothing.
    refused(
        refresh_with(&app, &refresh, None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
    )
    .await;
    let wrong_url = proof(&key, &app, "POST", "/auth/login");
    refused(
        refresh_with(&app, &refresh, Some(&wrong_url)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
    )
    .await;
    let before = app.metric("tessera_dpop_mismatch_total").await;
    let thief = proof(&ProofKey::es256(), &app, "POST", "/auth/refresh");
    let body = refused(
        refresh_with(&app, &refresh, Some(&thief)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_eq!(body["reason"], "dpop_mismatch");
    assert!(app.metric("tessera_dpop_mismatch_total").await >= before + 1.0);
    // … and `session.dpop_mismatch` is in the outbox, naming both keys.
    let events = app.tessera.store().events(None, 100).await.unwrap();
    let mismatch = events
        .iter()
        .find(|e| e.event.kind.as_str() == "session.dpop_mismatch")
        .expect("a session.dpop_mismatch event");
    let data: Value = serde_json::from_str(&mismatch.event.data).unwrap();
    assert_eq!(data["session_id"], jwt_part(&access, 1)["sid"]);
    assert_eq!(data["jkt"], key.thumbprint());
    assert!(data["presented_jkt"].is_string() && data["presented_jkt"] != data["jkt"]);
    // The rightful holder: the same token still works, with the key.
    let (access2, refresh2, kind) = tokens(refresh_proved(&app, &key, &refresh).await).await;
    assert_eq!(kind, "DPoP");
    assert_eq!(jwt_part(&access2, 1)["cnf"]["jkt"], key.thumbprint());
    assert_ne!(refresh2, refresh);
    // An unbound session's refresh ignores a proof, and its tokens stay Bearer.
    let (_, plain) = {
        app.register("bob", PASSWORD).await;
        let (a, r, kind) = tokens(login_with(&app, "bob", &[]).await).await;
        assert_eq!(kind, "Bearer");
        assert!(jwt_part(&a, 1).get("cnf").is_none());
        (a, r)
    };
    let (plain_access, _, kind) = tokens(refresh_proved(&app, &key, &plain).await).await;
    assert_eq!(kind, "Bearer");
    let r = me(
        &app,
        &format!("DPoP {plain_access}"),
        Some(&proof_for(&key, &app, "GET", "/auth/me", &plain_access)),
    )
    .await;
    refused(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
    app.cleanup().await;
}

async fn proof_attacks_at_login_are_refused_beside_a_positive_control(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.register("carol", PASSWORD).await;
    let key = ProofKey::es256();
    let other = ProofKey::es256();
    let now = app.clock.now().as_secs();
    let with_claims = |f: &dyn Fn(&mut Value)| {
        let mut c = claims(&app, "POST", "/auth/login");
        f(&mut c);
        key.sign(&key.header(), &c)
    };
    let with_header = |f: &dyn Fn(&mut Value)| {
        let mut h = key.header();
        f(&mut h);
        key.sign(&h, &claims(&app, "POST", "/auth/login"))
    };
    let issuer = app.tessera.settings().issuer.clone();
    let host_swapped = issuer.replace("127.0.0.1", "evil.test");
    let unsigned = |alg: &str, signature: &[u8]| {
        let mut h = key.header();
        h["alg"] = json!(alg);
        let signed = format!(
            "{}.{}",
            b64(h.to_string()),
            b64(claims(&app, "POST", "/auth/login").to_string())
        );
        let sig = match alg {
            "HS256" => aws_lc_rs::hmac::sign(
                &aws_lc_rs::hmac::Key::new(
                    aws_lc_rs::hmac::HMAC_SHA256,
                    key.jwk().to_string().as_bytes(),
                ),
                signed.as_bytes(),
            )
            .as_ref()
            .to_vec(),
            _ => signature.to_vec(),
        };
        format!("{signed}.{}", b64(sig))
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("htm GET", vec![with_claims(&|c| c["htm"] = json!("GET"))]),
        (
            "htu of another host",
            vec![with_claims(&|c| {
                c["htu"] = json!(format!("{host_swapped}/auth/login"))
            })],
        ),
        (
            "htu of another scheme",
            vec![with_claims(&|c| {
                c["htu"] = json!(format!(
                    "{}/auth/login",
                    issuer.replace("http://", "https://")
                ))
            })],
        ),
        (
            "htu of another path",
            vec![with_claims(&|c| {
                c["htu"] = json!(format!("{issuer}/auth/refresh"))
            })],
        ),
        (
            "htu with a query",
            vec![with_claims(&|c| {
                c["htu"] = json!(format!("{issuer}/auth/login?x=1"))
            })],
        ),
        (
            "stale iat",
            vec![with_claims(&|c| c["iat"] = json!(now - 71))],
        ),
        (
            "future iat",
            vec![with_claims(&|c| c["iat"] = json!(now + 10))],
        ),
        (
            "no jti",
            vec![with_claims(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            })],
        ),
        ("alg none", vec![unsigned("none", b"")]),
        ("HS256 keyed with the jwk", vec![unsigned("HS256", b"")]),
        ("typ JWT", vec![with_header(&|h| h["typ"] = json!("JWT"))]),
        (
            "private member d",
            vec![with_header(&|h| h["jwk"]["d"] = json!(b64([7u8; 32])))],
        ),
        (
            "signed by another key",
            vec![other.sign(&key.header(), &claims(&app, "POST", "/auth/login"))],
        ),
        (
            "two DPoP headers",
            vec![
                proof(&key, &app, "POST", "/auth/login"),
                proof(&key, &app, "POST", "/auth/login"),
            ],
        ),
        ("a 100 KB proof", vec!["e".repeat(100 * 1024)]),
    ];
    for (why, proofs) in cases {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let r = login_with(&app, "carol", &proofs).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{why}");
        refused(r, StatusCode::BAD_REQUEST, "invalid_dpop_proof").await;
    }
    // The control, then the very same proof again: a replay.
    let honest = proof(&key, &app, "POST", "/auth/login");
    let (access, _, kind) = tokens(login_with(&app, "carol", &[&honest]).await).await;
    assert_eq!(
        (kind.as_str(), jwt_part(&access, 1)["cnf"]["jkt"].as_str()),
        ("DPoP", Some(key.thumbprint().as_str()))
    );
    refused(
        login_with(&app, "carol", &[&honest]).await,
        StatusCode::BAD_REQUEST,
        "invalid_dpop_proof",
    )
    .await;
    // Inside the window: 60 s plus the 5 s leeway in the past, the leeway in the future.
    for iat in [now - 64, now + 4] {
        let p = with_claims(&|c| c["iat"] = json!(iat));
        assert_eq!(
            login_with(&app, "carol", &[&p]).await.status(),
            StatusCode::OK,
            "iat {iat}"
        );
    }
    app.cleanup().await;
}

/// Both instances sign as this issuer, so one proof's `htu` is right on either.
const ISSUER: &str = "http://tessera.test";

async fn a_proof_accepted_by_one_instance_is_refused_by_another(backend: Backend) {
    let Some(db) = Db::new(backend).await else {
        return;
    };
    let url = db.url();
    let settings = || SettingsArgs {
        issuer: Some(ISSUER.into()),
        ..SettingsArgs::default()
    };
    let clock = ManualClock::new(SystemClock.now());
    let a = start_on(db, settings(), clock.clone()).await;
    let b = start_on_url(&url, settings(), clock).await;
    a.register("dave", PASSWORD).await;
    let key = ProofKey::es256();
    let login = proof(&key, &a, "POST", "/auth/login");
    let (_, refresh, _) = tokens(login_with(&a, "dave", &[&login]).await).await;
    refused(
        login_with(&b, "dave", &[&login]).await,
        StatusCode::BAD_REQUEST,
        "invalid_dpop_proof",
    )
    .await;
    let used = proof(&key, &a, "POST", "/auth/refresh");
    let (_, next, _) = tokens(refresh_with(&a, &refresh, Some(&used)).await).await;
    refused(
        refresh_with(&b, &next, Some(&used)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
    )
    .await;
    // The control: a fresh proof on B.
    assert_eq!(
        refresh_proved(&b, &key, &next).await.status(),
        StatusCode::OK
    );
    b.cleanup().await;
    a.cleanup().await;
}

async fn with_nonces_a_proof_needs_a_current_server_nonce(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |a| a.dpop_nonce = Some("true".into())).await else {
        return;
    };
    app.register("erin", PASSWORD).await;
    let key = ProofKey::es256();
    let nonce_of = |r: &Response| r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let r = login_with(&app, "erin", &[&proof(&key, &app, "POST", "/auth/login")]).await;
    let nonce = nonce_of(&r);
    refused(r, StatusCode::BAD_REQUEST, "use_dpop_nonce").await;
    let with_nonce = |path: &str, nonce: &str| {
        let mut c = claims(&app, "POST", path);
        c["nonce"] = json!(nonce);
        key.sign(&key.header(), &c)
    };
    let forged = with_nonce("/auth/login", &b64([0u8; 24]));
    refused(
        login_with(&app, "erin", &[&forged]).await,
        StatusCode::BAD_REQUEST,
        "use_dpop_nonce",
    )
    .await;
    let r = login_with(&app, "erin", &[&with_nonce("/auth/login", &nonce)]).await;
    assert!(!nonce_of(&r).is_empty());
    let (_, refresh, _) = tokens(r).await;
    // A refresh: without a nonce, refused with one to use; with it, rotated.
    let r = refresh_proved(&app, &key, &refresh).await;
    let nonce = nonce_of(&r);
    refused(r, StatusCode::UNAUTHORIZED, "use_dpop_nonce").await;
    app.advance(std::time::Duration::from_secs(30));
    let (_, refresh, _) =
        tokens(refresh_with(&app, &refresh, Some(&with_nonce("/auth/refresh", &nonce))).await)
            .await;
    // Two minutes on, the nonce is stale.
    app.advance(std::time::Duration::from_secs(120));
    refused(
        refresh_with(&app, &refresh, Some(&with_nonce("/auth/refresh", &nonce))).await,
        StatusCode::UNAUTHORIZED,
        "use_dpop_nonce",
    )
    .await;
    app.cleanup().await;
}

async fn required_refuses_unbound_logins_and_off_ignores_proofs(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |a| a.dpop = Some("required".into())).await else {
        return;
    };
    app.register("frank", PASSWORD).await;
    refused(
        login_with(&app, "frank", &[]).await,
        StatusCode::BAD_REQUEST,
        "invalid_dpop_proof",
    )
    .await;
    let key = ProofKey::es256();
    let (_, _, kind) =
        tokens(login_with(&app, "frank", &[&proof(&key, &app, "POST", "/auth/login")]).await).await;
    assert_eq!(kind, "DPoP");
    app.cleanup().await;

    let Some(app) = spawn_app_with(backend, |a| a.dpop = Some("off".into())).await else {
        return;
    };
    app.register("frank", PASSWORD).await;
    let (access, _, kind) = tokens(login_with(&app, "frank", &["not even a proof"]).await).await;
    assert_eq!(kind, "Bearer");
    assert_eq!(
        app.get_with("/auth/me", &access).await.status(),
        StatusCode::OK
    );
    let meta: Value = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert!(
        meta.get("dpop_signing_alg_values_supported").is_none(),
        "{meta}"
    );
    app.cleanup().await;
}

async fn the_token_endpoint_checks_the_binding_and_introspection_shows_it(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (spa, _) = app
        .tessera
        .add_client("spa", ClientKind::Public)
        .await
        .unwrap();
    let (rs, secret) = app
        .tessera
        .add_client("api", ClientKind::Confidential)
        .await
        .unwrap();
    let secret = secret.unwrap().expose().to_owned();
    app.register("grace", PASSWORD).await;
    let key = ProofKey::es256();
    let body =
        json!({"username": "grace", "password": PASSWORD, "delivery": "body", "client_id": spa.id});
    let (access, refresh, _) =
        tokens(login_body(&app, &body, &[&proof(&key, &app, "POST", "/auth/login")]).await).await;
    let token = |proof: Option<String>| {
        let app = &app;
        let form = format!(
            "grant_type=refresh_token&client_id={}&refresh_token={refresh}",
            spa.id
        );
        async move {
            let mut r = app
                .http
                .post(app.url("/oauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form);
            if let Some(p) = proof {
                r = r.header("dpop", p);
            }
            r.send().await.unwrap()
        }
    };
    refused(
        token(None).await,
        StatusCode::BAD_REQUEST,
        "invalid_dpop_proof",
    )
    .await;
    let body = refused(
        token(Some(proof(
            &ProofKey::es256(),
            &app,
            "POST",
            "/oauth/token",
        )))
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["reason"], "dpop_mismatch");
    let (_, _, kind) = tokens(token(Some(proof(&key, &app, "POST", "/oauth/token"))).await).await;
    assert_eq!(kind, "DPoP");

    let r = app
        .http
        .post(app.url("/oauth/introspect"))
        .basic_auth(&rs.id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={access}"))
        .send()
        .await
        .unwrap();
    let found: Value = r.json().await.unwrap();
    assert_eq!(found["active"], true, "{found}");
    assert_eq!(found["token_type"], "DPoP");
    assert_eq!(found["cnf"], json!({"jkt": key.thumbprint()}));
    let meta: Value = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(
        meta["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA"])
    );
    app.cleanup().await;
}

async fn cors_lets_pages_send_proofs_and_read_nonces(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let origin = app.tessera.settings().issuer.clone();
    let r = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/auth/refresh"))
        .header("origin", &origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, dpop")
        .send()
        .await
        .unwrap();
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("dpop"), "{allowed}");
    let r = app
        .http
        .post(app.url("/auth/refresh"))
        .header("origin", &origin)
        .send()
        .await
        .unwrap();
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("dpop-nonce"), "{exposed}");
    app.cleanup().await;
}

on_both_backends!(
    a_bound_session_refreshes_and_calls_only_with_its_key,
    proof_attacks_at_login_are_refused_beside_a_positive_control,
    a_proof_accepted_by_one_instance_is_refused_by_another,
    with_nonces_a_proof_needs_a_current_server_nonce,
    required_refuses_unbound_logins_and_off_ignores_proofs,
    the_token_endpoint_checks_the_binding_and_introspection_shows_it,
    cors_lets_pages_send_proofs_and_read_nonces,
);

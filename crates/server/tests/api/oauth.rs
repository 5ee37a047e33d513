//! OAuth 2.0: clients, `POST /oauth/token` (the refresh grant, the same rules as
//! `/auth/refresh`), `/oauth/revoke`, `/oauth/introspect` and the RFC 8414 metadata.

use std::time::Duration;

use base64::Engine;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tessera_core::ClientKind;

use crate::helpers::*;

/// A registered client: its id, and its secret when confidential.
struct Registered {
    id: String,
    secret: Option<String>,
}

async fn add_client(app: &TestApp, name: &str, kind: ClientKind) -> Registered {
    let (client, secret) = app.tessera.add_client(name, kind).await.unwrap();
    Registered {
        id: client.id,
        secret: secret.map(|s| s.expose().to_owned()),
    }
}

/// How a request authenticates its client.
#[derive(Clone, Copy)]
enum Auth<'a> {
    /// `client_id` in the form (public clients).
    Id(&'a str),
    /// `client_secret_basic`: RFC 6749 §2.3.1, form-encoded, then base64.
    Basic(&'a str, &'a str),
    /// `client_secret_post`.
    Post(&'a str, &'a str),
    /// Nothing.
    None,
}

fn encode(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// A form `POST` to `path` with `params`, authenticated as `auth`.
async fn post_form(app: &TestApp, path: &str, auth: Auth<'_>, params: &[(&str, &str)]) -> Response {
    let mut pairs: Vec<(&str, &str)> = params.to_vec();
    let mut request = app
        .http
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded");
    match auth {
        Auth::Id(id) => pairs.push(("client_id", id)),
        Auth::Basic(id, secret) => request = request.header("authorization", basic(id, secret)),
        Auth::Post(id, secret) => {
            pairs.push(("client_id", id));
            pairs.push(("client_secret", secret));
        }
        Auth::None => {}
    }
    request.body(encode(&pairs)).send().await.unwrap()
}

async fn token(app: &TestApp, auth: Auth<'_>, refresh_token: &str) -> Response {
    post_form(
        app,
        "/oauth/token",
        auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// A successful token response: checks its shape and returns (access, refresh).
async fn tokens_of(r: Response) -> (String, String) {
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers().get("set-cookie").is_none(), "never a cookie");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert!(body["expires_in"].as_u64().unwrap() > 0, "{body}");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// An OAuth error: status, `error`, and the body.
async fn oauth_error(r: Response) -> (StatusCode, String, Value) {
    assert_eq!(r.headers()["cache-control"], "no-store");
    let (status, body) = error_of(r).await;
    (status, body["error"].as_str().unwrap().to_owned(), body)
}

/// Logs `username` in (registering first) with body delivery, for `client_id`.
async fn login_for(app: &TestApp, username: &str, client_id: Option<&str>) -> (String, String) {
    app.register(username, PASSWORD).await;
    let mut body = json!({"username": username, "password": PASSWORD, "delivery": "body"});
    if let Some(id) = client_id {
        body["client_id"] = json!(id);
    }
    let r = app.post_json("/auth/login", &body).await;
    assert_eq!(r.status(), StatusCode::OK, "login {username}");
    let body: Value = r.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

// --- clients ---------------------------------------------------------------------------------

async fn a_login_names_its_public_client_and_tokens_and_the_session_list_say_so(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mobile = add_client(&app, "mobile-app", ClientKind::Public).await;
    let (access, _) = login_for(&app, "alice", Some(&mobile.id)).await;
    assert_eq!(jwt_part(&access, 1)["client_id"], mobile.id.as_str());
    let (builtin, _) = login_for(&app, "alice", None).await;
    assert_eq!(jwt_part(&builtin, 1)["client_id"], "tessera");

    let r = app.get_with("/auth/sessions", &access).await;
    let list: Value = r.json().await.unwrap();
    let mut clients: Vec<&str> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["client"].as_str().unwrap())
        .collect();
    clients.sort_unstable();
    assert_eq!(clients, ["mobile-app", "tessera"]);
    app.cleanup().await;
}

async fn a_login_for_an_unknown_removed_or_confidential_client_is_invalid_request(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.register("alice", PASSWORD).await;
    let public = add_client(&app, "web", ClientKind::Public).await;
    let server = add_client(&app, "gateway", ClientKind::Confidential).await;
    let gone = add_client(&app, "old-app", ClientKind::Public).await;
    app.tessera.remove_client(&gone.id).await.unwrap();
    let served = &app;
    let login = |client_id: String| {
        let body = json!({"username": "alice", "password": PASSWORD, "client_id": client_id});
        async move { served.post_json("/auth/login", &body).await }
    };
    for bad in [
        "no-such-client".to_owned(),
        gone.id.clone(),
        server.id.clone(),
        String::new(),
    ] {
        let (status, body) = error_of(login(bad.clone()).await).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{bad}"
        );
    }
    assert_eq!(login(public.id.clone()).await.status(), StatusCode::OK);
    assert_eq!(login("tessera".into()).await.status(), StatusCode::OK);
    app.cleanup().await;
}

async fn removing_a_client_revokes_its_sessions_into_the_feed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let app_client = add_client(&app, "mobile-app", ClientKind::Public).await;
    let (_, refresh) = login_for(&app, "alice", Some(&app_client.id)).await;
    let (_, other) = login_for(&app, "alice", None).await;
    assert_eq!(app.tessera.remove_client(&app_client.id).await.unwrap(), 1);

    let (status, body) = error_of(app.refresh_with_body(&refresh).await).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("revoked"))
    );
    let (status, code, _) =
        oauth_error(token(&app, Auth::Id(&app_client.id), &refresh).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    let feed = app.tessera.revocations(None, None, 1000).await.unwrap();
    assert_eq!(feed.sessions.len(), 1, "the ended session is in the feed");
    assert_eq!(
        app.refresh_with_body(&other).await.status(),
        StatusCode::OK,
        "another client's session lives on"
    );
    assert!(
        app.tessera.remove_client("tessera").await.is_err(),
        "built in"
    );
    assert!(
        app.tessera.remove_client(&app_client.id).await.is_err(),
        "once"
    );
    app.cleanup().await;
}

// --- POST /oauth/token -----------------------------------------------------------------------

async fn a_public_client_refreshes_with_grace_and_reuse_detection(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let client = add_client(&app, "cli", ClientKind::Public).await;
    let (_, t0) = login_for(&app, "alice", Some(&client.id)).await;
    let (access, t1) = tokens_of(token(&app, Auth::Id(&client.id), &t0).await).await;
    assert_ne!(t1, t0);
    assert_eq!(jwt_part(&access, 1)["client_id"], client.id.as_str());
    assert_eq!(
        app.get_with("/auth/me", &access).await.status(),
        StatusCode::OK
    );

    // Rule 4: the predecessor within the grace window yields the same successor.
    let (_, again) = tokens_of(token(&app, Auth::Id(&client.id), &t0).await).await;
    assert_eq!(again, t1);
    // Rule 5: outside it, reuse ends the session.
    app.advance(Duration::from_secs(11));
    let (status, code, body) = oauth_error(token(&app, Auth::Id(&client.id), &t0).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert_eq!(body["reason"], "reused");
    let (_, code, body) = oauth_error(token(&app, Auth::Id(&client.id), &t1).await).await;
    assert_eq!(
        (code.as_str(), body["reason"].as_str()),
        ("invalid_grant", Some("revoked"))
    );
    app.cleanup().await;
}

async fn racing_token_requests_all_get_the_one_successor(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, t0) = login_for(&app, "alice", None).await;
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let request = app
                .http
                .post(app.url("/oauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(encode(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &t0),
                    ("client_id", "tessera"),
                ]));
            tokio::spawn(async move { request.send().await.unwrap() })
        })
        .collect();
    let mut successors = std::collections::HashSet::new();
    for r in racers {
        successors.insert(tokens_of(r.await.unwrap()).await.1);
    }
    assert_eq!(
        successors.len(),
        1,
        "one rotation, every racer got its successor"
    );
    app.cleanup().await;
}

async fn a_token_rotated_at_auth_refresh_is_the_same_chain_at_the_token_endpoint(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, t0) = login_for(&app, "alice", None).await;
    let r = app.refresh_with_body(&t0).await;
    let t1 = r.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // t1 moves to the token endpoint and rotates there...
    let (_, t2) = tokens_of(token(&app, Auth::Id("tessera"), &t1).await).await;
    // ...and t1, replayed at /auth/refresh within the grace window, yields the same t2.
    let r = app.refresh_with_body(&t1).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["refresh_token"],
        t2.as_str()
    );
    // t0 is two rotations old: reuse, whichever endpoint sees it.
    let (_, code, body) = oauth_error(token(&app, Auth::Id("tessera"), &t0).await).await;
    assert_eq!(
        (code.as_str(), body["reason"].as_str()),
        ("invalid_grant", Some("reused"))
    );
    let (status, body) = error_of(app.refresh_with_body(&t2).await).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("revoked"))
    );
    app.cleanup().await;
}

async fn a_token_of_another_client_is_invalid_grant_and_not_consumed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mine = add_client(&app, "mine", ClientKind::Public).await;
    let theirs = add_client(&app, "theirs", ClientKind::Public).await;
    let server = add_client(&app, "server", ClientKind::Confidential).await;
    let secret = server.secret.as_deref().unwrap();
    let (_, t0) = login_for(&app, "alice", Some(&mine.id)).await;
    for auth in [
        Auth::Id(&theirs.id),
        Auth::Id("tessera"),
        Auth::Basic(&server.id, secret),
        Auth::Post(&server.id, secret),
    ] {
        let (status, code, body) = oauth_error(token(&app, auth, &t0).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_grant")
        );
        assert_eq!(body["reason"], "client_mismatch");
    }
    // Still the current token: its own client rotates it, and nothing was revoked.
    let (_, t1) = tokens_of(token(&app, Auth::Id(&mine.id), &t0).await).await;
    // A used token of another client is not evidence of reuse either.
    app.advance(Duration::from_secs(30));
    let (_, _, body) = oauth_error(token(&app, Auth::Id(&theirs.id), &t0).await).await;
    assert_eq!(body["reason"], "client_mismatch");
    tokens_of(token(&app, Auth::Id(&mine.id), &t1).await).await;
    app.cleanup().await;
}

async fn client_authentication_failures_are_invalid_client(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let public = add_client(&app, "public", ClientKind::Public).await;
    let server = add_client(&app, "server", ClientKind::Confidential).await;
    let gone = add_client(&app, "gone", ClientKind::Confidential).await;
    let secret = server.secret.as_deref().unwrap();
    assert!(
        secret.len() >= 43
            && secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "256 bits of URL-unreserved characters: {secret}"
    );
    app.tessera.remove_client(&gone.id).await.unwrap();
    let (_, t0) = login_for(&app, "alice", Some(&public.id)).await;
    let gone_secret = gone.secret.as_deref().unwrap();
    for (auth, challenged) in [
        (Auth::Basic(&server.id, "wrong"), true),
        (Auth::Post(&server.id, "wrong"), false),
        (Auth::Id(&server.id), false),
        (Auth::Basic(&gone.id, gone_secret), true),
        (Auth::Post(&gone.id, gone_secret), false),
        (Auth::Id("no-such-client"), false),
        (Auth::Post(&public.id, "a-secret"), false),
        (Auth::Basic(&public.id, "a-secret"), true),
        (Auth::None, false),
    ] {
        let r = token(&app, auth, &t0).await;
        let challenge = r.headers().get("www-authenticate").cloned();
        let (status, code, _) = oauth_error(r).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_client")
        );
        assert_eq!(
            challenge.map(|c| c.to_str().unwrap().starts_with("Basic")),
            challenged.then_some(true)
        );
    }
    // A Basic header that is not base64 at all.
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", "Basic %%%")
        .body(encode(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &t0),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(r).await.1, "invalid_client");
    // None of it consumed the token; the confidential client's right secret authenticates
    // (then the token is another client's).
    let (_, _, body) = oauth_error(token(&app, Auth::Basic(&server.id, secret), &t0).await).await;
    assert_eq!(body["reason"], "client_mismatch");
    tokens_of(token(&app, Auth::Id(&public.id), &t0).await).await;
    app.cleanup().await;
}

async fn malformed_token_requests_are_refused_without_consuming_the_token(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let server = add_client(&app, "server", ClientKind::Confidential).await;
    let secret = server.secret.as_deref().unwrap();
    let (_, t0) = login_for(&app, "alice", None).await;
    let grant = [
        ("grant_type", "refresh_token"),
        ("refresh_token", t0.as_str()),
    ];
    let send = |content_type: &'static str, body: String| {
        let request = app
            .http
            .post(app.url("/oauth/token"))
            .header("content-type", content_type)
            .body(body);
        async move { request.send().await.unwrap() }
    };
    let bad_bodies = [
        (
            "application/json",
            json!({"grant_type": "refresh_token", "refresh_token": t0, "client_id": "tessera"})
                .to_string(),
        ),
        (
            "multipart/form-data; boundary=x",
            format!(
                "--x\r\ncontent-disposition: form-data; name=\"grant_type\"\r\n\r\nrefresh_token\r\n--x\r\ncontent-disposition: form-data; name=\"refresh_token\"\r\n\r\n{t0}\r\n--x\r\ncontent-disposition: form-data; name=\"client_id\"\r\n\r\ntessera\r\n--x--\r\n"
            ),
        ),
        (
            "application/x-www-form-urlencoded",
            encode(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &t0),
                ("refresh_token", &t0),
                ("client_id", "tessera"),
            ]),
        ),
        (
            "application/x-www-form-urlencoded",
            encode(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &t0),
                ("client_id", "tessera"),
                ("client_id", "tessera"),
            ]),
        ),
        (
            "application/x-www-form-urlencoded",
            encode(&[("refresh_token", &t0), ("client_id", "tessera")]),
        ),
        (
            "application/x-www-form-urlencoded",
            encode(&[("grant_type", "refresh_token"), ("client_id", "tessera")]),
        ),
    ];
    for (content_type, body) in bad_bodies {
        let (status, code, _) = oauth_error(send(content_type, body.clone()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{content_type}: {body}"
        );
    }
    // Basic and client_secret together.
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", basic(&server.id, secret))
        .body(encode(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &t0),
            ("client_secret", secret),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(r).await.1, "invalid_request");
    // Grant types that are not offered.
    for grant_type in [
        "password",
        "client_credentials",
        "authorization_code",
        "urn:x",
    ] {
        let r = post_form(
            &app,
            "/oauth/token",
            Auth::None,
            &[
                ("grant_type", grant_type),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
        let (status, code, _) = oauth_error(r).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "unsupported_grant_type"),
            "{grant_type}"
        );
    }
    // Over 16 KiB.
    let padding = "x".repeat(17 * 1024);
    let big = post_form(
        &app,
        "/oauth/token",
        Auth::Id("tessera"),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &t0),
            ("pad", &padding),
        ],
    )
    .await;
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Not a token of ours.
    let (status, code, body) =
        oauth_error(token(&app, Auth::Id("tessera"), "not-a-token").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert_eq!(body["reason"], "unknown");
    let get = app.http.get(app.url("/oauth/token")).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    // Positive control: the token was never consumed.
    tokens_of(post_form(&app, "/oauth/token", Auth::Id("tessera"), &grant).await).await;
    app.cleanup().await;
}

// --- POST /oauth/revoke ----------------------------------------------------------------------

async fn revocation_ends_only_the_clients_own_sessions(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mine = add_client(&app, "mine", ClientKind::Public).await;
    let theirs = add_client(&app, "theirs", ClientKind::Public).await;
    let revoke = |auth, token: String| {
        let app = &app;
        async move {
            post_form(
                app,
                "/oauth/revoke",
                auth,
                &[("token", &token), ("token_type_hint", "refresh_token")],
            )
            .await
        }
    };
    let (access_a, refresh_a) = login_for(&app, "alice", Some(&mine.id)).await;
    let (access_b, refresh_b) = login_for(&app, "alice", Some(&mine.id)).await;

    // Another client's token: 200, nothing revoked.
    for token in [&refresh_a, &access_a] {
        let r = revoke(Auth::Id(&theirs.id), token.clone()).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(
        app.get_with("/auth/me", &access_a).await.status(),
        StatusCode::OK
    );
    // Unknown and invalid tokens: 200.
    for junk in ["junk", "a.b.c"] {
        assert_eq!(
            revoke(Auth::Id(&mine.id), junk.into()).await.status(),
            StatusCode::OK
        );
    }
    // Bad client authentication: 401. A missing token: 400.
    let (status, code, _) = oauth_error(revoke(Auth::Id("nobody"), refresh_a.clone()).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    let r = post_form(&app, "/oauth/revoke", Auth::Id(&mine.id), &[]).await;
    assert_eq!(oauth_error(r).await.1, "invalid_request");

    // Its own refresh token: the session ends.
    let r = revoke(Auth::Id(&mine.id), refresh_a.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().is_empty());
    let (_, _, body) = oauth_error(token(&app, Auth::Id(&mine.id), &refresh_a).await).await;
    assert_eq!(body["reason"], "revoked");
    assert_eq!(
        app.get_with("/auth/me", &access_a).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Its own access token (the hint is only a hint): that session ends too.
    assert_eq!(
        revoke(Auth::Id(&mine.id), access_b.clone()).await.status(),
        StatusCode::OK
    );
    let (_, _, body) = oauth_error(token(&app, Auth::Id(&mine.id), &refresh_b).await).await;
    assert_eq!(body["reason"], "revoked");
    // Revoking again is fine.
    assert_eq!(
        revoke(Auth::Id(&mine.id), refresh_a).await.status(),
        StatusCode::OK
    );
    app.cleanup().await;
}

// --- POST /oauth/introspect ------------------------------------------------------------------

async fn introspection_reports_live_tokens_and_never_consumes_them(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let rs = add_client(&app, "resource-server", ClientKind::Confidential).await;
    let secret = rs.secret.as_deref().unwrap();
    let public = add_client(&app, "spa", ClientKind::Public).await;
    let introspect = |auth, token: String| {
        let app = &app;
        async move { post_form(app, "/oauth/introspect", auth, &[("token", &token)]).await }
    };
    let active = |r: Response| async move {
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["cache-control"], "no-store");
        r.json::<Value>().await.unwrap()
    };
    let (access, t0) = login_for(&app, "alice", Some(&public.id)).await;

    let a = active(introspect(Auth::Basic(&rs.id, secret), access.clone()).await).await;
    let claims = jwt_part(&access, 1);
    assert_eq!(a["active"], true, "{a}");
    assert_eq!(a["token_type"], "Bearer");
    for field in [
        "sub",
        "client_id",
        "username",
        "sid",
        "iss",
        "aud",
        "exp",
        "iat",
        "jti",
    ] {
        assert_eq!(a[field], claims[field], "{field}");
    }
    let r = active(introspect(Auth::Post(&rs.id, secret), t0.clone()).await).await;
    assert_eq!(r["active"], true, "{r}");
    assert_eq!(r["token_type"], "refresh_token");
    assert_eq!(
        (r["sub"].clone(), r["sid"].clone()),
        (claims["sub"].clone(), claims["sid"].clone())
    );
    assert_eq!(r["client_id"], public.id.as_str());
    assert!(r["exp"].as_i64().unwrap() > claims["exp"].as_i64().unwrap());
    assert_eq!(
        active(introspect(Auth::Post(&rs.id, secret), t0.clone()).await).await["active"],
        true,
        "introspecting twice consumed nothing"
    );
    // Not consumed: the token still rotates; the used one is then inactive.
    let (_, t1) = tokens_of(token(&app, Auth::Id(&public.id), &t0).await).await;
    let used = active(introspect(Auth::Basic(&rs.id, secret), t0.clone()).await).await;
    assert_eq!(used, json!({"active": false}));
    for junk in ["junk".to_owned(), format!("{access}x")] {
        let r = active(introspect(Auth::Basic(&rs.id, secret), junk).await).await;
        assert_eq!(r, json!({"active": false}));
    }
    // A public client may not introspect; a wrong secret is refused.
    for auth in [Auth::Id(&public.id), Auth::Basic(&rs.id, "wrong")] {
        let (status, code, _) = oauth_error(introspect(auth, access.clone()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_client")
        );
    }
    // The session ends: its access token is inactive at once, long before it expires.
    app.post_json("/auth/logout", &json!({"refresh_token": t1}))
        .await;
    let ended = active(introspect(Auth::Basic(&rs.id, secret), access.clone()).await).await;
    assert_eq!(ended, json!({"active": false}));
    app.cleanup().await;
}

// --- metadata --------------------------------------------------------------------------------

async fn metadata_describes_the_endpoints(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let r = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let m: Value = r.json().await.unwrap();
    let issuer = app.tessera.settings().issuer.clone();
    assert_eq!(m["issuer"], issuer.as_str());
    for (field, path) in [
        ("token_endpoint", "/oauth/token"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("introspection_endpoint", "/oauth/introspect"),
        ("jwks_uri", "/.well-known/jwks.json"),
    ] {
        assert_eq!(m[field], format!("{issuer}{path}"), "{field}");
    }
    assert_eq!(m["grant_types_supported"], json!(["refresh_token"]));
    let all = json!(["none", "client_secret_basic", "client_secret_post"]);
    assert_eq!(m["token_endpoint_auth_methods_supported"], all);
    assert_eq!(m["revocation_endpoint_auth_methods_supported"], all);
    assert_eq!(
        m["introspection_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    app.cleanup().await;
}

async fn an_issuer_with_a_path_has_its_metadata_at_that_path(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |args| {
        args.issuer = Some("https://auth.example/tenant-1".into());
    })
    .await
    else {
        return;
    };
    let get = |path: &'static str| {
        let request = app.http.get(app.url(path));
        async move { request.send().await.unwrap() }
    };
    let r = get("/.well-known/oauth-authorization-server/tenant-1").await;
    assert_eq!(r.status(), StatusCode::OK);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["issuer"], "https://auth.example/tenant-1");
    assert_eq!(
        m["token_endpoint"],
        "https://auth.example/tenant-1/oauth/token"
    );
    let other = get("/.well-known/oauth-authorization-server/tenant-2").await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    app.cleanup().await;
}

// --- a stock Rust client: the `oauth2` crate ---------------------------------------------------

/// The `oauth2` crate's HTTP transport, over the tests' reqwest client. The crate refuses a
/// revocation endpoint that is not `https://` (RFC 7009 §2.1), so its endpoints are written with
/// `https://` and this transport, standing in for a TLS-terminating proxy, speaks plain HTTP to
/// the test server.
async fn oauth2_send(
    http: reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let url = parts.uri.to_string().replacen("https://", "http://", 1);
    let mut outgoing = http.request(parts.method, url).body(body);
    for (name, value) in &parts.headers {
        outgoing = outgoing.header(name, value);
    }
    let answer = outgoing.send().await?;
    let mut response = oauth2::http::Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        response = response.header(name, value);
    }
    Ok(response
        .body(answer.bytes().await?.to_vec())
        .expect("a response built from a response"))
}

async fn the_oauth2_crate_refreshes_revokes_and_introspects(backend: Backend) {
    use oauth2::basic::{BasicClient, BasicErrorResponseType};
    use oauth2::{
        AccessToken, AuthType, ClientId, ClientSecret, IntrospectionUrl, RefreshToken,
        RequestTokenError, RevocationUrl, StandardRevocableToken, TokenIntrospectionResponse,
        TokenResponse, TokenUrl,
    };

    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let public = add_client(&app, "rust-cli", ClientKind::Public).await;
    let rs = add_client(&app, "rust-api", ClientKind::Confidential).await;
    let endpoint = |path: &str| app.url(path).replacen("http://", "https://", 1);
    let http = |request| oauth2_send(app.http.clone(), request);
    let cli = BasicClient::new(ClientId::new(public.id.clone()))
        .set_token_uri(TokenUrl::new(endpoint("/oauth/token")).unwrap())
        .set_revocation_url(RevocationUrl::new(endpoint("/oauth/revoke")).unwrap());
    let api = BasicClient::new(ClientId::new(rs.id.clone()))
        .set_client_secret(ClientSecret::new(rs.secret.clone().unwrap()))
        .set_introspection_url(IntrospectionUrl::new(endpoint("/oauth/introspect")).unwrap());

    let (_, t0) = login_for(&app, "alice", Some(&public.id)).await;
    let renewed = cli
        .exchange_refresh_token(&RefreshToken::new(t0.clone()))
        .request_async(&http)
        .await
        .unwrap();
    let t1 = renewed.refresh_token().unwrap().secret().clone();
    assert_ne!(t1, t0);
    let access = renewed.access_token().clone();
    assert_eq!(
        jwt_part(access.secret(), 1)["client_id"],
        public.id.as_str()
    );

    // Introspection with client_secret_basic (the crate's default), then client_secret_post.
    for api in [
        api.clone(),
        api.clone().set_auth_type(AuthType::RequestBody),
    ] {
        let seen = api.introspect(&access).request_async(&http).await.unwrap();
        assert!(seen.active());
        assert_eq!(
            seen.client_id().map(|c| c.as_str()),
            Some(public.id.as_str())
        );
        assert_eq!(seen.username(), Some("alice"));
        let rt = api
            .introspect(&AccessToken::new(t1.clone()))
            .request_async(&http)
            .await
            .unwrap();
        assert!(rt.active(), "the current refresh token");
    }

    cli.revoke_token(StandardRevocableToken::RefreshToken(RefreshToken::new(
        t1.clone(),
    )))
    .unwrap()
    .request_async(&http)
    .await
    .unwrap();
    let ended = api.introspect(&access).request_async(&http).await.unwrap();
    assert!(!ended.active(), "the revoked session's access token");
    match cli
        .exchange_refresh_token(&RefreshToken::new(t1))
        .request_async(&http)
        .await
    {
        Err(RequestTokenError::ServerResponse(e)) => {
            assert_eq!(*e.error(), BasicErrorResponseType::InvalidGrant);
        }
        other => panic!("a revoked session's token refreshed: {other:?}"),
    }
    app.cleanup().await;
}

on_both_backends!(
    a_login_names_its_public_client_and_tokens_and_the_session_list_say_so,
    a_login_for_an_unknown_removed_or_confidential_client_is_invalid_request,
    removing_a_client_revokes_its_sessions_into_the_feed,
    a_public_client_refreshes_with_grace_and_reuse_detection,
    racing_token_requests_all_get_the_one_successor,
    a_token_rotated_at_auth_refresh_is_the_same_chain_at_the_token_endpoint,
    a_token_of_another_client_is_invalid_grant_and_not_consumed,
    client_authentication_failures_are_invalid_client,
    malformed_token_requests_are_refused_without_consuming_the_token,
    revocation_ends_only_the_clients_own_sessions,
    introspection_reports_live_tokens_and_never_consumes_them,
    metadata_describes_the_endpoints,
    an_issuer_with_a_path_has_its_metadata_at_that_path,
    the_oauth2_crate_refreshes_revokes_and_introspects,
);

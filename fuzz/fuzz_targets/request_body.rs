//! Request bodies (and the headers that decide how they are read) through the real router:
//! `tessera_http::router` on a SQLite store, driven with `tower::ServiceExt::oneshot`.
//!
//! Input: the first byte picks the route and headers, the rest is the body (see [`Shape`]).
//! With the cookie bit set, the bytes before the first NUL are the `Cookie` header.
//!
//! Registration is closed, so no input reaches argon2 through `/auth/register` (the service
//! refuses before hashing); `/auth/login` hashes on every well-formed body, so it is only sent
//! bodies that cannot decode as credentials (no object with both `username` and `password`).
//!
//! Oracles: no 5xx; no success where none is possible (no refresh token of this deployment is
//! ever presented, registration is closed, no password is right); a body that is not a JSON
//! object is refused (400, or 413 when too large); every error is `{error, error_description}`
//! JSON with `Content-Type: application/json`.
#![no_main]

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tessera_core::{Settings, SystemClock, Tessera};
use tessera_http::{AppState, HttpConfig};
use tessera_store_sqlite::SqliteStore;
use tower::ServiceExt;

const ORIGIN: &str = "https://app.fuzz";

struct App {
    runtime: tokio::runtime::Runtime,
    router: Router,
}

static APP: LazyLock<App> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dir = std::env::temp_dir().join(format!("tessera-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let url = format!("sqlite://{}", dir.join("fuzz.db").display());
    let router = runtime.block_on(async {
        let store = SqliteStore::connect(&url)
            .await
            .expect("the SQLite store opens");
        let mut settings = Settings::new(ORIGIN);
        settings.registration_open = false;
        let tessera = Tessera::open(Arc::new(store), settings, None, Arc::new(SystemClock))
            .await
            .expect("the service opens");
        tessera_http::router(AppState::new(Arc::new(tessera), HttpConfig::new(ORIGIN)))
    });
    App { runtime, router }
});

/// What the first input byte says.
struct Shape {
    /// bits 0–1: refresh, logout, register, login.
    path: &'static str,
    /// bits 2–3: `application/json`, none, `text/plain`, `Application/JSON; charset=utf-8`.
    content_type: Option<&'static str>,
    /// bit 4: the bytes before the first NUL are a `Cookie` header.
    cookie: bool,
    /// bit 5: `Origin` of the allowed origin; bit 6: `Origin: null` (overrides bit 5).
    origin: Option<&'static str>,
    /// bit 7: `Sec-Fetch-Site: cross-site`.
    cross_site: bool,
}

impl Shape {
    fn of(b: u8) -> Self {
        Self {
            path: [
                "/auth/refresh",
                "/auth/logout",
                "/auth/register",
                "/auth/login",
            ][usize::from(b & 3)],
            content_type: [
                Some("application/json"),
                None,
                Some("text/plain"),
                Some("Application/JSON; charset=utf-8"),
            ][usize::from((b >> 2) & 3)],
            cookie: b & 0x10 != 0,
            origin: if b & 0x40 != 0 {
                Some("null")
            } else if b & 0x20 != 0 {
                Some(ORIGIN)
            } else {
                None
            },
            cross_site: b & 0x80 != 0,
        }
    }
}

/// Whether a body might decode as credentials (and so cost an argon2 run at `/auth/login`).
fn may_be_credentials(body: &[u8]) -> bool {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map.contains_key("username") && map.contains_key("password"),
        // serde's derived structs take positional arrays too (the router refuses them first,
        // but this filter should not depend on that).
        Ok(Value::Array(items)) => items.len() >= 2,
        Ok(_) => false,
        // Not JSON as a whole; play safe if the field names are in it at all.
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            text.contains("username") && text.contains("password")
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let shape = Shape::of(first);
    let (cookie, body) = match rest.iter().position(|&b| b == 0) {
        Some(i) if shape.cookie => (Some(&rest[..i]), &rest[i + 1..]),
        _ => (None, rest),
    };
    if shape.path == "/auth/login" && may_be_credentials(body) {
        return;
    }
    let mut request = Request::builder().method(Method::POST).uri(shape.path);
    if let Some(ct) = shape.content_type {
        request = request.header(header::CONTENT_TYPE, ct);
    }
    if let Some(c) = cookie {
        let Ok(value) = HeaderValue::from_bytes(c) else {
            return;
        };
        request = request.header(header::COOKIE, value);
    }
    if let Some(origin) = shape.origin {
        request = request.header(header::ORIGIN, origin);
    }
    if shape.cross_site {
        request = request.header("sec-fetch-site", "cross-site");
    }
    let request = request
        .body(Body::from(body.to_vec()))
        .expect("a well-formed request");

    let app = &*APP;
    let (status, content_type, bytes) = app.runtime.block_on(async {
        let response = app
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("the body is readable")
            .to_bytes();
        (status, content_type, bytes)
    });

    assert!(
        !status.is_server_error(),
        "{} answered {status} to {body:?}: {bytes:?}",
        shape.path
    );
    match shape.path {
        "/auth/logout" => {}
        "/auth/register" => assert_ne!(status, StatusCode::CREATED, "registration is closed"),
        _ => assert!(!status.is_success(), "{} succeeded: {bytes:?}", shape.path),
    }
    if status.is_success() {
        assert_eq!(status, StatusCode::NO_CONTENT);
        return;
    }
    // Bodies are JSON objects: anything else is refused as it is read.
    if body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b != b'{')
    {
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE,
            "{} answered {status} to a body that is not a JSON object: {body:?}",
            shape.path
        );
    }
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "{status} without a JSON error body"
    );
    let error: Value = serde_json::from_slice(&bytes).expect("an error body is JSON");
    assert!(
        error["error"].is_string() && error["error_description"].is_string(),
        "{status}: {error}"
    );
});

//! Reading requests: JSON bodies, Bearer tokens, the refresh cookie, the client's address, and
//! the CSRF check for cookie-authenticated calls.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use tessera_core::dpop::{self, Presented};
use tessera_core::{AccessClaims, ClientInfo, DpopPolicy, DpopRequest, Error, InvalidToken};

use crate::error::ApiError;
use crate::{AppState, HttpConfig};

/// A JSON body that may be absent: `None` for an empty body.
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json_type = is_json(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest("the request body could not be read".into())
            }
        })?;
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        if !json_type {
            return Err(ApiError::BadRequest(
                "the body must be JSON (Content-Type: application/json)".into(),
            ));
        }
        // Every body is a JSON object. serde's derived structs would also accept a positional
        // array (`["alice", "pw"]`), which the API does not document: refuse it.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::BadRequest(
                "malformed JSON body: expected a JSON object".into(),
            ));
        }
        serde_json::from_slice(&bytes)
            .map(|v| Self(Some(v)))
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON body: {e}")))
    }
}

/// A JSON body that must be present.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match OptionalJson::<T>::from_request(req, state).await? {
            OptionalJson(Some(v)) => Ok(Self(v)),
            OptionalJson(None) => Err(ApiError::BadRequest("a JSON body is required".into())),
        }
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// The Bearer token of a request. A missing header (or another scheme) is `MissingBearer`;
/// several `Authorization` headers or a malformed one is an invalid token.
pub fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let (scheme, token) = authorization(headers)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::MissingBearer);
    }
    valid_token(token)
}

/// The access token of a request and how it came: `Authorization: Bearer`, or
/// `Authorization: DPoP` with the request's `DPoP` proof (RFC 9449 §7.1). A missing header (or
/// another scheme) is `MissingBearer`; several `Authorization` headers or a malformed one is an
/// invalid token.
pub fn access_token<'a>(
    parts: &'a Parts,
    app: &'a AppState,
) -> Result<(&'a str, Presented<'a>), ApiError> {
    let (scheme, token) = authorization(&parts.headers)?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok((valid_token(token)?, Presented::Bearer));
    }
    if !scheme.eq_ignore_ascii_case("dpop") {
        return Err(ApiError::MissingBearer);
    }
    let presented = Presented::Dpop {
        proof: dpop_header(parts),
        method: parts.method.as_str(),
        url: request_url(parts, app),
    };
    Ok((valid_token(token)?, presented))
}

/// The `Authorization` header's scheme and credentials.
fn authorization(headers: &HeaderMap) -> Result<(&str, &str), ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(ApiError::MissingBearer);
    };
    if values.next().is_some() {
        return Err(invalid(InvalidToken::SeveralAuthorizationHeaders));
    }
    let value = value
        .to_str()
        .map_err(|_| invalid(InvalidToken::MalformedAuthorization))?;
    Ok(value.split_once(' ').unwrap_or((value, "")))
}

fn valid_token(token: &str) -> Result<&str, ApiError> {
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(invalid(InvalidToken::MalformedBearer));
    }
    Ok(token)
}

fn invalid(why: InvalidToken) -> ApiError {
    ApiError::Core(Error::InvalidToken(why))
}

/// The request's one `DPoP` header ([`InvalidProof::Several`](dpop::InvalidProof::Several) for
/// more), `None` without one.
fn dpop_header(parts: &Parts) -> Option<Result<&str, dpop::InvalidProof>> {
    dpop::single(parts.headers.get_all("dpop").iter().map(|v| v.as_bytes()))
}

/// The request's URL as the client sees it, for a DPoP proof's `htu`: the issuer's origin and
/// the path the request was sent to (before any `nest` stripped a prefix), without the query.
fn request_url(parts: &Parts, app: &AppState) -> String {
    let path = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(parts.uri.path(), |u| u.0.path());
    format!("{}{path}", origin_of(&app.tessera.settings().issuer))
}

/// The origin (`scheme://host[:port]`) of a URL: `https://auth.example/tenant` →
/// `https://auth.example`.
pub fn origin_of(url: &str) -> &str {
    let host_start = url.find("://").map_or(0, |i| i + 3);
    url[host_start..]
        .find('/')
        .map_or(url, |end| &url[..host_start + end])
}

/// Claims of a valid access token, checked without touching the database (signature, header,
/// `exp`/`nbf`/`iss`/`aud`): stateless, so as cheap as a signature check. A logged-out
/// session's token stays valid until it expires; use [`LiveSession`] where that matters.
///
/// Without a valid `Authorization: Bearer` token the handler is not called: the answer is
/// `401 invalid_token` with a `WWW-Authenticate` challenge (RFC 6750). The host app's state
/// must give an [`AppState`] through [`FromRef`].
///
/// ```
/// use axum::{Router, routing::get};
/// use axum::body::Body;
/// use axum::http::{Request, StatusCode, header};
/// use tessera_http::{AppState, Authenticated};
/// use tower::ServiceExt;
///
/// async fn whoami(Authenticated(claims): Authenticated) -> String {
///     // `sub` is the user id, `sid` the session, `username` for display.
///     format!("{} ({})", claims.username, claims.sub)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("tessera-doc-{}", uuid::Uuid::new_v4()));
/// # std::fs::create_dir_all(&dir)?;
/// # let url = format!("sqlite://{}", dir.join("app.db").display());
/// # let store = std::sync::Arc::new(tessera_store_sqlite::SqliteStore::connect(&url).await?);
/// # let tessera = std::sync::Arc::new(tessera_core::Tessera::open(store,
/// #     tessera_core::Settings::new("https://app.example"), None,
/// #     std::sync::Arc::new(tessera_core::SystemClock)).await?);
/// # let state = AppState::new(tessera.clone(), tessera_http::HttpConfig::new("https://app.example"));
/// let app: Router = Router::new().route("/api/whoami", get(whoami)).with_state(state);
///
/// let anonymous = Request::get("/api/whoami").body(Body::empty())?;
/// let refused = app.clone().oneshot(anonymous).await?;
/// assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
/// assert_eq!(refused.headers()[header::WWW_AUTHENTICATE], "Bearer");
///
/// # tessera.register("carol", "correct horse battery".into(), &Default::default()).await?;
/// # let issued = tessera.login("carol", "correct horse battery".into(), &Default::default()).await?;
/// let signed_in = Request::get("/api/whoami")
///     .header(header::AUTHORIZATION, format!("Bearer {}", issued.access_token))
///     .body(Body::empty())?;
/// assert_eq!(app.oneshot(signed_in).await?.status(), StatusCode::OK);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Authenticated(pub AccessClaims);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let app = AppState::from_ref(state);
        let (token, presented) = access_token(parts, &app)?;
        Ok(Self(app.tessera.verify_presented(token, &presented)?))
    }
}

/// Claims of a valid access token whose session is still live: everything [`Authenticated`]
/// checks, plus one store read, so a logout, a revocation or a detected refresh-token reuse
/// takes effect on the very next request instead of when the token expires.
///
/// Use it for what must stop at once (account settings, payments, admin actions), and
/// [`Authenticated`] where a few minutes of a logged-out token are acceptable.
///
/// ```
/// use axum::{Router, routing::get};
/// use axum::body::Body;
/// use axum::http::{Request, StatusCode, header};
/// use tessera_http::{AppState, Authenticated, LiveSession};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("tessera-doc-{}", uuid::Uuid::new_v4()));
/// # std::fs::create_dir_all(&dir)?;
/// # let url = format!("sqlite://{}", dir.join("app.db").display());
/// # let store = std::sync::Arc::new(tessera_store_sqlite::SqliteStore::connect(&url).await?);
/// # let tessera = std::sync::Arc::new(tessera_core::Tessera::open(store,
/// #     tessera_core::Settings::new("https://app.example"), None,
/// #     std::sync::Arc::new(tessera_core::SystemClock)).await?);
/// # let state = AppState::new(tessera.clone(), tessera_http::HttpConfig::new("https://app.example"));
/// let app: Router = Router::new()
///     .route("/api/feed", get(|_: Authenticated| async { "feed" }))
///     .route("/api/settings", get(|_: LiveSession| async { "settings" }))
///     .with_state(state);
///
/// # tessera.register("dave", "correct horse battery".into(), &Default::default()).await?;
/// # let issued = tessera.login("dave", "correct horse battery".into(), &Default::default()).await?;
/// let call = |path: &str| {
///     Request::get(path)
///         .header(header::AUTHORIZATION, format!("Bearer {}", issued.access_token))
///         .body(Body::empty())
/// };
/// assert_eq!(app.clone().oneshot(call("/api/settings")?).await?.status(), StatusCode::OK);
///
/// tessera.logout(Some(&issued.refresh_token)).await?;
/// // The session has ended: refused at once where liveness is checked …
/// assert_eq!(app.clone().oneshot(call("/api/settings")?).await?.status(), StatusCode::UNAUTHORIZED);
/// // … while the stateless check accepts the token until it expires.
/// assert_eq!(app.oneshot(call("/api/feed")?).await?.status(), StatusCode::OK);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct LiveSession(pub AccessClaims);

impl<S: Send + Sync> FromRequestParts<S> for LiveSession
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let app = AppState::from_ref(state);
        let (token, presented) = access_token(parts, &app)?;
        Ok(Self(
            app.tessera.verify_live_presented(token, &presented).await?,
        ))
    }
}

/// The refresh token from the cookie. Two cookies of that name make the request ambiguous.
pub fn refresh_cookie(headers: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    let mut found = cookie_values(headers, name);
    if found.len() > 1 {
        return Err(ApiError::BadRequest(format!("more than one {name} cookie")));
    }
    Ok(found.pop())
}

/// The values of every cookie named `name`, in the order sent. For the device cookie, several
/// are not an error: a sibling subdomain can add one (cookie tossing), and refusing the login
/// for it would hand that subdomain a way to lock the user out; each is tried instead.
pub fn cookie_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| cookie::Cookie::split_parse(value).flatten())
        .filter(|c| c.name() == name)
        .map(|c| c.value().to_owned())
        .collect()
}

/// Refuses a cookie-authenticated request that a browser sent on another site's behalf.
pub fn check_csrf(headers: &HeaderMap, config: &HttpConfig) -> Result<(), ApiError> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|o| config.allowed_origins.iter().any(|a| a == o));
        if !allowed {
            // The allowed origins are no secret (CORS answers them to any page that asks), and
            // naming them tells the operator of a misconfigured page what to change.
            return Err(ApiError::CsrfRejected(
                format!(
                    "this origin may not use the refresh cookie; allowed origins: {}",
                    config.allowed_origins.join(", ")
                )
                .into(),
            ));
        }
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Err(ApiError::CsrfRejected(
            "cross-site requests may not use the refresh cookie".into(),
        ));
    }
    // A form post needs no CORS preflight; our client sends no body or JSON.
    if headers.get(header::CONTENT_TYPE).is_some() && !is_json(headers) {
        return Err(ApiError::CsrfRejected(
            "cookie-authenticated requests must not carry a form body".into(),
        ));
    }
    Ok(())
}

/// Who is calling: the peer address (the `X-Forwarded-For` client when the peer is a trusted
/// proxy) and the `User-Agent`. The peer address needs the server to be run with
/// `into_make_service_with_connect_info::<SocketAddr>()`; without it the IP is unknown.
pub struct Client(pub ClientInfo);

impl<S: Send + Sync> FromRequestParts<S> for Client
where
    AppState: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let ip = peer.map(|peer| forwarded_client(peer, &parts.headers, &app.config));
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let dpop = (app.tessera.settings().dpop != DpopPolicy::Off)
            .then(|| dpop_header(parts))
            .flatten()
            .map(|proof| DpopRequest {
                proof: proof.map(str::to_owned),
                method: parts.method.as_str().to_owned(),
                url: request_url(parts, &app),
            });
        Ok(Self(ClientInfo {
            ip,
            user_agent,
            device_tokens: Vec::new(),
            dpop,
        }))
    }
}

fn forwarded_client(peer: IpAddr, headers: &HeaderMap, config: &HttpConfig) -> IpAddr {
    let trusted = |ip: &IpAddr| config.trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    // Walk from the nearest hop outwards; the first address that is not one of our proxies is
    // the client (anything further left could have been written by the client itself). An entry
    // that is not an address ends the walk: the trusted hop that wrote it is the client, since
    // nothing to its left can be believed.
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for entry in entries.into_iter().rev() {
        let Ok(hop) = entry.parse::<IpAddr>() else {
            break;
        };
        client = hop;
        if !trusted(&hop) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn config() -> HttpConfig {
        let mut c = HttpConfig::new("https://app.example");
        c.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
        c
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let c = config();
        let xff = headers(&[("x-forwarded-for", "198.51.100.9, 203.0.113.5, 10.1.2.3")]);
        assert_eq!(
            forwarded_client("10.0.0.1".parse().unwrap(), &xff, &c),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            forwarded_client("192.0.2.1".parse().unwrap(), &xff, &c),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        let garbage = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(
            forwarded_client("10.0.0.1".parse().unwrap(), &garbage, &c),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    /// Before the walk from the right, an unparsable entry stopped the reading from the left,
    /// so the client-written left part was believed (`9.9.9.9` here).
    #[test]
    fn a_client_cannot_pick_its_own_address_with_a_junk_entry() {
        let c = config();
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let client = |xff: &'static str| {
            forwarded_client(peer, &headers(&[("x-forwarded-for", xff)]), &c).to_string()
        };
        assert_eq!(client("9.9.9.9, junk, 203.0.113.7"), "203.0.113.7");
        assert_eq!(client("9.9.9.9, unknown, 203.0.113.7"), "203.0.113.7");
        // The junk is nearest: the trusted peer wrote it, and is all that can be believed.
        assert_eq!(client("9.9.9.9, 203.0.113.7:4444"), "10.0.0.1");
        assert_eq!(client("9.9.9.9, unknown"), "10.0.0.1");
        // Behind two of our proxies, junk written by the outer one ends the walk there.
        assert_eq!(client("9.9.9.9, junk, 10.2.2.2"), "10.2.2.2");
    }

    #[test]
    fn csrf_check_refuses_foreign_origins_and_form_bodies() {
        let c = config();
        assert!(check_csrf(&headers(&[]), &c).is_ok());
        assert!(check_csrf(&headers(&[("origin", "https://app.example")]), &c).is_ok());
        for bad in [
            headers(&[("origin", "null")]),
            headers(&[("origin", "https://evil.example")]),
            headers(&[("origin", "https://app.example.evil.example")]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("content-type", "application/x-www-form-urlencoded")]),
        ] {
            assert!(matches!(
                check_csrf(&bad, &c),
                Err(ApiError::CsrfRejected(_))
            ));
        }
    }

    #[test]
    fn bearer_tokens_are_read_strictly() {
        assert_eq!(
            bearer(&headers(&[("authorization", "Bearer abc")])).unwrap(),
            "abc"
        );
        assert_eq!(
            bearer(&headers(&[("authorization", "bearer abc")])).unwrap(),
            "abc"
        );
        assert!(matches!(
            bearer(&headers(&[])),
            Err(ApiError::MissingBearer)
        ));
        assert!(matches!(
            bearer(&headers(&[("authorization", "Basic Zm9vOmJhcg==")])),
            Err(ApiError::MissingBearer)
        ));
        for bad in [
            headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]),
            headers(&[("authorization", "Bearer ")]),
            headers(&[("authorization", "Bearer a b")]),
        ] {
            assert!(matches!(
                bearer(&bad),
                Err(ApiError::Core(Error::InvalidToken(_)))
            ));
        }
    }

    #[test]
    fn a_proofs_url_starts_with_the_issuers_origin() {
        assert_eq!(origin_of("https://auth.example"), "https://auth.example");
        assert_eq!(origin_of("https://auth.example/"), "https://auth.example");
        assert_eq!(
            origin_of("https://auth.example/tenant/a"),
            "https://auth.example"
        );
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }

    #[tokio::test]
    async fn bodies_must_be_json_objects() {
        let read = |body: &'static str| async move {
            let req = Request::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from(body))
                .unwrap();
            OptionalJson::<crate::wire::Credentials>::from_request(req, &()).await
        };
        let ok = read(" {\"username\": \"alice\", \"password\": \"pw\"}").await;
        assert!(matches!(ok, Ok(OptionalJson(Some(c))) if c.username == "alice"));
        assert!(matches!(read("").await, Ok(OptionalJson(None))));
        // serde would take these positionally; the API only speaks objects.
        for bad in [
            "[\"alice\", \"pw\"]",
            " [\"alice\", \"pw\", \"body\"]",
            "null",
            "\"x\"",
        ] {
            assert!(
                matches!(read(bad).await, Err(ApiError::BadRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn two_refresh_cookies_are_ambiguous() {
        let one = headers(&[("cookie", "a=1; tessera_refresh=xyz")]);
        assert_eq!(
            refresh_cookie(&one, "tessera_refresh").unwrap().as_deref(),
            Some("xyz")
        );
        let two = headers(&[
            ("cookie", "tessera_refresh=x"),
            ("cookie", "tessera_refresh=y"),
        ]);
        assert!(refresh_cookie(&two, "tessera_refresh").is_err());
        assert_eq!(
            refresh_cookie(&headers(&[]), "tessera_refresh").unwrap(),
            None
        );
    }
}

//! The OAuth 2.0 endpoints: `POST /oauth/token` (the refresh-token grant, RFC 6749 §6),
//! `POST /oauth/revoke` (RFC 7009), `POST /oauth/introspect` (RFC 7662) and the authorization
//! server metadata (RFC 8414).
//!
//! Bodies are `application/x-www-form-urlencoded` only, each parameter at most once (RFC 6749
//! §3.2); a parameter with an empty value counts as absent. Clients authenticate with
//! `client_id` alone (public clients), or with `client_secret_basic` or `client_secret_post`
//! (confidential clients), never with two methods at once. The refresh itself is the core's one
//! implementation of the refresh rules, the one `POST /auth/refresh` uses.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::Serialize;
use tessera_core::dpop;
use tessera_core::{ClientCredentials, ClientKind, ClientRecord, DpopPolicy, Introspection};

use crate::AppState;
use crate::error::{ApiError, OAuthError};
use crate::extract::Client;

/// A form body as RFC 6749 §3.2 reads it: parameters with a value, none repeated.
pub struct Form(HashMap<String, String>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Parses `bytes`: repeated names are refused, empty values dropped.
    fn parse(bytes: &[u8]) -> Result<Self, OAuthError> {
        let mut params = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (name, value) in form_urlencoded::parse(bytes) {
            if !seen.insert(name.clone().into_owned()) {
                return Err(OAuthError::InvalidRequest(format!(
                    "the parameter `{name}` is repeated"
                )));
            }
            if !value.is_empty() {
                params.insert(name.into_owned(), value.into_owned());
            }
        }
        Ok(Self(params))
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, OAuthError> {
        let form_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                mime.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                OAuthError::Api(ApiError::PayloadTooLarge)
            } else {
                OAuthError::InvalidRequest("the request body could not be read".into())
            }
        })?;
        if !form_type {
            return Err(OAuthError::InvalidRequest(
                "the body must be application/x-www-form-urlencoded".into(),
            ));
        }
        Self::parse(&bytes)
    }
}

/// How the client authenticated: its credentials, and whether they came in a Basic header.
struct Authentication {
    credentials: ClientCredentials,
    basic: bool,
}

/// `client_secret_basic`: the id and secret, each form-urlencoded (RFC 6749 §2.3.1), joined by
/// `:` and base64-encoded. `None` without an `Authorization: Basic` header; an undecodable one
/// fails client authentication.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::InvalidRequest(
            "several Authorization headers".into(),
        ));
    }
    let bad = OAuthError::InvalidClient { basic: true };
    let text = value
        .to_str()
        .map_err(|_| OAuthError::InvalidRequest("the Authorization header is not ASCII".into()))?;
    let (scheme, encoded) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let encoded = encoded.trim();
    let decoded = STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded))
        .map_err(|_| OAuthError::InvalidClient { basic: true })?;
    let decoded =
        String::from_utf8(decoded).map_err(|_| OAuthError::InvalidClient { basic: true })?;
    let (id, secret) = decoded.split_once(':').ok_or(bad)?;
    let unform = |s: &str| -> Result<String, OAuthError> {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| OAuthError::InvalidClient { basic: true })
    };
    Ok(Some((unform(id)?, unform(secret)?)))
}

/// The client credentials of a request: Basic, or `client_id` (and `client_secret`) in the form.
fn authentication(headers: &HeaderMap, form: &Form) -> Result<Authentication, OAuthError> {
    let (form_id, form_secret) = (form.get("client_id"), form.get("client_secret"));
    match basic_credentials(headers)? {
        Some((id, secret)) => {
            if form_secret.is_some() {
                return Err(OAuthError::InvalidRequest(
                    "use one client authentication method: Basic or client_secret, not both".into(),
                ));
            }
            if form_id.is_some_and(|f| f != id) {
                return Err(OAuthError::InvalidRequest(
                    "`client_id` differs from the Basic credentials".into(),
                ));
            }
            Ok(Authentication {
                credentials: ClientCredentials {
                    client_id: id,
                    client_secret: Some(secret).filter(|s| !s.is_empty()),
                },
                basic: true,
            })
        }
        None => match form_id {
            Some(id) => Ok(Authentication {
                credentials: ClientCredentials {
                    client_id: id.to_owned(),
                    client_secret: form_secret.map(str::to_owned),
                },
                basic: false,
            }),
            None => Err(OAuthError::InvalidClient { basic: false }),
        },
    }
}

async fn authenticate(
    app: &AppState,
    headers: &HeaderMap,
    form: &Form,
) -> Result<(ClientRecord, bool), OAuthError> {
    let auth = authentication(headers, form)?;
    let client = app
        .tessera
        .authenticate_client(&auth.credentials)
        .await
        .map_err(|e| OAuthError::from_core(e, auth.basic))?;
    Ok((client, auth.basic))
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// RFC 6749 §5.1.
#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
}

/// `POST /oauth/token`: `grant_type=refresh_token` only.
pub async fn token(
    State(app): State<AppState>,
    Client(info): Client,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let response = token_answer(&app, &info, &headers, &form).await;
    crate::handlers::with_dpop_nonce(&app, response.into_response())
}

async fn token_answer(
    app: &AppState,
    info: &tessera_core::ClientInfo,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Response, OAuthError> {
    match form.get("grant_type") {
        Some("refresh_token") => {}
        Some(other) => {
            return Err(OAuthError::UnsupportedGrantType(format!(
                "the grant type `{other}` is not offered; use refresh_token"
            )));
        }
        None => {
            return Err(OAuthError::InvalidRequest(
                "`grant_type` is required".into(),
            ));
        }
    }
    let (client, basic) = authenticate(app, headers, form).await?;
    let Some(refresh_token) = form.get("refresh_token") else {
        return Err(OAuthError::InvalidRequest(
            "`refresh_token` is required".into(),
        ));
    };
    let issued = app
        .tessera
        .refresh_for(Some(refresh_token), Some(&client.id), info)
        .await
        .map_err(|e| OAuthError::from_core(e, basic))?;
    Ok(no_store(
        Json(TokenResponse {
            access_token: issued.access_token,
            token_type: issued.token_type,
            expires_in: issued.expires_in,
            refresh_token: issued.refresh_token,
        })
        .into_response(),
    ))
}

/// `POST /oauth/revoke` (RFC 7009): `200` with an empty body whatever became of the token.
pub async fn revoke(
    State(app): State<AppState>,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, OAuthError> {
    let (client, basic) = authenticate(&app, &headers, &form).await?;
    let Some(token) = form.get("token") else {
        return Err(OAuthError::InvalidRequest("`token` is required".into()));
    };
    // `token_type_hint` is only a hint (RFC 7009 §2.1): both kinds are tried, whatever it says.
    app.tessera
        .revoke_token(&client, token)
        .await
        .map_err(|e| OAuthError::from_core(e, basic))?;
    Ok(no_store(StatusCode::OK.into_response()))
}

/// RFC 7662 §2.2.
#[derive(Serialize, Default)]
struct IntrospectionResponse {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<tessera_core::access_token::Confirmation>,
}

/// `POST /oauth/introspect` (RFC 7662), for confidential clients. Never consumes a token.
pub async fn introspect(
    State(app): State<AppState>,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, OAuthError> {
    let (client, basic) = authenticate(&app, &headers, &form).await?;
    if client.kind != ClientKind::Confidential {
        return Err(OAuthError::InvalidClient { basic });
    }
    let Some(token) = form.get("token") else {
        return Err(OAuthError::InvalidRequest("`token` is required".into()));
    };
    let found = app
        .tessera
        .introspect(token)
        .await
        .map_err(|e| OAuthError::from_core(e, basic))?;
    let body = match found {
        Introspection::Inactive => IntrospectionResponse::default(),
        Introspection::Access(c) => IntrospectionResponse {
            active: true,
            sub: Some(c.sub.to_string()),
            client_id: Some(c.client_id),
            username: Some(c.username),
            sid: Some(c.sid.to_string()),
            iss: Some(c.iss),
            aud: Some(c.aud),
            exp: Some(c.exp),
            iat: Some(c.iat),
            jti: Some(c.jti.to_string()),
            token_type: Some(if c.cnf.is_some() { "DPoP" } else { "Bearer" }),
            cnf: c.cnf,
        },
        Introspection::Refresh {
            session,
            expires_at,
        } => IntrospectionResponse {
            active: true,
            sub: Some(session.user_id.to_string()),
            client_id: Some(session.client_id),
            sid: Some(session.id.to_string()),
            exp: Some(expires_at.as_secs()),
            token_type: Some("refresh_token"),
            ..Default::default()
        },
    };
    Ok(no_store(Json(body).into_response()))
}

/// RFC 8414 §2, as far as Tessera offers it.
#[derive(Serialize)]
struct Metadata {
    issuer: String,
    token_endpoint: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    jwks_uri: String,
    grant_types_supported: [&'static str; 1],
    token_endpoint_auth_methods_supported: [&'static str; 3],
    revocation_endpoint_auth_methods_supported: [&'static str; 3],
    introspection_endpoint_auth_methods_supported: [&'static str; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    dpop_signing_alg_values_supported: Option<Vec<&'static str>>,
}

/// `GET /.well-known/oauth-authorization-server` (and, for an issuer with a path, the same
/// with the path appended, RFC 8414 §3.1).
pub async fn metadata(State(app): State<AppState>) -> Response {
    let issuer = app.tessera.settings().issuer.clone();
    let base = issuer.trim_end_matches('/').to_owned();
    let mut response = Json(Metadata {
        token_endpoint: format!("{base}/oauth/token"),
        revocation_endpoint: format!("{base}/oauth/revoke"),
        introspection_endpoint: format!("{base}/oauth/introspect"),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        issuer,
        grant_types_supported: ["refresh_token"],
        token_endpoint_auth_methods_supported: [
            "none",
            "client_secret_basic",
            "client_secret_post",
        ],
        revocation_endpoint_auth_methods_supported: [
            "none",
            "client_secret_basic",
            "client_secret_post",
        ],
        introspection_endpoint_auth_methods_supported: [
            "client_secret_basic",
            "client_secret_post",
        ],
        dpop_signing_alg_values_supported: (app.tessera.settings().dpop != DpopPolicy::Off)
            .then(|| dpop::ALGORITHMS.iter().map(|a| a.as_str()).collect()),
    })
    .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// The path component of an issuer URL (`https://a.example/tenant` → `/tenant`), when it has
/// one that can be routed as is; `None` for an issuer at the root of its host.
pub fn issuer_path(issuer: &str) -> Option<String> {
    let rest = issuer.split_once("://")?.1;
    let path = rest.find('/').map(|i| &rest[i..])?;
    let path = path.trim_end_matches('/');
    let routable = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '.' | '_' | '~'));
    (!path.is_empty() && routable && !path.contains("//")).then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_repeated_parameter_is_refused_and_empty_ones_are_absent() {
        let form = Form::parse(b"grant_type=refresh_token&scope=&client_id=a%2Bb").unwrap();
        assert_eq!(form.get("grant_type"), Some("refresh_token"));
        assert_eq!(form.get("scope"), None);
        assert_eq!(form.get("client_id"), Some("a+b"));
        assert!(Form::parse(b"client_id=a&client_id=a").is_err());
        assert!(Form::parse(b"client_id=&client_id=a").is_err());
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut headers = HeaderMap::new();
        // "my%20id:s%2Bcr+t" — RFC 6749 §2.3.1 encodes before base64.
        let value = format!("Basic {}", STANDARD.encode("my%20id:s%2Bcr+t"));
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        assert_eq!(
            basic_credentials(&headers).unwrap(),
            Some(("my id".to_owned(), "s+cr t".to_owned()))
        );
        headers.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert!(matches!(
            basic_credentials(&headers),
            Err(OAuthError::InvalidClient { basic: true })
        ));
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(basic_credentials(&headers).unwrap(), None);
    }

    #[test]
    fn an_issuer_path_is_found() {
        assert_eq!(issuer_path("https://a.example"), None);
        assert_eq!(issuer_path("https://a.example/"), None);
        assert_eq!(
            issuer_path("https://a.example/tenant/one/").as_deref(),
            Some("/tenant/one")
        );
        assert_eq!(issuer_path("https://a.example/{x}"), None);
    }
}

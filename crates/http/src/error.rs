//! [`ApiError`]: the one place where outcomes become status codes and JSON error bodies.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_core::dpop::{self, InvalidProof};
use tessera_core::{Error, ErrorChain, InvalidToken, RefreshRejection};

/// Everything an endpoint can answer with instead of success.
#[derive(Debug)]
pub enum ApiError {
    /// An outcome of the session service.
    Core(Error),
    /// A malformed request: bad JSON, a missing or over-long field, a wrong content type.
    BadRequest(String),
    /// The body is over the 16 KiB limit.
    PayloadTooLarge,
    /// A cookie-authenticated request from a disallowed origin or site.
    CsrfRejected(std::borrow::Cow<'static, str>),
    /// No Bearer token was sent.
    MissingBearer,
    /// The admin secret is missing, wrong, or was sent outside the `Authorization` header.
    AdminUnauthorized(&'static str),
    /// A login's DPoP proof is missing (DPoP required), invalid, or lacks a current nonce:
    /// `400`, as an authorization server answers (RFC 9449 §5).
    LoginDpopProof(InvalidProof),
    /// No route.
    NotFound,
    /// A route, but not for this method.
    MethodNotAllowed,
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self::Core(e)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    error_description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

fn retry_after(d: Duration) -> HeaderValue {
    // Rounded up: "retry after 0 seconds" would invite an immediate, refused retry.
    HeaderValue::from(seconds_rounded_up(d).max(1))
}

/// Whole seconds, rounded up: for `Retry-After` (an early retry is refused) and the refresh
/// cookie's `Max-Age` (rounded down, 0.9 s left would be `Max-Age=0`, which deletes a cookie
/// that still works).
pub(crate) fn seconds_rounded_up(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

impl ApiError {
    /// Status, error code, description and refresh `reason`: the one place an outcome becomes a
    /// status code (and where internal failures are logged, since their body says nothing).
    fn parts(&self) -> (StatusCode, &'static str, String, Option<&'static str>) {
        match self {
            Self::Core(e) => match e {
                Error::InvalidRequest(m) => {
                    (StatusCode::BAD_REQUEST, "invalid_request", m.clone(), None)
                }
                Error::InvalidCredentials => (
                    StatusCode::UNAUTHORIZED,
                    "invalid_credentials",
                    e.to_string(),
                    None,
                ),
                Error::RateLimited { .. } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many failed attempts; retry after the time in Retry-After".to_owned(),
                    None,
                ),
                Error::InvalidToken(why) => (
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    why.to_string(),
                    None,
                ),
                Error::InvalidRefreshToken(r) => (
                    StatusCode::UNAUTHORIZED,
                    "invalid_refresh_token",
                    refresh_description(*r).to_owned(),
                    Some(r.as_str()),
                ),
                Error::InvalidDpopProof(why) => (
                    StatusCode::UNAUTHORIZED,
                    why.error_code(),
                    why.to_string(),
                    None,
                ),
                Error::AccountDisabled => (
                    StatusCode::FORBIDDEN,
                    "account_disabled",
                    e.to_string(),
                    None,
                ),
                Error::InvalidResetToken => (
                    StatusCode::BAD_REQUEST,
                    "invalid_reset_token",
                    e.to_string(),
                    None,
                ),
                Error::InvalidClient => (
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    e.to_string(),
                    None,
                ),
                Error::RegistrationClosed => (
                    StatusCode::FORBIDDEN,
                    "registration_closed",
                    e.to_string(),
                    None,
                ),
                Error::UsernameTaken => {
                    (StatusCode::CONFLICT, "username_taken", e.to_string(), None)
                }
                Error::NotFound => (StatusCode::NOT_FOUND, "not_found", e.to_string(), None),
                Error::Unavailable(source) => {
                    tracing::warn!(error = %ErrorChain(source.as_ref()), "storage unavailable");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "the service is temporarily unavailable; retry shortly".to_owned(),
                        None,
                    )
                }
                Error::Internal(_) => {
                    tracing::error!(error = %e, "internal error");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "server_error",
                        "internal error".to_owned(),
                        None,
                    )
                }
            },
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, "invalid_request", m.clone(), None),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "request body is over 16 KiB".to_owned(),
                None,
            ),
            Self::CsrfRejected(m) => (StatusCode::FORBIDDEN, "csrf_rejected", m.to_string(), None),
            Self::MissingBearer => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "an Authorization: Bearer token is required".to_owned(),
                None,
            ),
            Self::AdminUnauthorized(m) => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                (*m).to_owned(),
                None,
            ),
            Self::LoginDpopProof(why) => (
                StatusCode::BAD_REQUEST,
                why.error_code(),
                why.to_string(),
                None,
            ),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "no such resource".to_owned(),
                None,
            ),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this method is not allowed here".to_owned(),
                None,
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, description, reason) = self.parts();
        let mut response = (
            status,
            Json(Body {
                error: code,
                error_description: description,
                reason,
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        match &self {
            Self::MissingBearer => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::AdminUnauthorized(m) => {
                let challenge =
                    format!("Bearer error=\"invalid_token\", error_description=\"{m}\"");
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            Self::Core(Error::InvalidToken(
                m @ (InvalidToken::DpopBound | InvalidToken::NotDpopBound),
            )) => {
                insert_dpop_challenge(headers, "invalid_token", &m.to_string());
            }
            Self::Core(Error::InvalidDpopProof(why)) => {
                insert_dpop_challenge(headers, why.error_code(), &why.to_string());
            }
            Self::Core(Error::InvalidToken(m)) => {
                // The descriptions are our own static ASCII texts, without quotes.
                let challenge =
                    format!("Bearer error=\"invalid_token\", error_description=\"{m}\"");
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            Self::Core(Error::RateLimited { retry_after: d }) => {
                headers.insert(header::RETRY_AFTER, retry_after(*d));
            }
            Self::Core(Error::Unavailable(_)) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// `WWW-Authenticate: DPoP error="…", algs="ES256 EdDSA"` (RFC 9449 §7.1). The descriptions are
/// our own static ASCII texts, without quotes.
fn insert_dpop_challenge(headers: &mut axum::http::HeaderMap, code: &str, description: &str) {
    if let Ok(v) = HeaderValue::from_str(&dpop::challenge(code, description)) {
        headers.insert(header::WWW_AUTHENTICATE, v);
    }
}

fn refresh_description(r: RefreshRejection) -> &'static str {
    match r {
        RefreshRejection::Missing => "no refresh token was sent",
        RefreshRejection::Unknown => "the refresh token is not recognised",
        RefreshRejection::Revoked => "the session has been revoked",
        RefreshRejection::Expired => "the session has expired",
        RefreshRejection::Reused => {
            "the refresh token was already used; the session has been revoked"
        }
        RefreshRejection::ClientMismatch => "the refresh token was issued to another client",
        RefreshRejection::DpopMismatch => {
            "the session is bound to another DPoP key; nothing was changed"
        }
    }
}

/// An answer of the OAuth endpoints (`/oauth/*`) other than success: the error codes and
/// status codes of RFC 6749 §5.2 (and RFC 7009 / 7662, which reuse them). Failures that are
/// not OAuth's own (a body over 16 KiB, throttling, an unavailable database) keep Tessera's
/// usual answers.
#[derive(Debug)]
pub enum OAuthError {
    /// `400 invalid_request`: a malformed request (wrong content type, a repeated or missing
    /// parameter, two client authentication methods).
    InvalidRequest(String),
    /// `401 invalid_client`, with a `WWW-Authenticate: Basic` challenge when the client tried
    /// Basic authentication.
    InvalidClient {
        /// Whether the request carried `Authorization: Basic`.
        basic: bool,
    },
    /// `400 invalid_grant` with Tessera's `reason`: the refresh token was refused.
    InvalidGrant(RefreshRejection),
    /// `400 unsupported_grant_type`.
    UnsupportedGrantType(String),
    /// `400 invalid_dpop_proof` or `400 use_dpop_nonce` (RFC 9449 §5, §8).
    InvalidDpopProof(InvalidProof),
    /// Anything else, answered as everywhere in Tessera.
    Api(ApiError),
}

impl OAuthError {
    /// A core outcome in OAuth's terms (`basic`: whether the client used Basic authentication).
    pub fn from_core(e: Error, basic: bool) -> Self {
        match e {
            Error::InvalidRefreshToken(RefreshRejection::Missing) => {
                Self::InvalidRequest("`refresh_token` is required".into())
            }
            Error::InvalidRefreshToken(r) => Self::InvalidGrant(r),
            Error::InvalidClient => Self::InvalidClient { basic },
            Error::InvalidDpopProof(why) => Self::InvalidDpopProof(why),
            Error::InvalidRequest(m) => Self::InvalidRequest(m),
            other => Self::Api(ApiError::Core(other)),
        }
    }
}

impl From<ApiError> for OAuthError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::BadRequest(m) => Self::InvalidRequest(m),
            other => Self::Api(other),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let basic = matches!(self, Self::InvalidClient { basic: true });
        let (status, code, description, reason) = match self {
            Self::Api(e) => return e.into_response(),
            Self::InvalidRequest(m) => (StatusCode::BAD_REQUEST, "invalid_request", m, None),
            Self::InvalidClient { .. } => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed".to_owned(),
                None,
            ),
            Self::InvalidGrant(r) => (
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                refresh_description(r).to_owned(),
                Some(r.as_str()),
            ),
            Self::UnsupportedGrantType(m) => {
                (StatusCode::BAD_REQUEST, "unsupported_grant_type", m, None)
            }
            Self::InvalidDpopProof(why) => (
                StatusCode::BAD_REQUEST,
                why.error_code(),
                why.to_string(),
                None,
            ),
        };
        let mut response = (
            status,
            Json(Body {
                error: code,
                error_description: description,
                reason,
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        if basic {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tessera\", charset=\"UTF-8\""),
            );
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_up_so_a_cookie_with_time_left_is_not_deleted() {
        assert_eq!(seconds_rounded_up(Duration::from_millis(900)), 1);
        assert_eq!(seconds_rounded_up(Duration::from_millis(1_000)), 1);
        assert_eq!(seconds_rounded_up(Duration::from_millis(1_001)), 2);
        assert_eq!(seconds_rounded_up(Duration::ZERO), 0);
    }

    #[tokio::test]
    async fn a_500_says_nothing_of_its_cause() {
        let driver = std::io::Error::other("disk I/O error on page 7");
        let error = Error::from(tessera_core::StoreError::Other(Box::new(driver)));
        let response = ApiError::Core(error).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("server_error") && !text.contains("disk"),
            "{text}"
        );
    }
}

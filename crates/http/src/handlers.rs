//! The `/auth/*` endpoints.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use tessera_core::{Error, InvalidToken, Issued, RefreshRejection, RevokeReason};
use uuid::Uuid;

use crate::error::{ApiError, seconds_rounded_up};
use crate::extract::{
    Client, JsonBody, LiveSession, OptionalJson, bearer, check_csrf, cookie_values, refresh_cookie,
};
use crate::wire::{
    Credentials, Delivery, Me, PasswordChange, PasswordChanged, PasswordResetBody, RefreshBody,
    Registered, ResetRequest, RevocationsQuery, SessionList, SessionView, TokenResponse,
};
use crate::{AppState, HttpConfig};
use tessera_token::revocations::{
    Cursor, DEFAULT_LIMIT, MAX_LIMIT, RevocationList, Revoked, parse_limit, parse_since,
};

pub async fn register(
    State(app): State<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Response, ApiError> {
    let user = app
        .tessera
        .register(&body.username, body.password, &client)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            user_id: user.id,
            username: user.username,
        }),
    )
        .into_response())
}

pub async fn login(
    State(app): State<AppState>,
    Client(mut client): Client,
    headers: HeaderMap,
    JsonBody(creds): JsonBody<Credentials>,
) -> Response {
    client.device_tokens = cookie_values(&headers, &app.config.device_cookie_name());
    client.device_tokens.extend(creds.device_token);
    let issued = app
        .tessera
        .login_for(
            &creds.username,
            creds.password,
            creds.client_id.as_deref(),
            &client,
        )
        .await
        .map_err(|e| match e {
            Error::InvalidDpopProof(why) => ApiError::LoginDpopProof(why),
            other => ApiError::Core(other),
        });
    let response = issued.map(|i| token_response(&app, i, creds.delivery));
    with_dpop_nonce(&app, response.into_response())
}

/// Adds the current server nonce (`DPoP-Nonce`, RFC 9449 §8) to an answer of an endpoint that
/// takes proofs, when nonces are on: the client's next proof carries it.
pub(crate) fn with_dpop_nonce(app: &AppState, mut response: Response) -> Response {
    if let Some(nonce) = app.tessera.dpop_nonce()
        && let Ok(v) = HeaderValue::from_str(&nonce)
    {
        response.headers_mut().insert("dpop-nonce", v);
    }
    response
}

/// Where a refresh or logout found its token.
enum Presented {
    Body(Option<String>),
    Cookie(Option<String>),
}

/// Finds the refresh token in the body or the cookie (not both), applying the CSRF check to
/// cookie-authenticated calls.
fn presented_token(
    app: &AppState,
    headers: &HeaderMap,
    body: Option<RefreshBody>,
) -> Result<Presented, ApiError> {
    let from_body = body.and_then(|b| b.refresh_token);
    let from_cookie = refresh_cookie(headers, &app.config.cookie_name())?;
    match (from_body, from_cookie) {
        (Some(_), Some(_)) => Err(ApiError::BadRequest(
            "send the refresh token in the cookie or in the body, not both".into(),
        )),
        (Some(token), None) => Ok(Presented::Body(Some(token))),
        (None, cookie) => {
            check_csrf(headers, &app.config)?;
            Ok(Presented::Cookie(cookie))
        }
    }
}

pub async fn refresh(
    State(app): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<RefreshBody>,
) -> Response {
    let response = refresh_answer(&app, &client, &headers, body).await;
    with_dpop_nonce(&app, response.into_response())
}

async fn refresh_answer(
    app: &AppState,
    client: &tessera_core::ClientInfo,
    headers: &HeaderMap,
    body: Option<RefreshBody>,
) -> Result<Response, ApiError> {
    let presented = presented_token(app, headers, body)?;
    let (token, delivery) = match &presented {
        Presented::Body(t) => (t.as_deref(), Delivery::Body),
        Presented::Cookie(t) => (t.as_deref(), Delivery::Cookie),
    };
    match app.tessera.refresh(token, client).await {
        Ok(issued) => Ok(token_response(app, issued, delivery)),
        Err(e @ Error::InvalidRefreshToken(reason)) if delivery == Delivery::Cookie => {
            let mut response = ApiError::Core(e).into_response();
            // A dead cookie is cleared so the browser stops sending it. A missing one has
            // nothing to clear.
            if reason != RefreshRejection::Missing {
                set_cookie(&mut response, clear_cookie(&app.config));
            }
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<RefreshBody>,
) -> Result<Response, ApiError> {
    let token = match presented_token(&app, &headers, body)? {
        Presented::Body(t) | Presented::Cookie(t) => t,
    };
    app.tessera.logout(token.as_deref()).await?;
    Ok(no_content_clearing_cookie(&app.config))
}

pub async fn logout_all(
    State(app): State<AppState>,
    LiveSession(claims): LiveSession,
) -> Result<Response, ApiError> {
    app.tessera.logout_all(claims.sub).await?;
    Ok(no_content_clearing_cookie(&app.config))
}

pub async fn me(LiveSession(claims): LiveSession) -> Json<Me> {
    Json(Me {
        user_id: claims.sub,
        username: claims.username,
        session_id: claims.sid,
    })
}

pub async fn sessions(
    State(app): State<AppState>,
    LiveSession(claims): LiveSession,
) -> Result<Response, ApiError> {
    let names: std::collections::HashMap<String, String> = app
        .tessera
        .clients()
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let sessions = app
        .tessera
        .sessions(Some(claims.sub))
        .await?
        .into_iter()
        .map(|s| SessionView {
            client: names
                .get(&s.record.client_id)
                .cloned()
                .unwrap_or_else(|| s.record.client_id.clone()),
            id: s.record.id,
            created_at: s.record.created_at.to_rfc3339(),
            last_used_at: s.record.last_used_at.to_rfc3339(),
            expires_at: s.expires_at.to_rfc3339(),
            user_agent: s.record.user_agent,
            ip: s.record.ip.map(|ip| ip.to_string()),
            current: s.record.id == claims.sid,
        })
        .collect();
    Ok(no_store(Json(SessionList { sessions }).into_response()))
}

pub async fn revoke_session(
    State(app): State<AppState>,
    LiveSession(claims): LiveSession,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    // A path segment that is not UTF-8 once percent-decoded (`%FF`) names no session either:
    // the same JSON 404 as an unknown id, not axum's plain-text 400.
    let Ok(Path(id)) = id else {
        return Err(ApiError::NotFound);
    };
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
    app.tessera
        .revoke_session(id, Some(claims.sub), RevokeReason::User)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /auth/password`: a live session's holder changes the password (proving the current
/// one); every other session of the user ends.
pub async fn change_password(
    State(app): State<AppState>,
    LiveSession(claims): LiveSession,
    Client(client): Client,
    JsonBody(body): JsonBody<PasswordChange>,
) -> Result<Response, ApiError> {
    let revoked_sessions = app
        .tessera
        .change_password(
            claims.sub,
            claims.sid,
            body.current_password,
            body.new_password,
            &client,
        )
        .await?;
    Ok(no_store(
        Json(PasswordChanged { revoked_sessions }).into_response(),
    ))
}

/// `POST /auth/password-reset/request`: `202` whether or not the user exists.
pub async fn request_password_reset(
    State(app): State<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    app.tessera
        .request_password_reset(&body.username, &client)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /auth/password-reset`: a reset token sets a new password; every session ends.
pub async fn reset_password(
    State(app): State<AppState>,
    JsonBody(body): JsonBody<PasswordResetBody>,
) -> Result<Response, ApiError> {
    app.tessera
        .reset_password(&body.token, body.new_password)
        .await?;
    Ok(no_store(StatusCode::NO_CONTENT.into_response()))
}

/// `GET /auth/revocations`: sessions ended since `since`, for resource services that hold the
/// shared secret. Without a configured secret the route does not exist (`404`), so it cannot be
/// probed; the secret is checked before anything else is read.
pub async fn revocations(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<RevocationsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Some(secret) = &app.config.revocations_token else {
        return Err(ApiError::NotFound);
    };
    if !secret.matches(bearer(&headers)?) {
        return Err(ApiError::Core(Error::InvalidToken(
            InvalidToken::NotRevocationsToken,
        )));
    }
    let Query(query) =
        query.map_err(|_| ApiError::BadRequest("the query string cannot be read".into()))?;
    let since = match query.since.as_deref() {
        None => None,
        Some(text) => Some(parse_since(text).ok_or_else(|| {
            ApiError::BadRequest(
                "`since` must be milliseconds since the Unix epoch or an RFC 3339 time".into(),
            )
        })?),
    };
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => parse_limit(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`limit` must be a whole number from 1 to {MAX_LIMIT}"
            ))
        })?,
    };
    let cursor = match query.cursor.as_deref() {
        None => None,
        Some(text) => Some(Cursor::parse(text).ok_or_else(|| {
            ApiError::BadRequest("`cursor` must be a previous page's `next`".into())
        })?),
    };
    let found = app.tessera.revocations(since, cursor, limit).await?;
    let list = RevocationList {
        since: found.since.to_rfc3339(),
        until: found.until.to_rfc3339(),
        revocations: found
            .sessions
            .into_iter()
            .map(|(session_id, at)| Revoked {
                session_id,
                revoked_at: at.to_rfc3339(),
            })
            .collect(),
        next: found.next.map(|c| c.encode()),
    };
    Ok(no_store(Json(list).into_response()))
}

pub(crate) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn token_response(app: &AppState, issued: Issued, delivery: Delivery) -> Response {
    let config = &app.config;
    let in_body = delivery == Delivery::Body;
    let device_token = issued.device_token.map(|t| t.expose().to_owned());
    let mut response = no_store(
        Json(TokenResponse {
            access_token: issued.access_token,
            token_type: issued.token_type,
            expires_in: issued.expires_in,
            session_id: issued.session_id,
            refresh_token: in_body.then(|| issued.refresh_token.clone()),
            device_token: device_token.clone().filter(|_| in_body),
        })
        .into_response(),
    );
    if delivery == Delivery::Cookie {
        let max_age = |ttl| i64::try_from(seconds_rounded_up(ttl)).unwrap_or(i64::MAX);
        set_cookie(
            &mut response,
            cookie_value(
                config.cookie_name(),
                config,
                issued.refresh_token,
                max_age(issued.refresh_ttl),
            ),
        );
        if let Some(token) = device_token {
            set_cookie(
                &mut response,
                cookie_value(
                    config.device_cookie_name(),
                    config,
                    token,
                    max_age(app.tessera.settings().throttle.device_token_ttl),
                ),
            );
        }
    }
    response
}

/// The refresh or device cookie: HttpOnly, SameSite=Strict, sent only to the `/auth` routes,
/// `Secure` unless configured otherwise.
fn cookie_value(
    name: String,
    config: &HttpConfig,
    value: String,
    max_age_secs: i64,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .secure(config.cookie_secure)
        .same_site(SameSite::Strict)
        .path(config.cookie_path.clone())
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build()
}

fn clear_cookie(config: &HttpConfig) -> Cookie<'static> {
    cookie_value(config.cookie_name(), config, String::new(), 0)
}

fn set_cookie(response: &mut Response, cookie: Cookie<'static>) {
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn no_content_clearing_cookie(config: &HttpConfig) -> Response {
    let mut response = no_store(StatusCode::NO_CONTENT.into_response());
    set_cookie(&mut response, clear_cookie(config));
    response
}

// Operations: the JWKS, health, readiness, metrics, and the JSON 404/405 answers.

pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

pub async fn jwks(State(app): State<AppState>) -> Response {
    let mut response = axum::Json(app.tessera.jwks()).into_response();
    // Short, so resource servers see a rotated-in key well before it starts signing.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=5"),
    );
    response
}

pub async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

pub async fn readyz(State(app): State<AppState>) -> Result<Response, ApiError> {
    app.tessera.ready().await?;
    Ok(axum::Json(serde_json::json!({"status": "ready"})).into_response())
}

pub async fn metrics(State(app): State<AppState>) -> Result<Response, ApiError> {
    let handle = app.config.metrics.as_ref().ok_or(ApiError::NotFound)?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response())
}

//! The admin API under `/admin`: users and their sessions, for an operator's tools. Every route
//! needs `Authorization: Bearer <admin token>` ([`AdminToken`](crate::AdminToken), compared in
//! constant time); without a configured token every route answers `404`, as if there were none.
//! The token is accepted only in that header: found in a cookie or a query parameter (where
//! proxies, logs and browser history keep it), the request is refused.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRef, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use tessera_core::{RevokeReason, User};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{JsonBody, bearer};
use crate::handlers::no_store;
use crate::wire::{
    AdminSessionList, AdminSessionView, AdminUser, AdminUserList, CreatedUser, NewUser,
    ResetIssued, UsersQuery,
};

/// Users per page of `GET /admin/users` unless `limit` says otherwise.
const DEFAULT_PAGE: u32 = 100;
/// The largest `limit` accepted.
const MAX_PAGE: u32 = 1000;

/// The `/admin` routes, for `.nest("/admin", …)`.
pub fn router<S: Clone + Send + Sync + 'static>(state: AppState) -> Router<S> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user).delete(delete_user))
        .route("/users/{id}/disable", post(disable_user))
        .route("/users/{id}/enable", post(enable_user))
        .route("/users/{id}/sessions", get(user_sessions))
        .route("/users/{id}/password-reset", post(password_reset))
        .route("/sessions/{id}", delete(revoke_session))
        .method_not_allowed_fallback(wrong_method)
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(crate::MAX_BODY_BYTES))
        .with_state(state)
}

/// An admin request: the admin token is configured and was sent, alone, in the header.
/// Checked before anything else, so without the token nothing (not even whether an id exists)
/// can be learned.
struct Admin;

impl<S: Send + Sync> FromRequestParts<S> for Admin
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let app = AppState::from_ref(state);
        let Some(token) = &app.config.admin_token else {
            return Err(ApiError::NotFound);
        };
        if leaked_in_query_or_cookie(parts, |v| token.matches(v)) {
            return Err(ApiError::AdminUnauthorized(
                "the admin token is accepted only in the Authorization header",
            ));
        }
        if !token.matches(bearer(&parts.headers)?) {
            return Err(ApiError::AdminUnauthorized("this is not the admin token"));
        }
        Ok(Admin)
    }
}

/// Whether any query parameter or cookie value (or name) is the admin token. Each is compared
/// whole, in constant time, so the check itself reveals nothing about the token.
fn leaked_in_query_or_cookie(parts: &Parts, is_token: impl Fn(&str) -> bool) -> bool {
    let in_query = parts.uri.query().is_some_and(|q| {
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(pairs)| pairs.iter().any(|(k, v)| is_token(k) || is_token(v)))
            .unwrap_or(false)
            || q.split('&').any(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                is_token(k) || is_token(v)
            })
    });
    let in_cookie = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|pair| {
            let (k, v) = pair.trim().split_once('=').unwrap_or((pair.trim(), ""));
            is_token(k) || is_token(v)
        });
    in_query || in_cookie
}

async fn not_found(_: Admin) -> ApiError {
    ApiError::NotFound
}

/// `405` only to the holder of the token: to anyone else the API does not exist.
async fn wrong_method(_: Admin) -> ApiError {
    ApiError::MethodNotAllowed
}

/// A path id: anything that is not a UUID names nothing (`404`, like an unknown one).
fn id_of(id: Result<Path<String>, PathRejection>) -> Result<Uuid, ApiError> {
    let Ok(Path(id)) = id else {
        return Err(ApiError::NotFound);
    };
    Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)
}

fn view(user: User, sessions: u64) -> AdminUser {
    AdminUser {
        id: user.id,
        username: user.username,
        created_at: user.created_at.to_rfc3339(),
        disabled: user.disabled_at.is_some(),
        sessions,
    }
}

async fn list_users(
    _: Admin,
    State(app): State<AppState>,
    query: Result<Query<UsersQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::BadRequest("malformed query".into()))?;
    let after = match query.after.as_deref() {
        None | Some("") => None,
        Some(text) => Some(Uuid::parse_str(text).map_err(|_| {
            ApiError::BadRequest("`after` must be a user id (the previous page's `next`)".into())
        })?),
    };
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::BadRequest(format!("`limit` must be from 1 to {MAX_PAGE}")))?,
    };
    // One more than asked: whether it comes back says whether there is a next page.
    let mut page = app.tessera.users_page(after, limit + 1).await?;
    let more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let next = if more {
        page.last().map(|s| s.user.id)
    } else {
        None
    };
    let users = page
        .into_iter()
        .map(|s| view(s.user, s.live_sessions))
        .collect();
    Ok(no_store(
        Json(AdminUserList { users, next }).into_response(),
    ))
}

async fn create_user(
    _: Admin,
    State(app): State<AppState>,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<Response, ApiError> {
    let user = app
        .tessera
        .create_user(&body.username, body.password)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            id: user.id,
            username: user.username,
        }),
    )
        .into_response())
}

async fn get_user(
    _: Admin,
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let user = app.tessera.user_by_id(id_of(id)?).await?;
    let sessions = app.tessera.sessions(Some(user.id)).await?.len() as u64;
    Ok(no_store(Json(view(user, sessions)).into_response()))
}

async fn disable_user(
    _: Admin,
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    app.tessera.disable_user(id_of(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn enable_user(
    _: Admin,
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    app.tessera.enable_user(id_of(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_user(
    _: Admin,
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    app.tessera.delete_user(id_of(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn user_sessions(
    _: Admin,
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let user = app.tessera.user_by_id(id_of(id)?).await?;
    let sessions = app
        .tessera
        .sessions(Some(user.id))
        .await?
        .into_iter()
        .map(|s| AdminSessionView {
            id: s.record.id,
            created_at: s.record.created_at.to_rfc3339(),
            last_used_at: s.record.last_used_at.to_rfc3339(),
            expires_at: s.expires_at.to_rfc3339(),
            user_agent: s.record.user_agent,
            ip: s.record.ip.map(|ip| ip.to_string()),
        })
        .collect();
    Ok(no_store(
        Json(AdminSessionList { sessions }).into_response(),
    ))
}

async fn revoke_session(
    _: Admin,
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    app.tessera
        .revoke_session(id_of(id)?, None, RevokeReason::Admin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn password_reset(
    _: Admin,
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let reset = app
        .tessera
        .create_password_reset(id_of(id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(no_store(
        (
            StatusCode::CREATED,
            Json(ResetIssued {
                token: reset.token.expose().to_owned(),
                expires_at: reset.expires_at.to_rfc3339(),
            }),
        )
            .into_response(),
    ))
}

//! Request and response bodies, as they appear on the wire.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST /auth/register` and `POST /auth/login`.
#[derive(Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub delivery: Delivery,
    /// The public OAuth client the session is for (login only; default `tessera`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// A device token an earlier login returned (login only, for body delivery; browsers send
    /// the `tessera_device` cookie instead).
    #[serde(default)]
    pub device_token: Option<String>,
}

/// Where the login's refresh token goes.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// An HttpOnly cookie (browsers).
    #[default]
    Cookie,
    /// The response body (native apps, CLIs, servers).
    Body,
}

/// `POST /auth/refresh` and `POST /auth/logout` with the token in the body.
#[derive(Deserialize, Default)]
pub struct RefreshBody {
    pub refresh_token: Option<String>,
}

#[derive(Serialize)]
pub struct Registered {
    pub user_id: Uuid,
    pub username: String,
}

/// RFC 6749 §5.1-shaped token response.
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub session_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// A login's device token, with body delivery (a cookie otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
}

#[derive(Serialize)]
pub struct Me {
    pub user_id: Uuid,
    pub username: String,
    pub session_id: Uuid,
}

#[derive(Serialize)]
pub struct SessionView {
    pub id: Uuid,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// The name of the OAuth client the session belongs to.
    pub client: String,
    pub current: bool,
}

#[derive(Serialize)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// `GET /auth/revocations?since=…&limit=…&cursor=…`, each read as text and parsed by the
/// handler, so that a bad value gets an error naming the parameter.
#[derive(Deserialize, Default)]
pub struct RevocationsQuery {
    pub since: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// `POST /auth/password`.
#[derive(Deserialize)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Serialize)]
pub struct PasswordChanged {
    pub revoked_sessions: u64,
}

/// `POST /auth/password-reset/request`.
#[derive(Deserialize)]
pub struct ResetRequest {
    pub username: String,
}

/// `POST /auth/password-reset`.
#[derive(Deserialize)]
pub struct PasswordResetBody {
    pub token: String,
    pub new_password: String,
}

/// `POST /admin/users`.
#[derive(Deserialize)]
pub struct NewUser {
    pub username: String,
    pub password: String,
}

#[derive(Serialize)]
pub struct CreatedUser {
    pub id: Uuid,
    pub username: String,
}

/// A user as the admin API shows it.
#[derive(Serialize)]
pub struct AdminUser {
    pub id: Uuid,
    pub username: String,
    pub created_at: String,
    pub disabled: bool,
    pub sessions: u64,
}

#[derive(Serialize)]
pub struct AdminUserList {
    pub users: Vec<AdminUser>,
    pub next: Option<Uuid>,
}

/// `GET /admin/users?after=&limit=`.
#[derive(Deserialize, Default)]
pub struct UsersQuery {
    pub after: Option<String>,
    pub limit: Option<String>,
}

/// A session as the admin API lists it (`/auth/sessions`' shape without `current`).
#[derive(Serialize)]
pub struct AdminSessionView {
    pub id: Uuid,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

#[derive(Serialize)]
pub struct AdminSessionList {
    pub sessions: Vec<AdminSessionView>,
}

#[derive(Serialize)]
pub struct ResetIssued {
    pub token: String,
    pub expires_at: String,
}

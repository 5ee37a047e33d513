//! Request and response bodies, as they appear on the wire.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// `POST /auth/register` and `POST /auth/login`.
#[derive(Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub delivery: Delivery,
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
    pub current: bool,
}

#[derive(Serialize)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// `GET /auth/revocations?since=…`.
#[derive(Deserialize, Default)]
pub struct RevocationsQuery {
    pub since: Option<String>,
}

/// One ended session in `GET /auth/revocations`.
#[derive(Serialize)]
pub struct Revoked {
    pub session_id: Uuid,
    pub revoked_at: String,
}

/// `GET /auth/revocations`: what was revoked from `since` (clamped to the access-token
/// lifetime plus leeway) until `until` (the issuer's clock at the read).
#[derive(Serialize)]
pub struct RevocationList {
    pub since: String,
    pub until: String,
    pub revocations: Vec<Revoked>,
}

/// Reads a `since` given as milliseconds since the Unix epoch or as an RFC 3339 time.
pub fn parse_time(text: &str) -> Option<tessera_core::Timestamp> {
    if let Ok(ms) = text.parse::<i64>() {
        return Some(tessera_core::Timestamp::from_millis(ms));
    }
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    let ms = i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()?;
    Some(tessera_core::Timestamp::from_millis(ms))
}

/// RFC 3339 UTC, e.g. `2026-11-29T20:15:00.123Z`.
pub fn rfc3339(t: tessera_core::Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.as_millis()) * 1_000_000)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_as_milliseconds_or_rfc3339() {
        let t = tessera_core::Timestamp::from_millis(1_796_000_000_123);
        assert_eq!(parse_time("1796000000123"), Some(t));
        assert_eq!(parse_time(&rfc3339(t)), Some(t));
        assert_eq!(
            parse_time("2026-12-01T01:00:00+01:00"),
            parse_time("2026-12-01T00:00:00Z")
        );
        for bad in ["", "yesterday", "2026-12-01", "1.5e12"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}

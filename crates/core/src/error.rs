//! The one error type of the core, named for domain outcomes. The http crate alone maps these to
//! status codes.

use std::time::Duration;

/// Why a refresh token was refused: the spec's `reason` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshRejection {
    /// No token was presented.
    Missing,
    /// The token is not one Tessera issued (or its session no longer exists).
    Unknown,
    /// The session was revoked (logout, revocation or an earlier reuse).
    Revoked,
    /// The session passed its idle timeout or absolute lifetime.
    Expired,
    /// An already-used token was presented: the session has just been revoked.
    Reused,
}

impl RefreshRejection {
    /// The wire name (`reason` in the error body).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Unknown => "unknown",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Reused => "reused",
        }
    }
}

/// Every way a Tessera operation can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request's input broke an input rule.
    #[error("{0}")]
    InvalidRequest(String),
    /// Wrong username or password (deliberately not saying which).
    #[error("wrong username or password")]
    InvalidCredentials,
    /// Too many failed logins; try again after the given time.
    #[error("too many failed attempts")]
    RateLimited {
        /// How long until another attempt is accepted.
        retry_after: Duration,
    },
    /// The access token is missing, malformed, forged, expired or of an ended session.
    #[error("{0}")]
    InvalidToken(&'static str),
    /// The refresh token was refused.
    #[error("refresh token refused: {}", .0.as_str())]
    InvalidRefreshToken(RefreshRejection),
    /// Self-registration is turned off.
    #[error("registration is closed")]
    RegistrationClosed,
    /// The username is already registered (compared without case).
    #[error("username is taken")]
    UsernameTaken,
    /// No such thing (or not the caller's).
    #[error("not found")]
    NotFound,
    /// The database cannot be reached right now.
    #[error("storage unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else: a bug or a corrupt record. Details go to the log, not to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Failures a [`crate::Store`] reports. Store crates translate their driver errors into these.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated (a username taken, a key id repeated).
    #[error("already exists")]
    Conflict,
    /// The database is unreachable or timed out: worth retrying later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database answered with something impossible (corrupt row, failed migration).
    #[error("database error: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Error::Internal("unexpected conflict in storage".into()),
            StoreError::Unavailable(source) => Error::Unavailable(source),
            StoreError::Other(source) => Error::Internal(source.to_string()),
        }
    }
}

//! The one error type of the core, named for domain outcomes. The http crate alone maps these to
//! status codes.

use std::time::Duration;

use tessera_token::InvalidToken;

/// Why a refresh token was refused: the protocol's `reason` values (`docs/protocol.md`).
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
    /// The token belongs to a session of another OAuth client (only `POST /oauth/token`
    /// checks): nothing changed.
    ClientMismatch,
    /// The session is bound to a DPoP key and the proof was made by another key: nothing
    /// changed (the rightful holder keeps working).
    DpopMismatch,
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
            Self::ClientMismatch => "client_mismatch",
            Self::DpopMismatch => "dpop_mismatch",
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
    #[error(transparent)]
    InvalidToken(#[from] InvalidToken),
    /// The refresh token was refused.
    #[error("refresh token refused: {}", .0.as_str())]
    InvalidRefreshToken(RefreshRejection),
    /// A DPoP proof was needed and is missing or invalid (or lacks a current server nonce).
    #[error("{0}")]
    InvalidDpopProof(tessera_token::dpop::InvalidProof),
    /// The user is disabled. Only said after a right password, so it reveals nothing to a guesser.
    #[error("this account is disabled")]
    AccountDisabled,
    /// A password-reset token that is unknown, malformed, used, expired or voided by a newer one
    /// (deliberately not saying which).
    #[error("the password-reset token is invalid or has expired")]
    InvalidResetToken,
    /// OAuth client authentication failed: an unknown or removed client, a wrong or missing
    /// secret, or a secret for a public client.
    #[error("client authentication failed")]
    InvalidClient,
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
    /// Anything else: a bug or a corrupt record. The message carries the cause with its own
    /// causes ([`ErrorChain`]), for the log; clients are told only "internal error".
    #[error("internal error: {}", ErrorChain(.0.as_ref()))]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

/// Failures a [`crate::Store`] reports. The driver's error is the `source`, so a log that
/// prints the chain shows it with its own causes. Store crates translate their driver errors into these.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated (a username taken, a key id repeated).
    #[error("already exists")]
    Conflict,
    /// The database is unreachable or timed out: worth retrying later.
    #[error("database unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database answered with something impossible (corrupt row, failed migration).
    #[error("database error")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Error::Internal("unexpected conflict in storage".into()),
            StoreError::Unavailable(source) => Error::Unavailable(source),
            // Kept whole, so the log shows "database error: …" and the driver's own causes.
            other @ StoreError::Other(_) => Error::Internal(Box::new(other)),
        }
    }
}

impl From<tessera_token::Error> for Error {
    fn from(e: tessera_token::Error) -> Self {
        match e {
            tessera_token::Error::InvalidToken(why) => Error::InvalidToken(why),
            other => Error::Internal(Box::new(other)),
        }
    }
}

/// An error followed by its causes, `outer: inner: innermost`: how a cause chain is written to a
/// log line or a CLI message.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_says_its_whole_cause_chain() {
        let driver = std::io::Error::other("disk I/O error on page 7");
        let error = Error::from(StoreError::Other(Box::new(driver)));
        assert_eq!(
            error.to_string(),
            "internal error: database error: disk I/O error on page 7"
        );
    }
}

//! Domain values: parsed inputs (a [`Username`] or [`Password`] has passed the input rules) and
//! the closed set of reasons a session ends ([`RevokeReason`]).

use std::fmt;

use crate::error::Error;

/// A username: 3–64 characters of `A–Z a–z 0–9 . _ @ -`. Unique without regard to case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// Checks `raw` against the input rules.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-');
        if !(3..=64).contains(&raw.chars().count()) {
            return Err(Error::InvalidRequest(
                "username must be 3 to 64 characters long".into(),
            ));
        }
        if !raw.chars().all(ok_char) {
            return Err(Error::InvalidRequest(
                "username may contain only A-Z a-z 0-9 . _ @ -".into(),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The name as the user wrote it at registration.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness and look-ups use: ASCII lower case.
    pub fn key(&self) -> String {
        username_key(&self.0)
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({:?})", self.0)
    }
}

/// A password: 8–1024 bytes of UTF-8. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Checks `raw` against the input rules.
    pub fn parse(raw: String) -> Result<Self, Error> {
        if !(8..=1024).contains(&raw.len()) {
            return Err(Error::InvalidRequest(
                "password must be 8 to 1024 bytes long".into(),
            ));
        }
        Ok(Self(raw))
    }

    /// The secret itself, for hashing.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The form of a username that uniqueness and look-ups use (ASCII lower case): the one place
/// that says how names compare, for [`Username::key`] and stores alike.
pub fn username_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Why a session was revoked, as stored with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevokeReason {
    /// The user logged out of this session.
    Logout,
    /// The user logged out everywhere.
    LogoutAll,
    /// The user ended it from their session list.
    User,
    /// An operator ended it (CLI, admin API), or disabled the user.
    Admin,
    /// An already-used refresh token was presented: likely theft.
    Reused,
    /// The user's password was changed (the other sessions end) or reset (every session ends).
    PasswordChanged,
    /// The OAuth client the session belonged to was removed.
    ClientRemoved,
    /// The session's OAuth client revoked one of its tokens (RFC 7009).
    ClientRevoked,
}

impl RevokeReason {
    /// Every reason, for parsing and tests.
    pub const ALL: [Self; 8] = [
        Self::Logout,
        Self::LogoutAll,
        Self::User,
        Self::Admin,
        Self::Reused,
        Self::PasswordChanged,
        Self::ClientRemoved,
        Self::ClientRevoked,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::User => "user",
            Self::Admin => "admin",
            Self::Reused => "reused",
            Self::PasswordChanged => "password_changed",
            Self::ClientRemoved => "client_removed",
            Self::ClientRevoked => "client_revoked",
        }
    }

    /// The reason with this stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for RevokeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_input_rules() {
        for ok in ["bob", "alice.smith@example.com", "a_b-c", &"x".repeat(64)] {
            assert!(Username::parse(ok).is_ok(), "{ok} should be accepted");
        }
        for bad in [
            "ab",
            "",
            "alice ",
            " alice",
            "al ice",
            "ali\0ce",
            "аlice",
            "alice/x",
            &"x".repeat(65),
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn usernames_compare_without_case() {
        let a = Username::parse("Alice").unwrap();
        assert_eq!(a.key(), Username::parse("aLiCe").unwrap().key());
        assert_eq!(a.as_str(), "Alice");
    }

    #[test]
    fn passwords_are_8_to_1024_bytes_and_never_printed() {
        assert!(Password::parse("1234567".into()).is_err());
        assert!(Password::parse("x".repeat(1025)).is_err());
        // 256 four-byte characters are 1024 bytes: the limit counts bytes, not characters.
        assert!(Password::parse("😀".repeat(256)).is_ok());
        assert!(Password::parse("😀".repeat(257)).is_err());
        let p = Password::parse("correct horse".into()).unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }
}

//! The revocation feed on the wire (`GET /auth/revocations`): what the issuer writes and a
//! resource service reads, in one place so the two cannot drift apart.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::time::Timestamp;

/// One page of sessions that ended: from `since` (clamped by the issuer to the window in which a
/// revoked session can still hold a live access token) until `until` (the issuer's clock at the
/// read). Times are RFC 3339 ([`Timestamp::to_rfc3339`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationList {
    /// The start of the period covered.
    pub since: String,
    /// The issuer's clock when the list was read.
    pub until: String,
    /// Oldest revocation first.
    pub revocations: Vec<Revoked>,
}

/// One ended session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// The session (`sid` of its access tokens).
    pub session_id: Uuid,
    /// When it ended.
    pub revoked_at: String,
}

/// Reads a `since` given as milliseconds since the Unix epoch or as an RFC 3339 time. A number
/// of milliseconds outside the years RFC 3339 can write (0000–9999) is refused too: the answer
/// could not say which `since` it covers.
pub fn parse_since(text: &str) -> Option<Timestamp> {
    match text.parse::<i64>() {
        Ok(ms) => Some(Timestamp::from_millis(ms)).filter(|t| !t.to_rfc3339().is_empty()),
        Err(_) => Timestamp::parse_rfc3339(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_read_as_milliseconds_or_rfc3339() {
        let t = Timestamp::from_millis(1_796_000_000_123);
        assert_eq!(parse_since("1796000000123"), Some(t));
        assert_eq!(parse_since(&t.to_rfc3339()), Some(t));
        assert_eq!(
            parse_since("2026-12-01T01:00:00+01:00"),
            parse_since("2026-12-01T00:00:00Z")
        );
        for bad in [
            "",
            "yesterday",
            "2026-12-01",
            "1.5e12",
            "9223372036854775807",
            "-9223372036854775808",
        ] {
            assert_eq!(parse_since(bad), None, "{bad}");
        }
    }
}

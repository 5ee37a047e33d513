//! The revocation feed on the wire (`GET /auth/revocations`): what the issuer writes and a
//! resource service reads, in one place so the two cannot drift apart.
//!
//! The feed is paged: each answer holds at most `limit` entries ([`DEFAULT_LIMIT`], at most
//! [`MAX_LIMIT`]), ordered by `(revoked_at, session id)`, and `next` names the position after the
//! last one ([`Cursor`]) while more remain. The session id in the position keeps paging exact
//! when thousands of sessions end in the same millisecond (one logout everywhere).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::time::Timestamp;

/// Entries per page when the request names no `limit`.
pub const DEFAULT_LIMIT: u32 = 1000;
/// The largest `limit` the issuer accepts: a full page stays near 1 MB of JSON.
pub const MAX_LIMIT: u32 = 10_000;

/// One page of sessions that ended: from `since` (clamped by the issuer to the window in which a
/// revoked session can still hold a live access token) until `until` (the issuer's clock at the
/// read). Times are RFC 3339 ([`Timestamp::to_rfc3339`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationList {
    /// The start of the period covered.
    pub since: String,
    /// The issuer's clock when the page was read.
    pub until: String,
    /// Oldest revocation first (ties in session-id order).
    pub revocations: Vec<Revoked>,
    /// Where the next page starts (pass it back as `?cursor=`), or `None` on the last page.
    /// Always written (`null` on the last page); read as `None` when absent.
    #[serde(default)]
    pub next: Option<String>,
}

/// A position in the feed: just after the entry revoked at `revoked_at` for `session_id`. On the
/// wire it is opaque (base64url of the two); only the issuer reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    /// The last listed entry's revocation time.
    pub revoked_at: Timestamp,
    /// The last listed entry's session.
    pub session_id: Uuid,
}

impl Cursor {
    /// The wire form: 8 bytes of milliseconds (big-endian) and the 16 bytes of the id, base64url.
    pub fn encode(&self) -> String {
        let mut bytes = [0u8; 24];
        bytes[..8].copy_from_slice(&self.revoked_at.as_millis().to_be_bytes());
        bytes[8..].copy_from_slice(self.session_id.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads [`Cursor::encode`]'s form; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes: [u8; 24] = URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()?;
        let (ms, id) = bytes.split_at(8);
        Some(Self {
            revoked_at: Timestamp::from_millis(i64::from_be_bytes(ms.try_into().ok()?)),
            session_id: Uuid::from_slice(id).ok()?,
        })
    }
}

/// Reads a `limit`: a whole number from 1 to [`MAX_LIMIT`].
pub fn parse_limit(text: &str) -> Option<u32> {
    text.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
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

    #[test]
    fn a_cursor_reads_back_and_nothing_else_reads_as_one() {
        let c = Cursor {
            revoked_at: Timestamp::from_millis(1_796_000_000_123),
            session_id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        let mut tampered = c.encode();
        tampered.push('A');
        for bad in [
            "",
            "x",
            "not a cursor",
            tampered.as_str(),
            &c.encode()[..31],
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_limit_is_one_to_ten_thousand() {
        assert_eq!(parse_limit("1"), Some(1));
        assert_eq!(parse_limit("10000"), Some(MAX_LIMIT));
        for bad in ["", "0", "10001", "-1", "1.5", "ten", "99999999999"] {
            assert_eq!(parse_limit(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_list_without_next_reads_as_the_last_page() {
        let list: RevocationList =
            serde_json::from_str(r#"{"since":"a","until":"b","revocations":[]}"#).unwrap();
        assert_eq!(list.next, None);
    }
}

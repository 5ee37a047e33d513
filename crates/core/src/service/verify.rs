//! Access tokens as the issuer checks them, and the revocation feed for services that check
//! them on their own.

use std::time::Duration;

use uuid::Uuid;

use super::Tessera;
use crate::access_token::{self, AccessClaims, Expectations};
use crate::error::Error;
use crate::time::Timestamp;
use tessera_token::InvalidToken;
use tessera_token::revocations::{Cursor, MAX_LIMIT};

impl Tessera {
    /// Verifies an access token without touching the store: signature, header, claims.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, Error> {
        let expect = Expectations {
            issuer: self.settings.issuer.clone(),
            audience: self.settings.audience.clone(),
            leeway: self.settings.clock_leeway,
            lifetime: self.settings.access_ttl,
        };
        let now = self.now();
        let keys = self.keys.current();
        Ok(access_token::verify(
            token,
            &keys.at(now, self.token_lifetime()),
            &expect,
            now,
        )?)
    }

    /// Verifies an access token and checks that its session is still live.
    pub async fn verify_live(&self, token: &str) -> Result<AccessClaims, Error> {
        self.check_live(self.verify(token)?).await
    }

    /// `claims` when their session is still live.
    pub(super) async fn check_live(&self, claims: AccessClaims) -> Result<AccessClaims, Error> {
        match self.store.session(claims.sid).await? {
            Some(s)
                if s.user_id == claims.sub
                    && s.state().is_live(self.now(), &self.settings.lifetimes) =>
            {
                Ok(claims)
            }
            _ => Err(InvalidToken::SessionEnded.into()),
        }
    }

    /// How far back [`Tessera::revocations`] reaches: the access-token lifetime plus the clock
    /// leeway. A session revoked earlier has no access token left that anyone would accept.
    pub fn revocation_window(&self) -> Duration {
        self.token_lifetime()
    }

    /// One page of the sessions revoked at or after `since` (by logout, logout everywhere,
    /// revocation or reuse detection), for resource services that verify access tokens on
    /// their own and must refuse those of ended sessions. `since` is clamped to the [revocation
    /// window](Tessera::revocation_window); `None` asks for the whole window. A `since` later
    /// than now by more than the clock leeway is [`Error::InvalidRequest`]: the answer would
    /// cover a period that ends before it starts. (Within the leeway it is accepted: instances'
    /// clocks differ a little, and a poller may ask one instance from just after another's
    /// `until`.)
    ///
    /// At most `limit` entries (1 to [`MAX_LIMIT`]), oldest first, starting after `cursor` (a
    /// previous page's [`Revocations::next`]) when given; `next` is set while more remain.
    pub async fn revocations(
        &self,
        since: Option<Timestamp>,
        cursor: Option<Cursor>,
        limit: u32,
    ) -> Result<Revocations, Error> {
        let until = self.now();
        if since.is_some_and(|s| s > until.plus(self.settings.clock_leeway)) {
            return Err(Error::InvalidRequest("`since` is in the future".into()));
        }
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Error::InvalidRequest(format!(
                "`limit` must be from 1 to {MAX_LIMIT}"
            )));
        }
        let window_start = until.minus(self.revocation_window());
        let since = since.map_or(window_start, |s| s.max(window_start));
        // One more than asked for: whether it comes back says whether there is a next page.
        let mut sessions = self
            .store
            .revoked_sessions_page(
                since,
                cursor.map(|c| (c.revoked_at, c.session_id)),
                limit + 1,
            )
            .await?;
        let next = if sessions.len() > limit as usize {
            sessions.truncate(limit as usize);
            sessions.last().map(|&(session_id, revoked_at)| Cursor {
                revoked_at,
                session_id,
            })
        } else {
            None
        };
        Ok(Revocations {
            since,
            until,
            sessions,
            next,
        })
    }
}

/// One page of what [`Tessera::revocations`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocations {
    /// The start of the period covered (the requested `since`, clamped to the window).
    pub since: Timestamp,
    /// The issuer's clock when the page was read. Poll again with a `since` a little before the
    /// first page's `until` (revocations are time-stamped by the instance that made them, a
    /// moment before they commit, and instances' clocks differ slightly).
    pub until: Timestamp,
    /// `(session id, revoked at)`, oldest revocation first, ties in session-id order.
    pub sessions: Vec<(Uuid, Timestamp)>,
    /// The position after the last entry, when more entries remain.
    pub next: Option<Cursor>,
}

//! Access tokens as the issuer checks them, and the revocation feed for services that check
//! them on their own.

use std::time::Duration;

use uuid::Uuid;

use super::Tessera;
use crate::access_token::{self, AccessClaims, Expectations};
use crate::error::Error;
use crate::time::Timestamp;
use tessera_token::InvalidToken;

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
        let claims = self.verify(token)?;
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

    /// Sessions revoked at or after `since` (by logout, logout everywhere, revocation or reuse
    /// detection), for resource services that verify access tokens on their own and must
    /// refuse those of ended sessions. `since` is clamped to the [revocation
    /// window](Tessera::revocation_window); `None` asks for the whole window. A `since` later
    /// than now by more than the clock leeway is [`Error::InvalidRequest`]: the answer would
    /// cover a period that ends before it starts. (Within the leeway it is accepted: instances'
    /// clocks differ a little, and a poller may ask one instance from just after another's
    /// `until`.)
    pub async fn revocations(&self, since: Option<Timestamp>) -> Result<Revocations, Error> {
        let until = self.now();
        if since.is_some_and(|s| s > until.plus(self.settings.clock_leeway)) {
            return Err(Error::InvalidRequest("`since` is in the future".into()));
        }
        let window_start = until.minus(self.revocation_window());
        let since = since.map_or(window_start, |s| s.max(window_start));
        let sessions = self.store.sessions_revoked_since(since).await?;
        Ok(Revocations {
            since,
            until,
            sessions,
        })
    }
}

/// What [`Tessera::revocations`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocations {
    /// The start of the period covered (the requested `since`, clamped to the window).
    pub since: Timestamp,
    /// The issuer's clock when the list was read. Poll again with a `since` a little before it
    /// (revocations are time-stamped by the instance that made them, a moment before they
    /// commit, and instances' clocks differ slightly).
    pub until: Timestamp,
    /// `(session id, revoked at)`, oldest revocation first.
    pub sessions: Vec<(Uuid, Timestamp)>,
}

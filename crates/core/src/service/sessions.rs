//! Sessions: listing, ending one or all, and purging the ended.

use std::time::Duration;

use uuid::Uuid;

use super::{SessionInfo, Tessera};
use crate::domain::RevokeReason;
use crate::error::Error;
use crate::rules::LiveBounds;

impl Tessera {
    /// Ends every session of a user. Returns how many were live.
    pub async fn logout_all(&self, user_id: Uuid) -> Result<u64, Error> {
        let n = self
            .store
            .revoke_user_sessions(user_id, self.now(), RevokeReason::LogoutAll)
            .await?;
        tracing::info!(%user_id, sessions = n, "logout everywhere");
        Ok(n)
    }

    /// Live sessions, of one user or of everybody, most recently used first.
    pub async fn sessions(&self, user_id: Option<Uuid>) -> Result<Vec<SessionInfo>, Error> {
        let now = self.now();
        let lifetimes = &self.settings.lifetimes;
        Ok(self
            .store
            .unrevoked_sessions(user_id)
            .await?
            .into_iter()
            .filter(|r| r.state().is_live(now, lifetimes))
            .map(|record| SessionInfo {
                expires_at: record.state().expires_at(lifetimes),
                record,
            })
            .collect())
    }

    /// Revokes one live session. With `owner`, only that user's; otherwise [`Error::NotFound`].
    pub async fn revoke_session(
        &self,
        id: Uuid,
        owner: Option<Uuid>,
        reason: RevokeReason,
    ) -> Result<(), Error> {
        let now = self.now();
        match self.store.session(id).await? {
            Some(s)
                if owner.is_none_or(|o| o == s.user_id)
                    && s.state().is_live(now, &self.settings.lifetimes) =>
            {
                self.store.revoke_session(id, now, reason).await?;
                tracing::info!(user_id = %s.user_id, session_id = %id, %reason, "session revoked");
                Ok(())
            }
            _ => Err(Error::NotFound),
        }
    }

    /// Revokes every session of the named user (the CLI's `sessions revoke --user`).
    pub async fn revoke_user(&self, username: &str) -> Result<u64, Error> {
        let user = self.user(username).await?;
        Ok(self
            .store
            .revoke_user_sessions(user.id, self.now(), RevokeReason::Admin)
            .await?)
    }

    /// Deletes sessions that ended more than `retention` ago (revoked then, or no longer live
    /// then), and the login throttle's counters that hold nothing back any more. Returns how
    /// many sessions.
    pub async fn purge_ended_sessions(&self, retention: Duration) -> Result<u64, Error> {
        let cutoff = self.now().minus(retention);
        let ended = LiveBounds::at(cutoff, &self.settings.lifetimes);
        // Expired DPoP proof ids go with them, whatever the retention: they are a minute old.
        self.store.delete_expired_dpop_jtis(self.now()).await?;
        self.forget_quiet_failures().await?;
        Ok(self
            .store
            .delete_sessions(cutoff, ended.used_after, ended.created_after)
            .await?)
    }
}

//! Accounts: password change and reset, and an operator's disable, enable and delete.
//!
//! Each change that must end sessions ends them in the same store transaction as the change
//! itself (see the [`Store`](crate::Store) methods it calls), so no login, refresh or second
//! change racing it can leave a session alive that it meant to end.

use uuid::Uuid;

use super::{ClientInfo, Tessera};
use crate::domain::{Password, RevokeReason};
use crate::error::Error;
use crate::events::NewEvent;
use crate::reset_token::ResetToken;
use crate::rules::LiveBounds;
use crate::store::{User, UserSummary};
use crate::time::Timestamp;
use tessera_token::InvalidToken;

/// A password-reset token just made, for the user to receive.
#[derive(Clone, Debug)]
pub struct PasswordReset {
    /// Whose password it resets.
    pub user_id: Uuid,
    /// The token (single use; only its keyed hash is stored).
    pub token: ResetToken,
    /// When it stops working.
    pub expires_at: Timestamp,
}

impl Tessera {
    /// `POST /auth/password`: the holder of a live session `session_id` of `user_id` changes
    /// the password, proving the current one. A wrong current password counts as a failed
    /// login for throttling. Every other session of the user is revoked (reason
    /// `password_changed`) in the transaction that sets the password; this one is kept.
    /// Returns how many were revoked.
    ///
    /// When two sessions of one user change the password at once, the store serialises them:
    /// the first revokes the second's session, so the second fails with
    /// [`InvalidToken::SessionEnded`] and its password is not set.
    pub async fn change_password(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        current: String,
        new: String,
        client: &ClientInfo,
    ) -> Result<u64, Error> {
        if current.len() > 1024 {
            return Err(Error::InvalidRequest(
                "current_password must be at most 1024 bytes long".into(),
            ));
        }
        let new = Password::parse(new)?;
        let Some(user) = self.store.user_by_id(user_id).await? else {
            return Err(InvalidToken::SessionEnded.into());
        };
        let key = user.username_key();
        let started = self.now();
        let counters = self.settings.throttle.login_counters(&key, None, client.ip);
        self.begin_attempt(&counters, started).await?;
        let matches = self
            .hasher
            .verify(current.into_bytes(), Some(user.password_hash.clone()))
            .await?;
        if !matches {
            tracing::info!(%user_id, session_id = %session_id, "password change: wrong current password");
            return Err(Error::InvalidCredentials);
        }
        self.attempt_succeeded(&key, &counters, started).await?;
        let hash = self.hasher.hash(new).await?;
        let revoked = self
            .store
            .change_password(
                user_id,
                session_id,
                &hash,
                self.now(),
                RevokeReason::PasswordChanged,
            )
            .await?
            .ok_or(Error::InvalidToken(InvalidToken::SessionEnded))?;
        tracing::info!(%user_id, %session_id, revoked, "password changed");
        Ok(revoked)
    }

    /// Makes a password-reset token for a user, voiding any earlier one. The one place reset
    /// tokens are made (the CLI's `user reset-link`, the admin API, the self-service request).
    /// `None` when there is no such user, after the same work as for an existing one.
    pub async fn create_password_reset(
        &self,
        user_id: Uuid,
    ) -> Result<Option<PasswordReset>, Error> {
        self.make_password_reset(user_id, None).await
    }

    /// [`Tessera::create_password_reset`]; for a self-service request (`requested_by`: the
    /// username), with the `user.password_reset_requested` event that hands the token to the
    /// application, written with the token.
    async fn make_password_reset(
        &self,
        user_id: Uuid,
        requested_by: Option<&str>,
    ) -> Result<Option<PasswordReset>, Error> {
        let (token, hash) = self.reset_key.generate()?;
        let now = self.now();
        let expires_at = now.plus(self.settings.password_reset_ttl);
        let event = requested_by
            .map(|username| {
                NewEvent::password_reset_requested(
                    user_id,
                    username,
                    token.expose(),
                    expires_at,
                    &self.event_sealer,
                    now,
                )
            })
            .transpose()?;
        if !self
            .store
            .replace_reset_token(user_id, &hash, expires_at, event.as_ref())
            .await?
        {
            return Ok(None);
        }
        tracing::info!(%user_id, "password-reset token created");
        Ok(Some(PasswordReset {
            user_id,
            token,
            expires_at,
        }))
    }

    /// `POST /auth/password-reset/request`: makes a reset token for `username` if it exists,
    /// and the same work when it does not, so neither the answer nor its time says which.
    ///
    /// The token is for the application to deliver (by email, SMS …): it travels in the
    /// `user.password_reset_requested` event, written with the token.
    pub async fn request_password_reset(
        &self,
        username: &str,
        client: &ClientInfo,
    ) -> Result<(), Error> {
        self.begin_request(client.ip).await?;
        let key = crate::domain::Username::parse(username)?.key();
        let (user_id, name) = match self.store.user_by_name(&key).await? {
            Some(user) => (user.id, user.username),
            // An id no user has: the same statement runs and writes nothing.
            None => (Uuid::new_v4(), key),
        };
        if let Some(reset) = self.make_password_reset(user_id, Some(&name)).await? {
            tracing::info!(user_id = %reset.user_id, "password reset requested");
        }
        Ok(())
    }

    /// `POST /auth/password-reset`: uses a reset token to set a new password, revoking every
    /// session of the user (reason `password_changed`) in the same transaction. Returns how
    /// many. An unknown, malformed, used, expired or voided token is
    /// [`Error::InvalidResetToken`], after the same work as a good one (the new password is
    /// hashed, the token hashed and looked up).
    pub async fn reset_password(&self, token: &str, new: String) -> Result<u64, Error> {
        let new = Password::parse(new)?;
        let hash = self.hasher.hash(new).await?;
        let token_hash = self.reset_key.hash(token);
        let (user_id, revoked) = self
            .store
            .use_reset_token(&token_hash, self.now(), &hash)
            .await?
            .ok_or(Error::InvalidResetToken)?;
        tracing::info!(%user_id, revoked, "password reset");
        Ok(revoked)
    }

    /// The user with this id.
    pub async fn user_by_id(&self, id: Uuid) -> Result<User, Error> {
        self.store.user_by_id(id).await?.ok_or(Error::NotFound)
    }

    /// A page of users in id order after `after`, each with its live-session count.
    pub async fn users_page(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<UserSummary>, Error> {
        let live = LiveBounds::at(self.now(), &self.settings.lifetimes);
        Ok(self.store.users_page(after, limit, live).await?)
    }

    /// Disables a user: every session revoked at once (they appear in the revocation feed);
    /// a login with the right password is then [`Error::AccountDisabled`]. Disabling a
    /// disabled user changes nothing. Returns how many sessions were revoked.
    pub async fn disable_user(&self, id: Uuid) -> Result<u64, Error> {
        let now = self.now();
        let revoked = self
            .store
            .set_disabled(id, Some(now), now)
            .await?
            .ok_or(Error::NotFound)?;
        tracing::info!(user_id = %id, revoked, "user disabled");
        Ok(revoked)
    }

    /// Enables a disabled user (their revoked sessions stay revoked).
    pub async fn enable_user(&self, id: Uuid) -> Result<(), Error> {
        self.store
            .set_disabled(id, None, self.now())
            .await?
            .ok_or(Error::NotFound)?;
        tracing::info!(user_id = %id, "user enabled");
        Ok(())
    }

    /// Deletes a user: their sessions (revoked first: they stay in the revocation feed, by
    /// session id only, until the cleanup job purges ended sessions), their reset token and
    /// their throttle state go; the username becomes free.
    pub async fn delete_user(&self, id: Uuid) -> Result<(), Error> {
        let user = self.user_by_id(id).await?;
        if !self.store.delete_user(id, self.now()).await? {
            return Err(Error::NotFound);
        }
        self.forget_failures(&user.username_key()).await?;
        tracing::info!(user_id = %id, "user deleted");
        Ok(())
    }
}

//! Users: registration, creation by an operator, and look-ups.

use uuid::Uuid;

use super::{ClientInfo, Tessera};
use crate::domain::{Password, Username};
use crate::error::{Error, StoreError};
use crate::store::User;

impl Tessera {
    /// Self-registration: refused when registration is closed, and throttled per client IP like
    /// failed logins (each costs an argon2 run).
    pub async fn register(
        &self,
        username: &str,
        password: String,
        client: &ClientInfo,
    ) -> Result<User, Error> {
        if !self.settings.registration_open {
            return Err(Error::RegistrationClosed);
        }
        self.begin_request(client.ip).await?;
        self.create_user(username, password).await
    }

    /// Adds a user whatever the registration setting (the CLI's `user add`).
    pub async fn create_user(&self, username: &str, password: String) -> Result<User, Error> {
        let username = Username::parse(username)?;
        let password = Password::parse(password)?;
        let password_hash = self.hasher.hash(password).await?;
        let user = User {
            id: Uuid::new_v4(),
            username: username.as_str().to_owned(),
            password_hash,
            created_at: self.now(),
            disabled_at: None,
        };
        match self.store.insert_user(&user).await {
            Ok(()) => Ok(user),
            Err(StoreError::Conflict) => Err(Error::UsernameTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>, Error> {
        Ok(self.store.users().await?)
    }

    /// The user with this name.
    pub async fn user(&self, username: &str) -> Result<User, Error> {
        let key = Username::parse(username)?.key();
        self.store.user_by_name(&key).await?.ok_or(Error::NotFound)
    }
}

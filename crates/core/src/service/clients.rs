//! OAuth clients: registration and removal, client authentication, and the two OAuth
//! operations besides the refresh rules: revocation (RFC 7009) and introspection (RFC 7662).
//!
//! A confidential client's secret is 32 bytes from the OS CSPRNG written in base64url (43
//! URL-unreserved characters, so stock clients that skip the form-encoding of RFC 6749 §2.3.1
//! still send it intact). The store keeps only its SHA-256: a fast hash is right for a secret of
//! 256 random bits (nobody can search that space, however fast each guess), where argon2 is for
//! passwords people choose. Comparison is constant-time.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::Tessera;
use crate::access_token::AccessClaims;
use crate::domain::RevokeReason;
use crate::error::{Error, StoreError};
use crate::keys::random_bytes;
use crate::store::{BUILTIN_CLIENT_ID, ClientKind, ClientRecord, SessionRecord};
use crate::time::Timestamp;

/// Longest `client_id` looked up; anything longer is no client of ours.
const MAX_CLIENT_ID: usize = 128;

/// A confidential client's secret, shown once when the client is added. Its `Debug` never
/// shows it.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// The secret itself, to hand to the operator.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// What a request presented to authenticate an OAuth client: its id and, for a confidential
/// client, its secret (from `client_secret_basic` or `client_secret_post`).
#[derive(Clone)]
pub struct ClientCredentials {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`, if one was sent (an empty one counts as none).
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// What introspection found out about a token.
#[derive(Clone, Debug)]
pub enum Introspection {
    /// Not a token that is valid right now.
    Inactive,
    /// A valid access token of a live session.
    Access(AccessClaims),
    /// The current refresh token of a live session.
    Refresh {
        /// The session.
        session: SessionRecord,
        /// When the refresh token stops working unless used (idle or absolute lifetime).
        expires_at: Timestamp,
    },
}

fn secret_hash(secret: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}

/// A client name: 1–64 characters of `A–Z a–z 0–9 . _ -`.
fn parse_client_name(raw: &str) -> Result<String, Error> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if raw.is_empty() || raw.len() > 64 || !raw.chars().all(ok) {
        return Err(Error::InvalidRequest(
            "a client name is 1 to 64 characters of A-Z a-z 0-9 . _ -".into(),
        ));
    }
    Ok(raw.to_owned())
}

impl Tessera {
    /// Registers an OAuth client. A confidential client's secret is returned here and nowhere
    /// else: only its hash is stored.
    pub async fn add_client(
        &self,
        name: &str,
        kind: ClientKind,
    ) -> Result<(ClientRecord, Option<ClientSecret>), Error> {
        let name = parse_client_name(name)?;
        let secret = match kind {
            ClientKind::Public => None,
            ClientKind::Confidential => {
                Some(ClientSecret(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)))
            }
        };
        let record = ClientRecord {
            id: Uuid::new_v4().to_string(),
            name,
            kind,
            secret_hash: secret.as_ref().map(|s| secret_hash(s.expose())),
            created_at: self.now(),
            removed_at: None,
        };
        match self.store.insert_client(&record).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                return Err(Error::InvalidRequest(format!(
                    "a client named `{}` exists",
                    record.name
                )));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(client_id = %record.id, name = %record.name, kind = kind.as_str(), "client added");
        Ok((record, secret))
    }

    /// Every client that is not removed, the built-in `tessera` included, oldest first.
    pub async fn clients(&self) -> Result<Vec<ClientRecord>, Error> {
        Ok(self.store.clients().await?)
    }

    /// Removes a client: it authenticates no more and its sessions end (revoked, so they appear
    /// in the revocation feed). Returns how many sessions ended. The built-in client cannot be
    /// removed ([`Error::InvalidRequest`]); an unknown or removed one is [`Error::NotFound`].
    pub async fn remove_client(&self, id: &str) -> Result<u64, Error> {
        if id == BUILTIN_CLIENT_ID {
            return Err(Error::InvalidRequest(
                "the built-in client `tessera` cannot be removed".into(),
            ));
        }
        let ended = self
            .store
            .remove_client(id, self.now())
            .await?
            .ok_or(Error::NotFound)?;
        tracing::info!(client_id = %id, sessions = ended, "client removed");
        Ok(ended)
    }

    /// The client a login's session will belong to: the built-in one, or a registered public
    /// client that is not removed.
    pub(super) async fn login_client(&self, requested: Option<&str>) -> Result<String, Error> {
        let Some(id) = requested else {
            return Ok(BUILTIN_CLIENT_ID.to_owned());
        };
        match self.live_client(id).await? {
            Some(c) if c.kind == ClientKind::Public => Ok(c.id),
            _ => Err(Error::InvalidRequest(
                "`client_id` is not a registered public client".into(),
            )),
        }
    }

    async fn live_client(&self, id: &str) -> Result<Option<ClientRecord>, Error> {
        if id.is_empty() || id.len() > MAX_CLIENT_ID {
            return Ok(None);
        }
        Ok(self
            .store
            .client(id)
            .await?
            .filter(|c| c.removed_at.is_none()))
    }

    /// Authenticates an OAuth client: a public client by its id alone (a secret sent for it is
    /// refused), a confidential one by its secret. Any failure is [`Error::InvalidClient`].
    pub async fn authenticate_client(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<ClientRecord, Error> {
        let client = self
            .live_client(&credentials.client_id)
            .await?
            .ok_or(Error::InvalidClient)?;
        let presented = credentials
            .client_secret
            .as_deref()
            .filter(|s| !s.is_empty());
        let ok = match (client.kind, presented, &client.secret_hash) {
            (ClientKind::Public, None, _) => true,
            (ClientKind::Confidential, Some(secret), Some(stored)) => {
                bool::from(secret_hash(secret).ct_eq(stored))
            }
            _ => false,
        };
        if ok {
            Ok(client)
        } else {
            tracing::info!(target: "tessera::security", client_id = %client.id, "client authentication failed");
            Err(Error::InvalidClient)
        }
    }

    /// RFC 7009: ends the session of `token` (a refresh token of any generation of the session,
    /// or a valid access token) if it belongs to `client`. Anything else (an unknown or invalid
    /// token, an ended session, another client's token) changes nothing and is no error.
    pub async fn revoke_token(&self, client: &ClientRecord, token: &str) -> Result<(), Error> {
        let session = if let Some(refresh) = self.refresh_key.parse(token) {
            match self.store.session(refresh.session_id()).await? {
                Some(s) if refresh.generation() <= s.generation => Some(s),
                _ => None,
            }
        } else {
            match self.verify(token) {
                Ok(claims) => self
                    .store
                    .session(claims.sid)
                    .await?
                    .filter(|s| s.user_id == claims.sub),
                Err(Error::InvalidToken(_)) => None,
                Err(e) => return Err(e),
            }
        };
        if let Some(s) = session.filter(|s| s.client_id == client.id)
            && self
                .store
                .revoke_session(s.id, self.now(), RevokeReason::ClientRevoked)
                .await?
        {
            tracing::info!(user_id = %s.user_id, session_id = %s.id, client_id = %client.id, "session revoked by its client");
        }
        Ok(())
    }

    /// RFC 7662: whether `token` is valid right now, and what it says. Never consumes or
    /// rotates anything. An access token is active while it verifies and its session is live;
    /// a refresh token while it is the current token of a live session.
    pub async fn introspect(&self, token: &str) -> Result<Introspection, Error> {
        let now = self.now();
        let lifetimes = &self.settings.lifetimes;
        if let Some(refresh) = self.refresh_key.parse(token) {
            return Ok(match self.store.session(refresh.session_id()).await? {
                Some(s)
                    if s.state().is_live(now, lifetimes)
                        && refresh.generation() == s.generation
                        && self.refresh_key.matches(&refresh, &s.token_hash) =>
                {
                    let expires_at = s.state().expires_at(lifetimes);
                    Introspection::Refresh {
                        session: s,
                        expires_at,
                    }
                }
                _ => Introspection::Inactive,
            });
        }
        match self.verify_live(token).await {
            Ok(claims) => Ok(Introspection::Access(claims)),
            Err(Error::InvalidToken(_)) => Ok(Introspection::Inactive),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_are_short_and_plain() {
        for ok in ["a", "web-app", "svc_1.prod", &"x".repeat(64)] {
            assert!(parse_client_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "app/1", "é", &"x".repeat(65)] {
            assert!(parse_client_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = ClientSecret("s3cr3t-value".into());
        assert!(!format!("{s:?}").contains("s3cr3t"));
        let c = ClientCredentials {
            client_id: "x".into(),
            client_secret: Some("s3cr3t-value".into()),
        };
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }
}

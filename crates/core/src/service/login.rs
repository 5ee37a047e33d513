//! Login: the throttle, the password check, a new session and a device token.

use uuid::Uuid;

use super::{ClientInfo, Issued, Tessera};
use crate::domain::Username;
use crate::error::Error;
use crate::keys::random_bytes;
use crate::store::SessionRecord;

/// Longer user agents are cut: the field is for recognising a device, not for storage abuse.
const MAX_USER_AGENT: usize = 256;

impl Tessera {
    /// Checks a username and password and opens a new session. A refresh token the client may
    /// already hold is never adopted: every login starts a new token family.
    ///
    /// Throttled first (see [`crate::throttle`]): a valid device token among
    /// `client.device_tokens` counts the attempt against that device instead of the username.
    /// A successful login returns a fresh device token in [`Issued::device_token`].
    ///
    /// The session belongs to the built-in client `tessera`; [`Tessera::login_for`] names
    /// another.
    pub async fn login(
        &self,
        username: &str,
        password: String,
        client: &ClientInfo,
    ) -> Result<Issued, Error> {
        self.login_for(username, password, None, client).await
    }

    /// [`Tessera::login`] for the public OAuth client `oauth_client` (`None`: the built-in
    /// `tessera`). An unknown, removed or confidential client is [`Error::InvalidRequest`],
    /// judged before the password.
    pub async fn login_for(
        &self,
        username: &str,
        password: String,
        oauth_client: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Issued, Error> {
        let username = Username::parse(username)?;
        let client_id = self.login_client(oauth_client).await?;
        // Judged before the password: a bad proof costs no argon2 and no throttle step.
        let dpop_jkt = self.binding_proof(client).await?.map(|p| p.jkt);
        if password.len() > 1024 {
            return Err(Error::InvalidRequest(
                "password must be 8 to 1024 bytes long".into(),
            ));
        }
        let key = username.key();
        let user = self.store.user_by_name(&key).await?;
        let started = self.now();
        let policy = &self.settings.throttle;
        // A device that signed in to this account before is counted on its own, never held
        // by the username's counter.
        let device = user.as_ref().and_then(|u| {
            client.device_tokens.iter().find_map(|t| {
                self.device_key
                    .verify(t, u.id, started, policy.device_token_ttl)
            })
        });
        let counters = policy.login_counters(&key, device.as_deref(), client.ip);
        // Counted as a failure from here on; a right password takes it back below.
        if let Err(e) = self.begin_attempt(&counters, started).await {
            if let Error::RateLimited { retry_after } = &e {
                metrics::counter!("tessera_logins_total", "outcome" => "throttled").increment(1);
                tracing::info!(
                    username_hash = %username_hash(&key),
                    ip = client.ip.map(tracing::field::display),
                    device = device.is_some(),
                    retry_after_secs = retry_after.as_secs(),
                    "login throttled"
                );
                self.report_throttled(&key, client.ip, *retry_after).await;
            }
            return Err(e);
        }
        let phc = user.as_ref().map(|u| u.password_hash.clone());
        let matches = self.hasher.verify(password.into_bytes(), phc).await?;
        let now = self.now();
        let user = match user {
            Some(user) if matches => user,
            other => {
                metrics::counter!("tessera_logins_total", "outcome" => "failed").increment(1);
                let ip = client.ip.map(tracing::field::display);
                match other {
                    Some(user) => {
                        tracing::info!(user_id = %user.id, ip, "login failed: the password did not match")
                    }
                    None => tracing::info!(
                        username_hash = %username_hash(&key),
                        ip,
                        "login failed: no such user"
                    ),
                }
                return Err(Error::InvalidCredentials);
            }
        };
        if user.disabled_at.is_some() {
            // Said only after a right password; the attempt still counts as a failure.
            metrics::counter!("tessera_logins_total", "outcome" => "disabled").increment(1);
            return Err(Error::AccountDisabled);
        }
        self.attempt_succeeded(&key, &counters, started).await?;

        let session_id = Uuid::new_v4();
        let token = self.refresh_key.first(session_id, random_bytes::<32>()?);
        let record = SessionRecord {
            id: session_id,
            user_id: user.id,
            username: user.username.clone(),
            generation: 0,
            token_hash: self.refresh_key.hash(&token).to_vec(),
            created_at: now,
            rotated_at: now,
            last_used_at: now,
            revoked_at: None,
            revoked_reason: None,
            user_agent: client
                .user_agent
                .as_deref()
                .map(|ua| truncate(ua, MAX_USER_AGENT)),
            ip: client.ip,
            client_id,
            dpop_jkt,
        };
        if !self
            .store
            .open_session(&record, &user.password_hash)
            .await?
        {
            // Disabled, deleted, or given a new password while the password was checked.
            metrics::counter!("tessera_logins_total", "outcome" => "failed").increment(1);
            return match self.store.user_by_name(&key).await? {
                Some(u) if u.disabled_at.is_some() => Err(Error::AccountDisabled),
                _ => Err(Error::InvalidCredentials),
            };
        }
        metrics::counter!("tessera_logins_total", "outcome" => "ok").increment(1);
        tracing::info!(
            user_id = %user.id,
            session_id = %session_id,
            dpop_bound = record.dpop_jkt.is_some(),
            "login"
        );
        Ok(Issued {
            device_token: Some(self.device_key.issue(user.id, now)?),
            ..self.issue(&record, token.encode(), now)?
        })
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// A username as the log shows it: the first 8 bytes of the SHA-256 of its lower-cased form,
/// in hex. It lets an operator follow one name's failures across lines (and match a name they
/// suspect) without the log collecting every name, right or mistyped, that was tried.
fn username_hash(key: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

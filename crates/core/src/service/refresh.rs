//! Refresh and logout: the refresh rules applied to a presented token.

use tessera_token::dpop::{InvalidProof, Proof};

use super::{ClientInfo, Issued, Tessera};
use crate::domain::RevokeReason;
use crate::error::{Error, RefreshRejection};
use crate::refresh_token::RefreshToken;
use crate::rules::{CurrentRotation, Decision, decide};
use crate::store::SessionRecord;

impl Tessera {
    /// Applies the refresh rules to a presented token (`None` or empty: none was sent), for a
    /// session of any client (`POST /auth/refresh`).
    pub async fn refresh(
        &self,
        presented: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Issued, Error> {
        self.refresh_for(presented, None, client).await
    }

    /// The refresh rules, the one implementation behind `POST /auth/refresh` (`oauth_client`
    /// `None`) and `POST /oauth/token` (the authenticated client's id). With a client, a token
    /// of another client's session is refused as
    /// [`RefreshRejection::ClientMismatch`] before anything else is judged, and changes nothing:
    /// it is neither rotated nor taken as evidence of reuse.
    pub async fn refresh_for(
        &self,
        presented: Option<&str>,
        oauth_client: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Issued, Error> {
        let result = self.try_refresh(presented, oauth_client, client).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(Error::InvalidRefreshToken(r)) => r.as_str(),
            Err(_) => "error",
        };
        metrics::counter!("tessera_refreshes_total", "outcome" => outcome).increment(1);
        result
    }

    async fn try_refresh(
        &self,
        presented: Option<&str>,
        oauth_client: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Issued, Error> {
        let Some(text) = presented.filter(|t| !t.is_empty()) else {
            return Err(Error::InvalidRefreshToken(RefreshRejection::Missing));
        };
        let Some(token) = self.refresh_key.parse(text) else {
            return Err(Error::InvalidRefreshToken(RefreshRejection::Unknown));
        };
        let proof = self.refresh_proof(client).await?;
        let key = proof
            .as_ref()
            .and_then(|p| p.as_ref().ok())
            .map(|p| p.jkt.as_str());
        // The common case, the session's current token, live: one conditional UPDATE that
        // checks what `decide` would and rotates. Anything else (a replay, reuse, a revoked or
        // expired session, a lost race) changes nothing and goes through the rules.
        let now = self.now();
        let successor = self.refresh_key.successor(&token);
        let (current_hash, new_hash) = (
            self.refresh_key.hash(&token),
            self.refresh_key.hash(&successor),
        );
        let rotation = CurrentRotation::new(
            &token,
            &current_hash,
            &new_hash,
            now,
            &self.settings.lifetimes,
        )
        .for_client(oauth_client)
        .for_dpop_key(key);
        if let Some(record) = self.store.rotate_current(&rotation).await? {
            return self.issue(&record, successor.encode(), now);
        }
        self.refresh_by_rules(&token, oauth_client, proof.as_ref(), client)
            .await
    }

    /// The rules, on the session as stored. A lost compare-and-swap means another request
    /// rotated this token a moment ago; the reload then sees it as the predecessor. Three rounds
    /// cover rotation then revocation.
    async fn refresh_by_rules(
        &self,
        token: &RefreshToken,
        oauth_client: Option<&str>,
        proof: Option<&Result<Proof, InvalidProof>>,
        client: &ClientInfo,
    ) -> Result<Issued, Error> {
        for _ in 0..3 {
            let Some(record) = self.store.session(token.session_id()).await? else {
                return Err(Error::InvalidRefreshToken(RefreshRejection::Unknown));
            };
            if oauth_client.is_some_and(|id| id != record.client_id) {
                return Err(Error::InvalidRefreshToken(RefreshRejection::ClientMismatch));
            }
            let now = self.now();
            let decision = decide(
                &record.state(),
                token,
                &self.refresh_key,
                now,
                &self.settings.lifetimes,
            );
            // A bound session's proof is judged after rules 1–2 and before 3–5: whatever it
            // lacks, the token is not consumed and the session not revoked.
            if !matches!(decision, Decision::Reject(_)) {
                self.check_bound_proof(&record, proof, client).await?;
            }
            match decision {
                Decision::Rotate { successor } => {
                    let hash = self.refresh_key.hash(&successor);
                    if self
                        .store
                        .rotate_session(record.id, record.generation, &hash, now)
                        .await?
                    {
                        let record = SessionRecord {
                            last_used_at: now,
                            ..record
                        };
                        return self.issue(&record, successor.encode(), now);
                    }
                }
                Decision::Replay { successor } => {
                    // Counted apart: a steady rate means clients retry or tabs race.
                    metrics::counter!("tessera_refresh_grace_replays_total").increment(1);
                    return self.issue(&record, successor.encode(), now);
                }
                Decision::Reused => return self.end_reused(&record, token, client).await,
                Decision::Reject(r) => return Err(Error::InvalidRefreshToken(r)),
            }
        }
        Err(Error::Internal(
            "refresh kept losing its compare-and-swap".into(),
        ))
    }

    /// For a session bound to a DPoP key: the request's proof must be valid and by that key.
    async fn check_bound_proof(
        &self,
        record: &SessionRecord,
        proof: Option<&Result<Proof, InvalidProof>>,
        client: &ClientInfo,
    ) -> Result<(), Error> {
        let Some(bound) = &record.dpop_jkt else {
            return Ok(());
        };
        match proof {
            None => Err(Error::InvalidDpopProof(InvalidProof::Missing)),
            Some(Err(why)) => Err(Error::InvalidDpopProof(*why)),
            Some(Ok(p)) if p.jkt == *bound => Ok(()),
            Some(Ok(p)) => {
                self.dpop_mismatch(record, bound, &p.jkt, client).await;
                Err(Error::InvalidRefreshToken(RefreshRejection::DpopMismatch))
            }
        }
    }

    /// A valid proof by another key than the session's: someone holds the refresh token but
    /// not the key. Counted, logged and sent as `session.dpop_mismatch`; the session is left as
    /// it was. A failure to record the event is logged, never turned into the answer.
    async fn dpop_mismatch(
        &self,
        record: &SessionRecord,
        bound: &str,
        presented_jkt: &str,
        client: &ClientInfo,
    ) {
        metrics::counter!("tessera_dpop_mismatch_total").increment(1);
        tracing::warn!(
            target: "tessera::security",
            event = "dpop_mismatch",
            user_id = %record.user_id,
            session_id = %record.id,
            ip = client.ip.map(tracing::field::display),
            presented_jkt,
            "refresh with a DPoP proof by another key than the session's: refused, session kept"
        );
        if let Err(e) = self
            .record_dpop_mismatch(record.id, record.user_id, bound, presented_jkt, client.ip)
            .await
        {
            tracing::error!(error = %e, session_id = %record.id, "session.dpop_mismatch not recorded");
        }
    }

    /// Rule 5: an already-used token ends its whole session.
    async fn end_reused(
        &self,
        record: &SessionRecord,
        token: &RefreshToken,
        client: &ClientInfo,
    ) -> Result<Issued, Error> {
        self.store
            .revoke_session(record.id, self.now(), RevokeReason::Reused)
            .await?;
        metrics::counter!("tessera_refresh_reuse_detected_total").increment(1);
        tracing::warn!(
            target: "tessera::security",
            event = "refresh_token_reused",
            user_id = %record.user_id,
            session_id = %record.id,
            ip = client.ip.map(tracing::field::display),
            presented_generation = token.generation(),
            current_generation = record.generation,
            "refresh token reuse detected: session revoked"
        );
        Err(Error::InvalidRefreshToken(RefreshRejection::Reused))
    }

    /// Ends the session of a presented refresh token. Idempotent: no token, an unknown one, or
    /// an already-ended session is not an error.
    pub async fn logout(&self, presented: Option<&str>) -> Result<(), Error> {
        let Some(token) = presented.and_then(|t| self.refresh_key.parse(t)) else {
            return Ok(());
        };
        let Some(record) = self.store.session(token.session_id()).await? else {
            return Ok(());
        };
        // Any token of the family (current or older: the tag proves we issued it) may end it.
        if token.generation() <= record.generation
            && self
                .store
                .revoke_session(record.id, self.now(), RevokeReason::Logout)
                .await?
        {
            tracing::info!(user_id = %record.user_id, session_id = %record.id, "logout");
        }
        Ok(())
    }
}

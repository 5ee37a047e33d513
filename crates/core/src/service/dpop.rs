//! DPoP (RFC 9449) on the issuer's side: the proofs of logins, refreshes and token requests
//! (checked, their `jti` recorded in the store so that no instance accepts one twice), server
//! nonces, and access tokens presented as `DPoP` on Tessera's own endpoints.

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_token::dpop::{self, BindingRefusal, Expected, InvalidProof, Presented, Proof};

use super::{ClientInfo, DpopRequest, Tessera};
use crate::access_token::AccessClaims;
use crate::error::Error;
use crate::keys::derived_hmac_key;
use crate::settings::DpopPolicy;
use crate::time::Timestamp;

/// A nonce names a time step of this length: it is accepted during its step, the one before
/// and the one after (instances' clocks differ a little), so for 30 to 90 s on every instance.
const NONCE_STEP_SECS: i64 = 30;

/// The nonce key: a sub-key of the deployment's secret, so every instance sharing the
/// database has it.
pub(super) fn nonce_key(secret: &[u8]) -> hmac::Key {
    derived_hmac_key(secret, b"tessera dpop nonce v1")
}

/// `step` (8 bytes, big-endian) then the first 16 bytes of its MAC, base64url.
fn nonce_at(key: &hmac::Key, step: i64) -> String {
    let step = step.to_be_bytes();
    let tag = hmac::sign(key, &step);
    URL_SAFE_NO_PAD.encode([&step[..], &tag.as_ref()[..16]].concat())
}

impl Tessera {
    /// The server nonce to hand out now (`DPoP-Nonce`), when nonces are on.
    pub fn dpop_nonce(&self) -> Option<String> {
        let key = self.dpop_nonce_key.as_ref()?;
        Some(nonce_at(key, self.now().as_secs() / NONCE_STEP_SECS))
    }

    fn nonce_is_current(key: &hmac::Key, step_now: i64, nonce: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let Some(step) = bytes
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(i64::from_be_bytes)
        else {
            return false;
        };
        // Compared in constant time with the nonce recomputed for its step.
        (step_now - 1..=step_now + 1).contains(&step)
            && aws_lc_rs::constant_time::verify_slices_are_equal(
                nonce.as_bytes(),
                nonce_at(key, step).as_bytes(),
            )
            .is_ok()
    }

    /// A login's or token request's proof, checked and its `jti` recorded: `Ok(None)` when the
    /// request carries none (or DPoP is off), [`Error::InvalidDpopProof`] when it is invalid,
    /// replayed, lacks a current nonce, or is missing while DPoP is required.
    pub(super) async fn binding_proof(&self, client: &ClientInfo) -> Result<Option<Proof>, Error> {
        match (self.settings.dpop, &client.dpop) {
            (DpopPolicy::Off, _) | (DpopPolicy::Allowed, None) => Ok(None),
            (DpopPolicy::Required, None) => Err(Error::InvalidDpopProof(InvalidProof::Missing)),
            (_, Some(request)) => Ok(Some(
                self.accept_proof(request)
                    .await?
                    .map_err(Error::InvalidDpopProof)?,
            )),
        }
    }

    /// A refresh's proof: `None` when there is none (or DPoP is off), else the outcome of the
    /// checks, judged only if the session turns out to be bound.
    pub(super) async fn refresh_proof(
        &self,
        client: &ClientInfo,
    ) -> Result<Option<Result<Proof, InvalidProof>>, Error> {
        match (self.settings.dpop, &client.dpop) {
            (DpopPolicy::Off, _) | (_, None) => Ok(None),
            (_, Some(request)) => Ok(Some(self.accept_proof(request).await?)),
        }
    }

    /// Every check of a proof, then its `jti` recorded in the store (the outer `Err` is the
    /// store's failure).
    async fn accept_proof(
        &self,
        request: &DpopRequest,
    ) -> Result<Result<Proof, InvalidProof>, Error> {
        let proof = match &request.proof {
            Ok(p) => p,
            Err(e) => return Ok(Err(*e)),
        };
        let now = self.now();
        let proof = match self.check_proof(proof, request, now) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let expires_at = proof.iat.plus(self.dpop_jti_retention());
        if !self
            .store
            .insert_dpop_jti(dpop::jti_id(&proof), expires_at, now)
            .await?
        {
            return Ok(Err(InvalidProof::Replayed));
        }
        Ok(Ok(proof))
    }

    /// The stateless checks, with the server nonce when nonces are on.
    fn check_proof(
        &self,
        proof: &str,
        request: &DpopRequest,
        now: Timestamp,
    ) -> Result<Proof, InvalidProof> {
        let step_now = now.as_secs() / NONCE_STEP_SECS;
        let is_current = |nonce: &str| {
            self.dpop_nonce_key
                .as_ref()
                .is_some_and(|key| Self::nonce_is_current(key, step_now, nonce))
        };
        let expected = Expected {
            method: &request.method,
            url: &request.url,
            access_token: None,
            leeway: self.settings.clock_leeway,
            nonce_is_current: self
                .dpop_nonce_key
                .is_some()
                .then_some(&is_current as &dyn Fn(&str) -> bool),
        };
        dpop::check(proof, &expected, now)
    }

    /// Verifies an access token as presented (`Bearer`, or `DPoP` with its proof): the
    /// stateless checks of [`Tessera::verify`], then the binding (RFC 9449 §7), the proof's
    /// `jti` remembered by this instance.
    pub fn verify_presented(
        &self,
        token: &str,
        presented: &Presented<'_>,
    ) -> Result<AccessClaims, Error> {
        let claims = self.verify(token)?;
        dpop::check_presented(
            &claims,
            token,
            presented,
            self.settings.clock_leeway,
            self.now(),
            &self.resource_jtis,
        )
        .map_err(|refusal| match refusal {
            BindingRefusal::Token(why) => Error::InvalidToken(why),
            BindingRefusal::Proof(why) => Error::InvalidDpopProof(why),
        })?;
        Ok(claims)
    }

    /// [`Tessera::verify_presented`], and the session still live (see
    /// [`Tessera::verify_live`]).
    pub async fn verify_live_presented(
        &self,
        token: &str,
        presented: &Presented<'_>,
    ) -> Result<AccessClaims, Error> {
        let claims = self.verify_presented(token, presented)?;
        self.check_live(claims).await
    }

    /// How long after its `iat` the store keeps a proof's `jti`: as long as the proof could be
    /// accepted, by the clock of any instance.
    fn dpop_jti_retention(&self) -> Duration {
        dpop::MAX_AGE.saturating_add(self.settings.clock_leeway.saturating_mul(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_lives_from_its_step_to_the_next_and_only_under_its_key() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]);
        let other = hmac::Key::new(hmac::HMAC_SHA256, &[8; 32]);
        let step = 60_000_000;
        let nonce = nonce_at(&key, step);
        // Every instance sharing the key, with its clock up to a step either way.
        for now in [step - 1, step, step + 1] {
            assert!(Tessera::nonce_is_current(&key, now, &nonce), "{now}");
        }
        assert!(!Tessera::nonce_is_current(&key, step + 2, &nonce), "stale");
        assert!(
            !Tessera::nonce_is_current(&key, step - 2, &nonce),
            "too early"
        );
        assert!(
            !Tessera::nonce_is_current(&other, step, &nonce),
            "another key"
        );
        let mut forged = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        forged[10] ^= 1;
        assert!(!Tessera::nonce_is_current(
            &key,
            step,
            &URL_SAFE_NO_PAD.encode(forged)
        ));
        let later = URL_SAFE_NO_PAD.encode((step + 1).to_be_bytes());
        assert!(
            !Tessera::nonce_is_current(&key, step, &later),
            "a step without its tag"
        );
        for garbage in ["", "!!", "AAAA"] {
            assert!(
                !Tessera::nonce_is_current(&key, step, garbage),
                "{garbage:?}"
            );
        }
    }
}

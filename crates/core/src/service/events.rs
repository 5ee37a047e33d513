//! The outbox's side of the service: the events no store change carries (`login.throttled`,
//! `session.dpop_mismatch`), and what a sender and an operator do with the outbox.
//!
//! The other events are written by the store methods that make their changes (see
//! [`Store`](crate::Store)), in the same transaction.

use std::net::IpAddr;
use std::time::Duration;

use uuid::Uuid;

use super::Tessera;
use crate::error::Error;
use crate::events::{Delivery, EventState, LEASE, NewEvent, StoredEvent};
use crate::store::EventBacklog;

impl Tessera {
    /// Records `session.dpop_mismatch`: a refresh of a session bound to `expected_jkt` came
    /// with a valid proof by `presented_jkt`. The refresh is refused, nothing else changes.
    pub(super) async fn record_dpop_mismatch(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        expected_jkt: &str,
        presented_jkt: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), Error> {
        let event = NewEvent::session_dpop_mismatch(
            session_id,
            user_id,
            expected_jkt,
            presented_jkt,
            ip,
            self.now(),
        );
        Ok(self.store.record_event(&event).await?)
    }

    /// Records `login.throttled` for a refused login, once per hold: the first refusal writes
    /// it, and no other refusal does until `retry_after` has passed, neither for the same
    /// username nor from the same client address (its /64 for IPv6, as the throttle counts
    /// them), so neither hammering one name nor spraying names from one address can flood the
    /// outbox. A failure to record is logged, never turned into the login's answer.
    pub(super) async fn report_throttled(
        &self,
        user_key: &str,
        ip: Option<IpAddr>,
        retry_after: Duration,
    ) {
        let now = self.now();
        let keys = [Some(format!("name {user_key}")), ip.map(address_key)];
        {
            let mut reported = self
                .throttle_reported
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let held = |k: &String| reported.get(k).is_some_and(|until| *until > now);
            if keys.iter().flatten().any(held) {
                return;
            }
            // Holds last 15 minutes at most: ended ones go before the map grows.
            if reported.len() >= 10_000 {
                reported.retain(|_, until| *until > now);
            }
            for key in keys.into_iter().flatten() {
                reported.insert(key, now.plus(retry_after));
            }
        }
        let event = NewEvent::login_throttled(user_key, ip, retry_after, now);
        if let Err(e) = self.store.record_event(&event).await {
            tracing::warn!(error = %e, "recording a login.throttled event failed");
        }
    }

    /// Claims up to `limit` due events for this instance to send, for [`LEASE`] from now.
    pub async fn claim_events(&self, limit: u32) -> Result<Vec<StoredEvent>, Error> {
        let now = self.now();
        Ok(self.store.claim_events(now, now.plus(LEASE), limit).await?)
    }

    /// Records how the attempt on a claimed event ended. `false` when this instance's claim
    /// had lapsed and another instance claimed the event since.
    pub async fn finish_event(
        &self,
        event: &StoredEvent,
        outcome: &Delivery,
    ) -> Result<bool, Error> {
        let lease = event
            .lease_until
            .ok_or_else(|| Error::Internal("finishing an event that was not claimed".into()))?;
        Ok(self
            .store
            .finish_event(event.event.id, lease, self.now(), outcome)
            .await?)
    }

    /// The webhook body of an event, with its secret (a reset token) unsealed.
    pub fn webhook_body(&self, event: &StoredEvent) -> Result<String, Error> {
        event.body(&self.event_sealer)
    }

    /// Up to `limit` events (of one state, or all), newest first.
    pub async fn events(
        &self,
        state: Option<EventState>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, Error> {
        Ok(self.store.events(state, limit).await?)
    }

    /// Makes an undelivered event due now, with a fresh day of retries.
    /// [`Error::NotFound`] when no undelivered event has this id.
    pub async fn retry_event(&self, id: Uuid) -> Result<(), Error> {
        if self.store.retry_event(id, self.now()).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// The outbox's backlog, for the metrics.
    pub async fn event_backlog(&self) -> Result<EventBacklog, Error> {
        Ok(self.store.event_backlog().await?)
    }

    /// Deletes events delivered more than `retention` ago, and those recorded more than
    /// `retention` ago that no sender ever tried (a deployment without a receiver). Failed
    /// events stay until retried.
    pub async fn purge_events(&self, retention: Duration) -> Result<u64, Error> {
        let cutoff = self.now().minus(retention);
        Ok(self.store.delete_events(cutoff, cutoff).await?)
    }
}

/// A client address as [`Tessera::report_throttled`] groups it: IPv4 alone, IPv6 by its /64.
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip {v4}"),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("ip {:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

//! Login throttling: the rules of [`crate::throttle`] applied to counters kept in the store, so
//! that every instance on one database spends the same budgets.

use std::net::IpAddr;
use std::time::Duration;

use super::Tessera;
use crate::error::Error;
use crate::throttle::{CountFailure, Counted, Counter, Scope};
use crate::time::Timestamp;

impl Tessera {
    /// Starts an attempt at `now`: counts it against each of `counters` in order, unless one is
    /// held, in which case the counts already made are taken back and the answer is
    /// [`Error::RateLimited`]. Counted from the start, so concurrent guesses are held like
    /// sequential ones; a right password takes it back ([`Tessera::attempt_succeeded`]).
    pub(super) async fn begin_attempt(
        &self,
        counters: &[Counter],
        now: Timestamp,
    ) -> Result<(), Error> {
        let policy = &self.settings.throttle;
        for (i, counter) in counters.iter().enumerate() {
            let limit = policy.limit(counter.scope);
            let Counted::Held(state) = self
                .store
                .count_failure(&CountFailure::new(counter, &limit, now))
                .await?
            else {
                continue;
            };
            for earlier in &counters[..i] {
                self.store.clear_failures(&[], Some(earlier), now).await?;
            }
            // Cleared in between (or held by a clock ahead of ours): a second is enough.
            let retry_after = state
                .and_then(|s| limit.held(&s, now))
                .unwrap_or(Duration::from_secs(1));
            return Err(Error::RateLimited { retry_after });
        }
        Ok(())
    }

    /// A right password for an attempt [`Tessera::begin_attempt`] started at `started` on
    /// `counters`: the name's (and device's) failures are cleared, and the attempt is taken
    /// back from the address, so that many rightful users behind one address (a NAT) do not
    /// spend its failure budget.
    pub(super) async fn attempt_succeeded(
        &self,
        name_key: &str,
        counters: &[Counter],
        started: Timestamp,
    ) -> Result<(), Error> {
        let mut forget = vec![Counter::new(Scope::Name, name_key)];
        forget.extend(
            counters
                .iter()
                .filter(|c| c.scope == Scope::Device)
                .cloned(),
        );
        let address = counters.iter().find(|c| c.scope == Scope::Address);
        Ok(self.store.clear_failures(&forget, address, started).await?)
    }

    /// A registration or password-reset request from `ip`: [`Error::RateLimited`] while the
    /// address's budget is spent; otherwise counted against it like a failed login. Each costs
    /// an argon2 run or a write and proves nothing, so, unlike a right password, it is never
    /// taken back.
    pub(super) async fn begin_request(&self, ip: Option<IpAddr>) -> Result<(), Error> {
        let counters: Vec<Counter> = ip.map(Counter::address).into_iter().collect();
        self.begin_attempt(&counters, self.now()).await
    }

    /// Forgets a username's failures (its user has been deleted).
    pub(super) async fn forget_failures(&self, name_key: &str) -> Result<(), Error> {
        Ok(self
            .store
            .clear_failures(&[Counter::new(Scope::Name, name_key)], None, self.now())
            .await?)
    }

    /// Forgets the counters that hold nothing back any more (quiet for 15 minutes). Returns
    /// how many. The cleanup job runs it with [`Tessera::purge_ended_sessions`].
    pub(super) async fn forget_quiet_failures(&self) -> Result<u64, Error> {
        let quiet_before = self.now().minus(self.settings.throttle.quiet_after());
        Ok(self.store.delete_quiet_failures(quiet_before).await?)
    }

    /// How many usernames and client addresses the login throttle holds counts for.
    pub async fn throttle_tracked(&self) -> Result<(u64, u64), Error> {
        Ok(self.store.failure_counters().await?)
    }
}

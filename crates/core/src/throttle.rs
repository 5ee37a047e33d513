//! Login throttling: per username (so spreading attempts over many IPs does not help) and per
//! client IP (a budget of failures per minute; IPv6 clients by their /64, which one subscriber
//! usually holds whole). Plain data and `now` in, decisions out.
//!
//! An attempt counts when it starts ([`LoginThrottle::begin`]), not when its password check
//! ends: checked first and counted after argon2, forty simultaneous guesses all passed the check
//! before any was counted.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use crate::time::Timestamp;

/// The throttle's limits.
#[derive(Clone, Copy, Debug)]
pub struct ThrottlePolicy {
    /// Straight failures a username may have before delays start.
    pub free_failures: u32,
    /// The first delay; each further failure doubles it.
    pub first_delay: Duration,
    /// The longest a username is ever held (15 minutes, a documented promise).
    pub max_delay: Duration,
    /// Failures one IP may have in a minute before its logins are held for the rest of it.
    pub ip_failures_per_minute: u32,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            free_failures: 5,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            ip_failures_per_minute: 30,
        }
    }
}

const MINUTE: Duration = Duration::from_secs(60);
/// Above this many tracked entries, stale ones are dropped on the next failure.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct UserFailures {
    count: u32,
    held_until: Timestamp,
}

#[derive(Clone, Copy, Debug)]
struct IpWindow {
    started: Timestamp,
    count: u32,
}

/// Failure counts, in memory, per instance.
#[derive(Debug)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    users: HashMap<String, UserFailures>,
    ips: HashMap<IpAddr, IpWindow>,
    /// Size at which the next prune runs: twice what the last one kept, so a flood of live
    /// entries costs amortised O(1) per failure rather than a full scan each time.
    prune_at: usize,
}

impl LoginThrottle {
    /// An empty throttle with `policy`.
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            users: HashMap::new(),
            ips: HashMap::new(),
            prune_at: PRUNE_ABOVE,
        }
    }

    /// How many usernames and client addresses it holds failure counts for now.
    pub fn tracked(&self) -> (usize, usize) {
        (self.users.len(), self.ips.len())
    }

    /// Starts a login attempt: `Err(retry_after)` while `user_key` or `ip` is held; otherwise the
    /// attempt is counted as a failure at once, so concurrent guesses are held as if they came
    /// one at a time. A right password then takes it back ([`LoginThrottle::succeeded`]).
    pub fn begin(
        &mut self,
        user_key: &str,
        ip: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<(), Duration> {
        self.check(user_key, ip, now)?;
        self.record_failure(user_key, ip, now);
        Ok(())
    }

    /// `Err(retry_after)` when a login for `user_key` from `ip` must wait.
    pub fn check(
        &self,
        user_key: &str,
        ip: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<(), Duration> {
        let user_wait = self
            .users
            .get(user_key)
            .map_or(Duration::ZERO, |u| u.held_until.since(now));
        match user_wait.max(self.ip_wait(ip, now)) {
            Duration::ZERO => Ok(()),
            wait => Err(wait),
        }
    }

    /// A registration or password-reset request from `ip`: `Err(retry_after)` while the
    /// address's budget is spent; otherwise counted against it like a failed login. Each costs
    /// an argon2 run or a write and proves nothing, so, unlike a right password, it is never
    /// taken back.
    pub fn begin_request(&mut self, ip: Option<IpAddr>, now: Timestamp) -> Result<(), Duration> {
        match self.ip_wait(ip, now) {
            Duration::ZERO => {
                self.prune_if_large(now);
                self.record_ip(ip, now);
                Ok(())
            }
            wait => Err(wait),
        }
    }

    fn ip_wait(&self, ip: Option<IpAddr>, now: Timestamp) -> Duration {
        ip.and_then(|ip| self.ips.get(&ip_key(ip)))
            .filter(|w| w.count >= self.policy.ip_failures_per_minute)
            .map_or(Duration::ZERO, |w| w.started.plus(MINUTE).since(now))
    }

    /// Counts a failed login.
    pub fn record_failure(&mut self, user_key: &str, ip: Option<IpAddr>, now: Timestamp) {
        self.prune_if_large(now);
        let policy = self.policy;
        let entry = self
            .users
            .entry(user_key.to_owned())
            .or_insert(UserFailures {
                count: 0,
                held_until: now,
            });
        entry.count = entry.count.saturating_add(1);
        if entry.count > policy.free_failures {
            let doublings = (entry.count - policy.free_failures - 1).min(30);
            let delay = policy
                .first_delay
                .saturating_mul(1 << doublings)
                .min(policy.max_delay);
            entry.held_until = now.plus(delay);
        }
        self.record_ip(ip, now);
    }

    fn record_ip(&mut self, ip: Option<IpAddr>, now: Timestamp) {
        if let Some(ip) = ip {
            let w = self.ips.entry(ip_key(ip)).or_insert(IpWindow {
                started: now,
                count: 0,
            });
            if now >= w.started.plus(MINUTE) {
                *w = IpWindow {
                    started: now,
                    count: 0,
                };
            }
            w.count = w.count.saturating_add(1);
        }
    }

    fn prune_if_large(&mut self, now: Timestamp) {
        if self.users.len() + self.ips.len() > self.prune_at {
            self.prune(now);
            self.prune_at = PRUNE_ABOVE.max(2 * (self.users.len() + self.ips.len()));
        }
    }

    /// A right password for an attempt [`LoginThrottle::begin`] started at `started`: the
    /// username's failures are cleared, and the attempt's count is taken back from `ip`, so
    /// that many rightful users behind one address (a NAT) do not spend its failure budget.
    pub fn succeeded(&mut self, user_key: &str, ip: Option<IpAddr>, started: Timestamp) {
        self.record_success(user_key);
        if let Some(w) = ip.and_then(|ip| self.ips.get_mut(&ip_key(ip)))
            && w.started <= started
        {
            w.count = w.count.saturating_sub(1);
        }
    }

    /// Forgets everything about a username (its user has been deleted).
    pub fn forget(&mut self, user_key: &str) {
        self.users.remove(user_key);
    }

    /// Clears the username's failures.
    fn record_success(&mut self, user_key: &str) {
        self.users.remove(user_key);
    }

    /// Drops entries that no longer hold anything back. A username's count is forgotten once it
    /// has been quiet for the longest delay.
    fn prune(&mut self, now: Timestamp) {
        let max = self.policy.max_delay;
        self.users.retain(|_, u| now < u.held_until.plus(max));
        self.ips.retain(|_, w| now < w.started.plus(MINUTE));
    }
}

/// The address a client's budget is kept under: an IPv6 address's /64 (an IPv4-mapped one is
/// its IPv4 address), an IPv4 address itself.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    #[test]
    fn five_failures_are_free_then_delays_grow() {
        let mut t = LoginThrottle::new(ThrottlePolicy::default());
        for _ in 0..5 {
            t.record_failure("alice", None, at(0));
            assert!(t.check("alice", None, at(0)).is_ok());
        }
        t.record_failure("alice", None, at(0));
        assert_eq!(t.check("alice", None, at(0)), Err(Duration::from_secs(1)));
        assert!(t.check("alice", None, at(1)).is_ok());
        t.record_failure("alice", None, at(1));
        assert_eq!(t.check("alice", None, at(1)), Err(Duration::from_secs(2)));
        assert!(
            t.check("bob", None, at(1)).is_ok(),
            "other users are not held"
        );
    }

    #[test]
    fn no_hold_ever_exceeds_fifteen_minutes() {
        let mut t = LoginThrottle::new(ThrottlePolicy::default());
        for i in 0..100 {
            t.record_failure("alice", None, at(i));
        }
        assert_eq!(
            t.check("alice", None, at(99)),
            Err(Duration::from_secs(900))
        );
        assert!(t.check("alice", None, at(99 + 900)).is_ok());
    }

    #[test]
    fn failures_from_many_ips_still_hold_the_account() {
        let mut t = LoginThrottle::new(ThrottlePolicy::default());
        for i in 0..8u8 {
            t.record_failure("alice", Some(IpAddr::from([10, 0, 0, i])), at(0));
        }
        assert!(
            t.check("alice", Some(IpAddr::from([10, 0, 0, 99])), at(0))
                .is_err()
        );
    }

    #[test]
    fn stale_entries_are_forgotten_and_live_ones_kept() {
        let mut t = LoginThrottle::new(ThrottlePolicy::default());
        for i in 0..PRUNE_ABOVE {
            t.record_failure(&format!("old{i}"), None, at(0));
        }
        // Much later: the old entries hold nothing back and go at the next prune.
        for i in 0..10 {
            t.record_failure(
                &format!("new{i}"),
                Some(IpAddr::from([192, 0, 2, 9])),
                at(10_000),
            );
        }
        assert!(t.users.len() < 100, "{} entries left", t.users.len());
        assert!(t.users.contains_key("new9"));
    }

    #[test]
    fn success_resets_the_count() {
        let mut t = LoginThrottle::new(ThrottlePolicy::default());
        for _ in 0..5 {
            t.record_failure("alice", None, at(0));
        }
        t.record_success("alice");
        t.record_failure("alice", None, at(0));
        assert!(t.check("alice", None, at(0)).is_ok());
    }

    #[test]
    fn an_ip_over_its_budget_waits_for_the_minute_to_end() {
        let mut t = LoginThrottle::new(ThrottlePolicy::default());
        let ip = Some(IpAddr::from([192, 0, 2, 1]));
        for i in 0..30 {
            t.record_failure(&format!("user{i}"), ip, at(10));
        }
        assert_eq!(t.check("someone", ip, at(20)), Err(Duration::from_secs(50)));
        assert!(
            t.check("someone", Some(IpAddr::from([192, 0, 2, 2])), at(20))
                .is_ok()
        );
        assert!(t.check("someone", ip, at(70)).is_ok());
    }

    #[test]
    fn concurrent_attempts_are_held_like_sequential_ones() {
        // Forty guesses that all start before any password check ends.
        let mut t = LoginThrottle::new(ThrottlePolicy::default());
        let started = (0..40)
            .filter(|_| t.begin("alice", None, at(0)).is_ok())
            .count();
        assert_eq!(
            started, 6,
            "five free failures and the one that starts the hold"
        );
        // The same from one address with forty names: its budget of 30 holds.
        let ip = Some(IpAddr::from([192, 0, 2, 1]));
        let started = (0..80)
            .filter(|i| t.begin(&format!("user{i}"), ip, at(100)).is_ok())
            .count();
        assert_eq!(started, 30);
    }

    #[test]
    fn a_success_takes_back_its_attempt() {
        let mut t = LoginThrottle::new(ThrottlePolicy::default());
        let ip = Some(IpAddr::from([192, 0, 2, 1]));
        for i in 0..100 {
            let user = format!("user{i}");
            assert!(t.begin(&user, ip, at(0)).is_ok(), "login {i}");
            t.succeeded(&user, ip, at(0));
        }
    }

    #[test]
    fn ipv6_clients_share_the_budget_of_their_64() {
        let mut t = LoginThrottle::new(ThrottlePolicy::default());
        let in_64 = |i: u16| Some(IpAddr::from([0x2001, 0xdb8, 0, 7, i, i, i, i]));
        for i in 0..30u16 {
            t.record_failure(&format!("user{i}"), in_64(i), at(0));
        }
        assert!(t.check("someone", in_64(999), at(1)).is_err());
        let next_64 = Some(IpAddr::from([0x2001, 0xdb8, 0, 8, 1, 1, 1, 1]));
        assert!(t.check("someone", next_64, at(1)).is_ok());
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(ip_key(mapped), IpAddr::from([192, 0, 2, 1]));
    }

    #[test]
    fn registrations_spend_the_address_budget_and_are_never_taken_back() {
        let mut t = LoginThrottle::new(ThrottlePolicy::default());
        let ip: Option<IpAddr> = Some("203.0.113.9".parse().unwrap());
        let other: Option<IpAddr> = Some("203.0.113.10".parse().unwrap());
        for _ in 0..30 {
            assert!(t.begin_request(ip, at(0)).is_ok());
        }
        assert_eq!(t.begin_request(ip, at(10)), Err(Duration::from_secs(50)));
        assert!(
            t.check("alice", ip, at(10)).is_err(),
            "the same budget as failed logins"
        );
        assert!(t.begin_request(other, at(10)).is_ok(), "per address");
        assert!(t.begin_request(ip, at(60)).is_ok(), "a new minute");
        assert!(
            t.begin_request(None, at(60)).is_ok(),
            "no address: nothing to key on"
        );
    }
}

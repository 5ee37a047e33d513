//! Login throttling: the rules, as plain data and `now` in, decisions out. The counters live in
//! the store, so every instance on one database spends the same budgets.
//!
//! Three kinds of counter ([`Scope`]): per username (so spreading attempts over many IPs does not
//! help), per client address (a budget of failures per minute; IPv6 clients by their /64, which
//! one subscriber usually holds whole), and per device token (see `device_token.rs`): a login
//! presenting a valid device token of the account is counted against that device instead of the
//! username, so an attacker who keeps the username held never holds the account's own devices
//! (OWASP's "device cookies"); a device token that keeps failing is held in turn, like a name.
//!
//! Every counter follows one rule ([`Limit`]): failures are counted in a window that opens at the
//! first failure and closes `window` later, when they are all forgotten together (so a failure
//! older than the window never counts); after `free` failures in a window, each further one holds
//! the counter for a delay that doubles from `first_hold` up to `max_hold`, counted from the last
//! failure. Names and devices: a 15-minute window, 5 free failures, then 1 s, 2 s, … up to 15
//! minutes. Addresses: a one-minute window, 30 failures, then a minute's hold.
//!
//! An attempt counts when it starts ([`Limit::count`], which a store runs as the one atomic
//! statement [`CountFailure`] describes), not when its password check ends: checked first and
//! counted after argon2, forty simultaneous guesses all passed the check before any was counted.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use crate::time::Timestamp;

/// The throttle's limits.
#[derive(Clone, Copy, Debug)]
pub struct ThrottlePolicy {
    /// Failures a username (or device) may have in a window before holds start.
    pub free_failures: u32,
    /// The first hold; each further failure doubles it.
    pub first_delay: Duration,
    /// The longest a username is ever held (15 minutes, a documented promise).
    pub max_delay: Duration,
    /// How long a username's (or device's) failures count: they are forgotten together this
    /// long after the first of them (15 minutes).
    pub failure_window: Duration,
    /// Failures one IP may have in a minute before its logins are held for a minute.
    pub ip_failures_per_minute: u32,
    /// How long a device token exempts its device from the username's hold (a year).
    pub device_token_ttl: Duration,
}

const MINUTE: Duration = Duration::from_secs(60);

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            free_failures: 5,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            failure_window: Duration::from_secs(15 * 60),
            ip_failures_per_minute: 30,
            device_token_ttl: Duration::from_secs(365 * 86_400),
        }
    }
}

impl ThrottlePolicy {
    /// The rule a counter of `scope` follows.
    pub fn limit(&self, scope: Scope) -> Limit {
        match scope {
            Scope::Name | Scope::Device => Limit {
                free: self.free_failures,
                first_hold: self.first_delay,
                max_hold: self.max_delay,
                window: self.failure_window,
            },
            Scope::Address => Limit {
                free: self.ip_failures_per_minute.saturating_sub(1),
                first_hold: MINUTE,
                max_hold: MINUTE,
                window: MINUTE,
            },
        }
    }

    /// The counters a login (or password change) spends, in the order they are counted: the
    /// client's address, then the device when the client presented a valid device token of the
    /// account (`device`, its id), else the username. A device is never held by the username's
    /// counter: that is what keeps an attacker from locking the account's owner out. The address
    /// comes first so that an address over its budget spends nothing of the name's (an attempt
    /// refused by the name is taken back from the address).
    pub fn login_counters(
        &self,
        name_key: &str,
        device: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Vec<Counter> {
        let mut counters: Vec<Counter> = ip.map(Counter::address).into_iter().collect();
        counters.push(match device {
            Some(id) => Counter::new(Scope::Device, id),
            None => Counter::new(Scope::Name, name_key),
        });
        counters
    }

    /// How long after its last failure a counter may be forgotten: by then its window has
    /// closed and no hold it set is still running, so it holds nothing back.
    pub fn quiet_after(&self) -> Duration {
        [Scope::Name, Scope::Address]
            .into_iter()
            .map(|s| self.limit(s))
            .map(|l| l.window.max(l.max_hold))
            .max()
            .unwrap_or(MINUTE)
    }
}

/// What a counter counts the failures of. Stored by [`Scope::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A username (its case-folded key).
    Name,
    /// A device token's device id.
    Device,
    /// A client address (an IPv6 address's /64).
    Address,
}

impl Scope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Device => "device",
            Self::Address => "address",
        }
    }
}

/// One counter: a scope and a key within it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Counter {
    /// What it counts.
    pub scope: Scope,
    /// Whose: the username key, the device id, or the address.
    pub key: String,
}

impl Counter {
    /// The counter of `key` in `scope`.
    pub fn new(scope: Scope, key: &str) -> Self {
        Self {
            scope,
            key: key.to_owned(),
        }
    }

    /// The counter of a client address: an IPv6 address's /64 (an IPv4-mapped one is its IPv4
    /// address), an IPv4 address itself.
    pub fn address(ip: IpAddr) -> Self {
        Self::new(Scope::Address, &ip_key(ip).to_string())
    }
}

/// A counter as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureState {
    /// When its window opened (its first failure counted in the window).
    pub opened_at: Timestamp,
    /// Its last failure.
    pub last_at: Timestamp,
    /// Failures counted in the window.
    pub failures: u32,
}

/// The rule of one [`Scope`]: see the module's documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Failures in a window that hold nothing back.
    pub free: u32,
    /// The hold after the first failure past the free ones.
    pub first_hold: Duration,
    /// The longest hold.
    pub max_hold: Duration,
    /// How long after its first failure a window closes.
    pub window: Duration,
}

impl Limit {
    /// The hold after a window's `failures`-th failure: none up to `free`, then `first_hold`
    /// doubled for each further failure, at most `max_hold`.
    pub fn hold(&self, failures: u32) -> Duration {
        if failures <= self.free {
            return Duration::ZERO;
        }
        let doublings = failures - self.free - 1;
        if doublings >= self.doublings_to_max() {
            self.max_hold
        } else {
            self.first_hold.saturating_mul(1 << doublings)
        }
    }

    /// How many doublings of `first_hold` reach `max_hold` (at most 62, so that a shift by it
    /// never overflows a 64-bit integer).
    pub fn doublings_to_max(&self) -> u32 {
        (0..62)
            .find(|&k| self.first_hold.saturating_mul(1 << k) >= self.max_hold)
            .unwrap_or(62)
    }

    /// `Some(how long)` while `state` holds its counter back at `now`.
    pub fn held(&self, state: &FailureState, now: Timestamp) -> Option<Duration> {
        let wait = state.last_at.plus(self.hold(state.failures)).since(now);
        (wait > Duration::ZERO).then_some(wait)
    }

    /// An attempt at `now` against a counter in `state` (`None`: no failures recorded):
    /// `Err(retry_after)` while it is held, and nothing changes; otherwise the attempt is
    /// counted as a failure, in a new window if the old one has closed.
    pub fn count(
        &self,
        state: Option<FailureState>,
        now: Timestamp,
    ) -> Result<FailureState, Duration> {
        match state {
            Some(s) => {
                if let Some(wait) = self.held(&s, now) {
                    return Err(wait);
                }
                if s.opened_at <= now.minus(self.window) {
                    Ok(FailureState::first(now))
                } else {
                    Ok(FailureState {
                        failures: s.failures.saturating_add(1),
                        last_at: now,
                        ..s
                    })
                }
            }
            None => Ok(FailureState::first(now)),
        }
    }

    /// A counted attempt taken back (a right password from the address): one failure less,
    /// unless its window is no longer the one that counted it at `counted_at`.
    pub fn take_back(&self, state: FailureState, counted_at: Timestamp) -> FailureState {
        if state.opened_at <= counted_at {
            FailureState {
                failures: state.failures.saturating_sub(1),
                ..state
            }
        } else {
            state
        }
    }
}

impl FailureState {
    fn first(now: Timestamp) -> Self {
        Self {
            opened_at: now,
            last_at: now,
            failures: 1,
        }
    }
}

/// What [`crate::Store::count_failure`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// The attempt was counted.
    Yes,
    /// The counter is held; nothing changed. Its state as read just after (`None`: cleared in
    /// between, by a right password).
    Held(Option<FailureState>),
}

/// [`Limit::count`] as the one atomic statement a store runs, so that concurrent attempts, on
/// one instance or several, are counted as if they came one at a time:
///
/// ```sql
/// INSERT INTO login_failures (scope, key, opened_at, last_at, failures)
///      VALUES (:scope, :key, :now, :now, 1)
/// ON CONFLICT (scope, key) DO UPDATE SET
///     opened_at = CASE WHEN opened_at <= :closed_before THEN :now ELSE opened_at END,
///     failures  = CASE WHEN opened_at <= :closed_before THEN 1 ELSE failures + 1 END,
///     last_at   = :now
///  WHERE NOT (failures > :free AND last_at > :now -
///             CASE WHEN failures <= :free THEN 0
///                  WHEN failures - :free - 1 >= :doublings THEN :max_hold_ms
///                  ELSE :first_hold_ms << (failures - :free - 1) END)
/// RETURNING failures
/// ```
///
/// (the columns in `SET` and `WHERE` are the stored row's). No row returned: the counter is held
/// and nothing changed; the store then reads the row, for [`Limit::held`] to say how long. The
/// contract suite checks the statement against [`Limit::count`].
#[derive(Clone, Copy, Debug)]
pub struct CountFailure<'a> {
    /// The counter.
    pub counter: &'a Counter,
    /// The attempt's time.
    pub now: Timestamp,
    /// A window opened at or before this has closed: the attempt opens a new one.
    pub closed_before: Timestamp,
    /// [`Limit::free`].
    pub free: u32,
    /// [`Limit::first_hold`] in milliseconds.
    pub first_hold_ms: i64,
    /// [`Limit::max_hold`] in milliseconds.
    pub max_hold_ms: i64,
    /// [`Limit::doublings_to_max`].
    pub doublings: u32,
}

impl<'a> CountFailure<'a> {
    /// An attempt at `now` against `counter`, which follows `limit`.
    pub fn new(counter: &'a Counter, limit: &Limit, now: Timestamp) -> Self {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self {
            counter,
            now,
            closed_before: now.minus(limit.window),
            free: limit.free,
            first_hold_ms: ms(limit.first_hold),
            max_hold_ms: ms(limit.max_hold),
            doublings: limit.doublings_to_max(),
        }
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
    use proptest::prelude::*;

    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    /// A counter driven through `Limit::count`, as the store drives its row.
    struct Driven {
        limit: Limit,
        state: Option<FailureState>,
    }

    impl Driven {
        fn new(scope: Scope) -> Self {
            Self {
                limit: ThrottlePolicy::default().limit(scope),
                state: None,
            }
        }
        fn attempt(&mut self, now: Timestamp) -> Result<(), Duration> {
            self.state = Some(self.limit.count(self.state, now)?);
            Ok(())
        }
    }

    #[test]
    fn five_failures_are_free_then_holds_double() {
        let mut name = Driven::new(Scope::Name);
        for _ in 0..6 {
            assert!(name.attempt(at(0)).is_ok());
        }
        assert_eq!(name.attempt(at(0)), Err(Duration::from_secs(1)));
        assert!(name.attempt(at(1)).is_ok());
        assert_eq!(name.attempt(at(1)), Err(Duration::from_secs(2)));
    }

    #[test]
    fn holds_stop_at_fifteen_minutes() {
        let limit = ThrottlePolicy::default().limit(Scope::Name);
        assert_eq!(limit.hold(5), Duration::ZERO);
        assert_eq!(limit.hold(6), Duration::from_secs(1));
        assert_eq!(limit.hold(15), Duration::from_secs(512));
        assert_eq!(limit.hold(16), Duration::from_secs(900));
        assert_eq!(limit.hold(u32::MAX), Duration::from_secs(900));
        assert_eq!(limit.doublings_to_max(), 10);
    }

    #[test]
    fn after_the_hold_a_single_guess_does_not_lock_again_once_failures_have_decayed() {
        // The finding: after a 900 s hold, one wrong guess held the name for another 900 s.
        let mut name = Driven::new(Scope::Name);
        let mut now = at(0);
        while name
            .state
            .is_none_or(|s| name.limit.hold(s.failures) < Duration::from_secs(256))
        {
            match name.attempt(now) {
                Ok(()) => {}
                Err(wait) => now = now.plus(wait),
            }
        }
        let last = name.state.unwrap().last_at;
        assert!(name.attempt(last).is_err(), "held");
        let decayed = name
            .state
            .unwrap()
            .opened_at
            .plus(Duration::from_secs(15 * 60));
        let after_hold = last.plus(name.limit.hold(name.state.unwrap().failures));
        let later = decayed.max(after_hold);
        assert!(name.attempt(later).is_ok());
        assert_eq!(name.state.unwrap().failures, 1, "a new window");
        assert!(name.attempt(later).is_ok(), "not held by one failure");
    }

    #[test]
    fn an_ip_over_its_budget_waits_a_minute() {
        let mut ip = Driven::new(Scope::Address);
        for _ in 0..30 {
            assert!(ip.attempt(at(10)).is_ok());
        }
        assert_eq!(ip.attempt(at(20)), Err(Duration::from_secs(50)));
        assert!(ip.attempt(at(70)).is_ok());
        assert_eq!(ip.state.unwrap().failures, 1, "a new minute");
    }

    #[test]
    fn concurrent_attempts_are_held_like_sequential_ones() {
        // Forty guesses that all start before any password check ends.
        let mut name = Driven::new(Scope::Name);
        let started = (0..40).filter(|_| name.attempt(at(0)).is_ok()).count();
        assert_eq!(
            started, 6,
            "five free failures and the one that starts the hold"
        );
        let mut ip = Driven::new(Scope::Address);
        let started = (0..80).filter(|_| ip.attempt(at(100)).is_ok()).count();
        assert_eq!(started, 30);
    }

    #[test]
    fn a_success_takes_back_its_attempt_from_the_address() {
        let mut ip = Driven::new(Scope::Address);
        for i in 0..100 {
            assert!(ip.attempt(at(0)).is_ok(), "login {i}");
            ip.state = Some(ip.limit.take_back(ip.state.unwrap(), at(0)));
        }
        // Not from a window opened after the attempt.
        let later = FailureState {
            opened_at: at(61),
            last_at: at(61),
            failures: 3,
        };
        assert_eq!(ip.limit.take_back(later, at(0)), later);
    }

    #[test]
    fn ipv6_clients_share_the_budget_of_their_64() {
        let in_64 = |i: u16| IpAddr::from([0x2001, 0xdb8, 0, 7, i, i, i, i]);
        assert_eq!(Counter::address(in_64(1)), Counter::address(in_64(999)));
        assert_ne!(
            Counter::address(in_64(1)),
            Counter::address(IpAddr::from([0x2001, 0xdb8, 0, 8, 1, 1, 1, 1]))
        );
        assert_eq!(Counter::address(in_64(1)).key, "2001:db8:0:7::");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(Counter::address(mapped).key, "192.0.2.1");
    }

    #[test]
    fn a_device_is_counted_instead_of_the_name_and_the_address_first() {
        let policy = ThrottlePolicy::default();
        let ip = Some(IpAddr::from([192, 0, 2, 1]));
        assert_eq!(
            policy.login_counters("alice", None, ip),
            [
                Counter::new(Scope::Address, "192.0.2.1"),
                Counter::new(Scope::Name, "alice")
            ]
        );
        assert_eq!(
            policy.login_counters("alice", Some("d1"), None),
            [Counter::new(Scope::Device, "d1")]
        );
    }

    #[derive(Clone, Debug)]
    enum Step {
        Wait(u32),
        Attempt,
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        proptest::collection::vec(
            prop_oneof![
                3 => (0u32..2_000_000).prop_map(Step::Wait),
                5 => Just(Step::Attempt),
            ],
            0..120,
        )
    }

    proptest! {
        /// Whatever the attempts and pauses: no hold exceeds 15 minutes, and a hold is never
        /// caused by a failure older than 15 minutes (a counter whose failures are all older
        /// than that never holds, and the next attempt opens a new window).
        #[test]
        fn no_hold_exceeds_fifteen_minutes_and_old_failures_never_count(steps in steps()) {
            let quarter = Duration::from_secs(15 * 60);
            let mut name = Driven::new(Scope::Name);
            let mut now = at(1_000_000);
            let mut counted: Vec<Timestamp> = Vec::new();
            for step in steps {
                match step {
                    Step::Wait(ms) => now = now.plus(Duration::from_millis(u64::from(ms))),
                    Step::Attempt => match name.attempt(now) {
                        Ok(()) => {
                            counted.push(now);
                            let state = name.state.unwrap();
                            let recent = counted.iter().filter(|t| **t > now.minus(quarter)).count();
                            prop_assert!(state.failures as usize <= recent,
                                "{} counted, {recent} within 15 minutes", state.failures);
                        }
                        Err(wait) => {
                            prop_assert!(wait <= quarter);
                            let last = *counted.last().unwrap();
                            prop_assert!(now < last.plus(quarter), "held by a failure 15 minutes old");
                        }
                    },
                }
            }
        }

        /// A login with a device token never spends the username's counter, whatever the name,
        /// device and address.
        #[test]
        fn a_device_holder_is_never_held_by_the_username(
            name in "[a-z0-9._@-]{3,64}",
            device in "[A-Za-z0-9_-]{1,40}",
            ip in proptest::option::of(any::<[u8; 16]>()),
        ) {
            let counters = ThrottlePolicy::default()
                .login_counters(&name, Some(&device), ip.map(IpAddr::from));
            prop_assert!(counters.iter().all(|c| c.scope != Scope::Name));
            prop_assert!(counters.contains(&Counter::new(Scope::Device, &device)));
            prop_assert_eq!(counters.iter().any(|c| c.scope == Scope::Address), ip.is_some());
        }
    }
}

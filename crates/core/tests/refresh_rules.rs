//! Property tests of the refresh state machine: `rules::decide` driven by random sequences of
//! refreshes, replays, forgeries, logouts and clock jumps, against a one-session model that
//! applies each decision the way `Tessera::try_refresh` does.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use proptest::prelude::*;
use tessera_core::RefreshRejection;
use tessera_core::Timestamp;
use tessera_core::refresh_token::{RefreshKey, RefreshToken};
use tessera_core::rules::{Decision, Lifetimes, SessionState, decide};
use uuid::Uuid;

const SEC: u64 = 1_000;
const DAY: u64 = 86_400 * SEC;
/// Somewhere in 2023, so that nothing depends on the epoch.
const START: i64 = 1_700_000_000_000;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What the client side of the test does next.
#[derive(Clone, Debug)]
enum Op {
    /// Present the token the session holds now.
    PresentCurrent,
    /// Present the immediate predecessor of the current token (a second tab, a retry).
    PresentPredecessor,
    /// Present any token issued so far (index taken modulo their number).
    PresentIssued(usize),
    /// Present a token with our tag and this session's id but a nonce we never issued, advanced
    /// `steps` generations.
    PresentForged { nonce: u8, steps: u8 },
    /// Present the token of generation `steps` of this session's id, made with another secret.
    PresentOtherKey { steps: u8 },
    /// Present the successor of the current token before the server issued it.
    PresentFuture,
    /// Log out: the session is revoked.
    Logout,
    /// Let time pass.
    Advance(u64),
}

fn clock_jump() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => Just(0u64),
        4 => 0..=2 * SEC,
        // Around the default 10 s grace boundary.
        4 => (10 * SEC - 20)..=(10 * SEC + 20),
        1 => Just(10 * SEC),
        2 => 0..=120 * SEC,
        1 => 0..=5 * DAY,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => Just(Op::PresentCurrent),
        4 => Just(Op::PresentPredecessor),
        3 => any::<usize>().prop_map(Op::PresentIssued),
        1 => (any::<u8>(), 0u8..6).prop_map(|(nonce, steps)| Op::PresentForged { nonce, steps }),
        1 => (0u8..6).prop_map(|steps| Op::PresentOtherKey { steps }),
        1 => Just(Op::PresentFuture),
        1 => Just(Op::Logout),
        7 => clock_jump().prop_map(Op::Advance),
    ]
}

fn lifetimes() -> impl Strategy<Value = Lifetimes> {
    let spec = Lifetimes {
        idle: ms(7 * DAY),
        absolute: ms(30 * DAY),
        reuse_grace: ms(10 * SEC),
    };
    prop_oneof![
        1 => Just(spec),
        // Short lifetimes, so that idle and absolute expiry happen within a sequence (the idle
        // timeout may even be shorter than the grace window).
        2 => (1..=60 * SEC, 1..=600 * SEC, prop_oneof![Just(10 * SEC), 0..=15 * SEC]).prop_map(
            |(idle, absolute, grace)| Lifetimes {
                idle: ms(idle),
                absolute: ms(absolute),
                reuse_grace: ms(grace),
            }
        ),
    ]
}

/// One session as the store would hold it, plus every token the client has been given.
struct Model {
    key: RefreshKey,
    other_key: RefreshKey,
    first_nonce: [u8; 32],
    lifetimes: Lifetimes,
    now: Timestamp,
    state: SessionState,
    /// `issued[g]` is the token of generation `g`; the last one is current.
    issued: Vec<RefreshToken>,
    /// Set once the session was seen revoked or expired: it must never come back.
    ended: bool,
}

impl Model {
    fn login(secret: [u8; 32], first_nonce: [u8; 32], lifetimes: Lifetimes) -> Self {
        let key = RefreshKey::new(&secret);
        let mut other_secret = secret;
        other_secret[0] ^= 0xff;
        let first = key.first(Uuid::new_v4(), first_nonce);
        let now = Timestamp::from_millis(START);
        Self {
            state: SessionState {
                generation: 0,
                token_hash: key.hash(&first).to_vec(),
                created_at: now,
                rotated_at: now,
                last_used_at: now,
                revoked: false,
            },
            other_key: RefreshKey::new(&other_secret),
            key,
            first_nonce,
            lifetimes,
            now,
            issued: vec![first],
            ended: false,
        }
    }

    fn current(&self) -> &RefreshToken {
        self.issued.last().unwrap()
    }

    fn session_id(&self) -> Uuid {
        self.current().session_id()
    }

    fn live(&self) -> bool {
        !self.state.revoked && self.now < self.expires_at()
    }

    /// Computed here rather than with `SessionState::expires_at`, so the model does not
    /// borrow the code under test.
    fn expires_at(&self) -> Timestamp {
        let idle = self.state.last_used_at.plus(self.lifetimes.idle);
        let absolute = self.state.created_at.plus(self.lifetimes.absolute);
        idle.min(absolute)
    }

    fn decide(&self, token: &RefreshToken) -> Decision {
        decide(&self.state, token, &self.key, self.now, &self.lifetimes)
    }

    /// What refresh rules 2–5 say about a token this session issued.
    fn expected_for_issued(&self, generation: usize) -> Decision {
        if self.state.revoked {
            return Decision::Reject(RefreshRejection::Revoked);
        }
        if self.now >= self.expires_at() {
            return Decision::Reject(RefreshRejection::Expired);
        }
        let current = self.issued.len() - 1;
        if generation == current {
            Decision::Rotate {
                successor: self.key.successor(self.current()),
            }
        } else if generation + 1 == current
            && self.now.since(self.state.rotated_at) <= self.lifetimes.reuse_grace
        {
            Decision::Replay {
                successor: self.current().clone(),
            }
        } else {
            Decision::Reused
        }
    }

    /// Applies a decision the way `Tessera::try_refresh` does.
    fn apply(&mut self, decision: &Decision) {
        match decision {
            Decision::Rotate { successor } => {
                self.state.generation += 1;
                self.state.token_hash = self.key.hash(successor).to_vec();
                self.state.rotated_at = self.now;
                self.state.last_used_at = self.now;
                self.issued.push(successor.clone());
            }
            Decision::Replay { .. } | Decision::Reject(_) => {}
            Decision::Reused => self.state.revoked = true,
        }
    }

    /// Presents an issued token, checks the decision against the rules and applies it.
    fn present_issued(&mut self, generation: usize) -> Result<(), TestCaseError> {
        let token = self.issued[generation].clone();
        let was_live = self.live();
        let got = self.decide(&token);
        prop_assert_eq!(
            &got,
            &self.expected_for_issued(generation),
            "generation {}",
            generation
        );
        if let Decision::Replay { successor } = &got {
            prop_assert_eq!(
                successor,
                self.current(),
                "a replay hands back the current token"
            );
        }
        if got == Decision::Reused {
            prop_assert!(was_live, "reuse is only detected on a live session");
        }
        self.apply(&got);
        Ok(())
    }

    /// A token the session never issued must never rotate or replay. Returns what happened.
    fn present_foreign(&mut self, token: &RefreshToken) -> Result<Decision, TestCaseError> {
        prop_assert!(
            !self.issued.contains(token),
            "test bug: {:?} was issued",
            token
        );
        let got = self.decide(token);
        prop_assert!(
            !matches!(got, Decision::Rotate { .. } | Decision::Replay { .. }),
            "a token the session never issued was accepted: {:?} gave {:?}",
            token,
            got
        );
        Ok(got)
    }

    /// Invariants that hold between any two operations, probed without changing anything.
    fn check_invariants(&mut self) -> Result<(), TestCaseError> {
        let live = self.live();
        if !live {
            self.ended = true;
        }
        prop_assert_eq!(self.state.generation as usize + 1, self.issued.len());
        let current = self.issued.len() - 1;
        let mut rotating = 0;
        for (g, token) in self.issued.iter().enumerate() {
            let d = self.decide(token);
            match &d {
                Decision::Rotate { .. } => {
                    rotating += 1;
                    prop_assert_eq!(g, current, "only the latest token may rotate");
                }
                Decision::Replay { successor } => {
                    prop_assert_eq!(g + 1, current, "only the predecessor may replay");
                    prop_assert_eq!(successor, self.current());
                }
                Decision::Reused => {
                    prop_assert!(g < current, "the current token is never reuse");
                }
                Decision::Reject(r) => {
                    prop_assert!(
                        !live,
                        "a live session rejected generation {} with {:?}",
                        g,
                        r
                    );
                }
            }
            if self.ended {
                let reason = if self.state.revoked {
                    RefreshRejection::Revoked
                } else {
                    RefreshRejection::Expired
                };
                prop_assert_eq!(d, Decision::Reject(reason), "an ended session stays ended");
            }
        }
        prop_assert_eq!(
            rotating,
            usize::from(live),
            "exactly one token is current while live"
        );
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::PresentCurrent => self.present_issued(self.issued.len() - 1)?,
            Op::PresentPredecessor => {
                if self.issued.len() >= 2 {
                    self.present_issued(self.issued.len() - 2)?;
                }
            }
            Op::PresentIssued(i) => self.present_issued(i % self.issued.len())?,
            Op::PresentForged { nonce, steps } => {
                let mut forged_nonce = [nonce; 32];
                if forged_nonce == self.first_nonce {
                    forged_nonce[0] ^= 1;
                }
                let mut token = self.key.first(self.session_id(), forged_nonce);
                for _ in 0..steps {
                    token = self.key.successor(&token);
                }
                let got = self.present_foreign(&token)?;
                let generation = u64::from(steps);
                if self.live() && generation + 1 >= self.state.generation {
                    // Current, predecessor or future generation: the stored hash tells it apart.
                    prop_assert_eq!(&got, &Decision::Reject(RefreshRejection::Unknown));
                }
                // Older generations carry a valid tag of ours, which `decide` takes as proof
                // of reuse: the service would revoke, so the model does too.
                self.apply(&got);
            }
            Op::PresentOtherKey { steps } => {
                let mut token = self.other_key.first(self.session_id(), self.first_nonce);
                for _ in 0..steps {
                    token = self.other_key.successor(&token);
                }
                // The service parses with its own key first: another secret's token never
                // reaches the rules, and is "unknown".
                prop_assert!(self.key.parse(&token.encode()).is_none());
                // Even handed to the rules directly, it is never accepted.
                self.present_foreign(&token)?;
            }
            Op::PresentFuture => {
                let ahead = self.key.successor(self.current());
                let got = self.present_foreign(&ahead)?;
                if self.live() {
                    prop_assert_eq!(&got, &Decision::Reject(RefreshRejection::Unknown));
                }
                self.apply(&got);
            }
            Op::Logout => self.state.revoked = true,
            Op::Advance(n) => self.now = self.now.plus(ms(n)),
        }
        self.check_invariants()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The headline invariants: whatever the order of refreshes, replays, forgeries, logouts
    /// and clock jumps, one token at most is current, replays hand back exactly that token,
    /// reuse ends the session for good, and an ended session never issues anything again.
    #[test]
    fn any_sequence_of_refreshes_keeps_at_most_one_live_token(
        secret in any::<[u8; 32]>(),
        first_nonce in any::<[u8; 32]>(),
        lifetimes in lifetimes(),
        ops in prop::collection::vec(op(), 1..48),
    ) {
        let mut model = Model::login(secret, first_nonce, lifetimes);
        model.check_invariants()?;
        for op in &ops {
            model.step(op)?;
        }
    }

    /// The grace window, exercised on purpose: a rotation, then the old token again after
    /// `delay`. Within the window it is a replay of the same successor (as often as asked);
    /// after it, reuse, and the successor dies with the session.
    #[test]
    fn the_predecessor_replays_within_grace_and_is_reuse_after_it(
        secret in any::<[u8; 32]>(),
        grace in prop_oneof![Just(10 * SEC), 0..=15 * SEC],
        delay in prop_oneof![(10 * SEC - 5)..=(10 * SEC + 5), 0..=20 * SEC],
        retries in 1usize..4,
    ) {
        let lifetimes = Lifetimes { idle: ms(7 * DAY), absolute: ms(30 * DAY), reuse_grace: ms(grace) };
        let mut model = Model::login(secret, [7; 32], lifetimes);
        model.now = model.now.plus(ms(60 * SEC));
        model.present_issued(0)?;
        model.now = model.now.plus(ms(delay));
        let first = model.issued[0].clone();
        for attempt in 0..retries {
            let got = model.decide(&first);
            if delay <= grace {
                prop_assert_eq!(&got, &Decision::Replay { successor: model.issued[1].clone() });
            } else if attempt == 0 {
                prop_assert_eq!(&got, &Decision::Reused);
            } else {
                prop_assert_eq!(&got, &Decision::Reject(RefreshRejection::Revoked));
            }
            model.apply(&got);
        }
        let successor = model.issued[1].clone();
        if delay <= grace {
            let got = model.decide(&successor);
            prop_assert!(matches!(got, Decision::Rotate { .. }), "the successor still rotates: {:?}", got);
        } else {
            prop_assert_eq!(model.decide(&successor), Decision::Reject(RefreshRejection::Revoked));
        }
    }

    /// Tokens with our tag, this session's id and a nonce we never issued: neither current nor
    /// predecessor nor future generations are accepted, and they leave the session alone.
    #[test]
    fn forged_tokens_of_recent_generations_are_unknown_and_harmless(
        secret in any::<[u8; 32]>(),
        nonce in any::<[u8; 32]>(),
        rotations in 0usize..5,
        forged_generation_offset in 0u64..3,
    ) {
        let lifetimes = Lifetimes { idle: ms(7 * DAY), absolute: ms(30 * DAY), reuse_grace: ms(10 * SEC) };
        let mut model = Model::login(secret, [9; 32], lifetimes);
        prop_assume!(nonce != [9; 32]);
        for _ in 0..rotations {
            model.now = model.now.plus(ms(SEC));
            model.present_issued(model.issued.len() - 1)?;
        }
        // Generation current - 1, current or current + 1.
        let target = (rotations as u64 + forged_generation_offset).checked_sub(1);
        prop_assume!(target.is_some());
        let mut forged = model.key.first(model.session_id(), nonce);
        for _ in 0..target.unwrap() {
            forged = model.key.successor(&forged);
        }
        let before = model.state.clone();
        prop_assert_eq!(model.decide(&forged), Decision::Reject(RefreshRejection::Unknown));
        prop_assert_eq!(&model.state, &before);
        let got = model.decide(model.current());
        prop_assert!(matches!(got, Decision::Rotate { .. }), "the current token still rotates: {:?}", got);
    }
}

fn default_lifetimes() -> Lifetimes {
    Lifetimes {
        idle: ms(7 * DAY),
        absolute: ms(30 * DAY),
        reuse_grace: ms(10 * SEC),
    }
}

#[test]
fn with_no_grace_window_only_a_retry_in_the_same_millisecond_is_a_replay() {
    let lifetimes = Lifetimes {
        reuse_grace: Duration::ZERO,
        ..default_lifetimes()
    };
    let mut model = Model::login([3; 32], [4; 32], lifetimes);
    model.now = model.now.plus(ms(SEC));
    model.present_issued(0).unwrap();
    let old = model.issued[0].clone();
    assert_eq!(
        model.decide(&old),
        Decision::Replay {
            successor: model.issued[1].clone()
        }
    );
    model.now = model.now.plus(ms(1));
    assert_eq!(model.decide(&old), Decision::Reused);
}

#[test]
fn a_clock_that_steps_back_keeps_the_predecessor_within_grace() {
    // Two instances whose clocks disagree: the one answering the retry is 30 s behind the one
    // that rotated. `since` saturates at zero, so the retry is still a replay, not reuse.
    let mut model = Model::login([5; 32], [6; 32], default_lifetimes());
    model.now = model.now.plus(ms(60 * SEC));
    model.present_issued(0).unwrap();
    model.now = Timestamp::from_millis(model.now.as_millis() - 30 * 1_000);
    assert_eq!(
        model.decide(&model.issued[0].clone()),
        Decision::Replay {
            successor: model.issued[1].clone()
        }
    );
}

#[test]
fn replays_do_not_extend_the_idle_timeout() {
    // A replay changes nothing in storage, so it cannot keep a session alive: only a rotation
    // moves `last_used_at`.
    let lifetimes = Lifetimes {
        idle: ms(20 * SEC),
        absolute: ms(DAY),
        reuse_grace: ms(10 * SEC),
    };
    let mut model = Model::login([8; 32], [1; 32], lifetimes);
    model.now = model.now.plus(ms(5 * SEC));
    model.present_issued(0).unwrap();
    let rotated = model.now;
    model.now = rotated.plus(ms(10 * SEC));
    model.present_issued(0).unwrap(); // a replay at the very end of the grace window
    assert_eq!(model.state.last_used_at, rotated);
    model.now = rotated.plus(ms(20 * SEC));
    assert_eq!(
        model.decide(&model.issued[1].clone()),
        Decision::Reject(RefreshRejection::Expired)
    );
}

#[test]
fn an_expired_session_says_expired_and_is_not_revoked_by_an_old_token() {
    // After expiry an old token is not evidence of theft worth acting on: the answer is
    // "expired", and nothing is written.
    let mut model = Model::login([2; 32], [2; 32], default_lifetimes());
    for _ in 0..3 {
        model.now = model.now.plus(ms(DAY));
        model.present_issued(model.issued.len() - 1).unwrap();
    }
    model.now = model.now.plus(ms(7 * DAY));
    for token in model.issued.clone() {
        let d = model.decide(&token);
        assert_eq!(d, Decision::Reject(RefreshRejection::Expired));
        model.apply(&d);
    }
    assert!(!model.state.revoked);
}

#[test]
fn the_absolute_lifetime_ends_a_session_used_every_day() {
    let mut model = Model::login([4; 32], [4; 32], default_lifetimes());
    let end = model.state.created_at.plus(ms(30 * DAY));
    while model.now.plus(ms(DAY)) < end {
        model.now = model.now.plus(ms(DAY));
        model.present_issued(model.issued.len() - 1).unwrap();
    }
    assert!(matches!(
        model.decide(&model.current().clone()),
        Decision::Rotate { .. }
    ));
    model.now = end;
    assert_eq!(
        model.decide(&model.current().clone()),
        Decision::Reject(RefreshRejection::Expired)
    );
}

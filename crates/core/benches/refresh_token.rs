//! Refresh tokens: the rule decision (`rules::decide`) and the keyed hashes behind it
//! (`RefreshKey::parse`, `successor`, `hash`). Each is a few HMAC-SHA-256 runs: these show they
//! are negligible beside a signature or a database round trip.
//!
//! `cargo bench -p tessera-core --bench refresh_token`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_core::Timestamp;
use tessera_core::refresh_token::RefreshKey;
use tessera_core::rules::{self, Decision, Lifetimes, SessionState};
use uuid::Uuid;

fn refresh(c: &mut Criterion) {
    let key = RefreshKey::new(&[7; RefreshKey::SECRET_LEN]);
    let first = key.first(Uuid::new_v4(), [9; 32]);
    let current = key.successor(&first);
    let wire = current.encode();
    let lifetimes = Lifetimes {
        idle: Duration::from_secs(7 * 86_400),
        absolute: Duration::from_secs(30 * 86_400),
        reuse_grace: Duration::from_secs(10),
    };
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    let now = t0.plus(Duration::from_secs(5));
    let state = SessionState {
        generation: 1,
        token_hash: key.hash(&current).to_vec(),
        created_at: t0,
        rotated_at: t0,
        last_used_at: t0,
        revoked: false,
    };

    let mut g = c.benchmark_group("refresh_token");
    g.bench_function("parse", |b| {
        b.iter(|| key.parse(black_box(&wire)).expect("ours"))
    });
    g.bench_function("parse_forged", |b| {
        let forged = RefreshKey::new(&[8; 32])
            .first(Uuid::new_v4(), [1; 32])
            .encode();
        b.iter(|| assert!(key.parse(black_box(&forged)).is_none()))
    });
    g.bench_function("successor", |b| {
        b.iter(|| key.successor(black_box(&current)))
    });
    g.bench_function("hash", |b| b.iter(|| key.hash(black_box(&current))));
    g.bench_function("encode", |b| b.iter(|| black_box(&current).encode()));
    g.finish();

    let mut g = c.benchmark_group("rules::decide");
    g.bench_function("rotate", |b| {
        b.iter(|| {
            let d = rules::decide(black_box(&state), &current, &key, now, &lifetimes);
            assert!(matches!(d, Decision::Rotate { .. }));
        })
    });
    g.bench_function("replay_in_grace", |b| {
        b.iter(|| {
            let d = rules::decide(black_box(&state), &first, &key, now, &lifetimes);
            assert!(matches!(d, Decision::Replay { .. }));
        })
    });
    let late = t0.plus(Duration::from_secs(60));
    g.bench_function("reused", |b| {
        b.iter(|| {
            let d = rules::decide(black_box(&state), &first, &key, late, &lifetimes);
            assert_eq!(d, Decision::Reused);
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = refresh
}
criterion_main!(benches);

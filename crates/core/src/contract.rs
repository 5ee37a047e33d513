//! The contract every [`Store`] must honour, as async checks each backend's tests call with a
//! fresh, empty store. Enabled by the `store-contract` feature.

use std::net::IpAddr;
use std::sync::Arc;

use uuid::Uuid;

use crate::events::{Delivery, EventState, EventType, NewEvent, StoredEvent};
use crate::keys::{SealedBlob, SigningAlg, StoredKey};
use crate::throttle::{CountFailure, Counted, Counter, FailureState, Scope, ThrottlePolicy};
use crate::{
    BUILTIN_CLIENT_ID, ClientKind, ClientRecord, CurrentRotation, LiveBounds, RevokeReason,
    SessionRecord, Store, StoreError, Timestamp, User, UserSummary,
};

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn user(name: &str) -> User {
    User {
        id: Uuid::new_v4(),
        username: name.into(),
        password_hash: "$argon2id$fake".into(),
        created_at: at(1),
        disabled_at: None,
    }
}

fn session(user: &User, now: i64) -> SessionRecord {
    SessionRecord {
        id: Uuid::new_v4(),
        user_id: user.id,
        username: user.username.clone(),
        generation: 0,
        token_hash: vec![1; 32],
        created_at: at(now),
        rotated_at: at(now),
        last_used_at: at(now),
        revoked_at: None,
        revoked_reason: None,
        user_agent: Some("Mozilla/5.0 (contract)".into()),
        ip: Some(IpAddr::from([203, 0, 113, 7])),
        client_id: BUILTIN_CLIENT_ID.into(),
        dpop_jkt: None,
    }
}

fn client(name: &str, kind: ClientKind) -> ClientRecord {
    ClientRecord {
        id: Uuid::new_v4().to_string(),
        name: name.into(),
        kind,
        secret_hash: (kind == ClientKind::Confidential).then(|| vec![7; 32]),
        created_at: at(1),
        removed_at: None,
    }
}

/// Runs every check against `store` (which must start empty).
pub async fn run_all(store: Arc<dyn Store>) {
    users_are_unique_without_regard_to_case(&*store).await;
    sessions_round_trip(&*store).await;
    rotation_is_a_compare_and_swap(&*store).await;
    concurrent_rotations_have_exactly_one_winner(store.clone()).await;
    rotating_the_current_token_checks_every_rotate_condition(&*store).await;
    concurrent_fast_rotations_have_exactly_one_winner(store.clone()).await;
    revocation_is_per_session_or_per_user(&*store).await;
    ended_sessions_are_deleted(&*store).await;
    keys_and_secrets_round_trip(&*store).await;
    revocations_are_listed_since_a_time(&*store).await;
    revocations_page_exactly_through_one_millisecond(&*store).await;
    disabling_revokes_every_session_and_blocks_new_ones(&*store).await;
    a_password_change_keeps_one_session_unless_it_was_revoked(&*store).await;
    reset_tokens_are_single_use_replaced_and_expire(&*store).await;
    a_deleted_users_sessions_stay_in_the_feed_by_id_alone(&*store).await;
    users_are_paged_by_id_with_live_session_counts(&*store).await;
    the_builtin_client_exists_and_clients_round_trip(&*store).await;
    removing_a_client_revokes_its_sessions_once(&*store).await;
    the_fast_rotation_checks_the_client(&*store).await;
    a_bound_session_rotates_fast_only_with_its_key(&*store).await;
    dpop_proof_ids_are_recorded_once_until_they_expire(&*store).await;
    failure_counts_follow_the_throttle_rule(&*store).await;
    concurrent_failures_are_counted_one_at_a_time(store.clone()).await;
    changes_write_their_events_with_them(&*store).await;
    the_outbox_is_claimed_leased_finished_and_pruned(&*store).await;
    store.ping().await.expect("ping");
}

async fn users_are_unique_without_regard_to_case(store: &dyn Store) {
    let alice = user("Alice");
    store.insert_user(&alice).await.expect("insert alice");
    assert!(matches!(
        store.insert_user(&user("aLICE")).await,
        Err(StoreError::Conflict)
    ));
    let found = store
        .user_by_name("alice")
        .await
        .expect("lookup")
        .expect("alice exists");
    assert_eq!(found, alice);
    assert!(store.user_by_name("bob").await.expect("lookup").is_none());
    store.insert_user(&user("bob")).await.expect("insert bob");
    let names: Vec<String> = store
        .users()
        .await
        .expect("users")
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["Alice", "bob"]);
}

async fn sessions_round_trip(store: &dyn Store) {
    let u = user("carol");
    store.insert_user(&u).await.expect("insert user");
    let s = session(&u, 1_000);
    store.insert_session(&s).await.expect("insert session");
    assert_eq!(store.session(s.id).await.expect("get"), Some(s.clone()));
    let no_ip = SessionRecord {
        id: Uuid::new_v4(),
        ip: None,
        user_agent: None,
        ..s.clone()
    };
    store.insert_session(&no_ip).await.expect("insert session");
    assert_eq!(store.session(no_ip.id).await.expect("get"), Some(no_ip));
    assert_eq!(store.session(Uuid::new_v4()).await.expect("get"), None);
}

async fn rotation_is_a_compare_and_swap(store: &dyn Store) {
    let u = user("dave");
    store.insert_user(&u).await.expect("insert user");
    let s = session(&u, 1_000);
    store.insert_session(&s).await.expect("insert session");
    assert!(
        store
            .rotate_session(s.id, 0, &[2; 32], at(2_000))
            .await
            .expect("rotate")
    );
    assert!(
        !store
            .rotate_session(s.id, 0, &[3; 32], at(2_001))
            .await
            .expect("stale rotate")
    );
    let now = store.session(s.id).await.expect("get").expect("exists");
    assert_eq!(
        (now.generation, now.token_hash.as_slice()),
        (1, [2u8; 32].as_slice())
    );
    assert_eq!(
        (now.rotated_at, now.last_used_at, now.created_at),
        (at(2_000), at(2_000), at(1_000))
    );
    assert!(
        store
            .revoke_session(s.id, at(3_000), RevokeReason::Logout)
            .await
            .expect("revoke")
    );
    assert!(
        !store
            .rotate_session(s.id, 1, &[4; 32], at(3_001))
            .await
            .expect("rotate revoked")
    );
}

fn rotation(
    s: &SessionRecord,
    generation: u64,
    current: &'static [u8],
) -> CurrentRotation<'static> {
    CurrentRotation {
        id: s.id,
        generation,
        current_hash: current,
        new_hash: &[5; 32],
        now: at(2_000),
        live: LiveBounds {
            used_after: at(999),
            created_after: at(999),
        },
        client_id: None,
        dpop_jkt: None,
    }
}

async fn rotating_the_current_token_checks_every_rotate_condition(store: &dyn Store) {
    let u = user("mallory");
    store.insert_user(&u).await.expect("insert user");
    let s = session(&u, 1_000);
    store.insert_session(&s).await.expect("insert session");
    let good = rotation(&s, 0, &[1; 32]);
    for refused in [
        rotation(&s, 0, &[9; 32]),
        rotation(&s, 1, &[1; 32]),
        CurrentRotation {
            id: Uuid::new_v4(),
            ..good
        },
        CurrentRotation {
            live: LiveBounds {
                used_after: at(1_000),
                ..good.live
            },
            ..good
        },
        CurrentRotation {
            live: LiveBounds {
                created_after: at(1_000),
                ..good.live
            },
            ..good
        },
    ] {
        assert_eq!(
            store.rotate_current(&refused).await.expect("rotate"),
            None,
            "{refused:?}"
        );
    }
    assert_eq!(
        store.session(s.id).await.expect("get"),
        Some(s.clone()),
        "unchanged"
    );

    let rotated = store.rotate_current(&good).await.expect("rotate");
    let expected = SessionRecord {
        generation: 1,
        token_hash: vec![5; 32],
        rotated_at: at(2_000),
        last_used_at: at(2_000),
        ..s.clone()
    };
    assert_eq!(
        rotated.as_ref(),
        Some(&expected),
        "the row as rotated, with its owner's name"
    );
    assert_eq!(store.session(s.id).await.expect("get"), Some(expected));
    assert_eq!(store.rotate_current(&good).await.expect("again"), None);

    let t = session(&u, 1_000);
    store.insert_session(&t).await.expect("insert session");
    store
        .revoke_session(t.id, at(1_500), RevokeReason::Logout)
        .await
        .expect("revoke");
    assert_eq!(
        store
            .rotate_current(&rotation(&t, 0, &[1; 32]))
            .await
            .expect("rotate revoked"),
        None
    );
}

async fn concurrent_fast_rotations_have_exactly_one_winner(store: Arc<dyn Store>) {
    let u = user("niaj");
    store.insert_user(&u).await.expect("insert user");
    let s = session(&u, 1_000);
    store.insert_session(&s).await.expect("insert session");
    let racers: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            let r = rotation(&s, 0, &[1; 32]);
            tokio::spawn(async move { store.rotate_current(&r).await })
        })
        .collect();
    let mut winners = 0;
    for r in racers {
        if r.await.expect("join").expect("rotate").is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "exactly one rotation wins");
    let after = store.session(s.id).await.expect("get").expect("exists");
    assert_eq!(after.generation, 1);
}

async fn concurrent_rotations_have_exactly_one_winner(store: Arc<dyn Store>) {
    let u = user("erin");
    store.insert_user(&u).await.expect("insert user");
    let s = session(&u, 1_000);
    store.insert_session(&s).await.expect("insert session");
    let racers: Vec<_> = (0..50u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.rotate_session(s.id, 0, &[i; 32], at(2_000)).await })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, r) in racers.into_iter().enumerate() {
        if r.await.expect("join").expect("rotate") {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one rotation wins");
    let after = store.session(s.id).await.expect("get").expect("exists");
    assert_eq!(after.generation, 1);
    assert_eq!(
        after.token_hash,
        vec![winners[0] as u8; 32],
        "the winner's hash is stored"
    );
}

async fn revocation_is_per_session_or_per_user(store: &dyn Store) {
    let (u, other) = (user("frank"), user("grace"));
    store.insert_user(&u).await.expect("insert");
    store.insert_user(&other).await.expect("insert");
    let (a, b, c) = (
        session(&u, 1_000),
        session(&u, 2_000),
        session(&other, 1_000),
    );
    for s in [&a, &b, &c] {
        store.insert_session(s).await.expect("insert session");
    }
    let listed: Vec<Uuid> = store
        .unrevoked_sessions(Some(u.id))
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, [b.id, a.id], "most recently used first");
    assert!(
        store
            .revoke_session(a.id, at(5_000), RevokeReason::User)
            .await
            .expect("revoke")
    );
    assert!(
        !store
            .revoke_session(a.id, at(6_000), RevokeReason::User)
            .await
            .expect("revoke again")
    );
    let revoked = store.session(a.id).await.expect("get").expect("exists");
    assert_eq!(
        (revoked.revoked_at, revoked.revoked_reason),
        (Some(at(5_000)), Some(RevokeReason::User))
    );
    assert_eq!(
        store
            .revoke_user_sessions(u.id, at(7_000), RevokeReason::LogoutAll)
            .await
            .expect("revoke all"),
        1
    );
    assert!(
        store
            .unrevoked_sessions(Some(u.id))
            .await
            .expect("list")
            .is_empty()
    );
    let everyone = store.unrevoked_sessions(None).await.expect("list all");
    assert!(
        everyone.iter().any(|s| s.id == c.id),
        "other users keep their sessions"
    );
}

async fn ended_sessions_are_deleted(store: &dyn Store) {
    let u = user("heidi");
    store.insert_user(&u).await.expect("insert");
    let (revoked, idle, old, live) = (
        session(&u, 50_000),
        session(&u, 10_000),
        session(&u, 1_000),
        session(&u, 50_000),
    );
    for s in [&revoked, &idle, &old, &live] {
        store.insert_session(s).await.expect("insert session");
    }
    store
        .revoke_session(revoked.id, at(60_000), RevokeReason::Logout)
        .await
        .expect("revoke");
    // `old` was used recently (so it is not idle) but created long ago.
    store
        .rotate_session(old.id, 0, &[9; 32], at(55_000))
        .await
        .expect("rotate");
    let before = store.unrevoked_sessions(None).await.expect("list").len();
    let deleted = store
        .delete_sessions(at(70_000), at(20_000), at(5_000))
        .await
        .expect("delete");
    assert!(deleted >= 3, "revoked, idle and too-old sessions go");
    for gone in [&revoked, &idle, &old] {
        assert_eq!(store.session(gone.id).await.expect("get"), None);
    }
    assert!(store.session(live.id).await.expect("get").is_some());
    assert!(store.unrevoked_sessions(None).await.expect("list").len() < before);
}

async fn keys_and_secrets_round_trip(store: &dyn Store) {
    assert!(store.keys().await.expect("keys").is_empty());
    let key = StoredKey::generate(SigningAlg::EdDSA, None, at(1), at(2)).expect("generate");
    store.insert_key(&key).await.expect("insert key");
    assert_eq!(store.keys().await.expect("keys"), vec![key]);

    assert_eq!(store.secret("s").await.expect("secret"), None);
    let first = SealedBlob {
        material: vec![1, 2, 3],
        sealed: true,
    };
    store
        .insert_secret_if_absent("s", &first)
        .await
        .expect("insert");
    store
        .insert_secret_if_absent(
            "s",
            &SealedBlob {
                material: vec![9],
                sealed: false,
            },
        )
        .await
        .expect("insert again");
    assert_eq!(
        store.secret("s").await.expect("secret"),
        Some(first),
        "the first writer wins"
    );
}

async fn revocations_are_listed_since_a_time(store: &dyn Store) {
    // Far later than anything the other checks revoke, so their sessions stay out of the way.
    const T: i64 = 10_000_000;
    let (u, other) = (user("ivan"), user("judy"));
    store.insert_user(&u).await.expect("insert");
    store.insert_user(&other).await.expect("insert");
    let (early, late, live, everyone) = (
        session(&u, T),
        session(&u, T),
        session(&u, T),
        session(&other, T),
    );
    for s in [&early, &late, &live, &everyone] {
        store.insert_session(s).await.expect("insert session");
    }
    let listed = |since| async move {
        store
            .revoked_sessions_page(at(since), None, 100)
            .await
            .expect("revoked since")
    };
    assert!(listed(T).await.is_empty(), "nothing is revoked yet");
    store
        .revoke_session(late.id, at(T + 2_000), RevokeReason::Logout)
        .await
        .expect("revoke");
    store
        .revoke_session(early.id, at(T + 1_000), RevokeReason::Reused)
        .await
        .expect("revoke");
    store
        .revoke_user_sessions(other.id, at(T + 3_000), RevokeReason::LogoutAll)
        .await
        .expect("revoke all");
    // Revoking again changes nothing: the first revocation time stands.
    store
        .revoke_session(early.id, at(T + 5_000), RevokeReason::User)
        .await
        .expect("revoke again");
    assert_eq!(
        listed(T).await,
        vec![
            (early.id, at(T + 1_000)),
            (late.id, at(T + 2_000)),
            (everyone.id, at(T + 3_000)),
        ],
        "oldest first, unrevoked sessions left out"
    );
    assert_eq!(
        listed(T + 2_000).await,
        vec![(late.id, at(T + 2_000)), (everyone.id, at(T + 3_000))],
        "`since` is inclusive"
    );
    assert!(listed(T + 3_001).await.is_empty());
}

/// Far later than anything the checks above revoke, so their feed queries do not see these.
const ACCOUNTS_T: i64 = 40_000_000;

async fn disabling_revokes_every_session_and_blocks_new_ones(store: &dyn Store) {
    let u = user("kira");
    store.insert_user(&u).await.expect("insert");
    let (a, b) = (session(&u, ACCOUNTS_T), session(&u, ACCOUNTS_T));
    assert!(
        store
            .open_session(&a, &u.password_hash)
            .await
            .expect("open")
    );
    assert!(
        !store
            .open_session(&session(&u, ACCOUNTS_T), "$argon2id$another")
            .await
            .expect("open"),
        "a login checked against an old password opens nothing"
    );
    store.insert_session(&b).await.expect("insert session");
    let disabled_at = at(ACCOUNTS_T + 1_000);
    assert_eq!(
        store
            .set_disabled(u.id, Some(disabled_at), disabled_at)
            .await
            .expect("disable"),
        Some(2)
    );
    let stored = store.user_by_id(u.id).await.expect("get").expect("exists");
    assert_eq!(stored.disabled_at, Some(disabled_at));
    for s in [&a, &b] {
        let s = store.session(s.id).await.expect("get").expect("exists");
        assert_eq!(s.revoked_reason, Some(RevokeReason::Admin));
    }
    assert!(
        !store
            .open_session(&session(&u, ACCOUNTS_T), &u.password_hash)
            .await
            .expect("open"),
        "no session for a disabled user"
    );
    // Disabling again keeps the first time; enabling clears it; unknown users are None.
    store
        .set_disabled(u.id, Some(at(ACCOUNTS_T + 5_000)), at(ACCOUNTS_T + 5_000))
        .await
        .expect("disable again");
    let stored = store.user_by_id(u.id).await.expect("get").expect("exists");
    assert_eq!(stored.disabled_at, Some(disabled_at));
    assert_eq!(
        store
            .set_disabled(u.id, None, at(ACCOUNTS_T))
            .await
            .expect("enable"),
        Some(0)
    );
    assert_eq!(
        store
            .user_by_id(u.id)
            .await
            .expect("get")
            .expect("exists")
            .disabled_at,
        None
    );
    assert!(
        store
            .open_session(&session(&u, ACCOUNTS_T), &u.password_hash)
            .await
            .expect("open")
    );
    assert_eq!(
        store
            .set_disabled(Uuid::new_v4(), Some(disabled_at), disabled_at)
            .await
            .expect("unknown"),
        None
    );
    assert_eq!(store.user_by_id(Uuid::new_v4()).await.expect("get"), None);
}

async fn a_password_change_keeps_one_session_unless_it_was_revoked(store: &dyn Store) {
    let (u, other) = (user("lars"), user("mila"));
    store.insert_user(&u).await.expect("insert");
    store.insert_user(&other).await.expect("insert");
    let (keep, gone, theirs) = (
        session(&u, ACCOUNTS_T),
        session(&u, ACCOUNTS_T),
        session(&other, ACCOUNTS_T),
    );
    for s in [&keep, &gone, &theirs] {
        store.insert_session(s).await.expect("insert session");
    }
    let now = at(ACCOUNTS_T + 1_000);
    assert_eq!(
        store
            .change_password(
                u.id,
                keep.id,
                "$argon2id$new",
                now,
                RevokeReason::PasswordChanged
            )
            .await
            .expect("change"),
        Some(1)
    );
    let stored = store.user_by_id(u.id).await.expect("get").expect("exists");
    assert_eq!(stored.password_hash, "$argon2id$new");
    let gone = store.session(gone.id).await.expect("get").expect("exists");
    assert_eq!(
        (gone.revoked_at, gone.revoked_reason),
        (Some(now), Some(RevokeReason::PasswordChanged))
    );
    for live in [&keep, &theirs] {
        assert_eq!(
            store
                .session(live.id)
                .await
                .expect("get")
                .expect("exists")
                .revoked_at,
            None
        );
    }
    // From a revoked session, or another user's: nothing changes.
    assert_eq!(
        store
            .change_password(
                u.id,
                gone.id,
                "$argon2id$newer",
                now,
                RevokeReason::PasswordChanged
            )
            .await
            .expect("change"),
        None
    );
    assert_eq!(
        store
            .change_password(
                u.id,
                theirs.id,
                "$argon2id$newer",
                now,
                RevokeReason::PasswordChanged
            )
            .await
            .expect("change"),
        None
    );
    let stored = store.user_by_id(u.id).await.expect("get").expect("exists");
    assert_eq!(stored.password_hash, "$argon2id$new");
}

async fn reset_tokens_are_single_use_replaced_and_expire(store: &dyn Store) {
    let u = user("nina");
    store.insert_user(&u).await.expect("insert");
    let s = session(&u, ACCOUNTS_T);
    store.insert_session(&s).await.expect("insert session");
    let (old, new) = ([1u8; 32], [2u8; 32]);
    let expires = at(ACCOUNTS_T + 60_000);
    assert!(
        store
            .replace_reset_token(u.id, &old, expires, None)
            .await
            .expect("replace")
    );
    assert!(
        store
            .replace_reset_token(u.id, &new, expires, None)
            .await
            .expect("replace")
    );
    assert!(
        !store
            .replace_reset_token(Uuid::new_v4(), &[3; 32], expires, None)
            .await
            .expect("replace"),
        "no token for an unknown user"
    );
    let now = at(ACCOUNTS_T + 1_000);
    assert_eq!(
        store
            .use_reset_token(&old, now, "$argon2id$reset")
            .await
            .expect("use"),
        None,
        "a newer token voids the older"
    );
    assert_eq!(
        store
            .use_reset_token(&[3; 32], now, "$argon2id$reset")
            .await
            .expect("use"),
        None
    );
    assert_eq!(
        store
            .use_reset_token(&new, now, "$argon2id$reset")
            .await
            .expect("use"),
        Some((u.id, 1))
    );
    let stored = store.user_by_id(u.id).await.expect("get").expect("exists");
    assert_eq!(stored.password_hash, "$argon2id$reset");
    let s = store.session(s.id).await.expect("get").expect("exists");
    assert_eq!(s.revoked_reason, Some(RevokeReason::PasswordChanged));
    assert_eq!(
        store
            .use_reset_token(&new, now, "$argon2id$again")
            .await
            .expect("use"),
        None,
        "single use"
    );
    // Expired: refused at and after its expiry.
    store
        .replace_reset_token(u.id, &old, expires, None)
        .await
        .expect("replace");
    assert_eq!(
        store
            .use_reset_token(&old, expires, "$argon2id$late")
            .await
            .expect("use"),
        None
    );
}

async fn a_deleted_users_sessions_stay_in_the_feed_by_id_alone(store: &dyn Store) {
    const T: i64 = ACCOUNTS_T + 100_000;
    let u = user("oscar");
    store.insert_user(&u).await.expect("insert");
    let (live, ended) = (session(&u, T), session(&u, T));
    for s in [&live, &ended] {
        store.insert_session(s).await.expect("insert session");
    }
    store
        .replace_reset_token(u.id, &[7; 32], at(T + 60_000), None)
        .await
        .expect("reset");
    store
        .revoke_session(ended.id, at(T + 1_000), RevokeReason::Logout)
        .await
        .expect("revoke");
    assert!(
        store
            .delete_user(u.id, at(T + 2_000))
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete_user(u.id, at(T + 2_000))
            .await
            .expect("delete again")
    );
    assert_eq!(store.user_by_id(u.id).await.expect("get"), None);
    assert_eq!(store.user_by_name("oscar").await.expect("get"), None);
    assert_eq!(store.session(live.id).await.expect("get"), None);
    assert_eq!(
        store
            .use_reset_token(&[7; 32], at(T), "$argon2id$x")
            .await
            .expect("use"),
        None,
        "the reset token went with the user"
    );
    assert_eq!(
        store
            .revoked_sessions_page(at(T), None, 100)
            .await
            .expect("feed"),
        vec![(ended.id, at(T + 1_000)), (live.id, at(T + 2_000))]
    );
    // The name is free again.
    store
        .insert_user(&user("Oscar"))
        .await
        .expect("reuse the name");
    // Purged with the other ended sessions.
    store
        .delete_sessions(at(T + 3_000), at(0), at(0))
        .await
        .expect("purge");
    assert!(
        store
            .revoked_sessions_page(at(T), None, 100)
            .await
            .expect("feed")
            .is_empty()
    );
}

async fn users_are_paged_by_id_with_live_session_counts(store: &dyn Store) {
    let live = LiveBounds {
        used_after: at(ACCOUNTS_T + 500_000 - 1),
        created_after: at(0),
    };
    let mut all: Vec<UserSummary> = Vec::new();
    let mut after = None;
    loop {
        let page = store.users_page(after, 3, live).await.expect("page");
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some(last.user.id);
        all.extend(page);
    }
    let ids: Vec<Uuid> = all.iter().map(|s| s.user.id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "in id order");
    assert_eq!(
        all.len(),
        store.users().await.expect("users").len(),
        "every user, once"
    );
    let u = user("pia");
    store.insert_user(&u).await.expect("insert");
    let (a, b, old) = (
        session(&u, ACCOUNTS_T + 500_000),
        session(&u, ACCOUNTS_T + 500_000),
        session(&u, 1_000),
    );
    for s in [&a, &b, &old] {
        store.insert_session(s).await.expect("insert session");
    }
    store
        .revoke_session(b.id, at(ACCOUNTS_T + 500_000), RevokeReason::User)
        .await
        .expect("revoke");
    let before = Uuid::from_u128(u.id.as_u128() - 1);
    let page = store.users_page(Some(before), 1, live).await.expect("page");
    assert_eq!(page[0].user, u);
    assert_eq!(
        page[0].live_sessions, 1,
        "revoked and expired sessions do not count"
    );
}
async fn revocations_page_exactly_through_one_millisecond(store: &dyn Store) {
    // Later than every other check's revocations.
    const T: i64 = 20_000_000;
    let (u, other) = (user("kate"), user("liam"));
    store.insert_user(&u).await.expect("insert");
    store.insert_user(&other).await.expect("insert");
    let mut ids = Vec::new();
    for _ in 0..23 {
        let s = session(&u, T);
        store.insert_session(&s).await.expect("insert session");
        ids.push(s.id);
    }
    let before = session(&other, T);
    store.insert_session(&before).await.expect("insert session");
    store
        .revoke_session(before.id, at(T - 1), RevokeReason::Logout)
        .await
        .expect("revoke");
    // A logout everywhere: 23 sessions, one millisecond.
    let n = store
        .revoke_user_sessions(u.id, at(T), RevokeReason::LogoutAll)
        .await
        .expect("revoke all");
    assert_eq!(n, 23);
    ids.sort();
    let expected: Vec<_> = ids.iter().map(|&id| (id, at(T))).collect();

    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .revoked_sessions_page(at(T), after, 5)
            .await
            .expect("page");
        assert!(page.len() <= 5, "at most `limit`");
        let Some(&(id, revoked_at)) = page.last() else {
            break;
        };
        after = Some((revoked_at, id));
        pages.push(page);
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![5, 5, 5, 5, 3]
    );
    assert_eq!(
        pages.concat(),
        expected,
        "every session once, in id order, the one before `since` left out"
    );
    // A position before `since` does not reach behind it; one at the end lists nothing.
    let from_before = store
        .revoked_sessions_page(at(T), Some((at(T - 1), before.id)), 100)
        .await
        .expect("page");
    assert_eq!(from_before, expected);
    let whole = store
        .revoked_sessions_page(at(T - 1), None, 100)
        .await
        .expect("page");
    assert_eq!(whole.first(), Some(&(before.id, at(T - 1))));
    assert_eq!(whole.len(), 24);
    let last = *expected.last().expect("23 of them");
    assert!(
        store
            .revoked_sessions_page(at(T), Some((last.1, last.0)), 100)
            .await
            .expect("page")
            .is_empty()
    );
}

async fn the_builtin_client_exists_and_clients_round_trip(store: &dyn Store) {
    let builtin = store
        .client(BUILTIN_CLIENT_ID)
        .await
        .expect("get")
        .expect("the built-in client exists in a fresh database");
    assert_eq!(
        (
            builtin.name.as_str(),
            builtin.kind,
            &builtin.secret_hash,
            builtin.removed_at
        ),
        ("tessera", ClientKind::Public, &None, None)
    );
    let public = client("web", ClientKind::Public);
    let confidential = ClientRecord {
        created_at: at(2),
        ..client("api-gateway", ClientKind::Confidential)
    };
    store.insert_client(&public).await.expect("insert public");
    store
        .insert_client(&confidential)
        .await
        .expect("insert confidential");
    assert_eq!(
        store.client(&public.id).await.expect("get"),
        Some(public.clone())
    );
    assert_eq!(
        store.client(&confidential.id).await.expect("get"),
        Some(confidential.clone())
    );
    assert!(matches!(
        store
            .insert_client(&client("web", ClientKind::Confidential))
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.client("no-such-client").await.expect("get"), None);
    let ids: Vec<String> = store
        .clients()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(
        ids,
        [builtin.id, public.id, confidential.id],
        "oldest first"
    );
}

async fn removing_a_client_revokes_its_sessions_once(store: &dyn Store) {
    let u = user("olivia");
    store.insert_user(&u).await.expect("insert user");
    let app = client("olivias-app", ClientKind::Public);
    store.insert_client(&app).await.expect("insert client");
    let mine = SessionRecord {
        client_id: app.id.clone(),
        ..session(&u, 1_000)
    };
    let also_mine = SessionRecord {
        client_id: app.id.clone(),
        ..session(&u, 1_000)
    };
    let builtin = session(&u, 1_000);
    for s in [&mine, &also_mine, &builtin] {
        store.insert_session(s).await.expect("insert session");
    }
    store
        .revoke_session(also_mine.id, at(1_500), RevokeReason::Logout)
        .await
        .expect("revoke");
    assert_eq!(
        store
            .session(mine.id)
            .await
            .expect("get")
            .map(|s| s.client_id),
        Some(app.id.clone())
    );
    assert_eq!(
        store
            .remove_client(&app.id, at(2_000))
            .await
            .expect("remove"),
        Some(1),
        "only the live session is counted"
    );
    let removed = store.client(&app.id).await.expect("get").expect("kept");
    assert_eq!(removed.removed_at, Some(at(2_000)));
    assert!(
        !store
            .clients()
            .await
            .expect("list")
            .iter()
            .any(|c| c.id == app.id)
    );
    let ended = store.session(mine.id).await.expect("get").expect("exists");
    assert_eq!(
        (ended.revoked_at, ended.revoked_reason),
        (Some(at(2_000)), Some(RevokeReason::ClientRemoved))
    );
    let other = store
        .session(also_mine.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(other.revoked_reason, Some(RevokeReason::Logout), "kept");
    assert_eq!(
        store
            .session(builtin.id)
            .await
            .expect("get")
            .and_then(|s| s.revoked_at),
        None,
        "another client's session is untouched"
    );
    assert_eq!(
        store
            .remove_client(&app.id, at(3_000))
            .await
            .expect("again"),
        None
    );
    assert_eq!(
        store
            .remove_client("no-such-client", at(3_000))
            .await
            .expect("unknown"),
        None
    );
    // The name is free again once its client is removed.
    store
        .insert_client(&client("olivias-app", ClientKind::Public))
        .await
        .expect("reuse the name");
}

async fn the_fast_rotation_checks_the_client(store: &dyn Store) {
    let u = user("peggy");
    store.insert_user(&u).await.expect("insert user");
    let s = session(&u, 1_000);
    store.insert_session(&s).await.expect("insert session");
    let other = rotation(&s, 0, &[1; 32]).for_client(Some("another-client"));
    assert_eq!(store.rotate_current(&other).await.expect("rotate"), None);
    assert_eq!(
        store.session(s.id).await.expect("get"),
        Some(s.clone()),
        "unchanged"
    );
    let own = rotation(&s, 0, &[1; 32]).for_client(Some(BUILTIN_CLIENT_ID));
    let rotated = store.rotate_current(&own).await.expect("rotate");
    assert_eq!(
        rotated.map(|r| (r.generation, r.client_id)),
        Some((1, BUILTIN_CLIENT_ID.to_owned()))
    );
}

async fn a_bound_session_rotates_fast_only_with_its_key(store: &dyn Store) {
    let u = user("quentin");
    store.insert_user(&u).await.expect("insert user");
    let s = SessionRecord {
        dpop_jkt: Some("key-a".into()),
        ..session(&u, 1_000)
    };
    store.insert_session(&s).await.expect("insert session");
    assert_eq!(store.session(s.id).await.expect("get"), Some(s.clone()));
    for other in [None, Some("key-b")] {
        let r = rotation(&s, 0, &[1; 32]).for_dpop_key(other);
        assert_eq!(store.rotate_current(&r).await.expect("rotate"), None);
    }
    assert_eq!(store.session(s.id).await.expect("get"), Some(s.clone()));
    let own = rotation(&s, 0, &[1; 32]).for_dpop_key(Some("key-a"));
    let rotated = store.rotate_current(&own).await.expect("rotate");
    assert_eq!(
        rotated.map(|r| (r.generation, r.dpop_jkt)),
        Some((1, Some("key-a".to_owned())))
    );
    // An unbound session rotates whatever key the request proves.
    let t = session(&u, 1_000);
    store.insert_session(&t).await.expect("insert session");
    let any = rotation(&t, 0, &[1; 32]).for_dpop_key(Some("key-b"));
    assert!(store.rotate_current(&any).await.expect("rotate").is_some());
}

async fn dpop_proof_ids_are_recorded_once_until_they_expire(store: &dyn Store) {
    let id = u128::from_be_bytes(*Uuid::new_v4().as_bytes());
    // Whether the store records proof id `id` expiring at `expires`, seen at `now`.
    let recorded = |id: u128, expires: i64, now: i64| async move {
        store
            .insert_dpop_jti(id, at(expires), at(now))
            .await
            .expect("insert dpop jti")
    };
    assert!(recorded(id, 1_060, 1_000).await);
    assert!(!recorded(id, 1_070, 1_010).await, "replay");
    assert!(recorded(id + 1, 1_060, 1_010).await, "another");
    assert!(
        store
            .delete_expired_dpop_jtis(at(1_061))
            .await
            .expect("purge")
            >= 2
    );
    assert!(recorded(id, 1_130, 1_070).await, "after expiry");
    // An expired record not yet purged does not block its id either.
    assert!(recorded(id, 1_200, 1_131).await, "expired, kept");
    assert!(!recorded(id, 1_300, 1_140).await, "replay");
}

/// The store's [`CountFailure`] statement against [`crate::throttle::Limit::count`], over a
/// sequence of attempts, pauses, take-backs and clears: both count, refuse and hold alike.
async fn failure_counts_follow_the_throttle_rule(store: &dyn Store) {
    let policy = ThrottlePolicy::default();
    for counter in [
        Counter::new(Scope::Name, "contract-name"),
        Counter::new(Scope::Device, "contract-device"),
        Counter::address(IpAddr::from([198, 51, 100, 1])),
    ] {
        let limit = policy.limit(counter.scope);
        let mut model: Option<FailureState> = None;
        let mut now = at(5_000_000);
        // A fixed pseudo-random walk: bursts, waits inside and beyond holds and windows.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for step in 0..400 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            match seed % 10 {
                0..=5 => {}
                6 | 7 => now = now.plus(std::time::Duration::from_millis(seed % 70_000)),
                8 => now = now.plus(std::time::Duration::from_millis(seed % 1_200_000)),
                _ => {
                    if let Some(state) = model {
                        model = Some(limit.take_back(state, now));
                    }
                    store
                        .clear_failures(&[], Some(&counter), now)
                        .await
                        .expect("take back");
                    continue;
                }
            }
            let expected = limit.count(model, now);
            let got = store
                .count_failure(&CountFailure::new(&counter, &limit, now))
                .await
                .expect("count");
            match (expected, got) {
                (Ok(state), Counted::Yes) => model = Some(state),
                (Err(wait), Counted::Held(Some(state))) => {
                    assert_eq!(Some(state), model, "{counter:?} step {step}");
                    assert_eq!(limit.held(&state, now), Some(wait));
                }
                (e, g) => panic!("{counter:?} step {step}: the rule says {e:?}, the store {g:?}"),
            }
        }
    }
    let (names, addresses) = store.failure_counters().await.expect("counters");
    assert_eq!((names, addresses), (1, 1));
    // A right password forgets the name and the device.
    store
        .clear_failures(
            &[
                Counter::new(Scope::Name, "contract-name"),
                Counter::new(Scope::Device, "contract-device"),
            ],
            None,
            at(0),
        )
        .await
        .expect("clear");
    let name = Counter::new(Scope::Name, "contract-name");
    let limit = policy.limit(Scope::Name);
    let far = at(i64::MAX / 4);
    for _ in 0..limit.free + 1 {
        assert_eq!(
            store
                .count_failure(&CountFailure::new(&name, &limit, far))
                .await
                .expect("count"),
            Counted::Yes,
            "a fresh count after the clear"
        );
    }
    // Counters quiet since before a time go; later ones stay.
    assert_eq!(store.delete_quiet_failures(far).await.expect("delete"), 1);
    assert_eq!(store.failure_counters().await.expect("counters"), (1, 0));
    assert_eq!(
        store
            .delete_quiet_failures(far.plus(std::time::Duration::from_millis(1)))
            .await
            .expect("delete"),
        1
    );
    assert_eq!(store.failure_counters().await.expect("counters"), (0, 0));
}

/// Forty attempts on one counter at once are counted like forty in a row: five free, the one
/// that starts the hold, and no more.
async fn concurrent_failures_are_counted_one_at_a_time(store: Arc<dyn Store>) {
    let limit = ThrottlePolicy::default().limit(Scope::Name);
    let racers: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let counter = Counter::new(Scope::Name, "contract-racer");
                store
                    .count_failure(&CountFailure::new(&counter, &limit, at(1_000)))
                    .await
            })
        })
        .collect();
    let mut counted = 0;
    for r in racers {
        if r.await.expect("join").expect("count") == Counted::Yes {
            counted += 1;
        }
    }
    assert_eq!(counted, limit.free + 1);
}

/// The events in the outbox about `user_id`, oldest first, as `(type, data)`.
async fn events_of(store: &dyn Store, user_id: Uuid) -> Vec<(EventType, serde_json::Value)> {
    let mut events: Vec<_> = store
        .events(None, 100_000)
        .await
        .expect("events")
        .into_iter()
        .map(|e| {
            let data: serde_json::Value = serde_json::from_str(&e.event.data).expect("json");
            (e.event.created_at, e.event.id, e.event.kind, data)
        })
        .filter(|(.., data)| data["user_id"] == user_id.to_string())
        .collect();
    events.sort_by_key(|(at, id, ..)| (*at, *id));
    events.into_iter().map(|(_, _, k, d)| (k, d)).collect()
}

const EVENTS_T: i64 = 1_900_000_000_000;

async fn changes_write_their_events_with_them(store: &dyn Store) {
    use EventType::*;
    let u = user("olga");
    store.insert_user(&u).await.expect("insert");
    // Events of one instant have no order among them: compared as sorted lists.
    let kinds = |events: &[(EventType, serde_json::Value)]| {
        let mut kinds: Vec<_> = events.iter().map(|(k, _)| k.as_str()).collect();
        kinds.sort_unstable();
        kinds
    };
    let sorted = |kinds: &[EventType]| {
        let mut kinds: Vec<_> = kinds.iter().map(|k| k.as_str()).collect();
        kinds.sort_unstable();
        kinds
    };
    let find = |events: &[(EventType, serde_json::Value)], kind, session: Uuid| {
        events
            .iter()
            .find(|(k, d)| *k == kind && d["session_id"] == session.to_string())
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| panic!("no {kind} for {session}"))
    };
    let (a, b, c) = (
        session(&u, EVENTS_T),
        session(&u, EVENTS_T),
        session(&u, EVENTS_T),
    );
    for s in [&a, &b, &c] {
        assert!(store.open_session(s, &u.password_hash).await.expect("open"));
    }
    assert!(
        !store
            .open_session(&session(&u, EVENTS_T), "$argon2id$another")
            .await
            .expect("open"),
    );
    let events = events_of(store, u.id).await;
    assert_eq!(
        kinds(&events),
        sorted(&[SessionCreated; 3]),
        "a refused login writes no event"
    );
    let created = find(&events, SessionCreated, a.id);
    assert_eq!(created["user_agent"], "Mozilla/5.0 (contract)");
    assert_eq!(created["ip"], "203.0.113.7");
    assert_eq!(created["client_id"], BUILTIN_CLIENT_ID);
    assert_eq!(created["username"], "olga");

    let now = at(EVENTS_T + 1_000);
    assert!(
        store
            .revoke_session(a.id, now, RevokeReason::Reused)
            .await
            .expect("revoke")
    );
    assert!(
        !store
            .revoke_session(a.id, now, RevokeReason::Logout)
            .await
            .expect("again")
    );
    assert_eq!(
        store
            .change_password(
                u.id,
                b.id,
                "$argon2id$new",
                now,
                RevokeReason::PasswordChanged
            )
            .await
            .expect("change"),
        Some(1)
    );
    let events = events_of(store, u.id).await;
    assert_eq!(
        kinds(&events[3..]),
        sorted(&[
            SessionReuseDetected,
            SessionRevoked,
            UserPasswordChanged,
            SessionRevoked
        ]),
        "revoking a revoked session writes nothing"
    );
    assert_eq!(find(&events, SessionRevoked, a.id)["reason"], "reused");
    find(&events, SessionReuseDetected, a.id);
    assert_eq!(
        find(&events, SessionRevoked, c.id)["reason"],
        "password_changed"
    );

    let d = session(&u, EVENTS_T + 2_000);
    assert!(store.open_session(&d, "$argon2id$new").await.expect("open"));
    let now = at(EVENTS_T + 3_000);
    assert_eq!(
        store
            .set_disabled(u.id, Some(now), now)
            .await
            .expect("disable"),
        Some(2)
    );
    assert_eq!(
        store.set_disabled(u.id, None, now).await.expect("enable"),
        Some(0)
    );
    let events = events_of(store, u.id).await;
    assert_eq!(
        kinds(&events[7..]),
        sorted(&[SessionCreated, UserDisabled, SessionRevoked, SessionRevoked]),
        "enabling writes nothing"
    );
    assert_eq!(find(&events, SessionRevoked, d.id)["reason"], "admin");

    let now = at(EVENTS_T + 4_000);
    let e = session(&u, EVENTS_T + 4_000);
    assert!(store.open_session(&e, "$argon2id$new").await.expect("open"));
    let sealer = crate::events::EventSealer::new(&[1; 32]).expect("sealer");
    let requested =
        NewEvent::password_reset_requested(u.id, "olga", "tok", now, &sealer, now).expect("event");
    let expires = at(EVENTS_T + 60_000);
    assert!(
        store
            .replace_reset_token(u.id, &[9; 32], expires, Some(&requested))
            .await
            .expect("reset")
    );
    let nobody = Uuid::new_v4();
    let unknown =
        NewEvent::password_reset_requested(nobody, "x", "tok", now, &sealer, now).expect("event");
    assert!(
        !store
            .replace_reset_token(nobody, &[8; 32], expires, Some(&unknown))
            .await
            .expect("reset")
    );
    assert!(
        events_of(store, nobody).await.is_empty(),
        "no event for an unknown user"
    );
    let now = at(EVENTS_T + 5_000);
    assert_eq!(
        store
            .use_reset_token(&[9; 32], now, "$argon2id$newer")
            .await
            .expect("use"),
        Some((u.id, 1))
    );
    let events = events_of(store, u.id).await;
    assert_eq!(
        kinds(&events[11..]),
        sorted(&[
            SessionCreated,
            UserPasswordResetRequested,
            UserPasswordChanged,
            SessionRevoked
        ])
    );
    assert!(
        events
            .iter()
            .any(|(k, d)| *k == UserPasswordChanged && d["via"] == "reset")
    );

    let f = session(&u, EVENTS_T + 6_000);
    assert!(
        store
            .open_session(&f, "$argon2id$newer")
            .await
            .expect("open")
    );
    let now = at(EVENTS_T + 7_000);
    assert!(store.delete_user(u.id, now).await.expect("delete"));
    let events = events_of(store, u.id).await;
    assert_eq!(
        kinds(&events[15..]),
        sorted(&[SessionCreated, SessionRevoked, UserDeleted])
    );
    assert_eq!(find(&events, SessionRevoked, f.id)["reason"], "admin");
}

async fn the_outbox_is_claimed_leased_finished_and_pruned(store: &dyn Store) {
    let claim = |now: Timestamp, lease: Timestamp, n: u32| async move {
        store
            .claim_events(now, lease, n)
            .await
            .expect("claim events")
    };
    let finish = |id: Uuid, lease: Timestamp, now: Timestamp, delivery: Delivery| async move {
        store
            .finish_event(id, lease, now, &delivery)
            .await
            .expect("finish event")
    };
    // What the other checks left behind is delivered and pruned first.
    let far = at(EVENTS_T + 10_000_000);
    for e in claim(far, far, 100_000).await {
        assert!(finish(e.event.id, far, far, Delivery::Delivered).await);
    }
    store
        .delete_events(at(EVENTS_T + 20_000_000), at(0))
        .await
        .expect("prune");
    assert_eq!(
        store.events(None, 10).await.expect("events"),
        Vec::<StoredEvent>::new()
    );

    let t = EVENTS_T + 30_000_000;
    let (x, y) = (Uuid::new_v4(), Uuid::new_v4());
    let first = NewEvent::user_disabled(x, at(t));
    let second = NewEvent::user_deleted(y, at(t + 1));
    store.record_event(&first).await.expect("record");
    store.record_event(&second).await.expect("record");
    assert_eq!(store.event_backlog().await.expect("backlog").pending, 2);
    assert_eq!(
        store.event_backlog().await.expect("backlog").oldest_pending,
        Some(at(t))
    );
    assert!(
        claim(at(t - 1), at(t + 60_000), 10).await.is_empty(),
        "not due yet"
    );
    let lease = at(t + 60_001);
    let claimed = claim(at(t + 1), lease, 10).await;
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].event, first);
    assert_eq!(
        (claimed[0].attempts, claimed[0].lease_until),
        (1, Some(lease))
    );
    assert!(
        claim(at(t + 2), at(t + 90_000), 10).await.is_empty(),
        "leased"
    );
    // The lease lapses: another sender takes the first; the first sender's claim is void.
    let lease2 = at(t + 200_000);
    let taken = claim(at(t + 60_001), lease2, 1).await;
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].attempts, 2);
    assert!(
        !finish(
            taken[0].event.id,
            lease,
            at(t + 60_002),
            Delivery::Delivered
        )
        .await
    );
    let retry = Delivery::Retry {
        at: at(t + 70_000),
        error: "HTTP 500".into(),
    };
    assert!(finish(taken[0].event.id, lease2, at(t + 60_002), retry).await);
    let other = if taken[0].event.id == first.id {
        &second
    } else {
        &first
    };
    assert!(
        finish(
            other.id,
            lease,
            at(t + 60_002),
            Delivery::Failed {
                error: "timeout".into()
            }
        )
        .await
    );
    let backlog = store.event_backlog().await.expect("backlog");
    assert_eq!((backlog.pending, backlog.failed), (1, 1));
    assert!(claim(at(t + 69_999), at(t + 300_000), 10).await.is_empty());
    let again = claim(at(t + 70_000), at(t + 300_000), 10).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].last_error.as_deref(), Some("HTTP 500"));
    assert!(
        finish(
            again[0].event.id,
            at(t + 300_000),
            at(t + 70_001),
            Delivery::Delivered
        )
        .await
    );

    let listed = |state| async move { store.events(Some(state), 10).await.expect("events") };
    let failed = listed(EventState::Failed).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].event.id, other.id);
    assert_eq!(failed[0].last_error.as_deref(), Some("timeout"));
    let delivered = listed(EventState::Delivered).await;
    assert_eq!(delivered[0].finished_at, Some(at(t + 70_001)));
    assert!(
        !store
            .retry_event(delivered[0].event.id, at(t + 80_000))
            .await
            .expect("retry"),
        "delivered is done"
    );
    assert!(
        store
            .retry_event(other.id, at(t + 80_000))
            .await
            .expect("retry")
    );
    let retried = listed(EventState::Pending).await;
    assert_eq!(
        (
            retried[0].attempts,
            retried[0].retry_since,
            retried[0].next_attempt_at
        ),
        (0, at(t + 80_000), at(t + 80_000))
    );

    // Pruning: delivered before the cutoff, and pending never tried since they were recorded
    // or retried (no sender ran); a failed one never.
    let unsent = NewEvent::user_disabled(x, at(t + 90_000));
    store.record_event(&unsent).await.expect("record");
    assert_eq!(
        store
            .delete_events(at(t + 70_000), at(t + 80_000))
            .await
            .expect("prune"),
        0
    );
    assert_eq!(
        store
            .delete_events(at(t + 70_002), at(t + 90_001))
            .await
            .expect("prune"),
        3
    );
    assert!(store.events(None, 10).await.expect("events").is_empty());
}

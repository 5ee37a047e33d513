//! The shared Store contract and PostgreSQL's own promises, each test on a database of its own
//! (see `tessera_store_postgres::testing`: skipped without a server, failed in CI).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::{SessionRecord, SigningAlg, Store, StoreError, StoredKey, Timestamp, User};
use tessera_store_postgres::PostgresStore;
use tessera_store_postgres::testing::throwaway_database;
use tokio::sync::Barrier;
use uuid::Uuid;

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

fn session(user: &User, ip: Option<IpAddr>) -> SessionRecord {
    SessionRecord {
        id: Uuid::new_v4(),
        user_id: user.id,
        username: user.username.clone(),
        generation: 0,
        token_hash: vec![1; 32],
        created_at: at(1_000),
        rotated_at: at(1_000),
        last_used_at: at(1_000),
        revoked_at: None,
        revoked_reason: None,
        user_agent: None,
        ip,
        client_id: tessera_core::BUILTIN_CLIENT_ID.into(),
        dpop_jkt: None,
    }
}

#[tokio::test]
async fn postgres_store_honours_the_contract() {
    let Some(db) = throwaway_database().await else {
        return;
    };
    let store = db.store().await;
    tessera_core::contract::run_all(Arc::new(store.clone())).await;
    store.close().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_rotations_from_two_instances_have_exactly_one_winner() {
    let Some(db) = throwaway_database().await else {
        return;
    };
    // Two pools, as two `tessera` instances sharing the database would have.
    let (a, b) = (db.store().await, db.store().await);
    let u = user("racer");
    a.insert_user(&u).await.expect("insert user");
    let s = session(&u, None);
    a.insert_session(&s).await.expect("insert session");

    let start = Arc::new(Barrier::new(50));
    let racers: Vec<_> = (0..50u8)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                store.rotate_session(s.id, 0, &[i; 32], at(2_000)).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, racer) in racers.into_iter().enumerate() {
        if racer.await.expect("join").expect("rotate") {
            winners.push(i as u8);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one rotation wins: {winners:?}");
    let after = b.session(s.id).await.expect("get").expect("exists");
    assert_eq!(
        (after.generation, after.token_hash),
        (1, vec![winners[0]; 32])
    );

    a.close().await;
    b.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_within_the_acquire_timeout() {
    // sqlx retries a refused connection (a server starting up) until the 5 s acquire timeout.
    let started = Instant::now();
    let outcome = PostgresStore::connect("postgres://postgres@127.0.0.1:1/x").await;
    assert!(
        matches!(outcome, Err(StoreError::Unavailable(_))),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[tokio::test]
async fn a_server_that_never_answers_is_unavailable_after_the_acquire_timeout() {
    // Accepts connections and never says a word: a hung server, or packets silently dropped.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let started = Instant::now();
    let outcome = PostgresStore::connect(&format!("postgres://postgres@127.0.0.1:{port}/x")).await;
    assert!(
        matches!(outcome, Err(StoreError::Unavailable(_))),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    silent.abort();
}

#[tokio::test]
async fn a_missing_database_is_a_mistake_not_an_outage() {
    let Some(db) = throwaway_database().await else {
        return;
    };
    let missing = db.url().replace(db.name(), "tessera_no_such_database");
    let outcome = PostgresStore::connect(&missing).await;
    assert!(matches!(outcome, Err(StoreError::Other(_))), "{outcome:?}");
    db.drop_db().await;
}

#[tokio::test]
async fn a_closed_store_is_unavailable() {
    let Some(db) = throwaway_database().await else {
        return;
    };
    let store = db.store().await;
    store.close().await;
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    db.drop_db().await;
}

#[tokio::test]
async fn instances_starting_together_migrate_once_and_keep_data_on_reconnect() {
    let Some(db) = throwaway_database().await else {
        return;
    };
    let (a, b) = tokio::join!(
        PostgresStore::connect(db.url()),
        PostgresStore::connect(db.url())
    );
    let (a, b) = (a.expect("connect a"), b.expect("connect b"));
    let key = StoredKey::generate(SigningAlg::EdDSA, None, at(1), at(1)).expect("generate");
    a.insert_key(&key).await.expect("insert key");
    assert!(matches!(
        a.insert_key(&key).await,
        Err(StoreError::Conflict)
    ));
    a.close().await;
    b.close().await;

    let reopened = db.store().await;
    reopened.migrate().await.expect("migrate again");
    assert_eq!(reopened.keys().await.expect("keys"), vec![key]);
    reopened.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn every_kind_of_client_address_round_trips() {
    let Some(db) = throwaway_database().await else {
        return;
    };
    let store = db.store().await;
    let u = user("Ip.Tester");
    store.insert_user(&u).await.expect("insert user");
    for ip in [
        "203.0.113.7",
        "0.0.0.0",
        "2001:db8::1",
        "::1",
        "::ffff:192.0.2.1",
        "fe80::1:2:3:4",
    ] {
        let s = session(&u, Some(ip.parse().expect("an address")));
        store.insert_session(&s).await.expect("insert session");
        assert_eq!(store.session(s.id).await.expect("get"), Some(s), "{ip}");
    }
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn no_index_covers_a_column_that_rotation_writes() {
    // The index policy of the migrations: rotations must stay HOT updates, so neither an index's
    // columns nor its predicate may name a column `rotate_session` writes.
    let Some(db) = throwaway_database().await else {
        return;
    };
    use sqlx::Connection;
    let store = db.store().await;
    let mut conn = sqlx::postgres::PgConnection::connect(db.url())
        .await
        .expect("connect");
    let indexes: Vec<(String, String)> =
        sqlx::query_as("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'sessions'")
            .fetch_all(&mut conn)
            .await
            .expect("list indexes");
    assert!(
        indexes
            .iter()
            .any(|(name, _)| name == "sessions_by_revocation"),
        "revocation polls are served by an index: {indexes:?}"
    );
    for (name, def) in &indexes {
        for written in ["generation", "token_hash", "rotated_at", "last_used_at"] {
            assert!(!def.contains(written), "{name} covers {written}: {def}");
        }
    }
    conn.close().await.expect("close");
    store.close().await;
    db.drop_db().await;
}

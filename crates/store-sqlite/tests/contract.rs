//! The shared Store contract, on a fresh SQLite file per test.

use std::sync::Arc;

use tessera_store_sqlite::SqliteStore;

fn temp_db() -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("tessera-contract-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("t.db").display());
    (dir, url)
}

#[tokio::test]
async fn sqlite_store_honours_the_contract() {
    let (dir, url) = temp_db();
    let store = SqliteStore::connect(&url).await.unwrap();
    tessera_core::contract::run_all(Arc::new(store.clone())).await;
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn reopening_a_database_keeps_its_data_and_migrates_nothing_twice() {
    let (dir, url) = temp_db();
    let store = SqliteStore::connect(&url).await.unwrap();
    let key = tessera_core::StoredKey::generate(
        tessera_core::SigningAlg::EdDSA,
        None,
        tessera_core::Timestamp::from_millis(1),
        tessera_core::Timestamp::from_millis(1),
    )
    .unwrap();
    tessera_core::Store::insert_key(&store, &key).await.unwrap();
    store.close().await;
    let reopened = SqliteStore::connect(&url).await.unwrap();
    reopened.migrate().await.unwrap();
    assert_eq!(
        tessera_core::Store::keys(&reopened).await.unwrap(),
        vec![key]
    );
    reopened.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A database as the sqlx-based version of this store left it (`sqlx-era.sql`: both migrations
/// recorded in sqlx's own table, `user_version` 0) opens without running those two again, keeps
/// its data, and takes new writes.
#[tokio::test]
async fn a_database_from_the_sqlx_store_opens_and_keeps_working() {
    use tessera_core::Store;
    let (dir, url) = temp_db();
    let conn = rusqlite::Connection::open(dir.join("t.db")).unwrap();
    conn.execute_batch(include_str!("sqlx-era.sql")).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 0, "sqlx left user_version alone");
    drop(conn);

    let store = SqliteStore::connect(&url).await.unwrap();
    let users = store.users().await.unwrap();
    assert_eq!(
        users
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["Alice"]
    );
    let now = tessera_core::Timestamp::from_millis(1_800_000_000_000);
    let session = tessera_core::SessionRecord {
        id: uuid::Uuid::new_v4(),
        user_id: users[0].id,
        username: String::new(),
        generation: 0,
        token_hash: vec![1; 32],
        created_at: now,
        rotated_at: now,
        last_used_at: now,
        revoked_at: None,
        revoked_reason: None,
        user_agent: None,
        ip: None,
        client_id: tessera_core::BUILTIN_CLIENT_ID.into(),
        dpop_jkt: None,
    };
    store.insert_session(&session).await.unwrap();
    assert!(
        store
            .rotate_session(session.id, 0, &[2; 32], now)
            .await
            .unwrap()
    );
    // The revocations index (migration 2, widened by 3) is there: revoking and paging use it.
    assert!(
        store
            .revoke_session(session.id, now, tessera_core::RevokeReason::Logout)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .revoked_sessions_page(now, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    store.close().await;

    let reopened = SqliteStore::connect(&url).await.unwrap();
    assert_eq!(reopened.users().await.unwrap(), users);
    reopened.close().await;
    let conn = rusqlite::Connection::open(dir.join("t.db")).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        version, 8,
        "sqlx's two migrations adopted, not run again; the later ones applied"
    );
    drop(conn);
    std::fs::remove_dir_all(&dir).unwrap();
}

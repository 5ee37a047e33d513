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

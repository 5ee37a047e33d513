//! Signing keys: the JWKS, rotation, algorithms, and a restart on the same database.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;

async fn the_jwks_publishes_the_key_that_signs_tokens(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let set = jwks(&app).await;
    let key = &set["keys"][0];
    assert_eq!(set["keys"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    assert_eq!(key["use"], "sig");
    assert!(key.get("d").is_none(), "never the private part");
    assert_eq!(jwt_part(&s.access, 0)["kid"], key["kid"]);
    app.cleanup().await;
}

async fn every_algorithm_signs_tokens_that_verify(backend: Backend) {
    for (alg, kty) in [
        ("ES256", Some("EC")),
        ("RS256", Some("RSA")),
        ("HS256", None),
    ] {
        let Some(app) = spawn_app_with(backend, |a| a.signing_alg = Some(alg.into())).await else {
            return;
        };
        let s = app.signed_in("alice").await;
        assert_eq!(jwt_part(&s.access, 0)["alg"], alg);
        assert_eq!(
            app.get_with("/auth/me", &s.access).await.status(),
            StatusCode::OK,
            "{alg}"
        );
        let set = jwks(&app).await;
        match kty {
            Some(kty) => assert_eq!(set["keys"][0]["kty"], kty),
            None => assert_eq!(
                set,
                serde_json::json!({"keys": []}),
                "an HMAC secret is never published"
            ),
        }
        app.cleanup().await;
    }
}

async fn a_rotated_key_is_published_first_and_signs_later(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let before = app.signed_in("alice").await;
    let old_kid = jwt_part(&before.access, 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let new = app.tessera.rotate_keys().await.unwrap();
    assert_eq!(
        kids(&jwks(&app).await),
        vec![old_kid.clone(), new.kid.clone()],
        "published at once"
    );
    let soon = app.another_device("alice").await;
    assert_eq!(
        jwt_part(&soon.access, 0)["kid"],
        old_kid.as_str(),
        "not signing before every instance can publish it"
    );
    app.advance(Duration::from_secs(20));
    let after = app.another_device("alice").await;
    assert_eq!(
        jwt_part(&after.access, 0)["kid"],
        new.kid.as_str(),
        "signing within 30 s"
    );
    // Tokens of the old key stay valid, and the old key stays published until they expired.
    assert_eq!(
        app.get_with("/auth/me", &soon.access).await.status(),
        StatusCode::OK
    );
    app.advance(Duration::from_secs(900));
    assert_eq!(kids(&jwks(&app).await).len(), 2);
    app.advance(Duration::from_secs(5));
    assert_eq!(kids(&jwks(&app).await), vec![new.kid.clone()]);
    app.cleanup().await;
}

async fn a_restart_keeps_sessions_and_keys(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = app.signed_in("alice").await;
    let set = jwks(&app).await;
    let (db, clock) = app.stop();
    let app = start_on(db, Default::default(), clock).await;
    assert_eq!(jwks(&app).await, set, "the same keys");
    // The issuer is the bound address, which changed: so check the refresh, then the new token.
    let renewed = session_of(app.refresh_with_cookie(&s.refresh).await).await;
    assert_eq!(renewed.sid, s.sid);
    assert_eq!(
        app.get_with("/auth/me", &renewed.access).await.status(),
        StatusCode::OK
    );
    app.cleanup().await;
}

async fn sealed_keys_need_the_key_encryption_key(backend: Backend) {
    // The KEK comes from the environment only; the core tests cover sealing itself. Here: a
    // database whose keys are sealed refuses to start without it, with a clear error.
    let Some(db) = Db::new(backend).await else {
        return;
    };
    let store = tessera::open_store(&db.url()).await.unwrap();
    let kek = tessera_core::Kek::parse("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
    let settings = tessera_core::Settings::new("http://t.example");
    let clock = std::sync::Arc::new(tessera_core::SystemClock);
    tessera_core::Tessera::open(
        store.clone(),
        settings.clone(),
        Some(kek.clone()),
        clock.clone(),
    )
    .await
    .unwrap();
    let keys = store.keys().await.unwrap();
    assert!(keys.iter().all(|k| k.private.sealed));
    let err = tessera_core::Tessera::open(store.clone(), settings.clone(), None, clock.clone())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("TESSERA_KEY_ENCRYPTION_KEY"),
        "{err}"
    );
    assert!(
        tessera_core::Tessera::open(store, settings, Some(kek), clock)
            .await
            .is_ok()
    );
    db.remove().await;
}

/// Before: EdDSA, then ES256, then EdDSA again left ES256 signing (a key was made only when none
/// of the configured algorithm existed, and the newest active key signs).
async fn the_configured_algorithm_signs_after_a_switch_and_back(backend: Backend) {
    use tessera_core::{Clock, ManualClock, Settings, SigningAlg, SystemClock, Tessera};
    let Some(db) = Db::new(backend).await else {
        return;
    };
    let store = tessera::open_store(&db.url()).await.unwrap();
    let clock = ManualClock::new(SystemClock.now());
    for alg in [SigningAlg::EdDSA, SigningAlg::ES256, SigningAlg::EdDSA] {
        let mut settings = Settings::new("http://t.example");
        settings.signing_alg = alg;
        let tessera = Tessera::open(
            store.clone(),
            settings,
            None,
            std::sync::Arc::new(clock.clone()),
        )
        .await
        .unwrap();
        clock.advance(tessera_core::keys::ACTIVATION_DELAY);
        let signing: Vec<SigningAlg> = tessera
            .key_report()
            .into_iter()
            .filter(|k| k.signing)
            .map(|k| k.alg)
            .collect();
        assert_eq!(signing, vec![alg]);
    }
    db.remove().await;
}

on_both_backends!(
    the_configured_algorithm_signs_after_a_switch_and_back,
    the_jwks_publishes_the_key_that_signs_tokens,
    every_algorithm_signs_tokens_that_verify,
    a_rotated_key_is_published_first_and_signs_later,
    a_restart_keeps_sessions_and_keys,
    sealed_keys_need_the_key_encryption_key,
);

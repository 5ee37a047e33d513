//! The library's extractors, as a host app's handler meets them: [`Authenticated`] (signature and
//! claims, no database) against the raw Ed25519 verification of the same token, and
//! [`LiveSession`] (the same plus one store read, on SQLite); and `Authenticated` with a
//! DPoP-bound token sent as `Authorization: DPoP` with a fresh ES256 proof (made outside the
//! timing, as a client makes it), which adds one signature verification.
//!
//! `cargo bench -p tessera-bench --bench extractor`

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, ParsedPublicKey,
};
use axum::extract::FromRequestParts;
use axum::http::{Request, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tessera_core::{ClientInfo, Clock, DpopRequest, Settings, Store, SystemClock, Tessera};
use tessera_http::{AppState, Authenticated, HttpConfig, LiveSession};

/// Runs a future that never waits (the stateless extractor) to completion without a runtime.
fn now_or_never<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the extractor waited"),
    }
}

const ISSUER: &str = "http://127.0.0.1:8080";

/// A client's P-256 key, signing DPoP proofs as a browser would.
struct ProofKey(EcdsaKeyPair);

impl ProofKey {
    fn new() -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect("key");
        Self(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .expect("key"),
        )
    }

    fn proof(&self, method: &str, path: &str, access_token: Option<&str>) -> String {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let p = self.0.public_key().as_ref();
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256",
            "jwk": {"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])}});
        let mut claims = serde_json::json!({"jti": uuid::Uuid::new_v4().to_string(), "htm": method,
            "htu": format!("{ISSUER}{path}"), "iat": SystemClock.now().as_secs()});
        if let Some(token) = access_token {
            claims["ath"] = tessera_core::dpop::access_token_hash(token).into();
        }
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self
            .0
            .sign(&SystemRandom::new(), signed.as_bytes())
            .expect("sign");
        format!("{signed}.{}", b64(sig.as_ref()))
    }
}

fn extractors(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("tessera-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let key = ProofKey::new();
    let (state, token, bound, der) = runtime.block_on(async {
        let store = Arc::new(
            tessera_store_sqlite::SqliteStore::connect(&url)
                .await
                .expect("store"),
        );
        let tessera = Arc::new(
            Tessera::open(
                store.clone(),
                Settings::new(ISSUER),
                None,
                Arc::new(SystemClock),
            )
            .await
            .expect("service"),
        );
        tessera
            .register("bench", "bench password 1".into(), &Default::default())
            .await
            .expect("register");
        let issued = tessera
            .login("bench", "bench password 1".into(), &ClientInfo::default())
            .await
            .expect("login");
        let with_proof = ClientInfo {
            dpop: Some(DpopRequest {
                proof: Ok(key.proof("POST", "/auth/login", None)),
                method: "POST".into(),
                url: format!("{ISSUER}/auth/login"),
            }),
            ..ClientInfo::default()
        };
        let bound = tessera
            .login("bench", "bench password 1".into(), &with_proof)
            .await
            .expect("bound login");
        assert_eq!(bound.token_type, "DPoP");
        let signing = store.keys().await.expect("keys").remove(0);
        let state = AppState::new(tessera, HttpConfig::new(ISSUER));
        (
            state,
            issued.access_token,
            bound.access_token,
            signing.private.material,
        )
    });
    let (mut parts, ()) = Request::get("/auth/me")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(())
        .expect("request")
        .into_parts();

    let pair = Ed25519KeyPair::from_pkcs8(&der).expect("Ed25519 key");
    let public = ParsedPublicKey::new(&ED25519, pair.public_key().as_ref()).expect("public key");
    let (signed, signature) = token.rsplit_once('.').expect("JWS");
    let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");

    let mut g = c.benchmark_group("extractor/EdDSA");
    g.bench_function("raw_verify", |b| {
        b.iter(|| {
            public
                .verify_sig(black_box(signed.as_bytes()), black_box(&signature))
                .expect("valid")
        })
    });
    g.bench_function("Authenticated", |b| {
        b.iter(|| {
            now_or_never(Authenticated::from_request_parts(
                black_box(&mut parts),
                &state,
            ))
            .expect("valid")
        })
    });
    let proof = key.proof("GET", "/auth/me", Some(&bound));
    let (proof_signed, proof_sig) = proof.rsplit_once('.').expect("JWS");
    let proof_sig = URL_SAFE_NO_PAD.decode(proof_sig).expect("base64url");
    let proof_key = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.0.public_key().as_ref())
        .expect("public key");
    g.bench_function("raw_verify_P256_proof", |b| {
        b.iter(|| {
            proof_key
                .verify_sig(black_box(proof_signed.as_bytes()), black_box(&proof_sig))
                .expect("valid")
        })
    });
    g.bench_function("Authenticated_DPoP", |b| {
        b.iter_batched(
            || {
                Request::get("/auth/me")
                    .header(header::AUTHORIZATION, format!("DPoP {bound}"))
                    .header("dpop", key.proof("GET", "/auth/me", Some(&bound)))
                    .body(())
                    .expect("request")
                    .into_parts()
                    .0
            },
            |mut parts| {
                now_or_never(Authenticated::from_request_parts(&mut parts, &state)).expect("valid")
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("LiveSession_sqlite", |b| {
        b.iter(|| {
            runtime
                .block_on(LiveSession::from_request_parts(
                    black_box(&mut parts),
                    &state,
                ))
                .expect("valid")
        })
    });
    g.finish();
    drop(state);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = extractors
}
criterion_main!(benches);

//! The attack corpus against access tokens: every refusal docs/protocol.md promises, each answered with
//! `401 invalid_token` (never a 5xx), beside a positive control that proves the crafted tokens
//! would be accepted but for the one thing each case breaks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair, RSA_PSS_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// How a crafted token is signed.
enum Signer<'a> {
    Ed25519(&'a Ed25519KeyPair),
    Es(&'a EcdsaKeyPair),
    RsaPss(&'a RsaKeyPair),
    Hmac(&'a [u8]),
    Raw(Vec<u8>),
}

fn sign(message: &str, signer: &Signer) -> Vec<u8> {
    let rng = SystemRandom::new();
    match signer {
        Signer::Ed25519(k) => k.sign(message.as_bytes()).as_ref().to_vec(),
        Signer::Es(k) => k.sign(&rng, message.as_bytes()).unwrap().as_ref().to_vec(),
        Signer::RsaPss(k) => {
            let mut out = vec![0; k.public_modulus_len()];
            k.sign(&RSA_PSS_SHA256, &rng, message.as_bytes(), &mut out)
                .unwrap();
            out
        }
        Signer::Hmac(secret) => {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
            aws_lc_rs::hmac::sign(&key, message.as_bytes())
                .as_ref()
                .to_vec()
        }
        Signer::Raw(sig) => sig.clone(),
    }
}

/// `header.claims.signature` from raw JSON texts (so duplicate keys survive).
fn craft(header: &str, claims: &str, signer: &Signer) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = sign(&message, signer);
    format!("{message}.{}", b64(signature))
}

/// A deployment signing with `alg`, a signed-in user, and that deployment's private key.
struct Target {
    app: TestApp,
    session: Session,
    kid: String,
    private: Vec<u8>,
}

impl Target {
    async fn new(alg: &str) -> Target {
        let app = spawn_app_with(Backend::Sqlite, |a| a.signing_alg = Some(alg.into()))
            .await
            .unwrap();
        let session = app.signed_in("alice").await;
        let keys = app.tessera.store().keys().await.unwrap();
        let key = keys.iter().find(|k| k.alg.as_str() == alg).unwrap();
        assert!(!key.private.sealed, "tests run without a KEK");
        Target {
            kid: key.kid.clone(),
            private: key.private.material.clone(),
            session,
            app,
        }
    }

    fn claims(&self) -> Value {
        jwt_part(&self.session.access, 1)
    }

    fn header(&self, alg: &str) -> Value {
        json!({"alg": alg, "kid": self.kid, "typ": "at+jwt"})
    }

    async fn status(&self, token: &str) -> StatusCode {
        let r = self.app.get_with("/auth/me", token).await;
        let status = r.status();
        if status == StatusCode::UNAUTHORIZED {
            let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
            let (_, body) = error_of(r).await;
            assert_eq!(body["error"], "invalid_token");
            assert!(challenge.contains("invalid_token"), "{challenge}");
        }
        status
    }

    async fn assert_refused(&self, token: &str, why: &str) {
        assert_eq!(
            self.status(token).await,
            StatusCode::UNAUTHORIZED,
            "{why}: {token:.120}"
        );
    }

    async fn assert_accepted(&self, token: &str) {
        assert_eq!(
            self.status(token).await,
            StatusCode::OK,
            "positive control: {token:.120}"
        );
    }
}

fn text(v: &Value) -> String {
    v.to_string()
}

#[tokio::test]
async fn the_none_algorithm_in_any_spelling_is_refused() {
    let t = Target::new("EdDSA").await;
    let claims = text(&t.claims());
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        let header = text(&t.header(alg));
        let unsigned = format!("{}.{}.", b64(&header), b64(&claims));
        t.assert_refused(&unsigned, alg).await;
        let key = Ed25519KeyPair::from_pkcs8(&t.private).unwrap();
        t.assert_refused(&craft(&header, &claims, &Signer::Ed25519(&key)), alg)
            .await;
    }
    t.app.cleanup().await;
}

#[tokio::test]
async fn hmac_signed_with_our_public_key_is_refused() {
    let t = Target::new("EdDSA").await;
    let key = Ed25519KeyPair::from_pkcs8(&t.private).unwrap();
    let key_ok = craft(
        &text(&t.header("EdDSA")),
        &text(&t.claims()),
        &Signer::Ed25519(&key),
    );
    t.assert_accepted(&key_ok).await;

    let raw = key.public_key().as_ref().to_vec();
    let jwks = jwks(&t.app).await;
    let jwk = jwks["keys"][0].to_string();
    // SubjectPublicKeyInfo for Ed25519: a fixed 12-byte prefix, then the key.
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(&raw);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(&der)
    );
    for (form, secret) in [
        ("raw", raw.clone()),
        ("DER", der.clone()),
        ("PEM", pem.into_bytes()),
        ("JWK", jwk.into_bytes()),
        (
            "x",
            jwks["keys"][0]["x"].as_str().unwrap().as_bytes().to_vec(),
        ),
    ] {
        for alg in ["HS256", "HS384", "HS512"] {
            let token = craft(
                &text(&t.header(alg)),
                &text(&t.claims()),
                &Signer::Hmac(&secret),
            );
            t.assert_refused(&token, &format!("{alg} with the public key as {form}"))
                .await;
        }
    }
    t.app.cleanup().await;
}

#[tokio::test]
async fn rsa_tokens_must_use_the_pinned_padding() {
    let t = Target::new("RS256").await;
    let key = RsaKeyPair::from_pkcs8(&t.private).unwrap();
    let claims = text(&t.claims());
    t.assert_accepted(&t.session.access).await;
    for alg in ["PS256", "RS384", "RS512"] {
        let token = craft(&text(&t.header(alg)), &claims, &Signer::RsaPss(&key));
        t.assert_refused(&token, alg).await;
    }
    // PKCS#1 v1.5 header over a PSS signature.
    t.assert_refused(
        &craft(&text(&t.header("RS256")), &claims, &Signer::RsaPss(&key)),
        "RS256/PSS",
    )
    .await;
    t.app.cleanup().await;
}

#[tokio::test]
async fn ecdsa_signatures_must_be_p256_raw_low_s_and_non_zero() {
    let t = Target::new("ES256").await;
    let (header, claims) = (text(&t.header("ES256")), text(&t.claims()));
    t.assert_accepted(&t.session.access).await;

    let p384 = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
    t.assert_refused(&craft(&header, &claims, &Signer::Es(&p384)), "P-384 key")
        .await;
    t.assert_refused(
        &craft(&text(&t.header("ES384")), &claims, &Signer::Es(&p384)),
        "ES384",
    )
    .await;
    t.assert_refused(
        &craft(&header, &claims, &Signer::Raw(vec![0; 64])),
        "all-zero signature",
    )
    .await;
    let der_key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &t.private).unwrap();
    t.assert_refused(
        &craft(&header, &claims, &Signer::Es(&der_key)),
        "DER-encoded signature",
    )
    .await;

    // s → n − s: the malleable twin of the valid (low-S) signature Tessera issued.
    let valid = t.session.access.clone();
    let (message, sig) = valid.rsplit_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    const N: [u8; 32] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63,
        0x25, 0x51,
    ];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(N[i]) - i16::from(raw[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        raw[32 + i] = (d + 256 * borrow) as u8;
    }
    t.assert_refused(&format!("{message}.{}", b64(&raw)), "s replaced by n - s")
        .await;
    t.app.cleanup().await;
}

#[tokio::test]
async fn ed25519_signatures_with_s_at_or_above_l_are_refused() {
    let t = Target::new("EdDSA").await;
    let key = Ed25519KeyPair::from_pkcs8(&t.private).unwrap();
    let valid = craft(
        &text(&t.header("EdDSA")),
        &text(&t.claims()),
        &Signer::Ed25519(&key),
    );
    t.assert_accepted(&valid).await;
    let (message, sig) = valid.rsplit_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    // L = 2^252 + 27742317777372353535851937790883648493, little-endian; S + L < 2^256.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(raw[32 + i]) + u16::from(L[i]) + carry;
        raw[32 + i] = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    t.assert_refused(&format!("{message}.{}", b64(&raw)), "S + L")
        .await;
    t.app.cleanup().await;
}

#[tokio::test]
async fn kid_is_looked_up_only_in_our_key_set() {
    let t = Target::new("EdDSA").await;
    let key = Ed25519KeyPair::from_pkcs8(&t.private).unwrap();
    let claims = text(&t.claims());
    let long = "k".repeat(10 * 1024);
    let kids: Vec<Value> = vec![
        json!("../../../../etc/passwd"),
        json!("' OR '1'='1"),
        json!("x\u{0}y"),
        json!(format!("{}\u{0}", t.kid)),
        json!(42),
        json!(null),
        json!([t.kid]),
        json!(long),
    ];
    for kid in kids {
        let header = json!({"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}).to_string();
        t.assert_refused(
            &craft(&header, &claims, &Signer::Ed25519(&key)),
            &format!("kid {kid:.40}"),
        )
        .await;
    }
    let no_kid = json!({"alg": "EdDSA", "typ": "at+jwt"}).to_string();
    t.assert_refused(&craft(&no_kid, &claims, &Signer::Ed25519(&key)), "no kid")
        .await;
    t.app.cleanup().await;
}

/// A listener that counts connections: any request to it would be a key fetch we never make.
async fn canary() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (url, hits)
}

#[tokio::test]
async fn embedded_or_remote_keys_are_never_used_or_fetched() {
    let t = Target::new("EdDSA").await;
    let attacker = Ed25519KeyPair::from_pkcs8(
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    let attacker_jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(attacker.public_key().as_ref()), "kid": "attacker"});
    let (url, hits) = canary().await;
    let claims = text(&t.claims());
    let headers = [
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "attacker", "jku": url}),
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": t.kid, "jku": url}),
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "attacker", "x5u": url}),
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": t.kid, "x5u": url}),
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "attacker", "jwk": attacker_jwk}),
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": t.kid, "jwk": attacker_jwk}),
        json!({"alg": "EdDSA", "typ": "at+jwt", "jwk": attacker_jwk}),
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": t.kid, "x5c": [STANDARD.encode(attacker.public_key().as_ref())]}),
    ];
    for header in headers {
        t.assert_refused(
            &craft(&header.to_string(), &claims, &Signer::Ed25519(&attacker)),
            &header.to_string(),
        )
        .await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no key was ever fetched");
    t.app.cleanup().await;
}

#[tokio::test]
async fn headers_with_crit_or_another_typ_are_refused() {
    let t = Target::new("EdDSA").await;
    let key = Ed25519KeyPair::from_pkcs8(&t.private).unwrap();
    let claims = text(&t.claims());
    let kid = t.kid.clone();
    let headers = [
        json!({"alg": "EdDSA", "kid": kid, "typ": "at+jwt", "crit": ["exp"]}),
        json!({"alg": "EdDSA", "kid": kid, "typ": "at+jwt", "crit": []}),
        json!({"alg": "EdDSA", "kid": kid, "typ": "at+jwt", "crit": null}),
        json!({"alg": "EdDSA", "kid": kid, "typ": "JWT"}),
        json!({"alg": "EdDSA", "kid": kid, "typ": "AT+JWT"}),
        json!({"alg": "EdDSA", "kid": kid, "typ": "application/jwt"}),
        json!({"alg": "EdDSA", "kid": kid}),
        json!({"alg": "EdDSA", "kid": kid, "typ": ["at+jwt"]}),
        json!({"alg": "EdDSA", "kid": kid, "typ": null}),
    ];
    for header in headers {
        t.assert_refused(
            &craft(&header.to_string(), &claims, &Signer::Ed25519(&key)),
            &header.to_string(),
        )
        .await;
    }
    t.app.cleanup().await;
}

#[tokio::test]
async fn duplicate_json_members_are_refused() {
    let t = Target::new("EdDSA").await;
    let key = Ed25519KeyPair::from_pkcs8(&t.private).unwrap();
    let claims = text(&t.claims());
    let header = format!(
        r#"{{"alg":"EdDSA","kid":"{}","typ":"at+jwt","typ":"JWT"}}"#,
        t.kid
    );
    t.assert_refused(
        &craft(&header, &claims, &Signer::Ed25519(&key)),
        "duplicate typ",
    )
    .await;
    let header = format!(
        r#"{{"alg":"none","alg":"EdDSA","kid":"{}","typ":"at+jwt"}}"#,
        t.kid
    );
    t.assert_refused(
        &craft(&header, &claims, &Signer::Ed25519(&key)),
        "duplicate alg",
    )
    .await;
    let good_header = text(&t.header("EdDSA"));
    let dup_sub = claims.replacen('{', r#"{"sub":"00000000-0000-0000-0000-000000000000","#, 1);
    t.assert_refused(
        &craft(&good_header, &dup_sub, &Signer::Ed25519(&key)),
        "duplicate sub",
    )
    .await;
    let dup_exp = claims.replacen('{', r#"{"exp":9999999999,"#, 1);
    t.assert_refused(
        &craft(&good_header, &dup_exp, &Signer::Ed25519(&key)),
        "duplicate exp",
    )
    .await;
    t.app.cleanup().await;
}

#[tokio::test]
async fn time_and_audience_claims_must_be_right_in_type_and_value() {
    let t = Target::new("EdDSA").await;
    let key = Ed25519KeyPair::from_pkcs8(&t.private).unwrap();
    let header = text(&t.header("EdDSA"));
    let base = t.claims();
    let exp = base["exp"].as_i64().unwrap();
    let with = |name: &str, value: Value| {
        let mut c = base.clone();
        c[name] = value;
        c.to_string()
    };
    let without = |name: &str| {
        let mut c = base.clone();
        c.as_object_mut().unwrap().remove(name);
        c.to_string()
    };
    t.assert_accepted(&craft(&header, &base.to_string(), &Signer::Ed25519(&key)))
        .await;
    let cases: Vec<(String, &str)> = vec![
        (with("exp", json!(exp.to_string())), "exp as a string"),
        (with("exp", Value::Null), "exp null"),
        (with("exp", json!(exp as f64 + 0.5)), "exp as a float"),
        (with("exp", json!(exp * 1000)), "exp in milliseconds"),
        (with("exp", json!(253_402_300_800_i64)), "exp in year 10000"),
        (
            with("nbf", json!(base["nbf"].as_i64().unwrap().to_string())),
            "nbf as a string",
        ),
        (with("nbf", json!(exp)), "nbf in the future"),
        (with("iss", json!("https://evil.example")), "wrong iss"),
        (with("aud", json!("https://evil.example")), "wrong aud"),
        (with("aud", json!([base["aud"].clone()])), "aud as an array"),
        (with("sub", json!(12)), "sub as a number"),
        (without("exp"), "no exp"),
        (without("nbf"), "no nbf"),
        (without("iss"), "no iss"),
        (without("aud"), "no aud"),
        (without("sub"), "no sub"),
    ];
    for (claims, why) in cases {
        t.assert_refused(&craft(&header, &claims, &Signer::Ed25519(&key)), why)
            .await;
    }
    t.app.cleanup().await;
}

#[tokio::test]
async fn non_canonical_or_misshapen_encodings_are_refused() {
    let t = Target::new("EdDSA").await;
    let token = t.session.access.clone();
    t.assert_accepted(&token).await;
    let parts: Vec<&str> = token.split('.').collect();
    let (h, c, s) = (parts[0], parts[1], parts[2]);
    // A segment whose length leaves spare bits (len % 4 == 2 or 3): set the last character's
    // unused low bits.
    let trailing = |seg: &str| {
        let mut bytes = seg.as_bytes().to_vec();
        let last = bytes.len() - 1;
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet.iter().position(|c| *c == bytes[last]).unwrap();
        bytes[last] = alphabet[index | if seg.len() % 4 == 2 { 0x0f } else { 0x03 }];
        String::from_utf8(bytes).unwrap()
    };
    let mut cases = vec![
        (format!("{h}=.{c}.{s}"), "padded header"),
        (format!("{h}.{c}.{s}=="), "padded signature"),
        (
            format!("{h}.{c}.{s}").replace('-', "+").replace('_', "/"),
            "standard alphabet",
        ),
        (format!("{h} .{c}.{s}"), "space in a segment"),
        (format!("{h}.{c}\n.{s}"), "newline in a segment"),
        (format!("{h}.{c}"), "two segments"),
        (format!("{h}.{c}.{s}.{s}"), "four segments"),
        (format!("{h}.{c}.{s}.{s}.{s}"), "five segments (JWE-shaped)"),
        (
            format!(
                "{}..{}.{}.{}",
                b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM","typ":"at+jwt"}"#),
                b64("iv"),
                b64("ct"),
                b64("tag")
            ),
            "JWE",
        ),
        (format!(".{c}.{s}"), "empty header"),
        (format!("{h}.{c}."), "empty signature"),
    ];
    if s.len() % 4 != 0 {
        cases.push((
            format!("{h}.{c}.{}", trailing(s)),
            "non-zero trailing bits in the signature",
        ));
    }
    if c.len() % 4 != 0 {
        cases.push((
            format!("{h}.{}.{s}", trailing(c)),
            "non-zero trailing bits in the claims",
        ));
    }
    for (bad, why) in cases {
        if bad.contains('\n') {
            continue; // not a valid header value; reqwest refuses to send it
        }
        if bad != token {
            t.assert_refused(&bad, why).await;
        }
    }
    t.app.cleanup().await;
}

#[tokio::test]
async fn oversized_tokens_and_doubled_headers_are_refused_without_a_server_error() {
    let t = Target::new("EdDSA").await;
    let big = format!("{}.{}", t.session.access, "A".repeat(1024 * 1024));
    let r = t.app.get_with("/auth/me", &big).await;
    // hyper refuses header blocks this large before the app sees them (431); a smaller oversized
    // token reaches Tessera and gets the documented 401.
    assert!(
        matches!(
            r.status(),
            StatusCode::UNAUTHORIZED | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        ),
        "{}",
        r.status()
    );
    let medium = format!("{}.{}", t.session.access, "A".repeat(20 * 1024));
    t.assert_refused(&medium, "20 KB token").await;
    let doubled = t
        .app
        .http
        .get(t.app.url("/auth/me"))
        .header("authorization", format!("Bearer {}", t.session.access))
        .header("authorization", format!("Bearer {}", t.session.access))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(doubled).await.0, StatusCode::UNAUTHORIZED);
    t.app.cleanup().await;
}

#[tokio::test]
async fn a_token_from_another_deployment_is_refused() {
    let ours = Target::new("EdDSA").await;
    let theirs = Target::new("EdDSA").await;
    ours.assert_refused(&theirs.session.access, "another deployment's token")
        .await;
    // Even with our kid pasted in: the signature is theirs.
    let key = Ed25519KeyPair::from_pkcs8(&theirs.private).unwrap();
    ours.assert_refused(
        &craft(
            &text(&ours.header("EdDSA")),
            &text(&ours.claims()),
            &Signer::Ed25519(&key),
        ),
        "their key, our kid",
    )
    .await;
    ours.app.cleanup().await;
    theirs.app.cleanup().await;
}

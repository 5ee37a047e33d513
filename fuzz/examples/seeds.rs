//! Writes the seed corpus of every fuzz target into `corpus/<target>/` (deterministic, so
//! re-running it changes nothing), or with `keys`, fresh fixture keys into `keys/`.
//!
//! ```sh
//! cd fuzz && cargo run --example seeds            # rewrite corpus/*/seed-*
//! cd fuzz && cargo run --example seeds -- keys    # new test keys (then rewrite the corpus)
//! ```

use std::fs;
use std::path::Path;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::json;
use tessera_core::keys::{SigningAlg, StoredKey};
use tessera_core::refresh_token::RefreshKey;
use tessera_fuzz::{
    ALGS, PUBLIC_MATERIAL, REFRESH_KEY, TOKENS, alg_index, claims, kid, low_s, now,
};
use uuid::Uuid;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if std::env::args().nth(1).as_deref() == Some("keys") {
        for alg in ALGS {
            let key = StoredKey::generate(alg, None, now(), now()).expect("a key");
            let path = root
                .join("keys")
                .join(format!("{}.b64", alg.as_str().to_ascii_lowercase()));
            fs::write(&path, STANDARD.encode(&key.private.material) + "\n").expect("write");
            println!("wrote {}", path.display());
        }
        return;
    }
    access_token(&root.join("corpus/access_token"));
    access_token_mutate(&root.join("corpus/access_token_mutate"));
    refresh_token(&root.join("corpus/refresh_token"));
    request_body(&root.join("corpus/request_body"));
}

fn write_all(dir: &Path, seeds: &[(&str, Vec<u8>)]) {
    fs::create_dir_all(dir).expect("corpus dir");
    for entry in fs::read_dir(dir).expect("read corpus dir").flatten() {
        if entry.file_name().to_string_lossy().starts_with("seed-") {
            fs::remove_file(entry.path()).expect("remove old seed");
        }
    }
    for (name, bytes) in seeds {
        fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
    }
    println!("{}: {} seeds", dir.display(), seeds.len());
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn parts(token: &str) -> (String, String, String) {
    let mut it = token.split('.').map(str::to_owned);
    let (h, c, s) = (it.next(), it.next(), it.next());
    (
        h.unwrap_or_default(),
        c.unwrap_or_default(),
        s.unwrap_or_default(),
    )
}

fn access_token(dir: &Path) {
    let eddsa = &TOKENS[alg_index(SigningAlg::EdDSA)];
    let es256 = &TOKENS[alg_index(SigningAlg::ES256)];
    let (h, c, s) = parts(eddsa);
    let (_, _, es_sig) = parts(es256);
    let header = |v: serde_json::Value| b64(v.to_string());
    let hs_confusion = |alg: SigningAlg, secret: &[u8]| {
        let head = header(json!({"alg": "HS256", "kid": kid(alg), "typ": "at+jwt"}));
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, secret),
            format!("{head}.{c}").as_bytes(),
        );
        format!("{head}.{c}.{}", b64(tag))
    };
    let mut high_s = URL_SAFE_NO_PAD.decode(&es_sig).unwrap_or_default();
    low_s::flip(&mut high_s);
    let (es_h, es_c, _) = parts(es256);
    let mut claims_json = serde_json::to_value(claims()).unwrap_or_default();
    claims_json["exp"] = json!(claims_json["exp"].to_string());
    let string_exp = b64(claims_json.to_string());
    let rs_n = PUBLIC_MATERIAL
        .iter()
        .find(|m| m.len() == 256)
        .cloned()
        .unwrap_or_default();

    let mut seeds: Vec<(String, String)> = ALGS
        .iter()
        .zip(TOKENS.iter())
        .map(|(a, t)| {
            (
                format!("valid-{}", a.as_str().to_ascii_lowercase()),
                t.clone(),
            )
        })
        .collect();
    let more = [
        (
            "alg-none-empty-sig",
            format!(
                "{}.{c}.",
                header(json!({"alg": "none", "kid": kid(SigningAlg::EdDSA), "typ": "at+jwt"}))
            ),
        ),
        (
            "alg-none-kept-sig",
            format!(
                "{}.{c}.{s}",
                header(json!({"alg": "none", "kid": kid(SigningAlg::EdDSA), "typ": "at+jwt"}))
            ),
        ),
        (
            "alg-none-no-kid",
            format!("{}.{c}.", header(json!({"alg": "none", "typ": "at+jwt"}))),
        ),
        (
            "alg-swapped-to-rs256",
            format!(
                "{}.{c}.{s}",
                header(json!({"alg": "RS256", "kid": kid(SigningAlg::EdDSA), "typ": "at+jwt"}))
            ),
        ),
        (
            "hs256-keyed-with-rs256-n",
            hs_confusion(SigningAlg::RS256, &rs_n),
        ),
        (
            "hs256-keyed-with-jwk-json",
            hs_confusion(
                SigningAlg::EdDSA,
                PUBLIC_MATERIAL.first().map_or(&[][..], |v| v),
            ),
        ),
        (
            "crit-exp",
            format!(
                "{}.{c}.{s}",
                header(
                    json!({"alg": "EdDSA", "kid": kid(SigningAlg::EdDSA), "typ": "at+jwt", "crit": ["exp"]})
                )
            ),
        ),
        (
            "crit-null",
            format!(
                "{}.{c}.{s}",
                header(
                    json!({"alg": "EdDSA", "kid": kid(SigningAlg::EdDSA), "typ": "at+jwt", "crit": null})
                )
            ),
        ),
        (
            "jku-header",
            format!(
                "{}.{c}.{s}",
                header(
                    json!({"alg": "EdDSA", "kid": kid(SigningAlg::EdDSA), "typ": "at+jwt", "jku": "https://attacker.invalid/jwks.json"})
                )
            ),
        ),
        (
            "jwk-embedded",
            format!(
                "{}.{c}.{s}",
                header(
                    json!({"alg": "HS256", "typ": "at+jwt", "jwk": {"kty": "oct", "k": "AAAA"}})
                )
            ),
        ),
        (
            "typ-jwt",
            format!(
                "{}.{c}.{s}",
                header(json!({"alg": "EdDSA", "kid": kid(SigningAlg::EdDSA), "typ": "JWT"}))
            ),
        ),
        (
            "kid-unknown",
            format!(
                "{}.{c}.{s}",
                header(json!({"alg": "EdDSA", "kid": "nope", "typ": "at+jwt"}))
            ),
        ),
        (
            "kid-path",
            format!(
                "{}.{c}.{s}",
                header(json!({"alg": "EdDSA", "kid": "../../../../dev/null", "typ": "at+jwt"}))
            ),
        ),
        (
            "duplicate-alg",
            format!(
                "{}.{c}.{s}",
                b64(format!(
                    "{{\"alg\":\"EdDSA\",\"kid\":\"{}\",\"typ\":\"at+jwt\",\"alg\":\"none\"}}",
                    kid(SigningAlg::EdDSA)
                ))
            ),
        ),
        ("header-padded", format!("{h}=.{c}.{s}")),
        (
            "header-padded-std",
            format!(
                "{}.{c}.{s}",
                URL_SAFE.encode(URL_SAFE_NO_PAD.decode(&h).unwrap_or_default())
            ),
        ),
        (
            "sig-std-alphabet",
            format!("{h}.{c}.{}", s.replace('-', "+").replace('_', "/")),
        ),
        (
            "es256-high-s-twin",
            format!("{es_h}.{es_c}.{}", b64(&high_s)),
        ),
        ("claims-exp-string", format!("{h}.{string_exp}.{s}")),
        ("two-segments", format!("{h}.{c}")),
        ("four-segments", format!("{eddsa}.{s}")),
        ("five-segments-jwe", format!("{h}.{c}.{s}.{s}.{s}")),
        ("one-segment", h.clone()),
        ("empty", String::new()),
        ("dots", "..".into()),
        ("trailing-space", format!("{eddsa} ")),
        ("trailing-newline", format!("{eddsa}\n")),
        ("bearer-prefixed", format!("Bearer {eddsa}")),
        ("too-long", format!("{eddsa}{}", "A".repeat(8 * 1024))),
    ];
    seeds.extend(more.into_iter().map(|(n, t)| (n.to_owned(), t)));
    let seeds: Vec<(&str, Vec<u8>)> = seeds
        .iter()
        .map(|(n, t)| (n.as_str(), t.clone().into_bytes()))
        .collect();
    write_all(dir, &seeds);
}

fn access_token_mutate(dir: &Path) {
    // Small pseudo-random byte strings: the target reads them as choices, so any bytes do.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state.to_le_bytes()[0]
    };
    let names: Vec<String> = (0..32).map(|i| format!("{i:02}")).collect();
    let seeds: Vec<(&str, Vec<u8>)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let len = 8 + (i * 7) % 57;
            let mut bytes: Vec<u8> = (0..len).map(|_| next()).collect();
            // First byte: which token (i mod 4); then an op count and an op.
            bytes[0] = u8::try_from(i % 4).unwrap_or(0);
            (n.as_str(), bytes)
        })
        .collect();
    write_all(dir, &seeds);
}

fn refresh_token(dir: &Path) {
    let sid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0003);
    let t0 = REFRESH_KEY.first(sid, [7; 32]);
    let t1 = REFRESH_KEY.successor(&t0);
    let t2 = REFRESH_KEY.successor(&t1);
    let wire = t0.encode();
    let mut flipped = wire.clone().into_bytes();
    flipped[90] = if flipped[90] == b'A' { b'B' } else { b'A' };
    let other = RefreshKey::new(&[0x43; 32]).first(sid, [7; 32]).encode();
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("gen0", wire.clone().into_bytes()),
        ("gen1", t1.encode().into_bytes()),
        ("gen2", t2.encode().into_bytes()),
        ("other-deployment", other.into_bytes()),
        ("tag-flipped", flipped),
        ("padded", format!("{wire}==").into_bytes()),
        (
            "std-alphabet",
            wire.replace('-', "+").replace('_', "/").into_bytes(),
        ),
        ("short", wire.as_bytes()[..95].to_vec()),
        ("long", format!("{wire}A").into_bytes()),
        ("trailing-space", format!("{} ", &wire[..95]).into_bytes()),
        ("spaces", " ".repeat(96).into_bytes()),
        ("all-a", "A".repeat(96).into_bytes()),
        ("empty", Vec::new()),
        ("access-token", TOKENS[0].clone().into_bytes()),
    ];
    write_all(dir, &seeds);
}

fn request_body(dir: &Path) {
    // First byte: bits 0–1 route (0 refresh, 1 logout, 2 register, 3 login), bits 2–3 content
    // type (0 json, 1 none, 2 text/plain, 3 json with charset), 0x10 cookie (bytes before the
    // first NUL), 0x20 allowed Origin, 0x40 `Origin: null`, 0x80 `Sec-Fetch-Site: cross-site`.
    const REFRESH: u8 = 0;
    const LOGOUT: u8 = 1;
    const REGISTER: u8 = 2;
    const LOGIN: u8 = 3;
    const NO_CT: u8 = 1 << 2;
    const TEXT: u8 = 2 << 2;
    const COOKIE: u8 = 0x10;
    const ORIGIN: u8 = 0x20;
    const NULL_ORIGIN: u8 = 0x40;
    const CROSS: u8 = 0x80;
    let token = REFRESH_KEY.first(Uuid::from_u128(1), [9; 32]).encode();
    let seed = |b: u8, body: &str| {
        let mut v = vec![b];
        v.extend_from_slice(body.as_bytes());
        v
    };
    let body_token = format!("{{\"refresh_token\":\"{token}\"}}");
    let cookie = |b: u8, c: &str, body: &str| seed(b | COOKIE, &format!("{c}\0{body}"));
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("refresh-empty", seed(NO_CT, "")),
        ("refresh-empty-object", seed(REFRESH, "{}")),
        (
            "refresh-null-token",
            seed(REFRESH, r#"{"refresh_token":null}"#),
        ),
        (
            "refresh-empty-token",
            seed(REFRESH, r#"{"refresh_token":""}"#),
        ),
        ("refresh-foreign-token", seed(REFRESH, &body_token)),
        (
            "refresh-number-token",
            seed(REFRESH, r#"{"refresh_token":123}"#),
        ),
        (
            "refresh-duplicate",
            seed(REFRESH, r#"{"refresh_token":"a","refresh_token":"b"}"#),
        ),
        (
            "refresh-lone-surrogate",
            seed(REFRESH, r#"{"refresh_token":"\ud800"}"#),
        ),
        ("refresh-array", seed(REFRESH, "[]")),
        // serde reads structs from arrays too: the router must refuse these as it reads them.
        ("refresh-positional", seed(REFRESH, r#"["x"]"#)),
        ("logout-positional", seed(LOGOUT, "[null]")),
        ("register-positional", seed(REGISTER, r#"["alice","correct horse"]"#)),
        ("refresh-null", seed(REFRESH, "null")),
        ("refresh-string", seed(REFRESH, "\"x\"")),
        ("refresh-deep", seed(REFRESH, &"[".repeat(300))),
        ("refresh-trailing", seed(REFRESH, "{} {}")),
        ("refresh-bom", seed(REFRESH, "\u{feff}{}")),
        ("refresh-text-plain", seed(TEXT, "refresh_token=abc")),
        ("refresh-charset", seed(3 << 2, &body_token)),
        (
            "refresh-too-large",
            seed(
                REFRESH,
                &format!("{{\"refresh_token\":\"{}\"}}", "a".repeat(17 * 1024)),
            ),
        ),
        (
            "refresh-cookie",
            cookie(NO_CT, &format!("__Secure-tessera_refresh={token}"), ""),
        ),
        (
            "refresh-cookie-and-body",
            cookie(
                REFRESH,
                &format!("__Secure-tessera_refresh={token}"),
                &body_token,
            ),
        ),
        (
            "refresh-two-cookies",
            cookie(
                NO_CT,
                "__Secure-tessera_refresh=a; __Secure-tessera_refresh=b",
                "",
            ),
        ),
        (
            "refresh-cookie-origin",
            cookie(NO_CT | ORIGIN, "__Secure-tessera_refresh=a", ""),
        ),
        (
            "refresh-cookie-null-origin",
            cookie(NO_CT | NULL_ORIGIN, "__Secure-tessera_refresh=a", ""),
        ),
        (
            "refresh-cookie-cross-site",
            cookie(NO_CT | CROSS, "__Secure-tessera_refresh=a", ""),
        ),
        (
            "refresh-cookie-form",
            cookie(TEXT, "__Secure-tessera_refresh=a", "x=1"),
        ),
        (
            "refresh-cookie-insecure-name",
            cookie(NO_CT, "tessera_refresh=a", ""),
        ),
        ("logout-empty", seed(LOGOUT | NO_CT, "")),
        ("logout-object", seed(LOGOUT, "{}")),
        ("logout-foreign-token", seed(LOGOUT, &body_token)),
        (
            "logout-bad-type",
            seed(LOGOUT, r#"{"refresh_token":{"a":1}}"#),
        ),
        (
            "logout-cookie",
            cookie(
                LOGOUT | NO_CT,
                &format!("__Secure-tessera_refresh={token}"),
                "",
            ),
        ),
        (
            "logout-cookie-cross-site",
            cookie(LOGOUT | NO_CT | CROSS, "__Secure-tessera_refresh=a", ""),
        ),
        (
            "register-valid",
            seed(
                REGISTER,
                r#"{"username":"alice","password":"correct horse"}"#,
            ),
        ),
        (
            "register-delivery",
            seed(
                REGISTER,
                r#"{"username":"alice","password":"correct horse","delivery":"body"}"#,
            ),
        ),
        (
            "register-bad-delivery",
            seed(
                REGISTER,
                r#"{"username":"alice","password":"correct horse","delivery":"smoke"}"#,
            ),
        ),
        (
            "register-bad-username",
            seed(REGISTER, r#"{"username":"a b","password":"correct horse"}"#),
        ),
        (
            "register-number",
            seed(REGISTER, r#"{"username":1,"password":2}"#),
        ),
        (
            "register-missing-password",
            seed(REGISTER, r#"{"username":"alice"}"#),
        ),
        ("register-empty", seed(REGISTER | NO_CT, "")),
        (
            "register-unicode",
            seed(
                REGISTER,
                r#"{"username":"\u0000lice","password":"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"}"#,
            ),
        ),
        ("login-no-password", seed(LOGIN, r#"{"username":"alice"}"#)),
        (
            "login-no-username",
            seed(LOGIN, r#"{"password":"correct horse"}"#),
        ),
        ("login-array", seed(LOGIN, r#"["alice","correct horse"]"#)),
        ("login-empty", seed(LOGIN | NO_CT, "")),
        ("login-garbage", seed(LOGIN, "{\"user")),
        ("login-text-plain", seed(LOGIN | TEXT, "hello")),
    ];
    write_all(dir, &seeds);
}

//! Structured attacks on genuine access tokens: the input picks a token (one per algorithm), a
//! verification time, and a few mutations — byte edits, segment swaps across algorithms,
//! rewritten headers (`alg: none`, another `alg`, `crit`, `jku`/`jwk`/`x5u`/`x5c`, duplicate
//! members, another `kid` or `typ`), rewritten claims (wrong JSON types, duplicates), other
//! base64 spellings (padding, the standard alphabet), the ES256 high-S twin, extra or missing
//! segments, and HS256 signatures keyed with the public keys (key confusion).
//!
//! Oracles: `verify` never panics; whatever it accepts is byte-identical to a genuine token
//! and carries the original claims; and a genuine token is accepted exactly when the
//! time is inside its validity (`nbf − leeway ≤ now < exp + leeway`).
#![no_main]

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tessera_fuzz::{
    ALGS, EXPECT, LEEWAY_SECS, NOW_SECS, PUBLIC_MATERIAL, TOKENS, at, claims, kid, low_s,
};

const ALG_NAMES: &[&str] = &[
    "none", "None", "NONE", "nOnE", "", "EdDSA", "ES256", "RS256", "HS256", "PS256", "ES384",
    "HS512", "Ed25519", "eddsa",
];
const TYP_NAMES: &[&str] = &[
    "at+jwt",
    "JWT",
    "at+JWT",
    "AT+JWT",
    "application/at+jwt",
    "jwt",
    "",
    " at+jwt",
];
const INJECTED_MEMBERS: &[&str] = &[
    "crit", "jku", "jwk", "x5u", "x5c", "x5t", "cty", "b64", "zip",
];
const CLAIM_NAMES: &[&str] = &[
    "iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "username",
];

fn pick<'a, T>(u: &mut Unstructured<'_>, items: &'a [T]) -> Result<&'a T> {
    u.choose(items)
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

fn encode(u: &mut Unstructured<'_>, bytes: &[u8]) -> Result<String> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 => URL_SAFE.encode(bytes),
        1 => STANDARD.encode(bytes),
        2 => STANDARD_NO_PAD.encode(bytes),
        3 => format!("{} ", URL_SAFE_NO_PAD.encode(bytes)),
        _ => URL_SAFE_NO_PAD.encode(bytes),
    })
}

/// A JSON value of some type, often the wrong one.
fn any_value(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=10u8)? {
        0 => Value::Null,
        1 => json!(u.arbitrary::<bool>()?),
        2 => json!(u.arbitrary::<i64>()?),
        3 => json!(f64::from(u.arbitrary::<i32>()?) + 0.5),
        4 => json!(u.arbitrary::<String>()?),
        5 => json!([u.arbitrary::<String>()?]),
        6 => json!({}),
        7 => json!(NOW_SECS + 10_000),
        8 => json!((NOW_SECS + 900).to_string()),
        9 => json!(EXPECT.issuer),
        _ => json!(EXPECT.audience),
    })
}

/// Rewrites a JSON segment: sets, removes or duplicates members, then re-encodes it in some
/// base64 spelling. Duplicates are spliced in as text (`serde_json` cannot make them).
fn rewrite_json(u: &mut Unstructured<'_>, seg: &str, header: bool) -> Result<String> {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(seg) else {
        return Ok(seg.to_owned());
    };
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(seg.to_owned());
    };
    let mut duplicate = None;
    for _ in 0..u.int_in_range(1..=3u8)? {
        match u.int_in_range(0..=5u8)? {
            0 if header => {
                map.insert("alg".into(), json!(pick(u, ALG_NAMES)?));
            }
            1 if header => {
                map.insert("typ".into(), json!(pick(u, TYP_NAMES)?));
            }
            2 if header => {
                let k = match u.int_in_range(0..=2u8)? {
                    0 => kid(*pick(u, &ALGS)?),
                    1 => u.arbitrary::<String>()?,
                    _ => "../../../dev/null".into(),
                };
                map.insert("kid".into(), json!(k));
            }
            3 if header => {
                let member = *pick(u, INJECTED_MEMBERS)?;
                let value = match member {
                    "crit" => json!([pick(u, &["exp", "b64", "jku"])?]),
                    "jku" | "x5u" => json!("https://attacker.invalid/jwks.json"),
                    "jwk" => json!({"kty": "oct", "k": "AAAA"}),
                    _ => any_value(u)?,
                };
                map.insert(member.into(), value);
            }
            0..=3 => {
                let name = *pick(u, CLAIM_NAMES)?;
                map.insert(name.into(), any_value(u)?);
            }
            4 => {
                let names: Vec<String> = map.keys().cloned().collect();
                if let Ok(name) = u.choose(&names) {
                    map.remove(name);
                }
            }
            _ => {
                let name = if header {
                    *pick(u, &["alg", "kid", "typ", "crit"])?
                } else {
                    *pick(u, CLAIM_NAMES)?
                };
                duplicate = Some((name.to_owned(), any_value(u)?));
            }
        }
    }
    let mut text = serde_json::to_string(&Value::Object(map)).unwrap_or_default();
    if let Some((name, value)) = duplicate
        && text.ends_with('}')
    {
        text.pop();
        let sep = if text.len() > 1 { "," } else { "" };
        text.push_str(&format!("{sep}{}:{value}}}", json!(name)));
    }
    encode(u, text.as_bytes())
}

fn mutate(u: &mut Unstructured<'_>, token: &mut String) -> Result<()> {
    let mut segs = segments(token);
    match u.int_in_range(0..=12u8)? {
        // Byte-level edits of the whole string.
        0..=2 => {
            let mut bytes = token.clone().into_bytes();
            let pos = u.int_in_range(0..=bytes.len())?;
            match u.int_in_range(0..=2u8)? {
                0 if pos < bytes.len() => bytes[pos] = u.arbitrary()?,
                1 => {
                    let len = u.int_in_range(0..=bytes.len() - pos)?;
                    bytes.drain(pos..pos + len);
                }
                _ => {
                    let insert: Vec<u8> = u.arbitrary()?;
                    bytes.splice(pos..pos, insert);
                }
            }
            *token = String::from_utf8_lossy(&bytes).into_owned();
            return Ok(());
        }
        // A segment replaced by arbitrary text.
        3 => {
            let i = u.choose_index(segs.len())?;
            segs[i] = u.arbitrary()?;
        }
        // A segment borrowed from a genuine token of another algorithm.
        4 => {
            let other = segments(pick(u, &TOKENS)?);
            let i = u.choose_index(segs.len().min(other.len()))?;
            segs[i].clone_from(&other[i]);
        }
        // Header rewritten.
        5..=6 => segs[0] = rewrite_json(u, &segs[0], true)?,
        // Claims rewritten.
        7 if segs.len() > 1 => segs[1] = rewrite_json(u, &segs[1], false)?,
        // The same bytes, spelled otherwise.
        8 => {
            let i = u.choose_index(segs.len())?;
            if let Ok(bytes) = URL_SAFE_NO_PAD.decode(&segs[i]) {
                segs[i] = encode(u, &bytes)?;
            }
        }
        // The ECDSA twin: s → n − s.
        9 => {
            if let Some(sig) = segs.get_mut(2)
                && let Ok(mut raw) = URL_SAFE_NO_PAD.decode(&*sig)
            {
                low_s::flip(&mut raw);
                *sig = URL_SAFE_NO_PAD.encode(raw);
            }
        }
        // Key confusion: HS256 keyed with a public key, the header naming any kid.
        10 => {
            let alg = *pick(u, &["HS256", "none", "RS256", "ES256", "EdDSA"])?;
            let header = json!({"alg": alg, "kid": kid(*pick(u, &ALGS)?), "typ": "at+jwt"});
            segs[0] = URL_SAFE_NO_PAD.encode(header.to_string());
            let secret = pick(u, &PUBLIC_MATERIAL)?;
            let signed = format!("{}.{}", segs[0], segs.get(1).map_or("", |s| s));
            let tag = hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, secret),
                signed.as_bytes(),
            );
            let sig = if u.arbitrary()? {
                URL_SAFE_NO_PAD.encode(tag)
            } else {
                String::new()
            };
            segs.truncate(2);
            segs.push(sig);
        }
        // Segments added, dropped or duplicated.
        11 => match u.int_in_range(0..=3u8)? {
            0 => segs.push(String::new()),
            1 => segs.push(segs[segs.len() - 1].clone()),
            2 => {
                segs.pop();
            }
            _ => segs.insert(0, segs[0].clone()),
        },
        // Whitespace and separators around it.
        _ => {
            let s = *pick(u, &[" ", "\n", "\t", ".", "\0", "\u{feff}"])?;
            *token = if u.arbitrary()? {
                format!("{s}{token}")
            } else {
                format!("{token}{s}")
            };
            return Ok(());
        }
    }
    *token = segs.join(".");
    Ok(())
}

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let which = u.choose_index(TOKENS.len())?;
    let original = &TOKENS[which];
    // Mostly the fixed instant; sometimes around the edges of the validity window.
    let now_secs =
        NOW_SECS + i64::from(u.int_in_range(-20i16..=940)?) * i64::from(u.arbitrary::<bool>()?);
    let mut token = original.clone();
    for _ in 0..u.int_in_range(0..=4u8)? {
        mutate(&mut u, &mut token)?;
    }
    let result = tessera_fuzz::verify(&token, at(now_secs));
    // Segments borrowed from the other genuine tokens can add up to one of them.
    let genuine = TOKENS.contains(&token);
    if let Ok(got) = &result {
        assert!(
            genuine,
            "accepted a token that is not byte-identical to an issued one: {token:?} (from {original:?})"
        );
        assert_eq!(got, &claims());
    }
    if genuine {
        let leeway = i64::try_from(LEEWAY_SECS).unwrap_or(0);
        let c = claims();
        let in_window = now_secs + leeway >= c.nbf && now_secs - leeway < c.exp;
        assert_eq!(
            result.is_ok(),
            in_window,
            "a genuine token at now={now_secs}: {result:?}"
        );
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});

// Verifies a Tessera access token with `jose` (an independent JOSE implementation) against the
// issuer's live JWKS: signature with the expected algorithm only, `iss`, `aud`, `typ: at+jwt`,
// the RFC 9068 claims. Then checks that a tampered token and a wrong audience are refused.
//
//   node interop/verify.mjs ISSUER ACCESS_TOKEN [ALG=EdDSA] [AUDIENCE=ISSUER]
//
// Exits non-zero on any failure.
import { createRemoteJWKSet, jwtVerify } from "jose";

const [issuer, token, alg = "EdDSA", audience = issuer] = process.argv.slice(2);
if (!issuer || !token) {
  console.error("usage: node verify.mjs ISSUER ACCESS_TOKEN [ALG] [AUDIENCE]");
  process.exit(2);
}

const jwks = createRemoteJWKSet(new URL(`${issuer.replace(/\/$/, "")}/.well-known/jwks.json`));
const options = {
  issuer,
  audience,
  typ: "at+jwt",
  algorithms: [alg],
  requiredClaims: ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid"],
};

const { payload, protectedHeader } = await jwtVerify(token, jwks, options);
if (protectedHeader.alg !== alg) throw new Error(`alg ${protectedHeader.alg}, expected ${alg}`);
if (typeof payload.username !== "string") throw new Error("no username claim");

async function mustFail(what, candidate, opts) {
  try {
    await jwtVerify(candidate, jwks, opts);
  } catch {
    return;
  }
  throw new Error(`jose accepted ${what}`);
}
const [head, body, sig] = token.split(".");
const flipped = (sig[5] === "A" ? "B" : "A");
await mustFail("a tampered signature", `${head}.${body}.${sig.slice(0, 5)}${flipped}${sig.slice(6)}`, options);
await mustFail("a wrong audience", token, { ...options, audience: "https://someone-else.example" });
await mustFail("a wrong issuer", token, { ...options, issuer: "https://someone-else.example" });

console.log(`jose: ${alg} token of ${payload.username} (kid ${protectedHeader.kid}) verified; tampering refused`);

// DPoP (RFC 9449) interop against a live `tessera serve`: proofs made by the `dpop` package
// (panva) bind a login and call `/auth/me`; oauth4webapi's own DPoP support refreshes the bound
// session at the token endpoint and calls a protected resource; another key's proof changes
// nothing. With DPOP_NONCE=1 the server demands nonces: both libraries follow `DPoP-Nonce`.
//
// Keys are ES256: both libraries write `alg: "Ed25519"` (RFC 9864) for Ed25519 keys, which
// Tessera does not take (it accepts `EdDSA`).
//
// Environment: TESSERA_ISSUER, PUBLIC_CLIENT_ID, TESSERA_USER, TESSERA_PASSWORD, and DPOP_NONCE
// (optional). Exits non-zero on the first failure.
import assert from "node:assert/strict";
import * as DPoP from "dpop";
import * as oauth from "oauth4webapi";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const issuer = new URL(env("TESSERA_ISSUER"));
const nonces = process.env.DPOP_NONCE === "1";
const insecure = { [oauth.allowInsecureRequests]: true }; // a local plain-HTTP test server
const client = { client_id: env("PUBLIC_CLIENT_ID") };
const url = (path) => new URL(path, issuer).href;

const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { ...insecure, algorithm: "oauth2" }),
);
assert.deepEqual(as.dpop_signing_alg_values_supported, ["ES256", "EdDSA"]);

const keypair = await DPoP.generateKeyPair("ES256");
const login = async (nonce) =>
  fetch(url("/auth/login"), {
    method: "POST",
    headers: {
      "content-type": "application/json",
      dpop: await DPoP.generateProof(keypair, url("/auth/login"), "POST", nonce),
    },
    body: JSON.stringify({
      username: env("TESSERA_USER"),
      password: env("TESSERA_PASSWORD"),
      delivery: "body",
      client_id: client.client_id,
    }),
  });
let response = await login();
if (nonces) {
  assert.equal(response.status, 400);
  assert.equal((await response.json()).error, "use_dpop_nonce");
  const nonce = response.headers.get("dpop-nonce");
  assert.ok(nonce, "DPoP-Nonce with use_dpop_nonce");
  response = await login(nonce);
}
assert.equal(response.status, 200);
const first = await response.json();
assert.equal(first.token_type, "DPoP");
console.log("dpop package: login bound");

const me = async (token, scheme, proof) => {
  const headers = { authorization: `${scheme} ${token}` };
  if (proof) headers.dpop = proof;
  return fetch(url("/auth/me"), { headers });
};
const proofFor = (token) => DPoP.generateProof(keypair, url("/auth/me"), "GET", undefined, token);
assert.equal((await me(first.access_token, "DPoP", await proofFor(first.access_token))).status, 200);
const bearer = await me(first.access_token, "Bearer");
assert.equal(bearer.status, 401);
assert.match(bearer.headers.get("www-authenticate"), /^DPoP error="invalid_token"/);
console.log("dpop package: /auth/me with a proof, refused as Bearer");

// oauth4webapi, with the same key: its DPoP handle signs the token request (and follows
// DPoP-Nonce: a use_dpop_nonce answer is retried once with the nonce it cached).
const withRetry = async (request) => {
  try {
    return await request();
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    return request();
  }
};
const handle = oauth.DPoP(client, keypair);
const refresh = (token, dpop) => async () =>
  oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, oauth.None(), token, {
      ...insecure,
      DPoP: dpop,
    }),
  );
const renewed = await withRetry(refresh(first.refresh_token, handle));
assert.equal(renewed.token_type, "dpop");
console.log("oauth4webapi: refresh with DPoP");

// Another key: refused, the token not consumed.
const thief = oauth.DPoP(client, await DPoP.generateKeyPair("ES256"));
await assert.rejects(withRetry(refresh(renewed.refresh_token, thief)), (err) => {
  assert.ok(err instanceof oauth.ResponseBodyError, String(err));
  assert.equal(err.error, "invalid_grant");
  assert.equal(err.cause.reason, "dpop_mismatch");
  return true;
});
const again = await withRetry(refresh(renewed.refresh_token, handle));
assert.equal(again.token_type, "dpop");
console.log("oauth4webapi: another key refused, the rightful key still refreshes");

const resource = await oauth.protectedResourceRequest(
  again.access_token,
  "GET",
  new URL(url("/auth/me")),
  new Headers(),
  null,
  { ...insecure, DPoP: handle },
);
assert.equal(resource.status, 200);
assert.equal((await resource.json()).session_id, first.session_id);
console.log("oauth4webapi: protected resource request with DPoP");
console.log(`dpop interop${nonces ? " (nonces)" : ""}: all green`);

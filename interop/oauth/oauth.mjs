// A stock OAuth 2.0 client, oauth4webapi, against a live `tessera serve`: discovery from the
// RFC 8414 metadata, the refresh-token grant (public client, `none`), revocation, and
// introspection by a confidential client (client_secret_basic and client_secret_post). Every
// step goes through oauth4webapi's own request and response processing, which checks the
// metadata's issuer, content types, status codes and response shapes.
//
// Environment: TESSERA_ISSUER, PUBLIC_CLIENT_ID, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_SECRET,
// TESSERA_USER, TESSERA_PASSWORD. Exits non-zero on the first failure.
import assert from "node:assert/strict";
import * as oauth from "oauth4webapi";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const issuer = new URL(env("TESSERA_ISSUER"));
const insecure = { [oauth.allowInsecureRequests]: true }; // a local plain-HTTP test server
const publicClient = { client_id: env("PUBLIC_CLIENT_ID") };
const resourceServer = { client_id: env("CONFIDENTIAL_CLIENT_ID") };
const secret = env("CONFIDENTIAL_SECRET");

const as = await oauth.processDiscoveryResponse(
  issuer,
  // RFC 8414 metadata, not OpenID Connect discovery.
  await oauth.discoveryRequest(issuer, { ...insecure, algorithm: "oauth2" }),
);
assert.deepEqual(as.grant_types_supported, ["refresh_token"]);
console.log("discovery: ok", as.token_endpoint);

// Tessera's own login starts the session, for the public client.
const login = await fetch(new URL("/auth/login", issuer), {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({
    username: env("TESSERA_USER"),
    password: env("TESSERA_PASSWORD"),
    delivery: "body",
    client_id: publicClient.client_id,
  }),
});
assert.equal(login.status, 200);
const first = await login.json();

const refresh = async (token) =>
  oauth.processRefreshTokenResponse(
    as,
    publicClient,
    await oauth.refreshTokenGrantRequest(as, publicClient, oauth.None(), token, insecure),
  );
const renewed = await refresh(first.refresh_token);
assert.equal(renewed.token_type.toLowerCase(), "bearer");
assert.notEqual(renewed.refresh_token, first.refresh_token);
assert.ok(renewed.expires_in > 0);
console.log("refresh: ok");

// Reuse outside the grace window is refused as invalid_grant by the processing code too; within
// it (now) the same successor comes back.
const replay = await refresh(first.refresh_token);
assert.equal(replay.refresh_token, renewed.refresh_token);
console.log("grace replay: ok");

for (const auth of [oauth.ClientSecretBasic(secret), oauth.ClientSecretPost(secret)]) {
  const seen = await oauth.processIntrospectionResponse(
    as,
    resourceServer,
    await oauth.introspectionRequest(as, resourceServer, auth, renewed.access_token, insecure),
  );
  assert.equal(seen.active, true);
  assert.equal(seen.client_id, publicClient.client_id);
  assert.equal(seen.token_type, "Bearer");
  const rt = await oauth.processIntrospectionResponse(
    as,
    resourceServer,
    await oauth.introspectionRequest(as, resourceServer, auth, renewed.refresh_token, insecure),
  );
  assert.equal(rt.active, true);
  assert.equal(rt.token_type, "refresh_token");
}
console.log("introspection: ok");

await oauth.processRevocationResponse(
  await oauth.revocationRequest(as, publicClient, oauth.None(), renewed.refresh_token, insecure),
);
const after = await oauth.processIntrospectionResponse(
  as,
  resourceServer,
  await oauth.introspectionRequest(
    as,
    resourceServer,
    oauth.ClientSecretBasic(secret),
    renewed.access_token,
    insecure,
  ),
);
assert.equal(after.active, false, "the revoked session's access token is inactive");
await assert.rejects(refresh(renewed.refresh_token), (err) => {
  assert.ok(err instanceof oauth.ResponseBodyError, String(err));
  assert.equal(err.error, "invalid_grant");
  assert.equal(err.cause.reason, "revoked");
  return true;
});
console.log("revocation: ok");
console.log("oauth4webapi: all green");

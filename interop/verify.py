"""Verifies a Tessera access token with PyJWT (+ cryptography), an independent JOSE
implementation, against the issuer's live JWKS: signature with the expected algorithm only,
`iss`, `aud`, `typ: at+jwt`, the RFC 9068 claims. Then checks that a tampered token and a wrong
audience are refused.

    python3 interop/verify.py ISSUER ACCESS_TOKEN [ALG=EdDSA] [AUDIENCE=ISSUER]

Exits non-zero on any failure.
"""

import json
import sys
import urllib.request

import jwt


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: python3 verify.py ISSUER ACCESS_TOKEN [ALG] [AUDIENCE]")
    issuer, token = sys.argv[1], sys.argv[2]
    alg = sys.argv[3] if len(sys.argv) > 3 else "EdDSA"
    audience = sys.argv[4] if len(sys.argv) > 4 else issuer

    with urllib.request.urlopen(issuer.rstrip("/") + "/.well-known/jwks.json", timeout=10) as r:
        jwks = jwt.PyJWKSet.from_dict(json.load(r))

    header = jwt.get_unverified_header(token)
    if header.get("typ") != "at+jwt":
        sys.exit(f"typ is {header.get('typ')!r}, expected 'at+jwt'")
    if header.get("alg") != alg:
        sys.exit(f"alg is {header.get('alg')!r}, expected {alg!r}")
    keys = [k for k in jwks.keys if k.key_id == header.get("kid")]
    if len(keys) != 1:
        sys.exit(f"kid {header.get('kid')!r} is not exactly once in the JWKS")
    key = keys[0]

    def decode(candidate: str, aud: str = audience, iss: str = issuer) -> dict:
        return jwt.decode(
            candidate,
            key=key.key,
            algorithms=[alg],
            audience=aud,
            issuer=iss,
            options={"require": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti"]},
        )

    claims = decode(token)
    if not isinstance(claims.get("sid"), str) or not isinstance(claims.get("username"), str):
        sys.exit("sid or username claim missing")

    head, body, sig = token.split(".")
    flipped = "B" if sig[5] == "A" else "A"
    for what, attempt in [
        ("a tampered signature", lambda: decode(f"{head}.{body}.{sig[:5]}{flipped}{sig[6:]}")),
        ("a wrong audience", lambda: decode(token, aud="https://someone-else.example")),
        ("a wrong issuer", lambda: decode(token, iss="https://someone-else.example")),
    ]:
        try:
            attempt()
        except jwt.InvalidTokenError:
            continue
        sys.exit(f"PyJWT accepted {what}")

    print(
        f"PyJWT {jwt.__version__}: {alg} token of {claims['username']} "
        f"(kid {header['kid']}) verified; tampering refused"
    )


if __name__ == "__main__":
    main()

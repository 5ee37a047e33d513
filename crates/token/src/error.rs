//! Failures, each a named variant: why a token was refused ([`InvalidToken`]) apart from why a
//! key or a key set could not be used ([`Error`]).

/// Why an access token was refused. Every check has its own variant, so a caller can count or
/// test them apart; `Display` is the description a client may be shown (ASCII, no quotes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidToken {
    /// More than one `Authorization` header.
    #[error("more than one Authorization header")]
    SeveralAuthorizationHeaders,
    /// An `Authorization` header that is not text.
    #[error("malformed Authorization header")]
    MalformedAuthorization,
    /// `Bearer` with no token, or with whitespace inside it.
    #[error("malformed Bearer token")]
    MalformedBearer,
    /// Longer than any token Tessera issues.
    #[error("token is too long")]
    TooLong,
    /// Not three dot-separated segments.
    #[error("token is not a JWS in compact form (three segments)")]
    NotCompact,
    /// Padding, `+`/`/`, whitespace or stray trailing bits in a segment.
    #[error("token is not canonical base64url")]
    NotBase64url,
    /// The header is not a JSON object with `alg`, `kid` and `typ` (each once).
    #[error("token header is malformed")]
    MalformedHeader,
    /// The header names critical extensions (none is understood).
    #[error("token header has a `crit` member")]
    CriticalHeader,
    /// `typ` is not `at+jwt`.
    #[error("token `typ` is not at+jwt")]
    WrongType,
    /// No key of this issuer has the token's `kid`.
    #[error("token `kid` is not one of ours")]
    UnknownKey,
    /// The header's `alg` is not the one its key is pinned to.
    #[error("token `alg` does not match its key")]
    AlgorithmMismatch,
    /// An ES256 signature in its high-S twin form.
    #[error("token signature is not in low-S form")]
    HighS,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
    /// A required claim is missing or of the wrong JSON type.
    #[error("token claims are missing or of the wrong type")]
    MalformedClaims,
    /// `iss` is not the expected issuer.
    #[error("token `iss` is not this issuer")]
    WrongIssuer,
    /// `aud` is not the expected audience.
    #[error("token `aud` is not this audience")]
    WrongAudience,
    /// `exp` has passed (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// `exp` is further away than the issuer's token lifetime allows.
    #[error("token claims a longer life than this issuer grants")]
    TooLongLived,
    /// The token is genuine but its session has ended (logout, revocation, expiry).
    #[error("the token's session has ended")]
    SessionEnded,
    /// A token bound to a DPoP key was sent as `Bearer` (RFC 9449 §7.1): it is accepted only as
    /// `Authorization: DPoP` with a proof by that key.
    #[error("this token is bound to a DPoP key; send it as Authorization: DPoP with a proof")]
    DpopBound,
    /// `Authorization: DPoP` with a token that is bound to no key.
    #[error("this token is not bound to a DPoP key; send it as Authorization: Bearer")]
    NotDpopBound,
    /// A shared secret (not an access token) was expected and this is not it.
    #[error("this is not the revocations token")]
    NotRevocationsToken,
}

/// Why a key, a key set or a signature could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A token was refused.
    #[error(transparent)]
    InvalidToken(#[from] InvalidToken),
    /// A key could not be parsed for its algorithm.
    #[error("unusable key: {0}")]
    Key(String),
    /// The crypto library failed to sign (it does not for well-formed keys).
    #[error("signing failed")]
    Signing,
    /// A JWK Set could not be read.
    #[error("{0}")]
    JwkSet(String),
    /// A token could not be encoded.
    #[error("encoding a token failed")]
    Encoding(#[source] serde_json::Error),
}

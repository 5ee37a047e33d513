//! [`Settings`]: everything that shapes tokens and sessions, with the documented defaults.

use std::time::Duration;

use tessera_token::SigningAlg;

use crate::rules::Lifetimes;
use crate::throttle::ThrottlePolicy;

/// Everything that shapes tokens and sessions. [`Settings::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `iss` of access tokens.
    pub issuer: String,
    /// `aud` of access tokens. Defaults to the issuer.
    pub audience: String,
    /// Access-token lifetime. Defaults to [`Settings::DEFAULT_ACCESS_TTL`].
    pub access_ttl: Duration,
    /// Idle timeout, absolute lifetime and reuse grace of sessions. Default to
    /// [`Settings::DEFAULT_LIFETIMES`].
    pub lifetimes: Lifetimes,
    /// Clock-skew leeway for `exp`/`nbf`. Defaults to [`Settings::DEFAULT_CLOCK_LEEWAY`].
    pub clock_leeway: Duration,
    /// Algorithm for new signing keys. Defaults to EdDSA.
    pub signing_alg: SigningAlg,
    /// Whether anyone may register (`true`, the default), or only the CLI adds users.
    pub registration_open: bool,
    /// Login throttling limits.
    pub throttle: ThrottlePolicy,
    /// How long a password-reset token stays usable. Defaults to
    /// [`Settings::DEFAULT_PASSWORD_RESET_TTL`].
    pub password_reset_ttl: Duration,
    /// Whether sessions may be bound to a DPoP key (RFC 9449). Defaults to
    /// [`DpopPolicy::Allowed`].
    pub dpop: DpopPolicy,
    /// Whether DPoP proofs at login, refresh and the token endpoint must carry a current server
    /// nonce (RFC 9449 §8). Defaults to `false`.
    pub dpop_nonce: bool,
}

/// Whether a session may, must or cannot be bound to a DPoP key (`TESSERA_DPOP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DpopPolicy {
    /// The `DPoP` header is ignored: no session is bound.
    Off,
    /// A login or token request with a proof binds its session.
    Allowed,
    /// Every login must carry a proof.
    Required,
}

impl DpopPolicy {
    /// The setting's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Allowed => "allowed",
            Self::Required => "required",
        }
    }

    /// The policy with this setting value.
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Off, Self::Allowed, Self::Required]
            .into_iter()
            .find(|p| p.as_str() == value)
    }
}

impl Settings {
    /// 15 minutes.
    pub const DEFAULT_ACCESS_TTL: Duration = tessera_token::access_token::DEFAULT_LIFETIME;
    /// 7 days idle, 30 days absolute, 10 s of reuse grace.
    pub const DEFAULT_LIFETIMES: Lifetimes = Lifetimes {
        idle: Duration::from_secs(7 * 86_400),
        absolute: Duration::from_secs(30 * 86_400),
        reuse_grace: Duration::from_secs(10),
    };
    /// 5 seconds.
    pub const DEFAULT_CLOCK_LEEWAY: Duration = tessera_token::access_token::DEFAULT_LEEWAY;

    /// One hour.
    pub const DEFAULT_PASSWORD_RESET_TTL: Duration = Duration::from_secs(3600);

    /// The defaults for an issuer (the audience defaults to the issuer).
    pub fn new(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        Self {
            audience: issuer.clone(),
            issuer,
            access_ttl: Self::DEFAULT_ACCESS_TTL,
            lifetimes: Self::DEFAULT_LIFETIMES,
            clock_leeway: Self::DEFAULT_CLOCK_LEEWAY,
            signing_alg: SigningAlg::EdDSA,
            registration_open: true,
            throttle: ThrottlePolicy::default(),
            password_reset_ttl: Self::DEFAULT_PASSWORD_RESET_TTL,
            dpop: DpopPolicy::Allowed,
            dpop_nonce: false,
        }
    }
}

//! Settings: defaults < TOML file < environment < flags, each checked with an error that names
//! the setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;
use tessera_core::{Kek, Lifetimes, Settings, SigningAlg, format_duration, parse_duration};
use tessera_http::RevocationsToken;

/// Every setting as a flag (with its environment variable). Unset ones fall back to the file,
/// then to the defaults.
#[derive(Args, Debug, Default, Clone)]
pub struct SettingsArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "TESSERA_BIND", global = true)]
    pub bind: Option<String>,
    /// Database URL: sqlite://FILE or postgres://… [default: sqlite://tessera.db]
    #[arg(long, env = "TESSERA_DATABASE_URL", global = true)]
    pub database: Option<String>,
    /// TOML file with settings (keys named like the variables, without TESSERA_, lower case)
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Issuer (`iss`) [default: http://<bind>]
    #[arg(long, env = "TESSERA_ISSUER", global = true)]
    pub issuer: Option<String>,
    /// Audience (`aud`) [default: the issuer]
    #[arg(long, env = "TESSERA_AUDIENCE", global = true)]
    pub audience: Option<String>,
    /// Access-token lifetime [default: 15m]
    #[arg(long, env = "TESSERA_ACCESS_TTL", global = true)]
    pub access_ttl: Option<String>,
    /// Refresh idle timeout [default: 7d]
    #[arg(long, env = "TESSERA_REFRESH_IDLE_TTL", global = true)]
    pub refresh_idle_ttl: Option<String>,
    /// Session absolute lifetime [default: 30d]
    #[arg(long, env = "TESSERA_SESSION_MAX_TTL", global = true)]
    pub session_max_ttl: Option<String>,
    /// Reuse grace window [default: 10s]
    #[arg(long, env = "TESSERA_REUSE_GRACE", global = true)]
    pub reuse_grace: Option<String>,
    /// Clock-skew leeway for exp/nbf [default: 5s]
    #[arg(long, env = "TESSERA_CLOCK_LEEWAY", global = true)]
    pub clock_leeway: Option<String>,
    /// Signing algorithm: EdDSA, ES256, RS256 or HS256 [default: EdDSA]
    #[arg(long, env = "TESSERA_SIGNING_ALG", global = true)]
    pub signing_alg: Option<String>,
    /// Allowed browser origins, comma-separated [default: the issuer's origin]
    #[arg(long, env = "TESSERA_ALLOWED_ORIGINS", global = true)]
    pub allowed_origins: Option<String>,
    /// Self-registration: open or closed [default: open]
    #[arg(long, env = "TESSERA_REGISTRATION", global = true)]
    pub registration: Option<String>,
    /// Secure flag (and __Secure- prefix) of the refresh cookie: true or false [default: true]
    #[arg(long, env = "TESSERA_COOKIE_SECURE", global = true)]
    pub cookie_secure: Option<String>,
    /// Trusted reverse proxies, comma-separated IPs or CIDRs [default: none]
    #[arg(long, env = "TESSERA_TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,
    /// How long ended sessions are kept before the cleanup job deletes them [default: 7d]
    #[arg(long, env = "TESSERA_SESSION_RETENTION", global = true)]
    pub session_retention: Option<String>,
    /// Shared secret (at least 32 characters) that resource services send as a Bearer token to
    /// GET /auth/revocations; unset, the route answers 404. Prefer the variable or the file: a
    /// flag shows in `ps` [default: unset]
    #[arg(
        long,
        env = "TESSERA_REVOCATIONS_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub revocations_token: Option<String>,
    /// Strict-Transport-Security: auto (on, 2 years, when the issuer is https://), off, or a
    /// max-age such as 365d [default: auto]
    #[arg(long, env = "TESSERA_HSTS", global = true)]
    pub hsts: Option<String>,
}

/// The TOML file: the same settings, keyed like the variables without `TESSERA_`, lower case.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    bind: Option<String>,
    database_url: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    access_ttl: Option<String>,
    refresh_idle_ttl: Option<String>,
    session_max_ttl: Option<String>,
    reuse_grace: Option<String>,
    clock_leeway: Option<String>,
    signing_alg: Option<String>,
    allowed_origins: Option<StringOrList>,
    registration: Option<String>,
    cookie_secure: Option<BoolOrString>,
    trusted_proxies: Option<StringOrList>,
    session_retention: Option<String>,
    revocations_token: Option<String>,
    hsts: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    fn joined(self) -> String {
        match self {
            Self::One(s) => s,
            Self::Many(v) => v.join(","),
        }
    }
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum BoolOrString {
    Bool(bool),
    Text(String),
}

/// When to send `Strict-Transport-Security`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hsts {
    /// When the issuer is `https://` (the server is behind TLS), for two years.
    Auto,
    /// Never.
    Off,
    /// Always, with this max-age.
    MaxAge(Duration),
}

/// Fully resolved configuration of a `tessera` process.
#[derive(Debug)]
pub struct Config {
    /// Where to listen.
    pub bind: String,
    /// Database URL.
    pub database_url: String,
    /// Explicit issuer, if any (the default needs the bound address).
    pub issuer: Option<String>,
    /// Explicit audience, if any.
    pub audience: Option<String>,
    /// Explicit allowed origins, if any.
    pub allowed_origins: Option<Vec<String>>,
    /// Core settings, with the issuer still a placeholder until [`Config::settings_for`].
    pub access_ttl: Duration,
    /// Whether the access-token lifetime was set explicitly (so `--demo` leaves it alone).
    pub access_ttl_explicit: bool,
    /// Session lifetimes.
    pub lifetimes: Lifetimes,
    /// Leeway.
    pub clock_leeway: Duration,
    /// New keys' algorithm.
    pub signing_alg: SigningAlg,
    /// Self-registration.
    pub registration_open: bool,
    /// Refresh cookie `Secure`.
    pub cookie_secure: bool,
    /// Trusted proxies.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Retention of ended sessions.
    pub session_retention: Duration,
    /// The shared secret of `GET /auth/revocations` (`None`: the route answers 404).
    pub revocations_token: Option<RevocationsToken>,
    /// HSTS policy.
    pub hsts: Hsts,
    /// Key-encryption key, from `TESSERA_KEY_ENCRYPTION_KEY` only (never a flag: it would show
    /// in `ps`).
    pub kek: Option<Kek>,
}

fn setting<T>(
    name: &str,
    env: &str,
    value: Option<String>,
    default: T,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> anyhow::Result<(T, bool)> {
    match value {
        None => Ok((default, false)),
        Some(v) => parse(&v)
            .map(|t| (t, true))
            .map_err(|e| anyhow::anyhow!("invalid setting {name} ({env}): {e}")),
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err("must be longer than 0s".into()),
        d => Ok(d),
    }
}

fn origin(text: &str) -> Result<String, String> {
    let t = text.trim();
    let rest = t
        .strip_prefix("https://")
        .or_else(|| t.strip_prefix("http://"))
        .ok_or_else(|| format!("`{t}` is not an origin (scheme://host[:port])"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '*']) {
        return Err(format!(
            "`{t}` is not an origin (scheme://host[:port], no path)"
        ));
    }
    Ok(t.to_owned())
}

/// The origin (scheme://host[:port]) of a URL.
pub fn origin_of(url: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let host_end = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |i| scheme_end + i);
    url[..host_end].to_owned()
}

fn url(text: &str) -> Result<String, String> {
    if !(text.starts_with("https://") || text.starts_with("http://")) || text.len() < 9 {
        return Err(format!("`{text}` is not an http(s) URL"));
    }
    Ok(text.to_owned())
}

fn boolean(text: &str) -> Result<bool, String> {
    match text {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("`{text}` is not true or false")),
    }
}

fn proxies(text: &str) -> Result<Vec<ipnet::IpNet>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            ipnet::IpNet::from_str(s)
                .or_else(|_| std::net::IpAddr::from_str(s).map(ipnet::IpNet::from))
                .map_err(|_| format!("`{s}` is not an IP address or CIDR"))
        })
        .collect()
}

fn read_file(path: &Path) -> anyhow::Result<FileSettings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e: toml::de::Error| {
        // `message()` names the key ("unknown field `acess_ttl`…"); `Display` spreads it over
        // several lines with the source excerpt first.
        let at = e
            .span()
            .map(|span| {
                let line_no = text[..span.start].matches('\n').count() + 1;
                let line = text.lines().nth(line_no - 1).unwrap_or_default();
                match line.split_once('=') {
                    Some((key, _)) => format!(" (line {line_no}, setting `{}`)", key.trim()),
                    None => format!(" (line {line_no})"),
                }
            })
            .unwrap_or_default();
        anyhow::anyhow!(
            "invalid config file {}{at}: {}",
            path.display(),
            e.message().replace('\n', " ")
        )
    })
}

impl Config {
    /// Resolves flags/environment (already merged by clap), the file, and the defaults.
    pub fn resolve(args: SettingsArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let pick = |flag: Option<String>, from_file: Option<String>| flag.or(from_file);

        let bind = pick(args.bind, file.bind).unwrap_or_else(|| "127.0.0.1:8080".into());
        if bind.parse::<SocketAddr>().is_err() {
            bail!(
                "invalid setting bind (TESSERA_BIND): `{bind}` is not an address like 127.0.0.1:8080"
            );
        }
        let database_url =
            pick(args.database, file.database_url).unwrap_or_else(|| "sqlite://tessera.db".into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            bail!(
                "invalid setting database (TESSERA_DATABASE_URL): `{database_url}` is neither sqlite://… nor postgres://…"
            );
        }
        let (issuer, _) = setting(
            "issuer",
            "TESSERA_ISSUER",
            pick(args.issuer, file.issuer),
            None,
            |t| url(t).map(Some),
        )?;
        let (audience, _) = setting(
            "audience",
            "TESSERA_AUDIENCE",
            pick(args.audience, file.audience),
            None,
            |t| {
                if t.trim().is_empty() {
                    Err("must not be empty".into())
                } else {
                    Ok(Some(t.to_owned()))
                }
            },
        )?;
        let (access_ttl, access_ttl_explicit) = setting(
            "access_ttl",
            "TESSERA_ACCESS_TTL",
            pick(args.access_ttl, file.access_ttl),
            Duration::from_secs(900),
            positive_duration,
        )?;
        let (idle, _) = setting(
            "refresh_idle_ttl",
            "TESSERA_REFRESH_IDLE_TTL",
            pick(args.refresh_idle_ttl, file.refresh_idle_ttl),
            Duration::from_secs(7 * 86_400),
            positive_duration,
        )?;
        let (absolute, _) = setting(
            "session_max_ttl",
            "TESSERA_SESSION_MAX_TTL",
            pick(args.session_max_ttl, file.session_max_ttl),
            Duration::from_secs(30 * 86_400),
            positive_duration,
        )?;
        let (reuse_grace, _) = setting(
            "reuse_grace",
            "TESSERA_REUSE_GRACE",
            pick(args.reuse_grace, file.reuse_grace),
            Duration::from_secs(10),
            duration,
        )?;
        let (clock_leeway, _) = setting(
            "clock_leeway",
            "TESSERA_CLOCK_LEEWAY",
            pick(args.clock_leeway, file.clock_leeway),
            Duration::from_secs(5),
            duration,
        )?;
        let (signing_alg, _) = setting(
            "signing_alg",
            "TESSERA_SIGNING_ALG",
            pick(args.signing_alg, file.signing_alg),
            SigningAlg::EdDSA,
            SigningAlg::from_str,
        )?;
        let (allowed_origins, _) = setting(
            "allowed_origins",
            "TESSERA_ALLOWED_ORIGINS",
            pick(
                args.allowed_origins,
                file.allowed_origins.map(StringOrList::joined),
            ),
            None,
            |t| {
                let list = t
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(origin)
                    .collect::<Result<Vec<_>, _>>()?;
                if list.is_empty() {
                    Err("must list at least one origin".into())
                } else {
                    Ok(Some(list))
                }
            },
        )?;
        let (registration_open, _) = setting(
            "registration",
            "TESSERA_REGISTRATION",
            pick(args.registration, file.registration),
            true,
            |t| match t {
                "open" => Ok(true),
                "closed" => Ok(false),
                other => Err(format!("`{other}` is not open or closed")),
            },
        )?;
        let file_secure = file.cookie_secure.map(|v| match v {
            BoolOrString::Bool(b) => b.to_string(),
            BoolOrString::Text(t) => t,
        });
        let (cookie_secure, _) = setting(
            "cookie_secure",
            "TESSERA_COOKIE_SECURE",
            pick(args.cookie_secure, file_secure),
            true,
            boolean,
        )?;
        let (trusted_proxies, _) = setting(
            "trusted_proxies",
            "TESSERA_TRUSTED_PROXIES",
            pick(
                args.trusted_proxies,
                file.trusted_proxies.map(StringOrList::joined),
            ),
            Vec::new(),
            proxies,
        )?;
        let (session_retention, _) = setting(
            "session_retention",
            "TESSERA_SESSION_RETENTION",
            pick(args.session_retention, file.session_retention),
            Duration::from_secs(7 * 86_400),
            duration,
        )?;
        let (revocations_token, _) = setting(
            "revocations_token",
            "TESSERA_REVOCATIONS_TOKEN",
            pick(args.revocations_token, file.revocations_token),
            None,
            |t| RevocationsToken::parse(t).map(Some),
        )?;
        let (hsts, _) = setting(
            "hsts",
            "TESSERA_HSTS",
            pick(args.hsts, file.hsts),
            Hsts::Auto,
            |t| match t {
                "auto" => Ok(Hsts::Auto),
                "off" => Ok(Hsts::Off),
                age => positive_duration(age)
                    .map(Hsts::MaxAge)
                    .map_err(|e| format!("not auto, off or a max-age: {e}")),
            },
        )?;
        let kek = match std::env::var("TESSERA_KEY_ENCRYPTION_KEY") {
            Ok(v) if !v.is_empty() => Some(Kek::parse(&v).map_err(|e| {
                anyhow::anyhow!(
                    "invalid setting key_encryption_key (TESSERA_KEY_ENCRYPTION_KEY): {e}"
                )
            })?),
            _ => None,
        };
        Ok(Self {
            bind,
            database_url,
            issuer,
            audience,
            allowed_origins,
            access_ttl,
            access_ttl_explicit,
            lifetimes: Lifetimes {
                idle,
                absolute,
                reuse_grace,
            },
            clock_leeway,
            signing_alg,
            registration_open,
            cookie_secure,
            trusted_proxies,
            session_retention,
            revocations_token,
            hsts,
            kek,
        })
    }

    /// The `Strict-Transport-Security` max-age for a server whose issuer is `issuer`.
    pub fn hsts_for(&self, issuer: &str) -> Option<Duration> {
        match self.hsts {
            Hsts::Auto if issuer.starts_with("https://") => {
                Some(Duration::from_secs(2 * 365 * 86_400))
            }
            Hsts::Auto | Hsts::Off => None,
            Hsts::MaxAge(age) => Some(age),
        }
    }

    /// The issuer: the configured one, or `http://<address actually bound>`.
    pub fn issuer_for(&self, bound: SocketAddr) -> String {
        self.issuer
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
    }

    /// Core settings for a server whose issuer is `issuer`.
    pub fn settings_for(&self, issuer: &str) -> Settings {
        let mut s = Settings::new(issuer);
        if let Some(aud) = &self.audience {
            s.audience = aud.clone();
        }
        s.access_ttl = self.access_ttl;
        s.lifetimes = self.lifetimes;
        s.clock_leeway = self.clock_leeway;
        s.signing_alg = self.signing_alg;
        s.registration_open = self.registration_open;
        s
    }

    /// The origins allowed to use the refresh cookie: configured, or the issuer's.
    pub fn origins_for(&self, issuer: &str) -> Vec<String> {
        self.allowed_origins
            .clone()
            .unwrap_or_else(|| vec![origin_of(issuer)])
    }

    /// A one-line summary for the start-up log.
    pub fn summary(&self) -> String {
        format!(
            "access_ttl={} refresh_idle_ttl={} session_max_ttl={} reuse_grace={} signing_alg={} registration={}",
            format_duration(self.access_ttl),
            format_duration(self.lifetimes.idle),
            format_duration(self.lifetimes.absolute),
            format_duration(self.lifetimes.reuse_grace),
            self.signing_alg,
            if self.registration_open {
                "open"
            } else {
                "closed"
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_specs() {
        let c = Config::resolve(SettingsArgs::default()).unwrap();
        assert_eq!(c.bind, "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://tessera.db");
        assert_eq!(c.access_ttl, Duration::from_secs(900));
        assert_eq!(c.lifetimes.idle, Duration::from_secs(7 * 86_400));
        assert_eq!(c.lifetimes.absolute, Duration::from_secs(30 * 86_400));
        assert_eq!(c.lifetimes.reuse_grace, Duration::from_secs(10));
        assert_eq!(c.clock_leeway, Duration::from_secs(5));
        assert_eq!(c.signing_alg, SigningAlg::EdDSA);
        assert!(c.registration_open && c.cookie_secure && c.trusted_proxies.is_empty());
        let issuer = c.issuer_for("127.0.0.1:8080".parse().unwrap());
        assert_eq!(issuer, "http://127.0.0.1:8080");
        assert_eq!(c.settings_for(&issuer).audience, issuer);
        assert_eq!(
            c.origins_for(&issuer),
            vec!["http://127.0.0.1:8080".to_string()]
        );
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = std::env::temp_dir().join(format!("tessera-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.toml");
        std::fs::write(&path, "access_ttl = \"5m\"\nreuse_grace = \"3s\"\nallowed_origins = [\"https://a.example\", \"https://b.example\"]\ncookie_secure = false\n").unwrap();
        let args = SettingsArgs {
            config: Some(path.clone()),
            access_ttl: Some("1m".into()),
            ..Default::default()
        };
        let c = Config::resolve(args).unwrap();
        assert_eq!(c.access_ttl, Duration::from_secs(60));
        assert_eq!(c.lifetimes.reuse_grace, Duration::from_secs(3));
        assert_eq!(
            c.allowed_origins.unwrap(),
            vec![
                "https://a.example".to_string(),
                "https://b.example".to_string()
            ]
        );
        assert!(!c.cookie_secure);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_value_is_refused_with_the_settings_name() {
        let cases: Vec<(SettingsArgs, &str)> = vec![
            (
                SettingsArgs {
                    access_ttl: Some("15".into()),
                    ..Default::default()
                },
                "TESSERA_ACCESS_TTL",
            ),
            (
                SettingsArgs {
                    access_ttl: Some("0s".into()),
                    ..Default::default()
                },
                "TESSERA_ACCESS_TTL",
            ),
            (
                SettingsArgs {
                    signing_alg: Some("none".into()),
                    ..Default::default()
                },
                "TESSERA_SIGNING_ALG",
            ),
            (
                SettingsArgs {
                    registration: Some("maybe".into()),
                    ..Default::default()
                },
                "TESSERA_REGISTRATION",
            ),
            (
                SettingsArgs {
                    cookie_secure: Some("sure".into()),
                    ..Default::default()
                },
                "TESSERA_COOKIE_SECURE",
            ),
            (
                SettingsArgs {
                    trusted_proxies: Some("10.0.0.0/33".into()),
                    ..Default::default()
                },
                "TESSERA_TRUSTED_PROXIES",
            ),
            (
                SettingsArgs {
                    allowed_origins: Some("https://a.example/path".into()),
                    ..Default::default()
                },
                "TESSERA_ALLOWED_ORIGINS",
            ),
            (
                SettingsArgs {
                    bind: Some("localhost".into()),
                    ..Default::default()
                },
                "TESSERA_BIND",
            ),
            (
                SettingsArgs {
                    database: Some("mysql://x".into()),
                    ..Default::default()
                },
                "TESSERA_DATABASE_URL",
            ),
            (
                SettingsArgs {
                    issuer: Some("auth.example".into()),
                    ..Default::default()
                },
                "TESSERA_ISSUER",
            ),
            (
                SettingsArgs {
                    revocations_token: Some("too-short".into()),
                    ..Default::default()
                },
                "TESSERA_REVOCATIONS_TOKEN",
            ),
        ];
        for (args, name) in cases {
            let err = Config::resolve(args).unwrap_err().to_string();
            assert!(err.contains(name), "{err} should name {name}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn the_revocations_token_is_off_by_default_and_read_from_the_file() {
        assert!(
            Config::resolve(SettingsArgs::default())
                .unwrap()
                .revocations_token
                .is_none()
        );
        let dir = std::env::temp_dir().join(format!("tessera-config-rev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.toml");
        let secret = "0123456789abcdef0123456789abcdef";
        std::fs::write(&path, format!("revocations_token = \"{secret}\"\n")).unwrap();
        let token = Config::resolve(SettingsArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap()
        .revocations_token
        .unwrap();
        assert!(token.matches(secret));
        assert!(!format!("{token:?}").contains(secret), "redacted in Debug");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hsts_follows_the_issuer_unless_told_otherwise() {
        let auto = Config::resolve(SettingsArgs::default()).unwrap();
        assert_eq!(auto.hsts_for("http://127.0.0.1:8080"), None);
        assert_eq!(
            auto.hsts_for("https://auth.example"),
            Some(Duration::from_secs(63_072_000))
        );
        let off = Config::resolve(SettingsArgs {
            hsts: Some("off".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(off.hsts_for("https://auth.example"), None);
        let set = Config::resolve(SettingsArgs {
            hsts: Some("1d".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            set.hsts_for("http://127.0.0.1:8080"),
            Some(Duration::from_secs(86_400))
        );
        let bad = Config::resolve(SettingsArgs {
            hsts: Some("sometimes".into()),
            ..Default::default()
        });
        assert!(bad.unwrap_err().to_string().contains("TESSERA_HSTS"));
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("tessera-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.toml");
        std::fs::write(&path, "acess_ttl = \"5m\"\n").unwrap();
        let err = Config::resolve(SettingsArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("acess_ttl"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Settings: defaults < TOML file < environment < flags, each checked with an error that names
//! the setting.
//!
//! Each setting is one row of the `settings!` list below: its name (the flag), environment
//! variable, type, default, parser (which holds its bounds) and help text. From that row follow
//! its `--flag` with its variable in [`SettingsArgs`], its key in the TOML file, its typed field
//! in [`Config`], its `--help` line, and its row in [`TABLE`] (checked against the README's
//! settings table). Adding a setting is adding a row; using it is reading its `Config` field.
//! Defaults that core also knows (lifetimes, leeway, algorithm, registration) are read from
//! [`Settings::new`] rather than restated.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use tessera_core::events::WebhookSecret;
use tessera_core::{
    DpopPolicy, Kek, Lifetimes, Settings, SigningAlg, format_duration, parse_duration,
};
use tessera_http::{AdminToken, RevocationsToken, origin_of};

/// Expands the list of settings into [`SettingsArgs`], the file's keys, [`Config`], [`TABLE`]
/// and [`Config::resolve`]. A row:
///
/// ```text
/// /// Help text (also the field's documentation)
/// key: Type {
///     flag: name,                    // --name, and the name error messages use
///     env: "TESSERA_KEY",
///     file: StringOrList,            // optional: what the file may hold (default String)
///     default: "15m",                // a value, parsed like any other, shown in --help
///     unset: "the issuer",           // or: none, Type::default(), described in --help
///     parse: parser,                 // fn(&str) -> Result<Type, String>: syntax and bounds
///     secret: true,                  // optional: --help never shows the variable's value
/// }
/// ```
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $key:ident: $ty:ty {
            flag: $flag:ident,
            env: $env:literal,
            $(file: $file:ty,)?
            $(default: $default:expr,)?
            $(unset: $unset:expr,)?
            parse: $parse:expr,
            $(secret: $secret:literal,)?
        }
    )*) => {
        /// Every setting as a flag (with its environment variable). Unset ones fall back to the
        /// file, then to the defaults.
        #[derive(Args, Debug, Default, Clone)]
        pub struct SettingsArgs {
            $(
                $(#[doc = $doc])+
                #[arg(
                    long,
                    env = $env,
                    global = true,
                    // Listed by `serve --help` (see `serve_help`), not by every command's.
                    hide = stringify!($flag) != "database",
                    $(hide_env_values = $secret,)?
                    help = help_line(stringify!($flag)),
                    display_order = help_order(stringify!($flag))
                )]
                pub $flag: Option<String>,
            )*
            /// TOML file with settings (keys named like the variables, without TESSERA_, lower case)
            #[arg(long, global = true, display_order = help_order("config"))]
            pub config: Option<PathBuf>,
            /// Demo mode, set by `tessera serve --demo` (a flag of `serve`, not of every
            /// command): the access-token lifetime defaults to 30 s, so the demo page shows
            /// refreshes; a configured one still wins.
            #[arg(skip)]
            pub demo: bool,
        }

        /// The TOML file: the same settings, keyed like the variables without `TESSERA_`,
        /// lower case.
        #[derive(Deserialize, Default, Debug)]
        #[serde(deny_unknown_fields)]
        struct FileSettings {
            $($key: Option<file_type!($($file)?)>,)*
        }

        /// Fully resolved configuration of a `tessera` process: a field per row of [`TABLE`],
        /// and the key-encryption key.
        #[derive(Debug)]
        pub struct Config {
            $(
                $(#[doc = $doc])+
                pub $key: $ty,
            )*
            /// Key-encryption key, from `TESSERA_KEY_ENCRYPTION_KEY` only (never a flag: it would
            /// show in `ps`).
            pub kek: Option<Kek>,
        }

        /// Every setting, in `--help` order.
        pub const TABLE: &[Setting] = &[$(
            Setting {
                name: stringify!($flag),
                key: stringify!($key),
                env: $env,
                help: &[$($doc),+],
                default: || String::from($($default)? $($unset)?),
            },
        )*];

        impl Config {
            /// Resolves flags/environment (already merged by clap), the file, `--demo` and the
            /// defaults, checking each setting.
            pub fn resolve(args: SettingsArgs) -> anyhow::Result<Self> {
                let file = match &args.config {
                    Some(path) => read_file(path)?,
                    None => FileSettings::default(),
                };
                let demo = demo_layer(args.demo);
                let config = Self {
                    $($key: {
                        let parse: fn(&str) -> Result<$ty, String> = $parse;
                        let raw = args.$flag.or(file.$key.map(String::from)).or(demo.$flag);
                        value!(raw, parse, $(default $default)? $(unset $unset)?).map_err(|e| {
                            anyhow::anyhow!("invalid setting {} ({}): {e}", stringify!($flag), $env)
                        })?
                    },)*
                    kek: kek_from_env()?,
                };
                config.check_together()?;
                Ok(config)
            }
        }
    };
}

/// What the file may hold for a setting: text unless the row says otherwise.
macro_rules! file_type {
    () => {
        String
    };
    ($file:ty) => {
        $file
    };
}

/// A setting's value: its raw text parsed, or its default (parsed alike) or `Default::default()`.
macro_rules! value {
    ($raw:ident, $parse:ident, default $default:expr) => {
        $parse(&$raw.unwrap_or_else(|| String::from($default)))
    };
    ($raw:ident, $parse:ident, unset $unset:expr) => {
        $raw.map_or_else(|| Ok(Default::default()), |text| $parse(&text))
    };
}

settings! {
    /// Address to listen on
    bind: SocketAddr {
        flag: bind,
        env: "TESSERA_BIND",
        default: "127.0.0.1:8080",
        parse: |t| t.parse().map_err(|_| format!("`{t}` is not an address like 127.0.0.1:8080")),
    }
    /// Database URL: sqlite://FILE or postgres://…
    database_url: String {
        flag: database,
        env: "TESSERA_DATABASE_URL",
        default: "sqlite://tessera.db",
        parse: database_url,
    }
    /// Issuer (`iss`)
    issuer: Option<String> {
        flag: issuer,
        env: "TESSERA_ISSUER",
        unset: "http://<bind>",
        parse: |t| url(t).map(Some),
    }
    /// Audience (`aud`)
    audience: Option<String> {
        flag: audience,
        env: "TESSERA_AUDIENCE",
        unset: "the issuer",
        parse: |t| non_empty(t).map(Some),
    }
    /// Access-token lifetime
    access_ttl: Duration {
        flag: access_ttl,
        env: "TESSERA_ACCESS_TTL",
        default: format_duration(core_default().access_ttl),
        parse: |t| duration_within(t, SECOND, DAY),
    }
    /// Refresh idle timeout
    refresh_idle_ttl: Duration {
        flag: refresh_idle_ttl,
        env: "TESSERA_REFRESH_IDLE_TTL",
        default: format_duration(core_default().lifetimes.idle),
        parse: |t| duration_within(t, SECOND, 366 * DAY),
    }
    /// Session absolute lifetime
    session_max_ttl: Duration {
        flag: session_max_ttl,
        env: "TESSERA_SESSION_MAX_TTL",
        default: format_duration(core_default().lifetimes.absolute),
        parse: |t| duration_within(t, SECOND, 3660 * DAY),
    }
    /// Reuse grace window
    reuse_grace: Duration {
        flag: reuse_grace,
        env: "TESSERA_REUSE_GRACE",
        default: format_duration(core_default().lifetimes.reuse_grace),
        parse: |t| duration_within(t, Duration::ZERO, 5 * MINUTE),
    }
    /// Clock-skew leeway for exp/nbf
    clock_leeway: Duration {
        flag: clock_leeway,
        env: "TESSERA_CLOCK_LEEWAY",
        default: format_duration(core_default().clock_leeway),
        parse: |t| duration_within(t, Duration::ZERO, 5 * MINUTE),
    }
    /// Signing algorithm: EdDSA, ES256, RS256 or HS256
    signing_alg: SigningAlg {
        flag: signing_alg,
        env: "TESSERA_SIGNING_ALG",
        default: core_default().signing_alg.as_str(),
        parse: SigningAlg::from_str,
    }
    /// Allowed browser origins, comma-separated
    allowed_origins: Option<Vec<String>> {
        flag: allowed_origins,
        env: "TESSERA_ALLOWED_ORIGINS",
        file: StringOrList,
        unset: "the issuer's origin",
        parse: |t| origins(t).map(Some),
    }
    /// Self-registration: open or closed
    registration: bool {
        flag: registration,
        env: "TESSERA_REGISTRATION",
        default: open_or_closed(core_default().registration_open),
        parse: |t| match t {
            "open" => Ok(true),
            "closed" => Ok(false),
            other => Err(format!("`{other}` is not open or closed")),
        },
    }
    /// Secure flag (and __Secure- prefix) of the refresh cookie: true or false
    cookie_secure: bool {
        flag: cookie_secure,
        env: "TESSERA_COOKIE_SECURE",
        file: BoolOrString,
        default: "true",
        parse: boolean,
    }
    /// DPoP sender-constraint: allowed (a proof binds the session), required (every login must
    /// carry one) or off (the DPoP header is ignored)
    dpop: DpopPolicy {
        flag: dpop,
        env: "TESSERA_DPOP",
        default: core_default().dpop.as_str(),
        parse: |t| DpopPolicy::parse(t)
            .ok_or_else(|| format!("`{t}` is not allowed, required or off")),
    }
    /// DPoP server nonces at login, refresh and the token endpoint: true or false
    dpop_nonce: bool {
        flag: dpop_nonce,
        env: "TESSERA_DPOP_NONCE",
        file: BoolOrString,
        default: "false",
        parse: boolean,
    }
    /// Trusted reverse proxies, comma-separated IPs or CIDRs
    trusted_proxies: Vec<ipnet::IpNet> {
        flag: trusted_proxies,
        env: "TESSERA_TRUSTED_PROXIES",
        file: StringOrList,
        unset: "none",
        parse: proxies,
    }
    /// How long ended sessions are kept before the cleanup job deletes them
    session_retention: Duration {
        flag: session_retention,
        env: "TESSERA_SESSION_RETENTION",
        default: "7d",
        parse: |t| duration_within(t, Duration::ZERO, 3660 * DAY),
    }
    /// Address to serve GET /metrics on instead of the public one (e.g. on a private network)
    metrics_bind: Option<SocketAddr> {
        flag: metrics_bind,
        env: "TESSERA_METRICS_BIND",
        unset: "unset: /metrics on the listen address",
        parse: |t| t
            .parse()
            .map(Some)
            .map_err(|_| format!("`{t}` is not an address like 10.0.0.5:9090")),
    }
    /// How long a stopping server (SIGTERM, Ctrl-C) lets open requests finish before it exits
    shutdown_grace: Duration {
        flag: shutdown_grace,
        env: "TESSERA_SHUTDOWN_GRACE",
        default: "10s",
        parse: |t| duration_within(t, Duration::ZERO, 10 * MINUTE),
    }
    /// Shared secret (at least 32 characters) that resource services send as a Bearer token to
    /// GET /auth/revocations; unset, the route answers 404. Prefer the variable or the file: a
    /// flag shows in `ps`
    revocations_token: Option<RevocationsToken> {
        flag: revocations_token,
        env: "TESSERA_REVOCATIONS_TOKEN",
        unset: "unset",
        parse: |t| RevocationsToken::parse(t).map(Some),
        secret: true,
    }
    /// Shared secret (at least 32 characters) for the admin API: sent as a Bearer token to
    /// /admin/*; unset, every /admin route answers 404. Prefer the variable or the file: a flag
    /// shows in `ps`
    admin_token: Option<AdminToken> {
        flag: admin_token,
        env: "TESSERA_ADMIN_TOKEN",
        unset: "unset",
        parse: |t| AdminToken::parse(t).map(Some),
        secret: true,
    }
    /// Password-reset token lifetime
    password_reset_ttl: Duration {
        flag: password_reset_ttl,
        env: "TESSERA_PASSWORD_RESET_TTL",
        default: format_duration(core_default().password_reset_ttl),
        parse: |t| duration_within(t, MINUTE, 7 * DAY),
    }
    /// URL that events are POSTed to (Standard Webhooks): https://, or http:// on a loopback
    /// address for development
    webhook_url: Option<reqwest::Url> {
        flag: webhook_url,
        env: "TESSERA_WEBHOOK_URL",
        unset: "unset: no events are sent",
        parse: |t| webhook_url(t).map(Some),
    }
    /// Secret that signs the events: whsec_ and the base64 of at least 24 random bytes. Prefer
    /// the variable or the file: a flag shows in `ps`
    webhook_secret: Option<WebhookSecret> {
        flag: webhook_secret,
        env: "TESSERA_WEBHOOK_SECRET",
        unset: "unset",
        parse: |t| WebhookSecret::parse(t).map(Some),
        secret: true,
    }
    /// Strict-Transport-Security: auto (on, 2 years, when the issuer is https://), off, or a
    /// max-age such as 365d
    hsts: Hsts {
        flag: hsts,
        env: "TESSERA_HSTS",
        default: "auto",
        parse: |t| match t {
            "auto" => Ok(Hsts::Auto),
            "off" => Ok(Hsts::Off),
            age => duration_within(age, SECOND, 3660 * DAY)
                .map(Hsts::MaxAge)
                .map_err(|e| format!("not auto, off or a max-age: {e}")),
        },
    }
}

/// Variables read outside [`TABLE`]: the key-encryption key and the log format.
pub const OTHER_VARIABLES: &[&str] = &["TESSERA_KEY_ENCRYPTION_KEY", "TESSERA_LOG_FORMAT"];

/// `TESSERA_*` names in `names` that Tessera does not read, each with the closest one it does
/// (when one is close), for a start-up warning: a typo in a variable is otherwise silently
/// ignored. `TESSERA_TEST_*` (test harnesses) and `TESSERA_BIN` (the scripts' path to the
/// binary) belong to the project's tooling and are not reported.
pub fn unknown_variables(
    names: impl IntoIterator<Item = String>,
) -> Vec<(String, Option<&'static str>)> {
    let known = || {
        TABLE
            .iter()
            .map(|s| s.env)
            .chain(OTHER_VARIABLES.iter().copied())
    };
    names
        .into_iter()
        .filter(|n| n.starts_with("TESSERA_") && !n.starts_with("TESSERA_TEST_"))
        .filter(|n| n != "TESSERA_BIN" && !known().any(|k| k == n))
        .map(|n| {
            let closest = known()
                .map(|k| (edit_distance(&n, k), k))
                .min()
                .filter(|(d, _)| *d <= 4)
                .map(|(_, k)| k);
            (n, closest)
        })
        .collect()
}

/// Levenshtein distance, by bytes (variable names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// One setting as `--help` and the README's settings table show it: a row of [`TABLE`].
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// Its name: the flag (with `-` for `_`), and what error messages call it.
    pub name: &'static str,
    /// Its key in the TOML file.
    pub key: &'static str,
    /// Its environment variable.
    pub env: &'static str,
    /// Its help text, one doc-comment line per item.
    pub help: &'static [&'static str],
    /// Its default: the value, or what being unset means.
    pub default: fn() -> String,
}

impl Setting {
    /// The flag, e.g. `--access-ttl`.
    pub fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }

    /// The `--help` text: the help lines joined as clap joins a doc comment, then the default.
    pub fn help_line(&self) -> String {
        let lines: Vec<&str> = self.help.iter().map(|line| line.trim()).collect();
        format!("{} [default: {}]", lines.join(" "), (self.default)())
    }
}

/// The settings as `tessera serve --help` lists them, after its own flags: each flag with its
/// variable and default, then the variables that have no flag.
pub fn serve_help() -> String {
    let mut out = String::from(
        "Settings (flag, environment variable; also keys of the --config file, and flags of \
         every command):\n",
    );
    for s in TABLE {
        out.push_str(&format!("  {} <VALUE>  [env: {}]\n", s.flag(), s.env));
        out.push_str(&format!("      {}\n", s.help_line()));
    }
    out.push_str(
        "  TESSERA_KEY_ENCRYPTION_KEY (environment only)\n      Key-encryption key: 32 bytes in \
         base64 (`tessera keys new-kek`); seals private keys in the database [default: unset, \
         keys stored unsealed, with a warning]\n",
    );
    out.push_str(
        "  TESSERA_LOG_FORMAT (environment only)\n      json for one JSON object per log line \
         [default: text]\n",
    );
    out.push_str(
        "  RUST_LOG (environment only)\n      Log filter, e.g. info, debug or \
         tessera=debug,tower_http=debug [default: info]\n",
    );
    out
}

fn help_line(name: &str) -> String {
    TABLE
        .iter()
        .find(|s| s.name == name)
        .map(Setting::help_line)
        .unwrap_or_default()
}

/// Where `--help` lists a flag: the settings in [`TABLE`]'s order, `--config` right after
/// `--database`; all after a command's own flags (which clap numbers from 0, so `serve --help`
/// shows `--demo` first) and before `--help` (which clap puts at 999).
fn help_order(name: &str) -> usize {
    const FIRST: usize = 100;
    let position = |name: &str| TABLE.iter().position(|s| s.name == name);
    let config = position("database").map_or(0, |i| i + 1);
    FIRST
        + match position(name) {
            Some(i) if i >= config => i + 1,
            Some(i) => i,
            None => config,
        }
}

/// Core's defaults, for the settings core also knows (the placeholder issuer is never read).
fn core_default() -> Settings {
    Settings::new("")
}

/// The access-token lifetime `--demo` sets.
const DEMO_ACCESS_TTL: &str = "30s";

/// What `--demo` sets: a layer between the file and the defaults, so a configured value wins.
fn demo_layer(demo: bool) -> SettingsArgs {
    SettingsArgs {
        access_ttl: demo.then(|| DEMO_ACCESS_TTL.to_owned()),
        ..SettingsArgs::default()
    }
}

/// `TESSERA_KEY_ENCRYPTION_KEY`: a variable only, neither a flag (it would show in `ps`) nor a
/// key in the file.
fn kek_from_env() -> anyhow::Result<Option<Kek>> {
    match std::env::var("TESSERA_KEY_ENCRYPTION_KEY") {
        Ok(v) if !v.is_empty() => Kek::parse(&v).map(Some).map_err(|e| {
            anyhow::anyhow!("invalid setting key_encryption_key (TESSERA_KEY_ENCRYPTION_KEY): {e}")
        }),
        _ => Ok(None),
    }
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl From<StringOrList> for String {
    fn from(value: StringOrList) -> Self {
        match value {
            StringOrList::One(s) => s,
            StringOrList::Many(v) => v.join(","),
        }
    }
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum BoolOrString {
    Bool(bool),
    Text(String),
}

impl From<BoolOrString> for String {
    fn from(value: BoolOrString) -> Self {
        match value {
            BoolOrString::Bool(b) => b.to_string(),
            BoolOrString::Text(t) => t,
        }
    }
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

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

/// A duration between `min` and `max`: every duration setting has a sane upper bound, so an
/// absurd value stops start-up instead of overflowing time arithmetic in a later request.
fn duration_within(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < min {
        return Err(match min {
            SECOND => "must be longer than 0s".to_owned(),
            _ => format!("must be at least {}", format_duration(min)),
        });
    }
    if d > max {
        return Err(format!("must be at most {}", format_duration(max)));
    }
    Ok(d)
}

impl Config {
    /// Rules between settings, after each has passed its own.
    fn check_together(&self) -> anyhow::Result<()> {
        // Ended sessions feed `GET /auth/revocations` for this long after they end; deleting
        // them sooner would hide a revocation from verifiers while its tokens still live.
        let window = self.access_ttl.saturating_add(self.clock_leeway);
        if self.session_retention < window {
            anyhow::bail!(
                "invalid setting session_retention (TESSERA_SESSION_RETENTION): must be at least \
                 the access-token lifetime plus the leeway ({}), or verifiers miss revocations",
                format_duration(window)
            );
        }
        match (&self.webhook_url, &self.webhook_secret) {
            (Some(_), None) => anyhow::bail!(
                "invalid setting webhook_secret (TESSERA_WEBHOOK_SECRET): must be set when \
                 TESSERA_WEBHOOK_URL is (whsec_ and the base64 of at least 24 random bytes)"
            ),
            (None, Some(_)) => anyhow::bail!(
                "invalid setting webhook_url (TESSERA_WEBHOOK_URL): must be set when \
                 TESSERA_WEBHOOK_SECRET is"
            ),
            _ => Ok(()),
        }
    }
}

/// A webhook receiver's URL: `https://`, or `http://` to a loopback address (a receiver on the
/// same machine, in development); events carry a reset token, never sent in the clear across
/// a network.
fn webhook_url(text: &str) -> Result<reqwest::Url, String> {
    let url =
        reqwest::Url::parse(text.trim()).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(format!(
            "`{text}` must be https:// (http:// only to a loopback address such as 127.0.0.1)"
        )),
        _ => Err(format!("`{text}` is not an https:// URL")),
    }
}

fn database_url(text: &str) -> Result<String, String> {
    if text.starts_with("sqlite:")
        || text.starts_with("postgres://")
        || text.starts_with("postgresql://")
    {
        Ok(text.to_owned())
    } else {
        Err(format!("`{text}` is neither sqlite://… nor postgres://…"))
    }
}

fn non_empty(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(text.to_owned())
    }
}

fn origins(text: &str) -> Result<Vec<String>, String> {
    let list = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(origin)
        .collect::<Result<Vec<_>, _>>()?;
    if list.is_empty() {
        Err("must list at least one origin".into())
    } else {
        Ok(list)
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

fn open_or_closed(open: bool) -> &'static str {
    if open { "open" } else { "closed" }
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

    /// The issuer: the configured one, or `http://` and the address actually bound.
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
        s.lifetimes = Lifetimes {
            idle: self.refresh_idle_ttl,
            absolute: self.session_max_ttl,
            reuse_grace: self.reuse_grace,
        };
        s.clock_leeway = self.clock_leeway;
        s.signing_alg = self.signing_alg;
        s.registration_open = self.registration;
        s.dpop = self.dpop;
        s.dpop_nonce = self.dpop_nonce;
        s.password_reset_ttl = self.password_reset_ttl;
        s
    }

    /// The origins allowed to use the refresh cookie: configured, or the issuer's.
    pub fn origins_for(&self, issuer: &str) -> Vec<String> {
        self.allowed_origins
            .clone()
            .unwrap_or_else(|| vec![origin_of(issuer).to_owned()])
    }

    /// A one-line summary for the start-up log.
    pub fn summary(&self) -> String {
        format!(
            "access_ttl={} refresh_idle_ttl={} session_max_ttl={} reuse_grace={} signing_alg={} registration={}",
            format_duration(self.access_ttl),
            format_duration(self.refresh_idle_ttl),
            format_duration(self.session_max_ttl),
            format_duration(self.reuse_grace),
            self.signing_alg,
            open_or_closed(self.registration),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_tessera_variable_is_reported_with_the_closest_known_one() {
        let names = [
            "TESSERA_ACESS_TTL",
            "TESSERA_ACCESS_TTL",
            "TESSERA_KEY_ENCRYPTION_KEY",
            "TESSERA_LOG_FORMAT",
            "TESSERA_TEST_POSTGRES_URL",
            "TESSERA_BIN",
            "TESSERA_ZZZZZZZZZZZZZZZZZZZZZZZZ",
            "HOME",
        ];
        let unknown = unknown_variables(names.iter().map(|n| n.to_string()));
        assert_eq!(
            unknown,
            vec![
                ("TESSERA_ACESS_TTL".to_string(), Some("TESSERA_ACCESS_TTL")),
                ("TESSERA_ZZZZZZZZZZZZZZZZZZZZZZZZ".to_string(), None),
            ]
        );
    }

    #[test]
    fn defaults_are_the_specs() {
        let c = Config::resolve(SettingsArgs::default()).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://tessera.db");
        assert_eq!(c.access_ttl, Duration::from_secs(900));
        assert_eq!(c.refresh_idle_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(c.session_max_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(c.reuse_grace, Duration::from_secs(10));
        assert_eq!(c.clock_leeway, Duration::from_secs(5));
        assert_eq!(c.signing_alg, SigningAlg::EdDSA);
        assert!(c.registration && c.cookie_secure && c.trusted_proxies.is_empty());
        assert!(c.admin_token.is_none() && c.revocations_token.is_none());
        assert_eq!(c.password_reset_ttl, Duration::from_secs(3600));
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
        assert_eq!(c.reuse_grace, Duration::from_secs(3));
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
    fn a_webhook_needs_https_or_loopback_and_a_whsec_secret() {
        const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let resolve = |url: Option<&str>, secret: Option<&str>| {
            Config::resolve(SettingsArgs {
                webhook_url: url.map(Into::into),
                webhook_secret: secret.map(Into::into),
                ..Default::default()
            })
        };
        for ok in [
            "https://hooks.example/tessera",
            "http://127.0.0.1:9000/hook",
            "http://[::1]:9000/",
            "http://localhost:9000/",
        ] {
            let c = resolve(Some(ok), Some(SECRET)).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(
                c.webhook_url.unwrap().as_str().trim_end_matches('/'),
                ok.trim_end_matches('/')
            );
        }
        for (url, secret, variable) in [
            (
                Some("http://hooks.example/"),
                Some(SECRET),
                "TESSERA_WEBHOOK_URL",
            ),
            (
                Some("http://10.0.0.5/"),
                Some(SECRET),
                "TESSERA_WEBHOOK_URL",
            ),
            (
                Some("ftp://127.0.0.1/"),
                Some(SECRET),
                "TESSERA_WEBHOOK_URL",
            ),
            (Some("not a url"), Some(SECRET), "TESSERA_WEBHOOK_URL"),
            (
                Some("https://hooks.example/"),
                None,
                "TESSERA_WEBHOOK_SECRET",
            ),
            (None, Some(SECRET), "TESSERA_WEBHOOK_URL"),
            (
                Some("https://hooks.example/"),
                Some("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                "TESSERA_WEBHOOK_SECRET",
            ),
            (
                Some("https://hooks.example/"),
                Some("whsec_c2hvcnQ="),
                "TESSERA_WEBHOOK_SECRET",
            ),
        ] {
            let e = resolve(url, secret).expect_err("refused").to_string();
            assert!(
                e.contains(variable) && !e.contains('\n'),
                "{url:?} {secret:?}: {e}"
            );
            assert!(
                !e.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                "the secret is never repeated: {e}"
            );
        }
    }

    /// Before the bounds, `TESSERA_ACCESS_TTL=18446744073709551615s` started and every request
    /// then panicked adding durations.
    #[test]
    fn absurd_durations_and_a_retention_shorter_than_the_feed_stop_start_up() {
        for (args, env) in [
            (
                SettingsArgs {
                    access_ttl: Some("18446744073709551615s".into()),
                    ..Default::default()
                },
                "TESSERA_ACCESS_TTL",
            ),
            (
                SettingsArgs {
                    clock_leeway: Some("18446744073709551615s".into()),
                    ..Default::default()
                },
                "TESSERA_CLOCK_LEEWAY",
            ),
            (
                SettingsArgs {
                    session_max_ttl: Some("100000d".into()),
                    ..Default::default()
                },
                "TESSERA_SESSION_MAX_TTL",
            ),
            (
                SettingsArgs {
                    reuse_grace: Some("1h".into()),
                    ..Default::default()
                },
                "TESSERA_REUSE_GRACE",
            ),
            (
                SettingsArgs {
                    session_retention: Some("10m".into()),
                    ..Default::default()
                },
                "TESSERA_SESSION_RETENTION",
            ),
        ] {
            let message = Config::resolve(args).unwrap_err().to_string();
            assert!(message.contains(env), "{message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
        let long_enough = SettingsArgs {
            session_retention: Some("906s".into()),
            ..Default::default()
        };
        assert!(Config::resolve(long_enough).is_ok());
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
                    dpop: Some("sometimes".into()),
                    ..Default::default()
                },
                "TESSERA_DPOP",
            ),
            (
                SettingsArgs {
                    dpop_nonce: Some("yes please".into()),
                    ..Default::default()
                },
                "TESSERA_DPOP_NONCE",
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
    #[test]
    fn demo_shortens_the_access_ttl_unless_it_is_configured() {
        let demo = Config::resolve(SettingsArgs {
            demo: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(demo.access_ttl, Duration::from_secs(30));
        let configured = Config::resolve(SettingsArgs {
            demo: true,
            access_ttl: Some("2m".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(configured.access_ttl, Duration::from_secs(120));
    }

    #[test]
    fn defaults_core_also_knows_are_cores() {
        let c = Config::resolve(SettingsArgs::default()).unwrap();
        let core = c.settings_for("http://127.0.0.1:8080");
        let spec = Settings::new("http://127.0.0.1:8080");
        assert_eq!(core.access_ttl, spec.access_ttl);
        assert_eq!(core.lifetimes, spec.lifetimes);
        assert_eq!(core.clock_leeway, spec.clock_leeway);
        assert_eq!(core.signing_alg, spec.signing_alg);
        assert_eq!(core.registration_open, spec.registration_open);
    }

    #[test]
    fn every_setting_is_keyed_like_its_variable_and_in_the_readmes_table() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .unwrap();
        for s in TABLE {
            assert_eq!(s.env, format!("TESSERA_{}", s.key.to_uppercase()));
            let columns = format!("| `{}` | `{}` |", s.flag(), s.env);
            let row = readme
                .lines()
                .find(|line| line.contains(&columns))
                .unwrap_or_else(|| panic!("the README's settings table has no row with {columns}"));
            let default = (s.default)();
            assert!(
                row.contains(&default),
                "{row} should give the default {default}"
            );
        }
    }

    #[test]
    fn serve_help_lists_the_settings_in_the_tables_order_and_every_variable() {
        let help = serve_help();
        let at: Vec<usize> = TABLE
            .iter()
            .map(|s| {
                help.find(&format!("{} <VALUE>  [env: {}]", s.flag(), s.env))
                    .unwrap_or_else(|| panic!("{} in {help}", s.flag()))
            })
            .collect();
        assert!(at.is_sorted(), "{help}");
        for variable in OTHER_VARIABLES.iter().chain(&["RUST_LOG"]) {
            assert!(help.contains(variable), "{variable} in {help}");
        }
        assert!(
            help.contains("Access-token lifetime [default: 15m]"),
            "{help}"
        );
    }
}

//! `tessera`: the standalone session server and its operator CLI.

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tessera::{Config, SettingsArgs, build_app, spawn_background_jobs};
use tessera_core::{ClientKind, Error, SystemClock, Tessera, Timestamp};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Seamless, long-lasting, secure sessions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    settings: SettingsArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (applies migrations and creates a signing key on first start)
    #[command(after_help = tessera::config::serve_help())]
    Serve {
        /// Demo mode: 30 s access tokens, so the demo page shows refreshes
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations
    Migrate,
    /// Print a shell completion script (e.g. `tessera completions bash > /etc/bash_completion.d/tessera`)
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Admin(AdminCommand),
}

/// Commands that work on the session service without serving it.
#[derive(Subcommand)]
enum AdminCommand {
    /// Manage users
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// List or revoke sessions
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// List or rotate signing keys
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Register, list or remove OAuth clients
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// List the events of the webhook outbox, or retry one
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// List events, newest first (at most 1000): id (the webhook-id), type, state, attempts
    List {
        /// Only those not delivered yet
        #[arg(long, conflicts_with = "failed")]
        pending: bool,
        /// Only those given up on after a day of retries
        #[arg(long)]
        failed: bool,
        #[command(flatten)]
        format: ListFormat,
    },
    /// Send an undelivered (pending or failed) event again now, with another day of retries
    Retry {
        /// The event's id (its webhook-id, msg_…)
        id: String,
    },
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// Register a client (a confidential client's secret is printed once, and stored only as a hash)
    Add {
        /// A name for people (1 to 64 characters of A-Z a-z 0-9 . _ -)
        name: String,
        /// A native or browser app: no secret
        #[arg(
            long,
            conflicts_with = "confidential",
            required_unless_present = "confidential"
        )]
        public: bool,
        /// A server: authenticates with a client secret
        #[arg(long)]
        confidential: bool,
    },
    /// List registered clients
    List {
        /// One JSON document instead of text
        #[arg(long)]
        json: bool,
    },
    /// Remove a client: it authenticates no more and its sessions end
    Remove {
        /// The client's id (its `client_id`)
        id: String,
    },
}

/// How a list command prints: a table with a header line, or JSON.
#[derive(clap::Args)]
struct ListFormat {
    /// Print a JSON array of objects instead of a table
    #[arg(long)]
    json: bool,
}

impl ListFormat {
    /// Prints `rows` under `header` (tab-separated), or `json` as a JSON array.
    fn print(
        &self,
        header: &[&str],
        rows: Vec<Vec<String>>,
        json: Vec<serde_json::Value>,
    ) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(&json)?);
        } else {
            println!("{}", header.join("\t"));
            for row in rows {
                println!("{}", row.join("\t"));
            }
        }
        Ok(())
    }
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user (even when registration is closed)
    Add {
        /// Username
        name: String,
        /// Read the password from standard input (otherwise a strong one is generated and printed)
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users
    List(ListFormat),
    /// Disable a user: every session ends at once, and logins are refused until enabled
    Disable {
        /// Username
        name: String,
    },
    /// Enable a disabled user (their ended sessions stay ended)
    Enable {
        /// Username
        name: String,
    },
    /// Delete a user with their sessions; the name becomes free
    Delete {
        /// Username
        name: String,
    },
    /// Make a single-use password-reset token (voiding earlier ones) and print it
    ResetLink {
        /// Username
        name: String,
        /// Print a URL instead: this template with `{token}` replaced by the token
        #[arg(long, value_name = "TEMPLATE")]
        url_template: Option<String>,
    },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// List live sessions
    List {
        /// Only this user's
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        format: ListFormat,
    },
    /// Revoke one session, or every session of a user
    Revoke {
        /// Session id
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        id: Option<String>,
        /// Revoke all sessions of this user
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List signing keys and their state
    List(ListFormat),
    /// Add a new signing key (published at once, signing 20 s later)
    Rotate,
    /// Print a fresh key-encryption key for TESSERA_KEY_ENCRYPTION_KEY (stores nothing)
    NewKek,
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("{} (see tessera --help)", one_line(&e.render().to_string()));
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(cli)) {
        // One line: the whole cause chain, joined.
        eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
        std::process::exit(1);
    }
}

/// clap's message on one line: what is wrong, the missing arguments, the "similar argument"
/// tip; without the usage block.
fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:"))
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        "invalid arguments".to_owned()
    } else {
        lines.join(" ")
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Admin(AdminCommand::Keys {
        command: KeysCommand::NewKek,
    }) = cli.command
    {
        // Needs no settings and no database.
        return print_new_kek();
    }
    if let Command::Completions { shell } = cli.command {
        let mut command = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut command, "tessera", &mut std::io::stdout());
        return Ok(());
    }
    let is_serve = matches!(cli.command, Command::Serve { .. });
    if is_serve {
        init_tracing();
    }
    let names = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok());
    for (name, closest) in tessera::config::unknown_variables(names) {
        let hint = closest.map_or_else(String::new, |c| format!(" (did you mean {c}?)"));
        if is_serve {
            tracing::warn!("{name} is not a Tessera setting and is ignored{hint}");
        } else {
            eprintln!("warning: {name} is not a Tessera setting and is ignored{hint}");
        }
    }
    let mut settings = cli.settings;
    settings.demo = matches!(cli.command, Command::Serve { demo: true });
    let config = Config::resolve(settings)?;
    match cli.command {
        Command::Serve { .. } => run_server(config).await,
        Command::Completions { .. } => Ok(()),
        Command::Migrate => {
            tessera::open_store(&config.database_url).await?;
            println!("migrations applied to {}", redact_url(&config.database_url));
            Ok(())
        }
        Command::Admin(command) => {
            let tessera = open_service(&config).await?;
            run_admin(&tessera, command).await
        }
    }
}

async fn open_service(config: &Config) -> anyhow::Result<Tessera> {
    // Only `serve` and `migrate` create a database: a typo in a path must not leave a new empty
    // one (and a signing key) behind.
    if config.database_url.starts_with("sqlite:") {
        let path = tessera_store_sqlite::database_path(&config.database_url)?;
        if !path.exists() {
            let shown = std::path::absolute(&path).unwrap_or(path);
            bail!(
                "no database at {} (TESSERA_DATABASE_URL / --database); run `tessera migrate` or \
                 `tessera serve` first",
                shown.display()
            );
        }
    }
    let store = tessera::open_store(&config.database_url).await?;
    let settings = config.settings_for(&config.issuer_for(config.bind));
    Tessera::open(store, settings, config.kek.clone(), Arc::new(SystemClock))
        .await
        .context("cannot open the session service")
}

async fn run_server(config: Config) -> anyhow::Result<()> {
    let metrics =
        tessera::telemetry::install_recorder().context("cannot install the metrics recorder")?;
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let bound = listener.local_addr()?;
    if config.kek.is_none() {
        tracing::warn!(
            "TESSERA_KEY_ENCRYPTION_KEY is not set: private keys are stored unsealed in the \
             database, so a copy of it is enough to sign tokens. Set it to the output of \
             `tessera keys new-kek` (kept apart from the database and its backups) to seal the \
             keys created from then on"
        );
    }
    let app = build_app(&config, bound, Some(metrics), Arc::new(SystemClock)).await?;
    let jobs = spawn_background_jobs(app.tessera.clone(), config.session_retention);
    let sender = tessera::webhooks::Webhook::from_config(&config)
        .map(|hook| tessera::webhooks::spawn_sender(app.tessera.clone(), hook))
        .transpose()
        .context("cannot start the webhook sender")?;
    tracing::info!(issuer = %app.issuer, database = %redact_url(&config.database_url), settings = %config.summary(), "tessera started");
    println!(
        "Tessera listening on http://{bound} (issuer {})",
        app.issuer
    );
    // One signal stops both servers.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let when_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let private = match (config.metrics_bind, app.metrics_router) {
        (Some(addr), Some(router)) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (TESSERA_METRICS_BIND)"))?;
            tracing::info!(address = %addr, "serving /metrics on its own address");
            Some(tokio::spawn(tessera::serve_draining(
                listener,
                router,
                when_stopped(),
                config.shutdown_grace,
            )))
        }
        _ => None,
    };
    tessera::serve_draining(listener, app.router, when_stopped(), config.shutdown_grace).await?;
    if let Some(private) = private {
        private.await??;
    }
    jobs.abort();
    if let Some(sender) = sender {
        sender.abort();
    }
    tracing::info!("tessera stopped");
    Ok(())
}

/// Hides a password in a database URL before it is logged.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].find(':') {
            Some(colon) => format!("{}:***{}", &url[..s + 3 + colon], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal, not in a file or a log collector.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var("TESSERA_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// RFC 3339 UTC, to the second, for listings.
fn when(t: Timestamp) -> String {
    Timestamp::from_millis(t.as_secs().saturating_mul(1000)).to_rfc3339()
}

async fn run_admin(tessera: &Tessera, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::User { command } => run_user(tessera, command).await,
        AdminCommand::Sessions { command } => run_sessions(tessera, command).await,
        AdminCommand::Keys { command } => run_keys(tessera, command).await,
        AdminCommand::Clients { command } => run_clients(tessera, command).await,
        AdminCommand::Events { command } => run_events(tessera, command).await,
    }
}

/// How many events `events list` shows.
const EVENTS_LISTED: u32 = 1000;

async fn run_events(tessera: &Tessera, command: EventsCommand) -> anyhow::Result<()> {
    use tessera_core::events::{EventState, parse_webhook_id, webhook_id};
    match command {
        EventsCommand::List {
            pending,
            failed,
            format,
        } => {
            let state = match (pending, failed) {
                (true, _) => Some(EventState::Pending),
                (_, true) => Some(EventState::Failed),
                _ => None,
            };
            let events = tessera.events(state, EVENTS_LISTED).await?;
            let next = |e: &tessera_core::events::StoredEvent| {
                (e.state == EventState::Pending).then(|| when(e.next_attempt_at))
            };
            format.print(
                &[
                    "ID",
                    "TYPE",
                    "CREATED",
                    "STATE",
                    "ATTEMPTS",
                    "NEXT",
                    "LAST ERROR",
                ],
                events
                    .iter()
                    .map(|e| {
                        vec![
                            webhook_id(e.event.id),
                            e.event.kind.to_string(),
                            when(e.event.created_at),
                            e.state.as_str().to_owned(),
                            e.attempts.to_string(),
                            next(e).unwrap_or_else(|| "-".into()),
                            e.last_error.clone().unwrap_or_else(|| "-".into()),
                        ]
                    })
                    .collect(),
                events
                    .iter()
                    .map(|e| {
                        Ok(serde_json::json!({
                            "id": webhook_id(e.event.id), "type": e.event.kind.as_str(),
                            "created_at": when(e.event.created_at), "state": e.state.as_str(),
                            "attempts": e.attempts, "next_attempt_at": next(e),
                            "finished_at": e.finished_at.map(when),
                            "last_error": e.last_error, "data": e.listed_data()?,
                        }))
                    })
                    .collect::<Result<_, Error>>()?,
            )?;
        }
        EventsCommand::Retry { id } => {
            let event = parse_webhook_id(&id)
                .ok_or_else(|| anyhow::anyhow!("`{id}` is not an event id (msg_…)"))?;
            tessera.retry_event(event).await.map_err(|e| match e {
                Error::NotFound => anyhow::anyhow!("no undelivered event {id}"),
                other => describe(other),
            })?;
            println!("event {} is due now", webhook_id(event));
        }
    }
    Ok(())
}

async fn run_clients(tessera: &Tessera, command: ClientsCommand) -> anyhow::Result<()> {
    match command {
        ClientsCommand::Add {
            name, confidential, ..
        } => {
            let kind = if confidential {
                ClientKind::Confidential
            } else {
                ClientKind::Public
            };
            let (client, secret) = tessera.add_client(&name, kind).await.map_err(describe)?;
            println!("added {} client {}", kind.as_str(), client.name);
            println!("client_id: {}", client.id);
            if let Some(secret) = secret {
                println!("client_secret: {}", secret.expose());
                println!("(the secret is shown only now; Tessera keeps only its hash)");
            }
        }
        ClientsCommand::List { json } => {
            let clients = tessera.clients().await?;
            if json {
                let list: Vec<_> = clients
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "client_id": c.id,
                            "name": c.name,
                            "kind": c.kind.as_str(),
                            "created_at": when(c.created_at),
                        })
                    })
                    .collect();
                println!("{}", serde_json::json!({ "clients": list }));
            } else {
                for c in clients {
                    println!(
                        "{}\t{}\t{}\t{}",
                        c.id,
                        c.name,
                        c.kind.as_str(),
                        when(c.created_at)
                    );
                }
            }
        }
        ClientsCommand::Remove { id } => {
            let ended = tessera.remove_client(&id).await.map_err(describe)?;
            println!("removed client {id}; {ended} session(s) ended");
        }
    }
    Ok(())
}

async fn run_user(tessera: &Tessera, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            password_stdin,
        } => {
            let (password, generated) = if password_stdin {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read the password from standard input")?;
                (text.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                let bytes = tessera_core::keys::random_bytes::<18>()?;
                (
                    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                    true,
                )
            };
            let user = tessera
                .create_user(&name, password.clone())
                .await
                .map_err(describe)?;
            println!("added user {} ({})", user.username, user.id);
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::List(format) => {
            let users = tessera.users().await?;
            format.print(
                &["ID", "USERNAME", "CREATED", "STATUS"],
                users
                    .iter()
                    .map(|u| {
                        vec![
                            u.id.to_string(),
                            u.username.clone(),
                            when(u.created_at),
                            if u.disabled_at.is_some() {
                                "disabled"
                            } else {
                                "enabled"
                            }
                            .to_owned(),
                        ]
                    })
                    .collect(),
                users
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "id": u.id, "username": u.username, "created_at": when(u.created_at),
                            "disabled": u.disabled_at.is_some(),
                        })
                    })
                    .collect(),
            )?;
        }
        UserCommand::Disable { name } => {
            let user = tessera
                .user(&name)
                .await
                .map_err(|e| describe_user(e, &name))?;
            let n = tessera.disable_user(user.id).await.map_err(describe)?;
            println!("disabled {}; revoked {n} session(s)", user.username);
        }
        UserCommand::Enable { name } => {
            let user = tessera
                .user(&name)
                .await
                .map_err(|e| describe_user(e, &name))?;
            tessera.enable_user(user.id).await.map_err(describe)?;
            println!("enabled {}", user.username);
        }
        UserCommand::Delete { name } => {
            let user = tessera
                .user(&name)
                .await
                .map_err(|e| describe_user(e, &name))?;
            tessera.delete_user(user.id).await.map_err(describe)?;
            println!("deleted {} ({})", user.username, user.id);
        }
        UserCommand::ResetLink { name, url_template } => {
            reset_link(tessera, &name, url_template.as_deref()).await?;
        }
    }
    Ok(())
}

/// `user reset-link`: the token alone, or the template with the token in place of `{token}`.
async fn reset_link(
    tessera: &Tessera,
    name: &str,
    url_template: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(template) = url_template
        && !template.contains("{token}")
    {
        bail!("--url-template must contain {{token}}");
    }
    let user = tessera
        .user(name)
        .await
        .map_err(|e| describe_user(e, name))?;
    let reset = tessera
        .create_password_reset(user.id)
        .await
        .map_err(describe)?
        .ok_or_else(|| anyhow::anyhow!("not found"))?;
    // The token is base64url: it goes into a URL as it is.
    let token = reset.token.expose();
    match url_template {
        Some(template) => println!("{}", template.replace("{token}", token)),
        None => println!("{token}"),
    }
    eprintln!(
        "valid until {} (single use; a newer one voids it)",
        when(reset.expires_at)
    );
    Ok(())
}

async fn run_sessions(tessera: &Tessera, command: SessionsCommand) -> anyhow::Result<()> {
    match command {
        SessionsCommand::List { user, format } => {
            let owner = match user {
                Some(name) => Some(
                    tessera
                        .user(&name)
                        .await
                        .map_err(|e| describe_user(e, &name))?
                        .id,
                ),
                None => None,
            };
            let sessions = tessera.sessions(owner).await?;
            let ip = |r: &tessera_core::SessionRecord| r.ip.map(|ip| ip.to_string());
            format.print(
                &[
                    "ID",
                    "USERNAME",
                    "CREATED",
                    "LAST USED",
                    "EXPIRES",
                    "IP",
                    "USER AGENT",
                ],
                sessions
                    .iter()
                    .map(|s| {
                        let r = &s.record;
                        vec![
                            r.id.to_string(),
                            r.username.clone(),
                            when(r.created_at),
                            when(r.last_used_at),
                            when(s.expires_at),
                            ip(r).unwrap_or_else(|| "-".into()),
                            r.user_agent.clone().unwrap_or_else(|| "-".into()),
                        ]
                    })
                    .collect(),
                sessions
                    .iter()
                    .map(|s| {
                        let r = &s.record;
                        serde_json::json!({
                            "id": r.id, "user_id": r.user_id, "username": r.username,
                            "created_at": when(r.created_at), "last_used_at": when(r.last_used_at),
                            "expires_at": when(s.expires_at), "ip": ip(r),
                            "user_agent": r.user_agent,
                        })
                    })
                    .collect(),
            )?;
        }
        SessionsCommand::Revoke { id, user } => match (id, user) {
            (_, Some(name)) => {
                let n = tessera
                    .revoke_user(&name)
                    .await
                    .map_err(|e| describe_user(e, &name))?;
                println!("revoked {n} session(s) of {name}");
            }
            (Some(id), None) => {
                let sid = uuid::Uuid::parse_str(&id)
                    .map_err(|_| anyhow::anyhow!("`{id}` is not a session id"))?;
                tessera
                    .revoke_session(sid, None, tessera_core::RevokeReason::Admin)
                    .await
                    .map_err(describe)?;
                println!("revoked session {sid}");
            }
            (None, None) => bail!("give a session id or --user NAME"),
        },
    }
    Ok(())
}

async fn run_keys(tessera: &Tessera, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::List(format) => {
            let now = tessera.now();
            let keys = tessera.key_report();
            let state = |k: &tessera_core::KeyReport| match (k.signing, k.published) {
                (true, _) => "signing",
                (false, true) if k.activate_at > now => "pending",
                (false, true) => "published",
                (false, false) => "retired",
            };
            format.print(
                &["KID", "ALG", "STATE", "CREATED", "SIGNS FROM"],
                keys.iter()
                    .map(|k| {
                        vec![
                            k.kid.clone(),
                            k.alg.to_string(),
                            state(k).to_owned(),
                            when(k.created_at),
                            when(k.activate_at),
                        ]
                    })
                    .collect(),
                keys.iter()
                    .map(|k| {
                        serde_json::json!({
                            "kid": k.kid, "alg": k.alg.to_string(), "state": state(k),
                            "created_at": when(k.created_at), "signs_from": when(k.activate_at),
                        })
                    })
                    .collect(),
            )?;
        }
        KeysCommand::NewKek => print_new_kek()?,
        KeysCommand::Rotate => {
            let key = tessera.rotate_keys().await?;
            println!(
                "added key {} ({}): published now, signing from {}",
                key.kid,
                key.alg,
                when(key.activate_at)
            );
        }
    }
    Ok(())
}

fn print_new_kek() -> anyhow::Result<()> {
    println!("{}", tessera_core::Kek::generate_text()?);
    Ok(())
}

/// [`describe`], for a command given a user's name.
fn describe_user(e: Error, name: &str) -> anyhow::Error {
    match e {
        Error::NotFound => anyhow::anyhow!("no user named {name}"),
        other => describe(other),
    }
}

/// Turns domain errors into the operator's wording.
fn describe(e: Error) -> anyhow::Error {
    match e {
        Error::NotFound => anyhow::anyhow!("not found"),
        Error::InvalidRequest(m) => anyhow::anyhow!(m),
        Error::UsernameTaken => anyhow::anyhow!("that username is taken"),
        other => anyhow::anyhow!(other),
    }
}

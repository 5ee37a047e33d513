//! `tessera`: the standalone session server and its operator CLI.

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tessera::{Config, SettingsArgs, build_app, serve, spawn_background_jobs};
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
    Serve {
        /// Demo mode: 30 s access tokens, so the demo page shows refreshes
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations
    Migrate,
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
    List,
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// List live sessions
    List {
        /// Only this user's
        #[arg(long)]
        user: Option<String>,
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
    List,
    /// Add a new signing key (published at once, signing 20 s later)
    Rotate,
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments");
            eprintln!("{} (see tessera --help)", first.trim());
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = cli.settings;
    settings.demo = matches!(cli.command, Command::Serve { demo: true });
    let config = Config::resolve(settings)?;
    match cli.command {
        Command::Serve { .. } => run_server(config).await,
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
    let store = tessera::open_store(&config.database_url).await?;
    let settings = config.settings_for(&config.issuer_for(config.bind));
    Tessera::open(store, settings, config.kek.clone(), Arc::new(SystemClock))
        .await
        .context("cannot open the session service")
}

async fn run_server(config: Config) -> anyhow::Result<()> {
    init_tracing();
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let bound = listener.local_addr()?;
    if config.kek.is_none() {
        tracing::warn!(
            "TESSERA_KEY_ENCRYPTION_KEY is not set: private keys are stored unsealed in the database"
        );
    }
    let app = build_app(&config, bound, Some(metrics), Arc::new(SystemClock)).await?;
    let jobs = spawn_background_jobs(app.tessera.clone(), config.session_retention);
    tracing::info!(issuer = %app.issuer, database = %redact_url(&config.database_url), settings = %config.summary(), "tessera started");
    println!(
        "Tessera listening on http://{bound} (issuer {})",
        app.issuer
    );
    serve(listener, app.router, shutdown_signal()).await?;
    jobs.abort();
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
    }
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
        UserCommand::List => {
            for u in tessera.users().await? {
                println!("{}\t{}\t{}", u.id, u.username, when(u.created_at));
            }
        }
    }
    Ok(())
}

async fn run_sessions(tessera: &Tessera, command: SessionsCommand) -> anyhow::Result<()> {
    match command {
        SessionsCommand::List { user } => {
            let owner = match user {
                Some(name) => Some(tessera.user(&name).await.map_err(describe)?.id),
                None => None,
            };
            for s in tessera.sessions(owner).await? {
                let r = s.record;
                println!(
                    "{}\t{}\tcreated {}\tlast used {}\texpires {}\t{}\t{}",
                    r.id,
                    r.username,
                    when(r.created_at),
                    when(r.last_used_at),
                    when(s.expires_at),
                    r.ip.map_or_else(|| "-".into(), |ip| ip.to_string()),
                    r.user_agent.unwrap_or_else(|| "-".into()),
                );
            }
        }
        SessionsCommand::Revoke { id, user } => match (id, user) {
            (_, Some(name)) => {
                let n = tessera.revoke_user(&name).await.map_err(describe)?;
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
        KeysCommand::List => {
            for k in tessera.key_report() {
                let state = match (k.signing, k.published) {
                    (true, _) => "signing",
                    (false, true) if k.activate_at > tessera.now() => "pending",
                    (false, true) => "published",
                    (false, false) => "retired",
                };
                println!(
                    "{}\t{}\t{}\tcreated {}\tsigns from {}",
                    k.kid,
                    k.alg,
                    state,
                    when(k.created_at),
                    when(k.activate_at)
                );
            }
        }
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

/// Turns domain errors into the operator's wording.
fn describe(e: Error) -> anyhow::Error {
    match e {
        Error::NotFound => anyhow::anyhow!("not found"),
        Error::InvalidRequest(m) => anyhow::anyhow!(m),
        Error::UsernameTaken => anyhow::anyhow!("that username is taken"),
        other => anyhow::anyhow!(other),
    }
}

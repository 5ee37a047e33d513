//! `tessera-bench`: the tools behind `bench/run-matrix.sh` and BENCHMARKS.md.
//!
//! - `seed`: fills a fresh database with N background sessions (set-based `INSERT … SELECT` in
//!   the database itself, over the store crates' own migrated schema) plus the users the load
//!   clients log in as. It is not a Tessera: nothing here is used by the server.
//! - `load`: a small HTTP/1.1 load generator (hyper, one thread, keep-alive connections). Its
//!   reason to exist is `refresh`: each connection logs in once with `"delivery": "body"` and
//!   then refreshes its *own* session with the token it got last, as a real client does; a
//!   generic tool would replay one token, which is reuse. It also drives `me` and `login`, to
//!   cross-check `wrk`.
//! - `argon2`: the login ceiling, timing argon2id verifications with Tessera's parameters.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tessera_core::{Settings, Store, SystemClock, Tessera, Timestamp, User};

#[derive(Parser)]
#[command(name = "tessera-bench", about = "Tessera's benchmark tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fill a fresh, empty database: background sessions plus the load clients' users
    Seed {
        /// `sqlite://path` or `postgres://…` (migrated here if needed)
        #[arg(long)]
        database: String,
        /// Background sessions to store (spread over sessions/20 users)
        #[arg(long)]
        sessions: u64,
        /// Users `bench-0` … `bench-(N-1)` for the load clients
        #[arg(long, default_value_t = 64)]
        clients: u32,
        /// Their password
        #[arg(long, default_value = "bench password 1")]
        password: String,
    },
    /// Drive one endpoint with C keep-alive connections for a while and print one JSON line
    Load {
        /// Server address (`127.0.0.1:8080`)
        #[arg(long)]
        addr: SocketAddr,
        /// What each connection does
        #[arg(long, value_enum)]
        endpoint: Endpoint,
        /// Concurrent connections (each one request at a time)
        #[arg(long, default_value_t = 64)]
        connections: u32,
        /// Measured seconds
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Unmeasured seconds first
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        /// Users `bench-0` … `bench-(N-1)` exist (as `seed` made them); connection i is user i mod N
        #[arg(long, default_value_t = 64)]
        clients: u32,
        /// Their password
        #[arg(long, default_value = "bench password 1")]
        password: String,
    },
    /// Time argon2id verifications (Tessera's parameters) on 1 and on T threads
    Argon2 {
        /// Parallel threads for the ceiling (default: available cores)
        #[arg(long)]
        threads: Option<usize>,
        /// Verifications per thread
        #[arg(long, default_value_t = 100)]
        rounds: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Endpoint {
    /// `POST /auth/refresh`, chained: each connection presents the token it received last
    Refresh,
    /// `GET /auth/me` with the connection's own access token
    Me,
    /// `POST /auth/login`
    Login,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Seed {
            database,
            sessions,
            clients,
            password,
        } => runtime.block_on(seed(&database, sessions, clients, password)),
        Command::Load {
            addr,
            endpoint,
            connections,
            duration,
            warmup,
            clients,
            password,
        } => {
            let plan = Plan {
                addr,
                endpoint,
                clients: clients.max(1),
                password,
                warmup: Duration::from_secs_f64(warmup),
                duration: Duration::from_secs_f64(duration),
                logins: tokio::sync::Semaphore::new(LOGINS_AT_ONCE),
            };
            runtime.block_on(load(Arc::new(plan), connections))
        }
        Command::Argon2 { threads, rounds } => argon2_ceiling(threads, rounds),
    }
}

// ---------------------------------------------------------------------------------------------
// seed

async fn seed(url: &str, sessions: u64, clients: u32, password: String) -> anyhow::Result<()> {
    let started = Instant::now();
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(tessera_store_sqlite::SqliteStore::connect(url).await?)
    } else {
        Arc::new(tessera_store_postgres::PostgresStore::connect(url).await?)
    };
    // Opening the service creates the signing key and the refresh secret, as `serve` would.
    let tessera = Tessera::open(
        store.clone(),
        Settings::new("http://bench.invalid"),
        None,
        Arc::new(SystemClock),
    )
    .await?;
    // One argon2 hash, shared by every seeded user: hashing 50 000 passwords would take minutes
    // and tell nothing (a salt per user matters for security, not for speed).
    let first = tessera.create_user("bench-0", password).await?;
    let now = tessera.now();
    for i in 1..clients {
        store
            .insert_user(&User {
                id: uuid::Uuid::new_v4(),
                username: format!("bench-{i}"),
                password_hash: first.password_hash.clone(),
                created_at: now,
                disabled_at: None,
            })
            .await?;
    }
    let users = (sessions / 20).max(1);
    let bulk = Instant::now();
    if url.starts_with("sqlite:") {
        seed_sqlite(url, sessions, users, &first.password_hash, now)?;
    } else {
        seed_postgres(url, sessions, users, &first.password_hash, now).await?;
    }
    eprintln!(
        "seeded {sessions} sessions of {users} users in {:.1} s ({:.1} s in all, {clients} bench users)",
        bulk.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Rows are generated inside SQLite (a recursive CTE, `randomblob`), in one transaction: no
/// round trip per row, ~1 µs a row.
fn seed_sqlite(
    url: &str,
    sessions: u64,
    users: u64,
    phc: &str,
    now: Timestamp,
) -> anyhow::Result<()> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .context("not a sqlite: URL")?;
    let mut db = rusqlite::Connection::open(path)?;
    db.busy_timeout(Duration::from_secs(5))?;
    // A seed that dies half-way is thrown away: no need to sync every page.
    db.pragma_update(None, "synchronous", "OFF")?;
    let sessions = i64::try_from(sessions)?;
    let users = i64::try_from(users)?;
    let now = now.as_millis();
    let tx = db.transaction()?;
    tx.execute(
        "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x + 1 < ?1) \
         INSERT INTO users (id, username, username_key, password_hash, created_at) \
         SELECT randomblob(16), 'seed-' || x, 'seed-' || x, ?2, ?3 FROM c",
        rusqlite::params![users, phc, now],
    )?;
    tx.execute_batch(
        "CREATE TEMP TABLE seed_users (n INTEGER PRIMARY KEY, id BLOB NOT NULL); \
         INSERT INTO seed_users (n, id) \
         SELECT CAST(substr(username_key, 6) AS INTEGER), id FROM users WHERE username_key LIKE 'seed-%'",
    )?;
    // Last use spread over the past day, so the `last_used_at` index is not one long run.
    tx.execute(
        "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x + 1 < ?1) \
         INSERT INTO sessions (id, user_id, generation, token_hash, created_at, rotated_at, \
                               last_used_at, user_agent, ip) \
         SELECT randomblob(16), (SELECT id FROM seed_users WHERE n = x % ?2), 0, randomblob(32), \
                ?3 - (x * 997) % 86400000, ?3 - (x * 997) % 86400000, ?3 - (x * 997) % 86400000, \
                'tessera-bench seed', '127.0.0.1' FROM c",
        rusqlite::params![sessions, users, now],
    )?;
    tx.execute_batch("DROP TABLE seed_users")?;
    tx.commit()?;
    db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

/// Rows are generated inside PostgreSQL (`generate_series`, `gen_random_uuid`), then the tables
/// are vacuumed and analysed so the server starts on settled statistics.
async fn seed_postgres(
    url: &str,
    sessions: u64,
    users: u64,
    phc: &str,
    now: Timestamp,
) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut db = sqlx::PgConnection::connect(url).await?;
    let sessions = i64::try_from(sessions)?;
    let users = i64::try_from(users)?;
    let now = now.as_millis();
    sqlx::query("SET synchronous_commit = off")
        .execute(&mut db)
        .await?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO users (id, username, username_key, password_hash, created_at) \
         SELECT gen_random_uuid(), 'seed-' || x, 'seed-' || x, $2, $3 \
         FROM generate_series(0, $1 - 1) AS x",
    )
    .bind(users)
    .bind(phc)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO sessions (id, user_id, generation, token_hash, created_at, rotated_at, \
                               last_used_at, user_agent, ip) \
         SELECT gen_random_uuid(), u.ids[1 + x % $2], 0, \
                uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), \
                $3 - (x * 997) % 86400000, $3 - (x * 997) % 86400000, $3 - (x * 997) % 86400000, \
                'tessera-bench seed', '127.0.0.1' \
         FROM generate_series(0, $1 - 1) AS x, \
              (SELECT array_agg(id ORDER BY id) AS ids FROM users WHERE username_key LIKE 'seed-%') AS u",
    )
    .bind(sessions)
    .bind(users)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("VACUUM ANALYZE users, sessions")
        .execute(&mut db)
        .await?;
    db.close().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// load

struct Plan {
    addr: SocketAddr,
    endpoint: Endpoint,
    clients: u32,
    password: String,
    warmup: Duration,
    duration: Duration,
    /// The connections' first logins go through this gate (see [`LOGINS_AT_ONCE`]).
    logins: tokio::sync::Semaphore,
}

/// How many connections log in at once before a run. Tessera counts a login against its
/// address's failure budget (30 a minute) from the moment it starts until its password check
/// succeeds, so 64 simultaneous logins from the one load generator would be held.
const LOGINS_AT_ONCE: usize = 8;

/// What one connection measured.
#[derive(Default)]
struct Tally {
    /// Latencies of measured requests, in microseconds.
    latencies: Vec<u32>,
    /// Measured requests that did not get the expected status.
    errors: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: Option<String>,
}

async fn load(plan: Arc<Plan>, connections: u32) -> anyhow::Result<()> {
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let until = measure_from + plan.duration;
    let cpu_before = Arc::new(std::sync::Mutex::new(None::<f64>));
    let mut tasks = Vec::new();
    for i in 0..connections {
        let plan = plan.clone();
        tasks.push(tokio::spawn(async move {
            connection(plan, i, measure_from, until).await
        }));
    }
    // Sample our own CPU time when measuring starts, for the generator's share of the cores.
    {
        let cpu_before = cpu_before.clone();
        tokio::time::sleep_until(measure_from.into()).await;
        *cpu_before.lock().unwrap_or_else(|e| e.into_inner()) = Some(own_cpu_seconds());
    }
    let mut all = Tally::default();
    for task in tasks {
        let tally = task.await??;
        all.latencies.extend(tally.latencies);
        all.errors += tally.errors;
    }
    let cpu = own_cpu_seconds()
        - cpu_before
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(0.0);
    let secs = plan.duration.as_secs_f64();
    all.latencies.sort_unstable();
    let pct = |p: f64| {
        let n = all.latencies.len();
        if n == 0 {
            return 0.0;
        }
        let idx = ((p / 100.0) * n as f64).ceil() as usize;
        f64::from(all.latencies[idx.clamp(1, n) - 1]) / 1000.0
    };
    let line = serde_json::json!({
        "endpoint": format!("{:?}", plan.endpoint).to_lowercase(),
        "connections": connections,
        "seconds": secs,
        "requests": all.latencies.len(),
        "errors": all.errors,
        "rps": all.latencies.len() as f64 / secs,
        "p50_ms": pct(50.0),
        "p90_ms": pct(90.0),
        "p99_ms": pct(99.0),
        "max_ms": pct(100.0),
        "generator_cpu_cores": cpu / secs,
    });
    println!("{line}");
    Ok(())
}

/// User + system CPU seconds of this process so far (`/proc/self/stat`, in clock ticks of
/// 1/100 s on Linux).
fn own_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

async fn open(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    plan: &Plan,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<String>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, plan.addr.to_string());
    if let Some(token) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

fn login_body(plan: &Plan, i: u32) -> String {
    serde_json::json!({
        "username": format!("bench-{}", i % plan.clients),
        "password": plan.password,
        "delivery": "body",
    })
    .to_string()
}

async fn login(
    sender: &mut SendRequest<Full<Bytes>>,
    plan: &Plan,
    i: u32,
) -> anyhow::Result<TokenResponse> {
    let (status, body) = send(
        sender,
        plan,
        Method::POST,
        "/auth/login",
        None,
        Some(login_body(plan, i)),
    )
    .await?;
    if status != StatusCode::OK {
        bail!(
            "login as bench-{} failed: {status} {}",
            i % plan.clients,
            String::from_utf8_lossy(&body)
        );
    }
    serde_json::from_slice(&body).context("login response")
}

async fn connection(
    plan: Arc<Plan>,
    i: u32,
    measure_from: Instant,
    until: Instant,
) -> anyhow::Result<Tally> {
    let mut sender = open(plan.addr).await?;
    let mut tally = Tally::default();
    let mut session = match plan.endpoint {
        Endpoint::Login => None,
        _ => {
            let _turn = plan.logins.acquire().await?;
            Some(login(&mut sender, &plan, i).await?)
        }
    };
    loop {
        let began = Instant::now();
        if began >= until {
            return Ok(tally);
        }
        let (status, body) = match (&plan.endpoint, &session) {
            (Endpoint::Refresh, Some(s)) => {
                let body = serde_json::json!({ "refresh_token": s.refresh_token }).to_string();
                send(
                    &mut sender,
                    &plan,
                    Method::POST,
                    "/auth/refresh",
                    None,
                    Some(body),
                )
                .await?
            }
            (Endpoint::Me, Some(s)) => {
                let token = s.access_token.clone();
                send(
                    &mut sender,
                    &plan,
                    Method::GET,
                    "/auth/me",
                    Some(&token),
                    None,
                )
                .await?
            }
            _ => {
                let body = login_body(&plan, i);
                send(
                    &mut sender,
                    &plan,
                    Method::POST,
                    "/auth/login",
                    None,
                    Some(body),
                )
                .await?
            }
        };
        let ended = Instant::now();
        let ok = status == StatusCode::OK;
        if began >= measure_from && ended <= until {
            let micros = u32::try_from(ended.duration_since(began).as_micros()).unwrap_or(u32::MAX);
            tally.latencies.push(micros);
            if !ok {
                tally.errors += 1;
            }
        }
        if plan.endpoint == Endpoint::Refresh {
            session = Some(if ok {
                serde_json::from_slice(&body).context("refresh response")?
            } else {
                // A broken chain (should not happen): start a new session and go on.
                login(&mut sender, &plan, i).await?
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// argon2

/// Tessera's argon2id parameters (`tessera_core::password`): OWASP's m = 19 MiB, t = 2, p = 1.
fn argon2id() -> anyhow::Result<argon2::Argon2<'static>> {
    let params = argon2::Params::new(19_456, 2, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    ))
}

fn argon2_ceiling(threads: Option<usize>, rounds: u32) -> anyhow::Result<()> {
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let password = b"bench password 1";
    let phc = argon2id()?
        .hash_password(password)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string();
    let verify_many = |n: u32| -> anyhow::Result<()> {
        let argon = argon2id()?;
        for _ in 0..n {
            if argon.verify_password(password, phc.as_str()).is_err() {
                bail!("argon2 verification failed");
            }
        }
        Ok(())
    };
    verify_many(3)?; // warm-up
    let t = Instant::now();
    verify_many(rounds)?;
    let one = t.elapsed().as_secs_f64() / f64::from(rounds);
    let t = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| verify_many(rounds)))
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().unwrap_or_else(|_| bail!("a thread panicked")))
    })?;
    let parallel = (threads as f64 * f64::from(rounds)) / t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "ms_per_hash_one_thread": one * 1000.0,
            "threads": threads,
            "ceiling_per_s": threads as f64 / one,
            "measured_parallel_per_s": parallel,
        })
    );
    Ok(())
}

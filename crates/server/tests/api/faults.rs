//! Faults under load: the database stopping, freezing or jammed by a lock and coming back, and
//! an instance killed with `kill -9`.
//!
//! The database faults run on a PostgreSQL cluster of the test's own ([`PgCluster`]: `initdb` in
//! a temporary directory, a free port, `pg_ctl start`/`stop`), so they disturb nobody; the shared
//! server on 5432 is never stopped. Without PostgreSQL's binaries these tests are skipped with a
//! notice, unless `CI` is set: then they fail.
//!
//! Sessions are judged the way a client sees them. A client keeps the last refresh token it
//! received and, after an error or no answer, retries with it: if the lost request had rotated
//! the token, that retry is the predecessor within the grace window and gets the same
//! successor. So whatever was lost in flight, no session may be lost, ended or forked, and of
//! all the tokens a client ever received exactly one, its last, is current.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::SettingsArgs;
use tessera_core::{Clock, ManualClock, Store, SystemClock};
use tessera_store_postgres::testing::throwaway_database;

use crate::helpers::*;

/// No request may take longer than this, whatever the database is doing (a client that waits
/// longer counts it as no answer, and fails the test).
const REQUEST_LIMIT: Duration = Duration::from_secs(8);
/// How soon after the fault ends every client must be served again.
const RECOVERY_LIMIT: Duration = Duration::from_secs(10);
/// Client tasks in a load, each with a session of its own.
const CLIENTS: usize = 4;
/// How long a load runs before and after a fault.
const STEADY: Duration = Duration::from_millis(1500);
const ISSUER: &str = "http://tessera.test";

// ---------------------------------------------------------------------------------------------
// A private PostgreSQL cluster.

/// A PostgreSQL cluster in a temporary directory, on a port of its own, run by this test alone.
/// Dropping it stops the server (`immediate`) and deletes the directory.
struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Root may not run PostgreSQL: commands then run as the `postgres` user.
    as_postgres: bool,
    running: bool,
    /// Processes stopped by [`PgCluster::freeze`], to continue.
    frozen: Vec<u32>,
}

impl PgCluster {
    /// Creates (`initdb`) and starts a cluster. `None` (after a notice) when PostgreSQL's
    /// binaries are missing and `CI` is not set; a panic when they are missing in CI or fail.
    async fn start_new() -> Option<Self> {
        let Some(bin) = postgres_bin_dir() else {
            assert!(
                !in_ci(),
                "PostgreSQL's binaries (initdb, pg_ctl) were not found and CI is set; install \
                 PostgreSQL or set TESSERA_TEST_PG_BIN to their directory"
            );
            eprintln!(
                "note: fault test skipped: initdb and pg_ctl not found (set TESSERA_TEST_PG_BIN \
                 to their directory); with CI set this fails instead"
            );
            return None;
        };
        let cluster = tokio::task::spawn_blocking(move || {
            let dir = std::env::temp_dir().join(format!("tessera-pg-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).expect("create the cluster directory");
            let mut cluster = PgCluster {
                dir,
                bin,
                port: 0,
                as_postgres: running_as_root(),
                running: false,
                frozen: Vec::new(),
            };
            if cluster.as_postgres {
                run(Command::new("chown").arg("postgres:").arg(&cluster.dir));
            }
            let data = cluster.data();
            run(cluster
                .pg_command("initdb")
                .args(["-U", "postgres", "-A", "trust"])
                .args(["-E", "UTF8", "--no-sync", "-D"])
                .arg(&data));
            // A port found free can be taken before the server binds it: try a few.
            for attempt in 0..3 {
                cluster.port = free_port();
                match cluster.try_start() {
                    Ok(()) => return cluster,
                    Err(e) if attempt < 2 => eprintln!("note: retrying on another port: {e}"),
                    Err(e) => panic!("cannot start the test cluster: {e}"),
                }
            }
            unreachable!("the last attempt panics")
        })
        .await
        .expect("start the cluster");
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl start`, waiting until it accepts connections.
    fn try_start(&mut self) -> Result<(), String> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off \
             -c full_page_writes=off -c max_connections=40 -c shared_buffers=16MB",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        let status = self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(&log)
            .args(["-o", &options, "-w", "-t", "30", "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run pg_ctl");
        if status.success() {
            self.running = true;
            Ok(())
        } else {
            Err(format!(
                "pg_ctl start: {status}; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ))
        }
    }

    fn start(&mut self) {
        if let Err(e) = self.try_start() {
            panic!("cannot restart the test cluster: {e}");
        }
    }

    /// `pg_ctl stop` in `mode` (`fast`: sessions are ended, as in an orderly restart;
    /// `immediate`: as in a crash).
    fn stop(&mut self, mode: &str) {
        run(self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", mode, "-w", "-t", "30", "stop"]));
        self.running = false;
    }

    /// Stops (`SIGSTOP`) the server and every backend: the database still accepts TCP
    /// connections (the kernel does) but answers nothing, like a hung host or a network that
    /// drops packets.
    fn freeze(&mut self) {
        let postmaster = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .expect("postmaster.pid")
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<u32>().ok())
            .expect("the postmaster's pid");
        // The postmaster first, so it forks no backend we would miss.
        signal("STOP", &[postmaster]);
        self.frozen.push(postmaster);
        let children = children_of(postmaster);
        signal("STOP", &children);
        self.frozen.extend(children);
    }

    /// Continues what [`PgCluster::freeze`] stopped.
    fn thaw(&mut self) {
        signal("CONT", &std::mem::take(&mut self.frozen));
    }

    /// `psql -c SQL` on the cluster's database, as a child process (so a test can hold a lock
    /// while it goes on).
    fn psql(&self, sql: &str) -> Child {
        Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url(),
                "-c",
                sql,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run psql (it comes with PostgreSQL's server binaries)")
    }

    fn pg_command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        };
        // A directory the postgres user may enter (the test's own may not be).
        cmd.current_dir(&self.dir);
        cmd
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.thaw();
        if self.running {
            let _ = self
                .pg_command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where `initdb` and `pg_ctl` are: `TESSERA_TEST_PG_BIN`, else Debian's newest
/// `/usr/lib/postgresql/*/bin`, else the first directory on `PATH` that has both.
fn postgres_bin_dir() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("TESSERA_TEST_PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(has_both(&dir), "no initdb and pg_ctl in {}", dir.display());
        return Some(dir);
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).find(|dir| has_both(dir))
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `CI` set to anything but empty, `0` or `false`.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "FALSE"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port()
}

/// The processes whose parent is `pid` (from `/proc/*/stat`).
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| {
            let child: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
            let after = &stat[stat.rfind(')')? + 1..];
            let ppid: u32 = after.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == pid).then_some(child)
        })
        .collect()
}

/// `kill -SIG PID…` (processes of the test's own cluster only).
fn signal(sig: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .args(pids.iter().map(u32::to_string))
        .status();
}

/// Runs a command to completion; panics with its output if it fails.
fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run a PostgreSQL command");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// Clients under load.

/// How one refresh request ended.
#[derive(Debug)]
enum Outcome {
    Ok,
    /// `503 {"error": "unavailable", …}`.
    Unavailable,
    /// Any other status: damage, or a fault not mapped as it should be.
    Unexpected(#[allow(dead_code)] StatusCode, #[allow(dead_code)] String),
    /// No answer (connection refused or reset, or the request outlived [`REQUEST_LIMIT`]).
    NoAnswer(#[allow(dead_code)] String),
}

/// One request: to which instance, when, how long it took, how it ended.
#[derive(Debug)]
struct Attempt {
    base: String,
    sent: Instant,
    took: Duration,
    outcome: Outcome,
}

/// A native client with one session: every refresh token it has received, oldest first, and
/// every attempt it made. It always presents the last token it received.
#[derive(Debug)]
struct LoadClient {
    sid: String,
    tokens: Vec<String>,
    attempts: Vec<Attempt>,
}

impl LoadClient {
    /// Logs `username` in with body delivery.
    async fn login(http: &reqwest::Client, base: &str, username: &str) -> Self {
        let r = http
            .post(format!("{base}/auth/login"))
            .json(&json!({"username": username, "password": PASSWORD, "delivery": "body"}))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), StatusCode::OK, "login {username}");
        let body: Value = r.json().await.expect("json");
        LoadClient {
            sid: body["session_id"].as_str().expect("sid").to_owned(),
            tokens: vec![body["refresh_token"].as_str().expect("token").to_owned()],
            attempts: Vec::new(),
        }
    }

    fn latest(&self) -> &str {
        self.tokens
            .last()
            .expect("a client starts with its login token")
    }

    /// Presents the latest token to `base` once and records what happened.
    async fn refresh_once(&mut self, http: &reqwest::Client, base: &str) -> &Outcome {
        let sent = Instant::now();
        let result = http
            .post(format!("{base}/auth/refresh"))
            .json(&json!({"refresh_token": self.latest()}))
            .timeout(REQUEST_LIMIT)
            .send()
            .await;
        let outcome = match result {
            Err(e) => Outcome::NoAnswer(e.to_string()),
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                match (status, body["refresh_token"].as_str()) {
                    (StatusCode::OK, Some(token)) => {
                        self.tokens.push(token.to_owned());
                        Outcome::Ok
                    }
                    (StatusCode::SERVICE_UNAVAILABLE, _)
                        if body["error"] == "unavailable"
                            && body["error_description"].is_string() =>
                    {
                        Outcome::Unavailable
                    }
                    _ => Outcome::Unexpected(status, text),
                }
            }
        };
        self.attempts.push(Attempt {
            base: base.to_owned(),
            sent,
            took: sent.elapsed(),
            outcome,
        });
        &self.attempts.last().expect("just pushed").outcome
    }

    /// When the first success sent at or after `t` came back.
    fn first_ok_after(&self, t: Instant) -> Option<Instant> {
        self.attempts
            .iter()
            .find(|a| a.sent >= t && matches!(a.outcome, Outcome::Ok))
            .map(|a| a.sent + a.took)
    }
}

/// Clients refreshing in a loop, each its own session, until [`Load::finish`].
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<LoadClient>>,
}

impl Load {
    /// Each client refreshes in turn on each of `bases`, pausing briefly after each request (a
    /// steady load rather than a flood: two cores, shared with the servers). An instance that
    /// does not answer is dropped from the client's rotation while another is left, and the
    /// same token is presented to the next one at once, as a client behind a load balancer
    /// would see it.
    fn start(http: &reqwest::Client, bases: &[String], clients: Vec<LoadClient>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = clients
            .into_iter()
            .map(|mut client| {
                let (http, mut bases, stop) = (http.clone(), bases.to_vec(), stop.clone());
                tokio::spawn(async move {
                    for turn in 0usize.. {
                        let base = bases[turn % bases.len()].clone();
                        let pause = match client.refresh_once(&http, &base).await {
                            // Stop at a success, so the last token is known good.
                            Outcome::Ok if stop.load(Ordering::SeqCst) => break,
                            Outcome::Ok => 10,
                            Outcome::NoAnswer(_) if bases.len() > 1 => {
                                bases.retain(|b| *b != base);
                                0
                            }
                            _ => 100,
                        };
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                    client
                })
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops the load at each client's next success and hands the clients back.
    async fn finish(self) -> Vec<LoadClient> {
        self.stop.store(true, Ordering::SeqCst);
        let mut clients = Vec::new();
        for task in self.tasks {
            clients.push(
                tokio::time::timeout(RECOVERY_LIMIT + REQUEST_LIMIT, task)
                    .await
                    .expect("every client is served again")
                    .expect("client task"),
            );
        }
        clients
    }
}

/// Every attempt of every client.
fn attempts(clients: &[LoadClient]) -> impl Iterator<Item = &Attempt> + Clone {
    clients.iter().flat_map(|c| &c.attempts)
}

fn count(clients: &[LoadClient], pred: impl Fn(&Attempt) -> bool) -> usize {
    attempts(clients).filter(|a| pred(a)).count()
}

/// Asserts what no fault may do to a session: it is not lost or ended, it did not fork (every
/// rotation the database made reached the client: the session's generation is the number of
/// tokens the client received after its login one), and of all the tokens the client ever
/// received exactly one, its last, is current — and it refreshes.
async fn assert_session_intact(
    store: &dyn tessera_core::Store,
    client: &LoadClient,
    http: &reqwest::Client,
    base: &str,
) {
    let record = store
        .session(client.sid.parse().expect("sid"))
        .await
        .expect("read the session")
        .unwrap_or_else(|| panic!("session {} lost", client.sid));
    assert_eq!(record.revoked_at, None, "session {} ended", client.sid);
    assert_eq!(
        usize::try_from(record.generation).expect("small"),
        client.tokens.len() - 1,
        "session {}: every rotation reached the client",
        client.sid
    );
    let distinct: std::collections::HashSet<&String> = client.tokens.iter().collect();
    assert_eq!(
        distinct.len(),
        client.tokens.len(),
        "no token handed out twice"
    );
    assert_eq!(
        current_tokens(store, &client.sid, &client.tokens).await,
        [client.tokens.len() - 1],
        "session {}: the client's last token, and only it, is current",
        client.sid
    );
    let r = http
        .post(format!("{base}/auth/refresh"))
        .json(&json!({"refresh_token": client.latest()}))
        .send()
        .await
        .expect("refresh");
    assert_eq!(r.status(), StatusCode::OK, "the last token refreshes");
}

// ---------------------------------------------------------------------------------------------
// Database faults.

/// What happens to the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// `pg_ctl stop -m fast`, then `pg_ctl start`: connections refused meanwhile.
    Stop,
    /// `SIGSTOP` of every PostgreSQL process, then `SIGCONT`: connections and statements hang
    /// (a hung host, a network dropping packets). The freeze comes while statements are queued
    /// on a table lock, so some are surely in the server when it stops answering: only this
    /// process's own time limit can end those, the server's cannot.
    Freeze,
    /// Another session holds `ACCESS EXCLUSIVE` on `sessions`: statements queue on the lock.
    Lock,
}

impl Fault {
    /// How long the fault lasts: longer than the store's time limits, so they are what ends
    /// each request, not the fault.
    fn duration(self) -> Duration {
        match self {
            Fault::Stop => Duration::from_secs(3),
            Fault::Freeze | Fault::Lock => Duration::from_secs(8),
        }
    }
}

/// Runs `fault` on a private cluster under a steady refresh load and checks that every request
/// got an answer within [`REQUEST_LIMIT`] (200 or `503 unavailable`, never a 500, never a
/// hang), that `/readyz` says 503 while the database cannot answer, that the same process
/// serves every client again within [`RECOVERY_LIMIT`] of the end of the fault, and that every
/// session is intact.
async fn database_fault_under_load(fault: Fault) {
    let Some(mut cluster) = PgCluster::start_new().await else {
        return;
    };
    let args = SettingsArgs {
        issuer: Some(ISSUER.into()),
        ..SettingsArgs::default()
    };
    // A stopped clock: every retry of a token whose rotation was lost is within grace.
    let app = start_on_url(&cluster.url(), args, ManualClock::new(SystemClock.now())).await;
    app.register("loader", PASSWORD).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(LoadClient::login(&app.http, &app.base, "loader").await);
    }
    let load = Load::start(&app.http, std::slice::from_ref(&app.base), clients);
    tokio::time::sleep(STEADY).await;

    // The fault, while /readyz is probed.
    let fault_at = Instant::now();
    let lock = match fault {
        Fault::Lock | Fault::Freeze => {
            let sql = format!(
                "BEGIN; LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({}); COMMIT;",
                fault.duration().as_secs()
            );
            Some(cluster.psql(&sql))
        }
        _ => None,
    };
    let mut cluster = tokio::task::spawn_blocking(move || {
        match fault {
            Fault::Stop => cluster.stop("fast"),
            Fault::Freeze => {
                // Let statements queue on the lock first.
                std::thread::sleep(Duration::from_millis(500));
                cluster.freeze();
            }
            Fault::Lock => {}
        }
        cluster
    })
    .await
    .expect("begin the fault");
    let mut readyz = Vec::new();
    while fault_at.elapsed() < fault.duration() {
        let sent = Instant::now();
        let r = app
            .http
            .get(app.url("/readyz"))
            .timeout(REQUEST_LIMIT)
            .send()
            .await
            .expect("/readyz answers whatever the database does");
        let status = r.status();
        if status != StatusCode::OK {
            let (_, body) = error_of(r).await;
            assert_eq!(body["error"], "unavailable", "{body}");
        }
        readyz.push((status, sent.elapsed()));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut cluster = tokio::task::spawn_blocking(move || {
        match fault {
            Fault::Stop => cluster.start(),
            Fault::Freeze => cluster.thaw(),
            Fault::Lock => {}
        }
        cluster
    })
    .await
    .expect("end the fault");
    if let Some(mut lock) = lock {
        // pg_sleep ends it; a psql that failed to take the lock would make the test fail below.
        let status = tokio::task::spawn_blocking(move || lock.wait())
            .await
            .expect("psql")
            .expect("wait for psql");
        assert!(status.success(), "psql held the lock: {status}");
    }
    let back_at = Instant::now();

    // Back: the same process serves again, without a restart.
    let ready_after = loop {
        let r = app
            .http
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("/readyz");
        if r.status() == StatusCode::OK {
            break back_at.elapsed();
        }
        assert!(
            back_at.elapsed() < RECOVERY_LIMIT,
            "/readyz still {} {RECOVERY_LIMIT:?} after the fault ended",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(STEADY).await;
    let clients = load.finish().await;

    // Every request got an answer, quickly, and the right one.
    let wrong: Vec<_> = attempts(&clients)
        .filter(|a| !matches!(a.outcome, Outcome::Ok | Outcome::Unavailable))
        .collect();
    assert!(wrong.is_empty(), "only 200 or 503 unavailable: {wrong:?}");
    let slowest = attempts(&clients).map(|a| a.took).max().unwrap_or_default();
    let unavailable = count(&clients, |a| matches!(a.outcome, Outcome::Unavailable));
    assert!(unavailable > 0, "the fault was seen");
    let readyz_503 = readyz
        .iter()
        .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    let readyz_slowest = readyz.iter().map(|(_, t)| *t).max().unwrap_or_default();
    if fault != Fault::Lock {
        // A lock on one table does not stop the database answering `SELECT 1`.
        assert!(
            readyz_503 > 0,
            "/readyz said 503 during the fault: {readyz:?}"
        );
    }
    let mut recovered_after = Duration::ZERO;
    for c in &clients {
        let served = c
            .first_ok_after(back_at)
            .unwrap_or_else(|| panic!("client {} never served again", c.sid));
        recovered_after = recovered_after.max(served.saturating_duration_since(back_at));
    }
    assert!(recovered_after < RECOVERY_LIMIT, "{recovered_after:?}");
    eprintln!(
        "{fault:?} for {:?}: {} requests sent during it, {unavailable} answered 503 unavailable, \
         slowest request {slowest:?}; /readyz {readyz_503}/{} probes 503, slowest \
         {readyz_slowest:?}; after it /readyz 200 in {ready_after:?}, every client served within \
         {recovered_after:?}; {} refreshes in all",
        back_at - fault_at,
        count(&clients, |a| a.sent >= fault_at && a.sent < back_at),
        readyz.len(),
        count(&clients, |a| matches!(a.outcome, Outcome::Ok)),
    );

    // And every session is intact.
    for c in &clients {
        assert_session_intact(&**app.tessera.store(), c, &app.http, &app.base).await;
    }
    app.cleanup().await;
    tokio::task::spawn_blocking(move || {
        cluster.stop("fast");
        drop(cluster);
    })
    .await
    .expect("remove the cluster");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_stopped_under_load_gives_503s_and_recovers_without_a_restart() {
    database_fault_under_load(Fault::Stop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_gives_503s_within_seconds_not_hung_requests() {
    database_fault_under_load(Fault::Freeze).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_lock_held_for_long_gives_503s_not_hung_requests() {
    database_fault_under_load(Fault::Lock).await;
}

// ---------------------------------------------------------------------------------------------
// An instance killed.

/// A `tessera serve` process; killed on drop.
struct Serve {
    child: Child,
    base: String,
    stderr: PathBuf,
}

impl Serve {
    /// Starts `tessera serve` on `database_url` and a free port, with a cleared environment,
    /// and waits until `/healthz` answers.
    async fn start(dir: &Path, name: &str, database_url: &str, http: &reqwest::Client) -> Self {
        let mut last_error = String::new();
        // A port found free can be taken before the server binds it: try a few.
        for attempt in 0..3 {
            let port = free_port();
            let stderr = dir.join(format!("{name}-{attempt}.err"));
            let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
                .arg("serve")
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", dir)
                .env("RUST_LOG", "warn")
                .env("TESSERA_DATABASE_URL", database_url)
                .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
                .env("TESSERA_ISSUER", ISSUER)
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&stderr).expect("stderr file"))
                .spawn()
                .expect("start tessera serve");
            let mut server = Serve {
                child,
                base: format!("http://127.0.0.1:{port}"),
                stderr,
            };
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                if let Ok(r) = http.get(format!("{}/healthz", server.base)).send().await
                    && r.status() == StatusCode::OK
                {
                    return server;
                }
                if let Ok(Some(status)) = server.child.try_wait() {
                    last_error = format!("exited ({status})");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            last_error = format!(
                "{name}: {last_error}; stderr: {}",
                std::fs::read_to_string(&server.stderr).unwrap_or_default()
            );
        }
        panic!("tessera serve did not start: {last_error}");
    }

    /// `kill -9`.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Registers the user every load client of the process tests logs in as.
async fn register_loader(http: &reqwest::Client, base: &str) {
    let r = http
        .post(format!("{base}/auth/register"))
        .json(&json!({"username": "loader", "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// Two `tessera serve` processes on one PostgreSQL database, clients refreshing on both, and
/// one killed with `kill -9` mid-load: the other keeps serving every client, and no session is
/// damaged (a rotation committed by the dead instance whose answer was lost is handed back by
/// the survivor under the grace rule).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_two_instances_under_load_damages_no_session() {
    let Some(db) = throwaway_database().await else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tessera-kill-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let http = reqwest::Client::new();
    let mut a = Serve::start(&dir, "a", db.url(), &http).await;
    let b = Serve::start(&dir, "b", db.url(), &http).await;

    register_loader(&http, &a.base).await;
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        clients.push(LoadClient::login(&http, base, "loader").await);
    }
    let load = Load::start(&http, &[a.base.clone(), b.base.clone()], clients);
    tokio::time::sleep(STEADY).await;
    let killed_at = Instant::now();
    a.kill();
    tokio::time::sleep(STEADY).await;
    let clients = load.finish().await;

    let wrong: Vec<_> = attempts(&clients)
        .filter(|x| match x.outcome {
            Outcome::Ok => false,
            // Only the dead instance may fail to answer.
            Outcome::NoAnswer(_) => x.base != a.base,
            _ => true,
        })
        .collect();
    assert!(wrong.is_empty(), "unexpected answers: {wrong:?}");
    for c in &clients {
        assert!(
            c.first_ok_after(killed_at).is_some(),
            "client {} served by the survivor",
            c.sid
        );
    }
    eprintln!(
        "kill -9: {} refreshes on A before it died, {} requests to A unanswered (each retried on \
         B with the same token), {} refreshes on B",
        count(&clients, |x| x.base == a.base
            && matches!(x.outcome, Outcome::Ok)),
        count(&clients, |x| matches!(x.outcome, Outcome::NoAnswer(_))),
        count(&clients, |x| x.base == b.base
            && matches!(x.outcome, Outcome::Ok)),
    );

    let store = db.store().await;
    for c in &clients {
        assert_session_intact(&store, c, &http, &b.base).await;
    }
    store.close().await;
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
    db.drop_db().await;
}

// ---------------------------------------------------------------------------------------------
// A crash on SQLite.

/// Clients refreshing as fast as they can, so that some rotations are always between their
/// commit and their answer.
const CRASH_CLIENTS: usize = 16;

/// The only server, on SQLite, killed with `kill -9` in the middle of refresh load, then
/// restarted on the same file. The store answers a write only after its batch commits, and a
/// commit in WAL mode is in the operating system's hands even with `synchronous=NORMAL` (only a
/// power loss could take back the last unsynced commits), so each session must be at the last
/// token its client received, or one rotation further (committed, its answer lost to the
/// kill) — never behind, never forked. After the restart each client presents its last token:
/// either its rotation or, for the lost answers, the grace replay that hands back the lost
/// successor; then exactly one token per session is current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_server_on_sqlite_mid_refresh_loses_no_answered_rotation_and_forks_nothing() {
    let dir = std::env::temp_dir().join(format!("tessera-crash-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("tessera.db").display());
    let http = reqwest::Client::new();
    let mut server = Serve::start(&dir, "before", &url, &http).await;
    register_loader(&http, &server.base).await;
    let mut clients = Vec::new();
    for _ in 0..CRASH_CLIENTS {
        clients.push(LoadClient::login(&http, &server.base, "loader").await);
    }
    // Each client stops at its first request that does not succeed: the kill.
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let (http, base) = (http.clone(), server.base.clone());
            tokio::spawn(async move {
                while matches!(client.refresh_once(&http, &base).await, Outcome::Ok) {}
                client
            })
        })
        .collect();
    tokio::time::sleep(STEADY).await;
    server.kill();
    let mut clients = Vec::new();
    for task in tasks {
        clients.push(
            tokio::time::timeout(REQUEST_LIMIT, task)
                .await
                .expect("every request ends at the kill")
                .expect("client task"),
        );
    }
    let refreshed = count(&clients, |a| matches!(a.outcome, Outcome::Ok));
    assert!(refreshed >= CRASH_CLIENTS, "the load ran before the kill");

    // The file as the kill left it (opening it recovers the WAL), before anything else runs.
    let store = tessera_store_sqlite::SqliteStore::connect(&url)
        .await
        .expect("reopen after the crash");
    let mut answers_lost = 0;
    for c in &clients {
        let received = c.tokens.len() - 1;
        let record = store
            .session(c.sid.parse().expect("sid"))
            .await
            .expect("read the session")
            .unwrap_or_else(|| panic!("session {} lost", c.sid));
        assert_eq!(record.revoked_at, None, "session {} ended", c.sid);
        let generation = usize::try_from(record.generation).expect("small");
        let current = current_tokens(&store, &c.sid, &c.tokens).await;
        if generation == received {
            assert_eq!(
                current,
                [received],
                "session {}: its last token is current",
                c.sid
            );
        } else {
            assert_eq!(
                generation,
                received + 1,
                "session {}: at the last token received ({received}) or one further",
                c.sid
            );
            assert!(
                current.is_empty(),
                "session {}: no earlier token is current",
                c.sid
            );
            answers_lost += 1;
        }
    }
    store.close().await;

    let server = Serve::start(&dir, "after", &url, &http).await;
    for c in &mut clients {
        let sid = c.sid.clone();
        let outcome = c.refresh_once(&http, &server.base).await;
        assert!(
            matches!(outcome, Outcome::Ok),
            "session {sid}: the last token refreshes after the restart: {outcome:?}"
        );
    }
    let store = tessera_store_sqlite::SqliteStore::connect(&url)
        .await
        .expect("open");
    for c in &clients {
        assert_session_intact(&store, c, &http, &server.base).await;
    }
    store.close().await;
    eprintln!(
        "kill -9 on SQLite: {refreshed} refreshes answered before it, {answers_lost} rotations \
         committed whose answers the kill lost (handed back by the grace rule after the restart)"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

//! The `tessera` CLI, run as a process against a temporary database.
//!
//! Each test gets its own directory (database, config files, captured output) and, when it
//! needs a server, its own port. Children run with a cleared environment, so a `TESSERA_*`
//! variable in the developer's shell cannot change what is tested.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";
/// Generous: debug builds, two cores and other engineers compiling in the same tree.
const DEADLINE: Duration = Duration::from_secs(60);

/// A temporary directory with a database URL in it; deleted on drop.
struct Cli {
    dir: PathBuf,
    runs: AtomicUsize,
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How a finished command ended, with what it printed.
#[derive(Debug)]
struct Run {
    args: Vec<String>,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts success and returns standard output.
    fn ok(&self) -> &str {
        assert!(
            self.status.success(),
            "`tessera {}` failed ({}): {}",
            self.args.join(" "),
            self.status,
            self.stderr
        );
        &self.stdout
    }

    /// Asserts failure with exactly one line on standard error, and returns that line.
    fn one_line_error(&self) -> &str {
        assert!(
            !self.status.success(),
            "`tessera {}` should have failed; stdout: {}",
            self.args.join(" "),
            self.stdout
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "`tessera {}` should say one line on stderr, said: {:?}",
            self.args.join(" "),
            self.stderr
        );
        assert!(!lines[0].trim().is_empty(), "the error line is blank");
        lines[0]
    }
}

impl Cli {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("tessera-cli-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create the test directory");
        Self {
            dir,
            runs: AtomicUsize::new(0),
        }
    }

    /// [`Cli::new`] with its database created (`tessera migrate`): the admin commands never
    /// create one.
    fn migrated() -> Self {
        let cli = Self::new();
        cli.run(&["migrate"]).ok();
        cli
    }

    fn db_path(&self) -> PathBuf {
        self.dir.join("t.db")
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.db_path().display())
    }

    /// `tessera ARGS` with nothing inherited but `PATH`, and `HOME` in the test directory.
    fn bare(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.dir)
            .current_dir(&self.dir)
            .args(args);
        cmd
    }

    /// `tessera ARGS` on this test's database, named by `TESSERA_DATABASE_URL`.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.bare(args);
        cmd.env("TESSERA_DATABASE_URL", self.url());
        cmd
    }

    /// Files that capture one child's output (files rather than pipes, so a chatty server
    /// never blocks on a full pipe).
    fn output_files(&self) -> (PathBuf, PathBuf) {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        (
            self.dir.join(format!("run{n}.out")),
            self.dir.join(format!("run{n}.err")),
        )
    }

    /// Runs `cmd` to completion, feeding it `stdin`; fails the test if it outlives
    /// [`DEADLINE`].
    fn finish(&self, mut cmd: Command, stdin: Option<&str>) -> Run {
        let args = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let (out, err) = self.output_files();
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(File::create(&out).expect("stdout file"))
        .stderr(File::create(&err).expect("stderr file"));
        let mut child = ChildGuard(cmd.spawn().expect("start tessera"));
        if let Some(text) = stdin {
            let mut pipe = child.0.stdin.take().expect("stdin pipe");
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.0.try_wait().expect("wait for tessera") {
                break status;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "`tessera {args:?}` still running after {DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Run {
            args,
            status,
            stdout: std::fs::read_to_string(out).expect("read stdout"),
            stderr: std::fs::read_to_string(err).expect("read stderr"),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.finish(self.command(args), None)
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.finish(self.command(args), Some(stdin))
    }

    /// `tessera user add NAME --password-stdin`, the way a shell pipes it (trailing newline).
    fn add_user(&self, name: &str, password: &str) {
        self.run_with_stdin(
            &["user", "add", name, "--password-stdin"],
            &format!("{password}\n"),
        )
        .ok();
    }

    /// `tessera serve` on a free port, with `env` added; waits until `/healthz` answers.
    async fn serve(&self, env: &[(&str, &str)]) -> Server {
        let mut last_error = String::new();
        // A free port found by binding and dropping can be taken by someone else before the
        // server binds it: try a few.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("find a free port")
                .port();
            let mut cmd = self.command(&["serve"]);
            cmd.env("TESSERA_BIND", format!("127.0.0.1:{port}"));
            for (k, v) in env {
                cmd.env(k, v);
            }
            let (out, err) = self.output_files();
            cmd.stdin(Stdio::null())
                .stdout(File::create(&out).expect("stdout file"))
                .stderr(File::create(&err).expect("stderr file"));
            let child = ChildGuard(cmd.spawn().expect("start tessera serve"));
            let mut server = Server {
                child,
                stderr: err.clone(),
                base: format!("http://127.0.0.1:{port}"),
                http: reqwest::Client::builder()
                    .pool_max_idle_per_host(0)
                    .build()
                    .expect("http client"),
            };
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(e) => last_error = format!("{e}; stderr: {}", read_lossy(&err)),
            }
        }
        panic!("tessera serve did not start: {last_error}");
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Kills the child when dropped, so a failing assertion never leaves a server running.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `tessera serve`; killed on drop.
struct Server {
    child: ChildGuard,
    /// Where its log goes.
    stderr: PathBuf,
    base: String,
    http: reqwest::Client,
}

impl Server {
    async fn wait_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Ok(r) = self.http.get(self.url("/healthz")).send().await
                && r.status() == StatusCode::OK
            {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.0.try_wait() {
                return Err(format!("tessera serve exited ({status})"));
            }
            if started.elapsed() > DEADLINE {
                return Err(format!("/healthz not 200 after {DEADLINE:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET url` (a whole URL): status and body.
    async fn get(&self, url: &str) -> (StatusCode, String) {
        let r = self.http.get(url).send().await.expect("request");
        (r.status(), r.text().await.expect("body"))
    }

    /// Sends SIGTERM and waits (up to [`DEADLINE`]) for the process to exit; returns how long
    /// that took and its log.
    fn terminate(&mut self) -> (Duration, String) {
        let pid = self.child.0.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.0.try_wait().expect("wait for tessera") {
                assert!(status.success(), "a SIGTERM is a clean exit: {status}");
                return (started.elapsed(), read_lossy(&self.stderr));
            }
            assert!(
                started.elapsed() < DEADLINE,
                "tessera serve still running {DEADLINE:?} after SIGTERM; log: {}",
                read_lossy(&self.stderr)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status();
        let text = r.text().await.expect("body");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, json)
    }

    async fn login(&self, username: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/auth/login",
            json!({"username": username, "password": password, "delivery": "body"}),
        )
        .await
    }

    /// Logs in and returns (session id, refresh token).
    async fn signed_in(&self, username: &str, password: &str) -> (String, String) {
        let (status, body) = self.login(username, password).await;
        assert_eq!(status, StatusCode::OK, "login {username}: {body}");
        (
            body["session_id"].as_str().expect("session_id").to_owned(),
            body["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
        )
    }

    async fn refresh(&self, token: &str) -> (StatusCode, Value) {
        self.post("/auth/refresh", json!({"refresh_token": token}))
            .await
    }
}

/// The lines of a listing that mention `needle`.
fn lines_with<'a>(listing: &'a str, needle: &str) -> Vec<&'a str> {
    listing.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn migrate_succeeds_on_a_fresh_database_and_again_on_a_migrated_one() {
    let cli = Cli::new();
    assert!(!cli.db_path().exists());
    let out = cli.run(&["migrate"]);
    assert!(out.ok().contains("migrations applied"), "{out:?}");
    assert!(cli.db_path().exists(), "migrate creates the database");
    cli.run(&["migrate"]).ok();

    // `--database` names the database just as well (and wins over the variable).
    let other = cli.dir.join("other.db");
    let url = format!("sqlite://{}", other.display());
    let mut cmd = cli.command(&["migrate", "--database", &url]);
    cmd.env("TESSERA_DATABASE_URL", cli.url());
    cli.finish(cmd, None).ok();
    assert!(other.exists(), "--database beats TESSERA_DATABASE_URL");
    cli.finish(cli.bare(&["--database", &url, "migrate"]), None)
        .ok();
}

#[test]
fn user_add_reads_the_password_from_stdin_and_names_are_unique_without_regard_to_case() {
    let cli = Cli::migrated();
    let out = cli.run_with_stdin(
        &["user", "add", "alice", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.ok().contains("alice"), "{out:?}");
    assert!(
        !out.stdout.contains(PASSWORD),
        "a password from stdin is not echoed"
    );

    let dup = cli.run_with_stdin(
        &["user", "add", "ALICE", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(dup.one_line_error().contains("taken"), "{dup:?}");

    let list = cli.run(&["user", "list"]);
    assert_eq!(
        lines_with(&list.ok().to_lowercase(), "alice").len(),
        1,
        "{list:?}"
    );
}

#[test]
fn user_add_refuses_a_bad_name_or_a_short_password_with_one_line() {
    let cli = Cli::migrated();
    let long = "x".repeat(65);
    for name in ["a b", "ab", "bob!", long.as_str()] {
        let run = cli.run_with_stdin(
            &["user", "add", name, "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
        assert!(
            run.one_line_error().contains("username"),
            "{name:?}: {run:?}"
        );
    }
    for password in ["short", "1234567", ""] {
        let run = cli.run_with_stdin(
            &["user", "add", "carol", "--password-stdin"],
            &format!("{password}\n"),
        );
        assert!(
            run.one_line_error().contains("password"),
            "{password:?}: {run:?}"
        );
    }
    assert_eq!(
        cli.run(&["user", "list"]).ok().trim(),
        "ID\tUSERNAME\tCREATED\tSTATUS",
        "nobody added: the header alone"
    );
}

#[test]
fn user_list_lists_every_added_user() {
    let cli = Cli::migrated();
    cli.add_user("alice", PASSWORD);
    cli.run(&["user", "add", "bob"]).ok();
    let list = cli.run(&["user", "list"]);
    let listing = list.ok();
    assert_eq!(
        listing.lines().count(),
        3,
        "a header and two users: {listing}"
    );
    assert_eq!(lines_with(listing, "\talice\t").len(), 1, "{listing}");
    assert_eq!(lines_with(listing, "\tbob\t").len(), 1, "{listing}");
}

#[tokio::test]
async fn user_add_without_password_stdin_prints_a_password_that_logs_in() {
    let cli = Cli::migrated();
    let out = cli.run(&["user", "add", "bob"]);
    let password = out
        .ok()
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no generated password in {out:?}"))
        .trim()
        .to_owned();
    assert!(password.len() >= 16, "a strong password: {password:?}");

    let server = cli.serve(&[]).await;
    let (status, body) = server.login("bob", &password).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
    let (status, _) = server.login("bob", "not the password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Another generated password for another user: not the same one.
    let again = cli.run(&["user", "add", "bob2"]);
    assert!(!again.ok().contains(&password), "{again:?}");
}

#[tokio::test]
async fn sessions_list_shows_a_login_and_revoking_it_ends_its_refreshes() {
    let cli = Cli::migrated();
    cli.add_user("alice", PASSWORD);
    let server = cli.serve(&[]).await;
    // The password was piped with a newline: the newline is not part of it.
    let (sid, refresh) = server.signed_in("alice", PASSWORD).await;

    let all = cli.run(&["sessions", "list"]);
    let listed = lines_with(all.ok(), &sid);
    assert_eq!(listed.len(), 1, "{all:?}");
    assert!(listed[0].contains("alice"), "{all:?}");
    let mine = cli.run(&["sessions", "list", "--user", "alice"]);
    assert_eq!(lines_with(mine.ok(), &sid).len(), 1, "{mine:?}");
    let any_case = cli.run(&["sessions", "list", "--user", "Alice"]);
    assert_eq!(lines_with(any_case.ok(), &sid).len(), 1, "{any_case:?}");

    cli.run(&["sessions", "revoke", &sid]).ok();
    let (status, body) = server.refresh(&refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_refresh_token", "{body}");
    assert_eq!(body["reason"], "revoked", "{body}");
    assert!(
        lines_with(cli.run(&["sessions", "list"]).ok(), &sid).is_empty(),
        "a revoked session is no longer listed"
    );

    // Revoking it again: there is no live session of that id any more.
    cli.run(&["sessions", "revoke", &sid]).one_line_error();
}

#[tokio::test]
async fn sessions_revoke_with_user_revokes_every_session_of_that_user_and_no_other() {
    let cli = Cli::migrated();
    cli.add_user("alice", PASSWORD);
    cli.add_user("bob", PASSWORD);
    let server = cli.serve(&[]).await;
    let (_, laptop) = server.signed_in("alice", PASSWORD).await;
    let (_, phone) = server.signed_in("alice", PASSWORD).await;
    let (bob_sid, bob) = server.signed_in("bob", PASSWORD).await;

    let out = cli.run(&["sessions", "revoke", "--user", "alice"]);
    assert!(out.ok().contains('2'), "two sessions revoked: {out:?}");

    for token in [&laptop, &phone] {
        let (status, body) = server.refresh(token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["reason"], "revoked", "{body}");
    }
    let (status, body) = server.refresh(&bob).await;
    assert_eq!(status, StatusCode::OK, "bob is untouched: {body}");

    let listing = cli.run(&["sessions", "list"]);
    let listing = listing.ok();
    assert_eq!(listing.lines().count(), 2, "a header and bob's: {listing}");
    assert!(listing.contains(&bob_sid), "{listing}");
    assert_eq!(
        cli.run(&["sessions", "list", "--user", "alice"])
            .ok()
            .lines()
            .count(),
        1,
        "the header alone"
    );
}

#[test]
fn sessions_commands_refuse_unknown_ids_malformed_ids_and_unknown_users_with_one_line() {
    let cli = Cli::migrated();
    cli.add_user("alice", PASSWORD);
    let unknown = uuid::Uuid::new_v4().to_string();
    cli.run(&["sessions", "revoke", &unknown]).one_line_error();
    let malformed = cli.run(&["sessions", "revoke", "not-a-uuid"]);
    assert!(
        malformed.one_line_error().contains("not-a-uuid"),
        "{malformed:?}"
    );
    for args in [
        &["sessions", "list", "--user", "nobody"][..],
        &["sessions", "revoke", "--user", "nobody"],
    ] {
        let run = cli.run(args);
        assert!(
            run.one_line_error().contains("no user named nobody"),
            "{run:?}"
        );
    }
    cli.run(&["sessions", "revoke"]).one_line_error();
    cli.run(&["sessions", "revoke", &unknown, "--user", "alice"])
        .one_line_error();
}

#[test]
fn keys_list_shows_one_eddsa_signing_key_and_rotate_adds_a_pending_one() {
    let cli = Cli::migrated();
    let url = cli.url();
    // This test names its database with the flag only.
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database", &url]);
        cli.finish(cli.bare(&all), None)
    };

    let before = run(&["keys", "list"]);
    let lines: Vec<Vec<&str>> = before
        .ok()
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(lines.len(), 1, "{before:?}");
    let (old_kid, alg, state) = (lines[0][0], lines[0][1], lines[0][2]);
    assert_eq!((alg, state), ("EdDSA", "signing"), "{before:?}");

    let rotated = run(&["keys", "rotate"]);
    let new_kid = rotated
        .ok()
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no kid in {rotated:?}"))
        .to_owned();
    assert_ne!(new_kid, old_kid);

    let after = run(&["keys", "list"]);
    let lines: Vec<Vec<&str>> = after
        .ok()
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(lines.len(), 2, "{after:?}");
    let state_of = |kid: &str| {
        lines
            .iter()
            .find(|l| l[0] == kid)
            .map(|l| (l[1], l[2]))
            .unwrap_or_else(|| panic!("{kid} not listed: {after:?}"))
    };
    assert_eq!(state_of(old_kid), ("EdDSA", "signing"), "{after:?}");
    assert_eq!(state_of(&new_kid), ("EdDSA", "pending"), "{after:?}");
}

/// Runs `serve` and `migrate` with a bad setting; each must stop at once with one line naming
/// it, before touching the database.
fn assert_refused(cli: &Cli, setting: &str, configure: impl Fn(&mut Command)) {
    for args in [&["serve"][..], &["migrate"][..]] {
        let mut cmd = cli.command(args);
        // A port of our own, so a server that wrongly starts does not clash with anyone's.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("find a free port")
            .port();
        cmd.env("TESSERA_BIND", format!("127.0.0.1:{port}"));
        configure(&mut cmd);
        let run = cli.finish(cmd, None);
        let line = run.one_line_error();
        assert!(
            line.contains(setting),
            "{args:?}: {line:?} should name {setting}"
        );
        assert!(
            !cli.db_path().exists(),
            "{args:?} touched the database despite a bad {setting}"
        );
    }
}

#[test]
fn an_access_ttl_without_a_unit_is_refused_naming_tessera_access_ttl() {
    let cli = Cli::new();
    assert_refused(&cli, "TESSERA_ACCESS_TTL", |c| {
        c.env("TESSERA_ACCESS_TTL", "15");
    });
}

#[test]
fn signing_alg_none_is_refused_naming_the_setting() {
    let cli = Cli::new();
    assert_refused(&cli, "TESSERA_SIGNING_ALG", |c| {
        c.args(["--signing-alg", "none"]);
    });
}

#[test]
fn registration_maybe_is_refused_naming_tessera_registration() {
    let cli = Cli::new();
    assert_refused(&cli, "TESSERA_REGISTRATION", |c| {
        c.env("TESSERA_REGISTRATION", "maybe");
    });
}

#[test]
fn a_config_file_with_an_unknown_key_is_refused_naming_the_key() {
    let cli = Cli::new();
    let file = cli.dir.join("tessera.toml");
    std::fs::write(&file, "access_ttl = \"5m\"\nacess_ttl = \"5m\"\n").expect("write config");
    assert_refused(&cli, "acess_ttl", |c| {
        c.arg("--config").arg(&file);
    });
}

#[test]
fn a_config_file_value_of_the_wrong_type_is_refused_naming_the_key() {
    let cli = Cli::new();
    let file = cli.dir.join("tessera.toml");
    std::fs::write(&file, "access_ttl = 15\n").expect("write config");
    assert_refused(&cli, "access_ttl", |c| {
        c.arg("--config").arg(&file);
    });
}

#[test]
fn a_config_file_value_without_a_unit_is_refused_naming_the_setting() {
    let cli = Cli::new();
    let file = cli.dir.join("tessera.toml");
    std::fs::write(&file, "access_ttl = \"15\"\n").expect("write config");
    assert_refused(&cli, "access_ttl", |c| {
        c.arg("--config").arg(&file);
    });
}

#[test]
fn a_missing_config_file_is_refused_naming_the_file() {
    let cli = Cli::new();
    let file = cli.dir.join("nowhere.toml");
    assert_refused(&cli, "nowhere.toml", |c| {
        c.arg("--config").arg(&file);
    });
}

#[test]
fn a_malformed_key_encryption_key_is_refused_naming_the_setting() {
    let cli = Cli::new();
    assert_refused(&cli, "TESSERA_KEY_ENCRYPTION_KEY", |c| {
        c.env("TESSERA_KEY_ENCRYPTION_KEY", "not a key");
    });
}

#[test]
fn a_flag_beats_a_bad_variable_for_the_same_setting() {
    let cli = Cli::new();
    let mut cmd = cli.command(&["migrate", "--access-ttl", "15m"]);
    cmd.env("TESSERA_ACCESS_TTL", "15");
    cli.finish(cmd, None).ok();
}

#[test]
fn an_unknown_subcommand_or_flag_exits_non_zero_with_one_line() {
    let cli = Cli::new();
    for args in [
        &["frobnicate"][..],
        &["serve", "--frobnicate"],
        &["user", "add"],
        &["keys", "shuffle"],
        &[][..],
    ] {
        cli.run(args).one_line_error();
    }
    assert!(!cli.db_path().exists());
}

#[tokio::test]
async fn closed_registration_refuses_sign_ups_while_user_add_still_works() {
    let cli = Cli::new();
    let server = cli.serve(&[("TESSERA_REGISTRATION", "closed")]).await;
    let (status, body) = server
        .post(
            "/auth/register",
            json!({"username": "mallory", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "registration_closed", "{body}");

    // The operator adds a user while the server runs; that user can log in at once.
    cli.add_user("dave", PASSWORD);
    let (status, body) = server.login("dave", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string(), "{body}");

    let users = cli.run(&["user", "list"]);
    let listing = users.ok();
    assert!(listing.contains("\tdave\t"), "{listing}");
    assert!(!listing.contains("mallory"), "{listing}");
}

#[tokio::test]
async fn sigterm_drains_for_the_grace_period_and_a_client_stalled_mid_body_does_not_hold_it() {
    use std::io::Read;

    let cli = Cli::new();
    // Control: nothing open, so the drain ends at once.
    let mut idle = cli.serve(&[]).await;
    let (_, log) = idle.terminate();
    assert!(log.contains("draining open connections"), "{log}");
    assert!(log.contains("drained; shut down"), "{log}");

    let mut server = cli.serve(&[("TESSERA_SHUTDOWN_GRACE", "1s")]).await;
    // Half of a login body, then nothing: the request stays in flight.
    let mut stalled =
        std::net::TcpStream::connect(server.base.trim_start_matches("http://")).expect("connect");
    let head = "POST /auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                Content-Length: 100\r\n\r\n{\"username\": \"alice\",";
    stalled.write_all(head.as_bytes()).expect("send half");
    // The server has the request once a request after it on another connection is answered.
    let (status, _) = server.login("nobody", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (took, log) = server.terminate();
    assert!(log.contains("drain bound reached"), "{log}");
    // The request-body deadline (10 s) would end it too; the drain bound (1 s) comes first.
    assert!(
        took < Duration::from_secs(8),
        "exited {took:?} after SIGTERM with a 1s grace; log: {log}"
    );
    // The stalled client's connection is closed, unanswered.
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut rest = Vec::new();
    // A close or a reset, depending on what was left unread; either way no response.
    let _ = stalled.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

/// Every sample's metric family has a `# HELP` and a `# TYPE` line.
fn assert_every_metric_described(text: &str) {
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| text.contains(&format!("# TYPE {base} histogram")))
            .unwrap_or(name);
        for kind in ["HELP", "TYPE"] {
            assert!(
                text.contains(&format!("# {kind} {family} ")),
                "no # {kind} for {family}: {text}"
            );
        }
    }
}

#[tokio::test]
async fn metrics_are_all_described_from_the_start_and_time_requests_per_route_template() {
    let cli = Cli::migrated();
    cli.add_user("alice", PASSWORD);
    let server = cli.serve(&[]).await;

    // Before any login or refresh: every metric is there, described, counters at zero.
    let (status, first) = server.get(&server.url("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    for name in [
        "tessera_logins_total",
        "tessera_refreshes_total",
        "tessera_refresh_grace_replays_total",
        "tessera_refresh_reuse_detected_total",
        "tessera_db_connections",
        "tessera_db_connections_max",
        "tessera_throttle_tracked_names",
        "tessera_throttle_tracked_addresses",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
    ] {
        assert!(
            first.contains(&format!("# HELP {name} ")),
            "{name}: {first}"
        );
        assert!(
            first.contains(&format!("# TYPE {name} ")),
            "{name}: {first}"
        );
    }
    assert!(
        first.contains("tessera_logins_total{outcome=\"failed\"} 0"),
        "{first}"
    );
    assert!(
        first.contains("tessera_throttle_tracked_names 0"),
        "{first}"
    );
    assert!(first.contains("tessera_db_connections_max 5"), "{first}");
    assert_every_metric_described(&first);

    let (sid, _) = server.signed_in("alice", PASSWORD).await;
    let (status, _) = server.login("alice", "not the password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let r = server
        .http
        .delete(server.url(&format!("/auth/sessions/{sid}")))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "no access token");
    let (status, _) = server.get(&server.url("/no/such/path")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, text) = server.get(&server.url("/metrics")).await;
    assert_every_metric_described(&text);
    assert!(
        text.contains("# TYPE tessera_http_request_duration_seconds histogram"),
        "{text}"
    );
    for series in [
        "route=\"/auth/login\",status=\"2xx\"",
        "route=\"/auth/login\",status=\"4xx\"",
        "route=\"/auth/sessions/{id}\",status=\"4xx\"",
        "route=\"unmatched\",status=\"4xx\"",
    ] {
        assert!(
            text.contains(&format!(
                "tessera_http_request_duration_seconds_count{{{series}}} 1"
            )),
            "{series}: {text}"
        );
    }
    assert!(!text.contains(&sid), "a raw path is never a label: {text}");
    assert!(!text.contains("/no/such/path"), "{text}");
    assert!(
        text.contains("tessera_logins_total{outcome=\"failed\"} 1"),
        "{text}"
    );
    assert!(text.contains("tessera_throttle_tracked_names 1"), "{text}");
}

#[tokio::test]
async fn metrics_bind_serves_metrics_on_its_own_address_and_not_on_the_public_one() {
    let cli = Cli::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port();
    let private = format!("http://127.0.0.1:{port}");
    let server = cli
        .serve(&[("TESSERA_METRICS_BIND", &format!("127.0.0.1:{port}"))])
        .await;
    let (status, text) = server.get(&format!("{private}/metrics")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        text.contains("# TYPE tessera_logins_total counter"),
        "{text}"
    );
    let (status, _) = server.get(&server.url("/metrics")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not on the public address");
    let (status, _) = server.get(&format!("{private}/healthz")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the private address has /metrics only"
    );
    let (status, _) = server.get(&server.url("/healthz")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_log_is_plain_text_and_names_failed_logins_and_lockouts_without_the_password() {
    const WRONG: &str = "not the password at all";
    let cli = Cli::migrated();
    cli.add_user("alice", PASSWORD);
    let mut server = cli.serve(&[("TESSERA_REUSE_GRACE", "0s")]).await;

    let (status, _) = server.login("alice", WRONG).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // An unknown name, until the throttle holds it (5 free failures, then doubling delays
    // from 1 s, which outgrow even a slow debug-build password check).
    let mut held = false;
    for _ in 0..12 {
        let (status, _) = server.login("mallory", WRONG).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            held = true;
            break;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert!(held, "mallory was never throttled");
    // A reused refresh token: the security warning names the client's address.
    let (_, first) = server.signed_in("alice", PASSWORD).await;
    assert_eq!(server.refresh(&first).await.0, StatusCode::OK);
    assert_eq!(server.refresh(&first).await.0, StatusCode::UNAUTHORIZED);

    let (_, log) = server.terminate();
    assert!(!log.contains('\u{1b}'), "no colour codes in a file: {log}");
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} line in {log}"))
            .to_owned()
    };
    let wrong = line("login failed: the password did not match");
    assert!(
        wrong.contains(" INFO ") && wrong.contains("user_id="),
        "{wrong}"
    );
    assert!(wrong.contains("ip=127.0.0.1"), "{wrong}");
    let unknown = line("login failed: no such user");
    assert!(unknown.contains("username_hash="), "{unknown}");
    assert!(
        !unknown.contains("mallory"),
        "the name is hashed: {unknown}"
    );
    let throttled = line("login throttled");
    assert!(
        throttled.contains(" INFO ") && throttled.contains("username_hash="),
        "{throttled}"
    );
    let reused = line("refresh token reuse detected");
    assert!(reused.contains("ip=127.0.0.1"), "{reused}");
    assert!(!log.contains("Some("), "fields are printed plainly: {log}");
    assert!(!log.contains(WRONG), "never the password: {log}");
    for step in [
        "draining open connections",
        "drained; shut down",
        "tessera stopped",
    ] {
        line(step);
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_new_sqlite_database_and_its_wal_and_shm_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let cli = Cli::new();
    let mut server = cli.serve(&[]).await;
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", cli.db_path().display());
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{path}: {mode:o}");
    }
    let (_, log) = server.terminate();
    let warning = log
        .lines()
        .find(|l| l.contains("TESSERA_KEY_ENCRYPTION_KEY is not set"))
        .unwrap_or_else(|| panic!("no warning: {log}"));
    assert!(warning.contains("tessera keys new-kek"), "{warning}");
}

#[test]
fn keys_new_kek_prints_a_key_the_key_encryption_key_setting_accepts_and_touches_no_database() {
    let cli = Cli::new();
    let first = cli.run(&["keys", "new-kek"]);
    let key = first.ok().trim().to_owned();
    assert_eq!(first.stdout.lines().count(), 1, "{first:?}");
    assert_ne!(
        cli.run(&["keys", "new-kek"]).ok().trim(),
        key,
        "fresh each time"
    );
    assert!(!cli.db_path().exists(), "new-kek opened the database");

    let mut migrate = cli.command(&["migrate"]);
    migrate.env("TESSERA_KEY_ENCRYPTION_KEY", &key);
    cli.finish(migrate, None).ok();
    let mut serve_check = cli.command(&["keys", "list"]);
    serve_check.env("TESSERA_KEY_ENCRYPTION_KEY", &key);
    cli.finish(serve_check, None).ok();
    // The key sealed what it created: without it the database's keys cannot be opened.
    cli.run(&["keys", "list"]).one_line_error();
}

#[test]
fn a_sqlite_file_in_a_missing_directory_is_refused_naming_the_directory() {
    let cli = Cli::new();
    let missing = cli.dir.join("no-such-dir");
    let url = format!("sqlite://{}/t.db", missing.display());
    let run = cli.run(&["migrate", "--database", &url]);
    let line = run.one_line_error();
    assert!(
        line.contains(&format!(
            "the directory {} does not exist",
            missing.display()
        )),
        "{line}"
    );
    // Control: the same name in a directory that exists.
    let url = format!("sqlite://{}/t2.db", cli.dir.display());
    cli.run(&["migrate", "--database", &url]).ok();
}

#[test]
fn an_unreachable_postgresql_is_refused_naming_its_address_and_the_reason() {
    let cli = Cli::new();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port();
    let url = format!("postgres://tessera@127.0.0.1:{port}/test");
    let run = cli.run(&["migrate", "--database", &url]);
    let line = run.one_line_error();
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(line.to_lowercase().contains("connection refused"), "{line}");
    assert!(!line.contains("pool timed out"), "{line}");
}

#[test]
fn commands_other_than_serve_and_migrate_never_create_a_database_and_say_where_they_looked() {
    let cli = Cli::new();
    for args in [
        &["user", "list"][..],
        &["user", "add", "alice"],
        &["sessions", "list"],
        &["keys", "list"],
        &["keys", "rotate"],
    ] {
        let run = cli.run(args);
        let line = run.one_line_error();
        assert!(
            line.contains(&format!("no database at {}", cli.db_path().display())),
            "{args:?}: {line}"
        );
        assert!(line.contains("tessera migrate"), "{line}");
        assert!(!cli.db_path().exists(), "{args:?} created the database");
    }
    // Control: once migrated, the same command works.
    cli.run(&["migrate"]).ok();
    cli.run(&["user", "list"]).ok();
}

#[test]
fn clap_messages_keep_the_missing_argument_and_the_similar_flag_on_one_line() {
    let cli = Cli::migrated();
    let missing = cli.run(&["sessions", "revoke"]);
    let line = missing.one_line_error();
    assert!(
        line.contains("required arguments were not provided"),
        "{line}"
    );
    assert!(line.contains("<ID>"), "{line}");
    let typo = cli.run(&["sessions", "list", "--usr", "alice"]);
    let line = typo.one_line_error();
    assert!(line.contains("--usr"), "{line}");
    assert!(
        line.contains("a similar argument exists: '--user'"),
        "{line}"
    );
}

#[test]
fn each_help_lists_its_own_flags_and_serve_names_every_variable() {
    let cli = Cli::new();
    let keys = cli.run(&["keys", "list", "--help"]);
    let text = keys.ok();
    assert!(
        text.contains("--json") && text.contains("--database"),
        "{text}"
    );
    for server_only in [
        "--bind",
        "--access-ttl",
        "--revocations-token",
        "TESSERA_BIND",
    ] {
        assert!(!text.contains(server_only), "{server_only} in {text}");
    }
    let serve = cli.run(&["serve", "--help"]);
    let text = serve.ok();
    for name in [
        "--demo",
        "--bind",
        "TESSERA_BIND",
        "TESSERA_DATABASE_URL",
        "TESSERA_ACCESS_TTL",
        "TESSERA_METRICS_BIND",
        "TESSERA_SHUTDOWN_GRACE",
        "TESSERA_KEY_ENCRYPTION_KEY",
        "TESSERA_LOG_FORMAT",
        "RUST_LOG",
    ] {
        assert!(text.contains(name), "{name} not in {text}");
    }
    // The hidden flags still work where they always did.
    cli.run(&["migrate", "--access-ttl", "5m"]).ok();
}

#[test]
fn an_unknown_tessera_variable_is_a_warning_naming_the_closest_setting() {
    let cli = Cli::new();
    let mut typo = cli.command(&["migrate"]);
    typo.env("TESSERA_ACESS_TTL", "5m");
    let run = cli.finish(typo, None);
    run.ok();
    assert!(
        run.stderr
            .contains("TESSERA_ACESS_TTL is not a Tessera setting and is ignored (did you mean TESSERA_ACCESS_TTL?)"),
        "{run:?}"
    );
    // Control: the test harness's own variables and the real settings say nothing.
    let mut harness = cli.command(&["migrate"]);
    harness
        .env("TESSERA_TEST_POSTGRES_URL", "postgres://x")
        .env("TESSERA_ACCESS_TTL", "5m");
    let run = cli.finish(harness, None);
    run.ok();
    assert_eq!(run.stderr, "", "{run:?}");
}

#[tokio::test]
async fn list_commands_print_headed_tables_or_json() {
    let cli = Cli::migrated();
    cli.add_user("alice", PASSWORD);
    let server = cli.serve(&[]).await;
    let (sid, _) = server.signed_in("alice", PASSWORD).await;

    let users = cli.run(&["user", "list"]);
    assert_eq!(
        users.ok().lines().next(),
        Some("ID\tUSERNAME\tCREATED\tSTATUS")
    );
    let sessions = cli.run(&["sessions", "list"]);
    assert!(
        sessions
            .ok()
            .starts_with("ID\tUSERNAME\tCREATED\tLAST USED"),
        "{sessions:?}"
    );
    let keys = cli.run(&["keys", "list"]);
    assert!(keys.ok().starts_with("KID\tALG\tSTATE"), "{keys:?}");

    let json = |args: &[&str]| -> Vec<Value> {
        let run = cli.run(args);
        serde_json::from_str(run.ok()).unwrap_or_else(|e| panic!("{args:?}: {e}: {run:?}"))
    };
    let users = json(&["user", "list", "--json"]);
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["username"], "alice");
    let sessions = json(&["sessions", "list", "--user", "alice", "--json"]);
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], sid.as_str());
    assert_eq!(sessions[0]["ip"], "127.0.0.1");
    let keys = json(&["keys", "list", "--json"]);
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["state"], "signing");
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    let cli = Cli::new();
    for shell in ["bash", "zsh", "fish"] {
        let run = cli.run(&["completions", shell]);
        assert!(run.ok().contains("sessions"), "{shell}: {run:?}");
    }
    cli.run(&["completions", "tcsh"]).one_line_error();
    assert!(!cli.db_path().exists());
}

#[test]
fn a_short_admin_token_or_reset_ttl_is_refused_naming_the_setting() {
    let cli = Cli::new();
    assert_refused(&cli, "TESSERA_ADMIN_TOKEN", |c| {
        c.env("TESSERA_ADMIN_TOKEN", "only-31-characters-long-secret!");
    });
    assert_refused(&cli, "TESSERA_PASSWORD_RESET_TTL", |c| {
        c.env("TESSERA_PASSWORD_RESET_TTL", "30d");
    });
}

#[tokio::test]
async fn user_disable_enable_and_delete_act_at_once_on_sessions_and_logins() {
    let cli = Cli::migrated();
    cli.add_user("alice", PASSWORD);
    cli.add_user("bob", PASSWORD);
    let server = cli.serve(&[]).await;
    let (_, laptop) = server.signed_in("alice", PASSWORD).await;
    let (_, bob) = server.signed_in("bob", PASSWORD).await;

    let out = cli.run(&["user", "disable", "Alice"]);
    assert!(out.ok().contains("revoked 1 session"), "{out:?}");
    let (status, body) = server.refresh(&laptop).await;
    assert_eq!(
        (status, &body["reason"]),
        (StatusCode::UNAUTHORIZED, &json!("revoked"))
    );
    let (status, body) = server.login("alice", PASSWORD).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::FORBIDDEN, &json!("account_disabled"))
    );
    let listing = cli.run(&["user", "list"]);
    assert!(
        lines_with(listing.ok(), "alice")[0].ends_with("disabled"),
        "{listing:?}"
    );

    cli.run(&["user", "enable", "alice"]).ok();
    let (_, again) = server.signed_in("alice", PASSWORD).await;

    cli.run(&["user", "delete", "alice"]).ok();
    let (status, _) = server.refresh(&again).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(lines_with(cli.run(&["user", "list"]).ok(), "alice").is_empty());
    cli.add_user("alice", "another password");
    server.signed_in("alice", "another password").await;
    assert_eq!(
        server.refresh(&bob).await.0,
        StatusCode::OK,
        "bob is untouched"
    );

    for command in ["disable", "enable", "delete", "reset-link"] {
        let line = cli.run(&["user", command, "nobody"]);
        assert!(
            line.one_line_error().contains("no user named nobody"),
            "{line:?}"
        );
        cli.run(&["user", command]).one_line_error();
    }
}

#[tokio::test]
async fn user_reset_link_prints_a_token_or_a_url_that_resets_the_password_once() {
    let cli = Cli::migrated();
    cli.add_user("alice", PASSWORD);
    let server = cli.serve(&[]).await;
    let (_, laptop) = server.signed_in("alice", PASSWORD).await;

    let voided = cli.run(&["user", "reset-link", "alice"]);
    let voided = voided.ok().trim().to_owned();
    assert_eq!(voided.len(), 43, "{voided}");
    let url = cli.run(&[
        "user",
        "reset-link",
        "alice",
        "--url-template",
        "https://app.example/reset?token={token}",
    ]);
    let url = url.ok().trim().to_owned();
    let token = url
        .strip_prefix("https://app.example/reset?token=")
        .unwrap_or_else(|| panic!("{url}"));
    assert_eq!(token.len(), 43, "{url}");

    let reset = |token: &str| {
        server.post(
            "/auth/password-reset",
            json!({"token": token, "new_password": "a brand new passphrase"}),
        )
    };
    let (status, body) = reset(&voided).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_reset_token"))
    );
    assert_eq!(reset(token).await.0, StatusCode::NO_CONTENT);
    assert_eq!(reset(token).await.0, StatusCode::BAD_REQUEST, "single use");
    assert_eq!(server.refresh(&laptop).await.0, StatusCode::UNAUTHORIZED);
    server.signed_in("alice", "a brand new passphrase").await;

    let bad = cli.run(&[
        "user",
        "reset-link",
        "alice",
        "--url-template",
        "https://x/",
    ]);
    assert!(bad.one_line_error().contains("{token}"), "{bad:?}");
}

/// The value printed after `label: ` on a line of `out`.
fn printed(out: &str, label: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{label}: ")))
        .map(str::to_owned)
}

#[tokio::test]
async fn clients_add_list_and_remove_and_removing_a_client_ends_its_sessions() {
    let cli = Cli::migrated();
    cli.add_user("alice", PASSWORD);
    let public = cli.run(&["clients", "add", "mobile", "--public"]);
    let public_id = printed(public.ok(), "client_id").expect("client_id printed");
    assert_eq!(printed(public.ok(), "client_secret"), None, "{public:?}");
    let confidential = cli.run(&["clients", "add", "gateway", "--confidential"]);
    let secret = printed(confidential.ok(), "client_secret").expect("secret printed once");
    assert!(secret.len() >= 43, "{secret}");
    assert!(
        secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    for bad in [
        &["clients", "add", "x"][..],
        &["clients", "add", "x", "--public", "--confidential"],
        &["clients", "add", "mobile", "--public"],
        &["clients", "add", "bad name", "--public"],
    ] {
        cli.run(bad).one_line_error();
    }

    let listing = cli.run(&["clients", "list", "--json"]);
    assert!(
        !listing.ok().contains(&secret),
        "the secret is never listed"
    );
    let listed: Value = serde_json::from_str(listing.ok()).expect("JSON");
    let names: Vec<(&str, &str)> = listed["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("tessera", "public"),
            ("mobile", "public"),
            ("gateway", "confidential")
        ]
    );
    assert_eq!(
        lines_with(cli.run(&["clients", "list"]).ok(), &public_id).len(),
        1
    );

    let server = cli.serve(&[]).await;
    let (status, body) = server
        .post(
            "/auth/login",
            json!({"username": "alice", "password": PASSWORD, "delivery": "body", "client_id": public_id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let (_, builtin) = server.signed_in("alice", PASSWORD).await;

    let removed = cli.run(&["clients", "remove", &public_id]);
    assert!(removed.ok().contains("1 session(s) ended"), "{removed:?}");
    let (status, body) = server.refresh(&refresh).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("revoked"))
    );
    assert_eq!(
        server.refresh(&builtin).await.0,
        StatusCode::OK,
        "other clients' sessions live"
    );
    assert!(lines_with(cli.run(&["clients", "list"]).ok(), &public_id).is_empty());
    cli.run(&["clients", "remove", &public_id]).one_line_error();
    cli.run(&["clients", "remove", "tessera"]).one_line_error();
}

#[test]
fn a_plain_http_webhook_url_or_a_secret_without_whsec_is_refused_naming_the_setting() {
    let cli = Cli::new();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert_refused(&cli, "TESSERA_WEBHOOK_URL", |c| {
        c.env("TESSERA_WEBHOOK_URL", "http://hooks.example/tessera")
            .env("TESSERA_WEBHOOK_SECRET", secret);
    });
    assert_refused(&cli, "TESSERA_WEBHOOK_SECRET", |c| {
        c.env("TESSERA_WEBHOOK_URL", "https://hooks.example/tessera")
            .env("TESSERA_WEBHOOK_SECRET", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    });
    assert_refused(&cli, "TESSERA_WEBHOOK_SECRET", |c| {
        c.env("TESSERA_WEBHOOK_URL", "https://hooks.example/tessera");
    });
}

#[test]
fn events_list_shows_what_a_command_did_and_retry_refuses_unknown_ids() {
    let missing = Cli::new();
    missing.run(&["events", "list"]).one_line_error();
    assert!(
        !missing.db_path().exists(),
        "events list created a database"
    );

    let cli = Cli::migrated();
    cli.add_user("erin", PASSWORD);
    cli.run(&["user", "disable", "erin"]).ok();
    let listing = cli.run(&["events", "list"]).ok().to_owned();
    let rows = lines_with(&listing, "user.disabled");
    assert_eq!(rows.len(), 1, "{listing}");
    assert!(rows[0].contains("\tpending\t0\t"), "{listing}");
    let json: Value =
        serde_json::from_str(cli.run(&["events", "list", "--pending", "--json"]).ok()).unwrap();
    let events = json.as_array().unwrap();
    assert_eq!(events.len(), 1, "{json}");
    assert_eq!(events[0]["type"], "user.disabled");
    assert!(events[0]["data"]["user_id"].is_string());
    let id = events[0]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("msg_"));
    let failed: Value =
        serde_json::from_str(cli.run(&["events", "list", "--failed", "--json"]).ok()).unwrap();
    assert_eq!(failed, json!([]));
    assert!(
        cli.run(&["events", "retry", &id])
            .ok()
            .contains("is due now")
    );
    for bad in ["msg_00000000000000000000000000000000", "nonsense"] {
        let line = cli
            .run(&["events", "retry", bad])
            .one_line_error()
            .to_owned();
        assert!(line.contains(bad), "{line}");
    }
    cli.run(&["events", "list", "--pending", "--failed"])
        .one_line_error();
}

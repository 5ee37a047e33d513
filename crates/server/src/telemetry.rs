//! Metrics: the recorder, every metric's description, request latencies per route, and the
//! gauges read at scrape time (process, database connections, login throttle, the events'
//! outbox).
//!
//! Counters are registered at zero when the server starts, so a scrape is never empty and a
//! rate over a counter that has not moved yet is 0, not missing.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, middleware};
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tessera_core::Tessera;

/// Request latency, per route template and status class.
pub const HTTP_DURATION: &str = "tessera_http_request_duration_seconds";
const LOGINS: &str = "tessera_logins_total";
const REFRESHES: &str = "tessera_refreshes_total";
const GRACE_REPLAYS: &str = "tessera_refresh_grace_replays_total";
const REUSE_DETECTED: &str = "tessera_refresh_reuse_detected_total";
const DPOP_MISMATCH: &str = "tessera_dpop_mismatch_total";
const DB_CONNECTIONS: &str = "tessera_db_connections";
const DB_CONNECTIONS_MAX: &str = "tessera_db_connections_max";
const THROTTLE_NAMES: &str = "tessera_throttle_tracked_names";
const THROTTLE_ADDRESSES: &str = "tessera_throttle_tracked_addresses";
/// Webhook delivery attempts by outcome (the sender counts them).
pub const WEBHOOK_DELIVERIES: &str = "tessera_webhook_deliveries_total";
const EVENTS_PENDING: &str = "tessera_events_pending";
const EVENTS_OLDEST_PENDING: &str = "tessera_events_oldest_pending_age_seconds";
const EVENTS_FAILED: &str = "tessera_events_failed";

/// Latency buckets, in seconds: a refresh takes about a millisecond, a login (argon2) tens.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the process's metrics recorder (with the latency histogram's buckets), describes
/// every metric, and starts its upkeep (on the current Tokio runtime).
///
/// The recorder keeps each histogram sample until upkeep or a scrape folds it into the buckets:
/// without the upkeep task, a server nobody scrapes would grow by every request's sample.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), BUCKETS)?
        .install_recorder()?;
    describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// Describes every metric and registers the counters at zero (adding 0 leaves a counter that
/// already moved as it is).
pub fn describe() {
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency by route template (route=\"unmatched\" for unknown paths) and status class"
    );
    describe_counter!(LOGINS, "Login attempts by outcome: ok, failed, throttled");
    describe_counter!(
        REFRESHES,
        "Refresh attempts by outcome: ok, or the reason of the 401 (missing, unknown, revoked, expired, reused), or error"
    );
    describe_counter!(
        GRACE_REPLAYS,
        "Refreshes that replayed the previous token inside the reuse grace window"
    );
    describe_counter!(
        REUSE_DETECTED,
        "Refresh tokens used twice outside the grace window (each ended its session)"
    );
    describe_counter!(
        DPOP_MISMATCH,
        "Refreshes of DPoP-bound sessions with a valid proof by another key (refused, session kept)"
    );
    describe_gauge!(DB_CONNECTIONS, "Database connections by state: open, idle");
    describe_gauge!(
        DB_CONNECTIONS_MAX,
        "The most database connections the store opens"
    );
    describe_gauge!(
        THROTTLE_NAMES,
        "Usernames the login throttle holds failure counts for"
    );
    describe_gauge!(
        THROTTLE_ADDRESSES,
        "Client addresses the login throttle holds failure counts for"
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "Webhook delivery attempts by outcome: delivered, retry (failed, will be retried), failed (given up)"
    );
    describe_gauge!(EVENTS_PENDING, "Events in the outbox not delivered yet");
    describe_gauge!(
        EVENTS_OLDEST_PENDING,
        Unit::Seconds,
        "Age of the oldest event not delivered yet (0 when none)"
    );
    describe_gauge!(
        EVENTS_FAILED,
        "Events given up on after a day of retries (kept until `tessera events retry`)"
    );
    for outcome in ["delivered", "retry", "failed"] {
        counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(0);
    }
    for outcome in ["ok", "failed", "throttled"] {
        counter!(LOGINS, "outcome" => outcome).increment(0);
    }
    for outcome in [
        "ok", "missing", "unknown", "revoked", "expired", "reused", "error",
    ] {
        counter!(REFRESHES, "outcome" => outcome).increment(0);
    }
    counter!(GRACE_REPLAYS).increment(0);
    counter!(REUSE_DETECTED).increment(0);
    counter!(DPOP_MISMATCH).increment(0);
}

/// Records each request's latency under its route template (never the raw path, which would
/// make a series per session id) and status class.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let class = match response.status().as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    };
    metrics::histogram!(HTTP_DURATION, "route" => route, "status" => class)
        .record(started.elapsed().as_secs_f64());
    response
}

/// What `GET /metrics` renders from.
#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    tessera: Arc<Tessera>,
}

/// `GET /metrics` alone: merged into the public router, or served on `TESSERA_METRICS_BIND`.
pub fn metrics_router(handle: PrometheusHandle, tessera: Arc<Tessera>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(Scrape { handle, tessera })
}

/// The router served on `TESSERA_METRICS_BIND`: `/metrics`, timed like every route, and 404 for
/// anything else.
pub fn private_router(handle: PrometheusHandle, tessera: Arc<Tessera>) -> Router {
    metrics_router(handle, tessera)
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(middleware::from_fn(track_requests))
}

async fn render(State(scrape): State<Scrape>) -> Response {
    observe(&scrape.tessera).await;
    observe_events(&scrape.tessera).await;
    let mut body = scrape.handle.render();
    body.push_str(&process_metrics());
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Sets the gauges read from the service: its store's connections and the throttle's size (its
/// rows in the database; left as they were when the database does not answer).
async fn observe(tessera: &Tessera) {
    let count = |n: u64| n as f64;
    if let Some(pool) = tessera.pool_status() {
        gauge!(DB_CONNECTIONS, "state" => "open").set(f64::from(pool.open));
        gauge!(DB_CONNECTIONS, "state" => "idle").set(f64::from(pool.idle));
        gauge!(DB_CONNECTIONS_MAX).set(f64::from(pool.max));
    }
    if let Ok((names, addresses)) = tessera.throttle_tracked().await {
        gauge!(THROTTLE_NAMES).set(count(names));
        gauge!(THROTTLE_ADDRESSES).set(count(addresses));
    }
}

/// Sets the outbox's gauges (one query); a database that does not answer leaves them as they
/// were, and the scrape still answers.
async fn observe_events(tessera: &Tessera) {
    match tessera.event_backlog().await {
        Ok(backlog) => {
            let age = backlog
                .oldest_pending
                .map_or(0.0, |t| tessera.now().since(t).as_secs_f64());
            gauge!(EVENTS_PENDING).set(backlog.pending as f64);
            gauge!(EVENTS_OLDEST_PENDING).set(age);
            gauge!(EVENTS_FAILED).set(backlog.failed as f64);
        }
        Err(e) => tracing::debug!(error = %e, "reading the outbox for /metrics failed"),
    }
}

/// The standard `process_*` metrics, read from `/proc/self` (Linux; elsewhere none), in the
/// text format. Written here rather than through the recorder because CPU seconds are a
/// fractional counter, which the `metrics` facade does not have.
fn process_metrics() -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n\n"
        ));
    };
    if let Some(cpu) = cpu_seconds() {
        metric(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            cpu,
        );
    }
    if let Some(rss) = resident_bytes() {
        metric(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            rss,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metric(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            fds.count() as f64,
        );
    }
    if let Some(max) = max_fds() {
        metric(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            max,
        );
    }
    out
}

/// utime + stime from `/proc/self/stat`, in clock ticks of 1/100 s (`USER_HZ`, fixed at 100
/// in the kernel's interface to user space).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the line; `rest` starts at field 3.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn resident_bytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024.0)
}

fn max_fds() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

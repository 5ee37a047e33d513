//! The webhook sender: a background task that delivers the outbox's events to
//! `TESSERA_WEBHOOK_URL` in the Standard Webhooks format.
//!
//! It claims due events with a lease (core's `LEASE`, 60 s: several instances never send one
//! event at once while it holds, and a crashed instance's claims lapse for any other), POSTs
//! each (concurrently within a claim, 10 s each, redirects not followed), and records the
//! outcome: any 2xx delivers; anything else is retried on core's schedule
//! ([`tessera_core::events::after_failure`]) and given up after a day. The secret signs and is
//! never logged.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::events::{Delivery, StoredEvent, WebhookSecret, after_failure, webhook_id};
use tessera_core::{Tessera, Timestamp};
use tokio::task::{JoinHandle, JoinSet};

use crate::telemetry::WEBHOOK_DELIVERIES;

/// How long one attempt may take, connection and answer together.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the receiver may fail before the sender warns (then again at this interval).
pub const FAILING_WARNING: Duration = Duration::from_secs(5 * 60);
/// Events claimed at once. Their attempts run together, so a claim (60 s) outlasts them.
const BATCH: u32 = 32;

/// Where and how events are sent.
#[derive(Clone, Debug)]
pub struct Webhook {
    /// The receiver.
    pub url: reqwest::Url,
    /// The signing secret.
    pub secret: WebhookSecret,
    /// How long the sender waits when nothing is due before it looks again.
    pub poll: Duration,
}

/// How often an idle sender looks for due events: a new event waits at most this long.
pub const POLL: Duration = Duration::from_secs(1);

impl Webhook {
    /// The receiver the settings name, if any (the settings check that URL and secret come
    /// together).
    pub fn from_config(config: &crate::Config) -> Option<Self> {
        Some(Self {
            url: config.webhook_url.clone()?,
            secret: config.webhook_secret.clone()?,
            poll: POLL,
        })
    }
}

/// Starts the sender; it stops when the handle is aborted or the runtime ends.
pub fn spawn_sender(tessera: Arc<Tessera>, hook: Webhook) -> anyhow::Result<JoinHandle<()>> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(ATTEMPT_TIMEOUT)
        .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let sender = Arc::new(Sender {
        tessera,
        client,
        url: hook.url,
        secret: hook.secret,
    });
    tracing::info!(url = %redacted(&sender.url), "sending events to the webhook receiver");
    Ok(tokio::spawn(sender.run(hook.poll)))
}

struct Sender {
    tessera: Arc<Tessera>,
    client: reqwest::Client,
    url: reqwest::Url,
    secret: WebhookSecret,
}

/// Since when the receiver has failed every attempt, and when the sender last said so.
#[derive(Default)]
struct Health {
    failing_since: Option<Timestamp>,
    warned_at: Option<Timestamp>,
}

impl Sender {
    async fn run(self: Arc<Self>, poll: Duration) {
        let mut health = Health::default();
        loop {
            let batch = match self.tessera.claim_events(BATCH).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming events to send failed; will retry");
                    Vec::new()
                }
            };
            if batch.is_empty() {
                tokio::time::sleep(poll).await;
                continue;
            }
            let mut attempts = JoinSet::new();
            for event in batch {
                let sender = self.clone();
                attempts.spawn(async move {
                    let result = sender.attempt(&event).await;
                    (event, result)
                });
            }
            let mut last_error = None;
            let mut delivered_any = false;
            while let Some(done) = attempts.join_next().await {
                let Ok((event, result)) = done else { continue };
                delivered_any |= result.is_ok();
                if let Err(e) = &result {
                    last_error = Some(e.clone());
                }
                self.finish(&event, result).await;
            }
            self.watch(&mut health, delivered_any, last_error);
        }
    }

    /// One POST of one event: `Ok` for a 2xx, otherwise what went wrong.
    async fn attempt(&self, event: &StoredEvent) -> Result<(), String> {
        let body = self
            .tessera
            .webhook_body(event)
            .map_err(|e| format!("cannot build the body: {e}"))?;
        let id = webhook_id(event.event.id);
        let timestamp = self.tessera.now().as_secs();
        let signature = self.secret.sign(&id, timestamp, &body);
        let answer = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("HTTP {}", response.status().as_u16())),
            Err(e) if e.is_timeout() => Err(format!(
                "no answer within {}",
                tessera_core::format_duration(ATTEMPT_TIMEOUT)
            )),
            Err(e) => Err(format!("cannot reach the receiver: {}", cause(&e))),
        }
    }

    async fn finish(&self, event: &StoredEvent, result: Result<(), String>) {
        let outcome = match result {
            Ok(()) => Delivery::Delivered,
            Err(error) => after_failure(
                event.attempts,
                event.retry_since,
                self.tessera.now(),
                jitter(),
                error,
            ),
        };
        metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => outcome.as_str()).increment(1);
        let id = webhook_id(event.event.id);
        match &outcome {
            Delivery::Delivered => {
                tracing::debug!(webhook_id = %id, kind = %event.event.kind, "event delivered")
            }
            Delivery::Retry { error, .. } => tracing::debug!(
                webhook_id = %id, attempts = event.attempts, error, "event not delivered; will retry"
            ),
            Delivery::Failed { error } => tracing::warn!(
                webhook_id = %id, kind = %event.event.kind, attempts = event.attempts, error,
                "event not delivered after a day of retries; kept as failed (`tessera events retry`)"
            ),
        }
        match self.tessera.finish_event(event, &outcome).await {
            Ok(true) => {}
            // The claim lapsed and another instance took the event: it records the outcome.
            Ok(false) => tracing::debug!(webhook_id = %id, "event claimed elsewhere meanwhile"),
            Err(e) => tracing::warn!(webhook_id = %id, error = %e, "recording a delivery failed"),
        }
    }

    /// Warns when the receiver has failed every attempt for [`FAILING_WARNING`], and again at
    /// that interval while it goes on.
    fn watch(&self, health: &mut Health, delivered_any: bool, last_error: Option<String>) {
        let now = self.tessera.now();
        if delivered_any {
            if health.warned_at.is_some() {
                tracing::info!("the webhook receiver accepts events again");
            }
            *health = Health::default();
            return;
        }
        let since = *health.failing_since.get_or_insert(now);
        let due = health
            .warned_at
            .is_none_or(|at| now.since(at) >= FAILING_WARNING);
        if now.since(since) >= FAILING_WARNING && due {
            health.warned_at = Some(now);
            tracing::warn!(
                url = %redacted(&self.url),
                failing_for = %tessera_core::format_duration(now.since(since)),
                error = last_error.unwrap_or_default(),
                "the webhook receiver has been failing; events wait in the outbox and are retried"
            );
        }
    }
}

/// The URL as logs show it: without credentials or query (either may hold a token).
fn redacted(url: &reqwest::Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    ) + url.path()
}

/// The innermost cause of a transport error (reqwest's own text repeats the URL).
fn cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// A fraction in `0.0..1.0` from the OS's random source, for the retry delays' jitter.
fn jitter() -> f64 {
    tessera_core::keys::random_bytes::<2>()
        .map(|b| f64::from(u16::from_be_bytes(b)) / 65_536.0)
        .unwrap_or(0.5)
}

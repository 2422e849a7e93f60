//! The outbox relay: fans new outbox events out to endpoints, claims due deliveries, sends them
//! signed over HTTP with no transaction open, and records each outcome.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use futures::StreamExt;
use secrecy::SecretString;
use sqlx::PgPool;
use store::secrets::Keyring;
use store::webhooks::{self as wstore, AttemptOutcome, AttemptRecord, ClaimedDelivery, EndpointId};
use tokio_util::sync::CancellationToken;

use crate::egress::{self, EgressPolicy, GuardedResolver};
use crate::schedule::{self, Answer, RetrySchedule};
use crate::signature::{self, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookSecret};

/// How the relay behaves.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Outbox events fanned out, and deliveries claimed, per tick.
    pub batch_size: u32,
    /// The whole-request timeout of one attempt (Standard Webhooks suggests 15-30 s).
    pub request_timeout: Duration,
    /// Delays between attempts; its length fixes how many attempts a delivery gets.
    pub schedule: RetrySchedule,
    /// How long `run` waits between ticks when there was nothing (more) to do.
    pub poll_interval: Duration,
    /// How many requests are in flight at once.
    pub concurrency: usize,
    /// How far behind the present the fan-out watermark stays; it must exceed the longest
    /// transaction that writes to the outbox (see `store::webhooks::fan_out`).
    pub fanout_lookback: Duration,
    /// Which destinations may be reached.
    pub egress: EgressPolicy,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            batch_size: 100,
            request_timeout: Duration::from_secs(15),
            schedule: RetrySchedule::standard(),
            poll_interval: Duration::from_secs(1),
            concurrency: 16,
            fanout_lookback: Duration::from_secs(3600),
            egress: EgressPolicy::PublicHttpsOnly,
        }
    }
}

/// Errors that stop a tick. Failures of single deliveries are recorded, not returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The database answered with an error, or could not be reached.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// The HTTP client could not be built.
    #[error("could not build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Outbox events fanned out.
    pub events_fanned_out: u64,
    /// Deliveries created by the fan-out.
    pub deliveries_created: u64,
    /// Pending deliveries made dead letters without an attempt (endpoint disabled, or the last
    /// attempt was interrupted).
    pub swept: u64,
    /// Deliveries claimed and attempted.
    pub attempted: u64,
    /// Attempts answered with 2xx.
    pub delivered: u64,
    /// Attempts that failed with attempts left.
    pub retried: u64,
    /// Attempts after which the delivery became a dead letter (including 410 Gone).
    pub dead: u64,
    /// Outcomes not recorded because another relay had claimed the delivery meanwhile.
    pub lost_claims: u64,
}

impl TickReport {
    /// True when the tick found as much work as it could take, so another tick should follow at
    /// once.
    fn was_full(&self, batch_size: u32) -> bool {
        self.attempted >= u64::from(batch_size) || self.events_fanned_out >= u64::from(batch_size)
    }
}

/// The relay. Cheap to share behind an `Arc`; any number of relays may run against one database.
#[derive(Debug)]
pub struct Relay {
    pool: PgPool,
    keyring: Arc<Keyring>,
    config: RelayConfig,
    client: reqwest::Client,
}

/// What one attempt produced, before it is recorded.
struct Sent {
    answer: Answer,
    status_code: Option<u16>,
    error: Option<String>,
    duration_ms: i64,
}

impl Relay {
    /// A relay on `pool`, decrypting endpoint secrets with `keyring`.
    pub fn new(
        pool: PgPool,
        keyring: Arc<Keyring>,
        config: RelayConfig,
    ) -> Result<Relay, RelayError> {
        // Redirects are not followed: a 3xx is a failed attempt (Standard Webhooks), and
        // following one could lead the relay to a destination the egress policy never checked.
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("vendorflow-webhooks/", env!("CARGO_PKG_VERSION")))
            .no_proxy();
        if config.egress == EgressPolicy::PublicHttpsOnly {
            builder = builder.dns_resolver(GuardedResolver);
        }
        let client = builder.build().map_err(RelayError::Client)?;
        Ok(Relay {
            pool,
            keyring,
            config,
            client,
        })
    }

    /// The relay's configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// Runs ticks until `shutdown` is cancelled: at once again after a full tick, otherwise after
    /// `poll_interval`. A failed tick (the database unreachable, say) is logged and retried after
    /// the interval; it never ends the loop. Deliveries in flight when shutdown comes finish
    /// their tick first, so nothing is left half-recorded by this relay.
    pub async fn run(&self, shutdown: CancellationToken) {
        tracing::info!(
            batch_size = self.config.batch_size,
            max_attempts = self.config.schedule.max_attempts(),
            "webhook relay started"
        );
        while !shutdown.is_cancelled() {
            let full = match self.tick_once().await {
                Ok(report) => report.was_full(self.config.batch_size),
                Err(error) => {
                    tracing::warn!(error = %error, "webhook relay tick failed");
                    false
                }
            };
            if !full {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(self.config.poll_interval) => {}
                }
            }
        }
        tracing::info!("webhook relay stopped");
    }

    /// One pass: fan out new outbox events, mark undeliverable deliveries dead, claim due
    /// deliveries, send them (concurrently, no transaction open) and record every outcome.
    pub async fn tick_once(&self) -> Result<TickReport, RelayError> {
        let batch = i64::from(self.config.batch_size.max(1));
        let max_attempts = self.config.schedule.max_attempts();
        let fanned = wstore::fan_out(&self.pool, batch, self.config.fanout_lookback).await?;
        let swept = wstore::sweep_undeliverable(&self.pool, max_attempts).await?;
        let lease = self.lease();
        let claimed = wstore::claim_due(&self.pool, batch, lease, max_attempts).await?;

        let mut report = TickReport {
            events_fanned_out: fanned.events,
            deliveries_created: fanned.deliveries,
            swept,
            attempted: claimed.len() as u64,
            ..TickReport::default()
        };
        if claimed.is_empty() {
            return Ok(report);
        }

        let secrets = self.load_secrets(&claimed).await?;
        let results: Vec<Result<(AttemptOutcome, bool), RelayError>> =
            futures::stream::iter(claimed)
                .map(|delivery| {
                    let signing = secrets
                        .get(&delivery.endpoint_id)
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    self.attempt(delivery, signing)
                })
                .buffer_unordered(self.config.concurrency.max(1))
                .collect()
                .await;
        for result in results {
            let (outcome, recorded) = result?;
            if !recorded {
                report.lost_claims += 1;
                continue;
            }
            match outcome {
                AttemptOutcome::Delivered => report.delivered += 1,
                AttemptOutcome::Retry { .. } => report.retried += 1,
                AttemptOutcome::Dead | AttemptOutcome::Gone => report.dead += 1,
            }
        }
        Ok(report)
    }

    /// How long a claim lasts: long enough for the whole batch to be sent at the configured
    /// concurrency (the last request may start only after the earlier rounds have timed out)
    /// plus a margin, so a live relay always records before another relay may claim the same
    /// delivery again.
    fn lease(&self) -> Duration {
        let batch = self.config.batch_size.max(1) as usize;
        let rounds = batch.div_ceil(self.config.concurrency.max(1));
        let rounds = u32::try_from(rounds).unwrap_or(u32::MAX);
        self.config.request_timeout.saturating_mul(rounds) + Duration::from_secs(30)
    }

    /// Decrypts the signing secrets of every endpoint in the batch once: the current one, and
    /// during a rotation's overlap the previous one too. An endpoint whose secret is missing or
    /// does not decrypt maps to an empty list, and its deliveries fail (and are retried) without
    /// being sent unsigned; a previous secret that does not parse is left out.
    async fn load_secrets(
        &self,
        claimed: &[ClaimedDelivery],
    ) -> Result<HashMap<EndpointId, Vec<WebhookSecret>>, RelayError> {
        let mut secrets = HashMap::new();
        let mut conn = self.pool.acquire().await?;
        for delivery in claimed {
            if secrets.contains_key(&delivery.endpoint_id) {
                continue;
            }
            let found: Vec<SecretString> = match wstore::endpoint_signing_secrets(
                &mut conn,
                &self.keyring,
                delivery.endpoint_id,
            )
            .await
            {
                Ok(found) => found,
                Err(wstore::WebhookStoreError::Database(error)) => return Err(error.into()),
                Err(error) => {
                    tracing::error!(
                        endpoint_id = %delivery.endpoint_id,
                        error = %error,
                        "webhook endpoint signing secret unavailable"
                    );
                    Vec::new()
                }
            };
            let mut parsed = Vec::with_capacity(found.len());
            for (n, secret) in found.iter().enumerate() {
                match WebhookSecret::from_secret_string(secret) {
                    Ok(secret) => parsed.push(secret),
                    Err(error) => {
                        tracing::error!(endpoint_id = %delivery.endpoint_id, error = %error,
                            "webhook endpoint signing secret malformed");
                        if n == 0 {
                            break;
                        }
                    }
                }
            }
            secrets.insert(delivery.endpoint_id, parsed);
        }
        Ok(secrets)
    }

    /// Sends one claimed delivery and records the outcome; returns it and whether the record was
    /// accepted (false when the claim was lost).
    async fn attempt(
        &self,
        delivery: ClaimedDelivery,
        signing: &[WebhookSecret],
    ) -> Result<(AttemptOutcome, bool), RelayError> {
        let sent = match signing {
            [_, ..] => self.send(&delivery, signing).await,
            [] => Sent {
                answer: Answer::NoAnswer,
                status_code: None,
                error: Some("the endpoint's signing secret is unavailable".to_owned()),
                duration_ms: 0,
            },
        };
        let outcome = schedule::decide(&self.config.schedule, delivery.attempt, sent.answer);
        let record = AttemptRecord {
            delivery_id: delivery.id,
            claim_token: delivery.claim_token,
            outcome,
            status_code: sent.status_code,
            error: sent.error.clone(),
            duration_ms: sent.duration_ms,
        };
        let recorded = wstore::record_attempt(&self.pool, &record).await?;
        let outcome_name = match outcome {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retry { .. } => "retry",
            AttemptOutcome::Dead => "dead",
            AttemptOutcome::Gone => "gone",
        };
        if recorded {
            crate::observability::delivery(outcome_name);
        }
        // Never the body, the URL (it may carry a token) or the secret.
        tracing::info!(
            delivery_id = %delivery.id,
            endpoint_id = %delivery.endpoint_id,
            attempt = delivery.attempt,
            status = sent.status_code,
            duration_ms = sent.duration_ms,
            outcome = outcome_name,
            error = sent.error.as_deref(),
            recorded,
            "webhook attempt"
        );
        Ok((outcome, recorded))
    }

    /// Sends one delivery signed with every secret in `signing` (the current one first).
    async fn send(&self, delivery: &ClaimedDelivery, signing: &[WebhookSecret]) -> Sent {
        let url = match reqwest::Url::parse(&delivery.url) {
            Ok(url) => url,
            Err(_) => return refused(egress::EgressError::InvalidUrl),
        };
        if let Err(error) = egress::check_url(&url, self.config.egress) {
            return refused(error);
        }
        let body = match event_body(delivery) {
            Ok(body) => body,
            Err(_) => {
                return Sent {
                    answer: Answer::Refused,
                    status_code: None,
                    error: Some("the event payload could not be serialized".to_owned()),
                    duration_ms: 0,
                };
            }
        };
        // The message id is the outbox id, the same for every endpoint and every retry; the
        // timestamp and signature are those of this attempt.
        let id = delivery.outbox_id.to_string();
        let timestamp = Utc::now().timestamp();
        let signature = signature::sign_all(signing, &id, timestamp, &body);
        let started = Instant::now();
        let result = self
            .client
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(HEADER_ID, &id)
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_SIGNATURE, signature)
            .body(body)
            .send()
            .await;
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        match result {
            Ok(response) => {
                let code = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| schedule::parse_retry_after(v, Utc::now()));
                let error = (!response.status().is_success()).then(|| format!("HTTP {code}"));
                Sent {
                    answer: Answer::Status { code, retry_after },
                    status_code: Some(code),
                    error,
                    duration_ms,
                }
            }
            Err(error) => Sent {
                answer: Answer::NoAnswer,
                status_code: None,
                error: Some(describe(&error)),
                duration_ms,
            },
        }
    }
}

fn refused(error: egress::EgressError) -> Sent {
    Sent {
        answer: Answer::Refused,
        status_code: None,
        error: Some(format!("not sent: {error}")),
        duration_ms: 0,
    }
}

/// The exact bytes sent and signed: `{"type", "timestamp", "data"}`, serialized once.
/// `timestamp` is when the event was written to the outbox, so the body is the same on every
/// retry.
pub fn event_body(delivery: &ClaimedDelivery) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&serde_json::json!({
        "type": delivery.event_type,
        "timestamp": delivery.event_created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "data": delivery.payload,
    }))
}

/// A transport error in words, without the URL: the kind, and the innermost cause (an I/O error
/// such as "Connection refused", or the egress policy's refusal).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    if std::ptr::addr_eq(cause, error) {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(config: RelayConfig) -> Relay {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://unused@127.0.0.1:1/unused")
            .expect("lazy pool");
        Relay::new(
            pool,
            Arc::new(Keyring::single(store::secrets::MasterKey::generate())),
            config,
        )
        .expect("relay")
    }

    #[tokio::test]
    async fn the_claim_lease_covers_every_round_of_a_batch() {
        let r = relay(RelayConfig {
            batch_size: 100,
            concurrency: 16,
            request_timeout: Duration::from_secs(15),
            ..RelayConfig::default()
        });
        // 100 deliveries at 16 at a time are 7 rounds of at most 15 s each.
        assert_eq!(r.lease(), Duration::from_secs(7 * 15 + 30));
        let r = relay(RelayConfig {
            batch_size: 1,
            concurrency: 0,
            request_timeout: Duration::from_secs(10),
            ..RelayConfig::default()
        });
        assert_eq!(r.lease(), Duration::from_secs(40));
    }

    #[test]
    fn the_body_is_type_timestamp_and_data_in_that_shape() {
        let delivery = ClaimedDelivery {
            id: uuid::Uuid::nil(),
            claim_token: uuid::Uuid::nil(),
            attempt: 1,
            outbox_id: uuid::Uuid::nil(),
            endpoint_id: uuid::Uuid::nil(),
            marketplace_id: uuid::Uuid::nil(),
            url: "https://example.com".to_owned(),
            event_type: "vendor.onboarded".to_owned(),
            payload: serde_json::json!({"vendor_id": "v-1"}),
            event_created_at: chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z")
                .expect("time")
                .with_timezone(&Utc),
        };
        let body: serde_json::Value =
            serde_json::from_slice(&event_body(&delivery).expect("body")).expect("json");
        assert_eq!(
            body,
            serde_json::json!({
                "type": "vendor.onboarded",
                "timestamp": "2026-01-02T03:04:05.123456Z",
                "data": {"vendor_id": "v-1"}
            })
        );
    }
}

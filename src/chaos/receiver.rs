//! The marketplace's webhook receiver during a chaos run: an HTTP endpoint on 127.0.0.1 that
//! verifies every delivery's Standard Webhooks signature and keeps what arrived (event types,
//! webhook ids, and the bodies, which are searched for canaries).
//!
//! It must not answer anything but 204 to a delivery: the relay's retries are not under test.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// What the receiver got.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// Deliveries whose signature verified.
    pub verified: usize,
    /// Deliveries whose signature did not.
    pub rejected: usize,
    /// Distinct `webhook-id`s: a delivery repeated after a lost answer has the same id.
    pub ids: BTreeSet<String>,
    /// Verified deliveries per event type.
    pub by_type: BTreeMap<String, usize>,
    /// Every body, one after the other.
    pub bodies: Vec<u8>,
}

/// Serves the receiver on `listener` in `tasks` (stopped when they are).
pub fn start(
    listener: TcpListener,
    secret: &SecretString,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<Arc<Mutex<Received>>> {
    let secret = Arc::new(
        webhooks::WebhookSecret::from_secret_string(secret)
            .context("reading the webhook signing secret")?,
    );
    let received = Arc::new(Mutex::new(Received::default()));
    let state = received.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let received = state.clone();
            let secret = secret.clone();
            async move {
                let verified = webhooks::verify(
                    &headers,
                    &body,
                    &secret,
                    chrono::Utc::now(),
                    webhooks::DEFAULT_TOLERANCE,
                );
                let kind = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|event| event["type"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                let id = headers
                    .get("webhook-id")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let mut received = received.lock().unwrap_or_else(|p| p.into_inner());
                received.bodies.extend_from_slice(&body);
                received.bodies.push(b'\n');
                if verified.is_ok() {
                    received.verified += 1;
                    received.ids.insert(id);
                    *received.by_type.entry(kind).or_default() += 1;
                } else {
                    received.rejected += 1;
                }
                StatusCode::NO_CONTENT
            }
        }),
    );
    tasks.spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(error = %error, "the chaos webhook receiver stopped");
        }
    });
    Ok(received)
}

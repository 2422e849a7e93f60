//! The harness of the admin tests: the shared application (`super::Api`) with onboarding runs
//! driven by a real engine worker through a small test workflow, so that runs have real attempts,
//! errors, pauses and history.
//!
//! The test workflow's handlers are deterministic by attempt number: `create_organization` fails
//! retryably once and then succeeds; `capture_api_keys` pauses on its first attempt ("keys
//! unknown") and succeeds after an operator resumes it; the run then waits for
//! `terminal_approved`.

use std::ops::Deref;
use std::sync::Arc;

use domain::envelope::ErrorEnvelope;
use engine::{NewRun, StepContext, StepOutcome, handler_fn};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::Api;

const ONBOARDING_TEST_WORKFLOW: &str = r#"
name = "vendor_onboarding"
version = 1
outcomes = []

[events]
paused = "vendor.onboarding_paused"
cancelled = "vendor.onboarding_cancelled"

[defaults]
timeout = "5s"
retry = { max_attempts = 5, initial_backoff = "30s", max_backoff = "5m", multiplier = 2.0, jitter = "none", on_exhaustion = "pause" }

[[steps]]
name = "create_organization"
action = "create_organization"

[[steps]]
name = "capture_api_keys"
action = "capture_api_keys"

[[steps]]
name = "await_terminal_approval"
wait = "terminal_approved"
"#;

/// The running application and its database, with a worker for the test workflow. It derefs to
/// the shared `Api`, so tests reach the base URL, the pool, the marketplaces and the HTTP helpers
/// directly.
pub struct Harness {
    api: Api,
    worker: engine::Worker,
    definitions: Arc<engine::Definitions>,
    pub keyring: Arc<store::secrets::Keyring>,
    seq: std::sync::atomic::AtomicU32,
}

impl Deref for Harness {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Harness {
    /// Starts the application (API, admin API and dashboard) and a worker for the test workflow.
    pub async fn start(pool: PgPool) -> Harness {
        let mut registry = engine::Registry::new();
        registry
            .handler(
                "create_organization",
                handler_fn(|ctx: StepContext| async move {
                    if ctx.attempt == 1 {
                        StepOutcome::retryable(ErrorEnvelope::retryable(
                            "provider_unavailable",
                            "SUMIT answered 503 Service Unavailable",
                        ))
                    } else {
                        StepOutcome::success(json!({"company_id": 7_000_001}))
                    }
                }),
            )
            .handler(
                "capture_api_keys",
                handler_fn(|ctx: StepContext| async move {
                    if ctx.attempt == 1 {
                        StepOutcome::Pause {
                            reason:
                                "the organization exists but its API keys are unknown: enter them"
                                    .to_owned(),
                        }
                    } else {
                        StepOutcome::success(json!({"keys": "active"}))
                    }
                }),
            )
            .signal("terminal_approved");
        let registry = Arc::new(registry);
        let definitions = Arc::new(
            engine::Definitions::from_sources(
                [("vendor_onboarding.toml", ONBOARDING_TEST_WORKFLOW)],
                &registry,
            )
            .unwrap(),
        );
        let worker = engine::Worker::new(
            pool.clone(),
            registry,
            definitions.clone(),
            engine::WorkerConfig {
                max_steps_per_claim: 1,
                ..engine::WorkerConfig::default()
            },
        )
        .unwrap();
        let keyring = super::keyring();
        Harness {
            api: Api::start(pool, definitions.clone(), keyring.clone()).await,
            worker,
            definitions,
            keyring,
            seq: std::sync::atomic::AtomicU32::new(1),
        }
    }

    /// A clearing vendor of `market`.
    pub async fn vendor(&self, market: Uuid, external_id: &str, legal_name: &str) -> Uuid {
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        super::insert_vendor(
            &self.pool,
            market,
            external_id,
            legal_name,
            format!("51{:07}", n),
            format!("vendor{n}@example.co.il"),
        )
        .await
    }

    /// Enqueues an onboarding run for a new vendor of `market` and leaves it pending.
    pub async fn pending_run(&self, market: Uuid, external_id: &str) -> (Uuid, Uuid) {
        let vendor = self.vendor(market, external_id, "דנה קרמיקה בע\"מ").await;
        let mut new = NewRun::new("vendor_onboarding", json!({ "vendor_id": vendor }));
        new.marketplace_id = Some(market);
        new.subject_id = Some(vendor);
        let mut conn = self.pool.acquire().await.unwrap();
        let run = engine::enqueue(&mut conn, new, &self.definitions)
            .await
            .unwrap();
        (vendor, run.0)
    }

    /// An onboarding run driven by the worker until it paused at `capture_api_keys` (after one
    /// retryable failure of `create_organization`).
    pub async fn paused_run(&self, market: Uuid, external_id: &str) -> (Uuid, Uuid) {
        let (vendor, run) = self.pending_run(market, external_id).await;
        self.drive(run).await;
        assert_eq!(self.status(run).await, "paused");
        (vendor, run)
    }

    /// An onboarding run resumed after its pause and driven to its wait for `terminal_approved`.
    pub async fn waiting_run(&self, market: Uuid, external_id: &str) -> (Uuid, Uuid) {
        let (vendor, run) = self.paused_run(market, external_id).await;
        let mut conn = self.pool.acquire().await.unwrap();
        engine::ops::resume(
            &mut conn,
            engine::RunId::from(run),
            &engine::Actor::operator("harness"),
            "keys entered by the test",
        )
        .await
        .unwrap();
        drop(conn);
        self.drive(run).await;
        assert_eq!(self.status(run).await, "waiting");
        (vendor, run)
    }

    /// Executes the run's due steps, cutting every backoff short, until it leaves `pending`
    /// (bounded: a handful of steps at most).
    pub async fn drive(&self, run: Uuid) {
        for _ in 0..20 {
            sqlx::query(
                "UPDATE vendorflow.runs SET next_run_at = now() WHERE id = $1 AND status = 'pending'",
            )
            .bind(run)
            .execute(&self.pool)
            .await
            .unwrap();
            self.worker.run_once().await.unwrap();
            let status = self.status(run).await;
            if status != "pending" && status != "running" {
                return;
            }
        }
        panic!("run {run} did not settle within 20 steps");
    }

    pub async fn status(&self, run: Uuid) -> String {
        sqlx::query_scalar("SELECT status FROM vendorflow.runs WHERE id = $1")
            .bind(run)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// The kinds of the run's history, in order.
    pub async fn history(&self, run: Uuid) -> Vec<(String, Option<String>)> {
        sqlx::query_as(
            "SELECT kind, reason FROM vendorflow.run_history WHERE run_id = $1 ORDER BY id",
        )
        .bind(run)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// The audit entries about `target`: (action, result, reason).
    pub async fn audit(&self, target: Uuid) -> Vec<(String, String, Option<String>)> {
        sqlx::query_as(
            "SELECT action, result, reason FROM vendorflow.admin_audit WHERE target_id = $1 ORDER BY id",
        )
        .bind(target)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// A dead delivery of an event of `market` to a new endpoint of `market`.
    pub async fn dead_delivery(&self, market: Uuid) -> Uuid {
        let mut conn = self.pool.acquire().await.unwrap();
        let endpoint = store::webhooks::create_endpoint(
            &mut conn,
            &self.keyring,
            market,
            "https://marketplace.example/hooks/vendorflow",
            None,
        )
        .await
        .unwrap()
        .id;
        let event = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO vendorflow.outbox (id, marketplace_id, event_type, payload)
             VALUES ($1, $2, 'vendor.ready', '{}')",
        )
        .bind(event)
        .bind(market)
        .execute(&mut *conn)
        .await
        .unwrap();
        let delivery = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO vendorflow.webhook_deliveries
                (id, outbox_id, endpoint_id, marketplace_id, event_type, status, attempt,
                 last_attempt_at, last_status_code, last_error)
             VALUES ($1, $2, $3, $4, 'vendor.ready', 'dead', 10, now(), 500, 'HTTP 500 from the endpoint')",
        )
        .bind(delivery)
        .bind(event)
        .bind(endpoint)
        .bind(market)
        .execute(&mut *conn)
        .await
        .unwrap();
        delivery
    }
}

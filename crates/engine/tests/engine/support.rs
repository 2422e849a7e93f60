//! Test handlers, definitions and helpers shared by the engine's tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::{
    Definitions, ErrorEnvelope, ExecutionOutcome, NewRun, ReconcileOutcome, Registry, RunId,
    StepContext, StepOutcome, StepSuccess, Worker, WorkerConfig, handler_fn,
};
use serde_json::{Value, json};
use sqlx::PgPool;
use store::attempts::AttemptRow;
use store::history::HistoryRow;
use store::runs::RunRow;
use tokio::sync::Notify;

/// The provider's side of the world in tests: which effects happened, by idempotency key.
#[derive(Default)]
pub struct Ledger {
    effects: Mutex<HashMap<String, u32>>,
}

impl Ledger {
    pub fn apply(&self, key: &str) {
        *self
            .effects
            .lock()
            .unwrap()
            .entry(key.to_owned())
            .or_default() += 1;
    }

    pub fn count(&self, key: &str) -> u32 {
        self.effects.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    pub fn all(&self) -> HashMap<String, u32> {
        self.effects.lock().unwrap().clone()
    }
}

/// A gate a handler waits at until the test opens it; `entered` tells the test it is there.
#[derive(Default, Clone)]
pub struct Gate {
    pub entered: Arc<Notify>,
    pub open: Arc<Notify>,
}

impl Gate {
    pub async fn wait_inside(&self) {
        self.entered.notify_one();
        self.open.notified().await;
    }
}

/// A handler that applies its effect to the ledger and succeeds; its reconcile looks the effect
/// up in the ledger, like a lookup by natural key at a provider.
pub fn register_effect(registry: &mut Registry, name: &str, ledger: Arc<Ledger>) {
    let for_execute = ledger.clone();
    registry.handler(
        name,
        handler_fn(move |ctx: StepContext| {
            let ledger = for_execute.clone();
            async move {
                ledger.apply(&ctx.idempotency_key);
                StepOutcome::success(json!({ format!("{}_done", ctx.step): true }))
            }
        })
        .with_reconcile(move |ctx: StepContext| {
            let ledger = ledger.clone();
            async move {
                if ledger.count(&ctx.idempotency_key) > 0 {
                    ReconcileOutcome::Applied(StepSuccess::new(
                        json!({ format!("{}_done", ctx.step): true, "reconciled": true }),
                    ))
                } else {
                    ReconcileOutcome::NotApplied
                }
            }
        }),
    );
}

/// A registry with the effect handlers `first`, `second`, `third`, the condition `clearing`
/// (input `mode == "clearing"`) and the signal `approved`.
pub fn registry(ledger: &Arc<Ledger>) -> Registry {
    let mut registry = Registry::new();
    for name in ["first", "second", "third"] {
        register_effect(&mut registry, name, ledger.clone());
    }
    registry
        .condition("clearing", |input: &Value| input["mode"] == "clearing")
        .signal("approved");
    registry
}

pub const THREE_STEPS: &str = r#"
name = "three"
version = 1

[events]
succeeded = "three.succeeded"
failed = "three.failed"

[[steps]]
name = "one"
action = "first"

[[steps]]
name = "two"
action = "second"

[[steps]]
name = "three"
action = "third"
"#;

pub fn definitions(registry: &Registry, sources: &[(&str, &str)]) -> Arc<Definitions> {
    Arc::new(
        Definitions::from_sources(sources.iter().copied(), registry)
            .expect("test definitions are valid"),
    )
}

pub fn worker(
    pool: &PgPool,
    registry: &Registry,
    definitions: &Arc<Definitions>,
    id: &str,
) -> Worker {
    Worker::new(
        pool.clone(),
        Arc::new(registry.clone()),
        definitions.clone(),
        WorkerConfig {
            worker_id: id.to_owned(),
            ..WorkerConfig::default()
        },
    )
    .expect("a valid worker configuration")
}

pub async fn enqueue(
    pool: &PgPool,
    definitions: &Definitions,
    workflow: &str,
    input: Value,
) -> RunId {
    let mut conn = pool.acquire().await.unwrap();
    engine::enqueue(&mut conn, NewRun::new(workflow, input), definitions)
        .await
        .unwrap()
}

/// Runs `run_once` until nothing is due (bounded, so a bug cannot hang the test).
pub async fn drain(worker: &Worker) -> ExecutionOutcome {
    let mut total = ExecutionOutcome::default();
    for _ in 0..200 {
        let outcome = worker.run_once().await.unwrap();
        if outcome.is_empty() {
            return total;
        }
        total.claimed += outcome.claimed;
        total.recorded += outcome.recorded;
        total.lease_lost += outcome.lease_lost;
        total.record_failed += outcome.record_failed;
    }
    panic!("the queue never drained");
}

pub async fn run(pool: &PgPool, id: RunId) -> RunRow {
    let mut conn = pool.acquire().await.unwrap();
    store::runs::get(&mut conn, id.0)
        .await
        .unwrap()
        .expect("the run exists")
}

pub async fn attempts(pool: &PgPool, id: RunId) -> Vec<AttemptRow> {
    let mut conn = pool.acquire().await.unwrap();
    store::attempts::list_for_run(&mut conn, id.0)
        .await
        .unwrap()
}

pub async fn history(pool: &PgPool, id: RunId) -> Vec<HistoryRow> {
    let mut conn = pool.acquire().await.unwrap();
    store::history::list_for_run(&mut conn, id.0).await.unwrap()
}

pub fn kinds(history: &[HistoryRow]) -> Vec<&str> {
    history.iter().map(|h| h.kind.as_str()).collect()
}

/// Makes every lease of the run expire now.
pub async fn expire_lease(pool: &PgPool, id: RunId) {
    sqlx::query(
        "UPDATE vendorflow.runs SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
    )
    .bind(id.0)
    .execute(pool)
    .await
    .unwrap();
}

/// Makes the run due now (ends a backoff early, as time passing would).
pub async fn make_due(pool: &PgPool, id: RunId) {
    sqlx::query("UPDATE vendorflow.runs SET next_run_at = now() WHERE id = $1")
        .bind(id.0)
        .execute(pool)
        .await
        .unwrap();
}

/// Seconds from the database's now to the run's `next_run_at`.
pub async fn seconds_until_due(pool: &PgPool, id: RunId) -> f64 {
    sqlx::query_scalar(
        "SELECT extract(epoch FROM next_run_at - now())::float8 FROM vendorflow.runs WHERE id = $1",
    )
    .bind(id.0)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A handler that fails as told by a counter: `Retryable` forever.
pub fn always_retryable() -> impl engine::StepHandler {
    let calls = Arc::new(AtomicU32::new(0));
    handler_fn(move |_ctx: StepContext| {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            StepOutcome::retryable(ErrorEnvelope::retryable(
                "provider_unavailable",
                "the provider answered 503",
            ))
        }
    })
}

/// Polls `condition` until it holds, at most for `limit` (never a fixed sleep).
pub async fn eventually<F, Fut>(limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

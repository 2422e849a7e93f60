//! Graceful shutdown: stop claiming, let steps in flight finish within the grace period, leave
//! the rest to lease expiry.

use std::sync::Arc;
use std::time::Duration;

use engine::{
    Scheduler, SchedulerConfig, StepContext, StepOutcome, Worker, WorkerConfig, handler_fn,
};
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::support::{
    Gate, Ledger, THREE_STEPS, attempts, definitions, enqueue, expire_lease, history, kinds,
    registry, run,
};

fn gated_registry(gate: &Gate) -> engine::Registry {
    let mut registry = registry(&Arc::new(Ledger::default()));
    let gate = gate.clone();
    registry.handler(
        "second",
        handler_fn(move |_ctx: StepContext| {
            let gate = gate.clone();
            async move {
                gate.wait_inside().await;
                StepOutcome::success(json!({"second_done": true}))
            }
        }),
    );
    registry
}

fn live_worker(
    pool: &PgPool,
    registry: &engine::Registry,
    definitions: &Arc<engine::Definitions>,
    grace: Duration,
) -> Worker {
    Worker::new(
        pool.clone(),
        Arc::new(registry.clone()),
        definitions.clone(),
        WorkerConfig {
            worker_id: "live".into(),
            poll_interval: Duration::from_millis(20),
            grace_period: grace,
            ..WorkerConfig::default()
        },
    )
    .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn on_shutdown_a_worker_stops_claiming_and_lets_the_step_in_flight_finish(pool: PgPool) {
    let gate = Gate::default();
    let registry = gated_registry(&gate);
    let definitions = definitions(&registry, &[("three.toml", THREE_STEPS)]);
    let worker = live_worker(&pool, &registry, &definitions, Duration::from_secs(30));
    let shutdown = CancellationToken::new();
    let running = {
        let (worker, shutdown) = (worker.clone(), shutdown.clone());
        tokio::spawn(async move { worker.run(shutdown).await })
    };
    let in_flight = enqueue(&pool, &definitions, "three", json!({})).await;
    gate.entered.notified().await;

    shutdown.cancel();
    let after_shutdown = enqueue(&pool, &definitions, "three", json!({})).await;
    gate.open.notify_one();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the worker stops")
        .unwrap()
        .unwrap();

    let finished_step = run(&pool, in_flight).await;
    assert_eq!(finished_step.status, "pending", "given back after its step");
    assert_eq!(finished_step.step_name, "three");
    assert_eq!(finished_step.context["second_done"], true);
    assert_eq!(finished_step.lease_owner, None);
    assert_eq!(attempts(&pool, in_flight).await.len(), 2);

    let untouched = run(&pool, after_shutdown).await;
    assert_eq!(untouched.status, "pending");
    assert_eq!(
        kinds(&history(&pool, after_shutdown).await),
        vec!["created"],
        "nothing is claimed after shutdown"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_step_still_running_after_the_grace_period_is_left_to_lease_expiry(pool: PgPool) {
    let gate = Gate::default();
    let registry = gated_registry(&gate);
    let definitions = definitions(&registry, &[("three.toml", THREE_STEPS)]);
    let worker = live_worker(&pool, &registry, &definitions, Duration::from_millis(100));
    let shutdown = CancellationToken::new();
    let running = {
        let (worker, shutdown) = (worker.clone(), shutdown.clone());
        tokio::spawn(async move { worker.run(shutdown).await })
    };
    let id = enqueue(&pool, &definitions, "three", json!({})).await;
    gate.entered.notified().await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the worker stops after its grace period")
        .unwrap()
        .unwrap();

    let stuck = run(&pool, id).await;
    assert_eq!(stuck.status, "running");
    assert_eq!(stuck.lease_owner.as_deref(), Some("live"));
    assert!(stuck.open_attempt_id.is_some());
    expire_lease(&pool, id).await;
    let scheduler = Scheduler::new(
        pool.clone(),
        SchedulerConfig {
            retention: None,
            ..SchedulerConfig::default()
        },
    );
    assert_eq!(scheduler.tick_once().await.unwrap().rescued, 1);
}

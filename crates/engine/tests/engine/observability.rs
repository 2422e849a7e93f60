//! The engine's metrics, recorded into a Prometheus recorder local to the test's thread: runs
//! started once however often they are claimed, runs finished by status, step durations by
//! outcome, retries and rescues; and the due-queue statistics `/metrics` reads at scrape time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use engine::observability::{STEP_DURATION, STEP_DURATION_BUCKETS};
use engine::{
    Actor, ErrorEnvelope, NewRun, Registry, Scheduler, SchedulerConfig, StepContext, StepOutcome,
    handler_fn,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use serde_json::json;
use sqlx::PgPool;

use crate::support::{definitions, enqueue, make_due, run, worker};

const METERED: &str = r#"
name = "metered"
version = 1

[[steps]]
name = "one"
action = "flaky"
retry = { max_attempts = 3, initial_backoff = "1s", max_backoff = "1s" }

[[steps]]
name = "two"
action = "steady"
"#;

const OTHER: &str = r#"
name = "other"
version = 1

[[steps]]
name = "only"
action = "steady"
"#;

/// `flaky` fails (retryable) on its first call and succeeds afterwards; `steady` succeeds.
fn registry() -> Registry {
    let calls = Arc::new(AtomicU32::new(0));
    let mut registry = Registry::new();
    registry.handler(
        "flaky",
        handler_fn(move |_ctx: StepContext| {
            let calls = calls.clone();
            async move {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    StepOutcome::retryable(ErrorEnvelope::retryable(
                        "provider_unavailable",
                        "the provider answered 503",
                    ))
                } else {
                    StepOutcome::success(json!({}))
                }
            }
        }),
    );
    registry.handler(
        "steady",
        handler_fn(|_ctx: StepContext| async { StepOutcome::success(json!({})) }),
    );
    registry
}

#[sqlx::test(migrations = "../../migrations")]
async fn runs_steps_retries_cancellations_and_rescues_are_counted(pool: PgPool) {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(STEP_DURATION.to_owned()),
            STEP_DURATION_BUCKETS,
        )
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    // The test runs on one thread (a current-thread runtime), so every task records here.
    let _local = metrics::set_default_local_recorder(&recorder);

    let registry = registry();
    let definitions = definitions(&registry, &[("metered.toml", METERED)]);
    let worker = worker(&pool, &registry, &definitions, "metrics-worker");

    let kept = enqueue(&pool, &definitions, "metered", json!({})).await;
    let cancelled = enqueue(&pool, &definitions, "metered", json!({})).await;
    let mut conn = pool.acquire().await.unwrap();
    engine::ops::cancel(&mut conn, cancelled, &Actor::operator("dana"), "not needed")
        .await
        .unwrap();

    // First claim: step one fails and backs off. Then the backoff is cut short, step one
    // succeeds, and step two ends the run: three claims of one run.
    assert_eq!(worker.run_once().await.unwrap().claimed, 1);
    assert_eq!(run(&pool, kept).await.status, "pending");
    make_due(&pool, kept).await;
    for _ in 0..10 {
        if worker.run_once().await.unwrap().is_empty() {
            break;
        }
    }
    assert_eq!(run(&pool, kept).await.status, "succeeded");

    // A run whose worker died: its lease expired while it was running.
    let orphan = enqueue(&pool, &definitions, "metered", json!({})).await;
    sqlx::query(
        "UPDATE vendorflow.runs SET status = 'running', lease_owner = 'gone',
                lease_expires_at = now() - interval '1 second', next_run_at = NULL
         WHERE id = $1",
    )
    .bind(orphan.0)
    .execute(&pool)
    .await
    .unwrap();
    let scheduler = Scheduler::new(
        pool.clone(),
        SchedulerConfig {
            retention: None,
            ..SchedulerConfig::default()
        },
    );
    assert_eq!(scheduler.tick_once().await.unwrap().rescued, 1);

    let text = handle.render();
    for line in [
        r#"vendorflow_runs_started_total{workflow="metered"} 1"#,
        r#"vendorflow_runs_finished_total{workflow="metered",status="succeeded"} 1"#,
        r#"vendorflow_runs_finished_total{workflow="metered",status="cancelled"} 1"#,
        r#"vendorflow_step_retries_total{workflow="metered",step="one"} 1"#,
        r#"vendorflow_step_duration_seconds_count{workflow="metered",step="one",outcome="retryable"} 1"#,
        r#"vendorflow_step_duration_seconds_count{workflow="metered",step="one",outcome="succeeded"} 1"#,
        r#"vendorflow_step_duration_seconds_count{workflow="metered",step="two",outcome="succeeded"} 1"#,
        r#"vendorflow_step_duration_seconds_bucket{workflow="metered",step="two",outcome="succeeded",le="60"} 1"#,
        "vendorflow_rescues_total 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    // Ids never become labels.
    for id in [kept, cancelled, orphan] {
        assert!(!text.contains(&id.0.to_string()));
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_due_queue_is_counted_per_workflow_with_the_age_of_its_oldest_run(pool: PgPool) {
    let registry = registry();
    let definitions = definitions(
        &registry,
        &[("metered.toml", METERED), ("other.toml", OTHER)],
    );
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        store::observability::due_runs_by_workflow(&mut conn)
            .await
            .unwrap()
            .is_empty()
    );

    let oldest = enqueue(&pool, &definitions, "metered", json!({})).await;
    enqueue(&pool, &definitions, "metered", json!({})).await;
    enqueue(&pool, &definitions, "other", json!({})).await;
    let mut later = NewRun::new("metered", json!({}));
    later.delay = Some(Duration::from_secs(3600));
    engine::enqueue(&mut conn, later, &definitions)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE vendorflow.runs SET next_run_at = now() - interval '90 seconds' WHERE id = $1",
    )
    .bind(oldest.0)
    .execute(&pool)
    .await
    .unwrap();

    let stats = store::observability::due_runs_by_workflow(&mut conn)
        .await
        .unwrap();
    let by_name: Vec<(&str, i64)> = stats.iter().map(|s| (s.workflow.as_str(), s.due)).collect();
    // The run delayed by an hour is not due yet.
    assert_eq!(by_name, [("metered", 2), ("other", 1)]);
    assert!(
        (90.0..3600.0).contains(&stats[0].oldest_due_age_seconds),
        "{stats:?}"
    );
    assert!(stats[1].oldest_due_age_seconds < 90.0, "{stats:?}");
    assert_eq!(
        store::observability::dead_letters(&mut conn).await.unwrap(),
        0
    );
}

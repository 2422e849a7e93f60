//! The engine's metrics, recorded into a capturing recorder local to the test's thread: runs
//! started once however often they are claimed, runs finished by status, step durations by
//! outcome, retries, rescues and rows deleted by each retention job; and the due-queue statistics
//! `/metrics` reads at scrape time.
//! (The Prometheus rendering itself is the binary's, and is tested there.)

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::observability::{
    RESCUES, RETENTION_DELETED, RUNS_FINISHED, RUNS_STARTED, STEP_DURATION, STEP_DURATION_BUCKETS,
    STEP_RETRIES,
};
use engine::{
    Actor, ErrorEnvelope, NewRun, Registry, RetentionJob, Scheduler, SchedulerConfig, StepContext,
    StepOutcome, handler_fn,
};
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
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

/// A series: the metric's name and its labels (as a map, so their order does not matter).
type Series = (String, BTreeMap<String, String>);

/// A recorder that keeps every counter's value and every histogram's samples, by series.
#[derive(Default)]
struct Capture {
    counters: Mutex<BTreeMap<Series, Arc<CapturedCounter>>>,
    histograms: Mutex<BTreeMap<Series, Arc<CapturedHistogram>>>,
}

#[derive(Default)]
struct CapturedCounter(AtomicU64);

impl CounterFn for CapturedCounter {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::SeqCst);
    }

    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct CapturedHistogram(Mutex<Vec<f64>>);

impl HistogramFn for CapturedHistogram {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

fn series(key: &Key) -> Series {
    let labels = key
        .labels()
        .map(|label| (label.key().to_owned(), label.value().to_owned()))
        .collect();
    (key.name().to_owned(), labels)
}

fn labelled(name: &str, labels: &[(&str, &str)]) -> Series {
    let labels = labels
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    (name.to_owned(), labels)
}

impl Capture {
    /// The counter's value, if it was registered.
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
        let counters = self.counters.lock().unwrap();
        let found = counters.get(&labelled(name, labels))?;
        Some(found.0.load(Ordering::SeqCst))
    }

    /// The histogram's samples (empty if it was never registered).
    fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        let histograms = self.histograms.lock().unwrap();
        histograms
            .get(&labelled(name, labels))
            .map(|found| found.0.lock().unwrap().clone())
            .unwrap_or_default()
    }

    /// Every label value recorded under any series.
    fn label_values(&self) -> Vec<String> {
        let counters = self.counters.lock().unwrap();
        let histograms = self.histograms.lock().unwrap();
        counters
            .keys()
            .chain(histograms.keys())
            .flat_map(|(_, labels)| labels.values().cloned())
            .collect()
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.counters.lock().unwrap();
        Counter::from_arc(counters.entry(series(key)).or_default().clone())
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        panic!("the engine records no gauge, but registered {key}");
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut histograms = self.histograms.lock().unwrap();
        Histogram::from_arc(histograms.entry(series(key)).or_default().clone())
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn runs_steps_retries_cancellations_and_rescues_are_counted(pool: PgPool) {
    let recorder = Capture::default();
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

    let metered = ("workflow", "metered");
    for (name, labels) in [
        (RUNS_STARTED, vec![metered]),
        (RUNS_FINISHED, vec![metered, ("status", "succeeded")]),
        (RUNS_FINISHED, vec![metered, ("status", "cancelled")]),
        (STEP_RETRIES, vec![metered, ("step", "one")]),
        (RESCUES, vec![]),
    ] {
        assert_eq!(
            recorder.counter(name, &labels),
            Some(1),
            "{name} {labels:?}"
        );
    }
    // Nothing else ended: the retried step did not fail its run.
    assert_eq!(
        recorder.counter(RUNS_FINISHED, &[metered, ("status", "failed")]),
        None
    );
    let slowest_bucket = STEP_DURATION_BUCKETS.last().copied().unwrap();
    for (step, outcome) in [
        ("one", "retryable"),
        ("one", "succeeded"),
        ("two", "succeeded"),
    ] {
        let samples = recorder.samples(
            STEP_DURATION,
            &[metered, ("step", step), ("outcome", outcome)],
        );
        assert_eq!(samples.len(), 1, "{step}/{outcome}: {samples:?}");
        // Seconds, within the buckets the binary configures for this histogram.
        assert!(
            samples.iter().all(|s| (0.0..=slowest_bucket).contains(s)),
            "{step}/{outcome}: {samples:?}"
        );
    }
    // Ids never become labels.
    let values = recorder.label_values();
    for id in [kept, cancelled, orphan] {
        let id = id.0.to_string();
        assert!(!values.contains(&id), "{id} in {values:?}");
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

#[sqlx::test(migrations = "../../migrations")]
async fn retention_counts_the_rows_each_job_deleted(pool: PgPool) {
    let recorder = Capture::default();
    let _local = metrics::set_default_local_recorder(&recorder);
    engine::observability::describe();
    // Every job's series exists from the start, so a rate over it is defined.
    for job in RetentionJob::ALL {
        assert_eq!(
            recorder.counter(RETENTION_DELETED, &[("job", job.name())]),
            Some(0),
            "{}",
            job.name()
        );
    }

    let mut conn = pool.acquire().await.unwrap();
    let marketplace = store::marketplaces::insert(&mut conn, "Metered market")
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO vendorflow.idempotency_keys
             (marketplace_id, idempotency_key, request_method, request_path, request_hash, created_at)
         SELECT $1, 'key-' || n, 'POST', '/v1/onboardings', decode('00', 'hex'), now() - interval '2 days'
         FROM generate_series(1, 3) AS n",
    )
    .bind(marketplace.id)
    .execute(&pool)
    .await
    .unwrap();
    let scheduler = Scheduler::new(
        pool.clone(),
        SchedulerConfig {
            batch_size: 2,
            ..SchedulerConfig::default()
        },
    );
    assert_eq!(
        scheduler.retention_once().await.unwrap().idempotency_keys,
        3
    );
    for job in RetentionJob::ALL {
        let expected = u64::from(job == RetentionJob::IdempotencyKeys) * 3;
        assert_eq!(
            recorder.counter(RETENTION_DELETED, &[("job", job.name())]),
            Some(expected),
            "{}",
            job.name()
        );
    }
}

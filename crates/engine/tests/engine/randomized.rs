//! A seeded, time-bounded randomized test: hundreds of runs, handlers that fail, time out,
//! panic and return unknown outcomes at random, three workers and a scheduler running at once.
//! Checked: every run ends, no step's effect is applied twice (and every step of a succeeded run
//! exactly once), and each run's history is consistent with its attempts.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use engine::ops;
use engine::{
    Actor, Definitions, ErrorEnvelope, NewRun, ReconcileOutcome, Registry, RunId, Scheduler,
    SchedulerConfig, StepContext, StepOutcome, StepSuccess, Worker, WorkerConfig, handler_fn,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::support::{Ledger, attempts, eventually, history};

const CHAOS_A: &str = r#"
name = "chaos_a"
version = 1
[defaults]
timeout = "50ms"
retry = { max_attempts = 8, initial_backoff = "1ms", max_backoff = "20ms", multiplier = 2.0 }
[[steps]]
name = "a1"
action = "chaos"
[[steps]]
name = "a2"
action = "chaos"
[[steps]]
name = "a3"
action = "chaos"
[[steps]]
name = "a4"
action = "chaos"
"#;

const CHAOS_B: &str = r#"
name = "chaos_b"
version = 1
[defaults]
timeout = "50ms"
retry = { max_attempts = 8, initial_backoff = "1ms", max_backoff = "20ms", multiplier = 2.0 }
[[steps]]
name = "b1"
action = "chaos"
[[steps]]
name = "go"
wait = "go"
[[steps]]
name = "b2"
action = "chaos"
"#;

/// A deterministic draw in 0..100 for this attempt of this step under this seed, so the
/// behaviour does not depend on which worker runs it or when.
fn draw(seed: u64, key: &str, attempt: u32) -> u64 {
    let mut hasher = DefaultHasher::new();
    (seed, key, attempt).hash(&mut hasher);
    hasher.finish() % 100
}

fn chaos_registry(seed: u64, ledger: Arc<Ledger>) -> Registry {
    let mut registry = Registry::new();
    let for_reconcile = ledger.clone();
    registry.signal("go");
    registry.handler(
        "chaos",
        handler_fn(move |ctx: StepContext| {
            let ledger = ledger.clone();
            async move {
                let roll = if ctx.attempt >= 4 {
                    0
                } else {
                    draw(seed, &ctx.idempotency_key, ctx.attempt)
                };
                let key = ctx.idempotency_key.to_string();
                match roll {
                    // Success.
                    0..=54 => {
                        ledger.apply(&key);
                        StepOutcome::success(json!({ format!("{}_done", ctx.step): true }))
                    }
                    // A failure the provider reported before doing anything.
                    55..=69 => {
                        StepOutcome::retryable(ErrorEnvelope::retryable("http_503", "unavailable"))
                    }
                    // The provider did it, the answer was lost.
                    70..=79 => {
                        ledger.apply(&key);
                        StepOutcome::Unknown(ErrorEnvelope::retryable(
                            "connection_reset",
                            "lost answer",
                        ))
                    }
                    // The request never arrived, but nobody can tell.
                    80..=84 => StepOutcome::Unknown(ErrorEnvelope::retryable(
                        "connection_reset",
                        "lost request",
                    )),
                    // Done, then too slow to answer: a timeout.
                    85..=91 => {
                        ledger.apply(&key);
                        tokio::time::sleep(Duration::from_millis(80)).await;
                        StepOutcome::success(json!({}))
                    }
                    // Too slow before doing anything: a timeout, and the call is abandoned.
                    92..=96 => {
                        tokio::time::sleep(Duration::from_millis(80)).await;
                        ledger.apply(&key);
                        StepOutcome::success(json!({}))
                    }
                    // Done, then the handler panics.
                    97..=98 => {
                        ledger.apply(&key);
                        panic!("a handler bug after the provider call");
                    }
                    // A refusal no retry fixes.
                    _ => {
                        StepOutcome::Fatal(ErrorEnvelope::fatal("refused", "the provider refused"))
                    }
                }
            }
        })
        .with_reconcile(move |ctx: StepContext| {
            let ledger = for_reconcile.clone();
            async move {
                if ledger.count(&ctx.idempotency_key) > 0 {
                    ReconcileOutcome::Applied(StepSuccess::new(
                        json!({ format!("{}_done", ctx.step): true }),
                    ))
                } else {
                    ReconcileOutcome::NotApplied
                }
            }
        }),
    );
    registry
}

#[sqlx::test(migrations = "../../migrations")]
async fn hundreds_of_runs_under_random_faults_all_end_with_effects_once_and_consistent_history(
    pool: PgPool,
) {
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_260_501);
    let ledger = Arc::new(Ledger::default());
    let registry = chaos_registry(seed, ledger.clone());
    let definitions = Arc::new(
        Definitions::from_sources(
            [("chaos_a.toml", CHAOS_A), ("chaos_b.toml", CHAOS_B)],
            &registry,
        )
        .unwrap(),
    );
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    for n in 0..3 {
        let worker = Worker::new(
            pool.clone(),
            Arc::new(registry.clone()),
            definitions.clone(),
            WorkerConfig {
                worker_id: format!("chaos-{n}"),
                concurrency: 16,
                batch_size: 8,
                lease_duration: Duration::from_secs(5),
                poll_interval: Duration::from_millis(20),
                grace_period: Duration::from_secs(5),
                ..WorkerConfig::default()
            },
        )
        .unwrap();
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(
            async move { worker.run(shutdown).await.unwrap() },
        ));
    }
    let scheduler = Scheduler::new(
        pool.clone(),
        SchedulerConfig {
            tick_interval: Duration::from_millis(50),
            retention: None,
            ..SchedulerConfig::default()
        },
    );
    {
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            scheduler.run(shutdown).await.unwrap()
        }));
    }

    let mut rng = StdRng::seed_from_u64(seed);
    let mut conn = pool.acquire().await.unwrap();
    let mut runs: Vec<(RunId, &str)> = Vec::new();
    for i in 0..300 {
        let workflow = if i % 3 == 0 { "chaos_b" } else { "chaos_a" };
        let id = engine::enqueue(
            &mut conn,
            NewRun::new(workflow, json!({"n": i})),
            &definitions,
        )
        .await
        .unwrap();
        runs.push((id, workflow));
    }
    // Signals arrive at random moments: some before their run reaches the wait, some after.
    let mut waiting: Vec<RunId> = runs
        .iter()
        .filter(|(_, w)| *w == "chaos_b")
        .map(|(id, _)| *id)
        .collect();
    for i in (1..waiting.len()).rev() {
        let j = rng.random_range(0..=i);
        waiting.swap(i, j);
    }
    for id in &waiting {
        if rng.random_range(0..4) == 0 {
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..15))).await;
        }
        match ops::signal(
            &mut conn,
            *id,
            "go",
            json!({"at": "random"}),
            &Actor::backend("chaos"),
            "go ahead",
        )
        .await
        {
            // A run whose first step failed for good takes no signal.
            Ok(_) | Err(engine::EngineError::RunEnded(_, _)) => {}
            Err(other) => panic!("seed {seed}: signal failed: {other}"),
        }
    }

    let count_active = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM vendorflow.runs WHERE status NOT IN ('succeeded', 'failed')",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    eventually(Duration::from_secs(60), || async {
        count_active().await == 0
    })
    .await;
    shutdown.cancel();
    for task in tasks {
        task.await.unwrap();
    }

    // No step's effect was applied twice; every step of a succeeded run exactly once.
    let effects = ledger.all();
    let twice: Vec<_> = effects.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "seed {seed}: effects applied more than once: {twice:?}"
    );
    let mut statuses = HashMap::new();
    for (id, workflow) in &runs {
        let row = crate::support::run(&pool, *id).await;
        statuses
            .entry(row.status.to_string())
            .and_modify(|n| *n += 1)
            .or_insert(1);
        if row.status == "succeeded" {
            let steps: &[&str] = if *workflow == "chaos_a" {
                &["a1", "a2", "a3", "a4"]
            } else {
                &["b1", "b2"]
            };
            for step in steps {
                assert_eq!(
                    effects.get(&format!("{id}:{step}:0")),
                    Some(&1),
                    "seed {seed}: run {id} step {step}"
                );
            }
        }
        check_history(&pool, *id, row.status.as_str(), seed).await;
    }
    assert!(
        statuses.get("succeeded").copied().unwrap_or(0) > 250,
        "seed {seed}: {statuses:?}"
    );
}

/// The history of a run tells the same story as its attempts.
async fn check_history(pool: &PgPool, id: RunId, status: &str, seed: u64) {
    let tries = attempts(pool, id).await;
    let events = history(pool, id).await;
    let ctx = format!("seed {seed}, run {id}");
    assert!(
        tries.iter().all(|a| a.finished_at.is_some()),
        "{ctx}: an attempt was left open"
    );
    let started: Vec<_> = events.iter().filter(|e| e.kind == "step_started").collect();
    assert_eq!(
        started.len(),
        tries.len(),
        "{ctx}: one step_started per attempt"
    );
    let mut numbers: HashMap<&str, Vec<i32>> = HashMap::new();
    for attempt in &tries {
        numbers
            .entry(attempt.step_name.as_str())
            .or_default()
            .push(attempt.attempt);
        let same = |kind: &str| {
            events
                .iter()
                .filter(|e| {
                    e.kind == kind
                        && e.step_name.as_deref() == Some(attempt.step_name.as_str())
                        && e.attempt == Some(attempt.attempt)
                })
                .count()
        };
        assert_eq!(
            same("step_started"),
            1,
            "{ctx}: attempt {} of {}",
            attempt.attempt,
            attempt.step_name
        );
        match attempt.outcome.as_deref() {
            Some("succeeded") => assert_eq!(same("step_succeeded"), 1, "{ctx}"),
            Some(outcome @ ("retryable" | "unknown" | "fatal")) => {
                let failed: Vec<_> = events
                    .iter()
                    .filter(|e| {
                        e.kind == "step_failed"
                            && e.step_name.as_deref() == Some(attempt.step_name.as_str())
                            && e.attempt == Some(attempt.attempt)
                    })
                    .collect();
                assert_eq!(failed.len(), 1, "{ctx}");
                assert_eq!(
                    failed[0].data.as_ref().unwrap()["outcome"],
                    outcome,
                    "{ctx}"
                );
            }
            Some("abandoned") => assert!(
                same("reconciled") >= 1,
                "{ctx}: an abandoned attempt is reconciled"
            ),
            other => panic!("{ctx}: unexpected attempt outcome {other:?}"),
        }
    }
    for (step, mut list) in numbers {
        list.sort_unstable();
        assert_eq!(
            list,
            (1..=i32::try_from(list.len()).unwrap()).collect::<Vec<_>>(),
            "{ctx}: attempts of {step} are numbered 1..n"
        );
    }
    // A success not matched by a succeeded attempt must be an adopted effect.
    let succeeded_attempts: HashSet<_> = tries
        .iter()
        .filter(|a| a.outcome.as_deref() == Some("succeeded"))
        .map(|a| (a.step_name.clone(), a.attempt))
        .collect();
    for (i, event) in events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == "step_succeeded")
    {
        let key = (event.step_name.clone().unwrap(), event.attempt.unwrap());
        if !succeeded_attempts.contains(&key) {
            let adopted = events[..i]
                .iter()
                .rev()
                .find(|e| e.kind == "reconciled")
                .expect("a reconcile before");
            assert_eq!(adopted.data.as_ref().unwrap()["result"], "applied", "{ctx}");
            assert_eq!(adopted.attempt, event.attempt, "{ctx}");
        }
    }
    let last = events.last().unwrap();
    assert_eq!(last.kind, status, "{ctx}: the last event is the run's end");
}

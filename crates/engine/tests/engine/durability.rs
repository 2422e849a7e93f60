//! Fencing, crash recovery, rescue and persisted backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use engine::{
    ReconcileOutcome, RecordWrite, Registry, Scheduler, SchedulerConfig, StepContext, StepOutcome,
    StepSuccess, handler_fn,
};
use futures::future::BoxFuture;
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use crate::support::{
    Gate, Ledger, always_retryable, attempts, definitions, drain, enqueue, expire_lease, history,
    kinds, make_due, registry, run, seconds_until_due, worker,
};

const SOLO: &str = r#"
name = "solo"
version = 1
[[steps]]
name = "only"
action = "gated"
timeout = "30s"
"#;

/// Marks who recorded, from inside the record transaction.
struct Mark(&'static str);

impl RecordWrite for Mark {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO marks (who) VALUES ($1)")
                .bind(self.0)
                .execute(conn)
                .await?;
            Ok(())
        })
    }
}

async fn marks(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT who FROM marks ORDER BY who")
        .fetch_all(pool)
        .await
        .unwrap()
}

fn scheduler(pool: &PgPool) -> Scheduler {
    Scheduler::new(
        pool.clone(),
        SchedulerConfig {
            retention: None,
            ..SchedulerConfig::default()
        },
    )
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_zombie_worker_whose_lease_was_taken_over_cannot_write_its_late_result(pool: PgPool) {
    sqlx::query("CREATE TABLE marks (who text NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let ledger = Arc::new(Ledger::default());
    let (gate_a, gate_b) = (Gate::default(), Gate::default());
    let calls = Arc::new(AtomicU32::new(0));
    let mut registry = registry(&ledger);
    {
        let (gate_a, gate_b, ledger) = (gate_a.clone(), gate_b.clone(), ledger.clone());
        let ledger_for_reconcile = ledger.clone();
        registry.handler(
            "gated",
            handler_fn(move |ctx: StepContext| {
                let (gate_a, gate_b, calls, ledger) = (
                    gate_a.clone(),
                    gate_b.clone(),
                    calls.clone(),
                    ledger.clone(),
                );
                async move {
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        // Worker A: stalls past its lease, then comes back with a result.
                        gate_a.wait_inside().await;
                        StepOutcome::Success(
                            StepSuccess::new(json!({"by": "a"})).with_write(Mark("a")),
                        )
                    } else {
                        gate_b.wait_inside().await;
                        ledger.apply(&ctx.idempotency_key);
                        StepOutcome::Success(
                            StepSuccess::new(json!({"by": "b"})).with_write(Mark("b")),
                        )
                    }
                }
            })
            .with_reconcile(move |ctx: StepContext| {
                let ledger = ledger_for_reconcile.clone();
                async move {
                    if ledger.count(&ctx.idempotency_key) > 0 {
                        ReconcileOutcome::Applied(StepSuccess::empty())
                    } else {
                        ReconcileOutcome::NotApplied
                    }
                }
            }),
        );
    }
    let definitions = definitions(&registry, &[("solo.toml", SOLO)]);
    let a = worker(&pool, &registry, &definitions, "worker-a");
    let b = worker(&pool, &registry, &definitions, "worker-b");
    let id = enqueue(&pool, &definitions, "solo", json!({})).await;

    let a_task = tokio::spawn(async move { a.run_once().await.unwrap() });
    gate_a.entered.notified().await;
    expire_lease(&pool, id).await;
    assert_eq!(scheduler(&pool).tick_once().await.unwrap().rescued, 1);
    let b_task = tokio::spawn(async move { b.run_once().await.unwrap() });
    gate_b.entered.notified().await;

    // B holds the run now. A wakes up and tries to record its result.
    gate_a.open.notify_one();
    let a_outcome = a_task.await.unwrap();
    assert_eq!(a_outcome.lease_lost, 1, "A must learn it lost the lease");
    let held = run(&pool, id).await;
    assert_eq!(held.status, "running");
    assert_eq!(held.lease_owner.as_deref(), Some("worker-b"));
    assert!(
        held.context.get("by").is_none(),
        "A's output must not reach the context"
    );
    assert!(
        marks(&pool).await.is_empty(),
        "A's record write must not be committed"
    );

    gate_b.open.notify_one();
    let b_outcome = b_task.await.unwrap();
    assert_eq!(b_outcome.lease_lost, 0);

    let done = run(&pool, id).await;
    assert_eq!(done.status, "succeeded");
    assert_eq!(done.context["by"], "b");
    assert_eq!(marks(&pool).await, vec!["b"]);
    let tries = attempts(&pool, id).await;
    let summary: Vec<_> = tries
        .iter()
        .map(|a| (a.attempt, a.worker_id.as_str(), a.outcome.as_deref()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "worker-a", Some("abandoned")),
            (2, "worker-b", Some("succeeded"))
        ]
    );
    let events = history(&pool, id).await;
    let rescued_at = events
        .iter()
        .position(|e| e.kind == "rescued")
        .expect("the rescue is in history");
    assert!(
        events[rescued_at..]
            .iter()
            .all(|e| e.actor_id != "worker-a"),
        "nothing from the zombie after the rescue: {:?}",
        kinds(&events)
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_crash_between_the_provider_call_and_the_record_leads_to_reconcile_and_one_effect(
    pool: PgPool,
) {
    let ledger = Arc::new(Ledger::default());
    let mut registry = registry(&ledger);
    let abort_next_record = Arc::new(AtomicBool::new(true));
    {
        let (ledger, abort) = (ledger.clone(), abort_next_record.clone());
        let ledger_for_reconcile = ledger.clone();
        registry.handler(
            "gated",
            handler_fn(move |ctx: StepContext| {
                let (ledger, abort) = (ledger.clone(), abort.clone());
                async move {
                    // The provider call succeeds…
                    ledger.apply(&ctx.idempotency_key);
                    let mut success = StepSuccess::new(json!({"created": true}));
                    if abort.swap(false, Ordering::SeqCst) {
                        // …and the transaction recording it is aborted.
                        success = success.with_write(Mark("never"));
                    }
                    StepOutcome::Success(success)
                }
            })
            .with_reconcile(move |ctx: StepContext| {
                let ledger = ledger_for_reconcile.clone();
                async move {
                    if ledger.count(&ctx.idempotency_key) > 0 {
                        ReconcileOutcome::Applied(StepSuccess::new(
                            json!({"created": true, "adopted": true}),
                        ))
                    } else {
                        ReconcileOutcome::NotApplied
                    }
                }
            }),
        );
    }
    // No `marks` table: the record write fails, which aborts the whole record transaction.
    let definitions = definitions(&registry, &[("solo.toml", SOLO)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let id = enqueue(&pool, &definitions, "solo", json!({})).await;

    let first = worker.run_once().await.unwrap();
    assert_eq!(first.claimed, 1);
    let after_crash = run(&pool, id).await;
    assert_eq!(
        after_crash.status, "pending",
        "the attempt's outcome is unknown and retried"
    );
    assert!(after_crash.needs_reconcile);
    assert!(
        after_crash.context.get("created").is_none(),
        "nothing of the aborted record is kept"
    );

    make_due(&pool, id).await;
    drain(&worker).await;
    let done = run(&pool, id).await;
    assert_eq!(done.status, "succeeded");
    assert_eq!(
        done.context["adopted"], true,
        "the second attempt adopted the effect"
    );
    let key = format!("{}:only:0", id);
    assert_eq!(ledger.count(&key), 1, "the effect happened once");
    let tries = attempts(&pool, id).await;
    assert_eq!(tries.len(), 1);
    assert_eq!(tries[0].outcome.as_deref(), Some("unknown"));
    assert_eq!(tries[0].error.as_ref().unwrap()["code"], "record_failed");
    let events = history(&pool, id).await;
    let reconciled = events
        .iter()
        .find(|e| e.kind == "reconciled")
        .expect("reconciled");
    assert_eq!(reconciled.data.as_ref().unwrap()["result"], "applied");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_worker_that_dies_after_the_provider_call_is_rescued_and_its_effect_is_adopted_not_repeated(
    pool: PgPool,
) {
    let ledger = Arc::new(Ledger::default());
    let mut registry = registry(&ledger);
    let gate = Gate::default();
    {
        let (ledger, gate) = (ledger.clone(), gate.clone());
        let ledger_for_reconcile = ledger.clone();
        registry.handler(
            "gated",
            handler_fn(move |ctx: StepContext| {
                let (ledger, gate) = (ledger.clone(), gate.clone());
                async move {
                    ledger.apply(&ctx.idempotency_key);
                    // The worker dies here, after the provider applied the effect.
                    gate.wait_inside().await;
                    StepOutcome::success(json!({}))
                }
            })
            .with_reconcile(move |ctx: StepContext| {
                let ledger = ledger_for_reconcile.clone();
                async move {
                    if ledger.count(&ctx.idempotency_key) > 0 {
                        ReconcileOutcome::Applied(StepSuccess::new(json!({"adopted": true})))
                    } else {
                        ReconcileOutcome::NotApplied
                    }
                }
            }),
        );
    }
    let definitions = definitions(&registry, &[("solo.toml", SOLO)]);
    let dying = worker(&pool, &registry, &definitions, "dying");
    let id = enqueue(&pool, &definitions, "solo", json!({})).await;
    let task = tokio::spawn(async move { dying.run_once().await });
    gate.entered.notified().await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    let orphan = run(&pool, id).await;
    assert_eq!(orphan.status, "running");
    assert!(
        orphan.open_attempt_id.is_some(),
        "the attempt was recorded before the call"
    );

    expire_lease(&pool, id).await;
    assert_eq!(scheduler(&pool).tick_once().await.unwrap().rescued, 1);
    let survivor = worker(&pool, &registry, &definitions, "survivor");
    drain(&survivor).await;

    let done = run(&pool, id).await;
    assert_eq!(done.status, "succeeded");
    assert_eq!(done.context["adopted"], true);
    assert_eq!(
        ledger.count(&format!("{id}:only:0")),
        1,
        "the effect happened once"
    );
    let tries = attempts(&pool, id).await;
    assert_eq!(tries.len(), 1, "no second attempt was needed");
    assert_eq!(tries[0].outcome.as_deref(), Some("succeeded"));
    assert_eq!(
        kinds(&history(&pool, id).await),
        vec![
            "created",
            "step_started",
            "rescued",
            "reconciled",
            "step_succeeded",
            "succeeded"
        ]
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_run_whose_worker_died_is_rescued_once_its_lease_expires_exactly_once_and_finishes(
    pool: PgPool,
) {
    let ledger = Arc::new(Ledger::default());
    let mut registry = registry(&ledger);
    let gate = Gate::default();
    let calls = Arc::new(AtomicU32::new(0));
    {
        let (ledger, gate) = (ledger.clone(), gate.clone());
        let ledger_for_reconcile = ledger.clone();
        registry.handler(
            "gated",
            handler_fn(move |ctx: StepContext| {
                let (ledger, gate, calls) = (ledger.clone(), gate.clone(), calls.clone());
                async move {
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        // The worker dies before its request reaches the provider.
                        gate.wait_inside().await;
                    }
                    ledger.apply(&ctx.idempotency_key);
                    StepOutcome::success(json!({}))
                }
            })
            .with_reconcile(move |ctx: StepContext| {
                let ledger = ledger_for_reconcile.clone();
                async move {
                    if ledger.count(&ctx.idempotency_key) > 0 {
                        ReconcileOutcome::Applied(StepSuccess::empty())
                    } else {
                        ReconcileOutcome::NotApplied
                    }
                }
            }),
        );
    }
    let three_then_solo =
        crate::support::THREE_STEPS.replace("action = \"second\"", "action = \"gated\"");
    let definitions = definitions(&registry, &[("three.toml", &three_then_solo)]);
    let first = worker(&pool, &registry, &definitions, "first");
    let id = enqueue(&pool, &definitions, "three", json!({})).await;
    first.run_once().await.unwrap();
    let task = tokio::spawn(async move { first.run_once().await });
    gate.entered.notified().await;
    task.abort();
    let _ = task.await;

    // Not rescued while the lease holds.
    assert_eq!(scheduler(&pool).tick_once().await.unwrap().rescued, 0);
    expire_lease(&pool, id).await;
    let (s1, s2) = (scheduler(&pool), scheduler(&pool));
    let (one, two) = tokio::join!(s1.tick_once(), s2.tick_once());
    assert_eq!(
        one.unwrap().rescued + two.unwrap().rescued,
        1,
        "two schedulers rescue the run once"
    );
    assert_eq!(scheduler(&pool).tick_once().await.unwrap().rescued, 0);
    let rescued = run(&pool, id).await;
    assert_eq!(rescued.status, "pending");
    assert_eq!(rescued.lease_owner, None);

    let second = worker(&pool, &registry, &definitions, "second");
    drain(&second).await;
    let done = run(&pool, id).await;
    assert_eq!(done.status, "succeeded");
    let events = history(&pool, id).await;
    let rescues: Vec<_> = events.iter().filter(|e| e.kind == "rescued").collect();
    assert_eq!(rescues.len(), 1);
    assert_eq!(rescues[0].data.as_ref().unwrap()["previous_owner"], "first");
    for step in ["one", "two", "three"] {
        assert_eq!(
            ledger.count(&format!("{id}:{step}:0")),
            1,
            "step {step} took effect once"
        );
    }
}

const FLAKY: &str = r#"
name = "flaky"
version = 1
[events]
failed = "flaky.failed"
paused = "flaky.paused"
[[steps]]
name = "call"
action = "unreliable"
retry = { max_attempts = 3, initial_backoff = "1h", max_backoff = "3h", multiplier = 2.0, jitter = "none", on_exhaustion = "fail" }
"#;

fn flaky_registry() -> Registry {
    let mut registry = registry(&Arc::new(Ledger::default()));
    registry.handler("unreliable", always_retryable());
    registry
}

#[sqlx::test(migrations = "../../migrations")]
async fn backoff_survives_a_restart_of_every_worker_and_attempts_stop_at_max_then_the_run_fails(
    pool: PgPool,
) {
    let registry = flaky_registry();
    let definitions = definitions(&registry, &[("flaky.toml", FLAKY)]);
    let id = enqueue(&pool, &definitions, "flaky", json!({})).await;

    let before_restart = worker(&pool, &registry, &definitions, "before");
    before_restart.run_once().await.unwrap();
    drop(before_restart);
    let wait = seconds_until_due(&pool, id).await;
    assert!(
        (3590.0..=3600.5).contains(&wait),
        "first backoff is 1h, persisted: {wait}"
    );

    // Every worker restarted: the new one finds nothing due, because the backoff is stored.
    let after_restart = worker(&pool, &registry, &definitions, "after");
    assert!(after_restart.run_once().await.unwrap().is_empty());

    make_due(&pool, id).await;
    after_restart.run_once().await.unwrap();
    let wait = seconds_until_due(&pool, id).await;
    assert!(
        (7190.0..=7200.5).contains(&wait),
        "second backoff is 2h: {wait}"
    );

    make_due(&pool, id).await;
    after_restart.run_once().await.unwrap();
    let done = run(&pool, id).await;
    assert_eq!(done.status, "failed");
    assert!(
        done.status_reason
            .as_deref()
            .unwrap()
            .contains("failed 3 time(s)"),
        "{:?}",
        done.status_reason
    );
    assert!(
        after_restart.run_once().await.unwrap().is_empty(),
        "no fourth attempt"
    );
    let tries = attempts(&pool, id).await;
    assert_eq!(tries.len(), 3);
    assert!(
        tries
            .iter()
            .all(|a| a.outcome.as_deref() == Some("retryable"))
    );
    assert!(
        tries
            .iter()
            .all(|a| a.error.as_ref().unwrap()["code"] == "provider_unavailable")
    );
    assert!(tries.iter().all(|a| a.duration_ms.is_some()));
    let mut conn = pool.acquire().await.unwrap();
    let events = store::outbox::list_for_run(&mut conn, id.0).await.unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
        vec!["flaky.failed"]
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_step_whose_policy_says_pause_pauses_the_run_when_attempts_run_out(pool: PgPool) {
    let registry = flaky_registry();
    let source = FLAKY.replace("on_exhaustion = \"fail\"", "on_exhaustion = \"pause\"");
    let definitions = definitions(&registry, &[("flaky.toml", &source)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let id = enqueue(&pool, &definitions, "flaky", json!({})).await;
    for _ in 0..3 {
        make_due(&pool, id).await;
        worker.run_once().await.unwrap();
    }
    let paused = run(&pool, id).await;
    assert_eq!(paused.status, "paused");
    assert_eq!(paused.next_run_at, None);
    assert_eq!(attempts(&pool, id).await.len(), 3);
    let mut conn = pool.acquire().await.unwrap();
    let events = store::outbox::list_for_run(&mut conn, id.0).await.unwrap();
    assert_eq!(events[0].event_type, "flaky.paused");
}

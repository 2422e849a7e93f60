//! Operators' operations: each changes the run as documented and records who and why.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use engine::ops;
use engine::{Actor, EngineError, ErrorEnvelope, RunStatus, StepContext, StepOutcome, handler_fn};
use serde_json::json;
use sqlx::PgPool;

use crate::support::{
    Gate, Ledger, THREE_STEPS, definitions, drain, enqueue, history, registry, run, worker,
};

#[sqlx::test(migrations = "../../migrations")]
async fn retry_now_sends_a_failed_run_back_to_its_failed_step_and_records_who_and_why(
    pool: PgPool,
) {
    let ledger = Arc::new(Ledger::default());
    let mut registry = registry(&ledger);
    let broken = Arc::new(AtomicBool::new(true));
    {
        let broken = broken.clone();
        registry.handler(
            "second",
            handler_fn(move |_ctx: StepContext| {
                let broken = broken.clone();
                async move {
                    if broken.load(Ordering::SeqCst) {
                        StepOutcome::Fatal(ErrorEnvelope::fatal(
                            "invalid_bank_account",
                            "the provider refused the account",
                        ))
                    } else {
                        StepOutcome::success(json!({"fixed": true}))
                    }
                }
            }),
        );
    }
    let definitions = definitions(&registry, &[("three.toml", THREE_STEPS)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let id = enqueue(&pool, &definitions, "three", json!({})).await;
    drain(&worker).await;
    let failed = run(&pool, id).await;
    assert_eq!(failed.status, "failed");
    assert_eq!(failed.step_name, "two");
    assert_eq!(
        failed.last_error.as_ref().unwrap()["code"],
        "invalid_bank_account"
    );

    broken.store(false, Ordering::SeqCst);
    let mut conn = pool.acquire().await.unwrap();
    let refused = ops::retry_now(&mut conn, id, &Actor::operator("dana"), "  ")
        .await
        .unwrap_err();
    assert!(matches!(refused, EngineError::ReasonRequired));
    let status = ops::retry_now(
        &mut conn,
        id,
        &Actor::operator("dana"),
        "bank details corrected",
    )
    .await
    .unwrap();
    assert_eq!(status, RunStatus::Pending);
    drop(conn);
    drain(&worker).await;

    let done = run(&pool, id).await;
    assert_eq!(done.status, "succeeded");
    assert_eq!(done.outcome.as_deref(), Some("completed"));
    assert_eq!(
        ledger.count(&format!("{id}:one:0")),
        1,
        "steps before the failure are not repeated"
    );
    let retry = history(&pool, id)
        .await
        .into_iter()
        .find(|e| e.kind == "retry_requested")
        .unwrap();
    assert_eq!(
        (retry.actor_kind.as_str(), retry.actor_id.as_str()),
        ("operator", "dana")
    );
    assert_eq!(retry.reason.as_deref(), Some("bank details corrected"));
}

#[sqlx::test(migrations = "../../migrations")]
async fn resume_from_a_named_step_runs_it_again_with_a_new_idempotency_key(pool: PgPool) {
    let ledger = Arc::new(Ledger::default());
    let mut registry = registry(&ledger);
    let paused_once = Arc::new(AtomicBool::new(false));
    {
        let paused_once = paused_once.clone();
        registry.handler(
            "third",
            handler_fn(move |_ctx: StepContext| {
                let paused_once = paused_once.clone();
                async move {
                    if paused_once.swap(true, Ordering::SeqCst) {
                        StepOutcome::success(json!({}))
                    } else {
                        StepOutcome::Pause {
                            reason: "the vendor's documents need a look".into(),
                        }
                    }
                }
            }),
        );
    }
    let definitions = definitions(&registry, &[("three.toml", THREE_STEPS)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let id = enqueue(&pool, &definitions, "three", json!({})).await;
    drain(&worker).await;
    let paused = run(&pool, id).await;
    assert_eq!(paused.status, "paused");
    assert_eq!(
        paused.status_reason.as_deref(),
        Some("the vendor's documents need a look")
    );

    let mut conn = pool.acquire().await.unwrap();
    let unknown = ops::resume_from(&mut conn, id, "nope", &Actor::cli("root"), "x")
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, EngineError::UnknownStep { .. }),
        "{unknown}"
    );
    ops::resume_from(
        &mut conn,
        id,
        "two",
        &Actor::cli("root"),
        "the organization must be re-created",
    )
    .await
    .unwrap();
    drop(conn);
    drain(&worker).await;

    let done = run(&pool, id).await;
    assert_eq!(done.status, "succeeded");
    assert_eq!(done.generation, 1);
    assert_eq!(ledger.count(&format!("{id}:one:0")), 1);
    assert_eq!(ledger.count(&format!("{id}:two:0")), 1);
    assert_eq!(
        ledger.count(&format!("{id}:two:1")),
        1,
        "step two ran again under a new key"
    );
    let resumed = history(&pool, id)
        .await
        .into_iter()
        .find(|e| e.kind == "resumed_from")
        .unwrap();
    assert_eq!(resumed.step_name.as_deref(), Some("two"));
    assert_eq!(resumed.data.unwrap()["from_step"], "three");
}

#[sqlx::test(migrations = "../../migrations")]
async fn pausing_a_run_a_worker_holds_takes_effect_at_its_next_record_and_resume_continues_it(
    pool: PgPool,
) {
    let ledger = Arc::new(Ledger::default());
    let mut registry = registry(&ledger);
    let gate = Gate::default();
    {
        let (gate, ledger) = (gate.clone(), ledger.clone());
        registry.handler(
            "second",
            handler_fn(move |ctx: StepContext| {
                let (gate, ledger) = (gate.clone(), ledger.clone());
                async move {
                    gate.wait_inside().await;
                    ledger.apply(&ctx.idempotency_key);
                    StepOutcome::success(json!({"second_done": true}))
                }
            }),
        );
    }
    let definitions = definitions(&registry, &[("three.toml", THREE_STEPS)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let id = enqueue(&pool, &definitions, "three", json!({})).await;
    worker.run_once().await.unwrap();
    let held = worker.clone();
    let task = tokio::spawn(async move { held.run_once().await.unwrap() });
    gate.entered.notified().await;

    let mut conn = pool.acquire().await.unwrap();
    let status = ops::pause(
        &mut conn,
        id,
        &Actor::operator("dana"),
        "checking with the acquirer",
    )
    .await
    .unwrap();
    assert_eq!(
        status,
        RunStatus::Running,
        "a held run gets a pause request"
    );
    gate.open.notify_one();
    let outcome = task.await.unwrap();
    assert_eq!(
        outcome.lease_lost, 0,
        "the step in flight keeps its outcome"
    );

    let paused = run(&pool, id).await;
    assert_eq!(paused.status, "paused");
    assert_eq!(paused.step_name, "three");
    assert_eq!(paused.context["second_done"], true);
    assert!(
        paused
            .status_reason
            .unwrap()
            .contains("checking with the acquirer")
    );
    assert!(worker.run_once().await.unwrap().is_empty());

    let refused = ops::retry_now(&mut conn, id, &Actor::operator("dana"), "x")
        .await
        .unwrap_err();
    assert!(matches!(refused, EngineError::Transition(_)), "{refused}");
    ops::resume(
        &mut conn,
        id,
        &Actor::operator("dana"),
        "the acquirer confirmed",
    )
    .await
    .unwrap();
    drop(conn);
    drain(&worker).await;
    assert_eq!(run(&pool, id).await.status, "succeeded");
    let kinds: Vec<_> = history(&pool, id)
        .await
        .into_iter()
        .map(|e| (e.kind, e.actor_id))
        .collect();
    let interesting: Vec<_> = kinds
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "pause_requested" | "paused" | "resumed"))
        .map(|(k, a)| (k.as_str(), a.as_str()))
        .collect();
    assert_eq!(
        interesting,
        vec![
            ("pause_requested", "dana"),
            ("paused", "engine"),
            ("resumed", "dana")
        ]
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn pausing_a_pending_run_stops_it_until_resumed(pool: PgPool) {
    let ledger = Arc::new(Ledger::default());
    let registry = registry(&ledger);
    let definitions = definitions(&registry, &[("three.toml", THREE_STEPS)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let id = enqueue(&pool, &definitions, "three", json!({})).await;
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(
        ops::pause(&mut conn, id, &Actor::operator("o"), "hold")
            .await
            .unwrap(),
        RunStatus::Paused
    );
    assert!(worker.run_once().await.unwrap().is_empty());
    let again = ops::pause(&mut conn, id, &Actor::operator("o"), "hold")
        .await
        .unwrap_err();
    assert!(again.to_string().contains("already paused"), "{again}");
    ops::resume(&mut conn, id, &Actor::operator("o"), "go")
        .await
        .unwrap();
    drop(conn);
    drain(&worker).await;
    assert_eq!(run(&pool, id).await.status, "succeeded");
}

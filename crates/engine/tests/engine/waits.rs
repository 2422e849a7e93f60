//! Waits and signals: a waiting run holds no worker; early signals are kept; polls run on
//! schedule; deadlines fire; cancel stops a waiting run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use engine::ops::{self, SignalOutcome};
use engine::{Actor, EngineError, PollOutcome, Scheduler, SchedulerConfig, StepSuccess, poll_fn};
use serde_json::json;
use sqlx::PgPool;

use crate::support::{
    Ledger, definitions, drain, enqueue, history, kinds, registry, run, seconds_until_due, worker,
};

const APPROVAL: &str = r#"
name = "approval"
version = 1
[events]
succeeded = "approval.done"
failed = "approval.failed"
cancelled = "approval.cancelled"
[[steps]]
name = "one"
action = "first"
[[steps]]
name = "await_approval"
wait = "approved"
deadline = "1h"
on_deadline = "fail"
reminder_every = "30m"
reminder_event = "approval.reminder"
[[steps]]
name = "two"
action = "second"
"#;

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
async fn a_signal_sent_before_the_run_reaches_its_wait_is_kept_and_consumed_there(pool: PgPool) {
    let ledger = Arc::new(Ledger::default());
    let registry = registry(&ledger);
    let definitions = definitions(&registry, &[("approval.toml", APPROVAL)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let id = enqueue(&pool, &definitions, "approval", json!({})).await;

    let mut conn = pool.acquire().await.unwrap();
    let sent = ops::signal(
        &mut conn,
        id,
        "approved",
        json!({"terminal": 77}),
        &Actor::backend("token-1"),
        "acquirer approved",
    )
    .await
    .unwrap();
    assert_eq!(sent, SignalOutcome::Stored);
    drop(conn);

    drain(&worker).await;
    let done = run(&pool, id).await;
    assert_eq!(done.status, "succeeded");
    assert_eq!(done.context["approved"], json!({"terminal": 77}));
    let mut conn = pool.acquire().await.unwrap();
    let signals = store::signals::list_for_run(&mut conn, id.0).await.unwrap();
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0].consumed_step.as_deref(), Some("await_approval"));
    let events = history(&pool, id).await;
    let events = kinds(&events);
    assert!(
        events.contains(&"signal_received") && events.contains(&"wait_completed"),
        "{events:?}"
    );
    assert!(
        !events.contains(&"waiting"),
        "it never had to sleep: {events:?}"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_waiting_run_holds_no_worker_and_a_signal_wakes_it(pool: PgPool) {
    let ledger = Arc::new(Ledger::default());
    let registry = registry(&ledger);
    let definitions = definitions(&registry, &[("approval.toml", APPROVAL)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let id = enqueue(&pool, &definitions, "approval", json!({})).await;
    drain(&worker).await;

    let waiting = run(&pool, id).await;
    assert_eq!(waiting.status, "waiting");
    assert_eq!(waiting.lease_owner, None, "no worker is held");
    let until = seconds_until_due(&pool, id).await;
    assert!(
        (1790.0..=1800.5).contains(&until),
        "next timer is the 30m reminder: {until}"
    );
    assert!(worker.run_once().await.unwrap().is_empty());

    let mut conn = pool.acquire().await.unwrap();
    let sent = ops::signal(
        &mut conn,
        id,
        "approved",
        json!({}),
        &Actor::operator("dana"),
        "approved on the phone",
    )
    .await
    .unwrap();
    assert_eq!(sent, SignalOutcome::Woken);
    drop(conn);
    drain(&worker).await;
    assert_eq!(run(&pool, id).await.status, "succeeded");
    assert_eq!(ledger.count(&format!("{id}:two:0")), 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_wait_sends_its_reminder_and_its_deadline_fires(pool: PgPool) {
    let ledger = Arc::new(Ledger::default());
    let registry = registry(&ledger);
    let definitions = definitions(&registry, &[("approval.toml", APPROVAL)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let id = enqueue(&pool, &definitions, "approval", json!({})).await;
    drain(&worker).await;

    // 40 minutes pass: the reminder is due.
    sqlx::query("UPDATE vendorflow.runs SET waiting_since = waiting_since - interval '40 minutes', next_reminder_at = now(), next_run_at = now() WHERE id = $1")
        .bind(id.0).execute(&pool).await.unwrap();
    assert_eq!(scheduler(&pool).tick_once().await.unwrap().woken, 1);
    drain(&worker).await;
    assert_eq!(run(&pool, id).await.status, "waiting");
    let until = seconds_until_due(&pool, id).await;
    assert!(
        (1190.0..=1200.5).contains(&until),
        "the deadline (20m left) comes before the next reminder: {until}"
    );

    // Two hours pass: the deadline fires.
    sqlx::query("UPDATE vendorflow.runs SET waiting_since = now() - interval '2 hours', next_run_at = now() WHERE id = $1")
        .bind(id.0).execute(&pool).await.unwrap();
    assert_eq!(scheduler(&pool).tick_once().await.unwrap().woken, 1);
    drain(&worker).await;
    let done = run(&pool, id).await;
    assert_eq!(done.status, "failed");
    assert!(
        done.status_reason
            .unwrap()
            .contains("no `approved` signal arrived")
    );
    let events = history(&pool, id).await;
    let events = kinds(&events);
    assert!(
        events.contains(&"reminder") && events.contains(&"deadline_reached"),
        "{events:?}"
    );
    let mut conn = pool.acquire().await.unwrap();
    let outbox: Vec<String> = store::outbox::list_for_run(&mut conn, id.0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(outbox, vec!["approval.reminder", "approval.failed"]);
    assert_eq!(
        ledger.count(&format!("{id}:two:0")),
        0,
        "the step after the wait never ran"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn cancel_stops_a_waiting_run_and_later_signals_are_refused(pool: PgPool) {
    let ledger = Arc::new(Ledger::default());
    let registry = registry(&ledger);
    let definitions = definitions(&registry, &[("approval.toml", APPROVAL)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let scheduler = scheduler(&pool);
    let id = enqueue(&pool, &definitions, "approval", json!({})).await;
    drain(&worker).await;
    assert_eq!(run(&pool, id).await.status, "waiting");

    let mut conn = pool.acquire().await.unwrap();
    let status = ops::cancel(
        &mut conn,
        id,
        &Actor::operator("dana"),
        "the vendor left the marketplace",
    )
    .await
    .unwrap();
    assert_eq!(status.as_str(), "cancelled");
    sqlx::query("UPDATE vendorflow.runs SET next_run_at = now() - interval '1 day' WHERE id = $1")
        .bind(id.0)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(scheduler.tick_once().await.unwrap().woken, 0);
    assert!(worker.run_once().await.unwrap().is_empty());
    let refused = ops::signal(
        &mut conn,
        id,
        "approved",
        json!({}),
        &Actor::backend("t"),
        "late",
    )
    .await
    .unwrap_err();
    assert!(matches!(refused, EngineError::RunEnded(_, _)), "{refused}");

    let done = run(&pool, id).await;
    assert_eq!(done.status, "cancelled");
    assert!(done.finished_at.is_some());
    let cancelled = history(&pool, id)
        .await
        .into_iter()
        .find(|e| e.kind == "cancelled")
        .unwrap();
    assert_eq!(
        (cancelled.actor_kind.as_str(), cancelled.actor_id.as_str()),
        ("operator", "dana")
    );
    assert_eq!(
        cancelled.reason.as_deref(),
        Some("the vendor left the marketplace")
    );
    let outbox = store::outbox::list_for_run(&mut conn, id.0).await.unwrap();
    assert_eq!(outbox.last().unwrap().event_type, "approval.cancelled");
    assert_eq!(ledger.count(&format!("{id}:two:0")), 0);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_poll_runs_on_its_schedule_and_completes_the_wait_when_ready(pool: PgPool) {
    let ledger = Arc::new(Ledger::default());
    let mut registry = registry(&ledger);
    let polls = Arc::new(AtomicU32::new(0));
    {
        let polls = polls.clone();
        registry.poll(
            "terminal_status",
            poll_fn(move |_ctx| {
                let polls = polls.clone();
                async move {
                    if polls.fetch_add(1, Ordering::SeqCst) == 0 {
                        PollOutcome::NotYet
                    } else {
                        PollOutcome::Ready(StepSuccess::new(json!({"terminal_status": "approved"})))
                    }
                }
            }),
        );
    }
    let source = APPROVAL.replace(
        "wait = \"approved\"",
        "wait = \"approved\"\npoll = \"terminal_status\"\npoll_every = \"15m\"",
    );
    let definitions = definitions(&registry, &[("approval.toml", &source)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let scheduler = scheduler(&pool);
    let id = enqueue(&pool, &definitions, "approval", json!({})).await;
    drain(&worker).await;
    let until = seconds_until_due(&pool, id).await;
    assert!(
        (890.0..=900.5).contains(&until),
        "the first poll is due in 15m: {until}"
    );
    assert_eq!(polls.load(Ordering::SeqCst), 0);

    for expected_polls in [1, 2] {
        sqlx::query(
            "UPDATE vendorflow.runs SET next_poll_at = now(), next_run_at = now() WHERE id = $1",
        )
        .bind(id.0)
        .execute(&pool)
        .await
        .unwrap();
        assert_eq!(scheduler.tick_once().await.unwrap().woken, 1);
        drain(&worker).await;
        assert_eq!(polls.load(Ordering::SeqCst), expected_polls);
    }
    let done = run(&pool, id).await;
    assert_eq!(done.status, "succeeded");
    assert_eq!(done.context["terminal_status"], "approved");
    let poll_results: Vec<_> = history(&pool, id)
        .await
        .into_iter()
        .filter(|e| e.kind == "poll")
        .map(|e| e.data.unwrap()["result"].clone())
        .collect();
    assert_eq!(poll_results, vec![json!("not_yet"), json!("ready")]);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_signal_for_a_wait_the_workflow_does_not_have_is_refused(pool: PgPool) {
    let ledger = Arc::new(Ledger::default());
    let registry = registry(&ledger);
    let definitions = definitions(&registry, &[("three.toml", crate::support::THREE_STEPS)]);
    let id = enqueue(&pool, &definitions, "three", json!({})).await;
    let mut conn = pool.acquire().await.unwrap();
    let refused = ops::signal(
        &mut conn,
        id,
        "approved",
        json!({}),
        &Actor::backend("t"),
        "x",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(refused, EngineError::UnknownSignal { .. }),
        "{refused}"
    );
}

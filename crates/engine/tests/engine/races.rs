//! The races a payments engine cannot keep (issue 9), each proved closed: a cancel during a step
//! in flight keeps the step's outcome; the heartbeat keeps a slow handler's lease and a dead
//! worker's run is still rescued; a record replayed after its commit's answer was lost writes
//! nothing twice and never rewinds the run; a record the database always refuses pauses the run
//! instead of looping through lease expiry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use engine::{
    Actor, OutboxEvent, ReconcileOutcome, RecordFaults, RecordWrite, RunStatus, Scheduler,
    SchedulerConfig, StepContext, StepOutcome, StepSuccess, Worker, WorkerConfig, handler_fn, ops,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::support::{
    Gate, Ledger, attempts, definitions, drain, enqueue, eventually, history, kinds, make_due,
    registry, run, worker,
};

/// A charge-like workflow: `two` takes the money and writes a payment row with its record.
const PAYMENT: &str = r#"
name = "payment"
version = 1

[events]
succeeded = "payment.succeeded"
cancelled = "payment.cancelled"

[[steps]]
name = "one"
action = "first"

[[steps]]
name = "two"
action = "charge"
timeout = "30s"

[[steps]]
name = "three"
action = "third"
"#;

/// The payment row a charge writes in its record transaction.
struct PaymentRow(String);

impl RecordWrite for PaymentRow {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO payments (key) VALUES ($1)")
                .bind(&self.0)
                .execute(conn)
                .await?;
            Ok(())
        })
    }
}

async fn create_payments(pool: &PgPool) {
    sqlx::query("CREATE TABLE payments (key text NOT NULL)")
        .execute(pool)
        .await
        .unwrap();
}

async fn payments(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT key FROM payments")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn outbox_types(pool: &PgPool, run_id: uuid::Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT event_type FROM vendorflow.outbox WHERE run_id = $1 ORDER BY id")
        .bind(run_id)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// The charge's success: the money taken, the payment row, the event the marketplace receives.
fn charged(key: &str, reconciled: bool) -> StepSuccess {
    StepSuccess::new(json!({"charged": true, "reconciled": reconciled}))
        .with_write(PaymentRow(key.to_owned()))
        .with_event(OutboxEvent {
            event_type: "charge.succeeded".into(),
            payload: json!({"key": key}),
        })
}

/// Registers `charge`: waits at `gate` (when given), takes the money in `ledger`, and answers
/// with a success, or with an unknown outcome while `lose_answer` is set. Its reconcile finds the
/// money in the ledger.
fn register_charge(
    registry: &mut engine::Registry,
    ledger: &Arc<Ledger>,
    gate: Option<Gate>,
    lose_answer: Arc<AtomicBool>,
) {
    let (for_execute, for_reconcile) = (ledger.clone(), ledger.clone());
    registry.handler(
        "charge",
        handler_fn(move |ctx: StepContext| {
            let (ledger, gate, lose) = (for_execute.clone(), gate.clone(), lose_answer.clone());
            async move {
                if let Some(gate) = gate {
                    gate.wait_inside().await;
                }
                ledger.apply(&ctx.idempotency_key);
                if lose.load(Ordering::SeqCst) {
                    StepOutcome::Unknown(engine::ErrorEnvelope::retryable(
                        "timeout",
                        "the provider's answer was lost",
                    ))
                } else {
                    StepOutcome::Success(charged(&ctx.idempotency_key, false))
                }
            }
        })
        .with_reconcile(move |ctx: StepContext| {
            let ledger = for_reconcile.clone();
            async move {
                if ledger.count(&ctx.idempotency_key) > 0 {
                    ReconcileOutcome::Applied(charged(&ctx.idempotency_key, true))
                } else {
                    ReconcileOutcome::NotApplied
                }
            }
        }),
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_cancel_during_a_charge_in_flight_records_the_payment_and_reports_it_then_cancels(
    pool: PgPool,
) {
    create_payments(&pool).await;
    let ledger = Arc::new(Ledger::default());
    let mut registry = registry(&ledger);
    let gate = Gate::default();
    register_charge(
        &mut registry,
        &ledger,
        Some(gate.clone()),
        Arc::new(AtomicBool::new(false)),
    );
    let definitions = definitions(&registry, &[("payment.toml", PAYMENT)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let id = enqueue(&pool, &definitions, "payment", json!({})).await;
    worker.run_once().await.unwrap();
    let held = worker.clone();
    let task = tokio::spawn(async move { held.run_once().await.unwrap() });
    gate.entered.notified().await;

    let mut conn = pool.acquire().await.unwrap();
    let status = ops::cancel(&mut conn, id, &Actor::operator("dana"), "the buyer called")
        .await
        .unwrap();
    assert_eq!(
        status,
        RunStatus::Running,
        "a held run gets a cancel request"
    );
    let again = ops::cancel(&mut conn, id, &Actor::operator("dana"), "again")
        .await
        .unwrap_err();
    assert!(again.to_string().contains("already requested"), "{again}");
    gate.open.notify_one();
    let outcome = task.await.unwrap();
    assert_eq!(
        outcome.lease_lost, 0,
        "the charge in flight keeps its outcome"
    );

    let key = format!("{id}:two:0");
    assert_eq!(ledger.count(&key), 1);
    assert_eq!(
        payments(&pool).await,
        vec![key],
        "the payment row is written"
    );
    let cancelled = run(&pool, id).await;
    assert_eq!(cancelled.status, "cancelled");
    assert!(!cancelled.cancel_requested);
    assert!(cancelled.lease_owner.is_none() && cancelled.finished_at.is_some());
    assert_eq!(cancelled.context["charged"], true);
    assert!(
        cancelled
            .status_reason
            .unwrap()
            .contains("the buyer called")
    );
    assert_eq!(
        outbox_types(&pool, id.0).await,
        vec!["charge.succeeded", "payment.cancelled"],
        "the marketplace learns the money was taken, then that the run was cancelled"
    );
    assert!(drain(&worker).await.is_empty(), "step three never runs");
    assert_eq!(ledger.count(&format!("{id}:three:0")), 0);
    let events: Vec<_> = history(&pool, id)
        .await
        .into_iter()
        .filter(|e| matches!(e.kind.as_str(), "cancel_requested" | "cancelled"))
        .map(|e| (e.kind, e.actor_id))
        .collect();
    assert_eq!(
        events,
        vec![
            ("cancel_requested".to_owned(), "dana".to_owned()),
            ("cancelled".to_owned(), "engine".to_owned())
        ]
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_cancel_of_a_run_whose_charge_outcome_is_unknown_reconciles_first_and_keeps_the_payment(
    pool: PgPool,
) {
    create_payments(&pool).await;
    let ledger = Arc::new(Ledger::default());
    let mut registry = registry(&ledger);
    let lose = Arc::new(AtomicBool::new(true));
    register_charge(&mut registry, &ledger, None, lose.clone());
    let definitions = definitions(&registry, &[("payment.toml", PAYMENT)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let id = enqueue(&pool, &definitions, "payment", json!({})).await;
    worker.run_once().await.unwrap();
    worker.run_once().await.unwrap();
    let unknown = run(&pool, id).await;
    assert_eq!(
        (unknown.status.as_str(), unknown.needs_reconcile),
        ("pending", true),
        "the charge's answer was lost"
    );

    let mut conn = pool.acquire().await.unwrap();
    let status = ops::cancel(&mut conn, id, &Actor::operator("dana"), "the buyer called")
        .await
        .unwrap();
    assert_eq!(
        status,
        RunStatus::Pending,
        "the cancel waits for the reconcile"
    );
    drop(conn);
    drain(&worker).await;

    let key = format!("{id}:two:0");
    assert_eq!(
        ledger.count(&key),
        1,
        "the money was taken once, never again"
    );
    assert_eq!(
        payments(&pool).await,
        vec![key],
        "the reconcile recorded it"
    );
    let cancelled = run(&pool, id).await;
    assert_eq!(cancelled.status, "cancelled");
    assert_eq!(cancelled.context["reconciled"], true);
    assert_eq!(
        outbox_types(&pool, id.0).await,
        vec!["charge.succeeded", "payment.cancelled"]
    );
}

const SLOW: &str = r#"
name = "slow"
version = 1
[[steps]]
name = "only"
action = "slow"
timeout = "60s"
"#;

/// A `slow` run held by a worker with a 1.2 s lease, its handler waiting at `gate`: the run's id
/// and the task driving it.
async fn slow_run_in_flight(
    pool: &PgPool,
    gate: &Gate,
) -> (
    engine::RunId,
    tokio::task::JoinHandle<engine::ExecutionOutcome>,
) {
    let (worker, definitions) = slow_worker(pool, gate);
    let id = enqueue(pool, &definitions, "slow", json!({})).await;
    let task = tokio::spawn(async move { worker.run_once().await.unwrap() });
    gate.entered.notified().await;
    (id, task)
}

fn slow_worker(pool: &PgPool, gate: &Gate) -> (Worker, Arc<engine::Definitions>) {
    let ledger = Arc::new(Ledger::default());
    let mut registry = registry(&ledger);
    let gate = gate.clone();
    registry.handler(
        "slow",
        handler_fn(move |_ctx: StepContext| {
            let gate = gate.clone();
            async move {
                gate.wait_inside().await;
                StepOutcome::success(json!({"done": true}))
            }
        }),
    );
    let definitions = definitions(&registry, &[("slow.toml", SLOW)]);
    let worker = Worker::new(
        pool.clone(),
        Arc::new(registry),
        definitions.clone(),
        WorkerConfig {
            worker_id: "slow-worker".into(),
            lease_duration: Duration::from_millis(1200),
            ..WorkerConfig::default()
        },
    )
    .unwrap();
    (worker, definitions)
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

/// Whether the database's clock is past `at`.
async fn past(pool: &PgPool, at: chrono::DateTime<chrono::Utc>) -> bool {
    sqlx::query_scalar("SELECT now() > $1")
        .bind(at)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_handler_slower_than_the_lease_keeps_it_by_heartbeat_and_is_not_rescued(pool: PgPool) {
    let gate = Gate::default();
    let (id, task) = slow_run_in_flight(&pool, &gate).await;
    let first_lease = run(&pool, id).await.lease_expires_at.unwrap();

    // Bounded poll: the lease the attempt started with has run out, and the run still holds one.
    eventually(Duration::from_secs(15), || async {
        let now_held = run(&pool, id).await.lease_expires_at.unwrap();
        past(&pool, first_lease).await && !past(&pool, now_held).await
    })
    .await;
    let report = scheduler(&pool).tick_once().await.unwrap();
    assert_eq!(report.rescued, 0, "a heartbeating run is not rescued");

    gate.open.notify_one();
    let outcome = task.await.unwrap();
    assert_eq!(outcome.lease_lost, 0);
    assert_eq!(run(&pool, id).await.status, "succeeded");
    assert_eq!(attempts(&pool, id).await.len(), 1, "the step ran once");
    assert!(!kinds(&history(&pool, id).await).contains(&"rescued"));
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_worker_that_stops_heartbeating_has_its_run_rescued(pool: PgPool) {
    let gate = Gate::default();
    let (id, task) = slow_run_in_flight(&pool, &gate).await;
    // The worker dies mid-step: its handler and its heartbeat stop with it.
    task.abort();
    let _ = task.await;

    let scheduler = scheduler(&pool);
    let rescued = std::sync::atomic::AtomicUsize::new(0);
    eventually(Duration::from_secs(15), || async {
        let n = scheduler.tick_once().await.unwrap().rescued;
        rescued.fetch_add(n, Ordering::SeqCst) + n > 0
    })
    .await;
    assert_eq!(rescued.load(Ordering::SeqCst), 1);
    let after = run(&pool, id).await;
    assert_eq!(after.status, "pending");
    assert!(
        after.open_attempt_id.is_some(),
        "the next attempt reconciles first"
    );
    assert!(kinds(&history(&pool, id).await).contains(&"rescued"));
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_record_whose_commit_answer_is_lost_is_not_written_twice_and_never_rewinds_the_run(
    pool: PgPool,
) {
    create_payments(&pool).await;
    let ledger = Arc::new(Ledger::default());
    let mut registry = registry(&ledger);
    register_charge(
        &mut registry,
        &ledger,
        None,
        Arc::new(AtomicBool::new(false)),
    );
    let definitions = definitions(&registry, &[("payment.toml", PAYMENT)]);
    let faults = RecordFaults::default();
    let worker = Worker::new(
        pool.clone(),
        Arc::new(registry),
        definitions.clone(),
        WorkerConfig {
            worker_id: "w".into(),
            record_faults: faults.clone(),
            ..WorkerConfig::default()
        },
    )
    .unwrap();
    // The records of one run driven without pause: (1) start `one`; (2) `one` succeeded, `two`
    // started — a continuing record; (3) the charge succeeded with its payment row (written alone,
    // with its writes), `three` started; (4) the end. Lose the answers of (2) and then (3).
    for lost in [2, 3] {
        faults.lose_ack_of_nth(lost);
        let id = enqueue(&pool, &definitions, "payment", json!({})).await;
        let stop = CancellationToken::new();
        let running = {
            let (worker, stop) = (worker.clone(), stop.clone());
            tokio::spawn(async move { worker.run(stop).await })
        };
        eventually(Duration::from_secs(20), || async {
            run(&pool, id).await.status == "succeeded"
        })
        .await;
        stop.cancel();
        running.await.unwrap().unwrap();
        assert!(!faults.pending(), "the fault was injected");

        let attempts = attempts(&pool, id).await;
        assert_eq!(
            attempts
                .iter()
                .map(|a| (a.step_name.as_str(), a.attempt, a.outcome.as_deref()))
                .collect::<Vec<_>>(),
            vec![
                ("one", 1, Some("succeeded")),
                ("two", 1, Some("succeeded")),
                ("three", 1, Some("succeeded"))
            ],
            "no orphan attempt, no rewind"
        );
        let history = history(&pool, id).await;
        assert!(
            !kinds(&history).contains(&"step_failed"),
            "{:?}",
            kinds(&history)
        );
        assert_eq!(ledger.count(&format!("{id}:two:0")), 1);
        assert_eq!(
            outbox_types(&pool, id.0).await,
            vec!["charge.succeeded", "payment.succeeded"]
        );
    }
    assert_eq!(payments(&pool).await.len(), 2, "one payment row per run");
}

/// A write the database always refuses.
struct Refused;

impl RecordWrite for Refused {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO no_such_table (x) VALUES (1)")
                .execute(conn)
                .await?;
            Ok(())
        })
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_record_the_database_always_refuses_pauses_the_run_with_the_error(pool: PgPool) {
    let ledger = Arc::new(Ledger::default());
    let mut registry = registry(&ledger);
    registry.handler(
        "charge",
        handler_fn(|_ctx: StepContext| async {
            StepOutcome::Success(StepSuccess::new(json!({})).with_write(Refused))
        })
        .with_reconcile(|_ctx: StepContext| async {
            ReconcileOutcome::Applied(StepSuccess::new(json!({})).with_write(Refused))
        }),
    );
    let definitions = definitions(&registry, &[("payment.toml", PAYMENT)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let id = enqueue(&pool, &definitions, "payment", json!({})).await;
    // Bounded: without the failure count this loops (reconcile "applied", record refused) forever.
    for _ in 0..20 {
        if run(&pool, id).await.status == "paused" {
            break;
        }
        make_due(&pool, id).await;
        worker.run_once().await.unwrap();
    }
    let paused = run(&pool, id).await;
    assert_eq!(
        paused.status,
        "paused",
        "the run pauses for an operator: {:?}",
        history(&pool, id)
            .await
            .iter()
            .map(|h| (h.kind.clone(), h.reason.clone()))
            .collect::<Vec<_>>()
    );
    let reason = paused.status_reason.unwrap();
    assert!(
        reason.contains("could not be recorded 3 times") && reason.contains("no_such_table"),
        "{reason}"
    );
    assert!(paused.needs_reconcile, "a resume reconciles first");
}

/// An onboarding-like workflow: the vendor events it names carry the vendor's state.
const ONBOARDING: &str = r#"
name = "vendor_onboarding"
version = 1

[events]
paused = "vendor.onboarding_paused"
cancelled = "vendor.onboarding_cancelled"

[[steps]]
name = "capture_api_keys"
action = "charge"
timeout = "30s"

[[steps]]
name = "three"
action = "third"
"#;

#[sqlx::test(migrations = "../../migrations")]
async fn a_pause_requested_during_an_onboarding_step_reports_the_vendor_state_when_it_applies(
    pool: PgPool,
) {
    create_payments(&pool).await;
    let ledger = Arc::new(Ledger::default());
    let mut registry = registry(&ledger);
    let gate = Gate::default();
    register_charge(
        &mut registry,
        &ledger,
        Some(gate.clone()),
        Arc::new(AtomicBool::new(false)),
    );
    let definitions = definitions(&registry, &[("vendor_onboarding.toml", ONBOARDING)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let id = enqueue(&pool, &definitions, "vendor_onboarding", json!({})).await;
    let held = worker.clone();
    let task = tokio::spawn(async move { held.run_once().await.unwrap() });
    gate.entered.notified().await;

    let mut conn = pool.acquire().await.unwrap();
    let status = ops::pause(&mut conn, id, &Actor::operator("dana"), "check the keys")
        .await
        .unwrap();
    assert_eq!(
        status,
        RunStatus::Running,
        "a held run gets a pause request"
    );
    gate.open.notify_one();
    task.await.unwrap();
    assert_eq!(run(&pool, id).await.status, "paused");

    let payloads: Vec<(String, Value)> = sqlx::query_as(
        "SELECT event_type, payload FROM vendorflow.outbox WHERE run_id = $1 ORDER BY id",
    )
    .bind(id.0)
    .fetch_all(&pool)
    .await
    .unwrap();
    let paused: Vec<&Value> = payloads
        .iter()
        .filter(|(kind, _)| kind == "vendor.onboarding_paused")
        .map(|(_, payload)| payload)
        .collect();
    assert_eq!(paused.len(), 1, "{payloads:?}");
    assert_eq!(paused[0]["state"], "action_required", "{}", paused[0]);

    // Cancelled by an operator while paused, the vendor's state is `cancelled`.
    ops::cancel(&mut conn, id, &Actor::operator("dana"), "the vendor left")
        .await
        .unwrap();
    let cancelled: Value = sqlx::query_scalar(
        "SELECT payload FROM vendorflow.outbox
         WHERE run_id = $1 AND event_type = 'vendor.onboarding_cancelled'",
    )
    .bind(id.0)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
}

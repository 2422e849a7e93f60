//! Enqueue, pinning, conditions, business outcomes, record writes and continuation.

use std::sync::Arc;
use std::time::Duration;

use engine::{
    Actor, EngineError, NewRun, OutboxEvent, RecordWrite, StepContext, StepOutcome, StepSuccess,
    Worker, WorkerConfig, handler_fn,
};
use futures::future::BoxFuture;
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::support::{
    Ledger, THREE_STEPS, attempts, definitions, drain, enqueue, eventually, history, kinds,
    registry, run, worker,
};

#[sqlx::test(migrations = "../../migrations")]
async fn an_enqueue_inside_a_rolled_back_transaction_leaves_no_run(pool: PgPool) {
    let registry = registry(&Arc::new(Ledger::default()));
    let definitions = definitions(&registry, &[("three.toml", THREE_STEPS)]);
    let mut conn = pool.acquire().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let id = engine::enqueue(&mut tx, NewRun::new("three", json!({})), &definitions)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(store::runs::get(&mut conn, id.0).await.unwrap().is_none());

    let mut tx = conn.begin().await.unwrap();
    let id = engine::enqueue(&mut tx, NewRun::new("three", json!({})), &definitions)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let row = store::runs::get(&mut conn, id.0).await.unwrap().unwrap();
    assert_eq!(
        (
            row.status.as_str(),
            row.step_name.as_str(),
            row.workflow_version
        ),
        ("pending", "one", 1)
    );
    assert_eq!(
        row.content_hash,
        definitions.get("three").unwrap().content_hash
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_input_carrying_a_secret_or_an_unknown_workflow_is_refused(pool: PgPool) {
    let registry = registry(&Arc::new(Ledger::default()));
    let definitions = definitions(&registry, &[("three.toml", THREE_STEPS)]);
    let mut conn = pool.acquire().await.unwrap();
    let secret = engine::enqueue(
        &mut conn,
        NewRun::new("three", json!({"vendor": {"api_key": "sk_live_1"}})),
        &definitions,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&secret, EngineError::SecretInInput(path) if path == "input.vendor.api_key"),
        "{secret}"
    );
    assert!(!secret.to_string().contains("sk_live_1"));
    let unknown = engine::enqueue(&mut conn, NewRun::new("nope", json!({})), &definitions)
        .await
        .unwrap_err();
    assert!(matches!(unknown, EngineError::UnknownWorkflow(_)));
    let not_object = engine::enqueue(&mut conn, NewRun::new("three", json!([1])), &definitions)
        .await
        .unwrap_err();
    assert!(matches!(not_object, EngineError::InputNotObject));
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_run_keeps_the_definition_it_started_with_after_the_file_changes(pool: PgPool) {
    let ledger = Arc::new(Ledger::default());
    let registry = registry(&ledger);
    let old = definitions(&registry, &[("three.toml", THREE_STEPS)]);
    let id = enqueue(&pool, &old, "three", json!({})).await;
    // The file changes: version 2 has only one step. A worker started with the new file still
    // executes the run with the three steps it pinned.
    let new_source =
        "name = \"three\"\nversion = 2\n[[steps]]\nname = \"one\"\naction = \"first\"\n";
    let new = definitions(&registry, &[("three.toml", new_source)]);
    let worker = worker(&pool, &registry, &new, "w");
    drain(&worker).await;
    let done = run(&pool, id).await;
    assert_eq!(done.status, "succeeded");
    assert_eq!(done.workflow_version, 1);
    for step in ["one", "two", "three"] {
        assert_eq!(ledger.count(&format!("{id}:{step}:0")), 1, "{step}");
    }
    let fresh = enqueue(&pool, &new, "three", json!({})).await;
    drain(&worker).await;
    assert_eq!(run(&pool, fresh).await.workflow_version, 2);
    assert_eq!(ledger.count(&format!("{fresh}:two:0")), 0);
}

const CONDITIONAL: &str = r#"
name = "conditional"
version = 1
[[steps]]
name = "one"
action = "first"
[[steps]]
name = "two"
action = "second"
when = "clearing"
[[steps]]
name = "three"
action = "third"
when = "!clearing"
"#;

#[sqlx::test(migrations = "../../migrations")]
async fn a_step_whose_condition_does_not_hold_is_skipped_and_history_says_so(pool: PgPool) {
    let ledger = Arc::new(Ledger::default());
    let registry = registry(&ledger);
    let definitions = definitions(&registry, &[("conditional.toml", CONDITIONAL)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let clearing = enqueue(
        &pool,
        &definitions,
        "conditional",
        json!({"mode": "clearing"}),
    )
    .await;
    let documents = enqueue(
        &pool,
        &definitions,
        "conditional",
        json!({"mode": "documents_only"}),
    )
    .await;
    drain(&worker).await;
    assert_eq!(run(&pool, clearing).await.status, "succeeded");
    assert_eq!(run(&pool, documents).await.status, "succeeded");
    assert_eq!(ledger.count(&format!("{clearing}:two:0")), 1);
    assert_eq!(ledger.count(&format!("{clearing}:three:0")), 0);
    assert_eq!(ledger.count(&format!("{documents}:two:0")), 0);
    assert_eq!(ledger.count(&format!("{documents}:three:0")), 1);
    let skipped: Vec<_> = history(&pool, documents)
        .await
        .into_iter()
        .filter(|e| e.kind == "step_skipped")
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].step_name.as_deref(), Some("two"));
    assert_eq!(skipped[0].data.as_ref().unwrap()["when"], "clearing");
}

const CHARGE: &str = r#"
name = "charge"
version = 1
outcomes = ["declined"]
[events]
succeeded = "charge.succeeded"
declined = "charge.declined"
[[steps]]
name = "charge"
action = "charge_card"
[[steps]]
name = "document"
action = "first"
"#;

#[sqlx::test(migrations = "../../migrations")]
async fn a_step_can_end_the_run_with_a_declared_business_outcome_that_is_not_a_failure(
    pool: PgPool,
) {
    let ledger = Arc::new(Ledger::default());
    let mut registry = registry(&ledger);
    registry.handler(
        "charge_card",
        handler_fn(|ctx: StepContext| async move {
            let outcome = ctx.input["outcome"]
                .as_str()
                .unwrap_or("approve")
                .to_owned();
            match outcome.as_str() {
                "decline" => StepOutcome::Finish {
                    outcome: "declined".into(),
                    success: StepSuccess::new(json!({"decline_code": "insufficient_funds"})),
                },
                "weird" => StepOutcome::Finish {
                    outcome: "refunded".into(),
                    success: StepSuccess::empty(),
                },
                _ => StepOutcome::Success(
                    StepSuccess::new(json!({"approval": "0012345"})).with_event(OutboxEvent::new(
                        "charge.approved",
                        json!({"approval": "0012345"}),
                    )),
                ),
            }
        }),
    );
    let definitions = definitions(&registry, &[("charge.toml", CHARGE)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let approved = enqueue(&pool, &definitions, "charge", json!({})).await;
    let declined = enqueue(&pool, &definitions, "charge", json!({"outcome": "decline"})).await;
    let undeclared = enqueue(&pool, &definitions, "charge", json!({"outcome": "weird"})).await;
    drain(&worker).await;

    let mut conn = pool.acquire().await.unwrap();
    let events = |rows: Vec<store::outbox::OutboxRow>| {
        rows.into_iter().map(|e| e.event_type).collect::<Vec<_>>()
    };

    let a = run(&pool, approved).await;
    assert_eq!(
        (a.status.as_str(), a.outcome.as_deref()),
        ("succeeded", Some("completed"))
    );
    assert_eq!(
        events(
            store::outbox::list_for_run(&mut conn, approved.0)
                .await
                .unwrap()
        ),
        vec!["charge.approved", "charge.succeeded"]
    );

    let d = run(&pool, declined).await;
    assert_eq!(
        (d.status.as_str(), d.outcome.as_deref()),
        ("succeeded", Some("declined"))
    );
    assert_eq!(d.context["decline_code"], "insufficient_funds");
    assert_eq!(
        ledger.count(&format!("{declined}:document:0")),
        0,
        "no document for a decline"
    );
    assert_eq!(
        events(
            store::outbox::list_for_run(&mut conn, declined.0)
                .await
                .unwrap()
        ),
        vec!["charge.declined"]
    );
    assert_eq!(
        attempts(&pool, declined).await[0].outcome.as_deref(),
        Some("finished")
    );

    let u = run(&pool, undeclared).await;
    assert_eq!(u.status, "failed");
    assert_eq!(u.last_error.unwrap()["code"], "undeclared_outcome");
}

/// Inserts a row in the record transaction.
struct Store(String);

impl RecordWrite for Store {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO captured (value) VALUES ($1)")
                .bind(&self.0)
                .execute(conn)
                .await?;
            Ok(())
        })
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_record_write_commits_with_the_step_that_produced_it(pool: PgPool) {
    sqlx::query("CREATE TABLE captured (value text NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let ledger = Arc::new(Ledger::default());
    let mut registry = registry(&ledger);
    registry.handler(
        "first",
        handler_fn(|ctx: StepContext| async move {
            StepOutcome::Success(
                StepSuccess::new(json!({"organization_id": 42}))
                    .with_write(Store(format!("keys-for-{}", ctx.run_id))),
            )
        }),
    );
    let definitions = definitions(&registry, &[("three.toml", THREE_STEPS)]);
    let worker = worker(&pool, &registry, &definitions, "w");
    let id = enqueue(&pool, &definitions, "three", json!({})).await;
    worker.run_once().await.unwrap();
    let captured: Vec<String> = sqlx::query_scalar("SELECT value FROM captured")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(captured, vec![format!("keys-for-{id}")]);
    assert_eq!(run(&pool, id).await.context["organization_id"], 42);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_running_worker_executes_a_whole_run_with_one_claim_and_full_history(pool: PgPool) {
    let ledger = Arc::new(Ledger::default());
    let registry = registry(&ledger);
    let definitions = definitions(&registry, &[("three.toml", THREE_STEPS)]);
    let worker = Worker::new(
        pool.clone(),
        Arc::new(registry.clone()),
        definitions.clone(),
        WorkerConfig {
            worker_id: "live".into(),
            poll_interval: Duration::from_millis(50),
            ..WorkerConfig::default()
        },
    )
    .unwrap();
    let shutdown = CancellationToken::new();
    let running = {
        let (worker, shutdown) = (worker.clone(), shutdown.clone());
        tokio::spawn(async move { worker.run(shutdown).await })
    };
    let mut conn = pool.acquire().await.unwrap();
    let mut new = NewRun::new("three", json!({}));
    new.actor = Actor::backend("token-7");
    let id = engine::enqueue(&mut conn, new, &definitions).await.unwrap();
    drop(conn);
    eventually(Duration::from_secs(10), || async {
        run(&pool, id).await.status == "succeeded"
    })
    .await;
    shutdown.cancel();
    running.await.unwrap().unwrap();

    let events = history(&pool, id).await;
    assert_eq!(
        kinds(&events),
        vec![
            "created",
            "step_started",
            "step_succeeded",
            "step_started",
            "step_succeeded",
            "step_started",
            "step_succeeded",
            "succeeded"
        ]
    );
    assert_eq!(
        (events[0].actor_kind.as_str(), events[0].actor_id.as_str()),
        ("backend", "token-7")
    );
    let tries = attempts(&pool, id).await;
    assert_eq!(tries.len(), 3);
    assert!(
        tries
            .iter()
            .all(|a| a.worker_id == "live" && a.outcome.as_deref() == Some("succeeded"))
    );
    let claims: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT lease_token) FROM vendorflow.attempts WHERE run_id = $1",
    )
    .bind(id.0)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        claims, 1,
        "the worker went from step to step without giving the run back"
    );
}

//! Structured logs: every line written while a step runs (by the engine, or by the handler and
//! whatever it calls) carries the run id, the vendor id, the workflow and the step, through the
//! executor's span; and a retention job that deleted rows logs one line naming it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use engine::{NewRun, Registry, StepContext, StepOutcome, handler_fn};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::{definitions, run, worker};

/// Log output collected in memory.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const LOGGING: &str = r#"
name = "logging"
version = 1

[[steps]]
name = "say_hello"
action = "say_hello"
"#;

#[sqlx::test(migrations = "../../migrations")]
async fn a_line_a_handler_logs_carries_the_run_the_vendor_the_workflow_and_the_step(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let marketplace = store::marketplaces::insert(&mut conn, "Logs market")
        .await
        .unwrap();
    let vendor = store::vendors::insert(
        &mut conn,
        &store::vendors::NewVendor {
            marketplace_id: marketplace.id,
            external_id: "logs-1".to_owned(),
            legal_name: "Logs Ltd".to_owned(),
            corporate_number: "515555555".to_owned(),
            business_type: "company".to_owned(),
            email: "logs@example.co.il".to_owned(),
            phone_e164: "+972521234567".to_owned(),
            mode: "documents_only".to_owned(),
            bank_account_checked: None,
            bank_account_last4: None,
        },
    )
    .await
    .unwrap();

    let mut registry = Registry::new();
    registry.handler(
        "say_hello",
        handler_fn(|_ctx: StepContext| async {
            // Logged from inside the handler, as a step or a provider client would.
            tracing::info!(greeting = "shalom", "the handler is working");
            StepOutcome::success(json!({}))
        }),
    );
    let definitions = definitions(&registry, &[("logging.toml", LOGGING)]);
    let mut new = NewRun::new("logging", json!({}));
    new.marketplace_id = Some(marketplace.id);
    new.subject_id = Some(vendor.id);
    let run_id = engine::enqueue(&mut conn, new, &definitions).await.unwrap();
    drop(conn);

    // The binary's JSON format, into a buffer, for this test's thread only.
    let buffer = Buffer::default();
    let subscriber = {
        let buffer = buffer.clone();
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || buffer.clone())
            .finish()
    };
    let guard = tracing::subscriber::set_default(subscriber);
    let worker = worker(&pool, &registry, &definitions, "logs-worker");
    for _ in 0..10 {
        if worker.run_once().await.unwrap().is_empty() {
            break;
        }
    }
    drop(guard);
    assert_eq!(run(&pool, run_id).await.status, "succeeded");

    let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = output
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let from_handler = lines
        .iter()
        .find(|line| line["message"] == "the handler is working")
        .unwrap_or_else(|| panic!("the handler's line is missing from:\n{output}"));
    assert_eq!(from_handler["greeting"], "shalom");
    let in_step: Vec<&Value> = lines
        .iter()
        .filter(|line| !line["span"].is_null())
        .collect();
    assert!(
        in_step.len() >= 2,
        "the engine logs within the step too:\n{output}"
    );
    assert!(in_step.contains(&from_handler));
    for line in in_step {
        let span = &line["span"];
        assert_eq!(span["name"], "step", "{line}");
        assert_eq!(span["run.id"], run_id.0.to_string(), "{line}");
        assert_eq!(span["vendor.id"], vendor.id.to_string(), "{line}");
        assert_eq!(span["workflow"], "logging", "{line}");
        assert_eq!(span["step"], "say_hello", "{line}");
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_retention_job_that_deleted_rows_says_so_in_one_line(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let marketplace = store::marketplaces::insert(&mut conn, "Retention logs market")
        .await
        .unwrap();
    drop(conn);
    sqlx::query(
        "INSERT INTO vendorflow.idempotency_keys
             (marketplace_id, idempotency_key, request_method, request_path, request_hash, created_at)
         SELECT $1, 'key-' || n, 'POST', '/v1/onboardings', decode('00', 'hex'),
                now() - interval '2 days'
         FROM generate_series(1, 5) AS n",
    )
    .bind(marketplace.id)
    .execute(&pool)
    .await
    .unwrap();

    let buffer = Buffer::default();
    let subscriber = {
        let buffer = buffer.clone();
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(move || buffer.clone())
            .finish()
    };
    let guard = tracing::subscriber::set_default(subscriber);
    let scheduler = engine::Scheduler::new(
        pool.clone(),
        engine::SchedulerConfig {
            batch_size: 2,
            ..engine::SchedulerConfig::default()
        },
    );
    scheduler.retention_once().await.unwrap();
    drop(guard);

    let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = output
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // One line for the job that deleted rows (three batches), none for the jobs that did not.
    let retention: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == "retention deleted old rows")
        .collect();
    assert_eq!(retention.len(), 1, "{output}");
    assert_eq!(retention[0]["job"], "idempotency_keys", "{output}");
    assert_eq!(retention[0]["deleted"], 5, "{output}");
    assert_eq!(retention[0]["keep_for_s"], 86_400, "{output}");
}

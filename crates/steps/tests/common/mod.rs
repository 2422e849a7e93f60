//! The harness of the steps' workflow tests: a fresh database (`#[sqlx::test]`), the sandbox
//! over real HTTP, the real workflow files, and the engine's worker driven step by step.
//!
//! Backoffs are skipped by moving `next_run_at` in SQL, and waits' timers by moving
//! `next_poll_at`, so the real definitions (with their realistic durations) are what runs.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use domain::israeli_id::israeli_id_check_digit;
use domain::run::{Actor, RunId};
use engine::{Definitions, NewRun, Registry, Scheduler, SchedulerConfig, Worker, WorkerConfig};
use providers::sumit::{ClientConfig, Credentials, SumitClient};
use sandbox::{SandboxConfig, SandboxHandle, TerminalApproval};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use store::runs::RunRow;
use store::secrets::{Keyring, MasterKey, SecretRef};
use uuid::Uuid;

/// A valid corporate number (a 51… private company) numbered `n`.
pub fn corporate_number(n: u32) -> String {
    let first = format!("51{n:06}");
    format!("{first}{}", israeli_id_check_digit(&first).unwrap())
}

/// The bank account the tests' clearing vendors have (valid under bank 12's rule).
pub const BANK: (u16, u16, &str) = (12, 571, "041116");

pub struct Harness {
    pub pool: PgPool,
    pub sandbox: SandboxHandle,
    pub config: Arc<steps::StepsConfig>,
    pub keyring: Arc<Keyring>,
    pub definitions: Arc<Definitions>,
    pub worker: Worker,
    pub marketplace_id: Uuid,
}

/// How a test's world is set up.
pub struct Setup {
    pub sandbox: SandboxConfig,
    pub sandbox_extensions: bool,
    pub request_timeout: Duration,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            sandbox: SandboxConfig {
                terminal_approval: TerminalApproval::Manual,
                ..SandboxConfig::default()
            },
            sandbox_extensions: true,
            request_timeout: Duration::from_secs(5),
        }
    }
}

fn workflow_file(name: &str) -> (String, String) {
    let path = format!("{}/../../workflows/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    (format!("workflows/{name}"), text)
}

/// The three workflow files this crate serves, loaded against `registry`.
pub fn definitions(registry: &Registry) -> Definitions {
    let files = [
        workflow_file("vendor_onboarding.toml"),
        workflow_file("vendor_charge.toml"),
        workflow_file("vendor_document.toml"),
    ];
    Definitions::from_sources(
        files.iter().map(|(n, t)| (n.as_str(), t.as_str())),
        registry,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

impl Harness {
    pub async fn start(pool: PgPool, setup: Setup) -> Harness {
        let sandbox = sandbox::spawn(setup.sandbox).await.unwrap();
        let provider = SumitClient::new(
            &sandbox.base_url,
            ClientConfig {
                request_timeout: setup.request_timeout,
                connect_timeout: Duration::from_secs(2),
                sandbox_extensions: setup.sandbox_extensions,
                ..ClientConfig::default()
            },
        )
        .unwrap();
        let keyring = Arc::new(Keyring::single(MasterKey::generate()));
        let config = Arc::new(steps::StepsConfig {
            provider,
            marketplace_credentials: Credentials::new(
                sandbox.marketplace_company_id(),
                sandbox.marketplace_api_key(),
            ),
            keyring: keyring.clone(),
            sandbox_extensions: setup.sandbox_extensions,
        });
        let mut registry = Registry::new();
        steps::register(&mut registry, config.clone());
        let definitions = Arc::new(definitions(&registry));
        let worker = Worker::new(
            pool.clone(),
            Arc::new(registry),
            definitions.clone(),
            WorkerConfig {
                worker_id: "steps-test".into(),
                ..WorkerConfig::default()
            },
        )
        .unwrap();
        let mut conn = pool.acquire().await.unwrap();
        let marketplace_id = store::marketplaces::insert(&mut conn, "Test market")
            .await
            .unwrap()
            .id;
        Harness {
            pool,
            sandbox,
            config,
            keyring,
            definitions,
            worker,
            marketplace_id,
        }
    }

    /// Stores a vendor as the API does (its row, its bank account encrypted) and enqueues its
    /// onboarding. Returns the vendor id and the run id.
    pub async fn enqueue_onboarding(&self, n: u32, mode: &str) -> (Uuid, RunId) {
        let mut vendor = json!({
            "external_id": format!("seller-{n}"),
            "legal_name": format!("Vendor {n} Ltd"),
            "corporate_number": corporate_number(n),
            "business_type": "company",
            "email": format!("vendor{n}@example.co.il"),
            "phone": "052-123-4567",
            "mode": mode,
        });
        if mode == "clearing" {
            vendor["bank_account"] = json!({"bank": BANK.0, "branch": BANK.1, "account": BANK.2});
        }
        let application =
            domain::vendor::VendorApplication::from_request_body(&json!({ "vendor": vendor }))
                .unwrap();
        let mut tx = self.pool.begin().await.unwrap();
        let bank = application.mode.bank_account();
        let stored = store::vendors::insert(
            &mut tx,
            &store::vendors::NewVendor {
                marketplace_id: self.marketplace_id,
                external_id: application.external_id.as_str().to_owned(),
                legal_name: application.legal_name.as_str().to_owned(),
                corporate_number: application.corporate_number.as_str().to_owned(),
                business_type: application.business_type.as_str().to_owned(),
                email: application.email.as_str().to_owned(),
                phone_e164: application.phone.as_e164().to_owned(),
                mode: mode.to_owned(),
                bank_account_checked: bank.map(|b| b.checked()),
                bank_account_last4: bank.map(|b| b.last4()),
            },
        )
        .await
        .unwrap();
        if let Some(bank) = bank {
            let value = SecretString::from(format!(
                "{}:{}:{}",
                bank.bank(),
                bank.branch(),
                bank.expose_account_number()
            ));
            store::secrets::put(
                &mut tx,
                &self.keyring,
                &SecretRef::new("vendors", stored.id, "bank_account"),
                &value,
            )
            .await
            .unwrap();
        }
        let mut input = application.to_public_json();
        input["vendor_id"] = json!(stored.id);
        let run = self
            .enqueue(&mut tx, steps::ONBOARDING_WORKFLOW, stored.id, input)
            .await;
        tx.commit().await.unwrap();
        (stored.id, run)
    }

    pub async fn enqueue(
        &self,
        conn: &mut sqlx::PgConnection,
        workflow: &str,
        vendor_id: Uuid,
        input: Value,
    ) -> RunId {
        let mut new = NewRun::new(workflow, input);
        new.marketplace_id = Some(self.marketplace_id);
        new.subject_id = Some(vendor_id);
        new.actor = Actor::backend("test-token");
        engine::enqueue(conn, new, &self.definitions).await.unwrap()
    }

    pub async fn enqueue_charge(&self, vendor_id: Uuid, order_id: &str, token: &str) -> RunId {
        let input = json!({
            "vendor_id": vendor_id,
            "order_id": order_id,
            "amount_agorot": 5782,
            "currency": "ILS",
            "single_use_token": token,
            "customer": {"name": "Noa Levi", "email": "noa@example.com"},
            "description": format!("Order {order_id}"),
            "items": [{"name": "Vase", "quantity": 2, "unit_price_agorot": 2891}]
        });
        let mut conn = self.pool.acquire().await.unwrap();
        self.enqueue(&mut conn, steps::CHARGE_WORKFLOW, vendor_id, input)
            .await
    }

    pub async fn run(&self, run: RunId) -> RunRow {
        let mut conn = self.pool.acquire().await.unwrap();
        store::runs::get(&mut conn, run.0).await.unwrap().unwrap()
    }

    /// Executes steps until the run rests: waiting, paused, ended, or pending with a backoff in
    /// the future.
    pub async fn settle(&self, run: RunId) -> RunRow {
        for _ in 0..40 {
            self.worker.run_once().await.unwrap();
            let row = self.run(run).await;
            let backoff: bool = sqlx::query_scalar(
                "SELECT status = 'pending' AND next_run_at > now() FROM vendorflow.runs WHERE id = $1",
            )
            .bind(run.0)
            .fetch_one(&self.pool)
            .await
            .unwrap();
            if row.status != "pending" && row.status != "running" || backoff {
                return row;
            }
        }
        panic!("run {run} did not come to rest within 40 steps");
    }

    /// Ends a persisted backoff now (instead of sleeping through it).
    pub async fn skip_backoff(&self, run: RunId) {
        let moved = sqlx::query(
            "UPDATE vendorflow.runs SET next_run_at = now() WHERE id = $1 AND status = 'pending'",
        )
        .bind(run.0)
        .execute(&self.pool)
        .await
        .unwrap();
        assert_eq!(moved.rows_affected(), 1, "run {run} is not in a backoff");
    }

    /// Makes a waiting run's poll due now and lets the scheduler wake it.
    pub async fn poll_now(&self, run: RunId) {
        sqlx::query(
            "UPDATE vendorflow.runs SET next_poll_at = now(), next_run_at = now()
             WHERE id = $1 AND status = 'waiting'",
        )
        .bind(run.0)
        .execute(&self.pool)
        .await
        .unwrap();
        let scheduler = Scheduler::new(
            self.pool.clone(),
            SchedulerConfig {
                retention: None,
                ..SchedulerConfig::default()
            },
        );
        scheduler.tick_once().await.unwrap();
    }

    pub async fn signal(&self, run: RunId, name: &str) -> engine::ops::SignalOutcome {
        let mut conn = self.pool.acquire().await.unwrap();
        engine::ops::signal(
            &mut conn,
            run,
            name,
            json!({"approved_by": "upay-desk"}),
            &Actor::operator("ops@example.com"),
            "Upay approved the terminal",
        )
        .await
        .unwrap()
    }

    pub async fn resume(&self, run: RunId) {
        let mut conn = self.pool.acquire().await.unwrap();
        engine::ops::resume(
            &mut conn,
            run,
            &Actor::operator("ops@example.com"),
            "keys entered",
        )
        .await
        .unwrap();
    }

    /// Onboards a vendor to `ready` (a clearing vendor's terminal approved by signal).
    pub async fn ready_vendor(&self, n: u32, mode: &str) -> Uuid {
        let (vendor_id, run) = self.enqueue_onboarding(n, mode).await;
        let mut row = self.settle(run).await;
        if row.status == "waiting" {
            self.approve_terminal(vendor_id, run).await;
            row = self.settle(run).await;
        }
        assert_eq!(row.status, "succeeded", "{:?}", row.status_reason);
        vendor_id
    }

    /// Upay approves the vendor's terminal (in the sandbox), and someone tells the run.
    pub async fn approve_terminal(&self, vendor_id: Uuid, run: RunId) {
        let company_id = self.company_id(vendor_id).await;
        self.sandbox.approve_terminal(company_id).unwrap();
        self.signal(run, steps::SIGNAL_TERMINAL_APPROVED).await;
    }

    pub async fn company_id(&self, vendor_id: Uuid) -> i64 {
        let mut conn = self.pool.acquire().await.unwrap();
        store::provider_records::account(&mut conn, vendor_id)
            .await
            .unwrap()
            .and_then(|a| a.company_id)
            .expect("the vendor has an organization")
    }

    /// The event types the outbox holds for a run, in order.
    pub async fn events(&self, run: RunId) -> Vec<(String, Value)> {
        sqlx::query_as(
            "SELECT event_type, payload FROM vendorflow.outbox WHERE run_id = $1 ORDER BY id",
        )
        .bind(run.0)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// The kinds and data of a run's history, in order.
    pub async fn history(&self, run: RunId) -> Vec<(String, Option<Value>)> {
        sqlx::query_as(
            "SELECT kind, data FROM vendorflow.run_history WHERE run_id = $1 ORDER BY id",
        )
        .bind(run.0)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// Everything the engine and the steps stored in clear text, as one string: runs (input,
    /// context, errors, reasons), history, attempts, signals, outbox, and the steps' records.
    pub async fn clear_text(&self) -> String {
        let mut all = String::new();
        for table in [
            "runs",
            "run_history",
            "attempts",
            "signals",
            "outbox",
            "vendor_provider_accounts",
            "vendor_payments",
            "vendor_documents",
            "vendors",
        ] {
            let text: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT string_agg(t::text, ' ') FROM vendorflow.{table} t"
            )))
            .fetch_one(&self.pool)
            .await
            .unwrap();
            all.push_str(&text.unwrap_or_default());
        }
        all
    }
}

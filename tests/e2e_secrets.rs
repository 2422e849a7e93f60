//! Canary values never leak: a vendor's provider API key, its bank account number, the
//! marketplace's provider key, the master key and a bearer token are planted, a vendor is onboarded
//! to ready, and then the server's debug logs, every table but the encrypted `secrets` table, every
//! API answer and every webhook body are searched for them.

mod common;

use std::time::Duration;

use common::{Harness, Poll, corporate_number};
use sandbox::FaultPlan;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

/// A bank account number at a bank with no known check rule (54, Jerusalem), so any digits pass.
const BANK_ACCOUNT_CANARY: &str = "736251948";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_logs_history_tables_api_answers_or_webhooks() {
    let system = Harness::start(FaultPlan::none(), 77).await;

    let corporate = corporate_number(4242);
    let onboarded = system
        .onboard_to_ready(
            "canary-1",
            json!({
                "external_id": "canary-vendor",
                "legal_name": "Canary Ltd",
                "corporate_number": corporate,
                "business_type": "company",
                "email": "canary@example.co.il",
                "phone": "+972-3-555-1234",
                "mode": "clearing",
                "bank_account": {"bank": 54, "branch": 101, "account": BANK_ACCOUNT_CANARY}
            }),
        )
        .await;
    let (run_id, vendor_id, mut answers) =
        (onboarded.run_id, onboarded.vendor_id, onboarded.answers);
    answers.push(
        system
            .get(&format!("/v1/vendors/{vendor_id}"))
            .await
            .to_string(),
    );
    answers.push(system.get("/v1/runs").await.to_string());

    // The canaries.
    let ledger = system.sandbox.ledger();
    let company = ledger.companies_with_corporate_number(&corporate)[0].company_id;
    let vendor_keys = system.sandbox.company_keys(company).unwrap();
    let canaries = [
        ("the vendor's provider API key", vendor_keys.api_key.clone()),
        (
            "the vendor's provider public key",
            vendor_keys.api_public_key.clone(),
        ),
        ("the bank account number", BANK_ACCOUNT_CANARY.to_owned()),
        (
            "the marketplace's provider key",
            system.sandbox.marketplace_api_key(),
        ),
        ("the bearer token", system.token.expose_secret().to_owned()),
    ];

    // Everything a person or a system could read.
    let mut places: Vec<(String, String)> = Vec::new();
    let logs = std::fs::read_to_string(&system.log_path).unwrap();
    assert!(
        logs.contains(&run_id),
        "the logs are searched only if they say something"
    );
    places.push(("the server's logs".to_owned(), logs));
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'vendorflow' AND table_name <> 'secrets' ORDER BY 1",
    )
    .fetch_all(&system.db.pool)
    .await
    .unwrap();
    assert!(tables.iter().any(|t| t == "run_history"));
    for table in tables {
        let rows: Vec<Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT to_jsonb(t) FROM vendorflow.{table} t"
        )))
        .fetch_all(&system.db.pool)
        .await
        .unwrap();
        places.push((format!("table {table}"), Value::Array(rows).to_string()));
    }
    places.push(("API answers".to_owned(), answers.join("\n")));
    let mut poll = Poll::every(Duration::from_millis(50), Duration::from_secs(60));
    let webhooks = loop {
        let bodies = system.received.lock().unwrap().bodies.clone();
        if bodies.iter().any(|body| body.contains("vendor.ready")) {
            break bodies;
        }
        poll.tick("a vendor.ready webhook arrives").await;
    };
    places.push(("webhook bodies".to_owned(), webhooks.join("\n")));

    for (what, canary) in &canaries {
        assert!(canary.len() >= 9, "{what} is too short to be a canary");
        for (place, text) in &places {
            assert!(
                !text.contains(canary.as_str()),
                "{what} leaked into {place}"
            );
        }
    }

    // The secrets are there, encrypted, and the vendor's keys decrypt.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM vendorflow.secrets")
        .fetch_one(&system.db.pool)
        .await
        .unwrap();
    assert!(
        stored >= 3,
        "bank account and both provider keys are stored"
    );
    let reference =
        store::secrets::SecretRef::new("vendors", vendor_id.parse().unwrap(), "provider_api_key");
    let mut conn = system.db.pool.acquire().await.unwrap();
    let key = store::secrets::get(&mut conn, &system.keyring, &reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(key.expose_secret(), vendor_keys.api_key);
}

//! The webhook catalogue holds the code to account: real workflows run end to end against the
//! sandbox (onboardings of both modes, an approved, a declined and a failing charge, a document,
//! an operator's pause and cancel, terminal-approval reminders), and every event the code wrote to
//! the outbox and every body delivered to a receiver must be documented in `/openapi.json`'s
//! `webhooks` section and valid against its schema (JSON Schema, draft 2020-12 as OpenAPI 3.1
//! uses). The names the workflow definitions give their events must be in the catalogue too.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Harness, Poll, TempDir, corporate_number, shorten};
use sandbox::FaultPlan;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

/// The fast workflows of the other end-to-end tests, with terminal-approval reminders every
/// second instead of every two days.
fn workflows_with_prompt_reminders() -> TempDir {
    let dir = common::fast_workflows();
    for entry in std::fs::read_dir(&dir.path).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, shorten(&text, "reminder_every", "1s")).unwrap();
    }
    dir
}

/// The event names the workflow definitions give (`[events]` and `reminder_event`).
fn events_named_by_workflows() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let doc: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if let Some(events) = doc.get("events").and_then(|e| e.as_table()) {
            for value in events.values() {
                names.insert(value.as_str().unwrap().to_owned());
            }
        }
        for step in doc
            .get("steps")
            .and_then(|s| s.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(event) = step.get("reminder_event").and_then(|e| e.as_str()) {
                names.insert(event.to_owned());
            }
        }
    }
    names
}

fn vendor(n: usize, mode: &str) -> Value {
    let mut vendor = json!({
        "external_id": format!("catalogue-{n}"),
        "legal_name": format!("Catalogue Vendor {n} Ltd"),
        "corporate_number": corporate_number(9000 + n),
        "business_type": "company",
        "email": format!("vendor{n}@example.co.il"),
        "phone": "052-123-4567",
        "mode": mode,
    });
    if mode == "clearing" {
        vendor["bank_account"] = json!({"bank": 12, "branch": 571, "account": "041116"});
    }
    vendor
}

fn charge(order: &str, token: &str) -> Value {
    json!({
        "order_id": order,
        "amount_agorot": 5782,
        "single_use_token": token,
        "customer": {"name": "Noa Levi", "email": "noa@example.com"},
        "items": [{"name": "Vase", "quantity": 2, "unit_price_agorot": 2891}]
    })
}

/// Polls run `id` until its status is one of `statuses`; returns it.
async fn until_status(system: &Harness, id: &str, statuses: &[&str]) -> Value {
    let mut poll = Poll::every(Duration::from_millis(50), Duration::from_secs(60));
    loop {
        let run = system.get(&format!("/v1/runs/{id}")).await;
        if statuses.iter().any(|s| run["status"] == *s) {
            return run;
        }
        poll.tick(&format!("run {id} becomes one of {statuses:?}"))
            .await;
    }
}

async fn accepted(system: &Harness, path: &str, key: &str, body: &Value) -> String {
    let (status, answer) = system.post(path, Some(key), body).await;
    assert_eq!(status, 202, "{path}: {answer}");
    answer["run_id"].as_str().unwrap().to_owned()
}

async fn outbox(system: &Harness) -> Vec<(String, Value)> {
    sqlx::query_as("SELECT event_type, payload FROM vendorflow.outbox ORDER BY id")
        .fetch_all(&system.db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_the_code_writes_is_documented_and_matches_its_schema() {
    let system =
        Harness::start_with(FaultPlan::none(), 11, workflows_with_prompt_reminders()).await;
    let document: Value = system
        .http
        .get(format!("{}/openapi.json", system.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "the webhooks section is OpenAPI 3.1"
    );
    let catalogue = document["webhooks"]
        .as_object()
        .expect("a webhooks section");
    let body_schema = |name: &str| -> Option<Value> {
        catalogue.get(name).map(|item| {
            item["post"]["requestBody"]["content"]["application/json"]["schema"].clone()
        })
    };
    for name in events_named_by_workflows() {
        assert!(
            catalogue.contains_key(&name),
            "the workflows name `{name}`, which the catalogue does not document"
        );
    }
    for item in catalogue.values() {
        let headers: Vec<&str> = item["post"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            headers,
            ["webhook-id", "webhook-timestamp", "webhook-signature"]
        );
    }

    // An operator token, for the pause and the cancel.
    let mut conn = system.db.pool.acquire().await.unwrap();
    let marketplace: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM vendorflow.marketplaces LIMIT 1")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    let operator = store::tokens::create(
        &mut conn,
        marketplace,
        store::tokens::Role::Operator,
        "catalogue test",
    )
    .await
    .unwrap()
    .token;
    drop(conn);
    let admin = |path: String, body: Value| {
        let request = system
            .http
            .post(format!("{}{path}", system.base))
            .bearer_auth(operator.expose_secret())
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
        }
    };

    // A clearing vendor made ready after at least one reminder, and a documents-only vendor.
    let (status, answer) = system
        .post(
            "/v1/onboardings",
            Some("onboard-1"),
            &json!({"vendor": vendor(1, "clearing")}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let clearing_run = answer["run_id"].as_str().unwrap().to_owned();
    let clearing = answer["vendor_id"].as_str().unwrap().to_owned();
    until_status(&system, &clearing_run, &["waiting"]).await;
    let mut poll = Poll::every(Duration::from_millis(50), Duration::from_secs(60));
    while !outbox(&system)
        .await
        .iter()
        .any(|(t, _)| t == "vendor.terminal_approval_reminder")
    {
        poll.tick("a terminal-approval reminder is written").await;
    }
    // A charge for the clearing vendor while it onboards waits for it: cancelled by an operator.
    let waiting_charge = accepted(
        &system,
        &format!("/v1/vendors/{clearing}/charges"),
        "order-cancelled",
        &charge("order-cancelled", "tok_approve_c"),
    )
    .await;
    until_status(&system, &waiting_charge, &["waiting"]).await;
    admin(
        format!("/v1/admin/runs/{waiting_charge}/cancel"),
        json!({"reason": "the customer withdrew"}),
    )
    .await;
    // The acquirer approves the terminal; the marketplace tells vendorflow.
    let company = system
        .sandbox
        .ledger()
        .companies_with_corporate_number(&corporate_number(9001))[0]
        .company_id;
    system.sandbox.approve_terminal(company).unwrap();
    let (status, body) = system
        .post(
            &format!("/v1/runs/{clearing_run}/signals/terminal_approved"),
            None,
            &json!({"reason": "approved"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    until_status(&system, &clearing_run, &["succeeded"]).await;
    let documents_only = system
        .onboard_to_ready("onboard-2", vendor(2, "documents_only"))
        .await
        .vendor_id;

    // An onboarding paused by an operator while it waits, then cancelled.
    let (_, answer) = system
        .post(
            "/v1/onboardings",
            Some("onboard-3"),
            &json!({"vendor": vendor(3, "clearing")}),
        )
        .await;
    let paused_run = answer["run_id"].as_str().unwrap().to_owned();
    until_status(&system, &paused_run, &["waiting"]).await;
    admin(
        format!("/v1/admin/runs/{paused_run}/pause"),
        json!({"reason": "documents missing"}),
    )
    .await;
    until_status(&system, &paused_run, &["paused"]).await;
    admin(
        format!("/v1/admin/runs/{paused_run}/cancel"),
        json!({"reason": "vendor withdrew"}),
    )
    .await;

    // Charges: approved, declined, a technical error (the run pauses for an operator), an
    // unknown token refused by the provider (the run fails).
    let mut runs = Vec::new();
    for (order, token) in [
        ("order-ok", "tok_approve_1"),
        ("order-declined", "tok_decline_004"),
        ("order-technical", "tok_technical_1"),
        ("order-refused", "tok_unknown_1"),
    ] {
        runs.push(
            accepted(
                &system,
                &format!("/v1/vendors/{clearing}/charges"),
                order,
                &charge(order, token),
            )
            .await,
        );
    }
    // A document of the documents-only vendor.
    runs.push(
        accepted(
            &system,
            &format!("/v1/vendors/{documents_only}/documents"),
            "invoice-1",
            &json!({
                "reference": "invoice-1", "document_type": "invoice_and_receipt",
                "customer": {"name": "Noa Levi"},
                "items": [{"name": "Workshop", "quantity": 2, "unit_price_agorot": 15000}],
                "payments": [{"method": "bank_transfer", "bank": 12, "branch": 571,
                              "reference": "TRX-9", "amount_agorot": 30000}],
                "vat_included": true
            }),
        )
        .await,
    );
    let mut ended = Vec::new();
    for run in &runs {
        ended.push(until_status(&system, run, &["succeeded", "failed", "paused"]).await);
    }
    let statuses: Vec<(&str, &str)> = ended
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap(),
                r["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("succeeded", "completed"),
            ("succeeded", "declined"),
            ("paused", ""),
            ("failed", ""),
            ("succeeded", "completed")
        ],
        "{:?}",
        ended.iter().map(|r| &r["last_error"]).collect::<Vec<_>>()
    );

    let expected: BTreeSet<&str> = [
        "vendor.organization_created",
        "vendor.terminal_requested",
        "vendor.terminal_approval_reminder",
        "vendor.ready",
        "vendor.onboarding_paused",
        "vendor.onboarding_cancelled",
        "charge.cancelled",
        "charge.succeeded",
        "charge.declined",
        "charge.paused",
        "charge.failed",
        "document.issued",
    ]
    .into();

    // Every outbox row: documented, and its payload valid as the delivered body's `data`.
    let written = outbox(&system).await;
    let mut seen = BTreeSet::new();
    for (event_type, payload) in &written {
        let schema = body_schema(event_type).unwrap_or_else(|| {
            panic!("the code wrote `{event_type}`, which the catalogue does not document")
        });
        let validator = jsonschema::draft202012::new(&schema["properties"]["data"])
            .unwrap_or_else(|e| panic!("{event_type}: the schema does not compile: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(payload)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "`{event_type}` payload {payload} does not match the catalogue: {errors:?}"
        );
        seen.insert(event_type.clone());
    }
    for name in &expected {
        assert!(seen.contains(*name), "no `{name}` was written: {seen:?}");
    }

    // Every delivered body (as signed and sent) is valid against the whole body schema.
    let mut poll = Poll::every(Duration::from_millis(50), Duration::from_secs(60));
    loop {
        let delivered = system.received.lock().unwrap().bodies.len();
        if delivered >= written.len() {
            break;
        }
        poll.tick("every written event is delivered").await;
    }
    let received = system.received.lock().unwrap();
    assert_eq!(received.rejected, 0);
    let mut delivered_types = BTreeSet::new();
    for body in &received.bodies {
        let body: Value = serde_json::from_str(body).unwrap();
        let event_type = body["type"].as_str().unwrap();
        let schema = body_schema(event_type).expect("documented");
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "delivered {body}: {errors:?}");
        delivered_types.insert(event_type.to_owned());
    }
    assert_eq!(delivered_types, seen);
}

#[test]
fn a_payload_with_an_undocumented_field_or_a_wrong_type_does_not_match() {
    let schema = serde_json::to_value((domain::webhook_events::find("vendor.ready")
        .unwrap()
        .payload)())
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let good = json!({"vendor_id": uuid::Uuid::nil(), "state": "ready", "external_id": "s-1",
                      "mode": "clearing", "provider_company_id": 7});
    assert!(validator.is_valid(&good));
    let mut extra = good.clone();
    extra["colour"] = json!("blue");
    assert!(!validator.is_valid(&extra));
    let mut wrong = good.clone();
    wrong["mode"] = json!("both");
    assert!(!validator.is_valid(&wrong));
    let mut missing = good;
    missing.as_object_mut().unwrap().remove("vendor_id");
    assert!(!validator.is_valid(&missing));
}

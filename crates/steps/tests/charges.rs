//! `vendor_charge` and `vendor_document` driven end to end against the sandbox: approvals,
//! declines, lost answers, and charges that wait for their vendor.

mod common;

use common::{Harness, Setup};
use sandbox::{Fault, FaultPlan, FaultRule, SandboxConfig};
use serde_json::json;

fn charge_faults(rule: FaultRule) -> SandboxConfig {
    SandboxConfig {
        faults: FaultPlan::none().on("/billing/payments/charge/", rule),
        ..Setup::default().sandbox
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_approved_charge_records_its_payment_and_document_and_tells_the_marketplace(
    pool: sqlx::PgPool,
) {
    let h = Harness::start(pool, Setup::default()).await;
    let vendor_id = h.ready_vendor(10, "clearing").await;
    let run = h
        .enqueue_charge(vendor_id, "order-10", "tok_approve_10")
        .await;

    let row = h.settle(run).await;
    assert_eq!(row.status, "succeeded", "{:?}", row.status_reason);
    assert_eq!(row.outcome.as_deref(), Some("completed"));

    let ledger = h.sandbox.ledger();
    let payments = ledger.payments_with_unique_identifier("order-10");
    assert_eq!(payments.len(), 1);
    let payment = payments[0];
    assert!(payment.valid);
    assert_eq!(payment.amount_agorot, 5782);
    assert_eq!(payment.company_id, h.company_id(vendor_id).await);
    let document_id = payment.document_id.expect("the charge issued a document");

    let mut conn = h.pool.acquire().await.unwrap();
    let recorded = store::provider_records::payments_for_order(&mut conn, vendor_id, "order-10")
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert!(recorded[0].approved);
    assert_eq!(recorded[0].provider_payment_id, payment.payment_id);
    assert_eq!(recorded[0].provider_document_id, Some(document_id));
    assert_eq!(recorded[0].run_id, Some(run.0));
    let documents =
        store::provider_records::documents_for_reference(&mut conn, vendor_id, "order-10")
            .await
            .unwrap();
    assert_eq!(documents.len(), 1);
    assert_eq!(documents[0].source, "charge");
    assert_eq!(documents[0].provider_document_id, document_id);

    let events = h.events(run).await;
    assert_eq!(events.len(), 1);
    let (kind, payload) = &events[0];
    assert_eq!(kind, "charge.succeeded");
    assert_eq!(payload["order_id"], "order-10");
    assert_eq!(payload["payment_id"], json!(payment.payment_id));
    assert_eq!(payload["document_id"], json!(document_id));
    assert_eq!(payload["amount_agorot"], 5782);
    assert_eq!(payload["run_id"], json!(run.0));
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_declined_charge_ends_the_run_as_declined_not_failed(pool: sqlx::PgPool) {
    let h = Harness::start(pool, Setup::default()).await;
    let vendor_id = h.ready_vendor(11, "clearing").await;
    let run = h
        .enqueue_charge(vendor_id, "order-11", "tok_decline_11")
        .await;

    let row = h.settle(run).await;
    assert_eq!(row.status, "succeeded", "{:?}", row.status_reason);
    assert_eq!(row.outcome.as_deref(), Some("declined"));

    let events = h.events(run).await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, vec!["charge.declined"]);
    assert_eq!(events[0].1["decline_code"], "006");

    let mut conn = h.pool.acquire().await.unwrap();
    let recorded = store::provider_records::payments_for_order(&mut conn, vendor_id, "order-11")
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert!(!recorded[0].approved);
    assert_eq!(recorded[0].decline_code.as_deref(), Some("006"));
    let ledger = h.sandbox.ledger();
    assert_eq!(ledger.payments_with_unique_identifier("order-11").len(), 1);
    assert_eq!(
        ledger.calls_to("/billing/payments/charge/").len(),
        1,
        "a decline is not retried"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_lost_charge_answer_is_reconciled_to_exactly_one_charge_per_order(pool: sqlx::PgPool) {
    let h = Harness::start(
        pool,
        Setup {
            sandbox: charge_faults(FaultRule::next(1, Fault::CommitThenDrop)),
            ..Setup::default()
        },
    )
    .await;
    let vendor_id = h.ready_vendor(12, "clearing").await;
    let run = h
        .enqueue_charge(vendor_id, "order-12", "tok_approve_12")
        .await;

    let row = h.settle(run).await;
    assert_eq!(row.status, "pending");
    assert_eq!(row.step_name, "charge");
    assert!(row.needs_reconcile);
    h.skip_backoff(run).await;

    let row = h.settle(run).await;
    assert_eq!(row.status, "succeeded", "{:?}", row.status_reason);
    assert_eq!(row.context["charge"]["found_by"], "lookup");

    let ledger = h.sandbox.ledger();
    assert_eq!(ledger.payments_with_unique_identifier("order-12").len(), 1);
    assert_eq!(ledger.calls_to("/billing/payments/charge/").len(), 1);
    let history = h.history(run).await;
    assert!(
        history
            .iter()
            .any(|(kind, data)| kind == "reconciled"
                && data.as_ref().unwrap()["result"] == "applied")
    );
    let kinds: Vec<String> = h.events(run).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, vec!["charge.succeeded"]);
    let mut conn = h.pool.acquire().await.unwrap();
    assert_eq!(
        store::provider_records::payments_for_order(&mut conn, vendor_id, "order-12")
            .await
            .unwrap()
            .len(),
        1
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_lost_charge_answer_pauses_when_the_payment_list_cannot_tell(pool: sqlx::PgPool) {
    let h = Harness::start(
        pool,
        Setup {
            sandbox: SandboxConfig {
                payments_expose_unique_identifier: false,
                ..charge_faults(FaultRule::next(1, Fault::CommitThenDrop))
            },
            ..Setup::default()
        },
    )
    .await;
    let vendor_id = h.ready_vendor(13, "clearing").await;
    let run = h
        .enqueue_charge(vendor_id, "order-13", "tok_approve_13")
        .await;

    assert_eq!(h.settle(run).await.status, "pending");
    h.skip_backoff(run).await;
    let row = h.settle(run).await;
    assert_eq!(row.status, "paused");
    let reason = row.status_reason.unwrap();
    assert!(reason.contains("cannot tell"), "{reason}");

    // A plain resume looks again and pauses again: it never charges a second time.
    h.resume(run).await;
    let row = h.settle(run).await;
    assert_eq!(row.status, "paused");
    let ledger = h.sandbox.ledger();
    assert_eq!(ledger.calls_to("/billing/payments/charge/").len(), 1);
    assert_eq!(ledger.payments_with_unique_identifier("order-13").len(), 1);
    let kinds: Vec<String> = h.events(run).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, vec!["charge.paused", "charge.paused"]);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_charge_for_a_vendor_still_onboarding_waits_for_it_and_then_goes_through(
    pool: sqlx::PgPool,
) {
    let h = Harness::start(pool, Setup::default()).await;
    let (vendor_id, onboarding) = h.enqueue_onboarding(14, "clearing").await;
    assert_eq!(h.settle(onboarding).await.status, "waiting");

    let charge = h
        .enqueue_charge(vendor_id, "order-14", "tok_approve_14")
        .await;
    let row = h.settle(charge).await;
    assert_eq!(row.status, "waiting");
    assert_eq!(row.step_name, "await_vendor_ready");
    // Its poll finds the vendor still onboarding: it keeps waiting, charging nothing.
    h.poll_now(charge).await;
    assert_eq!(h.settle(charge).await.status, "waiting");
    assert!(h.sandbox.ledger().payments.is_empty());

    h.approve_terminal(vendor_id, onboarding).await;
    assert_eq!(h.settle(onboarding).await.status, "succeeded");

    // The onboarding's last step signalled the waiting charge, which is due again.
    let row = h.run(charge).await;
    assert_eq!(row.status, "pending");
    let row = h.settle(charge).await;
    assert_eq!(row.status, "succeeded", "{:?}", row.status_reason);
    assert_eq!(
        row.context["vendor_ready"]["onboarding_run_id"],
        json!(onboarding.0)
    );
    assert_eq!(
        h.sandbox
            .ledger()
            .payments_with_unique_identifier("order-14")
            .len(),
        1
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_second_charge_of_an_order_already_paid_fails_without_calling_the_provider(
    pool: sqlx::PgPool,
) {
    let h = Harness::start(pool, Setup::default()).await;
    let vendor_id = h.ready_vendor(15, "clearing").await;
    let first = h
        .enqueue_charge(vendor_id, "order-15", "tok_approve_15a")
        .await;
    assert_eq!(h.settle(first).await.status, "succeeded");

    let second = h
        .enqueue_charge(vendor_id, "order-15", "tok_approve_15b")
        .await;
    let row = h.settle(second).await;
    assert_eq!(row.status, "failed");
    assert!(
        row.status_reason.unwrap().contains("already charged"),
        "the reason names the first payment"
    );
    let ledger = h.sandbox.ledger();
    assert_eq!(ledger.calls_to("/billing/payments/charge/").len(), 1);
    let kinds: Vec<String> = h.events(second).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, vec!["charge.failed"]);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_charge_for_a_documents_only_vendor_fails_at_its_first_step(pool: sqlx::PgPool) {
    let h = Harness::start(pool, Setup::default()).await;
    let vendor_id = h.ready_vendor(16, "documents_only").await;
    let run = h
        .enqueue_charge(vendor_id, "order-16", "tok_approve_16")
        .await;
    let row = h.settle(run).await;
    assert_eq!(row.status, "failed");
    assert_eq!(row.step_name, "check_vendor");
    assert!(
        h.sandbox
            .ledger()
            .calls_to("/billing/payments/charge/")
            .is_empty()
    );
}

fn document_input(vendor_id: uuid::Uuid, reference: &str) -> serde_json::Value {
    json!({
        "vendor_id": vendor_id,
        "reference": reference,
        "document_type": "invoice_and_receipt",
        "customer": {"name": "Noa Levi", "email": "noa@example.com"},
        "items": [{"name": "Workshop", "quantity": 2, "unit_price_agorot": 15000}],
        "payments": [{"method": "bank_transfer", "bank": 12, "branch": 571, "reference": "TRX-9",
                      "amount_agorot": 30000}],
        "description": "Ceramics workshop"
    })
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_document_is_issued_in_the_vendors_name_once_per_reference(pool: sqlx::PgPool) {
    let h = Harness::start(pool, Setup::default()).await;
    let vendor_id = h.ready_vendor(17, "documents_only").await;
    let company_id = h.company_id(vendor_id).await;

    let mut conn = h.pool.acquire().await.unwrap();
    let run = h
        .enqueue(
            &mut conn,
            steps::DOCUMENT_WORKFLOW,
            vendor_id,
            document_input(vendor_id, "inv-17"),
        )
        .await;
    let row = h.settle(run).await;
    assert_eq!(row.status, "succeeded", "{:?}", row.status_reason);

    let ledger = h.sandbox.ledger();
    assert_eq!(ledger.documents.len(), 1);
    let document = &ledger.documents[0];
    assert_eq!(document.company_id, company_id);
    assert_eq!(document.document_type_name, "InvoiceAndReceipt");
    assert_eq!(document.total_agorot, 30000);
    assert_eq!(document.payments_agorot, 30000);

    let events = h.events(run).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "document.issued");
    assert_eq!(events[0].1["document_id"], json!(document.document_id));
    assert_eq!(events[0].1["reference"], "inv-17");

    // The same reference again: refused by our records, the provider is not called.
    let again = h
        .enqueue(
            &mut conn,
            steps::DOCUMENT_WORKFLOW,
            vendor_id,
            document_input(vendor_id, "inv-17"),
        )
        .await;
    let row = h.settle(again).await;
    assert_eq!(row.status, "failed");
    assert!(row.status_reason.unwrap().contains("already issued"));
    assert_eq!(h.sandbox.ledger().documents.len(), 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_lost_answer_of_documents_create_pauses_for_an_operator(pool: sqlx::PgPool) {
    let h = Harness::start(
        pool,
        Setup {
            sandbox: SandboxConfig {
                faults: FaultPlan::none().on(
                    "/accounting/documents/create/",
                    FaultRule::next(1, Fault::CommitThenDrop),
                ),
                ..Setup::default().sandbox
            },
            ..Setup::default()
        },
    )
    .await;
    let vendor_id = h.ready_vendor(18, "clearing").await;
    let mut conn = h.pool.acquire().await.unwrap();
    let run = h
        .enqueue(
            &mut conn,
            steps::DOCUMENT_WORKFLOW,
            vendor_id,
            document_input(vendor_id, "inv-18"),
        )
        .await;
    assert_eq!(h.settle(run).await.status, "pending");
    h.skip_backoff(run).await;
    let row = h.settle(run).await;
    assert_eq!(row.status, "paused");
    assert!(row.status_reason.unwrap().contains("second tax document"));
    assert_eq!(h.sandbox.ledger().documents.len(), 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_order_charged_again_after_a_decline_is_reconciled_to_its_own_payment(
    pool: sqlx::PgPool,
) {
    let h = Harness::start(pool, Setup::default()).await;
    let vendor_id = h.ready_vendor(19, "clearing").await;
    let declined = h
        .enqueue_charge(vendor_id, "order-19", "tok_decline_19")
        .await;
    assert_eq!(
        h.settle(declined).await.outcome.as_deref(),
        Some("declined")
    );

    // The customer tries another card for the same order, and that answer is lost.
    h.sandbox
        .set_faults(FaultPlan::none().on(
            "/billing/payments/charge/",
            FaultRule::next(1, Fault::CommitThenDrop),
        ))
        .unwrap();
    let retried = h
        .enqueue_charge(vendor_id, "order-19", "tok_approve_19")
        .await;
    assert_eq!(h.settle(retried).await.status, "pending");
    h.skip_backoff(retried).await;
    let row = h.settle(retried).await;
    assert_eq!(row.status, "succeeded", "{:?}", row.status_reason);
    assert_eq!(row.outcome.as_deref(), Some("completed"));

    let ledger = h.sandbox.ledger();
    let payments = ledger.payments_with_unique_identifier("order-19");
    assert_eq!(payments.len(), 2);
    let approved = payments.iter().find(|p| p.valid).unwrap();
    assert_eq!(
        row.context["charge"]["payment_id"],
        json!(approved.payment_id)
    );
    assert_eq!(ledger.calls_to("/billing/payments/charge/").len(), 2);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_failed_lookup_after_a_lost_charge_answer_is_retried_and_never_charges_again(
    pool: sqlx::PgPool,
) {
    let h = Harness::start(
        pool,
        Setup {
            sandbox: SandboxConfig {
                faults: FaultPlan::none()
                    .on(
                        "/billing/payments/charge/",
                        FaultRule::next(1, Fault::CommitThenDrop),
                    )
                    .on(
                        "/billing/payments/list/",
                        FaultRule::next(2, Fault::HttpError { status: 503 }),
                    ),
                ..Setup::default().sandbox
            },
            ..Setup::default()
        },
    )
    .await;
    let vendor_id = h.ready_vendor(20, "clearing").await;
    let run = h
        .enqueue_charge(vendor_id, "order-20", "tok_approve_20")
        .await;
    assert_eq!(h.settle(run).await.status, "pending");
    h.skip_backoff(run).await;

    // The reconcile's lookup fails (503), and so does the next attempt's own lookup: a retry,
    // not a second charge.
    let row = h.settle(run).await;
    assert_eq!(row.status, "pending");
    assert_eq!(row.last_error.unwrap()["code"], "charge_lookup_failed");
    assert_eq!(
        h.sandbox
            .ledger()
            .calls_to("/billing/payments/charge/")
            .len(),
        1
    );
    h.skip_backoff(run).await;

    let row = h.settle(run).await;
    assert_eq!(row.status, "succeeded", "{:?}", row.status_reason);
    let ledger = h.sandbox.ledger();
    assert_eq!(ledger.calls_to("/billing/payments/charge/").len(), 1);
    assert_eq!(ledger.payments_with_unique_identifier("order-20").len(), 1);
}

//! `vendor_onboarding` driven end to end: the real workflow file, the engine's worker, a fresh
//! database and the sandbox over HTTP.

mod common;

use std::time::Duration;

use common::{BANK, Harness, Setup, corporate_number};
use sandbox::{Fault, FaultPlan, FaultRule, SandboxConfig, TerminalApproval};
use secrecy::SecretString;
use serde_json::{Value, json};
use store::provider_records::{KeysState, TerminalState};

#[sqlx::test(migrations = "../../migrations")]
async fn a_clearing_vendor_is_onboarded_to_ready_when_its_terminal_approval_is_signalled(
    pool: sqlx::PgPool,
) {
    let h = Harness::start(pool, Setup::default()).await;
    let (vendor_id, run) = h.enqueue_onboarding(1, "clearing").await;

    let row = h.settle(run).await;
    assert_eq!(row.status, "waiting", "{:?}", row.status_reason);
    assert_eq!(row.step_name, "await_terminal_approval");

    let ledger = h.sandbox.ledger();
    let companies = ledger.companies_with_corporate_number(&corporate_number(1));
    assert_eq!(companies.len(), 1);
    let company = companies[0];
    assert_eq!(company.applications, vec!["CreditCard", "Accounting"]);
    let terminal = ledger
        .terminal(company.company_id)
        .expect("a terminal was requested");
    assert_eq!(terminal.bank_code, i64::from(BANK.0));
    assert_eq!(terminal.account_last3, "116");

    let mut conn = h.pool.acquire().await.unwrap();
    let account = store::provider_records::account(&mut conn, vendor_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.company_id, Some(company.company_id));
    assert_eq!(account.keys_state, KeysState::Active);
    assert_eq!(account.terminal_state, TerminalState::Requested);

    assert_eq!(
        h.signal(run, steps::SIGNAL_TERMINAL_APPROVED).await,
        engine::ops::SignalOutcome::Woken
    );
    let row = h.settle(run).await;
    assert_eq!(row.status, "succeeded");
    assert_eq!(row.outcome.as_deref(), Some("completed"));

    let vendor = store::provider_records::vendor(&mut conn, vendor_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(vendor.onboarding_state, "ready");
    assert_eq!(vendor.provider_company_id, Some(company.company_id));
    let account = store::provider_records::account(&mut conn, vendor_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.terminal_state, TerminalState::Approved);

    let events: Vec<(String, Value)> = h
        .events(run)
        .await
        .into_iter()
        .map(|(t, payload)| (t, payload["state"].clone()))
        .collect();
    // Each vendor event says the vendor's state, as the vendor resource names it.
    assert_eq!(
        events,
        vec![
            (
                "vendor.organization_created".to_owned(),
                json!("onboarding")
            ),
            (
                "vendor.terminal_requested".to_owned(),
                json!("awaiting_approval")
            ),
            ("vendor.ready".to_owned(), json!("ready"))
        ]
    );
    let (_, ready) = h.events(run).await.pop().unwrap();
    assert_eq!(ready["vendor_id"], json!(vendor_id));
    assert_eq!(ready["provider_company_id"], json!(company.company_id));

    // The keys and the bank account are stored encrypted and appear nowhere in clear text.
    let keys = h.sandbox.company_keys(company.company_id).unwrap();
    let clear = h.clear_text().await;
    assert!(!clear.contains(&keys.api_key));
    assert!(!clear.contains(&keys.api_public_key));
    assert!(!clear.contains(BANK.2));
    let stored = store::secrets::get(
        &mut conn,
        &h.keyring,
        &store::secrets::SecretRef::new("vendors", vendor_id, steps::API_KEY_SECRET),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&stored), keys.api_key);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_documents_only_vendor_is_onboarded_without_a_terminal(pool: sqlx::PgPool) {
    let h = Harness::start(pool, Setup::default()).await;
    let (vendor_id, run) = h.enqueue_onboarding(2, "documents_only").await;

    let row = h.settle(run).await;
    assert_eq!(row.status, "succeeded", "{:?}", row.status_reason);

    let ledger = h.sandbox.ledger();
    let company = ledger.companies_with_corporate_number(&corporate_number(2))[0].clone();
    assert_eq!(company.applications, vec!["Accounting"]);
    assert!(ledger.terminals.is_empty());
    assert!(
        ledger
            .calls_to("/billing/generalbilling/openupayterminal/")
            .is_empty()
    );

    let skipped: Vec<_> = h
        .history(run)
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "step_skipped")
        .collect();
    assert_eq!(skipped.len(), 2);

    let mut conn = h.pool.acquire().await.unwrap();
    let vendor = store::provider_records::vendor(&mut conn, vendor_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(vendor.onboarding_state, "ready");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_lost_answer_of_companies_create_is_reconciled_by_corporate_number_then_waits_for_the_keys(
    pool: sqlx::PgPool,
) {
    let setup = Setup {
        sandbox: SandboxConfig {
            terminal_approval: TerminalApproval::Immediate,
            faults: FaultPlan::none().on(
                "/website/companies/create/",
                FaultRule::next(1, Fault::CommitThenDrop),
            ),
            ..SandboxConfig::default()
        },
        ..Setup::default()
    };
    let h = Harness::start(pool, setup).await;
    let (vendor_id, run) = h.enqueue_onboarding(3, "clearing").await;

    // The organization was created and the answer lost: an unknown outcome, then a backoff.
    let row = h.settle(run).await;
    assert_eq!(row.status, "pending");
    assert!(row.needs_reconcile);
    h.skip_backoff(run).await;

    // The next attempt reconciles: the organization is found by corporate number and adopted;
    // its keys are lost, so the run pauses for an operator.
    let row = h.settle(run).await;
    assert_eq!(row.status, "paused");
    assert_eq!(row.step_name, "capture_api_keys");
    let reason = row.status_reason.unwrap();
    assert!(reason.contains("API keys are not known"), "{reason}");
    let ledger = h.sandbox.ledger();
    let companies = ledger.companies_with_corporate_number(&corporate_number(3));
    assert_eq!(companies.len(), 1, "exactly one organization");
    let company_id = companies[0].company_id;
    assert!(reason.contains(&company_id.to_string()), "{reason}");
    assert!(
        h.history(run)
            .await
            .iter()
            .any(|(kind, data)| kind == "reconciled"
                && data.as_ref().unwrap()["result"] == "applied")
    );
    let paused: Vec<_> = h
        .events(run)
        .await
        .into_iter()
        .filter(|(t, _)| t == "vendor.onboarding_paused")
        .collect();
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0].1["state"], "action_required", "{}", paused[0].1);

    // An operator enters the keys and resumes; the onboarding goes on to ready.
    let keys = h.sandbox.company_keys(company_id).unwrap();
    steps::supply_api_keys(
        &h.pool,
        &h.keyring,
        vendor_id,
        company_id,
        SecretString::from(keys.api_key.clone()),
        SecretString::from(keys.api_public_key.clone()),
    )
    .await
    .unwrap();
    h.resume(run).await;
    let row = h.settle(run).await;
    assert_eq!(row.status, "waiting", "{:?}", row.status_reason);

    // The sandbox approved the terminal at once; its poll (a sandbox-only extension) sees it.
    h.poll_now(run).await;
    let row = h.settle(run).await;
    assert_eq!(row.status, "succeeded", "{:?}", row.status_reason);
    assert_eq!(row.context["terminal"]["by"], "sandbox_poll");
    assert_eq!(
        h.sandbox
            .ledger()
            .companies_with_corporate_number(&corporate_number(3))
            .len(),
        1
    );
    assert!(!h.clear_text().await.contains(&keys.api_key));
}

#[sqlx::test(migrations = "../../migrations")]
async fn without_the_sandbox_lookup_a_refused_second_create_after_a_lost_answer_means_keys_lost(
    pool: sqlx::PgPool,
) {
    let setup = Setup {
        sandbox: SandboxConfig {
            terminal_approval: TerminalApproval::Manual,
            faults: FaultPlan::none().on(
                "/website/companies/create/",
                FaultRule::next(1, Fault::CommitThenDrop),
            ),
            ..SandboxConfig::default()
        },
        sandbox_extensions: false,
        ..Setup::default()
    };
    let h = Harness::start(pool, setup).await;
    let (vendor_id, run) = h.enqueue_onboarding(4, "documents_only").await;

    assert_eq!(h.settle(run).await.status, "pending");
    h.skip_backoff(run).await;
    let row = h.settle(run).await;
    assert_eq!(row.status, "paused");
    assert_eq!(row.step_name, "capture_api_keys");
    let reason = row.status_reason.unwrap();
    assert!(reason.contains("CompanyID is unknown"), "{reason}");
    let ledger = h.sandbox.ledger();
    assert_eq!(
        ledger
            .companies_with_corporate_number(&corporate_number(4))
            .len(),
        1
    );
    assert_eq!(ledger.calls_to("/website/companies/create/").len(), 2);

    let company_id = ledger.companies_with_corporate_number(&corporate_number(4))[0].company_id;
    let keys = h.sandbox.company_keys(company_id).unwrap();
    steps::supply_api_keys(
        &h.pool,
        &h.keyring,
        vendor_id,
        company_id,
        SecretString::from(keys.api_key),
        SecretString::from(keys.api_public_key),
    )
    .await
    .unwrap();
    h.resume(run).await;
    let row = h.settle(run).await;
    assert_eq!(row.status, "succeeded", "{:?}", row.status_reason);
}

#[sqlx::test(migrations = "../../migrations")]
async fn wrong_keys_from_an_operator_pause_the_run_again_until_the_right_ones_are_entered(
    pool: sqlx::PgPool,
) {
    let setup = Setup {
        sandbox: SandboxConfig {
            faults: FaultPlan::none().on(
                "/website/companies/create/",
                FaultRule::next(1, Fault::CommitThenDrop),
            ),
            ..Setup::default().sandbox
        },
        ..Setup::default()
    };
    let h = Harness::start(pool, setup).await;
    let (vendor_id, run) = h.enqueue_onboarding(5, "documents_only").await;
    assert_eq!(h.settle(run).await.status, "pending");
    h.skip_backoff(run).await;
    assert_eq!(h.settle(run).await.status, "paused");
    let company_id = h.company_id(vendor_id).await;
    let keys = h.sandbox.company_keys(company_id).unwrap();

    // Another organization's id is refused at once: the vendor's organization is known.
    let err = steps::supply_api_keys(
        &h.pool,
        &h.keyring,
        vendor_id,
        company_id + 1,
        SecretString::from(keys.api_key.clone()),
        SecretString::from(keys.api_public_key.clone()),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, steps::StepsError::CompanyMismatch { known, .. } if known == company_id),
        "{err}"
    );
    let empty = steps::supply_api_keys(
        &h.pool,
        &h.keyring,
        vendor_id,
        company_id,
        SecretString::from(String::new()),
        SecretString::from("p".to_owned()),
    )
    .await
    .unwrap_err();
    assert!(matches!(empty, steps::StepsError::InvalidKeys(_)));

    // A wrong key is stored, then refused by SUMIT: the run pauses again, saying so.
    steps::supply_api_keys(
        &h.pool,
        &h.keyring,
        vendor_id,
        company_id,
        SecretString::from("00000000-0000-0000-0000-000000000000".to_owned()),
        SecretString::from(keys.api_public_key.clone()),
    )
    .await
    .unwrap();
    h.resume(run).await;
    let row = h.settle(run).await;
    assert_eq!(row.status, "paused");
    let reason = row.status_reason.unwrap();
    assert!(reason.contains("refused the stored API keys"), "{reason}");

    steps::supply_api_keys(
        &h.pool,
        &h.keyring,
        vendor_id,
        company_id,
        SecretString::from(keys.api_key.clone()),
        SecretString::from(keys.api_public_key.clone()),
    )
    .await
    .unwrap();
    h.resume(run).await;
    assert_eq!(h.settle(run).await.status, "succeeded");
    let clear = h.clear_text().await;
    assert!(!clear.contains(&keys.api_key));
}

#[sqlx::test(migrations = "../../migrations")]
async fn provider_faults_are_retried_with_a_persisted_backoff(pool: sqlx::PgPool) {
    let setup = Setup {
        sandbox: SandboxConfig {
            terminal_approval: TerminalApproval::Manual,
            faults: FaultPlan::none()
                .on(
                    "/website/companies/create/",
                    FaultRule::next(1, Fault::HttpError { status: 503 }),
                )
                .on(
                    "/website/companies/create/",
                    FaultRule::next(
                        1,
                        Fault::RateLimited {
                            retry_after_secs: 7,
                        },
                    ),
                )
                .on(
                    "/website/companies/getdetails/",
                    FaultRule::next(
                        1,
                        Fault::Hang {
                            ms: 1500,
                            commit: false,
                        },
                    ),
                ),
            ..SandboxConfig::default()
        },
        request_timeout: Duration::from_millis(300),
        ..Setup::default()
    };
    let h = Harness::start(pool, setup).await;
    let (_vendor_id, run) = h.enqueue_onboarding(6, "clearing").await;

    // 503, then 429 with Retry-After, then a read that times out: each a persisted backoff.
    for expected_step in [
        "create_organization",
        "create_organization",
        "capture_api_keys",
    ] {
        let row = h.settle(run).await;
        assert_eq!(row.status, "pending", "{:?}", row.status_reason);
        assert_eq!(row.step_name, expected_step);
        assert!(row.next_run_at.is_some());
        assert!(!row.needs_reconcile, "retryable failures need no reconcile");
        h.skip_backoff(run).await;
    }
    let row = h.settle(run).await;
    assert_eq!(row.status, "waiting", "{:?}", row.status_reason);

    let delays: Vec<i64> = h
        .history(run)
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "backoff_scheduled")
        .map(|(_, data)| data.unwrap()["delay_ms"].as_i64().unwrap())
        .collect();
    assert_eq!(delays.len(), 3);
    assert_eq!(delays[1], 7000, "Retry-After is honoured as given");

    let attempts = {
        let mut conn = h.pool.acquire().await.unwrap();
        store::attempts::list_for_run(&mut conn, run.0)
            .await
            .unwrap()
    };
    let outcomes: Vec<(String, Option<String>)> = attempts
        .iter()
        .map(|a| (a.step_name.clone(), a.outcome.clone()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("create_organization".into(), Some("retryable".into())),
            ("create_organization".into(), Some("retryable".into())),
            ("create_organization".into(), Some("succeeded".into())),
            ("capture_api_keys".into(), Some("retryable".into())),
            ("capture_api_keys".into(), Some("succeeded".into())),
            ("open_terminal".into(), Some("succeeded".into())),
        ]
    );
    assert_eq!(
        h.sandbox
            .ledger()
            .companies_with_corporate_number(&corporate_number(6))
            .len(),
        1
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_lost_answer_of_the_terminal_request_pauses_for_an_operator(pool: sqlx::PgPool) {
    let setup = Setup {
        sandbox: SandboxConfig {
            terminal_approval: TerminalApproval::Manual,
            faults: FaultPlan::none().on(
                "/billing/generalbilling/openupayterminal/",
                FaultRule::next(1, Fault::CommitThenDrop),
            ),
            ..SandboxConfig::default()
        },
        ..Setup::default()
    };
    let h = Harness::start(pool, setup).await;
    let (_vendor_id, run) = h.enqueue_onboarding(7, "clearing").await;

    assert_eq!(h.settle(run).await.status, "pending");
    h.skip_backoff(run).await;
    let row = h.settle(run).await;
    assert_eq!(row.status, "paused");
    assert_eq!(row.step_name, "open_terminal");
    let reason = row.status_reason.unwrap();
    assert!(
        reason.contains("no way to look a terminal request up"),
        "{reason}"
    );
    let ledger = h.sandbox.ledger();
    assert_eq!(
        ledger
            .calls_to("/billing/generalbilling/openupayterminal/")
            .len(),
        1,
        "the request was not sent a second time"
    );
}

//! End to end: the real `vendorflow serve` binary, the real sandbox over HTTP with faults on, a
//! fresh database, and a webhook receiver in the test that verifies every signature.
//!
//! Twenty vendors (clearing and documents-only) are onboarded through the marketplace API while
//! the sandbox answers 503s, 429s with Retry-After, hangs past the client's timeout, and commits
//! some organizations then drops the answer. The test plays the operator where the design says a
//! person must act (keys lost after a dropped answer; a terminal request whose outcome is
//! unknown), approves the terminals by signal as the marketplace would, and checks that every
//! vendor ends ready, with exactly one organization per corporate number and one terminal per
//! clearing vendor in the sandbox's ledger, and signed webhooks received.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{Harness, Poll, corporate_number};
use sandbox::{Fault, FaultPlan, FaultRule};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use uuid::Uuid;

const VENDORS: usize = 20;
const BOUND: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_vendors_end_ready_under_faults_with_one_organization_each_and_signed_webhooks() {
    let faults = FaultPlan::none()
        .on(
            "*",
            FaultRule::with_probability(0.10, Fault::HttpError { status: 503 }),
        )
        .on(
            "*",
            FaultRule::with_probability(
                0.05,
                Fault::RateLimited {
                    retry_after_secs: 1,
                },
            ),
        )
        .on(
            "*",
            FaultRule::with_probability(
                0.04,
                Fault::Hang {
                    ms: 1_500,
                    commit: false,
                },
            ),
        )
        .on(
            "/website/companies/create/",
            FaultRule::next(2, Fault::CommitThenDrop),
        );
    let system = Harness::start(faults, 20261123).await;
    let (db, sandbox, keyring, token, base, http, received) = (
        &system.db,
        &system.sandbox,
        &system.keyring,
        &system.token,
        &system.base,
        &system.http,
        &system.received,
    );

    // Twenty onboardings: every third vendor is documents-only.
    let mut vendors: BTreeMap<Uuid, (String, bool, Uuid)> = BTreeMap::new();
    for n in 0..VENDORS {
        let clearing = n % 3 != 0;
        let mut vendor = json!({
            "external_id": format!("seller-{n}"),
            "legal_name": format!("Vendor {n} בע\"מ"),
            "corporate_number": corporate_number(n),
            "business_type": "company",
            "email": format!("vendor{n}@example.co.il"),
            "phone": format!("052-{:07}", 1_000_000 + n),
            "mode": if clearing { "clearing" } else { "documents_only" },
        });
        if clearing {
            vendor["bank_account"] = json!({"bank": 12, "branch": 571, "account": "041116"});
        }
        let response = http
            .post(format!("{base}/v1/onboardings"))
            .bearer_auth(token.expose_secret())
            .header("Idempotency-Key", format!("onboard-{n}"))
            .json(&json!({ "vendor": vendor }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let body: Value = response.json().await.unwrap();
        let vendor_id = Uuid::parse_str(body["vendor_id"].as_str().unwrap()).unwrap();
        let run_id = Uuid::parse_str(body["run_id"].as_str().unwrap()).unwrap();
        vendors.insert(vendor_id, (corporate_number(n), clearing, run_id));
    }

    // Drive to the end, acting as the marketplace (approving terminals) and as the operator.
    let operator = engine::Actor::operator("e2e-operator");
    let mut approved = BTreeSet::new();
    let mut operator_actions = 0;
    let mut poll = Poll::every(Duration::from_millis(100), BOUND);
    loop {
        let mut all_ready = true;
        for (vendor_id, (corporate, clearing, run_id)) in &vendors {
            let run: Value = http
                .get(format!("{base}/v1/runs/{run_id}"))
                .bearer_auth(token.expose_secret())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let status = run["status"].as_str().unwrap();
            let step = run["current_step"].as_str().unwrap();
            if status != "succeeded" {
                all_ready = false;
            }
            assert_ne!(status, "failed", "{run}");
            if status == "waiting" && step == "await_terminal_approval" && approved.insert(*run_id)
            {
                // The acquirer approves the terminal; the marketplace tells vendorflow.
                let ledger = sandbox.ledger();
                let company = ledger.companies_with_corporate_number(corporate)[0].company_id;
                sandbox.approve_terminal(company).unwrap();
                let response = http
                    .post(format!("{base}/v1/runs/{run_id}/signals/terminal_approved"))
                    .bearer_auth(token.expose_secret())
                    .json(&json!({"reason": "approved by the acquirer"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 202);
            }
            if status == "paused" {
                operator_actions += 1;
                assert!(operator_actions <= VENDORS * 3, "too many pauses: {run}");
                let mut conn = db.pool.acquire().await.unwrap();
                let ledger = sandbox.ledger();
                let companies = ledger.companies_with_corporate_number(corporate);
                match step {
                    "capture_api_keys" => {
                        // The organization exists but its keys were lost: the operator reads
                        // them in SUMIT and enters them.
                        assert_eq!(companies.len(), 1, "{run}");
                        let keys = sandbox.company_keys(companies[0].company_id).unwrap();
                        steps::supply_api_keys(
                            &db.pool,
                            keyring,
                            *vendor_id,
                            keys.company_id,
                            SecretString::from(keys.api_key.clone()),
                            SecretString::from(keys.api_public_key.clone()),
                        )
                        .await
                        .unwrap();
                        engine::ops::resume(
                            &mut conn,
                            (*run_id).into(),
                            &operator,
                            "keys entered from SUMIT",
                        )
                        .await
                        .unwrap();
                    }
                    "open_terminal" => {
                        // Unknown whether the terminal was requested: the operator checks SUMIT.
                        let requested = ledger.terminals.iter().any(|terminal| {
                            Some(terminal.company_id) == companies.first().map(|c| c.company_id)
                        });
                        let from = if requested {
                            "await_terminal_approval"
                        } else {
                            "open_terminal"
                        };
                        engine::ops::resume_from(
                            &mut conn,
                            (*run_id).into(),
                            from,
                            &operator,
                            "checked in SUMIT",
                        )
                        .await
                        .unwrap();
                    }
                    other => {
                        // Anything else paused: retry, as an operator would after a look.
                        assert!(*clearing || other != "await_terminal_approval", "{run}");
                        engine::ops::resume(
                            &mut conn,
                            (*run_id).into(),
                            &operator,
                            "retry after review",
                        )
                        .await
                        .unwrap();
                    }
                }
            }
        }
        if all_ready {
            break;
        }
        poll.tick("every vendor becomes ready").await;
    }

    // Every vendor is ready, with one organization each and one terminal per clearing vendor.
    let ledger = sandbox.ledger();
    for (vendor_id, (corporate, clearing, _)) in &vendors {
        let vendor: Value = http
            .get(format!("{base}/v1/vendors/{vendor_id}"))
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(vendor["onboarding_state"], "ready", "{vendor}");
        assert_eq!(vendor["state"], "ready", "{vendor}");
        let companies = ledger.companies_with_corporate_number(corporate);
        assert_eq!(companies.len(), 1, "one organization for {corporate}");
        let terminals = ledger
            .terminals
            .iter()
            .filter(|terminal| terminal.company_id == companies[0].company_id)
            .count();
        assert_eq!(
            terminals,
            usize::from(*clearing),
            "terminals of {corporate}"
        );
    }

    // Every vendor.ready webhook arrives, signed.
    loop {
        let ready: BTreeSet<String> = {
            let received = received.lock().unwrap();
            assert_eq!(received.rejected, 0, "a webhook signature did not verify");
            received
                .verified
                .iter()
                .filter(|(kind, _)| kind == "vendor.ready")
                .filter_map(|(_, data)| data["vendor_id"].as_str().map(str::to_owned))
                .collect()
        };
        if ready.len() == VENDORS {
            break;
        }
        poll.tick("a vendor.ready webhook arrives for every vendor")
            .await;
    }
}

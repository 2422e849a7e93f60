//! A sandbox with a state file keeps its organizations, keys, terminals, payments and counters
//! across a restart, so a vendor made ready before the restart still charges after it; what it
//! loads belongs to its owner, and an unreadable file stops the start instead of being ignored.

use std::path::{Path, PathBuf};

use domain::israeli_id::israeli_id_check_digit;
use sandbox::{
    DEV_MARKETPLACE_API_KEY, DEV_MARKETPLACE_COMPANY_ID, SandboxConfig, SandboxHandle, StateFile,
    TerminalApproval, TerminalState,
};
use serde_json::{Value, json};

/// A valid corporate number (51… private company) numbered `n`.
fn corp(n: u32) -> String {
    let first = format!("51{n:06}");
    format!("{first}{}", israeli_id_check_digit(&first).unwrap())
}

fn config(state_file: &Path, approval: TerminalApproval, seed: u64) -> SandboxConfig {
    SandboxConfig {
        terminal_approval: approval,
        seed,
        state_file: Some(StateFile::new(state_file)),
        ..SandboxConfig::default()
    }
}

async fn start(config: SandboxConfig) -> SandboxHandle {
    sandbox::spawn(config).await.unwrap()
}

/// POSTs a request to the sandbox and returns the parsed answer.
async fn post(sandbox: &SandboxHandle, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", sandbox.base_url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

fn marketplace() -> Value {
    json!({"CompanyID": DEV_MARKETPLACE_COMPANY_ID, "APIKey": DEV_MARKETPLACE_API_KEY})
}

/// Creates a vendor organization as vendorflow's onboarding does; returns its credentials as
/// the database would store them.
async fn create_vendor(sandbox: &SandboxHandle, n: u32) -> Value {
    let answer = post(
        sandbox,
        "/website/companies/create/",
        json!({
            "Credentials": marketplace(),
            "Company": {"Name": format!("Vendor {n}"), "CorporateNumber": corp(n), "CompanyType": 2,
                        "EmailAddress": "v@example.co.il", "Phone": "052-123-4567"},
            "Applications": ["CreditCard", "Accounting"],
        }),
    )
    .await;
    assert_eq!(answer["Status"], 0, "{answer}");
    json!({"CompanyID": answer["Data"]["CompanyID"], "APIKey": answer["Data"]["APIKey"]})
}

async fn open_terminal(sandbox: &SandboxHandle, credentials: &Value) {
    let answer = post(
        sandbox,
        "/billing/generalbilling/openupayterminal/",
        json!({"Credentials": credentials, "BankCode": 12, "BranchCode": 571,
               "AccountNumber": "041116", "Program": "OFFICEGUYNEW10"}),
    )
    .await;
    assert_eq!(answer["Status"], 0, "{answer}");
}

async fn charge(sandbox: &SandboxHandle, credentials: &Value, token: &str) -> Value {
    post(
        sandbox,
        "/billing/payments/charge/",
        json!({
            "Credentials": credentials,
            "Customer": {"Name": "Noa", "EmailAddress": "noa@example.com"},
            "SingleUseToken": token,
            "Items": [{"Item": {"Name": "Vase"}, "Quantity": 1, "UnitPrice": 49}],
        }),
    )
    .await
}

fn company_id(credentials: &Value) -> i64 {
    credentials["CompanyID"].as_i64().unwrap()
}

/// A copy of the state file as it is now: what a sandbox killed at this moment leaves behind.
fn copy_as_killed(state: &Path) -> PathBuf {
    let copy = state.with_file_name("killed.json");
    std::fs::copy(state, &copy).unwrap();
    copy
}

#[tokio::test]
async fn a_vendor_made_ready_before_a_restart_charges_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sandbox").join("state.json");
    let before = start(config(&state, TerminalApproval::Manual, 1)).await;
    let credentials = create_vendor(&before, 1).await;
    open_terminal(&before, &credentials).await;
    let approved = reqwest::Client::new()
        .post(format!(
            "{}/_sandbox/terminals/{}/approve",
            before.base_url,
            company_id(&credentials)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200);
    // Every change is on disk before its answer: the file as a kill would leave it now is enough.
    let killed = copy_as_killed(&state);
    drop(before);

    let after = start(config(&killed, TerminalApproval::Manual, 1)).await;
    let answer = charge(&after, &credentials, "tok_approve_after_restart").await;
    assert_eq!(answer["Status"], 0, "{answer}");
    assert_eq!(answer["Data"]["Payment"]["ValidPayment"], true, "{answer}");
    let ledger = after.ledger();
    assert_eq!(
        ledger.terminal(company_id(&credentials)).unwrap().state,
        TerminalState::Approved
    );
    assert_eq!(ledger.payments.len(), 1);
    assert_eq!(ledger.companies_with_corporate_number(&corp(1)).len(), 1);
    // The organization is still the one the database knows: a second create is a duplicate.
    let again = post(
        &after,
        "/website/companies/create/",
        json!({"Credentials": marketplace(),
               "Company": {"Name": "Vendor 1", "CorporateNumber": corp(1), "CompanyType": 2}}),
    )
    .await;
    assert_eq!(again["Status"], 1, "{again}");
}

#[tokio::test]
async fn ids_keys_and_the_ledger_continue_after_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let before = start(config(&state, TerminalApproval::Immediate, 7)).await;
    let first = create_vendor(&before, 1).await;
    open_terminal(&before, &first).await;
    let paid = charge(&before, &first, "tok_approve_1").await;
    assert_eq!(paid["Status"], 0, "{paid}");
    let ledger_before = before.ledger();
    before.shutdown().await;

    // The same seed and first id as before: neither may hand out an id or a key again.
    let after = start(config(&state, TerminalApproval::Immediate, 7)).await;
    assert_eq!(after.ledger(), ledger_before);
    let second = create_vendor(&after, 2).await;
    assert_eq!(company_id(&second), company_id(&first) + 1);
    assert_ne!(second["APIKey"], first["APIKey"]);
    open_terminal(&after, &second).await;
    let paid_after = charge(&after, &second, "tok_approve_2").await;
    assert_eq!(paid_after["Status"], 0, "{paid_after}");
    assert_eq!(
        paid_after["Data"]["Payment"]["ID"].as_i64().unwrap(),
        paid["Data"]["Payment"]["ID"].as_i64().unwrap() + 1
    );
    // A single-use token stays used.
    let reused = charge(&after, &first, "tok_approve_1").await;
    assert_eq!(reused["Status"], 1, "{reused}");
    // The call ledger goes on numbering where it stopped.
    let calls = after.ledger().calls;
    assert_eq!(calls.len(), ledger_before.calls.len() + 4);
    assert!(calls.windows(2).all(|w| w[1].seq == w[0].seq + 1));
}

#[tokio::test]
async fn documents_their_numbers_and_stored_charge_answers_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let replaying = |seed| SandboxConfig {
        charge_unique_identifier: true,
        ..config(&state, TerminalApproval::Immediate, seed)
    };
    let before = start(replaying(1)).await;
    let credentials = create_vendor(&before, 1).await;
    open_terminal(&before, &credentials).await;
    let mut body = json!({
        "Credentials": credentials,
        "Customer": {"Name": "Noa"},
        "SingleUseToken": "tok_approve_1",
        "UniqueIdentifier": "order-7",
        "Items": [{"Item": {"Name": "Vase"}, "Quantity": 1.5, "UnitPrice": 49}],
    });
    let paid = post(&before, "/billing/payments/charge/", body.clone()).await;
    assert_eq!(paid["Status"], 0, "{paid}");
    let receipt = post(
        &before,
        "/accounting/documents/create/",
        json!({"Credentials": credentials, "Details": {"Type": "Receipt", "Customer": {"Name": "Dana"}},
               "Payments": [{"Amount": 50, "Details_Cash": {}}]}),
    )
    .await;
    assert_eq!(receipt["Status"], 0, "{receipt}");
    let details = |id: &Value| json!({"Credentials": credentials, "DocumentID": id});
    let document_id = &paid["Data"]["DocumentID"];
    let mut document_before = post(
        &before,
        "/accounting/documents/getdetails/",
        details(document_id),
    )
    .await;
    drop(before);

    let after = start(replaying(1)).await;
    let mut document_after = post(
        &after,
        "/accounting/documents/getdetails/",
        details(document_id),
    )
    .await;
    // The download link names the sandbox's address, which is new after a restart.
    let link = |answer: &mut Value| answer["Data"]["DocumentDownloadURL"].take();
    assert_ne!(link(&mut document_after), link(&mut document_before));
    assert_eq!(document_after, document_before);
    // The charge's answer is replayed for its UniqueIdentifier, with a fresh token.
    body["SingleUseToken"] = json!("tok_approve_2");
    let replayed = post(&after, "/billing/payments/charge/", body).await;
    assert_eq!(replayed, paid);
    // Numbering goes on per organization and type.
    let next_receipt = post(
        &after,
        "/accounting/documents/create/",
        json!({"Credentials": credentials, "Details": {"Type": "Receipt", "Customer": {"Name": "Dana"}},
               "Payments": [{"Amount": 20, "Details_Cash": {}}]}),
    )
    .await;
    assert_eq!(
        next_receipt["Data"]["DocumentNumber"].as_i64().unwrap(),
        receipt["Data"]["DocumentNumber"].as_i64().unwrap() + 1
    );
    assert_eq!(after.ledger().payments.len(), 1);
}

#[tokio::test]
async fn a_later_first_company_id_moves_new_ids_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let before = start(config(&state, TerminalApproval::Immediate, 1)).await;
    create_vendor(&before, 1).await;
    drop(before);
    let after = start(SandboxConfig {
        first_company_id: 5_000_001,
        ..config(&state, TerminalApproval::Immediate, 2)
    })
    .await;
    assert_eq!(company_id(&create_vendor(&after, 2).await), 5_000_001);
}

#[tokio::test]
async fn a_terminal_pending_at_the_stop_is_approved_by_an_immediate_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let before = start(config(&state, TerminalApproval::Manual, 1)).await;
    let credentials = create_vendor(&before, 1).await;
    open_terminal(&before, &credentials).await;
    let pending = charge(&before, &credentials, "tok_approve_1").await;
    assert_eq!(pending["Status"], 1, "{pending}");
    drop(before);

    let after = start(config(&state, TerminalApproval::Immediate, 1)).await;
    let answer = charge(&after, &credentials, "tok_approve_2").await;
    assert_eq!(answer["Status"], 0, "{answer}");
}

#[tokio::test]
async fn a_reset_empties_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let before = start(config(&state, TerminalApproval::Immediate, 1)).await;
    create_vendor(&before, 1).await;
    let reset = reqwest::Client::new()
        .post(format!("{}/_sandbox/reset", before.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    let killed = copy_as_killed(&state);
    drop(before);
    let after = start(config(&killed, TerminalApproval::Immediate, 1)).await;
    let ledger = after.ledger();
    assert_eq!(ledger.companies.len(), 1, "only the marketplace");
    assert!(ledger.payments.is_empty());
}

#[tokio::test]
async fn a_state_file_of_another_owner_is_set_aside_and_the_sandbox_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let owned_by = |owner: &str| SandboxConfig {
        state_file: Some(StateFile {
            path: state.clone(),
            owner: Some(owner.to_owned()),
        }),
        ..SandboxConfig::default()
    };
    let first = start(owned_by("database A")).await;
    create_vendor(&first, 1).await;
    drop(first);

    let other = start(owned_by("database B")).await;
    assert_eq!(other.ledger().companies.len(), 1, "only the marketplace");
    // The same corporate number is new to this owner's sandbox.
    create_vendor(&other, 1).await;
    drop(other);
    let set_aside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".set-aside"))
        .collect();
    assert_eq!(set_aside.len(), 1, "{set_aside:?}");

    // The owner's own file is loaded.
    let again = start(owned_by("database B")).await;
    assert_eq!(
        again
            .ledger()
            .companies_with_corporate_number(&corp(1))
            .len(),
        1
    );
    // And a sandbox without an owner loads any file.
    drop(again);
    let any = start(config(&state, TerminalApproval::Immediate, 1)).await;
    assert_eq!(any.ledger().companies.len(), 2);
}

#[tokio::test]
async fn an_unreadable_state_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(&state, "{ this is not a sandbox state").unwrap();
    let error = sandbox::spawn(config(&state, TerminalApproval::Immediate, 1))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(error.to_string().contains("state.json"), "{error}");

    std::fs::write(
        &state,
        r#"{"format": 99, "owner": null, "starts": 0, "books": {}}"#,
    )
    .unwrap();
    let error = sandbox::spawn(config(&state, TerminalApproval::Immediate, 1))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("format 99"), "{error}");
    // The file is left as it was, for the developer to look at.
    assert!(std::fs::read_to_string(&state).unwrap().contains("99"));
}

#[cfg(unix)]
#[tokio::test]
async fn the_state_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let sandbox = start(config(&state, TerminalApproval::Immediate, 1)).await;
    create_vendor(&sandbox, 1).await;
    let mode = std::fs::metadata(&state).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    assert_eq!(sandbox.state_file(), Some(state.as_path()));
    // Nothing but the state file is left in the folder (no temporary files).
    drop(sandbox);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
}

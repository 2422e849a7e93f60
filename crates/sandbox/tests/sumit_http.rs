//! The sandbox over raw HTTP: the real paths, envelope and lenient parsing, its business rules,
//! its control endpoints and its faults, checked with plain JSON rather than our client so that
//! the wire shapes themselves are what is tested.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use domain::israeli_id::israeli_id_check_digit;
use sandbox::{
    DEV_MARKETPLACE_API_KEY, DEV_MARKETPLACE_COMPANY_ID, Fault, FaultPlan, FaultRule, Ledger,
    SandboxConfig, SandboxHandle, TerminalApproval, TerminalState,
};
use serde_json::{Value, json};

const CREATE: &str = "/website/companies/create/";
const DETAILS: &str = "/website/companies/getdetails/";
const TERMINAL: &str = "/billing/generalbilling/openupayterminal/";
const CHARGE: &str = "/billing/payments/charge/";
const GET: &str = "/billing/payments/get/";
const LIST: &str = "/billing/payments/list/";
const DOC_CREATE: &str = "/accounting/documents/create/";
const DOC_DETAILS: &str = "/accounting/documents/getdetails/";
const VERIFY: &str = "/accounting/general/verifybankaccount/";

/// A valid corporate number (51… private company) numbered `n`.
fn corp(n: u32) -> String {
    let first = format!("51{n:06}");
    format!("{first}{}", israeli_id_check_digit(&first).unwrap())
}

struct Api {
    http: reqwest::Client,
    sandbox: SandboxHandle,
}

impl Api {
    async fn start(config: SandboxConfig) -> Api {
        Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            sandbox: sandbox::spawn(config).await.unwrap(),
        }
    }

    async fn manual() -> Api {
        Api::start(SandboxConfig {
            terminal_approval: TerminalApproval::Manual,
            ..SandboxConfig::default()
        })
        .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url)
    }

    /// POSTs a SUMIT request; returns the HTTP status and the parsed body.
    async fn post_lang(&self, path: &str, body: Value, lang: Option<&str>) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(l) = lang {
            req = req.header("Content-Language", l);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.post_lang(path, body, Some("en")).await;
        assert_eq!(status, 200, "{path}: {v}");
        v
    }

    fn marketplace() -> Value {
        json!({"CompanyID": DEV_MARKETPLACE_COMPANY_ID, "APIKey": DEV_MARKETPLACE_API_KEY})
    }

    /// Creates a vendor organization; returns its credentials object.
    async fn vendor(&self, n: u32, company_type: Value) -> Value {
        let v = self
            .post(
                CREATE,
                json!({
                    "Credentials": Api::marketplace(),
                    "Company": {"Name": format!("Vendor {n}"), "CorporateNumber": corp(n),
                                "CompanyType": company_type, "EmailAddress": "v@example.co.il",
                                "Phone": "052-123-4567"},
                    "Applications": ["CreditCard", "Accounting"],
                }),
            )
            .await;
        assert_eq!(v["Status"], 0, "{v}");
        json!({"CompanyID": v["Data"]["CompanyID"], "APIKey": v["Data"]["APIKey"]})
    }

    /// A vendor with an approved terminal.
    async fn clearing_vendor(&self, n: u32) -> Value {
        let creds = self.vendor(n, json!(2)).await;
        let v = self
            .post(
                TERMINAL,
                json!({"Credentials": creds, "BankCode": 12, "BranchCode": 571,
                       "AccountNumber": "041116", "Program": "OFFICEGUYNEW10"}),
            )
            .await;
        assert_eq!(v["Status"], 0, "{v}");
        self.sandbox
            .approve_terminal(creds["CompanyID"].as_i64().unwrap())
            .unwrap();
        creds
    }

    async fn charge(&self, creds: &Value, token: &str, unit_price: Value, extra: Value) -> Value {
        let mut body = json!({
            "Credentials": creds,
            "Customer": {"Name": "Dana", "EmailAddress": "dana@example.co.il"},
            "SingleUseToken": token,
            "Items": [{"Item": {"Name": "Vase"}, "Quantity": 1, "UnitPrice": unit_price}],
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.post(CHARGE, body).await
    }

    async fn ledger_over_http(&self) -> Ledger {
        self.http
            .get(self.url("/_sandbox/ledger"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn companies_create_answers_the_real_envelope_with_minted_keys() {
    let api = Api::manual().await;
    let resp = api
        .http
        .post(api.url(CREATE))
        .json(&json!({"Credentials": Api::marketplace(),
                      "Company": {"Name": "Dana Ceramics", "CorporateNumber": corp(1), "CompanyType": 0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let v: Value = resp.json().await.unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "Data",
            "Status",
            "TechnicalErrorDetails",
            "UserErrorMessage"
        ]
    );
    assert_eq!(v["Status"], 0);
    assert!(v["UserErrorMessage"].is_null() && v["TechnicalErrorDetails"].is_null());
    let id = v["Data"]["CompanyID"].as_i64().unwrap();
    assert_ne!(id, DEV_MARKETPLACE_COMPANY_ID);
    assert!(v["Data"]["APIKey"].as_str().unwrap().len() >= 32);
    assert!(!v["Data"]["APIPublicKey"].as_str().unwrap().is_empty());
    // The minted key authenticates the new organization.
    let details = api
        .post(
            DETAILS,
            json!({"Credentials": {"CompanyID": id, "APIKey": v["Data"]["APIKey"]}}),
        )
        .await;
    assert_eq!(details["Status"], 0);
    assert_eq!(details["Data"]["Company"]["CorporateNumber"], corp(1));
    assert_eq!(details["Data"]["Company"]["Name"], "Dana Ceramics");
    let ledger = api.sandbox.ledger();
    assert_eq!(
        ledger.company(id).unwrap().created_by,
        Some(DEV_MARKETPLACE_COMPANY_ID)
    );
}

#[tokio::test]
async fn a_duplicate_corporate_number_is_refused_with_status_1_and_http_200() {
    let api = Api::manual().await;
    api.vendor(2, json!(2)).await;
    // The same number written with dashes is the same number.
    let n = corp(2);
    let dashed = format!("{}-{}-{}", &n[..2], &n[2..8], &n[8..]);
    let (status, v) = api
        .post_lang(
            CREATE,
            json!({"Credentials": Api::marketplace(),
                   "Company": {"Name": "Again", "CorporateNumber": dashed}}),
            Some("en"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["Status"], 1);
    assert!(v["Data"].is_null());
    assert!(
        v["UserErrorMessage"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    assert_eq!(
        api.sandbox
            .ledger()
            .companies_with_corporate_number(&n)
            .len(),
        1
    );
}

#[tokio::test]
async fn invalid_corporate_numbers_and_phones_are_refused() {
    let api = Api::manual().await;
    let mut bad = corp(3);
    bad.replace_range(8..9, if bad.ends_with('0') { "1" } else { "0" });
    for company in [
        json!({"Name": "X", "CorporateNumber": bad}),
        json!({"Name": "X", "CorporateNumber": corp(3), "Phone": "12345"}),
        json!({"CorporateNumber": corp(3)}),
    ] {
        let v = api
            .post(
                CREATE,
                json!({"Credentials": Api::marketplace(), "Company": company}),
            )
            .await;
        assert_eq!(v["Status"], 1, "{v}");
    }
    assert_eq!(api.sandbox.ledger().companies.len(), 1);
}

#[tokio::test]
async fn wrong_missing_or_public_credentials_are_refused() {
    let api = Api::manual().await;
    let cases = [
        json!({"Credentials": {"CompanyID": DEV_MARKETPLACE_COMPANY_ID, "APIKey": "wrong"}}),
        json!({"Credentials": {"CompanyID": 424242, "APIKey": DEV_MARKETPLACE_API_KEY}}),
        json!({"Credentials": {"CompanyID": DEV_MARKETPLACE_COMPANY_ID, "APIPublicKey": "pk"}}),
        json!({}),
    ];
    for body in cases {
        for path in [DETAILS, CREATE, CHARGE, LIST, DOC_CREATE, VERIFY] {
            let v = api.post(path, body.clone()).await;
            assert_eq!(v["Status"], 1, "{path} {body}: {v}");
        }
    }
    let ledger = api.sandbox.ledger();
    assert!(
        ledger
            .calls
            .iter()
            .all(|c| c.company_id.is_none() && !c.committed)
    );
}

#[tokio::test]
async fn content_language_picks_the_language_of_the_error_text() {
    let api = Api::manual().await;
    let body = json!({"Credentials": {"CompanyID": DEV_MARKETPLACE_COMPANY_ID, "APIKey": "wrong"}});
    let (_, en) = api.post_lang(DETAILS, body.clone(), Some("en")).await;
    let (_, he) = api.post_lang(DETAILS, body.clone(), Some("he")).await;
    let (_, default) = api.post_lang(DETAILS, body, None).await;
    let en = en["UserErrorMessage"].as_str().unwrap().to_string();
    let he = he["UserErrorMessage"].as_str().unwrap().to_string();
    assert!(en.contains("Invalid API credentials"), "{en}");
    assert!(
        he.chars().any(|c| ('\u{05d0}'..='\u{05ea}').contains(&c)),
        "{he}"
    );
    assert_eq!(
        default["UserErrorMessage"].as_str().unwrap(),
        he,
        "Hebrew is the default"
    );
}

#[tokio::test]
async fn string_booleans_numeric_strings_and_enum_names_are_accepted() {
    let api = Api::manual().await;
    let v = api
        .post(
            CREATE,
            json!({"credentials": {"companyid": DEV_MARKETPLACE_COMPANY_ID.to_string(),
                                   "apikey": DEV_MARKETPLACE_API_KEY},
                   "Company": {"Name": "Names", "CorporateNumber": corp(4),
                               "CompanyType": "LicensedDealer"},
                   "Applications": ["CreditCard", 7, "8"],
                   "HideFromCompaniesList": "false"}),
        )
        .await;
    assert_eq!(v["Status"], 0, "{v}");
    let id = v["Data"]["CompanyID"].as_i64().unwrap();
    let creds = json!({"CompanyID": id, "APIKey": v["Data"]["APIKey"]});
    let company = api.sandbox.ledger().company(id).unwrap().clone();
    assert_eq!(company.company_type, 2);
    assert_eq!(
        company.applications,
        ["CreditCard", "Accounting", "Expenses"]
    );

    let v = api
        .post(
            TERMINAL,
            json!({"Credentials": creds, "BankCode": "12", "BranchCode": 571,
                   "AccountNumber": 41116, "Program": "1", "DailyCredit": "False",
                   "EnableBilling": "true"}),
        )
        .await;
    assert_eq!(v["Status"], 0, "{v}");
    api.sandbox.approve_terminal(id).unwrap();
    let v = api
        .charge(
            &creds,
            "tok_approve_names",
            json!("59"),
            json!({"VATIncluded": "true", "DocumentType": "InvoiceAndReceipt",
                   "Payments_Count": "1", "Customer": {"Name": "Dana", "SearchMode": "Automatic"}}),
        )
        .await;
    assert_eq!(v["Status"], 0, "{v}");
    assert_eq!(v["Data"]["Payment"]["Amount"], json!(59.0));
    let ledger = api.sandbox.ledger();
    assert!(ledger.payments[0].vat_included);
    assert_eq!(ledger.documents[0].document_type_name, "InvoiceAndReceipt");

    // A value the real binder would not accept is refused, naming the field.
    let v = api
        .charge(
            &creds,
            "tok_approve_bad",
            json!(10),
            json!({"VATIncluded": "maybe"}),
        )
        .await;
    assert_eq!(v["Status"], 1);
    assert!(
        v["UserErrorMessage"]
            .as_str()
            .unwrap()
            .contains("VATIncluded")
    );
    let v = api
        .charge(
            &creds,
            "tok_approve_bad2",
            json!(10),
            json!({"DocumentType": "Banana"}),
        )
        .await;
    assert_eq!(v["Status"], 1);
    assert!(
        v["UserErrorMessage"]
            .as_str()
            .unwrap()
            .contains("DocumentType")
    );
}

#[tokio::test]
async fn a_terminal_is_pending_until_approved_and_charges_on_it_fail_until_then() {
    let api = Api::manual().await;
    let creds = api.vendor(5, json!(2)).await;
    let id = creds["CompanyID"].as_i64().unwrap();
    let v = api
        .post(
            TERMINAL,
            json!({"Credentials": creds, "BankCode": 12, "BranchCode": 571, "AccountNumber": "041116"}),
        )
        .await;
    assert_eq!(v["Status"], 0);
    assert_eq!(v["Data"], json!({}));
    assert_eq!(
        api.sandbox.ledger().terminal(id).unwrap().state,
        TerminalState::Pending
    );

    let v = api
        .charge(&creds, "tok_approve_early", json!(100), json!({}))
        .await;
    assert_eq!(v["Status"], 1);
    assert!(v["UserErrorMessage"].as_str().unwrap().contains("pending"));
    assert!(api.sandbox.ledger().payments.is_empty());

    // The control endpoint approves it.
    let r = api
        .http
        .post(api.url(&format!("/_sandbox/terminals/{id}/approve")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ledger = api.ledger_over_http().await;
    assert_eq!(ledger.terminal(id).unwrap().state, TerminalState::Approved);
    assert_eq!(ledger.terminal(id).unwrap().account_last3, "116");

    let v = api
        .charge(&creds, "tok_approve_later", json!(100), json!({}))
        .await;
    assert_eq!(v["Status"], 0, "{v}");
    assert_eq!(v["Data"]["Payment"]["ValidPayment"], true);

    // Once active, a second request is refused.
    let v = api
        .post(
            TERMINAL,
            json!({"Credentials": creds, "BankCode": 12, "BranchCode": 571, "AccountNumber": "041116"}),
        )
        .await;
    assert_eq!(v["Status"], 1);
}

#[tokio::test]
async fn a_rejected_terminal_refuses_charges_and_an_unknown_terminal_is_a_404() {
    let api = Api::manual().await;
    let creds = api.vendor(6, json!(2)).await;
    let id = creds["CompanyID"].as_i64().unwrap();
    let v = api
        .charge(&creds, "tok_approve_none", json!(10), json!({}))
        .await;
    assert_eq!(v["Status"], 1, "no terminal at all");
    api.post(
        TERMINAL,
        json!({"Credentials": creds, "BankCode": 12, "BranchCode": 571, "AccountNumber": "041116"}),
    )
    .await;
    let r = api
        .http
        .post(api.url(&format!("/_sandbox/terminals/{id}/reject")))
        .json(&json!({"reason": "bank account does not belong to the vendor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = api
        .charge(&creds, "tok_approve_rej", json!(10), json!({}))
        .await;
    assert_eq!(v["Status"], 1);
    assert!(v["UserErrorMessage"].as_str().unwrap().contains("rejected"));
    let t = api.sandbox.ledger().terminal(id).unwrap().clone();
    assert_eq!(t.state, TerminalState::Rejected);
    assert_eq!(
        t.rejection_reason.as_deref(),
        Some("bank account does not belong to the vendor")
    );
    let r = api
        .http
        .post(api.url("/_sandbox/terminals/999/approve"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_terminal_is_approved_by_itself_after_the_configured_delay() {
    let api = Api::start(SandboxConfig {
        terminal_approval: TerminalApproval::AfterDelay(Duration::from_millis(100)),
        ..SandboxConfig::default()
    })
    .await;
    let creds = api.vendor(7, json!(2)).await;
    let id = creds["CompanyID"].as_i64().unwrap();
    api.post(
        TERMINAL,
        json!({"Credentials": creds, "BankCode": 12, "BranchCode": 571, "AccountNumber": "041116"}),
    )
    .await;
    assert_eq!(
        api.sandbox.ledger().terminal(id).unwrap().state,
        TerminalState::Pending
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if api.sandbox.ledger().terminal(id).unwrap().state == TerminalState::Approved {
            break;
        }
        assert!(Instant::now() < deadline, "the terminal was never approved");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_bad_bank_account_is_refused_when_opening_a_terminal() {
    let api = Api::manual().await;
    let creds = api.vendor(8, json!(2)).await;
    let v = api
        .post(
            TERMINAL,
            json!({"Credentials": creds, "BankCode": 12, "BranchCode": 571, "AccountNumber": "041117"}),
        )
        .await;
    assert_eq!(v["Status"], 1, "{v}");
    assert!(api.sandbox.ledger().terminals.is_empty());
}

#[tokio::test]
async fn a_decline_is_status_0_with_an_invalid_payment_and_a_coded_description() {
    let api = Api::manual().await;
    let creds = api.clearing_vendor(9).await;
    let v = api
        .charge(&creds, "tok_decline_order-1", json!(100), json!({}))
        .await;
    assert_eq!(v["Status"], 0, "a decline is not an envelope error: {v}");
    assert!(v["UserErrorMessage"].is_null());
    let p = &v["Data"]["Payment"];
    assert_eq!(p["ValidPayment"], false);
    assert_eq!(p["StatusDescription"], " (קוד 006)");
    assert!(p["ID"].as_i64().is_some());
    assert!(v["Data"]["DocumentID"].is_null());
    let v = api
        .charge(&creds, "tok_decline_004_x", json!(100), json!({}))
        .await;
    assert_eq!(v["Data"]["Payment"]["StatusDescription"], " (קוד 004)");
    let ledger = api.sandbox.ledger();
    assert_eq!(ledger.payments.len(), 2);
    assert!(
        ledger
            .payments
            .iter()
            .all(|p| !p.valid && p.document_id.is_none())
    );
    assert!(ledger.documents.is_empty());
}

#[tokio::test]
async fn a_technical_error_token_answers_status_2_and_leaves_nothing_behind() {
    let api = Api::manual().await;
    let creds = api.clearing_vendor(10).await;
    let v = api
        .charge(&creds, "tok_technical_1", json!(100), json!({}))
        .await;
    assert_eq!(v["Status"], 2);
    assert!(v["TechnicalErrorDetails"].as_str().is_some());
    assert!(api.sandbox.ledger().payments.is_empty());
}

#[tokio::test]
async fn single_use_tokens_are_single_use_and_unknown_tokens_are_refused() {
    let api = Api::manual().await;
    let creds = api.clearing_vendor(11).await;
    assert_eq!(
        api.charge(&creds, "tok_approve_once", json!(10), json!({}))
            .await["Status"],
        0
    );
    let again = api
        .charge(&creds, "tok_approve_once", json!(10), json!({}))
        .await;
    assert_eq!(again["Status"], 1);
    assert!(
        again["UserErrorMessage"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    let unknown = api
        .charge(&creds, "4580000000000000", json!(10), json!({}))
        .await;
    assert_eq!(unknown["Status"], 1);
    assert_eq!(api.sandbox.ledger().payments.len(), 1);
}

#[tokio::test]
async fn document_numbers_are_sequential_per_organization_and_type() {
    let api = Api::manual().await;
    let a = api.clearing_vendor(12).await;
    let b = api.clearing_vendor(13).await;
    let mut numbers = Vec::new();
    for (creds, token) in [
        (&a, "tok_approve_a1"),
        (&a, "tok_approve_a2"),
        (&b, "tok_approve_b1"),
    ] {
        let v = api.charge(creds, token, json!(10), json!({})).await;
        numbers.push(v["Data"]["DocumentNumber"].as_i64().unwrap());
    }
    let receipt = api
        .post(
            DOC_CREATE,
            json!({"Credentials": a, "Details": {"Type": "Receipt", "Customer": {"Name": "Dana"}},
                   "Payments": [{"Amount": 50, "Details_Cash": {}}]}),
        )
        .await;
    assert_eq!(receipt["Status"], 0, "{receipt}");
    let v = api.charge(&a, "tok_approve_a3", json!(10), json!({})).await;
    numbers.push(receipt["Data"]["DocumentNumber"].as_i64().unwrap());
    numbers.push(v["Data"]["DocumentNumber"].as_i64().unwrap());
    // A's invoice-receipts 10001, 10002; B's first 10001; A's first receipt 10001; A's third
    // invoice-receipt 10003.
    assert_eq!(numbers, [10001, 10002, 10001, 10001, 10003]);
    // Drafts take no number.
    let draft = api
        .charge(
            &a,
            "tok_approve_draft",
            json!(10),
            json!({"AuthoriseOnly": true}),
        )
        .await;
    assert!(draft["Data"]["DocumentNumber"].is_null());
    let ledger = api.sandbox.ledger();
    assert!(ledger.payments.last().is_some_and(|p| !p.captured));
}

/// Charges ₪100 at the given provider time; returns (total, vat) in agorot from the ledger.
async fn charge_at(
    api: &Api,
    creds: &Value,
    at: &str,
    included: bool,
    token: &str,
) -> (i64, i64, i64) {
    api.sandbox.set_clock(Some(
        chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%S").unwrap(),
    ));
    let v = api
        .charge(creds, token, json!(100), json!({"VATIncluded": included}))
        .await;
    assert_eq!(v["Status"], 0, "{v}");
    let ledger = api.sandbox.ledger();
    let doc = ledger
        .document(v["Data"]["DocumentID"].as_i64().unwrap())
        .unwrap();
    let amount = (v["Data"]["Payment"]["Amount"].as_f64().unwrap() * 100.0).round() as i64;
    assert_eq!(amount, doc.total_agorot);
    (doc.total_agorot, doc.vat_agorot, doc.vat_rate_bp)
}

#[tokio::test]
async fn vat_follows_vat_included_and_the_dated_rate_on_both_sides_of_2025() {
    let api = Api::manual().await;
    let creds = api.clearing_vendor(14).await;
    // VATIncluded false (the default): VAT is added on top of ₪100.
    assert_eq!(
        charge_at(&api, &creds, "2024-12-31T23:59:59", false, "tok_approve_v1").await,
        (11700, 1700, 1700)
    );
    assert_eq!(
        charge_at(&api, &creds, "2025-01-01T00:00:00", false, "tok_approve_v2").await,
        (11800, 1800, 1800)
    );
    // VATIncluded true: ₪100 contains the VAT.
    assert_eq!(
        charge_at(&api, &creds, "2024-12-31T23:59:59", true, "tok_approve_v3").await,
        (10000, 1453, 1700)
    );
    assert_eq!(
        charge_at(&api, &creds, "2025-01-01T00:00:00", true, "tok_approve_v4").await,
        (10000, 1525, 1800)
    );

    // documents/create takes the rate of its own date, whatever the clock says.
    for (date, included, expected) in [
        ("2024-12-31", false, (11700, 1700)),
        ("2025-01-01", false, (11800, 1800)),
        ("2024-12-31", true, (10000, 1453)),
        ("2025-01-01", true, (10000, 1525)),
    ] {
        let v = api
            .post(
                DOC_CREATE,
                json!({"Credentials": creds,
                       "Details": {"Type": 0, "Date": date, "Customer": {"Name": "Dana"}},
                       "Items": [{"Item": {"Name": "Vase"}, "UnitPrice": 100}],
                       "VATIncluded": included}),
            )
            .await;
        assert_eq!(v["Status"], 0, "{v}");
        let ledger = api.sandbox.ledger();
        let d = ledger
            .document(v["Data"]["DocumentID"].as_i64().unwrap())
            .unwrap();
        assert_eq!(
            (d.total_agorot, d.vat_agorot),
            expected,
            "{date} included={included}"
        );
        assert_eq!(d.date, NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap());
    }
}

#[tokio::test]
async fn an_exempt_dealer_charges_no_vat_and_issues_receipts() {
    let api = Api::manual().await;
    let creds = api.vendor(15, json!("VATExemptDealer")).await;
    let id = creds["CompanyID"].as_i64().unwrap();
    api.post(
        TERMINAL,
        json!({"Credentials": creds, "BankCode": 12, "BranchCode": 571, "AccountNumber": "041116"}),
    )
    .await;
    api.sandbox.approve_terminal(id).unwrap();
    let v = api
        .charge(&creds, "tok_approve_exempt", json!(49), json!({}))
        .await;
    assert_eq!(v["Data"]["Payment"]["Amount"], json!(49.0));
    let ledger = api.sandbox.ledger();
    assert_eq!(ledger.documents[0].document_type_name, "Receipt");
    assert_eq!(ledger.documents[0].vat_agorot, 0);
}

#[tokio::test]
async fn an_invoice_receipt_must_be_paid_in_full_and_getdetails_returns_it() {
    let api = Api::manual().await;
    let creds = api.vendor(16, json!(2)).await;
    api.sandbox.set_clock(Some(
        NaiveDate::from_ymd_opt(2025, 6, 9)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap(),
    ));
    let body = |amount: Value| {
        json!({"Credentials": creds,
               "Details": {"Type": "InvoiceAndReceipt", "IsDraft": "false",
                           "Customer": {"Name": "Dana", "SearchMode": "Automatic"},
                           "Description": "Order 42", "Language": "Hebrew", "Currency": "ILS"},
               "Items": [{"Quantity": 2, "UnitPrice": 50, "Item": {"Name": "Widget", "SKU": "W1"}}],
               "Payments": [{"Amount": amount, "Details_Other": {"Type": "Shop", "Description": "PayPal TXN"}}],
               "VATIncluded": true})
    };
    let short = api.post(DOC_CREATE, body(json!(99.99))).await;
    assert_eq!(short["Status"], 1, "{short}");
    assert!(api.sandbox.ledger().documents.is_empty());
    let v = api.post(DOC_CREATE, body(json!("100.00"))).await;
    assert_eq!(v["Status"], 0, "{v}");
    let id = v["Data"]["DocumentID"].as_i64().unwrap();
    assert!(
        v["Data"]["DocumentDownloadURL"]
            .as_str()
            .unwrap()
            .contains(&id.to_string())
    );
    let d = api
        .post(DOC_DETAILS, json!({"Credentials": creds, "DocumentID": id}))
        .await;
    assert_eq!(d["Status"], 0, "{d}");
    assert_eq!(d["Data"]["Document"]["Type"], 1);
    assert_eq!(d["Data"]["Document"]["Description"], "Order 42");
    assert_eq!(d["Data"]["Document"]["Date"], "2025-06-09T00:00:00");
    assert_eq!(d["Data"]["Items"][0]["TotalPrice"], json!(100.0));
    assert_eq!(d["Data"]["Payments"][0]["Details_Other"]["Type"], "Shop");
    assert_eq!(d["Data"]["DocumentNumber"], 10001);
    // By type and number too; and another organization cannot read it.
    let by_number = api
        .post(
            DOC_DETAILS,
            json!({"Credentials": creds, "DocumentType": "InvoiceAndReceipt", "DocumentNumber": 10001}),
        )
        .await;
    assert_eq!(by_number["Data"]["DocumentID"], id);
    let other = api.vendor(17, json!(2)).await;
    let hidden = api
        .post(DOC_DETAILS, json!({"Credentials": other, "DocumentID": id}))
        .await;
    assert_eq!(hidden["Status"], 1);
    let download = api
        .http
        .get(v["Data"]["DocumentDownloadURL"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
}

#[tokio::test]
async fn payments_get_and_list_page_through_the_organizations_payments() {
    let api = Api::start(SandboxConfig {
        terminal_approval: TerminalApproval::Immediate,
        list_page_size: 2,
        ..SandboxConfig::default()
    })
    .await;
    let creds = api.vendor(18, json!(2)).await;
    api.post(
        TERMINAL,
        json!({"Credentials": creds, "BankCode": 12, "BranchCode": 571, "AccountNumber": "041116"}),
    )
    .await;
    api.sandbox.set_clock(Some(
        NaiveDate::from_ymd_opt(2025, 3, 1)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap(),
    ));
    let mut ids = Vec::new();
    for (i, token) in [
        "tok_approve_1",
        "tok_decline_2",
        "tok_approve_3",
        "tok_approve_4",
        "tok_approve_5",
    ]
    .iter()
    .enumerate()
    {
        let v = api
            .charge(
                &creds,
                token,
                json!(10 + i),
                json!({"UniqueIdentifier": format!("order-{i}")}),
            )
            .await;
        ids.push(v["Data"]["Payment"]["ID"].as_i64().unwrap());
    }
    let got = api
        .post(GET, json!({"Credentials": creds, "PaymentID": ids[1]}))
        .await;
    assert_eq!(got["Data"]["Payment"]["ValidPayment"], false);
    assert_eq!(got["Data"]["Payment"]["UniqueIdentifier"], "order-1");

    let mut seen = Vec::new();
    let mut start = 0;
    loop {
        let page = api
            .post(
                LIST,
                json!({"Credentials": creds, "Date_From": "2025-03-01", "Date_To": "2025-03-01",
                       "StartIndex": start}),
            )
            .await;
        let rows = page["Data"]["Payments"].as_array().unwrap();
        assert!(rows.len() <= 2);
        seen.extend(rows.iter().map(|r| r["ID"].as_i64().unwrap()));
        start += rows.len();
        if page["Data"]["HasNextPage"] == false {
            break;
        }
    }
    assert_eq!(seen, ids);
    let valid_only = api
        .post(
            LIST,
            json!({"Credentials": creds, "Date_From": "2025-03-01T00:00:00",
                   "Date_To": "2025-03-02T00:00:00", "Valid": "true"}),
        )
        .await;
    assert_eq!(valid_only["Data"]["Payments"].as_array().unwrap().len(), 2);
    assert_eq!(valid_only["Data"]["HasNextPage"], true);
    let before = api
        .post(
            LIST,
            json!({"Credentials": creds, "Date_From": "2025-02-01", "Date_To": "2025-02-28"}),
        )
        .await;
    assert_eq!(before["Data"]["Payments"], json!([]));
    // Payments of other organizations are invisible.
    let other = api.vendor(19, json!(2)).await;
    let hidden = api
        .post(GET, json!({"Credentials": other, "PaymentID": ids[0]}))
        .await;
    assert_eq!(hidden["Status"], 1);
}

#[tokio::test]
async fn with_the_unique_identifier_switch_a_repeated_charge_replays_the_first_answer() {
    let api = Api::start(SandboxConfig {
        terminal_approval: TerminalApproval::Immediate,
        charge_unique_identifier: true,
        ..SandboxConfig::default()
    })
    .await;
    let creds = api.vendor(20, json!(2)).await;
    api.post(
        TERMINAL,
        json!({"Credentials": creds, "BankCode": 12, "BranchCode": 571, "AccountNumber": "041116"}),
    )
    .await;
    let first = api
        .charge(
            &creds,
            "tok_approve_u1",
            json!(10),
            json!({"UniqueIdentifier": "order-7"}),
        )
        .await;
    // The retry carries a fresh token (the first was consumed), as a real retry would.
    let again = api
        .charge(
            &creds,
            "tok_approve_u2",
            json!(10),
            json!({"UniqueIdentifier": "order-7"}),
        )
        .await;
    assert_eq!(first, again);
    assert_eq!(
        api.sandbox
            .ledger()
            .payments_with_unique_identifier("order-7")
            .len(),
        1
    );
}

#[tokio::test]
async fn without_the_switch_a_repeated_unique_identifier_charges_twice() {
    let api = Api::manual().await;
    let creds = api.clearing_vendor(21).await;
    for token in ["tok_approve_n1", "tok_approve_n2"] {
        api.charge(
            &creds,
            token,
            json!(10),
            json!({"UniqueIdentifier": "order-8"}),
        )
        .await;
    }
    assert_eq!(
        api.sandbox
            .ledger()
            .payments_with_unique_identifier("order-8")
            .len(),
        2
    );
}

#[tokio::test]
async fn verifybankaccount_answers_true_false_or_null_for_unsupported_banks() {
    let api = Api::manual().await;
    let creds = Api::marketplace();
    for (bank, branch, account, expected) in [
        (12, 571, json!(41116), json!(true)),
        (12, 571, json!("041117"), json!(false)),
        (54, 123, json!(999999), Value::Null),
        (99, 1, json!(1234), Value::Null),
    ] {
        let v = api
            .post(
                VERIFY,
                json!({"Credentials": creds, "BankCode": bank, "BranchCode": branch,
                       "AccountNumber": account}),
            )
            .await;
        assert_eq!(v["Status"], 0, "{v}");
        assert_eq!(v["Data"]["Result"], expected, "{bank}/{branch}/{account}");
    }
}

#[tokio::test]
async fn the_same_seed_mints_the_same_keys() {
    let key = |seed| async move {
        let api = Api::start(SandboxConfig {
            seed,
            ..SandboxConfig::default()
        })
        .await;
        let creds = api.vendor(22, json!(2)).await;
        creds["APIKey"].as_str().unwrap().to_string()
    };
    assert_eq!(key(1).await, key(1).await);
    assert_ne!(key(1).await, key(2).await);
}

#[tokio::test]
async fn faults_are_set_read_and_cleared_through_the_control_endpoint() {
    let api = Api::manual().await;
    let plan = json!({"/billing/payments/charge": [{"kind": "http_error", "status": 503, "next": 1}],
                      "*": [{"kind": "latency", "ms": 1}]});
    let r = api
        .http
        .put(api.url("/_sandbox/faults"))
        .json(&plan)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let current: FaultPlan = api
        .http
        .get(api.url("/_sandbox/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current, api.sandbox.faults());
    assert_eq!(current.endpoints[CHARGE][0].next, Some(1));
    let bad = api
        .http
        .put(api.url("/_sandbox/faults"))
        .json(&json!({"*": [{"kind": "reset", "probability": 2.0}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let r = api
        .http
        .delete(api.url("/_sandbox/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(api.sandbox.faults().endpoints.is_empty());
}

#[tokio::test]
async fn error_faults_answer_html_pages_and_429_carries_retry_after() {
    let api = Api::manual().await;
    for status in [500u16, 502, 503] {
        api.sandbox
            .set_faults(
                FaultPlan::none().on(DETAILS, FaultRule::next(1, Fault::HttpError { status })),
            )
            .unwrap();
        let r = api
            .http
            .post(api.url(DETAILS))
            .json(&json!({"Credentials": Api::marketplace()}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(r.text().await.unwrap().contains("<html>"));
    }
    api.sandbox
        .set_faults(FaultPlan::none().on(
            DETAILS,
            FaultRule::next(
                1,
                Fault::RateLimited {
                    retry_after_secs: 3,
                },
            ),
        ))
        .unwrap();
    let r = api
        .http
        .post(api.url(DETAILS))
        .json(&json!({"Credentials": Api::marketplace()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    // The rules were "next 1": the next call is normal.
    let v = api
        .post(DETAILS, json!({"Credentials": Api::marketplace()}))
        .await;
    assert_eq!(v["Status"], 0);
}

#[tokio::test]
async fn a_reset_closes_the_connection_without_an_answer_and_without_an_effect() {
    let api = Api::manual().await;
    api.sandbox
        .set_faults(FaultPlan::none().on(CREATE, FaultRule::next(1, Fault::Reset)))
        .unwrap();
    let err = api
        .http
        .post(api.url(CREATE))
        .json(&json!({"Credentials": Api::marketplace(),
                      "Company": {"Name": "Reset", "CorporateNumber": corp(23)}}))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_connect() && !err.is_timeout(), "{err:?}");
    let ledger = api.sandbox.ledger();
    assert!(ledger.companies_with_corporate_number(&corp(23)).is_empty());
    let call = ledger.calls_to(CREATE)[0];
    assert!(!call.committed && !call.answered);
    assert_eq!(call.faults, ["reset"]);
}

#[tokio::test]
async fn commit_then_drop_applies_the_effect_and_closes_the_connection() {
    let api = Api::manual().await;
    api.sandbox
        .set_faults(FaultPlan::none().on(CREATE, FaultRule::next(1, Fault::CommitThenDrop)))
        .unwrap();
    let err = api
        .http
        .post(api.url(CREATE))
        .json(&json!({"Credentials": Api::marketplace(),
                      "Company": {"Name": "Dropped", "CorporateNumber": corp(24)}}))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_connect(), "{err:?}");
    let ledger = api.sandbox.ledger();
    assert_eq!(ledger.companies_with_corporate_number(&corp(24)).len(), 1);
    let call = ledger.calls_to(CREATE)[0];
    assert!(call.committed && !call.answered);
}

#[tokio::test]
async fn a_hang_holds_one_connection_while_others_are_served() {
    let api = Api::manual().await;
    api.sandbox
        .set_faults(FaultPlan::none().on(
            CREATE,
            FaultRule::next(
                1,
                Fault::Hang {
                    ms: 1000,
                    commit: false,
                },
            ),
        ))
        .unwrap();
    let short = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let hung = short
        .post(api.url(CREATE))
        .json(&json!({"Credentials": Api::marketplace(),
                      "Company": {"Name": "Hung", "CorporateNumber": corp(25)}}))
        .send();
    let other = api.post(DETAILS, json!({"Credentials": Api::marketplace()}));
    let (hung, other) = tokio::join!(hung, other);
    assert!(hung.unwrap_err().is_timeout());
    assert_eq!(other["Status"], 0);
    assert!(
        api.sandbox
            .ledger()
            .companies_with_corporate_number(&corp(25))
            .is_empty()
    );
}

#[tokio::test]
async fn a_garbled_body_is_an_html_200_after_the_effect() {
    let api = Api::manual().await;
    api.sandbox
        .set_faults(FaultPlan::none().on(CREATE, FaultRule::next(1, Fault::GarbledBody)))
        .unwrap();
    let (status, body) = api
        .post_lang(
            CREATE,
            json!({"Credentials": Api::marketplace(),
                   "Company": {"Name": "Garbled", "CorporateNumber": corp(26)}}),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(body.as_str().unwrap().contains("<html>"));
    assert_eq!(
        api.sandbox
            .ledger()
            .companies_with_corporate_number(&corp(26))
            .len(),
        1
    );
}

#[tokio::test]
async fn reset_forgets_everything_but_the_marketplace() {
    let api = Api::manual().await;
    api.vendor(27, json!(2)).await;
    let r = api
        .http
        .post(api.url("/_sandbox/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ledger = api.ledger_over_http().await;
    assert_eq!(ledger.companies.len(), 1);
    assert!(ledger.calls.is_empty());
    // The number is free again.
    api.vendor(27, json!(2)).await;
}

#[tokio::test]
async fn company_keys_are_available_only_at_the_sandbox_endpoint_and_hidden_from_the_ledger() {
    let api = Api::manual().await;
    let creds = api.vendor(28, json!(2)).await;
    let id = creds["CompanyID"].as_i64().unwrap();
    let keys: Value = api
        .http
        .get(api.url(&format!("/_sandbox/companies/{id}/keys")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys["api_key"], creds["APIKey"]);
    let key = creds["APIKey"].as_str().unwrap();
    let ledger_text = api
        .http
        .get(api.url("/_sandbox/ledger"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!ledger_text.contains(key));
    assert!(!format!("{:?}", api.sandbox.company_keys(id).unwrap()).contains(key));
}

#[tokio::test]
async fn unknown_paths_are_404_pages_and_other_verbs_405() {
    let api = Api::manual().await;
    let r = api
        .http
        .post(api.url("/billing/payments/refund/"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = api.http.get(api.url(CHARGE)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = api
        .http
        .post(api.url(CHARGE))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn the_clock_is_set_and_released_through_the_control_endpoint() {
    let api = Api::manual().await;
    let v: Value = api
        .http
        .put(api.url("/_sandbox/clock"))
        .json(&json!({"now": "2024-12-31T23:30:00"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"now": "2024-12-31T23:30:00", "frozen": true}));
    let v: Value = api
        .http
        .put(api.url("/_sandbox/clock"))
        .json(&json!({"now": null}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["frozen"], false);
}

#[tokio::test]
async fn absurd_amounts_are_refused_as_an_invalid_field_and_the_sandbox_keeps_answering() {
    let api = Api::manual().await;
    let creds = api.clearing_vendor(31).await;
    // Two lines of 2^62 agorot: their sum does not fit an i64.
    let huge = json!("46116860184273879.04");
    let two_lines = json!({"Items": [
        {"Item": {"Name": "a"}, "Quantity": 1, "UnitPrice": huge},
        {"Item": {"Name": "b"}, "Quantity": 1, "UnitPrice": huge}
    ]});
    for vat_included in [false, true] {
        let mut extra = two_lines.clone();
        extra["VATIncluded"] = json!(vat_included);
        let v = api
            .charge(&creds, "tok_approve_huge", json!(1), extra)
            .await;
        assert_eq!(v["Status"], 1, "{v}");
        assert!(
            v["UserErrorMessage"]
                .as_str()
                .unwrap()
                .contains("Items.UnitPrice"),
            "{v}"
        );
    }
    // One line that fits, whose VAT on top does not.
    let v = api
        .charge(
            &creds,
            "tok_approve_huge",
            json!("92233720368547758.07"),
            json!({}),
        )
        .await;
    assert_eq!(v["Status"], 1, "{v}");
    // The same for a document, and the token was never consumed: a sane charge still works.
    let document = json!({"Credentials": creds,
        "Details": {"Type": "Invoice", "Customer": {"Name": "Dana"}},
        "Items": two_lines["Items"].clone()});
    let d = api.post(DOC_CREATE, document).await;
    assert_eq!(d["Status"], 1, "{d}");
    let ok = api
        .charge(&creds, "tok_approve_huge", json!(10), json!({}))
        .await;
    assert_eq!(ok["Status"], 0, "{ok}");
    assert!(api.sandbox.ledger().documents.len() <= 1);
}

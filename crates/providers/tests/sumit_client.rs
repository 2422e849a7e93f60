//! The SUMIT client against the sandbox over real HTTP: every endpoint, every fault class, and
//! the reconciliation lookups the engine uses after an unknown outcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use domain::israeli_id::israeli_id_check_digit;
use providers::sumit::{
    Application, ChargeOutcome, ChargeRequest, ClientConfig, CompanyType, CreateCompany,
    CreateDocument, Credentials, Customer, DocumentPayment, DocumentType, ErrorLanguage, LineItem,
    ListPayments, OpenTerminal, PaymentDetails, PaymentLookup, SumitClient, UpayProgram,
};
use providers::{ErrorClass, ProviderError, RejectionKind};
use sandbox::{
    DEV_MARKETPLACE_API_KEY, DEV_MARKETPLACE_COMPANY_ID, FIND_COMPANY_PATH, Fault, FaultPlan,
    FaultRule, SandboxConfig, SandboxHandle, TerminalApproval,
};
use secrecy::SecretString;
use tokio::task::JoinSet;

/// Client timeout in these tests, and the hang that outlasts it.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(500);
const HANG_MS: u64 = 1500;

fn corp(n: u32) -> String {
    let first = format!("52{n:06}");
    format!("{first}{}", israeli_id_check_digit(&first).unwrap())
}

fn marketplace() -> Credentials {
    Credentials::new(DEV_MARKETPLACE_COMPANY_ID, DEV_MARKETPLACE_API_KEY)
}

fn client(base_url: &str) -> SumitClient {
    SumitClient::new(
        base_url,
        ClientConfig {
            connect_timeout: CLIENT_TIMEOUT,
            request_timeout: CLIENT_TIMEOUT,
            language: ErrorLanguage::English,
            sandbox_extensions: true,
        },
    )
    .unwrap()
}

fn new_company(n: u32) -> CreateCompany {
    CreateCompany {
        name: format!("Vendor {n}"),
        corporate_number: corp(n),
        company_type: CompanyType::LicensedDealer,
        email_address: format!("vendor{n}@example.co.il"),
        phone: Some("052-123-4567".into()),
        address: None,
        country: Some("Israel".into()),
        english_name: None,
        website: None,
        applications: vec![Application::CreditCard, Application::Accounting],
        hide_from_companies_list: false,
    }
}

fn terminal() -> OpenTerminal {
    OpenTerminal {
        bank_code: 12,
        branch_code: 571,
        account_number: SecretString::from("041116".to_string()),
        program: UpayProgram::OfficeGuyNew10,
        daily_credit: false,
        disable_payments_credit: false,
        enable_american_express_diners: false,
        enable_billing: true,
        email_address: None,
    }
}

fn charge_request(token: &str, unit_price_agorot: i64, order: Option<&str>) -> ChargeRequest {
    ChargeRequest {
        customer: Customer {
            name: Some("Dana Levi".into()),
            email_address: Some("dana@example.co.il".into()),
            ..Customer::default()
        },
        single_use_token: SecretString::from(token.to_string()),
        items: vec![LineItem {
            name: "Ceramic vase".into(),
            sku: Some("V-1".into()),
            quantity: 1,
            unit_price_agorot,
            description: None,
        }],
        vat_included: true,
        document_type: None,
        document_description: order.map(|o| format!("Order {o}")),
        document_language: None,
        send_document_by_email: false,
        payments_count: None,
        authorise_only: false,
        external_identifier: order.map(str::to_string),
    }
}

fn invoice(unit_price_agorot: i64) -> CreateDocument {
    CreateDocument {
        document_type: DocumentType::Invoice,
        date: None,
        is_draft: false,
        language: None,
        customer: Customer {
            name: Some("Dana Levi".into()),
            ..Customer::default()
        },
        description: Some("Consulting".into()),
        items: vec![LineItem {
            name: "Hour".into(),
            sku: None,
            quantity: 3,
            unit_price_agorot,
            description: None,
        }],
        payments: vec![],
        vat_included: false,
        original_document_id: None,
        send_by_email: false,
    }
}

/// The provider's day in these tests.
fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 9).unwrap()
}

/// A sandbox with a clearing vendor (approved terminal), a vendor whose terminal stays pending,
/// one payment and one document.
struct Fixture {
    sandbox: SandboxHandle,
    client: SumitClient,
    vendor: Credentials,
    pending_vendor: Credentials,
    payment_id: i64,
    document_id: i64,
    counter: AtomicU32,
}

impl Fixture {
    async fn start(config: SandboxConfig) -> Fixture {
        let sandbox = sandbox::spawn(SandboxConfig {
            terminal_approval: TerminalApproval::Manual,
            clock: Some(day().and_hms_opt(12, 0, 0).unwrap()),
            ..config
        })
        .await
        .unwrap();
        let client = client(&sandbox.base_url);
        let vendor = client
            .create_company(&marketplace(), &new_company(1))
            .await
            .unwrap()
            .credentials();
        client
            .open_upay_terminal(&vendor, &terminal())
            .await
            .unwrap();
        sandbox.approve_terminal(vendor.company_id).unwrap();
        let pending_vendor = client
            .create_company(&marketplace(), &new_company(2))
            .await
            .unwrap()
            .credentials();
        client
            .open_upay_terminal(&pending_vendor, &terminal())
            .await
            .unwrap();
        let ChargeOutcome::Approved(approved) = client
            .charge(
                &vendor,
                &charge_request("tok_approve_fixture", 10000, Some("fixture")),
            )
            .await
            .unwrap()
        else {
            panic!("the fixture charge was declined");
        };
        let document_id = client
            .create_document(&vendor, &invoice(5000))
            .await
            .unwrap()
            .document_id;
        Fixture {
            sandbox,
            client,
            vendor,
            pending_vendor,
            payment_id: approved.payment.id,
            document_id,
            counter: AtomicU32::new(100),
        }
    }

    fn next(&self) -> u32 {
        self.counter.fetch_add(1, Ordering::SeqCst)
    }
}

/// Every call of the client, each made so that it succeeds when nothing goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    CreateCompany,
    GetCompanyDetails,
    FindCompany,
    OpenTerminal,
    Charge,
    GetPayment,
    ListPayments,
    FindPayment,
    CreateDocument,
    GetDocument,
    VerifyBankAccount,
}

const CALLS: [Call; 11] = [
    Call::CreateCompany,
    Call::GetCompanyDetails,
    Call::FindCompany,
    Call::OpenTerminal,
    Call::Charge,
    Call::GetPayment,
    Call::ListPayments,
    Call::FindPayment,
    Call::CreateDocument,
    Call::GetDocument,
    Call::VerifyBankAccount,
];

impl Call {
    fn path(self) -> &'static str {
        match self {
            Call::CreateCompany => "/website/companies/create/",
            Call::GetCompanyDetails => "/website/companies/getdetails/",
            Call::FindCompany => FIND_COMPANY_PATH,
            Call::OpenTerminal => "/billing/generalbilling/openupayterminal/",
            Call::Charge => "/billing/payments/charge/",
            Call::GetPayment => "/billing/payments/get/",
            Call::ListPayments | Call::FindPayment => "/billing/payments/list/",
            Call::CreateDocument => "/accounting/documents/create/",
            Call::GetDocument => "/accounting/documents/getdetails/",
            Call::VerifyBankAccount => "/accounting/general/verifybankaccount/",
        }
    }

    fn mutating(self) -> bool {
        matches!(
            self,
            Call::CreateCompany | Call::OpenTerminal | Call::Charge | Call::CreateDocument
        )
    }

    async fn run(self, client: &SumitClient, f: &Fixture) -> Result<(), ProviderError> {
        let n = f.next();
        match self {
            Call::CreateCompany => client
                .create_company(&marketplace(), &new_company(n))
                .await
                .map(drop),
            Call::GetCompanyDetails => client.get_company_details(&f.vendor).await.map(drop),
            Call::FindCompany => client
                .find_company_by_corporate_number(&marketplace(), &corp(1))
                .await
                .map(|found| assert!(found.is_some())),
            Call::OpenTerminal => {
                client
                    .open_upay_terminal(&f.pending_vendor, &terminal())
                    .await
            }
            Call::Charge => client
                .charge(
                    &f.vendor,
                    &charge_request(&format!("tok_approve_{n}"), 2500, None),
                )
                .await
                .map(|o| assert!(matches!(o, ChargeOutcome::Approved(_)))),
            Call::GetPayment => client.get_payment(&f.vendor, f.payment_id).await.map(drop),
            Call::ListPayments => client
                .list_payments(
                    &f.vendor,
                    &ListPayments {
                        from: day(),
                        to: day(),
                        valid: None,
                        start_index: 0,
                    },
                )
                .await
                .map(|page| assert!(!page.payments.is_empty())),
            Call::FindPayment => client
                .find_payment_by_external_identifier(&f.vendor, "fixture", day(), day())
                .await
                .map(|l| assert!(matches!(l, PaymentLookup::Found(_)))),
            Call::CreateDocument => client
                .create_document(&f.vendor, &invoice(1000))
                .await
                .map(drop),
            Call::GetDocument => client
                .get_document(&f.vendor, f.document_id)
                .await
                .map(drop),
            Call::VerifyBankAccount => client
                .verify_bank_account(&f.vendor, 12, 571, "041116")
                .await
                .map(|r| assert_eq!(r, Some(true))),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Case {
    NoFault,
    Latency,
    LongTail,
    Http(u16),
    RateLimited,
    Hang,
    Reset,
    CommitThenDrop,
    GarbledBody,
    /// Nothing listens at the address: the connection is refused before anything is sent.
    Refused,
}

impl Case {
    fn fault(self) -> Option<Fault> {
        match self {
            Case::NoFault | Case::Refused => None,
            Case::Latency => Some(Fault::Latency { ms: 20 }),
            // Capped at ten times the 99th percentile, well inside the client timeout.
            Case::LongTail => Some(Fault::LongTail {
                median_ms: 2,
                p99_ms: 20,
            }),
            Case::Http(status) => Some(Fault::HttpError { status }),
            Case::RateLimited => Some(Fault::RateLimited {
                retry_after_secs: 2,
            }),
            Case::Hang => Some(Fault::Hang {
                ms: HANG_MS,
                commit: false,
            }),
            Case::Reset => Some(Fault::Reset),
            Case::CommitThenDrop => Some(Fault::CommitThenDrop),
            Case::GarbledBody => Some(Fault::GarbledBody),
        }
    }

    /// The class the client must report, `None` meaning success.
    fn expected(self, call: Call) -> Option<ErrorClass> {
        let lost_answer = if call.mutating() {
            ErrorClass::UnknownOutcome
        } else {
            ErrorClass::Retryable
        };
        match self {
            Case::NoFault | Case::Latency | Case::LongTail => None,
            Case::Http(_) | Case::RateLimited | Case::Refused => Some(ErrorClass::Retryable),
            Case::Hang | Case::Reset | Case::CommitThenDrop | Case::GarbledBody => {
                Some(lost_answer)
            }
        }
    }
}

const CASES: [Case; 12] = [
    Case::NoFault,
    Case::Latency,
    Case::LongTail,
    Case::Http(500),
    Case::Http(502),
    Case::Http(503),
    Case::RateLimited,
    Case::Hang,
    Case::Reset,
    Case::CommitThenDrop,
    Case::GarbledBody,
    Case::Refused,
];

/// A base URL where nothing listens: bind a port, then free it.
async fn dead_base_url() -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn every_endpoint_classifies_every_fault_as_the_table_says() {
    let fixture = Arc::new(Fixture::start(SandboxConfig::default()).await);
    let dead = client(&dead_base_url().await);
    let mut mismatches = Vec::new();
    for case in CASES {
        // One rule per endpoint, firing once: the calls of a round hit different endpoints, so
        // they run concurrently and the whole table takes about one hang per round.
        let mut plan = FaultPlan::none();
        if let Some(fault) = case.fault() {
            for call in CALLS {
                let n = CALLS.iter().filter(|c| c.path() == call.path()).count();
                if !plan.endpoints.contains_key(call.path()) {
                    plan = plan.on(call.path(), FaultRule::next(n as u32, fault.clone()));
                }
            }
        }
        fixture.sandbox.set_faults(plan).unwrap();
        let mut tasks = JoinSet::new();
        for call in CALLS {
            let f = Arc::clone(&fixture);
            let c = if matches!(case, Case::Refused) {
                dead.clone()
            } else {
                f.client.clone()
            };
            tasks.spawn(async move { (call, call.run(&c, &f).await) });
        }
        while let Some(joined) = tasks.join_next().await {
            let (call, result) = joined.unwrap();
            let got = result.as_ref().err().map(ProviderError::class);
            if got != case.expected(call) {
                mismatches.push(format!(
                    "{call:?} × {case:?}: expected {:?}, got {result:?}",
                    case.expected(call)
                ));
            }
            if let (Case::RateLimited, Err(e)) = (case, &result) {
                assert_eq!(e.retry_after(), Some(Duration::from_secs(2)), "{call:?}");
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[tokio::test]
async fn commit_then_drop_on_companies_create_leaves_the_organization_and_an_unknown_outcome() {
    let sandbox = sandbox::spawn(SandboxConfig::default()).await.unwrap();
    let client = client(&sandbox.base_url);
    sandbox
        .set_faults(FaultPlan::none().on(
            "/website/companies/create/",
            FaultRule::next(1, Fault::CommitThenDrop),
        ))
        .unwrap();
    let request = new_company(10);
    let err = client
        .create_company(&marketplace(), &request)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::UnknownOutcome { .. }),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::UnknownOutcome);
    assert!(!err.is_retryable());

    // The provider has the organization although the client never heard so.
    let ledger = sandbox.ledger();
    let created = ledger.companies_with_corporate_number(&corp(10));
    assert_eq!(created.len(), 1);
    let company_id = created[0].company_id;

    // Reconciliation: the sandbox-only lookup finds it...
    let found = client
        .find_company_by_corporate_number(&marketplace(), &corp(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.company_id, company_id);
    // ...and in production, where no lookup exists, a retried create says it exists.
    let retried = client
        .create_company(&marketplace(), &request)
        .await
        .unwrap_err();
    assert!(
        matches!(&retried, ProviderError::Rejected { kind: RejectionKind::Business, message, .. }
            if message.contains("already exists")),
        "{retried:?}"
    );
    assert_eq!(
        sandbox
            .ledger()
            .companies_with_corporate_number(&corp(10))
            .len(),
        1
    );
}

#[tokio::test]
async fn commit_then_drop_on_payments_charge_leaves_the_payment_and_an_unknown_outcome() {
    let fixture = Fixture::start(SandboxConfig::default()).await;
    fixture
        .sandbox
        .set_faults(FaultPlan::none().on(
            "/billing/payments/charge/",
            FaultRule::next(1, Fault::CommitThenDrop),
        ))
        .unwrap();
    let request = charge_request("tok_approve_order-77", 4990, Some("order-77"));
    let err = fixture
        .client
        .charge(&fixture.vendor, &request)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::UnknownOutcome { .. }),
        "{err:?}"
    );

    let ledger = fixture.sandbox.ledger();
    let charged = ledger.payments_with_unique_identifier("order-77");
    assert_eq!(charged.len(), 1, "exactly one charge for the order");
    assert!(charged[0].valid);
    assert_eq!(charged[0].amount_agorot, 4990);

    // Reconciliation finds it through payments/list, and payments/get confirms it.
    let PaymentLookup::Found(payment) = fixture
        .client
        .find_payment_by_external_identifier(&fixture.vendor, "order-77", day(), day())
        .await
        .unwrap()
    else {
        panic!("the committed payment was not found");
    };
    assert_eq!(payment.id, charged[0].payment_id);
    assert_eq!(payment.amount_agorot, 4990);
    let again = fixture
        .client
        .get_payment(&fixture.vendor, payment.id)
        .await
        .unwrap();
    assert!(again.valid);
    // Blindly retrying with the same single-use token is refused: it was consumed.
    let retried = fixture
        .client
        .charge(&fixture.vendor, &request)
        .await
        .unwrap_err();
    assert_eq!(retried.class(), ErrorClass::Rejected);
    assert_eq!(
        fixture
            .sandbox
            .ledger()
            .payments_with_unique_identifier("order-77")
            .len(),
        1
    );
}

#[tokio::test]
async fn a_hang_after_commit_on_charge_is_an_unknown_outcome_with_the_payment_made() {
    let fixture = Fixture::start(SandboxConfig::default()).await;
    fixture
        .sandbox
        .set_faults(FaultPlan::none().on(
            "/billing/payments/charge/",
            FaultRule::next(
                1,
                Fault::Hang {
                    ms: HANG_MS,
                    commit: true,
                },
            ),
        ))
        .unwrap();
    let err = fixture
        .client
        .charge(
            &fixture.vendor,
            &charge_request("tok_approve_slow", 1000, Some("order-slow")),
        )
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::UnknownOutcome, "{err:?}");
    assert_eq!(
        fixture
            .sandbox
            .ledger()
            .payments_with_unique_identifier("order-slow")
            .len(),
        1
    );
}

#[tokio::test]
async fn without_the_identifier_on_payment_rows_absence_cannot_be_proven() {
    let fixture = Fixture::start(SandboxConfig {
        payments_expose_unique_identifier: false,
        ..SandboxConfig::default()
    })
    .await;
    let lookup = fixture
        .client
        .find_payment_by_external_identifier(&fixture.vendor, "order-none", day(), day())
        .await
        .unwrap();
    assert_eq!(
        lookup,
        PaymentLookup::Indeterminate {
            rows_without_identifier: 1
        }
    );
    // A day without payments proves absence even so.
    let empty_day = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
    let lookup = fixture
        .client
        .find_payment_by_external_identifier(&fixture.vendor, "order-none", empty_day, empty_day)
        .await
        .unwrap();
    assert_eq!(lookup, PaymentLookup::NotFound);
}

#[tokio::test]
async fn a_payment_is_found_by_its_identifier_across_pages() {
    let fixture = Fixture::start(SandboxConfig {
        list_page_size: 2,
        ..SandboxConfig::default()
    })
    .await;
    for i in 0..5 {
        fixture
            .client
            .charge(
                &fixture.vendor,
                &charge_request(
                    &format!("tok_approve_p{i}"),
                    100 + i,
                    Some(&format!("page-{i}")),
                ),
            )
            .await
            .unwrap();
    }
    let PaymentLookup::Found(p) = fixture
        .client
        .find_payment_by_external_identifier(&fixture.vendor, "page-4", day(), day())
        .await
        .unwrap()
    else {
        panic!("not found");
    };
    assert_eq!(p.amount_agorot, 104);
    assert_eq!(
        fixture
            .client
            .find_payment_by_external_identifier(&fixture.vendor, "page-9", day(), day())
            .await
            .unwrap(),
        PaymentLookup::NotFound
    );
}

#[tokio::test]
async fn the_happy_path_returns_typed_answers_with_exact_amounts() {
    let fixture = Fixture::start(SandboxConfig::default()).await;
    let c = &fixture.client;
    let details = c.get_company_details(&fixture.vendor).await.unwrap();
    assert_eq!(details.corporate_number.as_deref(), Some(corp(1).as_str()));
    assert_eq!(details.company_type, Some(2));
    assert_eq!(details.phone.as_deref(), Some("0521234567"));

    // ₪49.90 net plus 18% VAT is ₪58.88 (4990 × 1.18 = 5888.2).
    let mut request = charge_request("tok_approve_happy", 4990, Some("order-1"));
    request.vat_included = false;
    let ChargeOutcome::Approved(approved) = c.charge(&fixture.vendor, &request).await.unwrap()
    else {
        panic!("declined");
    };
    assert_eq!(approved.payment.amount_agorot, 5888);
    assert!(approved.payment.auth_number.is_some());
    assert_eq!(approved.payment.card_last_digits.as_deref(), Some("4242"));
    assert_eq!(approved.document_number, Some(10002));
    let document_id = approved.document_id.unwrap();
    let payment = c
        .get_payment(&fixture.vendor, approved.payment.id)
        .await
        .unwrap();
    assert_eq!(payment, approved.payment);

    let doc = c.get_document(&fixture.vendor, document_id).await.unwrap();
    assert_eq!(
        doc.document_type,
        Some(DocumentType::InvoiceAndReceipt as i64)
    );
    assert_eq!(doc.payments_agorot, 5888);
    assert_eq!(doc.date, Some(day()));
    assert_eq!(doc.lines[0].unit_price_agorot, 4990);
    assert_eq!(doc.lines[0].quantity_thousandths, 1000);

    let issued = c
        .create_document(
            &fixture.vendor,
            &CreateDocument {
                document_type: DocumentType::Receipt,
                payments: vec![
                    DocumentPayment {
                        amount_agorot: 12_345,
                        details: PaymentDetails::BankTransfer {
                            bank_number: 12,
                            branch_number: 571,
                            account_number: "041116".into(),
                            reference: Some("TRX-1".into()),
                        },
                    },
                    DocumentPayment {
                        amount_agorot: 5,
                        details: PaymentDetails::Cash,
                    },
                ],
                items: vec![],
                ..invoice(0)
            },
        )
        .await
        .unwrap();
    assert_eq!(issued.document_number, Some(10001));
    let receipt = c
        .get_document(&fixture.vendor, issued.document_id)
        .await
        .unwrap();
    assert_eq!(receipt.payments_agorot, 12_350);
    let ledger = fixture.sandbox.ledger();
    assert_eq!(
        ledger.document(issued.document_id).unwrap().total_agorot,
        12_350
    );

    assert_eq!(
        c.verify_bank_account(&fixture.vendor, 12, 571, "041117")
            .await
            .unwrap(),
        Some(false)
    );
    assert_eq!(
        c.verify_bank_account(&fixture.vendor, 54, 123, "999999")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_decline_is_a_business_outcome_with_its_code_not_an_error() {
    let fixture = Fixture::start(SandboxConfig::default()).await;
    let outcome = fixture
        .client
        .charge(
            &fixture.vendor,
            &charge_request("tok_decline_006_a", 1000, Some("order-d")),
        )
        .await
        .unwrap();
    let ChargeOutcome::Declined {
        code,
        description,
        payment_id,
    } = outcome
    else {
        panic!("approved");
    };
    assert_eq!(code.as_deref(), Some("006"));
    assert_eq!(description, "(קוד 006)");
    let p = fixture
        .client
        .get_payment(&fixture.vendor, payment_id.unwrap())
        .await
        .unwrap();
    assert!(!p.valid);
    // A lookup finds the decline: the order was answered, and must not be charged again blindly.
    let PaymentLookup::Found(found) = fixture
        .client
        .find_payment_by_external_identifier(&fixture.vendor, "order-d", day(), day())
        .await
        .unwrap()
    else {
        panic!("not found");
    };
    assert!(!found.valid);
}

#[tokio::test]
async fn envelope_errors_are_rejections_with_the_providers_message_in_the_chosen_language() {
    let fixture = Fixture::start(SandboxConfig::default()).await;
    let wrong = Credentials::new(fixture.vendor.company_id, "not-the-key");
    let err = fixture
        .client
        .get_company_details(&wrong)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Rejected { kind: RejectionKind::Business, message, .. }
            if message.contains("Invalid API credentials")),
        "{err:?}"
    );
    let hebrew = SumitClient::new(
        &fixture.sandbox.base_url,
        ClientConfig {
            language: ErrorLanguage::Hebrew,
            ..ClientConfig::default()
        },
    )
    .unwrap();
    let err = hebrew.get_company_details(&wrong).await.unwrap_err();
    assert!(
        err.provider_message().unwrap().contains("שגויים"),
        "{err:?}"
    );
    // The error text never contains the key that was tried.
    assert!(!format!("{err} {err:?}").contains("not-the-key"));

    let err = fixture
        .client
        .charge(
            &fixture.pending_vendor,
            &charge_request("tok_approve_pend", 100, None),
        )
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Rejected);
    assert!(err.provider_message().unwrap().contains("pending"));

    let err = fixture
        .client
        .charge(
            &fixture.vendor,
            &charge_request("tok_technical_x", 100, None),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ProviderError::Rejected {
                kind: RejectionKind::Technical,
                technical: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Rejected);
}

#[tokio::test]
async fn the_corporate_number_lookup_is_unsupported_outside_the_sandbox() {
    let sandbox = sandbox::spawn(SandboxConfig::default()).await.unwrap();
    let production_like = SumitClient::new(&sandbox.base_url, ClientConfig::default()).unwrap();
    let err = production_like
        .find_company_by_corporate_number(&marketplace(), &corp(1))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unsupported { .. }));
    assert_eq!(err.class(), ErrorClass::Fatal);
    assert!(sandbox.ledger().calls.is_empty(), "nothing was sent");
    let client = client(&sandbox.base_url);
    assert_eq!(
        client
            .find_company_by_corporate_number(&marketplace(), &corp(1))
            .await
            .unwrap(),
        None
    );
}

/// https goes through rustls (no OpenSSL): the client loads the system's CA store when built, and
/// a server that answers a TLS handshake in plain HTTP is a retryable connect failure with
/// nothing sent, like any other failed handshake.
#[tokio::test]
async fn https_runs_a_tls_handshake_and_a_failed_one_is_retryable_with_nothing_sent() {
    let sandbox = sandbox::spawn(SandboxConfig::default()).await.unwrap();
    let https = sandbox.base_url.replacen("http://", "https://", 1);
    let err = client(&https)
        .create_company(&marketplace(), &new_company(1))
        .await
        .unwrap_err();
    let ProviderError::Retryable { reason, .. } = &err else {
        panic!("expected a retryable connect failure, got {err:?}");
    };
    assert!(reason.starts_with("could not connect"), "{reason}");
    assert!(sandbox.ledger().calls.is_empty(), "nothing was sent");
}

#[tokio::test]
async fn unexpected_http_statuses_are_fatal_protocol_errors() {
    let sandbox = sandbox::spawn(SandboxConfig::default()).await.unwrap();
    // A base URL with a wrong prefix reaches no endpoint: 404 page.
    let wrong = client(&format!("{}/api", sandbox.base_url));
    let err = wrong.get_company_details(&marketplace()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::Protocol {
                may_have_applied: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Fatal);
    sandbox
        .set_faults(FaultPlan::none().on(
            "/website/companies/create/",
            FaultRule::next(1, Fault::HttpError { status: 504 }),
        ))
        .unwrap();
    let err = client(&sandbox.base_url)
        .create_company(&marketplace(), &new_company(30))
        .await
        .unwrap_err();
    assert_eq!(
        err.class(),
        ErrorClass::UnknownOutcome,
        "a 504 on a write: {err:?}"
    );
}

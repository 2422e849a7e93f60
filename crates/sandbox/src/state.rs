//! The simulated provider: organizations, terminals, customers, payments and documents, and the
//! behaviour of each SUMIT endpoint over them.
//!
//! Everything here is synchronous and runs under the sandbox's mutex; the HTTP layer takes the
//! lock, calls [`World::handle`], and releases it before any await. Each handler validates the
//! whole request before it changes anything, so a refused request leaves no trace but its call
//! record.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use domain::bank::{BankCheck, BankProblem, check_bank_account};
use domain::israeli_id::CorporateNumber;
use domain::money::Agorot;
use domain::phone::PhoneNumber;
use domain::vat::{VatRate, vat_rate_on};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::israel_local;
use crate::config::{SandboxConfig, TerminalApproval};
use crate::faults::FaultEngine;
use crate::i18n::{Lang, Msg};
use crate::ledger::{
    CallRecord, Ledger, LedgerCompany, LedgerCustomer, LedgerDocument, LedgerPayment,
    LedgerTerminal, TerminalState,
};
use crate::wire::{
    FieldError, Reply, agorot_to_json, array, boolean, datetime, enum_name, enum_value,
    enumeration, integer, money, obj, object, scaled, string,
};

/// The SUMIT endpoints the sandbox serves, plus its one lookup extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Endpoint {
    CompaniesCreate,
    CompaniesGetDetails,
    OpenUpayTerminal,
    PaymentsCharge,
    PaymentsGet,
    PaymentsList,
    DocumentsCreate,
    DocumentsGetDetails,
    VerifyBankAccount,
    /// Sandbox-only: find an organization created by the caller by its corporate number.
    FindCompany,
}

pub(crate) const FIND_COMPANY_PATH: &str = "/_sandbox/website/companies/find/";

impl Endpoint {
    pub(crate) const ALL: [Endpoint; 10] = [
        Endpoint::CompaniesCreate,
        Endpoint::CompaniesGetDetails,
        Endpoint::OpenUpayTerminal,
        Endpoint::PaymentsCharge,
        Endpoint::PaymentsGet,
        Endpoint::PaymentsList,
        Endpoint::DocumentsCreate,
        Endpoint::DocumentsGetDetails,
        Endpoint::VerifyBankAccount,
        Endpoint::FindCompany,
    ];

    pub(crate) fn path(self) -> &'static str {
        match self {
            Endpoint::CompaniesCreate => "/website/companies/create/",
            Endpoint::CompaniesGetDetails => "/website/companies/getdetails/",
            Endpoint::OpenUpayTerminal => "/billing/generalbilling/openupayterminal/",
            Endpoint::PaymentsCharge => "/billing/payments/charge/",
            Endpoint::PaymentsGet => "/billing/payments/get/",
            Endpoint::PaymentsList => "/billing/payments/list/",
            Endpoint::DocumentsCreate => "/accounting/documents/create/",
            Endpoint::DocumentsGetDetails => "/accounting/documents/getdetails/",
            Endpoint::VerifyBankAccount => "/accounting/general/verifybankaccount/",
            Endpoint::FindCompany => FIND_COMPANY_PATH,
        }
    }

    /// Paths are matched with or without their trailing slash and without regard to case, as
    /// the real server routes them.
    pub(crate) fn from_path(path: &str) -> Option<Endpoint> {
        let trimmed = path.trim_end_matches('/');
        Endpoint::ALL
            .into_iter()
            .find(|e| e.path().trim_end_matches('/').eq_ignore_ascii_case(trimmed))
    }
}

// Enum tables of the real API (reference §1.3–1.7, S4 enums).
pub(crate) const COMPANY_TYPES: &[(&str, i64)] = &[
    ("CompanyWithVAT", 0),
    ("VATExemptDealer", 1),
    ("LicensedDealer", 2),
    ("Fellowship", 3),
    ("Partnership", 4),
    ("CommunityInterestCompany", 5),
    ("Cooperative", 6),
    ("HouseCommittee", 7),
    ("ElectionGroup", 8),
    ("Party", 9),
    ("SelfEmployed", 10),
    ("PublicTrust", 11),
];
const VAT_EXEMPT_DEALER: i64 = 1;

pub(crate) const APPLICATIONS: &[(&str, i64)] = &[
    ("CreditCard", 0),
    ("DirectDebit", 1),
    ("RecurringBilling", 2),
    ("PurchasePages", 3),
    ("CRM", 4),
    ("EmailSubscriptions", 5),
    ("SMS", 6),
    ("Accounting", 7),
    ("Expenses", 8),
    ("Cheques", 9),
    ("PayPal", 10),
    ("TaskManagement", 11),
    ("TimeClock", 12),
    ("TimeRecorder", 13),
    ("BusinessCard", 14),
    ("Calendar", 16),
    ("Fax", 17),
    ("AccountingHashExport", 18),
];
const APP_CREDIT_CARD: i64 = 0;
const APP_ACCOUNTING: i64 = 7;

pub(crate) const DOCUMENT_TYPES: &[(&str, i64)] = &[
    ("Invoice", 0),
    ("InvoiceAndReceipt", 1),
    ("Receipt", 2),
    ("ProformaInvoice", 3),
    ("Proforma", 3),
    ("DonationReceipt", 4),
    ("CreditInvoice", 5),
    ("CreditInvoiceAndReceipt", 6),
    ("CreditReceipt", 7),
    ("Order", 8),
    ("DeliveryNote", 9),
    ("GoodsReturnNote", 10),
    ("PurchasingOrder", 11),
    ("PriceQuotation", 12),
    ("PaymentRequest", 13),
];
const DOC_INVOICE_AND_RECEIPT: i64 = 1;
const DOC_RECEIPT: i64 = 2;
const DOC_CREDIT_INVOICE_AND_RECEIPT: i64 = 6;
const DOC_ORDER: i64 = 8;

/// Document types whose total is what was received (receipts): their payments are required and
/// their total is the sum of the payments.
fn is_receipt_only(t: i64) -> bool {
    matches!(t, 2 | 4 | 7)
}

/// Tax invoice-receipts: items make the total and the payments must match it.
fn is_invoice_receipt(t: i64) -> bool {
    matches!(t, 1 | 6)
}

pub(crate) const LANGUAGES: &[(&str, i64)] =
    &[("Hebrew", 0), ("English", 1), ("Arabic", 2), ("Spanish", 3)];

/// The currency enum of documents and items; the sandbox books only ILS, but it recognises the
/// common codes so that a non-ILS request gets an explicit refusal rather than a parse error.
pub(crate) const CURRENCIES: &[(&str, i64)] = &[
    ("ILS", 0),
    ("USD", 1),
    ("EUR", 2),
    ("CAD", 3),
    ("CHF", 4),
    ("GBP", 5),
    ("AUD", 6),
    ("JPY", 8),
];
const ILS: i64 = 0;

pub(crate) const SEARCH_MODES: &[(&str, i64)] = &[
    ("Automatic", 0),
    ("None", 1),
    ("ExternalIdentifier", 2),
    ("Name", 3),
    ("CompanyNumber", 4),
    ("Phone", 5),
    ("EmailAddress", 6),
];

/// Upay programs: S5 gives the names, S4 numbers them 1–4 (reference §1.4).
pub(crate) const PROGRAMS: &[(&str, i64)] = &[
    ("OFFICEGUYNEW10", 1),
    ("UPAYTRANSACTION", 2),
    ("OFFICEGUYNEWMONTHLY10", 3),
    ("OFFICEGUYMONTHLYNEW10", 4),
];

/// The magic single-use tokens (docs/sandbox.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MagicToken {
    Approve,
    Decline(String),
    Technical,
}

pub(crate) fn parse_magic_token(token: &str) -> Option<MagicToken> {
    if token.starts_with("tok_approve") {
        Some(MagicToken::Approve)
    } else if let Some(rest) = token.strip_prefix("tok_decline") {
        let code = rest
            .strip_prefix('_')
            .and_then(|r| r.split('_').next())
            .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or("006");
        Some(MagicToken::Decline(code.to_string()))
    } else if token.starts_with("tok_technical") {
        Some(MagicToken::Technical)
    } else {
        None
    }
}

#[derive(Serialize, Deserialize)]
struct CompanyRec {
    id: i64,
    created_by: Option<i64>,
    name: String,
    corporate_number: Option<String>,
    company_type: i64,
    email: Option<String>,
    phone: Option<String>,
    address: Option<String>,
    country: Option<String>,
    english_name: Option<String>,
    website: Option<String>,
    applications: Vec<i64>,
    api_key: String,
    api_public_key: String,
    created_at: NaiveDateTime,
}

#[derive(PartialEq, Eq, Serialize, Deserialize)]
struct BankDetails {
    bank: i64,
    branch: i64,
    account: String,
    program: i64,
}

#[derive(Serialize, Deserialize)]
struct TerminalRec {
    company_id: i64,
    state: TerminalState,
    details: BankDetails,
    requests: u32,
    requested_at: NaiveDateTime,
    /// When the latest request arrived, for the approval delay; not saved: a restored terminal
    /// takes it from `requested_at` (see [`World::restore`]).
    #[serde(skip, default = "Instant::now")]
    requested_instant: Instant,
    decided_at: Option<NaiveDateTime>,
    rejection_reason: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct CustomerRec {
    id: i64,
    company_id: i64,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    external_identifier: Option<String>,
    company_number: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct PaymentRec {
    id: i64,
    company_id: i64,
    customer_id: i64,
    date: NaiveDateTime,
    valid: bool,
    status_code: String,
    status_description: String,
    amount: i64,
    vat: i64,
    vat_rate_bp: i64,
    vat_included: bool,
    auth_number: Option<String>,
    captured: bool,
    payments_count: i64,
    first_amount: i64,
    non_first_amount: i64,
    card_token: String,
    expiration_year: i32,
    unique_identifier: Option<String>,
    document_id: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct LineRec {
    name: Option<String>,
    sku: Option<String>,
    description: Option<String>,
    quantity_milli: i64,
    unit_price: i64,
    total: i64,
}

#[derive(Serialize, Deserialize)]
struct DocumentRec {
    id: i64,
    company_id: i64,
    doc_type: i64,
    number: Option<i64>,
    is_draft: bool,
    date: NaiveDate,
    customer_id: i64,
    language: i64,
    lines: Vec<LineRec>,
    payment_lines: Vec<Value>,
    payments_total: i64,
    total: i64,
    vat: i64,
    vat_rate_bp: i64,
    vat_included: bool,
    description: Option<String>,
    payment_id: Option<i64>,
    original_document_id: Option<i64>,
}

/// Why a control call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no terminal was requested for company {0}")]
    NoSuchTerminal(i64),
    #[error("no company {0}")]
    NoSuchCompany(i64),
}

/// The full keys of an organization, for tests that play an operator entering lost keys. Its
/// Debug output hides them.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompanyKeys {
    pub company_id: i64,
    pub api_key: String,
    pub api_public_key: String,
}

impl std::fmt::Debug for CompanyKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompanyKeys")
            .field("company_id", &self.company_id)
            .field("api_key", &"[REDACTED]")
            .field("api_public_key", &"[REDACTED]")
            .finish()
    }
}

/// What the HTTP layer needs to know about a handled request.
pub(crate) struct Handled {
    pub(crate) reply: Reply,
    pub(crate) company_id: Option<i64>,
    pub(crate) committed: bool,
}

/// Everything the simulated provider remembers: its organizations with their keys, terminals,
/// customers, payments, documents, the id counters and the call ledger. This is what a state
/// file holds (docs/sandbox.md, "State across restarts"); the configuration, the fault plan, the
/// clock and the random generator are not in it: they come from the configuration at each start.
#[derive(Serialize, Deserialize)]
pub(crate) struct Books {
    companies: BTreeMap<i64, CompanyRec>,
    terminals: BTreeMap<i64, TerminalRec>,
    customers: BTreeMap<i64, CustomerRec>,
    payments: BTreeMap<i64, PaymentRec>,
    documents: BTreeMap<i64, DocumentRec>,
    /// The next number by (organization, document type).
    #[serde(with = "as_pairs")]
    document_numbers: BTreeMap<(i64, i64), i64>,
    used_tokens: BTreeSet<String>,
    /// Answers of charges by (organization, `UniqueIdentifier`), replayed when
    /// `charge_unique_identifier` is on.
    #[serde(with = "as_pairs")]
    stored_charges: BTreeMap<(i64, String), Reply>,
    calls: Vec<CallRecord>,
    next_company_id: i64,
    next_customer_id: i64,
    next_payment_id: i64,
    next_document_id: i64,
}

impl Books {
    /// A provider that has done nothing yet.
    fn empty() -> Books {
        Books {
            companies: BTreeMap::new(),
            terminals: BTreeMap::new(),
            customers: BTreeMap::new(),
            payments: BTreeMap::new(),
            documents: BTreeMap::new(),
            document_numbers: BTreeMap::new(),
            used_tokens: BTreeSet::new(),
            stored_charges: BTreeMap::new(),
            calls: Vec::new(),
            // Raised to `first_company_id` by `World::restore`.
            next_company_id: 0,
            next_customer_id: 7_000_001,
            next_payment_id: 50_000_001,
            next_document_id: 90_000_001,
        }
    }
}

/// Maps whose keys are not strings, saved as a JSON list of `[key, value]` pairs.
mod as_pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map)
    }

    pub(super) fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

pub(crate) struct World {
    config: SandboxConfig,
    clock: Option<NaiveDateTime>,
    rng: StdRng,
    books: Books,
    /// How many times the books were loaded from a state file; mixed into the generator's seed
    /// so that a restarted sandbox does not mint the keys it minted before.
    starts: u64,
    /// Counts changes to the books that must be saved before the answer goes out (everything
    /// but the call ledger, which is saved along with them).
    changes: u64,
    pub(crate) faults: FaultEngine,
}

/// A zero rate, for exempt dealers, `NoVAT` customers and receipts.
const NO_VAT: VatRate = match VatRate::from_basis_points(0) {
    Some(rate) => rate,
    None => panic!("0 basis points is a valid VAT rate"),
};

/// The first document number of each organization and type.
const FIRST_DOCUMENT_NUMBER: i64 = 10_001;

impl World {
    pub(crate) fn new(config: SandboxConfig) -> World {
        World::restore(config, Books::empty(), 0)
    }

    /// A world on books saved by an earlier sandbox, started for the `starts`-th time. The
    /// configuration decides what is not in the books (faults, clock, seed); the marketplace
    /// organization takes the configured APIKey; and the next organization id is the larger of
    /// the saved counter and `first_company_id`, so an id is never handed out twice.
    pub(crate) fn restore(config: SandboxConfig, books: Books, starts: u64) -> World {
        let seed = config
            .seed
            .wrapping_add(1)
            .wrapping_add(starts.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut world = World {
            clock: config.clock,
            rng: StdRng::seed_from_u64(seed),
            books,
            starts,
            changes: 0,
            faults: FaultEngine::new(config.seed, config.faults.clone()),
            config,
        };
        world.books.next_company_id = world
            .books
            .next_company_id
            .max(world.config.first_company_id)
            .max(world.config.marketplace_company_id + 1);
        let now = world.now();
        // A pending terminal's approval delay counts from its request, as far as the provider's
        // clock can tell (a frozen clock makes it start again).
        let since = |requested_at: NaiveDateTime| (now - requested_at).to_std().unwrap_or_default();
        let started = Instant::now();
        for t in world.books.terminals.values_mut() {
            t.requested_instant = started
                .checked_sub(since(t.requested_at))
                .unwrap_or(started);
        }
        let key = world.config.marketplace_api_key.clone();
        if let Some(marketplace) = world
            .books
            .companies
            .get_mut(&world.config.marketplace_company_id)
        {
            marketplace.api_key = key;
        } else {
            let marketplace = CompanyRec {
                id: world.config.marketplace_company_id,
                created_by: None,
                name: "Sandbox Marketplace".into(),
                corporate_number: None,
                company_type: 0,
                email: Some("marketplace@sandbox.invalid".into()),
                phone: None,
                address: None,
                country: Some("Israel".into()),
                english_name: Some("Sandbox Marketplace".into()),
                website: None,
                applications: vec![APP_CREDIT_CARD, APP_ACCOUNTING],
                api_key: key,
                api_public_key: world.mint_public_key(),
                created_at: now,
            };
            world.books.companies.insert(marketplace.id, marketplace);
        }
        world
    }

    /// Back to the state at start: the marketplace alone, the configured faults and clock.
    /// Keys minted after a reset still differ from those of the sandbox's earlier starts.
    pub(crate) fn reset(&mut self) {
        let changes = self.changes + 1;
        *self = World::restore(self.config.clone(), Books::empty(), self.starts);
        self.changes = changes;
    }

    /// What a state file holds.
    pub(crate) fn books(&self) -> &Books {
        &self.books
    }

    /// How many times the books were loaded before (0 for a sandbox that started empty).
    pub(crate) fn starts(&self) -> u64 {
        self.starts
    }

    /// A number that grows with every change to the books that must be saved.
    pub(crate) fn changes(&self) -> u64 {
        self.changes
    }

    pub(crate) fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The provider's local time, in whole seconds: dates go on the wire without a fraction,
    /// and a range ending at `23:59:59` must not miss a payment made at `23:59:59.7`.
    pub(crate) fn now(&self) -> NaiveDateTime {
        let now = self.clock.unwrap_or_else(|| israel_local(Utc::now()));
        now.with_nanosecond(0).unwrap_or(now)
    }

    pub(crate) fn clock(&self) -> Option<NaiveDateTime> {
        self.clock
    }

    pub(crate) fn set_clock(&mut self, clock: Option<NaiveDateTime>) {
        self.clock = clock;
    }

    pub(crate) fn record_call(&mut self, mut record: CallRecord) {
        record.seq = self.books.calls.len() as u64 + 1;
        self.books.calls.push(record);
    }

    // ---- control --------------------------------------------------------------------------

    pub(crate) fn decide_terminal(
        &mut self,
        company_id: i64,
        approve: bool,
        reason: Option<String>,
    ) -> Result<(), ControlError> {
        let now = self.now();
        let t = self
            .books
            .terminals
            .get_mut(&company_id)
            .ok_or(ControlError::NoSuchTerminal(company_id))?;
        t.state = if approve {
            TerminalState::Approved
        } else {
            TerminalState::Rejected
        };
        t.decided_at = Some(now);
        t.rejection_reason = if approve { None } else { reason };
        self.changes += 1;
        Ok(())
    }

    pub(crate) fn company_keys(&self, company_id: i64) -> Result<CompanyKeys, ControlError> {
        let c = self
            .books
            .companies
            .get(&company_id)
            .ok_or(ControlError::NoSuchCompany(company_id))?;
        Ok(CompanyKeys {
            company_id,
            api_key: c.api_key.clone(),
            api_public_key: c.api_public_key.clone(),
        })
    }

    /// Pending terminals whose approval delay has passed become approved. Evaluated lazily on
    /// every request and snapshot, so no background task is needed.
    /// Under `Immediate`, a terminal still pending (one restored from a state file written
    /// under another policy) is approved at once.
    fn refresh_terminals(&mut self) {
        let delay = match self.config.terminal_approval {
            TerminalApproval::Manual => return,
            TerminalApproval::Immediate => std::time::Duration::ZERO,
            TerminalApproval::AfterDelay(delay) => delay,
        };
        let now = self.now();
        for t in self.books.terminals.values_mut() {
            if t.state == TerminalState::Pending && t.requested_instant.elapsed() >= delay {
                t.state = TerminalState::Approved;
                t.decided_at = Some(now);
                self.changes += 1;
            }
        }
    }

    pub(crate) fn ledger(&mut self) -> Ledger {
        self.refresh_terminals();
        Ledger {
            companies: self
                .books
                .companies
                .values()
                .map(|c| LedgerCompany {
                    company_id: c.id,
                    created_by: c.created_by,
                    name: c.name.clone(),
                    corporate_number: c.corporate_number.clone(),
                    company_type: c.company_type,
                    email_address: c.email.clone(),
                    phone: c.phone.clone(),
                    applications: c
                        .applications
                        .iter()
                        .map(|a| enum_name(APPLICATIONS, *a).to_string())
                        .collect(),
                    api_key_last4: last_chars(&c.api_key, 4),
                    created_at: c.created_at,
                })
                .collect(),
            terminals: self
                .books
                .terminals
                .values()
                .map(|t| LedgerTerminal {
                    company_id: t.company_id,
                    state: t.state,
                    bank_code: t.details.bank,
                    branch_code: t.details.branch,
                    account_last3: last_chars(&t.details.account, 3),
                    program: enum_name(PROGRAMS, t.details.program).to_string(),
                    requests: t.requests,
                    requested_at: t.requested_at,
                    decided_at: t.decided_at,
                    rejection_reason: t.rejection_reason.clone(),
                })
                .collect(),
            customers: self
                .books
                .customers
                .values()
                .map(|c| LedgerCustomer {
                    customer_id: c.id,
                    company_id: c.company_id,
                    name: c.name.clone(),
                    email_address: c.email.clone(),
                    external_identifier: c.external_identifier.clone(),
                    company_number: c.company_number.clone(),
                })
                .collect(),
            payments: self
                .books
                .payments
                .values()
                .map(|p| LedgerPayment {
                    payment_id: p.id,
                    company_id: p.company_id,
                    customer_id: p.customer_id,
                    date: p.date,
                    valid: p.valid,
                    status_code: p.status_code.clone(),
                    status_description: p.status_description.clone(),
                    amount_agorot: p.amount,
                    vat_agorot: p.vat,
                    vat_rate_bp: p.vat_rate_bp,
                    vat_included: p.vat_included,
                    auth_number: p.auth_number.clone(),
                    captured: p.captured,
                    payments_count: p.payments_count,
                    unique_identifier: p.unique_identifier.clone(),
                    document_id: p.document_id,
                })
                .collect(),
            documents: self
                .books
                .documents
                .values()
                .map(|d| LedgerDocument {
                    document_id: d.id,
                    company_id: d.company_id,
                    document_type: d.doc_type,
                    document_type_name: enum_name(DOCUMENT_TYPES, d.doc_type).to_string(),
                    document_number: d.number,
                    is_draft: d.is_draft,
                    date: d.date,
                    customer_id: d.customer_id,
                    total_agorot: d.total,
                    vat_agorot: d.vat,
                    vat_rate_bp: d.vat_rate_bp,
                    vat_included: d.vat_included,
                    description: d.description.clone(),
                    payment_id: d.payment_id,
                    original_document_id: d.original_document_id,
                    payments_agorot: d.payments_total,
                })
                .collect(),
            calls: self.books.calls.clone(),
        }
    }

    // ---- requests -------------------------------------------------------------------------

    /// Handles one SUMIT request. `base_url` is where the caller reached us, for download links.
    pub(crate) fn handle(
        &mut self,
        endpoint: Endpoint,
        body: &Value,
        lang: Lang,
        base_url: &str,
    ) -> Handled {
        self.refresh_terminals();
        let caller = match self.authenticate(body, lang) {
            Ok(id) => id,
            Err(reply) => {
                return Handled {
                    reply,
                    company_id: None,
                    committed: false,
                };
            }
        };
        let result = match endpoint {
            Endpoint::CompaniesCreate => self.companies_create(caller, body, lang),
            Endpoint::CompaniesGetDetails => self.companies_getdetails(caller),
            Endpoint::FindCompany => self.find_company(caller, body, lang),
            Endpoint::OpenUpayTerminal => self.open_upay_terminal(caller, body, lang),
            Endpoint::PaymentsCharge => self.charge(caller, body, lang, base_url),
            Endpoint::PaymentsGet => self.payments_get(caller, body, lang),
            Endpoint::PaymentsList => self.payments_list(caller, body, lang),
            Endpoint::DocumentsCreate => self.documents_create(caller, body, lang, base_url),
            Endpoint::DocumentsGetDetails => {
                self.documents_getdetails(caller, body, lang, base_url)
            }
            Endpoint::VerifyBankAccount => self.verify_bank_account(body, lang),
        };
        let reply = result.unwrap_or_else(|r| r);
        let mutating = matches!(
            endpoint,
            Endpoint::CompaniesCreate
                | Endpoint::OpenUpayTerminal
                | Endpoint::PaymentsCharge
                | Endpoint::DocumentsCreate
        );
        let committed = mutating && reply.status == 0;
        if committed {
            self.changes += 1;
        }
        Handled {
            committed,
            reply,
            company_id: Some(caller),
        }
    }

    fn authenticate(&self, body: &Value, lang: Lang) -> Result<i64, Reply> {
        let fe = |e: FieldError| Reply::field_error(lang, &e);
        let creds = object(body, "Credentials")
            .map_err(fe)?
            .ok_or_else(|| Reply::business(lang, Msg::MissingCredentials))?;
        let company_id = integer(creds, "CompanyID")
            .map_err(fe)?
            .ok_or_else(|| Reply::business(lang, Msg::MissingCredentials))?;
        let Some(key) = string(creds, "APIKey").map_err(fe)? else {
            // The public key authenticates only browser-side tokenization (reference §1.1).
            return Err(if string(creds, "APIPublicKey").map_err(fe)?.is_some() {
                Reply::business(lang, Msg::PublicKeyNotAllowed)
            } else {
                Reply::business(lang, Msg::MissingCredentials)
            });
        };
        match self.books.companies.get(&company_id) {
            Some(c) if c.api_key == key => Ok(company_id),
            _ => Err(Reply::business(lang, Msg::InvalidCredentials)),
        }
    }

    fn require_application(&self, company_id: i64, app: i64, lang: Lang) -> Result<(), Reply> {
        let installed = self
            .books
            .companies
            .get(&company_id)
            .is_some_and(|c| c.applications.contains(&app));
        if installed {
            Ok(())
        } else {
            Err(Reply::business(
                lang,
                Msg::ApplicationNotInstalled(enum_name(APPLICATIONS, app)),
            ))
        }
    }

    fn companies_create(&mut self, caller: i64, body: &Value, lang: Lang) -> Result<Reply, Reply> {
        let fe = |e: FieldError| Reply::field_error(lang, &e);
        let company = object(body, "Company")
            .map_err(fe)?
            .ok_or_else(|| fe(FieldError::missing("Company")))?;
        let name = string(company, "Name")
            .map_err(fe)?
            .ok_or_else(|| fe(FieldError::missing("Company.Name")))?;
        let raw_number = string(company, "CorporateNumber")
            .map_err(fe)?
            .ok_or_else(|| fe(FieldError::missing("Company.CorporateNumber")))?;
        let corporate_number = CorporateNumber::parse(&raw_number)
            .map_err(|_| Reply::business(lang, Msg::InvalidCorporateNumber))?
            .as_str()
            .to_string();
        let company_type = enumeration(company, "CompanyType", COMPANY_TYPES)
            .map_err(fe)?
            .unwrap_or(0);
        let email = string(company, "EmailAddress").map_err(fe)?;
        if email.as_deref().is_some_and(|e| !e.contains('@')) {
            return Err(fe(FieldError::invalid("Company.EmailAddress")));
        }
        let phone = match string(company, "Phone").map_err(fe)? {
            None => None,
            Some(p) => Some(
                PhoneNumber::parse(&p)
                    .map_err(|_| fe(FieldError::invalid("Company.Phone")))?
                    .national(),
            ),
        };
        let mut applications = Vec::new();
        for app in array(body, "Applications")
            .map_err(fe)?
            .into_iter()
            .flatten()
        {
            let app = enum_value(app, APPLICATIONS)
                .ok_or_else(|| fe(FieldError::invalid("Applications")))?;
            if !applications.contains(&app) {
                applications.push(app);
            }
        }
        let user = object(body, "User").map_err(fe)?;
        if let Some(user) = user
            && string(user, "EmailAddress").map_err(fe)?.is_none()
        {
            return Err(fe(FieldError::missing("User.EmailAddress")));
        }
        if let Some(user) = user {
            boolean(user, "SkipActivation").map_err(fe)?;
        }
        boolean(body, "HideFromCompaniesList").map_err(fe)?;
        // Reference §1.3 [T]: the corporate number is unique across SUMIT.
        if self
            .books
            .companies
            .values()
            .any(|c| c.corporate_number.as_deref() == Some(corporate_number.as_str()))
        {
            return Err(Reply::business(lang, Msg::DuplicateCorporateNumber));
        }

        let id = self.books.next_company_id;
        self.books.next_company_id += 1;
        let api_key = self.mint_api_key();
        let api_public_key = self.mint_public_key();
        let user_password = user.map(|u| {
            string(u, "Password")
                .ok()
                .flatten()
                .unwrap_or_else(|| self.mint_password())
        });
        let now = self.now();
        self.books.companies.insert(
            id,
            CompanyRec {
                id,
                created_by: Some(caller),
                name,
                corporate_number: Some(corporate_number),
                company_type,
                email,
                phone,
                address: string(company, "Address").ok().flatten(),
                country: string(company, "Country").ok().flatten(),
                english_name: string(company, "English_Name").ok().flatten(),
                website: string(company, "Website").ok().flatten(),
                applications,
                api_key: api_key.clone(),
                api_public_key: api_public_key.clone(),
                created_at: now,
            },
        );
        Ok(Reply::ok(json!({
            "CompanyID": id,
            "APIKey": api_key,
            "APIPublicKey": api_public_key,
            "UserPassword": user_password,
            "UserEncryptedPassword": user_password.as_ref().map(|_| "sandbox-encrypted"),
        })))
    }

    fn companies_getdetails(&self, caller: i64) -> Result<Reply, Reply> {
        let c = &self.books.companies[&caller];
        Ok(Reply::ok(json!({
            "Company": {
                "Name": c.name,
                "EmailAddress": c.email,
                "Country": c.country,
                "Address": c.address,
                "Phone": c.phone,
                "Fax": null,
                "Title": null,
                "CorporateNumber": c.corporate_number,
                "English_Name": c.english_name,
                "English_Address": null,
                "English_Country": null,
                "English_Phone": null,
                "English_Fax": null,
                "English_Title": null,
                "CompanyType": c.company_type,
                "Logo": null,
                "Website": c.website,
            }
        })))
    }

    /// Sandbox-only: organizations the caller created, by corporate number. Keys are not
    /// returned; they come back only once, from `companies/create`.
    fn find_company(&self, caller: i64, body: &Value, lang: Lang) -> Result<Reply, Reply> {
        let fe = |e: FieldError| Reply::field_error(lang, &e);
        let raw = string(body, "CorporateNumber")
            .map_err(fe)?
            .ok_or_else(|| fe(FieldError::missing("CorporateNumber")))?;
        let wanted = CorporateNumber::parse(&raw)
            .map(|c| c.as_str().to_string())
            .unwrap_or(raw);
        let found = self.books.companies.values().find(|c| {
            c.created_by == Some(caller) && c.corporate_number.as_deref() == Some(wanted.as_str())
        });
        Ok(Reply::ok(json!({
            "Company": found.map(|c| json!({
                "CompanyID": c.id,
                "Name": c.name,
                "CorporateNumber": c.corporate_number,
                "CompanyType": c.company_type,
            })),
        })))
    }

    fn open_upay_terminal(
        &mut self,
        caller: i64,
        body: &Value,
        lang: Lang,
    ) -> Result<Reply, Reply> {
        let fe = |e: FieldError| Reply::field_error(lang, &e);
        self.require_application(caller, APP_CREDIT_CARD, lang)?;
        let bank = integer(body, "BankCode")
            .map_err(fe)?
            .ok_or_else(|| fe(FieldError::missing("BankCode")))?;
        let branch = integer(body, "BranchCode")
            .map_err(fe)?
            .ok_or_else(|| fe(FieldError::missing("BranchCode")))?;
        let account = string(body, "AccountNumber")
            .map_err(fe)?
            .ok_or_else(|| fe(FieldError::missing("AccountNumber")))?;
        let program = enumeration(body, "Program", PROGRAMS)
            .map_err(fe)?
            .unwrap_or(1);
        for flag in [
            "DailyCredit",
            "DisablePaymentsCredit",
            "EnableAmericanExpressDiners",
            "EnableBilling",
        ] {
            boolean(body, flag).map_err(fe)?;
        }
        string(body, "EmailAddress").map_err(fe)?;
        let (Ok(bank16), Ok(branch16)) = (u16::try_from(bank), u16::try_from(branch)) else {
            return Err(Reply::business(lang, Msg::InvalidBankAccount));
        };
        if check_bank_account(bank16, branch16, &account).is_err() {
            return Err(Reply::business(lang, Msg::InvalidBankAccount));
        }
        let details = BankDetails {
            bank,
            branch,
            account,
            program,
        };
        let now = self.now();
        let immediate = self.config.terminal_approval == TerminalApproval::Immediate;
        match self.books.terminals.get_mut(&caller) {
            Some(t) if t.state == TerminalState::Approved => {
                return Err(Reply::business(lang, Msg::TerminalAlreadyActive));
            }
            // The same request again while it is pending changes nothing: Upay already has it.
            Some(t) if t.state == TerminalState::Pending && t.details == details => {
                t.requests += 1;
            }
            Some(t) => {
                t.details = details;
                t.state = TerminalState::Pending;
                t.requests += 1;
                t.requested_at = now;
                t.requested_instant = Instant::now();
                t.decided_at = None;
                t.rejection_reason = None;
            }
            None => {
                self.books.terminals.insert(
                    caller,
                    TerminalRec {
                        company_id: caller,
                        state: TerminalState::Pending,
                        details,
                        requests: 1,
                        requested_at: now,
                        requested_instant: Instant::now(),
                        decided_at: None,
                        rejection_reason: None,
                    },
                );
            }
        }
        if immediate && let Some(t) = self.books.terminals.get_mut(&caller) {
            t.state = TerminalState::Approved;
            t.decided_at = Some(now);
        }
        Ok(Reply::ok(json!({})))
    }

    fn charge(
        &mut self,
        caller: i64,
        body: &Value,
        lang: Lang,
        base_url: &str,
    ) -> Result<Reply, Reply> {
        let fe = |e: FieldError| Reply::field_error(lang, &e);
        self.require_application(caller, APP_CREDIT_CARD, lang)?;
        let unique_identifier = string(body, "UniqueIdentifier").map_err(fe)?;
        // Reference §7.5: when the switch is on, a known UniqueIdentifier replays the stored
        // answer before anything else is looked at, as the gateway's duplicate guard does.
        if self.config.charge_unique_identifier
            && let Some(uid) = &unique_identifier
            && let Some(stored) = self.books.stored_charges.get(&(caller, uid.clone()))
        {
            return Ok(stored.clone());
        }
        match self.books.terminals.get(&caller).map(|t| t.state) {
            None => return Err(Reply::business(lang, Msg::NoTerminal)),
            Some(TerminalState::Pending) => {
                return Err(Reply::business(lang, Msg::TerminalPending));
            }
            Some(TerminalState::Rejected) => {
                return Err(Reply::business(lang, Msg::TerminalRejected));
            }
            Some(TerminalState::Approved) => {}
        }
        let customer = object(body, "Customer")
            .map_err(fe)?
            .ok_or_else(|| fe(FieldError::missing("Customer")))?;
        let customer = parse_customer(customer).map_err(fe)?;
        let lines = parse_lines(body, true).map_err(|e| Reply::business(lang, e))?;
        let vat_included = boolean(body, "VATIncluded").map_err(fe)?.unwrap_or(false);
        let vat_rate_override = scaled(body, "VATRate", 2).map_err(fe)?;
        let payments_count = integer(body, "Payments_Count").map_err(fe)?.unwrap_or(1);
        if payments_count < 1 {
            return Err(fe(FieldError::invalid("Payments_Count")));
        }
        let authorise_only = boolean(body, "AuthoriseOnly").map_err(fe)?.unwrap_or(false);
        let auto_capture = boolean(body, "AutoCapture").map_err(fe)?.unwrap_or(true);
        let support_credit = boolean(body, "SupportCredit").map_err(fe)?.unwrap_or(false);
        let draft_document = boolean(body, "DraftDocument").map_err(fe)?.unwrap_or(false);
        let requested_type = enumeration(body, "DocumentType", DOCUMENT_TYPES).map_err(fe)?;
        let language = enumeration(body, "DocumentLanguage", LANGUAGES)
            .map_err(fe)?
            .unwrap_or(0);
        let description = string(body, "DocumentDescription").map_err(fe)?;
        for flag in [
            "SendDocumentByEmail",
            "UpdateCustomerByEmail",
            "SendCopyToOrganization",
            "PreventDocumentCreation",
        ] {
            boolean(body, flag).map_err(fe)?;
        }
        let token = string(body, "SingleUseToken")
            .map_err(fe)?
            .ok_or_else(|| Reply::business(lang, Msg::MissingPaymentMethod))?;
        let magic =
            parse_magic_token(&token).ok_or_else(|| Reply::business(lang, Msg::InvalidToken))?;
        if self.books.used_tokens.contains(&token) {
            return Err(Reply::business(lang, Msg::TokenAlreadyUsed));
        }
        if magic == MagicToken::Technical {
            // Nothing is recorded and the token is not consumed: the failure happened before the
            // card was charged.
            return Err(Reply::technical(
                lang,
                Msg::GatewayFailure,
                "Sandbox: simulated gateway failure (tok_technical token).",
            ));
        }
        let now = self.now();
        let rate = self.vat_rate_for(caller, now.date(), vat_rate_override, customer.no_vat);
        let totals = compute_totals(&lines, vat_included, rate)
            .ok_or_else(|| fe(FieldError::invalid("Items.UnitPrice")))?;
        if totals.total < 0 && !support_credit {
            return Err(Reply::business(lang, Msg::NegativeTotal));
        }
        if totals.total == 0 {
            return Err(fe(FieldError::invalid("Items.UnitPrice")));
        }
        let customer_id = self
            .find_customer(caller, &customer)
            .map_err(|m| Reply::business(lang, m))?;
        if customer_id.is_none() && customer.name.is_none() {
            return Err(fe(FieldError::missing("Customer.Name")));
        }

        // Validation is over; from here on the charge happens.
        self.books.used_tokens.insert(token);
        let customer_id = match customer_id {
            Some(id) => id,
            None => self.create_customer(caller, &customer),
        };
        let payment_id = self.books.next_payment_id;
        self.books.next_payment_id += 1;
        let (valid, code, status_description) = match &magic {
            MagicToken::Decline(code) => (false, code.clone(), format!(" (קוד {code})")),
            _ => (true, "000".to_string(), "מאושר (קוד 000)".to_string()),
        };
        let auth_number = valid.then(|| format!("{:07}", self.rng.random_range(0..10_000_000u32)));
        let non_first = totals.total / payments_count;
        let first = totals.total - non_first * (payments_count - 1);
        let card_token = self.mint_uuid();
        let captured = valid && !authorise_only && auto_capture;
        let mut payment = PaymentRec {
            id: payment_id,
            company_id: caller,
            customer_id,
            date: now,
            valid,
            status_code: code,
            status_description,
            amount: totals.total,
            vat: totals.vat,
            vat_rate_bp: i64::from(rate.basis_points()),
            vat_included,
            auth_number,
            captured,
            payments_count,
            first_amount: first,
            non_first_amount: non_first,
            card_token,
            expiration_year: now.year() + 3,
            unique_identifier: unique_identifier.clone(),
            document_id: None,
        };
        let mut document = None;
        if valid {
            let company_default = if self.books.companies[&caller].company_type == VAT_EXEMPT_DEALER
            {
                DOC_RECEIPT
            } else {
                DOC_INVOICE_AND_RECEIPT
            };
            let doc_type = match requested_type {
                Some(t) => t,
                None if totals.total < 0 => DOC_CREDIT_INVOICE_AND_RECEIPT,
                // Reference §7.4: an authorization without capture issues an Order.
                None if !auto_capture => DOC_ORDER,
                None => company_default,
            };
            let is_draft = authorise_only || draft_document;
            let card_line = json!({
                "Amount": agorot_to_json(totals.total),
                "Details_CreditCard": {"CardBrand": null, "Last4Digits": "4242"},
            });
            let id = self.issue_document(DocumentRec {
                id: 0,
                company_id: caller,
                doc_type,
                number: None,
                is_draft,
                date: now.date(),
                customer_id,
                language,
                lines,
                payment_lines: vec![card_line],
                payments_total: totals.total,
                total: totals.total,
                vat: totals.vat,
                vat_rate_bp: i64::from(rate.basis_points()),
                vat_included,
                description,
                payment_id: Some(payment_id),
                original_document_id: None,
            });
            payment.document_id = Some(id);
            document = Some(id);
        }
        let payment_json = self.payment_json(&payment);
        self.books.payments.insert(payment_id, payment);
        let doc = document.and_then(|id| self.books.documents.get(&id));
        let reply = Reply::ok(json!({
            "Payment": payment_json,
            "DocumentID": doc.map(|d| d.id),
            "DocumentNumber": doc.and_then(|d| d.number),
            "CustomerID": customer_id,
            "DocumentDownloadURL": doc.map(|d| download_url(base_url, d.id)),
        }));
        if self.config.charge_unique_identifier
            && let Some(uid) = unique_identifier
        {
            self.books
                .stored_charges
                .insert((caller, uid), reply.clone());
        }
        Ok(reply)
    }

    fn payments_get(&self, caller: i64, body: &Value, lang: Lang) -> Result<Reply, Reply> {
        let fe = |e: FieldError| Reply::field_error(lang, &e);
        let id = integer(body, "PaymentID")
            .map_err(fe)?
            .ok_or_else(|| fe(FieldError::missing("PaymentID")))?;
        match self.books.payments.get(&id) {
            Some(p) if p.company_id == caller => {
                Ok(Reply::ok(json!({ "Payment": self.payment_json(p) })))
            }
            _ => Err(Reply::business(lang, Msg::PaymentNotFound)),
        }
    }

    fn payments_list(&self, caller: i64, body: &Value, lang: Lang) -> Result<Reply, Reply> {
        let fe = |e: FieldError| Reply::field_error(lang, &e);
        let from = datetime(body, "Date_From")
            .map_err(fe)?
            .ok_or_else(|| fe(FieldError::missing("Date_From")))?;
        let mut to = datetime(body, "Date_To")
            .map_err(fe)?
            .ok_or_else(|| fe(FieldError::missing("Date_To")))?;
        // A bare date as the end of the range means that whole day.
        if to.time() == NaiveTime::MIN {
            to = to.date().and_hms_opt(23, 59, 59).unwrap_or(to);
        }
        if from > to {
            return Err(Reply::business(lang, Msg::DateRangeInvalid));
        }
        let valid = boolean(body, "Valid").map_err(fe)?;
        let start = integer(body, "StartIndex").map_err(fe)?.unwrap_or(0);
        let start = usize::try_from(start).map_err(|_| fe(FieldError::invalid("StartIndex")))?;
        let matching: Vec<&PaymentRec> = self
            .books
            .payments
            .values()
            .filter(|p| p.company_id == caller && p.date >= from && p.date <= to)
            .filter(|p| valid.is_none_or(|v| p.valid == v))
            .collect();
        let page_size = self.config.list_page_size.max(1);
        let page: Vec<Value> = matching
            .iter()
            .skip(start)
            .take(page_size)
            .map(|p| self.payment_json(p))
            .collect();
        let has_next = matching.len() > start.saturating_add(page_size);
        Ok(Reply::ok(
            json!({ "Payments": page, "HasNextPage": has_next }),
        ))
    }

    fn documents_create(
        &mut self,
        caller: i64,
        body: &Value,
        lang: Lang,
        base_url: &str,
    ) -> Result<Reply, Reply> {
        let fe = |e: FieldError| Reply::field_error(lang, &e);
        self.require_application(caller, APP_ACCOUNTING, lang)?;
        let details = object(body, "Details")
            .map_err(fe)?
            .ok_or_else(|| fe(FieldError::missing("Details")))?;
        let doc_type = enumeration(details, "Type", DOCUMENT_TYPES)
            .map_err(|_| fe(FieldError::invalid("Details.Type")))?
            .ok_or_else(|| fe(FieldError::missing("Details.Type")))?;
        let is_draft = boolean(details, "IsDraft")
            .map_err(|_| fe(FieldError::invalid("Details.IsDraft")))?
            .unwrap_or(false);
        let date = datetime(details, "Date")
            .map_err(|_| fe(FieldError::invalid("Details.Date")))?
            .map(|d| d.date())
            .unwrap_or_else(|| self.now().date());
        let language = enumeration(details, "Language", LANGUAGES)
            .map_err(|_| fe(FieldError::invalid("Details.Language")))?
            .unwrap_or(0);
        let currency = enumeration(details, "Currency", CURRENCIES)
            .map_err(|_| fe(FieldError::invalid("Details.Currency")))?
            .unwrap_or(ILS);
        if currency != ILS {
            return Err(Reply::business(lang, Msg::UnsupportedCurrency));
        }
        let description = string(details, "Description").map_err(fe)?;
        let customer = object(details, "Customer")
            .map_err(fe)?
            .ok_or_else(|| fe(FieldError::missing("Details.Customer")))?;
        let customer = parse_customer(customer).map_err(fe)?;
        let vat_included = boolean(body, "VATIncluded").map_err(fe)?.unwrap_or(false);
        let original_document_id = integer(body, "OriginalDocumentID").map_err(fe)?;
        if let Some(orig) = original_document_id
            && self
                .books
                .documents
                .get(&orig)
                .is_none_or(|d| d.company_id != caller)
        {
            return Err(Reply::business(lang, Msg::OriginalDocumentNotFound));
        }
        let receipt_only = is_receipt_only(doc_type);
        let lines = parse_lines(body, !receipt_only).map_err(|e| Reply::business(lang, e))?;
        let (payment_lines, payments_total) = parse_document_payments(body).map_err(fe)?;
        if (receipt_only || is_invoice_receipt(doc_type)) && payment_lines.is_empty() {
            return Err(Reply::business(lang, Msg::MissingPayments));
        }
        let rate = if receipt_only {
            NO_VAT
        } else {
            self.vat_rate_for(caller, date, None, customer.no_vat)
        };
        let totals = if receipt_only {
            Totals {
                total: payments_total,
                vat: 0,
            }
        } else {
            compute_totals(&lines, vat_included, rate)
                .ok_or_else(|| fe(FieldError::invalid("Items.UnitPrice")))?
        };
        if is_invoice_receipt(doc_type) && payments_total != totals.total {
            return Err(Reply::business(
                lang,
                Msg::PaymentsDoNotMatchTotal {
                    payments: Agorot::new(payments_total).to_decimal_string(),
                    total: Agorot::new(totals.total).to_decimal_string(),
                },
            ));
        }
        let customer_id = self
            .find_customer(caller, &customer)
            .map_err(|m| Reply::business(lang, m))?;
        if customer_id.is_none() && customer.name.is_none() {
            return Err(fe(FieldError::missing("Details.Customer.Name")));
        }

        let customer_id = match customer_id {
            Some(id) => id,
            None => self.create_customer(caller, &customer),
        };
        let id = self.issue_document(DocumentRec {
            id: 0,
            company_id: caller,
            doc_type,
            number: None,
            is_draft,
            date,
            customer_id,
            language,
            lines,
            payment_lines,
            payments_total,
            total: totals.total,
            vat: totals.vat,
            vat_rate_bp: i64::from(rate.basis_points()),
            vat_included,
            description,
            payment_id: None,
            original_document_id,
        });
        let d = &self.books.documents[&id];
        Ok(Reply::ok(json!({
            "DocumentID": d.id,
            "DocumentNumber": d.number,
            "CustomerID": customer_id,
            "DocumentDownloadURL": download_url(base_url, d.id),
        })))
    }

    fn documents_getdetails(
        &self,
        caller: i64,
        body: &Value,
        lang: Lang,
        base_url: &str,
    ) -> Result<Reply, Reply> {
        let fe = |e: FieldError| Reply::field_error(lang, &e);
        let by_id = integer(body, "DocumentID").map_err(fe)?;
        let doc_type = enumeration(body, "DocumentType", DOCUMENT_TYPES).map_err(fe)?;
        let number = integer(body, "DocumentNumber").map_err(fe)?;
        let found = match (by_id, doc_type, number) {
            (Some(id), _, _) => self.books.documents.get(&id),
            (None, Some(t), Some(n)) => self
                .books
                .documents
                .values()
                .find(|d| d.company_id == caller && d.doc_type == t && d.number == Some(n)),
            _ => return Err(fe(FieldError::missing("DocumentID"))),
        };
        let d = match found {
            Some(d) if d.company_id == caller => d,
            _ => return Err(Reply::business(lang, Msg::DocumentNotFound)),
        };
        let customer = self.books.customers.get(&d.customer_id);
        let items: Vec<Value> = d
            .lines
            .iter()
            .map(|l| {
                json!({
                    "Quantity": scaled_to_json(l.quantity_milli, 3),
                    "UnitPrice": agorot_to_json(l.unit_price),
                    "TotalPrice": agorot_to_json(l.total),
                    "DocumentCurrency_UnitPrice": null,
                    "DocumentCurrency_TotalPrice": null,
                    "Item": {"Name": l.name, "SKU": l.sku},
                    "Description": l.description,
                })
            })
            .collect();
        Ok(Reply::ok(json!({
            "Document": {
                "Type": d.doc_type,
                "IsDraft": d.is_draft,
                "Date": d.date.and_time(NaiveTime::MIN).format("%Y-%m-%dT%H:%M:%S").to_string(),
                "Customer": customer.map(|c| json!({
                    "ID": c.id,
                    "Name": c.name,
                    "EmailAddress": c.email,
                    "ExternalIdentifier": c.external_identifier,
                    "CompanyNumber": c.company_number,
                })),
                "SendByEmail": null,
                "Language": d.language,
                "Currency": ILS,
                "Description": d.description,
            },
            "Items": items,
            "Payments": d.payment_lines,
            "DocumentDownloadURL": download_url(base_url, d.id),
            "DocumentID": d.id,
            "DocumentNumber": d.number,
        })))
    }

    fn verify_bank_account(&self, body: &Value, lang: Lang) -> Result<Reply, Reply> {
        let fe = |e: FieldError| Reply::field_error(lang, &e);
        let bank = integer(body, "BankCode")
            .map_err(fe)?
            .ok_or_else(|| fe(FieldError::missing("BankCode")))?;
        let branch = integer(body, "BranchCode")
            .map_err(fe)?
            .ok_or_else(|| fe(FieldError::missing("BranchCode")))?;
        let account = string(body, "AccountNumber")
            .map_err(fe)?
            .ok_or_else(|| fe(FieldError::missing("AccountNumber")))?;
        boolean(body, "VerifyBranchNumber").map_err(fe)?;
        let verify_limited = boolean(body, "VerifyLimitedAccount").map_err(fe)?;
        // `Result: null` means an unsupported bank (S2): a bank we know without a check rule,
        // or a code we do not know at all.
        let result = match (u16::try_from(bank), u16::try_from(branch)) {
            (Ok(b), Ok(br)) => match check_bank_account(b, br, &account) {
                Ok(BankCheck::Passed) => Some(true),
                Ok(BankCheck::NoKnownRule) | Err(BankProblem::UnknownBank(_)) => None,
                Err(_) => Some(false),
            },
            _ => Some(false),
        };
        let limited = (verify_limited == Some(true) && result == Some(true)).then_some(false);
        Ok(Reply::ok(
            json!({ "Result": result, "IsLimitedAccount": limited }),
        ))
    }

    // ---- helpers --------------------------------------------------------------------------

    /// The VAT rate of a document: an explicit `VATRate` wins; an exempt dealer (עוסק פטור) and a
    /// `NoVAT` customer charge none; otherwise the dated table.
    fn vat_rate_for(
        &self,
        company_id: i64,
        date: NaiveDate,
        explicit_bp: Option<i64>,
        no_vat: bool,
    ) -> VatRate {
        let exempt = self
            .books
            .companies
            .get(&company_id)
            .is_some_and(|c| c.company_type == VAT_EXEMPT_DEALER);
        if let Some(bp) = explicit_bp
            && let Some(rate) = u32::try_from(bp).ok().and_then(VatRate::from_basis_points)
        {
            return rate;
        }
        if exempt || no_vat {
            return NO_VAT;
        }
        vat_rate_on(date)
    }

    fn issue_document(&mut self, mut doc: DocumentRec) -> i64 {
        let id = self.books.next_document_id;
        self.books.next_document_id += 1;
        doc.id = id;
        if !doc.is_draft {
            let next = self
                .books
                .document_numbers
                .entry((doc.company_id, doc.doc_type))
                .or_insert(FIRST_DOCUMENT_NUMBER);
            doc.number = Some(*next);
            *next += 1;
        }
        self.books.documents.insert(id, doc);
        id
    }

    fn find_customer(&self, company_id: i64, spec: &CustomerSpec) -> Result<Option<i64>, Msg> {
        let mine = || {
            self.books
                .customers
                .values()
                .filter(|c| c.company_id == company_id)
        };
        if let Some(id) = spec.id {
            return match self.books.customers.get(&id) {
                Some(c) if c.company_id == company_id => Ok(Some(id)),
                _ => Err(Msg::CustomerNotFound),
            };
        }
        let by = |get: fn(&CustomerRec) -> Option<&String>, want: &Option<String>| {
            want.as_ref().and_then(|w| {
                mine()
                    .find(|c| get(c).is_some_and(|v| v == w))
                    .map(|c| c.id)
            })
        };
        let found = match spec.search_mode {
            1 => None,
            2 => by(
                |c| c.external_identifier.as_ref(),
                &spec.external_identifier,
            ),
            3 => by(|c| c.name.as_ref(), &spec.name),
            4 => by(|c| c.company_number.as_ref(), &spec.company_number),
            5 => by(|c| c.phone.as_ref(), &spec.phone),
            6 => by(|c| c.email.as_ref(), &spec.email),
            _ => by(
                |c| c.external_identifier.as_ref(),
                &spec.external_identifier,
            )
            .or_else(|| by(|c| c.company_number.as_ref(), &spec.company_number))
            .or_else(|| by(|c| c.email.as_ref(), &spec.email)),
        };
        Ok(found)
    }

    fn create_customer(&mut self, company_id: i64, spec: &CustomerSpec) -> i64 {
        let id = self.books.next_customer_id;
        self.books.next_customer_id += 1;
        self.books.customers.insert(
            id,
            CustomerRec {
                id,
                company_id,
                name: spec.name.clone(),
                email: spec.email.clone(),
                phone: spec.phone.clone(),
                external_identifier: spec.external_identifier.clone(),
                company_number: spec.company_number.clone(),
            },
        );
        id
    }

    fn payment_json(&self, p: &PaymentRec) -> Value {
        let mut v = json!({
            "ID": p.id,
            "CustomerID": p.customer_id,
            "Date": p.date.format("%Y-%m-%dT%H:%M:%S").to_string(),
            "ValidPayment": p.valid,
            "Status": p.status_code,
            "StatusDescription": p.status_description,
            "Amount": agorot_to_json(p.amount),
            "Currency": ILS,
            "AuthNumber": p.auth_number,
            "FirstPaymentAmount": agorot_to_json(p.first_amount),
            "NonFirstPaymentAmount": agorot_to_json(if p.payments_count > 1 { p.non_first_amount } else { 0 }),
            "RecurringCustomerItemIDs": null,
            "PaymentMethod": {
                "CreditCard_LastDigits": "4242",
                "CreditCard_ExpirationMonth": 12,
                "CreditCard_ExpirationYear": p.expiration_year,
                "CreditCard_Token": p.card_token,
                "CreditCard_CitizenID": null,
                "Type": 1,
            },
        });
        if self.config.payments_expose_unique_identifier
            && let Some(map) = v.as_object_mut()
        {
            map.insert("UniqueIdentifier".into(), json!(p.unique_identifier));
        }
        v
    }

    fn mint_uuid(&mut self) -> String {
        let bytes: [u8; 16] = self.rng.random();
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    fn mint_api_key(&mut self) -> String {
        self.mint_uuid().to_uppercase()
    }

    fn mint_public_key(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..48)
            .map(|_| ALPHABET[self.rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    }

    fn mint_password(&mut self) -> String {
        format!("Sbx-{}", &self.mint_uuid()[..13])
    }
}

fn last_chars(s: &str, n: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    chars[chars.len().saturating_sub(n)..].iter().collect()
}

fn download_url(base_url: &str, document_id: i64) -> String {
    format!("{base_url}/_sandbox/documents/{document_id}/download")
}

fn scaled_to_json(value: i64, scale: u32) -> Value {
    let factor = 10i64.pow(scale);
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    let text = format!(
        "{sign}{}.{:0width$}",
        abs / factor.unsigned_abs(),
        abs % factor.unsigned_abs(),
        width = scale as usize
    );
    text.parse::<serde_json::Number>()
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

struct CustomerSpec {
    id: Option<i64>,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    external_identifier: Option<String>,
    company_number: Option<String>,
    search_mode: i64,
    no_vat: bool,
}

fn parse_customer(c: &Value) -> Result<CustomerSpec, FieldError> {
    let prefixed = |e: FieldError| FieldError {
        field: format!("Customer.{}", e.field),
        missing: e.missing,
    };
    Ok(CustomerSpec {
        id: integer(c, "ID").map_err(prefixed)?,
        name: string(c, "Name").map_err(prefixed)?,
        email: string(c, "EmailAddress").map_err(prefixed)?,
        phone: string(c, "Phone").map_err(prefixed)?,
        external_identifier: string(c, "ExternalIdentifier").map_err(prefixed)?,
        company_number: string(c, "CompanyNumber").map_err(prefixed)?,
        search_mode: enumeration(c, "SearchMode", SEARCH_MODES)
            .map_err(prefixed)?
            .unwrap_or(0),
        no_vat: boolean(c, "NoVAT").map_err(prefixed)?.unwrap_or(false),
    })
}

/// Reads `Items[]`. Each line is `{Item: {Name, SKU}, Quantity (default 1), UnitPrice, Currency,
/// Description}`; the line total is `UnitPrice × Quantity` rounded to the agora.
fn parse_lines(body: &Value, required: bool) -> Result<Vec<LineRec>, Msg> {
    let items = array(body, "Items").map_err(|e| e.message())?;
    let items = match items {
        Some(items) if !items.is_empty() => items,
        _ if required => return Err(Msg::NoItems),
        _ => return Ok(Vec::new()),
    };
    let mut lines = Vec::with_capacity(items.len());
    for line in items {
        let item = object(line, "Item").map_err(|_| Msg::InvalidField("Items.Item".into()))?;
        let name = match item {
            Some(i) => {
                string(i, "Name").map_err(|_| Msg::InvalidField("Items.Item.Name".into()))?
            }
            None => None,
        };
        let sku = match item {
            Some(i) => string(i, "SKU").map_err(|_| Msg::InvalidField("Items.Item.SKU".into()))?,
            None => None,
        };
        if name.is_none() {
            return Err(Msg::MissingField("Items.Item.Name".into()));
        }
        let quantity_milli = scaled(line, "Quantity", 3)
            .map_err(|_| Msg::InvalidField("Items.Quantity".into()))?
            .unwrap_or(1000);
        if quantity_milli <= 0 {
            return Err(Msg::InvalidField("Items.Quantity".into()));
        }
        let unit_price = money(line, "UnitPrice")
            .map_err(|_| Msg::InvalidField("Items.UnitPrice".into()))?
            .ok_or_else(|| Msg::MissingField("Items.UnitPrice".into()))?;
        let currency = enumeration(line, "Currency", CURRENCIES)
            .map_err(|_| Msg::InvalidField("Items.Currency".into()))?
            .unwrap_or(ILS);
        if currency != ILS {
            return Err(Msg::UnsupportedCurrency);
        }
        let description = string(line, "Description")
            .map_err(|_| Msg::InvalidField("Items.Description".into()))?;
        let total = round_div(i128::from(unit_price) * i128::from(quantity_milli), 1000)
            .ok_or_else(|| Msg::InvalidField("Items.UnitPrice".into()))?;
        lines.push(LineRec {
            name,
            sku,
            description,
            quantity_milli,
            unit_price,
            total,
        });
    }
    Ok(lines)
}

/// Reads `Payments[]` of a document: each has an `Amount` and exactly one `Details_*` object,
/// which is kept as sent and echoed by `getdetails`.
fn parse_document_payments(body: &Value) -> Result<(Vec<Value>, i64), FieldError> {
    let mut lines = Vec::new();
    let mut total: i64 = 0;
    for p in array(body, "Payments")?.into_iter().flatten() {
        let amount = money(p, "Amount")
            .map_err(|_| FieldError::invalid("Payments.Amount"))?
            .ok_or_else(|| FieldError::missing("Payments.Amount"))?;
        let details: Vec<(&String, &Value)> = p
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, v)| {
                        k.to_ascii_lowercase().starts_with("details_") && v.is_object()
                    })
                    .collect()
            })
            .unwrap_or_default();
        if details.len() != 1 {
            return Err(FieldError::invalid("Payments.Details"));
        }
        total = total
            .checked_add(amount)
            .ok_or_else(|| FieldError::invalid("Payments.Amount"))?;
        let mut line = obj(vec![("Amount", agorot_to_json(amount))]);
        if let Some(m) = line.as_object_mut() {
            m.insert(details[0].0.clone(), details[0].1.clone());
        }
        lines.push(line);
    }
    Ok((lines, total))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Totals {
    /// What the customer pays, VAT included.
    total: i64,
    vat: i64,
}

/// Totals of priced lines. With `VATIncluded` false (the API's default) the prices are net and
/// VAT is added on top; with true they already contain it and VAT is split out. Rounding is
/// domain's: half away from zero, on the sum of the rounded lines. `None` when the sum or the
/// total with VAT does not fit an i64 (the caller answers the invalid field, as SUMIT answers
/// an absurd amount; it never panics).
fn compute_totals(lines: &[LineRec], vat_included: bool, rate: VatRate) -> Option<Totals> {
    let sum = lines.iter().try_fold(Agorot::ZERO, |sum, line| {
        sum.checked_add(Agorot::new(line.total))
    })?;
    if vat_included {
        let (_, vat) = rate.split_gross(sum);
        Some(Totals {
            total: sum.get(),
            vat: vat.get(),
        })
    } else {
        let vat = rate.vat_on_net(sum);
        Some(Totals {
            total: sum.checked_add(vat)?.get(),
            vat: vat.get(),
        })
    }
}

fn round_div(numerator: i128, denominator: i128) -> Option<i64> {
    let q = numerator / denominator;
    let r = numerator % denominator;
    let rounded = if 2 * r.abs() >= denominator {
        q + numerator.signum()
    } else {
        q
    };
    i64::try_from(rounded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(unit: i64, qty_milli: i64) -> LineRec {
        LineRec {
            name: Some("x".into()),
            sku: None,
            description: None,
            quantity_milli: qty_milli,
            unit_price: unit,
            total: round_div(i128::from(unit) * i128::from(qty_milli), 1000).unwrap(),
        }
    }

    #[test]
    fn vat_is_added_on_top_by_default_and_split_out_when_included() {
        let rate18 = vat_rate_on(NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
        let rate17 = vat_rate_on(NaiveDate::from_ymd_opt(2024, 12, 31).unwrap());
        // Reference §1.5 [T]: ₪49 became ₪57.82.
        assert_eq!(
            compute_totals(&[line(4900, 1000)], false, rate18).unwrap(),
            Totals {
                total: 5782,
                vat: 882
            }
        );
        assert_eq!(
            compute_totals(&[line(4900, 1000)], false, rate17).unwrap(),
            Totals {
                total: 5733,
                vat: 833
            }
        );
        assert_eq!(
            compute_totals(&[line(11800, 1000)], true, rate18).unwrap(),
            Totals {
                total: 11800,
                vat: 1800
            }
        );
        assert_eq!(
            compute_totals(&[line(11700, 1000)], true, rate17).unwrap(),
            Totals {
                total: 11700,
                vat: 1700
            }
        );
    }

    #[test]
    fn totals_that_overflow_are_none_never_a_panic() {
        let rate18 = vat_rate_on(NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
        let huge = || line(4_611_686_018_427_387_904, 1000);
        for vat_included in [false, true] {
            assert_eq!(
                compute_totals(&[huge(), huge()], vat_included, rate18),
                None
            );
        }
        // One line fits, but its VAT on top does not.
        assert_eq!(compute_totals(&[line(i64::MAX, 1000)], false, rate18), None);
        assert!(compute_totals(&[line(i64::MAX, 1000)], true, rate18).is_some());
    }

    #[test]
    fn fractional_quantities_round_each_line_to_the_agora() {
        assert_eq!(line(333, 1500).total, 500);
        assert_eq!(line(-333, 1500).total, -500);
    }

    #[test]
    fn magic_tokens_map_to_outcomes_and_decline_codes() {
        assert_eq!(parse_magic_token("tok_approve"), Some(MagicToken::Approve));
        assert_eq!(
            parse_magic_token("tok_approve_order-1"),
            Some(MagicToken::Approve)
        );
        assert_eq!(
            parse_magic_token("tok_decline"),
            Some(MagicToken::Decline("006".into()))
        );
        assert_eq!(
            parse_magic_token("tok_decline_004_x"),
            Some(MagicToken::Decline("004".into()))
        );
        assert_eq!(
            parse_magic_token("tok_decline_order9"),
            Some(MagicToken::Decline("006".into()))
        );
        assert_eq!(
            parse_magic_token("tok_technical_1"),
            Some(MagicToken::Technical)
        );
        assert_eq!(parse_magic_token("4580000000000000"), None);
    }

    #[test]
    fn endpoints_match_with_or_without_the_trailing_slash() {
        assert_eq!(
            Endpoint::from_path("/billing/payments/charge"),
            Some(Endpoint::PaymentsCharge)
        );
        assert_eq!(
            Endpoint::from_path("/Billing/Payments/Charge/"),
            Some(Endpoint::PaymentsCharge)
        );
        assert_eq!(Endpoint::from_path("/billing/payments/refund/"), None);
    }
}

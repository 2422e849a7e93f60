//! The ledger: a typed snapshot of everything the sandbox did, for tests to assert on ("exactly
//! one organization per corporate number, exactly one charge per order"). It is served as JSON
//! at `GET /_sandbox/ledger` and returned by `SandboxHandle::ledger()`.
//!
//! Secrets stay out of it: API keys appear only as their last four characters, bank accounts only
//! as their last three digits, single-use tokens not at all. The full keys of a company are
//! available separately (`SandboxHandle::company_keys`, `/_sandbox/companies/{id}/keys`) for tests
//! that rehearse an operator entering lost keys.

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub companies: Vec<LedgerCompany>,
    pub terminals: Vec<LedgerTerminal>,
    pub customers: Vec<LedgerCustomer>,
    pub payments: Vec<LedgerPayment>,
    pub documents: Vec<LedgerDocument>,
    /// Every call to a SUMIT endpoint, in arrival order, with its fate.
    pub calls: Vec<CallRecord>,
}

impl Ledger {
    /// Organizations registered with this corporate number (the real API allows one).
    pub fn companies_with_corporate_number(&self, corporate_number: &str) -> Vec<&LedgerCompany> {
        self.companies
            .iter()
            .filter(|c| c.corporate_number.as_deref() == Some(corporate_number))
            .collect()
    }

    /// Payments (approved or declined) whose charge carried this `UniqueIdentifier`.
    pub fn payments_with_unique_identifier(&self, unique_identifier: &str) -> Vec<&LedgerPayment> {
        self.payments
            .iter()
            .filter(|p| p.unique_identifier.as_deref() == Some(unique_identifier))
            .collect()
    }

    pub fn company(&self, company_id: i64) -> Option<&LedgerCompany> {
        self.companies.iter().find(|c| c.company_id == company_id)
    }

    pub fn terminal(&self, company_id: i64) -> Option<&LedgerTerminal> {
        self.terminals.iter().find(|t| t.company_id == company_id)
    }

    pub fn payment(&self, payment_id: i64) -> Option<&LedgerPayment> {
        self.payments.iter().find(|p| p.payment_id == payment_id)
    }

    pub fn document(&self, document_id: i64) -> Option<&LedgerDocument> {
        self.documents.iter().find(|d| d.document_id == document_id)
    }

    /// Calls made to one endpoint path.
    pub fn calls_to(&self, endpoint: &str) -> Vec<&CallRecord> {
        self.calls
            .iter()
            .filter(|c| c.endpoint == endpoint)
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerCompany {
    pub company_id: i64,
    /// The organization whose credentials created this one; `None` for the marketplace.
    pub created_by: Option<i64>,
    pub name: String,
    pub corporate_number: Option<String>,
    /// SUMIT `CompanyType` as its integer value.
    pub company_type: i64,
    pub email_address: Option<String>,
    pub phone: Option<String>,
    /// Installed applications by name (`CreditCard`, `Accounting`, ...).
    pub applications: Vec<String>,
    /// The last four characters of the APIKey.
    pub api_key_last4: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminalState {
    Pending,
    Approved,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerTerminal {
    pub company_id: i64,
    pub state: TerminalState,
    pub bank_code: i64,
    pub branch_code: i64,
    /// The last three digits of the account number.
    pub account_last3: String,
    /// Upay program by name (`OFFICEGUYNEW10`, ...).
    pub program: String,
    /// How many `openupayterminal` calls were applied for this organization.
    pub requests: u32,
    pub requested_at: NaiveDateTime,
    pub decided_at: Option<NaiveDateTime>,
    pub rejection_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerCustomer {
    pub customer_id: i64,
    pub company_id: i64,
    pub name: Option<String>,
    pub email_address: Option<String>,
    pub external_identifier: Option<String>,
    pub company_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerPayment {
    pub payment_id: i64,
    pub company_id: i64,
    pub customer_id: i64,
    pub date: NaiveDateTime,
    /// `Payment.ValidPayment`: false for a decline.
    pub valid: bool,
    /// The acquirer code: `000` on approval, for example `006` on a decline.
    pub status_code: String,
    pub status_description: String,
    /// The amount charged (negative for a credit), VAT included, in agorot.
    pub amount_agorot: i64,
    pub vat_agorot: i64,
    /// VAT rate in basis points (1800 = 18%).
    pub vat_rate_bp: i64,
    pub vat_included: bool,
    pub auth_number: Option<String>,
    /// False for `AuthoriseOnly` and `AutoCapture: false` charges.
    pub captured: bool,
    pub payments_count: i64,
    pub unique_identifier: Option<String>,
    pub document_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerDocument {
    pub document_id: i64,
    pub company_id: i64,
    /// SUMIT `DocumentType` as its integer value.
    pub document_type: i64,
    pub document_type_name: String,
    /// Sequential per organization and document type; `None` for drafts.
    pub document_number: Option<i64>,
    pub is_draft: bool,
    pub date: NaiveDate,
    pub customer_id: i64,
    /// Total including VAT, in agorot.
    pub total_agorot: i64,
    pub vat_agorot: i64,
    pub vat_rate_bp: i64,
    pub vat_included: bool,
    pub description: Option<String>,
    /// The charge that issued it, if any.
    pub payment_id: Option<i64>,
    pub original_document_id: Option<i64>,
    /// Sum of the document's payment lines (receipts), in agorot.
    pub payments_agorot: i64,
}

/// What happened to one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub seq: u64,
    pub endpoint: String,
    /// The authenticated organization, when the request got that far.
    pub company_id: Option<i64>,
    /// The envelope `Status` the sandbox produced, or `None` when the request was not processed.
    pub envelope_status: Option<i64>,
    /// Whether the request's effect was applied (an answer of `Status: 0` on a mutating call).
    pub committed: bool,
    /// The fault labels that fired on this call.
    pub faults: Vec<String>,
    /// Whether the caller received the envelope (false after a reset, a hang, an error page).
    pub answered: bool,
}

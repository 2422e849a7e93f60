//! Typed requests and answers of the SUMIT endpoints vendorflow uses, with their wire forms.
//!
//! Money is integer agorot in these types and decimal shekels on the wire, converted exactly.
//! Secrets (API keys, bank account numbers, single-use tokens) are `SecretString`s, so Debug
//! output shows `[REDACTED]`; they are exposed only while a request body is being built.

use chrono::{NaiveDate, NaiveDateTime};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use super::json::{agorot, agorot_to_json, boolean, datetime, field, integer, string};

/// API credentials of an organization: `Credentials {CompanyID, APIKey}` in every request body.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub company_id: i64,
    pub api_key: SecretString,
}

impl Credentials {
    pub fn new(company_id: i64, api_key: impl Into<String>) -> Self {
        Credentials {
            company_id,
            api_key: SecretString::from(api_key.into()),
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({ "CompanyID": self.company_id, "APIKey": self.api_key.expose_secret() })
    }
}

/// SUMIT `CompanyType` (reference §1.3; sent as its integer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompanyType {
    CompanyWithVat = 0,
    /// עוסק פטור: issues receipts without VAT.
    VatExemptDealer = 1,
    /// עוסק מורשה.
    LicensedDealer = 2,
    Fellowship = 3,
    Partnership = 4,
    CommunityInterestCompany = 5,
    Cooperative = 6,
    HouseCommittee = 7,
    ElectionGroup = 8,
    Party = 9,
    SelfEmployed = 10,
    PublicTrust = 11,
}

/// SUMIT applications to install on a new organization (sent by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Application {
    CreditCard,
    DirectDebit,
    RecurringBilling,
    PurchasePages,
    Crm,
    Accounting,
    PayPal,
}

impl Application {
    fn wire_name(self) -> &'static str {
        match self {
            Application::CreditCard => "CreditCard",
            Application::DirectDebit => "DirectDebit",
            Application::RecurringBilling => "RecurringBilling",
            Application::PurchasePages => "PurchasePages",
            Application::Crm => "CRM",
            Application::Accounting => "Accounting",
            Application::PayPal => "PayPal",
        }
    }
}

/// Upay clearing programs (reference §1.4 [T]; sent by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UpayProgram {
    /// The default: 1.5% without payments clearing.
    #[default]
    OfficeGuyNew10,
    UpayTransaction,
    OfficeGuyNewMonthly10,
    OfficeGuyMonthlyNew10,
}

impl UpayProgram {
    fn wire_name(self) -> &'static str {
        match self {
            UpayProgram::OfficeGuyNew10 => "OFFICEGUYNEW10",
            UpayProgram::UpayTransaction => "UPAYTRANSACTION",
            UpayProgram::OfficeGuyNewMonthly10 => "OFFICEGUYNEWMONTHLY10",
            UpayProgram::OfficeGuyMonthlyNew10 => "OFFICEGUYMONTHLYNEW10",
        }
    }
}

/// SUMIT `DocumentType` (reference §1.7; sent as its integer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentType {
    Invoice = 0,
    InvoiceAndReceipt = 1,
    Receipt = 2,
    ProformaInvoice = 3,
    DonationReceipt = 4,
    CreditInvoice = 5,
    CreditInvoiceAndReceipt = 6,
    CreditReceipt = 7,
    Order = 8,
    PriceQuotation = 12,
    PaymentRequest = 13,
}

/// Document language (sent by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentLanguage {
    Hebrew,
    English,
    Arabic,
    Spanish,
}

impl DocumentLanguage {
    fn wire_name(self) -> &'static str {
        match self {
            DocumentLanguage::Hebrew => "Hebrew",
            DocumentLanguage::English => "English",
            DocumentLanguage::Arabic => "Arabic",
            DocumentLanguage::Spanish => "Spanish",
        }
    }
}

/// How SUMIT finds an existing customer before creating one (sent by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchMode {
    Automatic,
    None,
    ExternalIdentifier,
    Name,
    CompanyNumber,
    Phone,
    EmailAddress,
}

impl SearchMode {
    fn wire_name(self) -> &'static str {
        match self {
            SearchMode::Automatic => "Automatic",
            SearchMode::None => "None",
            SearchMode::ExternalIdentifier => "ExternalIdentifier",
            SearchMode::Name => "Name",
            SearchMode::CompanyNumber => "CompanyNumber",
            SearchMode::Phone => "Phone",
            SearchMode::EmailAddress => "EmailAddress",
        }
    }
}

/// `/website/companies/create/`. No `User` is sent, so the marketplace's owners become the
/// owners of the new organization (reference §1.3) and no password travels.
#[derive(Debug, Clone)]
pub struct CreateCompany {
    pub name: String,
    pub corporate_number: String,
    pub company_type: CompanyType,
    pub email_address: String,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub country: Option<String>,
    pub english_name: Option<String>,
    pub website: Option<String>,
    pub applications: Vec<Application>,
    pub hide_from_companies_list: bool,
}

impl CreateCompany {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "Company": {
                "Name": self.name,
                "CorporateNumber": self.corporate_number,
                "CompanyType": self.company_type as i64,
                "EmailAddress": self.email_address,
                "Phone": self.phone,
                "Address": self.address,
                "Country": self.country,
                "English_Name": self.english_name,
                "Website": self.website,
            },
            "Applications": self.applications.iter().map(|a| a.wire_name()).collect::<Vec<_>>(),
            "HideFromCompaniesList": self.hide_from_companies_list,
        })
    }
}

/// The new organization's keys. They are returned once: store them before anything else.
#[derive(Debug, Clone)]
pub struct CreatedCompany {
    pub company_id: i64,
    pub api_key: SecretString,
    pub api_public_key: SecretString,
}

impl CreatedCompany {
    pub fn credentials(&self) -> Credentials {
        Credentials {
            company_id: self.company_id,
            api_key: self.api_key.clone(),
        }
    }

    pub(crate) fn from_data(data: &Value) -> Result<Self, String> {
        let company_id = integer(data, "CompanyID").ok_or("Data.CompanyID is missing")?;
        let api_key = string(data, "APIKey").ok_or("Data.APIKey is missing")?;
        let api_public_key = string(data, "APIPublicKey").unwrap_or_default();
        Ok(CreatedCompany {
            company_id,
            api_key: SecretString::from(api_key),
            api_public_key: SecretString::from(api_public_key),
        })
    }
}

/// `/website/companies/getdetails/`: what SUMIT knows about the calling organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyDetails {
    pub name: Option<String>,
    pub corporate_number: Option<String>,
    /// `CompanyType` as its integer (SUMIT may send a name; unknown names give `None`).
    pub company_type: Option<i64>,
    pub email_address: Option<String>,
    pub phone: Option<String>,
}

impl CompanyDetails {
    pub(crate) fn from_data(data: &Value) -> Result<Self, String> {
        let c = field(data, "Company").ok_or("Data.Company is missing")?;
        Ok(CompanyDetails {
            name: string(c, "Name"),
            corporate_number: string(c, "CorporateNumber"),
            company_type: integer(c, "CompanyType")
                .or_else(|| string(c, "CompanyType").and_then(|n| company_type_from_name(&n))),
            email_address: string(c, "EmailAddress"),
            phone: string(c, "Phone"),
        })
    }
}

fn company_type_from_name(name: &str) -> Option<i64> {
    const NAMES: [&str; 12] = [
        "CompanyWithVAT",
        "VATExemptDealer",
        "LicensedDealer",
        "Fellowship",
        "Partnership",
        "CommunityInterestCompany",
        "Cooperative",
        "HouseCommittee",
        "ElectionGroup",
        "Party",
        "SelfEmployed",
        "PublicTrust",
    ];
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .and_then(|i| i64::try_from(i).ok())
}

/// An organization found by corporate number (sandbox-only lookup). Keys are never returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCompany {
    pub company_id: i64,
    pub name: Option<String>,
    pub corporate_number: Option<String>,
}

/// `/billing/generalbilling/openupayterminal/`, called with the vendor's credentials.
#[derive(Debug, Clone)]
pub struct OpenTerminal {
    pub bank_code: u16,
    pub branch_code: u16,
    pub account_number: SecretString,
    pub program: UpayProgram,
    /// Adds 0.3% commission.
    pub daily_credit: bool,
    pub disable_payments_credit: bool,
    pub enable_american_express_diners: bool,
    /// Recurring billing with CVV exemption.
    pub enable_billing: bool,
    /// Empty means SUMIT generates one.
    pub email_address: Option<String>,
}

impl OpenTerminal {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "BankCode": self.bank_code,
            "BranchCode": self.branch_code,
            "AccountNumber": self.account_number.expose_secret(),
            "Program": self.program.wire_name(),
            "DailyCredit": self.daily_credit,
            "DisablePaymentsCredit": self.disable_payments_credit,
            "EnableAmericanExpressDiners": self.enable_american_express_diners,
            "EnableBilling": self.enable_billing,
            "EmailAddress": self.email_address,
        })
    }
}

/// The customer of a charge or document. With `id` SUMIT uses that customer; otherwise it
/// searches by `search_mode` and creates one when nothing matches.
#[derive(Debug, Clone, Default)]
pub struct Customer {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub email_address: Option<String>,
    pub phone: Option<String>,
    pub company_number: Option<String>,
    pub external_identifier: Option<String>,
    pub search_mode: Option<SearchMode>,
    /// The customer is exempt from VAT.
    pub no_vat: Option<bool>,
}

impl Customer {
    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            if !v.is_null() {
                m.insert(k.to_string(), v);
            }
        };
        put("ID", json!(self.id));
        put("Name", json!(self.name));
        put("EmailAddress", json!(self.email_address));
        put("Phone", json!(self.phone));
        put("CompanyNumber", json!(self.company_number));
        put("ExternalIdentifier", json!(self.external_identifier));
        put(
            "SearchMode",
            json!(self.search_mode.map(SearchMode::wire_name)),
        );
        put("NoVAT", json!(self.no_vat));
        Value::Object(m)
    }
}

/// A priced line of a charge or a document.
#[derive(Debug, Clone)]
pub struct LineItem {
    pub name: String,
    pub sku: Option<String>,
    pub quantity: u32,
    /// Per unit, in agorot; net or gross according to the request's `vat_included`.
    pub unit_price_agorot: i64,
    pub description: Option<String>,
}

impl LineItem {
    fn to_json(&self) -> Value {
        json!({
            "Item": { "Name": self.name, "SKU": self.sku },
            "Quantity": self.quantity,
            "UnitPrice": agorot_to_json(self.unit_price_agorot),
            "Currency": "ILS",
            "Description": self.description,
        })
    }
}

/// `/billing/payments/charge/` with a single-use token from payments.js (never a card number).
#[derive(Debug, Clone)]
pub struct ChargeRequest {
    pub customer: Customer,
    pub single_use_token: SecretString,
    pub items: Vec<LineItem>,
    /// False (the API's default): prices are net and VAT is added on top.
    pub vat_included: bool,
    /// `None`: the organization's default document.
    pub document_type: Option<DocumentType>,
    pub document_description: Option<String>,
    pub document_language: Option<DocumentLanguage>,
    pub send_document_by_email: bool,
    pub payments_count: Option<u32>,
    /// Authorize without committing; the document is a draft.
    pub authorise_only: bool,
    /// Our idempotency key for this charge (for example the marketplace's order id), sent as
    /// `UniqueIdentifier`. SUMIT's honouring of it on this endpoint is unverified (reference
    /// §1.5), so the engine must not rely on it alone.
    pub external_identifier: Option<String>,
}

impl ChargeRequest {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "Customer": self.customer.to_json(),
            "SingleUseToken": self.single_use_token.expose_secret(),
            "Items": self.items.iter().map(LineItem::to_json).collect::<Vec<_>>(),
            "VATIncluded": self.vat_included,
            "DocumentType": self.document_type.map(|t| t as i64),
            "DocumentDescription": self.document_description,
            "DocumentLanguage": self.document_language.map(DocumentLanguage::wire_name),
            "SendDocumentByEmail": self.send_document_by_email,
            "Payments_Count": self.payments_count,
            "AuthoriseOnly": self.authorise_only,
            "UniqueIdentifier": self.external_identifier,
        })
    }
}

/// A payment as `payments/charge`, `get` and `list` describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: i64,
    pub customer_id: Option<i64>,
    pub date: Option<NaiveDateTime>,
    /// `ValidPayment`: false for a declined card.
    pub valid: bool,
    pub status: Option<String>,
    pub status_description: Option<String>,
    pub amount_agorot: i64,
    pub auth_number: Option<String>,
    pub card_last_digits: Option<String>,
    /// The charge's identifier, when the row carries one (`UniqueIdentifier` or
    /// `ExternalIdentifier`). Real rows are not known to; the sandbox adds it by default.
    pub external_identifier: Option<String>,
}

impl Payment {
    pub(crate) fn from_json(p: &Value) -> Result<Self, String> {
        let id = integer(p, "ID").ok_or("Payment.ID is missing")?;
        let valid = boolean(p, "ValidPayment").ok_or("Payment.ValidPayment is missing")?;
        let amount_agorot = agorot(p, "Amount")?.unwrap_or(0);
        Ok(Payment {
            id,
            customer_id: integer(p, "CustomerID"),
            date: datetime(p, "Date"),
            valid,
            status: string(p, "Status"),
            status_description: string(p, "StatusDescription"),
            amount_agorot,
            auth_number: string(p, "AuthNumber"),
            card_last_digits: field(p, "PaymentMethod")
                .and_then(|m| string(m, "CreditCard_LastDigits")),
            external_identifier: string(p, "UniqueIdentifier")
                .or_else(|| string(p, "ExternalIdentifier")),
        })
    }

    /// Whether the row says anything about an identifier (present, even if null).
    pub(crate) fn row_carries_identifier(p: &Value) -> bool {
        p.as_object().is_some_and(|m| {
            m.keys().any(|k| {
                k.eq_ignore_ascii_case("UniqueIdentifier")
                    || k.eq_ignore_ascii_case("ExternalIdentifier")
            })
        })
    }

    /// The acquirer's code: from `StatusDescription` (" (קוד 006)", "(code 006)"), else from
    /// `Status` when it looks like one.
    pub fn decline_code(&self) -> Option<String> {
        if let Some(d) = &self.status_description {
            for marker in ["קוד", "code", "Code"] {
                if let Some(i) = d.find(marker) {
                    let code: String = d[i + marker.len()..]
                        .trim_start()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !code.is_empty() {
                        return Some(code);
                    }
                }
            }
        }
        self.status.clone().filter(|s| !s.is_empty())
    }
}

/// An approved charge and the document it issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedCharge {
    pub payment: Payment,
    pub document_id: Option<i64>,
    pub document_number: Option<i64>,
    pub customer_id: Option<i64>,
    pub document_download_url: Option<String>,
}

/// The business outcome of a charge. A decline is final: it is not an error to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Approved(ApprovedCharge),
    Declined {
        /// For example `006`; `None` when SUMIT gave no code.
        code: Option<String>,
        description: String,
        payment_id: Option<i64>,
    },
}

impl ChargeOutcome {
    pub(crate) fn from_data(data: &Value) -> Result<Self, String> {
        let p = field(data, "Payment").ok_or("Data.Payment is missing")?;
        let payment = Payment::from_json(p)?;
        if payment.valid {
            Ok(ChargeOutcome::Approved(ApprovedCharge {
                document_id: integer(data, "DocumentID"),
                document_number: integer(data, "DocumentNumber"),
                customer_id: integer(data, "CustomerID").or(payment.customer_id),
                document_download_url: string(data, "DocumentDownloadURL"),
                payment,
            }))
        } else {
            Ok(ChargeOutcome::Declined {
                code: payment.decline_code(),
                description: payment
                    .status_description
                    .clone()
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                payment_id: Some(payment.id),
            })
        }
    }
}

/// `/billing/payments/list/`: payments dated `from` through `to` (whole days, inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPayments {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Only valid (true) or only declined (false) payments.
    pub valid: Option<bool>,
    pub start_index: u32,
}

impl ListPayments {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "Date_From": format!("{}T00:00:00", self.from),
            "Date_To": format!("{}T23:59:59", self.to),
            "Valid": self.valid,
            "StartIndex": self.start_index,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentsPage {
    pub payments: Vec<Payment>,
    pub has_next_page: bool,
}

/// The answer of a lookup by external identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentLookup {
    /// A payment carries the identifier (a valid one is preferred over a decline).
    Found(Payment),
    /// Every payment in the range was checked and none carries it.
    NotFound,
    /// Some payments in the range do not say which identifier they carry, so absence cannot be
    /// proven: the engine must not charge again on this answer (it pauses for an operator).
    Indeterminate { rows_without_identifier: usize },
}

/// How a document line was paid.
#[derive(Debug, Clone)]
pub enum PaymentDetails {
    Cash,
    BankTransfer {
        bank_number: u16,
        branch_number: u16,
        account_number: String,
        reference: Option<String>,
    },
    CreditCard {
        card_brand: Option<String>,
        last4: Option<String>,
    },
    Other {
        kind: String,
        description: Option<String>,
    },
}

/// A payment line of a receipt.
#[derive(Debug, Clone)]
pub struct DocumentPayment {
    pub amount_agorot: i64,
    pub details: PaymentDetails,
}

impl DocumentPayment {
    fn to_json(&self) -> Value {
        let (key, details) = match &self.details {
            PaymentDetails::Cash => ("Details_Cash", json!({})),
            PaymentDetails::BankTransfer {
                bank_number,
                branch_number,
                account_number,
                reference,
            } => (
                "Details_BankTransfer",
                json!({"BankNumber": bank_number, "BranchNumber": branch_number,
                       "AccountNumber": account_number, "Reference": reference}),
            ),
            PaymentDetails::CreditCard { card_brand, last4 } => (
                "Details_CreditCard",
                json!({"CardBrand": card_brand, "Last4Digits": last4}),
            ),
            PaymentDetails::Other { kind, description } => (
                "Details_Other",
                json!({"Type": kind, "Description": description}),
            ),
        };
        json!({ "Amount": agorot_to_json(self.amount_agorot), key: details })
    }
}

/// `/accounting/documents/create/`.
#[derive(Debug, Clone)]
pub struct CreateDocument {
    pub document_type: DocumentType,
    /// The document (tax point) date; `None` is today at the provider.
    pub date: Option<NaiveDate>,
    pub is_draft: bool,
    pub language: Option<DocumentLanguage>,
    pub customer: Customer,
    pub description: Option<String>,
    pub items: Vec<LineItem>,
    pub payments: Vec<DocumentPayment>,
    pub vat_included: bool,
    pub original_document_id: Option<i64>,
    pub send_by_email: bool,
}

impl CreateDocument {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "Details": {
                "Type": self.document_type as i64,
                "IsDraft": self.is_draft,
                "Date": self.date.map(|d| d.to_string()),
                "Language": self.language.map(DocumentLanguage::wire_name),
                "Currency": "ILS",
                "Customer": self.customer.to_json(),
                "SendByEmail": if self.send_by_email { json!({"Original": true}) } else { Value::Null },
                "Description": self.description,
            },
            "Items": self.items.iter().map(LineItem::to_json).collect::<Vec<_>>(),
            "Payments": self.payments.iter().map(DocumentPayment::to_json).collect::<Vec<_>>(),
            "VATIncluded": self.vat_included,
            "OriginalDocumentID": self.original_document_id,
        })
    }
}

/// A document SUMIT issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedDocument {
    pub document_id: i64,
    /// `None` for drafts.
    pub document_number: Option<i64>,
    pub customer_id: Option<i64>,
    pub download_url: Option<String>,
}

impl IssuedDocument {
    pub(crate) fn from_data(data: &Value) -> Result<Self, String> {
        Ok(IssuedDocument {
            document_id: integer(data, "DocumentID").ok_or("Data.DocumentID is missing")?,
            document_number: integer(data, "DocumentNumber").filter(|n| *n > 0),
            customer_id: integer(data, "CustomerID"),
            download_url: string(data, "DocumentDownloadURL"),
        })
    }
}

/// A line of an issued document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentLine {
    pub name: Option<String>,
    /// Thousandths of a unit (1500 is 1.5).
    pub quantity_thousandths: i64,
    pub unit_price_agorot: i64,
    pub total_agorot: Option<i64>,
}

/// `/accounting/documents/getdetails/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentDetails {
    pub document_id: i64,
    pub document_number: Option<i64>,
    /// `DocumentType` as its integer.
    pub document_type: Option<i64>,
    pub date: Option<NaiveDate>,
    pub is_draft: bool,
    pub description: Option<String>,
    pub lines: Vec<DocumentLine>,
    /// Sum of the payment lines, in agorot.
    pub payments_agorot: i64,
    pub download_url: Option<String>,
}

impl DocumentDetails {
    pub(crate) fn from_data(data: &Value, requested_id: i64) -> Result<Self, String> {
        let d = field(data, "Document").ok_or("Data.Document is missing")?;
        let mut lines = Vec::new();
        for item in field(data, "Items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let quantity = match field(item, "Quantity") {
                None => 1000,
                Some(q) => super::json::decimal_to_scaled(
                    q.as_str()
                        .map_or_else(|| q.to_string(), str::to_string)
                        .trim(),
                    3,
                )
                .ok_or("Items.Quantity is not a number")?,
            };
            lines.push(DocumentLine {
                name: field(item, "Item").and_then(|i| string(i, "Name")),
                quantity_thousandths: quantity,
                unit_price_agorot: agorot(item, "UnitPrice")?.unwrap_or(0),
                total_agorot: agorot(item, "TotalPrice")?,
            });
        }
        let mut payments_agorot = 0i64;
        for p in field(data, "Payments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            payments_agorot += agorot(p, "Amount")?.unwrap_or(0);
        }
        Ok(DocumentDetails {
            document_id: integer(data, "DocumentID").unwrap_or(requested_id),
            document_number: integer(data, "DocumentNumber").filter(|n| *n > 0),
            document_type: integer(d, "Type"),
            date: datetime(d, "Date").map(|dt| dt.date()),
            is_draft: boolean(d, "IsDraft").unwrap_or(false),
            description: string(d, "Description"),
            lines,
            payments_agorot,
            download_url: string(data, "DocumentDownloadURL"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_secrets_never_reach_debug_output() {
        let creds = Credentials::new(1000, "super-secret-key");
        assert!(!format!("{creds:?}").contains("super-secret-key"));
        let terminal = OpenTerminal {
            bank_code: 12,
            branch_code: 600,
            account_number: SecretString::from("123456".to_string()),
            program: UpayProgram::default(),
            daily_credit: false,
            disable_payments_credit: false,
            enable_american_express_diners: false,
            enable_billing: true,
            email_address: None,
        };
        assert!(!format!("{terminal:?}").contains("123456"));
        let created = CreatedCompany::from_data(
            &json!({"CompanyID": 5, "APIKey": "K-123", "APIPublicKey": "P-456"}),
        )
        .unwrap();
        let text = format!("{created:?}");
        assert!(!text.contains("K-123") && !text.contains("P-456"));
    }

    #[test]
    fn a_decline_code_is_read_from_the_description_or_the_status() {
        let mut p = Payment {
            id: 1,
            customer_id: None,
            date: None,
            valid: false,
            status: None,
            status_description: Some(" (קוד 006)".into()),
            amount_agorot: 0,
            auth_number: None,
            card_last_digits: None,
            external_identifier: None,
        };
        assert_eq!(p.decline_code().as_deref(), Some("006"));
        p.status_description = Some("Declined (code OG_20)".into());
        assert_eq!(p.decline_code().as_deref(), Some("OG_20"));
        p.status_description = Some("סירוב".into());
        p.status = Some("004".into());
        assert_eq!(p.decline_code().as_deref(), Some("004"));
    }

    #[test]
    fn requests_carry_exact_amounts_and_the_documented_field_names() {
        let charge = ChargeRequest {
            customer: Customer {
                name: Some("Dana".into()),
                ..Customer::default()
            },
            single_use_token: SecretString::from("tok_approve".to_string()),
            items: vec![LineItem {
                name: "Vase".into(),
                sku: None,
                quantity: 2,
                unit_price_agorot: 4990,
                description: None,
            }],
            vat_included: true,
            document_type: Some(DocumentType::InvoiceAndReceipt),
            document_description: None,
            document_language: None,
            send_document_by_email: false,
            payments_count: None,
            authorise_only: false,
            external_identifier: Some("order-42".into()),
        };
        let v = charge.to_json();
        assert_eq!(v["Items"][0]["UnitPrice"].to_string(), "49.9");
        assert_eq!(v["UniqueIdentifier"], "order-42");
        assert_eq!(v["DocumentType"], 1);
        assert_eq!(v["Customer"]["Name"], "Dana");
        assert!(v["Customer"].get("ID").is_none());
    }
}

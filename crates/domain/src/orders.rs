//! The run input shapes of the three workflows (`vendor_onboarding`, `vendor_charge`,
//! `vendor_document`), as the API builds them and the steps read them, with their validation.
//!
//! They live in the domain so that the API can parse and check a request without knowing the
//! steps, and the steps can read a run's input without knowing the API. Pure serde types and
//! rules: no IO, and nothing of the provider (the steps map [`DocumentKind`] to SUMIT's document
//! type themselves).
//!
//! A run's input is stored in the run row and shown to operators, so it never holds a secret: no
//! card number (refused here as at the API's edge), no API key, no bank account number. A charge
//! carries the provider's single-use token, which is consumed by the charge itself.
//!
//! Validation reports every problem at once, each at its JSON path relative to the input's root
//! (`items[1].quantity`), in English and Hebrew, as [`ValidationErrors`], so the API can answer
//! 422 with them as they are.

use crate::card::{card_number_refused, find_card_numbers};
use crate::errors::{FieldError, FieldProblem, ValidationErrors};
use crate::input::Shape;
use crate::vendor::{ModeKind, PublicVendorApplication};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The longest order id or document reference accepted (SUMIT's external identifiers are
/// short text fields).
pub const MAX_REFERENCE_CHARS: usize = 100;
/// The most installments a charge may ask for.
pub const MAX_INSTALLMENTS: u32 = 36;

/// The input of `vendor_onboarding`: the application without its bank account number
/// (`VendorApplication::to_public_json()`), plus the vendor's id.
///
/// ```json
/// {"vendor_id": "0190…", "external_id": "seller-1042", "legal_name": "דנה קרמיקה בע\"מ",
///  "corporate_number": "515555555", "business_type": "company", "email": "dana@example.co.il",
///  "phone": "+972521234567", "mode": "clearing",
///  "bank_account": {"bank": 12, "branch": 571, "last4": "1116", "checked": true}}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnboardingInput {
    /// The vendor row the API created.
    pub vendor_id: Uuid,
    /// The validated application, without the account number.
    #[serde(flatten)]
    pub application: PublicVendorApplication,
}

impl OnboardingInput {
    /// Whether the vendor takes card payments (and so needs a terminal).
    pub fn is_clearing(&self) -> bool {
        self.application.mode == ModeKind::Clearing
    }
}

/// The end customer of a charge or a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerInput {
    /// The customer's name as it appears on the document.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The customer's company number or ID, for a tax invoice to a business.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_number: Option<String>,
    /// The marketplace's own id of the customer; the provider finds the same customer by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// A priced line of a charge or a document. Prices include VAT unless the request says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemInput {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    pub quantity: u32,
    pub unit_price_agorot: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl ItemInput {
    /// `quantity × unit price`, if it does not overflow.
    pub fn total_agorot(&self) -> Option<i64> {
        self.unit_price_agorot.checked_mul(i64::from(self.quantity))
    }
}

/// The input of `vendor_charge`: charge an end customer on a ready vendor's terminal.
///
/// `amount_agorot` is what the customer pays, VAT included. Without `items` the charge has one
/// line named by `description`; with them, their total must equal `amount_agorot`.
///
/// ```json
/// {"vendor_id": "0190…", "order_id": "order-42", "amount_agorot": 5782, "currency": "ILS",
///  "single_use_token": "og-token-from-payments-js", "customer": {"name": "Noa Levi",
///  "email": "noa@example.com"}, "description": "Order 42",
///  "items": [{"name": "Vase", "quantity": 1, "unit_price_agorot": 5782}]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeInput {
    pub vendor_id: Uuid,
    /// The marketplace's order id: the charge's idempotency key, sent to the provider as its
    /// `UniqueIdentifier` and used to find the charge again after a lost answer.
    pub order_id: String,
    pub amount_agorot: i64,
    /// Only `ILS`.
    #[serde(default = "ils")]
    pub currency: String,
    /// The provider's single-use card token (payments.js `og-token`); never a card number.
    pub single_use_token: String,
    pub customer: CustomerInput,
    /// Shown on the document; the name of the single line when `items` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ItemInput>>,
    /// Installments (`Payments_Count`), 1 to 36.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installments: Option<u32>,
    /// Whether the provider e-mails the document to the customer.
    #[serde(default)]
    pub send_document_by_email: bool,
}

fn ils() -> String {
    "ILS".to_owned()
}

fn yes() -> bool {
    true
}

/// The kind of document to issue; each is one of SUMIT's document types (the steps map it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    Invoice,
    InvoiceAndReceipt,
    Receipt,
    ProformaInvoice,
    DonationReceipt,
    CreditInvoice,
    CreditInvoiceAndReceipt,
    CreditReceipt,
    Order,
    PriceQuotation,
    PaymentRequest,
}

impl DocumentKind {
    /// Receipts record money received: they need payment lines.
    pub fn needs_payments(self) -> bool {
        matches!(
            self,
            DocumentKind::InvoiceAndReceipt
                | DocumentKind::Receipt
                | DocumentKind::DonationReceipt
                | DocumentKind::CreditInvoiceAndReceipt
                | DocumentKind::CreditReceipt
        )
    }

    /// Invoices and their kin list what was sold: they need items.
    pub fn needs_items(self) -> bool {
        !matches!(
            self,
            DocumentKind::Receipt | DocumentKind::DonationReceipt | DocumentKind::CreditReceipt
        )
    }

    /// Invoice-receipts must be paid in full: payments equal the items' total.
    pub fn payments_equal_items(self) -> bool {
        matches!(
            self,
            DocumentKind::InvoiceAndReceipt | DocumentKind::CreditInvoiceAndReceipt
        )
    }
}

/// How a document's payment line was paid. Card payments carry at most the last four digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum PaymentMethodInput {
    Cash,
    /// A bank transfer into the vendor's account. The payer's account number is not taken:
    /// bank account numbers never enter a run.
    BankTransfer {
        bank: u16,
        branch: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    CreditCard {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        brand: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last4: Option<String>,
    },
    /// Anything else (PayPal, Bit, a voucher), named by `kind`.
    Other {
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
}

/// A payment line of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentPaymentInput {
    pub amount_agorot: i64,
    #[serde(flatten)]
    pub method: PaymentMethodInput,
}

/// The language of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentLanguageInput {
    He,
    En,
}

/// The input of `vendor_document`: issue an invoice or receipt in the vendor's name (for
/// documents-only vendors, and for cash or transfer sales of any vendor).
///
/// ```json
/// {"vendor_id": "0190…", "reference": "invoice-2025-0007", "document_type": "invoice_and_receipt",
///  "customer": {"name": "Noa Levi", "email": "noa@example.com"},
///  "items": [{"name": "Workshop", "quantity": 2, "unit_price_agorot": 15000}],
///  "payments": [{"method": "bank_transfer", "bank": 12, "branch": 571, "reference": "TRX-9",
///                "amount_agorot": 30000}],
///  "description": "Ceramics workshop", "send_by_email": true}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentInput {
    pub vendor_id: Uuid,
    /// The marketplace's reference of this document: it is issued once per vendor and reference.
    pub reference: String,
    pub document_type: DocumentKind,
    pub customer: CustomerInput,
    #[serde(default)]
    pub items: Vec<ItemInput>,
    #[serde(default)]
    pub payments: Vec<DocumentPaymentInput>,
    /// Whether item prices include VAT (default true).
    #[serde(default = "yes")]
    pub vat_included: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The document's date (tax point); default today at the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<DocumentLanguageInput>,
    #[serde(default)]
    pub send_by_email: bool,
}

/// The members of a customer, as the charge and document bodies carry it.
const CUSTOMER_SHAPE: Shape = Shape::Object(&[
    ("name", Shape::Any),
    ("email", Shape::Any),
    ("phone", Shape::Any),
    ("company_number", Shape::Any),
    ("external_id", Shape::Any),
]);

/// The members of an item.
const ITEM_SHAPE: Shape = Shape::Object(&[
    ("name", Shape::Any),
    ("sku", Shape::Any),
    ("quantity", Shape::Any),
    ("unit_price_agorot", Shape::Any),
    ("description", Shape::Any),
]);

/// The members of a document's payment line: `method` and `amount_agorot`, and the members of
/// every method (the API documents them flat, each saying which method it belongs to).
const PAYMENT_SHAPE: Shape = Shape::Object(&[
    ("amount_agorot", Shape::Any),
    ("method", Shape::Any),
    ("bank", Shape::Any),
    ("branch", Shape::Any),
    ("reference", Shape::Any),
    ("brand", Shape::Any),
    ("last4", Shape::Any),
    ("kind", Shape::Any),
    ("description", Shape::Any),
]);

/// The members a charge request body may have: [`ChargeInput`]'s (`vendor_id` optional there,
/// taken from the path).
pub const CHARGE_BODY_SHAPE: Shape = Shape::Object(&[
    ("vendor_id", Shape::Any),
    ("order_id", Shape::Any),
    ("amount_agorot", Shape::Any),
    ("currency", Shape::Any),
    ("single_use_token", Shape::Any),
    ("customer", CUSTOMER_SHAPE),
    ("description", Shape::Any),
    ("items", Shape::Array(&ITEM_SHAPE)),
    ("installments", Shape::Any),
    ("send_document_by_email", Shape::Any),
]);

/// The members a document request body may have: [`DocumentInput`]'s.
pub const DOCUMENT_BODY_SHAPE: Shape = Shape::Object(&[
    ("vendor_id", Shape::Any),
    ("reference", Shape::Any),
    ("document_type", Shape::Any),
    ("customer", CUSTOMER_SHAPE),
    ("items", Shape::Array(&ITEM_SHAPE)),
    ("payments", Shape::Array(&PAYMENT_SHAPE)),
    ("vat_included", Shape::Any),
    ("description", Shape::Any),
    ("date", Shape::Any),
    ("language", Shape::Any),
    ("send_by_email", Shape::Any),
]);

fn problem(code: &'static str, en: &str, he: &str) -> FieldProblem {
    FieldProblem::new(code, en, he)
}

fn check_reference(errors: &mut Vec<FieldError>, path: &str, value: &str) {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        errors.push(FieldProblem::required().at(path));
    } else if trimmed.chars().count() > MAX_REFERENCE_CHARS || trimmed != value {
        errors.push(
            problem(
                "invalid_reference",
                "Use at most 100 characters, without leading or trailing spaces.",
                "יש להשתמש בעד 100 תווים, ללא רווחים בהתחלה או בסוף.",
            )
            .at(path),
        );
    }
}

fn check_customer(errors: &mut Vec<FieldError>, customer: &CustomerInput) {
    if customer.name.trim().is_empty() {
        errors.push(FieldProblem::required().at("customer.name"));
    }
    if let Some(email) = &customer.email
        && !email.contains('@')
    {
        errors.push(
            problem(
                "invalid_email",
                "This is not an e-mail address.",
                "זו אינה כתובת דואר אלקטרוני.",
            )
            .at("customer.email"),
        );
    }
}

/// The default ceiling of one charge or document, and of each of its lines: ₪10,000,000.
pub const DEFAULT_MAX_AMOUNT_AGOROT: i64 = 1_000_000_000;

/// An amount above the ceiling `max` (in agorot), or one whose arithmetic overflowed.
fn above_ceiling(max: i64) -> FieldProblem {
    let shekels = crate::money::Agorot::new(max).to_decimal_string();
    problem(
        "amount_too_large",
        &format!("The amount is above the ceiling of {max} agorot (₪{shekels})."),
        &format!("הסכום גבוה מהתקרה של {max} אגורות (₪{shekels})."),
    )
}

/// Checks items and returns their total, when every line is valid, no line nor the total is
/// above `max` and nothing overflows (quantity × price and the sum are checked: a wrapped
/// total must never pass for the amount).
fn check_items(errors: &mut Vec<FieldError>, items: &[ItemInput], max: i64) -> Option<i64> {
    let mut total = Some(0i64);
    for (i, item) in items.iter().enumerate() {
        if item.name.trim().is_empty() {
            errors.push(FieldProblem::required().at(format!("items[{i}].name")));
        }
        if item.quantity == 0 {
            errors.push(
                problem(
                    "invalid_quantity",
                    "The quantity must be at least 1.",
                    "הכמות חייבת להיות לפחות 1.",
                )
                .at(format!("items[{i}].quantity")),
            );
        }
        if item.unit_price_agorot < 0 {
            errors.push(
                problem(
                    "invalid_amount",
                    "The price must not be negative.",
                    "המחיר אינו יכול להיות שלילי.",
                )
                .at(format!("items[{i}].unit_price_agorot")),
            );
        }
        let line = item.total_agorot().filter(|line| *line <= max);
        if line.is_none() {
            errors.push(above_ceiling(max).at(format!("items[{i}].unit_price_agorot")));
        }
        total = match (total, line) {
            (Some(t), Some(line)) => t.checked_add(line),
            _ => None,
        };
    }
    match total {
        Some(total) if total <= max => Some(total),
        Some(_) => {
            errors.push(above_ceiling(max).at("items"));
            None
        }
        None => {
            // A line already said why, unless only the sum overflowed.
            if !errors
                .iter()
                .any(|e| e.code == "amount_too_large" && e.field.starts_with("items["))
            {
                errors.push(above_ceiling(max).at("items"));
            }
            None
        }
    }
}

/// Refuses card numbers anywhere in `value` (the input serialised). Its `vendor_id` is a UUID,
/// which `find_card_numbers` never takes for a card number.
fn refuse_card_numbers(errors: &mut Vec<FieldError>, value: &Value) {
    for path in find_card_numbers(value) {
        errors.push(card_number_refused().at(path));
    }
}

fn finish(errors: Vec<FieldError>) -> Result<(), ValidationErrors> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors::new(errors))
    }
}

impl ChargeInput {
    /// Checks the charge: a reference-like order id, a positive amount in ILS not above
    /// `max_agorot`, a token, a named customer, items (if any) whose lines and total stay under
    /// the ceiling and add up to the amount, installments in range, and no card number anywhere.
    pub fn validate(&self, max_agorot: i64) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        if let Ok(value) = serde_json::to_value(self) {
            refuse_card_numbers(&mut errors, &value);
        }
        check_reference(&mut errors, "order_id", &self.order_id);
        if self.amount_agorot <= 0 {
            errors.push(
                problem(
                    "invalid_amount",
                    "The amount must be more than zero agorot.",
                    "הסכום חייב להיות גדול מאפס אגורות.",
                )
                .at("amount_agorot"),
            );
        } else if self.amount_agorot > max_agorot {
            errors.push(above_ceiling(max_agorot).at("amount_agorot"));
        }
        if self.currency != "ILS" {
            errors.push(
                problem(
                    "unsupported_currency",
                    "Only ILS is supported.",
                    "נתמך רק מטבע ש\"ח (ILS).",
                )
                .at("currency"),
            );
        }
        if self.single_use_token.trim().is_empty() {
            errors.push(FieldProblem::required().at("single_use_token"));
        }
        check_customer(&mut errors, &self.customer);
        if let Some(items) = &self.items {
            if items.is_empty() {
                errors.push(
                    problem(
                        "no_items",
                        "Leave items out, or list at least one.",
                        "יש להשמיט את הפריטים או לפרט לפחות אחד.",
                    )
                    .at("items"),
                );
            } else if let Some(total) = check_items(&mut errors, items, max_agorot)
                && total != self.amount_agorot
                && self.amount_agorot > 0
            {
                errors.push(
                    problem(
                        "items_do_not_add_up",
                        format!(
                            "The items add up to {total} agorot, not the amount of {} agorot.",
                            self.amount_agorot
                        )
                        .as_str(),
                        format!(
                            "סכום הפריטים הוא {total} אגורות ולא {} אגורות כסכום החיוב.",
                            self.amount_agorot
                        )
                        .as_str(),
                    )
                    .at("items"),
                );
            }
        }
        if let Some(n) = self.installments
            && !(1..=MAX_INSTALLMENTS).contains(&n)
        {
            errors.push(
                problem(
                    "invalid_installments",
                    "Installments must be between 1 and 36.",
                    "מספר התשלומים חייב להיות בין 1 ל-36.",
                )
                .at("installments"),
            );
        }
        finish(errors)
    }
}

impl DocumentInput {
    /// Checks the document: a reference, a named customer, items and payments as its type needs
    /// them (an invoice-receipt's payments equal its items' total), no line, payment or total
    /// above `max_agorot` (nor overflowing), and no card number anywhere.
    pub fn validate(&self, max_agorot: i64) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        if let Ok(value) = serde_json::to_value(self) {
            refuse_card_numbers(&mut errors, &value);
        }
        check_reference(&mut errors, "reference", &self.reference);
        check_customer(&mut errors, &self.customer);
        let kind = self.document_type;
        let items_total = if self.items.is_empty() {
            if kind.needs_items() {
                errors.push(
                    problem(
                        "no_items",
                        "This document type needs at least one item.",
                        "סוג מסמך זה דורש לפחות פריט אחד.",
                    )
                    .at("items"),
                );
            }
            Some(0)
        } else {
            check_items(&mut errors, &self.items, max_agorot)
        };
        let mut payments_total = Some(0i64);
        for (i, payment) in self.payments.iter().enumerate() {
            if payment.amount_agorot <= 0 {
                errors.push(
                    problem(
                        "invalid_amount",
                        "A payment must be more than zero agorot.",
                        "תשלום חייב להיות גדול מאפס אגורות.",
                    )
                    .at(format!("payments[{i}].amount_agorot")),
                );
            } else if payment.amount_agorot > max_agorot {
                errors.push(above_ceiling(max_agorot).at(format!("payments[{i}].amount_agorot")));
            }
            if let PaymentMethodInput::CreditCard {
                last4: Some(last4), ..
            } = &payment.method
                && !(last4.len() == 4 && last4.chars().all(|c| c.is_ascii_digit()))
            {
                errors.push(
                    problem(
                        "invalid_last4",
                        "Give exactly the last four digits of the card.",
                        "יש לציין בדיוק את ארבע הספרות האחרונות של הכרטיס.",
                    )
                    .at(format!("payments[{i}].last4")),
                );
            }
            if let PaymentMethodInput::Other { kind, .. } = &payment.method
                && kind.trim().is_empty()
            {
                errors.push(FieldProblem::required().at(format!("payments[{i}].kind")));
            }
            payments_total = payments_total.and_then(|t| t.checked_add(payment.amount_agorot));
        }
        if payments_total.is_none_or(|total| total > max_agorot)
            && !errors.iter().any(|e| e.code == "amount_too_large")
        {
            errors.push(above_ceiling(max_agorot).at("payments"));
            payments_total = None;
        }
        if kind.needs_payments() && self.payments.is_empty() {
            errors.push(
                problem(
                    "no_payments",
                    "This document type records money received: list its payments.",
                    "סוג מסמך זה מתעד תקבול: יש לפרט את התשלומים.",
                )
                .at("payments"),
            );
        }
        if kind.payments_equal_items()
            && !self.payments.is_empty()
            && let (Some(items), Some(payments)) = (items_total, payments_total)
            && items != payments
        {
            errors.push(
                problem(
                    "payments_do_not_add_up",
                    format!(
                        "The payments add up to {payments} agorot, not the items' total of {items} agorot."
                    )
                    .as_str(),
                    format!("סכום התשלומים הוא {payments} אגורות ולא {items} אגורות כסכום הפריטים.")
                        .as_str(),
                )
                .at("payments"),
            );
        }
        finish(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn charge() -> ChargeInput {
        serde_json::from_value(json!({
            "vendor_id": Uuid::nil(),
            "order_id": "order-42",
            "amount_agorot": 5782,
            "single_use_token": "tok_approve_1",
            "customer": {"name": "Noa Levi", "email": "noa@example.com"},
            "items": [{"name": "Vase", "quantity": 2, "unit_price_agorot": 2891}]
        }))
        .unwrap()
    }

    fn fields(errors: ValidationErrors) -> Vec<String> {
        errors.into_vec().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_charge_whose_items_add_up_is_valid_and_defaults_to_ils() {
        let c = charge();
        assert_eq!(c.currency, "ILS");
        assert_eq!(c.validate(DEFAULT_MAX_AMOUNT_AGOROT), Ok(()));
    }

    #[test]
    fn a_charge_reports_every_bad_field_at_its_path() {
        let mut c = charge();
        c.order_id = " ".into();
        c.currency = "USD".into();
        c.customer.name = String::new();
        c.items.as_mut().unwrap()[0].quantity = 0;
        c.installments = Some(40);
        let paths = fields(c.validate(DEFAULT_MAX_AMOUNT_AGOROT).unwrap_err());
        assert_eq!(
            paths,
            vec![
                "order_id",
                "currency",
                "customer.name",
                "items[0].quantity",
                "items",
                "installments"
            ]
        );
    }

    #[test]
    fn items_whose_total_overflows_never_pass_for_the_amount() {
        // Two lines of 2^62 agorot wrap to i64::MIN; a wrapped total must not be compared.
        let mut c = charge();
        c.amount_agorot = 5782;
        c.items = Some(vec![
            ItemInput {
                name: "a".into(),
                sku: None,
                quantity: 1,
                unit_price_agorot: 4_611_686_018_427_387_904,
                description: None,
            };
            2
        ]);
        let errors = c.validate(i64::MAX).unwrap_err();
        assert_eq!(fields(errors.clone()), vec!["items"]);
        assert_eq!(errors.errors()[0].code, "amount_too_large");
        // quantity × price overflowing is named at the line.
        let mut c = charge();
        c.items.as_mut().unwrap()[0].quantity = u32::MAX;
        c.items.as_mut().unwrap()[0].unit_price_agorot = i64::MAX / 2;
        let errors = c.validate(i64::MAX).unwrap_err();
        assert_eq!(fields(errors), vec!["items[0].unit_price_agorot"]);
    }

    #[test]
    fn amounts_above_the_ceiling_are_refused_at_their_fields() {
        let mut c = charge();
        c.amount_agorot = DEFAULT_MAX_AMOUNT_AGOROT + 1;
        c.items = Some(vec![ItemInput {
            name: "Yacht".into(),
            sku: None,
            quantity: 1,
            unit_price_agorot: DEFAULT_MAX_AMOUNT_AGOROT + 1,
            description: None,
        }]);
        let errors = c.validate(DEFAULT_MAX_AMOUNT_AGOROT).unwrap_err();
        assert_eq!(
            fields(errors.clone()),
            vec!["amount_agorot", "items[0].unit_price_agorot"]
        );
        assert!(errors.errors().iter().all(|e| e.code == "amount_too_large"));
        assert!(errors.errors()[0].message_en.contains("10000000.00"));
        c.amount_agorot = DEFAULT_MAX_AMOUNT_AGOROT;
        c.items.as_mut().unwrap()[0].unit_price_agorot = DEFAULT_MAX_AMOUNT_AGOROT;
        assert_eq!(c.validate(DEFAULT_MAX_AMOUNT_AGOROT), Ok(()));

        let receipt: DocumentInput = serde_json::from_value(json!({
            "vendor_id": Uuid::nil(), "reference": "r-1", "document_type": "receipt",
            "customer": {"name": "Noa"},
            "payments": [{"method": "cash", "amount_agorot": i64::MAX},
                         {"method": "cash", "amount_agorot": 1}]
        }))
        .unwrap();
        let errors = receipt.validate(i64::MAX).unwrap_err();
        assert_eq!(fields(errors), vec!["payments"]);
        let errors = receipt.validate(100).unwrap_err();
        assert_eq!(fields(errors), vec!["payments[0].amount_agorot"]);
    }

    #[test]
    fn a_card_number_anywhere_in_a_charge_is_refused() {
        let mut c = charge();
        c.description = Some("card 4580 4580 4580 4580".into());
        let errors = c.validate(DEFAULT_MAX_AMOUNT_AGOROT).unwrap_err();
        assert_eq!(errors.errors()[0].field, "description");
        assert_eq!(errors.errors()[0].code, "card_number_refused");
    }

    #[test]
    fn uuids_in_a_charge_are_not_taken_for_card_numbers() {
        // The digits of this UUID's first four groups pass Luhn, and so do the nil UUID's.
        let id = "80960213-6648-0783-0683-977905863653";
        let mut c = charge();
        c.vendor_id = Uuid::parse_str(id).unwrap();
        c.customer.external_id = Some(id.to_owned());
        c.description = Some(format!("Order {} of buyer {id}", Uuid::nil()));
        assert_eq!(c.validate(DEFAULT_MAX_AMOUNT_AGOROT), Ok(()));
    }

    #[test]
    fn an_invoice_receipt_needs_payments_that_equal_its_items() {
        let doc: DocumentInput = serde_json::from_value(json!({
            "vendor_id": Uuid::nil(),
            "reference": "inv-7",
            "document_type": "invoice_and_receipt",
            "customer": {"name": "Noa"},
            "items": [{"name": "Workshop", "quantity": 2, "unit_price_agorot": 15000}],
            "payments": [{"method": "cash", "amount_agorot": 20000}]
        }))
        .unwrap();
        assert!(doc.vat_included);
        assert_eq!(
            fields(doc.validate(DEFAULT_MAX_AMOUNT_AGOROT).unwrap_err()),
            vec!["payments"]
        );

        let fixed = DocumentInput {
            payments: vec![DocumentPaymentInput {
                amount_agorot: 30000,
                method: PaymentMethodInput::BankTransfer {
                    bank: 12,
                    branch: 571,
                    reference: Some("TRX-9".into()),
                },
            }],
            ..doc
        };
        assert_eq!(fixed.validate(DEFAULT_MAX_AMOUNT_AGOROT), Ok(()));
        let round_trip: DocumentInput =
            serde_json::from_value(serde_json::to_value(&fixed).unwrap()).unwrap();
        assert_eq!(round_trip, fixed);
    }

    #[test]
    fn a_receipt_without_payments_and_an_invoice_without_items_are_refused() {
        let receipt: DocumentInput = serde_json::from_value(json!({
            "vendor_id": Uuid::nil(), "reference": "r-1", "document_type": "receipt",
            "customer": {"name": "Noa"}
        }))
        .unwrap();
        assert_eq!(
            fields(receipt.validate(DEFAULT_MAX_AMOUNT_AGOROT).unwrap_err()),
            vec!["payments"]
        );
        let invoice = DocumentInput {
            document_type: DocumentKind::Invoice,
            ..receipt
        };
        assert_eq!(
            fields(invoice.validate(DEFAULT_MAX_AMOUNT_AGOROT).unwrap_err()),
            vec!["items"]
        );
    }

    #[test]
    fn the_onboarding_input_is_the_public_application_plus_the_vendor_id() {
        let body = json!({"vendor": {"external_id": "seller-1042", "legal_name": "Dana Ltd",
            "corporate_number": "515555555", "business_type": "company",
            "email": "dana@example.co.il", "phone": "052-123-4567", "mode": "clearing",
            "bank_account": {"bank": 12, "branch": 571, "account": "041116"}}});
        let application = crate::vendor::VendorApplication::from_request_body(&body).unwrap();
        let mut value = application.to_public_json();
        value["vendor_id"] = json!(Uuid::nil());
        let input: OnboardingInput = serde_json::from_value(value).unwrap();
        assert!(input.is_clearing());
        assert_eq!(input.application.phone.as_e164(), "+972521234567");
        assert!(!serde_json::to_string(&input).unwrap().contains("041116"));
    }
}

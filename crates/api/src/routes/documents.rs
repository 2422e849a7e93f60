//! `POST /v1/vendors/{id}/documents`: a marketplace backend asks to issue an invoice or receipt in
//! a vendor's name (for documents-only vendors, and for sales paid outside the terminal).
//!
//! The same edge as charges (see `routes::charges`): the body is `domain::orders::DocumentInput`
//! without `vendor_id`; card numbers, missing or wrong-typed members and invalid fields answer
//! 422; the run `vendor_document` is enqueued in one transaction with the idempotency key, once
//! per vendor and `reference`.

use axum::extract::{Path, State};
use axum::response::Response;
use domain::orders::{DOCUMENT_BODY_SHAPE, DocumentInput};
use serde::{Deserialize, Serialize};
use store::tokens::Role;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, IdempotencyKey, JsonBody, Language};
use crate::routes::charges::{CustomerBody, ItemBody, Order, OrderLinks, admit, parse_order_body};
use crate::routes::runs::parse_id;

/// The workflow every document runs.
pub(crate) const DOCUMENT_WORKFLOW: &str = "vendor_document";

/// A document request. Members not listed are refused (422 `unknown_field`).
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "documents the body; parsing is done into domain::orders::DocumentInput"
)]
pub(crate) struct DocumentRequest {
    /// The marketplace's reference of the document, unique per vendor. 1–100 characters, no
    /// leading or trailing spaces.
    #[schema(
        example = "invoice-2025-0007",
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\s\x00-\x1f\x7f]([^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
    )]
    reference: String,
    /// `invoice`, `invoice_and_receipt`, `receipt`, `proforma_invoice`, `donation_receipt`,
    /// `credit_invoice`, `credit_invoice_and_receipt`, `credit_receipt`, `order`,
    /// `price_quotation` or `payment_request`. Receipts need `payments`; all but receipts need
    /// `items`; invoice-receipts' payments must equal their items' total.
    #[schema(inline)]
    document_type: DocumentType,
    customer: CustomerBody,
    items: Option<Vec<ItemBody>>,
    payments: Option<Vec<PaymentBody>>,
    /// Whether item prices include VAT (default true).
    #[schema(nullable = false, default = true)]
    vat_included: Option<bool>,
    #[schema(example = "Ceramics workshop")]
    description: Option<String>,
    /// The document's date (tax point), `YYYY-MM-DD`; default today at the provider.
    #[schema(example = "2025-03-01", format = Date)]
    date: Option<String>,
    /// The document's language (default: the vendor's, Hebrew).
    #[schema(inline)]
    language: Option<DocumentLanguage>,
    /// Whether the provider e-mails the document to the customer (default false).
    #[schema(nullable = false, default = false)]
    send_by_email: Option<bool>,
    /// Optional; if present it must be the vendor id of the path.
    vendor_id: Option<Uuid>,
}

/// The kinds of document (SUMIT's document types).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(
    dead_code,
    reason = "documents the body; parsed as domain::orders::DocumentKind"
)]
pub(crate) enum DocumentType {
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

/// A document's language.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(
    dead_code,
    reason = "documents the body; parsed as domain::orders::DocumentLanguageInput"
)]
pub(crate) enum DocumentLanguage {
    He,
    En,
}

/// How a receipt's line was paid.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(
    dead_code,
    reason = "documents the body; parsed as domain::orders::PaymentMethodInput"
)]
pub(crate) enum PaymentMethod {
    Cash,
    BankTransfer,
    CreditCard,
    Other,
}

/// A payment line of a receipt. Which members apply depends on `method`.
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "documents the body; parsing is done into domain::orders::DocumentPaymentInput"
)]
pub(crate) struct PaymentBody {
    /// More than zero.
    #[schema(example = 30000, minimum = 1, maximum = 1_000_000_000)]
    amount_agorot: i64,
    #[schema(inline)]
    method: PaymentMethod,
    /// `bank_transfer`: the bank code.
    #[schema(example = 12)]
    bank: Option<u16>,
    /// `bank_transfer`: the branch.
    #[schema(example = 571)]
    branch: Option<u16>,
    /// `bank_transfer`: the transfer's reference.
    #[schema(example = "TRX-9")]
    reference: Option<String>,
    /// `credit_card`: the card brand.
    brand: Option<String>,
    /// `credit_card`: the last four digits only (a card number is refused).
    #[schema(pattern = r"^[0-9]{4}$")]
    last4: Option<String>,
    /// `other`: what it was (PayPal, Bit, a voucher). Required for `other`.
    kind: Option<String>,
    /// `other`: a description.
    description: Option<String>,
}

/// The answer to an accepted document.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DocumentAccepted {
    run_id: Uuid,
    vendor_id: Uuid,
    reference: String,
    /// Always `pending` when first accepted.
    status: String,
    links: OrderLinks,
}

/// Issue a document (invoice, receipt, ...) in a vendor's name.
#[utoipa::path(post, path = "/v1/vendors/{id}/documents", tag = "documents",
    request_body = DocumentRequest,
    params(("id" = Uuid, Path, description = "The vendor's id"),
           ("Idempotency-Key" = Option<String>, Header,
            description = "Same key and body replays the stored answer; another body is 409")),
    responses(
        (status = 202, description = "Accepted: the document run is enqueued", body = DocumentAccepted),
        (status = 400, description = "Malformed JSON", content_type = "application/problem+json"),
        (status = 401, description = "No valid token", content_type = "application/problem+json"),
        (status = 403, description = "Not a backend or operator token", content_type = "application/problem+json"),
        (status = 404, description = "No such vendor in your marketplace", content_type = "application/problem+json"),
        (status = 409, description = "The reference was already used for this vendor (`run_id`, `links.run` \
            and `links.document` name its run and its read), or the idempotency key was used for another body", content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`unknown_field` for members not listed here, \
            `invalid_characters` for control characters, `amount_too_large` above the ceiling), or a card number \
            anywhere (`card_number_refused`)",
            content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn create_document(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path(id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Backend, Role::Operator])?;
    let vendor_id = parse_id(&id, "vendor")?;
    let input: DocumentInput = parse_order_body(&body, &DOCUMENT_BODY_SHAPE, vendor_id, lang)?;
    input
        .validate(state.max_amount_agorot)
        .map_err(|errors| ApiError::Validation(errors, lang))?;
    let order = Order {
        workflow: DOCUMENT_WORKFLOW,
        resource: "documents",
        key_field: "reference",
        key: &input.reference,
        input: serde_json::to_value(&input).map_err(ApiError::internal)?,
        needs_clearing: false,
    };
    admit(
        &state,
        caller,
        key.as_deref(),
        vendor_id,
        &body,
        order,
        |run_id| DocumentAccepted {
            run_id,
            vendor_id,
            reference: input.reference.clone(),
            status: "pending".to_owned(),
            links: OrderLinks::new(run_id, vendor_id),
        },
    )
    .await
}

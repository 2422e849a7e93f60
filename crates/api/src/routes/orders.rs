//! The order reads of the marketplace API: a vendor's charges and documents, one by the
//! marketplace's own key (`GET /v1/vendors/{id}/charges/{order_id}`,
//! `GET /v1/vendors/{id}/documents/{reference}`) or all of them newest first with a keyset
//! cursor. Every read is scoped to the caller's marketplace; any role may read.
//!
//! An order's status comes from its run (`domain::order_status`); the provider's references are
//! picked one by one from the run's context. The run's input is never shown whole (a charge's
//! holds the single-use card token): only the amount and the currency are taken from it.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use domain::errors::{FieldError, ValidationErrors};
use domain::order_status::OrderStatus;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::run_queries::{OrderRun, RunCursor};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, Language, Query};
use crate::routes::charges::CHARGE_WORKFLOW;
use crate::routes::documents::DOCUMENT_WORKFLOW;
use crate::routes::paging;
use crate::routes::runs::parse_id;

/// What is escaped in a key put into a path segment: all but RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The path of one charge or document: `/v1/vendors/{vendor_id}/{resource}/{key}`, the key
/// percent-encoded.
pub(crate) fn order_path(vendor_id: Uuid, resource: &str, key: &str) -> String {
    format!(
        "/v1/vendors/{vendor_id}/{resource}/{}",
        utf8_percent_encode(key, SEGMENT)
    )
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OrderStatusName {
    /// Accepted; its run has not started yet.
    Pending,
    /// Its run is working on it, or waits for the vendor to become ready.
    Processing,
    /// The charge was approved, or the document issued.
    Succeeded,
    /// The card issuer declined the charge (final).
    Declined,
    /// It failed; `status_reason` says why.
    Failed,
    /// Its run is paused for an operator; `status_reason` says why.
    ActionRequired,
    /// Its run was cancelled.
    Cancelled,
}

impl From<OrderStatus> for OrderStatusName {
    fn from(status: OrderStatus) -> Self {
        match status {
            OrderStatus::Pending => OrderStatusName::Pending,
            OrderStatus::Processing => OrderStatusName::Processing,
            OrderStatus::Succeeded => OrderStatusName::Succeeded,
            OrderStatus::Declined => OrderStatusName::Declined,
            OrderStatus::Failed => OrderStatusName::Failed,
            OrderStatus::ActionRequired => OrderStatusName::ActionRequired,
            OrderStatus::Cancelled => OrderStatusName::Cancelled,
        }
    }
}

/// Where to follow a charge or a document.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrderReadLinks {
    /// This charge or document.
    #[serde(rename = "self")]
    #[schema(rename = "self")]
    this: String,
    /// Its run: `/v1/runs/{run_id}`.
    run: String,
    /// The vendor: `/v1/vendors/{vendor_id}`.
    vendor: String,
}

/// The provider's payment, once the charge was answered.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PaymentRefs {
    /// The payment's id at the provider.
    payment_id: Option<i64>,
    /// The approval number.
    auth_number: Option<String>,
    /// The card's last four digits.
    card_last4: Option<String>,
    /// What was charged, in agorot.
    amount_agorot: Option<i64>,
}

/// The issuer's decline of a charge.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeclineRefs {
    code: Option<String>,
    description: Option<String>,
}

/// The provider's document, once issued.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DocumentRefs {
    /// The document's id at the provider.
    document_id: Option<i64>,
    /// Its number in the vendor's books.
    document_number: Option<i64>,
    /// Where to download it.
    url: Option<String>,
}

/// A charge as the API shows it: status, amount, the provider's references once known.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChargeView {
    /// The marketplace's order id.
    #[schema(example = "order-42")]
    order_id: String,
    vendor_id: Uuid,
    run_id: Uuid,
    status: OrderStatusName,
    /// Why the run is paused or failed.
    status_reason: Option<String>,
    /// What the customer pays, VAT included, in agorot.
    amount_agorot: Option<i64>,
    #[schema(example = "ILS")]
    currency: Option<String>,
    /// Once the provider answered an approval (or a decline that names a payment).
    payment: Option<PaymentRefs>,
    /// For a declined charge.
    decline: Option<DeclineRefs>,
    /// The document issued with the charge, once known.
    document: Option<DocumentRefs>,
    links: OrderReadLinks,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

/// A document as the API shows it: status, total, the provider's references once issued.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DocumentView {
    /// The marketplace's reference of the document.
    #[schema(example = "invoice-2025-0007")]
    reference: String,
    vendor_id: Uuid,
    run_id: Uuid,
    status: OrderStatusName,
    /// Why the run is paused or failed.
    status_reason: Option<String>,
    /// The kind of document asked for, as in the request's `document_type`.
    #[schema(example = "invoice_and_receipt")]
    document_type: Option<String>,
    /// The document's total in agorot, once issued.
    total_agorot: Option<i64>,
    /// The provider's document, once issued.
    document: Option<DocumentRefs>,
    links: OrderReadLinks,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

fn int(object: Option<&Value>, key: &str) -> Option<i64> {
    object.and_then(|o| o.get(key)).and_then(Value::as_i64)
}

fn string(object: Option<&Value>, key: &str) -> Option<String> {
    object
        .and_then(|o| o.get(key))
        .and_then(|value| match value {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        })
}

fn links(vendor_id: Uuid, resource: &str, key: &str, run_id: Uuid) -> OrderReadLinks {
    OrderReadLinks {
        this: order_path(vendor_id, resource, key),
        run: format!("/v1/runs/{run_id}"),
        vendor: format!("/v1/vendors/{vendor_id}"),
    }
}

fn status(order: &OrderRun) -> OrderStatusName {
    OrderStatus::of_run(
        order.run.status,
        order.run.outcome.as_deref(),
        order.run.attempt,
    )
    .into()
}

impl ChargeView {
    fn new(vendor_id: Uuid, order: OrderRun) -> ChargeView {
        let charge = order.run.context.get("charge");
        let payment_id = int(charge, "payment_id");
        let declined = string(charge, "result").as_deref() == Some("declined");
        let document_id = int(charge, "document_id");
        let document_number = int(charge, "document_number");
        let url = string(charge, "document_url");
        ChargeView {
            links: links(vendor_id, "charges", &order.order_key, order.run.id),
            status: status(&order),
            vendor_id,
            run_id: order.run.id,
            status_reason: order.run.status_reason,
            amount_agorot: int(Some(&order.run.input), "amount_agorot"),
            currency: string(Some(&order.run.input), "currency"),
            payment: payment_id.map(|payment_id| PaymentRefs {
                payment_id: Some(payment_id),
                auth_number: string(charge, "auth_number"),
                card_last4: string(charge, "card_last4"),
                amount_agorot: int(charge, "amount_agorot"),
            }),
            decline: declined.then(|| DeclineRefs {
                code: string(charge, "decline_code"),
                description: string(charge, "decline_description"),
            }),
            document: (document_id.is_some() || document_number.is_some() || url.is_some())
                .then_some(DocumentRefs {
                    document_id,
                    document_number,
                    url,
                }),
            order_id: order.order_key,
            created_at: order.run.created_at,
            updated_at: order.run.updated_at,
            finished_at: order.run.finished_at,
        }
    }
}

impl DocumentView {
    fn new(vendor_id: Uuid, order: OrderRun) -> DocumentView {
        let document = order.run.context.get("document");
        let document_id = int(document, "document_id");
        DocumentView {
            links: links(vendor_id, "documents", &order.order_key, order.run.id),
            status: status(&order),
            vendor_id,
            run_id: order.run.id,
            status_reason: order.run.status_reason,
            document_type: string(Some(&order.run.input), "document_type"),
            total_agorot: int(document, "total_agorot"),
            document: document_id.map(|document_id| DocumentRefs {
                document_id: Some(document_id),
                document_number: int(document, "document_number"),
                url: string(document, "download_url"),
            }),
            reference: order.order_key,
            created_at: order.run.created_at,
            updated_at: order.run.updated_at,
            finished_at: order.run.finished_at,
        }
    }
}

/// Paging of a vendor's charges or documents. Each bad value answers 422 naming its parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListOrdersQuery {
    /// Page size, 1–100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = r"^[0-9]{1,16}_[0-9a-f]{32}$")]
    cursor: Option<String>,
}

/// A page of a vendor's charges, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChargePage {
    data: Vec<ChargeView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    next_cursor: Option<String>,
}

/// A page of a vendor's documents, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DocumentPage {
    data: Vec<DocumentView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    next_cursor: Option<String>,
}

/// Checks the vendor is the caller's, then reads a page of its orders of `workflow`.
async fn list_orders(
    state: &AppState,
    caller: Caller,
    lang: domain::errors::Lang,
    vendor: &str,
    query: ListOrdersQuery,
    workflow: &str,
) -> Result<(Uuid, Vec<OrderRun>, Option<String>), ApiError> {
    let vendor_id = parse_id(vendor, "vendor")?;
    let mut errors: Vec<FieldError> = Vec::new();
    let limit = paging::limit(query.limit.as_deref(), &mut errors);
    let cursor = paging::cursor(query.cursor.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(ValidationErrors::new(errors), lang));
    }
    let mut conn = state.pool.acquire().await?;
    store::vendors::find(&mut conn, caller.marketplace_id(), vendor_id)
        .await?
        .ok_or(ApiError::NotFound("vendor"))?;
    let rows = store::run_queries::list_orders(
        &mut conn,
        caller.marketplace_id(),
        vendor_id,
        workflow,
        cursor,
        limit + 1,
    )
    .await?;
    let (rows, next_cursor) = paging::page(rows, limit, |order| RunCursor {
        created_at: order.run.created_at,
        id: order.run.id,
    });
    Ok((vendor_id, rows, next_cursor))
}

/// Finds the order `key` of `workflow` of the caller's vendor: 404 for an unknown vendor or key.
async fn find_order(
    state: &AppState,
    caller: Caller,
    vendor: &str,
    key: &str,
    workflow: &str,
    what: &'static str,
) -> Result<(Uuid, OrderRun), ApiError> {
    let vendor_id = parse_id(vendor, "vendor")?;
    // A key with control characters (PostgreSQL refuses NUL) or over 100 characters was never
    // admitted, so it names nothing.
    if key.chars().any(char::is_control) || key.chars().count() > 100 {
        return Err(ApiError::NotFound(what));
    }
    let mut conn = state.pool.acquire().await?;
    let order = store::run_queries::find_order(
        &mut conn,
        caller.marketplace_id(),
        vendor_id,
        workflow,
        key,
    )
    .await?
    .ok_or(ApiError::NotFound(what))?;
    Ok((vendor_id, order))
}

/// List a vendor's charges, newest first.
#[utoipa::path(get, path = "/v1/vendors/{id}/charges", tag = "charges", params(
        ("id" = Uuid, Path, description = "The vendor's id"), ListOrdersQuery),
    responses((status = 200, body = ChargePage),
              (status = 400, description = "A malformed query string", content_type = "application/problem+json"),
              (status = 401, description = "No valid token", content_type = "application/problem+json"),
              (status = 404, description = "No such vendor in your marketplace", content_type = "application/problem+json"),
              (status = 422, description = "A bad parameter, named in `errors[].field`", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn list_charges(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path(id): Path<String>,
    Query(query): Query<ListOrdersQuery>,
) -> Result<Json<ChargePage>, ApiError> {
    let (vendor_id, rows, next_cursor) =
        list_orders(&state, caller, lang, &id, query, CHARGE_WORKFLOW).await?;
    Ok(Json(ChargePage {
        data: rows
            .into_iter()
            .map(|order| ChargeView::new(vendor_id, order))
            .collect(),
        next_cursor,
    }))
}

/// Read a charge by the marketplace's order id: its status, amount and the provider's references.
#[utoipa::path(get, path = "/v1/vendors/{id}/charges/{order_id}", tag = "charges", params(
        ("id" = Uuid, Path, description = "The vendor's id"),
        ("order_id" = String, Path, description = "The marketplace's order id, percent-encoded")),
    responses((status = 200, body = ChargeView),
              (status = 401, description = "No valid token", content_type = "application/problem+json"),
              (status = 404, description = "No such vendor in your marketplace, or no charge of it with this order id",
                content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn get_charge(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, order_id)): Path<(String, String)>,
) -> Result<Json<ChargeView>, ApiError> {
    let (vendor_id, order) =
        find_order(&state, caller, &id, &order_id, CHARGE_WORKFLOW, "charge").await?;
    Ok(Json(ChargeView::new(vendor_id, order)))
}

/// List a vendor's documents, newest first.
#[utoipa::path(get, path = "/v1/vendors/{id}/documents", tag = "documents", params(
        ("id" = Uuid, Path, description = "The vendor's id"), ListOrdersQuery),
    responses((status = 200, body = DocumentPage),
              (status = 400, description = "A malformed query string", content_type = "application/problem+json"),
              (status = 401, description = "No valid token", content_type = "application/problem+json"),
              (status = 404, description = "No such vendor in your marketplace", content_type = "application/problem+json"),
              (status = 422, description = "A bad parameter, named in `errors[].field`", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn list_documents(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path(id): Path<String>,
    Query(query): Query<ListOrdersQuery>,
) -> Result<Json<DocumentPage>, ApiError> {
    let (vendor_id, rows, next_cursor) =
        list_orders(&state, caller, lang, &id, query, DOCUMENT_WORKFLOW).await?;
    Ok(Json(DocumentPage {
        data: rows
            .into_iter()
            .map(|order| DocumentView::new(vendor_id, order))
            .collect(),
        next_cursor,
    }))
}

/// Read a document by the marketplace's reference: its status, total and the provider's
/// document.
#[utoipa::path(get, path = "/v1/vendors/{id}/documents/{reference}", tag = "documents", params(
        ("id" = Uuid, Path, description = "The vendor's id"),
        ("reference" = String, Path, description = "The marketplace's reference of the document, percent-encoded")),
    responses((status = 200, body = DocumentView),
              (status = 401, description = "No valid token", content_type = "application/problem+json"),
              (status = 404, description = "No such vendor in your marketplace, or no document of it with this reference",
                content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn get_document(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, reference)): Path<(String, String)>,
) -> Result<Json<DocumentView>, ApiError> {
    let (vendor_id, order) = find_order(
        &state,
        caller,
        &id,
        &reference,
        DOCUMENT_WORKFLOW,
        "document",
    )
    .await?;
    Ok(Json(DocumentView::new(vendor_id, order)))
}

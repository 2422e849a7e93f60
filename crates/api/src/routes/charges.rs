//! `POST /v1/vendors/{id}/charges`: a marketplace backend asks to charge an end customer on a
//! vendor's terminal, with the provider's single-use card token.
//!
//! The body is `domain::orders::ChargeInput` without `vendor_id` (it comes from the path). It is
//! checked before anything is stored: a card number anywhere answers 422 `card_number_refused`,
//! then the body is deserialised (a missing or wrong-typed member answers 422 at its JSON path)
//! and validated (every bad field at once). Then, in ONE transaction: the idempotency key is
//! claimed, the vendor is looked up in the caller's marketplace, the `vendor_charge` run is
//! enqueued with the order id as its order key (which the database keeps unique per vendor: a
//! second order id answers 409 naming the first run), and the answer is saved for replays.
//!
//! This module also holds what the document route shares with it: the body parsing and the
//! transaction that admits one order per vendor and key.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::card::{card_number_refused, find_card_numbers};
use domain::errors::{FieldError, FieldProblem, Lang, ValidationErrors};
use domain::input::Shape;
use domain::orders::{CHARGE_BODY_SHAPE, ChargeInput};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::tokens::Role;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, IdempotencyKey, JsonBody, Language};
use crate::routes::runs::parse_id;

/// The workflow every charge runs.
pub(crate) const CHARGE_WORKFLOW: &str = "vendor_charge";

/// A charge request. Members not listed are refused (422 `unknown_field`).
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "documents the body; parsing is done into domain::orders::ChargeInput"
)]
pub(crate) struct ChargeRequest {
    /// The marketplace's order id, unique per vendor: the charge's idempotency key at the
    /// provider. 1–100 characters, no leading or trailing spaces.
    #[schema(
        example = "order-42",
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\s\x00-\x1f\x7f]([^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
    )]
    order_id: String,
    /// What the customer pays, VAT included, in agorot (1 ILS = 100 agorot): more than zero, at
    /// most the configured ceiling (`VENDORFLOW_MAX_AMOUNT_AGOROT`, by default 1,000,000,000 =
    /// ₪10,000,000). With `items`, their total.
    #[schema(example = 5782, minimum = 1, maximum = 1_000_000_000)]
    amount_agorot: i64,
    /// Only `ILS` (the default).
    #[schema(inline, nullable = false)]
    currency: Option<Currency>,
    /// The provider's single-use card token (payments.js `og-token`). Never a card number.
    #[schema(
        example = "og-token-from-payments-js",
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
    )]
    single_use_token: String,
    customer: CustomerBody,
    /// Shown on the document; the name of the single line when `items` is absent.
    #[schema(example = "Order 42")]
    description: Option<String>,
    /// The lines of the charge (at least one); their total must equal `amount_agorot`.
    #[schema(min_items = 1)]
    items: Option<Vec<ItemBody>>,
    /// Installments (`Payments_Count` at the provider), 1 to 36.
    #[schema(example = 1, minimum = 1, maximum = 36)]
    installments: Option<u32>,
    /// Whether the provider e-mails the document to the customer (default false).
    #[schema(nullable = false, default = false)]
    send_document_by_email: Option<bool>,
    /// Optional; if present it must be the vendor id of the path.
    vendor_id: Option<Uuid>,
}

/// The only currency.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code, reason = "documents the body")]
pub(crate) enum Currency {
    #[serde(rename = "ILS")]
    Ils,
}

/// The end customer of a charge or a document.
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "documents the body; parsing is done into domain::orders::CustomerInput"
)]
pub(crate) struct CustomerBody {
    /// The name on the document.
    #[schema(
        example = "Noa Levi",
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
    )]
    name: String,
    /// An e-mail address (it must hold an `@`).
    #[schema(
        example = "noa@example.com",
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*@[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
    )]
    email: Option<String>,
    #[schema(example = "052-123-4567")]
    phone: Option<String>,
    /// Company number or ID, for a tax invoice to a business.
    company_number: Option<String>,
    /// The marketplace's own id of the customer.
    external_id: Option<String>,
}

/// A priced line. Prices include VAT unless a document says `vat_included: false`.
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "documents the body; parsing is done into domain::orders::ItemInput"
)]
pub(crate) struct ItemBody {
    #[schema(
        example = "Vase",
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
    )]
    name: String,
    sku: Option<String>,
    /// At least 1.
    #[schema(example = 1, minimum = 1, maximum = 4_294_967_295_u64)]
    quantity: u32,
    /// The price of one, in agorot; not negative. Quantity × price, summed over the lines, is
    /// at most the amount ceiling.
    #[schema(example = 5782, minimum = 0, maximum = 1_000_000_000)]
    unit_price_agorot: i64,
    description: Option<String>,
}

/// The answer to an accepted charge.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChargeAccepted {
    run_id: Uuid,
    vendor_id: Uuid,
    order_id: String,
    /// Always `pending` when first accepted.
    status: String,
    links: OrderLinks,
}

/// Where to follow a charge or a document.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrderLinks {
    /// The run: `/v1/runs/{run_id}`.
    run: String,
    /// The vendor: `/v1/vendors/{vendor_id}`.
    vendor: String,
}

impl OrderLinks {
    pub(crate) fn new(run_id: Uuid, vendor_id: Uuid) -> Self {
        OrderLinks {
            run: format!("/v1/runs/{run_id}"),
            vendor: format!("/v1/vendors/{vendor_id}"),
        }
    }
}

/// Charge an end customer on a vendor's terminal.
#[utoipa::path(post, path = "/v1/vendors/{id}/charges", tag = "charges",
    request_body = ChargeRequest,
    params(("id" = Uuid, Path, description = "The vendor's id"),
           ("Idempotency-Key" = Option<String>, Header,
            description = "Same key and body replays the stored answer; another body is 409")),
    responses(
        (status = 202, description = "Accepted: the charge run is enqueued", body = ChargeAccepted),
        (status = 400, description = "Malformed JSON", content_type = "application/problem+json"),
        (status = 401, description = "No valid token", content_type = "application/problem+json"),
        (status = 403, description = "Not a backend or operator token", content_type = "application/problem+json"),
        (status = 404, description = "No such vendor in your marketplace", content_type = "application/problem+json"),
        (status = 409, description = "The order id was already used for this vendor (`run_id`, `links.run` \
            and `links.charge` name its run and its read), or the idempotency key was used for another body", content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`unknown_field` for members not listed here, \
            `invalid_characters` for control characters, `amount_too_large` above the ceiling), a card number \
            anywhere (`card_number_refused`), or a documents-only vendor (`vendor_not_clearing` at `vendor_id`)",
            content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn create_charge(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path(id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Backend, Role::Operator])?;
    let vendor_id = parse_id(&id, "vendor")?;
    let input: ChargeInput = parse_order_body(&body, &CHARGE_BODY_SHAPE, vendor_id, lang)?;
    input
        .validate(state.max_amount_agorot)
        .map_err(|errors| ApiError::Validation(errors, lang))?;
    let order = Order {
        workflow: CHARGE_WORKFLOW,
        resource: "charges",
        key_field: "order_id",
        key: &input.order_id,
        input: serde_json::to_value(&input).map_err(ApiError::internal)?,
        needs_clearing: true,
    };
    admit(
        &state,
        caller,
        key.as_deref(),
        vendor_id,
        &body,
        order,
        |run_id| ChargeAccepted {
            run_id,
            vendor_id,
            order_id: input.order_id.clone(),
            status: "pending".to_owned(),
            links: OrderLinks::new(run_id, vendor_id),
        },
    )
    .await
}

/// One order (a charge or a document) to admit for a vendor.
pub(crate) struct Order<'a> {
    /// The workflow to run.
    pub(crate) workflow: &'static str,
    /// The last segment of the route's path: `charges` or `documents`.
    pub(crate) resource: &'static str,
    /// The input member that names the order, unique per vendor: `order_id` or `reference`.
    pub(crate) key_field: &'static str,
    /// Its value.
    pub(crate) key: &'a str,
    /// The run's input: the typed input serialised, so that unknown members of the body (which
    /// might hold anything) are never stored.
    pub(crate) input: Value,
    /// Whether only a clearing vendor can carry it out (a charge needs a terminal): a
    /// documents-only vendor is then refused with 422 `vendor_not_clearing`, nothing stored.
    pub(crate) needs_clearing: bool,
}

/// The transaction shared by charges and documents: claims the idempotency key (a replay
/// answers the stored response), finds the vendor in the caller's marketplace (404), enqueues the
/// run with the order's key and saves the answer that `answer` builds from the run id, all
/// committed together.
///
/// One run per order is enforced by the database: the run's `order_key` is uniquely indexed
/// per (marketplace, vendor, workflow) (`store::order_keys`). A request for an order that
/// already has a run fails its insert (waiting, if the other request has not committed yet, for
/// it to commit or roll back); its transaction, with the key's claim, is rolled back and it
/// answers 409 naming the run that holds the key. Should that run vanish in between (retention
/// deleted it), the request is admitted again from the start, once.
pub(crate) async fn admit<A: Serialize>(
    state: &AppState,
    caller: Caller,
    key: Option<&str>,
    vendor_id: Uuid,
    body: &Value,
    order: Order<'_>,
    answer: impl Fn(Uuid) -> A,
) -> Result<Response, ApiError> {
    for _ in 0..2 {
        match admit_once(state, caller, key, vendor_id, body, &order, &answer).await? {
            Admission::Answered(response) => return Ok(response),
            Admission::OrderTaken => {
                let mut conn = state.pool.acquire().await?;
                let holder = store::order_keys::find_run(
                    &mut conn,
                    caller.marketplace_id(),
                    vendor_id,
                    order.workflow,
                    order.key,
                )
                .await?;
                if let Some(run_id) = holder {
                    return Ok(duplicate_order(&order, vendor_id, run_id));
                }
            }
        }
    }
    Err(ApiError::Conflict(format!(
        "this vendor's {} `{}` is being changed by another request: retry",
        order.key_field, order.key
    )))
}

/// What one try of [`admit`] came to.
enum Admission {
    /// Enqueued (202), replayed, or refused with a problem.
    Answered(Response),
    /// Another run holds the order key; the transaction was rolled back.
    OrderTaken,
}

async fn admit_once<A: Serialize>(
    state: &AppState,
    caller: Caller,
    key: Option<&str>,
    vendor_id: Uuid,
    body: &Value,
    order: &Order<'_>,
    answer: &impl Fn(Uuid) -> A,
) -> Result<Admission, ApiError> {
    let marketplace_id = caller.marketplace_id();
    let path = format!("/v1/vendors/{vendor_id}/{}", order.resource);
    let mut tx = state.pool.begin().await?;
    if let Some(key) = key
        && let Some(replayed) =
            crate::idempotent::claim(&mut tx, marketplace_id, key, &path, body).await?
    {
        return Ok(Admission::Answered(replayed));
    }
    let vendor = store::vendors::find(&mut tx, marketplace_id, vendor_id)
        .await?
        .ok_or(ApiError::NotFound("vendor"))?;
    if order.needs_clearing && vendor.mode != domain::vendor::ModeKind::Clearing.as_str() {
        // The claim of the idempotency key is rolled back with the transaction.
        return Err(ApiError::Validation(
            ValidationErrors::new(vec![vendor_not_clearing().at("vendor_id")]),
            Lang::En,
        ));
    }
    let enqueued = crate::enqueue::run(
        state,
        &mut tx,
        order.workflow,
        caller,
        vendor_id,
        order.input.clone(),
        Some(order.key),
    )
    .await;
    let run_id = match enqueued {
        Ok(run_id) => run_id,
        Err(engine::EngineError::OrderKeyTaken) => {
            // The failed insert aborted the transaction: the key's claim is rolled back with it,
            // as for any refusal, so the same key may be used again once the caller has fixed
            // the request.
            tx.rollback().await?;
            return Ok(Admission::OrderTaken);
        }
        Err(other) => return Err(other.into()),
    };
    let answer = serde_json::to_value(answer(run_id)).map_err(ApiError::internal)?;
    if let Some(key) = key {
        store::idempotency::save_response(&mut tx, marketplace_id, key, 202, &answer).await?;
    }
    tx.commit().await?;
    tracing::info!(
        vendor.id = %vendor_id,
        run.id = %run_id,
        workflow = order.workflow,
        "order enqueued"
    );
    Ok(Admission::Answered(
        (StatusCode::ACCEPTED, Json(answer)).into_response(),
    ))
}

/// The problem of a charge for a vendor that only issues documents (the same code the charge
/// step fails with, should a vendor's mode ever change under a queued run).
fn vendor_not_clearing() -> FieldProblem {
    FieldProblem::new(
        "vendor_not_clearing",
        "This vendor is documents-only: it has no terminal to charge on. Issue a document \
         instead (POST /v1/vendors/{id}/documents).",
        "ספק זה מוגדר למסמכים בלבד ואין לו מסוף לחיוב. יש להפיק מסמך במקום זאת \
         (POST /v1/vendors/{id}/documents).",
    )
}

/// The 409 for an order key already used: the conflict problem, extended with the existing run
/// and links to it and to the read of the charge or document that holds the key.
fn duplicate_order(order: &Order<'_>, vendor_id: Uuid, run_id: Uuid) -> Response {
    let mut members = serde_json::Map::new();
    members.insert("run_id".to_owned(), json!(run_id));
    members.insert(
        "links".to_owned(),
        json!({
            "run": format!("/v1/runs/{run_id}"),
            (order.resource.trim_end_matches('s')):
                crate::routes::orders::order_path(vendor_id, order.resource, order.key),
        }),
    );
    ApiError::ConflictExisting {
        detail: format!(
            "this vendor already has a run for {} `{}`: see /v1/runs/{run_id}",
            order.key_field, order.key
        ),
        members,
    }
    .into_response()
}

/// Parses an order body into its typed input `T`, the vendor id taken from the path.
///
/// In order: a card number anywhere is refused (422 `card_number_refused` at each path, and
/// nothing else is said, so that no message is built around the number); the body must be an
/// object; then a `vendor_id` that is not the path's, every member `shape` does not know
/// (`unknown_field`) and the first missing or wrong-typed member that deserialising `T` finds are
/// named together, each at its JSON path. Validation of the parsed value is the
/// caller's next step.
pub(crate) fn parse_order_body<T: DeserializeOwned>(
    body: &Value,
    shape: &Shape,
    vendor_id: Uuid,
    lang: Lang,
) -> Result<T, ApiError> {
    let refuse =
        |errors: Vec<FieldError>| ApiError::Validation(ValidationErrors::new(errors), lang);
    let cards = find_card_numbers(body);
    if !cards.is_empty() {
        return Err(refuse(
            cards
                .into_iter()
                .map(|path| card_number_refused().at(path))
                .collect(),
        ));
    }
    let Value::Object(members) = body else {
        return Err(refuse(vec![
            FieldProblem::invalid_type("a JSON object", "אובייקט JSON").at(""),
        ]));
    };
    let mut members = members.clone();
    let mut errors = Vec::new();
    if let Some(given) = members.get("vendor_id").filter(|value| !value.is_null()) {
        let same = given
            .as_str()
            .and_then(|text| Uuid::try_parse(text).ok())
            .is_some_and(|given| given == vendor_id);
        if !same {
            errors.push(
                FieldProblem::new(
                    "vendor_mismatch",
                    "Leave vendor_id out, or give the vendor id of the path.",
                    "יש להשמיט את vendor_id או לציין את מזהה הספק שבנתיב.",
                )
                .at("vendor_id"),
            );
        }
    }
    errors.extend(domain::input::unknown_members(body, shape, ""));
    members.insert("vendor_id".to_owned(), json!(vendor_id));
    let parsed = serde_path_to_error::deserialize(&Value::Object(members));
    if let Err(error) = &parsed {
        errors.push(deserialize_error(error));
    }
    if errors.is_empty() {
        parsed.map_err(|error| refuse(vec![deserialize_error(&error)]))
    } else {
        Err(refuse(errors))
    }
}

/// A deserialisation error as a field error at its JSON path (`items[0].quantity`).
///
/// serde's messages quote the offending value (`invalid type: string "4580…", expected i64`),
/// which may be anything the caller sent, so they are never passed on: only the kind of error
/// and what our types expected (which our code wrote) are used.
pub(crate) fn deserialize_error(
    error: &serde_path_to_error::Error<serde_json::Error>,
) -> FieldError {
    let mut path = String::new();
    for segment in error.path() {
        match segment {
            serde_path_to_error::Segment::Map { key } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            serde_path_to_error::Segment::Seq { index } => {
                path.push_str(&format!("[{index}]"));
            }
            // Our inputs have no externally tagged enums; past an unknown segment the path
            // would be a guess, so it stops at what is known.
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {
                break;
            }
        }
    }
    let message = error.inner().to_string();
    problem_of(&message).at(with_missing_field(path, &message))
}

/// The path of the missing member, for "missing field `name`" (serde reports it at the object
/// that lacks it); otherwise `path` as it is.
fn with_missing_field(mut path: String, message: &str) -> String {
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(name);
    }
    path
}

/// What a serde message means for the caller, without quoting the value.
fn problem_of(message: &str) -> FieldProblem {
    // The expectation is written last, after the value serde quotes; the last ", expected "
    // is therefore ours even if the value contains the same words.
    let expected = message
        .rfind(", expected ")
        .map(|at| &message[at + ", expected ".len()..]);
    if message.starts_with("missing field `") {
        FieldProblem::required()
    } else if message.starts_with("invalid type: ") {
        let (en, he) = expectation(expected.unwrap_or(""));
        FieldProblem::invalid_type(en, he)
    } else if message.starts_with("unknown variant `")
        && let Some(choices) = expected.and_then(|e| e.strip_prefix("one of "))
    {
        FieldProblem::new(
            "invalid_value",
            format!("Use one of {choices}."),
            format!("יש להשתמש באחד מהערכים {choices}."),
        )
    } else if message.starts_with("invalid value: ")
        && expected.is_some_and(|e| integer_type(e).is_some())
    {
        FieldProblem::new(
            "invalid_value",
            "The number is out of range.",
            "המספר מחוץ לטווח המותר.",
        )
    } else {
        FieldProblem::new(
            "invalid_value",
            "This value is not valid.",
            "ערך זה אינו תקין.",
        )
    }
}

/// serde's name of an integer type, if `expected` is one.
fn integer_type(expected: &str) -> Option<&str> {
    let name = expected.strip_prefix("a ").unwrap_or(expected);
    ["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64"]
        .into_iter()
        .find(|integer| *integer == name)
}

/// What serde expected, in words for the caller, in English and Hebrew.
fn expectation(expected: &str) -> (&'static str, &'static str) {
    if integer_type(expected).is_some() {
        ("a whole number", "מספר שלם")
    } else if expected == "a string" || expected.ends_with("date string") {
        ("text", "טקסט")
    } else if expected == "a boolean" {
        ("true or false", "true או false")
    } else if expected == "a sequence" {
        ("a list", "רשימה")
    } else if expected.starts_with("struct ")
        || expected.starts_with("internally tagged enum")
        || expected == "a map"
    {
        ("an object", "אובייקט")
    } else if expected.starts_with("variant identifier") || expected.starts_with("enum ") {
        ("one of the listed names", "אחד מהשמות המותרים")
    } else {
        ("a value of another type", "ערך מסוג אחר")
    }
}

#[cfg(test)]
mod tests {
    use domain::orders::DocumentInput;

    use super::*;

    fn charge_body() -> Value {
        json!({
            "order_id": "order-42",
            "amount_agorot": 5782,
            "single_use_token": "tok_approve_1",
            "customer": {"name": "Noa Levi"},
            "items": [{"name": "Vase", "quantity": 1, "unit_price_agorot": 5782}]
        })
    }

    /// The shape of `T`'s request body.
    fn shape_of<T>() -> &'static Shape {
        if std::any::type_name::<T>() == std::any::type_name::<DocumentInput>() {
            &domain::orders::DOCUMENT_BODY_SHAPE
        } else {
            &CHARGE_BODY_SHAPE
        }
    }

    fn errors_of<T: DeserializeOwned + std::fmt::Debug>(body: Value) -> Vec<FieldError> {
        match parse_order_body::<T>(&body, shape_of::<T>(), Uuid::nil(), Lang::En) {
            Err(ApiError::Validation(errors, _)) => errors.into_vec(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    fn error_of<T: DeserializeOwned + std::fmt::Debug>(body: Value) -> FieldError {
        match parse_order_body::<T>(&body, shape_of::<T>(), Uuid::nil(), Lang::En) {
            Err(ApiError::Validation(errors, _)) => {
                assert_eq!(errors.len(), 1, "{errors:?}");
                errors.into_vec().remove(0)
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn the_vendor_id_comes_from_the_path() {
        let vendor_id = Uuid::now_v7();
        let input: ChargeInput =
            parse_order_body(&charge_body(), &CHARGE_BODY_SHAPE, vendor_id, Lang::En).unwrap();
        assert_eq!(input.vendor_id, vendor_id);
        let mut same = charge_body();
        same["vendor_id"] = json!(vendor_id.to_string().to_uppercase());
        let input: ChargeInput =
            parse_order_body(&same, &CHARGE_BODY_SHAPE, vendor_id, Lang::En).unwrap();
        assert_eq!(input.vendor_id, vendor_id);

        let mut other = charge_body();
        other["vendor_id"] = json!(Uuid::now_v7());
        let error = error_of::<ChargeInput>(other);
        assert_eq!(
            (error.field.as_str(), error.code),
            ("vendor_id", "vendor_mismatch")
        );
    }

    #[test]
    fn missing_members_are_reported_at_their_full_path() {
        let mut body = charge_body();
        body.as_object_mut().unwrap().remove("customer");
        let error = error_of::<ChargeInput>(body);
        assert_eq!((error.field.as_str(), error.code), ("customer", "required"));

        let mut body = charge_body();
        body["items"][0].as_object_mut().unwrap().remove("quantity");
        let error = error_of::<ChargeInput>(body);
        assert_eq!(error.field, "items[0].quantity");
    }

    #[test]
    fn wrong_types_are_reported_at_their_path_without_the_value() {
        let mut body = charge_body();
        body["items"][0]["unit_price_agorot"] = json!("secret-ish 57.82");
        let error = error_of::<ChargeInput>(body);
        assert_eq!(error.field, "items[0].unit_price_agorot");
        assert_eq!(error.code, "invalid_type");
        assert_eq!(error.message_en, "Expected a whole number.");
        assert!(!error.to_string().contains("secret-ish"));

        let mut body = charge_body();
        body["amount_agorot"] = json!(57.82);
        let error = error_of::<ChargeInput>(body);
        assert_eq!(
            (error.field.as_str(), error.code),
            ("amount_agorot", "invalid_type")
        );

        let mut body = charge_body();
        body["items"][0]["quantity"] = json!(-1);
        let error = error_of::<ChargeInput>(body);
        assert_eq!(
            (error.field.as_str(), error.code),
            ("items[0].quantity", "invalid_value")
        );
        assert_eq!(error.message_en, "The number is out of range.");
    }

    #[test]
    fn unknown_members_are_named_each_with_the_first_type_error() {
        let mut body = charge_body();
        body["amount"] = json!(5782);
        body["customer"]["emial"] = json!("noa@example.com");
        body["items"][0]["qty"] = json!(1);
        body["items"][0]["quantity"] = json!("one");
        let found: Vec<(String, &str)> = errors_of::<ChargeInput>(body)
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect();
        assert_eq!(
            found,
            vec![
                ("amount".to_owned(), "unknown_field"),
                ("customer.emial".to_owned(), "unknown_field"),
                ("items[0].qty".to_owned(), "unknown_field"),
                ("items[0].quantity".to_owned(), "invalid_type"),
            ]
        );
        let body = json!({"reference": "r-1", "document_type": "receipt",
            "customer": {"name": "Noa"},
            "payments": [{"method": "cash", "amount_agorot": 100, "currency": "ILS"}]});
        let error = error_of::<DocumentInput>(body);
        assert_eq!(
            (error.field.as_str(), error.code),
            ("payments[0].currency", "unknown_field")
        );
    }

    #[test]
    fn an_unknown_document_type_lists_the_known_ones() {
        let body = json!({"reference": "r-1", "document_type": "napkin, expected nothing",
            "customer": {"name": "Noa"}});
        let error = error_of::<DocumentInput>(body);
        assert_eq!(error.field, "document_type");
        assert_eq!(error.code, "invalid_value");
        assert!(
            error.message_en.contains("`invoice_and_receipt`"),
            "{error}"
        );
        assert!(!error.message_en.contains("napkin"), "{error}");
    }

    #[test]
    fn a_card_number_is_refused_before_anything_else_and_a_non_object_is_refused() {
        let body = json!({"order_id": 5, "notes": ["4580 4580 4580 4580"]});
        let error = error_of::<ChargeInput>(body);
        assert_eq!(
            (error.field.as_str(), error.code),
            ("notes[0]", "card_number_refused")
        );
        let error = error_of::<ChargeInput>(json!([1, 2]));
        assert_eq!((error.field.as_str(), error.code), ("", "invalid_type"));
    }
}

//! `POST /v1/onboardings`: a marketplace backend enqueues a vendor's onboarding.
//!
//! The body is parsed into a `domain::vendor::VendorApplication` first; a bad body answers 422
//! with every bad field and stores nothing. Then, in ONE transaction: the idempotency key is
//! claimed, the vendor row, its encrypted bank account and the run are written by
//! `crate::onboarding::enqueue_onboarding` (shared with `vendorflow vendors import`), and the
//! response is saved for replays.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::vendor::VendorApplication;
use serde::{Deserialize, Serialize};
use store::tokens::Role;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, IdempotencyKey, JsonBody, Language};
use crate::onboarding::OnboardingError;

/// The onboarding request (design.md §8). Members not listed are refused (422 naming them).
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "documents the body; parsing is done by the domain parser"
)]
pub(crate) struct OnboardingRequest {
    vendor: VendorInput,
}

/// A vendor as the marketplace sends it. A `clearing` vendor charges cards on its own terminal
/// and needs `bank_account` for payouts; a `documents_only` vendor only issues invoices and
/// receipts and has none (`bank_account` absent or null). The document says so with
/// `if`/`then`/`else` (OpenAPI 3.1), added to the derived fields by the `ToSchema` below.
#[allow(
    dead_code,
    reason = "documents the body; parsing is done by the domain parser"
)]
#[derive(Debug)]
pub(crate) struct VendorInput;

/// The members of [`VendorInput`].
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "documents the body; parsing is done by the domain parser"
)]
struct VendorFields {
    /// The marketplace's own id of the vendor, unique per marketplace: letters A-Z, digits and
    /// `. _ : -`.
    #[schema(
        example = "seller-1042",
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z0-9._:-]+$"
    )]
    external_id: String,
    /// The legal name: up to 100 characters once surrounding spaces are trimmed, and no control
    /// characters at all (no line breaks or tabs either).
    #[schema(
        example = "דנה קרמיקה בע\"מ",
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    legal_name: String,
    /// Corporate number (ח"פ) or ID (ת"ז): up to 9 digits (spaces and dashes allowed) whose last
    /// is the check digit of the Israeli ID algorithm (format `il-id`).
    #[schema(example = "515555555", format = "il-id")]
    corporate_number: String,
    #[schema(schema_with = crate::schemas::business_type, example = "company")]
    business_type: String,
    /// E-mail address.
    #[schema(example = "dana@example.co.il", format = "email", max_length = 254)]
    email: String,
    /// An Israeli phone number in any common notation: `052-123-4567`, `+972 52 123 4567`,
    /// `03-555-1234` (format `il-phone`).
    #[schema(example = "052-123-4567", format = "il-phone")]
    phone: String,
    #[schema(inline)]
    mode: ModeInput,
    /// Required for a `clearing` vendor; absent or null for a `documents_only` one.
    bank_account: Option<BankAccountInput>,
}

/// `clearing` (charges cards; needs `bank_account`) or `documents_only`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "documents the body")]
enum ModeInput {
    Clearing,
    DocumentsOnly,
}

impl utoipa::PartialSchema for VendorInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::Schema;
        let mut schema = VendorFields::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.description = Some(
                "A vendor as the marketplace sends it. A `clearing` vendor charges cards on its \
                 own terminal and needs `bank_account` for payouts; a `documents_only` vendor \
                 only issues invoices and receipts, and has no `bank_account` (absent or null)."
                    .to_owned(),
            );
            let bank = format!("#/components/schemas/{}", BankAccountInput::name());
            object
                .extensions
                .get_or_insert_with(Default::default)
                .extend([
                    (
                        "if".to_owned(),
                        serde_json::json!({"properties": {"mode": {"const": "clearing"}},
                                       "required": ["mode"]}),
                    ),
                    (
                        "then".to_owned(),
                        serde_json::json!({"required": ["bank_account"],
                                       "properties": {"bank_account": {"$ref": bank}}}),
                    ),
                    (
                        "else".to_owned(),
                        serde_json::json!({"properties": {"bank_account": {"type": "null"}}}),
                    ),
                ]);
        }
        schema
    }
}

impl ToSchema for VendorInput {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            BankAccountInput::name().into_owned(),
            <BankAccountInput as utoipa::PartialSchema>::schema(),
        ));
        <BankAccountInput as ToSchema>::schemas(schemas);
    }
}

/// Where a clearing vendor's payouts go: bank code, branch and account number, which must pass
/// the bank's own check rule (Masav) when the bank has one.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(
    dead_code,
    reason = "documents the body; parsing is done by the domain parser"
)]
pub(crate) struct BankAccountInput {
    #[schema(schema_with = crate::schemas::bank_code)]
    bank: u16,
    /// The branch number, 0–999 (the bank's check rule decides which are valid).
    #[schema(example = 571, minimum = 0, maximum = 999)]
    branch: u16,
    /// The account number: 1 to 9 digits, not all zeros, passing the bank's own check rule
    /// (Masav) when the bank has one (format `il-bank-account`).
    #[schema(
        example = "041116",
        pattern = r"^[0-9]{1,9}$",
        format = "il-bank-account"
    )]
    account: String,
}

/// The answer to an accepted onboarding.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OnboardingAccepted {
    run_id: Uuid,
    vendor_id: Uuid,
    /// Always `pending` when first accepted.
    status: String,
    links: OnboardingLinks,
}

/// Where to follow the onboarding.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OnboardingLinks {
    run: String,
    vendor: String,
}

/// The 409 naming an existing vendor: `vendor_id` and `links` (`vendor`, and `run`, its latest
/// onboarding run, when it has one).
async fn existing_vendor(
    conn: &mut sqlx::PgConnection,
    marketplace_id: Uuid,
    vendor_id: Uuid,
    detail: String,
) -> Result<ApiError, ApiError> {
    let filter = store::run_queries::RunFilter {
        workflow: Some(crate::onboarding::ONBOARDING_WORKFLOW.to_owned()),
        subject_id: Some(vendor_id),
        ..Default::default()
    };
    let run = store::run_queries::list(conn, marketplace_id, &filter, None, 1)
        .await?
        .into_iter()
        .next();
    let mut links = serde_json::Map::new();
    links.insert(
        "vendor".to_owned(),
        serde_json::json!(format!("/v1/vendors/{vendor_id}")),
    );
    if let Some(run) = &run {
        links.insert(
            "run".to_owned(),
            serde_json::json!(format!("/v1/runs/{}", run.id)),
        );
    }
    let mut members = serde_json::Map::new();
    members.insert("vendor_id".to_owned(), serde_json::json!(vendor_id));
    if let Some(run) = &run {
        members.insert("run_id".to_owned(), serde_json::json!(run.id));
    }
    members.insert("links".to_owned(), serde_json::Value::Object(links));
    Ok(ApiError::ConflictExisting { detail, members })
}

/// Enqueue a vendor's onboarding.
#[utoipa::path(post, path = "/v1/onboardings", tag = "onboarding",
    request_body = OnboardingRequest,
    params(("Idempotency-Key" = Option<String>, Header,
            description = "Same key and body replays the stored answer; another body is 409")),
    responses(
        (status = 202, description = "Accepted: the onboarding run is enqueued", body = OnboardingAccepted),
        (status = 400, description = "Malformed JSON", content_type = "application/problem+json"),
        (status = 401, description = "No valid token", content_type = "application/problem+json"),
        (status = 403, description = "Not a backend or operator token", content_type = "application/problem+json"),
        (status = 409, description = "The external id exists, or another vendor of the marketplace has the \
            corporate number (`vendor_id`, `run_id` and `links.vendor`, `links.run` name that vendor and its \
            onboarding run), or the idempotency key was used for another body",
            content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, one entry each: also `unknown_field` for a member not listed \
            here and `invalid_characters` for a control character", content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn create_onboarding(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Backend, Role::Operator])?;
    let application = VendorApplication::from_request_body(&body)
        .map_err(|errors| ApiError::Validation(errors, lang))?;
    let marketplace_id = caller.marketplace_id();

    let mut tx = state.pool.begin().await?;
    if let Some(key) = &key
        && let Some(replayed) =
            crate::idempotent::claim(&mut tx, marketplace_id, key, "/v1/onboardings", &body).await?
    {
        return Ok(replayed);
    }

    let enqueued = match crate::onboarding::enqueue_onboarding(
        &mut tx,
        &state.definitions,
        &state.keyring,
        marketplace_id,
        &application,
        crate::enqueue::actor(caller),
    )
    .await
    {
        Ok(enqueued) => enqueued,
        Err(OnboardingError::ExternalIdTaken(external_id)) => {
            // The failed insert aborted the transaction (and the key's claim with it).
            tx.rollback().await?;
            let mut conn = state.pool.acquire().await?;
            let existing =
                store::vendors::find_by_external_id(&mut conn, marketplace_id, &external_id)
                    .await?
                    .ok_or_else(|| {
                        ApiError::Conflict(format!(
                            "the vendor with external_id `{external_id}` is being changed by \
                             another request: retry"
                        ))
                    })?;
            return Err(existing_vendor(
                &mut conn,
                marketplace_id,
                existing.id,
                format!(
                    "a vendor with external_id `{external_id}` already exists in this \
                     marketplace: see /v1/vendors/{}",
                    existing.id
                ),
            )
            .await?);
        }
        Err(OnboardingError::CorporateNumberTaken { vendor_id }) => {
            tx.rollback().await?;
            let mut conn = state.pool.acquire().await?;
            return Err(existing_vendor(
                &mut conn,
                marketplace_id,
                vendor_id,
                format!(
                    "another vendor of this marketplace already has this corporate number: see \
                     /v1/vendors/{vendor_id}"
                ),
            )
            .await?);
        }
        Err(other) => return Err(other.into()),
    };
    let (run_id, vendor_id) = (enqueued.run_id, enqueued.vendor_id);

    let accepted = OnboardingAccepted {
        run_id,
        vendor_id,
        status: "pending".to_owned(),
        links: OnboardingLinks {
            run: format!("/v1/runs/{run_id}"),
            vendor: format!("/v1/vendors/{vendor_id}"),
        },
    };
    let answer = serde_json::to_value(&accepted).map_err(ApiError::internal)?;
    if let Some(key) = &key {
        store::idempotency::save_response(&mut tx, marketplace_id, key, 202, &answer).await?;
    }
    tx.commit().await?;
    tracing::info!(vendor.id = %vendor_id, run.id = %run_id, "onboarding enqueued");
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

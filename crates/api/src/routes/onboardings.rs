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
use serde_json::json;
use store::tokens::Role;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, problem_response};
use crate::extract::{Caller, IdempotencyKey, JsonBody, Language};

/// The onboarding request (design.md §8). Field names are fixed; more optional fields may come.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(
    dead_code,
    reason = "documents the body; parsing is done by the domain parser"
)]
pub(crate) struct OnboardingRequest {
    vendor: VendorInput,
}

/// A vendor as the marketplace sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(
    dead_code,
    reason = "documents the body; parsing is done by the domain parser"
)]
pub(crate) struct VendorInput {
    /// The marketplace's own id of the vendor, unique per marketplace.
    #[schema(example = "seller-1042")]
    external_id: String,
    /// The legal name.
    #[schema(example = "דנה קרמיקה בע\"מ")]
    legal_name: String,
    /// Corporate number (ח"פ) or ID (ת"ז), up to 9 digits with a check digit.
    #[schema(example = "515555555")]
    corporate_number: String,
    /// `exempt_dealer`, `licensed_dealer`, `company`, `nonprofit` or `partnership`.
    #[schema(example = "company")]
    business_type: String,
    /// E-mail address.
    #[schema(example = "dana@example.co.il")]
    email: String,
    /// Israeli phone, any common format.
    #[schema(example = "052-123-4567")]
    phone: String,
    /// `clearing` (needs `bank_account`) or `documents_only`.
    #[schema(example = "clearing")]
    mode: String,
    /// For clearing vendors: where payouts go.
    bank_account: Option<BankAccountInput>,
}

/// A bank account: bank code, branch and account number.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(
    dead_code,
    reason = "documents the body; parsing is done by the domain parser"
)]
pub(crate) struct BankAccountInput {
    #[schema(example = 12)]
    bank: u16,
    #[schema(example = 571)]
    branch: u16,
    #[schema(example = "041116")]
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
        (status = 409, description = "The external id exists (`vendor_id`, `run_id` and `links.vendor`, \
            `links.run` name that vendor and its onboarding run), or the idempotency key was used for another body",
            content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, one entry each", content_type = "application/problem+json"),
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
        Err(crate::onboarding::OnboardingError::ExternalIdTaken(external_id)) => {
            // The failed insert aborted the transaction (and the key's claim with it).
            tx.rollback().await?;
            return duplicate_vendor(&state, marketplace_id, &external_id).await;
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

/// The 409 for an external id already in use: the conflict problem, extended with the existing
/// vendor's id, its onboarding run and links to both (found after the refused insert rolled back).
async fn duplicate_vendor(
    state: &AppState,
    marketplace_id: Uuid,
    external_id: &str,
) -> Result<Response, ApiError> {
    let mut conn = state.pool.acquire().await?;
    let existing = store::vendors::list_reads(
        &mut conn,
        marketplace_id,
        &store::vendors::VendorFilter {
            external_id: Some(external_id.to_owned()),
            ..Default::default()
        },
        None,
        1,
    )
    .await?
    .pop();
    let mut problem = ApiError::Conflict(format!(
        "a vendor with external_id `{external_id}` already exists in this marketplace"
    ))
    .problem();
    if let Some(existing) = existing {
        let vendor_id = existing.vendor.id;
        problem["vendor_id"] = json!(vendor_id);
        problem["run_id"] = json!(existing.run_id);
        problem["links"] = json!({
            "vendor": format!("/v1/vendors/{vendor_id}"),
            "run": existing.run_id.map(|run| format!("/v1/runs/{run}")),
        });
    }
    Ok(problem_response(StatusCode::CONFLICT, &problem))
}

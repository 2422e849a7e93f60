//! `GET /v1/vendors/{id}`: a vendor's onboarding state and its runs, masked.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::routes::runs::parse_id;

/// A vendor as the API shows it: no secret, the bank account only by its last digits.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VendorView {
    id: Uuid,
    external_id: String,
    legal_name: String,
    corporate_number: String,
    business_type: String,
    email: String,
    phone: String,
    mode: String,
    /// `pending`, `onboarding`, `ready`, `paused` or `failed`.
    onboarding_state: String,
    /// The vendor's organization id at the provider, once created.
    provider_company_id: Option<i64>,
    bank_account: Option<MaskedBankAccount>,
    runs: Vec<VendorRun>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A bank account shown by its last digits only.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MaskedBankAccount {
    /// The last four digits of the account number.
    last4: Option<String>,
    /// Whether the bank's own check rule was applied (false: the bank has no known rule).
    checked: Option<bool>,
}

/// One of the vendor's runs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VendorRun {
    id: Uuid,
    workflow: String,
    status: String,
    outcome: Option<String>,
    current_step: String,
    created_at: DateTime<Utc>,
}

/// Read a vendor: onboarding state, provider organization, masked bank account, and runs.
#[utoipa::path(get, path = "/v1/vendors/{id}", tag = "vendors",
    params(("id" = Uuid, Path, description = "The vendor's id")),
    responses((status = 200, body = VendorView),
              (status = 404, description = "No such vendor in your marketplace", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn get_vendor(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<VendorView>, ApiError> {
    let id = parse_id(&id, "vendor")?;
    let mut conn = state.pool.acquire().await?;
    let vendor = store::vendors::find(&mut conn, caller.marketplace_id(), id)
        .await?
        .ok_or(ApiError::NotFound("vendor"))?;
    let filter = store::run_queries::RunFilter {
        subject_id: Some(vendor.id),
        ..Default::default()
    };
    let runs = store::run_queries::list(&mut conn, caller.marketplace_id(), &filter, None, 100)
        .await?
        .into_iter()
        .map(|run| VendorRun {
            id: run.id,
            workflow: run.workflow,
            status: run.status.to_string(),
            outcome: run.outcome,
            current_step: run.step_name,
            created_at: run.created_at,
        })
        .collect();
    let bank_account = (vendor.mode == "clearing").then(|| MaskedBankAccount {
        last4: vendor.bank_account_last4.clone(),
        checked: vendor.bank_account_checked,
    });
    Ok(Json(VendorView {
        id: vendor.id,
        external_id: vendor.external_id,
        legal_name: vendor.legal_name,
        corporate_number: vendor.corporate_number,
        business_type: vendor.business_type,
        email: vendor.email,
        phone: vendor.phone_e164,
        mode: vendor.mode,
        onboarding_state: vendor.onboarding_state,
        provider_company_id: vendor.provider_company_id,
        bank_account,
        runs,
        created_at: vendor.created_at,
        updated_at: vendor.updated_at,
    }))
}

//! The vendor reads of the marketplace API: `GET /v1/vendors/{id}` (a vendor, its state and its
//! runs, masked) and `GET /v1/vendors` (find by `external_id`, or list with filters and a keyset
//! cursor). Every read is scoped to the caller's marketplace; any role may read.
//!
//! The state comes from `domain::vendor_state` (never decided here); secrets never appear: the
//! bank account only by its last digits.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use domain::errors::{FieldError, ValidationErrors};
use domain::vendor_state::{
    OnboardingRunFacts, ReasonCode, VendorFacts, VendorState, vendor_state,
};
use serde::{Deserialize, Serialize};
use store::run_queries::RunCursor;
use store::vendors::{VendorFilter, VendorRead};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, Language, Query};
use crate::routes::paging;
use crate::routes::runs::parse_id;

/// Where a vendor stands (the same names in the dashboard and the vendor webhook events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum VendorStateName {
    /// Onboarding is under way; nothing is needed from anyone.
    Onboarding,
    /// The clearing terminal waits for the acquirer's manual approval: send the onboarding run
    /// `terminal_approved` once approved.
    AwaitingApproval,
    /// Onboarding stopped and needs someone: `state_reason` says why and what to do.
    ActionRequired,
    /// The vendor can take charges (clearing) or issue documents.
    Ready,
    /// Onboarding failed: `state_reason` says why.
    Failed,
    /// Onboarding was cancelled; the vendor will not become ready.
    Cancelled,
}

impl From<VendorState> for VendorStateName {
    fn from(state: VendorState) -> Self {
        match state {
            VendorState::Onboarding => VendorStateName::Onboarding,
            VendorState::AwaitingApproval => VendorStateName::AwaitingApproval,
            VendorState::ActionRequired => VendorStateName::ActionRequired,
            VendorState::Ready => VendorStateName::Ready,
            VendorState::Failed => VendorStateName::Failed,
            VendorState::Cancelled => VendorStateName::Cancelled,
        }
    }
}

/// `clearing` (charges on the vendor's terminal, and documents) or `documents_only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum VendorMode {
    Clearing,
    DocumentsOnly,
}

/// The modes' wire names, for the `mode` filter.
const MODES: [&str; 2] = ["clearing", "documents_only"];

/// A stable code of why a vendor needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StateReasonCode {
    /// The terminal waits for the acquirer's manual approval.
    TerminalApprovalPending,
    /// No approval came before the wait's deadline.
    TerminalApprovalOverdue,
    /// The vendor's API keys at the provider are needed from an operator.
    ApiKeysRequired,
    /// Whether the provider created the organization is unknown: an operator checks.
    OrganizationUnconfirmed,
    /// Whether the provider took the terminal request is unknown: an operator checks.
    TerminalRequestUnconfirmed,
    /// The onboarding paused for another reason (see the message).
    OnboardingPaused,
    /// The onboarding failed.
    OnboardingFailed,
    /// The onboarding was cancelled.
    OnboardingCancelled,
}

impl From<ReasonCode> for StateReasonCode {
    fn from(code: ReasonCode) -> Self {
        match code {
            ReasonCode::TerminalApprovalPending => StateReasonCode::TerminalApprovalPending,
            ReasonCode::TerminalApprovalOverdue => StateReasonCode::TerminalApprovalOverdue,
            ReasonCode::ApiKeysRequired => StateReasonCode::ApiKeysRequired,
            ReasonCode::OrganizationUnconfirmed => StateReasonCode::OrganizationUnconfirmed,
            ReasonCode::TerminalRequestUnconfirmed => StateReasonCode::TerminalRequestUnconfirmed,
            ReasonCode::OnboardingPaused => StateReasonCode::OnboardingPaused,
            ReasonCode::OnboardingFailed => StateReasonCode::OnboardingFailed,
            ReasonCode::OnboardingCancelled => StateReasonCode::OnboardingCancelled,
        }
    }
}

/// Why a vendor needs attention, and what to do about it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StateReason {
    /// A stable code a backend can branch on.
    code: StateReasonCode,
    /// Why: the onboarding run's own reason when it gave one.
    message: String,
    /// What to do about it.
    action: String,
}

impl From<domain::vendor_state::StateReason> for StateReason {
    fn from(reason: domain::vendor_state::StateReason) -> Self {
        StateReason {
            code: reason.code.into(),
            message: reason.message,
            action: reason.action.to_owned(),
        }
    }
}

/// Where to follow a vendor.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VendorLinks {
    /// This vendor: `/v1/vendors/{id}`.
    #[serde(rename = "self")]
    #[schema(rename = "self")]
    this: String,
    /// The onboarding run the state follows, if any: `/v1/runs/{run_id}`.
    run: Option<String>,
    /// The vendor's charges.
    charges: String,
    /// The vendor's documents.
    documents: String,
}

/// A vendor as the API shows it: no secret, the bank account only by its last digits.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VendorView {
    id: Uuid,
    /// The marketplace's own id of the vendor.
    external_id: String,
    legal_name: String,
    corporate_number: String,
    business_type: String,
    email: String,
    phone: String,
    mode: VendorMode,
    /// Where the vendor stands; `state_reason` says why for the needs-attention states.
    state: VendorStateName,
    /// For `awaiting_approval`, `action_required`, `failed` and `cancelled`: why, and what to do.
    state_reason: Option<StateReason>,
    /// The onboarding run the state follows (the latest), if any.
    run_id: Option<Uuid>,
    /// The stored onboarding progress (`pending`, `onboarding` or `ready`); `state` is what to
    /// read.
    onboarding_state: String,
    /// The vendor's organization id at the provider, once created.
    provider_company_id: Option<i64>,
    bank_account: Option<MaskedBankAccount>,
    links: VendorLinks,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// The state of a vendor whose stored onboarding state is `onboarding_state` and whose latest
/// onboarding run has `run_status`, `run_step` and `run_reason` (as the store reads them), by
/// `domain::vendor_state`. The API, the admin API and the dashboard all ask here.
pub(crate) fn decide_state(
    onboarding_state: &str,
    run_status: Option<&str>,
    run_step: Option<&str>,
    run_reason: Option<&str>,
) -> (VendorState, Option<domain::vendor_state::StateReason>) {
    let run = run_status
        .and_then(|status| status.parse().ok())
        .map(|status| OnboardingRunFacts {
            status,
            step: run_step.unwrap_or(""),
            status_reason: run_reason,
        });
    vendor_state(&VendorFacts {
        onboarding_state,
        run,
    })
}

impl From<VendorRead> for VendorView {
    fn from(read: VendorRead) -> Self {
        let (state, reason) = decide_state(
            &read.vendor.onboarding_state,
            read.run_status.as_deref(),
            read.run_step.as_deref(),
            read.run_status_reason.as_deref(),
        );
        let vendor = read.vendor;
        let id = vendor.id;
        let bank_account = (vendor.mode == "clearing").then(|| MaskedBankAccount {
            last4: vendor.bank_account_last4.clone(),
            checked: vendor.bank_account_checked,
        });
        VendorView {
            id,
            external_id: vendor.external_id,
            legal_name: vendor.legal_name,
            corporate_number: vendor.corporate_number,
            business_type: vendor.business_type,
            email: vendor.email,
            phone: vendor.phone_e164,
            mode: if vendor.mode == "clearing" {
                VendorMode::Clearing
            } else {
                VendorMode::DocumentsOnly
            },
            state: state.into(),
            state_reason: reason.map(StateReason::from),
            run_id: read.run_id,
            onboarding_state: vendor.onboarding_state,
            provider_company_id: vendor.provider_company_id,
            bank_account,
            links: VendorLinks {
                this: format!("/v1/vendors/{id}"),
                run: read.run_id.map(|run| format!("/v1/runs/{run}")),
                charges: format!("/v1/vendors/{id}/charges"),
                documents: format!("/v1/vendors/{id}/documents"),
            },
            created_at: vendor.created_at,
            updated_at: vendor.updated_at,
        }
    }
}

/// A vendor with all its runs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VendorDetail {
    #[serde(flatten)]
    vendor: VendorView,
    /// The vendor's runs (onboarding, charges, documents), newest first, at most 100.
    runs: Vec<VendorRun>,
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

/// Read a vendor: its state (and why it needs attention), provider organization, masked bank
/// account, and runs.
#[utoipa::path(get, path = "/v1/vendors/{id}", tag = "vendors",
    params(("id" = Uuid, Path, description = "The vendor's id")),
    responses((status = 200, body = VendorDetail),
              (status = 401, description = "No valid token", content_type = "application/problem+json"),
              (status = 404, description = "No such vendor in your marketplace", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn get_vendor(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<VendorDetail>, ApiError> {
    let id = parse_id(&id, "vendor")?;
    let mut conn = state.pool.acquire().await?;
    let vendor = store::vendors::find_read(&mut conn, caller.marketplace_id(), id)
        .await?
        .ok_or(ApiError::NotFound("vendor"))?;
    let filter = store::run_queries::RunFilter {
        subject_id: Some(id),
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
    Ok(Json(VendorDetail {
        vendor: VendorView::from(vendor),
        runs,
    }))
}

/// Filters and paging of `GET /v1/vendors`. Each bad value answers 422 naming its parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListVendorsQuery {
    /// Only the vendor with this external id (the marketplace's own id): a page of one or none.
    #[param(
        max_length = 100,
        min_length = 1,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$"
    )]
    external_id: Option<String>,
    /// Only vendors in this state.
    #[param(inline, value_type = Option<VendorStateName>)]
    state: Option<String>,
    /// Only vendors of this mode.
    #[param(inline, value_type = Option<VendorMode>)]
    mode: Option<String>,
    /// Only vendors created at or after this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    created_after: Option<String>,
    /// Only vendors created before this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    created_before: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = r"^[0-9]{1,16}_[0-9a-f]{32}$")]
    cursor: Option<String>,
}

/// A page of vendors, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VendorPage {
    data: Vec<VendorView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    next_cursor: Option<String>,
}

/// List the marketplace's vendors newest first, or find one by `external_id`; filter by state,
/// mode and creation time; page with `cursor`.
#[utoipa::path(get, path = "/v1/vendors", tag = "vendors", params(ListVendorsQuery),
    responses((status = 200, body = VendorPage),
              (status = 400, description = "A malformed query string", content_type = "application/problem+json"),
              (status = 401, description = "No valid token", content_type = "application/problem+json"),
              (status = 422, description = "A bad parameter, named in `errors[].field`", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn list_vendors(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Query(query): Query<ListVendorsQuery>,
) -> Result<Json<VendorPage>, ApiError> {
    let mut errors: Vec<FieldError> = Vec::new();
    let states: Vec<&str> = VendorState::ALL.iter().map(|s| s.as_str()).collect();
    let filter = VendorFilter {
        external_id: paging::text(
            query.external_id.as_deref(),
            "external_id",
            100,
            &mut errors,
        )
        .map(str::to_owned),
        state: paging::one_of(query.state.as_deref(), "state", &states, &mut errors)
            .map(str::to_owned),
        mode: paging::one_of(query.mode.as_deref(), "mode", &MODES, &mut errors).map(str::to_owned),
        created_after: paging::time(query.created_after.as_deref(), "created_after", &mut errors),
        created_before: paging::time(
            query.created_before.as_deref(),
            "created_before",
            &mut errors,
        ),
    };
    let limit = paging::limit(query.limit.as_deref(), &mut errors);
    let cursor = paging::cursor(query.cursor.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(ValidationErrors::new(errors), lang));
    }
    let mut conn = state.pool.acquire().await?;
    let rows = store::vendors::list_reads(
        &mut conn,
        caller.marketplace_id(),
        &filter,
        cursor,
        limit + 1,
    )
    .await?;
    let (rows, next_cursor) = paging::page(rows, limit, |read| RunCursor {
        created_at: read.vendor.created_at,
        id: read.vendor.id,
    });
    Ok(Json(VendorPage {
        data: rows.into_iter().map(VendorView::from).collect(),
        next_cursor,
    }))
}

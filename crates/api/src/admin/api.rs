//! The admin JSON API under `/v1/admin`: the dashboard's reads and actions for scripts. A viewer
//! or operator bearer token reads; only an operator token acts, always with a reason. Every
//! query is scoped to the token's marketplace: another marketplace's run, vendor or delivery is
//! not found.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use domain::errors::{FieldProblem, Lang, ValidationErrors};
use domain::input::Shape;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::admin::{AuditFilter, AuditRow, VendorCursor, VendorFilter};
use store::run_queries::{RunCursor, RunFilter};
use store::runs::RunRow;
use store::secrets::{SecretMeta, SecretRef};
use store::tokens::Role;
use store::webhooks::{DeliveryFilter, DeliveryStatus, Page};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::BULK_CAP;
use super::actions::{self, ActionError, BulkKind, Channel, KeysInput, Operator, RunAction};
use super::filters::{self, FilterError, RunsQuery};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, Language, Query};
use crate::routes::runs::EventView;

fn operator(caller: &Caller) -> Operator {
    Operator {
        token_id: caller.0.token_id,
        marketplace_id: caller.marketplace_id(),
        role: caller.0.role,
        channel: Channel::Api,
    }
}

/// Viewers and operators read; backend tokens are for the marketplace API.
pub(super) fn reader(caller: &Caller) -> Result<Operator, ApiError> {
    match caller.0.role {
        Role::Viewer | Role::Operator => Ok(operator(caller)),
        Role::Backend => Err(ApiError::Forbidden(
            "the admin API takes viewer and operator tokens",
        )),
    }
}

/// Only operators act.
pub(super) fn actor(caller: &Caller) -> Result<Operator, ApiError> {
    match caller.0.role {
        Role::Operator => Ok(operator(caller)),
        _ => Err(ApiError::Forbidden("only an operator token may act")),
    }
}

pub(super) fn action_error(error: ActionError, lang: Lang) -> ApiError {
    match error {
        ActionError::Invalid { field, message } => {
            let problem = if field == "reason" && message.starts_with("a reason is required") {
                FieldProblem::new(
                    "reason_required",
                    message,
                    "נדרשת סיבה (עד 500 תווים): היא נשמרת ביומן הביקורת ובהיסטוריית ההרצה.",
                )
            } else {
                FieldProblem::new("invalid", message.clone(), message)
            };
            ApiError::Validation(ValidationErrors::new(vec![problem.at(field)]), lang)
        }
        ActionError::NotFound(what) => ApiError::NotFound(what),
        ActionError::Refused(message) => ApiError::Conflict(message),
        ActionError::Unavailable => ApiError::Unavailable,
        ActionError::Internal(cause) => ApiError::Internal(cause),
    }
}

impl From<FilterError> for ApiError {
    fn from(error: FilterError) -> Self {
        match error {
            FilterError::Invalid { parameter, message } => {
                ApiError::invalid_parameter(parameter, message)
            }
            FilterError::Database(error) => ApiError::from(error),
        }
    }
}

impl From<store::webhooks::WebhookStoreError> for ApiError {
    fn from(error: store::webhooks::WebhookStoreError) -> Self {
        match error {
            store::webhooks::WebhookStoreError::Database(error) => ApiError::from(error),
            other => ApiError::internal(other),
        }
    }
}

pub(super) fn parse_uuid(text: &str, what: &'static str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(text).map_err(|_| ApiError::NotFound(what))
}

fn text(body: &Value, name: &str) -> Option<String> {
    body.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// The members of each admin body, as its `ToSchema` type documents them; any other member is
/// refused (`unknown_field`), all of them at once.
pub(crate) const REASON_SHAPE: Shape = Shape::Object(&[("reason", Shape::Any)]);
const RESUME_FROM_SHAPE: Shape = Shape::Object(&[("step", Shape::Any), ("reason", Shape::Any)]);
const SIGNAL_SHAPE: Shape = Shape::Object(&[("reason", Shape::Any), ("payload", Shape::Any)]);
const BULK_FILTER_SHAPE: Shape = Shape::Object(&[
    ("action", Shape::Any),
    ("status", Shape::Any),
    ("workflow", Shape::Any),
    ("step", Shape::Any),
    ("vendor", Shape::Any),
    ("created_from", Shape::Any),
    ("created_to", Shape::Any),
    ("stuck_minutes", Shape::Any),
]);
const BULK_SHAPE: Shape = Shape::Object(&[
    ("action", Shape::Any),
    ("run_ids", Shape::Any),
    ("reason", Shape::Any),
]);
const KEYS_SHAPE: Shape = Shape::Object(&[
    ("company_id", Shape::Any),
    ("api_key", Shape::Any),
    ("api_public_key", Shape::Any),
    ("reason", Shape::Any),
    ("resume", Shape::Any),
]);

/// Refuses `body` with 422 if it is not an object, or names each member `shape` does not know.
pub(crate) fn known_members<'a>(
    body: &'a Value,
    shape: &Shape,
    lang: Lang,
) -> Result<&'a serde_json::Map<String, Value>, ApiError> {
    let Some(members) = body.as_object() else {
        let error = FieldProblem::invalid_type("a JSON object", "אובייקט JSON").at("");
        return Err(ApiError::Validation(
            ValidationErrors::new(vec![error]),
            lang,
        ));
    };
    let errors = domain::input::unknown_members(body, shape, "");
    if errors.is_empty() {
        Ok(members)
    } else {
        Err(ApiError::Validation(ValidationErrors::new(errors), lang))
    }
}

// ----- Runs. -----

/// A run in the admin API.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminRun {
    id: Uuid,
    workflow: String,
    workflow_version: i32,
    status: String,
    outcome: Option<String>,
    /// Why the run is paused or failed, or why a pause was requested.
    status_reason: Option<String>,
    vendor_id: Option<Uuid>,
    current_step: String,
    attempt: i32,
    pause_requested: bool,
    /// A cancel is requested: it applies once the step in flight (or the reconcile of an
    /// unknown outcome) is recorded.
    cancel_requested: bool,
    next_run_at: Option<DateTime<Utc>>,
    last_error: Option<Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<RunRow> for AdminRun {
    fn from(run: RunRow) -> Self {
        AdminRun {
            id: run.id,
            workflow: run.workflow,
            workflow_version: run.workflow_version,
            status: run.status.to_string(),
            outcome: run.outcome,
            status_reason: run.status_reason,
            vendor_id: run.subject_id,
            current_step: run.step_name,
            attempt: run.attempt,
            pause_requested: run.pause_requested,
            cancel_requested: run.cancel_requested,
            next_run_at: run.next_run_at,
            last_error: run.last_error,
            created_at: run.created_at,
            updated_at: run.updated_at,
            finished_at: run.finished_at,
        }
    }
}

/// A page of runs with the counts per status under the same filters (without the status).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminRunPage {
    runs: Vec<AdminRun>,
    /// Runs per status under the filters other than `status`.
    counts: BTreeMap<String, i64>,
    /// Pass as `cursor` to get the next page; null on the last page.
    next_cursor: Option<String>,
}

/// List runs with filters, counts per status, sort and a cursor.
#[utoipa::path(get, path = "/v1/admin/runs", tag = "admin", params(RunsQuery),
    responses((status = 200, body = AdminRunPage),
              (status = 400, description = "A bad filter", content_type = "application/problem+json"),
              (status = 403, description = "Not a viewer or operator token", content_type = "application/problem+json"),
              (status = 422, description = "A query parameter holds a control character (`invalid_characters`)", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn list_runs(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<RunsQuery>,
) -> Result<Json<AdminRunPage>, ApiError> {
    let who = reader(&caller)?;
    let mut conn = state.pool.acquire().await?;
    let parsed = query.parse(&mut conn, who.marketplace_id).await?;
    let (runs, next_cursor) = filters::fetch_page(&mut conn, who.marketplace_id, &parsed).await?;
    let counts = store::run_queries::count_by_status(&mut conn, who.marketplace_id, &parsed.filter)
        .await?
        .into_iter()
        .collect();
    Ok(Json(AdminRunPage {
        runs: runs.into_iter().map(AdminRun::from).collect(),
        counts,
        next_cursor,
    }))
}

/// One attempt of a step.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminAttempt {
    step: String,
    generation: i32,
    attempt: i32,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    outcome: Option<String>,
    /// The error envelope `{code, message, retryable, details}`.
    error: Option<Value>,
    duration_ms: Option<i64>,
}

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminAuditEntry {
    id: i64,
    at: DateTime<Utc>,
    /// The token acted with; null for an action taken at the command line.
    token_id: Option<Uuid>,
    /// Who acted, by name: the token's name, or the command line's actor.
    actor: Option<String>,
    role: String,
    /// `dashboard`, `api` or `cli`.
    channel: String,
    action: String,
    target_kind: String,
    target_id: Option<Uuid>,
    reason: Option<String>,
    /// `ok` or `refused`.
    result: String,
    detail: Option<String>,
    data: Option<Value>,
}

impl From<AuditRow> for AdminAuditEntry {
    fn from(row: AuditRow) -> Self {
        AdminAuditEntry {
            id: row.id,
            at: row.at,
            token_id: row.token_id,
            actor: row.actor,
            role: row.role,
            channel: row.channel,
            action: row.action,
            target_kind: row.target_kind,
            target_id: row.target_id,
            reason: row.reason,
            result: row.result,
            detail: row.detail,
            data: row.data,
        }
    }
}

/// A run with its attempts, history and audit entries.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminRunDetail {
    #[serde(flatten)]
    run: AdminRun,
    attempts: Vec<AdminAttempt>,
    history: Vec<EventView>,
    audit: Vec<AdminAuditEntry>,
}

/// Read a run: its attempts, history and audit entries.
#[utoipa::path(get, path = "/v1/admin/runs/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "The run's id")),
    responses((status = 200, body = AdminRunDetail),
              (status = 404, description = "No such run in your marketplace", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn get_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AdminRunDetail>, ApiError> {
    let who = reader(&caller)?;
    let id = parse_uuid(&id, "run")?;
    let mut conn = state.pool.acquire().await?;
    let run = store::run_queries::find(&mut conn, who.marketplace_id, id)
        .await?
        .ok_or(ApiError::NotFound("run"))?;
    let attempts = store::attempts::list_for_run(&mut conn, id)
        .await?
        .into_iter()
        .map(|a| AdminAttempt {
            step: a.step_name,
            generation: a.generation,
            attempt: a.attempt,
            started_at: a.started_at,
            finished_at: a.finished_at,
            outcome: a.outcome,
            error: a.error,
            duration_ms: a.duration_ms,
        })
        .collect();
    let history = store::history::list_for_run(&mut conn, id)
        .await?
        .into_iter()
        .map(EventView::from)
        .collect();
    let audit = store::admin::list_audit(
        &mut conn,
        who.marketplace_id,
        &AuditFilter {
            target_id: Some(id),
            action: None,
        },
        None,
        100,
    )
    .await?
    .into_iter()
    .map(AdminAuditEntry::from)
    .collect();
    Ok(Json(AdminRunDetail {
        run: AdminRun::from(run),
        attempts,
        history,
        audit,
    }))
}

/// The body of an action: why (required).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code, reason = "documents the body; it is read from JSON by hand")]
pub(crate) struct ReasonBody {
    /// Why, 1–500 characters; kept in the audit log and the run's history.
    #[schema(example = "the provider fixed the outage")]
    reason: String,
}

/// The body of resume-from.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code, reason = "documents the body; it is read from JSON by hand")]
pub(crate) struct ResumeFromBody {
    /// The step to resume from, a step of the run's pinned definition.
    #[schema(schema_with = crate::schemas::step_name)]
    step: String,
    /// Why, 1–500 characters.
    reason: String,
}

/// The body of a signal.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code, reason = "documents the body; it is read from JSON by hand")]
pub(crate) struct SignalBody {
    /// Why, 1–500 characters.
    #[schema(example = "approved by the acquirer by phone")]
    reason: String,
    /// A JSON object handed to the run (redacted in history); `{}` when absent.
    #[schema(schema_with = crate::schemas::json_object)]
    payload: Option<Value>,
}

/// What an action did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ActionResult {
    /// What happened, e.g. `the run is now pending`.
    detail: String,
    /// The audit entry written in the same transaction.
    audit_id: i64,
}

async fn run_action(
    state: &AppState,
    caller: &Caller,
    lang: Lang,
    id: &str,
    action: RunAction,
    body: &Value,
    shape: &Shape,
) -> Result<Json<ActionResult>, ApiError> {
    let who = actor(caller)?;
    known_members(body, shape, lang)?;
    let id = parse_uuid(id, "run")?;
    let reason = text(body, "reason");
    let done = actions::on_run(&state.pool, &who, id, action, reason.as_deref(), None)
        .await
        .map_err(|e| action_error(e, lang))?;
    Ok(Json(ActionResult {
        detail: done.detail,
        audit_id: done.audit_id,
    }))
}

/// Run the current step again now (a pending run's backoff is cut short; a failed run gets a
/// fresh retry budget).
#[utoipa::path(post, path = "/v1/admin/runs/{id}/retry", tag = "admin",
    params(("id" = Uuid, Path, description = "The run's id")), request_body = ReasonBody,
    responses((status = 200, body = ActionResult),
              (status = 403, description = "Not an operator token", content_type = "application/problem+json"),
              (status = 404, description = "No such run in your marketplace", content_type = "application/problem+json"),
              (status = 409, description = "The action does not apply to the run's status", content_type = "application/problem+json"),
              (status = 422, description = "The reason is missing, a member is unknown (`unknown_field`) or holds a control character (`invalid_characters`)", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn retry_now(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<ActionResult>, ApiError> {
    run_action(
        &state,
        &caller,
        lang,
        &id,
        RunAction::RetryNow,
        &body,
        &REASON_SHAPE,
    )
    .await
}

/// Move the run to a step and run it (and the steps after it) again with a fresh idempotency key.
#[utoipa::path(post, path = "/v1/admin/runs/{id}/resume-from", tag = "admin",
    params(("id" = Uuid, Path, description = "The run's id")), request_body = ResumeFromBody,
    responses((status = 200, body = ActionResult),
              (status = 403, description = "Not an operator token", content_type = "application/problem+json"),
              (status = 404, description = "No such run in your marketplace", content_type = "application/problem+json"),
              (status = 409, description = "The action does not apply to the run's status, or the run's workflow has no such step", content_type = "application/problem+json"),
              (status = 422, description = "The reason is missing, or the step is not one the document lists", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn resume_from(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<ActionResult>, ApiError> {
    let step = text(&body, "step").unwrap_or_default();
    run_action(
        &state,
        &caller,
        lang,
        &id,
        RunAction::ResumeFrom(step),
        &body,
        &RESUME_FROM_SHAPE,
    )
    .await
}

/// Cancel the run for good.
#[utoipa::path(post, path = "/v1/admin/runs/{id}/cancel", tag = "admin",
    params(("id" = Uuid, Path, description = "The run's id")), request_body = ReasonBody,
    responses((status = 200, body = ActionResult),
              (status = 403, description = "Not an operator token", content_type = "application/problem+json"),
              (status = 404, description = "No such run in your marketplace", content_type = "application/problem+json"),
              (status = 409, description = "The run has ended", content_type = "application/problem+json"),
              (status = 422, description = "The reason is missing, a member is unknown (`unknown_field`) or holds a control character (`invalid_characters`)", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<ActionResult>, ApiError> {
    run_action(
        &state,
        &caller,
        lang,
        &id,
        RunAction::Cancel,
        &body,
        &REASON_SHAPE,
    )
    .await
}

/// Pause the run until an operator resumes it (a run a worker holds pauses after its step).
#[utoipa::path(post, path = "/v1/admin/runs/{id}/pause", tag = "admin",
    params(("id" = Uuid, Path, description = "The run's id")), request_body = ReasonBody,
    responses((status = 200, body = ActionResult),
              (status = 403, description = "Not an operator token", content_type = "application/problem+json"),
              (status = 404, description = "No such run in your marketplace", content_type = "application/problem+json"),
              (status = 409, description = "The run is paused already or has ended", content_type = "application/problem+json"),
              (status = 422, description = "The reason is missing, a member is unknown (`unknown_field`) or holds a control character (`invalid_characters`)", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<ActionResult>, ApiError> {
    run_action(
        &state,
        &caller,
        lang,
        &id,
        RunAction::Pause,
        &body,
        &REASON_SHAPE,
    )
    .await
}

/// Resume a paused run (or withdraw a pause requested for a running one).
#[utoipa::path(post, path = "/v1/admin/runs/{id}/resume", tag = "admin",
    params(("id" = Uuid, Path, description = "The run's id")), request_body = ReasonBody,
    responses((status = 200, body = ActionResult),
              (status = 403, description = "Not an operator token", content_type = "application/problem+json"),
              (status = 404, description = "No such run in your marketplace", content_type = "application/problem+json"),
              (status = 409, description = "The run is not paused", content_type = "application/problem+json"),
              (status = 422, description = "The reason is missing, a member is unknown (`unknown_field`) or holds a control character (`invalid_characters`)", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<ActionResult>, ApiError> {
    run_action(
        &state,
        &caller,
        lang,
        &id,
        RunAction::Resume,
        &body,
        &REASON_SHAPE,
    )
    .await
}

/// Send a signal to the run (e.g. `terminal_approved`) as an operator.
#[utoipa::path(post, path = "/v1/admin/runs/{id}/signals/{name}", tag = "admin",
    params(crate::routes::runs::SignalPath),
    request_body = SignalBody,
    responses((status = 200, body = ActionResult),
              (status = 403, description = "Not an operator token", content_type = "application/problem+json"),
              (status = 404, description = "No such run in your marketplace", content_type = "application/problem+json"),
              (status = 409, description = "The run has ended, or its workflow never waits for this signal", content_type = "application/problem+json"),
              (status = 422, description = "The reason is missing, the signal is not one the document lists, or the payload is not an object of scalars (or of arrays and objects of scalars)", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn signal(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path((id, name)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<ActionResult>, ApiError> {
    let payload = body
        .get("payload")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    run_action(
        &state,
        &caller,
        lang,
        &id,
        RunAction::Signal(name, payload),
        &body,
        &SIGNAL_SHAPE,
    )
    .await
}

// ----- Bulk. -----

/// The filter of a bulk dry run, as in `GET /v1/admin/runs`; `status` is required and must be
/// one the action applies to (the document says which with `if`/`then`/`else`).
#[derive(Debug)]
pub(crate) struct BulkFilterBody;

/// The members of [`BulkFilterBody`].
#[derive(Debug, ToSchema)]
#[allow(dead_code, reason = "documents the body; it is read from JSON by hand")]
struct BulkFilterFields {
    /// `retry` (failed or pending runs) or `cancel` (paused, waiting, pending or running runs).
    #[schema(inline)]
    action: BulkAction,
    #[schema(schema_with = crate::schemas::run_status)]
    status: String,
    #[schema(min_length = 1)]
    workflow: Option<String>,
    #[schema(min_length = 1)]
    step: Option<String>,
    /// A vendor id or external id.
    #[schema(min_length = 1)]
    vendor: Option<String>,
    created_from: Option<DateTime<Utc>>,
    created_to: Option<DateTime<Utc>>,
    #[schema(minimum = 1, maximum = 525_600)]
    stuck_minutes: Option<i32>,
}

impl utoipa::PartialSchema for BulkFilterBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::Schema;
        let mut schema = BulkFilterFields::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            let statuses = |kind: BulkKind| serde_json::json!({"properties": {"status": {"enum": kind.statuses()}}});
            object
                .extensions
                .get_or_insert_with(Default::default)
                .extend([
                    (
                        "if".to_owned(),
                        serde_json::json!({"properties": {"action": {"const": "retry"}},
                                       "required": ["action"]}),
                    ),
                    ("then".to_owned(), statuses(BulkKind::Retry)),
                    ("else".to_owned(), statuses(BulkKind::Cancel)),
                ]);
        }
        schema
    }
}

impl ToSchema for BulkFilterBody {}

/// A bulk action.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "documents the body")]
pub(crate) enum BulkAction {
    Retry,
    Cancel,
}

/// What a bulk action would touch.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DryRunView {
    action: String,
    /// How many runs match the filter in all.
    matching: i64,
    /// The most runs one bulk action touches.
    cap: usize,
    /// True when more runs match than the cap: only `run_ids` would be acted on.
    capped: bool,
    /// Exactly the runs the action would act on, oldest first; pass them to `POST /v1/admin/runs/bulk`.
    run_ids: Vec<Uuid>,
}

/// A member of a bulk filter: absent or null is no filter; `stuck_minutes` is a whole number,
/// the others non-empty text. Anything else is a 422 naming the member.
fn field_text(body: &Value, name: &'static str, lang: Lang) -> Result<Option<String>, ApiError> {
    let wrong = |en: &str, he: &str| {
        ApiError::Validation(
            ValidationErrors::new(vec![FieldProblem::invalid_type(en, he).at(name)]),
            lang,
        )
    };
    match (name, body.get(name)) {
        (_, None | Some(Value::Null)) => Ok(None),
        ("stuck_minutes", Some(Value::Number(number))) if number.is_i64() => {
            Ok(Some(number.to_string()))
        }
        ("stuck_minutes", Some(_)) => Err(wrong("a whole number", "מספר שלם")),
        (_, Some(Value::String(text))) if !text.is_empty() => Ok(Some(text.clone())),
        _ => Err(wrong("non-empty text", "טקסט שאינו ריק")),
    }
}

fn bulk_kind(body: &Value, lang: Lang) -> Result<BulkKind, ApiError> {
    text(body, "action")
        .as_deref()
        .and_then(BulkKind::parse)
        .ok_or_else(|| {
            ApiError::Validation(
                ValidationErrors::new(vec![
                    FieldProblem::new(
                        "invalid_action",
                        "action must be retry or cancel",
                        "הפעולה חייבת להיות retry או cancel",
                    )
                    .at("action"),
                ]),
                lang,
            )
        })
}

/// Show which runs a bulk retry or cancel with this filter would act on (at most 500), and how
/// many match. Changes nothing.
#[utoipa::path(post, path = "/v1/admin/runs/bulk/dry-run", tag = "admin", request_body = BulkFilterBody,
    responses((status = 200, body = DryRunView),
              (status = 403, description = "Not an operator token", content_type = "application/problem+json"),
              (status = 422, description = "No action, or no status the action applies to", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn bulk_dry_run(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    JsonBody(body): JsonBody,
) -> Result<Json<DryRunView>, ApiError> {
    let who = actor(&caller)?;
    known_members(&body, &BULK_FILTER_SHAPE, lang)?;
    let kind = bulk_kind(&body, lang)?;
    let query = RunsQuery {
        workflow: field_text(&body, "workflow", lang)?,
        status: field_text(&body, "status", lang)?,
        step: field_text(&body, "step", lang)?,
        vendor: field_text(&body, "vendor", lang)?,
        created_from: field_text(&body, "created_from", lang)?,
        created_to: field_text(&body, "created_to", lang)?,
        stuck_minutes: field_text(&body, "stuck_minutes", lang)?,
        ..RunsQuery::default()
    };
    let mut conn = state.pool.acquire().await?;
    let parsed = query.parse(&mut conn, who.marketplace_id).await?;
    let dry = actions::dry_run(&mut conn, &who, kind, &parsed.filter)
        .await
        .map_err(|e| action_error(e, lang))?;
    Ok(Json(DryRunView {
        action: kind.as_str().to_owned(),
        matching: dry.matching,
        cap: BULK_CAP,
        capped: dry.matching > dry.runs.len() as i64,
        run_ids: dry.runs.iter().map(|run| run.id).collect(),
    }))
}

/// The body of a bulk action.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code, reason = "documents the body; it is read from JSON by hand")]
pub(crate) struct BulkBody {
    #[schema(inline)]
    action: BulkAction,
    /// Exactly the runs to act on (the dry run's `run_ids`), 1 to 500.
    #[schema(min_items = 1, max_items = 500)]
    run_ids: Vec<Uuid>,
    /// Why, 1–500 characters.
    reason: String,
}

/// One run's result in a bulk action.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BulkItem {
    run_id: Uuid,
    /// `ok` or `refused`.
    result: String,
    detail: String,
}

/// What a bulk action did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BulkResult {
    /// Tags every audit entry of this action.
    batch_id: Uuid,
    done: usize,
    refused: usize,
    items: Vec<BulkItem>,
}

/// Retry or cancel exactly the given runs, each with its own history and audit entry.
#[utoipa::path(post, path = "/v1/admin/runs/bulk", tag = "admin", request_body = BulkBody,
    responses((status = 200, body = BulkResult),
              (status = 403, description = "Not an operator token", content_type = "application/problem+json"),
              (status = 422, description = "No reason, no runs, or more than 500", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn bulk_apply(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    JsonBody(body): JsonBody,
) -> Result<Json<BulkResult>, ApiError> {
    let who = actor(&caller)?;
    known_members(&body, &BULK_SHAPE, lang)?;
    let kind = bulk_kind(&body, lang)?;
    let ids = body
        .get("run_ids")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .map(|id| id.as_str().and_then(|text| Uuid::try_parse(text).ok()))
                .collect::<Option<Vec<Uuid>>>()
        })
        .unwrap_or(Some(Vec::new()))
        .ok_or_else(|| {
            ApiError::Validation(
                ValidationErrors::new(vec![
                    FieldProblem::invalid_type("an array of run ids", "מערך של מזהי הרצות")
                        .at("run_ids"),
                ]),
                lang,
            )
        })?;
    let reason = text(&body, "reason");
    let (batch_id, outcomes) = actions::bulk(&state.pool, &who, kind, &ids, reason.as_deref())
        .await
        .map_err(|e| action_error(e, lang))?;
    let done = outcomes.iter().filter(|o| o.result.is_ok()).count();
    Ok(Json(BulkResult {
        batch_id,
        done,
        refused: outcomes.len() - done,
        items: outcomes
            .into_iter()
            .map(|o| match o.result {
                Ok(detail) => BulkItem {
                    run_id: o.run_id,
                    result: "ok".to_owned(),
                    detail,
                },
                Err(detail) => BulkItem {
                    run_id: o.run_id,
                    result: "refused".to_owned(),
                    detail,
                },
            })
            .collect(),
    }))
}

// ----- Vendors. -----

/// A vendor in the admin API's list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminVendorSummary {
    id: Uuid,
    external_id: String,
    legal_name: String,
    mode: String,
    /// Where the vendor stands, as in the marketplace API's vendor resource.
    state: crate::routes::vendors::VendorStateName,
    onboarding_state: String,
    provider_company_id: Option<i64>,
    keys_state: Option<String>,
    terminal_state: Option<String>,
    created_at: DateTime<Utc>,
}

/// A page of vendors.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminVendorPage {
    vendors: Vec<AdminVendorSummary>,
    next_cursor: Option<String>,
}

/// Filters of the vendors list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct VendorsQuery {
    /// An external id or corporate number (exact), or part of the legal name.
    q: Option<String>,
    /// Only vendors in this state (the `state` the vendor resources show).
    #[param(inline, value_type = Option<crate::routes::vendors::VendorStateName>)]
    state: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List vendors, newest first.
#[utoipa::path(get, path = "/v1/admin/vendors", tag = "admin", params(VendorsQuery),
    responses((status = 200, body = AdminVendorPage),
              (status = 422, description = "A bad filter, named in `errors` (`invalid_parameter`, `invalid_characters`)", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn list_vendors(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<VendorsQuery>,
) -> Result<Json<AdminVendorPage>, ApiError> {
    let who = reader(&caller)?;
    let cursor = query
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|text| {
            RunCursor::decode(text)
                .map(|c| VendorCursor {
                    created_at: c.created_at,
                    id: c.id,
                })
                .ok_or_else(|| ApiError::invalid_parameter("cursor", "cursor is not valid"))
        })
        .transpose()?;
    let wanted = query
        .state
        .as_deref()
        .map(|text| {
            domain::vendor_state::VendorState::parse(text).ok_or_else(|| {
                ApiError::invalid_parameter(
                    "state",
                    format!(
                        "state must be one of {}",
                        domain::vendor_state::VendorState::ALL
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
        })
        .transpose()?;
    const PAGE: usize = 50;
    let mut conn = state.pool.acquire().await?;
    let mut rows = store::admin::list_vendors(
        &mut conn,
        who.marketplace_id,
        &VendorFilter {
            search: query.q.filter(|q| !q.trim().is_empty()),
            onboarding_state: None,
            state: wanted.map(|state| state.as_str().to_owned()),
        },
        cursor,
        PAGE as i64 + 1,
    )
    .await?;
    let next_cursor = if rows.len() > PAGE {
        rows.truncate(PAGE);
        rows.last().map(|v| {
            RunCursor {
                created_at: v.created_at,
                id: v.id,
            }
            .encode()
        })
    } else {
        None
    };
    Ok(Json(AdminVendorPage {
        vendors: rows
            .into_iter()
            .map(|v| AdminVendorSummary {
                id: v.id,
                external_id: v.external_id,
                legal_name: v.legal_name,
                state: crate::routes::vendors::decide_state(
                    &v.onboarding_state,
                    v.run_status.as_deref(),
                    v.run_step.as_deref(),
                    v.run_status_reason.as_deref(),
                )
                .0
                .into(),
                mode: v.mode,
                onboarding_state: v.onboarding_state,
                provider_company_id: v.provider_company_id,
                keys_state: v.keys_state,
                terminal_state: v.terminal_state,
                created_at: v.created_at,
            })
            .collect(),
        next_cursor,
    }))
}

/// What may be shown of a stored secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MaskedSecret {
    /// Eight hex digits of a keyed hash of the value.
    fingerprint: String,
    /// The last four characters, for long values only.
    last4: Option<String>,
    updated_at: DateTime<Utc>,
}

impl From<SecretMeta> for MaskedSecret {
    fn from(meta: SecretMeta) -> Self {
        MaskedSecret {
            fingerprint: meta.fingerprint,
            last4: meta.last4,
            updated_at: meta.updated_at,
        }
    }
}

/// A charge on the vendor's terminal.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminCharge {
    order_id: String,
    amount_agorot: i64,
    approved: bool,
    auth_number: Option<String>,
    card_last4: Option<String>,
    decline_description: Option<String>,
    provider_document_id: Option<i64>,
    run_id: Option<Uuid>,
    created_at: DateTime<Utc>,
}

/// A document issued in the vendor's name.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminDocument {
    reference: String,
    source: String,
    provider_document_id: i64,
    document_number: Option<i64>,
    total_agorot: Option<i64>,
    run_id: Option<Uuid>,
    created_at: DateTime<Utc>,
}

/// A vendor with its provider account, masked secrets, runs, charges and documents.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminVendorDetail {
    id: Uuid,
    external_id: String,
    legal_name: String,
    corporate_number: String,
    business_type: String,
    mode: String,
    /// Where the vendor stands, as in the marketplace API's vendor resource.
    state: crate::routes::vendors::VendorStateName,
    /// For the needs-attention states: why, and what to do.
    state_reason: Option<crate::routes::vendors::StateReason>,
    onboarding_state: String,
    provider_company_id: Option<i64>,
    keys_state: Option<String>,
    keys_problem: Option<String>,
    terminal_state: Option<String>,
    api_key: Option<MaskedSecret>,
    api_public_key: Option<MaskedSecret>,
    bank_account: Option<MaskedSecret>,
    bank_account_last4: Option<String>,
    runs: Vec<AdminRun>,
    charges: Vec<AdminCharge>,
    documents: Vec<AdminDocument>,
    created_at: DateTime<Utc>,
}

/// Read a vendor: onboarding and terminal state, provider organization, masked keys and bank
/// account (fingerprint and last digits only), runs, charges and documents.
#[utoipa::path(get, path = "/v1/admin/vendors/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "The vendor's id")),
    responses((status = 200, body = AdminVendorDetail),
              (status = 404, description = "No such vendor in your marketplace", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn get_vendor(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AdminVendorDetail>, ApiError> {
    let who = reader(&caller)?;
    let id = parse_uuid(&id, "vendor")?;
    let mut conn = state.pool.acquire().await?;
    let read = store::vendors::find_read(&mut conn, who.marketplace_id, id)
        .await?
        .ok_or(ApiError::NotFound("vendor"))?;
    let (state, state_reason) = crate::routes::vendors::decide_state(
        &read.vendor.onboarding_state,
        read.run_status.as_deref(),
        read.run_step.as_deref(),
        read.run_status_reason.as_deref(),
    );
    let vendor = read.vendor;
    let account = store::provider_records::account(&mut conn, id).await?;
    let mut masked = Vec::new();
    for name in [
        store::provider_records::API_KEY_SECRET,
        store::provider_records::API_PUBLIC_KEY_SECRET,
        crate::secrets::BANK_ACCOUNT_SECRET,
    ] {
        let reference = SecretRef::new(store::provider_records::VENDOR_SECRETS_TABLE, id, name);
        masked.push(
            store::secrets::meta(&mut conn, &reference)
                .await
                .map_err(ApiError::internal)?
                .map(MaskedSecret::from),
        );
    }
    let mut masked = masked.into_iter();
    let runs = store::run_queries::list(
        &mut conn,
        who.marketplace_id,
        &RunFilter {
            subject_id: Some(id),
            ..RunFilter::default()
        },
        None,
        100,
    )
    .await?;
    let charges = store::admin::payments_for_vendor(&mut conn, id, 100).await?;
    let documents = store::admin::documents_for_vendor(&mut conn, id, 100).await?;
    Ok(Json(AdminVendorDetail {
        id: vendor.id,
        external_id: vendor.external_id,
        legal_name: vendor.legal_name,
        corporate_number: vendor.corporate_number,
        business_type: vendor.business_type,
        mode: vendor.mode,
        state: state.into(),
        state_reason: state_reason.map(Into::into),
        onboarding_state: vendor.onboarding_state,
        provider_company_id: vendor.provider_company_id,
        keys_state: account.as_ref().map(|a| a.keys_state.as_str().to_owned()),
        keys_problem: account.as_ref().and_then(|a| a.keys_problem.clone()),
        terminal_state: account
            .as_ref()
            .map(|a| a.terminal_state.as_str().to_owned()),
        api_key: masked.next().flatten(),
        api_public_key: masked.next().flatten(),
        bank_account: masked.next().flatten(),
        bank_account_last4: vendor.bank_account_last4,
        runs: runs.into_iter().map(AdminRun::from).collect(),
        charges: charges
            .into_iter()
            .map(|p| AdminCharge {
                order_id: p.order_id,
                amount_agorot: p.amount_agorot,
                approved: p.approved,
                auth_number: p.auth_number,
                card_last4: p.card_last4,
                decline_description: p.decline_description,
                provider_document_id: p.provider_document_id,
                run_id: p.run_id,
                created_at: p.created_at,
            })
            .collect(),
        documents: documents
            .into_iter()
            .map(|d| AdminDocument {
                reference: d.reference,
                source: d.source,
                provider_document_id: d.provider_document_id,
                document_number: d.document_number,
                total_agorot: d.total_agorot,
                run_id: d.run_id,
                created_at: d.created_at,
            })
            .collect(),
        created_at: vendor.created_at,
    }))
}

/// Lost API keys of a vendor's organization.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code, reason = "documents the body; it is read from JSON by hand")]
pub(crate) struct KeysBody {
    /// The organization's SUMIT CompanyID.
    #[schema(example = 1234567, minimum = 1)]
    company_id: i64,
    /// The organization's APIKey (encrypted at once, never shown again).
    #[schema(pattern = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$")]
    api_key: String,
    /// The organization's APIPublicKey.
    #[schema(pattern = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$")]
    api_public_key: String,
    /// Why, 1–500 characters.
    reason: String,
    /// Resume the vendor's onboarding paused for its keys (default true).
    resume: Option<bool>,
}

/// Enter a vendor's lost API keys: encrypted at once, shown afterwards only by fingerprint; the
/// vendor's paused onboarding resumes and proves them.
#[utoipa::path(post, path = "/v1/admin/vendors/{id}/api-keys", tag = "admin",
    params(("id" = Uuid, Path, description = "The vendor's id")), request_body = KeysBody,
    responses((status = 200, body = ActionResult),
              (status = 403, description = "Not an operator token", content_type = "application/problem+json"),
              (status = 404, description = "No such vendor in your marketplace", content_type = "application/problem+json"),
              (status = 409, description = "The organization is another one, or belongs to another vendor", content_type = "application/problem+json"),
              (status = 422, description = "A key, the CompanyID or the reason is missing", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn supply_api_keys(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<ActionResult>, ApiError> {
    let who = actor(&caller)?;
    known_members(&body, &KEYS_SHAPE, lang)?;
    let id = parse_uuid(&id, "vendor")?;
    let secret = |name: &str| SecretString::from(text(&body, name).unwrap_or_default());
    let input = KeysInput {
        // The organization's number, as the document types it: a JSON integer (anything else
        // reaches the check below as missing and is refused there, naming the field).
        company_id: body
            .get("company_id")
            .filter(|value| value.is_i64())
            .map(Value::to_string),
        api_key: secret("api_key"),
        api_public_key: secret("api_public_key"),
        resume: match body.get("resume") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(resume)) => *resume,
            Some(_) => {
                return Err(ApiError::Validation(
                    ValidationErrors::new(vec![
                        FieldProblem::invalid_type("true or false", "true או false").at("resume"),
                    ]),
                    lang,
                ));
            }
        },
    };
    let reason = text(&body, "reason");
    let done = actions::supply_keys(
        &state.pool,
        &state.keyring,
        &who,
        id,
        input,
        reason.as_deref(),
    )
    .await
    .map_err(|e| action_error(e, lang))?;
    Ok(Json(ActionResult {
        detail: done.detail,
        audit_id: done.audit_id,
    }))
}

// ----- Webhooks. -----

/// A delivery of an event to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminDelivery {
    id: Uuid,
    /// The `webhook-id` the receiver sees.
    webhook_id: Uuid,
    endpoint_id: Uuid,
    event_type: String,
    /// `pending`, `delivered` or `dead`.
    status: String,
    attempts: i32,
    next_attempt_at: Option<DateTime<Utc>>,
    last_attempt_at: Option<DateTime<Utc>>,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    delivered_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminDeliveryPage {
    deliveries: Vec<AdminDelivery>,
    /// Pass as `before` for the next (older) page.
    next_cursor: Option<Uuid>,
}

/// Filters of the deliveries list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveriesQuery {
    /// `pending`, `delivered` or `dead` (dead letters); any when absent.
    #[param(inline, value_type = Option<DeliveryStatusFilter>)]
    status: Option<String>,
    /// Only this endpoint's.
    endpoint: Option<Uuid>,
    /// The `next_cursor` of the previous page.
    before: Option<Uuid>,
}

/// A delivery's state, as a filter names it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "documents the parameter; it is read as text")]
pub(crate) enum DeliveryStatusFilter {
    Pending,
    Delivered,
    Dead,
}

/// List webhook deliveries, newest first: attempts, last answer, dead letters.
#[utoipa::path(get, path = "/v1/admin/webhooks/deliveries", tag = "admin", params(DeliveriesQuery),
    responses((status = 200, body = AdminDeliveryPage),
              (status = 422, description = "A bad filter, named in `errors` (`invalid_parameter`, `invalid_characters`)", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<DeliveriesQuery>,
) -> Result<Json<AdminDeliveryPage>, ApiError> {
    let who = reader(&caller)?;
    let status = query
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            DeliveryStatus::parse(s).ok_or_else(|| {
                ApiError::invalid_parameter("status", "status must be pending, delivered or dead")
            })
        })
        .transpose()?;
    let mut conn = state.pool.acquire().await?;
    let page = store::webhooks::list_deliveries(
        &mut conn,
        who.marketplace_id,
        &DeliveryFilter {
            status,
            endpoint_id: query.endpoint,
            ..DeliveryFilter::default()
        },
        Page {
            limit: 100,
            before: query.before,
        },
    )
    .await?;
    Ok(Json(AdminDeliveryPage {
        deliveries: page
            .items
            .into_iter()
            .map(|d| AdminDelivery {
                id: d.id,
                webhook_id: d.outbox_id,
                endpoint_id: d.endpoint_id,
                event_type: d.event_type,
                status: d.status,
                attempts: d.attempt,
                next_attempt_at: d.next_attempt_at,
                last_attempt_at: d.last_attempt_at,
                last_status_code: d.last_status_code,
                last_error: d.last_error,
                delivered_at: d.delivered_at,
                created_at: d.created_at,
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Replay a dead (or delivered) delivery: it is sent again with the same `webhook-id`.
#[utoipa::path(post, path = "/v1/admin/webhooks/deliveries/{id}/replay", tag = "admin",
    params(("id" = Uuid, Path, description = "The delivery's id")), request_body = ReasonBody,
    responses((status = 200, body = ActionResult),
              (status = 403, description = "Not an operator token", content_type = "application/problem+json"),
              (status = 404, description = "No such delivery in your marketplace", content_type = "application/problem+json"),
              (status = 409, description = "Still pending, or its endpoint is disabled", content_type = "application/problem+json"),
              (status = 422, description = "The reason is missing, a member is unknown (`unknown_field`) or holds a control character (`invalid_characters`)", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn replay_delivery(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<ActionResult>, ApiError> {
    let who = actor(&caller)?;
    known_members(&body, &REASON_SHAPE, lang)?;
    let id = parse_uuid(&id, "delivery")?;
    let reason = text(&body, "reason");
    let done = actions::replay_delivery(&state.pool, &who, id, reason.as_deref())
        .await
        .map_err(|e| action_error(e, lang))?;
    Ok(Json(ActionResult {
        detail: done.detail,
        audit_id: done.audit_id,
    }))
}

// ----- Audit. -----

/// Filters of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Only entries about this run, vendor or delivery.
    target: Option<Uuid>,
    /// Only this action, e.g. `resume`.
    action: Option<String>,
    /// The `next_cursor` of the previous page.
    before: Option<i64>,
}

/// A page of audit entries.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminAuditPage {
    entries: Vec<AdminAuditEntry>,
    next_cursor: Option<i64>,
}

/// The audit log of operator actions, newest first.
#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin", params(AuditQuery),
    responses((status = 200, body = AdminAuditPage),
              (status = 400, description = "A bad filter", content_type = "application/problem+json"),
              (status = 422, description = "A query parameter holds a control character (`invalid_characters`)", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AdminAuditPage>, ApiError> {
    let who = reader(&caller)?;
    const PAGE: usize = 100;
    let mut conn = state.pool.acquire().await?;
    let mut rows = store::admin::list_audit(
        &mut conn,
        who.marketplace_id,
        &AuditFilter {
            target_id: query.target,
            action: query.action.filter(|a| !a.is_empty()),
        },
        query.before,
        PAGE as i64 + 1,
    )
    .await?;
    let next_cursor = if rows.len() > PAGE {
        rows.truncate(PAGE);
        rows.last().map(|row| row.id)
    } else {
        None
    };
    Ok(Json(AdminAuditPage {
        entries: rows.into_iter().map(AdminAuditEntry::from).collect(),
        next_cursor,
    }))
}

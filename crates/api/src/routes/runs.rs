//! Runs: read one (status, steps with attempts and errors, history), list them with filters and a
//! cursor, and send a signal to one. Every query is scoped to the caller's marketplace.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::history::HistoryRow;
use store::run_queries::{RunCursor, RunFilter};
use store::runs::RunRow;
use store::tokens::Role;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, IdempotencyKey, JsonBody, Language, Query};

/// A run as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunView {
    id: Uuid,
    workflow: String,
    workflow_version: i32,
    #[schema(schema_with = crate::schemas::run_status)]
    status: String,
    /// For a succeeded run: `completed`, or a business outcome such as `declined`.
    outcome: Option<String>,
    /// Why the run is paused or failed.
    status_reason: Option<String>,
    vendor_id: Option<Uuid>,
    current_step: String,
    attempt: i32,
    next_run_at: Option<DateTime<Utc>>,
    #[schema(schema_with = crate::schemas::error_envelope)]
    last_error: Option<Value>,
    #[schema(schema_with = crate::schemas::run_context)]
    context: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<RunRow> for RunView {
    fn from(run: RunRow) -> Self {
        RunView {
            id: run.id,
            workflow: run.workflow,
            workflow_version: run.workflow_version,
            status: run.status.to_string(),
            outcome: run.outcome,
            status_reason: run.status_reason,
            vendor_id: run.subject_id,
            current_step: run.step_name,
            attempt: run.attempt,
            next_run_at: run.next_run_at,
            last_error: run.last_error,
            context: run.context,
            created_at: run.created_at,
            updated_at: run.updated_at,
            finished_at: run.finished_at,
        }
    }
}

/// One try of a step.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttemptView {
    step: String,
    attempt: i32,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    #[schema(schema_with = crate::schemas::attempt_outcome)]
    outcome: Option<String>,
    #[schema(schema_with = crate::schemas::error_envelope)]
    error: Option<Value>,
    duration_ms: Option<i64>,
}

/// One event of a run's history (in the marketplace API and the admin API alike).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventView {
    at: DateTime<Utc>,
    #[schema(schema_with = crate::schemas::history_kind)]
    kind: String,
    step: Option<String>,
    attempt: Option<i32>,
    actor: String,
    reason: Option<String>,
    data: Option<Value>,
}

impl From<HistoryRow> for EventView {
    fn from(event: HistoryRow) -> Self {
        EventView {
            at: event.at,
            kind: event.kind,
            step: event.step_name,
            attempt: event.attempt,
            actor: format!("{}:{}", event.actor_kind, event.actor_id),
            reason: event.reason,
            data: event.data,
        }
    }
}

/// A run with its attempts and history.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunDetail {
    #[serde(flatten)]
    run: RunView,
    attempts: Vec<AttemptView>,
    history: Vec<EventView>,
}

/// Read a run: status, steps with attempts and errors, and its history.
#[utoipa::path(get, path = "/v1/runs/{id}", tag = "runs",
    params(("id" = Uuid, Path, description = "The run's id")),
    responses((status = 200, body = RunDetail),
              (status = 404, description = "No such run in your marketplace", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn get_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RunDetail>, ApiError> {
    let id = parse_id(&id, "run")?;
    let mut conn = state.pool.acquire().await?;
    let run = store::run_queries::find(&mut conn, caller.marketplace_id(), id)
        .await?
        .ok_or(ApiError::NotFound("run"))?;
    let attempts = store::attempts::list_for_run(&mut conn, id)
        .await?
        .into_iter()
        .map(|attempt| AttemptView {
            step: attempt.step_name,
            attempt: attempt.attempt,
            started_at: attempt.started_at,
            finished_at: attempt.finished_at,
            outcome: attempt.outcome,
            error: attempt.error,
            duration_ms: attempt.duration_ms,
        })
        .collect();
    let history = store::history::list_for_run(&mut conn, id)
        .await?
        .into_iter()
        .map(EventView::from)
        .collect();
    Ok(Json(RunDetail {
        run: RunView::from(run),
        attempts,
        history,
    }))
}

/// Filters and paging of `GET /v1/runs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListRunsQuery {
    /// Only this workflow, e.g. `vendor_onboarding`.
    workflow: Option<String>,
    /// Only this status.
    status: Option<String>,
    /// Only runs currently at this step.
    step: Option<String>,
    /// Only runs of this vendor.
    vendor_id: Option<String>,
    /// Only runs created at or after this time (RFC 3339).
    created_from: Option<String>,
    /// Only runs created before this time (RFC 3339).
    created_to: Option<String>,
    /// Only unfinished runs unchanged for this many minutes.
    stuck_minutes: Option<String>,
    /// Page size, 1–200 (default 50).
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A page of runs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunPage {
    runs: Vec<RunView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    next_cursor: Option<String>,
}

const STATUSES: [&str; 7] = [
    "pending",
    "running",
    "waiting",
    "paused",
    "succeeded",
    "failed",
    "cancelled",
];

fn parse_time(value: Option<String>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|text| {
            DateTime::parse_from_rfc3339(&text)
                .map(|time| time.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::invalid_parameter(name, format!("{name} must be an RFC 3339 time"))
                })
        })
        .transpose()
}

fn parse_number<T>(
    value: Option<String>,
    name: &str,
    range: std::ops::RangeInclusive<T>,
) -> Result<Option<T>, ApiError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    value
        .map(|text| {
            text.parse::<T>()
                .ok()
                .filter(|number| range.contains(number))
                .ok_or_else(|| {
                    ApiError::invalid_parameter(
                        name,
                        format!(
                            "{name} must be a number from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )
                })
        })
        .transpose()
}

pub(crate) fn parse_id(text: &str, what: &'static str) -> Result<Uuid, ApiError> {
    // A malformed id cannot name anything: answer as for an unknown one.
    Uuid::try_parse(text).map_err(|_| ApiError::NotFound(what))
}

/// List runs, newest first, with filters and a cursor.
#[utoipa::path(get, path = "/v1/runs", tag = "runs", params(ListRunsQuery),
    responses((status = 200, body = RunPage),
              (status = 400, description = "A bad filter", content_type = "application/problem+json"),
              (status = 422, description = "A query parameter holds a control character (`invalid_characters`)", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn list_runs(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListRunsQuery>,
) -> Result<Json<RunPage>, ApiError> {
    if let Some(status) = &query.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::invalid_parameter(
            "status",
            format!("status must be one of {}", STATUSES.join(", ")),
        ));
    }
    let subject_id = query
        .vendor_id
        .map(|text| {
            Uuid::try_parse(&text)
                .map_err(|_| ApiError::invalid_parameter("vendor_id", "vendor_id must be a uuid"))
        })
        .transpose()?;
    let filter = RunFilter {
        workflow: query.workflow,
        status: query.status,
        step: query.step,
        subject_id,
        created_from: parse_time(query.created_from, "created_from")?,
        created_to: parse_time(query.created_to, "created_to")?,
        stuck_minutes: parse_number(query.stuck_minutes, "stuck_minutes", 1..=525_600)?,
    };
    let limit: i64 = parse_number(query.limit, "limit", 1..=200)?.unwrap_or(50);
    let cursor = query
        .cursor
        .map(|text| {
            RunCursor::decode(&text)
                .ok_or_else(|| ApiError::invalid_parameter("cursor", "cursor is not valid"))
        })
        .transpose()?;
    let mut conn = state.pool.acquire().await?;
    let rows = store::run_queries::list(
        &mut conn,
        caller.marketplace_id(),
        &filter,
        cursor,
        limit + 1,
    )
    .await?;
    let has_more = rows.len() as i64 > limit;
    let runs: Vec<RunRow> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = if has_more {
        runs.last().map(|run| {
            RunCursor {
                created_at: run.created_at,
                id: run.id,
            }
            .encode()
        })
    } else {
        None
    };
    Ok(Json(RunPage {
        runs: runs.into_iter().map(RunView::from).collect(),
        next_cursor,
    }))
}

/// The path of a signal: the run and the signal's name.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "documents the path; the handler reads it as two strings"
)]
pub(crate) struct SignalPath {
    /// The run's id.
    id: Uuid,
    #[param(schema_with = crate::schemas::signal_name)]
    name: String,
}

/// Send a signal to a run (e.g. `terminal_approved`). A signal sent before the run reaches its
/// wait is kept and consumed when it gets there.
#[utoipa::path(post, path = "/v1/runs/{id}/signals/{name}", tag = "runs",
    params(SignalPath,
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the stored answer")),
    request_body(content = Object, description = "Optional JSON payload, at most 64 KiB, e.g. {\"reason\": \"approved by Upay\"}"),
    responses((status = 202, description = "The signal is recorded"),
              (status = 404, description = "No such run in your marketplace", content_type = "application/problem+json"),
              (status = 409, description = "The run has finished, or its workflow never waits for this signal", content_type = "application/problem+json"),
              (status = 422, description = "Not a signal name the document lists (`unknown_signal` at `name`), or a string of the payload holds a control character (`invalid_characters` at its JSON path)",
                  content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn send_signal(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path((id, name)): Path<(String, String)>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(payload): JsonBody,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Backend, Role::Operator])?;
    let id = parse_id(&id, "run")?;
    if !crate::schemas::SIGNALS.contains(&name.as_str()) {
        return Err(ApiError::Validation(
            domain::errors::ValidationErrors::new(vec![
                domain::errors::FieldProblem::new(
                    "unknown_signal",
                    format!(
                        "The signal must be one of {}.",
                        crate::schemas::SIGNALS.join(", ")
                    ),
                    format!(
                        "האות חייב להיות אחד מאלה: {}.",
                        crate::schemas::SIGNALS.join(", ")
                    ),
                )
                .at("name"),
            ]),
            lang,
        ));
    }
    let reason = payload
        .get("reason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut tx = state.pool.begin().await?;
    let path = format!("/v1/runs/{id}/signals/{name}");
    if let Some(key) = &key
        && let Some(replayed) =
            crate::idempotent::claim(&mut tx, caller.marketplace_id(), key, &path, &payload).await?
    {
        return Ok(replayed);
    }
    store::run_queries::find(&mut tx, caller.marketplace_id(), id)
        .await?
        .ok_or(ApiError::NotFound("run"))?;
    crate::enqueue::signal(&mut tx, caller, id, &name, payload, reason).await?;
    let answer = json!({"run_id": id, "signal": name, "status": "accepted"});
    if let Some(key) = &key {
        store::idempotency::save_response(&mut tx, caller.marketplace_id(), key, 202, &answer)
            .await?;
    }
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

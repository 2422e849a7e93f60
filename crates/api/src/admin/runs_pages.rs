//! The runs pages: the filtered list with counts per status, a run's timeline, history, audit
//! entries and actions, and the bulk retry/cancel with its dry run.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use domain::definition::{AcceptAll, StepKind, WorkflowDefinition, parse_definition};
use domain::errors::Lang;
use domain::run::{Operation, RunStatus, operation_effect};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use store::attempts::AttemptRow;
use store::runs::RunRow;
use uuid::Uuid;

use super::BULK_CAP;
use super::actions::{self, BulkKind, RunAction};
use super::filters::{self, FilterError, RunsQuery, STATUSES};
use super::i18n::{Ui, t};
use super::session::{Posted, Session};
use super::views::{
    Nav, PageError, badge, csrf_field, duration, encode, maybe_time, page, reason_field, short,
    time,
};
use crate::AppState;

impl From<FilterError> for PageError {
    fn from(error: FilterError) -> Self {
        match error {
            FilterError::Invalid { message, .. } => PageError::BadRequest(message),
            FilterError::Database(error) => PageError::from(error),
        }
    }
}

fn parse_id(text: &str, what: &'static str) -> Result<Uuid, PageError> {
    Uuid::try_parse(text).map_err(|_| PageError::NotFound(what))
}

/// Labels of vendors by id, for the runs on a page.
async fn vendor_labels(
    conn: &mut sqlx::PgConnection,
    marketplace_id: Uuid,
    runs: &[RunRow],
) -> Result<HashMap<Uuid, (String, String)>, sqlx::Error> {
    let mut ids: Vec<Uuid> = runs.iter().filter_map(|run| run.subject_id).collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(store::admin::vendor_labels(conn, marketplace_id, &ids)
        .await?
        .into_iter()
        .map(|(id, external_id, name)| (id, (external_id, name)))
        .collect())
}

/// The names of the tokens that acted in a run's history (`token:<uuid>` actors), by actor id.
async fn actor_names(
    conn: &mut sqlx::PgConnection,
    history: &[store::history::HistoryRow],
) -> Result<HashMap<String, String>, store::StoreError> {
    let mut ids: Vec<Uuid> = history
        .iter()
        .filter_map(|event| store::tokens::token_of_actor(&event.actor_id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(store::tokens::names(conn, &ids)
        .await?
        .into_iter()
        .map(|(id, name)| (format!("token:{id}"), name))
        .collect())
}

/// A history actor: a token's name (its id on hover), or the actor id as recorded.
fn actor_cell(names: &HashMap<String, String>, actor_id: &str) -> Markup {
    match names.get(actor_id) {
        Some(name) => html! { span.bidi title=(actor_id) { (name) } },
        None => html! { (actor_id) },
    }
}

fn vendor_cell(labels: &HashMap<Uuid, (String, String)>, vendor: Option<Uuid>) -> Markup {
    match vendor {
        None => html! { span.muted { "—" } },
        Some(id) => match labels.get(&id) {
            Some((external_id, name)) => html! {
                a href={ "/admin/vendors/" (id) } title=(name) { span.bidi { (external_id) } }
            },
            None => short(id),
        },
    }
}

fn run_table(l: Lang, runs: &[RunRow], labels: &HashMap<Uuid, (String, String)>) -> Markup {
    html! {
        table #runs {
            thead { tr {
                th { (t(l, "Run")) } th { (t(l, "Workflow")) } th { (t(l, "Status")) }
                th { (t(l, "Current step")) } th { (t(l, "Attempt")) } th { (t(l, "Vendor")) }
                th { (t(l, "Created")) } th { (t(l, "Updated")) } th { (t(l, "Next run")) " / " (t(l, "Why")) }
            } }
            tbody {
                @for run in runs {
                    tr data-run-id=(run.id) data-status=(run.status) {
                        td { a.run-link href={ "/admin/runs/" (run.id) } { (short(run.id)) } }
                        td { (run.workflow) }
                        td { (badge(l, run.status.as_str())) }
                        td.mono { (run.step_name) }
                        td.num { (run.attempt) }
                        td { (vendor_cell(labels, run.subject_id)) }
                        td { (time(run.created_at)) }
                        td { (time(run.updated_at)) }
                        td.small {
                            @if let Some(reason) = &run.status_reason { span.bidi { (reason) } }
                            @else if let Some(next) = run.next_run_at { (time(next)) }
                        }
                    }
                }
            }
        }
        @if runs.is_empty() { p.muted #no-runs { (t(l, "No runs match.")) } }
    }
}

/// `GET /admin/runs`: the runs list.
pub(crate) async fn list(
    State(state): State<AppState>,
    session: Session,
    Ui(l): Ui,
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query.map_err(|rejection| PageError::BadRequest(rejection.body_text()))?;
    let mut conn = state.pool.acquire().await?;
    let parsed = query.parse(&mut conn, session.marketplace_id).await?;
    let (runs, next) = filters::fetch_page(&mut conn, session.marketplace_id, &parsed).await?;
    let counts: HashMap<String, i64> =
        store::run_queries::count_by_status(&mut conn, session.marketplace_id, &parsed.filter)
            .await?
            .into_iter()
            .collect();
    let total: i64 = counts.values().sum();
    let labels = vendor_labels(&mut conn, session.marketplace_id, &runs).await?;
    drop(conn);

    let mut workflows: Vec<(String, Vec<String>)> = state
        .definitions
        .iter()
        .map(|compiled| {
            let definition = &compiled.definition;
            (
                definition.name.clone(),
                definition.steps.iter().map(|s| s.name.clone()).collect(),
            )
        })
        .collect();
    workflows.sort();
    let mut steps: Vec<&String> = workflows.iter().flat_map(|(_, steps)| steps).collect();
    steps.sort();
    steps.dedup();

    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let current_status = query.status.as_deref().filter(|s| !s.is_empty());
    let base = query.to_query();
    let bulk_kinds: Vec<BulkKind> = [BulkKind::Retry, BulkKind::Cancel]
        .into_iter()
        .filter(|kind| current_status.is_some_and(|s| kind.statuses().contains(&s)))
        .collect();

    let body = html! {
        h1 { (t(l, "Runs")) }
        form.filters #filters method="get" action="/admin/runs" {
            label { (t(l, "Workflow"))
                select name="workflow" {
                    option value="" { (t(l, "any")) }
                    @for (name, _) in &workflows {
                        option value=(name) selected[query.workflow.as_deref() == Some(name.as_str())] { (name) }
                    }
                }
            }
            label { (t(l, "Status"))
                select #filter-status name="status" {
                    option value="" { (t(l, "any")) }
                    @for status in STATUSES {
                        option value=(status) selected[current_status == Some(status)] { (super::views::status_label(l, status)) }
                    }
                }
            }
            label { (t(l, "Current step"))
                input name="step" list="steps" value=(value(&query.step)) size="16";
                datalist #steps { @for step in &steps { option value=(step) {} } }
            }
            label { (t(l, "Vendor"))
                input #filter-vendor name="vendor" value=(value(&query.vendor)) size="14" placeholder="external id / uuid";
            }
            label { (t(l, "Created from"))
                input type="datetime-local" name="created_from" value=(value(&query.created_from));
            }
            label { (t(l, "Created before"))
                input type="datetime-local" name="created_to" value=(value(&query.created_to));
            }
            label { (t(l, "Stuck longer than (minutes)"))
                input #filter-stuck type="number" min="1" name="stuck_minutes" value=(value(&query.stuck_minutes)) style="width:7rem";
            }
            label { (t(l, "Sort"))
                select name="sort" {
                    option value="newest" { (t(l, "Newest first")) }
                    option value="oldest" selected[query.sort.as_deref() == Some("oldest")] { (t(l, "Oldest first")) }
                }
            }
            button #apply-filters type="submit" { (t(l, "Filter")) }
            a.button.secondary href="/admin/runs" { (t(l, "Clear")) }
        }
        @if parsed.unknown_vendor {
            p.notice.warn { (t(l, "No vendors match.")) }
        }
        div.tiles #counts {
            a.tile.on[current_status.is_none()] href={ "/admin/runs?" (query.with_status(None).to_query()) } {
                span { (t(l, "All")) } b #count-all { (total) }
            }
            @for status in STATUSES {
                a.tile.on[current_status == Some(status)] data-status=(status)
                    href={ "/admin/runs?" (query.with_status(Some(status)).to_query()) } {
                    span { (super::views::status_label(l, status)) }
                    b id={ "count-" (status) } { (counts.get(status).copied().unwrap_or(0)) }
                }
            }
        }
        @if session.may_act() && !bulk_kinds.is_empty() {
            p {
                @for kind in &bulk_kinds {
                    a.button.secondary id={ "bulk-" (kind.as_str()) }
                        href={ "/admin/runs/bulk?action=" (kind.as_str()) "&" (base) } {
                        @match kind { BulkKind::Retry => (t(l, "Bulk retry")), BulkKind::Cancel => (t(l, "Bulk cancel")) }
                        " — " (t(l, "Dry run"))
                    }
                    " "
                }
            }
        }
        (run_table(l, &runs, &labels))
        div.pager {
            @if query.cursor.as_deref().is_some_and(|c| !c.is_empty()) {
                a #first-page href={ "/admin/runs?" (base) } { (t(l, "First page")) }
            }
            @if let Some(next) = &next {
                a #next-page href={ "/admin/runs?" (base) @if !base.is_empty() { "&" } "cursor=" (encode(next)) } { (t(l, "Next page")) " →" }
            }
            span.muted.small { (t(l, "times are UTC")) }
        }
    };
    Ok(page(l, Some(&session), Nav::Runs, t(l, "Runs"), body))
}

/// The definition a run pinned, from the stored text.
async fn pinned(
    conn: &mut sqlx::PgConnection,
    run: &RunRow,
) -> Result<Option<WorkflowDefinition>, sqlx::Error> {
    Ok(
        store::runs::definition_source(conn, &run.workflow, &run.content_hash)
            .await?
            .and_then(|(file, source)| parse_definition(&file, &source, &AcceptAll).ok()),
    )
}

/// What an operator should do about a run in its state, as a label to translate.
fn next_step_hint(run: &RunRow) -> &'static str {
    match run.status.as_str() {
        "paused" if run.step_name == "capture_api_keys" => {
            "The organization's API keys are missing or were refused. Enter them on the vendor's page; the onboarding resumes by itself."
        }
        "paused" => {
            "The run is paused for an operator. Read the reason, fix the cause, then resume it (or resume from an earlier step)."
        }
        "waiting" => {
            "The run waits for a signal. When the outside event has happened (for example the terminal was approved), send the signal."
        }
        "failed" => {
            "The run failed. Retry it now with a fresh retry budget, or resume it from an earlier step."
        }
        "pending" if run.attempt > 0 => {
            "The step failed and will be retried at the time shown. Retry now to skip the wait."
        }
        "pending" => "The run is due: a worker will pick it up.",
        "running" => {
            "A worker is executing the current step. If it stays here, its lease expires and the run is rescued."
        }
        _ => "The run has ended. Nothing to do.",
    }
}

fn error_parts(error: &Option<Value>) -> (String, String) {
    let Some(error) = error else {
        return (String::new(), String::new());
    };
    let code = error
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    (code, message)
}

fn timeline(
    l: Lang,
    run: &RunRow,
    definition: Option<&WorkflowDefinition>,
    attempts: &[AttemptRow],
) -> Markup {
    let mut steps: Vec<String> = definition
        .map(|d| d.steps.iter().map(|s| s.name.clone()).collect())
        .unwrap_or_default();
    for attempt in attempts {
        if !steps.contains(&attempt.step_name) {
            steps.push(attempt.step_name.clone());
        }
    }
    html! {
        table #timeline {
            thead { tr {
                th { (t(l, "Step")) } th { (t(l, "Attempt")) } th { (t(l, "Started")) } th { (t(l, "Duration")) }
                th { (t(l, "Outcome")) } th { (t(l, "Error")) } th { (t(l, "Message")) }
            } }
            tbody {
                @for step in &steps {
                    @let mine: Vec<&AttemptRow> = attempts.iter().filter(|a| &a.step_name == step).collect();
                    @let is_current = step == &run.step_name && !matches!(run.status, RunStatus::Succeeded | RunStatus::Cancelled);
                    @let is_wait = definition.and_then(|d| d.steps.iter().find(|s| &s.name == step)).is_some_and(|s| matches!(s.kind, StepKind::Wait(_)));
                    @if mine.is_empty() {
                        tr data-step=(step) {
                            td.mono { (step) @if is_current { " " span.badge { (t(l, "current")) } } }
                            td colspan="6" .muted {
                                @if is_current && is_wait { (badge(l, run.status.as_str())) }
                                @else if is_current { (t(l, "not run yet")) }
                                @else { (t(l, "skipped or not reached")) }
                                @if is_current && run.status == RunStatus::Pending { @if let Some(next) = run.next_run_at { " · " (t(l, "next retry at")) " " (time(next)) } }
                            }
                        }
                    }
                    @for (i, attempt) in mine.iter().enumerate() {
                        @let (code, message) = error_parts(&attempt.error);
                        tr data-step=(step) {
                            td.mono {
                                @if i == 0 { (step) @if is_current { " " span.badge { (t(l, "current")) } } }
                            }
                            td.num { (attempt.attempt) @if attempt.generation > 0 { span.muted.small { " g" (attempt.generation) } } }
                            td { (time(attempt.started_at)) }
                            td.num { (duration(attempt.duration_ms)) }
                            td { @if let Some(outcome) = &attempt.outcome { span class={ "badge o-" (outcome) } { (outcome) } } @else { span.muted { "…" } } }
                            td.mono { (code) }
                            td.small.bidi { (message) }
                        }
                    }
                    @if !mine.is_empty() && is_current && run.status == RunStatus::Pending && run.attempt > 0 {
                        tr { td {} td colspan="6" .small { (t(l, "next retry at")) " " (maybe_time(run.next_run_at)) } }
                    }
                }
            }
        }
    }
}

fn action_form(
    l: Lang,
    session: &Session,
    run: &RunRow,
    action: &str,
    label: &str,
    extra: Markup,
    danger: bool,
) -> Markup {
    html! {
        div.card {
            h3 { (label) }
            form method="post" action={ "/admin/runs/" (run.id) "/" (action) } id={ "form-" (action) } {
                (csrf_field(session))
                (extra)
                (reason_field(l))
                button type="submit" class=[danger.then_some("danger")] { (label) }
            }
        }
    }
}

fn actions_markup(
    l: Lang,
    session: &Session,
    run: &RunRow,
    definition: Option<&WorkflowDefinition>,
) -> Markup {
    // The buttons are exactly the operations the engine's rule allows for this run.
    let allowed = |operation| operation_effect(run.status, run.flags(), operation).is_ok();
    let can_signal = !run.status.is_terminal();
    let steps: Vec<&str> = definition
        .map(|d| d.steps.iter().map(|s| s.name.as_str()).collect())
        .unwrap_or_default();
    let signals: Vec<&str> = definition
        .map(|d| {
            d.steps
                .iter()
                .filter_map(|s| match &s.kind {
                    StepKind::Wait(wait) => Some(wait.signal.as_str()),
                    StepKind::Action(_) => None,
                })
                .collect()
        })
        .unwrap_or_default();
    html! {
        div.grid #actions {
            @if allowed(Operation::Resume) {
                (action_form(l, session, run, "resume", t(l, "Resume"), html!{}, false))
            }
            @if allowed(Operation::RetryNow) {
                (action_form(l, session, run, "retry", t(l, "Retry now"), html!{}, false))
            }
            @if allowed(Operation::ResumeFrom) && !steps.is_empty() {
                (action_form(l, session, run, "resume-from", t(l, "Resume from step"), html! {
                    label { (t(l, "Step"))
                        select name="step" required {
                            @for step in &steps { option value=(step) selected[*step == run.step_name] { (step) } }
                        }
                    }
                }, false))
            }
            @if can_signal && !signals.is_empty() {
                (action_form(l, session, run, "signal", t(l, "Send signal"), html! {
                    label { (t(l, "Signal"))
                        select name="signal" required {
                            @for signal in &signals { option value=(signal) { (signal) } }
                        }
                    }
                }, false))
            }
            @if allowed(Operation::Pause) {
                (action_form(l, session, run, "pause", t(l, "Pause"), html!{}, false))
            }
            @if allowed(Operation::Cancel) {
                (action_form(l, session, run, "cancel", t(l, "Cancel run"), html!{}, true))
            }
        }
    }
}

/// Known action names shown after a redirect (never arbitrary text from the URL).
const DONE_ACTIONS: [&str; 6] = [
    "retry_now",
    "resume_from",
    "cancel",
    "pause",
    "resume",
    "signal",
];

/// `GET /admin/runs/{id}`: a run's page.
pub(crate) async fn detail(
    State(state): State<AppState>,
    session: Session,
    Ui(l): Ui,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let id = parse_id(&id, "run")?;
    let mut conn = state.pool.acquire().await?;
    let run = store::run_queries::find(&mut conn, session.marketplace_id, id)
        .await?
        .ok_or(PageError::NotFound("run"))?;
    let attempts = store::attempts::list_for_run(&mut conn, id).await?;
    let history = store::history::list_for_run(&mut conn, id).await?;
    let audit = store::admin::list_audit(
        &mut conn,
        session.marketplace_id,
        &store::admin::AuditFilter {
            target_id: Some(id),
            action: None,
        },
        None,
        100,
    )
    .await?;
    let definition = pinned(&mut conn, &run).await?;
    let labels = vendor_labels(
        &mut conn,
        session.marketplace_id,
        std::slice::from_ref(&run),
    )
    .await?;
    let actors = actor_names(&mut conn, &history).await?;
    drop(conn);
    let done = params
        .get("done")
        .and_then(|done| DONE_ACTIONS.iter().find(|known| *known == done));

    let body = html! {
        h1 { (t(l, "Run")) " " (short(run.id)) " " span #run-status { (badge(l, run.status.as_str())) } }
        @if let Some(done) = done {
            p.notice #flash { (t(l, "Operator action")) ": " code { (done) } " — " (t(l, "done")) }
        }
        div.grid {
            div.card {
                dl {
                    dt { (t(l, "Workflow")) } dd { (run.workflow) " v" (run.workflow_version) }
                    dt { (t(l, "Status")) } dd { (badge(l, run.status.as_str())) @if let Some(outcome) = &run.outcome { " " code { (outcome) } } }
                    @if let Some(reason) = &run.status_reason { dt { (t(l, "Why")) } dd.bidi #status-reason { (reason) } }
                    dt { (t(l, "Current step")) } dd.mono #current-step { (run.step_name) }
                    dt { (t(l, "Attempt")) } dd { (run.attempt) }
                    dt { (t(l, "Next run")) } dd { (maybe_time(run.next_run_at)) }
                    dt { (t(l, "Vendor")) } dd { (vendor_cell(&labels, run.subject_id)) }
                    dt { (t(l, "Created")) } dd { (time(run.created_at)) }
                    dt { (t(l, "Updated")) } dd { (time(run.updated_at)) }
                    dt { (t(l, "Finished")) } dd { (maybe_time(run.finished_at)) }
                }
            }
            div.card #next-step {
                h2 style="margin-top:0" { (t(l, "What to do next")) }
                p { (t(l, next_step_hint(&run))) }
                @if run.status == RunStatus::Paused && run.step_name == "capture_api_keys" {
                    @if let Some(vendor) = run.subject_id {
                        p { a href={ "/admin/vendors/" (vendor) "#supply-keys" } { (t(l, "Supply lost API keys")) } }
                    }
                }
                @if let Some(error) = &run.last_error {
                    @let (code, message) = error_parts(&Some(error.clone()));
                    p.small { (t(l, "Error")) ": " code { (code) } " " span.bidi { (message) } }
                }
            }
        }
        @if session.may_act() {
            h2 { (t(l, "Actions")) }
            (actions_markup(l, &session, &run, definition.as_ref()))
        }
        h2 { (t(l, "Step timeline")) }
        (timeline(l, &run, definition.as_ref(), &attempts))
        h2 { (t(l, "History")) }
        table #history {
            thead { tr { th { (t(l, "When")) } th { (t(l, "Event")) } th { (t(l, "Step")) } th { (t(l, "Who")) } th { (t(l, "Reason")) } } }
            tbody {
                @for event in &history {
                    tr data-kind=(event.kind) {
                        td { (time(event.at)) }
                        td.mono { (event.kind) @if let Some(attempt) = event.attempt { " #" (attempt) } }
                        td.mono { (event.step_name.clone().unwrap_or_default()) }
                        td.small { (event.actor_kind) ":" (actor_cell(&actors, &event.actor_id)) }
                        td.bidi { (event.reason.clone().unwrap_or_default()) }
                    }
                }
            }
        }
        h2 { (t(l, "Audit entries")) }
        (super::audit_page::audit_table(l, &audit))
    };
    Ok(page(
        l,
        Some(&session),
        Nav::Runs,
        &format!("{} {}", t(l, "Run"), super::views::short_text(run.id)),
        body,
    ))
}

/// `POST /admin/runs/{id}/{action}`: an action on one run.
pub(crate) async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    posted: Posted,
) -> Result<Response, PageError> {
    let operator = posted.session.require_operator()?;
    let id = parse_id(&id, "run")?;
    let action = match action.as_str() {
        "retry" => RunAction::RetryNow,
        "resume-from" => RunAction::ResumeFrom(posted.get("step").unwrap_or_default().to_owned()),
        "cancel" => RunAction::Cancel,
        "pause" => RunAction::Pause,
        "resume" => RunAction::Resume,
        "signal" => RunAction::Signal(
            posted.get("signal").unwrap_or_default().to_owned(),
            serde_json::json!({}),
        ),
        _ => return Err(PageError::NotFound("action")),
    };
    let name = action.name();
    actions::on_run(
        &state.pool,
        &operator,
        id,
        action,
        posted.get("reason"),
        None,
    )
    .await?;
    Ok(Redirect::to(&format!("/admin/runs/{id}?done={name}")).into_response())
}

/// The bulk dry run's query: the action and the runs filter.
#[derive(Debug, Deserialize)]
pub(crate) struct BulkQuery {
    action: Option<String>,
    #[serde(flatten)]
    runs: RunsQuery,
}

/// `GET /admin/runs/bulk`: the dry run of a bulk retry or cancel.
pub(crate) async fn bulk_preview(
    State(state): State<AppState>,
    session: Session,
    Ui(l): Ui,
    query: Result<Query<BulkQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let operator = session.require_operator()?;
    let Query(query) = query.map_err(|rejection| PageError::BadRequest(rejection.body_text()))?;
    let kind = query
        .action
        .as_deref()
        .and_then(BulkKind::parse)
        .ok_or_else(|| PageError::BadRequest("action must be retry or cancel".to_owned()))?;
    let mut conn = state.pool.acquire().await?;
    let parsed = query.runs.parse(&mut conn, session.marketplace_id).await?;
    let dry = actions::dry_run(&mut conn, &operator, kind, &parsed.filter).await?;
    let labels = vendor_labels(&mut conn, session.marketplace_id, &dry.runs).await?;
    drop(conn);
    let title = match kind {
        BulkKind::Retry => t(l, "Bulk retry"),
        BulkKind::Cancel => t(l, "Bulk cancel"),
    };
    let body = html! {
        h1 { (title) " — " (t(l, "Dry run")) }
        p #dry-run-count { b { (dry.matching) } " " (t(l, "runs match this filter")) }
        @if dry.matching > dry.runs.len() as i64 {
            p.notice.warn #dry-run-capped { (t(l, "Only the first runs listed here, oldest first, will be acted on. Narrow the filter for the rest.")) " (" (BULK_CAP) ")" }
        }
        h2 { (t(l, "These runs would be affected")) " (" (dry.runs.len()) ")" }
        @if !dry.runs.is_empty() {
            div.card style="max-width:40rem" {
                form method="post" action="/admin/runs/bulk" #bulk-confirm {
                    (csrf_field(&session))
                    input type="hidden" name="action" value=(kind.as_str());
                    @for run in &dry.runs { input type="hidden" name="run_id" value=(run.id); }
                    (reason_field(l))
                    button type="submit" class=[(kind == BulkKind::Cancel).then_some("danger")] { (t(l, "Confirm")) ": " (title) " (" (dry.runs.len()) ")" }
                }
            }
        }
        (run_table(l, &dry.runs, &labels))
        p { a href={ "/admin/runs?" (query.runs.to_query()) } { (t(l, "Back to runs")) } }
    };
    Ok(page(l, Some(&session), Nav::Runs, title, body))
}

/// `POST /admin/runs/bulk`: acts on exactly the runs the dry run listed.
pub(crate) async fn bulk_apply(
    State(state): State<AppState>,
    Ui(l): Ui,
    posted: Posted,
) -> Result<Response, PageError> {
    let operator = posted.session.require_operator()?;
    let kind = posted
        .get("action")
        .and_then(BulkKind::parse)
        .ok_or_else(|| PageError::BadRequest("action must be retry or cancel".to_owned()))?;
    let ids = posted
        .all("run_id")
        .into_iter()
        .map(|text| {
            Uuid::try_parse(text)
                .map_err(|_| PageError::BadRequest("a run id is not a uuid".to_owned()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (batch, outcomes) =
        actions::bulk(&state.pool, &operator, kind, &ids, posted.get("reason")).await?;
    let done = outcomes.iter().filter(|o| o.result.is_ok()).count();
    let body = html! {
        h1 { (t(l, "Bulk result")) }
        p #bulk-summary { (done) " " (t(l, "done")) ", " (outcomes.len() - done) " " (t(l, "refused")) " · " span.mono.small { (batch) } }
        table #bulk-results {
            thead { tr { th { (t(l, "Run")) } th { (t(l, "Result")) } th { (t(l, "Detail")) } } }
            tbody {
                @for outcome in &outcomes {
                    tr {
                        td { a href={ "/admin/runs/" (outcome.run_id) } { (short(outcome.run_id)) } }
                        @match &outcome.result {
                            Ok(detail) => { td { (t(l, "done")) } td { (detail) } }
                            Err(why) => { td { (t(l, "refused")) } td { (why) } }
                        }
                    }
                }
            }
        }
        p { a href="/admin/runs" { (t(l, "Back to runs")) } }
    };
    let mut response = page(
        l,
        Some(&posted.session),
        Nav::Runs,
        t(l, "Bulk result"),
        body,
    );
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

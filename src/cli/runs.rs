//! `vendorflow runs list|show|retry|resume|cancel|pause|signal`: what an operator needs to see
//! where runs stand and to act on them, with the engine's own operations
//! (`engine::ops`), so every action is checked by the same rules and recorded in the run's
//! history with who did it and why.

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use domain::definition::{AcceptAll, StepKind, WorkflowDefinition, parse_definition};
use domain::run::{Operation, RunStatus, operation_effect};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use store::attempts::AttemptRow;
use store::history::HistoryRow;
use store::run_queries::RunFilter;
use store::runs::RunRow;
use uuid::Uuid;

use super::table::Table;
use super::{relative, shell_quote, time, truncate};

/// The statuses a run can have, in the order counts are shown.
const STATUSES: [&str; 7] = [
    "pending",
    "running",
    "waiting",
    "paused",
    "succeeded",
    "failed",
    "cancelled",
];

/// The commands on runs.
#[derive(Debug, Subcommand)]
pub enum RunCommands {
    /// List runs, newest first, with counts per status.
    List(ListArgs),
    /// Show one run: status, each step's attempts, history, and what to do next.
    Show {
        /// The run's id.
        run: Uuid,
        /// Only if the run belongs to this marketplace.
        #[arg(long)]
        marketplace: Option<Uuid>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run the current step again now: cuts a pending run's backoff short, or gives a failed run
    /// a fresh retry budget at the step it failed (with the same idempotency key).
    Retry {
        /// The run's id.
        run: Uuid,
        #[command(flatten)]
        action: ActionArgs,
    },
    /// Resume a paused run; with `--from STEP`, move a pending, waiting, paused or failed run
    /// to STEP and run it (and the steps after it) again with a fresh idempotency key.
    Resume {
        /// The run's id.
        run: Uuid,
        /// The step to run again from (see `runs show` for the step names).
        #[arg(long)]
        from: Option<String>,
        #[command(flatten)]
        action: ActionArgs,
    },
    /// Cancel a run for good.
    Cancel {
        /// The run's id.
        run: Uuid,
        #[command(flatten)]
        action: ActionArgs,
    },
    /// Pause a run until an operator resumes it (a run a worker holds pauses when its step ends).
    Pause {
        /// The run's id.
        run: Uuid,
        #[command(flatten)]
        action: ActionArgs,
    },
    /// Send a signal to a run, e.g. `terminal_approved` once the acquirer approved the terminal.
    /// A signal sent before the run reaches its wait is kept until it gets there.
    Signal {
        /// The run's id.
        run: Uuid,
        /// The signal's name.
        name: String,
        /// A JSON payload for the signal (default `{}`).
        #[arg(long)]
        payload: Option<String>,
        #[command(flatten)]
        action: ActionArgs,
    },
}

/// What every action on a run takes.
#[derive(Debug, Args)]
pub struct ActionArgs {
    /// Why: recorded in the run's history (required).
    #[arg(long)]
    pub reason: String,
    /// Who is acting, for the history (default: the OS user, else `cli`).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only if the run belongs to this marketplace.
    #[arg(long)]
    pub marketplace: Option<Uuid>,
}

/// Filters of `runs list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The marketplace (optional when there is only one).
    #[arg(long)]
    pub marketplace: Option<Uuid>,
    /// Only this workflow, e.g. `vendor_onboarding`.
    #[arg(long)]
    pub workflow: Option<String>,
    /// Only this status.
    #[arg(long, value_parser = STATUSES)]
    pub status: Option<String>,
    /// Only runs currently at this step.
    #[arg(long)]
    pub step: Option<String>,
    /// Only runs of this vendor: its id, or the marketplace's external id for it (as the
    /// dashboard takes it).
    #[arg(long)]
    pub vendor: Option<String>,
    /// Only unfinished runs unchanged for at least this many minutes.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=525_600))]
    pub stuck_minutes: Option<i32>,
    /// At most this many runs.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub limit: i64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A run as the CLI prints it in JSON.
#[derive(Debug, Serialize)]
struct RunJson<'a> {
    id: Uuid,
    workflow: &'a str,
    workflow_version: i32,
    status: &'a str,
    outcome: Option<&'a str>,
    status_reason: Option<&'a str>,
    step: &'a str,
    attempt: i32,
    vendor_id: Option<Uuid>,
    marketplace_id: Option<Uuid>,
    next_run_at: Option<DateTime<Utc>>,
    last_error: Option<&'a Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl<'a> From<&'a RunRow> for RunJson<'a> {
    fn from(run: &'a RunRow) -> Self {
        RunJson {
            id: run.id,
            workflow: &run.workflow,
            workflow_version: run.workflow_version,
            status: run.status.as_str(),
            outcome: run.outcome.as_deref(),
            status_reason: run.status_reason.as_deref(),
            step: &run.step_name,
            attempt: run.attempt,
            vendor_id: run.subject_id,
            marketplace_id: run.marketplace_id,
            next_run_at: run.next_run_at,
            last_error: run.last_error.as_ref(),
            created_at: run.created_at,
            updated_at: run.updated_at,
            finished_at: run.finished_at,
        }
    }
}

/// The longest reason kept (as the dashboard keeps).
const MAX_REASON_CHARS: usize = 500;

/// The reason of an action, trimmed; refused when blank or too long, as the dashboard refuses it.
fn reason(action: &ActionArgs) -> anyhow::Result<String> {
    let reason = action.reason.trim();
    if reason.is_empty() {
        return Err(anyhow!(
            "--reason: a reason is required; it is recorded in the run's history and the audit log"
        ));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(anyhow!(
            "--reason: the reason is longer than {MAX_REASON_CHARS} characters"
        ));
    }
    Ok(reason.to_owned())
}

/// What an action did: the line to print (also the audit entry's detail), the action's name in
/// the audit log (the dashboard's names) and its non-secret details there.
struct Acted<T> {
    value: T,
    action: &'static str,
    data: Option<Value>,
    said: String,
}

impl<T> Acted<T> {
    fn new(value: T, action: &'static str, said: String) -> Acted<T> {
        Acted {
            value,
            action,
            data: None,
            said,
        }
    }
}

/// Does an action on one transaction with its entry in the audit log (the dashboard's, with
/// channel `cli` and the actor's name): the engine's operation nests in it as a savepoint, so the
/// run's change, its history and the audit entry commit together or not at all. An action the
/// run's status refuses is rolled back and then audited as `refused`, as the dashboard does. A
/// run of no marketplace (the benchmark's) has no audit log: the action is done without one.
async fn audited<T>(
    conn: &mut PgConnection,
    target: &Target,
    who: &engine::Actor,
    reason: &str,
    (action, data): (&'static str, Option<Value>),
    operation: impl AsyncFnOnce(&mut PgConnection) -> Result<Acted<T>, engine::EngineError>,
) -> anyhow::Result<T> {
    use sqlx::Connection as _;
    let mut tx = conn.begin().await?;
    match operation(&mut tx).await {
        Ok(acted) => {
            if let Some(marketplace_id) = target.row.marketplace_id {
                let data = match (data, acted.data) {
                    (Some(Value::Object(mut asked)), Some(Value::Object(done))) => {
                        asked.extend(done);
                        Some(Value::Object(asked))
                    }
                    (asked, done) => done.or(asked),
                };
                audit(
                    &mut tx,
                    marketplace_id,
                    target.row.id,
                    who,
                    reason,
                    (acted.action, data),
                    ("ok", &acted.said),
                )
                .await?;
            }
            tx.commit().await?;
            println!("{}", acted.said);
            Ok(acted.value)
        }
        Err(error) => {
            tx.rollback().await?;
            let refused = matches!(
                error,
                engine::EngineError::Transition(_) | engine::EngineError::RunEnded(..)
            );
            let error = explain(error, target);
            if refused && let Some(marketplace_id) = target.row.marketplace_id {
                audit(
                    conn,
                    marketplace_id,
                    target.row.id,
                    who,
                    reason,
                    (action, data),
                    ("refused", &format!("{error:#}")),
                )
                .await?;
            }
            Err(error)
        }
    }
}

/// Appends an audit entry of the command line.
async fn audit(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    run: Uuid,
    who: &engine::Actor,
    reason: &str,
    (action, data): (&str, Option<Value>),
    (result, detail): (&str, &str),
) -> anyhow::Result<()> {
    store::admin::append_audit(
        conn,
        &store::admin::NewAuditEntry {
            marketplace_id,
            token_id: None,
            actor: Some(&who.id),
            role: "operator",
            channel: "cli",
            action,
            target_kind: "run",
            target_id: Some(run),
            reason: Some(reason),
            result,
            detail: Some(detail),
            data,
        },
    )
    .await?;
    Ok(())
}

/// Runs one `runs` command; `actor` names who acts, for the history and the audit log;
/// `development` says the database is `make run`'s (whose marketplace `list` may default to).
pub async fn run(
    command: RunCommands,
    conn: &mut PgConnection,
    actor: impl Fn(Option<&str>) -> engine::Actor,
    development: bool,
) -> anyhow::Result<()> {
    match command {
        RunCommands::List(args) => list(conn, args, development).await,
        RunCommands::Show {
            run,
            marketplace,
            json,
        } => show(conn, run, marketplace, json).await,
        RunCommands::Retry { run, action } => {
            let why = reason(&action)?;
            let target = target(conn, run, action.marketplace).await?;
            let who = actor(action.actor.as_deref());
            let step = &target.row.step_name;
            audited(conn, &target, &who, &why, ("retry_now", None), async |tx| {
                match engine::ops::retry_now(tx, run.into(), &who, &why).await {
                    Ok(status) => Ok(Acted::new(
                        status,
                        "retry_now",
                        format!("run {run} is {status}: its step {step} runs again now"),
                    )),
                    // A paused run is retried by resuming it, which is what an operator who asks
                    // for a retry means: its step runs again now, with a fresh retry budget.
                    Err(engine::EngineError::Transition(refused))
                        if refused.status == RunStatus::Paused =>
                    {
                        let status = engine::ops::resume(tx, run.into(), &who, &why).await?;
                        Ok(Acted {
                            data: Some(json!({ "asked": "retry" })),
                            ..Acted::new(
                                status,
                                "resume",
                                format!(
                                    "run {run} was paused, so it is resumed (as `runs resume` \
                                     does): it is {status} and its step {step} runs again now"
                                ),
                            )
                        })
                    }
                    Err(error) => Err(error),
                }
            })
            .await?;
            Ok(())
        }
        RunCommands::Resume { run, from, action } => {
            let why = reason(&action)?;
            let target = target(conn, run, action.marketplace).await?;
            let who = actor(action.actor.as_deref());
            match from {
                Some(step) => {
                    let data = Some(json!({ "step": step }));
                    audited(
                        conn,
                        &target,
                        &who,
                        &why,
                        ("resume_from", data),
                        async |tx| {
                            let status =
                                engine::ops::resume_from(tx, run.into(), &step, &who, &why).await?;
                            Ok(Acted::new(
                                status,
                                "resume_from",
                                format!("run {run} is {status}: it runs again from step {step}"),
                            ))
                        },
                    )
                    .await?;
                }
                None => {
                    let step = &target.row.step_name;
                    audited(conn, &target, &who, &why, ("resume", None), async |tx| {
                        let status = engine::ops::resume(tx, run.into(), &who, &why).await?;
                        let said = if status == RunStatus::Running {
                            format!("run {run}: the pause requested is withdrawn; it keeps running")
                        } else {
                            format!("run {run} is {status}: it continues at step {step}")
                        };
                        Ok(Acted::new(status, "resume", said))
                    })
                    .await?;
                }
            }
            Ok(())
        }
        RunCommands::Cancel { run, action } => {
            let why = reason(&action)?;
            let target = target(conn, run, action.marketplace).await?;
            let who = actor(action.actor.as_deref());
            let step = &target.row.step_name;
            audited(conn, &target, &who, &why, ("cancel", None), async |tx| {
                let status = engine::ops::cancel(tx, run.into(), &who, &why).await?;
                let said = match status {
                    RunStatus::Running => format!(
                        "run {run}: a worker is executing step {step}; it is cancelled once that \
                         step's outcome is recorded"
                    ),
                    RunStatus::Pending => format!(
                        "run {run}: the outcome of step {step}'s last attempt is unknown; it is \
                         reconciled first (what the provider did is kept), then the run is \
                         cancelled"
                    ),
                    _ => format!("run {run} is {status}"),
                };
                Ok(Acted::new(status, "cancel", said))
            })
            .await?;
            Ok(())
        }
        RunCommands::Pause { run, action } => {
            let why = reason(&action)?;
            let target = target(conn, run, action.marketplace).await?;
            let who = actor(action.actor.as_deref());
            let step = &target.row.step_name;
            audited(conn, &target, &who, &why, ("pause", None), async |tx| {
                let status = engine::ops::pause(tx, run.into(), &who, &why).await?;
                let said = if status == RunStatus::Running {
                    format!(
                        "run {run}: a worker is executing step {step}; it pauses when that step \
                         ends"
                    )
                } else {
                    format!("run {run} is {status}")
                };
                Ok(Acted::new(status, "pause", said))
            })
            .await?;
            Ok(())
        }
        RunCommands::Signal {
            run,
            name,
            payload,
            action,
        } => {
            let payload: Value = match payload {
                None => json!({}),
                Some(text) => serde_json::from_str(&text).map_err(|error| {
                    anyhow!(
                        "--payload: not valid JSON (line {}, column {})",
                        error.line(),
                        error.column()
                    )
                })?,
            };
            let why = reason(&action)?;
            let target = target(conn, run, action.marketplace).await?;
            let who = actor(action.actor.as_deref());
            // The payload is not copied into the audit log: the run's history keeps it, redacted.
            let data = Some(json!({ "signal": name }));
            audited(conn, &target, &who, &why, ("signal", data), async |tx| {
                let outcome =
                    engine::ops::signal(tx, run.into(), &name, payload, &who, &why).await?;
                let said = match outcome {
                    engine::ops::SignalOutcome::Woken => format!(
                        "signal {name} delivered: run {run} was waiting for it and is due now"
                    ),
                    engine::ops::SignalOutcome::Stored => {
                        // Where the run stands now, under the lock the signal took.
                        let now = store::runs::get(tx, run)
                            .await?
                            .ok_or(engine::EngineError::RunNotFound(run.into()))?;
                        stored_signal(&name, &now, target.definition.as_ref())
                    }
                };
                Ok(Acted::new(outcome, "signal", said))
            })
            .await?;
            Ok(())
        }
    }
}

/// What became of a signal the run was not waiting for, truthfully: when it will be consumed,
/// or that nothing will consume it as the run stands.
fn stored_signal(name: &str, run: &RunRow, definition: Option<&WorkflowDefinition>) -> String {
    let id = run.id;
    let wait = definition.and_then(|d| {
        d.steps
            .iter()
            .position(|step| matches!(&step.kind, StepKind::Wait(w) if w.signal == name))
            .map(|index| (index, d.steps[index].name.as_str()))
    });
    let current = usize::try_from(run.step_index).unwrap_or(0);
    let step = &run.step_name;
    let resume = format!("vendorflow runs resume {id} --reason '<why>'");
    match wait {
        Some((index, wait)) if current > index => format!(
            "signal {name} stored, but nothing will consume it: run {id} is past its wait \
             {wait} (at step {step}); only a run resumed from {wait} or earlier takes it"
        ),
        Some((index, wait)) if run.status == RunStatus::Paused && current == index => format!(
            "signal {name} stored: run {id} is paused at its wait {wait} and consumes the signal \
             as soon as it is resumed: {resume}"
        ),
        Some((_, wait)) if run.status == RunStatus::Paused => format!(
            "signal {name} stored: run {id} is paused at step {step}, before its wait {wait}; \
             once resumed ({resume}) it consumes the signal when it gets there"
        ),
        Some((index, wait)) if current == index => format!(
            "signal {name} stored: run {id} is {} at its wait {wait} and consumes the signal \
             when it next looks, which is due now or when its step ends",
            run.status
        ),
        Some((_, wait)) => format!(
            "signal {name} stored: run {id} is {} at step {step}, before its wait {wait}, and \
             consumes the signal when it gets there",
            run.status
        ),
        None => {
            format!("signal {name} stored: run {id} consumes it when it reaches the wait for it")
        }
    }
}

/// A run an action is about, with the definition it pinned (for step and signal names).
struct Target {
    row: RunRow,
    definition: Option<WorkflowDefinition>,
}

/// The run an action is about, checked against `--marketplace` when given.
async fn target(
    conn: &mut PgConnection,
    run: Uuid,
    marketplace: Option<Uuid>,
) -> anyhow::Result<Target> {
    let row = match marketplace {
        Some(marketplace) => store::run_queries::find(conn, marketplace, run)
            .await?
            .ok_or_else(|| {
                anyhow!(
                    "RUN_ID: no run {run} in marketplace {marketplace} (`vendorflow runs list \
                     --marketplace {marketplace}` shows its runs)"
                )
            })?,
        None => store::runs::get(conn, run).await?.ok_or_else(|| {
            anyhow!("RUN_ID: no run {run} (`vendorflow runs list` shows the runs)")
        })?,
    };
    let definition = pinned_definition(conn, &row).await?;
    Ok(Target { row, definition })
}

/// The definition a run pinned, parsed from the text stored when its first run started; `None`
/// when that text is missing or unreadable (the engine's operations then report it).
async fn pinned_definition(
    conn: &mut PgConnection,
    row: &RunRow,
) -> anyhow::Result<Option<WorkflowDefinition>> {
    let source = store::runs::definition_source(conn, &row.workflow, &row.content_hash).await?;
    Ok(source.and_then(|(file, text)| parse_definition(&file, &text, &AcceptAll).ok()))
}

/// An engine error as a message that names the argument at fault.
fn explain(error: engine::EngineError, target: &Target) -> anyhow::Error {
    use engine::EngineError;
    let id = target.row.id;
    match error {
        EngineError::RunNotFound(_) => anyhow!("RUN_ID: no run {id}"),
        EngineError::ReasonRequired => anyhow!(
            "--reason: a reason is required; it is recorded in the run's history and the audit log"
        ),
        EngineError::Transition(refused) => {
            // Say what applies instead, as a command that works on the run as it stands.
            let instead = next_steps(&target.row, target.definition.as_ref())
                .into_iter()
                .find_map(|hint| hint.command);
            match instead {
                Some(command) => anyhow!("run {id}: {refused}; what applies now: {command}"),
                None => anyhow!("run {id}: {refused}"),
            }
        }
        EngineError::UnknownStep { workflow, step } => {
            let steps = target
                .definition
                .as_ref()
                .map(|d| format!("; its steps are: {}", join(d.steps.iter().map(|s| &s.name))))
                .unwrap_or_default();
            anyhow!("--from: workflow `{workflow}` has no step `{step}`{steps}")
        }
        EngineError::UnknownSignal { workflow, signal } => {
            let signals = target
                .definition
                .as_ref()
                .map(|d| {
                    let names: Vec<&String> = d
                        .steps
                        .iter()
                        .filter_map(|s| match &s.kind {
                            StepKind::Wait(wait) => Some(&wait.signal),
                            StepKind::Action(_) => None,
                        })
                        .collect();
                    if names.is_empty() {
                        "; it waits for no signal".to_owned()
                    } else {
                        format!("; it waits for: {}", join(names))
                    }
                })
                .unwrap_or_default();
            anyhow!("NAME: workflow `{workflow}` never waits for the signal `{signal}`{signals}")
        }
        EngineError::RunEnded(_, status) => {
            anyhow!("run {id} has ended ({status}); it takes no signal")
        }
        other => anyhow::Error::new(other),
    }
}

fn join<T: AsRef<str>>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|item| item.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The vendor `--vendor` names in the marketplace: by its id, else by its external id.
async fn vendor(conn: &mut PgConnection, marketplace: Uuid, text: &str) -> anyhow::Result<Uuid> {
    let text = text.trim();
    if let Ok(id) = Uuid::try_parse(text)
        && let Some(vendor) = store::vendors::find(conn, marketplace, id).await?
    {
        return Ok(vendor.id);
    }
    match store::vendors::find_by_external_id(conn, marketplace, text).await? {
        Some(vendor) => Ok(vendor.id),
        None => Err(anyhow!(
            "--vendor: marketplace {marketplace} has no vendor with the id or external id \
             `{text}`"
        )),
    }
}

/// `runs list`.
async fn list(conn: &mut PgConnection, args: ListArgs, development: bool) -> anyhow::Result<()> {
    let marketplace = super::marketplace(conn, args.marketplace, development).await?;
    let subject_id = match &args.vendor {
        Some(text) => Some(vendor(conn, marketplace, text).await?),
        None => None,
    };
    let filter = RunFilter {
        workflow: args.workflow,
        status: args.status,
        step: args.step,
        subject_id,
        stuck_minutes: args.stuck_minutes,
        ..RunFilter::default()
    };
    let runs = store::run_queries::list(conn, marketplace, &filter, None, args.limit).await?;
    // Counts ignore the status filter, so they show where the other runs stand too.
    let counts = store::run_queries::count_by_status(conn, marketplace, &filter).await?;
    let count_of = |status: &str| {
        counts
            .iter()
            .find(|(name, _)| name == status)
            .map_or(0, |(_, count)| *count)
    };
    let matching: i64 = match &filter.status {
        Some(status) => count_of(status),
        None => counts.iter().map(|(_, count)| count).sum(),
    };

    if args.json {
        let counts: serde_json::Map<String, Value> = STATUSES
            .iter()
            .map(|status| ((*status).to_owned(), json!(count_of(status))))
            .collect();
        let report = json!({
            "marketplace_id": marketplace,
            "counts": counts,
            "matching": matching,
            "runs": runs.iter().map(RunJson::from).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }

    let now = Utc::now();
    let mut table = Table::new(&[
        "id", "workflow", "status", "step", "attempt", "updated", "reason",
    ]);
    for run in &runs {
        table.row(vec![
            run.id.to_string(),
            run.workflow.clone(),
            run.status.to_string(),
            run.step_name.clone(),
            run.attempt.to_string(),
            relative(run.updated_at, now),
            truncate(&reason_of(run), 70),
        ]);
    }
    if table.is_empty() {
        println!("no runs match");
    } else {
        print!("{}", table.render());
    }
    let shown: Vec<String> = STATUSES
        .iter()
        .filter(|status| count_of(status) > 0)
        .map(|status| format!("{status} {}", count_of(status)))
        .collect();
    println!();
    println!(
        "by status: {}",
        if shown.is_empty() {
            "none".to_owned()
        } else {
            shown.join(", ")
        }
    );
    if matching > runs.len() as i64 {
        println!(
            "showing the newest {} of {matching} matching runs; use --limit for more",
            runs.len()
        );
    }
    Ok(())
}

/// Why a run stands where it is: its status reason, else its last error.
fn reason_of(run: &RunRow) -> String {
    if let Some(reason) = &run.status_reason {
        return reason.clone();
    }
    match (&run.last_error, run.status.as_str()) {
        (Some(error), "pending" | "failed" | "running") => error_text(error),
        _ => String::new(),
    }
}

/// An error envelope as `code: message`.
fn error_text(error: &Value) -> String {
    let code = error.get("code").and_then(Value::as_str).unwrap_or("error");
    match error.get("message").and_then(Value::as_str) {
        Some(message) => format!("{code}: {message}"),
        None => code.to_owned(),
    }
}

/// One step of a run's timeline.
#[derive(Debug, Serialize)]
struct StepView<'a> {
    name: String,
    /// `action` or `wait`.
    kind: &'static str,
    /// For a wait: the signal it waits for.
    signal: Option<String>,
    /// `done`, `skipped`, `current`, `not_yet`, `not_run` (passed over, or after the end),
    /// or `failed` / `cancelled` for the step a run ended at.
    state: &'static str,
    attempts: Vec<AttemptView<'a>>,
}

/// One attempt of a step.
#[derive(Debug, Serialize)]
struct AttemptView<'a> {
    attempt: i32,
    generation: i32,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    /// `succeeded`, `retryable`, `fatal`, `unknown`, … or null while in flight.
    outcome: Option<&'a str>,
    error: Option<&'a Value>,
    duration_ms: Option<i64>,
    /// When the retry that followed this attempt was scheduled for.
    next_retry_at: Option<DateTime<Utc>>,
}

/// One suggestion of what to do next.
#[derive(Debug, Serialize)]
struct Hint {
    what: String,
    command: Option<String>,
}

/// `runs show`.
async fn show(
    conn: &mut PgConnection,
    id: Uuid,
    marketplace: Option<Uuid>,
    as_json: bool,
) -> anyhow::Result<()> {
    let target = target(conn, id, marketplace).await?;
    let run = &target.row;
    let attempts = store::attempts::list_for_run(conn, id).await?;
    let history = store::history::list_for_run(conn, id).await?;
    // Tokens that acted (`token:<uuid>`) are shown by their names, as the dashboard shows them.
    let token_ids: Vec<Uuid> = history
        .iter()
        .filter_map(|event| store::tokens::token_of_actor(&event.actor_id))
        .collect();
    let names: std::collections::HashMap<String, String> = store::tokens::names(conn, &token_ids)
        .await?
        .into_iter()
        .map(|(id, name)| (format!("token:{id}"), name))
        .collect();
    let actor = |event: &HistoryRow| {
        let who = names.get(&event.actor_id).unwrap_or(&event.actor_id);
        format!("{}:{who}", event.actor_kind)
    };
    let steps = timeline(run, target.definition.as_ref(), &attempts, &history);
    let hints = next_steps(run, target.definition.as_ref());

    if as_json {
        let report = json!({
            "run": RunJson::from(run),
            "context": run.context,
            "steps": steps,
            "history": history.iter().map(|event| json!({
                "at": event.at,
                "kind": event.kind,
                "step": event.step_name,
                "attempt": event.attempt,
                "actor": format!("{}:{}", event.actor_kind, event.actor_id),
                "actor_name": names.get(&event.actor_id),
                "reason": event.reason,
                "data": event.data,
            })).collect::<Vec<_>>(),
            "next": hints,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }

    let now = Utc::now();
    println!("run {}", run.id);
    println!("  workflow   {} v{}", run.workflow, run.workflow_version);
    let status = match &run.outcome {
        Some(outcome) if run.status == RunStatus::Succeeded => format!("succeeded ({outcome})"),
        _ => run.status.to_string(),
    };
    println!(
        "  status     {status} at step {} (attempt {})",
        run.step_name, run.attempt
    );
    if let Some(reason) = &run.status_reason {
        println!("  reason     {reason}");
    }
    if let Some(error) = &run.last_error {
        println!("  last error {}", error_text(error));
    }
    if let Some(vendor) = run.subject_id {
        println!("  vendor     {vendor}");
    }
    println!(
        "  created    {} ({})",
        time(run.created_at),
        relative(run.created_at, now)
    );
    println!(
        "  updated    {} ({})",
        time(run.updated_at),
        relative(run.updated_at, now)
    );
    if let Some(finished) = run.finished_at {
        println!("  finished   {}", time(finished));
    } else if let Some(next) = run.next_run_at
        && run.status == RunStatus::Pending
    {
        println!("  next run   {} ({})", time(next), relative(next, now));
    }

    println!();
    println!("steps");
    for (index, step) in steps.iter().enumerate() {
        let mut line = format!(
            "  {}. {:<26} {}",
            index + 1,
            step.name,
            step.state.replace('_', " ")
        );
        if let Some(signal) = &step.signal {
            line.push_str(&format!("  (waits for signal `{signal}`)"));
        }
        println!("{}", line.trim_end());
        for attempt in &step.attempts {
            let mut line = format!("       attempt {}", attempt.attempt);
            if attempt.generation > 0 {
                line.push_str(&format!(" (gen {})", attempt.generation));
            }
            line.push_str(&format!("  {}", attempt.outcome.unwrap_or("in flight")));
            if let Some(ms) = attempt.duration_ms {
                line.push_str(&format!("  {}", super::millis_words(ms)));
            }
            line.push_str(&format!("  started {}", time(attempt.started_at)));
            if let Some(error) = attempt.error {
                line.push_str(&format!("  {}", truncate(&error_text(error), 100)));
            }
            if let Some(retry) = attempt.next_retry_at {
                line.push_str(&format!(
                    "  next retry {} ({})",
                    time(retry),
                    relative(retry, now)
                ));
            }
            println!("{line}");
        }
    }

    println!();
    println!("history");
    let mut table = Table::new(&["time", "event", "step", "actor", "reason / details"]);
    for event in &history {
        let details = match (&event.reason, &event.data) {
            (Some(reason), _) => reason.clone(),
            (None, Some(data)) => data.to_string(),
            (None, None) => String::new(),
        };
        table.row(vec![
            time(event.at),
            event.kind.clone(),
            event.step_name.clone().unwrap_or_default(),
            actor(event),
            truncate(&details, 90),
        ]);
    }
    print!("{}", indent(&table.render()));

    println!();
    println!("what to do next");
    for hint in &hints {
        println!("  {}", hint.what);
        if let Some(command) = &hint.command {
            println!("    {command}");
        }
    }
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}\n")).collect()
}

/// The run's steps in definition order with their attempts; without the definition, the steps
/// its attempts name.
fn timeline<'a>(
    run: &RunRow,
    definition: Option<&WorkflowDefinition>,
    attempts: &'a [AttemptRow],
    history: &[HistoryRow],
) -> Vec<StepView<'a>> {
    let attempts_of = |name: &str| -> Vec<AttemptView<'a>> {
        attempts
            .iter()
            .filter(|attempt| attempt.step_name == name)
            .map(|attempt| AttemptView {
                attempt: attempt.attempt,
                generation: attempt.generation,
                started_at: attempt.started_at,
                finished_at: attempt.finished_at,
                outcome: attempt.outcome.as_deref(),
                error: attempt.error.as_ref(),
                duration_ms: attempt.duration_ms,
                next_retry_at: next_retry(attempt, history),
            })
            .collect()
    };
    let current = usize::try_from(run.step_index).unwrap_or(0);
    match definition {
        Some(definition) => definition
            .steps
            .iter()
            .enumerate()
            .map(|(index, step)| {
                let named = |kind: &str| {
                    history.iter().any(|event| {
                        event.kind == kind && event.step_name.as_deref() == Some(&step.name)
                    })
                };
                // A step ran to its end if an attempt succeeded (or ended the run with an
                // outcome) or its wait completed; an operator may have moved a run past steps
                // that never ran, or back before steps that will run again.
                let completed = attempts.iter().any(|attempt| {
                    attempt.step_name == step.name
                        && matches!(attempt.outcome.as_deref(), Some("succeeded" | "finished"))
                }) || named("wait_completed");
                let state = match index.cmp(&current) {
                    std::cmp::Ordering::Equal => match run.status.as_str() {
                        "succeeded" if named("step_skipped") && !completed => "skipped",
                        "succeeded" => "done",
                        "failed" => "failed",
                        "cancelled" => "cancelled",
                        _ => "current",
                    },
                    std::cmp::Ordering::Less if completed => "done",
                    std::cmp::Ordering::Less if named("step_skipped") => "skipped",
                    std::cmp::Ordering::Less => "not_run",
                    std::cmp::Ordering::Greater if run.finished_at.is_some() => "not_run",
                    std::cmp::Ordering::Greater => "not_yet",
                };
                let (kind, signal) = match &step.kind {
                    StepKind::Action(_) => ("action", None),
                    StepKind::Wait(wait) => ("wait", Some(wait.signal.clone())),
                };
                StepView {
                    name: step.name.clone(),
                    kind,
                    signal,
                    state,
                    attempts: attempts_of(&step.name),
                }
            })
            .collect(),
        None => {
            let mut names: Vec<&str> = Vec::new();
            for attempt in attempts {
                if !names.contains(&attempt.step_name.as_str()) {
                    names.push(&attempt.step_name);
                }
            }
            if !names.contains(&run.step_name.as_str()) {
                names.push(&run.step_name);
            }
            names
                .into_iter()
                .map(|name| StepView {
                    name: name.to_owned(),
                    kind: "action",
                    signal: None,
                    state: if name == run.step_name {
                        "current"
                    } else {
                        "done"
                    },
                    attempts: attempts_of(name),
                })
                .collect()
        }
    }
}

/// When the retry after a failed attempt was scheduled for: the first `backoff_scheduled` event
/// of the same step and attempt number after it started, plus its delay.
fn next_retry(attempt: &AttemptRow, history: &[HistoryRow]) -> Option<DateTime<Utc>> {
    if !matches!(attempt.outcome.as_deref(), Some("retryable" | "unknown")) {
        return None;
    }
    history
        .iter()
        .find(|event| {
            event.kind == "backoff_scheduled"
                && event.at >= attempt.started_at
                && event.step_name.as_deref() == Some(attempt.step_name.as_str())
                && event.attempt == Some(attempt.attempt)
        })
        .and_then(|event| {
            let delay = event.data.as_ref()?.get("delay_ms")?.as_i64()?;
            Some(event.at + chrono::Duration::milliseconds(delay))
        })
}

/// What an operator can do with the run now, derived from its status and reason, with the
/// commands that do it (only those the engine's rules allow in this status).
fn next_steps(run: &RunRow, definition: Option<&WorkflowDefinition>) -> Vec<Hint> {
    let status = run.status;
    let allowed = |operation| operation_effect(status, run.flags(), operation).is_ok();
    let id = run.id;
    let command = |rest: String| Some(format!("vendorflow runs {rest} --reason '<why>'"));
    let steps = definition
        .map(|d| join(d.steps.iter().map(|s| &s.name)))
        .unwrap_or_else(|| run.step_name.clone());
    let mut hints = Vec::new();
    match status {
        RunStatus::Succeeded | RunStatus::Cancelled => hints.push(Hint {
            what: format!("nothing: the run has ended ({status})"),
            command: None,
        }),
        RunStatus::Running => {
            hints.push(Hint {
                what: format!(
                    "a worker is executing step {}{}; wait for it",
                    run.step_name,
                    run.lease_expires_at
                        .map(|at| format!(" (its lease runs until {})", time(at)))
                        .unwrap_or_default()
                ),
                command: None,
            });
            if run.cancel_requested {
                hints.push(Hint {
                    what: "a cancel is requested and applies once the step's outcome is recorded; \
                           to withdraw it:"
                        .to_owned(),
                    command: command(format!("resume {id}")),
                });
            } else if run.pause_requested {
                hints.push(Hint {
                    what: "a pause is requested and applies when the step ends; to withdraw it:"
                        .to_owned(),
                    command: command(format!("resume {id}")),
                });
            }
        }
        RunStatus::Waiting => {
            let signal = definition
                .and_then(|d| d.steps.get(usize::try_from(run.step_index).ok()?))
                .and_then(|step| match &step.kind {
                    StepKind::Wait(wait) => Some(wait.signal.clone()),
                    StepKind::Action(_) => None,
                });
            match signal {
                Some(signal) => hints.push(Hint {
                    what: format!(
                        "the run waits for the signal `{signal}` at step {}; once that has \
                         happened, send it:",
                        run.step_name
                    ),
                    command: command(format!("signal {id} {}", shell_quote(&signal))),
                }),
                None => hints.push(Hint {
                    what: format!("the run waits at step {}", run.step_name),
                    command: None,
                }),
            }
        }
        RunStatus::Paused => {
            hints.push(Hint {
                what: format!(
                    "the run is paused{}; fix the cause, then resume it:",
                    run.status_reason
                        .as_deref()
                        .map(|reason| format!(" ({reason})"))
                        .unwrap_or_default()
                ),
                command: command(format!("resume {id}")),
            });
            // A reason that names a step in backticks (e.g. "resume this run from
            // `capture_api_keys`") says where to resume from.
            let named = definition.and_then(|d| {
                let reason = run.status_reason.as_deref()?;
                d.steps
                    .iter()
                    .find(|step| reason.contains(&format!("`{}`", step.name)))
                    .map(|step| step.name.clone())
            });
            let from = named.clone().unwrap_or_else(|| run.step_name.clone());
            hints.push(Hint {
                what: match named {
                    Some(step) => format!("or, as its reason says, run it again from {step}:"),
                    None => format!("or run it again from a step ({steps}):"),
                },
                command: command(format!("resume {id} --from {}", shell_quote(&from))),
            });
        }
        RunStatus::Failed => {
            hints.push(Hint {
                what: format!(
                    "the run failed at step {}{}; run it again from that step (a fresh \
                     idempotency key) or from another ({steps}):",
                    run.step_name,
                    reason_suffix(run)
                ),
                command: command(format!(
                    "resume {id} --from {}",
                    shell_quote(&run.step_name)
                )),
            });
            hints.push(Hint {
                what: "or retry the step as it was (the same idempotency key):".to_owned(),
                command: command(format!("retry {id}")),
            });
        }
        RunStatus::Pending => {
            if run.attempt > 0 {
                hints.push(Hint {
                    what: format!(
                        "step {} failed {} time(s){} and is retried{}; to retry now:",
                        run.step_name,
                        run.attempt,
                        reason_suffix(run),
                        run.next_run_at
                            .map(|at| format!(" at {}", time(at)))
                            .unwrap_or_default()
                    ),
                    command: command(format!("retry {id}")),
                });
            } else {
                hints.push(Hint {
                    what: format!(
                        "nothing: step {} is due and a worker will take it",
                        run.step_name
                    ),
                    command: None,
                });
            }
        }
    }
    if !status.is_terminal() {
        if allowed(Operation::Pause) && status != RunStatus::Running {
            hints.push(Hint {
                what: "to stop it until an operator resumes it:".to_owned(),
                command: command(format!("pause {id}")),
            });
        }
        if allowed(Operation::Cancel) {
            hints.push(Hint {
                what: "to give up on it for good:".to_owned(),
                command: command(format!("cancel {id}")),
            });
        }
    }
    hints
}

fn reason_suffix(run: &RunRow) -> String {
    let reason = reason_of(run);
    if reason.is_empty() {
        String::new()
    } else {
        format!(" ({})", truncate(&reason, 120))
    }
}

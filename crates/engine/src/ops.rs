//! Operators' operations and signals: retry now, resume, resume from a named step, pause,
//! cancel, signal. Each takes the caller's connection (so it can run inside the API's own
//! transaction, with its audit log and idempotency record; on a plain connection it opens its
//! own), locks the run's row first so that it serialises with workers' records and other
//! operations, applies the pure rule of `domain::run::operation_effect`, and appends who did it
//! and why to the run's history, all in one transaction.
//!
//! Operations that take a run away from a worker (resume from a step) increment its lease token,
//! so the worker's late record writes nothing. A pause or a cancel of a run a worker holds is
//! recorded as requested and applied by that worker's next record, so the step in flight keeps
//! its outcome; a cancel of a run whose last attempt's outcome is unknown waits for the reconcile.

use domain::definition::{AcceptAll, StepKind, WorkflowDefinition, parse_definition};
use domain::run::{
    Actor, HistoryKind, Operation, OperationEffect, RunId, RunStatus, operation_effect, redact,
};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use store::runs::{HistoryEntry, OperatorChange, RunRow};
use uuid::Uuid;

use crate::EngineError;

/// What a signal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalOutcome {
    /// The run was waiting for it and is now due.
    Woken,
    /// The run is not (yet) at the wait: the signal is kept and consumed when it gets there.
    Stored,
}

/// Evaluates a check inside an operation's transaction; on an error, rolls the transaction back
/// at once (releasing the run's row lock, which a dropped transaction would keep until the
/// connection's next use) and returns the error.
macro_rules! or_rollback {
    ($tx:ident, $check:expr) => {
        match $check {
            Ok(value) => value,
            Err(error) => {
                $tx.rollback().await?;
                return Err(error.into());
            }
        }
    };
}

fn entry(
    run_id: Uuid,
    kind: HistoryKind,
    step: Option<&str>,
    actor: &Actor,
    reason: &str,
    data: Option<Value>,
) -> HistoryEntry {
    HistoryEntry {
        run_id,
        kind: kind.as_str().to_owned(),
        step_name: step.map(str::to_owned),
        attempt: None,
        actor_kind: actor.kind.as_str().to_owned(),
        actor_id: actor.id.clone(),
        reason: Some(reason.to_owned()),
        data: data.map(|d| redact(&d)),
        only_if_continuing: false,
    }
}

fn change_from(row: &RunRow) -> OperatorChange {
    OperatorChange {
        run_id: row.id,
        status: row.status,
        status_reason: row.status_reason.clone(),
        step_index: row.step_index,
        step_name: row.step_name.clone(),
        generation: row.generation,
        attempt: row.attempt,
        retry_base: row.retry_base,
        open_attempt_id: row.open_attempt_id,
        needs_reconcile: row.needs_reconcile,
        pause_requested: row.pause_requested,
        cancel_requested: row.cancel_requested,
        next_run_in_ms: None,
        release_lease: false,
        clear_wait_timers: false,
    }
}

/// The structure of the definition a run pinned, read from the stored text.
async fn pinned_structure(
    conn: &mut PgConnection,
    row: &RunRow,
) -> Result<WorkflowDefinition, EngineError> {
    let (file, source) = store::runs::definition_source(conn, &row.workflow, &row.content_hash)
        .await?
        .ok_or_else(|| EngineError::PinnedDefinition(RunId(row.id), "it is not stored".into()))?;
    parse_definition(&file, &source, &AcceptAll).map_err(|errors| {
        EngineError::PinnedDefinition(
            RunId(row.id),
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })
}

async fn locked(conn: &mut PgConnection, run: RunId) -> Result<RunRow, EngineError> {
    store::runs::lock(conn, run.0)
        .await?
        .ok_or(EngineError::RunNotFound(run))
}

fn require_reason(reason: &str) -> Result<(), EngineError> {
    if reason.trim().is_empty() {
        Err(EngineError::ReasonRequired)
    } else {
        Ok(())
    }
}

/// Applies an operator's change to the run and appends its history entry, on the caller's
/// transaction, so the change and the record of who made it commit together.
async fn apply_change(
    conn: &mut PgConnection,
    change: &store::runs::OperatorChange,
    event: HistoryEntry,
) -> Result<(), EngineError> {
    store::runs::apply_operator_change(conn, change).await?;
    store::history::append(conn, &[event]).await?;
    Ok(())
}

async fn write_event(
    conn: &mut PgConnection,
    row: &RunRow,
    event_type: Option<&String>,
    status: RunStatus,
    reason: &str,
) -> Result<(), EngineError> {
    if let Some(event_type) = event_type {
        let mut payload = json!({
            "run_id": row.id,
            "workflow": row.workflow,
            "subject_id": row.subject_id,
            "marketplace_id": row.marketplace_id,
            "status": status.as_str(),
            "step": row.step_name,
            "reason": reason,
        });
        if let Some(state) =
            domain::vendor_state::event_state(&row.workflow, status, &row.step_name)
        {
            payload["state"] = json!(state.as_str());
        }
        store::outbox::insert(
            conn,
            &store::outbox::NewOutboxEvent {
                id: Uuid::now_v7(),
                marketplace_id: row.marketplace_id,
                run_id: Some(row.id),
                event_type: event_type.clone(),
                payload,
            },
        )
        .await?;
    }
    Ok(())
}

/// Runs the current step again now: a `pending` run's backoff is cut short; a `failed` run goes
/// back to `pending` at the step it failed with a fresh retry budget (the same idempotency key).
pub async fn retry_now(
    conn: &mut PgConnection,
    run: RunId,
    actor: &Actor,
    reason: &str,
) -> Result<RunStatus, EngineError> {
    require_reason(reason)?;
    let mut tx = conn.begin().await?;
    let row = locked(&mut tx, run).await?;
    let before = row.status;
    or_rollback!(
        tx,
        operation_effect(before, row.flags(), Operation::RetryNow)
    );
    let mut change = change_from(&row);
    change.status = RunStatus::Pending;
    change.status_reason = None;
    change.next_run_in_ms = Some(0);
    if before == RunStatus::Failed {
        change.retry_base = row.attempt;
    }
    apply_change(
        &mut tx,
        &change,
        entry(
            row.id,
            HistoryKind::RetryRequested,
            Some(&row.step_name),
            actor,
            reason,
            Some(json!({ "from": before.as_str() })),
        ),
    )
    .await?;
    store::runs::notify_due(&mut tx).await?;
    tx.commit().await?;
    Ok(RunStatus::Pending)
}

/// Moves the run to `step` and runs it (and the steps after it) again with a fresh idempotency
/// key (`generation` + 1) and a fresh retry budget. For a run that is pending, waiting, paused or
/// failed; an attempt left open is closed as abandoned.
pub async fn resume_from(
    conn: &mut PgConnection,
    run: RunId,
    step: &str,
    actor: &Actor,
    reason: &str,
) -> Result<RunStatus, EngineError> {
    require_reason(reason)?;
    let mut tx = conn.begin().await?;
    let row = locked(&mut tx, run).await?;
    let before = row.status;
    or_rollback!(
        tx,
        operation_effect(before, row.flags(), Operation::ResumeFrom)
    );
    let definition = or_rollback!(tx, pinned_structure(&mut tx, &row).await);
    let index = or_rollback!(
        tx,
        definition
            .step_index(step)
            .ok_or_else(|| EngineError::UnknownStep {
                workflow: row.workflow.clone(),
                step: step.to_owned(),
            })
    );
    if let Some(open) = row.open_attempt_id {
        store::attempts::abandon(
            &mut tx,
            open,
            &json!({"code": "abandoned", "message": "an operator resumed the run from another step", "retryable": false}),
        )
        .await?;
    }
    let mut change = change_from(&row);
    change.status = RunStatus::Pending;
    change.status_reason = None;
    change.step_index = i32::try_from(index).unwrap_or(i32::MAX);
    change.step_name = step.to_owned();
    change.generation = row.generation + 1;
    change.attempt = 0;
    change.retry_base = 0;
    change.open_attempt_id = None;
    change.needs_reconcile = false;
    change.pause_requested = false;
    change.cancel_requested = false;
    change.next_run_in_ms = Some(0);
    change.release_lease = true;
    change.clear_wait_timers = true;
    let data = json!({
        "from_step": row.step_name,
        "from_status": before.as_str(),
        "generation": row.generation + 1,
    });
    let event = entry(
        row.id,
        HistoryKind::ResumedFrom,
        Some(step),
        actor,
        reason,
        Some(data),
    );
    apply_change(&mut tx, &change, event).await?;
    store::runs::notify_due(&mut tx).await?;
    tx.commit().await?;
    Ok(RunStatus::Pending)
}

/// Cancels the run for good, without ever throwing away what a provider may have done.
///
/// A run with no step in flight and nothing to reconcile is cancelled at once: the definition's
/// `cancelled` event is written. A run a worker holds, or whose last attempt's outcome is unknown,
/// gets a cancel request instead (the returned status is then `running` or `pending`): the step
/// in flight finishes and its outcome is recorded (a payment taken is recorded and reported), an
/// unknown outcome is reconciled first, and the next record that leaves nothing to reconcile
/// ends the run `cancelled`. A record that ends the run (succeeded, failed) makes the request moot;
/// one that pauses the run drops it, and the operator decides again.
pub async fn cancel(
    conn: &mut PgConnection,
    run: RunId,
    actor: &Actor,
    reason: &str,
) -> Result<RunStatus, EngineError> {
    require_reason(reason)?;
    let mut tx = conn.begin().await?;
    let row = locked(&mut tx, run).await?;
    let before = row.status;
    let effect = or_rollback!(tx, operation_effect(before, row.flags(), Operation::Cancel));
    let text = format!("cancelled by {} {}: {}", actor.kind, actor.id, reason);
    let mut change = change_from(&row);
    if effect == OperationEffect::CancelRequested {
        change.cancel_requested = true;
        change.status_reason = Some(text);
        if before != RunStatus::Running {
            // Due now, so that the unknown outcome is reconciled (and the cancel applied) soon.
            change.status = RunStatus::Pending;
            change.next_run_in_ms = Some(0);
            change.clear_wait_timers = true;
        }
        apply_change(
            &mut tx,
            &change,
            entry(
                row.id,
                HistoryKind::CancelRequested,
                Some(&row.step_name),
                actor,
                reason,
                Some(json!({ "from": before.as_str() })),
            ),
        )
        .await?;
        if before != RunStatus::Running {
            store::runs::notify_due(&mut tx).await?;
        }
        tx.commit().await?;
        return Ok(change.status);
    }
    let definition = or_rollback!(tx, pinned_structure(&mut tx, &row).await);
    change.status = RunStatus::Cancelled;
    change.status_reason = Some(text);
    change.pause_requested = false;
    change.cancel_requested = false;
    change.release_lease = true;
    change.clear_wait_timers = true;
    apply_change(
        &mut tx,
        &change,
        entry(
            row.id,
            HistoryKind::Cancelled,
            Some(&row.step_name),
            actor,
            reason,
            Some(json!({ "from": before.as_str() })),
        ),
    )
    .await?;
    write_event(
        &mut tx,
        &row,
        definition.events.cancelled.as_ref(),
        RunStatus::Cancelled,
        reason,
    )
    .await?;
    tx.commit().await?;
    crate::observability::run_finished(
        &std::sync::Arc::from(row.workflow.as_str()),
        RunStatus::Cancelled,
    );
    Ok(RunStatus::Cancelled)
}

/// Pauses the run until an operator resumes it. A run a worker holds gets a pause request that
/// the worker's next record applies (the step in flight finishes and keeps its outcome); the
/// returned status is then still `running`.
pub async fn pause(
    conn: &mut PgConnection,
    run: RunId,
    actor: &Actor,
    reason: &str,
) -> Result<RunStatus, EngineError> {
    require_reason(reason)?;
    let mut tx = conn.begin().await?;
    let row = locked(&mut tx, run).await?;
    let before = row.status;
    let effect = or_rollback!(tx, operation_effect(before, row.flags(), Operation::Pause));
    let mut change = change_from(&row);
    let text = format!("paused by {} {}: {}", actor.kind, actor.id, reason);
    let result = match effect {
        OperationEffect::PauseRequested => {
            change.pause_requested = true;
            change.status_reason = Some(text);
            apply_change(
                &mut tx,
                &change,
                entry(
                    row.id,
                    HistoryKind::PauseRequested,
                    Some(&row.step_name),
                    actor,
                    reason,
                    None,
                ),
            )
            .await?;
            RunStatus::Running
        }
        _ => {
            let definition = or_rollback!(tx, pinned_structure(&mut tx, &row).await);
            change.status = RunStatus::Paused;
            change.status_reason = Some(text);
            change.next_run_in_ms = None;
            change.release_lease = true;
            apply_change(
                &mut tx,
                &change,
                entry(
                    row.id,
                    HistoryKind::Paused,
                    Some(&row.step_name),
                    actor,
                    reason,
                    Some(json!({ "from": before.as_str() })),
                ),
            )
            .await?;
            write_event(
                &mut tx,
                &row,
                definition.events.paused.as_ref(),
                RunStatus::Paused,
                reason,
            )
            .await?;
            RunStatus::Paused
        }
    };
    tx.commit().await?;
    Ok(result)
}

/// Resumes a paused run (due now, with a fresh retry budget; a wait starts afresh, with a new
/// deadline), or withdraws a pause or cancel requested for a run a worker holds. An attempt whose
/// outcome is unknown is still reconciled first.
pub async fn resume(
    conn: &mut PgConnection,
    run: RunId,
    actor: &Actor,
    reason: &str,
) -> Result<RunStatus, EngineError> {
    require_reason(reason)?;
    let mut tx = conn.begin().await?;
    let row = locked(&mut tx, run).await?;
    let before = row.status;
    let effect = or_rollback!(tx, operation_effect(before, row.flags(), Operation::Resume));
    let mut change = change_from(&row);
    change.status_reason = None;
    let result = match effect {
        OperationEffect::RequestWithdrawn => {
            change.pause_requested = false;
            change.cancel_requested = false;
            apply_change(
                &mut tx,
                &change,
                entry(
                    row.id,
                    HistoryKind::Resumed,
                    Some(&row.step_name),
                    actor,
                    reason,
                    Some(json!({
                        "withdrew_pause_request": row.pause_requested,
                        "withdrew_cancel_request": row.cancel_requested,
                    })),
                ),
            )
            .await?;
            RunStatus::Running
        }
        _ => {
            change.status = RunStatus::Pending;
            change.retry_base = row.attempt;
            change.cancel_requested = false;
            change.next_run_in_ms = Some(0);
            change.clear_wait_timers = true;
            apply_change(
                &mut tx,
                &change,
                entry(
                    row.id,
                    HistoryKind::Resumed,
                    Some(&row.step_name),
                    actor,
                    reason,
                    None,
                ),
            )
            .await?;
            store::runs::notify_due(&mut tx).await?;
            RunStatus::Pending
        }
    };
    tx.commit().await?;
    Ok(result)
}

/// Sends signal `name` to a run. The signal is stored at once, under the run's row lock; if the
/// run is waiting for it, the run is woken; otherwise the run consumes it when it reaches the
/// wait. Refused if the run's workflow never waits for `name` or the run has ended.
pub async fn signal(
    conn: &mut PgConnection,
    run: RunId,
    name: &str,
    payload: Value,
    actor: &Actor,
    reason: &str,
) -> Result<SignalOutcome, EngineError> {
    require_reason(reason)?;
    let mut tx = conn.begin().await?;
    let row = locked(&mut tx, run).await?;
    let status = row.status;
    if status.is_terminal() {
        tx.rollback().await?;
        return Err(EngineError::RunEnded(run, status));
    }
    let definition = or_rollback!(tx, pinned_structure(&mut tx, &row).await);
    let Some(wait_index) = definition
        .steps
        .iter()
        .position(|s| matches!(&s.kind, StepKind::Wait(w) if w.signal == name))
    else {
        tx.rollback().await?;
        return Err(EngineError::UnknownSignal {
            workflow: row.workflow.clone(),
            signal: name.to_owned(),
        });
    };
    let id = Uuid::now_v7();
    store::signals::insert(
        &mut tx,
        &store::signals::NewSignal {
            id,
            run_id: row.id,
            name,
            payload: &payload,
            actor_kind: actor.kind.as_str(),
            actor_id: &actor.id,
            reason: Some(reason),
        },
    )
    .await?;
    store::history::append(
        &mut tx,
        &[entry(
            row.id,
            HistoryKind::SignalReceived,
            None,
            actor,
            reason,
            Some(json!({ "signal": name, "signal_id": id, "payload": payload })),
        )],
    )
    .await?;
    let index = i32::try_from(wait_index).unwrap_or(i32::MAX);
    let woken = store::runs::wake_waiting(&mut tx, row.id, index).await?;
    if woken {
        store::runs::notify_due(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(if woken {
        SignalOutcome::Woken
    } else {
        SignalOutcome::Stored
    })
}

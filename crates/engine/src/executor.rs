//! The executor: drives one claimed run through its steps.
//!
//! For each step: start an attempt (recorded before the handler is called), call the handler
//! outside any transaction under the step's timeout, then record the outcome, the run's next
//! state, history and outbox rows in one transaction fenced by the lease token. When the next
//! step is due at once, the same record starts its first attempt and the worker goes on with the
//! run without giving it back to the queue (one commit per step).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::definition::{ActionStep, DeadlineAction, RetryDecision, StepKind, WaitStep};
use domain::envelope::ErrorEnvelope;
use domain::run::{
    ActorKind, AttemptOutcome, HistoryKind, OUTCOME_COMPLETED, RunId, RunStatus, redact,
};
use futures::FutureExt;
use serde_json::{Map, Value, json};
use sqlx::Connection;
use store::runs::{
    AttemptFinish, AttemptStart, HistoryEntry, LeaseChange, OutboxEntry, RecordBatch, RunRow,
    RunTransition, SignalConsumption, WaitingSince,
};
use tracing::Instrument;
use uuid::Uuid;

use crate::definitions::CompiledWorkflow;
use crate::handler::{
    OutboxEvent, PollOutcome, ReconcileOutcome, RecordWrite, StepContext, StepOutcome, StepSuccess,
};
use crate::observability;
use crate::recorder::{RecordResult, RecorderHandle};
use crate::worker::Shared;

/// What driving one claimed run did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DriveReport {
    /// Records written for the run.
    pub(crate) records: usize,
    /// The run's lease was taken over; the worker stopped writing.
    pub(crate) lease_lost: bool,
    /// A record could not be written.
    pub(crate) record_failed: bool,
}

/// Whether the driver goes on with the run after a record.
enum Flow {
    Continue,
    Stop,
}

/// What the worker knows of the run it holds.
struct Cursor {
    run_id: Uuid,
    token: i64,
    marketplace_id: Option<Uuid>,
    subject_id: Option<Uuid>,
    workflow: Arc<CompiledWorkflow>,
    workflow_name: Arc<str>,
    step: usize,
    generation: i32,
    attempt: i32,
    retry_base: i32,
    open_attempt: Option<Uuid>,
    /// The open attempt was started by this worker's own last record (not found at claim).
    started_by_us: bool,
    needs_reconcile: bool,
    input: Arc<Value>,
    context: Arc<Value>,
    last_error: Option<ErrorEnvelope>,
    waiting_since: Option<DateTime<Utc>>,
    next_poll_at: Option<DateTime<Utc>>,
    next_reminder_at: Option<DateTime<Utc>>,
    /// A conservative local estimate of when the lease expires.
    lease_until: Instant,
    /// Events to add to the next record (skipped steps).
    pending_history: Vec<HistoryEntry>,
    /// The id of the last record written for the run, which the next record names: a record
    /// built on a stale view of the run, or replayed after it committed, writes nothing.
    last_record: Option<Uuid>,
    /// Why the last record failed, when the database refused it (not a lost connection).
    refused_record: Option<String>,
}

/// The cursor's fields a record may change, kept to put them back when the record fails.
struct Snapshot {
    step: usize,
    attempt: i32,
    retry_base: i32,
    open_attempt: Option<Uuid>,
    started_by_us: bool,
    needs_reconcile: bool,
    context: Arc<Value>,
    last_error: Option<ErrorEnvelope>,
    waiting_since: Option<DateTime<Utc>>,
    next_poll_at: Option<DateTime<Utc>>,
    next_reminder_at: Option<DateTime<Utc>>,
}

/// One record under construction.
#[derive(Default)]
struct Rec {
    batch: RecordBatch,
    writes: Vec<Box<dyn RecordWrite>>,
    /// The status the record ends the run with, counted once the record is committed.
    ended: Option<RunStatus>,
    /// The record schedules a retry's backoff, counted once the record is committed.
    retried: bool,
}

impl Cursor {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            step: self.step,
            attempt: self.attempt,
            retry_base: self.retry_base,
            open_attempt: self.open_attempt,
            started_by_us: self.started_by_us,
            needs_reconcile: self.needs_reconcile,
            context: self.context.clone(),
            last_error: self.last_error.clone(),
            waiting_since: self.waiting_since,
            next_poll_at: self.next_poll_at,
            next_reminder_at: self.next_reminder_at,
        }
    }

    fn restore(&mut self, s: Snapshot) {
        self.step = s.step;
        self.attempt = s.attempt;
        self.retry_base = s.retry_base;
        self.open_attempt = s.open_attempt;
        self.started_by_us = s.started_by_us;
        self.needs_reconcile = s.needs_reconcile;
        self.context = s.context;
        self.last_error = s.last_error;
        self.waiting_since = s.waiting_since;
        self.next_poll_at = s.next_poll_at;
        self.next_reminder_at = s.next_reminder_at;
    }

    fn step_name(&self) -> &str {
        &self.workflow.definition.steps[self.step].name
    }

    fn kind(&self) -> &StepKind {
        &self.workflow.definition.steps[self.step].kind
    }

    fn event(
        &self,
        worker_id: &str,
        kind: HistoryKind,
        attempt: Option<i32>,
        reason: Option<String>,
        data: Option<Value>,
    ) -> HistoryEntry {
        HistoryEntry {
            run_id: self.run_id,
            kind: kind.as_str().to_owned(),
            step_name: Some(self.step_name().to_owned()),
            attempt,
            actor_kind: ActorKind::Worker.as_str().to_owned(),
            actor_id: worker_id.to_owned(),
            reason,
            data: data.map(|d| redact(&d)),
            only_if_continuing: false,
        }
    }

    fn context_for(&self, shared: &Shared, attempt: i32) -> StepContext {
        let step = self.step_name();
        StepContext {
            run_id: RunId(self.run_id),
            marketplace_id: self.marketplace_id,
            subject_id: self.subject_id,
            workflow: self.workflow_name.clone(),
            workflow_version: self.workflow.definition.version,
            step: Arc::from(step),
            attempt: u32::try_from(attempt).unwrap_or(0),
            generation: u32::try_from(self.generation).unwrap_or(0),
            input: self.input.clone(),
            context: self.context.clone(),
            idempotency_key: Arc::from(format!("{}:{}:{}", self.run_id, step, self.generation)),
            last_error: self.last_error.clone(),
            pool: shared.pool.clone(),
        }
    }

    /// The run's state as the cursor knows it, as a transition to `status`. Running keeps the
    /// lease; every other status releases it.
    fn transition(&self, status: RunStatus) -> RunTransition {
        let at_wait = matches!(self.kind(), StepKind::Wait(_));
        RunTransition {
            run_id: self.run_id,
            lease_token: self.token,
            status,
            outcome: None,
            status_reason: None,
            step_index: i32::try_from(self.step).unwrap_or(i32::MAX),
            step_name: self.step_name().to_owned(),
            generation: self.generation,
            attempt: self.attempt,
            retry_base: self.retry_base,
            open_attempt_id: None,
            needs_reconcile: self.needs_reconcile,
            next_run_in_ms: None,
            next_run_at: None,
            lease: if status == RunStatus::Running {
                LeaseChange::Keep
            } else {
                LeaseChange::Release
            },
            context_patch: None,
            last_error: self
                .last_error
                .as_ref()
                .map(|e| redact(&serde_json::to_value(e).unwrap_or(Value::Null))),
            waiting_since: if at_wait {
                WaitingSince::Keep
            } else {
                WaitingSince::Clear
            },
            next_poll_at: if at_wait { self.next_poll_at } else { None },
            next_reminder_at: if at_wait { self.next_reminder_at } else { None },
            paused_event: self
                .workflow
                .definition
                .events
                .paused
                .as_ref()
                .map(|e| (Uuid::now_v7(), e.clone())),
            cancelled_event: self
                .workflow
                .definition
                .events
                .cancelled
                .as_ref()
                .map(|e| (Uuid::now_v7(), e.clone())),
            record_id: Uuid::now_v7(),
            prev_record_id: self.last_record,
        }
    }

    fn run_event_payload(&self, status: RunStatus, extra: Value) -> Value {
        let mut payload = json!({
            "run_id": self.run_id,
            "workflow": &*self.workflow_name,
            "subject_id": self.subject_id,
            "marketplace_id": self.marketplace_id,
            "status": status.as_str(),
            "step": self.step_name(),
        });
        if let Some(state) =
            domain::vendor_state::event_state(&self.workflow_name, status, self.step_name())
        {
            payload["state"] = json!(state.as_str());
        }
        if let (Value::Object(p), Value::Object(e)) = (&mut payload, extra) {
            p.extend(e);
        }
        payload
    }
}

impl Rec {
    fn history(&mut self, entry: HistoryEntry) {
        self.batch.history.push(entry);
    }

    fn outbox(&mut self, run_id: Uuid, event_type: &str, payload: Value) {
        self.batch.outbox.push(OutboxEntry {
            id: Uuid::now_v7(),
            run_id,
            event_type: event_type.to_owned(),
            payload,
        });
    }

    fn finish(&mut self, cur: &Cursor, outcome: AttemptOutcome, error: Option<&ErrorEnvelope>) {
        if let Some(attempt_id) = cur.open_attempt {
            self.batch.finishes.push(AttemptFinish {
                run_id: cur.run_id,
                attempt_id,
                outcome: outcome.as_str().to_owned(),
                error: error.map(|e| redact(&serde_json::to_value(e).unwrap_or(Value::Null))),
            });
        }
    }
}

/// Turns a handler's output into the patch merged into the context: an object as it is, any
/// other non-null value under the step's name.
fn output_patch(step: &str, output: Value) -> Option<Value> {
    match output {
        Value::Null => None,
        Value::Object(map) if map.is_empty() => None,
        Value::Object(map) => Some(Value::Object(map)),
        other => {
            let mut map = Map::new();
            map.insert(step.to_owned(), other);
            Some(Value::Object(map))
        }
    }
}

fn merge(context: &Value, patch: &Value) -> Value {
    let mut merged = match context {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    if let Value::Object(patch) = patch {
        for (k, v) in patch {
            merged.insert(k.clone(), v.clone());
        }
    }
    Value::Object(merged)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Drives a claimed run until it leaves this worker: it waits, is scheduled for later, pauses,
/// ends, or (when `continuing` is false, or the worker is stopping) after one step.
pub(crate) async fn drive(
    shared: &Arc<Shared>,
    recorder: &RecorderHandle,
    row: RunRow,
    claimed_at: Instant,
    continuing: bool,
) -> DriveReport {
    let mut report = DriveReport::default();
    let workflow_name: Arc<str> = Arc::from(row.workflow.as_str());
    // A run claimed for the first time: at its first step, in its first generation, with no
    // attempt and no wait begun. (Only a worker dying between this claim and its first record
    // makes a run look new twice.)
    if row.step_index == 0
        && row.generation == 0
        && row.attempt == 0
        && row.open_attempt_id.is_none()
        && row.waiting_since.is_none()
    {
        observability::run_started(&workflow_name);
    }
    let workflow = match shared.resolve(&row.workflow, &row.content_hash).await {
        Ok(workflow) => workflow,
        Err(reason) => {
            tracing::warn!(run_id = %row.id, workflow = %row.workflow, %reason, "cannot execute a run");
            pause_unresolvable(shared, recorder, &row, reason, &mut report).await;
            return report;
        }
    };
    let step = usize::try_from(row.step_index)
        .unwrap_or(0)
        .min(workflow.definition.steps.len().saturating_sub(1));
    let mut cur = Cursor {
        run_id: row.id,
        token: row.lease_token,
        marketplace_id: row.marketplace_id,
        subject_id: row.subject_id,
        workflow_name,
        workflow,
        step,
        generation: row.generation,
        attempt: row.attempt,
        retry_base: row.retry_base,
        open_attempt: row.open_attempt_id,
        started_by_us: false,
        needs_reconcile: row.needs_reconcile,
        input: Arc::new(row.input),
        context: Arc::new(row.context),
        last_error: row
            .last_error
            .and_then(|e| serde_json::from_value::<ErrorEnvelope>(e).ok()),
        waiting_since: row.waiting_since,
        next_poll_at: row.next_poll_at,
        next_reminder_at: row.next_reminder_at,
        lease_until: claimed_at + shared.config.lease_duration,
        pending_history: Vec::new(),
        last_record: row.last_record_id,
        refused_record: None,
    };
    let mut steps_here = 0usize;
    loop {
        // Steps whose condition does not hold for this input are skipped (and say so).
        if !cur.workflow.step_applies(cur.step, &cur.input) {
            let mut rec = Rec::default();
            let from = cur.step;
            match skip_from(shared, &mut cur, from, &mut rec) {
                Some(_) => {
                    cur.pending_history.append(&mut rec.batch.history);
                }
                None => {
                    cur.pending_history.append(&mut rec.batch.history);
                    let mut rec = Rec::default();
                    end_run(
                        shared,
                        &mut cur,
                        &mut rec,
                        RunStatus::Succeeded,
                        Some(OUTCOME_COMPLETED),
                        None,
                        None,
                    );
                    send(recorder, &mut cur, rec, &mut report).await;
                    return report;
                }
            }
        }
        // Every line logged while the step runs (by the engine, the step's handler, or the
        // provider client it calls) carries these fields; `vendor.id` is the run's subject.
        let span = tracing::info_span!(
            "step",
            run.id = %cur.run_id,
            vendor.id = tracing::field::Empty,
            workflow = %cur.workflow_name,
            step = %cur.step_name(),
        );
        if let Some(subject) = cur.subject_id {
            span.record("vendor.id", tracing::field::display(subject));
        }
        let go_on = continuing && steps_here < shared.config.max_steps_per_claim;
        let flow = match cur.kind().clone() {
            StepKind::Action(action) => {
                run_action(shared, recorder, &mut cur, &action, go_on, &mut report)
                    .instrument(span)
                    .await
            }
            StepKind::Wait(wait) => {
                run_wait(shared, &mut cur, &wait, go_on, &mut report)
                    .instrument(span)
                    .await
            }
        };
        steps_here += 1;
        match flow {
            Flow::Continue if !shared.is_stopping() || cur.started_by_us => {}
            Flow::Continue => {
                release(recorder, &mut cur, &mut report).await;
                return report;
            }
            Flow::Stop => return report,
        }
    }
}

/// Gives a run held between steps back to the queue, due now (the worker is stopping).
async fn release(recorder: &RecorderHandle, cur: &mut Cursor, report: &mut DriveReport) {
    let mut rec = Rec::default();
    let mut t = cur.transition(RunStatus::Pending);
    t.next_run_in_ms = Some(0);
    rec.batch.transitions.push(t);
    send(recorder, cur, rec, report).await;
}

async fn pause_unresolvable(
    shared: &Arc<Shared>,
    recorder: &RecorderHandle,
    row: &RunRow,
    reason: String,
    report: &mut DriveReport,
) {
    let mut batch = RecordBatch::default();
    batch.transitions.push(RunTransition {
        run_id: row.id,
        lease_token: row.lease_token,
        status: RunStatus::Paused,
        outcome: None,
        status_reason: Some(reason.clone()),
        step_index: row.step_index,
        step_name: row.step_name.clone(),
        generation: row.generation,
        attempt: row.attempt,
        retry_base: row.retry_base,
        open_attempt_id: row.open_attempt_id,
        needs_reconcile: row.needs_reconcile,
        next_run_in_ms: None,
        next_run_at: None,
        lease: LeaseChange::Release,
        context_patch: None,
        last_error: row.last_error.clone(),
        waiting_since: WaitingSince::Keep,
        next_poll_at: row.next_poll_at,
        next_reminder_at: row.next_reminder_at,
        paused_event: None,
        cancelled_event: None,
        record_id: Uuid::now_v7(),
        prev_record_id: row.last_record_id,
    });
    batch.history.push(HistoryEntry {
        run_id: row.id,
        kind: HistoryKind::Paused.as_str().to_owned(),
        step_name: Some(row.step_name.clone()),
        attempt: None,
        actor_kind: ActorKind::Worker.as_str().to_owned(),
        actor_id: shared.config.worker_id.clone(),
        reason: Some(reason),
        data: None,
        only_if_continuing: false,
    });
    match recorder.record(row.id, batch, Vec::new()).await {
        RecordResult::Written(_) => report.records += 1,
        RecordResult::LeaseLost => report.lease_lost = true,
        RecordResult::Failed(_) => report.record_failed = true,
    }
}

/// Sends a record through the group-commit recorder and updates the cursor from the answer.
async fn send(
    recorder: &RecorderHandle,
    cur: &mut Cursor,
    mut rec: Rec,
    report: &mut DriveReport,
) -> Option<store::runs::Recorded> {
    if !cur.pending_history.is_empty() {
        let mut pending = std::mem::take(&mut cur.pending_history);
        pending.append(&mut rec.batch.history);
        rec.batch.history = pending;
    }
    let (ended, retried) = (rec.ended, rec.retried);
    let record_id = rec.batch.transitions.first().map(|t| t.record_id);
    match recorder.record(cur.run_id, rec.batch, rec.writes).await {
        RecordResult::Written(recorded) => {
            cur.refused_record = None;
            committed(cur, report, record_id, ended, retried, &recorded);
            Some(recorded)
        }
        RecordResult::LeaseLost => {
            tracing::warn!(run_id = %cur.run_id, "lease lost: another worker took the run over; nothing was written");
            report.lease_lost = true;
            None
        }
        RecordResult::Failed(error) => {
            tracing::error!(run_id = %cur.run_id, error = %error, "recording a step failed");
            report.record_failed = true;
            cur.refused_record = match &error {
                crate::EngineError::Database(e @ sqlx::Error::Database(_))
                    if !crate::recorder::is_transient(e) =>
                {
                    Some(e.to_string())
                }
                _ => None,
            };
            None
        }
    }
}

/// What follows a committed record (`record_id`): the cursor names it as the run's last, and
/// what it did is counted — the run's end (also by an operator's cancel request taking effect),
/// a retry's backoff. (Counted after the commit, so a record that fails or loses its lease
/// counts nothing.)
fn committed(
    cur: &mut Cursor,
    report: &mut DriveReport,
    record_id: Option<Uuid>,
    ended: Option<RunStatus>,
    retried: bool,
    recorded: &store::runs::Recorded,
) {
    report.records += 1;
    cur.last_record = record_id.or(cur.last_record);
    if let Some(status) = ended {
        observability::run_finished(&cur.workflow_name, status);
    } else if recorded.stopped_on_request && recorded.status == RunStatus::Cancelled {
        observability::run_finished(&cur.workflow_name, RunStatus::Cancelled);
    }
    if retried {
        observability::step_retry(&cur.workflow_name, cur.step_name());
    }
}

/// Advances the cursor past step `from` and any following steps whose condition does not hold,
/// adding `step_skipped` events to `rec`. Returns the next applicable step, or `None` at the end.
fn skip_from(shared: &Shared, cur: &mut Cursor, from: usize, rec: &mut Rec) -> Option<usize> {
    let steps = cur.workflow.definition.steps.len();
    let mut index = from;
    while index < steps && !cur.workflow.step_applies(index, &cur.input) {
        let name = cur.workflow.definition.steps[index].name.clone();
        let condition = cur.workflow.definition.steps[index]
            .when
            .as_ref()
            .map(|c| format!("{}{}", if c.negated { "!" } else { "" }, c.name));
        rec.history(HistoryEntry {
            run_id: cur.run_id,
            kind: HistoryKind::StepSkipped.as_str().to_owned(),
            step_name: Some(name),
            attempt: None,
            actor_kind: ActorKind::Worker.as_str().to_owned(),
            actor_id: shared.config.worker_id.clone(),
            reason: Some("its condition does not hold for this run's input".to_owned()),
            data: condition.map(|c| json!({ "when": c })),
            only_if_continuing: false,
        });
        index += 1;
    }
    if index < steps {
        if index != cur.step {
            cur.step = index;
            cur.attempt = 0;
            cur.retry_base = 0;
            cur.needs_reconcile = false;
            cur.last_error = None;
            cur.waiting_since = None;
            cur.next_poll_at = None;
            cur.next_reminder_at = None;
        }
        Some(index)
    } else {
        None
    }
}

/// Moves the run to the step after the current one and fills in the record's transition: the
/// run ends if no step is left; otherwise, when the worker goes on, the next step's first attempt
/// starts in this same record (an action) or the run stays held (a wait); else the run is due now
/// in the queue.
fn advance(shared: &Shared, cur: &mut Cursor, rec: &mut Rec, patch: Option<Value>, go_on: bool) {
    let from = cur.step + 1;
    let next = skip_from(shared, cur, from, rec);
    let Some(next) = next else {
        end_run(
            shared,
            cur,
            rec,
            RunStatus::Succeeded,
            Some(OUTCOME_COMPLETED),
            None,
            patch,
        );
        return;
    };
    cur.step = next;
    cur.attempt = 0;
    cur.retry_base = 0;
    cur.needs_reconcile = false;
    cur.last_error = None;
    cur.open_attempt = None;
    cur.started_by_us = false;
    cur.waiting_since = None;
    cur.next_poll_at = None;
    cur.next_reminder_at = None;
    let holding = go_on && !shared.is_stopping();
    if !holding {
        let mut t = cur.transition(RunStatus::Pending);
        t.next_run_in_ms = Some(0);
        t.context_patch = patch;
        rec.batch.transitions.push(t);
        return;
    }
    let mut t = cur.transition(RunStatus::Running);
    t.context_patch = patch;
    // Renew the lease when what is left of it could not cover the next step's handler.
    let needed = match cur.kind() {
        StepKind::Action(action) => action.timeout,
        StepKind::Wait(wait) => wait.poll.as_ref().map_or(Duration::ZERO, |p| p.timeout),
    } + Duration::from_secs(1);
    if cur.lease_until.saturating_duration_since(Instant::now()) < needed {
        t.lease = LeaseChange::Renew(millis(shared.config.lease_duration));
        cur.lease_until = Instant::now() + shared.config.lease_duration;
    }
    if matches!(cur.kind(), StepKind::Action(_)) {
        let id = Uuid::now_v7();
        cur.attempt = 1;
        cur.open_attempt = Some(id);
        cur.started_by_us = true;
        t.attempt = 1;
        t.open_attempt_id = Some(id);
        rec.batch.starts.push(AttemptStart {
            id,
            run_id: cur.run_id,
            step_index: t.step_index,
            step_name: t.step_name.clone(),
            generation: cur.generation,
            attempt: 1,
            worker_id: shared.config.worker_id.clone(),
            lease_token: cur.token,
        });
        let mut started = cur.event(
            &shared.config.worker_id,
            HistoryKind::StepStarted,
            Some(1),
            None,
            None,
        );
        started.only_if_continuing = true;
        rec.history(started);
    }
    rec.batch.transitions.push(t);
}

/// Ends the run: `succeeded` (with an outcome label), `failed` or `cancelled`.
fn end_run(
    shared: &Shared,
    cur: &mut Cursor,
    rec: &mut Rec,
    status: RunStatus,
    outcome: Option<&str>,
    reason: Option<String>,
    patch: Option<Value>,
) {
    let events = &cur.workflow.definition.events;
    let event = match status {
        RunStatus::Succeeded => outcome.and_then(|o| events.for_outcome(o)),
        RunStatus::Failed => events.failed.as_deref(),
        RunStatus::Cancelled => events.cancelled.as_deref(),
        _ => None,
    }
    .map(str::to_owned);
    cur.open_attempt = None;
    cur.started_by_us = false;
    rec.ended = Some(status);
    let mut t = cur.transition(status);
    t.outcome = outcome.map(str::to_owned);
    t.status_reason = reason.clone();
    t.context_patch = patch;
    t.waiting_since = WaitingSince::Clear;
    t.next_poll_at = None;
    t.next_reminder_at = None;
    rec.batch.transitions.push(t);
    let kind = match status {
        RunStatus::Succeeded => HistoryKind::Succeeded,
        RunStatus::Cancelled => HistoryKind::Cancelled,
        _ => HistoryKind::Failed,
    };
    let data = outcome.map(|o| json!({ "outcome": o }));
    rec.history(cur.event(&shared.config.worker_id, kind, None, reason.clone(), data));
    if let Some(event) = event {
        let mut extra = json!({});
        if let Some(o) = outcome {
            extra["outcome"] = json!(o);
        }
        if let Some(r) = &reason {
            extra["reason"] = json!(r);
        }
        if let Some(e) = &cur.last_error
            && status == RunStatus::Failed
        {
            extra["error"] = redact(&serde_json::to_value(e).unwrap_or(Value::Null));
        }
        let payload = cur.run_event_payload(status, extra);
        rec.outbox(cur.run_id, &event, payload);
    }
    tracing::info!(run_id = %cur.run_id, status = status.as_str(), outcome, "run ended");
}

/// Pauses the run for an operator with a reason.
fn pause_run(
    shared: &Shared,
    cur: &mut Cursor,
    rec: &mut Rec,
    reason: String,
    attempt: Option<i32>,
) {
    cur.open_attempt = None;
    cur.started_by_us = false;
    let mut t = cur.transition(RunStatus::Paused);
    t.status_reason = Some(reason.clone());
    rec.batch.transitions.push(t);
    rec.history(cur.event(
        &shared.config.worker_id,
        HistoryKind::Paused,
        attempt,
        Some(reason.clone()),
        None,
    ));
    if let Some(event) = cur.workflow.definition.events.paused.clone() {
        let payload = cur.run_event_payload(RunStatus::Paused, json!({ "reason": reason }));
        rec.outbox(cur.run_id, &event, payload);
    }
    tracing::info!(run_id = %cur.run_id, "run paused");
}

/// After a failed attempt: a persisted backoff, or the policy's exhaustion action.
fn after_failure(
    shared: &Shared,
    cur: &mut Cursor,
    rec: &mut Rec,
    action: &ActionStep,
    error: &ErrorEnvelope,
    retry_after: Option<Duration>,
) {
    cur.open_attempt = None;
    cur.started_by_us = false;
    let used = u32::try_from(cur.attempt - cur.retry_base).unwrap_or(u32::MAX);
    match action
        .retry
        .after_failure(used, retry_after, rand::random::<f64>())
    {
        RetryDecision::RetryAfter(delay) => {
            rec.retried = true;
            let mut t = cur.transition(RunStatus::Pending);
            t.next_run_in_ms = Some(millis(delay));
            rec.batch.transitions.push(t);
            rec.history(cur.event(
                &shared.config.worker_id,
                HistoryKind::BackoffScheduled,
                Some(cur.attempt),
                None,
                Some(json!({ "delay_ms": millis(delay), "attempts_left": action.retry.max_attempts.saturating_sub(used) })),
            ));
            shared.wake_after(delay);
        }
        RetryDecision::Exhausted(policy) => {
            let reason = format!(
                "step `{}` failed {} time(s), the most its retry policy allows; last error: {}",
                cur.step_name(),
                used,
                error
            );
            match policy {
                domain::definition::OnExhaustion::Fail => end_run(
                    shared,
                    cur,
                    rec,
                    RunStatus::Failed,
                    None,
                    Some(reason),
                    None,
                ),
                domain::definition::OnExhaustion::Pause => {
                    pause_run(shared, cur, rec, reason, None)
                }
            }
        }
    }
}

async fn run_action(
    shared: &Arc<Shared>,
    recorder: &RecorderHandle,
    cur: &mut Cursor,
    action: &ActionStep,
    go_on: bool,
    report: &mut DriveReport,
) -> Flow {
    let worker_id = shared.config.worker_id.clone();
    let Some(handler) = cur.workflow.steps[cur.step].handler.clone() else {
        // Compiled definitions are validated against the registry, so this cannot happen; a
        // run is paused rather than a worker crashing if it ever does.
        let mut rec = Rec::default();
        pause_run(
            shared,
            cur,
            &mut rec,
            format!("no handler is registered for `{}`", action.handler),
            None,
        );
        send(recorder, cur, rec, report).await;
        return Flow::Stop;
    };
    let mut rec = Rec::default();

    // An attempt whose outcome is unknown: reconcile before anything else.
    if (cur.open_attempt.is_some() && !cur.started_by_us) || cur.needs_reconcile {
        let ctx = cur.context_for(shared, cur.attempt);
        let outcome = match with_heartbeat(
            shared,
            cur,
            action.timeout,
            AssertUnwindSafe(handler.reconcile(&ctx)).catch_unwind(),
        )
        .await
        {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => ReconcileOutcome::CannotKnow {
                reason: format!("the reconcile of step `{}` panicked", cur.step_name()),
            },
            Err(_) => ReconcileOutcome::CannotKnow {
                reason: format!(
                    "the reconcile of step `{}` did not answer within {:?}",
                    cur.step_name(),
                    action.timeout
                ),
            },
        };
        let open = cur.open_attempt.is_some();
        match outcome {
            ReconcileOutcome::Applied(success) => {
                rec.history(cur.event(
                    &worker_id,
                    HistoryKind::Reconciled,
                    Some(cur.attempt),
                    None,
                    Some(json!({ "result": "applied" })),
                ));
                tracing::info!(run_id = %cur.run_id, "reconcile found the effect; adopting it");
                return record_success(
                    shared, recorder, cur, rec, action, success, None, go_on, report,
                )
                .await;
            }
            ReconcileOutcome::NotApplied => {
                rec.finish(cur, AttemptOutcome::Abandoned, None);
                rec.history(cur.event(
                    &worker_id,
                    HistoryKind::Reconciled,
                    Some(cur.attempt),
                    None,
                    Some(json!({ "result": "not_applied", "closed_open_attempt": open })),
                ));
                cur.open_attempt = None;
                cur.needs_reconcile = false;
            }
            ReconcileOutcome::CannotKnow { reason } => {
                rec.finish(cur, AttemptOutcome::Abandoned, None);
                rec.history(cur.event(
                    &worker_id,
                    HistoryKind::Reconciled,
                    Some(cur.attempt),
                    Some(reason.clone()),
                    Some(json!({ "result": "cannot_know" })),
                ));
                cur.needs_reconcile = false;
                pause_run(shared, cur, &mut rec, reason, None);
                send(recorder, cur, rec, report).await;
                return Flow::Stop;
            }
        }
    }

    // Start an attempt, recorded before the handler is called (unless the last record did).
    if !cur.started_by_us {
        let used = cur.attempt - cur.retry_base;
        if used >= i32::try_from(action.retry.max_attempts).unwrap_or(i32::MAX) {
            let error = cur.last_error.clone().unwrap_or_else(|| {
                ErrorEnvelope::retryable("attempts_exhausted", "no attempt is left for this step")
            });
            after_failure(shared, cur, &mut rec, action, &error, None);
            send(recorder, cur, rec, report).await;
            return Flow::Stop;
        }
        let id = Uuid::now_v7();
        cur.attempt += 1;
        cur.open_attempt = Some(id);
        let mut t = cur.transition(RunStatus::Running);
        t.open_attempt_id = Some(id);
        // The attempt starts with at least half a lease (a reconcile may have used much of the
        // claim's), and the heartbeat extends it while the handler runs. Renewing only then keeps
        // the usual start record from touching the indexed lease column (a heap-only update).
        if cur.lease_until.saturating_duration_since(Instant::now())
            < shared.config.lease_duration / 2
        {
            t.lease = LeaseChange::Renew(millis(shared.config.lease_duration));
            cur.lease_until = Instant::now() + shared.config.lease_duration;
        }
        rec.batch.starts.push(AttemptStart {
            id,
            run_id: cur.run_id,
            step_index: t.step_index,
            step_name: t.step_name.clone(),
            generation: cur.generation,
            attempt: cur.attempt,
            worker_id: worker_id.clone(),
            lease_token: cur.token,
        });
        rec.batch.transitions.push(t);
        rec.history(cur.event(
            &worker_id,
            HistoryKind::StepStarted,
            Some(cur.attempt),
            None,
            None,
        ));
        match send(recorder, cur, rec, report).await {
            Some(recorded) if !recorded.stopped_on_request => cur.started_by_us = true,
            _ => return Flow::Stop,
        }
        rec = Rec::default();
    }

    // Execute, outside any transaction, under the step's timeout.
    let ctx = cur.context_for(shared, cur.attempt);
    let started = Instant::now();
    let (outcome, label) = match with_heartbeat(
        shared,
        cur,
        action.timeout,
        AssertUnwindSafe(handler.execute(&ctx)).catch_unwind(),
    )
    .await
    {
        Ok(Ok(outcome)) => {
            let label = outcome_label(&outcome);
            (outcome, label)
        }
        Ok(Err(_)) => (
            StepOutcome::Unknown(ErrorEnvelope::retryable(
                "handler_panicked",
                "the step's handler panicked; whether it took effect is unknown",
            )),
            "panicked",
        ),
        Err(_) => (
            StepOutcome::Unknown(ErrorEnvelope::retryable(
                "timeout",
                format!(
                    "the step did not finish within {:?}; whether it took effect is unknown",
                    action.timeout
                ),
            )),
            "timeout",
        ),
    };
    let took = started.elapsed();
    observability::step_executed(&cur.workflow_name, &ctx.step, label, took);
    tracing::debug!(run_id = %cur.run_id, attempt = cur.attempt, elapsed_ms = took.as_millis() as u64, outcome = label, "step executed");
    record_outcome(shared, recorder, cur, rec, action, outcome, go_on, report).await
}

/// The `outcome` label of a step's duration: what the handler answered.
fn outcome_label(outcome: &StepOutcome) -> &'static str {
    match outcome {
        StepOutcome::Success(_) => "succeeded",
        StepOutcome::Finish { .. } => "finished",
        StepOutcome::Retryable { .. } => "retryable",
        StepOutcome::Fatal(_) => "fatal",
        StepOutcome::Unknown(_) => "unknown",
        StepOutcome::Pause { .. } => "paused",
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the driver threads its state through explicitly"
)]
async fn record_outcome(
    shared: &Arc<Shared>,
    recorder: &RecorderHandle,
    cur: &mut Cursor,
    mut rec: Rec,
    action: &ActionStep,
    outcome: StepOutcome,
    go_on: bool,
    report: &mut DriveReport,
) -> Flow {
    let worker_id = shared.config.worker_id.clone();
    let attempt = cur.attempt;
    match outcome {
        StepOutcome::Success(success) => {
            record_success(
                shared, recorder, cur, rec, action, success, None, go_on, report,
            )
            .await
        }
        StepOutcome::Finish { outcome, success } => {
            if cur.workflow.definition.declares_outcome(&outcome) {
                record_success(
                    shared,
                    recorder,
                    cur,
                    rec,
                    action,
                    success,
                    Some(outcome),
                    go_on,
                    report,
                )
                .await
            } else {
                let error = ErrorEnvelope::fatal(
                    "undeclared_outcome",
                    format!(
                        "the step ended the run with outcome `{outcome}`, which the workflow does not declare"
                    ),
                );
                record_fatal(shared, recorder, cur, rec, error, report).await
            }
        }
        StepOutcome::Fatal(error) => record_fatal(shared, recorder, cur, rec, error, report).await,
        StepOutcome::Retryable { error, retry_after } => {
            rec.finish(cur, AttemptOutcome::Retryable, Some(&error));
            rec.history(cur.event(
                &worker_id,
                HistoryKind::StepFailed,
                Some(attempt),
                Some(error.message.clone()),
                Some(json!({ "outcome": "retryable", "error": error })),
            ));
            cur.last_error = Some(error.clone());
            after_failure(shared, cur, &mut rec, action, &error, retry_after);
            record_failure_outcome(shared, recorder, cur, rec, action, report).await
        }
        StepOutcome::Unknown(error) => {
            rec.finish(cur, AttemptOutcome::Unknown, Some(&error));
            rec.history(cur.event(
                &worker_id,
                HistoryKind::StepFailed,
                Some(attempt),
                Some(error.message.clone()),
                Some(json!({ "outcome": "unknown", "error": error })),
            ));
            cur.last_error = Some(error.clone());
            cur.needs_reconcile = true;
            after_failure(shared, cur, &mut rec, action, &error, None);
            record_failure_outcome(shared, recorder, cur, rec, action, report).await
        }
        StepOutcome::Pause { reason } => {
            rec.finish(cur, AttemptOutcome::Paused, None);
            pause_run(shared, cur, &mut rec, reason, Some(attempt));
            record_failure_outcome(shared, recorder, cur, rec, action, report).await
        }
    }
}

/// Sends a record that ends the attempt without success; if the record itself fails, falls
/// back to recording the attempt's outcome as unknown.
async fn record_failure_outcome(
    shared: &Arc<Shared>,
    recorder: &RecorderHandle,
    cur: &mut Cursor,
    rec: Rec,
    action: &ActionStep,
    report: &mut DriveReport,
) -> Flow {
    let attempt_id = rec.batch.finishes.first().map(|f| f.attempt_id);
    if send(recorder, cur, rec, report).await.is_none() && !report.lease_lost {
        fall_back(shared, recorder, cur, action, attempt_id, report).await;
    }
    Flow::Stop
}

async fn record_fatal(
    shared: &Arc<Shared>,
    recorder: &RecorderHandle,
    cur: &mut Cursor,
    mut rec: Rec,
    error: ErrorEnvelope,
    report: &mut DriveReport,
) -> Flow {
    let attempt = cur.attempt;
    rec.finish(cur, AttemptOutcome::Fatal, Some(&error));
    rec.history(cur.event(
        &shared.config.worker_id,
        HistoryKind::StepFailed,
        Some(attempt),
        Some(error.message.clone()),
        Some(json!({ "outcome": "fatal", "error": error })),
    ));
    let reason = format!("step `{}` failed: {}", cur.step_name(), error);
    cur.last_error = Some(error);
    let attempt_id = cur.open_attempt;
    end_run(
        shared,
        cur,
        &mut rec,
        RunStatus::Failed,
        None,
        Some(reason),
        None,
    );
    if send(recorder, cur, rec, report).await.is_none() && !report.lease_lost {
        let action = match cur.kind() {
            StepKind::Action(a) => a.clone(),
            StepKind::Wait(_) => return Flow::Stop,
        };
        fall_back(shared, recorder, cur, &action, attempt_id, report).await;
    }
    Flow::Stop
}

#[expect(
    clippy::too_many_arguments,
    reason = "the driver threads its state through explicitly"
)]
async fn record_success(
    shared: &Arc<Shared>,
    recorder: &RecorderHandle,
    cur: &mut Cursor,
    mut rec: Rec,
    action: &ActionStep,
    success: StepSuccess,
    finish_with: Option<String>,
    go_on: bool,
    report: &mut DriveReport,
) -> Flow {
    let worker_id = shared.config.worker_id.clone();
    let attempt = cur.attempt;
    let attempt_id = cur.open_attempt;
    let before = cur.snapshot();
    let outcome = if finish_with.is_some() {
        AttemptOutcome::Finished
    } else {
        AttemptOutcome::Succeeded
    };
    rec.finish(cur, outcome, None);
    let patch = output_patch(cur.step_name(), success.output);
    let mut data = json!({ "outcome": outcome.as_str() });
    if let Some(p) = &patch {
        data["output"] = p.clone();
    }
    rec.history(cur.event(
        &worker_id,
        HistoryKind::StepSucceeded,
        Some(attempt),
        None,
        Some(data),
    ));
    for OutboxEvent {
        event_type,
        payload,
    } in success.outbox
    {
        rec.outbox(cur.run_id, &event_type, payload);
    }
    rec.writes = success.writes;
    if let Some(p) = &patch {
        cur.context = Arc::new(merge(&cur.context, p));
    }
    cur.last_error = None;
    cur.needs_reconcile = false;
    cur.open_attempt = None;
    cur.started_by_us = false;
    match &finish_with {
        Some(label) => end_run(
            shared,
            cur,
            &mut rec,
            RunStatus::Succeeded,
            Some(label),
            None,
            patch,
        ),
        None => advance(shared, cur, &mut rec, patch, go_on),
    }
    let continuing = rec
        .batch
        .transitions
        .first()
        .is_some_and(|t| t.status == RunStatus::Running);
    match send(recorder, cur, rec, report).await {
        Some(recorded) if continuing && !recorded.stopped_on_request => Flow::Continue,
        Some(_) => Flow::Stop,
        None if report.lease_lost => Flow::Stop,
        None => {
            // Nothing was written: the attempt is still open in the database. Record its outcome
            // as unknown so the next attempt reconciles instead of repeating the effect.
            cur.restore(before);
            fall_back(shared, recorder, cur, action, attempt_id, report).await;
            Flow::Stop
        }
    }
}

/// A handler did not answer within its step's timeout.
struct TimedOut;

/// Runs a handler's future under its step's timeout (`limit`) while a heartbeat extends the run's
/// lease every third of a lease, so that a handler slower than the lease is not rescued (and its
/// effect repeated) while it still runs. One timer serves both: the future is polled under a
/// timeout of the next beat or the limit, whichever comes first, and each beat is sent on a task
/// of its own so the handler is never held up by it. The heartbeat is fenced by the lease token
/// and the open attempt: a worker that lost the run cannot extend it, and a worker that dies
/// stops beating, so its run is rescued.
async fn with_heartbeat<F: std::future::Future>(
    shared: &Shared,
    cur: &Cursor,
    limit: Duration,
    work: F,
) -> Result<F::Output, TimedOut> {
    let every = shared.config.lease_duration / 3;
    let deadline = tokio::time::Instant::now() + limit;
    tokio::pin!(work);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(TimedOut);
        }
        if let Ok(output) = tokio::time::timeout(left.min(every), &mut work).await {
            return Ok(output);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(TimedOut);
        }
        let (pool, run_id, token, attempt) =
            (shared.pool.clone(), cur.run_id, cur.token, cur.open_attempt);
        let lease_ms = millis(shared.config.lease_duration);
        tokio::spawn(async move {
            let extended = async {
                let mut conn = pool.acquire().await?;
                store::runs::heartbeat(&mut conn, run_id, token, attempt, lease_ms).await
            }
            .await;
            match extended {
                Ok(true) => tracing::trace!(run_id = %run_id, "heartbeat: lease extended"),
                Ok(false) => {
                    tracing::warn!(run_id = %run_id, "heartbeat: the lease is no longer this worker's");
                }
                Err(error) => {
                    tracing::warn!(run_id = %run_id, error = %error, "a heartbeat failed; the next one tries again");
                }
            }
        });
    }
}

/// Records the outcome of an attempt whose own record failed as unknown, with the policy's
/// backoff, so the next attempt reconciles first. Writes nothing else (no context, no events).
///
/// When the database itself refused the record (a constraint, a bad write — not a lost
/// connection) for the `max_record_failures`-th time for this attempt, the run is paused with
/// that error as its reason instead: reconciling and recording again would loop forever.
async fn fall_back(
    shared: &Arc<Shared>,
    recorder: &RecorderHandle,
    cur: &mut Cursor,
    action: &ActionStep,
    attempt_id: Option<Uuid>,
    report: &mut DriveReport,
) {
    // No attempt is open when the record that failed adopted a reconciled effect: the unknown
    // outcome is recorded all the same, so that the next attempt reconciles again.
    cur.open_attempt = attempt_id;
    cur.pending_history.clear();
    if let Some(refused) = cur.refused_record.take() {
        let failures = async {
            let mut conn = shared.pool.acquire().await?;
            store::runs::note_record_failure(&mut conn, cur.run_id, cur.token).await
        }
        .await;
        match failures {
            Ok(Some(n)) if n >= shared.config.max_record_failures => {
                let reason = format!(
                    "the outcome of step `{}` could not be recorded {n} times; last error: {refused}",
                    cur.step_name()
                );
                tracing::error!(run_id = %cur.run_id, %reason, "pausing the run");
                let mut rec = Rec::default();
                let error = ErrorEnvelope::retryable("record_failed", reason.clone());
                rec.finish(cur, AttemptOutcome::Unknown, Some(&error));
                cur.last_error = Some(error);
                cur.needs_reconcile = true;
                pause_run(shared, cur, &mut rec, reason, Some(cur.attempt));
                if send(recorder, cur, rec, report).await.is_none() {
                    tracing::error!(run_id = %cur.run_id, "pausing the run failed too; the run is left to its lease expiry");
                }
                return;
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                report.lease_lost = true;
                return;
            }
            Err(error) => {
                tracing::error!(run_id = %cur.run_id, error = %error, "counting a record failure failed; the run is left to its lease expiry");
                return;
            }
        }
    }
    let error = ErrorEnvelope::retryable(
        "record_failed",
        "the step's outcome could not be recorded; the next attempt reconciles first",
    );
    let mut rec = Rec::default();
    rec.finish(cur, AttemptOutcome::Unknown, Some(&error));
    rec.history(cur.event(
        &shared.config.worker_id,
        HistoryKind::StepFailed,
        Some(cur.attempt),
        Some(error.message.clone()),
        Some(json!({ "outcome": "unknown", "error": error })),
    ));
    cur.last_error = Some(error.clone());
    cur.needs_reconcile = true;
    after_failure(shared, cur, &mut rec, action, &error, None);
    report.record_failed = false;
    if send(recorder, cur, rec, report).await.is_none() {
        tracing::error!(run_id = %cur.run_id, "the fallback record failed too; the run is left to its lease expiry");
    }
}

/// Evaluates a wait step: consume its signal, fire its deadline, run its poll when due, send its
/// reminder, or go to sleep (`waiting`, no worker held) until the next timer or a signal.
async fn run_wait(
    shared: &Arc<Shared>,
    cur: &mut Cursor,
    wait: &WaitStep,
    go_on: bool,
    report: &mut DriveReport,
) -> Flow {
    match wait_inner(shared, cur, wait, go_on, report).await {
        Ok(flow) => flow,
        Err(error) => {
            tracing::error!(run_id = %cur.run_id, error = %error, "evaluating a wait failed; the run is left to its lease expiry");
            report.record_failed = true;
            Flow::Stop
        }
    }
}

async fn wait_inner(
    shared: &Arc<Shared>,
    cur: &mut Cursor,
    wait: &WaitStep,
    go_on: bool,
    report: &mut DriveReport,
) -> Result<Flow, sqlx::Error> {
    let worker_id = shared.config.worker_id.clone();
    let mut poll_result: Option<PollOutcome> = None;
    loop {
        let mut conn = shared.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let Some(now) = store::runs::lock_leased(&mut tx, cur.run_id, cur.token).await? else {
            report.lease_lost = true;
            return Ok(Flow::Stop);
        };
        let mut rec = Rec::default();
        // The signal, if it arrived (before or after the run got here).
        if let Some(signal) =
            store::signals::oldest_unconsumed(&mut tx, cur.run_id, &wait.signal).await?
        {
            rec.batch.signals.push(SignalConsumption {
                signal_id: signal.id,
                run_id: cur.run_id,
                step_name: cur.step_name().to_owned(),
            });
            rec.history(cur.event(
                &worker_id,
                HistoryKind::WaitCompleted,
                None,
                None,
                Some(json!({ "by": "signal", "signal": wait.signal, "signal_id": signal.id })),
            ));
            let patch = json!({ wait.signal.clone(): signal.payload });
            cur.context = Arc::new(merge(&cur.context, &patch));
            advance(shared, cur, &mut rec, Some(patch), go_on);
            return finish_wait(cur, tx, rec, report).await;
        }
        let entering = cur.waiting_since.is_none();
        let since = cur.waiting_since.unwrap_or(now);
        // The deadline.
        if let Some(deadline) = &wait.deadline
            && since + to_chrono(deadline.after) <= now
        {
            let reason = format!(
                "no `{}` signal arrived within {:?} of waiting",
                wait.signal, deadline.after
            );
            rec.history(cur.event(
                &worker_id,
                HistoryKind::DeadlineReached,
                None,
                Some(reason.clone()),
                None,
            ));
            match deadline.action {
                DeadlineAction::Fail => end_run(
                    shared,
                    cur,
                    &mut rec,
                    RunStatus::Failed,
                    None,
                    Some(reason),
                    None,
                ),
                DeadlineAction::Pause => pause_run(shared, cur, &mut rec, reason, None),
                DeadlineAction::Continue => advance(shared, cur, &mut rec, None, go_on),
            }
            return finish_wait(cur, tx, rec, report).await;
        }
        // The poll, when due: called with no transaction open, then decided under the lock.
        if let (Some(poll), Some(handler)) = (&wait.poll, cur.workflow.steps[cur.step].poll.clone())
            && poll_result.is_none()
            && cur.next_poll_at.is_some_and(|at| at <= now)
        {
            // Neither a transaction nor a connection is held while the provider is polled.
            tx.rollback().await?;
            drop(conn);
            let ctx = cur.context_for(shared, cur.attempt);
            let outcome = match with_heartbeat(
                shared,
                cur,
                poll.timeout,
                AssertUnwindSafe(handler.poll(&ctx)).catch_unwind(),
            )
            .await
            {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => PollOutcome::Failed(ErrorEnvelope::retryable(
                    "poll_panicked",
                    "the poll handler panicked",
                )),
                Err(_) => PollOutcome::Failed(ErrorEnvelope::retryable(
                    "timeout",
                    format!("the poll did not answer within {:?}", poll.timeout),
                )),
            };
            poll_result = Some(outcome);
            continue;
        }
        let mut next_poll = cur.next_poll_at;
        if let Some(outcome) = poll_result.take() {
            match outcome {
                PollOutcome::Ready(success) => {
                    rec.history(cur.event(
                        &worker_id,
                        HistoryKind::Poll,
                        None,
                        None,
                        Some(json!({ "result": "ready" })),
                    ));
                    rec.history(cur.event(
                        &worker_id,
                        HistoryKind::WaitCompleted,
                        None,
                        None,
                        Some(json!({ "by": "poll" })),
                    ));
                    for OutboxEvent {
                        event_type,
                        payload,
                    } in success.outbox
                    {
                        rec.outbox(cur.run_id, &event_type, payload);
                    }
                    rec.writes = success.writes;
                    let patch = output_patch(cur.step_name(), success.output);
                    if let Some(p) = &patch {
                        cur.context = Arc::new(merge(&cur.context, p));
                    }
                    advance(shared, cur, &mut rec, patch, go_on);
                    return finish_wait(cur, tx, rec, report).await;
                }
                PollOutcome::NotYet => {
                    rec.history(cur.event(
                        &worker_id,
                        HistoryKind::Poll,
                        None,
                        None,
                        Some(json!({ "result": "not_yet" })),
                    ));
                }
                PollOutcome::Failed(error) => {
                    rec.history(cur.event(
                        &worker_id,
                        HistoryKind::Poll,
                        None,
                        Some(error.message.clone()),
                        Some(json!({ "result": "failed", "error": error })),
                    ));
                }
            }
            next_poll = None;
        }
        // Go to sleep until the next timer.
        if let Some(poll) = &wait.poll
            && next_poll.is_none_or(|at| at <= now)
        {
            next_poll = Some(now + to_chrono(poll.every));
        }
        let mut next_reminder = cur.next_reminder_at;
        if let Some(reminder) = &wait.reminder {
            match next_reminder {
                None => next_reminder = Some(now + to_chrono(reminder.every)),
                Some(at) if at <= now => {
                    let payload = cur.run_event_payload(
                        RunStatus::Waiting,
                        json!({ "signal": wait.signal, "waiting_since": since }),
                    );
                    rec.outbox(cur.run_id, &reminder.event, payload);
                    rec.history(cur.event(
                        &worker_id,
                        HistoryKind::Reminder,
                        None,
                        None,
                        Some(json!({ "event": reminder.event })),
                    ));
                    next_reminder = Some(now + to_chrono(reminder.every));
                }
                Some(_) => {}
            }
        }
        let deadline_at = wait.deadline.as_ref().map(|d| since + to_chrono(d.after));
        let wake_at = [next_poll, next_reminder, deadline_at]
            .into_iter()
            .flatten()
            .min();
        if entering {
            rec.history(cur.event(
                &worker_id,
                HistoryKind::Waiting,
                None,
                None,
                Some(json!({ "signal": wait.signal })),
            ));
        }
        cur.next_poll_at = next_poll;
        cur.next_reminder_at = next_reminder;
        let mut t = cur.transition(RunStatus::Waiting);
        t.waiting_since = if entering {
            WaitingSince::SetNow
        } else {
            WaitingSince::Keep
        };
        t.next_run_at = wake_at;
        rec.batch.transitions.push(t);
        cur.waiting_since = Some(since);
        finish_wait(cur, tx, rec, report).await?;
        return Ok(Flow::Stop);
    }
}

/// Writes a wait's record inside the transaction that holds the run's row lock, then commits.
async fn finish_wait(
    cur: &mut Cursor,
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    mut rec: Rec,
    report: &mut DriveReport,
) -> Result<Flow, sqlx::Error> {
    if !cur.pending_history.is_empty() {
        let mut pending = std::mem::take(&mut cur.pending_history);
        pending.append(&mut rec.batch.history);
        rec.batch.history = pending;
    }
    let continuing = rec
        .batch
        .transitions
        .first()
        .is_some_and(|t| t.status == RunStatus::Running);
    let record_id = rec.batch.transitions.first().map(|t| t.record_id);
    let written = store::runs::record(&mut tx, &rec.batch).await?;
    let Some(recorded) = written.into_iter().find(|r| r.id == cur.run_id) else {
        tx.rollback().await?;
        report.lease_lost = true;
        return Ok(Flow::Stop);
    };
    for write in &rec.writes {
        write.apply(&mut tx).await?;
    }
    tx.commit().await?;
    committed(cur, report, record_id, rec.ended, rec.retried, &recorded);
    if continuing && !recorded.stopped_on_request {
        Ok(Flow::Continue)
    } else {
        Ok(Flow::Stop)
    }
}

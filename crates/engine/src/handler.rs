//! What a step handler sees and returns: [`StepHandler`], [`PollHandler`], [`StepContext`],
//! [`StepOutcome`], [`ReconcileOutcome`], [`PollOutcome`], [`RecordWrite`], [`OutboxEvent`].
//!
//! Handlers are called outside any transaction, under the step's timeout. What they return is
//! recorded by the engine in one transaction fenced by the run's lease token: the step's
//! attempt, the run's next state, history, the outbox events and the handler's own
//! [`RecordWrite`]s all commit together or not at all.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use domain::envelope::ErrorEnvelope;
use domain::run::RunId;
use futures::future::BoxFuture;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Everything a handler knows about the step it executes.
#[derive(Clone)]
#[non_exhaustive]
pub struct StepContext {
    /// The run.
    pub run_id: RunId,
    /// The marketplace the run belongs to, if any.
    pub marketplace_id: Option<Uuid>,
    /// The run's subject (the vendor), if any.
    pub subject_id: Option<Uuid>,
    /// The workflow's name.
    pub workflow: Arc<str>,
    /// The definition version the run pinned.
    pub workflow_version: u32,
    /// The step's name.
    pub step: Arc<str>,
    /// The attempt number at this step (1 for the first try; reconcile sees the number of the
    /// attempt being reconciled).
    pub attempt: u32,
    /// How many times an operator resumed the run from a step (part of the idempotency key).
    pub generation: u32,
    /// The run's input (immutable, never secret).
    pub input: Arc<Value>,
    /// The run's context: the merged, non-secret outputs of earlier steps.
    pub context: Arc<Value>,
    /// `{run_id}:{step}:{generation}`: the same for every attempt of this step (so a provider
    /// that honours idempotency keys replays instead of repeating), and new when an operator
    /// resumes from a step (so the step really runs again).
    pub idempotency_key: Arc<str>,
    /// The last error of this step, if an earlier attempt failed.
    pub last_error: Option<ErrorEnvelope>,
    /// A pool for reads. Never hold a transaction across a provider call.
    pub pool: PgPool,
}

impl fmt::Debug for StepContext {
    /// Input and context are left out: they are not secret, but they can be large and belong
    /// in the run's record, not in every log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepContext")
            .field("run_id", &self.run_id)
            .field("workflow", &self.workflow)
            .field("step", &self.step)
            .field("attempt", &self.attempt)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// An event for the marketplace, written to the outbox in the record transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// The event type, e.g. `vendor.organization_created`.
    pub event_type: String,
    /// The payload (non-secret).
    pub payload: Value,
}

impl OutboxEvent {
    /// An event of `event_type` with `payload`.
    pub fn new(event_type: impl Into<String>, payload: Value) -> Self {
        Self {
            event_type: event_type.into(),
            payload,
        }
    }
}

/// Extra SQL a handler needs to commit in the SAME transaction that records its step, after the
/// lease check passed: for example the API keys a provider returns only once, stored encrypted
/// together with the record of the step that created them. If it fails, nothing of the record
/// is committed and the attempt's outcome becomes unknown (the next attempt reconciles).
pub trait RecordWrite: Send + Sync {
    /// Performs the write on the record's transaction.
    fn apply<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>>;
}

/// A successful step: its output, the events to emit and the writes to commit with it.
#[derive(Default)]
pub struct StepSuccess {
    /// Merged into the run's context (top-level keys of an object replace earlier ones; any other
    /// non-null value is stored under the step's name). Never secrets.
    pub output: Value,
    /// Events written to the outbox in the record transaction.
    pub outbox: Vec<OutboxEvent>,
    /// Writes committed in the record transaction.
    pub writes: Vec<Box<dyn RecordWrite>>,
}

impl StepSuccess {
    /// A success with this output.
    pub fn new(output: Value) -> Self {
        Self {
            output,
            ..Self::default()
        }
    }

    /// A success with no output.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Adds an outbox event.
    #[must_use]
    pub fn with_event(mut self, event: OutboxEvent) -> Self {
        self.outbox.push(event);
        self
    }

    /// Adds a write committed with the record.
    #[must_use]
    pub fn with_write(mut self, write: impl RecordWrite + 'static) -> Self {
        self.writes.push(Box::new(write));
        self
    }
}

impl fmt::Debug for StepSuccess {
    /// Writes are not shown: they may carry secrets (encrypted keys).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepSuccess")
            .field("output", &self.output)
            .field("outbox", &self.outbox)
            .field("writes", &self.writes.len())
            .finish()
    }
}

/// How an attempt of an action step ended.
#[derive(Debug)]
pub enum StepOutcome {
    /// The step did its work; the run moves on.
    Success(StepSuccess),
    /// It failed in a way a later attempt may fix; retried with the step's backoff, or at
    /// `retry_after` when the provider said when (HTTP 429 / Retry-After).
    Retryable {
        /// What went wrong.
        error: ErrorEnvelope,
        /// When the provider asked to be called again.
        retry_after: Option<Duration>,
    },
    /// It failed in a way no attempt can fix: the run fails.
    Fatal(ErrorEnvelope),
    /// Nobody knows whether the effect happened (the request was sent and the answer lost):
    /// the next attempt calls [`StepHandler::reconcile`] first.
    Unknown(ErrorEnvelope),
    /// The step needs an operator: the run pauses with this reason.
    Pause {
        /// Why, in words for the operator.
        reason: String,
    },
    /// The step ends the run with a business outcome that is not a failure, such as
    /// `declined`: the run becomes `succeeded` with this outcome (it must be declared in the
    /// definition's `outcomes`), and the definition's event for it is written.
    Finish {
        /// The declared outcome.
        outcome: String,
        /// Output, events and writes, as for a success.
        success: StepSuccess,
    },
}

impl StepOutcome {
    /// A success with this output.
    pub fn success(output: Value) -> Self {
        StepOutcome::Success(StepSuccess::new(output))
    }

    /// A retryable failure without a provider-given delay.
    pub fn retryable(error: ErrorEnvelope) -> Self {
        StepOutcome::Retryable {
            error,
            retry_after: None,
        }
    }
}

/// What a handler found when asked whether an attempt whose outcome is unknown took effect.
#[derive(Debug)]
pub enum ReconcileOutcome {
    /// The effect exists (found by a natural key, or replayed by an idempotency key): adopt it
    /// as the step's success without calling `execute` again.
    Applied(StepSuccess),
    /// The effect does not exist: the step is executed again.
    NotApplied,
    /// There is no way to know: the run pauses for an operator with this reason, instead of
    /// risking a duplicate. An operator who checked can resume (to execute the step again) or
    /// resume from the next step.
    CannotKnow {
        /// Why, in words for the operator.
        reason: String,
    },
}

/// An action step's behaviour, registered by name.
///
/// Implementations must be idempotent on [`StepContext::idempotency_key`] where the provider
/// allows it: the engine guarantees the outcome is recorded once, but a step can be executed
/// again after a crash or a timeout, and then `reconcile` is asked first.
pub trait StepHandler: Send + Sync + 'static {
    /// Executes one attempt.
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, StepOutcome>;

    /// Called before the next attempt when an earlier attempt's outcome is unknown (it timed
    /// out, returned [`StepOutcome::Unknown`], or its worker died before recording it). The
    /// default cannot know, so the run pauses with a clear reason.
    fn reconcile<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, ReconcileOutcome> {
        let outcome = cannot_know(ctx);
        Box::pin(async move { outcome })
    }
}

/// The default reconcile answer: the handler has no way to look the effect up.
pub fn cannot_know(ctx: &StepContext) -> ReconcileOutcome {
    ReconcileOutcome::CannotKnow {
        reason: format!(
            "step `{}` may or may not have taken effect (attempt {}), and its handler cannot look it up; \
             check at the provider, then resume to run it again or resume from the next step",
            ctx.step, ctx.attempt
        ),
    }
}

/// What a wait's poll found.
#[derive(Debug)]
pub enum PollOutcome {
    /// The awaited condition holds: the wait completes as if its signal arrived.
    Ready(StepSuccess),
    /// Not yet: poll again after the wait's interval.
    NotYet,
    /// The poll failed; recorded in history and tried again after the interval.
    Failed(ErrorEnvelope),
}

/// A wait step's poll, registered by name. Polls only read; they are not attempts.
pub trait PollHandler: Send + Sync + 'static {
    /// Checks whether the awaited condition holds.
    fn poll<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, PollOutcome>;
}

/// A [`StepHandler`] made of a closure that receives an owned [`StepContext`]; handy for tests,
/// benchmarks and small handlers. Its reconcile is the default (cannot know) unless given.
pub struct FnHandler<E, R> {
    execute: E,
    reconcile: Option<R>,
}

/// The type of a closure reconcile, for [`FnHandler`]s that have none.
pub type NoReconcile = fn(StepContext) -> BoxFuture<'static, ReconcileOutcome>;

/// A handler from an async closure.
pub fn handler_fn<E, F>(execute: E) -> FnHandler<E, NoReconcile>
where
    E: Fn(StepContext) -> F + Send + Sync + 'static,
    F: Future<Output = StepOutcome> + Send + 'static,
{
    FnHandler {
        execute,
        reconcile: None,
    }
}

impl<E, R> FnHandler<E, R> {
    /// Adds a reconcile closure.
    pub fn with_reconcile<R2, F>(self, reconcile: R2) -> FnHandler<E, R2>
    where
        R2: Fn(StepContext) -> F + Send + Sync + 'static,
        F: Future<Output = ReconcileOutcome> + Send + 'static,
    {
        FnHandler {
            execute: self.execute,
            reconcile: Some(reconcile),
        }
    }
}

impl<E, F, R, G> StepHandler for FnHandler<E, R>
where
    E: Fn(StepContext) -> F + Send + Sync + 'static,
    F: Future<Output = StepOutcome> + Send + 'static,
    R: Fn(StepContext) -> G + Send + Sync + 'static,
    G: Future<Output = ReconcileOutcome> + Send + 'static,
{
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, StepOutcome> {
        Box::pin((self.execute)(ctx.clone()))
    }

    fn reconcile<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, ReconcileOutcome> {
        match &self.reconcile {
            Some(reconcile) => Box::pin(reconcile(ctx.clone())),
            None => {
                let outcome = cannot_know(ctx);
                Box::pin(async move { outcome })
            }
        }
    }
}

/// A [`PollHandler`] from an async closure.
pub struct FnPoll<P>(P);

/// A poll handler from an async closure.
pub fn poll_fn<P, F>(poll: P) -> FnPoll<P>
where
    P: Fn(StepContext) -> F + Send + Sync + 'static,
    F: Future<Output = PollOutcome> + Send + 'static,
{
    FnPoll(poll)
}

impl<P, F> PollHandler for FnPoll<P>
where
    P: Fn(StepContext) -> F + Send + Sync + 'static,
    F: Future<Output = PollOutcome> + Send + 'static,
{
    fn poll<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, PollOutcome> {
        Box::pin((self.0)(ctx.clone()))
    }
}

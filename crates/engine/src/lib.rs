//! The durable workflow engine of vendorflow: workflow definitions (`workflows/*.toml`), the
//! registry of step handlers, transactional enqueue, the worker that executes steps (on the
//! apalis 1.0 runtime, with the run table as its backend), the maintenance scheduler (rescue of
//! expired leases, due waits, retention), operators' operations and signals, and a benchmark.
//!
//! It must not call providers itself (handlers do, registered by the binary), must not know any
//! particular workflow, and must never put secrets in run input, context, history or logs.
//!
//! # Invariants
//!
//! Each is enforced where its doc comment says, and tested in `crates/engine/tests/`.
//!
//! 1. **No transaction is held across a handler call.** A claim commits before any step runs;
//!    handlers run with no transaction open; a wait's poll runs between two transactions.
//! 2. **One fenced transaction per record.** A step's outcome, the run's next state (including
//!    a backoff's `next_run_at`), the attempt, history, outbox rows, consumed signals and the
//!    handler's [`RecordWrite`]s commit together, conditioned on the run's lease token
//!    (`store::runs::record`). A worker whose lease was taken over writes nothing.
//! 3. **Every attempt is recorded before its handler is called.** An attempt found started and
//!    unfinished (its worker died) or finished with an unknown outcome makes the next attempt
//!    call [`StepHandler::reconcile`] first; where the handler cannot know, the run pauses.
//! 4. **Backoff is persisted** as `next_run_at`; attempts, errors and durations are stored per
//!    attempt. Attempts stop at the policy's maximum, then the run fails or pauses.
//! 5. **A run whose worker died is rescued** once its lease expires, exactly once, and the
//!    rescue is recorded in its history (`store::runs::rescue_expired`).
//! 6. **Secrets stay out**: input with secret-named keys is refused at enqueue, and history
//!    payloads and error envelopes are redacted before they are written.
//!
//! # Layout
//!
//! - [`definitions`]: loading and validating definitions, pinning by content hash.
//! - [`handler`] and [`registry`]: what the binary registers and handlers see.
//! - [`enqueue()`]: transactional enqueue.
//! - [`Worker`]: claim, execute, record; [`Scheduler`]: maintenance.
//! - [`ops`]: retry, resume, resume from a step, pause, cancel, signal.
//! - [`observability`]: the engine's metrics (names, meanings, buckets).
//! - [`bench`](mod@bench): the throughput and latency benchmark.

pub mod bench;
pub mod definitions;
mod enqueue;
mod executor;
pub mod handler;
pub mod observability;
pub mod ops;
mod recorder;
pub mod registry;
mod scheduler;
mod worker;

pub use definitions::{CompiledWorkflow, Definitions, DefinitionsError};
pub use domain::definition::WorkflowDefinition;
pub use domain::envelope::ErrorEnvelope;
pub use domain::run::{Actor, ActorKind, RunId, RunStatus};
pub use enqueue::{NewRun, enqueue, enqueue_many};
pub use handler::{
    FnHandler, OutboxEvent, PollHandler, PollOutcome, ReconcileOutcome, RecordWrite, StepContext,
    StepHandler, StepOutcome, StepSuccess, handler_fn, poll_fn,
};
pub use recorder::RecordFaults;
pub use registry::Registry;
pub use scheduler::{
    RetentionJob, RetentionPolicy, RetentionReport, RetentionRule, Scheduler, SchedulerConfig,
    TickReport,
};
pub use worker::{ExecutionOutcome, Worker, WorkerConfig};

/// Errors of the engine's API. Database errors keep their source for logs; their text is never
/// meant for API clients.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The database answered with an error or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Definitions could not be loaded.
    #[error(transparent)]
    Definitions(#[from] DefinitionsError),
    /// No loaded definition has this name.
    #[error("unknown workflow `{0}`")]
    UnknownWorkflow(String),
    /// No run has this id.
    #[error("run {0} not found")]
    RunNotFound(RunId),
    /// The operation does not apply to the run's status.
    #[error(transparent)]
    Transition(#[from] domain::run::TransitionError),
    /// The run's workflow has no step of this name.
    #[error("workflow `{workflow}` has no step `{step}`")]
    UnknownStep {
        /// The workflow.
        workflow: String,
        /// The step asked for.
        step: String,
    },
    /// The run's workflow never waits for this signal.
    #[error("workflow `{workflow}` has no wait for signal `{signal}`")]
    UnknownSignal {
        /// The workflow.
        workflow: String,
        /// The signal sent.
        signal: String,
    },
    /// The run has ended: it takes no signal.
    #[error("run {0} has ended ({1}); it takes no signal")]
    RunEnded(RunId, RunStatus),
    /// Operations must say why.
    #[error("a reason is required")]
    ReasonRequired,
    /// The input carries a value that must never enter a run (a password, an API key, a card
    /// number); the path names the key, never the value.
    #[error("`{0}` must not be part of a run's input: secrets never enter runs")]
    SecretInInput(String),
    /// Another run of the workflow already holds this order key for the marketplace and
    /// subject (the unique index `store::order_keys::INDEX` refused the insert).
    #[error("another run already holds this order key")]
    OrderKeyTaken,
    /// The input is not a JSON object.
    #[error("a run's input must be a JSON object")]
    InputNotObject,
    /// The stored definition a run pinned cannot be read.
    #[error("the definition run {0} pinned is unavailable: {1}")]
    PinnedDefinition(RunId, String),
    /// A configuration value is invalid.
    #[error("invalid engine configuration: {0}")]
    Config(String),
    /// The worker runtime failed.
    #[error("worker: {0}")]
    Worker(String),
}

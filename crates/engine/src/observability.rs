//! The engine's metrics: their names, what they mean, and the small helpers the worker and the
//! scheduler record them with.
//!
//! The engine only calls the `metrics` facade; without an installed recorder every call is a
//! cheap no-op. The binary installs the Prometheus recorder and serves it. Counters and
//! histograms here are per process (a fleet's totals are the sum over its processes); the gauges
//! that must hold across processes (queue depth, age of the oldest due run) are computed from
//! PostgreSQL when `/metrics` is scraped, not here.
//!
//! Labels are small, fixed sets: workflow and step names from the definitions, statuses and
//! outcomes from the engine's own vocabulary. Never a run id, a vendor id or anything a person
//! typed.

use std::sync::Arc;
use std::time::Duration;

use domain::run::RunStatus;

/// Runs first claimed by a worker, by `workflow`.
pub const RUNS_STARTED: &str = "vendorflow_runs_started_total";
/// Runs that ended, by `workflow` and `status` (`succeeded`, `failed`, `cancelled`).
pub const RUNS_FINISHED: &str = "vendorflow_runs_finished_total";
/// How long a step's handler took, by `workflow`, `step` and `outcome`.
pub const STEP_DURATION: &str = "vendorflow_step_duration_seconds";
/// Backoffs scheduled after a failed attempt, by `workflow` and `step`.
pub const STEP_RETRIES: &str = "vendorflow_step_retries_total";
/// Runs taken over after their worker's lease expired.
pub const RESCUES: &str = "vendorflow_rescues_total";
/// Rows deleted by the scheduler's retention, by `job` (`finished_runs`, `idempotency_keys`,
/// `webhook_deliveries`, `outbox`).
pub const RETENTION_DELETED: &str = "vendorflow_retention_deleted_total";

/// Histogram buckets for step durations, in seconds: 1 ms to 60 s (a step's handler is one or a
/// few provider calls, whose live latencies run from tens of milliseconds to seconds, and whose
/// timeouts are under a minute).
pub const STEP_DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Registers the descriptions of the engine's metrics with the installed recorder (its `# HELP`
/// lines), and makes the rescue counter and each retention job's counter exist at zero so that a
/// rate over them is defined before the first rescue or deletion.
pub fn describe() {
    metrics::describe_counter!(RUNS_STARTED, "Runs first claimed by a worker, by workflow.");
    metrics::describe_counter!(
        RUNS_FINISHED,
        "Runs that ended (succeeded, failed or cancelled), by workflow and status."
    );
    metrics::describe_histogram!(
        STEP_DURATION,
        metrics::Unit::Seconds,
        "Duration of a step's handler, by workflow, step and outcome."
    );
    metrics::describe_counter!(
        STEP_RETRIES,
        "Backoffs scheduled after a failed attempt, by workflow and step."
    );
    metrics::describe_counter!(
        RESCUES,
        "Runs taken over after their worker's lease expired."
    );
    metrics::describe_counter!(
        RETENTION_DELETED,
        "Rows deleted by the scheduler's retention, by job."
    );
    metrics::counter!(RESCUES).increment(0);
    for job in crate::RetentionJob::ALL {
        metrics::counter!(RETENTION_DELETED, "job" => job.name()).increment(0);
    }
}

/// A run's first claim by a worker.
pub(crate) fn run_started(workflow: &Arc<str>) {
    metrics::counter!(RUNS_STARTED, "workflow" => workflow.clone()).increment(1);
}

/// A run's end, once it is committed.
pub(crate) fn run_finished(workflow: &Arc<str>, status: RunStatus) {
    metrics::counter!(
        RUNS_FINISHED,
        "workflow" => workflow.clone(),
        "status" => status.as_str(),
    )
    .increment(1);
}

/// A step handler's duration and outcome.
pub(crate) fn step_executed(
    workflow: &Arc<str>,
    step: &Arc<str>,
    outcome: &'static str,
    took: Duration,
) {
    metrics::histogram!(
        STEP_DURATION,
        "workflow" => workflow.clone(),
        "step" => step.clone(),
        "outcome" => outcome,
    )
    .record(took.as_secs_f64());
}

/// A backoff scheduled after a failed attempt.
pub(crate) fn step_retry(workflow: &Arc<str>, step: &str) {
    metrics::counter!(
        STEP_RETRIES,
        "workflow" => workflow.clone(),
        "step" => step.to_owned(),
    )
    .increment(1);
}

/// Runs rescued by one scheduler pass.
pub(crate) fn rescued(count: usize) {
    if count > 0 {
        metrics::counter!(RESCUES).increment(u64::try_from(count).unwrap_or(u64::MAX));
    }
}

/// Rows one retention batch of `job` deleted.
pub(crate) fn retention_deleted(job: &'static str, deleted: u64) {
    if deleted > 0 {
        metrics::counter!(RETENTION_DELETED, "job" => job).increment(deleted);
    }
}

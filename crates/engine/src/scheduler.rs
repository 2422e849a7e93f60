//! Scheduled maintenance, on the same tokio runtime as the workers (tokio intervals are the
//! documented replacement for apalis-cron, which the workspace does not use): rescue runs whose
//! lease expired and wake waits whose poll, reminder or deadline is due (every tick), and the
//! named retention jobs, each on its own period with its own keep-for age:
//!
//! - `finished_runs`: runs that ended, with their attempts, history and signals;
//! - `idempotency_keys`: the API's idempotency keys (it promises a replay for a day);
//! - `webhook_deliveries`: deliveries that were delivered or became dead letters;
//! - `outbox`: outbox events fanned out with no delivery left (their fan-out markers go with
//!   them); an event still to be delivered, or with a pending delivery or a dead letter, stays.
//!
//! Retention deletes in bounded batches (`batch_size` rows per statement, each statement its own
//! short transaction), so a large backlog never holds a long transaction, and it runs beside the
//! ticks rather than inside them, so a backlog never delays a rescue. Each job run that deleted
//! rows logs one line, and `vendorflow_retention_deleted_total{job}` counts the rows.
//!
//! Several schedulers may run at once: each rescue and each wake happens once (those statements
//! skip rows another one holds), and so does each deletion (retention skips held rows, or for
//! finished runs waits for them and then finds them gone).

use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::EngineError;

/// A retention job of the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetentionJob {
    /// Runs that ended, with their attempts, history and signals (outbox rows stay: delivery is
    /// the relay's, and the outbox has its own job).
    FinishedRuns,
    /// Idempotency keys of the marketplace API.
    IdempotencyKeys,
    /// Webhook deliveries that were delivered or became dead letters.
    WebhookDeliveries,
    /// Outbox events fanned out whose deliveries are all gone (or that had none).
    Outbox,
}

impl RetentionJob {
    /// Every job, in the order a pass runs them (deliveries before the outbox, so that events
    /// whose last deliveries a pass deletes can leave in the same pass).
    pub const ALL: [RetentionJob; 4] = [
        RetentionJob::FinishedRuns,
        RetentionJob::IdempotencyKeys,
        RetentionJob::WebhookDeliveries,
        RetentionJob::Outbox,
    ];

    /// The job's name, as logs and the `job` label of the metric show it.
    pub fn name(self) -> &'static str {
        match self {
            RetentionJob::FinishedRuns => "finished_runs",
            RetentionJob::IdempotencyKeys => "idempotency_keys",
            RetentionJob::WebhookDeliveries => "webhook_deliveries",
            RetentionJob::Outbox => "outbox",
        }
    }
}

/// How long one job keeps rows, and how often it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionRule {
    /// Rows older than this (by the job's own measure of age) are deleted.
    pub keep_for: Duration,
    /// Time between two runs of the job.
    pub every: Duration,
}

impl RetentionRule {
    /// Keep rows for `keep_for`, look every hour.
    pub const fn hourly(keep_for: Duration) -> Self {
        RetentionRule {
            keep_for,
            every: Duration::from_secs(3600),
        }
    }
}

const DAY: u64 = 86_400;

/// The rules of every retention job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Runs that ended more than `keep_for` ago (default 90 days).
    pub finished_runs: RetentionRule,
    /// Keys created more than `keep_for` ago (default 24 hours).
    pub idempotency_keys: RetentionRule,
    /// Deliveries that finished and have not changed for `keep_for` (default 30 days).
    pub webhook_deliveries: RetentionRule,
    /// Events created more than `keep_for` ago with no delivery left (default 7 days).
    pub outbox: RetentionRule,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            finished_runs: RetentionRule::hourly(Duration::from_secs(90 * DAY)),
            idempotency_keys: RetentionRule::hourly(Duration::from_secs(DAY)),
            webhook_deliveries: RetentionRule::hourly(Duration::from_secs(30 * DAY)),
            outbox: RetentionRule::hourly(Duration::from_secs(7 * DAY)),
        }
    }
}

impl RetentionPolicy {
    /// The rule of `job`.
    pub fn rule(&self, job: RetentionJob) -> RetentionRule {
        match job {
            RetentionJob::FinishedRuns => self.finished_runs,
            RetentionJob::IdempotencyKeys => self.idempotency_keys,
            RetentionJob::WebhookDeliveries => self.webhook_deliveries,
            RetentionJob::Outbox => self.outbox,
        }
    }
}

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Time between ticks (rescue and due waits).
    pub tick_interval: Duration,
    /// Rows handled per statement, by the ticks and by each retention batch.
    pub batch_size: i64,
    /// Retention; `None` keeps everything.
    pub retention: Option<RetentionPolicy>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            tick_interval: Duration::from_secs(1),
            batch_size: 500,
            retention: Some(RetentionPolicy::default()),
        }
    }
}

/// Rows deleted by each retention job.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionReport {
    /// Finished runs (their attempts, history and signals went with them).
    pub finished_runs: u64,
    /// Idempotency keys.
    pub idempotency_keys: u64,
    /// Finished webhook deliveries.
    pub webhook_deliveries: u64,
    /// Outbox events (their fan-out markers went with them).
    pub outbox: u64,
}

impl RetentionReport {
    /// Rows `job` deleted.
    pub fn get(&self, job: RetentionJob) -> u64 {
        match job {
            RetentionJob::FinishedRuns => self.finished_runs,
            RetentionJob::IdempotencyKeys => self.idempotency_keys,
            RetentionJob::WebhookDeliveries => self.webhook_deliveries,
            RetentionJob::Outbox => self.outbox,
        }
    }

    fn add(&mut self, job: RetentionJob, deleted: u64) {
        let slot = match job {
            RetentionJob::FinishedRuns => &mut self.finished_runs,
            RetentionJob::IdempotencyKeys => &mut self.idempotency_keys,
            RetentionJob::WebhookDeliveries => &mut self.webhook_deliveries,
            RetentionJob::Outbox => &mut self.outbox,
        };
        *slot += deleted;
    }
}

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    /// Runs rescued after their lease expired.
    pub rescued: usize,
    /// Waiting runs woken because a timer is due.
    pub woken: u64,
    /// Rows deleted by retention ([`Scheduler::tick_once`] runs every job).
    pub retention: RetentionReport,
}

/// The maintenance scheduler.
pub struct Scheduler {
    pool: PgPool,
    config: SchedulerConfig,
}

impl Scheduler {
    /// A scheduler over `pool`.
    pub fn new(pool: PgPool, config: SchedulerConfig) -> Self {
        Self { pool, config }
    }

    /// One pass of everything: rescue, due waits, and every retention job (whatever its
    /// period), each until it has nothing left to delete.
    pub async fn tick_once(&self) -> Result<TickReport, EngineError> {
        let mut report = self.tick().await?;
        report.retention = self.retention_once().await?;
        Ok(report)
    }

    /// Runs every retention job once, whatever its period; nothing when retention is off.
    pub async fn retention_once(&self) -> Result<RetentionReport, EngineError> {
        let mut report = RetentionReport::default();
        if let Some(policy) = &self.config.retention {
            for job in RetentionJob::ALL {
                let deleted = self.retain(job, policy.rule(job), None).await?;
                report.add(job, deleted);
            }
        }
        Ok(report)
    }

    /// Rescues expired leases and wakes due waits, in batches until none is left.
    async fn tick(&self) -> Result<TickReport, EngineError> {
        let mut conn = self.pool.acquire().await?;
        let mut report = TickReport::default();
        loop {
            let rescued = store::runs::rescue_expired(&mut conn, self.config.batch_size).await?;
            for run in &rescued {
                tracing::warn!(
                    run_id = %run.id,
                    previous_owner = run.previous_owner.as_deref().unwrap_or(""),
                    status = %run.status,
                    "rescued a run whose lease expired"
                );
            }
            crate::observability::rescued(rescued.len());
            report.rescued += rescued.len();
            if i64::try_from(rescued.len()).unwrap_or(i64::MAX) < self.config.batch_size {
                break;
            }
        }
        loop {
            let woken = store::runs::wake_due_waits(&mut conn, self.config.batch_size).await?;
            report.woken += woken;
            if i64::try_from(woken).unwrap_or(i64::MAX) < self.config.batch_size {
                break;
            }
        }
        if report.rescued > 0 || report.woken > 0 {
            store::runs::notify_due(&mut conn).await?;
        }
        Ok(report)
    }

    /// Runs one retention job: batches of at most `batch_size` rows, each its own statement
    /// (and so its own short transaction), until a batch comes back short or `shutdown` is
    /// cancelled. Counts the rows in the metric batch by batch, and logs one line when the run
    /// deleted any. Returns how many rows it deleted.
    async fn retain(
        &self,
        job: RetentionJob,
        rule: RetentionRule,
        shutdown: Option<&CancellationToken>,
    ) -> Result<u64, EngineError> {
        let older_than_ms = i64::try_from(rule.keep_for.as_millis()).unwrap_or(i64::MAX);
        let limit = self.config.batch_size.max(1);
        let started = Instant::now();
        let mut conn = self.pool.acquire().await?;
        let mut total = 0u64;
        loop {
            let deleted = match job {
                RetentionJob::FinishedRuns => {
                    store::runs::delete_finished(&mut conn, older_than_ms, limit).await?
                }
                RetentionJob::IdempotencyKeys => {
                    store::idempotency::delete_expired(&mut conn, older_than_ms, limit).await?
                }
                RetentionJob::WebhookDeliveries => {
                    store::webhooks::delete_finished_deliveries(&mut conn, older_than_ms, limit)
                        .await?
                }
                RetentionJob::Outbox => {
                    store::outbox::delete_done(&mut conn, older_than_ms, limit).await?
                }
            };
            crate::observability::retention_deleted(job.name(), deleted);
            total += deleted;
            let short = deleted < u64::try_from(limit).unwrap_or(u64::MAX);
            if short || shutdown.is_some_and(CancellationToken::is_cancelled) {
                break;
            }
        }
        if total > 0 {
            tracing::info!(
                job = job.name(),
                deleted = total,
                keep_for_s = rule.keep_for.as_secs(),
                took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "retention deleted old rows"
            );
        }
        Ok(total)
    }

    /// Ticks every `tick_interval`, and runs each retention job every `every` of its rule (the
    /// first time at start), until `shutdown` is cancelled. A failed tick or job is logged and
    /// tried again at its next turn.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), EngineError> {
        tokio::join!(self.tick_loop(&shutdown), self.retention_loop(&shutdown));
        Ok(())
    }

    async fn tick_loop(&self, shutdown: &CancellationToken) {
        let mut interval = tokio::time::interval(self.config.tick_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            if let Err(error) = self.tick().await {
                tracing::warn!(error = %error, "a maintenance tick failed");
            }
        }
    }

    async fn retention_loop(&self, shutdown: &CancellationToken) {
        let Some(policy) = &self.config.retention else {
            return;
        };
        let start = tokio::time::Instant::now();
        let mut due = RetentionJob::ALL.map(|job| (job, start));
        loop {
            let next = due.iter().map(|(_, at)| *at).min().unwrap_or(start);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep_until(next) => {}
            }
            for (job, at) in &mut due {
                if *at > tokio::time::Instant::now() {
                    continue;
                }
                let rule = policy.rule(*job);
                if let Err(error) = self.retain(*job, rule, Some(shutdown)).await {
                    tracing::warn!(job = job.name(), error = %error, "a retention job failed");
                }
                *at = tokio::time::Instant::now() + rule.every.max(Duration::from_secs(1));
                if shutdown.is_cancelled() {
                    return;
                }
            }
        }
    }
}

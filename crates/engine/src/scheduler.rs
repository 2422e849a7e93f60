//! Scheduled maintenance, on the same tokio runtime as the workers (tokio intervals are the
//! documented replacement for apalis-cron, which the workspace does not use): rescue runs whose
//! lease expired, wake waits whose poll, reminder or deadline is due, and delete finished runs
//! by the retention policy. Several schedulers may run at once: every statement skips rows
//! another one holds, so each rescue and each wake happens once.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::EngineError;

/// How long finished runs are kept.
#[derive(Debug, Clone)]
pub struct RetentionPolicy {
    /// Runs that ended longer ago than this are deleted with their attempts, history and
    /// signals (outbox rows stay: delivery is the relay's).
    pub keep_finished_for: Duration,
    /// How often retention runs.
    pub every: Duration,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            keep_finished_for: Duration::from_secs(90 * 86_400),
            every: Duration::from_secs(3600),
        }
    }
}

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Time between ticks (rescue and due waits).
    pub tick_interval: Duration,
    /// Rows handled per statement.
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

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    /// Runs rescued after their lease expired.
    pub rescued: usize,
    /// Waiting runs woken because a timer is due.
    pub woken: u64,
    /// Finished runs deleted by retention.
    pub deleted: u64,
}

/// The maintenance scheduler.
pub struct Scheduler {
    pool: PgPool,
    config: SchedulerConfig,
    last_retention: Mutex<Option<Instant>>,
}

impl Scheduler {
    /// A scheduler over `pool`.
    pub fn new(pool: PgPool, config: SchedulerConfig) -> Self {
        Self {
            pool,
            config,
            last_retention: Mutex::new(None),
        }
    }

    /// One pass of every job: rescue, due waits and retention (regardless of its interval).
    pub async fn tick_once(&self) -> Result<TickReport, EngineError> {
        self.tick(true).await
    }

    async fn tick(&self, with_retention: bool) -> Result<TickReport, EngineError> {
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
        if with_retention && let Some(retention) = &self.config.retention {
            let older_than =
                i64::try_from(retention.keep_finished_for.as_millis()).unwrap_or(i64::MAX);
            report.deleted =
                store::runs::delete_finished(&mut conn, older_than, self.config.batch_size).await?;
            if report.deleted > 0 {
                tracing::info!(deleted = report.deleted, "retention deleted finished runs");
            }
        }
        Ok(report)
    }

    /// Ticks every `tick_interval` until `shutdown` is cancelled; retention runs every
    /// `retention.every`. A failed tick is logged and the next one tries again.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), EngineError> {
        let mut interval = tokio::time::interval(self.config.tick_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = interval.tick() => {}
            }
            let retention_due = match &self.config.retention {
                Some(retention) => {
                    let mut last = self.last_retention.lock().expect("retention clock lock");
                    let due = last.is_none_or(|at| at.elapsed() >= retention.every);
                    if due {
                        *last = Some(Instant::now());
                    }
                    due
                }
                None => false,
            };
            if let Err(error) = self.tick(retention_due).await {
                tracing::warn!(error = %error, "a maintenance tick failed");
            }
        }
    }
}

//! The engine benchmark (`vendorflow bench`, `make bench`): N five-step workflows with no-op
//! handlers against the configured PostgreSQL, with full history recorded, and the machine's
//! commit ceiling measured in the same run for comparison.
//!
//! Printed: workflows/s and steps/s (from the first enqueue to the last run's end, by the
//! database's own timestamps), p50/p99 latency from enqueue to done under that load, p50/p99
//! for one run at a time on an otherwise idle system, PostgreSQL commits per step (the delta of
//! `pg_stat_database.xact_commit` over the load phase, divided by the steps), and the ceiling:
//! commits/s of one-row UPDATE transactions from 8 concurrent clients.
//!
//! The load runs on its own pool, closed at the end of each phase so that every backend's
//! statistics are flushed before they are read. Runs of the benchmark belong to a marketplace
//! named `vendorflow-bench` and are deleted afterwards.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    Definitions, EngineError, NewRun, Registry, StepContext, StepOutcome, Worker, WorkerConfig,
    handler_fn,
};

/// The benchmark's workflow: five no-op actions, with the engine's success event.
const BENCH_WORKFLOW: &str = r#"
name = "bench_five"
version = 1
description = "Five no-op steps, for the benchmark."

[events]
succeeded = "bench.done"

[[steps]]
name = "one"
action = "noop"

[[steps]]
name = "two"
action = "noop"

[[steps]]
name = "three"
action = "noop"

[[steps]]
name = "four"
action = "noop"

[[steps]]
name = "five"
action = "noop"
"#;

const STEPS: usize = 5;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Workflows run in the load phase.
    pub workflows: usize,
    /// Workers (each an apalis worker loop with its own claim and record pipeline).
    pub workers: usize,
    /// Runs each worker drives at once.
    pub concurrency: usize,
    /// Runs per enqueue statement in the load phase.
    pub enqueue_batch: usize,
    /// Runs timed one at a time on an idle system.
    pub latency_samples: usize,
    /// How long the commit ceiling is measured.
    pub ceiling_duration: Duration,
    /// Clients of the commit-ceiling measurement.
    pub ceiling_clients: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            workflows: 20_000,
            workers: 2,
            concurrency: 512,
            enqueue_batch: 500,
            latency_samples: 100,
            ceiling_duration: Duration::from_secs(3),
            ceiling_clients: 8,
        }
    }
}

/// The figures.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Workflows run in the load phase.
    pub workflows: usize,
    /// Steps per workflow.
    pub steps_per_workflow: usize,
    /// From the first enqueue to the last run's end.
    pub elapsed: Duration,
    /// Workflows per second.
    pub workflows_per_sec: f64,
    /// Steps per second.
    pub steps_per_sec: f64,
    /// Enqueue-to-done latency under load, median.
    pub load_p50: Duration,
    /// Enqueue-to-done latency under load, 99th percentile.
    pub load_p99: Duration,
    /// Enqueue-to-done latency of one run on an idle system, median.
    pub idle_p50: Duration,
    /// Enqueue-to-done latency of one run on an idle system, 99th percentile.
    pub idle_p99: Duration,
    /// PostgreSQL commits per step in the load phase (enqueue, claims, records, idle polls).
    pub commits_per_step: f64,
    /// One-row UPDATE transactions per second from `ceiling_clients` clients.
    pub ceiling_commits_per_sec: f64,
    /// Clients of the ceiling measurement.
    pub ceiling_clients: usize,
    /// History events written per workflow.
    pub history_per_workflow: f64,
    /// Workers and concurrency used.
    pub workers: usize,
    /// Runs each worker drove at once.
    pub concurrency: usize,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(
            f,
            "vendorflow engine benchmark: {} workflows x {} no-op steps, {} worker(s) x {} concurrent runs, full history",
            self.workflows, self.steps_per_workflow, self.workers, self.concurrency
        )?;
        writeln!(
            f,
            "  elapsed               {:>10.2} s",
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "  workflows/s           {:>10.0}",
            self.workflows_per_sec
        )?;
        writeln!(f, "  steps/s               {:>10.0}", self.steps_per_sec)?;
        writeln!(
            f,
            "  latency under load    p50 {:>8.1} ms   p99 {:>8.1} ms   (enqueue to done)",
            ms(self.load_p50),
            ms(self.load_p99)
        )?;
        writeln!(
            f,
            "  latency, idle system  p50 {:>8.1} ms   p99 {:>8.1} ms   (one run at a time)",
            ms(self.idle_p50),
            ms(self.idle_p99)
        )?;
        writeln!(
            f,
            "  history events/run    {:>10.1}",
            self.history_per_workflow
        )?;
        writeln!(
            f,
            "  postgres commits/step {:>10.2}   ({:.0} commits/s)",
            self.commits_per_step,
            self.commits_per_step * self.steps_per_sec
        )?;
        write!(
            f,
            "  commit ceiling        {:>10.0} commits/s (one-row UPDATE transactions, {} clients, same run)",
            self.ceiling_commits_per_sec, self.ceiling_clients
        )
    }
}

/// The `p`-th percentile of sorted milliseconds.
fn percentile(sorted: &[f64], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    Duration::from_secs_f64(sorted[rank.min(sorted.len() - 1)].max(0.0) / 1000.0)
}

async fn pool_like(pool: &PgPool, size: u32) -> Result<PgPool, EngineError> {
    let options = (*pool.connect_options()).clone();
    Ok(PgPoolOptions::new()
        .max_connections(size)
        .min_connections(size.min(4))
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await?)
}

/// `pg_stat_database.xact_commit` of the current database.
async fn commits(conn: &mut PgConnection) -> Result<i64, EngineError> {
    Ok(sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// Commits/s of one-row UPDATE transactions from `clients` connections, each on its own row of
/// a regular (logged) table, for `duration`.
async fn commit_ceiling(
    pool: &PgPool,
    clients: usize,
    duration: Duration,
) -> Result<f64, EngineError> {
    let table = format!("vendorflow.bench_ceiling_{}", Uuid::new_v4().simple());
    let mut setup = pool.acquire().await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {table} (id int PRIMARY KEY, n bigint NOT NULL); \
         INSERT INTO {table} SELECT g, 0 FROM generate_series(1, {clients}) g"
    )))
    .execute(&mut *setup)
    .await?;
    let options = (*pool.connect_options()).clone();
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (options, done, table) = (options.clone(), done.clone(), table.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = PgConnection::connect_with(&options).await?;
            let sql = format!("UPDATE {table} SET n = n + 1 WHERE id = $1");
            let id = i32::try_from(client + 1).unwrap_or(1);
            while started.elapsed() < duration {
                sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(id)
                    .execute(&mut conn)
                    .await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            conn.close().await?;
            Ok::<(), sqlx::Error>(())
        }));
    }
    for task in tasks {
        task.await
            .map_err(|e| EngineError::Worker(e.to_string()))??;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
        .execute(&mut *setup)
        .await?;
    Ok(rate)
}

fn bench_registry() -> Registry {
    let mut registry = Registry::new();
    registry.handler(
        "noop",
        handler_fn(|_ctx: StepContext| async { StepOutcome::success(serde_json::Value::Null) }),
    );
    registry
}

fn start_workers(
    pool: &PgPool,
    registry: &Arc<Registry>,
    definitions: &Arc<Definitions>,
    workers: usize,
    concurrency: usize,
    shutdown: &CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<Result<(), EngineError>>>, EngineError> {
    let mut handles = Vec::new();
    for n in 0..workers.max(1) {
        let worker = Worker::new(
            pool.clone(),
            registry.clone(),
            definitions.clone(),
            WorkerConfig {
                worker_id: format!("bench-{n}-{}", Uuid::new_v4().simple()),
                concurrency,
                batch_size: concurrency.min(256),
                poll_interval: Duration::from_millis(100),
                grace_period: Duration::from_secs(10),
                record_flushers: 3,
                record_batch: 512,
                ..WorkerConfig::default()
            },
        )?;
        let shutdown = shutdown.clone();
        handles.push(tokio::spawn(async move { worker.run(shutdown).await }));
    }
    Ok(handles)
}

async fn stop_workers(
    shutdown: CancellationToken,
    handles: Vec<tokio::task::JoinHandle<Result<(), EngineError>>>,
) -> Result<(), EngineError> {
    shutdown.cancel();
    for handle in handles {
        handle
            .await
            .map_err(|e| EngineError::Worker(e.to_string()))??;
    }
    Ok(())
}

/// Runs the benchmark on `pool`'s database (migrated).
pub async fn run(pool: PgPool, options: BenchOptions) -> Result<BenchReport, EngineError> {
    let registry = Arc::new(bench_registry());
    let definitions = Arc::new(Definitions::from_sources(
        [("bench_five.toml", BENCH_WORKFLOW)],
        &registry,
    )?);
    let marketplace = {
        let mut conn = pool.acquire().await?;
        match store::marketplaces::find_by_name(&mut conn, "vendorflow-bench").await {
            Ok(Some(found)) => found.id,
            Ok(None) => {
                store::marketplaces::insert(&mut conn, "vendorflow-bench")
                    .await
                    .map_err(|e| EngineError::Worker(e.to_string()))?
                    .id
            }
            Err(e) => return Err(EngineError::Worker(e.to_string())),
        }
    };
    let mut monitor = pool.acquire().await?;
    store::runs::delete_for_marketplace(&mut monitor, marketplace).await?;

    // 1. The commit ceiling of this machine, now.
    let ceiling = commit_ceiling(&pool, options.ceiling_clients, options.ceiling_duration).await?;

    // 2. Load: enqueue N workflows as fast as possible while the workers run.
    let size = u32::try_from(options.workers * 6 + 6).unwrap_or(32);
    let load_pool = pool_like(&pool, size).await?;
    let commits_before = commits(&mut monitor).await?;
    let mut monitor_commits = 1_i64;
    let shutdown = CancellationToken::new();
    let workers = start_workers(
        &load_pool,
        &registry,
        &definitions,
        options.workers,
        options.concurrency,
        &shutdown,
    )?;
    let producer = {
        let (pool, definitions) = (load_pool.clone(), definitions.clone());
        let (total, batch) = (options.workflows, options.enqueue_batch.max(1));
        tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            let mut sent = 0;
            while sent < total {
                let n = batch.min(total - sent);
                let runs: Vec<NewRun> = (0..n)
                    .map(|i| {
                        let mut run = NewRun::new("bench_five", json!({ "n": sent + i }));
                        run.marketplace_id = Some(marketplace);
                        run
                    })
                    .collect();
                crate::enqueue_many(&mut conn, &runs, &definitions).await?;
                sent += n;
            }
            Ok::<(), EngineError>(())
        })
    };
    producer
        .await
        .map_err(|e| EngineError::Worker(e.to_string()))??;
    let expected = i64::try_from(options.workflows).unwrap_or(i64::MAX);
    loop {
        let done = store::runs::count_succeeded_for_marketplace(&mut monitor, marketplace).await?;
        monitor_commits += 1;
        if done >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_workers(shutdown, workers).await?;
    load_pool.close().await;
    // Backends flush their statistics as they exit; give them a moment.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let commits_after = commits(&mut monitor).await?;
    let load = store::runs::latencies_for_marketplace(&mut monitor, marketplace).await?;
    let history_rows =
        store::runs::history_count_for_marketplace(&mut monitor, marketplace).await?;
    let load_commits = commits_after - commits_before - monitor_commits;
    let mut load_ms: Vec<f64> = load.latencies_ms;
    load_ms.sort_by(f64::total_cmp);
    let elapsed = Duration::from_secs_f64(load.span_ms.max(1.0) / 1000.0);
    let steps = (options.workflows * STEPS) as f64;
    store::runs::delete_for_marketplace(&mut monitor, marketplace).await?;

    // 3. Latency of one run at a time on an idle system.
    let idle_pool = pool_like(&pool, 8).await?;
    let shutdown = CancellationToken::new();
    let workers = start_workers(&idle_pool, &registry, &definitions, 1, 16, &shutdown)?;
    let mut idle_ms = Vec::with_capacity(options.latency_samples);
    {
        let mut conn = idle_pool.acquire().await?;
        // Let the worker start listening before timing.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for i in 0..options.latency_samples {
            let mut run = NewRun::new("bench_five", json!({ "sample": i }));
            run.marketplace_id = Some(marketplace);
            let id = crate::enqueue(&mut conn, run, &definitions).await?;
            let waited = Instant::now();
            loop {
                if let Some(ms) = store::runs::latency_if_finished(&mut monitor, id.0).await? {
                    idle_ms.push(ms);
                    break;
                }
                if waited.elapsed() > Duration::from_secs(30) {
                    return Err(EngineError::Worker(format!(
                        "run {id} did not finish within 30 s"
                    )));
                }
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
        }
    }
    stop_workers(shutdown, workers).await?;
    idle_pool.close().await;
    idle_ms.sort_by(f64::total_cmp);
    store::runs::delete_for_marketplace(&mut monitor, marketplace).await?;

    Ok(BenchReport {
        workflows: options.workflows,
        steps_per_workflow: STEPS,
        elapsed,
        workflows_per_sec: options.workflows as f64 / elapsed.as_secs_f64(),
        steps_per_sec: steps / elapsed.as_secs_f64(),
        load_p50: percentile(&load_ms, 50.0),
        load_p99: percentile(&load_ms, 99.0),
        idle_p50: percentile(&idle_ms, 50.0),
        idle_p99: percentile(&idle_ms, 99.0),
        commits_per_step: load_commits as f64 / steps,
        ceiling_commits_per_sec: ceiling,
        ceiling_clients: options.ceiling_clients,
        history_per_workflow: history_rows as f64 / options.workflows.max(1) as f64,
        workers: options.workers,
        concurrency: options.concurrency,
    })
}

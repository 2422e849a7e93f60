//! The worker: claims due runs in batches and drives them, on the apalis 1.0 worker runtime.
//!
//! apalis runs the loop (readiness, dispatch, tracking of tasks in flight, graceful drain on
//! stop); the run table is its backend ([`RunBackend`]): a claim statement with
//! `FOR NO KEY UPDATE SKIP LOCKED` fills a buffer of claimed runs, LISTEN/NOTIFY wakes an idle
//! worker, and a poll interval is the fallback. Each claimed run is an apalis task whose service
//! ([`StepService`]) drives it through its steps with the executor.
//!
//! [`Worker::run_once`] claims one batch and executes one step of each claimed run, without
//! apalis, so tests can drive the engine step by step.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use apalis::prelude::{Backend, Task, WorkerBuilder, WorkerContext};
use apalis_core::backend::BackendConfig;
use apalis_core::backend::finalize::Ephemeral;
use futures::FutureExt;
use futures::future::{BoxFuture, join_all};
use futures::task::AtomicWaker;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use store::runs::{NOTIFY_CHANNEL, RunRow};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower::layer::util::Identity;

use crate::EngineError;
use crate::definitions::{CompiledWorkflow, Definitions};
use crate::executor::{DriveReport, drive};
use crate::recorder::{RecordFaults, Recorder, RecorderHandle};
use crate::registry::Registry;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names the worker in leases, attempts and history (make it unique per process).
    pub worker_id: String,
    /// Runs driven at the same time.
    pub concurrency: usize,
    /// Runs claimed by one claim statement, at most.
    pub batch_size: usize,
    /// How long a claim holds a run without news from its worker. A run whose lease expires is
    /// rescued and given to another worker, so while a handler (or a reconcile, or a poll) runs,
    /// a heartbeat extends the lease every third of it: a step may take longer than the lease,
    /// and a dead worker's runs are rescued at most this long after its last heartbeat.
    pub lease_duration: Duration,
    /// How often an idle worker looks for due runs when no notification arrives (retries whose
    /// backoff ends, timers of waits woken by the scheduler).
    pub poll_interval: Duration,
    /// On shutdown, how long steps in flight may take to finish before the worker leaves them
    /// to lease expiry.
    pub grace_period: Duration,
    /// Steps one claim may execute in a row before the run goes back to the queue (fairness).
    pub max_steps_per_claim: usize,
    /// Group-commit flushes in flight at once (each uses one connection).
    pub record_flushers: usize,
    /// The largest number of records one flush writes.
    pub record_batch: usize,
    /// Failures to record one attempt's outcome (the database refusing the record, not a lost
    /// connection) after which the run is paused with the error as its reason, rather than
    /// reconciled and recorded again forever.
    pub max_record_failures: i32,
    /// Faults injected into recording by tests (none by default).
    pub record_faults: RecordFaults,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            worker_id: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            concurrency: 64,
            batch_size: 64,
            lease_duration: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            grace_period: Duration::from_secs(30),
            max_steps_per_claim: 100,
            record_flushers: 2,
            record_batch: 256,
            max_record_failures: 3,
            record_faults: RecordFaults::default(),
        }
    }
}

/// State shared by a worker's loop, its backend, its service and its drivers.
pub(crate) struct Shared {
    pub(crate) pool: PgPool,
    pub(crate) registry: Arc<Registry>,
    pub(crate) definitions: Arc<Definitions>,
    pinned: RwLock<HashMap<(String, String), Arc<CompiledWorkflow>>>,
    pub(crate) config: WorkerConfig,
    /// The shutdown token of the running `run`: once cancelled, drivers finish their step and
    /// give the run back instead of going on with it.
    stop: RwLock<Option<CancellationToken>>,
    /// Whether local timers may wake the claim loop (only while `run` is active).
    timers: AtomicBool,
    wake: Arc<Notify>,
    in_flight: AtomicUsize,
    slot_waker: AtomicWaker,
}

impl Shared {
    /// The definition a run pinned: the loaded file if its hash matches, else the stored text
    /// compiled against this worker's registry (cached).
    pub(crate) async fn resolve(
        &self,
        workflow: &str,
        content_hash: &str,
    ) -> Result<Arc<CompiledWorkflow>, String> {
        if let Some(found) = self.definitions.get_pinned(workflow, content_hash) {
            return Ok(found.clone());
        }
        let key = (workflow.to_owned(), content_hash.to_owned());
        if let Some(found) = self.pinned.read().expect("pinned cache lock").get(&key) {
            return Ok(found.clone());
        }
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| format!("the definition it pinned could not be read: {e}"))?;
        let (file, source) = store::runs::definition_source(&mut conn, workflow, content_hash)
            .await
            .map_err(|e| format!("the definition it pinned could not be read: {e}"))?
            .ok_or_else(|| {
                format!("the definition of `{workflow}` it pinned ({content_hash}) is not stored")
            })?;
        let compiled = CompiledWorkflow::compile(&file, &source, &self.registry).map_err(|errors| {
            format!(
                "the definition of `{workflow}` it pinned ({content_hash}) no longer validates against this worker's handlers: {}",
                errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            )
        })?;
        let compiled = Arc::new(compiled);
        self.pinned
            .write()
            .expect("pinned cache lock")
            .insert(key, compiled.clone());
        Ok(compiled)
    }

    /// Wakes the claim loop after `delay` (a short backoff that ends before the next poll).
    pub(crate) fn wake_after(&self, delay: Duration) {
        if self.timers.load(Ordering::Relaxed) && delay < self.config.poll_interval {
            let wake = self.wake.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                wake.notify_one();
            });
        }
    }

    /// Whether shutdown has begun.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stop
            .read()
            .expect("stop token lock")
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
    }

    fn slot_freed(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.slot_waker.wake();
    }
}

/// What one [`Worker::run_once`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionOutcome {
    /// Runs claimed.
    pub claimed: usize,
    /// Records written (attempt starts and outcomes, waits).
    pub recorded: usize,
    /// Runs whose lease was taken over while this worker held them: it wrote nothing for them.
    pub lease_lost: usize,
    /// Runs whose record failed.
    pub record_failed: usize,
}

impl ExecutionOutcome {
    /// Whether nothing was due.
    pub fn is_empty(&self) -> bool {
        self.claimed == 0
    }
}

/// A worker: claims due runs and executes their steps.
#[derive(Clone)]
pub struct Worker {
    shared: Arc<Shared>,
}

impl Worker {
    /// A worker over `pool` executing `definitions` with the handlers of `registry`.
    ///
    /// # Errors
    /// [`EngineError::Config`] if the lease is shorter than a second or a size is zero.
    pub fn new(
        pool: PgPool,
        registry: Arc<Registry>,
        definitions: Arc<Definitions>,
        config: WorkerConfig,
    ) -> Result<Self, EngineError> {
        if config.concurrency == 0 || config.batch_size == 0 || config.max_steps_per_claim == 0 {
            return Err(EngineError::Config(
                "concurrency, batch_size and max_steps_per_claim must be at least 1".into(),
            ));
        }
        if config.lease_duration < Duration::from_secs(1) {
            return Err(EngineError::Config(format!(
                "lease_duration {:?} must be at least a second (the heartbeat extends it every third of it)",
                config.lease_duration
            )));
        }
        Ok(Self {
            shared: Arc::new(Shared {
                pool,
                registry,
                definitions,
                pinned: RwLock::new(HashMap::new()),
                config,
                stop: RwLock::new(None),
                timers: AtomicBool::new(false),
                wake: Arc::new(Notify::new()),
                in_flight: AtomicUsize::new(0),
                slot_waker: AtomicWaker::new(),
            }),
        })
    }

    /// This worker's configuration.
    pub fn config(&self) -> &WorkerConfig {
        &self.shared.config
    }

    /// Claims one batch of due runs and executes one step of each (an attempt's start and its
    /// outcome, or a wait's evaluation), then gives each run back to the queue or leaves it
    /// waiting, paused or ended. For tests: drive the engine step by step.
    pub async fn run_once(&self) -> Result<ExecutionOutcome, EngineError> {
        let shared = &self.shared;
        let claimed_at = Instant::now();
        let runs = {
            let mut conn = shared.pool.acquire().await?;
            store::runs::claim_due(
                &mut conn,
                &shared.config.worker_id,
                millis(shared.config.lease_duration),
                i64::try_from(shared.config.batch_size).unwrap_or(i64::MAX),
            )
            .await?
        };
        let mut outcome = ExecutionOutcome {
            claimed: runs.len(),
            ..ExecutionOutcome::default()
        };
        if runs.is_empty() {
            return Ok(outcome);
        }
        let recorder = Recorder::start(
            shared.pool.clone(),
            shared.config.record_flushers,
            shared.config.record_batch,
            shared.config.record_faults.clone(),
        );
        let handle = recorder.handle();
        let reports: Vec<DriveReport> = join_all(
            runs.into_iter()
                .map(|run| drive(shared, &handle, run, claimed_at, false)),
        )
        .await;
        drop(handle);
        recorder.close().await;
        for report in reports {
            outcome.recorded += report.records;
            outcome.lease_lost += usize::from(report.lease_lost);
            outcome.record_failed += usize::from(report.record_failed);
        }
        Ok(outcome)
    }

    /// Runs until `shutdown` is cancelled: then stops claiming, gives back runs claimed but not
    /// started, lets steps in flight finish and record within the grace period, and leaves any
    /// still running after it to lease expiry (they are rescued by the scheduler).
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), EngineError> {
        let shared = self.shared.clone();
        *shared.stop.write().expect("stop token lock") = Some(shutdown.clone());
        shared.timers.store(true, Ordering::Relaxed);
        let listener = tokio::spawn(listen(
            shared.pool.clone(),
            shared.wake.clone(),
            shutdown.clone(),
        ));
        let recorder = Recorder::start(
            shared.pool.clone(),
            shared.config.record_flushers,
            shared.config.record_batch,
            shared.config.record_faults.clone(),
        );
        let backend = RunBackend::new(shared.clone(), shutdown.clone());
        let service = StepService {
            shared: shared.clone(),
            recorder: recorder.handle(),
        };
        let worker = WorkerBuilder::new(shared.config.worker_id.as_str())
            .backend(backend)
            .build(service);
        let stop = {
            let shutdown = shutdown.clone();
            async move {
                shutdown.cancelled().await;
                Ok::<(), apalis::prelude::WorkerError>(())
            }
        };
        let grace = {
            let shutdown = shutdown.clone();
            let grace = shared.config.grace_period;
            async move {
                shutdown.cancelled().await;
                tokio::time::sleep(grace).await;
            }
        };
        let result = tokio::select! {
            result = worker.run_until(stop) => result.map_err(|e| EngineError::Worker(e.to_string())),
            () = grace => {
                tracing::warn!(
                    worker_id = %shared.config.worker_id,
                    in_flight = shared.in_flight.load(Ordering::Relaxed),
                    "grace period over; leaving the steps still in flight to lease expiry"
                );
                Ok(())
            }
        };
        shared.timers.store(false, Ordering::Relaxed);
        *shared.stop.write().expect("stop token lock") = None;
        recorder.close().await;
        listener.abort();
        let _ = listener.await;
        tracing::info!(worker_id = %shared.config.worker_id, "worker stopped");
        result
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// LISTENs for enqueues and wake-ups and wakes the claim loop; reconnects after errors.
async fn listen(pool: PgPool, wake: Arc<Notify>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let result: Result<(), sqlx::Error> = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(NOTIFY_CHANNEL).await?;
            // Anything enqueued while we were not listening is found by the next claim.
            wake.notify_one();
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    notification = listener.recv() => {
                        notification?;
                        wake.notify_one();
                    }
                }
            }
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(error = %error, "LISTEN connection failed; polling until it is back");
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// A claim statement in flight.
type ClaimFuture = BoxFuture<'static, Result<Vec<RunRow>, sqlx::Error>>;

/// The run table as an apalis backend: batch claims into a buffer, woken by NOTIFY or a poll
/// interval, gated by the worker's concurrency.
pub(crate) struct RunBackend {
    shared: Arc<Shared>,
    /// Once cancelled, nothing more is claimed or handed out; the buffer is given back on close.
    shutdown: CancellationToken,
    buffer: VecDeque<(RunRow, Instant)>,
    claiming: Option<(ClaimFuture, usize, Instant)>,
    idle: Option<BoxFuture<'static, ()>>,
    releasing: Option<BoxFuture<'static, ()>>,
}

impl RunBackend {
    fn new(shared: Arc<Shared>, shutdown: CancellationToken) -> Self {
        Self {
            shared,
            shutdown,
            buffer: VecDeque::new(),
            claiming: None,
            idle: None,
            releasing: None,
        }
    }

    fn idle_future(&self) -> BoxFuture<'static, ()> {
        let wake = self.shared.wake.clone();
        let interval = self.shared.config.poll_interval;
        Box::pin(async move {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(interval) => {}
            }
        })
    }

    fn free_slots(&self) -> usize {
        self.shared
            .config
            .concurrency
            .saturating_sub(self.shared.in_flight.load(Ordering::Acquire) + self.buffer.len())
    }
}

impl Backend for RunBackend {
    type Task = Task<ClaimedRun>;
    type Error = EngineError;

    fn poll_ready(
        &mut self,
        cx: &mut Context<'_>,
        _worker: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        if !self.buffer.is_empty() || self.free_slots() > 0 {
            return Poll::Ready(Ok(()));
        }
        self.shared.slot_waker.register(cx.waker());
        if self.free_slots() > 0 {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        _worker: &WorkerContext,
    ) -> Poll<Option<Result<Self::Task, Self::Error>>> {
        loop {
            if self.shutdown.is_cancelled() {
                // Stop claiming and handing out at once. apalis registered the worker's waker
                // and wakes it on stop, then closes us (which gives the buffer back).
                return Poll::Pending;
            }
            if let Some((run, claimed_at)) = self.buffer.pop_front() {
                self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
                return Poll::Ready(Some(Ok(Task::new(ClaimedRun { run, claimed_at }))));
            }
            if let Some((claim, asked, claimed_at)) = &mut self.claiming {
                match claim.poll_unpin(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(runs)) => {
                        let (asked, claimed_at) = (*asked, *claimed_at);
                        self.claiming = None;
                        if runs.len() < asked {
                            // The queue is drained: sleep until notified or the poll interval.
                            self.idle = Some(self.idle_future());
                        }
                        self.buffer
                            .extend(runs.into_iter().map(|r| (r, claimed_at)));
                        continue;
                    }
                    Poll::Ready(Err(error)) => {
                        tracing::warn!(error = %error, "claiming runs failed; trying again after the poll interval");
                        self.claiming = None;
                        let interval = self.shared.config.poll_interval;
                        self.idle = Some(Box::pin(tokio::time::sleep(interval)));
                        continue;
                    }
                }
            }
            if let Some(idle) = &mut self.idle {
                match idle.poll_unpin(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => self.idle = None,
                }
            }
            let free = self.free_slots();
            if free == 0 {
                self.shared.slot_waker.register(cx.waker());
                if self.free_slots() == 0 {
                    return Poll::Pending;
                }
                continue;
            }
            let asked = free.min(self.shared.config.batch_size);
            let pool = self.shared.pool.clone();
            let worker_id = self.shared.config.worker_id.clone();
            let lease_ms = millis(self.shared.config.lease_duration);
            let claimed_at = Instant::now();
            let claim = async move {
                let mut conn = pool.acquire().await?;
                store::runs::claim_due(
                    &mut conn,
                    &worker_id,
                    lease_ms,
                    i64::try_from(asked).unwrap_or(i64::MAX),
                )
                .await
            };
            self.claiming = Some((Box::pin(claim), asked, claimed_at));
        }
    }

    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        _worker: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        // A claim in flight completes first, so that its runs are given back too.
        if let Some((claim, _, claimed_at)) = &mut self.claiming {
            match claim.poll_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => {
                    let claimed_at = *claimed_at;
                    self.claiming = None;
                    if let Ok(runs) = result {
                        self.buffer
                            .extend(runs.into_iter().map(|r| (r, claimed_at)));
                    }
                }
            }
        }
        if self.releasing.is_none() && !self.buffer.is_empty() {
            let (ids, tokens): (Vec<_>, Vec<_>) = self
                .buffer
                .drain(..)
                .map(|(r, _)| (r.id, r.lease_token))
                .unzip();
            let pool = self.shared.pool.clone();
            self.releasing = Some(Box::pin(async move {
                let released = async {
                    let mut conn = pool.acquire().await?;
                    store::runs::release_claims(&mut conn, &ids, &tokens).await
                }
                .await;
                match released {
                    Ok(n) => tracing::info!(released = n, "gave claimed runs back to the queue"),
                    Err(error) => {
                        tracing::warn!(error = %error, "could not give claimed runs back; they return at lease expiry")
                    }
                }
            }));
        }
        if let Some(releasing) = &mut self.releasing {
            match releasing.poll_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) => self.releasing = None,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl BackendConfig for RunBackend {
    type Args = ClaimedRun;
    type Id = ();
    type Kind = Ephemeral;
    type Config = ();
    type Layer = Identity;

    fn config(&self) -> &Self::Config {
        &()
    }

    fn middleware(&mut self, _worker: &mut WorkerContext) -> Self::Layer {
        Identity::new()
    }
}

/// A claimed run and when it was claimed (a conservative local start of its lease).
pub(crate) struct ClaimedRun {
    run: RunRow,
    claimed_at: Instant,
}

/// The apalis service: drives one claimed run.
#[derive(Clone)]
pub(crate) struct StepService {
    shared: Arc<Shared>,
    recorder: RecorderHandle,
}

/// Frees the worker's slot when a run's driving ends, however it ends.
struct SlotGuard(Arc<Shared>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.slot_freed();
    }
}

impl tower::Service<Task<ClaimedRun>> for StepService {
    /// The number of records written for the run.
    type Response = usize;
    type Error = EngineError;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<usize, EngineError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, task: Task<ClaimedRun>) -> Self::Future {
        let shared = self.shared.clone();
        let recorder = self.recorder.clone();
        Box::pin(async move {
            let _slot = SlotGuard(shared.clone());
            let ClaimedRun { run, claimed_at } = task.args;
            let report = drive(&shared, &recorder, run, claimed_at, true).await;
            Ok(report.records)
        })
    }
}

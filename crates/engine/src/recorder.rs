//! Group commit of step records.
//!
//! Workers send each step's record here and wait for the answer. A few flusher tasks take all
//! records waiting at that moment and write them with ONE statement (`store::runs::record`),
//! hence one transaction and one commit for many steps. Each run's rows stay all-or-nothing and
//! fenced by its own lease token, so batching changes nothing about the invariants; under light
//! load a batch holds one record and costs one round trip.
//!
//! A record carrying [`RecordWrite`]s is written alone, in its own transaction: the run's fenced
//! update first, then the handler's writes, then commit — or nothing.
//!
//! Records are idempotent by identity (`store::runs::record`): when the answer to a commit is
//! lost, the record is simply written again, and a replay of a record that had committed writes
//! nothing and is recognised by the run's `last_record_id`. It never falls back to a record built
//! on the state before it.

use std::sync::Arc;

use domain::run::RunStatus;
use futures::future::join_all;
use sqlx::{Connection, PgPool};
use store::runs::{RecordBatch, Recorded, record};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::EngineError;
use crate::handler::RecordWrite;

/// Faults a test injects into the recorder, to prove that recording survives them.
#[derive(Debug, Clone, Default)]
pub struct RecordFaults {
    /// Counts down the commits until the one whose answer is lost (0: none).
    countdown: Arc<std::sync::atomic::AtomicUsize>,
}

impl RecordFaults {
    /// The `n`-th record to commit from now on (1: the next) answers as if the connection had
    /// dropped right after the commit: the record is in the database, and the worker does not
    /// know it.
    pub fn lose_ack_of_nth(&self, n: usize) {
        self.countdown.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the lost answer asked for is still to come.
    pub fn pending(&self) -> bool {
        self.countdown.load(std::sync::atomic::Ordering::SeqCst) > 0
    }

    fn after_commit(&self) -> Result<(), sqlx::Error> {
        let before = self.countdown.fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| n.checked_sub(1),
        );
        if before == Ok(1) {
            Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected fault: the connection dropped after the commit",
            )))
        } else {
            Ok(())
        }
    }
}

/// What the flushers share.
struct FlushShared {
    pool: PgPool,
    faults: RecordFaults,
}

/// The answer to one record.
#[derive(Debug)]
pub(crate) enum RecordResult {
    /// Written; the run's status after it.
    Written(Recorded),
    /// The run's lease was taken over: nothing was written.
    LeaseLost,
    /// The transaction failed: nothing was written.
    Failed(EngineError),
}

struct Request {
    run_id: Uuid,
    batch: RecordBatch,
    writes: Vec<Box<dyn RecordWrite>>,
    reply: oneshot::Sender<RecordResult>,
}

/// The flusher tasks of one worker.
pub(crate) struct Recorder {
    tx: Option<mpsc::UnboundedSender<Request>>,
    tasks: Vec<JoinHandle<()>>,
}

/// A cheap handle to send records.
#[derive(Clone)]
pub(crate) struct RecorderHandle {
    tx: mpsc::UnboundedSender<Request>,
}

impl Recorder {
    /// Starts `flushers` tasks writing batches of at most `max_batch` records.
    pub(crate) fn start(
        pool: PgPool,
        flushers: usize,
        max_batch: usize,
        faults: RecordFaults,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel::<Request>();
        let rx = Arc::new(Mutex::new(rx));
        let shared = Arc::new(FlushShared { pool, faults });
        let tasks = (0..flushers.max(1))
            .map(|_| {
                let rx = rx.clone();
                let shared = shared.clone();
                tokio::spawn(async move {
                    loop {
                        let mut requests = Vec::new();
                        {
                            let mut rx = rx.lock().await;
                            match rx.recv().await {
                                Some(first) => requests.push(first),
                                None => return,
                            }
                            while requests.len() < max_batch.max(1) {
                                match rx.try_recv() {
                                    Ok(next) => requests.push(next),
                                    Err(_) => break,
                                }
                            }
                        }
                        flush(&shared, requests).await;
                    }
                })
            })
            .collect();
        Self {
            tx: Some(tx),
            tasks,
        }
    }

    pub(crate) fn handle(&self) -> RecorderHandle {
        RecorderHandle {
            tx: self.tx.clone().expect("the recorder is open until closed"),
        }
    }

    /// Stops accepting records, writes those already sent, and waits for the flushers.
    pub(crate) async fn close(mut self) {
        drop(self.tx.take());
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl RecorderHandle {
    /// Sends a record for `run_id` and waits until it is committed or refused.
    pub(crate) async fn record(
        &self,
        run_id: Uuid,
        batch: RecordBatch,
        writes: Vec<Box<dyn RecordWrite>>,
    ) -> RecordResult {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            run_id,
            batch,
            writes,
            reply,
        };
        if self.tx.send(request).is_err() {
            return RecordResult::Failed(EngineError::Worker("the recorder has stopped".into()));
        }
        answer.await.unwrap_or_else(|_| {
            RecordResult::Failed(EngineError::Worker("the recorder dropped a record".into()))
        })
    }
}

/// A deadlock or serialization failure: the transaction rolled back and may simply be tried again.
pub(crate) fn is_transient(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

/// An error after which nobody knows whether the transaction committed: the connection broke
/// (or its answer was lost) rather than the database refusing the statement.
fn is_ambiguous(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
    )
}

/// How many times one record is tried when the database answers with a transient conflict or
/// the answer is lost.
const TRIES: u32 = 4;

/// A short random pause before trying a record again, growing with the try, so records that
/// conflicted do not all come back at the same instant.
async fn jitter(try_number: u32) {
    let ceiling_ms = 10u64 << try_number.min(5);
    let ms = rand::random::<u64>() % ceiling_ms.max(1);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

async fn flush(shared: &FlushShared, requests: Vec<Request>) {
    let (alone, together): (Vec<Request>, Vec<Request>) =
        requests.into_iter().partition(|r| !r.writes.is_empty());
    let batched = flush_together(shared, together);
    let single = join_all(alone.into_iter().map(|r| flush_alone(shared, r)));
    tokio::join!(batched, single);
}

/// Writes records without extra writes in one statement; if that fails, each is written alone
/// (a replay of a record that had committed writes nothing and is recognised as written), so one
/// bad record cannot sink the others.
async fn flush_together(shared: &FlushShared, requests: Vec<Request>) {
    if requests.is_empty() {
        return;
    }
    if requests.len() == 1 {
        let request = requests.into_iter().next().expect("one request");
        let result = write_one(shared, &request.batch, request.run_id).await;
        let _ = request.reply.send(result);
        return;
    }
    let mut batch = RecordBatch::default();
    let mut requests = requests;
    for request in &mut requests {
        batch.append(std::mem::take(&mut request.batch));
    }
    let mut outcome = write_batch(shared, &batch).await;
    for try_number in 1..TRIES {
        match &outcome {
            Err(e) if is_transient(e) => {
                jitter(try_number).await;
                outcome = write_batch(shared, &batch).await;
            }
            _ => break,
        }
    }
    match outcome {
        Ok(written) => {
            let mut missing_ones = Vec::new();
            for request in requests {
                match written.iter().find(|r| r.id == request.run_id) {
                    Some(recorded) => {
                        let _ = request.reply.send(RecordResult::Written(recorded.clone()));
                    }
                    None => missing_ones.push(request),
                }
            }
            // Rare (a lease lost, or a replay of a record that had committed): asked one by one.
            for request in missing_ones {
                let result = missing(shared, &batch, request.run_id).await;
                let _ = request.reply.send(result);
            }
        }
        Err(error) => {
            tracing::warn!(error = %error, records = requests.len(), "a batched record failed; recording each alone");
            let batch = &batch;
            join_all(requests.into_iter().map(|request| async move {
                let own = rows_of(batch, request.run_id);
                let result = write_one(shared, &own, request.run_id).await;
                let _ = request.reply.send(result);
            }))
            .await;
        }
    }
}

/// The rows of one run in a combined batch (every row names its run).
fn rows_of(batch: &RecordBatch, run_id: Uuid) -> RecordBatch {
    RecordBatch {
        transitions: batch
            .transitions
            .iter()
            .filter(|r| r.run_id == run_id)
            .cloned()
            .collect(),
        finishes: batch
            .finishes
            .iter()
            .filter(|r| r.run_id == run_id)
            .cloned()
            .collect(),
        starts: batch
            .starts
            .iter()
            .filter(|r| r.run_id == run_id)
            .cloned()
            .collect(),
        history: batch
            .history
            .iter()
            .filter(|r| r.run_id == run_id)
            .cloned()
            .collect(),
        outbox: batch
            .outbox
            .iter()
            .filter(|r| r.run_id == run_id)
            .cloned()
            .collect(),
        signals: batch
            .signals
            .iter()
            .filter(|r| r.run_id == run_id)
            .cloned()
            .collect(),
    }
}

/// The answer to a record that wrote nothing for its run: either its lease was lost, or the
/// record had already committed (a replay after a lost acknowledgement), which the run's
/// `last_record_id` tells.
async fn missing(shared: &FlushShared, batch: &RecordBatch, run_id: Uuid) -> RecordResult {
    let Some(transition) = batch.transitions.iter().find(|t| t.run_id == run_id) else {
        return RecordResult::LeaseLost;
    };
    let applied = async {
        let mut conn = shared.pool.acquire().await?;
        store::runs::record_applied(&mut conn, run_id, transition.record_id).await
    }
    .await;
    match applied {
        Ok(Some(status)) => {
            tracing::info!(run_id = %run_id, "a record whose answer was lost had committed; it is not written twice");
            RecordResult::Written(Recorded {
                id: run_id,
                stopped_on_request: matches!(status, RunStatus::Paused | RunStatus::Cancelled)
                    && status != transition.status,
                status,
            })
        }
        Ok(None) => RecordResult::LeaseLost,
        Err(e) => RecordResult::Failed(EngineError::Database(e)),
    }
}

async fn write_batch(
    shared: &FlushShared,
    batch: &RecordBatch,
) -> Result<Vec<Recorded>, sqlx::Error> {
    let mut conn = shared.pool.acquire().await?;
    let written = record(&mut conn, batch).await?;
    shared.faults.after_commit()?;
    Ok(written)
}

/// Writes one run's record with `write` (which answers the run's row, or `None` when the record
/// wrote nothing for it), trying again with jitter after a transient conflict or a lost answer:
/// a record is idempotent by identity, so a replay of one that had committed writes nothing and
/// is recognised as written by [`missing`].
async fn write_retrying<F, Fut>(
    shared: &FlushShared,
    batch: &RecordBatch,
    run_id: Uuid,
    mut write: F,
) -> RecordResult
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<Recorded>, sqlx::Error>>,
{
    let mut last = None;
    for try_number in 0..TRIES {
        if try_number > 0 {
            jitter(try_number).await;
        }
        match write().await {
            Ok(Some(recorded)) => return RecordResult::Written(recorded),
            Ok(None) => return missing(shared, batch, run_id).await,
            Err(e) if is_transient(&e) || is_ambiguous(&e) => {
                tracing::warn!(run_id = %run_id, error = %e, "a record failed or lost its answer; trying it again");
                last = Some(e);
            }
            Err(e) => return RecordResult::Failed(EngineError::Database(e)),
        }
    }
    RecordResult::Failed(EngineError::Database(
        last.expect("failed tries leave an error"),
    ))
}

/// Writes one run's record without extra writes.
async fn write_one(shared: &FlushShared, batch: &RecordBatch, run_id: Uuid) -> RecordResult {
    write_retrying(shared, batch, run_id, || async {
        let written = write_batch(shared, batch).await?;
        Ok(written.into_iter().find(|r| r.id == run_id))
    })
    .await
}

/// Writes a record and the handler's writes in one transaction: the fenced run update comes
/// first, so a zombie's writes (and a replay's) never run; any failure rolls everything back.
async fn flush_alone(shared: &FlushShared, request: Request) {
    let (batch, writes, run_id) = (&request.batch, &request.writes, request.run_id);
    let result = write_retrying(shared, batch, run_id, || async {
        let mut conn = shared.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let written = record(&mut tx, batch).await?;
        let Some(recorded) = written.into_iter().find(|r| r.id == run_id) else {
            tx.rollback().await?;
            return Ok(None);
        };
        for write in writes {
            write.apply(&mut tx).await?;
        }
        tx.commit().await?;
        shared.faults.after_commit()?;
        Ok(Some(recorded))
    })
    .await;
    let _ = request.reply.send(result);
}

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

use std::sync::Arc;

use futures::future::join_all;
use sqlx::{Connection, PgPool};
use store::runs::{RecordBatch, Recorded, record};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::EngineError;
use crate::handler::RecordWrite;

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
    pub(crate) fn start(pool: PgPool, flushers: usize, max_batch: usize) -> Self {
        let (tx, rx) = mpsc::unbounded_channel::<Request>();
        let rx = Arc::new(Mutex::new(rx));
        let tasks = (0..flushers.max(1))
            .map(|_| {
                let rx = rx.clone();
                let pool = pool.clone();
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
                        flush(&pool, requests).await;
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

fn is_transient(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

async fn flush(pool: &PgPool, requests: Vec<Request>) {
    let (alone, together): (Vec<Request>, Vec<Request>) =
        requests.into_iter().partition(|r| !r.writes.is_empty());
    let batched = flush_together(pool, together);
    let single = join_all(alone.into_iter().map(|r| flush_alone(pool, r)));
    tokio::join!(batched, single);
}

/// Writes records without extra writes in one statement; if that fails for a reason other
/// than a transient conflict, each is retried alone so one bad record cannot sink the others.
async fn flush_together(pool: &PgPool, requests: Vec<Request>) {
    if requests.is_empty() {
        return;
    }
    if requests.len() == 1 {
        let request = requests.into_iter().next().expect("one request");
        let result = write_one(pool, &request.batch, request.run_id).await;
        let _ = request.reply.send(result);
        return;
    }
    let mut batch = RecordBatch::default();
    let mut requests = requests;
    for request in &mut requests {
        batch.append(std::mem::take(&mut request.batch));
    }
    let mut outcome = write_batch(pool, &batch).await;
    for _ in 0..3 {
        match &outcome {
            Err(e) if is_transient(e) => outcome = write_batch(pool, &batch).await,
            _ => break,
        }
    }
    match outcome {
        Ok(written) => {
            for request in requests {
                let result = match written.iter().find(|r| r.id == request.run_id) {
                    Some(recorded) => RecordResult::Written(recorded.clone()),
                    None => RecordResult::LeaseLost,
                };
                let _ = request.reply.send(result);
            }
        }
        Err(error) => {
            tracing::warn!(error = %error, records = requests.len(), "a batched record failed; recording each alone");
            let batch = &batch;
            join_all(requests.into_iter().map(|request| async move {
                let own = rows_of(batch, request.run_id);
                let result = write_one(pool, &own, request.run_id).await;
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

async fn write_batch(pool: &PgPool, batch: &RecordBatch) -> Result<Vec<Recorded>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    record(&mut conn, batch).await
}

async fn write_one(pool: &PgPool, batch: &RecordBatch, run_id: Uuid) -> RecordResult {
    let mut last = None;
    for _ in 0..3 {
        match write_batch(pool, batch).await {
            Ok(written) => {
                return match written.into_iter().find(|r| r.id == run_id) {
                    Some(recorded) => RecordResult::Written(recorded),
                    None => RecordResult::LeaseLost,
                };
            }
            Err(e) if is_transient(&e) => last = Some(e),
            Err(e) => return RecordResult::Failed(EngineError::Database(e)),
        }
    }
    RecordResult::Failed(EngineError::Database(
        last.expect("three transient failures leave an error"),
    ))
}

/// Writes a record and the handler's writes in one transaction: the fenced run update comes
/// first, so a zombie's writes never run; any failure rolls everything back.
async fn flush_alone(pool: &PgPool, request: Request) {
    let result = async {
        let mut conn = pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let written = record(&mut tx, &request.batch).await?;
        let Some(recorded) = written.into_iter().find(|r| r.id == request.run_id) else {
            tx.rollback().await?;
            return Ok::<_, sqlx::Error>(RecordResult::LeaseLost);
        };
        for write in &request.writes {
            write.apply(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(RecordResult::Written(recorded))
    }
    .await
    .unwrap_or_else(|e| RecordResult::Failed(EngineError::Database(e)));
    let _ = request.reply.send(result);
}

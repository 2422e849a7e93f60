//! Transactional enqueue: a run is inserted with the caller's own connection, so it exists if
//! and only if the caller's transaction commits (with the API's idempotency record, the vendor
//! row, …). PostgreSQL delivers the NOTIFY that wakes the workers at that commit.

use domain::run::{Actor, RunId, forbidden_input_path};
use serde_json::Value;
use sqlx::PgConnection;
use store::runs::{DefinitionSource, NewRunRow};
use uuid::Uuid;

use crate::EngineError;
use crate::definitions::Definitions;

/// A run to start.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// The workflow's name; the run pins the loaded definition's version and content hash.
    pub workflow: String,
    /// The marketplace the run belongs to.
    pub marketplace_id: Option<Uuid>,
    /// The run's subject (the vendor).
    pub subject_id: Option<Uuid>,
    /// The run's input: a JSON object, never secrets (keys such as `api_key`, `password`,
    /// `card_number` are refused).
    pub input: Value,
    /// The run's id, when the caller chose it (e.g. to return it before commit); else UUIDv7.
    pub run_id: Option<Uuid>,
    /// Start later: the run is due this long after the enqueue.
    pub delay: Option<std::time::Duration>,
    /// Who asked for the run, recorded in its `created` event.
    pub actor: Actor,
    /// The order the run is for (a charge's order id, a document's reference): at most one run
    /// of a workflow per marketplace, subject and order key exists, which the database enforces
    /// (a second enqueue fails with [`EngineError::OrderKeyTaken`]).
    pub order_key: Option<String>,
}

impl NewRun {
    /// A run of `workflow` with `input`, due now, enqueued by the system.
    pub fn new(workflow: impl Into<String>, input: Value) -> Self {
        Self {
            workflow: workflow.into(),
            marketplace_id: None,
            subject_id: None,
            input,
            run_id: None,
            delay: None,
            actor: Actor::system(),
            order_key: None,
        }
    }
}

/// Enqueues one run inside the caller's transaction (or as its own statement on a plain
/// connection): inserts it `pending` at its first step, pinned to the loaded definition's version
/// and content hash (storing the definition's text the first time that hash is used), appends
/// its `created` event and NOTIFYs the workers.
///
/// # Errors
/// [`EngineError::UnknownWorkflow`], [`EngineError::InputNotObject`],
/// [`EngineError::SecretInInput`], [`EngineError::OrderKeyTaken`] (the caller's transaction is
/// then aborted: roll it back), or a database error.
pub async fn enqueue(
    conn: &mut PgConnection,
    new: NewRun,
    definitions: &Definitions,
) -> Result<RunId, EngineError> {
    let ids = enqueue_many(conn, std::slice::from_ref(&new), definitions).await?;
    Ok(ids[0])
}

/// Enqueues many runs in one statement (bulk imports, benchmarks). All must be of the same
/// workflow and actor; see [`enqueue`].
pub async fn enqueue_many(
    conn: &mut PgConnection,
    runs: &[NewRun],
    definitions: &Definitions,
) -> Result<Vec<RunId>, EngineError> {
    let Some(first) = runs.first() else {
        return Ok(Vec::new());
    };
    let compiled = definitions
        .get(&first.workflow)
        .ok_or_else(|| EngineError::UnknownWorkflow(first.workflow.clone()))?;
    let mut rows = Vec::with_capacity(runs.len());
    for run in runs {
        if run.workflow != first.workflow {
            return Err(EngineError::UnknownWorkflow(format!(
                "{} (one batch holds runs of one workflow)",
                run.workflow
            )));
        }
        if !run.input.is_object() {
            return Err(EngineError::InputNotObject);
        }
        if let Some(path) = forbidden_input_path(&run.input) {
            return Err(EngineError::SecretInInput(path));
        }
        rows.push(NewRunRow {
            id: run.run_id.unwrap_or_else(Uuid::now_v7),
            marketplace_id: run.marketplace_id,
            subject_id: run.subject_id,
            input: run.input.clone(),
            delay_ms: run
                .delay
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            order_key: run.order_key.clone(),
        });
    }
    let definition = DefinitionSource {
        workflow: &compiled.definition.name,
        version: i32::try_from(compiled.definition.version).unwrap_or(i32::MAX),
        content_hash: &compiled.content_hash,
        file_name: &compiled.file_name,
        source: &compiled.source,
    };
    let first_step = &compiled.definition.steps[0].name;
    store::runs::insert_runs(
        conn,
        &definition,
        first_step,
        &rows,
        first.actor.kind.as_str(),
        &first.actor.id,
    )
    .await
    .map_err(|error| {
        if store::order_keys::is_taken(&error) {
            EngineError::OrderKeyTaken
        } else {
            EngineError::Database(error)
        }
    })?;
    Ok(rows.into_iter().map(|r| RunId(r.id)).collect())
}

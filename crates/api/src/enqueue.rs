//! The API's only doors into the engine: enqueue a run and send a signal, both inside the
//! request's transaction, and the mapping of engine errors to problems.

use domain::run::{Actor, ActorKind, RunId};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Caller;

/// The actor recorded in history for a request made with `caller`'s token.
pub(crate) fn actor(caller: Caller) -> Actor {
    let kind = match caller.0.role {
        store::tokens::Role::Backend => ActorKind::Backend,
        store::tokens::Role::Viewer | store::tokens::Role::Operator => ActorKind::Operator,
    };
    Actor::new(kind, format!("token:{}", caller.0.token_id))
}

impl From<engine::EngineError> for ApiError {
    fn from(error: engine::EngineError) -> Self {
        use engine::EngineError;
        match error {
            EngineError::RunNotFound(_) => ApiError::NotFound("run"),
            EngineError::RunEnded(..) | EngineError::Transition(_) | EngineError::OrderKeyTaken => {
                ApiError::Conflict(error.to_string())
            }
            // A signal its workflow never waits for: the run cannot take it (the name itself is
            // one the document lists, so the request is well formed).
            EngineError::UnknownSignal { .. } => ApiError::Conflict(error.to_string()),
            // A step the document lists, which this run's workflow lacks: the run cannot
            // resume from it.
            EngineError::UnknownStep { .. } => ApiError::Conflict(error.to_string()),
            EngineError::ReasonRequired => {
                field_error("reason", domain::errors::FieldProblem::required())
            }
            EngineError::Database(sqlx::Error::PoolTimedOut) => ApiError::Unavailable,
            other => ApiError::internal(other),
        }
    }
}

/// A 422 naming one field.
fn field_error(field: &str, problem: domain::errors::FieldProblem) -> ApiError {
    ApiError::Validation(
        domain::errors::ValidationErrors::new(vec![problem.at(field)]),
        domain::errors::Lang::En,
    )
}

/// Enqueues a run of `workflow` for `subject_id` in the caller's transaction, for the order
/// `order_key` when given. [`engine::EngineError::OrderKeyTaken`] means another run holds the
/// order key; the transaction is then aborted.
pub(crate) async fn run(
    state: &AppState,
    conn: &mut PgConnection,
    workflow: &str,
    caller: Caller,
    subject_id: Uuid,
    input: Value,
    order_key: Option<&str>,
) -> Result<Uuid, engine::EngineError> {
    let mut new = engine::NewRun::new(workflow, input);
    new.marketplace_id = Some(caller.marketplace_id());
    new.subject_id = Some(subject_id);
    new.actor = actor(caller);
    new.order_key = order_key.map(str::to_owned);
    let id: RunId = engine::enqueue(conn, new, &state.definitions).await?;
    Ok(id.0)
}

/// Sends signal `name` to run `id` in the caller's transaction.
pub(crate) async fn signal(
    conn: &mut PgConnection,
    caller: Caller,
    id: Uuid,
    name: &str,
    payload: Value,
    reason: Option<String>,
) -> Result<(), ApiError> {
    let reason = reason.unwrap_or_else(|| format!("signal `{name}` sent through the API"));
    engine::ops::signal(
        conn,
        RunId::from(id),
        name,
        payload,
        &actor(caller),
        &reason,
    )
    .await?;
    Ok(())
}

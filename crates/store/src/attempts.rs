//! Attempts: one row per try of an action step. Rows are started and finished by the engine's
//! fenced record (`runs::record`); this module reads them and closes abandoned ones for
//! operators' actions.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// An attempt as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub id: Uuid,
    pub run_id: Uuid,
    pub step_index: i32,
    pub step_name: String,
    pub generation: i32,
    pub attempt: i32,
    pub worker_id: String,
    pub lease_token: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    /// The error envelope `{code, message, retryable, details}`, redacted.
    pub error: Option<Value>,
    pub duration_ms: Option<i64>,
}

/// The attempts of a run, oldest first.
pub async fn list_for_run(
    conn: &mut PgConnection,
    run_id: Uuid,
) -> Result<Vec<AttemptRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, run_id, step_index, step_name, generation, attempt, worker_id, lease_token,
                started_at, finished_at, outcome, error, duration_ms
         FROM vendorflow.attempts WHERE run_id = $1
         ORDER BY started_at, generation, step_index, attempt",
    )
    .bind(run_id)
    .fetch_all(&mut *conn)
    .await
}

/// Closes an attempt that started and never finished as `abandoned`, when an operator moves the
/// run on (cancel, resume from a step) so it will never be reconciled.
pub async fn abandon(
    conn: &mut PgConnection,
    attempt_id: Uuid,
    error: &Value,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE vendorflow.attempts
         SET finished_at = clock_timestamp(), outcome = 'abandoned', error = $2,
             duration_ms = GREATEST(0, (extract(epoch FROM clock_timestamp() - started_at) * 1000)::int8)
         WHERE id = $1 AND finished_at IS NULL",
    )
    .bind(attempt_id)
    .bind(error)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

//! The statistics `/metrics` reports as gauges, computed from PostgreSQL at scrape time so that
//! they hold across every worker and relay process. Each query reads a partial index over active
//! rows only, so its cost follows the backlog, never the table's history.

use sqlx::PgConnection;

/// The due part of one workflow's queue.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct QueueStat {
    /// The workflow.
    pub workflow: String,
    /// Runs `pending` whose `next_run_at` has come: waiting for a worker right now.
    pub due: i64,
    /// Seconds since the oldest of them became due (0 when none is due).
    pub oldest_due_age_seconds: f64,
}

/// The due runs per workflow: how many, and how long the oldest has been due. Workflows with no
/// due run are absent. Reads the `runs_due` partial index (pending runs only).
pub async fn due_runs_by_workflow(conn: &mut PgConnection) -> Result<Vec<QueueStat>, sqlx::Error> {
    sqlx::query_as::<_, QueueStat>(
        "SELECT workflow,
                count(*) AS due,
                greatest(extract(epoch FROM now() - min(next_run_at)), 0)::float8
                    AS oldest_due_age_seconds
         FROM vendorflow.runs
         WHERE status = 'pending' AND next_run_at <= now()
         GROUP BY workflow
         ORDER BY workflow",
    )
    .fetch_all(conn)
    .await
}

/// The number of webhook deliveries that are dead letters (across marketplaces). Reads the
/// `webhook_deliveries_dead` partial index.
pub async fn dead_letters(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM vendorflow.webhook_deliveries WHERE status = 'dead'")
        .fetch_one(conn)
        .await
}

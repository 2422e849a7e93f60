//! Order keys of runs: the marketplace's own key of a charge (`order_id`) or a document
//! (`reference`), stored in `runs.order_key` when the run is enqueued (`runs::insert_runs`).
//!
//! The unique index [`INDEX`] over (marketplace, subject, workflow, order key) admits one run per
//! order: a second insert fails with a unique violation (waiting, if the first is not committed
//! yet, for it to commit or roll back), so no lock or lookup is needed before enqueueing. This
//! module names that index, recognises its violation, and finds the run that holds a key.

use sqlx::PgConnection;
use uuid::Uuid;

/// The unique index on `(marketplace_id, subject_id, workflow, order_key)` (migration 0008).
pub const INDEX: &str = "runs_order_key";

/// Whether `error` is a unique violation of [`INDEX`]: the order already has a run.
pub fn is_taken(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|db| db.is_unique_violation() && db.constraint() == Some(INDEX))
}

/// The run of `workflow` for subject `subject_id` of `marketplace_id` that holds `order_key`,
/// found through [`INDEX`].
pub async fn find_run(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    subject_id: Uuid,
    workflow: &str,
    order_key: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM vendorflow.runs
         WHERE marketplace_id = $1 AND subject_id = $2 AND workflow = $3 AND order_key = $4",
    )
    .bind(marketplace_id)
    .bind(subject_id)
    .bind(workflow)
    .bind(order_key)
    .fetch_optional(&mut *conn)
    .await
}

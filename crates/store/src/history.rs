//! Run history: the append-only event list of each run. A database trigger refuses UPDATEs;
//! rows leave only with their run, by retention. Workers append through the fenced record
//! (`runs::record`); operators' actions and signals append here, inside their own transaction.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

pub use crate::runs::HistoryEntry;

/// A history event as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    pub id: i64,
    pub run_id: Uuid,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub step_name: Option<String>,
    pub attempt: Option<i32>,
    pub actor_kind: String,
    pub actor_id: String,
    pub reason: Option<String>,
    /// Redacted before it was written.
    pub data: Option<Value>,
}

/// Appends events (in order). `only_if_continuing` is ignored here: it only has a meaning
/// inside a worker's record.
pub async fn append(conn: &mut PgConnection, entries: &[HistoryEntry]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO vendorflow.run_history (run_id, kind, step_name, attempt, actor_kind, actor_id, reason, data)
         SELECT h.run_id, h.kind, h.step_name, h.attempt, h.actor_kind, h.actor_id, h.reason, h.data
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int4[], $5::text[], $6::text[], $7::text[], $8::jsonb[])
             WITH ORDINALITY AS h(run_id, kind, step_name, attempt, actor_kind, actor_id, reason, data, ord)
         ORDER BY h.ord",
    )
    .bind(entries.iter().map(|e| e.run_id).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.step_name.as_deref()).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.attempt).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.actor_kind.as_str()).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.actor_id.as_str()).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.reason.as_deref()).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.data.clone()).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The history of a run, in order.
pub async fn list_for_run(
    conn: &mut PgConnection,
    run_id: Uuid,
) -> Result<Vec<HistoryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, run_id, at, kind, step_name, attempt, actor_kind, actor_id, reason, data
         FROM vendorflow.run_history WHERE run_id = $1 ORDER BY id",
    )
    .bind(run_id)
    .fetch_all(&mut *conn)
    .await
}

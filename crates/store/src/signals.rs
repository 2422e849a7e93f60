//! Signals sent to runs. A signal is stored at once, even if its run has not reached the wait
//! yet, and consumed by the worker's fenced record (`runs::record`) when the run gets there.
//!
//! No signal is lost: the sender inserts the signal while holding the run's row lock
//! (`runs::lock`), and a worker deciding to sleep at a wait checks for its signal while holding
//! the same lock (`runs::lock_leased`). Either the worker sees the signal, or the sender sees the
//! run `waiting` and wakes it.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// A signal as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SignalRow {
    pub id: Uuid,
    pub run_id: Uuid,
    pub name: String,
    pub payload: Value,
    pub actor_kind: String,
    pub actor_id: String,
    pub reason: Option<String>,
    pub received_at: DateTime<Utc>,
    pub consumed_at: Option<DateTime<Utc>>,
    pub consumed_step: Option<String>,
}

/// A signal to store.
#[derive(Debug, Clone)]
pub struct NewSignal<'a> {
    pub id: Uuid,
    pub run_id: Uuid,
    pub name: &'a str,
    pub payload: &'a Value,
    pub actor_kind: &'a str,
    pub actor_id: &'a str,
    pub reason: Option<&'a str>,
}

/// Stores a signal. The caller holds the run's row lock (`runs::lock`) in the same transaction.
pub async fn insert(conn: &mut PgConnection, signal: &NewSignal<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO vendorflow.signals (id, run_id, name, payload, actor_kind, actor_id, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(signal.id)
    .bind(signal.run_id)
    .bind(signal.name)
    .bind(signal.payload)
    .bind(signal.actor_kind)
    .bind(signal.actor_id)
    .bind(signal.reason)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The oldest signal `name` of a run not yet consumed.
pub async fn oldest_unconsumed(
    conn: &mut PgConnection,
    run_id: Uuid,
    name: &str,
) -> Result<Option<SignalRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, run_id, name, payload, actor_kind, actor_id, reason, received_at, consumed_at, consumed_step
         FROM vendorflow.signals
         WHERE run_id = $1 AND name = $2 AND consumed_at IS NULL
         ORDER BY received_at, id LIMIT 1",
    )
    .bind(run_id)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
}

/// The signals of a run, oldest first.
pub async fn list_for_run(
    conn: &mut PgConnection,
    run_id: Uuid,
) -> Result<Vec<SignalRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, run_id, name, payload, actor_kind, actor_id, reason, received_at, consumed_at, consumed_step
         FROM vendorflow.signals WHERE run_id = $1 ORDER BY received_at, id",
    )
    .bind(run_id)
    .fetch_all(&mut *conn)
    .await
}

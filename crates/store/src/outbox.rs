//! The transactional outbox. The engine only INSERTS, in the same transaction as the state
//! change an event describes (workers through the fenced record `runs::record`, operators'
//! actions here). Delivery belongs to the relay, which keeps its own tables keyed by `outbox.id`;
//! ids are UUIDv7, so ordering by id is ordering by creation.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// An outbox row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: Uuid,
    pub marketplace_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    pub event_type: String,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

/// An event to insert.
#[derive(Debug, Clone)]
pub struct NewOutboxEvent {
    pub id: Uuid,
    pub marketplace_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    pub event_type: String,
    pub payload: Value,
}

/// Inserts one event, in the caller's transaction.
pub async fn insert(conn: &mut PgConnection, event: &NewOutboxEvent) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO vendorflow.outbox (id, marketplace_id, run_id, event_type, payload)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(event.id)
    .bind(event.marketplace_id)
    .bind(event.run_id)
    .bind(&event.event_type)
    .bind(&event.payload)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The events written for a run, in order.
pub async fn list_for_run(
    conn: &mut PgConnection,
    run_id: Uuid,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, marketplace_id, run_id, event_type, payload, created_at
         FROM vendorflow.outbox WHERE run_id = $1 ORDER BY id",
    )
    .bind(run_id)
    .fetch_all(&mut *conn)
    .await
}

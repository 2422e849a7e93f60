//! The transactional outbox. The engine only INSERTS, in the same transaction as the state
//! change an event describes (workers through the fenced record `runs::record`, operators'
//! actions here). Delivery belongs to the relay, which keeps its own tables keyed by `outbox.id`;
//! ids are UUIDv7, so ordering by id is ordering by creation.
//!
//! Retention ([`delete_done`]) removes events that can never be sent again: fanned out, with no
//! delivery left (pending deliveries and dead letters keep their event; finished deliveries
//! leave by their own retention, `webhooks::delete_finished_deliveries`).

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

/// Deletes up to `limit` outbox events created more than `older_than_ms` ago that are done with:
/// fanned out by the relay (their `webhook_fanout` marker goes with them, ON DELETE CASCADE) and
/// with no delivery row left, so no pending delivery and no dead letter is ever lost. An event not
/// fanned out yet is kept whatever its age: it is still to be delivered. Returns how many.
///
/// Safe beside a running relay: the fan-out inserts an event's marker and its deliveries in one
/// transaction, so an event seen with a marker and no delivery gets none later; rows another
/// transaction holds are skipped.
pub async fn delete_done(
    conn: &mut PgConnection,
    older_than_ms: i64,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM vendorflow.outbox AS o
         USING (SELECT e.id FROM vendorflow.outbox AS e
                WHERE e.created_at < now() - $1 * interval '1 millisecond'
                  AND EXISTS (SELECT 1 FROM vendorflow.webhook_fanout AS f WHERE f.outbox_id = e.id)
                  AND NOT EXISTS (SELECT 1 FROM vendorflow.webhook_deliveries AS d
                                  WHERE d.outbox_id = e.id)
                LIMIT $2
                FOR UPDATE OF e SKIP LOCKED) AS old
         WHERE o.id = old.id",
    )
    .bind(older_than_ms)
    .bind(limit)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

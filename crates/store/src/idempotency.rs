//! Idempotency keys of the marketplace API.
//!
//! [`claim`] inserts the key inside the caller's transaction before any work is done. Because the
//! key is the primary key, a concurrent request with the same key blocks on the insert until the
//! first transaction ends: if it committed, the second sees the stored response and replays it;
//! if it rolled back, the second does the work itself. So concurrent duplicates create one run.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::StoreError;

/// What the caller must do with a request carrying an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new: do the work, then [`save_response`] in the same transaction.
    Proceed,
    /// The same request was answered before: send this response again.
    Replay {
        /// The stored HTTP status.
        status: u16,
        /// The stored JSON body.
        body: serde_json::Value,
    },
    /// The key was used for a different request (method, path or body).
    Mismatch,
}

/// The request an idempotency key is attached to.
#[derive(Debug, Clone, Copy)]
pub struct KeyedRequest<'a> {
    /// The marketplace the key belongs to (keys are per marketplace).
    pub marketplace_id: Uuid,
    /// The client's key.
    pub key: &'a str,
    /// The HTTP method.
    pub method: &'a str,
    /// The request path.
    pub path: &'a str,
    /// A hash of the canonical request body.
    pub request_hash: &'a [u8],
}

/// Claims `request.key` for this request inside the caller's transaction.
pub async fn claim(
    conn: &mut PgConnection,
    request: KeyedRequest<'_>,
) -> Result<Claim, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO vendorflow.idempotency_keys
             (marketplace_id, idempotency_key, request_method, request_path, request_hash)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (marketplace_id, idempotency_key) DO NOTHING",
    )
    .bind(request.marketplace_id)
    .bind(request.key)
    .bind(request.method)
    .bind(request.path)
    .bind(request.request_hash)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::Proceed);
    }
    let stored: (
        String,
        String,
        Vec<u8>,
        Option<i16>,
        Option<serde_json::Value>,
    ) = sqlx::query_as(
        "SELECT request_method, request_path, request_hash, response_status, response_body
             FROM vendorflow.idempotency_keys WHERE marketplace_id = $1 AND idempotency_key = $2",
    )
    .bind(request.marketplace_id)
    .bind(request.key)
    .fetch_one(&mut *conn)
    .await?;
    let (method, path, hash, status, body) = stored;
    if method != request.method || path != request.path || hash != request.request_hash {
        return Ok(Claim::Mismatch);
    }
    match (status, body) {
        (Some(status), Some(body)) => Ok(Claim::Replay {
            status: u16::try_from(status).unwrap_or(500),
            body,
        }),
        // A committed key always has its response: the response is saved in the transaction
        // that inserted the key. Reaching here means that rule was broken somewhere.
        _ => Err(StoreError::NotFound("stored idempotent response")),
    }
}

/// Saves the response of a claimed key, in the transaction that claimed it.
pub async fn save_response(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    key: &str,
    status: u16,
    body: &serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE vendorflow.idempotency_keys SET response_status = $3, response_body = $4
         WHERE marketplace_id = $1 AND idempotency_key = $2",
    )
    .bind(marketplace_id)
    .bind(key)
    .bind(i16::try_from(status).unwrap_or(500))
    .bind(body)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes up to `limit` keys created more than `older_than_ms` ago (retention: the API
/// promises a replay for a day); returns how many. Keys whose rows another transaction holds
/// are skipped, so the statement never waits and several schedulers may run it at once.
pub async fn delete_expired(
    conn: &mut PgConnection,
    older_than_ms: i64,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query(
        "DELETE FROM vendorflow.idempotency_keys AS k
         USING (SELECT marketplace_id, idempotency_key FROM vendorflow.idempotency_keys
                WHERE created_at < now() - $1 * interval '1 millisecond'
                LIMIT $2
                FOR UPDATE SKIP LOCKED) AS old
         WHERE k.marketplace_id = old.marketplace_id AND k.idempotency_key = old.idempotency_key",
    )
    .bind(older_than_ms)
    .bind(limit)
    .execute(conn)
    .await?;
    Ok(deleted.rows_affected())
}

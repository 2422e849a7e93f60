//! `Idempotency-Key` handling shared by every POST route (Stripe's rules): the same key and body
//! replays the stored answer, the same key with another body is 409, and concurrent duplicates
//! are serialised by the key's row so that one of them does the work.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::ApiError;

/// Claims `key` for (`path`, `body`) in the request's transaction. `Ok(None)`: do the work and
/// save the answer with `store::idempotency::save_response` in the same transaction.
/// `Ok(Some(response))`: send the stored answer again.
pub(crate) async fn claim(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    key: &str,
    path: &str,
    body: &Value,
) -> Result<Option<Response>, ApiError> {
    // serde_json keeps object keys sorted, so the text is a canonical form of the body.
    let request_hash = Sha256::digest(body.to_string().as_bytes());
    let claim = store::idempotency::claim(
        conn,
        store::idempotency::KeyedRequest {
            marketplace_id,
            key,
            method: "POST",
            path,
            request_hash: &request_hash,
        },
    )
    .await?;
    match claim {
        store::idempotency::Claim::Proceed => Ok(None),
        store::idempotency::Claim::Replay { status, body } => Ok(Some(replay(status, body))),
        store::idempotency::Claim::Mismatch => Err(ApiError::Conflict(
            "this Idempotency-Key was used with a different request".to_owned(),
        )),
    }
}

/// A stored answer, sent again with a header saying so.
fn replay(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

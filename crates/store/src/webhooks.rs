//! Outbound webhook delivery state: endpoints, the fan-out of outbox events to endpoints, and one
//! delivery row per (event, endpoint) with its attempts and dead letter.
//!
//! The engine writes events into `vendorflow.outbox` in its own transactions and never looks at
//! these tables. The relay (crate `webhooks`) calls [`fan_out`], [`claim_due`],
//! [`endpoint_signing_secrets`] and [`record_attempt`]; operators call [`create_endpoint`],
//! [`get_endpoint`], [`set_endpoint_enabled`], [`set_event_types`], [`delete_endpoint`],
//! [`rotate_secret`], [`list_deliveries`] and [`replay`]; the scheduler's retention calls
//! [`delete_finished_deliveries`].
//! Every admin function is scoped by the caller's marketplace id. Signing secrets are stored
//! encrypted through [`crate::secrets`] and are returned in clear only once, at creation or
//! rotation; during a rotation's overlap the previous secret is kept, encrypted, to sign too.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::secrets::{self, Keyring, SecretRef, SecretsError};

/// The id of a webhook endpoint.
pub type EndpointId = Uuid;

/// The owner table under which endpoint signing secrets are stored in `vendorflow.secrets`.
pub const SECRET_OWNER_TABLE: &str = "webhook_endpoints";
/// The name under which an endpoint's signing secret is stored.
pub const SECRET_NAME: &str = "signing_secret";
/// The name under which the secret replaced by a rotation is kept until its overlap ends.
pub const PREVIOUS_SECRET_NAME: &str = "previous_signing_secret";
/// The longest overlap a rotation may give the previous secret (a week).
pub const MAX_OVERLAP: Duration = Duration::from_secs(7 * 24 * 3600);
/// The overlap a rotation gives when none is asked (a day).
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// The longest endpoint URL accepted.
const MAX_URL_LEN: usize = 2048;
/// The most deliveries one page of [`list_deliveries`] returns.
pub const MAX_PAGE: u32 = 100;

/// Errors of the webhook store functions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookStoreError {
    /// The database answered with an error, or could not be reached.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Storing or reading the signing secret failed.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The endpoint URL is not acceptable (the reason, never the URL, which may hold a token).
    #[error("invalid webhook endpoint URL: {0}")]
    InvalidUrl(&'static str),
    /// The list of event types is not acceptable.
    #[error("invalid event types: {0}")]
    InvalidEventTypes(&'static str),
    /// The list names event types that vendorflow does not send (the names, in their order).
    #[error("unknown event types: {}", .0.join(", "))]
    UnknownEventTypes(Vec<String>),
    /// The rotation's overlap is longer than [`MAX_OVERLAP`].
    #[error("the overlap may be at most 7 days")]
    OverlapTooLong,
}

/// A delivery's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not delivered yet; due at `next_attempt_at`.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up (attempts exhausted, or the endpoint is gone or disabled): a dead letter.
    Dead,
}

impl DeliveryStatus {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    /// Parses a stored status.
    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        match s {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "dead" => Some(DeliveryStatus::Dead),
            _ => None,
        }
    }
}

/// An endpoint as stored (its secret is not here).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Endpoint {
    pub id: EndpointId,
    pub marketplace_id: Uuid,
    pub url: String,
    /// The event types it receives; `None` means all.
    pub event_types: Option<Vec<String>>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the signing secret was last rotated.
    pub secret_rotated_at: Option<DateTime<Utc>>,
    /// Until when deliveries are also signed with the secret the last rotation replaced.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

/// The columns of [`Endpoint`] (an overlap that has ended reads as none).
macro_rules! endpoint_columns {
    () => {
        "id, marketplace_id, url, event_types, enabled, disabled_reason, disabled_at, created_at,
         updated_at, secret_rotated_at,
         CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END
             AS previous_secret_expires_at"
    };
}

/// An endpoint just created: the only moment its signing secret is available in clear.
#[derive(Debug)]
pub struct CreatedEndpoint {
    /// The new endpoint's id.
    pub id: EndpointId,
    /// The signing secret (`whsec_...`), to show once to the marketplace.
    pub secret: SecretString,
}

fn validate_url(url: &str) -> Result<(), WebhookStoreError> {
    if url.len() > MAX_URL_LEN {
        return Err(WebhookStoreError::InvalidUrl(
            "it is longer than 2048 characters",
        ));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or(WebhookStoreError::InvalidUrl(
            "it must start with https:// or http://",
        ))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(WebhookStoreError::InvalidUrl("it has no host"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(WebhookStoreError::InvalidUrl(
            "it contains whitespace or control characters",
        ));
    }
    Ok(())
}

fn validate_event_types(event_types: Option<&[String]>) -> Result<(), WebhookStoreError> {
    if let Some(types) = event_types {
        if types.is_empty() {
            return Err(WebhookStoreError::InvalidEventTypes(
                "give at least one event type, or none at all for every type",
            ));
        }
        if types.iter().any(|t| t.trim().is_empty()) {
            return Err(WebhookStoreError::InvalidEventTypes(
                "an event type is blank",
            ));
        }
        let distinct: std::collections::BTreeSet<&String> = types.iter().collect();
        if distinct.len() != types.len() {
            return Err(WebhookStoreError::InvalidEventTypes(
                "an event type is listed twice",
            ));
        }
        let unknown = domain::webhook_events::unknown_types(types);
        if !unknown.is_empty() {
            return Err(WebhookStoreError::UnknownEventTypes(unknown));
        }
    }
    Ok(())
}

/// Creates an enabled endpoint for `marketplace_id` receiving `event_types` (`None`: all types)
/// with a fresh signing secret, stored encrypted. Runs in a transaction (a savepoint when `conn`
/// is already in one), so the endpoint never exists without its secret.
pub async fn create_endpoint(
    conn: &mut PgConnection,
    keyring: &Keyring,
    marketplace_id: Uuid,
    url: &str,
    event_types: Option<&[String]>,
) -> Result<CreatedEndpoint, WebhookStoreError> {
    validate_url(url)?;
    validate_event_types(event_types)?;
    let id = Uuid::now_v7();
    let secret = secrets::generate_webhook_secret();
    let mut tx = conn.begin().await?;
    sqlx::query(
        "INSERT INTO vendorflow.webhook_endpoints (id, marketplace_id, url, event_types)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(marketplace_id)
    .bind(url)
    .bind(event_types)
    .execute(&mut *tx)
    .await?;
    secrets::put(
        &mut tx,
        keyring,
        &SecretRef::new(SECRET_OWNER_TABLE, id, SECRET_NAME),
        &secret,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(endpoint_id = %id, %marketplace_id, "webhook endpoint created");
    Ok(CreatedEndpoint { id, secret })
}

/// The endpoints of a marketplace, oldest first.
pub async fn list_endpoints(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
) -> Result<Vec<Endpoint>, WebhookStoreError> {
    let rows = sqlx::query_as(concat!(
        "SELECT ",
        endpoint_columns!(),
        " FROM vendorflow.webhook_endpoints WHERE marketplace_id = $1 ORDER BY id"
    ))
    .bind(marketplace_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows)
}

/// One endpoint of `marketplace_id`.
pub async fn get_endpoint(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    endpoint_id: EndpointId,
) -> Result<Option<Endpoint>, WebhookStoreError> {
    let row = sqlx::query_as(concat!(
        "SELECT ",
        endpoint_columns!(),
        " FROM vendorflow.webhook_endpoints WHERE id = $1 AND marketplace_id = $2"
    ))
    .bind(endpoint_id)
    .bind(marketplace_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row)
}

/// Replaces the event types an endpoint of `marketplace_id` receives (`None`: every type);
/// true when it exists. Only events fanned out from now on follow the new filter.
pub async fn set_event_types(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    endpoint_id: EndpointId,
    event_types: Option<&[String]>,
) -> Result<bool, WebhookStoreError> {
    validate_event_types(event_types)?;
    let done = sqlx::query(
        "UPDATE vendorflow.webhook_endpoints SET event_types = $3, updated_at = now()
         WHERE id = $1 AND marketplace_id = $2",
    )
    .bind(endpoint_id)
    .bind(marketplace_id)
    .bind(event_types)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// What deleting an endpoint removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletedEndpoint {
    /// Deliveries removed with it that were still pending: they are never sent.
    pub pending: u64,
    /// Deliveries removed with it in all (delivered, dead letters and pending).
    pub deliveries: u64,
}

/// Deletes an endpoint of `marketplace_id` with its secrets and every delivery made to it
/// (pending ones are never sent; dead letters can no longer be replayed); `None` when there is no
/// such endpoint. One transaction (a savepoint inside the caller's).
pub async fn delete_endpoint(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    endpoint_id: EndpointId,
) -> Result<Option<DeletedEndpoint>, WebhookStoreError> {
    let mut tx = conn.begin().await?;
    let exists: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM vendorflow.webhook_endpoints WHERE id = $1 AND marketplace_id = $2
         FOR UPDATE",
    )
    .bind(endpoint_id)
    .bind(marketplace_id)
    .fetch_optional(&mut *tx)
    .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let (deliveries, pending): (i64, i64) = sqlx::query_as(
        "WITH gone AS (DELETE FROM vendorflow.webhook_deliveries WHERE endpoint_id = $1
                       RETURNING status)
         SELECT count(*), count(*) FILTER (WHERE status = 'pending') FROM gone",
    )
    .bind(endpoint_id)
    .fetch_one(&mut *tx)
    .await?;
    secrets::delete_owner(&mut tx, SECRET_OWNER_TABLE, endpoint_id).await?;
    sqlx::query("DELETE FROM vendorflow.webhook_endpoints WHERE id = $1")
        .bind(endpoint_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(%endpoint_id, %marketplace_id, "webhook endpoint deleted");
    Ok(Some(DeletedEndpoint {
        pending: u64::try_from(pending).unwrap_or(0),
        deliveries: u64::try_from(deliveries).unwrap_or(0),
    }))
}

/// A secret just rotated: the only moment the new secret is available in clear.
#[derive(Debug)]
pub struct RotatedSecret {
    /// The new signing secret (`whsec_...`), to show once.
    pub secret: SecretString,
    /// Until when deliveries are also signed with the previous secret; `None` for no overlap.
    pub previous_expires_at: Option<DateTime<Utc>>,
}

/// Gives an endpoint of `marketplace_id` a fresh signing secret. The previous one keeps signing
/// too (a second `v1,` entry in `webhook-signature`) for `overlap` (at most [`MAX_OVERLAP`];
/// zero ends it at once), so receivers can switch without losing a message. A rotation during an
/// overlap replaces the older secret: only the two latest ever sign. `None` when there is no such
/// endpoint. One transaction (a savepoint inside the caller's).
pub async fn rotate_secret(
    conn: &mut PgConnection,
    keyring: &Keyring,
    marketplace_id: Uuid,
    endpoint_id: EndpointId,
    overlap: Duration,
) -> Result<Option<RotatedSecret>, WebhookStoreError> {
    if overlap > MAX_OVERLAP {
        return Err(WebhookStoreError::OverlapTooLong);
    }
    let mut tx = conn.begin().await?;
    let expires: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
        "UPDATE vendorflow.webhook_endpoints
         SET previous_secret_expires_at = CASE WHEN $3 > 0
                 THEN now() + make_interval(secs => $3) END,
             secret_rotated_at = now(), updated_at = now()
         WHERE id = $1 AND marketplace_id = $2
         RETURNING previous_secret_expires_at",
    )
    .bind(endpoint_id)
    .bind(marketplace_id)
    .bind(overlap.as_secs_f64())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(previous_expires_at) = expires else {
        return Ok(None);
    };
    let current = SecretRef::new(SECRET_OWNER_TABLE, endpoint_id, SECRET_NAME);
    let previous = SecretRef::new(SECRET_OWNER_TABLE, endpoint_id, PREVIOUS_SECRET_NAME);
    match (
        previous_expires_at,
        secrets::get(&mut tx, keyring, &current).await?,
    ) {
        (Some(_), Some(old)) => {
            secrets::put(&mut tx, keyring, &previous, &old).await?;
        }
        _ => {
            secrets::delete(&mut tx, &previous).await?;
        }
    }
    let secret = secrets::generate_webhook_secret();
    secrets::put(&mut tx, keyring, &current, &secret).await?;
    tx.commit().await?;
    tracing::info!(%endpoint_id, %marketplace_id, "webhook endpoint secret rotated");
    Ok(Some(RotatedSecret {
        secret,
        previous_expires_at,
    }))
}

/// Ends a rotation's overlap now: from the next attempt on, only the current secret signs, and the
/// previous secret is deleted. True when an overlap was in progress.
pub async fn end_secret_overlap(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    endpoint_id: EndpointId,
) -> Result<bool, WebhookStoreError> {
    let mut tx = conn.begin().await?;
    let done = sqlx::query(
        "UPDATE vendorflow.webhook_endpoints
         SET previous_secret_expires_at = NULL, updated_at = now()
         WHERE id = $1 AND marketplace_id = $2 AND previous_secret_expires_at IS NOT NULL",
    )
    .bind(endpoint_id)
    .bind(marketplace_id)
    .execute(&mut *tx)
    .await?;
    secrets::delete(
        &mut tx,
        &SecretRef::new(SECRET_OWNER_TABLE, endpoint_id, PREVIOUS_SECRET_NAME),
    )
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

/// The secrets an endpoint's deliveries are signed with now: its current secret, then, during a
/// rotation's overlap, the previous one. Empty when it has no secret.
pub async fn endpoint_signing_secrets(
    conn: &mut PgConnection,
    keyring: &Keyring,
    endpoint_id: EndpointId,
) -> Result<Vec<SecretString>, WebhookStoreError> {
    let mut found = Vec::with_capacity(2);
    let Some(current) = endpoint_secret(conn, keyring, endpoint_id).await? else {
        return Ok(found);
    };
    found.push(current);
    let overlapping: Option<bool> = sqlx::query_scalar(
        "SELECT previous_secret_expires_at > now() FROM vendorflow.webhook_endpoints
         WHERE id = $1",
    )
    .bind(endpoint_id)
    .fetch_optional(&mut *conn)
    .await?
    .flatten();
    if overlapping == Some(true)
        && let Some(previous) = secrets::get(
            conn,
            keyring,
            &SecretRef::new(SECRET_OWNER_TABLE, endpoint_id, PREVIOUS_SECRET_NAME),
        )
        .await?
    {
        found.push(previous);
    }
    Ok(found)
}

/// Enables an endpoint of `marketplace_id`, or disables it with `reason`; true when it exists.
/// Deliveries still pending for a disabled endpoint become dead letters at the relay's next tick.
pub async fn set_endpoint_enabled(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    endpoint_id: EndpointId,
    enabled: bool,
    reason: &str,
) -> Result<bool, WebhookStoreError> {
    let done = sqlx::query(
        "UPDATE vendorflow.webhook_endpoints
         SET enabled = $3,
             disabled_reason = CASE WHEN $3 THEN NULL ELSE $4 END,
             disabled_at = CASE WHEN $3 THEN NULL ELSE coalesce(disabled_at, now()) END,
             updated_at = now()
         WHERE id = $1 AND marketplace_id = $2",
    )
    .bind(endpoint_id)
    .bind(marketplace_id)
    .bind(enabled)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Decrypts the signing secret of an endpoint (for the relay); `None` if it has none.
pub async fn endpoint_secret(
    conn: &mut PgConnection,
    keyring: &Keyring,
    endpoint_id: EndpointId,
) -> Result<Option<SecretString>, WebhookStoreError> {
    Ok(secrets::get(
        conn,
        keyring,
        &SecretRef::new(SECRET_OWNER_TABLE, endpoint_id, SECRET_NAME),
    )
    .await?)
}

/// A delivery as listed for an operator (no payload, no secret).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Delivery {
    pub id: Uuid,
    /// The outbox event, which is also the `webhook-id` the receiver sees.
    pub outbox_id: Uuid,
    pub endpoint_id: EndpointId,
    pub event_type: String,
    pub status: String,
    /// Attempts started so far.
    pub attempt: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<i64>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub endpoint_id: Option<EndpointId>,
    pub event_type: Option<String>,
    pub outbox_id: Option<Uuid>,
}

/// A page request: newest first, `limit` rows (at most [`MAX_PAGE`]) older than `before`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Page {
    pub limit: u32,
    /// The `next_cursor` of the previous page, if any.
    pub before: Option<Uuid>,
}

/// One page of deliveries.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryPage {
    pub items: Vec<Delivery>,
    /// Pass as `Page::before` to get the next (older) page; `None` on the last page.
    pub next_cursor: Option<Uuid>,
}

/// The deliveries of `marketplace_id` matching `filter`, newest first.
pub async fn list_deliveries(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    filter: &DeliveryFilter,
    page: Page,
) -> Result<DeliveryPage, WebhookStoreError> {
    let limit = page.limit.clamp(1, MAX_PAGE);
    let mut items: Vec<Delivery> = sqlx::query_as(
        "SELECT id, outbox_id, endpoint_id, event_type, status, attempt, next_attempt_at,
                last_attempt_at, last_status_code, last_error, last_duration_ms, delivered_at,
                created_at
         FROM vendorflow.webhook_deliveries
         WHERE marketplace_id = $1
           AND ($2::text IS NULL OR status = $2)
           AND ($3::uuid IS NULL OR endpoint_id = $3)
           AND ($4::text IS NULL OR event_type = $4)
           AND ($5::uuid IS NULL OR outbox_id = $5)
           AND ($6::uuid IS NULL OR id < $6)
         ORDER BY id DESC
         LIMIT $7",
    )
    .bind(marketplace_id)
    .bind(filter.status.map(DeliveryStatus::as_str))
    .bind(filter.endpoint_id)
    .bind(filter.event_type.as_deref())
    .bind(filter.outbox_id)
    .bind(page.before)
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *conn)
    .await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|d| d.id)
    } else {
        None
    };
    Ok(DeliveryPage { items, next_cursor })
}

/// One delivery of `marketplace_id`.
pub async fn get_delivery(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    delivery_id: Uuid,
) -> Result<Option<Delivery>, WebhookStoreError> {
    let row = sqlx::query_as(
        "SELECT id, outbox_id, endpoint_id, event_type, status, attempt, next_attempt_at,
                last_attempt_at, last_status_code, last_error, last_duration_ms, delivered_at,
                created_at
         FROM vendorflow.webhook_deliveries WHERE id = $1 AND marketplace_id = $2",
    )
    .bind(delivery_id)
    .bind(marketplace_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row)
}

/// Replays a dead (or delivered) delivery of `marketplace_id`: it becomes pending and due now with
/// a fresh attempt budget. The next send carries the same `webhook-id` with a fresh timestamp and
/// signature. False when there is no such delivery in this marketplace, when it is still pending,
/// or when its endpoint is disabled (enable the endpoint first).
pub async fn replay(
    conn: &mut PgConnection,
    delivery_id: Uuid,
    marketplace_id: Uuid,
) -> Result<bool, WebhookStoreError> {
    let done = sqlx::query(
        "UPDATE vendorflow.webhook_deliveries d
         SET status = 'pending', attempt = 0, next_attempt_at = now(), claim_token = NULL,
             delivered_at = NULL, updated_at = now()
         FROM vendorflow.webhook_endpoints e
         WHERE d.id = $1 AND d.marketplace_id = $2 AND d.status IN ('dead', 'delivered')
           AND e.id = d.endpoint_id AND e.enabled",
    )
    .bind(delivery_id)
    .bind(marketplace_id)
    .execute(&mut *conn)
    .await?;
    let replayed = done.rows_affected() > 0;
    if replayed {
        tracing::info!(%delivery_id, %marketplace_id, "webhook delivery replayed");
    }
    Ok(replayed)
}

// ----- The relay's statements. -----

/// What one fan-out pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanOutReport {
    /// Outbox events fanned out (including those with no matching endpoint).
    pub events: u64,
    /// Deliveries created.
    pub deliveries: u64,
}

#[derive(sqlx::FromRow)]
struct NewEvent {
    id: Uuid,
    marketplace_id: Option<Uuid>,
    event_type: String,
}

#[derive(sqlx::FromRow)]
struct ActiveEndpoint {
    id: Uuid,
    marketplace_id: Uuid,
    event_types: Option<Vec<String>>,
}

/// The smallest UUIDv7 made at `at` or later, to compare outbox ids with a point in time.
fn uuid_v7_floor(at: DateTime<Utc>) -> Uuid {
    let millis = u128::try_from(at.timestamp_millis()).unwrap_or(0);
    Uuid::from_u128(millis << 80)
}

/// Fans out up to `batch_size` outbox events that have not been fanned out yet: one pending
/// delivery, due now, per enabled endpoint of the event's marketplace that accepts its type, and a
/// marker row per event, all in one transaction. Events locked by another relay are skipped; the
/// primary key of the marker makes the fan-out of an event happen exactly once.
///
/// When the pass found fewer than `batch_size` events (the relay has caught up), the watermark
/// advances to the oldest event still not fanned out, but never past `lookback` ago: an event
/// whose transaction commits more than `lookback` after its id was made would be missed, so
/// `lookback` must exceed the longest transaction that writes to the outbox.
pub async fn fan_out(
    pool: &PgPool,
    batch_size: i64,
    lookback: Duration,
) -> Result<FanOutReport, sqlx::Error> {
    let batch_size = batch_size.max(1);
    let mut tx = pool.begin().await?;
    let events: Vec<NewEvent> = sqlx::query_as(
        "SELECT o.id, o.marketplace_id, o.event_type
         FROM vendorflow.outbox o
         WHERE o.id >= (SELECT fanout_watermark FROM vendorflow.webhook_relay_state)
           AND NOT EXISTS (SELECT 1 FROM vendorflow.webhook_fanout f WHERE f.outbox_id = o.id)
         ORDER BY o.id
         LIMIT $1
         FOR UPDATE OF o SKIP LOCKED",
    )
    .bind(batch_size)
    .fetch_all(&mut *tx)
    .await?;

    let mut report = FanOutReport::default();
    if !events.is_empty() {
        let mut marketplaces: Vec<Uuid> = events.iter().filter_map(|e| e.marketplace_id).collect();
        marketplaces.sort_unstable();
        marketplaces.dedup();
        let endpoints: Vec<ActiveEndpoint> = sqlx::query_as(
            "SELECT id, marketplace_id, event_types FROM vendorflow.webhook_endpoints
             WHERE enabled AND marketplace_id = ANY($1)",
        )
        .bind(&marketplaces)
        .fetch_all(&mut *tx)
        .await?;

        let mut ids = Vec::new();
        let mut outbox_ids = Vec::new();
        let mut endpoint_ids = Vec::new();
        let mut marketplace_ids = Vec::new();
        let mut event_types = Vec::new();
        let mut fanned = Vec::with_capacity(events.len());
        let mut counts = Vec::with_capacity(events.len());
        for event in &events {
            let mut count = 0i32;
            for endpoint in endpoints.iter().filter(|e| {
                Some(e.marketplace_id) == event.marketplace_id
                    && e.event_types
                        .as_ref()
                        .is_none_or(|types| types.contains(&event.event_type))
            }) {
                ids.push(Uuid::now_v7());
                outbox_ids.push(event.id);
                endpoint_ids.push(endpoint.id);
                marketplace_ids.push(endpoint.marketplace_id);
                event_types.push(event.event_type.clone());
                count += 1;
            }
            fanned.push(event.id);
            counts.push(count);
        }
        if !ids.is_empty() {
            let inserted = sqlx::query(
                "INSERT INTO vendorflow.webhook_deliveries
                     (id, outbox_id, endpoint_id, marketplace_id, event_type, next_attempt_at)
                 SELECT id, outbox_id, endpoint_id, marketplace_id, event_type, now()
                 FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[])
                      AS t(id, outbox_id, endpoint_id, marketplace_id, event_type)
                 ON CONFLICT (outbox_id, endpoint_id) DO NOTHING",
            )
            .bind(&ids)
            .bind(&outbox_ids)
            .bind(&endpoint_ids)
            .bind(&marketplace_ids)
            .bind(&event_types)
            .execute(&mut *tx)
            .await?;
            report.deliveries = inserted.rows_affected();
        }
        let marked = sqlx::query(
            "INSERT INTO vendorflow.webhook_fanout (outbox_id, deliveries)
             SELECT * FROM unnest($1::uuid[], $2::int[])
             ON CONFLICT (outbox_id) DO NOTHING",
        )
        .bind(&fanned)
        .bind(&counts)
        .execute(&mut *tx)
        .await?;
        report.events = marked.rows_affected();
    }
    tx.commit().await?;

    if (events.len() as i64) < batch_size {
        let floor = uuid_v7_floor(
            Utc::now() - chrono::Duration::from_std(lookback).unwrap_or(chrono::Duration::MAX),
        );
        // Every relay may advance the watermark; GREATEST keeps it monotonic, and a value one
        // relay computes is never too high for another, because an event once fanned out stays so.
        sqlx::query(
            "UPDATE vendorflow.webhook_relay_state s
             SET fanout_watermark = GREATEST(s.fanout_watermark, coalesce(
                     (SELECT o.id FROM vendorflow.outbox o
                      WHERE o.id >= s.fanout_watermark AND o.id < $1
                        AND NOT EXISTS (SELECT 1 FROM vendorflow.webhook_fanout f
                                        WHERE f.outbox_id = o.id)
                      ORDER BY o.id LIMIT 1),
                     $1)),
                 updated_at = now()",
        )
        .bind(floor)
        .execute(pool)
        .await?;
    }
    Ok(report)
}

/// A delivery claimed for one attempt, with what is needed to send it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub id: Uuid,
    /// Fences the record of this attempt: see [`record_attempt`].
    pub claim_token: Uuid,
    /// The number of this attempt (1 for the first).
    pub attempt: i32,
    pub outbox_id: Uuid,
    pub endpoint_id: EndpointId,
    pub marketplace_id: Uuid,
    pub url: String,
    pub event_type: String,
    pub payload: Value,
    /// When the event was written, the payload's `timestamp`.
    pub event_created_at: DateTime<Utc>,
}

/// Marks as dead the due pending deliveries that can no longer be attempted: those whose endpoint
/// is disabled, and those that used all `max_attempts` (a relay stopped during the last attempt).
/// Returns how many.
pub async fn sweep_undeliverable(pool: &PgPool, max_attempts: i32) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE vendorflow.webhook_deliveries d
         SET status = 'dead', next_attempt_at = NULL, claim_token = NULL, updated_at = now(),
             last_error = CASE WHEN e.enabled
                               THEN 'attempts exhausted: the relay stopped during the last attempt'
                               ELSE 'endpoint disabled' END
         FROM vendorflow.webhook_endpoints e
         WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND e.id = d.endpoint_id
           AND (NOT e.enabled OR d.attempt >= $1)",
    )
    .bind(max_attempts)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Claims up to `batch_size` due pending deliveries of enabled endpoints with fewer than
/// `max_attempts` attempts, in one short statement: each gets its attempt counted, a fresh claim
/// token, and a lease (its `next_attempt_at` moves `lease` ahead, so if this relay dies the
/// delivery becomes due again by itself). No transaction stays open while sending.
pub async fn claim_due(
    pool: &PgPool,
    batch_size: i64,
    lease: Duration,
    max_attempts: i32,
) -> Result<Vec<ClaimedDelivery>, sqlx::Error> {
    sqlx::query_as(
        "WITH due AS (
             SELECT d.id FROM vendorflow.webhook_deliveries d
             JOIN vendorflow.webhook_endpoints e ON e.id = d.endpoint_id
             WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND d.attempt < $3
               AND e.enabled
             ORDER BY d.next_attempt_at
             LIMIT $1
             FOR UPDATE OF d SKIP LOCKED)
         UPDATE vendorflow.webhook_deliveries d
         SET attempt = d.attempt + 1, claim_token = gen_random_uuid(),
             next_attempt_at = now() + make_interval(secs => $2), last_attempt_at = now(),
             updated_at = now()
         FROM due, vendorflow.outbox o, vendorflow.webhook_endpoints e
         WHERE d.id = due.id AND o.id = d.outbox_id AND e.id = d.endpoint_id
         RETURNING d.id, d.claim_token, d.attempt, d.outbox_id, d.endpoint_id, d.marketplace_id,
                   e.url, d.event_type, o.payload, o.created_at AS event_created_at",
    )
    .bind(batch_size.max(1))
    .bind(lease.as_secs_f64())
    .bind(max_attempts)
    .fetch_all(pool)
    .await
}

/// What became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttemptOutcome {
    /// A 2xx answer.
    Delivered,
    /// A failure with attempts left: try again after this long.
    Retry { after: Duration },
    /// A failure after the last attempt: a dead letter.
    Dead,
    /// The endpoint answered 410 Gone: the delivery is dead, the endpoint is disabled, and its
    /// other pending deliveries become dead letters too.
    Gone,
}

/// The record of one attempt.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery_id: Uuid,
    pub claim_token: Uuid,
    pub outcome: AttemptOutcome,
    /// The HTTP status, when an answer came.
    pub status_code: Option<u16>,
    /// What went wrong, in words without the URL, body or secret; `None` on success.
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// Records an attempt. Only the holder of the current claim can record: when the lease expired
/// and another relay claimed the delivery again, this changes nothing and returns false.
pub async fn record_attempt(pool: &PgPool, record: &AttemptRecord) -> Result<bool, sqlx::Error> {
    let status_code = record.status_code.map(i32::from);
    let mut tx = pool.begin().await?;
    let updated = match record.outcome {
        AttemptOutcome::Delivered => {
            sqlx::query(
                "UPDATE vendorflow.webhook_deliveries
                 SET status = 'delivered', delivered_at = now(), next_attempt_at = NULL,
                     claim_token = NULL, last_status_code = $3, last_error = NULL,
                     last_duration_ms = $4, updated_at = now()
                 WHERE id = $1 AND claim_token = $2 AND status = 'pending'",
            )
            .bind(record.delivery_id)
            .bind(record.claim_token)
            .bind(status_code)
            .bind(record.duration_ms)
            .execute(&mut *tx)
            .await?
        }
        AttemptOutcome::Retry { after } => {
            sqlx::query(
                "UPDATE vendorflow.webhook_deliveries
                 SET next_attempt_at = now() + make_interval(secs => $5), claim_token = NULL,
                     last_status_code = $3, last_error = $6, last_duration_ms = $4,
                     updated_at = now()
                 WHERE id = $1 AND claim_token = $2 AND status = 'pending'",
            )
            .bind(record.delivery_id)
            .bind(record.claim_token)
            .bind(status_code)
            .bind(record.duration_ms)
            .bind(after.as_secs_f64())
            .bind(record.error.as_deref())
            .execute(&mut *tx)
            .await?
        }
        AttemptOutcome::Dead | AttemptOutcome::Gone => {
            sqlx::query(
                "UPDATE vendorflow.webhook_deliveries
                 SET status = 'dead', next_attempt_at = NULL, claim_token = NULL,
                     last_status_code = $3, last_error = $5, last_duration_ms = $4,
                     updated_at = now()
                 WHERE id = $1 AND claim_token = $2 AND status = 'pending'",
            )
            .bind(record.delivery_id)
            .bind(record.claim_token)
            .bind(status_code)
            .bind(record.duration_ms)
            .bind(record.error.as_deref())
            .execute(&mut *tx)
            .await?
        }
    };
    let recorded = updated.rows_affected() > 0;
    if recorded && record.outcome == AttemptOutcome::Gone {
        sqlx::query(
            "UPDATE vendorflow.webhook_endpoints
             SET enabled = false, disabled_at = now(), updated_at = now(),
                 disabled_reason = 'the endpoint answered 410 Gone'
             WHERE id = (SELECT endpoint_id FROM vendorflow.webhook_deliveries WHERE id = $1)
               AND enabled",
        )
        .bind(record.delivery_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE vendorflow.webhook_deliveries
             SET status = 'dead', next_attempt_at = NULL, claim_token = NULL,
                 last_error = 'endpoint disabled: it answered 410 Gone', updated_at = now()
             WHERE status = 'pending'
               AND endpoint_id = (SELECT endpoint_id FROM vendorflow.webhook_deliveries WHERE id = $1)",
        )
        .bind(record.delivery_id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(recorded)
}

// ----- Retention. -----

/// Deletes up to `limit` deliveries that finished (delivered, or dead letters) and have not
/// changed for `older_than_ms`; returns how many. A pending delivery is never deleted: rows are
/// locked before they are deleted and a row replayed meanwhile (pending again) no longer matches,
/// and rows another transaction holds are skipped. Their outbox event leaves later, by the
/// outbox's own retention (`outbox::delete_done`).
pub async fn delete_finished_deliveries(
    conn: &mut PgConnection,
    older_than_ms: i64,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM vendorflow.webhook_deliveries AS d
         USING (SELECT id FROM vendorflow.webhook_deliveries
                WHERE status <> 'pending' AND updated_at < now() - $1 * interval '1 millisecond'
                LIMIT $2
                FOR UPDATE SKIP LOCKED) AS old
         WHERE d.id = old.id",
    )
    .bind(older_than_ms)
    .bind(limit)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uuid_floor_orders_before_every_v7_id_of_the_same_millisecond_and_after_older_ones() {
        let now = Utc::now();
        let id = Uuid::now_v7();
        assert!(uuid_v7_floor(now - chrono::Duration::milliseconds(1)) < id);
        assert!(uuid_v7_floor(now + chrono::Duration::seconds(1)) > id);
        assert_eq!(uuid_v7_floor(DateTime::<Utc>::UNIX_EPOCH), Uuid::nil());
    }

    #[test]
    fn endpoint_urls_must_be_http_with_a_host_and_no_whitespace() {
        assert!(validate_url("https://example.co.il/hooks").is_ok());
        assert!(validate_url("http://127.0.0.1:8080/x").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "https:///path",
            "https://a b",
            "example.com",
        ] {
            assert!(validate_url(bad).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(validate_url(&long).is_err());
    }

    #[test]
    fn an_empty_or_blank_event_type_list_is_refused() {
        assert!(validate_event_types(None).is_ok());
        assert!(validate_event_types(Some(&["vendor.ready".to_owned()])).is_ok());
        assert!(matches!(
            validate_event_types(Some(&["vendor.ready".to_owned(), "run.succeeded".to_owned()])),
            Err(WebhookStoreError::UnknownEventTypes(names)) if names == ["run.succeeded"]
        ));
        assert!(validate_event_types(Some(&[])).is_err());
        assert!(validate_event_types(Some(&[" ".to_owned()])).is_err());
    }
}

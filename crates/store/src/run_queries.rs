//! Read-only queries over runs for the API, the dashboard and the CLI: filtered, scoped to one
//! marketplace, and paginated by a keyset cursor so a page costs the same at a million runs.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::runs::RunRow;

/// Filters of a run listing; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only this workflow.
    pub workflow: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Only runs currently at this step.
    pub step: Option<String>,
    /// Only runs of this vendor.
    pub subject_id: Option<Uuid>,
    /// Only runs created at or after this time.
    pub created_from: Option<DateTime<Utc>>,
    /// Only runs created before this time.
    pub created_to: Option<DateTime<Utc>>,
    /// Only unfinished runs whose row has not changed for this many minutes ("stuck").
    pub stuck_minutes: Option<i32>,
}

/// Where a page starts: strictly after this (created_at, id) in newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunCursor {
    /// The creation time of the last run of the previous page.
    pub created_at: DateTime<Utc>,
    /// Its id, to break ties.
    pub id: Uuid,
}

impl RunCursor {
    /// The opaque text form given to clients.
    pub fn encode(&self) -> String {
        format!(
            "{}_{}",
            self.created_at.timestamp_micros(),
            self.id.simple()
        )
    }

    /// What every text form matches, and every text matching it decodes (the OpenAPI document
    /// gives it as the `cursor` parameters' pattern): microseconds since the epoch (at most 16
    /// digits, so always a representable time), `_`, and an id's 32 hex digits.
    pub const PATTERN: &'static str = "^-?[0-9]{1,16}_[0-9a-fA-F]{32}$";

    /// Parses the text form; `None` when it does not match [`RunCursor::PATTERN`].
    pub fn decode(text: &str) -> Option<RunCursor> {
        let (micros, id) = text.split_once('_')?;
        let digits = micros.strip_prefix('-').unwrap_or(micros);
        if !(1..=16).contains(&digits.len())
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || id.len() != 32
            || !id.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        let created_at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
        let id = Uuid::try_parse(id).ok()?;
        Some(RunCursor { created_at, id })
    }
}

/// The statement that lists runs, newest or oldest first: `$cmp` compares a row with the cursor
/// and `$order` sorts, the only two things that differ between the directions (each served by
/// the same indexes, scanned backward or forward).
macro_rules! list_sql {
    ($cmp:literal, $order:literal) => {
        concat!(
            "SELECT ",
            crate::runs::run_columns!(),
            " FROM vendorflow.runs r
         WHERE r.marketplace_id = $1
           AND ($2::text IS NULL OR r.workflow = $2)
           AND ($3::text IS NULL OR r.status = $3)
           AND ($4::text IS NULL OR r.step_name = $4)
           AND ($5::uuid IS NULL OR r.subject_id = $5)
           AND ($6::timestamptz IS NULL OR r.created_at >= $6)
           AND ($7::timestamptz IS NULL OR r.created_at < $7)
           AND ($8::int IS NULL OR (r.finished_at IS NULL
                AND r.updated_at < now() - make_interval(mins => $8)))
           AND ($9::timestamptz IS NULL OR (r.created_at, r.id) ",
            $cmp,
            " ($9, $10))
         ORDER BY ",
            $order,
            "
         LIMIT $11"
        )
    };
}

/// Lists a marketplace's runs, newest first, at most `limit`, after `cursor`.
pub async fn list(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    filter: &RunFilter,
    cursor: Option<RunCursor>,
    limit: i64,
) -> Result<Vec<RunRow>, sqlx::Error> {
    let sql = list_sql!("<", "r.created_at DESC, r.id DESC");
    list_with(conn, sql, marketplace_id, filter, cursor, limit).await
}

/// Lists a marketplace's runs oldest first, at most `limit`, after `cursor` (the mirror of
/// [`list`]).
pub async fn list_oldest_first(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    filter: &RunFilter,
    cursor: Option<RunCursor>,
    limit: i64,
) -> Result<Vec<RunRow>, sqlx::Error> {
    let sql = list_sql!(">", "r.created_at, r.id");
    list_with(conn, sql, marketplace_id, filter, cursor, limit).await
}

/// Runs `sql`, a `list_sql!` statement, with the filter's and the cursor's parameters.
async fn list_with(
    conn: &mut PgConnection,
    sql: &'static str,
    marketplace_id: Uuid,
    filter: &RunFilter,
    cursor: Option<RunCursor>,
    limit: i64,
) -> Result<Vec<RunRow>, sqlx::Error> {
    sqlx::query_as::<_, RunRow>(sql)
        .bind(marketplace_id)
        .bind(&filter.workflow)
        .bind(&filter.status)
        .bind(&filter.step)
        .bind(filter.subject_id)
        .bind(filter.created_from)
        .bind(filter.created_to)
        .bind(filter.stuck_minutes)
        .bind(cursor.map(|cursor| cursor.created_at))
        .bind(cursor.map(|cursor| cursor.id))
        .bind(limit)
        .fetch_all(conn)
        .await
}

/// Counts a marketplace's runs per status under the same filter (without the status filter).
pub async fn count_by_status(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    filter: &RunFilter,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.status, count(*) FROM vendorflow.runs r
         WHERE r.marketplace_id = $1
           AND ($2::text IS NULL OR r.workflow = $2)
           AND ($3::text IS NULL OR r.step_name = $3)
           AND ($4::uuid IS NULL OR r.subject_id = $4)
           AND ($5::timestamptz IS NULL OR r.created_at >= $5)
           AND ($6::timestamptz IS NULL OR r.created_at < $6)
           AND ($7::int IS NULL OR (r.finished_at IS NULL
                AND r.updated_at < now() - make_interval(mins => $7)))
         GROUP BY r.status ORDER BY r.status",
    )
    .bind(marketplace_id)
    .bind(&filter.workflow)
    .bind(&filter.step)
    .bind(filter.subject_id)
    .bind(filter.created_from)
    .bind(filter.created_to)
    .bind(filter.stuck_minutes)
    .fetch_all(conn)
    .await
}

/// Finds one run of a marketplace; a run of another marketplace is not found.
pub async fn find(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    id: Uuid,
) -> Result<Option<RunRow>, sqlx::Error> {
    sqlx::query_as::<_, RunRow>(concat!(
        "SELECT ",
        crate::runs::run_columns!(),
        " FROM vendorflow.runs r WHERE r.id = $1 AND r.marketplace_id = $2"
    ))
    .bind(id)
    .bind(marketplace_id)
    .fetch_optional(conn)
    .await
}

/// A run that holds an order (a charge's `order_id`, a document's `reference`), with its key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRun {
    /// The run.
    #[sqlx(flatten)]
    pub run: RunRow,
    /// The order's key.
    pub order_key: String,
}

/// The runs of `workflow` that hold orders of one vendor of a marketplace, newest first, at most
/// `limit`, strictly after `cursor` (over `runs_subject`).
pub async fn list_orders(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    vendor_id: Uuid,
    workflow: &str,
    cursor: Option<RunCursor>,
    limit: i64,
) -> Result<Vec<OrderRun>, sqlx::Error> {
    sqlx::query_as::<_, OrderRun>(concat!(
        "SELECT ",
        crate::runs::run_columns!(),
        ", r.order_key FROM vendorflow.runs r
         WHERE r.subject_id = $1 AND r.marketplace_id = $2 AND r.workflow = $3
           AND r.order_key IS NOT NULL
           AND ($4::timestamptz IS NULL OR (r.created_at, r.id) < ($4, $5))
         ORDER BY r.created_at DESC, r.id DESC
         LIMIT $6"
    ))
    .bind(vendor_id)
    .bind(marketplace_id)
    .bind(workflow)
    .bind(cursor.map(|cursor| cursor.created_at))
    .bind(cursor.map(|cursor| cursor.id))
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The run of `workflow` that holds the order `order_key` of one vendor of a marketplace (over
/// the unique `runs_order_key`).
pub async fn find_order(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    vendor_id: Uuid,
    workflow: &str,
    order_key: &str,
) -> Result<Option<OrderRun>, sqlx::Error> {
    sqlx::query_as::<_, OrderRun>(concat!(
        "SELECT ",
        crate::runs::run_columns!(),
        ", r.order_key FROM vendorflow.runs r
         WHERE r.marketplace_id = $1 AND r.subject_id = $2 AND r.workflow = $3
           AND r.order_key = $4"
    ))
    .bind(marketplace_id)
    .bind(vendor_id)
    .bind(workflow)
    .bind(order_key)
    .fetch_optional(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let cursor = RunCursor {
            created_at: DateTime::from_timestamp_micros(1_763_000_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(RunCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(RunCursor::decode("nonsense"), None);
        assert_eq!(RunCursor::decode("12_notauuid"), None);
        // What the pattern admits decodes, at its limits too; what it refuses does not.
        let max = format!("-9999999999999999_{}", "F".repeat(32));
        assert!(RunCursor::decode(&max).is_some());
        assert!(RunCursor::decode(&format!("9999999999999999_{}", "0".repeat(32))).is_some());
        assert_eq!(RunCursor::decode(&format!("+1_{}", "0".repeat(32))), None);
        assert_eq!(
            RunCursor::decode("1_67e55044-10b1-426f-9247-bb680e5fe0c8"),
            None,
            "a hyphenated id is not the cursor's form"
        );
    }
}

//! What the operators' dashboard and admin API read and record beyond the engine's tables: the
//! append-only audit log, dashboard sessions, and listings scoped to one marketplace (vendors, a
//! vendor's charges and documents, dead letters per endpoint). Runs are listed by
//! `run_queries`, in both directions.
//!
//! Sessions are stored by the SHA-256 of their id (hashed by the caller); nothing here holds a
//! bearer token or a secret value.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::provider_records::{DocumentRecord, PaymentRecord};

// ----- Audit log. -----

/// One audit entry to append.
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    pub marketplace_id: Uuid,
    /// The token the operator acted with (the dashboard and the admin API); `None` at the
    /// command line.
    pub token_id: Option<Uuid>,
    /// Who acted, by name: required at the command line; for a token, `None` records the
    /// token's name.
    pub actor: Option<&'a str>,
    /// `viewer` or `operator`.
    pub role: &'a str,
    /// `dashboard`, `api` or `cli`.
    pub channel: &'a str,
    /// What was done, e.g. `resume`, `retry_now`, `supply_api_keys`, `replay_delivery`.
    pub action: &'a str,
    /// `run`, `vendor`, `delivery` or `session`.
    pub target_kind: &'a str,
    pub target_id: Option<Uuid>,
    pub reason: Option<&'a str>,
    /// `ok` or `refused`.
    pub result: &'a str,
    pub detail: Option<&'a str>,
    /// Non-secret details.
    pub data: Option<Value>,
}

/// An audit entry as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The token acted with; `None` for the command line.
    pub token_id: Option<Uuid>,
    /// Who acted, by name (the token's name, or the command line's actor); `None` only for an
    /// unnamed token.
    pub actor: Option<String>,
    pub role: String,
    pub channel: String,
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<Uuid>,
    pub reason: Option<String>,
    pub result: String,
    pub detail: Option<String>,
    pub data: Option<Value>,
}

/// Appends an audit entry and returns its id. An entry made with a token and no `actor` records
/// the token's name as it is now, so the log keeps saying who acted.
pub async fn append_audit(
    conn: &mut PgConnection,
    entry: &NewAuditEntry<'_>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO vendorflow.admin_audit
            (marketplace_id, token_id, actor, role, channel, action, target_kind, target_id,
             reason, result, detail, data)
         VALUES ($1, $2,
                 COALESCE($12, (SELECT NULLIF(name, '') FROM vendorflow.api_tokens WHERE id = $2)),
                 $3, $4, $5, $6, $7, $8, $9, $10, $11)
         RETURNING id",
    )
    .bind(entry.marketplace_id)
    .bind(entry.token_id)
    .bind(entry.role)
    .bind(entry.channel)
    .bind(entry.action)
    .bind(entry.target_kind)
    .bind(entry.target_id)
    .bind(entry.reason)
    .bind(entry.result)
    .bind(entry.detail)
    .bind(&entry.data)
    .bind(entry.actor)
    .fetch_one(&mut *conn)
    .await
}

/// Which audit entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries about this run, vendor or delivery.
    pub target_id: Option<Uuid>,
    /// Only this action.
    pub action: Option<String>,
}

/// A marketplace's audit entries, newest first, at most `limit`, older than entry `before`. An
/// entry written before actors were recorded names its token's current name.
pub async fn list_audit(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    filter: &AuditFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.id, a.at, a.token_id, COALESCE(a.actor, NULLIF(t.name, '')) AS actor, a.role,
                a.channel, a.action, a.target_kind, a.target_id, a.reason, a.result, a.detail,
                a.data
         FROM vendorflow.admin_audit a
         LEFT JOIN vendorflow.api_tokens t ON t.id = a.token_id
         WHERE a.marketplace_id = $1
           AND ($2::uuid IS NULL OR a.target_id = $2)
           AND ($3::text IS NULL OR a.action = $3)
           AND ($4::bigint IS NULL OR a.id < $4)
         ORDER BY a.id DESC
         LIMIT $5",
    )
    .bind(marketplace_id)
    .bind(filter.target_id)
    .bind(filter.action.as_deref())
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
}

// ----- Dashboard sessions. -----

/// A session to create.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    /// SHA-256 of the session id the cookie carries.
    pub id_hash: &'a [u8],
    pub token_id: Uuid,
    pub marketplace_id: Uuid,
    /// `viewer` or `operator`.
    pub role: &'a str,
    pub csrf_token: &'a str,
    /// How long the session lasts, in seconds.
    pub ttl_seconds: i64,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    pub token_id: Uuid,
    /// The token's name (empty when it has none).
    pub token_name: String,
    pub marketplace_id: Uuid,
    pub role: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// Creates a session.
pub async fn create_session(
    conn: &mut PgConnection,
    session: &NewSession<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO vendorflow.admin_sessions
            (id_hash, token_id, marketplace_id, role, csrf_token, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
    )
    .bind(session.id_hash)
    .bind(session.token_id)
    .bind(session.marketplace_id)
    .bind(session.role)
    .bind(session.csrf_token)
    .bind(session.ttl_seconds as f64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The session with this id hash, if it has not expired and its token is not revoked.
pub async fn find_session(
    conn: &mut PgConnection,
    id_hash: &[u8],
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.token_id, t.name AS token_name, s.marketplace_id, s.role, s.csrf_token,
                s.expires_at
         FROM vendorflow.admin_sessions s
         JOIN vendorflow.api_tokens t ON t.id = s.token_id
         WHERE s.id_hash = $1 AND s.expires_at > now() AND t.revoked_at IS NULL",
    )
    .bind(id_hash)
    .fetch_optional(&mut *conn)
    .await
}

/// Deletes a session (sign-out); true when it existed.
pub async fn delete_session(conn: &mut PgConnection, id_hash: &[u8]) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM vendorflow.admin_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes expired sessions; returns how many.
pub async fn delete_expired_sessions(conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM vendorflow.admin_sessions WHERE expires_at <= now()")
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

// ----- Vendors. -----

/// Which vendors to list.
#[derive(Debug, Clone, Default)]
pub struct VendorFilter {
    /// An external id or corporate number (exact), or part of the legal name.
    pub search: Option<String>,
    /// Only this onboarding state.
    pub onboarding_state: Option<String>,
    /// Only vendors in this state (a `domain::vendor_state::VendorState` name).
    pub state: Option<String>,
}

/// A vendor as the vendors list shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct VendorSummary {
    pub id: Uuid,
    pub external_id: String,
    pub legal_name: String,
    pub mode: String,
    pub onboarding_state: String,
    pub provider_company_id: Option<i64>,
    /// From the provider account, when the steps recorded one.
    pub keys_state: Option<String>,
    pub terminal_state: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The latest onboarding run's status, step and reason, which the vendor's state follows.
    pub run_status: Option<String>,
    pub run_step: Option<String>,
    pub run_status_reason: Option<String>,
}

/// Where a vendors page starts: strictly after this (created_at, id) in newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorCursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

/// A marketplace's vendors, newest first, at most `limit`, after `cursor`.
pub async fn list_vendors(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    filter: &VendorFilter,
    cursor: Option<VendorCursor>,
    limit: i64,
) -> Result<Vec<VendorSummary>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT v.id, v.external_id, v.legal_name, v.mode, v.onboarding_state,
                v.provider_company_id, a.keys_state, a.terminal_state, v.created_at,
                r.status AS run_status, r.step_name AS run_step, r.status_reason AS run_status_reason
         FROM vendorflow.vendors v
         LEFT JOIN vendorflow.vendor_provider_accounts a ON a.vendor_id = v.id",
        crate::vendors::latest_onboarding_joins!(),
        "WHERE v.marketplace_id = $1
           AND ($2::text IS NULL OR v.external_id = $2 OR v.corporate_number = $2
                OR v.legal_name ILIKE '%' || replace(replace(replace($2, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%')
           AND ($3::text IS NULL OR v.onboarding_state = $3)
           AND ($4::timestamptz IS NULL OR (v.created_at, v.id) < ($4, $5))
           AND ($7::text IS NULL OR s.state = $7)
         ORDER BY v.created_at DESC, v.id DESC
         LIMIT $6",
    ))
    .bind(marketplace_id)
    .bind(filter.search.as_deref())
    .bind(filter.onboarding_state.as_deref())
    .bind(cursor.map(|c| c.created_at))
    .bind(cursor.map(|c| c.id))
    .bind(limit)
    .bind(filter.state.as_deref())
    .fetch_all(&mut *conn)
    .await
}

/// The external id and legal name of each of `ids` that belongs to the marketplace.
pub async fn vendor_labels(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, external_id, legal_name FROM vendorflow.vendors
         WHERE marketplace_id = $1 AND id = ANY($2)",
    )
    .bind(marketplace_id)
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
}

/// A vendor's charges, newest first, at most `limit`.
pub async fn payments_for_vendor(
    conn: &mut PgConnection,
    vendor_id: Uuid,
    limit: i64,
) -> Result<Vec<PaymentRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, vendor_id, run_id, order_id, provider_company_id, provider_payment_id, approved,
                amount_agorot, auth_number, card_last4, decline_code, decline_description,
                provider_document_id, created_at
         FROM vendorflow.vendor_payments WHERE vendor_id = $1
         ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(vendor_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
}

/// A vendor's documents, newest first, at most `limit`.
pub async fn documents_for_vendor(
    conn: &mut PgConnection,
    vendor_id: Uuid,
    limit: i64,
) -> Result<Vec<DocumentRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, vendor_id, run_id, source, reference, provider_company_id, provider_document_id,
                document_number, document_type, total_agorot, download_url, created_at
         FROM vendorflow.vendor_documents WHERE vendor_id = $1
         ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(vendor_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
}

// ----- Webhooks. -----

/// How many deliveries of each endpoint of the marketplace are pending and dead. Delivered ones
/// are not counted: only these two sets have partial indexes, so the count stays cheap.
pub async fn delivery_backlog(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
) -> Result<Vec<(Uuid, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT e.id,
                (SELECT count(*) FROM vendorflow.webhook_deliveries d
                  WHERE d.endpoint_id = e.id AND d.status = 'pending'),
                (SELECT count(*) FROM vendorflow.webhook_deliveries d
                  WHERE d.marketplace_id = $1 AND d.endpoint_id = e.id AND d.status = 'dead')
         FROM vendorflow.webhook_endpoints e
         WHERE e.marketplace_id = $1
         ORDER BY e.id",
    )
    .bind(marketplace_id)
    .fetch_all(&mut *conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{marketplaces, tokens};

    fn entry<'a>(marketplace_id: Uuid, channel: &'a str) -> NewAuditEntry<'a> {
        NewAuditEntry {
            marketplace_id,
            token_id: None,
            actor: None,
            role: "operator",
            channel,
            action: "resume",
            target_kind: "run",
            target_id: Some(Uuid::now_v7()),
            reason: Some("keys entered"),
            result: "ok",
            detail: Some("the run is now pending"),
            data: None,
        }
    }

    #[sqlx::test(migrations = "../../migrations")]
    async fn every_entry_names_who_acted_a_token_by_its_name_the_command_line_by_its_actor(
        pool: sqlx::PgPool,
    ) {
        let mut conn = pool.acquire().await.unwrap();
        let market = marketplaces::insert(&mut conn, "m").await.unwrap();
        let dana = tokens::create(&mut conn, market.id, tokens::Role::Operator, "dana")
            .await
            .unwrap();
        let unnamed = tokens::create(&mut conn, market.id, tokens::Role::Operator, "")
            .await
            .unwrap();

        let by_token = NewAuditEntry {
            token_id: Some(dana.id),
            ..entry(market.id, "dashboard")
        };
        append_audit(&mut conn, &by_token).await.unwrap();
        let by_unnamed = NewAuditEntry {
            token_id: Some(unnamed.id),
            ..entry(market.id, "api")
        };
        append_audit(&mut conn, &by_unnamed).await.unwrap();
        let at_the_cli = NewAuditEntry {
            actor: Some("avi"),
            ..entry(market.id, "cli")
        };
        append_audit(&mut conn, &at_the_cli).await.unwrap();

        let rows = list_audit(&mut conn, market.id, &AuditFilter::default(), None, 10)
            .await
            .unwrap();
        let who: Vec<(Option<&str>, Option<Uuid>, &str)> = rows
            .iter()
            .map(|row| (row.actor.as_deref(), row.token_id, row.channel.as_str()))
            .collect();
        assert_eq!(
            who,
            vec![
                (Some("avi"), None, "cli"),
                (None, Some(unnamed.id), "api"),
                (Some("dana"), Some(dana.id), "dashboard"),
            ]
        );
    }

    #[sqlx::test(migrations = "../../migrations")]
    async fn the_database_refuses_an_entry_that_does_not_say_who_acted(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let market = marketplaces::insert(&mut conn, "m").await.unwrap();
        // The command line without an actor, and a dashboard entry without a token.
        assert!(
            append_audit(&mut conn, &entry(market.id, "cli"))
                .await
                .is_err()
        );
        let blank = NewAuditEntry {
            actor: Some("  "),
            ..entry(market.id, "cli")
        };
        assert!(append_audit(&mut conn, &blank).await.is_err());
        assert!(
            append_audit(&mut conn, &entry(market.id, "dashboard"))
                .await
                .is_err()
        );
    }
}

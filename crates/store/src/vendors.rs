//! Vendors: a marketplace's sellers, with their validated, non-secret fields.
//!
//! The API maps a parsed `domain::vendor::VendorApplication` into [`NewVendor`]; this module
//! stores plain values so that the database keeps no knowledge of parsing rules. Bank account
//! numbers and provider keys never enter this table: only the last digits and whether the bank's
//! own check rule was applied.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::StoreError;

/// A vendor to insert, already validated by the domain parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVendor {
    /// The marketplace the vendor belongs to.
    pub marketplace_id: Uuid,
    /// The marketplace's own id for this vendor (unique per marketplace).
    pub external_id: String,
    /// The legal name, trimmed.
    pub legal_name: String,
    /// The corporate number or ID, nine digits.
    pub corporate_number: String,
    /// One of `exempt_dealer`, `licensed_dealer`, `company`, `nonprofit`, `partnership`.
    pub business_type: String,
    /// The e-mail address.
    pub email: String,
    /// The phone number in E.164 (`+972…`).
    pub phone_e164: String,
    /// `clearing` or `documents_only`.
    pub mode: String,
    /// For clearing vendors: whether the bank's own check rule was applied (`false` = no known rule).
    pub bank_account_checked: Option<bool>,
    /// For clearing vendors: the last digits of the account, for display.
    pub bank_account_last4: Option<String>,
}

/// A vendor as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Vendor {
    /// The vendor's id.
    pub id: Uuid,
    /// The marketplace it belongs to.
    pub marketplace_id: Uuid,
    /// The marketplace's own id for it.
    pub external_id: String,
    /// Its legal name.
    pub legal_name: String,
    /// Its corporate number or ID.
    pub corporate_number: String,
    /// Its business type's wire name.
    pub business_type: String,
    /// Its e-mail address.
    pub email: String,
    /// Its phone in E.164.
    pub phone_e164: String,
    /// `clearing` or `documents_only`.
    pub mode: String,
    /// Whether the bank rule was applied (clearing vendors only).
    pub bank_account_checked: Option<bool>,
    /// The account's last digits (clearing vendors only).
    pub bank_account_last4: Option<String>,
    /// Where onboarding stands: `pending`, `onboarding`, `ready`, `paused`, `failed`.
    pub onboarding_state: String,
    /// The vendor's organization id at the provider, once created.
    pub provider_company_id: Option<i64>,
    /// When the vendor was first stored.
    pub created_at: DateTime<Utc>,
    /// When the vendor row last changed.
    pub updated_at: DateTime<Utc>,
}

/// The columns of [`Vendor`], as a literal so statements stay `&'static str` (sqlx 0.9 refuses
/// dynamically built SQL unless asserted safe).
macro_rules! vendor_columns {
    () => {
        "id, marketplace_id, external_id, legal_name, corporate_number, business_type, \
         email, phone_e164, mode, bank_account_checked, bank_account_last4, onboarding_state, \
         provider_company_id, created_at, updated_at"
    };
}

/// Inserts a vendor and returns it. A second vendor with the same external id in the same
/// marketplace is a [`StoreError::Conflict`] on `vendor_external_id_unique`.
pub async fn insert(conn: &mut PgConnection, vendor: &NewVendor) -> Result<Vendor, StoreError> {
    let sql = concat!(
        "INSERT INTO vendorflow.vendors (id, marketplace_id, external_id, legal_name, corporate_number,
             business_type, email, phone_e164, mode, bank_account_checked, bank_account_last4)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         RETURNING ",
        vendor_columns!()
    );
    let stored = sqlx::query_as::<_, Vendor>(sql)
        .bind(Uuid::now_v7())
        .bind(vendor.marketplace_id)
        .bind(&vendor.external_id)
        .bind(&vendor.legal_name)
        .bind(&vendor.corporate_number)
        .bind(&vendor.business_type)
        .bind(&vendor.email)
        .bind(&vendor.phone_e164)
        .bind(&vendor.mode)
        .bind(vendor.bank_account_checked)
        .bind(&vendor.bank_account_last4)
        .fetch_one(conn)
        .await
        .map_err(StoreError::from_insert)?;
    Ok(stored)
}

/// Finds a vendor by id within a marketplace: a vendor of another marketplace is not found.
pub async fn find(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    id: Uuid,
) -> Result<Option<Vendor>, StoreError> {
    let sql = concat!(
        "SELECT ",
        vendor_columns!(),
        " FROM vendorflow.vendors WHERE marketplace_id = $1 AND id = $2"
    );
    let found = sqlx::query_as::<_, Vendor>(sql)
        .bind(marketplace_id)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(found)
}

/// Finds a vendor by the marketplace's external id.
pub async fn find_by_external_id(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    external_id: &str,
) -> Result<Option<Vendor>, StoreError> {
    let sql = concat!(
        "SELECT ",
        vendor_columns!(),
        " FROM vendorflow.vendors WHERE marketplace_id = $1 AND external_id = $2"
    );
    let found = sqlx::query_as::<_, Vendor>(sql)
        .bind(marketplace_id)
        .bind(external_id)
        .fetch_optional(conn)
        .await?;
    Ok(found)
}

/// Takes a transaction-scoped advisory lock on (`marketplace_id`, `corporate_number`): two
/// transactions onboarding the same number in the same marketplace run one after the other, so
/// the second sees the first's vendor in [`find_by_corporate_number`]. Released at commit or
/// rollback; `conn` must be inside a transaction.
pub async fn lock_corporate_number(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    corporate_number: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(
             hashtextextended('vendorflow.vendors.corporate_number:' || $1::text || ':' || $2, 0))",
    )
    .bind(marketplace_id)
    .bind(corporate_number)
    .execute(conn)
    .await?;
    Ok(())
}

/// The oldest vendor of a marketplace with this corporate number, if any.
pub async fn find_by_corporate_number(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    corporate_number: &str,
) -> Result<Option<Vendor>, StoreError> {
    let sql = concat!(
        "SELECT ",
        vendor_columns!(),
        " FROM vendorflow.vendors WHERE marketplace_id = $1 AND corporate_number = $2
          ORDER BY created_at, id LIMIT 1"
    );
    let found = sqlx::query_as::<_, Vendor>(sql)
        .bind(marketplace_id)
        .bind(corporate_number)
        .fetch_optional(conn)
        .await?;
    Ok(found)
}

/// Sets a vendor's onboarding state.
pub async fn set_onboarding_state(
    conn: &mut PgConnection,
    id: Uuid,
    state: &str,
) -> Result<(), StoreError> {
    let result = sqlx::query(
        "UPDATE vendorflow.vendors SET onboarding_state = $2, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .execute(conn)
    .await?;
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound("vendor"));
    }
    Ok(())
}

/// A vendor with the facts of its latest onboarding run, from which the domain decides its state
/// (`domain::vendor_state`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VendorRead {
    /// The vendor.
    #[sqlx(flatten)]
    pub vendor: Vendor,
    /// Its latest onboarding run, if any.
    pub run_id: Option<Uuid>,
    /// That run's status.
    pub run_status: Option<String>,
    /// The step it is at.
    pub run_step: Option<String>,
    /// Why it is paused or failed.
    pub run_status_reason: Option<String>,
}

/// Filters of a vendor listing; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct VendorFilter {
    /// Only the vendor with this external id.
    pub external_id: Option<String>,
    /// Only vendors in this state (a `domain::vendor_state::VendorState` name).
    pub state: Option<String>,
    /// Only `clearing` or `documents_only` vendors.
    pub mode: Option<String>,
    /// Only vendors created at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Only vendors created before this time.
    pub created_before: Option<DateTime<Utc>>,
}

/// The joins that add to a vendor `v` its latest onboarding run `r` (`r.id`, `r.status`,
/// `r.step_name`, `r.status_reason`) and its state `s.state`: the state
/// `domain::vendor_state::vendor_state` decides, mirrored in SQL so that listings can filter on
/// it (the store's tests check that both agree on every combination, and that the workflow and
/// step named here are the domain's).
macro_rules! latest_onboarding_joins {
    () => {
        " LEFT JOIN LATERAL (
             SELECT r.id, r.status, r.step_name, r.status_reason FROM vendorflow.runs r
             WHERE r.subject_id = v.id AND r.workflow = 'vendor_onboarding'
             ORDER BY r.created_at DESC, r.id DESC LIMIT 1
         ) r ON true
         CROSS JOIN LATERAL (SELECT CASE
             WHEN v.onboarding_state = 'ready' THEN 'ready'
             WHEN r.status IS NULL THEN 'onboarding'
             WHEN r.status = 'succeeded' THEN 'ready'
             WHEN r.status = 'waiting' AND r.step_name = 'await_terminal_approval'
                 THEN 'awaiting_approval'
             WHEN r.status = 'paused' THEN 'action_required'
             WHEN r.status = 'failed' THEN 'failed'
             WHEN r.status = 'cancelled' THEN 'cancelled'
             ELSE 'onboarding' END AS state) s "
    };
}
pub(crate) use latest_onboarding_joins;

/// The statement of a vendor with its latest onboarding run, filtered by `$where`.
macro_rules! vendor_read_sql {
    ($where:literal) => {
        concat!(
            "SELECT v.id, v.marketplace_id, v.external_id, v.legal_name, v.corporate_number,
                    v.business_type, v.email, v.phone_e164, v.mode, v.bank_account_checked,
                    v.bank_account_last4, v.onboarding_state, v.provider_company_id, v.created_at,
                    v.updated_at, r.id AS run_id, r.status AS run_status, r.step_name AS run_step,
                    r.status_reason AS run_status_reason
             FROM vendorflow.vendors v",
            latest_onboarding_joins!(),
            " WHERE ",
            $where
        )
    };
}

/// Finds a vendor of a marketplace with its latest onboarding run.
pub async fn find_read(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    id: Uuid,
) -> Result<Option<VendorRead>, StoreError> {
    let sql = vendor_read_sql!("v.marketplace_id = $1 AND v.id = $2");
    let found = sqlx::query_as::<_, VendorRead>(sql)
        .bind(marketplace_id)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(found)
}

/// Lists a marketplace's vendors newest first, with their latest onboarding runs, at most
/// `limit`, strictly after `cursor` (keyset paging over `vendors_marketplace_created`).
pub async fn list_reads(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    filter: &VendorFilter,
    cursor: Option<crate::run_queries::RunCursor>,
    limit: i64,
) -> Result<Vec<VendorRead>, StoreError> {
    let sql = concat!(
        vendor_read_sql!(
            "v.marketplace_id = $1
               AND ($2::text IS NULL OR v.external_id = $2)
               AND ($3::text IS NULL OR s.state = $3)
               AND ($4::text IS NULL OR v.mode = $4)
               AND ($5::timestamptz IS NULL OR v.created_at >= $5)
               AND ($6::timestamptz IS NULL OR v.created_at < $6)
               AND ($7::timestamptz IS NULL OR (v.created_at, v.id) < ($7, $8))"
        ),
        " ORDER BY v.created_at DESC, v.id DESC LIMIT $9"
    );
    let rows = sqlx::query_as::<_, VendorRead>(sql)
        .bind(marketplace_id)
        .bind(&filter.external_id)
        .bind(&filter.state)
        .bind(&filter.mode)
        .bind(filter.created_after)
        .bind(filter.created_before)
        .bind(cursor.map(|cursor| cursor.created_at))
        .bind(cursor.map(|cursor| cursor.id))
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{marketplaces, tokens};

    fn sample(marketplace_id: Uuid) -> NewVendor {
        NewVendor {
            marketplace_id,
            external_id: "seller-1042".into(),
            legal_name: "דנה קרמיקה בע\"מ".into(),
            corporate_number: "515555555".into(),
            business_type: "company".into(),
            email: "dana@example.co.il".into(),
            phone_e164: "+972521234567".into(),
            mode: "clearing".into(),
            bank_account_checked: Some(true),
            bank_account_last4: Some("1116".into()),
        }
    }

    #[test]
    fn the_state_joins_name_the_domains_workflow_and_step() {
        let sql = latest_onboarding_joins!();
        let workflow = format!("'{}'", domain::vendor_state::ONBOARDING_WORKFLOW);
        let step = format!("'{}'", domain::vendor_state::TERMINAL_APPROVAL_STEP);
        assert!(sql.contains(&workflow), "{sql}");
        assert!(sql.contains(&step), "{sql}");
        for state in domain::vendor_state::VendorState::ALL {
            assert!(sql.contains(&format!("'{state}'")), "{state}");
        }
    }

    #[sqlx::test(migrations = "../../migrations")]
    async fn a_vendor_written_can_be_read_back_within_its_marketplace(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let market = marketplaces::insert(&mut conn, "Dana's market")
            .await
            .unwrap();
        let other = marketplaces::insert(&mut conn, "Another market")
            .await
            .unwrap();

        let stored = insert(&mut conn, &sample(market.id)).await.unwrap();
        let read = find(&mut conn, market.id, stored.id).await.unwrap();
        assert_eq!(read.as_ref(), Some(&stored));
        assert_eq!(stored.legal_name, "דנה קרמיקה בע\"מ");
        assert_eq!(stored.onboarding_state, "pending");

        let from_other_marketplace = find(&mut conn, other.id, stored.id).await.unwrap();
        assert_eq!(from_other_marketplace, None);
    }

    #[sqlx::test(migrations = "../../migrations")]
    async fn a_second_vendor_with_the_same_external_id_is_a_conflict(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let market = marketplaces::insert(&mut conn, "m").await.unwrap();
        insert(&mut conn, &sample(market.id)).await.unwrap();
        let second = insert(&mut conn, &sample(market.id)).await.unwrap_err();
        assert!(
            matches!(&second, StoreError::Conflict(name) if name == "vendor_external_id_unique"),
            "{second:?}"
        );
    }

    #[sqlx::test(migrations = "../../migrations")]
    async fn a_vendor_is_found_by_corporate_number_within_its_marketplace_only(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let market = marketplaces::insert(&mut conn, "m").await.unwrap();
        let other = marketplaces::insert(&mut conn, "o").await.unwrap();
        let stored = insert(&mut conn, &sample(market.id)).await.unwrap();
        let found = find_by_corporate_number(&mut conn, market.id, "515555555")
            .await
            .unwrap();
        assert_eq!(found, Some(stored));
        assert_eq!(
            find_by_corporate_number(&mut conn, other.id, "515555555")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            find_by_corporate_number(&mut conn, market.id, "000000018")
                .await
                .unwrap(),
            None
        );
    }

    #[sqlx::test(migrations = "../../migrations")]
    async fn the_corporate_number_lock_holds_a_second_transaction_until_the_first_ends(
        pool: sqlx::PgPool,
    ) {
        use sqlx::Acquire;
        let mut setup = pool.acquire().await.unwrap();
        let market = marketplaces::insert(&mut setup, "m").await.unwrap();
        let mut first = pool.begin().await.unwrap();
        lock_corporate_number(&mut first, market.id, "515555555")
            .await
            .unwrap();
        // Another session cannot take the same lock while the first holds it …
        let mut second = pool.acquire().await.unwrap();
        let mut tx = second.begin().await.unwrap();
        let taken: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_xact_lock(
                 hashtextextended('vendorflow.vendors.corporate_number:' || $1::text || ':' || $2, 0))",
        )
        .bind(market.id)
        .bind("515555555")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert!(!taken);
        tx.rollback().await.unwrap();
        // … and takes it once the first commits.
        first.commit().await.unwrap();
        let mut tx = second.begin().await.unwrap();
        lock_corporate_number(&mut tx, market.id, "515555555")
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    #[sqlx::test(migrations = "../../migrations")]
    async fn the_database_refuses_a_phone_that_is_not_israeli_e164(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let market = marketplaces::insert(&mut conn, "m").await.unwrap();
        let mut vendor = sample(market.id);
        vendor.phone_e164 = "0521234567".into();
        assert!(insert(&mut conn, &vendor).await.is_err());
    }

    #[sqlx::test(migrations = "../../migrations")]
    async fn a_token_authenticates_until_revoked_and_only_its_hash_is_stored(pool: sqlx::PgPool) {
        use secrecy::ExposeSecret;
        let mut conn = pool.acquire().await.unwrap();
        let market = marketplaces::insert(&mut conn, "m").await.unwrap();
        let created = tokens::create(&mut conn, market.id, tokens::Role::Operator, "ops")
            .await
            .unwrap();

        let owner = tokens::authenticate(&mut conn, &created.token)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(owner.marketplace_id, market.id);
        assert_eq!(owner.role, tokens::Role::Operator);

        let clear_text_stored: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM vendorflow.api_tokens WHERE encode(token_hash, 'escape') LIKE '%' || $1 || '%'",
        )
        .bind(&created.token.expose_secret()[10..])
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(clear_text_stored, 0);

        let wrong = secrecy::SecretString::from("vf_operator_nope".to_owned());
        assert_eq!(tokens::authenticate(&mut conn, &wrong).await.unwrap(), None);

        assert!(tokens::revoke(&mut conn, created.id).await.unwrap());
        assert_eq!(
            tokens::authenticate(&mut conn, &created.token)
                .await
                .unwrap(),
            None
        );
    }
}

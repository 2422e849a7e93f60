//! What the provider steps record about vendors at SUMIT: each vendor's organization and whether
//! its keys and terminal are usable (`vendor_provider_accounts`), and the payments and documents
//! issued in its name (`vendor_payments`, `vendor_documents`). One documented function per
//! statement.
//!
//! The keys themselves never enter these tables: they are stored encrypted by [`crate::secrets`]
//! under the vendor's row. Card data is limited to the last four digits and the approval number.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// The fields of a vendor the steps need, read without a marketplace scope (a step knows its
/// run's vendor id; scoping is the API's job).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VendorForSteps {
    pub id: Uuid,
    pub marketplace_id: Uuid,
    pub corporate_number: String,
    /// `clearing` or `documents_only`.
    pub mode: String,
    /// `pending`, `onboarding`, `ready`, `paused`, `failed`.
    pub onboarding_state: String,
    pub provider_company_id: Option<i64>,
}

/// Reads the vendor `vendor_id`.
pub async fn vendor(
    conn: &mut PgConnection,
    vendor_id: Uuid,
) -> Result<Option<VendorForSteps>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, marketplace_id, corporate_number, mode, onboarding_state, provider_company_id
         FROM vendorflow.vendors WHERE id = $1",
    )
    .bind(vendor_id)
    .fetch_optional(&mut *conn)
    .await
}

/// Whether a vendor's provider keys are known and usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysState {
    /// The organization exists and its keys are unknown: an operator must supply them.
    Missing,
    /// Keys are stored and not yet proven by an authenticated call.
    Unverified,
    /// Keys are stored and an authenticated call succeeded with them.
    Active,
    /// The provider refused the stored keys.
    Refused,
}

impl KeysState {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            KeysState::Missing => "missing",
            KeysState::Unverified => "unverified",
            KeysState::Active => "active",
            KeysState::Refused => "refused",
        }
    }

    fn parse(word: &str) -> Option<KeysState> {
        match word {
            "missing" => Some(KeysState::Missing),
            "unverified" => Some(KeysState::Unverified),
            "active" => Some(KeysState::Active),
            "refused" => Some(KeysState::Refused),
            _ => None,
        }
    }
}

/// Where stored keys came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysSource {
    /// The answer of the organization's creation.
    Created,
    /// An operator entered them.
    Operator,
}

impl KeysSource {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            KeysSource::Created => "created",
            KeysSource::Operator => "operator",
        }
    }
}

/// Where a vendor's clearing terminal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalState {
    /// No terminal was asked for.
    None,
    /// `openupayterminal` answered; the acquirer has not approved yet.
    Requested,
    /// The approval arrived.
    Approved,
}

impl TerminalState {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            TerminalState::None => "none",
            TerminalState::Requested => "requested",
            TerminalState::Approved => "approved",
        }
    }

    fn parse(word: &str) -> Option<TerminalState> {
        match word {
            "none" => Some(TerminalState::None),
            "requested" => Some(TerminalState::Requested),
            "approved" => Some(TerminalState::Approved),
            _ => None,
        }
    }
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    vendor_id: Uuid,
    company_id: Option<i64>,
    keys_state: String,
    keys_problem: Option<String>,
    keys_verified_at: Option<DateTime<Utc>>,
    terminal_state: String,
}

/// A vendor's organization at the provider, as the steps know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAccount {
    pub vendor_id: Uuid,
    /// `None` when the organization is known to exist but not its id.
    pub company_id: Option<i64>,
    pub keys_state: KeysState,
    /// Why the keys are missing or refused, in words for an operator.
    pub keys_problem: Option<String>,
    pub keys_verified_at: Option<DateTime<Utc>>,
    pub terminal_state: TerminalState,
}

impl TryFrom<AccountRow> for ProviderAccount {
    type Error = sqlx::Error;

    fn try_from(row: AccountRow) -> Result<Self, Self::Error> {
        let bad = |column: &str, word: &str| {
            sqlx::Error::Decode(
                format!("unknown {column} `{word}` in vendor_provider_accounts").into(),
            )
        };
        Ok(ProviderAccount {
            vendor_id: row.vendor_id,
            company_id: row.company_id,
            keys_state: KeysState::parse(&row.keys_state)
                .ok_or_else(|| bad("keys_state", &row.keys_state))?,
            keys_problem: row.keys_problem,
            keys_verified_at: row.keys_verified_at,
            terminal_state: TerminalState::parse(&row.terminal_state)
                .ok_or_else(|| bad("terminal_state", &row.terminal_state))?,
        })
    }
}

/// Reads the provider account of vendor `vendor_id`, if the steps recorded one.
pub async fn account(
    conn: &mut PgConnection,
    vendor_id: Uuid,
) -> Result<Option<ProviderAccount>, sqlx::Error> {
    let row: Option<AccountRow> = sqlx::query_as(
        "SELECT vendor_id, company_id, keys_state, keys_problem, keys_verified_at, terminal_state
         FROM vendorflow.vendor_provider_accounts WHERE vendor_id = $1",
    )
    .bind(vendor_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(ProviderAccount::try_from).transpose()
}

/// An organization the steps learned about.
#[derive(Debug, Clone)]
pub struct OrganizationRecord<'a> {
    pub vendor_id: Uuid,
    /// `None` when only its existence is known; an id already recorded is then kept.
    pub company_id: Option<i64>,
    pub keys_state: KeysState,
    pub keys_source: Option<KeysSource>,
    pub keys_problem: Option<&'a str>,
}

/// Records the vendor's organization (inserting or replacing its account's organization and keys
/// state, keeping a known company id when the new record has none), copies the company id to
/// `vendors.provider_company_id`, and moves a vendor still `pending` to `onboarding`. One
/// statement.
pub async fn record_organization(
    conn: &mut PgConnection,
    record: &OrganizationRecord<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH acc AS (
            INSERT INTO vendorflow.vendor_provider_accounts
                (vendor_id, company_id, keys_state, keys_source, keys_problem)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (vendor_id) DO UPDATE SET
                company_id = COALESCE(EXCLUDED.company_id, vendor_provider_accounts.company_id),
                keys_state = EXCLUDED.keys_state,
                keys_source = EXCLUDED.keys_source,
                keys_problem = EXCLUDED.keys_problem,
                keys_verified_at = NULL,
                updated_at = now()
            RETURNING vendor_id, company_id
        )
        UPDATE vendorflow.vendors AS v SET
            provider_company_id = COALESCE(acc.company_id, v.provider_company_id),
            onboarding_state = CASE WHEN v.onboarding_state = 'pending' THEN 'onboarding'
                                    ELSE v.onboarding_state END,
            updated_at = now()
        FROM acc WHERE v.id = acc.vendor_id",
    )
    .bind(record.vendor_id)
    .bind(record.company_id)
    .bind(record.keys_state.as_str())
    .bind(record.keys_source.map(KeysSource::as_str))
    .bind(record.keys_problem)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The vendor whose account holds organization `company_id`, if any.
pub async fn vendor_with_company(
    conn: &mut PgConnection,
    company_id: i64,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT vendor_id FROM vendorflow.vendor_provider_accounts
         WHERE provider = 'sumit' AND company_id = $1",
    )
    .bind(company_id)
    .fetch_optional(&mut *conn)
    .await
}

/// Sets the keys state of a vendor's account (and `keys_verified_at` when they become active).
/// Returns whether the account exists.
pub async fn set_keys_state(
    conn: &mut PgConnection,
    vendor_id: Uuid,
    state: KeysState,
    problem: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE vendorflow.vendor_provider_accounts SET
            keys_state = $2, keys_problem = $3,
            keys_verified_at = CASE WHEN $2 = 'active' THEN now() ELSE keys_verified_at END,
            updated_at = now()
         WHERE vendor_id = $1",
    )
    .bind(vendor_id)
    .bind(state.as_str())
    .bind(problem)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets where the vendor's terminal stands, with the time of the request or approval. Returns
/// whether the account exists.
pub async fn set_terminal_state(
    conn: &mut PgConnection,
    vendor_id: Uuid,
    state: TerminalState,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE vendorflow.vendor_provider_accounts SET
            terminal_state = $2,
            terminal_requested_at = CASE WHEN $2 = 'requested' THEN now() ELSE terminal_requested_at END,
            terminal_approved_at = CASE WHEN $2 = 'approved' THEN now() ELSE terminal_approved_at END,
            updated_at = now()
         WHERE vendor_id = $1",
    )
    .bind(vendor_id)
    .bind(state.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A charge to record.
#[derive(Debug, Clone)]
pub struct NewPayment<'a> {
    pub vendor_id: Uuid,
    pub run_id: Option<Uuid>,
    pub order_id: &'a str,
    pub provider_company_id: i64,
    pub provider_payment_id: i64,
    pub approved: bool,
    pub amount_agorot: i64,
    pub auth_number: Option<&'a str>,
    /// At most the last four digits.
    pub card_last4: Option<&'a str>,
    pub decline_code: Option<&'a str>,
    pub decline_description: Option<&'a str>,
    pub provider_document_id: Option<i64>,
}

/// Records a charge; a payment already recorded (same organization and provider payment id) is
/// left as it is. Returns whether a row was inserted.
pub async fn insert_payment(
    conn: &mut PgConnection,
    payment: &NewPayment<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO vendorflow.vendor_payments
            (id, vendor_id, run_id, order_id, provider_company_id, provider_payment_id, approved,
             amount_agorot, auth_number, card_last4, decline_code, decline_description,
             provider_document_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (provider_company_id, provider_payment_id) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(payment.vendor_id)
    .bind(payment.run_id)
    .bind(payment.order_id)
    .bind(payment.provider_company_id)
    .bind(payment.provider_payment_id)
    .bind(payment.approved)
    .bind(payment.amount_agorot)
    .bind(payment.auth_number)
    .bind(payment.card_last4)
    .bind(payment.decline_code)
    .bind(payment.decline_description)
    .bind(payment.provider_document_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A recorded charge.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentRecord {
    pub id: Uuid,
    pub vendor_id: Uuid,
    pub run_id: Option<Uuid>,
    pub order_id: String,
    pub provider_company_id: i64,
    pub provider_payment_id: i64,
    pub approved: bool,
    pub amount_agorot: i64,
    pub auth_number: Option<String>,
    pub card_last4: Option<String>,
    pub decline_code: Option<String>,
    pub decline_description: Option<String>,
    pub provider_document_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// The charges recorded for a vendor's order, oldest first.
pub async fn payments_for_order(
    conn: &mut PgConnection,
    vendor_id: Uuid,
    order_id: &str,
) -> Result<Vec<PaymentRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, vendor_id, run_id, order_id, provider_company_id, provider_payment_id, approved,
                amount_agorot, auth_number, card_last4, decline_code, decline_description,
                provider_document_id, created_at
         FROM vendorflow.vendor_payments WHERE vendor_id = $1 AND order_id = $2
         ORDER BY created_at, id",
    )
    .bind(vendor_id)
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await
}

/// Where a recorded document came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentSource {
    /// Issued by a card charge.
    Charge,
    /// Issued on its own (documents-only vendors, offline payments).
    Document,
}

impl DocumentSource {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentSource::Charge => "charge",
            DocumentSource::Document => "document",
        }
    }
}

/// A document to record.
#[derive(Debug, Clone)]
pub struct NewDocument<'a> {
    pub vendor_id: Uuid,
    pub run_id: Option<Uuid>,
    pub source: DocumentSource,
    /// The order id of a charge, or the document request's reference.
    pub reference: &'a str,
    pub provider_company_id: i64,
    pub provider_document_id: i64,
    pub document_number: Option<i64>,
    pub document_type: Option<i32>,
    pub total_agorot: Option<i64>,
    pub download_url: Option<&'a str>,
}

/// Records a document; one already recorded (same organization and provider document id) is left
/// as it is. Returns whether a row was inserted.
pub async fn insert_document(
    conn: &mut PgConnection,
    document: &NewDocument<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO vendorflow.vendor_documents
            (id, vendor_id, run_id, source, reference, provider_company_id, provider_document_id,
             document_number, document_type, total_agorot, download_url)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (provider_company_id, provider_document_id) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(document.vendor_id)
    .bind(document.run_id)
    .bind(document.source.as_str())
    .bind(document.reference)
    .bind(document.provider_company_id)
    .bind(document.provider_document_id)
    .bind(document.document_number)
    .bind(document.document_type)
    .bind(document.total_agorot)
    .bind(document.download_url)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A recorded document.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DocumentRecord {
    pub id: Uuid,
    pub vendor_id: Uuid,
    pub run_id: Option<Uuid>,
    pub source: String,
    pub reference: String,
    pub provider_company_id: i64,
    pub provider_document_id: i64,
    pub document_number: Option<i64>,
    pub document_type: Option<i32>,
    pub total_agorot: Option<i64>,
    pub download_url: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The documents recorded for a vendor and reference (a charge's order id, or a document
/// request's reference), oldest first.
pub async fn documents_for_reference(
    conn: &mut PgConnection,
    vendor_id: Uuid,
    reference: &str,
) -> Result<Vec<DocumentRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, vendor_id, run_id, source, reference, provider_company_id, provider_document_id,
                document_number, document_type, total_agorot, download_url, created_at
         FROM vendorflow.vendor_documents WHERE vendor_id = $1 AND reference = $2
         ORDER BY created_at, id",
    )
    .bind(vendor_id)
    .bind(reference)
    .fetch_all(&mut *conn)
    .await
}

/// The runs of `workflows` about vendor `vendor_id` that have not ended and stand at one of
/// `steps` (the steps before and at their wait for the vendor), oldest first: the runs a vendor's
/// readiness must wake.
pub async fn runs_awaiting_vendor(
    conn: &mut PgConnection,
    vendor_id: Uuid,
    workflows: &[&str],
    steps: &[&str],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM vendorflow.runs
         WHERE subject_id = $1 AND workflow = ANY($2) AND step_name = ANY($3)
           AND status NOT IN ('succeeded', 'failed', 'cancelled')
         ORDER BY created_at, id",
    )
    .bind(vendor_id)
    .bind(workflows)
    .bind(steps)
    .fetch_all(&mut *conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{marketplaces, vendors};

    async fn a_vendor(conn: &mut PgConnection) -> Uuid {
        let market = marketplaces::insert(conn, "m").await.unwrap();
        let vendor = vendors::insert(
            conn,
            &vendors::NewVendor {
                marketplace_id: market.id,
                external_id: "seller-1".into(),
                legal_name: "Dana".into(),
                corporate_number: "515555555".into(),
                business_type: "company".into(),
                email: "dana@example.co.il".into(),
                phone_e164: "+972521234567".into(),
                mode: "clearing".into(),
                bank_account_checked: Some(true),
                bank_account_last4: Some("1116".into()),
            },
        )
        .await
        .unwrap();
        vendor.id
    }

    #[sqlx::test(migrations = "../../migrations")]
    async fn an_organization_record_keeps_a_known_company_id_and_moves_the_vendor_to_onboarding(
        pool: sqlx::PgPool,
    ) {
        let mut conn = pool.acquire().await.unwrap();
        let vendor_id = a_vendor(&mut conn).await;
        assert_eq!(account(&mut conn, vendor_id).await.unwrap(), None);

        record_organization(
            &mut conn,
            &OrganizationRecord {
                vendor_id,
                company_id: Some(100_001),
                keys_state: KeysState::Unverified,
                keys_source: Some(KeysSource::Created),
                keys_problem: None,
            },
        )
        .await
        .unwrap();
        let v = vendor(&mut conn, vendor_id).await.unwrap().unwrap();
        assert_eq!(v.provider_company_id, Some(100_001));
        assert_eq!(v.onboarding_state, "onboarding");

        record_organization(
            &mut conn,
            &OrganizationRecord {
                vendor_id,
                company_id: None,
                keys_state: KeysState::Missing,
                keys_source: None,
                keys_problem: Some("lost"),
            },
        )
        .await
        .unwrap();
        let a = account(&mut conn, vendor_id).await.unwrap().unwrap();
        assert_eq!(a.company_id, Some(100_001));
        assert_eq!(a.keys_state, KeysState::Missing);
        assert_eq!(a.keys_problem.as_deref(), Some("lost"));
        assert_eq!(a.terminal_state, TerminalState::None);

        assert!(
            set_keys_state(&mut conn, vendor_id, KeysState::Active, None)
                .await
                .unwrap()
        );
        assert!(
            set_terminal_state(&mut conn, vendor_id, TerminalState::Requested)
                .await
                .unwrap()
        );
        let a = account(&mut conn, vendor_id).await.unwrap().unwrap();
        assert_eq!(a.keys_state, KeysState::Active);
        assert!(a.keys_verified_at.is_some());
        assert_eq!(a.terminal_state, TerminalState::Requested);
    }

    #[sqlx::test(migrations = "../../migrations")]
    async fn a_payment_and_a_document_are_recorded_once_per_provider_id(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let vendor_id = a_vendor(&mut conn).await;
        let payment = NewPayment {
            vendor_id,
            run_id: None,
            order_id: "order-1",
            provider_company_id: 100_001,
            provider_payment_id: 50_000_001,
            approved: true,
            amount_agorot: 5782,
            auth_number: Some("0123456"),
            card_last4: Some("4242"),
            decline_code: None,
            decline_description: None,
            provider_document_id: Some(90_000_001),
        };
        assert!(insert_payment(&mut conn, &payment).await.unwrap());
        assert!(!insert_payment(&mut conn, &payment).await.unwrap());
        let found = payments_for_order(&mut conn, vendor_id, "order-1")
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].amount_agorot, 5782);

        let document = NewDocument {
            vendor_id,
            run_id: None,
            source: DocumentSource::Document,
            reference: "invoice-7",
            provider_company_id: 100_001,
            provider_document_id: 90_000_002,
            document_number: Some(10_001),
            document_type: Some(1),
            total_agorot: Some(1000),
            download_url: None,
        };
        assert!(insert_document(&mut conn, &document).await.unwrap());
        assert!(!insert_document(&mut conn, &document).await.unwrap());
        // Another document with the same reference is refused by the database.
        let again = NewDocument {
            provider_document_id: 90_000_003,
            ..document
        };
        assert!(insert_document(&mut conn, &again).await.is_err());
        assert_eq!(
            documents_for_reference(&mut conn, vendor_id, "invoice-7")
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[sqlx::test(migrations = "../../migrations")]
    async fn a_card_number_cannot_be_stored_as_last_digits(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let vendor_id = a_vendor(&mut conn).await;
        let payment = NewPayment {
            vendor_id,
            run_id: None,
            order_id: "order-2",
            provider_company_id: 100_001,
            provider_payment_id: 50_000_002,
            approved: true,
            amount_agorot: 100,
            auth_number: None,
            card_last4: Some("4580458045804580"),
            decline_code: None,
            decline_description: None,
            provider_document_id: None,
        };
        assert!(insert_payment(&mut conn, &payment).await.is_err());
    }
}

// ----- Keys an operator supplies. -----

/// The owner table of a vendor's secrets in `vendorflow.secrets`.
pub const VENDOR_SECRETS_TABLE: &str = "vendors";
/// The secret name of a vendor's provider API key (authenticates every call in its name).
pub const API_KEY_SECRET: &str = "provider_api_key";
/// The secret name of a vendor's provider public key (payments.js tokenization in its name).
pub const API_PUBLIC_KEY_SECRET: &str = "provider_api_public_key";

/// Why [`supply_api_keys`] refused. Exhaustive on purpose: callers map each case to their own
/// error, and a new case should make them decide.
#[derive(Debug, thiserror::Error)]
pub enum SupplyKeysError {
    /// The database answered with an error or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The keys could not be encrypted or stored.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    /// No vendor has this id.
    #[error("vendor {0} not found")]
    VendorNotFound(Uuid),
    /// The vendor's organization is known, and it is another one.
    #[error(
        "vendor {vendor_id} belongs to SUMIT organization {known}, not {given}: check the CompanyID"
    )]
    CompanyMismatch {
        vendor_id: Uuid,
        known: i64,
        given: i64,
    },
    /// Another vendor already has this organization.
    #[error("SUMIT organization {0} already belongs to another vendor")]
    CompanyTaken(i64),
    /// A value is empty or out of range; the message names which (never the value).
    #[error("invalid keys: {0}")]
    InvalidKeys(&'static str),
}

/// Stores an organization's keys that an operator entered (because the answer that carried them
/// was lost, or the corporate number was already registered): the keys encrypted under the
/// vendor's row, and the organization recorded with its keys unverified and their source
/// `operator`. The onboarding's `capture_api_keys` step later proves them with an authenticated
/// call and marks them active.
///
/// Call it inside a transaction (it writes three rows; a failure part-way must leave none). It is
/// not scoped to a marketplace: the caller checks that the vendor is the caller's.
///
/// # Errors
/// [`SupplyKeysError::InvalidKeys`], [`SupplyKeysError::VendorNotFound`],
/// [`SupplyKeysError::CompanyMismatch`] when the organization is known to be another one,
/// [`SupplyKeysError::CompanyTaken`], or a database or secrets error.
pub async fn supply_api_keys(
    conn: &mut PgConnection,
    keyring: &crate::secrets::Keyring,
    vendor_id: Uuid,
    company_id: i64,
    api_key: &secrecy::SecretString,
    api_public_key: &secrecy::SecretString,
) -> Result<(), SupplyKeysError> {
    use secrecy::ExposeSecret;
    if company_id <= 0 {
        return Err(SupplyKeysError::InvalidKeys(
            "the CompanyID must be a positive number",
        ));
    }
    if api_key.expose_secret().trim().is_empty() {
        return Err(SupplyKeysError::InvalidKeys("the APIKey is empty"));
    }
    if api_public_key.expose_secret().trim().is_empty() {
        return Err(SupplyKeysError::InvalidKeys("the APIPublicKey is empty"));
    }
    if vendor(conn, vendor_id).await?.is_none() {
        return Err(SupplyKeysError::VendorNotFound(vendor_id));
    }
    if let Some(account) = account(conn, vendor_id).await?
        && let Some(known) = account.company_id
        && known != company_id
    {
        return Err(SupplyKeysError::CompanyMismatch {
            vendor_id,
            known,
            given: company_id,
        });
    }
    let secret = |name| crate::secrets::SecretRef::new(VENDOR_SECRETS_TABLE, vendor_id, name);
    crate::secrets::put(conn, keyring, &secret(API_KEY_SECRET), api_key).await?;
    crate::secrets::put(
        conn,
        keyring,
        &secret(API_PUBLIC_KEY_SECRET),
        api_public_key,
    )
    .await?;
    record_organization(
        conn,
        &OrganizationRecord {
            vendor_id,
            company_id: Some(company_id),
            keys_state: KeysState::Unverified,
            keys_source: Some(KeysSource::Operator),
            keys_problem: None,
        },
    )
    .await
    .map_err(|e| {
        if e.as_database_error()
            .is_some_and(|d| d.is_unique_violation())
        {
            SupplyKeysError::CompanyTaken(company_id)
        } else {
            SupplyKeysError::Database(e)
        }
    })?;
    tracing::info!(%vendor_id, company_id, "an operator supplied the organization's API keys");
    Ok(())
}

//! Enqueuing a vendor's onboarding: the one implementation behind `POST /v1/onboardings` and
//! `vendorflow vendors import`, so that a vendor onboarded from a CSV file is stored exactly as
//! one onboarded through the API.
//!
//! [`enqueue_onboarding`] does its writes on the caller's connection, which must be inside a
//! transaction: the vendor row, its bank account (encrypted, never in the clear) and the run
//! then exist together or not at all, and the caller may add its own writes (the API's
//! idempotency record) to the same transaction.

use domain::run::Actor;
use domain::vendor::VendorApplication;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

/// The workflow every onboarding runs.
pub const ONBOARDING_WORKFLOW: &str = "vendor_onboarding";

/// The unique constraint on a vendor's external id within its marketplace.
const EXTERNAL_ID_CONSTRAINT: &str = "vendor_external_id_unique";

/// What an accepted onboarding created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    /// The new vendor's id.
    pub vendor_id: Uuid,
    /// The onboarding run's id; the run is `pending` once the transaction commits.
    pub run_id: Uuid,
}

/// Why an onboarding was not enqueued. After any of these the caller's transaction must be
/// rolled back: a failed statement leaves it aborted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnboardingError {
    /// The marketplace already has a vendor with this external id.
    #[error("a vendor with external_id `{0}` already exists in this marketplace")]
    ExternalIdTaken(String),
    /// Another vendor of the marketplace (with another external id) has this corporate number:
    /// the provider would refuse a second organization for it, so the onboarding could only
    /// pause. Nothing was written (the transaction is still usable, but the caller rolls back).
    #[error("vendor {vendor_id} of this marketplace already has this corporate number")]
    CorporateNumberTaken {
        /// The vendor that has it.
        vendor_id: Uuid,
    },
    /// The run could not be enqueued (an unknown workflow, a database error).
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// The vendor row could not be stored.
    #[error("storing the vendor failed: {0}")]
    Store(#[from] store::StoreError),
    /// The bank account could not be encrypted or stored.
    #[error("storing the bank account failed: {0}")]
    Secrets(#[from] store::secrets::SecretsError),
}

/// Enqueues the onboarding of `application` for `marketplace_id`, on behalf of `actor`:
/// inserts the vendor row (its validated, non-secret fields), stores a clearing vendor's bank
/// account encrypted under `keyring`, and enqueues a run of [`ONBOARDING_WORKFLOW`] whose input
/// is the application without the account number plus the vendor's id.
///
/// A corporate number is one vendor's per marketplace: the number is locked for the rest of the
/// transaction (`store::vendors::lock_corporate_number`), so two concurrent onboardings of it
/// are serialised and the second finds the first's vendor.
///
/// # Errors
/// [`OnboardingError::ExternalIdTaken`] when the external id is in use in the marketplace;
/// [`OnboardingError::CorporateNumberTaken`] when another vendor of the marketplace (under
/// another external id) has the corporate number; otherwise the failing layer's error.
pub async fn enqueue_onboarding(
    conn: &mut PgConnection,
    definitions: &engine::Definitions,
    keyring: &store::secrets::Keyring,
    marketplace_id: Uuid,
    application: &VendorApplication,
    actor: Actor,
) -> Result<Enqueued, OnboardingError> {
    let external_id = application.external_id.as_str();
    // The same external id again is the same vendor, whatever its number: say so first.
    if store::vendors::find_by_external_id(conn, marketplace_id, external_id)
        .await?
        .is_some()
    {
        return Err(OnboardingError::ExternalIdTaken(external_id.to_owned()));
    }
    let corporate_number = application.corporate_number.as_str();
    store::vendors::lock_corporate_number(conn, marketplace_id, corporate_number).await?;
    if let Some(existing) =
        store::vendors::find_by_corporate_number(conn, marketplace_id, corporate_number).await?
    {
        return Err(OnboardingError::CorporateNumberTaken {
            vendor_id: existing.id,
        });
    }
    let vendor = match store::vendors::insert(conn, &vendor_row(marketplace_id, application)).await
    {
        Ok(vendor) => vendor,
        Err(store::StoreError::Conflict(constraint)) if constraint == EXTERNAL_ID_CONSTRAINT => {
            return Err(OnboardingError::ExternalIdTaken(
                application.external_id.as_str().to_owned(),
            ));
        }
        Err(other) => return Err(other.into()),
    };
    if let domain::vendor::Mode::Clearing { bank_account } = &application.mode {
        crate::secrets::store_bank_account(keyring, conn, vendor.id, bank_account).await?;
    }

    let mut input = application.to_public_json();
    input["vendor_id"] = json!(vendor.id);
    let mut new = engine::NewRun::new(ONBOARDING_WORKFLOW, input);
    new.marketplace_id = Some(marketplace_id);
    new.subject_id = Some(vendor.id);
    new.actor = actor;
    let run_id = engine::enqueue(conn, new, definitions).await?;
    Ok(Enqueued {
        vendor_id: vendor.id,
        run_id: run_id.0,
    })
}

/// The vendor row an application is stored as: validated values only, the bank account by its
/// last digits. Public so that a caller can tell whether an existing vendor matches an
/// application it was about to enqueue again.
pub fn vendor_row(
    marketplace_id: Uuid,
    application: &VendorApplication,
) -> store::vendors::NewVendor {
    let bank_account = application.mode.bank_account();
    store::vendors::NewVendor {
        marketplace_id,
        external_id: application.external_id.as_str().to_owned(),
        legal_name: application.legal_name.as_str().to_owned(),
        corporate_number: application.corporate_number.as_str().to_owned(),
        business_type: application.business_type.as_str().to_owned(),
        email: application.email.as_str().to_owned(),
        phone_e164: application.phone.as_e164().to_owned(),
        mode: application.mode.kind().as_str().to_owned(),
        bank_account_checked: bank_account.map(|account| account.checked()),
        bank_account_last4: bank_account.map(|account| account.last4()),
    }
}

impl From<OnboardingError> for crate::ApiError {
    fn from(error: OnboardingError) -> Self {
        match error {
            OnboardingError::ExternalIdTaken(_) | OnboardingError::CorporateNumberTaken { .. } => {
                crate::ApiError::Conflict(error.to_string())
            }
            OnboardingError::Engine(error) => error.into(),
            OnboardingError::Store(error) => error.into(),
            OnboardingError::Secrets(error) => crate::ApiError::internal(error),
        }
    }
}

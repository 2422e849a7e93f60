//! What each workflow step does: binds the steps of `workflows/vendor_onboarding.toml`,
//! `vendor_charge.toml` and `vendor_document.toml` to SUMIT calls (through
//! `providers::sumit::SumitClient`) and to the vendor's records (through `store`).
//!
//! It owns: the mapping of the run input shapes (defined in `domain::orders`, re-exported from
//! [`input`]) to provider requests; the handlers, polls, conditions and signals that
//! [`register`] puts in the engine's registry; what is committed with each step's record (the
//! keys a new organization returns once, payments, documents, the vendor becoming ready); how each
//! step reconciles an attempt whose outcome is unknown; and [`supply_api_keys`], the operator's
//! way to enter an organization's lost keys.
//!
//! It must not: retry, sleep or schedule (the engine does, from the definitions); hold a
//! transaction or a pooled connection across a provider call; put a secret (API key, bank
//! account, card data beyond the last four digits) in a run's input, context, history, error or
//! log; call a provider in a way that could create a second organization, a second terminal
//! request or a second charge for an order without first looking for the first one — and where
//! no lookup exists, it pauses the run for an operator instead.
//!
//! # Workflows
//!
//! - `vendor_onboarding`: `create_organization` → `capture_api_keys` → `open_terminal`
//!   (clearing only) → `await_terminal_approval` (clearing only; signal `terminal_approved`,
//!   sandbox-only poll) → `mark_ready`.
//! - `vendor_charge`: `check_vendor` → `await_vendor_ready` (signal `vendor_ready`, poll of the
//!   vendor's state) → `charge` → `conclude` (ends `declined` on a card decline).
//! - `vendor_document`: `check_vendor` → `await_vendor_ready` → `issue_document`.
//!
//! # Reconciliation
//!
//! | step | unknown outcome |
//! |---|---|
//! | `create_organization` | sandbox lookup by corporate number; else the repeated create is the probe (SUMIT refuses a second organization with the same corporate number, read as "it exists, keys lost") |
//! | `capture_api_keys` | read-only: repeated |
//! | `open_terminal` | no lookup exists: pause for an operator |
//! | `charge` | `payments/list` by the order id (`UniqueIdentifier`); indeterminate: pause |
//! | `issue_document` | no lookup by reference exists in the client: pause for an operator |
//! | others | database only: repeated |

use std::fmt;
use std::sync::Arc;

use engine::Registry;
use providers::sumit::{Credentials, SumitClient};
use secrecy::SecretString;
use serde_json::Value;
use sqlx::PgPool;
use store::provider_records;
use store::secrets::Keyring;
use uuid::Uuid;

mod charge;
mod document;
mod doubt;
mod failure;
pub mod input;
mod keys;
mod onboarding;
mod writes;

pub use charge::DECLINED_OUTCOME;
pub use input::{
    ChargeInput, CustomerInput, DocumentInput, DocumentKind, DocumentLanguageInput,
    DocumentPaymentInput, ItemInput, OnboardingInput, PaymentMethodInput, ProviderDocumentType,
};
pub use keys::{API_KEY as API_KEY_SECRET, API_PUBLIC_KEY as API_PUBLIC_KEY_SECRET};
pub use keys::{BANK_ACCOUNT as BANK_ACCOUNT_SECRET, OWNER_TABLE as SECRETS_OWNER_TABLE};

/// The onboarding workflow's name.
pub const ONBOARDING_WORKFLOW: &str = "vendor_onboarding";
/// The charge workflow's name.
pub const CHARGE_WORKFLOW: &str = "vendor_charge";
/// The document workflow's name.
pub const DOCUMENT_WORKFLOW: &str = "vendor_document";

/// The signal that completes the wait for a clearing vendor's terminal approval (sent by the
/// marketplace backend, an operator or the CLI once Upay approved the terminal).
pub const SIGNAL_TERMINAL_APPROVED: &str = "terminal_approved";
/// The signal that completes a charge's or document's wait for its vendor (sent by the
/// onboarding's last step, or by the run itself when the vendor was already ready).
pub const SIGNAL_VENDOR_READY: &str = "vendor_ready";
/// The condition of steps that only clearing vendors need (on the onboarding input's `mode`).
pub const CONDITION_CLEARING: &str = "clearing";
/// The condition of steps that only documents-only vendors need.
pub const CONDITION_DOCUMENTS_ONLY: &str = "documents_only";

/// The name of the charge's and document's first step; the onboarding signals runs at it.
pub const CHECK_VENDOR_STEP: &str = "check_vendor";
/// The name of the charge's and document's wait for the vendor.
pub const AWAIT_VENDOR_STEP: &str = "await_vendor_ready";

/// The outbox events the steps write themselves (the engine writes the definitions' run events:
/// `vendor.onboarding_paused`, `vendor.onboarding_failed`, `charge.failed`, ...).
pub mod events {
    /// An organization was created for the vendor at SUMIT.
    pub const ORGANIZATION_CREATED: &str = domain::webhook_events::ORGANIZATION_CREATED;
    /// The vendor's clearing terminal was requested; approval comes later, by hand.
    pub const TERMINAL_REQUESTED: &str = domain::webhook_events::TERMINAL_REQUESTED;
    /// The vendor can take charges (clearing) or issue documents.
    pub const VENDOR_READY: &str = domain::webhook_events::VENDOR_READY;
    /// A charge was approved; its payment and document are recorded.
    pub const CHARGE_SUCCEEDED: &str = domain::webhook_events::CHARGE_SUCCEEDED;
    /// A charge was declined by the card issuer: a final business outcome.
    pub const CHARGE_DECLINED: &str = domain::webhook_events::CHARGE_DECLINED;
    /// A document was issued in the vendor's name.
    pub const DOCUMENT_ISSUED: &str = domain::webhook_events::DOCUMENT_ISSUED;
}

/// An outbox event of type `name` whose payload is `payload`, a type of the webhook catalogue
/// (`domain::webhook_events`), so the payload has the shape the OpenAPI document publishes.
pub(crate) fn event<T: serde::Serialize>(name: &str, payload: &T) -> engine::OutboxEvent {
    engine::OutboxEvent::new(
        name,
        serde_json::to_value(payload).unwrap_or(serde_json::Value::Null),
    )
}

/// What the steps need from the binary: the provider client, the marketplace's own credentials
/// at the provider (to create organizations), the master keys of the secrets, and whether the
/// provider is the sandbox (which enables its documented extensions: the lookup of an
/// organization by corporate number and the terminal-status poll).
pub struct StepsConfig {
    /// The SUMIT client (production or sandbox base URL).
    pub provider: SumitClient,
    /// The marketplace's CompanyID and APIKey at SUMIT.
    pub marketplace_credentials: Credentials,
    /// The master keys that encrypt and decrypt vendors' secrets.
    pub keyring: Arc<Keyring>,
    /// Whether sandbox-only extensions may be used. Never true against the real SUMIT.
    pub sandbox_extensions: bool,
}

impl fmt::Debug for StepsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepsConfig")
            .field("provider", &self.provider)
            .field(
                "marketplace_company_id",
                &self.marketplace_credentials.company_id,
            )
            .field("sandbox_extensions", &self.sandbox_extensions)
            .finish_non_exhaustive()
    }
}

/// Registers every handler, poll handler, condition and signal the three workflow definitions
/// use.
///
/// Handlers: `create_organization`, `capture_api_keys`, `open_terminal`, `mark_vendor_ready`,
/// `check_vendor_for_charge`, `check_vendor_for_document`, `charge_customer`, `conclude_charge`,
/// `issue_document`. Polls: `terminal_status` (sandbox-only; answers "not yet" without any call
/// otherwise), `vendor_onboarding_state`. Conditions: `clearing`, `documents_only`. Signals:
/// `terminal_approved`, `vendor_ready`.
pub fn register(registry: &mut Registry, config: Arc<StepsConfig>) {
    registry
        .handler(
            "create_organization",
            onboarding::CreateOrganization::new(config.clone()),
        )
        .handler(
            "capture_api_keys",
            onboarding::CaptureApiKeys::new(config.clone()),
        )
        .handler(
            "open_terminal",
            onboarding::OpenTerminal::new(config.clone()),
        )
        .handler("mark_vendor_ready", onboarding::MarkVendorReady)
        .handler(
            "check_vendor_for_charge",
            charge::CheckVendor::new(charge::Purpose::Charge),
        )
        .handler(
            "check_vendor_for_document",
            charge::CheckVendor::new(charge::Purpose::Document),
        )
        .handler(
            "charge_customer",
            charge::ChargeCustomer::new(config.clone()),
        )
        .handler("conclude_charge", charge::ConcludeCharge)
        .handler(
            "issue_document",
            document::IssueDocument::new(config.clone()),
        )
        .poll(
            "terminal_status",
            onboarding::TerminalStatusPoll::new(config),
        )
        .poll("vendor_onboarding_state", charge::VendorReadyPoll)
        .condition(CONDITION_CLEARING, |input: &Value| {
            mode_of(input) == Some("clearing")
        })
        .condition(CONDITION_DOCUMENTS_ONLY, |input: &Value| {
            mode_of(input) == Some("documents_only")
        })
        .signal(SIGNAL_TERMINAL_APPROVED)
        .signal(SIGNAL_VENDOR_READY);
}

fn mode_of(input: &Value) -> Option<&str> {
    input.get("mode").and_then(Value::as_str)
}

/// Why [`supply_api_keys`] refused: the store's error, because the store owns the rules (the API,
/// which must not know the steps, calls them too). The name stays for the steps' callers.
pub use store::provider_records::SupplyKeysError as StepsError;

/// Stores an organization's keys that an operator entered (because the answer that carried them
/// was lost, or the corporate number was already registered), in one transaction: the keys
/// encrypted under the vendor's row, and the organization recorded with its keys unverified. The
/// caller then resumes the paused onboarding run; its `capture_api_keys` step proves the keys
/// with an authenticated call, checks they belong to the vendor's corporate number, and marks
/// them active.
///
/// # Errors
/// [`StepsError::VendorNotFound`], [`StepsError::CompanyMismatch`] when the organization is
/// known to be another one, [`StepsError::CompanyTaken`], [`StepsError::InvalidKeys`], or a
/// database or secrets error.
pub async fn supply_api_keys(
    pool: &PgPool,
    keyring: &Keyring,
    vendor_id: Uuid,
    company_id: i64,
    api_key: SecretString,
    api_public_key: SecretString,
) -> Result<(), StepsError> {
    let mut tx = pool.begin().await?;
    provider_records::supply_api_keys(
        &mut tx,
        keyring,
        vendor_id,
        company_id,
        &api_key,
        &api_public_key,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

//! The webhook event catalogue: every event type vendorflow writes to its outbox (and so delivers
//! to marketplace endpoints), what it means, and the shape of its payload (`data`) as Rust types
//! whose JSON Schema the OpenAPI document publishes (`webhooks` section).
//!
//! This module owns the names and payload types; the steps build their events from these types,
//! the engine's run events (paused, failed, cancelled, reminders) have the shape of [`RunEvent`],
//! and endpoint filters are checked against [`CATALOGUE`]. It must not do IO, and must not name an
//! event here that no code writes (the end-to-end test checks both directions).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use uuid::Uuid;

use crate::vendor_state::VendorState;

/// An organization was created for the vendor at SUMIT.
pub const ORGANIZATION_CREATED: &str = "vendor.organization_created";
/// The vendor's clearing terminal was requested; approval comes later, by hand.
pub const TERMINAL_REQUESTED: &str = "vendor.terminal_requested";
/// The vendor can take charges (clearing) or issue documents.
pub const VENDOR_READY: &str = "vendor.ready";
/// A charge was approved; its payment and document are recorded.
pub const CHARGE_SUCCEEDED: &str = "charge.succeeded";
/// A charge was declined by the card issuer: a final business outcome.
pub const CHARGE_DECLINED: &str = "charge.declined";
/// A document was issued in the vendor's name.
pub const DOCUMENT_ISSUED: &str = "document.issued";

/// `data` of `vendor.organization_created` and `vendor.terminal_requested`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VendorProviderEvent {
    /// The vendor's id in vendorflow.
    pub vendor_id: Uuid,
    /// Where the vendor stands now (as the vendor resource says).
    #[schema(schema_with = vendor_state_schema)]
    pub state: VendorState,
    /// The marketplace's own id for the vendor.
    pub external_id: String,
    /// The vendor's organization (CompanyID) at SUMIT.
    pub provider_company_id: i64,
}

/// How a ready vendor works with SUMIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VendorMode {
    /// Takes card payments on its own terminal.
    Clearing,
    /// Only issues invoices and receipts.
    DocumentsOnly,
}

/// `data` of `vendor.ready`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VendorReadyEvent {
    /// The vendor's id in vendorflow.
    pub vendor_id: Uuid,
    /// Where the vendor stands now: `ready`.
    #[schema(schema_with = vendor_state_schema)]
    pub state: VendorState,
    /// The marketplace's own id for the vendor.
    pub external_id: String,
    #[schema(inline)]
    pub mode: VendorMode,
    /// The vendor's organization (CompanyID) at SUMIT.
    pub provider_company_id: Option<i64>,
}

/// How the outcome of a charge was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// From SUMIT's answer to the charge.
    Answer,
    /// By looking the payment up by its order id, after the answer was lost.
    Lookup,
}

/// `data` of `charge.succeeded`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeSucceededEvent {
    /// The charge's run.
    pub run_id: Uuid,
    pub vendor_id: Uuid,
    /// The marketplace's order id (unique per vendor).
    pub order_id: String,
    #[schema(inline)]
    pub found_by: FoundBy,
    /// The payment's id at SUMIT.
    pub payment_id: i64,
    /// The amount charged, in agorot.
    pub amount_agorot: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_number: Option<String>,
    /// The card's last four digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_last4: Option<String>,
    /// The invoice/receipt issued with the charge (absent when the charge was found by lookup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_number: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_url: Option<String>,
}

/// `data` of `charge.declined`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeDeclinedEvent {
    /// The charge's run.
    pub run_id: Uuid,
    pub vendor_id: Uuid,
    /// The marketplace's order id (unique per vendor).
    pub order_id: String,
    #[schema(inline)]
    pub found_by: FoundBy,
    /// The declined payment's id at SUMIT, when it made one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<i64>,
    /// The issuer's decline code (e.g. `006`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_description: Option<String>,
}

/// `data` of `document.issued`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentIssuedEvent {
    /// The document's run.
    pub run_id: Uuid,
    pub vendor_id: Uuid,
    /// The marketplace's reference (unique per vendor).
    pub reference: String,
    /// The document's id at SUMIT.
    pub document_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_number: Option<i64>,
    /// The document type as requested (`invoice`, `invoice_and_receipt`, `receipt`, ...).
    pub document_type: String,
    /// The sum of the payments, in agorot, for documents that record payments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_agorot: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
}

/// The run status a run event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunEventStatus {
    /// The run waits for an operator (`*.paused`).
    Paused,
    /// The run failed for good (`*.failed`).
    Failed,
    /// The run was cancelled (`*.cancelled`).
    Cancelled,
    /// The run waits for a signal (reminders).
    Waiting,
    /// The run ended with a business outcome.
    Succeeded,
}

/// `data` of the run events: a run of a workflow paused, failed, was cancelled, or is still
/// waiting for a signal (reminder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunEvent {
    pub run_id: Uuid,
    /// `vendor_onboarding`, `vendor_charge` or `vendor_document`.
    pub workflow: String,
    /// The vendor the run is about.
    pub subject_id: Option<Uuid>,
    pub marketplace_id: Option<Uuid>,
    #[schema(inline)]
    pub status: RunEventStatus,
    /// The run's current step.
    pub step: String,
    /// Onboarding runs: where the vendor stands now (as the vendor resource says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = vendor_state_schema)]
    pub state: Option<VendorState>,
    /// Why it paused, failed or was cancelled, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The business outcome of a run that ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The last error of a failed run (code, message, retryable), secrets redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub error: Option<serde_json::Value>,
    /// Reminders: the signal the run waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Reminders: since when it waits (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<String>,
}

/// A vendor state in a payload: one of [`VendorState::ALL`]'s words.
fn vendor_state_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(VendorState::ALL.iter().map(|s| s.as_str())))
        .description(Some(
            "Where the vendor stands (the vendor resource's `state`).",
        ))
        .build()
}

/// One event type of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct EventType {
    /// The `type` of the delivered body, e.g. `vendor.ready`.
    pub name: &'static str,
    /// What happened, for the reference.
    pub summary: &'static str,
    /// The JSON Schema of the body's `data`.
    pub payload: fn() -> RefOr<Schema>,
    /// The payload type's name (the component name in the OpenAPI document).
    pub payload_name: &'static str,
}

fn schema_of<T: utoipa::PartialSchema>() -> RefOr<Schema> {
    T::schema()
}

macro_rules! event {
    ($name:expr, $ty:ty, $summary:expr) => {
        EventType {
            name: $name,
            summary: $summary,
            payload: schema_of::<$ty>,
            payload_name: stringify!($ty),
        }
    };
}

/// Every event type vendorflow delivers. The run events' names are those the workflow
/// definitions (`workflows/*.toml`, `[events]` and `reminder_event`) give.
pub const CATALOGUE: &[EventType] = &[
    event!(
        ORGANIZATION_CREATED,
        VendorProviderEvent,
        "The vendor's organization was created at SUMIT and its API keys stored."
    ),
    event!(
        TERMINAL_REQUESTED,
        VendorProviderEvent,
        "The clearing vendor's terminal was requested; the acquirer approves it by hand (send the signal `terminal_approved`)."
    ),
    event!(
        VENDOR_READY,
        VendorReadyEvent,
        "The vendor is ready: it takes charges (clearing) or issues documents (documents_only)."
    ),
    event!(
        "vendor.terminal_approval_reminder",
        RunEvent,
        "The onboarding still waits for the terminal's approval (sent every two days while it waits)."
    ),
    event!(
        "vendor.onboarding_paused",
        RunEvent,
        "The onboarding paused for an operator; `reason` says why."
    ),
    event!(
        "vendor.onboarding_failed",
        RunEvent,
        "The onboarding failed for good; `error` says why."
    ),
    event!(
        "vendor.onboarding_cancelled",
        RunEvent,
        "The onboarding was cancelled by an operator."
    ),
    event!(
        CHARGE_SUCCEEDED,
        ChargeSucceededEvent,
        "The charge was approved; its payment (and invoice/receipt) is recorded."
    ),
    event!(
        CHARGE_DECLINED,
        ChargeDeclinedEvent,
        "The card issuer declined the charge: a final business outcome (the run ends with outcome `declined`)."
    ),
    event!(
        "charge.paused",
        RunEvent,
        "The charge paused for an operator (for example its outcome could not be known); `reason` says why."
    ),
    event!(
        "charge.failed",
        RunEvent,
        "The charge failed for good (for example the vendor cannot take card payments)."
    ),
    event!(
        "charge.cancelled",
        RunEvent,
        "The charge was cancelled by an operator."
    ),
    event!(
        DOCUMENT_ISSUED,
        DocumentIssuedEvent,
        "The document was issued in the vendor's name."
    ),
    event!(
        "document.paused",
        RunEvent,
        "The document's issue paused for an operator; `reason` says why."
    ),
    event!(
        "document.failed",
        RunEvent,
        "The document could not be issued, for good."
    ),
    event!(
        "document.cancelled",
        RunEvent,
        "The document's issue was cancelled by an operator."
    ),
];

/// The catalogue entry of `name`.
pub fn find(name: &str) -> Option<&'static EventType> {
    CATALOGUE.iter().find(|e| e.name == name)
}

/// The names in `filter` that are not event types of the catalogue, in their order, once each.
pub fn unknown_types<S: AsRef<str>>(filter: &[S]) -> Vec<String> {
    let mut unknown: Vec<String> = Vec::new();
    for name in filter {
        let name = name.as_ref();
        if find(name).is_none() && !unknown.iter().any(|u| u == name) {
            unknown.push(name.to_owned());
        }
    }
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lowercase_dotted() {
        let mut names: Vec<&str> = CATALOGUE.iter().map(|e| e.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "an event type is listed twice");
        for name in names {
            assert!(
                name.split('.').count() == 2
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'),
                "{name}"
            );
        }
    }

    #[test]
    fn unknown_filter_names_are_reported_once_in_order() {
        assert!(unknown_types(&["vendor.ready", "charge.succeeded"]).is_empty());
        assert_eq!(
            unknown_types(&["vendor.redy", "vendor.ready", "x", "vendor.redy"]),
            vec!["vendor.redy".to_owned(), "x".to_owned()]
        );
    }

    #[test]
    fn payload_schemas_forbid_undocumented_fields_and_require_the_ids() {
        let schema = serde_json::to_value((find(VENDOR_READY).unwrap().payload)()).unwrap();
        assert_eq!(schema["additionalProperties"], serde_json::json!(false));
        let required = schema["required"].as_array().unwrap();
        assert!(required.contains(&serde_json::json!("vendor_id")));
        assert!(!required.contains(&serde_json::json!("provider_company_id")));
    }
}

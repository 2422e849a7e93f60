//! The writes the steps commit inside the engine's record transaction ([`RecordWrite`]), so that
//! what a step learned at the provider is stored if and only if the step's success is: the keys a
//! new organization returns once, the payment and document of a charge, the vendor becoming ready.
//!
//! A write that fails makes the whole record fail; the engine then records the attempt's outcome
//! as unknown and the next attempt reconciles, which is why every write here is idempotent.

use std::sync::Arc;

use domain::run::{Actor, ActorKind, HistoryKind, RunId};
use engine::RecordWrite;
use futures::future::BoxFuture;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgConnection;
use store::provider_records::{
    self, DocumentSource, KeysSource, KeysState, NewDocument, NewPayment, OrganizationRecord,
    TerminalState,
};
use store::secrets::{Keyring, SecretsError};
use uuid::Uuid;

use crate::keys;

/// Turns a secrets error into the record's error (its database error as it is).
fn from_secrets(error: SecretsError) -> sqlx::Error {
    match error {
        SecretsError::Database(e) => e,
        other => sqlx::Error::Encode(Box::new(other)),
    }
}

/// The organization `create_organization` created, with the keys that come back only once:
/// stored encrypted, and the organization recorded with its keys unverified.
pub(crate) struct StoreCreatedOrganization {
    pub(crate) keyring: Arc<Keyring>,
    pub(crate) vendor_id: Uuid,
    pub(crate) company_id: i64,
    pub(crate) api_key: SecretString,
    pub(crate) api_public_key: SecretString,
}

impl RecordWrite for StoreCreatedOrganization {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            keys::store_keys(
                conn,
                &self.keyring,
                self.vendor_id,
                &self.api_key,
                &self.api_public_key,
            )
            .await
            .map_err(from_secrets)?;
            provider_records::record_organization(
                conn,
                &OrganizationRecord {
                    vendor_id: self.vendor_id,
                    company_id: Some(self.company_id),
                    keys_state: KeysState::Unverified,
                    keys_source: Some(KeysSource::Created),
                    keys_problem: None,
                },
            )
            .await
        })
    }
}

/// An organization that exists without keys we know: recorded with its keys missing and why.
pub(crate) struct RecordKeysLost {
    pub(crate) vendor_id: Uuid,
    pub(crate) company_id: Option<i64>,
    pub(crate) problem: String,
}

impl RecordWrite for RecordKeysLost {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            provider_records::record_organization(
                conn,
                &OrganizationRecord {
                    vendor_id: self.vendor_id,
                    company_id: self.company_id,
                    keys_state: KeysState::Missing,
                    keys_source: None,
                    keys_problem: Some(&self.problem),
                },
            )
            .await
        })
    }
}

/// The keys worked: they become active.
pub(crate) struct KeysActive {
    pub(crate) vendor_id: Uuid,
}

impl RecordWrite for KeysActive {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            provider_records::set_keys_state(conn, self.vendor_id, KeysState::Active, None)
                .await
                .map(|_| ())
        })
    }
}

/// The terminal was requested.
pub(crate) struct TerminalRequested {
    pub(crate) vendor_id: Uuid,
}

impl RecordWrite for TerminalRequested {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            provider_records::set_terminal_state(conn, self.vendor_id, TerminalState::Requested)
                .await
                .map(|_| ())
        })
    }
}

/// The vendor is ready: its state becomes `ready`, a clearing vendor's terminal `approved`, and
/// every charge or document run of the vendor still before or at its wait for the vendor gets
/// the signal `vendor_ready` (stored for a run not yet at the wait, waking one that waits).
pub(crate) struct VendorReady {
    pub(crate) vendor_id: Uuid,
    pub(crate) clearing: bool,
    pub(crate) onboarding_run: Uuid,
}

impl RecordWrite for VendorReady {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            store::vendors::set_onboarding_state(conn, self.vendor_id, "ready")
                .await
                .map_err(|e| match e {
                    store::StoreError::Database(e) => e,
                    other => sqlx::Error::Protocol(other.to_string()),
                })?;
            if self.clearing {
                provider_records::set_terminal_state(conn, self.vendor_id, TerminalState::Approved)
                    .await?;
            }
            let waiting = provider_records::runs_awaiting_vendor(
                conn,
                self.vendor_id,
                &[crate::CHARGE_WORKFLOW, crate::DOCUMENT_WORKFLOW],
                &[crate::CHECK_VENDOR_STEP, crate::AWAIT_VENDOR_STEP],
            )
            .await?;
            let actor = Actor::new(ActorKind::System, crate::ONBOARDING_WORKFLOW);
            for run in waiting {
                let sent = engine::ops::signal(
                    conn,
                    RunId(run),
                    crate::SIGNAL_VENDOR_READY,
                    json!({ "vendor_id": self.vendor_id, "onboarding_run_id": self.onboarding_run }),
                    &actor,
                    "the vendor's onboarding completed",
                )
                .await;
                match sent {
                    Ok(_) => {}
                    // The run ended or moved on meanwhile, or pinned a definition without this
                    // wait: it needs no signal.
                    Err(
                        engine::EngineError::RunEnded(..)
                        | engine::EngineError::RunNotFound(_)
                        | engine::EngineError::UnknownSignal { .. },
                    ) => {}
                    Err(engine::EngineError::Database(e)) => return Err(e),
                    Err(other) => return Err(sqlx::Error::Protocol(other.to_string())),
                }
            }
            Ok(())
        })
    }
}

/// A charge or document run whose vendor was already ready when it started: the run signals its
/// own wait for the vendor, so the wait completes at once instead of at its first poll. Written
/// under the run's row lock, which the record's fenced update holds.
pub(crate) struct SignalOwnWait {
    pub(crate) run_id: Uuid,
    pub(crate) step: String,
}

impl RecordWrite for SignalOwnWait {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let already: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM vendorflow.signals
                                WHERE run_id = $1 AND name = $2 AND consumed_at IS NULL)",
            )
            .bind(self.run_id)
            .bind(crate::SIGNAL_VENDOR_READY)
            .fetch_one(&mut *conn)
            .await?;
            if already {
                return Ok(());
            }
            let id = Uuid::now_v7();
            let payload = json!({ "already_ready": true });
            let reason = "the vendor was ready when the run checked it";
            store::signals::insert(
                conn,
                &store::signals::NewSignal {
                    id,
                    run_id: self.run_id,
                    name: crate::SIGNAL_VENDOR_READY,
                    payload: &payload,
                    actor_kind: ActorKind::Worker.as_str(),
                    actor_id: crate::CHECK_VENDOR_STEP,
                    reason: Some(reason),
                },
            )
            .await?;
            store::history::append(
                conn,
                &[store::history::HistoryEntry {
                    run_id: self.run_id,
                    kind: HistoryKind::SignalReceived.as_str().to_owned(),
                    step_name: Some(self.step.clone()),
                    attempt: None,
                    actor_kind: ActorKind::Worker.as_str().to_owned(),
                    actor_id: crate::CHECK_VENDOR_STEP.to_owned(),
                    reason: Some(reason.to_owned()),
                    data: Some(
                        json!({ "signal": crate::SIGNAL_VENDOR_READY, "signal_id": id, "payload": payload }),
                    ),
                    only_if_continuing: false,
                }],
            )
            .await
        })
    }
}

/// A charge's payment (approved or declined) and, when the provider named it, its document.
pub(crate) struct RecordCharge {
    pub(crate) vendor_id: Uuid,
    pub(crate) run_id: Uuid,
    pub(crate) order_id: String,
    pub(crate) company_id: i64,
    pub(crate) payment_id: i64,
    pub(crate) approved: bool,
    pub(crate) amount_agorot: i64,
    pub(crate) auth_number: Option<String>,
    pub(crate) card_last4: Option<String>,
    pub(crate) decline_code: Option<String>,
    pub(crate) decline_description: Option<String>,
    pub(crate) document: Option<ChargeDocument>,
}

/// The document a charge issued.
pub(crate) struct ChargeDocument {
    pub(crate) document_id: i64,
    pub(crate) document_number: Option<i64>,
    pub(crate) download_url: Option<String>,
}

impl RecordWrite for RecordCharge {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            provider_records::insert_payment(
                conn,
                &NewPayment {
                    vendor_id: self.vendor_id,
                    run_id: Some(self.run_id),
                    order_id: &self.order_id,
                    provider_company_id: self.company_id,
                    provider_payment_id: self.payment_id,
                    approved: self.approved,
                    amount_agorot: self.amount_agorot,
                    auth_number: self.auth_number.as_deref(),
                    card_last4: self.card_last4.as_deref(),
                    decline_code: self.decline_code.as_deref(),
                    decline_description: self.decline_description.as_deref(),
                    provider_document_id: self.document.as_ref().map(|d| d.document_id),
                },
            )
            .await?;
            if let Some(document) = &self.document {
                provider_records::insert_document(
                    conn,
                    &NewDocument {
                        vendor_id: self.vendor_id,
                        run_id: Some(self.run_id),
                        source: DocumentSource::Charge,
                        reference: &self.order_id,
                        provider_company_id: self.company_id,
                        provider_document_id: document.document_id,
                        document_number: document.document_number,
                        document_type: None,
                        total_agorot: Some(self.amount_agorot),
                        download_url: document.download_url.as_deref(),
                    },
                )
                .await?;
            }
            Ok(())
        })
    }
}

/// A document issued on its own.
pub(crate) struct RecordDocument {
    pub(crate) vendor_id: Uuid,
    pub(crate) run_id: Uuid,
    pub(crate) reference: String,
    pub(crate) company_id: i64,
    pub(crate) document_id: i64,
    pub(crate) document_number: Option<i64>,
    pub(crate) document_type: i32,
    pub(crate) total_agorot: Option<i64>,
    pub(crate) download_url: Option<String>,
}

impl RecordWrite for RecordDocument {
    fn apply<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            provider_records::insert_document(
                conn,
                &NewDocument {
                    vendor_id: self.vendor_id,
                    run_id: Some(self.run_id),
                    source: DocumentSource::Document,
                    reference: &self.reference,
                    provider_company_id: self.company_id,
                    provider_document_id: self.document_id,
                    document_number: self.document_number,
                    document_type: Some(self.document_type),
                    total_agorot: self.total_agorot,
                    download_url: self.download_url.as_deref(),
                },
            )
            .await
            .map(|_| ())
        })
    }
}

/// A JSON object of the values that are present.
pub(crate) fn compact(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}

//! The step that issues a document in a vendor's name (`vendor_document`): an invoice or
//! receipt for documents-only vendors and for payments taken outside the terminal.

use std::sync::Arc;

use domain::webhook_events::DocumentIssuedEvent;
use engine::{ReconcileOutcome, StepContext, StepHandler, StepOutcome, StepSuccess};
use futures::future::BoxFuture;
use providers::sumit::{
    CreateDocument, DocumentLanguage, DocumentPayment, IssuedDocument, LineItem, PaymentDetails,
};
use providers::{ProviderError, RejectionKind};
use serde_json::json;
use store::provider_records::{self, DocumentSource};

use crate::charge::{Purpose, Step, connection, customer, parse, ready_vendor};
use crate::input::{
    DocumentInput, DocumentLanguageInput, PaymentMethodInput, ProviderDocumentType,
};
use crate::writes::{RecordDocument, compact};
use crate::{StepsConfig, event, events, failure};

/// Step `issue_document`: creates the document with the vendor's credentials, once per vendor
/// and reference. `documents/create` is not idempotent and the client offers no lookup by
/// reference, so an attempt whose answer was lost pauses the run for an operator.
pub(crate) struct IssueDocument {
    config: Arc<StepsConfig>,
}

impl IssueDocument {
    pub(crate) fn new(config: Arc<StepsConfig>) -> Self {
        Self { config }
    }

    fn request(input: &DocumentInput) -> CreateDocument {
        CreateDocument {
            document_type: input.document_type.provider_type(),
            date: input.date,
            is_draft: false,
            language: input.language.map(|l| match l {
                DocumentLanguageInput::He => DocumentLanguage::Hebrew,
                DocumentLanguageInput::En => DocumentLanguage::English,
            }),
            customer: customer(&input.customer),
            description: input.description.clone(),
            items: input
                .items
                .iter()
                .map(|i| LineItem {
                    name: i.name.clone(),
                    sku: i.sku.clone(),
                    quantity: i.quantity,
                    unit_price_agorot: i.unit_price_agorot,
                    description: i.description.clone(),
                })
                .collect(),
            payments: input
                .payments
                .iter()
                .map(|p| DocumentPayment {
                    amount_agorot: p.amount_agorot,
                    details: match &p.method {
                        PaymentMethodInput::Cash => PaymentDetails::Cash,
                        PaymentMethodInput::BankTransfer {
                            bank,
                            branch,
                            reference,
                        } => PaymentDetails::BankTransfer {
                            bank_number: *bank,
                            branch_number: *branch,
                            // The payer's account number never enters a run.
                            account_number: String::new(),
                            reference: reference.clone(),
                        },
                        PaymentMethodInput::CreditCard { brand, last4 } => {
                            PaymentDetails::CreditCard {
                                card_brand: brand.clone(),
                                last4: last4.clone(),
                            }
                        }
                        PaymentMethodInput::Other { kind, description } => PaymentDetails::Other {
                            kind: kind.clone(),
                            description: description.clone(),
                        },
                    },
                })
                .collect(),
            vat_included: input.vat_included,
            original_document_id: None,
            send_by_email: input.send_by_email,
        }
    }

    /// The document's total, VAT included, when the request alone tells it: the items' total
    /// when their prices include VAT, else the payments' total of a receipt.
    fn total(input: &DocumentInput) -> Option<i64> {
        if !input.items.is_empty() && input.vat_included {
            input
                .items
                .iter()
                .try_fold(0i64, |sum, i| sum.checked_add(i.total_agorot()?))
        } else if input.items.is_empty() && !input.payments.is_empty() {
            input
                .payments
                .iter()
                .try_fold(0i64, |sum, p| sum.checked_add(p.amount_agorot))
        } else {
            None
        }
    }

    fn issued(
        ctx: &StepContext,
        input: &DocumentInput,
        company_id: i64,
        document: IssuedDocument,
    ) -> StepSuccess {
        let document_type = input.document_type.provider_type() as i32;
        let total = Self::total(input);
        let output = compact(json!({
            "reference": input.reference,
            "document_id": document.document_id,
            "document_number": document.document_number,
            "document_type": input.document_type,
            "total_agorot": total,
            "download_url": document.download_url,
        }));
        let payload = DocumentIssuedEvent {
            run_id: ctx.run_id.0,
            vendor_id: input.vendor_id,
            reference: input.reference.clone(),
            document_id: document.document_id,
            document_number: document.document_number,
            document_type: output["document_type"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            total_agorot: total,
            download_url: document.download_url.clone(),
        };
        StepSuccess::new(json!({ "document": output }))
            .with_event(event(events::DOCUMENT_ISSUED, &payload))
            .with_write(RecordDocument {
                vendor_id: input.vendor_id,
                run_id: ctx.run_id.0,
                reference: input.reference.clone(),
                company_id,
                document_id: document.document_id,
                document_number: document.document_number,
                document_type,
                total_agorot: total,
                download_url: document.download_url,
            })
    }

    async fn execute_inner(&self, ctx: &StepContext) -> Step<StepOutcome> {
        let input: DocumentInput = parse(ctx)?;
        // The amount ceiling is the API's setting, applied when the request was admitted; here
        // the input's own rules and overflow-checked sums are enough.
        input
            .validate(i64::MAX)
            .map_err(|errors| failure::fatal("invalid_input", errors.to_string()))?;
        let (company_id, credentials) = {
            let mut conn = connection(ctx).await?;
            let ready =
                ready_vendor(&mut conn, &self.config, input.vendor_id, Purpose::Document).await?;
            let earlier = provider_records::documents_for_reference(
                &mut conn,
                input.vendor_id,
                &input.reference,
            )
            .await
            .map_err(|e| failure::database(&e))?;
            if let Some(done) = earlier
                .iter()
                .find(|d| d.source == DocumentSource::Document.as_str())
            {
                return Err(failure::fatal(
                    "document_already_issued",
                    format!(
                        "reference {} of vendor {} was already issued as SUMIT document {}{}; no \
                         second document was created",
                        input.reference,
                        input.vendor_id,
                        done.provider_document_id,
                        done.run_id
                            .map(|r| format!(" (run {r})"))
                            .unwrap_or_default()
                    ),
                ));
            }
            ready
        };
        Ok(
            match self
                .config
                .provider
                .create_document(&credentials, &Self::request(&input))
                .await
            {
                Ok(document) => {
                    StepOutcome::Success(Self::issued(ctx, &input, company_id, document))
                }
                // A technical refusal may come after the document was created: do not repeat
                // blindly.
                Err(
                    error @ ProviderError::Rejected {
                        kind: RejectionKind::Technical,
                        ..
                    },
                ) => StepOutcome::Unknown(failure::envelope(&error)),
                Err(error) => failure::provider_outcome(&error),
            },
        )
    }
}

impl StepHandler for IssueDocument {
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, StepOutcome> {
        Box::pin(async move { self.execute_inner(ctx).await.unwrap_or_else(|o| o) })
    }

    fn reconcile<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, ReconcileOutcome> {
        let reference = parse::<DocumentInput>(ctx)
            .map(|i| format!("reference {} of vendor {}", i.reference, i.vendor_id))
            .unwrap_or_else(|_| "this document".to_owned());
        let outcome = ReconcileOutcome::CannotKnow {
            reason: format!(
                "the answer of documents/create for {reference} was lost, and SUMIT offers this \
                 client no lookup of documents by reference; creating it again could issue a \
                 second tax document. Check the vendor's documents at SUMIT: if the document was \
                 issued, cancel this run (and record it by hand); if it was not, resume the run to \
                 issue it"
            ),
        };
        Box::pin(async move { outcome })
    }
}

//! The run input shapes of the three workflows. They are defined, with their validation, in
//! `domain::orders`, so that the API can check a request without depending on this crate; they
//! are re-exported here so that `steps::input::ChargeInput` and friends keep working.
//!
//! What stays here is what the domain must not know: how a [`DocumentKind`] maps to the
//! provider's document type.

pub use domain::orders::{
    ChargeInput, CustomerInput, DocumentInput, DocumentKind, DocumentLanguageInput,
    DocumentPaymentInput, ItemInput, MAX_INSTALLMENTS, MAX_REFERENCE_CHARS, OnboardingInput,
    PaymentMethodInput,
};
use providers::sumit::DocumentType;

/// The provider's side of a [`DocumentKind`]. A trait, because the kind is a domain type and the
/// provider's type belongs to `providers`, which the domain must not depend on.
pub trait ProviderDocumentType {
    /// SUMIT's document type for this kind.
    fn provider_type(self) -> DocumentType;
}

impl ProviderDocumentType for DocumentKind {
    fn provider_type(self) -> DocumentType {
        match self {
            DocumentKind::Invoice => DocumentType::Invoice,
            DocumentKind::InvoiceAndReceipt => DocumentType::InvoiceAndReceipt,
            DocumentKind::Receipt => DocumentType::Receipt,
            DocumentKind::ProformaInvoice => DocumentType::ProformaInvoice,
            DocumentKind::DonationReceipt => DocumentType::DonationReceipt,
            DocumentKind::CreditInvoice => DocumentType::CreditInvoice,
            DocumentKind::CreditInvoiceAndReceipt => DocumentType::CreditInvoiceAndReceipt,
            DocumentKind::CreditReceipt => DocumentType::CreditReceipt,
            DocumentKind::Order => DocumentType::Order,
            DocumentKind::PriceQuotation => DocumentType::PriceQuotation,
            DocumentKind::PaymentRequest => DocumentType::PaymentRequest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_document_kind_maps_to_the_provider_type_of_the_same_name() {
        // The provider's type is sent as SUMIT's number, so a wrong arm would issue another
        // kind of document without any error: the variant names must agree one to one.
        let kinds = [
            DocumentKind::Invoice,
            DocumentKind::InvoiceAndReceipt,
            DocumentKind::Receipt,
            DocumentKind::ProformaInvoice,
            DocumentKind::DonationReceipt,
            DocumentKind::CreditInvoice,
            DocumentKind::CreditInvoiceAndReceipt,
            DocumentKind::CreditReceipt,
            DocumentKind::Order,
            DocumentKind::PriceQuotation,
            DocumentKind::PaymentRequest,
        ];
        for kind in kinds {
            assert_eq!(
                format!("{kind:?}"),
                format!("{:?}", kind.provider_type()),
                "{kind:?}"
            );
        }
    }
}

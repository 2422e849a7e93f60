//! HTTP clients of the payment providers vendorflow drives: SUMIT first (Cardcom, PayPal IPN and
//! Worldpay later).
//!
//! This crate owns the wire formats and the classification of every outcome: success, business
//! rejection, card decline (a final business outcome of a charge), retryable failure, and unknown
//! outcome (the request may have been applied). It also offers the lookups the engine needs to
//! reconcile an unknown outcome.
//!
//! It must not retry, sleep, persist or decide policy: the engine owns retries, backoff and
//! reconciliation. It must never report an unknown outcome as a plain failure, and never let a
//! credential, bank detail or token reach Debug output, an error or a log. It depends on `domain`
//! only, never on the engine, the store or the sandbox.

mod error;
pub mod observability;
pub mod sumit;

pub use error::{ErrorClass, ProviderError, RejectionKind};

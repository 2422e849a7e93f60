//! Pure domain types and rules of vendorflow: vendor applications parsed from the marketplace's
//! JSON, Israeli identity, bank-account and phone rules, money in agorot and VAT, the error
//! envelope, run and step states, the workflow-definition model, and the run inputs of the
//! charge, document and onboarding workflows with their validation, and what every request body
//! must satisfy (no control characters, no unknown members).
//!
//! This crate must not do IO: no database, no network, no files, no clock reads outside of
//! values passed in. Everything here is deterministic and unit-testable.

pub mod bank;
pub mod card;
pub mod definition;
pub mod envelope;
pub mod errors;
pub mod input;
pub mod israeli_id;
pub mod money;
pub mod order_status;
pub mod orders;
pub mod phone;
pub mod run;
pub mod vat;
pub mod vendor;
pub mod vendor_state;
pub mod webhook_events;

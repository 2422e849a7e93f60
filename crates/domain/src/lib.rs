//! Pure domain types and rules of vendorflow: vendor applications parsed from the marketplace's
//! JSON, Israeli identity, bank-account and phone rules, money in agorot and VAT, the error
//! envelope, run and step states, and the workflow-definition model.
//!
//! This crate must not do IO: no database, no network, no files, no clock reads outside of
//! values passed in. Everything here is deterministic and unit-testable.

pub mod bank;
pub mod card;
pub mod errors;
pub mod israeli_id;
pub mod money;
pub mod phone;
pub mod vat;
pub mod vendor;

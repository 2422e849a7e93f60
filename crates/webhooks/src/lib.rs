//! Signed outbound webhooks: Standard Webhooks signing and verification, the retry schedule, the
//! egress policy, and the relay that delivers `vendorflow.outbox` events to marketplace endpoints.
//!
//! This crate owns the delivery side of the transactional outbox: it fans each committed outbox
//! event out to the endpoints of its marketplace exactly once, sends each delivery at least once
//! with `webhook-id` = the outbox id (receivers deduplicate on it), retries on the Standard
//! Webhooks schedule, and keeps dead letters for replay. Its SQL lives in `store::webhooks`.
//!
//! It must not write to the outbox or any engine table, must not keep a database transaction
//! open while a request is in flight, and must never log a body, a URL or a secret (only
//! delivery and endpoint ids, status codes and durations).

pub mod egress;
pub mod observability;
pub mod relay;
pub mod schedule;
pub mod signature;

pub use egress::EgressPolicy;
pub use relay::{Relay, RelayConfig, RelayError, TickReport};
pub use schedule::RetrySchedule;
pub use signature::{
    DEFAULT_TOLERANCE, SecretFormatError, VerifyError, WebhookSecret, sign, sign_all, verify,
    verify_parts,
};

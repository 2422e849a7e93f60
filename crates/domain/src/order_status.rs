//! An order's status as a marketplace sees it (a charge or a document), decided once from its
//! run's status and outcome: the API's charge and document reads use these names.
//!
//! This module must not do IO.

use serde::Serialize;

use crate::run::RunStatus;

/// Where a charge or a document stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Accepted; its run has not started yet.
    Pending,
    /// Its run is working on it (or waits for the vendor to become ready).
    Processing,
    /// Done: the charge was approved, or the document issued.
    Succeeded,
    /// The card issuer declined the charge: a final business outcome.
    Declined,
    /// It failed; nothing was charged or issued that is not recorded on the run.
    Failed,
    /// Its run is paused for an operator (e.g. a provider answer was lost and must be checked).
    ActionRequired,
    /// Its run was cancelled.
    Cancelled,
}

impl OrderStatus {
    /// Every status.
    pub const ALL: &'static [OrderStatus] = &[
        OrderStatus::Pending,
        OrderStatus::Processing,
        OrderStatus::Succeeded,
        OrderStatus::Declined,
        OrderStatus::Failed,
        OrderStatus::ActionRequired,
        OrderStatus::Cancelled,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Processing => "processing",
            OrderStatus::Succeeded => "succeeded",
            OrderStatus::Declined => "declined",
            OrderStatus::Failed => "failed",
            OrderStatus::ActionRequired => "action_required",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// The status of an order whose run has `status`, `outcome` and `attempt` (0 before its
    /// first try).
    pub fn of_run(status: RunStatus, outcome: Option<&str>, attempt: i32) -> OrderStatus {
        match status {
            RunStatus::Pending if attempt == 0 => OrderStatus::Pending,
            RunStatus::Pending | RunStatus::Running | RunStatus::Waiting => OrderStatus::Processing,
            RunStatus::Paused => OrderStatus::ActionRequired,
            RunStatus::Succeeded if outcome == Some("declined") => OrderStatus::Declined,
            RunStatus::Succeeded => OrderStatus::Succeeded,
            RunStatus::Failed => OrderStatus::Failed,
            RunStatus::Cancelled => OrderStatus::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_status_and_outcome_name_the_orders_status() {
        assert_eq!(
            OrderStatus::of_run(RunStatus::Pending, None, 0),
            OrderStatus::Pending
        );
        assert_eq!(
            OrderStatus::of_run(RunStatus::Pending, None, 2),
            OrderStatus::Processing
        );
        assert_eq!(
            OrderStatus::of_run(RunStatus::Waiting, None, 1),
            OrderStatus::Processing
        );
        assert_eq!(
            OrderStatus::of_run(RunStatus::Paused, None, 1),
            OrderStatus::ActionRequired
        );
        assert_eq!(
            OrderStatus::of_run(RunStatus::Succeeded, Some("declined"), 1),
            OrderStatus::Declined
        );
        assert_eq!(
            OrderStatus::of_run(RunStatus::Succeeded, Some("completed"), 1),
            OrderStatus::Succeeded
        );
        assert_eq!(
            OrderStatus::of_run(RunStatus::Failed, None, 3),
            OrderStatus::Failed
        );
        assert_eq!(
            OrderStatus::of_run(RunStatus::Cancelled, None, 0),
            OrderStatus::Cancelled
        );
    }
}

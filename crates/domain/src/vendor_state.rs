//! A vendor's state as a marketplace sees it, decided once from the vendor row and its latest
//! onboarding run: the API's vendor resource, the dashboard's vendor pages and the vendor webhook
//! events all use these names, so a paused onboarding reads `action_required` everywhere rather
//! than `pending`.
//!
//! This module must not do IO: it maps facts it is given to a state and a reason. The store's
//! state filter mirrors [`vendor_state`] in SQL and is tested against it.

use serde::Serialize;

use crate::run::RunStatus;

/// The workflow that onboards a vendor; its latest run is the one a vendor's state follows.
pub const ONBOARDING_WORKFLOW: &str = "vendor_onboarding";
/// The onboarding step that waits for the acquirer's manual approval of the terminal.
pub const TERMINAL_APPROVAL_STEP: &str = "await_terminal_approval";

/// Where a vendor stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum VendorState {
    /// Onboarding is under way; nothing is needed from anyone.
    Onboarding,
    /// The clearing terminal was requested and waits for the acquirer's manual approval; send the
    /// run the `terminal_approved` signal once it is approved.
    AwaitingApproval,
    /// Onboarding stopped and needs someone: see the state's reason for why and what to do.
    ActionRequired,
    /// The vendor can take charges (clearing) or issue documents (documents-only).
    Ready,
    /// Onboarding failed; an operator may retry the run once the cause is fixed.
    Failed,
    /// Onboarding was cancelled; the vendor will not become ready.
    Cancelled,
}

impl VendorState {
    /// Every state, in the order a vendor usually passes through them.
    pub const ALL: &'static [VendorState] = &[
        VendorState::Onboarding,
        VendorState::AwaitingApproval,
        VendorState::ActionRequired,
        VendorState::Ready,
        VendorState::Failed,
        VendorState::Cancelled,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            VendorState::Onboarding => "onboarding",
            VendorState::AwaitingApproval => "awaiting_approval",
            VendorState::ActionRequired => "action_required",
            VendorState::Ready => "ready",
            VendorState::Failed => "failed",
            VendorState::Cancelled => "cancelled",
        }
    }

    /// The state of a wire name, if it is one.
    pub fn parse(word: &str) -> Option<VendorState> {
        VendorState::ALL
            .iter()
            .copied()
            .find(|state| state.as_str() == word)
    }

    /// Whether someone has to act before the vendor can become ready.
    pub fn needs_attention(self) -> bool {
        matches!(
            self,
            VendorState::AwaitingApproval | VendorState::ActionRequired | VendorState::Failed
        )
    }
}

impl std::fmt::Display for VendorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stable code of why a vendor needs attention, a backend can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// The terminal waits for the acquirer's manual approval.
    TerminalApprovalPending,
    /// No approval came before the wait's deadline.
    TerminalApprovalOverdue,
    /// The vendor's API keys at the provider are needed from an operator.
    ApiKeysRequired,
    /// Whether the provider created the organization is unknown.
    OrganizationUnconfirmed,
    /// Whether the provider took the terminal request is unknown.
    TerminalRequestUnconfirmed,
    /// The onboarding paused for another reason (see the message).
    OnboardingPaused,
    /// The onboarding failed.
    OnboardingFailed,
    /// The onboarding was cancelled.
    OnboardingCancelled,
}

impl ReasonCode {
    /// Every code.
    pub const ALL: &'static [ReasonCode] = &[
        ReasonCode::TerminalApprovalPending,
        ReasonCode::TerminalApprovalOverdue,
        ReasonCode::ApiKeysRequired,
        ReasonCode::OrganizationUnconfirmed,
        ReasonCode::TerminalRequestUnconfirmed,
        ReasonCode::OnboardingPaused,
        ReasonCode::OnboardingFailed,
        ReasonCode::OnboardingCancelled,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::TerminalApprovalPending => "terminal_approval_pending",
            ReasonCode::TerminalApprovalOverdue => "terminal_approval_overdue",
            ReasonCode::ApiKeysRequired => "api_keys_required",
            ReasonCode::OrganizationUnconfirmed => "organization_unconfirmed",
            ReasonCode::TerminalRequestUnconfirmed => "terminal_request_unconfirmed",
            ReasonCode::OnboardingPaused => "onboarding_paused",
            ReasonCode::OnboardingFailed => "onboarding_failed",
            ReasonCode::OnboardingCancelled => "onboarding_cancelled",
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a vendor is in a needs-attention state, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateReason {
    /// A stable code a backend can branch on.
    pub code: ReasonCode,
    /// Why, in words: the run's own reason when it gave one.
    pub message: String,
    /// What to do about it.
    pub action: &'static str,
}

/// What the state is decided from: the vendor's stored onboarding state and its latest
/// onboarding run, if any.
#[derive(Debug, Clone, Copy)]
pub struct VendorFacts<'a> {
    /// `vendors.onboarding_state`: `pending`, `onboarding` or `ready`.
    pub onboarding_state: &'a str,
    /// The latest onboarding run.
    pub run: Option<OnboardingRunFacts<'a>>,
}

/// The facts of an onboarding run the state depends on.
#[derive(Debug, Clone, Copy)]
pub struct OnboardingRunFacts<'a> {
    /// Its status.
    pub status: RunStatus,
    /// The step it is at.
    pub step: &'a str,
    /// Why it is paused or failed, when it says.
    pub status_reason: Option<&'a str>,
}

/// The vendor's state and, for the needs-attention states, why and what to do.
pub fn vendor_state(facts: &VendorFacts<'_>) -> (VendorState, Option<StateReason>) {
    if facts.onboarding_state == "ready" {
        return (VendorState::Ready, None);
    }
    let Some(run) = facts.run else {
        return (VendorState::Onboarding, None);
    };
    let said = |fallback: &str| {
        run.status_reason
            .filter(|reason| !reason.trim().is_empty())
            .unwrap_or(fallback)
            .to_owned()
    };
    match run.status {
        RunStatus::Succeeded => (VendorState::Ready, None),
        RunStatus::Waiting if run.step == TERMINAL_APPROVAL_STEP => (
            VendorState::AwaitingApproval,
            Some(StateReason {
                code: ReasonCode::TerminalApprovalPending,
                message: "The clearing terminal was requested; the acquirer approves it by hand."
                    .to_owned(),
                action: "Once the acquirer approves the terminal, send the onboarding run the \
                         `terminal_approved` signal (POST /v1/runs/{run_id}/signals/terminal_approved).",
            }),
        ),
        RunStatus::Pending | RunStatus::Running | RunStatus::Waiting => {
            (VendorState::Onboarding, None)
        }
        RunStatus::Paused => {
            let (code, action) = paused_at(run.step);
            (
                VendorState::ActionRequired,
                Some(StateReason {
                    code,
                    message: said("The onboarding run is paused."),
                    action,
                }),
            )
        }
        RunStatus::Failed => (
            VendorState::Failed,
            Some(StateReason {
                code: ReasonCode::OnboardingFailed,
                message: said("The onboarding run failed."),
                action: "Fix the cause named in the message (the vendor's details at the \
                         provider, or the provider's availability), then ask an operator to \
                         retry the onboarding run.",
            }),
        ),
        RunStatus::Cancelled => (
            VendorState::Cancelled,
            Some(StateReason {
                code: ReasonCode::OnboardingCancelled,
                message: said("The onboarding run was cancelled."),
                action: "The vendor will not become ready; onboard it again under a new \
                         external id if it should.",
            }),
        ),
    }
}

/// The vendor state that an event of a run of `workflow`, now `status` at `step`, reports: the
/// onboarding's run events (`vendor.onboarding_paused`, `…_failed`, `…_cancelled`) carry it as
/// `state`, so that a backend learns from the webhook what the vendor resource would say. `None`
/// for other workflows.
pub fn event_state(workflow: &str, status: RunStatus, step: &str) -> Option<VendorState> {
    (workflow == ONBOARDING_WORKFLOW).then(|| {
        vendor_state(&VendorFacts {
            onboarding_state: "onboarding",
            run: Some(OnboardingRunFacts {
                status,
                step,
                status_reason: None,
            }),
        })
        .0
    })
}

/// The code and the action of a pause at `step` of the onboarding.
fn paused_at(step: &str) -> (ReasonCode, &'static str) {
    match step {
        "create_organization" => (
            ReasonCode::OrganizationUnconfirmed,
            "An operator checks at SUMIT whether the vendor's organization exists, then \
             resumes the onboarding run.",
        ),
        "capture_api_keys" => (
            ReasonCode::ApiKeysRequired,
            "An operator enters the vendor's SUMIT API keys (dashboard or admin API: supply API \
             keys), then resumes the onboarding run.",
        ),
        "open_terminal" => (
            ReasonCode::TerminalRequestUnconfirmed,
            "An operator checks at SUMIT whether the vendor's terminal was requested, then \
             resumes the onboarding run.",
        ),
        TERMINAL_APPROVAL_STEP => (
            ReasonCode::TerminalApprovalOverdue,
            "No approval came before the deadline: ask the acquirer, then send \
             `terminal_approved` to the onboarding run or have an operator resume it.",
        ),
        _ => (
            ReasonCode::OnboardingPaused,
            "An operator looks at the onboarding run's history, fixes the cause and resumes it.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_run(
        status: RunStatus,
        step: &str,
        reason: Option<&str>,
    ) -> (VendorState, Option<StateReason>) {
        vendor_state(&VendorFacts {
            onboarding_state: "onboarding",
            run: Some(OnboardingRunFacts {
                status,
                step,
                status_reason: reason,
            }),
        })
    }

    #[test]
    fn a_paused_onboarding_is_action_required_with_the_runs_reason() {
        let (state, reason) = with_run(
            RunStatus::Paused,
            "capture_api_keys",
            Some("the keys were refused by SUMIT"),
        );
        assert_eq!(state, VendorState::ActionRequired);
        let reason = reason.unwrap();
        assert_eq!(reason.code, ReasonCode::ApiKeysRequired);
        assert_eq!(reason.message, "the keys were refused by SUMIT");
        assert!(reason.action.contains("API keys"));
    }

    #[test]
    fn each_run_status_has_its_state() {
        assert_eq!(
            with_run(RunStatus::Pending, "create_organization", None).0,
            VendorState::Onboarding
        );
        assert_eq!(
            with_run(RunStatus::Running, "open_terminal", None).0,
            VendorState::Onboarding
        );
        assert_eq!(
            with_run(RunStatus::Waiting, TERMINAL_APPROVAL_STEP, None).0,
            VendorState::AwaitingApproval
        );
        assert_eq!(
            with_run(RunStatus::Succeeded, "mark_ready", None).0,
            VendorState::Ready
        );
        let (failed, reason) = with_run(RunStatus::Failed, "open_terminal", None);
        assert_eq!(failed, VendorState::Failed);
        assert_eq!(reason.unwrap().message, "The onboarding run failed.");
        assert_eq!(
            with_run(RunStatus::Cancelled, "open_terminal", None).0,
            VendorState::Cancelled
        );
    }

    #[test]
    fn a_ready_vendor_is_ready_whatever_its_run_and_no_run_is_onboarding() {
        let ready = VendorFacts {
            onboarding_state: "ready",
            run: Some(OnboardingRunFacts {
                status: RunStatus::Paused,
                step: "mark_ready",
                status_reason: None,
            }),
        };
        assert_eq!(vendor_state(&ready), (VendorState::Ready, None));
        let new = VendorFacts {
            onboarding_state: "pending",
            run: None,
        };
        assert_eq!(vendor_state(&new).0, VendorState::Onboarding);
    }

    #[test]
    fn only_the_onboardings_events_report_a_vendor_state() {
        assert_eq!(
            event_state(ONBOARDING_WORKFLOW, RunStatus::Paused, "open_terminal"),
            Some(VendorState::ActionRequired)
        );
        assert_eq!(
            event_state(ONBOARDING_WORKFLOW, RunStatus::Failed, "open_terminal"),
            Some(VendorState::Failed)
        );
        assert_eq!(
            event_state("vendor_charge", RunStatus::Paused, "charge_customer"),
            None
        );
    }

    #[test]
    fn every_state_parses_back_from_its_name() {
        for state in VendorState::ALL {
            assert_eq!(VendorState::parse(state.as_str()), Some(*state));
        }
        assert_eq!(VendorState::parse("pending"), None);
    }
}

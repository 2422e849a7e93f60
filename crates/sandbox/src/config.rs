//! How a sandbox starts: the marketplace's credentials, terminal approval, seed, faults, the
//! switches for behaviour the reference marks as unverified, and where it keeps its state.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDateTime;

use crate::faults::FaultPlan;

/// The documented development CompanyID of the marketplace.
pub const DEV_MARKETPLACE_COMPANY_ID: i64 = 1000;
/// The documented development APIKey of the marketplace. It is a fixed, public sandbox value.
pub const DEV_MARKETPLACE_API_KEY: &str = "vendorflow-sandbox-marketplace-key";

/// When a terminal opened through `openupayterminal` leaves `pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalApproval {
    /// Only a control call (`/_sandbox/terminals/{id}/approve` or `/reject`) decides.
    Manual,
    /// Approved as soon as it is requested.
    Immediate,
    /// Approved once this long has passed since the (latest) request, unless a control call
    /// decided first.
    AfterDelay(Duration),
}

/// Everything a sandbox starts with. `Default` gives the documented development setup.
#[derive(Clone)]
pub struct SandboxConfig {
    /// The marketplace's organization, present from the start, allowed to create organizations.
    pub marketplace_company_id: i64,
    /// The marketplace's APIKey.
    pub marketplace_api_key: String,
    pub terminal_approval: TerminalApproval,
    /// Seeds fault decisions and every minted identifier and key, so a run is repeatable.
    pub seed: u64,
    /// Faults in force from the start; `/_sandbox/faults` changes them at run time.
    pub faults: FaultPlan,
    /// Reference §7.5: whether `payments/charge` honours `UniqueIdentifier` by replaying the
    /// stored answer of an earlier charge with the same identifier. The real behaviour is
    /// unverified, so this is off by default (the pessimistic reading).
    pub charge_unique_identifier: bool,
    /// Sandbox-only extension: payment rows in `payments/get` and `payments/list` carry the
    /// charge's `UniqueIdentifier`, which lets a client find a payment by it. The real rows are
    /// not known to carry it; turn this off to rehearse the production case.
    pub payments_expose_unique_identifier: bool,
    /// Rows per page of `payments/list`.
    pub list_page_size: usize,
    /// The provider's clock (Israel local time), frozen at this value; `None` follows the system
    /// clock. `/_sandbox/clock` changes it at run time.
    pub clock: Option<NaiveDateTime>,
    /// The CompanyID the first created organization gets (the next ones count up). A sandbox
    /// restarted next to a database that remembers earlier organizations needs a fresh range,
    /// or it would hand out ids those rows already hold.
    pub first_company_id: i64,
    /// Where the sandbox keeps its state across restarts; `None` (the default) keeps it in
    /// memory only, so every test starts empty.
    pub state_file: Option<StateFile>,
}

/// A JSON file holding the sandbox's state (organizations with their keys, terminals,
/// customers, payments, documents, id counters and the call ledger): loaded at start, saved
/// atomically (a temporary file renamed over it, mode 0600) after every change and at a clean
/// stop. See docs/sandbox.md, "State across restarts".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFile {
    pub path: PathBuf,
    /// What the state belongs to, e.g. the database whose vendors hold the organizations. A file
    /// written for another owner is not loaded: it is renamed aside and the sandbox starts
    /// empty. `None` loads any file.
    pub owner: Option<String>,
}

impl StateFile {
    /// A state file at `path` for any owner.
    pub fn new(path: impl Into<PathBuf>) -> StateFile {
        StateFile {
            path: path.into(),
            owner: None,
        }
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            marketplace_company_id: DEV_MARKETPLACE_COMPANY_ID,
            marketplace_api_key: DEV_MARKETPLACE_API_KEY.to_string(),
            terminal_approval: TerminalApproval::AfterDelay(Duration::from_secs(5)),
            seed: 0x5eed,
            faults: FaultPlan::none(),
            charge_unique_identifier: false,
            payments_expose_unique_identifier: true,
            list_page_size: 100,
            clock: None,
            first_company_id: 100_001,
            state_file: None,
        }
    }
}

impl fmt::Debug for SandboxConfig {
    // The API key is left out even though the development key is public: configurations get
    // logged, and a real-looking key must never reach a log by habit.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("marketplace_company_id", &self.marketplace_company_id)
            .field("marketplace_api_key", &"[REDACTED]")
            .field("terminal_approval", &self.terminal_approval)
            .field("seed", &self.seed)
            .field("faults", &self.faults)
            .field("charge_unique_identifier", &self.charge_unique_identifier)
            .field(
                "payments_expose_unique_identifier",
                &self.payments_expose_unique_identifier,
            )
            .field("list_page_size", &self.list_page_size)
            .field("clock", &self.clock)
            .field("first_company_id", &self.first_company_id)
            .field("state_file", &self.state_file)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_api_key() {
        let text = format!("{:?}", SandboxConfig::default());
        assert!(!text.contains(DEV_MARKETPLACE_API_KEY));
        assert!(text.contains("1000"));
    }
}

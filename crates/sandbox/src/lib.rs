//! The provider sandbox: a local simulator of the SUMIT API that tests, benchmarks, the demo and
//! `vendorflow dev` talk to over real HTTP.
//!
//! It owns the simulated provider's state (organizations, terminals, customers, payments and
//! documents), serves the real SUMIT paths with the real envelope and the real server's lenient
//! parsing, keeps a ledger of everything that happened for tests to assert on, and injects faults
//! (latency, error pages, 429, hangs, resets, and a committed effect whose answer is lost) from a
//! seeded plan. Sandbox-only additions live under `/_sandbox/` and are listed in docs/sandbox.md.
//!
//! It must not depend on the engine, the store or the client crate: it simulates the provider,
//! not our use of it, and an independent implementation of the wire format is what catches the
//! client's mistakes. Its state lives in memory behind a mutex that is never held across an await;
//! with a [`StateFile`] (what `vendorflow dev` uses) it is also saved to a JSON file after every
//! change and loaded back at the next start, so organizations and their keys survive a restart.

mod clock;
mod config;
mod faults;
mod i18n;
mod ledger;
mod persist;
mod server;
mod state;
mod wire;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use chrono::NaiveDateTime;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{
    DEV_MARKETPLACE_API_KEY, DEV_MARKETPLACE_COMPANY_ID, SandboxConfig, StateFile, TerminalApproval,
};
pub use faults::{Fault, FaultPlan, FaultPlanError, FaultRule};
pub use ledger::{
    CallRecord, Ledger, LedgerCompany, LedgerCustomer, LedgerDocument, LedgerPayment,
    LedgerTerminal, TerminalState,
};
pub use persist::StateFileError;
pub use state::{CompanyKeys, ControlError};

use server::Shared;

/// The SUMIT paths the sandbox serves (with their trailing slash), for tests that iterate over
/// them.
pub const SUMIT_PATHS: [&str; 9] = [
    "/website/companies/create/",
    "/website/companies/getdetails/",
    "/billing/generalbilling/openupayterminal/",
    "/billing/payments/charge/",
    "/billing/payments/get/",
    "/billing/payments/list/",
    "/accounting/documents/create/",
    "/accounting/documents/getdetails/",
    "/accounting/general/verifybankaccount/",
];

/// The sandbox-only lookup of an organization by corporate number (docs/sandbox.md).
pub const FIND_COMPANY_PATH: &str = state::FIND_COMPANY_PATH;

/// Starts a sandbox on 127.0.0.1 at a free port, on the current tokio runtime, with the state
/// of its [`StateFile`] if it has one (an unreadable file is an `InvalidData` error).
///
/// The server stops when the handle is dropped or [`SandboxHandle::shutdown`] is awaited; the
/// state file is then written a last time.
pub async fn spawn(config: SandboxConfig) -> io::Result<SandboxHandle> {
    config
        .faults
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let shared = Arc::new(open(config)?);
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server::run(listener, Arc::clone(&shared), async move {
        let _ = rx.await;
    }));
    Ok(SandboxHandle {
        base_url: format!("http://{addr}"),
        addr,
        shared,
        shutdown: Some(tx),
        task: Some(task),
    })
}

/// Serves a sandbox on `listener` until `shutdown` completes; for `vendorflow sandbox --listen`.
/// With a [`StateFile`], the state is loaded first and written a last time at the end.
pub async fn serve(
    listener: TcpListener,
    config: SandboxConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    config
        .faults
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let shared = Arc::new(open(config)?);
    let served = server::run(listener, Arc::clone(&shared), shutdown).await;
    shared.save(true).map_err(io::Error::other)?;
    served
}

/// The shared world of a new sandbox, with its faults normalized and its state file loaded.
fn open(mut config: SandboxConfig) -> io::Result<Shared> {
    config.faults = server::normalize(config.faults);
    Shared::open(config).map_err(|e| {
        let kind = match &e {
            StateFileError::Read { source, .. } | StateFileError::Write { source, .. } => {
                source.kind()
            }
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    })
}

/// A running in-process sandbox, with the control operations tests need.
pub struct SandboxHandle {
    /// `http://127.0.0.1:PORT`, the base URL to give a SUMIT client.
    pub base_url: String,
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl std::fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHandle")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl SandboxHandle {
    /// A snapshot of everything that happened so far.
    pub fn ledger(&self) -> Ledger {
        self.shared.lock().ledger()
    }

    /// Replaces the fault plan.
    pub fn set_faults(&self, plan: FaultPlan) -> Result<(), FaultPlanError> {
        plan.validate()?;
        self.shared.lock().faults.set_plan(server::normalize(plan));
        Ok(())
    }

    /// Appends rules to the fault plan.
    pub fn add_faults(&self, plan: FaultPlan) -> Result<(), FaultPlanError> {
        plan.validate()?;
        self.shared.lock().faults.merge_plan(plan);
        Ok(())
    }

    /// The plan in force, with the remaining counts of `next` rules.
    pub fn faults(&self) -> FaultPlan {
        self.shared.lock().faults.plan().clone()
    }

    /// Approves the organization's terminal request, as Upay eventually does by hand.
    pub fn approve_terminal(&self, company_id: i64) -> Result<(), ControlError> {
        let decided = self.shared.lock().decide_terminal(company_id, true, None);
        self.shared.save_or_log(false);
        decided
    }

    /// Rejects the organization's terminal request.
    pub fn reject_terminal(&self, company_id: i64, reason: &str) -> Result<(), ControlError> {
        let decided =
            self.shared
                .lock()
                .decide_terminal(company_id, false, Some(reason.to_string()));
        self.shared.save_or_log(false);
        decided
    }

    /// Freezes the provider's clock (Israel local time), or lets it follow the system clock
    /// again with `None`.
    pub fn set_clock(&self, now: Option<NaiveDateTime>) {
        self.shared.lock().set_clock(now);
    }

    /// The provider's current local time.
    pub fn now(&self) -> NaiveDateTime {
        self.shared.lock().now()
    }

    /// The full keys of an organization (sandbox-only), e.g. to play an operator entering them.
    pub fn company_keys(&self, company_id: i64) -> Result<CompanyKeys, ControlError> {
        self.shared.lock().company_keys(company_id)
    }

    /// Forgets everything but the marketplace, and restores the configured faults and clock
    /// (the state file, if any, is emptied too).
    pub fn reset(&self) {
        self.shared.lock().reset();
        self.shared.save_or_log(false);
    }

    /// The state file, when the sandbox keeps its state in one.
    pub fn state_file(&self) -> Option<&std::path::Path> {
        self.shared.state_path()
    }

    pub fn marketplace_company_id(&self) -> i64 {
        self.shared.lock().config().marketplace_company_id
    }

    /// The marketplace's APIKey as configured (a sandbox value).
    pub fn marketplace_api_key(&self) -> String {
        self.shared.lock().config().marketplace_api_key.clone()
    }

    /// Stops accepting connections and waits for the open ones to finish; the state file, if
    /// any, is then written a last time.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
        // Changes are saved as they happen; this adds the calls made since the last change.
        self.shared.save_or_log(true);
    }
}

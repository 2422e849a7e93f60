//! The sandbox's control endpoints as the chaos run uses them (docs/sandbox.md, `/_sandbox/`):
//! the fault plan (on, then off), the ledger, and an organization's keys (canaries). Also the
//! fault plan itself.
//!
//! It must not call the SUMIT endpoints: the workers are the only ones who talk to the provider.

use std::time::Duration;

use anyhow::{Context, bail};
use sandbox::{CompanyKeys, Fault, FaultPlan, FaultRule, Ledger};

/// The endpoints whose effect, once committed, the caller may never hear about.
pub const CREATE_ORGANIZATION: &str = "/website/companies/create/";
pub const OPEN_TERMINAL: &str = "/billing/generalbilling/openupayterminal/";
pub const CHARGE: &str = "/billing/payments/charge/";

/// The faults of the chaos run: on organization create, terminal open and charge the provider
/// sometimes commits and then loses the answer (a TCP reset, or an answer later than the
/// client's 2 s timeout); everywhere, some 503s, 429s with Retry-After, hangs past the timeout
/// without effect, and a long tail of latency.
pub fn fault_plan() -> FaultPlan {
    let commit_then_drop = |p| FaultRule::with_probability(p, Fault::CommitThenDrop);
    let late_answer = FaultRule::with_probability(
        0.03,
        Fault::Hang {
            ms: 2_500,
            commit: true,
        },
    );
    FaultPlan::none()
        .on(CREATE_ORGANIZATION, commit_then_drop(0.15))
        .on(CREATE_ORGANIZATION, late_answer.clone())
        .on(
            CREATE_ORGANIZATION,
            FaultRule::with_probability(0.02, Fault::GarbledBody),
        )
        .on(OPEN_TERMINAL, commit_then_drop(0.08))
        .on(CHARGE, commit_then_drop(0.15))
        .on(CHARGE, late_answer)
        .on(
            "*",
            FaultRule::always(Fault::LongTail {
                median_ms: 80,
                p99_ms: 1_200,
            }),
        )
        .on(
            "*",
            FaultRule::with_probability(0.05, Fault::HttpError { status: 503 }),
        )
        .on(
            "*",
            FaultRule::with_probability(
                0.03,
                Fault::RateLimited {
                    retry_after_secs: 1,
                },
            ),
        )
        .on(
            "*",
            FaultRule::with_probability(
                0.02,
                Fault::Hang {
                    ms: 2_500,
                    commit: false,
                },
            ),
        )
}

/// The sandbox's control API.
pub struct Provider {
    http: reqwest::Client,
    base: String,
}

impl Provider {
    pub fn new(base: &str) -> anyhow::Result<Provider> {
        Ok(Provider {
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()?,
            base: base.to_owned(),
        })
    }

    /// Replaces the fault plan.
    pub async fn set_faults(&self, plan: &FaultPlan) -> anyhow::Result<()> {
        let response = self
            .http
            .put(format!("{}/_sandbox/faults", self.base))
            .json(plan)
            .send()
            .await
            .context("PUT /_sandbox/faults")?;
        if !response.status().is_success() {
            bail!("PUT /_sandbox/faults answered {}", response.status());
        }
        Ok(())
    }

    /// Removes every fault.
    pub async fn clear_faults(&self) -> anyhow::Result<()> {
        let response = self
            .http
            .delete(format!("{}/_sandbox/faults", self.base))
            .send()
            .await
            .context("DELETE /_sandbox/faults")?;
        if !response.status().is_success() {
            bail!("DELETE /_sandbox/faults answered {}", response.status());
        }
        Ok(())
    }

    /// Everything that happened at the provider.
    pub async fn ledger(&self) -> anyhow::Result<Ledger> {
        self.http
            .get(format!("{}/_sandbox/ledger", self.base))
            .send()
            .await
            .context("GET /_sandbox/ledger")?
            .error_for_status()?
            .json()
            .await
            .context("reading the ledger")
    }

    /// The keys the sandbox minted for an organization (they are canaries; never printed).
    pub async fn keys(&self, company_id: i64) -> anyhow::Result<CompanyKeys> {
        self.http
            .get(format!(
                "{}/_sandbox/companies/{company_id}/keys",
                self.base
            ))
            .send()
            .await
            .context("GET /_sandbox/companies/{id}/keys")?
            .error_for_status()?
            .json()
            .await
            .context("reading an organization's keys")
    }
}

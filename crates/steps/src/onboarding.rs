//! The steps of `vendor_onboarding`: create the vendor's organization, capture and prove its
//! keys, request its clearing terminal, wait for the terminal's approval (sandbox poll), and mark
//! the vendor ready.

use std::sync::Arc;
use std::time::Duration;

use domain::envelope::ErrorEnvelope;
use domain::vendor::{BusinessType, ModeKind};
use domain::vendor_state::VendorState;
use domain::webhook_events::{VendorMode, VendorProviderEvent, VendorReadyEvent};
use engine::{
    PollHandler, PollOutcome, ReconcileOutcome, StepContext, StepHandler, StepOutcome, StepSuccess,
};
use futures::future::BoxFuture;
use providers::ErrorClass;
use providers::sumit::{
    Application, CompanyType, CreateCompany, CreatedCompany, OpenTerminal as OpenTerminalRequest,
    UpayProgram,
};
use serde_json::{Value, json};
use sqlx::PgConnection;
use store::provider_records::{self, KeysState, ProviderAccount, TerminalState};

use crate::input::OnboardingInput;
use crate::keys::{self, BankError};
use crate::writes::{
    KeysActive, RecordKeysLost, StoreCreatedOrganization, TerminalRequested, VendorReady,
};
use crate::{StepsConfig, doubt, event, events, failure};

type Step<T> = Result<T, StepOutcome>;

/// The onboarding input of the run, checked against the run's subject.
fn onboarding_input(ctx: &StepContext) -> Step<OnboardingInput> {
    let input: OnboardingInput =
        serde_json::from_value((*ctx.input).clone()).map_err(|e| failure::bad_input(ctx, &e))?;
    if let Some(subject) = ctx.subject_id
        && subject != input.vendor_id
    {
        return Err(failure::fatal(
            "invalid_input",
            format!(
                "the run's subject {subject} is not the vendor {} of its input",
                input.vendor_id
            ),
        ));
    }
    Ok(input)
}

async fn connection(ctx: &StepContext) -> Step<sqlx::pool::PoolConnection<sqlx::Postgres>> {
    ctx.pool.acquire().await.map_err(|e| failure::database(&e))
}

async fn account_of(
    conn: &mut PgConnection,
    input: &OnboardingInput,
) -> Step<Option<ProviderAccount>> {
    provider_records::account(conn, input.vendor_id)
        .await
        .map_err(|e| failure::database(&e))
}

/// SUMIT's company type for the vendor's business type, as `domain` decides it.
fn company_type(business_type: BusinessType) -> Option<CompanyType> {
    match business_type.provider_company_type() {
        0 => Some(CompanyType::CompanyWithVat),
        1 => Some(CompanyType::VatExemptDealer),
        2 => Some(CompanyType::LicensedDealer),
        3 => Some(CompanyType::Fellowship),
        4 => Some(CompanyType::Partnership),
        5 => Some(CompanyType::CommunityInterestCompany),
        _ => None,
    }
}

/// Whether SUMIT's refusal text says the corporate number is already registered. The real text is
/// not documented, so this recognises the usual English and Hebrew phrasings; it only ever turns
/// a failure into a pause for an operator, never into a second organization.
fn looks_like_duplicate(message: &str) -> bool {
    let lower = message.to_lowercase();
    [
        "already exist",
        "already registered",
        "duplicate",
        "כבר קיים",
        "קיים כבר",
        "כבר רשום",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

/// The organization is known to exist and its keys are not: record that, and let
/// `capture_api_keys` pause for an operator.
fn keys_lost(input: &OnboardingInput, company_id: Option<i64>, problem: String) -> StepSuccess {
    StepSuccess::new(json!({
        "organization": {"company_id": company_id, "keys": "missing", "problem": problem}
    }))
    .with_write(RecordKeysLost {
        vendor_id: input.vendor_id,
        company_id,
        problem,
    })
}

/// The organization this vendor already has, per our records (an earlier generation of the
/// step, or keys an operator entered): adopted without any call.
async fn known_organization(
    conn: &mut PgConnection,
    input: &OnboardingInput,
) -> Step<Option<StepSuccess>> {
    let Some(account) = account_of(conn, input).await? else {
        return Ok(None);
    };
    if account.keys_state == KeysState::Missing {
        return Ok(Some(StepSuccess::new(json!({
            "organization": {"company_id": account.company_id, "keys": "missing",
                             "problem": account.keys_problem}
        }))));
    }
    let stored = keys::has_api_key(conn, input.vendor_id)
        .await
        .map_err(|e| failure::secret(&e))?;
    Ok(match account.company_id {
        Some(company_id) if stored => Some(StepSuccess::new(json!({
            "organization": {"company_id": company_id, "keys": "stored", "adopted": true}
        }))),
        _ => None,
    })
}

/// The other vendor that already holds organization `company_id`, if any: an organization found
/// by corporate number is adopted only if no other vendor has it.
async fn held_by_another(
    ctx: &StepContext,
    input: &OnboardingInput,
    company_id: i64,
) -> Step<Option<String>> {
    let mut conn = connection(ctx).await?;
    let owner = provider_records::vendor_with_company(&mut conn, company_id)
        .await
        .map_err(|e| failure::database(&e))?;
    Ok(owner.filter(|v| *v != input.vendor_id).map(|other| {
        format!(
            "SUMIT organization {company_id} with corporate number {} already belongs to vendor \
             {other}; two vendors cannot share an organization. Check which vendor is right, then \
             cancel this run or resume it",
            input.application.corporate_number.as_str()
        )
    }))
}

/// What the sandbox-only lookup by corporate number says.
#[derive(Debug, Clone, Copy)]
enum Lookup {
    Found(i64),
    Absent,
    /// Not offered (production) or failed: nothing is known.
    Unavailable,
}

/// Step `create_organization`: creates the vendor's organization with the marketplace's
/// credentials (applications `CreditCard` + `Accounting` for clearing vendors, `Accounting` for
/// documents-only ones). The keys in the answer are stored encrypted by the record of this step.
pub(crate) struct CreateOrganization {
    config: Arc<StepsConfig>,
}

impl CreateOrganization {
    pub(crate) fn new(config: Arc<StepsConfig>) -> Self {
        Self { config }
    }

    fn request(&self, input: &OnboardingInput) -> Step<CreateCompany> {
        let a = &input.application;
        let company_type = company_type(a.business_type).ok_or_else(|| {
            failure::fatal(
                "unsupported_business_type",
                format!(
                    "no SUMIT company type is known for business type `{}`",
                    a.business_type
                ),
            )
        })?;
        let applications = if input.is_clearing() {
            vec![Application::CreditCard, Application::Accounting]
        } else {
            vec![Application::Accounting]
        };
        Ok(CreateCompany {
            name: a.legal_name.as_str().to_owned(),
            corporate_number: a.corporate_number.as_str().to_owned(),
            company_type,
            email_address: a.email.as_str().to_owned(),
            phone: Some(a.phone.national()),
            address: None,
            country: Some("Israel".to_owned()),
            english_name: None,
            website: None,
            applications,
            hide_from_companies_list: false,
        })
    }

    async fn lookup(&self, input: &OnboardingInput) -> Lookup {
        if !self.config.sandbox_extensions {
            return Lookup::Unavailable;
        }
        match self
            .config
            .provider
            .find_company_by_corporate_number(
                &self.config.marketplace_credentials,
                input.application.corporate_number.as_str(),
            )
            .await
        {
            Ok(Some(found)) => Lookup::Found(found.company_id),
            Ok(None) => Lookup::Absent,
            Err(error) => {
                tracing::warn!(error = %error, "the lookup of an organization by corporate number failed");
                Lookup::Unavailable
            }
        }
    }

    fn created(&self, input: &OnboardingInput, created: CreatedCompany) -> StepSuccess {
        StepSuccess::new(json!({
            "organization": {"company_id": created.company_id, "keys": "stored"}
        }))
        .with_event(event(
            events::ORGANIZATION_CREATED,
            &VendorProviderEvent {
                vendor_id: input.vendor_id,
                state: VendorState::Onboarding,
                external_id: input.application.external_id.as_str().to_owned(),
                provider_company_id: created.company_id,
            },
        ))
        .with_write(StoreCreatedOrganization {
            keyring: self.config.keyring.clone(),
            vendor_id: input.vendor_id,
            company_id: created.company_id,
            api_key: created.api_key,
            api_public_key: created.api_public_key,
        })
    }

    async fn execute_inner(&self, ctx: &StepContext) -> Step<StepOutcome> {
        let input = onboarding_input(ctx)?;
        let request = self.request(&input)?;
        let in_doubt = {
            let mut conn = connection(ctx).await?;
            if let Some(known) = known_organization(&mut conn, &input).await? {
                return Ok(StepOutcome::Success(known));
            }
            doubt::earlier_attempt_in_doubt(&mut conn, ctx)
                .await
                .map_err(|e| failure::database(&e))?
        };
        let error = match self
            .config
            .provider
            .create_company(&self.config.marketplace_credentials, &request)
            .await
        {
            Ok(created) => return Ok(StepOutcome::Success(self.created(&input, created))),
            Err(error) if error.class() == ErrorClass::Rejected => error,
            Err(error) => return Ok(failure::provider_outcome(&error)),
        };
        // Refused: if it is because the organization exists, its keys are lost.
        let message = error
            .provider_message()
            .unwrap_or("(no message)")
            .to_owned();
        let number = input.application.corporate_number.as_str().to_owned();
        let lookup = self.lookup(&input).await;
        if let Lookup::Found(company_id) = lookup
            && let Some(reason) = held_by_another(ctx, &input, company_id).await?
        {
            return Ok(StepOutcome::Pause { reason });
        }
        Ok(match lookup {
            Lookup::Found(company_id) => StepOutcome::Success(keys_lost(
                &input,
                Some(company_id),
                format!(
                    "SUMIT refused to create the organization ({message}): organization {company_id} \
                     with corporate number {number} already exists, created earlier by the \
                     marketplace, and its API keys are not known here"
                ),
            )),
            Lookup::Absent => StepOutcome::Fatal(failure::envelope(&error)),
            Lookup::Unavailable if in_doubt => StepOutcome::Success(keys_lost(
                &input,
                None,
                format!(
                    "SUMIT refused to create the organization ({message}) after an earlier attempt \
                     whose answer was lost: that attempt most likely created the organization with \
                     corporate number {number}, and SUMIT returns its API keys only once"
                ),
            )),
            Lookup::Unavailable if looks_like_duplicate(&message) => {
                StepOutcome::Success(keys_lost(
                    &input,
                    None,
                    format!(
                        "SUMIT refused to create the organization because corporate number {number} \
                         is already registered ({message}); its API keys are not known here"
                    ),
                ))
            }
            Lookup::Unavailable => StepOutcome::Fatal(failure::envelope(&error)),
        })
    }

    async fn reconcile_inner(&self, ctx: &StepContext) -> ReconcileOutcome {
        let Ok(input) = onboarding_input(ctx) else {
            return engine::handler::cannot_know(ctx);
        };
        if let Ok(mut conn) = ctx.pool.acquire().await
            && let Ok(Some(known)) = known_organization(&mut conn, &input).await
        {
            return ReconcileOutcome::Applied(known);
        }
        let lookup = self.lookup(&input).await;
        if let Lookup::Found(company_id) = lookup {
            match held_by_another(ctx, &input, company_id).await {
                Ok(None) => {}
                Ok(Some(reason)) => return ReconcileOutcome::CannotKnow { reason },
                Err(_) => {
                    return ReconcileOutcome::CannotKnow {
                        reason: format!(
                            "organization {company_id} was found by corporate number, and the \
                             database could not say whether another vendor holds it; resume to \
                             check again"
                        ),
                    };
                }
            }
        }
        match lookup {
            Lookup::Found(company_id) => ReconcileOutcome::Applied(keys_lost(
                &input,
                Some(company_id),
                format!(
                    "the answer of companies/create was lost after SUMIT created organization \
                     {company_id} (found by corporate number {}); SUMIT returns API keys only once",
                    input.application.corporate_number.as_str()
                ),
            )),
            // Creating again is safe: SUMIT refuses a second organization with the same
            // corporate number, and the next attempt reads that refusal, after this attempt in
            // doubt, as "the organization exists, its keys are lost".
            Lookup::Absent | Lookup::Unavailable => ReconcileOutcome::NotApplied,
        }
    }
}

impl StepHandler for CreateOrganization {
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, StepOutcome> {
        Box::pin(async move { self.execute_inner(ctx).await.unwrap_or_else(|o| o) })
    }

    fn reconcile<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, ReconcileOutcome> {
        Box::pin(self.reconcile_inner(ctx))
    }
}

/// The reason an onboarding pauses when the organization's keys are unknown.
fn keys_missing_reason(input: &OnboardingInput, account: &ProviderAccount) -> String {
    let organization = match account.company_id {
        Some(id) => format!("SUMIT organization {id}"),
        None => "the SUMIT organization (its CompanyID is unknown too)".to_owned(),
    };
    let why = account
        .keys_problem
        .as_deref()
        .unwrap_or("they were never stored");
    format!(
        "{organization} of vendor {} (corporate number {}) exists but its API keys are not known: {why}. \
         An operator must enter the organization's CompanyID, APIKey and APIPublicKey (the \
         supply-keys action of the admin API or CLI), then resume this run",
        input.vendor_id,
        input.application.corporate_number.as_str()
    )
}

/// Step `capture_api_keys`: proves the stored keys with a cheap authenticated call
/// (`companies/getdetails`), checks they belong to the vendor's corporate number, and marks them
/// active. Keys unknown or refused: the run pauses for an operator.
pub(crate) struct CaptureApiKeys {
    config: Arc<StepsConfig>,
}

impl CaptureApiKeys {
    pub(crate) fn new(config: Arc<StepsConfig>) -> Self {
        Self { config }
    }

    async fn execute_inner(&self, ctx: &StepContext) -> Step<StepOutcome> {
        let input = onboarding_input(ctx)?;
        let (company_id, credentials) = {
            let mut conn = connection(ctx).await?;
            let Some(account) = account_of(&mut conn, &input).await? else {
                return Ok(StepOutcome::Pause {
                    reason: format!(
                        "no SUMIT organization is recorded for vendor {}; resume this run from \
                         `create_organization`",
                        input.vendor_id
                    ),
                });
            };
            let company_id = match (account.keys_state, account.company_id) {
                (KeysState::Missing, _) | (_, None) => {
                    return Ok(StepOutcome::Pause {
                        reason: keys_missing_reason(&input, &account),
                    });
                }
                (_, Some(id)) => id,
            };
            let credentials =
                keys::credentials(&mut conn, &self.config.keyring, input.vendor_id, company_id)
                    .await
                    .map_err(|e| failure::secret(&e))?;
            match credentials {
                Some(c) => (company_id, c),
                None => {
                    return Ok(StepOutcome::Pause {
                        reason: keys_missing_reason(&input, &account),
                    });
                }
            }
        };
        let details = match self.config.provider.get_company_details(&credentials).await {
            Ok(details) => details,
            Err(error) if error.class() == ErrorClass::Rejected => {
                return Ok(StepOutcome::Pause {
                    reason: format!(
                        "SUMIT refused the stored API keys of organization {company_id} ({}). An \
                         operator must enter the right keys (the supply-keys action), then resume \
                         this run",
                        error.provider_message().unwrap_or("(no message)")
                    ),
                });
            }
            Err(error) => return Ok(failure::provider_outcome(&error)),
        };
        let expected = input.application.corporate_number.as_str();
        if let Some(found) = &details.corporate_number
            && found.trim_start_matches('0') != expected.trim_start_matches('0')
        {
            return Ok(StepOutcome::Pause {
                reason: format!(
                    "the stored API keys open organization {company_id} with corporate number \
                     {found}, not the vendor's {expected}. An operator must enter the keys of the \
                     vendor's own organization (the supply-keys action), then resume this run"
                ),
            });
        }
        Ok(StepOutcome::Success(
            StepSuccess::new(json!({
                "keys_verified": {"company_id": company_id, "state": "active"}
            }))
            .with_write(KeysActive {
                vendor_id: input.vendor_id,
            }),
        ))
    }
}

impl StepHandler for CaptureApiKeys {
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, StepOutcome> {
        Box::pin(async move { self.execute_inner(ctx).await.unwrap_or_else(|o| o) })
    }

    /// A read changes nothing at the provider: it is simply repeated.
    fn reconcile<'a>(&'a self, _ctx: &'a StepContext) -> BoxFuture<'a, ReconcileOutcome> {
        Box::pin(async { ReconcileOutcome::NotApplied })
    }
}

/// Step `open_terminal` (clearing vendors): requests the vendor's Upay terminal with the vendor's
/// credentials and bank account, both decrypted only for the call.
pub(crate) struct OpenTerminal {
    config: Arc<StepsConfig>,
}

impl OpenTerminal {
    pub(crate) fn new(config: Arc<StepsConfig>) -> Self {
        Self { config }
    }

    fn already_requested(account: &ProviderAccount) -> Option<StepSuccess> {
        let state = match account.terminal_state {
            TerminalState::None => return None,
            TerminalState::Requested => "requested",
            TerminalState::Approved => "approved",
        };
        Some(StepSuccess::new(json!({
            "terminal": {"state": state, "requested_earlier": true}
        })))
    }

    async fn execute_inner(&self, ctx: &StepContext) -> Step<StepOutcome> {
        let input = onboarding_input(ctx)?;
        let (company_id, credentials, bank) = {
            let mut conn = connection(ctx).await?;
            let account = account_of(&mut conn, &input).await?;
            let Some(account) = account.filter(|a| a.keys_state == KeysState::Active) else {
                return Ok(StepOutcome::Pause {
                    reason: format!(
                        "vendor {} has no active SUMIT keys; resume this run from `capture_api_keys`",
                        input.vendor_id
                    ),
                });
            };
            if let Some(done) = Self::already_requested(&account) {
                return Ok(StepOutcome::Success(done));
            }
            let Some(company_id) = account.company_id else {
                return Ok(StepOutcome::Pause {
                    reason: keys_missing_reason(&input, &account),
                });
            };
            let credentials =
                keys::credentials(&mut conn, &self.config.keyring, input.vendor_id, company_id)
                    .await
                    .map_err(|e| failure::secret(&e))?
                    .ok_or_else(|| StepOutcome::Pause {
                        reason: keys_missing_reason(&input, &account),
                    })?;
            let bank =
                match keys::bank_account(&mut conn, &self.config.keyring, input.vendor_id).await {
                    Ok(bank) => bank,
                    Err(BankError::Secret(e)) => return Err(failure::secret(&e)),
                    Err(BankError::Missing) => {
                        return Err(failure::fatal(
                            "bank_account_missing",
                            format!(
                                "no bank account is stored for clearing vendor {}",
                                input.vendor_id
                            ),
                        ));
                    }
                    Err(BankError::Malformed) => {
                        return Err(failure::fatal(
                            "bank_account_malformed",
                            format!(
                                "the stored bank account of vendor {} is not `bank:branch:account`",
                                input.vendor_id
                            ),
                        ));
                    }
                };
            (company_id, credentials, bank)
        };
        let request = OpenTerminalRequest {
            bank_code: bank.bank,
            branch_code: bank.branch,
            account_number: bank.account,
            program: UpayProgram::default(),
            daily_credit: false,
            disable_payments_credit: false,
            enable_american_express_diners: false,
            enable_billing: false,
            email_address: Some(input.application.email.as_str().to_owned()),
        };
        Ok(
            match self
                .config
                .provider
                .open_upay_terminal(&credentials, &request)
                .await
            {
                Ok(()) => StepOutcome::Success(
                    StepSuccess::new(json!({"terminal": {"state": "requested"}}))
                        .with_event(event(
                            events::TERMINAL_REQUESTED,
                            &VendorProviderEvent {
                                vendor_id: input.vendor_id,
                                state: VendorState::AwaitingApproval,
                                external_id: input.application.external_id.as_str().to_owned(),
                                provider_company_id: company_id,
                            },
                        ))
                        .with_write(TerminalRequested {
                            vendor_id: input.vendor_id,
                        }),
                ),
                Err(error) => failure::provider_outcome(&error),
            },
        )
    }

    async fn reconcile_inner(&self, ctx: &StepContext) -> ReconcileOutcome {
        let Ok(input) = onboarding_input(ctx) else {
            return engine::handler::cannot_know(ctx);
        };
        let account = match ctx.pool.acquire().await {
            Ok(mut conn) => provider_records::account(&mut conn, input.vendor_id)
                .await
                .ok()
                .flatten(),
            Err(_) => None,
        };
        if let Some(done) = account.as_ref().and_then(Self::already_requested) {
            return ReconcileOutcome::Applied(done);
        }
        let organization = account.and_then(|a| a.company_id).map_or_else(
            || "the vendor's organization".to_owned(),
            |id| format!("organization {id}"),
        );
        ReconcileOutcome::CannotKnow {
            reason: format!(
                "the terminal request (openupayterminal) for SUMIT {organization} of vendor {} was \
                 sent and its answer was lost. SUMIT offers no way to look a terminal request up, \
                 and sending it again may file a second request at Upay. Check with SUMIT/Upay \
                 whether the request arrived: if it did, resume this run from \
                 `await_terminal_approval`; if it did not, resume the run to send it again",
                input.vendor_id
            ),
        }
    }
}

impl StepHandler for OpenTerminal {
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, StepOutcome> {
        Box::pin(async move { self.execute_inner(ctx).await.unwrap_or_else(|o| o) })
    }

    fn reconcile<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, ReconcileOutcome> {
        Box::pin(self.reconcile_inner(ctx))
    }
}

/// Poll `terminal_status` of the wait `await_terminal_approval`. The real SUMIT has no endpoint
/// that reports a terminal's approval, so against it this answers "not yet" without any call and
/// the wait ends by its signal. Against the sandbox (`sandbox_extensions`), it reads the terminal's
/// state from the sandbox-only ledger (`GET /_sandbox/ledger`, docs/sandbox.md).
pub(crate) struct TerminalStatusPoll {
    config: Arc<StepsConfig>,
    http: Option<reqwest::Client>,
}

impl TerminalStatusPoll {
    pub(crate) fn new(config: Arc<StepsConfig>) -> Self {
        let http = if config.sandbox_extensions {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .ok()
        } else {
            None
        };
        Self { config, http }
    }

    async fn poll_inner(&self, ctx: &StepContext) -> PollOutcome {
        let Some(http) = &self.http else {
            return PollOutcome::NotYet;
        };
        let failed = |code: &str, message: String| {
            PollOutcome::Failed(ErrorEnvelope::retryable(code, message))
        };
        let Ok(input) = onboarding_input(ctx) else {
            return failed(
                "invalid_input",
                "the run's input is not an onboarding input".to_owned(),
            );
        };
        let account = match ctx.pool.acquire().await {
            Ok(mut conn) => provider_records::account(&mut conn, input.vendor_id).await,
            Err(e) => Err(e),
        };
        let company_id = match account {
            Ok(Some(ProviderAccount {
                company_id: Some(id),
                ..
            })) => id,
            Ok(_) => return PollOutcome::NotYet,
            Err(e) => {
                return failed(
                    "database_unavailable",
                    format!("reading the vendor's account failed: {e}"),
                );
            }
        };
        let url = format!("{}/_sandbox/ledger", self.config.provider.base_url());
        let ledger: Value = match http.get(&url).send().await {
            Ok(response) if response.status().is_success() => match response.json().await {
                Ok(ledger) => ledger,
                Err(e) => {
                    return failed(
                        "sandbox_poll_failed",
                        format!("the sandbox ledger is not JSON: {e}"),
                    );
                }
            },
            Ok(response) => {
                return failed(
                    "sandbox_poll_failed",
                    format!("the sandbox ledger answered HTTP {}", response.status()),
                );
            }
            Err(e) => {
                return failed(
                    "sandbox_poll_failed",
                    format!("the sandbox ledger did not answer: {e}"),
                );
            }
        };
        let terminal = ledger
            .get("terminals")
            .and_then(Value::as_array)
            .and_then(|ts| {
                ts.iter()
                    .find(|t| t.get("company_id").and_then(Value::as_i64) == Some(company_id))
            });
        match terminal
            .and_then(|t| t.get("state"))
            .and_then(Value::as_str)
        {
            Some("approved") => PollOutcome::Ready(StepSuccess::new(json!({
                "terminal": {"state": "approved", "by": "sandbox_poll"}
            }))),
            Some("rejected") => failed(
                "terminal_rejected",
                format!(
                    "the sandbox rejected the terminal of organization {company_id}: {}",
                    terminal
                        .and_then(|t| t.get("rejection_reason"))
                        .and_then(Value::as_str)
                        .unwrap_or("no reason given")
                ),
            ),
            _ => PollOutcome::NotYet,
        }
    }
}

impl PollHandler for TerminalStatusPoll {
    fn poll<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, PollOutcome> {
        Box::pin(self.poll_inner(ctx))
    }
}

/// Step `mark_ready`: the vendor becomes `ready` (a clearing vendor's terminal `approved`), the
/// marketplace gets `vendor.ready`, and the vendor's charges and documents waiting for it are
/// signalled — all in the step's record.
pub(crate) struct MarkVendorReady;

impl MarkVendorReady {
    async fn execute_inner(ctx: &StepContext) -> Step<StepOutcome> {
        let input = onboarding_input(ctx)?;
        let company_id = {
            let mut conn = connection(ctx).await?;
            account_of(&mut conn, &input)
                .await?
                .and_then(|a| a.company_id)
        };
        Ok(StepOutcome::Success(
            StepSuccess::new(json!({"vendor": {"state": "ready"}}))
                .with_event(event(
                    events::VENDOR_READY,
                    &VendorReadyEvent {
                        vendor_id: input.vendor_id,
                        state: VendorState::Ready,
                        external_id: input.application.external_id.as_str().to_owned(),
                        mode: match input.application.mode {
                            ModeKind::Clearing => VendorMode::Clearing,
                            ModeKind::DocumentsOnly => VendorMode::DocumentsOnly,
                        },
                        provider_company_id: company_id,
                    },
                ))
                .with_write(VendorReady {
                    vendor_id: input.vendor_id,
                    clearing: input.is_clearing(),
                    onboarding_run: ctx.run_id.0,
                }),
        ))
    }
}

impl StepHandler for MarkVendorReady {
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, StepOutcome> {
        Box::pin(async move { Self::execute_inner(ctx).await.unwrap_or_else(|o| o) })
    }

    /// Everything this step does is in its record: if the record did not commit, nothing
    /// happened.
    fn reconcile<'a>(&'a self, _ctx: &'a StepContext) -> BoxFuture<'a, ReconcileOutcome> {
        Box::pin(async { ReconcileOutcome::NotApplied })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_business_type_has_a_sumit_company_type() {
        for t in BusinessType::ALL {
            assert!(company_type(t).is_some(), "{t}");
        }
        assert_eq!(
            company_type(BusinessType::ExemptDealer),
            Some(CompanyType::VatExemptDealer)
        );
    }

    #[test]
    fn a_duplicate_corporate_number_is_recognised_in_english_and_hebrew() {
        assert!(looks_like_duplicate(
            "An organization with this corporate number already exists."
        ));
        assert!(looks_like_duplicate("כבר קיים ארגון עם מספר תאגיד זה."));
        assert!(!looks_like_duplicate("The e-mail address is invalid."));
    }
}

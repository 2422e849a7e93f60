//! Every operator action, once, for the dashboard and the admin API alike.
//!
//! Each action checks its reason, finds its target in the operator's marketplace, does the work
//! on one transaction (the engine's operations take the caller's connection and nest as a
//! savepoint, so the run's history is written in it too) and appends the audit entry to the same
//! transaction before it commits: an action is never done without its audit entry, nor audited
//! as done without being done. A refused action is rolled back and then audited as `refused`
//! with why, so attempts show in the log as well.

use domain::run::{Actor, RunId, RunStatus};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use store::admin::NewAuditEntry;
use store::provider_records::SupplyKeysError;
use store::run_queries::RunFilter;
use store::tokens::Role;
use uuid::Uuid;

use super::BULK_CAP;

/// Where an action came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    Dashboard,
    Api,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Channel::Dashboard => "dashboard",
            Channel::Api => "api",
        }
    }
}

/// Who acts: a viewer or operator token of one marketplace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Operator {
    pub(crate) token_id: Uuid,
    pub(crate) marketplace_id: Uuid,
    pub(crate) role: Role,
    pub(crate) channel: Channel,
}

impl Operator {
    /// The actor recorded in run history.
    fn actor(&self) -> Actor {
        Actor::operator(format!("token:{}", self.token_id))
    }
}

/// Why an action was not done.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ActionError {
    /// A field is missing or invalid (422).
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// No such target in the operator's marketplace (404).
    #[error("no {0} with this id in your marketplace")]
    NotFound(&'static str),
    /// The action does not apply to the target now (409).
    #[error("{0}")]
    Refused(String),
    /// The database is unavailable (503).
    #[error("the service is unavailable")]
    Unavailable,
    /// Anything unexpected (500, logged).
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ActionError {
    fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        ActionError::Internal(Box::new(error))
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ActionError::Invalid {
            field,
            message: message.into(),
        }
    }

    /// Whether the refusal is the operator's business and belongs in the audit log (not an
    /// outage or a bug).
    fn is_refusal(&self) -> bool {
        matches!(self, ActionError::NotFound(_) | ActionError::Refused(_))
    }
}

impl From<sqlx::Error> for ActionError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut => ActionError::Unavailable,
            other => ActionError::internal(other),
        }
    }
}

impl From<store::StoreError> for ActionError {
    fn from(error: store::StoreError) -> Self {
        match error {
            store::StoreError::Database(error) => ActionError::from(error),
            other => ActionError::internal(other),
        }
    }
}

impl From<engine::EngineError> for ActionError {
    fn from(error: engine::EngineError) -> Self {
        use engine::EngineError;
        match error {
            EngineError::RunNotFound(_) => ActionError::NotFound("run"),
            EngineError::RunEnded(..) | EngineError::Transition(_) => {
                ActionError::Refused(error.to_string())
            }
            // The name is one the document lists; this run's workflow has no such step.
            EngineError::UnknownStep { .. } => ActionError::Refused(error.to_string()),
            // The name is one the document lists; this run's workflow never waits for it.
            EngineError::UnknownSignal { .. } => ActionError::Refused(error.to_string()),
            EngineError::ReasonRequired => ActionError::invalid("reason", "a reason is required"),
            EngineError::Database(error) => ActionError::from(error),
            other => ActionError::internal(other),
        }
    }
}

/// The longest reason kept.
const MAX_REASON_CHARS: usize = 500;

/// A reason, trimmed; refused when missing, blank, too long or holding a control character.
pub(crate) fn check_reason(reason: Option<&str>) -> Result<String, ActionError> {
    let reason = reason.map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        return Err(ActionError::invalid(
            "reason",
            "a reason is required: say why, it is kept in the audit log and the run's history",
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(ActionError::invalid(
            "reason",
            "the reason holds control characters (line breaks and tabs too): write it on one line",
        ));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ActionError::invalid(
            "reason",
            "the reason is longer than 500 characters",
        ));
    }
    Ok(reason.to_owned())
}

/// An action on one run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RunAction {
    RetryNow,
    ResumeFrom(String),
    Cancel,
    Pause,
    Resume,
    Signal(String, Value),
}

impl RunAction {
    /// The action's name in the audit log and in URLs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            RunAction::RetryNow => "retry_now",
            RunAction::ResumeFrom(_) => "resume_from",
            RunAction::Cancel => "cancel",
            RunAction::Pause => "pause",
            RunAction::Resume => "resume",
            RunAction::Signal(..) => "signal",
        }
    }

    fn check(&self) -> Result<(), ActionError> {
        match self {
            RunAction::ResumeFrom(step) if !crate::schemas::STEPS.contains(&step.as_str()) => {
                Err(ActionError::invalid(
                    "step",
                    format!(
                        "choose the step to resume from, one of {}",
                        crate::schemas::STEPS.join(", ")
                    ),
                ))
            }
            RunAction::Signal(name, _) if !crate::schemas::SIGNALS.contains(&name.as_str()) => {
                Err(ActionError::invalid(
                    "name",
                    format!(
                        "the signal must be one of {}",
                        crate::schemas::SIGNALS.join(", ")
                    ),
                ))
            }
            RunAction::Signal(_, payload) if !payload.is_object() => Err(ActionError::invalid(
                "payload",
                "the payload must be a JSON object",
            )),
            RunAction::Signal(_, payload) => {
                match domain::input::payload_too_deep(payload, "payload").first() {
                    Some(error) => Err(ActionError::invalid(
                        "payload",
                        format!(
                            "a payload holds scalars, or arrays and objects of scalars: `{}` \
                             is nested deeper",
                            error.field
                        ),
                    )),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    fn audit_data(&self) -> Option<Value> {
        match self {
            RunAction::ResumeFrom(step) => Some(json!({ "step": step })),
            // The payload is not copied: the run's history keeps it, redacted.
            RunAction::Signal(name, _) => Some(json!({ "signal": name })),
            _ => None,
        }
    }
}

/// What a done action reports.
#[derive(Debug, Clone)]
pub(crate) struct Done {
    /// What happened, in words (the run's new status, the keys' fingerprint, ...).
    pub(crate) detail: String,
    /// The audit entry written with it.
    pub(crate) audit_id: i64,
}

/// An audit entry to write with an action (or, refused, after it).
pub(crate) struct Audit<'a> {
    pub(crate) action: &'a str,
    pub(crate) target_kind: &'a str,
    pub(crate) target_id: Option<Uuid>,
    pub(crate) reason: Option<&'a str>,
    pub(crate) data: Option<Value>,
}

/// Appends `audit` on `conn` (the action's transaction) with its result and detail.
pub(crate) async fn append(
    conn: &mut PgConnection,
    who: &Operator,
    audit: &Audit<'_>,
    result: &str,
    detail: &str,
) -> Result<i64, sqlx::Error> {
    store::admin::append_audit(
        conn,
        &NewAuditEntry {
            marketplace_id: who.marketplace_id,
            token_id: Some(who.token_id),
            actor: None,
            role: who.role.as_str(),
            channel: who.channel.as_str(),
            action: audit.action,
            target_kind: audit.target_kind,
            target_id: audit.target_id,
            reason: audit.reason,
            result,
            detail: Some(detail),
            data: audit.data.clone(),
        },
    )
    .await
}

/// Audits a refusal (after the action's transaction rolled back) and returns the error.
/// Audits a refused action (after its transaction was rolled back) and gives the error back.
pub(crate) async fn refused(
    pool: &PgPool,
    who: &Operator,
    audit: &Audit<'_>,
    error: ActionError,
) -> ActionError {
    if error.is_refusal() {
        let written = async {
            let mut conn = pool.acquire().await?;
            append(&mut conn, who, audit, "refused", &error.to_string()).await
        }
        .await;
        if let Err(audit_error) = written {
            tracing::error!(error = %audit_error, action = audit.action, "a refused action could not be audited");
        }
    }
    error
}

/// Records a sign-in or sign-out.
pub(crate) async fn record_session(
    pool: &PgPool,
    who: &Operator,
    action: &str,
) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    append(
        &mut conn,
        who,
        &Audit {
            action,
            target_kind: "session",
            target_id: None,
            reason: None,
            data: None,
        },
        "ok",
        action,
    )
    .await?;
    Ok(())
}

/// Does `action` to run `run_id` of the operator's marketplace, with its history and audit entry.
pub(crate) async fn on_run(
    pool: &PgPool,
    who: &Operator,
    run_id: Uuid,
    action: RunAction,
    reason: Option<&str>,
    extra: Option<Value>,
) -> Result<Done, ActionError> {
    let reason = check_reason(reason)?;
    action.check()?;
    let mut data = action.audit_data();
    if let Some(extra) = extra {
        let merged = data.get_or_insert_with(|| json!({}));
        if let (Some(merged), Some(extra)) = (merged.as_object_mut(), extra.as_object()) {
            merged.extend(extra.clone());
        }
    }
    let audit = Audit {
        action: action.name(),
        target_kind: "run",
        target_id: Some(run_id),
        reason: Some(&reason),
        data,
    };
    let mut tx = pool.begin().await?;
    let result = apply(&mut tx, who, run_id, action, &reason).await;
    match result {
        Ok(detail) => {
            let audit_id = append(&mut tx, who, &audit, "ok", &detail).await?;
            tx.commit().await?;
            Ok(Done { detail, audit_id })
        }
        Err(error) => {
            tx.rollback().await?;
            Err(refused(pool, who, &audit, error).await)
        }
    }
}

async fn apply(
    conn: &mut PgConnection,
    who: &Operator,
    run_id: Uuid,
    action: RunAction,
    reason: &str,
) -> Result<String, ActionError> {
    store::run_queries::find(conn, who.marketplace_id, run_id)
        .await?
        .ok_or(ActionError::NotFound("run"))?;
    let run = RunId::from(run_id);
    let actor = who.actor();
    let status = match action {
        RunAction::RetryNow => engine::ops::retry_now(conn, run, &actor, reason).await?,
        RunAction::ResumeFrom(step) => {
            engine::ops::resume_from(conn, run, step.trim(), &actor, reason).await?
        }
        RunAction::Cancel => match engine::ops::cancel(conn, run, &actor, reason).await? {
            RunStatus::Running => {
                return Ok(
                    "a cancel is requested: the step in flight finishes and its outcome \
                           is kept, then the run is cancelled"
                        .to_owned(),
                );
            }
            RunStatus::Pending => {
                return Ok(
                    "a cancel is requested: the unknown outcome of the last attempt is \
                           reconciled first, then the run is cancelled"
                        .to_owned(),
                );
            }
            status => status,
        },
        RunAction::Pause => match engine::ops::pause(conn, run, &actor, reason).await? {
            RunStatus::Running => {
                return Ok(
                    "a pause is requested: the step in flight finishes and its outcome \
                           is kept, then the run pauses"
                        .to_owned(),
                );
            }
            status => status,
        },
        RunAction::Resume => engine::ops::resume(conn, run, &actor, reason).await?,
        RunAction::Signal(name, payload) => {
            let outcome = engine::ops::signal(conn, run, &name, payload, &actor, reason).await?;
            return Ok(match outcome {
                engine::ops::SignalOutcome::Woken => {
                    format!("signal `{name}` received: the run is due")
                }
                engine::ops::SignalOutcome::Stored => {
                    let paused = store::runs::get(conn, run_id)
                        .await?
                        .is_some_and(|now| now.status == RunStatus::Paused);
                    if paused {
                        format!(
                            "signal `{name}` kept: the run is paused; once it is resumed, the \
                             signal is consumed at its wait"
                        )
                    } else {
                        format!("signal `{name}` kept until the run reaches its wait")
                    }
                }
            });
        }
    };
    Ok(format!("the run is now {status}"))
}

/// The kinds of bulk action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BulkKind {
    Retry,
    Cancel,
}

impl BulkKind {
    pub(crate) fn parse(word: &str) -> Option<BulkKind> {
        match word {
            "retry" | "retry_now" => Some(BulkKind::Retry),
            "cancel" => Some(BulkKind::Cancel),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BulkKind::Retry => "retry",
            BulkKind::Cancel => "cancel",
        }
    }

    /// The statuses the action applies to: a bulk action must filter by one of them, so that
    /// its dry run lists exactly the runs it would act on.
    pub(crate) fn statuses(self) -> &'static [&'static str] {
        match self {
            BulkKind::Retry => &["failed", "pending"],
            BulkKind::Cancel => &["paused", "waiting", "pending", "running"],
        }
    }

    fn action(self) -> RunAction {
        match self {
            BulkKind::Retry => RunAction::RetryNow,
            BulkKind::Cancel => RunAction::Cancel,
        }
    }
}

/// What a dry run found.
#[derive(Debug, Clone)]
pub(crate) struct DryRun {
    /// The runs that would be acted on, oldest first, at most [`BULK_CAP`].
    pub(crate) runs: Vec<store::runs::RunRow>,
    /// How many runs match the filter in all.
    pub(crate) matching: i64,
}

/// The runs a bulk action with `filter` would act on. The filter must name a status the action
/// applies to.
pub(crate) async fn dry_run(
    conn: &mut PgConnection,
    who: &Operator,
    kind: BulkKind,
    filter: &RunFilter,
) -> Result<DryRun, ActionError> {
    match filter.status.as_deref() {
        Some(status) if kind.statuses().contains(&status) => {}
        _ => {
            return Err(ActionError::invalid(
                "status",
                format!(
                    "filter by one status first: bulk {} applies to {} runs",
                    kind.as_str(),
                    kind.statuses().join(", ")
                ),
            ));
        }
    }
    let runs = store::run_queries::list_oldest_first(
        conn,
        who.marketplace_id,
        filter,
        None,
        BULK_CAP as i64,
    )
    .await?;
    let matching = store::run_queries::count_by_status(conn, who.marketplace_id, filter)
        .await?
        .into_iter()
        .filter(|(status, _)| Some(status.as_str()) == filter.status.as_deref())
        .map(|(_, count)| count)
        .sum();
    Ok(DryRun { runs, matching })
}

/// One run's result in a bulk action.
#[derive(Debug, Clone)]
pub(crate) struct BulkOutcome {
    pub(crate) run_id: Uuid,
    /// What happened, or why it was refused.
    pub(crate) result: Result<String, String>,
}

/// Acts on exactly `ids` (at most [`BULK_CAP`]), each run in its own transaction with its own
/// history and audit entry, all tagged with one batch id. A refusal of one run does not stop
/// the others; an outage does.
pub(crate) async fn bulk(
    pool: &PgPool,
    who: &Operator,
    kind: BulkKind,
    ids: &[Uuid],
    reason: Option<&str>,
) -> Result<(Uuid, Vec<BulkOutcome>), ActionError> {
    let reason = check_reason(reason)?;
    if ids.is_empty() {
        return Err(ActionError::invalid("run_ids", "no runs were given"));
    }
    if ids.len() > BULK_CAP {
        return Err(ActionError::invalid(
            "run_ids",
            format!("a bulk action takes at most {BULK_CAP} runs"),
        ));
    }
    let batch = Uuid::now_v7();
    let mut seen = std::collections::HashSet::new();
    let mut outcomes = Vec::with_capacity(ids.len());
    for &run_id in ids.iter().filter(|id| seen.insert(**id)) {
        let done = on_run(
            pool,
            who,
            run_id,
            kind.action(),
            Some(&reason),
            Some(json!({ "bulk": batch, "bulk_size": ids.len() })),
        )
        .await;
        let result = match done {
            Ok(done) => Ok(done.detail),
            Err(error @ (ActionError::NotFound(_) | ActionError::Refused(_))) => {
                Err(error.to_string())
            }
            Err(other) => return Err(other),
        };
        outcomes.push(BulkOutcome { run_id, result });
    }
    Ok((batch, outcomes))
}

/// Lost API keys an operator enters.
pub(crate) struct KeysInput {
    pub(crate) company_id: Option<String>,
    pub(crate) api_key: SecretString,
    pub(crate) api_public_key: SecretString,
    /// Resume the vendor's onboarding runs paused for an operator.
    pub(crate) resume: bool,
}

/// Stores a vendor's lost keys (encrypted at once) and resumes its paused onboarding.
pub(crate) async fn supply_keys(
    pool: &PgPool,
    keyring: &store::secrets::Keyring,
    who: &Operator,
    vendor_id: Uuid,
    input: KeysInput,
    reason: Option<&str>,
) -> Result<Done, ActionError> {
    let reason = check_reason(reason)?;
    let company_id = input
        .company_id
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .ok_or_else(|| ActionError::invalid("company_id", "the CompanyID is required"))?
        .parse::<i64>()
        .map_err(|_| ActionError::invalid("company_id", "the CompanyID must be a number"))?;
    let mut audit = Audit {
        action: "supply_api_keys",
        target_kind: "vendor",
        target_id: Some(vendor_id),
        reason: Some(&reason),
        data: Some(json!({ "company_id": company_id })),
    };
    let mut tx = pool.begin().await?;
    let stored = store_keys(
        &mut tx, keyring, who, vendor_id, company_id, &input, &reason,
    )
    .await;
    match stored {
        Ok((detail, data)) => {
            audit.data = Some(data);
            let audit_id = append(&mut tx, who, &audit, "ok", &detail).await?;
            tx.commit().await?;
            Ok(Done { detail, audit_id })
        }
        Err(error) => {
            tx.rollback().await?;
            Err(refused(pool, who, &audit, error).await)
        }
    }
}

async fn store_keys(
    conn: &mut PgConnection,
    keyring: &store::secrets::Keyring,
    who: &Operator,
    vendor_id: Uuid,
    company_id: i64,
    input: &KeysInput,
    reason: &str,
) -> Result<(String, Value), ActionError> {
    store::vendors::find(conn, who.marketplace_id, vendor_id)
        .await?
        .ok_or(ActionError::NotFound("vendor"))?;
    store::provider_records::supply_api_keys(
        conn,
        keyring,
        vendor_id,
        company_id,
        &input.api_key,
        &input.api_public_key,
    )
    .await
    .map_err(|error| match error {
        SupplyKeysError::InvalidKeys(why) => {
            let field = if why.contains("CompanyID") {
                "company_id"
            } else if why.contains("APIPublicKey") {
                "api_public_key"
            } else {
                "api_key"
            };
            ActionError::invalid(field, why)
        }
        SupplyKeysError::VendorNotFound(_) => ActionError::NotFound("vendor"),
        SupplyKeysError::CompanyMismatch { .. } | SupplyKeysError::CompanyTaken(_) => {
            ActionError::Refused(error.to_string())
        }
        SupplyKeysError::Database(error) => ActionError::from(error),
        SupplyKeysError::Secrets(error) => ActionError::internal(error),
    })?;
    let fingerprint = store::secrets::meta(
        conn,
        &store::secrets::SecretRef::new(
            store::provider_records::VENDOR_SECRETS_TABLE,
            vendor_id,
            store::provider_records::API_KEY_SECRET,
        ),
    )
    .await
    .map_err(ActionError::internal)?
    .map(|meta| meta.fingerprint)
    .unwrap_or_default();
    let mut resumed = Vec::new();
    if input.resume {
        let filter = RunFilter {
            workflow: Some("vendor_onboarding".to_owned()),
            status: Some("paused".to_owned()),
            subject_id: Some(vendor_id),
            ..RunFilter::default()
        };
        let paused = store::run_queries::list(conn, who.marketplace_id, &filter, None, 10).await?;
        let why = format!("API keys supplied (fingerprint {fingerprint}): {reason}");
        for run in paused {
            engine::ops::resume(conn, RunId::from(run.id), &who.actor(), &why).await?;
            resumed.push(run.id);
        }
    }
    let detail = if resumed.is_empty() {
        format!("keys stored encrypted (fingerprint {fingerprint})")
    } else {
        format!(
            "keys stored encrypted (fingerprint {fingerprint}); resumed {} paused onboarding run(s)",
            resumed.len()
        )
    };
    let data =
        json!({ "company_id": company_id, "fingerprint": fingerprint, "resumed_runs": resumed });
    Ok((detail, data))
}

/// Replays a dead (or delivered) webhook delivery of the operator's marketplace.
pub(crate) async fn replay_delivery(
    pool: &PgPool,
    who: &Operator,
    delivery_id: Uuid,
    reason: Option<&str>,
) -> Result<Done, ActionError> {
    let reason = check_reason(reason)?;
    let mut audit = Audit {
        action: "replay_delivery",
        target_kind: "delivery",
        target_id: Some(delivery_id),
        reason: Some(&reason),
        data: None,
    };
    let webhook_error = |error: store::webhooks::WebhookStoreError| match error {
        store::webhooks::WebhookStoreError::Database(error) => ActionError::from(error),
        other => ActionError::internal(other),
    };
    let mut tx = pool.begin().await?;
    let delivery = store::webhooks::get_delivery(&mut tx, who.marketplace_id, delivery_id)
        .await
        .map_err(webhook_error)?;
    let outcome = match delivery {
        None => Err(ActionError::NotFound("delivery")),
        Some(delivery) => {
            audit.data = Some(json!({
                "endpoint_id": delivery.endpoint_id,
                "event_type": delivery.event_type,
                "webhook_id": delivery.outbox_id,
                "was": delivery.status,
            }));
            let replayed = store::webhooks::replay(&mut tx, delivery_id, who.marketplace_id)
                .await
                .map_err(webhook_error)?;
            if replayed {
                Ok("the delivery is pending again and due now".to_owned())
            } else {
                Err(ActionError::Refused(
                    "only a dead or delivered delivery whose endpoint is enabled can be replayed"
                        .to_owned(),
                ))
            }
        }
    };
    match outcome {
        Ok(detail) => {
            let audit_id = append(&mut tx, who, &audit, "ok", &detail).await?;
            tx.commit().await?;
            Ok(Done { detail, audit_id })
        }
        Err(error) => {
            tx.rollback().await?;
            Err(refused(pool, who, &audit, error).await)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_required_trimmed_and_bounded() {
        assert!(matches!(
            check_reason(None),
            Err(ActionError::Invalid {
                field: "reason",
                ..
            })
        ));
        assert!(check_reason(Some("   ")).is_err());
        assert_eq!(
            check_reason(Some("  approved by Upay ")).unwrap(),
            "approved by Upay"
        );
        assert!(check_reason(Some(&"x".repeat(501))).is_err());
        assert!(check_reason(Some(&"א".repeat(500))).is_ok());
    }

    #[test]
    fn bulk_actions_apply_only_to_statuses_they_can_change() {
        assert_eq!(BulkKind::parse("retry"), Some(BulkKind::Retry));
        assert_eq!(BulkKind::parse("delete"), None);
        assert!(!BulkKind::Retry.statuses().contains(&"succeeded"));
        assert!(!BulkKind::Cancel.statuses().contains(&"cancelled"));
    }

    #[test]
    fn signal_names_are_checked_before_anything_is_written() {
        assert!(
            RunAction::Signal("terminal_approved".into(), json!({}))
                .check()
                .is_ok()
        );
        // A signal the workflows never wait for, a payload that is not an object, or one
        // nested too deep, are refused before anything is written.
        assert!(
            RunAction::Signal("not_a_signal".into(), json!({}))
                .check()
                .is_err()
        );
        assert!(
            RunAction::Signal("terminal_approved".into(), Value::Null)
                .check()
                .is_err()
        );
        assert!(
            RunAction::Signal("terminal_approved".into(), json!({"a": {"b": [1]}}))
                .check()
                .is_err()
        );
        assert!(
            RunAction::Signal("Terminal-Approved".into(), Value::Null)
                .check()
                .is_err()
        );
        assert!(RunAction::ResumeFrom(" ".into()).check().is_err());
    }
}

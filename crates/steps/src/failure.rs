//! How failures become step outcomes: a provider error by its class, a database error, a bad
//! input. Messages name endpoints and the provider's own text, never a request body, a key, a
//! token or a bank detail (the provider client guarantees that of its errors).

use domain::envelope::ErrorEnvelope;
use engine::{StepContext, StepOutcome};
use providers::{ErrorClass, ProviderError, RejectionKind};
use serde_json::json;

/// The code of a provider failure that nothing was applied by (5xx, 429, connection refused).
pub(crate) const PROVIDER_UNAVAILABLE: &str = "provider_unavailable";
/// The code of a provider call whose effect is unknown (answer lost after the request was sent).
pub(crate) const PROVIDER_OUTCOME_UNKNOWN: &str = "provider_outcome_unknown";
/// The code of a refusal by the provider.
pub(crate) const PROVIDER_REJECTED: &str = "provider_rejected";

/// The envelope of a provider error.
pub(crate) fn envelope(error: &ProviderError) -> ErrorEnvelope {
    let (code, retryable) = match error.class() {
        ErrorClass::Retryable => (PROVIDER_UNAVAILABLE, true),
        ErrorClass::UnknownOutcome => (PROVIDER_OUTCOME_UNKNOWN, true),
        ErrorClass::Rejected => (PROVIDER_REJECTED, false),
        ErrorClass::Fatal => ("provider_misconfigured", false),
    };
    let mut e = if retryable {
        ErrorEnvelope::retryable(code, error.to_string())
    } else {
        ErrorEnvelope::fatal(code, error.to_string())
    };
    if let ProviderError::Rejected { kind, .. } = error {
        e = e.with_details(json!({
            "rejection": match kind {
                RejectionKind::Business => "business",
                RejectionKind::Technical => "technical",
            }
        }));
    }
    e
}

/// The outcome of a failed provider call, by its class: retry later (honouring Retry-After),
/// reconcile before anything else, fail with the provider's message, or pause for an operator
/// when no retry can fix it (a wrong URL, an operation the provider does not offer).
pub(crate) fn provider_outcome(error: &ProviderError) -> StepOutcome {
    match error.class() {
        ErrorClass::Retryable => StepOutcome::Retryable {
            error: envelope(error),
            retry_after: error.retry_after(),
        },
        ErrorClass::UnknownOutcome => StepOutcome::Unknown(envelope(error)),
        ErrorClass::Rejected => StepOutcome::Fatal(envelope(error)),
        ErrorClass::Fatal => StepOutcome::Pause {
            reason: format!(
                "the provider call cannot work as configured: {error}; fix the configuration, then resume"
            ),
        },
    }
}

/// A database error while a step reads what it needs: nothing was done at the provider, so the
/// step is retried with its backoff.
pub(crate) fn database(error: &sqlx::Error) -> StepOutcome {
    tracing::warn!(error = %error, "a step could not read the database");
    StepOutcome::retryable(ErrorEnvelope::retryable(
        "database_unavailable",
        "the step could not read the database; it will be retried",
    ))
}

/// A secret that could not be read (wrong master key, altered row): no retry fixes it.
pub(crate) fn secret(error: &store::secrets::SecretsError) -> StepOutcome {
    match error {
        store::secrets::SecretsError::Database(e) => database(e),
        other => StepOutcome::Pause {
            reason: format!(
                "a stored secret cannot be read: {other}; configure the master key that wrapped it, then resume"
            ),
        },
    }
}

/// The run's input does not have the workflow's shape: a bug of whoever enqueued it.
pub(crate) fn bad_input(ctx: &StepContext, error: &serde_json::Error) -> StepOutcome {
    StepOutcome::Fatal(ErrorEnvelope::fatal(
        "invalid_input",
        format!(
            "the input of this `{}` run does not have the expected shape: {error}",
            ctx.workflow
        ),
    ))
}

/// The step's own rule refused to go on; the run fails with this message.
pub(crate) fn fatal(code: &str, message: impl Into<String>) -> StepOutcome {
    StepOutcome::Fatal(ErrorEnvelope::fatal(code, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_provider_class_becomes_the_outcome_the_engine_expects() {
        let retryable = ProviderError::Retryable {
            endpoint: "/billing/payments/charge/",
            reason: "HTTP 429".into(),
            retry_after: Some(Duration::from_secs(2)),
        };
        assert!(matches!(
            provider_outcome(&retryable),
            StepOutcome::Retryable { retry_after: Some(d), .. } if d == Duration::from_secs(2)
        ));
        let unknown = ProviderError::UnknownOutcome {
            endpoint: "/billing/payments/charge/",
            reason: "reset".into(),
        };
        assert!(
            matches!(provider_outcome(&unknown), StepOutcome::Unknown(e) if e.code == PROVIDER_OUTCOME_UNKNOWN)
        );
        let rejected = ProviderError::Rejected {
            endpoint: "/website/companies/create/",
            kind: RejectionKind::Business,
            message: "bad e-mail".into(),
            technical: None,
        };
        assert!(
            matches!(provider_outcome(&rejected), StepOutcome::Fatal(e) if e.message.contains("bad e-mail"))
        );
        let unsupported = ProviderError::Unsupported {
            operation: "x",
            reason: "y",
        };
        assert!(matches!(
            provider_outcome(&unsupported),
            StepOutcome::Pause { .. }
        ));
    }
}

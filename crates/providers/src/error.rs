//! How a provider call can fail, and what the engine should do about each kind.

use std::time::Duration;

/// What the caller should do with a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The provider refused the request; repeating it will not help. Show the message.
    Rejected,
    /// Nothing was applied, as far as the protocol can tell; try again later (after
    /// `retry_after` when given).
    Retryable,
    /// The request may or may not have been applied. Never report this as a failure: look the
    /// object up at the provider (reconcile) before doing anything else.
    UnknownOutcome,
    /// A configuration or protocol problem (wrong URL, a redirect, an operation the provider
    /// does not offer) that no retry will fix: pause for an operator.
    Fatal,
}

/// Whether an envelope error was a business (`Status: 1`) or technical (`Status: 2`) one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionKind {
    Business,
    Technical,
}

/// A failed provider call. Messages carry the endpoint and the provider's own text, never request
/// bodies, credentials or bank details.
///
/// `Status: 2` (technical error) is classified [`ErrorClass::Rejected`], not retryable: SUMIT
/// reports it after processing the request, nothing shows it to be transient, and on a charge it
/// may come after money moved, so an automatic retry risks a double charge. The engine should
/// surface it to an operator (or reconcile first when the call was a charge).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// An envelope with `Status` 1 or 2: the provider answered and refused.
    #[error("{endpoint}: the provider refused the request: {message}")]
    Rejected {
        endpoint: &'static str,
        kind: RejectionKind,
        /// `UserErrorMessage`, in the language asked for with `Content-Language`.
        message: String,
        /// `TechnicalErrorDetails`, when given.
        technical: Option<String>,
    },
    /// Not applied; may be tried again: 5xx (but 504 on a mutating call), 429, a connection
    /// refused or timed out before the request was sent, or any transport failure of a
    /// read-only call.
    #[error("{endpoint}: temporary failure: {reason}")]
    Retryable {
        endpoint: &'static str,
        reason: String,
        /// From a `Retry-After` header.
        retry_after: Option<Duration>,
    },
    /// A mutating request was sent and no trustworthy answer came back: timeout, reset, a body
    /// cut short, a 504.
    #[error("{endpoint}: outcome unknown: {reason}")]
    UnknownOutcome {
        endpoint: &'static str,
        reason: String,
    },
    /// The answer did not follow the protocol (an unexpected status, a redirect, a body that is
    /// not the envelope). When the request may have been applied this is an unknown outcome.
    #[error("{endpoint}: protocol error: {reason}")]
    Protocol {
        endpoint: &'static str,
        reason: String,
        may_have_applied: bool,
    },
    /// The provider has no way to do this (in production), e.g. a lookup by corporate number.
    #[error("{operation} is not supported: {reason}")]
    Unsupported {
        operation: &'static str,
        reason: &'static str,
    },
    /// The client could not be built (bad base URL, TLS initialisation).
    #[error("invalid provider client configuration: {reason}")]
    InvalidConfig { reason: String },
}

impl ProviderError {
    pub fn class(&self) -> ErrorClass {
        match self {
            ProviderError::Rejected { .. } => ErrorClass::Rejected,
            ProviderError::Retryable { .. } => ErrorClass::Retryable,
            ProviderError::UnknownOutcome { .. } => ErrorClass::UnknownOutcome,
            ProviderError::Protocol {
                may_have_applied: true,
                ..
            } => ErrorClass::UnknownOutcome,
            ProviderError::Protocol { .. }
            | ProviderError::Unsupported { .. }
            | ProviderError::InvalidConfig { .. } => ErrorClass::Fatal,
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }

    pub fn is_unknown_outcome(&self) -> bool {
        self.class() == ErrorClass::UnknownOutcome
    }

    /// The delay the provider asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Retryable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The provider's message for a refusal, to show to a person.
    pub fn provider_message(&self) -> Option<&str> {
        match self {
            ProviderError::Rejected { message, .. } => Some(message),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_protocol_error_is_an_unknown_outcome_only_when_the_request_may_have_been_applied() {
        let applied = ProviderError::Protocol {
            endpoint: "/x/",
            reason: "html".into(),
            may_have_applied: true,
        };
        let not_applied = ProviderError::Protocol {
            endpoint: "/x/",
            reason: "404".into(),
            may_have_applied: false,
        };
        assert_eq!(applied.class(), ErrorClass::UnknownOutcome);
        assert!(applied.is_unknown_outcome());
        assert_eq!(not_applied.class(), ErrorClass::Fatal);
        assert!(!not_applied.is_retryable());
    }

    #[test]
    fn retry_after_is_reported_only_for_retryable_errors() {
        let e = ProviderError::Retryable {
            endpoint: "/x/",
            reason: "429".into(),
            retry_after: Some(Duration::from_secs(2)),
        };
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
        let r = ProviderError::Rejected {
            endpoint: "/x/",
            kind: RejectionKind::Technical,
            message: "boom".into(),
            technical: None,
        };
        assert_eq!(r.class(), ErrorClass::Rejected);
        assert_eq!(r.retry_after(), None);
        assert_eq!(r.provider_message(), Some("boom"));
    }
}

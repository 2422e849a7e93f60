//! The error envelope: the one shape in which a step's failure is stored, shown and sent.
//!
//! Every attempt that does not succeed stores an envelope `{code, message, retryable, details}`
//! in its row, and the run keeps the last one. The shape is deliberately small and stable so that
//! it survives restarts, serialises to JSON as it is, and can be shown to an operator.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A classified failure of a step or of the engine around it.
///
/// `code` is a short machine-readable word (`timeout`, `provider_unavailable`, `http_429`);
/// `message` is a sentence for a human; `details` holds extra, non-secret structured data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// A short, stable, machine-readable code.
    pub code: String,
    /// A sentence explaining the failure to an operator.
    pub message: String,
    /// Whether trying again may succeed.
    pub retryable: bool,
    /// Extra structured data; never secrets (it is redacted before it is stored anyway).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

impl ErrorEnvelope {
    /// An error that may go away if the step is tried again.
    pub fn retryable(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            retryable: true,
            details: Value::Null,
        }
    }

    /// An error that trying again cannot fix.
    pub fn fatal(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            retryable: false,
            details: Value::Null,
        }
    }

    /// Attaches structured details.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

impl fmt::Display for ErrorEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_serialises_to_the_documented_shape() {
        let envelope = ErrorEnvelope::retryable("timeout", "the provider did not answer")
            .with_details(serde_json::json!({"after_ms": 30000}));
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "code": "timeout",
                "message": "the provider did not answer",
                "retryable": true,
                "details": {"after_ms": 30000}
            })
        );
        let back: ErrorEnvelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, envelope);
    }

    #[test]
    fn an_envelope_without_details_reads_back_with_null_details() {
        let back: ErrorEnvelope =
            serde_json::from_str(r#"{"code":"x","message":"y","retryable":false}"#).unwrap();
        assert_eq!(back, ErrorEnvelope::fatal("x", "y"));
    }
}

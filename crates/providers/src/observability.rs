//! The provider clients' metrics: one counter of requests by endpoint and outcome class, and one
//! latency histogram by endpoint.
//!
//! Only the `metrics` facade is called (a no-op without an installed recorder). Labels are the
//! endpoint's path (a fixed set) and the class; never a company id, a credential or a body.

use std::time::Duration;

use crate::error::{ErrorClass, ProviderError};

/// Provider requests, by `endpoint` (the path, e.g. `/website/companies/create/`) and `class`
/// (`success`, `rejected`, `retryable`, `unknown_outcome`, `fatal`).
pub const PROVIDER_REQUESTS: &str = "vendorflow_provider_requests_total";
/// How long a provider request took, by `endpoint`.
pub const PROVIDER_REQUEST_DURATION: &str = "vendorflow_provider_request_duration_seconds";

/// Histogram buckets for provider requests, in seconds: live SUMIT calls took 40–1140 ms with
/// multi-second tails, and a request times out after at most a minute.
pub const PROVIDER_REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Registers the descriptions of these metrics with the installed recorder.
pub fn describe() {
    metrics::describe_counter!(
        PROVIDER_REQUESTS,
        "Provider requests, by endpoint and outcome class."
    );
    metrics::describe_histogram!(
        PROVIDER_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Duration of provider requests, by endpoint."
    );
}

/// The `class` label of a request's result.
pub(crate) fn class_label<T>(result: &Result<T, ProviderError>) -> &'static str {
    match result {
        Ok(_) => "success",
        Err(error) => match error.class() {
            ErrorClass::Rejected => "rejected",
            ErrorClass::Retryable => "retryable",
            ErrorClass::UnknownOutcome => "unknown_outcome",
            ErrorClass::Fatal => "fatal",
        },
    }
}

/// Records one request to `endpoint`.
pub(crate) fn request(endpoint: &'static str, class: &'static str, took: Duration) {
    metrics::counter!(PROVIDER_REQUESTS, "endpoint" => endpoint, "class" => class).increment(1);
    metrics::histogram!(PROVIDER_REQUEST_DURATION, "endpoint" => endpoint)
        .record(took.as_secs_f64());
}

//! The relay's metrics: delivery attempts by result.
//!
//! Only the `metrics` facade is called (a no-op without an installed recorder). The number of
//! dead letters is a gauge computed from PostgreSQL when `/metrics` is scraped (it must hold
//! across relays), not here. Labels never carry a URL, an endpoint id or a body.

/// Delivery attempts whose outcome was recorded, by `result`: `delivered`, `retry` (a backoff
/// was scheduled), `dead` (the schedule ran out) or `gone` (the endpoint answered 410 and was
/// disabled).
pub const WEBHOOK_DELIVERIES: &str = "vendorflow_webhook_deliveries_total";

/// Registers the descriptions of these metrics with the installed recorder.
pub fn describe() {
    metrics::describe_counter!(
        WEBHOOK_DELIVERIES,
        "Webhook delivery attempts whose outcome was recorded, by result."
    );
}

/// Records one attempt's recorded outcome.
pub(crate) fn delivery(result: &'static str) {
    metrics::counter!(WEBHOOK_DELIVERIES, "result" => result).increment(1);
}

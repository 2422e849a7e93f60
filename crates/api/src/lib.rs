//! The HTTP surface of vendorflow (axum): the marketplace API under `/v1`, health checks,
//! `/metrics` (Prometheus, when the binary hands over a recorder), and the OpenAPI document with its
//! reference page.
//!
//! This crate owns request parsing (input becomes domain types at this edge, or a 422 naming each
//! bad field), authentication and marketplace scoping of every query, idempotency keys, and the
//! one error shape (`application/problem+json`). It must not know what workflow steps do (it only
//! enqueues runs and reads them), must not call providers, and must never answer with a secret,
//! SQL text or a stack trace.

mod admin;
mod contract;
mod enqueue;
mod error;
mod extract;
mod idempotent;
pub mod observability;
pub mod onboarding;
mod openapi;
mod routes;
mod schemas;
mod secrets;
mod webhook_catalogue;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use sqlx::PgPool;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

pub use error::ApiError;
pub use observability::{MetricsRender, metrics_router};

/// The largest request body accepted, in bytes. Vendor applications are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub pool: PgPool,
    /// The workflow definitions new runs are started with.
    pub definitions: Arc<engine::Definitions>,
    /// The master keys that encrypt secrets arriving in requests (bank account numbers).
    pub keyring: Arc<store::secrets::Keyring>,
    /// Renders this process's metrics for `GET /metrics` (the binary passes its Prometheus
    /// recorder's render); `None` leaves `/metrics` unserved (404).
    pub metrics: Option<MetricsRender>,
    /// The most one charge or document, and each of its lines, may be for, in agorot
    /// (`domain::orders::DEFAULT_MAX_AMOUNT_AGOROT` unless configured); more answers 422
    /// `amount_too_large`.
    pub max_amount_agorot: i64,
}

/// The documented routes and the OpenAPI document they make, completed with the shared answers.
fn documented() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (api, spec) = routes::openapi_router()
        .merge(admin::api_router())
        .split_for_parts();
    (api, contract::complete(spec))
}

/// The OpenAPI document `/openapi.json` serves, for `vendorflow openapi` (client generators).
pub fn openapi_document() -> serde_json::Value {
    openapi::document(&documented().1)
}

/// Builds the whole HTTP application.
pub fn router(state: AppState) -> Router {
    let (api, spec) = documented();
    let spec = Arc::new(spec);
    api.merge(openapi::router(spec))
        .merge(admin::dashboard_router())
        .merge(observability::routes())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(
            routes::refuse_control_characters_in_path,
        ))
        .layer(CatchPanicLayer::custom(routes::panic_response))
        .layer(axum::middleware::from_fn(error::localize))
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
            axum::http::header::COOKIE,
            HeaderName::from_static("idempotency-key"),
        ]))
        .with_state(state)
}

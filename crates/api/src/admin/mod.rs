//! The operators' side of the HTTP surface: the server-rendered dashboard under `/admin` and the
//! same reads and actions for scripts under `/v1/admin` (bearer token, in the OpenAPI document).
//!
//! Both sides share one implementation of every action ([`actions`]): it checks the reason,
//! scopes the target to the caller's marketplace, calls the engine operation (or the store's
//! key or replay function) and writes the audit entry in the same transaction. The dashboard adds
//! sessions (an HttpOnly, SameSite=Strict cookie holding a random id whose hash is stored, never
//! the bearer token), a CSRF token in every form, and English and Hebrew pages (right to left).
//!
//! It must not show a secret (keys and bank accounts appear only as fingerprints or last
//! digits), must not let a viewer act, and must not reach outside the caller's marketplace.

mod actions;
mod api;
mod audit_page;
mod endpoints;
mod filters;
mod i18n;
mod runs_pages;
mod session;
mod vendors_pages;
mod views;
mod webhooks_pages;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{get, post};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The most runs one bulk action touches; the dry run says so when a filter matches more.
pub const BULK_CAP: usize = 500;

/// The dashboard: HTML pages and form posts under `/admin`.
pub fn dashboard_router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/runs") }))
        .route("/admin/", get(|| async { Redirect::to("/admin/runs") }))
        .route(
            "/admin/login",
            get(session::login_page).post(session::login),
        )
        .route("/admin/logout", post(session::logout))
        .route("/admin/runs", get(runs_pages::list))
        .route(
            "/admin/runs/bulk",
            get(runs_pages::bulk_preview).post(runs_pages::bulk_apply),
        )
        .route("/admin/runs/{id}", get(runs_pages::detail))
        .route("/admin/runs/{id}/{action}", post(runs_pages::act))
        .route("/admin/vendors", get(vendors_pages::list))
        .route("/admin/vendors/{id}", get(vendors_pages::detail))
        .route(
            "/admin/vendors/{id}/api-keys",
            post(vendors_pages::supply_keys),
        )
        .route("/admin/webhooks", get(webhooks_pages::list))
        .route(
            "/admin/webhooks/deliveries/{id}/replay",
            post(webhooks_pages::replay),
        )
        .route("/admin/audit", get(audit_page::list))
        .layer(axum::middleware::from_fn(i18n::remember_language))
        .layer(axum::middleware::from_fn(refuse_control_characters))
}

/// Refuses a dashboard request whose query string holds a forbidden control character (the
/// pages' filters reach the database), with a 422 page naming the parameters. Forms are checked
/// by `session::Posted`.
async fn refuse_control_characters(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let errors = crate::extract::query_control_characters(request.uri().query().unwrap_or(""));
    if errors.is_empty() {
        next.run(request).await
    } else {
        use axum::response::IntoResponse;
        views::PageError::Invalid(control_characters_message(&errors)).into_response()
    }
}

/// What a 422 page says of fields holding control characters.
pub(crate) fn control_characters_message(errors: &domain::errors::ValidationErrors) -> String {
    let names: Vec<String> = errors
        .errors()
        .iter()
        .map(|e| e.field.escape_default().to_string())
        .collect();
    format!(
        "{} must not contain control characters (such as U+0000) / אסור שיכילו תווי בקרה",
        names.join(", ")
    )
}

/// The admin JSON API under `/v1/admin`, documented in the OpenAPI document.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::list_runs))
        .routes(routes!(api::get_run))
        .routes(routes!(api::retry_now))
        .routes(routes!(api::resume_from))
        .routes(routes!(api::cancel))
        .routes(routes!(api::pause))
        .routes(routes!(api::resume))
        .routes(routes!(api::signal))
        .routes(routes!(api::bulk_dry_run))
        .routes(routes!(api::bulk_apply))
        .routes(routes!(api::list_vendors))
        .routes(routes!(api::get_vendor))
        .routes(routes!(api::supply_api_keys))
        .routes(routes!(
            endpoints::list_endpoints,
            endpoints::create_endpoint
        ))
        .routes(routes!(
            endpoints::get_endpoint,
            endpoints::update_endpoint,
            endpoints::delete_endpoint
        ))
        .routes(routes!(endpoints::disable_endpoint))
        .routes(routes!(endpoints::enable_endpoint))
        .routes(routes!(endpoints::rotate_secret))
        .routes(routes!(api::list_deliveries))
        .routes(routes!(api::replay_delivery))
        .routes(routes!(api::list_audit))
}

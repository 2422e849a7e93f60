//! The routes, each module one resource. Handlers are registered once, for routing and for the
//! OpenAPI document together.

mod charges;
mod documents;
mod health;
mod onboardings;
mod orders;
mod paging;
pub(crate) mod runs;
pub(crate) mod vendors;

use std::any::Any;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, localized_problem_response};

/// Every documented route.
pub(crate) fn openapi_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::base_document())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(onboardings::create_onboarding))
        .routes(routes!(charges::create_charge))
        .routes(routes!(documents::create_document))
        .routes(routes!(vendors::get_vendor))
        .routes(routes!(vendors::list_vendors))
        .routes(routes!(orders::list_charges))
        .routes(routes!(orders::get_charge))
        .routes(routes!(orders::list_documents))
        .routes(routes!(orders::get_document))
        .routes(routes!(runs::get_run))
        .routes(routes!(runs::list_runs))
        .routes(routes!(runs::send_signal))
}

/// Unknown paths answer a 404 problem.
pub(crate) async fn not_found() -> Response {
    localized_problem_response(
        StatusCode::NOT_FOUND,
        &serde_json::json!({
            "type": "https://vendorflow.dev/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "no such route; see /openapi.json",
        }),
        serde_json::json!({
            "type": "https://vendorflow.dev/problems/not-found",
            "title": "לא נמצא",
            "status": 404,
            "detail": "אין נתיב כזה; ראו /openapi.json",
        }),
    )
}

/// Middleware: a path whose percent-decoded segments hold a forbidden control character (a NUL
/// above all, which PostgreSQL refuses in text) names nothing that exists, and answers the 404 of
/// an unknown route before any handler could carry the segment to the database.
pub(crate) async fn refuse_control_characters_in_path(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let decoded = percent_encoding::percent_decode_str(request.uri().path()).decode_utf8_lossy();
    if domain::input::has_forbidden_control(&decoded) {
        return not_found().await;
    }
    next.run(request).await
}

/// Known paths with an unknown method answer a 405 problem.
pub(crate) async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}

/// A panic in a handler answers an opaque 500 problem (and is logged); it never kills the server.
pub(crate) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = message, "handler panicked");
    localized_problem_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &serde_json::json!({
            "type": "https://vendorflow.dev/problems/internal",
            "title": "Internal error",
            "status": 500,
        }),
        serde_json::json!({
            "type": "https://vendorflow.dev/problems/internal",
            "title": "שגיאה פנימית",
            "status": 500,
        }),
    )
}

//! The one error shape of the HTTP surface: RFC 9457 `application/problem+json`.
//!
//! Every failure of every route becomes an [`ApiError`]. Server-side failures answer an opaque
//! 500 and log their cause once, here; SQL text, stack traces and secrets never reach a client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::errors::{Lang, ValidationErrors};
use serde_json::json;

/// The base of our problem `type` URIs.
const PROBLEM_BASE: &str = "https://vendorflow.dev/problems/";

/// Everything a request can fail with, each with the status it answers.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422: the input was understood but is invalid; one entry per bad field.
    #[error("validation failed")]
    Validation(ValidationErrors, Lang),
    /// 400: the request is malformed (bad JSON, bad header, bad query).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401: no token, or an unknown or revoked one.
    #[error("unauthorized")]
    Unauthorized,
    /// 403: the token's role may not do this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 404: no such resource in the caller's marketplace.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 405: the path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request conflicts with the current state or with an earlier use of its idempotency key.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 413: the body is larger than the limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 503: a dependency (the database) is unavailable.
    #[error("service unavailable")]
    Unavailable,
    /// 500: anything unexpected. The cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// Wraps an unexpected error as a 500.
    pub fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(error))
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(..) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            ApiError::Validation(..) => "validation-error",
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed => "method-not-allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge => "payload-too-large",
            ApiError::UnsupportedMediaType => "unsupported-media-type",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::Validation(..) => "The request has invalid fields",
            ApiError::BadRequest(_) => "The request is malformed",
            ApiError::Unauthorized => "A valid bearer token is required",
            ApiError::Forbidden(_) => "This token's role may not do this",
            ApiError::NotFound(_) => "Not found",
            ApiError::MethodNotAllowed => "Method not allowed on this path",
            ApiError::Conflict(_) => "Conflict",
            ApiError::PayloadTooLarge => "The body is too large",
            ApiError::UnsupportedMediaType => "The body must be application/json",
            ApiError::Unavailable => "The service is unavailable, retry later",
            ApiError::Internal(_) => "Internal error",
        }
    }

    /// The problem document this error answers with.
    pub fn problem(&self) -> serde_json::Value {
        let mut problem = json!({
            "type": format!("{PROBLEM_BASE}{}", self.slug()),
            "title": self.title(),
            "status": self.status().as_u16(),
        });
        let detail = match self {
            ApiError::Validation(errors, lang) => {
                problem["errors"] =
                    serde_json::to_value(errors.localized(*lang)).unwrap_or_else(|_| json!([]));
                Some(format!("{} field(s) are invalid", errors.len()))
            }
            ApiError::BadRequest(detail) | ApiError::Conflict(detail) => Some(detail.clone()),
            ApiError::Forbidden(detail) => Some((*detail).to_owned()),
            ApiError::NotFound(what) => Some(format!("no {what} with this id in your marketplace")),
            _ => None,
        };
        if let Some(detail) = detail {
            problem["detail"] = json!(detail);
        }
        problem
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            // Logged once, here, where the error is handled; the client gets an opaque 500.
            tracing::error!(error = %error_chain(cause.as_ref()), "request failed");
        }
        let status = self.status();
        problem_response(status, &self.problem())
    }
}

/// A response with a problem document body.
pub fn problem_response(status: StatusCode, problem: &serde_json::Value) -> Response {
    let mut response = (status, problem.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<store::StoreError> for ApiError {
    fn from(error: store::StoreError) -> Self {
        match error {
            store::StoreError::Database(sqlx::Error::PoolTimedOut) => ApiError::Unavailable,
            other => ApiError::internal(other),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::from(store::StoreError::Database(error))
    }
}

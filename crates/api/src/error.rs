//! The one error shape of the HTTP surface: RFC 9457 `application/problem+json`.
//!
//! Every failure of every route becomes an [`ApiError`]. Server-side failures answer an opaque
//! 500 and log their cause once, here; SQL text, stack traces and secrets never reach a client.
//!
//! Each problem is rendered in English and in Hebrew; the English one is the body, the Hebrew
//! one rides in the response's extensions, and [`localize`] (a middleware over every route)
//! answers it instead when `Accept-Language` asks for Hebrew. Handlers thus never need the
//! caller's language to fail in it.

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
    /// 409: what the request would create exists already; `members` (e.g. `vendor_id` and
    /// `links`) are added to the problem so the caller can go to it.
    #[error("conflict: {detail}")]
    ConflictExisting {
        detail: String,
        members: serde_json::Map<String, serde_json::Value>,
    },
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
            ApiError::Conflict(_) | ApiError::ConflictExisting { .. } => StatusCode::CONFLICT,
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
            ApiError::Conflict(_) | ApiError::ConflictExisting { .. } => "conflict",
            ApiError::PayloadTooLarge => "payload-too-large",
            ApiError::UnsupportedMediaType => "unsupported-media-type",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn title(&self, lang: Lang) -> &'static str {
        let (en, he) = match self {
            ApiError::Validation(..) => {
                ("The request has invalid fields", "בבקשה יש שדות לא תקינים")
            }
            ApiError::BadRequest(_) => ("The request is malformed", "הבקשה פגומה"),
            ApiError::Unauthorized => (
                "A valid bearer token is required",
                "נדרש אסימון גישה (bearer token) תקף",
            ),
            ApiError::Forbidden(_) => (
                "This token's role may not do this",
                "התפקיד של אסימון זה אינו מורשה לפעולה זו",
            ),
            ApiError::NotFound(_) => ("Not found", "לא נמצא"),
            ApiError::MethodNotAllowed => (
                "Method not allowed on this path",
                "שיטת הבקשה אינה מותרת בנתיב זה",
            ),
            ApiError::Conflict(_) | ApiError::ConflictExisting { .. } => {
                ("Conflict", "התנגשות עם המצב הקיים")
            }
            ApiError::PayloadTooLarge => ("The body is too large", "גוף הבקשה גדול מדי"),
            ApiError::UnsupportedMediaType => (
                "The body must be application/json",
                "גוף הבקשה חייב להיות application/json",
            ),
            ApiError::Unavailable => (
                "The service is unavailable, retry later",
                "השירות אינו זמין כרגע, נסו שוב מאוחר יותר",
            ),
            ApiError::Internal(_) => ("Internal error", "שגיאה פנימית"),
        };
        match lang {
            Lang::En => en,
            Lang::He => he,
        }
    }

    /// The problem's `detail` in `lang`. Details built from English text elsewhere (a bad
    /// filter, a refused action) are given in Hebrew by a Hebrew sentence that names what kind of
    /// problem it is, followed by the specific text, which quotes field names and values the API
    /// itself uses.
    fn detail(&self, lang: Lang) -> String {
        let he = lang == Lang::He;
        match self {
            ApiError::Validation(errors, _) => {
                if he {
                    format!("{} שדות אינם תקינים; ראו errors", errors.len())
                } else {
                    format!("{} field(s) are invalid", errors.len())
                }
            }
            ApiError::BadRequest(detail) => {
                if he {
                    format!("הבקשה אינה תקינה: {detail}")
                } else {
                    detail.clone()
                }
            }
            ApiError::Conflict(detail) | ApiError::ConflictExisting { detail, .. } => {
                if he {
                    format!("הבקשה מתנגשת במצב הקיים: {detail}")
                } else {
                    detail.clone()
                }
            }
            ApiError::Forbidden(detail) => {
                if he {
                    hebrew_forbidden(detail).to_owned()
                } else {
                    (*detail).to_owned()
                }
            }
            ApiError::NotFound(what) => {
                if he {
                    format!("אין {} עם מזהה זה בשוק שלכם", hebrew_noun(what))
                } else {
                    format!("no {what} with this id in your marketplace")
                }
            }
            ApiError::Unauthorized => if he {
                "יש לשלוח כותרת Authorization: Bearer עם אסימון תקף שלא בוטל"
            } else {
                "send an Authorization: Bearer header with a valid, unrevoked token"
            }
            .to_owned(),
            ApiError::MethodNotAllowed => if he {
                "הנתיב קיים אך אינו מקבל שיטה זו; ראו /openapi.json"
            } else {
                "the path exists but does not take this method; see /openapi.json"
            }
            .to_owned(),
            ApiError::PayloadTooLarge => {
                if he {
                    format!("גוף הבקשה גדול מ־{} בתים", crate::MAX_BODY_BYTES)
                } else {
                    format!("the body is larger than {} bytes", crate::MAX_BODY_BYTES)
                }
            }
            ApiError::UnsupportedMediaType => if he {
                "יש לשלוח Content-Type: application/json"
            } else {
                "send Content-Type: application/json"
            }
            .to_owned(),
            ApiError::Unavailable => if he {
                "מסד הנתונים אינו זמין כרגע; נסו שוב בעוד רגע"
            } else {
                "the database is unavailable; retry shortly"
            }
            .to_owned(),
            ApiError::Internal(_) => if he {
                "אירעה שגיאה בלתי צפויה; היא נרשמה ביומן"
            } else {
                "an unexpected error happened; it was logged"
            }
            .to_owned(),
        }
    }

    /// The problem document this error answers with, in English (or, for a validation error,
    /// in the language it was made with).
    pub fn problem(&self) -> serde_json::Value {
        match self {
            ApiError::Validation(_, lang) => self.problem_in(*lang),
            _ => self.problem_in(Lang::En),
        }
    }

    /// A 422 naming a query or path parameter whose value the route does not take; `message`
    /// says what it must be (in English; the Hebrew sentence names the parameter).
    pub fn invalid_parameter(parameter: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::Validation(
            ValidationErrors::new(vec![
                domain::errors::FieldProblem::new(
                    "invalid_parameter",
                    message.clone(),
                    format!("הערך של {parameter} אינו תקין: {message}"),
                )
                .at(parameter),
            ]),
            Lang::En,
        )
    }

    /// The problem document in `lang`.
    pub fn problem_in(&self, lang: Lang) -> serde_json::Value {
        let mut problem = json!({
            "type": format!("{PROBLEM_BASE}{}", self.slug()),
            "title": self.title(lang),
            "status": self.status().as_u16(),
            "detail": self.detail(lang),
        });
        match self {
            ApiError::Validation(errors, _) => {
                problem["errors"] =
                    serde_json::to_value(errors.localized(lang)).unwrap_or_else(|_| json!([]));
            }
            ApiError::ConflictExisting { members, .. } => {
                for (key, value) in members {
                    problem[key] = value.clone();
                }
            }
            _ => {}
        }
        problem
    }
}

/// The Hebrew of each 403 detail (they are all static strings of this crate).
fn hebrew_forbidden(detail: &str) -> &'static str {
    match detail {
        "only a backend token may do this" => "רק אסימון backend רשאי לעשות זאת",
        "only a backend or operator token may do this" => {
            "רק אסימון backend או operator רשאי לעשות זאת"
        }
        "only an operator token may act" => "רק אסימון operator רשאי לבצע פעולות",
        "the admin API takes viewer and operator tokens" => {
            "ממשק הניהול מקבל רק אסימוני viewer ו־operator"
        }
        _ => "התפקיד של אסימון זה אינו מורשה לפעולה זו",
    }
}

/// The Hebrew of what a 404 did not find.
fn hebrew_noun(what: &str) -> &'static str {
    match what {
        "vendor" => "ספק",
        "run" => "הרצה",
        "delivery" => "משלוח וובהוק",
        "action" => "פעולה",
        "endpoint" => "נקודת קצה",
        "charge" => "חיוב",
        "document" => "מסמך",
        _ => "משאב",
    }
}

/// The Hebrew rendering of a problem response, carried in its extensions for [`localize`].
#[derive(Debug, Clone)]
pub(crate) struct HebrewProblem(pub(crate) serde_json::Value);

/// A problem response whose body is `en`, answered as `he` to callers who ask for Hebrew.
pub(crate) fn localized_problem_response(
    status: StatusCode,
    en: &serde_json::Value,
    he: serde_json::Value,
) -> Response {
    let mut response = problem_response(status, en);
    response.extensions_mut().insert(HebrewProblem(he));
    response
}

/// Middleware: when `Accept-Language` asks for Hebrew, a problem response that carries its
/// Hebrew rendering answers that instead, with `Content-Language: he`.
pub(crate) async fn localize(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let lang = request
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .map(Lang::from_accept_language)
        .unwrap_or(Lang::En);
    let mut response = next.run(request).await;
    if lang == Lang::He
        && let Some(HebrewProblem(problem)) = response.extensions_mut().remove::<HebrewProblem>()
    {
        let status = response.status();
        let mut hebrew = problem_response(status, &problem);
        for (name, value) in response.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                hebrew.headers_mut().append(name.clone(), value.clone());
            }
        }
        hebrew
            .headers_mut()
            .insert(header::CONTENT_LANGUAGE, HeaderValue::from_static("he"));
        return hebrew;
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            // Logged once, here, where the error is handled; the client gets an opaque 500.
            tracing::error!(error = %error_chain(cause.as_ref()), "request failed");
        }
        let status = self.status();
        localized_problem_response(status, &self.problem(), self.problem_in(Lang::He))
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

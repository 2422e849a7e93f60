//! Request extractors: the bearer token, the JSON body, the query string, the caller's language
//! and the idempotency key. Each refuses bad input with a clear problem, never a 500.
//!
//! Control characters that stored text must not hold (U+0000 above all, which PostgreSQL
//! refuses in `text` and `jsonb`) are refused here, once for every route: [`JsonBody`] names each
//! JSON path holding one and [`Query`] each query parameter, with 422 `invalid_characters`. Every
//! JSON body and query string of the API goes through these two.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use domain::errors::{Lang, ValidationErrors};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use store::tokens::{Role, TokenOwner};

use crate::AppState;
use crate::error::ApiError;

/// The authenticated caller: a token of one marketplace with one role.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub TokenOwner);

impl Caller {
    /// The caller's marketplace: every query is scoped to it.
    pub fn marketplace_id(&self) -> uuid::Uuid {
        self.0.marketplace_id
    }

    /// Refuses with 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.0.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(match roles {
                [Role::Backend] => "only a backend token may do this",
                _ if roles.contains(&Role::Operator) && !roles.contains(&Role::Viewer) => {
                    "only a backend or operator token may do this"
                }
                _ => "this token's role may not do this",
            }))
        }
    }
}

impl<S> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let header_value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(ApiError::Unauthorized)?;
        let text = header_value.to_str().map_err(|_| ApiError::Unauthorized)?;
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let token = SecretString::from(token.to_owned());
        let mut conn = state.pool.acquire().await?;
        let owner = store::tokens::authenticate(&mut conn, &token)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(Caller(owner))
    }
}

/// The language `Accept-Language` asks for (English when it asks for nothing we speak).
fn lang_of(headers: &axum::http::HeaderMap) -> Lang {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .map(Lang::from_accept_language)
        .unwrap_or(Lang::En)
}

/// The language of error messages, from `Accept-Language` (Hebrew or English).
#[derive(Debug, Clone, Copy)]
pub struct Language(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for Language {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Language(lang_of(&parts.headers)))
    }
}

/// The optional `Idempotency-Key` header (1–255 visible ASCII characters).
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        let key = value
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|key| {
                (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
            })
            .ok_or_else(|| {
                ApiError::BadRequest(
                    "Idempotency-Key must be 1 to 255 visible ASCII characters".to_owned(),
                )
            })?;
        Ok(IdempotencyKey(Some(key.to_owned())))
    }
}

/// A JSON body, parsed to a `serde_json::Value` (whole numbers written with a fraction read as
/// integers) so that field errors come from the domain parser
/// (all of them at once) rather than from a serde derive (first error only). A string or member
/// name holding a forbidden control character answers 422 `invalid_characters` at each path.
#[derive(Debug)]
pub struct JsonBody(pub serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let lang = lang_of(request.headers());
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadRequest("the body could not be read".to_owned())
                }
            })?;
        let mut value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|error| {
            ApiError::BadRequest(format!(
                "the body is not valid JSON (line {}, column {})",
                error.line(),
                error.column()
            ))
        })?;
        let controls = domain::input::control_characters(&value);
        if !controls.is_empty() {
            return Err(ApiError::Validation(ValidationErrors::new(controls), lang));
        }
        whole_numbers_as_integers(&mut value);
        Ok(JsonBody(value))
    }
}

/// JSON has one number type, and JSON Schema counts `36.0` as the integer 36: a whole number
/// written with a fraction becomes that integer (when it fits in 64 bits), so every integer
/// member takes it as the document says.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) => {
            if let Some(float) = number.as_f64()
                && !number.is_i64()
                && !number.is_u64()
                && float.fract() == 0.0
                && float.abs() < 9.0e15
            {
                // Below 2^53 every whole f64 is exact, so the integer is the number written.
                *value = serde_json::Value::from(float as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        serde_json::Value::Object(members) => {
            members.values_mut().for_each(whole_numbers_as_integers)
        }
        _ => {}
    }
}

/// The query string, deserialised into `T` like axum's `Query`, after every parameter (name and
/// value, percent-decoded) is checked for forbidden control characters: those answer 422
/// `invalid_characters` naming each parameter. A parameter given empty is left out; one `T`
/// cannot read answers 422 naming it.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let errors = query_control_characters(parts.uri.query().unwrap_or(""));
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors, lang_of(&parts.headers)));
        }
        // `?status=` is no status: a parameter given empty is left out, as forms and generated
        // clients send unset filters.
        let given: Vec<(String, String)> =
            form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .filter(|(_, value)| !value.is_empty())
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect();
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&given)
            .finish();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(encoded.as_bytes()));
        let value = serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let parameter = error.path().to_string();
            ApiError::invalid_parameter(
                &parameter,
                format!("{parameter} does not have a value this route takes"),
            )
        })?;
        Ok(Query(value))
    }
}

/// An `invalid_characters` error for each query parameter whose name or value, percent-decoded,
/// holds a forbidden control character (named by its name, lossily decoded).
pub(crate) fn query_control_characters(query: &str) -> ValidationErrors {
    let mut errors = ValidationErrors::default();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if domain::input::has_forbidden_control(&name)
            || domain::input::has_forbidden_control(&value)
        {
            errors.push(domain::input::invalid_characters().at(name.into_owned()));
        }
    }
    errors
}

//! Webhook endpoint management in the admin API (`/v1/admin/webhooks/endpoints`): list and show
//! (viewer or operator), create, change the event filter, disable, enable, delete and rotate the
//! signing secret (operator, with a reason, audited with the endpoint as target in the action's
//! own transaction; a refusal is audited after the rollback).
//!
//! A signing secret appears in an answer exactly once: when the endpoint is created and when it
//! is rotated. It must never appear in a list, a show, a log line or the audit log (which gets the
//! event filter and the overlap, never the secret, nor the URL, which may carry a token).

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::errors::{FieldProblem, Lang, ValidationErrors};
use domain::input::Shape;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sqlx::PgConnection;
use store::webhooks::{self as wstore, Endpoint, WebhookStoreError};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::actions::{self, ActionError, Audit, Operator};
use super::api::{REASON_SHAPE, action_error, actor, known_members, parse_uuid, reader};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, Language};

/// A webhook endpoint (its signing secret is never shown here).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointView {
    id: Uuid,
    url: String,
    /// The event types it receives (names from the `webhooks` section); `null`: every type.
    #[schema(schema_with = event_types_schema)]
    event_types: Option<Vec<String>>,
    enabled: bool,
    /// Why it is disabled (an operator's reason, or its URL answered 410 Gone).
    disabled_reason: Option<String>,
    disabled_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// When its signing secret was last rotated.
    secret_rotated_at: Option<DateTime<Utc>>,
    /// Until when deliveries also carry a signature with the secret the last rotation replaced;
    /// `null` when no overlap is in progress.
    previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Deliveries still to be sent.
    pending: i64,
    /// Dead letters (replayable from the deliveries list).
    dead: i64,
}

impl EndpointView {
    fn new(endpoint: Endpoint, backlog: &[(Uuid, i64, i64)]) -> EndpointView {
        let counts = backlog.iter().find(|(id, _, _)| *id == endpoint.id);
        EndpointView {
            id: endpoint.id,
            url: endpoint.url,
            event_types: endpoint.event_types,
            enabled: endpoint.enabled,
            disabled_reason: endpoint.disabled_reason,
            disabled_at: endpoint.disabled_at,
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
            secret_rotated_at: endpoint.secret_rotated_at,
            previous_secret_expires_at: endpoint.previous_secret_expires_at,
            pending: counts.map(|c| c.1).unwrap_or(0),
            dead: counts.map(|c| c.2).unwrap_or(0),
        }
    }
}

/// An endpoint with the signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointWithSecret {
    endpoint: EndpointView,
    /// The signing secret (`whsec_` + base64): verify the `webhook-signature` header with it.
    /// Shown only in this answer; keep it now.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: String,
    /// The audit entry written with the action.
    audit_id: i64,
}

/// What an endpoint action did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointActionResult {
    /// The endpoint after the action.
    endpoint: EndpointView,
    /// What happened, in words.
    detail: String,
    /// The audit entry written with the action.
    audit_id: i64,
}

/// What deleting an endpoint did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointDeleted {
    /// What happened, in words.
    detail: String,
    /// Deliveries deleted with the endpoint (delivered, dead letters and pending).
    deliveries_deleted: u64,
    /// Of those, the ones still pending: they are never sent.
    pending_deleted: u64,
    /// The audit entry written with the action.
    audit_id: i64,
}

/// The body of a create.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code, reason = "documents the body; it is read from JSON by hand")]
pub(crate) struct CreateEndpointBody {
    /// Where deliveries are POSTed: `https://` (plain `http://` only where private addresses
    /// are allowed, in development), at most 2048 characters.
    #[schema(
        example = "https://marketplace.example/hooks/vendorflow",
        max_length = 2048,
        pattern = r"^https?://[^\s\x00-\x1f\x7f-\x9f]+$"
    )]
    url: String,
    /// Only these event types (at least one, each a name of the `webhooks` section); absent or
    /// `null`: every type.
    #[schema(schema_with = event_types_schema)]
    event_types: Option<Vec<String>>,
    /// Why, 1–500 characters; kept in the audit log.
    reason: String,
}

/// The body of a change of the event filter.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code, reason = "documents the body; it is read from JSON by hand")]
pub(crate) struct UpdateEndpointBody {
    /// The event types it receives from now on (at least one); `null`: every type. Required:
    /// give `null` to receive every type.
    #[schema(schema_with = event_types_schema, required = true)]
    event_types: Option<Vec<String>>,
    /// Why, 1–500 characters; kept in the audit log.
    reason: String,
}

/// The body of a rotation.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code, reason = "documents the body; it is read from JSON by hand")]
pub(crate) struct RotateSecretBody {
    /// How long, in seconds, deliveries also carry a signature with the current secret, so
    /// receivers can switch at any moment of it (0: switch now). Default one day, at most seven.
    #[schema(minimum = 0, maximum = 604_800, default = 86_400)]
    overlap_seconds: Option<u64>,
    /// Why, 1–500 characters; kept in the audit log.
    reason: String,
}

/// The body of disable and enable.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code, reason = "documents the body; it is read from JSON by hand")]
pub(crate) struct EndpointReasonBody {
    /// Why, 1–500 characters; kept in the audit log (and, on disable, shown on the endpoint).
    #[schema(example = "the receiver is being migrated")]
    reason: String,
}

/// An event filter in the document: `null` (every type), or at least one name of the catalogue.
fn event_types_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    let names = domain::webhook_events::CATALOGUE.iter().map(|e| e.name);
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .min_items(Some(1))
        .unique_items(true)
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(names)),
        )
        .description(Some(
            "Event types (each a name of the document's `webhooks` section); `null`: every type.",
        ))
        .examples([json!(["vendor.ready", "charge.succeeded"])])
        .build()
}

/// The query of a delete.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteQuery {
    /// Why, 1–500 characters; kept in the audit log. Required.
    reason: Option<String>,
}

fn invalid(lang: Lang, field: &str, code: &'static str, en: String, he: String) -> ApiError {
    ApiError::Validation(
        ValidationErrors::new(vec![FieldProblem::new(code, en, he).at(field)]),
        lang,
    )
}

/// The members of each endpoint body, as its `ToSchema` type documents them; any other member
/// is refused (`unknown_field`), all of them at once, by the admin API's `known_members`.
const CREATE_SHAPE: Shape = Shape::Object(&[
    ("url", Shape::Any),
    ("event_types", Shape::Any),
    ("reason", Shape::Any),
]);
const UPDATE_SHAPE: Shape = Shape::Object(&[("event_types", Shape::Any), ("reason", Shape::Any)]);
const ROTATE_SHAPE: Shape =
    Shape::Object(&[("overlap_seconds", Shape::Any), ("reason", Shape::Any)]);

/// `reason` as given (checked by the action); a non-string is refused.
fn reason_of(map: &Map<String, Value>, lang: Lang) -> Result<Option<String>, ApiError> {
    match map.get("reason") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(invalid(
            lang,
            "reason",
            "invalid_type",
            "the reason must be a string".to_owned(),
            "הסיבה חייבת להיות מחרוזת".to_owned(),
        )),
    }
}

/// `event_types`: absent or `null` for every type, else an array of strings.
fn event_types_of(map: &Map<String, Value>, lang: Lang) -> Result<Option<Vec<String>>, ApiError> {
    match map.get("event_types") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<String>>>()
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    lang,
                    "event_types",
                    "invalid_type",
                    "event_types must be an array of event type names, or null".to_owned(),
                    "event_types חייב להיות מערך של שמות אירועים, או null".to_owned(),
                )
            }),
        Some(_) => Err(invalid(
            lang,
            "event_types",
            "invalid_type",
            "event_types must be an array of event type names, or null".to_owned(),
            "event_types חייב להיות מערך של שמות אירועים, או null".to_owned(),
        )),
    }
}

/// The store's refusals as 422s naming the field; the rest as 500/503.
fn store_error(error: WebhookStoreError, lang: Lang) -> ApiError {
    match error {
        WebhookStoreError::InvalidUrl(why) => invalid(
            lang,
            "url",
            "invalid_url",
            format!("the URL is not acceptable: {why}"),
            format!("הכתובת אינה תקינה: {why}"),
        ),
        WebhookStoreError::InvalidEventTypes(why) => invalid(
            lang,
            "event_types",
            "invalid_event_types",
            why.to_owned(),
            why.to_owned(),
        ),
        WebhookStoreError::UnknownEventTypes(names) => invalid(
            lang,
            "event_types",
            "unknown_event_type",
            format!(
                "unknown event types: {}; the types are listed in the document's webhooks section",
                names.join(", ")
            ),
            format!("סוגי אירועים לא מוכרים: {}", names.join(", ")),
        ),
        WebhookStoreError::OverlapTooLong => invalid(
            lang,
            "overlap_seconds",
            "out_of_range",
            "the overlap may be at most 604800 seconds (7 days)".to_owned(),
            "החפיפה יכולה להיות לכל היותר 604800 שניות (7 ימים)".to_owned(),
        ),
        WebhookStoreError::Database(error) => ApiError::from(error),
        other => ApiError::internal(other),
    }
}

/// Why an endpoint action failed: the caller's mistake (already an answer), or a refusal or
/// outage of the action (audited when it is a refusal).
enum Failure {
    Answer(ApiError),
    Action(ActionError),
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        Failure::Action(ActionError::from(error))
    }
}

/// Runs `operation` on one transaction with its audit entry; a refusal (not found, not
/// applicable) is rolled back and audited as refused; a bad input is rolled back and answered.
async fn audited<T>(
    state: &AppState,
    who: &Operator,
    mut audit: Audit<'_>,
    lang: Lang,
    operation: impl AsyncFnOnce(&mut PgConnection) -> Result<(T, String, Option<Value>), Failure>,
) -> Result<(T, String, i64), ApiError> {
    let mut tx = state.pool.begin().await?;
    match operation(&mut tx).await {
        Ok((value, detail, data)) => {
            if data.is_some() {
                audit.data = data;
            }
            let audit_id = actions::append(&mut tx, who, &audit, "ok", &detail).await?;
            tx.commit().await?;
            Ok((value, detail, audit_id))
        }
        Err(failure) => {
            tx.rollback().await?;
            match failure {
                Failure::Answer(error) => Err(error),
                Failure::Action(error) => Err(action_error(
                    actions::refused(&state.pool, who, &audit, error).await,
                    lang,
                )),
            }
        }
    }
}

async fn view(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
    endpoint_id: Uuid,
) -> Result<EndpointView, Failure> {
    let endpoint = wstore::get_endpoint(conn, marketplace_id, endpoint_id)
        .await
        .map_err(|e| Failure::Answer(store_error(e, Lang::En)))?
        .ok_or(Failure::Action(ActionError::NotFound("webhook endpoint")))?;
    let backlog = store::admin::delivery_backlog(conn, marketplace_id).await?;
    Ok(EndpointView::new(endpoint, &backlog))
}

/// The reason, checked as every action's is; control characters (which PostgreSQL refuses in
/// text, NUL) are refused here too.
fn checked_reason(reason: Option<&str>, lang: Lang) -> Result<String, ApiError> {
    if reason.is_some_and(|r| r.chars().any(char::is_control)) {
        return Err(invalid(
            lang,
            "reason",
            "invalid_characters",
            "the reason holds control characters".to_owned(),
            "הסיבה מכילה תווי בקרה".to_owned(),
        ));
    }
    actions::check_reason(reason).map_err(|e| action_error(e, lang))
}

/// List the marketplace's webhook endpoints, oldest first, with their pending and dead
/// deliveries (never their secrets).
#[utoipa::path(get, path = "/v1/admin/webhooks/endpoints", tag = "admin",
    responses((status = 200, body = Vec<EndpointView>),
              (status = 403, description = "Not a viewer or operator token", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn list_endpoints(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<EndpointView>>, ApiError> {
    let who = reader(&caller)?;
    let mut conn = state.pool.acquire().await?;
    let endpoints = wstore::list_endpoints(&mut conn, who.marketplace_id)
        .await
        .map_err(|e| store_error(e, Lang::En))?;
    let backlog = store::admin::delivery_backlog(&mut conn, who.marketplace_id).await?;
    Ok(Json(
        endpoints
            .into_iter()
            .map(|e| EndpointView::new(e, &backlog))
            .collect(),
    ))
}

/// One webhook endpoint (never its secret).
#[utoipa::path(get, path = "/v1/admin/webhooks/endpoints/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    responses((status = 200, body = EndpointView),
              (status = 403, description = "Not a viewer or operator token", content_type = "application/problem+json"),
              (status = 404, description = "No such endpoint in your marketplace", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn get_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EndpointView>, ApiError> {
    let who = reader(&caller)?;
    let id = parse_uuid(&id, "webhook endpoint")?;
    let mut conn = state.pool.acquire().await?;
    match view(&mut conn, who.marketplace_id, id).await {
        Ok(view) => Ok(Json(view)),
        Err(Failure::Answer(error)) => Err(error),
        Err(Failure::Action(error)) => Err(action_error(error, Lang::En)),
    }
}

/// Register an endpoint. The answer holds its signing secret, shown this once.
#[utoipa::path(post, path = "/v1/admin/webhooks/endpoints", tag = "admin",
    request_body = CreateEndpointBody,
    responses((status = 201, body = EndpointWithSecret),
              (status = 403, description = "Not an operator token", content_type = "application/problem+json"),
              (status = 422, description = "The URL, an event type (unknown ones are named), an unknown field or the reason is not acceptable", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn create_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<EndpointWithSecret>), ApiError> {
    let who = actor(&caller)?;
    let map = known_members(&body, &CREATE_SHAPE, lang)?;
    let url = match map.get("url") {
        Some(Value::String(url)) => url.clone(),
        _ => {
            return Err(invalid(
                lang,
                "url",
                "required",
                "the endpoint's URL is required (a string)".to_owned(),
                "נדרשת כתובת (מחרוזת)".to_owned(),
            ));
        }
    };
    let event_types = event_types_of(map, lang)?;
    let reason = checked_reason(reason_of(map, lang)?.as_deref(), lang)?;
    let audit = Audit {
        action: "create_endpoint",
        target_kind: "endpoint",
        target_id: None,
        reason: Some(&reason),
        data: Some(json!({ "event_types": event_types })),
    };
    let mut tx = state.pool.begin().await?;
    let created = wstore::create_endpoint(
        &mut tx,
        &state.keyring,
        who.marketplace_id,
        &url,
        event_types.as_deref(),
    )
    .await
    .map_err(|e| store_error(e, lang))?;
    let audit = Audit {
        target_id: Some(created.id),
        ..audit
    };
    let detail = "endpoint created; its signing secret is shown once, in this answer".to_owned();
    let audit_id = actions::append(&mut tx, &who, &audit, "ok", &detail).await?;
    let endpoint = match view(&mut tx, who.marketplace_id, created.id).await {
        Ok(view) => view,
        Err(Failure::Answer(error)) => return Err(error),
        Err(Failure::Action(error)) => return Err(action_error(error, lang)),
    };
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(EndpointWithSecret {
            endpoint,
            secret: created.secret.expose_secret().to_owned(),
            audit_id,
        }),
    ))
}

/// Change the event types an endpoint receives (events fanned out from now on follow it).
#[utoipa::path(patch, path = "/v1/admin/webhooks/endpoints/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    request_body = UpdateEndpointBody,
    responses((status = 200, body = EndpointActionResult),
              (status = 403, description = "Not an operator token", content_type = "application/problem+json"),
              (status = 404, description = "No such endpoint in your marketplace", content_type = "application/problem+json"),
              (status = 422, description = "An event type (unknown ones are named), an unknown field or the reason is not acceptable", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn update_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<EndpointActionResult>, ApiError> {
    let who = actor(&caller)?;
    let id = parse_uuid(&id, "webhook endpoint")?;
    let map = known_members(&body, &UPDATE_SHAPE, lang)?;
    if !map.contains_key("event_types") {
        return Err(invalid(
            lang,
            "event_types",
            "required",
            "give event_types: an array of event types, or null for every type".to_owned(),
            "נדרש event_types: מערך של סוגי אירועים, או null לכל הסוגים".to_owned(),
        ));
    }
    let event_types = event_types_of(map, lang)?;
    let reason = checked_reason(reason_of(map, lang)?.as_deref(), lang)?;
    let audit = Audit {
        action: "update_endpoint",
        target_kind: "endpoint",
        target_id: Some(id),
        reason: Some(&reason),
        data: Some(json!({ "event_types": event_types })),
    };
    let (endpoint, detail, audit_id) = audited(&state, &who, audit, lang, async |tx| {
        let found = wstore::set_event_types(tx, who.marketplace_id, id, event_types.as_deref())
            .await
            .map_err(|e| Failure::Answer(store_error(e, lang)))?;
        if !found {
            return Err(Failure::Action(ActionError::NotFound("webhook endpoint")));
        }
        let detail = match &event_types {
            None => "the endpoint receives every event type".to_owned(),
            Some(types) => format!("the endpoint receives {}", types.join(", ")),
        };
        Ok((view(tx, who.marketplace_id, id).await?, detail, None))
    })
    .await?;
    Ok(Json(EndpointActionResult {
        endpoint,
        detail,
        audit_id,
    }))
}

async fn set_enabled(
    state: &AppState,
    caller: &Caller,
    lang: Lang,
    id: &str,
    body: &Value,
    enabled: bool,
) -> Result<Json<EndpointActionResult>, ApiError> {
    let who = actor(caller)?;
    let id = parse_uuid(id, "webhook endpoint")?;
    let map = known_members(body, &REASON_SHAPE, lang)?;
    let reason = checked_reason(reason_of(map, lang)?.as_deref(), lang)?;
    let audit = Audit {
        action: if enabled {
            "enable_endpoint"
        } else {
            "disable_endpoint"
        },
        target_kind: "endpoint",
        target_id: Some(id),
        reason: Some(&reason),
        data: None,
    };
    let (endpoint, detail, audit_id) = audited(state, &who, audit, lang, async |tx| {
        let before = view(tx, who.marketplace_id, id).await?;
        if before.enabled == enabled {
            return Err(Failure::Action(ActionError::Refused(format!(
                "the endpoint is already {}",
                if enabled { "enabled" } else { "disabled" }
            ))));
        }
        wstore::set_endpoint_enabled(tx, who.marketplace_id, id, enabled, &reason)
            .await
            .map_err(|e| Failure::Answer(store_error(e, lang)))?;
        let detail = if enabled {
            "the endpoint is enabled: new events are delivered to it; replay its dead letters to \
             send what it missed"
                .to_owned()
        } else {
            format!(
                "the endpoint is disabled: it gets no new deliveries, and its {} pending \
                 deliveries become dead letters (replayable once it is enabled again)",
                before.pending
            )
        };
        Ok((view(tx, who.marketplace_id, id).await?, detail, None))
    })
    .await?;
    Ok(Json(EndpointActionResult {
        endpoint,
        detail,
        audit_id,
    }))
}

/// Disable an endpoint: no new deliveries are made for it, and its pending deliveries become dead
/// letters at the relay's next pass (replayable after it is enabled again).
#[utoipa::path(post, path = "/v1/admin/webhooks/endpoints/{id}/disable", tag = "admin",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    request_body = EndpointReasonBody,
    responses((status = 200, body = EndpointActionResult),
              (status = 403, description = "Not an operator token", content_type = "application/problem+json"),
              (status = 404, description = "No such endpoint in your marketplace", content_type = "application/problem+json"),
              (status = 409, description = "The endpoint is already disabled", content_type = "application/problem+json"),
              (status = 422, description = "The reason is missing, or an unknown field", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn disable_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<EndpointActionResult>, ApiError> {
    set_enabled(&state, &caller, lang, &id, &body, false).await
}

/// Enable a disabled endpoint: events from now on are delivered to it.
#[utoipa::path(post, path = "/v1/admin/webhooks/endpoints/{id}/enable", tag = "admin",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    request_body = EndpointReasonBody,
    responses((status = 200, body = EndpointActionResult),
              (status = 403, description = "Not an operator token", content_type = "application/problem+json"),
              (status = 404, description = "No such endpoint in your marketplace", content_type = "application/problem+json"),
              (status = 409, description = "The endpoint is already enabled", content_type = "application/problem+json"),
              (status = 422, description = "The reason is missing, or an unknown field", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn enable_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<EndpointActionResult>, ApiError> {
    set_enabled(&state, &caller, lang, &id, &body, true).await
}

/// Delete an endpoint with its secret and every delivery made to it: pending deliveries are
/// never sent, and its dead letters can no longer be replayed.
#[utoipa::path(delete, path = "/v1/admin/webhooks/endpoints/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "The endpoint's id"), DeleteQuery),
    responses((status = 200, body = EndpointDeleted),
              (status = 400, description = "A malformed query", content_type = "application/problem+json"),
              (status = 403, description = "Not an operator token", content_type = "application/problem+json"),
              (status = 404, description = "No such endpoint in your marketplace", content_type = "application/problem+json"),
              (status = 422, description = "The reason is missing", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path(id): Path<String>,
    query: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EndpointDeleted>, ApiError> {
    let who = actor(&caller)?;
    let id = parse_uuid(&id, "webhook endpoint")?;
    let Query(query) = query.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let reason = checked_reason(query.reason.as_deref(), lang)?;
    let audit = Audit {
        action: "delete_endpoint",
        target_kind: "endpoint",
        target_id: Some(id),
        reason: Some(&reason),
        data: None,
    };
    let (gone, detail, audit_id) = audited(&state, &who, audit, lang, async |tx| {
        let gone = wstore::delete_endpoint(tx, who.marketplace_id, id)
            .await
            .map_err(|e| Failure::Answer(store_error(e, lang)))?
            .ok_or(Failure::Action(ActionError::NotFound("webhook endpoint")))?;
        let detail = format!(
            "the endpoint is deleted with its {} deliveries; {} pending ones will never be sent",
            gone.deliveries, gone.pending
        );
        let data =
            json!({ "deliveries_deleted": gone.deliveries, "pending_deleted": gone.pending });
        Ok((gone, detail, Some(data)))
    })
    .await?;
    Ok(Json(EndpointDeleted {
        detail,
        deliveries_deleted: gone.deliveries,
        pending_deleted: gone.pending,
        audit_id,
    }))
}

/// Give an endpoint a new signing secret, shown this once. During the overlap every delivery
/// carries two signatures in `webhook-signature` (the new secret's and the old one's), so the
/// receiver may switch at any moment of it; after it, only the new secret signs.
#[utoipa::path(post, path = "/v1/admin/webhooks/endpoints/{id}/rotate-secret", tag = "admin",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    request_body = RotateSecretBody,
    responses((status = 200, body = EndpointWithSecret),
              (status = 403, description = "Not an operator token", content_type = "application/problem+json"),
              (status = 404, description = "No such endpoint in your marketplace", content_type = "application/problem+json"),
              (status = 422, description = "The overlap is not 0–604800 seconds, an unknown field, or the reason is missing", content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Language(lang): Language,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<EndpointWithSecret>, ApiError> {
    let who = actor(&caller)?;
    let id = parse_uuid(&id, "webhook endpoint")?;
    let map = known_members(&body, &ROTATE_SHAPE, lang)?;
    let overlap = match map.get("overlap_seconds") {
        None | Some(Value::Null) => wstore::DEFAULT_OVERLAP,
        Some(value) => match value.as_u64() {
            Some(seconds) if Duration::from_secs(seconds) <= wstore::MAX_OVERLAP => {
                Duration::from_secs(seconds)
            }
            _ => return Err(store_error(WebhookStoreError::OverlapTooLong, lang)),
        },
    };
    let reason = checked_reason(reason_of(map, lang)?.as_deref(), lang)?;
    let audit = Audit {
        action: "rotate_endpoint_secret",
        target_kind: "endpoint",
        target_id: Some(id),
        reason: Some(&reason),
        data: Some(json!({ "overlap_seconds": overlap.as_secs() })),
    };
    let ((endpoint, secret), _, audit_id) = audited(&state, &who, audit, lang, async |tx| {
        let rotated = wstore::rotate_secret(tx, &state.keyring, who.marketplace_id, id, overlap)
            .await
            .map_err(|e| Failure::Answer(store_error(e, lang)))?
            .ok_or(Failure::Action(ActionError::NotFound("webhook endpoint")))?;
        let detail = match rotated.previous_expires_at {
            Some(until) => format!(
                "the secret is rotated; deliveries carry the old secret's signature too until {}",
                until.to_rfc3339()
            ),
            None => "the secret is rotated; only the new secret signs from now on".to_owned(),
        };
        let view = view(tx, who.marketplace_id, id).await?;
        Ok((
            (view, rotated.secret.expose_secret().to_owned()),
            detail,
            None,
        ))
    })
    .await?;
    Ok(Json(EndpointWithSecret {
        endpoint,
        secret,
        audit_id,
    }))
}

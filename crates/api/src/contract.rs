//! What every operation of the OpenAPI document shares, written once instead of on each handler:
//! the problem document's schema, and the answers that come from the extractors and layers
//! rather than from the handler — 401 (the bearer token, `extract::Caller`), 403 (a role that may
//! not act), 400/413/415/422 (the JSON body, `extract::JsonBody`), 422 (query parameters), 503
//! (the database unavailable) — and the `Idempotency-Key` header's exact format.
//!
//! It completes the document the handlers' annotations produce; it must not describe what a
//! handler alone decides (its own 404s, 409s and bodies stay on the handler, next to the code).

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response, Schema};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

const PROBLEM_JSON: &str = "application/problem+json";

/// An error (RFC 9457 problem details), as `error::ApiError` and the handlers write it. Extension
/// members name what already exists on a 409 (`run_id`, `vendor_id`, `links`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(
    dead_code,
    reason = "documents the answer; errors are built in crate::error"
)]
pub(crate) struct Problem {
    /// A URI naming the kind of problem.
    #[schema(example = "https://vendorflow.dev/problems/validation-error")]
    r#type: String,
    /// A short summary, in the caller's language (`Accept-Language: he` or English).
    title: String,
    /// The HTTP status.
    #[schema(minimum = 400, maximum = 599, example = 422)]
    status: u16,
    /// What happened in this case.
    detail: Option<String>,
    /// On 422: one entry per bad field or parameter.
    errors: Option<Vec<FieldError>>,
    /// On a 409: the run that already holds the order or the request.
    run_id: Option<Uuid>,
    /// On a 409: the vendor that already exists.
    vendor_id: Option<Uuid>,
    /// On a 409: where to read what already exists.
    links: Option<BTreeMap<String, String>>,
}

/// One bad field or parameter of a 422.
#[derive(Debug, Serialize, ToSchema)]
#[allow(
    dead_code,
    reason = "documents the answer; errors are built in domain::errors"
)]
pub(crate) struct FieldError {
    /// The JSON path of the member (`items[0].quantity`) or the parameter's name.
    #[schema(example = "items[0].quantity")]
    field: String,
    /// A stable, machine-readable code.
    #[schema(example = "invalid_characters")]
    code: String,
    /// What to fix, in the caller's language.
    message: String,
}

/// The document with the shared parts added. Operations keep what they document themselves; a
/// problem answer without a schema gets the problem schema.
pub(crate) fn complete(mut spec: OpenApi) -> OpenApi {
    let components = spec.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert(Problem::name().into_owned(), Problem::schema());
    components
        .schemas
        .insert(FieldError::name().into_owned(), FieldError::schema());
    components.schemas.insert(
        crate::schemas::JSON_SCALAR.to_owned(),
        crate::schemas::json_scalar(),
    );
    components.schemas.insert(
        crate::schemas::JSON_VALUE.to_owned(),
        crate::schemas::json_value(),
    );
    close_request_bodies(&mut spec);
    for (path, item) in spec.paths.paths.iter_mut() {
        let operations = [
            ("get", &mut item.get),
            ("post", &mut item.post),
            ("put", &mut item.put),
            ("patch", &mut item.patch),
            ("delete", &mut item.delete),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                complete_operation(path, method, operation);
            }
        }
    }
    spec
}

/// Every object a request body holds, at any depth, refuses members it does not list
/// (`additionalProperties: false`), as the parser does (422 `unknown_field`). A free-form object
/// (no listed members, such as a signal's payload) stays open.
fn close_request_bodies(spec: &mut OpenApi) {
    let mut pending: Vec<String> = Vec::new();
    for item in spec.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            let Some(RefOr::T(body)) = operation.request_body.as_mut() else {
                continue;
            };
            for content in body.content.values_mut() {
                if let RefOr::T(content) = content
                    && let Some(schema) = content.schema.as_mut()
                {
                    close(schema, &mut pending);
                }
            }
        }
    }
    let Some(components) = spec.components.as_mut() else {
        return;
    };
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = components.schemas.get_mut(&name) {
            close(schema, &mut pending);
        }
    }
}

/// Closes `schema` and the inline schemas in it; names the components it refers to in `refs`.
fn close(schema: &mut RefOr<Schema>, refs: &mut Vec<String>) {
    match schema {
        RefOr::Ref(reference) => {
            if let Some(name) = reference.ref_location.strip_prefix("#/components/schemas/") {
                refs.push(name.to_owned());
            }
        }
        RefOr::T(Schema::Object(object)) => {
            no_control_characters(object);
            if !object.properties.is_empty() {
                object.additional_properties = Some(Box::new(
                    utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
                ));
            }
            for (name, property) in object.properties.iter_mut() {
                if name == "reason"
                    && let RefOr::T(Schema::Object(reason)) = property
                {
                    describe_reason(reason);
                }
                close(property, refs);
            }
        }
        RefOr::T(Schema::Array(array)) => {
            if let utoipa::openapi::schema::ArrayItems::RefOrSchema(items) = &mut array.items {
                close(items, refs);
            }
        }
        RefOr::T(Schema::OneOf(one_of)) => one_of.items.iter_mut().for_each(|s| close(s, refs)),
        RefOr::T(Schema::AllOf(all_of)) => {
            // utoipa writes an inlined type with its own description as `allOf: [the type,
            // {description}]`, and that second member is typed `object`: merged back into one
            // schema, the member says what it is without contradicting itself.
            if let [
                RefOr::T(Schema::Object(first)),
                RefOr::T(Schema::Object(notes)),
            ] = all_of.items.as_slice()
                && notes.properties.is_empty()
                && notes.enum_values.is_none()
            {
                let mut merged = first.clone();
                merged.description = notes.description.clone().or(merged.description);
                if notes.default.is_some() {
                    merged.default = notes.default.clone();
                }
                *schema = RefOr::T(Schema::Object(merged));
                close(schema, refs);
                return;
            }
            all_of.items.iter_mut().for_each(|s| close(s, refs));
        }
        RefOr::T(Schema::AnyOf(any_of)) => any_of.items.iter_mut().for_each(|s| close(s, refs)),
        RefOr::T(_) => {}
    }
}

/// An operator's reason (`admin::actions::check_reason`): 1–500 characters once trimmed, not
/// blank, no control character at all.
const REASON_PATTERN: &str =
    r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

fn describe_reason(reason: &mut utoipa::openapi::schema::Object) {
    reason.pattern = Some(REASON_PATTERN.to_owned());
    reason.min_length = Some(1);
    reason.max_length = Some(500);
}

/// Text the API stores refuses the control characters PostgreSQL and people cannot use
/// (`extract::JsonBody` and `extract::Query` answer 422 `invalid_characters`): a free string
/// schema says so with a pattern. Strings with their own pattern, format or values say it
/// themselves.
fn no_control_characters(object: &mut utoipa::openapi::schema::Object) {
    let is_string = matches!(
        &object.schema_type,
        utoipa::openapi::schema::SchemaType::Type(Type::String)
    ) || matches!(&object.schema_type, utoipa::openapi::schema::SchemaType::Array(types)
        if types.contains(&Type::String));
    if is_string
        && object.pattern.is_none()
        && object.format.is_none()
        && object.enum_values.is_none()
    {
        object.pattern = Some(crate::schemas::TEXT.to_owned());
    }
}

fn complete_operation(path: &str, method: &str, operation: &mut Operation) {
    // The admin API's handlers share names with the marketplace API's (`get_vendor`,
    // `list_runs`, …); operation ids must be unique, so the admin ones say so.
    if path.starts_with("/v1/admin/")
        && let Some(id) = operation.operation_id.as_mut()
        && !id.starts_with("admin_")
    {
        *id = format!("admin_{id}");
    }
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let has_body = operation.request_body.is_some();
    let mut has_query = false;
    let mut has_idempotency_key = false;
    for parameter in operation.parameters.iter_mut().flatten() {
        let RefOr::T(parameter) = parameter else {
            continue;
        };
        if matches!(
            parameter.parameter_in,
            ParameterIn::Query | ParameterIn::Path
        ) && let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut()
        {
            no_control_characters(object);
        }
        // OpenAPI requires path parameters to be required; utoipa leaves one whose schema comes
        // from `schema_with` optional.
        if matches!(parameter.parameter_in, ParameterIn::Path) {
            parameter.required = utoipa::openapi::Required::True;
        }
        // Every cursor is a run/vendor keyset cursor, whose form the store defines.
        if matches!(parameter.parameter_in, ParameterIn::Query)
            && parameter.name == "cursor"
            && let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut()
        {
            object.pattern = Some(store::run_queries::RunCursor::PATTERN.to_owned());
            object.description = Some(
                "The `next_cursor` of the previous page (its form is fixed; any text of that \
                 form starts a page after the point it names)."
                    .to_owned(),
            );
        }
        // An operator's reason is never optional (`admin::actions::check_reason`).
        if matches!(parameter.parameter_in, ParameterIn::Query)
            && parameter.name == "reason"
            && let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut()
        {
            describe_reason(object);
            object.schema_type = utoipa::openapi::schema::SchemaType::Type(Type::String);
            parameter.required = utoipa::openapi::Required::True;
        }
        // `?status=` is no status (`extract::Query` and the dashboard's filters leave empty
        // optional parameters out): OpenAPI says so with `allowEmptyValue`, which utoipa does
        // not model.
        if matches!(parameter.parameter_in, ParameterIn::Query)
            && !matches!(parameter.required, utoipa::openapi::Required::True)
        {
            parameter
                .extensions
                .get_or_insert_with(Default::default)
                .insert("allowEmptyValue".to_owned(), serde_json::Value::Bool(true));
        }
        match parameter.parameter_in {
            ParameterIn::Query => has_query = true,
            ParameterIn::Header if parameter.name.eq_ignore_ascii_case("idempotency-key") => {
                has_idempotency_key = true;
                parameter.schema = Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(255))
                        .pattern(Some("^[!-~]+$"))
                        .into(),
                );
            }
            _ => {}
        }
    }

    let responses = &mut operation.responses.responses;
    if secured {
        add(
            responses,
            "401",
            "No bearer token, or an unknown or revoked one",
        );
        // Admin reads are for operator and viewer tokens; every write is for some roles only.
        if path.starts_with("/v1/admin/") || method != "get" {
            add(responses, "403", "This token's role may not do this");
        }
        add(
            responses,
            "503",
            "The database is unavailable; retry later (no change was made)",
        );
    }
    if has_body || has_idempotency_key {
        add(
            responses,
            "400",
            "Malformed: the body is not JSON, or the Idempotency-Key header is not 1–255 visible \
             ASCII characters",
        );
    }
    if has_body {
        add(
            responses,
            "413",
            "The body is larger than the limit (64 KiB)",
        );
        add(responses, "415", "The body is not application/json");
    }
    if has_body || has_query {
        add(
            responses,
            "422",
            "Invalid input: `errors` names each bad field or parameter (control characters, \
             unknown members, wrong types, values out of range)",
        );
    }
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        // OpenAPI requires a description on every answer; generators refuse a document without.
        if response.description.trim().is_empty() {
            response.description = status
                .parse::<u16>()
                .ok()
                .and_then(|code| axum::http::StatusCode::from_u16(code).ok())
                .and_then(|code| code.canonical_reason())
                .unwrap_or("The answer")
                .to_owned();
        }
        if let Some(RefOr::T(content)) = response.content.get_mut(PROBLEM_JSON)
            && content.schema.is_none()
        {
            content.schema = Some(problem_ref());
        }
    }
}

fn problem_ref() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(Problem::name()))
}

/// Adds a problem answer for `status` unless the operation documents it itself.
fn add(responses: &mut BTreeMap<String, RefOr<Response>>, status: &str, description: &str) {
    responses.entry(status.to_owned()).or_insert_with(|| {
        let mut response = Response::new(description);
        response.content.insert(
            PROBLEM_JSON.to_owned(),
            RefOr::T(Content::new(Some(problem_ref()))),
        );
        RefOr::T(response)
    });
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn document() -> Value {
        let (_, spec) = crate::routes::openapi_router()
            .merge(crate::admin::api_router())
            .split_for_parts();
        serde_json::to_value(complete(spec)).expect("serialises")
    }

    #[test]
    fn secured_operations_document_the_extractors_answers_with_the_problem_schema() {
        let document = document();
        let problem = |operation: &Value, status: &str| {
            operation["responses"][status]["content"][PROBLEM_JSON]["schema"]["$ref"].clone()
        };
        let charge = &document["paths"]["/v1/vendors/{id}/charges"]["post"];
        for status in ["400", "401", "403", "404", "413", "415", "422", "503"] {
            assert_eq!(
                problem(charge, status),
                "#/components/schemas/Problem",
                "POST charges {status}"
            );
        }
        let runs = &document["paths"]["/v1/runs"]["get"];
        assert!(
            runs["parameters"]
                .as_array()
                .expect("parameters")
                .iter()
                .all(|parameter| parameter["allowEmptyValue"] == true),
            "an empty query parameter is no filter"
        );
        assert_eq!(problem(runs, "401"), "#/components/schemas/Problem");
        assert_eq!(problem(runs, "422"), "#/components/schemas/Problem");
        assert!(
            runs["responses"].get("403").is_none(),
            "any role reads runs"
        );
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                for (status, response) in operation["responses"].as_object().expect("responses") {
                    assert!(
                        response["description"]
                            .as_str()
                            .is_some_and(|text| !text.is_empty()),
                        "{method} {path} {status} has no description"
                    );
                }
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for item in document["paths"].as_object().expect("paths").values() {
            for operation in item.as_object().expect("path item").values() {
                let id = operation["operationId"].as_str().expect("an operation id");
                assert!(ids.insert(id.to_owned()), "operation id {id} is used twice");
            }
        }
        let health = &document["paths"]["/healthz"]["get"];
        assert!(health["responses"].get("401").is_none(), "healthz is open");
        assert_eq!(
            document["components"]["schemas"]["Problem"]["required"],
            serde_json::json!(["type", "title", "status"])
        );
    }
}

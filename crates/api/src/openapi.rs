//! The OpenAPI document (generated from the handlers' annotations) and `/docs`, the API reference
//! rendered from it in the browser by Swagger UI.
//!
//! This module owns the document's fixed parts (info, the integration guide, security scheme, the
//! order and descriptions of its top-level tags), the one function that turns the collected
//! routes into the served document ([`document`]), and the routes `/openapi.json`, `/docs` and
//! `/docs/{file}`. Swagger UI's files come from `utoipa-swagger-ui`'s vendored build, compiled into
//! the binary: the page loads nothing from another origin, so it works where the internet is not
//! reachable. It must not describe a route (each handler's `#[utoipa::path]` does) and must not
//! reference any external URL in what it serves.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::{Value, json};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};
use utoipa_swagger_ui::Config;

use crate::AppState;
use crate::error::ApiError;

/// The integration guide at the top of the reference (CommonMark, rendered by Swagger UI).
const GUIDE: &str = "\
Durable vendor onboarding, charges and documents at SUMIT for Israeli marketplaces.

## Authentication

Every `/v1` operation takes `Authorization: Bearer <token>`; a missing, unknown or revoked token \
answers **401**. A token belongs to one marketplace (every read and write is scoped to it) and has \
one role; a role that may not do something answers **403**:

- `backend` — your marketplace's server: onboard vendors, charge, issue documents, send signals, \
read vendors and runs.
- `operator` — a person who may act: everything a backend may, and the admin operations \
(`/v1/admin/...`: retry, resume, cancel, pause, signal, supply API keys, replay webhooks).
- `viewer` — a person who may only look: the reads, including the admin reads.

## Requests

Bodies are `application/json` (another content type answers **415**, malformed JSON **400**). \
Send an `Idempotency-Key` header with every `POST` you may retry: the same key with the same body \
answers the first answer again, the same key with another body answers **409**. Amounts are \
integers in agorot (1 ₪ = 100 agorot). Onboardings, charges and documents are durable and \
asynchronous: the `POST` answers **202** with the run that does the work; follow the run \
(`GET /v1/runs/{id}`) or your webhooks. A second request for the same vendor (`external_id`) or \
order (`order_id`, `reference`) answers **409** naming the first.

## Errors

Every error is `application/problem+json` (RFC 9457):

```json
{
  \"type\": \"https://vendorflow.dev/problems/validation-error\",
  \"title\": \"The request has invalid fields\",
  \"status\": 422,
  \"detail\": \"1 field(s) are invalid\",
  \"errors\": [
    {\"field\": \"vendor.corporate_number\", \"code\": \"check_digit_failed\", \"message\": \"…\"}
  ]
}
```

`type` names the kind of error (`validation-error`, `bad-request`, `unauthorized`, `forbidden`, \
`not-found`, `method-not-allowed`, `conflict`, `payload-too-large`, `unsupported-media-type`, \
`unavailable`, `internal`); `errors` lists every bad field of a **422** with a stable `code`. Send \
`Accept-Language: he` for Hebrew messages.

## Webhooks

Events are POSTed to your endpoints signed as the Standard Webhooks specification says \
(`webhook-id`, `webhook-timestamp`, `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of \
`{id}.{timestamp}.{body}` under the endpoint's secret). `webhook-id` is stable across retries: \
deduplicate on it. The events and their payloads are listed under *Webhooks* below the operations.

The machine-readable document is [/openapi.json](/openapi.json).";

/// The document's top-level tags, in the order the reference shows them: the marketplace's
/// operations first, the operators' after, the probes last.
const TAGS: &[(&str, &str)] = &[
    (
        "onboarding",
        "Onboard a vendor at SUMIT: its organization, API keys and, for clearing vendors, a \
         terminal. Backend or operator token.",
    ),
    (
        "vendors",
        "The marketplace's vendors and their onboarding state. Any token of the marketplace.",
    ),
    (
        "charges",
        "Charge a clearing vendor's customer (a single-use card token) and issue the receipt. \
         Backend or operator token.",
    ),
    (
        "documents",
        "Issue a vendor's accounting document at SUMIT (invoice, receipt, credit note, quotation, \
         …) without charging. Backend or operator token.",
    ),
    (
        "runs",
        "The durable runs that do the work: their status, history and the signals they wait \
         for. Reads: any token; signals: backend or operator token.",
    ),
    (
        "webhooks",
        "Your webhook endpoints: where vendorflow sends events, which ones, and their signing \
         secrets.",
    ),
    (
        "admin",
        "Operators' reads and actions (the dashboard's, for scripts): viewer or operator token to \
         read, operator token to act. Every action takes a reason and is written to the audit \
         log.",
    ),
    ("health", "Liveness and readiness probes; no token."),
];

/// The document's fixed parts; the paths are added by the router as handlers are registered.
pub(crate) fn base_document() -> OpenApi {
    let mut document = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("vendorflow API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(GUIDE))
                .build(),
        )
        .build();
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    document
}

/// The served document: what the routes' annotations collected in `spec`, with the top-level
/// tags in the reference's order. `/openapi.json`, `/docs` and `vendorflow openapi` all show
/// exactly this; a part the annotations cannot express (such as the `webhooks` section) is added
/// here, once.
pub(crate) fn document(spec: &OpenApi) -> Value {
    let mut document = serde_json::to_value(spec).unwrap_or_else(|_| json!({}));
    crate::webhook_catalogue::add_to(&mut document);
    let tags = ordered_tags(&document);
    if let Some(object) = document.as_object_mut() {
        object.insert("tags".to_owned(), Value::Array(tags));
    }
    document
}

/// The HTTP methods an OpenAPI path item may hold operations under.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The tags the document's operations use, in [`TAGS`]' order with their descriptions; a tag no
/// operation uses is left out (Swagger UI would show it as an empty section), and a tag [`TAGS`]
/// does not know is kept, after the marketplace's tags (or after `admin` when it is an `admin…`
/// tag), so that a new route is never hidden.
fn ordered_tags(document: &Value) -> Vec<Value> {
    let mut used: Vec<String> = Vec::new();
    let paths = document["paths"].as_object().into_iter().flatten();
    let webhooks = document["webhooks"].as_object().into_iter().flatten();
    for (_, item) in paths.chain(webhooks) {
        for method in METHODS {
            let tags = item[method]["tags"].as_array().into_iter().flatten();
            for tag in tags.filter_map(Value::as_str) {
                if !used.iter().any(|known| known == tag) {
                    used.push(tag.to_owned());
                }
            }
        }
    }
    used.sort();
    let known = |name: &str| TAGS.iter().any(|(tag, _)| *tag == name);
    let unknown = |admin: bool| {
        used.iter()
            .filter(move |tag| !known(tag) && tag.starts_with("admin") == admin)
            .map(|tag| json!({ "name": tag }))
    };
    let described = |names: &[&str]| {
        TAGS.iter()
            .filter(|(tag, _)| names.contains(tag) && used.iter().any(|u| u == tag))
            .map(|(tag, description)| json!({ "name": tag, "description": description }))
            .collect::<Vec<_>>()
    };
    let mut tags = described(&[
        "onboarding",
        "vendors",
        "charges",
        "documents",
        "runs",
        "webhooks",
    ]);
    tags.extend(unknown(false));
    tags.extend(described(&["admin"]));
    tags.extend(unknown(true));
    tags.extend(described(&["health"]));
    tags
}

/// How Swagger UI shows the document: the page's own layout (no URL bar, no online validator),
/// operations listed by tag and opened on click (deep links make each one addressable), schemas
/// shown as models with their fields, a filter box, and a sent request shown as `curl`.
fn swagger_config() -> Config<'static> {
    Config::from("/openapi.json")
        .use_base_layout()
        .validator_url("none")
        .query_config_enabled(false)
        .deep_linking(true)
        .doc_expansion("list")
        .default_model_rendering("model")
        .default_model_expand_depth(4)
        .filter(true)
        .request_snippets_enabled(true)
        .display_request_duration(true)
        .persist_authorization(false)
}

/// The reference page. Swagger UI's own `index.html` uses relative asset paths, which do not
/// resolve under `/docs` without a trailing slash; this one names them absolutely.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vendorflow API reference</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="stylesheet" href="/docs/index.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
<noscript><p>This reference is drawn by JavaScript. The document it shows is
<a href="/openapi.json">/openapi.json</a>.</p></noscript>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js" charset="utf-8"></script>
<script src="/docs/swagger-ui-standalone-preset.js" charset="utf-8"></script>
<script src="/docs/swagger-initializer.js" charset="utf-8"></script>
</body>
</html>
"#;

/// What the page may load, enforced by the browser: scripts, styles, the document and *Try it
/// out*'s requests from this origin only (Swagger UI sets inline styles and draws icons from
/// `data:` images); no frame may hold it.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// `/docs`: [`PAGE`] under [`PAGE_POLICY`].
fn page() -> Response {
    let mut response = Html(PAGE).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// `/openapi.json`, `/docs` and Swagger UI's files under `/docs/`.
pub(crate) fn router(spec: Arc<OpenApi>) -> Router<AppState> {
    let json = Bytes::from(serde_json::to_vec(&document(&spec)).unwrap_or_else(|_| b"{}".into()));
    let config = Arc::new(swagger_config());
    Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let json = json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], json) }
            }),
        )
        .route("/docs", get(|| async { page() }))
        .route("/docs/", get(|| async { Redirect::permanent("/docs") }))
        .route(
            "/docs/{*file}",
            // A path that does not decode (bad percent-encoding) names no file either.
            get(move |file: Result<Path<String>, PathRejection>| {
                let config = config.clone();
                async move {
                    match file.ok().and_then(|Path(file)| asset(&file, config)) {
                        Some(response) => response,
                        None => crate::routes::not_found().await,
                    }
                }
            }),
        )
}

/// One of Swagger UI's files (`None`: no such file); `swagger-initializer.js` carries
/// [`swagger_config`].
fn asset(file: &str, config: Arc<Config<'static>>) -> Option<Response> {
    let file = match utoipa_swagger_ui::serve(file, config) {
        Ok(file) => file?,
        // Only a configuration that cannot be written as JSON fails here.
        Err(error) => return Some(ApiError::Internal(error.to_string().into()).into_response()),
    };
    let mut response = (
        [(header::CONTENT_TYPE, file.content_type)],
        file.bytes.into_owned(),
    )
        .into_response();
    if file.gzpipped {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with_tags(tags: &[&str]) -> OpenApi {
        let paths: serde_json::Map<String, Value> = tags
            .iter()
            .enumerate()
            .map(|(i, tag)| {
                let operation = json!({ "tags": [tag], "responses": {} });
                (format!("/p{i}"), json!({ "get": operation }))
            })
            .collect();
        serde_json::from_value(json!({
            "openapi": "3.1.0",
            "info": { "title": "t", "version": "1" },
            "paths": paths,
        }))
        .unwrap()
    }

    fn names(document: &Value) -> Vec<&str> {
        document["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn marketplace_tags_come_first_then_admin_then_health_and_unused_ones_are_left_out() {
        let spec = spec_with_tags(&[
            "health",
            "admin",
            "admin-webhooks",
            "runs",
            "charges",
            "onboarding",
            "refunds",
            "vendors",
        ]);
        let document = document(&spec);
        assert_eq!(
            names(&document),
            [
                "onboarding",
                "vendors",
                "charges",
                "runs",
                // The webhooks section's operations (the event catalogue) always use it.
                "webhooks",
                "refunds",
                "admin",
                "admin-webhooks",
                "health"
            ]
        );
        assert!(
            document["tags"][0]["description"]
                .as_str()
                .unwrap()
                .contains("Backend or operator")
        );
    }

    #[test]
    fn the_page_and_the_guide_name_no_other_origin() {
        for text in [PAGE, GUIDE] {
            // The problem `type` URIs are identifiers, never loaded.
            let text = text.replace("https://vendorflow.dev/problems/", "");
            assert!(!text.contains("//"), "an external URL in {text}");
        }
    }
}

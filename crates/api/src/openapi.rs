//! The OpenAPI document (generated from the handlers' annotations) and a small, self-contained
//! reference page rendered from it: no JavaScript bundle, no CDN.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};

use crate::AppState;

/// The document's fixed parts; the paths are added by the router as handlers are registered.
pub(crate) fn base_document() -> OpenApi {
    let mut document = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("vendorflow API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Durable vendor onboarding, charges and documents at SUMIT for Israeli \
                     marketplaces. Every POST takes an Idempotency-Key. Errors are \
                     application/problem+json.",
                ))
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

/// `/openapi.json` and `/docs`.
pub(crate) fn router(spec: Arc<OpenApi>) -> Router<AppState> {
    let mut document = serde_json::to_value(&*spec).unwrap_or_else(|_| serde_json::json!({}));
    crate::webhook_catalogue::add_to(&mut document);
    let json = document.to_string();
    let page = reference_page(&spec);
    let json = Arc::new(json);
    Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let json = json.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        json.as_str().to_owned(),
                    )
                }
            }),
        )
        .route("/docs", get(move || async move { Html(page.clone()) }))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An HTML list of every operation with its parameters and answers.
fn reference_page(spec: &OpenApi) -> String {
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>vendorflow API reference</title>\
         <style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}\
         code{background:#f3f3f3;padding:0 .3em}h2{margin-top:2rem;border-bottom:1px solid #ddd}\
         .m{font-weight:bold;text-transform:uppercase;margin-right:.5em}</style></head><body>\
         <h1>vendorflow API reference</h1><p>The machine-readable document is at <a href=\"/openapi.json\">/openapi.json</a>. \
         Authenticate with <code>Authorization: Bearer &lt;token&gt;</code>.</p>",
    );
    for (path, item) in &spec.paths.paths {
        let operations = [
            ("get", &item.get),
            ("post", &item.post),
            ("put", &item.put),
            ("delete", &item.delete),
            ("patch", &item.patch),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let _ = write!(
                html,
                "<h2><span class=\"m\">{method}</span><code>{}</code></h2>",
                escape(path)
            );
            if let Some(description) = operation
                .description
                .as_ref()
                .or(operation.summary.as_ref())
            {
                let _ = write!(html, "<p>{}</p>", escape(description));
            }
            if let Some(parameters) = &operation.parameters {
                html.push_str("<ul>");
                for parameter in parameters {
                    let utoipa::openapi::RefOr::T(parameter) = parameter else {
                        continue;
                    };
                    let _ = write!(
                        html,
                        "<li><code>{}</code> {}</li>",
                        escape(&parameter.name),
                        escape(parameter.description.as_deref().unwrap_or(""))
                    );
                }
                html.push_str("</ul>");
            }
            html.push_str("<ul>");
            for (status, response) in &operation.responses.responses {
                let description = match response {
                    utoipa::openapi::RefOr::T(response) => response.description.clone(),
                    utoipa::openapi::RefOr::Ref(reference) => reference.ref_location.clone(),
                };
                let _ = write!(
                    html,
                    "<li>{} — {}</li>",
                    escape(status),
                    escape(&description)
                );
            }
            html.push_str("</ul>");
        }
    }
    html.push_str("</body></html>");
    html
}

//! `/docs`, the API reference, over HTTP and in a real headless Chromium (`support::browser`): the
//! page and every file it loads are served by the application itself, the reference draws the
//! marketplace's operations (a charge with its request fields) before the admin ones, lists the
//! webhook events the document declares, and loads nothing from another origin.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::Api;
use support::browser::Browser;

const ONBOARDING_TEST_WORKFLOW: &str = r#"
name = "vendor_onboarding"
version = 1

[[steps]]
name = "await_terminal_approval"
wait = "terminal_approved"
"#;

async fn start(pool: PgPool) -> Api {
    let definitions = support::waiting_definitions(
        &[("vendor_onboarding.toml", ONBOARDING_TEST_WORKFLOW)],
        "terminal_approved",
    );
    Api::start(pool, definitions, support::keyring()).await
}

/// The values of every `attribute="…"` in `html`.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let needle = format!("{attribute}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

/// The names of the document's top-level tags, in order.
fn tag_names(document: &Value) -> Vec<String> {
    document["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| tag["name"].as_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_reference_page_and_all_its_files_are_served_by_the_application(pool: PgPool) {
    let api = start(pool).await;
    let page = reqwest::get(format!("{}/docs", api.base)).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    let html = page.text().await.unwrap();
    assert!(html.contains("<title>vendorflow API reference</title>"));
    assert!(html.contains("id=\"swagger-ui\""));

    // Every file the page names is on this server, and is served.
    let files: Vec<&str> = attribute_values(&html, "src")
        .into_iter()
        .chain(attribute_values(&html, "href"))
        .collect();
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        assert!(
            file.starts_with('/') && !file.starts_with("//"),
            "the page names another origin: {file}"
        );
        let answer = reqwest::get(format!("{}{file}", api.base)).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{file}");
        let expected_type = match file.rsplit('.').next().unwrap() {
            "js" => "javascript",
            "css" => "text/css",
            "png" => "image/png",
            _ => "application/json",
        };
        let content_type = answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.contains(expected_type),
            "{file}: {content_type}"
        );
        assert!(!answer.bytes().await.unwrap().is_empty(), "{file} is empty");
    }

    // Swagger UI reads our document, with the online validator off and no URL from the query.
    let initializer = reqwest::get(format!("{}/docs/swagger-initializer.js", api.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        initializer.contains(r#""url": "/openapi.json""#),
        "{initializer}"
    );
    assert!(
        initializer.contains(r#""validatorUrl": "none""#),
        "{initializer}"
    );
    assert!(!initializer.contains("http"), "{initializer}");

    // `/docs/` leads to the page; an unknown file is a 404 problem.
    let slash = reqwest::get(format!("{}/docs/", api.base)).await.unwrap();
    assert_eq!(slash.status(), StatusCode::OK);
    assert_eq!(slash.url().path(), "/docs");
    for file in ["no-such-file.js", "%FF%FE.js", "%00"] {
        let missing = reqwest::get(format!("{}/docs/{file}", api.base))
            .await
            .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{file}");
        assert_eq!(
            missing.headers()["content-type"],
            "application/problem+json"
        );
    }

    // The document lists its tags marketplace first, admin after, each described; it is the one
    // `vendorflow openapi` prints for client generators.
    let document = api.openapi().await;
    assert_eq!(document, api::openapi_document());
    let tags = tag_names(&document);
    let position = |name: &str| {
        tags.iter()
            .position(|tag| tag == name)
            .unwrap_or_else(|| panic!("no tag {name} in {tags:?}"))
    };
    for marketplace in ["onboarding", "vendors", "charges", "documents", "runs"] {
        assert!(position(marketplace) < position("admin"), "{tags:?}");
    }
    assert_eq!(tags[0], "onboarding", "{tags:?}");
    for tag in document["tags"].as_array().unwrap() {
        let name = tag["name"].as_str().unwrap();
        if [
            "onboarding",
            "vendors",
            "charges",
            "documents",
            "runs",
            "admin",
        ]
        .contains(&name)
        {
            assert!(tag["description"].is_string(), "{tag}");
        }
    }
    // Every tag an operation uses is declared, so the reference shows every operation.
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for tag in operation["tags"].as_array().into_iter().flatten() {
                assert!(
                    tags.iter().any(|t| t == tag.as_str().unwrap()),
                    "{method} {path}: tag {tag} is not declared"
                );
            }
        }
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_reference_draws_marketplace_operations_first_and_loads_nothing_from_elsewhere(
    pool: PgPool,
) {
    let api = start(pool).await;
    let document = api.openapi().await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/docs", api.base)).await;

    // Swagger UI has fetched /openapi.json and drawn the operations.
    let charge = "#operations-charges-create_charge";
    browser.find(charge).await;
    browser.screenshot("docs-top.png").await;
    let sections = browser
        .script(
            "return Array.from(document.querySelectorAll('.opblock-tag-section .opblock-tag'))\
             .map(t => t.dataset.tag);",
            json!([]),
        )
        .await;
    let sections: Vec<String> = serde_json::from_value(sections).unwrap();
    assert_eq!(sections, tag_names(&document), "the reference's sections");
    let first_admin = browser
        .script(
            "const ops = Array.from(document.querySelectorAll('.opblock'));\
             return [ops.findIndex(o => o.id === arguments[0]),\
                     ops.findIndex(o => o.id.startsWith('operations-admin-'))];",
            json!([charge.trim_start_matches('#')]),
        )
        .await;
    let (charge_at, admin_at) = (
        first_admin[0].as_i64().unwrap(),
        first_admin[1].as_i64().unwrap(),
    );
    assert!(
        charge_at >= 0 && admin_at > charge_at,
        "{charge_at} {admin_at}"
    );

    // Opened, the charge shows its request body's fields, required ones marked, and its answers.
    browser
        .click(&format!("{charge} .opblock-summary-control"))
        .await;
    let body = format!("{charge} .opblock-body");
    let text = browser.wait_for_text(&body, "single_use_token").await;
    for field in [
        "order_id",
        "amount_agorot",
        "single_use_token",
        "customer",
        "installments",
    ] {
        assert!(text.contains(field), "{field} missing from {text}");
    }
    for status in ["202", "401", "403", "409", "422"] {
        assert!(text.contains(status), "status {status} missing from {text}");
    }
    let required = browser
        .script(
            "return Array.from(document.querySelectorAll(arguments[0] + \
             ' .json-schema-2020-12-property--required > article > .json-schema-2020-12-head \
             .json-schema-2020-12__title')).map(e => e.innerText);",
            json!([body]),
        )
        .await;
    let required: Vec<String> = serde_json::from_value(required).unwrap();
    for field in ["order_id", "amount_agorot", "single_use_token", "customer"] {
        assert!(
            required.iter().any(|r| r == field),
            "required: {required:?}"
        );
    }
    assert!(
        !required.iter().any(|r| r == "installments"),
        "required: {required:?}"
    );

    // The integration guide: authentication, roles and the problem shape.
    let guide = browser.text(".information-container").await;
    for words in [
        "Authorization: Bearer",
        "operator",
        "viewer",
        "problem+json",
    ] {
        assert!(guide.contains(words), "{words} missing from the guide");
    }

    // The webhook events the document declares are drawn too.
    if let Some(webhooks) = document["webhooks"].as_object() {
        let drawn = browser.text(".webhooks").await;
        for event in webhooks.keys() {
            assert!(drawn.contains(event.as_str()), "webhook {event} not drawn");
        }
    }
    browser.screenshot("docs.png").await;

    // The browser refused nothing and reported no error (a policy violation would be one).
    let console = browser.console().await;
    let errors: Vec<&Value> = console
        .iter()
        .filter(|entry| entry["level"] == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // Everything the page loaded came from the application (or is inline: Swagger UI's icons).
    let loaded = browser
        .script(
            "return [location.href].concat(performance.getEntriesByType('resource').map(e => e.name));",
            json!([]),
        )
        .await;
    let loaded: Vec<String> = serde_json::from_value(loaded).unwrap();
    assert!(
        loaded.iter().any(|url| url.ends_with("/openapi.json")),
        "{loaded:?}"
    );
    for url in &loaded {
        assert!(
            url.starts_with(&format!("{}/", api.base)) || url.starts_with("data:"),
            "loaded from elsewhere: {url}"
        );
    }
    browser.quit().await;
}

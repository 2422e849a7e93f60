//! `GET /metrics` over real HTTP: served (without a token) only when the binary hands over a
//! render function, as the Prometheus text format, on the API router or on a router of its own.

mod support;

use std::sync::Arc;

use reqwest::StatusCode;
use sqlx::PgPool;

const WAITING_WORKFLOW: &str = r#"
name = "vendor_onboarding"
version = 1
[[steps]]
name = "await_terminal_approval"
wait = "terminal_approved"
"#;

fn state(pool: PgPool, metrics: Option<api::MetricsRender>) -> api::AppState {
    api::AppState {
        pool,
        definitions: support::waiting_definitions(
            &[("vendor_onboarding.toml", WAITING_WORKFLOW)],
            "terminal_approved",
        ),
        keyring: support::keyring(),
        metrics,
        max_amount_agorot: domain::orders::DEFAULT_MAX_AMOUNT_AGOROT,
    }
}

fn render() -> api::MetricsRender {
    Arc::new(|| "# TYPE probe_total counter\nprobe_total 7\n".to_owned())
}

#[sqlx::test(migrations = "../../migrations")]
async fn without_a_render_function_the_api_does_not_serve_metrics(pool: PgPool) {
    let base = support::serve(api::router(state(pool, None))).await;
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = "../../migrations")]
async fn with_a_render_function_the_api_serves_the_text_format_without_a_token(pool: PgPool) {
    let base = support::serve(api::router(state(pool, Some(render())))).await;
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    assert_eq!(
        response.text().await.unwrap(),
        "# TYPE probe_total counter\nprobe_total 7\n"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_metrics_router_serves_metrics_and_nothing_else(pool: PgPool) {
    let base = support::serve(api::metrics_router(state(pool, Some(render())))).await;
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics.text().await.unwrap().contains("probe_total 7"));
    for path in ["/healthz", "/v1/runs", "/admin", "/openapi.json"] {
        let other = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(other.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

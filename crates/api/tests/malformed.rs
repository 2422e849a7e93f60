//! The server never answers 500 to a malformed request: a seeded stream of odd JSON bodies (wrong
//! types, deep nesting, huge numbers, control characters, Hebrew, empty and null values, near-miss
//! versions of valid bodies) is sent to every POST route, with every token role, and each answer
//! must be a 2xx or a 4xx problem.

mod support;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use sqlx::PgPool;
use support::Api;

const WAIT_STEP: &str = r#"
[[steps]]
name = "await_terminal_approval"
wait = "terminal_approved"
"#;

/// An arbitrary JSON value of at most `depth` levels.
fn arbitrary(rng: &mut StdRng, depth: u32) -> Value {
    let strings = [
        "",
        " ",
        "null",
        "דנה קרמיקה בע\"מ",
        "\u{0000}\u{202e}",
        "0521234567",
        "515555555",
        "4580458045804580",
        "clearing",
        "documents_only",
        "company",
        "ILS",
        "tok_approve_1",
        "1e309",
        "-0",
        "x",
    ];
    match rng.random_range(0..if depth == 0 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random_range(-1.0e300..1.0e300)),
        4 => json!(strings[rng.random_range(0..strings.len())]),
        5 => json!(u64::MAX),
        6 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| arbitrary(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "vendor",
                "external_id",
                "legal_name",
                "corporate_number",
                "business_type",
                "email",
                "phone",
                "mode",
                "bank_account",
                "bank",
                "branch",
                "account",
                "order_id",
                "amount_agorot",
                "currency",
                "single_use_token",
                "customer",
                "name",
                "items",
                "quantity",
                "unit_price_agorot",
                "reference",
                "document_type",
                "payments",
                "reason",
                "step",
                "api_key",
                "company_id",
            ];
            let mut object = serde_json::Map::new();
            for _ in 0..rng.random_range(0..6) {
                let key = keys[rng.random_range(0..keys.len())];
                object.insert(key.to_owned(), arbitrary(rng, depth - 1));
            }
            Value::Object(object)
        }
    }
}

/// A valid-looking body with one field replaced by something arbitrary.
fn near_miss(rng: &mut StdRng) -> Value {
    let mut body = json!({
        "vendor": {"external_id": "s-1", "legal_name": "Dana", "corporate_number": "515555555",
                   "business_type": "company", "email": "d@example.co.il", "phone": "052-123-4567",
                   "mode": "clearing", "bank_account": {"bank": 12, "branch": 571, "account": "041116"}},
        "order_id": "o-1", "amount_agorot": 100, "single_use_token": "tok_approve_1",
        "customer": {"name": "Noa"}, "reference": "r-1", "document_type": "receipt",
        "payments": [{"method": "cash", "amount_agorot": 100}], "reason": "because"
    });
    let fields = [
        "vendor",
        "order_id",
        "amount_agorot",
        "customer",
        "payments",
        "reason",
    ];
    let field = fields[rng.random_range(0..fields.len())];
    body[field] = arbitrary(rng, 3);
    body
}

#[sqlx::test(migrations = "../../migrations")]
async fn odd_bodies_on_every_post_route_never_get_a_server_error(pool: PgPool) {
    let onboarding = format!("name = \"vendor_onboarding\"\nversion = 1\n{WAIT_STEP}");
    let charge = format!("name = \"vendor_charge\"\nversion = 1\n{WAIT_STEP}");
    let document = format!("name = \"vendor_document\"\nversion = 1\n{WAIT_STEP}");
    let definitions = support::waiting_definitions(
        &[
            ("vendor_onboarding.toml", &onboarding),
            ("vendor_charge.toml", &charge),
            ("vendor_document.toml", &document),
        ],
        "terminal_approved",
    );
    let api = Api::start(pool, definitions, support::keyring()).await;

    // A real vendor and run of marketplace A, so routes get past their lookups too.
    let (status, accepted) = api
        .post(
            "/v1/onboardings",
            &api.a.backend,
            None,
            &near_miss(&mut StdRng::seed_from_u64(0)),
        )
        .await;
    let (vendor, run) = if status.is_success() {
        (
            accepted["vendor_id"].as_str().unwrap().to_owned(),
            accepted["run_id"].as_str().unwrap().to_owned(),
        )
    } else {
        (
            "00000000-0000-0000-0000-000000000000".to_owned(),
            "00000000-0000-0000-0000-000000000000".to_owned(),
        )
    };
    let routes = [
        "/v1/onboardings".to_owned(),
        format!("/v1/vendors/{vendor}/charges"),
        format!("/v1/vendors/{vendor}/documents"),
        format!("/v1/runs/{run}/signals/terminal_approved"),
        format!("/v1/admin/runs/{run}/retry"),
        format!("/v1/admin/runs/{run}/resume-from"),
        format!("/v1/admin/runs/{run}/pause"),
        format!("/v1/admin/runs/{run}/cancel"),
        format!("/v1/admin/vendors/{vendor}/api-keys"),
        "/v1/admin/runs/bulk/dry-run".to_owned(),
        "/v1/admin/runs/bulk".to_owned(),
    ];
    let tokens = [
        &api.a.backend,
        &api.a.operator,
        &api.a.viewer,
        &api.b.operator,
    ];

    let mut rng = StdRng::seed_from_u64(20261123);
    let mut sent = 0;
    for round in 0..12 {
        for route in &routes {
            let body = if round % 2 == 0 {
                arbitrary(&mut rng, 4)
            } else {
                near_miss(&mut rng)
            };
            let token = tokens[rng.random_range(0..tokens.len())];
            let key = (round % 3 == 0).then(|| format!("k-{round}"));
            let response = api.post_full(route, token, key.as_deref(), &body).await;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert!(
                !status.is_server_error(),
                "{route} answered {status} to {body}: {text}"
            );
            if status.is_client_error() {
                assert!(
                    text.contains("\"status\""),
                    "{route} {status}: not a problem document: {text}"
                );
            }
            sent += 1;
        }
    }
    assert_eq!(sent, 12 * routes.len());
}

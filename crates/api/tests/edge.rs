//! The refusals at the edge, over real HTTP against a real PostgreSQL database: control
//! characters in every string and query parameter of every operation (enumerated from the served
//! OpenAPI document, so a route added later is covered without touching this file), unknown
//! members of every request body (the document and the parsers cannot drift), the amount ceiling
//! and overflowing sums, requests that could never succeed (a charge for a documents-only vendor,
//! a second vendor with the same corporate number), bank branch 000, and problems in Hebrew.
//!
//! The workflows are test definitions that only wait for a signal: these tests are about the
//! HTTP edge.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::Api;
use uuid::Uuid;

const SIGNAL: &str = "terminal_approved";

fn waiting(name: &str) -> String {
    format!("name = \"{name}\"\nversion = 1\n[[steps]]\nname = \"wait\"\nwait = \"{SIGNAL}\"\n")
}

async fn start(pool: PgPool) -> Api {
    let sources = [
        ("vendor_onboarding.toml", waiting("vendor_onboarding")),
        ("vendor_charge.toml", waiting("vendor_charge")),
        ("vendor_document.toml", waiting("vendor_document")),
    ];
    let sources: Vec<(&str, &str)> = sources.iter().map(|(f, t)| (*f, t.as_str())).collect();
    let definitions = support::waiting_definitions(&sources, SIGNAL);
    Api::start(pool, definitions, support::keyring()).await
}

fn vendor(external_id: &str, corporate_number: &str) -> Value {
    json!({"vendor": {
        "external_id": external_id,
        "legal_name": "Dana Ceramics Ltd",
        "corporate_number": corporate_number,
        "business_type": "company",
        "email": "dana@example.co.il",
        "phone": "052-123-4567",
        "mode": "clearing",
        "bank_account": {"bank": 12, "branch": 571, "account": "041116"}
    }})
}

fn charge(order_id: &str) -> Value {
    json!({
        "order_id": order_id,
        "amount_agorot": 5782,
        "single_use_token": "og-token-from-payments-js",
        "customer": {"name": "Noa Levi"},
        "items": [{"name": "Vase", "quantity": 2, "unit_price_agorot": 2891}]
    })
}

/// The (field, code) pairs of a 422 problem.
fn fields(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {problem}"))
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(field: &str, code: &str) -> (String, String) {
    (field.to_owned(), code.to_owned())
}

/// What every table that a refused request could have written holds, to show it wrote nothing.
async fn written(api: &Api) -> [i64; 4] {
    [
        api.count("vendors").await,
        api.count("runs").await,
        api.count("idempotency_keys").await,
        api.count("signals").await,
    ]
}

// ----- Requests that could never succeed. -----

#[sqlx::test(migrations = "../../migrations")]
async fn a_charge_for_a_documents_only_vendor_is_refused_at_the_request(pool: PgPool) {
    let api = start(pool).await;
    let mut body = vendor("docs-only", "515555555");
    body["vendor"]["mode"] = json!("documents_only");
    body["vendor"]
        .as_object_mut()
        .unwrap()
        .remove("bank_account");
    let (status, accepted) = api
        .post("/v1/onboardings", &api.a.backend, None, &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let vendor_id = accepted["vendor_id"].as_str().unwrap().to_owned();

    let before = written(&api).await;
    let (status, problem) = api
        .post(
            &format!("/v1/vendors/{vendor_id}/charges"),
            &api.a.backend,
            Some("charge-1"),
            &charge("order-1"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        fields(&problem),
        vec![pair("vendor_id", "vendor_not_clearing")]
    );
    assert_eq!(written(&api).await, before, "nothing is stored");

    // A document for the same vendor is what it is for.
    let document = json!({"reference": "inv-1", "document_type": "invoice",
        "customer": {"name": "Noa"},
        "items": [{"name": "Vase", "quantity": 1, "unit_price_agorot": 100}]});
    let (status, answer) = api
        .post(
            &format!("/v1/vendors/{vendor_id}/documents"),
            &api.a.backend,
            None,
            &document,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_second_vendor_with_a_corporate_number_or_external_id_is_a_409_naming_the_first(
    pool: PgPool,
) {
    let api = start(pool).await;
    let (status, first) = api
        .post(
            "/v1/onboardings",
            &api.a.backend,
            None,
            &vendor("seller-1", "515555555"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (vendor_id, run_id) = (&first["vendor_id"], &first["run_id"]);
    let links = json!({
        "vendor": format!("/v1/vendors/{}", vendor_id.as_str().unwrap()),
        "run": format!("/v1/runs/{}", run_id.as_str().unwrap()),
    });

    let before = written(&api).await;
    // Another external id with the same corporate number.
    let (status, problem) = api
        .post(
            "/v1/onboardings",
            &api.a.backend,
            Some("again-1"),
            &vendor("seller-2", "515555555"),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(&problem["vendor_id"], vendor_id, "{problem}");
    assert_eq!(problem["links"], links, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("corporate number")
    );
    // The same external id (with another corporate number).
    let (status, problem) = api
        .post(
            "/v1/onboardings",
            &api.a.backend,
            Some("again-2"),
            &vendor("seller-1", "123456782"),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(&problem["vendor_id"], vendor_id, "{problem}");
    assert_eq!(problem["links"], links, "{problem}");
    assert_eq!(written(&api).await, before, "nothing is stored");

    // Another marketplace may have a vendor with the same number, and another number is fine.
    let (status, answer) = api
        .post(
            "/v1/onboardings",
            &api.b.backend,
            None,
            &vendor("seller-2", "515555555"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, answer) = api
        .post(
            "/v1/onboardings",
            &api.a.backend,
            None,
            &vendor("seller-2", "123456782"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn concurrent_onboardings_of_one_corporate_number_create_one_vendor(pool: PgPool) {
    let api = start(pool).await;
    let requests = (0..6).map(|i| {
        let body = vendor(&format!("seller-{i}"), "515555555");
        let api = &api;
        async move {
            api.post("/v1/onboardings", &api.a.backend, None, &body)
                .await
                .0
        }
    });
    let statuses = futures_join_all(requests).await;
    let accepted = statuses
        .iter()
        .filter(|s| **s == StatusCode::ACCEPTED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((accepted, conflicts), (1, 5), "{statuses:?}");
    assert_eq!(api.count("vendors").await, 1);
}

/// Runs the futures concurrently on this task (they borrow the test's `Api`, so they are not
/// spawned) and answers their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, future) in pinned.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => outputs[i] = Some(output),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

// ----- Money and banks. -----

#[sqlx::test(migrations = "../../migrations")]
async fn amounts_above_the_ceiling_and_overflowing_items_are_refused_naming_the_field(
    pool: PgPool,
) {
    let api = start(pool).await;
    let vendor_id = support::insert_vendor(
        &api.pool,
        api.a.id,
        "seller-1",
        "Dana",
        "515555555".to_owned(),
        "dana@example.co.il".to_owned(),
    )
    .await;
    let path = format!("/v1/vendors/{vendor_id}/charges");
    let before = written(&api).await;

    // Two items of 2^62 agorot wrap to a negative total; they must never pass for ₪57.82.
    let mut body = charge("order-1");
    body["items"] = json!([
        {"name": "a", "quantity": 1, "unit_price_agorot": 4_611_686_018_427_387_904i64},
        {"name": "b", "quantity": 1, "unit_price_agorot": 4_611_686_018_427_387_904i64}
    ]);
    let (status, problem) = api.post(&path, &api.a.backend, None, &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        fields(&problem),
        vec![
            pair("items[0].unit_price_agorot", "amount_too_large"),
            pair("items[1].unit_price_agorot", "amount_too_large"),
        ]
    );

    // ₪10,000,000.01 is above the default ceiling.
    let mut body = charge("order-2");
    body["amount_agorot"] = json!(1_000_000_001i64);
    body.as_object_mut().unwrap().remove("items");
    let (status, problem) = api.post(&path, &api.a.backend, None, &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        fields(&problem),
        vec![pair("amount_agorot", "amount_too_large")]
    );
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("10000000.00"),
        "{problem}"
    );
    assert_eq!(written(&api).await, before, "nothing is stored");

    body["amount_agorot"] = json!(1_000_000_000i64);
    let (status, answer) = api.post(&path, &api.a.backend, None, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_bank_account_at_branch_000_is_judged_by_the_banks_rule(pool: PgPool) {
    let api = start(pool).await;
    let mut body = vendor("seller-1", "515555555");
    // Hapoalim's rule over branch 000: Σ d0..d5·1..6 = 2, %11 = 2, which passes.
    body["vendor"]["bank_account"] = json!({"bank": 12, "branch": 0, "account": "000002"});
    let (status, answer) = api
        .post("/v1/onboardings", &api.a.backend, None, &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    // 000011 fails the same rule at the same branch: the rule decided, not the branch range.
    let mut body = vendor("seller-2", "123456782");
    body["vendor"]["bank_account"] = json!({"bank": 12, "branch": "000", "account": "000011"});
    let (status, problem) = api
        .post("/v1/onboardings", &api.a.backend, None, &body)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        fields(&problem),
        vec![pair("vendor.bank_account.account", "bank_check_failed")]
    );
}

// ----- Hebrew. -----

fn is_hebrew(text: &str) -> bool {
    text.chars().any(|c| ('\u{05D0}'..='\u{05EA}').contains(&c))
}

#[sqlx::test(migrations = "../../migrations")]
async fn every_problem_is_in_hebrew_when_asked_and_the_business_type_lists_codes(pool: PgPool) {
    let api = start(pool).await;
    let (status, first) = api
        .post(
            "/v1/onboardings",
            &api.a.backend,
            Some("k-1"),
            &vendor("seller-1", "515555555"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let url = |path: &str| format!("{}{path}", api.base);
    let client = &api.client;
    let he = |request: reqwest::RequestBuilder| request.header("Accept-Language", "he-IL,en;q=0.5");
    let mut bad_type = vendor("seller-9", "123456782");
    bad_type["vendor"]["business_type"] = json!("llc");
    let cases: Vec<(StatusCode, reqwest::RequestBuilder)> = vec![
        (
            StatusCode::UNAUTHORIZED,
            client.post(url("/v1/onboardings")).json(&bad_type),
        ),
        (
            StatusCode::FORBIDDEN,
            client
                .post(url("/v1/onboardings"))
                .bearer_auth(&api.a.viewer)
                .json(&bad_type),
        ),
        (
            StatusCode::NOT_FOUND,
            client
                .get(url(&format!("/v1/vendors/{}", Uuid::now_v7())))
                .bearer_auth(&api.a.backend),
        ),
        (StatusCode::NOT_FOUND, client.get(url("/no/such/route"))),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            client
                .delete(url("/v1/onboardings"))
                .bearer_auth(&api.a.backend),
        ),
        (
            StatusCode::CONFLICT,
            client
                .post(url("/v1/onboardings"))
                .bearer_auth(&api.a.backend)
                .header("Idempotency-Key", "k-1")
                .json(&vendor("seller-5", "000000018")),
        ),
        (
            StatusCode::CONFLICT,
            client
                .post(url("/v1/onboardings"))
                .bearer_auth(&api.a.backend)
                .json(&vendor("seller-1", "515555555")),
        ),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            client
                .post(url("/v1/onboardings"))
                .bearer_auth(&api.a.backend)
                .header("Content-Type", "application/json")
                .body(format!("{{\"x\": \"{}\"}}", "a".repeat(70_000))),
        ),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            client
                .post(url("/v1/onboardings"))
                .bearer_auth(&api.a.backend)
                .header("Content-Type", "text/plain")
                .body("{}"),
        ),
        (
            StatusCode::BAD_REQUEST,
            client
                .post(url("/v1/onboardings"))
                .bearer_auth(&api.a.backend)
                .header("Content-Type", "application/json")
                .body("{not json"),
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            client
                .get(url("/v1/runs?status=nope"))
                .bearer_auth(&api.a.backend),
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            client
                .post(url("/v1/onboardings"))
                .bearer_auth(&api.a.backend)
                .json(&bad_type),
        ),
    ];
    for (expected, request) in cases {
        let response = he(request).send().await.unwrap();
        assert_eq!(response.status(), expected);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        assert_eq!(response.headers()["content-language"], "he");
        let problem: Value = response.json().await.unwrap();
        for member in ["title", "detail"] {
            let text = problem[member].as_str().unwrap_or("");
            assert!(
                is_hebrew(text),
                "{expected}: {member} is not Hebrew: {problem}"
            );
        }
        if expected == StatusCode::UNPROCESSABLE_ENTITY {
            let message = problem["errors"][0]["message"].as_str().unwrap();
            assert!(is_hebrew(message), "{problem}");
        }
        if problem["errors"][0]["field"] == "vendor.business_type" {
            let message = problem["errors"][0]["message"].as_str().unwrap();
            for code in [
                "exempt_dealer",
                "licensed_dealer",
                "company",
                "nonprofit",
                "partnership",
            ] {
                assert!(message.contains(code), "{message}");
            }
        }
    }
    // Without the header, the same problem is English.
    let response = client
        .get(url(&format!("/v1/vendors/{}", Uuid::now_v7())))
        .bearer_auth(&api.a.backend)
        .send()
        .await
        .unwrap();
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["title"], "Not found");
    assert!(!is_hebrew(problem["detail"].as_str().unwrap()));
}

// ----- Every operation of the document. -----

/// The fixtures the sweep needs: a vendor and a run of marketplace A, so that scoped routes get
/// past their lookups.
struct Fixtures {
    vendor_id: String,
    run_id: String,
}

async fn fixtures(api: &Api) -> Fixtures {
    let (status, accepted) = api
        .post(
            "/v1/onboardings",
            &api.a.backend,
            None,
            &vendor("fixture", "515555555"),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    Fixtures {
        vendor_id: accepted["vendor_id"].as_str().unwrap().to_owned(),
        run_id: accepted["run_id"].as_str().unwrap().to_owned(),
    }
}

/// One operation of the document.
struct Operation {
    method: reqwest::Method,
    path: String,
    /// (name, location) of each parameter.
    parameters: Vec<(String, String)>,
    /// The JSON request body's schema, resolved.
    body: Option<Value>,
}

fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(document, document.pointer(pointer).unwrap_or(&Value::Null))
        }
        None => schema,
    }
}

/// Every operation of the document, with its parameters and JSON body schema.
fn operations(document: &Value) -> Vec<Operation> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<reqwest::Method>() else {
                continue;
            };
            if !matches!(
                method,
                reqwest::Method::GET
                    | reqwest::Method::POST
                    | reqwest::Method::PUT
                    | reqwest::Method::PATCH
                    | reqwest::Method::DELETE
            ) {
                continue;
            }
            let parameters = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| resolve(document, p))
                .map(|p| {
                    (
                        p["name"].as_str().unwrap().to_owned(),
                        p["in"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            let body = operation
                .pointer("/requestBody/content/application~1json/schema")
                .map(|schema| resolve(document, schema).clone());
            found.push(Operation {
                method,
                path: path.clone(),
                parameters,
                body,
            });
        }
    }
    assert!(found.len() > 10, "too few operations: {}", found.len());
    found
}

/// The schema with `null` alternatives dropped (`oneOf`/`anyOf` of a type and null, or a type
/// array with `null`).
fn non_null<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    let schema = resolve(document, schema);
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(choices) = schema.get(key).and_then(Value::as_array)
            && let Some(choice) = choices
                .iter()
                .map(|c| resolve(document, c))
                .find(|c| c.get("type") != Some(&json!("null")))
        {
            return non_null(document, choice);
        }
    }
    schema
}

fn type_of(schema: &Value) -> Option<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null"),
        _ => None,
    }
}

/// A value of `schema` with every documented property: its example when it has one, else a
/// plain value of its type. A free-form object gets one member (`note`), so that the sweep puts
/// a control character inside free-form JSON too.
fn sample(document: &Value, schema: &Value) -> Value {
    let schema = non_null(document, schema);
    if let Some(example) = schema.get("example") {
        return example.clone();
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array) {
        return choices[0].clone();
    }
    match type_of(schema) {
        Some("string") => match schema.get("format").and_then(Value::as_str) {
            Some("uuid") => json!(Uuid::now_v7()),
            Some("date-time") => json!("2026-01-01T00:00:00Z"),
            Some("date") => json!("2026-01-01"),
            _ => json!("text"),
        },
        Some("integer") => json!(1),
        Some("number") => json!(1),
        Some("boolean") => json!(false),
        Some("array") => json!([sample(document, &schema["items"])]),
        _ => match schema.get("properties").and_then(Value::as_object) {
            Some(properties) if !properties.is_empty() => Value::Object(
                properties
                    .iter()
                    .map(|(name, property)| (name.clone(), sample(document, property)))
                    .collect(),
            ),
            _ => json!({"note": "text"}),
        },
    }
}

/// The JSON path (`items[0].name`) of every string leaf of `value`.
fn string_leaves(value: &Value, path: &str, found: &mut Vec<String>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(_) => found.push(path.to_owned()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                string_leaves(item, &format!("{path}[{i}]"), found);
            }
        }
        Value::Object(members) => {
            for (key, member) in members {
                string_leaves(member, &join(key), found);
            }
        }
        _ => {}
    }
}

/// The JSON path of every object of `value` whose schema documents its properties (free-form
/// objects excluded), with `""` for the root.
fn documented_objects(
    document: &Value,
    schema: &Value,
    value: &Value,
    path: &str,
    found: &mut Vec<String>,
) {
    let schema = non_null(document, schema);
    match value {
        Value::Object(members) => {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                return;
            };
            found.push(path.to_owned());
            for (key, member) in members {
                if let Some(property) = properties.get(key) {
                    let child = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    documented_objects(document, property, member, &child, found);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                documented_objects(
                    document,
                    &schema["items"],
                    item,
                    &format!("{path}[{i}]"),
                    found,
                );
            }
        }
        _ => {}
    }
}

/// The member at a JSON path of the kind `string_leaves` writes.
fn at_path<'a>(value: &'a mut Value, path: &str) -> &'a mut Value {
    let mut current = value;
    if path.is_empty() {
        return current;
    }
    for segment in path.split('.') {
        let (key, indexes) = match segment.find('[') {
            Some(at) => (&segment[..at], &segment[at..]),
            None => (segment, ""),
        };
        if !key.is_empty() {
            current = current.get_mut(key).unwrap();
        }
        for index in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            current = current.get_mut(index.parse::<usize>().unwrap()).unwrap();
        }
    }
    current
}

impl Fixtures {
    /// The path with its parameters filled: real ids where the route is scoped by them, plain
    /// text elsewhere; `poisoned` (a parameter's name) gets `a%00b` instead.
    fn fill(&self, path: &str, poisoned: Option<&str>) -> String {
        let mut filled = String::new();
        let mut rest = path;
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').unwrap() + open;
            filled.push_str(&rest[..open]);
            let name = &rest[open + 1..close];
            let before = &filled;
            let value = if Some(name) == poisoned {
                "a%00b".to_owned()
            } else if name == "id" && before.ends_with("/vendors/") {
                self.vendor_id.clone()
            } else if name == "id" && before.ends_with("/runs/") {
                self.run_id.clone()
            } else if name == "id" {
                Uuid::now_v7().to_string()
            } else {
                "text".to_owned()
            };
            filled.push_str(&value);
            rest = &rest[close + 1..];
        }
        filled.push_str(rest);
        filled
    }
}

/// The token an operation is called with: operator for the admin API, backend otherwise.
fn token_for<'a>(api: &'a Api, path: &str) -> &'a str {
    if path.starts_with("/v1/admin") {
        &api.a.operator
    } else {
        &api.a.backend
    }
}

async fn send(
    api: &Api,
    operation: &Operation,
    path_and_query: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = api
        .client
        .request(
            operation.method.clone(),
            format!("{}{path_and_query}", api.base),
        )
        .bearer_auth(token_for(api, &operation.path));
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn names(problem: &Value, field: &str, code: &str) -> bool {
    problem["errors"].as_array().is_some_and(|errors| {
        errors
            .iter()
            .any(|e| e["field"] == json!(field) && e["code"] == json!(code))
    })
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_nul_anywhere_in_any_operation_is_a_4xx_naming_it_never_a_5xx(pool: PgPool) {
    let api = start(pool).await;
    let fixtures = fixtures(&api).await;
    let document = api.openapi().await;
    let mut checked = 0;
    for operation in operations(&document) {
        let what = format!("{} {}", operation.method, operation.path);
        // Every query parameter: 422 naming it.
        for (name, location) in &operation.parameters {
            match location.as_str() {
                "query" => {
                    let path = format!("{}?{name}=a%00b", fixtures.fill(&operation.path, None));
                    let body = operation
                        .body
                        .as_ref()
                        .map(|schema| sample(&document, schema));
                    let (status, problem) = send(&api, &operation, &path, body.as_ref()).await;
                    assert_eq!(
                        status,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "{what} ?{name}: {problem}"
                    );
                    assert!(
                        names(&problem, name, "invalid_characters"),
                        "{what} ?{name}: {problem}"
                    );
                    checked += 1;
                }
                // A path segment with a NUL names nothing that exists: a 4xx, never a 5xx.
                "path" => {
                    let path = fixtures.fill(&operation.path, Some(name));
                    let body = operation
                        .body
                        .as_ref()
                        .map(|schema| sample(&document, schema));
                    let (status, problem) = send(&api, &operation, &path, body.as_ref()).await;
                    assert!(
                        status.is_client_error(),
                        "{what} /{{{name}}}: {status} {problem}"
                    );
                    checked += 1;
                }
                _ => {}
            }
        }
        // Every string of the body: 422 naming its JSON path.
        if let Some(schema) = &operation.body {
            let body = sample(&document, schema);
            let mut leaves = Vec::new();
            string_leaves(&body, "", &mut leaves);
            let path = fixtures.fill(&operation.path, None);
            for leaf in leaves {
                let mut poisoned = body.clone();
                *at_path(&mut poisoned, &leaf) = json!("a\u{0}b");
                let (status, problem) = send(&api, &operation, &path, Some(&poisoned)).await;
                assert_eq!(
                    status,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "{what} body {leaf}: {problem}"
                );
                assert!(
                    names(&problem, &leaf, "invalid_characters"),
                    "{what} body {leaf}: {problem}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "only {checked} inputs were tried");
    // No refused request stored anything it carried.
    let stored: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM vendorflow.runs r WHERE position('a\\u0000b' in r::text) > 0)
              + (SELECT count(*) FROM vendorflow.admin_audit a WHERE position('a\\u0000b' in a::text) > 0)",
    )
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert_eq!(stored, 0);
}

#[sqlx::test(migrations = "../../migrations")]
async fn every_documented_body_member_parses_and_no_undocumented_one_does(pool: PgPool) {
    let api = start(pool).await;
    let fixtures = fixtures(&api).await;
    let document = api.openapi().await;
    let mut checked = 0;
    for operation in operations(&document) {
        let Some(schema) = &operation.body else {
            continue;
        };
        let what = format!("{} {}", operation.method, operation.path);
        let path = fixtures.fill(&operation.path, None);
        let body = sample(&document, schema);

        // Every documented member at once: none is unknown (the request may fail otherwise).
        let (status, answer) = send(&api, &operation, &path, Some(&body)).await;
        assert!(!status.is_server_error(), "{what}: {status} {answer}");
        let unknown: Vec<&Value> = answer["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["code"] == "unknown_field")
            .collect();
        assert!(
            unknown.is_empty(),
            "{what}: documented members refused: {answer}"
        );

        // One undocumented member in each documented object: refused, named.
        let mut objects = Vec::new();
        documented_objects(&document, schema, &body, "", &mut objects);
        for object in objects {
            let mut extended = body.clone();
            let Value::Object(members) = at_path(&mut extended, &object) else {
                panic!("{what}: {object} is not an object");
            };
            members.insert("zz_undocumented".to_owned(), json!(1));
            let field = if object.is_empty() {
                "zz_undocumented".to_owned()
            } else {
                format!("{object}.zz_undocumented")
            };
            let (status, problem) = send(&api, &operation, &path, Some(&extended)).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{what} {field}: {problem}"
            );
            assert!(
                names(&problem, &field, "unknown_field"),
                "{what} {field}: {problem}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} objects were tried");
}

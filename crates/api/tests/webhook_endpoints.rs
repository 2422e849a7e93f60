//! Webhook endpoint management over HTTP (`/v1/admin/webhooks/endpoints`) against a real
//! PostgreSQL: roles, bad input refused with a 422 naming the field and nothing stored, the secret
//! shown only at creation and rotation (never in lists, shows or the audit log), marketplace
//! scoping, and an audit entry for every action, refused ones included.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use support::admin::Harness;
use uuid::Uuid;

const ENDPOINTS: &str = "/v1/admin/webhooks/endpoints";

async fn send(
    h: &Harness,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = h
        .client
        .request(method, format!("{}{path}", h.base))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn audit_rows(h: &Harness) -> Vec<(String, String, Option<Uuid>, String)> {
    sqlx::query_as(
        "SELECT action, result, target_id, coalesce(data::text, '') || ' ' || coalesce(detail, '')
         FROM vendorflow.admin_audit WHERE target_kind = 'endpoint' ORDER BY id",
    )
    .fetch_all(&h.pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn bad_input_and_wrong_roles_are_refused_and_store_nothing(pool: PgPool) {
    let h = Harness::start(pool).await;
    let good = json!({"url": "https://marketplace.example/hooks", "reason": "new receiver"});
    for token in [&h.a.viewer, &h.a.backend] {
        let (status, body) = send(&h, Method::POST, ENDPOINTS, token, Some(good.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, _) = send(&h, Method::POST, ENDPOINTS, "vf_nope", Some(good.clone())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(&h, Method::GET, ENDPOINTS, &h.a.backend, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let cases = [
        (
            json!({"url": "https://x.example/h", "event_types": ["vendor.ready", "vendor.redy"], "reason": "r"}),
            "event_types",
        ),
        (
            json!({"url": "https://x.example/h", "event_types": [], "reason": "r"}),
            "event_types",
        ),
        (
            json!({"url": "https://x.example/h", "event_types": "vendor.ready", "reason": "r"}),
            "event_types",
        ),
        (json!({"url": "ftp://x.example/h", "reason": "r"}), "url"),
        (json!({"reason": "r"}), "url"),
        (json!({"url": "https://x.example/h"}), "reason"),
        (
            json!({"url": "https://x.example/h", "reason": "r", "evnt_types": ["vendor.ready"]}),
            "evnt_types",
        ),
        (
            json!({"url": "https://x.example/h", "reason": "r\u{0}"}),
            "reason",
        ),
        (
            json!({"url": "https://x.example/h\u{0}", "reason": "r"}),
            "url",
        ),
        (
            json!({"url": "https://x.example/h", "event_types": ["vendor.ready\u{0}"], "reason": "r"}),
            "event_types[0]",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = send(
            &h,
            Method::POST,
            ENDPOINTS,
            &h.a.operator,
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
        assert_eq!(
            fields(&problem),
            vec![field.to_owned()],
            "{body}: {problem}"
        );
    }
    let (_, problem) = send(
        &h,
        Method::POST,
        ENDPOINTS,
        &h.a.operator,
        Some(json!({"url": "https://x.example/h", "event_types": ["vendor.redy"], "reason": "r"})),
    )
    .await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("vendor.redy"),
        "{problem}"
    );
    assert_eq!(h.count("webhook_endpoints").await, 0);
    assert_eq!(h.count("secrets").await, 0);
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_operator_manages_an_endpoint_from_creation_to_deletion_and_every_action_is_audited(
    pool: PgPool,
) {
    let h = Harness::start(pool).await;
    let (status, created) = send(
        &h,
        Method::POST,
        ENDPOINTS,
        &h.a.operator,
        Some(json!({
            "url": "https://marketplace.example/hooks/vendorflow",
            "event_types": ["vendor.ready", "charge.succeeded"],
            "reason": "the shop's new receiver"
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let first_secret = created["secret"].as_str().unwrap().to_owned();
    assert!(first_secret.starts_with("whsec_"));
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["endpoint"]["event_types"],
        json!(["vendor.ready", "charge.succeeded"])
    );
    assert_eq!(created["endpoint"]["enabled"], true);
    let one = format!("{ENDPOINTS}/{id}");

    // A viewer reads the list and the endpoint, never the secret.
    let (status, list) = send(&h, Method::GET, ENDPOINTS, &h.a.viewer, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    let (status, shown) = send(&h, Method::GET, &one, &h.a.viewer, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["url"], "https://marketplace.example/hooks/vendorflow");
    assert_eq!(shown["previous_secret_expires_at"], Value::Null);
    for body in [&list, &shown] {
        assert!(!body.to_string().contains(&first_secret));
        assert!(!body.to_string().contains("whsec_"));
    }
    // Another marketplace does not see it, nor act on it.
    let (status, _) = send(&h, Method::GET, &one, &h.b.operator, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &h,
        Method::POST,
        &format!("{one}/disable"),
        &h.b.operator,
        Some(json!({"reason": "not mine"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, list_b) = send(&h, Method::GET, ENDPOINTS, &h.b.viewer, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list_b, json!([]));

    // The filter changes; every type again with null.
    let (status, updated) = send(
        &h,
        Method::PATCH,
        &one,
        &h.a.operator,
        Some(json!({"event_types": ["charge.declined"], "reason": "only declines"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        updated["endpoint"]["event_types"],
        json!(["charge.declined"])
    );
    let (status, updated) = send(
        &h,
        Method::PATCH,
        &one,
        &h.a.operator,
        Some(json!({"event_types": null, "reason": "everything"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["endpoint"]["event_types"], Value::Null);

    // Disable, disable again (refused), enable.
    let (status, disabled) = send(
        &h,
        Method::POST,
        &format!("{one}/disable"),
        &h.a.operator,
        Some(json!({"reason": "receiver migration"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{disabled}");
    assert_eq!(disabled["endpoint"]["enabled"], false);
    assert_eq!(
        disabled["endpoint"]["disabled_reason"],
        "receiver migration"
    );
    let (status, again) = send(
        &h,
        Method::POST,
        &format!("{one}/disable"),
        &h.a.operator,
        Some(json!({"reason": "twice"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    let (status, enabled) = send(
        &h,
        Method::POST,
        &format!("{one}/enable"),
        &h.a.operator,
        Some(json!({"reason": "migration done"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    assert_eq!(enabled["endpoint"]["enabled"], true);
    assert_eq!(enabled["endpoint"]["disabled_reason"], Value::Null);

    // Rotate: a new secret, shown once, with an overlap; a too long overlap is refused.
    let (status, refused) = send(
        &h,
        Method::POST,
        &format!("{one}/rotate-secret"),
        &h.a.operator,
        Some(json!({"overlap_seconds": 604_801, "reason": "too long"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&refused), vec!["overlap_seconds".to_owned()]);
    let (status, rotated) = send(
        &h,
        Method::POST,
        &format!("{one}/rotate-secret"),
        &h.a.operator,
        Some(json!({"overlap_seconds": 3600, "reason": "yearly rotation"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let second_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert!(second_secret.starts_with("whsec_"));
    assert_ne!(second_secret, first_secret);
    assert!(rotated["endpoint"]["previous_secret_expires_at"].is_string());
    assert!(rotated["endpoint"]["secret_rotated_at"].is_string());
    let (_, shown) = send(&h, Method::GET, &one, &h.a.viewer, None).await;
    assert!(!shown.to_string().contains("whsec_"));
    assert_eq!(
        shown["previous_secret_expires_at"],
        rotated["endpoint"]["previous_secret_expires_at"]
    );
    // A viewer may not rotate.
    let (status, _) = send(
        &h,
        Method::POST,
        &format!("{one}/rotate-secret"),
        &h.a.viewer,
        Some(json!({"reason": "curious"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Delete needs a reason; then the endpoint is gone with its secrets.
    for query in ["", "?reason=%00"] {
        let (status, problem) = send(
            &h,
            Method::DELETE,
            &format!("{one}{query}"),
            &h.a.operator,
            None,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {problem}"
        );
        assert_eq!(fields(&problem), vec!["reason".to_owned()]);
    }
    let (status, deleted) = send(
        &h,
        Method::DELETE,
        &format!("{one}?reason=shop%20closed"),
        &h.a.operator,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["pending_deleted"], 0);
    let (status, _) = send(&h, Method::GET, &one, &h.a.viewer, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &h,
        Method::DELETE,
        &format!("{one}?reason=again"),
        &h.a.operator,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(h.count("secrets").await, 0);

    // Every action is in the audit log, refusals included, and no secret is.
    let id = Uuid::parse_str(&id).unwrap();
    let rows = audit_rows(&h).await;
    let seen: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r.2 == Some(id))
        .map(|r| (r.0.as_str(), r.1.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("create_endpoint", "ok"),
            ("disable_endpoint", "refused"),
            ("update_endpoint", "ok"),
            ("update_endpoint", "ok"),
            ("disable_endpoint", "ok"),
            ("disable_endpoint", "refused"),
            ("enable_endpoint", "ok"),
            ("rotate_endpoint_secret", "ok"),
            ("delete_endpoint", "ok"),
            ("delete_endpoint", "refused"),
        ]
    );
    for row in &rows {
        assert!(!row.3.contains("whsec_"), "{row:?}");
        assert!(!row.3.contains(&first_secret[6..]), "{row:?}");
        assert!(!row.3.contains(&second_secret[6..]), "{row:?}");
        assert!(!row.3.contains("marketplace.example"), "{row:?}");
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn every_management_operation_is_in_the_document_with_its_statuses(pool: PgPool) {
    let h = Harness::start(pool).await;
    let document = h.openapi().await;
    let paths = &document["paths"];
    let expect = [
        (ENDPOINTS.to_owned(), "get", vec!["200", "401", "403"]),
        (
            ENDPOINTS.to_owned(),
            "post",
            vec!["201", "400", "401", "403", "415", "422"],
        ),
        (
            format!("{ENDPOINTS}/{{id}}"),
            "get",
            vec!["200", "401", "403", "404"],
        ),
        (
            format!("{ENDPOINTS}/{{id}}"),
            "patch",
            vec!["200", "400", "401", "403", "404", "415", "422"],
        ),
        (
            format!("{ENDPOINTS}/{{id}}"),
            "delete",
            vec!["200", "400", "401", "403", "404", "422"],
        ),
        (
            format!("{ENDPOINTS}/{{id}}/disable"),
            "post",
            vec!["200", "400", "401", "403", "404", "409", "415", "422"],
        ),
        (
            format!("{ENDPOINTS}/{{id}}/enable"),
            "post",
            vec!["200", "400", "401", "403", "404", "409", "415", "422"],
        ),
        (
            format!("{ENDPOINTS}/{{id}}/rotate-secret"),
            "post",
            vec!["200", "400", "401", "403", "404", "415", "422"],
        ),
    ];
    // Event filters are enums of the catalogue's names, or null.
    let create = &document["components"]["schemas"]["CreateEndpointBody"];
    let filter = &create["properties"]["event_types"];
    assert_eq!(filter["type"], json!(["array", "null"]), "{create}");
    let names: Vec<&str> = filter["items"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let catalogue: Vec<&str> = document["webhooks"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let (mut names, mut catalogue) = (names, catalogue);
    names.sort_unstable();
    catalogue.sort_unstable();
    assert_eq!(names, catalogue);
    let required: Vec<&str> = create["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(required.contains(&"url") && !required.contains(&"event_types"));
    for (path, method, statuses) in expect {
        let responses = paths[&path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} is not documented"));
        for status in statuses {
            assert!(
                responses.contains_key(status),
                "{method} {path} does not document {status}"
            );
        }
    }
}

//! The webhook event catalogue in the OpenAPI document: its top-level `webhooks` section
//! (OpenAPI 3.1), one entry per event type of `domain::webhook_events::CATALOGUE`, each a `post`
//! operation whose request body is the delivered JSON (`{type, timestamp, data}`, with `data`'s
//! schema derived from the payload's Rust type) and whose parameters are the Standard Webhooks
//! headers.
//!
//! utoipa does not model `webhooks`, so this module adds them to the document as JSON. It owns
//! only the catalogue's rendering: the names and payload types live in `domain`, and it must not
//! describe an event the code does not write (the end-to-end test validates every written event
//! against this section).

use serde_json::{Map, Value, json};

/// Adds the `webhooks` section to the serialized OpenAPI `document` (its operations carry the
/// tag `webhooks`, which `openapi::document` describes and orders).
pub(crate) fn add_to(document: &mut Value) {
    let Some(root) = document.as_object_mut() else {
        return;
    };
    root.insert("webhooks".to_owned(), Value::Object(webhooks()));
}

/// The envelope every delivery carries, with `data` of the event's payload schema.
pub(crate) fn body_schema(name: &str, payload: Value) -> Value {
    json!({
        "type": "object",
        "required": ["type", "timestamp", "data"],
        "additionalProperties": false,
        "properties": {
            "type": {"type": "string", "enum": [name], "description": "The event type."},
            "timestamp": {
                "type": "string",
                "format": "date-time",
                "description": "When the event was written (the same on every retry)."
            },
            "data": payload,
        }
    })
}

fn header(name: &str, description: &str, example: &str) -> Value {
    json!({
        "name": name,
        "in": "header",
        "required": true,
        "description": description,
        "schema": {"type": "string"},
        "example": example,
    })
}

fn webhooks() -> Map<String, Value> {
    let headers = json!([
        header(
            "webhook-id",
            "The message id: the same on every retry and for every endpoint; deduplicate on it.",
            "0193a4f0-7c1e-7d2a-9b1e-5f0c2a7e4d11"
        ),
        header(
            "webhook-timestamp",
            "Unix time, in seconds, of this attempt.",
            "1735689600"
        ),
        header(
            "webhook-signature",
            "Space-separated `v1,<base64 HMAC-SHA256>` signatures of \
             `{webhook-id}.{webhook-timestamp}.{raw body}` under the endpoint's secret (the bytes \
             after `whsec_`, base64-decoded). Accept the message when any one verifies: during a \
             secret rotation's overlap there are two, the new secret's and the old one's.",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        ),
    ]);
    domain::webhook_events::CATALOGUE
        .iter()
        .map(|event| {
            let payload = serde_json::to_value((event.payload)()).unwrap_or_else(|_| json!({}));
            let operation = json!({
                "post": {
                    "tags": ["webhooks"],
                    "operationId": format!("webhook_{}", event.name.replace('.', "_")),
                    "summary": event.summary,
                    "description": format!(
                        "`{}`: {} The body's `data` is a `{}`.",
                        event.name, event.summary, event.payload_name
                    ),
                    "parameters": headers,
                    "requestBody": {
                        "required": true,
                        "content": {
                            "application/json": {"schema": body_schema(event.name, payload)}
                        }
                    },
                    "responses": {
                        "2XX": {
                            "description": "Received. Any other answer, or none within 15 \
                                seconds, is retried with backoff for about three days; a 3xx \
                                is not followed."
                        },
                        "410": {
                            "description": "Gone: the endpoint is disabled and its pending \
                                deliveries become dead letters."
                        }
                    }
                }
            });
            (event.name.to_owned(), operation)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogued_event_has_a_post_with_a_ref_free_body_schema() {
        let mut document = json!({"openapi": "3.1.0", "paths": {}});
        add_to(&mut document);
        let webhooks = document["webhooks"].as_object().unwrap();
        assert_eq!(webhooks.len(), domain::webhook_events::CATALOGUE.len());
        for (name, item) in webhooks {
            let schema = &item["post"]["requestBody"]["content"]["application/json"]["schema"];
            assert_eq!(schema["properties"]["type"]["enum"], json!([name]));
            assert!(
                schema["properties"]["data"]["properties"].is_object(),
                "{name}"
            );
            assert!(!schema.to_string().contains("$ref"), "{name}: {schema}");
        }
    }
}

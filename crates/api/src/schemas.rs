//! OpenAPI schemas of the domain's words (run statuses, attempt outcomes, history kinds, business
//! types, …) and of the run's structured members, built from the domain's own lists so that the
//! document cannot name a value the code does not know or miss one it does. Used through
//! `#[schema(schema_with = …)]` and `#[param(schema_with = …)]` on the API's types.
//!
//! It owns no rule: what each word means is in `domain`; this only says it in OpenAPI.

use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};

/// A string schema whose values are exactly `words`.
fn words<'a>(words: impl IntoIterator<Item = &'a str>, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(words.into_iter().map(str::to_owned)))
        .description(Some(description))
        .build()
}

/// The same, also allowing null (an optional member the API writes as null).
fn nullable_words<'a>(values: impl IntoIterator<Item = &'a str>, description: &str) -> Object {
    let mut schema = words(values, description);
    schema.schema_type = utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]);
    if let Some(values) = schema.enum_values.as_mut() {
        values.push(serde_json::Value::Null);
    }
    schema
}

/// `domain::run::RunStatus`.
pub(crate) fn run_status() -> Object {
    words(
        domain::run::RunStatus::ALL
            .iter()
            .map(|status| status.as_str()),
        "The run's status: `pending` (due), `running` (held by a worker), `waiting` (for a \
         signal, a poll or a deadline), `paused` (for an operator), `succeeded`, `failed` or \
         `cancelled` (the last three are final). See docs/run-states.md.",
    )
}

/// An optional `domain::run::RunStatus` filter.
#[allow(dead_code, reason = "used by the runs query next")]
pub(crate) fn run_status_filter() -> Object {
    words(
        domain::run::RunStatus::ALL
            .iter()
            .map(|status| status.as_str()),
        "Only runs with this status.",
    )
}

/// `domain::run::AttemptOutcome`, null while the attempt is in flight.
pub(crate) fn attempt_outcome() -> Object {
    nullable_words(
        domain::run::AttemptOutcome::ALL
            .iter()
            .map(|outcome| outcome.as_str()),
        "How the attempt ended; null while it is in flight (or when its worker died before \
         recording it).",
    )
}

/// `domain::run::HistoryKind`.
pub(crate) fn history_kind() -> Object {
    words(
        domain::run::HistoryKind::ALL
            .iter()
            .map(|kind| kind.as_str()),
        "What happened.",
    )
}

/// `domain::vendor::BusinessType`.
pub(crate) fn business_type() -> Object {
    words(
        domain::vendor::BusinessType::ALL
            .iter()
            .map(|kind| kind.as_str()),
        "The vendor's legal form: `exempt_dealer` (עוסק פטור), `licensed_dealer` (עוסק מורשה), \
         `company` (חברה בע\"מ), `nonprofit` (עמותה / חל\"צ) or `partnership` (שותפות).",
    )
}

/// The signals a run may be sent: the `wait`s of the workflows in `workflows/` (a test keeps
/// the two the same). `terminal_approved` is the acquirer's approval of a vendor's terminal;
/// `vendor_ready` wakes charges and documents waiting for their vendor's onboarding.
pub(crate) const SIGNALS: [&str; 2] = ["terminal_approved", "vendor_ready"];

/// A signal's name.
pub(crate) fn signal_name() -> Object {
    words(
        SIGNALS,
        "The signal: `terminal_approved` (the acquirer approved the vendor's terminal; for an \
         onboarding run) or `vendor_ready` (the vendor is ready; for a charge or a document \
         waiting for it). A signal the run's workflow never waits for answers 409.",
    )
}

/// The pattern of free text the edge takes: no control character `extract::JsonBody` and
/// `extract::Query` refuse (tab, line feed and carriage return may stay).
pub(crate) const TEXT: &str = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$";

/// The names of [`json_scalar`] and [`json_value`] among the document's schemas.
pub(crate) const JSON_SCALAR: &str = "JsonScalar";
pub(crate) const JSON_VALUE: &str = "JsonValue";

fn text() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(TEXT))
        .build()
}

fn scalars() -> utoipa::openapi::schema::AnyOfBuilder {
    let of = |schema_type: Type| ObjectBuilder::new().schema_type(schema_type).build();
    utoipa::openapi::schema::AnyOfBuilder::new()
        .item(of(Type::Null))
        .item(of(Type::Boolean))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .exclusive_minimum(Some(-domain::input::MAX_NUMBER_MAGNITUDE))
                .exclusive_maximum(Some(domain::input::MAX_NUMBER_MAGNITUDE))
                .build(),
        )
        .item(text())
}

/// A JSON scalar: null, a boolean, a number below 1e300 in magnitude, or text without control
/// characters.
pub(crate) fn json_scalar() -> RefOr<Schema> {
    scalars()
        .description(Some(
            "A JSON scalar: null, a boolean, a number below 1e300 in magnitude, or text without \
             control characters.",
        ))
        .into()
}

/// A member of a free-form payload: a scalar, or an array or object of scalars
/// (`domain::input::payload_too_deep`).
pub(crate) fn json_value() -> RefOr<Schema> {
    let scalar = || RefOr::Ref(utoipa::openapi::Ref::from_schema_name(JSON_SCALAR));
    scalars()
        .item(
            utoipa::openapi::schema::ArrayBuilder::new()
                .items(scalar())
                .build(),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property_names(Some(text()))
                .additional_properties(Some(scalar()))
                .build(),
        )
        .description(Some(
            "A scalar, or an array or object of scalars (nothing nested deeper).",
        ))
        .into()
}

/// A free-form JSON object (a signal's payload): members of [`json_value`].
pub(crate) fn json_object() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(text()))
        .additional_properties(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
            JSON_VALUE,
        ))))
        .into()
}

/// The steps of the workflows in `workflows/` (a test keeps the two the same): what a resume
/// may start from. A step the run's own workflow lacks answers 409.
pub(crate) const STEPS: [&str; 10] = [
    "create_organization",
    "capture_api_keys",
    "open_terminal",
    "await_terminal_approval",
    "mark_ready",
    "check_vendor",
    "await_vendor_ready",
    "charge",
    "conclude",
    "issue_document",
];

/// A step's name.
pub(crate) fn step_name() -> Object {
    words(
        STEPS,
        "A step of the workflows: onboarding `create_organization`, `capture_api_keys`, \
         `open_terminal`, `await_terminal_approval`, `mark_ready`; charges and documents \
         `check_vendor`, `await_vendor_ready`, then `charge` and `conclude`, or \
         `issue_document`. One the run's workflow lacks answers 409.",
    )
}

/// The bank codes `domain::bank` accepts.
pub(crate) fn bank_code() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .enum_values(Some(domain::bank::bank_codes()))
        .description(Some(
            "The bank's code (Bank of Israel), e.g. 12 Hapoalim, 10 Leumi, 11 Discount, 20 \
             Mizrahi-Tefahot, 31 Beinleumi.",
        ))
        .examples([serde_json::json!(12)])
        .build()
}

/// The error envelope of a failed step (`domain::envelope::ErrorEnvelope`), null when none.
pub(crate) fn error_envelope() -> RefOr<Schema> {
    let mut schema = ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Object,
            Type::Null,
        ]))
        .description(Some(
            "The last classified failure: a machine-readable `code` (`timeout`, \
             `provider_unavailable`, `http_429`, …), a `message` for people, whether a retry may \
             succeed, and non-secret `details`. Null when the run has not failed a step.",
        ))
        .property(
            "code",
            ObjectBuilder::new().schema_type(Type::String).build(),
        )
        .required("code")
        .property(
            "message",
            ObjectBuilder::new().schema_type(Type::String).build(),
        )
        .required("message")
        .property(
            "retryable",
            ObjectBuilder::new().schema_type(Type::Boolean).build(),
        )
        .required("retryable")
        .property("details", ObjectBuilder::new().build())
        .build();
    schema.additional_properties = None;
    RefOr::T(Schema::Object(schema))
}

/// A run's context: the non-secret outputs of its steps so far, by name.
pub(crate) fn run_context() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "The non-secret outputs of the steps so far, by name: for onboarding \
             `provider_company_id` and the terminal's state, for a charge the provider's payment \
             id and document number, for a document its number and link. Never a key, a token \
             or a bank account.",
        ))
        .additional_properties(Some(
            utoipa::openapi::schema::AdditionalProperties::FreeForm(true),
        ))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trimmed lines of every workflow definition in `workflows/`, each file's apart.
    fn workflow_lines() -> Vec<Vec<String>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
        std::fs::read_dir(&dir)
            .expect("workflows/")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .map(|path| {
                let text = std::fs::read_to_string(&path).expect("readable");
                text.lines().map(|line| line.trim().to_owned()).collect()
            })
            .collect()
    }

    /// The distinct values of `key = "…"` lines (inside `[[steps]]` tables only, when asked).
    fn values_of(key: &str, only_in_steps: bool) -> Vec<String> {
        let prefix = format!("{key} = \"");
        let mut values = Vec::new();
        for lines in workflow_lines() {
            let mut in_step = false;
            for line in lines {
                if line.starts_with('[') {
                    in_step = line == "[[steps]]";
                } else if (in_step || !only_in_steps)
                    && let Some(rest) = line.strip_prefix(&prefix)
                {
                    values.push(rest.trim_end_matches('"').to_owned());
                }
            }
        }
        values.sort();
        values.dedup();
        values
    }

    fn sorted(words: &[&str]) -> Vec<String> {
        let mut words: Vec<String> = words.iter().map(|word| (*word).to_owned()).collect();
        words.sort();
        words.dedup();
        words
    }

    #[test]
    fn the_signals_are_the_waits_of_the_workflows() {
        assert_eq!(values_of("wait", false), sorted(&SIGNALS));
    }

    #[test]
    fn the_steps_are_the_steps_of_the_workflows() {
        assert_eq!(values_of("name", true), sorted(&STEPS));
    }

    #[test]
    fn word_schemas_list_every_domain_value() {
        let statuses = serde_json::to_value(run_status()).expect("serialises");
        let listed: Vec<&str> = statuses["enum"]
            .as_array()
            .expect("an enum")
            .iter()
            .filter_map(|value| value.as_str())
            .collect();
        assert_eq!(listed.len(), domain::run::RunStatus::ALL.len());
        for status in domain::run::RunStatus::ALL {
            assert!(listed.contains(&status.as_str()));
        }
        let outcome = serde_json::to_value(attempt_outcome()).expect("serialises");
        assert!(
            outcome["enum"]
                .as_array()
                .expect("enum")
                .contains(&serde_json::Value::Null)
        );
        let banks = serde_json::to_value(bank_code()).expect("serialises");
        assert_eq!(
            banks["enum"].as_array().expect("enum").len(),
            domain::bank::bank_codes().count()
        );
        let types = serde_json::to_value(business_type()).expect("serialises");
        assert!(
            types["enum"]
                .as_array()
                .expect("enum")
                .contains(&"exempt_dealer".into())
        );
    }
}

//! Observability end to end: the real `vendorflow serve` (with `/metrics` on its API port)
//! onboards a vendor through one provider failure to ready; then `/metrics` is scraped, parsed as
//! the Prometheus text format, and the series a dashboard and its alerts rely on are checked,
//! along with the server's JSON log lines written during the steps.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Harness, Poll, corporate_number};
use sandbox::{Fault, FaultPlan, FaultRule};
use serde_json::{Value, json};

const BOUND: Duration = Duration::from_secs(90);

/// One sample of the text format: a name, its labels, a value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (`name{label="value",...} value` lines; `#` lines are
/// comments). Panics on a line it cannot read, so a malformed exposition fails the test.
fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value on line `{line}`"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other
                .parse()
                .unwrap_or_else(|_| panic!("bad value on line `{line}`")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels on line `{line}`"));
                (name.to_owned(), parse_labels(body, line))
            }
        };
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name on line `{line}`"
        );
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    samples
}

/// Parses `a="x",b="y"` (values may hold escaped quotes and backslashes).
fn parse_labels(body: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad label on line `{line}`"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, escaped)) => value.push(escaped),
                    None => panic!("dangling escape on line `{line}`"),
                },
                Some((at, '"')) => break at,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value on line `{line}`"),
            }
        };
        labels.insert(key.trim_start_matches(',').to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

/// The value of the sample named `name` whose labels include `labels`, if exactly one matches.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert!(
        matching.len() <= 1,
        "{name} {labels:?} matches several series: {matching:?}"
    );
    matching.first().map(|s| s.value)
}

async fn scrape(system: &Harness) -> (String, Vec<Sample>) {
    let response = system
        .http
        .get(format!("{}/metrics", system.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    let samples = parse(&text);
    (text, samples)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_onboarding_metrics_count_its_run_steps_provider_calls_and_webhooks_and_its_logs_name_the_step()
 {
    // The first organization request fails with a 503, so the run retries once.
    let faults = FaultPlan::none().on(
        "/website/companies/create/",
        FaultRule::next(1, Fault::HttpError { status: 503 }),
    );
    let system = Harness::start(faults, 6006).await;

    // Before any run: served without a token, the queue gauges exist for every loaded workflow.
    let (_, before) = scrape(&system).await;
    assert_eq!(
        value(
            &before,
            "vendorflow_queue_depth",
            &[("workflow", "vendor_onboarding")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(&before, "vendorflow_metrics_database_up", &[]),
        Some(1.0)
    );

    let corporate = corporate_number(6006);
    let onboarded = system
        .onboard_to_ready(
            "metrics-1",
            json!({
                "external_id": "metrics-vendor",
                "legal_name": "Metrics Ltd",
                "corporate_number": corporate,
                "business_type": "company",
                "email": "metrics@example.co.il",
                "phone": "052-123-4567",
                "mode": "clearing",
                "bank_account": {"bank": 54, "branch": 101, "account": "736251948"}
            }),
        )
        .await;
    let (run_id, vendor_id) = (onboarded.run_id, onboarded.vendor_id);

    // Webhook deliveries are recorded after the receiver answers: scrape until one is counted.
    let mut poll = Poll::every(Duration::from_millis(100), BOUND);
    let (text, samples) = loop {
        let (text, samples) = scrape(&system).await;
        let delivered = value(
            &samples,
            "vendorflow_webhook_deliveries_total",
            &[("result", "delivered")],
        );
        if delivered.is_some_and(|d| d > 0.0) {
            break (text, samples);
        }
        poll.tick("a webhook delivery is counted").await;
    };

    let onboarding = ("workflow", "vendor_onboarding");
    let at_least_one = |name: &str, labels: &[(&str, &str)]| {
        let found = value(&samples, name, labels);
        assert!(
            found.is_some_and(|v| v >= 1.0),
            "{name} {labels:?} is {found:?} in:\n{text}"
        );
    };
    at_least_one("vendorflow_runs_started_total", &[onboarding]);
    at_least_one(
        "vendorflow_runs_finished_total",
        &[onboarding, ("status", "succeeded")],
    );
    for (step, outcome) in [
        ("create_organization", "retryable"),
        ("create_organization", "succeeded"),
        ("capture_api_keys", "succeeded"),
        ("open_terminal", "succeeded"),
        ("mark_ready", "succeeded"),
    ] {
        at_least_one(
            "vendorflow_step_duration_seconds_count",
            &[onboarding, ("step", step), ("outcome", outcome)],
        );
        // A histogram, with buckets from a millisecond to a minute.
        for le in ["0.001", "60", "+Inf"] {
            assert!(
                value(
                    &samples,
                    "vendorflow_step_duration_seconds_bucket",
                    &[onboarding, ("step", step), ("outcome", outcome), ("le", le)],
                )
                .is_some(),
                "no bucket le={le} for {step}/{outcome}"
            );
        }
    }
    at_least_one(
        "vendorflow_step_retries_total",
        &[onboarding, ("step", "create_organization")],
    );
    let create = ("endpoint", "/website/companies/create/");
    at_least_one(
        "vendorflow_provider_requests_total",
        &[create, ("class", "success")],
    );
    at_least_one(
        "vendorflow_provider_requests_total",
        &[create, ("class", "retryable")],
    );
    at_least_one(
        "vendorflow_provider_request_duration_seconds_count",
        &[create],
    );
    at_least_one(
        "vendorflow_webhook_deliveries_total",
        &[("result", "delivered")],
    );
    // The database-backed gauges are present (their values depend on the moment).
    let depth = value(&samples, "vendorflow_queue_depth", &[onboarding]);
    assert!(depth.is_some_and(|d| d >= 0.0), "{depth:?}");
    let age = value(
        &samples,
        "vendorflow_oldest_due_run_age_seconds",
        &[onboarding],
    );
    assert!(age.is_some_and(|a| a >= 0.0), "{age:?}");
    assert_eq!(
        value(&samples, "vendorflow_webhook_dead_letters", &[]),
        Some(0.0)
    );
    assert!(value(&samples, "vendorflow_rescues_total", &[]).is_some());
    // Every retention job's counter of deleted rows is rendered, labelled by the job's name.
    for job in [
        "finished_runs",
        "idempotency_keys",
        "webhook_deliveries",
        "outbox",
    ] {
        assert!(
            value(
                &samples,
                "vendorflow_retention_deleted_total",
                &[("job", job)]
            )
            .is_some(),
            "{job}"
        );
    }
    assert_eq!(
        value(&samples, "vendorflow_metrics_database_up", &[]),
        Some(1.0)
    );

    // No run, vendor or person reaches a label.
    for private in [
        run_id.as_str(),
        vendor_id.as_str(),
        corporate.as_str(),
        "metrics-vendor",
    ] {
        assert!(!text.contains(private), "{private} is in /metrics");
    }

    // Every log line a step's provider call wrote carries the run, the vendor, the workflow and
    // the step, from the executor's span.
    let logs = std::fs::read_to_string(&system.log_path).unwrap();
    let provider_lines: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("sumit call"))
        })
        .collect();
    assert!(
        provider_lines.len() >= 4,
        "expected the provider calls in the log, found {}",
        provider_lines.len()
    );
    for line in &provider_lines {
        let span = &line["span"];
        assert_eq!(span["run.id"], run_id.as_str(), "{line}");
        assert_eq!(span["vendor.id"], vendor_id.as_str(), "{line}");
        assert_eq!(span["workflow"], "vendor_onboarding", "{line}");
        assert!(
            span["step"].as_str().is_some_and(|s| !s.is_empty()),
            "{line}"
        );
    }
    let steps: std::collections::BTreeSet<&str> = provider_lines
        .iter()
        .filter_map(|line| line["span"]["step"].as_str())
        .collect();
    assert!(steps.contains("create_organization"), "{steps:?}");
    assert!(steps.contains("open_terminal"), "{steps:?}");
}

#[test]
fn the_parser_reads_labels_with_escapes_and_special_values() {
    let samples = parse(
        "# HELP x A thing.\n# TYPE x counter\nx_total{a=\"1\",b=\"q\\\"uote,\\\\\"} 3\nup 1\nh_bucket{le=\"+Inf\"} +Inf\n",
    );
    assert_eq!(samples.len(), 3);
    assert_eq!(samples[0].labels["b"], "q\"uote,\\");
    assert_eq!(value(&samples, "x_total", &[("a", "1")]), Some(3.0));
    assert_eq!(value(&samples, "up", &[]), Some(1.0));
    assert_eq!(
        value(&samples, "h_bucket", &[("le", "+Inf")]),
        Some(f64::INFINITY)
    );
}

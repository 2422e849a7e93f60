//! `vendorflow demo`: onboards sample vendors into a running instance (`make run`, i.e.
//! `vendorflow dev`) through its HTTP API, exactly as a marketplace backend would, and shows
//! their progress live. For clearing vendors it sends `terminal_approved` when their run waits
//! for it, standing in for the acquirer, who approves terminals by hand.

use std::io::IsTerminal as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::table::Table;

/// The signal that approves a clearing vendor's terminal.
const TERMINAL_APPROVED: &str = "terminal_approved";
/// The step at which an onboarding waits for it.
const AWAIT_APPROVAL_STEP: &str = "await_terminal_approval";
/// How often the runs are read.
const REFRESH: Duration = Duration::from_millis(500);

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The running instance's base URL (default: http:// and VENDORFLOW_LISTEN when set, else,
    /// from the checkout, where `make run` serves, else http://127.0.0.1:8080).
    #[arg(long)]
    pub api: Option<String>,
    /// A backend or operator token (default: VENDORFLOW_TOKEN, else, from the checkout, the
    /// backend token `make run` keeps in .data/dev-tokens.json).
    #[arg(long)]
    pub token: Option<String>,
    /// How many sample vendors to onboard (a mix of clearing and documents-only).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub vendors: u32,
    /// Give up when not every vendor is ready after this long (e.g. `90s`, `5m`).
    #[arg(long, default_value = "2m", value_parser = parse_timeout)]
    pub timeout: Duration,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    crate::settings::parse_duration(text).map_err(|error| format!("{error:#}"))
}

/// A sample vendor and where its onboarding stands.
#[derive(Debug, Clone)]
struct Tracked {
    external_id: String,
    legal_name: String,
    clearing: bool,
    vendor_id: String,
    run_id: String,
    status: String,
    step: String,
    approved: bool,
}

impl Tracked {
    fn settled(&self) -> bool {
        matches!(
            self.status.as_str(),
            "succeeded" | "failed" | "cancelled" | "paused"
        )
    }
}

/// Runs the demo against `api` with `token`.
pub async fn run(args: DemoArgs, api: String, token: SecretString) -> anyhow::Result<()> {
    let api = api.trim_end_matches('/').to_owned();
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .context("building the HTTP client")?,
        api,
        token,
    };
    client
        .http
        .get(format!("{}/healthz", client.api))
        .send()
        .await
        .with_context(|| {
            format!(
                "--api: cannot reach {}; is `make run` (vendorflow dev) running there?",
                client.api
            )
        })?;

    let started = Instant::now();
    let tag = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let mut tracked = Vec::new();
    println!(
        "onboarding {} sample vendor(s) through {}/v1/onboardings",
        args.vendors, client.api
    );
    for index in 0..args.vendors {
        let sample = sample_vendor(&tag, index);
        let answer = client
            .post(
                "/v1/onboardings",
                &sample.external_id,
                &json!({ "vendor": sample.body }),
            )
            .await?;
        tracked.push(Tracked {
            external_id: sample.external_id,
            legal_name: sample.legal_name,
            clearing: sample.clearing,
            vendor_id: text(&answer, "vendor_id")?,
            run_id: text(&answer, "run_id")?,
            status: text(&answer, "status")?,
            step: String::new(),
            approved: false,
        });
    }

    let mut screen = Screen::new();
    let deadline = started + args.timeout;
    loop {
        for vendor in tracked.iter_mut().filter(|vendor| !vendor.settled()) {
            let run = client.get(&format!("/v1/runs/{}", vendor.run_id)).await?;
            let status = text(&run, "status")?;
            let step = text(&run, "current_step")?;
            if status != vendor.status || step != vendor.step {
                screen.event(format!("{}: {status} at {step}", vendor.external_id));
                vendor.status = status;
                vendor.step = step;
            }
            if vendor.clearing
                && !vendor.approved
                && vendor.status == "waiting"
                && vendor.step == AWAIT_APPROVAL_STEP
            {
                screen.event(format!(
                    "{}: approving terminal as the acquirer would (signal {TERMINAL_APPROVED})",
                    vendor.external_id
                ));
                client
                    .post(
                        &format!("/v1/runs/{}/signals/{TERMINAL_APPROVED}", vendor.run_id),
                        &format!("demo-approve-{}", vendor.run_id),
                        &json!({ "reason": "terminal approved by the acquirer (simulated by vendorflow demo)" }),
                    )
                    .await?;
                vendor.approved = true;
            }
        }
        screen.draw(&progress_table(&tracked), started.elapsed());
        if tracked.iter().all(Tracked::settled) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(REFRESH).await;
    }
    screen.done();

    let mut summary = Table::new(&["vendor", "name", "mode", "state", "run", "status"]);
    for vendor in &tracked {
        let state = client
            .get(&format!("/v1/vendors/{}", vendor.vendor_id))
            .await
            .ok()
            .and_then(|found| found["onboarding_state"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "?".to_owned());
        summary.row(vec![
            vendor.external_id.clone(),
            vendor.legal_name.clone(),
            mode_word(vendor.clearing).to_owned(),
            state,
            vendor.run_id.clone(),
            vendor.status.clone(),
        ]);
    }
    println!();
    print!("{}", summary.render());
    let ready = tracked.iter().filter(|v| v.status == "succeeded").count();
    let total = tracked.len();
    println!();
    println!(
        "{ready} of {total} vendor(s) ready in {}",
        super::millis_words(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX))
    );
    if ready == total {
        return Ok(());
    }
    let stuck: Vec<&Tracked> = tracked.iter().filter(|v| v.status != "succeeded").collect();
    for vendor in &stuck {
        eprintln!(
            "{} is {} at {}: `vendorflow runs show {}` tells why",
            vendor.external_id, vendor.status, vendor.step, vendor.run_id
        );
    }
    if stuck.iter().any(|vendor| !vendor.settled()) {
        bail!(
            "timed out after {}: {} of {total} vendor(s) not ready (--timeout)",
            super::duration_words(args.timeout.as_secs()),
            total - ready
        );
    }
    bail!(
        "{} of {total} vendor(s) ended without becoming ready",
        total - ready
    )
}

fn mode_word(clearing: bool) -> &'static str {
    if clearing {
        "clearing"
    } else {
        "documents_only"
    }
}

fn progress_table(tracked: &[Tracked]) -> String {
    let mut table = Table::new(&["vendor", "name", "mode", "status", "step"]);
    for vendor in tracked {
        table.row(vec![
            vendor.external_id.clone(),
            vendor.legal_name.clone(),
            mode_word(vendor.clearing).to_owned(),
            vendor.status.clone(),
            if vendor.status == "succeeded" {
                "ready".to_owned()
            } else {
                vendor.step.clone()
            },
        ]);
    }
    table.render()
}

/// A string member of an API answer.
fn text(value: &Value, key: &str) -> anyhow::Result<String> {
    value[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("the API answered without `{key}`: {value}"))
}

/// A sample vendor's application.
struct SampleVendor {
    external_id: String,
    legal_name: String,
    clearing: bool,
    body: Value,
}

const NAMES: [(&str, &str); 6] = [
    ("דנה קרמיקה בע\"מ", "company"),
    ("Avi Print", "licensed_dealer"),
    ("פלאפל הכרמל", "exempt_dealer"),
    ("Noa Yoga Studio", "licensed_dealer"),
    ("ספרי יוסי ושות'", "partnership"),
    ("עמותת אופניים לכל", "nonprofit"),
];

/// The `index`th sample vendor of a demo tagged `tag`: every other one is a clearing vendor;
/// corporate numbers are valid (check digit computed) and differ between demos, since the
/// provider refuses a second organization with the same number.
fn sample_vendor(tag: &str, index: u32) -> SampleVendor {
    let (name, business_type) = NAMES[index as usize % NAMES.len()];
    let clearing = index.is_multiple_of(2);
    let external_id = format!("demo-{tag}-{}", index + 1);
    // Eight digits from the tag (hex) and the index, starting with 5 like a company number.
    let seed = u64::from_str_radix(tag, 16).unwrap_or(0);
    let first_eight = format!("5{:07}", (seed * 97 + u64::from(index)) % 10_000_000);
    let check = domain::israeli_id::israeli_id_check_digit(&first_eight).unwrap_or(0);
    let mut body = json!({
        "external_id": external_id,
        "legal_name": name,
        "corporate_number": format!("{first_eight}{check}"),
        "business_type": business_type,
        "email": format!("{external_id}@example.co.il"),
        "phone": format!("052-555-{:04}", index % 10_000),
        "mode": mode_word(clearing),
    });
    if clearing {
        body["bank_account"] = json!({"bank": 12, "branch": 571, "account": "041116"});
    }
    SampleVendor {
        external_id,
        legal_name: name.to_owned(),
        clearing,
        body,
    }
}

/// The API over HTTP with a bearer token.
struct Client {
    http: reqwest::Client,
    api: String,
    token: SecretString,
}

impl Client {
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.api))
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        answer(response, "GET", path).await
    }

    async fn post(&self, path: &str, idempotency_key: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.api))
            .bearer_auth(self.token.expose_secret())
            .header("Idempotency-Key", idempotency_key)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        answer(response, "POST", path).await
    }
}

/// The JSON of a successful answer, or an error with the problem's detail.
async fn answer(response: reqwest::Response, method: &str, path: &str) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        bail!(
            "--token: the API refused the token ({status}); use a backend or operator token \
             with --token or VENDORFLOW_TOKEN (`make run` prints its own, keeps them in \
             .data/dev-tokens.json and mints new ones at its next start if they were revoked)"
        );
    }
    let detail = body["detail"]
        .as_str()
        .or_else(|| body["title"].as_str())
        .unwrap_or("no detail");
    let errors = body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| format!("; {}: {}", e["field"], e["message"]))
                .collect::<String>()
        })
        .unwrap_or_default();
    bail!("{method} {path} answered {status}: {detail}{errors}")
}

/// The live view: on a terminal, the table redrawn in place with the latest events under it;
/// otherwise (a pipe, a log, a test) one line per event.
struct Screen {
    terminal: bool,
    events: Vec<String>,
    drawn_lines: usize,
}

impl Screen {
    fn new() -> Self {
        Screen {
            terminal: std::io::stdout().is_terminal(),
            events: Vec::new(),
            drawn_lines: 0,
        }
    }

    fn event(&mut self, text: String) {
        if self.terminal {
            self.events.push(text);
        } else {
            println!("{text}");
        }
    }

    fn draw(&mut self, table: &str, elapsed: Duration) {
        if !self.terminal {
            return;
        }
        let mut block = String::new();
        block.push_str(table);
        block.push_str(&format!(
            "\n{} elapsed\n",
            super::duration_words(elapsed.as_secs())
        ));
        let recent = self.events.len().saturating_sub(6);
        for event in &self.events[recent..] {
            block.push_str(&format!("  {event}\n"));
        }
        let mut out = std::io::stdout().lock();
        if self.drawn_lines > 0 {
            // Back to the top of the previous drawing, and clear everything below.
            let _ignored = write!(out, "\x1b[{}A\x1b[J", self.drawn_lines);
        }
        let _ignored = write!(out, "{block}");
        let _ignored = out.flush();
        self.drawn_lines = block.lines().count();
    }

    fn done(&mut self) {
        self.drawn_lines = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn sample_vendors_are_valid_applications_and_mix_both_modes() {
        let mut modes = BTreeMap::new();
        for index in 0..12 {
            let sample = sample_vendor("a1b2c3", index);
            let parsed = domain::vendor::VendorApplication::from_request_body(
                &json!({ "vendor": sample.body }),
            );
            assert!(parsed.is_ok(), "{:?}: {parsed:?}", sample.body);
            *modes.entry(sample.clearing).or_insert(0) += 1;
        }
        assert_eq!(modes.get(&true), Some(&6));
        assert_eq!(modes.get(&false), Some(&6));
    }

    #[test]
    fn two_demos_use_different_corporate_numbers() {
        let a = sample_vendor("a1b2c3", 0).body["corporate_number"].clone();
        let b = sample_vendor("d4e5f6", 0).body["corporate_number"].clone();
        assert_ne!(a, b);
    }
}

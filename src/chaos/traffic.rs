//! The marketplace backend's side of a chaos run, over the HTTP API only: onboardings and
//! charges sent at a steady pace, each retried with its own `Idempotency-Key` after a transport
//! error or a 5xx (as a careful backend does while PostgreSQL restarts); idempotency probes on a
//! sample (the same key and body must replay the same run, a new key for an existing vendor or
//! order must be refused with 409, the same key with another body too); and the acquirer, who
//! approves every terminal by sending `terminal_approved` to runs waiting for it.
//!
//! It must not read or write the database: what it knows is what the API answered.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::FutureExt as _;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use rand::RngExt;
use rand::rngs::StdRng;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Profile;

/// Requests in flight at once.
const MAX_IN_FLIGHT: usize = 12;
/// Tries of one request (transport errors and 5xx only), with backoff from 250 ms to 4 s.
const TRIES: u32 = 8;

/// An onboarding the API accepted.
#[derive(Debug, Clone)]
pub struct Onboarding {
    pub run_id: Uuid,
    pub vendor_id: Uuid,
    pub corporate_number: String,
    pub clearing: bool,
}

/// A charge the API accepted.
#[derive(Debug, Clone)]
pub struct Charge {
    pub run_id: Uuid,
    pub order_id: String,
}

/// What the idempotency probes found.
#[derive(Debug, Default)]
pub struct Probes {
    pub replays: usize,
    pub new_keys: usize,
    pub other_bodies: usize,
    /// Probes that got no definitive answer.
    pub inconclusive: usize,
    pub violations: Vec<String>,
}

/// Everything the backend sent and was answered.
#[derive(Debug, Default)]
pub struct Book {
    pub onboardings: Vec<Onboarding>,
    pub charges: Vec<Charge>,
    /// The bank account numbers sent (canaries).
    pub bank_accounts: Vec<String>,
    /// Requests sent (first sends; retries and probes not counted).
    pub sent: usize,
    /// Requests that needed more than one try.
    pub retried: usize,
    /// Requests with no definitive answer after every try.
    pub gave_up: Vec<String>,
    /// Definitive answers other than 202 to first sends.
    pub refused: Vec<String>,
    /// Charges not sent because no clearing vendor had been accepted.
    pub skipped_charges: usize,
    pub probes: Probes,
}

impl Book {
    fn lock(book: &Mutex<Book>) -> std::sync::MutexGuard<'_, Book> {
        book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The marketplace API with the backend token.
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: SecretString,
}

/// The API's definitive answer, or why there was none.
#[derive(Debug)]
enum Answer {
    Got(u16, Value),
    GaveUp(String),
}

impl Api {
    pub fn new(base: &str, token: SecretString) -> anyhow::Result<Api> {
        Ok(Api {
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(12))
                .build()
                .context("building the HTTP client")?,
            base: base.to_owned(),
            token,
        })
    }

    async fn post_once(
        &self,
        path: &str,
        key: &str,
        body: &Value,
    ) -> Result<(u16, Value), reqwest::Error> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.token.expose_secret())
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// POSTs, trying again with the same key after a transport error or a 5xx; returns the
    /// answer and the number of tries.
    async fn post(&self, path: &str, key: &str, body: &Value) -> (Answer, u32) {
        let mut last = String::new();
        for attempt in 0..TRIES {
            if attempt > 0 {
                let delay = 250u64 << (attempt - 1).min(4);
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            match self.post_once(path, key, body).await {
                Ok((status, body)) if status < 500 => {
                    return (Answer::Got(status, body), attempt + 1);
                }
                Ok((status, body)) => last = format!("{status} {}", problem(&body)),
                Err(error) => last = error_words(&error),
            }
        }
        (Answer::GaveUp(last), TRIES)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.token.expose_secret())
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json().await?)
    }

    /// The onboarding runs waiting at `await_terminal_approval` (at most ten pages of 200).
    async fn waiting_for_approval(&self) -> anyhow::Result<Vec<Uuid>> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        for _page in 0..10 {
            let mut path = "/v1/runs?workflow=vendor_onboarding&status=waiting\
                            &step=await_terminal_approval&limit=200"
                .to_owned();
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page = self.get(&path).await?;
            ids.extend(
                page["runs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|run| run["id"].as_str()?.parse::<Uuid>().ok()),
            );
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        Ok(ids)
    }
}

/// A transport error in a few words (never the URL's query or a header).
fn error_words(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "connection refused or reset".to_owned()
    } else {
        "transport error".to_owned()
    }
}

/// The detail of a problem document.
fn problem(body: &Value) -> String {
    body["detail"]
        .as_str()
        .or_else(|| body["title"].as_str())
        .unwrap_or("")
        .to_owned()
}

fn run_id_of(body: &Value) -> Option<Uuid> {
    body["run_id"].as_str()?.parse().ok()
}

/// Which idempotency probe follows an accepted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    None,
    /// The same key and body again: the same run.
    Replay,
    /// A new key for the same vendor or order: 409.
    NewKey,
    /// The same key with another body: 409.
    OtherBody,
}

impl Probe {
    fn draw(rng: &mut StdRng) -> Probe {
        match rng.random::<f64>() {
            x if x < 0.25 => Probe::Replay,
            x if x < 0.40 => Probe::NewKey,
            x if x < 0.50 => Probe::OtherBody,
            _ => Probe::None,
        }
    }
}

/// One request of the plan.
#[derive(Debug, Clone)]
enum Op {
    Onboard {
        n: usize,
        /// The bank account number of a clearing vendor (a canary); none for documents-only.
        account: Option<String>,
        probe: Probe,
    },
    Charge {
        n: usize,
        approve: bool,
        probe: Probe,
        deferrals: u32,
    },
}

/// The requests in the order they are sent: a head of onboardings, then onboardings and charges
/// mixed. Every third vendor is documents-only; one charge in ten declines.
fn plan(profile: &Profile, rng: &mut StdRng) -> VecDeque<Op> {
    let onboard = |n: usize, rng: &mut StdRng| Op::Onboard {
        n,
        account: (!n.is_multiple_of(3))
            .then(|| rng.random_range(100_000_000u32..1_000_000_000).to_string()),
        probe: Probe::draw(rng),
    };
    let mut ops = VecDeque::new();
    let head = (profile.onboardings / 6).max(4).min(profile.onboardings);
    for n in 0..head {
        ops.push_back(onboard(n, rng));
    }
    let (mut next_onboarding, mut next_charge) = (head, 0);
    while next_onboarding < profile.onboardings || next_charge < profile.charges {
        let left_onboardings = profile.onboardings - next_onboarding;
        let left_charges = profile.charges - next_charge;
        let pick_onboarding =
            rng.random_range(0..left_onboardings + left_charges) < left_onboardings;
        if pick_onboarding {
            ops.push_back(onboard(next_onboarding, rng));
            next_onboarding += 1;
        } else {
            ops.push_back(Op::Charge {
                n: next_charge,
                approve: rng.random::<f64>() >= 0.1,
                probe: Probe::draw(rng),
                deferrals: 0,
            });
            next_charge += 1;
        }
    }
    ops
}

/// A valid nine-digit corporate number (ח"פ, prefix 51) numbered `n`.
fn corporate_number(n: usize) -> String {
    let first_eight = format!("51{:06}", 100_000 + n);
    let check = domain::israeli_id::israeli_id_check_digit(&first_eight).unwrap_or(0);
    format!("{first_eight}{check}")
}

fn onboarding_body(n: usize, account: Option<&str>, email: &str) -> Value {
    let mut vendor = json!({
        "external_id": format!("chaos-vendor-{n}"),
        "legal_name": format!("Chaos Vendor {n} בע\"מ"),
        "corporate_number": corporate_number(n),
        "business_type": "company",
        "email": email,
        "phone": format!("052-{:07}", 1_000_000 + n),
        "mode": if account.is_some() { "clearing" } else { "documents_only" },
    });
    if let Some(account) = account {
        // Bank of Jerusalem (54) has no check rule, so any nine digits are a valid account.
        vendor["bank_account"] = json!({"bank": 54, "branch": 101, "account": account});
    }
    json!({ "vendor": vendor })
}

fn charge_body(n: usize, order_id: &str, approve: bool, email: &str) -> Value {
    let quantity = 1 + (n % 3) as i64;
    let unit_price = 1_990 + (n % 50) as i64 * 10;
    let token = if approve {
        format!("tok_approve_{n}")
    } else {
        format!("tok_decline_{n}")
    };
    json!({
        "order_id": order_id,
        "amount_agorot": quantity * unit_price,
        "single_use_token": token,
        "customer": {"name": format!("Customer {n}"), "email": email},
        "items": [{"name": format!("Item {n}"), "quantity": quantity, "unit_price_agorot": unit_price}],
    })
}

/// Sends the plan over `profile.load`, at most [`MAX_IN_FLIGHT`] requests at once, and records
/// every answer in `book`.
pub async fn send(api: &Api, profile: &Profile, mut rng: StdRng, book: &Mutex<Book>) {
    let mut queue = plan(profile, &mut rng);
    for op in &queue {
        if let Op::Onboard {
            account: Some(account),
            ..
        } = op
        {
            Book::lock(book).bank_accounts.push(account.clone());
        }
    }
    let total = u32::try_from(queue.len().max(1)).unwrap_or(u32::MAX);
    let mut ticker = tokio::time::interval(profile.load / total);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight = FuturesUnordered::new();
    loop {
        tokio::select! {
            _ = ticker.tick(), if !queue.is_empty() && in_flight.len() < MAX_IN_FLIGHT => {
                let Some(op) = queue.pop_front() else { continue };
                match op {
                    Op::Onboard { n, account, probe } => {
                        in_flight.push(onboard(api, book, n, account, probe).boxed_local());
                    }
                    Op::Charge { n, approve, probe, deferrals } => {
                        let vendors: Vec<Uuid> = Book::lock(book)
                            .onboardings
                            .iter()
                            .filter(|vendor| vendor.clearing)
                            .map(|vendor| vendor.vendor_id)
                            .collect();
                        if vendors.is_empty() {
                            if deferrals < 40 {
                                queue.push_back(Op::Charge { n, approve, probe, deferrals: deferrals + 1 });
                            } else {
                                Book::lock(book).skipped_charges += 1;
                            }
                            continue;
                        }
                        let vendor = vendors[rng.random_range(0..vendors.len())];
                        in_flight.push(charge(api, book, n, vendor, approve, probe).boxed_local());
                    }
                }
            }
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            else => break,
        }
    }
}

async fn onboard(api: &Api, book: &Mutex<Book>, n: usize, account: Option<String>, probe: Probe) {
    let key = format!("onboard-{n}");
    let email = format!("vendor{n}@example.co.il");
    let body = onboarding_body(n, account.as_deref(), &email);
    let (answer, tries) = api.post("/v1/onboardings", &key, &body).await;
    let what = format!("onboarding {n}");
    let Some(run_id) = accepted(book, &what, answer, tries, |book, answer| {
        let vendor_id = answer["vendor_id"].as_str()?.parse().ok()?;
        let run_id = run_id_of(answer)?;
        book.onboardings.push(Onboarding {
            run_id,
            vendor_id,
            corporate_number: corporate_number(n),
            clearing: account.is_some(),
        });
        Some(run_id)
    }) else {
        return;
    };
    let other = onboarding_body(n, account.as_deref(), &format!("other-{email}"));
    run_probe(
        api,
        book,
        probe,
        &what,
        "/v1/onboardings",
        &key,
        &body,
        &other,
        run_id,
    )
    .await;
}

async fn charge(
    api: &Api,
    book: &Mutex<Book>,
    n: usize,
    vendor_id: Uuid,
    approve: bool,
    probe: Probe,
) {
    let key = format!("charge-{n}");
    let order_id = format!("order-{n}");
    let email = format!("customer{n}@example.com");
    let body = charge_body(n, &order_id, approve, &email);
    let path = format!("/v1/vendors/{vendor_id}/charges");
    let (answer, tries) = api.post(&path, &key, &body).await;
    let what = format!("charge {order_id}");
    let Some(run_id) = accepted(book, &what, answer, tries, |book, answer| {
        let run_id = run_id_of(answer)?;
        book.charges.push(Charge {
            run_id,
            order_id: order_id.clone(),
        });
        Some(run_id)
    }) else {
        return;
    };
    let other = charge_body(n, &order_id, approve, &format!("other-{email}"));
    run_probe(api, book, probe, &what, &path, &key, &body, &other, run_id).await;
}

/// Records the answer to a first send; on a 202, `record` keeps it and returns the run id.
fn accepted(
    book: &Mutex<Book>,
    what: &str,
    answer: Answer,
    tries: u32,
    record: impl FnOnce(&mut Book, &Value) -> Option<Uuid>,
) -> Option<Uuid> {
    let mut book = Book::lock(book);
    book.sent += 1;
    if tries > 1 {
        book.retried += 1;
    }
    match answer {
        Answer::Got(202, body) => {
            let run_id = record(&mut book, &body);
            if run_id.is_none() {
                book.refused
                    .push(format!("{what}: 202 without a run id or vendor id"));
            }
            run_id
        }
        Answer::Got(status, body) => {
            book.refused
                .push(format!("{what}: {status} {}", problem(&body)));
            None
        }
        Answer::GaveUp(last) => {
            book.gave_up
                .push(format!("{what}: no answer after {tries} tries ({last})"));
            None
        }
    }
}

/// Sends the probe `probe` for the accepted request (`path`, `key`, `body`) whose run is
/// `run_id`, and records what it found.
#[allow(
    clippy::too_many_arguments,
    reason = "one probe needs the request, its variant and the run"
)]
async fn run_probe(
    api: &Api,
    book: &Mutex<Book>,
    probe: Probe,
    what: &str,
    path: &str,
    key: &str,
    body: &Value,
    other: &Value,
    run_id: Uuid,
) {
    let (answer, violation) = match probe {
        Probe::None => return,
        Probe::Replay => {
            let (answer, _) = api.post(path, key, body).await;
            let violation = match &answer {
                Answer::Got(202, replayed) if run_id_of(replayed) == Some(run_id) => None,
                Answer::Got(status, replayed) => Some(format!(
                    "{what}: the same key and body answered {status} (run {}) instead of \
                     replaying run {run_id}",
                    run_id_of(replayed).map_or("none".to_owned(), |id| id.to_string())
                )),
                Answer::GaveUp(_) => None,
            };
            Book::lock(book).probes.replays += 1;
            (answer, violation)
        }
        Probe::NewKey => {
            let (answer, _) = api.post(path, &format!("{key}-again"), body).await;
            let violation = match &answer {
                // A charge's 409 names the order's run: it must be the one first accepted.
                Answer::Got(409, refusal) if run_id_of(refusal).is_none_or(|id| id == run_id) => {
                    None
                }
                Answer::Got(status, other) => Some(format!(
                    "{what}: a new key for the same {} answered {status} (run {}); expected 409 \
                     naming run {run_id}",
                    if path.ends_with("charges") {
                        "order"
                    } else {
                        "vendor"
                    },
                    run_id_of(other).map_or("none".to_owned(), |id| id.to_string())
                )),
                Answer::GaveUp(_) => None,
            };
            Book::lock(book).probes.new_keys += 1;
            (answer, violation)
        }
        Probe::OtherBody => {
            let (answer, _) = api.post(path, key, other).await;
            let violation = match &answer {
                Answer::Got(409, _) => None,
                Answer::Got(status, other) => Some(format!(
                    "{what}: the same key with another body answered {status} (run {}); \
                     expected 409",
                    run_id_of(other).map_or("none".to_owned(), |id| id.to_string())
                )),
                Answer::GaveUp(_) => None,
            };
            Book::lock(book).probes.other_bodies += 1;
            (answer, violation)
        }
    };
    let mut book = Book::lock(book);
    if matches!(answer, Answer::GaveUp(_)) {
        book.probes.inconclusive += 1;
    }
    book.probes.violations.extend(violation);
}

/// What the acquirer did.
#[derive(Debug, Default)]
pub struct Acquirer {
    /// Runs whose `terminal_approved` signal the API accepted.
    pub signalled: BTreeSet<Uuid>,
    /// Looks or signals that failed (tried again at the next look).
    pub errors: usize,
}

/// Once a second until `stop` (or `bound`), sends `terminal_approved` to every onboarding run
/// waiting at `await_terminal_approval`, as the marketplace does once the acquirer approved the
/// terminal (the sandbox approves at once).
pub async fn approve_terminals(api: &Api, stop: &CancellationToken, bound: Duration) -> Acquirer {
    let started = Instant::now();
    let mut acquirer = Acquirer::default();
    while !stop.is_cancelled() && started.elapsed() < bound {
        match api.waiting_for_approval().await {
            Ok(ids) => {
                for id in ids {
                    if acquirer.signalled.contains(&id) {
                        continue;
                    }
                    let answer = api
                        .post_once(
                            &format!("/v1/runs/{id}/signals/terminal_approved"),
                            &format!("approve-{id}"),
                            &json!({"reason": "terminal approved by the acquirer (chaos run)"}),
                        )
                        .await;
                    match answer {
                        Ok((202, _)) => {
                            acquirer.signalled.insert(id);
                        }
                        _ => acquirer.errors += 1,
                    }
                }
            }
            Err(_) => acquirer.errors += 1,
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    acquirer
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn the_plan_sends_every_request_once_onboardings_first() {
        let profile = Profile::short();
        let mut rng = StdRng::seed_from_u64(3);
        let ops = plan(&profile, &mut rng);
        assert_eq!(ops.len(), profile.onboardings + profile.charges);
        assert!(matches!(ops[0], Op::Onboard { .. }));
        let clearing = ops
            .iter()
            .filter(|op| {
                matches!(
                    op,
                    Op::Onboard {
                        account: Some(_),
                        ..
                    }
                )
            })
            .count();
        assert_eq!(
            clearing,
            (0..profile.onboardings)
                .filter(|n| !n.is_multiple_of(3))
                .count()
        );
    }

    #[test]
    fn bodies_are_valid_requests() {
        let body = onboarding_body(7, Some("736251948"), "v@example.co.il");
        assert!(domain::vendor::VendorApplication::from_request_body(&body).is_ok());
        let body = onboarding_body(9, None, "v@example.co.il");
        assert!(domain::vendor::VendorApplication::from_request_body(&body).is_ok());
        let charge = charge_body(5, "order-5", true, "c@example.com");
        let items = &charge["items"][0];
        assert_eq!(
            charge["amount_agorot"].as_i64(),
            Some(
                items["quantity"].as_i64().unwrap() * items["unit_price_agorot"].as_i64().unwrap()
            )
        );
    }
}

//! What a chaos run found, and the queries that find it: the backlog that settling waits on, the
//! database's view of the runs (status, pauses and their reasons, waits, lost, duplicated and
//! stuck runs, the webhook backlog), the sandbox ledger's view (organizations per corporate
//! number, payments per order, the faults that fired), and canary secrets searched in the
//! processes' logs, the webhooks received and a plain dump of the database.
//!
//! The SQL here is report-only: ad-hoc reads of the chaos run's own database, written here rather
//! than in `crates/store` because nothing else needs them; the store's functions are used where
//! one exists (runs per status, the webhook delivery backlog). It must not write to the database,
//! and must never print a canary's value: findings name the canary's kind and the place only.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use aho_corasick::AhoCorasick;
use anyhow::Context;
use sandbox::Ledger;
use sqlx::PgPool;
use uuid::Uuid;

use super::provider::{CHARGE, CREATE_ORGANIZATION, OPEN_TERMINAL};
use super::receiver::Received;
use super::traffic::{Acquirer, Book};
use super::{ChaosReport, Profile, Settled, SupervisorReport};
use crate::cli::table::Table;

/// What settling waits for; all zero means settled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub pending: i64,
    pub running: i64,
    /// Running, with a lease that expired more than 10 s ago (the scheduler rescues every second).
    pub lease_expired: i64,
    /// Waiting although a signal they have not consumed was sent to them.
    pub signalled_but_waiting: i64,
    /// Charges waiting for a vendor that is ready.
    pub waiting_for_ready_vendor: i64,
    /// Onboardings waiting for the acquirer's approval, which the driver sends.
    pub awaiting_approval: i64,
    /// Outbox events not yet fanned out to the webhook endpoint.
    pub webhooks_unfanned: i64,
    /// Webhook deliveries pending.
    pub webhooks_pending: i64,
}

impl Backlog {
    /// Reads it (report-only query over every run of the chaos database).
    pub async fn read(pool: &PgPool) -> Result<Backlog, sqlx::Error> {
        let row: (i64, i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT
               count(*) FILTER (WHERE r.status = 'pending'),
               count(*) FILTER (WHERE r.status = 'running'),
               count(*) FILTER (WHERE r.status = 'running'
                                  AND r.lease_expires_at < now() - interval '10 seconds'),
               count(*) FILTER (WHERE r.status = 'waiting' AND EXISTS (
                   SELECT 1 FROM vendorflow.signals s
                   WHERE s.run_id = r.id AND s.consumed_at IS NULL)),
               count(*) FILTER (WHERE r.status = 'waiting' AND r.step_name = 'await_vendor_ready'
                                  AND v.onboarding_state = 'ready'),
               count(*) FILTER (WHERE r.status = 'waiting'
                                  AND r.step_name = 'await_terminal_approval'),
               (SELECT count(*) FROM vendorflow.outbox o WHERE NOT EXISTS (
                   SELECT 1 FROM vendorflow.webhook_fanout f WHERE f.outbox_id = o.id)),
               (SELECT count(*) FROM vendorflow.webhook_deliveries d WHERE d.status = 'pending')
             FROM vendorflow.runs r LEFT JOIN vendorflow.vendors v ON v.id = r.subject_id",
        )
        .fetch_one(pool)
        .await?;
        Ok(Backlog {
            pending: row.0,
            running: row.1,
            lease_expired: row.2,
            signalled_but_waiting: row.3,
            waiting_for_ready_vendor: row.4,
            awaiting_approval: row.5,
            webhooks_unfanned: row.6,
            webhooks_pending: row.7,
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == Backlog::default()
    }
}

/// A run as the report lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunLine {
    pub id: Uuid,
    pub workflow: String,
    pub step_name: String,
    pub status: String,
    /// The pause reason, or for a waiting run its vendor's onboarding state.
    pub detail: String,
    /// Running with its lease expired; waiting with a signal not consumed.
    pub flag: bool,
}

/// The database's view, read once the run has settled.
#[derive(Debug, Default)]
pub struct Database {
    /// Per workflow: runs per status.
    pub statuses: BTreeMap<String, Vec<(String, i64)>>,
    pub paused: Vec<RunLine>,
    pub waiting: Vec<RunLine>,
    /// Pending or running.
    pub unsettled: Vec<RunLine>,
    /// Accepted by the API, not in the database.
    pub lost: Vec<Uuid>,
    /// (workflow, vendor, order, runs) with more than one run.
    pub duplicate_runs: Vec<(String, Uuid, String, i64)>,
    /// (vendor, order, payments) with more than one payment recorded.
    pub duplicate_payments: Vec<(Uuid, String, i64)>,
    pub vendor_states: Vec<(String, i64)>,
    /// History events of interest, by kind.
    pub history: Vec<(String, i64)>,
    /// Attempts by outcome (`open` for none yet).
    pub attempts: Vec<(String, i64)>,
    pub outbox: i64,
    pub webhooks_unfanned: i64,
    pub webhooks_delivered: i64,
    pub webhooks_pending: i64,
    pub webhooks_dead: i64,
}

impl Database {
    /// Reads everything the report says about the database (report-only queries).
    pub async fn read(pool: &PgPool, marketplace: Uuid, book: &Book) -> anyhow::Result<Database> {
        let mut conn = pool.acquire().await?;
        let mut database = Database::default();
        for workflow in [steps::ONBOARDING_WORKFLOW, steps::CHARGE_WORKFLOW] {
            let filter = store::run_queries::RunFilter {
                workflow: Some(workflow.to_owned()),
                ..store::run_queries::RunFilter::default()
            };
            let counts =
                store::run_queries::count_by_status(&mut conn, marketplace, &filter).await?;
            database.statuses.insert(workflow.to_owned(), counts);
        }
        database.paused = sqlx::query_as(
            "SELECT id, workflow, step_name, status, coalesce(status_reason, '') AS detail,
                    false AS flag
             FROM vendorflow.runs WHERE marketplace_id = $1 AND status = 'paused'
             ORDER BY workflow, step_name, id",
        )
        .bind(marketplace)
        .fetch_all(&mut *conn)
        .await?;
        database.waiting = sqlx::query_as(
            "SELECT r.id, r.workflow, r.step_name, r.status,
                    coalesce(v.onboarding_state, '') AS detail,
                    EXISTS (SELECT 1 FROM vendorflow.signals s
                            WHERE s.run_id = r.id AND s.consumed_at IS NULL) AS flag
             FROM vendorflow.runs r LEFT JOIN vendorflow.vendors v ON v.id = r.subject_id
             WHERE r.marketplace_id = $1 AND r.status = 'waiting'
             ORDER BY r.workflow, r.step_name, r.id",
        )
        .bind(marketplace)
        .fetch_all(&mut *conn)
        .await?;
        database.unsettled = sqlx::query_as(
            "SELECT id, workflow, step_name, status,
                    coalesce(to_char(next_run_at, 'HH24:MI:SS'), '') AS detail,
                    coalesce(status = 'running' AND lease_expires_at < now(), false) AS flag
             FROM vendorflow.runs
             WHERE marketplace_id = $1 AND status IN ('pending', 'running')
             ORDER BY workflow, step_name, id",
        )
        .bind(marketplace)
        .fetch_all(&mut *conn)
        .await?;
        let accepted: Vec<Uuid> = book
            .onboardings
            .iter()
            .map(|o| o.run_id)
            .chain(book.charges.iter().map(|c| c.run_id))
            .collect();
        let present: BTreeSet<Uuid> =
            sqlx::query_scalar("SELECT id FROM vendorflow.runs WHERE id = ANY($1)")
                .bind(&accepted)
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .collect();
        database.lost = accepted
            .into_iter()
            .filter(|id| !present.contains(id))
            .collect();
        database.duplicate_runs = sqlx::query_as(
            "SELECT workflow, subject_id, coalesce(input ->> 'order_id', '') AS order_id, count(*)
             FROM vendorflow.runs
             WHERE marketplace_id = $1 AND workflow IN ('vendor_onboarding', 'vendor_charge')
             GROUP BY 1, 2, 3 HAVING count(*) > 1 ORDER BY 1, 2, 3",
        )
        .bind(marketplace)
        .fetch_all(&mut *conn)
        .await?;
        database.duplicate_payments = sqlx::query_as(
            "SELECT vendor_id, order_id, count(*) FROM vendorflow.vendor_payments
             GROUP BY 1, 2 HAVING count(*) > 1 ORDER BY 1, 2",
        )
        .fetch_all(&mut *conn)
        .await?;
        database.vendor_states = sqlx::query_as(
            "SELECT onboarding_state, count(*) FROM vendorflow.vendors
             WHERE marketplace_id = $1 GROUP BY 1 ORDER BY 1",
        )
        .bind(marketplace)
        .fetch_all(&mut *conn)
        .await?;
        database.history = sqlx::query_as(
            "SELECT kind, count(*) FROM vendorflow.run_history
             WHERE kind IN ('rescued', 'reconciled', 'backoff_scheduled', 'paused', 'signal_received')
             GROUP BY 1 ORDER BY 1",
        )
        .fetch_all(&mut *conn)
        .await?;
        database.attempts = sqlx::query_as(
            "SELECT coalesce(outcome, 'open'), count(*) FROM vendorflow.attempts
             GROUP BY 1 ORDER BY 1",
        )
        .fetch_all(&mut *conn)
        .await?;
        (
            database.outbox,
            database.webhooks_unfanned,
            database.webhooks_delivered,
        ) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM vendorflow.outbox),
                    (SELECT count(*) FROM vendorflow.outbox o WHERE NOT EXISTS (
                        SELECT 1 FROM vendorflow.webhook_fanout f WHERE f.outbox_id = o.id)),
                    (SELECT count(*) FROM vendorflow.webhook_deliveries WHERE status = 'delivered')",
        )
        .fetch_one(&mut *conn)
        .await?;
        for (_endpoint, pending, dead) in
            store::admin::delivery_backlog(&mut conn, marketplace).await?
        {
            database.webhooks_pending += pending;
            database.webhooks_dead += dead;
        }
        Ok(database)
    }
}

/// One canary: a secret planted or minted during the run, which must appear nowhere readable.
#[derive(Debug, Clone)]
struct Canary {
    kind: &'static str,
    value: String,
    /// Digits only: a match counts only between non-alphanumeric characters, so that the same
    /// digits inside a longer number or a hex string are not taken for a leak.
    digits: bool,
}

/// The canaries of a run.
#[derive(Debug, Default)]
pub struct Canaries {
    items: Vec<Canary>,
}

/// Where a kind of canary was found, and how often.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub kind: &'static str,
    pub place: String,
    pub count: usize,
}

impl Canaries {
    /// Adds a secret (ignored when too short to search for without false alarms).
    pub fn add(&mut self, kind: &'static str, value: &str) {
        if value.len() >= 8 {
            self.items.push(Canary {
                kind,
                value: value.to_owned(),
                digits: false,
            });
        }
    }

    /// Adds a secret made of digits (a bank account number).
    pub fn add_number(&mut self, kind: &'static str, value: &str) {
        if value.len() >= 8 && value.bytes().all(|b| b.is_ascii_digit()) {
            self.items.push(Canary {
                kind,
                value: value.to_owned(),
                digits: true,
            });
        }
    }

    /// How many canaries of each kind there are.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for canary in &self.items {
            *counts.entry(canary.kind).or_default() += 1;
        }
        counts
    }

    /// Searches every file and the webhook bodies, ignoring ASCII case.
    pub fn search(&self, files: &[PathBuf], webhooks: &[u8]) -> anyhow::Result<Vec<Finding>> {
        let searcher = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(self.items.iter().map(|canary| canary.value.as_bytes()))
            .context("building the canary searcher")?;
        let mut findings: BTreeMap<(&'static str, String), usize> = BTreeMap::new();
        let mut look = |place: String, haystack: &[u8]| {
            for found in searcher.find_overlapping_iter(haystack) {
                let canary = &self.items[found.pattern().as_usize()];
                let alnum = |at: Option<&u8>| at.is_some_and(u8::is_ascii_alphanumeric);
                if canary.digits
                    && (alnum(found.start().checked_sub(1).and_then(|i| haystack.get(i)))
                        || alnum(haystack.get(found.end())))
                {
                    continue;
                }
                *findings.entry((canary.kind, place.clone())).or_default() += 1;
            }
        };
        for file in files {
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let place = file
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            look(place, &bytes);
        }
        look("webhook bodies".to_owned(), webhooks);
        Ok(findings
            .into_iter()
            .map(|((kind, place), count)| Finding { kind, place, count })
            .collect())
    }
}

/// What the report is made from.
pub struct Inputs<'a> {
    pub profile: &'a Profile,
    pub book: &'a Book,
    pub chaos: &'a ChaosReport,
    pub acquirer: &'a Acquirer,
    pub supervisor: &'a SupervisorReport,
    pub settled: &'a Settled,
    pub ledger: &'a Ledger,
    pub database: &'a Database,
    pub received: &'a Received,
    pub canaries: &'a Canaries,
    pub found: &'a [Finding],
    pub searched_files: usize,
    pub worker_starts: usize,
}

/// The printed report and the failures it found.
pub struct Report {
    pub text: String,
    pub failures: Vec<String>,
}

/// At most this many examples of a problem are listed.
const EXAMPLES: usize = 5;

/// Builds the report.
pub fn render(inputs: &Inputs<'_>) -> Report {
    let Inputs {
        profile,
        book,
        chaos,
        acquirer,
        supervisor,
        settled,
        ledger,
        database,
        received,
        canaries,
        found,
        searched_files,
        worker_starts,
    } = inputs;
    let mut out = String::new();
    let mut failures = Vec::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };

    line(String::new());
    line(format!("== chaos report ({}) ==", profile.name));

    // The requests.
    line(format!(
        "requests: {} sent, {} accepted ({} onboardings, {} charges), {} needed a retry, {} \
         refused, {} without an answer, {} charges not sent",
        book.sent,
        book.onboardings.len() + book.charges.len(),
        book.onboardings.len(),
        book.charges.len(),
        book.retried,
        book.refused.len(),
        book.gave_up.len(),
        book.skipped_charges
    ));
    for example in book.refused.iter().chain(&book.gave_up).take(EXAMPLES) {
        line(format!("  e.g. {example}"));
    }
    let probes = &book.probes;
    line(format!(
        "idempotency probes: {} replays of the same key and body, {} new keys for an existing \
         vendor or order, {} same keys with another body; {} inconclusive, {} violations",
        probes.replays,
        probes.new_keys,
        probes.other_bodies,
        probes.inconclusive,
        probes.violations.len()
    ));
    for violation in probes.violations.iter().take(EXAMPLES) {
        line(format!("  {violation}"));
    }
    if !probes.violations.is_empty() {
        failures.push(format!(
            "{} idempotency violation(s)",
            probes.violations.len()
        ));
    }

    // The chaos.
    line(format!(
        "chaos: {} worker SIGKILLs ({} worker starts in all), PostgreSQL restarted {} (down {:.1}s), \
         {} unexpected exits, {} chaos errors; the acquirer signalled {} terminal approvals ({} \
         failed looks or signals, retried)",
        chaos.kills,
        worker_starts,
        if chaos.pg_restarted { "once" } else { "never" },
        chaos.pg_down.as_secs_f64(),
        supervisor.unexpected_exits.len(),
        chaos.errors.len(),
        acquirer.signalled.len(),
        acquirer.errors,
    ));
    for exit in supervisor.unexpected_exits.iter().take(EXAMPLES) {
        line(format!("  {exit}"));
    }
    for error in chaos.errors.iter().take(EXAMPLES) {
        line(format!("  chaos error: {error}"));
    }

    // The provider's ledger.
    let mut fired: BTreeMap<String, usize> = BTreeMap::new();
    let mut lost_answers: BTreeMap<&str, usize> = BTreeMap::new();
    for call in &ledger.calls {
        for fault in &call.faults {
            *fired.entry(fault.clone()).or_default() += 1;
        }
        if call.committed && !call.answered {
            *lost_answers
                .entry(short_endpoint(&call.endpoint))
                .or_default() += 1;
        }
    }
    line(format!(
        "provider: {} calls; faults fired: {}",
        ledger.calls.len(),
        words(&fired)
    ));
    line(format!(
        "  committed at the provider with the answer lost: {} (create {}, terminal {}, charge {})",
        lost_answers.values().sum::<usize>(),
        lost_answers
            .get(short_endpoint(CREATE_ORGANIZATION))
            .unwrap_or(&0),
        lost_answers
            .get(short_endpoint(OPEN_TERMINAL))
            .unwrap_or(&0),
        lost_answers.get(short_endpoint(CHARGE)).unwrap_or(&0),
    ));

    // Organizations per corporate number.
    let mut organizations: BTreeMap<&str, usize> = BTreeMap::new();
    for company in ledger
        .companies
        .iter()
        .filter(|c| c.created_by == Some(sandbox::DEV_MARKETPLACE_COMPANY_ID))
    {
        *organizations
            .entry(company.corporate_number.as_deref().unwrap_or(""))
            .or_default() += 1;
    }
    let duplicate_organizations: Vec<(&str, usize)> = organizations
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(number, count)| (*number, *count))
        .collect();
    let repeated_terminals = ledger.terminals.iter().filter(|t| t.requests > 1).count();
    line(format!(
        "organizations per corporate number: {} corporate numbers, {} organizations, {} \
         duplicated; terminals: {} ({} requested more than once, which SUMIT treats as one)",
        organizations.len(),
        organizations.values().sum::<usize>(),
        duplicate_organizations.len(),
        ledger.terminals.len(),
        repeated_terminals
    ));
    for (number, count) in duplicate_organizations.iter().take(EXAMPLES) {
        line(format!(
            "  corporate number {number}: {count} organizations"
        ));
    }
    if !duplicate_organizations.is_empty() {
        failures.push(format!(
            "{} corporate number(s) with more than one organization",
            duplicate_organizations.len()
        ));
    }

    // Charges per order.
    let mut payments: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for payment in &ledger.payments {
        let entry = payments
            .entry(payment.unique_identifier.as_deref().unwrap_or(""))
            .or_default();
        if payment.valid {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
    let duplicate_charges: Vec<(&str, (usize, usize))> = payments
        .iter()
        .filter(|(_, (approved, declined))| approved + declined > 1)
        .map(|(order, counts)| (*order, *counts))
        .collect();
    line(format!(
        "charges per order: {} orders charged at the provider ({} approved, {} declined \
         payments), {} charged more than once; in the database {} orders with more than one \
         payment, {} vendors or orders with more than one run",
        payments.len(),
        payments.values().map(|p| p.0).sum::<usize>(),
        payments.values().map(|p| p.1).sum::<usize>(),
        duplicate_charges.len(),
        database.duplicate_payments.len(),
        database.duplicate_runs.len(),
    ));
    for (order, (approved, declined)) in duplicate_charges.iter().take(EXAMPLES) {
        line(format!(
            "  {order}: {approved} approved and {declined} declined payments at the provider"
        ));
    }
    for (vendor, order, count) in database.duplicate_payments.iter().take(EXAMPLES) {
        line(format!(
            "  vendor {vendor} order {order}: {count} payments recorded"
        ));
    }
    for (workflow, vendor, order, count) in database.duplicate_runs.iter().take(EXAMPLES) {
        line(format!(
            "  {workflow} vendor {vendor} {order}: {count} runs"
        ));
    }
    if !duplicate_charges.is_empty() {
        failures.push(format!(
            "{} order(s) charged more than once at the provider",
            duplicate_charges.len()
        ));
    }
    if !database.duplicate_payments.is_empty() {
        failures.push(format!(
            "{} order(s) with more than one payment recorded",
            database.duplicate_payments.len()
        ));
    }
    if !database.duplicate_runs.is_empty() {
        failures.push(format!(
            "{} vendor(s) or order(s) with more than one run",
            database.duplicate_runs.len()
        ));
    }

    // Runs per status.
    line("runs per status:".to_owned());
    for (workflow, counts) in &database.statuses {
        let counts: BTreeMap<String, usize> = counts
            .iter()
            .map(|(status, count)| (status.clone(), usize::try_from(*count).unwrap_or(0)))
            .collect();
        line(format!("  {workflow}: {}", words(&counts)));
    }
    line(format!(
        "  vendors by onboarding state: {}",
        words(
            &database
                .vendor_states
                .iter()
                .map(|(state, count)| (state.clone(), usize::try_from(*count).unwrap_or(0)))
                .collect()
        )
    ));
    line(format!(
        "  history: {}; attempts: {}",
        words(
            &database
                .history
                .iter()
                .map(|(kind, count)| (kind.clone(), usize::try_from(*count).unwrap_or(0)))
                .collect()
        ),
        words(
            &database
                .attempts
                .iter()
                .map(|(outcome, count)| (outcome.clone(), usize::try_from(*count).unwrap_or(0)))
                .collect()
        )
    ));

    // Paused runs by reason, with what the provider's ledger shows.
    line(format!(
        "paused runs by reason ({}; reported, not failures):",
        database.paused.len()
    ));
    let onboardings: BTreeMap<Uuid, &str> = book
        .onboardings
        .iter()
        .map(|o| (o.run_id, o.corporate_number.as_str()))
        .collect();
    let orders: BTreeMap<Uuid, &str> = book
        .charges
        .iter()
        .map(|c| (c.run_id, c.order_id.as_str()))
        .collect();
    let mut reasons: BTreeMap<(String, String, String), (usize, usize, usize)> = BTreeMap::new();
    for run in &database.paused {
        let exists = exists_at_provider(ledger, run, &onboardings, &orders);
        let entry = reasons
            .entry((
                run.workflow.clone(),
                run.step_name.clone(),
                generalize(&run.detail),
            ))
            .or_default();
        entry.0 += 1;
        match exists {
            Some(true) => entry.1 += 1,
            Some(false) => entry.2 += 1,
            None => {}
        }
    }
    let mut table = Table::new(&["runs", "workflow", "step", "at SUMIT", "reason"]);
    for ((workflow, step, reason), (count, exists, absent)) in &reasons {
        let at_provider = match (exists, absent) {
            (0, 0) => "-".to_owned(),
            (exists, 0) => format!("exists ({exists})"),
            (0, absent) => format!("absent ({absent})"),
            (exists, absent) => format!("exists {exists}, absent {absent}"),
        };
        table.row(vec![
            count.to_string(),
            workflow.clone(),
            step.clone(),
            at_provider,
            crate::cli::truncate(reason, 220),
        ]);
    }
    if !table.is_empty() {
        for text in table.render().lines() {
            line(format!("  {text}"));
        }
    }

    // Waiting runs.
    let mut waits: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for run in &database.waiting {
        let why = match run.step_name.as_str() {
            "await_vendor_ready" => format!("vendor {}", run.detail),
            "await_terminal_approval" if acquirer.signalled.contains(&run.id) => {
                "approval signalled".to_owned()
            }
            "await_terminal_approval" => "approval not signalled".to_owned(),
            _ => String::new(),
        };
        *waits
            .entry((run.workflow.clone(), run.step_name.clone(), why))
            .or_default() += 1;
    }
    line(format!(
        "waiting runs: {}{}",
        database.waiting.len(),
        if waits.is_empty() { "" } else { ":" }
    ));
    for ((workflow, step, why), count) in &waits {
        line(format!("  {count} {workflow} at {step} ({why})"));
    }

    // Stuck and lost runs.
    let lease_expired: Vec<&RunLine> = database.unsettled.iter().filter(|r| r.flag).collect();
    let signalled_waiting: Vec<&RunLine> = database.waiting.iter().filter(|r| r.flag).collect();
    let waiting_for_ready: Vec<&RunLine> = database
        .waiting
        .iter()
        .filter(|r| r.step_name == "await_vendor_ready" && r.detail == "ready")
        .collect();
    line(format!(
        "settling: {} in {}s (bound {}s); most runs seen with a lease expired >10s and not \
         rescued at one look: {}",
        if settled.settled {
            "settled"
        } else {
            "NOT settled"
        },
        settled.took.as_secs(),
        profile.settle.as_secs(),
        settled.max_lease_expired
    ));
    line(format!(
        "stuck runs: {} pending or running after settling ({} of them running with an expired \
         lease, unrescued), {} waiting with a signal not consumed, {} charges waiting for a \
         ready vendor",
        database.unsettled.len(),
        lease_expired.len(),
        signalled_waiting.len(),
        waiting_for_ready.len(),
    ));
    for run in database
        .unsettled
        .iter()
        .chain(signalled_waiting.iter().copied())
        .chain(waiting_for_ready.iter().copied())
        .take(EXAMPLES)
    {
        line(format!(
            "  {} {} {} at {}: `vendorflow runs show {}` tells why",
            run.status, run.workflow, run.id, run.step_name, run.id
        ));
    }
    let stuck = database.unsettled.len() + signalled_waiting.len() + waiting_for_ready.len();
    if stuck > 0 {
        failures.push(format!("{stuck} stuck run(s)"));
    }
    if !lease_expired.is_empty() {
        failures.push(format!(
            "{} run(s) whose lease expired unrescued",
            lease_expired.len()
        ));
    }
    line(format!(
        "lost runs (accepted by the API, not in the database): {}",
        database.lost.len()
    ));
    for id in database.lost.iter().take(EXAMPLES) {
        line(format!("  run {id}"));
    }
    if !database.lost.is_empty() {
        failures.push(format!("{} lost run(s)", database.lost.len()));
    }

    // Webhooks.
    line(format!(
        "webhooks: {} outbox events, {} not fanned out, deliveries {} delivered / {} pending / \
         {} dead; the receiver verified {} deliveries of {} distinct events ({}), {} bad \
         signatures",
        database.outbox,
        database.webhooks_unfanned,
        database.webhooks_delivered,
        database.webhooks_pending,
        database.webhooks_dead,
        received.verified,
        received.ids.len(),
        words(&received.by_type),
        received.rejected
    ));
    let backlog = database.webhooks_unfanned + database.webhooks_pending;
    if backlog > 0 {
        line(format!(
            "  webhook backlog: {backlog} event(s) not delivered yet"
        ));
    }
    if received.rejected > 0 {
        failures.push(format!(
            "{} webhook(s) with a bad signature",
            received.rejected
        ));
    }

    // Canaries.
    let counts = canaries.counts();
    line(format!(
        "canaries: {} planted ({}); searched in {} log files of the API and workers, the webhook \
         bodies and a plain pg_dump: {} found",
        counts.values().sum::<usize>(),
        words(
            &counts
                .iter()
                .map(|(kind, count)| ((*kind).to_owned(), *count))
                .collect()
        ),
        searched_files.saturating_sub(1),
        found.iter().map(|f| f.count).sum::<usize>()
    ));
    for finding in found.iter().take(EXAMPLES * 2) {
        line(format!(
            "  {} found {} time(s) in {}",
            finding.kind, finding.count, finding.place
        ));
    }
    if !found.is_empty() {
        failures.push(format!(
            "canaries found in {} place(s)",
            found
                .iter()
                .map(|f| f.place.as_str())
                .collect::<BTreeSet<_>>()
                .len()
        ));
    }
    if !settled.settled {
        failures.push(format!(
            "the runs did not settle within {}s: {:?}",
            profile.settle.as_secs(),
            settled.last
        ));
    }
    Report {
        text: out,
        failures,
    }
}

/// Whether the object a paused run was creating exists at the provider: the organization for
/// `create_organization` and `capture_api_keys`, the terminal for `open_terminal`, a payment
/// for the order for `charge`; `None` for other steps.
fn exists_at_provider(
    ledger: &Ledger,
    run: &RunLine,
    onboardings: &BTreeMap<Uuid, &str>,
    orders: &BTreeMap<Uuid, &str>,
) -> Option<bool> {
    match run.step_name.as_str() {
        "create_organization" | "capture_api_keys" => {
            let number = onboardings.get(&run.id)?;
            Some(!ledger.companies_with_corporate_number(number).is_empty())
        }
        "open_terminal" => {
            let number = onboardings.get(&run.id)?;
            let companies = ledger.companies_with_corporate_number(number);
            Some(
                companies
                    .iter()
                    .any(|company| ledger.terminal(company.company_id).is_some()),
            )
        }
        "charge" | "conclude" => {
            let order = orders.get(&run.id)?;
            Some(!ledger.payments_with_unique_identifier(order).is_empty())
        }
        _ => None,
    }
}

/// A reason with the numbers and ids of one run replaced by `#`, so that equal reasons group.
fn generalize(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let digits = run.bytes().filter(u8::is_ascii_digit).count();
        if digits >= 3 {
            out.push('#');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in reason.chars() {
        if c.is_ascii_hexdigit() || c == '-' {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// `/billing/payments/charge/` → `charge`.
fn short_endpoint(endpoint: &str) -> &str {
    match endpoint {
        CREATE_ORGANIZATION => "create",
        OPEN_TERMINAL => "terminal",
        CHARGE => "charge",
        other => other,
    }
}

/// `a 3, b 5`, or `none`.
fn words(counts: &BTreeMap<String, usize>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    let mut text = String::new();
    for (name, count) in counts {
        if !text.is_empty() {
            text.push_str(", ");
        }
        let _infallible = write!(text, "{name} {count}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_group_without_their_numbers() {
        assert_eq!(
            generalize("terminal request of company 100042 has an unknown outcome"),
            "terminal request of company # has an unknown outcome"
        );
        assert_eq!(
            generalize("run 0190a3c4-7b2e-7cc1-9a55-3f1e2d4c5b6a paused"),
            "run # paused"
        );
        assert_eq!(generalize("a bad day"), "a bad day");
    }

    fn company(id: i64, corporate_number: &str) -> serde_json::Value {
        serde_json::json!({
            "company_id": id, "created_by": sandbox::DEV_MARKETPLACE_COMPANY_ID, "name": "V",
            "corporate_number": corporate_number, "company_type": 2, "email_address": null,
            "phone": null, "applications": ["Accounting"], "api_key_last4": "ABCD",
            "created_at": "2025-06-09T10:00:00"
        })
    }

    #[test]
    fn duplicates_and_lost_runs_fail_the_run_and_pauses_do_not() {
        let ledger: Ledger = serde_json::from_value(serde_json::json!({
            "companies": [company(100001, "511000009"), company(100002, "511000009")],
            "terminals": [], "customers": [], "payments": [], "documents": [], "calls": []
        }))
        .unwrap();
        let paused_run = Uuid::new_v4();
        let book = Book {
            onboardings: vec![super::super::traffic::Onboarding {
                run_id: paused_run,
                vendor_id: Uuid::new_v4(),
                corporate_number: "511000009".to_owned(),
                clearing: false,
            }],
            ..Book::default()
        };
        let lost = Uuid::new_v4();
        let database = Database {
            paused: vec![RunLine {
                id: paused_run,
                workflow: "vendor_onboarding".to_owned(),
                step_name: "capture_api_keys".to_owned(),
                status: "paused".to_owned(),
                detail: "keys of organization 100001 are not known".to_owned(),
                flag: false,
            }],
            lost: vec![lost],
            ..Database::default()
        };
        let settled = Settled {
            settled: true,
            ..Settled::default()
        };
        let report = render(&Inputs {
            profile: &Profile::short(),
            book: &book,
            chaos: &ChaosReport::default(),
            acquirer: &Acquirer::default(),
            supervisor: &SupervisorReport::default(),
            settled: &settled,
            ledger: &ledger,
            database: &database,
            received: &Received::default(),
            canaries: &Canaries::default(),
            found: &[],
            searched_files: 1,
            worker_starts: 3,
        });
        assert_eq!(
            report.failures,
            vec![
                "1 corporate number(s) with more than one organization".to_owned(),
                "1 lost run(s)".to_owned(),
            ]
        );
        let pause = report
            .text
            .lines()
            .find(|line| line.contains("capture_api_keys"))
            .unwrap_or_default();
        assert!(
            pause.contains("exists (1)") && pause.ends_with("keys of organization # are not known"),
            "{}",
            report.text
        );
    }

    #[test]
    fn numeric_canaries_match_only_as_whole_numbers() {
        let dir = std::env::temp_dir().join(format!("chaos-canary-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("worker-1.1.log");
        std::fs::write(
            &log,
            "{\"x\":\"deadbeef736251948cafe\"}\n{\"account\":\"736251948\"}\nKEY-ABCDEFGH\n",
        )
        .unwrap();
        let mut canaries = Canaries::default();
        canaries.add_number("a bank account", "736251948");
        canaries.add("an api key", "key-abcdefgh");
        canaries.add("too short", "abc");
        let found = canaries.search(&[log], b"nothing here").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            found,
            vec![
                Finding {
                    kind: "a bank account",
                    place: "worker-1.1.log".to_owned(),
                    count: 1
                },
                Finding {
                    kind: "an api key",
                    place: "worker-1.1.log".to_owned(),
                    count: 1
                },
            ]
        );
    }
}

//! Fault injection: per-endpoint rules, drawn from a seeded generator so runs are repeatable.
//!
//! A [`FaultPlan`] maps an endpoint path (`/billing/payments/charge/`, or `*` for every SUMIT
//! endpoint) to an ordered list of [`FaultRule`]s. On each call the rules of the endpoint are
//! evaluated first, then the `*` rules. Latency rules add delay and let evaluation continue; the
//! first other rule that fires decides the call's fate. A rule fires on each of its `next` N
//! matching calls, or with its `probability`, or always when it has neither.
//!
//! Every endpoint has its own generator seeded from the configured seed and the path, so the
//! sequence of outcomes on one endpoint does not depend on traffic to other endpoints.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// Rules by endpoint path. Serialized as a JSON object keyed by path:
/// `{"/billing/payments/charge/": [{"kind": "commit_then_drop", "next": 1}]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FaultPlan {
    pub endpoints: BTreeMap<String, Vec<FaultRule>>,
}

impl FaultPlan {
    /// A plan without faults.
    pub fn none() -> Self {
        FaultPlan::default()
    }

    /// Adds a rule for an endpoint path (`*` for every SUMIT endpoint), after its other rules.
    #[must_use]
    pub fn on(mut self, endpoint: &str, rule: FaultRule) -> Self {
        self.endpoints
            .entry(normalize_endpoint(endpoint))
            .or_default()
            .push(rule);
        self
    }

    /// Appends every rule of `other` after this plan's rules for the same endpoints.
    pub fn merge(&mut self, other: FaultPlan) {
        for (endpoint, rules) in other.endpoints {
            self.endpoints
                .entry(normalize_endpoint(&endpoint))
                .or_default()
                .extend(rules);
        }
    }

    /// Checks probabilities and parameters, so a bad plan is refused when it is set rather than
    /// misbehaving later.
    pub fn validate(&self) -> Result<(), FaultPlanError> {
        for (endpoint, rules) in &self.endpoints {
            if endpoint != "*" && !endpoint.starts_with('/') {
                return Err(FaultPlanError(format!(
                    "endpoint {endpoint:?} must be a path starting with '/' or '*'"
                )));
            }
            for rule in rules {
                rule.validate()
                    .map_err(|e| FaultPlanError(format!("{endpoint}: {e}")))?;
            }
        }
        Ok(())
    }
}

/// Why a fault plan was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault plan: {0}")]
pub struct FaultPlanError(pub String);

/// One rule: a fault and when it fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    #[serde(flatten)]
    pub fault: Fault,
    /// Fire with this probability (0.0 to 1.0) on each call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Fire on each of the next N calls, then never again. Counts down as it fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<u32>,
}

impl FaultRule {
    /// Fires on every call.
    pub fn always(fault: Fault) -> Self {
        FaultRule {
            fault,
            probability: None,
            next: None,
        }
    }

    /// Fires on each of the next `n` calls.
    pub fn next(n: u32, fault: Fault) -> Self {
        FaultRule {
            fault,
            probability: None,
            next: Some(n),
        }
    }

    /// Fires with probability `p` on each call.
    pub fn with_probability(p: f64, fault: Fault) -> Self {
        FaultRule {
            fault,
            probability: Some(p),
            next: None,
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.probability.is_some() && self.next.is_some() {
            return Err("a rule takes either `probability` or `next`, not both".into());
        }
        if let Some(p) = self.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err(format!("probability {p} is outside 0.0..=1.0"));
        }
        match &self.fault {
            Fault::HttpError { status } if !(400..=599).contains(status) || *status == 429 => {
                Err(format!(
                    "http_error status {status} must be a 4xx or 5xx other than 429 (use rate_limited)"
                ))
            }
            Fault::LongTail { median_ms, p99_ms } if *median_ms == 0 || p99_ms < median_ms => {
                Err("long_tail needs 0 < median_ms <= p99_ms".into())
            }
            _ => Ok(()),
        }
    }
}

/// What goes wrong. Serialized with a `kind` tag, for example `{"kind": "http_error",
/// "status": 503}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Adds a fixed delay before the call is handled; the call then proceeds (or meets a later
    /// rule).
    Latency { ms: u64 },
    /// Adds a log-normal delay with the given median and 99th percentile, the long-tail shape of
    /// live calls (reference §7.10). Capped at ten times the 99th percentile.
    LongTail { median_ms: u64, p99_ms: u64 },
    /// Answers with this HTTP status and an HTML error page, without applying the request.
    HttpError { status: u16 },
    /// Answers 429 with `Retry-After: <retry_after_secs>`, without applying the request.
    RateLimited { retry_after_secs: u64 },
    /// Holds the connection for `ms` milliseconds (other requests proceed meanwhile). Without
    /// `commit` the request is then dropped unapplied and the connection closed; with `commit`
    /// the request is applied at once and its answer sent only after the delay.
    Hang {
        ms: u64,
        #[serde(default)]
        commit: bool,
    },
    /// Closes the connection abruptly (TCP reset) after reading the request, without applying it.
    Reset,
    /// Applies the request, then resets the connection instead of answering: the provider
    /// committed and the caller cannot know.
    CommitThenDrop,
    /// Applies the request and answers HTTP 200 with an HTML page instead of the JSON envelope,
    /// as a misbehaving proxy or a server error page would.
    GarbledBody,
}

impl Fault {
    pub(crate) fn label(&self) -> String {
        match self {
            Fault::Latency { ms } => format!("latency {ms}ms"),
            Fault::LongTail { median_ms, p99_ms } => format!("long_tail {median_ms}/{p99_ms}ms"),
            Fault::HttpError { status } => format!("http_error {status}"),
            Fault::RateLimited { retry_after_secs } => format!("rate_limited {retry_after_secs}s"),
            Fault::Hang { ms, commit } => format!("hang {ms}ms commit={commit}"),
            Fault::Reset => "reset".into(),
            Fault::CommitThenDrop => "commit_then_drop".into(),
            Fault::GarbledBody => "garbled_body".into(),
        }
    }
}

/// The fate of one call as decided by the plan.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Decision {
    pub(crate) delay: Duration,
    pub(crate) action: Option<Fault>,
    pub(crate) labels: Vec<String>,
}

/// The plan in force plus the generators; lives inside the sandbox's mutex.
#[derive(Debug)]
pub(crate) struct FaultEngine {
    seed: u64,
    plan: FaultPlan,
    rngs: HashMap<String, StdRng>,
}

impl FaultEngine {
    pub(crate) fn new(seed: u64, plan: FaultPlan) -> Self {
        FaultEngine {
            seed,
            plan,
            rngs: HashMap::new(),
        }
    }

    pub(crate) fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    pub(crate) fn set_plan(&mut self, plan: FaultPlan) {
        self.plan = plan;
    }

    pub(crate) fn merge_plan(&mut self, plan: FaultPlan) {
        self.plan.merge(plan);
    }

    /// Decides the fate of one call to `endpoint`, consuming `next` counts of rules that fire.
    pub(crate) fn decide(&mut self, endpoint: &str) -> Decision {
        let seed = self.seed;
        let rng = self
            .rngs
            .entry(endpoint.to_string())
            .or_insert_with(|| StdRng::seed_from_u64(seed ^ fnv1a(endpoint)));
        let mut decision = Decision::default();
        for key in [endpoint, "*"] {
            let Some(rules) = self.plan.endpoints.get_mut(key) else {
                continue;
            };
            for rule in rules.iter_mut() {
                if decision.action.is_some() {
                    return decision;
                }
                // Every probabilistic rule draws exactly once per call, fired or not, so a
                // run's sequence depends only on the seed and the order of calls.
                let fires = match (rule.next, rule.probability) {
                    (Some(0), _) => false,
                    (Some(n), _) => {
                        rule.next = Some(n - 1);
                        true
                    }
                    (None, Some(p)) => rng.random::<f64>() < p,
                    (None, None) => true,
                };
                if !fires {
                    continue;
                }
                decision.labels.push(rule.fault.label());
                match &rule.fault {
                    Fault::Latency { ms } => decision.delay += Duration::from_millis(*ms),
                    Fault::LongTail { median_ms, p99_ms } => {
                        decision.delay += long_tail_delay(rng, *median_ms, *p99_ms);
                    }
                    other => decision.action = Some(other.clone()),
                }
            }
        }
        decision
    }
}

/// Samples a log-normal delay whose median and 99th percentile are the given values.
fn long_tail_delay(rng: &mut StdRng, median_ms: u64, p99_ms: u64) -> Duration {
    // Box-Muller: a standard normal from two uniforms; 1 - u keeps the logarithm finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    let mu = (median_ms as f64).ln();
    // The 99th percentile of a normal lies 2.326 standard deviations above the mean.
    let sigma = ((p99_ms as f64) / (median_ms as f64)).ln() / 2.326;
    let ms = (mu + sigma * z).exp().min(10.0 * p99_ms as f64);
    Duration::from_micros((ms * 1000.0) as u64)
}

fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Endpoints are matched with their trailing slash, as the real paths are written.
pub(crate) fn normalize_endpoint(endpoint: &str) -> String {
    if endpoint == "*" || endpoint.ends_with('/') {
        endpoint.to_string()
    } else {
        format!("{endpoint}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHARGE: &str = "/billing/payments/charge/";

    #[test]
    fn a_next_n_rule_fires_exactly_n_times() {
        let plan = FaultPlan::none().on(CHARGE, FaultRule::next(2, Fault::Reset));
        let mut engine = FaultEngine::new(7, plan);
        let fired: Vec<bool> = (0..4)
            .map(|_| engine.decide(CHARGE).action.is_some())
            .collect();
        assert_eq!(fired, [true, true, false, false]);
        assert!(engine.decide("/billing/payments/get/").action.is_none());
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence_and_another_seed_differs() {
        let plan = FaultPlan::none().on(
            CHARGE,
            FaultRule::with_probability(0.5, Fault::HttpError { status: 503 }),
        );
        let run = |seed| {
            let mut engine = FaultEngine::new(seed, plan.clone());
            (0..64)
                .map(|_| engine.decide(CHARGE).action.is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        let fired = run(42).iter().filter(|f| **f).count();
        assert!((10..=54).contains(&fired), "{fired} of 64 fired at p=0.5");
    }

    #[test]
    fn traffic_on_other_endpoints_does_not_change_an_endpoints_sequence() {
        let plan = FaultPlan::none().on(
            "*",
            FaultRule::with_probability(0.3, Fault::HttpError { status: 500 }),
        );
        let mut quiet = FaultEngine::new(9, plan.clone());
        let mut busy = FaultEngine::new(9, plan);
        let mut a = Vec::new();
        let mut b = Vec::new();
        for _ in 0..32 {
            a.push(quiet.decide(CHARGE).action.is_some());
            busy.decide("/billing/payments/get/");
            b.push(busy.decide(CHARGE).action.is_some());
        }
        assert_eq!(a, b);
    }

    #[test]
    fn latency_accumulates_and_the_first_terminal_fault_wins() {
        let plan = FaultPlan::none()
            .on(CHARGE, FaultRule::always(Fault::Latency { ms: 5 }))
            .on(CHARGE, FaultRule::always(Fault::Reset))
            .on("*", FaultRule::always(Fault::Latency { ms: 7 }))
            .on("*", FaultRule::always(Fault::CommitThenDrop));
        let mut engine = FaultEngine::new(1, plan);
        let d = engine.decide(CHARGE);
        assert_eq!(d.delay, Duration::from_millis(5));
        assert_eq!(d.action, Some(Fault::Reset));
        let d = engine.decide("/billing/payments/get/");
        assert_eq!(d.delay, Duration::from_millis(7));
        assert_eq!(d.action, Some(Fault::CommitThenDrop));
    }

    #[test]
    fn long_tail_delays_have_roughly_the_configured_median() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut samples: Vec<Duration> = (0..2001)
            .map(|_| long_tail_delay(&mut rng, 100, 1000))
            .collect();
        samples.sort();
        let median = samples[1000].as_millis();
        assert!((80..=125).contains(&median), "median {median}ms");
        assert!(samples[2000] <= Duration::from_secs(10));
    }

    #[test]
    fn plans_read_from_json_as_documented() {
        let plan: FaultPlan = serde_json::from_str(
            r#"{"/billing/payments/charge/": [
                    {"kind": "commit_then_drop", "next": 1},
                    {"kind": "http_error", "status": 503, "probability": 0.1}],
                "*": [{"kind": "long_tail", "median_ms": 40, "p99_ms": 1200},
                      {"kind": "hang", "ms": 1000},
                      {"kind": "rate_limited", "retry_after_secs": 2}]}"#,
        )
        .unwrap();
        plan.validate().unwrap();
        assert_eq!(plan.endpoints[CHARGE][0].fault, Fault::CommitThenDrop);
        assert_eq!(
            plan.endpoints["*"][1].fault,
            Fault::Hang {
                ms: 1000,
                commit: false
            }
        );
        let bad: FaultPlan =
            serde_json::from_str(r#"{"*": [{"kind": "reset", "probability": 1.5}]}"#).unwrap();
        assert!(bad.validate().is_err());
    }
}

//! The workflow-definition model, its parser from TOML and its validation.
//!
//! A definition is data (`workflows/*.toml`, documented in workflows/README.md): a name, a
//! version, the steps in order, the events the engine emits on run transitions, and the business
//! outcomes a step may end a run with. Parsing checks everything that can be checked without the
//! engine: shapes, durations, duplicate steps, and (through a [`Catalog`]) that every handler,
//! poll handler, condition and signal named is known. Every error names the file, the line, the
//! step and what is wrong, and all errors of a file are reported together.
//!
//! Pure: the caller reads the file and passes its text in.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::run::{OUTCOME_COMPLETED, RunStatus};

/// A validated workflow definition.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowDefinition {
    /// The workflow's name, unique among the definitions loaded together.
    pub name: String,
    /// The author's version number; runs pin it (with the content hash) when they start.
    pub version: u32,
    /// What the workflow is for.
    pub description: Option<String>,
    /// The steps, in order.
    pub steps: Vec<StepDefinition>,
    /// Business outcomes a step may end a run with, besides `completed`.
    pub outcomes: Vec<String>,
    /// Outbox events the engine writes on run transitions.
    pub events: RunEvents,
}

impl WorkflowDefinition {
    /// The index of the step named `name`.
    pub fn step_index(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }

    /// Whether a step waits for the signal `name`.
    pub fn waits_for(&self, signal: &str) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(&s.kind, StepKind::Wait(w) if w.signal == signal))
    }

    /// Whether `outcome` is one this workflow declares.
    pub fn declares_outcome(&self, outcome: &str) -> bool {
        self.outcomes.iter().any(|o| o == outcome)
    }

    /// The longest time a handler of this workflow may run (action timeouts and poll timeouts).
    pub fn longest_timeout(&self) -> Duration {
        self.steps
            .iter()
            .map(|s| match &s.kind {
                StepKind::Action(a) => a.timeout,
                StepKind::Wait(w) => w.poll.as_ref().map_or(Duration::ZERO, |p| p.timeout),
            })
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

/// The outbox event types the engine writes when a run changes status.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunEvents {
    /// Written when the run succeeds with outcome `completed`.
    pub succeeded: Option<String>,
    /// Written when the run fails.
    pub failed: Option<String>,
    /// Written when the run pauses (for any reason).
    pub paused: Option<String>,
    /// Written when the run is cancelled.
    pub cancelled: Option<String>,
    /// Written when a step ends the run with a declared business outcome, by outcome.
    pub outcomes: BTreeMap<String, String>,
}

impl RunEvents {
    /// The event type for a run that ended as `succeeded` with `outcome`.
    pub fn for_outcome(&self, outcome: &str) -> Option<&str> {
        if outcome == OUTCOME_COMPLETED {
            self.succeeded.as_deref()
        } else {
            self.outcomes.get(outcome).map(String::as_str)
        }
    }
}

/// One step of a workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDefinition {
    /// The step's name, unique in its workflow.
    pub name: String,
    /// A condition on the run's input; the step is skipped when it does not hold.
    pub when: Option<Condition>,
    /// What the step does.
    pub kind: StepKind,
    /// The line of the file where the step's name is written.
    pub line: usize,
}

/// A named condition on the run's input, possibly negated (`when = "!clearing"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The registered condition's name.
    pub name: String,
    /// Whether the step runs when the condition is false instead.
    pub negated: bool,
}

/// An action calls a handler; a wait sleeps until a signal, a poll or a deadline.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// Call a registered handler under a timeout and a retry policy.
    Action(ActionStep),
    /// Wait for a named signal.
    Wait(WaitStep),
}

/// An action step.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionStep {
    /// The registered handler's name.
    pub handler: String,
    /// How long one attempt may take; after it the outcome is unknown.
    pub timeout: Duration,
    /// How failures are retried.
    pub retry: RetryPolicy,
}

/// A wait step.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitStep {
    /// The signal that completes the wait.
    pub signal: String,
    /// A handler that checks the condition at the provider, on a schedule.
    pub poll: Option<PollSpec>,
    /// When the wait gives up, and what happens then.
    pub deadline: Option<Deadline>,
    /// A reminder event written to the outbox periodically while the run waits.
    pub reminder: Option<Reminder>,
}

/// A wait's poll.
#[derive(Debug, Clone, PartialEq)]
pub struct PollSpec {
    /// The registered poll handler's name.
    pub handler: String,
    /// Time between polls.
    pub every: Duration,
    /// How long one poll may take.
    pub timeout: Duration,
}

/// A wait's deadline, counted from when the run began waiting.
#[derive(Debug, Clone, PartialEq)]
pub struct Deadline {
    /// How long the run may wait.
    pub after: Duration,
    /// What happens when the deadline passes.
    pub action: DeadlineAction,
}

/// What a passed deadline does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineAction {
    /// The run fails.
    Fail,
    /// The run pauses for an operator.
    Pause,
    /// The run moves on to the next step without the signal.
    Continue,
}

/// A wait's periodic reminder.
#[derive(Debug, Clone, PartialEq)]
pub struct Reminder {
    /// Time between reminders.
    pub every: Duration,
    /// The outbox event type written.
    pub event: String,
}

/// How an action step's failures are retried. Backoff is persisted by the engine as the run's
/// `next_run_at`, so a restart loses no schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts allowed, the first included.
    pub max_attempts: u32,
    /// The delay after the first failure.
    pub initial_backoff: Duration,
    /// The largest delay.
    pub max_backoff: Duration,
    /// Each further failure multiplies the delay by this.
    pub multiplier: f64,
    /// Whether the delay is drawn uniformly from zero to the computed value ("full jitter").
    pub jitter: Jitter,
    /// What happens when the attempts run out.
    pub on_exhaustion: OnExhaustion,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            multiplier: 2.0,
            jitter: Jitter::Full,
            on_exhaustion: OnExhaustion::Fail,
        }
    }
}

/// Jitter applied to the computed backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// A uniform draw between zero and the computed delay.
    Full,
    /// The computed delay exactly.
    None,
}

/// What happens when a step's attempts run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExhaustion {
    /// The run fails.
    Fail,
    /// The run pauses for an operator.
    Pause,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RetryDecision {
    /// Try again after this delay.
    RetryAfter(Duration),
    /// No attempts are left.
    Exhausted(OnExhaustion),
}

impl RetryPolicy {
    /// The backoff after the `failures`-th failure (1 for the first), given a uniform `sample`
    /// in `[0, 1)` for the jitter: `min(max, initial × multiplier^(failures−1))`, times `sample`
    /// under full jitter.
    pub fn delay(&self, failures: u32, sample: f64) -> Duration {
        let exponent = i32::try_from(failures.saturating_sub(1)).unwrap_or(i32::MAX);
        let computed = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exponent);
        let capped = computed.min(self.max_backoff.as_secs_f64());
        let seconds = match self.jitter {
            Jitter::Full => capped * sample.clamp(0.0, 1.0),
            Jitter::None => capped,
        };
        Duration::try_from_secs_f64(seconds).unwrap_or(self.max_backoff)
    }

    /// The decision after a failed attempt, when `attempts_in_budget` attempts (this one
    /// included) have been made since the retry budget began. A provider's `retry_after` is
    /// honoured as given.
    pub fn after_failure(
        &self,
        attempts_in_budget: u32,
        retry_after: Option<Duration>,
        sample: f64,
    ) -> RetryDecision {
        if attempts_in_budget >= self.max_attempts {
            return RetryDecision::Exhausted(self.on_exhaustion);
        }
        RetryDecision::RetryAfter(
            retry_after.unwrap_or_else(|| self.delay(attempts_in_budget, sample)),
        )
    }
}

/// The names a definition may refer to: the handlers, poll handlers, conditions and signals the
/// binary registered. The engine's registry implements it.
pub trait Catalog {
    /// Whether an action handler of this name is registered.
    fn has_handler(&self, name: &str) -> bool;
    /// Whether a poll handler of this name is registered.
    fn has_poll(&self, name: &str) -> bool;
    /// Whether a condition of this name is registered.
    fn has_condition(&self, name: &str) -> bool;
    /// Whether a signal of this name is registered.
    fn has_signal(&self, name: &str) -> bool;
    /// The registered names of a kind (`handler`, `poll handler`, `condition`, `signal`), for
    /// error messages.
    fn known(&self, kind: &str) -> Vec<String>;
}

/// A catalog that knows every name: for reading back a definition a run pinned, where only the
/// structure is needed.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAll;

impl Catalog for AcceptAll {
    fn has_handler(&self, _: &str) -> bool {
        true
    }
    fn has_poll(&self, _: &str) -> bool {
        true
    }
    fn has_condition(&self, _: &str) -> bool {
        true
    }
    fn has_signal(&self, _: &str) -> bool {
        true
    }
    fn known(&self, _: &str) -> Vec<String> {
        Vec::new()
    }
}

/// One problem in a definition file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    /// The file, as the caller named it.
    pub file: String,
    /// The line (1-based), when known.
    pub line: Option<usize>,
    /// The step concerned, when there is one.
    pub step: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(step) = &self.step {
            write!(f, ": step `{step}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for DefinitionError {}

/// Parses a duration written as one or more `<integer><unit>` parts, units `ms`, `s`, `m`, `h`,
/// `d`: `500ms`, `30s`, `1h30m`, `14d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration `{text}` (write e.g. `500ms`, `30s`, `5m`, `2h`, `14d`, `1h30m`)")
    };
    let text_trimmed = text.trim();
    if text_trimmed.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text_trimmed;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.checked_mul(60).ok_or_else(bad)?),
            "h" => Duration::from_secs(number.checked_mul(3600).ok_or_else(bad)?),
            "d" => Duration::from_secs(number.checked_mul(86_400).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        total = total.checked_add(part).ok_or_else(bad)?;
    }
    Ok(total)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefinition {
    name: Spanned<String>,
    version: Spanned<i64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    outcomes: Vec<Spanned<String>>,
    #[serde(default)]
    events: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    defaults: Option<RawDefaults>,
    #[serde(default)]
    steps: Vec<RawStep>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    timeout: Option<Spanned<String>>,
    retry: Option<RawRetry>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    max_attempts: Option<Spanned<i64>>,
    initial_backoff: Option<Spanned<String>>,
    max_backoff: Option<Spanned<String>>,
    multiplier: Option<Spanned<f64>>,
    jitter: Option<Spanned<String>>,
    on_exhaustion: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: Spanned<String>,
    action: Option<Spanned<String>>,
    wait: Option<Spanned<String>>,
    when: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    retry: Option<RawRetry>,
    poll: Option<Spanned<String>>,
    poll_every: Option<Spanned<String>>,
    deadline: Option<Spanned<String>>,
    on_deadline: Option<Spanned<String>>,
    reminder_every: Option<Spanned<String>>,
    reminder_event: Option<Spanned<String>>,
}

/// The default timeout of an action (and of a poll).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_event_type(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
}

struct Checker<'a> {
    file: &'a str,
    source: &'a str,
    errors: Vec<DefinitionError>,
}

impl Checker<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.source.len());
        self.source.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn error<T>(&mut self, at: &Spanned<T>, step: Option<&str>, message: impl Into<String>) {
        let line = Some(self.line_of(at.span().start));
        self.errors.push(DefinitionError {
            file: self.file.to_owned(),
            line,
            step: step.map(str::to_owned),
            message: message.into(),
        });
    }

    fn duration(
        &mut self,
        value: &Spanned<String>,
        step: Option<&str>,
        field: &str,
        allow_zero: bool,
    ) -> Option<Duration> {
        match parse_duration(value.get_ref()) {
            Ok(d) if d.is_zero() && !allow_zero => {
                self.error(value, step, format!("`{field}` must be longer than zero"));
                None
            }
            Ok(d) => Some(d),
            Err(message) => {
                self.error(value, step, format!("`{field}`: {message}"));
                None
            }
        }
    }

    fn unknown(&mut self, at: &Spanned<String>, step: &str, kind: &str, catalog: &dyn Catalog) {
        let mut known = catalog.known(kind);
        known.sort();
        let list = if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        };
        self.error(
            at,
            Some(step),
            format!("unknown {kind} `{}` (registered: {list})", at.get_ref()),
        );
    }

    fn retry(&mut self, base: &RetryPolicy, raw: &RawRetry, step: Option<&str>) -> RetryPolicy {
        let mut policy = base.clone();
        if let Some(max) = &raw.max_attempts {
            match u32::try_from(*max.get_ref()) {
                Ok(n) if n >= 1 => policy.max_attempts = n,
                _ => self.error(max, step, "`retry.max_attempts` must be at least 1"),
            }
        }
        if let Some(v) = &raw.initial_backoff
            && let Some(d) = self.duration(v, step, "retry.initial_backoff", true)
        {
            policy.initial_backoff = d;
        }
        if let Some(v) = &raw.max_backoff
            && let Some(d) = self.duration(v, step, "retry.max_backoff", true)
        {
            policy.max_backoff = d;
        }
        if let Some(m) = &raw.multiplier {
            if m.get_ref().is_finite() && *m.get_ref() >= 1.0 {
                policy.multiplier = *m.get_ref();
            } else {
                self.error(
                    m,
                    step,
                    "`retry.multiplier` must be a number of at least 1.0",
                );
            }
        }
        if let Some(j) = &raw.jitter {
            match j.get_ref().as_str() {
                "full" => policy.jitter = Jitter::Full,
                "none" => policy.jitter = Jitter::None,
                other => self.error(
                    j,
                    step,
                    format!("`retry.jitter` must be `full` or `none`, not `{other}`"),
                ),
            }
        }
        if let Some(e) = &raw.on_exhaustion {
            match e.get_ref().as_str() {
                "fail" => policy.on_exhaustion = OnExhaustion::Fail,
                "pause" => policy.on_exhaustion = OnExhaustion::Pause,
                other => self.error(
                    e,
                    step,
                    format!("`retry.on_exhaustion` must be `fail` or `pause`, not `{other}`"),
                ),
            }
        }
        if policy.initial_backoff > policy.max_backoff {
            let at = raw
                .initial_backoff
                .as_ref()
                .or(raw.max_backoff.as_ref())
                .cloned();
            if let Some(at) = at {
                self.error(
                    &at,
                    step,
                    "`retry.initial_backoff` must not exceed `retry.max_backoff`",
                );
            }
        }
        policy
    }
}

/// Finds the name of the `[[steps]]` entry that contains byte `offset` of `source`, to name the
/// step in errors the TOML deserializer reports (unknown keys, wrong types).
fn step_around(source: &str, offset: usize) -> Option<String> {
    let mut current: Option<String> = None;
    let mut in_step = false;
    let mut position = 0;
    for line in source.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            if position > offset && in_step {
                break;
            }
            in_step = trimmed.starts_with("[[steps]]") || trimmed.starts_with("[steps.");
            if trimmed.starts_with("[[steps]]") {
                current = None;
            }
            if !in_step && position > offset {
                break;
            }
        } else if in_step
            && let Some(rest) = trimmed.strip_prefix("name")
            && let Some(value) = rest.trim_start().strip_prefix('=')
        {
            current = Some(value.trim().trim_matches('"').to_owned());
        }
        position += line.len();
        if position > offset && !in_step {
            return None;
        }
    }
    if in_step { current } else { None }
}

/// Parses and validates one definition file. `file` names it in errors.
pub fn parse_definition(
    file: &str,
    source: &str,
    catalog: &dyn Catalog,
) -> Result<WorkflowDefinition, Vec<DefinitionError>> {
    let raw: RawDefinition = match toml::from_str(source) {
        Ok(raw) => raw,
        Err(e) => {
            let offset = e.span().map(|s| s.start);
            let checker = Checker {
                file,
                source,
                errors: Vec::new(),
            };
            return Err(vec![DefinitionError {
                file: file.to_owned(),
                line: offset.map(|o| checker.line_of(o)),
                step: offset.and_then(|o| step_around(source, o)),
                message: e.message().trim().to_owned(),
            }]);
        }
    };
    let mut c = Checker {
        file,
        source,
        errors: Vec::new(),
    };

    let name = raw.name.get_ref().clone();
    if !is_identifier(&name) {
        c.error(
            &raw.name,
            None,
            format!("workflow name `{name}` must be lowercase letters, digits and `_`, starting with a letter"),
        );
    }
    let version = match u32::try_from(*raw.version.get_ref()) {
        Ok(v) if v >= 1 => v,
        _ => {
            c.error(
                &raw.version,
                None,
                "`version` must be a whole number of at least 1",
            );
            1
        }
    };

    let mut outcomes = Vec::new();
    for outcome in &raw.outcomes {
        let o = outcome.get_ref();
        let reserved = o == OUTCOME_COMPLETED || o.parse::<RunStatus>().is_ok();
        if !is_identifier(o) || reserved {
            c.error(
                outcome,
                None,
                format!("outcome `{o}` must be an identifier other than `completed` and the run statuses"),
            );
        } else if outcomes.contains(o) {
            c.error(outcome, None, format!("outcome `{o}` is declared twice"));
        } else {
            outcomes.push(o.clone());
        }
    }

    let mut events = RunEvents::default();
    for (key, value) in &raw.events {
        let event = value.get_ref().clone();
        if !is_event_type(&event) {
            c.error(
                value,
                None,
                format!("event type `{event}` must be lowercase letters, digits, `_` and `.`"),
            );
            continue;
        }
        match key.as_str() {
            "succeeded" => events.succeeded = Some(event),
            "failed" => events.failed = Some(event),
            "paused" => events.paused = Some(event),
            "cancelled" => events.cancelled = Some(event),
            other if outcomes.iter().any(|o| o == other) => {
                events.outcomes.insert(other.to_owned(), event);
            }
            other => c.error(
                value,
                None,
                format!(
                    "`events.{other}` is neither a run transition (succeeded, failed, paused, cancelled) nor a declared outcome"
                ),
            ),
        }
    }

    let defaults = raw.defaults.unwrap_or_default();
    let default_timeout = match &defaults.timeout {
        Some(t) => c
            .duration(t, None, "defaults.timeout", false)
            .unwrap_or(DEFAULT_TIMEOUT),
        None => DEFAULT_TIMEOUT,
    };
    let default_retry = match &defaults.retry {
        Some(r) => c.retry(&RetryPolicy::default(), r, None),
        None => RetryPolicy::default(),
    };

    if raw.steps.is_empty() {
        c.errors.push(DefinitionError {
            file: file.to_owned(),
            line: None,
            step: None,
            message: "a workflow needs at least one `[[steps]]` entry".to_owned(),
        });
    }

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut steps = Vec::new();
    for raw_step in &raw.steps {
        let step_name = raw_step.name.get_ref().clone();
        let line = c.line_of(raw_step.name.span().start);
        let s = Some(step_name.as_str());
        if !is_identifier(&step_name) {
            c.error(
                &raw_step.name,
                s,
                "step name must be lowercase letters, digits and `_`, starting with a letter",
            );
        }
        if let Some(first) = seen.get(&step_name) {
            c.error(
                &raw_step.name,
                s,
                format!("duplicate step name (first defined at line {first})"),
            );
        } else {
            seen.insert(step_name.clone(), line);
        }

        let when = raw_step.when.as_ref().map(|w| {
            let text = w.get_ref().trim();
            let (negated, cond) = match text.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, text),
            };
            if !catalog.has_condition(cond) {
                let spanned = Spanned::new(w.span(), cond.to_owned());
                c.unknown(&spanned, &step_name, "condition", catalog);
            }
            Condition {
                name: cond.to_owned(),
                negated,
            }
        });

        let kind = match (&raw_step.action, &raw_step.wait) {
            (Some(_), Some(w)) => {
                c.error(w, s, "a step is either an `action` or a `wait`, not both");
                continue;
            }
            (None, None) => {
                c.error(
                    &raw_step.name,
                    s,
                    "a step needs an `action` (a handler name) or a `wait` (a signal name)",
                );
                continue;
            }
            (Some(handler), None) => {
                for (field, value) in [
                    ("poll", &raw_step.poll),
                    ("poll_every", &raw_step.poll_every),
                    ("deadline", &raw_step.deadline),
                    ("on_deadline", &raw_step.on_deadline),
                    ("reminder_every", &raw_step.reminder_every),
                    ("reminder_event", &raw_step.reminder_event),
                ] {
                    if let Some(v) = value {
                        c.error(
                            v,
                            s,
                            format!("`{field}` belongs to a wait step, not an action"),
                        );
                    }
                }
                if !catalog.has_handler(handler.get_ref()) {
                    c.unknown(handler, &step_name, "handler", catalog);
                }
                let timeout = match &raw_step.timeout {
                    Some(t) => c
                        .duration(t, s, "timeout", false)
                        .unwrap_or(default_timeout),
                    None => default_timeout,
                };
                let retry = match &raw_step.retry {
                    Some(r) => c.retry(&default_retry, r, s),
                    None => default_retry.clone(),
                };
                StepKind::Action(ActionStep {
                    handler: handler.get_ref().clone(),
                    timeout,
                    retry,
                })
            }
            (None, Some(signal)) => {
                if raw_step.retry.is_some() {
                    c.error(
                        &raw_step.name,
                        s,
                        "`retry` belongs to an action step, not a wait",
                    );
                }
                if !is_identifier(signal.get_ref()) {
                    c.error(
                        signal,
                        s,
                        "a signal name must be lowercase letters, digits and `_`",
                    );
                } else if !catalog.has_signal(signal.get_ref()) {
                    c.unknown(signal, &step_name, "signal", catalog);
                }
                let poll_timeout = match &raw_step.timeout {
                    Some(t) => c
                        .duration(t, s, "timeout", false)
                        .unwrap_or(default_timeout),
                    None => default_timeout,
                };
                if raw_step.timeout.is_some() && raw_step.poll.is_none() {
                    c.error(
                        raw_step.timeout.as_ref().unwrap_or(signal),
                        s,
                        "`timeout` on a wait applies to its poll; this wait has no `poll`",
                    );
                }
                let poll = match (&raw_step.poll, &raw_step.poll_every) {
                    (Some(handler), Some(every)) => {
                        if !catalog.has_poll(handler.get_ref()) {
                            c.unknown(handler, &step_name, "poll handler", catalog);
                        }
                        c.duration(every, s, "poll_every", false)
                            .map(|every| PollSpec {
                                handler: handler.get_ref().clone(),
                                every,
                                timeout: poll_timeout,
                            })
                    }
                    (Some(handler), None) => {
                        c.error(handler, s, "`poll` needs `poll_every`");
                        None
                    }
                    (None, Some(every)) => {
                        c.error(every, s, "`poll_every` needs `poll` (a poll handler)");
                        None
                    }
                    (None, None) => None,
                };
                let deadline = match (&raw_step.deadline, &raw_step.on_deadline) {
                    (Some(after), on) => {
                        let action = match on.as_ref().map(|o| o.get_ref().as_str()) {
                            None | Some("pause") => DeadlineAction::Pause,
                            Some("fail") => DeadlineAction::Fail,
                            Some("continue") => DeadlineAction::Continue,
                            Some(other) => {
                                if let Some(on) = on {
                                    c.error(
                                        on,
                                        s,
                                        format!("`on_deadline` must be `pause`, `fail` or `continue`, not `{other}`"),
                                    );
                                }
                                DeadlineAction::Pause
                            }
                        };
                        c.duration(after, s, "deadline", false)
                            .map(|after| Deadline { after, action })
                    }
                    (None, Some(on)) => {
                        c.error(on, s, "`on_deadline` needs `deadline`");
                        None
                    }
                    (None, None) => None,
                };
                let reminder = match (&raw_step.reminder_every, &raw_step.reminder_event) {
                    (Some(every), Some(event)) => {
                        if !is_event_type(event.get_ref()) {
                            c.error(
                                event,
                                s,
                                "`reminder_event` must be lowercase letters, digits, `_` and `.`",
                            );
                        }
                        c.duration(every, s, "reminder_every", false)
                            .map(|every| Reminder {
                                every,
                                event: event.get_ref().clone(),
                            })
                    }
                    (Some(every), None) => {
                        c.error(every, s, "`reminder_every` needs `reminder_event`");
                        None
                    }
                    (None, Some(event)) => {
                        c.error(event, s, "`reminder_event` needs `reminder_every`");
                        None
                    }
                    (None, None) => None,
                };
                StepKind::Wait(WaitStep {
                    signal: signal.get_ref().clone(),
                    poll,
                    deadline,
                    reminder,
                })
            }
        };
        steps.push(StepDefinition {
            name: step_name,
            when,
            kind,
            line,
        });
    }

    let mut signals = HashSet::new();
    for step in &steps {
        if let StepKind::Wait(w) = &step.kind
            && !signals.insert(w.signal.clone())
        {
            c.errors.push(DefinitionError {
                file: file.to_owned(),
                line: Some(step.line),
                step: Some(step.name.clone()),
                message: format!(
                    "signal `{}` is already awaited by an earlier step; a signal may complete one wait per workflow",
                    w.signal
                ),
            });
        }
    }

    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    Ok(WorkflowDefinition {
        name,
        version,
        description: raw.description,
        steps,
        outcomes,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Names;
    impl Catalog for Names {
        fn has_handler(&self, name: &str) -> bool {
            matches!(name, "create_org" | "open_terminal")
        }
        fn has_poll(&self, name: &str) -> bool {
            name == "terminal_status"
        }
        fn has_condition(&self, name: &str) -> bool {
            name == "clearing"
        }
        fn has_signal(&self, name: &str) -> bool {
            name == "terminal_approved"
        }
        fn known(&self, kind: &str) -> Vec<String> {
            match kind {
                "handler" => vec!["create_org".into(), "open_terminal".into()],
                _ => vec![],
            }
        }
    }

    const GOOD: &str = r#"
name = "onboarding"
version = 2
outcomes = ["declined"]

[events]
succeeded = "vendor.ready"
paused = "vendor.onboarding_paused"
declined = "vendor.declined"

[defaults]
timeout = "10s"
retry = { max_attempts = 4, initial_backoff = "1s", max_backoff = "1m" }

[[steps]]
name = "create"
action = "create_org"
retry = { on_exhaustion = "pause", multiplier = 3.0 }

[[steps]]
name = "open"
action = "open_terminal"
when = "clearing"
timeout = "45s"

[[steps]]
name = "approval"
wait = "terminal_approved"
when = "clearing"
poll = "terminal_status"
poll_every = "15m"
deadline = "14d"
on_deadline = "fail"
reminder_every = "2d"
reminder_event = "vendor.terminal_reminder"
"#;

    #[test]
    fn a_complete_definition_parses_with_defaults_applied() {
        let def = parse_definition("onboarding.toml", GOOD, &Names).unwrap();
        assert_eq!(def.name, "onboarding");
        assert_eq!(def.version, 2);
        assert_eq!(def.steps.len(), 3);
        let StepKind::Action(create) = &def.steps[0].kind else {
            panic!("create is an action")
        };
        assert_eq!(create.timeout, Duration::from_secs(10));
        assert_eq!(create.retry.max_attempts, 4);
        assert_eq!(create.retry.multiplier, 3.0);
        assert_eq!(create.retry.on_exhaustion, OnExhaustion::Pause);
        let StepKind::Action(open) = &def.steps[1].kind else {
            panic!("open is an action")
        };
        assert_eq!(open.timeout, Duration::from_secs(45));
        assert_eq!(
            def.steps[1].when,
            Some(Condition {
                name: "clearing".into(),
                negated: false
            })
        );
        let StepKind::Wait(wait) = &def.steps[2].kind else {
            panic!("approval is a wait")
        };
        assert_eq!(wait.poll.as_ref().unwrap().every, Duration::from_secs(900));
        assert_eq!(wait.deadline.as_ref().unwrap().action, DeadlineAction::Fail);
        assert_eq!(def.events.for_outcome("declined"), Some("vendor.declined"));
        assert_eq!(def.events.for_outcome("completed"), Some("vendor.ready"));
        assert_eq!(def.steps[2].line, 27);
    }

    #[test]
    fn an_unknown_handler_is_named_with_its_file_line_and_step() {
        let src = "name = \"w\"\nversion = 1\n\n[[steps]]\nname = \"first\"\naction = \"nope\"\n";
        let errors = parse_definition("w.toml", src, &Names).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "w.toml:6: step `first`: unknown handler `nope` (registered: create_org, open_terminal)"
        );
    }

    #[test]
    fn a_duplicate_step_and_a_bad_duration_are_both_reported() {
        let src = r#"name = "w"
version = 1
[[steps]]
name = "a"
action = "create_org"
timeout = "5 parsecs"
[[steps]]
name = "a"
action = "create_org"
"#;
        let errors = parse_definition("w.toml", src, &Names).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|e| e
                    .starts_with("w.toml:6: step `a`: `timeout`: invalid duration `5 parsecs`")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e == "w.toml:8: step `a`: duplicate step name (first defined at line 4)"),
            "{text:?}"
        );
    }

    #[test]
    fn an_unknown_key_names_the_step_around_it() {
        let src = "name = \"w\"\nversion = 1\n[[steps]]\nname = \"a\"\naction = \"create_org\"\ntimeuot = \"5s\"\n";
        let errors = parse_definition("w.toml", src, &Names).unwrap_err();
        assert_eq!(errors[0].step.as_deref(), Some("a"));
        assert_eq!(errors[0].line, Some(6));
        assert!(
            errors[0].message.contains("unknown field `timeuot`"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn wait_fields_on_an_action_and_undeclared_events_are_refused() {
        let src = r#"name = "w"
version = 1
[events]
declined = "x.declined"
[[steps]]
name = "a"
action = "create_org"
deadline = "1d"
"#;
        let errors = parse_definition("w.toml", src, &Names).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|e| e.contains("`events.declined` is neither")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e.contains("`deadline` belongs to a wait step")),
            "{text:?}"
        );
    }

    #[test]
    fn durations_accept_compound_forms_and_refuse_garbage() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_duration("14d").unwrap(),
            Duration::from_secs(14 * 86_400)
        );
        for bad in ["", "5", "m5", "5x", "1.5s", "-3s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_grows_by_the_multiplier_up_to_the_cap_and_full_jitter_scales_it() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: Jitter::None,
            on_exhaustion: OnExhaustion::Fail,
        };
        let delays: Vec<u64> = (1..=6).map(|n| policy.delay(n, 0.5).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 10, 10]);
        let jittered = RetryPolicy {
            jitter: Jitter::Full,
            ..policy.clone()
        };
        assert_eq!(jittered.delay(3, 0.5), Duration::from_secs(2));
        assert_eq!(jittered.delay(3, 0.0), Duration::ZERO);
    }

    #[test]
    fn attempts_stop_at_max_attempts_and_retry_after_is_honoured() {
        let policy = RetryPolicy {
            max_attempts: 3,
            on_exhaustion: OnExhaustion::Pause,
            ..RetryPolicy::default()
        };
        assert_eq!(
            policy.after_failure(2, Some(Duration::from_secs(7)), 0.3),
            RetryDecision::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(
            policy.after_failure(3, None, 0.3),
            RetryDecision::Exhausted(OnExhaustion::Pause)
        );
    }

    proptest::proptest! {
        #[test]
        fn backoff_never_exceeds_the_cap(
            failures in 1u32..200,
            sample in 0.0f64..1.0,
            initial_ms in 0u64..10_000,
            extra_ms in 0u64..100_000,
            multiplier in 1.0f64..10.0,
        ) {
            let policy = RetryPolicy {
                max_attempts: 1000,
                initial_backoff: Duration::from_millis(initial_ms),
                max_backoff: Duration::from_millis(initial_ms + extra_ms),
                multiplier,
                jitter: Jitter::Full,
                on_exhaustion: OnExhaustion::Fail,
            };
            let delay = policy.delay(failures, sample);
            proptest::prop_assert!(delay <= policy.max_backoff + Duration::from_micros(1));
        }
    }
}

//! Runs and their states: ids, statuses, attempt outcomes, history event kinds, actors, the pure
//! rules of which operator operation applies to which status, and the redaction of payloads that
//! enter a run's history.
//!
//! The engine and the store speak these words; the database enforces the same lists with named
//! CHECK constraints (migrations/0002_engine.sql), so a word added here must be added there too.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// The id of a workflow run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub Uuid);

impl RunId {
    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for RunId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(RunId)
    }
}

impl From<Uuid> for RunId {
    fn from(id: Uuid) -> Self {
        RunId(id)
    }
}

/// An unknown word where a status, outcome or kind was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct UnknownWord {
    /// What was being parsed.
    pub what: &'static str,
    /// The word found.
    pub value: String,
}

macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($(#[$vmeta:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word stored in the database and shown in the API.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok($name::$variant),)+
                    other => Err(UnknownWord { what: $what, value: other.to_owned() }),
                }
            }
        }
    };
}

word_enum!(
    /// The status of a run.
    ///
    /// `succeeded` is the end of every run that went as designed, including one that a step
    /// ended early with a business outcome such as `declined`: the run's `outcome` says which
    /// (`completed` or the declared outcome). `failed` means something went wrong that retries
    /// could not fix. `paused` waits for an operator; `waiting` waits for a signal, a poll or a
    /// deadline without holding a worker.
    RunStatus, "run status", {
        /// Due at `next_run_at` (a new run, a backoff, a woken wait).
        Pending => "pending",
        /// Held by a worker under a lease.
        Running => "running",
        /// At a wait step, asleep until a signal, a poll, a reminder or its deadline.
        Waiting => "waiting",
        /// Stopped for an operator, with a reason.
        Paused => "paused",
        /// Ended as designed; see the run's outcome.
        Succeeded => "succeeded",
        /// Ended in failure.
        Failed => "failed",
        /// Cancelled by an operator or the marketplace.
        Cancelled => "cancelled",
    }
);

impl TryFrom<String> for RunStatus {
    type Error = UnknownWord;

    /// Reads the word stored in the database (the store decodes `runs.status` with this).
    fn try_from(word: String) -> Result<Self, Self::Error> {
        word.parse()
    }
}

impl PartialEq<str> for RunStatus {
    fn eq(&self, word: &str) -> bool {
        self.as_str() == word
    }
}

impl PartialEq<&str> for RunStatus {
    fn eq(&self, word: &&str) -> bool {
        self.as_str() == *word
    }
}

impl RunStatus {
    /// Whether the run has ended and will never change again.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

/// The outcome label of a run that ran through its last step.
pub const OUTCOME_COMPLETED: &str = "completed";

word_enum!(
    /// How one attempt of an action step ended.
    AttemptOutcome, "attempt outcome", {
        /// The handler succeeded; its output was merged into the context.
        Succeeded => "succeeded",
        /// The handler ended the run with a business outcome (for example `declined`).
        Finished => "finished",
        /// The handler failed in a way a later attempt may fix.
        Retryable => "retryable",
        /// The handler failed in a way no attempt can fix.
        Fatal => "fatal",
        /// Nobody knows whether the effect happened (timeout, lost answer, panic); the next
        /// attempt reconciles first.
        Unknown => "unknown",
        /// The handler asked for an operator.
        Paused => "paused",
        /// The attempt started and its worker never recorded an outcome (it died or lost its
        /// lease); closed when the next attempt reconciled.
        Abandoned => "abandoned",
    }
);

word_enum!(
    /// The kinds of events in a run's history.
    HistoryKind, "history kind", {
        /// The run was enqueued.
        Created => "created",
        /// An attempt of an action step started (recorded before the handler is called).
        StepStarted => "step_started",
        /// An attempt succeeded (or ended the run with a business outcome).
        StepSucceeded => "step_succeeded",
        /// An attempt failed; the data says how (retryable, fatal, unknown, paused).
        StepFailed => "step_failed",
        /// A step's `when` condition was false for this run's input.
        StepSkipped => "step_skipped",
        /// A retry was scheduled at a persisted time.
        BackoffScheduled => "backoff_scheduled",
        /// The handler reconciled an attempt whose outcome was unknown.
        Reconciled => "reconciled",
        /// The run began (or went back to) waiting for a signal.
        Waiting => "waiting",
        /// A signal arrived for the run.
        SignalReceived => "signal_received",
        /// A wait ended: its signal was consumed or its poll found the condition met.
        WaitCompleted => "wait_completed",
        /// A wait's poll handler ran.
        Poll => "poll",
        /// A wait sent its reminder event.
        Reminder => "reminder",
        /// A wait's deadline passed.
        DeadlineReached => "deadline_reached",
        /// An operator asked to pause a run a worker holds; it pauses at its next record.
        PauseRequested => "pause_requested",
        /// The run paused.
        Paused => "paused",
        /// An operator resumed the run.
        Resumed => "resumed",
        /// An operator asked for the current step to be retried now.
        RetryRequested => "retry_requested",
        /// An operator moved the run to a named step.
        ResumedFrom => "resumed_from",
        /// The run's lease expired and the scheduler gave it back to the queue.
        Rescued => "rescued",
        /// The run was cancelled.
        Cancelled => "cancelled",
        /// An operator asked to cancel a run whose step is in flight (or whose last attempt's
        /// outcome is still to be reconciled); the worker's next record that leaves nothing to
        /// reconcile applies it, after keeping the step's outcome.
        CancelRequested => "cancel_requested",
        /// The run succeeded.
        Succeeded => "succeeded",
        /// The run failed.
        Failed => "failed",
    }
);

word_enum!(
    /// Who caused a change to a run.
    ActorKind, "actor kind", {
        /// The engine itself (scheduler, rescue, retention).
        System => "system",
        /// A worker executing steps.
        Worker => "worker",
        /// A person through the dashboard or the admin API.
        Operator => "operator",
        /// The marketplace's backend through the API.
        Backend => "backend",
        /// Someone at the command line.
        Cli => "cli",
    }
);

/// Who did something to a run; recorded in its history with the reason given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The kind of actor.
    pub kind: ActorKind,
    /// Who exactly: an operator's login, a token id, a worker id, `engine`.
    pub id: String,
}

impl Actor {
    /// An actor of the given kind and id.
    pub fn new(kind: ActorKind, id: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
        }
    }

    /// The engine itself.
    pub fn system() -> Self {
        Self::new(ActorKind::System, "engine")
    }

    /// A person acting through the dashboard or admin API.
    pub fn operator(id: impl Into<String>) -> Self {
        Self::new(ActorKind::Operator, id)
    }

    /// The marketplace's backend, identified by its token id.
    pub fn backend(id: impl Into<String>) -> Self {
        Self::new(ActorKind::Backend, id)
    }

    /// Someone at the command line.
    pub fn cli(id: impl Into<String>) -> Self {
        Self::new(ActorKind::Cli, id)
    }
}

/// An operator's action on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Run the current step again now (a pending retry or a failed run).
    RetryNow,
    /// Move the run to a named step and run it again with a fresh idempotency key.
    ResumeFrom,
    /// Stop the run for good.
    Cancel,
    /// Stop the run until an operator resumes it.
    Pause,
    /// Continue a paused run (or withdraw a pause request).
    Resume,
}

impl Operation {
    /// The operation's name, as used in messages and the API.
    pub fn as_str(&self) -> &'static str {
        match self {
            Operation::RetryNow => "retry",
            Operation::ResumeFrom => "resume_from",
            Operation::Cancel => "cancel",
            Operation::Pause => "pause",
            Operation::Resume => "resume",
        }
    }
}

/// What an allowed operation does to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationEffect {
    /// The run moves to this status now.
    Transition(RunStatus),
    /// A worker holds the run: the pause is recorded as requested and applied by the worker's
    /// next record, so the step in flight finishes and its outcome is kept.
    PauseRequested,
    /// A worker holds the run or an attempt's outcome is still unknown: the cancel is recorded
    /// as requested and applied by the next record that leaves nothing to reconcile, so what the
    /// provider did is recorded (and reported) before the run ends cancelled.
    CancelRequested,
    /// A worker holds the run and a pause or cancel was requested: the request is withdrawn.
    RequestWithdrawn,
}

/// What an operation must know of a run besides its status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunFlags {
    /// A pause was requested while a worker held the run.
    pub pause_requested: bool,
    /// A cancel was requested and is not applied yet.
    pub cancel_requested: bool,
    /// The outcome of the run's last attempt is unknown: an attempt is open (its worker died or
    /// lost its lease) or ended with an unknown outcome, and the next attempt reconciles first.
    pub unreconciled: bool,
}

/// An operation that does not apply to a run in its current status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {operation} a run that is {status}{hint}")]
pub struct TransitionError {
    /// The operation refused.
    pub operation: &'static str,
    /// The run's status.
    pub status: RunStatus,
    /// A hint for the operator, starting with "; " when present.
    pub hint: &'static str,
}

/// The pure rule of which operation applies to which run status, and what it does.
///
/// A cancel never throws away what a provider may have done: while a step is in flight
/// (`running`) or the last attempt's outcome is unknown (`flags.unreconciled`), it is a request that
/// the next record applies once that outcome is known and recorded.
pub fn operation_effect(
    status: RunStatus,
    flags: RunFlags,
    operation: Operation,
) -> Result<OperationEffect, TransitionError> {
    let RunFlags {
        pause_requested,
        cancel_requested,
        unreconciled,
    } = flags;
    use OperationEffect::*;
    use RunStatus::*;
    let refuse = |hint: &'static str| TransitionError {
        operation: operation.as_str(),
        status,
        hint,
    };
    if status.is_terminal()
        && !(status == Failed && matches!(operation, Operation::RetryNow | Operation::ResumeFrom))
    {
        return Err(refuse("; it has ended"));
    }
    match operation {
        Operation::Cancel => match status {
            Running | Pending if cancel_requested => Err(refuse("; a cancel is already requested")),
            Running => Ok(CancelRequested),
            Pending | Paused if unreconciled => Ok(CancelRequested),
            _ => Ok(Transition(Cancelled)),
        },
        Operation::Pause => match status {
            Pending | Waiting => Ok(Transition(Paused)),
            Running if cancel_requested => Err(refuse("; a cancel is already requested")),
            Running if pause_requested => Err(refuse("; a pause is already requested")),
            Running => Ok(PauseRequested),
            _ => Err(refuse("; it is already paused")),
        },
        Operation::Resume => match status {
            Paused => Ok(Transition(Pending)),
            Running if pause_requested || cancel_requested => Ok(RequestWithdrawn),
            _ => Err(refuse("; only a paused run can be resumed")),
        },
        Operation::RetryNow => match status {
            Pending | Failed => Ok(Transition(Pending)),
            Paused => Err(refuse("; resume it instead")),
            Waiting => Err(refuse("; send its signal, or resume it from a step")),
            _ => Err(refuse("; a worker is executing its step")),
        },
        Operation::ResumeFrom => match status {
            Pending | Waiting | Paused | Failed => Ok(Transition(Pending)),
            _ => Err(refuse("; pause it first")),
        },
    }
}

/// The text that replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

fn normalised(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether a JSON key names a value that must never reach history or logs: card data, bank
/// account numbers, API keys, tokens, passwords and other secrets.
pub fn is_sensitive_key(key: &str) -> bool {
    let key = normalised(key);
    const EXACT: &[&str] = &["pan", "cvv", "cvc", "cvv2", "iban", "pin", "key", "bank"];
    const PREFIX: &[&str] = &["card", "account", "bankaccount"];
    const CONTAINS: &[&str] = &[
        "apikey",
        "password",
        "passwd",
        "secret",
        "token",
        "privatekey",
        "authorization",
        "credential",
        "signature",
    ];
    EXACT.contains(&key.as_str())
        || PREFIX.iter().any(|p| key.starts_with(p))
        || CONTAINS.iter().any(|c| key.contains(c))
}

/// Whether a JSON key names a secret that must never even enter a run's input: passwords, API
/// keys, private keys, full card numbers and security codes. Narrower than [`is_sensitive_key`],
/// because a run's input legitimately carries provider single-use tokens and last-4 digits.
pub fn is_forbidden_input_key(key: &str) -> bool {
    let key = normalised(key);
    const EXACT: &[&str] = &["pan", "cvv", "cvc", "cvv2", "iban", "pin", "cardnumber"];
    const CONTAINS: &[&str] = &["apikey", "password", "passwd", "secret", "privatekey"];
    EXACT.contains(&key.as_str()) || CONTAINS.iter().any(|c| key.contains(c))
}

/// A copy of `value` in which the value of every sensitive key (see [`is_sensitive_key`]),
/// at any depth, is replaced by [`REDACTED`].
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_sensitive_key(k) {
                        Value::String(REDACTED.to_owned())
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// The JSON path (`input.vendor.api_key`) of the first key of `value` that must not enter a
/// run's input, if any (see [`is_forbidden_input_key`]).
pub fn forbidden_input_path(value: &Value) -> Option<String> {
    fn walk(value: &Value, path: &mut Vec<String>) -> Option<String> {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    path.push(k.clone());
                    if is_forbidden_input_key(k) {
                        return Some(path.join("."));
                    }
                    if let Some(found) = walk(v, path) {
                        return Some(found);
                    }
                    path.pop();
                }
                None
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    path.push(i.to_string());
                    if let Some(found) = walk(v, path) {
                        return Some(found);
                    }
                    path.pop();
                }
                None
            }
            _ => None,
        }
    }
    walk(value, &mut vec!["input".to_owned()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_status_reads_back_from_its_word() {
        for status in RunStatus::ALL {
            assert_eq!(status.as_str().parse::<RunStatus>().unwrap(), *status);
        }
        assert!("done".parse::<RunStatus>().is_err());
    }

    #[test]
    fn only_succeeded_failed_and_cancelled_are_terminal() {
        let terminal: Vec<_> = RunStatus::ALL.iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(
            terminal,
            vec![
                &RunStatus::Succeeded,
                &RunStatus::Failed,
                &RunStatus::Cancelled
            ]
        );
    }

    #[test]
    fn a_running_run_gets_a_pause_request_rather_than_an_immediate_pause() {
        assert_eq!(
            operation_effect(RunStatus::Running, RunFlags::default(), Operation::Pause),
            Ok(OperationEffect::PauseRequested)
        );
        let pause_requested = RunFlags {
            pause_requested: true,
            ..RunFlags::default()
        };
        assert_eq!(
            operation_effect(RunStatus::Running, pause_requested, Operation::Resume),
            Ok(OperationEffect::RequestWithdrawn)
        );
        assert_eq!(
            operation_effect(RunStatus::Waiting, RunFlags::default(), Operation::Pause),
            Ok(OperationEffect::Transition(RunStatus::Paused))
        );
    }

    #[test]
    fn a_cancel_never_discards_a_step_in_flight_or_an_unknown_outcome() {
        let none = RunFlags::default();
        let unreconciled = RunFlags {
            unreconciled: true,
            ..none
        };
        assert_eq!(
            operation_effect(RunStatus::Running, none, Operation::Cancel),
            Ok(OperationEffect::CancelRequested)
        );
        for status in [RunStatus::Pending, RunStatus::Paused] {
            assert_eq!(
                operation_effect(status, unreconciled, Operation::Cancel),
                Ok(OperationEffect::CancelRequested)
            );
            assert_eq!(
                operation_effect(status, none, Operation::Cancel),
                Ok(OperationEffect::Transition(RunStatus::Cancelled))
            );
        }
        assert_eq!(
            operation_effect(RunStatus::Waiting, none, Operation::Cancel),
            Ok(OperationEffect::Transition(RunStatus::Cancelled))
        );
        let requested = RunFlags {
            cancel_requested: true,
            ..none
        };
        let err = operation_effect(RunStatus::Running, requested, Operation::Cancel).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot cancel a run that is running; a cancel is already requested"
        );
        assert!(operation_effect(RunStatus::Running, requested, Operation::Pause).is_err());
        assert_eq!(
            operation_effect(RunStatus::Running, requested, Operation::Resume),
            Ok(OperationEffect::RequestWithdrawn)
        );
    }

    #[test]
    fn ended_runs_refuse_every_operation_except_retrying_a_failure() {
        for op in [
            Operation::Cancel,
            Operation::Pause,
            Operation::Resume,
            Operation::RetryNow,
            Operation::ResumeFrom,
        ] {
            assert!(operation_effect(RunStatus::Succeeded, RunFlags::default(), op).is_err());
            assert!(operation_effect(RunStatus::Cancelled, RunFlags::default(), op).is_err());
        }
        assert_eq!(
            operation_effect(RunStatus::Failed, RunFlags::default(), Operation::RetryNow),
            Ok(OperationEffect::Transition(RunStatus::Pending))
        );
        assert_eq!(
            operation_effect(
                RunStatus::Failed,
                RunFlags::default(),
                Operation::ResumeFrom
            ),
            Ok(OperationEffect::Transition(RunStatus::Pending))
        );
        let err = operation_effect(RunStatus::Failed, RunFlags::default(), Operation::Cancel)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot cancel a run that is failed; it has ended"
        );
    }

    #[test]
    fn redaction_replaces_secrets_at_any_depth_and_keeps_the_rest() {
        let value = json!({
            "organization_id": 42,
            "api_key": "sk_live_123",
            "nested": {"bank_account": {"account": "041116"}, "card_last4": "4242", "note": "ok"},
            "list": [{"password": "hunter2", "step": "x"}]
        });
        let redacted = redact(&value);
        assert_eq!(
            redacted,
            json!({
                "organization_id": 42,
                "api_key": REDACTED,
                "nested": {"bank_account": REDACTED, "card_last4": REDACTED, "note": "ok"},
                "list": [{"password": REDACTED, "step": "x"}]
            })
        );
        let text = redacted.to_string();
        assert!(
            !text.contains("sk_live_123") && !text.contains("hunter2") && !text.contains("041116")
        );
    }

    #[test]
    fn input_with_an_api_key_or_card_number_is_found_but_tokens_are_allowed() {
        assert_eq!(
            forbidden_input_path(&json!({"vendor": {"name": "x", "ApiKey": "k"}})),
            Some("input.vendor.ApiKey".to_owned())
        );
        assert_eq!(
            forbidden_input_path(&json!({"items": [{"card_number": "4580"}]})),
            Some("input.items.0.card_number".to_owned())
        );
        assert_eq!(
            forbidden_input_path(&json!({"single_use_token": "tok", "card_last4": "4242"})),
            None
        );
    }
}

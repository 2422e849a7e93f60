//! The registry: handlers, poll handlers, conditions and signals by name. Definitions are
//! validated against it at start-up, so a name that a workflow uses and nobody registered is an
//! error before any run executes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use domain::definition::Catalog;
use serde_json::Value;

use crate::handler::{PollHandler, StepHandler};

/// A condition on a run's input, used by a step's `when`.
pub type ConditionFn = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

/// Handlers, poll handlers, conditions and signals by name.
#[derive(Default, Clone)]
pub struct Registry {
    handlers: BTreeMap<String, Arc<dyn StepHandler>>,
    polls: BTreeMap<String, Arc<dyn PollHandler>>,
    conditions: BTreeMap<String, ConditionFn>,
    signals: BTreeMap<String, ()>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("handlers", &self.handlers.keys().collect::<Vec<_>>())
            .field("polls", &self.polls.keys().collect::<Vec<_>>())
            .field("conditions", &self.conditions.keys().collect::<Vec<_>>())
            .field("signals", &self.signals.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an action handler; a later registration of the same name replaces it.
    pub fn handler(&mut self, name: impl Into<String>, handler: impl StepHandler) -> &mut Self {
        self.handlers.insert(name.into(), Arc::new(handler));
        self
    }

    /// Registers a poll handler for waits.
    pub fn poll(&mut self, name: impl Into<String>, handler: impl PollHandler) -> &mut Self {
        self.polls.insert(name.into(), Arc::new(handler));
        self
    }

    /// Registers a condition on the run's input, for steps' `when`.
    pub fn condition(
        &mut self,
        name: impl Into<String>,
        condition: impl Fn(&Value) -> bool + Send + Sync + 'static,
    ) -> &mut Self {
        self.conditions.insert(name.into(), Arc::new(condition));
        self
    }

    /// Registers a signal name that waits may await and senders may send.
    pub fn signal(&mut self, name: impl Into<String>) -> &mut Self {
        self.signals.insert(name.into(), ());
        self
    }

    pub(crate) fn get_handler(&self, name: &str) -> Option<Arc<dyn StepHandler>> {
        self.handlers.get(name).cloned()
    }

    pub(crate) fn get_poll(&self, name: &str) -> Option<Arc<dyn PollHandler>> {
        self.polls.get(name).cloned()
    }

    pub(crate) fn get_condition(&self, name: &str) -> Option<ConditionFn> {
        self.conditions.get(name).cloned()
    }
}

impl Catalog for Registry {
    fn has_handler(&self, name: &str) -> bool {
        self.handlers.contains_key(name)
    }

    fn has_poll(&self, name: &str) -> bool {
        self.polls.contains_key(name)
    }

    fn has_condition(&self, name: &str) -> bool {
        self.conditions.contains_key(name)
    }

    fn has_signal(&self, name: &str) -> bool {
        self.signals.contains_key(name)
    }

    fn known(&self, kind: &str) -> Vec<String> {
        let keys: Vec<String> = match kind {
            "handler" => self.handlers.keys().cloned().collect(),
            "poll handler" => self.polls.keys().cloned().collect(),
            "condition" => self.conditions.keys().cloned().collect(),
            "signal" => self.signals.keys().cloned().collect(),
            _ => Vec::new(),
        };
        keys
    }
}

//! Loaded workflow definitions: parsed, validated against the [`Registry`], hashed, and bound to
//! their handlers.
//!
//! Each run pins the version and the SHA-256 of the file it started with; the file's text is
//! stored (`vendorflow.workflow_definitions`) when the first run of that hash is enqueued. A
//! worker that meets a run whose hash is not among the files it loaded compiles the stored text,
//! so changing a file never changes a run already in flight.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use domain::definition::{DefinitionError, StepKind, WorkflowDefinition, parse_definition};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::handler::{PollHandler, StepHandler};
use crate::registry::{ConditionFn, Registry};

/// Why definitions could not be loaded: every problem found, each naming its file.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionsError {
    /// One or more files are invalid.
    #[error("invalid workflow definitions:\n{}", list(.0))]
    Invalid(Vec<DefinitionError>),
    /// The directory or a file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

fn list(errors: &[DefinitionError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A definition bound to its handlers.
pub struct CompiledWorkflow {
    /// The validated definition.
    pub definition: WorkflowDefinition,
    /// The SHA-256 of the file's text, in hex.
    pub content_hash: String,
    /// The file's name as loaded.
    pub file_name: String,
    pub(crate) source: String,
    pub(crate) steps: Vec<CompiledStep>,
}

impl fmt::Debug for CompiledWorkflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledWorkflow")
            .field("name", &self.definition.name)
            .field("version", &self.definition.version)
            .field("content_hash", &self.content_hash)
            .field("file_name", &self.file_name)
            .finish_non_exhaustive()
    }
}

pub(crate) struct CompiledStep {
    pub(crate) handler: Option<Arc<dyn StepHandler>>,
    pub(crate) poll: Option<Arc<dyn PollHandler>>,
    pub(crate) condition: Option<(ConditionFn, bool)>,
}

impl CompiledWorkflow {
    /// Parses, validates and binds one file's text.
    pub fn compile(
        file_name: &str,
        source: &str,
        registry: &Registry,
    ) -> Result<Self, Vec<DefinitionError>> {
        let definition = parse_definition(file_name, source, registry)?;
        let steps = definition
            .steps
            .iter()
            .map(|step| CompiledStep {
                handler: match &step.kind {
                    StepKind::Action(a) => registry.get_handler(&a.handler),
                    StepKind::Wait(_) => None,
                },
                poll: match &step.kind {
                    StepKind::Wait(w) => {
                        w.poll.as_ref().and_then(|p| registry.get_poll(&p.handler))
                    }
                    StepKind::Action(_) => None,
                },
                condition: step
                    .when
                    .as_ref()
                    .and_then(|c| registry.get_condition(&c.name).map(|f| (f, c.negated))),
            })
            .collect();
        Ok(Self {
            content_hash: content_hash(source),
            file_name: file_name.to_owned(),
            source: source.to_owned(),
            definition,
            steps,
        })
    }

    /// Whether step `index` runs for this input (its `when` condition holds, or it has none).
    pub fn step_applies(&self, index: usize, input: &Value) -> bool {
        match self.steps.get(index).and_then(|s| s.condition.as_ref()) {
            Some((condition, negated)) => condition(input) != *negated,
            None => true,
        }
    }
}

/// The SHA-256 of a definition's text, in lowercase hex.
pub fn content_hash(source: &str) -> String {
    hex::encode(Sha256::digest(source.as_bytes()))
}

/// The definitions loaded at start-up, by workflow name.
#[derive(Default, Clone)]
pub struct Definitions {
    by_name: BTreeMap<String, Arc<CompiledWorkflow>>,
}

impl fmt::Debug for Definitions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.by_name.values()).finish()
    }
}

impl Definitions {
    /// Loads every `*.toml` file of `dir` (in name order), validated against `registry`.
    /// Reports every problem of every file at once.
    pub fn load_dir(dir: impl AsRef<Path>, registry: &Registry) -> Result<Self, DefinitionsError> {
        let dir = dir.as_ref();
        let io = |path: &Path, source| DefinitionsError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let path = entry.map_err(|e| io(dir, e))?.path();
            if path.extension().is_some_and(|ext| ext == "toml") {
                let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
                files.push((path.display().to_string(), text));
            }
        }
        files.sort();
        Self::from_sources(
            files
                .iter()
                .map(|(name, text)| (name.as_str(), text.as_str())),
            registry,
        )
    }

    /// Loads definitions from `(file name, text)` pairs, validated against `registry`.
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
        registry: &Registry,
    ) -> Result<Self, DefinitionsError> {
        let mut errors = Vec::new();
        let mut by_name: BTreeMap<String, Arc<CompiledWorkflow>> = BTreeMap::new();
        for (file, text) in sources {
            match CompiledWorkflow::compile(file, text, registry) {
                Ok(compiled) => {
                    let name = compiled.definition.name.clone();
                    if let Some(other) = by_name.get(&name) {
                        errors.push(DefinitionError {
                            file: file.to_owned(),
                            line: None,
                            step: None,
                            message: format!(
                                "workflow `{name}` is already defined in {}",
                                other.file_name
                            ),
                        });
                    } else {
                        by_name.insert(name, Arc::new(compiled));
                    }
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(Self { by_name })
        } else {
            Err(DefinitionsError::Invalid(errors))
        }
    }

    /// The definition of a workflow.
    pub fn get(&self, workflow: &str) -> Option<&Arc<CompiledWorkflow>> {
        self.by_name.get(workflow)
    }

    /// The definition of a workflow with exactly this content hash, if it is the one loaded.
    pub fn get_pinned(&self, workflow: &str, content_hash: &str) -> Option<&Arc<CompiledWorkflow>> {
        self.by_name
            .get(workflow)
            .filter(|c| c.content_hash == content_hash)
    }

    /// Every loaded definition, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<CompiledWorkflow>> {
        self.by_name.values()
    }

    /// Whether no definition is loaded.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}
